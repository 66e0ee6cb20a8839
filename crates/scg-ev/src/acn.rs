//! Parsing of ACN-Data session CSV files (Caltech/JPL export format, as shipped in the shared
//! data set) from text already in memory.
//!
//! This module never opens files or decompresses: the caller (the CLI) reads the file, gunzips
//! it if needed, and passes the text. Errors name the 1-based line and the column.

use crate::error::EvError;
use crate::model::{EvSpec, Session};
use chrono::DateTime;

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
                    fields[i_dep], fields[i_arr]
                ),
            });
        }
        let delivered = parse_kwh(fields[i_del], line, "delivered_energy (kWh)")?;
        let claimed = match fields[i_claimed] {
            "True" | "true" | "1" => true,
            "False" | "false" | "0" | "" => false,
            other => {
                return Err(EvError::Parse {
                    line,
                    message: format!("column `claimed`: expected True or False, found `{other}`"),
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
                Some(arrival_min + (t.timestamp() - arrival.timestamp()).div_euclid(60))
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
                "column `{column}`: expected a time like 2019-05-01 08:18:44-07:00, found `{s}` ({e})"
            ),
        })
}

fn parse_kwh(s: &str, line: usize, column: &str) -> Result<f64, EvError> {
    let v: f64 = s.parse().map_err(|_| EvError::Parse {
        line,
        message: format!("column `{column}`: expected a number of kWh, found `{s}`"),
    })?;
    if !v.is_finite() || v < 0.0 {
        return Err(EvError::Parse {
            line,
            message: format!("column `{column}`: expected a non-negative kWh, found `{s}`"),
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
        message: format!("expected YYYY-MM-DD, found `{date}` ({e})"),
    })?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok((d - epoch).num_days() * 24 * 60)
}
