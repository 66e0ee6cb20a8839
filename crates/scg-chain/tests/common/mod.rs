//! Test helpers: a genesis whose keys come from a seed (tests only; real chains use
//! `scg chain keygen`).
#![allow(dead_code, clippy::unwrap_used)]

use scg_chain::genesis::{GenesisSpec, MemberSpec, MeterSpec};
use scg_chain::{Genesis, MemberKey};
use scg_ledger::merkle::sha256;

/// A key derived from a label and a seed.
pub fn key(seed: u64, label: &str) -> MemberKey {
    MemberKey::from_seed(sha256(&[b"scg-chain-test", &seed.to_le_bytes(), label.as_bytes()]))
}

/// Keys and genesis of a test chain with `n` validator members, each with one PV meter.
pub struct TestChain {
    pub genesis: Genesis,
    pub members: Vec<MemberKey>,
    pub meters: Vec<MemberKey>,
    pub operator: MemberKey,
}

pub fn chain(seed: u64, n: usize, name: &str) -> TestChain {
    let members: Vec<MemberKey> = (0..n).map(|i| key(seed, &format!("member{i}"))).collect();
    let meters: Vec<MemberKey> = (0..n).map(|i| key(seed, &format!("meter{i}"))).collect();
    let operator = key(seed, "operator");
    let spec = GenesisSpec {
        name: name.to_string(),
        genesis_time_s: 1_767_225_600,
        mint_rate_base_per_wh: 1_000_000,
        treasury_endowment_base: 1_000_000_000,
        treasury: key(seed, "treasury").public_hex(),
        grid: key(seed, "grid").public_hex(),
        members: members
            .iter()
            .zip(&meters)
            .enumerate()
            .map(|(i, (m, meter))| MemberSpec {
                name: format!("member{i}"),
                public_key: m.public_hex(),
                validator: true,
                meters: vec![MeterSpec {
                    public_key: meter.public_hex(),
                    device: "pv".into(),
                }],
            })
            .collect(),
    };
    let file = spec.derive(&operator).unwrap();
    let text = file.to_toml().unwrap();
    let genesis = Genesis::parse("test genesis", &text).unwrap();
    TestChain {
        genesis,
        members,
        meters,
        operator,
    }
}

/// A meter report from meter `i` for `interval` (nonce = interval: one report per interval).
pub fn report(chain: &TestChain, i: usize, interval: u64) -> Vec<u8> {
    scg_ledger::Tx::sign(
        chain.genesis.ledger.chain_id,
        &chain.meters[i].signing_key(),
        (u128::from(interval) << 32) | i as u128,
        interval,
        scg_ledger::TxBody::MeterReport {
            interval,
            produced_wh: 1000 + interval,
            consumed_wh: 500,
        },
    )
}

/// A fresh scratch directory.
pub fn scratch(label: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("scg-chain-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `n` honest validators on the deterministic runtime until every node finalized at least
/// `height`, submitting meter reports as it goes; the stores are in `dir/node{i}`.
pub fn run_honest(seed: u64, tc: &TestChain, dir: &std::path::Path, height: u64) {
    use commonware_p2p::simulated::{Config as NetConfig, Link, Network};
    use commonware_runtime::{Clock as _, Quota, Runner as _, Supervisor as _, deterministic};
    use commonware_utils::{NZU32, NZUsize, Probability};
    use scg_chain::node::{self, Channels, NodeConfig, Timing};
    use std::sync::Arc;
    use std::time::Duration;
    let n = tc.members.len();
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
                max_peers_per_set: NZUsize!(16),
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
        let quota = Quota::per_second(NZU32!(100_000));
        let mut nodes = Vec::new();
        for (i, pk) in pks.iter().enumerate() {
            let control = oracle.control(pk.clone());
            let votes = control.register(node::CHANNEL_VOTES, quota).await.unwrap();
            let certs = control.register(node::CHANNEL_CERTS, quota).await.unwrap();
            let resolver = control.register(node::CHANNEL_RESOLVER, quota).await.unwrap();
            let blocks = control.register(node::CHANNEL_BLOCKS, quota).await.unwrap();
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
                    Channels { votes, certs, resolver, blocks },
                    control,
                )
                .unwrap(),
            );
        }
        let mut interval = 0u64;
        loop {
            if nodes.iter().all(|x| x.status.lock().unwrap().finalized_height >= height) {
                break;
            }
            for (i, node) in nodes.iter().enumerate() {
                let _ = node.mailbox.submit(report(tc, i, interval)).await;
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
