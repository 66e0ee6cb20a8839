//! The HOMER-style sizing search: every combination of the candidate sizes is simulated for a
//! year, combinations that leave more unmet load than allowed are dropped, and the rest are
//! ranked by net present cost.
//!
//! Why it is fast: in the paper's flow chart a prosumer's own stage (its generation and its
//! battery) depends only on its own design, so each prosumer design is simulated once and its
//! residual series cached ([`LocalRun`]); a community configuration then only replays the
//! community stage ([`CommunityShares`]) over the cached residuals — the same code the full
//! simulation runs, without re-simulating any battery. Work per configuration is
//! O(steps × prosumers) of plain arithmetic; configurations run in parallel (rayon).
//!
//! Cancellation: the caller's flag is checked between chunks; results so far are kept.
//! Never does I/O.

use crate::ComponentError;
use crate::battery::{Battery, BatteryConfig, Storage};
use crate::converter::{Converter, ConverterConfig};
use crate::dispatch::{BatteryUnit, CommunityShares, StepContext, StepInput, local_step};
use crate::economics::{
    ComponentCosts, EconomicParams, annuity_present_value_factor, capital_recovery_factor,
    system_npc,
};
use crate::year::ProsumerSeries;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One candidate design of one prosumer.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalDesign {
    pub pv_kwp: f64,
    pub turbines: f64,
    /// Battery and its converter, if any.
    pub battery: Option<(BatteryConfig, ConverterConfig)>,
    /// Costs of the PV and wind of this design (the caller prices them).
    pub generation_costs: Vec<(String, ComponentCosts)>,
}

/// A prosumer's inputs and its candidate designs.
#[derive(Debug, Clone)]
pub struct ProsumerSpace<'a> {
    pub id: String,
    /// Load and unit generation series (the sizes in it are ignored).
    pub series: ProsumerSeries<'a>,
    pub designs: Vec<LocalDesign>,
}

/// Per-step prices and signals shared by every configuration.
#[derive(Debug, Clone, Copy)]
pub struct SearchInputs<'a> {
    pub dt_h: f64,
    pub steps_per_hour: usize,
    pub purchase_eur_per_kwh: &'a [f64],
    pub sell_eur_per_kwh: &'a [f64],
    /// CER incentive + valorisation per hour, EUR/MWh of shared energy (all 0 without a CER).
    pub cer_eur_per_mwh: &'a [f64],
    pub grid_at_peak: &'a [bool],
    /// Demand charge, EUR per kW of monthly peak purchase.
    pub demand_charge_eur_per_kw_month: f64,
    /// Month (1..=12) of each step.
    pub month: &'a [u8],
    /// Equivalent share of the yearly CER incentive over the project (it is paid for fewer
    /// years than the project lasts): 1 when paid every year.
    pub cer_npc_factor: f64,
}

/// The search's own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSettings {
    /// Grid connection options to try (`true` = connected).
    pub grid_options: Vec<bool>,
    pub max_purchase_kw: f64,
    pub max_sale_kw: f64,
    /// Largest allowed unmet load, as a fraction of the load (HOMER's maximum capacity shortage).
    pub max_unmet_fraction: f64,
    pub economics: EconomicParams,
}

/// One prosumer design simulated on its own: the residual it leaves to the community.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRun {
    pub residual_kw: Vec<f64>,
    pub load_kwh: f64,
    pub pv_kwh: f64,
    pub wind_kwh: f64,
    pub battery_throughput_kwh: f64,
    /// Net present cost of the design's components, EUR.
    pub components_npc_eur: f64,
    /// Initial capital of the design's components, EUR.
    pub capital_eur: f64,
}

/// The result of one configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigResult {
    /// Position in the enumeration (stable: mixed radix over prosumers, then grid).
    pub index: u64,
    /// Chosen design index per prosumer.
    pub designs: Vec<usize>,
    pub grid_connected: bool,
    pub npc_eur: f64,
    pub annualized_cost_eur: f64,
    pub coe_eur_per_kwh: f64,
    pub renewable_fraction: f64,
    pub unmet_fraction: f64,
    pub initial_capital_eur: f64,
    pub grid_import_kwh: f64,
    pub grid_export_kwh: f64,
    pub p2p_kwh: f64,
    pub cer_shared_energy_kwh: f64,
    pub cer_incentive_eur: f64,
    pub excess_kwh: f64,
}

/// What a search produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// Feasible configurations, cheapest first (ties by index).
    pub ranked: Vec<ConfigResult>,
    pub evaluated: u64,
    pub infeasible: u64,
    pub total: u64,
    pub cancelled: bool,
}

/// Simulate one prosumer design on its own over `steps` steps.
pub fn run_local(
    space: &ProsumerSpace<'_>,
    design: &LocalDesign,
    steps: usize,
    dt_h: f64,
    economics: &EconomicParams,
) -> Result<LocalRun, ComponentError> {
    let mut unit = match &design.battery {
        Some((b, c)) => Some(BatteryUnit {
            battery: Battery::from_config(b)?,
            converter: Converter::from_config(c)?,
        }),
        None => None,
    };
    let series = ProsumerSeries {
        pv_kwp: design.pv_kwp,
        turbines: design.turbines,
        ..space.series
    };
    let mut run = LocalRun {
        residual_kw: Vec::with_capacity(steps),
        load_kwh: 0.0,
        pv_kwh: 0.0,
        wind_kwh: 0.0,
        battery_throughput_kwh: 0.0,
        components_npc_eur: 0.0,
        capital_eur: 0.0,
    };
    for t in 0..steps {
        let (pv, wind) = (series.pv_kw(t), series.wind_kw(t));
        let input = StepInput {
            load_kw: series.demand_kw(t),
            renewable_kw: pv + wind + series.v2g_at(t),
        };
        let local = local_step(&input, unit.as_mut(), dt_h)?;
        run.residual_kw.push(local.residual_kw);
        run.load_kwh += input.load_kw * dt_h;
        run.pv_kwh += pv * dt_h;
        run.wind_kwh += wind * dt_h;
    }
    let mut components = design.generation_costs.clone();
    if let (Some(unit), Some((b, c))) = (&unit, &design.battery) {
        run.battery_throughput_kwh = unit.battery.throughput_kwh();
        components.push(("battery".into(), b.costs(run.battery_throughput_kwh)));
        components.push(("converter".into(), c.costs()));
    }
    let refs: Vec<(&str, ComponentCosts)> =
        components.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    run.components_npc_eur = system_npc(economics, &refs, 0.0, 0.0)?.total_npc_eur;
    run.capital_eur = components.iter().map(|(_, c)| c.capital_eur).sum();
    Ok(run)
}

/// Decode a configuration index: design per prosumer (mixed radix), then the grid option.
fn decode(mut index: u64, radices: &[usize], designs: &mut [usize]) -> u64 {
    for (d, r) in designs.iter_mut().zip(radices) {
        *d = (index % *r as u64) as usize;
        index /= *r as u64;
    }
    index
}

/// Replay the community stage of one configuration over the cached local runs.
pub fn evaluate_config(
    index: u64,
    designs: &[usize],
    grid_connected: bool,
    runs: &[Vec<LocalRun>],
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
) -> ConfigResult {
    let chosen: Vec<&LocalRun> = runs.iter().zip(designs).map(|(r, d)| &r[*d]).collect();
    let steps = chosen.first().map_or(0, |r| r.residual_kw.len());
    let (max_purchase_kw, max_sale_kw) = if grid_connected {
        (settings.max_purchase_kw, settings.max_sale_kw)
    } else {
        (0.0, 0.0)
    };
    let dt = inputs.dt_h;
    let (mut import_kwh, mut export_kwh, mut p2p_kwh, mut excess_kwh, mut unmet_kwh) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut grid_cost_eur, mut grid_revenue_eur) = (0.0, 0.0);
    // Per-prosumer monthly peaks are only needed when there is a demand charge.
    let track_peaks = inputs.demand_charge_eur_per_kw_month != 0.0;
    let mut monthly_peak_kw = vec![[0.0f64; 12]; if track_peaks { chosen.len() } else { 0 }];
    let residuals: Vec<&[f64]> = chosen.iter().map(|r| &r.residual_kw[..steps]).collect();
    let per_hour = inputs.steps_per_hour.max(1);
    let (mut hour_injected, mut hour_withdrawn) = (0.0, 0.0);
    let (mut shared_kwh, mut cer_eur) = (0.0, 0.0);
    // Counters instead of `t % per_hour` keep integer division out of the hot loop.
    let (mut step_in_hour, mut hour) = (0usize, 0usize);
    for t in 0..steps {
        let (mut surplus, mut deficit) = (0.0f64, 0.0f64);
        for r in &residuals {
            let x = r[t];
            surplus += x.max(0.0);
            deficit += (-x).max(0.0);
        }
        let ctx = StepContext {
            dt_h: dt,
            grid_at_peak: inputs.grid_at_peak.get(t).copied().unwrap_or(false),
            max_purchase_kw,
            max_sale_kw,
        };
        let shares = CommunityShares::new(surplus, deficit, &ctx);
        if track_peaks {
            let month = usize::from(inputs.month.get(t).copied().unwrap_or(1).clamp(1, 12)) - 1;
            for (peaks, r) in monthly_peak_kw.iter_mut().zip(&residuals) {
                let import_kw = shares.allocate(r[t]).grid_import_kw;
                peaks[month] = peaks[month].max(import_kw);
            }
        }
        // Community totals of the pro-rata allocation (the per-prosumer parts sum to these).
        let exported_kw = shares.first_to_grid_kw + shares.to_grid_kw;
        unmet_kwh += (deficit - shares.shared_kw - shares.from_grid_kw).max(0.0) * dt;
        excess_kwh += (surplus - exported_kw - shares.shared_kw).max(0.0) * dt;
        let step_import = shares.from_grid_kw * dt;
        let step_export = exported_kw * dt;
        let step_shared = shares.shared_kw * dt;
        import_kwh += step_import;
        export_kwh += step_export;
        p2p_kwh += step_shared;
        grid_cost_eur += step_import * inputs.purchase_eur_per_kwh.get(t).copied().unwrap_or(0.0);
        grid_revenue_eur += step_export * inputs.sell_eur_per_kwh.get(t).copied().unwrap_or(0.0);
        // CER: injection and withdrawal at the members' meters (P2P crosses the public grid).
        hour_injected += step_export + step_shared;
        hour_withdrawn += step_import + step_shared;
        step_in_hour += 1;
        if step_in_hour == per_hour {
            let shared = hour_injected.min(hour_withdrawn);
            shared_kwh += shared;
            cer_eur += shared * inputs.cer_eur_per_mwh.get(hour).copied().unwrap_or(0.0) / 1000.0;
            step_in_hour = 0;
            hour += 1;
            hour_injected = 0.0;
            hour_withdrawn = 0.0;
        }
    }
    let demand_eur: f64 =
        monthly_peak_kw.iter().flatten().sum::<f64>() * inputs.demand_charge_eur_per_kw_month;
    let load_kwh: f64 = chosen.iter().map(|r| r.load_kwh).sum();
    let components_npc: f64 = chosen.iter().map(|r| r.components_npc_eur).sum();
    let e = &settings.economics;
    let crf = capital_recovery_factor(e.real_discount_rate, e.project_lifetime_years);
    let annual_net_eur =
        grid_cost_eur + demand_eur - grid_revenue_eur - cer_eur * inputs.cer_npc_factor;
    let npc_eur = components_npc
        + annual_net_eur
            * annuity_present_value_factor(e.real_discount_rate, e.project_lifetime_years);
    let annualized_cost_eur = npc_eur * crf;
    // HOMER's definitions, the same code as the full simulation's (grid sales count as
    // energy served), so a design's renewable fraction and COE agree in both reports.
    let totals = crate::economics::EnergyTotals {
        load_kwh,
        served_load_kwh: (load_kwh - unmet_kwh).max(0.0),
        grid_sales_kwh: export_kwh,
        grid_purchases_kwh: import_kwh,
        ..crate::economics::EnergyTotals::default()
    };
    ConfigResult {
        index,
        designs: designs.to_vec(),
        grid_connected,
        npc_eur,
        annualized_cost_eur,
        coe_eur_per_kwh: totals
            .cost_of_energy_eur_per_kwh(annualized_cost_eur)
            .unwrap_or(f64::NAN),
        renewable_fraction: totals.renewable_fraction().unwrap_or(0.0),
        unmet_fraction: if load_kwh > 0.0 {
            unmet_kwh / load_kwh
        } else {
            0.0
        },
        initial_capital_eur: chosen.iter().map(|r| r.capital_eur).sum(),
        grid_import_kwh: import_kwh,
        grid_export_kwh: export_kwh,
        p2p_kwh,
        cer_shared_energy_kwh: shared_kwh,
        cer_incentive_eur: cer_eur,
        excess_kwh,
    }
}

/// Run the whole search. `progress(done)` is called from worker threads as chunks finish.
pub fn search(
    spaces: &[ProsumerSpace<'_>],
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
    steps: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
    cancel: &AtomicBool,
) -> Result<SearchOutcome, ComponentError> {
    // Stage 1: every prosumer design once (in parallel).
    let runs: Vec<Vec<LocalRun>> = spaces
        .iter()
        .map(|space| {
            space
                .designs
                .par_iter()
                .map(|d| run_local(space, d, steps, inputs.dt_h, &settings.economics))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let radices: Vec<usize> = spaces.iter().map(|s| s.designs.len().max(1)).collect();
    let grid_options = if settings.grid_options.is_empty() {
        vec![true]
    } else {
        settings.grid_options.clone()
    };
    let total = radices
        .iter()
        .try_fold(grid_options.len() as u64, |acc, r| {
            acc.checked_mul(*r as u64)
        })
        .ok_or_else(|| {
            ComponentError::parameter("search space", "more than 2^64 configurations")
        })?;
    if spaces.iter().any(|s| s.designs.is_empty()) {
        return Err(ComponentError::parameter(
            "search space",
            "a prosumer has no candidate design",
        ));
    }
    // Stage 2: configurations, in chunks so that cancellation and progress stay responsive.
    const CHUNK: u64 = 256;
    let done = AtomicU64::new(0);
    let chunks = total.div_ceil(CHUNK);
    let mut results: Vec<ConfigResult> = (0..chunks)
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut out = Vec::new();
            if cancel.load(Ordering::Relaxed) {
                return out.into_iter();
            }
            let mut designs = vec![0usize; radices.len()];
            for index in c * CHUNK..((c + 1) * CHUNK).min(total) {
                let grid = decode(index, &radices, &mut designs) as usize;
                out.push(evaluate_config(
                    index,
                    &designs,
                    grid_options[grid],
                    &runs,
                    inputs,
                    settings,
                ));
            }
            let n = done.fetch_add(out.len() as u64, Ordering::Relaxed) + out.len() as u64;
            progress(n, total);
            out.into_iter()
        })
        .collect();
    let evaluated = results.len() as u64;
    results.retain(|r| {
        r.unmet_fraction <= settings.max_unmet_fraction + 1e-12 && r.npc_eur.is_finite()
    });
    let infeasible = evaluated - results.len() as u64;
    results.sort_by(|a, b| a.npc_eur.total_cmp(&b.npc_eur).then(a.index.cmp(&b.index)));
    Ok(SearchOutcome {
        ranked: results,
        evaluated,
        infeasible,
        total,
        cancelled: evaluated < total,
    })
}
