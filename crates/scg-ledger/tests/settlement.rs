//! Settlement of a community year: hand-computed small case, determinism, a full hourly year
//! for 5 members written to redb and verified.
#![allow(clippy::unwrap_used)]

use scg_ledger::DeviceType;
use scg_ledger::settlement::{
    CerPayout, CommunityYear, IntervalInput, MeterReading, P2pTrade, price_base_per_kwh,
    settle_year,
};
use scg_ledger::store::{Store, store};
use scg_units::Rescoin;

fn reading(member: &str, device: DeviceType, produced_wh: u64, consumed_wh: u64) -> MeterReading {
    MeterReading {
        member: member.into(),
        device,
        produced_wh,
        consumed_wh,
    }
}

fn small() -> CommunityYear {
    CommunityYear {
        seed: 7,
        members: vec!["school".into(), "flat".into()],
        mint_rate_base_per_wh: 1_000_000, // 1 RES per kWh
        start_timestamp_s: 1_167_609_600,
        interval_s: 3_600,
        opening_balance_base: 0,
        treasury_endowment_base: 100 * Rescoin::ONE.0,
        intervals: vec![
            IntervalInput {
                readings: vec![
                    reading("school", DeviceType::Pv, 3_000, 500),
                    reading("school", DeviceType::Battery, 1_000, 0),
                    reading("flat", DeviceType::SupplyPoint, 0, 2_000),
                ],
                trades: vec![P2pTrade {
                    buyer: "flat".into(),
                    seller: "school".into(),
                    energy_wh: 4_500, // 500 Wh more than the school's meters produced
                    price_base_per_kwh: 100_000_000, // 0.1 RES/kWh
                    grid_fee_base_per_kwh: 20_000_000, // 0.02 RES/kWh
                }],
                cer: vec![],
            },
            IntervalInput {
                readings: vec![],
                trades: vec![],
                cer: vec![CerPayout {
                    member: "flat".into(),
                    amount_base: 5,
                }],
            },
        ],
    }
}

#[test]
fn small_year_by_hand() {
    let s = settle_year(&small()).unwrap();
    let sum = &s.summary;
    assert_eq!(sum.blocks, 3);
    assert_eq!(sum.transactions_rejected, 0);
    // 3000 Wh PV at 1e6 base/Wh; the battery's 1000 Wh mints nothing.
    assert_eq!(sum.rescoin_minted, Rescoin(3_000_000_000));
    assert_eq!(sum.certificates_issued, 1);
    // Two legs (battery meter first in device order, then PV): 4000 Wh delivered, 500 unbacked.
    assert_eq!(sum.p2p_trades, 2);
    assert_eq!(sum.p2p_wh_delivered, 4_000);
    assert_eq!(sum.p2p_wh_unbacked, 500);
    // Flat pays 4 kWh x 0.12 RES = 0.48 RES, all topped up by the treasury.
    assert_eq!(sum.treasury_topups, Rescoin(480_000_000));
    assert_eq!(sum.grid_fees, Rescoin(80_000_000));
    assert_eq!(sum.final_balances["flat"], Rescoin(5));
    assert_eq!(
        sum.final_balances["school"],
        Rescoin(3_000_000_000 + 400_000_000)
    );
    assert_eq!(sum.cer_distributed, Rescoin(5));
    assert_eq!(price_base_per_kwh(120.0, 1.0).unwrap(), 120_000_000);
    assert!(price_base_per_kwh(f64::NAN, 1.0).is_err());
    assert!(price_base_per_kwh(-1.0, 1.0).is_err());
}

#[test]
fn bad_input_is_an_error_naming_the_interval() {
    let mut y = small();
    y.intervals[1].trades.push(P2pTrade {
        buyer: "nobody".into(),
        seller: "school".into(),
        energy_wh: 1,
        price_base_per_kwh: 1,
        grid_fee_base_per_kwh: 0,
    });
    let e = settle_year(&y).unwrap_err().to_string();
    assert!(e.contains("interval 1") && e.contains("nobody"), "{e}");
}

/// A year of hourly intervals for 5 members with PV, wind, batteries, P2P trades and monthly
/// CER payouts: settles, stores, verifies; same seed gives the same root.
#[test]
fn hourly_year_for_five_members_stores_and_verifies() {
    let members = ["apartment", "restaurant", "office", "supermarket", "school"];
    let mut intervals = Vec::with_capacity(8_760);
    for h in 0..8_760u64 {
        let hour = h % 24;
        let sun = if (7..19).contains(&hour) {
            1_000 + 200 * (6 - (hour as i64 - 12).abs()) as u64
        } else {
            0
        };
        let mut readings = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let consumed = 500 + 100 * i as u64 + (h * 37 + i as u64 * 11) % 300;
            readings.push(reading(m, DeviceType::SupplyPoint, 0, consumed));
            if i % 2 == 0 && sun > 0 {
                readings.push(reading(m, DeviceType::Pv, sun * (i as u64 + 1), 0));
            }
        }
        readings.push(reading("office", DeviceType::Wind, (h * 13) % 900, 0));
        let trades = if sun > 0 {
            vec![P2pTrade {
                buyer: "apartment".into(),
                seller: "school".into(),
                energy_wh: 400,
                price_base_per_kwh: price_base_per_kwh(110.0, 1.0).unwrap(),
                grid_fee_base_per_kwh: price_base_per_kwh(8.0, 1.0).unwrap(),
            }]
        } else {
            vec![]
        };
        let cer = if h % 730 == 729 {
            members
                .iter()
                .map(|m| CerPayout {
                    member: (*m).into(),
                    amount_base: 1_000_000_000,
                })
                .collect()
        } else {
            vec![]
        };
        intervals.push(IntervalInput {
            readings,
            trades,
            cer,
        });
    }
    let year = CommunityYear {
        seed: 2007,
        members: members.iter().map(|m| (*m).to_string()).collect(),
        mint_rate_base_per_wh: 1_000_000,
        start_timestamp_s: 1_167_609_600,
        interval_s: 3_600,
        opening_balance_base: 10 * Rescoin::ONE.0,
        treasury_endowment_base: 1_000_000 * Rescoin::ONE.0,
        intervals,
    };
    let t0 = std::time::Instant::now();
    let settled = settle_year(&year).unwrap();
    let settle_s = t0.elapsed().as_secs_f64();
    let sum = &settled.summary;
    assert_eq!(sum.blocks, 8_761);
    assert_eq!(sum.transactions_rejected, 0);
    assert!(sum.certificates_issued > 8_760);
    assert_eq!(sum.p2p_wh_unbacked, 0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ledger-year-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t1 = std::time::Instant::now();
    let head = store(&dir, &settled).unwrap();
    let store_s = t1.elapsed().as_secs_f64();
    let t2 = std::time::Instant::now();
    let report = Store::open(&dir).unwrap().verify().unwrap();
    let verify_s = t2.elapsed().as_secs_f64();
    eprintln!(
        "year: {} txs; settle {settle_s:.2} s, store {store_s:.2} s, verify {verify_s:.2} s",
        sum.transactions
    );
    assert_eq!(report.height, 8_760);
    assert_eq!(
        scg_ledger::merkle::to_hex(&report.state_root),
        sum.final_state_root_hex
    );
    assert_eq!(head.state_root, report.state_root);
    assert_eq!(report.transactions, sum.transactions);
    // Storing again into the same directory replaces the ledger.
    let small_settled = settle_year(&small()).unwrap();
    store(&dir, &small_settled).unwrap();
    assert_eq!(Store::open(&dir).unwrap().verify().unwrap().height, 2);
    // Deterministic: same seed, same root; another seed, another root.
    let again = settle_year(&year).unwrap();
    assert_eq!(again.summary, settled.summary);
    let mut other = year.clone();
    other.seed = 2008;
    other.intervals.truncate(10);
    let mut first10 = year;
    first10.intervals.truncate(10);
    assert_ne!(
        settle_year(&other).unwrap().summary.final_state_root_hex,
        settle_year(&first10).unwrap().summary.final_state_root_hex
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
