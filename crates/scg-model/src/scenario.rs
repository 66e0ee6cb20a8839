//! The scenario schema. Field names carry their units; every struct rejects unknown fields.
//!
//! The schema is documented field by field here and in `docs/scenario.md`; the built-in
//! scenario (`scg scenario default`) is a commented example of all of it.

use crate::error::{ModelError, ValidationError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::PathBuf;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// A community to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// A short human name, shown in reports.
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub location: Location,
    pub time: TimeSettings,
    /// The members of the community, each with its load (and, in later versions, its assets).
    pub prosumers: Vec<Prosumer>,
}

/// Where the community is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Degrees north (negative south), in [-90, 90].
    pub latitude_deg: f64,
    /// Degrees east (negative west), in [-180, 180].
    pub longitude_deg: f64,
    /// Metres above sea level.
    pub elevation_m: f64,
    /// IANA time zone name, e.g. `Europe/Rome`. The simulation runs on the zone's *standard*
    /// time (no daylight saving), as HOMER and TMY weather files do.
    pub time_zone: String,
}

/// The simulation clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSettings {
    /// Length of one step: 60 or 15.
    pub step_minutes: u32,
    /// The calendar year whose weekdays the simulation follows, or `"homer"` for HOMER's
    /// convention (the year 2007: 1 January is a Monday, 365 days).
    #[serde(default)]
    pub model_year: ModelYear,
}

/// `"homer"` or a calendar year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelYear {
    /// HOMER's calendar: 1 January is a Monday (model year 2007).
    #[default]
    Homer,
    /// A real calendar year; must not be a leap year (scg years have 365 days, as HOMER's).
    Year(i32),
}

impl Serialize for ModelYear {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ModelYear::Homer => serializer.serialize_str("homer"),
            ModelYear::Year(y) => serializer.serialize_i32(*y),
        }
    }
}

impl<'de> Deserialize<'de> for ModelYear {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ModelYear;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"homer\" or a year such as 2025")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ModelYear, E> {
                if v == "homer" {
                    Ok(ModelYear::Homer)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ModelYear, E> {
                i32::try_from(v)
                    .map(ModelYear::Year)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ModelYear, E> {
                i32::try_from(v)
                    .map(ModelYear::Year)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One member of the community.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prosumer {
    /// Unique, stable id: lower-case letters, digits, `_` and `-` (it names CSV columns).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub load: Load,
}

/// An electric load: a HOMER synthetic load or an imported time series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Load {
    /// Monthly 24-hour profiles perturbed by HOMER's random variability, then scaled.
    Synthetic(SyntheticLoad),
    /// A measured or simulated series, scaled only (no noise), as HOMER treats imported data.
    TimeSeries(TimeSeriesLoad),
}

/// HOMER synthetic load inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticLoad {
    /// Name of a built-in profile set (see [`crate::builtin::PROFILE_NAMES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// A CSV file `month,day_type,hour,load_kw[,...]` (the form of the seed paper's Table II).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_file: Option<PathBuf>,
    /// Inline profiles: 12 rows (January..December) of 24 hourly kW values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_kw: Option<InlineProfiles>,
    /// Standard deviation of the daily perturbation δ_d, in percent (HOMER's "day-to-day").
    #[serde(default)]
    pub day_to_day_variability_pct: f64,
    /// Standard deviation of the per-step perturbation δ_ts, in percent (HOMER's "timestep").
    #[serde(default)]
    pub timestep_variability_pct: f64,
    /// Scaled annual average in kWh/day; absent means the baseline average (HOMER's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled_average_kwh_per_day: Option<f64>,
}

/// Inline monthly profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineProfiles {
    /// 12 × 24 kW, used on weekdays (and on weekends when `weekend` is absent).
    pub weekday: Vec<Vec<f64>>,
    /// 12 × 24 kW for Saturdays and Sundays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekend: Option<Vec<Vec<f64>>>,
}

/// An imported load series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSeriesLoad {
    /// A CSV file: one numeric column of 8760 (hourly) or 35040 (15-minute) kW values, with or
    /// without a header, or an OpenEI CSV with an `Electricity:Facility [kW](Hourly)` column.
    /// Relative paths are relative to the scenario file.
    pub file: PathBuf,
    /// Column to read when the file has several; default: the OpenEI column or the only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Scaled annual average in kWh/day; absent means the file's own average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled_average_kwh_per_day: Option<f64>,
}

impl Scenario {
    /// Parse and validate a scenario. `source_name` (usually the file path) prefixes every error.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Self, ModelError> {
        let scenario = parse(text, source_name)?;
        let errors = crate::validate::validate(&scenario);
        if errors.is_empty() {
            Ok(scenario)
        } else {
            Err(ModelError::Invalid {
                source_name: source_name.to_owned(),
                errors,
            })
        }
    }

    /// Serialize back to TOML (comments are not kept).
    pub fn to_toml_string(&self) -> String {
        // Serialising our own plain structs cannot fail: no maps with non-string keys, no NaN
        // rejection in toml for f64. Fall back to a comment rather than panic.
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# could not serialise the scenario: {e}\n"))
    }

    /// Validate an in-memory scenario (e.g. one built by code).
    pub fn validate(&self) -> Vec<ValidationError> {
        crate::validate::validate(self)
    }
}

fn parse(text: &str, source_name: &str) -> Result<Scenario, ModelError> {
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|e| parse_error(&e, text, source_name, String::new()))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        parse_error(e.inner(), text, source_name, path)
    })
}

fn parse_error(e: &toml::de::Error, text: &str, source_name: &str, path: String) -> ModelError {
    let (line, column) = e
        .span()
        .map(|span| line_column(text, span.start))
        .unwrap_or((0, 0));
    ModelError::Parse {
        source_name: source_name.to_owned(),
        line,
        column,
        path,
        message: e.message().trim().to_owned(),
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
