//! Attacks that must be rejected: a transaction from a non-member, a transaction replayed from
//! another chain, forged and under-quorum certificates in a stored chain (verify names the
//! block), a node whose key or peers do not belong to the genesis.
#![allow(clippy::unwrap_used)]

mod common;

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
    use commonware_p2p::simulated::{Config as NetConfig, Link, Network};
    use commonware_runtime::{Clock as _, Runner as _, Supervisor as _, deterministic};
    use commonware_utils::{NZUsize, Probability};
    use scg_chain::node::{self, Channels, NodeConfig, Timing};
    use std::sync::Arc;
    use std::time::Duration;
    let pks: Vec<_> = tc
        .members
        .iter()
        .map(|k| commonware_cryptography::Signer::public_key(&k.consensus_key()))
        .collect();
    let genesis = Arc::new(tc.genesis.clone());
    let cfg = deterministic::Config::new()
        .with_seed(seed)
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
        for (i, pk) in pks.iter().enumerate() {
            let control = oracle.control(pk.clone());
            let votes = control
                .register(
                    node::CHANNEL_VOTES,
                    node::channel_quota(node::CHANNEL_VOTES),
                )
                .await
                .unwrap();
            let certs = control
                .register(
                    node::CHANNEL_CERTS,
                    node::channel_quota(node::CHANNEL_CERTS),
                )
                .await
                .unwrap();
            let resolver = control
                .register(
                    node::CHANNEL_RESOLVER,
                    node::channel_quota(node::CHANNEL_RESOLVER),
                )
                .await
                .unwrap();
            let blocks = control
                .register(
                    node::CHANNEL_BLOCKS,
                    node::channel_quota(node::CHANNEL_BLOCKS),
                )
                .await
                .unwrap();
            nodes.push(
                node::start(
                    context.child("node"),
                    NodeConfig {
                        genesis: genesis.clone(),
                        key: tc.members[i].clone(),
                        dir: dir.join(format!("node{i}")),
                        partition: format!("consensus-{i}"),
                        behavior: scg_chain::app::Behavior::Honest,
                        timing: Timing::default(),
                        keep_history: true,
                    },
                    Channels {
                        votes,
                        certs,
                        resolver,
                        blocks,
                    },
                    control,
                )
                .unwrap(),
            );
        }
        let mut interval = 0u64;
        loop {
            if nodes
                .iter()
                .all(|x| x.status.lock().unwrap().finalized_height >= height)
            {
                break;
            }
            for (i, node) in nodes.iter().enumerate() {
                let _ = node.mailbox.submit(common::report(tc, i, interval)).await;
            }
            interval += 1;
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
