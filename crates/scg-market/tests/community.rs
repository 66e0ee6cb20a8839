//! The community API: one interval per call, every Wh accounted for P2P or with the grid.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_market::community::{CommunityClearing, CommunityMarket, GridTariff};
use scg_market::{
    ClearingConfig, GridCounterpart, GridFee, Mechanism, NanoEur, Order, Price, Trade, TradeKind,
    clear,
};

const IDS: [&str; 5] = ["apartment", "restaurant", "office", "supermarket", "school"];

fn tariff() -> GridTariff {
    GridTariff::from_eur_per_mwh(250.0, 50.0).unwrap()
}

#[test]
fn surplus_meets_deficit_at_the_midpoint_and_the_rest_goes_to_the_grid() {
    let market = CommunityMarket {
        mechanism: Mechanism::PayAsClear,
        fee: GridFee::Constant(Price::from_eur_per_mwh(20.0).unwrap()),
    };
    // The supermarket has 3 kWh surplus; the apartment needs 2 kWh, the office 2.5 kWh.
    let net = [-2.0, 0.0, -2.5, 3.0, 0.0];
    let out = market
        .clear_interval(17, &IDS, &net, tariff(), false)
        .unwrap();
    // Price = floor((50 + (250 − 20)) / 2) = 140 EUR/MWh; buyers pay 160.
    assert_eq!(out.price, Some(Price::from_eur_per_mwh(140.0).unwrap()));
    assert_eq!(out.p2p_volume_wh.0, 3000);
    assert_eq!(out.grid_import_wh.0, 1500);
    assert_eq!(out.grid_export_wh.0, 0);
    // Time priority: the apartment (first in the list) is served fully at equal limits.
    let apt = out.prosumers[0];
    assert_eq!(apt.p2p_import_wh.0, 2000);
    assert_eq!(apt.p2p_paid, NanoEur(320_000_000)); // 2 kWh × 160 EUR/MWh = 0.32 EUR
    assert_eq!(apt.fees_paid, NanoEur(40_000_000));
    let office = out.prosumers[2];
    assert_eq!(office.p2p_import_wh.0, 1000);
    assert_eq!(office.grid_import_wh.0, 1500);
    assert_eq!(office.grid_paid, NanoEur(375_000_000)); // 1.5 kWh × 250 EUR/MWh
    let sm = out.prosumers[3];
    assert_eq!(sm.p2p_export_wh.0, 3000);
    assert_eq!(sm.p2p_received, NanoEur(420_000_000)); // 3 kWh × 140 EUR/MWh
    assert_eq!(out.fees, NanoEur(60_000_000));
    assert!(out.trades.iter().all(|t| t.interval() == 17));
}

#[test]
fn at_peak_the_surplus_goes_to_the_grid_first() {
    let market = CommunityMarket::default();
    let net = [-2.0, 0.0, 0.0, 3.0, 0.0];
    let out = market
        .clear_interval(0, &IDS, &net, tariff(), true)
        .unwrap();
    assert_eq!(out.p2p_volume_wh.0, 0);
    assert_eq!(out.grid_export_wh.0, 3000);
    assert_eq!(out.grid_import_wh.0, 2000);
    assert!(out.trades.iter().all(|t| t.kind() != TradeKind::P2p));
}

#[test]
fn bad_inputs_are_errors() {
    let market = CommunityMarket::default();
    assert!(
        market
            .clear_interval(0, &IDS, &[1.0], tariff(), false)
            .is_err()
    );
    let net = [f64::NAN, 0.0, 0.0, 0.0, 0.0];
    assert!(
        market
            .clear_interval(0, &IDS, &net, tariff(), false)
            .is_err()
    );
    let dup = ["a", "a"];
    assert!(
        market
            .clear_interval(0, &dup, &[1.0, 2.0], tariff(), false)
            .is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn every_wh_is_accounted_and_money_balances(
        net in prop::collection::vec(-20.0f64..20.0, 5),
        peak in any::<bool>(),
        m in 0usize..3,
        fee_bp in 0u32..2000,
    ) {
        let mechanism = [Mechanism::PayAsClear, Mechanism::PayAsBid, Mechanism::PayAsOffer][m];
        let market = CommunityMarket { mechanism, fee: GridFee::Percent { basis_points: fee_bp } };
        let out = market.clear_interval(3, &IDS, &net, tariff(), peak).unwrap();
        let (mut imp, mut exp) = (0i64, 0i64);
        let mut paid = NanoEur::ZERO;
        let mut received = NanoEur::ZERO;
        for (f, &kwh) in out.prosumers.iter().zip(&net) {
            let wh = scg_units::Wh::from_kwh(scg_units::Kwh(kwh)).unwrap().0;
            // Energy: a prosumer's surplus is exported, its deficit imported, nothing else.
            prop_assert_eq!(f.p2p_export_wh.0 + f.grid_export_wh.0, wh.max(0));
            prop_assert_eq!(f.p2p_import_wh.0 + f.grid_import_wh.0, (-wh).max(0));
            imp += f.p2p_import_wh.0;
            exp += f.p2p_export_wh.0;
            paid += f.p2p_paid;
            received += f.p2p_received;
            // Nobody pays more than retail or receives less than feed-in per MWh.
            prop_assert!(f.p2p_paid.0 <= tariff().retail.value_of(f.p2p_import_wh).0);
            prop_assert!(f.p2p_received.0 >= tariff().feed_in.value_of(f.p2p_export_wh).0);
        }
        prop_assert_eq!(imp, exp);
        prop_assert_eq!(imp, out.p2p_volume_wh.0);
        prop_assert_eq!(paid, received + out.fees);
        if peak {
            prop_assert_eq!(out.p2p_volume_wh.0, 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// `trade_members` names each trade's buyer and seller by position: the ids the trade
    /// carries, and `None` exactly for the grid.
    #[test]
    fn trade_members_are_the_trades_counterparts(
        net in prop::collection::vec(-20.0f64..20.0, 5),
        peak in any::<bool>(),
        m in 0usize..3,
    ) {
        let mechanism = [Mechanism::PayAsClear, Mechanism::PayAsBid, Mechanism::PayAsOffer][m];
        let market = CommunityMarket { mechanism, fee: GridFee::None };
        let out = market.clear_interval(9, &IDS, &net, tariff(), peak).unwrap();
        prop_assert_eq!(out.trade_members.len(), out.trades.len());
        for (t, (buyer, seller)) in out.trades.iter().zip(&out.trade_members) {
            let name = |p: &Option<usize>| p.map_or(scg_market::GRID_ID, |i| IDS[i]);
            prop_assert_eq!(name(buyer), t.buyer());
            prop_assert_eq!(name(seller), t.seller());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]
    /// A `CommunityClearing` kept over many intervals (its buffers reused) gives, interval by
    /// interval, the trades and price that `clear` gives for the same book built afresh: one
    /// order per member with a position, a surplus offering at feed-in, a deficit bidding
    /// retail, in member order. A third clearing, kept too, gives as fills (`clear_fills`) the
    /// same trades, members' flows and price.
    #[test]
    fn a_kept_clearing_equals_clearing_each_book_afresh(
        nets in prop::collection::vec(prop::collection::vec(-20.0f64..20.0, 5), 1..12),
        zeros in prop::collection::vec(any::<bool>(), 5),
        peaks in prop::collection::vec(any::<bool>(), 12),
        m in 0usize..3,
        fee_bp in 0u32..2000,
    ) {
        let mechanism = [Mechanism::PayAsClear, Mechanism::PayAsBid, Mechanism::PayAsOffer][m];
        let market = CommunityMarket { mechanism, fee: GridFee::Percent { basis_points: fee_bp } };
        let mut kept = CommunityClearing::new(market, &IDS).unwrap();
        let mut lean = CommunityClearing::new(market, &IDS).unwrap();
        for (t, net) in nets.iter().enumerate() {
            // Some members without a position in alternate intervals.
            let net: Vec<f64> = net
                .iter()
                .zip(&zeros)
                .map(|(&x, &z)| if z && t % 2 == 0 { 0.0 } else { x })
                .collect();
            let interval = 100 + t as u32;
            let peak = peaks[t];
            let out = kept.clear(interval, &net, tariff(), peak).unwrap();
            let book: Vec<Order> = IDS
                .iter()
                .zip(&net)
                .filter_map(|(id, &kwh)| {
                    let wh = scg_units::Wh::from_kwh(scg_units::Kwh(kwh)).unwrap().0;
                    match wh.signum() {
                        1 => Some(Order::offer(id, id, interval, wh, tariff().feed_in, None)),
                        -1 => Some(Order::bid(id, id, interval, -wh, tariff().retail)),
                        _ => None,
                    }
                })
                .collect();
            let config = ClearingConfig {
                mechanism,
                fee: market.fee,
                grid: GridCounterpart {
                    sells_at: Some(tariff().retail),
                    buys_at: Some(tariff().feed_in),
                    peak,
                },
            };
            let fresh = clear(&book, &config).unwrap();
            let expected: Vec<Trade> = fresh.trades().cloned().collect();
            prop_assert_eq!(&out.trades, &expected);
            prop_assert_eq!(out.interval, interval);
            prop_assert_eq!(out.price, fresh.intervals.first().and_then(|i| i.price));
            prop_assert_eq!(out.trade_members.len(), out.trades.len());
            let fills = lean.clear_fills(interval, &net, tariff(), peak).unwrap();
            prop_assert_eq!(fills.interval, interval);
            prop_assert_eq!(fills.price, out.price);
            prop_assert_eq!(fills.prosumers, &out.prosumers[..]);
            prop_assert_eq!(fills.fills.len(), out.trades.len());
            for (f, (t, members)) in fills.fills.iter().zip(out.trades.iter().zip(&out.trade_members)) {
                prop_assert_eq!(
                    (f.kind(), f.energy_wh(), f.price(), f.fee()),
                    (t.kind(), t.energy_wh(), t.price(), t.fee())
                );
                prop_assert_eq!((f.bid_order(), f.offer_order()), *members);
                prop_assert_eq!(
                    (f.seller_receives(), f.fee_paid(), f.buyer_pays()),
                    (t.seller_receives(), t.fee_paid(), t.buyer_pays())
                );
            }
        }
    }
}
