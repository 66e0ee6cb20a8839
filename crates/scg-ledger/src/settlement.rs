//! Settlement of a simulated community year: plain inputs (member ids, meter readings, P2P
//! trades, CER incentives per interval) in, signed transactions in blocks (genesis + one block
//! per interval) and a summary out. No I/O: write the blocks with [`crate::store::store`].
//!
//! Keys are derived, never random: every secret key is
//! `SHA-256("scg-ledger/settlement/v1" || seed (u64 LE) || role || 0x00 || id [|| 0x00 || device])`
//! used as an ed25519 secret, so the same seed gives the same chain and state root.
//!
//! Chain layout:
//! - genesis: chain id = seed, operator/treasury/grid keys, the mint rate, the treasury
//!   endowment, the number of intervals (the chain's planned length) and the simulation marker
//!   (`simulation_key_seed = Some(seed)`: the keys are not secret);
//! - block 1 (first interval) starts with the registrations (every member; one meter per
//!   member and device type that appears in the readings, plus a supply-point meter per member)
//!   and a transfer of `opening_balance_base` from the treasury to every member;
//! - every interval block (timestamp `start + (i + 1) * interval_s`) then has: one meter report
//!   per (member, device) with non-zero readings (renewable production mints at the mint rate and
//!   issues a certificate); for every P2P trade, if the buyer cannot pay, a treasury top-up
//!   transfer (the treasury sells RESCoin for euros off-ledger), then per seller meter with
//!   unsold production a two-phase pair trade-create (buyer) + trade-post (seller meter) for the
//!   part that meter covers (energy not covered by any seller meter is not settled and is
//!   counted in `p2p_wh_unbacked`); finally the CER payouts from the treasury.
//!
//! Prices: base units per kWh. [`price_base_per_kwh`] converts EUR/MWh at a RESCoin/EUR rate:
//! `base/kWh = EUR/MWh / 1000 * 10^9 * RES_per_EUR`, rounded half away from zero.
//!
//! ```
//! use scg_ledger::settlement::{CommunityYear, IntervalInput, MeterReading, P2pTrade, settle_year};
//! use scg_ledger::DeviceType;
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
//!             MeterReading { member: "school".into(), device: DeviceType::Pv, produced_wh: 5_000, consumed_wh: 0 },
//!             MeterReading { member: "flat".into(), device: DeviceType::SupplyPoint, produced_wh: 0, consumed_wh: 900 },
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
//! // Then, at the edge: scg_ledger::store::store(&out_dir.join("ledger"), &settled)?;
//! ```

use crate::LedgerError;
use crate::block::{Block, GenesisConfig};
use crate::merkle::{sha256, to_hex};
use crate::state::Ledger;
use crate::tx::{DeviceType, MAX_PAYOUTS, Payout, PublicKey, Tx, TxBody};
use ed25519_dalek::SigningKey;
use scg_units::Rescoin;
use std::collections::BTreeMap;

/// One member's meter reading for one device in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterReading {
    /// Member id.
    pub member: String,
    /// Device type (PV and wind are renewable; battery/EV discharge and the supply point are not).
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
    /// Price, RESCoin base units per kWh (see [`price_base_per_kwh`]).
    pub price_base_per_kwh: u128,
    /// Grid fee to the DSO, base units per kWh.
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

/// Totals of a settled year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementSummary {
    /// Blocks including genesis.
    pub blocks: u64,
    /// Transactions.
    pub transactions: u64,
    /// Of which rejected (0 for consistent input).
    pub transactions_rejected: u64,
    /// RESCoin minted for renewable production.
    pub rescoin_minted: Rescoin,
    /// Origin certificates issued.
    pub certificates_issued: u64,
    /// Wh certified.
    pub certified_wh: u128,
    /// P2P trade legs settled (create + post pairs).
    pub p2p_trades: u64,
    /// Wh delivered in P2P trades.
    pub p2p_wh_delivered: u128,
    /// Wh of P2P trades that no seller meter covered (not settled).
    pub p2p_wh_unbacked: u128,
    /// Grid fees paid to the DSO.
    pub grid_fees: Rescoin,
    /// CER incentives paid.
    pub cer_distributed: Rescoin,
    /// Treasury top-ups to buyers short of RESCoin.
    pub treasury_topups: Rescoin,
    /// Final available balance per member.
    pub final_balances: BTreeMap<String, Rescoin>,
    /// Final state root, hex.
    pub final_state_root_hex: String,
}

/// The chain and its summary.
#[derive(Debug, Clone)]
pub struct SettledYear {
    /// Genesis first, then one block per interval.
    pub blocks: Vec<Block>,
    /// Totals.
    pub summary: SettlementSummary,
}

/// EUR/MWh to RESCoin base units per kWh at `rescoin_per_eur`, rounded half away from zero.
pub fn price_base_per_kwh(eur_per_mwh: f64, rescoin_per_eur: f64) -> Result<u128, LedgerError> {
    let v = eur_per_mwh / 1000.0 * 1e9 * rescoin_per_eur;
    if !v.is_finite() || !(0.0..=1e30).contains(&v) {
        return Err(LedgerError::Settlement(format!(
            "price {eur_per_mwh} EUR/MWh at {rescoin_per_eur} RES/EUR is not a finite, non-negative amount"
        )));
    }
    Ok(v.round() as u128)
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

fn pk(k: &SigningKey) -> PublicKey {
    k.verifying_key().to_bytes()
}

fn cost(energy_wh: u64, rate: u128) -> Option<u128> {
    u128::from(energy_wh).checked_mul(rate).map(|x| x / 1000)
}

/// Builds transactions with tracked nonces and ids.
struct Signer {
    chain_id: u64,
    next_id: u128,
    nonces: BTreeMap<PublicKey, u64>,
    txs: Vec<Vec<u8>>,
}

impl Signer {
    fn push(&mut self, key: &SigningKey, body: TxBody) {
        let nonce = self.nonces.entry(pk(key)).or_insert(0);
        self.txs
            .push(Tx::sign(self.chain_id, key, self.next_id, *nonce, body));
        *nonce += 1;
        self.next_id += 1;
    }
}

/// Settle a year: see the module doc. Errors name the interval and field of bad input.
pub fn settle_year(year: &CommunityYear) -> Result<SettledYear, LedgerError> {
    let err = |m: String| LedgerError::Settlement(m);
    if year.members.is_empty() {
        return Err(err("no members".into()));
    }
    if year.interval_s == 0 {
        return Err(err("interval_s must be positive".into()));
    }
    let mut members: BTreeMap<&str, SigningKey> = BTreeMap::new();
    for m in &year.members {
        if members
            .insert(m.as_str(), derive_key(year.seed, "member", m, None))
            .is_some()
        {
            return Err(err(format!("member id '{m}' appears twice")));
        }
    }
    let member_key = |i: usize, what: &str, id: &str| -> Result<SigningKey, LedgerError> {
        members
            .get(id)
            .cloned()
            .ok_or_else(|| err(format!("interval {i}: {what} '{id}' is not a member")))
    };
    // Meters: a supply point per member plus every (member, device) that reports.
    let mut meters: BTreeMap<(String, DeviceType), SigningKey> = BTreeMap::new();
    for m in &year.members {
        let d = DeviceType::SupplyPoint;
        meters.insert((m.clone(), d), derive_key(year.seed, "meter", m, Some(d)));
    }
    for (i, iv) in year.intervals.iter().enumerate() {
        for r in &iv.readings {
            member_key(i, "reading member", &r.member)?;
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
        intervals_total: year.intervals.len() as u64,
        // Every key below is derived from the seed: mark the chain as a simulation.
        simulation_key_seed: Some(year.seed),
    };
    let (mut ledger, genesis) = Ledger::genesis(config, year.start_timestamp_s)?;
    // We sign every transaction ourselves here; the store replays with full verification.
    ledger.set_verify_signatures(false);
    let mut blocks = Vec::with_capacity(year.intervals.len() + 1);
    blocks.push(genesis);
    let mut signer = Signer {
        chain_id: year.seed,
        next_id: 1,
        nonces: BTreeMap::new(),
        txs: Vec::new(),
    };
    let mut s = SettlementSummary {
        blocks: 1,
        transactions: 0,
        transactions_rejected: 0,
        rescoin_minted: Rescoin(0),
        certificates_issued: 0,
        certified_wh: 0,
        p2p_trades: 0,
        p2p_wh_delivered: 0,
        p2p_wh_unbacked: 0,
        grid_fees: Rescoin(0),
        cer_distributed: Rescoin(0),
        treasury_topups: Rescoin(0),
        final_balances: BTreeMap::new(),
        final_state_root_hex: String::new(),
    };
    let overflow = |i: usize| err(format!("interval {i}: an amount overflows u128"));
    for (i, iv) in year.intervals.iter().enumerate() {
        let interval = i as u64;
        let timestamp_s = (interval + 1)
            .checked_mul(year.interval_s)
            .and_then(|x| x.checked_add(year.start_timestamp_s))
            .ok_or_else(|| err(format!("interval {i}: timestamp overflows")))?;
        // Mirror of available balances during this block (exact while every tx applies).
        let mut available: BTreeMap<PublicKey, u128> =
            ledger.accounts().map(|a| (a.key, a.balance)).collect();
        if i == 0 {
            for m in members.values() {
                signer.push(&operator, TxBody::RegisterMember { member: pk(m) });
            }
            for ((member, device), k) in &meters {
                signer.push(
                    &operator,
                    TxBody::RegisterMeter {
                        meter: pk(k),
                        member: pk(&members[member.as_str()]),
                        device: *device,
                    },
                );
            }
            if year.opening_balance_base > 0 {
                for m in members.values() {
                    signer.push(
                        &treasury,
                        TxBody::Transfer {
                            to: pk(m),
                            amount: year.opening_balance_base,
                        },
                    );
                    let t = available.entry(pk(&treasury)).or_insert(0);
                    *t = t.checked_sub(year.opening_balance_base).ok_or_else(|| {
                        err("treasury endowment cannot cover the opening balances".into())
                    })?;
                    *available.entry(pk(m)).or_insert(0) += year.opening_balance_base;
                }
            }
        }
        // Meter reports, summed per (member, device).
        let mut sums: BTreeMap<(&str, DeviceType), (u64, u64)> = BTreeMap::new();
        for r in &iv.readings {
            let e = sums.entry((r.member.as_str(), r.device)).or_insert((0, 0));
            e.0 = e.0.checked_add(r.produced_wh).ok_or_else(|| overflow(i))?;
            e.1 = e.1.checked_add(r.consumed_wh).ok_or_else(|| overflow(i))?;
        }
        // Unsold production per seller meter in this interval.
        let mut unsold: BTreeMap<&str, Vec<(DeviceType, u64)>> = BTreeMap::new();
        for (&(member, device), &(produced_wh, consumed_wh)) in &sums {
            if produced_wh == 0 && consumed_wh == 0 {
                continue;
            }
            let meter = &meters[&(member.to_string(), device)];
            signer.push(
                meter,
                TxBody::MeterReport {
                    interval,
                    produced_wh,
                    consumed_wh,
                },
            );
            if device.is_renewable() && produced_wh > 0 {
                let mint = u128::from(produced_wh)
                    .checked_mul(year.mint_rate_base_per_wh)
                    .ok_or_else(|| overflow(i))?;
                *available.entry(pk(&members[member])).or_insert(0) += mint;
            }
            if produced_wh > 0 {
                unsold
                    .entry(member)
                    .or_default()
                    .push((device, produced_wh));
            }
        }
        for t in &iv.trades {
            let buyer = member_key(i, "trade buyer", &t.buyer)?;
            let seller = member_key(i, "trade seller", &t.seller)?;
            if t.buyer == t.seller {
                return Err(err(format!(
                    "interval {i}: trade buyer and seller are both '{}'",
                    t.buyer
                )));
            }
            let mut left = t.energy_wh;
            let legs: Vec<(DeviceType, u64)> = unsold
                .get_mut(t.seller.as_str())
                .map(|v| {
                    let mut legs = Vec::new();
                    for (device, wh) in v.iter_mut() {
                        let take = left.min(*wh);
                        if take > 0 {
                            legs.push((*device, take));
                            *wh -= take;
                            left -= take;
                        }
                    }
                    legs
                })
                .unwrap_or_default();
            s.p2p_wh_unbacked += u128::from(left);
            for (device, wh) in legs {
                let pay = cost(wh, t.price_base_per_kwh).ok_or_else(|| overflow(i))?;
                let fee = cost(wh, t.grid_fee_base_per_kwh).ok_or_else(|| overflow(i))?;
                let total = pay.checked_add(fee).ok_or_else(|| overflow(i))?;
                let have = available.get(&pk(&buyer)).copied().unwrap_or(0);
                if have < total {
                    let short = total - have;
                    let tr = available.entry(pk(&treasury)).or_insert(0);
                    *tr = tr.checked_sub(short).ok_or_else(|| {
                        err(format!(
                            "interval {i}: treasury endowment exhausted by top-ups"
                        ))
                    })?;
                    signer.push(
                        &treasury,
                        TxBody::Transfer {
                            to: pk(&buyer),
                            amount: short,
                        },
                    );
                    s.treasury_topups.0 += short;
                    *available.entry(pk(&buyer)).or_insert(0) += short;
                }
                let trade_id = signer.next_id;
                signer.push(
                    &buyer,
                    TxBody::TradeCreate {
                        seller: pk(&seller),
                        interval,
                        energy_wh: wh,
                        price_base_per_kwh: t.price_base_per_kwh,
                        fee_base_per_kwh: t.grid_fee_base_per_kwh,
                        expires_at_s: timestamp_s.saturating_add(year.interval_s),
                    },
                );
                signer.push(
                    &meters[&(t.seller.clone(), device)],
                    TxBody::TradePost {
                        trade_id,
                        delivered_wh: wh,
                    },
                );
                *available.entry(pk(&buyer)).or_insert(0) -= total;
                *available.entry(pk(&seller)).or_insert(0) += pay;
                s.p2p_trades += 1;
                s.p2p_wh_delivered += u128::from(wh);
                s.grid_fees.0 += fee;
            }
        }
        let mut payouts = Vec::new();
        for c in &iv.cer {
            let m = member_key(i, "CER member", &c.member)?;
            if c.amount_base > 0 {
                payouts.push(Payout {
                    member: pk(&m),
                    amount: c.amount_base,
                });
            }
        }
        for (chunk_no, chunk) in payouts.chunks(MAX_PAYOUTS).enumerate() {
            let total = chunk
                .iter()
                .try_fold(0u128, |a, p| a.checked_add(p.amount))
                .ok_or_else(|| overflow(i))?;
            let tr = available.entry(pk(&treasury)).or_insert(0);
            *tr = tr.checked_sub(total).ok_or_else(|| {
                err(format!(
                    "interval {i}: treasury cannot pay the CER incentives"
                ))
            })?;
            s.cer_distributed.0 += total;
            signer.push(
                &treasury,
                TxBody::CerDistribution {
                    period: (interval << 16) | chunk_no as u64,
                    payouts: chunk.to_vec(),
                },
            );
        }
        let txs = std::mem::take(&mut signer.txs);
        let (block, outcome) = ledger.produce_block(timestamp_s, txs)?;
        // Nobody stores this ledger's records; do not let the change sets grow.
        ledger.take_changes();
        s.transactions += outcome.results.len() as u64;
        s.transactions_rejected += outcome.rejected() as u64;
        if outcome.rejected() > 0 {
            // Resynchronise nonces with the ledger so later blocks stay valid.
            for (key, nonce) in signer.nonces.iter_mut() {
                *nonce = ledger.account(key).map_or(0, |a| a.nonce);
            }
        }
        blocks.push(block);
    }
    let totals = ledger.totals();
    s.blocks = blocks.len() as u64;
    s.rescoin_minted = Rescoin(totals.minted_renewable);
    s.certificates_issued = totals.certificates_issued;
    s.certified_wh = totals.certified_wh;
    for (id, k) in &members {
        let bal = ledger.account(&pk(k)).map_or(0, |a| a.balance);
        s.final_balances.insert((*id).to_string(), Rescoin(bal));
    }
    s.final_state_root_hex = to_hex(&ledger.state_root());
    Ok(SettledYear { blocks, summary: s })
}
