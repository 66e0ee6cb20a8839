//! Rewrite a ledger of storage format 2 (one uncompressed value per block in table `blocks`)
//! in the current format: `cargo run --release -p scg-ledger --example rewrite_ledger -- OLD
//! NEW` reads OLD's blocks, replays and writes them to NEW with `store::write_blocks` (every
//! signature and root checked on the way), then prints both files' sizes. For measuring what
//! the storage format saves on an existing ledger; OLD is opened read-only.
#![allow(clippy::unwrap_used)]

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use scg_ledger::Block;
use scg_ledger::store::{DB_FILE, write_blocks};
use std::path::PathBuf;

const OLD_BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");

fn main() {
    let mut args = std::env::args().skip(1).map(PathBuf::from);
    let (old, new) = (
        args.next().expect("usage: rewrite_ledger OLD NEW"),
        args.next().expect("usage: rewrite_ledger OLD NEW"),
    );
    let db = redb::Builder::new()
        .open_read_only(old.join(DB_FILE))
        .unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(OLD_BLOCKS).unwrap();
    let blocks: Vec<Block> = table
        .iter()
        .unwrap()
        .map(|row| Block::decode(row.unwrap().1.value()).unwrap())
        .collect();
    let started = std::time::Instant::now();
    let head = write_blocks(&new, &blocks).unwrap();
    let size = |d: &PathBuf| std::fs::metadata(d.join(DB_FILE)).unwrap().len();
    println!(
        "{} blocks, head {} replayed and written in {:.1} s; file {} bytes (was {})",
        blocks.len(),
        head.height,
        started.elapsed().as_secs_f64(),
        size(&new),
        size(&old)
    );
}
