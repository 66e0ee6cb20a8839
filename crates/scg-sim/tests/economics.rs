//! HOMER economics against the reference values in homer.md §4.5 and a worked example computed
//! by hand, plus closed-form properties of the NPC.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_sim::economics::{
    ComponentCosts, EconomicParams, EconomicsConfig, EnergyTotals, annuity_present_value_factor,
    capital_recovery_factor, component_npc, discount_factor, real_discount_rate, replacement_years,
    salvage_value_eur, sinking_fund_factor, system_npc,
};

#[test]
fn reference_factors_from_homer_docs() {
    // HOMER "Real Discount Rate": 8 % nominal, 3.5 % inflation → 4.35 %.
    let i = real_discount_rate(0.08, 0.035);
    assert!((i - 0.045 / 1.035).abs() < 1e-15);
    assert!((i * 100.0 - 4.35).abs() < 0.005);
    // CRF(7 %, 5 y) = 0.2439.
    assert!((capital_recovery_factor(0.07, 5.0) - 0.2439).abs() < 5e-5);
    // Discount factor (5 %, 12 y) = 0.557.
    assert!((discount_factor(0.05, 12.0) - 0.557).abs() < 5e-4);
    // Sinking fund factor = CRF − i.
    let (i, n) = (0.06, 10.0);
    assert!((sinking_fund_factor(i, n) - (capital_recovery_factor(i, n) - i)).abs() < 1e-15);
    // Zero rate: straight line.
    assert!((capital_recovery_factor(0.0, 20.0) - 0.05).abs() < 1e-15);
    assert!((annuity_present_value_factor(0.0, 20.0) - 20.0).abs() < 1e-12);
}

/// A 10 kW PV array: capital 15,000 EUR, replacement 12,000 EUR, O&M 150 EUR/y, life 20 y;
/// project 25 y at 6 % nominal and 2 % inflation.
///
/// By hand:
/// - i = (0.06 − 0.02)/1.02 = 0.0392157
/// - replacement at year 20: 12,000/(1 + i)^20 = 5,559.91
/// - salvage: R_rem = 20 − (25 − 20) = 15 y → 12,000·15/20 = 9,000 at year 25,
///   present value 9,000/(1 + i)^25 = 3,440.33
/// - O&M: 150·((1 + i)^25 − 1)/(i(1 + i)^25) = 2,362.86
/// - NPC = 15,000 + 5,559.91 + 2,362.86 − 3,440.33 = 19,482.43
/// - CRF(i, 25) = 0.0634824 → annualized cost 1,236.79 EUR/y.
#[test]
fn worked_example_pv_array() {
    let i = real_discount_rate(0.06, 0.02);
    assert!((i - 0.039_215_686).abs() < 1e-9);
    let pv = ComponentCosts {
        capital_eur: 15_000.0,
        replacement_eur: 12_000.0,
        om_eur_per_year: 150.0,
        lifetime_years: 20.0,
    };
    assert_eq!(replacement_years(20.0, 25.0), vec![20.0]);
    assert!((salvage_value_eur(&pv, 25.0) - 9_000.0).abs() < 1e-9);
    let npc = component_npc(&pv, i, 25.0).unwrap();
    assert!((npc.replacement_eur - 5_559.91).abs() < 0.01);
    assert!((npc.salvage_eur - 3_440.33).abs() < 0.01);
    assert!((npc.om_eur - 2_362.86).abs() < 0.01);
    assert!((npc.total_eur - 19_482.43).abs() < 0.01);

    let params = EconomicParams {
        real_discount_rate: i,
        project_lifetime_years: 25.0,
    };
    let sys = system_npc(&params, &[("pv", pv)], 0.0, 0.0).unwrap();
    assert!((sys.total_npc_eur - 19_482.43).abs() < 0.01);
    assert!((sys.annualized_cost_eur - 1_236.79).abs() < 0.01);
}

#[test]
fn replacement_timing_and_salvage() {
    // A battery lasting 7 years in a 25-year project: replaced at 7, 14, 21; the last unit has
    // 7 − (25 − 21) = 3 years left → salvage 3/7 of its replacement cost.
    let bat = ComponentCosts {
        capital_eur: 7_000.0,
        replacement_eur: 7_000.0,
        om_eur_per_year: 0.0,
        lifetime_years: 7.0,
    };
    assert_eq!(replacement_years(7.0, 25.0), vec![7.0, 14.0, 21.0]);
    assert!((salvage_value_eur(&bat, 25.0) - 3_000.0).abs() < 1e-9);
    // At i = 5 %, by hand: 7,000·(1.05^−7 + 1.05^−14 + 1.05^−21) = 7,000·(0.710681 + 0.505068
    // + 0.358942) = 11,022.9; salvage 3,000·1.05^−25 = 885.9.
    let npc = component_npc(&bat, 0.05, 25.0).unwrap();
    assert!((npc.replacement_eur - 11_022.9).abs() < 0.1);
    assert!((npc.salvage_eur - 885.9).abs() < 0.1);

    // A lifetime dividing the project exactly: replaced at 5, 10, 15, 20, nothing left over.
    // (Lambert's rule counts a replacement at year 25 and its full salvage: they cancel.)
    assert_eq!(replacement_years(5.0, 25.0), vec![5.0, 10.0, 15.0, 20.0]);
    let five = ComponentCosts {
        lifetime_years: 5.0,
        ..bat
    };
    assert_eq!(salvage_value_eur(&five, 25.0), 0.0);
    // A component outliving the project: no replacement, salvage (L − N)/L.
    let long = ComponentCosts {
        lifetime_years: 40.0,
        replacement_eur: 4_000.0,
        ..bat
    };
    assert!(replacement_years(40.0, 25.0).is_empty());
    assert!((salvage_value_eur(&long, 25.0) - 1_500.0).abs() < 1e-9);
}

#[test]
fn energy_metrics() {
    let t = EnergyTotals {
        load_kwh: 10_000.0,
        served_load_kwh: 9_900.0,
        grid_sales_kwh: 2_000.0,
        grid_purchases_kwh: 3_000.0,
        renewable_production_kwh: 9_500.0,
        nonrenewable_generation_kwh: 0.0,
        excess_energy_kwh: 250.0,
    };
    assert!((t.unmet_load_kwh() - 100.0).abs() < 1e-12);
    assert!((t.unmet_load_fraction() - 0.01).abs() < 1e-12);
    assert!((t.energy_served_kwh() - 11_900.0).abs() < 1e-12);
    // f_ren = 1 − 3,000/11,900
    assert!((t.renewable_fraction().unwrap() - (1.0 - 3_000.0 / 11_900.0)).abs() < 1e-12);
    // COE = 2,380 EUR/y / 11,900 kWh = 0.2 EUR/kWh
    assert!((t.cost_of_energy_eur_per_kwh(2_380.0).unwrap() - 0.2).abs() < 1e-12);
    assert!((t.excess_fraction() - 250.0 / 12_500.0).abs() < 1e-12);
    assert_eq!(EnergyTotals::default().renewable_fraction(), None);
    assert_eq!(
        EnergyTotals::default().cost_of_energy_eur_per_kwh(1.0),
        None
    );
}

#[test]
fn bad_parameters_are_errors() {
    let c = ComponentCosts {
        lifetime_years: 0.0,
        ..ComponentCosts::default()
    };
    assert!(component_npc(&c, 0.05, 25.0).is_err());
    let c = ComponentCosts {
        lifetime_years: 10.0,
        ..ComponentCosts::default()
    };
    assert!(component_npc(&c, 0.05, 0.0).is_err());
    assert!(component_npc(&c, f64::NAN, 25.0).is_err());
    let params = EconomicParams {
        real_discount_rate: 0.05,
        project_lifetime_years: 25.0,
    };
    let err = system_npc(
        &params,
        &[(
            "battery",
            ComponentCosts {
                lifetime_years: -1.0,
                ..c
            },
        )],
        0.0,
        0.0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("battery.lifetime_years"), "{err}");
}

#[test]
fn config_defaults_and_validation() {
    let cfg: EconomicsConfig = toml::from_str("").unwrap();
    assert_eq!(cfg, EconomicsConfig::default());
    assert_eq!(cfg.project_lifetime_years, 25.0);
    assert!(cfg.validate("economics").is_empty());
    assert!((cfg.params().real_discount_rate - 0.06 / 1.02).abs() < 1e-15);
    assert!(toml::from_str::<EconomicsConfig>("discount = 3").is_err());
    let bad: EconomicsConfig =
        toml::from_str("project_lifetime_years = 0\ninflation_rate_pct = 1000").unwrap();
    let paths: Vec<String> = bad.validate("economics").into_iter().map(|p| p.0).collect();
    assert_eq!(
        paths,
        [
            "economics.project_lifetime_years",
            "economics.inflation_rate_pct"
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A simple system (components outliving the project are not replaced; costs yearly) has
    /// NPC = capital + Σ_{y=1..N} (O&M + grid)/(1 + i)^y − salvage/(1 + i)^N, summed year by
    /// year; and its annualized cost of a pure yearly cost is that yearly cost.
    #[test]
    fn npc_of_simple_system_is_the_closed_form_sum(
        i in -0.02..0.15_f64,
        n in 1_u32..40,
        capital in 0.0..1e5_f64,
        om in 0.0..1e3_f64,
        grid in -1e3..1e4_f64,
        extra_life in 0.0..20.0_f64,
    ) {
        let n_f = f64::from(n);
        let life = n_f + extra_life;
        let c = ComponentCosts {
            capital_eur: capital,
            replacement_eur: capital,
            om_eur_per_year: om,
            lifetime_years: life,
        };
        let params = EconomicParams { real_discount_rate: i, project_lifetime_years: n_f };
        let sys = system_npc(&params, &[("pv", c)], grid, 0.0).unwrap();
        let yearly: f64 = (1..=n).map(|y| (om + grid) / (1.0 + i).powi(y as i32)).sum();
        let salvage = capital * (life - n_f) / life / (1.0 + i).powi(n as i32);
        let expected = capital + yearly - salvage;
        prop_assert!((sys.total_npc_eur - expected).abs() < 1e-6 * expected.abs().max(1.0),
            "{} vs {expected}", sys.total_npc_eur);

        let annual_only = system_npc(&params, &[], om + grid, 0.0).unwrap();
        prop_assert!((annual_only.annualized_cost_eur - (om + grid)).abs()
            < 1e-9 * (om + grid).abs().max(1.0));
    }

    /// Replacements are spaced by the lifetime, all before the end, and the salvage never
    /// exceeds one replacement.
    #[test]
    fn replacements_and_salvage_bounds(life in 0.5..30.0_f64, n in 1.0..40.0_f64) {
        let years = replacement_years(life, n);
        for (k, t) in years.iter().enumerate() {
            prop_assert!((t - life * (k as f64 + 1.0)).abs() < 1e-9);
            prop_assert!(*t < n);
        }
        let c = ComponentCosts { capital_eur: 1.0, replacement_eur: 1.0, om_eur_per_year: 0.0, lifetime_years: life };
        let s = salvage_value_eur(&c, n);
        prop_assert!((0.0..=1.0).contains(&s));
    }
}

#[test]
fn incentive_paid_for_part_of_the_project() {
    use scg_sim::economics::equivalent_annual_over_project;
    // 1,000 EUR/y for 20 of 25 years at 5 %: PV = 1,000·12.4622 = 12,462.2; spread over 25 years
    // with CRF(5 %, 25) = 0.070952 → 884.2 EUR/y.
    let a = equivalent_annual_over_project(1000.0, 20.0, 0.05, 25.0);
    assert!((a - 884.2).abs() < 0.05, "{a}");
    // Paid for the whole project: unchanged. Never paid: zero.
    assert!((equivalent_annual_over_project(1000.0, 25.0, 0.05, 25.0) - 1000.0).abs() < 1e-9);
    assert!((equivalent_annual_over_project(1000.0, 30.0, 0.05, 25.0) - 1000.0).abs() < 1e-9);
    assert_eq!(equivalent_annual_over_project(1000.0, 0.0, 0.05, 25.0), 0.0);
    // Zero rate: 20/25 of it.
    assert!((equivalent_annual_over_project(1000.0, 20.0, 0.0, 25.0) - 800.0).abs() < 1e-9);
}

#[test]
fn cash_flows_discount_to_the_npc() {
    use scg_sim::economics::cash_flows;
    let params = EconomicParams {
        real_discount_rate: 0.05,
        project_lifetime_years: 25.0,
    };
    let comps = [
        (
            "pv",
            ComponentCosts {
                capital_eur: 10_000.0,
                replacement_eur: 8_000.0,
                om_eur_per_year: 100.0,
                lifetime_years: 20.0,
            },
        ),
        (
            "battery",
            ComponentCosts {
                capital_eur: 5_000.0,
                replacement_eur: 4_000.0,
                om_eur_per_year: 50.0,
                lifetime_years: 10.0,
            },
        ),
    ];
    let flows = cash_flows(&params, &comps, 1_200.0, -300.0).unwrap();
    assert_eq!(flows.len(), 26);
    assert_eq!(flows[0].capital_eur, 15_000.0);
    assert_eq!(flows[10].replacement_eur, 4_000.0);
    assert_eq!(flows[20].replacement_eur, 12_000.0);
    assert!(flows[25].salvage_eur < 0.0);
    let pv: f64 = flows
        .iter()
        .map(|f| f.total_eur() * discount_factor(0.05, f64::from(f.year)))
        .sum();
    let npc = system_npc(&params, &comps, 1_200.0, -300.0).unwrap();
    assert!(
        (pv - npc.total_npc_eur).abs() < 1e-6,
        "{pv} vs {}",
        npc.total_npc_eur
    );
}
