//! Sizing search speed: one configuration's community replay (5 prosumers, a year of hourly
//! steps) and a whole search of 3^5·4·2 = 1,944 configurations on all cores, on synthetic
//! series with an additive tariff; and one configuration of the built-in Bergamo scenario (its
//! own tariff: F1/F2/F3 bands, Ritiro Dedicato floor, CER), step by step (`evaluate_config`)
//! and as the search screens it (`screen_config`, the year at once), which is what
//! `scg optimize` runs 10,368 times (12·3·3·12·8 designs; target: >= 10,000 configurations
//! per second on 2 cores, i.e. one configuration in <= 200 µs on one core); and one block of
//! the search as `search` walks it (`screen_block`: the 8 designs of the last prosumer on the
//! first four's sums, computed once; throughput in configurations).
//!
//! Measured on 1 December 2026 (2-core AMD EPYC, shared with other builds, load average 4-9,
//! so wall figures are not idle ones): the CPU time of the search's own functions in
//! `scg optimize` on the built-in scenario (perf cpu-clock samples, 999 Hz) went from 3.0-3.2 s
//! before the block walk and the pass restructuring (commit 4d0294b) to 2.0-2.5 s after;
//! results byte-identical (`optimize.csv`). Not measured idle: whether the printed
//! configurations/s reaches 10,000 on an idle machine (the lead measured 6,718-7,327 before).
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scg_sim::accounting::CerSetup;
use scg_sim::battery::{BatteryConfig, BatteryModelKind, KineticConfig};
use scg_sim::cer::{CerParams, PlantSizeClass};
use scg_sim::converter::ConverterConfig;
use scg_sim::economics::{ComponentCosts, EconomicParams};
use scg_sim::grid::{GridTariff, TariffSeries};
use scg_sim::optimize::{
    Block, Config, LocalDesign, ProsumerSpace, ScreenScratch, Screened, SearchInputs,
    SearchSettings, evaluate_config, residual_parts, run_local, screen_block, screen_config,
    search,
};
use scg_sim::year::ProsumerSeries;
use std::hint::black_box;

// The built-in search's preparation, shared with the screening tests.
#[path = "../tests/common/mod.rs"]
mod common;
use std::sync::atomic::AtomicBool;

const STEPS: usize = 8760;

fn battery(kwh: f64) -> (BatteryConfig, ConverterConfig) {
    let b = BatteryConfig {
        model: BatteryModelKind::Idealized,
        capacity_kwh: kwh,
        max_charge_power_kw: kwh / 2.0,
        max_discharge_power_kw: kwh / 2.0,
        round_trip_efficiency_pct: 90.0,
        min_soc_pct: 20.0,
        initial_soc_pct: 100.0,
        kinetic: KineticConfig::default(),
        lifetime_throughput_kwh: Some(kwh * 3000.0),
        lifetime_years: 15.0,
        capital_cost_eur_per_kwh: 400.0,
        replacement_cost_eur_per_kwh: 300.0,
        om_cost_eur_per_kwh_year: 5.0,
    };
    let c = ConverterConfig {
        capacity_kw: kwh / 2.0,
        inverter_efficiency_pct: 95.0,
        rectifier_capacity_pct: 100.0,
        rectifier_efficiency_pct: 90.0,
        lifetime_years: 15.0,
        capital_cost_eur_per_kw: 200.0,
        replacement_cost_eur_per_kw: 200.0,
        om_cost_eur_per_kw_year: 0.0,
    };
    (b, c)
}

fn bench(c: &mut Criterion) {
    let day = |t: usize| (t % 24) as f64;
    let loads: Vec<Vec<f64>> = (0..5)
        .map(|i| {
            (0..STEPS)
                .map(|t| {
                    10.0 * (i + 1) as f64
                        + 5.0 * (day(t) / 24.0 * std::f64::consts::TAU).sin().abs()
                })
                .collect()
        })
        .collect();
    let pv: Vec<f64> = (0..STEPS)
        .map(|t| (1.0 - (day(t) - 12.5).abs() / 6.0).max(0.0) * 0.7)
        .collect();
    let wind: Vec<f64> = (0..STEPS)
        .map(|t| 3.0 + 2.0 * ((t as f64) / 11.0).sin())
        .collect();
    let purchase: Vec<f64> = (0..STEPS)
        .map(|t| {
            if (8.0..19.0).contains(&day(t)) {
                0.30
            } else {
                0.22
            }
        })
        .collect();
    let sell = vec![0.08; STEPS];
    // 60 EUR/MWh: the TIP at its cap (120) + 8 of valorisation.
    let zonal = vec![60.0; STEPS];
    let peak: Vec<bool> = (0..STEPS).map(|t| (18.0..21.0).contains(&day(t))).collect();
    let month: Vec<u8> = (0..STEPS).map(|t| ((t / 730) % 12 + 1) as u8).collect();
    let spaces: Vec<ProsumerSpace<'_>> = loads
        .iter()
        .enumerate()
        .map(|(i, load)| ProsumerSpace {
            id: format!("p{i}"),
            series: ProsumerSeries {
                load_kw: load,
                load_draw: None,
                pv_draw: None,
                pv_kw_per_kwp: &pv,
                pv_kwp: 0.0,
                wind_kw_per_turbine: &wind,
                turbines: 0.0,
                ev_kw: &[],
                v2g_kw: &[],
            },
            designs: [0.0, 20.0, 50.0]
                .iter()
                .flat_map(|kwp| {
                    let battery_sizes: &[Option<f64>] = if i == 0 {
                        &[None, Some(40.0), Some(80.0), Some(160.0)]
                    } else {
                        &[None]
                    };
                    battery_sizes.iter().map(move |kwh| LocalDesign {
                        pv_kwp: *kwp,
                        turbines: 0.0,
                        battery: kwh.map(battery),
                        generation_costs: vec![(
                            "pv".into(),
                            ComponentCosts {
                                capital_eur: 1000.0 * kwp,
                                replacement_eur: 0.0,
                                om_eur_per_year: 15.0 * kwp,
                                lifetime_years: 25.0,
                            },
                        )],
                    })
                })
                .collect(),
        })
        .collect();
    let tariff = GridTariff::from_series(&TariffSeries {
        step_hours: 1.0,
        month: &month,
        purchase_eur_per_kwh: &purchase,
        sell_eur_per_kwh: &sell,
        demand_charge_eur_per_kw_month: 0.0,
        max_purchase_kw: f64::INFINITY,
        max_sale_kw: f64::INFINITY,
    })
    .unwrap();
    let inputs = SearchInputs {
        dt_h: 1.0,
        steps_per_hour: 1,
        tariff: &tariff,
        cer: CerSetup {
            enabled: true,
            params: CerParams {
                size_class: PlantSizeClass::UpTo200Kw,
                pv_bonus_eur_per_mwh: 0.0,
                valorisation_eur_per_mwh: 8.0,
                producer_share: 0.5,
            },
            zonal_hourly_eur_per_mwh: &zonal,
        },
        grid_at_peak: &peak,
        cer_npc_factor: 1.0,
        internal_eur_per_kwh: 0.15,
        market: None,
    };
    let settings = SearchSettings {
        grid_options: vec![true, false],
        max_purchase_kw: f64::INFINITY,
        max_sale_kw: f64::INFINITY,
        max_unmet_fraction: 0.0,
        economics: EconomicParams {
            real_discount_rate: 0.06,
            project_lifetime_years: 25.0,
        },
        market_replays: 32,
    };
    let runs: Vec<Vec<_>> = spaces
        .iter()
        .map(|s| {
            s.designs
                .iter()
                .map(|d| run_local(s, d, STEPS, 1.0, &settings.economics).unwrap())
                .collect()
        })
        .collect();
    c.bench_function("evaluate_config_5_prosumers_8760_steps", |b| {
        b.iter(|| {
            let config = Config {
                index: 0,
                designs: &[5, 1, 2, 0, 1],
                grid_connected: true,
            };
            black_box(evaluate_config(config, &runs, &inputs, &settings).unwrap())
        })
    });
    let total: u64 = spaces
        .iter()
        .map(|s| s.designs.len() as u64)
        .product::<u64>()
        * 2;
    let mut group = c.benchmark_group("search");
    group.throughput(Throughput::Elements(total));
    group.sample_size(10);
    group.bench_function("search_1944_configs_all_cores", |b| {
        b.iter(|| {
            black_box(
                search(
                    &spaces,
                    &inputs,
                    &settings,
                    STEPS,
                    &|_, _| {},
                    &AtomicBool::new(false),
                )
                .unwrap()
                .ranked
                .len(),
            )
        })
    });
    group.finish();
}

/// One configuration of the built-in scenario, screened (pro rata) as `scg optimize` does.
fn bench_builtin(c: &mut Criterion) {
    let scenario = scg_model::builtin::bergamo().unwrap();
    let prepared = common::PreparedSearch::new(&scenario, 1);
    let search = prepared.search(&scenario);
    let (spaces, inputs, settings) = (&search.spaces, &search.inputs, search.settings);
    let runs = search.local_runs();
    // The last design of every prosumer: the largest PV (and battery), so every member
    // exports and the Ritiro Dedicato floor is exercised.
    let designs: Vec<usize> = spaces.iter().map(|s| s.designs.len() - 1).collect();
    c.bench_function("evaluate_config_builtin_bergamo", |b| {
        b.iter(|| {
            let config = Config {
                index: 0,
                designs: &designs,
                grid_connected: true,
            };
            black_box(evaluate_config(config, &runs, inputs, settings).unwrap())
        })
    });
    let parts = residual_parts(&runs);
    let mut scratch = ScreenScratch::default();
    c.bench_function("screen_config_builtin_bergamo", |b| {
        b.iter(|| {
            let config = Config {
                index: 0,
                designs: &designs,
                grid_connected: true,
            };
            black_box(screen_config(config, &runs, &parts, inputs, settings, &mut scratch).unwrap())
        })
    });
    // One block of the search: the same first designs, every design of the last prosumer.
    let radices: Vec<usize> = spaces.iter().map(|s| s.designs.len()).collect();
    let space = Screened {
        radices: &radices,
        runs: &runs,
        parts: &parts,
    };
    let block = Block {
        first_designs: &designs[..designs.len() - 1],
        grid_connected: true,
        grid_option: 0,
    };
    let mut out = Vec::new();
    let mut group = c.benchmark_group("block");
    group.throughput(Throughput::Elements(radices[radices.len() - 1] as u64));
    group.bench_function("screen_block_builtin_bergamo", |b| {
        b.iter(|| {
            out.clear();
            screen_block(block, &space, inputs, settings, &mut scratch, &mut out).unwrap();
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_builtin);
criterion_main!(benches);
