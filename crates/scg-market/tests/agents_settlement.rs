//! Bidding agents and post-delivery settlement against hand-computed cases.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_market::agent::{Battery, LinearRamp, SmartAgent, ramp_agents, run_ramp_market};
use scg_market::community::GridTariff;
use scg_market::settlement::{MeterReading, PenaltyPrices, settle};
use scg_market::{GridFee, NanoEur, Price, Side};
use scg_units::Wh;

fn tariff() -> GridTariff {
    GridTariff::from_eur_per_mwh(250.0, 50.0).unwrap()
}

#[test]
fn ramps_meet_in_the_middle_tick() {
    let r = LinearRamp {
        initial: Price(50_000),
        last: Price(250_000),
    };
    assert_eq!(r.price_at(0, 11), Price(50_000));
    assert_eq!(r.price_at(5, 11), Price(150_000));
    assert_eq!(r.price_at(10, 11), Price(250_000));
    assert_eq!(r.price_at(99, 11), Price(250_000));
    // Seller ramps 250 → 50, buyer 50 → 250 over 11 ticks (20 EUR/MWh per tick): they first
    // cross at tick 5, both at 150 EUR/MWh.
    let agents = ramp_agents(&["pv-home", "flat"], &[2.0, -3.0], tariff()).unwrap();
    assert_eq!(agents[0].side, Side::Offer);
    assert_eq!(agents[1].side, Side::Bid);
    let trades = run_ramp_market(9, &agents, 11, GridFee::None).unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].energy_wh(), Wh(2000));
    assert_eq!(trades[0].price(), Price(150_000));
    assert_eq!(trades[0].bid(), "flat/bid/t5");
    assert_eq!(trades[0].interval(), 9);
}

#[test]
fn ramps_with_a_fee_trade_later_and_within_limits() {
    let agents = ramp_agents(&["a", "b", "c"], &[1.0, -0.5, -0.7], tariff()).unwrap();
    let fee = GridFee::Constant(Price(20_000));
    let trades = run_ramp_market(0, &agents, 21, fee).unwrap();
    let sold: i64 = trades.iter().map(|t| t.energy_wh().0).sum();
    assert_eq!(sold, 1000);
    for t in &trades {
        assert!(t.price() >= tariff().feed_in);
        assert!(t.buyer_price() <= tariff().retail);
    }
}

fn agent(soc: f64) -> SmartAgent {
    SmartAgent {
        prosumer: "home".into(),
        battery: Battery {
            soc_kwh: soc,
            capacity_kwh: 10.0,
            max_power_kw: 4.0,
            round_trip_efficiency: 0.9,
        },
        step_hours: 0.5,
    }
}

#[test]
fn smart_agent_stores_when_later_energy_is_worth_more() {
    // Midday surplus 3 kWh at an expected 60 EUR/MWh; an evening deficit follows, so stored
    // energy is worth 0.9 × retail = 225 > 60: charge min(3, room 2, 4 kW × 0.5 h = 2) = 2 kWh,
    // offer 1 kWh at feed-in.
    let p = |e: i64| Price(e * 1000);
    let d = agent(8.0)
        .decide(0, &[3.0, 1.0, -2.0], &[p(60), p(70), p(180)], tariff())
        .unwrap();
    assert!((d.battery_kwh - 2.0).abs() < 1e-12);
    let o = d.order.unwrap();
    assert_eq!(o.side, Side::Offer);
    assert_eq!(o.energy_wh, Wh(1000));
    assert_eq!(o.price, tariff().feed_in);
    // With only surpluses ahead at low prices, storing is worth 0.9 × 70 = 63 ≤ 80: sell all.
    let d = agent(0.0)
        .decide(0, &[3.0, 1.0], &[p(80), p(70)], tariff())
        .unwrap();
    assert_eq!(d.battery_kwh, 0.0);
    assert_eq!(d.order.unwrap().energy_wh, Wh(3000));
}

#[test]
fn smart_agent_discharges_when_now_is_dearest() {
    let p = |e: i64| Price(e * 1000);
    // Deficit 5 kWh now at 300 (evening spike), later surplus at 60: value of keeping = 54.
    // Discharge min(5, soc 3, 2 kWh power limit) = 2 kWh; bid 3 kWh at retail.
    let d = agent(3.0)
        .decide(0, &[-5.0, 2.0], &[p(300), p(60)], tariff())
        .unwrap();
    assert!((d.battery_kwh + 2.0).abs() < 1e-12);
    let o = d.order.unwrap();
    assert_eq!(o.side, Side::Bid);
    assert_eq!(o.energy_wh, Wh(3000));
    assert_eq!(o.price, tariff().retail);
    // A deficit later (retail 250 × 0.9 = 225 > 100 now) keeps the battery for later.
    let d = agent(3.0)
        .decide(0, &[-1.0, -4.0], &[p(100), p(200)], tariff())
        .unwrap();
    assert_eq!(d.battery_kwh, 0.0);
    assert!(agent(11.0).decide(0, &[1.0], &[p(1)], tariff()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn smart_agent_respects_the_battery_and_accounts_every_kwh(
        soc in 0.0f64..10.0, net in prop::collection::vec(-6.0f64..6.0, 1..8),
        prices in prop::collection::vec(0i64..400, 8)
    ) {
        let a = agent(soc);
        let p: Vec<Price> = prices[..net.len()].iter().map(|&e| Price(e * 1000)).collect();
        let d = a.decide(0, &net, &p, tariff()).unwrap();
        let after = soc + d.battery_kwh;
        prop_assert!((-1e-9..=10.0 + 1e-9).contains(&after));
        prop_assert!(d.battery_kwh.abs() <= 2.0 + 1e-9);
        // Battery and order together cover the forecast net energy (to the Wh).
        let order_kwh = d.order.as_ref().map_or(0.0, |o| match o.side {
            Side::Offer => o.energy_wh.0 as f64 / 1000.0,
            Side::Bid => -(o.energy_wh.0 as f64) / 1000.0,
        });
        prop_assert!((d.battery_kwh + order_kwh - net[0]).abs() <= 0.0005 + 1e-9);
        // It never charges from a deficit or discharges into a surplus.
        prop_assert!(d.battery_kwh * net[0] >= 0.0);
    }
}

#[test]
fn settlement_charges_shortfalls_and_pays_excess() {
    use scg_market::community::CommunityMarket;
    let market = CommunityMarket::default();
    // pv sells 3 kWh: 2 kWh P2P to flat, 1 kWh to the grid.
    let out = market
        .clear_interval(5, &["pv", "flat"], &[3.0, -2.0], tariff(), false)
        .unwrap();
    let prices = PenaltyPrices::from_tariff(tariff());
    assert_eq!(prices.shortfall, Price(375_000));
    assert_eq!(prices.excess, Price(25_000));
    // Metered: pv delivered only 2.6 kWh; flat consumed 2.1 kWh (0.1 more than bought).
    let readings = vec![
        MeterReading {
            prosumer: "pv".into(),
            interval: 5,
            net_export_wh: Wh(2600),
        },
        MeterReading {
            prosumer: "flat".into(),
            interval: 5,
            net_export_wh: Wh(-2100),
        },
        MeterReading {
            prosumer: "idle".into(),
            interval: 5,
            net_export_wh: Wh(40),
        },
    ];
    let dev = settle(&out.trades, &readings, prices).unwrap();
    let get = |who: &str| dev.iter().find(|d| d.prosumer == who).unwrap();
    // pv: traded +3000, metered 2600 → −400 Wh × 375 EUR/MWh = −0.15 EUR.
    assert_eq!(get("pv").deviation_wh, Wh(-400));
    assert_eq!(get("pv").amount, NanoEur(-150_000_000));
    // flat: traded −2000, metered −2100 → −100 Wh × 375 = −0.0375 EUR.
    assert_eq!(get("flat").amount, NanoEur(-37_500_000));
    // idle: no trades, +40 Wh × 25 EUR/MWh = 0.001 EUR.
    assert_eq!(get("idle").amount, NanoEur(1_000_000));
    // Missing readings and duplicates are errors.
    assert!(settle(&out.trades, &readings[1..], prices).is_err());
    let mut dup = readings.clone();
    dup.push(readings[0].clone());
    assert!(settle(&out.trades, &dup, prices).is_err());
}
