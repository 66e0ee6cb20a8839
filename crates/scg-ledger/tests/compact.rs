//! The compact layout (one member day per member and day, `scg_ledger::day`) against the
//! per-record layout on the same input: every member's RESCoin (minted, P2P received, paid,
//! fees, CER, top-ups, balance) and certified Wh are equal; the chain replays with every
//! signature checked; a member proves its day record against the block header and its
//! aggregate against the state root; bad member days and closes are rejected.
#![allow(clippy::unwrap_used)]

mod common;

use scg_ledger::day::{DayClose, Layout, MemberDay, Quantity, member_day_proof};
use scg_ledger::settlement::{
    SettledYear, derive_key, member_account, settle_year, settle_year_with,
};
use scg_ledger::{DeviceType, Ledger, Reject, TxBody};

fn replay(s: &SettledYear) -> Ledger {
    let (mut ledger, _) = Ledger::from_genesis_block(&s.blocks[0]).unwrap();
    for b in &s.blocks[1..] {
        let out = ledger.apply_block(b).unwrap();
        assert_eq!(out.rejected(), 0);
        assert!(out.record_rejects.is_empty(), "{:?}", out.record_rejects);
    }
    ledger.check_invariants().unwrap();
    ledger
}

/// Everything but what only one layout has (the state root, counts of records, signatures,
/// transactions and certificates).
fn same_money_and_energy(a: &SettledYear, b: &SettledYear) {
    let (x, y) = (&a.summary, &b.summary);
    assert_eq!(x.members, y.members);
    assert_eq!(x.rescoin_minted, y.rescoin_minted);
    assert_eq!(x.certified_wh, y.certified_wh);
    assert_eq!(x.p2p_trades_settled, y.p2p_trades_settled);
    assert_eq!(x.p2p_wh_delivered, y.p2p_wh_delivered);
    assert_eq!(x.p2p_wh_certified, y.p2p_wh_certified);
    assert_eq!(x.stored_certified_wh, y.stored_certified_wh);
    assert_eq!(x.grid_fees, y.grid_fees);
    assert_eq!(x.cer_distributed, y.cer_distributed);
    assert_eq!(x.treasury_topups, y.treasury_topups);
}

#[test]
fn a_month_settles_to_the_same_rescoin_in_both_layouts() {
    let year = common::year::hourly_year(7, 24 * 31);
    let per_record = settle_year(&year).unwrap();
    let compact = settle_year_with(&year, Layout::Compact).unwrap();
    same_money_and_energy(&per_record, &compact);
    assert!(compact.summary.members["apartment"].p2p_paid.0 > 0);
    assert!(compact.summary.members["apartment"].certified_received_wh > 0);
    // One member day per member with energy and one close per day, far fewer records.
    assert_eq!(compact.summary.blocks, per_record.summary.blocks);
    assert!(compact.summary.records * 5 < per_record.summary.records);
    // Day certificates: one per member-day with renewable energy (3 PV members + wind).
    assert_eq!(compact.summary.certificates_issued, 31 * 3);
    let ledger = replay(&compact);
    assert_eq!(
        scg_ledger::merkle::to_hex(&ledger.state_root()),
        compact.summary.final_state_root_hex
    );
    // The per-record layout's chain does not carry the day tree.
    assert!(replay(&per_record).commitment().days_root.is_none());
    assert!(ledger.commitment().days_root.is_some());
}

#[test]
fn a_member_proves_its_day_record_and_its_aggregate() {
    let year = common::year::hourly_year(9, 48);
    let settled = settle_year_with(&year, Layout::Compact).unwrap();
    let ledger = replay(&settled);
    let school = member_account(9, "school");
    let block = &settled.blocks[1];
    let proof = member_day_proof(block, &school).unwrap();
    let day = proof.verify(9, &block.header, &school).unwrap();
    assert_eq!((day.first_interval, day.intervals), (0, 24));
    // 400 Wh sold in each of the 12 daylight hours.
    assert_eq!(day.total(Quantity::P2pSold), 12 * 400);
    // Another member, another chain id or another header: no.
    assert!(
        proof
            .verify(9, &block.header, &member_account(9, "office"))
            .is_none()
    );
    assert!(proof.verify(10, &block.header, &school).is_none());
    assert!(
        proof
            .verify(9, &settled.blocks[2].header, &school)
            .is_none()
    );
    let mut forged = proof.clone();
    if let TxBody::MemberDay(d) = &mut forged.record.body {
        d.money.received_base += 1;
    }
    assert!(forged.verify(9, &block.header, &school).is_none());
    // The aggregate sums both days and is provable against the state root.
    let a = ledger.member_aggregate_proof(&school).unwrap();
    assert!(a.verify(&ledger.state_root()));
    assert_eq!(a.aggregate.days, 2);
    assert_eq!(a.aggregate.p2p_sold_wh, 2 * 12 * 400);
    assert_eq!(
        a.aggregate.received_base,
        settled.summary.members["school"].p2p_received.0
    );
    let mut wrong = a.clone();
    wrong.aggregate.received_base += 1;
    assert!(!wrong.verify(&ledger.state_root()));
}

/// The first block of a two-day compact chain, its member days and close taken apart.
fn first_day() -> (Ledger, Vec<(String, MemberDay)>, DayClose) {
    let year = common::year::hourly_year(5, 48);
    let settled = settle_year_with(&year, Layout::Compact).unwrap();
    let (mut ledger, _) = Ledger::from_genesis_block(&settled.blocks[0]).unwrap();
    ledger.apply_block(&settled.blocks[1]).unwrap();
    let mut days = Vec::new();
    let mut close = None;
    let block = &settled.blocks[2];
    for bytes in &block.txs {
        let tx = scg_ledger::Tx::decode(bytes).unwrap();
        let TxBody::SettlementBatch(b) = tx.body else {
            continue;
        };
        for r in &b.records {
            let author = b.signers[usize::from(r.signer)].key;
            match &r.body {
                TxBody::MemberDay(d) => {
                    let id = common::year::MEMBERS
                        .iter()
                        .find(|m| member_account(5, m) == author)
                        .unwrap();
                    days.push(((*id).to_owned(), d.clone()));
                }
                TxBody::DayClose(c) => close = Some(*c),
                _ => {}
            }
        }
    }
    (ledger, days, close.unwrap())
}

/// Apply member days and a close as one batch of a new block; the record rejects.
fn apply(ledger: &mut Ledger, days: &[(String, MemberDay)], close: DayClose) -> Vec<Reject> {
    let operator = derive_key(5, "operator", "", None);
    let mut records: Vec<_> = days
        .iter()
        .map(|(m, d)| {
            (
                derive_key(5, "member", m, None),
                TxBody::MemberDay(d.clone()),
            )
        })
        .collect();
    records.push((operator.clone(), TxBody::DayClose(close)));
    // Fresh ids for every block (a record id applies once per chain).
    let ids = (1u128 << 40) + (u128::from(ledger.height()) << 20);
    let batch = scg_ledger::Batch::sign(5, ids, records).unwrap();
    let nonce = ledger
        .account(&operator.verifying_key().to_bytes())
        .unwrap()
        .nonce;
    let tx = scg_ledger::Tx::sign(5, &operator, ids - 1, nonce, TxBody::SettlementBatch(batch));
    let ts = ledger.last_timestamp_s() + 86_400;
    let (_, out) = ledger.produce_block(ts, vec![tx]).unwrap();
    out.record_rejects.iter().map(|r| r.reason).collect()
}

#[test]
fn bad_member_days_and_closes_are_rejected_and_change_nothing() {
    let (ledger, days, close) = first_day();
    // As produced: applies.
    let mut ok = ledger.clone();
    assert!(apply(&mut ok, &days, close).is_empty());
    // Again: every day is out of order, so the close finds nothing staged.
    let again = apply(&mut ok, &days, close);
    assert_eq!(
        again
            .iter()
            .filter(|r| **r == Reject::DayOutOfOrder)
            .count(),
        days.len()
    );
    assert_eq!(again.last(), Some(&Reject::DayUnbalanced));

    // A seller that claims more money: the close does not add up, nothing applies.
    let mut tampered = days.clone();
    let seller = tampered
        .iter_mut()
        .find(|(_, d)| d.money.received_base > 0)
        .unwrap();
    seller.1.money.received_base += 1;
    let mut l = ledger.clone();
    let before = l.commitment();
    let balances = |l: &Ledger| -> Vec<u128> {
        common::year::MEMBERS
            .iter()
            .map(|m| l.account(&member_account(5, m)).unwrap().balance)
            .collect()
    };
    assert_eq!(apply(&mut l, &tampered, close), vec![Reject::DayUnbalanced]);
    assert_eq!(balances(&l), balances(&ledger));
    assert_eq!(l.commitment().totals.minted, before.totals.minted);
    assert_eq!(l.commitment().days_root, before.days_root);

    // Sales beyond the supply point's export.
    let mut tampered = days.clone();
    let (_, d) = tampered
        .iter_mut()
        .find(|(_, d)| d.get(Quantity::P2pSold).is_some())
        .unwrap();
    for (q, v) in &mut d.series {
        if *q == Quantity::P2pSold {
            v[12] += 1_000_000;
        }
    }
    let r = apply(&mut ledger.clone(), &tampered, close);
    assert_eq!(r[0], Reject::DayExceedsReadings);

    // Certified sales beyond the member's renewable and received Wh.
    let mut tampered = days.clone();
    let (_, d) = tampered
        .iter_mut()
        .find(|(_, d)| d.certified.sold_wh > 0)
        .unwrap();
    d.certified.sold_wh = u64::try_from(d.total(Quantity::P2pSold)).unwrap() + 1;
    let r = apply(&mut ledger.clone(), &tampered, close);
    assert_eq!(r[0], Reject::DayExceedsReadings);

    // A close that counts another number of members, or signed by a member.
    let wrong = DayClose {
        members: close.members + 1,
        ..close
    };
    assert_eq!(
        apply(&mut ledger.clone(), &days, wrong),
        vec![Reject::DayUnbalanced]
    );

    // A member day signed by the operator.
    let mut l = ledger.clone();
    let operator = derive_key(5, "operator", "", None);
    let batch = scg_ledger::Batch::sign(
        5,
        1 << 40,
        vec![(operator.clone(), TxBody::MemberDay(days[0].1.clone()))],
    )
    .unwrap();
    let nonce = l
        .account(&operator.verifying_key().to_bytes())
        .unwrap()
        .nonce;
    let tx = scg_ledger::Tx::sign(5, &operator, 1 << 41, nonce, TxBody::SettlementBatch(batch));
    let ts = l.last_timestamp_s() + 86_400;
    let (_, out) = l.produce_block(ts, vec![tx]).unwrap();
    assert_eq!(out.record_rejects[0].reason, Reject::WrongRole);
    assert!(
        Reject::DAY
            .iter()
            .all(|r| !r.describe().is_empty() && Reject::from_code(r.code()) == Some(*r))
    );
}

#[test]
fn storage_certificates_follow_the_energy_across_days() {
    // A member charges a battery from its PV on day one and discharges it on day two.
    use scg_ledger::settlement::{CommunityYear, IntervalInput, MeterReading};
    let reading = |m: &str, device, produced_wh, consumed_wh| MeterReading {
        member: m.into(),
        device,
        produced_wh,
        consumed_wh,
    };
    let mut intervals = vec![IntervalInput::default(); 48];
    intervals[10].readings = vec![
        reading("a", DeviceType::Pv, 2_000, 0),
        reading("a", DeviceType::Battery, 0, 1_500),
        reading("a", DeviceType::SupplyPoint, 500, 0),
        reading("b", DeviceType::SupplyPoint, 0, 500),
    ];
    intervals[30].readings = vec![
        reading("a", DeviceType::Battery, 1_200, 0),
        reading("a", DeviceType::SupplyPoint, 1_000, 0),
        reading("b", DeviceType::SupplyPoint, 0, 1_000),
    ];
    for (t, wh) in [(10, 500), (30, 1_000)] {
        intervals[t].trades = vec![scg_ledger::settlement::P2pTrade {
            buyer: "b".into(),
            seller: "a".into(),
            energy_wh: wh,
            price_base_per_kwh: 123_456_789,
            grid_fee_base_per_kwh: 7_777_777,
        }];
    }
    let year = CommunityYear {
        seed: 3,
        members: vec!["a".into(), "b".into()],
        mint_rate_base_per_wh: 1_000,
        start_timestamp_s: 1_167_609_600,
        interval_s: 3_600,
        opening_balance_base: 0,
        treasury_endowment_base: 10u128.pow(20),
        intervals,
    };
    let per_record = settle_year(&year).unwrap();
    let compact = settle_year_with(&year, Layout::Compact).unwrap();
    same_money_and_energy(&per_record, &compact);
    assert!(compact.summary.stored_certified_wh > 0);
    assert!(
        compact.summary.treasury_topups.0 > 0,
        "b starts with nothing"
    );
    let ledger = replay(&compact);
    let battery = member_account(3, "a");
    assert_eq!(ledger.member_aggregate(&battery).unwrap().days, 2);
}

#[test]
fn a_compact_chain_stores_and_verifies() {
    let year = common::year::hourly_year(4, 24 * 10);
    let settled = settle_year_with(&year, Layout::Compact).unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ledger-compact-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let head = scg_ledger::store::store(&dir, &settled).unwrap();
    let report = scg_ledger::store::Store::open(&dir)
        .unwrap()
        .verify()
        .unwrap();
    assert_eq!(report.height, 10);
    assert_eq!(head.state_root, report.state_root);
    assert_eq!(
        scg_ledger::merkle::to_hex(&report.state_root),
        settled.summary.final_state_root_hex
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A temporary ledger directory of this test process.
fn tmp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A chain whose block 1 holds 300 signed transfers (their signatures do not compress: the
/// block is stored in several parts) and block 2 one (stored raw).
fn chain_with_a_big_block() -> Vec<scg_ledger::Block> {
    let mut c = common::Chain::new();
    let treasury = c.treasury.clone();
    let bodies = (0..300u16)
        .map(|i| TxBody::Transfer {
            to: common::pk(&common::key(&format!("payee {i}"))),
            amount: 1 + u128::from(i),
        })
        .collect();
    let txs = c.sign_all(&treasury, bodies);
    c.block(txs);
    let tx = c.sign(
        &treasury,
        TxBody::Transfer {
            to: common::pk(&common::key("payee 0")),
            amount: 5,
        },
    );
    c.block(vec![tx]);
    c.blocks
}

/// Stored blocks: small ones as their bytes, larger ones as a zstd frame cut in parts; each
/// reads back as the canonical block, and the chain verifies.
#[test]
fn stored_blocks_read_back_exactly_raw_or_compressed_in_parts() {
    use scg_ledger::store::{
        BLOCK_PART_LEN, Store, stored_block, unpack_stored_block, write_blocks,
    };
    let blocks = chain_with_a_big_block();
    let sizes: Vec<usize> = blocks
        .iter()
        .map(|b| stored_block(b).unwrap().len())
        .collect();
    assert!(
        sizes[0] < BLOCK_PART_LEN && sizes[2] < BLOCK_PART_LEN,
        "{sizes:?}"
    );
    assert!(
        sizes.iter().any(|n| *n > BLOCK_PART_LEN),
        "a block of several parts: {sizes:?}"
    );
    for b in &blocks {
        let stored = stored_block(b).unwrap();
        assert_eq!(unpack_stored_block(&stored).unwrap(), b.to_bytes());
        let canonical = b.to_bytes().len();
        assert!(
            stored.len() < canonical.max(BLOCK_PART_LEN),
            "{} of {canonical}",
            stored.len()
        );
    }
    let dir = tmp_dir("ledger-parts");
    write_blocks(&dir, &blocks).unwrap();
    let s = Store::open_read_only(&dir).unwrap();
    for (h, b) in blocks.iter().enumerate() {
        assert_eq!(s.block(h as u64).unwrap().as_ref(), Some(b));
    }
    assert_eq!(s.block(blocks.len() as u64).unwrap(), None);
    assert_eq!(s.verify().unwrap().height, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A missing, reordered or damaged part makes the block bad, named by its height, and never
/// a panic or a wrong block.
#[test]
fn a_damaged_stored_block_is_a_bad_block() {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    const PARTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("block_parts");
    let blocks = chain_with_a_big_block();
    let big = blocks
        .iter()
        .position(|b| {
            scg_ledger::store::stored_block(b).unwrap().len() > scg_ledger::store::BLOCK_PART_LEN
        })
        .unwrap() as u64;
    let dir = tmp_dir("ledger-parts-damaged");
    scg_ledger::store::write_blocks(&dir, &blocks).unwrap();
    let db_path = dir.join(scg_ledger::store::DB_FILE);
    let original = std::fs::read(&db_path).unwrap();
    type Damage = fn(&mut redb::Table<'_, (u64, u32), &'static [u8]>, u64);
    let damages: [(&str, Damage); 4] = [
        ("a part missing", |t, h| {
            t.remove((h, 0)).unwrap();
        }),
        ("an extra part", |t, h| {
            let n = t.range((h, 0)..=(h, u32::MAX)).unwrap().count() as u32;
            t.insert((h, n + 1), [1u8; 8].as_slice()).unwrap();
        }),
        ("an unknown tag", |t, h| {
            let mut first = t.get((h, 0)).unwrap().unwrap().value().to_vec();
            first[0] = 7;
            t.insert((h, 0), first.as_slice()).unwrap();
        }),
        ("a cut frame", |t, h| {
            let last = t.range((h, 0)..=(h, u32::MAX)).unwrap().count() as u32 - 1;
            let mut piece = t.get((h, last)).unwrap().unwrap().value().to_vec();
            piece.truncate(piece.len() / 2);
            t.insert((h, last), piece.as_slice()).unwrap();
        }),
    ];
    for (what, damage) in damages {
        std::fs::write(&db_path, &original).unwrap();
        {
            let db = redb::Database::open(&db_path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(PARTS).unwrap();
                damage(&mut t, big);
            }
            txn.commit().unwrap();
            let read = db.begin_read().unwrap();
            assert!(read.open_table(PARTS).unwrap().get((big, 0)).is_ok());
        }
        let s = scg_ledger::store::Store::open_read_only(&dir).unwrap();
        let err = s.block(big).unwrap_err().to_string();
        assert!(err.contains(&format!("block {big}")), "{what}: {err}");
        let err = s.verify().unwrap_err().to_string();
        assert!(err.contains(&format!("block {big}")), "{what}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bit flips inside a compressed block's stored frame, in the file itself: every one is
/// caught as a bad block (the frame does not unpack, or unpacks to other bytes than the ones
/// the chain's hashes and signatures commit to), never a panic or a verified chain.
#[test]
fn bit_flips_in_a_compressed_frame_are_caught() {
    use scg_ledger::store::{BLOCK_PART_LEN, DB_FILE, Store, stored_block, write_blocks};
    let blocks = chain_with_a_big_block();
    let big = blocks
        .iter()
        .position(|b| stored_block(b).unwrap().len() > BLOCK_PART_LEN)
        .unwrap();
    let stored = stored_block(&blocks[big]).unwrap();
    let dir = tmp_dir("ledger-frame-flips");
    write_blocks(&dir, &blocks).unwrap();
    let db_path = dir.join(DB_FILE);
    let original = std::fs::read(&db_path).unwrap();
    // Where the parts sit in the file (each once: the file is compacted).
    let parts: Vec<usize> = stored
        .chunks(BLOCK_PART_LEN)
        .map(|part| {
            let at: Vec<usize> = original
                .windows(part.len())
                .enumerate()
                .filter(|(_, w)| *w == part)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(at.len(), 1, "a part found {} times", at.len());
            at[0]
        })
        .collect();
    let mut state: u64 = 0xf1a9;
    let mut flips = 0;
    for (p, start) in parts.iter().enumerate() {
        let len = stored.chunks(BLOCK_PART_LEN).nth(p).unwrap().len();
        for _ in 0..12 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let pos = start + (state >> 33) as usize % len;
            let bit = (state >> 20) as u8 % 8;
            let mut bytes = original.clone();
            bytes[pos] ^= 1 << bit;
            std::fs::write(&db_path, &bytes).unwrap();
            let s = Store::open_read_only(&dir).unwrap();
            let err = s.verify().unwrap_err().to_string();
            assert!(
                err.contains(&format!("block {big}")),
                "part {p}, byte {} bit {bit}: {err}",
                pos - start
            );
            flips += 1;
        }
    }
    assert!(flips >= 24, "{flips} flips in {} parts", parts.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A ledger of storage format 2 (blocks uncompressed in table `blocks`) is refused, for
/// reading and for writing, with an error naming the file, the format found and the one
/// expected; so is a file without a format record.
#[test]
fn a_format_2_ledger_is_refused_with_a_clear_error() {
    use redb::TableDefinition;
    use scg_ledger::store::{DB_FILE, STORE_FORMAT, Store};
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
    let blocks = chain_with_a_big_block();
    let dir = tmp_dir("ledger-format-2");
    std::fs::create_dir_all(&dir).unwrap();
    let db_path = dir.join(DB_FILE);
    let write = |format: Option<u8>| {
        let _ = std::fs::remove_file(&db_path);
        let db = redb::Database::create(&db_path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            if let Some(f) = format {
                meta.insert("format", [f].as_slice()).unwrap();
            }
            let mut t = txn.open_table(BLOCKS).unwrap();
            for b in &blocks {
                t.insert(b.header.height, b.to_bytes().as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    };
    write(Some(2));
    let expected = format!("storage format {STORE_FORMAT} expected");
    for err in [
        Store::open_read_only(&dir).unwrap_err().to_string(),
        Store::open(&dir).unwrap_err().to_string(),
    ] {
        assert!(err.contains(&db_path.display().to_string()), "{err}");
        assert!(err.contains("storage format 2 found"), "{err}");
        assert!(err.contains(&expected), "{err}");
    }
    write(None);
    let err = Store::open_read_only(&dir).unwrap_err().to_string();
    assert!(err.contains("no storage format record found"), "{err}");
    assert!(err.contains(&expected), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

proptest::proptest! {
    /// Whatever bytes a stored block holds, reading them never panics.
    #[test]
    fn unpacking_any_stored_bytes_never_panics(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        tag in 0u8..3,
    ) {
        let mut stored = vec![tag];
        stored.extend_from_slice(&bytes);
        let _ = scg_ledger::store::unpack_stored_block(&stored);
    }
}
