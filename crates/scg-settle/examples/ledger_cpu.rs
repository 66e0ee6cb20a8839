//! CPU time (user + system, all threads, from `/proc/self/stat`) and wall time of the built-in
//! year's ledger phases: settle, store, verify. Complements the criterion bench
//! `builtin_year`, whose wall times mean little on a shared, loaded machine: CPU time is what
//! the ledger costs whatever else runs. Linux only (reads `/proc/self/stat`).
//!
//! `cargo run --release -p scg-settle --example ledger_cpu [-- ITERATIONS]` (default 5).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use scg_settle::{Policy, settle};
use std::time::Instant;

/// Process CPU time so far, seconds (utime + stime, in clock ticks of 1/100 s).
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(5, |a| a.parse().unwrap());
    let scenario = scg_model::builtin::bergamo().unwrap();
    let result = scg_sim::simulate_scenario(
        &scenario,
        &mut |p| Err(format!("unexpected read of {}", p.display())),
        42,
        &mut |_, _| {},
    )
    .unwrap();
    let price = scenario.community.internal_price_eur_per_mwh;
    let dir = std::env::temp_dir().join(format!("scg-ledger-cpu-{}", std::process::id()));
    let mut phases: [(&str, Vec<f64>, Vec<f64>); 3] = [
        ("settle", Vec::new(), Vec::new()),
        ("store", Vec::new(), Vec::new()),
        ("verify", Vec::new(), Vec::new()),
    ];
    for _ in 0..n {
        let mut mark = (cpu_s(), Instant::now());
        let mut lap = |i: usize, phases: &mut [(&str, Vec<f64>, Vec<f64>); 3]| {
            let now = (cpu_s(), Instant::now());
            phases[i].1.push(now.0 - mark.0);
            phases[i].2.push((now.1 - mark.1).as_secs_f64());
            mark = now;
        };
        let settled = settle(&result, price, &Policy::default()).unwrap();
        lap(0, &mut phases);
        scg_ledger::store::store(&dir, &settled).unwrap();
        lap(1, &mut phases);
        scg_ledger::store::verify_dir(&dir).unwrap();
        lap(2, &mut phases);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut total = 0.0;
    for (name, cpu, wall) in &mut phases {
        let (c, w) = (median(cpu), median(wall));
        total += c;
        println!("{name:<7} median of {n}: CPU {c:.3} s, wall {w:.3} s");
    }
    println!("sum of the CPU medians: {total:.3} s");
}
