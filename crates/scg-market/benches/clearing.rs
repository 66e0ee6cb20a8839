//! Clearing speed: 100,000 orders in one interval (target < 50 ms), growth with book size,
//! a year of 15-minute intervals for the five-prosumer community (target well under 1 s), and
//! a city's interval (`city_interval`): 1,000 and 10,000 members whose truthful agents bid the
//! retail price and offer at the feed-in price (target: well under 1 ms for 10,000).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scg_market::community::{CommunityClearing, CommunityMarket, GridTariff};
use scg_market::{
    ClearingConfig, GridCounterpart, GridFee, Mechanism, Order, Price, Source, clear,
};
use std::hint::black_box;

/// A deterministic pseudo-random book (xorshift64*, fixed seed): half bids, half offers,
/// energies 0.1–5 kWh, prices 0–300 EUR/MWh.
fn book(n: usize) -> Vec<Order> {
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..n)
        .map(|k| {
            let e = 100 + (next() % 4_900) as i64;
            let p = Price::from_milli((next() % 300_000) as i64);
            if k % 2 == 0 {
                Order::bid(&format!("b{k}"), &format!("p{}", k % 1000), 0, e, p)
            } else {
                Order::offer(
                    &format!("o{k}"),
                    &format!("p{}", k % 1000),
                    0,
                    e,
                    p,
                    Some(Source::Pv),
                )
            }
        })
        .collect()
}

fn bench_orders(c: &mut Criterion) {
    let mut group = c.benchmark_group("clear_one_interval");
    group.sample_size(10);
    for n in [1_000usize, 10_000, 100_000] {
        let orders = book(n);
        group.throughput(Throughput::Elements(n as u64));
        for mechanism in [
            Mechanism::PayAsClear,
            Mechanism::PayAsBid,
            Mechanism::PayAsOffer,
        ] {
            let config = ClearingConfig {
                mechanism,
                fee: GridFee::Percent { basis_points: 500 },
                ..Default::default()
            };
            group.bench_with_input(
                BenchmarkId::new(mechanism.to_string(), n),
                &orders,
                |b, o| b.iter(|| clear(black_box(o), &config)),
            );
        }
    }
    group.finish();
}

fn bench_year(c: &mut Criterion) {
    // A year of 15-minute steps: a daily sine of surplus/deficit per prosumer, phase-shifted.
    let ids = ["apartment", "restaurant", "office", "supermarket", "school"];
    let steps = 35_040u32;
    let nets: Vec<[f64; 5]> = (0..steps)
        .map(|t| {
            let x = f64::from(t % 96) / 96.0 * std::f64::consts::TAU;
            std::array::from_fn(|i| 3.0 * (x + i as f64).sin())
        })
        .collect();
    let tariff = GridTariff::from_eur_per_mwh(250.0, 50.0).expect("valid prices");
    let market = CommunityMarket {
        mechanism: Mechanism::PayAsClear,
        fee: GridFee::Constant(Price::from_milli(10_000)),
    };
    let mut group = c.benchmark_group("community_year_15min");
    group.sample_size(10);
    group.bench_function("five_prosumers_pay_as_clear", |b| {
        // As the community step does: one clearing kept over the year.
        b.iter(|| {
            let mut clearing = CommunityClearing::new(market, &ids).expect("valid ids");
            let mut volume = 0i64;
            for (t, net) in nets.iter().enumerate() {
                let out = clearing
                    .clear(t as u32, net, tariff, t % 96 == 76)
                    .expect("valid inputs");
                volume += out.p2p_volume_wh.0;
            }
            volume
        })
    });
    group.finish();
}

/// One interval of a city (deterministic xorshift): about a quarter of the members have a
/// surplus (rooftop PV at noon), the rest a deficit, 0.05-3 kWh each; the community market's
/// agents make two price levels (retail bids, feed-in offers).
fn city_net_kwh(members: usize) -> Vec<f64> {
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    };
    (0..members)
        .map(|_| {
            let kwh = 0.05 + (next() % 2_950) as f64 / 1000.0;
            if next() % 4 == 0 { kwh } else { -kwh }
        })
        .collect()
}

fn bench_city(c: &mut Criterion) {
    let tariff = GridTariff::from_eur_per_mwh(250.0, 50.0).expect("valid prices");
    let mut group = c.benchmark_group("city_interval");
    group.sample_size(20);
    for members in [1_000usize, 10_000] {
        let ids: Vec<String> = (0..members).map(|k| format!("home-{k:05}")).collect();
        let net = city_net_kwh(members);
        group.throughput(Throughput::Elements(members as u64));
        // The community step's call: net positions to orders, clearing, per-member flows, on
        // the clearing the step keeps from one interval to the next.
        let market = CommunityMarket {
            mechanism: Mechanism::PayAsClear,
            fee: GridFee::Constant(Price::from_milli(10_000)),
        };
        let mut clearing = CommunityClearing::new(market, &ids).expect("valid ids");
        group.bench_with_input(
            BenchmarkId::new("community_pay_as_clear", members),
            &net,
            |b, net| {
                b.iter(|| {
                    clearing
                        .clear(0, black_box(net), tariff, false)
                        .map(|out| out.p2p_volume_wh)
                })
            },
        );
        // The same without making the trades (what the community step calls).
        group.bench_with_input(
            BenchmarkId::new("community_fills_pay_as_clear", members),
            &net,
            |b, net| {
                b.iter(|| {
                    clearing
                        .clear_fills(0, black_box(net), tariff, false)
                        .map(|out| out.fills.len())
                })
            },
        );
        // The clearing alone on the same book.
        let orders: Vec<Order> = ids
            .iter()
            .zip(&net)
            .map(|(id, &kwh)| {
                let wh = (kwh * 1000.0).round() as i64;
                if wh > 0 {
                    Order::offer(id, id, 0, wh, tariff.feed_in, Some(Source::Pv))
                } else {
                    Order::bid(id, id, 0, -wh, tariff.retail)
                }
            })
            .collect();
        let config = ClearingConfig {
            mechanism: Mechanism::PayAsClear,
            fee: GridFee::Constant(Price::from_milli(10_000)),
            grid: GridCounterpart {
                sells_at: Some(tariff.retail),
                buys_at: Some(tariff.feed_in),
                peak: false,
            },
        };
        group.bench_with_input(
            BenchmarkId::new("clear_pay_as_clear", members),
            &orders,
            |b, o| b.iter(|| clear(black_box(o), &config)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_orders, bench_year, bench_city);
criterion_main!(benches);
