//! The search's year-at-once screening (`screen_config`, what `search` runs for every
//! configuration) against the per-step evaluation (`evaluate_config`) on the built-in Bergamo
//! scenario as `scg optimize` prepares it — its community market, its EV years, the battery
//! and wind templates in the candidate designs: a sample of configurations spread over the
//! whole space must give the same result bit for bit.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PreparedSearch, bits};
use scg_sim::optimize::{Config, ScreenScratch, evaluate_config, residual_parts, screen_config};
use scg_sim::sizing::DesignSizes;

#[test]
fn builtin_sample_screens_as_the_per_step_evaluation() {
    let scenario = scg_model::builtin::bergamo().unwrap();
    let prepared = PreparedSearch::new(&scenario, 1);
    let search = prepared.search(&scenario);
    let (spaces, inputs, settings) = (&search.spaces, &search.inputs, search.settings);
    assert!(
        inputs.market.is_some(),
        "the built-in scenario has a market"
    );
    let runs = search.local_runs();
    let parts = residual_parts(&runs);
    let radices: Vec<usize> = spaces.iter().map(|s| s.designs.len()).collect();
    let total: usize = radices.iter().product();
    let mut scratch = ScreenScratch::default();
    let (mut with_battery, mut with_wind) = (0, 0);
    // Configurations spread over the space (a prime stride, so every prosumer's designs
    // cycle), and the last.
    for index in (0..total).step_by(211).chain([total - 1]) {
        let mut rest = index;
        let designs: Vec<usize> = radices
            .iter()
            .map(|r| {
                let d = rest % r;
                rest /= r;
                d
            })
            .collect();
        let sizes: Vec<DesignSizes> = spaces
            .iter()
            .zip(&designs)
            .map(|(s, d)| DesignSizes::of(&s.designs[*d]))
            .collect();
        with_battery += sizes.iter().any(|s| s.battery_kwh > 0.0) as usize;
        with_wind += sizes.iter().any(|s| s.wind_turbines > 0.0) as usize;
        let config = Config {
            index: index as u64,
            designs: &designs,
            grid_connected: true,
        };
        let step = evaluate_config(config, &runs, inputs, settings).unwrap();
        let year = screen_config(config, &runs, &parts, inputs, settings, &mut scratch).unwrap();
        assert_eq!(bits(&step), bits(&year), "configuration {designs:?}");
        assert_eq!(step, year);
    }
    assert!(
        with_battery > 10 && with_wind > 10,
        "{with_battery} {with_wind}"
    );
}
