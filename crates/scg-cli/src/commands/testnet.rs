//! `scg testnet --members N --dir D [SCENARIO]`: the scenario's simulated community driven
//! through N member node processes on loopback (`scg_chain::testnet`).
//!
//! This module parses arguments, loads the scenario and runs the very simulation
//! `scg simulate` runs (same scenario checks, same seed, `scg_sim::simulate_with`) in
//! [`simulated_plan`] — the one path of the driver and of every node's agent
//! (`scg chain run --agent-scenario`) — whose year `scg_chain::plan::build` turns into the
//! plan, and prints. Keys, genesis, processes, sockets, the agents and the clock are
//! `scg-chain`'s.

use anyhow::Context as _;
use scg_chain::testnet::Plan;
use scg_units::Rescoin;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The long help of `scg testnet`.
pub const LONG_ABOUT: &str = "Run the scenario's simulated community through a member network: N `scg chain run` \
processes on loopback, one per member, each its own validator.\n\n\
scg testnet generates every key from the OS's randomness (files of mode 0600: the operator's, the treasury's and \
the grid's in DIR/keys/ with the members' public keys; each member's and its meters' in its node's directory), writes a genesis with the market \
open and every meter registered with its capacity (DIR/genesis.toml), starts the nodes (DIR/node*/, logs in \
DIR/node*.log); each node runs its member's agent, which simulates the same scenario and seed as `scg simulate` \
and signs its member's orders and meter readings with keys only that node holds (DIR/node*/) and submits them \
to its own node, while the driver holds only the operator's keys; for a CER community the operator opens the CER, \
posts the hourly zonal prices and closes each day's period, and every node computes the payouts from the \
readings it holds. The chain's clock advances --intervals-per-step \
intervals at a time, as fast as consensus finalizes (docs/chain.md, \"Testnet\"). At the end it prints every \
node's state root and writes DIR/testnet.json: `nodes` (name, finalized_height, state_root), `members` (per \
member, the `ledger` object of summary.json, read from the chain) and `simulation` (the same figures from \
`scg simulate`'s settlement over the same horizon). Exit code 1 if the nodes' state roots differ or the \
compared figures (minted, P2P received, paid, fees, CER) differ from the simulation's.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario TOML file (default: the built-in Bergamo scenario). It needs a
    /// `[community.market]` (the orders go through the chain's market).
    pub scenario: Option<PathBuf>,
    /// Members, one node each; must equal the scenario's prosumers.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub members: u64,
    /// The testnet's directory (created; refused if it exists and is not empty).
    #[arg(long)]
    pub dir: PathBuf,
    /// Drive only the first DAYS days of the simulated year [default: the whole year].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=365))]
    pub days: Option<u64>,
    /// Seed of the simulation (as `scg simulate --seed`).
    #[arg(long, default_value_t = super::simulate::DEFAULT_SEED)]
    pub seed: u64,
    /// Market intervals the chain's clock advances per step [default: two days'].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=8760))]
    pub intervals_per_step: Option<u64>,
    /// Print nothing but errors and the state roots.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Load and check the scenario, run the very simulation `scg simulate` runs (same checks,
/// same seed, `scg_sim::simulate_with`, keeping the market's books) and build the plan
/// (`scg_chain::plan::build`): the one path of the driver and of every node's agent. With
/// `members`, a scenario with another number of prosumers is refused before simulating.
pub fn simulated_plan(
    scenario: Option<&std::path::Path>,
    seed: u64,
    days: Option<u64>,
    members: Option<u64>,
) -> anyhow::Result<scg_chain::plan::Built> {
    let log = crate::output::InputLog::default();
    let budget = super::simulate::Budget {
        memory_mib: super::simulate::DEFAULT_MEMORY_BUDGET_MIB,
        ledger: true,
    };
    let (loaded, checked) = super::simulate::prepare_run(scenario, budget, &log)?;
    let prosumers = loaded.scenario.prosumers.len();
    if let Some(n) = members.filter(|n| *n as usize != prosumers) {
        anyhow::bail!(
            "--members {n}: {} has {prosumers} prosumers; a testnet runs one member node per prosumer, so give --members {prosumers}",
            loaded.source
        );
    }
    let Some(market) = &loaded.scenario.community.market else {
        anyhow::bail!(
            "{}: no [community.market]: scg testnet submits the market's orders to the chain, and pro-rata sharing has none (add `market = {{ mechanism = \"pay_as_clear\" }}` to [community])",
            loaded.source
        );
    };
    let options = scg_sim::SimOptions {
        keep_trades: true,
        keep_books: true,
    };
    let result = scg_sim::simulate_with(
        &loaded.scenario,
        &checked.assets,
        &checked.inputs,
        seed,
        options,
        &mut |_, _| {},
    )?;
    let community = scg_sim::market_stage::community_market(market)?;
    Ok(scg_chain::plan::build(&scg_chain::plan::PlanInputs {
        result: &result,
        internal_price_eur_per_mwh: loaded.scenario.community.internal_price_eur_per_mwh,
        market: &community,
        days,
    })?)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    scg_chain::testnet::check_dir(&args.dir)?;
    let say = |s: &str| {
        if !args.quiet {
            eprintln!("scg testnet: {s}");
        }
    };
    say("simulating the year (the operator's plan and the comparison)");
    let sim = simulated_plan(
        args.scenario.as_deref(),
        args.seed,
        args.days,
        Some(args.members),
    )?;
    let plan = &sim.plan;
    say("settling the same horizon as scg simulate does, for comparison");
    let simulation = sim.simulated_figures()?;
    let steps_per_day = 24 * 3600 / plan.interval_s.max(1);

    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    let opts = scg_chain::testnet::Options {
        dir: args.dir.clone(),
        exe: std::env::current_exe().context("locating the scg executable for the nodes")?,
        intervals_per_step: args
            .intervals_per_step
            .unwrap_or(DEFAULT_STEP_DAYS * steps_per_day),
        cancel,
        agent: scg_chain::testnet::AgentArgs {
            scenario: args
                .scenario
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            seed: args.seed,
            days: args.days,
        },
    };
    let outcome = scg_chain::testnet::run(plan, &opts, &mut |line| say(line))?;

    for n in &outcome.nodes {
        println!(
            "{:<24} finalized height {:>7}  state root {}",
            n.name, n.finalized_height, n.state_root
        );
    }
    let roots_equal = outcome
        .nodes
        .windows(2)
        .all(|w| w[0].state_root == w[1].state_root);
    let mismatches = compare(&outcome, &simulation);
    let json = testnet_json(&args, plan, &outcome, &simulation, &mismatches, started);
    let path = args.dir.join("testnet.json");
    let tmp = args.dir.join(".testnet.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&json)? + "\n")
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))?;
    let blocks = outcome
        .nodes
        .iter()
        .map(|n| n.finalized_height)
        .max()
        .unwrap_or(0);
    if !args.quiet {
        println!(
            "{} intervals in {} steps: {} blocks, {} transactions, drive {:.1} s (wall {:.1} s); wrote {}",
            plan.intervals.len(),
            outcome.steps,
            blocks,
            outcome.transactions,
            outcome.drive_s,
            started.elapsed().as_secs_f64(),
            path.display()
        );
    }
    if !roots_equal {
        eprintln!("error: the nodes' state roots differ");
        return Ok(ExitCode::FAILURE);
    }
    if !mismatches.is_empty() {
        eprintln!(
            "error: the chain's economics differ from scg simulate's over the same horizon: {}",
            mismatches.join("; ")
        );
        return Ok(ExitCode::FAILURE);
    }
    if !args.quiet {
        println!(
            "every node has the same state root; minted, P2P received, paid, fees and CER equal scg simulate's for every member"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Days of market intervals the chain's clock advances per step by default: the number of
/// steps, not of intervals, sets the number of finalization rounds (docs/chain.md).
pub const DEFAULT_STEP_DAYS: u64 = 2;

/// The compared figures that differ: `member: field chain X, simulation Y`.
fn compare(
    outcome: &scg_chain::testnet::Outcome,
    simulation: &BTreeMap<String, scg_ledger::settlement::MemberSettlement>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (id, (_, f)) in &outcome.members {
        let Some(s) = simulation.get(id) else {
            out.push(format!("{id}: not in the simulation"));
            continue;
        };
        for (field, chain, sim) in [
            ("minted", f.minted, s.minted.0),
            ("p2p_received", f.p2p_received, s.p2p_received.0),
            ("p2p_paid", f.p2p_paid, s.p2p_paid.0),
            ("fees_paid", f.fees_paid, s.fees_paid.0),
            ("cer_received", f.cer_received, s.cer_received.0),
        ] {
            if chain != sim {
                out.push(format!("{id}: {field} chain {chain}, simulation {sim}"));
            }
        }
    }
    // The members' CER, derived from their balances, must be what the chain's period
    // records say the closes paid.
    let members_cer: u128 = outcome.members.values().map(|(_, f)| f.cer_received).sum();
    if members_cer != outcome.cer_paid_base {
        out.push(format!(
            "CER: the members received {members_cer} base units, the chain's period records paid {}",
            outcome.cer_paid_base
        ));
    }
    out
}

fn res(base: u128) -> String {
    Rescoin(base).to_decimal_string()
}

fn testnet_json(
    args: &Args,
    plan: &Plan,
    outcome: &scg_chain::testnet::Outcome,
    simulation: &BTreeMap<String, scg_ledger::settlement::MemberSettlement>,
    mismatches: &[String],
    started: Instant,
) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = outcome
        .nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "name": n.name,
                "finalized_height": n.finalized_height,
                "state_root": n.state_root,
                "own_finality_ms": {"median": n.own_finality_ms.0, "max": n.own_finality_ms.1, "count": n.own_finality_ms.2},
            })
        })
        .collect();
    let members: BTreeMap<&String, scg_report::summary::MemberLedger> = outcome
        .members
        .iter()
        .map(|(id, (account, f))| {
            (
                id,
                scg_report::summary::MemberLedger {
                    account: account.clone(),
                    balance_res: res(f.balance),
                    minted_res: res(f.minted),
                    p2p_received_res: res(f.p2p_received),
                    p2p_paid_res: res(f.p2p_paid),
                    fees_paid_res: res(f.fees_paid),
                    cer_received_res: res(f.cer_received),
                },
            )
        })
        .collect();
    let sim: BTreeMap<&String, serde_json::Value> = simulation
        .iter()
        .map(|(id, s)| {
            (
                id,
                serde_json::json!({
                    "minted_res": res(s.minted.0),
                    "p2p_received_res": res(s.p2p_received.0),
                    "p2p_paid_res": res(s.p2p_paid.0),
                    "fees_paid_res": res(s.fees_paid.0),
                    "cer_received_res": res(s.cer_received.0),
                }),
            )
        })
        .collect();
    let funded: BTreeMap<&String, String> = outcome
        .members
        .iter()
        .map(|(id, (_, f))| (id, res(f.funded)))
        .collect();
    let mut finality = outcome.step_finality_s.clone();
    finality.sort_by(f64::total_cmp);
    let median = finality.get(finality.len() / 2).copied().unwrap_or(0.0);
    let max = finality.last().copied().unwrap_or(0.0);
    serde_json::json!({
        "schema": "scg.testnet.v1",
        "chain_id": outcome.chain_id,
        "seed": args.seed,
        "scenario": args.scenario.as_ref().map_or("built-in".to_string(), |p| p.display().to_string()),
        "intervals": plan.intervals.len(),
        "interval_s": plan.interval_s,
        "nodes": nodes,
        "members": members,
        "simulation": sim,
        "compared": ["minted_res", "p2p_received_res", "p2p_paid_res", "fees_paid_res", "cer_received_res"],
        "not_compared": {
            "balance_res": "members are funded by the treasury with the most their bids can cost (funded_res), not simulate's opening balance and top-ups",
        },
        "cer": plan.cer.as_ref().map(|c| serde_json::json!({
            "period_hours": c.period_hours,
            "periods_closed": outcome.cer_periods_closed,
            "paid_res": res(outcome.cer_paid_base),
            "budget_res": res(c.budget_base),
            "treasury_end_res": res(outcome.treasury_end_base),
        })),
        "economics_match": mismatches.is_empty(),
        "mismatches": mismatches,
        "funded_res": funded,
        "run": {
            "wall_s": started.elapsed().as_secs_f64(),
            "drive_s": outcome.drive_s,
            "steps": outcome.steps,
            "blocks": outcome.nodes.iter().map(|n| n.finalized_height).max().unwrap_or(0),
            "transactions": outcome.transactions,
            "step_finality_s": {"median": median, "max": max},
            "trades_cleared": outcome.trades_cleared,
            "trades_posted": outcome.trades_posted,
            "unfunded_bids": outcome.unfunded_bids,
        },
    })
}
