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
//! Input: a [`CommunityYear`] of named members ([`settle_year`], [`settle_year_with`]), or a
//! [`YearHeader`] and the intervals one at a time with members by position ([`settle_stream`]:
//! what `scg-settle` feeds a simulated year through, so a city's year of readings is never
//! held in memory). Both run the one walk, which holds the members by rank (ascending id: the
//! order the records are written in) in dense per-member arrays, so settling an interval looks
//! up no member by name.
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
        let mut built = Vec::new();
        let mut kinds = Vec::new();
        let mut signatures = 0u64;
        let mut first_id = self.first_id;
        for chunk in batch_chunks(records) {
            let n = chunk.len() as u128;
            kinds.push(chunk.iter().map(|(_, b)| b.kind_name()).collect());
            let (batch, root) = Batch::sign_rooted(self.chain_id, first_id, chunk)
                .map_err(|e| LedgerError::Settlement(format!("building a batch: {e}")))?;
            signatures += 1 + batch.signers.len() as u64;
            let id = self.next_id;
            self.next_id += 1;
            let (tx, bytes) = Tx::sign_batch(
                self.chain_id,
                &self.operator,
                id,
                self.operator_nonce,
                (batch, &root),
            );
            txs.push(bytes);
            built.push(tx);
            self.operator_nonce += 1;
            first_id += n;
        }
        Ok(Packed {
            txs,
            built,
            kinds,
            signatures,
        })
    }
}

/// A block's records packed into batch transactions.
struct Packed {
    txs: Vec<Vec<u8>>,
    /// The transactions `txs` encode, as built (applied without decoding them again).
    built: Vec<Tx>,
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
    let mut w = crate::codec::Writer::default();
    for (key, body) in records {
        w.buf.clear();
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

/// Every device in the order records are written (ascending code).
const DEVICES: [DeviceType; 5] = [
    DeviceType::Pv,
    DeviceType::Wind,
    DeviceType::Battery,
    DeviceType::EvCharger,
    DeviceType::SupplyPoint,
];

/// Slot of a device in the per-device arrays (code - 1).
fn slot(d: DeviceType) -> usize {
    usize::from(d as u8 - 1)
}

/// A year's settlement input with members by position: the header of [`settle_stream`],
/// whose intervals come one at a time ([`IndexedInterval`]), so a year of a city is never
/// held in memory as strings (what [`CommunityYear`] holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearHeader {
    /// Seed for every key (and the chain id).
    pub seed: u64,
    /// Member ids; readings, trades and payouts name members by position in this list.
    pub members: Vec<String>,
    /// Per member (same order): the devices metered (a meter that never reports stays
    /// silent; a reading of a device not here is refused), bit `1 << code`
    /// (registered in block 1; the supply point is registered for every member).
    pub devices: Vec<u8>,
    /// RESCoin base units minted per renewable Wh.
    pub mint_rate_base_per_wh: u128,
    /// Unix timestamp of the start of the first interval.
    pub start_timestamp_s: u64,
    /// Interval length, seconds.
    pub interval_s: u64,
    /// Moved from the treasury to every member in block 1.
    pub opening_balance_base: u128,
    /// Minted to the treasury at genesis.
    pub treasury_endowment_base: u128,
    /// Intervals in the year.
    pub intervals: usize,
}

/// A meter reading of member `member` (position in [`YearHeader::members`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedReading {
    /// Member position.
    pub member: u32,
    /// Device type.
    pub device: DeviceType,
    /// Energy produced (exported by the device), Wh.
    pub produced_wh: u64,
    /// Energy consumed, Wh.
    pub consumed_wh: u64,
}

/// A cleared P2P trade between member positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedTrade {
    /// Buyer position.
    pub buyer: u32,
    /// Seller position.
    pub seller: u32,
    /// Energy, Wh.
    pub energy_wh: u64,
    /// Price the seller receives, base units per kWh.
    pub price_base_per_kwh: u128,
    /// Grid fee the buyer pays on top, base units per kWh.
    pub grid_fee_base_per_kwh: u128,
}

/// One interval with members by position ([`IntervalInput`]'s indexed form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexedInterval {
    /// Meter readings (several for one member and device are summed).
    pub readings: Vec<IndexedReading>,
    /// Cleared P2P trades.
    pub trades: Vec<IndexedTrade>,
    /// CER payouts: (member position, base units).
    pub cer: Vec<(u32, u128)>,
}

impl IndexedInterval {
    /// Empty every list (keeping their buffers).
    pub fn clear(&mut self) {
        self.readings.clear();
        self.trades.clear();
        self.cer.clear();
    }
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
#[derive(Debug, Clone, Copy, Default)]
struct MemberInterval {
    /// Whether the member has a reading or a trade in the interval.
    present: bool,
    /// (produced, consumed) per device slot.
    devices: [(u64, u64); 5],
    sold_wh: u64,
    bought_wh: u64,
    /// Certified Wh from its own PV, wind and storage discharge.
    own_certified: u64,
}

impl MemberInterval {
    fn get(&self, d: DeviceType) -> (u64, u64) {
        self.devices[slot(d)]
    }

    /// Everything that fed the member: PV, wind, storage discharge, supply-point import.
    fn sources(&self) -> u64 {
        DEVICES
            .iter()
            .map(|d| {
                let (p, c) = self.get(*d);
                if *d == DeviceType::SupplyPoint { c } else { p }
            })
            .fold(0u64, u64::saturating_add)
    }
}

/// Number of series slots of a day draft: one per quantity code, in ascending code order.
const SERIES_SLOTS: usize = 12;

/// Slot of a quantity, ascending with its code (produced 1-5, P2P 0x40-0x41, consumed
/// 0x81-0x85), so the slots are the canonical series order.
fn series_slot(q: Quantity) -> usize {
    match q {
        Quantity::Produced(d) => slot(d),
        Quantity::P2pSold => 5,
        Quantity::P2pBought => 6,
        Quantity::Consumed(d) => 7 + slot(d),
    }
}

/// The quantity of each series slot.
const SLOT_QUANTITIES: [Quantity; SERIES_SLOTS] = [
    Quantity::Produced(DeviceType::Pv),
    Quantity::Produced(DeviceType::Wind),
    Quantity::Produced(DeviceType::Battery),
    Quantity::Produced(DeviceType::EvCharger),
    Quantity::Produced(DeviceType::SupplyPoint),
    Quantity::P2pSold,
    Quantity::P2pBought,
    Quantity::Consumed(DeviceType::Pv),
    Quantity::Consumed(DeviceType::Wind),
    Quantity::Consumed(DeviceType::Battery),
    Quantity::Consumed(DeviceType::EvCharger),
    Quantity::Consumed(DeviceType::SupplyPoint),
];

/// One member's day being built in the compact layout (its buffers kept from day to day).
#[derive(Debug, Default)]
struct DayDraft {
    /// Series by slot ([`series_slot`]); empty until first used in the day.
    series: [Vec<u64>; SERIES_SLOTS],
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
            .zip(SLOT_QUANTITIES)
            .filter(|(v, _)| v.iter().any(|x| *x > 0))
            .map(|(v, q)| (q, v.clone()))
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

    /// Start a new day, keeping the buffers.
    fn reset(&mut self) {
        for s in &mut self.series {
            s.clear();
        }
        self.money = DayMoney::default();
        self.certified = DayCertified::default();
        self.topup_base = 0;
    }
}

/// The compact layout's day being built: per member rank, its draft.
#[derive(Debug, Default)]
struct DayBook {
    /// First interval of the day.
    first: usize,
    /// Intervals in the day.
    n: usize,
    members: Vec<DayDraft>,
}

impl DayBook {
    fn start(&mut self, first: usize, n: usize, members: usize) {
        self.first = first;
        self.n = n;
        self.members.resize_with(members, DayDraft::default);
        self.members.iter_mut().for_each(DayDraft::reset);
    }

    fn draft(&mut self, member: usize) -> &mut DayDraft {
        &mut self.members[member]
    }

    /// Add `wh` to `member`'s series of `q` at interval `i`.
    fn add(&mut self, member: usize, q: Quantity, i: usize, wh: u64) {
        if wh == 0 {
            return;
        }
        let (first, n) = (self.first, self.n);
        let series = &mut self.members[member].series[series_slot(q)];
        if series.is_empty() {
            series.resize(n, 0);
        }
        if let Some(v) = series.get_mut(i - first) {
            *v += wh;
        }
    }
}

/// A member's keys: its account's and its meters' (by device slot, registered ones only).
struct MemberKeys {
    key: SigningKey,
    pk: PublicKey,
    meters: [Option<(SigningKey, PublicKey)>; 5],
}

/// The running chain of a settlement. Members are held by **rank** (position in ascending
/// id order: the order the records are written in); inputs name them by position.
struct Chain<'a> {
    year: &'a YearHeader,
    /// Member ids by rank.
    ids: Vec<&'a str>,
    /// Rank of each member position.
    rank: Vec<u32>,
    /// Keys by rank.
    keys: Vec<MemberKeys>,
    treasury: SigningKey,
    treasury_pk: PublicKey,
    ledger: Ledger,
    signer: Signer,
    summary: SettlementSummary,
    /// Per rank, the member's settlement so far (into `summary.members` at the end).
    members: Vec<MemberSettlement>,
    /// Mirror of the members' available balances (by rank) and the treasury's during the
    /// block being built (exact while every record applies).
    available: Vec<u128>,
    treasury_available: u128,
    /// Mirror of the certified Wh each storage meter holds during the block being built.
    stored: BTreeMap<PublicKey, u64>,
    /// The interval being settled, by rank.
    interval: Vec<MemberInterval>,
    /// Signatures in the blocks so far.
    signatures: u64,
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

    fn debit_treasury(&mut self, amount: u128, what: &str, i: usize) -> Result<(), LedgerError> {
        self.treasury_available = self.treasury_available.checked_sub(amount).ok_or_else(|| {
            LedgerError::Settlement(format!(
                "interval {i}: the treasury endowment cannot cover {what}"
            ))
        })?;
        Ok(())
    }

    /// The rank of member position `p` in interval `i`.
    fn rank_of(&self, i: usize, p: u32) -> Result<usize, LedgerError> {
        self.rank
            .get(p as usize)
            .map(|r| *r as usize)
            .ok_or_else(|| bad(i, &format!("#{p}"), "no member at this position"))
    }

    fn meter(&self, member: usize, device: DeviceType) -> Option<&(SigningKey, PublicKey)> {
        self.keys[member].meters[slot(device)].as_ref()
    }

    fn register(&mut self) -> Result<(), LedgerError> {
        let operator = self.signer.operator.clone();
        for m in 0..self.keys.len() {
            let member = self.keys[m].pk;
            self.signer
                .push(&operator, TxBody::RegisterMember { member });
        }
        for m in 0..self.keys.len() {
            let member = self.keys[m].pk;
            for device in DEVICES {
                if let Some((_, meter)) = self.meter(m, device) {
                    let meter = *meter;
                    self.signer.push(
                        &operator,
                        TxBody::RegisterMeter {
                            meter,
                            member,
                            device,
                        },
                    );
                }
            }
        }
        let opening = self.year.opening_balance_base;
        if opening > 0 {
            let treasury = self.treasury.clone();
            for m in 0..self.keys.len() {
                self.debit_treasury(opening, "the opening balances", 0)?;
                let to = self.keys[m].pk;
                self.signer.push(
                    &treasury,
                    TxBody::Transfer {
                        to,
                        amount: opening,
                    },
                );
                self.available[m] += opening;
            }
        }
        Ok(())
    }

    /// Sum and check one interval's readings and trades against each other (into
    /// `self.interval`, by rank).
    fn interval_meters(&mut self, i: usize, iv: &IndexedInterval) -> Result<(), LedgerError> {
        self.interval.fill(MemberInterval::default());
        for r in &iv.readings {
            let m = self.rank_of(i, r.member)?;
            if self.meter(m, r.device).is_none() {
                return Err(bad(
                    i,
                    self.ids[m],
                    format!("reading of a {} meter not announced", r.device.name()),
                ));
            }
            let mi = &mut self.interval[m];
            mi.present = true;
            let e = &mut mi.devices[slot(r.device)];
            e.0 =
                e.0.checked_add(r.produced_wh)
                    .ok_or_else(|| bad(i, self.ids[m], "produced Wh overflow"))?;
            e.1 =
                e.1.checked_add(r.consumed_wh)
                    .ok_or_else(|| bad(i, self.ids[m], "consumed Wh overflow"))?;
        }
        for t in &iv.trades {
            let (b, s) = (self.rank_of(i, t.buyer)?, self.rank_of(i, t.seller)?);
            if b == s {
                return Err(bad(i, self.ids[b], "trade with itself"));
            }
            if t.energy_wh == 0 {
                return Err(bad(i, self.ids[s], "trade of 0 Wh"));
            }
            let seller = &mut self.interval[s];
            seller.present = true;
            seller.sold_wh = seller
                .sold_wh
                .checked_add(t.energy_wh)
                .ok_or_else(|| bad(i, self.ids[s], "sold Wh overflow"))?;
            let buyer = &mut self.interval[b];
            buyer.present = true;
            buyer.bought_wh = buyer
                .bought_wh
                .checked_add(t.energy_wh)
                .ok_or_else(|| bad(i, self.ids[b], "bought Wh overflow"))?;
        }
        for (m, mi) in self.interval.iter().enumerate() {
            let (export_wh, import_wh) = mi.get(DeviceType::SupplyPoint);
            if mi.sold_wh > export_wh {
                return Err(bad(
                    i,
                    self.ids[m],
                    format!(
                        "trades sell {} Wh but the supply point exported {export_wh} Wh",
                        mi.sold_wh
                    ),
                ));
            }
            if mi.bought_wh > import_wh {
                return Err(bad(
                    i,
                    self.ids[m],
                    format!(
                        "trades buy {} Wh but the supply point imported {import_wh} Wh",
                        mi.bought_wh
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Meter reports; sets each member's certified Wh of the interval from its own PV, wind
    /// and storage discharge.
    fn reports(&mut self, i: usize) -> Result<(), LedgerError> {
        for m in 0..self.interval.len() {
            if !self.interval[m].present {
                continue;
            }
            let mut certified = 0u64;
            for device in DEVICES {
                let (produced_wh, consumed_wh) = self.interval[m].get(device);
                if produced_wh == 0 && consumed_wh == 0 {
                    continue;
                }
                let Some(meter_pk) = self.meter(m, device).map(|(_, pk)| *pk) else {
                    continue;
                };
                let mut release = 0;
                if device.is_renewable() {
                    let mint = u128::from(produced_wh)
                        .checked_mul(self.year.mint_rate_base_per_wh)
                        .ok_or_else(|| bad(i, self.ids[m], "minted amount overflows"))?;
                    self.available[m] += mint;
                    self.members[m].minted.0 += mint;
                    certified = certified.saturating_add(produced_wh);
                } else if device.is_storage() {
                    // The ledger passes back what the device holds, up to the discharge.
                    let held = self.stored_held(meter_pk);
                    release = (*held).min(produced_wh);
                    *held -= release;
                    certified = certified.saturating_add(release);
                }
                match &mut self.day {
                    Some(book) => {
                        book.add(m, Quantity::Produced(device), i, produced_wh);
                        book.add(m, Quantity::Consumed(device), i, consumed_wh);
                        book.draft(m).store(device, 0, release);
                    }
                    None => {
                        let Some((key, _)) = self.meter(m, device).cloned() else {
                            continue;
                        };
                        self.signer.push(
                            &key,
                            TxBody::MeterReport {
                                interval: i as u64,
                                produced_wh,
                                consumed_wh,
                            },
                        );
                    }
                }
            }
            self.interval[m].own_certified = certified;
        }
        Ok(())
    }

    /// Trade-create and trade-post of every trade (with a top-up when the buyer is short).
    fn trades(
        &mut self,
        i: usize,
        iv: &IndexedInterval,
        timestamp_s: u64,
    ) -> Result<(), LedgerError> {
        for t in &iv.trades {
            let (b, s) = (self.rank_of(i, t.buyer)?, self.rank_of(i, t.seller)?);
            let overflow = || bad(i, self.ids[b], "trade amount overflows");
            let pay = cost(t.energy_wh, t.price_base_per_kwh).ok_or_else(overflow)?;
            let fee = cost(t.energy_wh, t.grid_fee_base_per_kwh).ok_or_else(overflow)?;
            let total = pay.checked_add(fee).ok_or_else(overflow)?;
            let have = self.available[b];
            if have < total {
                let short = total - have;
                self.debit_treasury(short, "the top-ups", i)?;
                match &mut self.day {
                    Some(book) => book.draft(b).topup_base += short,
                    None => {
                        let treasury = self.treasury.clone();
                        let to = self.keys[b].pk;
                        self.signer
                            .push(&treasury, TxBody::Transfer { to, amount: short });
                    }
                }
                self.summary.treasury_topups.0 += short;
                self.members[b].topups_received.0 += short;
                self.available[b] += short;
            }
            self.trades_in += 1;
            if let Some(book) = &mut self.day {
                // The figures the trade's create and post would give (`cost` is the ledger's
                // own rounding), summed per member and day.
                book.add(s, Quantity::P2pSold, i, t.energy_wh);
                book.add(b, Quantity::P2pBought, i, t.energy_wh);
                book.draft(s).money.received_base += pay;
                let d = book.draft(b);
                d.money.paid_base += pay;
                d.money.fees_base += fee;
            } else {
                let trade_id = self.signer.next_id;
                let buyer = self.keys[b].key.clone();
                self.signer.push(
                    &buyer,
                    TxBody::TradeCreate {
                        seller: self.keys[s].pk,
                        interval: i as u64,
                        energy_wh: t.energy_wh,
                        price_base_per_kwh: t.price_base_per_kwh,
                        fee_base_per_kwh: t.grid_fee_base_per_kwh,
                        expires_at_s: timestamp_s.saturating_add(self.year.interval_s),
                    },
                );
                let (post_key, _) = self
                    .meter(s, DeviceType::SupplyPoint)
                    .cloned()
                    .ok_or_else(|| bad(i, self.ids[s], "no supply-point meter"))?;
                self.signer.push(
                    &post_key,
                    TxBody::TradePost {
                        trade_id,
                        delivered_wh: t.energy_wh,
                    },
                );
            }
            self.available[b] -= total;
            self.available[s] += pay;
            self.summary.p2p_wh_delivered += u128::from(t.energy_wh);
        }
        Ok(())
    }

    /// Certificate moves: the certified share of each P2P sale (per seller and buyer), then of
    /// each storage charge. `budget` and `received` are scratch buffers (one per rank).
    fn origin(&mut self, i: usize, iv: &IndexedInterval, scratch: &mut OriginScratch) {
        let OriginScratch {
            budget,
            received,
            pairs,
        } = scratch;
        // Certified Wh left to each member this interval.
        budget.clear();
        budget.extend(self.interval.iter().map(|mi| mi.own_certified));
        received.clear();
        received.resize(self.interval.len(), 0);
        // Per (seller, buyer) in rank order, i.e. in id order.
        pairs.clear();
        pairs.extend(iv.trades.iter().map(|t| {
            (
                self.rank[t.seller as usize],
                self.rank[t.buyer as usize],
                t.energy_wh,
            )
        }));
        pairs.sort_unstable_by_key(|(s, b, _)| (*s, *b));
        let mut k = 0;
        while k < pairs.len() {
            let (seller, buyer, mut energy_wh) = pairs[k];
            k += 1;
            while k < pairs.len() && (pairs[k].0, pairs[k].1) == (seller, buyer) {
                energy_wh += pairs[k].2;
                k += 1;
            }
            let (seller, buyer) = (seller as usize, buyer as usize);
            let mi = &self.interval[seller];
            let share =
                certified_share(energy_wh, mi.own_certified, mi.sources()).min(budget[seller]);
            if share == 0 {
                continue;
            }
            budget[seller] -= share;
            budget[buyer] += share;
            received[buyer] += share;
            if let Some(book) = &mut self.day {
                book.draft(seller).certified.sold_wh += share;
                book.draft(buyer).certified.received_wh += share;
            } else {
                let key = self.keys[seller].key.clone();
                self.signer.push(
                    &key,
                    TxBody::CertificateMove {
                        to: self.keys[buyer].pk,
                        interval: i as u64,
                        energy_wh: share,
                    },
                );
            }
            self.members[seller].certified_sold_wh += share;
            self.members[buyer].certified_received_wh += share;
            self.summary.p2p_wh_certified += u128::from(share);
        }
        for m in 0..self.interval.len() {
            let mi = self.interval[m];
            if !mi.present {
                continue;
            }
            // What the member had certified before selling: own plus received.
            let certified = mi.own_certified + received[m];
            for device in STORAGE_DEVICES {
                let (_, consumed_wh) = mi.get(device);
                if consumed_wh == 0 {
                    continue;
                }
                let share = certified_share(consumed_wh, certified, mi.sources()).min(budget[m]);
                if share == 0 {
                    continue;
                }
                budget[m] -= share;
                let Some((_, to)) = self.meter(m, device) else {
                    continue;
                };
                let to = *to;
                *self.stored_held(to) += share;
                if let Some(book) = &mut self.day {
                    book.draft(m).store(device, share, 0);
                } else {
                    let key = self.keys[m].key.clone();
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
        for (m, d) in book.members.iter().enumerate() {
            if d.topup_base > 0 {
                let to = self.keys[m].pk;
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
        for (m, d) in book.members.iter().enumerate() {
            if let Some(day) = d.member_day(book.first as u64, intervals) {
                let key = self.keys[m].key.clone();
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
        // Keep the drafts' buffers for the next day.
        self.day = Some(book);
        Ok(())
    }

    fn cer(&mut self, i: usize, iv: &IndexedInterval) -> Result<(), LedgerError> {
        let mut payouts = Vec::new();
        for &(p, amount_base) in &iv.cer {
            let m = self.rank_of(i, p)?;
            if amount_base > 0 {
                payouts.push(Payout {
                    member: self.keys[m].pk,
                    amount: amount_base,
                });
                self.members[m].cer_received.0 += amount_base;
                self.available[m] += amount_base;
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

    /// Build and apply the block of intervals `first..first + n`, each taken from `next` as
    /// it is settled; the block and its outcome are the caller's.
    fn block<E: From<LedgerError>>(
        &mut self,
        first: usize,
        n: usize,
        next: &mut impl FnMut(usize, &mut IndexedInterval) -> Result<(), E>,
        scratch: &mut Scratch,
    ) -> Result<(Block, BlockOutcome), E> {
        let last = first + n.saturating_sub(1);
        let timestamp_s = (last as u64 + 1)
            .checked_mul(self.year.interval_s)
            .and_then(|x| x.checked_add(self.year.start_timestamp_s))
            .ok_or_else(|| {
                LedgerError::Settlement(format!("interval {last}: timestamp overflows"))
            })?;
        for m in 0..self.keys.len() {
            self.available[m] = self
                .ledger
                .account(&self.keys[m].pk)
                .map_or(0, |a| a.balance);
        }
        self.treasury_available = self
            .ledger
            .account(&self.treasury_pk)
            .map_or(0, |a| a.balance);
        self.stored.clear();
        let members = self.keys.len();
        if let Some(book) = &mut self.day {
            book.start(first, n, members);
        }
        for i in first..first + n {
            if i == 0 {
                self.register()?;
            }
            let iv = &mut scratch.interval;
            iv.clear();
            next(i, iv)?;
            self.interval_meters(i, iv)?;
            self.reports(i)?;
            self.trades(i, iv, timestamp_s)?;
            self.origin(i, iv, &mut scratch.origin);
            self.cer(i, iv)?;
        }
        self.close_day()?;
        Ok(self.produce(first, last, timestamp_s)?)
    }

    /// Pack the queued records and apply them as the next block.
    fn produce(
        &mut self,
        first: usize,
        last: usize,
        timestamp_s: u64,
    ) -> Result<(Block, BlockOutcome), LedgerError> {
        let Packed {
            txs,
            built,
            kinds,
            signatures,
        } = self.signer.pack()?;
        let (block, outcome) = self.ledger.produce_own_block(timestamp_s, txs, built)?;
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
        self.summary.blocks += 1;
        Ok((block, outcome))
    }

    /// Read the per-member P2P money back from the ledger's trade records and the totals.
    fn finish(mut self) -> SettledStream {
        let by_key: BTreeMap<PublicKey, usize> = self
            .keys
            .iter()
            .enumerate()
            .map(|(m, k)| (k.pk, m))
            .collect();
        let mut settled = 0u64;
        for t in self.ledger.trades() {
            if t.status != TradeStatus::Posted {
                continue;
            }
            settled += 1;
            self.summary.grid_fees.0 += t.paid_fee;
            if let Some(&b) = by_key.get(&t.buyer) {
                self.members[b].p2p_paid.0 += t.paid_seller;
                self.members[b].fees_paid.0 += t.paid_fee;
            }
            if let Some(&s) = by_key.get(&t.seller) {
                self.members[s].p2p_received.0 += t.paid_seller;
            }
        }
        if self.day.is_some() {
            // Compact layout: the P2P money is in the members' aggregates.
            settled = self.trades_in;
            for a in self.ledger.member_aggregates() {
                self.summary.grid_fees.0 += a.fees_base;
                if let Some(&m) = by_key.get(&a.member) {
                    let m = &mut self.members[m];
                    m.p2p_received.0 += a.received_base;
                    m.p2p_paid.0 += a.paid_base;
                    m.fees_paid.0 += a.fees_base;
                }
            }
        }
        for (m, k) in self.keys.iter().enumerate() {
            self.members[m].balance = Rescoin(self.ledger.account(&k.pk).map_or(0, |a| a.balance));
        }
        let totals = self.ledger.totals();
        let s = &mut self.summary;
        s.members = self
            .ids
            .iter()
            .zip(self.members)
            .map(|(id, m)| ((*id).to_owned(), m))
            .collect();
        s.p2p_trades_settled = settled;
        s.signatures = self.signatures;
        s.rescoin_minted = Rescoin(totals.minted_renewable);
        s.certificates_issued = totals.certificates_issued;
        s.certified_wh = totals.certified_wh;
        s.final_state_root_hex = to_hex(&self.ledger.state_root());
        SettledStream {
            summary: self.summary,
            ledger: self.ledger,
        }
    }
}

/// Buffers of [`Chain::origin`], reused from interval to interval.
#[derive(Default)]
struct OriginScratch {
    budget: Vec<u64>,
    received: Vec<u64>,
    pairs: Vec<(u32, u32, u64)>,
}

/// Buffers reused from interval to interval.
#[derive(Default)]
struct Scratch {
    interval: IndexedInterval,
    origin: OriginScratch,
}

/// Settle a year in the per-record layout: see the module doc. Bad input is an error naming
/// the interval and member.
pub fn settle_year(year: &CommunityYear) -> Result<SettledYear, LedgerError> {
    settle_year_with(year, Layout::PerRecord)
}

/// Settle a year in `layout` ([`Layout::Compact`]: one member day per member and day, see
/// [`crate::day`]); every member's minted, P2P and CER RESCoin, top-ups, balance and
/// certified Wh are the same in both layouts. The members are indexed once and each interval
/// is handed to [`settle_stream`] in its indexed form.
pub fn settle_year_with(year: &CommunityYear, layout: Layout) -> Result<SettledYear, LedgerError> {
    let mut position: BTreeMap<&str, u32> = BTreeMap::new();
    for (p, m) in year.members.iter().enumerate() {
        let p = u32::try_from(p).map_err(|_| LedgerError::Settlement("too many members".into()))?;
        if position.insert(m.as_str(), p).is_some() {
            return Err(LedgerError::Settlement(format!(
                "member id '{m}' appears twice"
            )));
        }
    }
    // Meters: every (member, device) that reports in some interval.
    let mut devices = vec![0u8; year.members.len()];
    for (i, iv) in year.intervals.iter().enumerate() {
        for r in &iv.readings {
            let p = position.get(r.member.as_str()).ok_or_else(|| {
                bad(
                    i,
                    &r.member,
                    "meter reading of a member that is not registered",
                )
            })?;
            devices[*p as usize] |= 1 << (r.device as u8);
        }
    }
    let header = YearHeader {
        seed: year.seed,
        members: year.members.clone(),
        devices,
        mint_rate_base_per_wh: year.mint_rate_base_per_wh,
        start_timestamp_s: year.start_timestamp_s,
        interval_s: year.interval_s,
        opening_balance_base: year.opening_balance_base,
        treasury_endowment_base: year.treasury_endowment_base,
        intervals: year.intervals.len(),
    };
    let find = |i: usize, id: &str, problem: &str| -> Result<u32, LedgerError> {
        position.get(id).copied().ok_or_else(|| bad(i, id, problem))
    };
    settle_stream(&header, layout, |i, out: &mut IndexedInterval| {
        let iv = &year.intervals[i];
        for r in &iv.readings {
            out.readings.push(IndexedReading {
                member: find(
                    i,
                    &r.member,
                    "meter reading of a member that is not registered",
                )?,
                device: r.device,
                produced_wh: r.produced_wh,
                consumed_wh: r.consumed_wh,
            });
        }
        for t in &iv.trades {
            let party = "trade party that is not a registered member";
            out.trades.push(IndexedTrade {
                buyer: find(i, &t.buyer, party)?,
                seller: find(i, &t.seller, party)?,
                energy_wh: t.energy_wh,
                price_base_per_kwh: t.price_base_per_kwh,
                grid_fee_base_per_kwh: t.grid_fee_base_per_kwh,
            });
        }
        for c in &iv.cer {
            let p = find(
                i,
                &c.member,
                "CER payout to a member that is not registered",
            )?;
            out.cer.push((p, c.amount_base));
        }
        Ok(())
    })
}

/// Settle a year whose intervals come one at a time: `next(i, out)` fills `out` (cleared)
/// with interval `i`, called once per interval in order, so only one interval of input is
/// held at a time. The one settlement walk behind [`settle_year_with`]; the year's blocks are
/// kept ([`settle_stream_into`] hands each on instead).
pub fn settle_stream<E: From<LedgerError>>(
    year: &YearHeader,
    layout: Layout,
    next: impl FnMut(usize, &mut IndexedInterval) -> Result<(), E>,
) -> Result<SettledYear, E> {
    let (mut blocks, mut outcomes) = (Vec::new(), Vec::new());
    let tail = settle_stream_into(year, layout, next, &mut |block, outcome| {
        blocks.push(block);
        outcomes.push(outcome);
        Ok(())
    })?;
    Ok(SettledYear {
        blocks,
        summary: tail.summary,
        outcomes,
        ledger: tail.ledger,
    })
}

/// What [`settle_stream_into`] keeps of a settled year once its blocks are handed on: the
/// totals and the producer's ledger after the last block (what
/// [`crate::store::StoreWriter::finish`] writes the records from).
#[derive(Debug, Clone)]
pub struct SettledStream {
    pub summary: SettlementSummary,
    ledger: Ledger,
}

impl SettledStream {
    /// The producer's ledger after the last block.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

/// [`settle_stream`] handing each block and its outcome to `sink` as it is produced, genesis
/// first, instead of keeping the year's blocks (a city's year of blocks is gigabytes: a sink
/// can store each and let it go, [`crate::store::StoreWriter`]). An error of the sink stops the
/// settlement.
pub fn settle_stream_into<E: From<LedgerError>>(
    year: &YearHeader,
    layout: Layout,
    mut next: impl FnMut(usize, &mut IndexedInterval) -> Result<(), E>,
    sink: &mut dyn FnMut(Block, BlockOutcome) -> Result<(), E>,
) -> Result<SettledStream, E> {
    let err = |m: &str| LedgerError::Settlement(m.to_owned());
    if year.members.is_empty() {
        return Err(err("no members").into());
    }
    if year.interval_s == 0 {
        return Err(err("interval_s must be positive").into());
    }
    if year.devices.len() != year.members.len() {
        return Err(err("one device set per member").into());
    }
    let mut order: Vec<(&str, u32)> = year
        .members
        .iter()
        .enumerate()
        .map(|(p, id)| (id.as_str(), p as u32))
        .collect();
    order.sort_unstable();
    if let Some(w) = order.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(
            LedgerError::Settlement(format!("member id '{}' appears twice", w[0].0)).into(),
        );
    }
    let mut rank = vec![0u32; order.len()];
    for (r, (_, p)) in order.iter().enumerate() {
        rank[*p as usize] = r as u32;
    }
    // A supply point per member plus every device announced.
    let keys: Vec<MemberKeys> = order
        .iter()
        .map(|(id, p)| {
            let mask = year.devices[*p as usize] | 1 << (DeviceType::SupplyPoint as u8);
            let key = derive_key(year.seed, "member", id, None);
            MemberKeys {
                pk: pk(&key),
                key,
                meters: DEVICES.map(|d| {
                    (mask & 1 << (d as u8) != 0).then(|| {
                        let k = derive_key(year.seed, "meter", id, Some(d));
                        (k.clone(), pk(&k))
                    })
                }),
            }
        })
        .collect();
    let operator = derive_key(year.seed, "operator", "", None);
    let treasury = derive_key(year.seed, "treasury", "", None);
    let grid = derive_key(year.seed, "grid", "", None);
    let per_block = intervals_per_block(year.interval_s);
    let config = GenesisConfig {
        chain_id: year.seed,
        operator: pk(&operator),
        treasury: pk(&treasury),
        grid: pk(&grid),
        mint_rate_base_per_wh: year.mint_rate_base_per_wh,
        treasury_endowment: year.treasury_endowment_base,
        // The chain's planned length in blocks: one per day of intervals.
        intervals_total: year.intervals.div_ceil(per_block) as u64,
        // Every key below is derived from the seed: mark the chain as a simulation.
        simulation_key_seed: Some(year.seed),
    };
    let (mut ledger, genesis) = Ledger::genesis(config, year.start_timestamp_s)?;
    // We sign every transaction ourselves here and apply them as built (`produce_own_block`);
    // `store` checks that each decodes, `scg ledger verify` replays with full verification.
    ledger.set_verify_signatures(false);
    let members = keys
        .iter()
        .map(|k| MemberSettlement {
            account_hex: to_hex(&k.pk),
            balance: Rescoin(0),
            minted: Rescoin(0),
            p2p_received: Rescoin(0),
            p2p_paid: Rescoin(0),
            fees_paid: Rescoin(0),
            cer_received: Rescoin(0),
            topups_received: Rescoin(0),
            certified_received_wh: 0,
            certified_sold_wh: 0,
        })
        .collect();
    let n = keys.len();
    let mut chain = Chain {
        year,
        ids: order.iter().map(|(id, _)| *id).collect(),
        rank,
        keys,
        treasury_pk: pk(&treasury),
        treasury,
        ledger,
        signer: Signer {
            chain_id: year.seed,
            next_id: 1,
            operator,
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
            members: BTreeMap::new(),
            final_state_root_hex: String::new(),
        },
        members,
        available: vec![0; n],
        treasury_available: 0,
        stored: BTreeMap::new(),
        interval: vec![MemberInterval::default(); n],
        signatures: 0,
        day: (layout == Layout::Compact).then(DayBook::default),
        trades_in: 0,
    };
    let genesis_outcome = BlockOutcome {
        height: 0,
        block_hash: genesis.hash(),
        state_root: genesis.header.state_root,
        results: Vec::new(),
        expired: Vec::new(),
        record_rejects: Vec::new(),
    };
    sink(genesis, genesis_outcome)?;
    let mut scratch = Scratch::default();
    let mut first = 0;
    while first < year.intervals {
        let n = per_block.min(year.intervals - first);
        let (block, outcome) = chain.block(first, n, &mut next, &mut scratch)?;
        sink(block, outcome)?;
        first += n;
    }
    Ok(chain.finish())
}
