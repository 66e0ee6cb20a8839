//! Component model throughput: a year of battery steps (8,760 at 60 min, 35,040 at 15 min) for
//! both models, a grid bill and a CER year. Target: a year of battery steps well under 1 ms.

use criterion::{Criterion, criterion_group, criterion_main};
use scg_sim::battery::{BatteryParams, IdealBattery, KineticBattery, KineticParams, Storage};
use scg_sim::cer::{CerMember, CerParams, PlantSizeClass, evaluate};
use scg_sim::grid::{GridConfig, GridInputs, GridTariff, PurchaseTariff, SellBack};
use std::hint::black_box;

const HOURS: usize = 8760;

/// A deterministic net-load pattern, kW: surplus by day, deficit by night.
fn net_kw(t: usize) -> f64 {
    let hour = (t % 24) as f64;
    let day = (t / 24) as f64;
    8.0 * ((hour - 6.0) / 24.0 * std::f64::consts::TAU).sin() + 2.0 * (day * 0.37).sin()
}

fn params() -> BatteryParams {
    BatteryParams {
        capacity_kwh: 40.0,
        round_trip_efficiency: 0.9,
        min_soc: 0.2,
        initial_soc: 0.5,
        max_charge_kw: 10.0,
        max_discharge_kw: 10.0,
    }
}

fn kinetic() -> KineticParams {
    KineticParams {
        capacity_ratio: 0.403,
        rate_constant_per_h: 0.827,
        max_charge_rate_per_h: 1.0,
        max_charge_current_kw: f64::INFINITY,
    }
}

/// The dispatcher's pattern: ask the limit, then apply.
fn run_year<S: Storage>(battery: &mut S, steps: usize, dt_h: f64, net: &[f64]) -> f64 {
    let mut sum = 0.0;
    for &n in net.iter().take(steps) {
        let flow = if n > 0.0 {
            let p = n.min(battery.max_charge_kw(dt_h));
            battery.charge(p, dt_h)
        } else {
            let p = (-n).min(battery.max_discharge_kw(dt_h));
            battery.discharge(p, dt_h)
        };
        if let Ok(f) = flow {
            sum += f.stored_change_kwh;
        }
    }
    sum
}

fn battery_year(c: &mut Criterion) {
    let net_hourly: Vec<f64> = (0..HOURS).map(net_kw).collect();
    let net_quarter: Vec<f64> = (0..HOURS * 4).map(|t| net_kw(t / 4)).collect();
    let mut g = c.benchmark_group("battery_year");
    g.bench_function("ideal_8760x60min", |b| {
        b.iter(|| {
            let mut bat = IdealBattery::new(params()).expect("valid");
            black_box(run_year(&mut bat, HOURS, 1.0, black_box(&net_hourly)))
        })
    });
    g.bench_function("kinetic_8760x60min", |b| {
        b.iter(|| {
            let mut bat = KineticBattery::new(params(), kinetic()).expect("valid");
            black_box(run_year(&mut bat, HOURS, 1.0, black_box(&net_hourly)))
        })
    });
    g.bench_function("ideal_35040x15min", |b| {
        b.iter(|| {
            let mut bat = IdealBattery::new(params()).expect("valid");
            black_box(run_year(&mut bat, HOURS * 4, 0.25, black_box(&net_quarter)))
        })
    });
    g.bench_function("kinetic_35040x15min", |b| {
        b.iter(|| {
            let mut bat = KineticBattery::new(params(), kinetic()).expect("valid");
            black_box(run_year(&mut bat, HOURS * 4, 0.25, black_box(&net_quarter)))
        })
    });
    g.finish();
}

fn grid_and_cer_year(c: &mut Criterion) {
    let month: Vec<u8> = (0..HOURS).map(|t| (t / 730).min(11) as u8 + 1).collect();
    let zonal: Vec<f64> = (0..HOURS).map(|t| 100.0 + 40.0 * net_kw(t).sin()).collect();
    let config = GridConfig {
        purchase: PurchaseTariff::Zonal {
            adder_eur_per_kwh: 0.12,
        },
        sell_back: SellBack::RitiroDedicato {
            minimum_price_eur_per_mwh: 47.5,
            minimum_price_limit_mwh: 1500.0,
        },
        demand_charge_eur_per_kw_month: 5.0,
        max_purchase_kw: None,
        max_sale_kw: None,
    };
    let inputs = GridInputs {
        step_hours: 1.0,
        month: &month,
        band: None,
        zonal_price_eur_per_mwh: Some(&zonal),
    };
    let tariff = GridTariff::new(&config, &inputs).expect("valid tariff");
    let buy: Vec<f64> = (0..HOURS).map(|t| (-net_kw(t)).max(0.0)).collect();
    let sell: Vec<f64> = (0..HOURS).map(|t| net_kw(t).max(0.0)).collect();
    c.bench_function("grid_bill_8760", |b| {
        b.iter(|| {
            black_box(
                tariff
                    .bill(black_box(&buy), black_box(&sell))
                    .expect("bill"),
            )
        })
    });
    let params = CerParams {
        size_class: PlantSizeClass::UpTo200Kw,
        pv_bonus_eur_per_mwh: 10.0,
        valorisation_eur_per_mwh: 8.0,
        producer_share: 0.5,
    };
    let members: Vec<CerMember<'_>> = (0..5)
        .map(|m| {
            if m % 2 == 0 {
                CerMember::new(&sell, &buy)
            } else {
                CerMember::new(&buy, &sell)
            }
        })
        .collect();
    c.bench_function("cer_year_5_members", |b| {
        b.iter(|| black_box(evaluate(&params, black_box(&zonal), &members).expect("cer")))
    });
}

criterion_group!(benches, battery_year, grid_and_cer_year);
criterion_main!(benches);
