//! Where a stored ledger's bytes go: `cargo run --release -p scg-ledger --example
//! ledger_sizes -- OUT/ledger` prints the blocks' bytes by part (signer entries, records by
//! kind, the member days' series by quantity) and the file's size against them. Read-only.
#![allow(clippy::unwrap_used)]

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
    for h in 0..=head.height {
        let block = store.block(h).unwrap().expect("block");
        blocks_len += block.to_bytes().len() as u64;
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
}
