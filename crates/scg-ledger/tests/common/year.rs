//! A synthetic hourly year for 5 members (PV, wind, P2P trades in daylight, monthly CER
//! payouts): the year-sized chain of the settlement test and the throughput bench (about the
//! size of the default scenario's: 8,760 blocks, ~10 transactions each).
#![allow(dead_code)]

use scg_ledger::DeviceType;
use scg_ledger::settlement::{CerPayout, CommunityYear, IntervalInput, MeterReading, P2pTrade};
use scg_units::Rescoin;

/// The members of the synthetic year.
pub const MEMBERS: [&str; 5] = ["apartment", "restaurant", "office", "supermarket", "school"];

fn reading(member: &str, device: DeviceType, produced_wh: u64, consumed_wh: u64) -> MeterReading {
    MeterReading {
        member: member.into(),
        device,
        produced_wh,
        consumed_wh,
    }
}

/// `hours` hourly intervals (8,760 for a year) settled with `seed`.
pub fn hourly_year(seed: u64, hours: u64) -> CommunityYear {
    let mut intervals = Vec::with_capacity(usize::try_from(hours).unwrap_or(0));
    for h in 0..hours {
        let hour = h % 24;
        let sun = if (7..19).contains(&hour) {
            1_000 + 200 * (6 - (hour as i64 - 12).abs()) as u64
        } else {
            0
        };
        let mut readings = Vec::new();
        for (i, m) in MEMBERS.iter().enumerate() {
            let consumed = 500 + 100 * i as u64 + (h * 37 + i as u64 * 11) % 300;
            // The school exports what it sells in daylight.
            let exported = if *m == "school" && sun > 0 { 400 } else { 0 };
            readings.push(reading(m, DeviceType::SupplyPoint, exported, consumed));
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
                price_base_per_kwh: 110_000_000, // 110 EUR/MWh
                grid_fee_base_per_kwh: 8_000_000,
            }]
        } else {
            vec![]
        };
        let cer = if h % 730 == 729 {
            MEMBERS
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
    CommunityYear {
        seed,
        members: MEMBERS.iter().map(|m| (*m).to_string()).collect(),
        mint_rate_base_per_wh: 1_000_000,
        start_timestamp_s: 1_167_609_600,
        interval_s: 3_600,
        opening_balance_base: 10 * Rescoin::ONE.0,
        treasury_endowment_base: 1_000_000 * Rescoin::ONE.0,
        intervals,
    }
}
