//! Hostile inputs end to end (issue 11): each case exits with code 1, names the field or file,
//! writes nothing to `--out`, and never hangs (every run has a deadline) or echoes file content.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run `scg` in `dir`, killing it after 120 s (a FIFO or a bomb must never hang a read).
fn scg_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("scg {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scg(args: &[&str], dir: &Path) -> Output {
    scg_env(args, dir, &[])
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scg-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn default_toml() -> String {
    let o = scg(&["scenario", "default"], &std::env::temp_dir());
    String::from_utf8(o.stdout).unwrap()
}

/// The default scenario with the first occurrence of `from` replaced by `to`.
fn edited(from: &str, to: &str) -> String {
    let text = default_toml();
    assert!(text.contains(from), "{from:?} not in the default scenario");
    text.replacen(from, to, 1)
}

/// `scg simulate` and `scg scenario check` both refuse `toml` with exit code 1 and every
/// `needles` in the message, and nothing is written to `--out`.
fn refused(name: &str, toml: &str, needles: &[&str]) {
    let dir = tempdir(name);
    std::fs::write(dir.join("s.toml"), toml).unwrap();
    refused_in(&dir, needles);
    let _ = std::fs::remove_dir_all(&dir);
}

fn refused_in(dir: &Path, needles: &[&str]) {
    let o = scg(&["simulate", "s.toml", "--out", "out", "--quiet"], dir);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    for n in needles {
        assert!(e.contains(n), "{n:?} missing from:\n{e}");
    }
    assert!(!dir.join("out").exists(), "nothing may be written to --out");
    let c = scg(&["scenario", "check", "s.toml"], dir);
    let ce = stderr(&c);
    assert_eq!(c.status.code(), Some(1), "{ce}");
    for n in needles {
        assert!(ce.contains(n), "check: {n:?} missing from:\n{ce}");
    }
}

#[test]
fn pv_lifetime_of_1e_minus_300_years_is_refused() {
    refused(
        "pv-life",
        &edited("lifetime_years = 25.0 }", "lifetime_years = 1e-300 }"),
        &[
            "prosumers[0].pv[0].costs.lifetime_years",
            "between 1 and 100",
            "1e-300",
        ],
    );
}

#[test]
fn a_hundred_thousand_ev_residents_are_refused() {
    refused(
        "residents",
        &edited("residents = 12", "residents = 100000"),
        &["prosumers[0].ev.residents", "at most 5000", "100000"],
    );
}

#[test]
fn four_billion_swap_packs_are_refused() {
    refused(
        "packs",
        &edited("packs = 10", "packs = 4000000000"),
        &["ev.swap_station.packs", "between 1 and 10000", "4000000000"],
    );
}

#[test]
fn u32_max_wind_turbines_are_refused() {
    refused(
        "turbines",
        &edited(
            "hub_height_m = 24.0\ncount = 1",
            "hub_height_m = 24.0\ncount = 4294967295",
        ),
        &[
            "wind_turbines[0].count",
            "between 1 and 10000",
            "4294967295",
        ],
    );
}

#[test]
fn model_year_minus_one_is_refused() {
    refused(
        "model-year",
        &edited("model_year = \"homer\"", "model_year = -1"),
        &["time.model_year", "between 1900 and 2100", "-1"],
    );
}

#[test]
fn prosumer_id_community_is_refused() {
    refused(
        "community-id",
        &edited("id = \"apartment\"", "id = \"community\""),
        &["prosumers[0].id", "reserved"],
    );
}

#[test]
fn a_zonal_price_file_of_minus_1e300_is_refused_naming_file_and_line() {
    let dir = tempdir("zonal");
    let mut prices: Vec<String> = (0..8760).map(|_| "100".to_owned()).collect();
    prices[41] = "-1e300".into();
    std::fs::write(dir.join("nord.csv"), prices.join("\n")).unwrap();
    let toml = edited(
        "zonal_price_eur_per_mwh = 110.0",
        "zonal_price_eur_per_mwh = 110.0\nzonal_price_file = \"nord.csv\"",
    );
    std::fs::write(dir.join("s.toml"), toml).unwrap();
    refused_in(&dir, &["nord.csv:42", "between -10000 and 10000", "-1e300"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dev_zero_is_refused_as_scenario_sessions_and_orders() {
    let dir = tempdir("devzero");
    let o = scg(&["simulate", "/dev/zero", "--out", "out"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/dev/zero: is a device"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("out").exists());
    let o = scg(
        &[
            "ev",
            "evaluate",
            "--sessions",
            "/dev/zero",
            "--policy",
            "edf",
            "--out",
            "o.json",
        ],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/dev/zero: is a device"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("o.json").exists());
    let o = scg(&["market", "clear", "--orders", "/dev/zero"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/dev/zero: is a device"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fifo_never_blocks_a_read() {
    let dir = tempdir("fifo");
    let made = Command::new("mkfifo")
        .arg(dir.join("office.csv"))
        .status()
        .unwrap();
    assert!(made.success());
    let toml = edited(
        "type = \"synthetic\"\nprofile = \"small_office\"\nday_to_day_variability_pct = 7.946\ntimestep_variability_pct = 7.946",
        "type = \"time_series\"\nfile = \"office.csv\"",
    );
    std::fs::write(dir.join("s.toml"), toml).unwrap();
    refused_in(&dir, &["office.csv: is a FIFO"]);
    let o = scg(
        &["ev", "habits", "--sessions", "office.csv", "--json"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("office.csv: is a FIFO"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// About 2 MB of gzip that inflates to 2 GiB: 32 gzip members of 64 MiB of zeros each.
fn gzip_bomb() -> Vec<u8> {
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b'0'; 1 << 20];
    for _ in 0..64 {
        member.write_all(&zeros).unwrap();
    }
    let member = member.finish().unwrap();
    let bomb: Vec<u8> = std::iter::repeat_n(&member, 32)
        .flatten()
        .copied()
        .collect();
    assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
    bomb
}

#[test]
fn a_gzip_bomb_stops_at_the_decompressed_cap() {
    let dir = tempdir("bomb");
    std::fs::write(dir.join("sessions.csv.gz"), gzip_bomb()).unwrap();
    let o = scg(
        &[
            "ev",
            "evaluate",
            "--sessions",
            "sessions.csv.gz",
            "--policy",
            "edf",
            "--out",
            "o.json",
        ],
        &dir,
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("sessions.csv.gz: gzip: inflates to more than 268435456 bytes"),
        "{e}"
    );
    assert!(!dir.join("o.json").exists());
    // The same bomb as a scenario's load file.
    std::fs::rename(dir.join("sessions.csv.gz"), dir.join("office.csv")).unwrap();
    let toml = edited(
        "type = \"synthetic\"\nprofile = \"small_office\"\nday_to_day_variability_pct = 7.946\ntimestep_variability_pct = 7.946",
        "type = \"time_series\"\nfile = \"office.csv\"",
    );
    std::fs::write(dir.join("s.toml"), toml).unwrap();
    let o = scg(&["simulate", "s.toml", "--out", "out"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("office.csv: gzip: inflates to more than"));
    assert!(!dir.join("out").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn scenario_paths_cannot_leave_the_scenario_directory_or_leak_content() {
    let dir = tempdir("escape");
    std::fs::create_dir_all(dir.join("scen")).unwrap();
    std::fs::write(dir.join("secret.csv"), "TOP-SECRET-VALUE\n").unwrap();
    for path in [
        "../secret.csv",
        "../../../../etc/passwd",
        "/proc/self/environ",
    ] {
        let toml = edited(
            "type = \"synthetic\"\nprofile = \"small_office\"\nday_to_day_variability_pct = 7.946\ntimestep_variability_pct = 7.946",
            &format!("type = \"time_series\"\nfile = \"{path}\""),
        );
        std::fs::write(dir.join("scen/s.toml"), toml).unwrap();
        let o = scg_env(
            &["simulate", "s.toml", "--out", "out"],
            &dir.join("scen"),
            &[("SCG_TEST_SECRET", "SECRET-IN-ENVIRONMENT")],
        );
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(e.contains("inside its own directory"), "{path}: {e}");
        for leak in ["TOP-SECRET", "root:", "SECRET-IN-ENVIRONMENT"] {
            assert!(!e.contains(leak), "{path} leaked {leak}: {e}");
        }
        assert!(!dir.join("scen/out").exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn proc_self_environ_on_the_command_line_is_not_echoed() {
    let dir = tempdir("environ");
    let o = scg_env(
        &["market", "clear", "--orders", "/proc/self/environ"],
        &dir,
        &[("SCG_TEST_SECRET", "SECRET-IN-ENVIRONMENT")],
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("/proc/self/environ"), "{e}");
    assert!(!e.contains("SECRET-IN-ENVIRONMENT"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_far_future_acn_departure_names_the_line() {
    let dir = tempdir("acn");
    let header = "arrival,departure,requested_energy (kWh),delivered_energy (kWh),station_id,session_id,estimated_departure,claimed";
    let ok = "2019-05-01 08:00:00-07:00,2019-05-01 17:00:00-07:00,10,8,s1,a,,False";
    let far = "2019-05-02 08:00:00-07:00,9999-12-31 17:00:00-07:00,10,8,s1,b,,False";
    std::fs::write(dir.join("s.csv"), format!("{header}\n{ok}\n{far}\n")).unwrap();
    let o = scg(
        &[
            "ev",
            "evaluate",
            "--sessions",
            "s.csv",
            "--policy",
            "edf",
            "--out",
            "o.json",
        ],
        &dir,
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("s.csv") && e.contains("line 3"), "{e}");
    assert!(e.contains("at most 20160 minutes (14 days)"), "{e}");
    assert!(!dir.join("o.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_self_trade_is_refused_by_market_clear() {
    let dir = tempdir("self-trade");
    let book = "id,side,prosumer,interval,energy_wh,price_eur_per_mwh,source\n\
                b1,bid,school,0,1000,200,\n\
                o1,offer,school,0,1000,50,pv\n\
                b2,bid,office,0,500,150,\n";
    std::fs::write(dir.join("orders.csv"), book).unwrap();
    let o = scg(&["market", "clear", "--orders", "orders.csv"], &dir);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("orders.csv") && e.contains("self-trade"), "{e}");
    assert!(e.contains("\"b1\"") && e.contains("\"o1\""), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn scenario_check_reads_every_file_and_reports_every_problem_at_once() {
    let dir = tempdir("check-all");
    let toml = edited("model_year = \"homer\"", "model_year = -1")
        .replacen("residents = 12", "residents = 100000", 1)
        .replacen(
            "type = \"synthetic\"\nprofile = \"small_office\"\nday_to_day_variability_pct = 7.946\ntimestep_variability_pct = 7.946",
            "type = \"time_series\"\nfile = \"missing.csv\"",
            1,
        );
    std::fs::write(dir.join("s.toml"), toml).unwrap();
    let o = scg(&["scenario", "check", "s.toml"], &dir);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    for n in [
        "time.model_year",
        "prosumers[0].ev.residents",
        "missing.csv",
    ] {
        assert!(e.contains(n), "{n:?} missing from:\n{e}");
    }
    // A good scenario: ok, with the estimate printed.
    std::fs::write(dir.join("s.toml"), default_toml()).unwrap();
    let o = scg(&["scenario", "check", "s.toml"], &dir);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("estimated run:") && out.contains("MiB peak memory"),
        "{out}"
    );
    // Above a (tiny) budget, check and simulate refuse it.
    let o = scg(
        &["scenario", "check", "s.toml", "--memory-budget-mib", "1"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("above the memory budget of 1 MiB"));
    let o = scg(
        &[
            "simulate",
            "s.toml",
            "--memory-budget-mib",
            "1",
            "--out",
            "out",
        ],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.join("out").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
