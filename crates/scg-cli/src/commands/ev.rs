//! `scg ev evaluate|habits`: replay EV charging sessions (ACN CSV, plain or gzip) under a
//! charging policy, or score the habit learner, and print the metrics.
//!
//! Files are read (and gunzipped) by `crate::read`, bounded; `scg-ev` only sees text.

use anyhow::Context;
use scg_ev::evaluate::{EvaluateParams, Knowledge, Stopwatch, evaluate};
use scg_ev::habits::{HabitParams, evaluate_habits};
use scg_ev::model::{Session, with_v2g_batteries};
use scg_ev::tariff::Tariff;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Replay sessions under a policy and print energy, peak, cost and solve-time metrics.
    Evaluate(EvaluateArgs),
    /// Score the online habit learner (stay and energy forecasts) causally on sessions.
    Habits(HabitsArgs),
}

/// Which sessions to read.
#[derive(Debug, clap::Args)]
pub struct SessionArgs {
    /// ACN-Data CSV file (`.csv` or `.csv.gz`).
    #[arg(long)]
    sessions: PathBuf,
    /// Keep sessions arriving on or after this local date (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Keep sessions arriving before this local date (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    /// Charging power limit of every vehicle/charge point, kW (ACN level 2: 32 A × 208 V).
    #[arg(long, default_value_t = 6.656)]
    max_rate_kw: f64,
}

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    input: SessionArgs,
    /// Policy: uncontrolled, fcfs, edf, llf, round-robin, mpc, offline-optimal.
    #[arg(long)]
    policy: String,
    /// Site (transformer) limit on aggregate power, kW; unconstrained when absent.
    #[arg(long)]
    site_limit_kw: Option<f64>,
    /// Energy tariff: `sce-tou-ev-4` (USD, as Southern California Edison publishes it),
    /// `flat:EUR_PER_MWH` or `tou:0-8=60,8-24=120` (EUR/MWh). Money is reported in the tariff's
    /// currency.
    #[arg(long, default_value = "sce-tou-ev-4")]
    tariff: String,
    /// Demand charge per kW of monthly peak (default: the tariff's own; sce-tou-ev-4: 15.51).
    #[arg(long)]
    demand_charge_eur_per_kw: Option<f64>,
    /// Step length in minutes.
    #[arg(long, default_value_t = 5)]
    step_minutes: u32,
    /// What the policy is told about departure and energy: actual, stated or learned.
    #[arg(long, default_value = "actual")]
    knowledge: String,
    /// Give every vehicle a V2G-capable battery (60 kWh, 20 % at arrival, this discharge kW).
    #[arg(long)]
    v2g_discharge_kw: Option<f64>,
    /// V2G battery wear cost per kWh discharged.
    #[arg(long, default_value_t = 0.05)]
    wear_cost_eur_per_kwh: f64,
    /// MPC: learn from the sessions arriving from this date (YYYY-MM-DD) up to `--from`
    /// (their daily hindsight-lowest peaks and the arrival profile the MPC forecasts from);
    /// they are not replayed or scored.
    #[arg(long, requires = "from")]
    peak_history_from: Option<String>,
    /// MPC: re-plan every step (with move blocking beyond two hours) instead of on events.
    #[arg(long, conflicts_with = "replan_on_events")]
    replan_every_step: bool,
    /// MPC: re-plan only when something changed (an arrival that cannot be added to the kept
    /// plan exactly, a departure other than planned, a price, limit or peak-target change, a
    /// deviation from the plan). The default; the flag is accepted so scripts keep working.
    #[arg(long)]
    replan_on_events: bool,
    /// MPC: quadratic regularisation weight (EUR per kW² per step).
    #[arg(long)]
    regularisation: Option<f64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the JSON to OUT/evaluate.json (a directory, created if missing, as for every
    /// command). Deprecated: a path ending in `.json` is still written as a file, with a warning.
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct HabitsArgs {
    #[command(flatten)]
    input: SessionArgs,
    /// Quantile of stay to plan against.
    #[arg(long, default_value_t = 0.1)]
    stay_quantile: f64,
    /// Quantile of energy to plan against.
    #[arg(long, default_value_t = 0.9)]
    energy_quantile: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Evaluate(args) => run_evaluate(args),
        Command::Habits(args) => run_habits(args),
    }
}

/// Read a session file (gunzipping `.gz`) and apply the date filter.
fn load_sessions(input: &SessionArgs) -> anyhow::Result<Vec<Session>> {
    let path: &Path = &input.sessions;
    // Bounded, gunzipped when it starts with the gzip magic bytes.
    let text = crate::read::read_text(path, &crate::read::Origin::CommandLine)?;
    if !(input.max_rate_kw > 0.0 && input.max_rate_kw.is_finite()) {
        anyhow::bail!("--max-rate-kw must be a positive number");
    }
    let mut sessions = scg_ev::acn::parse_acn_csv(&text, input.max_rate_kw)
        .with_context(|| format!("{}", path.display()))?;
    if let Some(from) = &input.from {
        let m = scg_ev::acn::date_start_min(from).context("--from")?;
        sessions.retain(|s| s.arrival_min >= m);
    }
    if let Some(to) = &input.to {
        let m = scg_ev::acn::date_start_min(to).context("--to")?;
        sessions.retain(|s| s.arrival_min < m);
    }
    if sessions.is_empty() {
        anyhow::bail!("{}: no sessions (after date filter)", path.display());
    }
    Ok(sessions)
}

#[derive(Debug)]
struct WallClock(Instant);

impl Stopwatch for WallClock {
    fn now_ms(&mut self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }
}

fn run_evaluate(args: EvaluateArgs) -> anyhow::Result<ExitCode> {
    let mut sessions = load_sessions(&args.input)?;
    let mut tariff = Tariff::parse(&args.tariff)?;
    if let Some(dc) = args.demand_charge_eur_per_kw {
        anyhow::ensure!(dc >= 0.0, "--demand-charge-eur-per-kw must be >= 0");
        tariff.demand_charge_eur_per_kw = dc;
    }
    if let Some(kw) = args.v2g_discharge_kw {
        anyhow::ensure!(kw > 0.0, "--v2g-discharge-kw must be > 0");
        with_v2g_batteries(&mut sessions, 60.0, kw);
    }
    let mut params = EvaluateParams {
        step_minutes: args.step_minutes,
        site_limit_kw: args.site_limit_kw,
        tariff,
        knowledge: Knowledge::parse(&args.knowledge)?,
        habits: HabitParams::default(),
        ..EvaluateParams::default()
    };
    params.mpc.wear_cost_eur_per_kwh = args.wear_cost_eur_per_kwh;
    // Re-planning on events is the default; `--replan-on-events` only says so explicitly.
    params.mpc.replan_on_events = args.replan_on_events || !args.replan_every_step;
    if let Some(r) = args.regularisation {
        anyhow::ensure!(r >= 0.0 && r.is_finite(), "--regularisation must be >= 0");
        params.mpc.regularisation = r;
    }
    if let Some(from) = &args.peak_history_from {
        let history = load_sessions(&SessionArgs {
            sessions: args.input.sessions.clone(),
            from: Some(from.clone()),
            to: args.input.from.clone(),
            max_rate_kw: args.input.max_rate_kw,
        })
        .context("--peak-history-from")?;
        params.history = history;
    }
    let mut clock = WallClock(Instant::now());
    let report = evaluate(&sessions, &args.policy, &params, &mut clock)?;
    let currency = scg_ev::tariff::currency_of_spec(&args.tariff);
    // The report's money fields are in the tariff's currency: say which.
    let mut doc = serde_json::to_value(&report)?;
    if let Some(map) = doc.as_object_mut() {
        map.insert("currency".into(), currency.into());
    }
    let json = serde_json::to_string_pretty(&doc)?;
    if let Some(out) = &args.out {
        let file = evaluate_output_file(out)?;
        crate::output::write_file_atomically(
            &file,
            format!("{json}\n").as_bytes(),
            std::slice::from_ref(&args.input.sessions),
        )?;
    }
    if args.json {
        println!("{json}");
    } else {
        let r = &report;
        println!(
            "policy {} ({} sessions, {} steps of {} min)",
            r.policy, r.sessions, r.steps, r.step_minutes
        );
        println!(
            "energy delivered {:.1} of {:.1} kWh ({:.2} %), demands met {:.1} %",
            r.energy_delivered_kwh,
            r.energy_requested_kwh,
            r.energy_delivered_pct,
            r.demands_met_pct
        );
        println!(
            "peak {:.1} kW, energy cost {:.2} {currency}, demand charge {:.2} {currency}, total {:.2} {currency}",
            r.peak_kw, r.energy_cost_eur, r.demand_charge_eur, r.total_cost_eur
        );
        println!(
            "V2G {:.1} kWh, degradation {:.2} {currency}, decision time per step median {:.2} ms",
            r.v2g_energy_kwh, r.degradation_cost_eur, r.solve_time_ms_median
        );
        if let Some(n) = r.solves {
            println!(
                "solves {n}, given peak target {:.1} kW",
                params.mpc.peak_target_kw
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `--out` puts evaluate.json: inside the directory; the old file form (a path ending in
/// `.json`) still works for this release, with a deprecation warning.
fn evaluate_output_file(out: &Path) -> anyhow::Result<PathBuf> {
    if out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        && !out.is_dir()
    {
        eprintln!(
            "warning: --out {} names a file; --out is a directory everywhere (this writes {}/evaluate.json). The file form will be removed in the next release.",
            out.display(),
            out.with_extension("").display()
        );
        return Ok(out.to_path_buf());
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    Ok(out.join("evaluate.json"))
}

fn run_habits(args: HabitsArgs) -> anyhow::Result<ExitCode> {
    let sessions = load_sessions(&args.input)?;
    anyhow::ensure!(
        args.stay_quantile > 0.0 && args.stay_quantile < 1.0,
        "--stay-quantile must be in (0, 1)"
    );
    anyhow::ensure!(
        args.energy_quantile > 0.0 && args.energy_quantile < 1.0,
        "--energy-quantile must be in (0, 1)"
    );
    let params = HabitParams {
        stay_quantile: args.stay_quantile,
        energy_quantile: args.energy_quantile,
        ..HabitParams::default()
    };
    let r = evaluate_habits(&sessions, &params);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{} sessions scored (causal)", r.sessions_scored);
        println!(
            "stay MAE h: stated {:.2}, learned {:.2}, blended {:.2}",
            r.stay_mae_hours_stated, r.stay_mae_hours_learned, r.stay_mae_hours_blended
        );
        println!(
            "energy MAE kWh: stated {:.2}, learned {:.2}, blended {:.2}",
            r.energy_mae_kwh_stated, r.energy_mae_kwh_learned, r.energy_mae_kwh_blended
        );
        println!(
            "stay q{:.2} covered {:.1} % (nominal {:.0} %), energy q{:.2} covers {:.1} %",
            r.stay_quantile,
            r.stay_low_coverage_pct,
            100.0 * (1.0 - r.stay_quantile),
            r.energy_quantile,
            r.energy_high_coverage_pct
        );
    }
    Ok(ExitCode::SUCCESS)
}
