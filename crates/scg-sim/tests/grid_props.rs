//! Grid bill invariants on random series: the bill is the sum of its parts, the Ritiro
//! Dedicato never pays less than the zonal value nor less than the minimum price on the energy
//! under its limit, and the demand charge is the sum of monthly peaks.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_sim::grid::{GridConfig, GridInputs, GridTariff, PurchaseTariff, SellBack};

/// Month, zonal price, purchase kW, sale kW per step.
type Steps = Vec<(u8, f64, f64, f64)>;

fn steps() -> impl Strategy<Value = Steps> {
    prop::collection::vec(
        (
            1_u8..=12,
            0.0..300.0_f64,
            prop_oneof![Just(0.0), 0.0..20.0_f64],
            prop_oneof![Just(0.0), 0.0..20.0_f64],
        ),
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn bill_is_the_sum_of_its_parts(
        data in steps(),
        dt in prop_oneof![Just(1.0), Just(0.25)],
        adder in 0.0..0.2_f64,
        demand in 0.0..20.0_f64,
        min_price in 0.0..100.0_f64,
        limit_mwh in 0.0..0.5_f64,
    ) {
        let month: Vec<u8> = data.iter().map(|d| d.0).collect();
        let zonal: Vec<f64> = data.iter().map(|d| d.1).collect();
        let buy: Vec<f64> = data.iter().map(|d| d.2).collect();
        let sell: Vec<f64> = data.iter().map(|d| d.3).collect();
        let cfg = GridConfig {
            purchase: PurchaseTariff::Zonal { adder_eur_per_kwh: adder },
            sell_back: SellBack::RitiroDedicato {
                minimum_price_eur_per_mwh: min_price,
                minimum_price_limit_mwh: limit_mwh,
            },
            demand_charge_eur_per_kw_month: demand,
            max_purchase_kw: None,
            max_sale_kw: None,
        };
        let inputs = GridInputs {
            step_hours: dt,
            month: &month,
            band: None,
            zonal_price_eur_per_mwh: Some(&zonal),
        };
        let bill = GridTariff::new(&cfg, &inputs).unwrap().bill(&buy, &sell).unwrap();
        let tol = 1e-9;

        let energy: f64 = buy.iter().zip(&zonal).map(|(p, z)| p * dt * (z / 1000.0 + adder)).sum();
        prop_assert!((bill.energy_cost_eur - energy).abs() < tol * energy.max(1.0));

        let zonal_value: f64 = sell.iter().zip(&zonal).map(|(s, z)| s * dt * z / 1000.0).sum();
        prop_assert!(bill.sale_revenue_eur >= zonal_value - tol * zonal_value.max(1.0));
        let sold_kwh: f64 = sell.iter().map(|s| s * dt).sum();
        let floor_kwh = sold_kwh.min(limit_mwh * 1000.0);
        prop_assert!(bill.sale_revenue_eur >= floor_kwh * min_price / 1000.0 - tol);
        // Never more than the better of the two prices on every kWh.
        let best: f64 = sell.iter().zip(&zonal)
            .map(|(s, z)| s * dt * z.max(min_price) / 1000.0).sum();
        prop_assert!(bill.sale_revenue_eur <= best + tol * best.max(1.0));

        let mut peaks = [0.0_f64; 12];
        for (m, p) in month.iter().zip(&buy) {
            let i = usize::from(*m - 1);
            peaks[i] = peaks[i].max(*p);
        }
        prop_assert_eq!(bill.monthly_peak_purchase_kw, peaks);
        prop_assert!((bill.demand_charge_eur - peaks.iter().sum::<f64>() * demand).abs() < tol * 1e3);
        prop_assert!((bill.net_cost_eur
            - (bill.energy_cost_eur + bill.demand_charge_eur - bill.sale_revenue_eur)).abs() < 1e-12 * 1e4);
        prop_assert!((bill.purchase_kwh - buy.iter().map(|p| p * dt).sum::<f64>()).abs() < tol * 1e3);
        prop_assert!((bill.sale_kwh - sold_kwh).abs() < tol * 1e3);
    }
}
