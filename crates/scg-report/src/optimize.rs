//! Outputs of `scg optimize`: the ranked table (CSV, every feasible configuration), a JSON
//! summary (counts, speed, the top configurations, the winner's sizes), warnings when the
//! winner sits at the edge of a candidate list, and an HTML section for the winner's report
//! (the search space as NPC against renewable fraction with the winner marked, a one-step
//! sensitivity table and the best configurations).

use crate::svg::{self, Axes, Opts, escape};
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
    /// What the search cannot replay exactly for this scenario, one sentence per stage
    /// (`scg_sim::sizing::not_exact`; empty when the winner's simulated NPC is its ranked one).
    pub not_exact: &'a [String],
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
    not_exact: &[String],
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
        not_exact,
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
    pv_limit_kwp: &[Option<f64>],
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
    if let Some(winner) = outcome.ranked.first() {
        for w in edge_warnings(ids, sizes, pv_limit_kwp, winner) {
            let _ = write!(h, "<p class=\"warn\">Warning: {}</p>", escape(&w));
        }
        h.push_str(&search_space_chart(outcome));
        sensitivity_table(&mut h, ids, sizes, outcome, winner);
    }
    h.push_str("<h3>Best configurations</h3><div class=\"scroll\"><table><tr><th>rank</th>");
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
    h.push_str("</table></div>");
    h
}

/// A size a search varies: its name and how to read it from a design.
type Dimension = (&'static str, fn(&DesignSizes) -> f64);

/// The sizes a search varies, by name, read from a design.
const DIMENSIONS: [Dimension; 3] = [
    ("PV kWp", |s| s.pv_kwp),
    ("wind turbines", |s| s.wind_turbines),
    ("battery kWh", |s| s.battery_kwh),
];

/// The distinct candidate values of one size of one prosumer, ascending.
fn candidates(designs: &[DesignSizes], get: fn(&DesignSizes) -> f64) -> Vec<f64> {
    let mut v: Vec<f64> = designs.iter().map(get).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// One warning per size where the winner took the largest candidate (the optimum may lie
/// beyond the list) or the smallest non-zero one (it may lie below). `pv_limit_kwp[i]` is what
/// prosumer `i`'s roof holds (`scg_model::roof`), when the scenario gives its roof: a largest PV
/// candidate within 5 % of it fills the roof, and the warning says so instead of asking to widen
/// the list.
pub fn edge_warnings(
    ids: &[String],
    sizes: &[Vec<DesignSizes>],
    pv_limit_kwp: &[Option<f64>],
    winner: &ConfigResult,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, ((id, designs), d)) in ids.iter().zip(sizes).zip(&winner.designs).enumerate() {
        let Some(chosen) = designs.get(*d) else {
            continue;
        };
        let roof_kwp = pv_limit_kwp.get(i).copied().flatten();
        for (name, get) in DIMENSIONS {
            let list = candidates(designs, get);
            let v = get(chosen);
            if list.len() < 2 {
                continue;
            }
            if Some(&v) == list.last() {
                out.push(match roof_kwp {
                    Some(limit) if name == "PV kWp" && v >= 0.95 * limit => format!(
                        "{id}: the winner's {name} ({v}) is the largest candidate of {list:?} and fills the roof (roof_area_m2 holds {limit:.1} kWp); more PV needs more roof"
                    ),
                    _ => format!(
                        "{id}: the winner's {name} ({v}) is the largest candidate of {list:?}; the optimum may lie outside the search range, widen it"
                    ),
                });
            } else if Some(&v) == list.first() && v > 0.0 {
                out.push(format!(
                    "{id}: the winner's {name} ({v}) is the smallest candidate of {list:?}; the optimum may lie outside the search range, widen it"
                ));
            }
        }
    }
    out
}

/// NPC against renewable fraction of the configurations, the winner circled. At most 4,000
/// points: beyond that an even sample of the ranking (the winner always in it).
fn search_space_chart(outcome: &SearchOutcome) -> String {
    let ranked = &outcome.ranked;
    let stride = ranked.len().div_ceil(4000).max(1);
    let points: Vec<(f64, f64)> = ranked
        .iter()
        .step_by(stride)
        .map(|r| (r.renewable_fraction * 100.0, r.npc_eur / 1000.0))
        .collect();
    let (lo_x, hi_x) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (lo_y, hi_y) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let pad = |lo: f64, hi: f64| {
        let t = svg::nice_range(
            lo - (hi - lo).abs() * 0.05 - 1e-9,
            hi + (hi - lo).abs() * 0.05 + 1e-9,
        );
        (
            t.first().copied().unwrap_or(0.0),
            t.last().copied().unwrap_or(1.0),
        )
    };
    let title = format!(
        "Search space: NPC against renewable fraction ({} of {} feasible configurations{}), the winner circled",
        points.len(),
        ranked.len(),
        if stride > 1 {
            ", an even sample of the ranking"
        } else {
            ""
        }
    );
    let winner = ranked
        .first()
        .map(|w| (w.renewable_fraction * 100.0, w.npc_eur / 1000.0, "winner"));
    svg::scatter(
        &Axes {
            title: &title,
            x_label: "renewable fraction",
            x_unit: "%",
            y_label: "NPC",
            y_unit: "kEUR",
        },
        &svg::Scatter {
            points: &points,
            x_range: pad(lo_x, hi_x),
            y_range: pad(lo_y, hi_y),
            diagonal: false,
            highlight: winner,
        },
        Opts::new(svg::WIDTH, 380.0),
    )
}

/// The cheapest feasible configuration that differs from the winner only in `dim` of
/// prosumer `p`, set to `value`.
fn neighbour<'a>(
    sizes: &[Vec<DesignSizes>],
    outcome: &'a SearchOutcome,
    winner: &ConfigResult,
    p: usize,
    dim: usize,
    value: f64,
) -> Option<&'a ConfigResult> {
    let base = sizes[p].get(winner.designs[p])?;
    outcome.ranked.iter().find(|r| {
        r.grid_connected == winner.grid_connected
            && r.designs.len() == winner.designs.len()
            && r.designs
                .iter()
                .zip(&winner.designs)
                .enumerate()
                .all(|(k, (a, b))| k == p || a == b)
            && sizes[p].get(r.designs[p]).is_some_and(|s| {
                DIMENSIONS.iter().enumerate().all(|(k, (_, get))| {
                    if k == dim {
                        get(s) == value
                    } else {
                        get(s) == get(base)
                    }
                })
            })
    })
}

/// How the NPC and renewable fraction change when one size of one prosumer moves one
/// candidate down or up from the winner (others fixed): a one-at-a-time sensitivity.
fn sensitivity_table(
    h: &mut String,
    ids: &[String],
    sizes: &[Vec<DesignSizes>],
    outcome: &SearchOutcome,
    winner: &ConfigResult,
) {
    h.push_str("<h3>Sensitivity: one size one step from the winner</h3><div class=\"scroll\"><table><tr><th>prosumer</th><th>size</th><th>winner</th><th>one step down</th><th>ΔNPC kEUR</th><th>Δ renewable fraction (points)</th><th>one step up</th><th>ΔNPC kEUR</th><th>Δ renewable fraction (points)</th></tr>");
    for (p, id) in ids.iter().enumerate() {
        let Some(base) = sizes.get(p).and_then(|s| s.get(winner.designs[p])) else {
            continue;
        };
        for (dim, (name, get)) in DIMENSIONS.iter().enumerate() {
            let list = candidates(&sizes[p], *get);
            if list.len() < 2 {
                continue;
            }
            let v = get(base);
            let pos = list.iter().position(|x| *x == v).unwrap_or(0);
            let cell = |step: Option<f64>| -> String {
                let Some(value) = step else {
                    return "<td>–</td><td></td><td></td>".to_owned();
                };
                match neighbour(sizes, outcome, winner, p, dim, value) {
                    Some(r) => format!(
                        "<td>{value}</td><td>{:+.1}</td><td>{:+.2}</td>",
                        (r.npc_eur - winner.npc_eur) / 1000.0,
                        (r.renewable_fraction - winner.renewable_fraction) * 100.0
                    ),
                    None => format!("<td>{value}</td><td>infeasible</td><td></td>"),
                }
            };
            let down = pos.checked_sub(1).and_then(|i| list.get(i)).copied();
            let up = list.get(pos + 1).copied();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{name}</td><td>{v}</td>{}{}</tr>",
                escape(id),
                cell(down),
                cell(up)
            );
        }
    }
    h.push_str("</table></div>");
}
