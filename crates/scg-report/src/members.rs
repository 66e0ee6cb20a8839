//! The report's view of a large community (the city layout, see [`crate::city`]): instead of
//! one section per member, the distribution across members of the summary's per-member
//! figures — percentiles p5/p25/p50/p75/p95, histograms — and the top and bottom members by
//! net bill and by self-consumption.
//!
//! Percentiles interpolate linearly between the closest ranks of the sorted values (numpy's
//! default, "linear": rank `q·(n−1)`). A member without a value for a figure (e.g. no
//! generation, so no self-consumption) is left out of that figure's distribution, and the
//! table says how many members each row counts. This module sorts and counts what the result
//! holds; it computes no energy or money of its own.

use crate::indicators::{self_consumption, self_sufficiency};
use crate::svg::{self, Axes, Opts, WIDTH, escape};
use scg_sim::engine::Economics;
use scg_sim::{ProsumerResult, SimResult};
use std::fmt::Write as _;

/// The percentiles the report shows, in percent.
pub const PERCENTILES: [f64; 5] = [5.0, 25.0, 50.0, 75.0, 95.0];
/// Members listed at each end of a ranking.
pub const RANKED: usize = 10;
/// Bins of a histogram.
pub const HISTOGRAM_BINS: usize = 20;

/// A member's yearly net bill, EUR/yr: grid energy + demand charges − grid sales + P2P paid −
/// P2P received − CER (positive is a cost); the report's "Yearly bills" definition.
pub fn net_bill_eur(e: &Economics) -> f64 {
    e.grid_bill.net_cost_eur + e.p2p_cost_eur_per_year
        - e.p2p_revenue_eur_per_year
        - e.cer_incentive_eur
}

/// The `q`-th percentile (0–100) of sorted finite values, linear between closest ranks;
/// `None` for no values.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (q / 100.0).clamp(0.0, 1.0) * last as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let (a, b) = (sorted[lo], sorted[hi.min(last)]);
    Some(a + (b - a) * (rank - lo as f64))
}

/// Counts of `values` in `bins` equal-width bins from their minimum to their maximum, with
/// each bin's lower edge; `(edges, counts)`. All in the last bin when every value is equal.
pub fn histogram(values: &[f64], bins: usize) -> (Vec<f64>, Vec<usize>) {
    let bins = bins.max(1);
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if values.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0; bins];
    for v in values {
        let i = if width > 0.0 {
            (((v - lo) / width) as usize).min(bins - 1)
        } else {
            bins - 1
        };
        counts[i] += 1;
    }
    let edges = (0..bins).map(|i| lo + width * i as f64).collect();
    (edges, counts)
}

/// One per-member figure: its label, unit, and value per member (`None`: not defined).
struct Figure {
    label: &'static str,
    unit: &'static str,
    digits: usize,
    value: fn(&ProsumerResult) -> Option<f64>,
}

fn pct_of(v: Option<f64>) -> Option<f64> {
    v.map(|x| x * 100.0)
}

const FIGURES: [Figure; 11] = [
    Figure {
        label: "load",
        unit: "MWh/yr",
        digits: 2,
        value: |p| Some(p.energy.load_kwh / 1000.0),
    },
    Figure {
        label: "peak load",
        unit: "kW",
        digits: 2,
        value: |p| Some(p.load_report.scaled.peak_kw),
    },
    Figure {
        label: "PV",
        unit: "MWh/yr",
        digits: 2,
        value: |p| Some(p.energy.pv_kwh / 1000.0),
    },
    Figure {
        label: "grid import",
        unit: "MWh/yr",
        digits: 2,
        value: |p| Some(p.energy.grid_import_kwh / 1000.0),
    },
    Figure {
        label: "grid export",
        unit: "MWh/yr",
        digits: 2,
        value: |p| Some(p.energy.grid_export_kwh / 1000.0),
    },
    Figure {
        label: "P2P import",
        unit: "MWh/yr",
        digits: 2,
        value: |p| Some(p.energy.p2p_import_kwh / 1000.0),
    },
    Figure {
        label: "P2P export",
        unit: "MWh/yr",
        digits: 2,
        value: |p| Some(p.energy.p2p_export_kwh / 1000.0),
    },
    Figure {
        label: "self-consumption",
        unit: "%",
        digits: 1,
        value: |p| pct_of(self_consumption(&p.energy, false)),
    },
    Figure {
        label: "self-sufficiency",
        unit: "%",
        digits: 1,
        value: |p| pct_of(self_sufficiency(&p.energy, false)),
    },
    Figure {
        label: "net bill",
        unit: "EUR/yr",
        digits: 0,
        value: |p| Some(net_bill_eur(&p.economics)),
    },
    Figure {
        label: "CER incentive",
        unit: "EUR/yr",
        digits: 0,
        value: |p| Some(p.economics.cer_incentive_eur),
    },
];

/// The figure's finite values over the members, sorted.
fn sorted_values(result: &SimResult, value: fn(&ProsumerResult) -> Option<f64>) -> Vec<f64> {
    let mut v: Vec<f64> = result
        .prosumers
        .iter()
        .filter_map(value)
        .filter(|x| x.is_finite())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The `<h2 id="members">` section: percentile table, histograms, rankings.
pub fn members_section(h: &mut String, result: &SimResult) {
    let n = result.prosumers.len();
    let _ = write!(
        h,
        "<h2 id=\"members\">Members <small>({n})</small></h2><p class=\"note\">A community of {n} members: the distribution of each member's yearly figures (summary.json holds every member's; members.parquet every member's series).</p>"
    );
    percentile_table(h, result);
    let charts: [(&str, usize); 4] = [
        ("net bill", 9),
        ("self-consumption", 7),
        ("load", 0),
        ("self-sufficiency", 8),
    ];
    h.push_str("<div class=\"grid2\">");
    for (title, k) in charts {
        let f = &FIGURES[k];
        h.push_str(&histogram_chart(result, f, title));
    }
    h.push_str("</div>");
    ranking(h, result, &FIGURES[9], "net bill (highest first)");
    ranking(h, result, &FIGURES[7], "self-consumption (highest first)");
}

fn percentile_table(h: &mut String, result: &SimResult) {
    h.push_str("<div class=\"scroll\"><table><tr><th>figure</th><th>members</th><th>min</th>");
    for q in PERCENTILES {
        let _ = write!(h, "<th>p{q}</th>");
    }
    h.push_str("<th>max</th><th>mean</th></tr>");
    for f in &FIGURES {
        let v = sorted_values(result, f.value);
        let cell = |x: Option<f64>| x.map_or("–".to_owned(), |x| fixed(x, f.digits));
        let _ = write!(
            h,
            "<tr><td>{} {}</td><td>{}</td><td>{}</td>",
            f.label,
            escape(f.unit),
            v.len(),
            cell(v.first().copied())
        );
        for q in PERCENTILES {
            let _ = write!(h, "<td>{}</td>", cell(percentile(&v, q)));
        }
        let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td></tr>",
            cell(v.last().copied()),
            cell(mean)
        );
    }
    h.push_str("</table></div><p class=\"note\">Percentiles across members, linear between closest ranks; a member without generation has no self-consumption and is not counted in that row. Net bill = grid energy + demand charges − sales + P2P paid − P2P received − CER; positive is a cost.</p>");
}

/// `x` with `digits` decimals, without the sign of a value that rounds to zero (a
/// self-sufficiency of −1e-16 from float noise reads "0.0", not "-0.0").
fn fixed(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$}");
    if s.starts_with('-') && s[1..].bytes().all(|b| b == b'0' || b == b'.') {
        s[1..].to_owned()
    } else {
        s
    }
}

fn histogram_chart(result: &SimResult, f: &Figure, title: &str) -> String {
    let v = sorted_values(result, f.value);
    let (edges, counts) = histogram(&v, HISTOGRAM_BINS);
    let labels: Vec<String> = edges.iter().map(|e| fixed(*e, f.digits)).collect();
    let title = format!(
        "Members by {title} ({} members, {HISTOGRAM_BINS} bins; label = bin's lower edge)",
        v.len()
    );
    svg::bar_chart(
        &Axes {
            title: &title,
            x_label: f.label,
            x_unit: f.unit,
            y_label: "members",
            y_unit: "members",
        },
        &labels,
        &[("members", counts.iter().map(|c| *c as f64).collect())],
        false,
        Opts::new(WIDTH / 2.0, 240.0),
    )
}

/// The [`RANKED`] members with the highest and the lowest value of a figure (ties by
/// scenario order).
fn ranking(h: &mut String, result: &SimResult, f: &Figure, title: &str) {
    let mut ranked: Vec<(usize, f64)> = result
        .prosumers
        .iter()
        .enumerate()
        .filter_map(|(i, p)| (f.value)(p).filter(|x| x.is_finite()).map(|x| (i, x)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top = ranked.len().min(RANKED);
    let bottom_from = ranked.len().saturating_sub(RANKED).max(top);
    let _ = write!(
        h,
        "<h3>Top and bottom {RANKED} members by {}</h3><div class=\"scroll\"><table><tr><th>rank</th><th>member</th><th>name</th><th>load MWh/yr</th><th>PV MWh/yr</th><th>self-consumption</th><th>self-sufficiency</th><th>net bill EUR/yr</th></tr>",
        escape(title)
    );
    let row = |h: &mut String, rank: usize, (i, _): (usize, f64)| {
        let p = &result.prosumers[i];
        let pc =
            |v: Option<f64>| v.map_or("–".to_owned(), |x| format!("{} %", fixed(x * 100.0, 1)));
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
            rank + 1,
            escape(&p.id),
            escape(&p.name),
            p.energy.load_kwh / 1000.0,
            p.energy.pv_kwh / 1000.0,
            pc(self_consumption(&p.energy, false)),
            pc(self_sufficiency(&p.energy, false)),
            net_bill_eur(&p.economics),
        );
    };
    for (rank, r) in ranked.iter().enumerate().take(top) {
        row(h, rank, *r);
    }
    if bottom_from > top {
        h.push_str("<tr><td colspan=\"8\">…</td></tr>");
    }
    for (rank, r) in ranked.iter().enumerate().skip(bottom_from) {
        row(h, rank, *r);
    }
    h.push_str("</table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy_linear() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(percentile(&v, 50.0), Some(3.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 100.0), Some(10.0));
        // numpy.percentile([1,2,3,4,10], 95) = 8.8
        assert!((percentile(&v, 95.0).unwrap_or(f64::NAN) - 8.8).abs() < 1e-12);
        assert!((percentile(&v, 25.0).unwrap_or(f64::NAN) - 2.0).abs() < 1e-12);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 5.0), Some(7.0));
    }

    #[test]
    fn histogram_counts_every_value_once() {
        let (edges, counts) = histogram(&[0.0, 0.5, 1.0, 1.0, 2.0], 4);
        assert_eq!(edges, vec![0.0, 0.5, 1.0, 1.5]);
        assert_eq!(counts, vec![1, 1, 2, 1]);
        let (_, same) = histogram(&[3.0, 3.0], 5);
        assert_eq!(same.iter().sum::<usize>(), 2);
        assert_eq!(histogram(&[], 5).1.len(), 0);
    }

    #[test]
    fn a_value_that_rounds_to_zero_has_no_sign() {
        assert_eq!(fixed(-1e-16, 1), "0.0");
        assert_eq!(fixed(-0.04, 1), "0.0");
        assert_eq!(fixed(-0.05, 0), "0");
        assert_eq!(fixed(-0.06, 1), "-0.1");
        assert_eq!(fixed(-2.0, 0), "-2");
    }
}
