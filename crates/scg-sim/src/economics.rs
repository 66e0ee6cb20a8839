//! HOMER's economics (homer.md §4.5; Lambert, Gilman & Lilienthal 2006): real discount rate,
//! capital recovery factor, component capital / replacement / O&M costs with replacement timing
//! and linear salvage, total net present cost (NPC), annualized cost, cost of energy (COE),
//! renewable fraction, unmet load and excess energy.
//!
//! All money is real (inflation-free) EUR, as in HOMER. Yearly costs (O&M, grid) fall at the end
//! of each project year; the capital cost at year 0; a replacement when the unit it replaces
//! reaches its lifetime; salvage at the end of the project. This module computes from totals it
//! is given: it never runs the simulation and does no I/O.

use crate::component_error::{ComponentError, Problems};
use serde::{Deserialize, Serialize};

/// Real discount rate `i = (i′ − f) / (1 + f)` from the nominal rate `i′` and the expected
/// inflation `f` (fractions, e.g. 0.08 and 0.035 → 0.04348).
pub fn real_discount_rate(nominal: f64, inflation: f64) -> f64 {
    (nominal - inflation) / (1.0 + inflation)
}

/// Capital recovery factor `CRF(i, N) = i(1 + i)^N / ((1 + i)^N − 1)`; `1/N` when `i = 0`.
pub fn capital_recovery_factor(i: f64, years: f64) -> f64 {
    if i.abs() < 1e-12 {
        return 1.0 / years;
    }
    let g = (1.0 + i).powf(years);
    i * g / (g - 1.0)
}

/// Discount factor `1 / (1 + i)^t` of a cash flow at year `t`.
pub fn discount_factor(i: f64, year: f64) -> f64 {
    (1.0 + i).powf(-year)
}

/// Sinking fund factor `i / ((1 + i)^N − 1)`; `1/N` when `i = 0`.
pub fn sinking_fund_factor(i: f64, years: f64) -> f64 {
    if i.abs() < 1e-12 {
        return 1.0 / years;
    }
    i / ((1.0 + i).powf(years) - 1.0)
}

/// Present value of a cost of 1 EUR at the end of each of `years` years: `1 / CRF(i, N)`.
pub fn annuity_present_value_factor(i: f64, years: f64) -> f64 {
    1.0 / capital_recovery_factor(i, years)
}

/// A yearly amount paid for only the first `years_paid` years of the project, spread into the
/// equivalent yearly amount over the whole project (same present value): e.g. the CER
/// incentive, paid for 20 years, in a 25-year project.
pub fn equivalent_annual_over_project(
    annual_eur: f64,
    years_paid: f64,
    real_rate: f64,
    project_years: f64,
) -> f64 {
    let paid = years_paid.clamp(0.0, project_years);
    if paid <= 0.0 {
        return 0.0;
    }
    annual_eur
        * annuity_present_value_factor(real_rate, paid)
        * capital_recovery_factor(real_rate, project_years)
}

/// The costs of one component, in real EUR.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ComponentCosts {
    /// Initial capital cost at year 0, EUR.
    pub capital_eur: f64,
    /// Cost of each replacement, EUR.
    pub replacement_eur: f64,
    /// Operation and maintenance, EUR per year.
    pub om_eur_per_year: f64,
    /// Lifetime of one unit, years (> 0).
    pub lifetime_years: f64,
}

/// The present values of one component's cash flows over the project.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ComponentNpc {
    /// Capital, EUR (not discounted: paid at year 0).
    pub capital_eur: f64,
    /// Present value of all replacements, EUR.
    pub replacement_eur: f64,
    /// Present value of the O&M, EUR.
    pub om_eur: f64,
    /// Present value of the salvage at the end of the project, EUR (a revenue: subtracted).
    pub salvage_eur: f64,
    /// `capital + replacement + om − salvage`, EUR.
    pub total_eur: f64,
}

/// Most replacements of one component over the project that [`component_npc`] accepts (one a
/// day for 100 years is far beyond any real system).
pub const MAX_REPLACEMENTS: f64 = 36_500.0;

/// Years (from the start of the project) at which a unit of lifetime `lifetime_years` is
/// replaced: `L, 2L, …` strictly before the end of the project.
pub fn replacement_years(lifetime_years: f64, project_years: f64) -> Vec<f64> {
    let mut years = Vec::new();
    if !lifetime_years.is_finite() || lifetime_years <= 0.0 {
        return years;
    }
    let mut k = 1.0;
    while k * lifetime_years < project_years - 1e-9 {
        years.push(k * lifetime_years);
        k += 1.0;
    }
    years
}

/// Salvage value (real EUR, at the end of the project) of a component: linear in the remaining
/// life of the unit in service, `S = C_rep · R_rem / R_comp` (Lambert et al. 2006).
///
/// Lambert writes `R_rem = R_comp − (R_proj − R_rep)` with `R_rep = R_comp·INT(R_proj/R_comp)`;
/// when the lifetime divides the project life exactly that counts a replacement at the last
/// year and a full salvage of it, which cancel. We count neither (no replacement at the end,
/// zero salvage), which gives the same NPC.
pub fn salvage_value_eur(costs: &ComponentCosts, project_years: f64) -> f64 {
    let life = costs.lifetime_years;
    let last_install = replacement_years(life, project_years)
        .last()
        .copied()
        .unwrap_or(0.0);
    let remaining = (life - (project_years - last_install)).max(0.0);
    costs.replacement_eur * remaining / life
}

/// Present values of a component's capital, replacements, O&M and salvage.
pub fn component_npc(
    costs: &ComponentCosts,
    real_rate: f64,
    project_years: f64,
) -> Result<ComponentNpc, ComponentError> {
    check_rate_and_years(real_rate, project_years)?;
    let c = costs;
    if !(c.lifetime_years.is_finite() && c.lifetime_years > 0.0) {
        return Err(ComponentError::parameter(
            "lifetime_years",
            format!("must be > 0, got {}", c.lifetime_years),
        ));
    }
    // A life computed from wear (a battery's throughput) can be tiny; the replacement list
    // must stay bounded whatever the inputs.
    if project_years / c.lifetime_years > MAX_REPLACEMENTS {
        return Err(ComponentError::parameter(
            "lifetime_years",
            format!(
                "{} years over a {project_years}-year project means more than \
                 {MAX_REPLACEMENTS} replacements",
                c.lifetime_years
            ),
        ));
    }
    for (field, v) in [
        ("capital_eur", c.capital_eur),
        ("replacement_eur", c.replacement_eur),
        ("om_eur_per_year", c.om_eur_per_year),
    ] {
        if !v.is_finite() {
            return Err(ComponentError::parameter(
                field,
                format!("must be finite, got {v}"),
            ));
        }
    }
    let replacement_eur: f64 = replacement_years(c.lifetime_years, project_years)
        .into_iter()
        .map(|t| c.replacement_eur * discount_factor(real_rate, t))
        .sum();
    let om_eur = c.om_eur_per_year * annuity_present_value_factor(real_rate, project_years);
    let salvage_eur =
        salvage_value_eur(c, project_years) * discount_factor(real_rate, project_years);
    Ok(ComponentNpc {
        capital_eur: c.capital_eur,
        replacement_eur,
        om_eur,
        salvage_eur,
        total_eur: c.capital_eur + replacement_eur + om_eur - salvage_eur,
    })
}

fn check_rate_and_years(real_rate: f64, project_years: f64) -> Result<(), ComponentError> {
    if !(real_rate.is_finite() && real_rate > -1.0) {
        return Err(ComponentError::parameter(
            "real_discount_rate",
            format!("must be a finite number > -1, got {real_rate}"),
        ));
    }
    if !(project_years.is_finite() && project_years > 0.0) {
        return Err(ComponentError::parameter(
            "project_lifetime_years",
            format!("must be > 0, got {project_years}"),
        ));
    }
    Ok(())
}

/// The economic frame of a project (library form: a fraction, not percent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EconomicParams {
    /// Real discount rate (fraction).
    pub real_discount_rate: f64,
    /// Project lifetime, years.
    pub project_lifetime_years: f64,
}

/// The NPC of a whole system (one prosumer or the community).
#[derive(Debug, Clone, PartialEq)]
pub struct SystemNpc {
    /// Per component, in the order given.
    pub components: Vec<(String, ComponentNpc)>,
    /// Present value of the yearly grid bill (purchases + demand charges − sales), EUR.
    pub grid_eur: f64,
    /// Present value of other yearly costs (minus revenues such as CER incentives), EUR.
    pub other_eur: f64,
    /// Total net present cost, EUR.
    pub total_npc_eur: f64,
    /// Annualized cost `C_ann = NPC · CRF(i, N)`, EUR/year.
    pub annualized_cost_eur: f64,
}

/// Total NPC: every component's NPC, plus the yearly net grid cost and any other yearly net
/// cost (negative for revenues) discounted over the project, as HOMER sums them.
pub fn system_npc(
    params: &EconomicParams,
    components: &[(&str, ComponentCosts)],
    annual_grid_cost_eur: f64,
    annual_other_cost_eur: f64,
) -> Result<SystemNpc, ComponentError> {
    let i = params.real_discount_rate;
    let n = params.project_lifetime_years;
    check_rate_and_years(i, n)?;
    let mut out = Vec::with_capacity(components.len());
    let mut total = 0.0;
    for (name, costs) in components {
        let npc = component_npc(costs, i, n).map_err(|e| match e {
            ComponentError::InvalidParameter { field, message } => {
                ComponentError::parameter(format!("{name}.{field}"), message)
            }
            other => other,
        })?;
        total += npc.total_eur;
        out.push(((*name).to_owned(), npc));
    }
    let annuity = annuity_present_value_factor(i, n);
    let grid_eur = annual_grid_cost_eur * annuity;
    let other_eur = annual_other_cost_eur * annuity;
    total += grid_eur + other_eur;
    Ok(SystemNpc {
        components: out,
        grid_eur,
        other_eur,
        total_npc_eur: total,
        annualized_cost_eur: total * capital_recovery_factor(i, n),
    })
}

/// One project year's cash flows by kind, undiscounted real EUR (costs positive, the salvage
/// revenue negative), for a cash-flow chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct YearCashFlow {
    /// Project year: 0 is the investment, 1..=N the end of each year.
    pub year: u32,
    pub capital_eur: f64,
    pub replacement_eur: f64,
    pub om_eur: f64,
    /// Net grid cost of the year (purchases + demand charges − sales).
    pub grid_eur: f64,
    /// Other yearly net costs (e.g. P2P paid − received − CER incentive).
    pub other_eur: f64,
    /// Salvage at the end of the project (≤ 0).
    pub salvage_eur: f64,
}

impl YearCashFlow {
    /// The year's net cash flow, EUR.
    pub fn total_eur(&self) -> f64 {
        self.capital_eur
            + self.replacement_eur
            + self.om_eur
            + self.grid_eur
            + self.other_eur
            + self.salvage_eur
    }
}

/// The undiscounted yearly cash flows behind [`system_npc`]: capital at year 0, each
/// replacement in the year it falls in (rounded up), O&M / grid / other at the end of each
/// year `1..=ceil(N)`, salvage at year `ceil(N)`. For whole-year lifetimes and project length,
/// discounting each year by [`discount_factor`] and summing gives `system_npc`'s total.
pub fn cash_flows(
    params: &EconomicParams,
    components: &[(&str, ComponentCosts)],
    annual_grid_cost_eur: f64,
    annual_other_cost_eur: f64,
) -> Result<Vec<YearCashFlow>, ComponentError> {
    let n = params.project_lifetime_years;
    check_rate_and_years(params.real_discount_rate, n)?;
    let years = n.ceil() as u32;
    let mut out: Vec<YearCashFlow> = (0..=years)
        .map(|year| YearCashFlow {
            year,
            ..YearCashFlow::default()
        })
        .collect();
    for (_, c) in components {
        out[0].capital_eur += c.capital_eur;
        for t in replacement_years(c.lifetime_years, n) {
            let y = (t.ceil() as usize).min(years as usize);
            out[y].replacement_eur += c.replacement_eur;
        }
        for flow in out.iter_mut().skip(1) {
            flow.om_eur += c.om_eur_per_year;
        }
        if c.lifetime_years.is_finite() && c.lifetime_years > 0.0 {
            out[years as usize].salvage_eur -= salvage_value_eur(c, n);
        }
    }
    for flow in out.iter_mut().skip(1) {
        flow.grid_eur = annual_grid_cost_eur;
        flow.other_eur = annual_other_cost_eur;
    }
    Ok(out)
}

/// A year's energy totals of a system, from the simulation (all kWh per year).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EnergyTotals {
    /// Total demand (primary load), kWh.
    pub load_kwh: f64,
    /// Load actually served, kWh (`load − unmet`).
    pub served_load_kwh: f64,
    /// Energy sold to the grid, kWh.
    pub grid_sales_kwh: f64,
    /// Energy bought from the grid, kWh.
    pub grid_purchases_kwh: f64,
    /// Production of renewable sources (PV, wind), kWh.
    pub renewable_production_kwh: f64,
    /// Production of non-renewable sources other than the grid (generators), kWh.
    pub nonrenewable_generation_kwh: f64,
    /// Surplus that could be neither used, stored nor sold, kWh.
    pub excess_energy_kwh: f64,
}

impl EnergyTotals {
    /// Unmet load, kWh (`load − served`, never negative).
    pub fn unmet_load_kwh(&self) -> f64 {
        (self.load_kwh - self.served_load_kwh).max(0.0)
    }

    /// Unmet load as a fraction of the load (0 when there is no load).
    pub fn unmet_load_fraction(&self) -> f64 {
        if self.load_kwh > 0.0 {
            self.unmet_load_kwh() / self.load_kwh
        } else {
            0.0
        }
    }

    /// HOMER's total electrical load served: primary load served plus grid sales, kWh.
    pub fn energy_served_kwh(&self) -> f64 {
        self.served_load_kwh + self.grid_sales_kwh
    }

    /// Total production (renewable + non-renewable + grid purchases), kWh.
    pub fn total_production_kwh(&self) -> f64 {
        self.renewable_production_kwh + self.nonrenewable_generation_kwh + self.grid_purchases_kwh
    }

    /// Excess energy as a fraction of total production (0 when nothing is produced).
    pub fn excess_fraction(&self) -> f64 {
        let p = self.total_production_kwh();
        if p > 0.0 {
            self.excess_energy_kwh / p
        } else {
            0.0
        }
    }

    /// Renewable fraction `f_ren = 1 − E_nonren / E_served`, grid purchases counting as
    /// non-renewable production (HOMER Pro glossary). `None` when nothing is served. Can be
    /// negative when non-renewable production exceeds the energy served, as in HOMER.
    pub fn renewable_fraction(&self) -> Option<f64> {
        let served = self.energy_served_kwh();
        (served > 0.0)
            .then(|| 1.0 - (self.nonrenewable_generation_kwh + self.grid_purchases_kwh) / served)
    }

    /// Cost of energy `COE = C_ann / E_served`, EUR/kWh; `None` when nothing is served.
    pub fn cost_of_energy_eur_per_kwh(&self, annualized_cost_eur: f64) -> Option<f64> {
        let served = self.energy_served_kwh();
        (served > 0.0).then(|| annualized_cost_eur / served)
    }
}

/// The economic frame in the scenario (`[economics]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EconomicsConfig {
    /// Project lifetime, years (default 25, HOMER's default).
    #[serde(default = "default_project_lifetime_years")]
    pub project_lifetime_years: f64,
    /// Nominal discount rate, percent per year (default 8, HOMER's default).
    #[serde(default = "default_nominal_discount_rate_pct")]
    pub nominal_discount_rate_pct: f64,
    /// Expected inflation, percent per year (default 2, HOMER's default).
    #[serde(default = "default_inflation_rate_pct")]
    pub inflation_rate_pct: f64,
}

impl Default for EconomicsConfig {
    fn default() -> Self {
        Self {
            project_lifetime_years: default_project_lifetime_years(),
            nominal_discount_rate_pct: default_nominal_discount_rate_pct(),
            inflation_rate_pct: default_inflation_rate_pct(),
        }
    }
}

fn default_project_lifetime_years() -> f64 {
    25.0
}
fn default_nominal_discount_rate_pct() -> f64 {
    8.0
}
fn default_inflation_rate_pct() -> f64 {
    2.0
}

impl EconomicsConfig {
    /// Every problem, as `(field path, message)`, with `path` as the prefix.
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let mut p = Problems::default();
        p.in_range(
            path,
            "project_lifetime_years",
            self.project_lifetime_years,
            1.0,
            100.0,
        );
        p.in_range(
            path,
            "nominal_discount_rate_pct",
            self.nominal_discount_rate_pct,
            -50.0,
            100.0,
        );
        p.in_range(
            path,
            "inflation_rate_pct",
            self.inflation_rate_pct,
            -50.0,
            100.0,
        );
        if p.list.is_empty() && self.params().real_discount_rate <= -1.0 + 1e-9 {
            p.fail(
                path,
                "nominal_discount_rate_pct",
                "gives a real discount rate <= -100 %",
            );
        }
        p.list
    }

    /// The library form: real discount rate as a fraction.
    pub fn params(&self) -> EconomicParams {
        EconomicParams {
            real_discount_rate: real_discount_rate(
                self.nominal_discount_rate_pct / 100.0,
                self.inflation_rate_pct / 100.0,
            ),
            project_lifetime_years: self.project_lifetime_years,
        }
    }
}
