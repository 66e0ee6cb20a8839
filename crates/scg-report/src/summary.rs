//! `summary.json`: the run's metadata and every prosumer's and the community's metrics.
//!
//! Schema `scg.summary.v1` (documented in `docs/summary.md`, with an example):
//! ```text
//! {
//!   "schema": "scg.summary.v1", "scg_version": "0.1.0", "seed": 42,
//!   "scenario": { "name", "source", "latitude_deg", "longitude_deg", "time_zone",
//!                 "utc_offset", "model_year", "step_minutes", "steps" },
//!   "prosumers": { "<id>": { "name": "...", "load": LoadReport } , ... },
//!   "community": { "prosumers": 5, "load": LoadReport }
//! }
//! ```
//! A `LoadReport` holds `energy_kwh`, `average_kwh_per_day`, `average_kw`, `peak_kw`, `min_kw`,
//! `rms_kw`, `load_factor`, `crest_factor`, `peak_month` (1–12), `peak_timestamp`, then
//! `baseline` (the same statistics of the unperturbed, unscaled load), `scale_factor`,
//! `seasonal` (12 × {month, min_kw, daily_low_average_kw, average_kw, daily_high_average_kw,
//! max_kw}) and `daily_profile_kw` (12 × 24).

use scg_sim::SimResult;
use scg_sim::metrics::LoadReport;
use serde::Serialize;
use std::collections::BTreeMap;

/// Facts about the run that the result does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// The scg version that produced the outputs.
    pub scg_version: String,
    /// Where the scenario came from (a path, or "built-in").
    pub scenario_source: String,
}

/// The top-level object of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub schema: &'static str,
    pub scg_version: String,
    pub seed: u64,
    pub scenario: ScenarioInfo,
    /// Keyed by prosumer id (sorted, so the bytes are stable).
    pub prosumers: BTreeMap<String, ProsumerSummary>,
    pub community: CommunitySummary,
}

/// What was simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub source: String,
    pub latitude_deg: f64,
    pub longitude_deg: f64,
    pub time_zone: String,
    /// The standard offset the timestamps carry, e.g. `+01:00`.
    pub utc_offset: String,
    pub model_year: i32,
    pub step_minutes: u32,
    pub steps: usize,
    /// Prosumer ids in scenario order.
    pub prosumer_order: Vec<String>,
}

/// One prosumer's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProsumerSummary {
    pub name: String,
    pub load: LoadReport,
}

/// The community's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommunitySummary {
    pub prosumers: usize,
    pub load: LoadReport,
}

impl Summary {
    /// Collect the summary of a result.
    pub fn new(result: &SimResult, scenario: &scg_model::Scenario, run: &RunInfo) -> Self {
        let offset_seconds = result.grid.standard_offset_seconds();
        Self {
            schema: "scg.summary.v1",
            scg_version: run.scg_version.clone(),
            seed: result.seed,
            scenario: ScenarioInfo {
                name: scenario.name.clone(),
                source: run.scenario_source.clone(),
                latitude_deg: scenario.location.latitude_deg,
                longitude_deg: scenario.location.longitude_deg,
                time_zone: scenario.location.time_zone.clone(),
                utc_offset: format_offset(offset_seconds),
                model_year: result.grid.year(),
                step_minutes: result.grid.step_minutes(),
                steps: result.grid.len(),
                prosumer_order: result.prosumers.iter().map(|p| p.id.clone()).collect(),
            },
            prosumers: result
                .prosumers
                .iter()
                .map(|p| {
                    (
                        p.id.clone(),
                        ProsumerSummary {
                            name: p.name.clone(),
                            load: p.load_report.clone(),
                        },
                    )
                })
                .collect(),
            community: CommunitySummary {
                prosumers: result.prosumers.len(),
                load: result.community.load_report.clone(),
            },
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }
}

fn format_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    format!("{sign}{:02}:{:02}", s / 3600, (s % 3600) / 60)
}
