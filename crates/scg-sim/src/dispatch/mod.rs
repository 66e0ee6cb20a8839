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

/// Run one step for every prosumer. `batteries[i]` is prosumer `i`'s battery, if any;
/// `flows` receives one entry per prosumer (cleared first).
pub fn community_step(
    inputs: &[StepInput],
    batteries: &mut [Option<BatteryUnit>],
    ctx: &StepContext,
    flows: &mut Vec<StepFlows>,
) -> Result<(), ComponentError> {
    flows.clear();
    // 1–2: own generation, then own battery.
    for (input, unit) in inputs.iter().zip(batteries.iter_mut()) {
        let mut f = StepFlows {
            load_kw: input.load_kw,
            renewable_kw: input.renewable_kw,
            ..StepFlows::default()
        };
        let net = input.renewable_kw - input.load_kw;
        if let Some(unit) = unit {
            if net > 0.0 {
                f.battery_in_kw = charge(unit, net, ctx.dt_h)?;
            } else if net < 0.0 {
                f.battery_out_kw = discharge(unit, -net, ctx.dt_h)?;
            }
        }
        flows.push(f);
    }
    // Residual surplus (> 0) or deficit (< 0) of each prosumer after its battery.
    let residual = |f: &StepFlows| f.renewable_kw + f.battery_out_kw - f.load_kw - f.battery_in_kw;
    let surplus_kw: f64 = flows.iter().map(|f| residual(f).max(0.0)).sum();
    let deficit_kw: f64 = flows.iter().map(|f| (-residual(f)).max(0.0)).sum();

    // 3: at peak the grid takes surplus first.
    let first_to_grid = if ctx.grid_at_peak {
        surplus_kw.min(ctx.max_sale_kw)
    } else {
        0.0
    };
    let shared = (surplus_kw - first_to_grid).min(deficit_kw);
    // 4: the rest to or from the grid, within the connection's limits.
    let to_grid = (surplus_kw - first_to_grid - shared).min(ctx.max_sale_kw - first_to_grid);
    let from_grid = (deficit_kw - shared).min(ctx.max_purchase_kw);

    for f in flows.iter_mut() {
        let r = residual(f);
        if r > 0.0 {
            let share = r / surplus_kw;
            f.grid_export_kw = (first_to_grid + to_grid) * share;
            f.p2p_export_kw = shared * share;
            f.excess_kw = (r - f.grid_export_kw - f.p2p_export_kw).max(0.0);
        } else if r < 0.0 {
            let share = -r / deficit_kw;
            f.p2p_import_kw = shared * share;
            f.grid_import_kw = from_grid * share;
            f.unmet_kw = (-r - f.p2p_import_kw - f.grid_import_kw).max(0.0);
        }
    }
    Ok(())
}

/// Charge from `surplus_ac_kw` through the rectifier; returns the AC power drawn.
fn charge(unit: &mut BatteryUnit, surplus_ac_kw: f64, dt_h: f64) -> Result<f64, ComponentError> {
    let dc_possible = unit.battery.max_charge_kw(dt_h);
    let ac_needed = unit.converter.rectifier_input_for(dc_possible)?.input_kw;
    let conversion = unit.converter.rectify(surplus_ac_kw.min(ac_needed))?;
    let flow = unit.battery.charge(conversion.output_kw, dt_h)?;
    // The battery may accept a hair less than offered; draw only what it took.
    Ok(flow.power_kw / unit.converter.rectifier_efficiency)
}

/// Discharge to cover `deficit_ac_kw` through the inverter; returns the AC power delivered.
fn discharge(unit: &mut BatteryUnit, deficit_ac_kw: f64, dt_h: f64) -> Result<f64, ComponentError> {
    let dc_possible = unit.battery.max_discharge_kw(dt_h);
    let dc_needed = unit.converter.inverter_input_for(deficit_ac_kw)?.input_kw;
    let flow = unit.battery.discharge(dc_possible.min(dc_needed), dt_h)?;
    Ok(unit.converter.invert(flow.power_kw)?.output_kw)
}

#[cfg(test)]
mod tests;
