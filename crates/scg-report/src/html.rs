//! `report.html`: one self-contained page (inline SVG and CSS, no scripts, no network) that
//! shows the community at a glance, then each prosumer: metrics, heat map, the year's hourly
//! line, HOMER's seasonal profile and daily profiles.

use crate::ReportError;
use crate::summary::Summary;
use crate::svg::{self, escape};
use scg_sim::SimResult;
use scg_sim::engine::Economics;
use scg_sim::metrics::LoadReport;
use scg_sim::year::EnergySums;
use std::fmt::Write as _;

const STYLE: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#222}\
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-top:12px}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}\
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f3f3f3}\
td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:12px}\
nav a{margin-right:12px}svg{display:block;margin:8px 0}";

/// Render the report page.
pub fn render(
    result: &SimResult,
    summary: &Summary,
    extra_html: &str,
) -> Result<String, ReportError> {
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
    h.push_str(extra_html);

    community_section(&mut h, result, summary)?;
    for p in &result.prosumers {
        let _ = write!(
            h,
            "<h2 id=\"{}\">{} <small>({})</small></h2>",
            escape(&p.id),
            escape(&p.name),
            escape(&p.id)
        );
        metrics_table(&mut h, &[(p.name.as_str(), &p.load_report)]);
        energy_table(&mut h, &[(p.name.as_str(), &p.energy, &p.economics)]);
        load_charts(&mut h, &p.name, &p.load.load_kw, &p.load_report, result)?;
        generation_charts(&mut h, p, result);
        ev_charts(&mut h, p, result);
    }
    h.push_str("<p class=\"note\">Statistics as HOMER reports them: load factor = average ÷ peak; crest factor = peak ÷ RMS; the baseline is the unperturbed, unscaled load. Timestamps are local standard time.</p></body></html>\n");
    Ok(h)
}

fn community_section(
    h: &mut String,
    result: &SimResult,
    summary: &Summary,
) -> Result<(), ReportError> {
    h.push_str("<h2 id=\"community\">Community</h2>");
    let mut rows: Vec<(&str, &LoadReport)> = result
        .prosumers
        .iter()
        .map(|p| (p.name.as_str(), &p.load_report))
        .collect();
    rows.push(("Community", &result.community.load_report));
    metrics_table(h, &rows);
    let mut energy_rows: Vec<(&str, &EnergySums, &Economics)> = result
        .prosumers
        .iter()
        .map(|p| (p.name.as_str(), &p.energy, &p.economics))
        .collect();
    energy_rows.push((
        "Community",
        &result.community.energy,
        &result.community.economics,
    ));
    energy_table(h, &energy_rows);
    let cer = &result.community.cer;
    let _ = write!(
        h,
        "<p>CER: {:.1} MWh shared in the year, incentive {:.0} EUR + ARERA valorisation {:.0} EUR. The main grid was at peak in {} of {} steps.</p>",
        cer.shared_energy_kwh / 1000.0,
        cer.incentive_eur,
        cer.valorisation_eur,
        result.community.grid_at_peak_steps,
        result.grid.len()
    );
    h.push_str(&monthly_balance_chart(result));
    if let Some(m) = &result.community.market {
        market_section(h, result, m);
    }
    if let Some(l) = &summary.ledger {
        let _ = write!(
            h,
            "<p>RESCoin ledger (<code>{}</code>): {} blocks, {} transactions ({} rejected), {} certificates of renewable origin, {} P2P trades settled; state root <code>{}</code>. Check it with <code>scg ledger verify</code>.</p>",
            escape(&l.ledger_dir),
            l.ledger_blocks,
            l.ledger_transactions,
            l.ledger_transactions_rejected,
            l.certificates_issued,
            l.p2p_trades_settled,
            escape(&l.ledger_state_root)
        );
    }
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

/// The community market: clearing price and volume by hour of day, and who sold to whom.
fn market_section(h: &mut String, result: &SimResult, m: &scg_sim::market_stage::MarketYear) {
    let _ = write!(
        h,
        "<h3>Community market</h3><p>{} P2P trades, {:.1} MWh at an average {:.1} EUR/MWh; grid fees {:.0} EUR.</p>",
        m.p2p_trades,
        m.p2p_volume_kwh / 1000.0,
        m.p2p_average_price_eur_per_mwh,
        m.grid_fees_eur
    );
    let hours: Vec<String> = (0..24).map(|x| x.to_string()).collect();
    h.push_str(&svg::bar_chart(
        "P2P volume by hour of day (kWh/yr)",
        "kWh",
        &hours,
        &[("volume", m.volume_by_hour_kwh.clone())],
        960.0,
        220.0,
    ));
    let ticks: Vec<_> = (0..24)
        .step_by(3)
        .map(|x| (x as f64, x.to_string()))
        .collect();
    h.push_str(&svg::line_chart(
        "Mean clearing price by hour of day (EUR/MWh)",
        "EUR/MWh",
        &[("price", &m.price_by_hour_eur_per_mwh)],
        &ticks,
        960.0,
        200.0,
    ));
    h.push_str("<table><tr><th>seller \\ buyer (MWh/yr)</th>");
    for p in &result.prosumers {
        let _ = write!(h, "<th>{}</th>", escape(&p.id));
    }
    h.push_str("</tr>");
    for (p, row) in result.prosumers.iter().zip(&m.sold_kwh) {
        let _ = write!(h, "<tr><td>{}</td>", escape(&p.id));
        for v in row {
            let _ = write!(h, "<td>{:.2}</td>", v / 1000.0);
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

fn energy_table(h: &mut String, rows: &[(&str, &EnergySums, &Economics)]) {
    h.push_str("<table><tr><th></th><th>PV MWh</th><th>wind MWh</th><th>grid in MWh</th><th>grid out MWh</th><th>P2P in MWh</th><th>P2P out MWh</th><th>battery out MWh</th><th>unmet MWh</th><th>renewable fraction</th><th>NPC kEUR</th><th>COE EUR/kWh</th><th>CER EUR/yr</th></tr>");
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |x| format!("{x:.digits$}"));
    for (name, e, m) in rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.2}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{:.0}</td></tr>",
            escape(name),
            e.pv_kwh / 1000.0,
            e.wind_kwh / 1000.0,
            e.grid_import_kwh / 1000.0,
            e.grid_export_kwh / 1000.0,
            e.p2p_import_kwh / 1000.0,
            e.p2p_export_kwh / 1000.0,
            e.battery_out_kwh / 1000.0,
            e.unmet_kwh / 1000.0,
            opt(m.renewable_fraction, 3),
            m.npc_eur / 1000.0,
            opt(m.coe_eur_per_kwh, 3),
            m.cer_incentive_eur,
        );
    }
    h.push_str("</table>");
}

/// Monthly energy balance of the community: load against what served it and what left.
fn monthly_balance_chart(result: &SimResult) -> String {
    let grid = &result.grid;
    let dt = grid.step_hours();
    let mut series: Vec<(&str, Vec<f64>)> =
        ["load", "PV + wind", "grid import", "grid export", "P2P"]
            .iter()
            .map(|n| (*n, vec![0.0; 12]))
            .collect();
    for p in &result.prosumers {
        for t in 0..grid.len() {
            let m = usize::from(grid.month_of_step(t)) - 1;
            let f = &p.flows;
            let at = |v: &[f64]| v.get(t).copied().unwrap_or(0.0) * dt / 1000.0;
            series[0].1[m] += at(&p.load.load_kw);
            series[1].1[m] += at(&f.pv_kw) + at(&f.wind_kw);
            series[2].1[m] += at(&f.grid_import_kw);
            series[3].1[m] += at(&f.grid_export_kw);
            series[4].1[m] += at(&f.p2p_import_kw);
        }
    }
    let months: Vec<String> = svg::MONTHS.iter().map(|m| (*m).to_owned()).collect();
    svg::bar_chart(
        "Community monthly energy balance (MWh)",
        "MWh",
        &months,
        &series,
        960.0,
        280.0,
    )
}

/// Daily load against daily generation, and the battery's state of charge.
fn generation_charts(h: &mut String, p: &scg_sim::ProsumerResult, result: &SimResult) {
    let per_day = result.grid.steps_per_day();
    let dt = result.grid.step_hours();
    let daily = |v: &[f64]| -> Vec<f64> {
        v.chunks(per_day)
            .map(|c| c.iter().sum::<f64>() * dt)
            .collect()
    };
    let f = &p.flows;
    if f.pv_kw.iter().chain(&f.wind_kw).any(|v| *v > 0.0) {
        let generation: Vec<f64> = f.pv_kw.iter().zip(&f.wind_kw).map(|(a, b)| a + b).collect();
        h.push_str(&svg::line_chart(
            &format!("{}: daily energy, load vs own generation (kWh/day)", p.name),
            "kWh/day",
            &[
                ("load", &daily(&p.load.load_kw)),
                ("PV + wind", &daily(&generation)),
            ],
            &svg::month_ticks(1.0),
            960.0,
            220.0,
        ));
    }
    if !f.battery_soc_pct.is_empty() {
        let hourly = hourly_means(&f.battery_soc_pct, result.grid.steps_per_hour());
        h.push_str(&svg::line_chart(
            &format!("{}: battery state of charge (%)", p.name),
            "%",
            &[("state of charge", &hourly)],
            &svg::month_ticks(24.0),
            960.0,
            200.0,
        ));
    }
}

/// EV load by hour of day and state of charge at departure against what was wanted.
fn ev_charts(h: &mut String, p: &scg_sim::ProsumerResult, result: &SimResult) {
    let ev = &p.ev;
    if ev.demand_series.is_empty() {
        return;
    }
    let per_hour = result.grid.steps_per_hour();
    let days = result.grid.days() as f64;
    let mut by_hour = vec![0.0; 24];
    let mut v2g_by_hour = vec![0.0; 24];
    for (t, (d, v)) in ev.demand_series.iter().zip(&ev.v2g_kw).enumerate() {
        let hour = (t / per_hour) % 24;
        by_hour[hour] += d / per_hour as f64 / days;
        v2g_by_hour[hour] += v / per_hour as f64 / days;
    }
    let hours: Vec<String> = (0..24).map(|x| x.to_string()).collect();
    let _ = write!(
        h,
        "<p>EVs: {:.1} MWh charged (incl. swap station), {:.1} MWh given back by V2G, peak {:.1} kW, {} departures, battery wear {:.0} EUR.</p>",
        p.energy.ev_kwh / 1000.0,
        p.energy.v2g_kwh / 1000.0,
        ev.demand_series.iter().copied().fold(0.0, f64::max),
        ev.departures.len(),
        ev.degradation_cost_eur
    );
    h.push_str(&svg::bar_chart(
        &format!("{}: average EV power by hour of day (kW)", p.name),
        "kW",
        &hours,
        &[("charging", by_hour), ("V2G", v2g_by_hour)],
        960.0,
        220.0,
    ));
    let points: Vec<(f64, f64)> = ev
        .departures
        .iter()
        .map(|d| (d.wanted_soc, d.soc))
        .collect();
    h.push_str(&svg::scatter_unit(
        &format!("{}: state of charge at departure vs wanted", p.name),
        "wanted state of charge",
        "state of charge at departure",
        &points,
        360.0,
    ));
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
