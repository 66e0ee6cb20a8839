//! A seeded synthetic mobility generator: charging sessions per driver type.
//!
//! Distributions (hours are local clock; N = normal clipped to the stated range, LN = log-normal
//! given by its median and log-standard deviation; energy per km 0.18 kWh):
//!
//! | type | days | plugs in | arrival | departure / stay | daily km |
//! |---|---|---|---|---|---|
//! | commuter (workplace) | Mon–Fri | p = 0.9 | N(8.5, 0.75) in [6, 11] | stay N(8.5, 1.0) in [3, 11] h | LN(60, 0.5) round trip |
//! | resident (home) | every day | p = 0.8 | N(18.5, 1.5) in [14, 23.5] | next day N(7.5, 1.0) in [5, 10] weekdays, N(10, 2) in [7, 14] weekends | LN(35, 0.6) |
//! | fleet (depot) | every day | p = 0.95 | N(17, 0.5) in [15, 19.5] | next day N(6.5, 0.25) in [5.5, 7.5] | LN(120, 0.3) |
//! | shopper (public) | every day | p = 2/7 | uniform [9, 20] | stay exponential, mean 1 h, in [0.25, 3] h | LN(45, 0.7) (tops up that share) |
//!
//! Energy wanted is the daily driving energy, capped at 80 % of the battery; the arrival state of
//! charge is drawn so that the target stays at most 95 %. Drivers' statements are noisy: stated
//! departure = actual + N(0, 1 h); stated energy = actual × U(1.2, 2.0) (ACN-Data drivers over-ask,
//! median delivered/requested ≈ 0.5). No I/O; all randomness from the caller's RNG.

use crate::model::{EvSpec, MINUTES_PER_HOUR, Session};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use serde::{Deserialize, Serialize};

/// Energy per km driven, kWh (a mid-size EV).
pub const KWH_PER_KM: f64 = 0.18;

/// Driver archetypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverType {
    /// Staff charging at a workplace on weekdays.
    Commuter,
    /// Overnight charging at home.
    Resident,
    /// Company vehicles back at the depot every evening.
    Fleet,
    /// Short top-ups at a public charger.
    Shopper,
}

impl DriverType {
    /// Name used in ids and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Commuter => "commuter",
            Self::Resident => "resident",
            Self::Fleet => "fleet",
            Self::Shopper => "shopper",
        }
    }
}

fn clipped_normal<R: Rng + ?Sized>(rng: &mut R, mean: f64, sd: f64, lo: f64, hi: f64) -> f64 {
    Normal::new(mean, sd)
        .map(|d| d.sample(rng))
        .unwrap_or(mean)
        .clamp(lo, hi)
}

fn lognormal<R: Rng + ?Sized>(rng: &mut R, median: f64, sigma: f64) -> f64 {
    LogNormal::new(median.ln(), sigma)
        .map(|d| d.sample(rng))
        .unwrap_or(median)
}

/// Sessions of one driver over `days` days. `day0_min` is the local-timeline minute of
/// midnight of day 0 and `weekday0` its weekday (0 = Monday).
pub fn driver_sessions<R: Rng + ?Sized>(
    rng: &mut R,
    driver: DriverType,
    driver_id: &str,
    ev: &EvSpec,
    day0_min: i64,
    weekday0: u8,
    days: u32,
) -> Vec<Session> {
    let mut out = Vec::new();
    let mut last_departure = i64::MIN;
    for day in 0..days {
        let wd = (u32::from(weekday0) + day) % 7;
        let weekend = wd >= 5;
        let midnight = day0_min + i64::from(day) * 24 * 60;
        let (p_plug, arrival_h, stay_h, km) = match driver {
            DriverType::Commuter => {
                if weekend {
                    continue;
                }
                let a = clipped_normal(rng, 8.5, 0.75, 6.0, 11.0);
                (
                    0.9,
                    a,
                    clipped_normal(rng, 8.5, 1.0, 3.0, 11.0),
                    lognormal(rng, 60.0, 0.5),
                )
            }
            DriverType::Resident => {
                let a = clipped_normal(rng, 18.5, 1.5, 14.0, 23.5);
                let next_weekend = (wd + 1) % 7 >= 5;
                let d = if next_weekend {
                    clipped_normal(rng, 10.0, 2.0, 7.0, 14.0)
                } else {
                    clipped_normal(rng, 7.5, 1.0, 5.0, 10.0)
                };
                (0.8, a, 24.0 - a + d, lognormal(rng, 35.0, 0.6))
            }
            DriverType::Fleet => {
                let a = clipped_normal(rng, 17.0, 0.5, 15.0, 19.5);
                let d = clipped_normal(rng, 6.5, 0.25, 5.5, 7.5);
                (0.95, a, 24.0 - a + d, lognormal(rng, 120.0, 0.3))
            }
            DriverType::Shopper => {
                let a = rng.random_range(9.0..20.0);
                let stay: f64 = Exp::new(1.0_f64)
                    .map(|d| d.sample(rng))
                    .unwrap_or(1.0_f64)
                    .clamp(0.25, 3.0);
                (2.0 / 7.0, a, stay, lognormal(rng, 45.0, 0.7))
            }
        };
        // Draw the statement noise and the arrival state of charge even when the driver does
        // not plug in, so one driver's stream does not shift with another's decisions.
        let plug = rng.random_bool(p_plug);
        let dep_noise_h = clipped_normal(rng, 0.0, 1.0, -4.0, 4.0);
        let over_ask = rng.random_range(1.2..2.0);
        let soc0_draw: f64 = rng.random_range(0.0..1.0);
        let arrival_min = midnight + (arrival_h * MINUTES_PER_HOUR).round() as i64;
        let departure_min = arrival_min + (stay_h * MINUTES_PER_HOUR).round() as i64;
        if !plug || arrival_min < last_departure {
            continue;
        }
        last_departure = departure_min;
        let energy = (km * KWH_PER_KM).min(0.8 * ev.battery_kwh);
        // Arrival energy in [0.1, 0.95·cap − energy].
        let hi = (0.95 * ev.battery_kwh - energy).max(0.1 * ev.battery_kwh);
        let initial = 0.1 * ev.battery_kwh + soc0_draw * (hi - 0.1 * ev.battery_kwh);
        let energy = energy.min(ev.battery_kwh - initial);
        out.push(Session {
            id: format!("{driver_id}-d{day}"),
            driver_id: Some(driver_id.to_string()),
            station_id: String::new(),
            arrival_min,
            departure_min,
            energy_kwh: energy,
            stated_departure_min: Some(departure_min + (dep_noise_h * MINUTES_PER_HOUR) as i64),
            stated_energy_kwh: Some(energy * over_ask),
            ev: ev.clone(),
            initial_energy_kwh: initial,
        });
    }
    out
}
