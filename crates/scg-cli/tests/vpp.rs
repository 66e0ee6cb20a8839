//! `scg vpp bids` end to end on the built-in Bergamo scenario and the real GME fixture.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const PRICES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scg-resource/tests/data/gme/20210830MGPPrezzi.xml"
);

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scg-vpp-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The real 30 August 2021 file moved to `day` (YYYY-MM-DD); on a 25-hour day a 25th hour is
/// added with NORD at 777 EUR/MWh so a repeated 24th hour would show.
fn prices_for(day: &str) -> PathBuf {
    let real = std::fs::read_to_string(PRICES).unwrap();
    let ymd = day.replace('-', "");
    let mut text = real.replace("<Data>20210830</Data>", &format!("<Data>{ymd}</Data>"));
    if day == "2025-10-26" {
        let row = format!(
            "  <Prezzi>\n    <Data>{ymd}</Data>\n    <Mercato>MGP</Mercato>\n    <Ora>25</Ora>\n    \
             <PUN>700,0</PUN>\n    <NORD>777,0</NORD>\n  </Prezzi>\n</NewDataSet>"
        );
        text = text.replace("</NewDataSet>", &row);
    }
    let path = std::env::temp_dir().join(format!("scg-vpp-{}-{ymd}.xml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(day: &str, out: &PathBuf, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(["vpp", "bids", "--day", day, "--prices"])
        .arg(prices_for(day))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn writes_mgp_mi_and_msd_bids_with_their_gate_closures() {
    let out = out_dir("default");
    let o = run("2025-10-01", &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bids.json")).unwrap()).unwrap();
    assert_eq!(doc["periods"], 96);
    assert_eq!(doc["mgp"].as_array().unwrap().len(), 96);
    assert_eq!(doc["gate_closures"]["MGP"], "2025-09-30T12:00:00+02:00");
    assert_eq!(doc["gate_closures"]["MI-A3"], "2025-10-01T10:00:00+02:00");
    // The five Bergamo prosumers' shiftable loads are far below 1 MW: no MSD offers, and the
    // note says how many communities must aggregate.
    assert_eq!(doc["uvam"]["eligible"], false);
    assert!(doc["uvam"]["communities_needed"].as_u64().unwrap() > 1);
    assert!(doc["msd"].as_array().unwrap().is_empty());
    // The baseline buy of every MGP period is a price-taking step at the 4,000 EUR/MWh cap.
    for b in doc["mgp"].as_array().unwrap() {
        let s = &b["steps"][0];
        assert_eq!(s["direction"], "buy");
        assert_eq!(s["price_eur_per_mwh"], 4000.0);
    }
    // MI-A3 only delivers 12:00–24:00 (periods 49..96 on a 96-period day).
    for b in doc["mi"].as_array().unwrap() {
        if b["session"] == "MI-A3" {
            assert!(b["period"].as_u64().unwrap() >= 49);
        }
    }
    let csv = std::fs::read_to_string(out.join("bids.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "session,gate_closure,period,delivery_start,delivery_end,zone,direction,quantity_mwh,price_eur_per_mwh"
    );
    assert!(lines.all(|l| l.split(',').count() == 9));
    let forecast = std::fs::read_to_string(out.join("forecast.csv")).unwrap();
    assert_eq!(forecast.lines().count(), 97);
    // 104.51 EUR/MWh is NORD's price at 00:00–01:00 in the fixture.
    assert!(forecast.lines().nth(1).unwrap().ends_with(",104.510"));
    assert_eq!(
        std::fs::read_to_string(out.join("imbalance.csv"))
            .unwrap()
            .lines()
            .count(),
        97
    );
}

#[test]
fn daylight_saving_day_and_aggregated_communities() {
    let out = out_dir("dst");
    let o = run("2025-10-26", &out, &["--communities", "40"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bids.json")).unwrap()).unwrap();
    assert_eq!(doc["periods"], 100);
    // The 25th hour's price is the file's 25th, not the 24th repeated.
    let forecast = std::fs::read_to_string(out.join("forecast.csv")).unwrap();
    assert_eq!(forecast.lines().count(), 101);
    assert!(
        forecast.lines().last().unwrap().ends_with(",777.000"),
        "{forecast}"
    );
    assert!(forecast.lines().nth(96).unwrap().ends_with(",123.050"));
    assert_eq!(doc["uvam"]["eligible"], true);
    let msd = doc["msd"].as_array().unwrap();
    assert!(!msd.is_empty());
    for b in msd {
        for s in b["steps"].as_array().unwrap() {
            // Each offered step is at least 1 MW for 15 minutes = 0.25 MWh.
            assert!(s["quantity_mwh"].as_f64().unwrap() >= 0.25);
        }
    }
}

#[test]
fn a_day_the_price_file_does_not_hold_is_refused() {
    let out = out_dir("absent");
    let o = Command::new(env!("CARGO_BIN_EXE_scg"))
        .args([
            "vpp",
            "bids",
            "--day",
            "2025-10-01",
            "--prices",
            PRICES,
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("holds no prices for 2025-10-01") && err.contains("2021-08-30"),
        "{err}"
    );
    assert!(!out.join("bids.json").exists());
}

#[test]
fn bad_inputs_fail_with_a_message() {
    let out = out_dir("bad");
    let o = run("2025-02-30", &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--day"));
    let bad = std::env::temp_dir().join(format!("scg-vpp-bad-{}.xml", std::process::id()));
    std::fs::write(
        &bad,
        "<NewDataSet><Prezzi><Data>x</Data></Prezzi></NewDataSet>",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(["vpp", "bids", "--day", "2025-10-01", "--prices"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("<Data>"), "{err}");
}

/// `vpp bids` checks the run as `simulate` does (`scg_sim::check_run` on the 15-minute year):
/// the memory budget and every problem of the scenario at once, before anything is written.
#[test]
fn the_scenario_is_checked_like_simulate() {
    let out = out_dir("budget");
    let o = run("2025-10-01", &out, &["--memory-budget-mib", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("above the memory budget of 1 MiB"), "{err}");
    assert!(!out.join("bids.json").exists());

    let default = Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(["scenario", "default"])
        .output()
        .unwrap();
    let text = String::from_utf8(default.stdout).unwrap().replacen(
        "profile = \"midrise_apartment\"",
        "profile_file = \"missing-load.csv\"",
        1,
    );
    let dir = out_dir("scenario");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, text).unwrap();
    let o = run(
        "2025-10-01",
        &dir.join("out"),
        &[scenario.to_str().unwrap(), "--memory-budget-mib", "1"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("missing-load.csv"), "{err}");
    assert!(
        err.contains("memory budget"),
        "both problems at once: {err}"
    );
}
