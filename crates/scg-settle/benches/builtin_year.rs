//! The built-in year on the ledger: the default scenario (seed 42, as `scg simulate`) is
//! simulated once outside the measurement, then
//! - `builtin_year/settle`: settlement (build the daily settlement batches, co-sign, apply);
//! - `builtin_year/store`: write the settled chain to redb (groups, one sync);
//! - `builtin_year/verify`: full verification from the file (every signature, root, invariant);
//! - `builtin_year/write_verify`: settle + store + verify, what `scg simulate` and `scg ledger
//!   verify` add to a run (target: under 1 s).
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scg_settle::{Policy, settle};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let scenario = scg_model::builtin::bergamo().unwrap();
    let result = scg_sim::simulate_scenario(
        &scenario,
        &mut |p| Err(format!("unexpected read of {}", p.display())),
        42,
        &mut |_, _| {},
    )
    .unwrap();
    let price = scenario.community.internal_price_eur_per_mwh;
    let policy = Policy::default();
    let settled = settle(&result, price, &policy).unwrap();
    let dir = std::env::temp_dir().join(format!("scg-settle-bench-{}", std::process::id()));
    let mut g = c.benchmark_group("builtin_year");
    // Throughput in settlement records (each what one signed transaction used to be).
    g.throughput(Throughput::Elements(settled.summary.records));
    g.sample_size(10);
    g.bench_function("settle", |b| {
        b.iter(|| settle(black_box(&result), price, &policy).unwrap());
    });
    g.bench_function("store", |b| {
        b.iter(|| scg_ledger::store::store(&dir, black_box(&settled)).unwrap());
    });
    g.bench_function("verify", |b| {
        b.iter(|| scg_ledger::store::verify_dir(black_box(&dir)).unwrap());
    });
    g.bench_function("write_verify", |b| {
        b.iter(|| {
            let s = settle(black_box(&result), price, &policy).unwrap();
            scg_ledger::store::store(&dir, &s).unwrap();
            scg_ledger::store::verify_dir(&dir).unwrap()
        });
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
