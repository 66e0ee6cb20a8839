//! `scg`: the command-line front end. This is the only crate that prints, reads arguments or
//! exits; every subcommand lives in its own module under `commands/` and returns an
//! [`std::process::ExitCode`] or an error that `main` prints.
//!
//! Exit codes: 0 success, 1 error (bad input file, failed run), 2 usage error (from clap).

mod commands;
mod console;
mod output;
mod progress;
mod read;
mod stream_file;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// scg — Smart Community Grid: simulate, size, operate and settle a renewable energy community.
#[derive(Debug, Parser)]
#[command(name = "scg", version, about, long_about = None, after_help = "Exit codes: 0 success, 1 error, 2 usage error.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a community for one year and write a report directory.
    #[command(long_about = commands::simulate::LONG_ABOUT)]
    Simulate(commands::simulate::Args),
    /// Find the cheapest design: simulate every combination of candidate sizes, rank by NPC.
    #[command(long_about = commands::optimize::LONG_ABOUT)]
    Optimize(commands::optimize::Args),
    /// Print or check scenario files.
    #[command(subcommand)]
    Scenario(commands::scenario::Command),
    /// EV smart charging: replay sessions under a policy, score habit learning.
    #[command(subcommand)]
    Ev(commands::ev::Command),
    /// Clear community P2P orders (pay-as-clear, pay-as-bid, pay-as-offer).
    #[command(subcommand)]
    Market(commands::market::Command),
    /// Virtual Power Plant: MGP bids, MI re-bids and MSD offers for a day.
    #[command(subcommand)]
    Vpp(commands::vpp::Command),
    /// Verify or inspect a RESCoin ledger directory (a simulation ledger or a member node's).
    #[command(subcommand)]
    Ledger(commands::ledger::Command),
    /// Member chain: keys, genesis, and running a node under BFT consensus.
    #[command(subcommand)]
    Chain(commands::chain::Command),
    /// Run the simulated community through N member nodes on loopback (orders, readings,
    /// consensus, the on-chain market) and compare with `scg simulate`.
    #[command(long_about = commands::testnet::LONG_ABOUT)]
    Testnet(commands::testnet::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Optimize(args) => commands::optimize::run(args),
        Command::Scenario(cmd) => commands::scenario::run(cmd),
        Command::Ev(cmd) => commands::ev::run(cmd),
        Command::Market(cmd) => commands::market::run(cmd),
        Command::Vpp(cmd) => commands::vpp::run(cmd),
        Command::Ledger(cmd) => commands::ledger::run(cmd),
        Command::Chain(cmd) => commands::chain::run(cmd),
        Command::Testnet(args) => commands::testnet::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
