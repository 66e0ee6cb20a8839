//! `scg-home`: the prosumer's home agent — shiftable appliances (washing machine, dishwasher,
//! dryer), thermal loads (heat pump on a 1R1C building, electric water heater on a tank), the
//! occupant's preferences learned from what they do, and a scheduler against the member's
//! price, the community's surplus forecast and the grid-peak signal.
//!
//! - [`config`]: the `[prosumers.home]` section, its published defaults and its validation.
//! - [`appliance`]: an exact branch-and-bound over the start times of one dwelling's
//!   appliances (brute force is the test oracle).
//! - [`thermal`]: heat pump and water heater as linear programs on `clarabel`.
//! - [`learn`]: usual start times (circular statistics) and windows narrowed by overrides.
//! - [`carve`]: the flexible load carved out of the HOMER load, and a managed year.
//! - [`agent`]: the same agent advanced one interval at a time inside the community step.
//!
//! This crate does no I/O: no files, no clock, no printing, no randomness (dwellings differ
//! by deterministic offsets, not draws).

pub mod agent;
pub mod appliance;
pub mod carve;
pub mod config;
pub mod error;
pub mod learn;
pub mod thermal;

pub use error::HomeError;
