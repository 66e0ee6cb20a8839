//! Battery models against hand-computed values and an independent numerical integration of
//! the kinetic model's differential equations.

#![allow(clippy::unwrap_used)]

use scg_sim::ComponentError;
use scg_sim::battery::{
    Battery, BatteryConfig, BatteryModelKind, BatteryParams, IdealBattery, KineticBattery,
    KineticParams, Storage, battery_life_years, wear_cost_eur_per_kwh,
};

fn params(initial_soc: f64, min_soc: f64) -> BatteryParams {
    BatteryParams {
        capacity_kwh: 10.0,
        round_trip_efficiency: 0.81,
        min_soc,
        initial_soc,
        max_charge_kw: 4.0,
        max_discharge_kw: 4.0,
    }
}

fn homer_lead_acid() -> KineticParams {
    KineticParams {
        capacity_ratio: 0.403,
        rate_constant_per_h: 0.827,
        max_charge_rate_per_h: f64::INFINITY,
        max_charge_current_kw: f64::INFINITY,
    }
}

#[test]
fn ideal_battery_hand_computed_cycle() {
    // η_rt = 0.81 → η_c = η_d = 0.9. Start at 5 kWh of 10.
    let mut b = IdealBattery::new(params(0.5, 0.2)).unwrap();
    assert!((b.charge_efficiency() - 0.9).abs() < 1e-15);
    // Room 5 kWh needs 5/0.9 = 5.56 kW for an hour; the 4 kW limit binds.
    assert!((b.max_charge_kw(1.0) - 4.0).abs() < 1e-12);
    let f = b.charge(4.0, 1.0).unwrap();
    assert!((b.stored_kwh() - 8.6).abs() < 1e-12, "5 + 4·0.9");
    assert!((f.loss_kwh - 0.4).abs() < 1e-12);
    // Room 1.4 kWh → 1.4/0.9 kW; a 3 kW request is clamped to it.
    assert!((b.max_charge_kw(1.0) - 1.4 / 0.9).abs() < 1e-12);
    let f = b.charge(3.0, 1.0).unwrap();
    assert!((f.power_kw - 1.4 / 0.9).abs() < 1e-12);
    assert!((b.soc() - 1.0).abs() < 1e-12);
    assert_eq!(b.max_charge_kw(1.0), 0.0);
    // Discharge 4 kW for an hour: the tank loses 4/0.9 kWh, all of it throughput.
    let f = b.discharge(4.0, 1.0).unwrap();
    assert!((b.stored_kwh() - (10.0 - 4.0 / 0.9)).abs() < 1e-12);
    assert!((b.throughput_kwh() - 4.0 / 0.9).abs() < 1e-12);
    assert!((f.loss_kwh - (4.0 / 0.9 - 4.0)).abs() < 1e-12);
    // Usable above 20 %: 10 − 4.444 − 2 = 3.556 kWh → 3.2 kW over an hour.
    assert!((b.max_discharge_kw(1.0) - (8.0 - 4.0 / 0.9) * 0.9).abs() < 1e-12);
    b.discharge(100.0, 1.0).unwrap();
    assert!((b.soc() - 0.2).abs() < 1e-12);
    assert_eq!(b.max_discharge_kw(1.0), 0.0);
    // A 15-minute step allows 4x the power for the same energy, up to the power limit.
    let b = IdealBattery::new(params(0.5, 0.2)).unwrap();
    assert!((b.max_discharge_kw(0.25) - 4.0).abs() < 1e-12);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let mut b = IdealBattery::new(params(0.5, 0.2)).unwrap();
    assert!(matches!(
        b.charge(-1.0, 1.0),
        Err(ComponentError::InvalidInput { .. })
    ));
    assert!(matches!(
        b.discharge(f64::NAN, 1.0),
        Err(ComponentError::InvalidInput { .. })
    ));
    assert!(matches!(
        b.charge(1.0, 0.0),
        Err(ComponentError::InvalidInput { .. })
    ));
    assert_eq!(b.max_charge_kw(-1.0), 0.0);
    let mut p = params(0.1, 0.2);
    assert!(IdealBattery::new(p).is_err(), "initial below minimum");
    p.initial_soc = 0.5;
    p.round_trip_efficiency = 1.2;
    assert!(IdealBattery::new(p).is_err());
    let mut k = homer_lead_acid();
    k.capacity_ratio = 1.0;
    assert!(KineticBattery::new(params(0.5, 0.2), k).is_err());
}

/// dQ1/dt = −P − k·((1 − c)·Q1 − c·Q2), dQ2/dt = k·((1 − c)·Q1 − c·Q2): the two-tank model
/// with HOMER's rate constant k = k′/(c(1 − c)) (Manwell & McGowan 1993), integrated by RK4.
fn rk4(q1: f64, q2: f64, p: f64, c: f64, k: f64, dt: f64) -> (f64, f64) {
    let f = |q1: f64, q2: f64| {
        let flow = k * ((1.0 - c) * q1 - c * q2);
        (-p - flow, flow)
    };
    let n = 20_000;
    let h = dt / n as f64;
    let (mut a, mut b) = (q1, q2);
    for _ in 0..n {
        let (k1a, k1b) = f(a, b);
        let (k2a, k2b) = f(a + 0.5 * h * k1a, b + 0.5 * h * k1b);
        let (k3a, k3b) = f(a + 0.5 * h * k2a, b + 0.5 * h * k2b);
        let (k4a, k4b) = f(a + h * k3a, b + h * k3b);
        a += h / 6.0 * (k1a + 2.0 * k2a + 2.0 * k3a + k4a);
        b += h / 6.0 * (k1b + 2.0 * k2b + 2.0 * k3b + k4b);
    }
    (a, b)
}

#[test]
fn kibam_closed_form_matches_ode_integration() {
    let (c, k) = (0.403, 0.827);
    for (soc, tank_kw, dt) in [(1.0, 3.0, 1.0), (0.6, 1.5, 0.25), (0.5, -2.0, 1.0)] {
        let p = BatteryParams {
            round_trip_efficiency: 1.0,
            min_soc: 0.0,
            initial_soc: soc,
            max_charge_kw: 100.0,
            max_discharge_kw: 100.0,
            ..params(soc, 0.0)
        };
        let mut b = KineticBattery::new(p, homer_lead_acid()).unwrap();
        let (q1, q2) = (b.available_kwh(), b.bound_kwh());
        if tank_kw > 0.0 {
            b.discharge(tank_kw, dt).unwrap();
        } else {
            b.charge(-tank_kw, dt).unwrap();
        }
        let (e1, e2) = rk4(q1, q2, tank_kw, c, k, dt);
        assert!(
            (b.available_kwh() - e1).abs() < 1e-9,
            "Q1 {} vs {e1}",
            b.available_kwh()
        );
        assert!(
            (b.bound_kwh() - e2).abs() < 1e-9,
            "Q2 {} vs {e2}",
            b.bound_kwh()
        );
    }
}

#[test]
fn kibam_max_discharge_empties_the_available_tank() {
    // Full battery (Q = 10 kWh, Q1 = 4.03): hand computation of HOMER's P_dmax,kbm over 1 h,
    // e = exp(−0.827) = 0.437359...:
    //   [k·Q1·e + Q·k·c·(1 − e)] / [(1 − e) + c·(k·Δt − 1 + e)]
    let (c, k, q, q1) = (0.403_f64, 0.827_f64, 10.0_f64, 4.03_f64);
    let e = (-k).exp();
    let expected = (k * q1 * e + q * k * c * (1.0 - e)) / ((1.0 - e) + c * (k - 1.0 + e));
    assert!(
        (expected - 4.98).abs() < 0.01,
        "about 4.98 kW, got {expected}"
    );
    let p = BatteryParams {
        min_soc: 0.0,
        max_discharge_kw: 100.0,
        ..params(1.0, 0.0)
    };
    let mut b = KineticBattery::new(p, homer_lead_acid()).unwrap();
    assert!((b.kibam_max_discharge_kw(1.0) - expected).abs() < 1e-12);
    // Discharge losses come after the tanks: terminal max = η_d · P_dmax,kbm.
    assert!((b.max_discharge_kw(1.0) - 0.9 * expected).abs() < 1e-12);
    b.discharge(1000.0, 1.0).unwrap();
    assert!(
        b.available_kwh().abs() < 1e-9,
        "Q1 emptied: {}",
        b.available_kwh()
    );
    assert!((b.stored_kwh() - (10.0 - expected)).abs() < 1e-9);
    // The rate effect: far less than the 10 kWh an ideal battery could give in an hour.
    assert!(b.stored_kwh() > 4.9);
}

#[test]
fn kibam_charge_limits() {
    // Half-full, equilibrium. Max charge by KiBaM fills Q1 to c·Q_max at the end of the step.
    let p = BatteryParams {
        round_trip_efficiency: 1.0,
        min_soc: 0.0,
        max_charge_kw: 100.0,
        ..params(0.5, 0.0)
    };
    let mut b = KineticBattery::new(p, homer_lead_acid()).unwrap();
    let kbm = b.kibam_max_charge_kw(1.0);
    assert!(
        (b.max_charge_kw(1.0) - kbm).abs() < 1e-12,
        "no other limit binds"
    );
    b.charge(kbm, 1.0).unwrap();
    assert!((b.available_kwh() - 0.403 * 10.0).abs() < 1e-9);

    // Max charge rate α_c = 0.3 A/Ah: (1 − e^(−0.3·1))·(Q_max − Q)/1 = 0.2592·5 = 1.296 kW,
    // below the KiBaM limit (about 2.49 kW here).
    let kin = KineticParams {
        max_charge_rate_per_h: 0.3,
        ..homer_lead_acid()
    };
    let b = KineticBattery::new(p, kin).unwrap();
    let mcr = (1.0 - (-0.3_f64).exp()) * 5.0;
    assert!(b.kibam_max_charge_kw(1.0) > mcr, "so mcr binds");
    assert!((b.max_charge_kw(1.0) - mcr).abs() < 1e-12);

    // Max charge current: 100 A at 12 V = 1.2 kW at the tanks, /η_c at the terminals.
    let kin = KineticParams {
        max_charge_current_kw: 1.2,
        ..homer_lead_acid()
    };
    let p81 = BatteryParams {
        round_trip_efficiency: 0.81,
        ..p
    };
    let b = KineticBattery::new(p81, kin).unwrap();
    assert!((b.max_charge_kw(1.0) - 1.2 / 0.9).abs() < 1e-12);
}

#[test]
fn kibam_respects_min_soc() {
    let p = BatteryParams {
        min_soc: 0.4,
        max_discharge_kw: 100.0,
        ..params(0.5, 0.4)
    };
    let mut b = KineticBattery::new(p, homer_lead_acid()).unwrap();
    // Only 1 kWh above the minimum: 1 kWh/h at the tanks, 0.9 kW at the terminals.
    assert!((b.max_discharge_kw(1.0) - 0.9).abs() < 1e-12);
    b.discharge(50.0, 1.0).unwrap();
    assert!((b.soc() - 0.4).abs() < 1e-12);
}

#[test]
fn lifetime_and_wear_cost() {
    // 800 kWh lifetime throughput at 100 kWh/year → 8 years, unless the float life is shorter.
    assert!((battery_life_years(Some(800.0), 100.0, 15.0) - 8.0).abs() < 1e-12);
    assert!((battery_life_years(Some(800.0), 10.0, 15.0) - 15.0).abs() < 1e-12);
    assert!((battery_life_years(None, 100.0, 15.0) - 15.0).abs() < 1e-12);
    assert!((battery_life_years(Some(800.0), 0.0, 15.0) - 15.0).abs() < 1e-12);
    // C_bw = C_rep / (Q_lifetime·√η_rt) = 200 / (800·0.9) = 0.2778 EUR/kWh.
    assert!((wear_cost_eur_per_kwh(200.0, Some(800.0), 0.81) - 200.0 / 720.0).abs() < 1e-12);
    assert_eq!(wear_cost_eur_per_kwh(200.0, None, 0.81), 0.0);
}

#[test]
fn config_defaults_build_both_models() {
    let cfg: BatteryConfig = toml::from_str(
        "capacity_kwh = 20.0\nmax_charge_power_kw = 5.0\nmax_discharge_power_kw = 5.0\n",
    )
    .unwrap();
    assert_eq!(cfg.model, BatteryModelKind::Idealized);
    assert_eq!(cfg.round_trip_efficiency_pct, 90.0);
    assert_eq!(cfg.min_soc_pct, 20.0);
    assert_eq!(cfg.initial_soc_pct, 100.0);
    assert!(cfg.validate("p.battery").is_empty());
    let b = Battery::from_config(&cfg).unwrap();
    assert!((b.stored_kwh() - 20.0).abs() < 1e-12);
    assert!((b.charge_efficiency() - 0.9_f64.sqrt()).abs() < 1e-15);

    let cfg: BatteryConfig = toml::from_str(
        "model = \"kinetic\"\ncapacity_kwh = 20.0\nmax_charge_power_kw = 5.0\n\
         max_discharge_power_kw = 5.0\nlifetime_throughput_kwh = 16000.0\n\
         replacement_cost_eur_per_kwh = 100.0\n[kinetic]\nmax_charge_current_a = 50.0\n",
    )
    .unwrap();
    assert_eq!(cfg.kinetic.capacity_ratio, 0.403);
    assert_eq!(cfg.kinetic.rate_constant_per_h, 0.827);
    let b = Battery::from_config(&cfg).unwrap();
    assert!(matches!(b, Battery::Kinetic(_)));
    // 2000 EUR / (16000 kWh · √0.9)
    assert!((cfg.wear_cost_eur_per_kwh() - 2000.0 / (16000.0 * 0.9_f64.sqrt())).abs() < 1e-12);
    let costs = cfg.costs(2000.0);
    assert!((costs.lifetime_years - 8.0).abs() < 1e-12);
    assert!((costs.replacement_eur - 2000.0).abs() < 1e-12);
}

#[test]
fn config_rejects_unknown_fields_and_reports_every_problem() {
    let err = toml::from_str::<BatteryConfig>(
        "capacity_kwh = 1.0\nmax_charge_power_kw = 1.0\nmax_discharge_power_kw = 1.0\nsize = 3\n",
    );
    assert!(err.is_err());
    let cfg: BatteryConfig = toml::from_str(
        "model = \"kinetic\"\ncapacity_kwh = -1.0\nmax_charge_power_kw = 1.0\n\
         max_discharge_power_kw = 1.0\nmin_soc_pct = 50.0\ninitial_soc_pct = 30.0\n\
         [kinetic]\ncapacity_ratio = 1.5\n",
    )
    .unwrap();
    let problems = cfg.validate("prosumers[0].battery");
    let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "prosumers[0].battery.capacity_kwh",
            "prosumers[0].battery.initial_soc_pct",
            "prosumers[0].battery.kinetic.capacity_ratio",
        ]
    );
    assert!(Battery::from_config(&cfg).is_err());
}

/// HOMER counts throughput on discharge, as the stored energy removed before discharge losses
/// (usersupport article 2187092: 81 % round trip → 90 % in, 90 % out). 10 kWh in at the
/// terminals stores 9 kWh; taking it all out gives 8.1 kWh and 9 kWh of throughput.
#[test]
fn throughput_follows_homer_definition() {
    let p = BatteryParams {
        capacity_kwh: 100.0,
        min_soc: 0.0,
        initial_soc: 0.0,
        max_charge_kw: 100.0,
        max_discharge_kw: 100.0,
        ..params(0.0, 0.0)
    };
    let mut b = IdealBattery::new(p).unwrap();
    b.charge(10.0, 1.0).unwrap();
    assert!((b.stored_kwh() - 9.0).abs() < 1e-12);
    assert_eq!(b.throughput_kwh(), 0.0, "charging adds no throughput");
    let out = b.discharge(100.0, 1.0).unwrap();
    assert!((out.terminal_energy_kwh - 8.1).abs() < 1e-12);
    assert!((b.throughput_kwh() - 9.0).abs() < 1e-12);
    assert!(b.stored_kwh().abs() < 1e-12);
}

#[test]
fn stored_energy_cost_is_a_running_average() {
    use scg_sim::battery::StoredEnergyCost;
    // 9 kWh stored from grid energy costing 1.8 EUR, then 9 kWh of free surplus: 0.1 EUR/kWh.
    let mut c = StoredEnergyCost::new(0.0, 0.0);
    c.on_charge(9.0, 1.8);
    assert!((c.average_eur_per_kwh() - 0.2).abs() < 1e-12);
    c.on_charge(9.0, 0.0);
    assert!((c.average_eur_per_kwh() - 0.1).abs() < 1e-12);
    // Discharging leaves the average alone.
    c.on_discharge(4.5);
    assert!((c.average_eur_per_kwh() - 0.1).abs() < 1e-12);
    // One delivered kWh takes 1/0.9 stored kWh at 0.1, plus 0.05 wear: 0.1611 EUR.
    assert!((c.discharge_cost_eur_per_kwh(0.05, 0.9) - (0.1 / 0.9 + 0.05)).abs() < 1e-12);
    c.on_discharge(100.0);
    assert_eq!(c.average_eur_per_kwh(), 0.0);
    assert!((StoredEnergyCost::new(10.0, 0.3).average_eur_per_kwh() - 0.3).abs() < 1e-12);
}
