//! Where a stored ledger's bytes go: `cargo run --release -p scg-ledger --example
//! ledger_sizes -- OUT/ledger` prints the blocks' bytes by part (signer entries, records by
//! kind, the member days' series by quantity), what the blocks compress to with zstd at a few
//! levels (the store keeps them at `store::BLOCK_ZSTD_LEVEL`), and the file's size against
//! them with redb's per-table figures (stored bytes, metadata, fragmentation). Read-only;
//! reads the current store format and the uncompressed format 2.
#![allow(clippy::unwrap_used)]

use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};

use scg_ledger::day::encode_series;
use scg_ledger::store::{DB_FILE, Store};
use scg_ledger::{Tx, TxBody};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn varint_len(mut v: u128) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: ledger_sizes DIR"));
    let store = Store::open_read_only(&dir).unwrap();
    let head = store.head().unwrap().expect("an empty store");
    let mut parts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut add = |k: &str, n: usize| {
        let e = parts.entry(k.to_owned()).or_insert((0, 0));
        e.0 += 1;
        e.1 += n as u64;
    };
    let mut blocks_len = 0u64;
    const LEVELS: [i32; 3] = [1, 3, 9];
    let mut packed = [0u64; LEVELS.len()];
    for h in 0..=head.height {
        let block = store.block(h).unwrap().expect("block");
        let bytes = block.to_bytes();
        blocks_len += bytes.len() as u64;
        for (n, level) in packed.iter_mut().zip(LEVELS) {
            *n += zstd::bulk::compress(&bytes, level).unwrap().len() as u64;
        }
        for bytes in &block.txs {
            let Ok(Tx {
                body: TxBody::SettlementBatch(batch),
                ..
            }) = Tx::decode(bytes)
            else {
                add("other transaction", bytes.len());
                continue;
            };
            add(
                "batch envelope and head",
                scg_ledger::tx::BATCH_COMMITTED_LEN,
            );
            add("signer entries (key + signature)", 96 * batch.signers.len());
            for r in &batch.records {
                let TxBody::MemberDay(d) = &r.body else {
                    add(&format!("record {}", r.body.kind_name()), 0);
                    continue;
                };
                // Record header (signer u16, kind u8), day head (u64, u16, series count u8).
                add("member day: record and day head", 3 + 8 + 2 + 1);
                for (q, values) in &d.series {
                    let mut out = Vec::new();
                    encode_series(values, &mut out);
                    add(&format!("member day: series {q:?}"), 1 + out.len());
                }
                let m = &d.money;
                let c = &d.certified;
                let figures = [m.received_base, m.paid_base, m.fees_base]
                    .into_iter()
                    .chain([c.received_wh, c.sold_wh].map(u128::from))
                    .chain(c.storage.iter().flat_map(|(a, b)| [*a, *b]).map(u128::from))
                    .map(varint_len)
                    .sum();
                add("member day: money and certified figures", figures);
            }
        }
    }
    let file = std::fs::metadata(dir.join(DB_FILE)).unwrap().len();
    println!(
        "blocks: {} ({} bytes); file {} bytes",
        head.height + 1,
        blocks_len,
        file
    );
    for (k, (count, bytes)) in &parts {
        println!("{k:45} {count:>10} {bytes:>14}");
    }
    for (level, n) in LEVELS.iter().zip(packed) {
        println!(
            "blocks as zstd level {level} frames: {n} bytes ({:.3} of the canonical bytes)",
            n as f64 / blocks_len as f64
        );
    }
    drop(store);
    let db = redb::Builder::new()
        .open_read_only(dir.join(DB_FILE))
        .unwrap();
    let txn = db.begin_read().unwrap();
    println!(
        "{:22} {:>14} {:>12} {:>12} {:>10} {:>8}",
        "redb table", "stored bytes", "metadata", "fragmented", "leaf pages", "branch"
    );
    for handle in txn.list_tables().unwrap() {
        let name = handle.name().to_owned();
        let stats = txn.open_untyped_table(handle).unwrap().stats().unwrap();
        println!(
            "{name:22} {:>14} {:>12} {:>12} {:>10} {:>8}",
            stats.stored_bytes(),
            stats.metadata_bytes(),
            stats.fragmented_bytes(),
            stats.leaf_pages(),
            stats.branch_pages()
        );
    }
}
