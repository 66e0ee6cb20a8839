//! From a scenario to a sizing search and back: build each prosumer's candidate designs from
//! its `search` lists and component sections, the per-step prices the search needs, and the
//! scenario of a chosen configuration (so the winner can be simulated and reported in full).
//!
//! Scaling rules: PV candidates scale all of a prosumer's arrays together (orientation and
//! costs per kW kept); wind candidates set the turbine count (one turbine type per prosumer);
//! battery candidates scale capacity, power and lifetime throughput together (C-rate kept);
//! converter candidates set its capacity. A size of 0 removes the component. Never does I/O.

use crate::SimError;
use crate::accounting::CerSetup;
use crate::assets::{Assets, ProsumerAssets};
use crate::battery::BatteryConfig;
use crate::converter::ConverterConfig;
use crate::economics::ComponentCosts;
use crate::optimize::{
    ConfigResult, LocalDesign, MarketReplay, ProsumerSpace, SearchInputs, SearchSettings,
};
use crate::prepare::Prepared;
use crate::year::ProsumerSeries;
use scg_model::{ProsumerSearch, Scenario};

/// The sizes of one prosumer design, for tables.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DesignSizes {
    pub pv_kwp: f64,
    pub wind_turbines: f64,
    pub battery_kwh: f64,
    pub converter_kw: f64,
}

impl DesignSizes {
    /// The sizes of a design.
    pub fn of(design: &LocalDesign) -> Self {
        Self {
            pv_kwp: design.pv_kwp,
            wind_turbines: design.turbines,
            battery_kwh: design.battery.as_ref().map_or(0.0, |(b, _)| b.capacity_kwh),
            converter_kw: design.battery.as_ref().map_or(0.0, |(_, c)| c.capacity_kw),
        }
    }
}

/// Per-step inputs of the search, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchData {
    /// Retail and feed-in price of every step, EUR/MWh (what the market's orders carry).
    pub retail_eur_per_mwh: Vec<f64>,
    pub feed_in_eur_per_mwh: Vec<f64>,
    /// Prosumer ids, scenario order.
    pub ids: Vec<String>,
    /// The community market, when the scenario has `[community.market]`.
    pub market: Option<scg_market::community::CommunityMarket>,
    /// The pro-rata P2P price, EUR/kWh.
    pub internal_eur_per_kwh: f64,
}

impl SearchData {
    /// Prices from the prepared tariff, the scenario's market and P2P price.
    pub fn new(scenario: &Scenario, prepared: &Prepared) -> Result<Self, SimError> {
        let eur_per_mwh = |v: &[f64]| v.iter().map(|p| p * 1000.0).collect::<Vec<f64>>();
        Ok(Self {
            retail_eur_per_mwh: eur_per_mwh(prepared.tariff.purchase_eur_per_kwh()),
            feed_in_eur_per_mwh: eur_per_mwh(prepared.tariff.sell_eur_per_kwh()),
            ids: scenario.prosumers.iter().map(|p| p.id.clone()).collect(),
            market: match &scenario.community.market {
                Some(m) => Some(crate::market_stage::community_market(m)?),
                None => None,
            },
            internal_eur_per_kwh: scenario.community.internal_price_eur_per_mwh / 1000.0,
        })
    }

    /// The borrowed view the search takes.
    pub fn inputs<'a>(&'a self, prepared: &'a Prepared, assets: &Assets) -> SearchInputs<'a> {
        SearchInputs {
            dt_h: prepared.grid.step_hours(),
            steps_per_hour: prepared.grid.steps_per_hour(),
            tariff: &prepared.tariff,
            cer: CerSetup {
                enabled: assets.cer.enabled,
                params: assets.cer.params(),
                zonal_hourly_eur_per_mwh: &prepared.zonal_hourly_eur_per_mwh,
            },
            grid_at_peak: &prepared.grid_at_peak,
            cer_npc_factor: cer_npc_factor(assets),
            internal_eur_per_kwh: self.internal_eur_per_kwh,
            market: self.market.map(|market| MarketReplay {
                market,
                ids: &self.ids,
                retail_eur_per_mwh: &self.retail_eur_per_mwh,
                feed_in_eur_per_mwh: &self.feed_in_eur_per_mwh,
            }),
        }
    }
}

pub use crate::assets::cer_npc_factor;

/// What the search cannot replay exactly for this scenario, one sentence per stage (empty:
/// the winner's `scg simulate` NPC is its ranked NPC to 1e-6 relative, with or without the
/// market). `scg optimize` prints them and writes them to `optimize.json` (`not_exact`).
pub fn not_exact(scenario: &Scenario, assets: &Assets) -> Vec<String> {
    let ids = |pick: &dyn Fn(&ProsumerAssets) -> bool| {
        scenario
            .prosumers
            .iter()
            .zip(&assets.prosumers)
            .filter(|(_, a)| pick(a))
            .map(|(p, _)| p.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    let ev = ids(&|p| p.ev.is_some());
    if !ev.is_empty() {
        out.push(format!(
            "EV agents ({ev}): the search replays the EV powers planned for the scenario's configured sizes; in the winner's full simulation its agents plan against the winner's own community surplus, so its NPC there can differ"
        ));
    }
    let home = ids(&|p| p.home.as_ref().is_some_and(|h| h.managed));
    if !home.is_empty() {
        out.push(format!(
            "home agents ({home}): the search sees the HOMER load without the managed appliances' shifts; the winner's full simulation runs the home agents, so its NPC there can differ"
        ));
    }
    out
}

/// The search's settings from the scenario.
pub fn settings(scenario: &Scenario, assets: &Assets) -> SearchSettings {
    let search = scenario
        .search
        .clone()
        .unwrap_or(scg_model::CommunitySearch {
            grid_connected: vec![true],
            max_capacity_shortage_pct: 0.0,
        });
    SearchSettings {
        grid_options: search.grid_connected,
        max_purchase_kw: assets.grid.max_purchase_kw.unwrap_or(f64::INFINITY),
        max_sale_kw: assets.grid.max_sale_kw.unwrap_or(f64::INFINITY),
        max_unmet_fraction: search.max_capacity_shortage_pct / 100.0,
        economics: assets.economics.params(),
        market_replays: DEFAULT_MARKET_REPLAYS,
    }
}

/// With a market, configurations of the pro-rata screening replayed with it per round.
pub const DEFAULT_MARKET_REPLAYS: usize = 32;

/// Every prosumer's candidate designs.
pub fn spaces<'a>(
    scenario: &Scenario,
    assets: &Assets,
    prepared: &'a Prepared,
) -> Result<Vec<ProsumerSpace<'a>>, SimError> {
    scenario
        .prosumers
        .iter()
        .zip(&assets.prosumers)
        .zip(&prepared.prosumers)
        .enumerate()
        .map(|(i, ((p, a), prep))| {
            let search = p.search.clone().unwrap_or_default();
            let mut designs = designs(
                &format!("prosumers[{i}]"),
                a,
                &search,
                prep.pv_kwp,
                prep.turbines,
            )?;
            // V2G battery wear is a yearly cost of the prosumer whatever its design (the EV
            // powers do not depend on it), priced as in `simulate`'s NPC.
            if prep.ev.degradation_cost_eur > 0.0 {
                let wear = ComponentCosts {
                    capital_eur: 0.0,
                    replacement_eur: 0.0,
                    om_eur_per_year: prep.ev.degradation_cost_eur,
                    lifetime_years: assets.economics.params().project_lifetime_years,
                };
                for d in &mut designs {
                    d.generation_costs.push(("ev_v2g_wear".into(), wear));
                }
            }
            Ok(ProsumerSpace {
                id: p.id.clone(),
                series: ProsumerSeries {
                    load_kw: &prep.load.load_kw,
                    load_draw: None,
                    pv_draw: None,
                    pv_kw_per_kwp: &prep.pv_kw_per_kwp,
                    pv_kwp: prep.pv_kwp,
                    wind_kw_per_turbine: &prep.wind_kw_per_turbine,
                    turbines: prep.turbines,
                    ev_kw: &prep.ev.demand_series,
                    v2g_kw: &prep.ev.v2g_kw,
                },
                designs,
            })
        })
        .collect()
}

fn designs(
    path: &str,
    a: &ProsumerAssets,
    search: &ProsumerSearch,
    pv_kwp: f64,
    turbines: f64,
) -> Result<Vec<LocalDesign>, SimError> {
    let turbine = a.turbines.first().or(a.templates.turbine.as_ref());
    let (battery_t, converter_t) = match (&a.battery, &a.converter, &a.templates.battery) {
        (Some(b), Some(c), _) => (Some(b), Some(c)),
        (None, _, Some((b, c))) => (Some(b), Some(c)),
        (b, c, _) => (b.as_ref(), c.as_ref()),
    };
    if search.wind_turbines.is_some() && a.turbines.len() > 1 {
        return Err(SimError::Scenario(format!(
            "{path}.search.wind_turbines: searching turbine counts needs exactly one turbine type, found {}",
            a.turbines.len()
        )));
    }
    // Optimize-only checks (model validation lets `simulate` run with these lists).
    for (name, list, has, section) in [
        (
            "pv_kwp",
            search.pv_kwp.as_deref().unwrap_or(&[]),
            !a.pv.is_empty(),
            "pv",
        ),
        (
            "battery_kwh",
            search.battery_kwh.as_deref().unwrap_or(&[]),
            battery_t.is_some(),
            "battery",
        ),
        (
            "converter_kw",
            search.converter_kw.as_deref().unwrap_or(&[]),
            converter_t.is_some(),
            "converter",
        ),
    ] {
        if !has && list.iter().any(|v| *v > 0.0) {
            return Err(SimError::Scenario(format!(
                "{path}.search.{name}: candidates above 0 need a `{section}` section on this prosumer (it gives the technology and costs)"
            )));
        }
    }
    if turbine.is_none()
        && search
            .wind_turbines
            .as_ref()
            .is_some_and(|v| v.iter().any(|n| *n > 0))
    {
        return Err(SimError::Scenario(format!(
            "{path}.search.wind_turbines: candidates above 0 need a `wind_turbines` section on this prosumer (it gives the technology and costs)"
        )));
    }
    let pv_list = search.pv_kwp.clone().unwrap_or_else(|| vec![pv_kwp]);
    let wind_list: Vec<f64> = search.wind_turbines.as_ref().map_or_else(
        || vec![turbines],
        |v| v.iter().map(|n| f64::from(*n)).collect(),
    );
    let configured_kwh = a.battery.as_ref().map_or(0.0, |b| b.capacity_kwh);
    let battery_list = search
        .battery_kwh
        .clone()
        .unwrap_or_else(|| vec![configured_kwh]);
    let converter_list: Vec<Option<f64>> = search
        .converter_kw
        .as_ref()
        .map_or_else(|| vec![None], |v| v.iter().map(|c| Some(*c)).collect());
    let mut out = Vec::new();
    for &kwp in &pv_list {
        for &n in &wind_list {
            for &kwh in &battery_list {
                for &conv in &converter_list {
                    let battery = match (battery_t, converter_t) {
                        (Some(b), Some(c)) if kwh > 0.0 => Some(scaled_battery(b, c, kwh, conv)),
                        _ => None,
                    };
                    // Without a battery the converter candidates are all the same design.
                    if battery.is_none() && conv != converter_list[0] {
                        continue;
                    }
                    out.push(LocalDesign {
                        pv_kwp: kwp,
                        turbines: n,
                        battery,
                        generation_costs: generation_costs(a, kwp, n, pv_kwp),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn scaled_battery(
    b: &BatteryConfig,
    c: &ConverterConfig,
    kwh: f64,
    converter_kw: Option<f64>,
) -> (BatteryConfig, ConverterConfig) {
    let k = kwh / b.capacity_kwh;
    let mut battery = b.clone();
    battery.capacity_kwh = kwh;
    battery.max_charge_power_kw *= k;
    battery.max_discharge_power_kw *= k;
    battery.lifetime_throughput_kwh = b.lifetime_throughput_kwh.map(|q| q * k);
    let mut converter = c.clone();
    if let Some(kw) = converter_kw {
        converter.capacity_kw = kw;
    }
    (battery, converter)
}

fn generation_costs(
    a: &ProsumerAssets,
    kwp: f64,
    turbines: f64,
    configured_kwp: f64,
) -> Vec<(String, ComponentCosts)> {
    let mut out = Vec::new();
    let scale = if configured_kwp > 0.0 {
        kwp / configured_kwp
    } else {
        0.0
    };
    for (k, pv) in a.pv.iter().enumerate() {
        out.push((
            format!("pv[{k}]"),
            pv.costs.for_capacity(pv.array.capacity_kwp * scale),
        ));
    }
    if let Some(t) = a.turbines.first().or(a.templates.turbine.as_ref()) {
        out.push(("wind_turbines[0]".into(), t.costs.for_count(turbines)));
    }
    out
}

/// The scenario with the sizes of a configuration written into its sections.
pub fn winner_scenario(
    scenario: &Scenario,
    spaces: &[ProsumerSpace<'_>],
    result: &ConfigResult,
) -> Scenario {
    let mut s = scenario.clone();
    for ((p, space), d) in s.prosumers.iter_mut().zip(spaces).zip(&result.designs) {
        let Some(design) = space.designs.get(*d) else {
            continue;
        };
        let configured: f64 =
            p.pv.iter()
                .filter_map(|t| t.get("capacity_kwp").and_then(toml::Value::as_float))
                .sum();
        let scale = if configured > 0.0 {
            design.pv_kwp / configured
        } else {
            0.0
        };
        if design.pv_kwp <= 0.0 {
            p.pv.clear();
        }
        for t in &mut p.pv {
            if let Some(v) = t.get("capacity_kwp").and_then(toml::Value::as_float) {
                t.insert("capacity_kwp".into(), toml::Value::Float(v * scale));
            }
        }
        // A component the search may add stays as a not-installed template (`installed =
        // false`) when the winner has none, so the written scenario keeps its search space.
        let search = p.search.clone().unwrap_or_default();
        if design.turbines <= 0.0 {
            if search.wind_turbines.is_some() {
                p.wind_turbines.truncate(1);
                for t in &mut p.wind_turbines {
                    t.insert("installed".into(), toml::Value::Boolean(false));
                }
            } else {
                p.wind_turbines.clear();
            }
        } else if let Some(t) = p.wind_turbines.first_mut() {
            t.insert("count".into(), toml::Value::Integer(design.turbines as i64));
            t.remove("installed");
        }
        match &design.battery {
            None if search.battery_kwh.is_some() && p.battery.is_some() => {
                if let Some(t) = &mut p.battery {
                    t.insert("installed".into(), toml::Value::Boolean(false));
                }
            }
            None => {
                p.battery = None;
                p.converter = None;
            }
            Some((b, c)) => {
                if let Some(t) = &mut p.battery {
                    t.remove("installed");
                    t.insert("capacity_kwh".into(), b.capacity_kwh.into());
                    t.insert("max_charge_power_kw".into(), b.max_charge_power_kw.into());
                    t.insert(
                        "max_discharge_power_kw".into(),
                        b.max_discharge_power_kw.into(),
                    );
                    if let Some(q) = b.lifetime_throughput_kwh {
                        t.insert("lifetime_throughput_kwh".into(), q.into());
                    }
                }
                if let Some(t) = &mut p.converter {
                    t.insert("capacity_kw".into(), c.capacity_kw.into());
                }
            }
        }
        p.search = None;
    }
    if !result.grid_connected {
        let grid = s.grid.get_or_insert_with(|| {
            toml::Table::try_from(crate::assets::default_grid()).unwrap_or_default()
        });
        grid.insert("max_purchase_kw".into(), 0.0.into());
        grid.insert("max_sale_kw".into(), 0.0.into());
    }
    s.search = None;
    s
}

/// What each searched prosumer's roof holds, kWp (`None` when the scenario gives no
/// `roof_area_m2`), in the order of `spaces`: the edge warnings tell a winner that fills its
/// roof from one whose search range is too small.
pub fn pv_limits_kwp(scenario: &Scenario, spaces: &[ProsumerSpace<'_>]) -> Vec<Option<f64>> {
    spaces
        .iter()
        .map(|space| {
            let p = scenario.prosumers.iter().find(|p| p.id == space.id)?;
            p.roof_area_m2.map(scg_model::roof::pv_limit_kwp)
        })
        .collect()
}
