//! Monthly 24-hour load profiles (HOMER's synthetic-load input) and the built-in library.
//!
//! A [`MonthlyProfiles`] holds one weekday and one weekend 24-hour profile (kW) per month — the
//! form of the seed paper's Table II. The built-in library (see `data/NOTICE.md`):
//! - `midrise_apartment`: the seed paper's Table II (Lazaroiu & Roscia);
//! - `quick_service_restaurant`, `small_office`, `supermarket`, `secondary_school`: derived by
//!   [`derive_monthly_profiles`] from the US DOE commercial reference buildings' 8760 hourly
//!   loads for Baltimore (ASHRAE climate zone 4A, the proxy chosen for Bergamo).
//!
//! Never does I/O: CSV text comes in as `&str`.

use crate::ResourceError;
use scg_model::Weekday;

/// Days per month of a 365-day year.
pub const DAYS_IN_MONTH: [usize; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// One weekday and one weekend 24-hour profile per month, in kW.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlyProfiles {
    /// `weekday[month0][hour]`, kW.
    pub weekday_kw: [[f64; 24]; 12],
    /// `weekend[month0][hour]`, kW (Saturday and Sunday).
    pub weekend_kw: [[f64; 24]; 12],
}

impl MonthlyProfiles {
    /// The profile for a month (1..=12) and day type.
    pub fn day(&self, month: u8, weekend: bool) -> &[f64; 24] {
        let m = usize::from(month.clamp(1, 12)) - 1;
        if weekend {
            &self.weekend_kw[m]
        } else {
            &self.weekday_kw[m]
        }
    }

    /// Build from inline tables (12 rows of 24 values); `weekend` defaults to `weekday`.
    /// Shapes are checked by scenario validation; this re-checks and names `source_name`.
    pub fn from_tables(
        weekday: &[Vec<f64>],
        weekend: Option<&[Vec<f64>]>,
        source_name: &str,
    ) -> Result<Self, ResourceError> {
        let weekday_kw = table(weekday, source_name)?;
        let weekend_kw = match weekend {
            Some(w) => table(w, source_name)?,
            None => weekday_kw,
        };
        Ok(Self {
            weekday_kw,
            weekend_kw,
        })
    }

    /// Render as CSV `month,day_type,hour,load_kw` (the form [`parse_profile_csv`] reads).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("month,day_type,hour,load_kw\n");
        for m in 0..12 {
            for (day_type, rows) in [("weekday", &self.weekday_kw), ("weekend", &self.weekend_kw)] {
                for (h, kw) in rows[m].iter().enumerate() {
                    out.push_str(&format!("{},{day_type},{h},{kw:.3}\n", m + 1));
                }
            }
        }
        out
    }
}

fn table(rows: &[Vec<f64>], source_name: &str) -> Result<[[f64; 24]; 12], ResourceError> {
    if rows.len() != 12 || rows.iter().any(|r| r.len() != 24) {
        return Err(ResourceError::invalid(
            source_name,
            "profiles need 12 rows (months) of 24 hourly kW values",
        ));
    }
    let mut out = [[0.0; 24]; 12];
    for (m, row) in rows.iter().enumerate() {
        out[m].copy_from_slice(row);
    }
    Ok(out)
}

/// Parse a profile CSV with the header `month,day_type,hour,load_kw` (more columns allowed).
///
/// `day_type` is `weekday` or `weekend`. All 288 weekday rows are required; weekend rows are
/// all-or-nothing (without them the weekday profile is used every day). Duplicates are errors.
pub fn parse_profile_csv(text: &str, source_name: &str) -> Result<MonthlyProfiles, ResourceError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ResourceError::parse(source_name, 1, e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            ResourceError::parse(
                source_name,
                1,
                format!("missing column `{name}`; expected header month,day_type,hour,load_kw"),
            )
        })
    };
    let (c_month, c_type, c_hour, c_kw) = (
        col("month")?,
        col("day_type")?,
        col("hour")?,
        col("load_kw")?,
    );
    let mut seen = [[[false; 24]; 12]; 2];
    let mut values = [[[0.0f64; 24]; 12]; 2];
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| ResourceError::parse(source_name, line, e.to_string()))?;
        let field = |c: usize| record.get(c).unwrap_or("");
        let month: usize = parse_in(field(c_month), 1, 12, "month", source_name, line)?;
        let hour: usize = parse_in(field(c_hour), 0, 23, "hour", source_name, line)?;
        let kind = match field(c_type) {
            "weekday" => 0,
            "weekend" => 1,
            other => {
                return Err(ResourceError::parse(
                    source_name,
                    line,
                    format!(
                        "day_type must be `weekday` or `weekend`, got {:?}",
                        scg_model::bounds::excerpt(other)
                    ),
                ));
            }
        };
        let kw: f64 = field(c_kw).parse().map_err(|_| {
            ResourceError::parse(
                source_name,
                line,
                format!(
                    "load_kw must be a number, got {:?}",
                    scg_model::bounds::excerpt(field(c_kw))
                ),
            )
        })?;
        if !kw.is_finite() || kw < 0.0 {
            return Err(ResourceError::parse(
                source_name,
                line,
                format!("load_kw must be >= 0, got {kw}"),
            ));
        }
        let slot = &mut seen[kind][month - 1][hour];
        if *slot {
            return Err(ResourceError::parse(
                source_name,
                line,
                format!(
                    "duplicate row for month {month}, {}, hour {hour}",
                    field(c_type)
                ),
            ));
        }
        *slot = true;
        values[kind][month - 1][hour] = kw;
    }
    let count = |k: usize| seen[k].iter().flatten().filter(|s| **s).count();
    if count(0) != 288 {
        return Err(ResourceError::invalid(
            source_name,
            format!(
                "needs 288 weekday rows (12 months x 24 hours), found {}",
                count(0)
            ),
        ));
    }
    let weekend_kw = match count(1) {
        0 => values[0],
        288 => values[1],
        n => {
            return Err(ResourceError::invalid(
                source_name,
                format!("weekend rows are all-or-nothing: found {n} of 288"),
            ));
        }
    };
    Ok(MonthlyProfiles {
        weekday_kw: values[0],
        weekend_kw,
    })
}

fn parse_in(
    text: &str,
    min: usize,
    max: usize,
    what: &str,
    source_name: &str,
    line: usize,
) -> Result<usize, ResourceError> {
    match text.parse::<usize>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(ResourceError::parse(
            source_name,
            line,
            format!(
                "{what} must be an integer in {min}..={max}, got {:?}",
                scg_model::bounds::excerpt(text)
            ),
        )),
    }
}

/// Average an hourly year (8760 kW values) into monthly weekday/weekend 24-hour profiles.
///
/// `first_weekday` is the weekday of the series' first day (the DOE files start on a Sunday).
/// Each profile value is the mean of that hour over the month's days of that type.
pub fn derive_monthly_profiles(
    hourly_kw: &[f64],
    first_weekday: Weekday,
    source_name: &str,
) -> Result<MonthlyProfiles, ResourceError> {
    if hourly_kw.len() != 8760 {
        return Err(ResourceError::invalid(
            source_name,
            format!("needs 8760 hourly values, got {}", hourly_kw.len()),
        ));
    }
    let mut sums = [[[0.0f64; 24]; 12]; 2];
    let mut days = [[0usize; 12]; 2];
    let mut day = 0;
    for (m, &n) in DAYS_IN_MONTH.iter().enumerate() {
        for _ in 0..n {
            let kind = usize::from(Weekday::from_index(first_weekday.index() + day).is_weekend());
            days[kind][m] += 1;
            for h in 0..24 {
                sums[kind][m][h] += hourly_kw[day * 24 + h];
            }
            day += 1;
        }
    }
    let mut out = [[[0.0f64; 24]; 12]; 2];
    for kind in 0..2 {
        for m in 0..12 {
            // Every month of a year has at least 8 weekend days and 20 weekdays.
            let n = days[kind][m].max(1) as f64;
            for h in 0..24 {
                out[kind][m][h] = sums[kind][m][h] / n;
            }
        }
    }
    Ok(MonthlyProfiles {
        weekday_kw: out[0],
        weekend_kw: out[1],
    })
}

/// The CSV text of a built-in profile set, by name (see [`scg_model::builtin::PROFILE_NAMES`]).
pub fn builtin_csv(name: &str) -> Option<&'static str> {
    Some(match name {
        "midrise_apartment" => include_str!("../data/midrise_apartment.csv"),
        "quick_service_restaurant" => include_str!("../data/quick_service_restaurant.csv"),
        "small_office" => include_str!("../data/small_office.csv"),
        "supermarket" => include_str!("../data/supermarket.csv"),
        "secondary_school" => include_str!("../data/secondary_school.csv"),
        _ => return None,
    })
}

/// A built-in profile set, parsed. Each is parsed once per process and then copied: a city's
/// thousands of households name the same few sets.
pub fn builtin(name: &str) -> Result<MonthlyProfiles, ResourceError> {
    use scg_model::builtin::PROFILE_NAMES;
    static PARSED: [std::sync::OnceLock<MonthlyProfiles>; PROFILE_NAMES.len()] =
        [const { std::sync::OnceLock::new() }; PROFILE_NAMES.len()];
    let (Some(i), Some(csv)) = (
        PROFILE_NAMES.iter().position(|n| *n == name),
        builtin_csv(name),
    ) else {
        return Err(ResourceError::invalid(name, "no such built-in profile"));
    };
    if let Some(parsed) = PARSED[i].get() {
        return Ok(parsed.clone());
    }
    let parsed = parse_profile_csv(csv, &format!("built-in profile {name}"))?;
    Ok(PARSED[i].get_or_init(|| parsed).clone())
}
