//! The year loop. For now the step is "every prosumer's load"; generation, storage, EVs and the
//! community market join the same loop as they land.
//!
//! Each prosumer draws from its own generator seeded by [`prosumer_seed`]`(seed, id)`, so adding,
//! removing or reordering prosumers never changes another prosumer's year.

use crate::SimError;
use crate::inputs::ResolvedLoad;
use crate::metrics::{LoadReport, load_report};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scg_model::{Scenario, TimeGrid};
use scg_resource::load::{self, LoadYear};

/// One prosumer's year.
#[derive(Debug, Clone, PartialEq)]
pub struct ProsumerResult {
    pub id: String,
    pub name: String,
    pub load: LoadYear,
    pub load_report: LoadReport,
}

/// The community's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunityResult {
    /// Sum of the prosumers' loads, kW per step.
    pub load_kw: Vec<f64>,
    /// Sum of the prosumers' baselines, kW per step.
    pub baseline_kw: Vec<f64>,
    pub load_report: LoadReport,
}

/// A simulated year.
#[derive(Debug, Clone, PartialEq)]
pub struct SimResult {
    pub grid: TimeGrid,
    pub seed: u64,
    pub prosumers: Vec<ProsumerResult>,
    pub community: CommunityResult,
}

/// The seed of a prosumer's private stream: SplitMix64 of the run seed mixed with the FNV-1a
/// hash of its id (stable across platforms and releases; part of the reproducibility contract).
pub fn prosumer_seed(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(seed ^ h)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Simulate one year. `loads` comes from [`crate::resolve_loads`] (same order as the scenario's
/// prosumers). `progress(done, total)` is called after each prosumer.
pub fn simulate(
    scenario: &Scenario,
    loads: &[ResolvedLoad],
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SimResult, SimError> {
    let grid =
        TimeGrid::new(&scenario.time, &scenario.location.time_zone).map_err(SimError::Scenario)?;
    if loads.len() != scenario.prosumers.len() {
        return Err(SimError::Scenario(format!(
            "{} loads resolved for {} prosumers",
            loads.len(),
            scenario.prosumers.len()
        )));
    }
    let total = scenario.prosumers.len();
    let mut prosumers = Vec::with_capacity(total);
    let mut load_kw = vec![0.0; grid.len()];
    let mut baseline_kw = vec![0.0; grid.len()];
    for (i, (p, spec)) in scenario.prosumers.iter().zip(loads).enumerate() {
        let source = format!("prosumers[{i}] ({})", p.id);
        let year = synthesize_load(spec, &grid, prosumer_seed(seed, &p.id), &source)?;
        add_into(&mut load_kw, &year.load_kw);
        add_into(&mut baseline_kw, &year.baseline_kw);
        prosumers.push(ProsumerResult {
            id: p.id.clone(),
            name: p.name.clone().unwrap_or_else(|| p.id.clone()),
            load_report: load_report(&year.load_kw, &year.baseline_kw, year.scale_factor, &grid),
            load: year,
        });
        progress(i + 1, total);
    }
    let community_scale = community_scale_factor(&load_kw, &baseline_kw);
    let community = CommunityResult {
        load_report: load_report(&load_kw, &baseline_kw, community_scale, &grid),
        load_kw,
        baseline_kw,
    };
    Ok(SimResult {
        grid,
        seed,
        prosumers,
        community,
    })
}

/// One prosumer's load year from its resolved inputs and its own seed.
pub fn synthesize_load(
    spec: &ResolvedLoad,
    grid: &TimeGrid,
    seed: u64,
    source_name: &str,
) -> Result<LoadYear, SimError> {
    Ok(match spec {
        ResolvedLoad::Synthetic {
            profiles,
            variability,
            scaled_average_kwh_per_day,
        } => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            load::synthesize(
                profiles,
                grid,
                *variability,
                *scaled_average_kwh_per_day,
                &mut rng,
                source_name,
            )?
        }
        ResolvedLoad::Imported {
            values_kw,
            scaled_average_kwh_per_day,
        } => load::imported(values_kw, grid, *scaled_average_kwh_per_day, source_name)?,
    })
}

fn add_into(total: &mut [f64], part: &[f64]) {
    for (t, p) in total.iter_mut().zip(part) {
        *t += p;
    }
}

/// The community's effective scale factor: scaled energy over baseline energy.
fn community_scale_factor(load_kw: &[f64], baseline_kw: &[f64]) -> f64 {
    let base: f64 = baseline_kw.iter().sum();
    if base > 0.0 {
        load_kw.iter().sum::<f64>() / base
    } else {
        1.0
    }
}
