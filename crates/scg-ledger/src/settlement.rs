//! Settlement of a community's intervals: plain inputs (member ids, meter readings, the
//! market's P2P trades with their prices and fees, CER payouts per interval) in, signed
//! transactions in blocks (genesis + one block per day of intervals) and a summary out. It knows
//! nothing of the simulator, so a live node can feed it the same way (the simulation glue is
//! `scg-settle`). No I/O: write the blocks with [`crate::store::store`].
//!
//! What it must never do: drop energy (every P2P Wh of the input is posted on the ledger, or
//! the input is refused with an error naming the interval and the member), certify grid
//! energy, or round a float (inputs are integers; the rounding point is `scg-units`).
//!
//! Keys are derived, never random: every secret key is
//! `SHA-256("scg-ledger/settlement/v1" || seed (u64 LE) || role || 0x00 || id [|| 0x00 || device])`
//! used as an ed25519 secret, so the same seed gives the same chain and state root — and anyone
//! who knows the seed can sign as any member: such a chain is a simulation only.
//!
//! Chain layout:
//! - genesis: chain id = seed, operator/treasury/grid keys, the mint rate, the treasury
//!   endowment, the chain's planned length in blocks (`intervals_total`: one block per day of
//!   intervals, [`intervals_per_block`]) and the simulation marker
//!   (`simulation_key_seed = Some(seed)`: the keys are not secret);
//! - one block per day of intervals (Italian DSOs deliver meter curves daily), timestamp = the
//!   end of its last interval, holding one settlement batch ([`crate::batch`]; split in several
//!   only if a batch bound is reached) submitted by the operator: every record below is the
//!   body of what used to be its own signed transaction, authored by the same key (meter,
//!   member, treasury, operator), and each author signs the root of its records once per
//!   batch — the built-in year is 92,542 records under 7,286 signatures instead of 92,542;
//! - the first block starts with the registrations (every member; one meter per member and
//!   device type that appears in the readings, plus a supply-point meter per member) and a
//!   transfer of `opening_balance_base` from the treasury to every member;
//! - then, per interval of the block, in this order:
//!   1. one meter report per (member, device) with non-zero readings: PV and wind mint at the
//!      mint rate and issue a certificate; a storage meter (battery, EV charger) that
//!      discharges passes the certified Wh it holds back to its member, up to the discharge;
//!   2. per P2P trade, if the buyer cannot pay, a treasury top-up transfer (the treasury sells
//!      RESCoin for euros off-ledger), the buyer's trade-create at the trade's price and fee
//!      (expiring one interval after the block), and the trade-post of the full energy by the
//!      seller's supply-point meter (which meters every export, so energy from a battery or
//!      V2G is settled like PV energy);
//!   3. origin follows the energy: per (seller, buyer) a certificate move of the certified
//!      share of the energy sold, then per storage meter a move of the certified share of
//!      its charge ([`certified_share`]);
//!   4. the CER payouts from the treasury.
//!
//! Balances and the certified Wh held by storage meters are mirrored while a block is built
//! (the ledger applies the block only when it is complete); any record the ledger then rejects
//! makes [`settle_year`] fail naming the block, the record and its kind.
//!
//! The certified share of one use of a member's energy in an interval is
//! `floor(use_wh * certified_wh / sources_wh)`: `certified_wh` is what the member's PV and wind
//! produced, what its storage passed back and what it received with P2P energy in the
//! interval; `sources_wh` is everything that fed it (PV, wind, storage discharge, supply-point
//! import from the grid and peers). Grid energy carries no certificate, so it dilutes the
//! share; the uses take their shares in order and never more than `certified_wh` in total.
//!
//! Prices are base units per kWh (1 RES = 1 EUR, 9 decimals: one base unit is one nano-euro).
//!
//! ```
//! use scg_ledger::settlement::{CommunityYear, IntervalInput, MeterReading, P2pTrade, settle_year};
//! use scg_ledger::DeviceType;
//! let reading = |member: &str, device, produced_wh, consumed_wh| MeterReading {
//!     member: member.into(), device, produced_wh, consumed_wh,
//! };
//! let year = CommunityYear {
//!     seed: 42,
//!     members: vec!["school".into(), "flat".into()],
//!     mint_rate_base_per_wh: 1_000_000, // 0.001 RES per Wh = 1 RES per kWh
//!     start_timestamp_s: 1_167_609_600,  // 2007-01-01 00:00 UTC
//!     interval_s: 3_600,
//!     opening_balance_base: 10_000_000_000, // 10 RES each
//!     treasury_endowment_base: 1_000_000_000_000_000,
//!     intervals: vec![IntervalInput {
//!         readings: vec![
//!             reading("school", DeviceType::Pv, 5_000, 0),
//!             reading("school", DeviceType::SupplyPoint, 900, 0),
//!             reading("flat", DeviceType::SupplyPoint, 0, 900),
//!         ],
//!         trades: vec![P2pTrade {
//!             buyer: "flat".into(), seller: "school".into(), energy_wh: 900,
//!             price_base_per_kwh: 120_000_000, grid_fee_base_per_kwh: 10_000_000,
//!         }],
//!         cer: vec![],
//!     }],
//! };
//! let settled = settle_year(&year).expect("valid input");
//! assert_eq!(settled.blocks.len(), 2); // genesis + one interval
//! assert_eq!(settled.summary.certificates_issued, 1);
//! assert_eq!(settled.summary.transactions_rejected, 0);
//! assert_eq!(settled.summary.p2p_trades_settled, 1);
//! // 900 Wh at 0.12 RES/kWh, and all 900 Wh came from the school's PV: certified.
//! let flat = &settled.summary.members["flat"];
//! assert_eq!(flat.p2p_paid.0, 108_000_000);
//! assert_eq!(flat.certified_received_wh, 900);
//! // Then, at the edge: scg_ledger::store::store(&out_dir.join("ledger"), &settled)?;
//! ```

use crate::LedgerError;
use crate::batch::{Batch, MAX_BATCH_LEN, MAX_BATCH_RECORDS, MAX_BATCH_SIGNERS};
use crate::block::{Block, GenesisConfig};
pub use crate::day::Layout;
use crate::day::{
    DayCertified, DayClose, DayMoney, MAX_DAY_INTERVALS, MemberDay, Quantity, STORAGE_DEVICES,
};
use crate::merkle::{sha256, to_hex};
use crate::state::{BlockOutcome, Ledger, TradeStatus};
use crate::tx::{DeviceType, MAX_PAYOUTS, Payout, PublicKey, Tx, TxBody};
use ed25519_dalek::SigningKey;
use scg_units::Rescoin;
use std::collections::BTreeMap;

/// RESCoin base units minted per renewable Wh by default (0.1 RES per kWh).
pub const DEFAULT_MINT_RATE_BASE_PER_WH: u128 = 100_000;
/// Default opening balance of every member: 1,000 RES.
pub const DEFAULT_OPENING_BALANCE_BASE: u128 = 1_000 * Rescoin::ONE.0;
/// Default treasury endowment at genesis: 10^9 RES (funds opening balances, top-ups, CER).
pub const DEFAULT_TREASURY_ENDOWMENT_BASE: u128 = 1_000_000_000 * Rescoin::ONE.0;

/// One member's meter reading for one device in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterReading {
    /// Member id.
    pub member: String,
    /// Device type (PV and wind are renewable; battery and EV charger are storage; the supply
    /// point meters the member's import and export).
    pub device: DeviceType,
    /// Energy produced (exported by the device), Wh.
    pub produced_wh: u64,
    /// Energy consumed, Wh.
    pub consumed_wh: u64,
}

/// A cleared P2P trade in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2pTrade {
    /// Buyer member id.
    pub buyer: String,
    /// Seller member id.
    pub seller: String,
    /// Energy, Wh.
    pub energy_wh: u64,
    /// Price the seller receives, RESCoin base units per kWh.
    pub price_base_per_kwh: u128,
    /// Grid fee the buyer pays on top, to the DSO, base units per kWh.
    pub grid_fee_base_per_kwh: u128,
}

/// A CER incentive payout from the treasury.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CerPayout {
    /// Member id.
    pub member: String,
    /// RESCoin base units.
    pub amount_base: u128,
}

/// Everything that happens in one interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntervalInput {
    /// Meter readings (several for one member and device are summed).
    pub readings: Vec<MeterReading>,
    /// Cleared P2P trades.
    pub trades: Vec<P2pTrade>,
    /// CER incentive payouts.
    pub cer: Vec<CerPayout>,
}

/// A community year described with plain types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityYear {
    /// Seed for every key (and the chain id).
    pub seed: u64,
    /// Member ids.
    pub members: Vec<String>,
    /// RESCoin base units minted per renewable Wh.
    pub mint_rate_base_per_wh: u128,
    /// Unix timestamp of the start of the first interval.
    pub start_timestamp_s: u64,
    /// Interval length, seconds.
    pub interval_s: u64,
    /// Moved from the treasury to every member in block 1.
    pub opening_balance_base: u128,
    /// Minted to the treasury at genesis (funds opening balances, top-ups and CER payouts).
    pub treasury_endowment_base: u128,
    /// Intervals, in order.
    pub intervals: Vec<IntervalInput>,
}

/// One member's settled year, read back from the ledger state (trades, balances) or counted as
/// the transactions applied (minting, CER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSettlement {
    /// The member's account: ed25519 public key, hex.
    pub account_hex: String,
    /// Final available balance.
    pub balance: Rescoin,
    /// Minted for the member's renewable production.
    pub minted: Rescoin,
    /// Received from buyers for P2P energy (posted trades as seller).
    pub p2p_received: Rescoin,
    /// Paid to sellers for P2P energy, fees excluded (posted trades as buyer).
    pub p2p_paid: Rescoin,
    /// Grid fees paid on P2P purchases.
    pub fees_paid: Rescoin,
    /// CER incentives received.
    pub cer_received: Rescoin,
    /// Treasury top-ups received to pay for P2P energy.
    pub topups_received: Rescoin,
    /// Certified Wh received with P2P purchases.
    pub certified_received_wh: u64,
    /// Certified Wh passed on with P2P sales.
    pub certified_sold_wh: u64,
}

/// Totals of a settled year (`transactions` counts the ledger transactions: the batches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementSummary {
    /// Blocks including genesis.
    pub blocks: u64,
    /// Transactions.
    pub transactions: u64,
    /// Of which rejected: always 0 (a rejection makes [`settle_year`] fail).
    pub transactions_rejected: u64,
    /// Settlement records carried by the batches (each applied as one transaction would be).
    pub records: u64,
    /// ed25519 signatures in the blocks (per batch: the operator's and one per author).
    pub signatures: u64,
    /// RESCoin minted for renewable production.
    pub rescoin_minted: Rescoin,
    /// Origin certificates issued.
    pub certificates_issued: u64,
    /// Wh certified.
    pub certified_wh: u128,
    /// Market trades settled: each one trade-create + trade-post pair.
    pub p2p_trades_settled: u64,
    /// Wh delivered in P2P trades.
    pub p2p_wh_delivered: u128,
    /// Of which carried a renewable-origin certificate.
    pub p2p_wh_certified: u128,
    /// Certified Wh moved into storage meters.
    pub stored_certified_wh: u128,
    /// Grid fees paid to the DSO.
    pub grid_fees: Rescoin,
    /// CER incentives paid.
    pub cer_distributed: Rescoin,
    /// Treasury top-ups to buyers short of RESCoin.
    pub treasury_topups: Rescoin,
    /// Per member id.
    pub members: BTreeMap<String, MemberSettlement>,
    /// Final state root, hex.
    pub final_state_root_hex: String,
}

/// The chain and its summary.
#[derive(Debug, Clone)]
pub struct SettledYear {
    /// Genesis first, then one block per day of intervals ([`intervals_per_block`]).
    pub blocks: Vec<Block>,
    /// Totals.
    pub summary: SettlementSummary,
    /// The outcome of every block as the producer applied it (genesis first).
    outcomes: Vec<BlockOutcome>,
    /// The producer's ledger after the last block: [`crate::store::store`] writes its records
    /// instead of replaying the year it has just produced.
    ledger: Ledger,
}

impl SettledYear {
    /// The producer's outcomes (one per block) and final ledger.
    pub(crate) fn produced(&self) -> (&[BlockOutcome], &Ledger) {
        (&self.outcomes, &self.ledger)
    }
}

/// Derive a settlement key.
pub fn derive_key(seed: u64, role: &str, id: &str, device: Option<DeviceType>) -> SigningKey {
    let dev = device.map_or("", DeviceType::name);
    let secret = sha256(&[
        b"scg-ledger/settlement/v1",
        &seed.to_le_bytes(),
        role.as_bytes(),
        &[0],
        id.as_bytes(),
        &[0],
        dev.as_bytes(),
    ]);
    SigningKey::from_bytes(&secret)
}

/// The account of member `member_id` on a chain settled here with `seed` (its chain id): how a
/// member id is looked up on a simulation chain (`scg ledger show --account apartment`).
pub fn member_account(seed: u64, member_id: &str) -> PublicKey {
    pk(&derive_key(seed, "member", member_id, None))
}

/// The certified share of `use_wh` out of `sources_wh` that carry `certified_wh`:
/// `floor(use_wh * certified_wh / sources_wh)` (0 without sources), never above `use_wh`.
pub fn certified_share(use_wh: u64, certified_wh: u64, sources_wh: u64) -> u64 {
    if sources_wh == 0 {
        return 0;
    }
    let share =
        u128::from(use_wh) * u128::from(certified_wh.min(sources_wh)) / u128::from(sources_wh);
    // share <= use_wh because certified <= sources.
    u64::try_from(share).unwrap_or(use_wh).min(use_wh)
}

fn pk(k: &SigningKey) -> PublicKey {
    k.verifying_key().to_bytes()
}

fn cost(energy_wh: u64, rate: u128) -> Option<u128> {
    u128::from(energy_wh).checked_mul(rate).map(|x| x / 1000)
}

/// Queues the records of the block being built (ids fixed in order) and packs them into
/// settlement batches when the block is complete.
struct Signer {
    chain_id: u64,
    /// Id of the next record (or batch transaction).
    next_id: u128,
    /// The batches' submitter and its next nonce.
    operator: SigningKey,
    operator_nonce: u64,
    /// Id of `records[0]`.
    first_id: u128,
    records: Vec<(SigningKey, TxBody)>,
}

impl Signer {
    /// Queue a record: its id (`next_id`) is fixed now, in order.
    fn push(&mut self, key: &SigningKey, body: TxBody) {
        if self.records.is_empty() {
            self.first_id = self.next_id;
        }
        self.records.push((key.clone(), body));
        self.next_id += 1;
    }

    /// Pack the queued records into as few batches as the bounds allow (one for the built-in
    /// year's days), each co-signed by its authors and carried by one operator transaction.
    /// The bytes do not depend on the thread count (ids fixed in order, ed25519 signatures are
    /// deterministic).
    fn pack(&mut self) -> Result<Packed, LedgerError> {
        let records = std::mem::take(&mut self.records);
        let mut txs = Vec::new();
        let mut kinds = Vec::new();
        let mut signatures = 0u64;
        let mut first_id = self.first_id;
        for chunk in batch_chunks(records) {
            let n = chunk.len() as u128;
            kinds.push(chunk.iter().map(|(_, b)| b.kind_name()).collect());
            let batch = Batch::sign(self.chain_id, first_id, chunk)
                .map_err(|e| LedgerError::Settlement(format!("building a batch: {e}")))?;
            signatures += 1 + batch.signers.len() as u64;
            let id = self.next_id;
            self.next_id += 1;
            txs.push(Tx::sign(
                self.chain_id,
                &self.operator,
                id,
                self.operator_nonce,
                TxBody::SettlementBatch(batch),
            ));
            self.operator_nonce += 1;
            first_id += n;
        }
        Ok(Packed {
            txs,
            kinds,
            signatures,
        })
    }
}

/// A block's records packed into batch transactions.
struct Packed {
    txs: Vec<Vec<u8>>,
    /// Per batch, the kind of every record (to name a rejected one).
    kinds: Vec<Vec<&'static str>>,
    /// ed25519 signatures the batches carry.
    signatures: u64,
}

/// Split records into runs that each fit one batch: at most [`MAX_BATCH_RECORDS`] records,
/// [`MAX_BATCH_SIGNERS`] authors and [`MAX_BATCH_LEN`] bytes (counted as encoded).
fn batch_chunks(records: Vec<(SigningKey, TxBody)>) -> Vec<Vec<(SigningKey, TxBody)>> {
    let mut out: Vec<Vec<(SigningKey, TxBody)>> = Vec::new();
    let mut current = Vec::new();
    let mut authors = std::collections::BTreeSet::new();
    let mut bytes = crate::tx::BATCH_COMMITTED_LEN;
    for (key, body) in records {
        let mut w = crate::codec::Writer::default();
        body.encode_body(&mut w);
        let author = pk(&key);
        let new_author = !authors.contains(&author);
        let add = 3 + w.buf.len() + if new_author { 96 } else { 0 };
        let full = current.len() == MAX_BATCH_RECORDS
            || (new_author && authors.len() == MAX_BATCH_SIGNERS)
            || bytes + add > MAX_BATCH_LEN;
        if full && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            authors.clear();
            bytes = crate::tx::BATCH_COMMITTED_LEN;
        }
        if authors.insert(author) {
            bytes += 96;
        }
        bytes += 3 + w.buf.len();
        current.push((key, body));
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Intervals settled per block: one day of them (Italian DSOs deliver meter curves daily), at
/// least one.
pub fn intervals_per_block(interval_s: u64) -> usize {
    usize::try_from(86_400 / interval_s.max(1))
        .unwrap_or(1)
        .max(1)
}

/// Bad input: what is wrong, in which interval, for which member.
fn bad(interval: usize, member: &str, problem: impl Into<String>) -> LedgerError {
    LedgerError::SettlementInput {
        interval,
        member: member.to_owned(),
        problem: problem.into(),
    }
}

/// One member's meters in one interval, summed per device.
#[derive(Debug, Clone, Default)]
struct MemberInterval {
    /// (produced, consumed) per device.
    devices: BTreeMap<DeviceType, (u64, u64)>,
    sold_wh: u64,
    bought_wh: u64,
}

impl MemberInterval {
    fn get(&self, d: DeviceType) -> (u64, u64) {
        self.devices.get(&d).copied().unwrap_or((0, 0))
    }
}

/// Sum and check one interval's readings and trades against each other.
fn interval_meters<'a>(
    i: usize,
    iv: &'a IntervalInput,
    members: &BTreeMap<&'a str, SigningKey>,
) -> Result<BTreeMap<&'a str, MemberInterval>, LedgerError> {
    let mut m: BTreeMap<&str, MemberInterval> = BTreeMap::new();
    for r in &iv.readings {
        if !members.contains_key(r.member.as_str()) {
            return Err(bad(
                i,
                &r.member,
                "meter reading of a member that is not registered",
            ));
        }
        let e = m
            .entry(r.member.as_str())
            .or_default()
            .devices
            .entry(r.device)
            .or_insert((0, 0));
        e.0 =
            e.0.checked_add(r.produced_wh)
                .ok_or_else(|| bad(i, &r.member, "produced Wh overflow"))?;
        e.1 =
            e.1.checked_add(r.consumed_wh)
                .ok_or_else(|| bad(i, &r.member, "consumed Wh overflow"))?;
    }
    for t in &iv.trades {
        for who in [&t.buyer, &t.seller] {
            if !members.contains_key(who.as_str()) {
                return Err(bad(i, who, "trade party that is not a registered member"));
            }
        }
        if t.buyer == t.seller {
            return Err(bad(i, &t.buyer, "trade with itself"));
        }
        if t.energy_wh == 0 {
            return Err(bad(i, &t.seller, "trade of 0 Wh"));
        }
        let s = m.entry(t.seller.as_str()).or_default();
        s.sold_wh = s
            .sold_wh
            .checked_add(t.energy_wh)
            .ok_or_else(|| bad(i, &t.seller, "sold Wh overflow"))?;
        let b = m.entry(t.buyer.as_str()).or_default();
        b.bought_wh = b
            .bought_wh
            .checked_add(t.energy_wh)
            .ok_or_else(|| bad(i, &t.buyer, "bought Wh overflow"))?;
    }
    for (id, mi) in &m {
        let (export_wh, import_wh) = mi.get(DeviceType::SupplyPoint);
        if mi.sold_wh > export_wh {
            return Err(bad(
                i,
                id,
                format!(
                    "trades sell {} Wh but the supply point exported {export_wh} Wh",
                    mi.sold_wh
                ),
            ));
        }
        if mi.bought_wh > import_wh {
            return Err(bad(
                i,
                id,
                format!(
                    "trades buy {} Wh but the supply point imported {import_wh} Wh",
                    mi.bought_wh
                ),
            ));
        }
    }
    Ok(m)
}

/// One member's day being built in the compact layout.
#[derive(Debug, Default)]
struct DayDraft {
    /// Series by quantity code (ascending: the canonical order), allocated on first use.
    series: BTreeMap<u8, Vec<u64>>,
    money: DayMoney,
    certified: DayCertified,
    topup_base: u128,
}

impl DayDraft {
    /// Add certified Wh moved into (`into`) and released by (`out`) a storage device.
    fn store(&mut self, device: DeviceType, into: u64, out: u64) {
        if let Some(k) = STORAGE_DEVICES.iter().position(|d| *d == device) {
            let s = &mut self.certified.storage[k];
            s.0 += into;
            s.1 += out;
        }
    }

    /// The member day, `None` when there is nothing to settle.
    fn member_day(&self, first_interval: u64, intervals: u16) -> Option<MemberDay> {
        let series: Vec<(Quantity, Vec<u64>)> = self
            .series
            .iter()
            .filter(|(_, v)| v.iter().any(|x| *x > 0))
            .filter_map(|(code, v)| Quantity::from_code(*code).map(|q| (q, v.clone())))
            .collect();
        let empty = series.is_empty()
            && self.money == DayMoney::default()
            && self.certified == DayCertified::default();
        (!empty).then_some(MemberDay {
            first_interval,
            intervals,
            series,
            money: self.money,
            certified: self.certified,
        })
    }
}

/// The compact layout's day being built: per member id, its draft.
#[derive(Debug, Default)]
struct DayBook {
    /// First interval of the day.
    first: usize,
    /// Intervals in the day.
    n: usize,
    members: BTreeMap<String, DayDraft>,
}

impl DayBook {
    fn new(first: usize, n: usize) -> Self {
        Self {
            first,
            n,
            members: BTreeMap::new(),
        }
    }

    fn draft(&mut self, member: &str) -> &mut DayDraft {
        if !self.members.contains_key(member) {
            self.members.insert(member.to_owned(), DayDraft::default());
        }
        self.members.get_mut(member).expect("inserted above")
    }

    /// Add `wh` to `member`'s series of `q` at interval `i`.
    fn add(&mut self, member: &str, q: Quantity, i: usize, wh: u64) {
        if wh == 0 {
            return;
        }
        let (first, n) = (self.first, self.n);
        let series = self
            .draft(member)
            .series
            .entry(q.code())
            .or_insert_with(|| vec![0; n]);
        if let Some(v) = series.get_mut(i - first) {
            *v += wh;
        }
    }
}

/// The running chain of a settlement.
struct Chain<'a> {
    year: &'a CommunityYear,
    members: BTreeMap<&'a str, SigningKey>,
    meters: BTreeMap<(String, DeviceType), SigningKey>,
    treasury: SigningKey,
    ledger: Ledger,
    signer: Signer,
    summary: SettlementSummary,
    /// Mirror of available balances during the block being built (exact while every record
    /// applies).
    available: BTreeMap<PublicKey, u128>,
    /// Mirror of the certified Wh each storage meter holds during the block being built.
    stored: BTreeMap<PublicKey, u64>,
    /// Signatures in the blocks so far.
    signatures: u64,
    /// Outcome of every block produced so far.
    outcomes: Vec<BlockOutcome>,
    /// The compact layout's day being built ([`Layout::Compact`]); `None` for per-record.
    day: Option<DayBook>,
    /// P2P trades of the input (the compact layout folds them into day figures).
    trades_in: u64,
}

impl Chain<'_> {
    /// The certified Wh storage meter `meter` holds in the block being built (read from the
    /// ledger at the first use in the block, then mirrored).
    fn stored_held(&mut self, meter: PublicKey) -> &mut u64 {
        let ledger = &self.ledger;
        self.stored
            .entry(meter)
            .or_insert_with(|| ledger.certified_held_wh(&meter))
    }

    fn credit(&mut self, key: PublicKey, amount: u128) {
        *self.available.entry(key).or_insert(0) += amount;
    }

    fn debit_treasury(&mut self, amount: u128, what: &str, i: usize) -> Result<(), LedgerError> {
        let t = self.available.entry(pk(&self.treasury)).or_insert(0);
        *t = t.checked_sub(amount).ok_or_else(|| {
            LedgerError::Settlement(format!(
                "interval {i}: the treasury endowment cannot cover {what}"
            ))
        })?;
        Ok(())
    }

    fn register(&mut self) -> Result<(), LedgerError> {
        let operator = derive_key(self.year.seed, "operator", "", None);
        let members: Vec<SigningKey> = self.members.values().cloned().collect();
        for m in &members {
            self.signer
                .push(&operator, TxBody::RegisterMember { member: pk(m) });
        }
        let meters: Vec<(PublicKey, PublicKey, DeviceType)> = self
            .meters
            .iter()
            .map(|((member, device), k)| (pk(k), pk(&self.members[member.as_str()]), *device))
            .collect();
        for (meter, member, device) in meters {
            self.signer.push(
                &operator,
                TxBody::RegisterMeter {
                    meter,
                    member,
                    device,
                },
            );
        }
        let opening = self.year.opening_balance_base;
        if opening > 0 {
            for m in &members {
                self.debit_treasury(opening, "the opening balances", 0)?;
                let treasury = self.treasury.clone();
                self.signer.push(
                    &treasury,
                    TxBody::Transfer {
                        to: pk(m),
                        amount: opening,
                    },
                );
                self.credit(pk(m), opening);
            }
        }
        Ok(())
    }

    fn meter(&self, member: &str, device: DeviceType) -> &SigningKey {
        &self.meters[&(member.to_owned(), device)]
    }

    /// Meter reports; returns per member the certified Wh it gets this interval from its own
    /// PV, wind and storage discharge.
    fn reports(
        &mut self,
        i: usize,
        meters: &BTreeMap<&str, MemberInterval>,
    ) -> Result<BTreeMap<String, u64>, LedgerError> {
        let mut own_certified = BTreeMap::new();
        for (&member, mi) in meters {
            let mut certified = 0u64;
            for (&device, &(produced_wh, consumed_wh)) in &mi.devices {
                if produced_wh == 0 && consumed_wh == 0 {
                    continue;
                }
                let key = self.meter(member, device).clone();
                let mut release = 0;
                if device.is_renewable() {
                    let mint = u128::from(produced_wh)
                        .checked_mul(self.year.mint_rate_base_per_wh)
                        .ok_or_else(|| bad(i, member, "minted amount overflows"))?;
                    self.credit(pk(&self.members[member]), mint);
                    self.member_mut(member).minted.0 += mint;
                    certified = certified.saturating_add(produced_wh);
                } else if device.is_storage() {
                    // The ledger passes back what the device holds, up to the discharge.
                    let held = self.stored_held(pk(&key));
                    release = (*held).min(produced_wh);
                    *held -= release;
                    certified = certified.saturating_add(release);
                }
                match &mut self.day {
                    Some(book) => {
                        book.add(member, Quantity::Produced(device), i, produced_wh);
                        book.add(member, Quantity::Consumed(device), i, consumed_wh);
                        book.draft(member).store(device, 0, release);
                    }
                    None => self.signer.push(
                        &key,
                        TxBody::MeterReport {
                            interval: i as u64,
                            produced_wh,
                            consumed_wh,
                        },
                    ),
                }
            }
            own_certified.insert(member.to_owned(), certified);
        }
        Ok(own_certified)
    }

    fn member_mut(&mut self, id: &str) -> &mut MemberSettlement {
        self.summary
            .members
            .get_mut(id)
            .expect("every member has a summary")
    }

    /// Trade-create and trade-post of every trade (with a top-up when the buyer is short).
    fn trades(
        &mut self,
        i: usize,
        iv: &IntervalInput,
        timestamp_s: u64,
    ) -> Result<(), LedgerError> {
        for t in &iv.trades {
            let buyer = self.members[t.buyer.as_str()].clone();
            let seller = self.members[t.seller.as_str()].clone();
            let overflow = || bad(i, &t.buyer, "trade amount overflows");
            let pay = cost(t.energy_wh, t.price_base_per_kwh).ok_or_else(overflow)?;
            let fee = cost(t.energy_wh, t.grid_fee_base_per_kwh).ok_or_else(overflow)?;
            let total = pay.checked_add(fee).ok_or_else(overflow)?;
            let have = self.available.get(&pk(&buyer)).copied().unwrap_or(0);
            if have < total {
                let short = total - have;
                self.debit_treasury(short, "the top-ups", i)?;
                let treasury = self.treasury.clone();
                match &mut self.day {
                    Some(book) => book.draft(&t.buyer).topup_base += short,
                    None => self.signer.push(
                        &treasury,
                        TxBody::Transfer {
                            to: pk(&buyer),
                            amount: short,
                        },
                    ),
                }
                self.summary.treasury_topups.0 += short;
                self.member_mut(&t.buyer).topups_received.0 += short;
                self.credit(pk(&buyer), short);
            }
            self.trades_in += 1;
            if let Some(book) = &mut self.day {
                // The figures the trade's create and post would give (`cost` is the ledger's
                // own rounding), summed per member and day.
                book.add(&t.seller, Quantity::P2pSold, i, t.energy_wh);
                book.add(&t.buyer, Quantity::P2pBought, i, t.energy_wh);
                book.draft(&t.seller).money.received_base += pay;
                let b = book.draft(&t.buyer);
                b.money.paid_base += pay;
                b.money.fees_base += fee;
            } else {
                let trade_id = self.signer.next_id;
                self.signer.push(
                    &buyer,
                    TxBody::TradeCreate {
                        seller: pk(&seller),
                        interval: i as u64,
                        energy_wh: t.energy_wh,
                        price_base_per_kwh: t.price_base_per_kwh,
                        fee_base_per_kwh: t.grid_fee_base_per_kwh,
                        expires_at_s: timestamp_s.saturating_add(self.year.interval_s),
                    },
                );
                let post_key = self.meter(&t.seller, DeviceType::SupplyPoint).clone();
                self.signer.push(
                    &post_key,
                    TxBody::TradePost {
                        trade_id,
                        delivered_wh: t.energy_wh,
                    },
                );
            }
            *self.available.entry(pk(&buyer)).or_insert(0) -= total;
            self.credit(pk(&seller), pay);
            self.summary.p2p_wh_delivered += u128::from(t.energy_wh);
        }
        Ok(())
    }

    /// Certificate moves: the certified share of each P2P sale (per seller and buyer), then of
    /// each storage charge.
    fn origin(
        &mut self,
        i: usize,
        iv: &IntervalInput,
        meters: &BTreeMap<&str, MemberInterval>,
        own_certified: &BTreeMap<String, u64>,
    ) {
        let sources = |mi: &MemberInterval| -> u64 {
            mi.devices
                .iter()
                .map(|(d, (p, c))| {
                    if *d == DeviceType::SupplyPoint {
                        *c
                    } else {
                        *p
                    }
                })
                .fold(0u64, u64::saturating_add)
        };
        // Certified Wh left to each member this interval.
        let mut budget: BTreeMap<&str, u64> = meters
            .keys()
            .map(|m| (*m, own_certified.get(*m).copied().unwrap_or(0)))
            .collect();
        let mut received: BTreeMap<&str, u64> = BTreeMap::new();
        let mut pairs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for t in &iv.trades {
            *pairs
                .entry((t.seller.as_str(), t.buyer.as_str()))
                .or_insert(0) += t.energy_wh;
        }
        for ((seller, buyer), energy_wh) in pairs {
            let mi = &meters[seller];
            let left = budget.get(seller).copied().unwrap_or(0);
            let share = certified_share(
                energy_wh,
                own_certified.get(seller).copied().unwrap_or(0),
                sources(mi),
            )
            .min(left);
            if share == 0 {
                continue;
            }
            *budget.entry(seller).or_insert(0) -= share;
            *budget.entry(buyer).or_insert(0) += share;
            *received.entry(buyer).or_insert(0) += share;
            if let Some(book) = &mut self.day {
                book.draft(seller).certified.sold_wh += share;
                book.draft(buyer).certified.received_wh += share;
            } else {
                let key = self.members[seller].clone();
                self.signer.push(
                    &key,
                    TxBody::CertificateMove {
                        to: pk(&self.members[buyer]),
                        interval: i as u64,
                        energy_wh: share,
                    },
                );
            }
            self.member_mut(seller).certified_sold_wh += share;
            self.member_mut(buyer).certified_received_wh += share;
            self.summary.p2p_wh_certified += u128::from(share);
        }
        for (&member, mi) in meters {
            // What the member had certified before selling: own plus received.
            let certified = own_certified.get(member).copied().unwrap_or(0)
                + received.get(member).copied().unwrap_or(0);
            for (&device, &(_, consumed_wh)) in &mi.devices {
                if !device.is_storage() || consumed_wh == 0 {
                    continue;
                }
                let left = budget.get(member).copied().unwrap_or(0);
                let share = certified_share(consumed_wh, certified, sources(mi)).min(left);
                if share == 0 {
                    continue;
                }
                *budget.entry(member).or_insert(0) -= share;
                let to = pk(self.meter(member, device));
                *self.stored_held(to) += share;
                if let Some(book) = &mut self.day {
                    book.draft(member).store(device, share, 0);
                } else {
                    let key = self.members[member].clone();
                    self.signer.push(
                        &key,
                        TxBody::CertificateMove {
                            to,
                            interval: i as u64,
                            energy_wh: share,
                        },
                    );
                }
                self.summary.stored_certified_wh += u128::from(share);
            }
        }
    }

    /// Compact layout: the day's top-ups (one transfer per member), one member day per member
    /// with anything to settle, then the day close that applies them.
    fn close_day(&mut self) -> Result<(), LedgerError> {
        let Some(book) = self.day.take() else {
            return Ok(());
        };
        let intervals = u16::try_from(book.n)
            .ok()
            .filter(|n| usize::from(*n) <= MAX_DAY_INTERVALS)
            .ok_or_else(|| {
                LedgerError::Settlement(format!(
                    "a day of {} intervals is more than the compact layout's {MAX_DAY_INTERVALS}",
                    book.n
                ))
            })?;
        let treasury = self.treasury.clone();
        for (member, d) in &book.members {
            if d.topup_base > 0 {
                let to = pk(&self.members[member.as_str()]);
                self.signer.push(
                    &treasury,
                    TxBody::Transfer {
                        to,
                        amount: d.topup_base,
                    },
                );
            }
        }
        let mut count = 0u32;
        for (member, d) in &book.members {
            if let Some(day) = d.member_day(book.first as u64, intervals) {
                let key = self.members[member.as_str()].clone();
                self.signer.push(&key, TxBody::MemberDay(day));
                count += 1;
            }
        }
        if count > 0 {
            let operator = self.signer.operator.clone();
            self.signer.push(
                &operator,
                TxBody::DayClose(DayClose {
                    first_interval: book.first as u64,
                    intervals,
                    members: count,
                }),
            );
        }
        self.day = Some(DayBook::new(0, 0));
        Ok(())
    }

    fn cer(&mut self, i: usize, iv: &IntervalInput) -> Result<(), LedgerError> {
        let mut payouts = Vec::new();
        for c in &iv.cer {
            let m = self.members.get(c.member.as_str()).ok_or_else(|| {
                bad(
                    i,
                    &c.member,
                    "CER payout to a member that is not registered",
                )
            })?;
            if c.amount_base > 0 {
                payouts.push(Payout {
                    member: pk(m),
                    amount: c.amount_base,
                });
                self.member_mut(&c.member).cer_received.0 += c.amount_base;
            }
        }
        for (chunk_no, chunk) in payouts.chunks(MAX_PAYOUTS).enumerate() {
            let total = chunk
                .iter()
                .try_fold(0u128, |a, p| a.checked_add(p.amount))
                .ok_or_else(|| {
                    LedgerError::Settlement(format!("interval {i}: CER payouts overflow"))
                })?;
            self.debit_treasury(total, "the CER incentives", i)?;
            for p in chunk {
                self.credit(p.member, p.amount);
            }
            self.summary.cer_distributed.0 += total;
            let treasury = self.treasury.clone();
            self.signer.push(
                &treasury,
                TxBody::CerDistribution {
                    period: ((i as u64) << 16) | chunk_no as u64,
                    payouts: chunk.to_vec(),
                },
            );
        }
        Ok(())
    }

    /// Build, apply and keep the block of intervals `first..first + ivs.len()`.
    fn block(
        &mut self,
        first: usize,
        ivs: &[IntervalInput],
        blocks: &mut Vec<Block>,
    ) -> Result<(), LedgerError> {
        let last = first + ivs.len().saturating_sub(1);
        let timestamp_s = (last as u64 + 1)
            .checked_mul(self.year.interval_s)
            .and_then(|x| x.checked_add(self.year.start_timestamp_s))
            .ok_or_else(|| {
                LedgerError::Settlement(format!("interval {last}: timestamp overflows"))
            })?;
        self.available = self.ledger.accounts().map(|a| (a.key, a.balance)).collect();
        self.stored.clear();
        if let Some(book) = &mut self.day {
            *book = DayBook::new(first, ivs.len());
        }
        for (j, iv) in ivs.iter().enumerate() {
            let i = first + j;
            if i == 0 {
                self.register()?;
            }
            let meters = interval_meters(i, iv, &self.members)?;
            let own_certified = self.reports(i, &meters)?;
            self.trades(i, iv, timestamp_s)?;
            self.origin(i, iv, &meters, &own_certified);
            self.cer(i, iv)?;
        }
        self.close_day()?;
        let Packed {
            txs,
            kinds,
            signatures,
        } = self.signer.pack()?;
        let (block, outcome) = self.ledger.produce_block(timestamp_s, txs)?;
        // `store` writes the final records of every account, trade and certificate; the change
        // sets are not needed, so do not let them grow.
        self.ledger.take_changes();
        self.signatures += signatures;
        self.summary.transactions += outcome.results.len() as u64;
        self.summary.records += kinds.iter().map(|k| k.len() as u64).sum::<u64>();
        // The input was checked, so a rejection means settlement and ledger disagree: refuse
        // the year rather than drop what the rejected record carried.
        let h = block.header.height;
        if let Some((n, reason)) = outcome
            .results
            .iter()
            .enumerate()
            .find_map(|(n, r)| r.err().map(|e| (n, e)))
        {
            return Err(LedgerError::Settlement(format!(
                "block {h} (intervals {first}..={last}): the ledger rejected batch {n}: {reason}"
            )));
        }
        if let Some(r) = outcome.record_rejects.first() {
            let kind = kinds
                .get(r.tx as usize)
                .and_then(|k| k.get(r.record as usize))
                .map_or("?", |k| *k);
            return Err(LedgerError::Settlement(format!(
                "block {h} (intervals {first}..={last}): the ledger rejected record {} ({kind}) of batch {}: {}",
                r.record, r.tx, r.reason
            )));
        }
        blocks.push(block);
        self.outcomes.push(outcome);
        Ok(())
    }

    /// Read the per-member P2P money back from the ledger's trade records and the totals.
    fn finish(mut self, blocks: Vec<Block>) -> SettledYear {
        let by_key: BTreeMap<PublicKey, String> = self
            .members
            .iter()
            .map(|(id, k)| (pk(k), (*id).to_owned()))
            .collect();
        let mut settled = 0u64;
        for t in self.ledger.trades() {
            if t.status != TradeStatus::Posted {
                continue;
            }
            settled += 1;
            self.summary.grid_fees.0 += t.paid_fee;
            if let Some(b) = by_key
                .get(&t.buyer)
                .and_then(|id| self.summary.members.get_mut(id))
            {
                b.p2p_paid.0 += t.paid_seller;
                b.fees_paid.0 += t.paid_fee;
            }
            if let Some(s) = by_key
                .get(&t.seller)
                .and_then(|id| self.summary.members.get_mut(id))
            {
                s.p2p_received.0 += t.paid_seller;
            }
        }
        if self.day.is_some() {
            // Compact layout: the P2P money is in the members' aggregates.
            settled = self.trades_in;
            for a in self.ledger.member_aggregates() {
                self.summary.grid_fees.0 += a.fees_base;
                if let Some(m) = by_key
                    .get(&a.member)
                    .and_then(|id| self.summary.members.get_mut(id))
                {
                    m.p2p_received.0 += a.received_base;
                    m.p2p_paid.0 += a.paid_base;
                    m.fees_paid.0 += a.fees_base;
                }
            }
        }
        for (key, id) in &by_key {
            if let Some(m) = self.summary.members.get_mut(id) {
                m.balance = Rescoin(self.ledger.account(key).map_or(0, |a| a.balance));
            }
        }
        let totals = self.ledger.totals();
        let s = &mut self.summary;
        s.p2p_trades_settled = settled;
        s.blocks = blocks.len() as u64;
        s.signatures = self.signatures;
        s.rescoin_minted = Rescoin(totals.minted_renewable);
        s.certificates_issued = totals.certificates_issued;
        s.certified_wh = totals.certified_wh;
        s.final_state_root_hex = to_hex(&self.ledger.state_root());
        SettledYear {
            blocks,
            summary: self.summary,
            outcomes: self.outcomes,
            ledger: self.ledger,
        }
    }
}

/// Settle a year in the per-record layout: see the module doc. Bad input is an error naming
/// the interval and member.
pub fn settle_year(year: &CommunityYear) -> Result<SettledYear, LedgerError> {
    settle_year_with(year, Layout::PerRecord)
}

/// Settle a year in `layout` ([`Layout::Compact`]: one member day per member and day, see
/// [`crate::day`]); every member's minted, P2P and CER RESCoin, top-ups, balance and
/// certified Wh are the same in both layouts.
pub fn settle_year_with(year: &CommunityYear, layout: Layout) -> Result<SettledYear, LedgerError> {
    let err = |m: &str| LedgerError::Settlement(m.to_owned());
    if year.members.is_empty() {
        return Err(err("no members"));
    }
    if year.interval_s == 0 {
        return Err(err("interval_s must be positive"));
    }
    let mut members: BTreeMap<&str, SigningKey> = BTreeMap::new();
    for m in &year.members {
        if members
            .insert(m.as_str(), derive_key(year.seed, "member", m, None))
            .is_some()
        {
            return Err(LedgerError::Settlement(format!(
                "member id '{m}' appears twice"
            )));
        }
    }
    // Meters: a supply point per member plus every (member, device) that reports.
    let mut meters: BTreeMap<(String, DeviceType), SigningKey> = BTreeMap::new();
    for m in &year.members {
        let d = DeviceType::SupplyPoint;
        meters.insert((m.clone(), d), derive_key(year.seed, "meter", m, Some(d)));
    }
    for (i, iv) in year.intervals.iter().enumerate() {
        for r in &iv.readings {
            if !members.contains_key(r.member.as_str()) {
                return Err(bad(
                    i,
                    &r.member,
                    "meter reading of a member that is not registered",
                ));
            }
            meters
                .entry((r.member.clone(), r.device))
                .or_insert_with(|| derive_key(year.seed, "meter", &r.member, Some(r.device)));
        }
    }
    let operator = derive_key(year.seed, "operator", "", None);
    let treasury = derive_key(year.seed, "treasury", "", None);
    let grid = derive_key(year.seed, "grid", "", None);
    let config = GenesisConfig {
        chain_id: year.seed,
        operator: pk(&operator),
        treasury: pk(&treasury),
        grid: pk(&grid),
        mint_rate_base_per_wh: year.mint_rate_base_per_wh,
        treasury_endowment: year.treasury_endowment_base,
        // The chain's planned length in blocks: one per day of intervals.
        intervals_total: year
            .intervals
            .len()
            .div_ceil(intervals_per_block(year.interval_s)) as u64,
        // Every key below is derived from the seed: mark the chain as a simulation.
        simulation_key_seed: Some(year.seed),
    };
    let (mut ledger, genesis) = Ledger::genesis(config, year.start_timestamp_s)?;
    // We sign every transaction ourselves here; the store replays with full verification.
    ledger.set_verify_signatures(false);
    let member_summaries = members
        .iter()
        .map(|(id, k)| {
            (
                (*id).to_owned(),
                MemberSettlement {
                    account_hex: to_hex(&pk(k)),
                    balance: Rescoin(0),
                    minted: Rescoin(0),
                    p2p_received: Rescoin(0),
                    p2p_paid: Rescoin(0),
                    fees_paid: Rescoin(0),
                    cer_received: Rescoin(0),
                    topups_received: Rescoin(0),
                    certified_received_wh: 0,
                    certified_sold_wh: 0,
                },
            )
        })
        .collect();
    let mut chain = Chain {
        year,
        members,
        meters,
        treasury,
        ledger,
        signer: Signer {
            chain_id: year.seed,
            next_id: 1,
            operator: operator.clone(),
            operator_nonce: 0,
            first_id: 1,
            records: Vec::new(),
        },
        summary: SettlementSummary {
            blocks: 1,
            transactions: 0,
            transactions_rejected: 0,
            records: 0,
            signatures: 0,
            rescoin_minted: Rescoin(0),
            certificates_issued: 0,
            certified_wh: 0,
            p2p_trades_settled: 0,
            p2p_wh_delivered: 0,
            p2p_wh_certified: 0,
            stored_certified_wh: 0,
            grid_fees: Rescoin(0),
            cer_distributed: Rescoin(0),
            treasury_topups: Rescoin(0),
            members: member_summaries,
            final_state_root_hex: String::new(),
        },
        available: BTreeMap::new(),
        stored: BTreeMap::new(),
        signatures: 0,
        outcomes: Vec::with_capacity(year.intervals.len() + 1),
        day: (layout == Layout::Compact).then(|| DayBook::new(0, 0)),
        trades_in: 0,
    };
    chain.outcomes.push(BlockOutcome {
        height: 0,
        block_hash: genesis.hash(),
        state_root: genesis.header.state_root,
        results: Vec::new(),
        expired: Vec::new(),
        record_rejects: Vec::new(),
    });
    let mut blocks = Vec::with_capacity(year.intervals.len() + 1);
    blocks.push(genesis);
    let per_block = intervals_per_block(year.interval_s);
    for (b, ivs) in year.intervals.chunks(per_block).enumerate() {
        chain.block(b * per_block, ivs, &mut blocks)?;
    }
    Ok(chain.finish(blocks))
}
