//! The home agents inside the community step (`[prosumers.home]`, `scg_sim::home`): unmanaged
//! they reproduce the HOMER load exactly; managed they move device energy and the step's
//! energy balance (asserted inside `Community::step`) holds; bad sections are errors naming
//! the prosumer and the device.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use scg_model::builtin;
use scg_sim::{Assets, SimResult, simulate_scenario};

/// The apartment's home section (30 dwellings, as in the built-in scenario).
const HOME: &str = r#"
dwellings = 30
managed = true
[[appliances]]
kind = "washing_machine"
count = 29
runs_per_week = 4.0
[[appliances]]
kind = "dishwasher"
count = 15
runs_per_week = 5.0
[[appliances]]
kind = "dryer"
count = 5
[water_heater]
count = 6
"#;

/// The built-in community without EVs (the MPC dominates a debug build's time; the home
/// stage does not depend on it), the apartment with [`HOME`] edited by `edit`.
fn scenario(edit: impl Fn(&mut toml::Table)) -> scg_model::Scenario {
    let mut s = builtin::bergamo().unwrap();
    for p in &mut s.prosumers {
        p.ev = None;
    }
    let mut home: toml::Table = HOME.parse().unwrap();
    edit(&mut home);
    s.prosumers[0].home = Some(home);
    s
}

fn run(s: &scg_model::Scenario) -> SimResult {
    simulate_scenario(s, &mut |_| Err("no files".into()), 7, &mut |_, _| {}).unwrap()
}

#[test]
fn unmanaged_home_reproduces_the_homer_load_exactly_and_managed_shifts_it() {
    let unmanaged = run(&scenario(|h| {
        h.insert("managed".into(), toml::Value::Boolean(false));
    }));
    let mut without = scenario(|_| {});
    without.prosumers[0].home = None;
    let plain = run(&without);
    let (u, p) = (&unmanaged.prosumers[0], &plain.prosumers[0]);
    // Same energy per step, bit for bit, and the same flows behind the meter.
    assert_eq!(u.load.load_kw, p.load.load_kw);
    assert_eq!(u.flows.grid_import_kw, p.flows.grid_import_kw);
    assert_eq!(u.flows.battery_in_kw, p.flows.battery_in_kw);
    let home = u.home.as_ref().unwrap();
    assert_eq!(home.shifted_energy_kwh, 0.0);
    assert_eq!(home.savings_eur_per_year, 0.0);
    assert_eq!(home.peak_unmanaged_kw, home.peak_managed_kw);
    assert!(p.home.is_none());

    let managed = run(&scenario(|_| {}));
    let m = &managed.prosumers[0];
    let home = m.home.as_ref().unwrap();
    assert!(home.shifted_energy_kwh > 1000.0, "{home:?}");
    assert!(home.savings_eur_per_year > 0.0, "{home:?}");
    assert!(home.appliance_runs > 5000, "{home:?}");
    // The load the prosumer drew is the one the step balanced: the reported load differs
    // from the HOMER load, the inflexible part never goes negative, and the other
    // prosumers are untouched in their loads.
    assert_ne!(m.load.load_kw, p.load.load_kw);
    assert!(m.load.load_kw.iter().all(|l| *l >= 0.0));
    for (a, b) in managed.prosumers[1..].iter().zip(&plain.prosumers[1..]) {
        assert_eq!(a.load.load_kw, b.load.load_kw);
    }
    // Appliances move but keep their energy; only the water heaters' losses and end state
    // may change the year's device energy (a few percent of it at most).
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let diff = (sum(&m.load.load_kw) - sum(&p.load.load_kw)).abs();
    assert!(diff < 0.01 * sum(&p.load.load_kw), "{diff}");
}

fn problems(edit: impl Fn(&mut toml::Table)) -> Vec<(String, String)> {
    Assets::from_scenario(&scenario(edit))
        .unwrap_err()
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

#[test]
fn an_appliance_that_cannot_fit_its_window_names_prosumer_and_device() {
    let errs = problems(|h| {
        let apps = h.get_mut("appliances").unwrap().as_array_mut().unwrap();
        let dw = apps[1].as_table_mut().unwrap();
        dw.insert("earliest_start_h".into(), toml::Value::Float(20.0));
        dw.insert("deadline_h".into(), toml::Value::Float(22.0));
        dw.insert("usual_start_h".into(), toml::Value::Float(20.0));
    });
    assert_eq!(errs.len(), 1, "{errs:?}");
    let (path, msg) = &errs[0];
    assert_eq!(path, "prosumers[0].home.appliances[1].deadline_h");
    assert!(
        msg.contains("apartment") && msg.contains("dishwasher"),
        "{msg}"
    );
    assert!(msg.contains("cannot fit its window"), "{msg}");
}

#[test]
fn an_empty_comfort_band_and_a_short_tank_are_errors() {
    let errs = problems(|h| {
        let mut hp = toml::Table::new();
        hp.insert("count".into(), toml::Value::Integer(0));
        hp.insert("comfort_min_c".into(), toml::Value::Float(22.0));
        hp.insert("comfort_max_c".into(), toml::Value::Float(21.0));
        h.insert("heat_pump".into(), toml::Value::Table(hp));
    });
    assert!(
        errs.iter()
            .any(|(p, m)| p == "prosumers[0].home.heat_pump.comfort_min_c"
                && m.contains("apartment")
                && m.contains("comfort band is empty")),
        "{errs:?}"
    );
    let errs = problems(|h| {
        let wh = h.get_mut("water_heater").unwrap().as_table_mut().unwrap();
        wh.insert("tank_l".into(), toml::Value::Float(15.0));
    });
    assert!(
        errs.iter()
            .any(|(p, m)| p == "prosumers[0].home.water_heater.tank_l"
                && m.contains("apartment")
                && m.contains("cannot meet its draw")),
        "{errs:?}"
    );
    let errs = problems(|h| {
        h.insert("bogus".into(), toml::Value::Integer(1));
    });
    assert!(errs.iter().any(|(_, m)| m.contains("bogus")), "{errs:?}");
}

#[test]
fn heat_pumps_run_in_the_step_against_the_outdoor_temperature() {
    let with_hp = |managed: bool| {
        scenario(move |h| {
            h.insert("managed".into(), toml::Value::Boolean(managed));
            let mut hp = toml::Table::new();
            hp.insert("count".into(), toml::Value::Integer(3));
            h.insert("heat_pump".into(), toml::Value::Table(hp));
        })
    };
    // Accepted at `scenario check` now that the step has an outdoor temperature.
    assert!(Assets::from_scenario(&with_hp(true)).is_ok());
    let unmanaged = run(&with_hp(false));
    let mut without = scenario(|_| {});
    without.prosumers[0].home = None;
    let plain = run(&without);
    // Unmanaged: the HOMER load bit for bit (the thermostat's power was carved out of it and
    // is put back unchanged).
    assert_eq!(
        unmanaged.prosumers[0].load.load_kw,
        plain.prosumers[0].load.load_kw
    );
    let managed = run(&with_hp(true));
    let home = managed.prosumers[0].home.as_ref().unwrap();
    assert!(home.shifted_energy_kwh > 0.0, "{home:?}");
    assert_ne!(
        managed.prosumers[0].load.load_kw,
        plain.prosumers[0].load.load_kw
    );
}
