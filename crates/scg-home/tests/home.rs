//! scg-home: exactness of the appliance scheduler against brute force, the thermal LP against
//! a grid search, the carve-out identity, the managed year's guarantees, validation errors and
//! preference learning.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_home::appliance::{DwellingMemo, Run, Signals, brute_force_dwelling, schedule_dwelling};
use scg_home::carve::{HomeInputs, carve_out, manage, schedule_appliances, year_runs};
use scg_home::config::{
    ApplianceConfig, ApplianceKind, HeatPumpConfig, HomeConfig, WaterHeaterConfig, profile_m,
};
use scg_home::learn::{Event, Preferences};
use scg_home::thermal::Linear;

fn signals_from(prices: &[f64], surplus: &[f64], peak: &[bool]) -> Signals {
    let mut s = Signals::flat(prices.len(), 0.25, 0.0);
    s.price_eur_per_mwh = prices.to_vec();
    s.surplus_kw = surplus.to_vec();
    s.surplus_price_eur_per_mwh = vec![80.0; prices.len()];
    s.grid_peak = peak.to_vec();
    s.grid_peak_adder_eur_per_mwh = 60.0;
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn branch_and_bound_equals_brute_force(
        prices in prop::collection::vec(50.0f64..300.0, 16),
        surplus in prop::collection::vec(0.0f64..2.0, 16),
        peak in prop::collection::vec(any::<bool>(), 16),
        shapes in prop::collection::vec((prop::collection::vec(0.1f64..1.5, 1..4), 0usize..8, 0usize..9), 1..4),
        cap in 1.5f64..3.0,
    ) {
        let sig = signals_from(&prices, &surplus, &peak);
        let runs: Vec<Run> = shapes
            .iter()
            .map(|(p, e, w)| Run { power_kw: p.clone(), earliest_step: *e, latest_step: e + w })
            .collect();
        let mut scratch = vec![0.0; 16];
        let bb = schedule_dwelling(&runs, &sig, cap, &mut scratch);
        let bf = brute_force_dwelling(&runs, &sig, cap);
        prop_assert!(scratch.iter().all(|x| x.abs() < 1e-12));
        match (bb, bf) {
            (None, None) => {}
            (Some(a), Some(b)) => prop_assert!((a.cost_eur - b.cost_eur).abs() < 1e-9,
                "b&b {} vs brute force {}", a.cost_eur, b.cost_eur),
            (a, b) => prop_assert!(false, "b&b {a:?} vs brute force {b:?}"),
        }
    }
}

#[test]
fn thermal_lp_is_no_worse_than_a_grid_search() {
    let w = WaterHeaterConfig {
        count: 1,
        tank_l: 30.0,
        element_kw: 1.2,
        min_c: 45.0,
        max_c: 65.0,
        cold_water_c: 10.0,
        ambient_c: 20.0,
        loss_w_per_k: 2.0,
        draws: vec![],
    };
    let draws = [0.0, 0.3, 0.0, 0.5];
    let x0 = w.energy_at_kwh(50.0);
    let lin = Linear::water_heater(&w, &draws, 1.0, x0);
    let mut sig = signals_from(
        &[200.0, 90.0, 300.0, 150.0],
        &[0.0, 0.0, 0.0, 0.3],
        &[false; 4],
    );
    sig.step_hours = 1.0;
    let lp = lin.optimise(&sig, 0).unwrap().unwrap();
    let cost = |p: &[f64]| -> f64 {
        p.iter()
            .enumerate()
            .map(|(t, x)| sig.step_cost_eur(t, *x))
            .sum()
    };
    let ok = |p: &[f64]| {
        let xs = lin.states(p);
        xs.iter()
            .all(|x| *x >= lin.lo - 1e-6 && *x <= lin.hi + 1e-6)
            && xs[3] >= x0 - 1e-6
    };
    assert!(ok(&lp), "LP schedule breaks the band: {lp:?}");
    let levels: Vec<f64> = (0..=24).map(|i| 1.2 * f64::from(i) / 24.0).collect();
    let mut best = f64::INFINITY;
    for a in &levels {
        for b in &levels {
            for c in &levels {
                for d in &levels {
                    let p = [*a, *b, *c, *d];
                    if ok(&p) {
                        best = best.min(cost(&p));
                    }
                }
            }
        }
    }
    let lp_cost = cost(&lp);
    assert!(
        lp_cost <= best + 1e-6,
        "LP {lp_cost} worse than grid {best}"
    );
    // The grid is 0.05 kW fine: the LP optimum is within one grid cell of it.
    assert!(
        best - lp_cost < 0.05 * 0.3 * 4.0,
        "LP {lp_cost}, grid {best}"
    );
}

fn apartment(managed: bool) -> HomeConfig {
    let app = |kind| ApplianceConfig {
        kind,
        count: 30,
        profile_kw: None,
        runs_per_week: None,
        earliest_start_h: None,
        deadline_h: None,
        usual_start_h: None,
    };
    HomeConfig {
        dwellings: 30,
        managed,
        appliance_power_cap_kw: 2.5,
        usual_start_spread_minutes: 180,
        grid_peak_adder_eur_per_mwh: 50.0,
        appliances: vec![
            app(ApplianceKind::WashingMachine),
            app(ApplianceKind::Dishwasher),
            app(ApplianceKind::Dryer),
        ],
        water_heater: Some(WaterHeaterConfig {
            count: 10,
            tank_l: 80.0,
            element_kw: 1.2,
            min_c: 45.0,
            max_c: 65.0,
            cold_water_c: 10.0,
            ambient_c: 20.0,
            loss_w_per_k: 1.2,
            draws: profile_m(),
        }),
        heat_pump: None,
    }
}

/// Two weeks of an apartment-block load at hourly steps (a smooth daily shape, 614 kWh/day).
fn base_load(days: usize) -> Vec<f64> {
    (0..days * 24)
        .map(|k| {
            let h = (k % 24) as f64;
            25.6 * (1.0 + 0.45 * ((h - 20.0) / 24.0 * std::f64::consts::TAU).cos())
        })
        .collect()
}

fn year_signals(steps: usize) -> Signals {
    let mut s = Signals::flat(steps, 1.0, 0.0);
    for t in 0..steps {
        let h = t % 24;
        s.price_eur_per_mwh[t] = match h {
            8..=18 => 250.0,
            7 | 19..=22 => 200.0,
            _ => 150.0,
        };
        s.surplus_price_eur_per_mwh[t] = 110.0;
        s.surplus_kw[t] = if (11..15).contains(&h) { 8.0 } else { 0.0 };
        s.grid_peak[t] = (18..21).contains(&h);
    }
    s.grid_peak_adder_eur_per_mwh = 100.0;
    s
}

const HOURLY: HomeInputs<'static> = HomeInputs {
    step_minutes: 60,
    outdoor_c: None,
};

#[test]
fn unmanaged_reproduces_the_homer_load_exactly() {
    let base = base_load(14);
    let cfg = apartment(false);
    let carved = carve_out("apartment", &base, &cfg, &HOURLY).unwrap();
    for ((i, u), b) in carved
        .inflexible_kw
        .iter()
        .zip(&carved.unmanaged_flex_kw)
        .zip(&base)
    {
        assert!(*i >= 0.0 && *u >= 0.0);
        assert!((i + u - b).abs() <= 1e-12 * b.abs().max(1.0));
    }
    assert!(carved.unmanaged_flex_kw.iter().sum::<f64>() > 100.0);
    let m = manage("apartment", &base, &cfg, &HOURLY, &year_signals(base.len())).unwrap();
    assert_eq!(
        m.load_kw, base,
        "unmanaged must give the HOMER load bit for bit"
    );
    assert_eq!(m.result.shifted_energy_kwh, 0.0);
    assert_eq!(m.result.savings_eur_per_year, 0.0);
}

#[test]
fn managed_runs_every_cycle_in_its_window_and_keeps_the_tank_in_band() {
    let base = base_load(14);
    let cfg = apartment(true);
    let sig = year_signals(base.len());
    let m = manage("apartment", &base, &cfg, &HOURLY, &sig).unwrap();
    // Energy balance: load = inflexible + managed devices, every step.
    for ((l, i), f) in m
        .load_kw
        .iter()
        .zip(&m.carved.inflexible_kw)
        .zip(&m.managed_flex_kw)
    {
        assert!((l - i - f).abs() < 1e-9);
    }
    // Appliance energy is unchanged by management (full cycles, inside the year).
    let runs = year_runs(&cfg, 60, base.len());
    let run_kwh: f64 = runs
        .iter()
        .map(|r| r.run.power_kw.iter().sum::<f64>())
        .sum();
    assert!(m.result.appliance_runs == runs.len() && run_kwh > 0.0);
    // Every start offered to the scheduler lies in the window (checked by construction:
    // earliest ≤ latest and latest + length ≤ the deadline step).
    for r in &runs {
        assert!(r.run.earliest_step <= r.run.latest_step);
        assert!(r.usual_step >= r.run.earliest_step && r.usual_step <= r.run.latest_step);
    }
    assert!(m.result.shifted_energy_kwh > 0.0);
    assert!(m.result.savings_eur_per_year > 0.0, "{:?}", m.result);
    // The day's unmanaged peak is the headroom (a penalty, not a hard limit): it holds on
    // every day but the last, where the overnight windows are cut by the end of the data.
    let before_last = m.load_kw[..13 * 24].iter().copied().fold(0.0, f64::max);
    assert!(
        before_last <= m.result.peak_unmanaged_kw + 1e-6,
        "{before_last}"
    );
    // The tank stays within its band in every step (the managed water-heater power alone).
    let w = cfg.water_heater.as_ref().unwrap();
    let dt_draws: Vec<f64> = (0..base.len())
        .map(|k| w.draw_per_step_kwh(24)[k % 24])
        .collect();
    let lin = Linear::water_heater(w, &dt_draws, 1.0, w.energy_at_kwh(w.max_c));
    let (name, group_kw) = &m.thermal_kw[0];
    assert_eq!(name, "water_heater");
    let per_heater: Vec<f64> = group_kw.iter().map(|p| p / f64::from(w.count)).collect();
    for x in lin.states(&per_heater) {
        assert!(
            x >= lin.lo - 1e-6 && x <= lin.hi + 1e-6,
            "tank {x} outside {}-{}",
            lin.lo,
            lin.hi
        );
    }
}

#[test]
fn managed_appliances_keep_full_runs_inside_windows() {
    // Appliances only: managed flex minus unmanaged flex sums to zero energy.
    let base = base_load(7);
    let mut cfg = apartment(true);
    cfg.water_heater = None;
    let m = manage("apartment", &base, &cfg, &HOURLY, &year_signals(base.len())).unwrap();
    let managed: f64 = m.managed_flex_kw.iter().sum();
    let unmanaged: f64 = m.carved.unmanaged_flex_kw.iter().sum();
    assert!(
        (managed - unmanaged).abs() < 1e-6,
        "{managed} vs {unmanaged}"
    );
    assert_eq!(m.result.runs_at_usual_time, 0);
}

#[test]
fn bad_input_names_prosumer_and_device() {
    let mut cfg = apartment(true);
    cfg.appliances[1].deadline_h = Some(22.0); // dishwasher from 20:00, 3.5 h run
    let e = cfg.validate("flat-7").unwrap_err().to_string();
    assert!(
        e.contains("flat-7") && e.contains("dishwasher") && e.contains("cannot fit"),
        "{e}"
    );

    let mut cfg = apartment(true);
    cfg.heat_pump = Some(HeatPumpConfig {
        count: 3,
        max_electric_kw: 2.0,
        cop: 3.0,
        resistance_k_per_kw: 13.0,
        capacitance_kwh_per_k: 10.0,
        comfort_min_c: 22.0,
        comfort_max_c: 21.0,
        setpoint_c: 21.5,
    });
    let e = cfg.validate("flat-7").unwrap_err().to_string();
    assert!(
        e.contains("flat-7") && e.contains("heat_pump") && e.contains("comfort band is empty"),
        "{e}"
    );

    let mut cfg = apartment(true);
    if let Some(w) = cfg.water_heater.as_mut() {
        w.tank_l = 10.0;
        w.element_kw = 0.5;
    }
    let e = cfg.validate("flat-7").unwrap_err().to_string();
    assert!(
        e.contains("flat-7") && e.contains("water_heater") && e.contains("cannot meet its draw"),
        "{e}"
    );

    assert!(apartment(true).validate("flat-7").is_ok());
}

#[test]
fn the_devices_must_fit_inside_the_homer_load() {
    let base = vec![0.5; 48];
    let e = carve_out("tiny", &base, &apartment(false), &HOURLY)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tiny") && e.contains("whole load"), "{e}");
}

#[test]
fn heat_pump_keeps_the_comfort_band() {
    let h = HeatPumpConfig {
        count: 1,
        max_electric_kw: 2.0,
        cop: 3.0,
        resistance_k_per_kw: 13.3,
        capacitance_kwh_per_k: 10.0,
        comfort_min_c: 20.0,
        comfort_max_c: 24.0,
        setpoint_c: 21.0,
    };
    let outdoor: Vec<f64> = (0..24)
        .map(|k| 2.0 + 4.0 * (f64::from(k) / 24.0 * std::f64::consts::TAU).sin())
        .collect();
    let lin = Linear::heat_pump(&h, &outdoor, 1.0, 21.0);
    let mut sig = year_signals(24);
    sig.step_hours = 1.0;
    let p = lin.optimise(&sig, 0).unwrap().unwrap();
    for x in lin.states(&p) {
        assert!((20.0 - 1e-6..=24.0 + 1e-6).contains(&x), "{x}");
    }
    let cost = |p: &[f64]| -> f64 {
        p.iter()
            .enumerate()
            .map(|(t, x)| sig.step_cost_eur(t, *x))
            .sum()
    };
    assert!(cost(&p) <= cost(&lin.thermostat()) + 1e-9);
}

#[test]
fn preferences_learn_usual_start_and_narrow_on_override() {
    let mut p = Preferences::new(20.0, 31.0, 3.5);
    assert_eq!(p.confidence(), 0.0);
    for h in [23.5, 0.5, 23.75, 0.25] {
        p.observe(Event::Started { start_h: h });
    }
    let u = p.usual_start_h().unwrap();
    assert!(
        !(0.01..=23.99).contains(&u),
        "circular mean near midnight, found {u}"
    );
    let c4 = p.confidence();
    for _ in 0..20 {
        p.observe(Event::Started { start_h: 0.0 });
    }
    assert!(p.confidence() > c4 && p.confidence() < 1.0);
    // Planned at 03:00 (late in the window): overridden by a start at 21:00.
    p.observe(Event::Override {
        planned_h: 3.0,
        start_h: 21.0,
    });
    assert!(
        p.deadline_h <= 27.0 && p.deadline_h >= 21.0 + 3.5,
        "{}",
        p.deadline_h
    );
    // Cancelled at 20:30 (early): the window now starts after it.
    p.observe(Event::Cancel { planned_h: 20.5 });
    assert!(p.earliest_start_h > 20.5 && p.earliest_start_h <= 21.0);
    assert!(p.deadline_h - p.earliest_start_h >= 3.5);
    assert!(p.acceptance() < 1.0);
}

/// Three appliances in each of `n` dwellings, every one running today (15-minute steps).
fn busy_block(n: u32) -> HomeConfig {
    let app = |kind| ApplianceConfig {
        kind,
        count: n,
        profile_kw: None,
        runs_per_week: Some(7.0),
        earliest_start_h: None,
        deadline_h: None,
        usual_start_h: None,
    };
    HomeConfig {
        dwellings: n,
        managed: true,
        appliance_power_cap_kw: 2.5,
        usual_start_spread_minutes: 180,
        grid_peak_adder_eur_per_mwh: 50.0,
        appliances: vec![
            app(ApplianceKind::WashingMachine),
            app(ApplianceKind::Dishwasher),
            app(ApplianceKind::Dryer),
        ],
        water_heater: None,
        heat_pump: None,
    }
}

#[test]
fn shared_solutions_of_identical_dwellings_equal_solving_each_and_brute_force() {
    let n = 120;
    let cfg = busy_block(n);
    let steps = 2 * 96;
    let runs: Vec<_> = year_runs(&cfg, 15, steps)
        .into_iter()
        .filter(|r| r.day == 0)
        .collect();
    // A midday surplus that runs out part way through the dwellings, an evening grid peak
    // and a finite headroom, so that the later dwellings see other prices.
    let mut base = Signals::flat(steps, 0.25, 0.0);
    for t in 0..steps {
        let h = (t / 4) % 24;
        base.price_eur_per_mwh[t] = match h {
            8..=18 => 250.0,
            7 | 19..=22 => 200.0,
            _ => 150.0,
        };
        base.surplus_price_eur_per_mwh[t] = 110.0;
        base.surplus_kw[t] = if (10..15).contains(&h) { 40.0 } else { 0.0 };
        base.grid_peak[t] = (18..21).contains(&h);
        base.headroom_kw[t] = 150.0;
    }
    base.grid_peak_adder_eur_per_mwh = 100.0;

    let mut shared_sig = base.clone();
    let mut shared_flex = vec![0.0; steps];
    assert_eq!(
        schedule_appliances(&runs, &cfg, &mut shared_sig, &mut shared_flex),
        0
    );

    // Every dwelling solved on its own, in the same order; a few checked by brute force.
    let mut sig = base.clone();
    let mut flex = vec![0.0; steps];
    let mut scratch = vec![0.0; steps];
    let mut memo = DwellingMemo::default();
    let mut memo_sig = base.clone();
    for (d, chunk) in runs.chunks(3).enumerate() {
        let group: Vec<Run> = chunk.iter().map(|r| r.run.clone()).collect();
        let p = schedule_dwelling(&group, &sig, 2.5, &mut scratch).unwrap();
        if [0, 37, n as usize - 1].contains(&d) {
            let b = brute_force_dwelling(&group, &sig, 2.5).unwrap();
            assert!((b.cost_eur - p.cost_eur).abs() < 1e-9, "dwelling {d}");
        }
        let m = memo.schedule(&group, &memo_sig, 2.5, &mut scratch).unwrap();
        assert_eq!(m, p.starts, "dwelling {d}");
        for (r, s) in group.iter().zip(&p.starts) {
            for (k, pk) in r.power_kw.iter().enumerate() {
                sig.consume(s + k, *pk);
                memo_sig.consume(s + k, *pk);
                flex[s + k] += pk;
            }
        }
    }
    assert_eq!(flex, shared_flex);
    assert!(memo.reused > 0 && memo.searches > 1, "{memo:?}");
}
