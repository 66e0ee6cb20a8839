//! `scg chain run`: one production node on the commonware tokio runtime, authenticated p2p
//! (lookup: every peer's key and address is given), and an HTTP API on a separate address:
//!
//! - `GET /status` → JSON `{"chain_id", "height", "finalized_height", "state_root", "peers",
//!   "mempool"}` (read-only);
//! - `POST /tx` with the signed transaction as hex in the body → `{"id": "<hex>"}`, or HTTP 400
//!   with `{"error": "..."}` naming why it was refused (non-member signer, signature for
//!   another chain, malformed). Accepted transactions are gossiped to the other validators.
//!
//! Documented in `docs/api.md`. Blocks until the process is killed.

use crate::ChainError;
use crate::agent::{Agent, AgentKeys, AgentStatus};
use crate::app::{BlockClock, Mailbox, ManualClock, SharedStatus};
use crate::genesis::{Genesis, consensus_public_key, p2p_namespace};
use crate::keys::MemberKey;
use crate::node::{self, Channels, NodeConfig, Timing};
use crate::plan::Plan;
use commonware_cryptography::{ChaCha20Poly1305, Signer as _};
use commonware_p2p::AddressableManager as _;
use commonware_p2p::authenticated::lookup;
use commonware_p2p::types::Address;
use commonware_runtime::{
    Clock as _, Runner as _, Spawner as _, Supervisor as _, tokio as cw_tokio,
};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::NZUsize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A peer: validator key and p2p address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Public key.
    pub key: [u8; 32],
    /// Address.
    pub addr: SocketAddr,
}

/// Parse `KEYHEX@HOST:PORT`.
pub fn parse_peer(s: &str) -> Result<Peer, ChainError> {
    let bad = |reason: String| ChainError::BadInput {
        what: format!("peer `{s}`"),
        reason,
    };
    let (k, a) = s
        .split_once('@')
        .ok_or_else(|| bad("expected PUBLIC_KEY_HEX@IP:PORT".into()))?;
    let key = crate::keys::parse_public_key("public key", k).map_err(bad)?;
    let addr = a
        .parse::<SocketAddr>()
        .map_err(|e| bad(format!("address `{a}`: {e}")))?;
    Ok(Peer { key, addr })
}

/// The HTTP API address: `http` if given, else the p2p `listen` address with the next port
/// (e.g. p2p on 127.0.0.1:7000 → API on 127.0.0.1:7001).
pub fn http_addr(listen: SocketAddr, http: Option<SocketAddr>) -> Result<SocketAddr, ChainError> {
    if let Some(a) = http {
        return Ok(a);
    }
    let port = listen
        .port()
        .checked_add(1)
        .ok_or_else(|| ChainError::BadInput {
            what: format!("--listen {listen}"),
            reason: "port 65535 leaves no next port for the HTTP API; give --http".into(),
        })?;
    Ok(SocketAddr::new(listen.ip(), port))
}

/// Everything `scg chain run` needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Genesis file.
    pub genesis: PathBuf,
    /// Key file.
    pub key: PathBuf,
    /// Node directory (block store and consensus journal).
    pub dir: PathBuf,
    /// p2p listen address.
    pub listen: SocketAddr,
    /// HTTP API address; `None` = the p2p address with the next port ([`http_addr`]).
    pub http: Option<SocketAddr>,
    /// The other validators.
    pub peers: Vec<Peer>,
    /// Block timestamps from a clock set over `POST /clock` (testnets: `scg testnet`) instead
    /// of the wall clock; starts at the genesis time.
    pub manual_clock: bool,
}

/// Check the configuration against the genesis before opening anything: this node's key and
/// every peer must be validators of this chain.
pub fn check(genesis: &Genesis, key: &MemberKey, peers: &[Peer]) -> Result<(), ChainError> {
    node::check_membership(genesis, key)?;
    let validators = genesis.validators();
    for p in peers {
        if !validators.contains(&p.key) {
            return Err(ChainError::Refused {
                chain_id: genesis.chain_id_hex(),
                reason: format!(
                    "peer {} is not a validator in this genesis (different genesis files?)",
                    scg_ledger::merkle::to_hex(&p.key)
                ),
            });
        }
    }
    Ok(())
}

/// One node on the tokio runtime (an options struct: several fields share a type).
#[derive(Debug, Clone)]
pub struct TokioNode {
    /// The chain.
    pub genesis: Arc<Genesis>,
    /// This node's key.
    pub key: MemberKey,
    /// Node directory (block store).
    pub dir: PathBuf,
    /// p2p listen address.
    pub listen: SocketAddr,
    /// The other validators.
    pub peers: Vec<Peer>,
    /// Consensus journal partition in the runtime's storage directory.
    pub partition: String,
    /// Keep finalized hashes and transaction ids in the status (benchmarks).
    pub keep_history: bool,
    /// Where block timestamps come from.
    pub clock: BlockClock,
}

/// Start one node inside a commonware tokio runtime: authenticated p2p (lookup) on `listen`,
/// dialing `peers`, consensus journal in `partition` of the runtime's storage directory.
pub fn start_on_tokio(
    context: cw_tokio::Context,
    cfg: TokioNode,
) -> Result<node::Node, ChainError> {
    let TokioNode {
        genesis,
        key,
        dir,
        listen,
        peers,
        partition,
        keep_history,
        clock,
    } = cfg;
    let peers = &peers[..];
    check(&genesis, &key, peers)?;
    let mut addrs = Vec::new();
    for p in peers {
        let pk = consensus_public_key(&p.key).map_err(|r| ChainError::BadInput {
            what: "peer key".into(),
            reason: r,
        })?;
        addrs.push((pk, Address::Symmetric(p.addr)));
    }
    let me = key.consensus_key();
    addrs.push((me.public_key(), Address::Symmetric(listen)));
    let n = genesis.validators().len();
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: me,
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let p2p_cfg = lookup::Config::local(
        handshake,
        &p2p_namespace(),
        listen,
        NZUsize!(n + 1),
        crate::wire::MAX_MESSAGE_BYTES as u32,
        NZUsize!(1024),
    );
    let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), p2p_cfg);
    let map =
        commonware_utils::ordered::Map::try_from(addrs).map_err(|e| ChainError::BadInput {
            what: "--peers".into(),
            reason: format!("a key appears twice: {e:?}"),
        })?;
    let _ = oracle.track(0, map);
    let q = node::channel_quota;
    let votes = network.register(node::CHANNEL_VOTES, q(node::CHANNEL_VOTES));
    let certs = network.register(node::CHANNEL_CERTS, q(node::CHANNEL_CERTS));
    let resolver = network.register(node::CHANNEL_RESOLVER, q(node::CHANNEL_RESOLVER));
    let blocks = network.register(node::CHANNEL_BLOCKS, q(node::CHANNEL_BLOCKS));
    network.start();
    node::start(
        context.child("node"),
        NodeConfig {
            genesis,
            key,
            dir,
            partition,
            behavior: crate::app::Behavior::Honest,
            timing: Timing {
                leader_timeout: Duration::from_millis(500),
                certification_timeout: Duration::from_secs(1),
                timeout_retry: Duration::from_secs(1),
                skip_timeout: Duration::from_secs(2),
            },
            keep_history,
            clock,
        },
        Channels {
            votes,
            certs,
            resolver,
            blocks,
        },
        oracle,
    )
}

/// Where a node's member agent gets its plan: a function run on a thread of its own at
/// start-up (the community engine's year takes seconds of CPU; the node joins consensus
/// meanwhile), returning the whole plan or why it could not be built.
pub type PlanSource = Box<dyn FnOnce() -> Result<Plan, String> + Send>;

/// A member agent to run in the node (`scg chain run --agent-scenario`, see [`crate::agent`]).
pub struct AgentRun {
    /// Intervals per clock step (the testnet's `--intervals-per-step`).
    pub step_intervals: u64,
    /// The plan, built off the consensus thread.
    pub plan: PlanSource,
}

impl std::fmt::Debug for AgentRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRun")
            .field("step_intervals", &self.step_intervals)
            .finish_non_exhaustive()
    }
}

/// How often an agent looks at the block clock.
const AGENT_POLL: Duration = Duration::from_millis(5);

/// Run a node until the process ends; with `agent`, the member's agent too (its meters' keys
/// are read from the node's directory first, so a missing key fails before anything starts).
pub fn run(cfg: RunConfig, agent: Option<AgentRun>) -> Result<(), ChainError> {
    let text = crate::read_text(&cfg.genesis, crate::MAX_GENESIS_BYTES)?;
    let genesis = Arc::new(Genesis::parse(&cfg.genesis.display().to_string(), &text)?);
    let key = MemberKey::read(&cfg.key)?;
    check(&genesis, &key, &cfg.peers)?;
    let agent = match agent {
        Some(a) => {
            let keys = AgentKeys::load(&genesis, key.clone(), &cfg.dir)?;
            // The simulation runs on its own thread from now on, while the node starts.
            let (tx, rx) = std::sync::mpsc::channel();
            let source = a.plan;
            std::thread::spawn(move || {
                let _ = tx.send(source());
            });
            Some((keys, a.step_intervals, rx))
        }
        None => None,
    };
    let http = http_addr(cfg.listen, cfg.http)?;
    crate::store::keep_genesis(&cfg.dir, &genesis, &text)?;
    let journal = cfg.dir.join("consensus");
    std::fs::create_dir_all(&journal).map_err(|e| ChainError::Io {
        path: journal.clone(),
        source: e,
    })?;
    let executor = cw_tokio::Runner::new(cw_tokio::Config::new().with_storage_directory(&journal));
    let manual = cfg
        .manual_clock
        .then(|| Arc::new(ManualClock::new(genesis.genesis_time_s)));
    let clock = manual
        .clone()
        .map_or(BlockClock::Runtime, BlockClock::Manual);
    executor.start(|context| async move {
        let started = start_on_tokio(
            context.child("node"),
            TokioNode {
                genesis: genesis.clone(),
                key,
                dir: cfg.dir.clone(),
                listen: cfg.listen,
                peers: cfg.peers.clone(),
                partition: "scg-consensus".into(),
                keep_history: false,
                clock,
            },
        )?;
        let listener =
            tokio::net::TcpListener::bind(http)
                .await
                .map_err(|e| ChainError::BadInput {
                    what: format!("HTTP API address {http}"),
                    reason: e.to_string(),
                })?;
        let router = http_router(
            started.mailbox.clone(),
            started.status.clone(),
            genesis.chain_id_hex(),
            manual.clone(),
        );
        let server = context.child("http").spawn(move |_| async move {
            let _ = axum::serve(listener, router).await;
        });
        let agent_failed = {
            let (status, genesis, clock) =
                (started.status.clone(), genesis.clone(), manual.clone());
            let mailbox = started.mailbox.clone();
            let ctx = context.child("agent");
            async move {
                match agent {
                    Some((keys, step, plan)) => {
                        let io = AgentIo {
                            ctx,
                            status,
                            mailbox,
                            clock,
                        };
                        run_agent(io, &genesis, (keys, step), plan).await
                    }
                    None => futures::future::pending().await,
                }
            }
        };
        // Runs until killed, or until the node finds that the other validators run another
        // genesis: then it exits saying so.
        let status = started.status.clone();
        let refused = async move {
            loop {
                let why = status.lock().ok().and_then(|s| s.refusal.clone());
                if let Some(reason) = why {
                    return reason;
                }
                context.sleep(Duration::from_millis(200)).await;
            }
        };
        let chain_id = genesis.chain_id_hex();
        let refused = async move {
            ChainError::Refused {
                chain_id,
                reason: refused.await,
            }
        };
        let running = futures::future::join(started.engine, server);
        futures::pin_mut!(refused, agent_failed, running);
        let failed = futures::future::select(refused, agent_failed);
        match futures::future::select(failed, running).await {
            futures::future::Either::Left((e, _)) => Err(e.factor_first().0),
            futures::future::Either::Right(_) => Ok(()),
        }
    })
}

/// What an agent talks to: its node's runtime, status, mailbox and block clock.
struct AgentIo {
    ctx: cw_tokio::Context,
    status: SharedStatus,
    mailbox: Mailbox,
    clock: Option<Arc<ManualClock>>,
}

impl AgentIo {
    /// The time of the blocks this node proposes: the manual clock, else the wall clock.
    fn block_now_s(&self) -> u64 {
        match &self.clock {
            Some(c) => c.now_s(),
            None => self
                .ctx
                .current()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    fn set_status(&self, f: impl FnOnce(&mut AgentStatus)) {
        if let Ok(mut st) = self.status.lock() {
            f(st.agent.get_or_insert_with(AgentStatus::default));
        }
    }
}

/// The member's agent: waits for the plan (built on its own thread), then, whenever the
/// block clock moves, submits what is due to this node's mempool. Returns only on failure
/// (the plan could not be built, or it does not fit this chain): the node then exits.
async fn run_agent(
    io: AgentIo,
    genesis: &Genesis,
    (keys, step_intervals): (AgentKeys, u64),
    plan: std::sync::mpsc::Receiver<Result<Plan, String>>,
) -> ChainError {
    let agent_err = |reason: String| ChainError::BadInput {
        what: "agent".into(),
        reason,
    };
    io.set_status(|_| {});
    let plan = loop {
        match plan.try_recv() {
            Ok(Ok(p)) => break p,
            Ok(Err(e)) => return agent_err(format!("simulating the community: {e}")),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                return agent_err("the simulation thread ended without a plan".into());
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => io.ctx.sleep(AGENT_POLL).await,
        }
    };
    let mut agent = match Agent::new(genesis, keys, &plan, step_intervals) {
        Ok(a) => a,
        Err(e) => return e,
    };
    drop(plan);
    let name = agent.name().to_string();
    io.set_status(|s| {
        s.member = name;
        s.ready = true;
    });
    let mut last = None;
    loop {
        let t = io.block_now_s();
        if last != Some(t) && !agent.done() {
            last = Some(t);
            let txs = agent.due(t);
            let results =
                futures::future::join_all(txs.into_iter().map(|tx| io.mailbox.submit(tx))).await;
            let missed = agent.missed();
            let done = agent.done();
            io.set_status(|s| {
                for r in results {
                    match r {
                        Ok(_) => s.accepted += 1,
                        Err(e) => {
                            s.refused += 1;
                            s.last_refusal = Some(e);
                        }
                    }
                }
                s.missed = missed;
                s.done = done;
            });
        }
        io.ctx.sleep(AGENT_POLL).await;
    }
}

/// Most transactions in one `POST /txs` body.
pub const MAX_TXS_PER_REQUEST: usize = crate::wire::MAX_GOSSIP_TXS;
/// Largest `POST /txs` body (hex, one transaction per line).
pub const MAX_TXS_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Summary of the finalization latencies a node observed for its own proposals, ms:
/// `(count, median, max)`.
fn latency_summary(latencies: &[Duration]) -> (usize, u128, u128) {
    let mut ms: Vec<u128> = latencies.iter().map(Duration::as_millis).collect();
    ms.sort_unstable();
    let median = ms.get(ms.len() / 2).copied().unwrap_or(0);
    (ms.len(), median, ms.last().copied().unwrap_or(0))
}

/// The HTTP API (status and transaction submission; with a manual clock, `POST /clock`).
pub fn http_router(
    mailbox: Mailbox,
    status: SharedStatus,
    chain_id: String,
    clock: Option<Arc<ManualClock>>,
) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    let st = status.clone();
    let id = chain_id.clone();
    let status_clock = clock.clone();
    let batch_mailbox = mailbox.clone();
    let router = axum::Router::new()
        .route(
            "/status",
            get(move || {
                let st = st.clone();
                let id = id.clone();
                let clock = status_clock.clone();
                async move {
                    let s = st.lock().map(|s| s.clone()).unwrap_or_default();
                    let (count, median, max) = latency_summary(&s.own_latencies);
                    axum::Json(serde_json::json!({
                        "chain_id": id,
                        "height": s.height,
                        "finalized_height": s.finalized_height,
                        "state_root": scg_ledger::merkle::to_hex(&s.state_root),
                        "peers": s.peers,
                        "mempool": s.mempool,
                        "applied_txs": s.applied_txs,
                        "clock_s": clock.map(|c| c.now_s()),
                        "own_finality_ms": {"count": count, "median": median, "max": max},
                        "agent": s.agent.as_ref().map(|a| serde_json::json!({
                            "member": a.member,
                            "ready": a.ready,
                            "accepted": a.accepted,
                            "refused": a.refused,
                            "last_refusal": a.last_refusal,
                            "missed": a.missed,
                            "done": a.done,
                        })),
                    }))
                }
            }),
        )
        .route(
            "/tx",
            post(move |body: String| {
                let mb = mailbox.clone();
                async move {
                    let Some(bytes) = crate::genesis::hex_vec(&body) else {
                        return (
                            StatusCode::BAD_REQUEST,
                            axum::Json(serde_json::json!({"error": "body must be the signed transaction as hex"})),
                        );
                    };
                    match mb.submit(bytes).await {
                        Ok(id) => (StatusCode::OK, axum::Json(serde_json::json!({"id": format!("{id:032x}")}))),
                        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": e}))),
                    }
                }
            })
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024)),
        )
        .route(
            "/txs",
            post(move |body: String| {
                let mb = batch_mailbox.clone();
                async move { submit_many(&mb, &body).await }
            })
            .layer(axum::extract::DefaultBodyLimit::max(MAX_TXS_BODY_BYTES)),
        );
    match clock {
        None => router,
        Some(c) => router.route(
            "/clock",
            post(move |body: String| {
                let c = c.clone();
                async move { set_clock(&c, &body) }
            }),
        ),
    }
}

/// `POST /txs`: one signed transaction per line (hex), all submitted at once (admitted as one
/// signature batch); answers `{"accepted": n, "errors": [{"line": i, "error": "..."}]}` with
/// HTTP 200, or 400 when the body itself is unusable.
async fn submit_many(
    mb: &Mailbox,
    body: &str,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    use axum::http::StatusCode;
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > MAX_TXS_PER_REQUEST {
        let error = format!(
            "{} transactions; at most {MAX_TXS_PER_REQUEST} per request",
            lines.len()
        );
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": error })),
        );
    }
    let mut errors = Vec::new();
    let mut pending = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        match crate::genesis::hex_vec(l) {
            Some(bytes) => pending.push((i, mb.submit(bytes))),
            None => errors
                .push(serde_json::json!({"line": i, "error": "not a signed transaction in hex"})),
        }
    }
    let (lines_at, calls): (Vec<usize>, Vec<_>) = pending.into_iter().unzip();
    let results = futures::future::join_all(calls).await;
    let mut accepted = 0usize;
    for (i, r) in lines_at.into_iter().zip(results) {
        match r {
            Ok(_) => accepted += 1,
            Err(e) => errors.push(serde_json::json!({"line": i, "error": e})),
        }
    }
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"accepted": accepted, "errors": errors})),
    )
}

/// `POST /clock` with `accept T` or `now T` (Unix seconds): phase 1 or 2 of
/// [`ManualClock`]; answers the clock's `now_s` and `accept_s`.
fn set_clock(
    clock: &ManualClock,
    body: &str,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    use axum::http::StatusCode;
    let mut words = body.split_whitespace();
    let verb = words.next();
    let t = words.next().and_then(|w| w.parse::<u64>().ok());
    match (verb, t, words.next()) {
        (Some("accept"), Some(t), None) => clock.accept(t),
        (Some("now"), Some(t), None) => clock.advance(t),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    serde_json::json!({"error": "body must be `accept T` or `now T` (Unix seconds)"}),
                ),
            );
        }
    }
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"now_s": clock.now_s(), "accept_s": clock.accept_s()})),
    )
}
