//! A small SVG chart kit for the report: axes with "nice" ticks, lines, seasonal boxes, small
//! multiples and heat maps (a PNG raster inside the SVG, so 8760 cells stay a few kilobytes).
//!
//! Why not `plotters`: its text rendering pulls in system font libraries (fontconfig) that a
//! fresh machine lacks, and its SVG output of a heat map is ~30 times larger than a PNG cell
//! raster. Everything here is deterministic text.

use crate::ReportError;
use base64::Engine as _;
use std::fmt::Write as _;

pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Ticks at 1, 2 or 5 × 10^k covering `[0, max]`.
pub fn nice_ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let n = (max / step).ceil() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
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

/// Plot area inside an SVG of `width` × `height` with room for axes.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub y_max: f64,
    pub x_max: f64,
}

impl Frame {
    pub fn new(width: f64, height: f64, x_max: f64, y_max: f64) -> Self {
        Self {
            width,
            height,
            left: 56.0,
            right: 12.0,
            top: 24.0,
            bottom: 30.0,
            y_max,
            x_max,
        }
    }
    fn plot_w(&self) -> f64 {
        self.width - self.left - self.right
    }
    fn plot_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }
    pub fn x(&self, v: f64) -> f64 {
        self.left + v / self.x_max.max(f64::MIN_POSITIVE) * self.plot_w()
    }
    pub fn y(&self, v: f64) -> f64 {
        self.top + self.plot_h() * (1.0 - v / self.y_max.max(f64::MIN_POSITIVE))
    }

    /// Opening tag, title, y grid with labels, and x ticks at `x_ticks` (position, label).
    pub fn open(&self, title: &str, y_label: &str, x_ticks: &[(f64, String)]) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><title>{t}</title><text x="{l}" y="15" font-size="12" font-weight="bold">{t}</text>"#,
            w = self.width,
            h = self.height,
            t = escape(title),
            l = self.left,
        );
        for tick in nice_ticks(self.y_max) {
            if tick > self.y_max * 1.0001 {
                break;
            }
            let y = self.y(tick);
            let _ = write!(
                s,
                r##"<line x1="{l}" x2="{r}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{v}</text>"##,
                l = self.left,
                r = self.width - self.right,
                tx = self.left - 4.0,
                ty = y + 4.0,
                v = fmt_tick(tick),
            );
        }
        let _ = write!(
            s,
            r#"<text transform="translate(12,{y}) rotate(-90)" text-anchor="middle">{label}</text>"#,
            y = self.top + self.plot_h() / 2.0,
            label = escape(y_label),
        );
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
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{r}" y1="{base}" y2="{base}" stroke="#666"/>"##,
            l = self.left,
            r = self.width - self.right,
        );
        s
    }
}

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

/// A line chart of one or more series on the same x axis (index), with a legend.
pub fn line_chart(
    title: &str,
    y_label: &str,
    series: &[(&str, &[f64])],
    x_ticks: &[(f64, String)],
    width: f64,
    height: f64,
) -> String {
    let n = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max);
    let y_top = nice_ticks(y_max * 1.02).last().copied().unwrap_or(1.0);
    let frame = Frame::new(width, height, (n - 1) as f64, y_top);
    let mut s = frame.open(title, y_label, x_ticks);
    for (i, (label, values)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        s.push_str(r#"<polyline fill="none" stroke-width="1" stroke=""#);
        s.push_str(color);
        s.push_str(r#"" points=""#);
        for (x, v) in values.iter().enumerate() {
            let _ = write!(s, "{:.1},{:.1} ", frame.x(x as f64), frame.y(*v));
        }
        s.push_str(r#""/>"#);
        if series.len() > 1 {
            let lx = frame.left + 8.0 + 110.0 * i as f64;
            let _ = write!(
                s,
                r#"<rect x="{lx}" y="{y}" width="10" height="3" fill="{color}"/><text x="{tx}" y="{ty}">{label}</text>"#,
                y = frame.top + 2.0,
                tx = lx + 14.0,
                ty = frame.top + 7.0,
                label = escape(label),
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Grouped bars: one group per category (x), one bar per series, with a legend.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(&str, Vec<f64>)],
    width: f64,
    height: f64,
) -> String {
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max);
    let y_top = nice_ticks(y_max * 1.02).last().copied().unwrap_or(1.0);
    let n = categories.len().max(1);
    let frame = Frame::new(width, height, n as f64, y_top);
    let ticks: Vec<_> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (i as f64 + 0.5, c.clone()))
        .collect();
    let mut s = frame.open(title, y_label, &ticks);
    let group_w = frame.x(1.0) - frame.x(0.0);
    let bar_w = group_w * 0.8 / series.len().max(1) as f64;
    for (k, (label, values)) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        for (i, v) in values.iter().enumerate() {
            let x = frame.x(i as f64) + group_w * 0.1 + bar_w * k as f64;
            let y = frame.y(v.max(0.0));
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{color}"><title>{label} {cat}: {v:.0}</title></rect>"#,
                h = (frame.y(0.0) - y).max(0.0),
                label = escape(label),
                cat = escape(&categories[i.min(categories.len().saturating_sub(1))]),
            );
        }
        let lx = frame.left + 8.0 + 120.0 * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{y}" width="10" height="8" fill="{color}"/><text x="{tx}" y="{ty}">{label}</text>"#,
            y = frame.top - 2.0,
            tx = lx + 14.0,
            ty = frame.top + 6.0,
            label = escape(label),
        );
    }
    s.push_str("</svg>");
    s
}

/// A scatter of (x, y) points in [0, 1]² with the diagonal y = x (e.g. achieved vs wanted).
pub fn scatter_unit(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    size: f64,
) -> String {
    let mut frame = Frame::new(size, size, 1.0, 1.0);
    frame.bottom = 40.0;
    let ticks: Vec<_> = [0.0, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|v| (*v, format!("{v}")))
        .collect();
    let mut s = frame.open(title, y_label, &ticks);
    let _ = write!(
        s,
        r##"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="#999" stroke-dasharray="4 3"/><text x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{xl}</text>"##,
        x0 = frame.x(0.0),
        y0 = frame.y(0.0),
        x1 = frame.x(1.0),
        y1 = frame.y(1.0),
        cx = frame.x(0.5),
        ty = size - 4.0,
        xl = escape(x_label),
    );
    for (x, y) in points {
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="#1f77b4" fill-opacity="0.35"/>"##,
            frame.x(x.clamp(0.0, 1.0)),
            frame.y(y.clamp(0.0, 1.0))
        );
    }
    s.push_str("</svg>");
    s
}

/// HOMER's seasonal profile: per month a whisker min–max, a box daily-low–daily-high and a
/// mean tick.
pub fn seasonal_chart(
    title: &str,
    months: &[scg_sim::metrics::MonthStats],
    width: f64,
    height: f64,
) -> String {
    let y_max = months.iter().map(|m| m.max_kw).fold(0.0, f64::max);
    let y_top = nice_ticks(y_max * 1.02).last().copied().unwrap_or(1.0);
    let frame = Frame::new(width, height, 12.0, y_top);
    let ticks: Vec<_> = (0..12)
        .map(|m| (m as f64 + 0.5, MONTHS[m].to_string()))
        .collect();
    let mut s = frame.open(title, "kW", &ticks);
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
    s.push_str("</svg>");
    s
}

/// HOMER's daily profile: twelve small 24-hour plots sharing one y scale.
pub fn daily_profiles_chart(title: &str, daily: &[[f64; 24]], width: f64) -> String {
    let y_max = daily.iter().flatten().copied().fold(0.0, f64::max);
    let y_top = nice_ticks(y_max * 1.02).last().copied().unwrap_or(1.0);
    let (cols, cell_w, cell_h) = (4usize, width / 4.0, 120.0);
    let height = 20.0 + cell_h * 3.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="10"><title>{t}</title><text x="4" y="13" font-size="12" font-weight="bold">{t}</text>"#,
        t = escape(title),
    );
    for (m, profile) in daily.iter().enumerate().take(12) {
        let (cx, cy) = (
            (m % cols) as f64 * cell_w,
            20.0 + (m / cols) as f64 * cell_h,
        );
        let mut f = Frame::new(cell_w, cell_h, 24.0, y_top);
        f.left = 34.0;
        f.top = 22.0;
        f.bottom = 20.0;
        let ticks: Vec<_> = [0, 6, 12, 18, 24]
            .iter()
            .map(|h| (f64::from(*h), h.to_string()))
            .collect();
        let _ = write!(s, r#"<g transform="translate({cx},{cy})">"#);
        s.push_str(
            &f.open(MONTHS[m], "", &ticks)
                .replacen("<svg", "<svg overflow=\"visible\"", 1),
        );
        s.push_str(r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points=""##);
        for (h, v) in profile.iter().enumerate() {
            let _ = write!(s, "{:.1},{:.1} ", f.x(h as f64 + 0.5), f.y(*v));
        }
        s.push_str(r#""/></svg></g>"#);
    }
    s.push_str("</svg>");
    s
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
/// = kW. `hourly` has 24 values per day.
pub fn heat_map(title: &str, hourly: &[f64], width: f64) -> Result<String, ReportError> {
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
    let height = 230.0;
    let mut frame = Frame::new(width, height, days as f64, 24.0);
    frame.right = 86.0; // room for the colour bar
    let mut s = frame.open(title, "hour of day", &month_ticks(1.0));
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
        r#"<text x="{tx}" y="{ty1:.1}">{max:.0} kW</text><text x="{tx}" y="{ty0:.1}">0</text></svg>"#,
        tx = bx + 15.0,
        ty1 = y0 + 8.0,
        ty0 = y0 + h,
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_cover_the_maximum() {
        assert_eq!(nice_ticks(9.3), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            nice_ticks(480.0),
            vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0]
        );
        assert_eq!(
            nice_ticks(0.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
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
}
