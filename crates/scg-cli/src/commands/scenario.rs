//! `scg scenario default|check`: print the built-in scenario, or check a file the way
//! `simulate` would (the same `simulate::prepare_run`), short of simulating.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the built-in Bergamo scenario as commented TOML (`scg scenario default > my.toml`).
    Default,
    /// Everything `simulate` does short of simulating: validate every field, read and check
    /// every file the scenario names, estimate the run's memory and time. Prints every problem
    /// at once; exit code 1 on any.
    Check {
        /// The scenario TOML file.
        file: PathBuf,
        /// Refuse a scenario whose estimated peak memory is above this many MiB.
        #[arg(long, default_value_t = crate::commands::simulate::DEFAULT_MEMORY_BUDGET_MIB)]
        memory_budget_mib: u64,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Default => {
            print!("{}", scg_model::builtin::BERGAMO_TOML);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            file,
            memory_budget_mib,
        } => {
            let (loaded, run) = crate::commands::simulate::prepare_run(
                Some(&file),
                memory_budget_mib,
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
                 (`scg simulate`; time calibrated on a debug build, release is faster)",
                e.memory_bytes >> 20,
                e.time_ms as f64 / 1000.0
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
