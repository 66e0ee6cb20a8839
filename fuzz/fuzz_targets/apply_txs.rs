//! Arbitrary transaction bytes in a block never crash the state machine, and the invariants
//! hold afterwards. The input is split into transactions by a one-byte length prefix; a few
//! validly signed transactions from known keys are mixed in so that deeper paths are reached.
#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use scg_ledger::{GenesisConfig, Ledger, Tx, TxBody};

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i.max(1); 32])
}

fuzz_target!(|data: &[u8]| {
    let (op, tr, gr) = (key(1), key(2), key(3));
    let config = GenesisConfig {
        chain_id: 9,
        operator: op.verifying_key().to_bytes(),
        treasury: tr.verifying_key().to_bytes(),
        grid: gr.verifying_key().to_bytes(),
        mint_rate_base_per_wh: 1_000,
        treasury_endowment: 1_000_000_000,
        intervals_total: GenesisConfig::OPEN_ENDED,
        simulation_key_seed: None,
    };
    let Ok((mut ledger, _)) = Ledger::genesis(config, 0) else {
        return;
    };
    let member = key(4).verifying_key().to_bytes();
    let mut txs = vec![Tx::sign(9, &op, 1, 0, TxBody::RegisterMember { member })];
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (tx, tail) = tail.split_at(n);
        if !tx.is_empty() {
            txs.push(tx.to_vec());
        }
        rest = tail;
    }
    if let Ok((_, outcome)) = ledger.produce_block(3_600, txs) {
        assert!(outcome.results[0].is_ok());
    }
    ledger.check_invariants().expect("invariants hold");
});
