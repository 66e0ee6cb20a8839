//! Blocks: header, genesis configuration, body, canonical encoding (format version 1) and hash.
//!
//! Block bytes (integers little-endian):
//!
//! | size | field |
//! |---|---|
//! | 4 | magic `SCGB` |
//! | 1 | format version, `2` |
//! | 8 | height `u64` (genesis = 0) |
//! | 8 | producer timestamp `u64`, seconds (never decreases along the chain) |
//! | 32 | parent block hash (zero for genesis) |
//! | 32 | transaction root: Merkle root of `leaf(tx bytes)` (a settlement batch: of its committed part, [`crate::tx::committed_part`]; genesis: of `leaf(genesis bytes)`) |
//! | 32 | outcome root: Merkle root of `leaf(index u32 || result code u16)` per transaction, followed (only when a settlement batch had rejected records) by `leaf(tx index u32 || record index u32 || code u16)` per rejected record |
//! | 32 | state root after the block (see `state`) |
//! | 4 | transaction count `u32` (at most [`MAX_BLOCK_TXS`]) |
//! | .. | genesis only: chain id `u64`, operator key, treasury key, grid key, mint rate `u128` (base units per renewable Wh), treasury endowment `u128`, intervals total `u64`, simulation marker (`u8` 0 = none, or `u8` 1 + key seed `u64`) |
//! | .. | per transaction: length `u32` (1..=4096; a settlement batch up to 8 MiB), then the transaction bytes |
//!
//! A block is at most [`MAX_BLOCK_LEN`] bytes.
//!
//! The block hash is `SHA-256("SCG-LEDGER/BLOCK/v1" || the 153 header bytes)`; the header commits
//! to the body through the transaction root. Never does I/O.

use crate::batch::MAX_BATCH_LEN;
use crate::codec::{DecodeError, Reader, Writer};
use crate::merkle::{Hash, ZERO_HASH, leaf_hash, merkle_root, sha256};
use crate::tx::{PublicKey, max_len, tx_leaf};

/// Block format version. Version 2 added the chain's planned length and the simulation marker
/// to the genesis; version 1 existed only in development builds and is not read.
pub const BLOCK_VERSION: u8 = 2;
/// Block magic bytes.
pub const BLOCK_MAGIC: &[u8; 4] = b"SCGB";
/// Most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 65_536;
/// Largest encoded block, bytes (64 MiB): a block of settlement batches stays within it.
pub const MAX_BLOCK_LEN: usize = 64 << 20;
/// Length of the encoded header.
pub const HEADER_LEN: usize = 4 + 1 + 8 + 8 + 32 * 4 + 4;

/// Chain parameters fixed at genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisConfig {
    /// Chain id, part of every signed message.
    pub chain_id: u64,
    /// Community operator: registers members and meters.
    pub operator: PublicKey,
    /// Community treasury: pays CER incentives.
    pub treasury: PublicKey,
    /// Grid/DSO account: receives grid fees.
    pub grid: PublicKey,
    /// RESCoin base units minted per renewable Wh metered.
    pub mint_rate_base_per_wh: u128,
    /// Base units minted to the treasury at genesis.
    pub treasury_endowment: u128,
    /// The chain's planned length in blocks after genesis: it is complete when its head is at
    /// this height, and no block beyond it is stored. (The name is from the first layout, one
    /// block per interval; a settled year has one block per day of intervals, see
    /// [`crate::settlement::intervals_per_block`].) [`GenesisConfig::OPEN_ENDED`] for a chain
    /// without a planned end.
    pub intervals_total: u64,
    /// `Some(seed)` when every key of the chain was derived from `seed` (a simulation): anyone
    /// who knows the seed can sign as any account, so the chain proves nothing about who
    /// signed. A chain run by member nodes with secret keys has `None`.
    pub simulation_key_seed: Option<u64>,
}

impl GenesisConfig {
    /// `intervals_total` of a chain without a planned end (e.g. one run by member nodes).
    pub const OPEN_ENDED: u64 = u64::MAX;

    /// Canonical bytes.
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.chain_id);
        w.bytes(&self.operator);
        w.bytes(&self.treasury);
        w.bytes(&self.grid);
        w.u128(self.mint_rate_base_per_wh);
        w.u128(self.treasury_endowment);
        w.u64(self.intervals_total);
        match self.simulation_key_seed {
            None => w.u8(0),
            Some(seed) => {
                w.u8(1);
                w.u64(seed);
            }
        }
    }

    /// Canonical bytes as a vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.encode(&mut w);
        w.buf
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            chain_id: r.u64("chain_id")?,
            operator: r.array("operator")?,
            treasury: r.array("treasury")?,
            grid: r.array("grid")?,
            mint_rate_base_per_wh: r.u128("mint_rate")?,
            treasury_endowment: r.u128("treasury_endowment")?,
            intervals_total: r.u64("intervals_total")?,
            simulation_key_seed: match r.u8("simulation_marker")? {
                0 => None,
                1 => Some(r.u64("simulation_key_seed")?),
                other => {
                    return Err(DecodeError::Invalid {
                        field: "simulation_marker",
                        value: u64::from(other),
                    });
                }
            },
        })
    }
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHeader {
    /// Height (genesis = 0).
    pub height: u64,
    /// Producer timestamp, seconds.
    pub timestamp_s: u64,
    /// Hash of the parent block.
    pub parent_hash: Hash,
    /// Merkle root of the transactions.
    pub tx_root: Hash,
    /// Merkle root of the per-transaction results.
    pub outcome_root: Hash,
    /// State root after applying the block.
    pub state_root: Hash,
    /// Number of transactions.
    pub tx_count: u32,
}

impl BlockHeader {
    /// Canonical header bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEADER_LEN);
        self.encode(&mut w);
        w.buf
    }

    fn encode(&self, w: &mut Writer) {
        w.bytes(BLOCK_MAGIC);
        w.u8(BLOCK_VERSION);
        w.u64(self.height);
        w.u64(self.timestamp_s);
        w.bytes(&self.parent_hash);
        w.bytes(&self.tx_root);
        w.bytes(&self.outcome_root);
        w.bytes(&self.state_root);
        w.u32(self.tx_count);
    }

    /// The block hash.
    pub fn hash(&self) -> Hash {
        sha256(&[b"SCG-LEDGER/BLOCK/v1", &self.to_bytes()])
    }
}

/// A block: header, genesis parameters (height 0 only) and raw transaction bytes. Transactions
/// stay raw so that a malformed one is recorded as rejected rather than making the block
/// undecodable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Header.
    pub header: BlockHeader,
    /// Genesis configuration (present exactly at height 0).
    pub genesis: Option<GenesisConfig>,
    /// Transactions in canonical encoding.
    pub txs: Vec<Vec<u8>>,
}

impl Block {
    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body: usize = self.txs.iter().map(|t| t.len() + 4).sum();
        let mut w = Writer::with_capacity(HEADER_LEN + 136 + body);
        self.header.encode(&mut w);
        if let Some(g) = &self.genesis {
            g.encode(&mut w);
        }
        for tx in &self.txs {
            // Lengths are bounded by MAX_TX_LEN / MAX_BATCH_LEN when produced by the ledger.
            w.u32(u32::try_from(tx.len()).unwrap_or(u32::MAX));
            w.bytes(tx);
        }
        w.buf
    }

    /// Decode canonical bytes. Checks structure only (magic, version, lengths, genesis presence);
    /// hashes and roots are checked by the state machine.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_BLOCK_LEN {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                max: MAX_BLOCK_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let magic: [u8; 4] = r.array("magic")?;
        if &magic != BLOCK_MAGIC {
            return Err(DecodeError::Invalid {
                field: "magic",
                value: u64::from(u32::from_le_bytes(magic)),
            });
        }
        let version = r.u8("block_version")?;
        if version != BLOCK_VERSION {
            return Err(DecodeError::Invalid {
                field: "block_version",
                value: u64::from(version),
            });
        }
        let height = r.u64("height")?;
        let timestamp_s = r.u64("timestamp_s")?;
        let parent_hash = r.array("parent_hash")?;
        let tx_root = r.array("tx_root")?;
        let outcome_root = r.array("outcome_root")?;
        let state_root = r.array("state_root")?;
        let tx_count = r.u32("tx_count")?;
        if tx_count as usize > MAX_BLOCK_TXS || (height == 0 && tx_count != 0) {
            return Err(DecodeError::Invalid {
                field: "tx_count",
                value: u64::from(tx_count),
            });
        }
        let genesis = if height == 0 {
            Some(GenesisConfig::decode(&mut r)?)
        } else {
            None
        };
        // Do not trust the count for allocation beyond what the input can hold.
        let mut txs = Vec::with_capacity((tx_count as usize).min(r.remaining() / 5));
        for _ in 0..tx_count {
            let len = r.u32("tx_len")? as usize;
            if len == 0 || len > MAX_BATCH_LEN {
                return Err(DecodeError::Invalid {
                    field: "tx_len",
                    value: len as u64,
                });
            }
            let tx = r.take(len, "tx_bytes")?;
            // Only a settlement batch may be longer than MAX_TX_LEN.
            if len > max_len(tx) {
                return Err(DecodeError::Invalid {
                    field: "tx_len",
                    value: len as u64,
                });
            }
            txs.push(tx.to_vec());
        }
        r.finish()?;
        Ok(Self {
            header: BlockHeader {
                height,
                timestamp_s,
                parent_hash,
                tx_root,
                outcome_root,
                state_root,
                tx_count,
            },
            genesis,
            txs,
        })
    }

    /// Block hash (of the header).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The transaction root this body implies.
    pub fn computed_tx_root(&self) -> Hash {
        match &self.genesis {
            Some(g) => merkle_root(&[leaf_hash(&g.to_bytes())]),
            None => {
                let leaves: Vec<Hash> = self.txs.iter().map(|t| tx_leaf(t)).collect();
                merkle_root(&leaves)
            }
        }
    }
}

/// Outcome root over per-transaction result codes (0 = applied).
pub fn outcome_root(codes: &[u16]) -> Hash {
    outcome_root_with_records(codes, &[])
}

/// Outcome root over per-transaction result codes and the rejected records of settlement
/// batches, `(tx index, record index, code)` (none: the same root as [`outcome_root`]).
pub fn outcome_root_with_records(codes: &[u16], rejected_records: &[(u32, u32, u16)]) -> Hash {
    if codes.is_empty() {
        return ZERO_HASH;
    }
    let records = rejected_records.iter().map(|(t, k, c)| {
        let mut b = [0u8; 10];
        b[..4].copy_from_slice(&t.to_le_bytes());
        b[4..8].copy_from_slice(&k.to_le_bytes());
        b[8..].copy_from_slice(&c.to_le_bytes());
        leaf_hash(&b)
    });
    let leaves: Vec<Hash> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut b = [0u8; 6];
            b[..4].copy_from_slice(&(i as u32).to_le_bytes());
            b[4..].copy_from_slice(&c.to_le_bytes());
            leaf_hash(&b)
        })
        .chain(records)
        .collect();
    merkle_root(&leaves)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Block {
        Block {
            header: BlockHeader {
                height: 5,
                timestamp_s: 100,
                parent_hash: [1; 32],
                tx_root: [2; 32],
                outcome_root: [3; 32],
                state_root: [4; 32],
                tx_count: 2,
            },
            genesis: None,
            txs: vec![vec![9; 10], vec![8; 3]],
        }
    }

    #[test]
    fn header_is_153_bytes_and_round_trips() {
        assert_eq!(HEADER_LEN, 153);
        let b = sample();
        let bytes = b.to_bytes();
        assert_eq!(bytes.len(), 153 + 14 + 7);
        assert_eq!(Block::decode(&bytes).unwrap(), b);
        let g = Block {
            header: BlockHeader {
                height: 0,
                tx_count: 0,
                ..sample().header
            },
            genesis: Some(GenesisConfig {
                chain_id: 1,
                operator: [1; 32],
                treasury: [2; 32],
                grid: [3; 32],
                mint_rate_base_per_wh: 4,
                treasury_endowment: 5,
                intervals_total: 8760,
                simulation_key_seed: Some(42),
            }),
            txs: vec![],
        };
        assert_eq!(g.to_bytes().len(), 153 + 136 + 8 + 9);
        assert_eq!(Block::decode(&g.to_bytes()).unwrap(), g);
        let mut live = g.clone();
        if let Some(c) = live.genesis.as_mut() {
            c.simulation_key_seed = None;
            c.intervals_total = GenesisConfig::OPEN_ENDED;
        }
        assert_eq!(live.to_bytes().len(), 153 + 136 + 8 + 1);
        assert_eq!(Block::decode(&live.to_bytes()).unwrap(), live);
        // The example of docs/ledger-encoding.md: the genesis ends with these 17 bytes.
        let bytes = g.genesis.as_ref().unwrap().to_bytes();
        assert_eq!(
            bytes[136..],
            [0x38, 0x22, 0, 0, 0, 0, 0, 0, 1, 0x2a, 0, 0, 0, 0, 0, 0, 0]
        );
        // A marker byte other than 0 or 1 is refused.
        let mut bad = live.to_bytes();
        let last = bad.len() - 1;
        bad[last] = 2;
        assert!(Block::decode(&bad).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn block_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Block::decode(&bytes);
        }
        #[test]
        fn block_decoder_never_panics_on_mutations(flips in proptest::collection::vec((0usize..210, any::<u8>()), 1..4)) {
            let mut b = sample().to_bytes();
            for (p, v) in flips { let n = b.len(); b[p % n] ^= v; }
            let _ = Block::decode(&b);
        }
    }
}
