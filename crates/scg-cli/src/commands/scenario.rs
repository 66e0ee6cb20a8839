//! `scg scenario default|city|check`: print the built-in scenario or a generated city
//! (`scg_model::city`), or check a file the way
//! `simulate` would (the same `simulate::prepare_run`), short of simulating.

use anyhow::Context as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the built-in Bergamo scenario as commented TOML (`scg scenario default > my.toml`).
    Default,
    /// Print a synthetic city-scale community as TOML: households, shops, offices,
    /// supermarkets and schools in the proportions of the Italian building stock, rooftop PV,
    /// EVs at home and at work (docs/city.md). The same options and seed give the same bytes.
    City {
        /// Members (prosumers) of the community.
        #[arg(long)]
        members: usize,
        /// Electric vehicles over the whole community (75 % at home, the rest at work).
        #[arg(long, default_value_t = 0)]
        evs: u64,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Charging policy of every EV fleet: uncontrolled, fcfs, edf, llf, round-robin, mpc.
        #[arg(long, default_value = "llf")]
        ev_policy: String,
        /// Write the scenario to this file instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Everything `simulate` does short of simulating: validate every field, read and check
    /// every file the scenario names, estimate the run's memory and time. Prints every problem
    /// at once; exit code 1 on any.
    Check {
        /// The scenario TOML file.
        file: PathBuf,
        /// Refuse a scenario whose estimated peak memory is above this many MiB.
        #[arg(long, default_value_t = crate::commands::simulate::DEFAULT_MEMORY_BUDGET_MIB)]
        memory_budget_mib: u64,
        /// Estimate the run as `scg simulate --no-ledger` makes it (no ledger to settle).
        #[arg(long)]
        no_ledger: bool,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Default => {
            print!("{}", scg_model::builtin::BERGAMO_TOML);
            Ok(ExitCode::SUCCESS)
        }
        Command::City {
            members,
            evs,
            seed,
            ev_policy,
            output,
        } => {
            let options = scg_model::city::CityOptions {
                members,
                evs,
                ev_policy,
            };
            let text = scg_model::city::city_toml(&options, seed)?;
            match output {
                Some(path) => crate::output::write_file_atomically(&path, text.as_bytes(), &[])
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            file,
            memory_budget_mib,
            no_ledger,
        } => {
            let budget = crate::commands::simulate::Budget {
                memory_mib: memory_budget_mib,
                ledger: !no_ledger,
            };
            let (loaded, run) = crate::commands::simulate::prepare_run(
                Some(&file),
                budget,
                &crate::output::InputLog::default(),
            )?;
            let e = run.estimate;
            println!(
                "{}: ok ({} prosumers, {}-minute steps, {} EVs)",
                file.display(),
                loaded.scenario.prosumers.len(),
                loaded.scenario.time.step_minutes,
                e.vehicles
            );
            println!(
                "estimated run: {} MiB peak memory (budget {memory_budget_mib} MiB), {:.1} s \
                 (`scg simulate` {}; a guide, see docs/scaling.md)",
                e.memory_bytes >> 20,
                e.time_ms as f64 / 1000.0,
                if no_ledger {
                    "--no-ledger"
                } else {
                    "with the ledger"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
