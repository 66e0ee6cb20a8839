//! Fuzz the node-to-node message, record and certificate decoders.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    scg_chain::wire::fuzz_decoders(data);
});
