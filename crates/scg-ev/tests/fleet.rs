//! Tests of the synthetic generator, the scenario config and the fleet simulator.
#![allow(clippy::unwrap_used)]

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scg_ev::fleet::{Fleet, FleetConfig, FleetTime, StepSignals};
use scg_ev::model::EvSpec;
use scg_ev::synth::{DriverType, driver_sessions};

fn cfg(text: &str) -> FleetConfig {
    toml::from_str(text).expect("valid fleet config")
}

fn two_weeks(step_minutes: u32) -> FleetTime {
    FleetTime {
        step_minutes,
        steps: (14 * 1440 / step_minutes) as usize,
        start_weekday: 0,
    }
}

#[test]
fn commuter_distribution_matches_the_documented_one() {
    let ev = EvSpec::ideal(7.4);
    let ev = EvSpec {
        battery_kwh: 60.0,
        ..ev
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let day0 = 4 * 1440; // a Monday
    let mut arrivals = Vec::new();
    let mut stays = Vec::new();
    for d in 0..50 {
        let s = driver_sessions(
            &mut rng,
            DriverType::Commuter,
            &format!("c{d}"),
            &ev,
            day0,
            0,
            70,
        );
        for x in &s {
            assert!(x.arrival_weekday() < 5, "commuters come on weekdays only");
            arrivals.push((x.arrival_min - day0).rem_euclid(1440) as f64 / 60.0);
            stays.push(x.stay_hours());
            assert!(x.target_energy_kwh() <= 60.0 + 1e-9);
            assert!(x.stated_energy_kwh.unwrap() >= 1.2 * x.energy_kwh - 1e-9);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // 50 drivers × 50 weekdays × p 0.9 ≈ 2,250 sessions; mean of N(8.5, 0.75) within 0.1 h.
    assert!(
        (arrivals.len() as f64 - 2250.0).abs() < 150.0,
        "{}",
        arrivals.len()
    );
    assert!((mean(&arrivals) - 8.5).abs() < 0.1, "{}", mean(&arrivals));
    assert!((mean(&stays) - 8.5).abs() < 0.15, "{}", mean(&stays));
}

#[test]
fn config_rejects_unknown_fields_and_bad_values() {
    let e = toml::from_str::<FleetConfig>("charge_points = 1\ncharge_point_kw = 7\ncars = 3\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cars"), "{e}");
    let c = cfg("charge_points = 1\ncharge_point_kw = 7\nv2g_share = 1.5\n");
    let e = c.validate("prosumers[2].ev").unwrap_err().to_string();
    assert!(e.contains("prosumers[2].ev.v2g_share"), "{e}");
    let c = cfg("charge_points = 1\ncharge_point_kw = 7\npolicy = \"magic\"\n");
    assert!(
        c.validate("ev")
            .unwrap_err()
            .to_string()
            .contains("ev.policy")
    );
}

#[test]
fn fleet_is_deterministic_and_conserves_energy() {
    let c = cfg(
        "residents = 6\ncommuters = 4\ncharge_points = 8\ncharge_point_kw = 7.4\nv2g_share = 0.5\nsite_limit_kw = 25\npolicy = \"mpc\"\n",
    );
    let time = two_weeks(60);
    let prices: Vec<f64> = (0..time.steps)
        .map(|t| {
            if (17..21).contains(&(t % 24)) {
                300.0
            } else {
                80.0
            }
        })
        .collect();
    let peaks: Vec<bool> = (0..time.steps)
        .map(|t| (18..20).contains(&(t % 24)))
        .collect();
    let mut a = Fleet::new(&c, time, 11).unwrap();
    let ra = a.run(&prices, &peaks).unwrap();
    let mut b = Fleet::new(&c, time, 11).unwrap();
    let rb = b.run(&prices, &peaks).unwrap();
    assert_eq!(ra, rb);
    let mut other = Fleet::new(&c, time, 12).unwrap();
    assert_ne!(other.run(&prices, &peaks).unwrap(), ra);

    // Battery energy gained by departed vehicles = η·charged − discharged/η.
    let dt = 1.0;
    let charged: f64 = ra.iter().map(|p| p.charge_kw * dt).sum();
    let given: f64 = ra.iter().map(|p| p.v2g_kw * dt).sum();
    let initial: std::collections::BTreeMap<&str, f64> = a
        .sessions()
        .iter()
        .map(|s| (s.id.as_str(), s.initial_energy_kwh))
        .collect();
    let gained: f64 = a
        .departures()
        .iter()
        .map(|d| d.energy_kwh - initial[d.session_id.as_str()])
        .sum();
    assert!(
        (gained - (0.95 * charged - given / 0.95)).abs() < 1e-6,
        "{gained} vs {charged}, {given}"
    );
    assert_eq!(a.departures().len(), a.sessions().len());
    // The site limit holds to the interior-point solver's tolerance (relative 1e-5).
    let tol = 25.0 * 1e-5;
    for p in &ra {
        assert!(
            p.charge_kw - p.v2g_kw <= 25.0 + tol && p.v2g_kw - p.charge_kw <= 25.0 + tol,
            "{p:?}"
        );
    }
    for d in a.departures() {
        assert!(d.energy_kwh <= d.wanted_energy_kwh + 1e-6);
    }
    // Overnight residents with 7.4 kW mostly leave with what they wanted.
    let ok = a
        .departures()
        .iter()
        .filter(|d| d.got_charge_point && d.soc >= d.wanted_soc - 0.02)
        .count();
    assert!(
        ok as f64 >= 0.8 * a.departures().len() as f64,
        "{ok} of {}",
        a.departures().len()
    );
    // V2G happens in the expensive evening hours, never in the cheap night.
    let v2g_evening: f64 = ra
        .iter()
        .enumerate()
        .filter(|(t, _)| (17..21).contains(&(t % 24)))
        .map(|(_, p)| p.v2g_kw)
        .sum();
    let v2g_night: f64 = ra
        .iter()
        .enumerate()
        .filter(|(t, _)| (0..6).contains(&(t % 24)))
        .map(|(_, p)| p.v2g_kw)
        .sum();
    assert!(v2g_evening > 1.0, "{v2g_evening}");
    assert!(v2g_night < 1e-3, "{v2g_night}");
}

#[test]
fn step_by_step_equals_run_and_rejects_out_of_order_steps() {
    let c = cfg("shoppers = 20\ncharge_points = 2\ncharge_point_kw = 22\npolicy = \"llf\"\n");
    let time = two_weeks(15);
    let prices = vec![100.0; time.steps];
    let peaks = vec![false; time.steps];
    let mut a = Fleet::new(&c, time, 3).unwrap();
    let ra = a.run(&prices, &peaks).unwrap();
    let mut b = Fleet::new(&c, time, 3).unwrap();
    for (t, want) in ra.iter().enumerate().take(200) {
        let s = StepSignals {
            price_eur_per_mwh: 100.0,
            grid_peak: false,
            price_forecast_eur_per_mwh: &prices[t..],
            grid_peak_forecast: &peaks[t..],
        };
        assert_eq!(&b.step(t, &s).unwrap(), want);
    }
    assert!(b.step(500, &StepSignals::now(1.0, false)).is_err());
    assert!(ra.iter().all(|p| p.plugged_in <= 2));
}

#[test]
fn swap_station_meets_its_service_level() {
    let c = cfg(
        "charge_points = 1\ncharge_point_kw = 7\n[swap_station]\npacks = 12\npack_kwh = 50\nchargers = 4\ncharger_kw = 30\nswaps_per_day = 20\nservice_level = 0.95\n",
    );
    let time = two_weeks(15);
    let prices: Vec<f64> = (0..time.steps)
        .map(|t| if (t / 4) % 24 < 8 { 50.0 } else { 150.0 })
        .collect();
    let mut f = Fleet::new(&c, time, 5).unwrap();
    let r = f.run(&prices, &[]).unwrap();
    let requested: u32 = r.iter().map(|p| p.swaps_requested).sum();
    let missed: u32 = r.iter().map(|p| p.swaps_missed).sum();
    // 14 days × 20 swaps/day = 280 expected.
    assert!((requested as f64 - 280.0).abs() < 60.0, "{requested}");
    assert!(
        (missed as f64) <= 0.05 * requested as f64,
        "{missed}/{requested}"
    );
    // Energy: each swap returns a pack at 20 %, so ≈ 0.8 × 50 kWh / 0.95 per swap.
    let swap_kwh: f64 = r.iter().map(|p| p.swap_kw * 0.25).sum();
    let served = f64::from(requested - missed);
    assert!(
        (swap_kwh - served * 40.0 / 0.95).abs() < 12.0 * 50.0,
        "{swap_kwh}"
    );
}

/// Step a fleet through two weeks at `prices`, skipping every step it rests through (each
/// skipped step given [`Fleet::resting`]), and count the steps run.
fn skipping(f: &mut Fleet, prices: &[f64]) -> (Vec<scg_ev::fleet::EvStepPower>, usize) {
    let (mut out, mut run) = (Vec::new(), 0);
    while out.len() < prices.len() {
        let t = f.quiet_until().max(out.len());
        while out.len() < t {
            out.push(f.resting());
        }
        let s = StepSignals {
            price_eur_per_mwh: prices[t],
            grid_peak: false,
            price_forecast_eur_per_mwh: &prices[t..],
            grid_peak_forecast: &[],
        };
        out.push(f.step(t, &s).unwrap());
        run += 1;
    }
    (out, run)
}

#[test]
fn a_fleet_that_skips_its_resting_steps_gives_the_bytes_of_every_step() {
    let time = two_weeks(15);
    let prices: Vec<f64> = (0..time.steps)
        .map(|t| if (t / 4) % 24 < 7 { 60.0 } else { 140.0 })
        .collect();
    for policy in ["llf", "edf", "fcfs", "uncontrolled", "round-robin"] {
        let c = cfg(&format!(
            "residents = 2\ncommuters = 3\ncharge_points = 2\ncharge_point_kw = 7.4\n\
             v2g_share = 0.5\npolicy = \"{policy}\"\n"
        ));
        let every = Fleet::new(&c, time, 11).unwrap().run(&prices, &[]).unwrap();
        let mut f = Fleet::new(&c, time, 11).unwrap();
        let (skipped, run) = skipping(&mut f, &prices);
        assert_eq!(format!("{skipped:?}"), format!("{every:?}"), "{policy}");
        let mut g = Fleet::new(&c, time, 11).unwrap();
        g.run(&prices, &[]).unwrap();
        assert_eq!(
            format!("{:?}", f.departures()),
            format!("{:?}", g.departures())
        );
        // The cars charge a few hours a day: most steps rest.
        assert!(
            run * 2 < time.steps,
            "{policy}: {run} of {} steps run",
            time.steps
        );
    }
}

#[test]
fn a_fleet_that_plans_never_rests_and_no_step_skips_a_waking_one() {
    let time = two_weeks(60);
    let mpc = cfg("residents = 2\ncharge_points = 2\ncharge_point_kw = 7.4\npolicy = \"mpc\"\n");
    let mut f = Fleet::new(&mpc, time, 3).unwrap();
    for t in 0..48 {
        assert_eq!(f.quiet_until(), t);
        f.step(t, &StepSignals::now(100.0, false)).unwrap();
    }
    let llf = cfg("residents = 2\ncharge_points = 2\ncharge_point_kw = 7.4\npolicy = \"llf\"\n");
    let mut f = Fleet::new(&llf, time, 3).unwrap();
    let mut t = 0;
    while f.quiet_until() <= t + 1 {
        f.step(t, &StepSignals::now(100.0, false)).unwrap();
        t += 1;
    }
    let wake = f.quiet_until();
    assert!(f.step(wake + 1, &StepSignals::now(100.0, false)).is_err());
    f.step(wake, &StepSignals::now(100.0, false)).unwrap();
}
