//! The scenario: what a community is made of, where it is, and the clock it runs on.
//!
//! - [`Scenario`] is the schema of a `scenario.toml` file (units in every field name); parsing
//!   rejects unknown fields and [`Scenario::from_toml_str`] validates every field, returning all
//!   problems at once with their field paths.
//! - [`TimeGrid`] is the simulation clock: a 365-day year of 60- or 15-minute steps on local
//!   standard time, with HOMER's Monday-first calendar available as `model_year = "homer"`.
//! - [`bounds`] holds the plausibility ranges, count limits and the memory budget they come
//!   from;
//! - [`builtin`] holds the seed paper's Bergamo community;
//! - [`city`] generates a synthetic city-scale community from a seed (`scg scenario city`).
//!
//! This crate never does I/O: it parses strings it is given and names files it does not open.
//! Paths inside a scenario are kept as written; the caller resolves them.

pub mod bounds;
pub mod builtin;
pub mod city;
pub mod deprecated;
mod error;
pub mod roof;
mod scenario;
mod time;
mod validate;

pub use error::{ModelError, ValidationError};
pub use scenario::*;
pub use time::{HOMER_MODEL_YEAR, TimeGrid, Weekday};
pub use validate::{MAX_PROSUMERS, is_valid_id};
