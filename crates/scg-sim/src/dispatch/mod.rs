//! The community step of the seed paper's flow chart (Fig. 9), for one time step:
//!
//! 1. each prosumer's own renewable generation serves its own load;
//! 2. its battery (behind its converter) charges from the surplus or discharges on the deficit;
//! 3. the remaining surplus goes to neighbours with a deficit, shared pro rata — unless the main
//!    grid is at peak, in which case surplus is first sold to the grid (up to the community's
//!    sale capacity) and only what is left is shared;
//! 4. remaining deficits are bought from the grid (up to the purchase capacity; beyond it the
//!    load is unmet), remaining surplus is sold to the grid (beyond the sale capacity it is
//!    excess, i.e. curtailed).
//!
//! Pro rata: if sellers offer `S` and buyers need `D`, `min(S, D)` is traded; each seller
//! delivers its share of `S`, each buyer receives its share of `D`. Grid import and export
//! limits apply to the community's connection and are shared the same way.
//!
//! Every flow is a non-negative average power over the step, AC side. Per prosumer the balance
//! `renewable + battery_out + p2p_in + grid_in + unmet = load + battery_in + p2p_out + grid_out
//! + excess` closes to rounding; [`StepFlows::balance_error_kw`] measures it. Never does I/O.

use crate::ComponentError;
use crate::battery::{Battery, Storage};
use crate::converter::Converter;

/// A prosumer's battery and the converter between it and the AC bus.
#[derive(Debug, Clone, PartialEq)]
pub struct BatteryUnit {
    pub battery: Battery,
    pub converter: Converter,
}

/// A member's battery with its converter, if it has one: boxed, so that a community's slice of
/// them is a pointer per member (the step's passes over a city's 10,000 members read 80 kB,
/// not a 216-byte slot each).
pub type MemberBattery = Option<Box<BatteryUnit>>;

/// What one prosumer brings to a step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepInput {
    /// Electric demand, kW (including EV charging when present).
    pub load_kw: f64,
    /// Renewable generation, AC kW (PV + wind + V2G).
    pub renewable_kw: f64,
}

/// The community-wide conditions of a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepContext {
    pub dt_h: f64,
    /// The main grid is at peak: surplus goes to the grid first.
    pub grid_at_peak: bool,
    /// The community connection's import limit, kW (infinite when none).
    pub max_purchase_kw: f64,
    /// The community connection's export limit, kW (infinite when none).
    pub max_sale_kw: f64,
}

/// One prosumer's flows over a step, kW (all >= 0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepFlows {
    pub load_kw: f64,
    pub renewable_kw: f64,
    /// AC power drawn to charge the battery.
    pub battery_in_kw: f64,
    /// AC power delivered by the battery.
    pub battery_out_kw: f64,
    pub p2p_import_kw: f64,
    pub p2p_export_kw: f64,
    pub grid_import_kw: f64,
    pub grid_export_kw: f64,
    /// Surplus that found no taker (curtailed).
    pub excess_kw: f64,
    /// Demand that could not be served.
    pub unmet_kw: f64,
}

impl StepFlows {
    /// Sources minus uses; zero up to rounding.
    pub fn balance_error_kw(&self) -> f64 {
        (self.renewable_kw
            + self.battery_out_kw
            + self.p2p_import_kw
            + self.grid_import_kw
            + self.unmet_kw)
            - (self.load_kw
                + self.battery_in_kw
                + self.p2p_export_kw
                + self.grid_export_kw
                + self.excess_kw)
    }
}

/// A prosumer's own stage: generation serves load, the battery takes the surplus or covers
/// the deficit. What remains (`residual_kw`, > 0 surplus, < 0 deficit) goes to the community.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LocalFlows {
    pub battery_in_kw: f64,
    pub battery_out_kw: f64,
    pub residual_kw: f64,
}

/// Stage 1 of the step for one prosumer. It depends on nothing but the prosumer's own inputs
/// and battery — which is what lets a sizing search cache it per prosumer design.
#[inline]
pub fn local_step(
    input: &StepInput,
    unit: Option<&mut BatteryUnit>,
    dt_h: f64,
) -> Result<LocalFlows, ComponentError> {
    let net = input.renewable_kw - input.load_kw;
    let mut f = LocalFlows::default();
    if let Some(unit) = unit {
        if net > 0.0 {
            f.battery_in_kw = charge(unit, net, dt_h)?;
        } else if net < 0.0 {
            f.battery_out_kw = discharge(unit, -net, dt_h)?;
        }
    }
    f.residual_kw = residual_kw(input, f.battery_in_kw, f.battery_out_kw);
    Ok(f)
}

/// What a prosumer brings to (> 0) or needs from (< 0) the community after its battery.
#[inline]
fn residual_kw(input: &StepInput, battery_in_kw: f64, battery_out_kw: f64) -> f64 {
    (input.renewable_kw + battery_out_kw) - (input.load_kw + battery_in_kw)
}

/// Stage 2 of the step: how the community's total surplus and deficit are split between
/// neighbours and the grid.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CommunityShares {
    pub surplus_kw: f64,
    pub deficit_kw: f64,
    /// Sold to the grid before sharing (grid at peak).
    pub first_to_grid_kw: f64,
    /// Traded between neighbours.
    pub shared_kw: f64,
    /// Sold to the grid after sharing.
    pub to_grid_kw: f64,
    /// Bought from the grid.
    pub from_grid_kw: f64,
}

/// A prosumer's part of the community stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Allocation {
    pub p2p_import_kw: f64,
    pub p2p_export_kw: f64,
    pub grid_import_kw: f64,
    pub grid_export_kw: f64,
    pub excess_kw: f64,
    pub unmet_kw: f64,
}

impl CommunityShares {
    /// Split a community's `surplus_kw` (Σ positive residuals) and `deficit_kw` (Σ negative
    /// residuals, as a positive number) under the step's conditions.
    pub fn new(surplus_kw: f64, deficit_kw: f64, ctx: &StepContext) -> Self {
        let first_to_grid_kw = if ctx.grid_at_peak {
            surplus_kw.min(ctx.max_sale_kw)
        } else {
            0.0
        };
        let shared_kw = (surplus_kw - first_to_grid_kw).min(deficit_kw);
        Self {
            surplus_kw,
            deficit_kw,
            first_to_grid_kw,
            shared_kw,
            to_grid_kw: (surplus_kw - first_to_grid_kw - shared_kw)
                .min(ctx.max_sale_kw - first_to_grid_kw),
            from_grid_kw: (deficit_kw - shared_kw).min(ctx.max_purchase_kw),
        }
    }

    /// The flows of a prosumer whose residual is `residual_kw`, pro rata.
    #[inline]
    pub fn allocate(&self, residual_kw: f64) -> Allocation {
        let mut a = Allocation::default();
        if residual_kw > 0.0 {
            let share = residual_kw / self.surplus_kw;
            a.grid_export_kw = (self.first_to_grid_kw + self.to_grid_kw) * share;
            a.p2p_export_kw = self.shared_kw * share;
            a.excess_kw = (residual_kw - a.grid_export_kw - a.p2p_export_kw).max(0.0);
        } else if residual_kw < 0.0 {
            let share = -residual_kw / self.deficit_kw;
            a.p2p_import_kw = self.shared_kw * share;
            a.grid_import_kw = self.from_grid_kw * share;
            a.unmet_kw = (-residual_kw - a.p2p_import_kw - a.grid_import_kw).max(0.0);
        }
        a
    }
}

/// A prosumer's residual series as the pro-rata split reads it, struct of arrays: its surplus
/// (`max(r, 0)`) and its deficit (`max(−r, 0)`) at every step, each computed once per design
/// (the sizing search shares them across every configuration the design is part of). Every
/// value is finite and >= 0: [`ResidualParts::new`] refuses a non-finite residual.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualParts {
    surplus_kw: Vec<f64>,
    deficit_kw: Vec<f64>,
    /// Σ `surplus_kw` (a bound on the design's sales, summed once).
    surplus_total_kw: f64,
}

impl ResidualParts {
    /// Split `residual_kw` (> 0 surplus, < 0 deficit); `None` when a value is not finite.
    pub fn new(residual_kw: &[f64]) -> Option<Self> {
        if residual_kw.iter().any(|r| !r.is_finite()) {
            return None;
        }
        // The same expressions as `ProRata::shares` and `YearAccounts::record_shares`, so the
        // values are bit for bit the ones the per-step path computes.
        let surplus_kw: Vec<f64> = residual_kw.iter().map(|r| r.max(0.0)).collect();
        Some(Self {
            surplus_total_kw: surplus_kw.iter().sum(),
            surplus_kw,
            deficit_kw: residual_kw.iter().map(|r| (-r).max(0.0)).collect(),
        })
    }

    /// Σ of the surplus over every step, kW (times the step length: the energy the design
    /// offers the community over the year).
    #[inline]
    pub fn surplus_total_kw(&self) -> f64 {
        self.surplus_total_kw
    }

    /// Surplus of every step, kW (>= 0).
    #[inline]
    pub fn surplus_kw(&self) -> &[f64] {
        &self.surplus_kw
    }

    /// Deficit of every step, kW (>= 0).
    #[inline]
    pub fn deficit_kw(&self) -> &[f64] {
        &self.deficit_kw
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.surplus_kw.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.surplus_kw.is_empty()
    }
}

/// Stage 2 as a strategy: how the community's residuals become P2P and grid flows.
/// [`ProRata`] is the paper's sharing; a market (see `crate::market_stage`) can replace it.
pub trait CommunityStage {
    /// Fill `out[i]` for the prosumer whose residual is `residual_kw[i]`.
    fn allocate(
        &mut self,
        step: usize,
        residual_kw: &[f64],
        ctx: &StepContext,
        out: &mut [Allocation],
    ) -> Result<(), ComponentError>;
}

/// Pro-rata sharing (module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProRata;

impl ProRata {
    /// The step's split of the community's summed surplus and deficit (what every member's
    /// [`CommunityShares::allocate`] then takes its share of).
    #[inline]
    pub fn shares(residual_kw: &[f64], ctx: &StepContext) -> CommunityShares {
        let surplus_kw: f64 = residual_kw.iter().map(|r| r.max(0.0)).sum();
        let deficit_kw: f64 = residual_kw.iter().map(|r| (-r).max(0.0)).sum();
        CommunityShares::new(surplus_kw, deficit_kw, ctx)
    }
}

impl CommunityStage for ProRata {
    fn allocate(
        &mut self,
        _step: usize,
        residual_kw: &[f64],
        ctx: &StepContext,
        out: &mut [Allocation],
    ) -> Result<(), ComponentError> {
        let shares = ProRata::shares(residual_kw, ctx);
        for (a, r) in out.iter_mut().zip(residual_kw) {
            *a = shares.allocate(*r);
        }
        Ok(())
    }
}

/// Reusable buffers of [`community_step`], so the year loop allocates nothing per step.
#[derive(Debug, Clone, Default)]
pub struct StepScratch {
    residual_kw: Vec<f64>,
    allocations: Vec<Allocation>,
}

/// Run one step for every prosumer with pro-rata sharing. `batteries[i]` is prosumer `i`'s
/// battery, if any; `flows` receives one entry per prosumer (cleared first).
pub fn community_step(
    inputs: &[StepInput],
    batteries: &mut [MemberBattery],
    ctx: &StepContext,
    flows: &mut Vec<StepFlows>,
) -> Result<(), ComponentError> {
    community_step_with(
        0,
        inputs,
        batteries,
        ctx,
        &mut ProRata,
        &mut StepScratch::default(),
        flows,
    )
}

/// Run one step (number `step`) with a given community stage.
pub fn community_step_with(
    step: usize,
    inputs: &[StepInput],
    batteries: &mut [MemberBattery],
    ctx: &StepContext,
    stage: &mut dyn CommunityStage,
    scratch: &mut StepScratch,
    flows: &mut Vec<StepFlows>,
) -> Result<(), ComponentError> {
    flows.clear();
    scratch.residual_kw.clear();
    for (input, unit) in inputs.iter().zip(batteries.iter_mut()) {
        let local = local_step(input, unit.as_deref_mut(), ctx.dt_h)?;
        scratch.residual_kw.push(local.residual_kw);
        flows.push(StepFlows {
            load_kw: input.load_kw,
            renewable_kw: input.renewable_kw,
            battery_in_kw: local.battery_in_kw,
            battery_out_kw: local.battery_out_kw,
            ..StepFlows::default()
        });
    }
    scratch.allocations.clear();
    scratch
        .allocations
        .resize(inputs.len(), Allocation::default());
    stage.allocate(step, &scratch.residual_kw, ctx, &mut scratch.allocations)?;
    for (f, a) in flows.iter_mut().zip(&scratch.allocations) {
        f.p2p_import_kw = a.p2p_import_kw;
        f.p2p_export_kw = a.p2p_export_kw;
        f.grid_import_kw = a.grid_import_kw;
        f.grid_export_kw = a.grid_export_kw;
        f.excess_kw = a.excess_kw;
        f.unmet_kw = a.unmet_kw;
    }
    Ok(())
}

/// Charge from `surplus_ac_kw` through the rectifier; returns the AC power drawn.
#[inline]
fn charge(unit: &mut BatteryUnit, surplus_ac_kw: f64, dt_h: f64) -> Result<f64, ComponentError> {
    let c = &unit.converter;
    let dc_kw = (surplus_ac_kw * c.rectifier_efficiency)
        .min(c.rectifier_capacity_kw)
        .min(unit.battery.max_charge_kw(dt_h));
    let flow = unit.battery.charge(dc_kw, dt_h)?;
    // Draw only what the battery took (it may accept a hair less than offered).
    Ok(flow.power_kw / c.rectifier_efficiency)
}

/// Discharge to cover `deficit_ac_kw` through the inverter; returns the AC power delivered.
#[inline]
fn discharge(unit: &mut BatteryUnit, deficit_ac_kw: f64, dt_h: f64) -> Result<f64, ComponentError> {
    let c = &unit.converter;
    let dc_kw = (deficit_ac_kw.min(c.inverter_capacity_kw) / c.inverter_efficiency)
        .min(unit.battery.max_discharge_kw(dt_h));
    let flow = unit.battery.discharge(dc_kw, dt_h)?;
    Ok(flow.power_kw * c.inverter_efficiency)
}

#[cfg(test)]
mod tests;
