//! The charging optimizer: one sparse LP/QP over a window of steps, solved with
//! [`crate::qp`] (dense normal equations for small plans, a sparse system for large ones) or
//! `clarabel` (plans outside `qp`'s class or its size bounds, and where it does not converge).
//!
//! The same builder serves the model-predictive controller ([`Mpc`], planned over the horizon
//! of the plugged-in vehicles and re-planned when something changed, or every step) and the
//! offline optimum (one problem over the whole period with perfect knowledge, see
//! [`crate::evaluate`]).
//!
//! Decision variables per vehicle and present step: charging power `c` (kW) and, for V2G
//! vehicles, discharging power `g` (kW) and the battery energy `s` (kWh) at the end of the
//! step. One peak variable per billing period. Objective (EUR, minimised):
//!
//! ```text
//!   Σ_k price_k·Δt·(Σc − Σg)                energy bought minus energy sold
//! + wear·Δt·Σg                               battery wear for V2G (per kWh discharged)
//! + demand_charge·Σ_periods peak             peak / demand-charge term
//! − value·(energy delivered into batteries)   unmet energy is expensive: served first
//! + reserve·Δt·max(0, Σc − Σg − level)       optional reserve band below the peak basis
//! + quick·Δt·(k/n)·c + ε/2·(c² + g²)         tie-breakers: charge earlier, share evenly
//! ```
//!
//! subject to `0 ≤ c ≤ c_max`, `0 ≤ g ≤ g_max`, `Σ η·c·Δt ≤ need` (non-V2G), the battery
//! balance `s_k = s_{k−1} + η·c·Δt − g·Δt/η` with `s_min ≤ s ≤ s_max` (V2G), the site limit
//! `|Σc − Σg| ≤ L` per step, and `peak ≥ Σc − Σg`, `peak ≥ previous peak`.
//! Energy targets are soft (rewarded, not required), so every problem is feasible and an
//! infeasible request is served as well as possible instead of being dropped.
//!
//! Size: with `N` vehicles and `H` steps there are about `N·H` (×3 with V2G) variables and
//! `2N·H + N + 2H` rows, with about five non-zeros per variable; the KKT system stays sparse
//! because a step's site row only couples vehicles within that step.

use crate::error::EvError;
use crate::habits::{
    ArrivalProfile, ExpectedArrivals, PeakLearner, PeakSession, hindsight_peak_kw,
    peak_sessions_by_day,
};
use crate::model::MINUTES_PER_HOUR;
use crate::model::Session;
use crate::policy::{ActiveEv, Policy, SellOffer, StepContext};
use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus, SupportedConeT,
    ZeroConeT,
};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// Weights and limits of the optimizer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MpcParams {
    /// Value of a kWh delivered into a battery; large, so delivering energy comes first.
    pub value_of_energy_eur_per_kwh: f64,
    /// Battery wear per kWh discharged (Kempton–Tomić: pack cost / (cycles × DoD)).
    pub wear_cost_eur_per_kwh: f64,
    /// Extra price seen in steps where the main grid is at peak: discourages charging and
    /// rewards V2G then.
    pub grid_peak_adder_eur_per_mwh: f64,
    /// Tie-breaker that prefers charging earlier in the stay (hedges early departures).
    pub quick_charge_eur_per_kwh: f64,
    /// Extra preference for charging early when the plugged-in vehicles could draw more than
    /// the site limit (scaled by how much more, up to twice the limit): capacity not used now
    /// may be needed by vehicles that have not arrived yet. Measured on Caltech data: it lifts
    /// MPC energy under a 25 kW limit from 98.6 % to 99.5 % of the offline optimum.
    pub congestion_quick_charge_eur_per_kwh: f64,
    /// Quadratic regularisation (EUR per kW² per step): spreads power evenly, makes the
    /// solution unique.
    pub regularisation: f64,
    /// Longest horizon the MPC plans over, in steps.
    pub max_horizon_steps: usize,
    /// When re-planning every step (`replan_on_events = false`), the MPC plans the first
    /// `fine_horizon_minutes` at the step resolution and the rest in blocks of
    /// `block_minutes` (move blocking): only the first step is applied, so the far future
    /// needs less detail. 0 = no blocking. Not used when re-planning on events: a kept plan
    /// is executed step by step, and executing block averages (with vehicles that leave
    /// inside a block cut from it) lost 0.5 points of energy on the Caltech fixture at 25 kW.
    pub fine_horizon_minutes: u32,
    /// Length of a block beyond the fine horizon, minutes.
    pub block_minutes: u32,
    /// A peak target learned from history before the run (`habits::daily_hindsight_peaks`),
    /// kW; the MPC plans against the largest of this, the peak it learns online and the
    /// period's peak so far. 0 = none.
    #[serde(default)]
    pub peak_target_kw: f64,
    /// Days of hindsight daily peaks the online peak learner remembers (0 = learn nothing).
    #[serde(default = "default_peak_memory_days")]
    pub peak_memory_days: usize,
    /// Re-plan only when something changed (an arrival that cannot be added to the kept
    /// plan exactly, a departure other than planned, a price, limit or peak-target change, a
    /// deviation from the plan); false = re-plan every step. On by default: planned at the
    /// step resolution and with exact insertion of arrivals (see [`Mpc`]) it delivers the
    /// energy of re-planning every step with far fewer solves (docs/home.md, EV planner).
    #[serde(default = "default_replan_on_events")]
    pub replan_on_events: bool,
    /// Deviation of a vehicle's energy from the plan that triggers a re-plan, kWh.
    #[serde(default = "default_replan_tolerance")]
    pub replan_tolerance_kwh: f64,
    /// Hours ahead for which the MPC adds the arrivals it expects (learned by
    /// [`ArrivalProfile`] from finished sessions, per weekday/weekend and arrival hour) to the
    /// plan as pseudo-sessions: one per hour with the expected number of vehicles' energy and
    /// power and their mean stay, valued at [`PSEUDO_VALUE_WEIGHT`] of a real vehicle's
    /// energy so real vehicles are served first under a binding limit. The plan then knows
    /// that later arrivals need capacity (it charges the present vehicles earlier and sets
    /// the day's peak once instead of raising it in steps), and the learned peak target is
    /// no longer used as free capacity (the forecast replaces it; `peak_target_kw` still is).
    /// Every arrival re-plans (the forecast no longer matches the plan). 0 = off.
    #[serde(default = "default_forecast_arrivals_hours")]
    pub forecast_arrivals_hours: f64,
    /// Share of the peak basis kept as a reserve band (see [`Reserve`]), 0..1; 0 = none (the
    /// default). With a demand charge the plan otherwise fills the capacity it already pays
    /// for up to the brim to move energy into cheaper hours, and the next unforeseen arrival
    /// raises the month's peak. Default 0 since `demand_charge_price_weight` (0.5) does that
    /// job: with it, the band only kept capacity unused that later arrivals then lacked
    /// (tuned on Caltech weeks, docs/home.md, EV planner).
    #[serde(default = "default_reserve_pct")]
    pub reserve_pct: f64,
    /// Price of a kWh planned in the reserve band, EUR/kWh: just above the spread between
    /// the SCE TOU-EV-4 on-peak and mid-peak prices (0.174), so the band is not filled to
    /// shift energy between them; energy a vehicle needs (valued far higher) still uses it.
    #[serde(default = "default_reserve_eur_per_kwh")]
    pub reserve_eur_per_kwh: f64,
    /// With a demand charge, the weight of the energy price in the plan, 0..1 (1 = the
    /// price as billed; default 0.5). Below 1 the plan follows the time-of-use price less
    /// and the charge-early tie-break and the demand charge more: at 0.5 the SCE TOU-EV-4
    /// on-peak/mid-peak spread (0.174 EUR/kWh) weighs 0.087, below the congestion
    /// tie-break (up to 0.1), so the present vehicles are charged early in their stay with
    /// the capacity already paid for instead of being moved into the 18 h mid-peak, where
    /// later arrivals need that capacity too. Without a demand charge the price is used as
    /// billed. Tuned on Caltech weeks (docs/home.md, EV planner).
    #[serde(default = "default_demand_charge_price_weight")]
    pub demand_charge_price_weight: f64,
    /// With a demand charge, plan today's expected arrivals as a pool of the day's mean
    /// number of arrivals: the arrivals still expected today are scaled by (mean daily
    /// arrivals − arrivals so far today) / (mean daily arrivals − mean arrivals expected by
    /// now), at most 1, so a busy morning lowers the forecast for the rest of the day (the
    /// drivers of a site are largely the same people every day) and a quiet one leaves it as
    /// learned. Without a demand charge the forecast is unchanged (not tuned there). Tuned on
    /// Caltech weeks (docs/home.md, EV planner).
    #[serde(default = "default_forecast_arrival_pool")]
    pub forecast_arrival_pool: bool,
    /// With a demand charge, plan the expected arrivals as this many scenarios instead of
    /// their mean (0 = the mean, as without a demand charge): scenario `j` repeats the
    /// arrivals of the `j`-th most recent remembered day of the same kind (weekday/weekend),
    /// hour by hour, each scenario with its own aggregate power and peak, the vehicles
    /// present shared by all (see [`Scenarios`]). A hedge on the forecast: the plan keeps
    /// room for a busy day as it was seen, not only for the mean day. At most
    /// [`MAX_SCENARIOS`].
    #[serde(default = "default_forecast_scenarios")]
    pub forecast_scenarios: usize,
    /// With scenarios, the weight of the worst scenario's peak against the mean of the
    /// scenarios' peaks in the demand-charge term, 0..1 (0 = the expected peak, 1 = the
    /// worst).
    #[serde(default = "default_scenario_peak_robustness")]
    pub scenario_peak_robustness: f64,
    /// With scenarios, plan each of a scenario day's arrivals as its own pseudo-session
    /// (its energy, stay and power limit as they were) instead of one per hour with the
    /// hour's means: a busy day's short stays then need the peak they needed.
    #[serde(default)]
    pub scenario_each_session: bool,
    /// With a demand charge and a forecast, the weight of a scenario in which nothing more
    /// arrives, 0..1 (0 = none): its peak is the vehicles present's own, so the plan prices
    /// the peak it realises now if the forecast arrivals do not come, and charges the
    /// vehicles present no faster than the room for the forecast needs. The forecast (the
    /// mean, or the scenarios) shares the rest of the weight.
    #[serde(default)]
    pub no_arrival_weight: f64,
    /// With a demand charge, the share of the mean forecast's expected arrivals (their
    /// number, so their energy and power) the plan makes room for, 0..1 (1 = the mean).
    /// Below 1 the plan hedges: the capacity a busy day needs beyond it is bought when the
    /// vehicles come, and a quiet day does not pay for the mean day's peak. Default 0.9,
    /// chosen on the sum of six Caltech tuning weeks' totals (docs/home.md, EV planner,
    /// round 5); without a demand charge the forecast is the mean.
    #[serde(default = "default_forecast_scale")]
    pub demand_charge_forecast_scale: f64,
    /// With a demand charge, the last minutes of each present vehicle's stay in which a kWh
    /// costs `demand_charge_tail_eur_per_kwh` more (see [`Tail`]); 0 = off. Why: the plan
    /// otherwise moves the vehicles' energy towards their departures (into the 18 h
    /// mid-peak, with the capacity already paid for filled to the brim), so an arrival it did
    /// not foresee then finds every vehicle at full power until it leaves, and the month's
    /// peak rises (docs/home.md, EV planner, round 6). Energy a vehicle needs is valued far
    /// higher and still uses its tail. Default 15, chosen on the sum of thirteen Caltech
    /// tuning weeks' totals (5: 9585.66, 15: 9559.18, 30: 9590.15, 60: 9664.21, off:
    /// 9626.92 USD); without a demand charge there is no tail.
    #[serde(default = "default_tail_minutes")]
    pub demand_charge_tail_minutes: u32,
    /// Price of a kWh in a vehicle's tail, EUR/kWh: just above the SCE TOU-EV-4 spread
    /// between on-peak and mid-peak (0.174), so energy is not moved into the tail for the
    /// cheaper hours.
    #[serde(default = "default_reserve_eur_per_kwh")]
    pub demand_charge_tail_eur_per_kwh: f64,
    /// With a demand charge, plan against the site limit as free capacity once the learned
    /// peak target reaches it (within 1 %; default true since round 8). The target is the
    /// worst remembered day's hindsight-lowest peak: when even that needed the whole limit,
    /// the period's peak will be the limit, so capacity below it is already paid for and left
    /// unused it is energy lost, not money saved. Why: under a binding limit the kept plan
    /// held the site at the peak it paid for so far (on 2021-07-01, 8.59 kW against 9.26 for
    /// re-planning every step, whose plans ratchet the peak up a step at a time), the vehicles
    /// present were charged later, and when the limit bound in the afternoon crowd, those
    /// with the nearest departures left short (trace in `docs/home.md`, round 8).
    #[serde(default = "default_limit_basis")]
    pub demand_charge_limit_basis: bool,
}

/// Most scenarios a plan takes ([`MpcParams::forecast_scenarios`]): a bound on the problem
/// size (each adds a pseudo-session per forecast hour and a peak row per step).
pub const MAX_SCENARIOS: usize = 28;

/// Value of a pseudo-session's energy relative to a real vehicle's (see
/// [`MpcParams::forecast_arrivals_hours`]).
pub const PSEUDO_VALUE_WEIGHT: f64 = 0.5;

/// Share of the site limit from which a peak is treated as the limit itself: no reserve
/// band above a basis there (see `Mpc::reserve`), and a learned target there makes the limit
/// the basis (see [`MpcParams::demand_charge_limit_basis`]).
const RESERVE_LIMIT_SHARE: f64 = 0.99;

/// Energy a vehicle may still want past the end of its plan without a re-plan, kWh (1 Wh:
/// solver residue, not a deviation).
const END_OF_PLAN_REMAINDER_KWH: f64 = 1e-3;

fn default_peak_memory_days() -> usize {
    28
}
fn default_replan_on_events() -> bool {
    true
}
fn default_replan_tolerance() -> f64 {
    0.05
}
fn default_forecast_arrivals_hours() -> f64 {
    12.0
}
fn default_reserve_pct() -> f64 {
    0.0
}
fn default_demand_charge_price_weight() -> f64 {
    0.5
}
fn default_forecast_arrival_pool() -> bool {
    true
}
fn default_reserve_eur_per_kwh() -> f64 {
    0.18
}
fn default_forecast_scenarios() -> usize {
    0
}
fn default_scenario_peak_robustness() -> f64 {
    0.0
}
fn default_tail_minutes() -> u32 {
    15
}
fn default_forecast_scale() -> f64 {
    0.9
}
fn default_limit_basis() -> bool {
    true
}

impl Default for MpcParams {
    fn default() -> Self {
        Self {
            value_of_energy_eur_per_kwh: 1000.0,
            wear_cost_eur_per_kwh: 0.05,
            grid_peak_adder_eur_per_mwh: 200.0,
            quick_charge_eur_per_kwh: 1e-3,
            congestion_quick_charge_eur_per_kwh: 0.1,
            // Only a tie-break (adacharge uses ~1e-12): at 1e-4 it outweighed the
            // charge-early term and the MPC delivered less than LLF under a tight limit.
            regularisation: 1e-9,
            max_horizon_steps: 288,
            fine_horizon_minutes: 120,
            block_minutes: 60,
            peak_target_kw: 0.0,
            peak_memory_days: default_peak_memory_days(),
            replan_on_events: default_replan_on_events(),
            replan_tolerance_kwh: default_replan_tolerance(),
            forecast_arrivals_hours: default_forecast_arrivals_hours(),
            reserve_pct: default_reserve_pct(),
            reserve_eur_per_kwh: default_reserve_eur_per_kwh(),
            demand_charge_price_weight: default_demand_charge_price_weight(),
            forecast_arrival_pool: default_forecast_arrival_pool(),
            forecast_scenarios: default_forecast_scenarios(),
            scenario_peak_robustness: default_scenario_peak_robustness(),
            scenario_each_session: false,
            no_arrival_weight: 0.0,
            demand_charge_forecast_scale: default_forecast_scale(),
            demand_charge_tail_minutes: default_tail_minutes(),
            demand_charge_tail_eur_per_kwh: default_reserve_eur_per_kwh(),
            demand_charge_limit_basis: default_limit_basis(),
        }
    }
}

/// One vehicle in a plan window.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEv {
    /// First step of the window where it is present.
    pub start: usize,
    /// Step after the last one where it is present (exclusive).
    pub end: usize,
    /// Battery energy it still wants, kWh (upper bound on what is delivered).
    pub need_kwh: f64,
    /// Charging power limit, kW.
    pub max_charge_kw: f64,
    /// Discharging power limit, kW (0 = no V2G: no `g`/`s` variables are created).
    pub max_discharge_kw: f64,
    /// Battery energy at the start (V2G only).
    pub energy_kwh: f64,
    /// Lowest battery energy allowed (V2G only).
    pub min_energy_kwh: f64,
    /// Highest battery energy allowed (V2G only).
    pub max_energy_kwh: f64,
    /// One-way efficiency.
    pub efficiency: f64,
    /// Weight of its energy's value (1 for a real vehicle; [`PSEUDO_VALUE_WEIGHT`] for an
    /// expected arrival).
    pub value_weight: f64,
    /// The scenario it belongs to (an expected arrival of one scenario, see [`Scenarios`]);
    /// `None` = present in every scenario (a real vehicle).
    pub scenario: Option<usize>,
}

/// One optimization problem.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanProblem {
    /// Number of steps in the window.
    pub steps: usize,
    /// Base step length, hours.
    pub step_hours: f64,
    /// Length of each step in base steps (move blocking); empty = every step is one base step.
    pub step_scale: Vec<f64>,
    /// The vehicles.
    pub evs: Vec<PlanEv>,
    /// Effective energy price per step (grid-peak adder included), EUR/MWh.
    pub price_eur_per_mwh: Vec<f64>,
    /// Site limit on aggregate import and export, kW (`INFINITY` = none).
    pub site_limit_kw: f64,
    /// Demand charge per kW of each billing period's peak (0 = no peak variables).
    pub demand_charge_eur_per_kw: f64,
    /// Weight of the charge-early tie-breaker, EUR/kWh (see [`MpcParams`]).
    pub quick_charge_eur_per_kwh: f64,
    /// Billing period of each step (indices into `prev_peak_kw`).
    pub peak_group: Vec<usize>,
    /// Peak already reached in each billing period, kW.
    pub prev_peak_kw: Vec<f64>,
    /// A price on aggregate power above a level (see [`Reserve`]); `None` = no such term.
    pub reserve: Option<Reserve>,
    /// Scenarios of the vehicles with a `scenario` index; `None` (or a count of 1) = one
    /// aggregate per step, as without scenarios.
    pub scenarios: Option<Scenarios>,
    /// A price on the real vehicles' last steps (see [`Tail`]); `None` = no such term.
    pub tail: Option<Tail>,
}

/// A price per kWh charged into a real vehicle (value weight 1, in every scenario) in the
/// last `base_steps` base steps of its stay in the window: the plan keeps the end of each
/// stay free unless energy needs it, so capacity is left for arrivals it cannot see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tail {
    /// Length of the tail, base steps.
    pub base_steps: usize,
    /// Price of a kWh in the tail, EUR/kWh.
    pub eur_per_kwh: f64,
}

impl Tail {
    /// The tail's price per kWh at plan step `step` of a vehicle present until plan step
    /// `end`, with `base_start[k]` the base step plan step `k` starts at: 0 outside the tail.
    fn price_at(tail: Option<&Self>, base_start: &[usize], step: usize, end: usize) -> f64 {
        let Some(t) = tail else { return 0.0 };
        let at = |k: usize| base_start.get(k).copied().unwrap_or(k);
        if at(end).saturating_sub(at(step)) <= t.base_steps {
            t.eur_per_kwh.max(0.0)
        } else {
            0.0
        }
    }
}

/// Scenarios of a plan: the vehicles without a scenario index are in every scenario, the
/// others in theirs only. Each scenario has its own aggregate power per step and its own
/// peak per billing period (the site limit holds the shared vehicles only); the
/// demand-charge term is the charge times `(1 − robustness)·Σ weight·peak +
/// robustness·max(peaks)`, so the shared vehicles' plan leaves room for the scenarios'
/// arrivals as their expected (or worst) peak prices it. The reserve band, if any, applies
/// to the shared vehicles only.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenarios {
    /// Weight of each scenario (every `PlanEv::scenario` is below their number; they should
    /// sum to 1).
    pub weights: Vec<f64>,
    /// Weight of the worst scenario's peak, 0..1.
    pub robustness: f64,
}

/// A price per kWh on aggregate import above `below_kw` in any step: the plan keeps the band
/// between `below_kw` and the peak free unless energy needs it (capacity for what it cannot
/// see yet), instead of filling it to shift energy to cheaper hours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reserve {
    /// Aggregate power above which the price applies, kW.
    pub below_kw: f64,
    /// Price of a kWh above `below_kw`, EUR/kWh.
    pub eur_per_kwh: f64,
}

/// The optimizer's answer: per vehicle, per step of its presence.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSolution {
    /// Charging power per vehicle, `end − start` values each, kW.
    pub charge_kw: Vec<Vec<f64>>,
    /// Discharging power per vehicle (empty for non-V2G vehicles), kW.
    pub discharge_kw: Vec<Vec<f64>>,
    /// Solver iterations.
    pub iterations: u32,
    /// Which solver answered.
    pub solver: PlanSolver,
}

/// Which solver answered a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanSolver {
    /// The interior-point method of [`crate::qp`] (dense normal equations for small plans,
    /// a sparse system for large ones).
    Dense,
    /// Clarabel: plans outside the dense method's class, or where it did not converge.
    Clarabel,
}

/// Build and solve `problem` with the given weights: with [`crate::qp`] when it takes the
/// problem and converges, else with clarabel.
pub fn solve_plan(problem: &PlanProblem, params: &MpcParams) -> Result<PlanSolution, EvError> {
    solve_plan_with(problem, params, SolverChoice::DenseFirst(solver_settings()))
}

/// Which solvers [`solve_plan_with`] tries.
#[derive(Debug, Clone)]
enum SolverChoice {
    /// [`crate::qp`] first, clarabel with these settings when it declines.
    DenseFirst(DefaultSettings<f64>),
    /// Clarabel only, with these settings (the tests compare solvers and settings).
    #[cfg_attr(not(test), allow(dead_code))]
    Clarabel(DefaultSettings<f64>),
}

/// A plan problem in solver form: `min ½·Σ p·x² + q·x` subject to equality rows `zero` and
/// inequality rows `nonneg` (`a·x ≤ b`), each as triplets, and where each vehicle's variables
/// are.
struct BuiltPlan {
    p_diag: Vec<f64>,
    q: Vec<f64>,
    zero: RowTriplets,
    nonneg: RowTriplets,
    layout: Vec<(Vars, usize)>,
}

/// Rows as triplets and right-hand sides.
#[derive(Default)]
struct RowTriplets {
    row: Vec<usize>,
    col: Vec<usize>,
    val: Vec<f64>,
    rhs: Vec<f64>,
}

impl RowTriplets {
    fn as_rows(&self) -> crate::qp::Rows<'_> {
        crate::qp::Rows {
            row: &self.row,
            col: &self.col,
            val: &self.val,
            rhs: &self.rhs,
        }
    }
}

/// Where a vehicle's variables start: charging power, discharging power (V2G) and energy
/// (V2G), each `len` long.
struct Vars {
    c: usize,
    g: Option<usize>,
    s: usize,
}

/// [`solve_plan`] with a choice of solvers.
fn solve_plan_with(
    problem: &PlanProblem,
    params: &MpcParams,
    choice: SolverChoice,
) -> Result<PlanSolution, EvError> {
    let built = build_plan(problem, params);
    if built.q.is_empty() {
        return Ok(PlanSolution {
            charge_kw: built
                .layout
                .iter()
                .map(|(_, len)| vec![0.0; *len])
                .collect(),
            discharge_kw: vec![Vec::new(); problem.evs.len()],
            iterations: 0,
            solver: PlanSolver::Dense,
        });
    }
    let (x, iterations, solver) = solve_built(&built, choice)?;
    let mut charge_kw = Vec::with_capacity(problem.evs.len());
    let mut discharge_kw = Vec::with_capacity(problem.evs.len());
    for (ev, (vars, len)) in problem.evs.iter().zip(&built.layout) {
        charge_kw.push(
            (0..*len)
                .map(|k| clean(x[vars.c + k], ev.max_charge_kw))
                .collect(),
        );
        discharge_kw.push(match vars.g {
            Some(g) => (0..*len)
                .map(|k| clean(x[g + k], ev.max_discharge_kw))
                .collect(),
            None => Vec::new(),
        });
    }
    Ok(PlanSolution {
        charge_kw,
        discharge_kw,
        iterations,
        solver,
    })
}

/// Solve a built plan: the raw solution, iterations and which solver answered.
fn solve_built(
    built: &BuiltPlan,
    choice: SolverChoice,
) -> Result<(Vec<f64>, u32, PlanSolver), EvError> {
    let settings = match choice {
        SolverChoice::DenseFirst(settings) => {
            let input = crate::qp::QpInput {
                p_diag: &built.p_diag,
                q: &built.q,
                eq: built.zero.as_rows(),
                ineq: built.nonneg.as_rows(),
            };
            if let Some(sol) = crate::qp::solve(&input, &crate::qp::Tolerances::default()) {
                return Ok((sol.x, sol.iterations, PlanSolver::Dense));
            }
            settings
        }
        SolverChoice::Clarabel(settings) => settings,
    };
    let (x, iterations) = solve_clarabel(built, settings)?;
    Ok((x, iterations, PlanSolver::Clarabel))
}

/// Solve a built plan with clarabel: the equality rows stacked above the inequality rows.
fn solve_clarabel(
    built: &BuiltPlan,
    settings: DefaultSettings<f64>,
) -> Result<(Vec<f64>, u32), EvError> {
    let n = built.q.len();
    let (zrow, nrow) = (built.zero.rhs.len(), built.nonneg.rhs.len());
    let m = zrow + nrow;
    let ri = built
        .zero
        .row
        .iter()
        .copied()
        .chain(built.nonneg.row.iter().map(|r| r + zrow))
        .collect();
    let rj = [built.zero.col.as_slice(), &built.nonneg.col].concat();
    let rv = [built.zero.val.as_slice(), &built.nonneg.val].concat();
    let b = [built.zero.rhs.as_slice(), &built.nonneg.rhs].concat();
    let a = CscMatrix::new_from_triplets(m, n, ri, rj, rv);
    let diag: Vec<usize> = (0..n).filter(|&j| built.p_diag[j] != 0.0).collect();
    let pv: Vec<f64> = diag.iter().map(|&j| built.p_diag[j]).collect();
    let p = CscMatrix::new_from_triplets(n, n, diag.clone(), diag, pv);
    let mut cones: Vec<SupportedConeT<f64>> = Vec::new();
    if zrow > 0 {
        cones.push(ZeroConeT(zrow));
    }
    if nrow > 0 {
        cones.push(NonnegativeConeT(nrow));
    }
    let mut solver = DefaultSolver::new(&p, &built.q, &a, &b, &cones, settings)
        .map_err(|e| EvError::Solver(format!("{e:?}")))?;
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => {}
        other => return Err(EvError::Solver(format!("status {other:?}"))),
    }
    Ok((solver.solution.x.clone(), solver.info.iterations))
}

/// Build the solver form of `problem` with the given weights.
fn build_plan(problem: &PlanProblem, params: &MpcParams) -> BuiltPlan {
    let dt_at =
        |step: usize| problem.step_hours * problem.step_scale.get(step).copied().unwrap_or(1.0);
    let value = params.value_of_energy_eur_per_kwh;
    let reg = params.regularisation;
    // Base step each plan step starts at (and one past the last), for the tail.
    let base_start: Vec<usize> = match problem.tail {
        Some(_) => std::iter::once(0)
            .chain((0..problem.steps).scan(0usize, |b, k| {
                *b += problem
                    .step_scale
                    .get(k)
                    .map_or(1, |l| l.round().max(1.0) as usize);
                Some(*b)
            }))
            .collect(),
        None => Vec::new(),
    };
    // Variable layout.
    let mut layout = Vec::with_capacity(problem.evs.len());
    let mut n = 0usize;
    for ev in &problem.evs {
        let len = ev
            .end
            .saturating_sub(ev.start)
            .min(problem.steps.saturating_sub(ev.start));
        let v2g = ev.max_discharge_kw > 0.0;
        let c = n;
        n += len;
        let (g, s) = if v2g {
            let g = n;
            n += 2 * len;
            (Some(g), g + len)
        } else {
            (None, 0)
        };
        layout.push((Vars { c, g, s }, len));
    }
    let groups = if problem.demand_charge_eur_per_kw > 0.0 {
        problem.prev_peak_kw.len()
    } else {
        0
    };
    let weights: &[f64] = problem
        .scenarios
        .as_ref()
        .map_or(&[1.0], |s| s.weights.as_slice());
    let scenarios = weights.len().max(1);
    let robustness = problem
        .scenarios
        .as_ref()
        .filter(|_| scenarios > 1)
        .map_or(0.0, |s| s.robustness.clamp(0.0, 1.0));
    // One peak per billing period and scenario, and the worst of them per period.
    let peak0 = n;
    n += groups * scenarios;
    let worst0 = n;
    let with_worst = groups > 0 && robustness > 0.0;
    if with_worst {
        n += groups;
    }
    let reserve0 = n;
    if problem.reserve.is_some() {
        n += problem.steps;
    }

    let mut q = vec![0.0; n];
    let mut p_diag: Vec<(usize, f64)> = Vec::new();
    // Zero-cone rows (equalities) and non-negative rows (a·x ≤ b), built as triplets.
    let (mut zi, mut zj, mut zv, mut zb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ni, mut nj, mut nv, mut nb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut zrow = 0usize;
    let mut nrow = 0usize;
    // Per-step lists of (variable, sign) for the aggregate power: of the vehicles in every
    // scenario, and of each scenario's own (empty without scenarios).
    let mut step_terms: Vec<Vec<(usize, f64)>> = vec![Vec::new(); problem.steps];
    let mut scenario_terms: Vec<Vec<Vec<(usize, f64)>>> = if scenarios > 1 {
        vec![vec![Vec::new(); scenarios]; problem.steps]
    } else {
        Vec::new()
    };
    let mut any_v2g = false;

    for (ev, (vars, len)) in problem.evs.iter().zip(&layout) {
        let eta = ev.efficiency.clamp(1e-6, 1.0);
        for k in 0..*len {
            let step = ev.start + k;
            let dt = dt_at(step);
            let price = problem.price_eur_per_mwh.get(step).copied().unwrap_or(0.0) / 1000.0;
            // An expected arrival (value weight below 1) takes the tie-break the other way
            // round: the vehicles present get the early capacity, the forecast the late one.
            let position = if ev.value_weight < 1.0 {
                *len - k
            } else {
                k + 1
            };
            let quick = problem.quick_charge_eur_per_kwh * position as f64 / (*len as f64);
            let tail = if ev.value_weight >= 1.0 && ev.scenario.is_none() {
                Tail::price_at(problem.tail.as_ref(), &base_start, step, ev.start + len)
            } else {
                0.0
            };
            let c = vars.c + k;
            q[c] = (price + quick + tail) * dt;
            p_diag.push((c, reg));
            // 0 ≤ c ≤ c_max
            for (sign, b) in [(-1.0, 0.0), (1.0, ev.max_charge_kw.max(0.0))] {
                ni.push(nrow);
                nj.push(c);
                nv.push(sign);
                nb.push(b);
                nrow += 1;
            }
            terms_of(&mut step_terms, &mut scenario_terms, step, ev.scenario).push((c, 1.0));
            if let Some(g0) = vars.g {
                any_v2g = true;
                let g = g0 + k;
                let s = vars.s + k;
                q[g] = (-price + params.wear_cost_eur_per_kwh) * dt;
                p_diag.push((g, reg));
                for (sign, b) in [(-1.0, 0.0), (1.0, ev.max_discharge_kw)] {
                    ni.push(nrow);
                    nj.push(g);
                    nv.push(sign);
                    nb.push(b);
                    nrow += 1;
                }
                let lo = ev.min_energy_kwh.min(ev.energy_kwh);
                let hi = ev.max_energy_kwh.max(ev.energy_kwh);
                for (sign, b) in [(-1.0, -lo), (1.0, hi)] {
                    ni.push(nrow);
                    nj.push(s);
                    nv.push(sign);
                    nb.push(b);
                    nrow += 1;
                }
                // s_k − s_{k−1} − η·Δt·c + Δt/η·g = 0 (s_{−1} = energy now, a constant).
                zi.extend([zrow, zrow, zrow]);
                zj.extend([s, c, g]);
                zv.extend([1.0, -eta * dt, dt / eta]);
                if k == 0 {
                    zb.push(ev.energy_kwh);
                } else {
                    zi.push(zrow);
                    zj.push(s - 1);
                    zv.push(-1.0);
                    zb.push(0.0);
                }
                zrow += 1;
                terms_of(&mut step_terms, &mut scenario_terms, step, ev.scenario).push((g, -1.0));
            } else {
                q[c] -= value * ev.value_weight * eta * dt;
            }
        }
        if *len > 0 {
            if vars.g.is_some() {
                q[vars.s + len - 1] -= value * ev.value_weight;
            } else {
                // Σ η·Δt·c ≤ need
                for k in 0..*len {
                    ni.push(nrow);
                    nj.push(vars.c + k);
                    nv.push(eta * dt_at(ev.start + k));
                }
                nb.push(ev.need_kwh.max(0.0));
                nrow += 1;
            }
        }
    }
    for (step, terms) in step_terms.iter().enumerate() {
        let grp = problem
            .peak_group
            .get(step)
            .copied()
            .unwrap_or(0)
            .min(groups.max(1) - 1);
        // The site limit holds the shared vehicles only: a scenario's expected arrivals are
        // priced by its peak, not held to the limit (a busy scenario that could not be served
        // under the limit would otherwise force the shared vehicles up to it).
        if problem.site_limit_kw.is_finite() && !terms.is_empty() {
            for &(j, sign) in terms {
                ni.push(nrow);
                nj.push(j);
                nv.push(sign);
            }
            nb.push(problem.site_limit_kw);
            nrow += 1;
            if any_v2g {
                for &(j, sign) in terms {
                    ni.push(nrow);
                    nj.push(j);
                    nv.push(-sign);
                }
                nb.push(problem.site_limit_kw);
                nrow += 1;
            }
        }
        let own = scenario_terms.get(step).map(Vec::as_slice);
        for (aggregate, members) in step_aggregates(terms, own) {
            if groups > 0 {
                for scenario in members {
                    for &(j, sign) in aggregate.iter() {
                        ni.push(nrow);
                        nj.push(j);
                        nv.push(sign);
                    }
                    ni.push(nrow);
                    nj.push(peak0 + grp * scenarios + scenario);
                    nv.push(-1.0);
                    nb.push(0.0);
                    nrow += 1;
                }
            }
        }
        if terms.is_empty() {
            continue;
        }
        if let Some(r) = problem.reserve {
            // Σ terms − u ≤ below (u ≥ 0 below), u priced per kWh.
            let u = reserve0 + step;
            q[u] = r.eur_per_kwh.max(0.0) * dt_at(step);
            for &(j, sign) in terms {
                ni.push(nrow);
                nj.push(j);
                nv.push(sign);
            }
            ni.push(nrow);
            nj.push(u);
            nv.push(-1.0);
            nb.push(r.below_kw.max(0.0));
            nrow += 1;
        }
    }
    if problem.reserve.is_some() {
        for u in reserve0..reserve0 + problem.steps {
            ni.push(nrow);
            nj.push(u);
            nv.push(-1.0);
            nb.push(0.0);
            nrow += 1;
        }
    }
    for (grp, prev) in problem.prev_peak_kw.iter().enumerate().take(groups) {
        for scenario in 0..scenarios {
            let v = peak0 + grp * scenarios + scenario;
            // Without scenarios: the charge itself (× 1 × 1, exactly).
            let weight = weights.get(scenario).copied().unwrap_or(1.0);
            q[v] = problem.demand_charge_eur_per_kw * (1.0 - robustness) * weight;
            ni.push(nrow);
            nj.push(v);
            nv.push(-1.0);
            nb.push(-prev.max(0.0));
            nrow += 1;
            if with_worst {
                // peak − worst ≤ 0
                ni.extend([nrow, nrow]);
                nj.extend([v, worst0 + grp]);
                nv.extend([1.0, -1.0]);
                nb.push(0.0);
                nrow += 1;
            }
        }
        if with_worst {
            q[worst0 + grp] = problem.demand_charge_eur_per_kw * robustness;
        }
    }
    let mut p_full = vec![0.0; n];
    for (j, v) in p_diag {
        p_full[j] += v;
    }
    BuiltPlan {
        p_diag: p_full,
        q,
        zero: RowTriplets {
            row: zi,
            col: zj,
            val: zv,
            rhs: zb,
        },
        nonneg: RowTriplets {
            row: ni,
            col: nj,
            val: nv,
            rhs: nb,
        },
        layout,
    }
}

/// The list a vehicle's power variable joins at `step`: the shared one, or its scenario's.
fn terms_of<'a>(
    shared: &'a mut [Vec<(usize, f64)>],
    by_scenario: &'a mut [Vec<Vec<(usize, f64)>>],
    step: usize,
    scenario: Option<usize>,
) -> &'a mut Vec<(usize, f64)> {
    match (scenario, by_scenario.get_mut(step)) {
        (Some(j), Some(lists)) if !lists.is_empty() => {
            let last = lists.len() - 1;
            &mut lists[j.min(last)]
        }
        _ => &mut shared[step],
    }
}

/// Clarabel's settings for a plan. Iterative refinement is off: the plans are small (about
/// 100 variables and 200 rows in the built-in apartment's year), the KKT system is
/// regularised only by clarabel's tiny static and dynamic terms, and refinement to 1e-13
/// cost about 40 % of the solve time (perf: qdldl solve and `_csc_symv` in the refinement
/// loop) without changing what the termination test accepts: the same 1e-8 gap and
/// feasibility tolerances still decide when a plan is solved.
fn solver_settings() -> DefaultSettings<f64> {
    DefaultSettings {
        verbose: false,
        max_iter: 200,
        iterative_refinement_enable: false,
        ..DefaultSettings::default()
    }
}

/// One aggregate of a step: its (variable, sign) terms and the scenarios it is the aggregate
/// of.
type StepAggregate<'a> = (Cow<'a, [(usize, f64)]>, Vec<usize>);

/// The distinct aggregates of one step, each with the scenarios whose aggregate it is: the
/// shared terms plus a scenario's own for each scenario with terms here, and the shared terms
/// alone for the others. Without scenarios: the shared terms for scenario 0 (none when empty).
fn step_aggregates<'a>(
    shared: &'a [(usize, f64)],
    by_scenario: Option<&[Vec<(usize, f64)>]>,
) -> Vec<StepAggregate<'a>> {
    let Some(lists) = by_scenario.filter(|l| l.len() > 1) else {
        return if shared.is_empty() {
            Vec::new()
        } else {
            vec![(Cow::Borrowed(shared), vec![0])]
        };
    };
    let mut out = Vec::new();
    let mut alone = Vec::new();
    for (j, own) in lists.iter().enumerate() {
        if own.is_empty() {
            alone.push(j);
        } else {
            out.push((Cow::Owned([shared, own.as_slice()].concat()), vec![j]));
        }
    }
    if !shared.is_empty() && !alone.is_empty() {
        out.push((Cow::Borrowed(shared), alone));
    }
    out
}

/// Clamp a solver value to its bounds and drop interior-point residue (below 1 W).
fn clean(x: f64, max: f64) -> f64 {
    let x = x.clamp(0.0, max.max(0.0));
    if x < 1e-3 { 0.0 } else { x }
}

/// The model-predictive controller. It plans over the plugged-in vehicles' horizon against
/// the largest of the learned peak target and the period's peak so far, keeps the plan, and
/// applies it step by step; it re-solves only when [`Mpc::needs_replan`] says the plan no
/// longer describes the site (or every step with `replan_on_events = false`). An arrival
/// alone is added to the kept plan without a solve when nothing couples it to the plan (see
/// `insert_arrivals`); otherwise the plan is re-solved, in a separable plan (no site limit,
/// no demand charge: `Mpc::separable`) for the vehicles with news alone. With a demand
/// charge, each day's finished sessions teach the peak learner their hindsight-lowest peak.
#[derive(Debug, Clone)]
pub struct Mpc {
    params: MpcParams,
    offers: Vec<SellOffer>,
    plan: Option<CachedPlan>,
    solves: usize,
    peak: PeakLearner,
    day: Option<i64>,
    tracked: BTreeMap<usize, Tracked>,
    departed: Vec<PeakSession>,
    /// Learned arrivals, made on the first step (it needs the step length).
    arrivals: Option<ArrivalProfile>,
}

/// A kept plan, per vehicle in base steps from `made_at`.
#[derive(Debug, Clone)]
struct CachedPlan {
    made_at: i64,
    site_limit_kw: f64,
    demand_charge_eur_per_kw: f64,
    peak_basis_kw: f64,
    /// The peak the plan pays for: its basis or the highest planned aggregate (expected
    /// arrivals included), kW. The period's peak rising up to it is no news.
    planned_peak_kw: f64,
    /// Where the plan's reserve band starts, kW (`INFINITY`: no band).
    reserve_below_kw: f64,
    /// Prices (with the grid-peak adder) the plan saw, from `made_at`.
    prices: Vec<f64>,
    evs: BTreeMap<usize, PlannedEv>,
    /// Planned net power per base step from `made_at`, kW.
    aggregate_kw: Vec<f64>,
    /// Planned V2G sales.
    offers: Vec<SellOffer>,
}

#[derive(Debug, Clone)]
struct PlannedEv {
    /// Base step (absolute) the vehicle's plan starts at.
    from_step: i64,
    /// Planned net power per base step from `from_step`, kW.
    rate_kw: Vec<f64>,
    departure_step: i64,
    remaining_kwh: f64,
    energy_kwh: f64,
    efficiency: f64,
}

impl PlannedEv {
    fn rate_at(&self, step: i64) -> f64 {
        usize::try_from(step - self.from_step)
            .ok()
            .and_then(|k| self.rate_kw.get(k))
            .copied()
            .unwrap_or(0.0)
    }

    /// Planned (remaining energy, battery energy) at the start of `step`.
    fn expected_at(&self, step: i64, step_hours: f64) -> (f64, f64) {
        let (mut rem, mut e) = (self.remaining_kwh, self.energy_kwh);
        for k in self.from_step..step {
            let r = self.rate_at(k);
            if r >= 0.0 {
                rem -= self.efficiency * r * step_hours;
                e += self.efficiency * r * step_hours;
            } else {
                e += r * step_hours / self.efficiency;
            }
        }
        (rem.max(0.0), e)
    }
}

/// A solved plan not kept yet: the vehicles' plans, the horizon in base steps from now, and
/// the figures [`CachedPlan`] keeps of it.
struct Solved {
    evs: BTreeMap<usize, PlannedEv>,
    horizon: usize,
    planned_peak_kw: f64,
    reserve_below_kw: f64,
}

/// What the peak learner records of a vehicle while it is plugged in.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    first_step: i64,
    last_step: i64,
    delivered_kwh: f64,
    max_charge_kw: f64,
    efficiency: f64,
}

impl Mpc {
    /// A controller with these weights.
    pub fn new(params: MpcParams) -> Self {
        let peak = PeakLearner::new(params.peak_memory_days);
        Self {
            params,
            offers: Vec::new(),
            plan: None,
            solves: 0,
            peak,
            day: None,
            tracked: BTreeMap::new(),
            departed: Vec::new(),
            arrivals: None,
        }
    }

    /// Learn the peak target and the arrival profile from past sessions (not replayed),
    /// on a grid of `step_minutes`: each day's hindsight peak and its arrivals.
    pub fn learn_history(&mut self, history: &[Session], step_minutes: u32) -> Result<(), EvError> {
        if self.params.peak_memory_days == 0 {
            return Ok(());
        }
        let step_hours = f64::from(step_minutes.max(1)) / MINUTES_PER_HOUR;
        let arrivals = self
            .arrivals
            .get_or_insert_with(|| ArrivalProfile::new(self.params.peak_memory_days, step_minutes));
        for (day, list) in peak_sessions_by_day(history, step_minutes) {
            // The history's own limit is unknown here: the unconstrained hindsight peak.
            let kw = hindsight_peak_kw(&list, step_hours, f64::INFINITY)?;
            self.peak.observe_day(day, kw);
            arrivals.observe(&list, day);
        }
        Ok(())
    }

    /// Whether the plan includes expected arrivals now (forecast on and something learned).
    fn forecasting(&self) -> bool {
        self.params.forecast_arrivals_hours > 0.0
            && self.arrivals.as_ref().is_some_and(|a| !a.is_empty())
    }

    /// Optimisation problems solved so far.
    pub fn solves(&self) -> usize {
        self.solves
    }

    /// The peak the controller currently plans against at least (learned or given), kW. It
    /// learns online only at a site with a demand charge (elsewhere the peak costs nothing).
    pub fn peak_target_kw(&self) -> f64 {
        self.peak.target_kw().max(self.params.peak_target_kw)
    }

    /// The peak the plan may use for free: the period's peak so far, the given target,
    /// unless expected arrivals are planned for the learned target, and the site limit when
    /// the learned target reaches it (see [`MpcParams::demand_charge_limit_basis`]).
    fn peak_basis_kw(&self, ctx: &StepContext<'_>) -> f64 {
        let learned = if self.forecasting() {
            0.0
        } else {
            self.peak.target_kw()
        };
        let basis = learned
            .max(self.params.peak_target_kw)
            .max(ctx.peak_so_far_kw);
        if self.limit_binds(ctx) {
            basis.max(ctx.site_limit_kw)
        } else {
            basis
        }
    }

    /// Whether the learned peak target says the site limit will set the period's peak: with
    /// a demand charge and a finite limit, the worst remembered day needed 99 % of it.
    fn limit_binds(&self, ctx: &StepContext<'_>) -> bool {
        self.params.demand_charge_limit_basis
            && ctx.demand_charge_eur_per_kw > 0.0
            && ctx.site_limit_kw.is_finite()
            && self.peak.target_kw() >= RESERVE_LIMIT_SHARE * ctx.site_limit_kw
    }

    /// The reserve band of a plan: the top `reserve_pct` of the peak basis, with a demand
    /// charge only (without one the basis is no cost), and only while the basis is below
    /// the site limit: within 1 % of the limit the peak cannot rise any more, so there is no
    /// peak to protect, and capacity left unused now is energy lost under a binding limit.
    fn reserve(&self, ctx: &StepContext<'_>) -> Option<Reserve> {
        let share = self.params.reserve_pct;
        let basis = self.peak_basis_kw(ctx);
        (share > 0.0
            && self.params.reserve_eur_per_kwh > 0.0
            && ctx.demand_charge_eur_per_kw > 0.0
            && basis < RESERVE_LIMIT_SHARE * ctx.site_limit_kw)
            .then(|| Reserve {
                below_kw: basis * (1.0 - share.min(1.0)),
                eur_per_kwh: self.params.reserve_eur_per_kwh,
            })
    }

    /// The tail of a plan (see [`MpcParams::demand_charge_tail_minutes`]): with a demand
    /// charge only.
    fn tail(&self, ctx: &StepContext<'_>) -> Option<Tail> {
        let minutes = f64::from(self.params.demand_charge_tail_minutes);
        let steps = (minutes / (ctx.step_hours * MINUTES_PER_HOUR).max(1e-9)).round() as usize;
        (steps > 0 && ctx.demand_charge_eur_per_kw > 0.0).then_some(Tail {
            base_steps: steps,
            eur_per_kwh: self.params.demand_charge_tail_eur_per_kwh,
        })
    }

    /// The weight of the energy price in a plan (see
    /// [`MpcParams::demand_charge_price_weight`]): below 1 only with a demand charge.
    fn price_weight(&self, ctx: &StepContext<'_>) -> f64 {
        if ctx.demand_charge_eur_per_kw > 0.0 {
            self.params.demand_charge_price_weight.clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    fn effective_price(&self, ctx: &StepContext<'_>, k: usize) -> f64 {
        ctx.price_ahead(k)
            + if ctx.peak_ahead(k) {
                self.params.grid_peak_adder_eur_per_mwh
            } else {
                0.0
            }
    }

    /// Whether the kept plan no longer describes the site: no plan, a vehicle not in it, a
    /// vehicle gone or staying other than planned, a price, limit, demand-charge or peak
    /// basis change, a vehicle whose energy or power limit left the plan, or a vehicle that
    /// still wants energy after its plan ended. Cheap: no solve.
    pub fn needs_replan(&self, ctx: &StepContext<'_>) -> bool {
        self.replan_reason(ctx).is_some()
    }

    fn replan_reason(&self, ctx: &StepContext<'_>) -> Option<Reason> {
        let Some(plan) = &self.plan else {
            return Some(Reason::Other);
        };
        if !self.params.replan_on_events
            || plan.site_limit_kw.to_bits() != ctx.site_limit_kw.to_bits()
            || plan.demand_charge_eur_per_kw != ctx.demand_charge_eur_per_kw
            || (ctx.demand_charge_eur_per_kw > 0.0
                && (self.peak_basis_kw(ctx) > plan.planned_peak_kw + 1e-6
                    || self.peak_basis_kw(ctx) < plan.peak_basis_kw - 1e-6))
        {
            return Some(Reason::Other);
        }
        let offset = usize::try_from(ctx.step - plan.made_at).ok()?;
        // Past the kept plan's horizon every planned vehicle's plan has ended; in a
        // separable plan that is news only of a vehicle that still wants energy, or of one
        // departing other than planned (below), not of the others. In the built-in
        // apartment's year at 15-minute steps this re-solved the whole fleet 3,641 times.
        if offset >= plan.aggregate_kw.len() && !self.separable(ctx) {
            return Some(Reason::Other);
        }
        let left = plan.prices.len() - offset.min(plan.prices.len());
        if (0..left).any(|k| (self.effective_price(ctx, k) - plan.prices[offset + k]).abs() > 1e-9)
        {
            return Some(Reason::Other);
        }
        // In a separable plan a vehicle's news is its own: it alone is re-planned.
        let separable = self.separable(ctx);
        // A planned vehicle gone before its planned departure.
        let present: BTreeSet<usize> = ctx.evs.iter().map(|e| e.key).collect();
        let left_early = plan
            .evs
            .iter()
            .any(|(k, p)| !present.contains(k) && p.departure_step > ctx.step);
        if left_early && !separable {
            return Some(Reason::Other);
        }
        let tol = self.params.replan_tolerance_kwh;
        let mut arrivals = false;
        let mut deviations = false;
        let mut alone = Vec::new();
        for ev in ctx.evs {
            let Some(p) = plan.evs.get(&ev.key) else {
                if self.forecasting() && !separable {
                    // The plan's forecast no longer matches: an expected arrival came.
                    return Some(Reason::Other);
                }
                arrivals = true;
                alone.push(ev.key);
                continue;
            };
            let (rem, energy) = p.expected_at(ctx.step, ctx.step_hours);
            let rate = p.rate_at(ctx.step);
            let v2g = ev.max_discharge_kw > 0.0;
            // A V2G vehicle's plan reads its battery energy, never the energy it still wants
            // (`build_plan` values the energy at the end of its stay instead), so only the
            // former is news. The latter moved at every step it gave energy back (the site
            // counts energy wanted from the battery, the plan's `expected_at` from the
            // charging only): in the built-in apartment's year at 15-minute steps that was
            // 2,282 of its 9,839 re-plans.
            if (ev.departure_step != p.departure_step && !overstays_done(ev, p, ctx.step))
                || (!v2g && (ev.remaining_kwh - rem).abs() > tol)
                || (v2g && (ev.energy_kwh - energy).abs() > tol)
                || rate > ev.max_charge_kw + 1e-6
                || -rate > ev.max_discharge_kw + 1e-6
                // Past the end of its plan and still wanting energy: re-plan even for a
                // small remainder (deviations under `tol` add up to it, and a vehicle left
                // alone here would leave short of what LLF gives it).
                || (ctx.step >= p.from_step + (p.rate_kw.len() as i64)
                    && ev.remaining_kwh > END_OF_PLAN_REMAINDER_KWH)
            {
                if !separable {
                    return Some(Reason::Other);
                }
                deviations = true;
                alone.push(ev.key);
            }
        }
        if deviations || left_early {
            Some(Reason::Alone(alone))
        } else {
            arrivals.then_some(Reason::Arrivals)
        }
    }

    /// Whether no constraint or term of a plan couples two vehicles, so each vehicle's plan
    /// is its own optimum and only a vehicle whose news it is needs a new one
    /// (`Mpc::replan_alone`): re-planning on events, without a site limit (no site rows,
    /// and the congestion tie-break is zero) and without a demand charge (no peak rows,
    /// reserve band, tail or scenarios). Expected arrivals are then not planned: alone in
    /// their own part of the problem, they would change no vehicle's plan. The built-in
    /// apartment's fleet is such a site; there the whole-fleet re-plans for each arrival (the
    /// forecast no longer matched) and for each vehicle's deviation took most of the year's
    /// CPU.
    fn separable(&self, ctx: &StepContext<'_>) -> bool {
        self.params.replan_on_events
            && !ctx.site_limit_kw.is_finite()
            && ctx.demand_charge_eur_per_kw <= 0.0
    }

    /// Add newly arrived vehicles to the kept plan without a solve, only where that is what
    /// the solver would do. Each new vehicle takes, in order of its cost per kWh in the
    /// objective (price plus the charge-early tie-break, earliest first on ties), full power
    /// in as many steps as its energy needs. That is the joint optimum when the kept plan is
    /// optimal and the vehicle couples to it through no constraint: every step it charges in
    /// stays strictly below the site limit (and, with a demand charge, the peak basis and the
    /// plan's reserve band, so the band's price is not met), its stay ends within the plan, and it leaves the congestion tie-break weight of everyone
    /// unchanged. False (plan unchanged, the caller re-solves) otherwise, or for V2G.
    fn insert_arrivals(&mut self, ctx: &StepContext<'_>) -> bool {
        let Some(plan) = self.plan.as_ref() else {
            return false;
        };
        let basis = self.peak_basis_kw(ctx).max(plan.planned_peak_kw);
        let is_new = |e: &ActiveEv| !plan.evs.contains_key(&e.key);
        let weight = self.quick_weight(ctx.evs.iter(), ctx.site_limit_kw);
        let weight_before =
            self.quick_weight(ctx.evs.iter().filter(|e| !is_new(e)), ctx.site_limit_kw);
        if (weight - weight_before).abs() > 1e-12 {
            return false;
        }
        let offset = (ctx.step - plan.made_at) as usize;
        let cap = if ctx.demand_charge_eur_per_kw > 0.0 {
            ctx.site_limit_kw.min(basis).min(plan.reserve_below_kw)
        } else {
            ctx.site_limit_kw
        };
        let dt = ctx.step_hours;
        let price_weight = self.price_weight(ctx);
        let mut aggregate = plan.aggregate_kw.clone();
        let mut added = Vec::new();
        for ev in ctx.evs.iter().filter(|e| is_new(e)) {
            let end = (ev.departure_step - plan.made_at).max(0) as usize;
            if ev.max_discharge_kw > 0.0 || end > aggregate.len() || end <= offset {
                return false;
            }
            let eta = ev.efficiency.clamp(1e-6, 1.0);
            let len = (end - offset) as f64;
            // The objective's cost of a kWh at plan step k (see `solve_plan`).
            let tail = self.tail(ctx);
            let cost = |k: usize| {
                price_weight * plan.prices[k] / 1000.0
                    + weight * (k - offset + 1) as f64 / len
                    + Tail::price_at(tail.as_ref(), &[], k, end)
            };
            let mut order: Vec<usize> = (offset..end).collect();
            order.sort_by(|&a, &b| cost(a).total_cmp(&cost(b)).then(a.cmp(&b)));
            let mut rate = vec![0.0; end - offset];
            let mut need = ev.remaining_kwh.max(0.0);
            for k in order {
                if need <= 1e-9 {
                    break;
                }
                let p = ev.max_charge_kw.max(0.0).min(need / (eta * dt));
                if aggregate[k] + p > cap - 1e-6 {
                    return false;
                }
                rate[k - offset] = p;
                aggregate[k] += p;
                need -= p * eta * dt;
            }
            added.push((
                ev.key,
                PlannedEv {
                    from_step: ctx.step,
                    rate_kw: rate,
                    departure_step: ev.departure_step,
                    remaining_kwh: ev.remaining_kwh,
                    energy_kwh: ev.energy_kwh,
                    efficiency: eta,
                },
            ));
        }
        if let Some(plan) = self.plan.as_mut() {
            plan.aggregate_kw = aggregate;
            plan.evs.extend(added);
        }
        true
    }

    /// Record the top-ups given this step in the kept plan, so that the vehicles' energy
    /// stays as planned and a top-up is no deviation that re-plans.
    fn keep_top_ups(&mut self, ctx: &StepContext<'_>, extra_kw: &[f64]) {
        let Some(plan) = self.plan.as_mut() else {
            return;
        };
        for (ev, extra) in ctx.evs.iter().zip(extra_kw) {
            if *extra <= 0.0 {
                continue;
            }
            if let Some(r) = plan.evs.get_mut(&ev.key).and_then(|p| {
                let k = usize::try_from(ctx.step - p.from_step).ok()?;
                p.rate_kw.get_mut(k)
            }) {
                *r += extra;
            }
            if let Some(a) = usize::try_from(ctx.step - plan.made_at)
                .ok()
                .and_then(|k| plan.aggregate_kw.get_mut(k))
            {
                *a += extra;
            }
        }
    }

    /// Solve a new plan and keep it.
    fn replan(&mut self, ctx: &StepContext<'_>) -> Result<(), EvError> {
        let solved = self.solve_for(ctx)?;
        self.keep(ctx, solved);
        Ok(())
    }

    /// In a separable plan (see [`Self::separable`]): solve a plan for the vehicles `keys`
    /// alone and keep the other present vehicles' plans as they are (their optimum does not
    /// depend on the others); a vehicle gone leaves the plan. No solve when `keys` is empty.
    fn replan_alone(&mut self, ctx: &StepContext<'_>, keys: &[usize]) -> Result<(), EvError> {
        let Some(kept) = self.plan.take() else {
            return self.replan(ctx);
        };
        let some: Vec<ActiveEv> = ctx
            .evs
            .iter()
            .filter(|e| keys.contains(&e.key))
            .cloned()
            .collect();
        let mut solved = if some.is_empty() {
            Solved {
                evs: BTreeMap::new(),
                horizon: 1,
                planned_peak_kw: self.peak_basis_kw(ctx),
                reserve_below_kw: f64::INFINITY,
            }
        } else {
            self.solve_for(&StepContext {
                evs: &some,
                ..ctx.clone()
            })?
        };
        // The kept plan's horizon stays (its prices are checked over it).
        let kept_left = (kept.made_at + kept.aggregate_kw.len() as i64 - ctx.step).max(1);
        solved.horizon = solved.horizon.max(kept_left as usize);
        let mut kept_evs = kept.evs;
        for ev in ctx.evs {
            if !keys.contains(&ev.key)
                && let Some(p) = kept_evs.remove(&ev.key)
            {
                solved.evs.insert(ev.key, p);
            }
        }
        solved.planned_peak_kw = (0..solved.horizon as i64)
            .map(|k| solved.evs.values().map(|p| p.rate_at(ctx.step + k)).sum())
            .fold(solved.planned_peak_kw, f64::max);
        self.keep(ctx, solved);
        Ok(())
    }

    /// Solve the plan for the vehicles of `ctx` (not kept yet).
    fn solve_for(&mut self, ctx: &StepContext<'_>) -> Result<Solved, EvError> {
        let (problem, blocks) = self.problem(ctx);
        let sol = solve_plan(&problem, &self.params)?;
        self.solves += 1;
        let horizon: usize = blocks.iter().map(|(_, l)| l).sum();
        let mut evs = BTreeMap::new();
        // Planned aggregate with the expected arrivals (plan steps), per scenario.
        let scenarios = problem
            .scenarios
            .as_ref()
            .map_or(1, |s| s.weights.len().max(1));
        let mut planned = vec![vec![0.0; problem.steps]; scenarios];
        for ((pe, c), g) in problem
            .evs
            .iter()
            .zip(&sol.charge_kw)
            .zip(&sol.discharge_kw)
        {
            let members = match pe.scenario {
                Some(j) if scenarios > 1 => j.min(scenarios - 1)..j.min(scenarios - 1) + 1,
                _ => 0..scenarios,
            };
            for row in &mut planned[members] {
                for (k, ck) in c.iter().enumerate() {
                    if let Some(a) = row.get_mut(pe.start + k) {
                        *a += ck - g.get(k).copied().unwrap_or(0.0);
                    }
                }
            }
        }
        for ((ev, pe), (c, g)) in ctx
            .evs
            .iter()
            .zip(&problem.evs)
            .zip(sol.charge_kw.iter().zip(&sol.discharge_kw))
        {
            // Expand the blocks back to base steps.
            let mut rate = Vec::with_capacity(horizon);
            for (k, (_, len)) in blocks.iter().enumerate().take(pe.end) {
                let r = c.get(k).copied().unwrap_or(0.0) - g.get(k).copied().unwrap_or(0.0);
                rate.extend(std::iter::repeat_n(r, *len));
            }
            evs.insert(
                ev.key,
                PlannedEv {
                    from_step: ctx.step,
                    rate_kw: rate,
                    departure_step: ev.departure_step,
                    remaining_kwh: ev.remaining_kwh,
                    energy_kwh: ev.energy_kwh,
                    efficiency: ev.efficiency.clamp(1e-6, 1.0),
                },
            );
        }
        Ok(Solved {
            evs,
            horizon,
            planned_peak_kw: planned
                .iter()
                .flatten()
                .copied()
                .fold(self.peak_basis_kw(ctx), f64::max),
            reserve_below_kw: problem.reserve.map_or(f64::INFINITY, |r| r.below_kw),
        })
    }

    /// Keep `solved` as the plan made at this step: its aggregate over the horizon (the
    /// present vehicles' planned power, summed in their order) and the V2G sales it plans.
    fn keep(&mut self, ctx: &StepContext<'_>, solved: Solved) {
        let mut aggregate = vec![0.0; solved.horizon];
        for p in ctx.evs.iter().filter_map(|e| solved.evs.get(&e.key)) {
            let skip = usize::try_from(ctx.step - p.from_step).unwrap_or(0);
            for (a, r) in aggregate.iter_mut().zip(p.rate_kw.iter().skip(skip)) {
                *a += r;
            }
        }
        let eta = ctx
            .evs
            .iter()
            .map(|e| e.efficiency)
            .fold(1.0, f64::min)
            .max(1e-6);
        let offers = aggregate
            .iter()
            .enumerate()
            .filter(|(_, p)| **p < -1e-3)
            .map(|(k, p)| SellOffer {
                step: ctx.step + k as i64,
                power_kw: -p,
                min_price_eur_per_mwh: self.params.wear_cost_eur_per_kwh * 1000.0 / eta,
            })
            .collect();
        self.plan = Some(CachedPlan {
            made_at: ctx.step,
            site_limit_kw: ctx.site_limit_kw,
            demand_charge_eur_per_kw: ctx.demand_charge_eur_per_kw,
            peak_basis_kw: self.peak_basis_kw(ctx),
            planned_peak_kw: solved.planned_peak_kw,
            reserve_below_kw: solved.reserve_below_kw,
            prices: (0..solved.horizon)
                .map(|k| self.effective_price(ctx, k))
                .collect(),
            evs: solved.evs,
            aggregate_kw: aggregate,
            offers,
        });
    }

    /// Track plugged-in vehicles for the peak learner; at a new day, learn the finished
    /// sessions' hindsight peak.
    fn learn(&mut self, ctx: &StepContext<'_>) -> Result<(), EvError> {
        if self.params.peak_memory_days == 0 {
            return Ok(());
        }
        let step_min = (ctx.step_hours * MINUTES_PER_HOUR).round().max(1.0) as i64;
        let day = (ctx.step * step_min).div_euclid(24 * 60);
        let present: BTreeSet<usize> = ctx.evs.iter().map(|e| e.key).collect();
        let gone: Vec<usize> = self
            .tracked
            .keys()
            .filter(|k| !present.contains(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(t) = self.tracked.remove(&k) {
                self.departed.push(PeakSession {
                    start_step: t.first_step,
                    end_step: t.last_step + 1,
                    energy_kwh: t.delivered_kwh,
                    max_charge_kw: t.max_charge_kw,
                    efficiency: t.efficiency,
                });
            }
        }
        let arrivals = self.arrivals.get_or_insert_with(|| {
            ArrivalProfile::new(self.params.peak_memory_days, step_min as u32)
        });
        if let Some(prev) = self.day
            && day > prev
        {
            arrivals.observe(&self.departed, prev);
        }
        if let Some(prev) = self.day
            && day > prev
            && !self.departed.is_empty()
        {
            // The learned peak prices nothing without a demand charge (`peak_basis_kw` and
            // `limit_binds` read it only with one), so its LP is not solved then: in the
            // built-in apartment's year at 15-minute steps it was 8 % of the CPU.
            if ctx.demand_charge_eur_per_kw > 0.0 {
                let peak = hindsight_peak_kw(&self.departed, ctx.step_hours, ctx.site_limit_kw)?;
                self.solves += 1;
                self.peak.observe_day(prev, peak);
            }
            self.departed.clear();
        }
        self.day = Some(day);
        for ev in ctx.evs {
            let t = self.tracked.entry(ev.key).or_insert(Tracked {
                first_step: ctx.step,
                last_step: ctx.step,
                delivered_kwh: 0.0,
                max_charge_kw: ev.max_charge_kw,
                efficiency: ev.efficiency,
            });
            t.last_step = ctx.step;
            t.max_charge_kw = t.max_charge_kw.max(ev.max_charge_kw);
        }
        Ok(())
    }

    /// The charge-early tie-break weight for these vehicles under `site_limit_kw`, EUR/kWh:
    /// the base weight plus the congestion weight scaled by how much more than the limit the
    /// vehicles could draw (up to twice the limit).
    fn quick_weight<'e>(&self, evs: impl Iterator<Item = &'e ActiveEv>, site_limit_kw: f64) -> f64 {
        let could_draw_kw: f64 = evs.map(|ev| ev.max_charge_kw.max(0.0)).sum();
        let congestion = if site_limit_kw.is_finite() && site_limit_kw > 0.0 {
            (could_draw_kw / site_limit_kw - 1.0).clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.params.quick_charge_eur_per_kwh
            + congestion * self.params.congestion_quick_charge_eur_per_kwh
    }

    /// The pseudo-sessions for the arrivals expected after this step (base steps from now;
    /// see [`MpcParams::forecast_arrivals_hours`]): one per local hour within the forecast
    /// window, carrying the expected number of vehicles of that hour (scaled by the part of
    /// the hour still to come) with their mean energy, power limit and stay; with scenarios
    /// ([`MpcParams::forecast_scenarios`]) one per hour and scenario, carrying the arrivals
    /// of that hour on the scenario's day.
    fn expected_arrivals(&self, ctx: &StepContext<'_>) -> Vec<PlanEv> {
        let Some(profile) = self.arrivals.as_ref().filter(|_| self.forecasting()) else {
            return Vec::new();
        };
        let step_min = (ctx.step_hours * MINUTES_PER_HOUR).round().max(1.0) as i64;
        let now_min = ctx.step * step_min;
        let first_min = now_min + step_min;
        let end_min = now_min + (self.params.forecast_arrivals_hours * MINUTES_PER_HOUR) as i64;
        let today = now_min.div_euclid(24 * 60);
        let scenarios = self.scenario_count(ctx);
        let mut out = Vec::new();
        let mut hour_min = first_min.div_euclid(60) * 60;
        let pool = if scenarios == 0 {
            self.pool_scale(ctx, profile, today)
        } else {
            1.0
        };
        let hedge = self.forecast_scale(ctx);
        while hour_min < end_min {
            let (from, to) = (hour_min.max(first_min), (hour_min + 60).min(end_min));
            let (day, hour) = (
                hour_min.div_euclid(24 * 60),
                hour_min.rem_euclid(24 * 60) / 60,
            );
            let start = ((from - now_min) / step_min) as usize;
            if to <= from {
                hour_min += 60;
                continue;
            }
            if scenarios == 0 {
                if let Some(e) = profile.expected(day, hour) {
                    let scale = hedge * if day == today { pool } else { 1.0 };
                    let n = scale * e.sessions_per_day * (to - from) as f64 / 60.0;
                    out.push(pseudo_session(&e, n, start, PSEUDO_VALUE_WEIGHT, None));
                }
            } else {
                let slot = (day, from, to, start);
                out.extend(self.scenario_arrivals(ctx, profile, slot, scenarios));
            }
            hour_min += 60;
        }
        out
    }

    /// The pseudo-sessions of one forecast hour with scenarios: for each scenario, the
    /// arrivals on its source day in the same minutes of the day. `slot` is the hour's local
    /// day, its minutes `[from, to)` still to come and the base step it starts at (from now).
    fn scenario_arrivals(
        &self,
        ctx: &StepContext<'_>,
        profile: &ArrivalProfile,
        slot: (i64, i64, i64, usize),
        scenarios: usize,
    ) -> Vec<PlanEv> {
        let (day, from, to, start) = slot;
        let base = day * 24 * 60;
        let step_min = (ctx.step_hours * MINUTES_PER_HOUR).round().max(1.0) as i64;
        let today = (ctx.step * step_min).div_euclid(24 * 60);
        let weight = PSEUDO_VALUE_WEIGHT / scenarios as f64;
        let mut out = Vec::new();
        for j in 0..scenarios {
            let Some(src) = profile.scenario_day(day, j) else {
                continue;
            };
            // Today's arrivals are known up to the end of this step.
            let after_min = (ctx.step + 1) * step_min - base;
            let scale = if day == today {
                self.scenario_pool_scale(ctx, profile, src, after_min)
            } else {
                1.0
            };
            if self.params.scenario_each_session {
                let now_min = ctx.step * step_min;
                out.extend(
                    profile
                        .sessions_on(src, from - base, to - base)
                        .map(|(m, s)| {
                            let e = ExpectedArrivals {
                                sessions_per_day: 1.0,
                                energy_kwh: s.energy_kwh,
                                stay_steps: (s.end_step - s.start_step) as f64,
                                max_charge_kw: s.max_charge_kw,
                                efficiency: s.efficiency,
                            };
                            let first = ((base + m - now_min) / step_min).max(0) as usize;
                            pseudo_session(&e, scale, first, weight, Some(j))
                        }),
                );
            } else if let Some(e) = profile.arrived_on(src, from - base, to - base) {
                let n = scale * e.sessions_per_day;
                out.push(pseudo_session(&e, n, start, weight, Some(j)));
            }
        }
        out
    }

    /// The number of scenarios to plan the expected arrivals as (0 = their mean): only with
    /// a demand charge (see [`MpcParams::forecast_scenarios`]).
    fn scenario_count(&self, ctx: &StepContext<'_>) -> usize {
        if ctx.demand_charge_eur_per_kw > 0.0 {
            self.params.forecast_scenarios.min(MAX_SCENARIOS)
        } else {
            0
        }
    }

    /// The share of the mean forecast planned for (see
    /// [`MpcParams::demand_charge_forecast_scale`]): 1 without a demand charge.
    fn forecast_scale(&self, ctx: &StepContext<'_>) -> f64 {
        if ctx.demand_charge_eur_per_kw > 0.0 {
            self.params.demand_charge_forecast_scale.clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    /// The weight of the scenario without further arrivals (see
    /// [`MpcParams::no_arrival_weight`]): 0 without a demand charge or a forecast.
    fn no_arrival_weight(&self, ctx: &StepContext<'_>) -> f64 {
        if ctx.demand_charge_eur_per_kw > 0.0 && self.forecasting() {
            self.params.no_arrival_weight.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The scenarios' weights of a plan with `scenarios` forecast scenarios (0 = the mean
    /// forecast): the scenario without arrivals first if it has a weight, then the forecast
    /// ones sharing the rest evenly; `None` for a single scenario.
    fn scenario_weights(&self, ctx: &StepContext<'_>, scenarios: usize) -> Option<Vec<f64>> {
        let none = self.no_arrival_weight(ctx);
        let forecast = scenarios.max(1);
        let mut weights = Vec::with_capacity(forecast + 1);
        if none > 0.0 {
            weights.push(none);
        }
        weights.extend(std::iter::repeat_n(
            (1.0 - none) / forecast as f64,
            forecast,
        ));
        (weights.len() > 1).then_some(weights)
    }

    /// Vehicles that arrived on local day `today` so far.
    fn arrivals_so_far(&self, ctx: &StepContext<'_>, today: i64) -> f64 {
        let step_min = (ctx.step_hours * MINUTES_PER_HOUR).round().max(1.0) as i64;
        self.tracked
            .values()
            .map(|t| t.first_step)
            .chain(self.departed.iter().map(|s| s.start_step))
            .filter(|&first| (first * step_min).div_euclid(24 * 60) == today)
            .count() as f64
    }

    /// The share of today's remaining expected arrivals to plan for (see
    /// [`MpcParams::forecast_arrival_pool`]): 1 when off, without a demand charge, or when no
    /// arrival is expected later today.
    fn pool_scale(&self, ctx: &StepContext<'_>, profile: &ArrivalProfile, today: i64) -> f64 {
        if !self.params.forecast_arrival_pool || ctx.demand_charge_eur_per_kw <= 0.0 {
            return 1.0;
        }
        let step_min = (ctx.step_hours * MINUTES_PER_HOUR).round().max(1.0) as i64;
        let now_min = ctx.step * step_min;
        let per_hour = |h: i64| {
            profile
                .expected(today, h)
                .map_or(0.0, |e| e.sessions_per_day)
        };
        let daily: f64 = (0..24).map(per_hour).sum();
        let hour = now_min.rem_euclid(24 * 60) / 60;
        // Arrivals up to the end of this step are known (the forecast starts after it).
        let part = ((now_min.rem_euclid(60) + step_min) as f64 / 60.0).min(1.0);
        let expected_by_now = (0..hour).map(per_hour).sum::<f64>() + part * per_hour(hour);
        pool_share(daily, expected_by_now, self.arrivals_so_far(ctx, today))
    }

    /// [`Self::pool_scale`] for a scenario: the scenario day `source`'s arrivals after local
    /// minute `from_min` of the day, against today's so far.
    fn scenario_pool_scale(
        &self,
        ctx: &StepContext<'_>,
        profile: &ArrivalProfile,
        source: i64,
        from_min: i64,
    ) -> f64 {
        if !self.params.forecast_arrival_pool {
            return 1.0;
        }
        let count = |to: i64| {
            profile
                .arrived_on(source, 0, to)
                .map_or(0.0, |e| e.sessions_per_day)
        };
        let step_min = (ctx.step_hours * MINUTES_PER_HOUR).round().max(1.0) as i64;
        let today = (ctx.step * step_min).div_euclid(24 * 60);
        pool_share(
            count(24 * 60),
            count(from_min),
            self.arrivals_so_far(ctx, today),
        )
    }

    /// The plan problem for a step context (public for benchmarks and tests), and for each
    /// plan step the base step it starts at and how many base steps it covers. A separable
    /// plan (no site limit, no demand charge) has no expected arrivals: they would change
    /// no vehicle's plan.
    pub fn problem(&self, ctx: &StepContext<'_>) -> (PlanProblem, Vec<(usize, usize)>) {
        let max_horizon = self.params.max_horizon_steps.max(1);
        let expected = if self.separable(ctx) {
            Vec::new()
        } else {
            self.expected_arrivals(ctx)
        };
        let no_arrival = self.no_arrival_weight(ctx) > 0.0;
        let horizon = ctx
            .evs
            .iter()
            .map(|ev| (ev.departure_step - ctx.step).max(1))
            .chain(expected.iter().map(|e| e.end as i64))
            .max()
            .unwrap_or(1)
            .clamp(1, max_horizon as i64) as usize;
        // Move blocking: fine steps first, then blocks.
        let step_min = (ctx.step_hours * 60.0).max(1e-9);
        let fine = (f64::from(self.params.fine_horizon_minutes) / step_min).round() as usize;
        let block = ((f64::from(self.params.block_minutes) / step_min).round() as usize).max(1);
        let mut blocks: Vec<(usize, usize)> = Vec::new();
        let mut b0 = 0usize;
        while b0 < horizon {
            let len = if self.params.replan_on_events
                || self.params.fine_horizon_minutes == 0
                || b0 < fine
            {
                1
            } else {
                block.min(horizon - b0)
            };
            blocks.push((b0, len));
            b0 += len;
        }
        // A vehicle takes part in the blocks it is present for entirely (its departure is in
        // base steps from now; the fine steps near departure keep this exact).
        let evs = ctx
            .evs
            .iter()
            .map(|ev| {
                let dep = ((ev.departure_step - ctx.step).max(1) as usize).min(horizon);
                // A vehicle without V2G that wants nothing more takes no variables: its
                // energy row (Σ η·Δt·c ≤ 0) fixes every `c` at zero anyway, and the built-in
                // apartment's cars spend most of their night plugged in and full.
                let end = if ev.max_discharge_kw <= 0.0 && ev.remaining_kwh <= 0.0 {
                    0
                } else {
                    blocks
                        .iter()
                        .take_while(|(b, l)| b + l <= dep)
                        .count()
                        .max(1)
                };
                PlanEv {
                    start: 0,
                    end,
                    need_kwh: ev.remaining_kwh.max(0.0),
                    max_charge_kw: ev.max_charge_kw,
                    max_discharge_kw: ev.max_discharge_kw,
                    energy_kwh: ev.energy_kwh,
                    min_energy_kwh: ev.min_energy_kwh,
                    max_energy_kwh: ev.max_energy_kwh,
                    efficiency: ev.efficiency,
                    value_weight: 1.0,
                    scenario: None,
                }
            })
            .chain(expected.into_iter().filter_map(|mut e| {
                // Base steps to plan steps: from the block it arrives in, through the last
                // block it is present for entirely.
                let start = blocks.iter().take_while(|(b, _)| *b < e.start).count();
                let end = blocks
                    .iter()
                    .take_while(|(b, l)| b + l <= e.end.min(horizon))
                    .count();
                (end > start).then(|| {
                    e.start = start;
                    e.end = end;
                    if no_arrival {
                        // Scenario 0 is the one without arrivals.
                        e.scenario = Some(e.scenario.map_or(1, |j| j + 1));
                    }
                    e
                })
            }))
            .collect();
        let scenarios = self.scenario_count(ctx);
        let adder = self.params.grid_peak_adder_eur_per_mwh;
        let price_weight = self.price_weight(ctx);
        let price = |k: usize| {
            price_weight * (ctx.price_ahead(k) + if ctx.peak_ahead(k) { adder } else { 0.0 })
        };
        let problem = PlanProblem {
            quick_charge_eur_per_kwh: self.quick_weight(ctx.evs.iter(), ctx.site_limit_kw),
            steps: blocks.len(),
            step_hours: ctx.step_hours,
            step_scale: blocks.iter().map(|(_, l)| *l as f64).collect(),
            evs,
            price_eur_per_mwh: blocks
                .iter()
                .map(|(b, l)| (*b..b + l).map(price).sum::<f64>() / *l as f64)
                .collect(),
            site_limit_kw: ctx.site_limit_kw,
            demand_charge_eur_per_kw: ctx.demand_charge_eur_per_kw,
            peak_group: vec![0; blocks.len()],
            prev_peak_kw: vec![self.peak_basis_kw(ctx)],
            reserve: self.reserve(ctx),
            scenarios: self
                .scenario_weights(ctx, scenarios)
                .map(|weights| Scenarios {
                    weights,
                    robustness: self.params.scenario_peak_robustness,
                }),
            tail: self.tail(ctx),
        };
        (problem, blocks)
    }
}

/// A pseudo-session for `n` expected arrivals like `e`, from plan step `start`.
fn pseudo_session(
    e: &ExpectedArrivals,
    n: f64,
    start: usize,
    value_weight: f64,
    scenario: Option<usize>,
) -> PlanEv {
    PlanEv {
        start,
        end: start + e.stay_steps.round().max(1.0) as usize,
        need_kwh: n * e.energy_kwh,
        max_charge_kw: n * e.max_charge_kw,
        max_discharge_kw: 0.0,
        energy_kwh: 0.0,
        min_energy_kwh: 0.0,
        max_energy_kwh: 0.0,
        efficiency: e.efficiency,
        value_weight,
        scenario,
    }
}

/// The share of a day's later arrivals still to expect when `arrived` came against
/// `by_now` expected by now out of `daily` (see [`MpcParams::forecast_arrival_pool`]): at
/// most 1, and 1 when none are expected later.
fn pool_share(daily: f64, by_now: f64, arrived: f64) -> f64 {
    let later = daily - by_now;
    if later <= 1e-9 {
        return 1.0;
    }
    ((daily - arrived) / later).clamp(0.0, 1.0)
}

/// Whether `ev` only stays past the departure its plan expected, wanting nothing more: no
/// news for the plan. The site announces a vehicle past its planned departure as leaving at
/// the next step, every step until it leaves (`site::ChargingSite::vehicles`), so its
/// departure differs from the plan's at each of those steps; a re-solve would plan it zero
/// (nothing wanted, and a V2G vehicle leaving at the next step keeps its energy) and change
/// nobody else's constraint. In the built-in apartment's year at 60-minute steps this was
/// the first reason of 2,470 of the 5,100 re-plans (docs/scaling.md, "The built-in year").
fn overstays_done(ev: &ActiveEv, planned: &PlannedEv, step: i64) -> bool {
    planned.departure_step <= step && ev.departure_step == step + 1 && ev.remaining_kwh <= 0.0
}

/// Room left under `cap_kw` (the site limit, and the peak the plan pays for with a demand
/// charge) goes to vehicles the kept plan leaves short: each gets, within its power limit,
/// what the plan's later steps will not give it (earliest departure first). Energy it would
/// otherwise lose, at no peak cost. Without `any_step` only a vehicle in its last step is
/// topped up (the solver's residue below 1 W per step, dropped by `clean`, or a deviation
/// under the re-plan tolerance). With it (the limit binds, `Mpc::limit_binds`) any vehicle
/// is: capacity below a limit that sets the period's peak is used now or lost, and a kept
/// plan's capacity for expected arrivals that did not come would stay unused until the next
/// re-plan while vehicles present that cannot get all they want could take it. Returns the
/// extra power given, per vehicle.
fn top_up_short(
    ctx: &StepContext<'_>,
    plan: &CachedPlan,
    rates: &mut [f64],
    cap_kw: f64,
    any_step: bool,
) -> Vec<f64> {
    let mut aggregate: f64 = rates.iter().sum();
    let mut extra_kw = vec![0.0; rates.len()];
    let mut order: Vec<usize> = (0..ctx.evs.len()).collect();
    order.sort_by_key(|&i| ctx.evs[i].departure_step);
    for i in order {
        let ev = &ctx.evs[i];
        let last = ev.departure_step == ctx.step + 1;
        if (!last && !any_step) || ev.remaining_kwh <= 0.0 || rates[i] < 0.0 {
            continue;
        }
        let eta = ev.efficiency.clamp(1e-6, 1.0);
        // What the plan still gives after this step (nothing in the last one).
        let later_kwh: f64 = plan.evs.get(&ev.key).map_or(0.0, |p| {
            (ctx.step + 1..ev.departure_step)
                .map(|k| p.rate_at(k).max(0.0) * eta * ctx.step_hours)
                .sum()
        });
        let want = ((ev.remaining_kwh - later_kwh) / (eta * ctx.step_hours))
            .min(ev.max_charge_kw.max(0.0));
        let extra = (want - rates[i]).min(cap_kw - aggregate);
        if extra > 0.0 {
            rates[i] += extra;
            extra_kw[i] = extra;
            aggregate += extra;
        }
    }
    extra_kw
}

/// Why the kept plan no longer describes the site.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    /// Only vehicles not in the plan arrived.
    Arrivals,
    /// In a separable plan (see `Mpc::separable`): only these vehicles (arrived, or no
    /// longer as planned) need a plan, or a planned vehicle left early (an empty list); the
    /// others' plans stay optimal.
    Alone(Vec<usize>),
    /// Anything else: the whole plan is re-solved.
    Other,
}

impl Policy for Mpc {
    fn name(&self) -> &'static str {
        "mpc"
    }

    fn schedule(&mut self, ctx: &StepContext<'_>) -> Result<Vec<f64>, EvError> {
        self.learn(ctx)?;
        if ctx.evs.is_empty() {
            self.offers.clear();
            return Ok(Vec::new());
        }
        match self.replan_reason(ctx) {
            None => {}
            Some(Reason::Arrivals) if self.insert_arrivals(ctx) => {}
            Some(Reason::Arrivals) if self.separable(ctx) => {
                let new: Vec<usize> = match &self.plan {
                    Some(plan) => ctx
                        .evs
                        .iter()
                        .map(|e| e.key)
                        .filter(|k| !plan.evs.contains_key(k))
                        .collect(),
                    None => Vec::new(),
                };
                self.replan_alone(ctx, &new)?;
            }
            Some(Reason::Alone(keys)) => self.replan_alone(ctx, &keys)?,
            Some(_) => self.replan(ctx)?,
        }
        let Some(plan) = &self.plan else {
            return Ok(vec![0.0; ctx.evs.len()]);
        };
        self.offers = plan
            .offers
            .iter()
            .filter(|o| o.step >= ctx.step)
            .cloned()
            .collect();
        let dt = ctx.step_hours;
        let mut rates: Vec<f64> = ctx
            .evs
            .iter()
            .map(|ev| plan.evs.get(&ev.key).map_or(0.0, |p| p.rate_at(ctx.step)))
            .collect();
        let cap = if ctx.demand_charge_eur_per_kw > 0.0 {
            ctx.site_limit_kw
                .min(self.peak_basis_kw(ctx).max(plan.planned_peak_kw))
        } else {
            ctx.site_limit_kw
        };
        let any_step = self.limit_binds(ctx);
        let extra_kw = top_up_short(ctx, plan, &mut rates, cap, any_step);
        if any_step {
            self.keep_top_ups(ctx, &extra_kw);
        }
        for (ev, r) in ctx.evs.iter().zip(&rates) {
            if let Some(t) = self.tracked.get_mut(&ev.key) {
                // What the vehicle takes: the plan, capped by what it still wants.
                let want = ev.remaining_kwh.max(0.0);
                t.delivered_kwh += (r.max(0.0) * ev.efficiency * dt).min(want);
            }
        }
        Ok(rates)
    }

    fn sell_offers(&self) -> &[SellOffer] {
        &self.offers
    }

    fn solves(&self) -> Option<usize> {
        Some(self.solves)
    }

    fn learn_history(&mut self, history: &[Session], step_minutes: u32) -> Result<(), EvError> {
        Mpc::learn_history(self, history, step_minutes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn active(key: usize, departure_step: i64, remaining_kwh: f64) -> ActiveEv {
        ActiveEv {
            key,
            arrival_step: 0,
            departure_step,
            remaining_kwh,
            max_charge_kw: 6.0,
            max_discharge_kw: 0.0,
            energy_kwh: 0.0,
            min_energy_kwh: 0.0,
            max_energy_kwh: remaining_kwh,
            efficiency: 1.0,
        }
    }

    /// A kept plan made at step 0 with these vehicles' rates (kW per hourly step).
    fn kept(rates: &[(usize, i64, Vec<f64>)]) -> CachedPlan {
        let mut aggregate_kw = vec![0.0; 4];
        let evs = rates
            .iter()
            .map(|(key, departure_step, rate_kw)| {
                for (a, r) in aggregate_kw.iter_mut().zip(rate_kw) {
                    *a += r;
                }
                let planned = PlannedEv {
                    from_step: 0,
                    rate_kw: rate_kw.clone(),
                    departure_step: *departure_step,
                    remaining_kwh: rate_kw.iter().sum(),
                    energy_kwh: 0.0,
                    efficiency: 1.0,
                };
                (*key, planned)
            })
            .collect();
        CachedPlan {
            made_at: 0,
            site_limit_kw: 10.0,
            demand_charge_eur_per_kw: 15.0,
            peak_basis_kw: 10.0,
            planned_peak_kw: 10.0,
            reserve_below_kw: f64::INFINITY,
            prices: vec![100.0; 4],
            evs,
            aggregate_kw,
            offers: Vec::new(),
        }
    }

    /// Room under the cap goes to the vehicles the plan leaves short, earliest departure
    /// first and never beyond what they want: with `any_step` at any step, without it only in
    /// a vehicle's last step.
    #[test]
    fn top_ups_fill_room_for_vehicles_the_plan_leaves_short() {
        // Vehicle 0 (leaves after step 2) wants 10 kWh, the plan gives it 2 + 2; vehicle 1
        // (leaves after step 3) wants 20, the plan gives it 4 + 4 + 4; vehicle 2 is served
        // in full by its plan (3 kWh now). Under a 10 kW cap, 1 kW is left at step 0.
        let plan = kept(&[
            (0, 2, vec![2.0, 2.0]),
            (1, 3, vec![4.0, 4.0, 4.0]),
            (2, 3, vec![3.0, 0.0, 0.0]),
        ]);
        let evs = [active(0, 2, 10.0), active(1, 3, 20.0), active(2, 3, 3.0)];
        let prices = [100.0; 4];
        let ctx = StepContext {
            step: 0,
            step_hours: 1.0,
            evs: &evs,
            site_limit_kw: 10.0,
            price_eur_per_mwh: &prices,
            grid_peak: &[],
            demand_charge_eur_per_kw: 15.0,
            peak_so_far_kw: 10.0,
        };
        let mut rates = vec![2.0, 4.0, 3.0];
        let extra = top_up_short(&ctx, &plan, &mut rates, 10.0, true);
        assert_eq!(extra, vec![1.0, 0.0, 0.0], "earliest departure first");
        assert_eq!(rates, vec![3.0, 4.0, 3.0]);
        // More room: vehicle 0 up to its power limit (6 kW), then vehicle 1 up to 6 kW.
        let mut rates = vec![2.0, 4.0, 3.0];
        let extra = top_up_short(&ctx, &plan, &mut rates, 20.0, true);
        assert_eq!(extra, vec![4.0, 2.0, 0.0]);
        // A vehicle short by less than its headroom gets what completes it only: vehicle 0
        // wanting 5 kWh with 2 planned later needs 3 kW now.
        let evs_small = [active(0, 2, 5.0), active(1, 3, 12.0), active(2, 3, 3.0)];
        let ctx_small = StepContext {
            evs: &evs_small,
            ..ctx
        };
        let mut rates = vec![2.0, 4.0, 3.0];
        let extra = top_up_short(&ctx_small, &plan, &mut rates, 20.0, true);
        assert_eq!(extra, vec![1.0, 0.0, 0.0], "vehicle 1's plan serves it");
        // Without `any_step` nothing changes before a vehicle's last step.
        let mut rates = vec![2.0, 4.0, 3.0];
        let extra = top_up_short(&ctx, &plan, &mut rates, 20.0, false);
        assert_eq!(extra, vec![0.0; 3]);
        // In its last step (step 1 for vehicle 0) a short vehicle is topped up either way.
        let late = [active(0, 2, 5.0)];
        let ctx_late = StepContext {
            step: 1,
            evs: &late,
            ..ctx
        };
        let mut rates = vec![2.0];
        let extra = top_up_short(&ctx_late, &plan, &mut rates, 20.0, false);
        assert_eq!(extra, vec![3.0]);
    }

    /// A small deterministic generator (xorshift64*), so the instances are fixed.
    struct Draw(u64);
    impl Draw {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A random plan like the built-in apartment's: a day of hourly steps, 4-12 vehicles, a
    /// quarter of them V2G, a site limit and a demand charge on one billing period.
    fn instance(d: &mut Draw) -> PlanProblem {
        let steps = 24;
        let n = 4 + (d.unit() * 9.0) as usize;
        let evs = (0..n)
            .map(|_| {
                let start = (d.unit() * 12.0) as usize;
                let end = (start + 2 + (d.unit() * 12.0) as usize).min(steps);
                let v2g = d.unit() < 0.25;
                PlanEv {
                    start,
                    end,
                    need_kwh: 2.0 + d.unit() * 30.0,
                    max_charge_kw: 7.4,
                    max_discharge_kw: if v2g { 7.4 } else { 0.0 },
                    energy_kwh: 20.0,
                    min_energy_kwh: 10.0,
                    max_energy_kwh: 40.0 + d.unit() * 20.0,
                    efficiency: 0.92,
                    value_weight: 1.0,
                    scenario: None,
                }
            })
            .collect();
        PlanProblem {
            steps,
            step_hours: 1.0,
            step_scale: Vec::new(),
            evs,
            price_eur_per_mwh: (0..steps).map(|_| 60.0 + d.unit() * 200.0).collect(),
            site_limit_kw: 30.0,
            demand_charge_eur_per_kw: 10.0,
            quick_charge_eur_per_kwh: 0.001,
            peak_group: vec![0; steps],
            prev_peak_kw: vec![5.0 + d.unit() * 10.0],
            reserve: None,
            scenarios: None,
            tail: None,
        }
    }

    /// Energy bought minus sold (EUR) and the energy each vehicle receives (kWh) of a plan.
    fn figures(p: &PlanProblem, s: &PlanSolution) -> (f64, Vec<f64>) {
        let mut cost_eur = 0.0;
        let mut net_kwh = Vec::new();
        for ((ev, c), g) in p.evs.iter().zip(&s.charge_kw).zip(&s.discharge_kw) {
            let mut e = 0.0;
            for (k, ck) in c.iter().enumerate() {
                let gk = g.get(k).copied().unwrap_or(0.0);
                cost_eur += p.price_eur_per_mwh[ev.start + k] / 1000.0 * (ck - gk) * p.step_hours;
                e += (ck * ev.efficiency - gk / ev.efficiency) * p.step_hours;
            }
            net_kwh.push(e);
        }
        (cost_eur, net_kwh)
    }

    /// The plans of `solve_plan` (the dense method of `qp` here; before it, clarabel without
    /// iterative refinement) are clarabel's refined plans within the solvers' tolerance: the energy delivered and its cost within 0.01 % (one of these instances
    /// differs by 1 Wh in 181 kWh: the 1e-8 gap tolerance is relative to an objective
    /// dominated by the value of energy).
    #[test]
    fn unrefined_plans_match_refined_plans() {
        let mut d = Draw(0x5eed_f00d);
        let refined = DefaultSettings {
            verbose: false,
            max_iter: 200,
            ..DefaultSettings::default()
        };
        assert!(refined.iterative_refinement_enable);
        assert!(!solver_settings().iterative_refinement_enable);
        let params = MpcParams::default();
        for case in 0..40 {
            let p = instance(&mut d);
            let a = solve_plan_with(&p, &params, SolverChoice::Clarabel(refined.clone())).unwrap();
            let b = solve_plan(&p, &params).unwrap();
            let (cost_a, energy_a) = figures(&p, &a);
            let (cost_b, energy_b) = figures(&p, &b);
            // Vehicles may trade energy at equal cost (only the 1e-9 regularisation, below
            // the gap tolerance, tells such plans apart): the total is what must agree.
            let (ea, eb) = (energy_a.iter().sum::<f64>(), energy_b.iter().sum::<f64>());
            assert!(
                (ea - eb).abs() / ea.abs().max(1.0) < 1e-4,
                "case {case}: {ea} vs {eb} kWh"
            );
            let scale = cost_a.abs().max(1.0);
            assert!(
                (cost_a - cost_b).abs() / scale < 1e-4,
                "case {case}: {cost_a} vs {cost_b} EUR"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod dense_tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random plan covering the builder's terms: V2G vehicles, expected arrivals in
    /// scenarios, a tail, a reserve band, a demand charge over one or two billing periods, a
    /// binding or absent site limit, move blocking and vehicles with empty windows.
    fn varied(rng: &mut ChaCha8Rng) -> PlanProblem {
        // One in five is of a 15-minute day's size (the sparse system of `qp`).
        let large = rng.random_bool(0.2);
        let steps = if large {
            rng.random_range(48..97usize)
        } else {
            rng.random_range(1..30usize)
        };
        let scenarios = if rng.random_bool(0.3) {
            rng.random_range(2..4usize)
        } else {
            1
        };
        let n = if large {
            rng.random_range(5..16usize)
        } else {
            rng.random_range(0..10usize)
        };
        let evs = (0..n)
            .map(|_| {
                let start = rng.random_range(0..steps);
                // Empty windows (end == start) happen too.
                let end = rng.random_range(start..=steps);
                let v2g = rng.random_bool(0.3);
                let expected = !v2g && scenarios > 1 && rng.random_bool(0.4);
                let max_energy_kwh = rng.random_range(30.0..60.0);
                PlanEv {
                    start,
                    end,
                    need_kwh: rng.random_range(0.0..40.0),
                    max_charge_kw: rng.random_range(1.0..11.0),
                    max_discharge_kw: if v2g {
                        rng.random_range(1.0..11.0)
                    } else {
                        0.0
                    },
                    energy_kwh: rng.random_range(5.0..max_energy_kwh),
                    min_energy_kwh: rng.random_range(5.0..20.0),
                    max_energy_kwh,
                    efficiency: rng.random_range(0.85..0.98),
                    value_weight: if expected { PSEUDO_VALUE_WEIGHT } else { 1.0 },
                    scenario: expected.then(|| rng.random_range(0..scenarios)),
                }
            })
            .collect();
        let groups = rng.random_range(1..3usize);
        let blocked = rng.random_bool(0.3);
        PlanProblem {
            steps,
            step_hours: if rng.random_bool(0.5) { 1.0 } else { 0.25 },
            step_scale: if blocked {
                (0..steps).map(|k| if k < 4 { 1.0 } else { 4.0 }).collect()
            } else {
                Vec::new()
            },
            evs,
            price_eur_per_mwh: (0..steps).map(|_| rng.random_range(-20.0..300.0)).collect(),
            site_limit_kw: match rng.random_range(0..3) {
                0 => f64::INFINITY,
                1 => rng.random_range(3.0..12.0),
                _ => rng.random_range(12.0..60.0),
            },
            demand_charge_eur_per_kw: if rng.random_bool(0.7) {
                rng.random_range(1.0..20.0)
            } else {
                0.0
            },
            quick_charge_eur_per_kwh: rng.random_range(0.0..0.1),
            peak_group: (0..steps).map(|k| (k * groups) / steps).collect(),
            prev_peak_kw: (0..groups).map(|_| rng.random_range(0.0..20.0)).collect(),
            reserve: rng.random_bool(0.3).then(|| Reserve {
                below_kw: rng.random_range(0.0..20.0),
                eur_per_kwh: 0.18,
            }),
            scenarios: (scenarios > 1).then(|| Scenarios {
                weights: vec![1.0 / scenarios as f64; scenarios],
                robustness: if rng.random_bool(0.3) { 0.5 } else { 0.0 },
            }),
            tail: rng.random_bool(0.4).then_some(Tail {
                base_steps: rng.random_range(1..4),
                eur_per_kwh: 0.18,
            }),
        }
    }

    fn objective(b: &BuiltPlan, x: &[f64]) -> f64 {
        x.iter()
            .zip(&b.p_diag)
            .zip(&b.q)
            .map(|((x, p), q)| 0.5 * p * x * x + q * x)
            .sum()
    }

    /// Largest violation of the rows: |a·x − b| for equalities, max(0, a·x − b) otherwise.
    fn violation(b: &BuiltPlan, x: &[f64]) -> f64 {
        let lhs = |rows: &RowTriplets| {
            let mut v = vec![0.0; rows.rhs.len()];
            for ((&r, &j), &a) in rows.row.iter().zip(&rows.col).zip(&rows.val) {
                v[r] += a * x[j];
            }
            v
        };
        let eq = lhs(&b.zero)
            .iter()
            .zip(&b.zero.rhs)
            .map(|(l, r)| (l - r).abs())
            .fold(0.0, f64::max);
        let ineq = lhs(&b.nonneg)
            .iter()
            .zip(&b.nonneg.rhs)
            .map(|(l, r)| (l - r).max(0.0))
            .fold(0.0, f64::max);
        eq.max(ineq)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The dense method answers every plan in its class (all but scenarios weighted by
        /// their worst peak, whose worst-peak variable has no bound) with clarabel's
        /// objective within 1e-6 relative and every row satisfied within 1e-6.
        #[test]
        fn dense_matches_clarabel(seed in any::<u64>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let problem = varied(&mut rng);
            let params = MpcParams::default();
            let built = build_plan(&problem, &params);
            prop_assume!(!built.q.is_empty());
            let (xc, _, _) = solve_built(&built, SolverChoice::Clarabel(solver_settings())).unwrap();
            let (xd, _, solver) =
                solve_built(&built, SolverChoice::DenseFirst(solver_settings())).unwrap();
            let worst = problem
                .scenarios
                .as_ref()
                .is_some_and(|s| s.robustness > 0.0 && problem.demand_charge_eur_per_kw > 0.0);
            if !worst {
                prop_assert_eq!(solver, PlanSolver::Dense);
            }
            let (fd, fc) = (objective(&built, &xd), objective(&built, &xc));
            prop_assert!(
                (fd - fc).abs() <= 1e-6 * fc.abs().max(1.0),
                "objective {} (dense) vs {} (clarabel)", fd, fc
            );
            prop_assert!(violation(&built, &xd) <= 1e-6, "violation {}", violation(&built, &xd));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod separable_tests {
    use super::*;
    use crate::model::EvSpec;
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn vehicle(rng: &mut ChaCha8Rng, key: usize, step: i64) -> ActiveEv {
        let v2g = rng.random_bool(0.3);
        let max_energy_kwh = rng.random_range(30.0..60.0);
        ActiveEv {
            key,
            arrival_step: step,
            departure_step: step + rng.random_range(1..24i64),
            remaining_kwh: if rng.random_bool(0.1) {
                0.0
            } else {
                rng.random_range(0.0..30.0)
            },
            max_charge_kw: rng.random_range(1.0..11.0),
            max_discharge_kw: if v2g {
                rng.random_range(1.0..11.0)
            } else {
                0.0
            },
            energy_kwh: rng.random_range(20.0..max_energy_kwh),
            min_energy_kwh: rng.random_range(5.0..20.0),
            max_energy_kwh,
            efficiency: rng.random_range(0.85..0.98),
        }
    }

    /// Sessions of past days, so that the controller plans expected arrivals where a
    /// plan is not separable.
    fn history(step_minutes: i64) -> Vec<Session> {
        (0..7)
            .map(|d| Session {
                id: format!("h{d}"),
                driver_id: None,
                station_id: "s".into(),
                arrival_min: -(7 - d) * 24 * 60 + 2 * step_minutes,
                departure_min: -(7 - d) * 24 * 60 + 10 * step_minutes,
                energy_kwh: 10.0,
                stated_departure_min: None,
                stated_energy_kwh: None,
                ev: EvSpec {
                    battery_kwh: 60.0,
                    max_charge_kw: 7.4,
                    max_discharge_kw: 0.0,
                    efficiency: 0.95,
                    v2g: false,
                    taper_soc: 1.0,
                },
                initial_energy_kwh: 20.0,
            })
            .collect()
    }

    /// A vehicle's planned cost (price-weighted kWh) and net energy from `step` on.
    fn figures(plan: &PlannedEv, step: i64, prices: &[f64], dt: f64) -> (f64, f64) {
        let (mut cost, mut energy) = (0.0, 0.0);
        for k in step..plan.from_step + plan.rate_kw.len() as i64 {
            let r = plan.rate_at(k);
            cost += prices.get(k as usize).copied().unwrap_or(0.0) * r * dt / 1000.0;
            energy += r * dt;
        }
        (cost, energy)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Without a site limit or a demand charge (a separable plan), news of some vehicles
        /// (a deviation from the plan, an arrival, with expected arrivals learned) re-plans
        /// them alone: every other vehicle keeps its plan bit for bit, and the re-planned
        /// ones get what a whole-fleet solve gives them, to the solvers' accuracy (planned
        /// cost within 2e-3 EUR, energy within 0.02 kWh: the termination test's 1e-8 gap is
        /// relative to an objective of about 1,000 EUR per kWh delivered, and a V2G plan
        /// with a 1e-9 regularisation is near degenerate).
        #[test]
        fn separable_plans_replan_only_the_vehicles_with_news(seed in any::<u64>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let step_minutes: i64 = if rng.random_bool(0.5) { 60 } else { 15 };
            let dt = step_minutes as f64 / 60.0;
            let prices: Vec<f64> = (0..64).map(|_| rng.random_range(-20.0..300.0)).collect();
            let n = rng.random_range(1..7usize);
            let evs0: Vec<ActiveEv> = (0..n).map(|k| vehicle(&mut rng, k, 0)).collect();
            let params = MpcParams::default();
            let mut mpc = Mpc::new(params.clone());
            mpc.learn_history(&history(step_minutes), step_minutes as u32).unwrap();
            let ctx0 = StepContext {
                step: 0,
                step_hours: dt,
                evs: &evs0,
                site_limit_kw: f64::INFINITY,
                price_eur_per_mwh: &prices,
                grid_peak: &[],
                demand_charge_eur_per_kw: 0.0,
                peak_so_far_kw: 0.0,
            };
            prop_assert!(mpc.separable(&ctx0) && mpc.forecasting());
            mpc.schedule(&ctx0).unwrap();
            let before = mpc.plan.clone().unwrap();
            // Step 1: the vehicles still there are as planned, some with a deviation; one
            // may arrive.
            let mut evs1 = Vec::new();
            // Vehicles with news (re-planned) and vehicles exactly as planned (kept).
            let (mut news, mut same) = (BTreeSet::new(), BTreeSet::new());
            for ev in evs0.iter().filter(|e| e.departure_step > 1) {
                let p = &before.evs[&ev.key];
                let (rem, energy) = p.expected_at(1, dt);
                let mut now = ActiveEv { remaining_kwh: rem, energy_kwh: energy, ..ev.clone() };
                if rng.random_bool(0.4) {
                    now.remaining_kwh = (rem + rng.random_range(-2.0..2.0)).max(0.0);
                    now.energy_kwh = energy + rem - now.remaining_kwh;
                }
                let off = (now.remaining_kwh - rem).abs();
                if off > 2.0 * params.replan_tolerance_kwh {
                    news.insert(ev.key);
                } else if off == 0.0 {
                    same.insert(ev.key);
                }
                evs1.push(now);
            }
            if rng.random_bool(0.5) {
                evs1.push(vehicle(&mut rng, n, 1));
                news.insert(n);
            }
            prop_assume!(!evs1.is_empty());
            let ctx1 = StepContext {
                step: 1,
                evs: &evs1,
                price_eur_per_mwh: &prices[1..],
                ..ctx0.clone()
            };
            let solves = mpc.solves();
            mpc.schedule(&ctx1).unwrap();
            prop_assert!(mpc.solves() <= solves + 1, "at most one solve, for the news alone");
            let after = mpc.plan.clone().unwrap();
            let mut fresh = Mpc::new(params);
            fresh.schedule(&ctx1).unwrap();
            let whole = fresh.plan.unwrap();
            for ev in &evs1 {
                let p = &after.evs[&ev.key];
                if p.from_step == 1 {
                    prop_assert!(
                        !same.contains(&ev.key),
                        "vehicle {} as planned re-planned", ev.key
                    );
                    let (c, e) = figures(p, 1, &prices, dt);
                    let (cw, ew) = figures(&whole.evs[&ev.key], 1, &prices, dt);
                    prop_assert!((c - cw).abs() <= 2e-3, "cost {} vs {}", c, cw);
                    prop_assert!((e - ew).abs() <= 2e-2, "energy {} vs {}", e, ew);
                } else {
                    prop_assert!(!news.contains(&ev.key), "vehicle {} with news kept", ev.key);
                    let q = &before.evs[&ev.key];
                    prop_assert_eq!(p.from_step, q.from_step);
                    prop_assert_eq!(&p.rate_kw, &q.rate_kw);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod news_tests {
    use super::*;

    fn ctx<'a>(step: i64, evs: &'a [ActiveEv], prices: &'a [f64], limit: f64) -> StepContext<'a> {
        StepContext {
            step,
            step_hours: 1.0,
            evs,
            site_limit_kw: limit,
            price_eur_per_mwh: &prices[step as usize..],
            grid_peak: &[],
            demand_charge_eur_per_kw: 0.0,
            peak_so_far_kw: 0.0,
        }
    }

    /// A V2G vehicle giving energy back as planned is no news, though the energy it still
    /// wants (counted by the site from its battery) grows; its battery energy off the plan is.
    #[test]
    fn a_v2g_vehicle_discharging_as_planned_keeps_its_plan() {
        // Dear now, cheap later: it sells first, then charges.
        let prices = [400.0, 400.0, 20.0, 20.0, 20.0, 20.0];
        let ev = ActiveEv {
            key: 0,
            arrival_step: 0,
            departure_step: 6,
            remaining_kwh: 5.0,
            max_charge_kw: 7.0,
            max_discharge_kw: 7.0,
            energy_kwh: 30.0,
            min_energy_kwh: 10.0,
            max_energy_kwh: 35.0,
            efficiency: 0.9,
        };
        let mut mpc = Mpc::new(MpcParams::default());
        let evs = [ev.clone()];
        let r = mpc.schedule(&ctx(0, &evs, &prices, f64::INFINITY)).unwrap();
        assert!(r[0] < -1.0, "sells first: {r:?}");
        let (_, energy) = mpc.plan.as_ref().unwrap().evs[&0].expected_at(1, 1.0);
        let drawn = ev.energy_kwh - energy;
        let now = [ActiveEv {
            energy_kwh: energy,
            remaining_kwh: ev.remaining_kwh + drawn,
            ..ev.clone()
        }];
        assert!(!mpc.needs_replan(&ctx(1, &now, &prices, f64::INFINITY)));
        let off = [ActiveEv {
            energy_kwh: energy + 1.0,
            ..now[0].clone()
        }];
        assert!(mpc.needs_replan(&ctx(1, &off, &prices, f64::INFINITY)));
    }

    /// Past the kept plan's horizon, a vehicle that only overstays wanting nothing is no
    /// news in a separable plan; under a site limit the plan is re-solved as before.
    #[test]
    fn past_the_horizon_a_separable_plan_is_kept() {
        let prices = [100.0; 8];
        let ev = ActiveEv {
            key: 0,
            arrival_step: 0,
            departure_step: 2,
            remaining_kwh: 2.0,
            max_charge_kw: 6.0,
            max_discharge_kw: 0.0,
            energy_kwh: 0.0,
            min_energy_kwh: 0.0,
            max_energy_kwh: 2.0,
            efficiency: 1.0,
        };
        for (limit, replans) in [(f64::INFINITY, false), (100.0, true)] {
            let mut mpc = Mpc::new(MpcParams::default());
            mpc.schedule(&ctx(0, std::slice::from_ref(&ev), &prices, limit))
                .unwrap();
            let late = [ActiveEv {
                departure_step: 3,
                remaining_kwh: 0.0,
                ..ev.clone()
            }];
            assert_eq!(mpc.needs_replan(&ctx(2, &late, &prices, limit)), replans);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod learn_tests {
    use super::*;

    /// The hindsight peak of a finished day is learned (one LP) only with a demand charge:
    /// without one the learned peak prices nothing.
    #[test]
    fn the_daily_peak_is_learned_only_with_a_demand_charge() {
        for dc in [0.0, 10.0] {
            let mut mpc = Mpc::new(MpcParams::default());
            let prices = vec![100.0; 48];
            let ev = ActiveEv {
                key: 0,
                arrival_step: 20,
                departure_step: 23,
                remaining_kwh: 6.0,
                max_charge_kw: 6.0,
                max_discharge_kw: 0.0,
                energy_kwh: 0.0,
                min_energy_kwh: 0.0,
                max_energy_kwh: 6.0,
                efficiency: 1.0,
            };
            let mut solves = 0;
            for step in 20..26 {
                let evs = if step < 23 {
                    vec![ev.clone()]
                } else {
                    Vec::new()
                };
                let ctx = StepContext {
                    step,
                    step_hours: 1.0,
                    evs: &evs,
                    site_limit_kw: f64::INFINITY,
                    price_eur_per_mwh: &prices[step as usize..],
                    grid_peak: &[],
                    demand_charge_eur_per_kw: dc,
                    peak_so_far_kw: 0.0,
                };
                let before = mpc.solves();
                mpc.schedule(&ctx).unwrap();
                if step == 24 {
                    // Day 1 begins: day 0's sessions are learned.
                    solves = mpc.solves() - before;
                }
            }
            if dc > 0.0 {
                assert_eq!(solves, 1);
                assert!(mpc.peak_target_kw() > 1.0, "{}", mpc.peak_target_kw());
            } else {
                assert_eq!(solves, 0);
                assert_eq!(mpc.peak_target_kw(), 0.0);
            }
        }
    }
}
