//! Parsing of ACN-Data session CSV files (Caltech/JPL export format, as shipped in the shared
//! data set) from text already in memory.
//!
//! This module never opens files or decompresses: the caller (the CLI) reads the file, gunzips
//! it if needed, and passes the text. Errors name the 1-based line and the column, and show at
//! most the first 80 characters of a field (`scg_model::bounds::excerpt`).
//!
//! Bounds: a stay (and a stated departure) of at most [`MAX_STAY_MIN`], all sessions within
//! [`MAX_SPAN_DAYS`] of the first arrival, at most [`MAX_SESSIONS`] sessions and
//! `fleet::MAX_VEHICLE_BATTERY_KWH` per session: replaying a session costs memory and time in
//! proportion to its span, so a far-future departure must be an error, not a 7,000-year run.

use crate::error::EvError;
use crate::model::{EvSpec, Session};
use chrono::DateTime;
use scg_model::bounds::excerpt;

/// Longest stay of one session, minutes (14 days; ACN stays are hours, rarely over two days).
pub const MAX_STAY_MIN: i64 = 14 * 24 * 60;
/// Longest span from the first arrival to the last departure, days (10 years).
pub const MAX_SPAN_DAYS: i64 = 3_653;
/// Most sessions in one file (ACN-Data's three sites hold about 70,000 in all).
pub const MAX_SESSIONS: usize = 1_000_000;

/// The columns we need, by header name.
const COLUMNS: [&str; 8] = [
    "arrival",
    "departure",
    "requested_energy (kWh)",
    "delivered_energy (kWh)",
    "station_id",
    "session_id",
    "estimated_departure",
    "claimed",
];

/// Parse an ACN CSV text into sessions, in file order.
///
/// Each vehicle is an ideal battery limited to `max_charge_kw` (ACN's level-2 EVSEs deliver
/// about 6.6 kW: 32 A at 208 V). Times become minutes on the local timeline of each timestamp's
/// own UTC offset, with the stay computed from the absolute instants, so a session spanning a
/// daylight-saving change keeps its true duration.
///
/// The file has no driver id; `driver_id` stays `None` (habits are learned per station).
pub fn parse_acn_csv(text: &str, max_charge_kw: f64) -> Result<Vec<Session>, EvError> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or(EvError::Parse {
        line: 1,
        message: "empty file, expected a header line".into(),
    })?;
    let names: Vec<&str> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(str::trim)
        .collect();
    let mut idx = [0usize; 8];
    for (slot, col) in idx.iter_mut().zip(COLUMNS) {
        *slot = names
            .iter()
            .position(|n| *n == col)
            .ok_or_else(|| EvError::Parse {
                line: 1,
                message: format!(
                    "missing column `{col}` in header (expected {})",
                    COLUMNS.join(",")
                ),
            })?;
    }
    let [
        i_arr,
        i_dep,
        i_req,
        i_del,
        i_station,
        i_id,
        i_est,
        i_claimed,
    ] = idx;
    let mut out = Vec::new();
    let mut span = Span::default();
    for (n, raw) in lines {
        let line = n + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(EvError::Parse {
                line,
                message: format!("expected {} fields, found {}", names.len(), fields.len()),
            });
        }
        let arrival = parse_time(fields[i_arr], line, "arrival")?;
        let departure = parse_time(fields[i_dep], line, "departure")?;
        let arrival_min = local_minute(arrival);
        let stay_min = (departure.timestamp() - arrival.timestamp()).div_euclid(60);
        if stay_min < 0 {
            return Err(EvError::Parse {
                line,
                message: format!(
                    "departure `{}` is before arrival `{}`",
                    excerpt(fields[i_dep]),
                    excerpt(fields[i_arr])
                ),
            });
        }
        if stay_min > MAX_STAY_MIN {
            return Err(EvError::Parse {
                line,
                message: format!(
                    "departure `{}` is {stay_min} minutes after arrival `{}`; a stay may last \
                     at most {MAX_STAY_MIN} minutes (14 days)",
                    excerpt(fields[i_dep]),
                    excerpt(fields[i_arr])
                ),
            });
        }
        span.extend(line, arrival_min, arrival_min + stay_min)?;
        if out.len() >= MAX_SESSIONS {
            return Err(EvError::Parse {
                line,
                message: format!("more than {MAX_SESSIONS} sessions in one file"),
            });
        }
        let delivered = parse_kwh(fields[i_del], line, "delivered_energy (kWh)")?;
        let claimed = match fields[i_claimed] {
            "True" | "true" | "1" => true,
            "False" | "false" | "0" | "" => false,
            other => {
                return Err(EvError::Parse {
                    line,
                    message: format!(
                        "column `claimed`: expected True or False, found `{}`",
                        excerpt(other)
                    ),
                });
            }
        };
        // Unclaimed sessions carry placeholder user inputs; treat them as unstated.
        let (stated_energy_kwh, stated_departure_min) = if claimed {
            let req = parse_kwh(fields[i_req], line, "requested_energy (kWh)")?;
            let est = if fields[i_est].is_empty() {
                None
            } else {
                let t = parse_time(fields[i_est], line, "estimated_departure")?;
                let stated_stay_min = (t.timestamp() - arrival.timestamp()).div_euclid(60);
                if stated_stay_min.abs() > MAX_STAY_MIN {
                    return Err(EvError::Parse {
                        line,
                        message: format!(
                            "column `estimated_departure`: `{}` is {stated_stay_min} minutes \
                             from arrival; at most {MAX_STAY_MIN} (14 days)",
                            excerpt(fields[i_est])
                        ),
                    });
                }
                Some(arrival_min + stated_stay_min)
            };
            (Some(req), est)
        } else {
            (None, None)
        };
        out.push(Session {
            id: fields[i_id].to_string(),
            driver_id: None,
            station_id: fields[i_station].to_string(),
            arrival_min,
            departure_min: arrival_min + stay_min,
            energy_kwh: delivered,
            stated_departure_min,
            stated_energy_kwh,
            ev: EvSpec::ideal(max_charge_kw),
            initial_energy_kwh: 0.0,
        });
    }
    Ok(out)
}

/// The first arrival and last departure so far, to bound the replayed period.
#[derive(Default)]
struct Span {
    first_arrival_min: Option<i64>,
    last_departure_min: Option<i64>,
}

impl Span {
    fn extend(&mut self, line: usize, arrival_min: i64, departure_min: i64) -> Result<(), EvError> {
        let first = self
            .first_arrival_min
            .map_or(arrival_min, |f| f.min(arrival_min));
        let last = self
            .last_departure_min
            .map_or(departure_min, |l| l.max(departure_min));
        if last - first > MAX_SPAN_DAYS * 24 * 60 {
            return Err(EvError::Parse {
                line,
                message: format!(
                    "this session makes the file span {} days (first arrival to last \
                     departure); at most {MAX_SPAN_DAYS} days (10 years)",
                    (last - first) / (24 * 60)
                ),
            });
        }
        self.first_arrival_min = Some(first);
        self.last_departure_min = Some(last);
        Ok(())
    }
}

fn parse_time(
    s: &str,
    line: usize,
    column: &str,
) -> Result<DateTime<chrono::FixedOffset>, EvError> {
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map_err(|e| EvError::Parse {
            line,
            message: format!(
                "column `{column}`: expected a time like 2019-05-01 08:18:44-07:00, found `{}` ({e})",
                excerpt(s)
            ),
        })
}

fn parse_kwh(s: &str, line: usize, column: &str) -> Result<f64, EvError> {
    let v: f64 = s.parse().map_err(|_| EvError::Parse {
        line,
        message: format!(
            "column `{column}`: expected a number of kWh, found `{}`",
            excerpt(s)
        ),
    })?;
    let max = crate::fleet::MAX_VEHICLE_BATTERY_KWH;
    if !v.is_finite() || !(0.0..=max).contains(&v) {
        return Err(EvError::Parse {
            line,
            message: format!("column `{column}`: expected 0 to {max} kWh, found {v}"),
        });
    }
    Ok(v)
}

/// Minutes since 1970-01-01 00:00 on the timestamp's own local wall clock.
fn local_minute(t: DateTime<chrono::FixedOffset>) -> i64 {
    (t.timestamp() + i64::from(t.offset().local_minus_utc())).div_euclid(60)
}

/// Local-timeline minute of midnight at the start of a `YYYY-MM-DD` date (for filtering
/// sessions by arrival date).
pub fn date_start_min(date: &str) -> Result<i64, EvError> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|e| EvError::Config {
        field: "date".into(),
        message: format!("expected YYYY-MM-DD, found `{}` ({e})", excerpt(date)),
    })?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok((d - epoch).num_days() * 24 * 60)
}
