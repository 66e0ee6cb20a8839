//! Battery invariants under random parameters and random charge/discharge sequences:
//! energy conservation, state of charge bounds, and the kinetic model's limits.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_sim::battery::{BatteryParams, IdealBattery, KineticBattery, KineticParams, Storage};

fn battery_params() -> impl Strategy<Value = BatteryParams> {
    (
        1.0..1000.0_f64,
        0.5..1.0_f64,
        0.0..0.6_f64,
        0.0..1.0_f64,
        0.1..2.0_f64,
        0.1..2.0_f64,
    )
        .prop_map(|(cap, eta, min_soc, init, c_rate, d_rate)| BatteryParams {
            capacity_kwh: cap,
            round_trip_efficiency: eta,
            min_soc,
            initial_soc: min_soc + init * (1.0 - min_soc),
            max_charge_kw: c_rate * cap,
            max_discharge_kw: d_rate * cap,
        })
}

fn kinetic_params() -> impl Strategy<Value = KineticParams> {
    (0.05..0.95_f64, 0.01..5.0_f64, 0.1..5.0_f64, 0.0..1.0_f64).prop_map(
        |(c, k, alpha, current)| KineticParams {
            capacity_ratio: c,
            rate_constant_per_h: k,
            max_charge_rate_per_h: alpha,
            // About a third of the cases without a current limit.
            max_charge_current_kw: if current < 0.33 {
                f64::INFINITY
            } else {
                current * 500.0
            },
        },
    )
}

/// (charge?, request as a fraction of the step's maximum — above 1 tests clamping, step index).
fn actions() -> impl Strategy<Value = Vec<(bool, f64, usize)>> {
    prop::collection::vec((any::<bool>(), 0.0..1.5_f64, 0..3_usize), 1..60)
}

const DTS: [f64; 3] = [1.0, 0.25, 1.0 / 6.0];

fn check<S: Storage>(mut b: S, actions: &[(bool, f64, usize)]) -> Result<(), TestCaseError> {
    let (eta_c, eta_d) = (b.charge_efficiency(), b.discharge_efficiency());
    let cap = b.capacity_kwh();
    for &(charge, frac, dt_i) in actions {
        let dt = DTS[dt_i];
        let before = b.stored_kwh();
        let thr_before = b.throughput_kwh();
        let (max, flow) = if charge {
            let max = b.max_charge_kw(dt);
            (max, b.charge(frac * max, dt).unwrap())
        } else {
            let max = b.max_discharge_kw(dt);
            (max, b.discharge(frac * max, dt).unwrap())
        };
        prop_assert!(flow.power_kw >= 0.0);
        prop_assert!(
            flow.power_kw <= max * (1.0 + 1e-12),
            "accepted {} > max {max}",
            flow.power_kw
        );
        prop_assert!(flow.power_kw <= frac * max * (1.0 + 1e-12) + 1e-15);
        let delta = b.stored_kwh() - before;
        let (e_in, e_out) = if charge {
            (flow.terminal_energy_kwh, 0.0)
        } else {
            (0.0, flow.terminal_energy_kwh)
        };
        // Energy conservation: E_in·η_c − E_out/η_d = ΔS.
        prop_assert!(
            (e_in * eta_c - e_out / eta_d - delta).abs() < 1e-9,
            "in {e_in} out {e_out} delta {delta}"
        );
        prop_assert!((flow.stored_change_kwh - delta).abs() < 1e-12);
        prop_assert!(flow.loss_kwh >= -1e-12);
        let soc = b.soc();
        prop_assert!(
            soc >= b.min_soc() - 1e-12 && soc <= 1.0 + 1e-12,
            "soc {soc}"
        );
        let thr = b.throughput_kwh() - thr_before;
        let expected_thr = if charge { 0.0 } else { -delta };
        prop_assert!((thr - expected_thr).abs() < 1e-9, "throughput {thr}");
        prop_assert!(b.stored_kwh() <= cap * (1.0 + 1e-12));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn ideal_battery_invariants(p in battery_params(), acts in actions()) {
        check(IdealBattery::new(p).unwrap(), &acts)?;
    }

    #[test]
    fn kinetic_battery_invariants(p in battery_params(), k in kinetic_params(), acts in actions()) {
        check(KineticBattery::new(p, k).unwrap(), &acts)?;
    }

    /// The tanks never leave their bounds: 0 <= Q1 <= c·Q_max, 0 <= Q2 <= (1 − c)·Q_max, and
    /// applying a step's KiBaM maximum lands Q1 exactly on its bound.
    #[test]
    fn kinetic_tanks_stay_in_bounds(p in battery_params(), k in kinetic_params(), acts in actions()) {
        let mut b = KineticBattery::new(p, k).unwrap();
        let c = k.capacity_ratio;
        let q_max = p.capacity_kwh;
        let tol = 1e-9 * q_max.max(1.0);
        for (charge, frac, dt_i) in acts {
            let dt = DTS[dt_i];
            if charge {
                let kbm = b.kibam_max_charge_kw(dt);
                let binding = (b.max_charge_kw(dt) * b.charge_efficiency() - kbm).abs() < 1e-12 * q_max;
                b.charge(frac * b.max_charge_kw(dt), dt).unwrap();
                if binding && frac >= 1.0 {
                    prop_assert!((b.available_kwh() - c * q_max).abs() < tol);
                }
            } else {
                let kbm = b.kibam_max_discharge_kw(dt);
                let binding = (b.max_discharge_kw(dt) / b.discharge_efficiency() - kbm).abs() < 1e-12 * q_max;
                b.discharge(frac * b.max_discharge_kw(dt), dt).unwrap();
                if binding && frac >= 1.0 {
                    prop_assert!(b.available_kwh().abs() < tol);
                }
            }
            prop_assert!(b.available_kwh() >= 0.0 && b.available_kwh() <= c * q_max + tol);
            prop_assert!(b.bound_kwh() >= -tol && b.bound_kwh() <= (1.0 - c) * q_max + tol,
                "Q2 {} of {}", b.bound_kwh(), (1.0 - c) * q_max);
        }
    }
}
