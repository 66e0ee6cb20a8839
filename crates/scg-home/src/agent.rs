//! The home agent inside the community step: one prosumer's dwellings, advanced one interval
//! at a time, planning each day at its first step from what it is told then.
//!
//! At the first step of each day the agent plans the day's appliance runs and thermal devices
//! (the same exact per-dwelling branch and bound and the same thermal LPs as
//! [`crate::carve::manage`]) against:
//! - the member's retail price and the grid-peak flags of the forecast it is handed (plus the
//!   section's `grid_peak_adder_eur_per_mwh` while the grid is at peak);
//! - the community's surplus forecast of the same forecast, shared with the other home agents
//!   of the community (each consumes what it plans to use, in prosumer order);
//! - a peak headroom learned from the past: the highest load with the devices unmanaged of
//!   the last [`HEADROOM_DAYS`] days, minus the highest inflexible load (EVs included) seen
//!   at the same time of day in those days. On the first day there is no history and no
//!   headroom.
//!
//! Every step it returns the prosumer's load with the devices' unmanaged power taken out and
//! the planned power put in. Unmanaged (`managed = false`) it returns the load unchanged, bit
//! for bit. Never reads an input of a later step except through the forecast; never draws
//! randomness; never does I/O.

use crate::appliance::{Signals, StepPrice, energy_cost_eur};
use crate::carve::{
    HomeInputs, HomeResult, YearRun, carve_out, schedule_appliances, thermal_day, thermal_groups,
    year_runs,
};
use crate::config::HomeConfig;
use crate::error::HomeError;
use crate::thermal::{Linear, SolveCounts, solver_error};

/// What the agent is told at a step, from that step on (index 0 is the current step). Shorter
/// slices than the planning horizon are padded with their last value (no value: 0 / false).
#[derive(Debug, Clone, Copy, Default)]
pub struct StepForecast<'a> {
    /// The member's retail price, EUR/MWh.
    pub retail_eur_per_mwh: &'a [f64],
    /// Whether the main grid is at peak.
    pub grid_at_peak: &'a [bool],
    /// The community's surplus (renewables above loads, before storage), kW.
    pub community_surplus_kw: &'a [f64],
}

impl StepForecast<'_> {
    fn price(&self, k: usize) -> f64 {
        padded(self.retail_eur_per_mwh, k).unwrap_or(0.0)
    }
    fn peak(&self, k: usize) -> bool {
        padded(self.grid_at_peak, k).unwrap_or(false)
    }
}

fn padded<T: Copy>(s: &[T], k: usize) -> Option<T> {
    s.get(k).or_else(|| s.last()).copied()
}

/// Fixed settings of an agent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentSettings {
    /// Step length, minutes (must divide a day).
    pub step_minutes: u32,
    /// What the member pays for community surplus, EUR/MWh (the community's internal price).
    pub surplus_price_eur_per_mwh: f64,
}

/// Days of history the peak headroom is learned from.
pub const HEADROOM_DAYS: usize = 7;

/// Running totals for [`HomeResult`].
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    peak_unmanaged_kw: f64,
    peak_managed_kw: f64,
    shifted_kwh: f64,
    cost_unmanaged_eur: f64,
    cost_managed_eur: f64,
    steps: usize,
    runs_at_usual_time: usize,
}

/// One prosumer's home agent (module docs).
#[derive(Debug, Clone)]
pub struct HomeAgent {
    prosumer: String,
    cfg: HomeConfig,
    settings: AgentSettings,
    spd: usize,
    dt_h: f64,
    runs: Vec<YearRun>,
    next_run: usize,
    /// The devices as the occupants run them, kW per step (carved out of the HOMER load).
    unmanaged_kw: Vec<f64>,
    /// The devices as planned, kW per step (filled day by day).
    managed_kw: Vec<f64>,
    thermal: Vec<(String, f64, Linear)>,
    thermal_state: Vec<f64>,
    /// What decided the thermal days so far.
    thermal_solves: SolveCounts,
    /// Year-long signals, overwritten for the planning horizon at each day's start.
    sig: Signals,
    /// Inflexible load seen so far (load − unmanaged devices), kW per step.
    seen_inflexible_kw: Vec<f64>,
    totals: Totals,
}

impl HomeAgent {
    /// An agent for `cfg` over the year of `base_load_kw` (the HOMER load, used only to check
    /// that the devices fit inside it: [`carve_out`]'s error names the prosumer), with the
    /// outdoor temperature per step a heat pump needs (`None`: a heat pump is an error).
    pub fn new(
        prosumer: &str,
        cfg: &HomeConfig,
        base_load_kw: &[f64],
        outdoor_c: Option<&[f64]>,
        settings: AgentSettings,
    ) -> Result<Self, HomeError> {
        cfg.validate(prosumer)?;
        let inputs = HomeInputs {
            step_minutes: settings.step_minutes,
            outdoor_c,
        };
        let steps = base_load_kw.len();
        let carved = carve_out(prosumer, base_load_kw, cfg, &inputs)?;
        let thermal = thermal_groups(cfg, &inputs, steps, prosumer)?;
        let dt_h = f64::from(settings.step_minutes) / 60.0;
        Ok(Self {
            prosumer: prosumer.to_string(),
            cfg: cfg.clone(),
            settings,
            spd: (1440 / settings.step_minutes) as usize,
            dt_h,
            runs: year_runs(cfg, settings.step_minutes, steps),
            next_run: 0,
            unmanaged_kw: carved.unmanaged_flex_kw,
            managed_kw: vec![0.0; steps],
            thermal_state: thermal.iter().map(|(_, _, l)| l.x0).collect(),
            thermal,
            thermal_solves: SolveCounts::default(),
            sig: Signals::flat(steps, dt_h, 0.0),
            seen_inflexible_kw: vec![0.0; steps],
            totals: Totals::default(),
        })
    }

    /// Steps in the agent's year.
    pub fn steps(&self) -> usize {
        self.unmanaged_kw.len()
    }

    /// Whether the agent plans at `step` (the first step of a day, when managed).
    pub fn plans_at(&self, step: usize) -> bool {
        self.cfg.managed && step.is_multiple_of(self.spd) && step < self.steps()
    }

    /// Plan the day starting at `step` (see [`Self::plans_at`]) from `forecast`;
    /// `surplus_left_kw[k]` is the community surplus at `step + k` that the home agents
    /// planned before this one left (this agent takes what it plans to use out of it).
    pub fn plan_day(
        &mut self,
        step: usize,
        forecast: &StepForecast<'_>,
        surplus_left_kw: &mut [f64],
    ) -> Result<(), HomeError> {
        let steps = self.steps();
        let horizon = (2 * self.spd).min(steps - step);
        let day = step / self.spd;
        let headroom = self.learned_headroom(day);
        for k in 0..horizon {
            let s = step + k;
            let committed = self.managed_kw[s];
            self.sig.price_eur_per_mwh[s] = forecast.price(k);
            self.sig.grid_peak[s] = forecast.peak(k);
            self.sig.surplus_kw[s] =
                (surplus_left_kw.get(k).copied().unwrap_or(0.0) - committed).max(0.0);
            self.sig.surplus_price_eur_per_mwh[s] = self.settings.surplus_price_eur_per_mwh;
            self.sig.headroom_kw[s] = headroom.as_ref().map_or(f64::INFINITY, |(peak, inflex)| {
                peak - inflex[k % self.spd] - committed
            });
        }
        self.sig.grid_peak_adder_eur_per_mwh = self.cfg.grid_peak_adder_eur_per_mwh;
        let before: Vec<f64> = self.managed_kw[step..step + horizon].to_vec();
        // Thermal devices first: their comfort bands leave them less room than appliances.
        let t1 = (step + self.spd).min(steps);
        for (g, (device, count, lin)) in self.thermal.iter().enumerate() {
            let planned = thermal_day(
                lin,
                *count,
                (step, t1),
                self.thermal_state[g],
                &mut self.sig,
                &mut self.thermal_solves,
            )
            .map_err(|m| solver_error(&self.prosumer, device, m))?;
            self.thermal_state[g] = planned.end_state;
            for (k, pk) in planned.group_kw.iter().enumerate() {
                self.managed_kw[step + k] += pk;
            }
        }
        let first = self.next_run;
        while self.next_run < self.runs.len() && self.runs[self.next_run].day <= day {
            self.next_run += 1;
        }
        self.totals.runs_at_usual_time += schedule_appliances(
            &self.runs[first..self.next_run],
            &self.cfg,
            &mut self.sig,
            &mut self.managed_kw,
        );
        for (k, (now, was)) in self.managed_kw[step..step + horizon]
            .iter()
            .zip(&before)
            .enumerate()
        {
            if let Some(left) = surplus_left_kw.get_mut(k) {
                *left = (*left - (now - was)).max(0.0);
            }
        }
        Ok(())
    }

    /// The peak headroom learned from the last [`HEADROOM_DAYS`] days (persistence): their
    /// highest load with the devices unmanaged, and per step of the day the highest
    /// inflexible load seen at that time of day (conservative: EV charging and the rest of
    /// the house vary from day to day). `None` on the first day.
    fn learned_headroom(&self, day: usize) -> Option<(f64, Vec<f64>)> {
        let first = day.checked_sub(1)?.saturating_sub(HEADROOM_DAYS - 1);
        let mut peak = 0.0_f64;
        let mut inflex = vec![0.0_f64; self.spd];
        for d in first..day {
            let y = d * self.spd;
            let seen = &self.seen_inflexible_kw[y..y + self.spd];
            let devices = &self.unmanaged_kw[y..y + self.spd];
            for ((slot, i), u) in inflex.iter_mut().zip(seen).zip(devices) {
                *slot = slot.max(*i);
                peak = peak.max(i + u);
            }
        }
        Some((peak, inflex))
    }

    /// The prosumer's load at `step` after the agent, kW. `load_kw` is the load the step
    /// would have without the agent (it contains the devices as the occupants run them).
    pub fn adjust(&mut self, step: usize, load_kw: f64, forecast: &StepForecast<'_>) -> f64 {
        let Some(&unmanaged) = self.unmanaged_kw.get(step) else {
            return load_kw;
        };
        let (out, managed) = if self.cfg.managed {
            let inflexible = (load_kw - unmanaged).max(0.0);
            self.seen_inflexible_kw[step] = inflexible;
            let managed = self.managed_kw[step];
            (inflexible + managed, managed)
        } else {
            (load_kw, unmanaged) // bit for bit
        };
        let adder = if forecast.peak(0) {
            self.cfg.grid_peak_adder_eur_per_mwh
        } else {
            0.0
        };
        let price = StepPrice {
            grid_eur_per_kwh: (forecast.price(0) + adder) / 1000.0,
            surplus_eur_per_kwh: self.settings.surplus_price_eur_per_mwh / 1000.0,
            surplus_kw: padded(forecast.community_surplus_kw, 0).unwrap_or(0.0),
            step_hours: self.dt_h,
        };
        let t = &mut self.totals;
        t.peak_unmanaged_kw = t.peak_unmanaged_kw.max(load_kw);
        t.peak_managed_kw = t.peak_managed_kw.max(out);
        t.shifted_kwh += (managed - unmanaged).max(0.0) * self.dt_h;
        t.cost_unmanaged_eur += energy_cost_eur(&price, unmanaged);
        t.cost_managed_eur += energy_cost_eur(&price, managed);
        t.steps += 1;
        out
    }

    /// What decided the thermal devices' days so far (how often `qp` fell back to
    /// `clarabel`).
    pub fn thermal_solves(&self) -> SolveCounts {
        self.thermal_solves
    }

    /// The figures so far (`savings_eur_per_year` scaled from the steps seen to 365 days).
    pub fn result(&self) -> HomeResult {
        let t = &self.totals;
        let days = (t.steps as f64 * self.dt_h / 24.0).max(1.0 / 24.0);
        let savings = if self.cfg.managed {
            (t.cost_unmanaged_eur - t.cost_managed_eur) * 365.0 / days
        } else {
            0.0
        };
        HomeResult {
            peak_unmanaged_kw: t.peak_unmanaged_kw,
            peak_managed_kw: t.peak_managed_kw,
            shifted_energy_kwh: t.shifted_kwh,
            savings_eur_per_year: savings,
            appliance_runs: self.runs.len(),
            runs_at_usual_time: t.runs_at_usual_time,
        }
    }
}
