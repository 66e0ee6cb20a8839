//! Bytes on disk and on the wire: the finalized-block record and the node-to-node messages.
//!
//! Consensus (simplex) orders 32-byte digests; a digest here is the scg-ledger block hash (the
//! header commits to the parent, the transactions and the state root). The blocks themselves
//! travel on a separate p2p channel as [`Message`]s.
//!
//! Record bytes (integers little-endian): block length `u32`, block bytes (scg-ledger format),
//! certificate flag `u8` (0 or 1), then, if 1, certificate length `u32` and the simplex
//! finalization (commonware codec). A record without its own certificate is final because a later
//! record's certificate finalizes a descendant (simplex finalizes a block's ancestors with it).
//!
//! Decoders bound every length by what the input holds and never panic (fuzzed).

use commonware_codec::{Encode as _, Read as _};
use commonware_consensus::simplex::types::Finalization;
use commonware_cryptography::sha256::Digest;
use scg_ledger::Block;
use scg_ledger::merkle::Hash;

/// The consensus signing scheme: ed25519, one signature per validator in a certificate.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;
/// A finalization certificate.
pub type Cert = Finalization<Scheme, Digest>;

/// Largest message accepted from the network (a full block of 65,536 transactions would not
/// fit; proposers cap blocks at [`MAX_PROPOSAL_TXS`] so they do).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Most transactions a proposer puts in one block.
pub const MAX_PROPOSAL_TXS: usize = 3000;
/// Most transactions in one gossip message ([`Message::Txs`]).
pub const MAX_GOSSIP_TXS: usize = 4096;
/// Most records in one catch-up response.
pub const MAX_RECORDS_PER_RESPONSE: usize = 64;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct WireError {
    /// What was being decoded.
    pub what: &'static str,
    /// Why.
    pub reason: String,
}

fn werr(what: &'static str, reason: impl Into<String>) -> WireError {
    WireError {
        what,
        reason: reason.into(),
    }
}

/// Digest of a ledger block hash.
pub fn digest_of(hash: &Hash) -> Digest {
    Digest(*hash)
}

/// A finalized block and, when it was finalized directly, its certificate.
#[derive(Debug, Clone)]
pub struct Record {
    /// The ledger block.
    pub block: Block,
    /// Finalization certificate of this block (None: finalized through a descendant).
    pub cert: Option<Cert>,
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.b.len() < n {
            return Err(werr(
                what,
                format!("truncated: need {n} bytes, have {}", self.b.len()),
            ));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes32(&mut self, what: &'static str) -> Result<[u8; 32], WireError> {
        let s = self.take(32, what)?;
        let mut a = [0u8; 32];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn sized(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
}

/// Decode a finalization certificate for a committee of `participants`.
pub fn decode_cert(bytes: &[u8], participants: usize) -> Result<Cert, WireError> {
    let mut buf = commonware_codec::Copying(bytes);
    let cert =
        Cert::read_cfg(&mut buf, &participants).map_err(|e| werr("certificate", e.to_string()))?;
    if !buf.0.is_empty() {
        return Err(werr(
            "certificate",
            format!("{} trailing bytes", buf.0.len()),
        ));
    }
    Ok(cert)
}

impl Record {
    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let block = self.block.to_bytes();
        let mut out = Vec::with_capacity(block.len() + 256);
        out.extend_from_slice(&(block.len() as u32).to_le_bytes());
        out.extend_from_slice(&block);
        match &self.cert {
            None => out.push(0),
            Some(c) => {
                let cb = c.encode();
                out.push(1);
                out.extend_from_slice(&(cb.len() as u32).to_le_bytes());
                out.extend_from_slice(&cb);
            }
        }
        out
    }

    /// Decode (structure only: the certificate's signatures are checked by the caller).
    pub fn decode(bytes: &[u8], participants: usize) -> Result<Self, WireError> {
        let mut c = Cursor { b: bytes };
        let block = Block::decode(c.sized("record block")?)
            .map_err(|e| werr("record block", e.to_string()))?;
        let cert = match c.u8("record certificate flag")? {
            0 => None,
            1 => Some(decode_cert(c.sized("record certificate")?, participants)?),
            f => {
                return Err(werr(
                    "record certificate flag",
                    format!("found {f}, expected 0 or 1"),
                ));
            }
        };
        if !c.b.is_empty() {
            return Err(werr("record", format!("{} trailing bytes", c.b.len())));
        }
        Ok(Self { block, cert })
    }
}

/// A message between nodes on the block channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A proposed block (scg-ledger bytes), sent by its proposer.
    Proposal(Vec<u8>),
    /// Signed transactions being gossiped (at most [`MAX_GOSSIP_TXS`]: a node sends the
    /// transactions it admitted since its last gossip in one message, not one message each).
    Txs(Vec<Vec<u8>>),
    /// Ask for the block with this digest (a proposal this node missed).
    FetchBlock([u8; 32]),
    /// Ask for finalized records from this height on.
    FetchRecords(u64),
    /// Finalized records (record bytes), consecutive heights.
    Records(Vec<Vec<u8>>),
    /// The sender's chain id and finalized height (sent periodically: liveness, catch-up
    /// hint, and how a node started with another genesis learns that it is on another chain).
    Tip {
        /// The sender's chain id (SHA-256 of its genesis contents).
        chain_id: [u8; 32],
        /// The sender's finalized height.
        height: u64,
    },
}

impl Message {
    /// Canonical bytes: a tag byte, then the fields.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let sized = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        };
        match self {
            Self::Proposal(b) => {
                out.push(0);
                sized(&mut out, b);
            }
            Self::Txs(txs) => {
                out.push(1);
                out.extend_from_slice(&(txs.len() as u32).to_le_bytes());
                for t in txs {
                    sized(&mut out, t);
                }
            }
            Self::FetchBlock(d) => {
                out.push(2);
                out.extend_from_slice(d);
            }
            Self::FetchRecords(h) => {
                out.push(3);
                out.extend_from_slice(&h.to_le_bytes());
            }
            Self::Records(rs) => {
                out.push(4);
                out.extend_from_slice(&(rs.len() as u32).to_le_bytes());
                for r in rs {
                    sized(&mut out, r);
                }
            }
            Self::Tip { chain_id, height } => {
                out.push(5);
                out.extend_from_slice(chain_id);
                out.extend_from_slice(&height.to_le_bytes());
            }
        }
        out
    }

    /// Decode; never panics, bounds every length by the input.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(werr(
                "message",
                format!("{} bytes, at most {MAX_MESSAGE_BYTES}", bytes.len()),
            ));
        }
        let mut c = Cursor { b: bytes };
        let msg = match c.u8("message tag")? {
            0 => Self::Proposal(c.sized("proposal")?.to_vec()),
            1 => {
                let n = c.u32("transaction count")? as usize;
                if n == 0 || n > MAX_GOSSIP_TXS {
                    return Err(werr(
                        "transaction count",
                        format!("{n}, expected 1 to {MAX_GOSSIP_TXS}"),
                    ));
                }
                let mut txs = Vec::with_capacity(n.min(c.b.len() / 4));
                for _ in 0..n {
                    let tx = c.sized("transaction")?;
                    if tx.is_empty() || tx.len() > scg_ledger::tx::MAX_TX_LEN {
                        return Err(werr("transaction", format!("length {}", tx.len())));
                    }
                    txs.push(tx.to_vec());
                }
                Self::Txs(txs)
            }
            2 => Self::FetchBlock(c.bytes32("block digest")?),
            3 => Self::FetchRecords(c.u64("height")?),
            4 => {
                let n = c.u32("record count")? as usize;
                if n > MAX_RECORDS_PER_RESPONSE {
                    return Err(werr(
                        "record count",
                        format!("{n}, at most {MAX_RECORDS_PER_RESPONSE}"),
                    ));
                }
                let mut rs = Vec::with_capacity(n);
                for _ in 0..n {
                    rs.push(c.sized("record")?.to_vec());
                }
                Self::Records(rs)
            }
            5 => Self::Tip {
                chain_id: c.bytes32("chain id")?,
                height: c.u64("height")?,
            },
            t => return Err(werr("message tag", format!("found {t}, expected 0 to 5"))),
        };
        if !c.b.is_empty() {
            return Err(werr("message", format!("{} trailing bytes", c.b.len())));
        }
        Ok(msg)
    }
}

/// Fuzz entry point shared by the `fuzz/` targets and the corpus test: decoding arbitrary
/// bytes as a message, a record (committees of 1 to 8) or a ledger block never panics, and a
/// message that decodes re-encodes to exactly the same bytes (one encoding per message).
pub fn fuzz_decoders(data: &[u8]) {
    if let Ok(m) = Message::decode(data) {
        assert_eq!(m.to_bytes(), data, "message encoding is not canonical");
        if let Message::Records(rs) = &m {
            for r in rs {
                let _ = Record::decode(r, 4);
            }
        }
        if let Message::Proposal(b) = &m {
            let _ = Block::decode(b);
        }
    }
    for n in 1..=8 {
        let _ = Record::decode(data, n);
    }
    let _ = decode_cert(data, 4);
}
