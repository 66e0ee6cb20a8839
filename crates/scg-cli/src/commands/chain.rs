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
        #[command(flatten)]
        agent: AgentOpts,
    },
}

/// The member's agent in this node (`scg testnet` starts every node with one; docs/chain.md).
#[derive(Debug, clap::Args)]
pub struct AgentOpts {
    /// Run this member's agent: simulate the community of this scenario (a file, or
    /// `builtin`) on a thread of its own, keep only this member's orders and meter readings,
    /// and sign and submit them when the block clock reaches them. The meters' keys are read
    /// from the node's directory (`meter-<device>.key`).
    #[arg(long, value_name = "FILE|builtin")]
    pub agent_scenario: Option<String>,
    /// The member the agent acts for (its genesis name; must be the node key's member)
    /// [default: the node key's member].
    #[arg(long, requires = "agent_scenario")]
    pub member: Option<String>,
    /// Seed of the agent's simulation (as `scg simulate --seed`).
    #[arg(long, default_value_t = super::simulate::DEFAULT_SEED, requires = "agent_scenario")]
    pub seed: u64,
    /// The agent's horizon: the first DAYS days [default: the whole year].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=365), requires = "agent_scenario")]
    pub days: Option<u64>,
    /// Market intervals the clock advances per step (the testnet's); required with an agent.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=8760), requires = "agent_scenario")]
    pub intervals_per_step: Option<u64>,
}

impl AgentOpts {
    /// The agent to run, if any: its plan comes from the one simulation path of
    /// `scg testnet` ([`super::testnet::simulated_plan`]), run on the node's agent thread.
    fn agent(
        &self,
        genesis: &std::path::Path,
        key: &std::path::Path,
    ) -> anyhow::Result<Option<scg_chain::run::AgentRun>> {
        let Some(scenario) = &self.agent_scenario else {
            return Ok(None);
        };
        let Some(step_intervals) = self.intervals_per_step else {
            anyhow::bail!("--agent-scenario needs --intervals-per-step (the testnet clock's step)");
        };
        if let Some(member) = &self.member {
            let g = scg_chain::Genesis::read(genesis)?;
            let k = MemberKey::read(key)?;
            let name = g
                .members
                .iter()
                .find(|m| m.key == k.public())
                .map(|m| m.name.clone());
            if name.as_deref() != Some(member.as_str()) {
                anyhow::bail!(
                    "--member {member}: the node's key {} is {}",
                    key.display(),
                    name.map_or("not a member of the genesis".to_string(), |n| format!(
                        "member {n}'s"
                    ))
                );
            }
        }
        let path = (scenario != "builtin").then(|| PathBuf::from(scenario));
        let (seed, days) = (self.seed, self.days);
        Ok(Some(scg_chain::run::AgentRun {
            step_intervals,
            plan: Box::new(move || {
                super::testnet::simulated_plan(path.as_deref(), seed, days, None)
                    .map(|b| b.plan)
                    .map_err(|e| format!("{e:#}"))
            }),
        }))
    }
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
            agent,
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
            let agent = agent.agent(&genesis, &key)?;
            eprintln!("scg chain run: p2p on {listen}, HTTP API on http://{api}/status");
            scg_chain::run::run(
                scg_chain::run::RunConfig {
                    genesis,
                    key,
                    dir,
                    listen,
                    http,
                    peers,
                    manual_clock,
                },
                agent,
            )?;
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
