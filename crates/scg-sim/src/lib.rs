//! The community simulation: one year of a scenario, step by step, in memory.
//!
//! - [`inputs`]: turn the scenario's loads into data (built-in tables, files read through a
//!   caller-supplied reader — this crate opens nothing itself);
//! - [`engine`]: [`simulate`] synthesises every prosumer's load from its own seeded stream and
//!   sums the community;
//! - [`metrics`]: HOMER's load statistics (average, peak, load factor, crest factor, peak month,
//!   seasonal and daily profiles).
//!
//! Never does I/O, never reads the clock, never draws from an unseeded generator: the same
//! scenario, inputs and seed give the same result, bit for bit.

pub mod dispatch;
pub mod engine;
pub mod inputs;
pub mod metrics;
pub mod optimize;
pub mod year;

// Component models and economics (storage, converter, grid, CER): pure library modules.
pub mod battery;
pub mod cer;
pub mod component_error;
pub mod converter;
pub mod economics;
pub mod grid;

pub use component_error::ComponentError;

pub use engine::{CommunityResult, ProsumerResult, SimResult, prosumer_seed, simulate};
pub use inputs::{ResolvedLoad, resolve_loads};

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
    /// The scenario is inconsistent in a way validation could not see.
    #[error("{0}")]
    Scenario(String),
}
