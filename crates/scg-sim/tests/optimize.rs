//! The sizing search: its fast community replay agrees with the full year loop, infeasible
//! designs are dropped, ranking is by NPC, and cancellation keeps the results so far.
#![allow(clippy::unwrap_used)]

mod common;

use common::bits;
use scg_sim::accounting::CerSetup;
use scg_sim::battery::{BatteryConfig, BatteryModelKind, KineticConfig};
use scg_sim::cer::{CerParams, PlantSizeClass};
use scg_sim::converter::ConverterConfig;
use scg_sim::dispatch::{BatteryUnit, MemberBattery};
use scg_sim::economics::{ComponentCosts, EconomicParams};
use scg_sim::grid::{GridConfig, GridInputs, GridTariff, PurchaseTariff, SellBack, TariffSeries};
use scg_sim::optimize::{
    Config, LocalDesign, ProsumerSpace, ScreenScratch, SearchInputs, SearchSettings,
    evaluate_config, residual_parts, run_local, screen_config, search,
};
use scg_sim::year::{ProsumerSeries, TotalsSink, YearSettings, run_year};
use std::sync::atomic::AtomicBool;

const STEPS: usize = 24 * 28;

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
    let c: ConverterConfig = toml::from_str(&format!(
        "capacity_kw = {}\ncapital_cost_eur_per_kw = 200.0",
        kwh / 2.0
    ))
    .unwrap();
    (b, c)
}

fn pv_costs(kwp: f64) -> Vec<(String, ComponentCosts)> {
    vec![(
        "pv".into(),
        ComponentCosts {
            capital_eur: 1000.0 * kwp,
            replacement_eur: 800.0 * kwp,
            om_eur_per_year: 15.0 * kwp,
            lifetime_years: 25.0,
        },
    )]
}

struct Fixture {
    loads: Vec<Vec<f64>>,
    pv: Vec<f64>,
    wind: Vec<f64>,
    tariff: GridTariff,
    /// Hourly zonal price: 60 EUR/MWh gives the TIP's cap, 120 + 8 of valorisation.
    zonal: Vec<f64>,
    peak: Vec<bool>,
}

fn fixture() -> Fixture {
    let day = |t: usize| (t % 24) as f64;
    Fixture {
        loads: vec![
            (0..STEPS)
                .map(|t| 10.0 + 8.0 * (day(t) >= 17.0 && day(t) <= 22.0) as u8 as f64)
                .collect(),
            (0..STEPS)
                .map(|t| 20.0 + 30.0 * (day(t) >= 8.0 && day(t) <= 18.0) as u8 as f64)
                .collect(),
            (0..STEPS).map(|t| 5.0 + (t % 7) as f64).collect(),
        ],
        pv: (0..STEPS)
            .map(|t| (1.0 - (day(t) - 12.5).abs() / 6.0).max(0.0) * 0.7)
            .collect(),
        wind: (0..STEPS)
            .map(|t| 3.0 + 2.0 * ((t as f64) / 11.0).sin())
            .collect(),
        tariff: GridTariff::from_series(&TariffSeries {
            step_hours: 1.0,
            month: &[2; STEPS],
            purchase_eur_per_kwh: &(0..STEPS)
                .map(|t| {
                    if (8.0..19.0).contains(&day(t)) {
                        0.30
                    } else {
                        0.22
                    }
                })
                .collect::<Vec<_>>(),
            sell_eur_per_kwh: &[0.08; STEPS],
            demand_charge_eur_per_kw_month: 2.0,
            max_purchase_kw: f64::INFINITY,
            max_sale_kw: f64::INFINITY,
        })
        .unwrap(),
        zonal: vec![60.0; STEPS],
        peak: (0..STEPS).map(|t| (18.0..21.0).contains(&day(t))).collect(),
    }
}

fn spaces(f: &Fixture) -> Vec<ProsumerSpace<'_>> {
    f.loads
        .iter()
        .enumerate()
        .map(|(i, load)| {
            let mut designs = Vec::new();
            for kwp in [0.0, 20.0, 60.0] {
                for kwh in [None, Some(40.0), Some(120.0)] {
                    designs.push(LocalDesign {
                        pv_kwp: kwp,
                        turbines: if i == 1 { 1.0 } else { 0.0 },
                        battery: kwh.map(battery),
                        generation_costs: pv_costs(kwp),
                    });
                }
            }
            ProsumerSpace {
                id: format!("p{i}"),
                series: ProsumerSeries {
                    load_kw: load,
                    load_draw: None,
                    pv_draw: None,
                    pv_kw_per_kwp: &f.pv,
                    pv_kwp: 0.0,
                    wind_kw_per_turbine: &f.wind,
                    turbines: 0.0,
                    ev_kw: &[],
                    v2g_kw: &[],
                },
                designs,
            }
        })
        .collect()
}

fn inputs(f: &Fixture) -> SearchInputs<'_> {
    SearchInputs {
        dt_h: 1.0,
        steps_per_hour: 1,
        tariff: &f.tariff,
        cer: CerSetup {
            enabled: true,
            params: CerParams {
                size_class: PlantSizeClass::UpTo200Kw,
                pv_bonus_eur_per_mwh: 0.0,
                valorisation_eur_per_mwh: 8.0,
                producer_share: 0.5,
            },
            zonal_hourly_eur_per_mwh: &f.zonal,
        },
        grid_at_peak: &f.peak,
        cer_npc_factor: 1.0,
        internal_eur_per_kwh: 0.15,
        market: None,
    }
}

fn settings(max_purchase_kw: f64) -> SearchSettings {
    SearchSettings {
        grid_options: vec![true, false],
        max_purchase_kw,
        max_sale_kw: f64::INFINITY,
        max_unmet_fraction: 0.0,
        economics: EconomicParams {
            real_discount_rate: 0.06,
            project_lifetime_years: 25.0,
        },
        market_replays: 8,
    }
}

#[test]
fn fast_replay_matches_the_full_year_loop() {
    let f = fixture();
    let sp = spaces(&f);
    let s = settings(60.0);
    let designs = [4usize, 8, 2];
    let runs: Vec<Vec<_>> = sp
        .iter()
        .map(|p| {
            p.designs
                .iter()
                .map(|d| run_local(p, d, STEPS, 1.0, &s.economics).unwrap())
                .collect()
        })
        .collect();
    let config = Config {
        index: 0,
        designs: &designs,
        grid_connected: true,
    };
    let fast = evaluate_config(config, &runs, &inputs(&f), &s).unwrap();

    let series: Vec<_> = sp
        .iter()
        .zip(designs)
        .map(|(p, d)| ProsumerSeries {
            pv_kwp: p.designs[d].pv_kwp,
            turbines: p.designs[d].turbines,
            ev_kw: &[],
            v2g_kw: &[],
            ..p.series
        })
        .collect();
    let mut batteries: Vec<MemberBattery> = sp
        .iter()
        .zip(designs)
        .map(|(p, d)| {
            p.designs[d].battery.as_ref().map(|(b, c)| {
                Box::new(BatteryUnit {
                    battery: scg_sim::battery::Battery::from_config(b).unwrap(),
                    converter: scg_sim::converter::Converter::from_config(c).unwrap(),
                })
            })
        })
        .collect();
    let mut sink = TotalsSink::new(3, 1.0);
    run_year(
        &series,
        &mut batteries,
        &YearSettings {
            dt_h: 1.0,
            grid_at_peak: &f.peak,
            max_purchase_kw: 60.0,
            max_sale_kw: f64::INFINITY,
        },
        STEPS,
        &mut sink,
    )
    .unwrap();
    let full = scg_sim::year::EnergySums::total(&sink.prosumers);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(
        close(fast.grid_import_kwh, full.grid_import_kwh),
        "{} vs {}",
        fast.grid_import_kwh,
        full.grid_import_kwh
    );
    assert!(close(fast.grid_export_kwh, full.grid_export_kwh));
    assert!(close(fast.p2p_kwh, full.p2p_import_kwh));
    assert!(close(fast.excess_kwh, full.excess_kwh));
    assert!(close(fast.unmet_fraction * full.load_kwh, full.unmet_kwh));
}

#[test]
fn search_ranks_by_npc_and_drops_infeasible_designs() {
    let f = fixture();
    let sp = spaces(&f);
    let s = settings(f64::INFINITY);
    let out = search(
        &sp,
        &inputs(&f),
        &s,
        STEPS,
        &|_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(out.total, 9 * 9 * 9 * 2);
    assert_eq!(out.evaluated, out.total);
    assert!(!out.cancelled);
    assert!(
        out.infeasible > 0,
        "islanded designs without storage cannot serve the night load"
    );
    assert!(out.ranked.windows(2).all(|w| w[0].npc_eur <= w[1].npc_eur));
    assert!(out.ranked.iter().all(|r| r.unmet_fraction <= 1e-12));
    // Brute force over the same space with the public evaluator: the winner is the minimum.
    let runs: Vec<Vec<_>> = sp
        .iter()
        .map(|p| {
            p.designs
                .iter()
                .map(|d| run_local(p, d, STEPS, 1.0, &s.economics).unwrap())
                .collect()
        })
        .collect();
    let mut best = f64::INFINITY;
    for a in 0..9 {
        for b in 0..9 {
            for c in 0..9 {
                for g in [true, false] {
                    let config = Config {
                        index: 0,
                        designs: &[a, b, c],
                        grid_connected: g,
                    };
                    let r = evaluate_config(config, &runs, &inputs(&f), &s).unwrap();
                    if r.unmet_fraction <= 1e-12 {
                        best = best.min(r.npc_eur);
                    }
                }
            }
        }
    }
    assert_eq!(out.ranked[0].npc_eur, best);
}

#[test]
fn cancellation_keeps_what_was_done() {
    let f = fixture();
    let sp = spaces(&f);
    let cancel = AtomicBool::new(true);
    let out = search(
        &sp,
        &inputs(&f),
        &settings(f64::INFINITY),
        STEPS,
        &|_, _| {},
        &cancel,
    )
    .unwrap();
    assert!(out.cancelled);
    assert!(out.evaluated < out.total);
}

/// The search's year-at-once screening gives every configuration the per-step evaluation's
/// result bit for bit: on- and off-grid, a purchase limit, a demand charge (the fixture's
/// tariff), and a Ritiro Dedicato floor that some members' sales reach (those go step by step)
/// and others do not.
#[test]
fn screening_equals_the_step_by_step_evaluation() {
    let f = fixture();
    let sp = spaces(&f);
    let rid = GridTariff::new(
        &GridConfig {
            purchase: PurchaseTariff::Flat {
                price_eur_per_kwh: 0.25,
            },
            sell_back: SellBack::RitiroDedicato {
                minimum_price_eur_per_mwh: 47.5,
                // 2 MWh over the fixture's four weeks: the 60 kWp designs' sales reach it.
                minimum_price_limit_mwh: 2.0,
            },
            demand_charge_eur_per_kw_month: 0.0,
            max_purchase_kw: None,
            max_sale_kw: None,
        },
        &GridInputs {
            step_hours: 1.0,
            month: &[2; STEPS],
            band: None,
            zonal_price_eur_per_mwh: Some(
                &(0..STEPS)
                    .map(|t| 40.0 + (t % 24) as f64)
                    .collect::<Vec<_>>(),
            ),
        },
    )
    .unwrap();
    for (tariff, max_purchase_kw) in [(&f.tariff, 60.0), (&rid, f64::INFINITY)] {
        let s = settings(max_purchase_kw);
        let inputs = SearchInputs {
            tariff,
            ..inputs(&f)
        };
        let runs: Vec<Vec<_>> = sp
            .iter()
            .map(|p| {
                p.designs
                    .iter()
                    .map(|d| run_local(p, d, STEPS, 1.0, &s.economics).unwrap())
                    .collect()
            })
            .collect();
        let parts = residual_parts(&runs);
        let mut scratch = ScreenScratch::default();
        let mut configs = 0;
        for a in 0..9 {
            for b in 0..9 {
                for c in [0, 4, 8] {
                    for grid_connected in [true, false] {
                        let designs = [a, b, c];
                        let config = Config {
                            index: configs,
                            designs: &designs,
                            grid_connected,
                        };
                        let step = evaluate_config(config, &runs, &inputs, &s).unwrap();
                        let year = screen_config(config, &runs, &parts, &inputs, &s, &mut scratch)
                            .unwrap();
                        assert_eq!(bits(&step), bits(&year), "{designs:?} {grid_connected}");
                        configs += 1;
                    }
                }
            }
        }
    }
}
