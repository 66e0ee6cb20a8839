//! The state transitions of the compact settlement layout (kinds 23 and 24, see
//! [`crate::day`]): a member day is checked against its own series and staged; the day close
//! checks that the staged days add up across members and applies them at once (mint, P2P
//! money, grid fees, the member aggregates). Like the rest of the state machine it is a pure
//! function of the state and the record: no clock, no I/O, ordered maps only; every check runs
//! before the first change, so a rejected record changes nothing.

use super::{Ledger, Reject, Role};
use crate::codec::Writer;
use crate::day::{DayClose, MemberDay, Quantity, STORAGE_DEVICES};
use crate::merkle::{Hash, MerkleProof, leaf_hash, sha256};
use crate::state::StateCommitment;
use crate::tx::{DeviceType, PublicKey};

/// A member's settled days in the compact layout: what its day records added up to. One
/// leaf of the day tree (`leaf(to_bytes)`), in order of first settlement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberAggregate {
    /// The member.
    pub member: PublicKey,
    /// Position in the day tree.
    pub index: u64,
    /// Days settled.
    pub days: u64,
    /// First interval after the last settled day (a member day must start there or later).
    pub next_interval: u64,
    /// `SHA-256(previous digest || leaf of the member day's body)` over its settled days:
    /// commits the aggregate to the member's day records.
    pub days_digest: Hash,
    /// Renewable Wh metered (PV and wind): covered by the member's day certificates.
    pub renewable_wh: u128,
    /// Day certificates issued (days with renewable Wh).
    pub day_certificates: u64,
    /// Wh imported at the supply point.
    pub imported_wh: u128,
    /// Wh exported at the supply point.
    pub exported_wh: u128,
    /// P2P Wh sold.
    pub p2p_sold_wh: u128,
    /// P2P Wh bought.
    pub p2p_bought_wh: u128,
    /// RESCoin minted for its renewable Wh.
    pub minted_base: u128,
    /// P2P money received.
    pub received_base: u128,
    /// P2P money paid (fees excluded).
    pub paid_base: u128,
    /// Grid fees paid.
    pub fees_base: u128,
    /// Certified Wh received with purchases.
    pub certified_received_wh: u128,
    /// Certified Wh passed on with sales.
    pub certified_sold_wh: u128,
    /// Certified Wh each storage device holds ([`STORAGE_DEVICES`] order).
    pub storage_held_wh: [u64; 2],
}

impl MemberAggregate {
    /// Canonical bytes (the leaf is `leaf(these bytes)`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(32 + 8 * 4 + 32 + 16 * 12 + 16);
        w.bytes(&self.member);
        w.u64(self.index);
        w.u64(self.days);
        w.u64(self.next_interval);
        w.bytes(&self.days_digest);
        for v in [
            self.renewable_wh,
            self.imported_wh,
            self.exported_wh,
            self.p2p_sold_wh,
            self.p2p_bought_wh,
            self.minted_base,
            self.received_base,
            self.paid_base,
            self.fees_base,
            self.certified_received_wh,
            self.certified_sold_wh,
        ] {
            w.u128(v);
        }
        w.u64(self.day_certificates);
        for h in self.storage_held_wh {
            w.u64(h);
        }
        w.buf
    }
}

/// A member's proof of its aggregate against a state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAggregateProof {
    /// The aggregate.
    pub aggregate: MemberAggregate,
    /// Path in the day tree.
    pub proof: MerkleProof,
    /// The other parts of the state root.
    pub commitment: StateCommitment,
}

impl MemberAggregateProof {
    /// True when the aggregate is in the state with this root.
    pub fn verify(&self, state_root: &Hash) -> bool {
        self.commitment.root() == *state_root
            && self.proof.index == self.aggregate.index
            && self
                .commitment
                .days_root
                .is_some_and(|r| self.proof.root_for(&leaf_hash(&self.aggregate.to_bytes())) == r)
    }
}

/// The member day's leaf in the member's digest.
fn day_leaf(day: &MemberDay) -> Hash {
    let mut w = Writer::default();
    day.encode(&mut w);
    leaf_hash(&w.buf)
}

fn storage_index(d: DeviceType) -> Option<usize> {
    STORAGE_DEVICES.iter().position(|s| *s == d)
}

impl Ledger {
    /// A member's aggregate of the compact layout.
    pub fn member_aggregate(&self, member: &PublicKey) -> Option<&MemberAggregate> {
        self.days.get(member)
    }

    /// Every member aggregate, by member key.
    pub fn member_aggregates(&self) -> impl Iterator<Item = &MemberAggregate> {
        self.days.values()
    }

    /// A proof of a member's aggregate against the current state root.
    pub fn member_aggregate_proof(&self, member: &PublicKey) -> Option<MemberAggregateProof> {
        let aggregate = self.days.get(member)?.clone();
        let proof = self
            .day_tree
            .proof(usize::try_from(aggregate.index).ok()?)?;
        Some(MemberAggregateProof {
            aggregate,
            proof,
            commitment: self.commitment(),
        })
    }

    /// Certified Wh a storage meter holds in the compact layout (0 for any other key).
    pub(super) fn day_storage_held_wh(&self, meter: &PublicKey) -> u64 {
        let Some(a) = self.accounts.get(meter) else {
            return 0;
        };
        match (a.owner, a.device.and_then(storage_index)) {
            (Some(owner), Some(i)) => self.days.get(&owner).map_or(0, |g| g.storage_held_wh[i]),
            _ => 0,
        }
    }

    /// Stage a member day after checking it against its own series.
    pub(super) fn member_day(
        &mut self,
        signer: &PublicKey,
        role: Role,
        day: &MemberDay,
    ) -> Result<(), Reject> {
        if self.market.params.is_some() {
            return Err(Reject::DayWithMarket);
        }
        if role != Role::Member {
            return Err(Reject::WrongRole);
        }
        let next = self.days.get(signer).map_or(0, |a| a.next_interval);
        if day.first_interval < next
            || day
                .first_interval
                .checked_add(u64::from(day.intervals))
                .is_none()
            || self.day_staged.iter().any(|(k, _)| k == signer)
        {
            return Err(Reject::DayOutOfOrder);
        }
        let held = self.days.get(signer).map_or([0; 2], |a| a.storage_held_wh);
        if !day_within_readings(day, held) {
            return Err(Reject::DayExceedsReadings);
        }
        self.day_staged.push((*signer, day.clone()));
        Ok(())
    }

    /// Close a day: check the staged days of `close` add up, then apply them.
    pub(super) fn day_close(&mut self, role: Role, close: &DayClose) -> Result<(), Reject> {
        if self.market.params.is_some() {
            return Err(Reject::DayWithMarket);
        }
        if role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        let same = |d: &MemberDay| {
            d.first_interval == close.first_interval && d.intervals == close.intervals
        };
        // Taken out while checked and applied (no copy of the days); put back on a reject.
        let all = std::mem::take(&mut self.day_staged);
        let staged: Vec<&(PublicKey, MemberDay)> = all.iter().filter(|(_, d)| same(d)).collect();
        let checked = if staged.len() != close.members as usize || !day_balances(close, &staged) {
            Err(Reject::DayUnbalanced)
        } else {
            self.day_funds(&staged)
        };
        let mints = match checked {
            Ok(mints) => mints,
            Err(reject) => {
                self.day_staged = all;
                return Err(reject);
            }
        };
        let mut fees_total = 0u128;
        for ((member, day), mint) in staged.iter().map(|s| (&s.0, &s.1)).zip(mints) {
            self.apply_member_day(member, day, mint);
            fees_total += day.money.fees_base;
        }
        let grid = self.config.grid;
        self.credit(&grid, fees_total);
        self.day_staged = all.into_iter().filter(|(_, d)| !same(d)).collect();
        Ok(())
    }

    /// Per member day its mint; refuses a day that would overflow the supply or leave a member
    /// unable to pay (its balance plus mint plus P2P receipts below its payments and fees).
    fn day_funds(&self, staged: &[&(PublicKey, MemberDay)]) -> Result<Vec<u128>, Reject> {
        let mut minted = self.totals.minted;
        let mut mints = Vec::with_capacity(staged.len());
        for (member, day) in staged.iter().map(|s| (&s.0, &s.1)) {
            let mint = day
                .renewable_wh()
                .checked_mul(self.config.mint_rate_base_per_wh)
                .ok_or(Reject::Overflow)?;
            minted = minted.checked_add(mint).ok_or(Reject::Overflow)?;
            let have = self.accounts.get(member).map_or(0, |a| a.balance);
            let income = have
                .checked_add(mint)
                .and_then(|x| x.checked_add(day.money.received_base))
                .ok_or(Reject::Overflow)?;
            let spend = day
                .money
                .paid_base
                .checked_add(day.money.fees_base)
                .ok_or(Reject::Overflow)?;
            if income < spend {
                return Err(Reject::InsufficientFunds);
            }
            mints.push(mint);
        }
        Ok(mints)
    }

    fn apply_member_day(&mut self, member: &PublicKey, day: &MemberDay, mint: u128) {
        let renewable = day.renewable_wh();
        self.totals.minted += mint;
        self.totals.minted_renewable += mint;
        self.totals.renewable_wh_metered += renewable;
        self.totals.certified_wh += renewable;
        self.totals.certificates_issued += u64::from(renewable > 0);
        self.credit(member, mint + day.money.received_base);
        self.debit(member, day.money.paid_base + day.money.fees_base);
        let index = self.days.len() as u64;
        let a = self.days.entry(*member).or_insert_with(|| MemberAggregate {
            member: *member,
            index,
            ..MemberAggregate::default()
        });
        a.days += 1;
        a.next_interval = day.first_interval + u64::from(day.intervals);
        a.days_digest = sha256(&[&a.days_digest, &day_leaf(day)]);
        a.renewable_wh += renewable;
        a.day_certificates += u64::from(renewable > 0);
        a.imported_wh += day.total(Quantity::Consumed(DeviceType::SupplyPoint));
        a.exported_wh += day.total(Quantity::Produced(DeviceType::SupplyPoint));
        a.p2p_sold_wh += day.total(Quantity::P2pSold);
        a.p2p_bought_wh += day.total(Quantity::P2pBought);
        a.minted_base += mint;
        a.received_base += day.money.received_base;
        a.paid_base += day.money.paid_base;
        a.fees_base += day.money.fees_base;
        a.certified_received_wh += u128::from(day.certified.received_wh);
        a.certified_sold_wh += u128::from(day.certified.sold_wh);
        for (held, (into, out)) in a.storage_held_wh.iter_mut().zip(day.certified.storage) {
            // Checked at staging: out <= held + into.
            *held = *held + into - out;
        }
        self.day_dirty.insert(*member);
    }

    /// Fold the changed aggregates into the day tree.
    pub(super) fn commit_days(&mut self) {
        let dirty = std::mem::take(&mut self.day_dirty);
        let mut leaves: Vec<(usize, Hash)> = dirty
            .iter()
            .filter_map(|k| self.days.get(k))
            .map(|a| (a.index as usize, leaf_hash(&a.to_bytes())))
            .collect();
        leaves.sort_unstable_by_key(|(i, _)| *i);
        self.day_tree.set_many(&leaves);
    }

    /// The day tree's root as rebuilt from the aggregates (for `check_invariants`).
    pub(super) fn days_root_from_records(&self) -> Option<Hash> {
        if self.days.is_empty() {
            return None;
        }
        let mut leaves: Vec<(u64, Hash)> = self
            .days
            .values()
            .map(|a| (a.index, leaf_hash(&a.to_bytes())))
            .collect();
        leaves.sort_unstable_by_key(|(i, _)| *i);
        let leaves: Vec<Hash> = leaves.into_iter().map(|(_, h)| h).collect();
        Some(crate::merkle::merkle_root(&leaves))
    }

    /// Renewable Wh covered by the members' day certificates.
    pub(super) fn day_certified_wh(&self) -> u128 {
        self.days.values().map(|a| a.renewable_wh).sum()
    }
}

/// Value `k` of a series (0 past its end or without one).
fn at(series: Option<&[u64]>, k: usize) -> u64 {
    series.and_then(|v| v.get(k)).copied().unwrap_or(0)
}

/// Each figure of `day` within what its series metered (module doc of [`crate::day`]), with
/// `held` the certified Wh its storage devices held before the day.
fn day_within_readings(day: &MemberDay, held: [u64; 2]) -> bool {
    let n = usize::from(day.intervals);
    let sold_at = day.get(Quantity::P2pSold);
    let bought_at = day.get(Quantity::P2pBought);
    let exported_at = day.get(Quantity::Produced(DeviceType::SupplyPoint));
    let imported_at = day.get(Quantity::Consumed(DeviceType::SupplyPoint));
    let per_interval_ok = (0..n)
        .all(|k| at(sold_at, k) <= at(exported_at, k) && at(bought_at, k) <= at(imported_at, k));
    let sold = day.total(Quantity::P2pSold);
    let bought = day.total(Quantity::P2pBought);
    let c = &day.certified;
    let money_ok = (day.money.received_base == 0 || sold > 0)
        && (day.money.paid_base == 0 && day.money.fees_base == 0 || bought > 0);
    let mut released = 0u128;
    let mut stored = 0u128;
    let mut storage_ok = true;
    for ((device, (into, out)), h) in STORAGE_DEVICES.iter().zip(c.storage).zip(held) {
        storage_ok &= u128::from(into) <= day.total(Quantity::Consumed(*device))
            && u128::from(out) <= day.total(Quantity::Produced(*device))
            && u128::from(out) <= u128::from(h) + u128::from(into);
        released += u128::from(out);
        stored += u128::from(into);
    }
    let sources = day.renewable_wh() + released + u128::from(c.received_wh);
    per_interval_ok
        && money_ok
        && storage_ok
        && u128::from(c.sold_wh) <= sold
        && u128::from(c.received_wh) <= bought
        && u128::from(c.sold_wh) + stored <= sources
}

/// The staged days of one close add up: per interval P2P Wh sold = bought, money paid =
/// received, certified Wh sold = received.
fn day_balances(close: &DayClose, staged: &[&(PublicKey, MemberDay)]) -> bool {
    let n = usize::from(close.intervals);
    let mut net = vec![0i128; n];
    let (mut paid, mut received) = (0u128, 0u128);
    let (mut cert_sold, mut cert_received) = (0u128, 0u128);
    for (_, d) in staged.iter().copied() {
        let (sold, bought) = (d.get(Quantity::P2pSold), d.get(Quantity::P2pBought));
        if sold.is_some() || bought.is_some() {
            for (k, x) in net.iter_mut().enumerate() {
                *x += i128::from(at(sold, k)) - i128::from(at(bought, k));
            }
        }
        paid = paid.saturating_add(d.money.paid_base);
        received = received.saturating_add(d.money.received_base);
        cert_sold += u128::from(d.certified.sold_wh);
        cert_received += u128::from(d.certified.received_wh);
    }
    net.iter().all(|x| *x == 0) && paid == received && cert_sold == cert_received
}
