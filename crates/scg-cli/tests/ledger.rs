//! `scg ledger verify|show` end to end, including the bit-flip tamper test.
#![allow(clippy::unwrap_used)]

use scg_ledger::DeviceType;
use scg_ledger::merkle::to_hex;
use scg_ledger::settlement::{
    CommunityYear, IntervalInput, MeterReading, P2pTrade, SettledYear, derive_key, settle_year,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SEED: u64 = 99;

fn scg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .output()
        .expect("run scg")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Three members, 48 days of hourly intervals with PV, wind, P2P trades: 48 daily blocks.
fn small_chain(dir: &Path) -> SettledYear {
    let members = ["a", "b", "c"];
    let mut intervals = Vec::new();
    for h in 0..48 * 24u64 {
        let sun = if (8..18).contains(&(h % 24)) {
            800 + h * 3
        } else {
            0
        };
        let mut readings = vec![MeterReading {
            member: "b".into(),
            device: DeviceType::SupplyPoint,
            produced_wh: 0,
            consumed_wh: 600 + h,
        }];
        if sun > 0 {
            readings.push(MeterReading {
                member: "a".into(),
                device: DeviceType::Pv,
                produced_wh: sun,
                consumed_wh: 0,
            });
            // What a sells to b leaves through its supply point.
            readings.push(MeterReading {
                member: "a".into(),
                device: DeviceType::SupplyPoint,
                produced_wh: 300,
                consumed_wh: 0,
            });
        }
        readings.push(MeterReading {
            member: "c".into(),
            device: DeviceType::Wind,
            produced_wh: (h * 17) % 500,
            consumed_wh: 0,
        });
        let trades = if sun > 0 {
            vec![P2pTrade {
                buyer: "b".into(),
                seller: "a".into(),
                energy_wh: 300,
                price_base_per_kwh: 100_000_000,
                grid_fee_base_per_kwh: 10_000_000,
            }]
        } else {
            vec![]
        };
        intervals.push(IntervalInput {
            readings,
            trades,
            cer: vec![],
        });
    }
    let year = CommunityYear {
        seed: SEED,
        members: members.iter().map(|m| (*m).to_string()).collect(),
        mint_rate_base_per_wh: 1_000_000,
        start_timestamp_s: 1_167_609_600,
        interval_s: 3_600,
        opening_balance_base: 1_000_000_000,
        treasury_endowment_base: 1_000_000_000_000,
        intervals,
    };
    let settled = settle_year(&year).unwrap();
    scg_ledger::store::store(dir, &settled).unwrap();
    settled
}

/// The "height" and "state root" lines of a successful verify.
fn key_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("height ") || l.starts_with("state root "))
        .map(str::to_string)
        .collect()
}

#[test]
fn verify_prints_height_and_state_root() {
    let dir = tmp("ledger-cli-verify");
    let settled = small_chain(&dir);
    let out = scg(&["ledger", "verify", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        key_lines(&stdout),
        vec![
            "height 48".to_string(),
            format!("state root {}", settled.summary.final_state_root_hex)
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn show_head_account_block_certificate() {
    let dir = tmp("ledger-cli-show");
    let settled = small_chain(&dir);
    let d = dir.to_str().unwrap();
    let out = scg(&["ledger", "show", d]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("height 48"));

    let a = to_hex(
        &derive_key(SEED, "member", "a", None)
            .verifying_key()
            .to_bytes(),
    );
    let out = scg(&["ledger", "show", d, "--account", &a]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let bal = settled.summary.members["a"].balance;
    // A member id resolves to the same account on this simulation chain.
    let by_id = scg(&["ledger", "show", d, "--account", "a"]);
    assert!(by_id.status.success(), "{}", text(&by_id.stderr));
    assert_eq!(text(&by_id.stdout), s);
    assert!(s.contains("role member"), "{s}");
    assert!(s.contains(&format!("balance {bal}")), "{s}");
    assert!(s.contains("certificates owned 480"), "{s}"); // 48 days x 10 sunny hours
    // Its latest records, each with a checked Merkle proof.
    assert!(
        s.contains("records in settlement batches") && s.contains("proof verified"),
        "{s}"
    );
    assert!(!s.contains("FAILED"), "{s}");

    let out = scg(&["ledger", "show", d, "--block", "9"]);
    let s = text(&out.stdout);
    assert!(
        s.contains("block 9")
            && s.contains("settlement-batch")
            && s.contains("meter-report")
            && s.contains("trade-post"),
        "{s}"
    );
    assert!(s.contains("-> applied"), "{s}");
    assert!(s.contains("timestamp 2007-01-10T"), "ISO 8601: {s}");

    let out = scg(&["ledger", "show", d, "--certificate", "1"]);
    let s = text(&out.stdout);
    assert!(s.contains("certificate 1") && s.contains("source"), "{s}");

    // Errors name what was wrong.
    let out = scg(&["ledger", "show", d, "--account", "xyz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("64 hex digits nor a member id"));
    let out = scg(&["ledger", "show", d, "--block", "4900"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no block 4900"));
    let out = scg(&["ledger", "verify", "/nonexistent/ledger"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not exist"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Flip one bit of the database file: verify must fail, or pass with the same height and root.
/// Flips inside a stored block's bytes must fail naming that block.
#[test]
fn bit_flips_are_caught_or_harmless() {
    let dir = tmp("ledger-cli-tamper");
    let settled = small_chain(&dir);
    let db = dir.join(scg_ledger::store::DB_FILE);
    let original = std::fs::read(&db).unwrap();
    let base = scg(&["ledger", "verify", dir.to_str().unwrap()]);
    assert!(base.status.success());
    let base_lines = key_lines(&text(&base.stdout));

    let work = tmp("ledger-cli-tamper-work");
    std::fs::create_dir_all(&work).unwrap();
    let work_db = work.join(scg_ledger::store::DB_FILE);
    let run = |bytes: &[u8]| -> Output {
        std::fs::write(&work_db, bytes).unwrap();
        scg(&["ledger", "verify", work.to_str().unwrap()])
    };

    // Targeted: flip a bit in the middle of block 20 (every copy of its bytes in the file).
    let block20 = settled.blocks[20].to_bytes();
    let mut targeted = original.clone();
    let mut hits = 0;
    let mut i = 0;
    while i + block20.len() <= targeted.len() {
        if targeted[i..i + block20.len()] == block20[..] {
            targeted[i + block20.len() / 2] ^= 0x10;
            hits += 1;
            i += block20.len();
        } else {
            i += 1;
        }
    }
    assert!(hits >= 1, "block 20 not found in the file");
    let out = run(&targeted);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("block 20"), "{err}");

    // Random flips (seeded LCG, so the test is reproducible).
    let mut state: u64 = 0x5eed;
    let (mut caught, mut harmless) = (0, 0);
    for _ in 0..150 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let pos = (state >> 33) as usize % original.len();
        let bit = (state >> 20) as u8 % 8;
        let mut bytes = original.clone();
        bytes[pos] ^= 1 << bit;
        let out = run(&bytes);
        if out.status.success() {
            assert_eq!(
                key_lines(&text(&out.stdout)),
                base_lines,
                "flip at {pos} bit {bit}"
            );
            harmless += 1;
        } else {
            assert_eq!(
                out.status.code(),
                Some(1),
                "flip at {pos}: crashed: {}",
                text(&out.stderr)
            );
            assert!(
                text(&out.stderr).starts_with("error: "),
                "{}",
                text(&out.stderr)
            );
            caught += 1;
        }
    }
    eprintln!("tamper: {caught} flips caught, {harmless} harmless (unused space)");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&work).unwrap();
}

/// The chain states its planned length: the whole chain is "complete" (and marked as a
/// simulation); a chain cut short verifies block by block but exits 1 as incomplete.
#[test]
fn verify_reports_complete_or_incomplete() {
    let dir = tmp("ledger-cli-complete");
    let settled = small_chain(&dir);
    let out = scg(&["ledger", "verify", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.lines().any(|l| l == "complete"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "simulation chain: keys derived from seed {SEED}, not secret"
        )),
        "{stdout}"
    );

    let short = tmp("ledger-cli-incomplete");
    scg_ledger::store::write_blocks(&short, &settled.blocks[..20]).unwrap();
    let out = scg(&["ledger", "verify", short.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("incomplete: height 19 of 48"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("ok:"), "{}", text(&out.stdout));

    // A wrong path is "does not exist", not "does not verify".
    let out = scg(&["ledger", "show", "/nonexistent/ledger"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent/ledger does not exist") && !err.contains("verify"),
        "{err}"
    );
    let out = scg(&["ledger", "verify", "/nonexistent/ledger"]);
    assert!(!text(&out.stderr).contains("does not verify"));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&short).unwrap();
}

fn set_read_only(path: &Path, read_only: bool) {
    for entry in [path.join(scg_ledger::store::DB_FILE), path.to_path_buf()] {
        let mut p = std::fs::metadata(&entry).unwrap().permissions();
        p.set_readonly(read_only);
        std::fs::set_permissions(&entry, p).unwrap();
    }
}

/// `verify` and `show` never write: on a read-only directory (chmod a-w; root ignores modes,
/// so the file's bytes and modification time are compared too) and, where mounting is
/// permitted, on a read-only file system.
#[test]
fn a_read_only_ledger_verifies_and_shows_unchanged() {
    let dir = tmp("ledger-cli-readonly");
    let settled = small_chain(&dir);
    let db = dir.join(scg_ledger::store::DB_FILE);
    let bytes = std::fs::read(&db).unwrap();
    let modified = std::fs::metadata(&db).unwrap().modified().unwrap();
    set_read_only(&dir, true);
    let d = dir.to_str().unwrap();
    let verify = scg(&["ledger", "verify", d]);
    let show = scg(&["ledger", "show", d]);
    let block = scg(&["ledger", "show", d, "--block", "3"]);
    set_read_only(&dir, false);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    assert!(show.status.success(), "{}", text(&show.stderr));
    assert!(block.status.success(), "{}", text(&block.stderr));
    assert!(text(&verify.stdout).contains(&settled.summary.final_state_root_hex));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the file's bytes changed"
    );
    assert_eq!(
        std::fs::metadata(&db).unwrap().modified().unwrap(),
        modified
    );

    // A read-only file system (a tmpfs remounted read-only), where mounting is permitted.
    let ro = tmp("ledger-cli-rofs");
    std::fs::create_dir_all(&ro).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=16m",
            "tmpfs",
            ro.to_str().unwrap(),
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if mounted {
        std::fs::create_dir_all(ro.join("ledger")).unwrap();
        std::fs::copy(&db, ro.join("ledger").join(scg_ledger::store::DB_FILE)).unwrap();
        let remount = Command::new("mount")
            .args(["-o", "remount,ro", ro.to_str().unwrap()])
            .status()
            .unwrap();
        let l = ro.join("ledger");
        let verify = scg(&["ledger", "verify", l.to_str().unwrap()]);
        let show = scg(&["ledger", "show", l.to_str().unwrap()]);
        let _ = Command::new("umount").arg(&ro).status();
        assert!(remount.success());
        assert!(verify.status.success(), "{}", text(&verify.stderr));
        assert!(show.status.success(), "{}", text(&show.stderr));
    } else {
        eprintln!("SKIPPED the read-only file system part: mount is not permitted here");
    }
    let _ = std::fs::remove_dir_all(&ro);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `scg ledger show DIR | head -3`: a reader that closes the pipe ends the command quietly.
#[test]
fn a_closed_pipe_ends_show_quietly() {
    let dir = tmp("ledger-cli-pipe");
    small_chain(&dir);
    for args in [
        vec!["ledger", "show"],
        vec!["ledger", "show", "--block", "9"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scg"))
            .args(&args)
            .arg(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command has printed anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {:?} {}",
            out.status,
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
