//! Every member's flows in blocks of steps, and what a run keeps of them when it does not keep
//! the series: per member its year's energy sums, per step the community's sums.
//!
//! A [`MemberBlock`] holds a block of consecutive steps of every member's [`Flow`]s (and the
//! state of charge of the members with a battery, and the market's trades of its steps when
//! the run keeps them). Blocks are made two ways with the same layout: from kept series
//! ([`MemberBlock::fill_from_series`]: the wide layout's members, a kept year's settlement)
//! and while the year runs ([`BlockSink`], a city: the members' series are handed to a
//! consumer block by block and never held for the year; `scg-cli` encodes members.parquet
//! and, with a ledger, settles each block as it comes).
//! [`MemberTotals::add_block`] is the one rule that turns blocks into the per-member
//! [`EnergySums`] and the community's per-step sums, whichever way the blocks were made, so
//! the two runs report the same bits.
//!
//! Never does I/O: a consumer (`scg-report`'s `members.parquet` writer, `scg-settle`'s
//! settlement, through `scg-cli`) receives each block.

use crate::ComponentError;
use crate::SimError;
use crate::battery::Storage;
use crate::market_stage::MarketTrade;
use crate::prepare::EvYear;
use crate::year::{EnergySums, FlowSeries, FlowSink, StepRecord};
use scg_ev::fleet::EvStepPower;

/// A member's flows, in the column order of `members.parquet` and `community.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Flow {
    Load,
    Pv,
    Wind,
    BatteryCharge,
    BatteryDischarge,
    EvCharge,
    Swap,
    V2g,
    P2pImport,
    P2pExport,
    GridImport,
    GridExport,
    Excess,
    Unmet,
}

/// The metered devices of a member besides its supply point: those it has installed. A
/// settlement registers a meter for each before the year's first reading (a device installed
/// but idle all year keeps a silent meter), so they are known before the year runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meters {
    /// PV arrays of positive capacity.
    pub pv: bool,
    /// Wind turbines.
    pub wind: bool,
    /// A battery with its converter.
    pub battery: bool,
    /// An EV site with charge points (V2G goes through the same meter; a swap station's
    /// energy is plain consumption at the supply point).
    pub ev_charger: bool,
}

impl Meters {
    /// The meters of a member with `assets`.
    pub fn of(assets: &crate::assets::ProsumerAssets) -> Self {
        Self {
            pv: assets.pv_kwp() > 0.0,
            wind: assets.turbines.iter().any(|t| t.turbine.count > 0),
            battery: assets.battery.is_some() && assets.converter.is_some(),
            ev_charger: assets.ev.as_ref().is_some_and(|f| f.charge_points > 0),
        }
    }
}

/// From this many members on, `scg simulate` writes the city layout by default (and, without
/// a ledger, streams the members' series: the run estimate, `crate::check`, counts on it).
pub const CITY_LAYOUT_MIN_MEMBERS: usize = 50;

/// How many [`Flow`]s there are.
pub const FLOWS: usize = 14;

/// The flows' column names (kW), in [`Flow`] order.
pub const FLOW_COLUMNS: [&str; FLOWS] = [
    "load_kw",
    "pv_kw",
    "wind_kw",
    "battery_charge_kw",
    "battery_discharge_kw",
    "ev_charge_kw",
    "swap_kw",
    "v2g_kw",
    "p2p_import_kw",
    "p2p_export_kw",
    "grid_import_kw",
    "grid_export_kw",
    "excess_kw",
    "unmet_kw",
];

/// One block of steps `first_step .. first_step + steps` of every member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberBlock {
    pub first_step: usize,
    pub steps: usize,
    /// Per [`Flow`]: `steps × members` values, step-major (member `i`'s step
    /// `first_step + k` at `k * members + i`), kW: the order the year makes them in and a
    /// settlement reads them in; [`member_major`] turns a column member-major.
    pub columns: [Vec<f64>; FLOWS],
    /// Whether each member has a battery (and so a state of charge).
    pub has_battery: Vec<bool>,
    /// The state of charge at the end of each step, percent, of the members with a battery
    /// only, step-major as `columns` (the `j`-th of them at `k * batteries + j`).
    pub soc_pct: Vec<f64>,
    /// The market's P2P trades of the block's steps, in step and clearing order: filled when
    /// the year keeps its trades (a streamed run that settles a ledger), empty otherwise.
    pub trades: Vec<MarketTrade>,
}

/// One member's kept series, as [`MemberBlock::fill_from_series`] reads them.
#[derive(Debug, Clone, Copy)]
pub struct MemberSeries<'a> {
    /// The load the member drew (the home agent's change applied), kW per step.
    pub load_kw: &'a [f64],
    pub flows: &'a FlowSeries,
    pub ev: &'a EvYear,
}

impl MemberBlock {
    /// Shape the block for steps `first_step .. first_step + steps` of `members` members,
    /// keeping the buffers' capacity. The values are left as they were (the callers write
    /// every one of them): a recycled block is not zeroed for nothing.
    fn reset(&mut self, first_step: usize, steps: usize, has_battery: &[bool]) {
        let members = has_battery.len();
        self.first_step = first_step;
        self.steps = steps;
        for c in &mut self.columns {
            c.resize(members * steps, 0.0);
        }
        self.has_battery.clear();
        self.has_battery.extend_from_slice(has_battery);
        let batteries = has_battery.iter().filter(|b| **b).count();
        self.soc_pct.resize(batteries * steps, 0.0);
        self.trades.clear();
    }

    /// How many members the block holds.
    pub fn members(&self) -> usize {
        self.has_battery.len()
    }

    /// Fill the block with steps `first_step .. first_step + steps` of kept series (an empty
    /// series reads as zeros, [`FlowSeries::at`]).
    pub fn fill_from_series(
        &mut self,
        members: &[MemberSeries<'_>],
        first_step: usize,
        steps: usize,
    ) {
        let has_battery: Vec<bool> = members
            .iter()
            .map(|m| !m.flows.battery_soc_pct.is_empty())
            .collect();
        self.reset(first_step, steps, &has_battery);
        let (width, batteries) = (members.len(), self.soc_pct.len() / steps.max(1));
        let mut battery = 0;
        for (i, m) in members.iter().enumerate() {
            let f = m.flows;
            let series: [&[f64]; FLOWS] = [
                m.load_kw,
                &f.pv_kw,
                &f.wind_kw,
                &f.battery_in_kw,
                &f.battery_out_kw,
                &m.ev.charge_kw,
                &m.ev.swap_kw,
                &f.v2g_kw,
                &f.p2p_import_kw,
                &f.p2p_export_kw,
                &f.grid_import_kw,
                &f.grid_export_kw,
                &f.excess_kw,
                &f.unmet_kw,
            ];
            for (column, values) in self.columns.iter_mut().zip(series) {
                for k in 0..steps {
                    column[k * width + i] = FlowSeries::at(values, first_step + k);
                }
            }
            if has_battery[i] {
                for k in 0..steps {
                    self.soc_pct[k * batteries + battery] =
                        FlowSeries::at(&f.battery_soc_pct, first_step + k);
                }
                battery += 1;
            }
        }
    }

    /// Member `i`'s value of `flow` at the block's `k`-th step.
    #[inline]
    pub fn at(&self, flow: Flow, i: usize, k: usize) -> f64 {
        self.columns[flow as usize][k * self.members() + i]
    }
}

/// One member's year, summed step by step in the order and from the start value (-0.0, what
/// `Iterator::sum` of f64 starts from) of a sum over its kept series.
#[derive(Debug, Clone, Copy)]
struct EnergyAcc {
    sums: [f64; FLOWS],
    demand: f64,
    ev_demand: f64,
    peak_unmet_kw: f64,
}

impl EnergyAcc {
    /// The year's sums, kWh. `fleet`: whether the member has an EV fleet (without one its EV
    /// and V2G energy are an empty series' sum, -0.0, as they always were reported).
    fn finish(&self, dt_h: f64, fleet: bool) -> EnergySums {
        let s = |f: Flow| self.sums[f as usize] * dt_h;
        EnergySums {
            load_kwh: self.demand * dt_h,
            ev_kwh: if fleet { self.ev_demand * dt_h } else { -0.0 },
            v2g_kwh: if fleet { s(Flow::V2g) } else { -0.0 },
            pv_kwh: s(Flow::Pv),
            wind_kwh: s(Flow::Wind),
            battery_in_kwh: s(Flow::BatteryCharge),
            battery_out_kwh: s(Flow::BatteryDischarge),
            p2p_import_kwh: s(Flow::P2pImport),
            p2p_export_kwh: s(Flow::P2pExport),
            grid_import_kwh: s(Flow::GridImport),
            grid_export_kwh: s(Flow::GridExport),
            excess_kwh: s(Flow::Excess),
            unmet_kwh: s(Flow::Unmet),
            peak_unmet_kw: self.peak_unmet_kw,
        }
    }
}

/// What a run keeps of its members' flows without their series: each member's energy over the
/// year and the community's sum of each flow per step.
///
/// The members' running sums are kept column-wise (one vector per flow, indexed by member) so
/// that a step adds a whole row of members flow by flow, the way the block holds them.
#[derive(Debug, Clone)]
pub struct MemberTotals {
    fleet: Vec<bool>,
    /// Per [`Flow`], per member: the running sum of its flow (kW-steps).
    sums: [Vec<f64>; FLOWS],
    /// Per member: the meter's demand (the load plus the fleet's), the fleet's charge and
    /// swaps, the highest unmet power.
    demand: Vec<f64>,
    ev_demand: Vec<f64>,
    peak_unmet_kw: Vec<f64>,
    /// Per [`Flow`], per step: the sum over the members, kW.
    sums_kw: [Vec<f64>; FLOWS],
}

impl MemberTotals {
    /// For members with (`true`) or without an EV fleet, over `steps` steps.
    pub fn new(fleet: Vec<bool>, steps: usize) -> Self {
        let n = fleet.len();
        Self {
            sums: std::array::from_fn(|_| vec![-0.0; n]),
            demand: vec![-0.0; n],
            ev_demand: vec![-0.0; n],
            peak_unmet_kw: vec![0.0; n],
            fleet,
            sums_kw: std::array::from_fn(|_| vec![0.0; steps]),
        }
    }

    /// Add a block (blocks must come in step order).
    pub fn add_block(&mut self, block: &MemberBlock) {
        let members = self.fleet.len();
        for k in 0..block.steps {
            let at = k * members..(k + 1) * members;
            self.add_row(
                block.first_step + k,
                std::array::from_fn(|f| &block.columns[f][at.clone()]),
            );
        }
    }

    /// The one rule: the members' flows at `step` (`rows[f]`: flow `f` of every member, in
    /// member order) go into each member's year and the step's sums.
    #[inline]
    fn add_row(&mut self, step: usize, rows: [&[f64]; FLOWS]) {
        let n = self.fleet.len();
        assert!(
            rows.iter().all(|r| r.len() == n),
            "a step's row must hold every member"
        );
        // The step's sums member by member, as a sum over the members' series (0 + m0 + m1
        // + ...): every flow's chain advances at once, so the additions overlap.
        let mut s: [f64; FLOWS] = std::array::from_fn(|f| self.sums_kw[f][step]);
        for i in 0..n {
            for (sum, row) in s.iter_mut().zip(&rows) {
                *sum += row[i];
            }
        }
        for (sums, x) in self.sums_kw.iter_mut().zip(s) {
            sums[step] = x;
        }
        // Each member's year, a flow at a time across the members.
        for (acc, row) in self.sums.iter_mut().zip(&rows) {
            for (a, x) in acc.iter_mut().zip(row.iter()) {
                *a += x;
            }
        }
        let flows = rows[Flow::Load as usize]
            .iter()
            .zip(rows[Flow::EvCharge as usize])
            .zip(rows[Flow::Swap as usize])
            .zip(rows[Flow::Unmet as usize]);
        let members = self
            .demand
            .iter_mut()
            .zip(&mut self.ev_demand)
            .zip(&mut self.peak_unmet_kw)
            .zip(&self.fleet);
        for ((((demand, ev_demand), peak), fleet), (((load, charge), swap), unmet)) in
            members.zip(flows)
        {
            let ev = charge + swap;
            // The meter's demand: the load plus the fleet's (a member without one: the load).
            // Both computed, one kept: no branch to mispredict member by member.
            let with_fleet = load + ev;
            *demand += if *fleet { with_fleet } else { *load };
            *ev_demand += ev;
            *peak = peak.max(*unmet);
        }
    }

    /// Each member's year (kWh), and the community's per-step sums of each flow (kW).
    pub fn finish(self, dt_h: f64) -> (Vec<EnergySums>, [Vec<f64>; FLOWS]) {
        let energy = (0..self.fleet.len())
            .map(|i| {
                let acc = EnergyAcc {
                    sums: std::array::from_fn(|f| self.sums[f][i]),
                    demand: self.demand[i],
                    ev_demand: self.ev_demand[i],
                    peak_unmet_kw: self.peak_unmet_kw[i],
                };
                acc.finish(dt_h, self.fleet[i])
            })
            .collect();
        (energy, self.sums_kw)
    }
}

/// Steps per block of `members` members: about [`BLOCK_ROWS`] member-steps (at least one step,
/// at most the year).
pub fn block_steps(members: usize, steps: usize) -> usize {
    (BLOCK_ROWS / members.max(1)).clamp(1, steps.max(1))
}

/// Member-steps per block (and per row group of `members.parquet`): about 50 MB of flows.
pub const BLOCK_ROWS: usize = 1 << 19;

/// What a consumer of the blocks does with each (e.g. encode a row group); an error stops the
/// year. The consumer may take the block's buffers (e.g. `std::mem::swap` it with a block it
/// is done with, so that a city's year recycles a few blocks instead of allocating one per
/// block): the sink resets whatever it is left with before filling the next block.
pub type BlockConsumer<'a> = dyn FnMut(&mut MemberBlock) -> Result<(), SimError> + 'a;

/// Members a [`member_major`] tile spans: one tile's member-major runs (`TILE_MEMBERS` × the
/// block's steps, about 27 kB at a city's 52 steps) stay in cache while its rows are read.
const TILE_MEMBERS: usize = 64;

/// A step-major column of a block (`steps` rows, each `width = values.len() / steps` members
/// long) into `out`, member-major: member `i`'s run of steps at `i * steps ..`. In tiles of
/// [`TILE_MEMBERS`] members, each row read as one run per tile.
pub fn member_major(values: &[f64], steps: usize, out: &mut Vec<f64>) {
    let width = values.len() / steps.max(1);
    // A flow no member has in the block (a city without wind, batteries or swaps: half its
    // columns) is a zeroed `out`, bit for bit (+0.0; a -0.0 is transposed). Otherwise every
    // value of `out` is written below, and a recycled `out` is not zeroed first.
    let zero = all_positive_zero(values);
    if zero || width * steps != values.len() {
        out.clear();
    }
    out.resize(values.len(), 0.0);
    if zero {
        return;
    }
    for i0 in (0..width).step_by(TILE_MEMBERS) {
        let i1 = width.min(i0 + TILE_MEMBERS);
        for k in 0..steps {
            let row = &values[k * width + i0..k * width + i1];
            for (i, x) in (i0..i1).zip(row) {
                out[i * steps + k] = *x;
            }
        }
    }
}

/// Whether every value is +0.0 (bit for bit: a -0.0 is not): a flow no member has in a
/// block. Sixteen values at a time, so the scan runs at the memory's speed.
pub fn all_positive_zero(values: &[f64]) -> bool {
    values
        .chunks(16)
        .all(|c| c.iter().fold(0u64, |bits, v| bits | v.to_bits()) == 0)
}

/// A [`FlowSink`] that writes each step's flows into a [`MemberBlock`] (step-major: each
/// flow's row of members written in one sequential run), adds the step to the
/// [`MemberTotals`], and when the block is full hands it to the consumer.
pub struct BlockSink<'c> {
    fleet: Vec<bool>,
    has_battery: Vec<bool>,
    steps: usize,
    block_steps: usize,
    block: MemberBlock,
    batteries: usize,
    totals: MemberTotals,
    consumer: &'c mut BlockConsumer<'c>,
}

impl std::fmt::Debug for BlockSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockSink")
            .field("steps", &self.steps)
            .field("block_steps", &self.block_steps)
            .finish_non_exhaustive()
    }
}

/// The fixed inputs of a [`BlockSink`].
#[derive(Debug, Clone)]
pub struct BlockSetup {
    pub fleet: Vec<bool>,
    pub has_battery: Vec<bool>,
    pub steps: usize,
    pub block_steps: usize,
}

impl<'c> BlockSink<'c> {
    pub fn new(setup: BlockSetup, consumer: &'c mut BlockConsumer<'c>) -> Self {
        let block_steps = setup.block_steps.max(1);
        let mut block = MemberBlock::default();
        block.reset(0, block_steps.min(setup.steps), &setup.has_battery);
        let batteries = setup.has_battery.iter().filter(|b| **b).count();
        Self {
            totals: MemberTotals::new(setup.fleet.clone(), setup.steps),
            fleet: setup.fleet,
            has_battery: setup.has_battery,
            steps: setup.steps,
            block_steps,
            block,
            batteries,
            consumer,
        }
    }

    /// The totals, once every step was recorded.
    pub fn finish(self) -> MemberTotals {
        self.totals
    }

    /// The block's row of `step`: its first index in each column.
    fn row(&self, step: usize) -> usize {
        (step - self.block.first_step) * self.has_battery.len()
    }
}

impl FlowSink for BlockSink<'_> {
    fn record(&mut self, r: &StepRecord<'_>) -> Result<(), ComponentError> {
        let (members, row) = (self.has_battery.len(), self.row(r.step));
        let c = &mut self.block.columns;
        let values = r.inputs.iter().zip(r.flows);
        for (i, (p, f)) in values.enumerate().take(members) {
            let at = row + i;
            c[Flow::Load as usize][at] = p.load_kw;
            c[Flow::Pv as usize][at] = p.pv_kw;
            c[Flow::Wind as usize][at] = p.wind_kw;
            c[Flow::BatteryCharge as usize][at] = f.battery_in_kw;
            c[Flow::BatteryDischarge as usize][at] = f.battery_out_kw;
            c[Flow::P2pImport as usize][at] = f.p2p_import_kw;
            c[Flow::P2pExport as usize][at] = f.p2p_export_kw;
            c[Flow::GridImport as usize][at] = f.grid_import_kw;
            c[Flow::GridExport as usize][at] = f.grid_export_kw;
            c[Flow::Excess as usize][at] = f.excess_kw;
            c[Flow::Unmet as usize][at] = f.unmet_kw;
        }
        let first = (r.step - self.block.first_step) * self.batteries;
        let soc = &mut self.block.soc_pct[first..first + self.batteries];
        let units = r.batteries.iter().flatten();
        for (s, unit) in soc.iter_mut().zip(units) {
            *s = unit.battery.soc() * 100.0;
        }
        Ok(())
    }

    fn record_trades(&mut self, _step: usize, trades: &[MarketTrade]) {
        self.block.trades.extend_from_slice(trades);
    }

    fn record_ev(&mut self, step: usize, ev: &[EvStepPower]) -> Result<(), SimError> {
        let (members, row) = (self.has_battery.len(), self.row(step));
        let c = &mut self.block.columns;
        for (i, (p, fleet)) in ev.iter().zip(&self.fleet).enumerate().take(members) {
            // The EV flows are 0 for a member without a fleet.
            let (charge, swap, v2g) = if *fleet {
                (p.charge_kw, p.swap_kw, p.v2g_kw)
            } else {
                (0.0, 0.0, 0.0)
            };
            c[Flow::EvCharge as usize][row + i] = charge;
            c[Flow::Swap as usize][row + i] = swap;
            c[Flow::V2g as usize][row + i] = v2g;
        }
        // The step's row was just written: it is still in cache.
        let at = row..row + members;
        self.totals
            .add_row(step, std::array::from_fn(|f| &c[f][at.clone()]));
        if step + 1 < self.block.first_step + self.block.steps {
            return Ok(());
        }
        (self.consumer)(&mut self.block)?;
        let next = step + 1;
        if next < self.steps {
            let len = self.block_steps.min(self.steps - next);
            self.block.reset(next, len, &self.has_battery);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::community::ProsumerInterval;
    use crate::dispatch::StepFlows;

    /// A distinct value per flow, member and step (a few of them -0.0 and 0.0).
    fn value(flow: usize, i: usize, t: usize) -> f64 {
        match (flow + 3 * i + 7 * t) % 11 {
            0 => 0.0,
            1 => -0.0,
            r => (flow * 1000 + i * 100 + t) as f64 * 0.25 + r as f64,
        }
    }

    /// Feed `members` members (member 1 with a fleet) over `steps` steps in blocks of
    /// `block_steps` into a [`BlockSink`] whose consumer keeps each block; `recycle`: the consumer
    /// takes the block and leaves a used one, full of NaN and of another shape, in its place.
    fn stream(
        members: usize,
        steps: usize,
        block_steps: usize,
        recycle: bool,
    ) -> (Vec<MemberBlock>, MemberTotals) {
        let fleet: Vec<bool> = (0..members).map(|i| i == 1).collect();
        let setup = BlockSetup {
            fleet: fleet.clone(),
            has_battery: vec![false; members],
            steps,
            block_steps,
        };
        let mut blocks = Vec::new();
        let mut consumer = |b: &mut MemberBlock| {
            if recycle {
                let mut used = MemberBlock::default();
                used.reset(0, 3, &[false; 5]);
                for c in &mut used.columns {
                    c.fill(f64::NAN);
                }
                blocks.push(std::mem::replace(b, used));
            } else {
                blocks.push(b.clone());
            }
            Ok(())
        };
        let mut sink = BlockSink::new(setup, &mut consumer);
        let batteries = vec![None; members];
        for t in 0..steps {
            let v = |f: Flow, i: usize| value(f as usize, i, t);
            let flows: Vec<StepFlows> = (0..members)
                .map(|i| StepFlows {
                    load_kw: v(Flow::Load, i),
                    renewable_kw: 0.0,
                    battery_in_kw: v(Flow::BatteryCharge, i),
                    battery_out_kw: v(Flow::BatteryDischarge, i),
                    p2p_import_kw: v(Flow::P2pImport, i),
                    p2p_export_kw: v(Flow::P2pExport, i),
                    grid_import_kw: v(Flow::GridImport, i),
                    grid_export_kw: v(Flow::GridExport, i),
                    excess_kw: v(Flow::Excess, i),
                    unmet_kw: v(Flow::Unmet, i),
                })
                .collect();
            let inputs: Vec<ProsumerInterval> = (0..members)
                .map(|i| ProsumerInterval {
                    load_kw: v(Flow::Load, i),
                    pv_kw: v(Flow::Pv, i),
                    wind_kw: v(Flow::Wind, i),
                })
                .collect();
            let ev: Vec<EvStepPower> = (0..members)
                .map(|i| EvStepPower {
                    charge_kw: v(Flow::EvCharge, i),
                    v2g_kw: v(Flow::V2g, i),
                    swap_kw: v(Flow::Swap, i),
                    ..EvStepPower::default()
                })
                .collect();
            let record = StepRecord {
                step: t,
                inputs: &inputs,
                flows: &flows,
                batteries: &batteries,
            };
            sink.record(&record).unwrap();
            sink.record_ev(t, &ev).unwrap();
        }
        let totals = sink.finish();
        (blocks, totals)
    }

    #[test]
    fn member_major_puts_each_members_run_together() {
        // 3 steps of 150 members: more than two tiles, the last one partial.
        let (steps, width) = (3, 150);
        let values: Vec<f64> = (0..steps * width).map(|x| x as f64).collect();
        let mut out = vec![f64::NAN; 7];
        member_major(&values, steps, &mut out);
        assert_eq!(out.len(), values.len());
        for i in 0..width {
            for k in 0..steps {
                assert_eq!(out[i * steps + k], values[k * width + i]);
            }
        }
        member_major(&[], 0, &mut out);
        assert!(out.is_empty());
        // All +0.0 but one -0.0: its bits are kept where they belong.
        let mut zeros = vec![0.0; steps * width];
        zeros[2 * width + 7] = -0.0;
        member_major(&zeros, steps, &mut out);
        let bits: Vec<u64> = out.iter().map(|v| v.to_bits()).collect();
        let expected: Vec<u64> = (0..steps * width)
            .map(|j| {
                if j == 7 * steps + 2 {
                    (-0.0f64).to_bits()
                } else {
                    0
                }
            })
            .collect();
        assert_eq!(bits, expected);
        member_major(&vec![0.0; steps * width], steps, &mut out);
        assert!(out.len() == steps * width && out.iter().all(|v| v.to_bits() == 0));
    }

    #[test]
    fn streamed_blocks_hold_every_value_in_place_recycled_or_not() {
        // 37 steps in blocks of 20: a block of a full tile and a partial one, then a block
        // of a single partial tile.
        let (members, steps) = (4, 37);
        for recycle in [false, true] {
            let (blocks, totals) = stream(members, steps, 20, recycle);
            assert_eq!(blocks.len(), 2);
            let mut first = 0;
            for b in &blocks {
                assert_eq!((b.first_step, b.members()), (first, members));
                for f in 0..FLOWS {
                    for i in 0..members {
                        for k in 0..b.steps {
                            let want = if i != 1 && matches!(f, 5..=7) {
                                0.0 // the EV flows of a member without a fleet
                            } else {
                                value(f, i, first + k)
                            };
                            let got = b.columns[f][k * members + i];
                            assert_eq!(got.to_bits(), want.to_bits(), "flow {f} member {i}");
                        }
                    }
                }
                first += b.steps;
            }
            assert_eq!(first, steps);
            // The totals are those of the blocks, bit for bit.
            let mut again = MemberTotals::new((0..members).map(|i| i == 1).collect(), steps);
            for b in &blocks {
                again.add_block(b);
            }
            let (a, a_sums) = totals.finish(0.25);
            let (b, b_sums) = again.finish(0.25);
            assert_eq!(a, b);
            for (x, y) in a_sums.iter().zip(&b_sums) {
                assert!(x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()));
            }
        }
    }
}
