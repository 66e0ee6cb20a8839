//! The charging site against ACN-Sim: the golden numbers in `data/acnportal_golden.json` were
//! produced by `scripts/golden/acnportal_reference.sh` (acnportal 0.3.3) on the same Caltech
//! week, with the same rounding (arrival and departure floored to 5-minute periods), ideal
//! batteries, 6.656 kW charge points and one aggregate site limit. scg's replay must deliver
//! the same share of the requested energy to 0.1 percentage point.
#![allow(clippy::unwrap_used)]

use scg_ev::acn::{date_start_min, parse_acn_csv};
use scg_ev::evaluate::{EvaluateParams, Knowledge, NoClock, evaluate};

const FIXTURE: &str = include_str!("data/caltech_2019-09-01_14.csv");
const GOLDEN: &str = include_str!("data/acnportal_golden.json");

#[test]
fn uncontrolled_edf_and_llf_deliver_what_acn_sim_delivers() {
    let golden: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
    let (a, b) = (
        date_start_min(golden["from"].as_str().unwrap()).unwrap(),
        date_start_min(golden["to"].as_str().unwrap()).unwrap(),
    );
    let sessions: Vec<_> = parse_acn_csv(FIXTURE, 6.656)
        .unwrap()
        .into_iter()
        .filter(|s| s.arrival_min >= a && s.arrival_min < b)
        .collect();
    assert_eq!(sessions.len() as u64, golden["sessions"].as_u64().unwrap());
    let results = golden["results"].as_array().unwrap();
    assert_eq!(results.len(), 9);
    for r in results {
        let policy = r["policy"].as_str().unwrap();
        let params = EvaluateParams {
            step_minutes: 5,
            site_limit_kw: r["site_limit_kw"].as_f64(),
            knowledge: Knowledge::Actual,
            ..EvaluateParams::default()
        };
        let ours = evaluate(&sessions, policy, &params, &mut NoClock).unwrap();
        let requested = r["energy_requested_kwh"].as_f64().unwrap();
        assert!((ours.energy_requested_kwh - requested).abs() < 1e-3);
        let want = r["energy_delivered_pct"].as_f64().unwrap();
        assert!(
            (ours.energy_delivered_pct - want).abs() <= 0.1,
            "{policy} at {:?} kW: scg {:.4} % vs ACN-Sim {want:.4} %",
            params.site_limit_kw,
            ours.energy_delivered_pct
        );
    }
}
