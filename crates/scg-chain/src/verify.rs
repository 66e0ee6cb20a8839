//! Verification of a stored member chain by anyone holding its genesis: every certificate is
//! checked against the genesis validator set (quorum of valid ed25519 signatures over this
//! chain's namespace), every transaction is replayed through the scg-ledger state machine, and
//! the finalized height is reported. Opens the store read-only and never writes.

use crate::ChainError;
use crate::genesis::Genesis;
use crate::wire::{Record, digest_of};
use commonware_consensus::types::Epoch;
use commonware_parallel::Sequential;
use scg_ledger::Ledger;
use scg_ledger::merkle::{Hash, to_hex};
use std::path::Path;

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Chain id (hex).
    pub chain_id: String,
    /// Height of the last block covered by a finalization certificate.
    pub finalized_height: u64,
    /// State root at that height (hex).
    pub state_root: String,
    /// Blocks checked (including the registration block 1).
    pub blocks: u64,
    /// Transactions replayed.
    pub transactions: u64,
    /// Certificates checked.
    pub certificates: u64,
}

/// A CSPRNG for batch signature verification, seeded from the OS (predictable coefficients
/// would let a forger craft a batch that passes).
pub(crate) fn os_rng() -> Result<rand::rngs::StdRng, ChainError> {
    use rand::SeedableRng as _;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| ChainError::BadInput {
        what: "OS randomness".into(),
        reason: e.to_string(),
    })?;
    Ok(rand::rngs::StdRng::from_seed(seed))
}

/// Check records (heights 2.. in order) against a genesis; the library core of `verify_dir`.
pub fn verify_records(
    genesis: &Genesis,
    records: &[(u64, Vec<u8>)],
) -> Result<VerifyReport, ChainError> {
    replay_records(genesis, records).map(|(report, _)| report)
}

/// [`verify_dir`] that also returns the replayed ledger (after the last stored block).
pub fn replay_dir(genesis: &Genesis, dir: &Path) -> Result<(VerifyReport, Ledger), ChainError> {
    let (id, records) = crate::store::read_only(dir)?;
    if id != genesis.chain_id {
        return Err(ChainError::Refused {
            chain_id: genesis.chain_id_hex(),
            reason: format!("{} holds chain {}", dir.display(), to_hex(&id)),
        });
    }
    replay_records(genesis, &records)
}

/// [`verify_records`] returning the replayed ledger too.
fn replay_records(
    genesis: &Genesis,
    records: &[(u64, Vec<u8>)],
) -> Result<(VerifyReport, Ledger), ChainError> {
    let scheme = genesis.verifier()?;
    let n = genesis.validators().len();
    let mut rng = os_rng()?;
    let (mut ledger, b1) = genesis.initial_state()?;
    let mut finalized_height = 1u64;
    let mut finalized_root: Hash = b1.header.state_root;
    let mut transactions = 0u64;
    let mut certificates = 0u64;
    for (i, (height, bytes)) in records.iter().enumerate() {
        let expect = 2 + i as u64;
        let bad = |reason: String| ChainError::BadBlock {
            height: *height,
            reason,
        };
        if *height != expect {
            return Err(bad(format!(
                "stored at height {height}, expected {expect} (a gap)"
            )));
        }
        let rec = Record::decode(bytes, n).map_err(|e| bad(e.to_string()))?;
        if rec.block.header.height != *height {
            return Err(bad(format!(
                "block says height {}",
                rec.block.header.height
            )));
        }
        let outcome = ledger
            .apply_block(&rec.block)
            .map_err(|e| bad(e.to_string()))?;
        if let Some((j, r)) = outcome
            .results
            .iter()
            .enumerate()
            .find_map(|(j, r)| r.err().map(|e| (j, e)))
        {
            return Err(bad(format!(
                "transaction {j} was rejected by the ledger ({r}); finalized blocks hold only valid transactions"
            )));
        }
        transactions += rec.block.txs.len() as u64;
        if let Some(cert) = &rec.cert {
            if cert.proposal.payload != digest_of(&rec.block.hash()) {
                return Err(bad("the certificate finalizes another block".into()));
            }
            if cert.proposal.round.epoch() != Epoch::zero() {
                return Err(bad("the certificate is for another epoch".into()));
            }
            if !cert.verify(&mut rng, &scheme, &Sequential) {
                return Err(bad(format!(
                    "the finalization certificate does not verify against the {n} genesis validators (forged, or fewer than a quorum of valid signatures)"
                )));
            }
            certificates += 1;
            finalized_height = *height;
            finalized_root = rec.block.header.state_root;
        }
    }
    if let Some((h, _)) = records.last()
        && *h != finalized_height
    {
        return Err(ChainError::BadBlock {
            height: finalized_height + 1,
            reason: format!(
                "blocks {}..={h} are not covered by a finalization certificate",
                finalized_height + 1
            ),
        });
    }
    let report = VerifyReport {
        chain_id: genesis.chain_id_hex(),
        finalized_height,
        state_root: to_hex(&finalized_root),
        blocks: records.len() as u64 + 1,
        transactions,
        certificates,
    };
    Ok((report, ledger))
}

/// Verify a node directory read-only against a genesis.
pub fn verify_dir(genesis: &Genesis, dir: &Path) -> Result<VerifyReport, ChainError> {
    replay_dir(genesis, dir).map(|(report, _)| report)
}

/// What `scg ledger verify DIR` checked on a node directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDirReport {
    /// The verification.
    pub report: VerifyReport,
    /// The genesis the certificates were checked against.
    pub genesis: std::path::PathBuf,
    /// True if that genesis is the copy the node keeps in its directory (trust it only if its
    /// chain id is the one you expect), false if the caller named it.
    pub genesis_from_dir: bool,
}

/// Verify a node directory read-only against `genesis`, or, when `None`, against the copy of
/// the genesis the node keeps in `dir` ([`crate::store::GENESIS_FILE`]).
pub fn verify_node_dir(dir: &Path, genesis: Option<&Path>) -> Result<NodeDirReport, ChainError> {
    let (path, from_dir) = match genesis {
        Some(p) => (p.to_path_buf(), false),
        None => (dir.join(crate::store::GENESIS_FILE), true),
    };
    if from_dir && !path.exists() {
        return Err(ChainError::BadInput {
            what: dir.display().to_string(),
            reason: format!(
                "no {} in the node directory; name the chain's genesis with --genesis",
                crate::store::GENESIS_FILE
            ),
        });
    }
    let g = Genesis::read(&path)?;
    Ok(NodeDirReport {
        report: verify_dir(&g, dir)?,
        genesis: path,
        genesis_from_dir: from_dir,
    })
}
