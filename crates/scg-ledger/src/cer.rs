//! The Italian renewable energy community (CER) incentive in ledger integers, and the CER's
//! part of the ledger state (incentive periods closed on-chain, zonal prices, the capped
//! issuance that funds the payouts).
//!
//! **The one integer rule** ([`CerTally::add_hour`]), used by the chain's period close (kind
//! 21, `state/cer_exec.rs`) *and* by `scg simulate`'s settlement (`scg-settle`), so the two
//! pay the same base units by construction. Per hour, from each member's supply-point
//! readings summed to the hour (injection = exported Wh, withdrawal = imported Wh; P2P energy
//! crosses the public grid, so it is both):
//! - shared energy `E = min(Σ injected, Σ withdrawn)` Wh (D.Lgs. 199/2021, ARERA TIAD);
//! - incentive tariff (TIP, DM 414/2023) in milli-EUR/MWh, from the hour's zonal price `P`:
//!   `min(cap, fixed + max(0, 180,000 − P)) + PV bonus` (the community's plant size class;
//!   the bonus is added after the cap, as GSE does);
//! - incentive `E × TIP` and ARERA valorisation `E × valorisation` in base units — exact: one
//!   Wh at one milli-EUR/MWh is 10⁻⁶ MWh × 10⁻³ EUR/MWh = 10⁻⁹ EUR, one base unit;
//! - the hour's benefit `B` (incentive + valorisation) is split into a producers' pot
//!   `floor(B × share / 10,000)` divided pro rata to injection and a consumers' pot (the rest)
//!   divided pro rata to withdrawal — the simulator's rule (`scg_sim::cer`) in integers. Each
//!   pot is divided by largest remainders ([`apportion`]): every member gets the floor of its
//!   exact share, and the units left over (fewer than the members) go one each to the largest
//!   remainders, ties to the earlier member, so the payouts add up to `B` exactly: no base unit
//!   is created or lost.
//!
//! The simulator computes the same rule in floats on unrounded kWh for its economics (NPC,
//! `summary.json`'s `cer_incentive_eur`); the ledger pays this integer rule on the rounded Wh
//! it meters. They differ by the Wh rounding of the readings (each step's energy within half a
//! Wh) at the tariff, and by less than one base unit per member and hour.
//!
//! Simplifications (the simulator's): one plant size class and one PV bonus for the
//! community; the GSE order of plants does not change the total when all plants have one class.
//!
//! This module does no I/O.

use crate::LedgerError;
use crate::codec::{DecodeError, Reader, Writer};
use crate::merkle::{Hash, sha256};
use crate::tx::PublicKey;
use std::collections::BTreeMap;

/// The TIP's reference price, milli-EUR/MWh (180 EUR/MWh).
pub const TIP_REFERENCE_MILLI_EUR_PER_MWH: i64 = 180_000;
/// Basis points in one: a producer share of `10_000` gives the whole benefit to producers.
pub const BASIS_POINTS: u16 = 10_000;
/// Longest incentive period, hours (31 days: GSE settles monthly).
pub const MAX_PERIOD_HOURS: u32 = 744;
/// Most zonal prices in one transaction (a week of hours).
pub const MAX_ZONAL_PRICES: usize = 168;
/// Longest reference of an issuance, bytes (UTF-8).
pub const MAX_REFERENCE_LEN: usize = 64;
/// Most co-signatures on one issuance: as many as fit in one transaction of
/// [`crate::tx::MAX_TX_LEN`] bytes with the longest reference, so a community of up to 59
/// members can reach its quorum (more than two thirds) in one issuance.
pub const MAX_COSIGNERS: usize = 40;

// The largest issuance fits in one ordinary transaction (which the chain gossips as is).
const _: () = assert!(
    crate::tx::TX_HEADER_LEN
        + 16
        + 1
        + MAX_REFERENCE_LEN
        + 2
        + 96 * MAX_COSIGNERS
        + crate::tx::SIGNATURE_LEN
        <= crate::tx::MAX_TX_LEN
);
/// Signature domain of an issuance's co-signatures.
pub const ISSUANCE_DOMAIN: &[u8] = b"SCG-LEDGER/ISSUE/v1";

/// A plant size class of the TIP (DM 414/2023); wire codes 1, 2, 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SizeClass {
    /// Up to 200 kW: fixed 80, cap 120 EUR/MWh.
    UpTo200Kw,
    /// Above 200 kW and up to 600 kW: fixed 70, cap 110 EUR/MWh.
    From200To600Kw,
    /// Above 600 kW: fixed 60, cap 100 EUR/MWh.
    Over600Kw,
}

impl SizeClass {
    /// The fixed part, milli-EUR/MWh.
    pub fn fixed_milli_eur_per_mwh(self) -> i64 {
        match self {
            Self::UpTo200Kw => 80_000,
            Self::From200To600Kw => 70_000,
            Self::Over600Kw => 60_000,
        }
    }

    /// The cap on fixed + variable part, milli-EUR/MWh.
    pub fn cap_milli_eur_per_mwh(self) -> i64 {
        match self {
            Self::UpTo200Kw => 120_000,
            Self::From200To600Kw => 110_000,
            Self::Over600Kw => 100_000,
        }
    }

    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::UpTo200Kw => 1,
            Self::From200To600Kw => 2,
            Self::Over600Kw => 3,
        }
    }

    /// From the wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::UpTo200Kw,
            2 => Self::From200To600Kw,
            3 => Self::Over600Kw,
            _ => return None,
        })
    }
}

/// The community's CER rule in integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CerRule {
    /// Plant size class of the TIP.
    pub size_class: SizeClass,
    /// PV correction added after the cap, milli-EUR/MWh (0 for non-PV plants).
    pub pv_bonus_milli_eur_per_mwh: u64,
    /// ARERA valorisation, milli-EUR/MWh of shared energy.
    pub valorisation_milli_eur_per_mwh: u64,
    /// Producers' share of each hour's benefit, basis points (0..=10,000).
    pub producer_share_bp: u16,
}

impl CerRule {
    /// Why this rule is unusable, if it is.
    pub fn problem(&self) -> Option<&'static str> {
        (self.producer_share_bp > BASIS_POINTS).then_some("producer_share_bp must be <= 10000")
    }
}

/// The TIP of an hour with zonal price `zonal_milli_eur_per_mwh`, milli-EUR/MWh:
/// `min(cap, fixed + max(0, 180,000 − zonal)) + bonus` (never negative).
pub fn tip_milli_eur_per_mwh(
    class: SizeClass,
    zonal_milli_eur_per_mwh: i64,
    pv_bonus_milli_eur_per_mwh: u64,
) -> u128 {
    let variable =
        (i128::from(TIP_REFERENCE_MILLI_EUR_PER_MWH) - i128::from(zonal_milli_eur_per_mwh)).max(0);
    let capped = (i128::from(class.fixed_milli_eur_per_mwh()) + variable)
        .min(i128::from(class.cap_milli_eur_per_mwh()));
    // fixed > 0 and variable >= 0, so `capped` is positive.
    capped.unsigned_abs() + u128::from(pv_bonus_milli_eur_per_mwh)
}

/// Divide `total` pro rata to `weights` by largest remainders into `out` (same length):
/// `out[i] = floor(total × w_i / Σw)`, then the units left over (fewer than the members with a
/// non-zero remainder) one each to the largest remainders `total × w_i mod Σw`, ties to the
/// lower index. `Σ out = total` whenever `Σw > 0`; with `Σw = 0` every share is 0 (and
/// `total` must then be 0: returns `false` otherwise). `false` also on overflow (nothing
/// written then is meaningful).
pub fn apportion(total: u128, weights: &[u64], out: &mut [u128]) -> bool {
    if out.len() != weights.len() {
        return false;
    }
    out.fill(0);
    let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if sum == 0 {
        return total == 0;
    }
    let mut given: u128 = 0;
    let mut remainders: Vec<(u128, usize)> = Vec::new();
    for (i, (w, o)) in weights.iter().zip(out.iter_mut()).enumerate() {
        let Some(exact) = total.checked_mul(u128::from(*w)) else {
            return false;
        };
        *o = exact / sum;
        given += *o;
        let r = exact % sum;
        if r > 0 {
            remainders.push((r, i));
        }
    }
    let left = total - given;
    let Ok(left) = usize::try_from(left) else {
        return false;
    };
    if left > 0 {
        // Largest remainder first, then the lower index.
        remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, i) in remainders.iter().take(left) {
            out[*i] += 1;
        }
    }
    true
}

/// The CER rule over a run of hours: totals and each member's allocation, base units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CerTally {
    /// Shared energy, Wh.
    pub shared_wh: u128,
    /// Incentive (TIP), base units.
    pub incentive_base: u128,
    /// ARERA valorisation, base units.
    pub valorisation_base: u128,
    /// Per member (in the order given), its allocation of incentive + valorisation.
    pub allocated_base: Vec<u128>,
    /// Hours added.
    pub hours: u64,
    scratch: Vec<u128>,
}

impl CerTally {
    /// An empty tally for `members` members.
    pub fn new(members: usize) -> Self {
        Self {
            shared_wh: 0,
            incentive_base: 0,
            valorisation_base: 0,
            allocated_base: vec![0; members],
            hours: 0,
            scratch: vec![0; members],
        }
    }

    /// The benefit so far (incentive + valorisation), base units: what the allocations add
    /// up to.
    pub fn total_base(&self) -> u128 {
        self.incentive_base + self.valorisation_base
    }

    /// One hour: each member's injected and withdrawn Wh (one entry per member, in the
    /// tally's order) at the hour's zonal price. Errors on a length mismatch or an overflow
    /// (then the tally is unchanged).
    pub fn add_hour(
        &mut self,
        rule: &CerRule,
        zonal_milli_eur_per_mwh: i64,
        injected_wh: &[u64],
        withdrawn_wh: &[u64],
    ) -> Result<(), LedgerError> {
        let n = self.allocated_base.len();
        if injected_wh.len() != n || withdrawn_wh.len() != n {
            return Err(LedgerError::Cer(format!(
                "hour {}: {n} members but {} injections and {} withdrawals",
                self.hours,
                injected_wh.len(),
                withdrawn_wh.len()
            )));
        }
        if rule.producer_share_bp > BASIS_POINTS {
            return Err(LedgerError::Cer(format!(
                "producer share {} basis points is above 10000",
                rule.producer_share_bp
            )));
        }
        let hour = self.hours;
        let overflow = move || LedgerError::Cer(format!("hour {hour}: an amount overflows"));
        let injected: u128 = injected_wh.iter().map(|w| u128::from(*w)).sum();
        let withdrawn: u128 = withdrawn_wh.iter().map(|w| u128::from(*w)).sum();
        let shared = injected.min(withdrawn);
        let tip = tip_milli_eur_per_mwh(
            rule.size_class,
            zonal_milli_eur_per_mwh,
            rule.pv_bonus_milli_eur_per_mwh,
        );
        let incentive = shared.checked_mul(tip).ok_or_else(overflow)?;
        let valorisation = shared
            .checked_mul(u128::from(rule.valorisation_milli_eur_per_mwh))
            .ok_or_else(overflow)?;
        let benefit = incentive.checked_add(valorisation).ok_or_else(overflow)?;
        let producers = benefit
            .checked_mul(u128::from(rule.producer_share_bp))
            .ok_or_else(overflow)?
            / u128::from(BASIS_POINTS);
        let consumers = benefit - producers;
        let mut next = self.allocated_base.clone();
        for (pot, weights) in [(producers, injected_wh), (consumers, withdrawn_wh)] {
            // shared > 0 means both sums are > 0; shared = 0 means benefit = 0.
            if !apportion(pot, weights, &mut self.scratch) {
                return Err(overflow());
            }
            for (a, s) in next.iter_mut().zip(&self.scratch) {
                *a = a.checked_add(*s).ok_or_else(overflow)?;
            }
        }
        let totals = (
            self.shared_wh.checked_add(shared),
            self.incentive_base.checked_add(incentive),
            self.valorisation_base.checked_add(valorisation),
        );
        let (Some(s), Some(i), Some(v)) = totals else {
            return Err(overflow());
        };
        i.checked_add(v).ok_or_else(overflow)?;
        (self.shared_wh, self.incentive_base, self.valorisation_base) = (s, i, v);
        self.allocated_base = next;
        self.hours += 1;
        Ok(())
    }
}

/// The CER's on-chain parameters, set once by the operator's CER-open transaction (kind 19)
/// after the market is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CerParams {
    /// The incentive rule.
    pub rule: CerRule,
    /// Hours per incentive period (1..=[`MAX_PERIOD_HOURS`]); period `p` is the market hours
    /// `[p × period_hours, (p + 1) × period_hours)`, hour `h` being
    /// `[epoch + 3600 h, epoch + 3600 (h + 1))`.
    pub period_hours: u32,
    /// The most RESCoin that may ever enter other than by metered renewable minting, base
    /// units: the genesis treasury endowment plus every quorum-signed issuance.
    pub issuance_cap_base: u128,
}

impl CerParams {
    /// Wire bytes (kind 19): size class `u8`, PV bonus `u64`, valorisation `u64` (both
    /// milli-EUR/MWh), producer share `u16` (basis points), period hours `u32`, issuance cap
    /// `u128` (base units).
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.rule.size_class.code());
        w.u64(self.rule.pv_bonus_milli_eur_per_mwh);
        w.u64(self.rule.valorisation_milli_eur_per_mwh);
        w.u16(self.rule.producer_share_bp);
        w.u32(self.period_hours);
        w.u128(self.issuance_cap_base);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let code = r.u8("size_class")?;
        let size_class = SizeClass::from_code(code).ok_or(DecodeError::Invalid {
            field: "size_class",
            value: u64::from(code),
        })?;
        Ok(Self {
            rule: CerRule {
                size_class,
                pv_bonus_milli_eur_per_mwh: r.u64("pv_bonus_milli_eur_per_mwh")?,
                valorisation_milli_eur_per_mwh: r.u64("valorisation_milli_eur_per_mwh")?,
                producer_share_bp: r.u16("producer_share_bp")?,
            },
            period_hours: r.u32("period_hours")?,
            issuance_cap_base: r.u128("issuance_cap_base")?,
        })
    }

    /// Why these parameters are unusable on their own, if they are.
    pub fn problem(&self) -> Option<&'static str> {
        if let Some(p) = self.rule.problem() {
            return Some(p);
        }
        if self.period_hours == 0 || self.period_hours > MAX_PERIOD_HOURS {
            return Some("period_hours must be in 1..=744");
        }
        None
    }

    /// The first hour of `period` and the number of hours (`None` past `u64`).
    pub fn period_hours_range(&self, period: u64) -> Option<(u64, u64)> {
        let n = u64::from(self.period_hours);
        Some((period.checked_mul(n)?, n))
    }
}

/// A member's co-signature on an issuance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cosignature {
    /// A registered member's key.
    pub member: PublicKey,
    /// Its ed25519 signature over [`issuance_message`].
    pub signature: [u8; 64],
}

/// The body of a quorum-signed issuance (kind 22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceBody {
    /// Base units credited to the treasury (> 0).
    pub amount: u128,
    /// What it is for, UTF-8, 1..=[`MAX_REFERENCE_LEN`] bytes (e.g. "GSE CER payment period
    /// 3", "euro deposit 2026-11").
    pub reference: String,
    /// Members' co-signatures (1..=[`MAX_COSIGNERS`]).
    pub cosignatures: Vec<Cosignature>,
}

impl IssuanceBody {
    /// Wire bytes: amount `u128`, reference length `u8` + bytes, count `u16`, count ×
    /// (member key, signature 64).
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u128(self.amount);
        let reference = self.reference.as_bytes();
        // Bounded by the decoder; saturate defensively (such bytes will not decode).
        w.u8(u8::try_from(reference.len()).unwrap_or(u8::MAX));
        w.bytes(reference);
        w.u16(u16::try_from(self.cosignatures.len()).unwrap_or(u16::MAX));
        for c in &self.cosignatures {
            w.bytes(&c.member);
            w.bytes(&c.signature);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let amount = r.u128("amount")?;
        let len = r.u8("reference_len")?;
        if len == 0 || usize::from(len) > MAX_REFERENCE_LEN {
            return Err(DecodeError::Invalid {
                field: "reference_len",
                value: u64::from(len),
            });
        }
        let bytes = r.take(usize::from(len), "reference")?;
        let reference = std::str::from_utf8(bytes)
            .map_err(|e| DecodeError::Invalid {
                field: "reference",
                value: e.valid_up_to() as u64,
            })?
            .to_owned();
        let count = r.u16("cosigner_count")?;
        if count == 0 || usize::from(count) > MAX_COSIGNERS {
            return Err(DecodeError::Invalid {
                field: "cosigner_count",
                value: u64::from(count),
            });
        }
        let mut cosignatures = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            cosignatures.push(Cosignature {
                member: r.array("cosigner")?,
                signature: r.array("cosignature")?,
            });
        }
        Ok(Self {
            amount,
            reference,
            cosignatures,
        })
    }
}

/// The message a member co-signs for an issuance: `"SCG-LEDGER/ISSUE/v1" || chain_id u64 ||
/// issuance transaction id u128 || amount u128 || reference length u8 || reference`. The id
/// binds the signatures to one transaction (ids are never applied twice), the chain id to one
/// chain.
pub fn issuance_message(chain_id: u64, id: u128, amount: u128, reference: &str) -> Vec<u8> {
    let mut w = Writer::with_capacity(ISSUANCE_DOMAIN.len() + 41 + reference.len());
    w.bytes(ISSUANCE_DOMAIN);
    w.u64(chain_id);
    w.u128(id);
    w.u128(amount);
    w.u8(u8::try_from(reference.len()).unwrap_or(u8::MAX));
    w.bytes(reference.as_bytes());
    w.buf
}

/// A member's co-signature on issuance `id` of `amount` with `reference` on chain `chain_id`.
pub fn cosign(
    chain_id: u64,
    key: &ed25519_dalek::SigningKey,
    id: u128,
    amount: u128,
    reference: &str,
) -> Cosignature {
    use ed25519_dalek::Signer;
    Cosignature {
        member: key.verifying_key().to_bytes(),
        signature: key
            .sign(&issuance_message(chain_id, id, amount, reference))
            .to_bytes(),
    }
}

/// What a period close did (kept per closed period, committed to the state root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodRecord {
    /// Height of the block that closed the period.
    pub height: u64,
    /// Shared energy, Wh.
    pub shared_wh: u128,
    /// Incentive, base units.
    pub incentive_base: u128,
    /// Valorisation, base units.
    pub valorisation_base: u128,
    /// Members paid (allocation > 0).
    pub members_paid: u32,
}

/// One applied issuance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceRecord {
    /// Transaction id.
    pub id: u128,
    /// Height of its block.
    pub height: u64,
    /// Base units issued to the treasury.
    pub amount: u128,
    /// Its reference.
    pub reference: String,
    /// Members whose co-signatures counted.
    pub cosigners: u32,
}

/// The CER's part of the ledger state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CerState {
    /// Set by the CER-open transaction.
    pub params: Option<CerParams>,
    /// The treasury endowment of the genesis (counted against the issuance cap).
    pub endowment_base: u128,
    /// Zonal price per market hour, milli-EUR/MWh (an hour's price leaves when its period is
    /// closed).
    pub zonal: BTreeMap<u64, i64>,
    /// Closed periods.
    pub closed: BTreeMap<u64, PeriodRecord>,
    /// Quorum-signed issuances, in order.
    pub issuances: Vec<IssuanceRecord>,
    /// Their sum, base units.
    pub issued_base: u128,
}

impl CerState {
    /// How much more may be issued: the cap minus the endowment and the issuances so far.
    pub fn issuance_room_base(&self) -> u128 {
        self.params.map_or(0, |p| {
            p.issuance_cap_base
                .saturating_sub(self.endowment_base)
                .saturating_sub(self.issued_base)
        })
    }

    /// `SHA-256("SCG-LEDGER/CER/v1" || canonical bytes of every field)`; the state root
    /// includes it once the CER is open.
    pub fn root(&self) -> Hash {
        let mut w = Writer::with_capacity(128 + 16 * self.zonal.len());
        match &self.params {
            None => w.u8(0),
            Some(p) => {
                w.u8(1);
                p.encode(&mut w);
            }
        }
        w.u128(self.endowment_base);
        w.u64(self.zonal.len() as u64);
        for (hour, price) in &self.zonal {
            w.u64(*hour);
            w.u64(*price as u64);
        }
        w.u64(self.closed.len() as u64);
        for (period, r) in &self.closed {
            w.u64(*period);
            w.u64(r.height);
            w.u128(r.shared_wh);
            w.u128(r.incentive_base);
            w.u128(r.valorisation_base);
            w.u32(r.members_paid);
        }
        w.u64(self.issuances.len() as u64);
        for i in &self.issuances {
            w.u128(i.id);
            w.u64(i.height);
            w.u128(i.amount);
            w.u8(i.reference.len() as u8);
            w.bytes(i.reference.as_bytes());
            w.u32(i.cosigners);
        }
        w.u128(self.issued_base);
        sha256(&[b"SCG-LEDGER/CER/v1", &w.buf])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rule(share_bp: u16) -> CerRule {
        CerRule {
            size_class: SizeClass::Over600Kw,
            pv_bonus_milli_eur_per_mwh: 10_000,
            valorisation_milli_eur_per_mwh: 8_000,
            producer_share_bp: share_bp,
        }
    }

    #[test]
    fn tip_follows_the_decree() {
        // Zonal 100 EUR/MWh: 60 + 80 = 140, capped at 100, + 10 bonus.
        assert_eq!(
            tip_milli_eur_per_mwh(SizeClass::Over600Kw, 100_000, 10_000),
            110_000
        );
        // Zonal 150: 80 + 30 = 110 < 120 (no cap) for the small class.
        assert_eq!(
            tip_milli_eur_per_mwh(SizeClass::UpTo200Kw, 150_000, 0),
            110_000
        );
        // Zonal above the reference or negative: the variable part is 0 or capped.
        assert_eq!(
            tip_milli_eur_per_mwh(SizeClass::From200To600Kw, 250_000, 0),
            70_000
        );
        assert_eq!(
            tip_milli_eur_per_mwh(SizeClass::From200To600Kw, i64::MIN, 4_000),
            114_000
        );
    }

    #[test]
    fn apportion_gives_every_unit_by_largest_remainder() {
        let mut out = [0u128; 3];
        assert!(apportion(10, &[1, 1, 1], &mut out));
        assert_eq!(out, [4, 3, 3], "the tie goes to the first member");
        assert!(apportion(100, &[0, 3, 7], &mut out));
        assert_eq!(out, [0, 30, 70]);
        assert!(apportion(0, &[0, 0, 0], &mut out));
        assert!(!apportion(1, &[0, 0, 0], &mut out), "nobody to give it to");
        assert!(!apportion(u128::MAX, &[2, 1, 1], &mut out), "overflow");
    }

    #[test]
    fn one_hour_by_hand() {
        // Two members: A injects 3 kWh, withdraws 0; B injects 1 kWh, withdraws 2 kWh.
        // Shared = min(4000, 2000) = 2000 Wh at zonal 100 EUR/MWh: TIP 110 EUR/MWh.
        let mut t = CerTally::new(2);
        t.add_hour(&rule(5_000), 100_000, &[3_000, 1_000], &[0, 2_000])
            .unwrap();
        assert_eq!(t.shared_wh, 2_000);
        assert_eq!(t.incentive_base, 2_000 * 110_000); // 0.22 EUR
        assert_eq!(t.valorisation_base, 2_000 * 8_000); // 0.016 EUR
        let benefit = 236_000_000u128;
        // Producers: 118,000,000 split 3:1; consumers: 118,000,000 all to B.
        assert_eq!(t.allocated_base, [88_500_000, 29_500_000 + 118_000_000]);
        assert_eq!(t.allocated_base.iter().sum::<u128>(), benefit);
        assert!(t.add_hour(&rule(5_000), 0, &[1], &[1, 2]).is_err());
        assert_eq!(t.hours, 1, "a refused hour changes nothing");
    }

    #[test]
    fn params_round_trip_and_bounds() {
        let p = CerParams {
            rule: rule(10_000),
            period_hours: 744,
            issuance_cap_base: 7,
        };
        let mut w = Writer::default();
        p.encode(&mut w);
        assert_eq!(w.buf.len(), 39);
        let mut r = Reader::new(&w.buf);
        assert_eq!(CerParams::decode(&mut r).unwrap(), p);
        assert_eq!(p.problem(), None);
        assert!(
            CerParams {
                period_hours: 745,
                ..p
            }
            .problem()
            .is_some()
        );
        assert!(
            CerParams {
                rule: rule(10_001),
                ..p
            }
            .problem()
            .is_some()
        );
    }
}
