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
use crate::dispatch::BatteryUnit;
use crate::economics::ComponentCosts;
use crate::inputs::ResolvedInputs;
use crate::metrics::{LoadReport, load_report};
use crate::prepare::EvYear;
use crate::prepare::{Prepared, prepare};
pub use crate::prepare::{prosumer_seed, synthesize_load};
use crate::year::{
    EnergySums, FlowSeries, Prices, ProsumerSeries, SeriesSink, YearSettings, drive,
};
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

/// Build a prosumer's battery unit from its configs.
pub fn battery_unit(a: &ProsumerAssets) -> Result<Option<BatteryUnit>, SimError> {
    match (&a.battery, &a.converter) {
        (Some(b), Some(c)) => Ok(Some(BatteryUnit {
            battery: Battery::from_config(b)?,
            converter: Converter::from_config(c)?,
        })),
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
    /// Keep every P2P trade of the year (`MarketYear::trades`, what the ledger settles). A run
    /// that settles nothing (`scg simulate --no-ledger`) need not hold a city's year of trades.
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
    let total = scenario.prosumers.len() + 1;
    let prepared = prepare(scenario, assets, inputs, seed, &mut |done, _| {
        progress(done, total)
    })?;
    let result = run_prepared(scenario, assets, prepared, seed, options)?;
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
    let grid = prepared.grid.clone();
    let steps = grid.len();
    let dt = grid.step_hours();
    let series: Vec<ProsumerSeries<'_>> = prepared
        .prosumers
        .iter()
        .map(|p| ProsumerSeries {
            load_kw: &p.load.load_kw,
            pv_kw_per_kwp: &p.pv_kw_per_kwp,
            pv_kwp: p.pv_kwp,
            wind_kw_per_turbine: &p.wind_kw_per_turbine,
            turbines: p.turbines,
            ev_kw: &[],
            v2g_kw: &[],
        })
        .collect();
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
    let mut community = Community::new(settings.community(), batteries, fleets, sharing)?;
    let n = series.len();
    // One pass: the series for the outputs and the year's money, fed each interval.
    let accounts = YearAccounts::new(&AccountsSetup {
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
    let mut sink = (SeriesSink::new(n, steps), accounts);
    let with_ev: Vec<bool> = assets.prosumers.iter().map(|a| a.ev.is_some()).collect();
    // Each fleet's year grows step by step (its powers, not the steps' records).
    let mut ev_years: Vec<EvYear> = with_ev
        .iter()
        .map(|keep| EvYear::started(if *keep { steps } else { 0 }))
        .collect();
    if let Some(h) = homes.as_mut() {
        community = community.with_flexible_load(Box::new(h));
    }
    drive(
        &mut community,
        &series,
        &settings,
        &Prices {
            retail_eur_per_mwh: &retail,
            feed_in_eur_per_mwh: &feed_in,
        },
        steps,
        &mut sink,
        &mut |_, ev| {
            for ((keep, year), p) in with_ev.iter().zip(ev_years.iter_mut()).zip(ev) {
                if *keep {
                    year.push_step(p);
                }
            }
        },
    )?;
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
    let surplus_kw = crate::year::community_surplus_kw(&series, steps);
    add_surplus_absorbed(&mut ev_years, &surplus_kw, dt);

    let econ_params = assets.economics.params();
    let mut prosumers = Vec::with_capacity(n);
    let mut load_kw = vec![0.0; steps];
    let mut baseline_kw = vec![0.0; steps];
    let mut parts = Vec::with_capacity(n);
    for (i, (((mut prep, flows), ev), home)) in prepared
        .prosumers
        .into_iter()
        .zip(sink.0.prosumers)
        .zip(ev_years)
        .zip(home_years)
        .enumerate()
    {
        let a = &assets.prosumers[i];
        // The load the prosumer drew: the home agent's change applied (none when unmanaged).
        for (l, c) in prep.load.load_kw.iter_mut().zip(&home.load_change_kw) {
            *l += c;
        }
        let mut flows = flows;
        flows.ev_kw = ev.demand_series.clone();
        flows.v2g_kw = ev.v2g_kw.clone();
        let demand_kw: Vec<f64> = if flows.ev_kw.is_empty() {
            prep.load.load_kw.clone()
        } else {
            prep.load
                .load_kw
                .iter()
                .zip(&flows.ev_kw)
                .map(|(l, e)| l + e)
                .collect()
        };
        let energy = sums(&flows, &demand_kw, ev.has_steps(), dt);
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
    let money = sink.1.finish_members(&closing)?;
    for ((i, (prep, flows, ev, energy, throughput, _, home)), economics) in
        parts.into_iter().enumerate().zip(money.members)
    {
        let p = &scenario.prosumers[i];
        let a = &assets.prosumers[i];
        let pv_arrays =
            a.pv.iter()
                .zip(&prep.pv_array_kw)
                .map(|(spec, kw)| {
                    let energy_kwh = kw.iter().sum::<f64>() * dt;
                    let kwp = spec.array.capacity_kwp;
                    PvArrayYield {
                        capacity_kwp: kwp,
                        energy_kwh,
                        specific_yield_kwh_per_kwp: if kwp > 0.0 { energy_kwh / kwp } else { 0.0 },
                    }
                })
                .collect();
        for (l, v) in load_kw.iter_mut().zip(&prep.load.load_kw) {
            *l += v;
        }
        for (l, v) in baseline_kw.iter_mut().zip(&prep.load.baseline_kw) {
            *l += v;
        }
        prosumers.push(ProsumerResult {
            id: p.id.clone(),
            name: p.name.clone().unwrap_or_else(|| p.id.clone()),
            load_report: load_report(
                &prep.load.load_kw,
                &prep.load.baseline_kw,
                prep.load.scale_factor,
                &grid,
            ),
            load: prep.load,
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

/// Community surplus absorbed by EV charging: each step, the community's surplus before
/// storage and EVs (Σ max(0, PV + wind − load)) taken by the EV demand (charging and swap
/// chargers) up to that demand, shared among the fleets pro rata to their demand, kWh.
fn add_surplus_absorbed(ev: &mut [EvYear], surplus_kw: &[f64], dt_h: f64) {
    for (t, surplus) in surplus_kw.iter().enumerate() {
        let demand: f64 = ev
            .iter()
            .map(|e| e.demand_series.get(t).copied().unwrap_or(0.0))
            .sum();
        if demand <= 0.0 || *surplus <= 0.0 {
            continue;
        }
        let absorbed = demand.min(*surplus);
        for e in ev.iter_mut() {
            let d = e.demand_series.get(t).copied().unwrap_or(0.0);
            e.surplus_absorbed_kwh += absorbed * d / demand * dt_h;
        }
    }
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

/// The year's energy of one prosumer; `fleet`: whether it has an EV fleet (whose V2G series is
/// kept empty while all zero, [`EvYear`]).
fn sums(f: &FlowSeries, load_kw: &[f64], fleet: bool, dt: f64) -> EnergySums {
    let s = |v: &[f64]| v.iter().sum::<f64>() * dt;
    // A series the sink kept empty held only +0.0, whose sum is +0.0 (an empty `sum` is -0.0,
    // what a prosumer without a fleet has always reported for its EV flows).
    let z = |v: &[f64]| if v.is_empty() { 0.0 } else { s(v) };
    EnergySums {
        load_kwh: s(load_kw),
        ev_kwh: s(&f.ev_kw),
        v2g_kwh: if fleet { z(&f.v2g_kw) } else { s(&f.v2g_kw) },
        pv_kwh: z(&f.pv_kw),
        wind_kwh: z(&f.wind_kw),
        battery_in_kwh: z(&f.battery_in_kw),
        battery_out_kwh: z(&f.battery_out_kw),
        p2p_import_kwh: z(&f.p2p_import_kw),
        p2p_export_kwh: z(&f.p2p_export_kw),
        grid_import_kwh: z(&f.grid_import_kw),
        grid_export_kwh: z(&f.grid_export_kw),
        excess_kwh: z(&f.excess_kw),
        unmet_kwh: z(&f.unmet_kw),
        peak_unmet_kw: f.unmet_kw.iter().copied().fold(0.0, f64::max),
    }
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
