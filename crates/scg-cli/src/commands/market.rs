//! `scg market clear`: clear a book of community orders from a CSV or JSON file.
//!
//! Input: the CSV or JSON order book parsed by [`scg_market::order_file`] (formats, bounds and
//! errors are documented there); this command only reads the file, clears and prints.
//!
//! Output with `--json`: `{"mechanism", "intervals": [{"interval", "price_eur_per_mwh",
//! "volume_wh", …}], "trades": [{"id", "bid", "offer", "buyer", "seller", "interval",
//! "energy_wh", "price_eur_per_mwh", …}]}`; without it, readable tables.

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Subcommand};
use scg_market::{
    ClearingConfig, GridCounterpart, GridFee, MarketOutcome, Mechanism, Price, Source, clear,
};
use serde_json::{Value, json};
use std::path::PathBuf;
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
    let orders = scg_market::order_file::parse_orders(&text, &name)?;
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
