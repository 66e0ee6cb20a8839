//! The outputs of a simulation, rendered to bytes: `summary.json`, `timeseries.csv`,
//! `timeseries.parquet` and the self-contained `report.html`, or for a large community (the
//! city layout, [`city`]) `members.parquet`, `community.csv` and a report of distributions.
//!
//! This crate formats; it never opens files, prints or reads the clock (the caller passes the
//! version and the seed, and writes the bytes where the user asked; `members.parquet` is
//! encoded into a writer the caller opened). The same result renders to the same bytes.

pub mod city;
pub mod costs;
pub mod html;
pub mod indicators;
pub mod members;
pub mod optimize;
pub mod summary;
mod svg;
pub mod table;

pub use city::Layout;
pub use summary::{RunInfo, Summary};

/// Errors while rendering outputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("cannot encode Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("members.parquet: blocks out of order: {0}")]
    Block(String),
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
    render_all_layout(result, scenario, run, extra_html, Layout::Wide)
}

/// Render every output of a run in a [`Layout`]. [`Layout::Wide`]: `summary.json`,
/// `timeseries.csv`, `timeseries.parquet`, `report.html`, `scenario.toml`.
/// [`Layout::City`]: `summary.json`, `community.csv`, `report.html` (distributions across
/// members) and `scenario.toml`; `members.parquet` is not among them: the caller streams it
/// to its file with [`city::write_members_parquet`].
pub fn render_all_layout(
    result: &scg_sim::SimResult,
    scenario: &scg_model::Scenario,
    run: &RunInfo,
    extra_html: &str,
    layout: Layout,
) -> Result<Vec<OutputFile>, ReportError> {
    let mut pre = prerender(result, scenario, run, extra_html, layout)?;
    let series = pre.take_series();
    let mut files = pre.finish(run.ledger.clone())?;
    // summary.json first, then the series, the report and scenario.toml.
    files.splice(1..1, series);
    Ok(files)
}

/// The outputs of a run rendered before its year is settled on the ledger (see
/// [`prerender`]): the series files are final; `summary.json` and `report.html` wait for the
/// ledger's figures.
#[derive(Debug, Clone)]
pub struct Prerendered {
    summary: Summary,
    series: Vec<OutputFile>,
    page: html::Page,
    scenario_toml: OutputFile,
}

/// Render all of a run that does not depend on its ledger (`run.ledger` is not read): the
/// series (`timeseries.csv` and `timeseries.parquet`, or a city's `community.csv`) and the
/// report page but for its ledger paragraph, so that a caller can render while the ledger
/// settles. [`Prerendered::finish`] completes them; together they are [`render_all_layout`].
pub fn prerender(
    result: &scg_sim::SimResult,
    scenario: &scg_model::Scenario,
    run: &RunInfo,
    extra_html: &str,
    layout: Layout,
) -> Result<Prerendered, ReportError> {
    let summary = Summary::without_ledger(result, scenario, run);
    let series = match layout {
        Layout::Wide => {
            let table = table::SeriesTable::from_result(result);
            vec![
                OutputFile {
                    name: "timeseries.csv",
                    bytes: table.to_csv().into_bytes(),
                },
                OutputFile {
                    name: "timeseries.parquet",
                    bytes: table.to_parquet()?,
                },
            ]
        }
        Layout::City => vec![OutputFile {
            name: city::COMMUNITY_CSV,
            bytes: city::community_table(result).to_csv().into_bytes(),
        }],
    };
    let page = html::render_page(result, &summary, scenario, extra_html, layout)?;
    Ok(Prerendered {
        summary,
        series,
        page,
        scenario_toml: OutputFile {
            name: "scenario.toml",
            bytes: scenario.to_toml_string().into_bytes(),
        },
    })
}

impl Prerendered {
    /// The series files, final already (to be written while the ledger settles); taken out,
    /// so the second call returns none.
    pub fn take_series(&mut self) -> Vec<OutputFile> {
        std::mem::take(&mut self.series)
    }

    /// `summary.json`, `report.html` and `scenario.toml` with the ledger's figures (`None`:
    /// no ledger), followed by any series file not taken.
    pub fn finish(
        mut self,
        ledger: Option<summary::LedgerInfo>,
    ) -> Result<Vec<OutputFile>, ReportError> {
        self.summary.set_ledger(ledger);
        let mut files = vec![
            OutputFile {
                name: "summary.json",
                bytes: self.summary.to_json()?.into_bytes(),
            },
            OutputFile {
                name: "report.html",
                bytes: self.page.finish(self.summary.ledger.as_ref()).into_bytes(),
            },
            self.scenario_toml,
        ];
        files.append(&mut self.series);
        Ok(files)
    }
}
