//! The simulated year: prepare the series ([`crate::prepare`]), run the community step of the
//! paper's flow chart every step ([`crate::year`]), then account for money: grid bills, P2P
//! payments at the internal price, the CER incentive and HOMER's net present cost.
//!
//! Each prosumer draws from its own generator seeded by [`prosumer_seed`]`(seed, id)`, so adding,
//! removing or reordering prosumers never changes another prosumer's load.

use crate::SimError;
use crate::assets::{Assets, ProsumerAssets};
use crate::battery::{Battery, Storage};
use crate::cer::{self, CerMember, CerResult};
use crate::community::{Community, Sharing};
use crate::converter::Converter;
use crate::dispatch::BatteryUnit;
use crate::economics::{ComponentCosts, EnergyTotals, system_npc};
use crate::grid::{GridBill, GridMeter};
use crate::inputs::ResolvedInputs;
use crate::metrics::{LoadReport, load_report};
use crate::prepare::EvYear;
use crate::prepare::{Prepared, prepare};
pub use crate::prepare::{prosumer_seed, synthesize_load};
use crate::year::{EnergySums, FlowSeries, ProsumerSeries, SeriesSink, YearSettings, drive};
use scg_ev::fleet::EvStepPower;
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

/// Money of one prosumer (or the community), per year and over the project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Economics {
    pub grid_bill: GridBill,
    pub p2p_cost_eur_per_year: f64,
    pub p2p_revenue_eur_per_year: f64,
    /// CER incentive + valorisation allocated to it, EUR/year.
    pub cer_incentive_eur: f64,
    pub initial_capital_eur: f64,
    /// Net present cost, EUR: components, grid bill, P2P money, CER, and V2G battery wear.
    pub npc_eur: f64,
    pub annualized_cost_eur: f64,
    /// Annualized cost per kWh served (HOMER: load served + sales; for a member the sales
    /// include its P2P exports). `None` when nothing is served.
    pub coe_eur_per_kwh: Option<f64>,
    /// 1 − grid purchases ÷ energy served (HOMER, the same served energy as the COE); P2P
    /// energy counts as renewable.
    pub renewable_fraction: Option<f64>,
}

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

/// Simulate one year. `progress(done, total)` is called after each prosumer is prepared and
/// once more when the year has run.
pub fn simulate(
    scenario: &Scenario,
    assets: &Assets,
    inputs: &ResolvedInputs,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SimResult, SimError> {
    let total = scenario.prosumers.len() + 1;
    let prepared = prepare(scenario, assets, inputs, seed, &mut |done, _| {
        progress(done, total)
    })?;
    let result = run_prepared(scenario, assets, prepared, seed)?;
    progress(total, total);
    Ok(result)
}

/// Run the year and the accounting on a prepared community.
pub fn run_prepared(
    scenario: &Scenario,
    assets: &Assets,
    prepared: Prepared,
    seed: u64,
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
    let retail: Vec<f64> = prepared
        .tariff
        .purchase_eur_per_kwh()
        .iter()
        .map(|p| p * 1000.0)
        .collect();
    let feed_in: Vec<f64> = prepared
        .tariff
        .sell_eur_per_kwh()
        .iter()
        .map(|p| p * 1000.0)
        .collect();
    let ids: Vec<String> = scenario.prosumers.iter().map(|p| p.id.clone()).collect();
    let sharing = match &scenario.community.market {
        None => Sharing::ProRata,
        Some(m) => Sharing::Market(Box::new(crate::market_stage::MarketStage::new(
            crate::market_stage::community_market(m)?,
            &ids,
            &retail,
            &feed_in,
            grid.steps_per_hour(),
        ))),
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
    if let Some(h) = homes.as_mut() {
        community = community.with_flexible_load(Box::new(h));
    }
    let mut sink = SeriesSink::new(series.len(), steps);
    let mut ev_steps: Vec<Vec<EvStepPower>> = vec![Vec::new(); series.len()];
    let with_ev: Vec<bool> = assets.prosumers.iter().map(|a| a.ev.is_some()).collect();
    drive(
        &mut community,
        &series,
        &settings,
        &retail,
        steps,
        &mut sink,
        &mut |_, ev| {
            for ((keep, out), p) in with_ev.iter().zip(ev_steps.iter_mut()).zip(ev) {
                if *keep {
                    out.push(p.clone());
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
    let ev_years: Vec<EvYear> = end
        .fleets
        .iter()
        .zip(&ev_steps)
        .map(|(f, s)| match f {
            Some(f) => EvYear::from_steps(s, f.departures()),
            None => EvYear::default(),
        })
        .collect();

    // CER: each member's injection and withdrawal at its own meter (P2P crosses the grid).
    let injected: Vec<Vec<f64>> = sink
        .prosumers
        .iter()
        .map(|f| {
            f.grid_export_kw
                .iter()
                .zip(&f.p2p_export_kw)
                .map(|(g, p)| (g + p) * dt)
                .collect()
        })
        .collect();
    let withdrawn: Vec<Vec<f64>> = sink
        .prosumers
        .iter()
        .map(|f| {
            f.grid_import_kw
                .iter()
                .zip(&f.p2p_import_kw)
                .map(|(g, p)| (g + p) * dt)
                .collect()
        })
        .collect();
    let members: Vec<CerMember<'_>> = injected
        .iter()
        .zip(&withdrawn)
        .map(|(i, w)| CerMember::new(i, w))
        .collect();
    // Without a CER nobody shares: the same evaluation over no members gives zeros.
    let cer_members: &[CerMember<'_>] = if assets.cer.enabled { &members } else { &[] };
    let cer_result = cer::evaluate_steps(
        &assets.cer.params(),
        &prepared.zonal_hourly_eur_per_mwh,
        cer_members,
        grid.steps_per_hour(),
    )?;

    let econ_params = assets.economics.params();
    let internal_eur_per_kwh = scenario.community.internal_price_eur_per_mwh / 1000.0;
    let cer_factor = crate::assets::cer_npc_factor(assets);
    let mut prosumers = Vec::with_capacity(series.len());
    let mut load_kw = vec![0.0; steps];
    let mut baseline_kw = vec![0.0; steps];
    let mut community_bill = GridMeter::new(&prepared.tariff);
    for (i, ((((p, mut prep), flows), ev), home)) in scenario
        .prosumers
        .iter()
        .zip(prepared.prosumers)
        .zip(sink.prosumers)
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
        let energy = sums(&flows, &demand_kw, dt);
        let mut meter = GridMeter::new(&prepared.tariff);
        for (t, (imp, exp)) in flows
            .grid_import_kw
            .iter()
            .zip(&flows.grid_export_kw)
            .enumerate()
        {
            meter.record(t, *imp, *exp)?;
        }
        let grid_bill = meter.finish();
        let throughput = batteries[i]
            .as_ref()
            .map_or(0.0, |u| u.battery.throughput_kwh());
        let components = components(a, throughput);
        let (p2p_cost, p2p_revenue) = match &market {
            Some(m) => (m.paid_eur[i], m.received_eur[i]),
            None => (
                energy.p2p_import_kwh * internal_eur_per_kwh,
                energy.p2p_export_kwh * internal_eur_per_kwh,
            ),
        };
        let cer_eur = cer_result.members.get(i).map_or(0.0, |m| m.allocated_eur);
        let refs: Vec<(&str, ComponentCosts)> =
            components.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let npc = system_npc(
            &econ_params,
            &refs,
            grid_bill.net_cost_eur,
            // V2G wears the vehicles' batteries: a yearly cost like P2P money (HOMER's
            // "other O&M"), so V2G must pay for itself in the NPC.
            p2p_cost - p2p_revenue - cer_eur * cer_factor + ev.degradation_cost_eur,
        )?;
        let totals = energy_totals(&energy, SalesCounted::GridAndP2p);
        let economics = Economics {
            grid_bill,
            p2p_cost_eur_per_year: p2p_cost,
            p2p_revenue_eur_per_year: p2p_revenue,
            cer_incentive_eur: cer_eur,
            initial_capital_eur: components.iter().map(|(_, c)| c.capital_eur).sum(),
            npc_eur: npc.total_npc_eur,
            annualized_cost_eur: npc.annualized_cost_eur,
            coe_eur_per_kwh: totals.cost_of_energy_eur_per_kwh(npc.annualized_cost_eur),
            renewable_fraction: totals.renewable_fraction(),
        };
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
            home: home.result,
        });
    }
    // The community's own meter sees the sum of the members' grid flows.
    for t in 0..steps {
        let imp: f64 = prosumers.iter().map(|p| p.flows.grid_import_kw[t]).sum();
        let exp: f64 = prosumers.iter().map(|p| p.flows.grid_export_kw[t]).sum();
        community_bill.record(t, imp, exp)?;
    }
    let energy = EnergySums::total(&prosumers.iter().map(|p| p.energy).collect::<Vec<_>>());
    let totals = energy_totals(&energy, SalesCounted::GridOnly);
    let sum = |f: fn(&Economics) -> f64| prosumers.iter().map(|p| f(&p.economics)).sum::<f64>();
    let annualized = sum(|e| e.annualized_cost_eur);
    let economics = Economics {
        grid_bill: community_bill.finish(),
        p2p_cost_eur_per_year: sum(|e| e.p2p_cost_eur_per_year),
        p2p_revenue_eur_per_year: sum(|e| e.p2p_revenue_eur_per_year),
        cer_incentive_eur: cer_result.total_eur,
        initial_capital_eur: sum(|e| e.initial_capital_eur),
        npc_eur: sum(|e| e.npc_eur),
        annualized_cost_eur: annualized,
        coe_eur_per_kwh: totals.cost_of_energy_eur_per_kwh(annualized),
        renewable_fraction: totals.renewable_fraction(),
    };
    let community_scale = community_scale_factor(&load_kw, &baseline_kw);
    let community = CommunityResult {
        load_report: load_report(&load_kw, &baseline_kw, community_scale, &grid),
        load_kw,
        baseline_kw,
        energy,
        economics,
        cer: cer_result,
        grid_at_peak_steps: prepared.grid_at_peak.iter().filter(|p| **p).count(),
        market,
    };
    Ok(SimResult {
        grid,
        seed,
        prosumers,
        community,
        zonal_step_eur_per_mwh: prepared.zonal_step_eur_per_mwh,
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

fn sums(f: &FlowSeries, load_kw: &[f64], dt: f64) -> EnergySums {
    let s = |v: &[f64]| v.iter().sum::<f64>() * dt;
    EnergySums {
        load_kwh: s(load_kw),
        ev_kwh: s(&f.ev_kw),
        v2g_kwh: s(&f.v2g_kw),
        pv_kwh: s(&f.pv_kw),
        wind_kwh: s(&f.wind_kw),
        battery_in_kwh: s(&f.battery_in_kw),
        battery_out_kwh: s(&f.battery_out_kw),
        p2p_import_kwh: s(&f.p2p_import_kw),
        p2p_export_kwh: s(&f.p2p_export_kw),
        grid_import_kwh: s(&f.grid_import_kw),
        grid_export_kwh: s(&f.grid_export_kw),
        excess_kwh: s(&f.excess_kw),
        unmet_kwh: s(&f.unmet_kw),
        peak_unmet_kw: f.unmet_kw.iter().copied().fold(0.0, f64::max),
    }
}

/// Which sales count as energy served (HOMER: load served + sales).
#[derive(Clone, Copy)]
enum SalesCounted {
    /// The community as a whole: P2P is internal (already in the buyers' load served).
    GridOnly,
    /// A member: what it sold to neighbours is load it served, like a grid sale.
    GridAndP2p,
}

fn energy_totals(e: &EnergySums, sales: SalesCounted) -> EnergyTotals {
    let p2p_sales_kwh = match sales {
        SalesCounted::GridOnly => 0.0,
        SalesCounted::GridAndP2p => e.p2p_export_kwh,
    };
    EnergyTotals {
        load_kwh: e.load_kwh,
        served_load_kwh: (e.load_kwh - e.unmet_kwh).max(0.0),
        grid_sales_kwh: e.grid_export_kwh + p2p_sales_kwh,
        grid_purchases_kwh: e.grid_import_kwh,
        renewable_production_kwh: e.pv_kwh + e.wind_kwh,
        nonrenewable_generation_kwh: 0.0,
        excess_energy_kwh: e.excess_kwh,
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
