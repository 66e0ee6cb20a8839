//! The crate's one error type. Every variant names what was wrong and where (file, field path,
//! block height), so a user can fix the input without reading code.

use std::path::PathBuf;

/// Errors of `scg-chain`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file that does not hold a key.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Refused to overwrite an existing file.
    #[error("{path} already exists; refusing to overwrite a key")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A genesis (or genesis spec) field is missing or wrong.
    #[error("{file}: field `{field}`: {reason}")]
    Genesis {
        /// The file (or "genesis").
        file: String,
        /// Field path, e.g. `validators[2].public_key`.
        field: String,
        /// What was found and what was expected.
        reason: String,
    },
    /// A bad command-line value (peer address, key, …).
    #[error("{what}: {reason}")]
    BadInput {
        /// Which input.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A node with this genesis and key may not join.
    #[error("refusing to join chain {chain_id}: {reason}")]
    Refused {
        /// Chain id (hex).
        chain_id: String,
        /// Why.
        reason: String,
    },
    /// A stored chain that does not verify.
    #[error("block {height}: {reason}")]
    BadBlock {
        /// Height of the offending block.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// The ledger state machine refused something.
    #[error(transparent)]
    Ledger(#[from] scg_ledger::LedgerError),
    /// Storage failure.
    #[error("store {path}: {reason}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}
