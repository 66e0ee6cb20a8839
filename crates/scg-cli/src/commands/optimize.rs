//! `scg optimize [SCENARIO] --out DIR`: HOMER-style sizing — every combination of the
//! scenario's candidate sizes simulated for a year, infeasible ones dropped, the rest ranked by
//! net present cost; the winner is then simulated in full and reported.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The long help of `scg optimize`.
pub const LONG_ABOUT: &str = "Find the cheapest design: every combination of the candidate sizes in the scenario's \
`search` lists (PV kWp, wind turbines, battery kWh, converter kW per prosumer; grid on/off) is simulated for a \
year, combinations with more unmet load than `search.max_capacity_shortage_pct` are dropped, and the rest are \
ranked by net present cost.\n\n\
Outputs (in --out): optimize.csv (every feasible configuration, cheapest first), optimize.json (counts, speed, \
the best 100), and the winner's full simulation: summary.json, timeseries.csv/.parquet, scenario.toml (the \
winning sizes) and report.html with a sizing section.\n\n\
Runs on all cores. Ctrl-C stops the search early and keeps the results so far (exit code 130).";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario TOML file (default: the built-in Bergamo scenario and its search space).
    pub scenario: Option<PathBuf>,
    /// Output directory; created if missing. A re-run replaces it whole, atomically.
    #[arg(short, long, default_value = "scg-optimize")]
    pub out: PathBuf,
    /// Seed of every random draw (loads, sun, wind).
    #[arg(long, default_value_t = crate::commands::simulate::DEFAULT_SEED)]
    pub seed: u64,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Refuse a scenario whose estimated peak memory is above this many MiB (as `simulate`).
    #[arg(long, default_value_t = crate::commands::simulate::DEFAULT_MEMORY_BUDGET_MIB)]
    pub memory_budget_mib: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let log = crate::output::InputLog::default();
    // The winner's simulation settles no ledger, but the search holds every design's year:
    // held to the estimate of a run with one, as before.
    let budget = crate::commands::simulate::Budget {
        memory_mib: args.memory_budget_mib,
        ledger: true,
    };
    let (loaded, run) =
        crate::commands::simulate::prepare_run(args.scenario.as_deref(), budget, &log)?;
    let (assets, inputs) = (run.assets, run.inputs);
    // Before the search: --out is writable, locked, and contains no input.
    let mut output = crate::output::OutputDir::begin(&args.out)?;
    output.check_inputs(&log.paths())?;
    let mut prepared = scg_sim::prepare::prepare(
        &loaded.scenario,
        &assets,
        &inputs,
        args.seed,
        &mut |_, _| {},
    )?;
    scg_sim::prepare::add_ev_years(&mut prepared, &loaded.scenario, &assets, args.seed)?;
    let spaces = scg_sim::sizing::spaces(&loaded.scenario, &assets, &prepared)?;
    let settings = scg_sim::sizing::settings(&loaded.scenario, &assets);
    let data = scg_sim::sizing::SearchData::new(&loaded.scenario, &prepared)?;
    let search_inputs = data.inputs(&prepared, &assets);

    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = Arc::clone(&cancel);
        // If a handler is already installed (tests calling twice), searching uncancellable is fine.
        let _ = ctrlc::set_handler(move || cancel.store(true, Ordering::Relaxed));
    }
    let total: u64 = spaces
        .iter()
        .map(|s| s.designs.len() as u64)
        .product::<u64>()
        * settings.grid_options.len().max(1) as u64;
    let bar = crate::progress::bar(total, "optimizing");
    let started = Instant::now();
    let outcome = scg_sim::optimize::search(
        &spaces,
        &search_inputs,
        &settings,
        prepared.grid.len(),
        &|done, _| bar.set_position(done),
        &cancel,
    )?;
    let elapsed_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let ids: Vec<String> = spaces.iter().map(|s| s.id.clone()).collect();
    let sizes: Vec<Vec<scg_sim::sizing::DesignSizes>> = spaces
        .iter()
        .map(|s| {
            s.designs
                .iter()
                .map(scg_sim::sizing::DesignSizes::of)
                .collect()
        })
        .collect();
    let stats = scg_report::optimize::SearchStats {
        configurations_total: outcome.total,
        configurations_evaluated: outcome.evaluated,
        configurations_infeasible: outcome.infeasible,
        cancelled: outcome.cancelled,
        elapsed_s,
        configurations_per_second: outcome.evaluated as f64 / elapsed_s.max(1e-9),
    };
    let not_exact = scg_sim::sizing::not_exact(&loaded.scenario, &assets);
    let write = |name: &str, bytes: &[u8]| output.write(name, bytes);
    write(
        "optimize.csv",
        scg_report::optimize::ranked_csv(&ids, &sizes, &outcome).as_bytes(),
    )?;
    write(
        "optimize.json",
        scg_report::optimize::summary_json(
            &ids,
            &sizes,
            &outcome,
            stats.clone(),
            args.seed,
            &not_exact,
        )?
        .as_bytes(),
    )?;

    let Some(best) = outcome.ranked.first() else {
        anyhow::bail!(
            "no feasible configuration among {} evaluated: every one leaves more unmet load than search.max_capacity_shortage_pct allows",
            outcome.evaluated
        );
    };
    let winner = scg_sim::sizing::winner_scenario(&loaded.scenario, &spaces, best);
    let winner_assets =
        scg_sim::Assets::from_scenario(&winner).map_err(scg_sim::SimError::Invalid)?;
    let result = scg_sim::simulate(&winner, &winner_assets, &inputs, args.seed, &mut |_, _| {})?;
    let run = scg_report::RunInfo {
        scg_version: env!("CARGO_PKG_VERSION").into(),
        scenario_source: format!("{} (optimized)", loaded.source),
        ledger: None,
    };
    let pv_limit_kwp = scg_sim::sizing::pv_limits_kwp(&loaded.scenario, &spaces);
    let section = scg_report::optimize::html_section(&ids, &sizes, &pv_limit_kwp, &outcome, &stats);
    for file in scg_report::render_all_with(&result, &winner, &run, &section)? {
        write(file.name, &file.bytes)?;
    }
    // Warnings go to stderr even with --quiet: a winner at the edge of its candidate list
    // may not be the optimum.
    for w in scg_report::optimize::edge_warnings(&ids, &sizes, &pv_limit_kwp, best) {
        eprintln!("warning: {w}");
    }
    output.commit("optimize")?;
    if !args.quiet {
        println!(
            "{} configurations in {:.2} s ({:.0}/s), {} infeasible{}",
            outcome.evaluated,
            elapsed_s,
            stats.configurations_per_second,
            outcome.infeasible,
            if outcome.cancelled { ", cancelled" } else { "" }
        );
        println!(
            "winner: NPC {:.0} EUR, COE {:.4} EUR/kWh, renewable fraction {:.3}, CER {:.0} EUR/yr, grid {}",
            best.npc_eur,
            best.coe_eur_per_kwh,
            best.renewable_fraction,
            best.cer_incentive_eur,
            if best.grid_connected { "on" } else { "off" }
        );
        if let Some(m) = &outcome.market {
            // Screened pro rata, the best replayed with the market until the winner is one.
            println!(
                "ranked with the community market: {} configurations replayed with it (the rest keep their pro-rata NPC; the largest NPC change the market made was {:.0} EUR, {:.4} %)",
                m.replayed,
                m.max_npc_change_eur,
                m.max_npc_change_fraction * 100.0
            );
        }
        let simulated_npc = result.community.economics.npc_eur;
        if (simulated_npc - best.npc_eur).abs() > 1e-6 * best.npc_eur.abs() {
            println!(
                "note: the winner simulated in full has NPC {simulated_npc:.0} EUR (search: {:.0} EUR)",
                best.npc_eur
            );
        }
        for n in &not_exact {
            println!("note: not exact in the search: {n}");
        }
        for (id, s) in ids
            .iter()
            .zip(&sizes)
            .zip(&best.designs)
            .map(|((id, s), d)| (id, s[*d]))
        {
            println!(
                "  {id:<12} PV {:>6.1} kWp  wind {:>2}  battery {:>6.1} kWh  converter {:>6.1} kW",
                s.pv_kwp, s.wind_turbines, s.battery_kwh, s.converter_kw
            );
        }
        println!("wrote {}", args.out.display());
    }
    Ok(if outcome.cancelled {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}
