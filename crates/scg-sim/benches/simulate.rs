//! The whole default `simulate` minus file writing, at 60 and 15 minutes: the loads alone (the
//! foundation's target, well under 1 s) and the full Bergamo community (PV, wind, batteries,
//! EV fleets with their agents, the community market, CER, NPC).
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use scg_model::builtin;
use scg_sim::simulate_scenario;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let full = builtin::bergamo().unwrap();
    let mut loads_only = full.clone();
    for p in &mut loads_only.prosumers {
        p.pv.clear();
        p.wind_turbines.clear();
        p.battery = None;
        p.converter = None;
        p.ev = None;
        p.search = None;
    }
    let mut group = c.benchmark_group("simulate_bergamo");
    group.sample_size(10);
    for (name, scenario) in [("loads_only", &loads_only), ("full", &full)] {
        for step in [60, 15] {
            let mut s = scenario.clone();
            s.time.step_minutes = step;
            group.bench_function(format!("{name}_{step}min"), |b| {
                b.iter(|| {
                    black_box(
                        simulate_scenario(&s, &mut |_| Err("no files".into()), 1, &mut |_, _| {})
                            .unwrap(),
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
