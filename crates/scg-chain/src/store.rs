//! Durable storage of finalized blocks with their finalization certificates, in one redb file
//! (`DIR/chain.redb`).
//!
//! Why redb: it is already the ledger's store (one file, ACID commits, crash-safe without a
//! write-ahead log of our own), it opens read-only so `scg ledger verify DIR` can check a
//! node's directory without touching it, and it needs no async runtime, so verification is a
//! plain library call. The consensus engine keeps its own vote journal in the commonware
//! runtime's storage (`DIR/consensus/`), which simplex requires; the ledger state is never
//! stored, only rebuilt by replaying the blocks (replay is the check).
//!
//! Layout: table `records` (height `u64` → record bytes, see [`crate::wire`]), table `meta`
//! (`chain_id` → 32 bytes). Heights are consecutive from 1 (the registration block); a record
//! is written only after its block is final. Never opens sockets.

use crate::ChainError;
use crate::wire::Record;
use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The store's file name inside a node directory.
pub const STORE_FILE: &str = "chain.redb";
/// The copy of the genesis file a node keeps in its directory (written by `scg chain run` on
/// first start), so that `scg ledger verify DIR` needs no other argument.
pub const GENESIS_FILE: &str = "genesis.toml";

/// A store's chain id and its records' bytes by height.
pub type IdAndRecords = ([u8; 32], Vec<(u64, Vec<u8>)>);

/// True if `dir` holds a member chain's store (as opposed to a single-writer ledger).
pub fn is_node_dir(dir: &Path) -> bool {
    dir.join(STORE_FILE).is_file()
}

/// Keep a copy of the genesis text (`text`, which loads as `genesis`) in `dir`: created on a
/// node's first start; on later starts an existing copy must be of the same chain.
pub fn keep_genesis(dir: &Path, genesis: &crate::Genesis, text: &str) -> Result<(), ChainError> {
    let path = dir.join(GENESIS_FILE);
    let io = |e: std::io::Error| ChainError::Io {
        path: path.clone(),
        source: e,
    };
    if path.exists() {
        let kept = crate::Genesis::read(&path)?;
        if kept.chain_id != genesis.chain_id {
            return Err(ChainError::Refused {
                chain_id: genesis.chain_id_hex(),
                reason: format!(
                    "{} is the genesis of chain {} (a directory of another chain)",
                    path.display(),
                    kept.chain_id_hex()
                ),
            });
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    // Write to a temporary name and rename, so a crash never leaves a half-written copy.
    let tmp = dir.join(format!("{GENESIS_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// redb page cache per open store (records are read back only on start-up and catch-up).
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// A node's store, open for writing.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

fn serr(path: &Path, e: impl std::fmt::Display) -> ChainError {
    ChainError::Store {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl Store {
    /// Open (or create) the store in `dir` for chain `chain_id`; refuses a store of another chain.
    pub fn open(dir: &Path, chain_id: &[u8; 32]) -> Result<Self, ChainError> {
        std::fs::create_dir_all(dir).map_err(|e| ChainError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let path = dir.join(STORE_FILE);
        // redb's default cache is 1 GiB; a node's working set is the last few records.
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| serr(&path, e))?;
        let tx = db.begin_write().map_err(|e| serr(&path, e))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| serr(&path, e))?;
            let existing = meta
                .get("chain_id")
                .map_err(|e| serr(&path, e))?
                .map(|v| v.value().to_vec());
            match existing {
                Some(id) if id != chain_id.as_slice() => {
                    return Err(ChainError::Refused {
                        chain_id: scg_ledger::merkle::to_hex(chain_id),
                        reason: format!(
                            "{} holds chain {}, not this genesis",
                            path.display(),
                            scg_ledger::merkle::to_hex(&id)
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert("chain_id", chain_id.as_slice())
                        .map_err(|e| serr(&path, e))?;
                }
            }
            tx.open_table(RECORDS).map_err(|e| serr(&path, e))?;
        }
        tx.commit().map_err(|e| serr(&path, e))?;
        Ok(Self { db, path })
    }

    /// Append the record at `height` (durable when this returns).
    pub fn put(&self, height: u64, record: &Record) -> Result<(), ChainError> {
        let tx = self.db.begin_write().map_err(|e| serr(&self.path, e))?;
        {
            let mut t = tx.open_table(RECORDS).map_err(|e| serr(&self.path, e))?;
            t.insert(height, record.to_bytes().as_slice())
                .map_err(|e| serr(&self.path, e))?;
        }
        tx.commit().map_err(|e| serr(&self.path, e))
    }

    /// Append consecutive records in one transaction (all durable, or none).
    pub fn put_many(&self, records: &[(u64, Record)]) -> Result<(), ChainError> {
        let tx = self.db.begin_write().map_err(|e| serr(&self.path, e))?;
        {
            let mut t = tx.open_table(RECORDS).map_err(|e| serr(&self.path, e))?;
            for (height, record) in records {
                t.insert(*height, record.to_bytes().as_slice())
                    .map_err(|e| serr(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| serr(&self.path, e))
    }

    /// All records' bytes in height order.
    pub fn records(&self) -> Result<Vec<(u64, Vec<u8>)>, ChainError> {
        read_all(&self.db, &self.path)
    }

    /// Records' bytes from `from` on, at most `limit`.
    pub fn records_from(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, ChainError> {
        let tx = self.db.begin_read().map_err(|e| serr(&self.path, e))?;
        let t = tx.open_table(RECORDS).map_err(|e| serr(&self.path, e))?;
        let mut out = Vec::new();
        for item in t
            .range(from..)
            .map_err(|e| serr(&self.path, e))?
            .take(limit)
        {
            let (_, v) = item.map_err(|e| serr(&self.path, e))?;
            out.push(v.value().to_vec());
        }
        Ok(out)
    }
}

fn read_all(db: &impl ReadableDatabase, path: &Path) -> Result<Vec<(u64, Vec<u8>)>, ChainError> {
    let tx = db.begin_read().map_err(|e| serr(path, e))?;
    let t = tx.open_table(RECORDS).map_err(|e| serr(path, e))?;
    let mut out = Vec::new();
    for item in t.iter().map_err(|e| serr(path, e))? {
        let (k, v) = item.map_err(|e| serr(path, e))?;
        out.push((k.value(), v.value().to_vec()));
    }
    Ok(out)
}

/// Read a store without writing to it: the chain id and all records.
pub fn read_only(dir: &Path) -> Result<IdAndRecords, ChainError> {
    let path = dir.join(STORE_FILE);
    if !path.exists() {
        return Err(serr(&path, "no such file (not a member-chain directory)"));
    }
    match ReadOnlyDatabase::open(&path) {
        Ok(db) => read_id_and_records(&db, &path),
        // A node killed mid-run (SIGKILL, power loss) leaves a file that needs redb's repair
        // pass, which a read-only open refuses. Repair a private copy instead: the node's own
        // file is never written.
        Err(redb::DatabaseError::RepairAborted) => read_repaired_copy(&path),
        Err(e) => Err(serr(&path, e)),
    }
}

/// Copy `path` to a fresh file in the temporary directory, open the copy writable (redb
/// repairs it on open), read it, and delete it.
fn read_repaired_copy(path: &Path) -> Result<IdAndRecords, ChainError> {
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let copy =
        std::env::temp_dir().join(format!("scg-chain-verify-{}-{n}.redb", std::process::id()));
    std::fs::copy(path, &copy).map_err(|e| ChainError::Io {
        path: copy.clone(),
        source: e,
    })?;
    let result = redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .open(&copy)
        .map_err(|e| {
            serr(
                path,
                format!("repairing a copy after an unclean shutdown: {e}"),
            )
        })
        .and_then(|db| read_id_and_records(&db, path));
    let _ = std::fs::remove_file(&copy);
    result
}

fn read_id_and_records(
    db: &impl ReadableDatabase,
    path: &Path,
) -> Result<IdAndRecords, ChainError> {
    let path = path.to_path_buf();
    let id = {
        let tx = db.begin_read().map_err(|e| serr(&path, e))?;
        let meta = tx.open_table(META).map_err(|e| serr(&path, e))?;
        let v = meta
            .get("chain_id")
            .map_err(|e| serr(&path, e))?
            .ok_or_else(|| serr(&path, "no chain id"))?;
        <[u8; 32]>::try_from(v.value()).map_err(|_| serr(&path, "chain id is not 32 bytes"))?
    };
    Ok((id, read_all(db, &path)?))
}
