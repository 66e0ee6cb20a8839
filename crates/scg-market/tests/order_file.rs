//! The order-book parser (`scg_market::order_file`): errors name the file, the line and the
//! field, show at most 80 characters of what was found, sizes are bounded, and no input —
//! hostile edits of a real book, random text, arbitrary bytes — makes it panic (issue 11).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_market::order_file::{MAX_ORDER_ENERGY_WH, MAX_ORDERS, parse_orders};
use scg_market::{ClearingConfig, MarketError, Side, Source, clear};

const CSV: &str = "id,side,prosumer,interval,energy_wh,price_eur_per_mwh,source,renewable_only,device\n\
b1,bid,home,0,1500,130,,true,\n\
o1,offer,office,0,2000,90,pv,,roof\n\
b2,bid,office,1,500,110.5,,,\n\
o2,offer,home,1,800,60,battery,,\n";

const JSON: &str = r#"[
  {"id": "b1", "side": "bid", "prosumer": "home", "interval": 0, "energy_wh": 1500,
   "price_eur_per_mwh": 130, "source": null, "renewable_only": true},
  {"id": "o1", "side": "offer", "prosumer": "office", "interval": 0, "energy_wh": "2000",
   "price_eur_per_mwh": 90.0, "source": "pv", "device": "roof"}
]"#;

fn err(text: &str, name: &str) -> String {
    parse_orders(text, name).unwrap_err().to_string()
}

#[test]
fn csv_and_json_give_the_same_orders() {
    let csv = parse_orders(CSV, "book.csv").unwrap();
    assert_eq!(csv.len(), 4);
    assert_eq!(csv[0].side, Side::Bid);
    assert!(csv[0].renewable_only);
    assert_eq!(csv[1].source, Some(Source::Pv));
    assert_eq!(csv[1].device.as_deref(), Some("roof"));
    assert_eq!(csv[2].price.milli(), 110_500);
    let json = parse_orders(JSON, "book.json").unwrap();
    assert_eq!(json[..], csv[..2]);
    // The parsed book clears.
    let outcome = clear(&csv, &ClearingConfig::default()).unwrap();
    assert_eq!(outcome.trades().count(), 2);
}

#[test]
fn csv_errors_name_file_line_field_found_and_expected() {
    let bad = CSV.replace("b2,bid,office,1,500,", "b2,bid,office,1,lots,");
    let e = err(&bad, "book.csv");
    assert!(
        e.starts_with("book.csv:4: energy_wh: expected an integer number of Wh"),
        "{e}"
    );
    assert!(e.contains("\"lots\""), "{e}");

    let e = err(&CSV.replace("o1,offer", "o1,sell"), "book.csv");
    assert!(
        e.starts_with("book.csv:3: side: expected bid or offer, got \"sell\""),
        "{e}"
    );

    let e = err(&CSV.replace(",pv,", ",coal,"), "book.csv");
    assert!(
        e.starts_with("book.csv:3: source: expected pv, wind"),
        "{e}"
    );

    let e = err(&CSV.replace("130", "1e300"), "book.csv");
    assert!(e.starts_with("book.csv:2: price_eur_per_mwh:"), "{e}");

    let e = err(&CSV.replace("b1,bid,home,0", "b1,bid,home,-1"), "book.csv");
    assert!(
        e.starts_with("book.csv:2: interval: expected an integer"),
        "{e}"
    );

    let e = err(&CSV.replace(",true,", ",maybe,"), "book.csv");
    assert!(
        e.starts_with("book.csv:2: renewable_only: expected true or false"),
        "{e}"
    );

    let e = err("id,side,who\nb1,bid,x\n", "h.csv");
    assert!(e.starts_with("h.csv:1: missing column \"prosumer\""), "{e}");

    let e = err(&format!("{CSV}b3,bid,home\n"), "book.csv");
    assert!(e.starts_with("book.csv:6: expected 9 fields"), "{e}");
}

#[test]
fn a_quoted_field_over_two_lines_keeps_the_next_rows_line_numbers_right() {
    let text = CSV.replace("o1,offer,office", "\"o\n1\",offer,office");
    let bad = text.replace("b2,bid,office,1,500,", "b2,bid,office,1,0,");
    let e = err(&bad, "q.csv");
    assert!(e.starts_with("q.csv:5: energy_wh"), "{e}");
}

#[test]
fn json_errors_name_file_line_item_and_key() {
    let e = err(&JSON.replace("\"2000\"", "\"lots\""), "book.json");
    assert!(e.starts_with("book.json:4 [1]: energy_wh:"), "{e}");

    let e = err(&JSON.replace("\"side\": \"bid\", ", ""), "book.json");
    assert!(
        e.starts_with("book.json:2 [0]: missing key \"side\""),
        "{e}"
    );

    let e = err(
        &JSON.replace("\"source\": null", "\"source\": [1]"),
        "book.json",
    );
    assert!(
        e.starts_with("book.json:2 [0]: source: expected a string or number"),
        "{e}"
    );

    let e = err("[1, 2]", "n.json");
    assert!(
        e.starts_with("n.json:1 [0]: expected an object, got \"1\""),
        "{e}"
    );

    let e = err("{\"id\": 1}", "o.json");
    assert!(
        e.starts_with("o.json:1: invalid type: map, expected a JSON array of order objects"),
        "{e}"
    );
    assert!(!e.contains("column"), "{e}");

    let e = err("[\n{\"id\": }]", "s.json");
    assert!(e.starts_with("s.json:2:8: expected value"), "{e}");

    let e = err("[{\"id\": 1}] trailing", "t.json");
    assert!(e.starts_with("t.json:1:"), "{e}");
}

#[test]
fn sizes_are_bounded() {
    let long = "x".repeat(500);
    let e = err(
        &CSV.replace("b1,bid,home", &format!("{long},bid,home")),
        "l.csv",
    );
    assert!(e.contains("id: expected at most 128 characters"), "{e}");
    assert!(!e.contains(&"x".repeat(100)), "echoed the whole field: {e}");

    let too_much = (MAX_ORDER_ENERGY_WH + 1).to_string();
    let e = err(&CSV.replace("1500", &too_much), "e.csv");
    assert!(
        e.starts_with("e.csv:2: energy_wh: expected an integer number of Wh between 1"),
        "{e}"
    );
    assert!(
        parse_orders(
            &CSV.replace("1500", &MAX_ORDER_ENERGY_WH.to_string()),
            "e.csv"
        )
        .is_ok()
    );

    // One order past the cap, in both formats (the JSON items are refused while reading).
    let items = vec!["1"; MAX_ORDERS + 1].join(",");
    let e = err(&format!("[{items}]"), "big.json");
    assert!(e.contains(&format!("more than {MAX_ORDERS} orders")), "{e}");

    let mut csv = String::from("id,side,prosumer,interval,energy_wh,price_eur_per_mwh,source\n");
    for _ in 0..=MAX_ORDERS {
        csv.push_str("b,bid,p,0,1,1,\n");
    }
    let e = err(&csv, "big.csv");
    assert!(
        e.starts_with(&format!(
            "big.csv:{}: more than {MAX_ORDERS} orders",
            MAX_ORDERS + 2
        )),
        "{e}"
    );
}

#[test]
fn errors_are_market_errors_with_the_file_and_location() {
    match parse_orders("id\n", "x.csv").unwrap_err() {
        MarketError::OrderFile { file, location, .. } => {
            assert_eq!(file, "x.csv");
            assert_eq!(location, "1");
        }
        other => panic!("unexpected error {other:?}"),
    }
}

const TOKENS: [&str; 16] = [
    "nan",
    "inf",
    "-1e300",
    "1e308",
    "1e-300",
    "0",
    "-1",
    "4294967296",
    "18446744073709551616",
    "",
    ",",
    "\n",
    "\"",
    "[",
    "{",
    "\u{feff}",
];

fn mutate(seed: &str, edits: &[(f64, usize, usize)]) -> String {
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
        s.replace_range(i..j, TOKENS.get(token).copied().unwrap_or(&long));
    }
    s
}

/// Parse, and when the book parses, clear it: an error is fine, a panic is not, and no error
/// shows more than 80 characters of a field.
fn survive(text: &str, name: &str) {
    match parse_orders(text, name) {
        Ok(orders) => {
            let _ = clear(&orders, &ClearingConfig::default());
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains(&"x".repeat(100)), "echoed content: {text}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_hostile_edits(
        json in any::<bool>(),
        edits in prop::collection::vec((0.0..1.0f64, 0..TOKENS.len() + 1, 0usize..12), 1..5),
    ) {
        let (seed, name) = if json { (JSON, "b.json") } else { (CSV, "b.csv") };
        survive(&mutate(seed, &edits), name);
    }

    #[test]
    fn never_panics_on_random_text(text in "[ -~\n\t\u{e9}]{0,400}", json in any::<bool>()) {
        survive(&text, if json { "r.json" } else { "r.csv" });
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        survive(&text, "a.csv");
        survive(&text, "a.json");
    }
}
