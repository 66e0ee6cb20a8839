//! Thermal loads as linear programs on `clarabel`: a state `x` (indoor temperature of a 1R1C
//! building, or the energy in a hot-water tank) evolves linearly with the electric power `p`,
//!
//! ```text
//!   x_{t+1} = a·x_t + b·p_t + w_t,      lo_{t+1} ≤ x_{t+1} ≤ hi_{t+1},      0 ≤ p_t ≤ p_max_t
//! ```
//!
//! and the agent minimises what the power costs: `p = p_s + p_g` with `p_s` from the
//! community's surplus (at most the surplus left, at the surplus price) and `p_g` from the grid
//! (member price plus the grid-peak adder). The end state is kept at least at the start
//! state, so a day's schedule does not borrow from the next day.
//!
//! - Heat pump (1R1C, exact discretisation): `a = exp(−Δt/RC)`,
//!   `b = (1 − a)·R·COP`, `w = (1 − a)·T_out`; comfort band as bounds.
//! - Water heater (energy above cold water): `a = 1 − UA·Δt/(ρcV)`, `b = Δt` (resistive element,
//!   all heat into the water), `w = −draw − UA·Δt·(T_cold − T_amb)`; bounds from `min_c`/`max_c`.
//!
//! Unmanaged, both follow their thermostat ([`Linear::thermostat`]). Never violates a bound
//! that the thermostat itself would keep.

use crate::appliance::Signals;
use crate::config::{HeatPumpConfig, WATER_KWH_PER_L_K, WaterHeaterConfig};
use crate::error::HomeError;
use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus, SupportedConeT,
    ZeroConeT,
};

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
        let mut x = self.x0;
        power_kw
            .iter()
            .zip(&self.w)
            .map(|(p, w)| {
                x = self.a * x + self.b * p + w;
                x
            })
            .collect()
    }

    /// Unmanaged: each step the power that brings the state back to the setpoint, clipped.
    pub fn thermostat(&self) -> Vec<f64> {
        let mut x = self.x0;
        (0..self.steps())
            .map(|t| {
                let want = (self.setpoint - self.a * x - self.w[t]) / self.b;
                let p = want.clamp(0.0, self.p_max_kw[t]);
                x = self.a * x + self.b * p + self.w[t];
                p
            })
            .collect()
    }

    /// Least-cost power per step against `sig` (starting at offset `t0` of the signals).
    /// Comfort bounds are hard: `Ok(None)` when no power within the limits keeps them.
    pub fn optimise(&self, sig: &Signals, t0: usize) -> Result<Option<Vec<f64>>, String> {
        let n_t = self.steps();
        // Variables per step: p_s (surplus), p_g (grid under the headroom), p_x (grid above
        // it), x. Layout [p_s(0..T), p_g(0..T), p_x(0..T), x(0..T)].
        let (ps, pg, px, xs) = (0, n_t, 2 * n_t, 3 * n_t);
        let n = 4 * n_t;
        let mut q = vec![0.0; n];
        let mut rows = Rows::default();
        // Equalities: x_t − a·x_{t−1} − b·p_s − b·p_g = w_t (x_{−1} = x0).
        for t in 0..n_t {
            if t == 0 {
                rows.push(
                    &[(xs, 1.0), (ps, -self.b), (pg, -self.b), (px, -self.b)],
                    self.w[0] + self.a * self.x0,
                );
            } else {
                rows.push(
                    &[
                        (xs + t, 1.0),
                        (ps + t, -self.b),
                        (pg + t, -self.b),
                        (px + t, -self.b),
                        (xs + t - 1, -self.a),
                    ],
                    self.w[t],
                );
            }
        }
        let eq_rows = rows.n;
        for t in 0..n_t {
            let s = t0 + t;
            let surplus = sig.surplus_kw.get(s).copied().unwrap_or(0.0).max(0.0);
            let adder = if sig.grid_peak[s] {
                sig.grid_peak_adder_eur_per_mwh
            } else {
                0.0
            };
            let grid_cost = (sig.price_eur_per_mwh[s] + adder) / 1000.0 * sig.step_hours;
            let surplus_cost =
                (sig.surplus_price_eur_per_mwh[s] / 1000.0 * sig.step_hours).min(grid_cost);
            q[ps + t] = surplus_cost;
            q[pg + t] = grid_cost;
            q[px + t] = grid_cost + OVER_HEADROOM_EUR_PER_KWH * sig.step_hours;
            let pmax = self.p_max_kw[t].max(0.0);
            let soft = self
                .soft_max_kw
                .get(t)
                .copied()
                .unwrap_or(pmax)
                .clamp(0.0, pmax);
            rows.push(&[(ps + t, -1.0)], 0.0);
            rows.push(&[(ps + t, 1.0)], surplus.min(pmax));
            rows.push(&[(pg + t, -1.0)], 0.0);
            rows.push(&[(xs + t, -1.0)], -self.lo);
            rows.push(&[(xs + t, 1.0)], self.hi);
            rows.push(&[(px + t, -1.0)], 0.0);
            rows.push(&[(ps + t, 1.0), (pg + t, 1.0)], soft);
            rows.push(&[(ps + t, 1.0), (pg + t, 1.0), (px + t, 1.0)], pmax);
        }
        // End state at least the start state (clipped into the band).
        rows.push(&[(xs + n_t - 1, -1.0)], -self.x0.clamp(self.lo, self.hi));
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
            (0..n_t)
                .map(|t| (x[ps + t] + x[pg + t] + x[px + t]).clamp(0.0, self.p_max_kw[t].max(0.0)))
                .collect(),
        ))
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
