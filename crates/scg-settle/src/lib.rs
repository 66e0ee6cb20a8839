//! `scg-settle`: settles a simulated year ([`scg_sim::SimResult`]) on the RESCoin ledger.
//!
//! Why a crate of its own: `scg-ledger`'s settlement takes plain inputs (readings, the market's
//! trades with their prices and fees, CER payouts per interval) so that a live node can feed it
//! too; the ledger must not depend on the simulator, and the simulator (a core crate) should
//! not carry ed25519 and redb. This crate is the one place that knows both and keeps the graph
//! acyclic: `scg-ledger` ← `scg-settle` → `scg-sim`.
//!
//! What it does per step and prosumer:
//! - meter readings: PV, wind, battery (discharge, charge), EV charger (V2G, charging; the
//!   swap station's energy leaves with the swapped batteries, so it is plain consumption at the
//!   supply point) and the supply point (export = grid + P2P export, import = grid + P2P import);
//! - trades: with a community market, the market's own trades with its exact integer prices
//!   and fees (milli-euro/MWh × 1000 = base units/kWh at the 1 RES = 1 EUR peg: no rounding).
//!   Pro-rata sharing has no pairs, so each step's buyers are matched to its sellers in
//!   scenario order (north-west corner rule) at the internal price;
//! - the CER allocation of the year, paid in the last interval.
//!
//! [`settle_blocks`] generates these one interval at a time into the ledger's settlement walk
//! (`scg_ledger::settlement::settle_stream`), members by position, the CER tallied hour by
//! hour as the readings pass, from blocks of steps of every member's flows
//! (`scg_sim::members::MemberBlock`, with the market's trades of their steps) taken as they
//! come: `scg simulate` of a city hands it each block while the year runs, so neither the
//! year's readings nor its series are ever held in memory. [`settle`] feeds it blocks made one
//! at a time from a kept year's series: one rule from flows to readings for both.
//!
//! **Meters.** Each member registers, in block 1, a meter per device it has installed
//! (`scg_sim::members::Meters`: PV of positive capacity, wind turbines, a battery, an EV site
//! with charge points) besides its supply point: known before the year runs, which a settlement
//! that starts with the year needs; a device idle all year keeps a silent meter.
//! [`community_year`] collects the same intervals with member ids (the plain input a member
//! chain's plan is built from).
//!
//! **Layout.** From [`Policy::compact_from_members`] members on (50 by default) the year is
//! settled in the ledger's compact layout (`scg_ledger::day`: one signed record per member and
//! day with its packed readings and day figures, member aggregates in state); smaller
//! communities, the built-in scenario among them, keep the per-record layout (a meter report
//! per device and interval, two records per trade), so their ledgers and goldens are unchanged.
//! Both layouts give every member the same RESCoin and certified Wh (tests in scg-ledger).
//!
//! Every float becomes an integer through `scg_units` (`Wh::from_kwh`, `Rescoin::from_eur`);
//! a negative flow or a trade the meters do not cover is an error naming the step and member.
//! Never does I/O.
//!
//! **CER: the ledger's integer rule, one payout a year.** The payouts are computed by
//! `scg_ledger::cer::CerTally` — the very rule a member chain's period close (kind 21) runs on
//! the readings it holds — from the supply-point readings settled here (the rounded Wh of each
//! step, summed to hours; injection = export, withdrawal = import, P2P included) at the
//! scenario's CER rule and hourly zonal prices in milli-EUR/MWh ([`cer_rule`],
//! [`zonal_hourly_milli`]), so `scg simulate`'s ledger and a chain fed the same readings pay
//! the same base units by construction. The rule is hourly and each hour is divided on its
//! own, so the year's allocation is the sum of any periods' (a chain closing months pays each
//! member, over the year, exactly this). Each member is paid its year once, in the last
//! interval (kind 10). The summary's float allocation (`CerMemberResult::allocated_eur`, the
//! same rule on unrounded kWh) agrees up to the Wh rounding of the readings (tested in
//! `tests/builtin.rs`); it is no longer equal to the base unit.
//!
//! **Pro-rata sharing reconciles to the Wh, not to the base unit of the summary's EUR.** With
//! a market, the market's own integer money (`MarketYear::paid_nano`, `received_nano`) is what
//! the summary reports and what the ledger pays, equal to the base unit. Pro-rata sharing has
//! no money of its own in the simulation: the summary's P2P EUR figures are `f64` kWh times the
//! internal price, while the ledger settles integer Wh (each member's step energy rounded on its
//! own by `Wh::from_kwh`, paired north-west corner), each trade's cost rounded down to the base
//! unit. They differ by the Wh rounding — each member's step energy is within half a Wh of the
//! float, and when the rounded totals of sellers and buyers differ (by at most half a Wh per
//! member) the unmatched Wh stay with the grid — at the internal price, plus less than one base
//! unit per trade. The per-prosumer `ledger` object of `summary.json`
//! (`p2p_paid_res`, `p2p_received_res`) is read from the ledger and is exact; making the EUR
//! figures equal too would need the simulator's summary to be computed from these integers.
//! What is exact under pro-rata (tested on random scenarios): every step's trades carry
//! `min(sold Wh, bought Wh)` of the members' rounded P2P energy at the internal price.

use scg_ledger::DeviceType;
use scg_ledger::block::Block;
use scg_ledger::cer::{CerRule, CerTally, SizeClass};
pub use scg_ledger::settlement::Layout;
use scg_ledger::settlement::{
    self, CerPayout, CommunityYear, IndexedInterval, IndexedReading, IndexedTrade, IntervalInput,
    MeterReading, P2pTrade, SettledYear, YearHeader,
};
use scg_ledger::state::BlockOutcome;
use scg_sim::market_stage::MarketTrade;
use scg_sim::members::{Flow, MemberBlock, MemberSeries, Meters};
use scg_sim::{SimResult, YearHead};
use scg_units::{Eur, Kwh, Rescoin, Wh};
use std::sync::Arc;

/// Errors of the settlement of a simulated year.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// A value of the simulated year that cannot go on the ledger.
    #[error("settlement input, step {interval}, member '{member}', {quantity}: {problem}")]
    Input {
        /// Step (interval) index.
        interval: usize,
        /// Member (prosumer) id.
        member: String,
        /// Which quantity.
        quantity: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The source of a streamed year's blocks ended before the year did (the year stopped).
    #[error("the year's member blocks ended before step {step}")]
    BlocksEnded {
        /// The first step not settled.
        step: usize,
    },
    /// The ledger refused the input (bad input it detected, or a bug).
    #[error(transparent)]
    Ledger(#[from] scg_ledger::LedgerError),
}

/// Settlement policy: the integers the community chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// RESCoin base units minted per renewable Wh.
    pub mint_rate_base_per_wh: u128,
    /// Moved from the treasury to every member at the start.
    pub opening_balance_base: u128,
    /// Minted to the treasury at genesis.
    pub treasury_endowment_base: u128,
    /// Communities of at least this many members settle in the compact layout
    /// ([`Layout::Compact`]: one record per member and day); smaller ones, the built-in
    /// scenario among them, in the per-record layout.
    pub compact_from_members: usize,
}

/// Default of [`Policy::compact_from_members`]: the size from which `scg simulate` also
/// switches to the city report layout; the run's estimate (`scg_sim::check::estimate`) uses
/// the same constant.
pub const COMPACT_FROM_MEMBERS: usize = scg_sim::check::COMPACT_LEDGER_FROM_MEMBERS;

impl Default for Policy {
    fn default() -> Self {
        Self {
            mint_rate_base_per_wh: settlement::DEFAULT_MINT_RATE_BASE_PER_WH,
            opening_balance_base: settlement::DEFAULT_OPENING_BALANCE_BASE,
            treasury_endowment_base: settlement::DEFAULT_TREASURY_ENDOWMENT_BASE,
            compact_from_members: COMPACT_FROM_MEMBERS,
        }
    }
}

impl Policy {
    /// The layout a community of `members` members settles in.
    pub fn layout(&self, members: usize) -> Layout {
        if members >= self.compact_from_members {
            Layout::Compact
        } else {
            Layout::PerRecord
        }
    }
}

/// Settle a simulated year whose series were kept: its intervals are generated one at a time
/// (readings, trades and, in the last interval, the CER payouts) into
/// [`settlement::settle_stream`], in the policy's layout for the community's size, from blocks
/// of its series made one at a time ([`settle_blocks`]' rule); the year's readings are never all
/// held at once.
pub fn settle(
    result: &SimResult,
    internal_price_eur_per_mwh: f64,
    policy: &Policy,
) -> Result<SettledYear, SettleError> {
    let kept = KeptBlocks::new(result)?;
    let mut next = |t: usize, done: Option<Arc<MemberBlock>>| Ok(kept.next(t, done));
    settle_blocks(
        &result.head(),
        internal_price_eur_per_mwh,
        policy,
        &mut next,
    )
}

/// Settle a year from the blocks of its members' series as they come (`scg simulate` of a city
/// settles its year while the year runs: `scg_sim::MemberStream`): `next` hands the block
/// starting at each step asked, with its steps' market trades (`MemberBlock::trades`), and
/// takes back the block the settlement is done with. Each member registers a meter per
/// device of `head.meters` before the first reading. The same ledger as [`settle`] of the
/// same year kept.
pub fn settle_blocks(
    head: &YearHead,
    internal_price_eur_per_mwh: f64,
    policy: &Policy,
    next: &mut NextBlock<'_>,
) -> Result<SettledYear, SettleError> {
    let (header, mut intervals) = Intervals::new(head, internal_price_eur_per_mwh, policy, next)?;
    let layout = policy.layout(header.members.len());
    settlement::settle_stream(&header, layout, |t, out| intervals.fill(t, out))
}

/// [`settle_blocks`] handing each block of the ledger and its outcome to `sink` as it is made
/// (genesis first) instead of keeping the year's blocks (`scg simulate` of a city stores each
/// as it comes: `scg_ledger::store::StoreWriter`). The same blocks as [`settle_blocks`]; an
/// error of the sink stops the settlement.
pub fn settle_blocks_into(
    head: &YearHead,
    internal_price_eur_per_mwh: f64,
    policy: &Policy,
    next: &mut NextBlock<'_>,
    sink: &mut dyn FnMut(Block, BlockOutcome) -> Result<(), SettleError>,
) -> Result<settlement::SettledStream, SettleError> {
    let (header, mut intervals) = Intervals::new(head, internal_price_eur_per_mwh, policy, next)?;
    let layout = policy.layout(header.members.len());
    settlement::settle_stream_into(&header, layout, |t, out| intervals.fill(t, out), sink)
}

fn input_error(t: usize, member: &str, quantity: &str, problem: String) -> SettleError {
    SettleError::Input {
        interval: t,
        member: member.to_owned(),
        quantity: quantity.to_owned(),
        problem,
    }
}

/// Energy of a step at `kw` as ledger Wh (the one rounding point), refusing negatives.
fn step_wh(kw: f64, dt_h: f64, at: (usize, &str, &str)) -> Result<u64, SettleError> {
    // Most meters read nothing in most steps (PV at night, an idle battery or charger): zero
    // (or -0.0) rounds to 0 Wh, without the general rounding's checks.
    if kw == 0.0 {
        return Ok(0);
    }
    let (t, member, quantity) = at;
    let wh = Wh::from_kwh(Kwh(kw * dt_h))
        .map_err(|e| input_error(t, member, quantity, e.to_string()))?;
    u64::try_from(wh.0).map_err(|_| {
        input_error(
            t,
            member,
            quantity,
            format!("negative energy {kw} kW over {dt_h} h"),
        )
    })
}

/// The settlement input of a simulated year as plain named types (what a member chain's plan
/// is built from): the same intervals [`settle`] streams, with member ids.
pub fn community_year(
    result: &SimResult,
    internal_price_eur_per_mwh: f64,
    policy: &Policy,
) -> Result<CommunityYear, SettleError> {
    let kept = KeptBlocks::new(result)?;
    let mut next = |t: usize, done: Option<Arc<MemberBlock>>| Ok(kept.next(t, done));
    let head = result.head();
    let (header, mut source) =
        Intervals::new(&head, internal_price_eur_per_mwh, policy, &mut next)?;
    let ids = &header.members;
    let id = |p: u32| ids.get(p as usize).cloned().unwrap_or_default();
    let mut intervals = Vec::with_capacity(header.intervals);
    let mut iv = IndexedInterval::default();
    for t in 0..header.intervals {
        iv.clear();
        source.fill(t, &mut iv)?;
        intervals.push(IntervalInput {
            readings: (iv.readings.iter())
                .map(|r| MeterReading {
                    member: id(r.member),
                    device: r.device,
                    produced_wh: r.produced_wh,
                    consumed_wh: r.consumed_wh,
                })
                .collect(),
            trades: (iv.trades.iter())
                .map(|t| P2pTrade {
                    buyer: id(t.buyer),
                    seller: id(t.seller),
                    energy_wh: t.energy_wh,
                    price_base_per_kwh: t.price_base_per_kwh,
                    grid_fee_base_per_kwh: t.grid_fee_base_per_kwh,
                })
                .collect(),
            cer: (iv.cer.iter())
                .map(|(p, amount_base)| CerPayout {
                    member: id(*p),
                    amount_base: *amount_base,
                })
                .collect(),
        });
    }
    Ok(CommunityYear {
        seed: header.seed,
        members: header.members,
        mint_rate_base_per_wh: header.mint_rate_base_per_wh,
        start_timestamp_s: header.start_timestamp_s,
        interval_s: header.interval_s,
        opening_balance_base: header.opening_balance_base,
        treasury_endowment_base: header.treasury_endowment_base,
        intervals,
    })
}

/// Member `i`'s meters at the block's `k`-th step: (device, produced kW, consumed kW) — PV,
/// wind, battery (discharge, charge), EV charger (V2G, charging) and the supply point (export
/// = grid + P2P export, import = grid + P2P import).
fn device_kw(b: &MemberBlock, i: usize, k: usize) -> [(DeviceType, f64, f64); 5] {
    let at = |f: Flow| b.at(f, i, k);
    [
        (DeviceType::Pv, at(Flow::Pv), 0.0),
        (DeviceType::Wind, at(Flow::Wind), 0.0),
        (
            DeviceType::Battery,
            at(Flow::BatteryDischarge),
            at(Flow::BatteryCharge),
        ),
        (DeviceType::EvCharger, at(Flow::V2g), at(Flow::EvCharge)),
        (
            DeviceType::SupplyPoint,
            at(Flow::GridExport) + at(Flow::P2pExport),
            at(Flow::GridImport) + at(Flow::P2pImport),
        ),
    ]
}

/// The ledger's device set of a member's meters (bit `1 << code`; the supply point is
/// registered for every member by the ledger).
fn device_mask(m: &Meters) -> u8 {
    let bit = |on: bool, d: DeviceType| if on { 1u8 << (d as u8) } else { 0 };
    bit(m.pv, DeviceType::Pv)
        | bit(m.wind, DeviceType::Wind)
        | bit(m.battery, DeviceType::Battery)
        | bit(m.ev_charger, DeviceType::EvCharger)
}

/// Where a settlement takes the blocks of the year's member series from: called with the first
/// step not yet settled and the block the settlement is done with (to be recycled), it returns
/// the block that starts at that step.
pub type NextBlock<'n> =
    dyn FnMut(usize, Option<Arc<MemberBlock>>) -> Result<Arc<MemberBlock>, SettleError> + 'n;

/// A year's settlement input, generated one interval at a time and in order from the blocks
/// of its member series.
struct Intervals<'h, 'n, 'f> {
    ids: &'h [String],
    dt_h: f64,
    trades: Trades,
    /// The CER hour by hour (`None` when the community is not a CER), paid in the last
    /// interval.
    cer: Option<CerHours>,
    last: usize,
    next: &'n mut NextBlock<'f>,
    block: Option<Arc<MemberBlock>>,
    /// The first of the block's trades not yet settled.
    next_trade: usize,
}

/// Where the trades of a step come from.
enum Trades {
    /// The market's own trades, carried by the blocks in step and clearing order.
    Market,
    /// Pro-rata sharing, paired at the internal price (base units per kWh).
    ProRata {
        price: u128,
        buyers: Vec<(u32, u64)>,
        sellers: Vec<(u32, u64)>,
    },
}

impl<'h, 'n, 'f> Intervals<'h, 'n, 'f> {
    fn new(
        head: &'h YearHead,
        internal_price_eur_per_mwh: f64,
        policy: &Policy,
        next: &'n mut NextBlock<'f>,
    ) -> Result<(YearHeader, Self), SettleError> {
        let grid = &head.grid;
        let steps = grid.len();
        if u32::try_from(head.ids.len()).is_err() {
            return Err(input_error(0, "", "prosumers", "too many".into()));
        }
        if head.meters.len() != head.ids.len() {
            return Err(input_error(
                0,
                "",
                "meters",
                "one set per member expected".into(),
            ));
        }
        let trades = if head.market {
            Trades::Market
        } else {
            let first = head.ids.first().map_or("", String::as_str);
            let price = Rescoin::from_eur(Eur(internal_price_eur_per_mwh / 1000.0))
                .map_err(|e| input_error(0, first, "internal price", e.to_string()))?
                .0;
            Trades::ProRata {
                price,
                buyers: Vec::new(),
                sellers: Vec::new(),
            }
        };
        let start = grid.unix_seconds(0);
        let header = YearHeader {
            seed: head.seed,
            members: head.ids.clone(),
            devices: head.meters.iter().map(device_mask).collect(),
            mint_rate_base_per_wh: policy.mint_rate_base_per_wh,
            start_timestamp_s: u64::try_from(start).map_err(|_| {
                scg_ledger::LedgerError::Settlement(format!(
                    "the year starts before 1970 (unix time {start})"
                ))
            })?,
            interval_s: u64::from(grid.step_minutes()) * 60,
            opening_balance_base: policy.opening_balance_base,
            treasury_endowment_base: policy.treasury_endowment_base,
            intervals: steps,
        };
        let intervals = Self {
            ids: &head.ids,
            dt_h: grid.step_hours(),
            trades,
            cer: CerHours::new(
                head.cer_params.as_ref(),
                &head.zonal_hourly_eur_per_mwh,
                head.ids.len(),
                grid.steps_per_hour(),
            )?,
            last: steps.saturating_sub(1),
            next,
            block: None,
            next_trade: 0,
        };
        Ok((header, intervals))
    }

    /// The block holding step `t` (steps are asked in order): the current one, or the next
    /// from the source, checked against the year's members.
    fn block_at(&mut self, t: usize) -> Result<Arc<MemberBlock>, SettleError> {
        if let Some(b) = &self.block {
            if t < b.first_step + b.steps {
                return Ok(Arc::clone(b));
            }
            self.check_trades_taken(b)?;
        }
        let done = self.block.take();
        let b = (self.next)(t, done)?;
        let members = self.ids.len();
        let shaped = b.first_step == t
            && b.steps > 0
            && b.members() == members
            && b.columns.iter().all(|c| c.len() == members * b.steps);
        if !shaped {
            return Err(input_error(
                t,
                "",
                "member block",
                format!(
                    "expected a block of {members} members from step {t}, got {} members, \
                     steps {}..{}",
                    b.members(),
                    b.first_step,
                    b.first_step + b.steps
                ),
            ));
        }
        self.next_trade = 0;
        self.block = Some(Arc::clone(&b));
        Ok(b)
    }

    /// Every trade of `b` was settled in its step (none out of order or outside the block).
    fn check_trades_taken(&self, b: &MemberBlock) -> Result<(), SettleError> {
        match b.trades.get(self.next_trade) {
            None => Ok(()),
            Some(tr) => Err(input_error(
                tr.step,
                self.ids.get(tr.seller).map_or("", String::as_str),
                "trade",
                format!(
                    "step out of order or outside its block (steps {}..{})",
                    b.first_step,
                    b.first_step + b.steps
                ),
            )),
        }
    }

    /// Interval `t` into `out` (cleared): every member's readings, the step's trades and,
    /// in the last interval, the CER payouts. Called for `t` = 0, 1, ... in order.
    fn fill(&mut self, t: usize, out: &mut IndexedInterval) -> Result<(), SettleError> {
        let block = self.block_at(t)?;
        let k = t - block.first_step;
        for (m, id) in self.ids.iter().enumerate() {
            for (device, produced_kw, consumed_kw) in device_kw(&block, m, k) {
                let produced_wh = step_wh(produced_kw, self.dt_h, (t, id, device.name()))?;
                let consumed_wh = step_wh(consumed_kw, self.dt_h, (t, id, device.name()))?;
                if produced_wh > 0 || consumed_wh > 0 {
                    out.readings.push(IndexedReading {
                        member: m as u32,
                        device,
                        produced_wh,
                        consumed_wh,
                    });
                }
            }
        }
        self.step_trades(&block, t, out)?;
        if t == self.last {
            self.check_trades_taken(&block)?;
        }
        if let Some(cer) = &mut self.cer {
            for r in &out.readings {
                if r.device == DeviceType::SupplyPoint {
                    cer.add(r.member as usize, r.produced_wh, r.consumed_wh);
                }
            }
            cer.end_interval()?;
            if t == self.last {
                out.cer.extend(
                    (cer.tally.allocated_base.iter().enumerate())
                        .filter(|(_, a)| **a > 0)
                        .map(|(m, a)| (m as u32, *a)),
                );
            }
        }
        Ok(())
    }

    fn step_trades(
        &mut self,
        block: &MemberBlock,
        t: usize,
        out: &mut IndexedInterval,
    ) -> Result<(), SettleError> {
        match &mut self.trades {
            Trades::Market => {
                while let Some(tr) = block.trades.get(self.next_trade) {
                    if tr.step != t {
                        break;
                    }
                    out.trades.push(market_trade(self.ids, tr)?);
                    self.next_trade += 1;
                }
            }
            Trades::ProRata {
                price,
                buyers,
                sellers,
            } => {
                sellers.clear();
                buyers.clear();
                let k = t - block.first_step;
                for (m, id) in self.ids.iter().enumerate() {
                    let at = |f: Flow| block.at(f, m, k);
                    let out_wh = step_wh(at(Flow::P2pExport), self.dt_h, (t, id, "p2p export"))?;
                    let in_wh = step_wh(at(Flow::P2pImport), self.dt_h, (t, id, "p2p import"))?;
                    if out_wh > 0 {
                        sellers.push((m as u32, out_wh));
                    }
                    if in_wh > 0 {
                        buyers.push((m as u32, in_wh));
                    }
                }
                pair_trades(buyers, sellers, *price, &mut out.trades);
            }
        }
        Ok(())
    }
}

/// Base units per kWh of an exact market price (milli-euro per MWh): × 1000, no rounding.
fn market_price(milli: i64, at: (usize, &str, &str)) -> Result<u128, SettleError> {
    let (t, member, quantity) = at;
    u128::try_from(milli).map(|m| m * 1000).map_err(|_| {
        input_error(
            t,
            member,
            quantity,
            format!("negative price {milli} milli-EUR/MWh"),
        )
    })
}

/// The blocks of a kept year's series (`scg simulate` of a small community, tests): made
/// from its members' series one block at a time, each with its steps' market trades.
struct KeptBlocks<'a> {
    members: Vec<MemberSeries<'a>>,
    steps: usize,
    block_steps: usize,
    /// The market's trades grouped by step: step `t`'s are `order[starts[t]..starts[t + 1]]`
    /// (empty without a market).
    trades: &'a [MarketTrade],
    order: Vec<usize>,
    starts: Vec<usize>,
}

impl<'a> KeptBlocks<'a> {
    fn new(result: &'a SimResult) -> Result<Self, SettleError> {
        let steps = result.grid.len();
        // A streamed run's result keeps no series: reading it would settle zeros.
        if let Some(p) = (result.prosumers.iter()).find(|p| p.load.load_kw.len() != steps) {
            return Err(input_error(
                0,
                &p.id,
                "series",
                "the year's series were not kept (a streamed run is settled while it runs)".into(),
            ));
        }
        let trades: &[MarketTrade] = result.community.market.as_ref().map_or(&[], |m| &m.trades);
        let (order, starts) = by_step(result, trades, steps)?;
        Ok(Self {
            members: (result.prosumers.iter())
                .map(|p| MemberSeries {
                    load_kw: &p.load.load_kw,
                    flows: &p.flows,
                    ev: &p.ev,
                })
                .collect(),
            steps,
            block_steps: scg_sim::members::block_steps(result.prosumers.len(), steps),
            trades,
            order,
            starts,
        })
    }

    /// The block from step `t` (refilling `done` when nobody else holds it).
    fn next(&self, t: usize, done: Option<Arc<MemberBlock>>) -> Arc<MemberBlock> {
        let mut b = done
            .and_then(|b| Arc::try_unwrap(b).ok())
            .unwrap_or_default();
        let steps = self.block_steps.min(self.steps.saturating_sub(t));
        b.fill_from_series(&self.members, t, steps);
        let range = self.starts.get(t).copied().unwrap_or(0)
            ..self.starts.get(t + steps).copied().unwrap_or(0);
        b.trades.extend(
            (self.order.get(range).unwrap_or_default().iter()).map(|&k| self.trades[k].clone()),
        );
        Arc::new(b)
    }
}

/// The market's trades grouped by step (a counting sort: stable, so each step keeps its
/// clearing order); a trade outside the year is an error.
fn by_step(
    result: &SimResult,
    trades: &[MarketTrade],
    steps: usize,
) -> Result<(Vec<usize>, Vec<usize>), SettleError> {
    let mut starts = vec![0usize; steps + 1];
    for tr in trades {
        if tr.step >= steps {
            let seller = result
                .prosumers
                .get(tr.seller)
                .map_or("", |p| p.id.as_str());
            return Err(input_error(
                tr.step,
                seller,
                "trade",
                "step outside the year".into(),
            ));
        }
        starts[tr.step + 1] += 1;
    }
    for t in 0..steps {
        starts[t + 1] += starts[t];
    }
    let mut next = starts.clone();
    let mut order = vec![0usize; trades.len()];
    for (k, tr) in trades.iter().enumerate() {
        order[next[tr.step]] = k;
        next[tr.step] += 1;
    }
    Ok((order, starts))
}

/// One market trade in ledger integers, with the members' positions checked.
fn market_trade(ids: &[String], tr: &MarketTrade) -> Result<IndexedTrade, SettleError> {
    let id = |i: usize| -> Result<&str, SettleError> {
        ids.get(i).map(String::as_str).ok_or_else(|| {
            input_error(
                tr.step,
                &format!("#{i}"),
                "trade",
                "no such prosumer".into(),
            )
        })
    };
    let (seller, buyer) = (id(tr.seller)?, id(tr.buyer)?);
    let energy_wh = u64::try_from(tr.energy_wh).map_err(|_| {
        input_error(
            tr.step,
            seller,
            "trade energy",
            format!("negative energy {} Wh", tr.energy_wh),
        )
    })?;
    Ok(IndexedTrade {
        buyer: tr.buyer as u32,
        seller: tr.seller as u32,
        energy_wh,
        price_base_per_kwh: market_price(
            tr.price_milli_eur_per_mwh,
            (tr.step, seller, "trade price"),
        )?,
        grid_fee_base_per_kwh: market_price(
            tr.fee_milli_eur_per_mwh,
            (tr.step, buyer, "grid fee"),
        )?,
    })
}

/// North-west corner matching of buyers to sellers (member positions, in scenario order):
/// conserves every Wh that both sides have; when the members' separately rounded Wh differ,
/// the unmatched Wh — at most one per member and step — stays with the grid.
fn pair_trades(
    buyers: &mut [(u32, u64)],
    sellers: &mut [(u32, u64)],
    price: u128,
    out: &mut Vec<IndexedTrade>,
) {
    let (mut b, mut s) = (0, 0);
    while b < buyers.len() && s < sellers.len() {
        let energy_wh = buyers[b].1.min(sellers[s].1);
        if energy_wh > 0 {
            out.push(IndexedTrade {
                buyer: buyers[b].0,
                seller: sellers[s].0,
                energy_wh,
                price_base_per_kwh: price,
                grid_fee_base_per_kwh: 0,
            });
        }
        buyers[b].1 -= energy_wh;
        sellers[s].1 -= energy_wh;
        if buyers[b].1 == 0 {
            b += 1;
        }
        if sellers[s].1 == 0 {
            s += 1;
        }
    }
}
/// The scenario's CER rule in ledger integers: prices to the milli-EUR/MWh (the market's
/// rounding point, `scg_market::Price::from_eur_per_mwh`), the producers' share to the basis
/// point (nearest).
pub fn cer_rule(params: &scg_sim::cer::CerParams) -> Result<CerRule, SettleError> {
    let milli = |what: &str, eur_per_mwh: f64| -> Result<u64, SettleError> {
        scg_market::Price::from_eur_per_mwh(eur_per_mwh)
            .map_err(|e| e.to_string())
            .and_then(|p| u64::try_from(p.0).map_err(|_| format!("negative: {eur_per_mwh}")))
            .map_err(|e| input_error(0, "", what, e))
    };
    let share = params.producer_share * f64::from(scg_ledger::cer::BASIS_POINTS);
    if !(0.0..=f64::from(scg_ledger::cer::BASIS_POINTS)).contains(&share) {
        return Err(input_error(
            0,
            "",
            "CER producer share",
            format!("{} is not a fraction in [0, 1]", params.producer_share),
        ));
    }
    Ok(CerRule {
        size_class: match params.size_class {
            scg_sim::cer::PlantSizeClass::UpTo200Kw => SizeClass::UpTo200Kw,
            scg_sim::cer::PlantSizeClass::From200To600Kw => SizeClass::From200To600Kw,
            scg_sim::cer::PlantSizeClass::Over600Kw => SizeClass::Over600Kw,
        },
        pv_bonus_milli_eur_per_mwh: milli("CER PV bonus", params.pv_bonus_eur_per_mwh)?,
        valorisation_milli_eur_per_mwh: milli("CER valorisation", params.valorisation_eur_per_mwh)?,
        // In [0, 10000] (checked above), so the cast is exact after rounding.
        producer_share_bp: share.round() as u16,
    })
}

/// The year's hourly zonal prices (the mean of each hour's steps, as the simulator's CER
/// uses them) in milli-EUR/MWh, the market's rounding point: what an operator posts on a
/// member chain (kind 20) for the same year.
pub fn zonal_hourly_milli(result: &SimResult) -> Result<Vec<i64>, SettleError> {
    zonal_milli(&result.zonal_hourly_eur_per_mwh)
}

/// Hourly zonal prices (EUR/MWh) in milli-EUR/MWh.
fn zonal_milli(hourly_eur_per_mwh: &[f64]) -> Result<Vec<i64>, SettleError> {
    hourly_eur_per_mwh
        .iter()
        .enumerate()
        .map(|(h, p)| {
            scg_market::Price::from_eur_per_mwh(*p)
                .map(|p| p.0)
                .map_err(|e| input_error(h, "", "zonal price", e.to_string()))
        })
        .collect()
}

/// The CER hour by hour over the settled supply-point readings (injection = export,
/// withdrawal = import, P2P included): the one accumulation behind [`cer_tally`] and the
/// payouts [`settle`] streams. A last partial hour stays open, as in the simulator.
struct CerHours {
    rule: CerRule,
    zonal: Vec<i64>,
    per_hour: usize,
    tally: CerTally,
    injected: Vec<u64>,
    withdrawn: Vec<u64>,
    /// Intervals of the open hour so far, and its index.
    steps: usize,
    hour: usize,
}

impl CerHours {
    /// For `members` members under the CER rule `params` (`None` when the community is not
    /// a CER) at the hourly zonal prices, EUR/MWh.
    fn new(
        params: Option<&scg_sim::cer::CerParams>,
        zonal_hourly_eur_per_mwh: &[f64],
        members: usize,
        steps_per_hour: usize,
    ) -> Result<Option<Self>, SettleError> {
        let Some(params) = params else {
            return Ok(None);
        };
        let n = members;
        Ok(Some(Self {
            rule: cer_rule(params)?,
            zonal: zonal_milli(zonal_hourly_eur_per_mwh)?,
            per_hour: steps_per_hour.max(1),
            tally: CerTally::new(n),
            injected: vec![0; n],
            withdrawn: vec![0; n],
            steps: 0,
            hour: 0,
        }))
    }

    /// One supply-point reading of member position `m` in the open hour.
    fn add(&mut self, m: usize, injected_wh: u64, withdrawn_wh: u64) {
        if let (Some(i), Some(w)) = (self.injected.get_mut(m), self.withdrawn.get_mut(m)) {
            *i = i.saturating_add(injected_wh);
            *w = w.saturating_add(withdrawn_wh);
        }
    }

    /// The end of an interval: the hour it completes is divided.
    fn end_interval(&mut self) -> Result<(), SettleError> {
        self.steps += 1;
        if self.steps < self.per_hour {
            return Ok(());
        }
        let h = self.hour;
        let price = self.zonal.get(h).copied().ok_or_else(|| {
            input_error(h * self.per_hour, "", "zonal price", "missing hour".into())
        })?;
        self.tally
            .add_hour(&self.rule, price, &self.injected, &self.withdrawn)?;
        self.injected.fill(0);
        self.withdrawn.fill(0);
        self.steps = 0;
        self.hour += 1;
        Ok(())
    }
}

/// The year's CER by the ledger's integer rule over the supply-point readings of `intervals`
/// (members in scenario order; a last partial hour stays open, as in the simulator). `None`
/// when the community is not a CER.
pub fn cer_tally(
    result: &SimResult,
    intervals: &[IntervalInput],
) -> Result<Option<CerTally>, SettleError> {
    let Some(mut hours) = CerHours::new(
        result.community.cer_params.as_ref(),
        &result.zonal_hourly_eur_per_mwh,
        result.prosumers.len(),
        result.grid.steps_per_hour(),
    )?
    else {
        return Ok(None);
    };
    let position: std::collections::BTreeMap<&str, usize> = result
        .prosumers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    for iv in intervals {
        for r in &iv.readings {
            if let (DeviceType::SupplyPoint, Some(&m)) = (r.device, position.get(r.member.as_str()))
            {
                hours.add(m, r.produced_wh, r.consumed_wh);
            }
        }
        hours.end_interval()?;
    }
    Ok(Some(hours.tally))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_conserves_energy_and_never_exceeds_either_side() {
        // Buyers a = 0, b = 1; sellers x = 2, y = 3.
        let mut buyers = vec![(0, 700), (1, 300)];
        let mut sellers = vec![(2, 400), (3, 650)];
        let mut t = Vec::new();
        pair_trades(&mut buyers, &mut sellers, 1, &mut t);
        let pairs: Vec<(u32, u32, u64)> =
            t.iter().map(|t| (t.buyer, t.seller, t.energy_wh)).collect();
        assert_eq!(pairs, [(0, 2, 400), (0, 3, 300), (1, 3, 300)]);
        assert_eq!(
            sellers[1].1, 50,
            "what buyers did not take stays with the seller"
        );
    }

    #[test]
    fn market_prices_map_exactly_and_refuse_negatives() {
        // 123.456 EUR/MWh = 0.123456 EUR/kWh = 123,456,000 nano-euro per kWh.
        assert_eq!(market_price(123_456, (0, "a", "p")).ok(), Some(123_456_000));
        let e = market_price(-1, (7, "flat", "trade price"))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("step 7") && e.contains("'flat'")));
    }

    #[test]
    fn negative_flows_are_errors_naming_step_and_member() {
        let e = step_wh(-0.01, 1.0, (12, "school", "pv"))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.is_some_and(|e| e.contains("step 12") && e.contains("'school'") && e.contains("pv"))
        );
        // Float noise below half a Wh rounds to zero, not to an error.
        assert_eq!(step_wh(-1e-12, 1.0, (0, "a", "pv")).ok(), Some(0));
    }
}
