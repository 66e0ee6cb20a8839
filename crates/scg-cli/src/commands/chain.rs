//! `scg chain keygen|genesis|run`: member keys, the member chain's genesis, and one node.
//! Verification of a node's directory is `scg ledger verify DIR` (see `commands::ledger`).
//!
//! All logic lives in `scg-chain` (key files, genesis derivation, the node and its sockets);
//! this module parses arguments and prints. It never opens a socket itself.

use scg_chain::MemberKey;
use scg_chain::genesis::{DerivePaths, derive_to_file};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a member key from the OS's randomness (file mode 0600; never overwrites) and
    /// print its public key (64 hex digits).
    Keygen {
        /// Key file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Derive a genesis file from a spec (members, validators, meters, parameters; see
    /// docs/chain.md): adds the chain id (a hash of the contents, not a seed) and the
    /// operator-signed registrations. Prints the chain id.
    Genesis {
        /// Spec file (TOML).
        #[arg(long)]
        spec: PathBuf,
        /// The operator's key file (signs the registrations; must differ from every key in
        /// the spec).
        #[arg(long)]
        operator_key: PathBuf,
        /// Genesis file to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run one validator node until killed (API: GET /status, POST /tx; docs/api.md).
    Run {
        /// Genesis file.
        #[arg(long)]
        genesis: PathBuf,
        /// This node's key file.
        #[arg(long)]
        key: PathBuf,
        /// Node directory (block store, consensus journal, a copy of the genesis).
        #[arg(long)]
        dir: PathBuf,
        /// p2p listen address, e.g. 127.0.0.1:7000.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The other validators: PUBLIC_KEY_HEX@IP:PORT, comma-separated or repeated.
        #[arg(long, value_delimiter = ',', num_args = 0..)]
        peers: Vec<String>,
        /// HTTP API address [default: the --listen address with the next port].
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// Block timestamps from a clock the HTTP API sets (`POST /clock`, docs/api.md)
        /// instead of the wall clock: for testnets (`scg testnet`), never for a real chain.
        #[arg(long)]
        manual_clock: bool,
        /// Exit when the parent process exits (testnet nodes: no orphans when the driver is
        /// killed).
        #[arg(long, hide = true)]
        exit_with_parent: bool,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Keygen { out } => {
            let key = MemberKey::generate()?;
            key.write_new(&out)?;
            println!("{}", key.public_hex());
        }
        Command::Genesis {
            spec,
            operator_key,
            out,
        } => {
            let genesis = derive_to_file(&DerivePaths {
                spec,
                operator_key,
                out: out.clone(),
            })?;
            println!("wrote {}", out.display());
            println!("chain id {}", genesis.chain_id_hex());
            println!(
                "members {}, validators {}",
                genesis.members.len(),
                genesis.validators().len()
            );
        }
        Command::Run {
            genesis,
            key,
            dir,
            listen,
            peers,
            http,
            manual_clock,
            exit_with_parent,
        } => {
            if exit_with_parent {
                exit_with_parent_process();
            }
            let peers = peers
                .iter()
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .map(scg_chain::run::parse_peer)
                .collect::<Result<Vec<_>, _>>()?;
            let api = scg_chain::run::http_addr(listen, http)?;
            eprintln!("scg chain run: p2p on {listen}, HTTP API on http://{api}/status");
            scg_chain::run::run(scg_chain::run::RunConfig {
                genesis,
                key,
                dir,
                listen,
                http,
                peers,
                manual_clock,
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Watch the parent process from a thread and exit when it is gone (the process is then
/// re-parented, so the parent id changes): a testnet node never outlives its driver, even one
/// killed with SIGKILL.
fn exit_with_parent_process() {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(1);
                }
            }
        });
    }
}
