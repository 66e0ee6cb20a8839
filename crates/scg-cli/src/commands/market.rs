//! `scg market clear`: clear a book of community orders from a CSV or JSON file.
//!
//! Input (CSV, header required, extra columns `renewable_only` and `device` optional):
//! `id,side,prosumer,interval,energy_wh,price_eur_per_mwh,source` — `side` is `bid` or `offer`,
//! `source` is `pv`, `wind`, `v2g`, `battery` or empty. Or a JSON array of objects with the
//! same keys (`source` may be omitted or null). The format is chosen by the `.json` extension
//! or a leading `[`.
//!
//! Output with `--json`: `{"mechanism", "intervals": [{"interval", "price_eur_per_mwh",
//! "volume_wh", …}], "trades": [{"id", "bid", "offer", "buyer", "seller", "interval",
//! "energy_wh", "price_eur_per_mwh", …}]}`; without it, readable tables.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args as ClapArgs, Subcommand};
use scg_market::{
    ClearingConfig, GridCounterpart, GridFee, MarketOutcome, Mechanism, Order, Price, Side, Source,
    clear,
};
use scg_model::bounds::excerpt;
use scg_units::Wh;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Community market commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Clear a book of bids and offers (CSV or JSON) and print the trades.
    Clear(ClearArgs),
}

#[derive(Debug, ClapArgs)]
pub struct ClearArgs {
    /// The orders: CSV with header `id,side,prosumer,interval,energy_wh,price_eur_per_mwh,source`
    /// or a JSON array of objects with those keys.
    #[arg(long, value_name = "FILE")]
    pub orders: PathBuf,
    /// pay_as_clear (uniform price), pay_as_bid (continuous) or pay_as_offer (one-sided), as
    /// in the scenario; the hyphenated forms (pay-as-clear, …) are accepted too.
    #[arg(long, default_value = "pay_as_clear", value_parser = parse_mechanism)]
    pub mechanism: Mechanism,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// The grid sells to the community at this price (retail); unmatched bids at or above it
    /// buy from the grid.
    #[arg(long, value_name = "X")]
    pub grid_buy_eur_per_mwh: Option<f64>,
    /// The grid buys from the community at this price (feed-in); unmatched offers at or below
    /// it sell to the grid.
    #[arg(long, value_name = "Y")]
    pub grid_sell_eur_per_mwh: Option<f64>,
    /// The grid is at peak: offers at or below the feed-in price go to the grid first.
    #[arg(long, requires = "grid_sell_eur_per_mwh")]
    pub peak: bool,
    /// A constant grid fee per P2P MWh, paid by the buyer.
    #[arg(long, value_name = "EUR", conflicts_with = "fee_percent")]
    pub fee_eur_per_mwh: Option<f64>,
    /// A grid fee as a percentage of the seller's price, paid by the buyer.
    #[arg(long, value_name = "PCT")]
    pub fee_percent: Option<f64>,
}

/// Run a market subcommand.
pub fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Clear(args) => run_clear(args),
    }
}

fn run_clear(args: ClearArgs) -> Result<ExitCode> {
    let text = crate::read::read_text(&args.orders, &crate::read::Origin::CommandLine)?;
    let name = args.orders.display().to_string();
    let orders = parse_orders(&text, &name, &args.orders)?;
    let fee = match (args.fee_eur_per_mwh, args.fee_percent) {
        (Some(c), _) => {
            if c < 0.0 {
                bail!("--fee-eur-per-mwh must be >= 0, got {c}");
            }
            GridFee::Constant(Price::from_eur_per_mwh(c)?)
        }
        (None, Some(pct)) => {
            if !(0.0..=1000.0).contains(&pct) {
                bail!("--fee-percent must be within 0..=1000, got {pct}");
            }
            GridFee::Percent {
                basis_points: (pct * 100.0).round() as u32,
            }
        }
        (None, None) => GridFee::None,
    };
    let price = |v: Option<f64>, flag: &str| -> Result<Option<Price>> {
        v.map(|p| Price::from_eur_per_mwh(p).with_context(|| format!("--{flag}")))
            .transpose()
    };
    let config = ClearingConfig {
        mechanism: args.mechanism,
        fee,
        grid: GridCounterpart {
            sells_at: price(args.grid_buy_eur_per_mwh, "grid-buy-eur-per-mwh")?,
            buys_at: price(args.grid_sell_eur_per_mwh, "grid-sell-eur-per-mwh")?,
            peak: args.peak,
        },
    };
    let outcome = clear(&orders, &config).with_context(|| format!("clearing {name}"))?;
    if args.json {
        let doc = to_json(&outcome, args.mechanism);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_tables(&outcome, args.mechanism);
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON document of a cleared book (shape documented in the module docs).
/// `--mechanism`: the scenario's snake_case names and scg-market's hyphenated ones.
fn parse_mechanism(s: &str) -> std::result::Result<Mechanism, String> {
    s.replace('_', "-").parse::<Mechanism>().map_err(|_| {
        format!("unknown mechanism {s:?}: expected pay_as_clear, pay_as_bid or pay_as_offer")
    })
}

/// The documented (scenario) name of a mechanism: `pay_as_clear`, `pay_as_bid`, `pay_as_offer`.
fn mechanism_name(m: Mechanism) -> String {
    m.to_string().replace('-', "_")
}

pub fn to_json(outcome: &MarketOutcome, mechanism: Mechanism) -> Value {
    let opt_price = |p: Option<Price>| p.map_or(Value::Null, |p| json!(p.eur_per_mwh()));
    let intervals: Vec<Value> = outcome
        .intervals
        .iter()
        .map(|i| {
            json!({
                "interval": i.interval,
                "price_eur_per_mwh": opt_price(i.price),
                "volume_wh": i.volume_wh.0,
                "green_price_eur_per_mwh": opt_price(i.green_price),
                "clearing_range_eur_per_mwh": i.clearing_range.map(|(lo, hi)| json!([lo.eur_per_mwh(), hi.eur_per_mwh()])),
                "grid_import_wh": i.grid_import_wh.0,
                "grid_export_wh": i.grid_export_wh.0,
                "fees_eur": i.fees.eur(),
                "trades": i.trades.len(),
            })
        })
        .collect();
    let trades: Vec<Value> = outcome
        .trades()
        .map(|t| {
            json!({
                "id": t.id(),
                "bid": t.bid(),
                "offer": t.offer(),
                "buyer": t.buyer(),
                "seller": t.seller(),
                "interval": t.interval(),
                "energy_wh": t.energy_wh().0,
                "price_eur_per_mwh": t.price().eur_per_mwh(),
                "fee_eur_per_mwh": t.fee().eur_per_mwh(),
                "buyer_price_eur_per_mwh": t.buyer_price().eur_per_mwh(),
                "kind": t.kind(),
                "source": t.source().map(Source::as_str),
                "seller_receives_nano_eur": t.seller_receives().0.to_string(),
                "buyer_pays_nano_eur": t.buyer_pays().0.to_string(),
            })
        })
        .collect();
    json!({
        "mechanism": mechanism_name(mechanism),
        "intervals": intervals,
        "trades": trades,
    })
}

fn print_tables(outcome: &MarketOutcome, mechanism: Mechanism) {
    println!("mechanism: {}", mechanism_name(mechanism));
    println!(
        "{:>8}  {:>14}  {:>12}  {:>12}  {:>12}  {:>10}",
        "interval", "price EUR/MWh", "p2p Wh", "grid in Wh", "grid out Wh", "fees EUR"
    );
    for i in &outcome.intervals {
        let price = i
            .price
            .map_or_else(|| "-".to_owned(), |p| format!("{:.3}", p.eur_per_mwh()));
        println!(
            "{:>8}  {:>14}  {:>12}  {:>12}  {:>12}  {:>10.6}",
            i.interval,
            price,
            i.volume_wh.0,
            i.grid_import_wh.0,
            i.grid_export_wh.0,
            i.fees.eur()
        );
    }
    println!();
    println!(
        "{:<16}  {:>8}  {:<12} {:<12} {:<12} {:<12} {:>10}  {:>10}  {:>8}",
        "trade", "interval", "buyer", "seller", "bid", "offer", "Wh", "EUR/MWh", "fee"
    );
    for t in outcome.trades() {
        println!(
            "{:<16}  {:>8}  {:<12} {:<12} {:<12} {:<12} {:>10}  {:>10.3}  {:>8.3}",
            t.id(),
            t.interval(),
            t.buyer(),
            t.seller(),
            t.bid(),
            t.offer(),
            t.energy_wh().0,
            t.price().eur_per_mwh(),
            t.fee().eur_per_mwh()
        );
    }
}

/// Parse orders from CSV or JSON text (see the module docs).
pub fn parse_orders(text: &str, name: &str, path: &Path) -> Result<Vec<Order>> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('[');
    if is_json {
        parse_json(text, name)
    } else {
        parse_csv(text, name)
    }
}

const COLUMNS: [&str; 7] = [
    "id",
    "side",
    "prosumer",
    "interval",
    "energy_wh",
    "price_eur_per_mwh",
    "source",
];

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

fn build(raw: &RawOrder<'_>) -> std::result::Result<Order, String> {
    let side = match raw.side.trim() {
        "bid" => Side::Bid,
        "offer" => Side::Offer,
        other => {
            return Err(format!(
                "side: expected bid or offer, got {:?}",
                excerpt(other)
            ));
        }
    };
    let interval: u32 = raw.interval.trim().parse().map_err(|_| {
        format!(
            "interval: expected an integer >= 0, got {:?}",
            excerpt(raw.interval)
        )
    })?;
    let energy: i64 = raw.energy_wh.trim().parse().map_err(|_| {
        format!(
            "energy_wh: expected an integer number of Wh, got {:?}",
            excerpt(raw.energy_wh)
        )
    })?;
    let price_f: f64 = raw.price.trim().parse().map_err(|_| {
        format!(
            "price_eur_per_mwh: expected a number, got {:?}",
            excerpt(raw.price)
        )
    })?;
    let price = Price::from_eur_per_mwh(price_f).map_err(|e| e.to_string())?;
    let source = match raw.source.trim() {
        "" => None,
        s => Some(
            s.parse::<Source>()
                .map_err(|e| format!("source: {}", excerpt(&e.to_string())))?,
        ),
    };
    let renewable_only = match raw.renewable_only.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" => false,
        "true" | "1" | "yes" => true,
        other => {
            return Err(format!(
                "renewable_only: expected true or false, got {:?}",
                excerpt(other)
            ));
        }
    };
    let device = (!raw.device.trim().is_empty()).then(|| raw.device.trim().to_owned());
    Ok(Order {
        id: raw.id.trim().to_owned(),
        side,
        prosumer: raw.prosumer.trim().to_owned(),
        interval,
        energy_wh: Wh(energy),
        price,
        source,
        device,
        renewable_only,
    })
}

fn parse_csv(text: &str, name: &str) -> Result<Vec<Order>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .with_context(|| format!("{name}:1: reading the header"))?
        .clone();
    let col = |c: &str| headers.iter().position(|h| h == c);
    let mut idx = [0usize; 7];
    for (k, c) in COLUMNS.iter().enumerate() {
        idx[k] = col(c).ok_or_else(|| {
            anyhow!(
                "{name}:1: missing column {c:?}; expected the header {}",
                COLUMNS.join(",")
            )
        })?;
    }
    let device_col = col("device");
    let renewable_col = col("renewable_only");
    let mut orders = Vec::new();
    for (k, record) in reader.records().enumerate() {
        let line = k + 2;
        let record = record.with_context(|| format!("{name}:{line}: malformed CSV row"))?;
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
        orders.push(build(&raw).map_err(|e| anyhow!("{name}:{line}: {e}"))?);
    }
    Ok(orders)
}

fn parse_json(text: &str, name: &str) -> Result<Vec<Order>> {
    let value: Value =
        serde_json::from_str(text).with_context(|| format!("{name}: not valid JSON"))?;
    let items = value
        .as_array()
        .ok_or_else(|| anyhow!("{name}: expected a JSON array of order objects"))?;
    let mut orders = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let obj = item
            .as_object()
            .ok_or_else(|| anyhow!("{name}: [{k}]: expected an object"))?;
        // Numbers and strings are both accepted and go through the same text parser.
        let field = |key: &str| -> Result<String> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                Some(Value::Bool(b)) => Ok(b.to_string()),
                Some(other) => {
                    bail!(
                        "{name}: [{k}].{key}: expected a string or number, got {}",
                        excerpt(&other.to_string())
                    )
                }
            }
        };
        for key in &COLUMNS[..6] {
            if !obj.contains_key(*key) {
                bail!("{name}: [{k}]: missing key {key:?}");
            }
        }
        let (id, side, prosumer, interval, energy, price, source, device, renewable) = (
            field("id")?,
            field("side")?,
            field("prosumer")?,
            field("interval")?,
            field("energy_wh")?,
            field("price_eur_per_mwh")?,
            field("source")?,
            field("device")?,
            field("renewable_only")?,
        );
        let raw = RawOrder {
            id: &id,
            side: &side,
            prosumer: &prosumer,
            interval: &interval,
            energy_wh: &energy,
            price: &price,
            source: &source,
            device: &device,
            renewable_only: &renewable,
        };
        orders
            .push(build(&raw).map_err(|e| anyhow!("{name}: [{k}] (id {:?}): {e}", excerpt(&id)))?);
    }
    Ok(orders)
}
