//! `scg scenario default|check`: print the built-in scenario, or validate a file (loading goes
//! through `simulate`'s loader; `simulate` never depends on this module).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the built-in Bergamo scenario as commented TOML (`scg scenario default > my.toml`).
    Default,
    /// Parse and validate a scenario file; print every problem with its field path.
    Check {
        /// The scenario TOML file.
        file: PathBuf,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Default => {
            print!("{}", scg_model::builtin::BERGAMO_TOML);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file } => {
            let scenario = crate::commands::simulate::load_scenario(Some(&file))?;
            crate::commands::simulate::check_assets(&scenario)?;
            println!(
                "{}: ok ({} prosumers, {}-minute steps)",
                file.display(),
                scenario.scenario.prosumers.len(),
                scenario.scenario.time.step_minutes
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
