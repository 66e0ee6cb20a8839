//! The sink a city's year streams its members' flows through (`members::BlockSink`): 10,000
//! members (half with an EV site, none with a battery) over 416 steps of 15 minutes (8 blocks of
//! 52 steps, the city's block), each step's flows written as a row of the block and added to the
//! totals; the consumer only counts the blocks. Then what members.parquet's encoder does to each
//! block on its own thread: its 15 columns turned member-major (`members::member_major`).
//! Criterion reports the time per member-step. See docs/scaling.md.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scg_ev::fleet::EvStepPower;
use scg_sim::SimError;
use scg_sim::community::ProsumerInterval;
use scg_sim::dispatch::StepFlows;
use scg_sim::members::{BlockSetup, BlockSink, MemberBlock, block_steps, member_major};
use scg_sim::year::{FlowSink, StepRecord};
use std::hint::black_box;

const MEMBERS: usize = 10_000;
const YEAR_STEPS: usize = 35_040;
const STEPS: usize = 416;

fn bench(c: &mut Criterion) {
    let flows: Vec<StepFlows> = (0..MEMBERS)
        .map(|i| StepFlows {
            load_kw: 0.5 + (i % 7) as f64 * 0.1,
            grid_import_kw: 0.3,
            p2p_import_kw: (i % 3) as f64 * 0.05,
            ..StepFlows::default()
        })
        .collect();
    let inputs: Vec<ProsumerInterval> = (0..MEMBERS)
        .map(|i| ProsumerInterval {
            load_kw: (i % 13) as f64 * 0.1,
            pv_kw: (i % 4) as f64 * 0.7,
            wind_kw: 0.0,
        })
        .collect();
    let batteries = vec![None; MEMBERS];
    let ev: Vec<EvStepPower> = (0..MEMBERS)
        .map(|i| EvStepPower {
            charge_kw: (i % 2) as f64 * 3.7,
            plugged_in: (i % 2) as u32,
            ..EvStepPower::default()
        })
        .collect();
    let mut group = c.benchmark_group("block_sink");
    group.sample_size(10);
    group.throughput(Throughput::Elements((MEMBERS * STEPS) as u64));
    group.bench_function("10000_members_416_steps", |b| {
        b.iter(|| {
            let mut blocks = 0;
            let mut count = |_: &mut MemberBlock| -> Result<(), SimError> {
                blocks += 1;
                Ok(())
            };
            let setup = BlockSetup {
                fleet: (0..MEMBERS).map(|i| i % 2 == 0).collect(),
                has_battery: vec![false; MEMBERS],
                steps: STEPS,
                block_steps: block_steps(MEMBERS, YEAR_STEPS),
            };
            let mut sink = BlockSink::new(setup, &mut count);
            for t in 0..STEPS {
                let record = StepRecord {
                    step: t,
                    inputs: &inputs,
                    flows: &flows,
                    batteries: &batteries,
                };
                sink.record(&record).unwrap();
                sink.record_ev(t, &ev).unwrap();
            }
            black_box(sink.finish());
            blocks
        })
    });
    // What members.parquet's encoder does to each block before encoding it: every column of a
    // 52-step block of 10,000 members turned member-major.
    let steps = block_steps(MEMBERS, YEAR_STEPS);
    let columns: Vec<Vec<f64>> = (0..15)
        .map(|f| {
            (0..steps * MEMBERS)
                .map(|x| (x % (97 + f)) as f64)
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    group.throughput(Throughput::Elements((MEMBERS * steps) as u64));
    group.bench_function("member_major_15_columns_10000_members_52_steps", |b| {
        b.iter(|| {
            for c in &columns {
                member_major(c, steps, &mut out);
                black_box(&out);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
