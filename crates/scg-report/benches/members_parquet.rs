//! The members.parquet encoder (`city::MembersParquetWriter`) on a city's blocks: 10,000
//! members over 8 blocks of 52 steps (the block a 10,000-member year at 15 minutes streams),
//! none with a battery, no wind, swaps or V2G: the load and the grid import dense (every value
//! different, as a synthesized load's are), the PV, P2P and export flows zero at about half the
//! member-steps, the other flows zero throughout. The file goes to `io::sink`. Criterion
//! reports the time per member-step. See docs/scaling.md.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scg_model::{ModelYear, TimeGrid, TimeSettings};
use scg_report::city::MembersParquetWriter;
use scg_sim::members::{FLOW_COLUMNS, MemberBlock, block_steps};
use std::hint::black_box;

const MEMBERS: usize = 10_000;
const BLOCKS: usize = 8;

/// `n` values in `0..scale` from a fixed linear congruential sequence: every one different.
fn dense(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            scale * (x >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let grid = TimeGrid::new(
        &TimeSettings {
            step_minutes: 15,
            model_year: ModelYear::Homer,
        },
        "Europe/Rome",
    )
    .unwrap();
    let steps = block_steps(MEMBERS, grid.len());
    let n = MEMBERS * steps;
    // Zero for half the members at each step (which half alternates with the step).
    let sparse = |seed| -> Vec<f64> {
        let mut v = dense(n, seed, 4.0);
        for (j, x) in v.iter_mut().enumerate() {
            if (j / MEMBERS + j % MEMBERS / 2) % 2 == 1 {
                *x = 0.0;
            }
        }
        v
    };
    let columns: Vec<Vec<f64>> = FLOW_COLUMNS
        .iter()
        .enumerate()
        .map(|(k, name)| match *name {
            "load_kw" | "grid_import_kw" => dense(n, k as u64, 3.0),
            "pv_kw" | "p2p_import_kw" | "p2p_export_kw" | "grid_export_kw" => sparse(k as u64),
            _ => vec![0.0; n],
        })
        .collect();
    let ids: Vec<String> = (0..MEMBERS).map(|i| format!("household-{i:05}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut block = MemberBlock {
        steps,
        columns: columns.try_into().unwrap(),
        has_battery: vec![false; MEMBERS],
        ..MemberBlock::default()
    };
    let mut group = c.benchmark_group("members_parquet");
    group.sample_size(10);
    group.throughput(Throughput::Elements((n * BLOCKS) as u64));
    group.bench_function("10000_members_8_blocks", |b| {
        b.iter(|| {
            let mut writer = MembersParquetWriter::new(std::io::sink(), &ids, &grid).unwrap();
            for k in 0..BLOCKS {
                block.first_step = k * steps;
                writer.write_block(&block).unwrap();
            }
            black_box(writer)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
