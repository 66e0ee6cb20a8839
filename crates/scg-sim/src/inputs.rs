//! Resolve the scenario's data: loads (built-in tables, inline tables or files), the weather
//! file and the zonal price file; and turn the weather into simulation inputs (the sun's site,
//! measured or decomposed irradiance, the file's wind speeds at its anemometer height).
//!
//! A weather file must be for the scenario's site (`WeatherYear::check_site`: 0.5° in latitude
//! and longitude, the same standard time zone) unless `[solar.weather_file] location =
//! "from_weather_file"`, which computes the sun at the file's latitude and longitude (the zone
//! must still match).
//!
//! Files are read through the `read` closure the caller passes (the CLI reads from disk,
//! relative to the scenario file); this module only parses what it is given.

use crate::SimError;
use crate::assets::Assets;
use scg_model::{Load, Scenario, TimeGrid};
use scg_resource::ResourceError;
use scg_resource::gme;
use scg_resource::load::{self, Variability};
use scg_resource::profiles::{self, MonthlyProfiles};
use scg_resource::solar::{self, SolarSite, WeatherLocation};
use scg_resource::weather::{self, WeatherYear};
use scg_resource::wind::WindResourceConfig;
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
    /// Zonal prices per step of the scenario's clock (8,760 or 35,040 values), when the
    /// scenario names a price file or GME files; see [`resolve_zonal_prices`].
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
        weather: resolve_weather(scenario, assets, read)?,
        zonal_prices_eur_per_mwh: resolve_zonal_prices(scenario, read)?,
    })
}

/// The weather year, when the solar resource names a weather file, checked against the
/// scenario's site (0.5 degrees, same time zone) unless the file gives the location.
pub fn resolve_weather(
    scenario: &Scenario,
    assets: &Assets,
    read: &mut Reader<'_>,
) -> Result<Option<WeatherYear>, SimError> {
    let Some(file) = &assets.solar.weather_file else {
        return Ok(None);
    };
    let text = read_file(&file.path, read)?;
    let year = weather::parse(&text, file.format, &file.path.display().to_string())?;
    let grid =
        TimeGrid::new(&scenario.time, &scenario.location.time_zone).map_err(SimError::Scenario)?;
    let mut site = SolarSite::new(
        scenario.location.latitude_deg,
        scenario.location.longitude_deg,
        &grid,
    );
    if file.location == WeatherLocation::FromWeatherFile {
        site.latitude_deg = year.latitude_deg;
        site.longitude_deg = year.longitude_deg;
    }
    year.check_site(&site)?;
    Ok(Some(year))
}

/// Zonal prices per step of the scenario's clock, when the scenario names a price file (8,760
/// hourly values, each holding for its hour's steps) or GME files (at 15-minute steps a
/// 15-minute GME day is used as published; see `gme::zonal_prices_on_standard_steps`).
pub fn resolve_zonal_prices(
    scenario: &Scenario,
    read: &mut Reader<'_>,
) -> Result<Option<Vec<f64>>, SimError> {
    let community = &scenario.community;
    if community.zonal_price_file.is_some() && !community.zonal_price_gme_files.is_empty() {
        return Err(SimError::Scenario(
            "community: give zonal_price_file or zonal_price_gme_files, not both".into(),
        ));
    }
    let Some(path) = &community.zonal_price_file else {
        if community.zonal_price_gme_files.is_empty() {
            return Ok(None);
        }
        return resolve_gme_prices(scenario, read).map(Some);
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
    let per_hour = scenario_grid(scenario)?.steps_per_hour();
    Ok(Some(
        prices
            .iter()
            .flat_map(|&p| std::iter::repeat_n(p, per_hour))
            .collect(),
    ))
}

fn scenario_grid(scenario: &Scenario) -> Result<TimeGrid, SimError> {
    TimeGrid::new(&scenario.time, &scenario.location.time_zone).map_err(SimError::Scenario)
}

/// The zonal prices of the model year, per step, from the scenario's GME files
/// (`gme::zonal_prices_on_standard_steps`: Italian market time onto standard-time steps).
fn resolve_gme_prices(scenario: &Scenario, read: &mut Reader<'_>) -> Result<Vec<f64>, SimError> {
    let grid = scenario_grid(scenario)?;
    if grid.standard_offset_seconds() != 3600 {
        return Err(SimError::Scenario(format!(
            "community.zonal_price_gme_files: GME prices are on Italian time; the scenario's \
             time zone {} is not UTC+1",
            scenario.location.time_zone
        )));
    }
    let mut files = Vec::with_capacity(scenario.community.zonal_price_gme_files.len());
    for path in &scenario.community.zonal_price_gme_files {
        let text = read_file(path, read)?;
        let name = path.display().to_string();
        let prices = gme::parse_prices(&text, &name).map_err(ResourceError::from)?;
        files.push((name, prices));
    }
    let per_hour = u32::try_from(grid.steps_per_hour()).unwrap_or(u32::MAX);
    let zone = scenario
        .community
        .zonal_price_gme_zone
        .as_deref()
        .unwrap_or("NORD");
    Ok(
        gme::zonal_prices_on_standard_steps(&files, zone, grid.year(), per_hour)
            .map_err(ResourceError::from)?,
    )
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

/// The site the sun is computed for: the scenario's location, or the weather file's latitude
/// and longitude when `[solar.weather_file] location = "from_weather_file"`.
pub fn solar_site(
    scenario: &Scenario,
    assets: &Assets,
    inputs: &ResolvedInputs,
    grid: &TimeGrid,
) -> SolarSite {
    let mut site = SolarSite::new(
        scenario.location.latitude_deg,
        scenario.location.longitude_deg,
        grid,
    );
    let from_file = assets
        .solar
        .weather_file
        .as_ref()
        .is_some_and(|f| f.location == WeatherLocation::FromWeatherFile);
    if let (true, Some(w)) = (from_file, &inputs.weather) {
        site.latitude_deg = w.latitude_deg;
        site.longitude_deg = w.longitude_deg;
    }
    site
}

/// The weather file's irradiance on the grid, measured or decomposed as the scenario says.
pub fn weather_irradiance(
    weather: &WeatherYear,
    assets: &Assets,
    site: &SolarSite,
    grid: &TimeGrid,
) -> Result<solar::Irradiance, SimError> {
    let source = assets
        .solar
        .weather_file
        .as_ref()
        .map(|f| f.irradiance)
        .unwrap_or_default();
    Ok(weather.irradiance_on_grid(site, grid, source)?)
}

/// Wind speeds for the turbines, m/s per step, and the height they are measured at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WindSpeed {
    pub speed_m_per_s: Vec<f64>,
    pub anemometer_height_m: f64,
}

/// The weather file's wind speeds at its anemometer height
/// ([`weather::ANEMOMETER_HEIGHT_M`]) when a file is given; HOMER's synthetic wind from the
/// `[wind]` section (at its `anemometer_height_m`) only without a file.
pub fn wind_speed(
    resource: &WindResourceConfig,
    inputs: &ResolvedInputs,
    grid: &TimeGrid,
    time_zone_h: f64,
    synthetic_seed: u64,
) -> Result<WindSpeed, SimError> {
    Ok(match &inputs.weather {
        Some(w) => WindSpeed {
            speed_m_per_s: w.wind_speed_m_per_s_on_grid(time_zone_h, grid)?,
            anemometer_height_m: weather::ANEMOMETER_HEIGHT_M,
        },
        None => WindSpeed {
            speed_m_per_s: scg_resource::wind::synthesize_speed_m_per_s(
                &resource.params(),
                grid,
                synthetic_seed,
            )?,
            anemometer_height_m: resource.anemometer_height_m,
        },
    })
}
