//! Durable storage in `redb` and verification by replay — the edge module of the ledger (the
//! only one that touches files). The state machine never depends on it.
//!
//! One file, `DIR/ledger.redb`, with these tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `"format"`, `"head"` | `[3]`; head = height `u64` + block hash + state root |
//! | `block_parts` | (height `u64`, part `u32`) | the block as [`stored_block`] keeps it (tag, canonical bytes or zstd frame), in parts 0, 1, ... of [`BLOCK_PART_LEN`] bytes (the last shorter) |
//! | `outcomes` | height `u64` | result codes and expired trades ([`BlockOutcome::encode_results`]) |
//! | `accounts` | public key | account record at the head |
//! | `account_txs` | (public key, height, tx index) | result code (0 = applied) — index by account |
//! | `certificates` | certificate id `u64` | certificate record at the head — index by certificate |
//! | `account_certificates` | (owner key, certificate id) | `()` — certificates by owner |
//! | `trades` | trade id `u128` | trade record at the head |
//!
//! Each [`Store::append`] is one redb write transaction committed with immediate durability:
//! blocks, outcomes, state records, indexes and the head move together or not at all, so a crash
//! (kill -9) at any point leaves the last committed head and a state that verifies.
//! [`write_blocks`] (a whole chain at once, applied and checked on the way) commits in groups of
//! [`GROUP_BLOCKS`] blocks and syncs to disk only at the last one: an interrupted write leaves a
//! consistent but shorter chain, which [`Store::verify`] reports as incomplete because the
//! genesis states the planned length ([`GenesisConfig::intervals_total`](crate::GenesisConfig)).
//! [`store`] writes a settled year without replaying it — the settlement has just signed and
//! applied every transaction, so the blocks, outcomes and final records come from its ledger,
//! after a check that the blocks are the ones it produced (hash links up to its head,
//! transaction and outcome roots) — into a new file beside the old one, synced once, and renames
//! it into place, so the previous ledger stays whole until the new one is complete. It is a
//! [`StoreWriter`] handed the whole year at once; a city's settlement hands one its blocks as
//! it makes them (`settlement::settle_stream_into`), so that the year's blocks are never all
//! in memory.
//!
//! [`Store::verify`] trusts nothing in the file: it replays every block from genesis (all
//! signatures, hashes, Merkle and state roots, every invariant) and compares the stored records
//! and indexes with the replay. Signature checks need no state, so it runs them (with decoding
//! and transaction roots) for windows of a few blocks per core (at most [`VERIFY_WINDOW`]) on
//! all cores (rayon), each block's signatures as one batch exactly as [`Ledger::apply_block`]
//! checks them, and applies the blocks in order: the result does not depend on the number of
//! threads.
//! [`Store::open_read_only`] (used by `verify` and `show`) never writes to the file and works
//! on read-only media.
//!
//! Blocks of a part or more ([`BLOCK_PART_LEN`]) are compressed at rest, and only there:
//! hashes, signatures, Merkle proofs and everything a node exchanges are over the canonical
//! bytes, which a read gets back exactly (stored bytes that do not give at most
//! [`MAX_BLOCK_LEN`] bytes of a block of its height are a bad block). zstd keeps about 80 % of
//! a 1,000-member compact-layout year's block bytes (the batch signers' keys and signatures,
//! a third of them, do not compress).
//!
//! Storage errors name the file and the operation ("writing /x/ledger.redb: ...").

use crate::block::{Block, MAX_BLOCK_LEN, outcome_root_with_records};
use crate::merkle::{Hash, to_hex};
use crate::state::{
    Account, BlockOutcome, Certificate, Changes, CheckedBlock, InvariantChecker, Ledger,
};
use crate::tx::{PublicKey, Tx};
use crate::{LedgerError, settlement};
use rayon::prelude::*;
use redb::{
    Database, Durability, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCK_PARTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("block_parts");
const OUTCOMES: TableDefinition<u64, &[u8]> = TableDefinition::new("outcomes");
const ACCOUNTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("accounts");
const ACCOUNT_TXS: TableDefinition<(&[u8], u64, u32), u16> = TableDefinition::new("account_txs");
const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("certificates");
const ACCOUNT_CERTS: TableDefinition<(&[u8], u64), ()> =
    TableDefinition::new("account_certificates");
const TRADES: TableDefinition<u128, &[u8]> = TableDefinition::new("trades");

/// File name of the database inside a ledger directory.
pub const DB_FILE: &str = "ledger.redb";
/// Storage format version (3: blocks of format 2, whose genesis states the chain's length,
/// stored as zstd frames; format 2 stored them uncompressed and is not read).
pub const STORE_FORMAT: u8 = 3;
/// zstd level of the stored blocks (see [`stored_block`]).
pub const BLOCK_ZSTD_LEVEL: i32 = 3;
/// Bytes of a stored block per row of `block_parts`. redb allocates a page run of a power of
/// two of 4 KiB pages per leaf: a block of 300 KB as one value took a 512 KiB run (40 %
/// unused, measured on a 1,000-member compact ledger). A part plus its leaf's header (4 B),
/// value end (4 B) and key (12 B) fills a 16 KiB run to within 44 bytes.
pub const BLOCK_PART_LEN: usize = 16_320;
/// Most bytes a stored block may have (its zstd frame; a frame never grows its input by more
/// than a small fraction, 1/256 and a few bytes by zstd's bound).
const MAX_STORED_BLOCK_LEN: usize = MAX_BLOCK_LEN + (MAX_BLOCK_LEN >> 7);
/// Blocks per write transaction in [`write_blocks`].
pub const GROUP_BLOCKS: usize = 1024;

fn db_err<E: Into<redb::Error>>(e: E) -> LedgerError {
    LedgerError::Storage(e.into().to_string())
}

/// Tag of a stored block kept as its canonical bytes (it fits one part).
const STORED_RAW: u8 = 0;
/// Tag of a stored block kept as one zstd frame of its canonical bytes.
const STORED_ZSTD: u8 = 1;

/// What `block_parts` holds for `block` (cut in parts): a tag, then its canonical bytes
/// when tag and bytes fit one part (a small block saves little, and stays readable as is),
/// else one zstd frame of them.
pub fn stored_block(block: &Block) -> Result<Vec<u8>, LedgerError> {
    let bytes = block.to_bytes();
    if bytes.len() < BLOCK_PART_LEN {
        let mut out = Vec::with_capacity(1 + bytes.len());
        out.push(STORED_RAW);
        out.extend_from_slice(&bytes);
        return Ok(out);
    }
    let mut out = vec![STORED_ZSTD];
    let frame = zstd::bulk::compress(&bytes, BLOCK_ZSTD_LEVEL).map_err(|e| {
        LedgerError::Storage(format!("compressing block {}: {e}", block.header.height))
    })?;
    out.extend_from_slice(&frame);
    Ok(out)
}

/// The canonical bytes of a stored block ([`stored_block`]): a raw one within one part, a
/// frame that unpacks to at most [`MAX_BLOCK_LEN`] bytes (so a damaged or hostile file cannot
/// make a read allocate more).
pub fn unpack_stored_block(stored: &[u8]) -> Result<Vec<u8>, String> {
    match stored.split_first() {
        Some((&STORED_RAW, bytes)) if stored.len() <= BLOCK_PART_LEN => Ok(bytes.to_vec()),
        Some((&STORED_ZSTD, frame)) => zstd::bulk::decompress(frame, MAX_BLOCK_LEN).map_err(|e| {
            format!(
                "stored block does not unpack (a zstd frame of at most {MAX_BLOCK_LEN} bytes \
                 expected): {e}"
            )
        }),
        _ => Err(format!(
            "stored block has an unknown tag {:?} (0 with at most {BLOCK_PART_LEN} bytes, or 1 \
             expected)",
            stored.first()
        )),
    }
}

/// The canonical bytes of block `height` from its parts (None when it has none): parts
/// numbered 0, 1, ... without a gap, every one but the last [`BLOCK_PART_LEN`] bytes, together
/// what [`unpack_stored_block`] takes.
fn read_stored_block<T: ReadableTable<(u64, u32), &'static [u8]>>(
    parts: &T,
    height: u64,
) -> Result<Option<Vec<u8>>, LedgerError> {
    let bad = |reason: String| LedgerError::BadBlock { height, reason };
    let mut frame = Vec::new();
    let mut expect = 0u32;
    let mut short = false;
    for row in parts
        .range((height, 0)..=(height, u32::MAX))
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        let (part, piece) = (k.value().1, v.value());
        if part != expect || short || piece.is_empty() || piece.len() > BLOCK_PART_LEN {
            return Err(bad(format!(
                "stored part {part} is out of place (part {expect} of at most \
                 {BLOCK_PART_LEN} bytes expected, only the last one shorter)"
            )));
        }
        if frame.len() + piece.len() > MAX_STORED_BLOCK_LEN {
            return Err(bad(format!(
                "stored block is over {MAX_STORED_BLOCK_LEN} bytes"
            )));
        }
        short = piece.len() < BLOCK_PART_LEN;
        frame.extend_from_slice(piece);
        expect += 1;
    }
    if expect == 0 {
        return Ok(None);
    }
    unpack_stored_block(&frame).map(Some).map_err(bad)
}

/// Stored result codes of a block (0 = applied) and the trades that expired at its start.
pub type StoredOutcome = (Vec<u16>, Vec<u128>);
/// One entry of the per-account index: (height, transaction index, result code).
pub type AccountTx = (u64, u32, u16);

/// The head of a stored chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Height of the last block.
    pub height: u64,
    /// Its hash.
    pub block_hash: Hash,
    /// State root after it.
    pub state_root: Hash,
}

impl Head {
    fn to_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(72);
        v.extend_from_slice(&self.height.to_le_bytes());
        v.extend_from_slice(&self.block_hash);
        v.extend_from_slice(&self.state_root);
        v
    }
    fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != 72 {
            return None;
        }
        Some(Self {
            height: u64::from_le_bytes(b[..8].try_into().ok()?),
            block_hash: b[8..40].try_into().ok()?,
            state_root: b[40..72].try_into().ok()?,
        })
    }
}

/// What a full verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Final height.
    pub height: u64,
    /// Final block hash.
    pub head_hash: Hash,
    /// Final state root.
    pub state_root: Hash,
    /// Transactions in all blocks.
    pub transactions: u64,
    /// Of which rejected.
    pub rejected: u64,
    /// Accounts.
    pub accounts: u64,
    /// Certificates.
    pub certificates: u64,
    /// Trades.
    pub trades: u64,
    /// Intervals the genesis says the chain must cover ([`crate::GenesisConfig::OPEN_ENDED`]
    /// for a chain without a planned end).
    pub intervals_total: u64,
    /// The genesis simulation marker: keys derived from this seed (not secret).
    pub simulation_key_seed: Option<u64>,
}

/// Whether a chain covers every interval its genesis announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// The head is at the planned height.
    Complete,
    /// The head is below the planned height (an interrupted write).
    Incomplete {
        /// Head height.
        height: u64,
        /// Planned height.
        of: u64,
    },
    /// The genesis states no planned length.
    OpenEnded,
}

impl VerifyReport {
    /// Whether the chain covers every interval its genesis announces.
    pub fn completeness(&self) -> Completeness {
        if self.intervals_total == crate::GenesisConfig::OPEN_ENDED {
            Completeness::OpenEnded
        } else if self.height == self.intervals_total {
            Completeness::Complete
        } else {
            Completeness::Incomplete {
                height: self.height,
                of: self.intervals_total,
            }
        }
    }
}

impl std::fmt::Display for Completeness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Complete => write!(f, "complete"),
            Self::Incomplete { height, of } => write!(f, "incomplete: height {height} of {of}"),
            Self::OpenEnded => write!(f, "open-ended (the genesis states no planned length)"),
        }
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "height {}\nstate root {}\nhead hash {}\n{} blocks, {} transactions ({} rejected), {} accounts, {} certificates, {} trades",
            self.height,
            to_hex(&self.state_root),
            to_hex(&self.head_hash),
            self.height + 1,
            self.transactions,
            self.rejected,
            self.accounts,
            self.certificates,
            self.trades
        )?;
        write!(f, "\n{}", self.completeness())?;
        if let Some(seed) = self.simulation_key_seed {
            write!(
                f,
                "\nsimulation chain: keys derived from seed {seed}, not secret"
            )?;
        }
        Ok(())
    }
}

/// The database, opened for writing or read-only.
enum Db {
    Write(Database),
    Read(ReadOnlyDatabase),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Write(_) => "Db::Write",
            Self::Read(_) => "Db::Read",
        })
    }
}

impl Db {
    fn begin_read(&self) -> Result<ReadTransaction, redb::TransactionError> {
        match self {
            Self::Write(db) => db.begin_read(),
            Self::Read(db) => db.begin_read(),
        }
    }
}

/// A ledger directory.
#[derive(Debug)]
pub struct Store {
    db: Db,
    path: PathBuf,
}

/// "`op` `path`: `e`" as a storage error.
fn at_path(op: &str, path: &Path, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Storage(format!("{op} {}: {e}", path.display()))
}

/// A storage error of an operation on `path`, named with both; other errors (a bad block, an
/// invariant) pass unchanged.
fn storage_at(op: &str, path: &Path, e: LedgerError) -> LedgerError {
    match e {
        LedgerError::Storage(detail) => at_path(op, path, detail),
        other => other,
    }
}

impl Store {
    /// Create `dir` (if needed) and a new, empty ledger database in it; fails if one exists.
    pub fn create(dir: &Path) -> Result<Self, LedgerError> {
        std::fs::create_dir_all(dir).map_err(|e| at_path("creating", dir, e))?;
        Self::create_file(&dir.join(DB_FILE))
    }

    /// Create a new, empty ledger database at `path` (whose directory exists).
    fn create_file(path: &Path) -> Result<Self, LedgerError> {
        if path.exists() {
            return Err(at_path("creating", path, "the file already exists"));
        }
        let path = path.to_path_buf();
        Self::init(&path).map_err(|e| storage_at("writing", &path, e))
    }

    fn init(path: &Path) -> Result<Self, LedgerError> {
        let db = Database::create(path).map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            meta.insert("format", [STORE_FORMAT].as_slice())
                .map_err(db_err)?;
            txn.open_table(BLOCK_PARTS).map_err(db_err)?;
            for t in [OUTCOMES, CERTIFICATES] {
                txn.open_table(t).map_err(db_err)?;
            }
            txn.open_table(ACCOUNTS).map_err(db_err)?;
            txn.open_table(ACCOUNT_TXS).map_err(db_err)?;
            txn.open_table(ACCOUNT_CERTS).map_err(db_err)?;
            txn.open_table(TRADES).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(Self {
            db: Db::Write(db),
            path: path.to_path_buf(),
        })
    }

    /// Open an existing ledger directory for appending (redb recovers the last committed state
    /// after a crash, which writes to the file).
    pub fn open(dir: &Path) -> Result<Self, LedgerError> {
        let path = existing_db(dir)?;
        let db = Database::open(&path).map_err(|e| storage_at("opening", &path, db_err(e)))?;
        Self::checked(Db::Write(db), path)
    }

    /// Open an existing ledger directory without ever writing to it (works on read-only media).
    /// A file whose writer was interrupted before redb could close it is refused (opening it
    /// for writing once would recover it).
    pub fn open_read_only(dir: &Path) -> Result<Self, LedgerError> {
        let path = existing_db(dir)?;
        let db = redb::Builder::new()
            .open_read_only(&path)
            .map_err(|e| storage_at("opening (read-only)", &path, db_err(e)))?;
        Self::checked(Db::Read(db), path)
    }

    /// Check the storage format of a freshly opened database.
    fn checked(db: Db, path: PathBuf) -> Result<Self, LedgerError> {
        let store = Self { db, path };
        let txn = store
            .db
            .begin_read()
            .map_err(|e| storage_at("reading", &store.path, db_err(e)))?;
        let meta = txn.open_table(META).map_err(db_err)?;
        let format = meta.get("format").map_err(db_err)?;
        let found = match format.as_ref().map(|g| g.value().to_vec()) {
            Some(v) if v == [STORE_FORMAT] => None,
            Some(v) => Some(match v.as_slice() {
                [n] => format!("storage format {n}"),
                _ => format!("a format record of {} bytes", v.len()),
            }),
            None => Some("no storage format record".to_owned()),
        };
        if let Some(found) = found {
            return Err(LedgerError::Storage(format!(
                "{}: {found} found, storage format {STORE_FORMAT} expected (this build reads \
                 only format {STORE_FORMAT}; a ledger of format 2 is rewritten by settling the \
                 year again)",
                store.path.display()
            )));
        }
        drop(format);
        drop(meta);
        drop(txn);
        Ok(store)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored head (None before genesis).
    pub fn head(&self) -> Result<Option<Head>, LedgerError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let meta = txn.open_table(META).map_err(db_err)?;
        let Some(v) = meta.get("head").map_err(db_err)? else {
            return Ok(None);
        };
        Head::from_bytes(v.value())
            .map(Some)
            .ok_or_else(|| LedgerError::Storage("head record is corrupt".into()))
    }

    /// Append blocks (already applied to `ledger`, in order, directly after the stored head)
    /// with the state records `ledger` changed since its last `take_changes`, atomically and
    /// durably (synced to disk before it returns).
    pub fn append(
        &self,
        blocks: &[(Block, BlockOutcome)],
        ledger: &mut Ledger,
    ) -> Result<Head, LedgerError> {
        self.append_with(blocks, ledger, Durability::Immediate)
            .map_err(|e| storage_at("writing", &self.path, e))
    }

    fn append_with(
        &self,
        blocks: &[(Block, BlockOutcome)],
        ledger: &mut Ledger,
        durability: Durability,
    ) -> Result<Head, LedgerError> {
        let Db::Write(db) = &self.db else {
            return Err(LedgerError::Storage("the ledger is open read-only".into()));
        };
        let Some((last, last_outcome)) = blocks.last() else {
            return self
                .head()?
                .ok_or_else(|| LedgerError::Storage("nothing to append".into()));
        };
        if last.header.height != ledger.height() || last_outcome.state_root != ledger.state_root() {
            return Err(LedgerError::Storage(
                "the ledger is not at the last appended block".into(),
            ));
        }
        let planned = ledger.config().intervals_total;
        if last.header.height > planned {
            return Err(LedgerError::Storage(format!(
                "block {} is beyond the chain's planned length ({planned} blocks, genesis)",
                last.header.height
            )));
        }
        let first_height = self.head()?.map_or(0, |h| h.height + 1);
        let mut expect_parent = self.head()?.map_or([0; 32], |h| h.block_hash);
        for (expect_height, (block, _)) in (first_height..).zip(blocks) {
            if block.header.height != expect_height || block.header.parent_hash != expect_parent {
                return Err(LedgerError::Storage(format!(
                    "block {} does not follow the stored head",
                    block.header.height
                )));
            }
            expect_parent = block.hash();
        }
        let mut txn = db.begin_write().map_err(db_err)?;
        txn.set_durability(durability)
            .map_err(|e| LedgerError::Storage(e.to_string()))?;
        let keys: Vec<Vec<Vec<PublicKey>>> = blocks
            .iter()
            .map(|(b, _)| b.txs.iter().map(|t| index_keys(t)).collect())
            .collect();
        put_blocks(
            &txn,
            blocks
                .iter()
                .zip(&keys)
                .map(|((b, o), k)| (b, o, k.as_slice())),
        )?;
        let changes = ledger.take_changes();
        put_records(&txn, ledger, &changes, Earlier::Possible)?;
        put_head(&txn, last)?;
        txn.commit().map_err(db_err)?;
        self.head()?
            .ok_or_else(|| LedgerError::Storage("head missing after commit".into()))
    }

    /// A stored block.
    pub fn block(&self, height: u64) -> Result<Option<Block>, LedgerError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(BLOCK_PARTS).map_err(db_err)?;
        let Some(bytes) = read_stored_block(&t, height)? else {
            return Ok(None);
        };
        Block::decode(&bytes)
            .map(Some)
            .map_err(|source| LedgerError::Decode {
                what: format!("block {height}"),
                source,
            })
    }

    /// Stored result codes of a block (0 = applied) and the trades that expired at its start.
    pub fn outcome_codes(&self, height: u64) -> Result<Option<StoredOutcome>, LedgerError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(OUTCOMES).map_err(db_err)?;
        let Some(v) = t.get(height).map_err(db_err)? else {
            return Ok(None);
        };
        decode_outcome(v.value())
            .map(Some)
            .ok_or_else(|| LedgerError::Storage(format!("block {height}: outcome record corrupt")))
    }

    /// Stored rejected records of a block's settlement batches: `(tx index, record index,
    /// result code)` (empty when every record applied).
    pub fn outcome_record_rejects(&self, height: u64) -> Result<Vec<(u32, u32, u16)>, LedgerError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(OUTCOMES).map_err(db_err)?;
        let Some(v) = t.get(height).map_err(db_err)? else {
            return Ok(Vec::new());
        };
        decode_record_rejects(v.value())
            .ok_or_else(|| LedgerError::Storage(format!("block {height}: outcome record corrupt")))
    }

    /// A stored account and its transactions `(height, index, result code)`.
    pub fn account(
        &self,
        key: &PublicKey,
    ) -> Result<Option<(Account, Vec<AccountTx>)>, LedgerError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(ACCOUNTS).map_err(db_err)?;
        let Some(v) = t.get(key.as_slice()).map_err(db_err)? else {
            return Ok(None);
        };
        let account = Account::from_bytes(v.value()).map_err(|source| LedgerError::Decode {
            what: "account record".into(),
            source,
        })?;
        let idx = txn.open_table(ACCOUNT_TXS).map_err(db_err)?;
        let mut txs = Vec::new();
        let range = idx
            .range((key.as_slice(), 0u64, 0u32)..=(key.as_slice(), u64::MAX, u32::MAX))
            .map_err(db_err)?;
        for row in range {
            let (k, v) = row.map_err(db_err)?;
            let (_, h, i) = k.value();
            txs.push((h, i, v.value()));
        }
        Ok(Some((account, txs)))
    }

    /// Certificate ids owned by an account.
    pub fn certificates_of(&self, key: &PublicKey) -> Result<Vec<u64>, LedgerError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(ACCOUNT_CERTS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in t
            .range((key.as_slice(), 0u64)..=(key.as_slice(), u64::MAX))
            .map_err(db_err)?
        {
            out.push(row.map_err(db_err)?.0.value().1);
        }
        Ok(out)
    }

    /// A stored certificate.
    pub fn certificate(&self, id: u64) -> Result<Option<Certificate>, LedgerError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(CERTIFICATES).map_err(db_err)?;
        let Some(v) = t.get(id).map_err(db_err)? else {
            return Ok(None);
        };
        Certificate::from_bytes(v.value())
            .map(Some)
            .map_err(|source| LedgerError::Decode {
                what: format!("certificate {id}"),
                source,
            })
    }

    /// Replay the stored chain into a ledger, verifying everything (see [`Store::verify`]).
    pub fn load(&self) -> Result<(Ledger, VerifyReport), LedgerError> {
        let head = self.head()?.ok_or_else(|| {
            LedgerError::Storage("no head record: empty or corrupt ledger".into())
        })?;
        let txn = self.db.begin_read().map_err(db_err)?;
        let t_blocks = txn.open_table(BLOCK_PARTS).map_err(db_err)?;
        let t_outcomes = txn.open_table(OUTCOMES).map_err(db_err)?;
        // Blocks 0..=head are each read below (a missing one is an error): none may follow.
        let last = t_blocks.last().map_err(db_err)?.map(|(k, _)| k.value().0);
        if last != Some(head.height) {
            return Err(LedgerError::Storage(format!(
                "the last stored block is {last:?} but the head is at height {}",
                head.height
            )));
        }
        let read_block = |height: u64| -> Result<Block, LedgerError> {
            let bytes =
                read_stored_block(&t_blocks, height)?.ok_or_else(|| LedgerError::BadBlock {
                    height,
                    reason: "missing".into(),
                })?;
            let block = Block::decode(&bytes).map_err(|e| LedgerError::BadBlock {
                height,
                reason: format!("does not decode: {e}"),
            })?;
            if block.header.height != height {
                return Err(LedgerError::BadBlock {
                    height,
                    reason: format!(
                        "stored under height {height} but says {}",
                        block.header.height
                    ),
                });
            }
            Ok(block)
        };
        let mut replay = Replay {
            checker: InvariantChecker::default(),
            expected_index: BTreeSet::new(),
            transactions: 0,
            rejected: 0,
        };
        let genesis = read_block(0)?;
        let (mut ledger, outcome) = Ledger::from_genesis_block(&genesis)?;
        replay.block(&t_outcomes, &mut ledger, &genesis, &outcome, Vec::new())?;
        let chain_id = ledger.config().chain_id;
        let window = verify_window();
        let mut next = 1;
        while next <= head.height {
            let last = head.height.min(next.saturating_add(window - 1));
            let blocks = (next..=last)
                .map(read_block)
                .collect::<Result<Vec<Block>, LedgerError>>()?;
            // Signatures, decoding and transaction roots need no state: check the window's
            // blocks on all cores, then apply them in order.
            let keys = ledger.key_cache().clone();
            let checked: Vec<CheckedBlock<'_>> = blocks
                .par_iter()
                .map(|b| CheckedBlock::new(chain_id, b, &keys))
                .collect();
            for c in checked {
                let block = c.block();
                let index: Vec<Vec<PublicKey>> = block
                    .txs
                    .iter()
                    .zip(c.decoded())
                    .map(|(bytes, d)| match d {
                        Ok(tx) => tx.involved_keys(),
                        Err(_) => index_keys(bytes),
                    })
                    .collect();
                let outcome = ledger.apply_checked_block(c)?;
                replay.block(&t_outcomes, &mut ledger, block, &outcome, index)?;
            }
            next = last + 1;
        }
        let Replay {
            expected_index,
            transactions,
            rejected,
            ..
        } = replay;
        // The O(state) from-scratch check (including rebuilding every Merkle tree) once, at the end.
        ledger
            .check_invariants()
            .map_err(|detail| LedgerError::Invariant {
                height: head.height,
                detail,
            })?;
        if ledger.head_hash() != head.block_hash || ledger.state_root() != head.state_root {
            return Err(LedgerError::Storage(format!(
                "head record (height {}) does not match the replayed chain",
                head.height
            )));
        }
        self.compare_state(&ledger, &expected_index)?;
        let planned = ledger.config().intervals_total;
        if ledger.height() > planned {
            return Err(LedgerError::Storage(format!(
                "the chain is at height {} but its genesis plans {planned} blocks",
                ledger.height()
            )));
        }
        let report = VerifyReport {
            height: ledger.height(),
            head_hash: ledger.head_hash(),
            state_root: ledger.state_root(),
            transactions,
            rejected,
            accounts: ledger.accounts().count() as u64,
            certificates: ledger.certificates().len() as u64,
            trades: ledger.trades().count() as u64,
            intervals_total: planned,
            simulation_key_seed: ledger.config().simulation_key_seed,
        };
        Ok((ledger, report))
    }

    /// Full verification: replay from genesis checking every signature, hash, Merkle root, state
    /// root and invariant, then compare every stored record and index with the replay. The error
    /// names the first bad block (and transaction where it can).
    pub fn verify(&self) -> Result<VerifyReport, LedgerError> {
        self.load().map(|(_, r)| r)
    }

    fn compare_state(
        &self,
        ledger: &Ledger,
        expected_index: &BTreeSet<(PublicKey, u64, u32, u16)>,
    ) -> Result<(), LedgerError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let bad = |what: String| {
            LedgerError::Storage(format!("stored state differs from the replay: {what}"))
        };
        let t = txn.open_table(ACCOUNTS).map_err(db_err)?;
        if t.len().map_err(db_err)? != ledger.accounts().count() as u64 {
            return Err(bad("account count".into()));
        }
        for a in ledger.accounts() {
            let v = t.get(a.key.as_slice()).map_err(db_err)?;
            if v.as_ref().map(|g| g.value()) != Some(a.to_bytes().as_slice()) {
                return Err(bad(format!("account {}", to_hex(&a.key))));
            }
        }
        let t = txn.open_table(CERTIFICATES).map_err(db_err)?;
        if t.len().map_err(db_err)? != ledger.certificates().len() as u64 {
            return Err(bad("certificate count".into()));
        }
        for c in ledger.certificates() {
            let v = t.get(c.id).map_err(db_err)?;
            if v.as_ref().map(|g| g.value()) != Some(c.to_bytes().as_slice()) {
                return Err(bad(format!("certificate {}", c.id)));
            }
        }
        let t = txn.open_table(ACCOUNT_CERTS).map_err(db_err)?;
        let mut owners = BTreeSet::new();
        for row in t.iter().map_err(db_err)? {
            let (k, _) = row.map_err(db_err)?;
            let (key, id) = k.value();
            owners.insert((key.to_vec(), id));
        }
        let expect: BTreeSet<(Vec<u8>, u64)> = ledger
            .certificates()
            .iter()
            .map(|c| (c.owner.to_vec(), c.id))
            .collect();
        if owners != expect {
            return Err(bad("certificate owner index".into()));
        }
        let t = txn.open_table(TRADES).map_err(db_err)?;
        if t.len().map_err(db_err)? != ledger.trades().count() as u64 {
            return Err(bad("trade count".into()));
        }
        for tr in ledger.trades() {
            let v = t.get(tr.id).map_err(db_err)?;
            if v.as_ref().map(|g| g.value()) != Some(tr.to_bytes().as_slice()) {
                return Err(bad(format!("trade {}", tr.id)));
            }
        }
        let t = txn.open_table(ACCOUNT_TXS).map_err(db_err)?;
        if t.len().map_err(db_err)? != expected_index.len() as u64 {
            return Err(bad("account index size".into()));
        }
        for row in t.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let (key, h, i) = k.value();
            let Ok(key) = <PublicKey>::try_from(key) else {
                return Err(bad("account index key".into()));
            };
            if !expected_index.contains(&(key, h, i, v.value())) {
                return Err(bad(format!("account index entry at block {h} tx {i}")));
            }
        }
        Ok(())
    }
}

/// Write blocks, their outcomes and the per-account index entries of their transactions
/// (`keys`: per transaction of the block, the keys it involves, see [`index_keys`]; passed in
/// so that a caller that has decoded the transactions does not decode them again). The
/// blocks are compressed on all cores ([`stored_block`]) before the (serial) inserts.
fn put_blocks<'b>(
    txn: &WriteTransaction,
    blocks: impl Iterator<Item = (&'b Block, &'b BlockOutcome, &'b [Vec<PublicKey>])>,
) -> Result<(), LedgerError> {
    let blocks: Vec<_> = blocks.collect();
    let mut tables = BlockTables {
        blocks: txn.open_table(BLOCK_PARTS).map_err(db_err)?,
        outcomes: txn.open_table(OUTCOMES).map_err(db_err)?,
        index: txn.open_table(ACCOUNT_TXS).map_err(db_err)?,
    };
    // A few blocks per core at a time: the compressed copies are not all held at once.
    let at_once = 4 * rayon::current_num_threads();
    for group in blocks.chunks(at_once) {
        let stored = group
            .par_iter()
            .map(|(b, _, _)| stored_block(b))
            .collect::<Result<Vec<Vec<u8>>, LedgerError>>()?;
        for (&(block, outcome, keys), stored) in group.iter().zip(stored) {
            tables.put(block, &stored, outcome, keys)?;
        }
    }
    Ok(())
}

/// The tables a block is written to.
struct BlockTables<'t> {
    blocks: redb::Table<'t, (u64, u32), &'static [u8]>,
    outcomes: redb::Table<'t, u64, &'static [u8]>,
    index: redb::Table<'t, (&'static [u8], u64, u32), u16>,
}

impl BlockTables<'_> {
    /// Insert one block (`stored`: its [`stored_block`] bytes), its outcome and index entries.
    fn put(
        &mut self,
        block: &Block,
        stored: &[u8],
        outcome: &BlockOutcome,
        keys: &[Vec<PublicKey>],
    ) -> Result<(), LedgerError> {
        let height = block.header.height;
        for (part, piece) in (0u32..).zip(stored.chunks(BLOCK_PART_LEN)) {
            self.blocks.insert((height, part), piece).map_err(db_err)?;
        }
        self.outcomes
            .insert(height, outcome.encode_results().as_slice())
            .map_err(db_err)?;
        assert_eq!(
            keys.len(),
            block.txs.len(),
            "index keys for every transaction"
        );
        for (i, (tx_keys, code)) in keys.iter().zip(outcome.codes()).enumerate() {
            for key in tx_keys {
                self.index
                    .insert((key.as_slice(), height, i as u32), code)
                    .map_err(db_err)?;
            }
        }
        Ok(())
    }
}

/// Write the records `changes` names as `ledger` holds them (certificates with their owner
/// index entry, moved when the owner changed).
/// Whether the tables [`put_records`] writes may already hold earlier versions of the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Earlier {
    /// An existing chain: a certificate whose owner changed moves its owner index entry.
    Possible,
    /// A new file (the settled year's single write): nothing to look up or move.
    None,
}

fn put_records(
    txn: &WriteTransaction,
    ledger: &Ledger,
    changes: &Changes,
    earlier: Earlier,
) -> Result<(), LedgerError> {
    let mut t_accounts = txn.open_table(ACCOUNTS).map_err(db_err)?;
    for key in &changes.accounts {
        if let Some(a) = ledger.account(key) {
            t_accounts
                .insert(key.as_slice(), a.to_bytes().as_slice())
                .map_err(db_err)?;
        }
    }
    let mut t_certs = txn.open_table(CERTIFICATES).map_err(db_err)?;
    let mut t_owner = txn.open_table(ACCOUNT_CERTS).map_err(db_err)?;
    for id in &changes.certificates {
        let Some(c) = ledger.certificate(*id) else {
            continue;
        };
        if earlier == Earlier::Possible {
            let old_owner = t_certs
                .get(*id)
                .map_err(db_err)?
                .and_then(|v| Certificate::from_bytes(v.value()).ok())
                .map(|old| old.owner);
            if let Some(old) = old_owner {
                t_owner.remove((old.as_slice(), *id)).map_err(db_err)?;
            }
        }
        t_owner
            .insert((c.owner.as_slice(), *id), ())
            .map_err(db_err)?;
        t_certs
            .insert(*id, c.to_bytes().as_slice())
            .map_err(db_err)?;
    }
    let mut t_trades = txn.open_table(TRADES).map_err(db_err)?;
    for id in &changes.trades {
        if let Some(t) = ledger.trade(*id) {
            t_trades
                .insert(*id, t.to_bytes().as_slice())
                .map_err(db_err)?;
        }
    }
    Ok(())
}

/// Move the head to `last`.
fn put_head(txn: &WriteTransaction, last: &Block) -> Result<(), LedgerError> {
    put_head_at(
        txn,
        Head {
            height: last.header.height,
            block_hash: last.hash(),
            state_root: last.header.state_root,
        },
    )
}

/// Move the head to `head`.
fn put_head_at(txn: &WriteTransaction, head: Head) -> Result<(), LedgerError> {
    let mut meta = txn.open_table(META).map_err(db_err)?;
    meta.insert("head", head.to_bytes().as_slice())
        .map_err(db_err)?;
    Ok(())
}

/// Blocks verified at once by [`Store::load`], at most: their signature checks run in
/// parallel, and the window's blocks are held decoded meanwhile.
pub const VERIFY_WINDOW: u64 = 512;
/// Blocks per core of a window of [`Store::load`]: enough to keep every core busy, few enough
/// that a city's blocks (megabytes each, several times that decoded) are not all held at once
/// (a window of the whole year verified the 10,000-member city's 1.26 GB ledger in 10.4 GB).
const VERIFY_BLOCKS_PER_CORE: u64 = 4;

/// Blocks [`Store::load`] verifies at once on this machine.
fn verify_window() -> u64 {
    (VERIFY_BLOCKS_PER_CORE * rayon::current_num_threads() as u64).clamp(1, VERIFY_WINDOW)
}

/// What [`Store::load`] accumulates while replaying.
struct Replay {
    checker: InvariantChecker,
    expected_index: BTreeSet<(PublicKey, u64, u32, u16)>,
    transactions: u64,
    rejected: u64,
}

impl Replay {
    /// After `block` was applied with `outcome`: check the invariants and the stored outcome,
    /// and note the index entries the block implies (`index`: per transaction, the keys it
    /// involves).
    fn block(
        &mut self,
        t_outcomes: &redb::ReadOnlyTable<u64, &[u8]>,
        ledger: &mut Ledger,
        block: &Block,
        outcome: &BlockOutcome,
        index: Vec<Vec<PublicKey>>,
    ) -> Result<(), LedgerError> {
        let height = block.header.height;
        let changes = ledger.take_changes();
        self.checker
            .check(ledger, &changes)
            .map_err(|detail| LedgerError::Invariant { height, detail })?;
        let stored = t_outcomes
            .get(height)
            .map_err(db_err)?
            .map(|v| v.value().to_vec());
        if stored.as_deref() != Some(outcome.encode_results().as_slice()) {
            let detail = stored
                .as_deref()
                .and_then(decode_outcome)
                .and_then(|(codes, _)| {
                    codes
                        .iter()
                        .zip(outcome.codes())
                        .position(|(a, b)| *a != b)
                        .map(|i| format!("tx {i}: stored result differs from the replay"))
                })
                .unwrap_or_else(|| "stored outcome record differs from the replay".into());
            return Err(LedgerError::BadBlock {
                height,
                reason: detail,
            });
        }
        for (i, (keys, code)) in index.into_iter().zip(outcome.codes()).enumerate() {
            for key in keys {
                self.expected_index.insert((key, height, i as u32, code));
            }
        }
        self.transactions += block.txs.len() as u64;
        self.rejected += outcome.rejected() as u64;
        Ok(())
    }
}

/// Open `dir` and verify it (see [`Store::verify`]), turning a panic inside the storage engine on
/// a corrupt file (redb can panic on some damaged pages) into a [`LedgerError::Storage`], so a
/// flipped bit is always reported as an error value.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, LedgerError> {
    let run = std::panic::AssertUnwindSafe(|| Store::open_read_only(dir)?.verify());
    match std::panic::catch_unwind(run) {
        Ok(r) => r,
        Err(payload) => Err(LedgerError::Storage(format!(
            "{}: the database is corrupt (storage engine failed: {})",
            dir.join(DB_FILE).display(),
            panic_text(payload.as_ref())
        ))),
    }
}

/// The message of a caught panic.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// The keys a stored transaction is indexed under (none if it does not decode).
fn index_keys(bytes: &[u8]) -> Vec<PublicKey> {
    Tx::decode(bytes)
        .map(|t| t.involved_keys())
        .unwrap_or_default()
}

fn decode_outcome(b: &[u8]) -> Option<StoredOutcome> {
    let mut r = crate::codec::Reader::new(b);
    let n = r.u32("count").ok()? as usize;
    let mut codes = Vec::with_capacity(n.min(b.len() / 2));
    for _ in 0..n {
        codes.push(r.u16("code").ok()?);
    }
    let m = r.u32("expired").ok()? as usize;
    let mut expired = Vec::with_capacity(m.min(b.len() / 16));
    for _ in 0..m {
        expired.push(r.u128("trade").ok()?);
    }
    // Rejected batch records, when there are any (see `BlockOutcome::encode_results`).
    if r.remaining() > 0 {
        let k = r.u32("records").ok()? as usize;
        r.take(k.checked_mul(10)?, "record_rejects").ok()?;
    }
    r.finish().ok()?;
    Some((codes, expired))
}

/// The rejected-records section of a stored outcome (see `BlockOutcome::encode_results`).
fn decode_record_rejects(b: &[u8]) -> Option<Vec<(u32, u32, u16)>> {
    let mut r = crate::codec::Reader::new(b);
    let n = r.u32("count").ok()? as usize;
    r.take(n.checked_mul(2)?, "codes").ok()?;
    let m = r.u32("expired").ok()? as usize;
    r.take(m.checked_mul(16)?, "expired").ok()?;
    let mut out = Vec::new();
    if r.remaining() > 0 {
        let k = r.u32("records").ok()? as usize;
        for _ in 0..k {
            out.push((
                r.u32("tx").ok()?,
                r.u32("record").ok()?,
                r.u16("code").ok()?,
            ));
        }
    }
    r.finish().ok()?;
    Some(out)
}

/// The database file of a ledger directory, or an error saying which of the two is missing.
fn existing_db(dir: &Path) -> Result<PathBuf, LedgerError> {
    if !dir.is_dir() {
        let what = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        return Err(LedgerError::Storage(format!("{} {what}", dir.display())));
    }
    let path = dir.join(DB_FILE);
    if !path.is_file() {
        return Err(LedgerError::Storage(format!(
            "{} does not exist (not a ledger directory)",
            path.display()
        )));
    }
    Ok(path)
}

/// Write a chain (genesis first, e.g. from [`settlement::settle_year`]) to a new ledger
/// directory, applying and checking every block on the way; `verify` on it then passes.
/// Blocks are committed in groups of [`GROUP_BLOCKS`] per write transaction (each one atomic);
/// only the last commit syncs to disk (which makes every earlier group durable too). Then the
/// file is compacted.
pub fn write_blocks(dir: &Path, blocks: &[Block]) -> Result<Head, LedgerError> {
    std::fs::create_dir_all(dir).map_err(|e| at_path("creating", dir, e))?;
    let path = dir.join(DB_FILE);
    let head = write_chain(&path, blocks)?;
    compact(&path)?;
    Ok(head)
}

fn write_chain(path: &Path, blocks: &[Block]) -> Result<Head, LedgerError> {
    let Some((genesis, rest)) = blocks.split_first() else {
        return Err(LedgerError::Storage("no blocks to write".into()));
    };
    let store = Store::create_file(path)?;
    let (mut ledger, outcome) = Ledger::from_genesis_block(genesis)?;
    let durability = |last: bool| {
        if last {
            Durability::Immediate
        } else {
            Durability::None
        }
    };
    let append = |applied: &[(Block, BlockOutcome)], ledger: &mut Ledger, last: bool| {
        store
            .append_with(applied, ledger, durability(last))
            .map_err(|e| storage_at("writing", path, e))
    };
    let mut head = append(&[(genesis.clone(), outcome)], &mut ledger, rest.is_empty())?;
    let groups = rest.len().div_ceil(GROUP_BLOCKS);
    for (g, chunk) in rest.chunks(GROUP_BLOCKS).enumerate() {
        let mut applied = Vec::with_capacity(chunk.len());
        for b in chunk {
            let o = ledger.apply_block(b)?;
            applied.push((b.clone(), o));
        }
        head = append(&applied, &mut ledger, g + 1 == groups)?;
    }
    Ok(head)
}

/// A chain its producer has just built and applied ([`settlement::settle_year`], or block by
/// block as [`settlement::settle_stream_into`] hands them on), written to a new file in a
/// ledger directory without replaying the year: the producer signed and applied every
/// transaction, and `scg ledger verify` replays it all. Each [`StoreWriter::append`] checks
/// its blocks first (heights and hash links from the genesis, outcome and transaction roots,
/// every transaction still decoding), so what is stored is what the producer applied, and
/// commits them without syncing; [`StoreWriter::finish`] checks that the producer's ledger is
/// at the last block, writes its final records and the head in the one commit synced to disk
/// (which makes the earlier ones durable too), compacts the file and renames it over
/// `ledger.redb`. Until then the previous ledger stays whole; a writer dropped before
/// `finish` (the year failed) removes its file.
pub struct StoreWriter {
    dir: PathBuf,
    /// The file being written (`.ledger.redb.tmp-PID`); `None` once renamed into place.
    tmp: Option<PathBuf>,
    /// `None` only while `finish` compacts the file.
    store: Option<Store>,
    /// The genesis's configuration, once appended.
    config: Option<crate::GenesisConfig>,
    /// The last block appended.
    last: Option<Head>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter")
            .field("dir", &self.dir)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl StoreWriter {
    /// Start a new ledger file in `dir` (created if needed; a stale temporary file of this
    /// process is replaced).
    pub fn create(dir: &Path) -> Result<Self, LedgerError> {
        std::fs::create_dir_all(dir).map_err(|e| at_path("creating", dir, e))?;
        let tmp = dir.join(format!(".{DB_FILE}.tmp-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_file(&tmp).map_err(|e| at_path("removing", &tmp, e))?;
        }
        let store = Store::create_file(&tmp)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            tmp: Some(tmp),
            store: Some(store),
            config: None,
            last: None,
        })
    }

    /// Check and write the next `blocks` (the genesis first in the first call) with their
    /// producer's `outcomes`, in one write transaction that is not synced.
    pub fn append(
        &mut self,
        blocks: &[Block],
        outcomes: &[BlockOutcome],
    ) -> Result<(), LedgerError> {
        let keys = self.check(blocks, outcomes)?;
        self.commit(Durability::None, |txn| {
            let rows = blocks.iter().zip(outcomes).zip(&keys);
            put_blocks(txn, rows.map(|((b, o), k)| (b, o, k.as_slice())))
        })
    }

    /// One write transaction of `write`, committed with `durability`; errors name the file.
    fn commit(
        &self,
        durability: Durability,
        write: impl FnOnce(&WriteTransaction) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let store = self.open()?;
        let Db::Write(db) = &store.db else {
            return Err(LedgerError::Storage("the ledger is open read-only".into()));
        };
        let run = || -> Result<(), LedgerError> {
            let mut txn = db.begin_write().map_err(db_err)?;
            txn.set_durability(durability)
                .map_err(|e| LedgerError::Storage(e.to_string()))?;
            write(&txn)?;
            txn.commit().map_err(db_err)
        };
        run().map_err(|e| storage_at("writing", &store.path, e))
    }

    /// The open store.
    fn open(&self) -> Result<&Store, LedgerError> {
        self.store
            .as_ref()
            .ok_or_else(|| LedgerError::Storage("the ledger file is closed".into()))
    }

    /// Check that `blocks` follow the blocks appended so far as their producer made them (see
    /// the type's doc), and return, per block and transaction, the keys it involves (the
    /// account index entries, from the one decode of the check).
    fn check(
        &mut self,
        blocks: &[Block],
        outcomes: &[BlockOutcome],
    ) -> Result<Vec<Vec<Vec<PublicKey>>>, LedgerError> {
        let bad = not_produced;
        if blocks.len() != outcomes.len() {
            return Err(LedgerError::Storage(format!(
                "{} blocks but {} outcomes",
                blocks.len(),
                outcomes.len()
            )));
        }
        if let (None, Some(genesis)) = (&self.config, blocks.first()) {
            let Some(config) = &genesis.genesis else {
                return Err(bad(
                    genesis.header.height,
                    "the chain does not start with a genesis",
                ));
            };
            Ledger::from_genesis_block(genesis)?;
            self.config = Some(config.clone());
        }
        let planned = self.config.as_ref().map_or(0, |c| c.intervals_total);
        if let Some(b) = blocks
            .par_iter()
            .find_first(|b| b.computed_tx_root() != b.header.tx_root)
        {
            return Err(bad(b.header.height, "transaction root mismatch"));
        }
        // The root commits a settlement batch's payload through the batch root, which only
        // decoding checks: every transaction the producer applied must still decode. The same
        // decode gives the keys of the account index (what `index_keys` would decode again).
        let keys: Vec<Option<Vec<Vec<PublicKey>>>> = blocks
            .par_iter()
            .zip(outcomes)
            .map(|(b, o)| {
                b.txs
                    .iter()
                    .enumerate()
                    .map(|(i, t)| match (Tx::decode(t), o.results.get(i)) {
                        (Ok(tx), _) => Some(tx.involved_keys()),
                        (Err(_), Some(Ok(()))) => None,
                        (Err(_), _) => Some(Vec::new()),
                    })
                    .collect()
            })
            .collect();
        if let Some((b, _)) = blocks.iter().zip(&keys).find(|(_, k)| k.is_none()) {
            return Err(bad(
                b.header.height,
                "a transaction no longer decodes (batch payload changed)",
            ));
        }
        for (b, o) in blocks.iter().zip(outcomes) {
            let h = &b.header;
            let hash = b.hash();
            let height = self.last.map_or(0, |l| l.height + 1);
            if h.height != height
                || o.height != h.height
                || self.last.is_some_and(|l| l.block_hash != h.parent_hash)
                || o.block_hash != hash
                || o.state_root != h.state_root
                || outcome_root_with_records(&o.codes(), &o.record_codes()) != h.outcome_root
            {
                return Err(bad(height, "header, outcome or parent hash mismatch"));
            }
            if h.height > planned {
                return Err(LedgerError::Storage(format!(
                    "block {} is beyond the chain's planned length ({planned} blocks, genesis)",
                    h.height
                )));
            }
            self.last = Some(Head {
                height: h.height,
                block_hash: hash,
                state_root: h.state_root,
            });
        }
        Ok(keys.into_iter().flatten().collect())
    }

    /// Check that `ledger` (the producer's, after its last block) is at the last block
    /// appended, write its records and the head in the one synced commit, compact the file and
    /// rename it over `ledger.redb`.
    pub fn finish(mut self, ledger: &Ledger) -> Result<Head, LedgerError> {
        let bad = not_produced;
        let Some(last) = self.last else {
            return Err(LedgerError::Storage("no blocks to write".into()));
        };
        if self.config.as_ref() != Some(ledger.config()) {
            return Err(bad(0, "genesis of another configuration"));
        }
        if last.block_hash != ledger.head_hash() || last.state_root != ledger.state_root() {
            return Err(bad(ledger.height(), "the ledger is not at the last block"));
        }
        self.commit(Durability::Immediate, |txn| {
            // A new file: no earlier records to look up.
            put_records(txn, ledger, &all_records(ledger), Earlier::None)?;
            put_head_at(txn, last)
        })?;
        let store = self.open()?;
        let head = store
            .head()?
            .ok_or_else(|| at_path("writing", &store.path, "head missing after commit"))?;
        // Closed before compacting: redb opens a file once.
        self.store = None;
        let Some(tmp) = self.tmp.clone() else {
            return Err(LedgerError::Storage("the ledger file is gone".into()));
        };
        compact(&tmp)?;
        let path = self.dir.join(DB_FILE);
        std::fs::rename(&tmp, &path).map_err(|e| at_path("renaming into place", &path, e))?;
        self.tmp = None;
        // The rename is durable once the directory is synced.
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| at_path("syncing", &self.dir, e))?;
        Ok(head)
    }
}

/// A block that is not the one the settlement produced.
fn not_produced(height: u64, reason: &str) -> LedgerError {
    LedgerError::BadBlock {
        height,
        reason: format!("not the block the settlement produced: {reason}"),
    }
}

impl Drop for StoreWriter {
    /// A writer not finished leaves no file behind (best effort: the error that matters is
    /// the one that stopped it).
    fn drop(&mut self) {
        self.store = None;
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Every account, trade and certificate of `ledger`, as a change set.
fn all_records(ledger: &Ledger) -> Changes {
    Changes {
        accounts: ledger.accounts().map(|a| a.key).collect(),
        trades: ledger.trades().map(|t| t.id).collect(),
        certificates: ledger.certificates().iter().map(|c| c.id).collect(),
        reports: BTreeSet::new(),
    }
}

/// Give the free pages of a freshly written file back (redb's copy-on-write leaves the pages
/// of the B-trees' earlier versions free; the saving was not measured apart from the parts').
fn compact(path: &Path) -> Result<(), LedgerError> {
    let mut db = Database::open(path).map_err(|e| at_path("opening", path, e))?;
    while db.compact().map_err(|e| at_path("compacting", path, e))? {}
    Ok(())
}

/// Write a settled year (see [`settlement::settle_year`]) to `dir` as `ledger.redb`, replacing
/// a previous one atomically: the chain is written to a temporary file in `dir`, synced, and
/// renamed over `ledger.redb`, so a crash or a full disk leaves the previous ledger whole (plus
/// at most a stale `.ledger.redb.tmp-PID` file).
pub fn store(dir: &Path, settled: &settlement::SettledYear) -> Result<Head, LedgerError> {
    let (outcomes, ledger) = settled.produced();
    let mut writer = StoreWriter::create(dir)?;
    writer.append(&settled.blocks, outcomes)?;
    writer.finish(ledger)
}
