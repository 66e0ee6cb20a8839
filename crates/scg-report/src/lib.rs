//! The outputs of a simulation, rendered to bytes: `summary.json`, `timeseries.csv`,
//! `timeseries.parquet` and the self-contained `report.html`.
//!
//! This crate formats; it never writes files, prints or reads the clock (the caller passes the
//! version and the seed, and writes the bytes where the user asked). The same result renders to
//! the same bytes.

pub mod costs;
pub mod html;
pub mod indicators;
pub mod optimize;
pub mod summary;
mod svg;
pub mod table;

pub use summary::{RunInfo, Summary};

/// Errors while rendering outputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("cannot encode Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot encode PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// One output file: its name inside the output directory and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub name: &'static str,
    pub bytes: Vec<u8>,
}

/// Render every output of a run.
pub fn render_all(
    result: &scg_sim::SimResult,
    scenario: &scg_model::Scenario,
    run: &RunInfo,
) -> Result<Vec<OutputFile>, ReportError> {
    render_all_with(result, scenario, run, "")
}

/// [`render_all`] with an extra HTML section placed before the community section of the report.
pub fn render_all_with(
    result: &scg_sim::SimResult,
    scenario: &scg_model::Scenario,
    run: &RunInfo,
    extra_html: &str,
) -> Result<Vec<OutputFile>, ReportError> {
    let summary = Summary::new(result, scenario, run);
    let table = table::SeriesTable::from_result(result);
    Ok(vec![
        OutputFile {
            name: "summary.json",
            bytes: summary.to_json()?.into_bytes(),
        },
        OutputFile {
            name: "timeseries.csv",
            bytes: table.to_csv().into_bytes(),
        },
        OutputFile {
            name: "timeseries.parquet",
            bytes: table.to_parquet()?,
        },
        OutputFile {
            name: "report.html",
            bytes: html::render(result, &summary, scenario, extra_html)?.into_bytes(),
        },
        OutputFile {
            name: "scenario.toml",
            bytes: scenario.to_toml_string().into_bytes(),
        },
    ])
}
