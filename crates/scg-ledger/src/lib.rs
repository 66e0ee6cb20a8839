//! `scg-ledger`: the RESCoin ledger of a smart community grid.
//!
//! - [`tx`]: signed transactions (ed25519, 128-bit idempotency ids, per-account nonces) and
//!   their canonical, versioned, length-checked binary encoding;
//! - [`batch`]: settlement batches — many records under one Merkle root, co-signed once per
//!   author, with per-record proofs;
//! - [`block`]: blocks (height, parent hash, producer timestamp, transaction/outcome/state
//!   roots) and their encoding;
//! - [`state`]: the deterministic state machine driven by an ordered sequence of blocks
//!   ([`Ledger::apply_block`]), with a state root every block and light-client account proofs;
//! - [`cer`]: the Italian CER incentive as one integer rule (the chain's period close and the
//!   simulator's settlement both pay it), the CER's state and the quorum-signed capped
//!   issuance (the euro on-ramp);
//! - [`market`]: the on-chain community market — orders are transactions, and the gate close
//!   clears an interval's orders with `scg-market`'s clearing as a state transition;
//! - [`day`]: the compact settlement layout — one record per member and day (packed readings,
//!   day figures) and a day close that applies a day only if it adds up across members;
//! - [`merkle`]: SHA-256 Merkle trees;
//! - [`settlement`]: turns a community's intervals (plain types: readings, the market's trades
//!   with prices and fees, CER payouts) into signed blocks, with renewable origin following the
//!   energy through storage and P2P trades;
//! - [`store`]: the edge module — durable storage in `redb` and full verification by replay.
//!
//! Everything except [`store`] is pure: no clock, no files, no sockets, no printing, no
//! unseeded randomness, ordered maps only. The byte formats are documented in
//! `docs/ledger-encoding.md` and in the [`tx`] and [`block`] module docs.
//!
//! Hash choice: SHA-256 (`sha2`). ed25519 already pulls in the SHA-2 family (SHA-512), so it adds
//! no dependency; it is the hash light clients, hardware wallets and browsers (WebCrypto) have
//! built in, and at our sizes (a few hundred bytes per transaction) hashing is a few percent of
//! signature verification, so BLAKE3's speed would not show.
//!
//! Amounts: RESCoin in integer base units (`u128`, 9 decimals, see [`scg_units::Rescoin`]);
//! energy in integer Wh (`u64`). Prices are base units per kWh; a cost is
//! `energy_wh * price / 1000` rounded down.

pub mod batch;
pub mod block;
pub mod cer;
pub mod codec;
pub mod day;
pub mod market;
pub mod merkle;
pub mod settlement;
pub mod state;
pub mod store;
pub mod tx;

pub use batch::{Batch, BatchRecord, BatchSigner, RecordProof};
pub use block::{Block, BlockHeader, GenesisConfig};
pub use codec::DecodeError;
pub use merkle::Hash;
pub use state::{Account, AccountProof, BlockOutcome, Certificate, Ledger, Reject, Role, Trade};
pub use tx::{DeviceType, PublicKey, Tx, TxBody};

/// Errors of the ledger crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Bytes that do not decode.
    #[error("{what}: {source}")]
    Decode {
        /// What was being decoded (e.g. "block 12").
        what: String,
        /// Why.
        source: DecodeError,
    },
    /// A block that does not fit the chain or whose roots differ from the replay.
    #[error("block {height}: {reason}")]
    BadBlock {
        /// Height of the block.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// A bad genesis configuration.
    #[error("invalid genesis: {0}")]
    InvalidGenesis(String),
    /// The ledger refused a block earlier and must be discarded.
    #[error("the ledger was poisoned by an earlier bad block")]
    Poisoned,
    /// A ledger invariant does not hold.
    #[error("block {height}: invariant violated: {detail}")]
    Invariant {
        /// Height after which it was found.
        height: u64,
        /// Which invariant.
        detail: String,
    },
    /// Storage failure or inconsistent storage.
    #[error("storage: {0}")]
    Storage(String),
    /// Bad settlement input that is not about one member.
    #[error("settlement input: {0}")]
    Settlement(String),
    /// CER input the integer rule cannot take (lengths that differ, an amount that overflows).
    #[error("CER: {0}")]
    Cer(String),
    /// Settlement input that does not add up for one member in one interval.
    #[error("settlement input, interval {interval}, member '{member}': {problem}")]
    SettlementInput {
        /// Interval index.
        interval: usize,
        /// Member id.
        member: String,
        /// What does not add up.
        problem: String,
    },
}
