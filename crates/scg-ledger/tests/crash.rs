//! Crash safety: a writer child process appends blocks one committed transaction at a time and
//! is killed (SIGKILL) at seeded random points; the parent reopens the directory and checks
//! that no committed block was lost and that the whole ledger verifies.
//!
//! The child is this same test binary re-executed with `SCG_LEDGER_CRASH_DIR` set: the test
//! `crash_writer_child` then runs the writer loop instead of its in-process check.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Chain, pk};
use scg_ledger::store::Store;
use scg_ledger::{DeviceType, Ledger, TxBody};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ENV_DIR: &str = "SCG_LEDGER_CRASH_DIR";

/// Write blocks to `dir`, one committed write transaction per block, printing each committed
/// height; stops after `max_blocks`.
fn writer(dir: &Path, max_blocks: u64, mut on_commit: impl FnMut(u64)) {
    let mut c = Chain::new();
    let store = Store::create(dir).unwrap();
    let (mut ledger, outcome) = Ledger::from_genesis_block(&c.blocks[0]).unwrap();
    store
        .append(&[(c.blocks[0].clone(), outcome)], &mut ledger)
        .unwrap();
    on_commit(0);
    let alice = c.add_member("alice");
    let bob = c.add_member("bob");
    let pv = c.add_meter(&alice, "alice-pv", DeviceType::Pv);
    c.fund(&bob, 1_000_000);
    let mut appended = 0usize;
    let mut interval = 0u64;
    loop {
        // Apply every block the chain has produced since the last append, then commit.
        while appended + 1 < c.blocks.len() {
            let b = c.blocks[appended + 1].clone();
            let o = ledger.apply_block(&b).unwrap();
            store.append(&[(b, o)], &mut ledger).unwrap();
            appended += 1;
            on_commit(appended as u64);
            if appended as u64 >= max_blocks {
                return;
            }
        }
        let report = c.sign(
            &pv,
            TxBody::MeterReport {
                interval,
                produced_wh: 100 + interval,
                consumed_wh: 0,
            },
        );
        let pay = c.sign(
            &bob,
            TxBody::Transfer {
                to: pk(&alice),
                amount: 1,
            },
        );
        c.block(vec![report, pay]);
        interval += 1;
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// In the child: the writer loop. Otherwise: the same writer in-process, then verify.
#[test]
fn crash_writer_child() {
    if let Ok(dir) = std::env::var(ENV_DIR) {
        let mut out = std::io::stdout().lock();
        writer(Path::new(&dir), u64::MAX, |h| {
            writeln!(out, "committed {h}").unwrap();
            out.flush().unwrap();
        });
        return;
    }
    let dir = tmp("ledger-writer-inproc");
    writer(&dir, 12, |_| {});
    let report = Store::open(&dir).unwrap().verify().unwrap();
    assert_eq!(report.height, 12);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn killed_writer_loses_no_committed_block() {
    let exe = std::env::current_exe().unwrap();
    let mut rng: u64 = 0xC0FFEE;
    for round in 0..10 {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let kill_after = 3 + (rng >> 33) % 25; // committed blocks seen before the kill
        let extra_delay_us = (rng >> 13) % 4_000; // then let it run a little further
        let dir = tmp(&format!("ledger-crash-{round}"));
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_DIR, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut last_committed = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(h) = line.strip_prefix("committed ") {
                last_committed = Some(h.parse::<u64>().unwrap());
                if last_committed >= Some(kill_after) {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(extra_delay_us));
        child.kill().unwrap(); // SIGKILL: no destructors, no flush
        child.wait().unwrap();
        let last_committed = last_committed.expect("child committed something");
        let store = Store::open(&dir).unwrap();
        let report = store
            .verify()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            report.height >= last_committed,
            "round {round}: committed {last_committed}, recovered {}",
            report.height
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
