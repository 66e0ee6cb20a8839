//! The sizing search run as `scg optimize` runs it, shared by the tests that check its winner,
//! and the bit-for-bit view of a configuration's result shared by the screening tests.
#![allow(clippy::unwrap_used, dead_code)]

use scg_sim::optimize::{ConfigResult, ProsumerSpace, SearchOutcome};
use scg_sim::{Assets, ResolvedInputs};
use std::sync::atomic::AtomicBool;

/// Prepare `scenario` with `seed` (EV years included), run the whole search and hand the
/// pieces to `check`.
pub fn with_search<R>(
    scenario: &scg_model::Scenario,
    seed: u64,
    check: impl FnOnce(&Assets, &ResolvedInputs, &[ProsumerSpace<'_>], &SearchOutcome) -> R,
) -> R {
    let assets = Assets::from_scenario(scenario).unwrap();
    let inputs = scg_sim::resolve_inputs(scenario, &assets, &mut |p| {
        Err(format!("unexpected read of {}", p.display()))
    })
    .unwrap();
    let mut prepared =
        scg_sim::prepare::prepare(scenario, &assets, &inputs, seed, &mut |_, _| {}).unwrap();
    scg_sim::prepare::add_ev_years(&mut prepared, scenario, &assets, seed).unwrap();
    let spaces = scg_sim::sizing::spaces(scenario, &assets, &prepared).unwrap();
    let settings = scg_sim::sizing::settings(scenario, &assets);
    let data = scg_sim::sizing::SearchData::new(scenario, &prepared).unwrap();
    let out = scg_sim::optimize::search(
        &spaces,
        &data.inputs(&prepared, &assets),
        &settings,
        prepared.grid.len(),
        &|_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    check(&assets, &inputs, &spaces, &out)
}

/// Every f64 of a result as bits (NaN COE included), for bit-for-bit comparisons.
pub fn bits(r: &ConfigResult) -> Vec<u64> {
    [
        r.npc_eur,
        r.annualized_cost_eur,
        r.coe_eur_per_kwh,
        r.renewable_fraction,
        r.unmet_fraction,
        r.initial_capital_eur,
        r.grid_import_kwh,
        r.grid_export_kwh,
        r.p2p_kwh,
        r.cer_shared_energy_kwh,
        r.cer_incentive_eur,
        r.excess_kwh,
    ]
    .iter()
    .map(|v| v.to_bits())
    .collect()
}
