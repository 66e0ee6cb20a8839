//! Prints energy %, total cost, peak and solves of every policy on one week of ACN sessions
//! (the same replay `scg ev evaluate` runs), for the EV planner tables in `docs/home.md`.
//!
//! `cargo run -p scg-ev --release --example evplan_table -- FILE.csv FROM TO LIMIT_KW HISTORY_FROM [STEP_MIN]`
//! FILE is a plain (gunzipped) ACN-Data CSV; the MPC learns (its peak target and arrival
//! profile) from the sessions between HISTORY_FROM and FROM, as `scg ev evaluate
//! --peak-history-from` does (`EvaluateParams::history`).
//! Environment: `POLICIES=llf,mpc-events,...` runs only those rows; `DAILY=1` prints the
//! history's daily hindsight peaks; `TARGET`, `FINE`, `BLOCK`, `TOL`, `CONG` override the
//! `MpcParams` fields `peak_target_kw`, `fine_horizon_minutes`, `block_minutes`,
//! `replan_tolerance_kwh`, `congestion_quick_charge_eur_per_kwh`, `FORECAST` the
//! `forecast_arrivals_hours`, and `RES`, `RESW` the reserve band's `reserve_pct` and
//! `reserve_eur_per_kwh` (`RES=0`: no band, the default), `PRICEW` the
//! `demand_charge_price_weight`, `POOL=0`/`POOL=1` the `forecast_arrival_pool`, `SCEN` the
//! `forecast_scenarios`, `ROBUST` the `scenario_peak_robustness` and `EACH=1` sets
//! `scenario_each_session`, `NOARR` the `no_arrival_weight`, `FSCALE` the `demand_charge_forecast_scale`, `TAIL` and `TAILW` the
//! `demand_charge_tail_minutes` and `demand_charge_tail_eur_per_kwh`, `BIND=0`/`BIND=1` the
//! `demand_charge_limit_basis` (for experiments).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use scg_ev::acn::{date_start_min, parse_acn_csv};
use scg_ev::evaluate::{EvaluateParams, NoClock, evaluate};
use scg_ev::habits::{PeakLearner, daily_hindsight_peaks};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).unwrap();
    let all = parse_acn_csv(&text, 6.656).unwrap();
    let (from, to) = (
        date_start_min(&args[2]).unwrap(),
        date_start_min(&args[3]).unwrap(),
    );
    let limit: f64 = args[4].parse().unwrap();
    let hist = date_start_min(&args[5]).unwrap();
    let step: u32 = args.get(6).map_or(5, |s| s.parse().unwrap());
    let week: Vec<_> = all
        .iter()
        .filter(|s| s.arrival_min >= from && s.arrival_min < to)
        .cloned()
        .collect();
    let history: Vec<_> = all
        .iter()
        .filter(|s| s.arrival_min >= hist && s.arrival_min < from)
        .cloned()
        .collect();
    let mut params = EvaluateParams {
        step_minutes: step,
        site_limit_kw: Some(limit),
        ..EvaluateParams::default()
    };
    let mut learner = PeakLearner::new(params.mpc.peak_memory_days);
    for (day, kw) in daily_hindsight_peaks(&history, step, limit).unwrap() {
        if std::env::var("DAILY").is_ok() {
            println!("day {day} ({}) {kw:.1}", day.rem_euclid(7));
        }
        learner.observe_day(day, kw);
    }
    params.history = history;
    let env = |k: &str| std::env::var(k).ok().map(|v| v.parse::<f64>().unwrap());
    if let Some(v) = env("FINE") {
        params.mpc.fine_horizon_minutes = v as u32;
    }
    if let Some(v) = env("BLOCK") {
        params.mpc.block_minutes = v as u32;
    }
    if let Some(v) = env("TOL") {
        params.mpc.replan_tolerance_kwh = v;
    }
    if let Some(v) = env("TARGET") {
        params.mpc.peak_target_kw = v;
    }
    if let Some(v) = env("FORECAST") {
        params.mpc.forecast_arrivals_hours = v;
    }
    if let Some(v) = env("RES") {
        params.mpc.reserve_pct = v;
    }
    if let Some(v) = env("RESW") {
        params.mpc.reserve_eur_per_kwh = v;
    }
    if let Some(v) = env("PRICEW") {
        params.mpc.demand_charge_price_weight = v;
    }
    if let Some(v) = env("POOL") {
        params.mpc.forecast_arrival_pool = v != 0.0;
    }
    if let Some(v) = env("SCEN") {
        params.mpc.forecast_scenarios = v as usize;
    }
    if let Some(v) = env("ROBUST") {
        params.mpc.scenario_peak_robustness = v;
    }
    if let Some(v) = env("EACH") {
        params.mpc.scenario_each_session = v != 0.0;
    }
    if let Some(v) = env("NOARR") {
        params.mpc.no_arrival_weight = v;
    }
    if let Some(v) = env("FSCALE") {
        params.mpc.demand_charge_forecast_scale = v;
    }
    if let Some(v) = env("TAIL") {
        params.mpc.demand_charge_tail_minutes = v as u32;
    }
    if let Some(v) = env("TAILW") {
        params.mpc.demand_charge_tail_eur_per_kwh = v;
    }
    if let Some(v) = env("BIND") {
        params.mpc.demand_charge_limit_basis = v != 0.0;
    }
    if let Some(v) = env("CONG") {
        params.mpc.congestion_quick_charge_eur_per_kwh = v;
    }
    println!(
        "{} sessions, limit {limit} kW, daily hindsight peaks of the history up to {:.1} kW",
        week.len(),
        learner.target_kw()
    );
    println!("policy          energy%   total     peak   solves");
    let runs: [(&str, &str, Option<bool>); 5] = [
        ("uncontrolled", "uncontrolled", None),
        ("llf", "llf", None),
        ("mpc-every", "mpc", Some(false)),
        ("mpc-events", "mpc", Some(true)),
        ("offline", "offline-optimal", None),
    ];
    let only: Vec<&str> = std::env::var("POLICIES")
        .map(|v| v.leak().split(',').collect())
        .unwrap_or_default();
    for (label, name, events) in runs {
        if !only.is_empty() && !only.contains(&label) {
            continue;
        }
        let mut p = params.clone();
        if let Some(e) = events {
            p.mpc.replan_on_events = e;
        }
        let r = evaluate(&week, name, &p, &mut NoClock).unwrap();
        println!(
            "{label:<14} {:>8.3} {:>8.2} {:>7.1} {:>7}",
            r.energy_delivered_pct,
            r.total_cost_eur,
            r.peak_kw,
            r.solves.map_or("-".into(), |s| s.to_string())
        );
    }
}
