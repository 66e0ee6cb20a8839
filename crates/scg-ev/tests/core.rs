//! Tests of the ACN parser, the P² estimator, the baselines and the optimiser against
//! hand-computed values, and of the evaluator against the offline optimum.
#![allow(clippy::unwrap_used)]

use scg_ev::acn::parse_acn_csv;
use scg_ev::evaluate::{EvaluateParams, Knowledge, NoClock, evaluate};
use scg_ev::habits::{HabitParams, P2Quantile, evaluate_habits};
use scg_ev::model::{EvSpec, Session, with_v2g_batteries};
use scg_ev::mpc::{MpcParams, PlanEv, PlanProblem, solve_plan};
use scg_ev::policy::{ActiveEv, StepContext, policy_by_name, water_fill};
use scg_ev::tariff::Tariff;

const FIXTURE: &str = include_str!("data/caltech_2019-09-01_14.csv");

fn fixture() -> Vec<Session> {
    parse_acn_csv(FIXTURE, 6.656).expect("fixture parses")
}

fn days(sessions: &[Session], from: &str, to: &str) -> Vec<Session> {
    let a = scg_ev::acn::date_start_min(from).unwrap();
    let b = scg_ev::acn::date_start_min(to).unwrap();
    sessions
        .iter()
        .filter(|s| s.arrival_min >= a && s.arrival_min < b)
        .cloned()
        .collect()
}

#[test]
fn acn_fixture_parses_with_local_times() {
    let s = fixture();
    assert_eq!(s.len(), 402);
    // First line: 2019-09-01 ... check against the raw text.
    let first_line = FIXTURE.lines().nth(1).unwrap();
    let cols: Vec<&str> = first_line.split(',').collect();
    assert_eq!(s[0].station_id, cols[4]);
    assert_eq!(s[0].energy_kwh, cols[3].parse::<f64>().unwrap());
    // Arrival hour on the local clock equals the hour written in the file.
    let hour: u8 = cols[0][11..13].parse().unwrap();
    assert_eq!(s[0].arrival_hour(), hour);
    // 2019-09-01 was a Sunday.
    assert_eq!(s[0].arrival_weekday(), 6);
    assert!(s.iter().all(|x| x.departure_min >= x.arrival_min));
}

#[test]
fn acn_errors_name_the_line() {
    let header = FIXTURE.lines().next().unwrap();
    let good = FIXTURE.lines().nth(1).unwrap();
    let bad = good.replacen("2019-09-0", "2019-13-0", 1);
    let text = format!("{header}\n{good}\n{bad}\n");
    let err = parse_acn_csv(&text, 6.6).unwrap_err().to_string();
    assert!(err.starts_with("line 3:"), "{err}");
    assert!(err.contains("arrival"), "{err}");
    let err = parse_acn_csv("arrival,departure\n", 6.6)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 1") && err.contains("missing column"),
        "{err}"
    );
    let short = format!("{header}\n1,2\n");
    let err = parse_acn_csv(&short, 6.6).unwrap_err().to_string();
    assert!(
        err.starts_with("line 2:") && err.contains("fields"),
        "{err}"
    );
}

#[test]
fn p2_matches_exact_quantiles() {
    // A deterministic, well-mixed sequence (golden-ratio low-discrepancy) on [0, 10).
    let xs: Vec<f64> = (0..20_000)
        .map(|i| 10.0 * ((i as f64 * 0.618_033_988_75) % 1.0))
        .collect();
    for p in [0.1, 0.5, 0.9] {
        let mut q = P2Quantile::new(p);
        xs.iter().for_each(|x| q.observe(*x));
        let est = q.estimate().unwrap();
        assert!((est - 10.0 * p).abs() < 0.05, "p={p} est={est}");
    }
    // Fewer than five samples: exact interpolated quantile.
    let mut q = P2Quantile::new(0.5);
    for x in [3.0, 1.0, 2.0] {
        q.observe(x);
    }
    assert_eq!(q.estimate(), Some(2.0));
    assert_eq!(P2Quantile::new(0.3).estimate(), None);
}

#[test]
fn water_fill_is_equal_share_with_caps() {
    let out = water_fill(&[1.0, 5.0, 5.0], 7.0);
    assert_eq!(out, vec![1.0, 3.0, 3.0]);
    let out = water_fill(&[1.0, 2.0], 10.0);
    assert_eq!(out, vec![1.0, 2.0]);
}

fn ev(key: usize, arrival: i64, departure: i64, remaining: f64) -> ActiveEv {
    ActiveEv {
        key,
        arrival_step: arrival,
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

fn ctx<'a>(evs: &'a [ActiveEv], prices: &'a [f64], limit: f64) -> StepContext<'a> {
    StepContext {
        step: 0,
        step_hours: 1.0,
        evs,
        site_limit_kw: limit,
        price_eur_per_mwh: prices,
        grid_peak: &[],
        demand_charge_eur_per_kw: 0.0,
        peak_so_far_kw: 0.0,
    }
}

#[test]
fn sorting_baselines_follow_their_order() {
    // EV 0 arrived first, leaves last; EV 1 leaves first; EV 2 has least laxity.
    let evs = [ev(0, -3, 10, 12.0), ev(1, -2, 3, 2.0), ev(2, -1, 4, 20.0)];
    let prices = [100.0];
    let run = |name: &str| {
        policy_by_name(name, &MpcParams::default())
            .unwrap()
            .schedule(&ctx(&evs, &prices, 8.0))
            .unwrap()
    };
    assert_eq!(run("fcfs"), vec![6.0, 2.0, 0.0]);
    assert_eq!(run("edf"), vec![0.0, 2.0, 6.0]);
    // Laxities: EV0 10 − 2 = 8 h, EV1 3 − 1/3, EV2 4 − 20/6 = 0.67 h.
    assert_eq!(run("llf"), vec![0.0, 2.0, 6.0]);
    assert_eq!(run("round-robin"), vec![3.0, 2.0, 3.0]);
    assert_eq!(run("uncontrolled"), vec![6.0, 2.0, 6.0]);
}

#[test]
fn mpc_charges_in_the_cheapest_hours() {
    // One EV, 4 one-hour steps, needs 12 kWh at 6 kW: the two cheapest hours (1 and 3).
    let p = PlanProblem {
        steps: 4,
        step_hours: 1.0,
        step_scale: Vec::new(),
        evs: vec![PlanEv {
            start: 0,
            end: 4,
            need_kwh: 12.0,
            max_charge_kw: 6.0,
            max_discharge_kw: 0.0,
            energy_kwh: 0.0,
            min_energy_kwh: 0.0,
            max_energy_kwh: 12.0,
            efficiency: 1.0,
            value_weight: 1.0,
            scenario: None,
        }],
        price_eur_per_mwh: vec![300.0, 50.0, 200.0, 60.0],
        site_limit_kw: f64::INFINITY,
        demand_charge_eur_per_kw: 0.0,
        quick_charge_eur_per_kwh: 1e-3,
        peak_group: vec![0; 4],
        prev_peak_kw: vec![0.0],
        scenarios: None,
        reserve: None,
        tail: None,
    };
    let sol = solve_plan(&p, &MpcParams::default()).unwrap();
    let c = &sol.charge_kw[0];
    for (got, want) in c.iter().zip([0.0, 6.0, 0.0, 6.0]) {
        assert!((got - want).abs() < 1e-3, "{c:?}");
    }
}

#[test]
fn mpc_flattens_the_peak_with_a_demand_charge() {
    // Two EVs needing 6 kWh each over 3 hours at a flat price: with a demand charge the
    // optimum is a flat 4 kW.
    let mk = || PlanEv {
        start: 0,
        end: 3,
        need_kwh: 6.0,
        max_charge_kw: 6.0,
        max_discharge_kw: 0.0,
        energy_kwh: 0.0,
        min_energy_kwh: 0.0,
        max_energy_kwh: 6.0,
        efficiency: 1.0,
        value_weight: 1.0,
        scenario: None,
    };
    let p = PlanProblem {
        steps: 3,
        step_hours: 1.0,
        step_scale: Vec::new(),
        evs: vec![mk(), mk()],
        price_eur_per_mwh: vec![100.0; 3],
        site_limit_kw: f64::INFINITY,
        demand_charge_eur_per_kw: 10.0,
        quick_charge_eur_per_kwh: 1e-3,
        peak_group: vec![0; 3],
        prev_peak_kw: vec![0.0],
        scenarios: None,
        reserve: None,
        tail: None,
    };
    let sol = solve_plan(&p, &MpcParams::default()).unwrap();
    for k in 0..3 {
        let total = sol.charge_kw[0][k] + sol.charge_kw[1][k];
        assert!((total - 4.0).abs() < 1e-3, "step {k}: {total}");
    }
}

#[test]
fn mpc_discharges_when_the_spread_pays_the_wear() {
    // V2G EV with 30 kWh, wants 30 kWh at the end: sell at 400, buy back at 50.
    let ev = PlanEv {
        start: 0,
        end: 2,
        need_kwh: 0.0,
        max_charge_kw: 10.0,
        max_discharge_kw: 10.0,
        energy_kwh: 30.0,
        min_energy_kwh: 10.0,
        max_energy_kwh: 30.0,
        efficiency: 1.0,
        value_weight: 1.0,
        scenario: None,
    };
    let mut p = PlanProblem {
        steps: 2,
        step_hours: 1.0,
        step_scale: Vec::new(),
        evs: vec![ev],
        price_eur_per_mwh: vec![400.0, 50.0],
        site_limit_kw: f64::INFINITY,
        demand_charge_eur_per_kw: 0.0,
        quick_charge_eur_per_kwh: 1e-3,
        peak_group: vec![0; 2],
        prev_peak_kw: vec![0.0],
        scenarios: None,
        reserve: None,
        tail: None,
    };
    let params = MpcParams {
        wear_cost_eur_per_kwh: 0.05,
        ..MpcParams::default()
    };
    let sol = solve_plan(&p, &params).unwrap();
    assert!((sol.discharge_kw[0][0] - 10.0).abs() < 1e-3, "{sol:?}");
    assert!((sol.charge_kw[0][1] - 10.0).abs() < 1e-3, "{sol:?}");
    // Spread 0.03 EUR/kWh below the wear cost: no cycling.
    p.price_eur_per_mwh = vec![80.0, 50.0];
    let sol = solve_plan(&p, &params).unwrap();
    assert!(sol.discharge_kw[0][0] < 1e-2, "{sol:?}");
}

fn params(limit: Option<f64>) -> EvaluateParams {
    EvaluateParams {
        step_minutes: 15,
        site_limit_kw: limit,
        ..EvaluateParams::default()
    }
}

#[test]
fn offline_optimum_bounds_every_policy_and_mpc_is_close() {
    let s = days(&fixture(), "2019-09-03", "2019-09-05");
    assert!(s.len() > 60);
    let p = params(Some(25.0));
    let off = evaluate(&s, "offline-optimal", &p, &mut NoClock).unwrap();
    assert_eq!(off.site_limit_violation_steps, 0);
    for name in ["fcfs", "edf", "llf", "round-robin", "mpc"] {
        let r = evaluate(&s, name, &p, &mut NoClock).unwrap();
        assert_eq!(r.site_limit_violation_steps, 0, "{name}");
        assert!(
            r.energy_delivered_kwh <= off.energy_delivered_kwh * (1.0 + 1e-4),
            "{name}: {} > optimum {}",
            r.energy_delivered_kwh,
            off.energy_delivered_kwh
        );
        assert!(r.peak_kw <= 25.0 + 1e-6, "{name}");
    }
    // Two days at 15-minute steps: within 3 % (the 99 % target is measured on the full data
    // at 5-minute steps, see the crate's note).
    let mpc = evaluate(&s, "mpc", &p, &mut NoClock).unwrap();
    assert!(
        mpc.energy_delivered_kwh >= 0.97 * off.energy_delivered_kwh,
        "{mpc:?} vs {off:?}"
    );
    assert!(
        mpc.total_cost_eur <= 1.05 * off.total_cost_eur,
        "{mpc:?} vs {off:?}"
    );
    assert!(mpc.total_cost_eur >= off.total_cost_eur - 1e-6);
}

#[test]
fn uncontrolled_matches_hand_computation() {
    // Uncontrolled delivers min(energy, rate × steps present) per session, with arrival and
    // departure floored to the step as ACN-Sim does.
    let s = days(&fixture(), "2019-09-03", "2019-09-04");
    let r = evaluate(&s, "uncontrolled", &params(None), &mut NoClock).unwrap();
    let expected: f64 = s
        .iter()
        .map(|x| {
            let a = x.arrival_min.div_euclid(15);
            let d = x.departure_min.div_euclid(15);
            let steps = (d - a).max(0) as f64;
            x.energy_kwh.min(6.656 * 0.25 * steps)
        })
        .sum();
    assert!((r.energy_delivered_kwh - expected).abs() < 1e-6);
    assert_eq!(r.sessions, s.len());
}

#[test]
fn mpc_cuts_the_peak_without_a_site_limit() {
    let s = days(&fixture(), "2019-09-03", "2019-09-05");
    let p = params(None);
    let unc = evaluate(&s, "uncontrolled", &p, &mut NoClock).unwrap();
    let mpc = evaluate(&s, "mpc", &p, &mut NoClock).unwrap();
    assert!(
        mpc.peak_kw <= 0.6 * unc.peak_kw,
        "{} vs {}",
        mpc.peak_kw,
        unc.peak_kw
    );
    assert!(mpc.energy_delivered_kwh >= 0.99 * unc.energy_delivered_kwh);
}

#[test]
fn v2g_replay_sells_at_the_on_peak_price_and_counts_wear() {
    let mut s = days(&fixture(), "2019-09-03", "2019-09-04");
    with_v2g_batteries(&mut s, 60.0, 6.656);
    let mut p = params(None);
    p.tariff = Tariff::parse("tou:0-12=50,12-18=600,18-24=50").unwrap();
    p.mpc.wear_cost_eur_per_kwh = 0.05;
    let r = evaluate(&s, "mpc", &p, &mut NoClock).unwrap();
    assert!(r.v2g_energy_kwh > 1.0, "{r:?}");
    assert!(r.sell_offers > 0);
    assert!((r.degradation_cost_eur - 0.05 * r.v2g_energy_kwh).abs() < 1e-6);
    assert!(r.energy_delivered_pct > 95.0, "{r:?}");
}

#[test]
fn learned_knowledge_runs_and_stays_within_limits() {
    let s = days(&fixture(), "2019-09-01", "2019-09-06");
    let mut p = params(Some(30.0));
    p.knowledge = Knowledge::Learned;
    let r = evaluate(&s, "llf", &p, &mut NoClock).unwrap();
    assert_eq!(r.site_limit_violation_steps, 0);
    assert!(
        r.energy_delivered_pct > 80.0 && r.energy_delivered_pct <= 100.0 + 1e-9,
        "{r:?}"
    );
}

#[test]
fn habits_are_calibrated_and_beat_stated_departures() {
    let r = evaluate_habits(&fixture(), &HabitParams::default());
    assert!(r.sessions_scored > 200);
    // Nominal 90 % coverage of the 10 % stay quantile and of the 90 % energy quantile; with
    // online calibration two weeks give 86.6 % and 85.7 % (89-91 % on four months).
    assert!((82.0..=95.0).contains(&r.stay_low_coverage_pct), "{r:?}");
    assert!((80.0..=95.0).contains(&r.energy_high_coverage_pct), "{r:?}");
    assert!((80.0..=97.0).contains(&r.stay_plan_coverage_pct), "{r:?}");
    // Drivers over-ask energy (ACN-Data: median delivered/requested ≈ 0.5).
    assert!(
        r.energy_mae_kwh_learned < 0.8 * r.energy_mae_kwh_stated,
        "{r:?}"
    );
    assert!(r.energy_mae_kwh_blended < r.energy_mae_kwh_learned, "{r:?}");
}

#[test]
fn unknown_policy_and_bad_step_are_errors() {
    let s = days(&fixture(), "2019-09-03", "2019-09-04");
    let e = evaluate(&s, "magic", &params(None), &mut NoClock).unwrap_err();
    assert!(e.to_string().contains("unknown policy `magic`"));
    let mut p = params(None);
    p.step_minutes = 7;
    assert!(evaluate(&s, "fcfs", &p, &mut NoClock).is_err());
    let _ = EvSpec::ideal(1.0);
}
