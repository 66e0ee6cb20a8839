#![allow(clippy::unwrap_used)]

use super::*;
use crate::battery::{BatteryConfig, BatteryModelKind, KineticConfig};
use proptest::prelude::*;

fn unit(capacity_kwh: f64, power_kw: f64, kinetic: bool) -> Box<BatteryUnit> {
    let config = BatteryConfig {
        model: if kinetic {
            BatteryModelKind::Kinetic
        } else {
            BatteryModelKind::Idealized
        },
        capacity_kwh,
        max_charge_power_kw: power_kw,
        max_discharge_power_kw: power_kw,
        round_trip_efficiency_pct: 90.0,
        min_soc_pct: 20.0,
        initial_soc_pct: 50.0,
        kinetic: KineticConfig::default(),
        lifetime_throughput_kwh: None,
        lifetime_years: 15.0,
        capital_cost_eur_per_kwh: 0.0,
        replacement_cost_eur_per_kwh: 0.0,
        om_cost_eur_per_kwh_year: 0.0,
    };
    Box::new(BatteryUnit {
        battery: Battery::from_config(&config).unwrap(),
        converter: Converter::new(power_kw, 0.95, power_kw, 0.9).unwrap(),
    })
}

fn ctx(peak: bool, buy: f64, sell: f64) -> StepContext {
    StepContext {
        dt_h: 1.0,
        grid_at_peak: peak,
        max_purchase_kw: buy,
        max_sale_kw: sell,
    }
}

fn run(inputs: &[StepInput], c: &StepContext) -> Vec<StepFlows> {
    let mut batteries = vec![None; inputs.len()];
    let mut flows = Vec::new();
    community_step(inputs, &mut batteries, c, &mut flows).unwrap();
    flows
}

#[test]
fn surplus_is_shared_pro_rata_then_sold() {
    let inputs = [
        StepInput {
            load_kw: 2.0,
            renewable_kw: 8.0,
        }, // surplus 6
        StepInput {
            load_kw: 1.0,
            renewable_kw: 3.0,
        }, // surplus 2
        StepInput {
            load_kw: 5.0,
            renewable_kw: 1.0,
        }, // deficit 4
    ];
    let f = run(&inputs, &ctx(false, f64::INFINITY, f64::INFINITY));
    // 4 kW shared out of 8 offered: sellers deliver 3 and 1, the rest (3 and 1) goes to the grid.
    assert_eq!((f[0].p2p_export_kw, f[0].grid_export_kw), (3.0, 3.0));
    assert_eq!((f[1].p2p_export_kw, f[1].grid_export_kw), (1.0, 1.0));
    assert_eq!((f[2].p2p_import_kw, f[2].grid_import_kw), (4.0, 0.0));
}

#[test]
fn at_peak_surplus_goes_to_the_grid_first() {
    let inputs = [
        StepInput {
            load_kw: 0.0,
            renewable_kw: 10.0,
        },
        StepInput {
            load_kw: 6.0,
            renewable_kw: 0.0,
        },
    ];
    let f = run(&inputs, &ctx(true, f64::INFINITY, 7.0));
    assert_eq!(f[0].grid_export_kw, 7.0);
    assert_eq!(f[0].p2p_export_kw, 3.0);
    assert_eq!(f[1].p2p_import_kw, 3.0);
    assert_eq!(f[1].grid_import_kw, 3.0);
    let off_peak = run(&inputs, &ctx(false, f64::INFINITY, 7.0));
    assert_eq!(off_peak[0].p2p_export_kw, 6.0);
    assert_eq!(off_peak[0].grid_export_kw, 4.0);
}

#[test]
fn limits_make_excess_and_unmet_load() {
    let short = run(
        &[StepInput {
            load_kw: 10.0,
            renewable_kw: 0.0,
        }],
        &ctx(false, 4.0, 0.0),
    );
    assert_eq!((short[0].grid_import_kw, short[0].unmet_kw), (4.0, 6.0));
    let long = run(
        &[StepInput {
            load_kw: 0.0,
            renewable_kw: 10.0,
        }],
        &ctx(false, 0.0, 4.0),
    );
    assert_eq!((long[0].grid_export_kw, long[0].excess_kw), (4.0, 6.0));
}

#[test]
fn battery_absorbs_own_surplus_before_the_community() {
    let inputs = [
        StepInput {
            load_kw: 0.0,
            renewable_kw: 5.0,
        },
        StepInput {
            load_kw: 5.0,
            renewable_kw: 0.0,
        },
    ];
    let mut batteries = vec![Some(unit(100.0, 2.0, false)), None];
    let mut flows = Vec::new();
    community_step(
        &inputs,
        &mut batteries,
        &ctx(false, f64::INFINITY, f64::INFINITY),
        &mut flows,
    )
    .unwrap();
    // The rectifier (2 kW DC out, 90 %) draws 2/0.9 kW of AC.
    assert!((flows[0].battery_in_kw - 2.0 / 0.9).abs() < 1e-12);
    assert!((flows[0].p2p_export_kw - (5.0 - 2.0 / 0.9)).abs() < 1e-12);
    let b = batteries[0].as_ref().unwrap();
    assert!((b.battery.stored_kwh() - (50.0 + 2.0 * 0.9f64.sqrt())).abs() < 1e-9);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Energy balance closes for every prosumer at every step; P2P is conserved; limits hold.
    #[test]
    fn balance_closes_and_market_is_conserved(
        prosumers in proptest::collection::vec((0.0f64..50.0, 0.0f64..80.0, proptest::option::of((1.0f64..200.0, 0.5f64..40.0, any::<bool>()))), 1..8),
        steps in 1usize..30,
        peak in any::<bool>(),
        buy in proptest::option::of(0.0f64..100.0),
        sell in proptest::option::of(0.0f64..100.0),
        dt_h in prop_oneof![Just(1.0), Just(0.25)],
    ) {
        let mut batteries: Vec<_> = prosumers.iter().map(|(_, _, b)| b.map(|(c, p, k)| unit(c, p, k))).collect();
        let c = StepContext { dt_h, grid_at_peak: peak, max_purchase_kw: buy.unwrap_or(f64::INFINITY), max_sale_kw: sell.unwrap_or(f64::INFINITY) };
        let mut flows = Vec::new();
        for t in 0..steps {
            // Vary the inputs over the steps so batteries both charge and discharge.
            let inputs: Vec<_> = prosumers.iter().enumerate().map(|(i, (l, r, _))| StepInput {
                load_kw: *l * (1.0 + ((t + i) % 3) as f64 * 0.5),
                renewable_kw: if (t + i) % 2 == 0 { *r } else { 0.0 },
            }).collect();
            community_step(&inputs, &mut batteries, &c, &mut flows).unwrap();
            let scale: f64 = inputs.iter().map(|x| x.load_kw + x.renewable_kw).sum::<f64>().max(1.0);
            for f in &flows {
                prop_assert!(f.balance_error_kw().abs() <= 1e-9 * scale, "{f:?}");
                for v in [f.battery_in_kw, f.battery_out_kw, f.p2p_import_kw, f.p2p_export_kw, f.grid_import_kw, f.grid_export_kw, f.excess_kw, f.unmet_kw] {
                    prop_assert!(v >= 0.0);
                }
                prop_assert!(f.battery_in_kw == 0.0 || f.battery_out_kw == 0.0);
            }
            let p2p_in: f64 = flows.iter().map(|f| f.p2p_import_kw).sum();
            let p2p_out: f64 = flows.iter().map(|f| f.p2p_export_kw).sum();
            prop_assert!((p2p_in - p2p_out).abs() <= 1e-9 * scale);
            let grid_in: f64 = flows.iter().map(|f| f.grid_import_kw).sum();
            let grid_out: f64 = flows.iter().map(|f| f.grid_export_kw).sum();
            prop_assert!(grid_in <= c.max_purchase_kw * (1.0 + 1e-12));
            prop_assert!(grid_out <= c.max_sale_kw * (1.0 + 1e-12));
            // Nobody is unmet while surplus is curtailed, and nobody imports while exporting.
            let unmet: f64 = flows.iter().map(|f| f.unmet_kw).sum();
            let excess: f64 = flows.iter().map(|f| f.excess_kw).sum();
            prop_assert!(unmet <= 1e-9 * scale || excess <= 1e-9 * scale);
            for b in batteries.iter().flatten() {
                prop_assert!(b.battery.soc() >= b.battery.min_soc() - 1e-9 && b.battery.soc() <= 1.0 + 1e-9);
            }
        }
    }
}
