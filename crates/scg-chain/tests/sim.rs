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
//! `sim_market_seeds` (seeds 0..16) runs the same faults with the on-chain market going
//! through consensus (market open, the members' orders, a gate close after the gate time):
//! every honest node clears every order into the trades of the same book cleared without
//! consensus, with one market root at the honest nodes' lowest finalized height.
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
    run_sim_with(seed, false)
}

/// Gate of the market runs' interval 0, seconds after genesis: after the orders (submitted
/// about 1 s in, once the market is open) and before the crash phase.
const SIM_GATE_AFTER_S: u64 = 10;

/// One run; with `market`, the virtual clock starts at the genesis time and the members' market
/// goes through consensus under the same faults: the operator opens it (phase 1), the members
/// submit their orders for interval 0 to each other's nodes, and once the gate time has passed
/// (phase 3, around the crash) a member closes the gate. Every honest node must finalize the
/// gate close, clear every order, and record the trades of the same book cleared without
/// consensus, with equal market roots at equal heights.
fn run_sim_with(seed: u64, market: bool) -> Result<Outcome, String> {
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
    // Market runs have their own directories: `sim_seeds` and `sim_market_seeds` run the same
    // seeds in parallel threads of one process.
    let label = if market { "sim-market" } else { "sim" };
    let dir = common::scratch(&format!("{label}-{seed}"));
    let keys: Vec<_> = tc.members.iter().map(|k| k.consensus_key()).collect();
    let pks: Vec<_> = keys
        .iter()
        .map(commonware_cryptography::Signer::public_key)
        .collect();
    let script = Arc::new(common::market::market_script(&tc, seed, SIM_GATE_AFTER_S));
    let start_s = if market { tc.genesis.genesis_time_s } else { 0 };
    let cfg = deterministic::Config::new()
        .with_seed(seed)
        .with_start_time(std::time::UNIX_EPOCH + Duration::from_secs(start_s))
        .with_timeout(Some(Duration::from_secs(120)));
    let executor = deterministic::Runner::new(cfg);
    let tally_run = tally.clone();
    let result = executor.start(|context| {
        let tc = tc.clone();
        let tally = tally_run;
        let dir = dir.clone();
        let script = script.clone();
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
                            clock: Default::default(),
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
            let finalized_all = |nodes: &Vec<scg_chain::node::Node>, ids: &[u128]| {
                nodes.iter().all(|x| {
                    let st = x.status.lock().unwrap();
                    ids.iter().all(|id| st.finalized_txs.contains(id))
                })
            };
            for round in 0..12u64 {
                let mut txs = submit(&nodes, round + 1);
                if market && round == 0 {
                    txs.extend(script.setup.iter().map(|t| (nodes[0].mailbox.clone(), t.clone())));
                }
                if market && round == 4 {
                    // The orders once every node has the market open (a rejected order is
                    // dropped), each to another node than its member's.
                    for _ in 0..100 {
                        if finalized_all(&nodes, &script.ids[1..]) {
                            break;
                        }
                        context.sleep(Duration::from_millis(50)).await;
                    }
                    for (i, t) in &script.orders {
                        txs.push((nodes[(i + 1) % nodes.len()].mailbox.clone(), t.clone()));
                    }
                }
                for (mb, tx) in txs {
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
            // The market's gate time passes before phase 3 (virtual time).
            let gate_at = std::time::UNIX_EPOCH + Duration::from_secs(start_s + SIM_GATE_AFTER_S + 1);
            while market && context.current() < gate_at {
                context.sleep(Duration::from_millis(100)).await;
            }
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
                if market {
                    // Every live node is asked to close the gate (a resubmission of an
                    // applied transaction is refused as a duplicate).
                    for mb in &live {
                        let _ = mb.submit(script.gate_close.clone()).await;
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
            if market {
                let gate = [script.ids[0]];
                for _ in 0..200 {
                    if finalized_all(&nodes, &gate) {
                        break;
                    }
                    context.sleep(Duration::from_millis(100)).await;
                }
                if !finalized_all(&nodes, &gate) {
                    return Err("the gate close was not finalized by every honest node within 20 s".into());
                }
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
    if market {
        check_market(&tc, &script, &dir, byzantine, &finalized)?;
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

/// Every honest node's store, replayed to the lowest finalized height of the honest nodes,
/// has cleared every order of the script into the trades of the book cleared without
/// consensus, with one market root.
fn check_market(
    tc: &common::TestChain,
    script: &common::market::MarketScript,
    dir: &std::path::Path,
    byzantine: usize,
    finalized: &[u64],
) -> Result<(), String> {
    let want = common::market::reference_trades(tc, script, false, SIM_GATE_AFTER_S);
    let upto = finalized.iter().copied().min().unwrap_or(0);
    let mut root = None;
    for i in (0..tc.members.len()).filter(|i| *i != byzantine) {
        let l = common::market::replay_node(tc, &dir.join(format!("node{i}")), upto);
        let Some(record) = l.market().cleared.get(&0) else {
            return Err(format!("node {i}: interval 0 not cleared at height {upto}"));
        };
        if record.orders as usize != script.orders.len() {
            return Err(format!(
                "node {i}: {} of {} orders cleared",
                record.orders,
                script.orders.len()
            ));
        }
        if common::market::market_trades(&l) != want {
            return Err(format!("node {i}: trades differ from the book's clearing"));
        }
        let r = l.commitment().market_root;
        if *root.get_or_insert(r) != r {
            return Err(format!("node {i}: another market root at height {upto}"));
        }
    }
    Ok(())
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

/// The on-chain market through consensus under the same faults (all four Byzantine
/// behaviours and committee sizes 4 to 10 within these seeds).
#[test]
fn sim_market_seeds() {
    let mut failures = Vec::new();
    for seed in 0..16 {
        if let Err(e) = run_sim_with(seed, true) {
            eprintln!("market seed {seed} FAILED: {e}");
            failures.push(seed);
        }
    }
    assert!(failures.is_empty(), "failing market seeds: {failures:?}");
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
