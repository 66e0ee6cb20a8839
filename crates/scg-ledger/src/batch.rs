//! Settlement batches (transaction kind 13): many settlement records — meter readings, trades,
//! transfers, certificate moves, CER payouts, each the body of what would otherwise be its own
//! signed transaction — committed by one Merkle root, co-signed once per batch by every key
//! that authors records in it, and carried by one transaction of the batch's submitter (the
//! community operator).
//!
//! Why: a settled year used to be ~88,500 individually signed transactions, and signing and
//! verifying them dominated the ledger's cost. In a batch every author signs the Merkle root of
//! *its own* records once, so the signatures of a block drop to one per author (and one for
//! the envelope), while each record is applied by the state machine exactly as the
//! transaction it replaces would be, and a member can still check its own records with a short
//! proof ([`RecordProof`]) against the batch root, which the block's transaction root commits.
//!
//! Trees (the [`crate::merkle`] rule):
//! - record leaf: `leaf(index u32 || kind u8 || body)`, `index` = position in the batch, so an
//!   author's signature fixes where its records sit (and thereby their record ids and order);
//! - signer root: the Merkle root of the leaves of one author's records, in batch order;
//! - signer leaf: `leaf(key || signature || signer root)`;
//! - batch root: the Merkle root of the signer leaves, in signer-table order.
//!
//! Each author signs `"SCG-LEDGER/BATCH/v1" || chain id u64 || first record id u128 || signer
//! root`. Record `k` has id `first_record_id + k`: ids are unique on a chain, so a signed set of
//! records can be applied at most once, in no other batch and on no other chain.
//!
//! Bounds (refused by the decoder, which never panics): 1..=[`MAX_BATCH_SIGNERS`] signers,
//! 1..=[`MAX_BATCH_RECORDS`] records, at most [`MAX_BATCH_LEN`] bytes, every signer authors at
//! least one record, no signer twice, no batch inside a batch, the recomputed root must equal
//! the stated one. This module never does I/O.

use crate::codec::{DecodeError, Reader, Writer};
use crate::merkle::{Hash, MerkleLog, MerkleProof, leaf_hash, merkle_root, sha256};
use crate::tx::{PublicKey, TxBody};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use std::collections::BTreeMap;

/// Wire code of the settlement-batch transaction kind.
pub const BATCH_KIND: u8 = 13;
/// Most records in one batch.
pub const MAX_BATCH_RECORDS: usize = 65_536;
/// Most signers (record authors) in one batch.
pub const MAX_BATCH_SIGNERS: usize = 4_096;
/// Largest encoded batch transaction, bytes (8 MiB).
pub const MAX_BATCH_LEN: usize = 8 << 20;
/// Domain tag of an author's signature over its records.
pub const BATCH_DOMAIN: &[u8] = b"SCG-LEDGER/BATCH/v1";
/// Length of the batch head in the transaction body: first record id `u128`, signer count
/// `u16`, record count `u32`, batch root.
pub const BATCH_HEAD_LEN: usize = 16 + 2 + 4 + 32;

/// One author of records in a batch and its signature over the root of its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSigner {
    /// The author's public key (a registered account).
    pub key: PublicKey,
    /// ed25519 signature over [`signer_message`].
    pub signature: [u8; 64],
}

/// One settlement record: the body of a transaction and the index of its author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// Index into [`Batch::signers`].
    pub signer: u16,
    /// What the record does (any kind but a batch).
    pub body: TxBody,
}

/// A settlement batch: see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Id of record 0; record `k` has id `first_record_id + k`.
    pub first_record_id: u128,
    /// The authors, each with its signature.
    pub signers: Vec<BatchSigner>,
    /// The records, in the order they apply.
    pub records: Vec<BatchRecord>,
}

/// The message an author signs: domain, chain id, first record id and its signer root.
pub fn signer_message(chain_id: u64, first_record_id: u128, signer_root: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(BATCH_DOMAIN.len() + 8 + 16 + 32);
    m.extend_from_slice(BATCH_DOMAIN);
    m.extend_from_slice(&chain_id.to_le_bytes());
    m.extend_from_slice(&first_record_id.to_le_bytes());
    m.extend_from_slice(signer_root);
    m
}

/// The leaf of record `index` with `body`.
pub fn record_leaf(index: u32, body: &TxBody) -> Hash {
    record_leaf_in(&mut Writer::with_capacity(5 + 128), index, body)
}

/// [`record_leaf`], encoding into `w` (cleared first: one buffer for a whole batch).
fn record_leaf_in(w: &mut Writer, index: u32, body: &TxBody) -> Hash {
    w.buf.clear();
    w.u32(index);
    w.u8(body.kind());
    body.encode_body(w);
    leaf_hash(&w.buf)
}

/// The leaf of one signer in the batch tree.
pub fn signer_leaf(key: &PublicKey, signature: &[u8; 64], signer_root: &Hash) -> Hash {
    sha256(&[&[0x00], key, signature, signer_root])
}

/// Record leaves grouped by author: per signer index, (record index, leaf) in batch order.
fn leaves_by_signer(signers: usize, records: &[BatchRecord]) -> Vec<Vec<(u32, Hash)>> {
    let mut by: Vec<Vec<(u32, Hash)>> = vec![Vec::new(); signers];
    let mut w = Writer::with_capacity(5 + 128);
    for (k, r) in records.iter().enumerate() {
        if let Some(v) = by.get_mut(usize::from(r.signer)) {
            let k = k as u32;
            v.push((k, record_leaf_in(&mut w, k, &r.body)));
        }
    }
    by
}

impl Batch {
    /// Build and co-sign a batch: `records` are (author key, body) in the order they apply;
    /// the signer table lists the authors in order of first appearance, and every author signs
    /// the root of its own records (in parallel: the bytes do not depend on the thread count,
    /// ed25519 signatures are deterministic). Errors when a bound of the module doc is broken.
    pub fn sign(
        chain_id: u64,
        first_record_id: u128,
        records: Vec<(SigningKey, TxBody)>,
    ) -> Result<Self, DecodeError> {
        Self::sign_rooted(chain_id, first_record_id, records).map(|(batch, _)| batch)
    }

    /// [`Batch::sign`] and the batch root, from the signer roots the signing computed (so a
    /// producer encodes the batch without hashing every record again).
    pub(crate) fn sign_rooted(
        chain_id: u64,
        first_record_id: u128,
        records: Vec<(SigningKey, TxBody)>,
    ) -> Result<(Self, Hash), DecodeError> {
        use rayon::prelude::*;
        check_counts(0, records.len())?;
        let mut index: BTreeMap<PublicKey, u16> = BTreeMap::new();
        let mut keys: Vec<SigningKey> = Vec::new();
        let mut out = Vec::with_capacity(records.len());
        for (key, body) in records {
            if body.kind() == BATCH_KIND {
                return Err(DecodeError::Invalid {
                    field: "record_kind",
                    value: u64::from(BATCH_KIND),
                });
            }
            let pk = key.verifying_key().to_bytes();
            let signer = match index.get(&pk) {
                Some(&i) => i,
                None => {
                    let i = u16::try_from(keys.len())
                        .ok()
                        .filter(|i| usize::from(*i) < MAX_BATCH_SIGNERS)
                        .ok_or(DecodeError::TooLong {
                            len: keys.len() + 1,
                            max: MAX_BATCH_SIGNERS,
                        })?;
                    index.insert(pk, i);
                    keys.push(key);
                    i
                }
            };
            out.push(BatchRecord { signer, body });
        }
        let by = leaves_by_signer(keys.len(), &out);
        let (signers, leaves): (Vec<BatchSigner>, Vec<Hash>) = keys
            .par_iter()
            .zip(by.par_iter())
            .map(|(key, leaves)| {
                let leaves: Vec<Hash> = leaves.iter().map(|(_, h)| *h).collect();
                let root = merkle_root(&leaves);
                let signer = BatchSigner {
                    key: key.verifying_key().to_bytes(),
                    signature: key
                        .sign(&signer_message(chain_id, first_record_id, &root))
                        .to_bytes(),
                };
                let leaf = signer_leaf(&signer.key, &signer.signature, &root);
                (signer, leaf)
            })
            .unzip();
        let batch = Self {
            first_record_id,
            signers,
            records: out,
        };
        Ok((batch, merkle_root(&leaves)))
    }

    /// The signer roots, in signer-table order.
    pub fn signer_roots(&self) -> Vec<Hash> {
        leaves_by_signer(self.signers.len(), &self.records)
            .iter()
            .map(|l| merkle_root(&l.iter().map(|(_, h)| *h).collect::<Vec<_>>()))
            .collect()
    }

    /// The batch root (see the module doc).
    pub fn root(&self) -> Hash {
        let leaves: Vec<Hash> = self
            .signers
            .iter()
            .zip(self.signer_roots())
            .map(|(s, r)| signer_leaf(&s.key, &s.signature, &r))
            .collect();
        merkle_root(&leaves)
    }

    /// Per signer: (key, signature, the message it signed) — for signature verification.
    pub fn signed_messages(&self, chain_id: u64) -> Vec<(PublicKey, [u8; 64], Vec<u8>)> {
        self.signers
            .iter()
            .zip(self.signer_roots())
            .map(|(s, r)| {
                (
                    s.key,
                    s.signature,
                    signer_message(chain_id, self.first_record_id, &r),
                )
            })
            .collect()
    }

    /// Check every author's signature one by one; the index of the first bad one.
    pub fn first_bad_signature(&self, chain_id: u64) -> Option<usize> {
        self.signed_messages(chain_id)
            .iter()
            .position(|(key, sig, msg)| {
                VerifyingKey::from_bytes(key)
                    .and_then(|vk| vk.verify_strict(msg, &Signature::from_bytes(sig)))
                    .is_err()
            })
    }

    /// Id of record `k` (None past the `u128` range).
    pub fn record_id(&self, k: usize) -> Option<u128> {
        self.first_record_id.checked_add(k as u128)
    }

    /// The batch head of the transaction body (what the envelope signature covers).
    pub(crate) fn encode_head(&self, w: &mut Writer) {
        self.encode_head_with(w, &self.root());
    }

    /// [`Batch::encode_head`] with the batch root already known (it must be [`Batch::root`]).
    pub(crate) fn encode_head_with(&self, w: &mut Writer, root: &Hash) {
        w.u128(self.first_record_id);
        // Bounded by MAX_BATCH_SIGNERS / MAX_BATCH_RECORDS when built by `Batch::sign`;
        // saturate defensively (such a batch does not decode).
        w.u16(u16::try_from(self.signers.len()).unwrap_or(u16::MAX));
        w.u32(u32::try_from(self.records.len()).unwrap_or(u32::MAX));
        w.bytes(root);
    }

    /// The payload after the envelope signature: signer table, then records.
    pub(crate) fn encode_payload(&self, w: &mut Writer) {
        for s in &self.signers {
            w.bytes(&s.key);
            w.bytes(&s.signature);
        }
        for r in &self.records {
            w.u16(r.signer);
            w.u8(r.body.kind());
            r.body.encode_body(w);
        }
    }

    /// Decode a batch: the head from the body, the payload after the envelope signature.
    pub(crate) fn decode_payload(head: BatchHead, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        check_counts(usize::from(head.signer_count), head.record_count as usize)?;
        if head.signer_count == 0 {
            return Err(DecodeError::Invalid {
                field: "signer_count",
                value: 0,
            });
        }
        let mut signers = Vec::with_capacity(usize::from(head.signer_count));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..head.signer_count {
            let key: PublicKey = r.array("signer_key")?;
            if !seen.insert(key) {
                return Err(DecodeError::Invalid {
                    field: "duplicate_signer",
                    value: signers.len() as u64,
                });
            }
            signers.push(BatchSigner {
                key,
                signature: r.array("signer_signature")?,
            });
        }
        let mut records =
            Vec::with_capacity((head.record_count as usize).min(r.remaining() / 3 + 1));
        let mut authored = vec![false; signers.len()];
        for k in 0..head.record_count {
            let in_record = |source: DecodeError| DecodeError::InRecord {
                index: k,
                source: Box::new(source),
            };
            let signer = r.u16("record_signer").map_err(in_record)?;
            let Some(a) = authored.get_mut(usize::from(signer)) else {
                return Err(in_record(DecodeError::Invalid {
                    field: "record_signer",
                    value: u64::from(signer),
                }));
            };
            *a = true;
            let kind = r.u8("record_kind").map_err(in_record)?;
            if kind == BATCH_KIND {
                return Err(in_record(DecodeError::Invalid {
                    field: "record_kind",
                    value: u64::from(kind),
                }));
            }
            let body = TxBody::decode(kind, r).map_err(in_record)?;
            records.push(BatchRecord { signer, body });
        }
        if let Some(i) = authored.iter().position(|a| !a) {
            return Err(DecodeError::Invalid {
                field: "signer_without_records",
                value: i as u64,
            });
        }
        let batch = Self {
            first_record_id: head.first_record_id,
            signers,
            records,
        };
        if batch.root() != head.root {
            return Err(DecodeError::Invalid {
                field: "batch_root",
                value: 0,
            });
        }
        Ok(batch)
    }

    /// A proof that record `k` is in this batch, authored and signed by its signer.
    pub fn record_proof(&self, k: usize) -> Option<RecordProof> {
        let record = self.records.get(k)?;
        let signer_index = usize::from(record.signer);
        let by = leaves_by_signer(self.signers.len(), &self.records);
        let mine = by.get(signer_index)?;
        let position = mine.iter().position(|(i, _)| *i as usize == k)?;
        let mut tree = MerkleLog::new();
        for (_, h) in mine {
            tree.push(*h);
        }
        let signer_root = tree.root();
        let in_signer = tree.proof(position)?;
        let mut signer_tree = MerkleLog::new();
        for (s, l) in self.signers.iter().zip(&by) {
            let root = merkle_root(&l.iter().map(|(_, h)| *h).collect::<Vec<_>>());
            signer_tree.push(signer_leaf(&s.key, &s.signature, &root));
        }
        let signer = &self.signers[signer_index];
        Some(RecordProof {
            first_record_id: self.first_record_id,
            index: k as u32,
            body: record.body.clone(),
            signer: signer.key,
            signature: signer.signature,
            signer_root,
            in_signer,
            in_batch: signer_tree.proof(signer_index)?,
        })
    }
}

/// The head of a batch as read from a transaction body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchHead {
    pub first_record_id: u128,
    pub signer_count: u16,
    pub record_count: u32,
    pub root: Hash,
}

impl BatchHead {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            first_record_id: r.u128("first_record_id")?,
            signer_count: r.u16("signer_count")?,
            record_count: r.u32("record_count")?,
            root: r.array("batch_root")?,
        })
    }
}

fn check_counts(signers: usize, records: usize) -> Result<(), DecodeError> {
    if signers > MAX_BATCH_SIGNERS {
        return Err(DecodeError::Invalid {
            field: "signer_count",
            value: signers as u64,
        });
    }
    if records == 0 || records > MAX_BATCH_RECORDS {
        return Err(DecodeError::Invalid {
            field: "record_count",
            value: records as u64,
        });
    }
    Ok(())
}

/// A member's proof that one record is in a batch and was signed by its author: the record,
/// its path to the author's signer root (which the author's signature covers) and the path of
/// the author's leaf to the batch root. The batch root is in the batch transaction's committed
/// part, whose leaf is in the block's transaction root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProof {
    /// First record id of the batch (part of the signed message).
    pub first_record_id: u128,
    /// Position of the record in the batch.
    pub index: u32,
    /// The record.
    pub body: TxBody,
    /// Its author.
    pub signer: PublicKey,
    /// The author's signature over its signer root.
    pub signature: [u8; 64],
    /// The author's signer root.
    pub signer_root: Hash,
    /// Path from the record leaf to the signer root.
    pub in_signer: MerkleProof,
    /// Path from the signer leaf to the batch root.
    pub in_batch: MerkleProof,
}

impl RecordProof {
    /// The record's id.
    pub fn record_id(&self) -> Option<u128> {
        self.first_record_id.checked_add(u128::from(self.index))
    }

    /// True if the record hashes up to `batch_root` and the author's signature verifies for
    /// `chain_id`.
    pub fn verify(&self, chain_id: u64, batch_root: &Hash) -> bool {
        let leaf = record_leaf(self.index, &self.body);
        if self.in_signer.root_for(&leaf) != self.signer_root {
            return false;
        }
        let sl = signer_leaf(&self.signer, &self.signature, &self.signer_root);
        if self.in_batch.root_for(&sl) != *batch_root {
            return false;
        }
        let msg = signer_message(chain_id, self.first_record_id, &self.signer_root);
        VerifyingKey::from_bytes(&self.signer)
            .and_then(|vk| vk.verify_strict(&msg, &Signature::from_bytes(&self.signature)))
            .is_ok()
    }
}
