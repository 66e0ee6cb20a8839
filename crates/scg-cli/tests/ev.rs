//! `scg ev evaluate|habits` end to end on the Caltech fixture of `scg-ev`.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scg-ev/tests/data/caltech_2019-09-01_14.csv")
}

fn scg(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .output()
        .expect("scg runs")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scg-ev-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn evaluate_prints_the_issue_fields_and_writes_out() {
    let f = fixture();
    let out = tmp("llf-out");
    let o = scg(&[
        "ev",
        "evaluate",
        "--sessions",
        f.to_str().unwrap(),
        "--policy",
        "llf",
        "--site-limit-kw",
        "30",
        "--step-minutes",
        "15",
        "--from",
        "2019-09-03",
        "--to",
        "2019-09-05",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "sessions",
        "energy_requested_kwh",
        "energy_delivered_kwh",
        "energy_delivered_pct",
        "demands_met_pct",
        "peak_kw",
        "energy_cost_eur",
        "v2g_energy_kwh",
        "degradation_cost_eur",
        "solve_time_ms_median",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert!(v["peak_kw"].as_f64().unwrap() <= 30.0 + 1e-6);
    assert!(v["sessions"].as_u64().unwrap() > 60);
    // The default tariff is SCE's, published in US dollars: the money is labelled so.
    assert_eq!(v["currency"], "USD");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("evaluate.json")).unwrap()).unwrap();
    assert_eq!(written, v);
}

#[test]
fn evaluate_out_as_a_file_still_works_with_a_deprecation_warning() {
    let out = tmp("old-form.json");
    let o = scg(&[
        "ev",
        "evaluate",
        "--sessions",
        fixture().to_str().unwrap(),
        "--policy",
        "uncontrolled",
        "--tariff",
        "flat:100",
        "--from",
        "2019-09-03",
        "--to",
        "2019-09-04",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--out is a directory everywhere"));
    assert!(String::from_utf8_lossy(&o.stdout).contains(" EUR"));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written["currency"], "EUR");
}

#[test]
fn evaluate_reads_gzip_and_offline_optimal_is_an_upper_bound() {
    let gz = tmp("sessions.csv.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&std::fs::read(fixture()).unwrap()).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let run = |policy: &str| {
        let o = scg(&[
            "ev",
            "evaluate",
            "--sessions",
            gz.to_str().unwrap(),
            "--policy",
            policy,
            "--site-limit-kw",
            "20",
            "--step-minutes",
            "15",
            "--from",
            "2019-09-04",
            "--to",
            "2019-09-05",
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let off = run("offline-optimal");
    let edf = run("edf");
    let a = off["energy_delivered_kwh"].as_f64().unwrap();
    let b = edf["energy_delivered_kwh"].as_f64().unwrap();
    // Interior-point tolerance: 1e-4 relative.
    assert!(b <= a * (1.0 + 1e-4), "edf {b} > optimum {a}");
}

#[test]
fn bad_file_names_the_line() {
    let bad = tmp("bad.csv");
    let text = std::fs::read_to_string(fixture()).unwrap();
    let mut lines: Vec<String> = text.lines().take(5).map(String::from).collect();
    lines[3] = lines[3].replacen(",", ",oops,", 1);
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let o = scg(&[
        "ev",
        "evaluate",
        "--sessions",
        bad.to_str().unwrap(),
        "--policy",
        "fcfs",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.csv") && err.contains("line 4"), "{err}");
    let o = scg(&[
        "ev",
        "evaluate",
        "--sessions",
        fixture().to_str().unwrap(),
        "--policy",
        "nope",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown policy `nope`"));
}

#[test]
fn habits_reports_mae_and_coverage() {
    let f = fixture();
    let o = scg(&["ev", "habits", "--sessions", f.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["sessions_scored"].as_u64().unwrap() > 200);
    let cov = v["stay_low_coverage_pct"].as_f64().unwrap();
    assert!((60.0..=100.0).contains(&cov), "{cov}");
}
