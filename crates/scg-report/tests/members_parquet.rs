//! `members.parquet` read back value by value: the encoder splices the chunks that repeat from
//! block to block (the `member` column, a flow that is +0.0 for every member in a block, the
//! state of charge when no member has a battery) instead of encoding them again, and a reader
//! must see exactly the block's values: the ids in order, each flow's bits (a -0.0 stays -0.0),
//! nulls where a member has no battery, whatever the block's size.
#![allow(clippy::unwrap_used)]

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use scg_model::{ModelYear, TimeGrid, TimeSettings};
use scg_report::city::MembersParquetWriter;
use scg_sim::members::{FLOW_COLUMNS, MemberBlock};

const IDS: [&str; 3] = ["a", "shop-2", "household-0003"];

/// A year (8,760 hourly steps) in blocks of 4,000, 4,000 and 760 steps (the last shorter, as a
/// year's last block can be). Flow 2 is zero in the first block only, the flows after the
/// tenth in the second block only (so a zero chunk of each size is made and reused); flow 4
/// holds a -0.0 in every block, and in the last one nothing else (it must not read as +0.0).
fn blocks(has_battery: &[bool]) -> Vec<MemberBlock> {
    let n = IDS.len();
    let batteries = has_battery.iter().filter(|b| **b).count();
    let mut first = 0;
    [4000, 4000, 760]
        .iter()
        .enumerate()
        .map(|(b, &steps)| {
            let columns = std::array::from_fn(|f| {
                (0..steps * n)
                    .map(|j| match (b, f) {
                        (0, 2) => 0.0,
                        (_, 4) if j == 1 => -0.0,
                        (2, 4) => 0.0,
                        _ if f > 9 && b != 1 => 0.0,
                        _ => (b * 1000 + f * 100 + j) as f64 / 7.0,
                    })
                    .collect()
            });
            let block = MemberBlock {
                first_step: first,
                steps,
                columns,
                has_battery: has_battery.to_vec(),
                soc_pct: (0..steps * batteries).map(|j| 50.0 + j as f64).collect(),
                trades: Vec::new(),
            };
            first += steps;
            block
        })
        .collect()
}

fn grid() -> TimeGrid {
    TimeGrid::new(
        &TimeSettings {
            step_minutes: 60,
            model_year: ModelYear::Homer,
        },
        "Europe/Rome",
    )
    .unwrap()
}

/// Write `blocks` and check every row read back against them.
fn round_trip(has_battery: &[bool]) {
    let grid = grid();
    let blocks = blocks(has_battery);
    assert_eq!(blocks.iter().map(|b| b.steps).sum::<usize>(), grid.len());
    let mut writer = MembersParquetWriter::new(Vec::new(), &IDS, &grid).unwrap();
    for block in &blocks {
        writer.write_block(block).unwrap();
    }
    let bytes = bytes::Bytes::from(writer.finish().unwrap());
    let reader = SerializedFileReader::new(bytes).unwrap();
    assert_eq!(reader.metadata().num_row_groups(), blocks.len());
    let mut rows = reader.get_row_iter(None).unwrap();
    for block in &blocks {
        let n = IDS.len();
        let mut battery = 0;
        for (i, id) in IDS.iter().enumerate() {
            for k in 0..block.steps {
                let row = rows.next().unwrap().unwrap();
                let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
                assert_eq!(fields[0], &Field::Str((*id).to_string()));
                let unix_ms = grid.unix_seconds(block.first_step + k) * 1000;
                assert_eq!(fields[1], &Field::TimestampMillis(unix_ms));
                for (f, name) in FLOW_COLUMNS.iter().enumerate() {
                    let want = block.columns[f][k * n + i];
                    match fields[3 + f] {
                        Field::Double(got) => assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{name} of {id} at step {}",
                            block.first_step + k
                        ),
                        other => panic!("{name}: {other:?}"),
                    }
                }
                let soc = fields[3 + FLOW_COLUMNS.len()];
                if has_battery[i] {
                    let batteries = has_battery.iter().filter(|b| **b).count();
                    let want = block.soc_pct[k * batteries + battery];
                    assert_eq!(soc, &Field::Double(want));
                } else {
                    assert_eq!(soc, &Field::Null);
                }
            }
            battery += usize::from(has_battery[i]);
        }
    }
    assert!(rows.next().is_none());
}

#[test]
fn spliced_chunks_read_back_as_the_blocks_values_without_batteries() {
    round_trip(&[false, false, false]);
}

#[test]
fn spliced_chunks_read_back_as_the_blocks_values_with_a_battery() {
    round_trip(&[false, true, false]);
}
