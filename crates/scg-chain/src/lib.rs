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
//!   replay), read-only.
//!
//! This is the only scg crate that opens sockets. It never prints (the CLI does) and never
//! panics on input from the network or from files.

pub mod app;
pub mod error;
pub mod genesis;
pub mod keys;
pub mod node;
pub mod run;
pub mod store;
pub mod verify;
pub mod wire;

pub use error::ChainError;
pub use genesis::{Genesis, GenesisFile, GenesisSpec};
pub use keys::MemberKey;
