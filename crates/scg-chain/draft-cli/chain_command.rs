//! `scg chain keygen|genesis|run|verify`: member keys, the member chain's genesis, one node,
//! and read-only verification of a node's directory. All logic lives in `scg-chain`; this module
//! parses arguments and prints.

use anyhow::Context as _;
use scg_chain::{Genesis, GenesisSpec, MemberKey};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a member key from the OS's randomness (file mode 0600; never overwrites) and
    /// print its public key.
    Keygen {
        /// Key file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Derive a genesis file from a spec (members, validators, meters, parameters): adds the
    /// chain id (a hash of the contents) and the operator-signed registrations.
    Genesis {
        /// Spec file (TOML, see docs/chain.md).
        #[arg(long)]
        spec: PathBuf,
        /// The operator's key file (signs the registrations).
        #[arg(long)]
        operator_key: PathBuf,
        /// Genesis file to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run one validator node until killed.
    Run {
        /// Genesis file.
        #[arg(long)]
        genesis: PathBuf,
        /// This node's key file.
        #[arg(long)]
        key: PathBuf,
        /// Node directory (block store, consensus journal).
        #[arg(long)]
        dir: PathBuf,
        /// p2p listen address, e.g. 127.0.0.1:7000.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// HTTP API address (GET /status, POST /tx), e.g. 127.0.0.1:8000.
        #[arg(long)]
        http: std::net::SocketAddr,
        /// The other validators: PUBLIC_KEY_HEX@IP:PORT, comma-separated.
        #[arg(long, value_delimiter = ',')]
        peers: Vec<String>,
    },
    /// Verify a node directory read-only: certificates against the genesis validators, replay
    /// of every transaction; prints the finalized height and state root.
    Verify {
        /// Genesis file.
        #[arg(long)]
        genesis: PathBuf,
        /// Node directory.
        dir: PathBuf,
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
            let text = std::fs::read_to_string(&spec)
                .with_context(|| format!("reading {}", spec.display()))?;
            let spec_v = GenesisSpec::parse(&spec.display().to_string(), &text)?;
            let op = MemberKey::read(&operator_key)?;
            let file = spec_v.derive(&op)?;
            let toml = file.to_toml()?;
            // Check what we write loads back.
            Genesis::parse(&out.display().to_string(), &toml)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .with_context(|| format!("creating {} (it must not exist)", out.display()))?;
            std::io::Write::write_all(&mut f, toml.as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            println!("chain id {}", file.chain_id);
        }
        Command::Run {
            genesis,
            key,
            dir,
            listen,
            http,
            peers,
        } => {
            let peers = peers
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| scg_chain::run::parse_peer(p.trim()))
                .collect::<Result<Vec<_>, _>>()?;
            scg_chain::run::run(scg_chain::run::RunConfig {
                genesis,
                key,
                dir,
                listen,
                http,
                peers,
            })?;
        }
        Command::Verify { genesis, dir } => {
            let g = Genesis::read(&genesis)?;
            let r = scg_chain::verify::verify_dir(&g, &dir)?;
            println!("chain id          {}", r.chain_id);
            println!("finalized height  {}", r.finalized_height);
            println!("state root        {}", r.state_root);
            println!("blocks            {}", r.blocks);
            println!("transactions      {}", r.transactions);
            println!("certificates      {}", r.certificates);
        }
    }
    Ok(ExitCode::SUCCESS)
}
