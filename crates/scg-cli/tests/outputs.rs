//! Output directories as transactions, end to end: an input inside `--out` is refused, a re-run
//! replaces the whole directory, two runs cannot interleave, kill -9 during a re-run leaves the
//! old result or the new one (never a mix), and a full disk leaves the previous result whole.
//!
//! Runs use a two-prosumer scenario without EVs (the built-in one cut down) to stay fast.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scg(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn spawn(args: &[&str], dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("outputs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The built-in scenario with only the restaurant and the office, without their EVs.
fn small_scenario() -> String {
    let o = scg(&["scenario", "default"], &std::env::temp_dir());
    let full = String::from_utf8(o.stdout).unwrap();
    let mut parts = full.split("[[prosumers]]\n");
    let mut out = parts.next().unwrap().to_string();
    for part in parts {
        if !(part.starts_with("id = \"restaurant\"") || part.starts_with("id = \"office\"")) {
            continue;
        }
        out.push_str("[[prosumers]]\n");
        let mut skipping = false;
        for line in part.lines() {
            if line.starts_with('[') {
                skipping = line == "[prosumers.ev]";
            }
            if !skipping {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

/// The state root `scg ledger verify` prints, or None if it fails.
fn verified_root(ledger: &Path) -> Option<String> {
    let o = scg(
        &["ledger", "verify", ledger.to_str().unwrap()],
        Path::new("."),
    );
    if !o.status.success() {
        return None;
    }
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("\ncomplete"), "{out}");
    out.lines()
        .find_map(|l| l.strip_prefix("state root "))
        .map(str::to_string)
}

/// Names in `dir` other than `keep` (stale temporary or backup directories).
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn an_input_inside_out_is_refused_and_left_alone() {
    let dir = tempdir("input");
    std::fs::create_dir_all(dir.join("d")).unwrap();
    let scenario = small_scenario();
    std::fs::write(dir.join("d/scenario.toml"), &scenario).unwrap();
    let o = scg(
        &["simulate", "d/scenario.toml", "--out", "d", "--no-ledger"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--out d contains d/scenario.toml, an input of this run"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("d/scenario.toml")).unwrap(),
        scenario
    );

    // A load file the scenario names, inside --out, is refused too (named as read).
    let series: String = (0..8760).map(|h| format!("{}\n", 10 + h % 24)).collect();
    std::fs::create_dir_all(dir.join("res")).unwrap();
    std::fs::write(dir.join("res/timeseries.csv"), &series).unwrap();
    let with_file = scenario.replace(
        "type = \"synthetic\"\nprofile = \"small_office\"\nday_to_day_variability_pct = 7.946\ntimestep_variability_pct = 7.946",
        "type = \"time_series\"\nfile = \"res/timeseries.csv\"\nscaled_average_kwh_per_day = 240.0",
    );
    assert_ne!(with_file, scenario);
    std::fs::write(dir.join("s.toml"), with_file).unwrap();
    let o = scg(&["simulate", "s.toml", "--out", "res", "--no-ledger"], &dir);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("res/timeseries.csv, an input of this run"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("res/timeseries.csv")).unwrap(),
        series
    );

    // A directory of the user's own files is never replaced; `.` is refused.
    std::fs::create_dir_all(dir.join("mine")).unwrap();
    std::fs::write(dir.join("mine/notes.txt"), "keep").unwrap();
    let o = scg(
        &["simulate", "s.toml", "--out", "mine", "--no-ledger"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not an scg output directory"),
        "{}",
        text(&o)
    );
    assert!(dir.join("mine/notes.txt").is_file());
    let o = scg(&["simulate", "s.toml", "--out", ".", "--no-ledger"], &dir);
    assert_eq!(o.status.code(), Some(1));
    // --out that is a file is found before any work.
    std::fs::write(dir.join("afile"), "x").unwrap();
    let o = scg(
        &["simulate", "s.toml", "--out", "afile", "--no-ledger"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--out afile exists and is not a directory"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_rerun_replaces_the_whole_directory_and_a_held_lock_stops_a_second_run() {
    let dir = tempdir("rerun");
    std::fs::write(dir.join("s.toml"), small_scenario()).unwrap();
    let o = scg(&["simulate", "s.toml", "--out", "o", "--quiet"], &dir);
    assert!(o.status.success(), "{}", text(&o));
    let root = summary(&dir.join("o"))["ledger_state_root"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(verified_root(&dir.join("o/ledger")), Some(root));
    assert!(dir.join("o/.scg-output").is_file());

    let o = scg(
        &["simulate", "s.toml", "--out", "o", "--quiet", "--no-ledger"],
        &dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !dir.join("o/ledger").exists(),
        "a --no-ledger re-run leaves no earlier ledger"
    );
    assert!(summary(&dir.join("o"))["ledger_state_root"].is_null());
    assert_eq!(
        leftovers(&dir, &["s.toml", "o", ".o.lock"]),
        Vec::<String>::new()
    );

    // Another run (here: this test) holds the lock: the run fails at once, naming the lock.
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(dir.join(".o.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let before = std::fs::read(dir.join("o/summary.json")).unwrap();
    let o = scg(&["simulate", "s.toml", "--out", "o", "--no-ledger"], &dir);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is being written by another scg run") && err.contains(".o.lock"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("o/summary.json")).unwrap(), before);
    drop(lock);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_concurrent_runs_into_one_directory_never_mix() {
    let dir = tempdir("concurrent");
    std::fs::write(dir.join("s.toml"), small_scenario()).unwrap();
    let first = spawn(
        &["simulate", "s.toml", "--out", "o", "--seed", "1", "--quiet"],
        &dir,
    );
    // Wait until the first run holds the lock (its temporary directory exists).
    let pid = first.id();
    let tmp = dir.join(format!(".o.tmp-{pid}"));
    let waited = Instant::now();
    while !tmp.exists() && waited.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(tmp.exists(), "the first run never started writing");
    let second = scg(
        &["simulate", "s.toml", "--out", "o", "--seed", "2", "--quiet"],
        &dir,
    );
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let s = summary(&dir.join("o"));
    if second.status.success() {
        // Only possible if the first run had already finished: the second then replaced it.
        assert_eq!(s["seed"], 2);
    } else {
        assert_eq!(second.status.code(), Some(1), "{}", text(&second));
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(
            err.contains(&format!("another scg run (pid {pid})")) && err.contains(".o.lock"),
            "{err}"
        );
        assert_eq!(s["seed"], 1, "the result is the run that held the lock");
    }
    assert_eq!(
        verified_root(&dir.join("o/ledger")).as_deref(),
        s["ledger_state_root"].as_str(),
        "summary.json and the ledger come from the same run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// kill -9 at seeded random points during re-runs over a complete directory: each time the
/// directory holds the old complete result or the new complete one, whose summary.json names
/// the ledger's own verified state root.
#[test]
fn kill_9_during_a_rerun_leaves_the_old_result_or_the_new_one() {
    let dir = tempdir("kill");
    std::fs::write(dir.join("s.toml"), small_scenario()).unwrap();
    let started = Instant::now();
    let o = scg(
        &["simulate", "s.toml", "--out", "o", "--seed", "0", "--quiet"],
        &dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let run_us = started.elapsed().as_micros() as u64;
    let mut rng: u64 = 0x5eed_0012;
    let (mut old, mut new) = (0, 0);
    for round in 1..=6u64 {
        let before = summary(&dir.join("o"));
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // Anywhere from the start to a little past a typical run.
        let delay_us = (rng >> 20) % (run_us + run_us / 4);
        let seed = round.to_string();
        let mut child = spawn(
            &[
                "simulate", "s.toml", "--out", "o", "--seed", &seed, "--quiet",
            ],
            &dir,
        );
        std::thread::sleep(Duration::from_micros(delay_us));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let after = summary(&dir.join("o"));
        let root = verified_root(&dir.join("o/ledger"))
            .unwrap_or_else(|| panic!("round {round}: the ledger in o does not verify"));
        assert_eq!(
            after["ledger_state_root"].as_str(),
            Some(root.as_str()),
            "round {round}: summary.json and ledger from different runs"
        );
        if after["seed"] == round {
            new += 1;
        } else {
            assert_eq!(
                after, before,
                "round {round}: neither the old nor the new result"
            );
            old += 1;
        }
    }
    eprintln!("kill -9: {old} rounds kept the old result, {new} completed the new one");
    // The next run cleans up whatever the killed ones left.
    let o = scg(
        &["simulate", "s.toml", "--out", "o", "--quiet", "--no-ledger"],
        &dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        leftovers(&dir, &["s.toml", "o", ".o.lock"]),
        Vec::<String>::new()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Disk space the files under `dir` take (allocated blocks: the ledger file is sparse).
fn tree_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                tree_bytes(&e.path())
            } else {
                e.metadata().unwrap().blocks() * 512
            }
        })
        .sum()
}

/// A full disk without mounting anything: the write hook fails like ENOSPC; the error names
/// the file and the previous result stays whole.
#[test]
fn a_failed_write_leaves_the_previous_result_whole() {
    let dir = tempdir("nospace-hook");
    std::fs::write(dir.join("s.toml"), small_scenario()).unwrap();
    let o = scg(
        &["simulate", "s.toml", "--out", "o", "--quiet", "--no-ledger"],
        &dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(dir.join("o/summary.json")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_scg"))
        .args([
            "simulate",
            "s.toml",
            "--out",
            "o",
            "--seed",
            "5",
            "--no-ledger",
        ])
        .env("SCG_TEST_FAIL_WRITES_AFTER_BYTES", "1000")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: writing ")
            && err.contains(".o.tmp-")
            && err.contains("summary.json: No space left on device"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("o/summary.json")).unwrap(), before);
    assert_eq!(
        leftovers(&dir, &["s.toml", "o", ".o.lock"]),
        Vec::<String>::new()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real full disk: a small tmpfs that holds one result but not two. Needs `mount` (root);
/// skipped with a printed reason where it is not permitted.
#[test]
fn a_full_disk_leaves_the_previous_result_whole() {
    let dir = tempdir("nospace-tmpfs");
    std::fs::write(dir.join("s.toml"), small_scenario()).unwrap();
    // Size of one result, measured on the normal disk.
    let o = scg(&["simulate", "s.toml", "--out", "probe", "--quiet"], &dir);
    assert!(o.status.success(), "{}", text(&o));
    let one = tree_bytes(&dir.join("probe"));
    let fs = dir.join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    let size = format!("size={}k", (one + one / 2) / 1024);
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &size, "tmpfs", fs.to_str().unwrap()])
        .output();
    match mount {
        Ok(m) if m.status.success() => {}
        Ok(m) => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here ({}); the full-disk path is covered by a_failed_write_leaves_the_previous_result_whole",
                String::from_utf8_lossy(&m.stderr).trim()
            );
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot run mount ({e})");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    }
    let result = std::panic::catch_unwind(|| {
        let o = scg(
            &[
                "simulate",
                "../s.toml",
                "--out",
                "o",
                "--quiet",
                "--seed",
                "1",
            ],
            &fs,
        );
        assert!(o.status.success(), "{}", text(&o));
        let before = std::fs::read(fs.join("o/summary.json")).unwrap();
        let o = scg(
            &[
                "simulate",
                "../s.toml",
                "--out",
                "o",
                "--quiet",
                "--seed",
                "2",
            ],
            &fs,
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("No space left on device") && err.contains(".o.tmp-"),
            "the error names the file: {err}"
        );
        assert_eq!(std::fs::read(fs.join("o/summary.json")).unwrap(), before);
        let s = summary(&fs.join("o"));
        assert_eq!(
            verified_root(&fs.join("o/ledger")).as_deref(),
            s["ledger_state_root"].as_str()
        );
        assert_eq!(leftovers(&fs, &["o", ".o.lock"]), Vec::<String>::new());
    });
    let _ = Command::new("umount").arg(&fs).status();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
