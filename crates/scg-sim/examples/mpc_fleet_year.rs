//! Runs the built-in community's MPC fleet (the apartment's) over the year once, as the
//! `ev_year` bench's `mpc_fleet_*` cases do, and prints the wall time: a fixed amount of work
//! for `perf` and `/usr/bin/time` (user CPU) when the machine is shared.
//!
//! `cargo run -p scg-sim --release --example mpc_fleet_year -- [STEP_MIN] [RUNS]`
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use scg_model::builtin;
use scg_sim::assets::Assets;
use scg_sim::prepare::{add_ev_years, prepare};

/// The seed `scg simulate` uses by default.
const SEED: u64 = 42;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let step: u32 = args.get(1).map_or(60, |s| s.parse().unwrap());
    let runs: usize = args.get(2).map_or(1, |s| s.parse().unwrap());
    let mut scenario = builtin::bergamo().unwrap();
    scenario.time.step_minutes = step;
    let assets = Assets::from_scenario(&scenario).unwrap();
    for (p, a) in scenario.prosumers.iter_mut().zip(&assets.prosumers) {
        if a.ev.as_ref().is_none_or(|f| f.policy != "mpc") {
            p.ev = None;
        }
    }
    let assets = Assets::from_scenario(&scenario).unwrap();
    let inputs =
        scg_sim::inputs::resolve_inputs(&scenario, &assets, &mut |_| Err("no files".into()))
            .unwrap();
    let prepared = prepare(&scenario, &assets, &inputs, SEED, &mut |_, _| {}).unwrap();
    for _ in 0..runs {
        let started = std::time::Instant::now();
        let mut p = prepared.clone();
        add_ev_years(&mut p, &scenario, &assets, SEED).unwrap();
        println!(
            "{} prosumers, MPC fleet year at {step} min: {:.3} s wall",
            p.prosumers.len(),
            started.elapsed().as_secs_f64()
        );
    }
}
