//! Pay-as-clear aggregates identical prices into levels before matching (`clear.rs`,
//! `Book::by_level`). Books shaped like a city's (many orders, a few price levels, ties
//! everywhere) must clear exactly as an order-by-order uniform auction does: the same volume,
//! clearing interval and price, and the same energy for every order (time priority inside a
//! level). The reference below sorts every order individually.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_market::{
    ClearingConfig, GridCounterpart, GridFee, Mechanism, Order, Price, Side, Source, TradeKind,
    clear,
};
use std::collections::BTreeMap;

/// Order-by-order uniform auction: (volume, (lo, hi), price, energy per order id).
type Reference = (
    i64,
    Option<(Price, Price)>,
    Option<Price>,
    BTreeMap<String, i64>,
);

fn reference(orders: &[Order], fee: GridFee) -> Reference {
    let key = |o: &Order| match o.side {
        Side::Bid => fee.net_limit(o.price),
        Side::Offer => o.price,
    };
    let mut bids: Vec<usize> = (0..orders.len())
        .filter(|&i| orders[i].side == Side::Bid)
        .collect();
    let mut offers: Vec<usize> = (0..orders.len())
        .filter(|&i| orders[i].side == Side::Offer)
        .collect();
    bids.sort_by_key(|&i| (std::cmp::Reverse(key(&orders[i])), i));
    offers.sort_by_key(|&i| (key(&orders[i]), i));
    let mut rem: Vec<i64> = orders.iter().map(|o| o.energy_wh.0).collect();
    let mut filled = BTreeMap::new();
    let (mut i, mut j, mut volume) = (0, 0, 0);
    let mut last = None;
    while i < bids.len() && j < offers.len() {
        let (b, o) = (bids[i], offers[j]);
        if key(&orders[b]) < key(&orders[o]) {
            break;
        }
        let q = rem[b].min(rem[o]);
        rem[b] -= q;
        rem[o] -= q;
        volume += q;
        *filled.entry(orders[b].id.clone()).or_insert(0) += q;
        *filled.entry(orders[o].id.clone()).or_insert(0) += q;
        last = Some((key(&orders[o]), key(&orders[b])));
        if rem[b] == 0 {
            i += 1;
        }
        if rem[o] == 0 {
            j += 1;
        }
    }
    let price = last.map(|(lo, hi): (Price, Price)| Price((lo.0 + hi.0).div_euclid(2)));
    (volume, last, price, filled)
}

/// A city-like book: up to `n` orders, each side at one of a few prices (EUR/MWh), energies
/// 1 Wh-5 kWh, offers from PV, wind or a battery.
fn city_book(n: usize) -> impl Strategy<Value = Vec<Order>> {
    let levels =
        prop::sample::subsequence(vec![40_000i64, 50_000, 110_000, 150_000, 250_000], 1..=3);
    (
        levels,
        prop::collection::vec((any::<bool>(), 0usize..3, 1i64..5_000, 0usize..3), 1..n),
    )
        .prop_map(|(prices, orders)| {
            orders
                .into_iter()
                .enumerate()
                .map(|(k, (bid, level, wh, source))| {
                    let price = Price::from_milli(prices[level % prices.len()]);
                    let who = format!("m{k}");
                    if bid {
                        Order::bid(&format!("b{k}"), &who, 0, wh, price)
                    } else {
                        let source = [Source::Pv, Source::Wind, Source::Battery][source];
                        Order::offer(&format!("o{k}"), &who, 0, wh, price, Some(source))
                    }
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn aggregated_clearing_equals_order_by_order_clearing(
        book in city_book(300),
        fee_milli in 0i64..20_000,
    ) {
        let fee = GridFee::Constant(Price::from_milli(fee_milli));
        let config = ClearingConfig {
            mechanism: Mechanism::PayAsClear,
            fee,
            grid: GridCounterpart::default(),
        };
        let out = clear(&book, &config).unwrap();
        let (volume, range, price, filled) = reference(&book, fee);
        let Some(interval) = out.intervals.first() else {
            prop_assert!(book.is_empty());
            return Ok(());
        };
        prop_assert_eq!(interval.volume_wh.0, volume);
        prop_assert_eq!(interval.clearing_range, range);
        prop_assert_eq!(interval.price, price);
        let mut got: BTreeMap<String, i64> = BTreeMap::new();
        for t in interval.trades.iter().filter(|t| t.kind() == TradeKind::P2p) {
            *got.entry(t.bid().to_owned()).or_insert(0) += t.energy_wh().0;
            *got.entry(t.offer().to_owned()).or_insert(0) += t.energy_wh().0;
            prop_assert_eq!(Some(t.price()), price);
        }
        prop_assert_eq!(got, filled);
    }
}
