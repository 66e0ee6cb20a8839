//! Clearing: hand-computed books, the brute-force reference for pay-as-clear, and the
//! guarantees (limit prices with fees, conservation of energy and money) as properties.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_market::{
    ClearingConfig, GridCounterpart, GridFee, Mechanism, NanoEur, Order, Price, Side, Source,
    TradeKind, clear,
};
use std::collections::BTreeMap;

fn eur(p: f64) -> Price {
    Price::from_eur_per_mwh(p).unwrap()
}

fn cfg(mechanism: Mechanism) -> ClearingConfig {
    ClearingConfig {
        mechanism,
        ..Default::default()
    }
}

/// A small book whose pay-as-clear result is computed by hand below.
fn book() -> Vec<Order> {
    vec![
        Order::bid("b1", "apartment", 0, 3000, eur(200.0)),
        Order::bid("b2", "office", 0, 2000, eur(120.0)),
        Order::bid("b3", "school", 0, 4000, eur(60.0)),
        Order::offer("o1", "supermarket", 0, 2500, eur(50.0), Some(Source::Pv)),
        Order::offer(
            "o2",
            "restaurant",
            0,
            1500,
            eur(100.0),
            Some(Source::Battery),
        ),
        Order::offer("o3", "school", 0, 5000, eur(150.0), Some(Source::Wind)),
    ]
}

#[test]
fn pay_as_clear_hand_computed() {
    // Demand: 3000@200, 2000@120, 4000@60. Supply: 2500@50, 1500@100, 5000@150.
    // Walk: b1×o1 2500, b1×o2 500, b2×o2 1000, then b2 (120) vs o3 (150) stops.
    // Volume 4000 Wh; last accepted offer o2 = 100, last accepted bid b2 = 120 → price 110.
    let out = clear(&book(), &cfg(Mechanism::PayAsClear)).unwrap();
    let i = &out.intervals[0];
    assert_eq!(i.volume_wh.0, 4000);
    assert_eq!(i.clearing_range, Some((eur(100.0), eur(120.0))));
    assert_eq!(i.price, Some(eur(110.0)));
    let pairs: Vec<(&str, &str, i64)> = i
        .trades
        .iter()
        .map(|t| (t.bid(), t.offer(), t.energy_wh().0))
        .collect();
    assert_eq!(
        pairs,
        vec![("b1", "o1", 2500), ("b1", "o2", 500), ("b2", "o2", 1000)]
    );
    // 4 kWh at 110 EUR/MWh = 0.44 EUR exactly.
    let paid: NanoEur = i.trades.iter().map(|t| t.buyer_pays()).sum();
    assert_eq!(paid, NanoEur(440_000_000));
}

#[test]
fn pay_as_clear_with_constant_fee_clears_on_net_limits() {
    // Fee 15 EUR/MWh: b2's net limit is 105, so b2 still takes o2 (100); range [100, 105],
    // price floor(102.5) = 102.5 exactly in milli-euro; buyers pay 117.5.
    let config = ClearingConfig {
        mechanism: Mechanism::PayAsClear,
        fee: GridFee::Constant(eur(15.0)),
        ..Default::default()
    };
    let out = clear(&book(), &config).unwrap();
    let i = &out.intervals[0];
    assert_eq!(i.volume_wh.0, 4000);
    assert_eq!(i.price, Some(eur(102.5)));
    assert!(i.trades.iter().all(|t| t.buyer_price() == eur(117.5)));
    // Fees: 4 kWh × 15 EUR/MWh = 0.06 EUR.
    assert_eq!(i.fees, NanoEur(60_000_000));
}

#[test]
fn pay_as_bid_trades_at_the_bid_and_pay_as_offer_at_the_offer() {
    // Input order is arrival order: the three bids arrive first and rest. o1 meets the best
    // bid b1 at b1's price (200); o2 meets b1's remainder at 200 then b2 at 120; o3 (150)
    // meets nothing (b2's rest bids 120, b3 60).
    let out = clear(&book(), &cfg(Mechanism::PayAsBid)).unwrap();
    let t: Vec<(&str, &str, i64, Price)> = out.intervals[0]
        .trades
        .iter()
        .map(|t| (t.bid(), t.offer(), t.energy_wh().0, t.price()))
        .collect();
    assert_eq!(
        t,
        vec![
            ("b1", "o1", 2500, eur(200.0)),
            ("b1", "o2", 500, eur(200.0)),
            ("b2", "o2", 1000, eur(120.0)),
        ]
    );
    let out = clear(&book(), &cfg(Mechanism::PayAsOffer)).unwrap();
    let t: Vec<(&str, &str, i64, Price)> = out.intervals[0]
        .trades
        .iter()
        .map(|t| (t.bid(), t.offer(), t.energy_wh().0, t.price()))
        .collect();
    // All offers rest; b1 takes o1 (50) then o2 (100); b2 takes o2's rest at 100; b3 nothing.
    assert_eq!(
        t,
        vec![
            ("b1", "o1", 2500, eur(50.0)),
            ("b1", "o2", 500, eur(100.0)),
            ("b2", "o2", 1000, eur(100.0)),
        ]
    );
}

#[test]
fn renewable_only_bids_get_only_pv_and_wind() {
    let mut orders = vec![
        Order::offer("cheap-batt", "a", 0, 1000, eur(10.0), Some(Source::Battery)),
        Order::offer("pv", "b", 0, 1000, eur(40.0), Some(Source::Pv)),
        Order::bid("green", "c", 0, 1500, eur(100.0)),
    ];
    orders[2].renewable_only = true;
    for m in [
        Mechanism::PayAsClear,
        Mechanism::PayAsBid,
        Mechanism::PayAsOffer,
    ] {
        let out = clear(&orders, &cfg(m)).unwrap();
        let trades = &out.intervals[0].trades;
        assert_eq!(trades.len(), 1, "{m}");
        assert_eq!(trades[0].offer(), "pv");
        assert_eq!(trades[0].energy_wh().0, 1000);
        assert_eq!(trades[0].source(), Some(Source::Pv));
    }
    // Pay-as-clear reports the green auction's own price: midpoint of 40 and 100.
    let out = clear(&orders, &cfg(Mechanism::PayAsClear)).unwrap();
    assert_eq!(out.intervals[0].green_price, Some(eur(70.0)));
    assert_eq!(out.intervals[0].price, None);
}

#[test]
fn grid_is_the_fallback_and_takes_surplus_first_at_peak() {
    let orders = vec![
        Order::offer("o", "pv-owner", 0, 5000, eur(40.0), Some(Source::Pv)),
        Order::bid("b", "neighbour", 0, 3000, eur(250.0)),
        Order::bid("b-low", "miser", 0, 1000, eur(10.0)),
    ];
    let grid = GridCounterpart {
        sells_at: Some(eur(250.0)),
        buys_at: Some(eur(40.0)),
        peak: false,
    };
    let config = ClearingConfig {
        mechanism: Mechanism::PayAsClear,
        fee: GridFee::None,
        grid,
    };
    let out = clear(&orders, &config).unwrap();
    let i = &out.intervals[0];
    assert_eq!(i.volume_wh.0, 3000);
    assert_eq!(i.price, Some(eur(145.0)));
    assert_eq!(
        i.grid_export_wh.0, 2000,
        "the rest of the surplus goes to the grid"
    );
    assert_eq!(i.grid_import_wh.0, 0, "b-low's limit is below retail");
    // At peak the grid takes the whole surplus first; the neighbour buys from the grid.
    let config = ClearingConfig {
        grid: GridCounterpart { peak: true, ..grid },
        ..config
    };
    let out = clear(&orders, &config).unwrap();
    let i = &out.intervals[0];
    assert_eq!(i.volume_wh.0, 0);
    assert_eq!(i.grid_export_wh.0, 5000);
    assert_eq!(i.grid_import_wh.0, 3000);
    let from_grid: Vec<_> = i
        .trades
        .iter()
        .filter(|t| t.kind() == TradeKind::FromGrid)
        .collect();
    assert_eq!(from_grid.len(), 1);
    assert_eq!(from_grid[0].price(), eur(250.0));
    assert_eq!(from_grid[0].seller(), "grid");
}

#[test]
fn bad_books_are_errors_naming_the_order() {
    let mut bad = book();
    bad[1].energy_wh.0 = 0;
    let e = clear(&bad, &cfg(Mechanism::PayAsClear)).unwrap_err();
    assert!(e.to_string().contains("\"b2\""), "{e}");
    let mut dup = book();
    dup[2].id = "b1".into();
    let e = clear(&dup, &cfg(Mechanism::PayAsClear)).unwrap_err();
    assert!(e.to_string().contains("duplicate order id \"b1\""), "{e}");
    let mut grid = book();
    grid[0].prosumer = "grid".into();
    assert!(clear(&grid, &cfg(Mechanism::PayAsClear)).is_err());
}

#[test]
fn trade_ids_are_stable_across_runs_and_unique() {
    let a = clear(&book(), &cfg(Mechanism::PayAsClear)).unwrap();
    let b = clear(&book(), &cfg(Mechanism::PayAsClear)).unwrap();
    let ids: Vec<scg_market::TradeId> = a.trades().map(|t| t.id()).collect();
    assert_eq!(ids, b.trades().map(|t| t.id()).collect::<Vec<_>>());
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
}

// ---- properties ------------------------------------------------------------------------------

#[test]
fn a_members_crossing_bid_and_offer_are_a_refused_self_trade() {
    let mut book = book();
    // "school" offers at 150; a bid of its own at 150 or more could be matched with it.
    book.push(Order::bid("b4", "school", 0, 1000, eur(150.0)));
    for mechanism in [
        Mechanism::PayAsClear,
        Mechanism::PayAsBid,
        Mechanism::PayAsOffer,
    ] {
        let e = clear(&book, &cfg(mechanism)).unwrap_err().to_string();
        assert!(e.contains("self-trade") && e.contains("\"school\""), "{e}");
        assert!(e.contains("\"b4\"") && e.contains("\"o3\""), "{e}");
    }
    // Its bid of 60 below its offer of 150 can never meet it: the book clears.
    assert!(clear(&self::book(), &cfg(Mechanism::PayAsClear)).is_ok());
    // The same member in another interval is no self-trade either.
    let mut other = self::book();
    other.push(Order::bid("b4", "school", 1, 1000, eur(150.0)));
    assert!(clear(&other, &cfg(Mechanism::PayAsClear)).is_ok());
}

fn arb_book(max_orders: usize, green: bool) -> impl Strategy<Value = Vec<Order>> {
    prop::collection::vec(
        (
            any::<bool>(),
            1i64..5_000,
            -50i64..400,
            0u8..5,
            any::<bool>(),
            0u32..2,
        ),
        1..max_orders,
    )
    .prop_map(move |rows| {
        rows.into_iter()
            .enumerate()
            .map(|(k, (is_bid, e, p, s, g, interval))| {
                // Coarse prices force many ties; the tie-break must still hold.
                let price = Price::from_milli(p * 5_000);
                if is_bid {
                    // Buyers and sellers are different members: a member's own crossing bid and
                    // offer is a refused self-trade (tested below).
                    let mut o = Order::bid(
                        &format!("b{k}"),
                        &format!("buyer{}", k % 7),
                        interval,
                        e,
                        price,
                    );
                    o.renewable_only = green && g;
                    o
                } else {
                    let source = [
                        None,
                        Some(Source::Pv),
                        Some(Source::Wind),
                        Some(Source::V2g),
                        Some(Source::Battery),
                    ][usize::from(s)];
                    Order::offer(
                        &format!("o{k}"),
                        &format!("seller{}", k % 7),
                        interval,
                        e,
                        price,
                        source,
                    )
                }
            })
            .collect()
    })
}

fn arb_fee() -> impl Strategy<Value = GridFee> {
    prop_oneof![
        Just(GridFee::None),
        (0i64..30_000).prop_map(|c| GridFee::Constant(Price(c))),
        (0u32..3_000).prop_map(|bp| GridFee::Percent { basis_points: bp }),
    ]
}

fn arb_mechanism() -> impl Strategy<Value = Mechanism> {
    prop_oneof![
        Just(Mechanism::PayAsClear),
        Just(Mechanism::PayAsBid),
        Just(Mechanism::PayAsOffer)
    ]
}

fn arb_grid() -> impl Strategy<Value = GridCounterpart> {
    (
        prop::option::of(100i64..400),
        prop::option::of(-10i64..80),
        any::<bool>(),
    )
        .prop_map(|(r, f, peak)| GridCounterpart {
            sells_at: r.map(|r| Price::from_milli(r * 1000)),
            buys_at: f.map(|f| Price::from_milli(f * 1000)),
            peak: peak && f.is_some(),
        })
}

/// Brute-force reference: enumerate every order price as a candidate uniform price, compute
/// demand D(p) (net limits ≥ p) and supply S(p) (offer prices ≤ p); the maximum tradable volume
/// is max_p min(D, S). Between order prices D and S are constant, so candidates suffice.
fn brute_force(orders: &[Order], fee: GridFee) -> i64 {
    let mut candidates: Vec<i64> = orders
        .iter()
        .map(|o| match o.side {
            Side::Bid => fee.net_limit(o.price).0,
            Side::Offer => o.price.0,
        })
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    candidates
        .iter()
        .map(|&p| volume_at(orders, fee, p))
        .max()
        .unwrap_or(0)
}

/// min(D(p), S(p)).
fn volume_at(orders: &[Order], fee: GridFee, p: i64) -> i64 {
    let net = |o: &Order| match o.side {
        Side::Bid => fee.net_limit(o.price).0,
        Side::Offer => o.price.0,
    };
    let d: i64 = orders
        .iter()
        .filter(|o| o.side == Side::Bid && net(o) >= p)
        .map(|o| o.energy_wh.0)
        .sum();
    let s: i64 = orders
        .iter()
        .filter(|o| o.side == Side::Offer && net(o) <= p)
        .map(|o| o.energy_wh.0)
        .sum();
    d.min(s)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn pay_as_clear_matches_the_brute_force_reference(book in arb_book(40, false), fee in arb_fee()) {
        let config = ClearingConfig { mechanism: Mechanism::PayAsClear, fee, grid: GridCounterpart::default() };
        let out = clear(&book, &config).unwrap();
        for i in &out.intervals {
            let orders: Vec<Order> = book.iter().filter(|o| o.interval == i.interval).cloned().collect();
            let best = brute_force(&orders, fee);
            prop_assert_eq!(i.volume_wh.0, best);
            if let Some(p) = i.price {
                // The price lies in the clearing interval: at p the maximum volume is both
                // demanded and supplied.
                prop_assert_eq!(volume_at(&orders, fee, p.0), best);
                let (lo, hi) = i.clearing_range.unwrap();
                prop_assert!(lo <= p && p <= hi);
                // And the range is exactly that set's bounds.
                prop_assert_eq!(volume_at(&orders, fee, lo.0), best);
                prop_assert_eq!(volume_at(&orders, fee, hi.0), best);
                prop_assert!(volume_at(&orders, fee, lo.0 - 1) < best);
                prop_assert!(volume_at(&orders, fee, hi.0 + 1) < best);
            } else {
                prop_assert_eq!(best, 0);
            }
        }
    }

    #[test]
    fn limits_hold_and_energy_and_money_are_conserved(
        book in arb_book(40, true), fee in arb_fee(), mechanism in arb_mechanism(), grid in arb_grid()
    ) {
        let config = ClearingConfig { mechanism, fee, grid };
        let out = clear(&book, &config).unwrap();
        let by_id: BTreeMap<(u32, &str), &Order> = book.iter().map(|o| ((o.interval, o.id.as_str()), o)).collect();
        for i in &out.intervals {
            let mut sold: BTreeMap<&str, i64> = BTreeMap::new();
            let mut bought: BTreeMap<&str, i64> = BTreeMap::new();
            let (mut paid, mut received, mut fees) = (NanoEur::ZERO, NanoEur::ZERO, NanoEur::ZERO);
            let (mut e_buy, mut e_sell) = (0i64, 0i64);
            for t in &i.trades {
                prop_assert!(t.energy_wh().0 > 0);
                prop_assert_eq!(t.interval(), i.interval);
                if t.offer() != "grid" {
                    let offer = by_id[&(i.interval, t.offer())];
                    // A seller never receives less than its limit.
                    prop_assert!(t.price() >= offer.price, "seller {} got {} < {}", offer.id, t.price(), offer.price);
                    *sold.entry(t.offer()).or_default() += t.energy_wh().0;
                    if t.kind() == TradeKind::P2p {
                        let bid = by_id[&(i.interval, t.bid())];
                        if bid.renewable_only {
                            prop_assert!(offer.source.is_some_and(Source::is_renewable));
                        }
                    }
                }
                if t.bid() != "grid" {
                    let bid = by_id[&(i.interval, t.bid())];
                    // A buyer never pays more than its limit, fee included.
                    prop_assert!(t.buyer_price() <= bid.price, "buyer {} paid {} > {}", bid.id, t.buyer_price(), bid.price);
                    *bought.entry(t.bid()).or_default() += t.energy_wh().0;
                }
                if t.kind() == TradeKind::P2p {
                    prop_assert_eq!(t.fee(), fee.fee_for(t.price()));
                } else {
                    prop_assert_eq!(t.fee(), Price::ZERO);
                }
                e_buy += t.energy_wh().0;
                e_sell += t.energy_wh().0;
                paid += t.buyer_pays();
                received += t.seller_receives();
                fees += t.fee_paid();
            }
            // Money: every euro paid is received by a seller or collected as a fee.
            prop_assert_eq!(paid, received + fees);
            prop_assert_eq!(fees, i.fees);
            prop_assert_eq!(e_buy, e_sell);
            prop_assert_eq!(
                i.volume_wh.0 + i.grid_import_wh.0 + i.grid_export_wh.0,
                e_buy
            );
            // Energy: no order trades more than it asked for.
            for (id, q) in sold.iter().chain(bought.iter()) {
                prop_assert!(*q <= by_id[&(i.interval, *id)].energy_wh.0);
            }
            // With a grid that always serves, every order with a limit that admits the grid
            // is fully served.
            for o in book.iter().filter(|o| o.interval == i.interval) {
                let done = match o.side { Side::Bid => bought.get(o.id.as_str()), Side::Offer => sold.get(o.id.as_str()) };
                let admits = match o.side {
                    Side::Bid => grid.sells_at.is_some_and(|r| o.price >= r),
                    Side::Offer => grid.buys_at.is_some_and(|f| o.price <= f),
                };
                if admits {
                    prop_assert_eq!(done.copied().unwrap_or(0), o.energy_wh.0);
                }
            }
        }
    }

    #[test]
    fn pay_as_clear_is_deterministic_and_order_ids_do_not_matter_for_volume(book in arb_book(30, false)) {
        let config = ClearingConfig::default();
        let a = clear(&book, &config).unwrap();
        let b = clear(&book, &config).unwrap();
        prop_assert_eq!(&a, &b);
        let mut reversed = book.clone();
        reversed.reverse();
        let c = clear(&reversed, &config).unwrap();
        for (x, y) in a.intervals.iter().zip(&c.intervals) {
            prop_assert_eq!(x.volume_wh, y.volume_wh);
            prop_assert_eq!(x.price, y.price);
        }
    }
}
