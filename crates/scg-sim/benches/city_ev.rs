//! The year loop of a city with EV sites: the generated city of 200 members and 100 LLF EVs
//! (`scg scenario city --members 200 --evs 100 --seed 1`) at 15-minute steps, its first week
//! (672 steps) with the pay-as-clear market, driven two ways from a fresh community each
//! iteration: `year::drive` (from 16 prosumers on, the EV sites ahead on a thread of their
//! own) and the same intervals stepped in line through `Community::step`. Criterion reports
//! the time per step (throughput of 672 elements). See docs/scaling.md.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use scg_model::Scenario;
use scg_model::city::{CityOptions, city_toml};
use scg_sim::community::{Community, Forecast, IntervalInputs, ProsumerInterval, Sharing};
use scg_sim::market_stage::{MarketStage, community_market};
use scg_sim::prepare::{fleet, prepare};
use scg_sim::year::{FlowSink, Prices, StepRecord, YearSettings, community_surplus_kw, drive};
use scg_sim::{Assets, ComponentError, engine::battery_unit, resolve_inputs};
use std::hint::black_box;

const MEMBERS: usize = 200;
const EVS: u64 = 100;
const STEPS: usize = 7 * 96;

/// Counts what it is handed, keeps nothing.
struct Count(usize);

impl FlowSink for Count {
    fn record(&mut self, r: &StepRecord<'_>) -> Result<(), ComponentError> {
        self.0 += r.flows.len();
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let options = CityOptions {
        members: MEMBERS,
        evs: EVS,
        ev_policy: "llf".into(),
    };
    let text = city_toml(&options, 1)
        .unwrap()
        .replace("step_minutes = 60", "step_minutes = 15");
    let scenario = Scenario::from_toml_str(&text, "city").unwrap();
    assert_eq!(scenario.time.step_minutes, 15);
    let assets = Assets::from_scenario(&scenario).unwrap();
    let inputs = resolve_inputs(&scenario, &assets, &mut |_| Err("no files".into())).unwrap();
    let prepared = prepare(&scenario, &assets, &inputs, 1, &mut |_, _| {}).unwrap();
    let (retail, feed_in) = prepared.prices_eur_per_mwh();
    let ids: Vec<String> = scenario.prosumers.iter().map(|p| p.id.clone()).collect();
    let market = community_market(scenario.community.market.as_ref().unwrap()).unwrap();
    let settings = YearSettings {
        dt_h: 0.25,
        grid_at_peak: &prepared.grid_at_peak,
        max_purchase_kw: f64::INFINITY,
        max_sale_kw: f64::INFINITY,
    };
    let series = prepared.series();
    let new_community = || {
        let batteries = assets
            .prosumers
            .iter()
            .map(|a| battery_unit(a).unwrap())
            .collect();
        let fleets = scenario
            .prosumers
            .iter()
            .zip(&assets.prosumers)
            .enumerate()
            .map(|(i, (p, a))| fleet(i, p, a, &prepared.grid, 1).unwrap())
            .collect::<Vec<_>>();
        assert!(fleets.iter().any(Option::is_some));
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
        Community::new(settings.community(), batteries, fleets, sharing).unwrap()
    };
    let prices = Prices {
        retail_eur_per_mwh: &retail,
        feed_in_eur_per_mwh: &feed_in,
        community_surplus_kw: None,
    };
    let surplus = community_surplus_kw(&series, STEPS);
    let mut group = c.benchmark_group("city_ev_week");
    group.sample_size(10);
    group.throughput(Throughput::Elements(STEPS as u64));
    group.bench_function("200_members_100_llf_evs_15min_drive", |b| {
        b.iter_batched(
            new_community,
            |mut community| {
                let mut sink = Count(0);
                drive(
                    &mut community,
                    &series,
                    &settings,
                    &prices,
                    STEPS,
                    &mut sink,
                    &mut |_, _| {},
                )
                .unwrap();
                black_box(sink.0);
                community
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("200_members_100_llf_evs_15min_in_line", |b| {
        b.iter_batched(
            new_community,
            |mut community| {
                let mut intervals = vec![ProsumerInterval::default(); MEMBERS];
                for t in 0..STEPS {
                    for (i, p) in series.iter().enumerate() {
                        intervals[i] = ProsumerInterval {
                            load_kw: p.load_kw[t],
                            pv_kw: p.pv_kw(t),
                            wind_kw: p.wind_kw(t),
                        };
                    }
                    let inputs = IntervalInputs {
                        step: t,
                        prosumers: &intervals,
                        retail_eur_per_mwh: retail[t],
                        grid_at_peak: prepared.grid_at_peak[t],
                    };
                    let forecast = Forecast {
                        retail_eur_per_mwh: &retail[t..],
                        grid_at_peak: &prepared.grid_at_peak[t..],
                        community_surplus_kw: &surplus[t..],
                        surplus_value_eur_per_mwh: &feed_in[t..],
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
