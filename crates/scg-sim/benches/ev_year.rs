//! The built-in community's EV fleets over a year, each run on its own against the signals
//! the community step gives it (`prepare::add_ev_years`: the effective price from the
//! configured community's surplus forecast and the grid-peak flags), at 60 and 15 minutes.
//! The apartment's MPC fleet is most of it; `mpc_fleet` runs that fleet alone.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use scg_model::builtin;
use scg_sim::assets::Assets;
use scg_sim::prepare::{add_ev_years, prepare};
use std::hint::black_box;

/// The seed `scg simulate` uses by default.
const SEED: u64 = 42;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("ev_year_bergamo");
    group.sample_size(10);
    for step in [60, 15] {
        let mut scenario = builtin::bergamo().unwrap();
        scenario.time.step_minutes = step;
        let assets = Assets::from_scenario(&scenario).unwrap();
        let inputs =
            scg_sim::inputs::resolve_inputs(&scenario, &assets, &mut |_| Err("no files".into()))
                .unwrap();
        let prepared = prepare(&scenario, &assets, &inputs, SEED, &mut |_, _| {}).unwrap();
        group.bench_function(format!("all_fleets_{step}min"), |b| {
            b.iter(|| {
                let mut p = prepared.clone();
                add_ev_years(&mut p, &scenario, &assets, SEED).unwrap();
                black_box(p.prosumers.len())
            })
        });
        let mut mpc_only = scenario.clone();
        for (p, a) in mpc_only.prosumers.iter_mut().zip(&assets.prosumers) {
            if a.ev.as_ref().is_none_or(|f| f.policy != "mpc") {
                p.ev = None;
            }
        }
        let mpc_assets = Assets::from_scenario(&mpc_only).unwrap();
        group.bench_function(format!("mpc_fleet_{step}min"), |b| {
            b.iter(|| {
                let mut p = prepared.clone();
                add_ev_years(&mut p, &mpc_only, &mpc_assets, SEED).unwrap();
                black_box(p.prosumers.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
