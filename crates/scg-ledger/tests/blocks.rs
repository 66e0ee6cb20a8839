//! Block-level checks: headers that do not fit the chain, tampered bodies and roots, poisoning,
//! determinism of replicas, and light-client account proofs.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Chain, pk};
use scg_ledger::{Block, DeviceType, Ledger, LedgerError, TxBody};

/// A short chain: two members, a meter report, a transfer.
fn chain() -> Chain {
    let mut c = Chain::new();
    let a = c.add_member("a");
    let b = c.add_member("b");
    let pv = c.add_meter(&a, "pv", DeviceType::Pv);
    c.fund(&b, 5_000);
    let r = c.sign(
        &pv,
        TxBody::MeterReport {
            interval: 0,
            produced_wh: 1_000,
            consumed_wh: 0,
        },
    );
    let t = c.sign(
        &b,
        TxBody::Transfer {
            to: pk(&a),
            amount: 7,
        },
    );
    c.block(vec![r, t]);
    c
}

/// A fresh replica at height `h - 1` of `c`.
fn replica_before(c: &Chain, h: usize) -> Ledger {
    let (mut l, _) = Ledger::from_genesis_block(&c.blocks[0]).unwrap();
    for b in &c.blocks[1..h] {
        l.apply_block(b).unwrap();
    }
    l
}

fn reason(e: LedgerError) -> String {
    e.to_string()
}

#[test]
fn replicas_reach_the_same_roots_and_blocks_survive_encoding() {
    let c = chain();
    let (mut l, _) =
        Ledger::from_genesis_block(&Block::decode(&c.blocks[0].to_bytes()).unwrap()).unwrap();
    for b in &c.blocks[1..] {
        let b = Block::decode(&b.to_bytes()).unwrap();
        let o = l.apply_block(&b).unwrap();
        assert_eq!(o.state_root, b.header.state_root);
    }
    assert_eq!(l.state_root(), c.ledger.state_root());
    assert_eq!(l.head_hash(), c.ledger.head_hash());
}

#[test]
fn structural_errors_leave_the_state_untouched() {
    let c = chain();
    let last = c.blocks.len() - 1;
    let mut l = replica_before(&c, last);
    let root = l.state_root();
    let good = c.blocks[last].clone();

    let mut b = good.clone();
    b.header.height += 1;
    assert!(reason(l.apply_block(&b).unwrap_err()).contains("expected height"));
    let mut b = good.clone();
    b.header.parent_hash[0] ^= 1;
    assert!(reason(l.apply_block(&b).unwrap_err()).contains("parent hash"));
    let mut b = good.clone();
    b.header.timestamp_s = 0;
    assert!(reason(l.apply_block(&b).unwrap_err()).contains("timestamp"));
    // A flipped bit in a transaction: the tx root no longer matches, and the culprit is named.
    let mut b = good.clone();
    b.txs[1][60] ^= 4;
    let e = reason(l.apply_block(&b).unwrap_err());
    assert!(
        e.contains(&format!("block {last}")) && e.contains("tx 1"),
        "{e}"
    );
    let mut b = good.clone();
    b.txs.pop();
    assert!(reason(l.apply_block(&b).unwrap_err()).contains("count"));
    assert_eq!(l.state_root(), root);
    assert!(!l.is_poisoned());
    // The untouched block still applies.
    l.apply_block(&good).unwrap();
    assert_eq!(l.state_root(), c.ledger.state_root());
}

#[test]
fn a_wrong_state_or_outcome_root_poisons_the_ledger() {
    let c = chain();
    let last = c.blocks.len() - 1;
    let mut l = replica_before(&c, last);
    let mut b = c.blocks[last].clone();
    b.header.state_root[5] ^= 1;
    let e = reason(l.apply_block(&b).unwrap_err());
    assert!(e.contains("state root mismatch"), "{e}");
    assert!(l.is_poisoned());
    assert!(matches!(
        l.apply_block(&c.blocks[last]),
        Err(LedgerError::Poisoned)
    ));

    let mut l = replica_before(&c, last);
    let mut b = c.blocks[last].clone();
    b.header.outcome_root[0] ^= 1;
    assert!(reason(l.apply_block(&b).unwrap_err()).contains("outcome root"));
}

#[test]
fn genesis_must_match_its_config() {
    let c = chain();
    let mut g = c.blocks[0].clone();
    g.header.state_root[0] ^= 1;
    assert!(Ledger::from_genesis_block(&g).is_err());
    let mut g = c.blocks[0].clone();
    if let Some(cfg) = g.genesis.as_mut() {
        cfg.treasury_endowment += 1;
    }
    assert!(reason(Ledger::from_genesis_block(&g).unwrap_err()).contains("transaction root"));
    assert!(Ledger::from_genesis_block(&c.blocks[1]).is_err());
}

#[test]
fn light_client_checks_one_balance_against_the_state_root() {
    let c = chain();
    let root = c.ledger.state_root();
    let a = common::key("a");
    let proof = c.ledger.account_proof(&pk(&a)).unwrap();
    assert_eq!(proof.account.balance, 1_000 * common::MINT_RATE + 7);
    assert!(proof.verify(&root));
    // A different balance, a different position or an older root do not verify.
    let mut forged = proof.clone();
    forged.account.balance += 1;
    assert!(!forged.verify(&root));
    let mut moved = proof.clone();
    moved.proof.index ^= 1;
    moved.account.index ^= 1;
    assert!(!moved.verify(&root));
    let older = c.blocks[c.blocks.len() - 2].header.state_root;
    assert!(!proof.verify(&older));
    // Every account proves.
    for acc in c.ledger.accounts() {
        assert!(c.ledger.account_proof(&acc.key).unwrap().verify(&root));
    }
}
