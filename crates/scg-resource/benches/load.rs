//! Synthesising one year of one HOMER load at 60 and at 15 minutes (target: < 1 ms at 60 min).
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scg_model::{ModelYear, TimeGrid, TimeSettings};
use scg_resource::{load, profiles};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let apartment = profiles::builtin("midrise_apartment").unwrap();
    let v = load::Variability {
        day_to_day: 0.07946,
        timestep: 0.07946,
    };
    for step in [60, 15] {
        let grid = TimeGrid::new(
            &TimeSettings {
                step_minutes: step,
                model_year: ModelYear::Homer,
            },
            "Europe/Rome",
        )
        .unwrap();
        c.bench_function(&format!("synthesize_load_year_{step}min"), |b| {
            b.iter(|| {
                let mut rng = ChaCha8Rng::seed_from_u64(1);
                black_box(
                    load::synthesize(&apartment, &grid, v, Some(614.12), &mut rng, "a").unwrap(),
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
