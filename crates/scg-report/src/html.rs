//! `report.html`: one self-contained page (inline SVG and CSS, no scripts, no network) that
//! shows the community at a glance — headline indicators, energy balance, a dispatch week,
//! renewable output, duration curves, the market, the CER, costs and bills, batteries — then
//! each prosumer: metrics, heat map, the year's load, HOMER's seasonal and daily profiles,
//! generation, state of charge and EVs.
//!
//! Layout rules: every chart is a [`crate::svg`] figure (title as a caption, data attributes for
//! the tests); every table sits in a `.scroll` box so a 420 px screen scrolls it sideways
//! instead of cutting it. This module never computes a domain quantity the simulation has: it
//! arranges, sums over time and sorts what the result holds.

use crate::ReportError;
use crate::city::Layout;
use crate::costs::Costs;
use crate::indicators::{self_consumption, self_sufficiency};
use crate::summary::{LedgerInfo, Summary};
use crate::svg::{self, Axes, Opts, WIDTH, escape};
use scg_model::Scenario;
use scg_sim::SimResult;
use scg_sim::engine::Economics;
use scg_sim::members::Flow;
use scg_sim::metrics::LoadReport;
use scg_sim::year::{EnergySums, FlowSeries};
use std::fmt::Write as _;

const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:sans-serif;margin:0 auto;padding:12px 16px;max-width:1240px;color:#222;line-height:1.4}\
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-top:12px}h3{font-size:16px}\
.scroll{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}\
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#f3f3f3}\
td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:12px}\
.warn{background:#fff4e5;border-left:4px solid #f0a030;padding:6px 10px}\
nav{display:flex;flex-wrap:wrap;gap:4px 12px}\
figure.chart{margin:12px 0}figcaption{font-weight:bold;font-size:14px;margin-bottom:2px}\
figure.chart svg{display:block;width:100%;height:auto}\
.legend{font-size:12px;display:flex;flex-wrap:wrap;gap:2px 12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}\
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:0 16px}\
@media (max-width:600px){body{padding:8px}h1{font-size:18px}td,th{padding:2px 5px;font-size:12px}.grid2{display:block}}";

/// Render the report page with one section per member ([`Layout::Wide`]).
pub fn render(
    result: &SimResult,
    summary: &Summary,
    scenario: &Scenario,
    extra_html: &str,
) -> Result<String, ReportError> {
    render_layout(result, summary, scenario, extra_html, Layout::Wide)
}

/// Render the report page. [`Layout::City`] replaces the per-member rows, charts and sections
/// with the distributions across members ([`crate::members`]).
pub fn render_layout(
    result: &SimResult,
    summary: &Summary,
    scenario: &Scenario,
    extra_html: &str,
    layout: Layout,
) -> Result<String, ReportError> {
    let page = render_page(result, summary, scenario, extra_html, layout)?;
    Ok(page.finish(summary.ledger.as_ref()))
}

/// The report page cut where the ledger's paragraph goes, so that all the rest renders while
/// the year is still being settled; [`Page::finish`] puts the paragraph in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Up to the community's market section.
    head: String,
    /// From the community's monthly loads to the end of the page.
    tail: String,
}

impl Page {
    /// The whole page, with the ledger's paragraph if there is a ledger.
    pub fn finish(self, ledger: Option<&LedgerInfo>) -> String {
        let mut h = self.head;
        if let Some(l) = ledger {
            ledger_paragraph(&mut h, l);
        }
        h.push_str(&self.tail);
        h
    }
}

/// [`render_layout`] but for the ledger's paragraph: `summary.ledger` is not read.
pub fn render_page(
    result: &SimResult,
    summary: &Summary,
    scenario: &Scenario,
    extra_html: &str,
    layout: Layout,
) -> Result<Page, ReportError> {
    let city = layout == Layout::City;
    let mut h = String::with_capacity(1 << 16);
    let sc = &summary.scenario;
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>scg report: {name}</title><style>{STYLE}</style></head><body>\
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
    if !extra_html.is_empty() {
        h.push_str("<a href=\"#sizing\">sizing</a>");
    }
    h.push_str("<a href=\"#community\">community</a><a href=\"#costs\">costs</a>");
    if city {
        h.push_str("<a href=\"#members\">members</a>");
    } else {
        for p in &result.prosumers {
            let _ = write!(h, "<a href=\"#{id}\">{id}</a>", id = escape(&p.id));
        }
    }
    h.push_str("</nav>");
    h.push_str(extra_html);

    community_head(&mut h, result, city)?;
    let head = h;
    let mut h = String::with_capacity(1 << 20);
    community_tail(&mut h, result, city)?;
    let costs = crate::costs::costs(result, scenario);
    costs_section(&mut h, result, costs.as_ref(), city);
    if city {
        crate::members::members_section(&mut h, result);
    } else {
        battery_table(&mut h, result, scenario);
    }
    for p in result.prosumers.iter().filter(|_| !city) {
        let _ = write!(
            h,
            "<h2 id=\"{}\">{} <small>({})</small></h2>",
            escape(&p.id),
            escape(&p.name),
            escape(&p.id)
        );
        metrics_table(&mut h, &[(p.name.as_str(), &p.load_report)]);
        energy_table(&mut h, &[(p.name.as_str(), &p.energy, &p.economics, false)]);
        load_charts(&mut h, &p.name, &p.load.load_kw, &p.load_report, result)?;
        generation_charts(&mut h, p, result)?;
        ev_charts(&mut h, p, result);
        home_chart(&mut h, p);
    }
    h.push_str("<p class=\"note\">Statistics as HOMER reports them: load factor = average ÷ peak; crest factor = peak ÷ RMS; the baseline is the unperturbed, unscaled load. Renewable fraction = 1 − grid purchases ÷ (load served + grid sales) (HOMER). Self-consumption = 1 − (grid export + P2P export + excess) ÷ own PV and wind; self-sufficiency = 1 − (grid + P2P imports) ÷ demand (for the community P2P is internal). Timestamps are local standard time.</p></body></html>\n");
    Ok(Page { head, tail: h })
}

/// "hourly" at 60-minute steps, "hourly means of 15-min steps" otherwise.
fn hourly_phrase(result: &SimResult) -> String {
    match result.grid.step_minutes() {
        60 => "hourly".to_owned(),
        m => format!("hourly means of {m}-min steps"),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |x| format!("{:.1} %", x * 100.0))
}

/// The community section up to its market part (the ledger's paragraph follows it).
fn community_head(h: &mut String, result: &SimResult, city: bool) -> Result<(), ReportError> {
    h.push_str("<h2 id=\"community\">Community</h2>");
    headline_table(h, result);
    // A city's members are in the members section's distributions, not one row each.
    let members = if city { &[][..] } else { &result.prosumers[..] };
    let mut rows: Vec<(&str, &LoadReport)> = members
        .iter()
        .map(|p| (p.name.as_str(), &p.load_report))
        .collect();
    rows.push(("Community", &result.community.load_report));
    metrics_table(h, &rows);
    let mut energy_rows: Vec<(&str, &EnergySums, &Economics, bool)> = members
        .iter()
        .map(|p| (p.name.as_str(), &p.energy, &p.economics, false))
        .collect();
    energy_rows.push((
        "Community",
        &result.community.energy,
        &result.community.economics,
        true,
    ));
    energy_table(h, &energy_rows);
    h.push_str(&monthly_balance_chart(result));
    h.push_str(&dispatch_week_chart(result));
    renewable_output_charts(h, result)?;
    h.push_str(&duration_curves(result));
    cer_section(h, result);
    if let Some(m) = &result.community.market {
        market_section(h, result, m, city);
    }
    Ok(())
}

fn ledger_paragraph(h: &mut String, l: &LedgerInfo) {
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

/// The community section after the ledger's paragraph: monthly loads and the load's charts.
fn community_tail(h: &mut String, result: &SimResult, city: bool) -> Result<(), ReportError> {
    if !city {
        monthly_load_by_prosumer(h, result);
    }
    load_charts(
        h,
        "Community",
        &result.community.load_kw,
        &result.community.load_report,
        result,
    )
}

/// Monthly average load of each prosumer: small multiples, each on its own scale, so the
/// small members are not squashed against zero by the large ones.
fn monthly_load_by_prosumer(h: &mut String, result: &SimResult) {
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
    let panels: Vec<(&str, &[f64])> = result
        .prosumers
        .iter()
        .zip(&monthly)
        .map(|(p, m)| (p.id.as_str(), m.as_slice()))
        .collect();
    let ticks: Vec<_> = [0usize, 3, 6, 9]
        .iter()
        .map(|m| (*m as f64 + 0.5, svg::MONTHS[*m].to_string()))
        .collect();
    h.push_str(&svg::small_multiples(
        &Axes {
            title: "Monthly average load by prosumer (each on its own scale)",
            x_label: "",
            x_unit: "month",
            y_label: "average load",
            y_unit: "kW",
        },
        &svg::SmallMultiples {
            panels: &panels,
            x_max: 12.0,
            x_ticks: &ticks,
            cols: 3,
            shared_y: false,
        },
        WIDTH,
    ));
}

/// The numbers people ask first, for the community.
fn headline_table(h: &mut String, result: &SimResult) {
    let c = &result.community;
    let e = &c.energy;
    let m = &c.economics;
    let _ = write!(
        h,
        "<div class=\"scroll\"><table><tr><th>demand MWh</th><th>PV MWh</th><th>wind MWh</th><th>grid import MWh</th><th>grid export MWh</th><th>P2P MWh</th><th>CER shared MWh</th><th>renewable fraction</th><th>self-consumption</th><th>self-sufficiency</th><th>NPC kEUR</th><th>COE EUR/kWh</th><th>CER EUR/yr</th></tr>\
<tr><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{:.0}</td></tr></table></div>",
        e.load_kwh / 1000.0,
        e.pv_kwh / 1000.0,
        e.wind_kwh / 1000.0,
        e.grid_import_kwh / 1000.0,
        e.grid_export_kwh / 1000.0,
        e.p2p_import_kwh / 1000.0,
        c.cer.shared_energy_kwh / 1000.0,
        pct(m.renewable_fraction),
        pct(self_consumption(e, true)),
        pct(self_sufficiency(e, true)),
        m.npc_eur / 1000.0,
        m.coe_eur_per_kwh
            .map_or("–".to_owned(), |x| format!("{x:.3}")),
        m.cer_incentive_eur,
    );
}

/// CER: shared energy by hour of day and by month.
fn cer_section(h: &mut String, result: &SimResult) {
    let cer = &result.community.cer;
    let _ = write!(
        h,
        "<h3>Renewable energy community (CER)</h3><p>{:.1} MWh shared in the year, incentive {:.0} EUR + ARERA valorisation {:.0} EUR. The main grid was at peak in {} of {} steps.</p>",
        cer.shared_energy_kwh / 1000.0,
        cer.incentive_eur,
        cer.valorisation_eur,
        result.community.grid_at_peak_steps,
        result.grid.len()
    );
    if cer.hourly_shared_kwh.iter().all(|v| *v <= 0.0) {
        return;
    }
    let mut by_hour = vec![0.0; 24];
    for (i, v) in cer.hourly_shared_kwh.iter().enumerate() {
        by_hour[i % 24] += v / 1000.0;
    }
    let hours: Vec<String> = (0..24).map(|x| x.to_string()).collect();
    h.push_str(&svg::bar_chart(
        &Axes {
            title: "CER shared energy by hour of day (sum over the year)",
            x_label: "hour of day",
            x_unit: "h",
            y_label: "shared energy",
            y_unit: "MWh",
        },
        &hours,
        &[("shared", by_hour)],
        false,
        Opts::new(WIDTH, 230.0),
    ));
}

/// The community market: clearing price and volume by hour of day, and who sold to whom.
fn market_section(
    h: &mut String,
    result: &SimResult,
    m: &scg_sim::market_stage::MarketYear,
    city: bool,
) {
    let _ = write!(
        h,
        "<h3>Community market</h3><p>{} P2P trades, {:.1} MWh at an average {:.1} EUR/MWh; grid fees {:.0} EUR.</p>",
        m.p2p_trades,
        m.p2p_volume_kwh / 1000.0,
        m.p2p_average_price_eur_per_mwh,
        m.grid_fees_eur
    );
    let hours: Vec<String> = (0..24).map(|x| x.to_string()).collect();
    h.push_str("<div class=\"grid2\">");
    h.push_str(&svg::bar_chart(
        &Axes {
            title: "P2P volume by hour of day (sum over the year)",
            x_label: "hour of day",
            x_unit: "h",
            y_label: "volume",
            y_unit: "kWh",
        },
        &hours,
        &[("volume", m.volume_by_hour_kwh.clone())],
        false,
        Opts::new(WIDTH * 0.75, 230.0),
    ));
    // An hour of the day that never traded has no clearing price: a gap, not 0 EUR/MWh.
    let price: Vec<f64> = m
        .price_by_hour_eur_per_mwh
        .iter()
        .zip(&m.volume_by_hour_kwh)
        .map(|(p, v)| if *v > 0.0 { *p } else { f64::NAN })
        .collect();
    let ticks: Vec<_> = (0..24)
        .step_by(3)
        .map(|x| (x as f64, x.to_string()))
        .collect();
    h.push_str(&svg::line_chart(
        &Axes {
            title: "Mean clearing price by hour of day (gaps: no trades)",
            x_label: "hour of day",
            x_unit: "h",
            y_label: "price",
            y_unit: "EUR/MWh",
        },
        &[("price", &price)],
        &ticks,
        Opts::new(WIDTH * 0.75, 230.0),
    ));
    h.push_str("</div>");
    // The seller-by-buyer matrix is for small communities (and kept only for them,
    // `MarketYear::sold_kwh`); a city gets its largest pairs.
    if city || m.sold_kwh.is_empty() {
        top_pairs(h, result, m);
        return;
    }
    h.push_str("<div class=\"scroll\"><table><tr><th>seller \\ buyer (MWh/yr)</th>");
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
    h.push_str("</table></div>");
}

/// Members listed in a city's table of the largest seller-to-buyer volumes.
const TOP_PAIRS: usize = 20;

/// A city's replacement for the seller × buyer matrix (a million cells at 1,000 members): the
/// [`TOP_PAIRS`] largest yearly volumes from one member to another (ties in member order).
fn top_pairs(h: &mut String, result: &SimResult, m: &scg_sim::market_stage::MarketYear) {
    // Largest volume first, ties in member order: a total order (each pair is listed once),
    // so the kept top is the head of the whole list sorted, without sorting a city's
    // millions of pairs.
    type Pair = (usize, usize, f64);
    let rank = |a: &Pair, b: &Pair| b.2.total_cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1)));
    let mut top: Vec<Pair> = Vec::with_capacity(TOP_PAIRS + 1);
    let mut traded = 0usize;
    for p in m.pairs.iter().filter(|p| p.energy_kwh > 0.0) {
        traded += 1;
        let pair = (p.seller, p.buyer, p.energy_kwh);
        if top.len() == TOP_PAIRS && top.last().is_some_and(|last| rank(&pair, last).is_ge()) {
            continue;
        }
        let at = top.partition_point(|x| rank(x, &pair).is_lt());
        top.insert(at, pair);
        top.truncate(TOP_PAIRS);
    }
    let _ = write!(
        h,
        "<h3>Largest P2P volumes between two members (top {TOP_PAIRS} of {traded} pairs that traded)</h3><div class=\"scroll\"><table><tr><th>seller</th><th>buyer</th><th>MWh/yr</th></tr>",
    );
    let id = |i: usize| result.prosumers.get(i).map_or("?", |p| p.id.as_str());
    for (s, b, v) in &top {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td></tr>",
            escape(id(*s)),
            escape(id(*b)),
            v / 1000.0
        );
    }
    h.push_str("</table></div>");
}

fn energy_table(h: &mut String, rows: &[(&str, &EnergySums, &Economics, bool)]) {
    h.push_str("<div class=\"scroll\"><table><tr><th></th><th>PV MWh</th><th>wind MWh</th><th>grid in MWh</th><th>grid out MWh</th><th>P2P in MWh</th><th>P2P out MWh</th><th>battery out MWh</th><th>unmet MWh</th><th>renewable fraction</th><th>self-consumption</th><th>self-sufficiency</th><th>NPC kEUR</th><th>COE EUR/kWh</th><th>CER EUR/yr</th></tr>");
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |x| format!("{x:.digits$}"));
    for (name, e, m, community) in rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{:.0}</td></tr>",
            escape(name),
            e.pv_kwh / 1000.0,
            e.wind_kwh / 1000.0,
            e.grid_import_kwh / 1000.0,
            e.grid_export_kwh / 1000.0,
            e.p2p_import_kwh / 1000.0,
            e.p2p_export_kwh / 1000.0,
            e.battery_out_kwh / 1000.0,
            e.unmet_kwh / 1000.0,
            pct(m.renewable_fraction),
            pct(self_consumption(e, *community)),
            pct(self_sufficiency(e, *community)),
            m.npc_eur / 1000.0,
            opt(m.coe_eur_per_kwh, 3),
            m.cer_incentive_eur,
        );
    }
    h.push_str("</table></div>");
}

/// A flow summed over the community, step by step (kept by the run, so that a city that
/// streamed its members' series has it too).
fn community_series(result: &SimResult, flow: Flow) -> Vec<f64> {
    result.community.flows_kw[flow as usize].clone()
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
    let sums = &result.community.flows_kw;
    let at = |f: Flow, t: usize| sums[f as usize].get(t).copied().unwrap_or(0.0) * dt / 1000.0;
    for t in 0..grid.len() {
        let m = usize::from(grid.month_of_step(t)) - 1;
        series[0].1[m] += at(Flow::Load, t);
        series[1].1[m] += at(Flow::Pv, t) + at(Flow::Wind, t);
        series[2].1[m] += at(Flow::GridImport, t);
        series[3].1[m] += at(Flow::GridExport, t);
        series[4].1[m] += at(Flow::P2pImport, t);
    }
    let months: Vec<String> = svg::MONTHS.iter().map(|m| (*m).to_owned()).collect();
    svg::bar_chart(
        &Axes {
            title: "Community monthly energy balance",
            x_label: "",
            x_unit: "month",
            y_label: "energy",
            y_unit: "MWh",
        },
        &months,
        &series,
        false,
        Opts::new(WIDTH, 280.0),
    )
}

/// The week shown in the dispatch plot: the 7 days (from a day index multiple of 7) with the
/// most PV and wind output, where dispatch has the most to show.
fn dispatch_week(result: &SimResult, generation: &[f64]) -> usize {
    let per_week = result.grid.steps_per_day() * 7;
    let weeks = result.grid.len() / per_week.max(1);
    (0..weeks)
        .map(|w| {
            let s: f64 = generation[w * per_week..(w + 1) * per_week].iter().sum();
            (w, s)
        })
        .fold((0, f64::MIN), |best, x| if x.1 > best.1 { x } else { best })
        .0
}

/// Stacked dispatch plot of the community for one week: sources above zero, where surplus
/// went below zero, the demand as a line.
fn dispatch_week_chart(result: &SimResult) -> String {
    let pv = community_series(result, Flow::Pv);
    let wind = community_series(result, Flow::Wind);
    let generation: Vec<f64> = pv.iter().zip(&wind).map(|(a, b)| a + b).collect();
    let week = dispatch_week(result, &generation);
    let per_day = result.grid.steps_per_day();
    let range = week * 7 * per_day..(week * 7 + 7) * per_day;
    let slice = |v: &[f64]| v.get(range.clone()).unwrap_or(&[]).to_vec();
    let s = |f: Flow| slice(&community_series(result, f));
    let (pv, wind) = (slice(&pv), slice(&wind));
    let batt_out = s(Flow::BatteryDischarge);
    let grid_in = s(Flow::GridImport);
    let v2g = s(Flow::V2g);
    let unmet = s(Flow::Unmet);
    let batt_in = s(Flow::BatteryCharge);
    let grid_out = s(Flow::GridExport);
    let excess = s(Flow::Excess);
    let load = s(Flow::Load);
    let (charge, swap) = (s(Flow::EvCharge), s(Flow::Swap));
    let demand: Vec<f64> = load
        .iter()
        .zip(charge.iter().zip(&swap))
        .map(|(l, (c, w))| l + (c + w))
        .collect();
    let mut up: Vec<(&str, &[f64])> = vec![
        ("PV", &pv),
        ("wind", &wind),
        ("battery out", &batt_out),
        ("grid import", &grid_in),
    ];
    if v2g.iter().any(|v| *v > 0.0) {
        up.push(("V2G", &v2g));
    }
    if unmet.iter().any(|v| *v > 0.0) {
        up.push(("unmet", &unmet));
    }
    let down: Vec<(&str, &[f64])> = vec![
        ("battery in", &batt_in),
        ("grid export", &grid_out),
        ("excess", &excess),
    ];
    let ticks: Vec<_> = (0..7)
        .map(|d| {
            let day = week * 7 + d;
            let m = result.grid.month_of_day(day);
            (
                (d * per_day) as f64,
                format!(
                    "day {} ({})",
                    day + 1,
                    svg::MONTHS[usize::from(m.clamp(1, 12)) - 1]
                ),
            )
        })
        .collect();
    let title = format!(
        "Community dispatch, days {}–{} (the week with the most PV and wind): sources above 0, battery charging, export and excess below, demand as a line",
        week * 7 + 1,
        week * 7 + 7
    );
    svg::area_chart(
        &Axes {
            title: &title,
            x_label: "time",
            x_unit: "day",
            y_label: "power",
            y_unit: "kW",
        },
        &up,
        &down,
        Some(("demand", &demand)),
        &ticks,
        Opts::new(WIDTH, 320.0),
    )
}

/// Heat map of the community's PV and wind output and the monthly yield of each.
fn renewable_output_charts(h: &mut String, result: &SimResult) -> Result<(), ReportError> {
    let pv = community_series(result, Flow::Pv);
    let wind = community_series(result, Flow::Wind);
    if pv.iter().chain(&wind).all(|v| *v <= 0.0) {
        return Ok(());
    }
    h.push_str("<h3>Renewable output</h3>");
    let generation: Vec<f64> = pv.iter().zip(&wind).map(|(a, b)| a + b).collect();
    let hourly = hourly_means(&generation, result.grid.steps_per_hour());
    h.push_str(&svg::heat_map(
        "Community PV and wind output by day and hour",
        "kW",
        &hourly,
        WIDTH,
    )?);
    let dt = result.grid.step_hours();
    let mut monthly = [vec![0.0; 12], vec![0.0; 12]];
    for t in 0..result.grid.len() {
        let m = usize::from(result.grid.month_of_step(t)) - 1;
        monthly[0][m] += pv[t] * dt / 1000.0;
        monthly[1][m] += wind[t] * dt / 1000.0;
    }
    let months: Vec<String> = svg::MONTHS.iter().map(|m| (*m).to_owned()).collect();
    let [pv_m, wind_m] = monthly;
    h.push_str(&svg::bar_chart(
        &Axes {
            title: "Monthly yield of PV and wind (community)",
            x_label: "",
            x_unit: "month",
            y_label: "energy",
            y_unit: "MWh",
        },
        &months,
        &[("PV", pv_m), ("wind", wind_m)],
        true,
        Opts::new(WIDTH, 240.0),
    ));
    Ok(())
}

/// Load and net grid duration curves: each series sorted from highest to lowest over the
/// hours of the year.
fn duration_curves(result: &SimResult) -> String {
    let load = community_series(result, Flow::Load);
    let imp = community_series(result, Flow::GridImport);
    let exp = community_series(result, Flow::GridExport);
    let mut net: Vec<f64> = imp.iter().zip(&exp).map(|(i, e)| i - e).collect();
    let mut load = load;
    let desc = |a: &f64, b: &f64| b.total_cmp(a);
    load.sort_by(desc);
    net.sort_by(desc);
    let dt = result.grid.step_hours();
    let hours = result.grid.len() as f64 * dt;
    let ticks: Vec<_> = (0..=8)
        .map(|k| {
            let hrs = f64::from(k) * 1000.0;
            (hrs / dt, format!("{hrs:.0}"))
        })
        .filter(|(x, _)| *x <= hours / dt)
        .collect();
    svg::line_chart(
        &Axes {
            title: "Duration curves: community load and net grid exchange (import − export), sorted",
            x_label: "hours of the year at or above",
            x_unit: "h",
            y_label: "power",
            y_unit: "kW",
        },
        &[("load", &load), ("net grid", &net)],
        &ticks,
        Opts::new(WIDTH, 260.0),
    )
}

/// Cost breakdown by member, the community's cash flows, and each member's yearly bill.
fn costs_section(h: &mut String, result: &SimResult, costs: Option<&Costs>, city: bool) {
    h.push_str("<h2 id=\"costs\">Costs</h2>");
    if let Some(c) = costs {
        let ids: Vec<String> = c.members.iter().map(|m| m.id.clone()).collect();
        let col = |f: fn(&crate::costs::NpcBreakdown) -> f64| -> Vec<f64> {
            c.members.iter().map(|m| f(m) / 1000.0).collect()
        };
        // One bar per member: unreadable for a city (its members section ranks the bills).
        h.push_str(&if city { String::new() } else { svg::bar_chart(
            &Axes {
                title: "Net present cost by member and kind (present values; salvage and net income below 0)",
                x_label: "member",
                x_unit: "id",
                y_label: "NPC",
                y_unit: "kEUR",
            },
            &ids,
            &[
                ("capital", col(|m| m.capital_eur)),
                ("replacement", col(|m| m.replacement_eur)),
                ("O&M", col(|m| m.om_eur)),
                ("grid", col(|m| m.grid_eur)),
                ("P2P − CER", col(|m| m.other_eur)),
                ("salvage", col(|m| m.salvage_eur)),
            ],
            true,
            Opts::new(WIDTH, 300.0),
        ) });
        let years: Vec<String> = c.cash_flows.iter().map(|f| f.year.to_string()).collect();
        let flow = |f: fn(&scg_sim::economics::YearCashFlow) -> f64| -> Vec<f64> {
            c.cash_flows.iter().map(|y| f(y) / 1000.0).collect()
        };
        h.push_str(&svg::bar_chart(
            &Axes {
                title: "Community cash flows by project year (real EUR, undiscounted; costs above 0)",
                x_label: "project year",
                x_unit: "year",
                y_label: "cash flow",
                y_unit: "kEUR",
            },
            &years,
            &[
                ("capital", flow(|f| f.capital_eur)),
                ("replacement", flow(|f| f.replacement_eur)),
                ("O&M", flow(|f| f.om_eur)),
                ("grid", flow(|f| f.grid_eur)),
                ("P2P − CER", flow(|f| f.other_eur)),
                ("salvage", flow(|f| f.salvage_eur)),
            ],
            true,
            Opts::new(WIDTH, 280.0),
        ));
    }
    if city {
        return;
    }
    h.push_str("<h3>Yearly bills</h3><div class=\"scroll\"><table><tr><th>member</th><th>grid energy EUR</th><th>demand charges EUR</th><th>grid sales EUR</th><th>P2P paid EUR</th><th>P2P received EUR</th><th>CER EUR</th><th>net EUR/yr</th></tr>");
    for p in &result.prosumers {
        let e = &p.economics;
        let b = &e.grid_bill;
        let net = crate::members::net_bill_eur(e);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td></tr>",
            escape(&p.id),
            b.energy_cost_eur,
            b.demand_charge_eur,
            b.sale_revenue_eur,
            e.p2p_cost_eur_per_year,
            e.p2p_revenue_eur_per_year,
            e.cer_incentive_eur,
            net,
        );
    }
    h.push_str("</table></div><p class=\"note\">Net = grid energy + demand charges − sales + P2P paid − P2P received − CER; positive is a cost.</p>");
}

/// Battery throughput, equivalent full cycles and time at the minimum state of charge.
fn battery_table(h: &mut String, result: &SimResult, scenario: &Scenario) {
    let Ok(assets) = scg_sim::Assets::from_scenario(scenario) else {
        return;
    };
    let rows: Vec<_> = result
        .prosumers
        .iter()
        .zip(&assets.prosumers)
        .filter_map(|(p, a)| a.battery.as_ref().map(|b| (p, b)))
        .collect();
    if rows.is_empty() {
        return;
    }
    h.push_str("<h3>Batteries</h3><div class=\"scroll\"><table><tr><th>member</th><th>capacity kWh</th><th>charged MWh</th><th>discharged MWh</th><th>throughput MWh</th><th>equivalent full cycles</th><th>time at minimum SoC</th></tr>");
    for (p, b) in rows {
        let soc = &p.flows.battery_soc_pct;
        let at_min = soc.iter().filter(|s| **s <= b.min_soc_pct + 0.01).count();
        let share = if soc.is_empty() {
            "–".to_owned()
        } else {
            format!("{:.1} %", 100.0 * at_min as f64 / soc.len() as f64)
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}</td><td>{}</td></tr>",
            escape(&p.id),
            b.capacity_kwh,
            p.energy.battery_in_kwh / 1000.0,
            p.energy.battery_out_kwh / 1000.0,
            p.battery_throughput_kwh / 1000.0,
            if b.capacity_kwh > 0.0 {
                p.battery_throughput_kwh / b.capacity_kwh
            } else {
                0.0
            },
            share,
        );
    }
    h.push_str("</table></div><p class=\"note\">Throughput is the energy discharged over the year (what wears the battery, HOMER); equivalent full cycles = throughput ÷ nominal capacity.</p>");
}

/// Daily load against daily generation, own generation as a heat map, and the battery's state
/// of charge.
fn generation_charts(
    h: &mut String,
    p: &scg_sim::ProsumerResult,
    result: &SimResult,
) -> Result<(), ReportError> {
    let per_day = result.grid.steps_per_day();
    let dt = result.grid.step_hours();
    let daily = |v: &[f64]| -> Vec<f64> {
        v.chunks(per_day)
            .map(|c| c.iter().sum::<f64>() * dt)
            .collect()
    };
    let f = &p.flows;
    if f.pv_kw.iter().chain(&f.wind_kw).any(|v| *v > 0.0) {
        // Either series may be empty (all zeros: scg_sim::year::FlowSeries).
        let generation: Vec<f64> = (0..result.grid.len())
            .map(|t| FlowSeries::at(&f.pv_kw, t) + FlowSeries::at(&f.wind_kw, t))
            .collect();
        h.push_str(&svg::line_chart(
            &Axes {
                title: &format!("{}: daily energy, load vs own generation", p.name),
                x_label: "day of year",
                x_unit: "month",
                y_label: "energy",
                y_unit: "kWh/day",
            },
            &[
                ("load", &daily(&p.load.load_kw)),
                ("PV + wind", &daily(&generation)),
            ],
            &svg::month_ticks(1.0),
            Opts::new(WIDTH, 240.0),
        ));
        h.push_str(&svg::heat_map(
            &format!("{}: PV and wind output by day and hour", p.name),
            "kW",
            &hourly_means(&generation, result.grid.steps_per_hour()),
            WIDTH,
        )?);
    }
    if !f.battery_soc_pct.is_empty() {
        let hourly = hourly_means(&f.battery_soc_pct, result.grid.steps_per_hour());
        h.push_str(&svg::line_chart(
            &Axes {
                title: &format!(
                    "{}: battery state of charge ({})",
                    p.name,
                    hourly_phrase(result)
                ),
                x_label: "day of year",
                x_unit: "month",
                y_label: "state of charge",
                y_unit: "%",
            },
            &[("state of charge", &hourly)],
            &svg::month_ticks(24.0),
            Opts::new(WIDTH, 220.0).y_range(0.0, 100.0),
        ));
    }
    Ok(())
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
    for (t, d) in ev.demand_series.iter().enumerate() {
        // V2G is kept empty while all zero (`EvYear`).
        let v = scg_sim::year::FlowSeries::at(&ev.v2g_kw, t);
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
    h.push_str("<div class=\"grid2\">");
    h.push_str(&svg::bar_chart(
        &Axes {
            title: &format!("{}: average EV power by hour of day", p.name),
            x_label: "hour of day",
            x_unit: "h",
            y_label: "average power",
            y_unit: "kW",
        },
        &hours,
        &[("charging", by_hour), ("V2G", v2g_by_hour)],
        false,
        Opts::new(WIDTH * 0.75, 240.0),
    ));
    let points: Vec<(f64, f64)> = ev
        .departures
        .iter()
        .map(|d| (d.wanted_soc * 100.0, d.soc * 100.0))
        .collect();
    h.push_str(&svg::scatter(
        &Axes {
            title: &format!("{}: EV state of charge at departure vs wanted", p.name),
            x_label: "wanted",
            x_unit: "%",
            y_label: "at departure",
            y_unit: "%",
        },
        &svg::Scatter {
            points: &points,
            x_range: (0.0, 100.0),
            y_range: (0.0, 100.0),
            diagonal: true,
            highlight: None,
        },
        Opts::new(400.0, 380.0),
    ));
    h.push_str("</div>");
}

/// The home agent's peak (unmanaged vs managed) and what it saved.
fn home_chart(h: &mut String, p: &scg_sim::ProsumerResult) {
    let Some(home) = &p.home else {
        return;
    };
    let _ = write!(
        h,
        "<p>Home devices: peak {:.1} kW unmanaged, {:.1} kW managed; {:.0} kWh shifted; \
         savings {:.0} EUR/year (against the agent's prices).</p>",
        home.peak_unmanaged_kw,
        home.peak_managed_kw,
        home.shifted_energy_kwh,
        home.savings_eur_per_year
    );
    let labels = ["unmanaged".to_string(), "managed".to_string()];
    h.push_str(&svg::bar_chart(
        &Axes {
            title: &format!(
                "{}: peak load with home devices unmanaged vs managed",
                p.name
            ),
            x_label: "home devices",
            x_unit: "case",
            y_label: "peak load",
            y_unit: "kW",
        },
        &labels,
        &[(
            "peak load",
            vec![home.peak_unmanaged_kw, home.peak_managed_kw],
        )],
        false,
        Opts::new(WIDTH * 0.5, 220.0),
    ));
}

fn metrics_table(h: &mut String, rows: &[(&str, &LoadReport)]) {
    h.push_str("<div class=\"scroll\"><table><tr><th></th><th>kWh/day</th><th>avg kW</th><th>peak kW</th><th>min kW</th><th>load factor</th><th>crest factor</th><th>peak month</th><th>MWh/yr</th><th>baseline kWh/day</th><th>baseline peak kW</th><th>scale factor</th></tr>");
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
    h.push_str("</table></div>");
}

/// Heat map, the year's load, seasonal profile and daily profiles of one load.
fn load_charts(
    h: &mut String,
    name: &str,
    load_kw: &[f64],
    report: &LoadReport,
    result: &SimResult,
) -> Result<(), ReportError> {
    let hourly = hourly_means(load_kw, result.grid.steps_per_hour());
    h.push_str(&svg::heat_map(
        &format!("{name}: load by day and hour"),
        "kW",
        &hourly,
        WIDTH,
    )?);
    h.push_str(&svg::line_chart(
        &Axes {
            title: &format!("{name}: load over the year ({})", hourly_phrase(result)),
            x_label: "day of year",
            x_unit: "month",
            y_label: "load",
            y_unit: "kW",
        },
        &[(name, &hourly)],
        &svg::month_ticks(24.0),
        Opts::new(WIDTH, 220.0),
    ));
    h.push_str(&svg::seasonal_chart(
        &Axes {
            title: &format!("{name}: seasonal profile (min, daily low–high, mean, max)"),
            x_label: "",
            x_unit: "month",
            y_label: "load",
            y_unit: "kW",
        },
        &report.seasonal,
        Opts::new(WIDTH, 240.0),
    ));
    h.push_str(&svg::daily_profiles_chart(
        &Axes {
            title: &format!("{name}: average daily profile by month"),
            x_label: "hour of day",
            x_unit: "h",
            y_label: "load",
            y_unit: "kW",
        },
        &report.daily_profile_kw,
        WIDTH,
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
