//! The year loop alone: five prosumers with PV, wind and batteries at 60-minute steps
//! (target: under 1 ms), and how it grows with prosumers.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scg_sim::battery::{Battery, BatteryConfig, BatteryModelKind, KineticConfig};
use scg_sim::converter::Converter;
use scg_sim::dispatch::BatteryUnit;
use scg_sim::year::{ProsumerSeries, TotalsSink, YearSettings, run_year};
use std::hint::black_box;

fn unit(kinetic: bool) -> BatteryUnit {
    let config = BatteryConfig {
        model: if kinetic {
            BatteryModelKind::Kinetic
        } else {
            BatteryModelKind::Idealized
        },
        capacity_kwh: 200.0,
        max_charge_power_kw: 50.0,
        max_discharge_power_kw: 50.0,
        round_trip_efficiency_pct: 90.0,
        min_soc_pct: 20.0,
        initial_soc_pct: 100.0,
        kinetic: KineticConfig::default(),
        lifetime_throughput_kwh: None,
        lifetime_years: 15.0,
        capital_cost_eur_per_kwh: 0.0,
        replacement_cost_eur_per_kwh: 0.0,
        om_cost_eur_per_kwh_year: 0.0,
    };
    BatteryUnit {
        battery: Battery::from_config(&config).unwrap(),
        converter: Converter::new(50.0, 0.95, 50.0, 0.9).unwrap(),
    }
}

fn bench(c: &mut Criterion) {
    let steps = 8760;
    // Synthetic shapes: a daily load cycle and a daily PV bell; wind noise-free sinusoid.
    let load: Vec<f64> = (0..steps)
        .map(|t| 30.0 + 20.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin().abs())
        .collect();
    let pv: Vec<f64> = (0..steps)
        .map(|t| {
            ((t % 24) as f64 - 12.0)
                .abs()
                .min(6.0)
                .mul_add(-1.0 / 6.0, 1.0)
                * 0.8
        })
        .collect();
    let wind: Vec<f64> = (0..steps)
        .map(|t| 5.0 + 5.0 * (t as f64 / 37.0).sin())
        .collect();
    let peak: Vec<bool> = (0..steps).map(|t| (8..19).contains(&(t % 24))).collect();
    let settings = YearSettings {
        dt_h: 1.0,
        grid_at_peak: &peak,
        max_purchase_kw: f64::INFINITY,
        max_sale_kw: f64::INFINITY,
    };
    let mut group = c.benchmark_group("year_loop_60min");
    for n in [5usize, 50] {
        let series: Vec<_> = (0..n)
            .map(|i| ProsumerSeries {
                load_kw: &load,
                load_draw: None,
                pv_draw: None,
                pv_kw_per_kwp: &pv,
                pv_kwp: 20.0 + i as f64,
                wind_kw_per_turbine: &wind,
                turbines: (i % 2) as f64,
                ev_kw: &[],
                v2g_kw: &[],
            })
            .collect();
        group.bench_with_input(
            BenchmarkId::new("prosumers_with_idealized_batteries", n),
            &n,
            |b, _| {
                b.iter(|| {
                    let mut batteries: Vec<_> =
                        (0..n).map(|_| Some(Box::new(unit(false)))).collect();
                    let mut sink = TotalsSink::new(n, 1.0);
                    run_year(&series, &mut batteries, &settings, steps, &mut sink).unwrap();
                    black_box(sink.prosumers[0].grid_import_kwh)
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("prosumers_with_kinetic_batteries", n),
            &n,
            |b, _| {
                b.iter(|| {
                    let mut batteries: Vec<_> =
                        (0..n).map(|_| Some(Box::new(unit(true)))).collect();
                    let mut sink = TotalsSink::new(n, 1.0);
                    run_year(&series, &mut batteries, &settings, steps, &mut sink).unwrap();
                    black_box(sink.prosumers[0].grid_import_kwh)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench, bergamo_step);
criterion_main!(benches);

/// One `Community::step` of the built-in Bergamo community (5 prosumers, their PV, and the
/// search-only battery and wind sections built, pro-rata sharing) without EVs: a whole year of
/// steps per iteration, so the time per step is the median ÷ steps (goal: under 200 ns per
/// prosumer, i.e. 1 µs per step).
fn bergamo_step(c: &mut Criterion) {
    use scg_sim::community::{Community, Forecast, IntervalInputs, ProsumerInterval, Sharing};
    // `installed = false` sections built, so that batteries and the turbine step too.
    let text = scg_model::builtin::BERGAMO_TOML.replace("installed = false\n", "");
    let mut scenario = scg_model::Scenario::from_toml_str(&text, "bergamo (all built)").unwrap();
    for p in &mut scenario.prosumers {
        p.ev = None;
    }
    scenario.community.market = None;
    let assets = scg_sim::Assets::from_scenario(&scenario).unwrap();
    let inputs = scg_sim::resolve_inputs(&scenario, &assets, &mut |p| {
        Err(format!("unexpected read of {}", p.display()))
    })
    .unwrap();
    let prepared =
        scg_sim::prepare::prepare(&scenario, &assets, &inputs, 42, &mut |_, _| {}).unwrap();
    let steps = prepared.grid.len();
    let n = prepared.prosumers.len();
    let settings = scg_sim::community::CommunitySettings {
        dt_h: prepared.grid.step_hours(),
        max_purchase_kw: f64::INFINITY,
        max_sale_kw: f64::INFINITY,
    };
    let intervals: Vec<Vec<ProsumerInterval>> = (0..steps)
        .map(|t| {
            prepared
                .prosumers
                .iter()
                .map(|p| ProsumerInterval {
                    load_kw: p.load.load_kw[t],
                    pv_kw: p.pv_kw_per_kwp.get(t).map_or(0.0, |v| v * p.pv_kwp),
                    wind_kw: p.wind_kw_per_turbine.get(t).map_or(0.0, |v| v * p.turbines),
                })
                .collect()
        })
        .collect();
    let retail: Vec<f64> = prepared
        .tariff
        .purchase_eur_per_kwh()
        .iter()
        .map(|p| p * 1000.0)
        .collect();
    let mut group = c.benchmark_group("community_step");
    group.throughput(criterion::Throughput::Elements((steps * n) as u64));
    group.bench_function("bergamo_5_prosumers_no_ev_year_of_steps", |b| {
        b.iter(|| {
            let batteries = assets
                .prosumers
                .iter()
                .map(|a| scg_sim::engine::battery_unit(a).unwrap())
                .collect();
            let fleets = (0..n).map(|_| None).collect();
            let mut community =
                Community::new(settings, batteries, fleets, Sharing::ProRata).unwrap();
            let mut grid_kwh = 0.0;
            for (t, prosumers) in intervals.iter().enumerate() {
                let out = community
                    .step(
                        &IntervalInputs {
                            step: t,
                            prosumers,
                            retail_eur_per_mwh: retail[t],
                            grid_at_peak: prepared.grid_at_peak[t],
                        },
                        &Forecast {
                            retail_eur_per_mwh: &retail[t..],
                            grid_at_peak: &prepared.grid_at_peak[t..],
                            ..Forecast::default()
                        },
                    )
                    .unwrap();
                grid_kwh += out.flows[0].grid_import_kw;
            }
            black_box(grid_kwh)
        })
    });
    group.finish();
}
