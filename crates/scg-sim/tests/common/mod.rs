//! The sizing search run as `scg optimize` runs it, shared by the tests that check its winner,
//! and the bit-for-bit view of a configuration's result shared by the screening tests.
#![allow(clippy::unwrap_used, dead_code)]

use scg_sim::optimize::{
    ConfigResult, LocalRun, ProsumerSpace, SearchInputs, SearchOutcome, SearchSettings, run_local,
};
use scg_sim::prepare::Prepared;
use scg_sim::sizing::SearchData;
use scg_sim::{Assets, ResolvedInputs};
use std::sync::atomic::AtomicBool;

/// A scenario prepared as `scg optimize` prepares it (EV years included), up to its search
/// data; [`PreparedSearch::search`] borrows from it.
pub struct PreparedSearch {
    pub assets: Assets,
    pub inputs: ResolvedInputs,
    pub prepared: Prepared,
    pub data: SearchData,
    pub settings: SearchSettings,
}

/// What the search reads, borrowed from a [`PreparedSearch`].
pub struct Search<'a> {
    pub spaces: Vec<ProsumerSpace<'a>>,
    pub inputs: SearchInputs<'a>,
    pub settings: &'a SearchSettings,
    pub steps: usize,
}

impl PreparedSearch {
    pub fn new(scenario: &scg_model::Scenario, seed: u64) -> Self {
        let assets = Assets::from_scenario(scenario).unwrap();
        let inputs = scg_sim::resolve_inputs(scenario, &assets, &mut |p| {
            Err(format!("unexpected read of {}", p.display()))
        })
        .unwrap();
        let mut prepared =
            scg_sim::prepare::prepare(scenario, &assets, &inputs, seed, &mut |_, _| {}).unwrap();
        scg_sim::prepare::add_ev_years(&mut prepared, scenario, &assets, seed).unwrap();
        let data = SearchData::new(scenario, &prepared).unwrap();
        let settings = scg_sim::sizing::settings(scenario, &assets);
        Self {
            assets,
            inputs,
            prepared,
            data,
            settings,
        }
    }

    /// The search's spaces and inputs for `scenario` (the one this was prepared from).
    pub fn search<'a>(&'a self, scenario: &scg_model::Scenario) -> Search<'a> {
        Search {
            spaces: scg_sim::sizing::spaces(scenario, &self.assets, &self.prepared).unwrap(),
            inputs: self.data.inputs(&self.prepared, &self.assets),
            settings: &self.settings,
            steps: self.prepared.grid.len(),
        }
    }
}

impl Search<'_> {
    /// Every prosumer design simulated on its own, as the search's first stage does.
    pub fn local_runs(&self) -> Vec<Vec<LocalRun>> {
        self.spaces
            .iter()
            .map(|s| {
                s.designs
                    .iter()
                    .map(|d| {
                        run_local(s, d, self.steps, self.inputs.dt_h, &self.settings.economics)
                            .unwrap()
                    })
                    .collect()
            })
            .collect()
    }
}

/// Prepare `scenario` with `seed` (EV years included), run the whole search and hand the
/// pieces to `check`.
pub fn with_search<R>(
    scenario: &scg_model::Scenario,
    seed: u64,
    check: impl FnOnce(&Assets, &ResolvedInputs, &[ProsumerSpace<'_>], &SearchOutcome) -> R,
) -> R {
    let prepared = PreparedSearch::new(scenario, seed);
    let search = prepared.search(scenario);
    let out = scg_sim::optimize::search(
        &search.spaces,
        &search.inputs,
        search.settings,
        search.steps,
        &|_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    check(&prepared.assets, &prepared.inputs, &search.spaces, &out)
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
