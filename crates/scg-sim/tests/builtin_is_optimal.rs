//! The built-in community is the optimum of its own search space (issue 15): `scg optimize` on
//! the built-in scenario (seed 42, `scg optimize`'s default) picks exactly the PV, battery and
//! wind sizes the scenario ships. When a change of physics, prices or candidates moves the
//! optimum, this test fails until `crates/scg-model/scenarios/bergamo.toml` is re-sized
//! (`scg optimize -o opt` and copy the winner's sizes from `opt/scenario.toml`).
#![allow(clippy::unwrap_used)]

use scg_sim::sizing::DesignSizes;
mod common;

#[test]
fn the_builtin_scenario_is_its_own_search_optimum() {
    let scenario = scg_model::builtin::bergamo().unwrap();
    common::with_search(&scenario, 42, |assets, _, spaces, out| {
        assert!(!out.cancelled);
        let best = out.ranked.first().unwrap();
        assert!(best.grid_connected);
        for ((space, d), a) in spaces.iter().zip(&best.designs).zip(&assets.prosumers) {
            let won = DesignSizes::of(&space.designs[*d]);
            let shipped_battery_kwh = a.battery.as_ref().map_or(0.0, |b| b.capacity_kwh);
            let shipped_turbines: f64 = a.turbines.iter().map(|t| f64::from(t.turbine.count)).sum();
            assert!(
                (won.pv_kwp - a.pv_kwp()).abs() < 1e-9
                    && (won.battery_kwh - shipped_battery_kwh).abs() < 1e-9
                    && (won.wind_turbines - shipped_turbines).abs() < 1e-9,
                "{}: the search's optimum is PV {} kWp, battery {} kWh, {} turbines; the built-in \
             ships PV {} kWp, battery {shipped_battery_kwh} kWh, {shipped_turbines} turbines",
                space.id,
                won.pv_kwp,
                won.battery_kwh,
                won.wind_turbines,
                a.pv_kwp(),
            );
        }
        // Every PV winner fills its roof: the candidate lists end at the roof's limit.
        for (space, p) in spaces.iter().zip(&scenario.prosumers) {
            let limit = scg_model::roof::pv_limit_kwp(p.roof_area_m2.unwrap());
            let top = space.designs.iter().map(|d| d.pv_kwp).fold(0.0, f64::max);
            assert!(
                top <= limit && top > 0.99 * limit,
                "{}: {top} vs {limit}",
                space.id
            );
        }
    });
}
