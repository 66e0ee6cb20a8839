//! `scg-chain`: the RESCoin ledger as a replicated state machine run by the community's members
//! under BFT consensus (commonware simplex, ed25519 identities).
//!
//! - [`keys`]: member keys from the OS's randomness, key files (mode 0600);
//! - [`genesis`]: the member chain's genesis (members, validators, meters, parameters) and its
//!   chain id (a hash of the contents);
//! - [`wire`]: the block record (ledger block + finalization certificate) and the messages nodes
//!   exchange, with decoders that never panic;
//! - [`store`]: finalized blocks with their certificates in redb;
//! - [`app`]: the consensus application: proposes blocks of pending transactions, verifies a
//!   proposal by re-executing the ledger state machine, persists finalized blocks;
//! - [`verify`]: checks a stored chain (certificates against the genesis validators, full
//!   replay), read-only;
//! - [`plan`]: a testnet's plan from one run of the community engine (`scg_sim`): the
//!   operator's part and each member's part, and the clock schedule every party follows;
//! - [`agent`]: a member's agent inside its own node: signs its orders and its meters'
//!   readings with keys only that node holds when the block clock reaches them;
//! - [`testnet`]: `scg testnet`'s driver: keys, a market genesis, N `scg chain run` processes
//!   on loopback, and a community's orders and readings submitted through them on a clock
//!   that advances as fast as consensus finalizes.
//!
//! This is the only scg crate that opens sockets. It never prints (the CLI does) and never
//! panics on input from the network or from files.

pub mod agent;
pub mod app;
pub mod error;
pub mod genesis;
pub mod keys;
pub mod node;
pub mod plan;
pub mod run;
pub mod store;
pub mod testnet;
pub mod verify;
pub mod wire;

pub use error::ChainError;

/// Largest genesis or genesis spec file read (1,024 members with 64 meters each fit easily).
pub const MAX_GENESIS_BYTES: u64 = 64 * 1024 * 1024;
/// Largest key file read.
pub const MAX_KEY_FILE_BYTES: u64 = 4 * 1024;

/// Read a UTF-8 text file of at most `max_bytes`, naming the file on error (a user-given path
/// may name a huge or endless file; reading stops one byte past the bound).
pub(crate) fn read_text(path: &std::path::Path, max_bytes: u64) -> Result<String, ChainError> {
    use std::io::Read as _;
    let io = |e: std::io::Error| ChainError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(max_bytes + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ChainError::BadInput {
            what: path.display().to_string(),
            reason: format!("larger than {max_bytes} bytes"),
        });
    }
    String::from_utf8(bytes).map_err(|e| ChainError::BadInput {
        what: path.display().to_string(),
        reason: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })
}
pub use genesis::{Genesis, GenesisFile, GenesisSpec};
pub use keys::MemberKey;
