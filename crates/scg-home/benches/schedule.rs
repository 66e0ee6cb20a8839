//! Scheduling 1,000 dwellings' appliances (washing machine, dishwasher, dryer with the
//! published defaults, all three in every dwelling) for one day at 15-minute steps against a
//! three-band price, a midday community surplus and an evening grid peak, with
//! `carve::schedule_appliances` (the scheduler the agent uses). Goal: under 50 ms.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use scg_home::appliance::Signals;
use scg_home::carve::{schedule_appliances, year_runs};
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
    let base = signals(steps, f64::from(n));
    c.bench_function("schedule_1000_dwellings_day", |b| {
        b.iter(|| {
            let mut sig = base.clone();
            let mut flex = vec![0.0; steps];
            let at_usual = schedule_appliances(&runs, &cfg, &mut sig, &mut flex);
            black_box((at_usual, flex))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
