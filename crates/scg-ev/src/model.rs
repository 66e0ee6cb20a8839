//! The physical model: vehicles, charge points, site limits and charging sessions.
//!
//! Plain data with units in the field names. No I/O, no clock, no randomness here: sessions are
//! produced by [`crate::acn`] (replay of real data) or [`crate::synth`] (seeded generator).

use serde::{Deserialize, Serialize};

/// Minutes per hour, named so that conversions read as what they are.
pub const MINUTES_PER_HOUR: f64 = 60.0;

/// One electric vehicle's battery and charging capabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvSpec {
    /// Usable battery capacity.
    pub battery_kwh: f64,
    /// Maximum charging power at the plug (AC or DC, whichever the charge point offers).
    pub max_charge_kw: f64,
    /// Maximum discharging power (V2G); ignored unless `v2g`.
    pub max_discharge_kw: f64,
    /// One-way efficiency between the grid and the battery (same for charge and discharge).
    pub efficiency: f64,
    /// Whether the vehicle (and its charge point) can give energy back.
    pub v2g: bool,
    /// State of charge (0..1) above which the accepted power tapers linearly to zero at 1.0
    /// (the ACN-Sim two-stage battery). 1.0 means no taper.
    pub taper_soc: f64,
}

impl EvSpec {
    /// A vehicle that takes exactly what it is given up to `max_charge_kw` (ACN-Sim's ideal
    /// battery): used for replay of ACN data, where only the energy taken is known.
    pub fn ideal(max_charge_kw: f64) -> Self {
        Self {
            battery_kwh: 0.0,
            max_charge_kw,
            max_discharge_kw: 0.0,
            efficiency: 1.0,
            v2g: false,
            taper_soc: 1.0,
        }
    }

    /// The power the battery accepts at state of charge `soc` (0..1) given the nominal limit.
    pub fn taper_limit_kw(&self, soc: f64) -> f64 {
        if self.taper_soc >= 1.0 || soc <= self.taper_soc {
            self.max_charge_kw
        } else {
            let frac = ((1.0 - soc) / (1.0 - self.taper_soc)).clamp(0.0, 1.0);
            self.max_charge_kw * frac
        }
    }
}

/// Where a charge point is; it decides the usual driver types and the power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargePointKind {
    /// A private wallbox at home.
    Home,
    /// Staff parking at a workplace.
    Workplace,
    /// A public charger (shop, restaurant, street).
    Public,
}

/// One charge point (EVSE) with a single connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargePoint {
    /// Where it is.
    pub kind: ChargePointKind,
    /// Maximum power it delivers.
    pub max_kw: f64,
    /// Whether it can discharge a V2G vehicle.
    pub v2g: bool,
}

/// One charging session: a vehicle plugged in from `arrival_min` to `departure_min`.
///
/// Times are minutes on the site's local wall-clock timeline (a naive timeline: minutes since
/// 1970-01-01 00:00 local, with durations kept exact across daylight-saving changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// A unique id (ACN `session_id` or a generated one).
    pub id: String,
    /// The driver when known (ACN: none; synthetic: the driver's id).
    pub driver_id: Option<String>,
    /// The charge point (ACN `station_id`).
    pub station_id: String,
    /// Plug-in time.
    pub arrival_min: i64,
    /// Actual unplug time.
    pub departure_min: i64,
    /// Energy the vehicle actually takes if given enough time (ACN: `delivered_energy`).
    pub energy_kwh: f64,
    /// The driver's stated departure, if given (can be wrong).
    pub stated_departure_min: Option<i64>,
    /// The driver's stated energy, if given (usually an over-estimate).
    pub stated_energy_kwh: Option<f64>,
    /// The vehicle.
    pub ev: EvSpec,
    /// Battery energy at arrival (0 for ideal ACN vehicles, whose battery is unknown).
    pub initial_energy_kwh: f64,
}

impl Session {
    /// Actual stay in hours.
    pub fn stay_hours(&self) -> f64 {
        (self.departure_min - self.arrival_min) as f64 / MINUTES_PER_HOUR
    }

    /// Stated stay in hours, if the driver stated a departure.
    pub fn stated_stay_hours(&self) -> Option<f64> {
        self.stated_departure_min
            .map(|d| (d - self.arrival_min) as f64 / MINUTES_PER_HOUR)
    }

    /// Battery energy the vehicle wants at departure.
    pub fn target_energy_kwh(&self) -> f64 {
        self.initial_energy_kwh + self.energy_kwh
    }

    /// Day of week of arrival, 0 = Monday.
    pub fn arrival_weekday(&self) -> u8 {
        weekday_of_min(self.arrival_min)
    }

    /// Local hour of arrival, 0..24.
    pub fn arrival_hour(&self) -> u8 {
        hour_of_min(self.arrival_min)
    }
}

/// Day of week (0 = Monday) of a local-timeline minute. 1970-01-01 was a Thursday.
pub fn weekday_of_min(min: i64) -> u8 {
    let day = min.div_euclid(24 * 60);
    // Thursday is index 3 with Monday = 0.
    ((day + 3).rem_euclid(7)) as u8
}

/// Hour of day (0..24) of a local-timeline minute.
pub fn hour_of_min(min: i64) -> u8 {
    (min.rem_euclid(24 * 60) / 60) as u8
}

/// Turn arbitrary sessions into ideal ACN-style ones with V2G-capable batteries, for
/// experiments with V2G on replayed data: capacity `max(battery_kwh, energy / 0.7)`, arrival at
/// 20 % of capacity, so the target (arrival + energy) stays below 90 %.
pub fn with_v2g_batteries(sessions: &mut [Session], battery_kwh: f64, max_discharge_kw: f64) {
    for s in sessions {
        let capacity = battery_kwh.max(s.energy_kwh / 0.7);
        s.ev.battery_kwh = capacity;
        s.ev.v2g = true;
        s.ev.max_discharge_kw = max_discharge_kw;
        s.initial_energy_kwh = 0.2 * capacity;
    }
}
