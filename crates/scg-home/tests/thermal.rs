//! The thermal plan's fast path (the segment LP on `scg_opt::qp`, the reachable-state test)
//! against the general formulation on `clarabel` it replaced, on random days: water heaters
//! and heat pumps, 24 and 96 steps, random prices (negative too), surplus, headroom, draws and
//! outdoor temperatures, tight and loose bands, and days no power can keep in the band.
//! LP optima need not be unique, so costs and feasibility are compared, not schedules.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_home::appliance::Signals;
use scg_home::config::{HeatPumpConfig, WaterHeaterConfig};
use scg_home::thermal::{Linear, Solver};

/// A day's prices and surplus, per step.
#[derive(Debug, Clone)]
struct Market {
    price: Vec<f64>,
    surplus_price: Vec<f64>,
    surplus_kw: Vec<f64>,
    peak: Vec<bool>,
    adder: f64,
}

fn market(steps: usize) -> impl Strategy<Value = Market> {
    (
        prop::collection::vec(-50.0f64..400.0, steps),
        prop::collection::vec(0.0f64..250.0, steps),
        prop::collection::vec(prop_oneof![Just(0.0), 0.0f64..3.0], steps),
        prop::collection::vec(any::<bool>(), steps),
        0.0f64..150.0,
    )
        .prop_map(|(price, surplus_price, surplus_kw, peak, adder)| Market {
            price,
            surplus_price,
            surplus_kw,
            peak,
            adder,
        })
}

fn signals(m: &Market) -> Signals {
    let steps = m.price.len();
    let mut s = Signals::flat(steps, 24.0 / steps as f64, 0.0);
    s.price_eur_per_mwh.clone_from(&m.price);
    s.surplus_price_eur_per_mwh.clone_from(&m.surplus_price);
    s.surplus_kw.clone_from(&m.surplus_kw);
    s.grid_peak.clone_from(&m.peak);
    s.grid_peak_adder_eur_per_mwh = m.adder;
    s
}

/// A water heater: tank, element, band (tight or loose), loss, start state and draws (heavy
/// draws make some days infeasible).
fn water_heater(steps: usize) -> impl Strategy<Value = Linear> {
    (
        (40.0f64..200.0, 0.5f64..3.0, 0.5f64..3.0),
        prop_oneof![(44.0f64..46.0, 0.5f64..2.0), (35.0f64..50.0, 10.0f64..35.0)],
        0.0f64..1.0,
        prop::collection::vec(prop_oneof![3 => Just(0.0), 1 => 0.0f64..1.5], steps),
    )
        .prop_map(
            move |((tank_l, element_kw, loss), (min_c, band), start, draws)| {
                let w = WaterHeaterConfig {
                    count: 1,
                    tank_l,
                    element_kw,
                    min_c,
                    max_c: min_c + band,
                    cold_water_c: 10.0,
                    ambient_c: 20.0,
                    loss_w_per_k: loss,
                    draws: vec![],
                };
                let (lo, hi) = (w.energy_at_kwh(w.min_c), w.energy_at_kwh(w.max_c));
                // Half the days start full, as the agent's tanks do.
                let x0 = if start < 0.5 {
                    hi
                } else {
                    lo + start * (hi - lo)
                };
                Linear::water_heater(&w, &draws, 24.0 / steps as f64, x0)
            },
        )
}

/// A heat pump: a winter day (feasible but for weak pumps) or a hot day (cannot cool).
fn heat_pump(steps: usize) -> impl Strategy<Value = Linear> {
    (
        (0.5f64..4.0, 2.0f64..4.5, 6.0f64..20.0, 4.0f64..20.0),
        prop_oneof![(20.0f64..21.0, 0.3f64..1.0), (18.0f64..21.0, 2.0f64..6.0)],
        0.0f64..1.0,
        prop_oneof![3 => -10.0f64..15.0, 1 => 25.0f64..35.0],
        prop::collection::vec(-3.0f64..3.0, steps),
    )
        .prop_map(
            move |((kw, cop, r, c), (min_c, band), start, mean, noise)| {
                let h = HeatPumpConfig {
                    count: 1,
                    max_electric_kw: kw,
                    cop,
                    resistance_k_per_kw: r,
                    capacitance_kwh_per_k: c,
                    comfort_min_c: min_c,
                    comfort_max_c: min_c + band,
                    setpoint_c: min_c + 0.5 * band,
                };
                let outdoor: Vec<f64> = noise.iter().map(|n| mean + n).collect();
                let x0 = min_c + start * band;
                Linear::heat_pump(&h, &outdoor, 24.0 / steps as f64, x0)
            },
        )
}

/// A device with a random headroom: none, or per step a share of its largest power.
fn device(steps: usize) -> impl Strategy<Value = Linear> {
    (
        prop_oneof![water_heater(steps), heat_pump(steps)],
        prop_oneof![
            Just(None),
            prop::collection::vec(-0.2f64..1.5, steps).prop_map(Some)
        ],
    )
        .prop_map(|(mut lin, soft)| {
            if let Some(share) = soft {
                lin.soft_max_kw = share
                    .iter()
                    .zip(&lin.p_max_kw)
                    .map(|(s, p)| s * p)
                    .collect();
            }
            lin
        })
}

fn day(steps: usize) -> impl Strategy<Value = (Linear, Market)> {
    (device(steps), market(steps))
}

/// Largest amount by which `power_kw` breaks a bound of `lin`: power limits, the band after
/// each step, the end state at least the start (clipped into the band).
fn worst_violation(lin: &Linear, power_kw: &[f64]) -> f64 {
    let power = power_kw
        .iter()
        .zip(&lin.p_max_kw)
        .map(|(p, max)| (-p).max(p - max).max(0.0))
        .fold(0.0, f64::max);
    let xs = lin.states(power_kw);
    let band = xs
        .iter()
        .map(|x| (lin.lo - x).max(x - lin.hi).max(0.0))
        .fold(0.0, f64::max);
    let end = (lin.x0.clamp(lin.lo, lin.hi) - xs.last().copied().unwrap_or(lin.x0)).max(0.0);
    power.max(band).max(end)
}

fn check(lin: &Linear, m: &Market) -> Result<Solver, TestCaseError> {
    let sig = signals(m);
    let fast = lin.plan(&sig, 0).unwrap();
    let oracle = lin.optimise_clarabel(&sig, 0).unwrap();
    let offers = lin.offers(&sig, 0);
    let horizon = lin.horizon(0, lin.x0, &offers);
    match (&fast.power_kw, &oracle) {
        (None, None) => {}
        (Some(p), Some(q)) => {
            let (cost, best) = (horizon.cost_eur(p), horizon.cost_eur(q));
            prop_assert!(
                (cost - best).abs() <= 1e-6 * best.abs().max(1.0),
                "cost {cost} by {:?}, clarabel {best}",
                fast.solver
            );
            let (v, w) = (worst_violation(lin, p), worst_violation(lin, q));
            prop_assert!(v <= 1e-6, "{:?} breaks a bound by {v}", fast.solver);
            prop_assert!(w <= 1e-6, "clarabel breaks a bound by {w}");
        }
        (a, b) => prop_assert!(
            false,
            "feasibility differs: {:?} {:?}, clarabel {:?}",
            fast.solver,
            a.is_some(),
            b.is_some()
        ),
    }
    Ok(fast.solver)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fast_plan_costs_what_clarabel_costs_hourly((lin, m) in day(24)) {
        let solver = check(&lin, &m)?;
        prop_assert_ne!(solver, Solver::Clarabel, "qp declined a day");
    }

    #[test]
    fn fast_plan_costs_what_clarabel_costs_quarter_hourly((lin, m) in day(96)) {
        let solver = check(&lin, &m)?;
        prop_assert_ne!(solver, Solver::Clarabel, "qp declined a day");
    }
}

/// Two identical water heaters sharing a surplus and a headroom plan as one of them against
/// half of each (the group of `thermal_day`), and the built-in's tank, starting full, ends
/// its day full: the end state's box is a point, which `qp` takes as a fixed state.
#[test]
fn a_full_tank_plans_on_qp_and_ends_full() {
    let w = WaterHeaterConfig {
        count: 1,
        tank_l: 80.0,
        element_kw: 1.2,
        min_c: 45.0,
        max_c: 65.0,
        cold_water_c: 10.0,
        ambient_c: 20.0,
        loss_w_per_k: 1.2,
        draws: scg_home::config::profile_m(),
    };
    let draws = w.draw_per_step_kwh(96);
    let lin = Linear::water_heater(&w, &draws, 0.25, w.energy_at_kwh(w.max_c));
    let mut sig = Signals::flat(96, 0.25, 240.0);
    for t in 32..76 {
        sig.price_eur_per_mwh[t] = 290.0;
    }
    let plan = lin.plan(&sig, 0).unwrap();
    assert_eq!(plan.solver, Solver::Qp);
    let p = plan.power_kw.unwrap();
    let end = *lin.states(&p).last().unwrap();
    assert!((end - lin.hi).abs() < 1e-6, "end {end}, full {}", lin.hi);
    let q = lin.optimise_clarabel(&sig, 0).unwrap().unwrap();
    let offers = lin.offers(&sig, 0);
    let h = lin.horizon(0, lin.x0, &offers);
    assert!((h.cost_eur(&p) - h.cost_eur(&q)).abs() < 1e-6 * h.cost_eur(&q));
}
