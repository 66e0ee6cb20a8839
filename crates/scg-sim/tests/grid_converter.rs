//! The converter between the DC and AC buses: capacities are output ratings, losses are the
//! efficiency's complement.

#![allow(clippy::unwrap_used)]

use scg_sim::converter::{Converter, ConverterConfig};

#[test]
fn inverter_and_rectifier_hand_computed() {
    let cfg: ConverterConfig = toml::from_str("capacity_kw = 10.0").unwrap();
    assert!(cfg.validate("converter").is_empty());
    let c = Converter::from_config(&cfg).unwrap();
    // Defaults: inverter 95 %, rectifier 100 % of capacity at 90 %.
    assert!((c.inverter_efficiency - 0.95).abs() < 1e-15);
    assert!((c.rectifier_capacity_kw - 10.0).abs() < 1e-12);
    // 4 kW DC in → 3.8 kW AC out, 0.2 kW lost.
    let inv = c.invert(4.0).unwrap();
    assert!((inv.output_kw - 3.8).abs() < 1e-12);
    assert!((inv.loss_kw - 0.2).abs() < 1e-12);
    // The AC rating binds: at most 10/0.95 kW DC in, 10 kW AC out.
    let inv = c.invert(20.0).unwrap();
    assert!((inv.input_kw - 10.0 / 0.95).abs() < 1e-12);
    assert!((inv.output_kw - 10.0).abs() < 1e-12);
    // Delivering 9.5 kW AC needs 10 kW DC.
    assert!((c.inverter_input_for(9.5).unwrap().input_kw - 10.0).abs() < 1e-12);
    // Rectifier: 5 kW AC in → 4.5 kW DC; delivering 9 kW DC needs 10 kW AC.
    assert!((c.rectify(5.0).unwrap().output_kw - 4.5).abs() < 1e-12);
    assert!((c.rectifier_input_for(9.0).unwrap().input_kw - 10.0).abs() < 1e-12);
    assert!((c.rectifier_input_for(50.0).unwrap().output_kw - 10.0).abs() < 1e-12);
    assert!(c.invert(-1.0).is_err());
}

#[test]
fn inverter_only_and_bad_parameters() {
    let cfg: ConverterConfig = toml::from_str(
        "capacity_kw = 5.0\nrectifier_capacity_pct = 0.0\ncapital_cost_eur_per_kw = 300.0",
    )
    .unwrap();
    let c = Converter::from_config(&cfg).unwrap();
    assert_eq!(c.rectify(3.0).unwrap().output_kw, 0.0);
    assert!((cfg.costs().capital_eur - 1500.0).abs() < 1e-12);
    assert!(Converter::new(5.0, 0.0, 5.0, 0.9).is_err());
    assert!(Converter::new(-1.0, 0.9, 5.0, 0.9).is_err());
    assert!(toml::from_str::<ConverterConfig>("capacity_kw = 5.0\nsize = 1").is_err());
    let bad: ConverterConfig =
        toml::from_str("capacity_kw = -5.0\ninverter_efficiency_pct = 101").unwrap();
    let paths: Vec<String> = bad.validate("c").into_iter().map(|p| p.0).collect();
    assert_eq!(paths, ["c.capacity_kw", "c.inverter_efficiency_pct"]);
}
