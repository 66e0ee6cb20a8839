//! Ledger throughput.
//!
//! - `ledger/*`: decode a block from bytes, batch-verify its signatures, apply it and compute
//!   the state root (target: >= 20,000 transactions per second per core);
//! - `year/*`: a year-sized chain (8,760 hourly intervals in 365 daily blocks of settlement
//!   batches, ~90,000 records, about the default scenario's size): settle (co-sign + apply),
//!   write to redb, and verify from the file by full replay (target: write + verify under 1 s;
//!   the built-in year itself: `scg-settle`'s `builtin_year` bench);
//! - `compact/member_days`: the compact layout's settlement of a week of 15-minute intervals
//!   for 200 members (`settle_stream`: the walk, each member day packed, signed by its member,
//!   applied and closed), throughput in member days (about a city member's day: PV, supply
//!   point and P2P series).
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/year.rs"]
mod year;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use scg_ledger::merkle::sha256;
use scg_ledger::{Block, DeviceType, GenesisConfig, Ledger, Tx, TxBody};
use std::hint::black_box;

const CHAIN: u64 = 1;
const MEMBERS: usize = 256;
const BLOCK_TXS: usize = 1024;

fn key(label: &str, i: usize) -> SigningKey {
    SigningKey::from_bytes(&sha256(&[label.as_bytes(), &(i as u64).to_le_bytes()]))
}

fn pk(k: &SigningKey) -> [u8; 32] {
    k.verifying_key().to_bytes()
}

/// A ledger with registered, funded members (each with a PV meter) and two prepared blocks:
/// transfers, and meter reports (mint + certificate).
fn setup() -> (Ledger, Vec<u8>, Vec<u8>) {
    let operator = key("operator", 0);
    let treasury = key("treasury", 0);
    let grid = key("grid", 0);
    let (mut ledger, _) = Ledger::genesis(
        GenesisConfig {
            chain_id: CHAIN,
            operator: pk(&operator),
            treasury: pk(&treasury),
            grid: pk(&grid),
            mint_rate_base_per_wh: 1_000_000,
            treasury_endowment: 1 << 100,
            intervals_total: GenesisConfig::OPEN_ENDED,
            simulation_key_seed: None,
        },
        0,
    )
    .unwrap();
    let members: Vec<SigningKey> = (0..MEMBERS).map(|i| key("member", i)).collect();
    let meters: Vec<SigningKey> = (0..MEMBERS).map(|i| key("meter", i)).collect();
    let mut id = 1u128;
    let mut txs = Vec::new();
    let mut op_nonce = 0;
    for (i, m) in members.iter().enumerate() {
        txs.push(Tx::sign(
            CHAIN,
            &operator,
            id,
            op_nonce,
            TxBody::RegisterMember { member: pk(m) },
        ));
        id += 1;
        op_nonce += 1;
        txs.push(Tx::sign(
            CHAIN,
            &operator,
            id,
            op_nonce,
            TxBody::RegisterMeter {
                meter: pk(&meters[i]),
                member: pk(m),
                device: DeviceType::Pv,
            },
        ));
        id += 1;
        op_nonce += 1;
        txs.push(Tx::sign(
            CHAIN,
            &treasury,
            id,
            i as u64,
            TxBody::Transfer {
                to: pk(m),
                amount: 1 << 60,
            },
        ));
        id += 1;
    }
    let (_, o) = ledger.produce_block(1, txs).unwrap();
    assert_eq!(o.rejected(), 0);
    let make =
        |ledger: &Ledger, body: &dyn Fn(usize, usize) -> (SigningKey, TxBody), mut id: u128| {
            let mut l = ledger.clone();
            let mut nonces = vec![0u64; MEMBERS];
            let mut txs = Vec::with_capacity(BLOCK_TXS);
            for n in 0..BLOCK_TXS {
                let i = n % MEMBERS;
                let (k, b) = body(i, n);
                txs.push(Tx::sign(CHAIN, &k, id, nonces[i], b));
                nonces[i] += 1;
                id += 1;
            }
            let (block, o) = l.produce_block(3_600, txs).unwrap();
            assert_eq!(o.rejected(), 0);
            block.to_bytes()
        };
    let transfers = make(
        &ledger,
        &|i, _| {
            (
                members[i].clone(),
                TxBody::Transfer {
                    to: pk(&members[(i + 1) % MEMBERS]),
                    amount: 1_000,
                },
            )
        },
        1_000_000,
    );
    let reports = make(
        &ledger,
        &|i, n| {
            (
                meters[i].clone(),
                TxBody::MeterReport {
                    interval: n as u64,
                    produced_wh: 1_234,
                    consumed_wh: 56,
                },
            )
        },
        2_000_000,
    );
    (ledger, transfers, reports)
}

fn bench(c: &mut Criterion) {
    let (ledger, transfers, reports) = setup();
    let mut g = c.benchmark_group("ledger");
    g.throughput(Throughput::Elements(BLOCK_TXS as u64));
    g.sample_size(20);
    for (name, bytes) in [("transfers", &transfers), ("meter_reports", &reports)] {
        g.bench_function(format!("decode_verify_apply/{name}/txs={BLOCK_TXS}"), |b| {
            b.iter_batched(
                || ledger.clone(),
                |mut l| {
                    let block = Block::decode(black_box(bytes)).unwrap();
                    let o = l.apply_block(&block).unwrap();
                    black_box(o.state_root)
                },
                BatchSize::LargeInput,
            );
        });
    }
    // Breakdown: decode only, and signature verification (batch) only.
    g.bench_function(format!("decode_only/txs={BLOCK_TXS}"), |b| {
        b.iter(|| {
            let block = Block::decode(black_box(&transfers)).unwrap();
            let n = block.txs.iter().filter(|t| Tx::decode(t).is_ok()).count();
            black_box(n)
        });
    });
    g.finish();
}

/// Write and verify a year-sized chain (see the module doc).
fn bench_year(c: &mut Criterion) {
    let input = year::hourly_year(2007, 8_760);
    let settled = scg_ledger::settlement::settle_year(&input).unwrap();
    let dir = std::env::temp_dir().join(format!("scg-ledger-bench-{}", std::process::id()));
    let mut g = c.benchmark_group("year");
    g.throughput(Throughput::Elements(settled.summary.records));
    g.sample_size(10);
    g.bench_function("settle", |b| {
        b.iter(|| scg_ledger::settlement::settle_year(black_box(&input)).unwrap());
    });
    g.bench_function("store", |b| {
        b.iter(|| scg_ledger::store::store(&dir, black_box(&settled)).unwrap());
    });
    g.bench_function("verify", |b| {
        b.iter(|| scg_ledger::store::verify_dir(black_box(&dir)).unwrap());
    });
    g.bench_function("settle_store_verify", |b| {
        b.iter(|| {
            let s = scg_ledger::settlement::settle_year(black_box(&input)).unwrap();
            scg_ledger::store::store(&dir, &s).unwrap();
            scg_ledger::store::verify_dir(&dir).unwrap()
        });
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A compact week: 200 members at 15-minute steps, every member importing, every third with
/// PV exporting to the others.
fn bench_compact(c: &mut Criterion) {
    use scg_ledger::settlement::{
        IndexedInterval, IndexedReading, IndexedTrade, Layout, YearHeader, settle_stream,
    };
    const N: u32 = 200;
    const DAYS: usize = 7;
    let header = YearHeader {
        seed: 9,
        members: (0..N).map(|m| format!("m{m}")).collect(),
        devices: (0..N)
            .map(|m| {
                if m % 3 == 0 {
                    1 << DeviceType::Pv as u8
                } else {
                    0
                }
            })
            .collect(),
        mint_rate_base_per_wh: 100_000,
        start_timestamp_s: 1_167_609_600,
        interval_s: 900,
        opening_balance_base: 1_000_000_000_000,
        treasury_endowment_base: 1 << 100,
        intervals: 96 * DAYS,
    };
    let fill = |i: usize, out: &mut IndexedInterval| -> Result<(), scg_ledger::LedgerError> {
        let k = (i % 96) as u64;
        let sun = if (28..68).contains(&k) {
            40 * (20 - k.abs_diff(48))
        } else {
            0
        };
        for m in 0..N {
            let load = 40 + (u64::from(m) * 7 + k * 13) % 90;
            let pv = if m % 3 == 0 { sun } else { 0 };
            let (export, import) = (pv.saturating_sub(load), load.saturating_sub(pv));
            if pv > 0 {
                out.readings.push(IndexedReading {
                    member: m,
                    device: DeviceType::Pv,
                    produced_wh: pv,
                    consumed_wh: 0,
                });
            }
            out.readings.push(IndexedReading {
                member: m,
                device: DeviceType::SupplyPoint,
                produced_wh: export,
                consumed_wh: import,
            });
            // Each exporter sells a third of its export (at most 40 Wh, below any load) to
            // the next member, which has no PV.
            let sold = (export / 3).min(40);
            if sold > 0 && m + 1 < N {
                out.trades.push(IndexedTrade {
                    buyer: m + 1,
                    seller: m,
                    energy_wh: sold,
                    price_base_per_kwh: 100_000_000,
                    grid_fee_base_per_kwh: 10_000_000,
                });
            }
        }
        Ok(())
    };
    let mut g = c.benchmark_group("compact");
    g.throughput(Throughput::Elements(u64::from(N) * DAYS as u64));
    g.sample_size(10);
    g.bench_function("member_days", |b| {
        b.iter(|| settle_stream(black_box(&header), Layout::Compact, fill).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench, bench_year, bench_compact);
criterion_main!(benches);
