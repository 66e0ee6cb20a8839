//! Finalization latency and throughput of 4 validators on loopback (real TCP, authenticated
//! p2p, the commonware tokio runtime, redb stores), in one process.
//!
//! `cargo bench -p scg-chain --bench loopback`, with env `SCG_BENCH_TXS` (default 20,000
//! transactions, split evenly over the four members) and `SCG_BENCH_RATE`:
//! - unset or 0 (**burst**, saturated): every member submits all its signed transactions to
//!   its own node at once, up to 256 submissions in flight per node; measures the most the
//!   chain finalizes per second (latencies include the queue the burst builds up);
//! - `SCG_BENCH_RATE=R` (**paced**): offered load of R tx/s in total, each member submitting
//!   its transaction k at k × 4/R seconds after the start; measures latency at a load the
//!   chain sustains.
//!
//! Prints transactions per second from the first submission to the last transaction's
//! finalization on node 0, the block finalization latency (a leader's proposal to its
//! finalization, measured by the proposer) and the transaction latency (its submission to
//! node 0 seeing it finalized, polled every millisecond), p50 and p99 of each.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use commonware_runtime::{Clock as _, Runner as _, Supervisor as _, tokio as cw_tokio};
use scg_chain::genesis::{GenesisSpec, MemberSpec, MeterSpec};
use scg_chain::run::{Peer, TokioNode, start_on_tokio};
use scg_chain::{Genesis, MemberKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn key(label: &str) -> MemberKey {
    MemberKey::from_seed(scg_ledger::merkle::sha256(&[
        b"scg-chain-bench",
        label.as_bytes(),
    ]))
}

fn main() {
    let total: usize = std::env::var("SCG_BENCH_TXS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rate: f64 = std::env::var("SCG_BENCH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let n = 4;
    let members: Vec<MemberKey> = (0..n).map(|i| key(&format!("m{i}"))).collect();
    let meters: Vec<MemberKey> = (0..n).map(|i| key(&format!("meter{i}"))).collect();
    let spec = GenesisSpec {
        name: "bench".into(),
        genesis_time_s: 1_767_225_600,
        mint_rate_base_per_wh: 1000,
        treasury_endowment_base: 0,
        treasury: key("treasury").public_hex(),
        grid: key("grid").public_hex(),
        market: None,
        members: (0..n)
            .map(|i| MemberSpec {
                name: format!("m{i}"),
                public_key: members[i].public_hex(),
                validator: true,
                meters: vec![MeterSpec {
                    public_key: meters[i].public_hex(),
                    device: "pv".into(),
                    capacity_w: None,
                }],
            })
            .collect(),
    };
    let text = spec.derive(&key("operator")).unwrap().to_toml().unwrap();
    let genesis = Arc::new(Genesis::parse("bench", &text).unwrap());
    let dir = std::env::temp_dir().join(format!("scg-chain-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let addrs: Vec<std::net::SocketAddr> = (0..n)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        })
        .collect();
    let executor =
        cw_tokio::Runner::new(cw_tokio::Config::new().with_storage_directory(dir.join("journal")));
    let d2 = dir.clone();
    executor.start(|context| async move {
        let mut nodes = Vec::new();
        for i in 0..n {
            let peers: Vec<Peer> = (0..n)
                .filter(|j| *j != i)
                .map(|j| Peer {
                    key: members[j].public(),
                    addr: addrs[j],
                })
                .collect();
            nodes.push(
                start_on_tokio(
                    context.child("node"),
                    TokioNode {
                        genesis: genesis.clone(),
                        key: members[i].clone(),
                        dir: d2.join(format!("node{i}")),
                        listen: addrs[i],
                        peers,
                        partition: format!("consensus-{i}"),
                        keep_history: true,
                        clock: Default::default(),
                    },
                )
                .unwrap(),
            );
        }
        while nodes
            .iter()
            .any(|x| x.status.lock().unwrap().finalized_height < 3)
        {
            context.sleep(Duration::from_millis(50)).await;
        }
        let per = total / n;
        let txs: Vec<Vec<Vec<u8>>> = (0..n)
            .map(|i| {
                (0..per as u64)
                    .map(|k| {
                        scg_ledger::Tx::sign(
                            genesis.ledger.chain_id,
                            &meters[i].signing_key(),
                            (u128::from(k) << 8) | i as u128,
                            k,
                            scg_ledger::TxBody::MeterReport {
                                interval: k,
                                produced_wh: 1000,
                                consumed_wh: 10,
                            },
                        )
                    })
                    .collect()
            })
            .collect();
        let ids: Vec<Vec<u128>> = txs
            .iter()
            .map(|l| {
                l.iter()
                    .map(|t| scg_ledger::Tx::decode(t).unwrap().id)
                    .collect()
            })
            .collect();
        let before: Vec<usize> = nodes
            .iter()
            .map(|x| x.status.lock().unwrap().own_latencies.len())
            .collect();
        let seen_before = nodes[0].status.lock().unwrap().finalized_txs.len();
        let target = per * n;
        // When each transaction was submitted (answered by its node) and when node 0 saw it
        // finalized (polled every millisecond).
        let submitted_at: Arc<std::sync::Mutex<HashMap<u128, Instant>>> = Arc::default();
        let t0 = Instant::now();
        let submit_all = futures::future::join_all(nodes.iter().zip(txs).zip(ids).map(
            |((node, list), ids)| {
                let submitted_at = submitted_at.clone();
                let every = if rate > 0.0 {
                    Duration::from_secs_f64(n as f64 / rate)
                } else {
                    Duration::ZERO
                };
                // Paced: transaction k of a member is due at t0 + k * every (offered load
                // `rate` in total); burst: all at once, 256 in flight per node.
                futures::StreamExt::for_each(
                    futures::StreamExt::buffer_unordered(
                        futures::stream::iter(list.into_iter().zip(ids).enumerate().map(
                            move |(k, (tx, id))| {
                                let node = node.mailbox.clone();
                                let submitted_at = submitted_at.clone();
                                async move {
                                    let due = t0 + every * k as u32;
                                    let now = Instant::now();
                                    if due > now {
                                        tokio::time::sleep(due - now).await;
                                    }
                                    let at = Instant::now();
                                    submitted_at.lock().unwrap().insert(id, at);
                                    node.submit(tx).await
                                }
                            },
                        )),
                        if rate > 0.0 { 1 << 16 } else { 256 },
                    ),
                    |r| {
                        r.unwrap();
                        futures::future::ready(())
                    },
                )
            },
        ));
        let watch = async {
            let mut finalized_at: HashMap<u128, Instant> = HashMap::new();
            let mut seen = seen_before;
            let deadline = Instant::now() + Duration::from_secs(600);
            while seen < seen_before + target && Instant::now() < deadline {
                context.sleep(Duration::from_millis(1)).await;
                let st = nodes[0].status.lock().unwrap();
                let now = Instant::now();
                for id in &st.finalized_txs[seen..] {
                    finalized_at.insert(*id, now);
                }
                seen = st.finalized_txs.len();
            }
            (finalized_at, t0.elapsed())
        };
        let submit_timed = async {
            submit_all.await;
            t0.elapsed()
        };
        let (submitted, (finalized_at, elapsed)) = futures::join!(submit_timed, watch);
        let done = finalized_at.len();
        let sub = submitted_at.lock().unwrap();
        let mut tx_lat: Vec<Duration> = finalized_at
            .iter()
            .filter_map(|(id, f)| sub.get(id).map(|s| f.saturating_duration_since(*s)))
            .collect();
        let mut lat: Vec<Duration> = nodes
            .iter()
            .zip(&before)
            .flat_map(|(x, b)| x.status.lock().unwrap().own_latencies[*b..].to_vec())
            .collect();
        let pct = |v: &mut Vec<Duration>, p: f64| {
            v.sort();
            v.get(((v.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3
        };
        let height = nodes[0].status.lock().unwrap().finalized_height;
        if rate > 0.0 {
            println!("offered load               {rate:.0} tx/s (paced)");
        } else {
            println!("offered load               burst (256 in flight per node)");
        }
        println!("validators                 {n}");
        println!("transactions finalized     {done} of {target}");
        println!(
            "submission took            {:.2} s",
            submitted.as_secs_f64()
        );
        println!("first submit -> last final {:.2} s", elapsed.as_secs_f64());
        println!(
            "throughput                 {:.0} tx/s",
            done as f64 / elapsed.as_secs_f64()
        );
        println!("blocks finalized (height)  {height}");
        println!(
            "block latency p50 / p99    {:.1} / {:.1} ms ({} blocks: proposal -> finalization at its proposer)",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            lat.len()
        );
        println!(
            "tx latency p50 / p99       {:.1} / {:.1} ms (submission -> finalized at node 0)",
            pct(&mut tx_lat, 0.5),
            pct(&mut tx_lat, 0.99)
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
