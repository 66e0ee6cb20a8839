//! The home agent's year in isolation: one `HomeAgent` with the built-in apartment's home
//! section (`crates/scg-model/scenarios/bergamo.toml`: 30 dwellings, 29 washing machines at
//! 4 cycles a week, 15 dishwashers at 5, 5 dryers, 6 water heaters, everything else at its
//! default) planning each day and adjusting each step over 365 days, at 60- and 15-minute
//! steps, driven the way `scg_sim::home::HomeStage` drives it (a two-day forecast handed at
//! each day's first step, the community surplus shared through `surplus_left_kw`).
//!
//! The inputs are synthetic but of the built-in's shape, no random draws: a 614 kWh/day
//! apartment load with an evening peak, the built-in's ARERA band prices (F1 weekdays 08-19
//! at 290 EUR/MWh, F2 270, F3 240), the F1 band as the grid peak, and a midday community
//! surplus that grows towards summer. Issue 14's goal for this year: about 0.03 s at 60
//! minutes and 0.15 s at 15 minutes.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use scg_home::agent::{AgentSettings, HomeAgent, StepForecast};
use scg_home::config::HomeConfig;
use std::hint::black_box;

const DAYS: usize = 365;

/// The built-in apartment's `[prosumers.home]` section.
fn apartment() -> HomeConfig {
    serde_json::from_str(
        r#"{"dwellings": 30, "managed": true,
            "appliances": [
              {"kind": "washing_machine", "count": 29, "runs_per_week": 4.0},
              {"kind": "dishwasher", "count": 15, "runs_per_week": 5.0},
              {"kind": "dryer", "count": 5}],
            "water_heater": {"count": 6}}"#,
    )
    .unwrap()
}

/// The year's inputs on a grid of `spd` steps a day.
struct Year {
    load_kw: Vec<f64>,
    price_eur_per_mwh: Vec<f64>,
    peak: Vec<bool>,
    surplus_kw: Vec<f64>,
}

fn year(spd: usize) -> Year {
    let steps = DAYS * spd;
    let hour = |k: usize| (k % spd) as f64 * 24.0 / spd as f64;
    // 1 January 2007 (HOMER's calendar) is a Monday: days 5 and 6 of each week are weekend.
    let f1 = |k: usize| (k / spd) % 7 < 5 && (8.0..19.0).contains(&hour(k));
    let load_kw = (0..steps)
        .map(|k| 25.6 * (1.0 + 0.45 * ((hour(k) - 20.0) / 24.0 * std::f64::consts::TAU).cos()))
        .collect();
    let price_eur_per_mwh = (0..steps)
        .map(|k| {
            let h = hour(k);
            if f1(k) {
                290.0
            } else if (k / spd) % 7 < 6 && (7.0..23.0).contains(&h) {
                270.0
            } else {
                240.0
            }
        })
        .collect();
    let surplus_kw = (0..steps)
        .map(|k| {
            let season = 0.6 - 0.4 * ((k / spd) as f64 / 365.0 * std::f64::consts::TAU).cos();
            let sun = ((hour(k) - 6.0) / 12.0 * std::f64::consts::PI)
                .sin()
                .max(0.0);
            (60.0 * season * sun - 20.0).max(0.0)
        })
        .collect();
    Year {
        load_kw,
        price_eur_per_mwh,
        peak: (0..steps).map(f1).collect(),
        surplus_kw,
    }
}

/// Run the agent over the year; the managed load's sum (to keep the work observable).
fn run_year(cfg: &HomeConfig, y: &Year, step_minutes: u32) -> f64 {
    let spd = (1440 / step_minutes) as usize;
    let settings = AgentSettings {
        step_minutes,
        surplus_price_eur_per_mwh: 150.0,
    };
    let mut agent = HomeAgent::new("apartment", cfg, &y.load_kw, None, settings).unwrap();
    let mut total = 0.0;
    for step in 0..y.load_kw.len() {
        let end = (step + 2 * spd).min(y.load_kw.len());
        let forecast = StepForecast {
            retail_eur_per_mwh: &y.price_eur_per_mwh[step..end],
            grid_at_peak: &y.peak[step..end],
            community_surplus_kw: &y.surplus_kw[step..end],
        };
        if agent.plans_at(step) {
            let mut left = y.surplus_kw[step..end].to_vec();
            agent.plan_day(step, &forecast, &mut left).unwrap();
        }
        total += agent.adjust(step, y.load_kw[step], &forecast);
    }
    total
}

fn bench(c: &mut Criterion) {
    let cfg = apartment();
    let mut group = c.benchmark_group("home_agent_year");
    group.sample_size(10);
    for step_minutes in [60, 15] {
        let y = year((1440 / step_minutes) as usize);
        group.bench_function(format!("apartment_{step_minutes}min"), |b| {
            b.iter(|| black_box(run_year(&cfg, &y, step_minutes)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
