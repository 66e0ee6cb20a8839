//! `scg optimize` end to end on a reduced search space: ranked outputs, the winner's scenario,
//! and the search's fast NPC equal to the full simulation of the winner.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scg-opt-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn scg(args: &[&str], dir: &PathBuf) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn optimize_ranks_by_npc_and_the_winner_simulates_to_the_same_npc() {
    let dir = tempdir("rank");
    let default = String::from_utf8(scg(&["scenario", "default"], &dir).stdout).unwrap();
    let small = default
        .replace("pv_kwp = [0.0, 20.0, 40.0, 62.7]", "pv_kwp = [0.0, 40.0]")
        .replace(
            "battery_kwh = [0.0, 50.0, 100.0]",
            "battery_kwh = [0.0, 100.0]",
        )
        .replace("pv_kwp = [0.0, 9.0, 18.5]", "pv_kwp = [18.5]")
        .replace("pv_kwp = [0.0, 20.0, 40.8]", "pv_kwp = [40.8]")
        .replace("pv_kwp = [0.0, 110.0, 220.0, 334.4]", "pv_kwp = [334.4]")
        .replace(
            "battery_kwh = [0.0, 100.0, 200.0]",
            "battery_kwh = [0.0, 200.0]",
        )
        .replace(
            "pv_kwp = [0.0, 260.0, 520.0, 783.6]",
            "pv_kwp = [520.0, 783.6]",
        )
        .replace("grid_connected = [true]", "grid_connected = [true, false]")
        // The sizing search does not run the home agents (ARCHITECTURE: `scg optimize`);
        // unmanaged devices leave the HOMER load as it is, so search and simulation agree.
        .replace(
            "dwellings = 30\nmanaged = true",
            "dwellings = 30\nmanaged = false",
        );
    std::fs::write(dir.join("small.toml"), small).unwrap();
    let o = scg(&["optimize", "small.toml", "--out", "opt", "--quiet"], &dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let csv = std::fs::read_to_string(dir.join("opt/optimize.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let npc_col = header.iter().position(|h| *h == "npc_eur").unwrap();
    let npcs: Vec<f64> = rows.iter().map(|r| r[npc_col].parse().unwrap()).collect();
    assert!(
        npcs.windows(2).all(|w| w[0] <= w[1]),
        "ranked cheapest first"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("opt/optimize.json")).unwrap()).unwrap();
    // 2·2 × 1 × 1 × 2 × 2·2 designs × 2 grid options.
    assert_eq!(json["stats"]["configurations_total"], 4 * 2 * 4 * 2);
    let evaluated = json["stats"]["configurations_evaluated"].as_u64().unwrap();
    let infeasible = json["stats"]["configurations_infeasible"].as_u64().unwrap();
    assert_eq!(evaluated, 64);
    assert_eq!(rows.len() as u64, evaluated - infeasible);
    assert!(
        infeasible > 0,
        "an islanded community without enough storage leaves load unmet"
    );
    let best = json["top"][0]["npc_eur"].as_f64().unwrap();
    // What the search does not replay exactly is stated: the EV agents' plans (every built-in
    // prosumer has a fleet); the home agents are unmanaged here, so not them.
    let not_exact = json["not_exact"].as_array().unwrap();
    assert_eq!(not_exact.len(), 1, "{not_exact:?}");
    assert!(not_exact[0].as_str().unwrap().starts_with("EV agents"));

    // The winner's full simulation (summary.json) gives the same NPC as the search's replay.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("opt/summary.json")).unwrap()).unwrap();
    let simulated = summary["community"]["npc_eur"].as_f64().unwrap();
    assert!(
        (simulated - best).abs() <= 1e-6 * best,
        "search {best} vs simulation {simulated}"
    );
    // And the written scenario reproduces it with `scg simulate`.
    let o = scg(
        &[
            "simulate",
            "opt/scenario.toml",
            "--out",
            "again",
            "--quiet",
            "--no-ledger",
        ],
        &dir,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("again/summary.json")).unwrap()).unwrap();
    assert_eq!(
        again["community"]["npc_eur"],
        summary["community"]["npc_eur"]
    );
    let html = std::fs::read_to_string(dir.join("opt/report.html")).unwrap();
    assert!(html.contains("Sizing search"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--memory-budget-mib` is checked before the search, as in `simulate`.
#[test]
fn optimize_refuses_a_run_above_the_memory_budget() {
    let dir = tempdir("budget");
    let out = scg(
        &["optimize", "--out", "o", "--memory-budget-mib", "1"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("above the memory budget of 1 MiB"), "{err}");
    assert!(!dir.join("o").join("optimize.csv").exists());
}
