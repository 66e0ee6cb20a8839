//! `scg ledger verify|show`: check a RESCoin ledger directory by full replay, or print its
//! blocks, accounts and certificates for people.
//!
//! Both open the database read-only (they never change the file and work on read-only media).
//! `verify` exits 1 when the chain is shorter than its genesis says ("incomplete: height H of
//! N"). Output goes through one locked stdout; a reader that closes the pipe early (`| head`)
//! ends the command quietly with success.

use anyhow::{Context, bail};
use scg_ledger::merkle::{from_hex, to_hex};
use scg_ledger::store::{Completeness, Store};
use scg_ledger::tx::tx_leaf;
use scg_ledger::{Reject, Tx, TxBody};
use scg_units::Rescoin;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Replay the ledger from genesis, checking every signature, hash, Merkle root, state root
    /// and invariant; print the final height and state root, and whether the chain has every
    /// block its genesis announces. Exits 1 naming the first bad block/transaction, or when
    /// the chain is incomplete. Opens the database read-only.
    ///
    /// On a member node's directory (holding chain.redb, from `scg chain run`) it also checks
    /// every finalization certificate against the genesis validator set and prints the
    /// finalized height.
    Verify {
        /// Ledger directory (holding ledger.redb, e.g. OUT/ledger), or a member node's
        /// directory (holding chain.redb).
        dir: PathBuf,
        /// Member nodes only: the chain's genesis file to check the certificates against
        /// [default: the copy the node keeps in DIR/genesis.toml].
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
    /// Print the ledger head, or one account, block or certificate.
    Show {
        /// Ledger directory (holding ledger.redb).
        dir: PathBuf,
        /// An account: ed25519 public key (64 hex digits), or a member id on a chain settled
        /// by `scg simulate` (e.g. `apartment`).
        #[arg(long, conflicts_with_all = ["block", "certificate"])]
        account: Option<String>,
        /// A block by height.
        #[arg(long, conflicts_with = "certificate")]
        block: Option<u64>,
        /// An origin certificate by id.
        #[arg(long)]
        certificate: Option<u64>,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    // A damaged database file can make the storage engine panic; that is bad input, so report
    // it as an error (exit 1) instead of a crash, without the panic's own stderr noise.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_inner(cmd)));
    std::panic::set_hook(hook);
    let result = match result {
        Ok(r) => r,
        Err(payload) => Err(anyhow::anyhow!(
            "the ledger database is corrupt (storage engine failed: {})",
            scg_ledger::store::panic_text(payload.as_ref())
        )),
    };
    match result {
        // The reader went away (`| head`): what it wanted was printed.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run_inner(cmd: Command) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::Verify { dir, genesis } => {
            check_exists(&dir)?;
            if scg_chain::store::is_node_dir(&dir) {
                verify_node(&dir, genesis.as_deref(), &mut out)
            } else if genesis.is_some() {
                bail!(
                    "--genesis applies to member node directories; {} holds no {}",
                    dir.display(),
                    scg_chain::store::STORE_FILE
                )
            } else {
                verify(&dir, &mut out)
            }
        }
        Command::Show {
            dir,
            account,
            block,
            certificate,
        } => {
            let store = open(&dir)?;
            if let Some(key) = account {
                show_account(&store, &key, &mut out)?;
            } else if let Some(h) = block {
                show_block(&store, h, &mut out)?;
            } else if let Some(id) = certificate {
                show_certificate(&store, id, &mut out)?;
            } else {
                show_head(&store, &mut out)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A missing directory is "does not exist", never "does not verify".
fn check_exists(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        bail!("ledger directory {} does not exist", dir.display());
    }
    Ok(())
}

fn open(dir: &Path) -> anyhow::Result<Store> {
    check_exists(dir)?;
    Store::open_read_only(dir).with_context(|| format!("cannot open ledger {}", dir.display()))
}

fn verify(dir: &Path, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    check_exists(dir)?;
    let report = scg_ledger::store::verify_dir(dir)
        .with_context(|| format!("ledger {} does not verify", dir.display()))?;
    let incomplete = matches!(report.completeness(), Completeness::Incomplete { .. });
    if !incomplete {
        writeln!(out, "ok: {}", dir.display())?;
    }
    writeln!(out, "{report}")?;
    out.flush()?;
    if incomplete {
        bail!(
            "ledger {} is {}: every block verifies, but the chain ends before the last block its genesis announces (an interrupted write)",
            dir.display(),
            report.completeness()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A member node's directory: certificates against the genesis validators, full replay.
fn verify_node(
    dir: &Path,
    genesis: Option<&Path>,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let r = scg_chain::verify::verify_node_dir(dir, genesis)
        .with_context(|| format!("member chain {} does not verify", dir.display()))?;
    let source = if r.genesis_from_dir {
        " (the node's own copy; compare the chain id with the one you expect)"
    } else {
        ""
    };
    writeln!(out, "ok: {}", dir.display())?;
    writeln!(out, "genesis {}{source}", r.genesis.display())?;
    writeln!(out, "chain id {}", r.report.chain_id)?;
    writeln!(out, "finalized height {}", r.report.finalized_height)?;
    writeln!(out, "state root {}", r.report.state_root)?;
    writeln!(out, "blocks {}", r.report.blocks)?;
    writeln!(out, "transactions {}", r.report.transactions)?;
    writeln!(out, "certificates {}", r.report.certificates)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn show_head(store: &Store, out: &mut impl Write) -> anyhow::Result<()> {
    let Some(head) = store.head()? else {
        bail!("{}: no blocks yet", store.path().display());
    };
    writeln!(out, "ledger {}", store.path().display())?;
    writeln!(out, "height {}", head.height)?;
    writeln!(out, "head hash {}", to_hex(&head.block_hash))?;
    writeln!(out, "state root {}", to_hex(&head.state_root))?;
    if let Some(genesis) = store.block(0)?.and_then(|b| b.genesis) {
        writeln!(out, "chain id {}", genesis.chain_id)?;
        writeln!(out, "operator {}", to_hex(&genesis.operator))?;
        writeln!(out, "treasury {}", to_hex(&genesis.treasury))?;
        writeln!(out, "grid {}", to_hex(&genesis.grid))?;
        writeln!(
            out,
            "mint rate {} base units per renewable Wh",
            genesis.mint_rate_base_per_wh
        )?;
        if genesis.intervals_total == scg_ledger::GenesisConfig::OPEN_ENDED {
            writeln!(out, "planned length: open-ended")?;
        } else {
            writeln!(out, "planned length {} blocks", genesis.intervals_total)?;
        }
        if let Some(seed) = genesis.simulation_key_seed {
            writeln!(
                out,
                "simulation chain: keys derived from seed {seed}, not secret"
            )?;
        }
    }
    writeln!(
        out,
        "(stored records; run `scg ledger verify` to check them)"
    )?;
    Ok(())
}

/// A public key from 64 hex digits, or a member id on a simulation chain (whose genesis
/// carries the seed its keys are derived from).
fn account_key(store: &Store, account: &str) -> anyhow::Result<[u8; 32]> {
    if let Some(key) = from_hex::<32>(account) {
        return Ok(key);
    }
    let seed = store
        .block(0)?
        .and_then(|g| g.genesis)
        .and_then(|g| g.simulation_key_seed);
    let Some(seed) = seed else {
        bail!(
            "--account: '{account}' is not 64 hex digits, and member ids resolve only on simulation chains"
        );
    };
    let key = scg_ledger::settlement::member_account(seed, account);
    match store.account(&key)? {
        Some((a, _)) if a.role == scg_ledger::Role::Member => Ok(key),
        _ => bail!("--account: '{account}' is neither 64 hex digits nor a member id of this chain"),
    }
}

fn show_account(store: &Store, key_hex: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let key = account_key(store, key_hex)?;
    let Some((a, txs)) = store.account(&key)? else {
        bail!("no account {key_hex}");
    };
    writeln!(out, "account {}", to_hex(&a.key))?;
    writeln!(out, "role {}", a.role.name())?;
    writeln!(
        out,
        "balance {} ({} base units)",
        Rescoin(a.balance),
        a.balance
    )?;
    writeln!(out, "reserved in pending trades {}", Rescoin(a.reserved))?;
    writeln!(out, "next nonce {}", a.nonce)?;
    if let (Some(owner), Some(device)) = (a.owner, a.device) {
        writeln!(out, "meter of {} ({})", to_hex(&owner), device.name())?;
    }
    let certs = store.certificates_of(&key)?;
    writeln!(out, "certificates owned {}", certs.len())?;
    writeln!(out, "transactions {}", txs.len())?;
    for (height, index, code) in txs.iter().rev().take(20) {
        writeln!(out, "  block {height} tx {index}: {}", result_text(*code))?;
    }
    if txs.len() > 20 {
        writeln!(out, "  ... ({} older)", txs.len() - 20)?;
    }
    account_records(store, &key, &txs, out)
}

/// The account's latest records in settlement batches, each with its Merkle proof checked:
/// record → its author's signed root → batch root → the block's transaction root.
fn account_records(
    store: &Store,
    key: &[u8; 32],
    txs: &[(u64, u32, u16)],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    const SHOWN: usize = 20;
    let chain_id = store
        .block(0)?
        .and_then(|g| g.genesis)
        .map_or(0, |g| g.chain_id);
    let mut shown = 0;
    let mut header = false;
    for (height, index, _) in txs.iter().rev() {
        if shown == SHOWN {
            break;
        }
        let Some(block) = store.block(*height)? else {
            continue;
        };
        let Some(bytes) = block.txs.get(*index as usize) else {
            continue;
        };
        let Ok(Tx {
            body: TxBody::SettlementBatch(batch),
            ..
        }) = Tx::decode(bytes)
        else {
            continue;
        };
        // The batch's committed part is a leaf of the block's transaction root.
        let leaves: Vec<_> = block.txs.iter().map(|t| tx_leaf(t)).collect();
        let in_block = scg_ledger::merkle::merkle_root(&leaves) == block.header.tx_root;
        let root = batch.root();
        let rejected = store.outcome_record_rejects(*height)?;
        for k in (0..batch.records.len()).rev() {
            if shown == SHOWN {
                break;
            }
            let r = &batch.records[k];
            let author = batch.signers[usize::from(r.signer)].key;
            let names = Tx {
                id: 0,
                signer: author,
                nonce: 0,
                body: r.body.clone(),
                signature: [0; 64],
            }
            .involved_keys();
            if !names.contains(key) {
                continue;
            }
            if !header {
                writeln!(
                    out,
                    "records in settlement batches (latest {SHOWN}, each with its Merkle proof checked)"
                )?;
                header = true;
            }
            let proof = batch.record_proof(k);
            let ok = in_block && proof.as_ref().is_some_and(|p| p.verify(chain_id, &root));
            let code = rejected
                .iter()
                .find(|(t, rec, _)| *t == *index && *rec as usize == k)
                .map_or(0, |(_, _, c)| *c);
            let path = proof.map_or(0, |p| {
                p.in_signer.siblings.len() + p.in_batch.siblings.len()
            });
            writeln!(
                out,
                "  block {height} tx {index} record {k} id {}: {} by {}{} -> {}; proof {} ({path} hashes to batch root {})",
                batch.record_id(k).unwrap_or(0),
                r.body.kind_name(),
                &to_hex(&author)[..16],
                detail(&r.body),
                result_text(code),
                if ok { "verified" } else { "FAILED" },
                &to_hex(&root)[..16],
            )?;
            shown += 1;
        }
    }
    Ok(())
}

fn show_block(store: &Store, height: u64, out: &mut impl Write) -> anyhow::Result<()> {
    let Some(block) = store.block(height)? else {
        bail!("no block {height}");
    };
    let h = &block.header;
    writeln!(out, "block {}", h.height)?;
    writeln!(out, "hash {}", to_hex(&block.hash()))?;
    writeln!(out, "parent {}", to_hex(&h.parent_hash))?;
    // ISO 8601 (UTC), with the raw Unix seconds the header stores.
    let iso = i64::try_from(h.timestamp_s)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || "out of range".to_owned(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    writeln!(out, "timestamp {iso} ({} s)", h.timestamp_s)?;
    writeln!(out, "tx root {}", to_hex(&h.tx_root))?;
    writeln!(out, "outcome root {}", to_hex(&h.outcome_root))?;
    writeln!(out, "state root {}", to_hex(&h.state_root))?;
    writeln!(out, "transactions {}", h.tx_count)?;
    let (codes, expired) = store.outcome_codes(height)?.unwrap_or_default();
    let rejected = store.outcome_record_rejects(height)?;
    if !expired.is_empty() {
        writeln!(out, "trades expired at block start {}", expired.len())?;
    }
    for (i, bytes) in block.txs.iter().enumerate() {
        let result = codes.get(i).map_or("?".to_string(), |c| result_text(*c));
        match Tx::decode(bytes) {
            Ok(tx) => {
                writeln!(
                    out,
                    "  tx {i}: {} id {} signer {} nonce {} -> {result}{}",
                    tx.body.kind_name(),
                    tx.id,
                    &to_hex(&tx.signer)[..16],
                    tx.nonce,
                    detail(&tx.body)
                )?;
                if let TxBody::SettlementBatch(b) = &tx.body {
                    for (k, r) in b.records.iter().enumerate() {
                        let code = rejected
                            .iter()
                            .find(|(t, rec, _)| *t as usize == i && *rec as usize == k)
                            .map_or(0, |(_, _, c)| *c);
                        writeln!(
                            out,
                            "    record {k} id {}: {} by {} -> {}{}",
                            b.record_id(k).unwrap_or(0),
                            r.body.kind_name(),
                            &to_hex(&b.signers[usize::from(r.signer)].key)[..16],
                            result_text(code),
                            detail(&r.body)
                        )?;
                    }
                }
            }
            Err(e) => writeln!(out, "  tx {i}: malformed ({e}) -> {result}")?,
        }
    }
    Ok(())
}

fn detail(body: &TxBody) -> String {
    match body {
        TxBody::MeterReport {
            interval,
            produced_wh,
            consumed_wh,
        } => {
            format!(" [interval {interval}: produced {produced_wh} Wh, consumed {consumed_wh} Wh]")
        }
        TxBody::Transfer { amount, .. } => format!(" [{}]", Rescoin(*amount)),
        TxBody::TradeCreate {
            energy_wh,
            price_base_per_kwh,
            ..
        } => format!(" [{energy_wh} Wh at {price_base_per_kwh} base/kWh]"),
        TxBody::TradePost { delivered_wh, .. } => format!(" [delivered {delivered_wh} Wh]"),
        TxBody::SettlementBatch(b) => format!(
            " [{} records, {} signers, batch root {}]",
            b.records.len(),
            b.signers.len(),
            &to_hex(&b.root())[..16]
        ),
        TxBody::CertificateMove { energy_wh, .. } => format!(" [{energy_wh} certified Wh]"),
        _ => String::new(),
    }
}

fn show_certificate(store: &Store, id: u64, out: &mut impl Write) -> anyhow::Result<()> {
    let Some(c) = store.certificate(id)? else {
        bail!("no certificate {id}");
    };
    writeln!(out, "certificate {}", c.id)?;
    if c.parent != 0 {
        writeln!(out, "split from certificate {}", c.parent)?;
    }
    writeln!(out, "source {} meter {}", c.device.name(), to_hex(&c.meter))?;
    writeln!(out, "producer {}", to_hex(&c.producer))?;
    writeln!(out, "interval {}", c.interval)?;
    writeln!(out, "owner {}", to_hex(&c.owner))?;
    writeln!(out, "held {} Wh, retired {} Wh", c.energy_wh, c.retired_wh)?;
    Ok(())
}

fn result_text(code: u16) -> String {
    if code == 0 {
        "applied".into()
    } else {
        Reject::from_code(code).map_or(format!("code {code}"), |r| format!("rejected: {r}"))
    }
}
