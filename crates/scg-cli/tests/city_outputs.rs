//! The city layout of `scg simulate`'s outputs (docs/summary.md "City layout"): a generated
//! 60-member city (at or above `scg_report::city::CITY_LAYOUT_MIN_MEMBERS`, so `--layout auto`
//! picks it) writes `members.parquet` and `community.csv` instead of the wide
//! `timeseries.csv`/`.parquet`; the Parquet file (streamed while the year ran: `--no-ledger`)
//! reads back in Rust with one row per member and step, in row groups of steps, every row's
//! energy balance closes, and both files sum to summary.json's totals; the
//! report shows distributions instead of a section per member.
#![allow(clippy::unwrap_used)]

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MEMBERS: usize = 60;
const STEPS: usize = 8760;

fn scg(args: &[&str], dir: &Path) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scg {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The arguments of `scg scenario city`.
struct CityArgs {
    members: usize,
    evs: usize,
    seed: u64,
}

/// `scg scenario city` with `args`, written to `file` in `dir`.
fn city_scenario(dir: &Path, args: CityArgs, file: &str) {
    let (members, evs, seed) = (
        args.members.to_string(),
        args.evs.to_string(),
        args.seed.to_string(),
    );
    scg(
        &[
            "scenario",
            "city",
            "--members",
            &members,
            "--evs",
            &evs,
            "--seed",
            &seed,
            "-o",
            file,
        ],
        dir,
    );
}

fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("city-outputs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        "{what}: {a} vs {b}"
    );
}

/// Per member: the yearly sum (kWh at 60-minute steps) of each flow column, in file order.
type Sums = BTreeMap<String, Vec<f64>>;

fn read_members(path: &Path) -> (Vec<String>, Sums, Vec<String>) {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.file_metadata().num_rows() as usize, MEMBERS * STEPS);
    let schema = meta.file_metadata().schema_descr();
    let names: Vec<String> = (0..schema.num_columns())
        .map(|i| schema.column(i).name().to_owned())
        .collect();
    assert_eq!(&names[..3], ["member", "timestamp", "timestamp_local"]);
    assert_eq!(names.last().unwrap(), "battery_soc_pct");
    let flows = &names[3..names.len() - 1];
    let col = |n: &str| flows.iter().position(|f| f == n).unwrap();
    let uses = [
        "load_kw",
        "ev_charge_kw",
        "swap_kw",
        "battery_charge_kw",
        "p2p_export_kw",
        "grid_export_kw",
        "excess_kw",
    ]
    .map(col);
    let sources = [
        "pv_kw",
        "wind_kw",
        "v2g_kw",
        "battery_discharge_kw",
        "p2p_import_kw",
        "grid_import_kw",
        "unmet_kw",
    ]
    .map(col);
    // Row groups of consecutive steps; inside one, each member's steps in a run.
    assert!(
        meta.num_row_groups() >= 2,
        "{} row groups",
        meta.num_row_groups()
    );
    let mut order: Vec<String> = Vec::new();
    let mut sums: Sums = BTreeMap::new();
    let mut first_ms: Option<i64> = None;
    let mut last_ms: BTreeMap<String, i64> = BTreeMap::new();
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let id = row.get_string(0).unwrap().clone();
        if !order.contains(&id) {
            order.push(id.clone());
        }
        let ms = row.get_timestamp_millis(1).unwrap();
        first_ms.get_or_insert(ms);
        if let Some(last) = last_ms.insert(id.clone(), ms) {
            assert_eq!(ms - last, 3_600_000, "{id}: steps out of order");
        }
        let values: Vec<f64> = (0..flows.len())
            .map(|i| row.get_double(3 + i).unwrap())
            .collect();
        let (u, s): (f64, f64) = (
            uses.iter().map(|i| values[*i]).sum(),
            sources.iter().map(|i| values[*i]).sum(),
        );
        assert!(
            (u - s).abs() <= 1e-6 * u.abs().max(1.0),
            "{id} at {ms}: uses {u} kW, sources {s} kW"
        );
        let acc = sums.entry(id).or_insert_with(|| vec![0.0; flows.len()]);
        for (a, v) in acc.iter_mut().zip(&values) {
            *a += v;
        }
    }
    // 2007-01-01T00:00 local standard time (UTC+01:00) is 2006-12-31T23:00Z.
    assert_eq!(first_ms, Some(1_167_606_000_000));
    (order, sums, flows.to_vec())
}

#[test]
fn a_city_gets_members_parquet_community_csv_and_distributions_that_sum_to_the_summary() {
    let dir = tempdir("auto");
    city_scenario(
        &dir,
        CityArgs {
            members: MEMBERS,
            evs: 0,
            seed: 1,
        },
        "city.toml",
    );
    scg(
        &[
            "simulate",
            "city.toml",
            "--no-ledger",
            "--quiet",
            "--out",
            "out",
        ],
        &dir,
    );
    let out = dir.join("out");
    for absent in ["timeseries.csv", "timeseries.parquet"] {
        assert!(
            !out.join(absent).exists(),
            "{absent} written in the city layout"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let ids: Vec<String> = summary["scenario"]["prosumer_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), MEMBERS);

    let (order, sums, flows) = read_members(&out.join("members.parquet"));
    assert_eq!(order, ids, "members in scenario order within a row group");
    let pick = |name: &str| flows.iter().position(|f| f == name).unwrap();
    let keys = [
        ("pv_kw", "pv_energy_kwh"),
        ("grid_import_kw", "grid_import_kwh"),
        ("grid_export_kw", "grid_export_kwh"),
        ("p2p_import_kw", "p2p_import_kwh"),
        ("p2p_export_kw", "p2p_export_kwh"),
        ("battery_charge_kw", "battery_charge_kwh"),
        ("battery_discharge_kw", "battery_discharge_kwh"),
    ];
    let mut community = vec![0.0; flows.len()];
    for id in &ids {
        let p = &summary["prosumers"][id];
        let s = &sums[id];
        close(
            s[pick("load_kw")],
            p["load"]["energy_kwh"].as_f64().unwrap(),
            id,
        );
        for (column, key) in keys {
            close(
                s[pick(column)],
                p[key].as_f64().unwrap(),
                &format!("{id} {key}"),
            );
        }
        for (c, v) in community.iter_mut().zip(s) {
            *c += v;
        }
    }

    // community.csv: the members' sums, step by step; its yearly sums are the community's.
    let csv = std::fs::read_to_string(out.join("community.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "timestamp");
    assert_eq!(&header[1..=flows.len()], &flows[..]);
    assert_eq!(*header.last().unwrap(), "grid_at_peak");
    let mut csv_sums = vec![0.0; flows.len()];
    let mut rows = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{line}");
        for (s, c) in csv_sums.iter_mut().zip(&cells[1..=flows.len()]) {
            *s += c.parse::<f64>().unwrap();
        }
        rows += 1;
    }
    assert_eq!(rows, STEPS);
    let c = &summary["community"];
    for (column, key) in keys {
        let i = pick(column);
        close(csv_sums[i], community[i], column);
        if !column.starts_with("p2p") {
            close(
                csv_sums[i],
                c[key].as_f64().unwrap(),
                &format!("community {key}"),
            );
        }
    }

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<h2 id=\"members\">Members <small>(60)</small></h2>"));
    assert!(html.contains("<th>p5</th><th>p25</th><th>p50</th><th>p75</th><th>p95</th>"));
    assert!(html.contains("Top and bottom 10 members by net bill"));
    assert!(html.contains("Top and bottom 10 members by self-consumption"));
    assert!(
        !html.contains(&format!("<h2 id=\"{}\">", ids[0])),
        "no section per member"
    );
}

#[test]
fn small_communities_stay_wide_and_layout_city_forces_the_city_files() {
    let dir = tempdir("wide");
    city_scenario(
        &dir,
        CityArgs {
            members: 3,
            evs: 0,
            seed: 1,
        },
        "c.toml",
    );
    scg(
        &[
            "simulate",
            "c.toml",
            "--no-ledger",
            "--quiet",
            "--layout",
            "city",
            "--out",
            "city",
        ],
        &dir,
    );
    scg(
        &[
            "simulate",
            "c.toml",
            "--no-ledger",
            "--quiet",
            "--out",
            "wide",
        ],
        &dir,
    );
    for f in ["members.parquet", "community.csv"] {
        assert!(dir.join("city").join(f).is_file(), "{f}");
        assert!(!dir.join("wide").join(f).exists(), "{f}");
    }
    for f in ["timeseries.csv", "timeseries.parquet"] {
        assert!(dir.join("wide").join(f).is_file(), "{f}");
        assert!(!dir.join("city").join(f).exists(), "{f}");
    }
    // The same run in either layout: the same summary.
    assert_eq!(
        std::fs::read(dir.join("city/summary.json")).unwrap(),
        std::fs::read(dir.join("wide/summary.json")).unwrap()
    );
}

/// Same bytes whatever the number of threads: a 200-member, 100-EV city at 15-minute steps,
/// streamed (`--no-ledger`), with one rayon thread and with two.
#[test]
fn a_streamed_city_is_the_same_bytes_on_one_thread_and_two() {
    let dir = tempdir("threads");
    city_scenario(
        &dir,
        CityArgs {
            members: 200,
            evs: 100,
            seed: 3,
        },
        "c.toml",
    );
    let toml = std::fs::read_to_string(dir.join("c.toml")).unwrap();
    std::fs::write(
        dir.join("c.toml"),
        toml.replace("step_minutes = 60", "step_minutes = 15"),
    )
    .unwrap();
    for threads in ["1", "2"] {
        let o = Command::new(env!("CARGO_BIN_EXE_scg"))
            .args(["simulate", "c.toml", "--no-ledger", "--quiet", "--out"])
            .arg(format!("t{threads}"))
            .env("RAYON_NUM_THREADS", threads)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for f in [
        "members.parquet",
        "community.csv",
        "summary.json",
        "report.html",
    ] {
        let (a, b) = (
            std::fs::read(dir.join("t1").join(f)).unwrap(),
            std::fs::read(dir.join("t2").join(f)).unwrap(),
        );
        assert!(a == b, "{f} differs between 1 and 2 threads");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A city with its ledger settles it while the year runs (the members' blocks go to the
/// members.parquet encoder and to the settlement): the same summary.json, ledger figures and
/// state root included, as the same year kept in the wide layout and settled afterwards; the
/// same members.parquet as the run without a ledger; and `scg ledger verify` replays it.
#[test]
fn a_city_settled_while_it_runs_has_the_kept_years_ledger() {
    let dir = tempdir("ledger");
    city_scenario(
        &dir,
        CityArgs {
            members: MEMBERS,
            evs: 12,
            seed: 2,
        },
        "c.toml",
    );
    for (out, extra) in [
        ("city", &["--layout", "city"][..]),
        ("wide", &["--layout", "wide"][..]),
        ("none", &["--no-ledger"][..]),
    ] {
        let mut args = vec!["simulate", "c.toml", "--quiet", "--out", out];
        args.extend_from_slice(extra);
        scg(&args, &dir);
    }
    let read = |p: &str| std::fs::read(dir.join(p)).unwrap();
    let summary = read("city/summary.json");
    assert_eq!(summary, read("wide/summary.json"));
    let json: serde_json::Value = serde_json::from_slice(&summary).unwrap();
    assert!(
        json["p2p_trades_settled"].as_u64().unwrap() > 0,
        "trades settled"
    );
    assert!(
        json["ledger_state_root"]
            .as_str()
            .is_some_and(|r| r.len() == 64)
    );
    assert!(
        read("city/members.parquet") == read("none/members.parquet"),
        "members.parquet differs with the ledger"
    );
    let verify = scg(&["ledger", "verify", "city/ledger"], &dir);
    let text = String::from_utf8_lossy(&verify.stdout);
    let root = json["ledger_state_root"].as_str().unwrap();
    assert!(text.contains(root), "verify: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}
