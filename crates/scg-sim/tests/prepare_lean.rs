//! A lean prepare (`PrepareOptions::lean`, what a streamed run uses) drops the baseline and
//! per-array PV series and keeps their figures: the same bits as a prepare that keeps them,
//! across more members than one prepare batch.
#![allow(clippy::unwrap_used)]

use scg_model::Scenario;
use scg_sim::Assets;
use scg_sim::prepare::{PrepareOptions, prepare_with};

#[test]
fn a_lean_prepare_keeps_the_figures_of_the_series_it_drops() {
    let options = scg_model::city::CityOptions {
        members: 300,
        evs: 0,
        ev_policy: "llf".into(),
    };
    let scenario =
        Scenario::from_toml_str(&scg_model::city::city_toml(&options, 3).unwrap(), "c").unwrap();
    let assets = Assets::from_scenario(&scenario).unwrap();
    let inputs = scg_sim::resolve_inputs(&scenario, &assets, &mut |p| {
        Err(format!("unexpected read of {}", p.display()))
    })
    .unwrap();
    let run = |lean| {
        prepare_with(
            &scenario,
            &assets,
            &inputs,
            5,
            PrepareOptions { lean },
            &mut |_, _| {},
        )
        .unwrap()
    };
    let (full, lean) = (run(false), run(true));
    let dt = full.grid.step_hours();
    // The community's baseline: member by member, in order, from zero.
    let mut sum = vec![0.0; full.grid.len()];
    let mut arrays = 0;
    for (f, l) in full.prosumers.iter().zip(&lean.prosumers) {
        for (s, v) in sum.iter_mut().zip(&f.load.baseline_kw) {
            *s += v;
        }
        assert_eq!(f.load.baseline_kw.len(), full.grid.len());
        assert!(l.load.baseline_kw.is_empty() && l.pv_array_kw.is_empty());
        assert_eq!(f.load.load_kw, l.load.load_kw);
        assert_eq!(f.pv_kw_per_kwp, l.pv_kw_per_kwp);
        assert_eq!(f.baseline_stats, l.baseline_stats);
        assert_eq!(
            f.baseline_stats,
            scg_sim::metrics::load_stats(&f.load.baseline_kw, &full.grid)
        );
        let kwh: Vec<f64> = f
            .pv_array_kw
            .iter()
            .map(|kw| kw.iter().sum::<f64>() * dt)
            .collect();
        assert_eq!(f.pv_array_kwh, kwh);
        assert_eq!(l.pv_array_kwh, kwh);
        arrays += kwh.len();
    }
    assert!(arrays > 0, "the city has PV");
    // Members of the same profile set share one baseline; each load is still the one a member
    // synthesized alone makes (its own baseline, its own seed stream), bit for bit.
    for (i, (f, p)) in full.prosumers.iter().zip(&scenario.prosumers).enumerate() {
        let alone = scg_sim::prepare::synthesize_load(
            &inputs.loads[i],
            &full.grid,
            scg_sim::prosumer_seed(5, &p.id),
            "alone",
        )
        .unwrap();
        assert_eq!(alone.load_kw, f.load.load_kw);
        assert_eq!(alone.baseline_kw, f.load.baseline_kw);
        assert_eq!(alone.scale_factor.to_bits(), f.load.scale_factor.to_bits());
    }
    assert_eq!(full.baseline_sum_kw, sum);
    assert_eq!(lean.baseline_sum_kw, sum);
}
