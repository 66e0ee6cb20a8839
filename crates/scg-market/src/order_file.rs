//! Order books from text: the CSV and JSON formats `scg market clear` reads.
//!
//! CSV (header required, any column order; `renewable_only` and `device` optional):
//! `id,side,prosumer,interval,energy_wh,price_eur_per_mwh,source` — `side` is `bid` or `offer`,
//! `source` is `pv`, `wind`, `v2g`, `battery` or empty. JSON: an array of objects with the
//! same keys (`source`, `device`, `renewable_only` may be omitted or null; numbers and strings
//! are both accepted). [`OrderFormat::detect`] picks JSON for a `.json` name or a leading `[`.
//!
//! This module turns text the caller has read into [`Order`]s; it never opens a file. Every
//! error is a [`MarketError::OrderFile`] naming the file, the line (and for JSON the item and
//! key), what was found (at most 80 characters of it) and what was expected; no input makes it
//! panic. Sizes a user controls are bounded: at most [`MAX_ORDERS`] orders, ids and names of at
//! most [`MAX_NAME_CHARS`] characters, at most [`MAX_ORDER_ENERGY_WH`] per order (so that the
//! sum of a whole book fits an `i64`). The book's consistency (unique ids, self-trades, …) is
//! checked by [`validate_orders`](crate::validate_orders) when it is cleared.

use crate::{MarketError, Order, Price, Side, Source};
use scg_model::bounds::excerpt;
use scg_units::Wh;
use serde::de::{SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// The most orders one file may hold (a year of 15-minute intervals for ~30 members, each
/// with a bid and an offer); a larger book is refused before it is built.
pub const MAX_ORDERS: usize = 1_000_000;
/// The longest id, prosumer or device name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// The most energy one order may carry: 1 TWh. [`MAX_ORDERS`] such orders still sum within
/// an `i64` of Wh.
pub const MAX_ORDER_ENERGY_WH: i64 = 1_000_000_000_000;

/// The required columns (CSV) or keys (JSON), in the documented order.
pub const COLUMNS: [&str; 7] = [
    "id",
    "side",
    "prosumer",
    "interval",
    "energy_wh",
    "price_eur_per_mwh",
    "source",
];

/// The two order-book formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFormat {
    Csv,
    Json,
}

impl OrderFormat {
    /// JSON when the file name ends in `.json` (any case) or the text starts with `[`
    /// (after white space); CSV otherwise.
    pub fn detect(file_name: &str, text: &str) -> Self {
        let json_name = file_name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("json"));
        if json_name || text.trim_start().starts_with('[') {
            Self::Json
        } else {
            Self::Csv
        }
    }
}

/// Parse an order book; the format is chosen by [`OrderFormat::detect`]. `file_name` is only
/// used to name the file in errors (and to detect the format).
pub fn parse_orders(text: &str, file_name: &str) -> Result<Vec<Order>, MarketError> {
    match OrderFormat::detect(file_name, text) {
        OrderFormat::Csv => parse_orders_csv(text, file_name),
        OrderFormat::Json => parse_orders_json(text, file_name),
    }
}

fn file_error(file: &str, location: impl Into<String>, message: impl Into<String>) -> MarketError {
    MarketError::OrderFile {
        file: file.to_owned(),
        location: location.into(),
        message: message.into(),
    }
}

/// The text fields of one order, before they are checked.
#[derive(Default)]
struct RawOrder<'a> {
    id: &'a str,
    side: &'a str,
    prosumer: &'a str,
    interval: &'a str,
    energy_wh: &'a str,
    price: &'a str,
    source: &'a str,
    device: &'a str,
    renewable_only: &'a str,
}

fn name_field(field: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "{field}: expected at most {MAX_NAME_CHARS} characters, got {:?}",
            excerpt(value)
        ));
    }
    Ok(value.to_owned())
}

fn parse_side(text: &str) -> Result<Side, String> {
    match text.trim() {
        "bid" => Ok(Side::Bid),
        "offer" => Ok(Side::Offer),
        other => Err(format!(
            "side: expected bid or offer, got {:?}",
            excerpt(other)
        )),
    }
}

fn parse_energy(text: &str) -> Result<Wh, String> {
    let expected = || {
        format!(
            "energy_wh: expected an integer number of Wh between 1 and {MAX_ORDER_ENERGY_WH}, \
             got {:?}",
            excerpt(text.trim())
        )
    };
    let energy: i64 = text.trim().parse().map_err(|_| expected())?;
    if !(1..=MAX_ORDER_ENERGY_WH).contains(&energy) {
        return Err(expected());
    }
    Ok(Wh(energy))
}

fn parse_price(text: &str) -> Result<Price, String> {
    let value: f64 = text.trim().parse().map_err(|_| {
        format!(
            "price_eur_per_mwh: expected a number, got {:?}",
            excerpt(text.trim())
        )
    })?;
    Price::from_eur_per_mwh(value).map_err(|e| format!("price_eur_per_mwh: {e}"))
}

fn parse_source(text: &str) -> Result<Option<Source>, String> {
    match text.trim() {
        "" => Ok(None),
        s => s.parse::<Source>().map(Some).map_err(|_| {
            format!(
                "source: expected pv, wind, v2g, battery or empty, got {:?}",
                excerpt(s)
            )
        }),
    }
}

fn parse_flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" => Ok(false),
        "true" | "1" | "yes" => Ok(true),
        _ => Err(format!(
            "renewable_only: expected true or false, got {:?}",
            excerpt(text.trim())
        )),
    }
}

fn build(raw: &RawOrder<'_>) -> Result<Order, String> {
    let interval: u32 = raw.interval.trim().parse().map_err(|_| {
        format!(
            "interval: expected an integer between 0 and {}, got {:?}",
            u32::MAX,
            excerpt(raw.interval.trim())
        )
    })?;
    let device = name_field("device", raw.device)?;
    Ok(Order {
        id: name_field("id", raw.id)?,
        side: parse_side(raw.side)?,
        prosumer: name_field("prosumer", raw.prosumer)?,
        interval,
        energy_wh: parse_energy(raw.energy_wh)?,
        price: parse_price(raw.price)?,
        source: parse_source(raw.source)?,
        device: (!device.is_empty()).then_some(device),
        renewable_only: parse_flag(raw.renewable_only)?,
    })
}

fn too_many(file: &str, location: impl Into<String>) -> MarketError {
    file_error(
        file,
        location,
        format!("more than {MAX_ORDERS} orders; split the book into several files"),
    )
}

/// Parse the CSV format (see the module docs).
pub fn parse_orders_csv(text: &str, file_name: &str) -> Result<Vec<Order>, MarketError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| file_error(file_name, "1", format!("reading the header: {e}")))?
        .clone();
    let col = |c: &str| headers.iter().position(|h| h == c);
    let mut idx = [0usize; COLUMNS.len()];
    for (k, c) in COLUMNS.iter().enumerate() {
        idx[k] = col(c).ok_or_else(|| {
            file_error(
                file_name,
                "1",
                format!(
                    "missing column {c:?}; expected the header {}",
                    COLUMNS.join(",")
                ),
            )
        })?;
    }
    let (device_col, renewable_col) = (col("device"), col("renewable_only"));
    let mut orders = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line().to_string();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(file_error(file_name, line, malformed_csv(&e))),
        }
        // The record's own position: a quoted field may span lines.
        let line = record.position().map_or(line, |p| p.line().to_string());
        if orders.len() == MAX_ORDERS {
            return Err(too_many(file_name, line));
        }
        if record.len() != headers.len() {
            return Err(file_error(
                file_name,
                line,
                format!(
                    "expected {} fields as in the header, got {}",
                    headers.len(),
                    record.len()
                ),
            ));
        }
        let get = |i: usize| record.get(i).unwrap_or("");
        let raw = RawOrder {
            id: get(idx[0]),
            side: get(idx[1]),
            prosumer: get(idx[2]),
            interval: get(idx[3]),
            energy_wh: get(idx[4]),
            price: get(idx[5]),
            source: get(idx[6]),
            device: device_col.map_or("", get),
            renewable_only: renewable_col.map_or("", get),
        };
        orders.push(build(&raw).map_err(|e| file_error(file_name, line, e))?);
    }
    Ok(orders)
}

/// A CSV reader error without the reader's own position text (the caller names the line).
fn malformed_csv(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "malformed CSV row: not valid UTF-8".to_owned(),
        _ => format!("malformed CSV row: {}", excerpt(&e.to_string())),
    }
}

/// The items of a JSON array, kept as borrowed raw text, refused past [`MAX_ORDERS`] before
/// more memory is taken.
struct BoundedItems<'a>(Vec<&'a RawValue>);

impl<'de> serde::Deserialize<'de> for BoundedItems<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = BoundedItems<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a JSON array of order objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    if items.len() == MAX_ORDERS {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_ORDERS} orders; split the book into several files"
                        )));
                    }
                    items.push(item);
                }
                Ok(BoundedItems(items))
            }
        }
        deserializer.deserialize_seq(ItemsVisitor)
    }
}

/// The 1-based line of `part` inside `text` (`part` is a slice of `text`).
fn line_of(text: &str, part: &str) -> usize {
    let offset = (part.as_ptr() as usize)
        .saturating_sub(text.as_ptr() as usize)
        .min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A JSON syntax or shape error at its line (and column when serde_json knows it), with
/// serde_json's message (which says what was found and expected) without its own position.
fn json_syntax_error(file_name: &str, e: &serde_json::Error) -> MarketError {
    let location = match e.column() {
        0 => e.line().to_string(),
        c => format!("{}:{c}", e.line()),
    };
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    file_error(file_name, location, excerpt(message))
}

/// Parse the JSON format (see the module docs).
pub fn parse_orders_json(text: &str, file_name: &str) -> Result<Vec<Order>, MarketError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let items = serde::Deserialize::deserialize(&mut de)
        .and_then(|items: BoundedItems<'_>| de.end().map(|()| items))
        .map_err(|e| json_syntax_error(file_name, &e))?;
    let mut orders = Vec::with_capacity(items.0.len());
    for (k, item) in items.0.iter().enumerate() {
        let location = format!("{} [{k}]", line_of(text, item.get()));
        let obj: Map<String, Value> = serde_json::from_str(item.get()).map_err(|_| {
            file_error(
                file_name,
                location.clone(),
                format!("expected an object, got {:?}", excerpt(item.get())),
            )
        })?;
        orders.push(json_order(&obj).map_err(|e| file_error(file_name, location, e))?);
    }
    Ok(orders)
}

/// One JSON object as an order: every value goes through the same text parser as CSV.
fn json_order(obj: &Map<String, Value>) -> Result<Order, String> {
    for key in &COLUMNS[..6] {
        if !obj.contains_key(*key) {
            return Err(format!(
                "missing key {key:?}; expected the keys {}",
                COLUMNS.join(", ")
            ));
        }
    }
    let field = |key: &str| -> Result<String, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::Bool(b)) => Ok(b.to_string()),
            Some(other) => Err(format!(
                "{key}: expected a string or number, got {}",
                excerpt(&other.to_string())
            )),
        }
    };
    let values: Vec<String> = [
        "id",
        "side",
        "prosumer",
        "interval",
        "energy_wh",
        "price_eur_per_mwh",
        "source",
        "device",
        "renewable_only",
    ]
    .iter()
    .map(|k| field(k))
    .collect::<Result<_, _>>()?;
    build(&RawOrder {
        id: &values[0],
        side: &values[1],
        prosumer: &values[2],
        interval: &values[3],
        energy_wh: &values[4],
        price: &values[5],
        source: &values[6],
        device: &values[7],
        renewable_only: &values[8],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_detected_by_name_or_leading_bracket() {
        assert_eq!(OrderFormat::detect("a.JSON", "id"), OrderFormat::Json);
        assert_eq!(OrderFormat::detect("a.txt", "  [ ]"), OrderFormat::Json);
        assert_eq!(OrderFormat::detect("a.csv", "id,side"), OrderFormat::Csv);
        assert_eq!(OrderFormat::detect("json", "id"), OrderFormat::Csv);
    }

    #[test]
    fn line_of_counts_newlines_before_the_slice() {
        let text = "[\n {\"a\":1},\n {\"b\":2}\n]";
        let at = text.find("{\"b\"").unwrap_or(0);
        assert_eq!(line_of(text, &text[at..at + 7]), 3);
        assert_eq!(line_of(text, text), 1);
    }
}
