//! Every member's flows in blocks of steps, and what a run keeps of them when it does not keep
//! the series: per member its year's energy sums, per step the community's sums.
//!
//! A [`MemberBlock`] holds a block of consecutive steps of every member's [`Flow`]s (and the
//! state of charge of the members with a battery). Blocks are made two ways with the same
//! layout: from kept series ([`MemberBlock::fill_from_series`], `scg simulate` with a ledger,
//! the wide layout) and while the year runs ([`BlockSink`], a city without a ledger: the
//! members' series are handed to a consumer block by block and never held for the year).
//! [`MemberTotals::add_block`] is the one rule that turns blocks into the per-member
//! [`EnergySums`] and the community's per-step sums, whichever way the blocks were made, so
//! the two runs report the same bits.
//!
//! Never does I/O: a consumer (`scg-report`'s `members.parquet` writer, through `scg-cli`)
//! receives each block.

use crate::ComponentError;
use crate::SimError;
use crate::battery::Storage;
use crate::dispatch::{BatteryUnit, StepFlows};
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
    /// Clear the block for steps `first_step .. first_step + steps` of `members` members,
    /// every value 0, keeping the buffers' capacity.
    fn reset(&mut self, first_step: usize, steps: usize, has_battery: &[bool]) {
        let members = has_battery.len();
        self.first_step = first_step;
        self.steps = steps;
        for c in &mut self.columns {
            c.clear();
            c.resize(members * steps, 0.0);
        }
        self.has_battery.clear();
        self.has_battery.extend_from_slice(has_battery);
        self.soc_pct.clear();
        let batteries = has_battery.iter().filter(|b| **b).count();
        self.soc_pct.resize(batteries * steps, 0.0);
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
        for (i, (acc, fleet)) in self.members.iter_mut().zip(&self.fleet).enumerate() {
            for k in 0..steps {
                for (f, x) in v.iter_mut().enumerate() {
                    *x = block.columns[f][i * steps + k];
                }
                acc.add(&v, *fleet);
                // Member by member, as a sum over the members' series: 0 + m0 + m1 + ...
                for (sum, x) in self.sums_kw.iter_mut().zip(&v) {
                    sum[block.first_step + k] += x;
                }
            }
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
/// year.
pub type BlockConsumer<'a> = dyn FnMut(&MemberBlock) -> Result<(), SimError> + 'a;

/// A [`FlowSink`] that fills a [`MemberBlock`] step by step from the community step's outcome
/// and, when the block is full, adds it to the [`MemberTotals`] and hands it to the consumer.
pub struct BlockSink<'a, 'c> {
    /// Each member's load, kW per step (the series the year is driven with: a member with a
    /// home agent is not streamed, see `engine`).
    loads: Vec<&'a [f64]>,
    fleet: Vec<bool>,
    has_battery: Vec<bool>,
    steps: usize,
    block_steps: usize,
    block: MemberBlock,
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
        Self {
            totals: MemberTotals::new(setup.fleet.clone(), setup.steps),
            loads: setup.loads,
            fleet: setup.fleet,
            has_battery: setup.has_battery,
            steps: setup.steps,
            block_steps,
            block,
            consumer,
        }
    }

    /// The totals, once every step was recorded.
    pub fn finish(self) -> MemberTotals {
        self.totals
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
        let b = &mut self.block;
        let (len, k) = (b.steps, step - b.first_step);
        let mut battery = 0;
        for (i, f) in flows.iter().enumerate() {
            let at = i * len + k;
            let c = &mut b.columns;
            c[Flow::Load as usize][at] = FlowSeries::at(self.loads[i], step);
            c[Flow::Pv as usize][at] = pv_kw[i];
            c[Flow::Wind as usize][at] = wind_kw[i];
            c[Flow::BatteryCharge as usize][at] = f.battery_in_kw;
            c[Flow::BatteryDischarge as usize][at] = f.battery_out_kw;
            c[Flow::P2pImport as usize][at] = f.p2p_import_kw;
            c[Flow::P2pExport as usize][at] = f.p2p_export_kw;
            c[Flow::GridImport as usize][at] = f.grid_import_kw;
            c[Flow::GridExport as usize][at] = f.grid_export_kw;
            c[Flow::Excess as usize][at] = f.excess_kw;
            c[Flow::Unmet as usize][at] = f.unmet_kw;
            if let Some(unit) = &batteries[i] {
                b.soc_pct[battery * len + k] = unit.battery.soc() * 100.0;
                battery += 1;
            }
        }
        Ok(())
    }

    fn record_ev(&mut self, step: usize, ev: &[EvStepPower]) -> Result<(), SimError> {
        let b = &mut self.block;
        let (len, k) = (b.steps, step - b.first_step);
        for (i, (p, fleet)) in ev.iter().zip(&self.fleet).enumerate() {
            if *fleet {
                let at = i * len + k;
                b.columns[Flow::EvCharge as usize][at] = p.charge_kw;
                b.columns[Flow::Swap as usize][at] = p.swap_kw;
                b.columns[Flow::V2g as usize][at] = p.v2g_kw;
            }
        }
        if k + 1 < len {
            return Ok(());
        }
        self.totals.add_block(&self.block);
        (self.consumer)(&self.block)?;
        let next = step + 1;
        if next < self.steps {
            let len = self.block_steps.min(self.steps - next);
            self.block.reset(next, len, &self.has_battery);
        }
        Ok(())
    }
}
