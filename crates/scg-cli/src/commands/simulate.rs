//! `scg simulate [SCENARIO] [--out DIR] [--seed N]`: one year of a community, written as a
//! report directory.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The seed used when `--seed` is not given (recorded in summary.json either way).
pub const DEFAULT_SEED: u64 = 42;

/// The long help of `scg simulate`.
pub const LONG_ABOUT: &str = "Simulate a community for one year and write a report directory.\n\n\
Without SCENARIO the built-in Bergamo community of the seed paper is simulated (see `scg scenario default`).\n\n\
Outputs (in --out): summary.json (metrics, schema scg.summary.v1), timeseries.csv and timeseries.parquet \
(one row per step, units in column names), report.html (self-contained, opens offline) and scenario.toml \
(the scenario as run). The same scenario and seed give the same bytes.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario TOML file (default: the built-in Bergamo scenario).
    pub scenario: Option<PathBuf>,
    /// Output directory; created if missing. A re-run replaces it whole, atomically (see
    /// README "Output directories").
    #[arg(short, long, default_value = "scg-out")]
    pub out: PathBuf,
    /// Seed of every random draw; the same seed gives the same outputs byte for byte.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not settle the year on the RESCoin ledger (OUT/ledger/); much faster.
    #[arg(long)]
    pub no_ledger: bool,
}

/// A parsed scenario and where it came from.
#[derive(Debug)]
pub struct LoadedScenario {
    pub scenario: scg_model::Scenario,
    /// The file's directory, against which relative paths in the scenario resolve.
    pub base_dir: PathBuf,
    /// A path, or "built-in".
    pub source: String,
}

/// Read and validate a scenario file, or take the built-in one.
pub fn load_scenario(path: Option<&Path>) -> anyhow::Result<LoadedScenario> {
    match path {
        None => Ok(LoadedScenario {
            scenario: scg_model::builtin::bergamo()?,
            base_dir: PathBuf::from("."),
            source: "built-in".into(),
        }),
        Some(path) => {
            let text = crate::commands::scenario::read_text(path)?;
            for w in scg_model::deprecated::deprecations(&text) {
                eprintln!("warning: {}: {w}", path.display());
            }
            let scenario = scg_model::Scenario::from_toml_str(&text, &path.display().to_string())?;
            Ok(LoadedScenario {
                scenario,
                base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
                source: path.display().to_string(),
            })
        }
    }
}

/// A reader of the files a scenario names, relative to the scenario's directory; every file it
/// reads is recorded in `log` (an output directory must not contain them).
pub fn file_reader(
    loaded: &LoadedScenario,
    log: &crate::output::InputLog,
) -> impl FnMut(&Path) -> Result<String, String> + use<> {
    let base = loaded.base_dir.clone();
    let log = log.clone();
    move |p: &Path| {
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        log.record(&full);
        std::fs::read_to_string(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
    }
}

/// Type and validate the scenario's component sections (every problem, with field paths).
pub fn check_assets(loaded: &LoadedScenario) -> anyhow::Result<scg_sim::Assets> {
    scg_sim::Assets::from_scenario(&loaded.scenario).map_err(|errors| {
        anyhow::anyhow!(
            "{}: invalid scenario:\n{}",
            loaded.source,
            errors
                .iter()
                .map(|e| format!("  - {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let loaded = load_scenario(args.scenario.as_deref())?;
    let assets = check_assets(&loaded)?;
    // Before any expensive work: --out is writable, locked, and contains no input.
    let mut output = crate::output::OutputDir::begin(&args.out)?;
    let log = crate::output::InputLog::default();
    log.record_all(args.scenario.as_deref());
    let inputs =
        scg_sim::resolve_inputs(&loaded.scenario, &assets, &mut file_reader(&loaded, &log))?;
    output.check_inputs(&log.paths())?;
    // Phases: each prosumer prepared, the year, settling and storing the ledger, writing.
    let prosumers = loaded.scenario.prosumers.len();
    let ledger_steps = if args.no_ledger { 0 } else { 2 };
    let bar = crate::progress::phases((prosumers + 2 + ledger_steps) as u64);
    let result = scg_sim::simulate(
        &loaded.scenario,
        &assets,
        &inputs,
        args.seed,
        &mut |done, _| {
            bar.set_position(done as u64);
            if done == prosumers {
                bar.set_message("simulating year");
            }
        },
    )?;
    let ledger = if args.no_ledger {
        None
    } else {
        bar.set_message("settling ledger");
        Some(settle_ledger(&result, &loaded, output.dir(), &bar)?)
    };
    bar.set_message("writing outputs");
    let run = scg_report::RunInfo {
        scg_version: env!("CARGO_PKG_VERSION").into(),
        scenario_source: loaded.source.clone(),
        ledger,
    };
    let files = scg_report::render_all(&result, &loaded.scenario, &run)?;
    for file in &files {
        output.write(file.name, &file.bytes)?;
    }
    output.commit("simulate")?;
    bar.inc(1);
    bar.finish_and_clear();
    if !args.quiet {
        let footer = crate::console::RunFooter {
            seed: args.seed,
            out: &args.out,
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        print!(
            "{}",
            crate::console::summary(&result, run.ledger.as_ref(), &footer)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Settle the year on the RESCoin ledger (`scg-settle`) and store it in OUT/ledger (verified
/// on write).
fn settle_ledger(
    result: &scg_sim::SimResult,
    loaded: &LoadedScenario,
    out: &Path,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<scg_report::summary::LedgerInfo> {
    let settled = scg_settle::settle(
        result,
        loaded.scenario.community.internal_price_eur_per_mwh,
        &scg_settle::Policy::default(),
    )?;
    let dir = out.join("ledger");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    bar.inc(1);
    bar.set_message("storing ledger");
    scg_ledger::store::store(&dir, &settled)?;
    bar.inc(1);
    Ok(scg_report::summary::LedgerInfo::from_settlement(
        &settled.summary,
        "ledger",
    ))
}
