//! Grid tariffs and the annual bill, against hand-computed bills.

#![allow(clippy::unwrap_used)]

use scg_sim::ComponentError;
use scg_sim::grid::{
    GridConfig, GridInputs, GridMeter, GridTariff, MetersTotal, PurchaseTariff, SellBack, TouBand,
};

fn config(purchase: PurchaseTariff, sell_back: SellBack) -> GridConfig {
    GridConfig {
        purchase,
        sell_back,
        demand_charge_eur_per_kw_month: 0.0,
        max_purchase_kw: None,
        max_sale_kw: None,
    }
}

fn inputs<'a>(month: &'a [u8], zonal: Option<&'a [f64]>) -> GridInputs<'a> {
    GridInputs {
        step_hours: 1.0,
        month,
        band: None,
        zonal_price_eur_per_mwh: zonal,
    }
}

#[test]
fn flat_tariff_with_demand_charge() {
    let mut cfg = config(
        PurchaseTariff::Flat {
            price_eur_per_kwh: 0.25,
        },
        SellBack::Flat {
            price_eur_per_kwh: 0.05,
        },
    );
    cfg.demand_charge_eur_per_kw_month = 10.0;
    let month = [1, 1, 2];
    let t = GridTariff::new(&cfg, &inputs(&month, None)).unwrap();
    let bill = t.bill(&[2.0, 0.0, 4.0], &[0.0, 3.0, 0.0]).unwrap();
    // 6 kWh · 0.25 = 1.5; 3 kWh · 0.05 = 0.15; peaks Jan 2 kW + Feb 4 kW → 60 EUR.
    assert!((bill.energy_cost_eur - 1.5).abs() < 1e-12);
    assert!((bill.sale_revenue_eur - 0.15).abs() < 1e-12);
    assert!((bill.demand_charge_eur - 60.0).abs() < 1e-12);
    assert_eq!(bill.monthly_peak_purchase_kw[0], 2.0);
    assert_eq!(bill.monthly_peak_purchase_kw[1], 4.0);
    assert!((bill.net_cost_eur - (1.5 + 60.0 - 0.15)).abs() < 1e-12);
    assert!((bill.purchase_kwh - 6.0).abs() < 1e-12);
    assert!((bill.sale_kwh - 3.0).abs() < 1e-12);
}

#[test]
fn band_tariff_on_quarter_hours() {
    let cfg = config(
        PurchaseTariff::Bands {
            f1_eur_per_kwh: 0.30,
            f2_eur_per_kwh: 0.20,
            f3_eur_per_kwh: 0.10,
        },
        SellBack::None,
    );
    let month = [3; 4];
    let band = [TouBand::F1, TouBand::F2, TouBand::F3, TouBand::F3];
    let inp = GridInputs {
        step_hours: 0.25,
        month: &month,
        band: Some(&band),
        zonal_price_eur_per_mwh: None,
    };
    let t = GridTariff::new(&cfg, &inp).unwrap();
    assert_eq!(t.purchase_eur_per_kwh(), &[0.30, 0.20, 0.10, 0.10]);
    // 1 kW for four quarter hours: 0.25 kWh each → (0.3 + 0.2 + 0.1 + 0.1)·0.25 = 0.175 EUR.
    let bill = t.bill(&[1.0; 4], &[2.0; 4]).unwrap();
    assert!((bill.energy_cost_eur - 0.175).abs() < 1e-12);
    assert_eq!(bill.sale_revenue_eur, 0.0);
    // No bands given: a clear error.
    let no_band = GridInputs { band: None, ..inp };
    assert!(matches!(
        GridTariff::new(&cfg, &no_band),
        Err(ComponentError::MissingInput(_))
    ));
}

#[test]
fn zonal_purchase_with_adder_and_zonal_sale() {
    let cfg = config(
        PurchaseTariff::Zonal {
            adder_eur_per_kwh: 0.1,
        },
        SellBack::Zonal,
    );
    let month = [6, 6];
    let zonal = [100.0, 200.0];
    let t = GridTariff::new(&cfg, &inputs(&month, Some(&zonal))).unwrap();
    assert!((t.purchase_eur_per_kwh()[0] - 0.2).abs() < 1e-12);
    assert!((t.purchase_eur_per_kwh()[1] - 0.3).abs() < 1e-12);
    assert!((t.sell_eur_per_kwh()[1] - 0.2).abs() < 1e-12);
    assert!(matches!(
        GridTariff::new(&cfg, &inputs(&month, None)),
        Err(ComponentError::MissingInput(_))
    ));
    assert!(matches!(
        GridTariff::new(&cfg, &inputs(&month, Some(&[1.0]))),
        Err(ComponentError::LengthMismatch { .. })
    ));
}

#[test]
fn ritiro_dedicato_true_up() {
    let rid = |min: f64, limit_mwh: f64| {
        config(
            PurchaseTariff::Flat {
                price_eur_per_kwh: 0.2,
            },
            SellBack::RitiroDedicato {
                minimum_price_eur_per_mwh: min,
                minimum_price_limit_mwh: limit_mwh,
            },
        )
    };
    let month = [7, 7];
    // Low zonal prices: 20 kWh at 20 and 30 EUR/MWh are worth 0.5 EUR; the minimum price
    // 47.5 EUR/MWh gives 20·0.0475 = 0.95 EUR, which is paid.
    let low = [20.0, 30.0];
    let t = GridTariff::new(&rid(47.5, 1500.0), &inputs(&month, Some(&low))).unwrap();
    let bill = t.bill(&[0.0; 2], &[10.0; 2]).unwrap();
    assert!((bill.sale_revenue_eur - 0.95).abs() < 1e-12);
    // High zonal prices: 10·0.1 + 10·0.12 = 2.2 EUR beats the minimum.
    let high = [100.0, 120.0];
    let t = GridTariff::new(&rid(47.5, 1500.0), &inputs(&month, Some(&high))).unwrap();
    assert!((t.bill(&[0.0; 2], &[10.0; 2]).unwrap().sale_revenue_eur - 2.2).abs() < 1e-12);
    // A 15 kWh limit: the first 15 kWh earn max(15·0.0475, 10·0.02 + 5·0.03) = 0.7125; the
    // other 5 kWh the zonal 5·0.03 = 0.15.
    let t = GridTariff::new(&rid(47.5, 0.015), &inputs(&month, Some(&low))).unwrap();
    let bill = t.bill(&[0.0; 2], &[10.0; 2]).unwrap();
    assert!((bill.sale_revenue_eur - 0.8625).abs() < 1e-12);
}

/// The summed bill of several members (the sizing search's) is the sum of their own meters'
/// bills: with a Ritiro Dedicato floor one member crosses (its yearly limit is reached
/// mid-step, another never), with a demand charge each member has its own monthly peaks, and
/// on an additive tariff.
#[test]
fn meters_total_is_the_sum_of_the_members_meters() {
    let steps = 48;
    let month: Vec<u8> = (0..steps).map(|t| if t < 24 { 3 } else { 4 }).collect();
    let zonal: Vec<f64> = (0..steps).map(|t| 20.0 + 7.0 * (t % 11) as f64).collect();
    // Member 0 exports 2 kW from step 10 on, member 1 0.4 kW all along, member 2 only buys.
    let sale = |i: usize, t: usize| match i {
        0 if t >= 10 => 2.0 + 0.1 * (t % 3) as f64,
        1 => 0.4,
        _ => 0.0,
    };
    let purchase = |i: usize, t: usize| match i {
        2 => 1.0 + (t % 5) as f64,
        0 if t < 10 => 3.0 - 0.2 * t as f64,
        _ => 0.0,
    };
    let configs = [
        // Limit 20 kWh: member 0 passes it at step ~19, member 1 never does.
        (
            SellBack::RitiroDedicato {
                minimum_price_eur_per_mwh: 47.5,
                minimum_price_limit_mwh: 0.020,
            },
            7.5,
        ),
        (SellBack::Zonal, 0.0),
        (
            SellBack::Flat {
                price_eur_per_kwh: 0.04,
            },
            3.0,
        ),
    ];
    for (sell_back, demand) in configs {
        let mut cfg = config(
            PurchaseTariff::Zonal {
                adder_eur_per_kwh: 0.15,
            },
            sell_back,
        );
        cfg.demand_charge_eur_per_kw_month = demand;
        let t = GridTariff::new(&cfg, &inputs(&month, Some(&zonal))).unwrap();
        let mut meters: Vec<GridMeter<'_>> = (0..3).map(|_| GridMeter::new(&t)).collect();
        let mut total = MetersTotal::new(&t, 3);
        for step in 0..steps {
            for (i, m) in meters.iter_mut().enumerate() {
                m.record(step, purchase(i, step), sale(i, step)).unwrap();
            }
            let (p, s) = total
                .record(step, (0..3).map(|i| (purchase(i, step), sale(i, step))))
                .unwrap();
            assert_eq!(p, (0..3).map(|i| purchase(i, step)).sum::<f64>());
            assert_eq!(s, (0..3).map(|i| sale(i, step)).sum::<f64>());
        }
        let bills: Vec<_> = meters.iter().map(GridMeter::finish).collect();
        let sum = |f: fn(&scg_sim::grid::GridBill) -> f64| bills.iter().map(f).sum::<f64>();
        let got = total.finish();
        for (what, a, b) in [
            ("purchase", got.purchase_kwh, sum(|b| b.purchase_kwh)),
            ("sale", got.sale_kwh, sum(|b| b.sale_kwh)),
            (
                "energy cost",
                got.energy_cost_eur,
                sum(|b| b.energy_cost_eur),
            ),
            ("revenue", got.sale_revenue_eur, sum(|b| b.sale_revenue_eur)),
            (
                "demand",
                got.demand_charge_eur,
                sum(|b| b.demand_charge_eur),
            ),
            ("net", got.net_cost_eur, sum(|b| b.net_cost_eur)),
        ] {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "{what}: {a} vs {b}"
            );
        }
    }
    // The floor matters here: member 0's true-up is not the community's.
    let t = GridTariff::new(
        &config(
            PurchaseTariff::Flat {
                price_eur_per_kwh: 0.2,
            },
            SellBack::RitiroDedicato {
                minimum_price_eur_per_mwh: 47.5,
                minimum_price_limit_mwh: 1500.0,
            },
        ),
        &inputs(&[1, 1], Some(&[100.0, 10.0])),
    )
    .unwrap();
    let mut total = MetersTotal::new(&t, 2);
    total
        .record(0, [(0.0, 10.0), (0.0, 0.0)].into_iter())
        .unwrap();
    total
        .record(1, [(0.0, 0.0), (0.0, 10.0)].into_iter())
        .unwrap();
    // Member 0: max(10·0.0475, 10·0.1) = 1; member 1: max(0.475, 0.1) = 0.475. The community's
    // sum would have earned max(20·0.0475, 1.1) = 1.1.
    assert!((total.finish().sale_revenue_eur - 1.475).abs() < 1e-12);
}

/// `MetersTotal` refuses what `GridMeter` refuses, member by member.
#[test]
fn meters_total_checks_every_member() {
    let mut cfg = config(
        PurchaseTariff::Flat {
            price_eur_per_kwh: 0.2,
        },
        SellBack::None,
    );
    cfg.max_purchase_kw = Some(5.0);
    let t = GridTariff::new(&cfg, &inputs(&[1, 1], None)).unwrap();
    let mut total = MetersTotal::new(&t, 2);
    // 4 + 4 kW: each member is within the limit.
    total
        .record(0, [(4.0, 0.0), (4.0, 0.0)].into_iter())
        .unwrap();
    assert!(matches!(
        total.record(1, [(1.0, 0.0), (5.1, 0.0)].into_iter()),
        Err(ComponentError::LimitExceeded { step: 1, .. })
    ));
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            total.record(1, [(0.0, 0.0), (0.0, bad)].into_iter()),
            Err(ComponentError::InvalidInput { .. })
        ));
    }
    assert!(matches!(
        total.record(2, [(0.0, 0.0), (0.0, 0.0)].into_iter()),
        Err(ComponentError::LengthMismatch { .. })
    ));
}

#[test]
fn limits_and_bad_inputs() {
    let mut cfg = config(
        PurchaseTariff::Flat {
            price_eur_per_kwh: 0.2,
        },
        SellBack::None,
    );
    cfg.max_purchase_kw = Some(5.0);
    cfg.max_sale_kw = Some(3.0);
    let month = [1, 1];
    let t = GridTariff::new(&cfg, &inputs(&month, None)).unwrap();
    assert_eq!(t.max_purchase_kw(), 5.0);
    assert_eq!(t.max_sale_kw(), 3.0);
    let mut m = GridMeter::new(&t);
    m.record(0, 5.0, 3.0).unwrap();
    assert!(matches!(
        m.record(1, 5.1, 0.0),
        Err(ComponentError::LimitExceeded { step: 1, .. })
    ));
    assert!(matches!(
        m.record(1, 0.0, -1.0),
        Err(ComponentError::InvalidInput { .. })
    ));
    assert!(matches!(
        m.record(2, 0.0, 0.0),
        Err(ComponentError::LengthMismatch { .. })
    ));
    assert!(t.bill(&[1.0], &[0.0, 0.0]).is_err());
    assert!(GridTariff::new(&cfg, &inputs(&[13], None)).is_err());
    let bad_dt = GridInputs {
        step_hours: 0.0,
        ..inputs(&month, None)
    };
    assert!(GridTariff::new(&cfg, &bad_dt).is_err());
}

#[test]
fn config_from_toml() {
    let cfg: GridConfig = toml::from_str(
        r#"
        demand_charge_eur_per_kw_month = 3.0
        max_purchase_kw = 50.0
        [purchase]
        type = "bands"
        f1_eur_per_kwh = 0.30
        f2_eur_per_kwh = 0.25
        f3_eur_per_kwh = 0.20
        "#,
    )
    .unwrap();
    assert!(cfg.validate("grid").is_empty());
    assert!(cfg.needs_bands());
    // The default sell-back is the Ritiro Dedicato with GSE's 2026 PV minimum price.
    assert_eq!(
        cfg.sell_back,
        SellBack::RitiroDedicato {
            minimum_price_eur_per_mwh: 47.5,
            minimum_price_limit_mwh: 1500.0
        }
    );
    assert!(cfg.needs_zonal_prices());
    assert_eq!(cfg.max_sale_kw, None);

    let unknown = toml::from_str::<GridConfig>(
        "[purchase]\ntype = \"flat\"\nprice_eur_per_kwh = 0.2\nprice_kwh = 1\n",
    );
    assert!(unknown.is_err(), "unknown field inside a tariff");
    let unknown_type = toml::from_str::<GridConfig>("[purchase]\ntype = \"tou\"\n");
    assert!(unknown_type.is_err());

    let bad: GridConfig = toml::from_str(
        "demand_charge_eur_per_kw_month = -1\n[purchase]\ntype = \"flat\"\n\
         price_eur_per_kwh = 0.2\n[sell_back]\ntype = \"ritiro_dedicato\"\n\
         minimum_price_eur_per_mwh = -5\n",
    )
    .unwrap();
    let paths: Vec<String> = bad.validate("grid").into_iter().map(|p| p.0).collect();
    assert_eq!(
        paths,
        [
            "grid.sell_back.minimum_price_eur_per_mwh",
            "grid.demand_charge_eur_per_kw_month"
        ]
    );
}

#[test]
fn hourly_prices_on_quarter_hours() {
    let steps = scg_sim::grid::hourly_to_steps(&[10.0, 20.0], 4);
    assert_eq!(steps, vec![10.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0]);
    assert_eq!(scg_sim::grid::hourly_to_steps(&[5.0], 1), vec![5.0]);
}
