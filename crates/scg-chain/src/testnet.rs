//! `scg testnet`: a community's simulated intervals driven through N member node processes
//! (`scg chain run`) on loopback, each running its member's agent ([`crate::agent`]).
//!
//! The driver takes a [`Plan`] ([`crate::plan`]: the members, their meters and registered
//! capacities, and per interval the grid's tariff, every member's order and every meter's
//! reading, all plain integers from the CLI's run of `scg simulate`'s engine) and:
//! 1. generates every key from the OS's randomness. The operator's, the treasury's and the
//!    grid's go to `DIR/keys/`; each member's key and its meters' keys go only into its
//!    node's directory (`DIR/node<i>/member.key`, `meter-<device>.key`; files of mode 0600),
//!    and the driver keeps their public keys only (`keys/*.pub`). Members' keys are sorted
//!    and handed out in the plan's member order, so the chain's canonical book order (member
//!    key, then nonce) is the plan's member order: the order in which `scg simulate`'s
//!    market saw them;
//! 2. writes a genesis with the market open and every meter's capacity registered (block 1);
//! 3. starts one `scg chain run --manual-clock --agent-scenario ...` process per member, each
//!    its own validator and its member's agent, which simulates the same scenario and seed
//!    and signs its member's orders and readings when the clock reaches them;
//! 4. funds every member from the treasury (the testnet's euro on-ramp: the most its bids of
//!    the horizon can cost, so no bid is ever left unfunded; the treasury is endowed with that
//!    plus the CER budget), then moves the chain's clock in **steps** of `intervals_per_step`
//!    intervals. At the step's time `T` it submits, signed as the operator to node 0, what
//!    [`Schedule`] says is due: the tariffs of the intervals being ordered, the gate closes,
//!    and with a CER ([`PlanCer`]) the zonal prices of the hours being ordered and the closes
//!    of the periods whose readings are final (the CER itself is opened with the funding;
//!    every node computes the payouts from its readings). It waits until every member's
//!    agent has submitted what is due by `T` (counted from the plan) and every node has
//!    finalized all of it, then advances the clock, on past the last interval until the last
//!    whole CER period is closed. The clock moves as fast as consensus finalizes: it is a
//!    [`ManualClock`](crate::app::ManualClock) every node is told to accept first and to
//!    propose at second (two phases, so no honest node refuses a block for a timestamp it has
//!    not reached);
//! 5. at the end reads every node's status (finalized height, state root), stops the nodes,
//!    and replays node 0's store (certificates checked) for the members' figures.
//!
//! Every child process is killed when the [`Cluster`] is dropped (errors, interrupts); the
//! nodes are also started with `--exit-with-parent`, so a killed driver leaves no orphan.
//! The driver never signs for a member and never prints: progress goes through a callback.

use crate::ChainError;
use crate::agent::{Signer, meter_key_file};
use crate::genesis::{Genesis, GenesisSpec, MemberSpec, MeterSpec};
use crate::keys::MemberKey;
use crate::plan::{HOUR_S, MemberPlan, Schedule};
pub use crate::plan::{Plan, PlanCer, PlanInterval, PlanMember, PlanReading};
use scg_ledger::cer::CerParams;
use scg_ledger::merkle::to_hex;
use scg_ledger::{Ledger, PublicKey, TxBody};
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most members (nodes) of a testnet: each is a process with its own ports and store.
pub const MAX_MEMBERS: usize = 64;
/// Longest wait for the nodes to start and connect.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for one step's transactions to be submitted by every member's agent and
/// final on every node, once every agent is ready.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait for the nodes' agents to finish their own simulations of the community (a
/// year of the built-in scenario takes seconds of CPU in a release build, minutes in a debug
/// one, on every node at once).
pub const SIMULATION_TIMEOUT: Duration = Duration::from_secs(900);
/// One RESCoin in base units (9 decimals): what every member gets beyond its bids.
const ONE_RES_BASE: u128 = 1_000_000_000;
/// Most transactions sent in one `POST /txs`.
const TXS_PER_REQUEST: usize = 2048;

/// How to run it.
#[derive(Debug, Clone)]
pub struct Options {
    /// The testnet's directory (created; refused if it exists and is not empty).
    pub dir: PathBuf,
    /// The `scg` executable whose `chain run` the nodes run.
    pub exe: PathBuf,
    /// Intervals per clock step (> 0).
    pub intervals_per_step: u64,
    /// Set to stop (Ctrl-C): the run ends with an error and every node is stopped.
    pub cancel: Arc<AtomicBool>,
    /// What every node's member agent simulates: the plan's own scenario, seed and horizon.
    pub agent: AgentArgs,
}

/// The scenario every node's agent runs the community engine on (`scg chain run
/// --agent-scenario`): the one the plan was built from, so every process simulates the
/// same world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentArgs {
    /// Scenario file (`None`: the built-in scenario).
    pub scenario: Option<PathBuf>,
    /// Seed of the simulation.
    pub seed: u64,
    /// Horizon in days (`None`: the whole year).
    pub days: Option<u64>,
}

/// One node at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEnd {
    /// Member name.
    pub name: String,
    /// Finalized height.
    pub finalized_height: u64,
    /// State root at that height, hex.
    pub state_root: String,
    /// Median and largest finalization latency of the node's own proposals, ms, and how many.
    pub own_finality_ms: (u64, u64, u64),
}

/// One member's figures on the chain, base units (RESCoin, 9 decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemberFigures {
    /// Available balance at the end.
    pub balance: u128,
    /// Minted for its renewable production (its meters' certificates × the mint rate).
    pub minted: u128,
    /// Received for P2P energy (posted trades as seller).
    pub p2p_received: u128,
    /// Paid for P2P energy, fees excluded (posted trades as buyer).
    pub p2p_paid: u128,
    /// Grid fees paid on P2P purchases.
    pub fees_paid: u128,
    /// Funded by the treasury at the start (the testnet's on-ramp).
    pub funded: u128,
    /// CER payouts received from the treasury (the chain's period closes).
    pub cer_received: u128,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The chain id, hex.
    pub chain_id: String,
    /// Every node.
    pub nodes: Vec<NodeEnd>,
    /// Per member id (with its account key, hex).
    pub members: BTreeMap<String, (String, MemberFigures)>,
    /// Transactions the driver submitted (registrations not included).
    pub transactions: u64,
    /// Clock steps.
    pub steps: u64,
    /// Wall time of the drive (funding to the last step final), s.
    pub drive_s: f64,
    /// Per step: seconds from the first submission to final on every node.
    pub step_finality_s: Vec<f64>,
    /// Bids the gate closes left out for want of funds (0 when funding works).
    pub unfunded_bids: u64,
    /// P2P trades cleared on the chain, and how many were posted.
    pub trades_cleared: u64,
    /// Posted trades.
    pub trades_posted: u64,
    /// CER periods the chain closed, and what their closes paid in total (incentive +
    /// valorisation of the chain's period records), base units.
    pub cer_periods_closed: u64,
    /// See `cer_periods_closed`.
    pub cer_paid_base: u128,
    /// The treasury's balance at the end, base units.
    pub treasury_end_base: u128,
}

/// Child processes, killed (and reaped) when dropped.
#[derive(Debug, Default)]
pub struct Cluster {
    children: Vec<Child>,
}

impl Cluster {
    /// Kill every child and wait for it.
    pub fn stop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
    }

    /// The first child that has exited, with its status.
    fn exited(&mut self) -> Option<(usize, std::process::ExitStatus)> {
        self.children
            .iter_mut()
            .enumerate()
            .find_map(|(i, c)| c.try_wait().ok().flatten().map(|s| (i, s)))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bad(what: &str, reason: impl Into<String>) -> ChainError {
    ChainError::BadInput {
        what: what.into(),
        reason: reason.into(),
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ChainError + '_ {
    move |e| ChainError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Check the plan before anything is created.
pub fn check_plan(plan: &Plan, opts: &Options) -> Result<(), ChainError> {
    let n = plan.members.len();
    if n == 0 || n > MAX_MEMBERS {
        return Err(bad(
            "--members",
            format!("{n} members; expected 1 to {MAX_MEMBERS}"),
        ));
    }
    if plan.intervals.is_empty() {
        return Err(bad("horizon", "no interval to drive"));
    }
    if opts.intervals_per_step == 0 {
        return Err(bad("--intervals-per-step", "expected at least 1"));
    }
    if plan.interval_s == 0 || plan.epoch_s < plan.interval_s {
        return Err(bad(
            "plan",
            "the interval length must be > 0 and the epoch at least one interval after 1970",
        ));
    }
    if let Some(cer) = &plan.cer {
        check_cer(plan, cer)?;
    }
    for (k, iv) in plan.intervals.iter().enumerate() {
        let member_ok = |m: usize| m < n;
        if !iv.orders.iter().all(|(m, _)| member_ok(*m))
            || !iv.readings.iter().all(|r| {
                member_ok(r.member)
                    && plan.members[r.member]
                        .meters
                        .iter()
                        .any(|(d, _)| *d == r.device)
            })
        {
            return Err(bad(
                "plan",
                format!("interval {k} names a member or meter that is not in the plan"),
            ));
        }
    }
    Ok(())
}

fn check_cer(plan: &Plan, cer: &PlanCer) -> Result<(), ChainError> {
    let hourly = plan.interval_s <= HOUR_S && HOUR_S.is_multiple_of(plan.interval_s);
    if !hourly {
        return Err(bad(
            "plan.cer",
            format!(
                "the CER is hourly: the interval length {} s must divide 3600 s",
                plan.interval_s
            ),
        ));
    }
    if cer.period_hours == 0 || cer.period_hours > scg_ledger::cer::MAX_PERIOD_HOURS {
        return Err(bad(
            "plan.cer.period_hours",
            format!("{}; expected 1 to 744", cer.period_hours),
        ));
    }
    if let Some(p) = cer.rule.problem() {
        return Err(bad("plan.cer.rule", p));
    }
    let periods = cer.closed_periods(plan.intervals.len(), plan.interval_s);
    let hours = periods * u64::from(cer.period_hours);
    if (cer.zonal_milli_eur_per_mwh.len() as u64) < hours {
        return Err(bad(
            "plan.cer.zonal_milli_eur_per_mwh",
            format!(
                "{} hourly prices; the {periods} period(s) to close need {hours}",
                cer.zonal_milli_eur_per_mwh.len()
            ),
        ));
    }
    Ok(())
}

/// The testnet's keys as the driver holds them: the operator's, the treasury's and the
/// grid's secret keys, and only the **public** keys of the members and their meters (their
/// secret keys are written into each member's node directory and dropped).
struct Keys {
    /// Per member (plan order): its public key, and its meters' (in the order of its meters).
    members: Vec<(PublicKey, Vec<PublicKey>)>,
    operator: MemberKey,
    treasury: MemberKey,
    grid: MemberKey,
}

/// The directory of node `i`.
fn node_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node{i}"))
}

/// The file of node `i`'s member key (in its own directory).
fn member_key_file(dir: &Path, i: usize) -> PathBuf {
    node_dir(dir, i).join("member.key")
}

/// Every key from the OS's randomness. A member's key and its meters' keys are written only
/// into its node's directory (mode 0600: [`MemberKey::write_new`]) and their public keys into
/// `keys/` (`member<i>.pub`, `member<i>-<device>.pub`); `keys/` holds the only secret keys
/// the driver keeps: the operator's, the treasury's and the grid's.
fn generate_keys(plan: &Plan, dir: &Path) -> Result<Keys, ChainError> {
    let mut member_keys = plan
        .members
        .iter()
        .map(|_| MemberKey::generate())
        .collect::<Result<Vec<_>, _>>()?;
    // Canonical book order is by member key: hand the sorted keys out in the plan's order.
    member_keys.sort_by_key(MemberKey::public);
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir).map_err(io_err(&keys_dir))?;
    let write_pub = |name: String, key: &MemberKey| {
        let path = keys_dir.join(name);
        std::fs::write(&path, key.public_hex() + "\n").map_err(io_err(&path))
    };
    let mut members = Vec::with_capacity(plan.members.len());
    for (i, (m, key)) in plan.members.iter().zip(member_keys).enumerate() {
        let node = node_dir(dir, i);
        std::fs::create_dir_all(&node).map_err(io_err(&node))?;
        key.write_new(&member_key_file(dir, i))?;
        write_pub(format!("member{i}.pub"), &key)?;
        let mut meters = Vec::with_capacity(m.meters.len());
        for (device, _) in &m.meters {
            let k = MemberKey::generate()?;
            k.write_new(&meter_key_file(&node, *device))?;
            write_pub(format!("member{i}-{}.pub", device.name()), &k)?;
            meters.push(k.public());
        }
        members.push((key.public(), meters));
    }
    let role = |name: &str| -> Result<MemberKey, ChainError> {
        let k = MemberKey::generate()?;
        k.write_new(&keys_dir.join(format!("{name}.key")))?;
        Ok(k)
    };
    Ok(Keys {
        members,
        operator: role("operator")?,
        treasury: role("treasury")?,
        grid: role("grid")?,
    })
}

/// The genesis: every member a validator, its meters with their capacities, the market open;
/// the treasury endowed with what the members are funded with. Written to `DIR/genesis.toml`.
fn write_genesis(
    plan: &Plan,
    keys: &Keys,
    (endowment, settle_window_s): (u64, u64),
    dir: &Path,
) -> Result<(Genesis, PathBuf), ChainError> {
    let spec = GenesisSpec {
        name: plan.name.clone(),
        genesis_time_s: plan.epoch_s - plan.interval_s,
        mint_rate_base_per_wh: plan.mint_rate_base_per_wh,
        treasury_endowment_base: endowment,
        treasury: keys.treasury.public_hex(),
        grid: keys.grid.public_hex(),
        // The schedule's window: a reading comes less than two steps after its interval.
        market: Some(crate::genesis::MarketSpec {
            settle_window_s,
            ..plan.market.clone()
        }),
        members: plan
            .members
            .iter()
            .zip(&keys.members)
            .map(|(m, (key, meters))| MemberSpec {
                name: m.id.clone(),
                public_key: to_hex(key),
                validator: true,
                meters: m
                    .meters
                    .iter()
                    .zip(meters)
                    .map(|((device, cap), k)| MeterSpec {
                        public_key: to_hex(k),
                        device: device.name().into(),
                        capacity_w: *cap,
                    })
                    .collect(),
            })
            .collect(),
    };
    let text = spec.derive(&keys.operator)?.to_toml()?;
    let path = dir.join("genesis.toml");
    std::fs::write(&path, &text).map_err(io_err(&path))?;
    Ok((Genesis::parse(&path.display().to_string(), &text)?, path))
}

/// A free loopback address (bound, then released for the node to take).
fn free_addr() -> Result<SocketAddr, ChainError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| bad("loopback port", e.to_string()))?;
    l.local_addr()
        .map_err(|e| bad("loopback port", e.to_string()))
}

/// One HTTP/1.1 request on loopback: `(status, body)`.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes())
        .and_then(|()| s.write_all(body.as_bytes()))
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut resp = Vec::new();
    s.take(64 * 1024 * 1024)
        .read_to_end(&mut resp)
        .map_err(|e| format!("{addr}: {e}"))?;
    let resp = String::from_utf8_lossy(&resp);
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{addr}: not an HTTP response"))?;
    let body = resp.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    Ok((code, body))
}

/// A node's `/status`.
#[derive(Debug, Clone, Default)]
struct NodeStatus {
    finalized_height: u64,
    state_root: String,
    peers: u64,
    mempool: u64,
    applied_txs: u64,
    own_finality_ms: (u64, u64, u64),
    /// The node's agent: `(ready, accepted, refused, last refusal)`.
    agent: (bool, u64, u64, String),
}

fn status(addr: SocketAddr) -> Result<NodeStatus, String> {
    let (code, body) = http(addr, "GET", "/status", "")?;
    if code != 200 {
        return Err(format!("{addr}: /status answered {code}"));
    }
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("{addr}: /status: {e}"))?;
    let u = |k: &str| v[k].as_u64().unwrap_or(0);
    let f = &v["own_finality_ms"];
    Ok(NodeStatus {
        finalized_height: u("finalized_height"),
        state_root: v["state_root"].as_str().unwrap_or_default().to_string(),
        peers: u("peers"),
        mempool: u("mempool"),
        applied_txs: u("applied_txs"),
        own_finality_ms: (
            f["median"].as_u64().unwrap_or(0),
            f["max"].as_u64().unwrap_or(0),
            f["count"].as_u64().unwrap_or(0),
        ),
        agent: (
            v["agent"]["ready"].as_bool().unwrap_or(false),
            v["agent"]["accepted"].as_u64().unwrap_or(0),
            v["agent"]["refused"].as_u64().unwrap_or(0),
            v["agent"]["last_refusal"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
    })
}

/// The running testnet.
struct Net {
    cluster: Cluster,
    http: Vec<SocketAddr>,
    names: Vec<String>,
    dir: PathBuf,
    cancel: Arc<AtomicBool>,
}

impl Net {
    fn check_alive(&mut self) -> Result<(), ChainError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(bad("scg testnet", "interrupted; every node was stopped"));
        }
        if let Some((i, st)) = self.cluster.exited() {
            let log = self.dir.join(format!("node{i}.log"));
            let tail = std::fs::read_to_string(&log)
                .map(|t| {
                    let lines: Vec<&str> = t.lines().collect();
                    lines[lines.len().saturating_sub(5)..].join("\n")
                })
                .unwrap_or_default();
            return Err(bad(
                &format!("node {i} ({})", self.names[i]),
                format!("exited ({st}); last lines of {}:\n{tail}", log.display()),
            ));
        }
        Ok(())
    }

    fn statuses(&mut self) -> Result<Vec<NodeStatus>, ChainError> {
        self.check_alive()?;
        self.http
            .iter()
            .enumerate()
            .map(|(i, a)| status(*a).map_err(|e| bad(&format!("node {i}"), e)))
            .collect()
    }

    /// Move every node's clock to `t_s`: all accept it, then all propose at it.
    fn set_clock(&mut self, t_s: u64) -> Result<(), ChainError> {
        for verb in ["accept", "now"] {
            for (i, a) in self.http.iter().enumerate() {
                let (code, body) = http(*a, "POST", "/clock", &format!("{verb} {t_s}"))
                    .map_err(|e| bad(&format!("node {i}"), e))?;
                if code != 200 {
                    return Err(bad(&format!("node {i} /clock"), body));
                }
            }
        }
        Ok(())
    }

    /// Submit `txs` (hex) to node `i`; every one must be admitted.
    fn submit(&mut self, i: usize, txs: &[String]) -> Result<(), ChainError> {
        for chunk in txs.chunks(TXS_PER_REQUEST) {
            let (code, body) = http(self.http[i], "POST", "/txs", &chunk.join("\n"))
                .map_err(|e| bad(&format!("node {i}"), e))?;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let errors = v["errors"].as_array().map_or(0, Vec::len);
            if code != 200 || errors > 0 {
                return Err(bad(
                    &format!("node {i} ({}) POST /txs", self.names[i]),
                    format!("refused: {body}"),
                ));
            }
        }
        Ok(())
    }

    /// Wait until every member's agent has submitted `due[i]` transactions in all (node `i`'s
    /// member) and every node has applied `applied` transactions. Fails at once when an agent's
    /// node refused one of its transactions, when everything was submitted and nothing is
    /// pending but transactions are missing (the chain dropped some), and after
    /// [`STEP_TIMEOUT`], naming every member whose agent is behind.
    fn wait_step(&mut self, applied: u64, due: &[u64], what: &str) -> Result<(), ChainError> {
        let t0 = Instant::now();
        let mut stuck_since: Option<Instant> = None;
        loop {
            let st = self.statuses()?;
            if let Some((i, s)) = st.iter().enumerate().find(|(_, s)| s.agent.2 > 0) {
                return Err(bad(
                    &format!("{what}: member {} (node {i})", self.names[i]),
                    format!(
                        "its node refused {} of its agent's transactions; the last: {}",
                        s.agent.2, s.agent.3
                    ),
                ));
            }
            let behind: Vec<String> = st
                .iter()
                .zip(due)
                .enumerate()
                .filter(|(_, (s, d))| s.agent.1 < **d)
                .map(|(i, (s, d))| {
                    let state = if s.agent.0 { "ready" } else { "still simulating" };
                    format!(
                        "member {} (node {i}, agent {state}) submitted {} of the {d} transactions due",
                        self.names[i], s.agent.1
                    )
                })
                .collect();
            if behind.is_empty() && st.iter().all(|s| s.applied_txs >= applied) {
                return Ok(());
            }
            // Everything submitted, nothing pending anywhere, transactions missing: the chain
            // refused some.
            if behind.is_empty() && st.iter().all(|s| s.mempool == 0) {
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(3) {
                    let got = st.iter().map(|s| s.applied_txs).min().unwrap_or(0);
                    return Err(bad(
                        what,
                        format!(
                            "{} transaction(s) were dropped by the chain (applied {got}, expected {applied}); see the nodes' logs in {}",
                            applied.saturating_sub(got),
                            self.dir.display()
                        ),
                    ));
                }
            } else {
                stuck_since = None;
            }
            let simulating = st.iter().any(|s| !s.agent.0);
            let limit = if simulating {
                SIMULATION_TIMEOUT
            } else {
                STEP_TIMEOUT
            };
            if t0.elapsed() > limit {
                let why = if behind.is_empty() {
                    "every agent submitted its transactions, but they are not final on every node"
                        .to_string()
                } else {
                    behind.join("; ")
                };
                return Err(bad(what, format!("not done within {limit:?}: {why}")));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn start_nodes(
    opts: &Options,
    genesis_path: &Path,
    keys: &Keys,
    names: Vec<String>,
) -> Result<Net, ChainError> {
    let n = keys.members.len();
    let p2p = (0..n).map(|_| free_addr()).collect::<Result<Vec<_>, _>>()?;
    let http_addrs = (0..n).map(|_| free_addr()).collect::<Result<Vec<_>, _>>()?;
    let mut net = Net {
        cluster: Cluster::default(),
        http: http_addrs.clone(),
        names,
        dir: opts.dir.clone(),
        cancel: opts.cancel.clone(),
    };
    for i in 0..n {
        let peers: Vec<String> = (0..n)
            .filter(|j| *j != i)
            .map(|j| format!("{}@{}", to_hex(&keys.members[j].0), p2p[j]))
            .collect();
        let log_path = opts.dir.join(format!("node{i}.log"));
        let log = std::fs::File::create(&log_path).map_err(io_err(&log_path))?;
        let log2 = log.try_clone().map_err(io_err(&log_path))?;
        let mut cmd = Command::new(&opts.exe);
        cmd.arg("chain")
            .arg("run")
            .arg("--genesis")
            .arg(genesis_path)
            .arg("--key")
            .arg(member_key_file(&opts.dir, i))
            .arg("--dir")
            .arg(node_dir(&opts.dir, i))
            .arg("--listen")
            .arg(p2p[i].to_string())
            .arg("--http")
            .arg(http_addrs[i].to_string())
            .arg("--peers")
            .arg(peers.join(","))
            .arg("--manual-clock")
            .arg("--exit-with-parent")
            // The member's agent: its own simulation of the same scenario and seed.
            .arg("--agent-scenario")
            .arg(
                opts.agent
                    .scenario
                    .as_ref()
                    .map_or_else(|| "builtin".into(), |p| p.clone().into_os_string()),
            )
            .arg("--member")
            .arg(&net.names[i])
            .arg("--seed")
            .arg(opts.agent.seed.to_string())
            .arg("--intervals-per-step")
            .arg(opts.intervals_per_step.to_string());
        if let Some(d) = opts.agent.days {
            cmd.arg("--days").arg(d.to_string());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io_err(&opts.exe))?;
        net.cluster.children.push(child);
    }
    // Up when every node answers, hears the others and has finalized a block.
    let t0 = Instant::now();
    loop {
        net.check_alive()?;
        let ready = net
            .http
            .iter()
            .all(|a| status(*a).is_ok_and(|s| s.peers + 1 >= n as u64 && s.finalized_height >= 2));
        if ready {
            return Ok(net);
        }
        if t0.elapsed() > START_TIMEOUT {
            return Err(bad(
                "scg testnet",
                format!(
                    "the {n} nodes did not connect and finalize within {START_TIMEOUT:?}; see {}/node*.log",
                    opts.dir.display()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The operator's progress through the CER.
#[derive(Debug, Default)]
struct Cursors {
    /// First CER hour without a zonal price posted.
    priced: u64,
    /// First CER period not closed.
    cer_closed: u64,
}

/// The driver's side of the drive: it signs only as the operator, and counts what each
/// member's agent must have submitted (the same [`Schedule`] on the same plan).
struct Drive<'a> {
    plan: &'a Plan,
    /// Each member's part, to count its agent's due transactions.
    parts: Vec<MemberPlan>,
    operator: &'a MemberKey,
    signer: Signer,
    at: Cursors,
    schedule: Schedule,
}

impl Drive<'_> {
    /// The operator's transactions of the step at clock `t_s` (hex): the tariffs of the
    /// intervals being ordered (those with orders), the zonal prices of their hours, the gate
    /// closes due, and the CER periods whose readings are final.
    fn step(&mut self, t_s: u64) -> Vec<String> {
        let mut out = Vec::new();
        let orders = self.schedule.orders(t_s);
        for k in orders.clone() {
            let iv = &self.plan.intervals[k];
            if let (Some(tariff), false) = (iv.tariff, iv.orders.is_empty()) {
                let body = TxBody::IntervalTariff {
                    interval: k as u64,
                    tariff,
                };
                out.push(to_hex(&self.signer.sign(self.operator, body)));
            }
        }
        self.zonal_prices(orders.end, &mut out);
        for k in self.schedule.closes(t_s) {
            let body = TxBody::GateClose { interval: k as u64 };
            out.push(to_hex(&self.signer.sign(self.operator, body)));
        }
        self.period_closes(t_s, &mut out);
        out
    }

    /// Per member, the transactions its agent must have submitted in all by the end of the
    /// step at `t_s`.
    fn due_by(&self, t_s: u64) -> Vec<u64> {
        let (o, r) = (self.schedule.orders(t_s), self.schedule.readings(t_s));
        self.parts
            .iter()
            .map(|p| p.count(0..o.end, 0..r.end))
            .collect()
    }

    /// The operator's zonal prices of the CER hours that have started being ordered (the
    /// first `ordered` intervals; each hour once, at most 168 a transaction).
    fn zonal_prices(&mut self, ordered: usize, out: &mut Vec<String>) {
        let Some(cer) = &self.plan.cer else {
            return;
        };
        let per_hour = HOUR_S / self.plan.interval_s;
        let periods = cer.closed_periods(self.plan.intervals.len(), self.plan.interval_s);
        let last = (periods * u64::from(cer.period_hours)).min((ordered as u64).div_ceil(per_hour));
        while self.at.priced < last {
            let first = self.at.priced;
            let end = last.min(first + scg_ledger::cer::MAX_ZONAL_PRICES as u64);
            let body = TxBody::ZonalPrices {
                first_hour: first,
                // `check_cer` made sure the plan holds these hours.
                prices_milli_eur_per_mwh: cer.zonal_milli_eur_per_mwh[first as usize..end as usize]
                    .to_vec(),
            };
            out.push(to_hex(&self.signer.sign(self.operator, body)));
            self.at.priced = end;
        }
    }

    /// The operator's closes of the CER periods whose readings are final at `t_s` (past the
    /// period's end plus the settle window, as the ledger requires: every reading of the
    /// period was submitted at an earlier step, see [`Schedule`]) and whose hours are priced.
    fn period_closes(&mut self, t_s: u64, out: &mut Vec<String>) {
        let Some(cer) = &self.plan.cer else {
            return;
        };
        let periods = cer.closed_periods(self.plan.intervals.len(), self.plan.interval_s);
        let period_s = u64::from(cer.period_hours) * HOUR_S;
        while self.at.cer_closed < periods {
            let p = self.at.cer_closed;
            let end_s = self.plan.epoch_s + (p + 1) * period_s;
            let priced = self.at.priced >= (p + 1) * u64::from(cer.period_hours);
            if !priced || t_s <= end_s + self.schedule.settle_window_s() {
                break;
            }
            let body = TxBody::CerPeriodClose { period: p };
            out.push(to_hex(&self.signer.sign(self.operator, body)));
            self.at.cer_closed += 1;
        }
    }
}

/// Run the testnet: see the module doc. `progress` receives one line per phase and step.
pub fn run(
    plan: &Plan,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome, ChainError> {
    check_plan(plan, opts)?;
    prepare_dir(&opts.dir)?;
    let keys = generate_keys(plan, &opts.dir)?;
    let funding: Vec<u128> = (0..plan.members.len())
        .map(|m| plan.bid_budget(m) + ONE_RES_BASE)
        .collect();
    let cer_budget = plan.cer.as_ref().map_or(0, |c| c.budget_base);
    let endowment = u64::try_from(funding.iter().sum::<u128>() + cer_budget).map_err(|_| {
        bad(
            "funding",
            "the members' bids and the CER budget exceed what a genesis can endow",
        )
    })?;
    let schedule = Schedule {
        epoch_s: plan.epoch_s,
        interval_s: plan.interval_s,
        step_s: opts.intervals_per_step * plan.interval_s,
        intervals: plan.intervals.len(),
    };
    let (genesis, genesis_path) = write_genesis(
        plan,
        &keys,
        (endowment, schedule.settle_window_s()),
        &opts.dir,
    )?;
    progress(&format!(
        "genesis {} (chain {}), {} members",
        genesis_path.display(),
        genesis.chain_id_hex(),
        plan.members.len()
    ));
    let names: Vec<String> = plan.members.iter().map(|m| m.id.clone()).collect();
    let parts = names
        .iter()
        .map(|id| plan.member_part(id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut net = start_nodes(opts, &genesis_path, &keys, names.clone())?;
    progress("nodes up; their agents simulate the community");
    let started = Instant::now();
    let base = net
        .statuses()?
        .iter()
        .map(|s| s.applied_txs)
        .max()
        .unwrap_or(0);
    let mut signer = Signer::new(genesis.ledger.chain_id);
    // The operator signed block 1; its next nonce follows.
    signer
        .nonces
        .insert(keys.operator.public(), genesis.registrations.len() as u64);
    let mut opening: Vec<String> = keys
        .members
        .iter()
        .zip(&funding)
        .map(|((k, _), amount)| {
            let body = TxBody::Transfer {
                to: *k,
                amount: *amount,
            };
            to_hex(&signer.sign(&keys.treasury, body))
        })
        .collect();
    if let Some(cer) = &plan.cer {
        // The cap is the endowment: no RESCoin can be issued beyond what the genesis shows.
        let body = TxBody::CerOpen(CerParams {
            rule: cer.rule,
            period_hours: cer.period_hours,
            issuance_cap_base: u128::from(endowment),
        });
        opening.push(to_hex(&signer.sign(&keys.operator, body)));
    }
    net.submit(0, &opening)?;
    let none_due = vec![0; names.len()];
    net.wait_step(base + signer.count, &none_due, "funding")?;
    let mut drive = Drive {
        plan,
        parts,
        operator: &keys.operator,
        signer,
        at: Cursors::default(),
        schedule,
    };
    let periods = plan.cer.as_ref().map_or(0, |c| {
        c.closed_periods(plan.intervals.len(), plan.interval_s)
    });
    let mut t_s = genesis.genesis_time_s;
    let mut steps = 0u64;
    let mut step_finality_s = Vec::new();
    let total = plan.intervals.len();
    let mut read = 0;
    let mut member_txs = 0;
    while read < total || drive.at.cer_closed < periods {
        if steps > 0 {
            t_s += schedule.step_s;
            net.set_clock(t_s)?;
        }
        let t0 = Instant::now();
        let txs = drive.step(t_s);
        if !txs.is_empty() {
            net.submit(0, &txs)?;
        }
        let due = drive.due_by(t_s);
        member_txs = due.iter().sum::<u64>();
        net.wait_step(
            base + drive.signer.count + member_txs,
            &due,
            &format!("step {steps} (clock {t_s})"),
        )?;
        step_finality_s.push(t0.elapsed().as_secs_f64());
        read = schedule.readings(t_s).end;
        steps += 1;
        progress(&format!(
            "step {steps}: intervals read {read}/{total}, CER periods closed {}/{periods}, {} transactions",
            drive.at.cer_closed,
            drive.signer.count + member_txs
        ));
    }
    let drive_s = started.elapsed().as_secs_f64();
    let statuses = net.statuses()?;
    net.cluster.stop();
    let nodes = names
        .iter()
        .zip(&statuses)
        .map(|(name, s)| NodeEnd {
            name: name.clone(),
            finalized_height: s.finalized_height,
            state_root: s.state_root.clone(),
            own_finality_ms: s.own_finality_ms,
        })
        .collect();
    progress("nodes stopped; replaying node 0's store");
    let (_, ledger) = crate::verify::replay_dir(&genesis, &node_dir(&opts.dir, 0))?;
    let mut members = BTreeMap::new();
    for ((id, (k, _)), funded) in names.iter().zip(&keys.members).zip(&funding) {
        let f = member_figures(&ledger, k, *funded).map_err(|e| bad(&format!("member {id}"), e))?;
        members.insert(id.clone(), (to_hex(k), f));
    }
    let market = ledger.market();
    let cer = ledger.cer();
    Ok(Outcome {
        chain_id: genesis.chain_id_hex(),
        nodes,
        members,
        transactions: drive.signer.count + member_txs,
        steps,
        drive_s,
        step_finality_s,
        unfunded_bids: market
            .cleared
            .values()
            .map(|g| u64::from(g.unfunded_bids))
            .sum(),
        trades_cleared: market.cleared.values().map(|g| u64::from(g.trades)).sum(),
        trades_posted: ledger
            .trades()
            .filter(|t| t.status == scg_ledger::state::TradeStatus::Posted)
            .count() as u64,
        cer_periods_closed: cer.closed.len() as u64,
        cer_paid_base: cer
            .closed
            .values()
            .map(|r| r.incentive_base + r.valorisation_base)
            .sum(),
        treasury_end_base: ledger
            .account(&ledger.config().treasury)
            .map_or(0, |a| a.balance),
    })
}

/// Refuse a testnet directory that exists and is not empty (a testnet writes keys and
/// stores; it never mixes them with another run's).
pub fn check_dir(dir: &Path) -> Result<(), ChainError> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(io_err(dir))?
            .next()
            .is_none();
        if !empty {
            return Err(bad(
                &format!("--dir {}", dir.display()),
                "exists and is not empty; give a new directory",
            ));
        }
    }
    Ok(())
}

/// [`check_dir`], then create it.
fn prepare_dir(dir: &Path) -> Result<(), ChainError> {
    check_dir(dir)?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))
}

/// A member's figures read from a ledger: minted from the certificates its meters were
/// issued (× the mint rate), P2P money from its posted trades, balance from its account, and
/// the CER it received from the balance identity. On a testnet's chain a member's money moves
/// only by its funding, its mints, its trades and its CER payouts, so
/// `cer = balance + reserved + paid + fees − funded − minted − received`; the driver checks
/// the members' sum against the chain's own period records (`cer_paid_base`). An error when
/// the identity gives a negative CER (money left the member some other way).
pub fn member_figures(
    ledger: &Ledger,
    member: &PublicKey,
    funded: u128,
) -> Result<MemberFigures, String> {
    let rate = ledger.config().mint_rate_base_per_wh;
    // A certificate moved in part is split into a child with the same producer, so the
    // producer's certificates sum to the Wh its meters were issued.
    let minted_wh: u128 = ledger
        .certificates()
        .iter()
        .filter(|c| c.producer == *member)
        .map(|c| u128::from(c.energy_wh))
        .sum();
    let account = ledger.account(member);
    let mut f = MemberFigures {
        balance: account.map_or(0, |a| a.balance),
        minted: minted_wh * rate,
        funded,
        ..MemberFigures::default()
    };
    let reserved = account.map_or(0, |a| a.reserved);
    for t in ledger.trades() {
        if t.status != scg_ledger::state::TradeStatus::Posted {
            continue;
        }
        if t.buyer == *member {
            f.p2p_paid += t.paid_seller;
            f.fees_paid += t.paid_fee;
        }
        if t.seller == *member {
            f.p2p_received += t.paid_seller;
        }
    }
    let held = f.balance + reserved + f.p2p_paid + f.fees_paid;
    let came = f.funded + f.minted + f.p2p_received;
    f.cer_received = held.checked_sub(came).ok_or_else(|| {
        format!(
            "the balance identity fails: balance + reserved + paid + fees = {held} base units, below funded + minted + received = {came}"
        )
    })?;
    Ok(f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::genesis::MarketSpec;
    use scg_ledger::DeviceType;
    use scg_ledger::cer::{CerRule, SizeClass};

    /// A one-member plan of `days` hourly days with a daily CER.
    fn cer_plan(days: usize) -> Plan {
        let hours = days * 24;
        Plan {
            name: "t".into(),
            members: vec![PlanMember {
                id: "a".into(),
                meters: vec![(DeviceType::SupplyPoint, None)],
            }],
            epoch_s: 1_767_225_600,
            interval_s: HOUR_S,
            market: MarketSpec {
                epoch_s: 1_767_225_600,
                interval_s: HOUR_S,
                mechanism: "pay_as_clear".into(),
                fee_milli_eur_per_mwh: None,
                fee_basis_points: None,
                max_orders_per_member: 4,
                settle_window_s: HOUR_S,
            },
            mint_rate_base_per_wh: 1,
            intervals: vec![PlanInterval::default(); hours],
            cer: Some(PlanCer {
                rule: CerRule {
                    size_class: SizeClass::UpTo200Kw,
                    pv_bonus_milli_eur_per_mwh: 0,
                    valorisation_milli_eur_per_mwh: 8_000,
                    producer_share_bp: 5_000,
                },
                period_hours: 24,
                zonal_milli_eur_per_mwh: (0..hours as i64).collect(),
                budget_base: 0,
            }),
        }
    }

    #[test]
    fn cer_periods_close_only_when_priced_and_final_and_all_close() {
        let plan = cer_plan(3);
        let operator = MemberKey::generate().unwrap();
        let step_s = 24 * HOUR_S;
        let schedule = Schedule {
            epoch_s: plan.epoch_s,
            interval_s: plan.interval_s,
            step_s,
            intervals: plan.intervals.len(),
        };
        let mut drive = Drive {
            plan: &plan,
            parts: vec![plan.member_part("a").unwrap()],
            operator: &operator,
            signer: Signer::new(1),
            at: Cursors::default(),
            schedule,
        };
        let mut t_s = plan.epoch_s - plan.interval_s;
        let mut steps = 0;
        let mut read = 0;
        while read < plan.intervals.len() || drive.at.cer_closed < 3 {
            drive.step(t_s);
            read = schedule.readings(t_s).end;
            // Every hour ordered so far is priced; no period is closed before its readings
            // are final (its end plus the settle window) or before its hours are priced.
            let ordered = schedule.orders(t_s).end as u64;
            assert!(drive.at.priced >= ordered.min(72));
            for p in 0..drive.at.cer_closed {
                assert!(t_s > plan.epoch_s + (p + 1) * step_s + 2 * step_s);
                assert!(drive.at.priced >= (p + 1) * 24);
                // Every reading of the period was due at an earlier step.
                assert!(schedule.readings(t_s - step_s).end as u64 >= (p + 1) * 24);
            }
            t_s += step_s;
            steps += 1;
            assert!(steps < 10, "the drive does not end");
        }
        assert_eq!((drive.at.priced, drive.at.cer_closed), (72, 3));
        // Steps 0..=6: the clock starts an hour before the epoch; day 2's readings are due at
        // step 5 (a step after its gates closed); its period closes once the clock is past
        // its end plus the two-day window, at step 6.
        assert_eq!(steps, 7);
    }

    #[test]
    fn the_driver_holds_no_member_secret_key() {
        let plan = cer_plan(1);
        let dir = std::env::temp_dir().join(format!("scg-testnet-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = generate_keys(&plan, &dir).unwrap();
        // The driver's `Keys` holds the members' and meters' public keys only (by type);
        // their secret keys are in the member's node directory, nowhere in keys/.
        let (member, meters): &(PublicKey, Vec<PublicKey>) = &keys.members[0];
        let secret = MemberKey::read(&member_key_file(&dir, 0)).unwrap();
        assert_eq!(secret.public(), *member);
        let meter = MemberKey::read(&meter_key_file(&node_dir(&dir, 0), DeviceType::SupplyPoint));
        assert_eq!(meter.unwrap().public(), meters[0]);
        let mut in_keys: Vec<String> = std::fs::read_dir(dir.join("keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        in_keys.sort();
        assert_eq!(
            in_keys,
            [
                "grid.key",
                "member0-supply-point.pub",
                "member0.pub",
                "operator.key",
                "treasury.key"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_agent_signs_only_its_members_orders_and_readings_each_once() {
        use scg_ledger::market::{OfferSource, OrderBody, OrderSide};
        let mut plan = cer_plan(2);
        plan.members.push(PlanMember {
            id: "b".into(),
            meters: vec![(DeviceType::SupplyPoint, None)],
        });
        let order = |m: usize| {
            (
                m,
                OrderBody {
                    interval: 0,
                    side: OrderSide::Bid,
                    energy_wh: 5,
                    limit_milli_eur_per_mwh: 1,
                    source: OfferSource::Unspecified,
                },
            )
        };
        for iv in &mut plan.intervals {
            iv.orders = vec![order(0), order(1)];
            iv.readings = (0..2)
                .map(|m| PlanReading {
                    member: m,
                    device: DeviceType::SupplyPoint,
                    produced_wh: 0,
                    consumed_wh: 1,
                })
                .collect();
        }
        let dir = std::env::temp_dir().join(format!("scg-testnet-agent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = generate_keys(&plan, &dir).unwrap();
        let (genesis, _) = write_genesis(&plan, &keys, (1_000, 48 * HOUR_S), &dir).unwrap();
        let own = MemberKey::read(&member_key_file(&dir, 1)).unwrap();
        let agent_keys = crate::agent::AgentKeys::load(&genesis, own, &node_dir(&dir, 1)).unwrap();
        // Another member's meter keys are refused.
        let other = MemberKey::read(&member_key_file(&dir, 1)).unwrap();
        assert!(crate::agent::AgentKeys::load(&genesis, other, &node_dir(&dir, 0)).is_err());
        let mut agent = crate::agent::Agent::new(&genesis, agent_keys, &plan, 24).unwrap();
        assert_eq!(agent.name(), "b");
        let schedule = Schedule {
            epoch_s: plan.epoch_s,
            interval_s: plan.interval_s,
            step_s: 24 * HOUR_S,
            intervals: plan.intervals.len(),
        };
        let (member, meters) = &keys.members[1];
        let mut seen = std::collections::BTreeSet::new();
        let mut t = schedule.start_s();
        while !agent.done() {
            for bytes in agent.due(t) {
                let tx = scg_ledger::Tx::decode(&bytes).unwrap();
                let key = match tx.body {
                    TxBody::Order(o) => {
                        assert!(schedule.orders(t).contains(&(o.interval as usize)));
                        assert!(seen.insert(("order", o.interval)));
                        member
                    }
                    TxBody::MeterReport { interval, .. } => {
                        assert!(schedule.readings(t).contains(&(interval as usize)));
                        assert!(seen.insert(("reading", interval)));
                        &meters[0]
                    }
                    other => panic!("the agent signed {other:?}"),
                };
                assert_eq!(tx.signer, *key);
            }
            // The same clock again signs nothing new.
            assert!(agent.due(t).is_empty());
            t += schedule.step_s;
        }
        assert_eq!(seen.len(), 2 * plan.intervals.len());
        assert_eq!((agent.signed(), agent.missed()), (seen.len() as u64, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cer_plan_is_checked() {
        let mut plan = cer_plan(1);
        let opts = Options {
            dir: PathBuf::from("/nonexistent"),
            exe: PathBuf::from("scg"),
            intervals_per_step: 24,
            cancel: Arc::default(),
            agent: AgentArgs {
                scenario: None,
                seed: 1,
                days: None,
            },
        };
        assert!(check_plan(&plan, &opts).is_ok());
        if let Some(c) = &mut plan.cer {
            c.zonal_milli_eur_per_mwh.truncate(23);
        }
        let e = check_plan(&plan, &opts).unwrap_err().to_string();
        assert!(e.contains("zonal") && e.contains("23"), "{e}");
        plan.interval_s = 7_200;
        let e = check_plan(&plan, &opts).unwrap_err().to_string();
        assert!(e.contains("3600"), "{e}");
    }
}
