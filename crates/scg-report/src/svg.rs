//! A small SVG chart kit for the report: axes with "nice" ticks, lines (with gaps), grouped and
//! stacked bars, stacked areas, scatters, seasonal boxes, small multiples and heat maps (a PNG
//! raster inside the SVG, so 8760 cells stay a few kilobytes).
//!
//! Every chart is one `<figure class="chart">`: the title is an HTML `<figcaption>` (it wraps on
//! a narrow screen instead of being cut), and the `<svg>` carries what it shows as data
//! attributes — `data-chart` (kind), `data-title`, `data-x-unit`, `data-y-unit` and
//! `data-points` (how many finite values are drawn) — which the report tests check. The SVG
//! scales with the page (`viewBox`, CSS width 100 %) down to a minimum width, below which its
//! wrapper scrolls sideways.
//!
//! Why not `plotters`: its text rendering pulls in system font libraries (fontconfig) that a
//! fresh machine lacks, its SVG output of a heat map is ~30 times larger than a PNG cell
//! raster, and it has no place for the data attributes above. Everything here is
//! deterministic text. This module never computes a domain quantity: it draws what it is given.

use crate::ReportError;
use base64::Engine as _;
use std::fmt::Write as _;

pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// The default width of a chart's drawing, in SVG units (CSS pixels at 100 %).
pub const WIDTH: f64 = 720.0;

/// What a chart shows: its title and the meaning and unit of each axis. Every field is
/// required: the report tests fail on an empty title or unit.
#[derive(Debug, Clone, Copy)]
pub struct Axes<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub x_unit: &'a str,
    pub y_label: &'a str,
    pub y_unit: &'a str,
}

/// Size and value ranges of a chart. `None` ranges are taken from the data (y from 0 unless
/// the data are negative).
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    pub width: f64,
    pub height: f64,
    pub y_min: Option<f64>,
    pub y_max: Option<f64>,
}

impl Opts {
    pub fn new(width: f64, height: f64) -> Self {
        Self {
            width,
            height,
            y_min: None,
            y_max: None,
        }
    }
    /// A fixed y range (e.g. 0–100 % for a state of charge).
    pub fn y_range(mut self, min: f64, max: f64) -> Self {
        self.y_min = Some(min);
        self.y_max = Some(max);
        self
    }
}

/// Ticks at 1, 2 or 5 × 10^k covering `[0, max]`.
pub fn nice_ticks(max: f64) -> Vec<f64> {
    nice_range(0.0, max)
}

/// Ticks at 1, 2 or 5 × 10^k covering `[min, max]` (min ≤ 0 ≤ max is not required).
pub fn nice_range(min: f64, max: f64) -> Vec<f64> {
    let (min, max) = if min.is_finite() && max.is_finite() && max > min {
        (min, max)
    } else if max.is_finite() && max > 0.0 {
        (0.0, max)
    } else {
        (0.0, 1.0)
    };
    let raw = (max - min) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (min / step).floor() as i64;
    let last = (max / step).ceil() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `label (unit)`.
fn axis_text(label: &str, unit: &str) -> String {
    if label.is_empty() {
        unit.to_owned()
    } else {
        format!("{label} ({unit})")
    }
}

/// Plot area inside an SVG of `width` × `height` with room for axes.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub y_min: f64,
    pub y_max: f64,
    pub x_min: f64,
    pub x_max: f64,
}

impl Frame {
    pub fn new(width: f64, height: f64, x_max: f64, y_max: f64) -> Self {
        Self {
            width,
            height,
            left: 60.0,
            right: 14.0,
            top: 12.0,
            bottom: 44.0,
            y_min: 0.0,
            y_max,
            x_min: 0.0,
            x_max,
        }
    }
    /// A frame whose y range is the nice range around `[lo, hi]` (or `opts`' fixed range).
    fn for_data(opts: &Opts, x_max: f64, lo: f64, hi: f64) -> Self {
        let ticks = nice_range(opts.y_min.unwrap_or(lo.min(0.0)), hi * 1.02);
        let mut f = Self::new(
            opts.width,
            opts.height,
            x_max,
            opts.y_max
                .unwrap_or_else(|| ticks.last().copied().unwrap_or(1.0)),
        );
        f.y_min = opts
            .y_min
            .unwrap_or_else(|| ticks.first().copied().unwrap_or(0.0));
        f
    }
    fn plot_w(&self) -> f64 {
        self.width - self.left - self.right
    }
    fn plot_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }
    pub fn x(&self, v: f64) -> f64 {
        self.left
            + (v - self.x_min) / (self.x_max - self.x_min).max(f64::MIN_POSITIVE) * self.plot_w()
    }
    pub fn y(&self, v: f64) -> f64 {
        let v = v.clamp(self.y_min, self.y_max);
        self.top
            + self.plot_h()
                * (1.0 - (v - self.y_min) / (self.y_max - self.y_min).max(f64::MIN_POSITIVE))
    }

    /// The opening of a chart: figure, caption, the `<svg>` with its data attributes, y grid
    /// with labels, axis titles with units, and x ticks at `x_ticks` (position, label).
    pub fn open(
        &self,
        kind: &str,
        axes: &Axes<'_>,
        points: usize,
        x_ticks: &[(f64, String)],
        legend: &[(&str, &str)],
    ) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<figure class="chart"><figcaption>{t}</figcaption>{legend}<div class="scroll"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" style="min-width:{minw}px;max-width:{maxw}px" font-family="sans-serif" font-size="12" data-chart="{kind}" data-title="{t}" data-x-unit="{xu}" data-y-unit="{yu}" data-points="{points}"><title>{t}</title>"#,
            w = self.width,
            h = self.height,
            minw = self.width.min(480.0),
            maxw = self.width * 1.25,
            t = escape(axes.title),
            xu = escape(axes.x_unit),
            yu = escape(axes.y_unit),
            legend = legend_html(legend),
        );
        s.push_str(&self.axes_body(
            axes.x_label,
            axes.x_unit,
            axes.y_label,
            axes.y_unit,
            x_ticks,
        ));
        s
    }

    /// Grid, tick labels and axis titles (shared by charts and small-multiple panels).
    fn axes_body(
        &self,
        x_label: &str,
        x_unit: &str,
        y_label: &str,
        y_unit: &str,
        x_ticks: &[(f64, String)],
    ) -> String {
        let mut s = String::new();
        let span = self.y_max - self.y_min;
        for tick in nice_range(self.y_min, self.y_max) {
            if tick > self.y_max + span * 1e-4 || tick < self.y_min - span * 1e-4 {
                continue;
            }
            let y = self.y(tick);
            let stroke = if tick == 0.0 { "#888" } else { "#ddd" };
            let _ = write!(
                s,
                r#"<line x1="{l}" x2="{r}" y1="{y:.1}" y2="{y:.1}" stroke="{stroke}"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{v}</text>"#,
                l = self.left,
                r = self.width - self.right,
                tx = self.left - 4.0,
                ty = y + 4.0,
                v = fmt_tick(tick),
            );
        }
        if !y_unit.is_empty() {
            let _ = write!(
                s,
                r#"<text transform="translate(13,{y}) rotate(-90)" text-anchor="middle">{label}</text>"#,
                y = self.top + self.plot_h() / 2.0,
                label = escape(&axis_text(y_label, y_unit)),
            );
        }
        let base = self.height - self.bottom;
        for (pos, label) in x_ticks {
            let x = self.x(*pos);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{base}" y2="{b2}" stroke="#666"/><text x="{x:.1}" y="{ty}" text-anchor="middle">{label}</text>"##,
                b2 = base + 4.0,
                ty = base + 16.0,
                label = escape(label),
            );
        }
        if !x_unit.is_empty() {
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{label}</text>"#,
                x = self.left + self.plot_w() / 2.0,
                y = base + 32.0,
                label = escape(&axis_text(x_label, x_unit)),
            );
        }
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{r}" y1="{base}" y2="{base}" stroke="#666"/>"##,
            l = self.left,
            r = self.width - self.right,
        );
        s
    }
}

/// An HTML legend (label, colour) above the drawing: it wraps on a narrow screen.
fn legend_html(items: &[(&str, &str)]) -> String {
    if items.len() < 2 {
        return String::new();
    }
    let mut s = String::from("<div class=\"legend\">");
    for (label, color) in items {
        let _ = write!(
            s,
            r#"<span><i style="background:{color}"></i>{}</span>"#,
            escape(label)
        );
    }
    s.push_str("</div>");
    s
}

/// Labels with the palette's colours, in order.
fn palette_legend<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<(&'a str, &'static str)> {
    labels
        .enumerate()
        .map(|(i, l)| (l, PALETTE[i % PALETTE.len()]))
        .collect()
}

/// The end of a chart opened by [`Frame::open`].
const CLOSE: &str = "</svg></div></figure>";

/// Escape text for SVG/HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Month boundaries as x ticks for a daily (365) x axis: label at mid-month.
pub fn month_ticks(per_day: f64) -> Vec<(f64, String)> {
    let days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut start = 0.0;
    let mut out = Vec::new();
    for (m, d) in days.iter().enumerate() {
        out.push((
            (start + f64::from(*d) / 2.0) * per_day,
            MONTHS[m].to_string(),
        ));
        start += f64::from(*d);
    }
    out
}

fn finite_extent<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64, usize) {
    values
        .filter(|v| v.is_finite())
        .fold((0.0, 0.0, 0), |(lo, hi, n), v| {
            (lo.min(*v), hi.max(*v), n + 1)
        })
}

/// A line chart of one or more series on the same x axis (index). Non-finite values are gaps
/// (e.g. an hour without trades has no price, not a price of 0).
pub fn line_chart(
    axes: &Axes<'_>,
    series: &[(&str, &[f64])],
    x_ticks: &[(f64, String)],
    opts: Opts,
) -> String {
    let n = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let (lo, hi, points) = finite_extent(series.iter().flat_map(|(_, v)| v.iter()));
    let frame = Frame::for_data(&opts, (n - 1) as f64, lo, hi);
    let legend = palette_legend(series.iter().map(|(l, _)| *l));
    let mut s = frame.open("line", axes, points, x_ticks, &legend);
    for (i, (_, values)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut open = false;
        for (x, v) in values.iter().enumerate() {
            if !v.is_finite() {
                if open {
                    s.push_str(r#""/>"#);
                    open = false;
                }
                continue;
            }
            if !open {
                let _ = write!(
                    s,
                    r#"<polyline fill="none" stroke-width="1.2" stroke="{color}" points=""#
                );
                open = true;
            }
            let _ = write!(s, "{:.1},{:.1} ", frame.x(x as f64), frame.y(*v));
        }
        if open {
            s.push_str(r#""/>"#);
        }
        // A lone point between gaps is invisible as a polyline: mark every finite point of a
        // short series.
        if values.len() <= 48 {
            for (x, v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"/>"#,
                    frame.x(x as f64),
                    frame.y(*v)
                );
            }
        }
    }
    s.push_str(CLOSE);
    s
}

/// Bars, one group per category (x), one bar per series: side by side, or stacked
/// (positive values upwards, negative downwards from 0).
pub fn bar_chart(
    axes: &Axes<'_>,
    categories: &[String],
    series: &[(&str, Vec<f64>)],
    stacked: bool,
    opts: Opts,
) -> String {
    let n = categories.len().max(1);
    let (mut lo, mut hi, points) = finite_extent(series.iter().flat_map(|(_, v)| v.iter()));
    if stacked {
        for i in 0..n {
            let col = series.iter().filter_map(|(_, v)| v.get(i)).copied();
            let pos: f64 = col.clone().filter(|v| *v > 0.0).sum();
            let neg: f64 = col.filter(|v| *v < 0.0).sum();
            hi = hi.max(pos);
            lo = lo.min(neg);
        }
    }
    let frame = Frame::for_data(&opts, n as f64, lo, hi);
    let ticks: Vec<_> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (i as f64 + 0.5, c.clone()))
        .collect();
    let kind = if stacked { "stacked-bar" } else { "bar" };
    let legend = palette_legend(series.iter().map(|(l, _)| *l));
    let mut s = frame.open(kind, axes, points, &ticks, &legend);
    let group_w = frame.x(1.0) - frame.x(0.0);
    let bar_w = if stacked {
        group_w * 0.7
    } else {
        group_w * 0.8 / series.len().max(1) as f64
    };
    let mut up = vec![0.0; n];
    let mut down = vec![0.0; n];
    for (k, (label, values)) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        for (i, v) in values.iter().enumerate().take(n) {
            if !v.is_finite() {
                continue;
            }
            let (x, from, to) = if stacked {
                let x = frame.x(i as f64) + group_w * 0.15;
                if *v >= 0.0 {
                    up[i] += v;
                    (x, up[i] - v, up[i])
                } else {
                    down[i] += v;
                    (x, down[i], down[i] - v)
                }
            } else {
                let x = frame.x(i as f64) + group_w * 0.1 + bar_w * k as f64;
                (x, v.min(0.0), v.max(0.0))
            };
            let (y0, y1) = (frame.y(to), frame.y(from));
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y0:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{color}"><title>{label} {cat}: {v:.1} {unit}</title></rect>"#,
                h = (y1 - y0).max(0.0),
                label = escape(label),
                cat = escape(categories.get(i).map_or("", String::as_str)),
                unit = escape(axes.y_unit),
            );
        }
    }
    s.push_str(CLOSE);
    s
}

/// A stacked area chart over a step axis: `up` series stacked above 0, `down` series
/// (given as positive values) stacked below 0, and an optional line on top (e.g. the load
/// the sources served).
pub fn area_chart(
    axes: &Axes<'_>,
    up: &[(&str, &[f64])],
    down: &[(&str, &[f64])],
    line: Option<(&str, &[f64])>,
    x_ticks: &[(f64, String)],
    opts: Opts,
) -> String {
    let n = up
        .iter()
        .chain(down)
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(0);
    let stack = |layers: &[(&str, &[f64])]| -> Vec<Vec<f64>> {
        let mut acc = vec![0.0; n];
        layers
            .iter()
            .map(|(_, v)| {
                for (a, x) in acc.iter_mut().zip(v.iter()) {
                    *a += x.max(0.0);
                }
                acc.clone()
            })
            .collect()
    };
    let ups = stack(up);
    let downs = stack(down);
    let hi = ups
        .last()
        .into_iter()
        .flatten()
        .chain(line.iter().flat_map(|(_, v)| v.iter()))
        .copied()
        .fold(0.0, f64::max);
    let lo = -downs
        .last()
        .into_iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max);
    let points = up.iter().chain(down).map(|(_, v)| v.len()).sum::<usize>()
        + line.map_or(0, |(_, v)| v.len());
    let frame = Frame::for_data(&opts, n.saturating_sub(1).max(1) as f64, lo, hi);
    let mut legend = palette_legend(up.iter().chain(down).map(|(l, _)| *l));
    if let Some((label, _)) = line {
        legend.push((label, "#000"));
    }
    let mut s = frame.open("stacked-area", axes, points, x_ticks, &legend);
    let draw = |s: &mut String, layers: &[Vec<f64>], sign: f64, color0: usize| {
        let zero = vec![0.0; n];
        for (k, top) in layers.iter().enumerate() {
            let bottom = if k == 0 { &zero } else { &layers[k - 1] };
            let color = PALETTE[(color0 + k) % PALETTE.len()];
            let _ = write!(s, r#"<polygon fill="{color}" fill-opacity="0.8" points=""#);
            for (x, v) in top.iter().enumerate() {
                let _ = write!(s, "{:.1},{:.1} ", frame.x(x as f64), frame.y(sign * v));
            }
            for (x, v) in bottom.iter().enumerate().rev() {
                let _ = write!(s, "{:.1},{:.1} ", frame.x(x as f64), frame.y(sign * v));
            }
            s.push_str(r#""/>"#);
        }
    };
    draw(&mut s, &ups, 1.0, 0);
    draw(&mut s, &downs, -1.0, up.len());
    if let Some((_, v)) = line {
        s.push_str(r##"<polyline fill="none" stroke="#000" stroke-width="1.5" points=""##);
        for (x, y) in v.iter().enumerate() {
            let _ = write!(s, "{:.1},{:.1} ", frame.x(x as f64), frame.y(*y));
        }
        s.push_str(r#""/>"#);
    }
    s.push_str(CLOSE);
    s
}

/// A scatter of `(x, y)` points over the given ranges, optionally with the diagonal y = x and
/// one highlighted point (e.g. the winner of a search) with its label.
pub struct Scatter<'a> {
    pub points: &'a [(f64, f64)],
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub diagonal: bool,
    pub highlight: Option<(f64, f64, &'a str)>,
}

pub fn scatter(axes: &Axes<'_>, sc: &Scatter<'_>, opts: Opts) -> String {
    let mut frame = Frame::new(opts.width, opts.height, sc.x_range.1, sc.y_range.1);
    frame.x_min = sc.x_range.0;
    frame.y_min = sc.y_range.0;
    let ticks: Vec<_> = nice_range(sc.x_range.0, sc.x_range.1)
        .into_iter()
        .filter(|v| *v >= sc.x_range.0 - 1e-9 && *v <= sc.x_range.1 + 1e-9)
        .map(|v| (v, fmt_tick(v)))
        .collect();
    let points = sc
        .points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .count();
    let mut s = frame.open("scatter", axes, points, &ticks, &[]);
    if sc.diagonal {
        let (a, b) = (
            sc.x_range.0.max(sc.y_range.0),
            sc.x_range.1.min(sc.y_range.1),
        );
        let _ = write!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
            frame.x(a),
            frame.y(a),
            frame.x(b),
            frame.y(b),
        );
    }
    let clamp_x = |x: f64| x.clamp(sc.x_range.0, sc.x_range.1);
    for (x, y) in sc
        .points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
    {
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#1f77b4" fill-opacity="0.4"/>"##,
            frame.x(clamp_x(*x)),
            frame.y(*y)
        );
    }
    if let Some((x, y, label)) = sc.highlight {
        let (cx, cy) = (frame.x(clamp_x(x)), frame.y(y));
        let _ = write!(
            s,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="6" fill="none" stroke="#d62728" stroke-width="2.5"/><text x="{tx:.1}" y="{ty:.1}" fill="#d62728" font-weight="bold">{label}</text>"##,
            tx = cx + 9.0,
            ty = cy - 8.0,
            label = escape(label),
        );
    }
    s.push_str(CLOSE);
    s
}

/// HOMER's seasonal profile: per month a whisker min–max, a box daily-low–daily-high and a
/// mean tick.
pub fn seasonal_chart(
    axes: &Axes<'_>,
    months: &[scg_sim::metrics::MonthStats],
    opts: Opts,
) -> String {
    let y_max = months.iter().map(|m| m.max_kw).fold(0.0, f64::max);
    let frame = Frame::for_data(&opts, 12.0, 0.0, y_max);
    let ticks: Vec<_> = (0..12)
        .map(|m| (m as f64 + 0.5, MONTHS[m].to_string()))
        .collect();
    let mut s = frame.open("seasonal", axes, months.len() * 5, &ticks, &[]);
    let bw = (frame.x(1.0) - frame.x(0.0)) * 0.5;
    for (i, m) in months.iter().enumerate() {
        let cx = frame.x(i as f64 + 0.5);
        let _ = write!(
            s,
            r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{y1:.1}" y2="{y2:.1}" stroke="#555"/><rect x="{x:.1}" y="{yb:.1}" width="{bw:.1}" height="{bh:.1}" fill="#9ecae1" stroke="#3182bd"><title>{mon}: min {min:.1}, daily low {lo:.1}, mean {avg:.1}, daily high {hi:.1}, max {max:.1} kW</title></rect><line x1="{x:.1}" x2="{x2:.1}" y1="{ym:.1}" y2="{ym:.1}" stroke="#08306b" stroke-width="2"/>"##,
            y1 = frame.y(m.min_kw),
            y2 = frame.y(m.max_kw),
            x = cx - bw / 2.0,
            x2 = cx + bw / 2.0,
            yb = frame.y(m.daily_high_average_kw),
            bh = (frame.y(m.daily_low_average_kw) - frame.y(m.daily_high_average_kw)).max(0.5),
            ym = frame.y(m.average_kw),
            mon = MONTHS[i],
            min = m.min_kw,
            lo = m.daily_low_average_kw,
            avg = m.average_kw,
            hi = m.daily_high_average_kw,
            max = m.max_kw,
        );
    }
    s.push_str(CLOSE);
    s
}

/// Small multiples: one small line plot per panel, `cols` to a row, each with its own y scale
/// (so a 3 kW member is as readable as a 300 kW one) or one shared scale.
pub struct SmallMultiples<'a> {
    pub panels: &'a [(&'a str, &'a [f64])],
    pub x_max: f64,
    pub x_ticks: &'a [(f64, String)],
    pub cols: usize,
    pub shared_y: bool,
}

pub fn small_multiples(axes: &Axes<'_>, sm: &SmallMultiples<'_>, width: f64) -> String {
    let cols = sm.cols.max(1);
    let rows = sm.panels.len().div_ceil(cols).max(1);
    let (cell_w, cell_h) = (width / cols as f64, 130.0);
    let height = cell_h * rows as f64 + 24.0;
    let shared_max = sm
        .panels
        .iter()
        .flat_map(|(_, v)| v.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (_, _, points) = finite_extent(sm.panels.iter().flat_map(|(_, v)| v.iter()));
    // The outer frame only carries the figure, caption and data attributes.
    let outer = Frame::new(width, height, 1.0, 1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure class="chart"><figcaption>{t}</figcaption><div class="scroll"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" style="min-width:{minw}px;max-width:{maxw}px" font-family="sans-serif" font-size="11" data-chart="small-multiples" data-title="{t}" data-x-unit="{xu}" data-y-unit="{yu}" data-points="{points}"><title>{t}</title><text x="4" y="{yb}">{xl}; y: {yl}</text>"#,
        w = outer.width,
        h = outer.height,
        minw = width.min(480.0),
        maxw = width * 1.25,
        t = escape(axes.title),
        xu = escape(axes.x_unit),
        yu = escape(axes.y_unit),
        yb = height - 6.0,
        xl = escape(&axis_text(axes.x_label, axes.x_unit)),
        yl = escape(&axis_text(axes.y_label, axes.y_unit)),
    );
    for (k, (name, values)) in sm.panels.iter().enumerate() {
        let (cx, cy) = ((k % cols) as f64 * cell_w, (k / cols) as f64 * cell_h);
        let max = if sm.shared_y {
            shared_max
        } else {
            values
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max)
        };
        let mut f = Frame::new(
            cell_w,
            cell_h,
            sm.x_max,
            nice_ticks(max * 1.02).last().copied().unwrap_or(1.0),
        );
        f.left = 40.0;
        f.top = 20.0;
        f.bottom = 22.0;
        f.right = 8.0;
        let _ = write!(
            s,
            r#"<svg x="{cx}" y="{cy}" width="{cell_w}" height="{cell_h}" overflow="visible"><text x="{l}" y="13" font-weight="bold">{name}</text>"#,
            l = f.left,
            name = escape(name),
        );
        s.push_str(&f.axes_body("", "", "", "", sm.x_ticks));
        s.push_str(r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points=""##);
        let offset = if sm.x_max as usize == values.len() {
            0.5
        } else {
            0.0
        };
        for (x, v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let _ = write!(s, "{:.1},{:.1} ", f.x(x as f64 + offset), f.y(*v));
        }
        s.push_str(r#""/></svg>"#);
    }
    s.push_str(CLOSE);
    s
}

/// HOMER's daily profile: twelve small 24-hour plots sharing one y scale.
pub fn daily_profiles_chart(axes: &Axes<'_>, daily: &[[f64; 24]], width: f64) -> String {
    let ticks: Vec<_> = [0, 6, 12, 18, 24]
        .iter()
        .map(|h| (f64::from(*h), h.to_string()))
        .collect();
    let panels: Vec<(&str, &[f64])> = daily
        .iter()
        .take(12)
        .enumerate()
        .map(|(m, p)| (MONTHS[m], p.as_slice()))
        .collect();
    small_multiples(
        axes,
        &SmallMultiples {
            panels: &panels,
            x_max: 24.0,
            x_ticks: &ticks,
            cols: 4,
            shared_y: true,
        },
        width,
    )
}

/// Viridis-like colour ramp for t in [0, 1].
fn ramp(t: f64) -> [u8; 3] {
    const STOPS: [[f64; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let c = |k: usize| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).round() as u8;
    [c(0), c(1), c(2)]
}

/// HOMER's heat map: days along x, hours of the day along y (midnight at the bottom), colour
/// = the value in `unit`. `hourly` has 24 values per day.
pub fn heat_map(
    title: &str,
    unit: &str,
    hourly: &[f64],
    width: f64,
) -> Result<String, ReportError> {
    let days = hourly.len() / 24;
    let max = hourly.iter().copied().fold(0.0, f64::max);
    let mut pixels = Vec::with_capacity(days * 24 * 3);
    for row in 0..24 {
        let hour = 23 - row;
        for day in 0..days {
            let v = hourly[day * 24 + hour];
            pixels.extend_from_slice(&ramp(if max > 0.0 { v / max } else { 0.0 }));
        }
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, days as u32, 24);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    let data = base64::engine::general_purpose::STANDARD.encode(&png_bytes);
    let mut frame = Frame::new(width, 250.0, days as f64, 24.0);
    frame.right = 86.0; // room for the colour bar
    let axes = Axes {
        title,
        x_label: "day of year",
        x_unit: "month",
        y_label: "hour of day",
        y_unit: "h",
    };
    let hour_ticks = frame.open("heat-map", &axes, days * 24, &month_ticks(1.0), &[]);
    let mut s = hour_ticks.replacen(
        "data-points=",
        &format!("data-z-unit=\"{}\" data-points=", escape(unit)),
        1,
    );
    let (x0, y0) = (frame.x(0.0), frame.y(24.0));
    let (w, h) = (frame.x(days as f64) - x0, frame.y(0.0) - y0);
    let _ = write!(
        s,
        r#"<image x="{x0:.1}" y="{y0:.1}" width="{w:.1}" height="{h:.1}" preserveAspectRatio="none" style="image-rendering:pixelated" href="data:image/png;base64,{data}"/>"#
    );
    // Colour bar.
    let bx = width - 78.0;
    for i in 0..50 {
        let c = ramp(f64::from(i) / 49.0);
        let _ = write!(
            s,
            r#"<rect x="{bx}" y="{y:.1}" width="12" height="{hh:.2}" fill="rgb({},{},{})"/>"#,
            c[0],
            c[1],
            c[2],
            y = y0 + h - (f64::from(i) + 1.0) * h / 50.0,
            hh = h / 50.0 + 0.3,
        );
    }
    let _ = write!(
        s,
        r#"<text x="{tx}" y="{ty1:.1}">{max} {unit}</text><text x="{tx}" y="{ty0:.1}">0</text>{CLOSE}"#,
        tx = bx + 15.0,
        ty1 = y0 + 8.0,
        ty0 = y0 + h,
        max = fmt_tick(max),
        unit = escape(unit),
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_cover_the_range() {
        assert_eq!(nice_ticks(9.3), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            nice_ticks(480.0),
            vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0]
        );
        assert_eq!(
            nice_ticks(0.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(nice_range(-35.0, 80.0), vec![-50.0, 0.0, 50.0, 100.0]);
    }

    #[test]
    fn ramp_ends_are_the_palette_ends() {
        assert_eq!(ramp(0.0), [68, 1, 84]);
        assert_eq!(ramp(1.0), [253, 231, 37]);
        assert_eq!(ramp(f64::NAN), [68, 1, 84]);
    }

    #[test]
    fn escape_handles_markup() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }

    const AXES: Axes<'static> = Axes {
        title: "t",
        x_label: "hour of day",
        x_unit: "h",
        y_label: "price",
        y_unit: "EUR/MWh",
    };

    #[test]
    fn gaps_break_the_line_and_are_not_counted() {
        let v = [1.0, f64::NAN, 3.0, 4.0];
        let s = line_chart(&AXES, &[("p", &v)], &[], Opts::new(300.0, 200.0));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains(r#"data-points="3""#));
        assert!(s.contains("price (EUR/MWh)"));
        assert!(s.ends_with(CLOSE));
    }

    #[test]
    fn a_fixed_range_is_kept() {
        let v = [20.0, 30.0];
        let s = line_chart(
            &AXES,
            &[("soc", &v)],
            &[],
            Opts::new(300.0, 200.0).y_range(0.0, 100.0),
        );
        assert!(s.contains(">100</text>"));
        assert!(!s.contains(">120</text>"));
    }

    #[test]
    fn stacked_bars_go_below_zero_for_negatives() {
        let s = bar_chart(
            &AXES,
            &["a".into()],
            &[("cost", vec![10.0]), ("salvage", vec![-3.0])],
            true,
            Opts::new(300.0, 200.0),
        );
        assert!(
            s.contains(">-4</text>") || s.contains(">-5</text>") || s.contains(">-10</text>"),
            "{s}"
        );
    }
}
