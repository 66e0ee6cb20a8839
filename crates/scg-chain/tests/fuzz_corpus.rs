//! Runs the fuzz corpus (`fuzz/corpus/wire/`) through the same entry point as the cargo-fuzz
//! target, on stable, plus every truncation and a deterministic set of byte flips of each
//! corpus file: the decoders never panic on any of them.
#![allow(clippy::unwrap_used)]

use std::path::Path;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/wire");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn corpus_and_mutations_never_panic() {
    let inputs = corpus();
    assert!(inputs.len() >= 8, "corpus has {} files", inputs.len());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for input in &inputs {
        scg_chain::wire::fuzz_decoders(input);
        for cut in 0..input.len().min(512) {
            scg_chain::wire::fuzz_decoders(&input[..cut]);
        }
        for _ in 0..200 {
            // xorshift: deterministic flips.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut m = input.clone();
            if m.is_empty() {
                continue;
            }
            let at = (state as usize) % m.len();
            m[at] ^= (state >> 32) as u8 | 1;
            scg_chain::wire::fuzz_decoders(&m);
        }
    }
}

/// Writes the seed corpus (run once by hand: `cargo test -p scg-chain --test fuzz_corpus -- --ignored`).
#[test]
#[ignore = "regenerates fuzz/corpus/wire"]
fn write_corpus() {
    use scg_chain::wire::{Message, Record};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/wire");
    std::fs::create_dir_all(&dir).unwrap();
    let tc = scg_ledger::GenesisConfig {
        chain_id: 1,
        operator: ed25519_dalek::SigningKey::from_bytes(&[1; 32])
            .verifying_key()
            .to_bytes(),
        treasury: ed25519_dalek::SigningKey::from_bytes(&[2; 32])
            .verifying_key()
            .to_bytes(),
        grid: ed25519_dalek::SigningKey::from_bytes(&[3; 32])
            .verifying_key()
            .to_bytes(),
        mint_rate_base_per_wh: 1,
        treasury_endowment: 1,
        intervals_total: scg_ledger::GenesisConfig::OPEN_ENDED,
        simulation_key_seed: None,
    };
    let (mut ledger, _) = scg_ledger::Ledger::genesis(tc, 10).unwrap();
    let tx = scg_ledger::Tx::sign(
        1,
        &ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
        1,
        0,
        scg_ledger::TxBody::RegisterMember {
            member: ed25519_dalek::SigningKey::from_bytes(&[4; 32])
                .verifying_key()
                .to_bytes(),
        },
    );
    let (block, _) = ledger.produce_block(11, vec![tx.clone()]).unwrap();
    let record = Record {
        block: block.clone(),
        cert: None,
    }
    .to_bytes();
    let items: Vec<(&str, Vec<u8>)> = vec![
        ("proposal", Message::Proposal(block.to_bytes()).to_bytes()),
        ("tx", Message::Txs(vec![tx.clone()]).to_bytes()),
        ("txs", Message::Txs(vec![tx.clone(), tx.clone()]).to_bytes()),
        ("fetch_block", Message::FetchBlock([7; 32]).to_bytes()),
        ("fetch_records", Message::FetchRecords(2).to_bytes()),
        (
            "records",
            Message::Records(vec![record.clone(), record.clone()]).to_bytes(),
        ),
        (
            "tip",
            Message::Tip {
                chain_id: [3; 32],
                height: 99,
            }
            .to_bytes(),
        ),
        ("record", record),
        ("empty", Vec::new()),
        ("bad_tag", vec![9, 0, 0, 0]),
        ("huge_len", vec![0, 255, 255, 255, 255]),
    ];
    for (name, bytes) in items {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Bad bytes from the network are an error naming what was being decoded and what was wrong.
#[test]
fn malformed_messages_and_records_name_what_is_wrong() {
    use scg_chain::wire::{MAX_GOSSIP_TXS, Message, Record};
    let e = Message::decode(&[9]).unwrap_err().to_string();
    assert!(e.contains("message tag") && e.contains("found 9"), "{e}");
    let e = Message::decode(&[]).unwrap_err().to_string();
    assert!(e.contains("message tag"), "{e}");
    // A gossip message with no transaction, too many, or one cut short.
    let e = Message::decode(&[1, 0, 0, 0, 0]).unwrap_err().to_string();
    assert!(e.contains("transaction count: 0, expected 1 to"), "{e}");
    let too_many = (MAX_GOSSIP_TXS as u32 + 1).to_le_bytes();
    let e = Message::decode(&[&[1u8][..], &too_many].concat())
        .unwrap_err()
        .to_string();
    assert!(e.contains("transaction count"), "{e}");
    let e = Message::decode(&[1, 1, 0, 0, 0, 5, 0, 0, 0, 1])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("transaction"), "{e}");
    // A tip without its height; trailing bytes after a fetch.
    let e = Message::decode(&[&[5u8][..], &[0; 32]].concat())
        .unwrap_err()
        .to_string();
    assert!(e.contains("height"), "{e}");
    let e = Message::decode(&[&[3u8][..], &[0; 9]].concat())
        .unwrap_err()
        .to_string();
    assert!(e.contains("trailing"), "{e}");
    // A record whose block is cut short.
    let e = Record::decode(&[10, 0, 0, 0, 1, 2], 4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("block"), "{e}");
}
