//! Scheduling 1,000 dwellings' appliances (washing machine, dishwasher, dryer with the
//! published defaults, all three in every dwelling) for one day at 15-minute steps against a
//! three-band price, a midday community surplus and an evening grid peak, with
//! `carve::schedule_appliances` (the scheduler the agent uses). Goal: under 50 ms.
//!
//! Two cases: `schedule_1000_dwellings_day`, every dwelling alike (the published defaults:
//! the best case of `DwellingMemo`, which reuses a solution for bit-identical inputs), and
//! `schedule_1000_differing_dwellings_day`, each dwelling's runs varied by a seeded ChaCha8
//! draw (see `vary`): no dwelling's runs equal the previous dwelling's (asserted), so the
//! memo never reuses a solution and every dwelling is searched.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scg_home::appliance::Signals;
use scg_home::carve::{YearRun, schedule_appliances, year_runs};
use scg_home::config::{ApplianceConfig, ApplianceKind, HomeConfig};
use std::hint::black_box;

fn config(dwellings: u32) -> HomeConfig {
    let app = |kind| ApplianceConfig {
        kind,
        count: dwellings,
        profile_kw: None,
        // Every dwelling runs every appliance on the benchmarked day (the worst case).
        runs_per_week: Some(7.0),
        earliest_start_h: None,
        deadline_h: None,
        usual_start_h: None,
    };
    HomeConfig {
        dwellings,
        managed: true,
        appliance_power_cap_kw: 2.5,
        usual_start_spread_minutes: 180,
        grid_peak_adder_eur_per_mwh: 50.0,
        appliances: vec![
            app(ApplianceKind::WashingMachine),
            app(ApplianceKind::Dishwasher),
            app(ApplianceKind::Dryer),
        ],
        water_heater: None,
        heat_pump: None,
    }
}

fn signals(steps: usize, dwellings: f64) -> Signals {
    let mut s = Signals::flat(steps, 0.25, 0.0);
    for t in 0..steps {
        let h = (t / 4) % 24;
        s.price_eur_per_mwh[t] = match h {
            8..=18 => 250.0,
            7 | 19..=22 => 200.0,
            _ => 150.0,
        };
        s.surplus_price_eur_per_mwh[t] = 110.0;
        s.surplus_kw[t] = if (10..15).contains(&h) {
            0.3 * dwellings
        } else {
            0.0
        };
        s.grid_peak[t] = (18..21).contains(&h);
    }
    s.grid_peak_adder_eur_per_mwh = 100.0;
    s
}

/// Vary each dwelling's runs with a seeded draw, the way households differ: the power
/// profile scaled by 0.7-1.3 (machine size and programme), the accepted window moved by up
/// to ±3 h at its start and its end (the occupant's preferences: a later start, an earlier
/// deadline) but never shorter than the run, and the usual start anywhere in the window.
/// Comfort bands are not varied here: they belong to the thermal devices, which
/// `schedule_appliances` does not schedule (`thermal` solves them as LPs).
fn vary(runs: &mut [YearRun], steps: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for r in runs {
        let scale = rng.random_range(0.7..1.3);
        for p in &mut r.run.power_kw {
            *p *= scale;
        }
        let len = r.run.power_kw.len();
        let shift = |rng: &mut ChaCha8Rng, x: usize| {
            let d = rng.random_range(-12i64..=12);
            (x as i64 + d).clamp(0, (steps - len) as i64) as usize
        };
        let earliest = shift(&mut rng, r.run.earliest_step);
        let latest = shift(&mut rng, r.run.latest_step).max(earliest);
        r.run.earliest_step = earliest;
        r.run.latest_step = latest;
        r.usual_step = rng.random_range(earliest..=latest);
    }
}

fn bench(c: &mut Criterion) {
    let n = 1000;
    let cfg = config(n);
    // Two days so that the dishwasher's overnight window fits; schedule day 0's runs.
    let steps = 2 * 96;
    let runs: Vec<_> = year_runs(&cfg, 15, steps)
        .into_iter()
        .filter(|r| r.day == 0)
        .collect();
    assert_eq!(runs.len(), 3 * n as usize);
    let mut differing = runs.clone();
    vary(&mut differing, steps, 2024);
    // Runs are sorted by dwelling, three per dwelling: neighbours must differ.
    let groups: Vec<_> = differing.chunks(3).collect();
    assert!(groups.windows(2).all(|w| w[0][0].run != w[1][0].run));
    let base = signals(steps, f64::from(n));
    for (name, runs) in [
        ("schedule_1000_dwellings_day", &runs),
        ("schedule_1000_differing_dwellings_day", &differing),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut sig = base.clone();
                let mut flex = vec![0.0; steps];
                let at_usual = schedule_appliances(runs, &cfg, &mut sig, &mut flex);
                black_box((at_usual, flex))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
