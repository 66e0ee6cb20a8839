//! Finalization latency and throughput of 4 validators on loopback (real TCP, authenticated
//! p2p, the commonware tokio runtime, redb stores), in one process.
//!
//! `cargo bench -p scg-chain --bench loopback` (env `SCG_BENCH_TXS`, default 20,000
//! transactions). Prints p50/p99 finalization latency (a leader's proposal to its finalization,
//! measured by the proposer) and transactions per second from the first submission to the
//! last transaction's finalization. Each member submits its signed transactions to its own node,
//! all members at once, up to 256 submissions in flight per node.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use commonware_runtime::{Clock as _, Runner as _, Supervisor as _, tokio as cw_tokio};
use scg_chain::genesis::{GenesisSpec, MemberSpec, MeterSpec};
use scg_chain::run::{Peer, TokioNode, start_on_tokio};
use scg_chain::{Genesis, MemberKey};
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
        members: (0..n)
            .map(|i| MemberSpec {
                name: format!("m{i}"),
                public_key: members[i].public_hex(),
                validator: true,
                meters: vec![MeterSpec {
                    public_key: meters[i].public_hex(),
                    device: "pv".into(),
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
        let before: Vec<usize> = nodes
            .iter()
            .map(|x| x.status.lock().unwrap().own_latencies.len())
            .collect();
        // Members submit at the same time, each to its own node, with up to 256 submissions in
        // flight per node (as many clients would): the run measures consensus, not one client's
        // round trips.
        let t0 = Instant::now();
        futures::future::join_all(nodes.iter().zip(txs).map(|(node, list)| {
            futures::StreamExt::for_each(
                futures::StreamExt::buffer_unordered(
                    futures::stream::iter(list.into_iter().map(|tx| node.mailbox.submit(tx))),
                    256,
                ),
                |r| {
                    r.unwrap();
                    futures::future::ready(())
                },
            )
        }))
        .await;
        let submitted = t0.elapsed();
        let target = per * n;
        let deadline = Instant::now() + Duration::from_secs(600);
        while nodes[0].status.lock().unwrap().finalized_txs.len() < target
            && Instant::now() < deadline
        {
            context.sleep(Duration::from_millis(10)).await;
        }
        let elapsed = t0.elapsed();
        let done = nodes[0].status.lock().unwrap().finalized_txs.len();
        let mut lat: Vec<Duration> = nodes
            .iter()
            .zip(&before)
            .flat_map(|(x, b)| x.status.lock().unwrap().own_latencies[*b..].to_vec())
            .collect();
        lat.sort();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        let height = nodes[0].status.lock().unwrap().finalized_height;
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
            "finalization latency p50   {:.1} ms ({} blocks)",
            pct(0.5).as_secs_f64() * 1e3,
            lat.len()
        );
        println!(
            "finalization latency p99   {:.1} ms",
            pct(0.99).as_secs_f64() * 1e3
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
