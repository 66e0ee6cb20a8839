//! `scg vpp bids`: the community's day of VPP bids — MGP (D-1), MI-A1/A2/A3 re-bids, MSD/UVAM
//! offers — with the forecast they came from and the imbalance left at delivery.
//!
//! The forecast (documented simplification until the simulation produces real forecasts):
//! - loads come from `scg-sim`'s year at 15-minute steps (the scenario's model year, or the
//!   day's own year when it is not a leap year); the **day-ahead** forecast is each prosumer's
//!   unperturbed profile scaled like its load (HOMER baseline × scale factor), and the
//!   **actual** load is the synthesized load with HOMER's random variability (seeded);
//! - the MI forecasts close in on the actual load: MI-A1, MI-A2 and MI-A3 see 50 %, 75 % and
//!   90 % of the day-ahead error;
//! - the price forecast is the GME file's zonal prices of the delivery day, interval by interval
//!   in elapsed time from local midnight (23/25-hour days have 92/100 quarter hours; an hourly
//!   file's price holds for its four quarters); a file that does not hold the day is refused;
//!   the same prices stand in for the MGP clearing that decides which steps are accepted;
//! - flexibility comes from `--flex FILE.json` (an array of flex assets) or, by default, from
//!   shiftable smart-home loads: 10 % of each prosumer's mean forecast power up and down, with
//!   10 % of its daily energy as budget each way.
//!
//! Output files in `--out`: `bids.json` (everything), `bids.csv` (one row per bid step:
//! `session,gate_closure,period,delivery_start,delivery_end,zone,direction,quantity_mwh,price_eur_per_mwh`),
//! `forecast.csv` and `imbalance.csv`.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args as ClapArgs, Subcommand};
use scg_market::Price;
use scg_market::vpp::{
    Bid, BidPolicy, DeliveryDay, Direction, FlexAsset, FlexKind, accept, aggregate, imbalance,
    mgp_bids, mi_rebids, msd_offers,
};
use scg_model::ModelYear;
use scg_resource::gme::{GmeDate, parse_prices};
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// VPP commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a day's MGP bids, MI re-bids and MSD offers from forecasts and GME prices.
    Bids(BidsArgs),
}

#[derive(Debug, ClapArgs)]
pub struct BidsArgs {
    /// Scenario file (default: the built-in Bergamo community).
    pub scenario: Option<PathBuf>,
    /// Delivery day, YYYY-MM-DD.
    #[arg(long)]
    pub day: String,
    /// GME price file (`…MGPPrezzi.xml`, hourly or 15-minute) used as price forecast.
    #[arg(long, value_name = "GME.xml")]
    pub prices: PathBuf,
    /// Output directory; created if missing. A re-run replaces it whole, atomically.
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    /// GME zone whose prices apply (Bergamo is NORD).
    #[arg(long, default_value = "NORD")]
    pub zone: String,
    /// Flexible assets as a JSON array (id, kind, up_kw, down_kw, up_energy_kwh,
    /// down_energy_kwh, optional window [from, to) in periods).
    #[arg(long, value_name = "FILE")]
    pub flex: Option<PathBuf>,
    /// Number of identical communities aggregated into one UVAM.
    #[arg(long, default_value_t = 1)]
    pub communities: u32,
    /// Seed of the synthetic loads.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Imbalance penalty spread around the zonal price (0.1 = ±10 %).
    #[arg(long, default_value_t = 0.1)]
    pub imbalance_spread: f64,
    /// Refuse a scenario whose estimated peak memory (of its 15-minute year) is above this
    /// many MiB (as `simulate`).
    #[arg(long, default_value_t = crate::commands::simulate::DEFAULT_MEMORY_BUDGET_MIB)]
    pub memory_budget_mib: u64,
}

/// Run a VPP subcommand.
pub fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Bids(args) => run_bids(args),
    }
}

fn period_wh(kw: f64) -> i64 {
    (kw * 0.25).round() as i64 * 1000
}

fn run_bids(args: BidsArgs) -> Result<ExitCode> {
    let date = GmeDate::parse(&args.day)
        .ok_or_else(|| anyhow!("--day: expected a date YYYY-MM-DD, got {:?}", args.day))?;
    let day = DeliveryDay::from_ymd(date.year, date.month, date.day)?;
    let n = day.periods() as usize;
    let mut output = crate::output::OutputDir::begin(&args.out)?;
    let log = crate::output::InputLog::default();
    log.record(&args.prices);
    log.record_all(args.scenario.as_deref());
    log.record_all(args.flex.as_deref());

    // Prices.
    let text = crate::read::read_text(&args.prices, &crate::read::Origin::CommandLine)?;
    let prices_name = args.prices.display().to_string();
    let gme = parse_prices(&text, &prices_name)?;
    // The file must hold the delivery day; GME counts each day's intervals in elapsed time
    // from local midnight (92/100 quarters on 23/25-hour days), as the delivery day does.
    let series = gme.finest_for(date).ok_or_else(|| {
        let held: Vec<String> = gme.dates().iter().map(|d| d.to_string()).collect();
        anyhow!(
            "{prices_name}: holds no prices for {date} (--day); it holds {}",
            if held.is_empty() {
                "no day".to_owned()
            } else {
                held.join(", ")
            }
        )
    })?;
    let zone_prices = series
        .quarter_hour_prices(&args.zone)
        .with_context(|| format!("{prices_name}: zone {}", args.zone))?;
    if zone_prices.len() != n {
        bail!(
            "{prices_name}: {date} has {} quarter-hour prices, the day has {n} periods",
            zone_prices.len()
        );
    }
    let price_forecast: Vec<Price> = zone_prices
        .iter()
        .map(|&v| Price::from_eur_per_mwh(v))
        .collect::<std::result::Result<_, _>>()?;

    // Loads: a year at 15-minute steps, checked as `simulate` checks a run (every field, every
    // file the scenario names, the memory budget) after the adjustment to 15-minute steps.
    let mut loaded = crate::commands::simulate::read_scenario(args.scenario.as_deref())?;
    loaded.scenario.time.step_minutes = 15;
    let leap = (date.year % 4 == 0 && date.year % 100 != 0) || date.year % 400 == 0;
    if !leap {
        loaded.scenario.time.model_year = ModelYear::Year(date.year);
    }
    let budget = crate::commands::simulate::Budget {
        memory_mib: args.memory_budget_mib,
        ledger: true,
    };
    let run = crate::commands::simulate::check_loaded(&loaded, budget, &log)?;
    let sim = scg_sim::simulate(
        &loaded.scenario,
        &run.assets,
        &run.inputs,
        args.seed,
        &mut |_, _| {},
    )
    .context("simulating the scenario")?;
    let steps = sim.grid.len() as i64;
    let day_index = i64::from(day.date_ordinal0()).min(364);
    let step_of = |p: u32| -> usize {
        (day_index * 96 + day.standard_minutes(p).div_euclid(15)).clamp(0, steps - 1) as usize
    };
    let mut dayahead_kw = vec![0.0; n];
    let mut actual_kw = vec![0.0; n];
    for pr in &sim.prosumers {
        for (i, p) in (1..=day.periods()).enumerate() {
            let s = step_of(p);
            dayahead_kw[i] += pr.load.baseline_kw[s] * pr.load.scale_factor;
            actual_kw[i] += pr.load.load_kw[s];
        }
    }
    let blend = |w: f64| -> Vec<f64> {
        dayahead_kw
            .iter()
            .zip(&actual_kw)
            .map(|(d, a)| d + w * (a - d))
            .collect()
    };
    let mi_forecasts = [blend(0.5), blend(0.75), blend(0.9)];

    // Flexibility.
    let assets: Vec<FlexAsset> = match &args.flex {
        Some(path) => {
            let text = crate::read::read_text(path, &crate::read::Origin::CommandLine)?;
            serde_json::from_str(&text).with_context(|| {
                format!("{}: expected a JSON array of flex assets", path.display())
            })?
        }
        None => sim
            .prosumers
            .iter()
            .map(|pr| {
                let day_kw: Vec<f64> = (1..=day.periods())
                    .map(|p| pr.load.baseline_kw[step_of(p)] * pr.load.scale_factor)
                    .collect();
                let mean_kw = day_kw.iter().sum::<f64>() / day_kw.len().max(1) as f64;
                let daily_kwh = day_kw.iter().sum::<f64>() * 0.25;
                FlexAsset {
                    id: format!("{}/shiftable", pr.id),
                    kind: FlexKind::ShiftableLoad,
                    up_kw: 0.1 * mean_kw,
                    down_kw: 0.1 * mean_kw,
                    up_energy_kwh: 0.1 * daily_kwh,
                    down_energy_kwh: 0.1 * daily_kwh,
                    window: None,
                }
            })
            .collect(),
    };
    if args.communities == 0 {
        bail!("--communities must be >= 1");
    }
    let policy = BidPolicy {
        communities: args.communities,
        ..BidPolicy::default()
    };
    let (positions, energy) = aggregate(&dayahead_kw, &assets)?;
    let mgp = mgp_bids(
        &day,
        &args.zone,
        &positions,
        energy,
        &price_forecast,
        &policy,
    )?;
    let mgp_schedule = accept(&mgp, &price_forecast)?;
    let (mi, final_schedule) = mi_rebids(
        &day,
        &args.zone,
        &mgp_schedule,
        &dayahead_kw,
        &mi_forecasts,
        &policy,
    )?;
    let (msd, uvam) = msd_offers(
        &day,
        &args.zone,
        &positions,
        energy,
        &price_forecast,
        &policy,
    )?;
    // Delivered: the actual load plus the flexibility the MGP accepted, executed as scheduled.
    let delivered: Vec<i64> = (0..n)
        .map(|i| period_wh(actual_kw[i]) + mgp_schedule[i] - period_wh(dayahead_kw[i]))
        .collect();
    let imb = imbalance(
        &final_schedule,
        &delivered,
        &price_forecast,
        args.imbalance_spread,
    )?;

    // Outputs.
    output.check_inputs(&log.paths())?;
    let write = |name: &str, text: &str| output.write(name, text.as_bytes());
    let mut csv = String::from(
        "session,gate_closure,period,delivery_start,delivery_end,zone,direction,quantity_mwh,price_eur_per_mwh\n",
    );
    for b in mgp.iter().chain(&mi).chain(&msd) {
        for s in &b.steps {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{:.3},{:.3}",
                b.session.name(),
                b.gate_closure,
                b.period,
                b.delivery_start,
                b.delivery_end,
                b.zone,
                direction_name(s.direction),
                s.quantity_wh as f64 / 1e6,
                s.price.eur_per_mwh()
            );
        }
    }
    write("bids.csv", &csv)?;
    let mut fc = String::from(
        "period,delivery_start,dayahead_kw,mi_a1_kw,mi_a2_kw,mi_a3_kw,actual_kw,up_kw,down_kw,price_forecast_eur_per_mwh\n",
    );
    for i in 0..n {
        let _ = writeln!(
            fc,
            "{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}",
            i + 1,
            day.period_start(i as u32 + 1).to_rfc3339(),
            dayahead_kw[i],
            mi_forecasts[0][i],
            mi_forecasts[1][i],
            mi_forecasts[2][i],
            actual_kw[i],
            positions[i].up_kw,
            positions[i].down_kw,
            price_forecast[i].eur_per_mwh()
        );
    }
    write("forecast.csv", &fc)?;
    let mut ic = String::from(
        "period,scheduled_mwh,delivered_mwh,imbalance_mwh,price_eur_per_mwh,amount_eur\n",
    );
    for r in &imb {
        let _ = writeln!(
            ic,
            "{},{:.3},{:.3},{:.3},{:.3},{:.9}",
            r.period,
            r.scheduled_wh as f64 / 1e6,
            r.delivered_wh as f64 / 1e6,
            r.imbalance_wh as f64 / 1e6,
            r.price.eur_per_mwh(),
            r.amount.eur()
        );
    }
    write("imbalance.csv", &ic)?;
    let total_imbalance_eur: f64 = imb.iter().map(|r| r.amount.eur()).sum();
    let bids_json = |bids: &[Bid]| -> Vec<serde_json::Value> {
        bids.iter()
            .map(|b| {
                json!({
                    "session": b.session.name(),
                    "gate_closure": b.gate_closure,
                    "period": b.period,
                    "delivery_start": b.delivery_start,
                    "delivery_end": b.delivery_end,
                    "zone": b.zone,
                    "steps": b.steps.iter().map(|s| json!({
                        "direction": direction_name(s.direction),
                        "quantity_mwh": s.quantity_wh as f64 / 1e6,
                        "price_eur_per_mwh": s.price.eur_per_mwh(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    let doc = json!({
        "day": day.date().to_string(),
        "periods": n,
        "zone": args.zone,
        "scenario": loaded.source,
        "prices_file": prices_name,
        "prices_date": series.date.to_string(),
        "seed": args.seed,
        "gate_closures": {
            "MGP": day.gate_closure(scg_market::vpp::Session::Mgp)?.to_rfc3339(),
            "MI-A1": day.gate_closure(scg_market::vpp::Session::MiA1)?.to_rfc3339(),
            "MI-A2": day.gate_closure(scg_market::vpp::Session::MiA2)?.to_rfc3339(),
            "MI-A3": day.gate_closure(scg_market::vpp::Session::MiA3)?.to_rfc3339(),
            "MSD": day.gate_closure(scg_market::vpp::Session::Msd)?.to_rfc3339(),
        },
        "flexibility": {
            "assets": assets,
            "up_energy_kwh": energy.up_kwh,
            "down_energy_kwh": energy.down_kwh,
        },
        "uvam": uvam,
        "mgp": bids_json(&mgp),
        "mi": bids_json(&mi),
        "msd": bids_json(&msd),
        "schedule_after_mgp_mwh": mgp_schedule.iter().map(|&w| w as f64 / 1e6).collect::<Vec<_>>(),
        "schedule_after_mi_mwh": final_schedule.iter().map(|&w| w as f64 / 1e6).collect::<Vec<_>>(),
        "imbalance_eur": total_imbalance_eur,
    });
    write("bids.json", &serde_json::to_string_pretty(&doc)?)?;
    output.commit("vpp bids")?;
    println!(
        "{}: {} periods, {} MGP bids, {} MI re-bids, {} MSD offers; imbalance {:.2} EUR",
        day.date(),
        n,
        mgp.len(),
        mi.len(),
        msd.len(),
        total_imbalance_eur
    );
    println!("UVAM: {}", uvam.note);
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Buy => "buy",
        Direction::Sell => "sell",
        Direction::Up => "up",
        Direction::Down => "down",
    }
}
