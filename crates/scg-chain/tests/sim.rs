//! Deterministic simulation of member nodes: commonware's deterministic runtime and simulated
//! network, 4 to 10 validators, message delay and loss, a partition that heals, a crash and a
//! restart from storage, and one Byzantine validator (wrong state roots, invalid transactions,
//! withheld votes, or equivocation: two valid blocks in a view it leads and conflicting
//! notarize/finalize votes, `equivocator/mod.rs`; by `(seed / 4) % 4`). Invariants checked
//! every run:
//! - agreement: no two honest nodes finalize different blocks at a height;
//! - equal state roots at equal heights (and a read-only `verify_dir` of every honest store);
//! - liveness: finalization resumes within a bounded virtual time after healing and restart;
//! - durability: no finalized transaction is lost across the crash.
//!
//! CI runs seeds 0..50 (`sim_seeds`); `SCG_CHAIN_SEEDS=10000 cargo test -p scg-chain --release
//! --test sim -- --ignored sim_many_seeds` runs 10,000; a failing seed prints itself and
//! `SCG_CHAIN_SEED=<seed> cargo test -p scg-chain --test sim -- --ignored replay_seed --nocapture`
//! replays it exactly (same seed → same schedule, same messages, same blocks).
#![allow(clippy::unwrap_used)]

mod common;
mod equivocator;

use commonware_p2p::simulated::{Config as NetConfig, Link, Network};
use commonware_runtime::{Clock, Runner as _, Spawner as _, Supervisor as _, deterministic};
use commonware_utils::{NZUsize, Probability};
use rand::{RngExt as _, SeedableRng as _};
use scg_chain::app::{Behavior, Status};
use scg_chain::node::{self, Channels, NodeConfig, Timing};
use std::sync::Arc;
use std::time::Duration;

/// What one run observed.
#[derive(Debug)]
struct Outcome {
    /// Finalized height of each honest node.
    finalized: Vec<u64>,
    /// Hash of each honest node's last finalized block (commits to its state root).
    heads: Vec<scg_ledger::merkle::Hash>,
    /// Virtual time at the end of the run.
    end: Duration,
    /// What the equivocator did (zero unless it was the Byzantine behaviour).
    equivocations: equivocator::Tally,
}

fn link(rng: &mut rand::rngs::StdRng, lossy: bool) -> Link {
    let loss_pct = if lossy {
        rng.random_range(0..=10u64)
    } else {
        0
    };
    Link {
        latency: Duration::from_millis(rng.random_range(5..=60)),
        jitter: Duration::from_millis(rng.random_range(0..=10)),
        success_rate: Probability::new(100 - loss_pct, 100).unwrap(),
    }
}

fn run_sim(seed: u64) -> Result<Outcome, String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5c9_c4a1);
    let n = 4 + (seed % 7) as usize;
    let byzantine = n - 1;
    // The Byzantine validator: one behaviour per seed (equivocation is a separate actor),
    // every behaviour with every committee size within seeds 0..50 (CI's run).
    let equivocate = (seed / 4) % 4 == 3;
    let behavior = match (seed / 4) % 4 {
        0 => Behavior::WrongStateRoot,
        1 => Behavior::InvalidTx,
        _ => Behavior::WithholdVotes,
    };
    let tally = Arc::new(std::sync::Mutex::new(equivocator::Tally::default()));
    let crashed = rng.random_range(0..byzantine);
    let lossy = seed.is_multiple_of(2);
    let tc = Arc::new(common::chain(seed, n, &format!("sim-{seed}")));
    let dir = common::scratch(&format!("sim-{seed}"));
    let keys: Vec<_> = tc.members.iter().map(|k| k.consensus_key()).collect();
    let pks: Vec<_> = keys
        .iter()
        .map(commonware_cryptography::Signer::public_key)
        .collect();
    let cfg = deterministic::Config::new()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(120)));
    let executor = deterministic::Runner::new(cfg);
    let tally_run = tally.clone();
    let result = executor.start(|context| {
        let tc = tc.clone();
        let tally = tally_run;
        let dir = dir.clone();
        async move {
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
                        oracle.add_link(a.clone(), b.clone(), link(&mut rng, lossy)).await.unwrap();
                    }
                }
            }
            let start_node = |i: usize, ctx: deterministic::Context, oracle: commonware_p2p::simulated::Oracle<_, _>| {
                let tc = tc.clone();
                let dir = dir.clone();
                let pk = pks[i].clone();
                async move {
                    let control = oracle.control(pk.clone());
                    let votes = control.register(node::CHANNEL_VOTES, node::channel_quota(node::CHANNEL_VOTES)).await.unwrap();
                    let certs = control.register(node::CHANNEL_CERTS, node::channel_quota(node::CHANNEL_CERTS)).await.unwrap();
                    let resolver = control.register(node::CHANNEL_RESOLVER, node::channel_quota(node::CHANNEL_RESOLVER)).await.unwrap();
                    let blocks = control.register(node::CHANNEL_BLOCKS, node::channel_quota(node::CHANNEL_BLOCKS)).await.unwrap();
                    node::start(
                        ctx.child("node").with_attribute("index", i),
                        NodeConfig {
                            genesis: Arc::new(tc.genesis.clone()),
                            key: tc.members[i].clone(),
                            dir: dir.join(format!("node{i}")),
                            partition: format!("consensus-{i}"),
                            behavior: if i == byzantine { behavior } else { Behavior::Honest },
                            timing: Timing::default(),
                            keep_history: true,
                        },
                        Channels { votes, certs, resolver, blocks },
                        control,
                    )
                    .unwrap()
                }
            };
            // With `equivocate`, the Byzantine validator (the last index) is the equivocator
            // actor and `nodes` holds only the honest nodes (indices unchanged).
            let mut nodes = Vec::new();
            #[allow(clippy::needless_range_loop)] // `i` also picks the behaviour and the key
            for i in 0..n {
                if i == byzantine && equivocate {
                    let control = oracle.control(pks[i].clone());
                    let mut reg = Vec::new();
                    for ch in [node::CHANNEL_VOTES, node::CHANNEL_CERTS, node::CHANNEL_BLOCKS] {
                        reg.push(control.register(ch, node::channel_quota(ch)).await.unwrap());
                    }
                    let _resolver = control.register(node::CHANNEL_RESOLVER, node::channel_quota(node::CHANNEL_RESOLVER)).await.unwrap();
                    let blocks = reg.pop().unwrap();
                    let certs = reg.pop().unwrap();
                    let votes = reg.pop().unwrap();
                    let (tc, tally) = (tc.clone(), tally.clone());
                    context.child("equivocator").spawn(move |ctx| async move {
                        let _resolver = _resolver;
                        equivocator::run(ctx, &tc.genesis, &tc.members[byzantine], equivocator::Channels { votes, certs, blocks }, tally).await;
                    });
                    continue;
                }
                nodes.push(start_node(i, context.child("validator"), oracle.clone()).await);
            }
            let honest: Vec<usize> = (0..n).filter(|i| *i != byzantine).collect();
            let fin = |nodes: &Vec<scg_chain::node::Node>, i: usize| nodes[i].status.lock().unwrap().finalized_height;
            let mut interval = 0u64;
            let mut submit = |nodes: &Vec<scg_chain::node::Node>, upto: u64| {
                let mut futs = Vec::new();
                while interval < upto {
                    for (i, node) in nodes.iter().enumerate() {
                        futs.push((node.mailbox.clone(), common::report(&tc, i, interval)));
                    }
                    interval += 1;
                }
                futs
            };
            // Phase 1: normal operation with load.
            for round in 0..12u64 {
                for (mb, tx) in submit(&nodes, round + 1) {
                    let _ = mb.submit(tx).await;
                }
                context.sleep(Duration::from_millis(250)).await;
            }
            // Phase 2: partition the honest nodes into two halves (no side has a quorum).
            let (left, right) = honest.split_at(honest.len() / 2);
            for a in left {
                for b in right {
                    oracle.remove_link(pks[*a].clone(), pks[*b].clone()).await.unwrap();
                    oracle.remove_link(pks[*b].clone(), pks[*a].clone()).await.unwrap();
                }
            }
            context.sleep(Duration::from_secs(3)).await;
            for a in left {
                for b in right {
                    oracle.add_link(pks[*a].clone(), pks[*b].clone(), link(&mut rng, lossy)).await.unwrap();
                    oracle.add_link(pks[*b].clone(), pks[*a].clone(), link(&mut rng, lossy)).await.unwrap();
                }
            }
            let healed_at = context.current();
            let before_heal = honest.iter().map(|i| fin(&nodes, *i)).max().unwrap_or(0);
            // Liveness: every honest node finalizes past the pre-heal height within 30 s.
            let mut resumed = false;
            for _ in 0..300 {
                if honest.iter().all(|i| fin(&nodes, *i) > before_heal) {
                    resumed = true;
                    break;
                }
                context.sleep(Duration::from_millis(100)).await;
            }
            if !resumed {
                return Err(format!(
                    "no finalization within 30 s after healing (heights {:?}, before {before_heal})",
                    honest.iter().map(|i| fin(&nodes, *i)).collect::<Vec<_>>()
                ));
            }
            let _ = healed_at;
            // Phase 3: crash one honest node, keep loading, restart it from its store.
            let snapshot: Status = nodes[crashed].status.lock().unwrap().clone();
            let victim = nodes.remove(crashed);
            victim.app.abort();
            victim.engine.abort();
            let _ = victim.app.await;
            let _ = victim.engine.await;
            for round in 12..18u64 {
                let live: Vec<_> = nodes.iter().map(|n| n.mailbox.clone()).collect();
                for i in 0..n {
                    let idx = if i < crashed { i } else if i == crashed { continue } else { i - 1 };
                    if let Some(mb) = live.get(idx) {
                        let _ = mb.submit(common::report(&tc, i, round)).await;
                    }
                }
                context.sleep(Duration::from_millis(250)).await;
            }
            let restarted = start_node(crashed, context.child("restarted"), oracle.clone()).await;
            nodes.insert(crashed, restarted);
            {
                let after = nodes[crashed].status.lock().unwrap().clone();
                if !snapshot.finalized_txs.iter().zip(&after.finalized_txs).all(|(a, b)| a == b)
                    || after.finalized_txs.len() < snapshot.finalized_txs.len()
                {
                    return Err(format!(
                        "node {crashed} lost finalized transactions across the crash ({} before, {} after restart)",
                        snapshot.finalized_txs.len(),
                        after.finalized_txs.len()
                    ));
                }
            }
            // Liveness after restart: the restarted node catches up and everyone moves on.
            let target = honest.iter().map(|i| fin(&nodes, *i)).max().unwrap_or(0);
            let mut caught_up = false;
            for _ in 0..400 {
                if honest.iter().all(|i| fin(&nodes, *i) > target) {
                    caught_up = true;
                    break;
                }
                context.sleep(Duration::from_millis(100)).await;
            }
            if !caught_up {
                return Err(format!(
                    "honest nodes did not all pass height {target} within 40 s of the restart (heights {:?})",
                    honest.iter().map(|i| fin(&nodes, *i)).collect::<Vec<_>>()
                ));
            }
            let statuses: Vec<Status> = nodes.iter().map(|n| n.status.lock().unwrap().clone()).collect();
            for node in nodes {
                node.app.abort();
                node.engine.abort();
                let _ = node.app.await;
                let _ = node.engine.await;
            }
            // Agreement on finalized blocks (hashes commit to state roots).
            for a in &honest {
                for b in &honest {
                    let (x, y) = (&statuses[*a].finalized_hashes, &statuses[*b].finalized_hashes);
                    if x.iter().zip(y).any(|(p, q)| p != q) {
                        return Err(format!("nodes {a} and {b} finalized different blocks"));
                    }
                }
            }
            let end = context
                .current()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let heads = honest
                .iter()
                .map(|i| statuses[*i].finalized_hashes.last().copied().unwrap_or_default())
                .collect::<Vec<_>>();
            Ok((
                honest.iter().map(|i| statuses[*i].finalized_height).collect::<Vec<_>>(),
                heads,
                end,
            ))
        }
    });
    let (finalized, heads, end) = result?;
    if equivocate {
        let t = tally.lock().unwrap().clone();
        if t.double_votes == 0 || t.double_proposals == 0 {
            return Err(format!("the equivocator never equivocated ({t:?})"));
        }
    }
    // Every honest store verifies read-only, with equal roots at equal heights.
    let mut roots = std::collections::BTreeMap::new();
    for i in (0..n).filter(|i| *i != byzantine) {
        let rep = scg_chain::verify::verify_dir(&tc.genesis, &dir.join(format!("node{i}")))
            .map_err(|e| format!("node {i}: store does not verify: {e}"))?;
        if let Some(r) = roots.insert(rep.finalized_height, rep.state_root.clone())
            && r != rep.state_root
        {
            return Err(format!(
                "different state roots at height {}",
                rep.finalized_height
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let equivocations = tally.lock().unwrap().clone();
    Ok(Outcome {
        finalized,
        heads,
        end,
        equivocations,
    })
}

fn run_seeds(seeds: impl Iterator<Item = u64>) {
    let mut failures = Vec::new();
    for seed in seeds {
        if let Err(e) = run_sim(seed) {
            eprintln!(
                "seed {seed} FAILED: {e}\n  replay: SCG_CHAIN_SEED={seed} cargo test -p scg-chain --test sim -- --ignored replay_seed --nocapture"
            );
            failures.push(seed);
        }
    }
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

#[test]
fn sim_seeds() {
    run_seeds(0..50);
}

#[test]
#[ignore = "10,000 seeds: SCG_CHAIN_SEEDS=10000 cargo test -p scg-chain --release --test sim -- --ignored sim_many_seeds"]
fn sim_many_seeds() {
    let n: u64 = std::env::var("SCG_CHAIN_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    run_seeds(0..n);
}

#[test]
#[ignore = "replays one seed: SCG_CHAIN_SEED=<seed> cargo test -p scg-chain --test sim -- --ignored replay_seed --nocapture"]
fn replay_seed() {
    let seed: u64 = std::env::var("SCG_CHAIN_SEED")
        .expect("set SCG_CHAIN_SEED to the seed to replay")
        .parse()
        .expect("SCG_CHAIN_SEED must be an integer");
    let a = run_sim(seed);
    eprintln!("seed {seed}: {a:?}");
    assert!(a.is_ok());
}

#[test]
fn same_seed_same_run() {
    let a = run_sim(7).unwrap();
    let b = run_sim(7).unwrap();
    assert_eq!(a.finalized, b.finalized);
    assert_eq!(a.heads, b.heads);
    assert_eq!(a.end, b.end);
    assert_eq!(a.equivocations, b.equivocations);
}
