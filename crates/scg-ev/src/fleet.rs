//! The fleet simulator for the community step: one prosumer's EVs, charge points and battery
//! swap station, driven by a policy, step by step or for a whole year.
//!
//! Scenario-facing configuration is [`FleetConfig`] (serde, `deny_unknown_fields`, units in
//! names), meant to be embedded as `prosumers[i].ev`. Sessions are generated once from the
//! seed ([`crate::synth`]); the drivers' habits are learned online ([`crate::habits`]) and the
//! policy plans against them. No I/O, no clock.
//!
//! ```
//! use scg_ev::fleet::{Fleet, FleetConfig, FleetTime, StepSignals};
//!
//! let cfg: FleetConfig = toml::from_str(r#"
//!     commuters = 4
//!     charge_points = 4
//!     charge_point_kw = 7.4
//!     v2g_share = 0.5
//!     policy = "mpc"
//! "#).expect("valid config");
//! let time = FleetTime { step_minutes: 60, steps: 24 * 7, start_weekday: 0 };
//! let mut fleet = Fleet::new(&cfg, time, 42).expect("valid fleet");
//! // Step by step, as the community loop does:
//! for t in 0..24 {
//!     let price = if (8..20).contains(&(t % 24)) { 180.0 } else { 60.0 };
//!     let p = fleet.step(t, &StepSignals::now(price, false)).expect("step");
//!     assert!(p.charge_kw >= 0.0 && p.v2g_kw >= 0.0);
//! }
//! // Or the rest of the period at once, with a price series (EUR/MWh) and grid-peak flags:
//! let prices = vec![100.0; 24 * 7];
//! let peaks = vec![false; 24 * 7];
//! let rest = fleet.run(&prices, &peaks).expect("run");
//! assert_eq!(rest.len(), 24 * 6);
//! for d in fleet.departures() {
//!     assert!(d.energy_kwh <= d.wanted_energy_kwh + 1e-6);
//! }
//! ```

use crate::error::EvError;
use crate::habits::{HabitLearner, HabitParams, planned_departure_min};
use crate::model::{EvSpec, MINUTES_PER_HOUR, Session};
use crate::mpc::MpcParams;
use crate::policy::{Policy, SellOffer, StepContext, policy_by_name};
use crate::site::{Arrival, ChargingSite, SessionPlan, floor_step};
use crate::synth::{DriverType, driver_sessions};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};
use std::collections::BinaryHeap;

/// A prosumer's EV fleet, as written in the scenario (`prosumers[i].ev`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Staff cars charging on weekdays (office, school).
    #[serde(default)]
    pub commuters: u32,
    /// Private cars charging overnight (apartments).
    #[serde(default)]
    pub residents: u32,
    /// Company vehicles back every evening.
    #[serde(default)]
    pub fleet_vehicles: u32,
    /// Distinct customers who top up at public chargers (each visits about twice a week).
    #[serde(default)]
    pub shoppers: u32,
    /// Number of charge points (a car that finds none free does not charge).
    pub charge_points: u32,
    /// Power of each charge point, kW.
    pub charge_point_kw: f64,
    /// Share of vehicles (0..1) that can do V2G (the charge points are assumed bidirectional).
    #[serde(default)]
    pub v2g_share: f64,
    /// Battery of each vehicle, kWh.
    #[serde(default = "default_battery_kwh")]
    pub battery_kwh: f64,
    /// Limit on the fleet's aggregate power (import and export), kW; none when absent.
    #[serde(default)]
    pub site_limit_kw: Option<f64>,
    /// Charging policy: uncontrolled, fcfs, edf, llf, round-robin or mpc.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// Battery wear cost per kWh discharged by V2G.
    #[serde(default = "default_wear")]
    pub wear_cost_eur_per_kwh: f64,
    /// Demand charge per kW of peak that the policy plans against (peak shaving).
    #[serde(default)]
    pub demand_charge_eur_per_kw: f64,
    /// A battery-swap station at this prosumer.
    #[serde(default)]
    pub swap_station: Option<SwapStationConfig>,
}

fn default_battery_kwh() -> f64 {
    60.0
}
fn default_policy() -> String {
    "mpc".into()
}
fn default_wear() -> f64 {
    0.05
}

/// A battery-swap station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapStationConfig {
    /// Packs in inventory (full or charging).
    pub packs: u32,
    /// Capacity of each pack, kWh.
    pub pack_kwh: f64,
    /// Pack chargers.
    pub chargers: u32,
    /// Power of each pack charger, kW.
    pub charger_kw: f64,
    /// Expected swaps per day (Poisson, spread over 07:00–21:00).
    pub swaps_per_day: f64,
    /// Wanted share of swaps that find a full pack (0..1): sets how many packs are kept full
    /// ahead of the next hours' forecast demand even when energy is expensive.
    #[serde(default = "default_service_level")]
    pub service_level: f64,
}

fn default_service_level() -> f64 {
    0.95
}

/// Vehicles of one fleet (commuters + residents + fleet vehicles + shoppers): each draws a
/// year of sessions and may be planned at every step (docs/scenario.md gives the cost).
pub const MAX_VEHICLES: u64 = 5_000;
/// Charge points of one fleet.
pub const MAX_CHARGE_POINTS: u32 = 5_000;
/// Packs, and pack chargers, of one battery-swap station.
pub const MAX_SWAP_PACKS: u32 = 10_000;
/// Power of a charge point or pack charger, kW (a megawatt charger is the largest built).
pub const MAX_CHARGER_KW: f64 = 1_000.0;
/// Battery of a vehicle or a swap pack, kWh (a heavy truck carries ~1 MWh).
pub const MAX_VEHICLE_BATTERY_KWH: f64 = 2_000.0;
/// Swaps a station may expect per day.
pub const MAX_SWAPS_PER_DAY: f64 = 100_000.0;

impl FleetConfig {
    /// Vehicles of all kinds.
    pub fn vehicles(&self) -> u64 {
        [
            self.commuters,
            self.residents,
            self.fleet_vehicles,
            self.shoppers,
        ]
        .iter()
        .map(|n| u64::from(*n))
        .sum()
    }

    /// Check ranges; every problem is reported with its field path under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<(), EvError> {
        let bad = |f: &str, m: &str| {
            Err(EvError::Config {
                field: format!("{prefix}.{f}"),
                message: m.into(),
            })
        };
        let pos = |x: f64| x > 0.0 && x.is_finite();
        let in_range = |x: f64, max: f64| pos(x) && x <= max;
        if self.vehicles() > MAX_VEHICLES {
            // Name the largest group: that is the number to change.
            let groups = [
                ("commuters", self.commuters),
                ("residents", self.residents),
                ("fleet_vehicles", self.fleet_vehicles),
                ("shoppers", self.shoppers),
            ];
            let largest = groups
                .iter()
                .max_by_key(|g| g.1)
                .map_or("residents", |g| g.0);
            return bad(
                largest,
                &format!(
                    "commuters + residents + fleet_vehicles + shoppers must be at most \
                     {MAX_VEHICLES}, got {}",
                    self.vehicles()
                ),
            );
        }
        if self.charge_points > MAX_CHARGE_POINTS {
            return bad(
                "charge_points",
                &format!(
                    "must be at most {MAX_CHARGE_POINTS}, got {}",
                    self.charge_points
                ),
            );
        }
        if !in_range(self.charge_point_kw, MAX_CHARGER_KW) {
            return bad(
                "charge_point_kw",
                &format!(
                    "must be > 0 and at most {MAX_CHARGER_KW} kW, got {}",
                    self.charge_point_kw
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.v2g_share) {
            return bad("v2g_share", "must be between 0 and 1");
        }
        if !in_range(self.battery_kwh, MAX_VEHICLE_BATTERY_KWH) {
            return bad(
                "battery_kwh",
                &format!(
                    "must be > 0 and at most {MAX_VEHICLE_BATTERY_KWH} kWh, got {}",
                    self.battery_kwh
                ),
            );
        }
        if let Some(l) = self.site_limit_kw
            && !pos(l)
        {
            return bad("site_limit_kw", "must be a positive number of kW");
        }
        let money = |x: f64| (0.0..=1.0e6).contains(&x);
        if !(money(self.wear_cost_eur_per_kwh) && money(self.demand_charge_eur_per_kw)) {
            return bad(
                "wear_cost_eur_per_kwh",
                "costs must be between 0 and 1000000 EUR",
            );
        }
        if self.policy == "offline-optimal" {
            return bad(
                "policy",
                "offline-optimal needs the whole period; use it in `scg ev evaluate`",
            );
        }
        policy_by_name(&self.policy, &MpcParams::default()).map_err(|e| EvError::Config {
            field: format!("{prefix}.policy"),
            message: e.to_string(),
        })?;
        if let Some(s) = &self.swap_station {
            for (field, n) in [("packs", s.packs), ("chargers", s.chargers)] {
                if n == 0 || n > MAX_SWAP_PACKS {
                    return bad(
                        &format!("swap_station.{field}"),
                        &format!("must be between 1 and {MAX_SWAP_PACKS}, got {n}"),
                    );
                }
            }
            if !in_range(s.pack_kwh, MAX_VEHICLE_BATTERY_KWH) {
                return bad(
                    "swap_station.pack_kwh",
                    &format!(
                        "must be > 0 and at most {MAX_VEHICLE_BATTERY_KWH} kWh, got {}",
                        s.pack_kwh
                    ),
                );
            }
            if !in_range(s.charger_kw, MAX_CHARGER_KW) {
                return bad(
                    "swap_station.charger_kw",
                    &format!(
                        "must be > 0 and at most {MAX_CHARGER_KW} kW, got {}",
                        s.charger_kw
                    ),
                );
            }
            if !(0.0..=MAX_SWAPS_PER_DAY).contains(&s.swaps_per_day) {
                return bad(
                    "swap_station.swaps_per_day",
                    &format!(
                        "must be between 0 and {MAX_SWAPS_PER_DAY}, got {}",
                        s.swaps_per_day
                    ),
                );
            }
            if !(0.0..=1.0).contains(&s.service_level) {
                return bad("swap_station.service_level", "must be between 0 and 1");
            }
        }
        Ok(())
    }
}

/// The simulation calendar as the fleet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetTime {
    /// Step length, minutes (divides a day).
    pub step_minutes: u32,
    /// Number of steps (a year: 8,760 at 60 minutes).
    pub steps: usize,
    /// Weekday of step 0 (0 = Monday); step 0 starts at midnight.
    pub start_weekday: u8,
}

/// What the community tells the fleet at a step.
#[derive(Debug, Clone, Copy)]
pub struct StepSignals<'a> {
    /// Energy price now, EUR/MWh.
    pub price_eur_per_mwh: f64,
    /// Whether the main grid is at peak now.
    pub grid_peak: bool,
    /// Price forecast from this step on (may be empty: the current price is assumed to hold).
    pub price_forecast_eur_per_mwh: &'a [f64],
    /// Grid-peak forecast from this step on (may be empty).
    pub grid_peak_forecast: &'a [bool],
}

impl StepSignals<'static> {
    /// Signals with no forecast.
    pub fn now(price_eur_per_mwh: f64, grid_peak: bool) -> Self {
        Self {
            price_eur_per_mwh,
            grid_peak,
            price_forecast_eur_per_mwh: &[],
            grid_peak_forecast: &[],
        }
    }
}

/// The fleet's power at one step (all ≥ 0; the prosumer's net EV load is
/// `charge_kw + swap_kw − v2g_kw`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EvStepPower {
    /// Charging power of plugged-in vehicles, kW.
    pub charge_kw: f64,
    /// Power given back by V2G vehicles, kW.
    pub v2g_kw: f64,
    /// Charging power of the swap station's pack chargers, kW.
    pub swap_kw: f64,
    /// Vehicles plugged in.
    pub plugged_in: u32,
    /// Battery wear of this step's V2G, EUR.
    pub degradation_cost_eur: f64,
    /// Swaps requested in this step.
    pub swaps_requested: u32,
    /// Swaps that found no full pack.
    pub swaps_missed: u32,
    /// V2G energy the policy plans to sell (offers for the market).
    pub sell_offers: Vec<SellOffer>,
}

/// One vehicle leaving: what it got versus what it wanted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepartureRecord {
    /// Session id.
    pub session_id: String,
    /// Driver type.
    pub driver_type: DriverType,
    /// Step at which it left.
    pub step: usize,
    /// Battery energy at departure, kWh.
    pub energy_kwh: f64,
    /// Battery energy wanted at departure, kWh.
    pub wanted_energy_kwh: f64,
    /// State of charge at departure (0..1).
    pub soc: f64,
    /// State of charge wanted (0..1).
    pub wanted_soc: f64,
    /// Whether it found a free charge point.
    pub got_charge_point: bool,
}

#[derive(Debug, Clone)]
struct Swap {
    cfg: SwapStationConfig,
    packs_kwh: Vec<f64>,
}

/// The fleet simulator.
#[derive(Debug)]
pub struct Fleet {
    time: FleetTime,
    dt_h: f64,
    base_min: i64,
    site_limit_kw: f64,
    demand_charge_eur_per_kw: f64,
    wear_cost_eur_per_kwh: f64,
    sessions: Vec<Session>,
    types: Vec<DriverType>,
    next_session: usize,
    site: ChargingSite,
    to_learn: BinaryHeap<std::cmp::Reverse<(i64, usize)>>,
    learner: HabitLearner,
    policy: Box<dyn Policy>,
    swap: Option<Swap>,
    swap_rng: ChaCha8Rng,
    peak_kw: f64,
    next_t: usize,
    /// Steps before this one rest ([`Fleet::quiet_until`]).
    quiet_until: usize,
    departures: Vec<DepartureRecord>,
}

impl Fleet {
    /// Whether its policy solves an optimisation problem to decide (MPC): a step that can
    /// cost milliseconds, worth spreading over threads, where a rule's costs a microsecond.
    pub fn solves_plans(&self) -> bool {
        self.policy.solves().is_some()
    }

    /// Build a fleet and generate its year of sessions from `seed`.
    pub fn new(cfg: &FleetConfig, time: FleetTime, seed: u64) -> Result<Self, EvError> {
        cfg.validate("ev")?;
        if time.step_minutes == 0 || 1440 % time.step_minutes != 0 {
            return Err(EvError::Config {
                field: "step_minutes".into(),
                message: format!("must divide a day, found {}", time.step_minutes),
            });
        }
        let dt_min = i64::from(time.step_minutes);
        // 1970-01-05 was a Monday; start on the wanted weekday so weekday keys are right.
        let base_min = (4 + i64::from(time.start_weekday % 7)) * 1440;
        let days = ((time.steps as i64 * dt_min + 1439) / 1440 + 1) as u32;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut sessions = Vec::new();
        let mut types = Vec::new();
        let groups = [
            (DriverType::Commuter, cfg.commuters),
            (DriverType::Resident, cfg.residents),
            (DriverType::Fleet, cfg.fleet_vehicles),
            (DriverType::Shopper, cfg.shoppers),
        ];
        for (ty, count) in groups {
            for i in 0..count {
                let v2g = rng.random_bool(cfg.v2g_share);
                let ev = EvSpec {
                    battery_kwh: cfg.battery_kwh,
                    max_charge_kw: cfg.charge_point_kw,
                    max_discharge_kw: if v2g { cfg.charge_point_kw } else { 0.0 },
                    efficiency: 0.95,
                    v2g,
                    taper_soc: 0.8,
                };
                let id = format!("{}-{i}", ty.name());
                // One stream per driver: adding a driver does not change the others.
                let mut drng = ChaCha8Rng::seed_from_u64(seed ^ hash_id(&id));
                let s =
                    driver_sessions(&mut drng, ty, &id, &ev, base_min, time.start_weekday, days);
                types.extend(std::iter::repeat_n(ty, s.len()));
                sessions.extend(s);
            }
        }
        // Keep the sessions that arrive within the period (arrival floored to a step).
        let end_step = base_min / dt_min + time.steps as i64;
        let mut order: Vec<usize> = (0..sessions.len())
            .filter(|&i| floor_step(sessions[i].arrival_min, dt_min) < end_step)
            .collect();
        order.sort_by_key(|&i| (sessions[i].arrival_min, i));
        let sessions: Vec<Session> = order.iter().map(|&i| sessions[i].clone()).collect();
        let types: Vec<DriverType> = order.iter().map(|&i| types[i]).collect();
        let mpc = MpcParams {
            wear_cost_eur_per_kwh: cfg.wear_cost_eur_per_kwh,
            max_horizon_steps: (24 * 60 / dt_min) as usize,
            ..MpcParams::default()
        };
        let policy = policy_by_name(&cfg.policy, &mpc)?;
        let swap = cfg.swap_station.as_ref().map(|s| Swap {
            cfg: s.clone(),
            packs_kwh: vec![s.pack_kwh; s.packs as usize],
        });
        Ok(Self {
            time,
            dt_h: dt_min as f64 / MINUTES_PER_HOUR,
            base_min,
            site_limit_kw: cfg.site_limit_kw.unwrap_or(f64::INFINITY),
            demand_charge_eur_per_kw: cfg.demand_charge_eur_per_kw,
            wear_cost_eur_per_kwh: cfg.wear_cost_eur_per_kwh,
            sessions,
            types,
            next_session: 0,
            site: ChargingSite::new(time.step_minutes, cfg.charge_points as usize),
            to_learn: BinaryHeap::new(),
            learner: HabitLearner::new(HabitParams::default()),
            policy,
            swap,
            swap_rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(0x05ee_d5a9)),
            peak_kw: 0.0,
            next_t: 0,
            quiet_until: 0,
            departures: Vec::new(),
        })
    }

    /// All generated sessions (sorted by arrival).
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// Vehicles that have left so far, with state of charge at departure vs wanted.
    pub fn departures(&self) -> &[DepartureRecord] {
        &self.departures
    }

    /// The fleet rests until this step: every step from the next one up to it (exclusive)
    /// changes nothing and gives [`Fleet::resting`], so a caller may skip them and step this
    /// one next. A fleet rests when its policy gives 0 kW to vehicles that want nothing
    /// ([`Policy::rests_when_satisfied`]) and offers nothing, it has no swap station, and
    /// every plugged vehicle has all it wants; it wakes for the next arrival, departure or
    /// departure to learn from, and for the last step (which drains the site).
    pub fn quiet_until(&self) -> usize {
        self.quiet_until
    }

    /// What a resting step gives: the plugged vehicles, no power.
    pub fn resting(&self) -> EvStepPower {
        EvStepPower {
            plugged_in: self.site.len() as u32,
            ..EvStepPower::default()
        }
    }

    /// Advance one step. `t` must be the next step (0, 1, 2, ...), or a later one up to
    /// [`Fleet::quiet_until`] when the steps in between rest.
    pub fn step(&mut self, t: usize, signals: &StepSignals<'_>) -> Result<EvStepPower, EvError> {
        if t < self.next_t || t > self.next_t.max(self.quiet_until) || t >= self.time.steps {
            return Err(EvError::Config {
                field: "step".into(),
                message: format!(
                    "expected step {} (of {}), got {t}",
                    self.next_t, self.time.steps
                ),
            });
        }
        self.next_t = t + 1;
        if t < self.quiet_until {
            return Ok(self.resting());
        }
        let out = self.step_awake(t, signals);
        self.quiet_until = self.rest_after(t);
        out
    }

    /// The first step after `t` that must run: `t + 1` unless the fleet rests
    /// ([`Fleet::quiet_until`]).
    fn rest_after(&self, t: usize) -> usize {
        let last = self.time.steps.saturating_sub(1);
        let rests = self.swap.is_none()
            && self.policy.rests_when_satisfied()
            && self.policy.sell_offers().is_empty()
            && self.site.satisfied(&self.sessions);
        if !rests || t + 1 >= last {
            return t + 1;
        }
        let dt_min = i64::from(self.time.step_minutes);
        let base = self.base_min / dt_min;
        let arrival = self
            .sessions
            .get(self.next_session)
            .map_or(i64::MAX, |s| floor_step(s.arrival_min, dt_min));
        // A departure is learned from at the first step whose start is at or after it.
        let learn = self
            .to_learn
            .peek()
            .map_or(i64::MAX, |r| (r.0.0 + dt_min - 1).div_euclid(dt_min));
        let wake = arrival.min(learn).min(self.site.next_departure_step());
        let wake_t = usize::try_from(wake.saturating_sub(base)).unwrap_or(0);
        wake_t.clamp(t + 1, last)
    }

    fn step_awake(&mut self, t: usize, signals: &StepSignals<'_>) -> Result<EvStepPower, EvError> {
        let dt_min = i64::from(self.time.step_minutes);
        let step = self.base_min / dt_min + t as i64;
        let now_min = step * dt_min;
        while let Some(std::cmp::Reverse((dep, j))) = self.to_learn.peek().copied() {
            if dep > now_min {
                break;
            }
            self.to_learn.pop();
            self.learner.observe(&self.sessions[j]);
        }
        // Departures first, so their charge points free up for arrivals.
        for (i, p) in self.site.depart(step) {
            self.record(i, t, p.energy_kwh, true);
        }
        // Arrivals.
        while let Some(s) = self.sessions.get(self.next_session) {
            if floor_step(s.arrival_min, dt_min) > step {
                break;
            }
            let i = self.next_session;
            self.next_session += 1;
            self.to_learn.push(std::cmp::Reverse((s.departure_min, i)));
            let pred = self.learner.predict(s);
            let plan = SessionPlan {
                departure_min: planned_departure_min(s.arrival_min, pred.stay_plan_hours),
                energy_kwh: pred.energy_plan_kwh,
            };
            if self.site.arrive(i, s, plan) != Arrival::Plugged {
                let e = s.initial_energy_kwh;
                self.record(i, t, e, false);
            }
        }
        let evs = self.site.vehicles(&self.sessions, step);
        let price_now = [signals.price_eur_per_mwh];
        let peak_now = [signals.grid_peak];
        let ctx = StepContext {
            step,
            step_hours: self.dt_h,
            evs: &evs,
            site_limit_kw: self.site_limit_kw,
            price_eur_per_mwh: if signals.price_forecast_eur_per_mwh.is_empty() {
                &price_now
            } else {
                signals.price_forecast_eur_per_mwh
            },
            grid_peak: if signals.grid_peak_forecast.is_empty() {
                &peak_now
            } else {
                signals.grid_peak_forecast
            },
            demand_charge_eur_per_kw: self.demand_charge_eur_per_kw,
            peak_so_far_kw: self.peak_kw,
        };
        let rates = if evs.is_empty() {
            Vec::new()
        } else {
            self.policy.schedule(&ctx)?
        };
        let mut out = EvStepPower {
            plugged_in: evs.len() as u32,
            sell_offers: self.policy.sell_offers().to_vec(),
            ..EvStepPower::default()
        };
        let power = self.site.apply(&self.sessions, &evs, &rates);
        out.charge_kw = power.charge_kw;
        out.v2g_kw = power.v2g_kw;
        out.degradation_cost_eur = self.wear_cost_eur_per_kwh * power.v2g_battery_kwh;
        self.swap_step(t, signals, &mut out);
        self.peak_kw = self.peak_kw.max(out.charge_kw - out.v2g_kw);
        if t + 1 == self.time.steps {
            // End of the period: everyone still plugged in leaves now.
            for (i, p) in self.site.drain() {
                self.record(i, t, p.energy_kwh, true);
            }
        }
        Ok(out)
    }

    /// Run all remaining steps with per-step prices (EUR/MWh) and grid-peak flags indexed by
    /// step from 0 (so the same full-year series can be passed after some `step` calls).
    /// The policy sees the series ahead as a perfect forecast.
    pub fn run(&mut self, prices: &[f64], peaks: &[bool]) -> Result<Vec<EvStepPower>, EvError> {
        if prices.len() < self.time.steps {
            return Err(EvError::Config {
                field: "prices".into(),
                message: format!("need {} steps, got {}", self.time.steps, prices.len()),
            });
        }
        let mut out = Vec::with_capacity(self.time.steps - self.next_t);
        for t in self.next_t..self.time.steps {
            let signals = StepSignals {
                price_eur_per_mwh: prices[t],
                grid_peak: peaks.get(t).copied().unwrap_or(false),
                price_forecast_eur_per_mwh: &prices[t..],
                grid_peak_forecast: peaks.get(t..).unwrap_or(&[]),
            };
            out.push(self.step(t, &signals)?);
        }
        Ok(out)
    }

    fn record(&mut self, i: usize, t: usize, energy_kwh: f64, got: bool) {
        let s = &self.sessions[i];
        let cap = s.ev.battery_kwh.max(1e-9);
        self.departures.push(DepartureRecord {
            session_id: s.id.clone(),
            driver_type: self.types[i],
            step: t,
            energy_kwh,
            wanted_energy_kwh: s.target_energy_kwh(),
            soc: energy_kwh / cap,
            wanted_soc: s.target_energy_kwh() / cap,
            got_charge_point: got,
        });
    }

    /// The swap station: Poisson swap requests 07:00–21:00; a swap takes the fullest pack and
    /// leaves one at 20 %. Chargers serve the fullest non-full packs first (fast turnover). When
    /// energy is cheap (at or below the forecast's mean) or the grid is not at peak and full
    /// packs are short of the service target, all chargers run; otherwise only enough to keep
    /// the target of full packs for the next 4 hours' expected swaps at the service level.
    fn swap_step(&mut self, t: usize, signals: &StepSignals<'_>, out: &mut EvStepPower) {
        let Some(sw) = self.swap.as_mut() else {
            return;
        };
        let dt_min = i64::from(self.time.step_minutes);
        let hour = ((t as i64 * dt_min).rem_euclid(1440) / 60) as u32;
        let per_hour = sw.cfg.swaps_per_day / 14.0;
        let lambda = if (7..21).contains(&hour) {
            per_hour * self.dt_h
        } else {
            0.0
        };
        let n = if lambda > 0.0 {
            Poisson::new(lambda)
                .map(|d| d.sample(&mut self.swap_rng))
                .unwrap_or(0.0) as u32
        } else {
            0
        };
        let full_at = 0.95 * sw.cfg.pack_kwh;
        for _ in 0..n {
            out.swaps_requested += 1;
            let best = sw
                .packs_kwh
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, e)| (i, *e));
            match best {
                Some((i, e)) if e >= full_at => sw.packs_kwh[i] = 0.2 * sw.cfg.pack_kwh,
                _ => out.swaps_missed += 1,
            }
        }
        let full = sw.packs_kwh.iter().filter(|e| **e >= full_at).count() as f64;
        let target = (per_hour * 4.0 / (1.0 - sw.cfg.service_level).max(0.05).sqrt()).ceil();
        let forecast = signals.price_forecast_eur_per_mwh;
        let mean = if forecast.is_empty() {
            signals.price_eur_per_mwh
        } else {
            let h = forecast.len().min((1440 / dt_min) as usize);
            forecast[..h].iter().sum::<f64>() / h as f64
        };
        let cheap = signals.price_eur_per_mwh <= mean && !signals.grid_peak;
        let mut chargers = if cheap {
            sw.cfg.chargers as usize
        } else {
            ((target - full).max(0.0) as usize).min(sw.cfg.chargers as usize)
        };
        let mut order: Vec<usize> = (0..sw.packs_kwh.len())
            .filter(|&i| sw.packs_kwh[i] < sw.cfg.pack_kwh - 1e-9)
            .collect();
        order.sort_by(|&a, &b| sw.packs_kwh[b].total_cmp(&sw.packs_kwh[a]));
        for i in order {
            if chargers == 0 {
                break;
            }
            chargers -= 1;
            let room = (sw.cfg.pack_kwh - sw.packs_kwh[i]) / (0.95 * self.dt_h);
            let kw = sw.cfg.charger_kw.min(room);
            sw.packs_kwh[i] += 0.95 * kw * self.dt_h;
            out.swap_kw += kw;
        }
    }
}

/// A stable 64-bit hash of an id (FNV-1a), for per-driver seeds.
fn hash_id(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
