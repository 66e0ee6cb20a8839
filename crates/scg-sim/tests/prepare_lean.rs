//! A lean prepare (`PrepareOptions::lean`, what a streamed run uses) drops the baseline and
//! per-array PV series and keeps their figures: the same bits as a prepare that keeps them,
//! across more members than one prepare batch. One that also draws the loads
//! (`PrepareOptions::draw_loads`) keeps no load: the year draws each again, bit for bit, and
//! its report and the community's sums are those of the kept loads; one that draws the PV
//! (`PrepareOptions::draw_pv`) keeps no PV series and computes the kept one's bits at each step.
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
    let run = |lean, draw_loads| {
        prepare_with(
            &scenario,
            &assets,
            &inputs,
            5,
            PrepareOptions {
                lean,
                draw_loads,
                draw_pv: false,
            },
            &mut |_, _| {},
        )
        .unwrap()
    };
    let (full, lean) = (run(false, false), run(true, false));
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

#[test]
fn a_prepare_that_draws_the_loads_draws_each_again_bit_for_bit() {
    let options = scg_model::city::CityOptions {
        members: 300,
        evs: 0,
        ev_policy: "llf".into(),
    };
    let text = scg_model::city::city_toml(&options, 4).unwrap();
    // At 15 minutes: days of 96 steps, read in runs that straddle them.
    let text = text.replace("step_minutes = 60", "step_minutes = 15");
    let scenario = Scenario::from_toml_str(&text, "c").unwrap();
    let assets = Assets::from_scenario(&scenario).unwrap();
    let inputs = scg_sim::resolve_inputs(&scenario, &assets, &mut |p| {
        Err(format!("unexpected read of {}", p.display()))
    })
    .unwrap();
    let run = |draw: bool| {
        prepare_with(
            &scenario,
            &assets,
            &inputs,
            9,
            PrepareOptions {
                lean: true,
                draw_loads: draw,
                draw_pv: draw,
            },
            &mut |_, _| {},
        )
        .unwrap()
    };
    let (kept, drawn) = (run(false), run(true));
    let grid = &kept.grid;
    assert_eq!(grid.steps_per_day(), 96);
    assert!(kept.load_sums.is_none() && kept.baselines.is_empty());
    let kept_series = kept.prosumers.iter().map(|p| &p.load.load_kw);
    let mut with_pv = 0;
    for (i, (k, d)) in kept.prosumers.iter().zip(&drawn.prosumers).enumerate() {
        assert!(d.load.load_kw.is_empty(), "member {i} keeps its load");
        let draw = d.load_draw.as_ref().unwrap();
        assert_eq!(draw.scale_factor.to_bits(), k.load.scale_factor.to_bits());
        assert_eq!(draw.steps_per_day, 96);
        // Drawn again in runs of 128 and 37 steps: the kept load's bits.
        for run in [128, 37] {
            let mut replay = scg_sim::year::LoadReplay::start(scg_sim::year::DrawnLoad {
                draw,
                baseline_kw: &drawn.baselines[draw.baseline],
            });
            let mut again = Vec::with_capacity(grid.len());
            let mut buffer = vec![0.0; run];
            while again.len() < grid.len() {
                let len = run.min(grid.len() - again.len());
                replay.fill(&mut buffer[..len]).unwrap();
                again.extend_from_slice(&buffer[..len]);
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&again),
                bits(&k.load.load_kw),
                "member {i}, runs of {run}"
            );
            assert!(replay.fill(&mut buffer[..1]).is_none(), "past the year");
        }
        let report = scg_sim::metrics::load_report_with_baseline(
            &k.load.load_kw,
            k.baseline_stats.clone(),
            k.load.scale_factor,
            grid,
        );
        assert_eq!(d.load_report.as_ref(), Some(&report), "member {i}");
        // The PV, computed at each step from the orientations' responses: the kept bits.
        match &d.pv_draw {
            Some(draw) => {
                assert!(d.pv_kw_per_kwp.is_empty(), "member {i} keeps its PV");
                let pv = scg_sim::year::DrawnPv {
                    draw,
                    responses: &drawn.responses,
                };
                for (t, v) in k.pv_kw_per_kwp.iter().enumerate() {
                    assert_eq!(
                        pv.kw_per_kwp(t).to_bits(),
                        v.to_bits(),
                        "member {i}, step {t}"
                    );
                }
                assert_eq!(pv.kw_per_kwp(grid.len()), 0.0, "past the year");
                with_pv += 1;
            }
            None => assert!(k.pv_kw_per_kwp.is_empty(), "member {i}'s PV is kept"),
        }
    }
    assert!(with_pv > 30, "{with_pv} members with PV");
    let (kept_all, drawn_all) = (kept.series(), drawn.series());
    for (k, d) in kept_all.iter().zip(&drawn_all) {
        for t in 0..grid.len() {
            assert_eq!(k.pv_kw(t).to_bits(), d.pv_kw(t).to_bits());
        }
    }
    assert_eq!(drawn.baseline_sum_kw, kept.baseline_sum_kw);
    // The community's sums: member by member, in order, as the run takes them of kept loads.
    let sums = drawn.load_sums.as_ref().unwrap();
    let mut load = vec![0.0; grid.len()];
    for series in kept_series {
        for (s, v) in load.iter_mut().zip(series) {
            *s += v;
        }
    }
    assert_eq!(sums.load_kw, load);
    let surplus = scg_sim::year::community_surplus_kw(&kept.series(), grid.len());
    assert_eq!(sums.surplus_kw, surplus);
    assert!(surplus.iter().any(|s| *s > 0.0), "the city has a surplus");
}
