//! Replay of charging sessions under a policy, with the ACN-Sim metrics.
//!
//! The evaluator owns the truth (actual departure and energy taken); the policy sees only the
//! planned values chosen by [`Knowledge`]. Vehicles plug in, charge and leave through the one
//! [`crate::site::ChargingSite`] state machine the community fleet uses too: arrival and
//! departure floored to the step grid, as ACN-Sim does. No I/O; time for the solve-time metric
//! comes from a caller-supplied [`Stopwatch`].

use crate::error::EvError;
use crate::habits::{HabitLearner, HabitParams, planned_departure_min};
use crate::model::{MINUTES_PER_HOUR, Session};
use crate::mpc::{MpcParams, PlanEv, PlanProblem, solve_plan};
use crate::policy::{Policy, StepContext, policy_by_name};
use crate::site::{Arrival, ChargingSite, PluggedEv, SessionPlan, floor_step, v2g_floor_kwh};
use crate::tariff::{Tariff, month_of_min};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BinaryHeap};

/// What the policy is told about departure and energy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knowledge {
    /// The true departure and energy (ACN-Sim's "ideal" experiments).
    Actual,
    /// What the driver stated (learned values when nothing was stated).
    Stated,
    /// Learned habits blended with statements (low quantile of stay, capped high energy).
    Learned,
}

impl Knowledge {
    /// Parse `actual`, `stated` or `learned`.
    pub fn parse(s: &str) -> Result<Self, EvError> {
        match s {
            "actual" => Ok(Self::Actual),
            "stated" => Ok(Self::Stated),
            "learned" => Ok(Self::Learned),
            _ => Err(EvError::Config {
                field: "--knowledge".into(),
                message: format!("expected actual, stated or learned, found `{s}`"),
            }),
        }
    }
}

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateParams {
    /// Step length in minutes.
    pub step_minutes: u32,
    /// Site (transformer) limit on aggregate power, kW; `None` = unconstrained.
    pub site_limit_kw: Option<f64>,
    /// Energy price and demand charge.
    pub tariff: Tariff,
    /// Optimiser weights (MPC and offline optimum).
    pub mpc: MpcParams,
    /// What policies are told.
    pub knowledge: Knowledge,
    /// Habit learner settings (for `Knowledge::Learned`/`Stated`).
    pub habits: HabitParams,
    /// Sessions before the replayed period that the policy may learn from
    /// ([`Policy::learn_history`]: the MPC's peak target and arrival profile); not replayed,
    /// not scored.
    pub history: Vec<Session>,
}

impl Default for EvaluateParams {
    fn default() -> Self {
        Self {
            step_minutes: 5,
            site_limit_kw: None,
            tariff: Tariff::sce_tou_ev_4(),
            mpc: MpcParams::default(),
            knowledge: Knowledge::Actual,
            habits: HabitParams::default(),
            history: Vec::new(),
        }
    }
}

/// A source of elapsed time in milliseconds, supplied by the caller (core crates read no
/// clock).
pub trait Stopwatch {
    /// Milliseconds since some fixed origin.
    fn now_ms(&mut self) -> f64;
}

/// A stopwatch that always reads zero (tests, deterministic runs).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoClock;

impl Stopwatch for NoClock {
    fn now_ms(&mut self) -> f64 {
        0.0
    }
}

/// The metrics of one evaluation (the JSON of `scg ev evaluate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluateReport {
    /// Policy name.
    pub policy: String,
    /// Number of sessions.
    pub sessions: usize,
    /// Energy the vehicles would take given time (ACN: delivered energy of the real session).
    pub energy_requested_kwh: f64,
    /// Energy delivered into batteries, net of V2G.
    pub energy_delivered_kwh: f64,
    /// `energy_delivered / energy_requested`, %.
    pub energy_delivered_pct: f64,
    /// Sessions that got their energy within 0.1 kWh, %.
    pub demands_met_pct: f64,
    /// Highest aggregate power, kW.
    pub peak_kw: f64,
    /// Energy bought minus energy sold at the tariff, EUR.
    pub energy_cost_eur: f64,
    /// Demand charge on each calendar month's peak, EUR.
    pub demand_charge_eur: f64,
    /// `energy_cost_eur + demand_charge_eur + degradation_cost_eur`.
    pub total_cost_eur: f64,
    /// Energy given back to the grid (V2G), kWh.
    pub v2g_energy_kwh: f64,
    /// Battery wear of V2G at the configured cost per kWh discharged, EUR.
    pub degradation_cost_eur: f64,
    /// Median time of one policy decision (MPC: one re-plan) over steps with vehicles, ms.
    pub solve_time_ms_median: f64,
    /// Longest policy decision, ms.
    pub solve_time_ms_max: f64,
    /// Optimisation problems the policy solved (MPC; absent for policies that solve none).
    pub solves: Option<usize>,
    /// Steps in which the aggregate power exceeded the site limit.
    pub site_limit_violation_steps: usize,
    /// V2G sell offers the policy exposed (sum over steps).
    pub sell_offers: usize,
    /// Step length, minutes.
    pub step_minutes: u32,
    /// Number of simulated steps.
    pub steps: usize,
    /// The site limit used, kW (absent = unconstrained).
    pub site_limit_kw: Option<f64>,
    /// What the policy was told.
    pub knowledge: Knowledge,
}

/// Replay `sessions` under the policy `name` (any of [`crate::policy::POLICY_NAMES`]).
pub fn evaluate(
    sessions: &[Session],
    name: &str,
    params: &EvaluateParams,
    clock: &mut dyn Stopwatch,
) -> Result<EvaluateReport, EvError> {
    if params.step_minutes == 0 || 24 * 60 % params.step_minutes != 0 {
        return Err(EvError::Config {
            field: "--step-minutes".into(),
            message: format!("must divide a day, found {}", params.step_minutes),
        });
    }
    if let Some(l) = params.site_limit_kw
        && !(l > 0.0 && l.is_finite())
    {
        return Err(EvError::Config {
            field: "--site-limit-kw".into(),
            message: format!("must be a positive number, found {l}"),
        });
    }
    let dt_min = i64::from(params.step_minutes);
    let dt_h = dt_min as f64 / MINUTES_PER_HOUR;
    let mut site = ChargingSite::new(params.step_minutes, usize::MAX);
    let k0 = sessions
        .iter()
        .map(|s| site.steps_of(s).0)
        .min()
        .unwrap_or(0);
    let k1 = sessions
        .iter()
        .map(|s| site.steps_of(s).1)
        .max()
        .unwrap_or(0)
        .max(k0);
    let steps = (k1 - k0) as usize;
    let site_limit = params.site_limit_kw.unwrap_or(f64::INFINITY);
    let horizon_pad = params.mpc.max_horizon_steps + 1;
    let prices: Vec<f64> = (0..steps + horizon_pad)
        .map(|k| params.tariff.price_at((k0 + k as i64) * dt_min))
        .collect();
    let month: Vec<i64> = (0..steps)
        .map(|k| month_of_min((k0 + k as i64) * dt_min))
        .collect();

    let mut policy: Box<dyn Policy> = if name == "offline-optimal" {
        Box::new(OfflinePlan::solve(sessions, params, k0, steps)?)
    } else {
        policy_by_name(name, &params.mpc)?
    };
    policy.learn_history(&params.history, params.step_minutes)?;

    let mut order: Vec<usize> = (0..sessions.len()).collect();
    order.sort_by_key(|&i| (site.steps_of(&sessions[i]).0, i));
    let mut next = 0usize;
    let mut learner = HabitLearner::new(params.habits.clone());
    let mut to_learn: BinaryHeap<std::cmp::Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut finished: Vec<(f64, f64)> = Vec::with_capacity(sessions.len());
    let mut month_peak: BTreeMap<i64, f64> = BTreeMap::new();
    let (mut energy_cost, mut v2g_kwh, mut wear_eur, mut peak) = (0.0, 0.0, 0.0, 0.0f64);
    let (mut violations, mut offers) = (0usize, 0usize);
    let mut times = Vec::new();
    let gained = |i: usize, p: &PluggedEv| {
        (
            sessions[i].energy_kwh,
            p.energy_kwh - sessions[i].initial_energy_kwh,
        )
    };

    for k in 0..steps {
        let step = k0 + k as i64;
        let now_min = step * dt_min;
        // Learn from sessions that have left by now (causal).
        while let Some(std::cmp::Reverse((dep, j))) = to_learn.peek().copied() {
            if dep > now_min {
                break;
            }
            to_learn.pop();
            learner.observe(&sessions[j]);
        }
        // Departures first (the step grid is ACN-Sim's: see `crate::site`), then arrivals.
        for (i, p) in site.depart(step) {
            finished.push(gained(i, &p));
        }
        while next < order.len() && site.steps_of(&sessions[order[next]]).0 <= step {
            let i = order[next];
            next += 1;
            let s = &sessions[i];
            to_learn.push(std::cmp::Reverse((s.departure_min, i)));
            let plan = session_plan(s, &learner, params.knowledge);
            if site.arrive(i, s, plan) != Arrival::Plugged {
                finished.push((s.energy_kwh, 0.0));
            }
        }
        // What the policy sees.
        let evs = site.vehicles(sessions, step);
        let mpeak = month_peak.get(&month[k]).copied().unwrap_or(0.0);
        let ctx = StepContext {
            step,
            step_hours: dt_h,
            evs: &evs,
            site_limit_kw: site_limit,
            price_eur_per_mwh: &prices[k..],
            grid_peak: &[],
            demand_charge_eur_per_kw: params.tariff.demand_charge_eur_per_kw,
            peak_so_far_kw: mpeak,
        };
        let rates = if evs.is_empty() {
            Vec::new()
        } else {
            let t0 = clock.now_ms();
            let r = policy.schedule(&ctx)?;
            times.push(clock.now_ms() - t0);
            offers += policy.sell_offers().len();
            r
        };
        // Physics.
        let power = site.apply(sessions, &evs, &rates);
        v2g_kwh += power.v2g_kw * dt_h;
        wear_eur += params.mpc.wear_cost_eur_per_kwh * power.v2g_battery_kwh;
        let total_kw = power.charge_kw - power.v2g_kw;
        energy_cost += prices[k] / 1000.0 * total_kw * dt_h;
        if total_kw > site_limit + 1e-6 {
            violations += 1;
        }
        peak = peak.max(total_kw);
        let e = month_peak.entry(month[k]).or_insert(0.0);
        *e = e.max(total_kw);
    }
    for (i, p) in site.drain() {
        finished.push(gained(i, &p));
    }
    let requested: f64 = finished.iter().map(|f| f.0).sum();
    let delivered: f64 = finished.iter().map(|f| f.1).sum();
    let met = finished.iter().filter(|f| f.1 >= f.0 - 0.1).count();
    let demand_charge: f64 = month_peak.values().map(|p| p.max(0.0)).sum::<f64>()
        * params.tariff.demand_charge_eur_per_kw;
    times.sort_by(f64::total_cmp);
    Ok(EvaluateReport {
        policy: name.to_string(),
        sessions: sessions.len(),
        energy_requested_kwh: requested,
        energy_delivered_kwh: delivered,
        energy_delivered_pct: if requested > 0.0 {
            100.0 * delivered / requested
        } else {
            100.0
        },
        demands_met_pct: 100.0 * met as f64 / finished.len().max(1) as f64,
        peak_kw: peak,
        energy_cost_eur: energy_cost,
        demand_charge_eur: demand_charge,
        total_cost_eur: energy_cost + demand_charge + wear_eur,
        v2g_energy_kwh: v2g_kwh,
        degradation_cost_eur: wear_eur,
        solve_time_ms_median: times.get(times.len() / 2).copied().unwrap_or(0.0),
        solve_time_ms_max: times.last().copied().unwrap_or(0.0),
        solves: policy.solves(),
        site_limit_violation_steps: violations,
        sell_offers: offers,
        step_minutes: params.step_minutes,
        steps,
        site_limit_kw: params.site_limit_kw,
        knowledge: params.knowledge,
    })
}

/// What the policy is told about a session on arrival, by [`Knowledge`].
fn session_plan(s: &Session, learner: &HabitLearner, knowledge: Knowledge) -> SessionPlan {
    let pred = learner.predict(s);
    let (departure_min, energy_kwh) = match knowledge {
        Knowledge::Actual => (s.departure_min, s.energy_kwh),
        Knowledge::Stated => (
            s.stated_departure_min
                .unwrap_or_else(|| planned_departure_min(s.arrival_min, pred.stay_plan_hours)),
            s.stated_energy_kwh.unwrap_or(pred.energy_plan_kwh),
        ),
        Knowledge::Learned => (
            planned_departure_min(s.arrival_min, pred.stay_plan_hours),
            pred.energy_plan_kwh,
        ),
    };
    SessionPlan {
        departure_min,
        energy_kwh,
    }
}

/// The offline optimum: one problem over the whole period with perfect knowledge of every
/// arrival, departure and energy, then replayed step by step.
#[derive(Debug, Clone)]
pub struct OfflinePlan {
    k0: i64,
    /// Per session: (first step offset, charge kW per step, discharge kW per step).
    plan: Vec<(usize, Vec<f64>, Vec<f64>)>,
}

impl OfflinePlan {
    /// Solve the whole period (`steps` steps from step `k0`).
    pub fn solve(
        sessions: &[Session],
        params: &EvaluateParams,
        k0: i64,
        steps: usize,
    ) -> Result<Self, EvError> {
        let dt_min = i64::from(params.step_minutes);
        let evs: Vec<PlanEv> = sessions
            .iter()
            .map(|s| {
                let (a, d) = (
                    floor_step(s.arrival_min, dt_min),
                    floor_step(s.departure_min, dt_min),
                );
                let start = (a - k0).max(0) as usize;
                let end = ((d - k0).max(0) as usize).max(start);
                PlanEv {
                    start,
                    end,
                    need_kwh: s.energy_kwh,
                    max_charge_kw: s.ev.max_charge_kw,
                    max_discharge_kw: if s.ev.v2g { s.ev.max_discharge_kw } else { 0.0 },
                    energy_kwh: s.initial_energy_kwh,
                    min_energy_kwh: v2g_floor_kwh(s),
                    max_energy_kwh: s.target_energy_kwh(),
                    efficiency: s.ev.efficiency,
                    value_weight: 1.0,
                    scenario: None,
                }
            })
            .collect();
        let months: Vec<i64> = (0..steps)
            .map(|k| month_of_min((k0 + k as i64) * dt_min))
            .collect();
        let mut ids: BTreeMap<i64, usize> = BTreeMap::new();
        for m in &months {
            let n = ids.len();
            ids.entry(*m).or_insert(n);
        }
        let problem = PlanProblem {
            steps,
            step_hours: dt_min as f64 / MINUTES_PER_HOUR,
            step_scale: Vec::new(),
            price_eur_per_mwh: (0..steps)
                .map(|k| params.tariff.price_at((k0 + k as i64) * dt_min))
                .collect(),
            site_limit_kw: params.site_limit_kw.unwrap_or(f64::INFINITY),
            demand_charge_eur_per_kw: params.tariff.demand_charge_eur_per_kw,
            quick_charge_eur_per_kwh: params.mpc.quick_charge_eur_per_kwh,
            peak_group: months
                .iter()
                .map(|m| ids.get(m).copied().unwrap_or(0))
                .collect(),
            prev_peak_kw: vec![0.0; ids.len().max(1)],
            reserve: None,
            tail: None,
            scenarios: None,
            evs,
        };
        let sol = solve_plan(&problem, &params.mpc)?;
        let plan = problem
            .evs
            .iter()
            .zip(sol.charge_kw.into_iter().zip(sol.discharge_kw))
            .map(|(ev, (c, g))| (ev.start, c, g))
            .collect();
        Ok(Self { k0, plan })
    }
}

impl Policy for OfflinePlan {
    fn name(&self) -> &'static str {
        "offline-optimal"
    }
    fn schedule(&mut self, ctx: &StepContext<'_>) -> Result<Vec<f64>, EvError> {
        let k = (ctx.step - self.k0).max(0) as usize;
        Ok(ctx
            .evs
            .iter()
            .map(|ev| match self.plan.get(ev.key) {
                Some((start, c, g)) if k >= *start => {
                    let i = k - start;
                    c.get(i).copied().unwrap_or(0.0) - g.get(i).copied().unwrap_or(0.0)
                }
                _ => 0.0,
            })
            .collect())
    }
}
