//! Learning drivers' habits online: running quantiles of stay and energy per driver (site-wide when
//! there is no driver id), keyed by weekday and arrival hour when history allows,
//! with a cold start from site-wide statistics and a blend with what the driver stated.
//!
//! Quantiles use the P² algorithm (Jain & Chlamtac, CACM 28(10), 1985): five markers per
//! quantile, constant memory, no stored samples. Everything here is causal: a session is
//! observed only after it ends. No I/O, no clock.

use crate::model::{MINUTES_PER_HOUR, Session};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BinaryHeap};

/// A P² running estimate of one quantile.
#[derive(Debug, Clone, PartialEq)]
pub struct P2Quantile {
    p: f64,
    count: usize,
    heights: [f64; 5],
    positions: [f64; 5],
    desired: [f64; 5],
    increments: [f64; 5],
}

impl P2Quantile {
    /// An empty estimator of quantile `p` (0 < p < 1).
    pub fn new(p: f64) -> Self {
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        Self {
            p,
            count: 0,
            heights: [0.0; 5],
            positions: [1.0, 2.0, 3.0, 4.0, 5.0],
            desired: [1.0, 1.0 + 2.0 * p, 1.0 + 4.0 * p, 3.0 + 2.0 * p, 5.0],
            increments: [0.0, p / 2.0, p, (1.0 + p) / 2.0, 1.0],
        }
    }

    /// Number of observations.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Add one observation (non-finite values are ignored).
    pub fn observe(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.count < 5 {
            self.heights[self.count] = x;
            self.count += 1;
            if self.count == 5 {
                self.heights.sort_by(f64::total_cmp);
            }
            return;
        }
        self.count += 1;
        let h = &mut self.heights;
        let k = if x < h[0] {
            h[0] = x;
            0
        } else if x >= h[4] {
            h[4] = x;
            3
        } else {
            (0..4).find(|&i| x < h[i + 1]).unwrap_or(3)
        };
        for pos in self.positions.iter_mut().skip(k + 1) {
            *pos += 1.0;
        }
        for (d, inc) in self.desired.iter_mut().zip(self.increments) {
            *d += inc;
        }
        let n = &mut self.positions;
        for i in 1..4 {
            let d = self.desired[i] - n[i];
            if (d >= 1.0 && n[i + 1] - n[i] > 1.0) || (d <= -1.0 && n[i - 1] - n[i] < -1.0) {
                let d = d.signum();
                let parabolic = h[i]
                    + d / (n[i + 1] - n[i - 1])
                        * ((n[i] - n[i - 1] + d) * (h[i + 1] - h[i]) / (n[i + 1] - n[i])
                            + (n[i + 1] - n[i] - d) * (h[i] - h[i - 1]) / (n[i] - n[i - 1]));
                h[i] = if h[i - 1] < parabolic && parabolic < h[i + 1] {
                    parabolic
                } else {
                    let j = if d > 0.0 { i + 1 } else { i - 1 };
                    h[i] + d * (h[j] - h[i]) / (n[j] - n[i])
                };
                n[i] += d;
            }
        }
    }

    /// The current estimate (`None` before the first observation). With fewer than five
    /// observations it is the exact sample quantile (linear interpolation).
    pub fn estimate(&self) -> Option<f64> {
        match self.count {
            0 => None,
            c if c < 5 => {
                let mut v = self.heights[..c].to_vec();
                v.sort_by(f64::total_cmp);
                let pos = self.p * (c - 1) as f64;
                let lo = pos.floor() as usize;
                let hi = pos.ceil() as usize;
                Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
            }
            _ => Some(self.heights[2]),
        }
    }
}

/// Settings of the habit learner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HabitParams {
    /// Quantile of the stay that plans are made against (low: plan for an early departure).
    pub stay_quantile: f64,
    /// Quantile of energy that plans are made against (high, capped by the stated request).
    pub energy_quantile: f64,
    /// Observations needed before a more specific key is trusted.
    pub min_history: usize,
    /// Weight of the driver's statement, in sessions' worth of history: with `n` learned
    /// sessions the learned value gets `n / (n + stated_weight)`.
    pub stated_weight: f64,
    /// Weight of site-wide (not personal) learned values against the statement, 0..1.
    pub site_weight: f64,
    /// Step of the online calibration of the low stay quantile, hours per session (0 = off).
    pub calibration_step_hours: f64,
    /// Step of the online calibration of the high energy quantile, kWh per session.
    pub calibration_step_kwh: f64,
    /// Stay assumed with no history at all, hours.
    pub default_stay_hours: f64,
    /// Energy assumed with no history at all, kWh.
    pub default_energy_kwh: f64,
}

impl Default for HabitParams {
    fn default() -> Self {
        Self {
            stay_quantile: 0.1,
            energy_quantile: 0.9,
            min_history: 5,
            stated_weight: 2.0,
            site_weight: 0.5,
            calibration_step_hours: 0.05,
            calibration_step_kwh: 0.5,
            default_stay_hours: 4.0,
            default_energy_kwh: 10.0,
        }
    }
}

#[derive(Debug, Clone)]
struct Stats {
    stay_low: P2Quantile,
    stay_median: P2Quantile,
    energy_median: P2Quantile,
    energy_high: P2Quantile,
}

impl Stats {
    fn new(params: &HabitParams) -> Self {
        Self {
            stay_low: P2Quantile::new(params.stay_quantile),
            stay_median: P2Quantile::new(0.5),
            energy_median: P2Quantile::new(0.5),
            energy_high: P2Quantile::new(params.energy_quantile),
        }
    }
    fn observe(&mut self, stay_h: f64, energy_kwh: f64) {
        self.stay_low.observe(stay_h);
        self.stay_median.observe(stay_h);
        self.energy_median.observe(energy_kwh);
        self.energy_high.observe(energy_kwh);
    }
    fn count(&self) -> usize {
        self.stay_median.count()
    }
}

/// Which level of history a prediction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HabitLevel {
    /// The driver on this weekday at this arrival hour.
    DriverWeekdayHour,
    /// The driver, any time.
    Driver,
    /// The whole site on this weekday at this arrival hour.
    SiteWeekdayHour,
    /// The whole site at this arrival hour (cold start).
    SiteHour,
    /// The whole site.
    Site,
    /// No history at all: the configured defaults.
    Default,
}

/// A prediction for one arriving session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HabitPrediction {
    /// Learned median stay, hours (not blended).
    pub stay_median_hours: f64,
    /// Learned low quantile of stay, hours (not blended).
    pub stay_low_hours: f64,
    /// Learned median energy, kWh.
    pub energy_median_kwh: f64,
    /// Learned high quantile of energy, kWh.
    pub energy_high_kwh: f64,
    /// Point forecast of stay blended with the statement, hours.
    pub stay_blend_hours: f64,
    /// Point forecast of energy blended with the statement, kWh.
    pub energy_blend_kwh: f64,
    /// Stay to plan against: the low quantile, blended towards the statement, hours.
    pub stay_plan_hours: f64,
    /// Energy to plan against: the high quantile capped by the statement, kWh.
    pub energy_plan_kwh: f64,
    /// Where the learned values came from.
    pub level: HabitLevel,
    /// History behind the learned values.
    pub history: usize,
}

/// The online learner.
#[derive(Debug, Clone)]
pub struct HabitLearner {
    params: HabitParams,
    /// Per driver id (borrowed lookups: no key is built per session).
    drivers: BTreeMap<String, DriverStats>,
    /// The whole site per (weekday, arrival hour).
    site_slots: BTreeMap<(u8, u8), Stats>,
    by_hour: BTreeMap<u8, Stats>,
    site: Stats,
    /// Online calibration offsets (adaptive conformal inference, Gibbs & Candès, NeurIPS
    /// 2021): subtracted from the low stay quantile, added to the high energy quantile.
    stay_offset_hours: f64,
    energy_offset_kwh: f64,
}

/// A driver's statistics: all its sessions, and per (weekday, arrival hour).
#[derive(Debug, Clone)]
struct DriverStats {
    all: Stats,
    slots: BTreeMap<(u8, u8), Stats>,
}

/// The personal key habits are learned under. ACN data has no driver id, and a station is
/// shared by many drivers, so without a driver id only site-wide statistics are used (a
/// measured choice: per-station quantiles did worse than per-arrival-hour ones on Caltech).
fn driver_key(s: &Session) -> Option<&str> {
    s.driver_id.as_deref()
}

impl HabitLearner {
    /// A learner with no history.
    pub fn new(params: HabitParams) -> Self {
        let site = Stats::new(&params);
        Self {
            params,
            drivers: BTreeMap::new(),
            site_slots: BTreeMap::new(),
            by_hour: BTreeMap::new(),
            site,
            stay_offset_hours: 0.0,
            energy_offset_kwh: 0.0,
        }
    }

    /// Learn from a finished session.
    pub fn observe(&mut self, s: &Session) {
        let (stay, energy) = (s.stay_hours(), s.energy_kwh);
        // Calibrate first: did the current quantiles cover this session? Each miss pushes the
        // offset out, each hit pulls it in, so misses settle at the nominal rate.
        let pred = self.predict(s);
        let p = &self.params;
        let stay_miss = f64::from(u8::from(stay < pred.stay_low_hours));
        self.stay_offset_hours = (self.stay_offset_hours
            + p.calibration_step_hours * (stay_miss - p.stay_quantile))
            .max(-24.0);
        let energy_miss = f64::from(u8::from(energy > pred.energy_high_kwh));
        self.energy_offset_kwh = (self.energy_offset_kwh
            + p.calibration_step_kwh * (energy_miss - (1.0 - p.energy_quantile)))
            .max(-100.0);
        let (wd, h) = (s.arrival_weekday(), s.arrival_hour());
        if let Some(key) = driver_key(s) {
            if !self.drivers.contains_key(key) {
                let fresh = DriverStats {
                    all: Stats::new(p),
                    slots: BTreeMap::new(),
                };
                self.drivers.insert(key.to_string(), fresh);
            }
            if let Some(driver) = self.drivers.get_mut(key) {
                driver
                    .slots
                    .entry((wd, h))
                    .or_insert_with(|| Stats::new(p))
                    .observe(stay, energy);
                driver.all.observe(stay, energy);
            }
        }
        self.site_slots
            .entry((wd, h))
            .or_insert_with(|| Stats::new(p))
            .observe(stay, energy);
        self.by_hour
            .entry(h)
            .or_insert_with(|| Stats::new(p))
            .observe(stay, energy);
        self.site.observe(stay, energy);
    }

    /// Predict stay and energy for an arriving session from history and its statements (the
    /// true departure and energy are not looked at).
    pub fn predict(&self, s: &Session) -> HabitPrediction {
        let p = &self.params;
        let (wd, h) = (s.arrival_weekday(), s.arrival_hour());
        let enough = |st: &&Stats| st.count() >= p.min_history;
        let driver = driver_key(s).and_then(|key| self.drivers.get(key));
        // Most specific first; a driver without history has no entries (None).
        let candidates: [(HabitLevel, Option<&Stats>); 5] = [
            (
                HabitLevel::DriverWeekdayHour,
                driver.and_then(|d| d.slots.get(&(wd, h))),
            ),
            (HabitLevel::Driver, driver.map(|d| &d.all)),
            (HabitLevel::SiteWeekdayHour, self.site_slots.get(&(wd, h))),
            (HabitLevel::SiteHour, self.by_hour.get(&h)),
            (HabitLevel::Site, Some(&self.site)),
        ];
        let found = candidates
            .into_iter()
            .find_map(|(lvl, st)| st.filter(enough).map(|st| (lvl, st)));
        let (level, stay_med, stay_low, e_med, e_high, history) = match found {
            Some((lvl, st)) => (
                lvl,
                st.stay_median.estimate().unwrap_or(p.default_stay_hours),
                (st.stay_low.estimate().unwrap_or(p.default_stay_hours) - self.stay_offset_hours)
                    .max(0.0),
                st.energy_median.estimate().unwrap_or(p.default_energy_kwh),
                (st.energy_high.estimate().unwrap_or(p.default_energy_kwh)
                    + self.energy_offset_kwh)
                    .max(0.0),
                st.count(),
            ),
            None => (
                HabitLevel::Default,
                p.default_stay_hours,
                p.default_stay_hours,
                p.default_energy_kwh,
                p.default_energy_kwh,
                0,
            ),
        };
        // Personal history earns weight with its size; site-wide history gets a fixed weight.
        let personal = matches!(level, HabitLevel::DriverWeekdayHour | HabitLevel::Driver);
        let w = if personal {
            let n = history as f64;
            n / (n + p.stated_weight.max(0.0))
        } else {
            p.site_weight.clamp(0.0, 1.0)
        };
        let stated_stay = s.stated_stay_hours().filter(|h| *h > 0.0);
        let blend = |learned: f64, stated: Option<f64>| match stated {
            Some(v) => w * learned + (1.0 - w) * v,
            None => learned,
        };
        let stay_blend = blend(stay_med, stated_stay);
        // The low quantile is blended with the statement only downwards: an early statement
        // shortens the plan, a late one does not stretch it beyond the learned low quantile
        // unless the learned values are personal.
        let stay_plan = match stated_stay {
            Some(v) if !personal => stay_low.min(v),
            _ => blend(stay_low, stated_stay.map(|v| v.min(stay_blend))),
        };
        let energy_blend = blend(e_med, s.stated_energy_kwh);
        let energy_plan = match s.stated_energy_kwh {
            Some(v) => e_high.min(v),
            None => e_high,
        };
        HabitPrediction {
            stay_median_hours: stay_med,
            stay_low_hours: stay_low,
            energy_median_kwh: e_med,
            energy_high_kwh: e_high,
            stay_blend_hours: stay_blend.max(0.0),
            energy_blend_kwh: energy_blend.max(0.0),
            stay_plan_hours: stay_plan.max(0.0),
            energy_plan_kwh: energy_plan.max(0.0),
            level,
            history,
        }
    }
}

/// Quality of the learned habits on a session set, trained causally.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HabitReport {
    /// Sessions scored (those with both a stated departure and a stated energy).
    pub sessions_scored: usize,
    /// MAE of the drivers' own stated stay against the actual stay, hours.
    pub stay_mae_hours_stated: f64,
    /// MAE of the learned median stay, hours.
    pub stay_mae_hours_learned: f64,
    /// MAE of the blended stay forecast, hours.
    pub stay_mae_hours_blended: f64,
    /// MAE of the drivers' stated energy against the energy taken, kWh.
    pub energy_mae_kwh_stated: f64,
    /// MAE of the learned median energy, kWh.
    pub energy_mae_kwh_learned: f64,
    /// MAE of the blended energy forecast, kWh.
    pub energy_mae_kwh_blended: f64,
    /// Nominal quantile of the low stay estimate.
    pub stay_quantile: f64,
    /// Share of sessions whose actual stay is at least the learned low quantile, % (nominal
    /// `100·(1 − stay_quantile)`).
    pub stay_low_coverage_pct: f64,
    /// Share of sessions whose actual stay is at least the planned stay, %.
    pub stay_plan_coverage_pct: f64,
    /// Nominal quantile of the high energy estimate.
    pub energy_quantile: f64,
    /// Share of sessions whose energy is at most the learned high quantile, %.
    pub energy_high_coverage_pct: f64,
    /// Share of sessions predicted from the driver's/station's own history, %.
    pub personal_history_pct: f64,
}

/// Score the learner on `sessions` causally: before predicting a session, the learner has
/// seen exactly the sessions that departed before it arrived.
pub fn evaluate_habits(sessions: &[Session], params: &HabitParams) -> HabitReport {
    let mut order: Vec<usize> = (0..sessions.len()).collect();
    order.sort_by_key(|&i| (sessions[i].arrival_min, i));
    let mut learner = HabitLearner::new(params.clone());
    // Min-heap of (departure, index) of sessions not yet observed.
    let mut pending: BinaryHeap<std::cmp::Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut n = 0usize;
    let mut sums = [0.0f64; 6];
    let (mut cov_low, mut cov_plan, mut cov_e, mut personal) = (0usize, 0usize, 0usize, 0usize);
    for i in order {
        let s = &sessions[i];
        while let Some(std::cmp::Reverse((dep, j))) = pending.peek().copied() {
            if dep > s.arrival_min {
                break;
            }
            pending.pop();
            learner.observe(&sessions[j]);
        }
        pending.push(std::cmp::Reverse((s.departure_min, i)));
        let (Some(stated_stay), Some(stated_e)) = (s.stated_stay_hours(), s.stated_energy_kwh)
        else {
            continue;
        };
        let pred = learner.predict(s);
        let stay = s.stay_hours();
        n += 1;
        sums[0] += (stated_stay - stay).abs();
        sums[1] += (pred.stay_median_hours - stay).abs();
        sums[2] += (pred.stay_blend_hours - stay).abs();
        sums[3] += (stated_e - s.energy_kwh).abs();
        sums[4] += (pred.energy_median_kwh - s.energy_kwh).abs();
        sums[5] += (pred.energy_blend_kwh - s.energy_kwh).abs();
        cov_low += usize::from(stay >= pred.stay_low_hours);
        cov_plan += usize::from(stay >= pred.stay_plan_hours);
        cov_e += usize::from(s.energy_kwh <= pred.energy_high_kwh);
        personal += usize::from(matches!(
            pred.level,
            HabitLevel::DriverWeekdayHour | HabitLevel::Driver
        ));
    }
    let d = n.max(1) as f64;
    let pct = |c: usize| 100.0 * c as f64 / d;
    HabitReport {
        sessions_scored: n,
        stay_mae_hours_stated: sums[0] / d,
        stay_mae_hours_learned: sums[1] / d,
        stay_mae_hours_blended: sums[2] / d,
        energy_mae_kwh_stated: sums[3] / d,
        energy_mae_kwh_learned: sums[4] / d,
        energy_mae_kwh_blended: sums[5] / d,
        stay_quantile: params.stay_quantile,
        stay_low_coverage_pct: pct(cov_low),
        stay_plan_coverage_pct: pct(cov_plan),
        energy_quantile: params.energy_quantile,
        energy_high_coverage_pct: pct(cov_e),
        personal_history_pct: pct(personal),
    }
}

/// Convert a predicted stay to a planned departure minute.
pub fn planned_departure_min(arrival_min: i64, stay_hours: f64) -> i64 {
    arrival_min + (stay_hours * MINUTES_PER_HOUR).round() as i64
}

/// One finished charging session as the peak learner sees it (steps on the site's grid).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakSession {
    /// First step present.
    pub start_step: i64,
    /// Step after the last one present.
    pub end_step: i64,
    /// Energy it took, kWh into the battery.
    pub energy_kwh: f64,
    /// Its charging power limit, kW.
    pub max_charge_kw: f64,
    /// One-way efficiency.
    pub efficiency: f64,
}

/// The lowest peak that would have served `sessions` in full (or as well as the site limit
/// allows) with perfect hindsight: one LP (`solve_plan` with no energy price and a unit
/// demand charge), kW.
pub fn hindsight_peak_kw(
    sessions: &[PeakSession],
    step_hours: f64,
    site_limit_kw: f64,
) -> Result<f64, crate::EvError> {
    use crate::mpc::{MpcParams, PlanEv, PlanProblem, solve_plan};
    let (Some(k0), Some(k1)) = (
        sessions.iter().map(|s| s.start_step).min(),
        sessions.iter().map(|s| s.end_step).max(),
    ) else {
        return Ok(0.0);
    };
    let steps = (k1 - k0).max(0) as usize;
    let problem = PlanProblem {
        steps,
        step_hours,
        step_scale: Vec::new(),
        evs: sessions
            .iter()
            .map(|s| PlanEv {
                start: (s.start_step - k0) as usize,
                end: (s.end_step - k0).max(s.start_step - k0) as usize,
                need_kwh: s.energy_kwh.max(0.0),
                max_charge_kw: s.max_charge_kw,
                max_discharge_kw: 0.0,
                energy_kwh: 0.0,
                min_energy_kwh: 0.0,
                max_energy_kwh: 0.0,
                efficiency: s.efficiency,
                value_weight: 1.0,
                scenario: None,
            })
            .collect(),
        price_eur_per_mwh: vec![0.0; steps],
        site_limit_kw,
        demand_charge_eur_per_kw: 1.0,
        quick_charge_eur_per_kwh: 0.0,
        peak_group: vec![0; steps],
        prev_peak_kw: vec![0.0],
        reserve: None,
        tail: None,
        scenarios: None,
    };
    let sol = solve_plan(&problem, &MpcParams::default())?;
    let mut agg = vec![0.0; steps];
    for (ev, c) in problem.evs.iter().zip(&sol.charge_kw) {
        for (k, p) in c.iter().enumerate() {
            agg[ev.start + k] += p;
        }
    }
    Ok(agg.iter().copied().fold(0.0, f64::max))
}

/// Learns the peak a billing period will need: the hindsight-lowest peak of each past day
/// ([`hindsight_peak_kw`]), remembered for `memory_days` days; the target is the largest of
/// them (a month's demand charge is set by its worst day).
#[derive(Debug, Clone, PartialEq)]
pub struct PeakLearner {
    memory_days: usize,
    daily_kw: std::collections::VecDeque<(i64, f64)>,
}

impl PeakLearner {
    /// A learner that remembers `memory_days` days of daily peaks.
    pub fn new(memory_days: usize) -> Self {
        Self {
            memory_days: memory_days.max(1),
            daily_kw: std::collections::VecDeque::new(),
        }
    }

    /// Record day `day`'s hindsight peak.
    pub fn observe_day(&mut self, day: i64, peak_kw: f64) {
        if !peak_kw.is_finite() {
            return;
        }
        self.daily_kw.push_back((day, peak_kw));
        while self
            .daily_kw
            .front()
            .is_some_and(|(d, _)| day - d >= self.memory_days as i64)
        {
            self.daily_kw.pop_front();
        }
    }

    /// The peak target, kW (0 before any day was seen).
    pub fn target_kw(&self) -> f64 {
        self.daily_kw.iter().map(|d| d.1).fold(0.0, f64::max)
    }

    /// Days remembered.
    pub fn days(&self) -> usize {
        self.daily_kw.len()
    }
}

/// `sessions` on a grid of `step_minutes` as the peak learner sees them, by arrival day
/// (arrival ceiled and departure floored to the grid, as the site plugs them in; sessions
/// shorter than a step are left out), in day order. Each session's energy is what it could
/// take on that grid (its power limit for its whole stay, times its efficiency), at most:
/// ACN records what a session took at its real charger, which can be more than the model's
/// power limit allows in its stay, and the online learner, which records what a vehicle
/// took, never sees more than that either.
pub fn peak_sessions_by_day(
    sessions: &[Session],
    step_minutes: u32,
) -> BTreeMap<i64, Vec<PeakSession>> {
    let dt = i64::from(step_minutes.max(1));
    let mut by_day: BTreeMap<i64, Vec<PeakSession>> = BTreeMap::new();
    for s in sessions {
        let a = s.arrival_min.div_euclid(dt) + i64::from(s.arrival_min.rem_euclid(dt) != 0);
        let d = s.departure_min.div_euclid(dt);
        if d <= a {
            continue;
        }
        let step_hours = dt as f64 / MINUTES_PER_HOUR;
        let takeable_kwh =
            s.ev.max_charge_kw.max(0.0) * s.ev.efficiency * (d - a) as f64 * step_hours;
        by_day
            .entry(s.arrival_min.div_euclid(MINUTES_PER_DAY))
            .or_default()
            .push(PeakSession {
                start_step: a,
                end_step: d,
                energy_kwh: s.energy_kwh.min(takeable_kwh),
                max_charge_kw: s.ev.max_charge_kw,
                efficiency: s.ev.efficiency,
            });
    }
    by_day
}

/// Daily hindsight peaks of `sessions` on a grid of `step_minutes` (each session counted on
/// its arrival day), for learning a peak target from history: `(day, kW)` in day order.
pub fn daily_hindsight_peaks(
    sessions: &[Session],
    step_minutes: u32,
    site_limit_kw: f64,
) -> Result<Vec<(i64, f64)>, crate::EvError> {
    let dt = i64::from(step_minutes.max(1));
    peak_sessions_by_day(sessions, step_minutes)
        .into_iter()
        .map(|(day, list)| {
            Ok((
                day,
                hindsight_peak_kw(&list, dt as f64 / MINUTES_PER_HOUR, site_limit_kw)?,
            ))
        })
        .collect()
}

const MINUTES_PER_DAY: i64 = 24 * 60;

/// Whether local day `day` (days since 1970-01-01, a Thursday) is a Saturday or Sunday.
fn is_weekend(day: i64) -> bool {
    (day + 3).rem_euclid(7) >= 5
}

/// The arrivals expected in one hour of one day: how many (a mean, may be fractional), with
/// the mean energy, stay and power limit of the sessions seen arriving in that hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpectedArrivals {
    /// Mean number of sessions arriving in the hour per day of the same kind.
    pub sessions_per_day: f64,
    /// Mean energy they took, kWh into the battery.
    pub energy_kwh: f64,
    /// Mean stay, steps.
    pub stay_steps: f64,
    /// Mean charging power limit, kW.
    pub max_charge_kw: f64,
    /// Mean one-way efficiency.
    pub efficiency: f64,
}

/// Learns when vehicles arrive, from the sessions that ended: for weekdays and weekend days
/// apart and for each local arrival hour, the mean number of arrivals per day and their mean
/// energy, stay and power limit over the last `memory_days` days. The MPC turns it into
/// pseudo-sessions for the arrivals still to come (see [`crate::mpc::MpcParams`]). Causal:
/// only finished sessions are observed. Days within the remembered span with no session
/// count as days with no arrivals.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalProfile {
    memory_days: usize,
    step_minutes: i64,
    /// Observed sessions with their arrival day.
    sessions: std::collections::VecDeque<(i64, PeakSession)>,
    first_day: Option<i64>,
    last_day: Option<i64>,
}

impl ArrivalProfile {
    /// A profile remembering `memory_days` days of sessions on a grid of `step_minutes`.
    pub fn new(memory_days: usize, step_minutes: u32) -> Self {
        Self {
            memory_days: memory_days.max(1),
            step_minutes: i64::from(step_minutes.max(1)),
            sessions: std::collections::VecDeque::new(),
            first_day: None,
            last_day: None,
        }
    }

    /// Record finished sessions (steps on this profile's grid); `through_day` is the last day
    /// whose arrivals are now all known (days up to it without a session count as empty).
    pub fn observe(&mut self, sessions: &[PeakSession], through_day: i64) {
        for s in sessions {
            let day = (s.start_step * self.step_minutes).div_euclid(MINUTES_PER_DAY);
            self.sessions.push_back((day, *s));
            self.first_day = Some(self.first_day.map_or(day, |d| d.min(day)));
        }
        let last = self.last_day.map_or(through_day, |d| d.max(through_day));
        self.last_day = Some(last);
        let oldest = last - self.memory_days as i64 + 1;
        self.sessions.retain(|(d, _)| *d >= oldest);
        self.first_day = self.first_day.map(|d| d.max(oldest));
    }

    /// Whether anything was learned.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The arrivals expected on local day `day` in local hour `hour` (0..24); `None` when no
    /// day of that kind is remembered or no session arrived in that hour.
    pub fn expected(&self, day: i64, hour: i64) -> Option<ExpectedArrivals> {
        let (first, last) = (self.first_day?, self.last_day?);
        let weekend = is_weekend(day);
        let days = (first..=last).filter(|d| is_weekend(*d) == weekend).count();
        if days == 0 {
            return None;
        }
        summarize(
            self.sessions
                .iter()
                .filter(|(d, s)| is_weekend(*d) == weekend && self.minute_of_day(s) / 60 == hour)
                .map(|(_, s)| s),
            days as f64,
        )
    }

    /// The `index`-th most recent remembered day (0 = the latest) of the same kind
    /// (weekday/weekend) as `day` and before it, counted modulo the number of such days
    /// remembered: the source day of scenario `index` for `day`
    /// ([`crate::mpc::MpcParams::forecast_scenarios`]). `None` when no such day is
    /// remembered.
    pub fn scenario_day(&self, day: i64, index: usize) -> Option<i64> {
        let (first, last) = (self.first_day?, self.last_day?.min(day - 1));
        let weekend = is_weekend(day);
        let kind: Vec<i64> = (first..=last)
            .rev()
            .filter(|d| is_weekend(*d) == weekend)
            .collect();
        (!kind.is_empty()).then(|| kind[index % kind.len()])
    }

    /// The sessions that arrived on remembered day `day` between local minutes `from_min`
    /// and `to_min` of the day (`[from, to)`), summed: their number, mean energy, stay and
    /// power limit. `None` when none did.
    pub fn arrived_on(&self, day: i64, from_min: i64, to_min: i64) -> Option<ExpectedArrivals> {
        summarize(self.sessions_on(day, from_min, to_min).map(|(_, s)| s), 1.0)
    }

    /// The sessions that arrived on remembered day `day` between local minutes `from_min`
    /// and `to_min` of the day (`[from, to)`), each with its arrival minute of the day.
    pub fn sessions_on(
        &self,
        day: i64,
        from_min: i64,
        to_min: i64,
    ) -> impl Iterator<Item = (i64, &PeakSession)> {
        self.sessions.iter().filter_map(move |(d, s)| {
            let m = self.minute_of_day(s);
            (*d == day && m >= from_min && m < to_min).then_some((m, s))
        })
    }

    fn minute_of_day(&self, s: &PeakSession) -> i64 {
        (s.start_step * self.step_minutes).rem_euclid(MINUTES_PER_DAY)
    }
}

/// Mean energy, stay, power limit and efficiency of `sessions`, and their number per day
/// over `days` days; `None` for no session.
fn summarize<'a>(
    sessions: impl Iterator<Item = &'a PeakSession>,
    days: f64,
) -> Option<ExpectedArrivals> {
    let (mut n, mut e, mut stay, mut kw, mut eta) = (0usize, 0.0, 0.0, 0.0, 0.0);
    for s in sessions {
        n += 1;
        e += s.energy_kwh;
        stay += (s.end_step - s.start_step) as f64;
        kw += s.max_charge_kw;
        eta += s.efficiency;
    }
    if n == 0 {
        return None;
    }
    let k = n as f64;
    Some(ExpectedArrivals {
        sessions_per_day: k / days,
        energy_kwh: e / k,
        stay_steps: stay / k,
        max_charge_kw: kw / k,
        efficiency: eta / k,
    })
}
