//! The MPC planner's learned peak, event-driven re-planning and tie-break regularisation:
//! hindsight peaks against hand computation, the re-plan predicate, and replays of real ACN
//! days (the fixture) against LLF and against re-planning every step.
#![allow(clippy::unwrap_used)]

use scg_ev::acn::parse_acn_csv;
use scg_ev::evaluate::{EvaluateParams, NoClock, evaluate};
use scg_ev::habits::{PeakLearner, PeakSession, daily_hindsight_peaks, hindsight_peak_kw};
use scg_ev::model::Session;
use scg_ev::mpc::{Mpc, MpcParams, PlanEv, PlanProblem, Reserve, Scenarios, Tail, solve_plan};
use scg_ev::policy::{ActiveEv, Policy, StepContext};

const FIXTURE: &str = include_str!("data/caltech_2019-09-01_14.csv");

fn days(from: &str, to: &str) -> Vec<Session> {
    let (a, b) = (
        scg_ev::acn::date_start_min(from).unwrap(),
        scg_ev::acn::date_start_min(to).unwrap(),
    );
    parse_acn_csv(FIXTURE, 6.656)
        .unwrap()
        .into_iter()
        .filter(|s| s.arrival_min >= a && s.arrival_min < b)
        .collect()
}

#[test]
fn hindsight_peak_matches_hand_computation() {
    // Two sessions of 4 one-hour steps needing 8 and 4 kWh (6 kW chargers): 12 kWh over 4
    // hours → 3 kW is the lowest peak.
    let s = |energy| PeakSession {
        start_step: 10,
        end_step: 14,
        energy_kwh: energy,
        max_charge_kw: 6.0,
        efficiency: 1.0,
    };
    let p = hindsight_peak_kw(&[s(8.0), s(4.0)], 1.0, f64::INFINITY).unwrap();
    assert!((p - 3.0).abs() < 1e-3, "{p}");
    // One of them only present for 1 hour with 6 kWh: that hour needs 6 kW.
    let short = PeakSession {
        end_step: 11,
        energy_kwh: 6.0,
        ..s(0.0)
    };
    let p = hindsight_peak_kw(&[short, s(3.0)], 1.0, f64::INFINITY).unwrap();
    assert!((p - 6.0).abs() < 1e-3, "{p}");
    let mut learner = PeakLearner::new(2);
    learner.observe_day(1, 10.0);
    learner.observe_day(2, 7.0);
    assert_eq!(learner.target_kw(), 10.0);
    learner.observe_day(3, 8.0); // day 1 falls out of a 2-day memory
    assert_eq!(learner.target_kw(), 8.0);
}

fn ev(key: usize, departure: i64, remaining: f64) -> ActiveEv {
    ActiveEv {
        key,
        arrival_step: 0,
        departure_step: departure,
        remaining_kwh: remaining,
        max_charge_kw: 6.0,
        max_discharge_kw: 0.0,
        energy_kwh: 0.0,
        min_energy_kwh: 0.0,
        max_energy_kwh: remaining,
        efficiency: 1.0,
    }
}

#[test]
fn replans_only_when_something_changed() {
    let prices = [100.0, 50.0, 100.0, 50.0, 100.0, 100.0];
    let mut mpc = Mpc::new(MpcParams {
        replan_on_events: true,
        ..MpcParams::default()
    });
    let evs = [ev(0, 4, 12.0)];
    let mut ctx = StepContext {
        step: 0,
        step_hours: 1.0,
        evs: &evs,
        site_limit_kw: 10.0,
        price_eur_per_mwh: &prices,
        grid_peak: &[],
        demand_charge_eur_per_kw: 0.0,
        peak_so_far_kw: 0.0,
    };
    assert!(mpc.needs_replan(&ctx));
    let r0 = mpc.schedule(&ctx).unwrap();
    assert_eq!(mpc.solves(), 1);
    assert!(r0[0] < 1e-3, "cheap hours are 1 and 3: {r0:?}");
    // Next step as planned: nothing changed, no solve.
    ctx.step = 1;
    ctx.price_eur_per_mwh = &prices[1..];
    assert!(!mpc.needs_replan(&ctx));
    let r1 = mpc.schedule(&ctx).unwrap();
    assert!((r1[0] - 6.0).abs() < 1e-3 && mpc.solves() == 1, "{r1:?}");
    // The vehicle took less than planned (6 kWh left instead of 6 − 0 = 6: fine; 9 is not).
    ctx.step = 2;
    ctx.price_eur_per_mwh = &prices[2..];
    let short = [ev(0, 4, 9.0)];
    ctx.evs = &short;
    assert!(mpc.needs_replan(&ctx), "a deviation from the plan re-plans");
    // A price change re-plans.
    let mut mpc = Mpc::new(MpcParams {
        replan_on_events: true,
        ..MpcParams::default()
    });
    ctx.step = 0;
    ctx.evs = &evs;
    ctx.price_eur_per_mwh = &prices;
    mpc.schedule(&ctx).unwrap();
    let other = [100.0, 50.0, 40.0, 50.0, 100.0];
    ctx.step = 1;
    ctx.price_eur_per_mwh = &other;
    assert!(mpc.needs_replan(&ctx));
    // An arrival that fits in the kept plan is inserted without a solve: under a 20 kW
    // limit nothing couples it to the plan (no step binds, no congestion tie-break change).
    let mut mpc = Mpc::new(MpcParams {
        replan_on_events: true,
        ..MpcParams::default()
    });
    ctx.price_eur_per_mwh = &prices;
    ctx.site_limit_kw = 20.0;
    ctx.step = 0;
    mpc.schedule(&ctx).unwrap();
    ctx.step = 1;
    ctx.price_eur_per_mwh = &prices[1..];
    let two = [ev(0, 4, 12.0), ev(1, 4, 2.0)];
    ctx.evs = &two;
    assert!(mpc.needs_replan(&ctx));
    let r = mpc.schedule(&ctx).unwrap();
    assert_eq!(mpc.solves(), 1, "inserted, not solved");
    assert!(
        (r[0] - 6.0).abs() < 1e-3 && (r[1] - 2.0).abs() < 1e-3,
        "{r:?}"
    );
    // Under a 10 kW limit the two could draw more than the limit: the charge-early
    // tie-break of both changes, so the arrival is solved, not inserted.
    let mut mpc = Mpc::new(MpcParams::default());
    ctx.site_limit_kw = 10.0;
    ctx.step = 0;
    ctx.evs = &evs;
    ctx.price_eur_per_mwh = &prices;
    mpc.schedule(&ctx).unwrap();
    ctx.step = 1;
    ctx.price_eur_per_mwh = &prices[1..];
    ctx.evs = &two;
    mpc.schedule(&ctx).unwrap();
    assert_eq!(mpc.solves(), 2, "solved, not inserted");
}

/// Two fixture weekdays (2019-09-10 and 11) at 5-minute steps under a 20 kW limit (the
/// uncontrolled peak is about 80 kW), with the peak target the MPC learns from the eight days
/// before (as `scg ev evaluate --peak-history-from` does).
fn tight_days() -> (Vec<Session>, EvaluateParams) {
    let history = days("2019-09-02", "2019-09-10");
    let mut learner = PeakLearner::new(28);
    for (d, kw) in daily_hindsight_peaks(&history, 5, 20.0).unwrap() {
        learner.observe_day(d, kw);
    }
    let mut p = EvaluateParams {
        step_minutes: 5,
        site_limit_kw: Some(20.0),
        ..EvaluateParams::default()
    };
    p.mpc.peak_target_kw = learner.target_kw();
    (days("2019-09-10", "2019-09-12"), p)
}

#[test]
fn tie_break_regularisation_costs_no_energy_under_a_tight_limit() {
    // The tie-break weight (1e-9) delivers at least what the old 1e-4 did, and at least what
    // LLF does (measured: 87.08 % for both weights, LLF 87.06 %, offline optimum 87.10 %).
    let (s, mut p) = tight_days();
    let new = evaluate(&s, "mpc", &p, &mut NoClock).unwrap();
    let llf = evaluate(&s, "llf", &p, &mut NoClock).unwrap();
    p.mpc.regularisation = 1e-4;
    let old = evaluate(&s, "mpc", &p, &mut NoClock).unwrap();
    assert!(
        new.energy_delivered_kwh >= old.energy_delivered_kwh - 1e-6,
        "{} < {}",
        new.energy_delivered_kwh,
        old.energy_delivered_kwh
    );
    assert!(
        new.energy_delivered_kwh >= llf.energy_delivered_kwh - 1e-6,
        "MPC {} < LLF {}",
        new.energy_delivered_kwh,
        llf.energy_delivered_kwh
    );
    assert_eq!(new.site_limit_violation_steps, 0);
}

#[test]
fn event_replanning_solves_far_less_at_similar_quality() {
    let (s, p) = tight_days();
    assert!(
        p.mpc.replan_on_events,
        "re-planning on events is the default"
    );
    let events = evaluate(&s, "mpc", &p, &mut NoClock).unwrap();
    let mut every = p.clone();
    every.mpc.replan_on_events = false;
    let each = evaluate(&s, "mpc", &every, &mut NoClock).unwrap();
    let (a, b) = (events.solves.unwrap(), each.solves.unwrap());
    // Measured 58 solves on events vs 382 every step; 87.08 % vs 85.89 % of the energy.
    assert!(5 * a <= b, "{a} solves on events vs {b} every step");
    assert!(
        events.energy_delivered_pct >= each.energy_delivered_pct - 0.1,
        "{} % vs {} %",
        events.energy_delivered_pct,
        each.energy_delivered_pct
    );
    assert!(events.total_cost_eur <= each.total_cost_eur * 1.01);
}

#[test]
fn a_peak_target_from_history_is_planned_against() {
    let history = days("2019-09-03", "2019-09-05");
    let peaks = daily_hindsight_peaks(&history, 15, f64::INFINITY).unwrap();
    assert_eq!(peaks.len(), 2);
    assert!(peaks.iter().all(|(_, kw)| *kw > 5.0));
    let mut learner = PeakLearner::new(28);
    for (d, kw) in &peaks {
        learner.observe_day(*d, *kw);
    }
    let mut mpc = Mpc::new(MpcParams {
        peak_target_kw: learner.target_kw(),
        ..MpcParams::default()
    });
    assert_eq!(mpc.peak_target_kw(), learner.target_kw());
    // With a demand charge, a vehicle alone charges in the cheap hour up to the target
    // rather than spreading thinly across the expensive ones.
    let evs = [ev(0, 3, 6.0)];
    let prices = [300.0, 50.0, 300.0];
    let ctx = StepContext {
        step: 0,
        step_hours: 1.0,
        evs: &evs,
        site_limit_kw: f64::INFINITY,
        price_eur_per_mwh: &prices,
        grid_peak: &[],
        demand_charge_eur_per_kw: 10.0,
        peak_so_far_kw: 0.0,
    };
    let r = mpc.schedule(&ctx).unwrap();
    assert!(r[0] < 1e-3, "{r:?}");
}

#[test]
fn arrival_profile_counts_arrivals_per_kind_of_day_and_hour() {
    use scg_ev::habits::ArrivalProfile;
    // 5-minute grid; Monday 2019-09-09 has two arrivals at 08:xx, Tuesday one, Wednesday
    // none (it still counts as a weekday with no arrivals).
    let monday = scg_ev::acn::date_start_min("2019-09-09").unwrap() / (24 * 60);
    let at = |day: i64, minute: i64, energy: f64| PeakSession {
        start_step: (day * 24 * 60 + minute) / 5,
        end_step: (day * 24 * 60 + minute) / 5 + 24,
        energy_kwh: energy,
        max_charge_kw: 6.0,
        efficiency: 0.9,
    };
    let mut p = ArrivalProfile::new(28, 5);
    assert!(p.is_empty());
    p.observe(
        &[at(monday, 8 * 60, 10.0), at(monday, 8 * 60 + 30, 20.0)],
        monday,
    );
    p.observe(&[at(monday + 1, 8 * 60 + 55, 30.0)], monday + 2);
    let e = p.expected(monday + 7, 8).unwrap();
    assert!((e.sessions_per_day - 1.0).abs() < 1e-12, "{e:?}");
    assert!((e.energy_kwh - 20.0).abs() < 1e-12);
    assert!((e.stay_steps - 24.0).abs() < 1e-12);
    assert!((e.max_charge_kw - 6.0).abs() < 1e-12);
    assert!(p.expected(monday + 7, 9).is_none(), "nobody arrived at 9");
    assert!(
        p.expected(monday + 5, 8).is_none(),
        "a Saturday: no weekend day seen"
    );
    // A 2-day memory forgets Monday.
    let mut short = ArrivalProfile::new(2, 5);
    short.observe(&[at(monday, 8 * 60, 10.0)], monday);
    short.observe(&[at(monday + 1, 8 * 60, 30.0)], monday + 2);
    let e = short.expected(monday + 7, 8).unwrap();
    assert!((e.energy_kwh - 30.0).abs() < 1e-12, "{e:?}");
    assert!((e.sessions_per_day - 0.5).abs() < 1e-12, "{e:?}");
}

#[test]
fn history_is_learned_at_the_energy_a_session_could_take_on_the_grid() {
    use scg_ev::habits::peak_sessions_by_day;
    // Fixture sessions as recorded, and the same with their energy raised far above what
    // their power limit could deliver in their stay (a recording at a faster charger).
    let recorded = days("2019-09-10", "2019-09-11");
    let mut inflated = recorded.clone();
    for s in &mut inflated {
        s.energy_kwh = 1000.0;
    }
    let (a, b) = (
        peak_sessions_by_day(&recorded, 5),
        peak_sessions_by_day(&inflated, 5),
    );
    let mut capped = 0;
    for (day, list) in &b {
        for (s, r) in list.iter().zip(&a[day]) {
            let takeable =
                s.max_charge_kw * s.efficiency * (s.end_step - s.start_step) as f64 / 12.0;
            assert!((s.energy_kwh - takeable).abs() < 1e-9, "{s:?}");
            // A recorded session asking no more than it could take keeps its energy.
            assert!(r.energy_kwh <= takeable + 1e-9 && r.energy_kwh <= s.energy_kwh + 1e-9);
            capped += usize::from(r.energy_kwh < takeable - 1e-9);
        }
    }
    assert!(
        capped > 0,
        "some recorded sessions ask less than they could take"
    );
}

/// Fixture weekdays 2019-09-10..12 with a demand charge and no site limit, the MPC learning
/// from the eight days before (`EvaluateParams::history`).
fn forecast_days() -> (Vec<Session>, EvaluateParams) {
    let p = EvaluateParams {
        step_minutes: 5,
        history: days("2019-09-02", "2019-09-10"),
        ..EvaluateParams::default()
    };
    (days("2019-09-10", "2019-09-12"), p)
}

#[test]
fn forecast_arrivals_lower_the_peak_at_the_same_energy() {
    let (s, mut p) = forecast_days();
    assert!(p.mpc.forecast_arrivals_hours > 0.0, "on by default");
    // Measured before the reserve band existed, so without it (the band is off by default
    // now). With a band of 0.1 the order flipped on these two days (forecast 642.07,
    // 35.2 kW; without 609.36, 33.3 kW), while on the Caltech tuning weeks the forecast
    // stays far cheaper (docs/home.md, EV planner).
    p.mpc.reserve_pct = 0.0;
    let with = evaluate(&s, "mpc", &p, &mut NoClock).unwrap();
    let mut off = p.clone();
    off.mpc.forecast_arrivals_hours = 0.0;
    let without = evaluate(&s, "mpc", &off, &mut NoClock).unwrap();
    let offline = evaluate(&s, "offline-optimal", &p, &mut NoClock).unwrap();
    // Measured: forecast 99.886 %, 639.43, 35.3 kW, 59 solves; without it (the learned
    // target as free capacity) 99.886 %, 645.11, 35.8 kW, 47 solves; offline 99.886 %,
    // 497.86, 25.6 kW.
    assert!(
        with.total_cost_eur < without.total_cost_eur,
        "with {} {} kW, without {} {} kW",
        with.total_cost_eur,
        with.peak_kw,
        without.total_cost_eur,
        without.peak_kw
    );
    assert!(with.energy_delivered_pct >= offline.energy_delivered_pct - 0.2);
}

/// A demand charge, a peak basis of 10 kW and a cheaper second step: without the reserve
/// band the plan fills the cheap step up to the basis; with the band priced above the price
/// spread it keeps the top 10 % of the basis free, and still serves the energy in full.
#[test]
fn reserve_band_keeps_the_top_of_the_basis_free() {
    let problem = |reserve| PlanProblem {
        steps: 2,
        step_hours: 1.0,
        step_scale: Vec::new(),
        evs: vec![PlanEv {
            start: 0,
            end: 2,
            need_kwh: 12.0,
            max_charge_kw: 11.0,
            max_discharge_kw: 0.0,
            energy_kwh: 0.0,
            min_energy_kwh: 0.0,
            max_energy_kwh: 0.0,
            efficiency: 1.0,
            value_weight: 1.0,
            scenario: None,
        }],
        // A spread of 0.1 EUR/kWh between the steps.
        price_eur_per_mwh: vec![200.0, 100.0],
        site_limit_kw: f64::INFINITY,
        demand_charge_eur_per_kw: 15.0,
        quick_charge_eur_per_kwh: 0.0,
        peak_group: vec![0, 0],
        prev_peak_kw: vec![10.0],
        scenarios: None,
        reserve,
        tail: None,
    };
    let params = MpcParams::default();
    let without = solve_plan(&problem(None), &params).unwrap();
    assert!((without.charge_kw[0][1] - 10.0).abs() < 1e-3, "{without:?}");
    let band = Reserve {
        below_kw: 9.0,
        eur_per_kwh: 0.18,
    };
    let with = solve_plan(&problem(Some(band)), &params).unwrap();
    let c = &with.charge_kw[0];
    assert!(c.iter().all(|p| *p <= 9.0 + 1e-3), "{c:?}");
    assert!((c.iter().sum::<f64>() - 12.0).abs() < 1e-3, "{c:?}");
}

/// With a demand charge, a morning crowd larger than the learned mean day leaves no
/// arrivals expected for the rest of the day (`MpcParams::forecast_arrival_pool`); a quiet
/// morning keeps the forecast as learned, and without a demand charge it is unchanged.
#[test]
fn a_busy_morning_lowers_the_rest_of_the_days_forecast() {
    let history = days("2019-09-02", "2019-09-10");
    // Tuesday 2019-09-10, 09:00, on 5-minute steps.
    let step = (scg_ev::acn::date_start_min("2019-09-10").unwrap() + 9 * 60) / 5;
    let prices = vec![100.0; 600];
    let crowd: Vec<ActiveEv> = (0..200).map(|k| ev(k, step + 12, 1.0)).collect();
    let quiet = [ev(0, step + 12, 1.0)];
    // Energy of the expected arrivals in the plan at 09:00 (all of them are today's: the
    // 12-hour forecast ends at 21:00).
    let expected_kwh = |evs: &[ActiveEv], pool: bool, dc: f64| {
        let mut mpc = Mpc::new(MpcParams {
            forecast_arrival_pool: pool,
            // The pool alone: no hedge below the mean (with a demand charge it would scale
            // the forecast too; see the next test).
            demand_charge_forecast_scale: 1.0,
            ..MpcParams::default()
        });
        mpc.learn_history(&history, 5).unwrap();
        let ctx = StepContext {
            step,
            step_hours: 5.0 / 60.0,
            evs,
            // A limit that never binds: without any limit and without a demand charge the
            // plan is separable and leaves the forecast out (`Mpc::problem`).
            site_limit_kw: 1e6,
            price_eur_per_mwh: &prices,
            grid_peak: &[],
            demand_charge_eur_per_kw: dc,
            peak_so_far_kw: 0.0,
        };
        mpc.schedule(&ctx).unwrap(); // the vehicles are today's arrivals from now on
        let (problem, _) = mpc.problem(&ctx);
        problem
            .evs
            .iter()
            .filter(|e| e.value_weight < 1.0)
            .map(|e| e.need_kwh)
            .sum::<f64>()
    };
    let learned = expected_kwh(&crowd, false, 15.0);
    assert!(
        learned > 10.0,
        "the fixture week expects arrivals after 09:00: {learned}"
    );
    assert!(expected_kwh(&crowd, true, 15.0) < 1e-9);
    let same = |a: f64, b: f64| (a - b).abs() < 1e-9 * a.max(1.0);
    assert!(same(expected_kwh(&crowd, true, 0.0), learned));
    assert!(same(
        expected_kwh(&quiet, true, 15.0),
        expected_kwh(&quiet, false, 15.0)
    ));
}

/// One vehicle present needing 10 kWh over two one-hour steps, the first 0.1 EUR/kWh dearer,
/// a demand charge of 1 per kW, and two scenarios: nothing more arrives, or an arrival
/// needs 10 kWh in the second step. Priced at the mean of the scenarios' peaks the vehicle
/// splits 5/5 (0.5 + the mean of 5 and 15 kW: 10.5, the only optimum; the charge-early
/// tie-break is off); priced at the worst it charges in full first (1 + 10 kW: 11), so the
/// arrival's scenario peaks at 10 kW, not 15.
#[test]
fn scenarios_price_the_mean_or_the_worst_peak() {
    let pev = |start: usize, end: usize, scenario: Option<usize>| PlanEv {
        start,
        end,
        need_kwh: 10.0,
        max_charge_kw: 10.0,
        max_discharge_kw: 0.0,
        energy_kwh: 0.0,
        min_energy_kwh: 0.0,
        max_energy_kwh: 0.0,
        efficiency: 1.0,
        value_weight: if scenario.is_some() { 0.25 } else { 1.0 },
        scenario,
    };
    let problem = |robustness| PlanProblem {
        steps: 2,
        step_hours: 1.0,
        step_scale: Vec::new(),
        evs: vec![pev(0, 2, None), pev(1, 2, Some(1))],
        price_eur_per_mwh: vec![100.0, 0.0],
        site_limit_kw: 30.0,
        demand_charge_eur_per_kw: 1.0,
        quick_charge_eur_per_kwh: 0.0,
        peak_group: vec![0, 0],
        prev_peak_kw: vec![0.0],
        reserve: None,
        scenarios: Some(Scenarios {
            weights: vec![0.5, 0.5],
            robustness,
        }),
        tail: None,
    };
    let params = MpcParams::default();
    let mean = solve_plan(&problem(0.0), &params).unwrap();
    assert!((mean.charge_kw[0][0] - 5.0).abs() < 1e-2, "{mean:?}");
    assert!((mean.charge_kw[1][0] - 10.0).abs() < 1e-2, "{mean:?}");
    let worst = solve_plan(&problem(1.0), &params).unwrap();
    assert!((worst.charge_kw[0][0] - 10.0).abs() < 1e-2, "{worst:?}");
    assert!((worst.charge_kw[1][0] - 10.0).abs() < 1e-2, "{worst:?}");
    // Without scenarios both vehicles share one aggregate: the arrival is certain.
    let certain = PlanProblem {
        evs: vec![pev(0, 2, None), pev(1, 2, None)],
        scenarios: None,
        ..problem(0.0)
    };
    let one = solve_plan(&certain, &params).unwrap();
    assert!((one.charge_kw[0][0] - 10.0).abs() < 1e-2, "{one:?}");
}

/// With scenarios, scenario `j` of the plan at Tuesday 09:00 carries the energy of the
/// sessions that arrived on the `j`-th most recent weekday of the history between 09:05 and
/// 21:00 (on the 5-minute grid): one pseudo-session per hour with arrivals, or one per
/// session (`scenario_each_session`); none without a demand charge (the mean forecast then).
#[test]
fn scenarios_repeat_the_arrivals_of_recent_days_of_the_same_kind() {
    let history = days("2019-09-02", "2019-09-10");
    let day0 = scg_ev::acn::date_start_min("2019-09-10").unwrap();
    let step = (day0 + 9 * 60) / 5;
    let prices = vec![100.0; 600];
    let present = [ev(0, step + 12, 1.0)];
    let ctx = |dc| StepContext {
        step,
        step_hours: 5.0 / 60.0,
        evs: &present,
        site_limit_kw: f64::INFINITY,
        price_eur_per_mwh: &prices,
        grid_peak: &[],
        demand_charge_eur_per_kw: dc,
        peak_so_far_kw: 0.0,
    };
    for each in [false, true] {
        let mut mpc = Mpc::new(MpcParams {
            forecast_scenarios: 3,
            forecast_arrival_pool: false,
            scenario_each_session: each,
            ..MpcParams::default()
        });
        mpc.learn_history(&history, 5).unwrap();
        let (problem, _) = mpc.problem(&ctx(15.0));
        assert_eq!(problem.scenarios.map(|s| s.weights.len()), Some(3));
        // The three most recent weekdays before Tuesday 2019-09-10: Mon 09, Fri 06, Thu 05.
        for (j, date) in ["2019-09-09", "2019-09-06", "2019-09-05"]
            .iter()
            .enumerate()
        {
            let d0 = scg_ev::acn::date_start_min(date).unwrap();
            // Each session's energy as it could take it on the grid (its power limit for
            // its whole stay at most).
            let arrived: Vec<f64> = history
                .iter()
                .filter_map(|s| {
                    let a = s.arrival_min.div_euclid(5) * 5 + 5 * i64::from(s.arrival_min % 5 != 0);
                    let d = s.departure_min.div_euclid(5) * 5;
                    let takeable = s.ev.max_charge_kw * s.ev.efficiency * (d - a) as f64 / 60.0;
                    (d > a && a >= d0 + 9 * 60 + 5 && a < d0 + 21 * 60)
                        .then(|| s.energy_kwh.min(takeable))
                })
                .collect();
            let want: f64 = arrived.iter().sum();
            let pseudo: Vec<&PlanEv> = problem
                .evs
                .iter()
                .filter(|e| e.scenario == Some(j))
                .collect();
            let got: f64 = pseudo.iter().map(|e| e.need_kwh).sum();
            assert!(want > 1.0, "{date} had arrivals after 09:00");
            assert!(
                (got - want).abs() < 1e-6,
                "scenario {j} ({date}): {got} vs {want}"
            );
            if each {
                assert_eq!(pseudo.len(), arrived.len(), "{date}");
            } else {
                assert!(pseudo.len() <= 12 && pseudo.len() < arrived.len(), "{date}");
            }
        }
        let (plain, _) = mpc.problem(&ctx(0.0));
        assert!(plain.scenarios.is_none());
        assert!(plain.evs.iter().all(|e| e.scenario.is_none()));
    }
}

/// With a demand charge the plan makes room for `demand_charge_forecast_scale` of the mean
/// forecast's arrivals (energy and power scaled alike, stays unchanged); without one the
/// forecast is the mean, whatever the scale.
#[test]
fn the_forecast_is_hedged_below_the_mean_with_a_demand_charge_only() {
    let history = days("2019-09-02", "2019-09-10");
    let step = (scg_ev::acn::date_start_min("2019-09-10").unwrap() + 9 * 60) / 5;
    let prices = vec![100.0; 600];
    let present = [ev(0, step + 12, 1.0)];
    let pseudo = |scale: f64, dc: f64| {
        let mut mpc = Mpc::new(MpcParams {
            forecast_arrival_pool: false,
            demand_charge_forecast_scale: scale,
            ..MpcParams::default()
        });
        mpc.learn_history(&history, 5).unwrap();
        let ctx = StepContext {
            step,
            step_hours: 5.0 / 60.0,
            evs: &present,
            site_limit_kw: f64::INFINITY,
            price_eur_per_mwh: &prices,
            grid_peak: &[],
            demand_charge_eur_per_kw: dc,
            peak_so_far_kw: 0.0,
        };
        let (problem, _) = mpc.problem(&ctx);
        problem
            .evs
            .into_iter()
            .filter(|e| e.value_weight < 1.0)
            .collect::<Vec<PlanEv>>()
    };
    assert!((MpcParams::default().demand_charge_forecast_scale - 0.9).abs() < 1e-12);
    let mean = pseudo(1.0, 15.0);
    let hedged = pseudo(0.9, 15.0);
    assert!(
        mean.len() > 3,
        "the fixture week expects arrivals after 09:00"
    );
    assert_eq!(mean.len(), hedged.len());
    for (m, h) in mean.iter().zip(&hedged) {
        assert!((h.need_kwh - 0.9 * m.need_kwh).abs() < 1e-9);
        assert!((h.max_charge_kw - 0.9 * m.max_charge_kw).abs() < 1e-9);
        assert_eq!((h.start, h.end), (m.start, m.end));
    }
    assert_eq!(pseudo(0.5, 0.0), pseudo(1.0, 0.0));
}

/// A demand charge, a peak basis of 10 kW already paid for and a last step 0.1 EUR/kWh
/// cheaper: without a tail the vehicle takes its 10 kWh in its last step (the capacity is
/// paid for, the step is cheaper); with a one-step tail priced above the spread it takes
/// them in its first, leaving its last step free, and a vehicle that needs its last step
/// still gets its energy there.
#[test]
fn a_tail_keeps_the_end_of_a_stay_free_unless_energy_needs_it() {
    let problem = |need_kwh, tail| PlanProblem {
        steps: 2,
        step_hours: 1.0,
        step_scale: Vec::new(),
        evs: vec![PlanEv {
            start: 0,
            end: 2,
            need_kwh,
            max_charge_kw: 10.0,
            max_discharge_kw: 0.0,
            energy_kwh: 0.0,
            min_energy_kwh: 0.0,
            max_energy_kwh: 0.0,
            efficiency: 1.0,
            value_weight: 1.0,
            scenario: None,
        }],
        price_eur_per_mwh: vec![200.0, 100.0],
        site_limit_kw: f64::INFINITY,
        demand_charge_eur_per_kw: 15.0,
        quick_charge_eur_per_kwh: 0.0,
        peak_group: vec![0, 0],
        prev_peak_kw: vec![10.0],
        scenarios: None,
        reserve: None,
        tail,
    };
    let params = MpcParams::default();
    let tail = Tail {
        base_steps: 1,
        eur_per_kwh: 0.18,
    };
    let without = solve_plan(&problem(10.0, None), &params).unwrap();
    assert!((without.charge_kw[0][1] - 10.0).abs() < 1e-3, "{without:?}");
    let with = solve_plan(&problem(10.0, Some(tail)), &params).unwrap();
    assert!((with.charge_kw[0][0] - 10.0).abs() < 1e-3, "{with:?}");
    assert!(with.charge_kw[0][1] < 1e-3, "{with:?}");
    let needs_both = solve_plan(&problem(20.0, Some(tail)), &params).unwrap();
    let c = &needs_both.charge_kw[0];
    assert!((c.iter().sum::<f64>() - 20.0).abs() < 1e-3, "{c:?}");
}

/// The MPC prices a tail only with a demand charge: without one its problem has none, so
/// the community's fleets (no demand charge) plan as before.
#[test]
fn the_tail_is_priced_with_a_demand_charge_only() {
    let step = 100;
    let prices = vec![100.0; 600];
    let present = [ev(0, step + 24, 5.0)];
    let tail_of = |dc: f64| {
        let mpc = Mpc::new(MpcParams {
            demand_charge_tail_minutes: 30,
            ..MpcParams::default()
        });
        let ctx = StepContext {
            step,
            step_hours: 5.0 / 60.0,
            evs: &present,
            site_limit_kw: f64::INFINITY,
            price_eur_per_mwh: &prices,
            grid_peak: &[],
            demand_charge_eur_per_kw: dc,
            peak_so_far_kw: 0.0,
        };
        mpc.problem(&ctx).0.tail
    };
    assert_eq!(MpcParams::default().demand_charge_tail_minutes, 15);
    assert_eq!(tail_of(0.0), None);
    let tail = tail_of(15.0).unwrap();
    assert_eq!(tail.base_steps, 6);
    assert!((tail.eur_per_kwh - 0.18).abs() < 1e-12);
}

/// With a demand charge, the MPC plans against the site limit as free capacity once the
/// peak it learned reaches the limit (the worst remembered day needed it all); below that
/// target, without a demand charge, or with the rule off, its basis is the peak so far.
#[test]
fn a_limit_the_learned_peak_reaches_is_planned_as_paid_for() {
    let history = days("2019-09-02", "2019-09-10");
    let target = daily_hindsight_peaks(&history, 5, f64::INFINITY)
        .unwrap()
        .into_iter()
        .map(|(_, kw)| kw)
        .fold(0.0, f64::max);
    assert!(target > 21.0, "{target}");
    let basis = |limit_kw: f64, demand_charge: f64, rule: bool| {
        let mut mpc = Mpc::new(MpcParams {
            demand_charge_limit_basis: rule,
            ..MpcParams::default()
        });
        Policy::learn_history(&mut mpc, &history, 5).unwrap();
        let evs = [ev(0, 5_000_000, 10.0)];
        let prices = vec![100.0; 300];
        let ctx = StepContext {
            step: 4_999_900,
            step_hours: 5.0 / 60.0,
            evs: &evs,
            site_limit_kw: limit_kw,
            price_eur_per_mwh: &prices,
            grid_peak: &[],
            demand_charge_eur_per_kw: demand_charge,
            peak_so_far_kw: 3.0,
        };
        mpc.problem(&ctx).0.prev_peak_kw[0]
    };
    assert_eq!(basis(20.0, 15.51, true), 20.0);
    // The target within 1 % of the limit counts as reaching it.
    assert_eq!(basis(target / 0.995, 15.51, true), target / 0.995);
    assert_eq!(
        basis(target / 0.98, 15.51, true),
        3.0,
        "target below the limit"
    );
    assert_eq!(basis(20.0, 0.0, true), 3.0, "no demand charge");
    assert_eq!(basis(20.0, 15.51, false), 3.0, "rule off");
    assert_eq!(basis(f64::INFINITY, 15.51, true), 3.0, "no limit");
}

/// Replay of fixture weekdays 2019-09-10..12 under a 20 kW limit (the uncontrolled peak is
/// about 80 kW) with the default tariff's demand charge, the MPC learning from the eight days
/// before (whose hindsight peaks exceed the limit, so the limit is its peak basis):
/// re-planning on events delivers within 0.2 points of the offline optimum's energy, no less
/// than with the rule off, at a cost within 5 % of the optimum's, solving at least 5 times
/// less than re-planning every step. Measured (round 8): events 87.000 % (59 solves), the
/// rule off 86.991 %, every step 86.040 % (382 solves), LLF 87.060 %, offline 87.095 %.
#[test]
fn under_a_binding_limit_event_plans_deliver_the_optimums_energy() {
    let (s, mut p) = tight_days();
    p.mpc.peak_target_kw = 0.0;
    p.history = days("2019-09-02", "2019-09-10");
    let events = evaluate(&s, "mpc", &p, &mut NoClock).unwrap();
    let offline = evaluate(&s, "offline-optimal", &p, &mut NoClock).unwrap();
    let mut off = p.clone();
    off.mpc.demand_charge_limit_basis = false;
    let without = evaluate(&s, "mpc", &off, &mut NoClock).unwrap();
    let mut every = p.clone();
    every.mpc.replan_on_events = false;
    let each = evaluate(&s, "mpc", &every, &mut NoClock).unwrap();
    assert!(
        events.energy_delivered_pct >= offline.energy_delivered_pct - 0.2,
        "{} % vs optimum {} %",
        events.energy_delivered_pct,
        offline.energy_delivered_pct
    );
    assert!(
        events.energy_delivered_kwh >= without.energy_delivered_kwh - 1e-6,
        "{} vs rule off {}",
        events.energy_delivered_kwh,
        without.energy_delivered_kwh
    );
    assert!(events.total_cost_eur <= offline.total_cost_eur * 1.05);
    let (a, b) = (events.solves.unwrap(), each.solves.unwrap());
    assert!(5 * a <= b, "{a} solves on events vs {b} every step");
    assert_eq!(events.site_limit_violation_steps, 0);
}
