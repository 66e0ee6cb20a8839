//! Settlement of a community year: hand-computed small case, determinism, a full hourly year
//! for 5 members written to redb and verified.
#![allow(clippy::unwrap_used)]

mod common;

use scg_ledger::DeviceType;
use scg_ledger::Ledger;
use scg_ledger::LedgerError;
use scg_ledger::settlement::{
    CerPayout, CommunityYear, IndexedInterval, IndexedReading, IndexedTrade, IntervalInput, Layout,
    MeterReading, P2pTrade, SettledYear, YearHeader, derive_key, settle_stream, settle_year,
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

fn trade(buyer: &str, seller: &str, energy_wh: u64) -> P2pTrade {
    P2pTrade {
        buyer: buyer.into(),
        seller: seller.into(),
        energy_wh,
        price_base_per_kwh: 100_000_000,   // 0.1 RES/kWh
        grid_fee_base_per_kwh: 20_000_000, // 0.02 RES/kWh
    }
}

/// Interval 0: the school's PV (3000 Wh) serves its load (500), charges its battery (1000)
/// and is sold to the flat (1500). Interval 1: the battery discharges 800 Wh, sold to the flat.
/// Interval 2: the school's EV gives back 300 Wh by V2G that was charged from nothing certified.
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
                    reading("school", DeviceType::Pv, 3_000, 0),
                    reading("school", DeviceType::Battery, 0, 1_000),
                    reading("school", DeviceType::SupplyPoint, 1_500, 0),
                    reading("flat", DeviceType::SupplyPoint, 0, 2_000),
                ],
                trades: vec![trade("flat", "school", 1_500)],
                cer: vec![],
            },
            IntervalInput {
                readings: vec![
                    reading("school", DeviceType::Battery, 800, 0),
                    reading("school", DeviceType::SupplyPoint, 800, 0),
                    reading("flat", DeviceType::SupplyPoint, 0, 800),
                ],
                trades: vec![trade("flat", "school", 800)],
                cer: vec![],
            },
            IntervalInput {
                readings: vec![
                    reading("school", DeviceType::EvCharger, 300, 0),
                    reading("school", DeviceType::SupplyPoint, 300, 0),
                    reading("flat", DeviceType::SupplyPoint, 0, 300),
                ],
                trades: vec![trade("flat", "school", 300)],
                cer: vec![CerPayout {
                    member: "flat".into(),
                    amount_base: 5,
                }],
            },
        ],
    }
}

/// Replay a settled chain into a ledger (checking every block as a node would).
fn replay(s: &SettledYear) -> Ledger {
    let (mut ledger, _) = Ledger::from_genesis_block(&s.blocks[0]).unwrap();
    for b in &s.blocks[1..] {
        let out = ledger.apply_block(b).unwrap();
        assert_eq!(out.rejected(), 0);
    }
    ledger.check_invariants().unwrap();
    ledger
}

#[test]
fn small_year_by_hand() {
    let s = settle_year(&small()).unwrap();
    let sum = &s.summary;
    // Three hourly intervals: one block (a day) after genesis.
    assert_eq!(sum.blocks, 2);
    assert_eq!(sum.transactions_rejected, 0);
    // 3000 Wh PV at 1e6 base/Wh; battery and V2G mint nothing.
    assert_eq!(sum.rescoin_minted, Rescoin(3_000_000_000));
    assert_eq!(sum.certificates_issued, 1);
    // Every Wh sold is settled, from PV, battery or V2G alike.
    assert_eq!(sum.p2p_trades_settled, 3);
    assert_eq!(sum.p2p_wh_delivered, 2_600);
    // Origin: 1500 from PV, 800 from the battery (charged with certified PV); V2G none.
    assert_eq!(sum.p2p_wh_certified, 2_300);
    assert_eq!(sum.stored_certified_wh, 1_000);
    // Flat pays 2.6 kWh x 0.12 RES = 0.312 RES, all topped up by the treasury.
    assert_eq!(sum.treasury_topups, Rescoin(312_000_000));
    assert_eq!(sum.grid_fees, Rescoin(52_000_000));
    let flat = &sum.members["flat"];
    let school = &sum.members["school"];
    assert_eq!(flat.balance, Rescoin(5));
    assert_eq!(flat.p2p_paid, Rescoin(260_000_000));
    assert_eq!(flat.fees_paid, Rescoin(52_000_000));
    assert_eq!(flat.cer_received, Rescoin(5));
    assert_eq!(flat.certified_received_wh, 2_300);
    assert_eq!(school.p2p_received, Rescoin(260_000_000));
    assert_eq!(school.minted, Rescoin(3_000_000_000));
    assert_eq!(school.balance, Rescoin(3_000_000_000 + 260_000_000));
    assert_eq!(sum.cer_distributed, Rescoin(5));

    let ledger = replay(&s);
    assert_eq!(
        scg_ledger::merkle::to_hex(&ledger.state_root()),
        sum.final_state_root_hex
    );
    let key = |role, id, device| derive_key(7, role, id, device).verifying_key().to_bytes();
    // The battery keeps the 200 certified Wh it was not asked to give back.
    assert_eq!(
        ledger.certified_held_wh(&key("meter", "school", Some(DeviceType::Battery))),
        200
    );
    assert_eq!(
        ledger.certified_held_wh(&key("meter", "school", Some(DeviceType::EvCharger))),
        0
    );
    assert_eq!(
        ledger.certified_held_wh(&key("member", "flat", None)),
        2_300
    );
    // The school keeps the certificates of its own consumption: 3000 - 1500 - 1000.
    assert_eq!(
        ledger.certified_held_wh(&key("member", "school", None)),
        500
    );
    // Never more certified than metered renewable, never twice.
    let t = ledger.totals();
    assert_eq!(t.certified_wh, 3_000);
    assert_eq!(t.renewable_wh_metered, 3_000);
}

#[test]
fn bad_input_is_an_error_naming_the_interval_and_member() {
    type Break = fn(&mut CommunityYear);
    let cases: [(Break, &str, &str); 7] = [
        (
            |y| y.intervals[1].trades.push(trade("nobody", "school", 1)),
            "interval 1",
            "nobody",
        ),
        (
            // More than the school's supply point exported in interval 1.
            |y| {
                y.intervals[1].trades[0].energy_wh = 801;
                y.intervals[1].readings[2].consumed_wh = 801;
            },
            "interval 1",
            "'school'",
        ),
        (
            |y| {
                y.intervals[2].readings[2].consumed_wh = 299;
            },
            "interval 2",
            "'flat'",
        ),
        (
            |y| {
                y.intervals[0]
                    .readings
                    .push(reading("ghost", DeviceType::Pv, 1, 0));
            },
            "interval 0",
            "ghost",
        ),
        (
            |y| {
                y.intervals[2].cer.push(CerPayout {
                    member: "stranger".into(),
                    amount_base: 1,
                });
            },
            "interval 2",
            "stranger",
        ),
        (
            |y| y.intervals[0].trades[0].energy_wh = 0,
            "interval 0",
            "'school'",
        ),
        (
            |y| y.intervals[1].trades[0].seller = "flat".into(),
            "interval 1",
            "'flat'",
        ),
    ];
    for (break_it, interval, member) in cases {
        let mut y = small();
        break_it(&mut y);
        let e = settle_year(&y).unwrap_err().to_string();
        assert!(e.contains(interval) && e.contains(member), "{e}");
    }
}

/// `settle_stream` asks for every interval once, in order, and refuses a member position or
/// a meter its header does not announce, naming the interval; fed the same intervals it
/// writes the chain `settle_year` writes.
#[test]
fn a_streamed_year_matches_the_named_one_and_names_bad_positions() {
    let year = small();
    let position = |id: &str| year.members.iter().position(|m| m == id).unwrap() as u32;
    let mut devices = vec![0u8; year.members.len()];
    for r in year.intervals.iter().flat_map(|iv| &iv.readings) {
        devices[position(&r.member) as usize] |= 1 << (r.device as u8);
    }
    let header = YearHeader {
        seed: year.seed,
        members: year.members.clone(),
        devices,
        mint_rate_base_per_wh: year.mint_rate_base_per_wh,
        start_timestamp_s: year.start_timestamp_s,
        interval_s: year.interval_s,
        opening_balance_base: year.opening_balance_base,
        treasury_endowment_base: year.treasury_endowment_base,
        intervals: year.intervals.len(),
    };
    let fill = |i: usize, out: &mut IndexedInterval| {
        let iv = &year.intervals[i];
        out.readings
            .extend(iv.readings.iter().map(|r| IndexedReading {
                member: position(&r.member),
                device: r.device,
                produced_wh: r.produced_wh,
                consumed_wh: r.consumed_wh,
            }));
        out.trades.extend(iv.trades.iter().map(|t| IndexedTrade {
            buyer: position(&t.buyer),
            seller: position(&t.seller),
            energy_wh: t.energy_wh,
            price_base_per_kwh: t.price_base_per_kwh,
            grid_fee_base_per_kwh: t.grid_fee_base_per_kwh,
        }));
        out.cer
            .extend(iv.cer.iter().map(|c| (position(&c.member), c.amount_base)));
    };
    let mut asked = Vec::new();
    let streamed = settle_stream(&header, Layout::PerRecord, |i, out| {
        asked.push(i);
        fill(i, out);
        Ok::<(), LedgerError>(())
    })
    .unwrap();
    assert_eq!(asked, (0..year.intervals.len()).collect::<Vec<_>>());
    let named = settle_year(&year).unwrap();
    assert_eq!(streamed.blocks, named.blocks);
    assert_eq!(streamed.summary, named.summary);

    let bad_position = settle_stream(&header, Layout::Compact, |i, out| {
        fill(i, out);
        if i == 1 {
            out.readings[0].member = 7;
        }
        Ok::<(), LedgerError>(())
    });
    let e = bad_position.unwrap_err().to_string();
    assert!(e.contains("interval 1") && e.contains("#7"), "{e}");
    let unannounced = settle_stream(&header, Layout::Compact, |i, out| {
        fill(i, out);
        if i == 2 {
            out.readings[0].device = DeviceType::Wind;
        }
        Ok::<(), LedgerError>(())
    });
    let e = unannounced.unwrap_err().to_string();
    assert!(
        e.contains("interval 2") && e.contains("'school'") && e.contains("wind"),
        "{e}"
    );
}

/// A year of hourly intervals for 5 members with PV, wind, batteries, P2P trades and monthly
/// CER payouts: settles, stores, verifies; same seed gives the same root.
#[test]
fn hourly_year_for_five_members_stores_and_verifies() {
    let year = common::year::hourly_year(2007, 8_760);
    let t0 = std::time::Instant::now();
    let settled = settle_year(&year).unwrap();
    let settle_s = t0.elapsed().as_secs_f64();
    let sum = &settled.summary;
    assert_eq!(sum.blocks, 366); // genesis + one block per day
    assert_eq!(sum.transactions_rejected, 0);
    assert!(sum.certificates_issued > 8_760);
    assert_eq!(sum.p2p_wh_delivered, 400 * 12 * 365);
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
    assert_eq!(report.height, 365);
    assert_eq!(
        scg_ledger::merkle::to_hex(&report.state_root),
        sum.final_state_root_hex
    );
    assert_eq!(head.state_root, report.state_root);
    assert_eq!(report.transactions, sum.transactions);
    // Storing again into the same directory replaces the ledger.
    let small_settled = settle_year(&small()).unwrap();
    store(&dir, &small_settled).unwrap();
    assert_eq!(Store::open(&dir).unwrap().verify().unwrap().height, 1);
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

/// `store` writes what the settlement's ledger produced, so it refuses blocks changed after
/// the settlement; `verify` gives the same report whatever the number of threads checking
/// signatures.
#[test]
fn store_refuses_changed_blocks_and_verify_does_not_depend_on_threads() {
    let settled = settle_year(&common::year::hourly_year(11, 600)).unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ledger-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut changed = settled.clone();
    let last = changed.blocks[7].txs[0].len() - 1;
    changed.blocks[7].txs[0][last] ^= 1;
    let e = store(&dir, &changed).unwrap_err().to_string();
    assert!(e.contains("block 7"), "{e}");
    let mut relinked = settled.clone();
    relinked.blocks[3].header.timestamp_s += 1;
    assert!(store(&dir, &relinked).is_err());
    store(&dir, &settled).unwrap();
    let verify_with = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| scg_ledger::store::verify_dir(&dir).unwrap())
    };
    let one = verify_with(1);
    assert_eq!(one.height, 25); // 600 hours: 25 daily blocks
    assert_eq!(one, verify_with(3));
    std::fs::remove_dir_all(&dir).unwrap();
}
