//! `scg ledger verify|show`: check a RESCoin ledger directory by full replay, or print its
//! blocks, accounts and certificates for people.

use anyhow::{Context, bail};
use scg_ledger::merkle::{from_hex, to_hex};
use scg_ledger::store::Store;
use scg_ledger::{Reject, Tx, TxBody};
use scg_units::Rescoin;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Replay the ledger from genesis, checking every signature, hash, Merkle root, state root
    /// and invariant; print the final height and state root. Exits 1 naming the first bad
    /// block/transaction.
    Verify {
        /// Ledger directory (holding ledger.redb), e.g. OUT/ledger.
        dir: PathBuf,
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
    match result {
        Ok(r) => r,
        Err(payload) => Err(anyhow::anyhow!(
            "the ledger database is corrupt (storage engine failed: {})",
            scg_ledger::store::panic_text(payload.as_ref())
        )),
    }
}

fn run_inner(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Verify { dir } => verify(&dir),
        Command::Show {
            dir,
            account,
            block,
            certificate,
        } => {
            let store = open(&dir)?;
            if let Some(key) = account {
                show_account(&store, &key)?;
            } else if let Some(h) = block {
                show_block(&store, h)?;
            } else if let Some(id) = certificate {
                show_certificate(&store, id)?;
            } else {
                show_head(&store)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open(dir: &Path) -> anyhow::Result<Store> {
    Store::open(dir).with_context(|| format!("cannot open ledger {}", dir.display()))
}

fn verify(dir: &Path) -> anyhow::Result<ExitCode> {
    let report = scg_ledger::store::verify_dir(dir)
        .with_context(|| format!("ledger {} does not verify", dir.display()))?;
    println!("ok: {}", dir.display());
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn show_head(store: &Store) -> anyhow::Result<()> {
    let Some(head) = store.head()? else {
        bail!("{}: no blocks yet", store.path().display());
    };
    println!("ledger {}", store.path().display());
    println!("height {}", head.height);
    println!("head hash {}", to_hex(&head.block_hash));
    println!("state root {}", to_hex(&head.state_root));
    if let Some(genesis) = store.block(0)?.and_then(|b| b.genesis) {
        println!("chain id {}", genesis.chain_id);
        println!("operator {}", to_hex(&genesis.operator));
        println!("treasury {}", to_hex(&genesis.treasury));
        println!("grid {}", to_hex(&genesis.grid));
        println!(
            "mint rate {} base units per renewable Wh",
            genesis.mint_rate_base_per_wh
        );
    }
    println!("(stored records; run `scg ledger verify` to check them)");
    Ok(())
}

/// A public key from 64 hex digits, or a member id resolved on the simulation chain.
fn account_key(store: &Store, account: &str) -> anyhow::Result<[u8; 32]> {
    if let Some(key) = from_hex::<32>(account) {
        return Ok(key);
    }
    let seed = store
        .block(0)?
        .and_then(|g| g.genesis)
        .map(|g| g.chain_id)
        .context("the ledger has no genesis block")?;
    let key = scg_ledger::settlement::member_account(seed, account);
    match store.account(&key)? {
        Some((a, _)) if a.role == scg_ledger::Role::Member => Ok(key),
        _ => bail!(
            "--account: '{account}' is neither 64 hex digits nor a member id of this chain (ids resolve on chains settled by `scg simulate`)"
        ),
    }
}

fn show_account(store: &Store, key_hex: &str) -> anyhow::Result<()> {
    let key = account_key(store, key_hex)?;
    let Some((a, txs)) = store.account(&key)? else {
        bail!("no account {key_hex}");
    };
    println!("account {}", to_hex(&a.key));
    println!("role {}", a.role.name());
    println!("balance {} ({} base units)", Rescoin(a.balance), a.balance);
    println!("reserved in pending trades {}", Rescoin(a.reserved));
    println!("next nonce {}", a.nonce);
    if let (Some(owner), Some(device)) = (a.owner, a.device) {
        println!("meter of {} ({})", to_hex(&owner), device.name());
    }
    let certs = store.certificates_of(&key)?;
    println!("certificates owned {}", certs.len());
    println!("transactions {}", txs.len());
    for (height, index, code) in txs.iter().rev().take(20) {
        println!("  block {height} tx {index}: {}", result_text(*code));
    }
    if txs.len() > 20 {
        println!("  ... ({} older)", txs.len() - 20);
    }
    Ok(())
}

fn show_block(store: &Store, height: u64) -> anyhow::Result<()> {
    let Some(block) = store.block(height)? else {
        bail!("no block {height}");
    };
    let h = &block.header;
    println!("block {}", h.height);
    println!("hash {}", to_hex(&block.hash()));
    println!("parent {}", to_hex(&h.parent_hash));
    println!("timestamp {} s", h.timestamp_s);
    println!("tx root {}", to_hex(&h.tx_root));
    println!("outcome root {}", to_hex(&h.outcome_root));
    println!("state root {}", to_hex(&h.state_root));
    println!("transactions {}", h.tx_count);
    let (codes, expired) = store.outcome_codes(height)?.unwrap_or_default();
    if !expired.is_empty() {
        println!("trades expired at block start {}", expired.len());
    }
    for (i, bytes) in block.txs.iter().enumerate() {
        let result = codes.get(i).map_or("?".to_string(), |c| result_text(*c));
        match Tx::decode(bytes) {
            Ok(tx) => println!(
                "  tx {i}: {} id {} signer {} nonce {} -> {result}{}",
                tx.body.kind_name(),
                tx.id,
                &to_hex(&tx.signer)[..16],
                tx.nonce,
                detail(&tx.body)
            ),
            Err(e) => println!("  tx {i}: malformed ({e}) -> {result}"),
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
        _ => String::new(),
    }
}

fn show_certificate(store: &Store, id: u64) -> anyhow::Result<()> {
    let Some(c) = store.certificate(id)? else {
        bail!("no certificate {id}");
    };
    println!("certificate {}", c.id);
    if c.parent != 0 {
        println!("split from certificate {}", c.parent);
    }
    println!("source {} meter {}", c.device.name(), to_hex(&c.meter));
    println!("producer {}", to_hex(&c.producer));
    println!("interval {}", c.interval);
    println!("owner {}", to_hex(&c.owner));
    println!("held {} Wh, retired {} Wh", c.energy_wh, c.retired_wh);
    Ok(())
}

fn result_text(code: u16) -> String {
    if code == 0 {
        "applied".into()
    } else {
        Reject::from_code(code).map_or(format!("code {code}"), |r| format!("rejected: {r}"))
    }
}
