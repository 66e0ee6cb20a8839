//! One MPC re-plan (build + solve with clarabel) for N plugged-in EVs over a 24-hour horizon
//! at 15-minute steps (96 steps), a binding site limit and a demand charge. Target: under
//! 100 ms for N = 100; N = 300 and 1,000 show how it grows. Two kinds of re-plan:
//! `every_step` (`replan_on_events = false`: move blocking beyond two hours, 30 plan steps)
//! and `events` (the default: a fresh controller, so it solves, at the step resolution, 96
//! plan steps); with events a kept plan costs no solve on most steps.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use scg_ev::mpc::{Mpc, MpcParams};
use scg_ev::policy::{ActiveEv, Policy, StepContext};
use scg_ev::tariff::Tariff;
use std::hint::black_box;

fn evs(n: usize, v2g: bool) -> Vec<ActiveEv> {
    (0..n)
        .map(|i| ActiveEv {
            key: i,
            arrival_step: 0,
            // Every vehicle stays the whole horizon (the worst case for problem size).
            departure_step: 96,
            remaining_kwh: 5.0 + (i % 7) as f64 * 5.0,
            max_charge_kw: 7.4,
            max_discharge_kw: if v2g { 7.4 } else { 0.0 },
            energy_kwh: 20.0,
            min_energy_kwh: 12.0,
            max_energy_kwh: 25.0 + (i % 7) as f64 * 5.0,
            efficiency: 0.95,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let tariff = Tariff::sce_tou_ev_4();
    let prices: Vec<f64> = (0..96).map(|k| tariff.price_at(k * 15)).collect();
    let mut group = c.benchmark_group("mpc_replan_96_steps");
    group.sample_size(10);
    for (n, v2g) in [(100, false), (100, true), (300, false), (1000, false)] {
        let fleet = evs(n, v2g);
        let ctx = StepContext {
            step: 0,
            step_hours: 0.25,
            evs: &fleet,
            site_limit_kw: 2.0 * n as f64,
            price_eur_per_mwh: &prices,
            grid_peak: &[],
            demand_charge_eur_per_kw: 15.51,
            peak_so_far_kw: 0.0,
        };
        let name = format!("{n}_evs{}", if v2g { "_v2g" } else { "" });
        let every = MpcParams {
            replan_on_events: false,
            ..MpcParams::default()
        };
        let mut mpc = Mpc::new(every);
        group.bench_function(format!("{name}_every_step"), |b| {
            b.iter(|| black_box(mpc.schedule(black_box(&ctx)).unwrap()))
        });
        group.bench_function(format!("{name}_events"), |b| {
            b.iter(|| {
                let mut mpc = Mpc::new(MpcParams::default());
                black_box(mpc.schedule(black_box(&ctx)).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
