//! `scg market clear` end to end: CSV and JSON input, JSON and table output, errors.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn scg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scg"))
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scg-market-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const CSV: &str = "id,side,prosumer,interval,energy_wh,price_eur_per_mwh,source
b1,bid,apartment,0,3000,200,
b2,bid,office,0,2000,120,
b3,bid,school,0,4000,60,
o1,offer,supermarket,0,2500,50,pv
o2,offer,restaurant,0,1500,100,battery
o3,offer,school,0,5000,150,wind
b4,bid,apartment,1,1000,90,
o4,offer,supermarket,1,1000,30,pv
";

fn run_json(args: &[&str]) -> Value {
    let out = scg().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn csv_pay_as_clear_json_output_has_the_documented_shape() {
    let path = temp_file("orders.csv", CSV);
    let v = run_json(&[
        "market",
        "clear",
        "--orders",
        path.to_str().unwrap(),
        "--mechanism",
        "pay-as-clear",
        "--json",
    ]);
    let intervals = v["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 2);
    // Hand-computed in scg-market's tests: 4000 Wh at 110 EUR/MWh.
    assert_eq!(intervals[0]["interval"], 0);
    assert_eq!(intervals[0]["price_eur_per_mwh"], 110.0);
    assert_eq!(intervals[0]["volume_wh"], 4000);
    // Interval 1: one bid 90, one offer 30 → 60.
    assert_eq!(intervals[1]["price_eur_per_mwh"], 60.0);
    assert_eq!(intervals[1]["volume_wh"], 1000);
    let trades = v["trades"].as_array().unwrap();
    assert_eq!(trades.len(), 4);
    let t = &trades[0];
    for key in [
        "bid",
        "offer",
        "buyer",
        "seller",
        "interval",
        "energy_wh",
        "price_eur_per_mwh",
    ] {
        assert!(t.get(key).is_some(), "missing {key}");
    }
    assert_eq!(t["bid"], "b1");
    assert_eq!(t["offer"], "o1");
    assert_eq!(t["buyer"], "apartment");
    assert_eq!(t["seller"], "supermarket");
    assert_eq!(t["energy_wh"], 2500);
    assert_eq!(t["source"], "pv");
}

#[test]
fn json_input_pay_as_offer_and_grid_fallback() {
    let json = r#"[
      {"id": "b1", "side": "bid", "prosumer": "apartment", "interval": 4, "energy_wh": 3000, "price_eur_per_mwh": 260},
      {"id": "o1", "side": "offer", "prosumer": "school", "interval": 4, "energy_wh": 1000, "price_eur_per_mwh": 80.5, "source": "pv"},
      {"id": "o2", "side": "offer", "prosumer": "office", "interval": 4, "energy_wh": 500, "price_eur_per_mwh": 30, "source": null}
    ]"#;
    let path = temp_file("orders.json", json);
    let v = run_json(&[
        "market",
        "clear",
        "--orders",
        path.to_str().unwrap(),
        "--mechanism",
        "pay_as_offer",
        "--json",
        "--grid-buy-eur-per-mwh",
        "250",
        "--grid-sell-eur-per-mwh",
        "40",
    ]);
    let trades = v["trades"].as_array().unwrap();
    // b1 takes o2 (30) then o1 (80.5); the remaining 1500 Wh come from the grid at 250.
    assert_eq!(trades[0]["offer"], "o2");
    assert_eq!(trades[0]["price_eur_per_mwh"], 30.0);
    assert_eq!(trades[1]["offer"], "o1");
    assert_eq!(trades[1]["price_eur_per_mwh"], 80.5);
    assert_eq!(trades[2]["seller"], "grid");
    assert_eq!(trades[2]["energy_wh"], 1500);
    assert_eq!(trades[2]["price_eur_per_mwh"], 250.0);
    assert_eq!(v["intervals"][0]["volume_wh"], 1500);
    assert_eq!(v["intervals"][0]["grid_import_wh"], 1500);
}

#[test]
fn without_grid_flags_only_the_orders_trade_and_tables_print() {
    let path = temp_file("orders-table.csv", CSV);
    let out = scg()
        .args([
            "market",
            "clear",
            "--orders",
            path.to_str().unwrap(),
            "--mechanism",
            "pay-as-bid",
            "--fee-eur-per-mwh",
            "5",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("mechanism: pay_as_bid"), "{text}");
    assert!(text.contains("apartment"), "{text}");
    // No grid flags: no trade has the grid as counterpart.
    let trade_rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("trade"))
        .skip(1)
        .collect();
    assert_eq!(trade_rows.len(), 4, "{text}");
    assert!(trade_rows.iter().all(|l| !l.contains("grid")), "{text}");
}

#[test]
fn bad_rows_are_errors_naming_file_line_and_field() {
    let bad = CSV.replace("b2,bid,office,0,2000,120,", "b2,bid,office,0,lots,120,");
    let path = temp_file("bad.csv", &bad);
    let out = scg()
        .args(["market", "clear", "--orders", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.csv:3"), "{err}");
    assert!(err.contains("energy_wh"), "{err}");

    let path = temp_file("bad-header.csv", "id,side,who\nb1,bid,x\n");
    let out = scg()
        .args(["market", "clear", "--orders", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("missing column \"prosumer\""), "{err}");

    let out = scg()
        .args([
            "market",
            "clear",
            "--orders",
            "x.csv",
            "--mechanism",
            "pay-as-you-go",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
