//! A member's agent inside its own node process (`scg chain run --agent-scenario`): it holds
//! the member's part of the plan ([`crate::plan::Plan::member_part`]: its orders and its
//! meters' readings, from the node's own run of the community engine) and the keys only this
//! node holds (the member's key and its meters' keys, files in the node's directory), and when
//! the block clock reaches a step it signs what the [`Schedule`] says is due and submits it to
//! its own node's mempool.
//!
//! It never signs for another member or for the operator, never does I/O beyond reading its
//! key files at start-up, and never prints (its progress is in the node's `/status`).

use crate::ChainError;
use crate::genesis::Genesis;
use crate::keys::MemberKey;
use crate::plan::{MemberPlan, Plan, Schedule};
use scg_ledger::merkle::sha256;
use scg_ledger::{DeviceType, PublicKey, Tx, TxBody};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file of a meter's key in a node's directory.
pub fn meter_key_file(dir: &Path, device: DeviceType) -> PathBuf {
    dir.join(format!("meter-{}.key", device.name()))
}

/// A transaction id unique per signer and nonce on this chain.
fn tx_id(chain: u64, signer: &PublicKey, nonce: u64) -> u128 {
    let h = sha256(&[
        b"SCG-TESTNET/TX/v1",
        &chain.to_le_bytes(),
        signer,
        &nonce.to_le_bytes(),
    ]);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    u128::from_le_bytes(b)
}

/// Signs with per-key nonces (each key's first transaction has nonce `start`'s entry, else
/// 0): the one signer of the driver and the agents.
#[derive(Debug, Clone, Default)]
pub struct Signer {
    /// The chain's `u64` id.
    pub chain: u64,
    /// Next nonce per key.
    pub nonces: BTreeMap<PublicKey, u64>,
    /// Transactions signed.
    pub count: u64,
}

impl Signer {
    /// A signer for chain `chain`, every key at nonce 0.
    pub fn new(chain: u64) -> Self {
        Self {
            chain,
            ..Self::default()
        }
    }

    /// Sign `body` with `key` at its next nonce.
    pub fn sign(&mut self, key: &MemberKey, body: TxBody) -> Vec<u8> {
        let pk = key.public();
        let nonce = self.nonces.entry(pk).or_insert(0);
        let id = tx_id(self.chain, &pk, *nonce);
        let bytes = Tx::sign(self.chain, &key.signing_key(), id, *nonce, body);
        *nonce += 1;
        self.count += 1;
        bytes
    }
}

/// What an agent signs with: the member's key and its meters' keys.
#[derive(Debug, Clone)]
pub struct AgentKeys {
    /// The member's key (the node's own key).
    pub member: MemberKey,
    /// Its meters' keys, with their devices.
    pub meters: Vec<(DeviceType, MemberKey)>,
}

impl AgentKeys {
    /// The node's key and, from `dir`, the key of every meter the genesis registers for the
    /// node's member ([`meter_key_file`]); each is checked against the genesis.
    pub fn load(genesis: &Genesis, member: MemberKey, dir: &Path) -> Result<Self, ChainError> {
        let m = genesis
            .members
            .iter()
            .find(|m| m.key == member.public())
            .ok_or_else(|| ChainError::BadInput {
                what: "agent".into(),
                reason: format!(
                    "the node's key {} is not a member of this genesis",
                    member.public_hex()
                ),
            })?;
        let mut meters = Vec::with_capacity(m.meters.len());
        for (key, device) in &m.meters {
            let path = meter_key_file(dir, *device);
            let k = MemberKey::read(&path)?;
            if k.public() != *key {
                return Err(ChainError::KeyFile {
                    path,
                    reason: format!(
                        "its public key is not the one the genesis registers for {}'s {} meter",
                        m.name,
                        device.name()
                    ),
                });
            }
            meters.push((*device, k));
        }
        Ok(Self { member, meters })
    }
}

/// A member's agent: its part of the plan, its keys, and how far it has submitted.
#[derive(Debug, Clone)]
pub struct Agent {
    name: String,
    keys: AgentKeys,
    part: MemberPlan,
    schedule: Schedule,
    signer: Signer,
    /// First interval whose orders are not signed.
    ordered: usize,
    /// First interval whose readings are not signed.
    read: usize,
    /// Orders and readings whose time had passed when the clock first reached them.
    missed: u64,
}

impl Agent {
    /// The agent of the member whose key is `keys.member`, on `plan` (the node's own run of
    /// the community engine), with the clock moving `step_intervals` intervals per step.
    /// The plan's interval grid must be the genesis market's, and every meter of the
    /// member's part must have a key.
    pub fn new(
        genesis: &Genesis,
        keys: AgentKeys,
        plan: &Plan,
        step_intervals: u64,
    ) -> Result<Self, ChainError> {
        let bad = |reason: String| ChainError::BadInput {
            what: "agent".into(),
            reason,
        };
        let name = genesis
            .members
            .iter()
            .find(|m| m.key == keys.member.public())
            .map(|m| m.name.clone())
            .ok_or_else(|| bad("the node's key is not a member of this genesis".into()))?;
        let market = genesis
            .market
            .ok_or_else(|| bad("the genesis opens no market".into()))?;
        if (market.epoch_s, market.interval_s) != (plan.epoch_s, plan.interval_s) {
            return Err(bad(format!(
                "the simulated year's intervals (epoch {}, {} s) are not the chain market's (epoch {}, {} s): another scenario?",
                plan.epoch_s, plan.interval_s, market.epoch_s, market.interval_s
            )));
        }
        if step_intervals == 0 {
            return Err(bad("--intervals-per-step must be at least 1".into()));
        }
        let part = plan.member_part(&name)?;
        if let Some(r) = part
            .readings
            .iter()
            .flatten()
            .find(|r| !keys.meters.iter().any(|(d, _)| *d == r.device))
        {
            return Err(bad(format!(
                "{name} has readings of its {} meter, which the genesis does not register",
                r.device.name()
            )));
        }
        let schedule = Schedule {
            epoch_s: plan.epoch_s,
            interval_s: plan.interval_s,
            step_s: step_intervals.saturating_mul(plan.interval_s),
            intervals: plan.intervals.len(),
        };
        Ok(Self {
            name,
            signer: Signer::new(genesis.ledger.chain_id),
            keys,
            part,
            schedule,
            ordered: 0,
            read: 0,
            missed: 0,
        })
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Transactions signed so far.
    pub fn signed(&self) -> u64 {
        self.signer.count
    }

    /// Orders and readings skipped because the clock was already past their time.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// True once every order and reading of the plan is signed.
    pub fn done(&self) -> bool {
        self.ordered >= self.schedule.intervals && self.read >= self.schedule.intervals
    }

    /// Sign what is due at block clock `t_s` and not signed yet: the member's orders of the
    /// intervals whose gate is within the next step, and its meters' readings of the
    /// intervals closed at the previous step ([`Schedule`]). Each interval once.
    pub fn due(&mut self, t_s: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let orders = self.schedule.orders(t_s);
        if self.ordered < orders.start {
            self.missed += self.part.count(self.ordered..orders.start, 0..0);
            self.ordered = orders.start;
        }
        for k in self.ordered..orders.end {
            for o in &self.part.orders[k] {
                let body = TxBody::Order(scg_ledger::market::OrderBody {
                    interval: k as u64,
                    ..*o
                });
                out.push(self.signer.sign(&self.keys.member, body));
            }
        }
        self.ordered = self.ordered.max(orders.end);
        let readings = self.schedule.readings(t_s);
        if self.read < readings.start {
            self.missed += self.part.count(0..0, self.read..readings.start);
            self.read = readings.start;
        }
        for k in self.read..readings.end {
            for r in &self.part.readings[k] {
                // `new` checked that every device read has a key.
                let Some((_, key)) = self.keys.meters.iter().find(|(d, _)| *d == r.device) else {
                    continue;
                };
                let body = TxBody::MeterReport {
                    interval: k as u64,
                    produced_wh: r.produced_wh,
                    consumed_wh: r.consumed_wh,
                };
                out.push(self.signer.sign(key, body));
            }
        }
        self.read = self.read.max(readings.end);
        out
    }
}

/// An agent's progress, in its node's `/status` (`agent`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentStatus {
    /// The member's name (empty until the plan is ready).
    pub member: String,
    /// The node's simulation is done and the agent follows the clock.
    pub ready: bool,
    /// Transactions its node admitted to its mempool.
    pub accepted: u64,
    /// Transactions its node refused, and the last reason.
    pub refused: u64,
    /// See `refused`.
    pub last_refusal: Option<String>,
    /// Orders and readings skipped because the clock was already past their time.
    pub missed: u64,
    /// Every order and reading of the plan is submitted.
    pub done: bool,
}
