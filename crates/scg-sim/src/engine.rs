//! The simulated year: prepare the series ([`crate::prepare`]), run the community step of the
//! paper's flow chart every step ([`crate::year`]), then account for money: grid bills, P2P
//! payments at the internal price, the CER incentive and HOMER's net present cost.
//!
//! Each prosumer draws from its own generator seeded by [`prosumer_seed`]`(seed, id)`, so adding,
//! removing or reordering prosumers never changes another prosumer's load.

use crate::SimError;
use crate::accounting::{
    AccountsSetup, CerSetup, Detail, MemberClosing, MembersClosing, YearAccounts,
};
use crate::assets::{Assets, ProsumerAssets};
use crate::battery::{Battery, Storage};
use crate::cer::CerResult;
use crate::community::{Community, Sharing};
use crate::converter::Converter;
use crate::dispatch::{BatteryUnit, MemberBattery};
use crate::economics::ComponentCosts;
use crate::inputs::ResolvedInputs;
use crate::members::{
    BlockConsumer, BlockSetup, BlockSink, FLOWS, MemberBlock, MemberSeries, MemberTotals, Meters,
};
use crate::metrics::{LoadReport, load_report, load_report_with_baseline};
use crate::prepare::EvYear;
use crate::prepare::{PrepareOptions, Prepared, prepare_with};
pub use crate::prepare::{prosumer_seed, synthesize_load};
use crate::year::{EnergySums, FlowSeries, Prices, SeriesSink, YearSettings, drive};
use scg_model::{Scenario, TimeGrid};
use scg_resource::load::LoadYear;
use serde::Serialize;

/// A PV array's year.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PvArrayYield {
    pub capacity_kwp: f64,
    pub energy_kwh: f64,
    pub specific_yield_kwh_per_kwp: f64,
}

pub use crate::accounting::Economics;

/// One prosumer's year.
#[derive(Debug, Clone, PartialEq)]
pub struct ProsumerResult {
    pub id: String,
    pub name: String,
    /// The load (its series empty after a streamed run: [`simulate_streaming`]).
    pub load: LoadYear,
    pub load_report: LoadReport,
    pub flows: FlowSeries,
    pub energy: EnergySums,
    pub pv_arrays: Vec<PvArrayYield>,
    pub battery_throughput_kwh: f64,
    pub economics: Economics,
    /// The EV fleet's year (empty without EVs).
    pub ev: crate::prepare::EvYear,
    /// The home agent's figures (`[prosumers.home]`; `None` without a home section).
    pub home: Option<scg_home::carve::HomeResult>,
    /// The devices it has metered besides its supply point.
    pub meters: Meters,
}

/// The community's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunityResult {
    /// Sum of the prosumers' loads, kW per step.
    pub load_kw: Vec<f64>,
    /// Sum of the prosumers' baselines, kW per step.
    pub baseline_kw: Vec<f64>,
    pub load_report: LoadReport,
    pub energy: EnergySums,
    pub economics: Economics,
    pub cer: CerResult,
    /// The CER rule the year was accounted with (`None` when the community is not a CER):
    /// the settlement pays the same rule in ledger integers (`scg_ledger::cer`).
    pub cer_params: Option<crate::cer::CerParams>,
    pub grid_at_peak_steps: usize,
    /// The community market's year, when a market replaced pro-rata sharing.
    pub market: Option<crate::market_stage::MarketYear>,
    /// Per member flow ([`crate::members::Flow`] order), the sum over the members at each
    /// step, kW.
    pub flows_kw: [Vec<f64>; FLOWS],
}

/// A simulated year.
#[derive(Debug, Clone, PartialEq)]
pub struct SimResult {
    pub grid: TimeGrid,
    pub seed: u64,
    pub prosumers: Vec<ProsumerResult>,
    pub community: CommunityResult,
    /// Zonal price per step, EUR/MWh.
    pub zonal_step_eur_per_mwh: Vec<f64>,
    /// Zonal price per hour (the mean of its steps), EUR/MWh: the CER's hourly price.
    pub zonal_hourly_eur_per_mwh: Vec<f64>,
    pub grid_at_peak: Vec<bool>,
    /// Retail (grid purchase) price per step, EUR/MWh.
    pub retail_eur_per_mwh: Vec<f64>,
    /// Time-of-use band (F1/F2/F3) per step.
    pub tariff_band: Vec<scg_resource::tariff::Band>,
}

impl SimResult {
    /// What a streamed run hands its consumer before the first block ([`MemberStream::head`]),
    /// from the result of a run (the same values).
    pub fn head(&self) -> YearHead {
        YearHead {
            grid: self.grid.clone(),
            seed: self.seed,
            ids: self.prosumers.iter().map(|p| p.id.clone()).collect(),
            meters: self.prosumers.iter().map(|p| p.meters).collect(),
            zonal_hourly_eur_per_mwh: self.zonal_hourly_eur_per_mwh.clone(),
            cer_params: self.community.cer_params,
            market: self.community.market.is_some(),
        }
    }
}

/// What a consumer of the year's member blocks needs before the first of them (a
/// settlement registers the members and their meters, and divides the CER hour by hour):
/// known once the community is prepared, before the year runs.
#[derive(Debug, Clone, PartialEq)]
pub struct YearHead {
    pub grid: TimeGrid,
    pub seed: u64,
    /// The members' ids, in scenario order (a block's member `i` is `ids[i]`).
    pub ids: Vec<String>,
    /// Each member's metered devices.
    pub meters: Vec<Meters>,
    /// Zonal price per hour (the mean of its steps), EUR/MWh: the CER's hourly price.
    pub zonal_hourly_eur_per_mwh: Vec<f64>,
    /// The CER rule (`None` when the community is not a CER).
    pub cer_params: Option<crate::cer::CerParams>,
    /// Whether a community market clears the P2P trades (pro-rata sharing otherwise).
    pub market: bool,
}

/// Build a prosumer's battery unit from its configs.
pub fn battery_unit(a: &ProsumerAssets) -> Result<MemberBattery, SimError> {
    match (&a.battery, &a.converter) {
        (Some(b), Some(c)) => Ok(Some(Box::new(BatteryUnit {
            battery: Battery::from_config(b)?,
            converter: Converter::from_config(c)?,
        }))),
        _ => Ok(None),
    }
}

/// Type the scenario's components, read its files through `read`, and simulate one year.
pub fn simulate_scenario(
    scenario: &Scenario,
    read: &mut crate::inputs::Reader<'_>,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SimResult, SimError> {
    let assets = Assets::from_scenario(scenario).map_err(SimError::Invalid)?;
    let inputs = crate::inputs::resolve_inputs(scenario, &assets, read)?;
    simulate(scenario, &assets, &inputs, seed, progress)
}

/// What a simulation keeps beyond the year's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOptions {
    /// Keep every P2P trade of the year (`MarketYear::trades`, what the ledger settles); in a
    /// streamed run, each block's trades go with it (`MemberBlock::trades`) and the year's are
    /// not held. A run that settles nothing (`scg simulate --no-ledger`) need not keep them.
    pub keep_trades: bool,
    /// Keep every step's market book (`MarketYear::books`: the members' orders, the grid's
    /// prices), for `scg testnet`, which submits them to the member chain.
    pub keep_books: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            keep_trades: true,
            keep_books: false,
        }
    }
}

/// Simulate one year. `progress(done, total)` is called after each prosumer is prepared and
/// once more when the year has run.
pub fn simulate(
    scenario: &Scenario,
    assets: &Assets,
    inputs: &ResolvedInputs,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SimResult, SimError> {
    simulate_with(
        scenario,
        assets,
        inputs,
        seed,
        SimOptions::default(),
        progress,
    )
}

/// [`simulate`] keeping what `options` say.
pub fn simulate_with(
    scenario: &Scenario,
    assets: &Assets,
    inputs: &ResolvedInputs,
    seed: u64,
    options: SimOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SimResult, SimError> {
    simulate_streaming(scenario, assets, inputs, seed, options, None, progress)
}

/// Where the members' series of a streamed run go: block by block to `consumer` while the year
/// runs ([`crate::members::BlockSink`]), blocks of `block_steps` steps.
pub struct MemberStream<'c> {
    pub block_steps: usize,
    pub consumer: &'c mut BlockConsumer<'c>,
    /// Called once with the year's [`YearHead`] before the first block, if given.
    pub head: Option<&'c mut HeadConsumer<'c>>,
}

/// What takes a streamed year's [`YearHead`]; an error stops the year.
pub type HeadConsumer<'a> = dyn FnMut(&YearHead) -> Result<(), SimError> + 'a;

impl std::fmt::Debug for MemberStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberStream")
            .field("block_steps", &self.block_steps)
            .finish_non_exhaustive()
    }
}

/// Whether a scenario's members' series can be streamed ([`simulate_streaming`]): not when a
/// member has a home agent (its load is known only at the end of the year).
pub fn can_stream(assets: &Assets) -> bool {
    assets.prosumers.iter().all(|a| a.home.is_none())
}

/// [`simulate_with`]; with `stream`, the members' series are handed to its consumer block by
/// block as the year runs and not kept: the result's `flows` and its members' load series
/// (`load.load_kw`, `load.baseline_kw`) are empty and its EV years hold no series (their
/// figures, the members' energy and load reports and the community's per-step sums are the
/// same bits as a run that keeps them). The stream's `head` gets the [`YearHead`] before the
/// first block (the same as [`SimResult::head`] of the result); with `options.keep_trades`
/// the market's trades go with the blocks and the result's `MarketYear::trades` is empty.
/// Refused when not [`can_stream`].
pub fn simulate_streaming(
    scenario: &Scenario,
    assets: &Assets,
    inputs: &ResolvedInputs,
    seed: u64,
    options: SimOptions,
    stream: Option<MemberStream<'_>>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SimResult, SimError> {
    if stream.is_some() && !can_stream(assets) {
        return Err(SimError::Scenario(
            "the members' series cannot be streamed with a [prosumers.home] section".into(),
        ));
    }
    let total = scenario.prosumers.len() + 1;
    // A streamed run keeps no member's series: neither need the baselines nor the arrays',
    // and the loads are drawn again as the year reads them.
    let lean = PrepareOptions {
        lean: stream.is_some(),
        draw_loads: stream.is_some(),
        draw_pv: stream.is_some(),
    };
    let prepared = prepare_with(scenario, assets, inputs, seed, lean, &mut |done, _| {
        progress(done, total)
    })?;
    let result = run_prepared_with(scenario, assets, prepared, seed, options, stream)?;
    progress(total, total);
    Ok(result)
}

/// Run the year and the accounting on a prepared community.
pub fn run_prepared(
    scenario: &Scenario,
    assets: &Assets,
    prepared: Prepared,
    seed: u64,
    options: SimOptions,
) -> Result<SimResult, SimError> {
    run_prepared_with(scenario, assets, prepared, seed, options, None)
}

/// The members' flows after the year: kept series or, streamed, only their totals.
enum MemberFlows {
    Kept(Vec<FlowSeries>),
    Streamed(Box<MemberTotals>),
}

/// [`run_prepared`], streaming the members' series to `stream` if given.
fn run_prepared_with(
    scenario: &Scenario,
    assets: &Assets,
    prepared: Prepared,
    seed: u64,
    options: SimOptions,
    stream: Option<MemberStream<'_>>,
) -> Result<SimResult, SimError> {
    let grid = prepared.grid.clone();
    let steps = grid.len();
    let dt = grid.step_hours();
    // Its sums stand for the loads after the year only in a streamed run (no home agent).
    if stream.is_none() && prepared.load_sums.is_some() {
        return Err(SimError::Scenario(
            "a prepare that draws the loads again in the year is for a streamed run only".into(),
        ));
    }
    let series = prepared.series();
    let batteries = assets
        .prosumers
        .iter()
        .map(battery_unit)
        .collect::<Result<Vec<_>, _>>()?;
    let fleets = scenario
        .prosumers
        .iter()
        .zip(&assets.prosumers)
        .enumerate()
        .map(|(i, (p, a))| crate::prepare::fleet(i, p, a, &grid, seed))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = YearSettings {
        dt_h: dt,
        grid_at_peak: &prepared.grid_at_peak,
        max_purchase_kw: assets.grid.max_purchase_kw.unwrap_or(f64::INFINITY),
        max_sale_kw: assets.grid.max_sale_kw.unwrap_or(f64::INFINITY),
    };
    // The EV agents and the market see the retail (purchase) price, EUR/MWh.
    let (retail, feed_in) = prepared.prices_eur_per_mwh();
    let ids: Vec<String> = scenario.prosumers.iter().map(|p| p.id.clone()).collect();
    let sharing = match &scenario.community.market {
        None => Sharing::ProRata,
        Some(m) => Sharing::Market(Box::new(
            crate::market_stage::MarketStage::new(
                crate::market_stage::community_market(m)?,
                &ids,
                &retail,
                &feed_in,
                grid.steps_per_hour(),
            )?
            .keep_trades(options.keep_trades)
            .keep_books(options.keep_books),
        )),
    };
    // A streamed run hands the kept trades on with the members' blocks, interval by interval.
    let sharing = match sharing {
        Sharing::Market(m) if options.keep_trades && stream.is_some() => {
            Sharing::Market(Box::new(m.keep_interval_trades()))
        }
        other => other,
    };
    // The home agents (`[prosumers.home]`): stage 3 of the step.
    let members: Vec<crate::home::HomeMember<'_>> = scenario
        .prosumers
        .iter()
        .zip(&assets.prosumers)
        .zip(&prepared.prosumers)
        .map(|((p, a), prep)| crate::home::HomeMember {
            id: &p.id,
            home: a.home.as_ref(),
            load_kw: &prep.load.load_kw,
            outdoor_c: (!prepared.temperature_c.is_empty()).then_some(&prepared.temperature_c[..]),
        })
        .collect();
    let mut homes = crate::home::HomeStage::new(
        &members,
        scg_home::agent::AgentSettings {
            step_minutes: grid.step_minutes(),
            surplus_price_eur_per_mwh: scenario.community.internal_price_eur_per_mwh,
        },
    )?;
    let has_fleet: Vec<bool> = fleets.iter().map(Option::is_some).collect();
    let has_battery: Vec<bool> = batteries.iter().map(Option::is_some).collect();
    let mut community = Community::new(settings.community(), batteries, fleets, sharing)?;
    let n = series.len();
    // One pass: the series for the outputs and the year's money, fed each interval.
    let mut accounts = YearAccounts::new(&AccountsSetup {
        tariff: &prepared.tariff,
        steps_per_hour: grid.steps_per_hour(),
        members: n,
        cer: CerSetup {
            enabled: assets.cer.enabled,
            params: assets.cer.params(),
            zonal_hourly_eur_per_mwh: &prepared.zonal_hourly_eur_per_mwh,
        },
        detail: Detail::Members,
    })?;
    let streaming = stream.is_some();
    // Each fleet's year grows step by step (its powers, not the steps' records); a streamed
    // run keeps only its figures.
    let mut ev_years: Vec<EvYear> = has_fleet
        .iter()
        .map(|keep| EvYear::started(if *keep && !streaming { steps } else { 0 }))
        .collect();
    let computed_surplus;
    let surplus_kw: &[f64] = match &prepared.load_sums {
        Some(sums) => &sums.surplus_kw,
        None => {
            computed_surplus = crate::year::community_surplus_kw(&series, steps);
            &computed_surplus
        }
    };
    // Only the members with a fleet are visited each step (a city's others are a cache miss
    // each for nothing).
    let fleet_members: Vec<usize> = (0..n).filter(|i| has_fleet[*i]).collect();
    let mut on_ev = |t: usize, ev: &[scg_ev::fleet::EvStepPower]| {
        for &i in &fleet_members {
            if let (Some(year), Some(p)) = (ev_years.get_mut(i), ev.get(i)) {
                if streaming {
                    year.push_totals(p);
                } else {
                    year.push_step(p);
                }
            }
        }
        absorb_surplus_step(&mut ev_years, &fleet_members, ev, surplus_kw[t], dt);
    };
    if let Some(h) = homes.as_mut() {
        community = community.with_flexible_load(Box::new(h));
    }
    let prices = Prices {
        retail_eur_per_mwh: &retail,
        feed_in_eur_per_mwh: &feed_in,
        community_surplus_kw: Some(surplus_kw),
    };
    let member_flows = match stream {
        None => {
            let mut sink = (SeriesSink::new(n, steps), &mut accounts);
            drive(
                &mut community,
                &series,
                &settings,
                &prices,
                steps,
                &mut sink,
                &mut on_ev,
            )?;
            MemberFlows::Kept(sink.0.prosumers)
        }
        Some(stream) => {
            if let Some(head) = stream.head {
                head(&YearHead {
                    grid: grid.clone(),
                    seed,
                    ids: ids.clone(),
                    meters: assets.prosumers.iter().map(Meters::of).collect(),
                    zonal_hourly_eur_per_mwh: prepared.zonal_hourly_eur_per_mwh.clone(),
                    cer_params: assets.cer.enabled.then(|| assets.cer.params()),
                    market: scenario.community.market.is_some(),
                })?;
            }
            let setup = BlockSetup {
                fleet: has_fleet.clone(),
                has_battery,
                steps,
                block_steps: stream.block_steps,
            };
            let mut sink = (BlockSink::new(setup, stream.consumer), &mut accounts);
            drive(
                &mut community,
                &series,
                &settings,
                &prices,
                steps,
                &mut sink,
                &mut on_ev,
            )?;
            MemberFlows::Streamed(Box::new(sink.0.finish()))
        }
    };
    let end = community.finish();
    let mut home_years = homes
        .map(crate::home::HomeStage::finish)
        .unwrap_or_default();
    home_years.resize_with(series.len(), Default::default);
    let market = end.market;
    let batteries = end.batteries;
    for (year, f) in ev_years.iter_mut().zip(&end.fleets) {
        match f {
            Some(f) => year.departures = f.departures().to_vec(),
            None => *year = EvYear::default(),
        }
    }
    drop(series);

    let mut preps = prepared.prosumers;
    // The load each prosumer drew: the home agent's change applied (none when unmanaged).
    for (prep, home) in preps.iter_mut().zip(&home_years) {
        for (l, c) in prep.load.load_kw.iter_mut().zip(&home.load_change_kw) {
            *l += c;
        }
    }
    let (flows, totals) = match member_flows {
        MemberFlows::Kept(mut flows) => {
            for (f, ev) in flows.iter_mut().zip(&ev_years) {
                f.ev_kw = ev.demand_series.clone();
                f.v2g_kw = ev.v2g_kw.clone();
            }
            let fleet: Vec<bool> = ev_years.iter().map(EvYear::has_steps).collect();
            let kept: Vec<MemberSeries<'_>> = preps
                .iter()
                .zip(&flows)
                .zip(&ev_years)
                .map(|((prep, flows), ev)| MemberSeries {
                    load_kw: &prep.load.load_kw,
                    flows,
                    ev,
                })
                .collect();
            let totals = totals_of_series(&kept, fleet, steps);
            (flows, totals)
        }
        MemberFlows::Streamed(totals) => (vec![FlowSeries::default(); n], *totals),
    };
    let (energies, flow_sums_kw) = totals.finish(dt);

    let econ_params = assets.economics.params();
    let mut prosumers = Vec::with_capacity(n);
    let baseline_kw = prepared.baseline_sum_kw;
    let mut parts = Vec::with_capacity(n);
    for (i, ((((prep, flows), ev), home), energy)) in preps
        .into_iter()
        .zip(flows)
        .zip(ev_years)
        .zip(home_years)
        .zip(energies)
        .enumerate()
    {
        let a = &assets.prosumers[i];
        let throughput = batteries[i]
            .as_ref()
            .map_or(0.0, |u| u.battery.throughput_kwh());
        parts.push((
            prep,
            flows,
            ev,
            energy,
            throughput,
            components(a, throughput),
            home.result,
        ));
    }
    let energies: Vec<EnergySums> = parts.iter().map(|p| p.3).collect();
    let energy = EnergySums::total(&energies);
    let closing = MembersClosing {
        economics: econ_params,
        internal_eur_per_kwh: scenario.community.internal_price_eur_per_mwh / 1000.0,
        cer_npc_factor: crate::assets::cer_npc_factor(assets),
        members: parts
            .iter()
            .map(|(_, _, ev, energy, _, components, _)| MemberClosing {
                components,
                energy: *energy,
                ev_wear_eur: ev.degradation_cost_eur,
            })
            .collect(),
        community_energy: energy,
        market: market.as_ref(),
    };
    let money = accounts.finish_members(&closing)?;
    // Each member's load report, and the community's load step by step (each step summed over
    // the members in their order), on every core: a city's 10,000 years are read three times
    // here. The same bits whatever the number of threads.
    let load_reports: Vec<LoadReport> = {
        use rayon::prelude::*;
        parts
            .par_iter_mut()
            .map(|(prep, ..)| match prep.load_report.take() {
                // Taken in `prepare`, where the load was drawn.
                Some(report) => report,
                None => load_report_with_baseline(
                    &prep.load.load_kw,
                    prep.baseline_stats.clone(),
                    prep.load.scale_factor,
                    &grid,
                ),
            })
            .collect()
    };
    // A streamed run has no home agent: its loads are the ones `prepare` summed.
    let load_kw = match prepared.load_sums {
        Some(sums) => sums.load_kw,
        None => crate::year::step_sums(&parts, steps, 0.0, |(prep, ..), t| {
            prep.load.load_kw.get(t).copied().unwrap_or(0.0)
        }),
    };
    for (((i, (prep, flows, ev, energy, throughput, _, home)), economics), load_report) in parts
        .into_iter()
        .enumerate()
        .zip(money.members)
        .zip(load_reports)
    {
        let p = &scenario.prosumers[i];
        let a = &assets.prosumers[i];
        let pv_arrays =
            a.pv.iter()
                .zip(&prep.pv_array_kwh)
                .map(|(spec, energy_kwh)| {
                    let energy_kwh = *energy_kwh;
                    let kwp = spec.array.capacity_kwp;
                    PvArrayYield {
                        capacity_kwp: kwp,
                        energy_kwh,
                        specific_yield_kwh_per_kwp: if kwp > 0.0 { energy_kwh / kwp } else { 0.0 },
                    }
                })
                .collect();
        let mut load = prep.load;
        if streaming {
            // Its figures are taken: a streamed result holds no member's series.
            load.load_kw = Vec::new();
        }
        prosumers.push(ProsumerResult {
            meters: Meters::of(a),
            id: p.id.clone(),
            name: p.name.clone().unwrap_or_else(|| p.id.clone()),
            load_report,
            load,
            flows,
            energy,
            pv_arrays,
            battery_throughput_kwh: throughput,
            economics,
            ev,
            home,
        });
    }
    let cer_result = money.cer;
    let economics = money.community;
    let community_scale = community_scale_factor(&load_kw, &baseline_kw);
    let community = CommunityResult {
        load_report: load_report(&load_kw, &baseline_kw, community_scale, &grid),
        load_kw,
        baseline_kw,
        energy,
        economics,
        cer: cer_result,
        cer_params: assets.cer.enabled.then(|| assets.cer.params()),
        grid_at_peak_steps: prepared.grid_at_peak.iter().filter(|p| **p).count(),
        market,
        flows_kw: flow_sums_kw,
    };
    Ok(SimResult {
        grid,
        seed,
        prosumers,
        community,
        zonal_step_eur_per_mwh: prepared.zonal_step_eur_per_mwh,
        zonal_hourly_eur_per_mwh: prepared.zonal_hourly_eur_per_mwh,
        grid_at_peak: prepared.grid_at_peak,
        retail_eur_per_mwh: prepared
            .tariff
            .purchase_eur_per_kwh()
            .iter()
            .map(|p| p * 1000.0)
            .collect(),
        tariff_band: prepared.bands,
    })
}

/// Community surplus absorbed by EV charging at one step: the community's surplus before
/// storage and EVs (Σ max(0, PV + wind − load)) taken by the EV demand (charging and swap
/// chargers) up to that demand, shared among the fleets pro rata to their demand, kWh.
fn absorb_surplus_step(
    years: &mut [EvYear],
    fleet_members: &[usize],
    ev: &[scg_ev::fleet::EvStepPower],
    surplus_kw: f64,
    dt_h: f64,
) {
    let demand_of = |i: usize| ev.get(i).map_or(0.0, |p| p.charge_kw + p.swap_kw);
    // Summed over the fleets only, in member order: a member without one adds +0.0, which
    // leaves a sum that is not zero unchanged (and a zero one is not used).
    let demand: f64 = fleet_members.iter().map(|&i| demand_of(i)).sum();
    if demand <= 0.0 || surplus_kw <= 0.0 {
        return;
    }
    let absorbed = demand.min(surplus_kw);
    for &i in fleet_members {
        if let Some(e) = years.get_mut(i) {
            e.surplus_absorbed_kwh += absorbed * demand_of(i) / demand * dt_h;
        }
    }
}

/// The members' totals from their kept series, block by block as a streamed run adds them.
fn totals_of_series(members: &[MemberSeries<'_>], fleet: Vec<bool>, steps: usize) -> MemberTotals {
    let mut totals = MemberTotals::new(fleet, steps);
    let block_steps = crate::members::block_steps(members.len(), steps);
    let mut block = MemberBlock::default();
    let mut first = 0;
    while first < steps {
        let len = block_steps.min(steps - first);
        block.fill_from_series(members, first, len);
        totals.add_block(&block);
        first += len;
    }
    totals
}

/// The components of a prosumer, priced.
pub fn components(
    a: &ProsumerAssets,
    battery_throughput_kwh: f64,
) -> Vec<(String, ComponentCosts)> {
    let mut out = Vec::new();
    for (k, pv) in a.pv.iter().enumerate() {
        out.push((
            format!("pv[{k}]"),
            pv.costs.for_capacity(pv.array.capacity_kwp),
        ));
    }
    for (k, t) in a.turbines.iter().enumerate() {
        out.push((
            format!("wind_turbines[{k}]"),
            t.costs.for_count(f64::from(t.turbine.count)),
        ));
    }
    if let Some(b) = &a.battery {
        out.push(("battery".into(), b.costs(battery_throughput_kwh)));
    }
    if let Some(c) = &a.converter {
        out.push(("converter".into(), c.costs()));
    }
    out
}

/// The community's effective scale factor: scaled energy over baseline energy.
fn community_scale_factor(load_kw: &[f64], baseline_kw: &[f64]) -> f64 {
    let base: f64 = baseline_kw.iter().sum();
    if base > 0.0 {
        load_kw.iter().sum::<f64>() / base
    } else {
        1.0
    }
}
