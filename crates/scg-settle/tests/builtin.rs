//! The built-in (default) scenario, settled: reconciliation of the ledger with the simulation
//! and `summary.json`, and the golden files of its summary and state root.
//!
//! Regenerate the golden files after an intended change (and commit them with it):
//! `SCG_UPDATE_GOLDEN=1 cargo test -p scg-settle --test builtin`.
#![allow(clippy::unwrap_used)]

mod common;

use scg_ledger::settlement::settle_year_with;
use scg_ledger::state::TradeStatus;
use scg_ledger::{Ledger, merkle::to_hex};
use scg_report::summary::{LedgerInfo, RunInfo, Summary};
use scg_settle::{Layout, Policy, cer_tally, community_year, settle};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The seed `scg simulate` uses without `--seed`.
const DEFAULT_SEED: u64 = 42;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compare with (or, with `SCG_UPDATE_GOLDEN=1`, rewrite) a golden file.
fn check_golden(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("SCG_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with SCG_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from this run; if the change is intended, regenerate with SCG_UPDATE_GOLDEN=1 and commit it",
        path.display()
    );
}

#[test]
fn default_scenario_reconciles_and_matches_the_golden_files() {
    let scenario = scg_model::builtin::bergamo().unwrap();
    let result = scg_sim::simulate_scenario(
        &scenario,
        &mut |p| Err(format!("unexpected read of {}", p.display())),
        DEFAULT_SEED,
        &mut |_, _| {},
    )
    .unwrap();
    let settled = settle(
        &result,
        scenario.community.internal_price_eur_per_mwh,
        &Policy::default(),
    )
    .unwrap();
    let s = &settled.summary;
    let input = community_year(
        &result,
        scenario.community.internal_price_eur_per_mwh,
        &Policy::default(),
    )
    .unwrap();
    let tally = cer_tally(&result, &input.intervals)
        .unwrap()
        .expect("the default scenario is a CER");
    let market = result
        .community
        .market
        .as_ref()
        .expect("the default scenario has a market");
    let ids: Vec<&str> = result.prosumers.iter().map(|p| p.id.as_str()).collect();

    // Replay the chain as a node would: every block applies, invariants hold.
    let (mut ledger, _) = Ledger::from_genesis_block(&settled.blocks[0]).unwrap();
    for b in &settled.blocks[1..] {
        let outcome = ledger.apply_block(b).unwrap();
        assert_eq!(outcome.rejected(), 0);
        assert!(
            outcome.record_rejects.is_empty(),
            "{:?}",
            outcome.record_rejects
        );
    }
    ledger.check_invariants().unwrap();
    assert_eq!(to_hex(&ledger.state_root()), s.final_state_root_hex);
    // One block per day, one settlement batch each; every record under its author's signature
    // of its own records: far fewer signatures than records.
    assert_eq!(s.blocks, 366);
    assert_eq!(s.transactions, 365);
    eprintln!(
        "built-in year: {} records, {} signatures",
        s.records, s.signatures
    );
    assert!(s.signatures * 10 < s.records, "{} signatures", s.signatures);

    // Every market trade on the ledger exactly once, with its energy, price and fee.
    let key_of: BTreeMap<String, &str> = s
        .members
        .iter()
        .map(|(id, m)| (m.account_hex.clone(), id.as_str()))
        .collect();
    let mut on_ledger: Vec<(u64, &str, &str, u64, u128, u128)> = ledger
        .trades()
        .map(|t| {
            assert_eq!(t.status, TradeStatus::Posted);
            assert_eq!(t.delivered_wh, t.energy_wh);
            (
                t.interval,
                key_of[&to_hex(&t.seller)],
                key_of[&to_hex(&t.buyer)],
                t.energy_wh,
                t.price_base_per_kwh,
                t.fee_base_per_kwh,
            )
        })
        .collect();
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
    on_ledger.sort_unstable();
    in_market.sort_unstable();
    assert_eq!(on_ledger, in_market);
    assert_eq!(s.p2p_trades_settled, market.p2p_trades);
    assert_eq!(in_market.len() as u64, market.p2p_trades);

    // P2P money per member, to the base unit (one base unit = one nano-euro).
    for (i, id) in ids.iter().enumerate() {
        let m = &s.members[*id];
        assert_eq!(
            (m.p2p_paid.0 + m.fees_paid.0) as i128,
            market.paid_nano[i],
            "{id} paid"
        );
        assert_eq!(
            m.p2p_received.0 as i128, market.received_nano[i],
            "{id} received"
        );
        // CER payout = the ledger's integer rule over the settled readings (what a chain's
        // period closes pay for the same readings) ...
        assert_eq!(m.cer_received.0, tally.allocated_base[i], "{id} CER");
        // ... and the simulator's float allocation up to the Wh rounding of the readings.
        let float_base = result.community.cer.members[i].allocated_eur * 1e9;
        let diff = m.cer_received.0 as f64 - float_base;
        let bound = common::cer_float_bound_base(&result, &input.intervals, i);
        eprintln!("{id}: CER ledger - float = {diff:.0} base units (bound {bound:.0})");
        assert!(diff.abs() <= bound, "{id} CER: {diff} base units off");
    }
    assert_eq!(s.cer_distributed.0, tally.total_base());

    // The streamed settlement (`settle`) writes the very chain the named input gives
    // (`community_year` into `settle_year_with`), in both layouts.
    let price = scenario.community.internal_price_eur_per_mwh;
    for layout in [Layout::PerRecord, Layout::Compact] {
        let policy = Policy {
            compact_from_members: if layout == Layout::Compact { 1 } else { 50 },
            ..Policy::default()
        };
        let streamed = settle(&result, price, &policy).unwrap();
        let named = settle_year_with(&input, layout).unwrap();
        assert_eq!(streamed.blocks, named.blocks, "{layout:?}");
        assert_eq!(streamed.summary, named.summary, "{layout:?}");
    }

    // summary.json carries the same figures, as exact decimal strings.
    let run = RunInfo {
        scg_version: "golden".into(),
        scenario_source: "built-in".into(),
        ledger: Some(LedgerInfo::from_settlement(s, "ledger")),
    };
    let json = Summary::new(&result, &scenario, &run).to_json().unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["p2p_trades_settled"].as_u64(), Some(market.p2p_trades));
    let nano = |x: &serde_json::Value| -> i128 {
        let (whole, frac) = x.as_str().unwrap().split_once('.').unwrap();
        assert_eq!(frac.len(), 9);
        whole.parse::<i128>().unwrap() * 1_000_000_000 + frac.parse::<i128>().unwrap()
    };
    for (i, id) in ids.iter().enumerate() {
        let l = &v["prosumers"][*id]["ledger"];
        assert_eq!(
            nano(&l["p2p_paid_res"]) + nano(&l["fees_paid_res"]),
            market.paid_nano[i]
        );
        assert_eq!(nano(&l["p2p_received_res"]), market.received_nano[i]);
        assert_eq!(
            l["account"].as_str(),
            Some(s.members[*id].account_hex.as_str())
        );
        // The EUR figures of the summary are the same money as floats.
        let cost = v["prosumers"][*id]["p2p_cost_eur_per_year"]
            .as_f64()
            .unwrap();
        assert!((cost - market.paid_nano[i] as f64 / 1e9).abs() <= 1e-9 * cost.abs().max(1.0));
    }

    csv_closes_every_balance(&result);

    check_golden(
        "default_state_root.txt",
        &format!("{}\n", s.final_state_root_hex),
    );
    check_golden("default_summary.json", &json);
}

/// Every member's energy balance, computed from `timeseries.csv`'s columns alone, closes to
/// 1e-6 kWh every step and over the year.
fn csv_closes_every_balance(result: &scg_sim::SimResult) {
    let csv = scg_report::table::SeriesTable::from_result(result).to_csv();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let dt_h = result.grid.step_hours();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let mut ev_gap_kwh = 0.0;
    for p in &result.prosumers {
        let value = |row: &[&str], what: &str| -> f64 {
            col(&format!("{}_{what}", p.id)).map_or(0.0, |c| row[c].parse::<f64>().unwrap())
        };
        let mut year_error_kwh = 0.0;
        for (t, row) in rows.iter().enumerate() {
            let uses: f64 = [
                "load_kw",
                "ev_charge_kw",
                "swap_kw",
                "battery_charge_kw",
                "p2p_export_kw",
                "grid_export_kw",
                "excess_kw",
            ]
            .iter()
            .map(|w| value(row, w))
            .sum();
            let sources: f64 = [
                "pv_kw",
                "wind_kw",
                "v2g_kw",
                "battery_discharge_kw",
                "p2p_import_kw",
                "grid_import_kw",
                "unmet_kw",
            ]
            .iter()
            .map(|w| value(row, w))
            .sum();
            let error_kwh = (uses - sources) * dt_h;
            assert!(
                error_kwh.abs() <= 1e-6,
                "{} step {t}: balance off by {error_kwh} kWh",
                p.id
            );
            year_error_kwh += error_kwh;
            ev_gap_kwh += (value(row, "ev_charge_kw") + value(row, "swap_kw")) * dt_h;
        }
        assert!(
            year_error_kwh.abs() <= 1e-6,
            "{}: year off by {year_error_kwh} kWh",
            p.id
        );
    }
    // The columns carry the EV energy the old table left out.
    let ev_kwh: f64 = result.prosumers.iter().map(|p| p.energy.ev_kwh).sum();
    assert!(ev_kwh > 0.0, "the default scenario has EVs");
    assert!((ev_gap_kwh - ev_kwh).abs() <= 1e-6 * ev_kwh);
    let peak = col("grid_at_peak").unwrap();
    assert!(rows.iter().all(|r| r[peak] == "true" || r[peak] == "false"));
}
