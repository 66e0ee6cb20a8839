//! Resolve the scenario's loads into data: built-in tables, inline tables, or files.
//!
//! Files are read through the `read` closure the caller passes (the CLI reads from disk,
//! relative to the scenario file); this module only parses what it is given.

use crate::SimError;
use scg_model::{Load, Scenario};
use scg_resource::load::{self, Variability};
use scg_resource::profiles::{self, MonthlyProfiles};
use std::path::Path;

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

/// Resolve every prosumer's load, in scenario order. `read(path)` returns a file's text.
pub fn resolve_loads(
    scenario: &Scenario,
    read: &mut dyn FnMut(&Path) -> Result<String, String>,
) -> Result<Vec<ResolvedLoad>, SimError> {
    scenario
        .prosumers
        .iter()
        .map(|p| resolve_load(&p.load, read))
        .collect()
}

fn read_file(
    path: &Path,
    read: &mut dyn FnMut(&Path) -> Result<String, String>,
) -> Result<String, SimError> {
    read(path).map_err(|message| SimError::Read {
        path: path.display().to_string(),
        message,
    })
}

fn resolve_load(
    spec: &Load,
    read: &mut dyn FnMut(&Path) -> Result<String, String>,
) -> Result<ResolvedLoad, SimError> {
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
