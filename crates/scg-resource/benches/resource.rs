//! One year at 60-minute steps: synthetic GHI + PV output for one array, and synthetic wind +
//! one turbine; plus the F1/F2/F3 band lookup for the year.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use scg_model::{ModelYear, TimeGrid, TimeSettings};
use scg_resource::solar::{self, MonthlySolar, PvArrayConfig, SolarSite};
use scg_resource::{tariff, wind};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let grid = TimeGrid::new(
        &TimeSettings {
            step_minutes: 60,
            model_year: ModelYear::Homer,
        },
        "Europe/Rome",
    )
    .unwrap();
    let site = SolarSite::new(45.698, 9.677, &grid);
    let monthly = MonthlySolar::RadiationKwhPerM2Day(solar::BERGAMO_GHI_KWH_PER_M2_DAY);
    let array = PvArrayConfig::with_capacity(6.0).to_array();
    let temperature = solar::monthly_to_grid(&solar::BERGAMO_TEMPERATURE_C, &grid);
    c.bench_function("solar_ghi_plus_pv_year_60min", |b| {
        b.iter(|| {
            let ghi = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &grid, 1).unwrap();
            black_box(solar::pv_power_kw(&array, &site, &ghi, &temperature, &grid))
        })
    });
    let ghi = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &grid, 1).unwrap();
    c.bench_function("pv_power_only_year_60min", |b| {
        b.iter(|| black_box(solar::pv_power_kw(&array, &site, &ghi, &temperature, &grid)))
    });
    let params = wind::WindParams::homer_defaults([5.0; 12]);
    let turbine = wind::Turbine {
        curve: wind::builtin_curve("generic_10kw").unwrap(),
        count: 1,
        hub_height_m: 24.0,
    };
    let shear = wind::ShearProfile::Logarithmic {
        surface_roughness_m: 0.25,
    };
    c.bench_function("wind_speed_plus_turbine_year_60min", |b| {
        b.iter(|| {
            let speed = wind::synthesize_speed_m_per_s(&params, &grid, 1).unwrap();
            black_box(wind::turbine_power_kw(
                &turbine, 10.0, &shear, 249.0, &speed, None,
            ))
        })
    });
    c.bench_function("tariff_bands_year_60min", |b| {
        b.iter(|| black_box(tariff::bands(&grid)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
