//! Wiring one member node: the application, the simplex engine and the node's p2p channels,
//! for any commonware runtime (tokio in `scg chain run`, the deterministic runtime in tests).
//!
//! Channels (same numbers on every node): 0 votes, 1 certificates, 2 consensus resolver,
//! 3 blocks and transactions ([`crate::wire::Message`]).

use crate::ChainError;
use crate::app::{self, AppConfig, Behavior, Mailbox, SharedStatus};
use crate::genesis::{Genesis, consensus_namespace};
use crate::keys::MemberKey;
use crate::store::Store;
use crate::wire::Scheme;
use commonware_actor::Feedback;
use commonware_consensus::simplex::{
    self, Engine, Floor, ForwardPolicy, SkipBudget, SkipPolicy, elector::RoundRobin,
};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_cryptography::ed25519::PublicKey;
use commonware_cryptography::sha256::Digest;
use commonware_p2p::{BlockedSubscription, Blocker, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Quota, Spawner, Storage};
use commonware_utils::{NZDuration, NZU16, NZU32, NZUsize};
use rand_core::CryptoRng;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Channel numbers.
pub const CHANNEL_VOTES: u64 = 0;
/// Certificates.
pub const CHANNEL_CERTS: u64 = 1;
/// Consensus resolver.
pub const CHANNEL_RESOLVER: u64 = 2;
/// Blocks, transactions, catch-up.
pub const CHANNEL_BLOCKS: u64 = 3;

/// Inbound rate limit per peer on `channel`. The networks size each channel's receive
/// queue as peers × burst and preallocate it: 100,000/s on every channel meant queues of
/// millions of slots per node (over a gigabyte in a 7-node simulation). Votes and
/// certificates come a few per view, the resolver only fetches after gaps; blocks carry
/// gossiped transactions one message each, so that channel gets room for the throughput goal.
pub fn channel_quota(channel: u64) -> Quota {
    match channel {
        CHANNEL_VOTES | CHANNEL_CERTS => Quota::per_second(NZU32!(1_000)),
        CHANNEL_RESOLVER => Quota::per_second(NZU32!(200)),
        _ => Quota::per_second(NZU32!(10_000)),
    }
}

/// Consensus timing.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Wait for a leader's proposal.
    pub leader_timeout: Duration,
    /// Wait for certification progress in a view.
    pub certification_timeout: Duration,
    /// Rebroadcast a nullify vote when stuck.
    pub timeout_retry: Duration,
    /// After this long without hearing from a leader, nodes may nullify its views at once,
    /// and a proposal that fails verification is nullified at once instead of at the end of
    /// the view's deadlines (must exceed `certification_timeout` and `timeout_retry`).
    pub skip_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        // A proposal that fails verification (a Byzantine leader) without skips cost the full
        // certification timeout per bad view (2 s stalls in the simulation); with skips it
        // costs one round trip. The retry is short so that finalization resumes within
        // about a second of a partition healing.
        Self {
            leader_timeout: Duration::from_secs(1),
            certification_timeout: Duration::from_secs(2),
            timeout_retry: Duration::from_secs(1),
            skip_timeout: Duration::from_secs(3),
        }
    }
}

/// Everything one node needs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The chain.
    pub genesis: Arc<Genesis>,
    /// This node's key (must be a validator's).
    pub key: MemberKey,
    /// Directory of the block store.
    pub dir: PathBuf,
    /// Runtime storage partition for the consensus journal (unique per node in one runtime).
    pub partition: String,
    /// Behaviour (tests only).
    pub behavior: Behavior,
    /// Timing.
    pub timing: Timing,
    /// Keep finalized hashes and transaction ids in the status (tests, benchmarks).
    pub keep_history: bool,
    /// Where block timestamps come from.
    pub clock: app::BlockClock,
}

/// A p2p channel pair.
pub type Channel<S, R> = (S, R);

/// The four channels of a node.
#[derive(Debug)]
pub struct Channels<S, R> {
    /// Votes.
    pub votes: Channel<S, R>,
    /// Certificates.
    pub certs: Channel<S, R>,
    /// Consensus resolver.
    pub resolver: Channel<S, R>,
    /// Blocks and transactions.
    pub blocks: Channel<S, R>,
}

/// A running node.
pub struct Node {
    /// Submit transactions here.
    pub mailbox: Mailbox,
    /// Status.
    pub status: SharedStatus,
    /// The application task.
    pub app: Handle<()>,
    /// The consensus engine task.
    pub engine: Handle<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("mailbox", &self.mailbox)
            .finish_non_exhaustive()
    }
}

/// The p2p blocker the consensus engine uses, noting every validator it blocks (a vote,
/// certificate or message from it failed to verify or decode for this chain) for the
/// application's genesis check ([`crate::app::Status::refusal`]), then blocking it as asked.
#[derive(Debug, Clone)]
pub struct BlockWatch<B> {
    inner: B,
    blocked: Arc<Mutex<BTreeSet<PublicKey>>>,
}

impl<B: Blocker<PublicKey = PublicKey>> Blocker for BlockWatch<B> {
    type PublicKey = PublicKey;

    fn block(&mut self, peer: PublicKey) -> Feedback {
        if let Ok(mut b) = self.blocked.lock() {
            b.insert(peer.clone());
        }
        self.inner.block(peer)
    }

    fn blocked(&mut self) -> BlockedSubscription<PublicKey> {
        self.inner.blocked()
    }
}

/// Check that `key` may run a node of `genesis`.
pub fn check_membership(genesis: &Genesis, key: &MemberKey) -> Result<(), ChainError> {
    if !genesis.validators().contains(&key.public()) {
        return Err(ChainError::Refused {
            chain_id: genesis.chain_id_hex(),
            reason: format!(
                "key {} is not a validator in this genesis ({} validators)",
                key.public_hex(),
                genesis.validators().len()
            ),
        });
    }
    Ok(())
}

/// Start a node on `context`.
pub fn start<E, S, R, B>(
    context: E,
    cfg: NodeConfig,
    channels: Channels<S, R>,
    blocker: B,
) -> Result<Node, ChainError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    check_membership(&cfg.genesis, &cfg.key)?;
    let namespace = consensus_namespace(&cfg.genesis.chain_id);
    let participants = cfg.genesis.participants()?;
    let scheme =
        Scheme::signer(&namespace, participants, cfg.key.consensus_key()).ok_or_else(|| {
            ChainError::Refused {
                chain_id: cfg.genesis.chain_id_hex(),
                reason: "this key is not in the validator set".into(),
            }
        })?;
    let store = Store::open(&cfg.dir, &cfg.genesis.chain_id)?;
    let status = SharedStatus::default();
    let blocked: Arc<Mutex<BTreeSet<PublicKey>>> = Arc::default();
    let (application, mailbox, last_cert) = app::new(
        context.child("app"),
        AppConfig {
            genesis: cfg.genesis.clone(),
            key: cfg.key.clone(),
            behavior: cfg.behavior,
            keep_history: cfg.keep_history,
            blocked: blocked.clone(),
            clock: cfg.clock.clone(),
        },
        store,
        channels.blocks,
        status.clone(),
    )?;
    let floor: Floor<Scheme, Digest> = match last_cert {
        Some(c) => Floor::Finalized(c),
        None => Floor::Genesis(application.genesis_digest()),
    };
    let engine_cfg = simplex::Config {
        scheme,
        elector: RoundRobin::<commonware_cryptography::Sha256>::default(),
        blocker: BlockWatch {
            inner: blocker,
            blocked,
        },
        automaton: mailbox.clone(),
        relay: mailbox.clone(),
        reporter: mailbox.clone(),
        strategy: Sequential,
        partition: cfg.partition.clone(),
        // Mailboxes preallocate every slot: 1024-slot mailboxes and 1 MiB journal buffers
        // made node start-up a third of a simulated run's CPU time (page faults). Votes
        // for a handful of validators need far less.
        mailbox_size: NZUsize!(128),
        epoch: Epoch::zero(),
        floor,
        replay_buffer: NZUsize!(256 * 1024),
        write_buffer: NZUsize!(64 * 1024),
        page_cache: CacheRef::new(NZU16!(4096), NZUsize!(64)),
        leader_timeout: cfg.timing.leader_timeout,
        certification_timeout: cfg.timing.certification_timeout,
        timeout_retry: cfg.timing.timeout_retry,
        view_retention: ViewDelta::new(64),
        skip: SkipPolicy::Enabled {
            timeout: cfg.timing.skip_timeout,
            budget: SkipBudget::Participants,
        },
        fetch_timeout: NZDuration!(Duration::from_secs(1)),
        fetch_retry_delay: Duration::from_millis(100),
        forward: ForwardPolicy::Disabled,
        track_historical_votes: false,
    };
    let engine = Engine::new(context.child("engine"), engine_cfg);
    let app = context.child("app_task").spawn(|_| application.run());
    let engine = engine.start(channels.votes, channels.certs, channels.resolver);
    Ok(Node {
        mailbox,
        status,
        app,
        engine,
    })
}
