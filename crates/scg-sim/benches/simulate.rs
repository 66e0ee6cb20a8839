//! The whole default `simulate` minus file writing (target: well under 1 s; see README).
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use scg_model::builtin;
use scg_sim::simulate_scenario;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut scenario = builtin::bergamo().unwrap();
    for step in [60, 15] {
        scenario.time.step_minutes = step;
        c.bench_function(&format!("simulate_bergamo_{step}min"), |b| {
            b.iter(|| {
                black_box(
                    simulate_scenario(
                        &scenario,
                        &mut |_| Err("no files".into()),
                        1,
                        &mut |_, _| {},
                    )
                    .unwrap(),
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
