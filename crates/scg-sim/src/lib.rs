//! The community simulation: one year of a scenario, step by step, in memory.
//!
//! - [`assets`]: the scenario's component sections, typed and validated with field paths;
//! - [`check`]: everything `simulate` does short of simulating (assets, every input file, the
//!   run's memory and time estimate against the budget), shared with `scg scenario check`;
//! - [`inputs`]: loads, weather and price files resolved into data (files read through a
//!   caller-supplied reader — this crate opens nothing itself);
//! - [`prepare`]: every series a year needs (loads, PV per kWp, wind per turbine, prices, the
//!   grid-peak signal), computed once;
//! - [`dispatch`] and [`year`]: the community step of the paper's flow chart and its year loop;
//! - [`engine`]: [`simulate`] — prepare, run the year with its accounts;
//! - [`members`]: the members' flows in blocks of steps (kept, or streamed to a consumer while
//!   the year runs) and what a run keeps of them (energy sums, the community's per-step sums);
//! - [`accounting`]: the year's money fed each interval (grid bills, P2P, CER, NPC, COE), one
//!   implementation for `simulate` and every configuration of the search;
//! - [`optimize`]: the HOMER-style sizing search;
//! - [`metrics`]: HOMER's load statistics; component models: [`battery`], [`converter`],
//!   [`grid`], [`economics`], [`cer`].
//!
//! Never does I/O, never reads the clock, never draws from an unseeded generator: the same
//! scenario, inputs and seed give the same result, bit for bit.

pub mod accounting;
pub mod assets;
pub mod check;
pub mod community;
pub mod dispatch;
pub mod engine;
pub mod home;
pub mod inputs;
pub mod market_stage;
pub mod members;
pub mod metrics;
pub mod optimize;
pub mod prepare;
pub mod sizing;
pub mod year;

// Component models and economics (storage, converter, grid, CER): pure library modules.
pub mod battery;
pub mod cer;
pub mod component_error;
pub mod converter;
pub mod economics;
pub mod grid;

pub use component_error::ComponentError;

pub use assets::Assets;
pub use check::{CheckOptions, CheckedRun, RunEstimate, check_run};
pub use engine::{
    CommunityResult, HeadConsumer, MemberStream, ProsumerResult, SimOptions, SimResult, YearHead,
    can_stream, prosumer_seed, simulate, simulate_scenario, simulate_streaming, simulate_with,
};
pub use inputs::{ResolvedInputs, ResolvedLoad, resolve_inputs, resolve_loads};

/// Errors of the simulation crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// An input file or table could not be used.
    #[error(transparent)]
    Resource(#[from] scg_resource::ResourceError),
    /// A file named by the scenario could not be read.
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    /// A consumer of the members' series (e.g. the `members.parquet` writer) failed.
    #[error("writing the members' series: {0}")]
    Output(String),
    /// The scenario is inconsistent in a way validation could not see.
    #[error("{0}")]
    Scenario(String),
    /// A component section of the scenario is invalid (every problem, with its field path).
    #[error("invalid scenario:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<scg_model::ValidationError>),
    /// A component model refused its inputs.
    #[error(transparent)]
    Component(#[from] ComponentError),
}
