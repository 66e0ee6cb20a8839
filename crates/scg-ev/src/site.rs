//! One EV charging site as a state machine: vehicles plug in, are shown to a policy, take the
//! power the physics allows, and leave. The one lifecycle shared by the replay of real sessions
//! ([`crate::evaluate`]) and the fleet of the community step ([`crate::fleet`]).
//!
//! Time rounding is ACN-Sim's: a session's arrival and departure minutes are both *floored* to
//! the step grid (`acnsim` converts timestamps with integer division), and the vehicle is
//! present in steps `arrival_step <= k < departure_step`. A session whose two floors coincide
//! never charges.
//!
//! What the policy is told about a plugged vehicle ([`ChargingSite::vehicles`]):
//! - the planned energy still wanted (plan minus what it gained), and, once the plan is met while
//!   the car still draws, a top-up towards the driver's *stated* energy (at least one step at full
//!   power) — the stated request is the upper bound a charge point knows;
//! - ramp-down: a car at its target stops drawing, which the charge point sees (ACN-Sim's rate
//!   estimation), so nothing more is reserved for it;
//! - the battery's upper bound is the energy at which the car stops drawing (its target), so
//!   a V2G car's plan may refill what it gave back;
//! - a planned departure that has passed with the car still there means "leaving after this
//!   step" (measured on Caltech: re-planning with a longer stay let MPC postpone into cheaper
//!   hours and lost 8-10 points of energy).
//!
//! Never does I/O; never sees the true departure or energy except through the sessions it
//! holds for the physics (policies only get [`ActiveEv`]).

use crate::model::{MINUTES_PER_HOUR, Session};
use crate::policy::ActiveEv;
use std::collections::BTreeMap;

/// Step index of a minute, floored (ACN-Sim rounding, for arrivals and departures alike).
#[inline]
pub fn floor_step(minute: i64, step_minutes: i64) -> i64 {
    minute.div_euclid(step_minutes.max(1))
}

/// The lowest energy a V2G vehicle may be discharged to: 20 % of its battery, or its arrival
/// energy if that is lower (0 for vehicles without V2G).
pub fn v2g_floor_kwh(s: &Session) -> f64 {
    if s.ev.v2g {
        (0.2 * s.ev.battery_kwh).min(s.initial_energy_kwh)
    } else {
        0.0
    }
}

/// What the policy plans with for one session: departure minute and energy wanted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionPlan {
    pub departure_min: i64,
    pub energy_kwh: f64,
}

/// A vehicle at the site.
#[derive(Debug, Clone, PartialEq)]
pub struct PluggedEv {
    /// First step present.
    pub arrival_step: i64,
    /// First step absent (exclusive).
    pub departure_step: i64,
    /// Planned departure step (what the policy plans for).
    pub plan_departure_step: i64,
    /// Planned energy to add, kWh.
    pub plan_energy_kwh: f64,
    /// Battery energy now, kWh.
    pub energy_kwh: f64,
    /// Battery energy at which the vehicle stops drawing (arrival + actual energy), kWh.
    pub target_kwh: f64,
    /// V2G floor, kWh.
    pub min_energy_kwh: f64,
}

/// Why a session did not plug in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Plugged in.
    Plugged,
    /// Every charge point was taken.
    NoChargePoint,
    /// Arrival and departure fall in the same step: it would leave before charging.
    TooShort,
}

/// The site's power in one step (all ≥ 0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SitePower {
    /// Charging power at the plugs, kW.
    pub charge_kw: f64,
    /// Power given back by V2G, kW (grid side).
    pub v2g_kw: f64,
    /// Battery energy drawn by V2G (before the discharge loss), kWh — what wears the battery.
    pub v2g_battery_kwh: f64,
}

/// The charging site.
#[derive(Debug, Clone)]
pub struct ChargingSite {
    step_minutes: i64,
    dt_h: f64,
    charge_points: usize,
    plugged: BTreeMap<usize, PluggedEv>,
}

impl ChargingSite {
    /// A site with `charge_points` connectors (`usize::MAX` = one per vehicle, as in a replay)
    /// on a grid of `step_minutes`-minute steps.
    pub fn new(step_minutes: u32, charge_points: usize) -> Self {
        let step_minutes = i64::from(step_minutes.max(1));
        Self {
            step_minutes,
            dt_h: step_minutes as f64 / MINUTES_PER_HOUR,
            charge_points,
            plugged: BTreeMap::new(),
        }
    }

    /// Step length, hours.
    pub fn step_hours(&self) -> f64 {
        self.dt_h
    }

    /// The steps of a session: (first present, first absent).
    pub fn steps_of(&self, s: &Session) -> (i64, i64) {
        (
            floor_step(s.arrival_min, self.step_minutes),
            floor_step(s.departure_min, self.step_minutes),
        )
    }

    /// Vehicles plugged in now.
    pub fn len(&self) -> usize {
        self.plugged.len()
    }

    /// Whether no vehicle is plugged in.
    pub fn is_empty(&self) -> bool {
        self.plugged.is_empty()
    }

    /// Session `key` (`s`) arrives with the policy's `plan`.
    pub fn arrive(&mut self, key: usize, s: &Session, plan: SessionPlan) -> Arrival {
        let (a, d) = self.steps_of(s);
        if d <= a {
            return Arrival::TooShort;
        }
        if self.plugged.len() >= self.charge_points {
            return Arrival::NoChargePoint;
        }
        self.plugged.insert(
            key,
            PluggedEv {
                arrival_step: a,
                departure_step: d,
                plan_departure_step: floor_step(plan.departure_min, self.step_minutes),
                plan_energy_kwh: plan.energy_kwh,
                energy_kwh: s.initial_energy_kwh,
                target_kwh: s.target_energy_kwh(),
                min_energy_kwh: v2g_floor_kwh(s),
            },
        );
        Arrival::Plugged
    }

    /// Remove and return the vehicles whose departure step is at or before `step`, by key.
    pub fn depart(&mut self, step: i64) -> Vec<(usize, PluggedEv)> {
        let gone: Vec<usize> = self
            .plugged
            .iter()
            .filter(|(_, p)| p.departure_step <= step)
            .map(|(k, _)| *k)
            .collect();
        gone.into_iter()
            .filter_map(|k| self.plugged.remove(&k).map(|p| (k, p)))
            .collect()
    }

    /// Remove and return every vehicle (end of the period), by key.
    pub fn drain(&mut self) -> Vec<(usize, PluggedEv)> {
        std::mem::take(&mut self.plugged).into_iter().collect()
    }

    /// What the policy sees of the plugged vehicles at `step` (module docs). `sessions[key]`
    /// is the session of the vehicle plugged under `key`.
    pub fn vehicles(&self, sessions: &[Session], step: i64) -> Vec<ActiveEv> {
        self.plugged
            .iter()
            .filter_map(|(&key, p)| sessions.get(key).map(|s| self.view(key, s, p, step)))
            .collect()
    }

    /// Whether every plugged vehicle has all it wants (the policy is told 0 kWh remaining);
    /// `sessions` as for [`ChargingSite::vehicles`].
    pub fn satisfied(&self, sessions: &[Session]) -> bool {
        self.plugged.iter().all(|(&key, p)| {
            sessions
                .get(key)
                .is_none_or(|s| self.remaining_kwh(s, p) <= 0.0)
        })
    }

    /// The earliest departure step of the plugged vehicles (`i64::MAX` when none is).
    pub fn next_departure_step(&self) -> i64 {
        self.plugged
            .values()
            .map(|p| p.departure_step)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// The energy the policy is told a plugged vehicle still wants, kWh (module docs).
    fn remaining_kwh(&self, s: &Session, p: &PluggedEv) -> f64 {
        let gained = p.energy_kwh - s.initial_energy_kwh;
        let still_taking = p.target_kwh - p.energy_kwh > 1e-6;
        let mut remaining = p.plan_energy_kwh - gained;
        if remaining <= 1e-6 && still_taking {
            let step_kwh = s.ev.max_charge_kw * s.ev.efficiency * self.dt_h;
            remaining = s
                .stated_energy_kwh
                .map_or(0.0, |e| e - gained)
                .max(step_kwh);
        }
        if !still_taking {
            remaining = 0.0;
        }
        remaining.max(0.0)
    }

    fn view(&self, key: usize, s: &Session, p: &PluggedEv, step: i64) -> ActiveEv {
        let remaining = self.remaining_kwh(s, p);
        let soc = if s.ev.battery_kwh > 0.0 {
            p.energy_kwh / s.ev.battery_kwh
        } else {
            0.0
        };
        ActiveEv {
            key,
            arrival_step: p.arrival_step,
            departure_step: p.plan_departure_step.max(step + 1),
            remaining_kwh: remaining,
            max_charge_kw: s.ev.taper_limit_kw(soc),
            max_discharge_kw: if s.ev.v2g { s.ev.max_discharge_kw } else { 0.0 },
            energy_kwh: p.energy_kwh,
            min_energy_kwh: p.min_energy_kwh,
            max_energy_kwh: p.target_kwh,
            efficiency: s.ev.efficiency,
        }
    }

    /// Apply the policy's `rates` (one per entry of `evs`, kW, negative = discharge; missing
    /// = 0) within what each battery accepts, and return the site's power.
    pub fn apply(&mut self, sessions: &[Session], evs: &[ActiveEv], rates: &[f64]) -> SitePower {
        let dt_h = self.dt_h;
        let mut out = SitePower::default();
        for (ev, rate) in evs.iter().zip(rates.iter().chain(std::iter::repeat(&0.0))) {
            let (Some(s), Some(p)) = (sessions.get(ev.key), self.plugged.get_mut(&ev.key)) else {
                continue;
            };
            let eta = s.ev.efficiency.clamp(1e-6, 1.0);
            if *rate >= 0.0 {
                let room = ((p.target_kwh - p.energy_kwh) / (eta * dt_h)).max(0.0);
                let kw = rate.min(ev.max_charge_kw).min(room);
                p.energy_kwh += eta * kw * dt_h;
                out.charge_kw += kw;
            } else if s.ev.v2g {
                let avail = ((p.energy_kwh - p.min_energy_kwh) * eta / dt_h).max(0.0);
                let kw = (-rate).min(s.ev.max_discharge_kw).min(avail);
                p.energy_kwh -= kw * dt_h / eta;
                out.v2g_kw += kw;
                out.v2g_battery_kwh += kw * dt_h / eta;
            }
        }
        out
    }
}
