//! scg-home's appliance scheduler against EMHASS on the same deferrable-load day
//! (`scripts/golden/emhass_reference.py`, committed output in `data/emhass_day.json`):
//! scg's schedule must cost no more than EMHASS's under the same grid-cost formula.
#![allow(clippy::unwrap_used)]

use scg_home::appliance::{Run, Signals, schedule_dwelling};

struct Day {
    step_hours: f64,
    price: Vec<f64>,
    feed_in: Vec<f64>,
    pv_w: Vec<f64>,
    base_w: Vec<f64>,
    runs: Vec<Run>,
    emhass_starts: Vec<usize>,
    emhass_cost_eur: f64,
}

fn vec_f64(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn day() -> Day {
    let v: serde_json::Value = serde_json::from_str(include_str!("data/emhass_day.json")).unwrap();
    let runs = v["loads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let n = l["run_steps"].as_u64().unwrap() as usize;
            let end = l["end_step"].as_u64().unwrap() as usize;
            Run {
                power_kw: vec![l["power_w"].as_f64().unwrap() / 1000.0; n],
                earliest_step: l["earliest_step"].as_u64().unwrap() as usize,
                latest_step: end - n,
            }
        })
        .collect();
    Day {
        step_hours: v["step_hours"].as_f64().unwrap(),
        price: vec_f64(&v["price_eur_per_kwh"]),
        feed_in: vec_f64(&v["feed_in_eur_per_kwh"]),
        pv_w: vec_f64(&v["pv_w"]),
        base_w: vec_f64(&v["base_load_w"]),
        runs,
        emhass_starts: v["emhass_starts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect(),
        emhass_cost_eur: v["emhass_cost_eur"].as_f64().unwrap(),
    }
}

/// The script's formula: import at the price, export at the feed-in price.
fn grid_cost_eur(d: &Day, starts: &[usize]) -> f64 {
    let mut def_w = vec![0.0; d.price.len()];
    for (r, s) in d.runs.iter().zip(starts) {
        for (k, p) in r.power_kw.iter().enumerate() {
            def_w[s + k] += p * 1000.0;
        }
    }
    (0..d.price.len())
        .map(|t| {
            let net_kw = (d.base_w[t] + def_w[t] - d.pv_w[t]) / 1000.0;
            let p = if net_kw > 0.0 {
                d.price[t]
            } else {
                d.feed_in[t]
            };
            net_kw * p * d.step_hours
        })
        .sum()
}

#[test]
fn scg_schedule_costs_no_more_than_emhass() {
    let d = day();
    // Own PV surplus is what the loads can use at the feed-in price (the export forgone).
    let steps = d.price.len();
    let mut sig = Signals::flat(steps, d.step_hours, 0.0);
    sig.price_eur_per_mwh = d.price.iter().map(|p| p * 1000.0).collect();
    sig.surplus_price_eur_per_mwh = d.feed_in.iter().map(|p| p * 1000.0).collect();
    sig.surplus_kw = (0..steps)
        .map(|t| ((d.pv_w[t] - d.base_w[t]) / 1000.0).max(0.0))
        .collect();
    let mut scratch = vec![0.0; steps];
    let placed = schedule_dwelling(&d.runs, &sig, 20.0, &mut scratch).unwrap();
    let ours = grid_cost_eur(&d, &placed.starts);
    let theirs = grid_cost_eur(&d, &d.emhass_starts);
    // The committed cost is the formula applied to EMHASS's own schedule.
    assert!(
        (theirs - d.emhass_cost_eur).abs() < 1e-9,
        "{theirs} vs {}",
        d.emhass_cost_eur
    );
    assert!(
        ours <= d.emhass_cost_eur + 1e-9,
        "scg {ours} EUR ({:?}) vs EMHASS {} EUR ({:?})",
        placed.starts,
        d.emhass_cost_eur,
        d.emhass_starts
    );
}
