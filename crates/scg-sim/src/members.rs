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
use crate::dispatch::{BatteryUnit, StepFlows};
use crate::market_stage::MarketTrade;
use crate::prepare::EvYear;
use crate::year::{EnergySums, FlowSeries, FlowSink};
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
    /// Per [`Flow`]: `members × steps` values, member-major (member `i`'s step
    /// `first_step + k` at `i * steps + k`), kW.
    pub columns: [Vec<f64>; FLOWS],
    /// Whether each member has a battery (and so a state of charge).
    pub has_battery: Vec<bool>,
    /// The state of charge at the end of each step, percent, of the members with a battery
    /// only, member-major as `columns`.
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
                let out = &mut column[i * steps..(i + 1) * steps];
                for (k, o) in out.iter_mut().enumerate() {
                    *o = FlowSeries::at(values, first_step + k);
                }
            }
            if has_battery[i] {
                let out = &mut self.soc_pct[battery * steps..(battery + 1) * steps];
                for (k, o) in out.iter_mut().enumerate() {
                    *o = FlowSeries::at(&f.battery_soc_pct, first_step + k);
                }
                battery += 1;
            }
        }
    }

    /// Member `i`'s value of `flow` at the block's `k`-th step.
    #[inline]
    pub fn at(&self, flow: Flow, i: usize, k: usize) -> f64 {
        self.columns[flow as usize][i * self.steps + k]
    }
}

/// A running sum of one member's year, step by step, in the order and from the start value
/// (-0.0, what `Iterator::sum` of f64 starts from) of a sum over its kept series.
#[derive(Debug, Clone, Copy)]
struct EnergyAcc {
    sums: [f64; FLOWS],
    demand: f64,
    ev_demand: f64,
    peak_unmet_kw: f64,
}

impl Default for EnergyAcc {
    fn default() -> Self {
        Self {
            sums: [-0.0; FLOWS],
            demand: -0.0,
            ev_demand: -0.0,
            peak_unmet_kw: 0.0,
        }
    }
}

impl EnergyAcc {
    #[inline]
    fn add(&mut self, v: &[f64; FLOWS], fleet: bool) {
        for (s, x) in self.sums.iter_mut().zip(v) {
            *s += x;
        }
        let ev = v[Flow::EvCharge as usize] + v[Flow::Swap as usize];
        // The meter's demand: the load plus the fleet's (a member without one: the load).
        self.demand += if fleet {
            v[Flow::Load as usize] + ev
        } else {
            v[Flow::Load as usize]
        };
        self.ev_demand += ev;
        self.peak_unmet_kw = self.peak_unmet_kw.max(v[Flow::Unmet as usize]);
    }

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
#[derive(Debug, Clone)]
pub struct MemberTotals {
    members: Vec<EnergyAcc>,
    fleet: Vec<bool>,
    /// Per [`Flow`], per step: the sum over the members, kW.
    sums_kw: [Vec<f64>; FLOWS],
}

impl MemberTotals {
    /// For members with (`true`) or without an EV fleet, over `steps` steps.
    pub fn new(fleet: Vec<bool>, steps: usize) -> Self {
        Self {
            members: vec![EnergyAcc::default(); fleet.len()],
            fleet,
            sums_kw: std::array::from_fn(|_| vec![0.0; steps]),
        }
    }

    /// Add a block (blocks must come in step order).
    pub fn add_block(&mut self, block: &MemberBlock) {
        let steps = block.steps;
        let mut v = [0.0; FLOWS];
        for i in 0..self.members.len() {
            for k in 0..steps {
                for (f, x) in v.iter_mut().enumerate() {
                    *x = block.columns[f][i * steps + k];
                }
                self.add(i, block.first_step + k, &v);
            }
        }
    }

    /// Add the steps `first_step ..` of every member, step-major (`rows[k * members + i]`:
    /// member `i` at step `first_step + k`); steps must come in order. The same sums, bit for
    /// bit, as [`MemberTotals::add_block`] of a block holding them: each member's steps and each
    /// step's members are added in the same order.
    pub fn add_rows(&mut self, first_step: usize, rows: &[[f64; FLOWS]]) {
        let members = self.members.len();
        if members == 0 {
            return;
        }
        for (k, row) in rows.chunks_exact(members).enumerate() {
            for (i, v) in row.iter().enumerate() {
                self.add(i, first_step + k, v);
            }
        }
    }

    /// The one rule: member `i`'s flows `v` at `step` go into its year and the step's sums.
    #[inline]
    fn add(&mut self, i: usize, step: usize, v: &[f64; FLOWS]) {
        self.members[i].add(v, self.fleet[i]);
        // Member by member, as a sum over the members' series: 0 + m0 + m1 + ...
        for (sum, x) in self.sums_kw.iter_mut().zip(v) {
            sum[step] += x;
        }
    }

    /// Each member's year (kWh), and the community's per-step sums of each flow (kW).
    pub fn finish(self, dt_h: f64) -> (Vec<EnergySums>, [Vec<f64>; FLOWS]) {
        let energy = self
            .members
            .iter()
            .zip(&self.fleet)
            .map(|(acc, fleet)| acc.finish(dt_h, *fleet))
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

/// Steps a [`BlockSink`] stages step-major before writing them into its member-major block.
/// Written one step at a time, the block is hit at `members × flows` places a page apart each
/// step (a cache and TLB miss each); a tile of steps writes each member's values as runs of
/// `TILE_STEPS` neighbours (two cache lines).
const TILE_STEPS: usize = 16;

/// A [`FlowSink`] that stages steps in tiles of [`TILE_STEPS`] steps, writes each tile into a
/// [`MemberBlock`] and adds it to the [`MemberTotals`], and when the block is full hands it to
/// the consumer.
pub struct BlockSink<'a, 'c> {
    /// Each member's load, kW per step (the series the year is driven with: a member with a
    /// home agent is not streamed, see `engine`).
    loads: Vec<&'a [f64]>,
    fleet: Vec<bool>,
    has_battery: Vec<bool>,
    steps: usize,
    block_steps: usize,
    block: MemberBlock,
    /// The tile's steps, step-major: member `i` at the tile's step `r` at `r * members + i`.
    tile: Vec<[f64; FLOWS]>,
    /// The tile's states of charge, step-major, of the members with a battery.
    tile_soc_pct: Vec<f64>,
    batteries: usize,
    totals: MemberTotals,
    consumer: &'c mut BlockConsumer<'c>,
}

impl std::fmt::Debug for BlockSink<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockSink")
            .field("steps", &self.steps)
            .field("block_steps", &self.block_steps)
            .finish_non_exhaustive()
    }
}

/// The fixed inputs of a [`BlockSink`].
#[derive(Debug, Clone)]
pub struct BlockSetup<'a> {
    pub loads: Vec<&'a [f64]>,
    pub fleet: Vec<bool>,
    pub has_battery: Vec<bool>,
    pub steps: usize,
    pub block_steps: usize,
}

impl<'a, 'c> BlockSink<'a, 'c> {
    pub fn new(setup: BlockSetup<'a>, consumer: &'c mut BlockConsumer<'c>) -> Self {
        let block_steps = setup.block_steps.max(1);
        let mut block = MemberBlock::default();
        block.reset(0, block_steps.min(setup.steps), &setup.has_battery);
        let members = setup.has_battery.len();
        let batteries = setup.has_battery.iter().filter(|b| **b).count();
        Self {
            totals: MemberTotals::new(setup.fleet.clone(), setup.steps),
            loads: setup.loads,
            fleet: setup.fleet,
            has_battery: setup.has_battery,
            steps: setup.steps,
            block_steps,
            block,
            tile: vec![[0.0; FLOWS]; TILE_STEPS * members],
            tile_soc_pct: vec![0.0; TILE_STEPS * batteries],
            batteries,
            consumer,
        }
    }

    /// The totals, once every step was recorded.
    pub fn finish(self) -> MemberTotals {
        self.totals
    }

    /// Write the tile's first `rows` steps, which end at the block's step `k`, into the block
    /// (each member's steps as one run per flow) and add them to the totals.
    fn flush_tile(&mut self, k: usize, rows: usize) {
        let (members, batteries) = (self.has_battery.len(), self.batteries);
        let b = &mut self.block;
        let (len, k0) = (b.steps, k + 1 - rows);
        for i in 0..members {
            for r in 0..rows {
                let v = &self.tile[r * members + i];
                for (column, x) in b.columns.iter_mut().zip(v) {
                    column[i * len + k0 + r] = *x;
                }
            }
        }
        for j in 0..batteries {
            for r in 0..rows {
                b.soc_pct[j * len + k0 + r] = self.tile_soc_pct[r * batteries + j];
            }
        }
        self.totals
            .add_rows(b.first_step + k0, &self.tile[..rows * members]);
    }
}

impl FlowSink for BlockSink<'_, '_> {
    fn record(
        &mut self,
        step: usize,
        flows: &[StepFlows],
        pv_kw: &[f64],
        wind_kw: &[f64],
        batteries: &[Option<BatteryUnit>],
    ) -> Result<(), ComponentError> {
        let (members, r) = (
            self.has_battery.len(),
            (step - self.block.first_step) % TILE_STEPS,
        );
        let row = &mut self.tile[r * members..(r + 1) * members];
        let soc = &mut self.tile_soc_pct[r * self.batteries..(r + 1) * self.batteries];
        let mut battery = 0;
        for (i, (f, v)) in flows.iter().zip(row.iter_mut()).enumerate() {
            let mut values = [0.0; FLOWS];
            values[Flow::Load as usize] = FlowSeries::at(self.loads[i], step);
            values[Flow::Pv as usize] = pv_kw[i];
            values[Flow::Wind as usize] = wind_kw[i];
            values[Flow::BatteryCharge as usize] = f.battery_in_kw;
            values[Flow::BatteryDischarge as usize] = f.battery_out_kw;
            values[Flow::P2pImport as usize] = f.p2p_import_kw;
            values[Flow::P2pExport as usize] = f.p2p_export_kw;
            values[Flow::GridImport as usize] = f.grid_import_kw;
            values[Flow::GridExport as usize] = f.grid_export_kw;
            values[Flow::Excess as usize] = f.excess_kw;
            values[Flow::Unmet as usize] = f.unmet_kw;
            // The EV flows stay 0 for a member without a fleet ([`FlowSink::record_ev`]).
            *v = values;
            if let Some(unit) = &batteries[i] {
                soc[battery] = unit.battery.soc() * 100.0;
                battery += 1;
            }
        }
        Ok(())
    }

    fn record_trades(&mut self, _step: usize, trades: &[MarketTrade]) {
        self.block.trades.extend_from_slice(trades);
    }

    fn record_ev(&mut self, step: usize, ev: &[EvStepPower]) -> Result<(), SimError> {
        let (len, k) = (self.block.steps, step - self.block.first_step);
        let members = self.has_battery.len();
        let r = k % TILE_STEPS;
        let row = &mut self.tile[r * members..(r + 1) * members];
        for ((p, fleet), v) in ev.iter().zip(&self.fleet).zip(row.iter_mut()) {
            if *fleet {
                v[Flow::EvCharge as usize] = p.charge_kw;
                v[Flow::Swap as usize] = p.swap_kw;
                v[Flow::V2g as usize] = p.v2g_kw;
            }
        }
        if r + 1 == TILE_STEPS || k + 1 == len {
            self.flush_tile(k, r + 1);
        }
        if k + 1 < len {
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
        let loads: Vec<Vec<f64>> = (0..members)
            .map(|i| {
                (0..steps)
                    .map(|t| value(Flow::Load as usize, i, t))
                    .collect()
            })
            .collect();
        let fleet: Vec<bool> = (0..members).map(|i| i == 1).collect();
        let setup = BlockSetup {
            loads: loads.iter().map(Vec::as_slice).collect(),
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
            let pv: Vec<f64> = (0..members).map(|i| v(Flow::Pv, i)).collect();
            let wind: Vec<f64> = (0..members).map(|i| v(Flow::Wind, i)).collect();
            let ev: Vec<EvStepPower> = (0..members)
                .map(|i| EvStepPower {
                    charge_kw: v(Flow::EvCharge, i),
                    v2g_kw: v(Flow::V2g, i),
                    swap_kw: v(Flow::Swap, i),
                    ..EvStepPower::default()
                })
                .collect();
            sink.record(t, &flows, &pv, &wind, &batteries).unwrap();
            sink.record_ev(t, &ev).unwrap();
        }
        let totals = sink.finish();
        (blocks, totals)
    }

    #[test]
    fn tiled_blocks_hold_every_value_in_place_recycled_or_not() {
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
                            let got = b.columns[f][i * b.steps + k];
                            assert_eq!(got.to_bits(), want.to_bits(), "flow {f} member {i}");
                        }
                    }
                }
                first += b.steps;
            }
            assert_eq!(first, steps);
            // The totals staged tile by tile are those of the blocks, bit for bit.
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
