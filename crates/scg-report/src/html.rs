//! `report.html`: one self-contained page (inline SVG and CSS, no scripts, no network) that
//! shows the community at a glance, then each prosumer: metrics, heat map, the year's hourly
//! line, HOMER's seasonal profile and daily profiles.

use crate::ReportError;
use crate::summary::Summary;
use crate::svg::{self, escape};
use scg_sim::SimResult;
use scg_sim::metrics::LoadReport;
use std::fmt::Write as _;

const STYLE: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#222}\
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-top:12px}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}\
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f3f3f3}\
td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:12px}\
nav a{margin-right:12px}svg{display:block;margin:8px 0}";

/// Render the report page.
pub fn render(result: &SimResult, summary: &Summary) -> Result<String, ReportError> {
    let mut h = String::with_capacity(1 << 20);
    let sc = &summary.scenario;
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>scg report: {name}</title><style>{STYLE}</style></head><body>\
         <h1>{name}</h1><p class=\"note\">scg {ver} · seed {seed} · {lat:.3}°N {lon:.3}°E · {tz} (standard time, UTC{off}) · model year {year} · {steps} steps of {step} min</p><nav>",
        name = escape(&sc.name),
        ver = escape(&summary.scg_version),
        seed = summary.seed,
        lat = sc.latitude_deg,
        lon = sc.longitude_deg,
        tz = escape(&sc.time_zone),
        off = sc.utc_offset,
        year = sc.model_year,
        steps = sc.steps,
        step = sc.step_minutes,
    );
    h.push_str("<a href=\"#community\">community</a>");
    for p in &result.prosumers {
        let _ = write!(h, "<a href=\"#{id}\">{id}</a>", id = escape(&p.id));
    }
    h.push_str("</nav>");

    community_section(&mut h, result)?;
    for p in &result.prosumers {
        let _ = write!(
            h,
            "<h2 id=\"{}\">{} <small>({})</small></h2>",
            escape(&p.id),
            escape(&p.name),
            escape(&p.id)
        );
        metrics_table(&mut h, &[(p.name.as_str(), &p.load_report)]);
        load_charts(&mut h, &p.name, &p.load.load_kw, &p.load_report, result)?;
    }
    h.push_str("<p class=\"note\">Statistics as HOMER reports them: load factor = average ÷ peak; crest factor = peak ÷ RMS; the baseline is the unperturbed, unscaled load. Timestamps are local standard time.</p></body></html>\n");
    Ok(h)
}

fn community_section(h: &mut String, result: &SimResult) -> Result<(), ReportError> {
    h.push_str("<h2 id=\"community\">Community</h2>");
    let mut rows: Vec<(&str, &LoadReport)> = result
        .prosumers
        .iter()
        .map(|p| (p.name.as_str(), &p.load_report))
        .collect();
    rows.push(("Community", &result.community.load_report));
    metrics_table(h, &rows);
    // Monthly average load of each prosumer on one chart.
    let monthly: Vec<Vec<f64>> = result
        .prosumers
        .iter()
        .map(|p| {
            p.load_report
                .seasonal
                .iter()
                .map(|m| m.average_kw)
                .collect()
        })
        .collect();
    let series: Vec<(&str, &[f64])> = result
        .prosumers
        .iter()
        .zip(&monthly)
        .map(|(p, m)| (p.id.as_str(), m.as_slice()))
        .collect();
    let ticks: Vec<_> = (0..12)
        .map(|m| (m as f64, svg::MONTHS[m].to_string()))
        .collect();
    h.push_str(&svg::line_chart(
        "Monthly average load by prosumer",
        "kW",
        &series,
        &ticks,
        960.0,
        260.0,
    ));
    load_charts(
        h,
        "Community",
        &result.community.load_kw,
        &result.community.load_report,
        result,
    )
}

fn metrics_table(h: &mut String, rows: &[(&str, &LoadReport)]) {
    h.push_str("<table><tr><th></th><th>kWh/day</th><th>avg kW</th><th>peak kW</th><th>min kW</th><th>load factor</th><th>crest factor</th><th>peak month</th><th>MWh/yr</th><th>baseline kWh/day</th><th>baseline peak kW</th><th>scale factor</th></tr>");
    for (name, r) in rows {
        let s = &r.scaled;
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.2}</td><td>{:.4}</td></tr>",
            escape(name),
            s.average_kwh_per_day,
            s.average_kw,
            s.peak_kw,
            s.min_kw,
            s.load_factor,
            s.crest_factor,
            svg::MONTHS[usize::from(s.peak_month.clamp(1, 12)) - 1],
            s.energy_kwh / 1000.0,
            r.baseline.average_kwh_per_day,
            r.baseline.peak_kw,
            r.scale_factor,
        );
    }
    h.push_str("</table>");
}

/// Heat map, hourly line, seasonal profile and daily profiles of one load.
fn load_charts(
    h: &mut String,
    name: &str,
    load_kw: &[f64],
    report: &LoadReport,
    result: &SimResult,
) -> Result<(), ReportError> {
    let hourly = hourly_means(load_kw, result.grid.steps_per_hour());
    h.push_str(&svg::heat_map(
        &format!("{name}: load by day and hour (kW)"),
        &hourly,
        960.0,
    )?);
    h.push_str(&svg::line_chart(
        &format!("{name}: hourly load over the year"),
        "kW",
        &[(name, &hourly)],
        &svg::month_ticks(24.0),
        960.0,
        220.0,
    ));
    h.push_str(&svg::seasonal_chart(
        &format!("{name}: seasonal profile (min, daily low–high, mean, max)"),
        &report.seasonal,
        960.0,
        240.0,
    ));
    h.push_str(&svg::daily_profiles_chart(
        &format!("{name}: average daily profile by month (kW)"),
        &report.daily_profile_kw,
        960.0,
    ));
    Ok(())
}

/// Average sub-hourly steps to hours (identity at 60 minutes).
fn hourly_means(series: &[f64], steps_per_hour: usize) -> Vec<f64> {
    if steps_per_hour <= 1 {
        return series.to_vec();
    }
    series
        .chunks(steps_per_hour)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect()
}
