//! Reconciliation over random scenarios (proptest): small communities (2-3 prosumers with random
//! loads, PV, batteries; a market with a random mechanism and fee, or pro-rata sharing; CER on or
//! off) are simulated for a year (the model's horizon is always a year), settled, and checked:
//!
//! - every block replays on a fresh ledger with no rejection and the invariants hold;
//! - with a market: every market trade is on the ledger exactly once with its energy, price and
//!   fee, and every member's P2P money paid and received equals the market's to the base unit;
//! - with pro-rata sharing: each step's trades carry exactly `min(sellers' Wh, buyers' Wh)`
//!   (no Wh lost that both sides metered), at the internal price, without a fee;
//! - the CER payouts are the ledger's integer rule over the settled readings
//!   (`scg_settle::cer_tally`), add up to its benefit, and lie within the Wh rounding of the
//!   readings of the summary's float allocation (`common::cer_float_bound_base`);
//! - no Wh lost: the Wh posted on the ledger equal the Wh of the settlement input's trades, and
//!   every member's supply point exported at least what it sold.
//!
//! Few cases by default (a year each, kept fast for CI); `SCG_RECONCILE_CASES=64` runs more.
#![allow(clippy::unwrap_used)]

mod common;

use proptest::prelude::*;
use scg_ledger::Ledger;
use scg_ledger::merkle::to_hex;
use scg_ledger::state::TradeStatus;
use scg_settle::{Policy, cer_tally, community_year, settle};
use scg_units::{Eur, Rescoin};
use std::collections::BTreeMap;

fn cases() -> u32 {
    std::env::var("SCG_RECONCILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// One random prosumer.
#[derive(Debug, Clone)]
struct Member {
    profile: usize,
    kwh_per_day: f64,
    pv_kwp: f64,
    battery_kwh: f64,
}

/// One random community.
#[derive(Debug, Clone)]
struct Community {
    members: Vec<Member>,
    /// None = pro-rata sharing; else (mechanism, fee EUR/MWh).
    market: Option<(usize, f64)>,
    cer: bool,
    internal_price_eur_per_mwh: f64,
    seed: u64,
}

fn member() -> impl Strategy<Value = Member> {
    (
        0..scg_model::builtin::PROFILE_NAMES.len(),
        20.0..400.0f64,
        prop_oneof![Just(0.0), 5.0..120.0f64],
        prop_oneof![Just(0.0), 10.0..150.0f64],
    )
        .prop_map(|(profile, kwh_per_day, pv_kwp, battery_kwh)| Member {
            profile,
            kwh_per_day,
            pv_kwp,
            battery_kwh,
        })
}

fn community() -> impl Strategy<Value = Community> {
    (
        prop::collection::vec(member(), 2..=3),
        prop_oneof![Just(None), (0..3usize, 0.0..20.0f64).prop_map(Some)],
        any::<bool>(),
        60.0..250.0f64,
        0..1_000u64,
    )
        .prop_map(
            |(members, market, cer, internal_price_eur_per_mwh, seed)| Community {
                members,
                market,
                cer,
                internal_price_eur_per_mwh,
                seed,
            },
        )
}

/// The scenario TOML: the built-in scenario's settings with these members, market and CER.
fn toml(c: &Community) -> String {
    let base = scg_model::builtin::BERGAMO_TOML;
    let header = &base[..base.find("[[prosumers]]").unwrap()];
    let market_line = "market = { mechanism = \"pay_as_clear\", fee_eur_per_mwh = 0.0 }";
    assert!(header.contains(market_line));
    let market = match c.market {
        None => String::new(),
        Some((m, fee)) => {
            let mechanism = ["pay_as_clear", "pay_as_bid", "pay_as_offer"][m];
            format!("market = {{ mechanism = \"{mechanism}\", fee_eur_per_mwh = {fee:.3} }}")
        }
    };
    let mut text = header
        .replace(market_line, &market)
        .replace(
            "internal_price_eur_per_mwh = 150.0",
            &format!(
                "internal_price_eur_per_mwh = {:.3}",
                c.internal_price_eur_per_mwh
            ),
        )
        .replace(
            "[cer]\nenabled = true",
            &format!("[cer]\nenabled = {}", c.cer),
        );
    for (i, m) in c.members.iter().enumerate() {
        let profile = scg_model::builtin::PROFILE_NAMES[m.profile];
        text.push_str(&format!(
            "[[prosumers]]\nid = \"m{i}\"\nname = \"Member {i}\"\n[prosumers.load]\ntype = \"synthetic\"\nprofile = \"{profile}\"\nscaled_average_kwh_per_day = {:.3}\n",
            m.kwh_per_day
        ));
        if m.pv_kwp > 0.0 {
            text.push_str(&format!(
                "[[prosumers.pv]]\ncapacity_kwp = {:.3}\ntilt_deg = 30.0\nazimuth_deg = 0.0\ncosts = {{ capital_eur_per_kw = 1100.0, replacement_eur_per_kw = 900.0, om_eur_per_kw_year = 18.0, lifetime_years = 25.0 }}\n",
                m.pv_kwp
            ));
        }
        if m.battery_kwh > 0.0 {
            let kw = m.battery_kwh / 2.0;
            text.push_str(&format!(
                "[prosumers.battery]\ncapacity_kwh = {:.3}\nmax_charge_power_kw = {kw:.3}\nmax_discharge_power_kw = {kw:.3}\nround_trip_efficiency_pct = 90.0\nmin_soc_pct = 20.0\nlifetime_throughput_kwh = 300000.0\nlifetime_years = 15.0\ncapital_cost_eur_per_kwh = 450.0\nreplacement_cost_eur_per_kwh = 350.0\nom_cost_eur_per_kwh_year = 8.0\n[prosumers.converter]\ncapacity_kw = {kw:.3}\ncapital_cost_eur_per_kw = 250.0\nreplacement_cost_eur_per_kw = 200.0\nlifetime_years = 15.0\n",
                m.battery_kwh
            ));
        }
    }
    text
}

fn check(c: &Community) -> Result<(), TestCaseError> {
    let scenario = scg_model::Scenario::from_toml_str(&toml(c), "random.toml")
        .unwrap_or_else(|e| panic!("scenario: {e}\n{}", toml(c)));
    let result = scg_sim::simulate_scenario(
        &scenario,
        &mut |p| Err(format!("unexpected read of {}", p.display())),
        c.seed,
        &mut |_, _| {},
    )
    .unwrap();
    let price = scenario.community.internal_price_eur_per_mwh;
    let input = community_year(&result, price, &Policy::default()).unwrap();
    let settled = settle(&result, price, &Policy::default()).unwrap();
    let s = &settled.summary;
    let ids: Vec<&str> = result.prosumers.iter().map(|p| p.id.as_str()).collect();

    // Replay as a node would.
    let (mut ledger, _) = Ledger::from_genesis_block(&settled.blocks[0]).unwrap();
    for b in &settled.blocks[1..] {
        prop_assert_eq!(ledger.apply_block(b).unwrap().rejected(), 0);
    }
    ledger.check_invariants().unwrap();
    prop_assert_eq!(to_hex(&ledger.state_root()), s.final_state_root_hex.clone());

    let key_of: BTreeMap<String, &str> = s
        .members
        .iter()
        .map(|(id, m)| (m.account_hex.clone(), id.as_str()))
        .collect();
    // (interval, seller, buyer, Wh, price, fee) of every trade on the ledger.
    let mut on_ledger: Vec<(u64, &str, &str, u64, u128, u128)> = Vec::new();
    for t in ledger.trades() {
        prop_assert_eq!(t.status, TradeStatus::Posted);
        prop_assert_eq!(t.delivered_wh, t.energy_wh);
        on_ledger.push((
            t.interval,
            key_of[&to_hex(&t.seller)],
            key_of[&to_hex(&t.buyer)],
            t.energy_wh,
            t.price_base_per_kwh,
            t.fee_base_per_kwh,
        ));
    }
    on_ledger.sort_unstable();
    prop_assert_eq!(s.p2p_trades_settled, on_ledger.len() as u64);

    // No Wh lost between the settlement input and the ledger, and no seller sells more than
    // its supply point exported.
    let input_wh: u128 = input
        .intervals
        .iter()
        .flat_map(|iv| &iv.trades)
        .map(|t| u128::from(t.energy_wh))
        .sum();
    let ledger_wh: u128 = on_ledger.iter().map(|t| u128::from(t.3)).sum();
    prop_assert_eq!(input_wh, ledger_wh);
    prop_assert_eq!(s.p2p_wh_delivered, ledger_wh);

    match &result.community.market {
        Some(market) => {
            let mut in_market: Vec<(u64, &str, &str, u64, u128, u128)> = market
                .trades
                .iter()
                .map(|t| {
                    (
                        t.step as u64,
                        ids[t.seller],
                        ids[t.buyer],
                        t.energy_wh as u64,
                        t.price_milli_eur_per_mwh as u128 * 1000,
                        t.fee_milli_eur_per_mwh as u128 * 1000,
                    )
                })
                .collect();
            in_market.sort_unstable();
            prop_assert_eq!(&on_ledger, &in_market);
            prop_assert_eq!(s.p2p_trades_settled, market.p2p_trades);
            for (i, id) in ids.iter().enumerate() {
                let m = &s.members[*id];
                prop_assert_eq!(
                    (m.p2p_paid.0 + m.fees_paid.0) as i128,
                    market.paid_nano[i],
                    "{} paid",
                    id
                );
                prop_assert_eq!(
                    m.p2p_received.0 as i128,
                    market.received_nano[i],
                    "{} received",
                    id
                );
            }
        }
        None => {
            let internal = Rescoin::from_eur(Eur(price / 1000.0)).unwrap().0;
            for t in &on_ledger {
                prop_assert_eq!((t.4, t.5), (internal, 0));
            }
            // Per step: the trades carry min(sold, bought) of the members' rounded P2P Wh.
            for (i, iv) in input.intervals.iter().enumerate() {
                let dt = result.grid.step_hours();
                let wh = |kw: f64| scg_units::Wh::from_kwh(scg_units::Kwh(kw * dt)).unwrap().0;
                let sold: i64 = result
                    .prosumers
                    .iter()
                    .map(|p| wh(scg_sim::year::FlowSeries::at(&p.flows.p2p_export_kw, i)))
                    .sum();
                let bought: i64 = result
                    .prosumers
                    .iter()
                    .map(|p| wh(scg_sim::year::FlowSeries::at(&p.flows.p2p_import_kw, i)))
                    .sum();
                let traded: u64 = iv.trades.iter().map(|t| t.energy_wh).sum();
                prop_assert_eq!(traded as i64, sold.min(bought), "step {}", i);
            }
        }
    }

    // CER payouts = the ledger's integer rule; within the readings' rounding of the float.
    let tally = cer_tally(&result, &input.intervals).unwrap();
    prop_assert_eq!(tally.is_some(), c.cer);
    for (i, id) in ids.iter().enumerate() {
        let paid = s.members[*id].cer_received.0;
        let rule = tally.as_ref().map_or(0, |t| t.allocated_base[i]);
        prop_assert_eq!(paid, rule, "{} CER", id);
        let allocated = result
            .community
            .cer
            .members
            .get(i)
            .map_or(0.0, |m| m.allocated_eur);
        let bound = common::cer_float_bound_base(&result, &input.intervals, i);
        prop_assert!((paid as f64 - allocated * 1e9).abs() <= bound, "{} CER", id);
    }
    let cer_total: u128 = s.members.values().map(|m| m.cer_received.0).sum();
    prop_assert_eq!(s.cer_distributed.0, cer_total);
    prop_assert_eq!(cer_total, tally.map_or(0, |t| t.total_base()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_communities_reconcile_to_the_base_unit(c in community()) {
        check(&c)?;
    }
}
