//! `report.html` of the built-in community: every chart carries a title (shown as its caption),
//! x and y units and data (checked here by parsing the file, always), and the page passes the
//! real-browser test (`scripts/browser-test.sh`, headless Chromium) when `SCG_BROWSER_TEST=1`
//! or Chromium is installed.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Simulate the built-in community once for every test here; the report's path.
fn report() -> &'static Path {
    static REPORT: OnceLock<PathBuf> = OnceLock::new();
    REPORT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("scg-report-html-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The built-in community with its search-only battery and turbine sections built, so
        // that every view (battery cycles and state of charge, wind) has data.
        let default = Command::new(env!("CARGO_BIN_EXE_scg"))
            .args(["scenario", "default"])
            .output()
            .unwrap();
        let text = String::from_utf8(default.stdout).unwrap();
        assert!(text.contains("installed = false\n"));
        std::fs::write(
            dir.join("all.toml"),
            text.replace("installed = false\n", ""),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_scg"))
            .args([
                "simulate",
                "all.toml",
                "--no-ledger",
                "--quiet",
                "--out",
                "out",
            ])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir.join("out").join("report.html")
    })
}

/// The value of `name="…"` in an opening tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// Every `<svg …>` opening tag with a `data-chart` attribute, with the figure caption before it.
fn charts(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<figure class=\"chart\">") {
        rest = &rest[i..];
        let cap_start = rest.find("<figcaption>").unwrap() + "<figcaption>".len();
        let cap_len = rest[cap_start..].find("</figcaption>").unwrap();
        let caption = rest[cap_start..cap_start + cap_len].to_owned();
        let svg = rest.find("<svg").unwrap();
        let end = svg + rest[svg..].find('>').unwrap();
        out.push((caption, rest[svg..=end].to_owned()));
        rest = &rest[end..];
    }
    out
}

#[test]
fn every_chart_has_a_title_units_and_data() {
    let html = std::fs::read_to_string(report()).unwrap();
    let charts = charts(&html);
    assert!(charts.len() >= 40, "only {} charts", charts.len());
    assert_eq!(
        charts.len(),
        html.matches(" data-chart=\"").count(),
        "a chart outside a figure, or a figure without a chart"
    );
    for (caption, tag) in &charts {
        let title = attr(tag, "data-title").unwrap_or_default();
        assert!(!title.is_empty(), "no title: {tag}");
        assert_eq!(caption, title, "caption is not the title");
        for unit in ["data-x-unit", "data-y-unit"] {
            assert!(
                !attr(tag, unit).unwrap_or_default().is_empty(),
                "{title}: no {unit}"
            );
        }
        let points: usize = attr(tag, "data-points").unwrap().parse().unwrap();
        assert!(points > 0, "{title}: no data");
        assert!(attr(tag, "viewBox").is_some(), "{title}: not scalable");
    }
    let kinds: std::collections::BTreeSet<&str> = charts
        .iter()
        .filter_map(|(_, t)| attr(t, "data-chart"))
        .collect();
    for kind in [
        "line",
        "bar",
        "stacked-bar",
        "stacked-area",
        "scatter",
        "heat-map",
        "seasonal",
        "small-multiples",
    ] {
        assert!(kinds.contains(kind), "no {kind} chart");
    }
}

#[test]
fn report_is_offline_and_responsive() {
    let html = std::fs::read_to_string(report()).unwrap();
    assert!(!html.contains("<script"), "no scripts in the report");
    assert!(!html.contains("src=\"http"), "no external resources");
    assert!(html.contains("name=\"viewport\""));
    // Every table scrolls in its own box on a narrow screen.
    assert_eq!(
        html.matches("<table>").count(),
        html.matches("<div class=\"scroll\"><table>").count()
    );
    for view in [
        "Community dispatch",
        "Duration curves",
        "Monthly yield of PV and wind",
        "Net present cost by member and kind",
        "Community cash flows by project year",
        "CER shared energy by hour of day",
        "self-sufficiency",
        "Yearly bills",
        "equivalent full cycles",
    ] {
        assert!(html.contains(view), "missing view: {view}");
    }
}

#[test]
fn clearing_price_has_gaps_and_soc_axis_ends_at_100() {
    let html = std::fs::read_to_string(report()).unwrap();
    let charts = charts(&html);
    let price = charts
        .iter()
        .find(|(c, _)| c.starts_with("Mean clearing price"))
        .unwrap();
    let points: usize = attr(&price.1, "data-points").unwrap().parse().unwrap();
    assert!(points < 24, "hours without trades must be gaps, not 0");
    let soc_start = html.find("battery state of charge").unwrap();
    let soc_svg = &html[soc_start..soc_start + html[soc_start..].find("</svg>").unwrap()];
    assert!(soc_svg.contains(">100</text>"));
    assert!(!soc_svg.contains(">120</text>") && !soc_svg.contains(">150</text>"));
}

fn chromium_installed() -> bool {
    ["chromium", "chromium-browser"].iter().any(|c| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn report_passes_the_headless_browser_test() {
    let wanted = std::env::var("SCG_BROWSER_TEST").is_ok_and(|v| v == "1");
    if !wanted && !chromium_installed() {
        eprintln!("skipped: Chromium not installed and SCG_BROWSER_TEST is not 1");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/browser-test.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(report())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
