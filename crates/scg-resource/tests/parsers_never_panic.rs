//! Never panic on any input (issue 11): every data-file parser of this crate (EPW, PVGIS CSV
//! and JSON, GME XML, load and price CSV, profile CSV) is fed real or realistic files with
//! random hostile edits (extreme numbers, cut lines, stray separators, 200-character fields,
//! truncation). Each case must return `Ok` or an error, and an error never shows more than
//! 80 characters of one field. The `#[ignore]`d version runs 50 times as many cases.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_resource::solar::WeatherFormat;
use scg_resource::{gme, load, profiles, weather};

const EPW_EXCERPT: &str = include_str!("data/chicago_ohare_tmy3_excerpt.epw");
const GME_XML: &str = include_str!("data/gme/20210830MGPPrezzi.xml");
const DAYS: [usize; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// A full EPW year from the excerpt's header and its first day's rows.
fn epw_year() -> String {
    let lines: Vec<&str> = EPW_EXCERPT.lines().collect();
    let mut out: Vec<String> = lines[..8].iter().map(|s| (*s).to_owned()).collect();
    for (m, &n) in DAYS.iter().enumerate() {
        for d in 1..=n {
            for row in &lines[8..32] {
                let mut f: Vec<String> = row.split(',').map(str::to_owned).collect();
                f[1] = (m + 1).to_string();
                f[2] = d.to_string();
                out.push(f.join(","));
            }
        }
    }
    out.join("\n")
}

fn pvgis_csv() -> String {
    let mut s = String::from(
        "Latitude (decimal degrees):\t45.698\nLongitude (decimal degrees):\t9.677\n\
         Elevation (m):\t249.0\nmonth,year\n",
    );
    s.push_str("time(UTC),T2m,RH,G(h),Gb(n),Gd(h),IR(h),WS10m,WD10m,SP\n");
    for (m, &n) in DAYS.iter().enumerate() {
        for d in 1..=n {
            for h in 0..24 {
                s.push_str(&format!(
                    "2007{:02}{d:02}:{h:02}10,10.0,80.0,{}.0,{}.0,{}.0,300.0,1.5,180.0,99000\n",
                    m + 1,
                    10 * h,
                    5 * h,
                    2 * h
                ));
            }
        }
    }
    s
}

fn pvgis_json() -> String {
    let rows: Vec<String> = (0..8760)
        .map(|i| {
            let h = i % 24;
            format!(
                "{{\"time(UTC)\":\"20070101:{h:02}10\",\"T2m\":10.0,\"RH\":70.0,\"G(h)\":{}.0,\
                 \"Gb(n)\":0.0,\"Gd(h)\":50.0,\"IR(h)\":300.0,\"WS10m\":2.0,\"WD10m\":90.0,\"SP\":99000.0}}",
                10 * h
            )
        })
        .collect();
    format!(
        "{{\"inputs\":{{\"location\":{{\"latitude\":45.0,\"longitude\":8.0,\"elevation\":250.0}}}},\
         \"outputs\":{{\"tmy_hourly\":[{}]}}}}",
        rows.join(",")
    )
}

fn series_csv() -> String {
    (0..8760).map(|h| format!("{}\n", 10 + h % 24)).collect()
}

fn profile_csv() -> String {
    let mut s = String::from("month,day_type,hour,load_kw\n");
    for m in 1..=12 {
        for t in ["weekday", "weekend"] {
            for h in 0..24 {
                s.push_str(&format!("{m},{t},{h},{}\n", 1 + h % 5));
            }
        }
    }
    s
}

const TOKENS: [&str; 18] = [
    "nan",
    "inf",
    "-inf",
    "-1e300",
    "1e308",
    "1e-300",
    "0",
    "-1",
    "4294967295",
    "",
    ",",
    "\n",
    "\"",
    "<",
    "99:99",
    "2019-13-45",
    "\u{feff}",
    ";",
];

/// Apply `edits` (position fraction, token, cut length) and an optional truncation.
fn mutate(seed: &str, edits: &[(f64, usize, usize)], truncate: Option<f64>) -> String {
    let mut s = seed.to_owned();
    let long = "x".repeat(200);
    for &(at, token, cut) in edits {
        let mut i = ((s.len() as f64) * at) as usize;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        let mut j = (i + cut).min(s.len());
        while !s.is_char_boundary(j) {
            j -= 1;
        }
        let t = TOKENS.get(token).copied().unwrap_or(&long);
        s.replace_range(i..j, t);
    }
    if let Some(f) = truncate {
        let mut i = ((s.len() as f64) * f) as usize;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
    }
    s
}

fn edits() -> impl Strategy<Value = (Vec<(f64, usize, usize)>, Option<f64>)> {
    (
        prop::collection::vec((0.0..1.0f64, 0..TOKENS.len() + 1, 0usize..12), 1..5),
        prop::option::weighted(0.2, 0.0..1.0f64),
    )
}

/// An error may show at most 80 characters of a field: no run of 100 `x` may appear.
fn assert_short(e: &dyn std::fmt::Display) {
    let text = e.to_string();
    assert!(!text.contains(&"x".repeat(100)), "echoed content: {text}");
}

fn run_all(which: usize, edits: &[(f64, usize, usize)], truncate: Option<f64>) {
    match which {
        0 => {
            let t = mutate(&epw_year(), edits, truncate);
            if let Err(e) = weather::parse(&t, WeatherFormat::Epw, "f.epw") {
                assert_short(&e);
            }
        }
        1 => {
            let t = mutate(&pvgis_csv(), edits, truncate);
            if let Err(e) = weather::parse(&t, WeatherFormat::PvgisCsv, "f.csv") {
                assert_short(&e);
            }
        }
        2 => {
            let t = mutate(&pvgis_json(), edits, truncate);
            if let Err(e) = weather::parse(&t, WeatherFormat::PvgisJson, "f.json") {
                assert_short(&e);
            }
        }
        3 => {
            let t = mutate(GME_XML, edits, truncate);
            if let Err(e) = gme::parse_prices(&t, "f.xml") {
                assert_short(&e);
            }
        }
        4 => {
            let t = mutate(&series_csv(), edits, truncate);
            if let Err(e) = load::parse_load_csv(&t, "l.csv", None) {
                assert_short(&e);
            }
            if let Err(e) = load::parse_price_csv(&t, "p.csv", None) {
                assert_short(&e);
            }
        }
        _ => {
            let t = mutate(&profile_csv(), edits, truncate);
            if let Err(e) = profiles::parse_profile_csv(&t, "pr.csv") {
                assert_short(&e);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_parser_survives_hostile_edits(which in 0usize..6, (e, t) in edits()) {
        run_all(which, &e, t);
    }

    #[test]
    fn every_parser_survives_random_text(which in 0usize..6, text in "[ -~\n\t]{0,400}") {
        // Random text through the same parsers (no seed file).
        let _ = weather::parse(&text, WeatherFormat::Epw, "f");
        let _ = weather::parse(&text, WeatherFormat::PvgisCsv, "f");
        let _ = weather::parse(&text, WeatherFormat::PvgisJson, "f");
        let _ = gme::parse_prices(&text, "f");
        let _ = load::parse_load_csv(&text, "f", None);
        let _ = profiles::parse_profile_csv(&text, "f");
        prop_assert!(which < 6);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1200, ..ProptestConfig::default() })]

    #[test]
    #[ignore = "long version (minutes)"]
    fn every_parser_survives_hostile_edits_long(which in 0usize..6, (e, t) in edits()) {
        run_all(which, &e, t);
    }
}
