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
    /// Community-wide settings of the simulation (internal price, grid-peak signal, prices).
    #[serde(default)]
    pub community: CommunitySettings,
    /// The site's solar resource (`scg_resource::solar::SolarResourceConfig`; default Bergamo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solar: Option<Section>,
    /// The site's wind resource (`scg_resource::wind::WindResourceConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wind: Option<Section>,
    /// The grid connection and tariffs (`scg_sim::grid::GridConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<Section>,
    /// Project economics (`scg_sim::economics::EconomicsConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub economics: Option<Section>,
    /// The Italian energy-community incentive (`scg_sim::cer::CerConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cer: Option<Section>,
    /// The sizing search space of `scg optimize` (community part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<CommunitySearch>,
    /// The members of the community, each with its load and its assets.
    pub prosumers: Vec<Prosumer>,
}

/// A component section of the scenario, kept as TOML here and typed and validated by the crate
/// that models the component (each names its fields with units and rejects unknown ones).
/// Why: the component crates depend on this one, so their schemas cannot live here.
pub type Section = toml::Table;

/// Community-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunitySettings {
    /// Price of energy shared between members (pro-rata sharing), EUR/MWh.
    #[serde(default = "default_internal_price")]
    pub internal_price_eur_per_mwh: f64,
    /// Hourly zonal price: a flat value, EUR/MWh (used when no file is given).
    #[serde(default = "default_zonal_price")]
    pub zonal_price_eur_per_mwh: f64,
    /// Hourly zonal prices for the year: a CSV of 8760 EUR/MWh values (one column, header
    /// optional), relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zonal_price_file: Option<PathBuf>,
    /// Hourly zonal prices from GME MGP price files (`…MGPPrezzi.xml`, hourly or 15-minute),
    /// relative to the scenario file; together they must hold every day of the model year
    /// once. Mapped from Italian market time onto the simulation's standard-time hours (see
    /// `docs/scenario.md`). Not together with `zonal_price_file`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zonal_price_gme_files: Vec<PathBuf>,
    /// The GME zone read from `zonal_price_gme_files` (`NORD`, `CNOR`, …, or `PUN`); default
    /// `NORD` (Bergamo's zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zonal_price_gme_zone: Option<String>,
    /// When the main grid is "at peak" (surplus goes to the grid first).
    #[serde(default)]
    pub grid_peak: GridPeakSignal,
    /// A community market replacing pro-rata sharing (absent: pro rata at the internal price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<MarketSettings>,
}

/// The community P2P market of each step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSettings {
    /// Clearing mechanism.
    #[serde(default)]
    pub mechanism: MarketMechanism,
    /// Grid fee on each P2P trade, paid by the buyer, EUR/MWh (default 0).
    #[serde(default)]
    pub fee_eur_per_mwh: f64,
    /// Grid fee as a percentage of the seller's price instead (overrides the constant fee).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_pct: Option<f64>,
}

/// Clearing mechanisms of the community market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketMechanism {
    /// Two-sided, one uniform price per interval.
    #[default]
    PayAsClear,
    /// Two-sided, continuous; trades at the bid's price.
    PayAsBid,
    /// One-sided; trades at the offer's price.
    PayAsOffer,
}

fn default_internal_price() -> f64 {
    120.0
}
fn default_zonal_price() -> f64 {
    110.0
}

impl Default for CommunitySettings {
    fn default() -> Self {
        Self {
            internal_price_eur_per_mwh: default_internal_price(),
            zonal_price_eur_per_mwh: default_zonal_price(),
            zonal_price_file: None,
            zonal_price_gme_files: Vec::new(),
            zonal_price_gme_zone: None,
            grid_peak: GridPeakSignal::default(),
            market: None,
        }
    }
}

/// The grid-at-peak signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum GridPeakSignal {
    /// Never at peak.
    None,
    /// At peak in the F1 band (weekdays 08–19 civil time, not on holidays): the hours of the
    /// highest national load, by the definition of the Italian time-of-use bands.
    #[default]
    F1Band,
    /// At peak when the zonal price is at or above a threshold.
    PriceAbove { threshold_eur_per_mwh: f64 },
}

/// The community part of the sizing search space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunitySearch {
    /// Grid connection options (`true` connected, `false` islanded). Default `[true]`.
    #[serde(default = "default_grid_options")]
    pub grid_connected: Vec<bool>,
    /// Largest allowed unmet load, percent of the load (HOMER's maximum annual capacity
    /// shortage). Default 0.
    #[serde(default)]
    pub max_capacity_shortage_pct: f64,
}

fn default_grid_options() -> Vec<bool> {
    vec![true]
}

/// A prosumer's part of the sizing search space: candidate sizes. Each list replaces the size
/// of the prosumer's own component section (which gives the technology and costs); `0` means
/// none. An absent list keeps the section's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProsumerSearch {
    /// Total PV kWp (the prosumer's arrays scaled together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pv_kwp: Option<Vec<f64>>,
    /// Number of wind turbines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wind_turbines: Option<Vec<u32>>,
    /// Battery capacity, kWh (power scales with it, keeping the C-rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_kwh: Option<Vec<f64>>,
    /// Converter capacity, kW.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converter_kw: Option<Vec<f64>>,
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
    /// Roof area available for PV, m² (optional). When given, the PV arrays' total capacity
    /// and every `search.pv_kwp` candidate must fit on it ([`crate::roof::pv_limit_kwp`]), and
    /// `scg optimize` says when its winner fills the roof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roof_area_m2: Option<f64>,
    /// PV arrays (`scg_resource::solar::PvArrayConfig` plus a `costs` table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pv: Vec<Section>,
    /// Wind turbines (`scg_resource::wind::TurbineConfig` plus a `costs` table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wind_turbines: Vec<Section>,
    /// A battery bank (`scg_sim::battery::BatteryConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<Section>,
    /// The battery's converter (`scg_sim::converter::ConverterConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converter: Option<Section>,
    /// Electric vehicles and charge points (`scg-ev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ev: Option<Section>,
    /// The dwellings' home devices (`scg_home::config::HomeConfig`, typed and validated by
    /// `scg_sim::assets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<Section>,
    /// Candidate sizes for `scg optimize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<ProsumerSearch>,
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

    /// Parse only (syntax and schema: unknown fields, wrong types), without the semantic
    /// checks of [`Scenario::validate`]; for callers that collect those together with other
    /// problems (`scg_sim::check::check_run`).
    pub fn parse_toml(text: &str, source_name: &str) -> Result<Self, ModelError> {
        parse(text, source_name)
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
