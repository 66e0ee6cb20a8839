//! Settlement batches (transaction kind 13): every record applies exactly as the transaction
//! it stands for; a rejected record changes nothing and is named in the outcome; bad batches
//! are refused whole; the decoder holds its bounds and never panics.
#![allow(clippy::unwrap_used)]

mod common;

use common::{CHAIN, Chain, key, pk};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use scg_ledger::batch::{MAX_BATCH_RECORDS, MAX_BATCH_SIGNERS};
use scg_ledger::codec::DecodeError;
use scg_ledger::state::RecordReject;
use scg_ledger::tx::TX_HEADER_LEN;
use scg_ledger::{Batch, DeviceType, Reject, Tx, TxBody};

/// Members a (PV meter, supply point, battery) and b (supply point), funded.
struct Community {
    chain: Chain,
    a: SigningKey,
    b: SigningKey,
    pv: SigningKey,
    battery: SigningKey,
    supply_a: SigningKey,
}

fn community() -> Community {
    let mut chain = Chain::new();
    let a = chain.add_member("a");
    let b = chain.add_member("b");
    let pv = chain.add_meter(&a, "a-pv", DeviceType::Pv);
    let battery = chain.add_meter(&a, "a-battery", DeviceType::Battery);
    let supply_a = chain.add_meter(&a, "a-supply", DeviceType::SupplyPoint);
    chain.fund(&b, 5_000_000);
    Community {
        chain,
        a,
        b,
        pv,
        battery,
        supply_a,
    }
}

/// An hour of settlement for the community: records (author, body) with ids from `first`.
fn hour(c: &Community, first: u128, expires_at_s: u64) -> Vec<(SigningKey, TxBody)> {
    let report = |produced_wh, consumed_wh| TxBody::MeterReport {
        interval: 5,
        produced_wh,
        consumed_wh,
    };
    vec![
        (c.pv.clone(), report(2_000, 0)),
        (c.battery.clone(), report(0, 500)),
        (c.supply_a.clone(), report(900, 0)),
        (
            c.b.clone(),
            TxBody::TradeCreate {
                seller: pk(&c.a),
                interval: 5,
                energy_wh: 900,
                price_base_per_kwh: 2_000_000,
                fee_base_per_kwh: 100_000,
                expires_at_s,
            },
        ),
        (
            c.supply_a.clone(),
            TxBody::TradePost {
                // The trade create is the 4th record.
                trade_id: first + 3,
                delivered_wh: 900,
            },
        ),
        (
            c.a.clone(),
            TxBody::CertificateMove {
                to: pk(&c.b),
                interval: 5,
                energy_wh: 900,
            },
        ),
        (
            c.a.clone(),
            TxBody::CertificateMove {
                to: pk(&c.battery),
                interval: 5,
                energy_wh: 500,
            },
        ),
    ]
}

/// A batch of `records` with the chain's next ids, submitted by `submitter`.
fn batch(chain: &mut Chain, submitter: &SigningKey, records: Vec<(SigningKey, TxBody)>) -> Vec<u8> {
    let first = chain.next_id;
    chain.next_id += records.len() as u128;
    let b = Batch::sign(CHAIN, first, records).unwrap();
    chain.sign(submitter, TxBody::SettlementBatch(b))
}

#[test]
fn records_apply_exactly_as_their_transactions() {
    // One chain settles the hour with one signed transaction per record, the other with one
    // batch using the same ids: balances, trades, certificates and totals agree.
    let mut single = community();
    let mut batched = community();
    let expires = single.chain.timestamp_s + 100_000;
    let first = single.chain.next_id;
    assert_eq!(first, batched.chain.next_id);
    // Nonces advance per signer inside the block.
    let mut nonces = std::collections::BTreeMap::new();
    let mut txs = Vec::new();
    for (k, body) in hour(&single, first, expires) {
        let next = nonces
            .entry(pk(&k))
            .or_insert_with(|| single.chain.nonce(&k));
        txs.push(single.chain.sign_with(&k, *next, body));
        *next += 1;
    }
    let out = single.chain.block(txs);
    assert_eq!(out.rejected(), 0, "{:?}", out.results);
    let op = batched.chain.operator.clone();
    let records = hour(&batched, first, expires);
    let tx = batch(&mut batched.chain, &op, records);
    let out = batched.chain.block(vec![tx]);
    assert_eq!(out.rejected(), 0);
    assert!(out.record_rejects.is_empty(), "{:?}", out.record_rejects);
    let (s, b) = (&single.chain.ledger, &batched.chain.ledger);
    for k in [
        &single.a,
        &single.b,
        &single.pv,
        &single.battery,
        &single.supply_a,
    ] {
        let (x, y) = (s.account(&pk(k)).unwrap(), b.account(&pk(k)).unwrap());
        assert_eq!((x.balance, x.reserved), (y.balance, y.reserved));
        // Records carry no nonce: the authors keep theirs.
        assert_eq!(y.nonce, batched.chain.nonce(k));
    }
    assert_eq!(
        s.trades().collect::<Vec<_>>(),
        b.trades().collect::<Vec<_>>()
    );
    assert_eq!(s.certificates(), b.certificates());
    let (ts, tb) = (s.totals(), b.totals());
    assert_eq!(
        (ts.minted, ts.certified_wh, ts.certificates_issued),
        (tb.minted, tb.certified_wh, tb.certificates_issued)
    );
    assert_eq!(b.certified_held_wh(&pk(&batched.battery)), 500);
    // The grid got the fee, the seller the price, the buyer paid both.
    assert_eq!(
        b.account(&pk(&batched.chain.grid)).unwrap().balance,
        900 * 100_000 / 1_000
    );
}

#[test]
fn a_rejected_record_changes_nothing_and_is_named() {
    let mut c = community();
    let expires = c.chain.timestamp_s + 100_000;
    let first = c.chain.next_id;
    let mut records = hour(&c, first, expires);
    // Record 4 posts a trade that does not exist; record 5 then has no delivery to certify.
    records[4].1 = TxBody::TradePost {
        trade_id: 999_999,
        delivered_wh: 900,
    };
    let op = c.chain.operator.clone();
    let tx = batch(&mut c.chain, &op, records);
    let out = c.chain.block(vec![tx]);
    assert_eq!(out.results, vec![Ok(())]);
    assert_eq!(
        out.record_rejects,
        vec![
            RecordReject {
                tx: 0,
                record: 4,
                reason: Reject::UnknownTrade
            },
            RecordReject {
                tx: 0,
                record: 5,
                reason: Reject::CertifiedExceedsEnergy
            },
        ]
    );
    assert_eq!(
        out.record_rejects[0].to_string(),
        "tx 0 record 4: UnknownTrade (no such trade)"
    );
    // The trade stays pending (reserved), the rest applied.
    let t = c.chain.ledger.trade(first + 3).unwrap();
    assert_eq!(t.status, scg_ledger::state::TradeStatus::Pending);
    assert_eq!(c.chain.ledger.certified_held_wh(&pk(&c.battery)), 500);
    // The stored form and the outcome root carry the rejected records.
    assert!(out.encode_results().len() > 4 + 2 + 4);
    // A rejected record's id stays unused: a later record may take it.
    let retry = Batch::sign(
        CHAIN,
        first + 4,
        vec![(
            c.supply_a.clone(),
            TxBody::TradePost {
                trade_id: first + 3,
                delivered_wh: 900,
            },
        )],
    )
    .unwrap();
    let tx = c.chain.sign(&op, TxBody::SettlementBatch(retry));
    let out = c.chain.block(vec![tx]);
    assert!(out.record_rejects.is_empty(), "{:?}", out.record_rejects);
}

#[test]
fn bad_batches_are_refused_whole() {
    let mut c = community();
    let expires = c.chain.timestamp_s + 100_000;
    let before = c.chain.ledger.state_root();
    // Only the operator submits batches.
    let first = c.chain.next_id;
    let records = hour(&c, first, expires);
    let a = c.a.clone();
    let tx = batch(&mut c.chain, &a, records);
    assert_eq!(
        c.chain.block(vec![tx]).results,
        vec![Err(Reject::WrongRole)]
    );
    // A bad author signature: the whole batch is rejected, nothing applied.
    let first = c.chain.next_id;
    let mut b = Batch::sign(CHAIN, first, hour(&c, first, expires)).unwrap();
    c.chain.next_id += b.records.len() as u128;
    b.signers[1].signature[7] ^= 1;
    let op = c.chain.operator.clone();
    let tx = c.chain.sign(&op, TxBody::SettlementBatch(b));
    assert_eq!(
        c.chain.block(vec![tx]).results,
        vec![Err(Reject::BadSignature)]
    );
    // Signed for another chain: refused.
    let first = c.chain.next_id;
    let b = Batch::sign(CHAIN + 1, first, hour(&c, first, expires)).unwrap();
    let tx = c.chain.sign(&op, TxBody::SettlementBatch(b));
    assert_eq!(
        c.chain.block(vec![tx]).results,
        vec![Err(Reject::BadSignature)]
    );
    // The failed batches changed nothing but the counters and the history of applied ones.
    assert_eq!(c.chain.ledger.certificates().len(), 0);
    assert_ne!(c.chain.ledger.state_root(), before);
    // A good batch applies; the same records again (same ids, new envelope) are duplicates.
    let first = c.chain.next_id;
    let records = hour(&c, first, expires);
    let tx = batch(&mut c.chain, &op, records.clone());
    assert!(c.chain.block(vec![tx]).record_rejects.is_empty());
    let again = Batch::sign(CHAIN, first, records).unwrap();
    let tx = c.chain.sign(&op, TxBody::SettlementBatch(again));
    let out = c.chain.block(vec![tx]);
    assert_eq!(out.results, vec![Ok(())]);
    assert_eq!(out.record_rejects.len(), 7);
    assert!(
        out.record_rejects
            .iter()
            .all(|r| r.reason == Reject::DuplicateId)
    );
    // An author without an account: its records are rejected, the others apply.
    let stranger = key("stranger");
    let first = c.chain.next_id;
    let tx = batch(
        &mut c.chain,
        &op,
        vec![
            (stranger, TxBody::Burn { amount: 1 }),
            (c.b.clone(), TxBody::Burn { amount: 1 }),
        ],
    );
    let out = c.chain.block(vec![tx]);
    assert_eq!(
        out.record_rejects,
        vec![RecordReject {
            tx: 0,
            record: 0,
            reason: Reject::UnknownSigner
        }]
    );
    assert!(c.chain.ledger.trade(first).is_none());
}

/// Bytes of a batch transaction with a hand-made head and payload.
fn raw_batch(signer_count: u16, record_count: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![1u8, 13];
    b.extend_from_slice(&1u128.to_le_bytes());
    b.extend_from_slice(&pk(&key("operator")));
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u128.to_le_bytes());
    b.extend_from_slice(&signer_count.to_le_bytes());
    b.extend_from_slice(&record_count.to_le_bytes());
    b.extend_from_slice(&[0u8; 32]);
    b.extend_from_slice(&[0u8; 64]);
    b.extend_from_slice(payload);
    b
}

#[test]
fn decoder_refuses_out_of_bound_and_inconsistent_batches() {
    let invalid = |bytes: &[u8]| match Tx::decode(bytes) {
        Err(DecodeError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    };
    assert_eq!(
        invalid(&raw_batch(1, MAX_BATCH_RECORDS as u32 + 1, &[])),
        "record_count"
    );
    assert_eq!(invalid(&raw_batch(1, 0, &[])), "record_count");
    assert_eq!(
        invalid(&raw_batch(MAX_BATCH_SIGNERS as u16 + 1, 1, &[])),
        "signer_count"
    );
    assert_eq!(invalid(&raw_batch(0, 1, &[])), "signer_count");
    // One signer, one record naming signer 3: the error names record 0.
    let mut payload = vec![0u8; 96];
    payload.extend_from_slice(&3u16.to_le_bytes());
    payload.push(11);
    payload.extend_from_slice(&1u128.to_le_bytes());
    let e = Tx::decode(&raw_batch(1, 1, &payload)).unwrap_err();
    assert!(
        matches!(&e, DecodeError::InRecord { index: 0, .. }),
        "{e:?}"
    );
    assert!(e.to_string().starts_with("batch record 0:"), "{e}");
    // A batch inside a batch.
    let mut nested = vec![0u8; 96];
    nested.extend_from_slice(&0u16.to_le_bytes());
    nested.push(13);
    let e = Tx::decode(&raw_batch(1, 1, &nested)).unwrap_err();
    assert!(matches!(e, DecodeError::InRecord { index: 0, .. }), "{e:?}");
    // Well formed but the stated root is not the payload's.
    let mut ok = vec![0u8; 96];
    ok.extend_from_slice(&0u16.to_le_bytes());
    ok.push(11);
    ok.extend_from_slice(&1u128.to_le_bytes());
    assert_eq!(invalid(&raw_batch(1, 1, &ok)), "batch_root");
    // Two signers, the second authors nothing.
    let mut idle = vec![0u8; 96];
    idle.extend(std::iter::repeat_n(1u8, 96));
    idle.extend_from_slice(&0u16.to_le_bytes());
    idle.push(11);
    idle.extend_from_slice(&1u128.to_le_bytes());
    assert_eq!(invalid(&raw_batch(2, 1, &idle)), "signer_without_records");
    // Only a batch may exceed MAX_TX_LEN, and not beyond MAX_BATCH_LEN.
    let huge = vec![0u8; scg_ledger::batch::MAX_BATCH_LEN + 1];
    assert!(matches!(
        Tx::decode(&[&[1u8, 13][..], &huge].concat()),
        Err(DecodeError::TooLong { .. })
    ));
    assert_eq!(TX_HEADER_LEN, 58);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Mutated and truncated batches never panic the decoder; whatever decodes re-encodes to
    /// the same bytes.
    #[test]
    fn batch_decoder_never_panics(flips in proptest::collection::vec((0usize..2_000, any::<u8>()), 1..6), cut in 0usize..2_000) {
        let c = community_keys();
        let records = vec![
            (c.0.clone(), TxBody::Burn { amount: 3 }),
            (c.1.clone(), TxBody::MeterReport { interval: 1, produced_wh: 2, consumed_wh: 3 }),
            (c.0.clone(), TxBody::Transfer { to: pk(&c.1), amount: 4 }),
        ];
        let b = Batch::sign(CHAIN, 10, records).unwrap();
        let mut bytes = Tx::sign(CHAIN, &c.0, 1, 0, TxBody::SettlementBatch(b));
        for (pos, v) in flips { let n = bytes.len(); bytes[pos % n] ^= v; }
        if let Ok(tx) = Tx::decode(&bytes) {
            prop_assert_eq!(tx.encode(), bytes.clone());
        }
        let n = bytes.len();
        let _ = Tx::decode(&bytes[..cut % (n + 1)]);
    }
}

fn community_keys() -> (SigningKey, SigningKey) {
    (key("p-a"), key("p-b"))
}
