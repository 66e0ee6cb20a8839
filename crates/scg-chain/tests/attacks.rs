//! Attacks that must be rejected: a transaction from a non-member, a transaction replayed from
//! another chain, forged and under-quorum certificates in a stored chain (verify names the
//! block), a node whose key or peers do not belong to the genesis, a validator started with
//! another genesis (refuses to join, naming the chains), a proposed block holding a
//! transaction signed for another chain (refused), and on an on-chain market a Byzantine
//! leader that reverses or omits the members' orders in its blocks (the trades every honest
//! node computes are those of the orders in any order).
#![allow(clippy::unwrap_used)]

mod common;

use common::market::{GATE_AFTER_S, market_script, market_trades, reference_trades, replay_node};
use commonware_cryptography::certificate::Signers;
use scg_chain::app::check_submission;
use scg_chain::wire::Record;
use scg_chain::{ChainError, MemberKey};

#[test]
fn non_member_and_cross_chain_transactions_are_refused() {
    let a = common::chain(11, 4, "a");
    let b = common::chain(11, 4, "b");
    let (ledger, _) = a.genesis.initial_state().unwrap();
    // A member's meter, signed for this chain: accepted.
    check_submission(&ledger, &common::report(&a, 0, 0)).unwrap();
    // Signed by a key that is not on the chain.
    let outsider = MemberKey::from_seed([9; 32]);
    let tx = scg_ledger::Tx::sign(
        a.genesis.ledger.chain_id,
        &outsider.signing_key(),
        1,
        0,
        scg_ledger::TxBody::Burn { amount: 1 },
    );
    let e = check_submission(&ledger, &tx).unwrap_err();
    assert!(e.contains("not a member"), "{e}");
    // The same meter key registered on chain b too; its chain-b transaction replayed on a.
    let (ledger_b, _) = b.genesis.initial_state().unwrap();
    let replay = common::report(&b, 0, 0);
    check_submission(&ledger_b, &replay).unwrap();
    let e = check_submission(&ledger, &replay).unwrap_err();
    assert!(
        e.contains("another chain") || e.contains("not a member"),
        "{e}"
    );
    // Same keys (same seed), different chain name: the signer is a member, the signature fails.
    let same_keys = common::chain(11, 4, "a2");
    let replay = common::report(&same_keys, 0, 0);
    let e = check_submission(&ledger, &replay).unwrap_err();
    assert!(e.contains("another chain"), "{e}");
}

#[test]
fn wrong_genesis_refuses_to_join_with_a_reason() {
    let a = common::chain(12, 4, "a");
    let b = common::chain(13, 4, "b");
    let e = scg_chain::node::check_membership(&a.genesis, &b.members[0]).unwrap_err();
    assert!(matches!(e, ChainError::Refused { .. }));
    assert!(e.to_string().contains("not a validator"), "{e}");
    let peer = scg_chain::run::Peer {
        key: b.members[1].public(),
        addr: "127.0.0.1:1".parse().unwrap(),
    };
    let e = scg_chain::run::check(&a.genesis, &a.members[0], &[peer]).unwrap_err();
    assert!(
        e.to_string().contains("not a validator in this genesis"),
        "{e}"
    );
    // A store of one chain refuses another chain's genesis.
    let dir = common::scratch("wrong-genesis");
    drop(scg_chain::store::Store::open(&dir, &a.genesis.chain_id).unwrap());
    let e = scg_chain::store::Store::open(&dir, &b.genesis.chain_id).unwrap_err();
    assert!(e.to_string().contains("holds chain"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validator_started_with_another_genesis_refuses_to_join_and_says_why() {
    use scg_chain::app::Behavior;
    use std::sync::Arc;
    // Four validators of chain `a`; the fourth is started with another genesis that also
    // lists its key as a validator: the same members under another name (another chain id),
    // or one member more (other members).
    let a = common::chain(16, 4, "a");
    let renamed = common::chain(16, 4, "a-renamed");
    let more = common::chain(16, 5, "a");
    for (label, other) in [("renamed", &renamed), ("more-members", &more)] {
        assert!(other.genesis.validators().contains(&a.members[3].public()));
        assert_ne!(other.genesis.chain_id, a.genesis.chain_id);
        let dir = common::scratch(&format!("foreign-{label}"));
        let ga = Arc::new(a.genesis.clone());
        let specs = (0..4)
            .map(|i| {
                let g = if i == 3 {
                    Arc::new(other.genesis.clone())
                } else {
                    ga.clone()
                };
                (g, a.members[i].clone(), Behavior::Honest)
            })
            .collect();
        let mut last = Vec::new();
        run_nodes(16, specs, &dir, |step, st| {
            last = st.to_vec();
            let honest_on = st[..3].iter().all(|s| s.finalized_height >= 5);
            if (st[3].refusal.is_some() && honest_on) || step > 1000 {
                return None;
            }
            Some((0..3).map(|i| (i, common::report(&a, i, step))).collect())
        });
        let why = last[3].refusal.clone().unwrap_or_default();
        assert!(
            why.contains("run another genesis")
                && why.contains(&other.genesis.chain_id_hex())
                && why.contains(&format!("announces chain {}", a.genesis.chain_id_hex())),
            "{label}: {why:?}"
        );
        // The three others go on without it; none of them refuses.
        for s in &last[..3] {
            assert!(s.refusal.is_none(), "{label}: {:?}", s.refusal);
            assert!(s.finalized_height >= 5, "{label}: {}", s.finalized_height);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn proposed_block_holding_a_transaction_from_another_chain_is_refused() {
    use scg_chain::app::{Behavior, REFUSED_SIGNATURE};
    use std::sync::Arc;
    let a = common::chain(17, 4, "a");
    // Member 3's meter (registered on `a`; no other report from it in this run, so its nonce
    // 0 is next) signs a report for another chain with the same keys.
    let other = common::chain(17, 4, "a-other");
    let foreign = common::report(&other, 3, 0);
    let foreign_id = scg_ledger::Tx::decode(&foreign).unwrap().id;
    let (ledger, _) = a.genesis.initial_state().unwrap();
    let e = check_submission(&ledger, &foreign).unwrap_err();
    assert!(e.contains("another chain"), "{e}");
    // Validator 3 admits it without a signature check and proposes it in every view it leads;
    // the others must refuse those blocks for the signature, and finalize without them.
    let dir = common::scratch("foreign-tx-in-block");
    let ga = Arc::new(a.genesis.clone());
    let specs = (0..4)
        .map(|i| {
            let b = if i == 3 {
                Behavior::AdmitUnchecked
            } else {
                Behavior::Honest
            };
            (ga.clone(), a.members[i].clone(), b)
        })
        .collect();
    let mut last = Vec::new();
    run_nodes(17, specs, &dir, |step, st| {
        last = st.to_vec();
        let refused = |s: &scg_chain::app::Status| s.refused.get(REFUSED_SIGNATURE).copied();
        if (st[..3]
            .iter()
            .all(|s| s.finalized_height >= 8 && refused(s) >= Some(1)))
            || step > 1000
        {
            return None;
        }
        let mut txs: Vec<(usize, Vec<u8>)> =
            (0..3).map(|i| (i, common::report(&a, i, step))).collect();
        if step == 0 {
            txs.push((3, foreign.clone()));
        }
        Some(txs)
    });
    for (i, s) in last[..3].iter().enumerate() {
        assert!(
            s.refused.get(REFUSED_SIGNATURE).copied().unwrap_or(0) >= 1,
            "node {i} refused {:?}",
            s.refused
        );
        assert!(s.finalized_height >= 8, "node {i}: {}", s.finalized_height);
        assert!(!s.finalized_txs.contains(&foreign_id), "node {i}");
        scg_chain::verify::verify_dir(&a.genesis, &dir.join(format!("node{i}"))).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn forged_and_under_quorum_certificates_fail_verification_naming_the_block() {
    let tc = common::chain(14, 4, "certs");
    let dir = common::scratch("certs");
    run_honest(14, &tc, &dir, 5);
    let node = dir.join("node0");
    let report = scg_chain::verify::verify_dir(&tc.genesis, &node).unwrap();
    assert!(report.finalized_height >= 5);
    let (_, records) = scg_chain::store::read_only(&node).unwrap();
    let n = 4;
    // Find a record with its own certificate.
    let (idx, rec) = records
        .iter()
        .enumerate()
        .find_map(|(i, (_, b))| {
            let r = Record::decode(b, n).unwrap();
            r.cert.is_some().then_some((i, r))
        })
        .unwrap();
    let height = records[idx].0;
    // Under quorum: keep one signature of the certificate.
    let mut under = rec.clone();
    {
        let c = under.cert.as_mut().unwrap();
        let first = c.certificate.signers.iter().next().unwrap();
        c.certificate.signers = Signers::new(n as u32, [first]).unwrap();
        c.certificate.signatures.truncate(1);
    }
    let mut tampered = records.clone();
    tampered[idx].1 = under.to_bytes();
    let e = scg_chain::verify::verify_records(&tc.genesis, &tampered)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("block {height}:")) && e.contains("quorum"),
        "{e}"
    );
    // Forged: a certificate from the same validators for another chain (other namespace) does
    // not verify; here, one from this chain moved onto another block.
    let other = records.iter().enumerate().find_map(|(i, (_, b))| {
        (i != idx)
            .then(|| Record::decode(b, n).unwrap())
            .filter(|r| r.cert.is_some())
    });
    if let Some(other) = other {
        let mut moved = rec.clone();
        moved.cert = other.cert.clone();
        let mut t2 = records.clone();
        t2[idx].1 = moved.to_bytes();
        let e = scg_chain::verify::verify_records(&tc.genesis, &t2)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("block {height}:")), "{e}");
    }
    // A signature byte flipped: forged.
    let mut forged_bytes = rec.to_bytes();
    let last = forged_bytes.len() - 5;
    forged_bytes[last] ^= 1;
    let mut t3 = records.clone();
    t3[idx].1 = forged_bytes;
    let e = scg_chain::verify::verify_records(&tc.genesis, &t3)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("block {height}:")), "{e}");
    // Verification of the genuine chain under another chain's genesis fails.
    let other_chain = common::chain(15, 4, "certs");
    assert!(scg_chain::verify::verify_dir(&other_chain.genesis, &node).is_err());
    // A truncated certificate-less tail is reported.
    let mut tail = records.clone();
    let last_rec = Record::decode(&tail.last().unwrap().1, n).unwrap();
    let h = tail.last().unwrap().0;
    tail.last_mut().unwrap().1 = Record {
        block: last_rec.block,
        cert: None,
    }
    .to_bytes();
    let e = scg_chain::verify::verify_records(&tc.genesis, &tail)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not covered by a finalization certificate") && e.contains(&h.to_string()),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Run `n` honest validators on the deterministic runtime until every node finalized at least
/// `height`, submitting meter reports as it goes; the stores are in `dir/node{i}`.
fn run_honest(seed: u64, tc: &common::TestChain, dir: &std::path::Path, height: u64) {
    let genesis = std::sync::Arc::new(tc.genesis.clone());
    let nodes = tc
        .members
        .iter()
        .map(|k| (genesis.clone(), k.clone(), scg_chain::app::Behavior::Honest))
        .collect();
    run_nodes(seed, nodes, dir, |step, statuses| {
        if statuses.iter().all(|s| s.finalized_height >= height) {
            return None;
        }
        // Each member's meter reports an interval.
        Some(
            (0..tc.members.len())
                .map(|i| (i, common::report(tc, i, step)))
                .collect(),
        )
    });
}

/// One simulated validator: the genesis it was started with, its key, its behaviour.
type NodeSpec = (
    std::sync::Arc<scg_chain::Genesis>,
    MemberKey,
    scg_chain::app::Behavior,
);

/// Run validators on the deterministic runtime (simulated network, 20 ms links). Every 200 ms
/// of virtual time `step` is called with the step number and each node's status: `None` ends
/// the run, `Some` lists transactions to submit (node index, bytes). At most 300 s (virtual).
fn run_nodes(
    seed: u64,
    specs: Vec<NodeSpec>,
    dir: &std::path::Path,
    step: impl FnMut(u64, &[scg_chain::app::Status]) -> Option<Vec<(usize, Vec<u8>)>>,
) {
    run_nodes_from(seed, 0, specs, dir, step);
}

/// [`run_nodes`] with the virtual clock starting at `start_s` Unix seconds (block timestamps
/// follow it: the on-chain market's gates are in block time).
fn run_nodes_from(
    seed: u64,
    start_s: u64,
    specs: Vec<NodeSpec>,
    dir: &std::path::Path,
    mut step: impl FnMut(u64, &[scg_chain::app::Status]) -> Option<Vec<(usize, Vec<u8>)>>,
) {
    use commonware_p2p::simulated::{Config as NetConfig, Link, Network};
    use commonware_runtime::{Clock as _, Runner as _, Supervisor as _, deterministic};
    use commonware_utils::{NZUsize, Probability};
    use scg_chain::node::{self, Channels, NodeConfig, Timing};
    use std::time::Duration;
    let pks: Vec<_> = specs
        .iter()
        .map(|(_, k, _)| commonware_cryptography::Signer::public_key(&k.consensus_key()))
        .collect();
    let dir = dir.to_path_buf();
    let cfg = deterministic::Config::new()
        .with_seed(seed)
        .with_start_time(std::time::UNIX_EPOCH + Duration::from_secs(start_s))
        .with_timeout(Some(Duration::from_secs(300)));
    deterministic::Runner::new(cfg).start(|context| async move {
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            NetConfig {
                max_size: 4 * 1024 * 1024,
                max_peers_per_set: NZUsize!(8),
                disconnect_on_block: false,
                tracked_peer_sets: NZUsize!(1),
            },
            pks.clone(),
        )
        .await;
        network.start();
        for a in &pks {
            for b in &pks {
                if a != b {
                    let link = Link {
                        latency: Duration::from_millis(20),
                        jitter: Duration::from_millis(5),
                        success_rate: Probability::new(1, 1).unwrap(),
                    };
                    oracle.add_link(a.clone(), b.clone(), link).await.unwrap();
                }
            }
        }
        let mut nodes = Vec::new();
        for (i, (pk, (genesis, key, behavior))) in pks.iter().zip(specs).enumerate() {
            let control = oracle.control(pk.clone());
            let channel = async |c: u64| control.register(c, node::channel_quota(c)).await.unwrap();
            let votes = channel(node::CHANNEL_VOTES).await;
            let certs = channel(node::CHANNEL_CERTS).await;
            let resolver = channel(node::CHANNEL_RESOLVER).await;
            let blocks = channel(node::CHANNEL_BLOCKS).await;
            nodes.push(
                node::start(
                    context.child("node"),
                    NodeConfig {
                        genesis,
                        key,
                        dir: dir.join(format!("node{i}")),
                        partition: format!("consensus-{i}"),
                        behavior,
                        timing: Timing::default(),
                        keep_history: true,
                        clock: Default::default(),
                    },
                    Channels {
                        votes,
                        certs,
                        resolver,
                        blocks,
                    },
                    control.clone(),
                )
                .unwrap(),
            );
        }
        let mut k = 0u64;
        loop {
            let statuses: Vec<_> = nodes
                .iter()
                .map(|x| x.status.lock().unwrap().clone())
                .collect();
            let Some(submit) = step(k, &statuses) else {
                break;
            };
            for (i, tx) in submit {
                let _ = nodes[i].mailbox.submit(tx).await;
            }
            k += 1;
            context.sleep(Duration::from_millis(200)).await;
        }
        for node in nodes {
            node.app.abort();
            node.engine.abort();
            let _ = node.app.await;
            let _ = node.engine.await;
        }
    });
}

/// A Byzantine leader that proposes the pending transactions in reverse order, or leaves
/// every order out of its blocks: the members' orders (submitted to different nodes, before
/// the gate) are all cleared, and every honest node records exactly the trades of the book
/// cleared without consensus, in either member order.
#[test]
fn byzantine_leader_reordering_or_omitting_orders_changes_no_trade() {
    use scg_chain::app::Behavior;
    use std::sync::Arc;
    let seed = 18;
    let tc = common::chain(seed, 4, "market");
    let script = market_script(&tc, seed, GATE_AFTER_S);
    let want = reference_trades(&tc, &script, false, GATE_AFTER_S);
    assert!(want.len() >= 3, "the book trades: {want:?}");
    assert_eq!(want, reference_trades(&tc, &script, true, GATE_AFTER_S));
    let gate_id = script.ids[0];
    let order_ids: Vec<u128> = script
        .orders
        .iter()
        .map(|(_, b)| scg_ledger::Tx::decode(b).unwrap().id)
        .collect();
    for (label, behavior) in [
        ("reorder", Behavior::ReorderTxs),
        ("omit", Behavior::OmitOrders),
    ] {
        let dir = common::scratch(&format!("market-{label}"));
        let g = Arc::new(tc.genesis.clone());
        let specs = (0..4)
            .map(|i| {
                let b = if i == 3 { behavior } else { Behavior::Honest };
                (g.clone(), tc.members[i].clone(), b)
            })
            .collect();
        let mut last = Vec::new();
        // Steps are 200 ms of virtual time: the setup at once; the orders (each to another
        // node than its member's) once every node finalized the setup; the gate close once the
        // gate time has passed and the orders are finalized.
        let gate_step = (GATE_AFTER_S + 5) * 5;
        let (mut orders_sent, mut gate_sent) = (false, false);
        let setup_ids = &script.ids[1..];
        run_nodes_from(seed, tc.genesis.genesis_time_s, specs, &dir, |step, st| {
            last = st.to_vec();
            let all = |ids: &[u128]| {
                st[..3]
                    .iter()
                    .all(|s| ids.iter().all(|id| s.finalized_txs.contains(id)))
            };
            if all(&[gate_id]) || step > gate_step + 400 {
                return None;
            }
            if step == 0 {
                return Some(script.setup.iter().map(|t| (0, t.clone())).collect());
            }
            if !orders_sent && all(setup_ids) {
                orders_sent = true;
                return Some(
                    script
                        .orders
                        .iter()
                        .map(|(i, t)| ((*i + 1) % 4, t.clone()))
                        .collect(),
                );
            }
            if !gate_sent && step >= gate_step && all(&order_ids) {
                gate_sent = true;
                return Some(vec![(1, script.gate_close.clone())]);
            }
            Some(Vec::new())
        });
        assert!(
            last[3].tampered_proposals >= 1,
            "{label}: the Byzantine leader never proposed while an order was pending"
        );
        for (i, s) in last[..3].iter().enumerate() {
            assert!(
                s.finalized_txs.contains(&gate_id),
                "{label}: node {i} never finalized the gate close"
            );
            for id in &order_ids {
                assert!(
                    s.finalized_txs.contains(id),
                    "{label}: node {i} lacks an order"
                );
            }
            let ledger = replay_node(&tc, &dir.join(format!("node{i}")), u64::MAX);
            assert_eq!(market_trades(&ledger), want, "{label}: node {i}");
            let record = ledger.market().cleared[&0];
            assert_eq!(record.orders as usize, order_ids.len(), "{label}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
