//! The search's blocks (`screen_block`: the first prosumers' sums computed once, every design
//! of the last prosumer added to them) against the per-step evaluation (`evaluate_config`) on
//! the built-in Bergamo scenario as `scg optimize` prepares it: every configuration of a
//! sample of blocks spread over the space gives the same result bit for bit, with its index.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PreparedSearch, bits};
use scg_sim::optimize::{
    Block, Config, ScreenScratch, Screened, evaluate_config, residual_parts, screen_block,
};

#[test]
fn builtin_blocks_screen_as_the_per_step_evaluation() {
    let scenario = scg_model::builtin::bergamo().unwrap();
    let prepared = PreparedSearch::new(&scenario, 1);
    let search = prepared.search(&scenario);
    let (spaces, inputs, settings) = (&search.spaces, &search.inputs, search.settings);
    let runs = search.local_runs();
    let parts = residual_parts(&runs);
    let radices: Vec<usize> = spaces.iter().map(|s| s.designs.len()).collect();
    let (last_radix, first_radices) = radices.split_last().unwrap();
    let blocks: usize = first_radices.iter().product();
    let mut scratch = ScreenScratch::default();
    let mut out = Vec::new();
    let mut checked = 0;
    // Blocks spread over the space (a prime stride, so every first prosumer's designs
    // cycle), and the last; the same scratch throughout, as a search worker reuses it.
    for b in (0..blocks).step_by(29).chain([blocks - 1]) {
        let mut rest = b;
        let first: Vec<usize> = first_radices
            .iter()
            .map(|r| {
                let d = rest % r;
                rest /= r;
                d
            })
            .collect();
        out.clear();
        let block = Block {
            first_designs: &first,
            grid_connected: true,
            grid_option: 0,
        };
        let space = Screened {
            radices: &radices,
            runs: &runs,
            parts: &parts,
        };
        screen_block(block, &space, inputs, settings, &mut scratch, &mut out).unwrap();
        assert_eq!(out.len(), *last_radix);
        for (last, got) in out.iter().enumerate() {
            let mut designs = first.clone();
            designs.push(last);
            // Mixed radix, the first prosumer fastest (the search's enumeration).
            let index = designs
                .iter()
                .zip(&radices)
                .rev()
                .fold(0u64, |i, (d, r)| i * *r as u64 + *d as u64);
            let config = Config {
                index,
                designs: &designs,
                grid_connected: true,
            };
            let step = evaluate_config(config, &runs, inputs, settings).unwrap();
            assert_eq!(bits(&step), bits(got), "configuration {designs:?}");
            assert_eq!(&step, got);
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}
