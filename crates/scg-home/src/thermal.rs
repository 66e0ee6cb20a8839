//! Thermal loads as linear programs: a state `x` (indoor temperature of a 1R1C building, or
//! the energy in a hot-water tank) evolves linearly with the electric power `p`,
//!
//! ```text
//!   x_{t+1} = a·x_t + b·p_t + w_t,      lo ≤ x_{t+1} ≤ hi,      0 ≤ p_t ≤ p_max_t
//! ```
//!
//! and the agent minimises what the power costs: from the community's surplus (at most the
//! surplus left, at the surplus price), from the grid (member price plus the grid-peak adder)
//! and, above the peak headroom, the grid plus [`OVER_HEADROOM_EUR_PER_KWH`]. The end state is
//! kept at least at the start state (clipped into the band), so a day's schedule does not
//! borrow from the next day.
//!
//! - Heat pump (1R1C, exact discretisation): `a = exp(−Δt/RC)`,
//!   `b = (1 − a)·R·COP`, `w = (1 − a)·T_out`; comfort band as bounds.
//! - Water heater (energy above cold water): `a = 1 − UA·Δt/(ρcV)`, `b = Δt` (resistive element,
//!   all heat into the water), `w = −draw − UA·Δt·(T_cold − T_amb)`; bounds from `min_c`/`max_c`.
//!
//! **How a horizon is solved** ([`Horizon::plan`]):
//! 1. [`Horizon::reachable`]: the states reachable after each step form an interval (the
//!    affine image of the previous one for powers in `[0, p_max]`, cut by the band), so
//!    feasibility is exact in O(T); a day that misses the band by more than a thousandth of
//!    it is infeasible without a solver (a heat pump on a summer day cannot cool).
//! 2. The segment LP on `scg_opt::qp`. The general formulation ([`Horizon::solve_clarabel`])
//!    splits each step's power into `p_s ≤ surplus`, `p_g`, `p_x` with the coupling rows
//!    `p_s + p_g ≤ soft` and `p_s + p_g + p_x ≤ p_max` (soft = the headroom clipped into
//!    `[0, p_max]`). For a given total `p` its cheapest split fills the cheapest part first,
//!    as the costs are ordered (surplus ≤ grid < grid + penalty): surplus up to
//!    `w1 = min(surplus, soft)` (surplus beyond the headroom can only be drawn as `p_x`),
//!    grid up to `w2 = soft − w1`, the rest at the penalty up to `w3 = p_max − soft`. The
//!    segment form gives each step the variables `y1 ∈ [0, w1]`, `y2 ∈ [0, w2]`,
//!    `y3 ∈ [0, w3]` at those three costs with `p = y1 + y2 + y3`: every segment split is a
//!    split of the general form (so its optimum is no better), and the greedy split of any
//!    general solution's totals is a segment split of no higher cost (so no worse). Both
//!    have the same reachable totals `[0, p_max]`, hence the same optimal cost and the same
//!    feasibility; only the `T` state equations remain coupling rows, the segments and the
//!    states (band, end state) are boxes. A test compares the two on random days
//!    (`tests/thermal.rs`).
//! 3. `clarabel` on the general formulation when `qp` declines (outside its class, not
//!    converged) or its schedule leaves the band by more than `1e-6·max(1, hi − lo)`;
//!    [`SolveCounts`] counts how often.
//!
//! Unmanaged, both follow their thermostat ([`Linear::thermostat`]). Never violates a bound
//! that the thermostat itself would keep; never does I/O.

use crate::appliance::Signals;
use crate::config::{HeatPumpConfig, WATER_KWH_PER_L_K, WaterHeaterConfig};
use crate::error::HomeError;
use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus, SupportedConeT,
    ZeroConeT,
};
use scg_opt::qp;

/// Penalty per kWh drawn above the peak headroom: large against any energy price, so the
/// headroom is used up first and exceeded only where the comfort band needs it.
pub const OVER_HEADROOM_EUR_PER_KWH: f64 = 10.0;

/// A first-order linear thermal system over a horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// State decay per step.
    pub a: f64,
    /// State gain per kW of electric power.
    pub b: f64,
    /// Exogenous input per step (outdoor temperature term, or draw and losses).
    pub w: Vec<f64>,
    /// Lowest state after each step.
    pub lo: f64,
    /// Highest state after each step.
    pub hi: f64,
    /// Largest electric power per step, kW.
    pub p_max_kw: Vec<f64>,
    /// Power above which a step pays [`OVER_HEADROOM_EUR_PER_KWH`] extra (the community's
    /// peak headroom), kW; empty = no such limit.
    pub soft_max_kw: Vec<f64>,
    /// State at the start.
    pub x0: f64,
    /// The state the thermostat holds when unmanaged.
    pub setpoint: f64,
}

impl Linear {
    /// A heat pump on a 1R1C dwelling with outdoor temperatures `outdoor_c` per step.
    pub fn heat_pump(h: &HeatPumpConfig, outdoor_c: &[f64], step_hours: f64, x0: f64) -> Self {
        let a = (-step_hours / (h.resistance_k_per_kw * h.capacitance_kwh_per_k)).exp();
        Self {
            a,
            b: (1.0 - a) * h.resistance_k_per_kw * h.cop,
            w: outdoor_c.iter().map(|t| (1.0 - a) * t).collect(),
            lo: h.comfort_min_c,
            hi: h.comfort_max_c,
            p_max_kw: vec![h.max_electric_kw; outdoor_c.len()],
            soft_max_kw: Vec::new(),
            x0,
            setpoint: h.setpoint_c,
        }
    }

    /// A water heater with draws `draw_kwh` per step; the state is kWh above cold water.
    pub fn water_heater(w: &WaterHeaterConfig, draw_kwh: &[f64], step_hours: f64, x0: f64) -> Self {
        let ua_kw = w.loss_w_per_k / 1000.0;
        let heat_cap = w.tank_l * WATER_KWH_PER_L_K;
        let a = 1.0 - ua_kw * step_hours / heat_cap;
        Self {
            a,
            b: step_hours,
            w: draw_kwh
                .iter()
                .map(|d| -d - ua_kw * step_hours * (w.cold_water_c - w.ambient_c))
                .collect(),
            lo: w.energy_at_kwh(w.min_c),
            hi: w.energy_at_kwh(w.max_c),
            p_max_kw: vec![w.element_kw; draw_kwh.len()],
            soft_max_kw: Vec::new(),
            x0,
            setpoint: w.energy_at_kwh(w.max_c),
        }
    }

    /// Horizon length.
    pub fn steps(&self) -> usize {
        self.w.len()
    }

    /// The state trajectory (after each step) under `power_kw`.
    pub fn states(&self, power_kw: &[f64]) -> Vec<f64> {
        self.trajectory(self.x0, &self.w, power_kw).collect()
    }

    /// The states after each step from `x0` with inputs `w` under `power_kw` (the one
    /// place the dynamics are stepped).
    fn trajectory<'a>(
        &'a self,
        x0: f64,
        w: &'a [f64],
        power_kw: &'a [f64],
    ) -> impl Iterator<Item = f64> + 'a {
        power_kw.iter().zip(w).scan(x0, |x, (p, w)| {
            *x = self.a * *x + self.b * p + w;
            Some(*x)
        })
    }

    /// Unmanaged: each step the power that brings the state back to the setpoint, clipped.
    pub fn thermostat(&self) -> Vec<f64> {
        self.thermostat_from(self.x0, &self.w, |t| self.p_max_kw[t])
    }

    /// The thermostat from `x0` with inputs `w` and the largest power `max_kw(t)`.
    fn thermostat_from(&self, x0: f64, w: &[f64], max_kw: impl Fn(usize) -> f64) -> Vec<f64> {
        let mut x = x0;
        w.iter()
            .enumerate()
            .map(|(t, w)| {
                let want = (self.setpoint - self.a * x - w) / self.b;
                let p = want.clamp(0.0, max_kw(t).max(0.0));
                x = self.a * x + self.b * p + w;
                p
            })
            .collect()
    }

    /// Least-cost power per step against `sig` (starting at offset `t0` of the signals).
    /// Comfort bounds are hard: `Ok(None)` when no power within the limits keeps them.
    pub fn optimise(&self, sig: &Signals, t0: usize) -> Result<Option<Vec<f64>>, String> {
        Ok(self.plan(sig, t0)?.power_kw)
    }

    /// [`Self::optimise`] with the solver that decided it.
    pub fn plan(&self, sig: &Signals, t0: usize) -> Result<Plan, String> {
        let offers = self.offers(sig, t0);
        self.horizon(0, self.x0, &offers).plan()
    }

    /// [`Self::optimise`] by the general formulation on `clarabel` alone (the fallback of
    /// [`Horizon::plan`], and the oracle its tests compare with).
    pub fn optimise_clarabel(&self, sig: &Signals, t0: usize) -> Result<Option<Vec<f64>>, String> {
        let offers = self.offers(sig, t0);
        self.horizon(0, self.x0, &offers).solve_clarabel()
    }

    /// The offers of the horizon against `sig` from offset `t0`, this device's own
    /// `soft_max_kw` as the headroom.
    pub fn offers(&self, sig: &Signals, t0: usize) -> Vec<StepOffer> {
        (0..self.steps())
            .map(|t| {
                let max_kw = self.p_max_kw[t].max(0.0);
                let soft_kw = self.soft_max_kw.get(t).copied().unwrap_or(max_kw);
                StepOffer::new(sig, t0 + t, Share::ONE, max_kw, soft_kw)
            })
            .collect()
    }

    /// The problem of steps `t0..t0 + offers.len()` of this device, starting in state `x0`.
    pub fn horizon<'a>(&'a self, t0: usize, x0: f64, offers: &'a [StepOffer]) -> Horizon<'a> {
        Horizon {
            lin: self,
            w: &self.w[t0..t0 + offers.len()],
            x0,
            offers,
        }
    }
}

/// What one device may draw in a step and what each kW costs (per device: a group's
/// surplus and headroom divided by its count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOffer {
    /// Largest power, kW (≥ 0).
    pub max_kw: f64,
    /// Power above which a step pays [`OVER_HEADROOM_EUR_PER_KWH`], kW, in `0..=max_kw`.
    pub soft_kw: f64,
    /// Community surplus left, kW (≥ 0).
    pub surplus_kw: f64,
    /// Cost of a kW of surplus over the step, EUR (at most `grid_eur_per_kw`).
    pub surplus_eur_per_kw: f64,
    /// Cost of a kW from the grid over the step, EUR (price plus grid-peak adder).
    pub grid_eur_per_kw: f64,
    /// Cost of a kW above the headroom over the step, EUR (grid plus the penalty).
    pub over_eur_per_kw: f64,
}

/// How many identical devices share a group's surplus and headroom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(pub f64);

impl Share {
    /// One device.
    pub const ONE: Self = Self(1.0);
}

impl StepOffer {
    /// Step `s` of `sig` for one of `share` devices of at most `max_kw` whose headroom is
    /// `soft_kw` (clipped into `0..=max_kw`; the surplus is `sig`'s divided by the share).
    pub fn new(sig: &Signals, s: usize, share: Share, max_kw: f64, soft_kw: f64) -> Self {
        let adder = if sig.grid_peak[s] {
            sig.grid_peak_adder_eur_per_mwh
        } else {
            0.0
        };
        let grid = (sig.price_eur_per_mwh[s] + adder) / 1000.0 * sig.step_hours;
        let surplus_price = sig.surplus_price_eur_per_mwh[s] / 1000.0 * sig.step_hours;
        let max_kw = max_kw.max(0.0);
        Self {
            max_kw,
            soft_kw: soft_kw.clamp(0.0, max_kw),
            surplus_kw: (sig.surplus_kw.get(s).copied().unwrap_or(0.0) / share.0).max(0.0),
            surplus_eur_per_kw: surplus_price.min(grid),
            grid_eur_per_kw: grid,
            over_eur_per_kw: grid + OVER_HEADROOM_EUR_PER_KWH * sig.step_hours,
        }
    }

    /// The step's cost as segments `(width kW, EUR per kW)`, cheapest first: surplus under
    /// the headroom, grid under the headroom, above the headroom. Their widths add up to
    /// `max_kw` and their costs never fall, so filling them in order is the cheapest way to
    /// draw any power (module docs).
    pub fn segments(&self) -> [(f64, f64); 3] {
        let cheap = self.surplus_kw.min(self.soft_kw);
        [
            (cheap, self.surplus_eur_per_kw),
            (self.soft_kw - cheap, self.grid_eur_per_kw),
            (self.max_kw - self.soft_kw, self.over_eur_per_kw),
        ]
    }

    /// The least cost of drawing `p_kw` in the step (the segments filled in order), EUR:
    /// the LP's objective for the step.
    pub fn cost_eur(&self, p_kw: f64) -> f64 {
        let mut left = p_kw;
        let mut cost = 0.0;
        for (width, price) in self.segments() {
            let take = left.min(width).max(0.0);
            cost += take * price;
            left -= take;
        }
        cost + left.max(0.0) * self.over_eur_per_kw
    }
}

/// Which way a horizon was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// Infeasible by the reachable-state test: no solver ran.
    Reachability,
    /// The segment LP on `scg_opt::qp`.
    Qp,
    /// The general formulation on `clarabel` (the fallback when `qp` declines).
    Clarabel,
}

/// A planned horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Power per step, kW; `None` when no power within the limits keeps the bounds.
    pub power_kw: Option<Vec<f64>>,
    /// What decided it.
    pub solver: Solver,
}

/// How many horizons each way decided (see [`Solver`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SolveCounts {
    /// Infeasible by the reachable-state test.
    pub infeasible_by_reachability: u64,
    /// Solved by `qp`.
    pub qp: u64,
    /// Handed to `clarabel` because `qp` declined or its answer failed the check.
    pub clarabel_fallbacks: u64,
}

impl SolveCounts {
    /// Count one plan.
    pub fn add(&mut self, solver: Solver) {
        match solver {
            Solver::Reachability => self.infeasible_by_reachability += 1,
            Solver::Qp => self.qp += 1,
            Solver::Clarabel => self.clarabel_fallbacks += 1,
        }
    }
}

/// Share of the band a horizon must miss by to be infeasible without a solver (closer misses
/// go to the solvers, which decide them with their own tolerances, as before).
const INFEASIBLE_BAND_SHARE: f64 = 1e-3;

/// Segments narrower than this, kW, are left out of the segment LP (`qp` needs a box with an
/// interior; a nano-watt of power changes nothing).
const MIN_SEGMENT_KW: f64 = 1e-9;

/// An end-state box narrower than this share of `max(1, |hi|)` fixes the end state at its
/// lower edge (the water heater starts full, so its end state must be full too).
const FIXED_END_SHARE: f64 = 1e-9;

/// How far a `qp` schedule's states may leave the band, as a share of `max(1, hi − lo)`,
/// before it is handed to `clarabel` instead.
const BAND_CHECK_SHARE: f64 = 1e-6;

/// One horizon of a device: its dynamics from `x0` over `w.len()` steps, with the offers.
#[derive(Debug, Clone, Copy)]
pub struct Horizon<'a> {
    /// The device (its `a`, `b`, `lo`, `hi`; `w` and the offers below are the horizon's).
    pub lin: &'a Linear,
    /// Exogenous input per step of the horizon.
    pub w: &'a [f64],
    /// State at the start.
    pub x0: f64,
    /// Per step: the limits and prices (same length as `w`).
    pub offers: &'a [StepOffer],
}

impl Horizon<'_> {
    /// The least-cost power: infeasible by [`Self::reachable`] without a solver, else the
    /// segment LP on `qp`, else (it declined, or its schedule leaves the band) `clarabel`.
    pub fn plan(&self) -> Result<Plan, String> {
        if !self.reachable() {
            return Ok(Plan {
                power_kw: None,
                solver: Solver::Reachability,
            });
        }
        if let Some(p) = self.solve_segments().filter(|p| self.keeps_band(p)) {
            return Ok(Plan {
                power_kw: Some(p),
                solver: Solver::Qp,
            });
        }
        Ok(Plan {
            power_kw: self.solve_clarabel()?,
            solver: Solver::Clarabel,
        })
    }

    /// The state after each step under `power_kw`.
    pub fn states(&self, power_kw: &[f64]) -> Vec<f64> {
        self.lin.trajectory(self.x0, self.w, power_kw).collect()
    }

    /// The thermostat's power over the horizon (what an unmanaged device draws).
    pub fn thermostat(&self) -> Vec<f64> {
        self.lin
            .thermostat_from(self.x0, self.w, |t| self.offers[t].max_kw)
    }

    /// The lowest end state the horizon must reach (the start clipped into the band).
    fn end_min(&self) -> f64 {
        self.x0.clamp(self.lin.lo, self.lin.hi)
    }

    /// Whether some power within the limits may keep the band (`false` only when every
    /// schedule misses it by more than [`INFEASIBLE_BAND_SHARE`]). The states reachable
    /// after each step form an interval (the image of the previous interval under the
    /// affine dynamics, all powers in `[0, max]`, intersected with the band): exact, O(T).
    pub fn reachable(&self) -> bool {
        let (lo, hi) = (self.lin.lo, self.lin.hi);
        let margin = INFEASIBLE_BAND_SHARE * (hi - lo).abs().max(f64::MIN_POSITIVE);
        let (mut low, mut high) = (self.x0, self.x0);
        for (w, o) in self.w.iter().zip(self.offers) {
            let (ax0, ax1) = (self.lin.a * low, self.lin.a * high);
            let bp = self.lin.b * o.max_kw;
            low = (ax0.min(ax1) + bp.min(0.0) + w).max(lo);
            high = (ax0.max(ax1) + bp.max(0.0) + w).min(hi);
            if low > high + margin || low.is_nan() || high.is_nan() {
                return false;
            }
            if low > high {
                // A near miss: carry on from the point the solvers will judge.
                let mid = 0.5 * (low + high);
                (low, high) = (mid, mid);
            }
        }
        high >= self.end_min() - margin
    }

    /// Whether the states under `power_kw` keep the band and the end state (within
    /// [`BAND_CHECK_SHARE`]).
    fn keeps_band(&self, power_kw: &[f64]) -> bool {
        let (lo, hi) = (self.lin.lo, self.lin.hi);
        let tol = BAND_CHECK_SHARE * (hi - lo).abs().max(1.0);
        let mut end = self.x0;
        for x in self.lin.trajectory(self.x0, self.w, power_kw) {
            if !(x >= lo - tol && x <= hi + tol) {
                return false;
            }
            end = x;
        }
        power_kw.is_empty() || end >= self.end_min() - tol
    }

    /// The horizon's cost of `power_kw` (Σ [`StepOffer::cost_eur`]), EUR.
    pub fn cost_eur(&self, power_kw: &[f64]) -> f64 {
        self.offers
            .iter()
            .zip(power_kw)
            .map(|(o, p)| o.cost_eur(*p))
            .sum()
    }

    /// The segment LP on `scg_opt::qp`: per step the segments of [`StepOffer::segments`] as
    /// boxed variables and the state `x_t` boxed by the band; the `T` state equations are
    /// the only coupling rows. `None` when `qp` declines (outside its class, not converged).
    fn solve_segments(&self) -> Option<Vec<f64>> {
        let n_t = self.w.len();
        // qp bounds its own sizes (it declines past them).
        if n_t == 0 {
            return None;
        }
        let (lo, hi) = (self.lin.lo, self.lin.hi);
        let end_min = self.end_min();
        let end_fixed = hi - end_min <= FIXED_END_SHARE * hi.abs().max(1.0);
        let mut lp = SegmentLp::with_capacity(n_t);
        // Power segments first, remembering each one's step.
        for (t, o) in self.offers.iter().enumerate() {
            for (width, price) in o.segments() {
                if width > MIN_SEGMENT_KW {
                    lp.var(price, (0.0, width));
                    lp.step.push(t);
                }
            }
        }
        let segments = lp.q.len();
        // States x_0..x_{T−1} (the last left out when it is fixed).
        let first_x = segments;
        for t in 0..n_t {
            if t + 1 == n_t {
                if !end_fixed {
                    lp.var(0.0, (end_min, hi));
                }
            } else {
                lp.var(0.0, (lo, hi));
            }
        }
        // x_t − a·x_{t−1} − b·Σ segments_t = w_t (x_{−1} = x0, a fixed end moves right).
        let mut rhs: Vec<f64> = self.w.to_vec();
        rhs[0] += self.lin.a * self.x0;
        if end_fixed {
            rhs[n_t - 1] -= end_min;
        }
        for (j, &t) in lp.step.iter().enumerate() {
            lp.eq.push((t, j, -self.lin.b));
        }
        for t in 0..n_t {
            if t + 1 < n_t || !end_fixed {
                lp.eq.push((t, first_x + t, 1.0));
            }
            if t > 0 {
                lp.eq.push((t, first_x + t - 1, -self.lin.a));
            }
        }
        // A row without a variable (one step, fixed end, no power) is not a row `qp` takes.
        let mut used = vec![false; n_t];
        for &(r, _, _) in &lp.eq {
            used[r] = true;
        }
        if used.contains(&false) {
            return None;
        }
        let x = lp.solve(&rhs)?;
        let mut power = vec![0.0; n_t];
        for (j, &t) in lp.step.iter().enumerate() {
            power[t] += x[j];
        }
        for (p, o) in power.iter_mut().zip(self.offers) {
            *p = p.clamp(0.0, o.max_kw);
        }
        Some(power)
    }

    /// The general formulation on `clarabel` (the one before the segment LP): per step
    /// `p_s` (surplus), `p_g` (grid under the headroom), `p_x` (above it) and `x`, the
    /// state equations, bounds and the two coupling rows `p_s + p_g ≤ soft`,
    /// `p_s + p_g + p_x ≤ max`.
    pub fn solve_clarabel(&self) -> Result<Option<Vec<f64>>, String> {
        let n_t = self.w.len();
        let (a_x, b_x) = (self.lin.a, self.lin.b);
        // Layout [p_s(0..T), p_g(0..T), p_x(0..T), x(0..T)].
        let (ps, pg, px, xs) = (0, n_t, 2 * n_t, 3 * n_t);
        let n = 4 * n_t;
        let mut q = vec![0.0; n];
        let mut rows = Rows::default();
        // Equalities: x_t − a·x_{t−1} − b·(p_s + p_g + p_x) = w_t (x_{−1} = x0).
        for t in 0..n_t {
            if t == 0 {
                rows.push(
                    &[(xs, 1.0), (ps, -b_x), (pg, -b_x), (px, -b_x)],
                    self.w[0] + a_x * self.x0,
                );
            } else {
                rows.push(
                    &[
                        (xs + t, 1.0),
                        (ps + t, -b_x),
                        (pg + t, -b_x),
                        (px + t, -b_x),
                        (xs + t - 1, -a_x),
                    ],
                    self.w[t],
                );
            }
        }
        let eq_rows = rows.n;
        for (t, o) in self.offers.iter().enumerate() {
            q[ps + t] = o.surplus_eur_per_kw;
            q[pg + t] = o.grid_eur_per_kw;
            q[px + t] = o.over_eur_per_kw;
            rows.push(&[(ps + t, -1.0)], 0.0);
            rows.push(&[(ps + t, 1.0)], o.surplus_kw.min(o.max_kw));
            rows.push(&[(pg + t, -1.0)], 0.0);
            rows.push(&[(xs + t, -1.0)], -self.lin.lo);
            rows.push(&[(xs + t, 1.0)], self.lin.hi);
            rows.push(&[(px + t, -1.0)], 0.0);
            rows.push(&[(ps + t, 1.0), (pg + t, 1.0)], o.soft_kw);
            rows.push(&[(ps + t, 1.0), (pg + t, 1.0), (px + t, 1.0)], o.max_kw);
        }
        // End state at least the start state (clipped into the band).
        rows.push(&[(xs + n_t - 1, -1.0)], -self.end_min());
        let row = rows.n;
        let Rows { ri, rj, rv, rb, .. } = rows;
        let a = CscMatrix::new_from_triplets(row, n, ri, rj, rv);
        let p = CscMatrix::zeros((n, n));
        let cones: Vec<SupportedConeT<f64>> =
            vec![ZeroConeT(eq_rows), NonnegativeConeT(row - eq_rows)];
        let settings = DefaultSettings {
            verbose: false,
            max_iter: 100,
            ..DefaultSettings::default()
        };
        let mut solver =
            DefaultSolver::new(&p, &q, &a, &rb, &cones, settings).map_err(|e| format!("{e:?}"))?;
        solver.solve();
        match solver.solution.status {
            SolverStatus::Solved | SolverStatus::AlmostSolved => {}
            SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => {
                return Ok(None);
            }
            other => return Err(format!("status {other:?}")),
        }
        let x = &solver.solution.x;
        Ok(Some(
            self.offers
                .iter()
                .enumerate()
                .map(|(t, o)| (x[ps + t] + x[pg + t] + x[px + t]).clamp(0.0, o.max_kw))
                .collect(),
        ))
    }
}

/// The segment LP being built: costs, boxes and state-equation entries.
#[derive(Debug, Default)]
struct SegmentLp {
    q: Vec<f64>,
    /// Bounds as single-entry `≤` rows (`−x ≤ −lower`, `x ≤ upper`), as `qp` takes them.
    bound_row: Vec<usize>,
    bound_col: Vec<usize>,
    bound_val: Vec<f64>,
    bound_rhs: Vec<f64>,
    /// The step of each power segment (the segments are the first variables).
    step: Vec<usize>,
    /// State-equation entries (row, variable, coefficient).
    eq: Vec<(usize, usize, f64)>,
}

impl SegmentLp {
    fn with_capacity(steps: usize) -> Self {
        let vars = 4 * steps;
        Self {
            q: Vec::with_capacity(vars),
            bound_row: Vec::with_capacity(2 * vars),
            bound_col: Vec::with_capacity(2 * vars),
            bound_val: Vec::with_capacity(2 * vars),
            bound_rhs: Vec::with_capacity(2 * vars),
            step: Vec::with_capacity(3 * steps),
            eq: Vec::with_capacity(6 * steps),
        }
    }

    /// A variable of cost `price` in `[lower, upper]`.
    fn var(&mut self, price: f64, (lower, upper): (f64, f64)) {
        let j = self.q.len();
        self.q.push(price);
        for (val, rhs) in [(-1.0, -lower), (1.0, upper)] {
            self.bound_row.push(self.bound_rhs.len());
            self.bound_col.push(j);
            self.bound_val.push(val);
            self.bound_rhs.push(rhs);
        }
    }

    /// Solve with the state equations' right-hand sides `rhs`.
    fn solve(&self, rhs: &[f64]) -> Option<Vec<f64>> {
        let row: Vec<usize> = self.eq.iter().map(|e| e.0).collect();
        let col: Vec<usize> = self.eq.iter().map(|e| e.1).collect();
        let val: Vec<f64> = self.eq.iter().map(|e| e.2).collect();
        let p_diag = vec![0.0; self.q.len()];
        let input = qp::QpInput {
            p_diag: &p_diag,
            q: &self.q,
            eq: qp::Rows {
                row: &row,
                col: &col,
                val: &val,
                rhs,
            },
            ineq: qp::Rows {
                row: &self.bound_row,
                col: &self.bound_col,
                val: &self.bound_val,
                rhs: &self.bound_rhs,
            },
        };
        qp::solve(&input, &qp::Tolerances::default()).map(|s| s.x)
    }
}

/// Map a solver message to the crate error.
pub fn solver_error(prosumer: &str, device: &str, message: String) -> HomeError {
    HomeError::Solver {
        prosumer: prosumer.to_string(),
        device: device.to_string(),
        message,
    }
}

/// Constraint rows as triplets: `Σ coef·x_j (=, ≤) bound`.
#[derive(Debug, Default)]
struct Rows {
    ri: Vec<usize>,
    rj: Vec<usize>,
    rv: Vec<f64>,
    rb: Vec<f64>,
    n: usize,
}

impl Rows {
    fn push(&mut self, terms: &[(usize, f64)], bound: f64) {
        for &(j, v) in terms {
            self.ri.push(self.n);
            self.rj.push(j);
            self.rv.push(v);
        }
        self.rb.push(bound);
        self.n += 1;
    }
}
