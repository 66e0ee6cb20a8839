//! The transaction decoder never panics, and what decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scg_ledger::Tx;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = Tx::decode(data) {
        assert_eq!(tx.encode(), data);
    }
});
