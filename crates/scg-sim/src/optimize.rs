//! The HOMER-style sizing search: every combination of the candidate sizes is simulated for a
//! year, combinations that leave more unmet load than allowed are dropped, and the rest are
//! ranked by net present cost.
//!
//! Why it is fast: in the paper's flow chart a prosumer's own stage (its generation and its
//! battery) depends only on its own design, so each prosumer design is simulated once and its
//! residual series cached ([`LocalRun`]); a community configuration then only replays the
//! community stage over the cached residuals — [`ProRata::shares`], the split the full
//! simulation's step runs — and accounts for the year through
//! [`crate::accounting::YearAccounts::record_shares`], the same accumulator as `scg simulate`,
//! at its totals level (the members' sums of the split's allocations, the members' grid bills
//! summed by [`crate::grid::MetersTotal`]). Work per configuration is O(steps × prosumers) of
//! plain arithmetic; configurations run in parallel.
//!
//! The search screens each configuration with [`screen_config`]: what depends on one design
//! only — its residual split into surplus and deficit series ([`ResidualParts`], struct of
//! arrays) and its sums — is computed once per design ([`residual_parts`]); per configuration
//! only the community coupling runs, as passes over the year
//! ([`crate::accounting::YearAccounts::record_pro_rata_year`]) with buffers reused per worker
//! ([`ScreenScratch`]), no allocation per configuration beyond its result. The search walks the
//! space in blocks ([`screen_block`]): the configurations that differ only in the last
//! prosumer's design share the first prosumers' summed surplus and deficit
//! ([`crate::accounting::MemberSums`], computed once per block; each configuration adds its
//! last member to them, the same fold as summing all members in order). It performs the
//! same float operations in the same order as the step-by-step [`evaluate_config`] (tests
//! compare them bit for bit), so the results do not depend on it; where its preconditions do
//! not hold (a non-finite residual, a member whose sales could reach the Ritiro Dedicato
//! limit) the configuration goes step by step. Every configuration counted is evaluated.
//!
//! With the community market ([`SearchInputs::market`]) every configuration is first screened
//! with pro-rata sharing; then the best of the screening are replayed with the market stage
//! ([`MarketStage`], the step's own, over the same residuals, at the members' level of the
//! accounts) until the cheapest configuration of the ranking is one replayed with the market.
//! Replayed configurations carry their market NPC (`market_replayed`); the others keep their
//! pro-rata NPC, and [`MarketCheck`] states the largest difference the replay found.
//!
//! Cancellation: the caller's flag is checked between chunks; results so far are kept.
//! Never does I/O.

use crate::ComponentError;
use crate::accounting::{
    AccountsSetup, CerSetup, Detail, MemberClosing, MemberSums, MembersClosing, ShareScratch,
    ShareYear, TotalsClosing, YearAccounts,
};
use crate::battery::{Battery, BatteryConfig, Storage};
use crate::converter::{Converter, ConverterConfig};
use crate::dispatch::{
    Allocation, BatteryUnit, CommunityStage, ProRata, ResidualParts, StepContext, StepInput,
    local_step,
};
use crate::economics::{ComponentCosts, EconomicParams, system_npc};
use crate::grid::GridTariff;
use crate::market_stage::MarketStage;
use crate::year::{EnergySums, ProsumerSeries};
use rayon::prelude::*;
use scg_market::community::CommunityMarket;
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
    /// The grid tariff every member's meter bills with.
    pub tariff: &'a GridTariff,
    /// The CER rule and its hourly zonal prices.
    pub cer: CerSetup<'a>,
    pub grid_at_peak: &'a [bool],
    /// Equivalent share of the yearly CER incentive over the project (it is paid for fewer
    /// years than the project lasts): 1 when paid every year.
    pub cer_npc_factor: f64,
    /// The pro-rata P2P price, EUR/kWh.
    pub internal_eur_per_kwh: f64,
    /// The community market, when the scenario has one (module docs).
    pub market: Option<MarketReplay<'a>>,
}

/// What replaying the community market needs: the step's market and its prices.
#[derive(Debug, Clone, Copy)]
pub struct MarketReplay<'a> {
    pub market: CommunityMarket,
    /// Prosumer ids, scenario order.
    pub ids: &'a [String],
    /// Retail and feed-in price of every step, EUR/MWh.
    pub retail_eur_per_mwh: &'a [f64],
    pub feed_in_eur_per_mwh: &'a [f64],
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
    /// With a market: how many configurations of the screening are replayed with it per round
    /// (module docs).
    pub market_replays: usize,
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
    /// The design's components, priced with the battery's throughput of the year.
    pub components: Vec<(String, ComponentCosts)>,
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
    /// Ranked with the community market (exact), not only by the pro-rata screening.
    pub market_replayed: bool,
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
    /// With a market: what replaying it found.
    pub market: Option<MarketCheck>,
}

/// What replaying the market over the screening's best found.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MarketCheck {
    /// Configurations replayed with the market.
    pub replayed: u64,
    /// Largest |market NPC − pro-rata NPC| among them, EUR.
    pub max_npc_change_eur: f64,
    /// The same relative to the pro-rata NPC.
    pub max_npc_change_fraction: f64,
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
        components: Vec::new(),
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
    run.components = components;
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

/// One configuration: its cached local runs and its grid option.
#[derive(Debug, Clone, Copy)]
pub struct Config<'r> {
    pub index: u64,
    pub designs: &'r [usize],
    pub grid_connected: bool,
}

/// Replay the community stage `stage` over the chosen local runs, handing every step's
/// allocations to `on_step`.
fn replay<S, F>(
    chosen: &[&LocalRun],
    grid_connected: bool,
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
    stage: &mut S,
    mut on_step: F,
) -> Result<(), ComponentError>
where
    S: CommunityStage + ?Sized,
    F: FnMut(usize, &[Allocation]) -> Result<(), ComponentError>,
{
    let steps = chosen.first().map_or(0, |r| r.residual_kw.len());
    let limits = grid_limits(grid_connected, settings);
    let mut residual = vec![0.0; chosen.len()];
    let mut allocations = vec![Allocation::default(); chosen.len()];
    for t in 0..steps {
        for (r, run) in residual.iter_mut().zip(chosen) {
            *r = run.residual_kw[t];
        }
        let ctx = step_context(inputs, t, limits);
        stage.allocate(t, &residual, &ctx, &mut allocations)?;
        on_step(t, &allocations)?;
    }
    Ok(())
}

/// The community connection's `(purchase, sale)` limits, kW (0 off-grid).
fn grid_limits(grid_connected: bool, settings: &SearchSettings) -> (f64, f64) {
    if grid_connected {
        (settings.max_purchase_kw, settings.max_sale_kw)
    } else {
        (0.0, 0.0)
    }
}

#[inline]
fn step_context(inputs: &SearchInputs<'_>, t: usize, limits: (f64, f64)) -> StepContext {
    StepContext {
        dt_h: inputs.dt_h,
        grid_at_peak: inputs.grid_at_peak.get(t).copied().unwrap_or(false),
        max_purchase_kw: limits.0,
        max_sale_kw: limits.1,
    }
}

fn accounts<'a>(
    inputs: &SearchInputs<'a>,
    members: usize,
    detail: Detail,
) -> Result<YearAccounts<'a>, ComponentError> {
    YearAccounts::new(&AccountsSetup {
        tariff: inputs.tariff,
        steps_per_hour: inputs.steps_per_hour,
        members,
        cer: inputs.cer,
        detail,
    })
}

fn unmet_fraction(unmet_kwh: f64, load_kwh: f64) -> f64 {
    if load_kwh > 0.0 {
        unmet_kwh / load_kwh
    } else {
        0.0
    }
}

/// Screen one configuration: pro-rata sharing over the cached local runs, the community's
/// totals accounted by [`YearAccounts`], one step at a time (the reference the search's
/// [`screen_config`] is tested against; the search falls back to it where the year-at-once
/// form does not apply).
pub fn evaluate_config(
    config: Config<'_>,
    runs: &[Vec<LocalRun>],
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
) -> Result<ConfigResult, ComponentError> {
    let chosen: Vec<&LocalRun> = runs
        .iter()
        .zip(config.designs)
        .map(|(r, d)| &r[*d])
        .collect();
    let mut acc = accounts(inputs, chosen.len(), Detail::Totals)?;
    let steps = chosen.first().map_or(0, |r| r.residual_kw.len());
    record_steps(
        &mut acc,
        &chosen,
        steps,
        config.grid_connected,
        inputs,
        settings,
    )?;
    close_totals(config, runs, acc, inputs, settings)
}

/// Pro-rata sharing step by step: [`ProRata::shares`] into [`YearAccounts::record_shares`].
fn record_steps(
    acc: &mut YearAccounts<'_>,
    chosen: &[&LocalRun],
    steps: usize,
    grid_connected: bool,
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
) -> Result<(), ComponentError> {
    let limits = grid_limits(grid_connected, settings);
    let residuals: Vec<&[f64]> = chosen.iter().map(|r| &r.residual_kw[..steps]).collect();
    let mut residual = vec![0.0; chosen.len()];
    for t in 0..steps {
        for (r, run) in residual.iter_mut().zip(&residuals) {
            *r = run[t];
        }
        let ctx = step_context(inputs, t, limits);
        // ProRata's split of the step; the accounts take the members' sums of its shares.
        acc.record_shares(t, &residual, &ProRata::shares(&residual, &ctx))?;
    }
    Ok(())
}

/// The year's close of a screened configuration.
fn close_totals(
    config: Config<'_>,
    runs: &[Vec<LocalRun>],
    acc: YearAccounts<'_>,
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
) -> Result<ConfigResult, ComponentError> {
    let chosen = || runs.iter().zip(config.designs).map(|(r, d)| &r[*d]);
    let load_kwh: f64 = chosen().map(|r| r.load_kwh).sum();
    let money = acc.finish_totals(&TotalsClosing {
        economics: settings.economics,
        internal_eur_per_kwh: inputs.internal_eur_per_kwh,
        cer_npc_factor: inputs.cer_npc_factor,
        components_npc_eur: chosen().map(|r| r.components_npc_eur).sum(),
        load_kwh,
        pv_kwh: chosen().map(|r| r.pv_kwh).sum(),
        wind_kwh: chosen().map(|r| r.wind_kwh).sum(),
        // V2G wear is one of the designs' components (`sizing::spaces`).
        ev_wear_eur: 0.0,
        market_eur: None,
    })?;
    let f = money.flows;
    Ok(ConfigResult {
        index: config.index,
        designs: config.designs.to_vec(),
        grid_connected: config.grid_connected,
        npc_eur: money.npc_eur,
        annualized_cost_eur: money.annualized_cost_eur,
        coe_eur_per_kwh: money.coe_eur_per_kwh.unwrap_or(f64::NAN),
        renewable_fraction: money.renewable_fraction.unwrap_or(0.0),
        unmet_fraction: unmet_fraction(f.unmet_kwh, load_kwh),
        initial_capital_eur: chosen().map(|r| r.capital_eur).sum(),
        grid_import_kwh: f.grid_import_kwh,
        grid_export_kwh: f.grid_export_kwh,
        p2p_kwh: f.p2p_import_kwh,
        cer_shared_energy_kwh: money.cer_shared_energy_kwh,
        cer_incentive_eur: money.cer_incentive_eur,
        excess_kwh: f.excess_kwh,
        market_replayed: false,
    })
}

/// Every prosumer design's residual split once for the screening ([`ResidualParts`]);
/// `None` for a design whose residual is not finite (its configurations go step by step,
/// which reports the error).
pub fn residual_parts(runs: &[Vec<LocalRun>]) -> Vec<Vec<Option<ResidualParts>>> {
    runs.iter()
        .map(|designs| {
            designs
                .iter()
                .map(|r| ResidualParts::new(&r.residual_kw))
                .collect()
        })
        .collect()
}

/// Reusable buffers of [`screen_config`]: one per worker, so that no configuration
/// allocates (beyond its result).
#[derive(Debug, Default)]
pub struct ScreenScratch<'p> {
    shares: ShareScratch,
    members: Vec<&'p ResidualParts>,
    /// The first members' sums of the current block ([`screen_block`]).
    prefix: MemberSums<'p>,
}

/// [`evaluate_config`] with the year accounted at once
/// ([`YearAccounts::record_pro_rata_year`]: the same operations in the same order, so the
/// same result bit for bit) from the designs' [`ResidualParts`] (from [`residual_parts`]);
/// step by step where that form does not apply (a non-finite residual, a Ritiro Dedicato
/// floor a member's sales could reach, a check that could fail).
pub fn screen_config<'p>(
    config: Config<'_>,
    runs: &[Vec<LocalRun>],
    parts: &'p [Vec<Option<ResidualParts>>],
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
    scratch: &mut ScreenScratch<'p>,
) -> Result<ConfigResult, ComponentError> {
    screen(config, runs, parts, inputs, settings, scratch, false)
}

/// The search space as the screening reads it.
#[derive(Debug, Clone, Copy)]
pub struct Screened<'r, 'p> {
    /// Every prosumer's number of designs.
    pub radices: &'r [usize],
    /// Every prosumer design's local run ([`run_local`]).
    pub runs: &'r [Vec<LocalRun>],
    /// Their residual parts ([`residual_parts`]).
    pub parts: &'p [Vec<Option<ResidualParts>>],
}

/// A block of configurations: every design of the last prosumer with the same designs of the
/// others and the same grid option.
#[derive(Debug, Clone, Copy)]
pub struct Block<'r> {
    /// The designs of every prosumer but the last.
    pub first_designs: &'r [usize],
    pub grid_connected: bool,
    /// The grid option's position in the settings (for the configurations' indices).
    pub grid_option: usize,
}

/// [`screen_config`] of every configuration of `block`, in the order of the last prosumer's
/// designs, appended to `out`: the first prosumers' summed surplus and deficit
/// ([`MemberSums`]) are computed once for the block, and each configuration adds its last
/// member to them — the same fold in the same order, so every result is bit for bit
/// [`screen_config`]'s (tested).
pub fn screen_block<'p>(
    block: Block<'_>,
    space: &Screened<'_, 'p>,
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
    scratch: &mut ScreenScratch<'p>,
    out: &mut Vec<ConfigResult>,
) -> Result<(), ComponentError> {
    let Screened {
        radices,
        runs,
        parts,
    } = *space;
    let Some((&last_radix, first_radices)) = radices.split_last() else {
        // No prosumer: the block is the one configuration of its grid option.
        let config = Config {
            index: block.grid_option as u64,
            designs: &[],
            grid_connected: block.grid_connected,
        };
        out.push(screen(
            config, runs, parts, inputs, settings, scratch, false,
        )?);
        return Ok(());
    };
    check_len_designs(block.first_designs.len(), first_radices.len())?;
    let steps = runs
        .first()
        .and_then(|r| r.first())
        .map_or(0, |r| r.residual_kw.len());
    // The prefix exists only when every first design has its parts (else each configuration
    // goes through `screen`, which falls back step by step).
    scratch.members.clear();
    let mut prefixed = true;
    for (p, d) in parts.iter().zip(block.first_designs) {
        match p.get(*d).and_then(Option::as_ref) {
            Some(part) => scratch.members.push(part),
            None => prefixed = false,
        }
    }
    if prefixed {
        scratch.prefix.sum(&scratch.members, steps)?;
    }
    let mut designs = Vec::with_capacity(radices.len());
    designs.extend_from_slice(block.first_designs);
    designs.push(0);
    for last in 0..last_radix {
        designs[radices.len() - 1] = last;
        let config = Config {
            index: encode(&designs, block.grid_option, radices),
            designs: &designs,
            grid_connected: block.grid_connected,
        };
        out.push(screen(
            config, runs, parts, inputs, settings, scratch, prefixed,
        )?);
    }
    Ok(())
}

fn check_len_designs(found: usize, expected: usize) -> Result<(), ComponentError> {
    crate::component_error::check_len("block designs", found, expected)
}

/// The configuration index of `designs` and grid option `grid` (the inverse of `decode`).
fn encode(designs: &[usize], grid: usize, radices: &[usize]) -> u64 {
    designs
        .iter()
        .zip(radices)
        .rev()
        .fold(grid as u64, |index, (d, r)| index * *r as u64 + *d as u64)
}

/// [`screen_config`], with the first members' sums taken from `scratch.prefix` when
/// `prefixed` (they must be those of `config`'s first designs).
fn screen<'p>(
    config: Config<'_>,
    runs: &[Vec<LocalRun>],
    parts: &'p [Vec<Option<ResidualParts>>],
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
    scratch: &mut ScreenScratch<'p>,
    prefixed: bool,
) -> Result<ConfigResult, ComponentError> {
    let steps = runs
        .first()
        .zip(config.designs.first())
        .map_or(0, |(r, d)| r[*d].residual_kw.len());
    scratch.members.clear();
    for (p, d) in parts.iter().zip(config.designs) {
        match &p[*d] {
            Some(part) => scratch.members.push(part),
            None => return evaluate_config(config, runs, inputs, settings),
        }
    }
    let mut acc = accounts(inputs, scratch.members.len(), Detail::Totals)?;
    let (max_purchase_kw, max_sale_kw) = grid_limits(config.grid_connected, settings);
    let year = ShareYear {
        steps,
        members: &scratch.members,
        grid_at_peak: inputs.grid_at_peak,
        max_purchase_kw,
        max_sale_kw,
        // `record_pro_rata_year` checks they are the sums of these members' first ones.
        prefix: prefixed.then_some(&scratch.prefix),
    };
    if !acc.record_pro_rata_year(&year, &mut scratch.shares)? {
        return evaluate_config(config, runs, inputs, settings);
    }
    close_totals(config, runs, acc, inputs, settings)
}

/// Replay one configuration with the community market (exact: the step's market stage over
/// the same residuals, every member's meter, the market's own money).
pub fn evaluate_config_market(
    config: Config<'_>,
    runs: &[Vec<LocalRun>],
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
    market: &MarketReplay<'_>,
) -> Result<ConfigResult, ComponentError> {
    let chosen: Vec<&LocalRun> = runs
        .iter()
        .zip(config.designs)
        .map(|(r, d)| &r[*d])
        .collect();
    let n = chosen.len();
    let mut stage = MarketStage::new(
        market.market,
        market.ids,
        market.retail_eur_per_mwh,
        market.feed_in_eur_per_mwh,
        inputs.steps_per_hour,
    )?
    // The replay settles nothing.
    .keep_trades(false);
    let mut acc = accounts(inputs, n, Detail::Members)?;
    let mut energy: Vec<EnergySums> = chosen
        .iter()
        .map(|r| EnergySums {
            load_kwh: r.load_kwh,
            pv_kwh: r.pv_kwh,
            wind_kwh: r.wind_kwh,
            ..EnergySums::default()
        })
        .collect();
    let dt = inputs.dt_h;
    replay(
        &chosen,
        config.grid_connected,
        inputs,
        settings,
        &mut stage,
        |t, allocations| {
            for (e, a) in energy.iter_mut().zip(allocations) {
                e.add_metered(a, dt);
            }
            acc.record(t, allocations)
        },
    )?;
    let year = stage.finish();
    let community_energy = EnergySums::total(&energy);
    let closing = MembersClosing {
        economics: settings.economics,
        internal_eur_per_kwh: inputs.internal_eur_per_kwh,
        cer_npc_factor: inputs.cer_npc_factor,
        members: chosen
            .iter()
            .zip(&energy)
            .map(|(r, e)| MemberClosing {
                components: &r.components,
                energy: *e,
                ev_wear_eur: 0.0,
            })
            .collect(),
        community_energy,
        market: Some(&year),
    };
    let money = acc.finish_members(&closing)?;
    let c = &money.community;
    Ok(ConfigResult {
        index: config.index,
        designs: config.designs.to_vec(),
        grid_connected: config.grid_connected,
        npc_eur: c.npc_eur,
        annualized_cost_eur: c.annualized_cost_eur,
        coe_eur_per_kwh: c.coe_eur_per_kwh.unwrap_or(f64::NAN),
        renewable_fraction: c.renewable_fraction.unwrap_or(0.0),
        unmet_fraction: unmet_fraction(community_energy.unmet_kwh, community_energy.load_kwh),
        initial_capital_eur: c.initial_capital_eur,
        grid_import_kwh: community_energy.grid_import_kwh,
        grid_export_kwh: community_energy.grid_export_kwh,
        p2p_kwh: community_energy.p2p_import_kwh,
        cer_shared_energy_kwh: money.cer.shared_energy_kwh,
        cer_incentive_eur: money.cer.total_eur,
        excess_kwh: community_energy.excess_kwh,
        market_replayed: true,
    })
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
    // One parallel pass over every (prosumer, design): a prosumer with fewer designs than
    // cores would leave cores idle if each prosumer's designs were a pass of their own.
    let jobs: Vec<(&ProsumerSpace<'_>, &LocalDesign)> = spaces
        .iter()
        .flat_map(|space| space.designs.iter().map(move |d| (space, d)))
        .collect();
    let mut flat = jobs
        .par_iter()
        .map(|(space, d)| run_local(space, d, steps, inputs.dt_h, &settings.economics))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let runs: Vec<Vec<LocalRun>> = spaces
        .iter()
        .map(|space| flat.by_ref().take(space.designs.len()).collect())
        .collect();
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
    let parts = residual_parts(&runs);
    // Stage 2: configurations in blocks that differ only in the last prosumer's design (its
    // first members' sums computed once per block: `screen_block`), blocks in chunks so that
    // cancellation and progress stay responsive. Blocks enumerate the first prosumers'
    // designs (mixed radix), then the grid option; the results are sorted by index below, so
    // neither the order nor the thread count changes them.
    let (first_radices, last_radix) = match radices.split_last() {
        Some((last, first)) => (first, *last as u64),
        None => (&radices[..], 1),
    };
    let space = Screened {
        radices: &radices,
        runs: &runs,
        parts: &parts,
    };
    let blocks = total / last_radix;
    let blocks_per_chunk = (256 / last_radix).max(1);
    let done = AtomicU64::new(0);
    let chunks = blocks.div_ceil(blocks_per_chunk);
    let evaluated_chunks: Vec<Vec<ConfigResult>> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut out = Vec::new();
            if cancel.load(Ordering::Relaxed) {
                return Ok(out);
            }
            let mut first = vec![0usize; first_radices.len()];
            let mut scratch = ScreenScratch::default();
            for b in c * blocks_per_chunk..((c + 1) * blocks_per_chunk).min(blocks) {
                let grid = decode(b, first_radices, &mut first) as usize;
                let block = Block {
                    first_designs: &first,
                    grid_connected: grid_options[grid],
                    grid_option: grid,
                };
                screen_block(block, &space, inputs, settings, &mut scratch, &mut out)?;
            }
            let n = done.fetch_add(out.len() as u64, Ordering::Relaxed) + out.len() as u64;
            progress(n, total);
            Ok(out)
        })
        .collect::<Result<_, ComponentError>>()?;
    let mut results: Vec<ConfigResult> = evaluated_chunks.into_iter().flatten().collect();
    let evaluated = results.len() as u64;
    let feasible = |r: &ConfigResult| {
        r.unmet_fraction <= settings.max_unmet_fraction + 1e-12 && r.npc_eur.is_finite()
    };
    results.retain(feasible);
    let mut infeasible = evaluated - results.len() as u64;
    sort(&mut results);
    let market = match &inputs.market {
        Some(m) => {
            let (check, dropped) = replay_market(&mut results, &runs, inputs, settings, m, cancel)?;
            infeasible += dropped;
            Some(check)
        }
        None => None,
    };
    Ok(SearchOutcome {
        ranked: results,
        evaluated,
        infeasible,
        total,
        cancelled: evaluated < total || cancel.load(Ordering::Relaxed),
        market,
    })
}

fn sort(results: &mut [ConfigResult]) {
    results.sort_by(|a, b| a.npc_eur.total_cmp(&b.npc_eur).then(a.index.cmp(&b.index)));
}

/// Replay the market over the best of the screening, round after round, until the cheapest
/// configuration of the ranking is one replayed with the market (or nothing is left).
/// Returns what the replay found and how many replayed configurations the market made
/// infeasible (dropped from the ranking).
fn replay_market(
    results: &mut Vec<ConfigResult>,
    runs: &[Vec<LocalRun>],
    inputs: &SearchInputs<'_>,
    settings: &SearchSettings,
    market: &MarketReplay<'_>,
    cancel: &AtomicBool,
) -> Result<(MarketCheck, u64), ComponentError> {
    let per_round = settings.market_replays.max(1);
    let mut check = MarketCheck {
        replayed: 0,
        max_npc_change_eur: 0.0,
        max_npc_change_fraction: 0.0,
    };
    let mut dropped = 0u64;
    loop {
        if results.first().is_none_or(|r| r.market_replayed) || cancel.load(Ordering::Relaxed) {
            break;
        }
        let picked: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.market_replayed)
            .map(|(i, _)| i)
            .take(per_round)
            .collect();
        let exact: Vec<ConfigResult> = picked
            .par_iter()
            .map(|&i| {
                let r = &results[i];
                let config = Config {
                    index: r.index,
                    designs: &r.designs,
                    grid_connected: r.grid_connected,
                };
                evaluate_config_market(config, runs, inputs, settings, market)
            })
            .collect::<Result<_, _>>()?;
        for (&i, e) in picked.iter().zip(exact) {
            let screened = results[i].npc_eur;
            let change = (e.npc_eur - screened).abs();
            check.replayed += 1;
            check.max_npc_change_eur = check.max_npc_change_eur.max(change);
            if screened != 0.0 {
                check.max_npc_change_fraction =
                    check.max_npc_change_fraction.max(change / screened.abs());
            }
            results[i] = e;
        }
        let before = results.len();
        results.retain(|r| {
            !r.market_replayed
                || (r.unmet_fraction <= settings.max_unmet_fraction + 1e-12
                    && r.npc_eur.is_finite())
        });
        dropped += (before - results.len()) as u64;
        sort(results);
    }
    Ok((check, dropped))
}
