//! Outputs of `scg optimize`: the ranked table (CSV, every feasible configuration), a JSON
//! summary (counts, speed, the top configurations, the winner's sizes) and an HTML section for
//! the winner's report.

use crate::svg::escape;
use scg_sim::optimize::{ConfigResult, SearchOutcome};
use scg_sim::sizing::DesignSizes;
use serde::Serialize;
use std::fmt::Write as _;

/// How the search went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchStats {
    pub configurations_total: u64,
    pub configurations_evaluated: u64,
    pub configurations_infeasible: u64,
    pub cancelled: bool,
    pub elapsed_s: f64,
    pub configurations_per_second: f64,
}

/// One row of the ranked table, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedRow<'a> {
    pub rank: usize,
    /// Sizes per prosumer id, in scenario order.
    pub sizes: Vec<(&'a str, DesignSizes)>,
    #[serde(flatten)]
    pub result: &'a ConfigResult,
}

/// The JSON document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizeSummary<'a> {
    pub schema: &'static str,
    pub seed: u64,
    pub stats: SearchStats,
    /// The cheapest feasible configurations (at most 100), cheapest first.
    pub top: Vec<RankedRow<'a>>,
}

/// Sizes of a result per prosumer.
fn sizes_of<'a>(
    ids: &'a [String],
    sizes: &[Vec<DesignSizes>],
    r: &ConfigResult,
) -> Vec<(&'a str, DesignSizes)> {
    ids.iter()
        .zip(sizes)
        .zip(&r.designs)
        .filter_map(|((id, s), d)| s.get(*d).map(|x| (id.as_str(), *x)))
        .collect()
}

/// The ranked CSV: every feasible configuration, cheapest first.
pub fn ranked_csv(ids: &[String], sizes: &[Vec<DesignSizes>], outcome: &SearchOutcome) -> String {
    let mut out = String::from("rank,index");
    for id in ids {
        let _ = write!(
            out,
            ",{id}_pv_kwp,{id}_wind_turbines,{id}_battery_kwh,{id}_converter_kw"
        );
    }
    out.push_str(",grid_connected,npc_eur,annualized_cost_eur,coe_eur_per_kwh,renewable_fraction,unmet_fraction,initial_capital_eur,grid_import_kwh,grid_export_kwh,p2p_kwh,cer_shared_energy_kwh,cer_incentive_eur,excess_kwh\n");
    for (rank, r) in outcome.ranked.iter().enumerate() {
        let _ = write!(out, "{},{}", rank + 1, r.index);
        for (_, s) in sizes_of(ids, sizes, r) {
            let _ = write!(
                out,
                ",{},{},{},{}",
                s.pv_kwp, s.wind_turbines, s.battery_kwh, s.converter_kw
            );
        }
        let _ = writeln!(
            out,
            ",{},{:.2},{:.2},{:.5},{:.5},{:.6},{:.2},{:.1},{:.1},{:.1},{:.1},{:.2},{:.1}",
            r.grid_connected,
            r.npc_eur,
            r.annualized_cost_eur,
            r.coe_eur_per_kwh,
            r.renewable_fraction,
            r.unmet_fraction,
            r.initial_capital_eur,
            r.grid_import_kwh,
            r.grid_export_kwh,
            r.p2p_kwh,
            r.cer_shared_energy_kwh,
            r.cer_incentive_eur,
            r.excess_kwh,
        );
    }
    out
}

/// The JSON summary.
pub fn summary_json(
    ids: &[String],
    sizes: &[Vec<DesignSizes>],
    outcome: &SearchOutcome,
    stats: SearchStats,
    seed: u64,
) -> Result<String, serde_json::Error> {
    let top = outcome
        .ranked
        .iter()
        .take(100)
        .enumerate()
        .map(|(i, r)| RankedRow {
            rank: i + 1,
            sizes: sizes_of(ids, sizes, r),
            result: r,
        })
        .collect();
    let doc = OptimizeSummary {
        schema: "scg.optimize.v1",
        seed,
        stats,
        top,
    };
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
}

/// The HTML section: how the search went and the best 20 configurations.
pub fn html_section(
    ids: &[String],
    sizes: &[Vec<DesignSizes>],
    outcome: &SearchOutcome,
    stats: &SearchStats,
) -> String {
    let mut h = String::from("<h2 id=\"sizing\">Sizing search</h2>");
    let _ = write!(
        h,
        "<p>{} of {} configurations simulated{} in {:.2} s ({:.0} per second); {} infeasible (unmet load above the allowed shortage), {} ranked by net present cost. The rest of this report is the winner's year.</p>",
        stats.configurations_evaluated,
        stats.configurations_total,
        if stats.cancelled { " (cancelled)" } else { "" },
        stats.elapsed_s,
        stats.configurations_per_second,
        stats.configurations_infeasible,
        outcome.ranked.len(),
    );
    h.push_str("<table><tr><th>rank</th>");
    for id in ids {
        let _ = write!(h, "<th>{} PV kWp / wind / battery kWh</th>", escape(id));
    }
    h.push_str("<th>grid</th><th>NPC kEUR</th><th>COE EUR/kWh</th><th>renewable fraction</th><th>CER EUR/yr</th><th>capital kEUR</th></tr>");
    for (rank, r) in outcome.ranked.iter().take(20).enumerate() {
        let _ = write!(h, "<tr><td>{}</td>", rank + 1);
        for (_, s) in sizes_of(ids, sizes, r) {
            let _ = write!(
                h,
                "<td>{} / {} / {}</td>",
                s.pv_kwp, s.wind_turbines, s.battery_kwh
            );
        }
        let _ = write!(
            h,
            "<td>{}</td><td>{:.1}</td><td>{:.4}</td><td>{:.3}</td><td>{:.0}</td><td>{:.1}</td></tr>",
            if r.grid_connected { "on" } else { "off" },
            r.npc_eur / 1000.0,
            r.coe_eur_per_kwh,
            r.renewable_fraction,
            r.cer_incentive_eur,
            r.initial_capital_eur / 1000.0,
        );
    }
    h.push_str("</table>");
    h
}
