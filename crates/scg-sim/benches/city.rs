//! One community step at city scale: the generated city of 1,000 members (`scg scenario city
//! --members 1000 --seed 1`, no EVs) with its prepared loads and PV, the pay-as-clear market
//! of the built-in scenario, stepped through its first day (24 steps of 60 minutes from a fresh
//! community; criterion reports the time per step through the throughput of 24 elements).
//! The baseline of issue 14's step goal; see docs/scaling.md.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use scg_model::Scenario;
use scg_model::city::{CityOptions, city_toml};
use scg_sim::community::{Community, Forecast, IntervalInputs, ProsumerInterval, Sharing};
use scg_sim::market_stage::{MarketStage, community_market};
use scg_sim::year::YearSettings;
use scg_sim::{Assets, engine::battery_unit, prepare::prepare, resolve_inputs};
use std::hint::black_box;

const MEMBERS: usize = 1_000;
const STEPS: usize = 24;

fn bench(c: &mut Criterion) {
    let options = CityOptions {
        members: MEMBERS,
        evs: 0,
        ev_policy: "llf".into(),
    };
    let scenario = Scenario::from_toml_str(&city_toml(&options, 1).unwrap(), "city").unwrap();
    let assets = Assets::from_scenario(&scenario).unwrap();
    let inputs = resolve_inputs(&scenario, &assets, &mut |_| Err("no files".into())).unwrap();
    let prepared = prepare(&scenario, &assets, &inputs, 1, &mut |_, _| {}).unwrap();
    let (retail, feed_in) = prepared.prices_eur_per_mwh();
    let ids: Vec<String> = scenario.prosumers.iter().map(|p| p.id.clone()).collect();
    let market = community_market(scenario.community.market.as_ref().unwrap()).unwrap();
    let settings = YearSettings {
        dt_h: 1.0,
        grid_at_peak: &prepared.grid_at_peak,
        max_purchase_kw: f64::INFINITY,
        max_sale_kw: f64::INFINITY,
    };
    // The day's inputs per step, as `year::drive` builds them.
    let day: Vec<Vec<ProsumerInterval>> = (0..STEPS)
        .map(|t| {
            prepared
                .prosumers
                .iter()
                .map(|p| ProsumerInterval {
                    load_kw: p.load.load_kw[t],
                    pv_kw: p.pv_kw_per_kwp.get(t).map_or(0.0, |kw| kw * p.pv_kwp),
                    wind_kw: p
                        .wind_kw_per_turbine
                        .get(t)
                        .map_or(0.0, |kw| kw * p.turbines),
                })
                .collect()
        })
        .collect();
    let new_community = || {
        let batteries = assets
            .prosumers
            .iter()
            .map(|a| battery_unit(a).unwrap())
            .collect();
        let sharing = Sharing::Market(Box::new(
            MarketStage::new(
                market,
                &ids,
                &retail,
                &feed_in,
                prepared.grid.steps_per_hour(),
            )
            .unwrap(),
        ));
        let fleets = (0..MEMBERS).map(|_| None).collect();
        Community::new(settings.community(), batteries, fleets, sharing).unwrap()
    };
    let mut group = c.benchmark_group("city_step");
    group.sample_size(10);
    group.throughput(Throughput::Elements(STEPS as u64));
    group.bench_function("1000_members_market_60min", |b| {
        b.iter_batched(
            new_community,
            |mut community| {
                for (t, prosumers) in day.iter().enumerate() {
                    let inputs = IntervalInputs {
                        step: t,
                        prosumers,
                        retail_eur_per_mwh: retail[t],
                        grid_at_peak: prepared.grid_at_peak[t],
                    };
                    let forecast = Forecast {
                        retail_eur_per_mwh: &retail[t..],
                        grid_at_peak: &prepared.grid_at_peak[t..],
                        ..Forecast::default()
                    };
                    black_box(community.step(&inputs, &forecast).unwrap().flows.len());
                }
                community
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
