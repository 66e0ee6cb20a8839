//! The scenario's component sections, typed: each `toml` section of [`scg_model::Scenario`] is
//! deserialised into the config type of the crate that models it (unknown fields rejected) and
//! validated, and every problem comes back with its full field path, e.g.
//! `prosumers[3].battery.capacity_kwh: must be > 0, got -5`.
//!
//! PV arrays and wind turbines carry an optional `costs` table, which the economics owns; it is
//! split off before the physics config is read. A battery or wind-turbine section with
//! `installed = false` is not built: it only gives the technology and costs the sizing search
//! may add ([`Templates`]). Never does I/O.

use scg_model::bounds::{self, LIFETIME_YEARS, MAX_COST_EUR, out_of_range};
use scg_model::{Scenario, Section, ValidationError};
use scg_resource::solar::{PvArrayConfig, SolarResourceConfig};
use scg_resource::wind::{TurbineConfig, WindResourceConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::battery::BatteryConfig;
use crate::cer::CerConfig;
use crate::converter::ConverterConfig;
use crate::economics::{ComponentCosts, EconomicsConfig};
use crate::grid::GridConfig;

/// Costs of a PV array, per kW of capacity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostsPerKw {
    #[serde(default)]
    pub capital_eur_per_kw: f64,
    #[serde(default)]
    pub replacement_eur_per_kw: f64,
    #[serde(default)]
    pub om_eur_per_kw_year: f64,
    /// Default 25 years (HOMER's PV default).
    #[serde(default = "default_pv_life")]
    pub lifetime_years: f64,
}

fn default_pv_life() -> f64 {
    25.0
}

impl Default for CostsPerKw {
    fn default() -> Self {
        Self {
            capital_eur_per_kw: 0.0,
            replacement_eur_per_kw: 0.0,
            om_eur_per_kw_year: 0.0,
            lifetime_years: default_pv_life(),
        }
    }
}

impl CostsPerKw {
    /// Every problem, as `(field path, message)`: lifetime within [`LIFETIME_YEARS`], money
    /// within `0..=`[`MAX_COST_EUR`].
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let mut b = Bounds::default();
        b.money(path, "capital_eur_per_kw", self.capital_eur_per_kw);
        b.money(path, "replacement_eur_per_kw", self.replacement_eur_per_kw);
        b.money(path, "om_eur_per_kw_year", self.om_eur_per_kw_year);
        b.lifetime(path, "lifetime_years", self.lifetime_years);
        b.0
    }

    /// Costs of `kw` of capacity.
    pub fn for_capacity(&self, kw: f64) -> ComponentCosts {
        ComponentCosts {
            capital_eur: self.capital_eur_per_kw * kw,
            replacement_eur: self.replacement_eur_per_kw * kw,
            om_eur_per_year: self.om_eur_per_kw_year * kw,
            lifetime_years: self.lifetime_years,
        }
    }
}

/// Costs of one wind turbine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostsPerUnit {
    #[serde(default)]
    pub capital_eur: f64,
    #[serde(default)]
    pub replacement_eur: f64,
    #[serde(default)]
    pub om_eur_per_year: f64,
    /// Default 20 years (HOMER's wind turbine default).
    #[serde(default = "default_turbine_life")]
    pub lifetime_years: f64,
}

fn default_turbine_life() -> f64 {
    20.0
}

impl Default for CostsPerUnit {
    fn default() -> Self {
        Self {
            capital_eur: 0.0,
            replacement_eur: 0.0,
            om_eur_per_year: 0.0,
            lifetime_years: default_turbine_life(),
        }
    }
}

impl CostsPerUnit {
    /// Every problem, as `(field path, message)`: lifetime within [`LIFETIME_YEARS`], money
    /// within `0..=`[`MAX_COST_EUR`].
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let mut b = Bounds::default();
        b.money(path, "capital_eur", self.capital_eur);
        b.money(path, "replacement_eur", self.replacement_eur);
        b.money(path, "om_eur_per_year", self.om_eur_per_year);
        b.lifetime(path, "lifetime_years", self.lifetime_years);
        b.0
    }

    /// Costs of `count` units.
    pub fn for_count(&self, count: f64) -> ComponentCosts {
        ComponentCosts {
            capital_eur: self.capital_eur * count,
            replacement_eur: self.replacement_eur * count,
            om_eur_per_year: self.om_eur_per_year * count,
            lifetime_years: self.lifetime_years,
        }
    }
}

/// A PV array and its costs.
#[derive(Debug, Clone, PartialEq)]
pub struct PvSpec {
    pub array: PvArrayConfig,
    pub costs: CostsPerKw,
}

/// A wind turbine type (with its count) and its costs per turbine.
#[derive(Debug, Clone, PartialEq)]
pub struct TurbineSpec {
    pub turbine: TurbineConfig,
    pub costs: CostsPerUnit,
}

/// One prosumer's assets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProsumerAssets {
    pub pv: Vec<PvSpec>,
    pub turbines: Vec<TurbineSpec>,
    pub battery: Option<BatteryConfig>,
    pub converter: Option<ConverterConfig>,
    /// The EV fleet (`scg_ev::fleet::FleetConfig`).
    pub ev: Option<scg_ev::fleet::FleetConfig>,
    /// The dwellings' home devices (`scg_home::config::HomeConfig`).
    pub home: Option<scg_home::config::HomeConfig>,
    /// Sections with `installed = false`: for the sizing search only.
    pub templates: Templates,
}

/// Components a prosumer describes with `installed = false`: nothing is built and nothing is
/// paid, but their technology and costs let `scg optimize` add them (`search.battery_kwh`,
/// `search.wind_turbines`). The HOMER way of keeping a component in the search space whose
/// best size is zero.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Templates {
    /// A battery and its converter (the converter follows the battery's `installed`).
    pub battery: Option<(BatteryConfig, ConverterConfig)>,
    /// A wind turbine type (its `count` is the reference the search scales).
    pub turbine: Option<TurbineSpec>,
}

impl ProsumerAssets {
    /// Total PV capacity, kWp.
    pub fn pv_kwp(&self) -> f64 {
        self.pv.iter().map(|p| p.array.capacity_kwp).sum()
    }
}

/// Every typed component of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Assets {
    pub solar: SolarResourceConfig,
    pub wind: Option<WindResourceConfig>,
    pub grid: GridConfig,
    pub economics: EconomicsConfig,
    pub cer: CerConfig,
    pub prosumers: Vec<ProsumerAssets>,
}

/// The grid when the scenario has no `[grid]`: documented, not silent (see docs/scenario.md) —
/// a flat 0.25 EUR/kWh purchase price and the Ritiro Dedicato sell-back.
pub fn default_grid() -> GridConfig {
    GridConfig {
        purchase: crate::grid::PurchaseTariff::Flat {
            price_eur_per_kwh: 0.25,
        },
        sell_back: crate::grid::SellBack::RitiroDedicato {
            minimum_price_eur_per_mwh: 47.5,
            minimum_price_limit_mwh: 1500.0,
        },
        demand_charge_eur_per_kw_month: 0.0,
        max_purchase_kw: None,
        max_sale_kw: None,
    }
}

/// Plausibility bounds (`scg_model::bounds`) the component owners' own checks leave open:
/// upper limits on sizes and counts, and lifetimes of at least a year. Collected as
/// `(field path, message)`.
#[derive(Default)]
struct Bounds(Vec<(String, String)>);

impl Bounds {
    fn range(&mut self, path: &str, field: &str, value: f64, min: f64, max: f64) {
        if let Some(message) = out_of_range(value, min, max) {
            self.0.push((format!("{path}.{field}"), message));
        }
    }
    fn money(&mut self, path: &str, field: &str, value: f64) {
        self.range(path, field, value, 0.0, MAX_COST_EUR);
    }
    fn lifetime(&mut self, path: &str, field: &str, value: f64) {
        self.range(path, field, value, LIFETIME_YEARS.0, LIFETIME_YEARS.1);
    }
    fn power(&mut self, path: &str, field: &str, value: f64) {
        self.range(path, field, value, 0.0, bounds::MAX_POWER_KW);
    }
}

fn turbine_bounds(t: &TurbineConfig, path: &str) -> Vec<(String, String)> {
    let mut problems = t.validate(path);
    if t.count > bounds::MAX_TURBINES {
        problems.push((
            format!("{path}.count"),
            format!(
                "must be between 1 and {}, got {}",
                bounds::MAX_TURBINES,
                t.count
            ),
        ));
    }
    problems
}

fn battery_bounds(b: &BatteryConfig, path: &str) -> Vec<(String, String)> {
    let mut problems = b.validate(path);
    let mut x = Bounds::default();
    x.range(
        path,
        "capacity_kwh",
        b.capacity_kwh,
        0.0,
        bounds::MAX_BATTERY_KWH,
    );
    x.power(path, "max_charge_power_kw", b.max_charge_power_kw);
    x.power(path, "max_discharge_power_kw", b.max_discharge_power_kw);
    x.lifetime(path, "lifetime_years", b.lifetime_years);
    if let Some(q) = b.lifetime_throughput_kwh {
        // At least one full cycle and at most a million: a shorter life would replace the bank
        // many times a step.
        x.range(
            path,
            "lifetime_throughput_kwh",
            q,
            b.capacity_kwh,
            b.capacity_kwh * 1.0e6,
        );
    }
    x.money(path, "capital_cost_eur_per_kwh", b.capital_cost_eur_per_kwh);
    x.money(
        path,
        "replacement_cost_eur_per_kwh",
        b.replacement_cost_eur_per_kwh,
    );
    x.money(path, "om_cost_eur_per_kwh_year", b.om_cost_eur_per_kwh_year);
    problems.extend(x.0);
    problems
}

fn converter_bounds(c: &ConverterConfig, path: &str) -> Vec<(String, String)> {
    let mut problems = c.validate(path);
    let mut x = Bounds::default();
    x.power(path, "capacity_kw", c.capacity_kw);
    x.lifetime(path, "lifetime_years", c.lifetime_years);
    x.money(path, "capital_cost_eur_per_kw", c.capital_cost_eur_per_kw);
    x.money(
        path,
        "replacement_cost_eur_per_kw",
        c.replacement_cost_eur_per_kw,
    );
    x.money(path, "om_cost_eur_per_kw_year", c.om_cost_eur_per_kw_year);
    problems.extend(x.0);
    problems
}

fn grid_bounds(g: &GridConfig, path: &str) -> Vec<(String, String)> {
    let mut problems = g.validate(path);
    let mut x = Bounds::default();
    x.money(
        path,
        "demand_charge_eur_per_kw_month",
        g.demand_charge_eur_per_kw_month,
    );
    if let Some(kw) = g.max_purchase_kw {
        x.power(path, "max_purchase_kw", kw);
    }
    if let Some(kw) = g.max_sale_kw {
        x.power(path, "max_sale_kw", kw);
    }
    problems.extend(x.0);
    problems
}

struct Collector {
    errors: Vec<ValidationError>,
}

impl Collector {
    fn push(&mut self, path: String, message: String) {
        self.errors.push(ValidationError { path, message });
    }

    /// Split the optional `installed` flag (default true) off a component section.
    fn installed(&mut self, table: &Section, path: &str) -> (Section, bool) {
        let mut rest = table.clone();
        let installed = match rest.remove("installed") {
            None => true,
            Some(toml::Value::Boolean(b)) => b,
            Some(other) => {
                self.push(
                    format!("{path}.installed"),
                    format!("must be true or false, got a {}", other.type_str()),
                );
                true
            }
        };
        (rest, installed)
    }

    /// Deserialize a section into `T`, naming the field path of any problem.
    fn typed<T: DeserializeOwned>(&mut self, table: &Section, path: &str) -> Option<T> {
        let value = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(t) => Some(t),
            Err(e) => {
                let inner = e.path().to_string();
                let full = if inner.is_empty() || inner == "." {
                    path.to_owned()
                } else {
                    format!("{path}.{inner}")
                };
                self.push(full, e.inner().message().trim().to_owned());
                None
            }
        }
    }

    fn validated<T: DeserializeOwned>(
        &mut self,
        table: &Section,
        path: &str,
        validate: impl Fn(&T, &str) -> Vec<(String, String)>,
    ) -> Option<T> {
        let t = self.typed::<T>(table, path)?;
        let problems = validate(&t, path);
        let ok = problems.is_empty();
        for (p, m) in problems {
            self.push(p, m);
        }
        ok.then_some(t)
    }

    /// Split a `costs` sub-table off a section and validate it.
    fn with_costs<C: DeserializeOwned + Default>(
        &mut self,
        table: &Section,
        path: &str,
        validate: impl Fn(&C, &str) -> Vec<(String, String)>,
    ) -> (Section, Option<C>) {
        let mut rest = table.clone();
        let costs = match rest.remove("costs") {
            None => Some(C::default()),
            Some(toml::Value::Table(t)) => {
                self.validated::<C>(&t, &format!("{path}.costs"), validate)
            }
            Some(other) => {
                self.push(
                    format!("{path}.costs"),
                    format!("must be a table, got {}", other.type_str()),
                );
                None
            }
        };
        (rest, costs)
    }
}

impl Assets {
    /// Type and validate every component section of a scenario; all problems at once.
    pub fn from_scenario(scenario: &Scenario) -> Result<Self, Vec<ValidationError>> {
        let mut c = Collector { errors: Vec::new() };
        let solar = match &scenario.solar {
            Some(t) => c.validated(t, "solar", SolarResourceConfig::validate),
            None => Some(SolarResourceConfig::default()),
        };
        let wind = scenario
            .wind
            .as_ref()
            .map(|t| c.validated(t, "wind", WindResourceConfig::validate));
        let grid = match &scenario.grid {
            Some(t) => c.validated(t, "grid", grid_bounds),
            None => Some(default_grid()),
        };
        let economics = match &scenario.economics {
            Some(t) => c.validated(t, "economics", EconomicsConfig::validate),
            None => Some(EconomicsConfig::default()),
        };
        let cer = match &scenario.cer {
            Some(t) => c.validated(t, "cer", CerConfig::validate),
            None => Some(CerConfig::default()),
        };
        let mut prosumers = Vec::with_capacity(scenario.prosumers.len());
        for (i, p) in scenario.prosumers.iter().enumerate() {
            prosumers.push(prosumer_assets(&mut c, &format!("prosumers[{i}]"), p));
        }
        let any_turbines = prosumers
            .iter()
            .any(|p| !p.turbines.is_empty() || p.templates.turbine.is_some());
        match (solar, wind, grid, economics, cer) {
            (Some(solar), wind, Some(grid), Some(economics), Some(cer)) if c.errors.is_empty() => {
                Ok(Self {
                    solar,
                    // Turbines without a `[wind]` section see the documented default resource
                    // (Bergamo's monthly means).
                    wind: wind
                        .flatten()
                        .or_else(|| any_turbines.then(WindResourceConfig::default)),
                    grid,
                    economics,
                    cer,
                    prosumers,
                })
            }
            _ => Err(c.errors),
        }
    }
}

fn prosumer_assets(c: &mut Collector, path: &str, p: &scg_model::Prosumer) -> ProsumerAssets {
    let mut out = ProsumerAssets::default();
    if let Some(t) = &p.ev {
        let path = format!("{path}.ev");
        out.ev = c.validated(t, &path, |cfg: &scg_ev::fleet::FleetConfig, path: &str| {
            // The fleet's own check stops at the first problem; its field path is kept.
            match cfg.validate(path) {
                Ok(()) => Vec::new(),
                Err(scg_ev::EvError::Config { field, message }) => vec![(field, message)],
                Err(e) => vec![(path.to_owned(), e.to_string())],
            }
        });
    }
    if let Some(t) = &p.home {
        let path = format!("{path}.home");
        out.home = c.validated(t, &path, |cfg, path| {
            crate::home::home_problems(cfg, path, &p.id)
        });
    }
    for (k, t) in p.pv.iter().enumerate() {
        let path = format!("{path}.pv[{k}]");
        let (rest, costs) = c.with_costs(t, &path, CostsPerKw::validate);
        let array = c.validated(&rest, &path, PvArrayConfig::validate);
        if let (Some(array), Some(costs)) = (array, costs) {
            out.pv.push(PvSpec { array, costs });
        }
    }
    for (k, t) in p.wind_turbines.iter().enumerate() {
        let path = format!("{path}.wind_turbines[{k}]");
        let (t, installed) = c.installed(t, &path);
        let (rest, costs) = c.with_costs(&t, &path, CostsPerUnit::validate);
        let turbine = c.validated(&rest, &path, turbine_bounds);
        if let (Some(turbine), Some(costs)) = (turbine, costs) {
            let spec = TurbineSpec { turbine, costs };
            if installed {
                out.turbines.push(spec);
            } else if out.templates.turbine.is_none() {
                out.templates.turbine = Some(spec);
            } else {
                c.push(
                    path,
                    "at most one wind turbine section may have installed = false".into(),
                );
            }
        }
    }
    let (battery, installed) = match &p.battery {
        Some(t) => {
            let path = format!("{path}.battery");
            let (t, installed) = c.installed(t, &path);
            (c.validated(&t, &path, battery_bounds), installed)
        }
        None => (None, true),
    };
    let converter = p
        .converter
        .as_ref()
        .and_then(|t| c.validated(t, &format!("{path}.converter"), converter_bounds));
    if battery.is_some() && p.converter.is_none() {
        c.push(
            format!("{path}.converter"),
            "a battery needs a converter section (capacity_kw, efficiencies, costs)".into(),
        );
    }
    if installed {
        out.battery = battery;
        out.converter = converter;
    } else if let (Some(b), Some(v)) = (battery, converter) {
        out.templates.battery = Some((b, v));
    }
    out
}

/// The CER incentive is paid for `incentive_years`, usually fewer than the project's: the
/// factor that turns the yearly incentive into its equivalent over the whole project.
pub fn cer_npc_factor(assets: &Assets) -> f64 {
    let e = assets.economics.params();
    crate::economics::equivalent_annual_over_project(
        1.0,
        assets.cer.incentive_years,
        e.real_discount_rate,
        e.project_lifetime_years,
    )
}
