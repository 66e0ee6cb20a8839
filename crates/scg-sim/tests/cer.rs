//! The CER incentive: tariff values from the DM 414/2023 formula, a hand-computed community
//! year, and the shared-energy and allocation invariants.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_sim::ComponentError;
use scg_sim::cer::{
    CerConfig, CerMember, CerParams, PlantSizeClass, Region, evaluate,
    incentive_tariff_eur_per_mwh, shared_energy_kwh, to_hourly,
};

#[test]
fn incentive_tariff_by_size_price_and_region() {
    let small = PlantSizeClass::UpTo200Kw;
    // 80 + max(0, 180 − 100) = 160 → capped at 120, + 10 North = 130.
    assert_eq!(incentive_tariff_eur_per_mwh(small, 100.0, 10.0), 130.0);
    // 80 + 30 = 110, + 10 = 120.
    assert_eq!(incentive_tariff_eur_per_mwh(small, 150.0, 10.0), 120.0);
    // Above 180 the variable part is 0: 80 + 10 = 90. (Bergamo PV ≤ 200 kW: 90–130 EUR/MWh.)
    assert_eq!(incentive_tariff_eur_per_mwh(small, 250.0, 10.0), 90.0);
    let mid = PlantSizeClass::From200To600Kw;
    assert_eq!(incentive_tariff_eur_per_mwh(mid, 150.0, 0.0), 100.0);
    assert_eq!(incentive_tariff_eur_per_mwh(mid, 0.0, 4.0), 114.0);
    let big = PlantSizeClass::Over600Kw;
    assert_eq!(incentive_tariff_eur_per_mwh(big, 170.0, 0.0), 70.0);
    assert_eq!(incentive_tariff_eur_per_mwh(big, -50.0, 0.0), 100.0);
    assert_eq!(PlantSizeClass::from_power_kw(200.0), small);
    assert_eq!(PlantSizeClass::from_power_kw(600.0), mid);
    assert_eq!(PlantSizeClass::from_power_kw(600.1), big);
    assert_eq!(Region::Centre.pv_bonus_eur_per_mwh(), 4.0);
}

/// Member A has a PV plant, member B only consumes. Three hours:
/// - injected: A 10, 4, 0; withdrawn: A 0, 0, 5 and B 6, 8, 3 (kWh);
/// - shared = min(10, 6), min(4, 8), min(0, 8) = 6, 4, 0 → 10 kWh;
/// - zonal prices 100, 150, 50 EUR/MWh → TIP 130, 120 (class ≤ 200 kW, PV North);
/// - incentive 6·0.130 + 4·0.120 = 1.26 EUR; valorisation 10·0.008 = 0.08 EUR; total 1.34;
/// - producers get 70 %: all injection is A's → A 0.938 EUR; consumers' 30 %: in the hours
///   with shared energy only B withdrew → B 0.402 EUR.
#[test]
fn hand_computed_community_year() {
    let params = CerParams {
        size_class: PlantSizeClass::UpTo200Kw,
        pv_bonus_eur_per_mwh: 10.0,
        valorisation_eur_per_mwh: 8.0,
        producer_share: 0.7,
    };
    let members = [
        CerMember::new(&[10.0, 4.0, 0.0], &[0.0, 0.0, 5.0]),
        CerMember::new(&[0.0, 0.0, 0.0], &[6.0, 8.0, 3.0]),
    ];
    let r = evaluate(&params, &[100.0, 150.0, 50.0], &members).unwrap();
    assert_eq!(r.hourly_shared_kwh, vec![6.0, 4.0, 0.0]);
    assert!((r.shared_energy_kwh - 10.0).abs() < 1e-12);
    assert!((r.incentive_eur - 1.26).abs() < 1e-12);
    assert!((r.valorisation_eur - 0.08).abs() < 1e-12);
    assert!((r.total_eur - 1.34).abs() < 1e-12);
    assert!((r.members[0].allocated_eur - 0.938).abs() < 1e-12);
    assert!((r.members[1].allocated_eur - 0.402).abs() < 1e-12);
    assert!((r.members[0].shared_as_producer_kwh - 10.0).abs() < 1e-12);
    assert!((r.members[1].shared_as_consumer_kwh - 10.0).abs() < 1e-12);
    assert!((r.members[0].injected_kwh - 14.0).abs() < 1e-12);
    assert!((r.members[1].withdrawn_kwh - 17.0).abs() < 1e-12);
    assert!((r.members[0].incentivised_kwh - 10.0).abs() < 1e-12);
    assert!((r.members[0].plant_incentive_eur - 1.26).abs() < 1e-12);
    assert_eq!(r.members[1].incentivised_kwh, 0.0);
}

/// Two plants of different size classes share one hour of 8 kWh (zonal price 100 EUR/MWh,
/// PV North): GSE gives the oldest plant (listed first) its full 5 kWh injection, the other
/// the remaining 3 kWh.
/// - over 600 kW: min(100, 60 + 80) + 10 = 110 EUR/MWh; up to 200 kW: 130 EUR/MWh;
/// - big plant first: 5·0.110 + 3·0.130 = 0.94 EUR; small plant first: 5·0.130 + 3·0.110 =
///   0.98 EUR.
#[test]
fn plants_of_different_classes_in_gse_order() {
    let params = CerConfig::default().params();
    let big = CerMember {
        size_class: Some(PlantSizeClass::Over600Kw),
        ..CerMember::new(&[5.0], &[0.0])
    };
    let small = CerMember::new(&[5.0], &[0.0]);
    let consumer = CerMember::new(&[0.0], &[8.0]);
    let r = evaluate(&params, &[100.0], &[big, small, consumer]).unwrap();
    assert!((r.incentive_eur - 0.94).abs() < 1e-12);
    assert!((r.members[0].incentivised_kwh - 5.0).abs() < 1e-12);
    assert!((r.members[1].incentivised_kwh - 3.0).abs() < 1e-12);
    assert!((r.members[0].plant_incentive_eur - 0.55).abs() < 1e-12);
    let r = evaluate(&params, &[100.0], &[small, big, consumer]).unwrap();
    assert!((r.incentive_eur - 0.98).abs() < 1e-12);
}

/// The rule is hourly: a quarter hour of injection and a later quarter hour of withdrawal in
/// the same hour share energy.
#[test]
fn quarter_hours_share_within_the_hour() {
    let params = CerConfig::default().params();
    let producer = CerMember::new(&[4.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], &[0.0; 8]);
    let consumer = CerMember::new(&[0.0; 8], &[0.0, 0.0, 0.0, 4.0, 0.5, 0.5, 0.5, 0.5]);
    let r =
        scg_sim::cer::evaluate_steps(&params, &[200.0, 200.0], &[producer, consumer], 4).unwrap();
    assert_eq!(r.hourly_shared_kwh, vec![4.0, 2.0]);
    // 6 kWh at 90 + 8 EUR/MWh.
    assert!((r.total_eur - 6.0 * 0.098).abs() < 1e-12);
    assert!(
        scg_sim::cer::evaluate_steps(&params, &[200.0, 200.0], &[producer, consumer], 3).is_err()
    );
}

#[test]
fn hourly_aggregation_and_errors() {
    assert_eq!(
        to_hourly(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 4).unwrap(),
        vec![10.0, 26.0]
    );
    assert!(to_hourly(&[1.0, 2.0, 3.0], 2).is_err());
    assert!(to_hourly(&[1.0], 0).is_err());
    assert!(matches!(
        shared_energy_kwh(&[1.0], &[1.0, 2.0]),
        Err(ComponentError::LengthMismatch { .. })
    ));
    assert!(matches!(
        shared_energy_kwh(&[-1.0], &[1.0]),
        Err(ComponentError::InvalidInput { .. })
    ));
    let params = CerConfig::default().params();
    let short = [CerMember::new(&[1.0], &[1.0, 1.0])];
    assert!(evaluate(&params, &[100.0, 100.0], &short).is_err());
    let bad = CerParams {
        producer_share: 1.5,
        ..params
    };
    assert!(evaluate(&bad, &[], &[]).is_err());
}

#[test]
fn config_defaults_and_validation() {
    let cfg: CerConfig = toml::from_str("enabled = true").unwrap();
    assert!(cfg.enabled);
    assert_eq!(cfg.market_zone, "NORD");
    assert_eq!(cfg.region, Region::North);
    assert_eq!(cfg.plant_size_class, PlantSizeClass::UpTo200Kw);
    assert!(cfg.validate("cer").is_empty());
    let p = cfg.params();
    assert_eq!(p.pv_bonus_eur_per_mwh, 10.0);
    assert_eq!(p.valorisation_eur_per_mwh, 8.0);
    assert_eq!(p.producer_share, 0.5);
    assert_eq!(cfg.incentive_years, 20.0);

    let cfg: CerConfig = toml::from_str(
        "plant_size_class = \"200_to_600_kw\"\nplants_are_pv = false\nregion = \"centre\"",
    )
    .unwrap();
    assert_eq!(cfg.plant_size_class, PlantSizeClass::From200To600Kw);
    assert_eq!(cfg.params().pv_bonus_eur_per_mwh, 0.0);

    assert!(toml::from_str::<CerConfig>("zone = \"NORD\"").is_err());
    assert!(toml::from_str::<CerConfig>("plant_size_class = \"small\"").is_err());
    let bad: CerConfig =
        toml::from_str("market_zone = \"nord\"\nproducer_share_pct = 120").unwrap();
    let paths: Vec<String> = bad.validate("cer").into_iter().map(|p| p.0).collect();
    assert_eq!(paths, ["cer.market_zone", "cer.producer_share_pct"]);
}

/// Hours, per member (injected, withdrawn) series, zonal prices.
type Community = (usize, Vec<(Vec<f64>, Vec<f64>)>, Vec<f64>);

fn community() -> impl Strategy<Value = Community> {
    (1_usize..48, 1_usize..7).prop_flat_map(|(hours, members)| {
        let energy = || prop::collection::vec(prop_oneof![Just(0.0), 0.0..50.0_f64], hours);
        (
            Just(hours),
            prop::collection::vec((energy(), energy()), members),
            prop::collection::vec(-50.0..400.0_f64, hours),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Shared energy never exceeds either side in any hour; allocations add up to the total;
    /// each member's producer share never exceeds its injection.
    #[test]
    fn shared_energy_and_allocation_invariants(
        (hours, data, zonal) in community(),
        share in 0.0..=1.0_f64,
    ) {
        let members: Vec<CerMember<'_>> = data
            .iter()
            .map(|(i, w)| CerMember::new(i, w))
            .collect();
        let params = CerParams {
            size_class: PlantSizeClass::UpTo200Kw,
            pv_bonus_eur_per_mwh: 10.0,
            valorisation_eur_per_mwh: 8.0,
            producer_share: share,
        };
        let r = evaluate(&params, &zonal, &members).unwrap();
        for h in 0..hours {
            let inj: f64 = data.iter().map(|(i, _)| i[h]).sum();
            let wd: f64 = data.iter().map(|(_, w)| w[h]).sum();
            prop_assert!(r.hourly_shared_kwh[h] <= inj && r.hourly_shared_kwh[h] <= wd);
            prop_assert!(r.hourly_shared_kwh[h] == inj.min(wd));
        }
        let allocated: f64 = r.members.iter().map(|m| m.allocated_eur).sum();
        prop_assert!((allocated - r.total_eur).abs() < 1e-9 * r.total_eur.max(1.0));
        let as_producer: f64 = r.members.iter().map(|m| m.shared_as_producer_kwh).sum();
        let as_consumer: f64 = r.members.iter().map(|m| m.shared_as_consumer_kwh).sum();
        prop_assert!((as_producer - r.shared_energy_kwh).abs() < 1e-9 * r.shared_energy_kwh.max(1.0));
        prop_assert!((as_consumer - r.shared_energy_kwh).abs() < 1e-9 * r.shared_energy_kwh.max(1.0));
        for m in &r.members {
            prop_assert!(m.shared_as_producer_kwh <= m.injected_kwh * (1.0 + 1e-12) + 1e-12);
            prop_assert!(m.shared_as_consumer_kwh <= m.withdrawn_kwh * (1.0 + 1e-12) + 1e-12);
            prop_assert!(m.allocated_eur >= 0.0);
        }
        // The TIP is between 60 and 130 EUR/MWh, so the incentive is bounded by the energy.
        prop_assert!(r.incentive_eur <= r.shared_energy_kwh * 0.130 + 1e-9);
        prop_assert!(r.incentive_eur >= r.shared_energy_kwh * 0.090 - 1e-9);
        // GSE's allocation gives out exactly the shared energy, within each plant's injection.
        let incentivised: f64 = r.members.iter().map(|m| m.incentivised_kwh).sum();
        prop_assert!((incentivised - r.shared_energy_kwh).abs() < 1e-9 * r.shared_energy_kwh.max(1.0));
        for m in &r.members {
            prop_assert!(m.incentivised_kwh <= m.injected_kwh * (1.0 + 1e-12) + 1e-12);
        }
    }
}

/// `CerYear::add_hour_one` (the search's community as one meter) gives exactly the sums of
/// `add_hour` with one member, hour by hour, and runs out of hours the same way.
#[test]
fn one_member_hours_match_the_general_rule() {
    use scg_sim::cer::CerYear;
    let params = CerParams {
        size_class: PlantSizeClass::UpTo200Kw,
        pv_bonus_eur_per_mwh: 10.0,
        valorisation_eur_per_mwh: 8.0,
        producer_share: 0.7,
    };
    let zonal: Vec<f64> = (0..50).map(|h| 40.0 + 5.0 * (h % 9) as f64).collect();
    let mut general = CerYear::new(&params, &zonal, &[None], false).unwrap();
    let mut one = CerYear::new(&params, &zonal, &[None], false).unwrap();
    for h in 0..50 {
        let injected = (h % 4) as f64 * 1.7;
        let withdrawn = (h % 3) as f64 * 2.3;
        general.add_hour(&[injected], &[withdrawn]).unwrap();
        one.add_hour_one(injected, withdrawn).unwrap();
    }
    assert!(one.add_hour_one(1.0, 1.0).is_err());
    assert!(matches!(
        CerYear::new(&params, &zonal, &[None], false)
            .unwrap()
            .add_hour_one(-1.0, 0.0),
        Err(ComponentError::InvalidInput { .. })
    ));
    assert_eq!(general.total_eur(), one.total_eur());
    assert_eq!(general.finish(), one.finish());
}
