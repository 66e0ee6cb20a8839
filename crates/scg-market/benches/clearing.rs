//! Clearing speed: 100,000 orders in one interval (target < 50 ms), growth with book size,
//! and a year of 15-minute intervals for the five-prosumer community (target well under 1 s).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scg_market::community::{CommunityMarket, GridTariff};
use scg_market::{ClearingConfig, GridFee, Mechanism, Order, Price, Source, clear};
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
        b.iter(|| {
            let mut volume = 0i64;
            for (t, net) in nets.iter().enumerate() {
                let out = market
                    .clear_interval(t as u32, &ids, net, tariff, t % 96 == 76)
                    .expect("valid inputs");
                volume += out.p2p_volume_wh.0;
            }
            volume
        })
    });
    group.finish();
}

criterion_group!(benches, bench_orders, bench_year);
criterion_main!(benches);
