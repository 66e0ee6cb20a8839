//! `scg optimize`'s winner, re-simulated with `scg simulate`'s engine, has the NPC the search
//! ranked it with (1e-6 relative), with pro-rata sharing and with the community market: both
//! account through the one `accounting::YearAccounts`. An off-grid winner with the market
//! simulates too.
#![allow(clippy::unwrap_used)]

use scg_sim::Assets;
mod common;

/// Two Bergamo prosumers without EVs and without home agents (the search does not run them),
/// a small search space.
fn scenario(market: bool) -> scg_model::Scenario {
    let mut s = scg_model::builtin::bergamo().unwrap();
    s.prosumers.truncate(2);
    for p in &mut s.prosumers {
        p.ev = None;
        p.home = None;
        p.search = None;
    }
    s.prosumers[0].search = Some(scg_model::ProsumerSearch {
        pv_kwp: Some(vec![0.0, 25.0, 50.0]),
        battery_kwh: Some(vec![0.0, 50.0]),
        ..Default::default()
    });
    if !market {
        s.community.market = None;
    }
    s
}

fn winner_npc_matches_simulate(market: bool) {
    winner_of(&scenario(market));
}

/// Search `scenario`, simulate its winner in full, check the NPC; returns the winner.
fn winner_of(scenario: &scg_model::Scenario) -> scg_sim::optimize::ConfigResult {
    let market = scenario.community.market.is_some();
    let seed = 7;
    common::with_search(scenario, seed, |_, inputs, spaces, out| {
        assert_eq!(out.market.is_some(), market);
        let best = out.ranked.first().unwrap();
        assert_eq!(best.market_replayed, market);
        let winner = scg_sim::sizing::winner_scenario(scenario, spaces, best);
        let winner_assets = Assets::from_scenario(&winner).unwrap();
        let full =
            scg_sim::simulate(&winner, &winner_assets, inputs, seed, &mut |_, _| {}).unwrap();
        assert_eq!(full.community.market.is_some(), market);
        let npc = full.community.economics.npc_eur;
        assert!(
            (best.npc_eur - npc).abs() <= 1e-6 * npc.abs(),
            "search {} vs simulate {npc}",
            best.npc_eur
        );
        let cer = full.community.cer.total_eur;
        assert!((best.cer_incentive_eur - cer).abs() <= 1e-6 * cer.abs().max(1.0));
        best.clone()
    })
}

#[test]
fn winner_npc_matches_simulate_with_pro_rata_sharing() {
    winner_npc_matches_simulate(false);
}

#[test]
fn winner_npc_matches_simulate_with_the_market() {
    winner_npc_matches_simulate(true);
}

/// Only islanded configurations (any unmet load allowed): the winner is off-grid, ranked with
/// the market, and its full simulation (no grid connection, the market still clearing)
/// succeeds with the search's NPC.
#[test]
fn off_grid_winner_with_the_market_simulates() {
    let mut s = scenario(true);
    s.search = Some(scg_model::CommunitySearch {
        grid_connected: vec![false],
        max_capacity_shortage_pct: 100.0,
    });
    let best = winner_of(&s);
    assert!(!best.grid_connected);
    assert!(best.market_replayed);
    assert_eq!(best.grid_import_kwh, 0.0);
    assert!(best.unmet_fraction > 0.0);
}
