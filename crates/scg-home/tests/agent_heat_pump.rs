//! A home agent with heat pumps, as the community step runs it (`scg_sim::home::HomeStage`
//! hands it the weather's outdoor temperature): unmanaged it returns the HOMER load bit for
//! bit; managed the indoor temperature its heat pumps give stays in the comfort band in every
//! step, and the load outside the heat pumps is unchanged.
#![allow(clippy::unwrap_used)]

use scg_home::agent::{AgentSettings, HomeAgent, StepForecast};
use scg_home::carve::{HomeInputs, carve_out};
use scg_home::config::{HeatPumpConfig, HomeConfig};
use scg_home::thermal::Linear;

const DAYS: usize = 3;
const STEP_MINUTES: u32 = 15;
const SPD: usize = 96;

fn config(managed: bool) -> HomeConfig {
    HomeConfig {
        dwellings: 30,
        managed,
        appliance_power_cap_kw: 2.5,
        usual_start_spread_minutes: 180,
        grid_peak_adder_eur_per_mwh: 50.0,
        appliances: Vec::new(),
        water_heater: None,
        heat_pump: Some(heat_pump()),
    }
}

fn heat_pump() -> HeatPumpConfig {
    HeatPumpConfig {
        count: 12,
        max_electric_kw: 2.0,
        cop: 3.0,
        resistance_k_per_kw: 13.3,
        capacitance_kwh_per_k: 10.0,
        comfort_min_c: 20.0,
        comfort_max_c: 24.0,
        setpoint_c: 21.0,
    }
}

/// A winter week's outdoor temperature: −2..8 °C, coldest at 05:00.
fn outdoor() -> Vec<f64> {
    (0..DAYS * SPD)
        .map(|k| {
            let h = (k % SPD) as f64 / 4.0;
            3.0 - 5.0 * ((h - 5.0) / 24.0 * std::f64::consts::TAU).cos()
        })
        .collect()
}

/// An apartment block's load with room for the heat pumps, kW per step.
fn load() -> Vec<f64> {
    (0..DAYS * SPD)
        .map(|k| {
            let h = (k % SPD) as f64 / 4.0;
            40.0 + 15.0 * ((h - 20.0) / 24.0 * std::f64::consts::TAU).cos()
        })
        .collect()
}

fn prices() -> Vec<f64> {
    (0..2 * SPD)
        .map(|k| match (k % SPD) / 4 {
            8..=18 => 250.0,
            7 | 19..=22 => 200.0,
            _ => 150.0,
        })
        .collect()
}

/// The agent's output load per step over the days.
fn run(managed: bool) -> Vec<f64> {
    let (load, outdoor) = (load(), outdoor());
    let settings = AgentSettings {
        step_minutes: STEP_MINUTES,
        surplus_price_eur_per_mwh: 110.0,
    };
    let mut agent = HomeAgent::new(
        "apartment",
        &config(managed),
        &load,
        Some(&outdoor),
        settings,
    )
    .unwrap();
    let prices = prices();
    let mut out = Vec::new();
    for (step, l) in load.iter().enumerate() {
        let k = step % SPD;
        let fc = StepForecast {
            retail_eur_per_mwh: &prices[k..],
            grid_at_peak: &[],
            community_surplus_kw: &[],
        };
        if agent.plans_at(step) {
            let mut surplus = vec![0.0; 2 * SPD];
            agent.plan_day(step, &fc, &mut surplus).unwrap();
        }
        out.push(agent.adjust(step, *l, &fc));
    }
    out
}

#[test]
fn without_outdoor_temperatures_a_heat_pump_is_an_error() {
    let settings = AgentSettings {
        step_minutes: STEP_MINUTES,
        surplus_price_eur_per_mwh: 110.0,
    };
    let e = HomeAgent::new("apartment", &config(true), &load(), None, settings)
        .unwrap_err()
        .to_string();
    assert!(e.contains("apartment") && e.contains("heat_pump"), "{e}");
}

#[test]
fn unmanaged_heat_pumps_reproduce_the_load_and_managed_keep_the_band() {
    let load = load();
    let outdoor = outdoor();
    assert_eq!(run(false), load, "unmanaged: the HOMER load bit for bit");

    let managed = run(true);
    let inputs = HomeInputs {
        step_minutes: STEP_MINUTES,
        outdoor_c: Some(&outdoor),
    };
    let carved = carve_out("apartment", &load, &config(true), &inputs).unwrap();
    let hp = heat_pump();
    let count = f64::from(hp.count);
    // What the agent's heat pumps draw: its load minus the inflexible load, per dwelling.
    let per_device: Vec<f64> = managed
        .iter()
        .zip(&carved.inflexible_kw)
        .map(|(m, i)| (m - i) / count)
        .collect();
    assert!(
        per_device
            .iter()
            .all(|p| (-1e-9..=hp.max_electric_kw + 1e-9).contains(p)),
        "{per_device:?}"
    );
    let lin = Linear::heat_pump(&hp, &outdoor, 0.25, hp.setpoint_c);
    for (k, x) in lin.states(&per_device).iter().enumerate() {
        assert!(
            (hp.comfort_min_c - 1e-6..=hp.comfort_max_c + 1e-6).contains(x),
            "step {k}: {x} °C"
        );
    }
    // Managed, the heat pumps move their energy: not the thermostat's profile.
    let unmanaged_hp: Vec<f64> = carved.unmanaged_flex_kw.iter().map(|u| u / count).collect();
    assert_ne!(per_device, unmanaged_hp);
}
