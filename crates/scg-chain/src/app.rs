//! The consensus application of a member node.
//!
//! Simplex orders block digests; this actor gives them meaning:
//! - **propose**: builds the next ledger block on the parent consensus names, from pending
//!   signed transactions, keeping only those the ledger accepts (pre-executed on a copy);
//! - **verify**: re-executes a proposed block on the parent's state with the scg-ledger state
//!   machine; a block with a rejected transaction, a wrong root, a wrong parent, or a timestamp
//!   too far ahead is refused;
//! - **relay**: sends proposed blocks to the other validators; answers fetches for blocks and
//!   finalized records (catch-up after a crash or a partition);
//! - **report**: on a finalization, persists the block (and any ancestors it finalizes) with
//!   its certificate before anything else sees it as final.
//!
//! It never panics on network input (every decode is checked), and never lets the ledger's
//! poisoning reach the finalized state (proposals execute on copies).

use crate::ChainError;
use crate::genesis::Genesis;
use crate::keys::MemberKey;
use crate::store::Store;
use crate::wire::{
    Cert, MAX_GOSSIP_TXS, MAX_PROPOSAL_TXS, MAX_RECORDS_PER_RESPONSE, Message, Record, Scheme,
    digest_of,
};
use commonware_actor::Feedback;
use commonware_consensus::simplex::Plan;
use commonware_consensus::simplex::types::{Activity, Context};
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Reporter};
use commonware_cryptography::ed25519::PublicKey;
use commonware_cryptography::sha256::Digest;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::Clock;
use commonware_utils::channel::{mpsc, oneshot};
use scg_ledger::merkle::Hash;
use scg_ledger::state::CheckedBlock;
use scg_ledger::tx::tx_hash;
use scg_ledger::{Block, BlockHeader, Ledger, Tx};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// How far ahead of the local clock (and the parent) a block timestamp may be.
pub const MAX_FUTURE_S: u64 = 60;
/// Most pending transactions kept.
pub const MAX_MEMPOOL: usize = 50_000;
/// Most unfinalized blocks kept (beyond, the oldest are dropped).
pub const MAX_UNFINALIZED_BLOCKS: usize = 4096;
/// Most latencies kept in the status.
pub const MAX_LATENCIES: usize = 10_000;
/// Most finalization certificates kept while their blocks are missing.
pub const MAX_WAITING_CERTS: usize = 1024;
/// How often a node announces its height and, when behind, asks for records.
pub const CATCH_UP_EVERY: Duration = Duration::from_millis(500);
/// Most missing blocks asked for per tick.
pub const MAX_WANTED_PER_TICK: usize = 8;
/// Why a proposal was refused when one of its transactions (not already checked on admission)
/// has a signature that does not verify for this chain ([`Status::refused`]).
pub const REFUSED_SIGNATURE: &str = "a transaction's signature does not verify for this chain";
/// Longest a submitted transaction is held before its admission, so that submissions arriving
/// close together are checked as one signature batch and gossiped as one message.
pub const SUBMIT_WINDOW: Duration = Duration::from_millis(5);
/// Held submissions are admitted at once when this many are waiting.
pub const SUBMIT_BATCH: usize = 512;
/// Most queued requests the actor takes in one step (submissions among them are checked as one
/// signature batch and gossiped as one message).
pub const MAX_REQUESTS_PER_STEP: usize = 4096;
/// How often pending proposals and verifications are retried.
pub const TICK: Duration = Duration::from_millis(50);
/// With no pending transactions, a leader waits this long before proposing an empty block
/// (keeps an idle chain from spinning; below the leader timeout so views still complete).
pub const EMPTY_BLOCK_DELAY: Duration = Duration::from_millis(200);

/// How a node behaves (tests inject Byzantine behaviour; `scg chain run` is always honest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    /// Follows the protocol.
    #[default]
    Honest,
    /// Proposes blocks whose state root is wrong.
    WrongStateRoot,
    /// Proposes blocks holding a transaction the ledger rejects (signed by a non-member).
    InvalidTx,
    /// Never answers verification requests, so never votes to notarize.
    WithholdVotes,
    /// Admits submitted transactions without checking their signatures, so it proposes a
    /// transaction signed for another chain when one is submitted to it.
    AdmitUnchecked,
    /// Proposes its pending transactions in reverse arrival order (an on-chain market's orders
    /// enter the clearing in canonical order, so this must change no trade).
    ReorderTxs,
    /// Leaves every market order (kind 17) out of the blocks it proposes (censorship: the
    /// next honest leader includes them if they arrive before the gate).
    OmitOrders,
}

/// What a node reports about itself (the `/status` endpoint, tests).
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Highest block this node has verified or built (finalized or not).
    pub height: u64,
    /// Highest finalized block.
    pub finalized_height: u64,
    /// State root at the finalized height.
    pub state_root: Hash,
    /// Hashes of finalized blocks, index = height - 2 (block 1 is the genesis registrations).
    pub finalized_hashes: Vec<Hash>,
    /// Ids of transactions in finalized blocks, in order.
    pub finalized_txs: Vec<u128>,
    /// Proposals this node refused, by reason (e.g. [`REFUSED_SIGNATURE`]).
    pub refused: BTreeMap<String, u64>,
    /// Transactions waiting.
    pub mempool: usize,
    /// Finalization latencies observed for this node's own proposals (virtual or wall time).
    pub own_latencies: Vec<Duration>,
    /// Validators heard from in the last [`PEER_FRESH`].
    pub peers: usize,
    /// Why this node stopped: more than `f` of the other validators run another genesis
    /// (see [`Application::check_genesis_agreement`]). `scg chain run` exits with it.
    pub refusal: Option<String>,
    /// Proposals in which a Byzantine [`Behavior::ReorderTxs`] or [`Behavior::OmitOrders`]
    /// node reordered or left out a market order (tests check the behaviour was exercised;
    /// always 0 on an honest node).
    pub tampered_proposals: u64,
    /// Transactions applied by the finalized chain, registrations included (the ledger's
    /// `applied_txs`): a driver that knows how many it submitted can tell when all are final.
    pub applied_txs: u64,
    /// This node's member agent, when it runs one (`scg chain run --agent-scenario`).
    pub agent: Option<crate::agent::AgentStatus>,
}

/// A peer counts as connected if it was heard from this recently.
pub const PEER_FRESH: Duration = Duration::from_secs(5);

/// Shared view of a node's status.
pub type SharedStatus = Arc<Mutex<Status>>;

/// Requests to the application actor.
#[derive(Debug)]
pub enum Request {
    /// Build a block.
    Propose(Context<Digest, PublicKey>, oneshot::Sender<Digest>),
    /// Check a block.
    Verify(Context<Digest, PublicKey>, Digest, oneshot::Sender<bool>),
    /// Send a block we built.
    Broadcast(Digest),
    /// A finalization certificate (already verified by the engine).
    Finalized(Box<Cert>),
    /// A transaction submitted locally; answers with its id or why it was refused.
    Submit(Vec<u8>, oneshot::Sender<Result<u128, String>>),
}

/// A submitted transaction and where to answer with its id or why it was refused.
type Submission = (Vec<u8>, oneshot::Sender<Result<u128, String>>);

/// Mailbox: the automaton, relay and reporter consensus calls.
#[derive(Debug, Clone)]
pub struct Mailbox {
    tx: mpsc::UnboundedSender<Request>,
}

impl Mailbox {
    /// Submit a signed transaction to this node.
    pub async fn submit(&self, tx: Vec<u8>) -> Result<u128, String> {
        let (s, r) = oneshot::channel();
        self.tx
            .send(Request::Submit(tx, s))
            .map_err(|_| "node is shutting down".to_string())?;
        r.await.map_err(|_| "node is shutting down".to_string())?
    }
}

impl Automaton for Mailbox {
    type Context = Context<Digest, PublicKey>;
    type Digest = Digest;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let (s, r) = oneshot::channel();
        // A closed actor drops the sender, which consensus reads as "no proposal".
        let _ = self.tx.send(Request::Propose(context, s));
        r
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        let (s, r) = oneshot::channel();
        let _ = self.tx.send(Request::Verify(context, payload, s));
        r
    }
}

impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = PublicKey;
    type Plan = Plan<PublicKey>;

    fn broadcast(&mut self, payload: Digest, _plan: Plan<PublicKey>) -> Feedback {
        let _ = self.tx.send(Request::Broadcast(payload));
        Feedback::Ok
    }
}

impl Reporter for Mailbox {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        if let Activity::Finalization(f) = activity {
            let _ = self.tx.send(Request::Finalized(Box::new(f)));
        }
        Feedback::Ok
    }
}

/// Where a node's block timestamps come from.
#[derive(Debug, Clone, Default)]
pub enum BlockClock {
    /// The runtime's clock: wall time in `scg chain run`, virtual time in simulations.
    #[default]
    Runtime,
    /// A clock set from outside (`scg chain run --manual-clock`, `POST /clock`): a testnet's
    /// driver moves simulated time forward as fast as consensus finalizes, whole market
    /// intervals at a time. Consensus keeps using the runtime clock for its timeouts.
    Manual(Arc<ManualClock>),
}

/// A block clock moved from outside, never backwards, in two phases so that no honest node
/// refuses another's block for a timestamp it has not reached yet: first every node is told
/// to **accept** blocks up to `t` ([`ManualClock::accept`]), then to **propose** at `t`
/// ([`ManualClock::advance`]). A block's timestamp is `max(now_s, parent)`; a block is
/// refused past `max(accept_s, parent) + MAX_FUTURE_S`.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_s: std::sync::atomic::AtomicU64,
    accept_s: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    /// A clock at `start_s` (the genesis time).
    pub fn new(start_s: u64) -> Self {
        Self {
            now_s: start_s.into(),
            accept_s: start_s.into(),
        }
    }

    /// Timestamp of the blocks this node proposes.
    pub fn now_s(&self) -> u64 {
        self.now_s.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Latest time whose blocks this node accepts (before [`MAX_FUTURE_S`]).
    pub fn accept_s(&self) -> u64 {
        self.accept_s.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Phase 1: accept blocks up to `t_s` (never moves back).
    pub fn accept(&self, t_s: u64) {
        self.accept_s
            .fetch_max(t_s, std::sync::atomic::Ordering::SeqCst);
    }

    /// Phase 2: propose at `t_s` (and accept it; never moves back).
    pub fn advance(&self, t_s: u64) {
        self.accept(t_s);
        self.now_s
            .fetch_max(t_s, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Application configuration.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The chain.
    pub genesis: Arc<Genesis>,
    /// This node's key.
    pub key: MemberKey,
    /// Behaviour (honest outside tests).
    pub behavior: Behavior,
    /// Keep every finalized block hash and transaction id in the status (tests, benchmarks;
    /// grows without bound, so production nodes leave it off).
    pub keep_history: bool,
    /// Validators the consensus engine blocked (a vote, certificate or message from them did
    /// not verify or decode for this chain), filled by [`crate::node::BlockWatch`].
    pub blocked: Arc<Mutex<BTreeSet<PublicKey>>>,
    /// Where block timestamps come from.
    pub clock: BlockClock,
}

/// The application actor.
pub struct Application<E, S, R> {
    context: E,
    cfg: AppConfig,
    rx: mpsc::UnboundedReceiver<Request>,
    sender: S,
    receiver: R,
    store: Store,
    status: SharedStatus,
    verifier: Scheme,
    participants: Vec<PublicKey>,
    genesis_digest: Digest,
    /// Known blocks by hash (proposed or received), not yet final.
    blocks: HashMap<Hash, Block>,
    /// Insertion order of `blocks`, for the size bound.
    block_order: VecDeque<Hash>,
    /// States after verified (or built) blocks, by block hash.
    states: HashMap<Hash, Ledger>,
    /// The finalized head.
    head: (u64, Hash),
    head_ledger: Ledger,
    /// Finalizations waiting for blocks we do not have yet.
    waiting: BTreeMap<Hash, Cert>,
    pending_verify: Vec<(Context<Digest, PublicKey>, Digest, oneshot::Sender<bool>)>,
    pending_propose: Vec<(
        Context<Digest, PublicKey>,
        oneshot::Sender<Digest>,
        std::time::SystemTime,
    )>,
    ticks: u64,
    /// Requests a withholding node never answers (kept so consensus never sees a verdict).
    withheld: Vec<oneshot::Sender<bool>>,
    mempool: BTreeMap<u64, (Hash, Vec<u8>)>,
    mempool_hashes: HashMap<Hash, u64>,
    next_seq: u64,
    /// When this node proposed a block (for latency).
    proposed_at: HashMap<Hash, std::time::SystemTime>,
    fetch_peer: usize,
    /// Blocks a pending verification or proposal waits for, asked for on the next tick only
    /// (asking on every event made each reply trigger more requests: a fetch storm that
    /// stalled the simulation during partitions), with the peer most likely to hold them.
    wanted: BTreeMap<Hash, Option<PublicKey>>,
    /// When each peer was last heard from, and the finalized height it announced.
    last_seen: HashMap<PublicKey, (std::time::SystemTime, u64)>,
    /// Validators that announced another chain id, with that id.
    foreign: BTreeMap<PublicKey, [u8; 32]>,
    /// Submissions waiting for their admission (see [`SUBMIT_WINDOW`]).
    held_submits: Vec<Submission>,
    /// When the held submissions must be admitted.
    submit_deadline: Option<std::time::SystemTime>,
}

impl<E, S, R> std::fmt::Debug for Application<E, S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("head", &self.head.0)
            .finish()
    }
}

/// Checks on a submitted transaction before it enters the mempool: it decodes, its signer is
/// an account of this chain (member, meter or role), and its signature verifies under this
/// chain's id (a transaction signed for another chain fails here). One transaction of
/// [`check_submissions`].
pub fn check_submission(ledger: &Ledger, bytes: &[u8]) -> Result<Tx, String> {
    check_submissions(ledger, vec![bytes.to_vec()])
        .pop()
        .map_or_else(|| Err("no transaction".into()), |(_, r)| r)
}

/// [`check_submission`] of many transactions at once, each with its verdict, in order. The
/// signatures (each envelope's, and every author's of a settlement batch) are checked by the
/// ledger's own block check ([`CheckedBlock`]: one batch verification, and every signature
/// alone when the batch fails), so admission accepts exactly the signatures that a block's
/// re-execution accepts (one batch verification costs less per signature than verifying each
/// alone).
pub fn check_submissions(ledger: &Ledger, txs: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Result<Tx, String>)> {
    let chain = ledger.config().chain_id;
    let mut verdicts: Vec<Option<String>> = Vec::with_capacity(txs.len());
    let mut accounts = Vec::new();
    let mut all = Vec::with_capacity(txs.len());
    for bytes in txs {
        let verdict = match Tx::decode(&bytes) {
            Err(e) => Some(format!("malformed transaction: {e}")),
            Ok(tx) if ledger.account(&tx.signer).is_none() => Some(format!(
                "signer {} is not a member, meter or role account of chain {chain:016x}",
                scg_ledger::merkle::to_hex(&tx.signer)
            )),
            Ok(_) => None,
        };
        if verdict.is_none() {
            accounts.push(all.len());
        }
        verdicts.push(verdict);
        all.push(bytes);
    }
    // The candidates as the body of a block (only its transactions are read by the check).
    let body = as_body(
        accounts
            .iter()
            .map(|i| std::mem::take(&mut all[*i]))
            .collect(),
    );
    let checked = CheckedBlock::new(chain, &body, ledger.key_cache());
    let decoded: Vec<Option<Tx>> = checked.decoded().iter().map(|r| r.clone().ok()).collect();
    drop(checked);
    let mut out: Vec<Result<Tx, String>> = verdicts
        .into_iter()
        .map(|v| Err(v.unwrap_or_default()))
        .collect();
    for ((i, bytes), tx) in accounts.iter().zip(body.txs).zip(decoded) {
        all[*i] = bytes;
        out[*i] = tx.ok_or_else(|| {
            format!(
                "signature does not verify for chain {chain:016x} (signed for another chain, or forged)"
            )
        });
    }
    all.into_iter().zip(out).collect()
}

/// Transactions as the body of a block, for [`CheckedBlock`] (which reads only the
/// transactions of the block it checks).
fn as_body(txs: Vec<Vec<u8>>) -> Block {
    Block {
        header: BlockHeader {
            height: 0,
            timestamp_s: 0,
            parent_hash: [0; 32],
            tx_root: [0; 32],
            outcome_root: [0; 32],
            state_root: [0; 32],
            tx_count: 0,
        },
        genesis: None,
        txs,
    }
}

/// Whether every signature of `txs` verifies for the chain of `ledger` (each envelope's, and
/// every author's of a settlement batch), by the ledger's block check ([`CheckedBlock`]);
/// a malformed transaction counts as failing.
fn signatures_verify(ledger: &Ledger, txs: Vec<Vec<u8>>) -> bool {
    let body = as_body(txs);
    CheckedBlock::new(ledger.config().chain_id, &body, ledger.key_cache())
        .decoded()
        .iter()
        .all(Result::is_ok)
}

fn now_s(c: &impl Clock) -> u64 {
    c.current()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What [`new`] returns: the actor, its mailbox, and the last stored finalization certificate.
pub type NewApp<E, S, R> = (Application<E, S, R>, Mailbox, Option<Cert>);

/// Create the application: its mailbox (automaton, relay, reporter) and the actor to run.
/// Replays the store so a restarted node resumes from its last finalized block.
pub fn new<E, S, R>(
    context: E,
    cfg: AppConfig,
    store: Store,
    network: (S, R),
    status: SharedStatus,
) -> Result<NewApp<E, S, R>, ChainError>
where
    E: Clock,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let verifier = cfg.genesis.verifier()?;
    let participants: Vec<PublicKey> = cfg.genesis.participants()?.into_iter().collect();
    let (mut ledger, b1) = cfg.genesis.initial_state()?;
    let genesis_hash = b1.hash();
    let mut head = (1u64, genesis_hash);
    let mut last_cert = None;
    let mut st = Status {
        height: 1,
        finalized_height: 1,
        state_root: b1.header.state_root,
        ..Status::default()
    };
    let n = participants.len();
    for (h, bytes) in store.records()? {
        let bad = |reason: String| ChainError::BadBlock { height: h, reason };
        let rec = Record::decode(&bytes, n).map_err(|e| bad(e.to_string()))?;
        ledger
            .apply_block(&rec.block)
            .map_err(|e| bad(e.to_string()))?;
        head = (h, rec.block.hash());
        if cfg.keep_history {
            st.finalized_hashes.push(head.1);
            st.finalized_txs.extend(
                rec.block
                    .txs
                    .iter()
                    .filter_map(|t| Tx::decode(t).ok().map(|t| t.id)),
            );
        }
        if rec.cert.is_some() {
            last_cert = rec.cert;
        }
    }
    st.height = head.0;
    st.finalized_height = head.0;
    st.state_root = ledger.state_root();
    st.applied_txs = ledger.totals().applied_txs;
    *status.lock().map_err(|_| ChainError::BadInput {
        what: "status".into(),
        reason: "poisoned lock".into(),
    })? = st;
    let states = HashMap::new();
    let app = Application {
        context,
        cfg,
        rx,
        sender: network.0,
        receiver: network.1,
        store,
        status,
        verifier,
        participants,
        genesis_digest: digest_of(&genesis_hash),
        blocks: HashMap::new(),
        block_order: VecDeque::new(),
        states,
        head,
        head_ledger: ledger,
        waiting: BTreeMap::new(),
        pending_verify: Vec::new(),
        pending_propose: Vec::new(),
        ticks: 0,
        withheld: Vec::new(),
        mempool: BTreeMap::new(),
        mempool_hashes: HashMap::new(),
        next_seq: 0,
        proposed_at: HashMap::new(),
        fetch_peer: 0,
        wanted: BTreeMap::new(),
        last_seen: HashMap::new(),
        foreign: BTreeMap::new(),
        held_submits: Vec::new(),
        submit_deadline: None,
    };
    Ok((app, Mailbox { tx }, last_cert))
}

impl<E, S, R> Application<E, S, R>
where
    E: Clock,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    /// The digest consensus starts from (block 1, the registrations).
    pub fn genesis_digest(&self) -> Digest {
        self.genesis_digest
    }

    /// Run until the mailbox closes or the network fails.
    pub async fn run(mut self) {
        let mut next_tick = self.context.current() + TICK;
        loop {
            // Deadlines, not fresh sleeps: a node hearing messages more often than every TICK
            // still runs its periodic work, and held submissions wait at most SUBMIT_WINDOW.
            let deadline = match self.submit_deadline {
                Some(d) if d < next_tick => d,
                _ => next_tick,
            };
            let tick = self.context.sleep_until(deadline);
            commonware_macros::select! {
                req = self.rx.recv() => {
                    let Some(req) = req else { return };
                    self.handle_queued(req);
                },
                msg = self.receiver.recv() => {
                    let Ok((peer, bytes)) = msg else { return };
                    self.on_message(peer, bytes.as_ref());
                },
                _ = tick => {
                    let now = self.context.current();
                    if self.submit_deadline.is_some_and(|d| d <= now) {
                        self.flush_submits();
                    }
                    if now >= next_tick {
                        next_tick = now + TICK;
                        if self.on_tick().is_err() {
                            return;
                        }
                    }
                },
            }
            self.retry_pending();
        }
    }

    /// Periodic work, every [`TICK`]: ask for wanted blocks; every [`CATCH_UP_EVERY`] announce
    /// the tip, catch up, and check that the other validators run this genesis (`Err`: they
    /// do not, stop).
    fn on_tick(&mut self) -> Result<(), ()> {
        self.ticks += 1;
        self.fetch_wanted();
        if self
            .ticks
            .is_multiple_of((CATCH_UP_EVERY.as_millis() / TICK.as_millis()).max(1) as u64)
        {
            self.catch_up();
            self.check_genesis_agreement()?;
        }
        Ok(())
    }

    /// `req` and whatever else is queued (up to [`MAX_REQUESTS_PER_STEP`]). Submissions are
    /// held for at most [`SUBMIT_WINDOW`] (or until [`SUBMIT_BATCH`] are held), then admitted
    /// together (one signature batch) and gossiped in one message: one by one, each would cost
    /// a signature verification and a p2p message per peer of its own.
    fn handle_queued(&mut self, req: Request) {
        let mut next = Some(req);
        let mut taken = 0;
        while let Some(req) = next.take() {
            match req {
                Request::Submit(tx, resp) => {
                    if self.held_submits.is_empty() {
                        self.submit_deadline = Some(self.context.current() + SUBMIT_WINDOW);
                    }
                    self.held_submits.push((tx, resp));
                    if self.held_submits.len() >= SUBMIT_BATCH {
                        self.flush_submits();
                    }
                }
                other => self.handle(other),
            }
            taken += 1;
            if taken < MAX_REQUESTS_PER_STEP {
                next = self.rx.try_recv().ok();
            }
        }
    }

    /// Admit the held submissions now.
    fn flush_submits(&mut self) {
        self.submit_deadline = None;
        let held = std::mem::take(&mut self.held_submits);
        if !held.is_empty() {
            self.submit(held);
        }
    }

    /// Admit submitted transactions (one signature batch), answer each submitter, and gossip
    /// the admitted ones in one message.
    fn submit(&mut self, submits: Vec<Submission>) {
        let (txs, resps): (Vec<Vec<u8>>, Vec<_>) = submits.into_iter().unzip();
        let mut accepted = Vec::new();
        for ((bytes, r), resp) in self.admit_txs(txs).into_iter().zip(resps) {
            if r.is_ok() {
                accepted.push(bytes);
            }
            let _ = resp.send(r);
        }
        self.gossip(accepted);
    }

    /// Send transactions to the other validators, [`MAX_GOSSIP_TXS`] per message.
    fn gossip(&mut self, mut txs: Vec<Vec<u8>>) {
        while !txs.is_empty() {
            let rest = txs.split_off(txs.len().min(MAX_GOSSIP_TXS));
            let msg = Message::Txs(txs).to_bytes();
            let _ = self.sender.send(Recipients::All, msg, false);
            txs = rest;
        }
    }

    /// Stop (and say why in the status) when more than `f` of the other validators run
    /// another genesis — they announced another chain id, or the consensus engine blocked them
    /// because their votes, certificates or messages do not verify or decode for this chain
    /// (the consensus namespace holds the chain id, a hash of every member and parameter).
    /// At most `f` validators are faulty, so more than `f` such peers include an honest one:
    /// this node's genesis is not the one the other validators run.
    fn check_genesis_agreement(&mut self) -> Result<(), ()> {
        let n = self.participants.len();
        let f = n.saturating_sub(1) / 3;
        let blocked: BTreeSet<PublicKey> = self
            .cfg
            .blocked
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default();
        let mut peers: BTreeSet<&PublicKey> = self.foreign.keys().collect();
        peers.extend(blocked.iter());
        if peers.len() <= f || n < 2 {
            return Ok(());
        }
        let ours = self.cfg.genesis.chain_id_hex();
        let mut why: Vec<String> = Vec::new();
        for p in &peers {
            let key = p.to_string();
            match self.foreign.get(*p) {
                Some(id) => why.push(format!(
                    "{key} announces chain {}",
                    scg_ledger::merkle::to_hex(id)
                )),
                None => why.push(format!(
                    "{key} sends consensus messages that do not verify for this chain"
                )),
            }
        }
        let reason = format!(
            "{} of the {} other validators run another genesis (other chain id or other \
             members; this genesis is chain {ours}): {}; compare genesis files",
            peers.len(),
            n - 1,
            why.join("; ")
        );
        if let Ok(mut st) = self.status.lock() {
            st.refusal = Some(reason);
        }
        Err(())
    }

    fn handle(&mut self, req: Request) {
        match req {
            Request::Propose(ctx, resp) => {
                let now = self.context.current();
                self.pending_propose.push((ctx, resp, now));
            }
            Request::Verify(ctx, d, resp) => {
                if self.cfg.behavior == Behavior::WithholdVotes {
                    self.withheld.push(resp);
                } else {
                    self.pending_verify.push((ctx, d, resp));
                }
            }
            Request::Broadcast(d) => {
                if let Some(b) = self.blocks.get(&d.0) {
                    let msg = Message::Proposal(b.to_bytes()).to_bytes();
                    let _ = self.sender.send(Recipients::All, msg, true);
                }
            }
            Request::Finalized(cert) => {
                if self.waiting.len() >= MAX_WAITING_CERTS
                    && let Some(oldest) = self
                        .waiting
                        .iter()
                        .min_by_key(|(_, c)| c.proposal.round.view())
                        .map(|(k, _)| *k)
                {
                    self.waiting.remove(&oldest);
                }
                self.waiting.insert(cert.proposal.payload.0, *cert);
                self.try_finalize();
            }
            Request::Submit(tx, resp) => self.submit(vec![(tx, resp)]),
        }
    }

    /// Membership and signature checks (one batch), then the mempool; each transaction with
    /// its id or why it was refused, in order.
    fn admit_txs(&mut self, txs: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Result<u128, String>)> {
        // A transaction already pending passed every check when it entered: a gossiped copy
        // (each transaction reaches every node once per peer) costs a hash, not a signature
        // verification.
        // Per transaction its bytes and, once known, its verdict.
        type Slot = (Vec<u8>, Option<Result<u128, String>>);
        let mut out: Vec<Slot> = Vec::with_capacity(txs.len());
        let mut fresh = Vec::new();
        let mut fresh_at = Vec::new();
        let mut batch_hashes = BTreeSet::new();
        for bytes in txs {
            let h = tx_hash(&bytes);
            if self.mempool_hashes.contains_key(&h) || !batch_hashes.insert(h) {
                let r = Tx::decode(&bytes)
                    .map(|t| t.id)
                    .map_err(|e| format!("malformed transaction: {e}"));
                out.push((bytes, Some(r)));
            } else {
                fresh_at.push(out.len());
                fresh.push(bytes);
                out.push((Vec::new(), None));
            }
        }
        let checked = if self.cfg.behavior == Behavior::AdmitUnchecked {
            fresh
                .into_iter()
                .map(|b| {
                    let r = Tx::decode(&b).map_err(|e| e.to_string());
                    (b, r)
                })
                .collect()
        } else {
            check_submissions(&self.head_ledger, fresh)
        };
        for (i, (bytes, r)) in fresh_at.into_iter().zip(checked) {
            let r = r.and_then(|tx| {
                if self.mempool.len() >= MAX_MEMPOOL {
                    return Err("mempool full; retry later".to_string());
                }
                let h = tx_hash(&bytes);
                self.mempool.insert(self.next_seq, (h, bytes.clone()));
                self.mempool_hashes.insert(h, self.next_seq);
                self.next_seq += 1;
                Ok(tx.id)
            });
            out[i] = (bytes, Some(r));
        }
        out.into_iter()
            .map(|(b, r)| (b, r.unwrap_or_else(|| Err("not checked".into()))))
            .collect()
    }

    fn remember_block(&mut self, block: Block) {
        let h = block.hash();
        if block.header.height <= self.head.0 || self.blocks.contains_key(&h) {
            return;
        }
        if self.blocks.len() >= MAX_UNFINALIZED_BLOCKS
            && let Some(old) = self.block_order.pop_front()
        {
            self.blocks.remove(&old);
            self.states.remove(&old);
        }
        self.block_order.push_back(h);
        self.blocks.insert(h, block);
    }

    fn on_message(&mut self, peer: PublicKey, bytes: &[u8]) {
        let Ok(msg) = Message::decode(bytes) else {
            return;
        };
        let now = self.context.current();
        let tip = self.last_seen.get(&peer).map_or(0, |x| x.1);
        self.last_seen.insert(peer.clone(), (now, tip));
        match msg {
            Message::Tip { chain_id, .. } if chain_id != self.cfg.genesis.chain_id => {
                self.last_seen.remove(&peer);
                self.foreign.insert(peer, chain_id);
            }
            Message::Tip { height: h, .. } => {
                self.foreign.remove(&peer);
                self.last_seen.insert(peer.clone(), (now, h));
                if h > self.head.0 + 1 {
                    let msg = Message::FetchRecords(self.head.0 + 1).to_bytes();
                    let _ = self.sender.send(Recipients::One(peer), msg, false);
                }
            }
            Message::Proposal(b) => {
                if let Ok(block) = Block::decode(&b)
                    && block.header.height > self.head.0
                    && block.header.height <= self.head.0 + MAX_UNFINALIZED_BLOCKS as u64
                {
                    self.remember_block(block);
                    self.try_finalize();
                }
            }
            Message::Txs(txs) => {
                let _ = self.admit_txs(txs);
            }
            Message::FetchBlock(d) => {
                if let Some(b) = self.blocks.get(&d) {
                    let msg = Message::Proposal(b.to_bytes()).to_bytes();
                    let _ = self.sender.send(Recipients::One(peer), msg, false);
                }
            }
            Message::FetchRecords(from) => {
                if let Ok(rs) = self
                    .store
                    .records_from(from.max(2), MAX_RECORDS_PER_RESPONSE)
                    && !rs.is_empty()
                {
                    let mut size = 0usize;
                    let rs: Vec<Vec<u8>> = rs
                        .into_iter()
                        .take_while(|r| {
                            size += r.len() + 4;
                            size < crate::wire::MAX_MESSAGE_BYTES / 2
                        })
                        .collect();
                    let _ = self.sender.send(
                        Recipients::One(peer),
                        Message::Records(rs).to_bytes(),
                        false,
                    );
                }
            }
            Message::Records(rs) => self.on_records(&rs),
        }
    }

    /// Apply fetched records up to the last one covered by a certificate we can check.
    fn on_records(&mut self, rs: &[Vec<u8>]) {
        let n = self.participants.len();
        let Ok(recs) = rs
            .iter()
            .map(|r| Record::decode(r, n))
            .collect::<Result<Vec<_>, _>>()
        else {
            return;
        };
        let mut rng = match crate::verify::os_rng() {
            Ok(r) => r,
            Err(_) => return,
        };
        // Last record whose finality we can prove.
        let mut last = None;
        for (i, r) in recs.iter().enumerate() {
            let d = r.block.hash();
            let certified = match &r.cert {
                Some(c) => {
                    c.proposal.payload.0 == d && c.verify(&mut rng, &self.verifier, &Sequential)
                }
                None => false,
            };
            if certified || self.waiting.contains_key(&d) {
                last = Some(i);
            }
        }
        let Some(last) = last else { return };
        // Check the whole segment on a copy before touching anything durable.
        let mut ledger = self.head_ledger.clone();
        let mut expect_parent = self.head.1;
        let mut segment = Vec::new();
        for r in recs.into_iter().take(last + 1) {
            if r.block.header.height <= self.head.0 {
                if r.block.header.height == self.head.0 && r.block.hash() != self.head.1 {
                    return; // conflicts with our finalized head: ignore
                }
                continue;
            }
            if r.block.header.parent_hash != expect_parent {
                return;
            }
            match ledger.apply_block(&r.block) {
                Ok(o) if o.rejected() == 0 => {}
                _ => return,
            }
            expect_parent = r.block.hash();
            segment.push(r);
        }
        let segment: Vec<(Block, Option<Cert>)> = segment
            .into_iter()
            .map(|r| {
                let cert = r
                    .cert
                    .or_else(|| self.waiting.get(&r.block.hash()).cloned());
                (r.block, cert)
            })
            .collect();
        if !segment.is_empty() && self.commit_chain(segment).is_err() {
            return;
        }
        self.try_finalize();
    }

    /// Make `chain` (consecutive blocks on the head, the last one certified) final: all of it
    /// durable in one store transaction first (a crash leaves all or none), then in memory.
    fn commit_chain(&mut self, chain: Vec<(Block, Option<Cert>)>) -> Result<(), ChainError> {
        // The state after each block: the one verified or built for it (in `states`) when its
        // parent is the previous block, else computed here by replay. Only the last is kept
        // (a ledger copy costs time in proportion to the whole state).
        let mut computed: Option<Ledger> = None;
        let mut tip = self.head.1;
        let mut records = Vec::with_capacity(chain.len());
        for (block, cert) in chain {
            let h = block.hash();
            let height = block.header.height;
            if block.header.parent_hash == tip && self.states.contains_key(&h) && h != self.head.1 {
                computed = None;
            } else {
                let mut l = match computed.take() {
                    Some(l) => l,
                    None if tip == self.head.1 => self.head_ledger.clone(),
                    None => self
                        .state(&tip)
                        .cloned()
                        .ok_or_else(|| ChainError::BadBlock {
                            height,
                            reason: "state of the parent is missing".into(),
                        })?,
                };
                let o = l.apply_block(&block)?;
                if o.rejected() > 0 {
                    return Err(ChainError::BadBlock {
                        height,
                        reason: "rejected transaction in a finalized block".into(),
                    });
                }
                computed = Some(l);
            }
            tip = h;
            records.push((height, Record { block, cert }));
        }
        if computed.is_none() && !self.has_state(&tip) {
            return Err(ChainError::BadBlock {
                height: records.last().map_or(0, |r| r.0),
                reason: "state of the block is missing".into(),
            });
        }
        self.store.put_many(&records)?;
        let now = self.context.current();
        for (height, record) in records {
            let h = record.block.hash();
            let ids: Vec<u128> = record
                .block
                .txs
                .iter()
                .filter_map(|t| Tx::decode(t).ok().map(|t| t.id))
                .collect();
            for t in &record.block.txs {
                if let Some(seq) = self.mempool_hashes.remove(&tx_hash(t)) {
                    self.mempool.remove(&seq);
                }
            }
            self.head = (height, h);
            self.waiting.remove(&h);
            if let Ok(mut st) = self.status.lock() {
                st.finalized_height = height;
                st.height = st.height.max(height);
                st.state_root = record.block.header.state_root;
                if self.cfg.keep_history {
                    st.finalized_hashes.push(h);
                    st.finalized_txs.extend(ids);
                }
                st.mempool = self.mempool.len();
                if let Some(t0) = self.proposed_at.remove(&h)
                    && let Ok(d) = now.duration_since(t0)
                {
                    st.own_latencies.push(d);
                    if st.own_latencies.len() > MAX_LATENCIES {
                        st.own_latencies.remove(0);
                    }
                }
            }
        }
        // Drop what can no longer be built on.
        // The head's state moves out of `states` (no copy).
        if let Some(l) = computed.or_else(|| self.states.remove(&tip)) {
            self.head_ledger = l;
        }
        if let Ok(mut st) = self.status.lock() {
            st.applied_txs = self.head_ledger.totals().applied_txs;
        }
        let (head_height, _) = self.head;
        self.blocks.retain(|_, b| b.header.height > head_height);
        let blocks = &self.blocks;
        self.states.retain(|k, _| blocks.contains_key(k));
        self.proposed_at.retain(|k, _| blocks.contains_key(k));
        Ok(())
    }

    /// Finalize every waiting certificate whose chain back to the head we hold.
    fn try_finalize(&mut self) {
        loop {
            let mut progressed = false;
            let targets: Vec<Hash> = self.waiting.keys().copied().collect();
            for target in targets {
                // Walk back from the target to the head.
                let mut chain = Vec::new();
                let mut cur = target;
                let complete = loop {
                    if cur == self.head.1 {
                        break true;
                    }
                    match self.blocks.get(&cur) {
                        Some(b) if b.header.height > self.head.0 => {
                            chain.push(cur);
                            cur = b.header.parent_hash;
                        }
                        _ => break false,
                    }
                };
                if !complete {
                    if let Some(b) = self.blocks.get(&target)
                        && b.header.height <= self.head.0
                    {
                        self.waiting.remove(&target);
                    }
                    continue;
                }
                if chain.is_empty() {
                    // The certificate of the block that already is our head (it arrived after
                    // catch-up committed the block): nothing to do. Committing the empty
                    // segment would count as progress and loop forever.
                    self.waiting.remove(&target);
                    continue;
                }
                let mut segment = Vec::with_capacity(chain.len());
                for h in chain.into_iter().rev() {
                    let Some(b) = self.blocks.get(&h).cloned() else {
                        break;
                    };
                    let cert = self.waiting.get(&h).cloned();
                    segment.push((b, cert));
                }
                if self.commit_chain(segment).is_err() {
                    // A finalized block that does not replay means the validators broke the
                    // safety assumption (or the disk failed); stop rather than diverge.
                    self.waiting.clear();
                    return;
                }
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn catch_up(&mut self) {
        let tip = Message::Tip {
            chain_id: self.cfg.genesis.chain_id,
            height: self.head.0,
        }
        .to_bytes();
        let _ = self.sender.send(Recipients::All, tip, false);
        let now = self.context.current();
        let fresh = self
            .last_seen
            .values()
            .filter(|(t, _)| now.duration_since(*t).is_ok_and(|d| d <= PEER_FRESH))
            .count();
        if let Ok(mut st) = self.status.lock() {
            st.peers = fresh;
            st.mempool = self.mempool.len();
        }
        if self.waiting.is_empty() || self.participants.is_empty() {
            return;
        }
        // Ask one peer at a time, rotating, for the records after our head.
        self.fetch_peer = (self.fetch_peer + 1) % self.participants.len();
        let peer = self.participants[self.fetch_peer].clone();
        let msg = Message::FetchRecords(self.head.0 + 1).to_bytes();
        let _ = self.sender.send(Recipients::One(peer), msg, false);
        // Also ask for the waiting blocks themselves (they may be one step ahead).
        let wanted: Vec<Hash> = self.waiting.keys().copied().take(4).collect();
        for d in wanted {
            let _ = self
                .sender
                .send(Recipients::All, Message::FetchBlock(d).to_bytes(), false);
        }
    }

    /// Note that block `h` is needed (see [`Application::fetch_wanted`]).
    fn want_block(&mut self, h: Hash, from: Option<PublicKey>) {
        if self.wanted.len() < MAX_WANTED_PER_TICK * 4 {
            self.wanted.entry(h).or_insert(from);
        }
    }

    /// Ask for the blocks noted since the last tick (at most [`MAX_WANTED_PER_TICK`]), each
    /// once: from the leader that proposed it, or from everyone.
    fn fetch_wanted(&mut self) {
        let wanted = std::mem::take(&mut self.wanted);
        for (h, from) in wanted.into_iter().take(MAX_WANTED_PER_TICK) {
            if self.blocks.contains_key(&h) || self.has_state(&h) {
                continue;
            }
            let to = from.map_or(Recipients::All, Recipients::One);
            let _ = self
                .sender
                .send(to, Message::FetchBlock(h).to_bytes(), false);
        }
    }

    /// The state after block `h`, if known (the finalized head's is `head_ledger`).
    fn state(&self, h: &Hash) -> Option<&Ledger> {
        if *h == self.head.1 {
            Some(&self.head_ledger)
        } else {
            self.states.get(h)
        }
    }

    /// Whether the state after block `h` is known.
    fn has_state(&self, h: &Hash) -> bool {
        *h == self.head.1 || self.states.contains_key(h)
    }

    /// State after block `h`, computing it from a known ancestor if we hold the blocks.
    fn ensure_state(&mut self, h: Hash) -> Option<Result<(), ()>> {
        if self.has_state(&h) {
            return Some(Ok(()));
        }
        let mut chain = Vec::new();
        let mut cur = h;
        while !self.has_state(&cur) {
            let b = self.blocks.get(&cur)?;
            if b.header.height <= self.head.0 {
                return Some(Err(()));
            }
            chain.push(cur);
            cur = b.header.parent_hash;
        }
        for bh in chain.into_iter().rev() {
            let b = self.blocks.get(&bh)?.clone();
            let mut l = self.state(&b.header.parent_hash)?.clone();
            match l.apply_block(&b) {
                Ok(o) if o.rejected() == 0 => {
                    self.states.insert(bh, l);
                }
                _ => return Some(Err(())),
            }
        }
        Some(Ok(()))
    }

    fn parent_of(&self, ctx: &Context<Digest, PublicKey>) -> Hash {
        ctx.parent.1.0
    }

    fn retry_pending(&mut self) {
        let verifies = std::mem::take(&mut self.pending_verify);
        for (ctx, d, resp) in verifies {
            if resp.is_closed() {
                continue;
            }
            match self.try_verify(&ctx, &d) {
                Some(v) => {
                    if let Err(why) = v
                        && let Ok(mut st) = self.status.lock()
                    {
                        *st.refused.entry(why.into()).or_default() += 1;
                    }
                    let _ = resp.send(v.is_ok());
                }
                None => self.pending_verify.push((ctx, d, resp)),
            }
        }
        let proposes = std::mem::take(&mut self.pending_propose);
        let now = self.context.current();
        for (ctx, resp, asked) in proposes {
            if resp.is_closed() {
                continue;
            }
            let waited = now.duration_since(asked).unwrap_or_default();
            if self.mempool.is_empty() && waited < EMPTY_BLOCK_DELAY {
                self.pending_propose.push((ctx, resp, asked));
                continue;
            }
            match self.try_propose(&ctx) {
                Some(d) => {
                    let _ = resp.send(d);
                }
                None => self.pending_propose.push((ctx, resp, asked)),
            }
        }
    }

    /// `None`: cannot decide yet (block or parent missing).
    fn try_verify(
        &mut self,
        ctx: &Context<Digest, PublicKey>,
        d: &Digest,
    ) -> Option<Result<(), &'static str>> {
        let parent = self.parent_of(ctx);
        let Some(block) = self.blocks.get(&d.0).cloned() else {
            if self.has_state(&d.0) {
                // A block we already verified or built.
                return Some(Ok(()));
            }
            self.want_block(d.0, Some(ctx.leader.clone()));
            return None;
        };
        if block.header.parent_hash != parent {
            return Some(Err("wrong parent"));
        }
        match self.ensure_state(parent) {
            None => {
                self.want_block(parent, None);
                return None;
            }
            Some(Err(())) => return Some(Err("parent does not replay")),
            Some(Ok(())) => {}
        }
        if self.has_state(&d.0) {
            return Some(Ok(()));
        }
        let parent_state = self.state(&parent)?;
        if block.txs.len() > MAX_PROPOSAL_TXS {
            return Some(Err("too many transactions"));
        }
        let accept = match &self.cfg.clock {
            BlockClock::Runtime => now_s(&self.context),
            BlockClock::Manual(c) => c.accept_s(),
        };
        let limit = accept.max(parent_state.last_timestamp_s()) + MAX_FUTURE_S;
        if block.header.timestamp_s > limit {
            return Some(Err("timestamp too far ahead"));
        }
        // Transactions this node holds pending passed `check_submissions` (signatures verified
        // for this chain) when they entered; their bytes (same hash = same signatures) are not
        // verified again. The block's other transactions are verified now, as one batch by the
        // same check; one that fails (forged, signed for another chain) refuses the block.
        // Then the block is executed without signature checks. Everything else (membership,
        // nonces, balances, roots) is checked by the execution either way.
        let unchecked: Vec<Vec<u8>> = block
            .txs
            .iter()
            .filter(|t| !self.mempool_hashes.contains_key(&tx_hash(t)))
            .cloned()
            .collect();
        if !unchecked.is_empty() {
            let sigs = signatures_verify(parent_state, unchecked);
            if !sigs {
                return Some(Err(REFUSED_SIGNATURE));
            }
        }
        let mut l = parent_state.clone();
        l.set_verify_signatures(false);
        let applied = l.apply_block(&block);
        l.set_verify_signatures(true);
        match applied {
            Ok(o) if o.rejected() == 0 => {
                if let Ok(mut st) = self.status.lock() {
                    st.height = st.height.max(block.header.height);
                }
                self.states.insert(d.0, l);
                Some(Ok(()))
            }
            _ => Some(Err("rejected transaction or wrong root")),
        }
    }

    fn try_propose(&mut self, ctx: &Context<Digest, PublicKey>) -> Option<Digest> {
        let parent = self.parent_of(ctx);
        if self.ensure_state(parent)?.is_err() {
            return None;
        }
        let now = match &self.cfg.clock {
            BlockClock::Runtime => now_s(&self.context),
            BlockClock::Manual(c) => c.now_s(),
        };
        let ts = now.max(self.state(&parent)?.last_timestamp_s());
        let mut candidates: Vec<Vec<u8>> = self
            .mempool
            .values()
            .take(MAX_PROPOSAL_TXS)
            .map(|(_, b)| b.clone())
            .collect();
        let is_order = |b: &Vec<u8>| {
            matches!(
                scg_ledger::Tx::decode(b).map(|t| t.body),
                Ok(scg_ledger::TxBody::Order(_))
            )
        };
        // Only the Byzantine test behaviours decode candidates here; an honest leader never does.
        let tampered = match self.cfg.behavior {
            Behavior::InvalidTx => {
                candidates.push(self.invalid_tx());
                false
            }
            Behavior::ReorderTxs => {
                candidates.reverse();
                candidates.len() > 1 && candidates.iter().any(is_order)
            }
            Behavior::OmitOrders => {
                let before = candidates.len();
                candidates.retain(|b| !is_order(b));
                candidates.len() < before
            }
            _ => false,
        };
        if tampered && let Ok(mut st) = self.status.lock() {
            st.tampered_proposals += 1;
        }
        let mut built = None;
        for _ in 0..3 {
            let mut l = self.state(&parent)?.clone();
            // Every candidate's signature was verified for this chain when it entered the
            // mempool (`check_submission`), so the proposer does not verify it again; the
            // validators re-verify every signature of the block before voting. (The
            // Byzantine `InvalidTx` outsider is refused as a non-account either way.)
            l.set_verify_signatures(false);
            let produced = l.produce_block(ts, candidates.clone());
            l.set_verify_signatures(true);
            let (block, outcome) = produced.ok()?;
            let rejected: Vec<usize> = outcome
                .results
                .iter()
                .enumerate()
                .filter(|(_, r)| r.is_err())
                .map(|(i, _)| i)
                .collect();
            if rejected.is_empty() || self.cfg.behavior == Behavior::InvalidTx {
                built = Some((block, l));
                break;
            }
            // Rejected against this parent: drop from the candidates (and from the mempool
            // unless a later nonce or balance could make it valid).
            for i in rejected.iter().rev() {
                let t = candidates.remove(*i);
                let code = outcome.results[*i].err();
                if !matches!(
                    code,
                    Some(scg_ledger::Reject::BadNonce | scg_ledger::Reject::InsufficientFunds)
                ) && let Some(seq) = self.mempool_hashes.remove(&tx_hash(&t))
                {
                    self.mempool.remove(&seq);
                }
            }
        }
        let (mut block, ledger) = match built {
            Some(x) => x,
            None => {
                let mut l = self.state(&parent)?.clone();
                let (b, _) = l.produce_block(ts, Vec::new()).ok()?;
                (b, l)
            }
        };
        if self.cfg.behavior == Behavior::WrongStateRoot {
            block.header.state_root[0] ^= 0xff;
        }
        let h = block.hash();
        if let Ok(mut st) = self.status.lock() {
            st.height = st.height.max(block.header.height);
            st.mempool = self.mempool.len();
        }
        self.proposed_at.insert(h, self.context.current());
        self.states.insert(h, ledger);
        self.remember_block(block);
        Some(digest_of(&h))
    }

    /// A transaction signed by a key that is not on this chain.
    fn invalid_tx(&self) -> Vec<u8> {
        let outsider = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        Tx::sign(
            self.head_ledger.config().chain_id,
            &outsider,
            u128::from(self.head.0) << 64 | 0xbad,
            0,
            scg_ledger::TxBody::Burn { amount: 1 },
        )
    }
}
