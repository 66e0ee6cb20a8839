//! Energy tariffs for the charging site: a flat or time-of-use energy price in EUR/MWh by local
//! hour, plus a monthly demand charge in EUR per kW of peak.
//!
//! Parsing here works on strings given by the caller (CLI flags, scenario fields); no I/O.

use crate::error::EvError;
use crate::model::hour_of_min;
use serde::{Deserialize, Serialize};

/// A time-of-use tariff: 24 hourly prices and a demand charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    /// Energy price for each local hour 0..24.
    pub hourly_price_eur_per_mwh: Vec<f64>,
    /// Charge per kW of the highest aggregate power in each calendar month.
    pub demand_charge_eur_per_kw: f64,
}

/// The currency of a tariff spec's prices and charges: `USD` for `sce-tou-ev-4` (Southern
/// California Edison publishes US dollars; the numbers are kept as published), `EUR` for the
/// user's `flat:` and `tou:` specs. Money computed under the tariff is in this currency.
pub fn currency_of_spec(spec: &str) -> &'static str {
    if spec == "sce-tou-ev-4" { "USD" } else { "EUR" }
}

impl Tariff {
    /// A flat energy price without demand charge.
    pub fn flat(price_eur_per_mwh: f64) -> Self {
        Self {
            hourly_price_eur_per_mwh: vec![price_eur_per_mwh; 24],
            demand_charge_eur_per_kw: 0.0,
        }
    }

    /// The SCE TOU-EV-4 summer weekday schedule used in the ACN-Sim experiments (off-peak
    /// 23-08 h 56.23, mid-peak 08-12 h and 18-23 h 92.50, on-peak 12-18 h 266.68; demand charge
    /// 15.51 per kW-month), with US dollars read as euros so results compare with the papers.
    pub fn sce_tou_ev_4() -> Self {
        let mut p = vec![56.23; 24];
        for (h, v) in p.iter_mut().enumerate() {
            if (8..12).contains(&h) || (18..23).contains(&h) {
                *v = 92.5;
            } else if (12..18).contains(&h) {
                *v = 266.68;
            }
        }
        Self {
            hourly_price_eur_per_mwh: p,
            demand_charge_eur_per_kw: 15.51,
        }
    }

    /// Parse `flat:PRICE`, `tou:H0-H1=PRICE,...` (hours 0..24, must cover the day) or
    /// `sce-tou-ev-4`; prices in EUR/MWh. The demand charge is set separately.
    pub fn parse(spec: &str) -> Result<Self, EvError> {
        let err = |m: String| EvError::Config {
            field: "--tariff".into(),
            message: m,
        };
        if spec == "sce-tou-ev-4" {
            return Ok(Self::sce_tou_ev_4());
        }
        if let Some(p) = spec.strip_prefix("flat:") {
            let v: f64 = p
                .parse()
                .map_err(|_| err(format!("expected flat:PRICE_EUR_PER_MWH, found `{spec}`")))?;
            return Ok(Self::flat(v));
        }
        if let Some(bands) = spec.strip_prefix("tou:") {
            let mut hourly = [f64::NAN; 24];
            for band in bands.split(',') {
                let parsed = band.split_once('=').and_then(|(range, price)| {
                    let (a, b) = range.split_once('-')?;
                    Some((
                        a.parse::<usize>().ok()?,
                        b.parse::<usize>().ok()?,
                        price.parse::<f64>().ok()?,
                    ))
                });
                let (a, b, price) = parsed
                    .ok_or_else(|| err(format!("expected a band H0-H1=PRICE, found `{band}`")))?;
                if a >= b || b > 24 {
                    return Err(err(format!("band `{band}`: need 0 <= H0 < H1 <= 24")));
                }
                for h in hourly.iter_mut().take(b).skip(a) {
                    *h = price;
                }
            }
            if let Some(h) = hourly.iter().position(|p| p.is_nan()) {
                return Err(err(format!("hour {h} is not covered by any band")));
            }
            return Ok(Self {
                hourly_price_eur_per_mwh: hourly.to_vec(),
                demand_charge_eur_per_kw: 0.0,
            });
        }
        Err(err(format!(
            "expected flat:PRICE, tou:H0-H1=PRICE,... or sce-tou-ev-4, found `{spec}`"
        )))
    }

    /// Energy price at a local-timeline minute.
    pub fn price_at(&self, minute: i64) -> f64 {
        self.hourly_price_eur_per_mwh
            .get(usize::from(hour_of_min(minute)))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Calendar month index (year * 12 + month0) of a local-timeline minute, for demand charges.
pub fn month_of_min(minute: i64) -> i64 {
    let days = minute.div_euclid(24 * 60);
    chrono::DateTime::from_timestamp(days * 86_400, 0)
        .map(|d| {
            use chrono::Datelike;
            i64::from(d.year()) * 12 + i64::from(d.month0())
        })
        .unwrap_or(0)
}
