//! Resolve the scenario's data: loads (built-in tables, inline tables or files), the weather
//! file and the zonal price file.
//!
//! Files are read through the `read` closure the caller passes (the CLI reads from disk,
//! relative to the scenario file); this module only parses what it is given.

use crate::SimError;
use crate::assets::Assets;
use scg_model::{Load, Scenario};
use scg_resource::load::{self, Variability};
use scg_resource::profiles::{self, MonthlyProfiles};
use scg_resource::weather::{self, WeatherYear};
use std::path::Path;

/// A file reader: the text of a path, or a message.
pub type Reader<'a> = dyn FnMut(&Path) -> Result<String, String> + 'a;

/// A prosumer's load, ready to synthesise.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolvedLoad {
    /// HOMER synthetic load inputs.
    Synthetic {
        profiles: Box<MonthlyProfiles>,
        variability: Variability,
        scaled_average_kwh_per_day: Option<f64>,
    },
    /// An imported series (8760 or 35040 kW values).
    Imported {
        values_kw: Vec<f64>,
        scaled_average_kwh_per_day: Option<f64>,
    },
}

/// Everything read from outside the scenario text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedInputs {
    /// One per prosumer, in scenario order.
    pub loads: Vec<ResolvedLoad>,
    /// The weather year, when the solar resource names a weather file.
    pub weather: Option<WeatherYear>,
    /// Hourly zonal prices (8760 values), when the scenario names a price file.
    pub zonal_prices_eur_per_mwh: Option<Vec<f64>>,
}

/// Resolve every prosumer's load, in scenario order.
pub fn resolve_loads(
    scenario: &Scenario,
    read: &mut Reader<'_>,
) -> Result<Vec<ResolvedLoad>, SimError> {
    scenario
        .prosumers
        .iter()
        .map(|p| resolve_load(&p.load, read))
        .collect()
}

/// Resolve loads, weather and prices (stops at the first problem; [`crate::check::check_run`]
/// reports them all).
pub fn resolve_inputs(
    scenario: &Scenario,
    assets: &Assets,
    read: &mut Reader<'_>,
) -> Result<ResolvedInputs, SimError> {
    Ok(ResolvedInputs {
        loads: resolve_loads(scenario, read)?,
        weather: resolve_weather(assets, read)?,
        zonal_prices_eur_per_mwh: resolve_zonal_prices(scenario, read)?,
    })
}

/// The weather year, when the solar resource names a weather file.
pub fn resolve_weather(
    assets: &Assets,
    read: &mut Reader<'_>,
) -> Result<Option<WeatherYear>, SimError> {
    let Some(file) = &assets.solar.weather_file else {
        return Ok(None);
    };
    let text = read_file(&file.path, read)?;
    Ok(Some(weather::parse(
        &text,
        file.format,
        &file.path.display().to_string(),
    )?))
}

/// Hourly zonal prices (8760 values), when the scenario names a price file.
pub fn resolve_zonal_prices(
    scenario: &Scenario,
    read: &mut Reader<'_>,
) -> Result<Option<Vec<f64>>, SimError> {
    let Some(path) = &scenario.community.zonal_price_file else {
        return Ok(None);
    };
    let text = read_file(path, read)?;
    let name = path.display().to_string();
    let prices = load::parse_price_csv(&text, &name, None)?;
    if prices.len() != 8760 {
        return Err(SimError::Read {
            path: name,
            message: format!("needs 8760 hourly prices (EUR/MWh), got {}", prices.len()),
        });
    }
    Ok(Some(prices))
}

fn read_file(path: &Path, read: &mut Reader<'_>) -> Result<String, SimError> {
    read(path).map_err(|message| SimError::Read {
        path: path.display().to_string(),
        message,
    })
}

/// Resolve one prosumer's load (reading its file, if any).
pub fn resolve_load(spec: &Load, read: &mut Reader<'_>) -> Result<ResolvedLoad, SimError> {
    Ok(match spec {
        Load::Synthetic(s) => {
            let profiles = Box::new(if let Some(name) = &s.profile {
                profiles::builtin(name)?
            } else if let Some(path) = &s.profile_file {
                let text = read_file(path, read)?;
                profiles::parse_profile_csv(&text, &path.display().to_string())?
            } else if let Some(inline) = &s.profile_kw {
                MonthlyProfiles::from_tables(
                    &inline.weekday,
                    inline.weekend.as_deref(),
                    "profile_kw",
                )?
            } else {
                return Err(SimError::Scenario(
                    "a synthetic load needs `profile`, `profile_file` or `profile_kw`".into(),
                ));
            });
            ResolvedLoad::Synthetic {
                profiles,
                variability: Variability {
                    day_to_day: s.day_to_day_variability_pct / 100.0,
                    timestep: s.timestep_variability_pct / 100.0,
                },
                scaled_average_kwh_per_day: s.scaled_average_kwh_per_day,
            }
        }
        Load::TimeSeries(t) => {
            let text = read_file(&t.file, read)?;
            let name = t.file.display().to_string();
            ResolvedLoad::Imported {
                values_kw: load::parse_load_csv(&text, &name, t.column.as_deref())?,
                scaled_average_kwh_per_day: t.scaled_average_kwh_per_day,
            }
        }
    })
}
