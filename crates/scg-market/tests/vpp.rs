//! The VPP: calendar and gate closures, aggregation, MGP/MI/MSD bids, imbalance.
#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use scg_market::vpp::{
    BidPolicy, DeliveryDay, Direction, FlexAsset, FlexKind, Session, accept, aggregate, imbalance,
    mgp_bids, mi_rebids, msd_offers,
};
use scg_market::{NanoEur, Price};

fn day(y: i32, m: u32, d: u32) -> DeliveryDay {
    DeliveryDay::new(NaiveDate::from_ymd_opt(y, m, d).unwrap()).unwrap()
}

fn battery() -> FlexAsset {
    FlexAsset {
        id: "bess".into(),
        kind: FlexKind::Battery,
        up_kw: 20.0,
        down_kw: 20.0,
        up_energy_kwh: 10.0,
        down_energy_kwh: 10.0,
        window: None,
    }
}

#[test]
fn calendar_and_gate_closures_in_italian_time() {
    let d = day(2025, 10, 1);
    assert_eq!(d.periods(), 96);
    assert_eq!(day(2025, 3, 30).periods(), 92);
    assert_eq!(day(2025, 10, 26).periods(), 100);
    assert_eq!(
        d.gate_closure(Session::Mgp).unwrap().to_rfc3339(),
        "2025-09-30T12:00:00+02:00"
    );
    assert_eq!(
        d.gate_closure(Session::MiA1).unwrap().to_rfc3339(),
        "2025-09-30T15:00:00+02:00"
    );
    assert_eq!(
        d.gate_closure(Session::MiA2).unwrap().to_rfc3339(),
        "2025-09-30T22:00:00+02:00"
    );
    assert_eq!(
        d.gate_closure(Session::MiA3).unwrap().to_rfc3339(),
        "2025-10-01T10:00:00+02:00"
    );
    assert_eq!(d.period_start(1).to_rfc3339(), "2025-10-01T00:00:00+02:00");
    assert_eq!(d.first_period_at_hour(12), 49);
    // On the spring change 02:00–03:00 does not exist: 12:00 is 11 hours after midnight.
    assert_eq!(day(2025, 3, 30).first_period_at_hour(12), 45);
    assert_eq!(
        day(2025, 3, 30).period_start(9).to_rfc3339(),
        "2025-03-30T03:00:00+02:00"
    );
}

#[test]
fn aggregation_sums_assets_within_their_windows() {
    let ev = FlexAsset {
        id: "ev".into(),
        kind: FlexKind::EvCharging,
        up_kw: 0.0,
        down_kw: 7.4,
        up_energy_kwh: 0.0,
        down_energy_kwh: 20.0,
        window: Some((72, 96)),
    };
    let (pos, energy) = aggregate(&[30.0; 96], &[battery(), ev.clone()]).unwrap();
    assert_eq!(pos[0].down_kw, 20.0);
    assert!((pos[80].down_kw - 27.4).abs() < 1e-12);
    assert_eq!(pos[80].period, 81);
    assert_eq!(energy.down_kwh, 30.0);
    let mut bad = ev;
    bad.window = Some((90, 100));
    assert!(aggregate(&[30.0; 96], &[bad]).is_err());
    let mut neg = battery();
    neg.up_kw = -1.0;
    assert!(aggregate(&[30.0; 96], &[neg]).is_err());
}

fn prices() -> Vec<Price> {
    let mut p = vec![Price(100_000); 96];
    p[9] = Price(20_000);
    p[79] = Price(300_000);
    p
}

#[test]
fn mgp_bids_hand_computed() {
    let d = day(2025, 10, 1);
    let (pos, energy) = aggregate(&[40.0; 96], &[battery()]).unwrap();
    let policy = BidPolicy::default();
    let bids = mgp_bids(&d, "NORD", &pos, energy, &prices(), &policy).unwrap();
    assert_eq!(bids.len(), 96);
    assert!(
        bids.iter()
            .all(|b| b.gate_closure == "2025-09-30T12:00:00+02:00")
    );
    // Baseline 40 kW × 0.25 h = 10 kWh bought at the cap in every period.
    assert_eq!(bids[0].steps.len(), 1);
    assert_eq!(bids[0].steps[0].quantity_wh, 10_000);
    assert_eq!(bids[0].steps[0].price, Price(4_000_000));
    // Shift: absorb 20 kW × 0.25 h = 5 kWh in the cheapest period (20 EUR/MWh), deliver
    // floor(0.9 × 5) = 4 kWh in the dearest (300 EUR/MWh).
    assert_eq!(bids[9].steps[1].direction, Direction::Buy);
    assert_eq!(bids[9].steps[1].quantity_wh, 5_000);
    assert_eq!(bids[9].steps[1].price, Price(20_000));
    assert_eq!(bids[79].steps[1].direction, Direction::Sell);
    assert_eq!(bids[79].steps[1].quantity_wh, 4_000);
    assert_eq!(bids[79].steps[1].price, Price(300_000));
    // Nothing else shifts: 0.9 × 100 ≤ 100.
    let shifted: usize = bids.iter().map(|b| b.steps.len() - 1).sum();
    assert_eq!(shifted, 2);
    // All quantities are whole kWh and prices within limits.
    for b in &bids {
        for s in &b.steps {
            assert_eq!(s.quantity_wh % 1000, 0);
            assert!(s.price >= policy.price_floor && s.price <= policy.price_cap);
        }
    }
    // Acceptance at cleared prices: the cheap buy fails at 25, the dear sell clears at 320.
    let mut clearing = vec![Price(100_000); 96];
    clearing[9] = Price(25_000);
    clearing[79] = Price(320_000);
    let schedule = accept(&bids, &clearing).unwrap();
    assert_eq!(schedule[9], 10_000);
    assert_eq!(schedule[79], 6_000);
    // Price limits are checked.
    let bad = BidPolicy {
        price_cap: Price(5_000_000),
        ..policy
    };
    assert!(mgp_bids(&d, "NORD", &pos, energy, &prices(), &bad).is_err());
    assert!(mgp_bids(&d, "NORD", &pos[..95], energy, &prices(), &policy).is_err());
}

#[test]
fn mi_sessions_rebid_forecast_changes_within_their_windows() {
    let d = day(2025, 10, 1);
    let dayahead = vec![40.0; 96];
    let schedule = vec![10_000i64; 96];
    let mut f1 = dayahead.clone();
    f1[0] = 44.0; // +1 kWh in period 1
    let mut f2 = f1.clone();
    f2[60] = 32.0; // −2 kWh in period 61
    let mut f3 = f2.clone();
    f3[1] = 48.0; // before 12:00: outside MI-A3's window, ignored
    f3[70] = 52.0; // +3 kWh in period 71
    let (bids, final_schedule) = mi_rebids(
        &d,
        "NORD",
        &schedule,
        &dayahead,
        &[f1, f2, f3],
        &BidPolicy::default(),
    )
    .unwrap();
    let summary: Vec<(Session, u32, Direction, i64)> = bids
        .iter()
        .map(|b| {
            (
                b.session,
                b.period,
                b.steps[0].direction,
                b.steps[0].quantity_wh,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Session::MiA1, 1, Direction::Buy, 1000),
            (Session::MiA2, 61, Direction::Sell, 2000),
            (Session::MiA3, 71, Direction::Buy, 3000),
        ]
    );
    assert_eq!(bids[2].gate_closure, "2025-10-01T10:00:00+02:00");
    assert_eq!(final_schedule[0], 11_000);
    assert_eq!(final_schedule[60], 8_000);
    assert_eq!(final_schedule[70], 13_000);
    assert_eq!(final_schedule[1], 10_000);
}

#[test]
fn msd_offers_respect_the_uvam_minimum() {
    let d = day(2025, 10, 1);
    let (pos, energy) = aggregate(&[40.0; 96], &[battery()]).unwrap();
    let policy = BidPolicy::default();
    let (bids, check) = msd_offers(&d, "NORD", &pos, energy, &prices(), &policy).unwrap();
    // 10 kWh over the 2 h minimum sustains 5 kW: far below 1 MW, 200 communities needed.
    assert!(bids.is_empty());
    assert!(!check.eligible);
    assert!((check.max_up_kw - 5.0).abs() < 1e-12);
    assert_eq!(check.communities_needed, 200);
    assert!(check.note.contains("200 communities"), "{}", check.note);
    // 250 aggregated communities sustain 1,250 kW → offers of 312.5 → 313 kWh per period.
    let big = BidPolicy {
        communities: 250,
        ..policy
    };
    let (bids, check) = msd_offers(&d, "NORD", &pos, energy, &prices(), &big).unwrap();
    assert!(check.eligible);
    assert_eq!(bids.len(), 96);
    assert_eq!(bids[0].steps[0].direction, Direction::Up);
    assert_eq!(bids[0].steps[0].quantity_wh, 313_000);
    assert_eq!(bids[0].steps[0].price, Price(150_000));
    assert_eq!(bids[0].steps[1].direction, Direction::Down);
    assert_eq!(bids[0].steps[1].price, Price(50_000));
    assert_eq!(bids[0].gate_closure, "2025-09-30T16:00:00+02:00");
}

#[test]
fn imbalance_hand_computed() {
    let rows = imbalance(
        &[10_000, 10_000, 10_000],
        &[12_000, 9_000, 10_000],
        &[Price(100_000); 3],
        0.1,
    )
    .unwrap();
    // Short 2 kWh at 110 EUR/MWh = −0.22 EUR; long 1 kWh at 90 = +0.09 EUR; balanced 0.
    assert_eq!(rows[0].imbalance_wh, 2000);
    assert_eq!(rows[0].amount, NanoEur(-220_000_000));
    assert_eq!(rows[1].amount, NanoEur(90_000_000));
    assert_eq!(rows[2].amount, NanoEur(0));
    assert!(imbalance(&[1], &[1, 2], &[Price(1)], 0.1).is_err());
    assert!(imbalance(&[1], &[1], &[Price(1)], 1.5).is_err());
}

#[test]
fn standard_time_offsets_of_periods() {
    // Summer: civil 00:00 is 23:00 standard time of the day before.
    assert_eq!(day(2025, 10, 1).standard_minutes(1), -60);
    assert_eq!(day(2025, 10, 1).standard_minutes(5), 0);
    // Winter: civil = standard.
    assert_eq!(day(2025, 12, 1).standard_minutes(1), 0);
    assert!(DeliveryDay::from_ymd(2025, 2, 30).is_err());
}
