//! A Byzantine validator that equivocates, for the deterministic simulation.
//!
//! It runs no simplex engine: it holds the validator's key and speaks the protocol's messages
//! directly, which is what an attacker with a validator key can do.
//! - **Equivocating proposals**: when it leads a view (round-robin, the honest nodes' elector),
//!   after a notarized, finalized or nullified view, it builds two *valid* ledger blocks on the
//!   certified parent (same parent, timestamps one second apart, so different hashes), sends
//!   block A and its notarize vote for A to one half of the other validators and block B with
//!   a notarize vote for B to the other half.
//! - **Equivocating votes**: for every notarize or finalize vote it hears, it signs that
//!   proposal for one half of the validators and a conflicting proposal (same round and parent,
//!   another payload) for the other half.
//!
//! It answers block fetches for the blocks it made (both of them, to whoever asks).
//! Parent states come from the honest proposals it receives on the blocks channel; a block it
//! missed (message loss) is asked from everyone, with the finalized records above the highest
//! block it holds, when a certificate names a block it lacks or a block arrives whose parent it
//! lacks. Without that, one lost block left it unable to build on anything after it, so in some
//! lossy runs it never led a view with a known parent and never equivocated.

use commonware_codec::{Encode as _, Read as _};
use commonware_consensus::simplex::elector::{Elector as _, RoundRobin};
use commonware_consensus::simplex::types::{Certificate, Finalize, Notarize, Proposal, Vote};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::ed25519::PublicKey;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Sha256, Signer as _};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::Clock;
use scg_chain::genesis::{Genesis, consensus_namespace};
use scg_chain::keys::MemberKey;
use scg_chain::wire::{Message, Record, Scheme};
use scg_ledger::merkle::Hash;
use scg_ledger::{Block, Ledger};
use std::collections::{HashMap, HashSet};

/// Most parent states kept (the oldest are forgotten beyond).
const MAX_STATES: usize = 512;
/// Most blocks kept waiting for their parent, and most led views waiting for theirs.
const MAX_WAITING: usize = 256;

/// What the equivocator did (the test checks that it really equivocated).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Views in which it sent two different valid blocks.
    pub double_proposals: u64,
    /// Votes it signed twice for different payloads.
    pub double_votes: u64,
}

/// The actor's channels: (sender, receiver) for votes, certificates and blocks.
pub struct Channels<S, R> {
    pub votes: (S, R),
    pub certs: (S, R),
    pub blocks: (S, R),
}

struct State<E> {
    context: E,
    scheme: Scheme,
    me: PublicKey,
    participants: Vec<PublicKey>,
    elector: commonware_consensus::simplex::elector::RoundRobinElector<Scheme>,
    states: HashMap<Hash, Ledger>,
    order: Vec<Hash>,
    made: HashMap<Hash, Block>,
    proposed: HashSet<View>,
    voted: HashSet<(View, u8)>,
    /// Blocks received before their parent, by parent hash.
    orphans: HashMap<Hash, Vec<Block>>,
    /// Views it leads whose certified parent it lacks: the parent's hash -> (round, parent view).
    leads: HashMap<Hash, (Round, View)>,
    /// The highest block height it holds a state for.
    top_height: u64,
    /// The certified proposal of the highest view seen: (view, block hash).
    last_certified: Option<(View, Hash)>,
    tally: std::sync::Arc<std::sync::Mutex<Tally>>,
}

/// Run the equivocator for validator `key` of `genesis` until its channels close.
pub async fn run<E, S, R>(
    context: E,
    genesis: &Genesis,
    key: &MemberKey,
    channels: Channels<S, R>,
    tally: std::sync::Arc<std::sync::Mutex<Tally>>,
) where
    E: Clock,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let participants = genesis.participants().unwrap();
    let signer = key.consensus_key();
    let me = signer.public_key();
    let scheme = Scheme::signer(
        &consensus_namespace(&genesis.chain_id),
        participants.clone(),
        signer,
    )
    .unwrap();
    let elector =
        <RoundRobin<Sha256> as commonware_consensus::simplex::elector::Config<Scheme>>::build(
            RoundRobin::default(),
            &participants,
        );
    let (ledger, b1) = genesis.initial_state().unwrap();
    let mut st = State {
        context,
        scheme,
        me,
        participants: participants.iter().cloned().collect(),
        elector,
        states: HashMap::from([(b1.hash(), ledger)]),
        order: vec![b1.hash()],
        made: HashMap::new(),
        proposed: HashSet::new(),
        voted: HashSet::new(),
        orphans: HashMap::new(),
        leads: HashMap::new(),
        top_height: b1.header.height,
        last_certified: None,
        tally,
    };
    let Channels {
        votes: (mut vote_tx, mut vote_rx),
        certs: (_cert_tx, mut cert_rx),
        blocks: (mut block_tx, mut block_rx),
    } = channels;
    loop {
        commonware_macros::select! {
            m = vote_rx.recv() => {
                let Ok((_, bytes)) = m else { return };
                st.on_vote(bytes.as_ref(), &mut vote_tx);
            },
            m = cert_rx.recv() => {
                let Ok((_, bytes)) = m else { return };
                st.on_certificate(bytes.as_ref(), &mut vote_tx, &mut block_tx);
            },
            m = block_rx.recv() => {
                let Ok((peer, bytes)) = m else { return };
                st.on_block_message(peer, bytes.as_ref(), &mut vote_tx, &mut block_tx);
            },
        }
    }
}

impl<E: Clock> State<E> {
    /// Apply `block` on its parent's state (which must be known); its hash if it is valid and new.
    fn apply(&mut self, block: &Block) -> Option<Hash> {
        let h = block.hash();
        if self.states.contains_key(&h) {
            return None;
        }
        let mut l = self.states.get(&block.header.parent_hash)?.clone();
        if !matches!(l.apply_block(block), Ok(o) if o.rejected() == 0) {
            return None;
        }
        self.states.insert(h, l);
        self.order.push(h);
        self.top_height = self.top_height.max(block.header.height);
        if self.order.len() > MAX_STATES {
            let old = self.order.remove(0);
            self.states.remove(&old);
        }
        Some(h)
    }

    /// The other validators split in two halves (by position).
    fn halves(&self) -> (Vec<PublicKey>, Vec<PublicKey>) {
        let others: Vec<PublicKey> = self
            .participants
            .iter()
            .filter(|p| **p != self.me)
            .cloned()
            .collect();
        let (a, b) = others.split_at(others.len() / 2);
        (a.to_vec(), b.to_vec())
    }

    fn on_vote<S: Sender<PublicKey = PublicKey>>(&mut self, bytes: &[u8], votes: &mut S) {
        let Ok(vote) = Vote::<Scheme, Digest>::read_cfg(&mut commonware_codec::Copying(bytes), &())
        else {
            return;
        };
        let (proposal, kind) = match vote {
            Vote::Notarize(n) => (n.proposal, 0u8),
            Vote::Finalize(f) => (f.proposal, 2u8),
            Vote::Nullify(_) => return,
        };
        if !self.voted.insert((proposal.round.view(), kind)) {
            return;
        }
        let mut other = proposal.payload.0;
        other[0] ^= 0x5a;
        let conflicting = Proposal::new(proposal.round, proposal.parent, Digest(other));
        let (a, b) = self.halves();
        for (to, p) in [(a, proposal), (b, conflicting)] {
            let msg = if kind == 0 {
                Notarize::sign(&self.scheme, p).map(|v| Vote::Notarize(v).encode())
            } else {
                Finalize::sign(&self.scheme, p).map(|v| Vote::Finalize(v).encode())
            };
            if let Some(msg) = msg {
                let _ = votes.send(Recipients::Some(to), msg, true);
            }
        }
        if let Ok(mut t) = self.tally.lock() {
            t.double_votes += 1;
        }
    }

    fn on_certificate<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        bytes: &[u8],
        votes: &mut S,
        blocks: &mut S,
    ) {
        let n = self.participants.len();
        let Ok(cert) =
            Certificate::<Scheme, Digest>::read_cfg(&mut commonware_codec::Copying(bytes), &n)
        else {
            return;
        };
        // The view it would lead next and that view's parent: the certified block, or after a
        // nullified view the highest certified block it has seen (simplex skips a nullified
        // view: its successor's leader builds on the last certified block).
        let (next, view, parent_hash) = match cert {
            Certificate::Notarization(c) => self.certified(c.proposal),
            Certificate::Finalization(c) => self.certified(c.proposal),
            Certificate::Nullification(c) => {
                let Some((view, h)) = self.last_certified else {
                    return;
                };
                (Round::new(Epoch::zero(), c.round.view().next()), view, h)
            }
        };
        let leader = self.elector.elect(next, ());
        if self.participants.get(leader.get() as usize) != Some(&self.me)
            || self.proposed.contains(&next.view())
        {
            return;
        }
        if !self.states.contains_key(&parent_hash) {
            // Propose once the certified parent has been fetched.
            if self.leads.len() < MAX_WAITING {
                self.leads.insert(parent_hash, (next, view));
            }
            self.fetch(parent_hash, blocks);
            return;
        }
        self.propose(next, view, parent_hash, votes, blocks);
    }

    /// Note a certified proposal; (the round after it, its view, its block hash).
    fn certified(&mut self, proposal: Proposal<Digest>) -> (Round, View, Hash) {
        let view = proposal.round.view();
        let h = proposal.payload.0;
        if self.last_certified.is_none_or(|(v, _)| v < view) {
            self.last_certified = Some((view, h));
        }
        (Round::new(Epoch::zero(), view.next()), view, h)
    }

    /// Ask everyone for block `h`, again each time it is found missing (a request or its
    /// answer may be lost), and for the finalized records above the highest block it knows
    /// (an honest node keeps only unfinalized proposals to answer block fetches).
    fn fetch<S: Sender<PublicKey = PublicKey>>(&mut self, h: Hash, blocks: &mut S) {
        let msg = Message::FetchBlock(h).to_bytes();
        let _ = blocks.send(Recipients::All, msg, false);
        let msg = Message::FetchRecords(self.top_height + 1).to_bytes();
        let _ = blocks.send(Recipients::All, msg, false);
    }

    /// A block from a proposal or a finalized record: applied if its parent is known (then
    /// every block waiting for it, proposing where a led view waited for one of them), else
    /// kept until the parent arrives.
    fn receive<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        block: Block,
        votes: &mut S,
        blocks: &mut S,
    ) {
        let parent = block.header.parent_hash;
        if !self.states.contains_key(&parent) {
            let waiting: usize = self.orphans.values().map(Vec::len).sum();
            if waiting < MAX_WAITING {
                self.orphans.entry(parent).or_default().push(block);
            }
            self.fetch(parent, blocks);
            return;
        }
        let mut ready = vec![block];
        while let Some(block) = ready.pop() {
            let Some(h) = self.apply(&block) else {
                continue;
            };
            if let Some((next, view)) = self.leads.remove(&h) {
                self.propose(next, view, h, votes, blocks);
            }
            ready.extend(self.orphans.remove(&h).unwrap_or_default());
        }
    }

    /// Two different valid blocks on `parent_hash` for round `next`, one to each half.
    fn propose<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        next: Round,
        view: View,
        parent_hash: Hash,
        votes: &mut S,
        blocks: &mut S,
    ) {
        if !self.proposed.insert(next.view()) {
            return;
        }
        let Some(parent) = self.states.get(&parent_hash).cloned() else {
            return;
        };
        let now = self
            .context
            .current()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ts = now.max(parent.last_timestamp_s());
        let (a, b) = self.halves();
        let mut sent = 0;
        for (to, t) in [(a, ts), (b, ts + 1)] {
            let mut l = parent.clone();
            let Ok((block, _)) = l.produce_block(t, Vec::new()) else {
                continue;
            };
            let h = block.hash();
            let proposal = Proposal::new(next, view, Digest(h));
            let Some(vote) = Notarize::sign(&self.scheme, proposal) else {
                continue;
            };
            let _ = blocks.send(
                Recipients::Some(to.clone()),
                Message::Proposal(block.to_bytes()).to_bytes(),
                true,
            );
            let _ = votes.send(Recipients::Some(to), Vote::Notarize(vote).encode(), true);
            self.made.insert(h, block);
            self.states.insert(h, l);
            self.order.push(h);
            sent += 1;
        }
        if sent == 2
            && let Ok(mut t) = self.tally.lock()
        {
            t.double_proposals += 1;
        }
    }

    fn on_block_message<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        peer: PublicKey,
        bytes: &[u8],
        votes: &mut S,
        blocks: &mut S,
    ) {
        match Message::decode(bytes) {
            Ok(Message::Proposal(b)) => {
                if let Ok(block) = Block::decode(&b) {
                    self.receive(block, votes, blocks);
                }
            }
            Ok(Message::Records(rs)) => {
                let n = self.participants.len();
                for r in rs {
                    if let Ok(r) = Record::decode(&r, n) {
                        self.receive(r.block, votes, blocks);
                    }
                }
            }
            Ok(Message::FetchBlock(h)) => {
                if let Some(b) = self.made.get(&h) {
                    let msg = Message::Proposal(b.to_bytes()).to_bytes();
                    let _ = blocks.send(Recipients::One(peer), msg, false);
                }
            }
            _ => {}
        }
    }
}
