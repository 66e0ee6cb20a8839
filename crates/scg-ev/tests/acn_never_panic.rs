//! Never panic on any ACN session file (issue 11): the real Caltech excerpt with random hostile
//! edits (extreme numbers and dates, cut lines, 200-character fields, truncation) and random
//! text. Each case returns sessions or an error; an error shows at most 80 characters of a
//! field; accepted files respect the stay and span bounds. `#[ignore]`d: 50 times the cases.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_ev::acn::{MAX_SPAN_DAYS, MAX_STAY_MIN, parse_acn_csv};

const ACN: &str = include_str!("data/caltech_2019-09-01_14.csv");

const TOKENS: [&str; 16] = [
    "nan",
    "inf",
    "-1e300",
    "1e308",
    "0",
    "-1",
    "4294967295",
    "",
    ",",
    "\n",
    "True",
    "9999-12-31 23:59:59-07:00",
    "0001-01-01 00:00:00+14:00",
    "2019-13-45",
    "\u{feff}",
    "\"",
];

fn mutate(edits: &[(f64, usize, usize)], truncate: Option<f64>) -> String {
    let mut s = ACN.to_owned();
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
        s.replace_range(i..j, TOKENS.get(token).copied().unwrap_or(&long));
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

fn check(text: &str) {
    match parse_acn_csv(text, 6.656) {
        Ok(sessions) => {
            let first = sessions.iter().map(|s| s.arrival_min).min().unwrap_or(0);
            let last = sessions.iter().map(|s| s.departure_min).max().unwrap_or(0);
            assert!(last - first <= MAX_SPAN_DAYS * 1440);
            for s in &sessions {
                assert!(s.departure_min - s.arrival_min <= MAX_STAY_MIN);
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains(&"x".repeat(100)), "echoed content: {text}");
        }
    }
}

fn edits() -> impl Strategy<Value = (Vec<(f64, usize, usize)>, Option<f64>)> {
    (
        prop::collection::vec((0.0..1.0f64, 0..TOKENS.len() + 1, 0usize..30), 1..5),
        prop::option::weighted(0.2, 0.0..1.0f64),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn acn_parser_survives_hostile_edits((e, t) in edits()) {
        check(&mutate(&e, t));
    }

    #[test]
    fn acn_parser_survives_random_text(text in "[ -~\n]{0,400}") {
        check(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3200, ..ProptestConfig::default() })]

    #[test]
    #[ignore = "long version"]
    fn acn_parser_survives_hostile_edits_long((e, t) in edits()) {
        check(&mutate(&e, t));
    }
}

#[test]
fn a_far_future_departure_is_an_error_naming_the_line() {
    let mut lines: Vec<String> = ACN.lines().map(str::to_owned).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let dep = header.iter().position(|h| *h == "departure").unwrap();
    let mut row: Vec<String> = lines[3].split(',').map(str::to_owned).collect();
    row[dep] = "9999-12-31 17:00:00-07:00".into();
    lines[3] = row.join(",");
    let e = parse_acn_csv(&lines.join("\n"), 6.656)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("line 4:") && e.contains("14 days"), "{e}");
}
