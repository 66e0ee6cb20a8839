//! `scg-ev`: the smart EV charging agent — vehicles, charge points and swap stations, habit
//! learning, charging policies (baselines, MPC on an interior-point method for its plans,
//! [`qp`], and `clarabel` for the rest, the offline optimum), replay of real sessions
//! with the ACN-Sim metrics, and a fleet simulator for the community step.
//!
//! This crate does no I/O: no files, no clock, no printing, no unseeded randomness. Session
//! files arrive as text ([`acn::parse_acn_csv`]); time for solve-time metrics comes from a
//! caller's [`evaluate::Stopwatch`]; randomness from a seed.

pub mod acn;
pub mod error;
pub mod evaluate;
pub mod fleet;
pub mod habits;
pub mod model;
pub mod mpc;
pub mod policy;
pub use scg_opt::qp;
pub mod site;
pub mod synth;
pub mod tariff;

pub use error::EvError;
