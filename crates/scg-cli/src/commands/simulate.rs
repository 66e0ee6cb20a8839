//! `scg simulate [SCENARIO] [--out DIR] [--seed N]`: one year of a community, written as a
//! report directory.

use anyhow::Context;
use scg_sim::members::MemberBlock;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// The seed used when `--seed` is not given (recorded in summary.json either way).
pub const DEFAULT_SEED: u64 = 42;

/// The long help of `scg simulate`.
pub const LONG_ABOUT: &str = "Simulate a community for one year and write a report directory.\n\n\
Without SCENARIO the built-in Bergamo community of the seed paper is simulated (see `scg scenario default`).\n\n\
Outputs (in --out): summary.json (metrics, schema scg.summary.v1), timeseries.csv and timeseries.parquet \
(one row per step, units in column names), report.html (self-contained, opens offline) and scenario.toml \
(the scenario as run). From 50 members on (or with --layout city) the series are members.parquet (long format: \
one row per member and step) and community.csv (the community's per-step sums) instead of timeseries.csv/.parquet, \
and the report shows distributions across members instead of one section per member (docs/summary.md). \
The same scenario and seed give the same bytes.";

/// `--layout`: which files carry the time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// `city` from scg_report::city::CITY_LAYOUT_MIN_MEMBERS (50) members on, `wide` below.
    Auto,
    /// timeseries.csv and timeseries.parquet, one column per member and flow; a report section
    /// per member.
    Wide,
    /// members.parquet (long format) and community.csv; a report of distributions.
    City,
}

impl LayoutArg {
    /// The layout for a community of `members`.
    pub fn resolve(self, members: usize) -> scg_report::Layout {
        match self {
            Self::Auto => scg_report::Layout::for_members(members),
            Self::Wide => scg_report::Layout::Wide,
            Self::City => scg_report::Layout::City,
        }
    }
}

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
    /// Refuse a scenario whose estimated peak memory is above this many MiB.
    #[arg(long, default_value_t = DEFAULT_MEMORY_BUDGET_MIB)]
    pub memory_budget_mib: u64,
    /// Output layout of the series and the report: `auto` (city from 50 members on), `wide`
    /// (timeseries.csv/.parquet, a section per member) or `city` (members.parquet,
    /// community.csv, distributions across members).
    #[arg(long, value_enum, default_value_t = LayoutArg::Auto)]
    pub layout: LayoutArg,
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

/// Read and parse a scenario file (syntax and schema only), or take the built-in one.
pub fn read_scenario(path: Option<&Path>) -> anyhow::Result<LoadedScenario> {
    match path {
        None => Ok(LoadedScenario {
            scenario: scg_model::builtin::bergamo()?,
            base_dir: PathBuf::from("."),
            source: "built-in".into(),
        }),
        Some(path) => {
            let text = crate::read::read_text(path, &crate::read::Origin::CommandLine)?;
            for w in scg_model::deprecated::deprecations(&text) {
                eprintln!("warning: {}: {w}", path.display());
            }
            let source = path.display().to_string();
            let scenario = scg_model::Scenario::parse_toml(&text, &source)?;
            Ok(LoadedScenario {
                scenario,
                base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
                source,
            })
        }
    }
}

/// A reader of the files a scenario names: relative to the scenario's directory, confined to
/// it, bounded (`crate::read`); every file it reads is recorded in `log` (an output directory
/// must not contain them).
pub fn file_reader(
    loaded: &LoadedScenario,
    log: &crate::output::InputLog,
) -> impl FnMut(&Path) -> Result<String, String> + use<> {
    let origin = crate::read::Origin::Scenario {
        base_dir: loaded.base_dir.clone(),
    };
    let base = loaded.base_dir.clone();
    let log = log.clone();
    move |p: &Path| {
        log.record(&if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        });
        crate::read::read_text(p, &origin).map_err(|e| format!("{e:#}"))
    }
}

/// Everything `simulate` does short of simulating, shared with `scg scenario check`: read the
/// scenario, then [`check_loaded`]. Every file read is recorded in `log`.
pub fn prepare_run(
    path: Option<&Path>,
    budget: Budget,
    log: &crate::output::InputLog,
) -> anyhow::Result<(LoadedScenario, scg_sim::CheckedRun)> {
    log.record_all(path);
    let loaded = read_scenario(path)?;
    let run = check_loaded(&loaded, budget, log)?;
    Ok((loaded, run))
}

/// What a run is held to at the check: the memory budget, and whether it writes a ledger
/// (which the memory estimate depends on).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub memory_mib: u64,
    pub ledger: bool,
}

/// `scg_sim::check_run` on a read scenario (validation, component sections, every input file,
/// the memory estimate against the budget), every problem reported at once; for commands that
/// adjust the scenario before running it (`vpp bids`). Every file read is recorded in `log`.
pub fn check_loaded(
    loaded: &LoadedScenario,
    budget: Budget,
    log: &crate::output::InputLog,
) -> anyhow::Result<scg_sim::CheckedRun> {
    let options = scg_sim::CheckOptions {
        memory_budget_bytes: budget.memory_mib.saturating_mul(1024 * 1024),
        ledger: budget.ledger,
    };
    scg_sim::check_run(&loaded.scenario, &mut file_reader(loaded, log), options).map_err(
        |problems| {
            anyhow::anyhow!(
                "{}: invalid scenario ({} problem{}):\n{}",
                loaded.source,
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems
                    .iter()
                    .map(|p| format!("  - {p}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        },
    )
}

/// The default of `--memory-budget-mib` (scg_model::bounds::DEFAULT_MEMORY_BUDGET_BYTES).
pub const DEFAULT_MEMORY_BUDGET_MIB: u64 = scg_model::bounds::DEFAULT_MEMORY_BUDGET_BYTES >> 20;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let log = crate::output::InputLog::default();
    let budget = Budget {
        memory_mib: args.memory_budget_mib,
        ledger: !args.no_ledger,
    };
    let (loaded, run) = prepare_run(args.scenario.as_deref(), budget, &log)?;
    let (assets, inputs) = (run.assets, run.inputs);
    // Before the expensive work: --out is writable, locked, and contains no input.
    let mut output = crate::output::OutputDir::begin(&args.out)?;
    output.check_inputs(&log.paths())?;
    // Phases: each prosumer prepared, the year, settling and storing the ledger, writing.
    let prosumers = loaded.scenario.prosumers.len();
    let ledger_steps = if args.no_ledger { 0 } else { 2 };
    let bar = crate::progress::phases((prosumers + 2 + ledger_steps) as u64);
    // Without a ledger nothing settles the market's trades: not kept (a city's year of them).
    let options = scg_sim::SimOptions {
        keep_trades: !args.no_ledger,
        ..scg_sim::SimOptions::default()
    };
    let layout = args.layout.resolve(prosumers);
    // A city writes members.parquet (and settles its ledger) while the year runs instead of
    // keeping every member's year of series (nothing else needs them).
    let stream = layout == scg_report::Layout::City && scg_sim::can_stream(&assets);
    let mut progress = |done: usize, _| {
        bar.set_position(done as u64);
        if done == prosumers {
            bar.set_message("simulating year");
        }
    };
    let run_year = |stream: Option<scg_sim::MemberStream<'_>>,
                    progress: &mut dyn FnMut(usize, usize)| {
        scg_sim::simulate_streaming(
            &loaded.scenario,
            &assets,
            &inputs,
            args.seed,
            options,
            stream,
            progress,
        )
    };
    let run = scg_report::RunInfo {
        scg_version: env!("CARGO_PKG_VERSION").into(),
        scenario_source: loaded.source.clone(),
        ledger: None,
    };
    let ledger_dir = output.dir().to_path_buf();
    let (result, ledger) = if stream && !args.no_ledger {
        let city = StreamedCity {
            output: &output,
            scenario: &loaded.scenario,
            run: &run,
            ledger_dir: &ledger_dir,
            bar: &bar,
        };
        let (result, ledger) = city.run(|stream| run_year(Some(stream), &mut progress))?;
        (result, Some(ledger))
    } else {
        let result = if stream {
            let mut result = None;
            output.write_stream(scg_report::city::MEMBERS_PARQUET, |w| {
                // write_stream takes a std error: the chain is kept in the message.
                let (written, sim) =
                    stream_members(w, &loaded.scenario, None, &Recycle::new(), |stream| {
                        run_year(Some(stream), &mut progress)
                    })
                    .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
                result = Some(sim);
                Ok::<_, std::io::Error>(written)
            })?;
            result.context("internal error: the streamed year left no result")?
        } else {
            run_year(None, &mut progress)?
        };
        let render = Render {
            result: &result,
            scenario: &loaded.scenario,
            run: &run,
            layout,
            members_streamed: stream,
        };
        let ledger = if args.no_ledger {
            bar.set_message("writing outputs");
            render.write(&output)?;
            None
        } else {
            bar.set_message("settling ledger");
            Some(render_while_settling(&render, &output, || {
                settle_ledger(&result, &loaded, &ledger_dir, &bar)
            })?)
        };
        (result, ledger)
    };
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
            crate::console::summary(&result, ledger.as_ref(), &footer)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Blocks a consumer is done with, back to the year to be filled again (a city's year then
/// allocates a few blocks, not one per block: no fresh pages to fault in, no copy). Never
/// full: at most [`BLOCKS_IN_FLIGHT`] blocks exist.
struct Recycle {
    tx: std::sync::mpsc::SyncSender<MemberBlock>,
    rx: std::sync::mpsc::Receiver<MemberBlock>,
}

/// Blocks that can exist at once: one filled by the year, one queued and one being read by each
/// of the two consumers (the members.parquet encoder and the ledger's settlement), one spare.
const BLOCKS_IN_FLIGHT: usize = 6;

impl Recycle {
    fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(BLOCKS_IN_FLIGHT);
        Self { tx, rx }
    }
}

/// Hand `block` back to the year if no other consumer still reads it (the last one done
/// does); a year that has finished no longer takes it, and it is dropped.
fn recycle(block: Arc<MemberBlock>, tx: &std::sync::mpsc::SyncSender<MemberBlock>) {
    if let Ok(b) = Arc::try_unwrap(block) {
        let _ = tx.try_send(b);
    }
}

/// Where a streamed year's blocks go besides members.parquet: the ledger's settlement thread.
struct SettleFeed {
    heads: std::sync::mpsc::SyncSender<scg_sim::YearHead>,
    blocks: std::sync::mpsc::SyncSender<Arc<MemberBlock>>,
}

/// Run `simulate` (the year, given a [`scg_sim::MemberStream`]) while `members.parquet` is
/// encoded into `out` on a thread of its own, one row group per block, and, with `feed`, each
/// block goes to the ledger's settlement too: the encoding (and settling) of a block overlaps
/// the simulation of the next. At most one block waits for each consumer; the consumers hand
/// the blocks they are done with back through `recycle`.
fn stream_members<W: std::io::Write + Send>(
    out: W,
    scenario: &scg_model::Scenario,
    feed: Option<SettleFeed>,
    recycle_blocks: &Recycle,
    simulate: impl FnOnce(scg_sim::MemberStream<'_>) -> Result<scg_sim::SimResult, scg_sim::SimError>,
) -> anyhow::Result<(W, scg_sim::SimResult)> {
    let grid = scg_model::TimeGrid::new(&scenario.time, &scenario.location.time_zone)
        .map_err(anyhow::Error::msg)?;
    let ids: Vec<&str> = scenario.prosumers.iter().map(|p| p.id.as_str()).collect();
    let block_steps = scg_sim::members::block_steps(ids.len(), grid.len());
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<MemberBlock>>(1);
        let (ids, grid) = (&ids, &grid);
        let done_tx = recycle_blocks.tx.clone();
        let encoder = scope.spawn(move || {
            let mut writer = scg_report::city::MembersParquetWriter::new(out, ids, grid)?;
            for block in rx {
                writer.write_block(&block)?;
                recycle(block, &done_tx);
            }
            writer.finish()
        });
        let (heads, blocks) = match feed {
            Some(f) => (Some(f.heads), Some(f.blocks)),
            None => (None, None),
        };
        const ENCODER: &str = "members.parquet encoder";
        let stop = |what: &str| format!("the {what} stopped");
        let stopped = |what: &str| scg_sim::SimError::Output(stop(what));
        let mut consumer = |block: &mut MemberBlock| {
            let spare = recycle_blocks.rx.try_recv().unwrap_or_default();
            let full = Arc::new(std::mem::replace(block, spare));
            if let Some(blocks) = &blocks {
                blocks
                    .send(Arc::clone(&full))
                    .map_err(|_| stopped("ledger settlement"))?;
            }
            tx.send(full).map_err(|_| stopped(ENCODER))
        };
        let mut head = |h: &scg_sim::YearHead| match &heads {
            Some(heads) => heads
                .send(h.clone())
                .map_err(|_| stopped("ledger settlement")),
            None => Ok(()),
        };
        let simulated = simulate(scg_sim::MemberStream {
            block_steps,
            consumer: &mut consumer,
            head: Some(&mut head),
        });
        drop(tx);
        let written = encoder
            .join()
            .map_err(|_| anyhow::anyhow!("the members.parquet encoder panicked"))?;
        match (written, simulated) {
            (Ok(written), Ok(sim)) => Ok((written, sim)),
            // The encoder's own error explains a year it stopped.
            (Err(e), Err(scg_sim::SimError::Output(m))) if m == stop(ENCODER) => Err(e.into()),
            // Any other stop (the settlement's, the year's own error) is the cause: the
            // encoder only saw the year end early (an unfinished file).
            (_, Err(e)) => Err(e.into()),
            (Err(e), Ok(_)) => Err(e.into()),
        }
    })
}

/// A city's year with its ledger: the year runs while members.parquet is encoded and the
/// ledger settles, each on a thread of its own (`stream_members`, `settle_streamed`), so no
/// member's series is held for the year; then the outputs that need no ledger are rendered
/// while the settlement ends and its thread stores the ledger, and the rest once both are
/// done.
struct StreamedCity<'a> {
    output: &'a crate::output::OutputDir,
    scenario: &'a scg_model::Scenario,
    run: &'a scg_report::RunInfo,
    ledger_dir: &'a Path,
    bar: &'a indicatif::ProgressBar,
}

impl StreamedCity<'_> {
    fn run(
        &self,
        simulate: impl FnOnce(
            scg_sim::MemberStream<'_>,
        ) -> Result<scg_sim::SimResult, scg_sim::SimError>,
    ) -> anyhow::Result<(scg_sim::SimResult, scg_report::summary::LedgerInfo)> {
        let price = self.scenario.community.internal_price_eur_per_mwh;
        let recycle_blocks = Recycle::new();
        std::thread::scope(|scope| {
            let (heads, head_rx) = std::sync::mpsc::sync_channel(1);
            let (blocks, block_rx) = std::sync::mpsc::sync_channel(1);
            let done_tx = recycle_blocks.tx.clone();
            let (ledger_dir, bar) = (self.ledger_dir, self.bar);
            // Settled on its own thread, each block stored as it is made.
            let settling = scope.spawn(move || {
                let info = settle_streamed(&head_rx, &block_rx, &done_tx, price, ledger_dir)?;
                bar.inc(2);
                Ok(info)
            });
            let feed = SettleFeed { heads, blocks };
            let mut result = None;
            let streamed = self
                .output
                .write_stream(scg_report::city::MEMBERS_PARQUET, |w| {
                    // write_stream takes a std error: the chain is kept in the message.
                    let (written, sim) =
                        stream_members(w, self.scenario, Some(feed), &recycle_blocks, simulate)
                            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
                    result = Some(sim);
                    Ok::<_, std::io::Error>(written)
                });
            let mut settling = Some(settling);
            let mut settled = || -> anyhow::Result<scg_report::summary::LedgerInfo> {
                let handle = settling
                    .take()
                    .context("internal error: the settlement was joined twice")?;
                handle.join().unwrap_or_else(|_| {
                    Err(anyhow::anyhow!(
                        "internal error: the ledger thread panicked"
                    ))
                })
            };
            if let Err(year_err) = streamed {
                // A settlement that failed stopped the year: its error is the cause.
                return Err(match settled() {
                    Err(e) => e.context(format!("the year stopped: {year_err:#}")),
                    Ok(_) => year_err,
                });
            }
            let result = result.context("internal error: the streamed year left no result")?;
            let render = Render {
                result: &result,
                scenario: self.scenario,
                run: self.run,
                layout: scg_report::Layout::City,
                members_streamed: true,
            };
            self.bar.set_message("settling ledger");
            let ledger = render_and_finish(&render, self.output, settled)?;
            Ok((result, ledger))
        })
    }
}

/// Blocks of the ledger made and not yet taken by its store, at most (each is megabytes for
/// a city).
const LEDGER_BLOCKS_IN_FLIGHT: usize = 2;
/// Blocks of the ledger stored per (unsynced) write transaction, compressed on all cores
/// together: a fixed count, so that the file's bytes do not depend on the threads' timing.
const LEDGER_BLOCKS_PER_COMMIT: usize = 8;

/// The settlement of a streamed year, on its own thread: the year's head, then its blocks as
/// they come (each handed back through `done` once settled). Each block of the ledger is
/// stored in OUT/ledger (`out`) as it is made, on a thread of its own, so that the year's
/// ledger is never all in memory (`scg ledger verify OUT/ledger` replays it).
fn settle_streamed(
    heads: &std::sync::mpsc::Receiver<scg_sim::YearHead>,
    blocks: &std::sync::mpsc::Receiver<Arc<MemberBlock>>,
    done: &std::sync::mpsc::SyncSender<MemberBlock>,
    internal_price_eur_per_mwh: f64,
    out: &Path,
) -> anyhow::Result<scg_report::summary::LedgerInfo> {
    let head = heads
        .recv()
        .map_err(|_| anyhow::anyhow!("the year stopped before its first interval"))?;
    let mut next = |step: usize, settled: Option<Arc<MemberBlock>>| {
        if let Some(b) = settled {
            recycle(b, done);
        }
        blocks
            .recv()
            .map_err(|_| scg_settle::SettleError::BlocksEnded { step })
    };
    let mut writer = scg_ledger::store::StoreWriter::create(&out.join("ledger"))?;
    let (settled, stored) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(
            scg_ledger::block::Block,
            scg_ledger::state::BlockOutcome,
        )>(LEDGER_BLOCKS_IN_FLIGHT);
        let writer = &mut writer;
        let storing = scope.spawn(move || {
            let (mut blocks, mut outcomes) = (Vec::new(), Vec::new());
            for (block, outcome) in rx {
                blocks.push(block);
                outcomes.push(outcome);
                if blocks.len() == LEDGER_BLOCKS_PER_COMMIT {
                    writer.append(&blocks, &outcomes)?;
                    blocks.clear();
                    outcomes.clear();
                }
            }
            writer.append(&blocks, &outcomes)
        });
        let mut sink = move |block, outcome| {
            tx.send((block, outcome)).map_err(|_| {
                scg_ledger::LedgerError::Storage("the ledger's store stopped".into()).into()
            })
        };
        let settled = scg_settle::settle_blocks_into(
            &head,
            internal_price_eur_per_mwh,
            &scg_settle::Policy::default(),
            &mut next,
            &mut sink,
        );
        drop(sink);
        let stored = storing.join().unwrap_or_else(|_| {
            Err(scg_ledger::LedgerError::Storage(
                "internal error: the ledger's store thread panicked".into(),
            ))
        });
        (settled, stored)
    });
    // A store that failed stopped the settlement: its error is the cause.
    stored?;
    let settled = settled?;
    writer.finish(settled.ledger())?;
    Ok(scg_report::summary::LedgerInfo::from_settlement(
        &settled.summary,
        "ledger",
    ))
}

/// What `simulate` writes besides the ledger.
struct Render<'a> {
    result: &'a scg_sim::SimResult,
    scenario: &'a scg_model::Scenario,
    /// Without a ledger: the ledger's figures come to [`Render::finish`].
    run: &'a scg_report::RunInfo,
    layout: scg_report::Layout,
    /// members.parquet was written while the year ran.
    members_streamed: bool,
}

impl Render<'_> {
    /// Every file, serially, without a ledger (in the order of `render_all_layout`).
    fn write(&self, output: &crate::output::OutputDir) -> anyhow::Result<()> {
        let files =
            scg_report::render_all_layout(self.result, self.scenario, self.run, "", self.layout)?;
        for file in &files {
            output.write(file.name, &file.bytes)?;
        }
        self.write_members(output)
    }

    /// Render and write every file that does not depend on the ledger; what remains waits
    /// for the ledger's figures in the returned value ([`Render::finish`]).
    fn start(&self, output: &crate::output::OutputDir) -> anyhow::Result<scg_report::Prerendered> {
        let mut pre = scg_report::prerender(self.result, self.scenario, self.run, "", self.layout)?;
        for file in pre.take_series() {
            output.write(file.name, &file.bytes)?;
        }
        self.write_members(output)?;
        Ok(pre)
    }

    /// Write the files that carry the ledger's figures (`summary.json`, `report.html`) and the
    /// rest of `pre`.
    fn finish(
        pre: scg_report::Prerendered,
        output: &crate::output::OutputDir,
        ledger: scg_report::summary::LedgerInfo,
    ) -> anyhow::Result<()> {
        for file in pre.finish(Some(ledger))? {
            output.write(file.name, &file.bytes)?;
        }
        Ok(())
    }

    /// A city's members.parquet, unless it was written while the year ran.
    fn write_members(&self, output: &crate::output::OutputDir) -> anyhow::Result<()> {
        if self.layout == scg_report::Layout::City && !self.members_streamed {
            output.write_stream(scg_report::city::MEMBERS_PARQUET, |w| {
                scg_report::city::write_members_parquet(self.result, w)
            })?;
        }
        Ok(())
    }
}

/// Settle and store the ledger (`settle`, on a thread of its own) while this thread renders
/// and writes everything that does not need it; then write what does. The files are the bytes
/// `render_all_layout` gives with the ledger's figures: the two threads share no output file
/// (the ledger's thread writes in OUT/ledger only), and rendering reads the result only. An error of either
/// thread is returned (both, if both fail); the caller commits nothing then.
fn render_while_settling(
    render: &Render<'_>,
    output: &crate::output::OutputDir,
    settle: impl FnOnce() -> anyhow::Result<scg_report::summary::LedgerInfo> + Send,
) -> anyhow::Result<scg_report::summary::LedgerInfo> {
    std::thread::scope(|scope| {
        let settling = scope.spawn(settle);
        render_and_finish(render, output, || {
            settling.join().unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "internal error: the ledger thread panicked"
                ))
            })
        })
    })
}

/// Render and write everything that does not need the ledger, then wait for it (`settled`)
/// and write what does. An error of either is returned (both, if both fail); the caller
/// commits nothing then.
fn render_and_finish(
    render: &Render<'_>,
    output: &crate::output::OutputDir,
    settled: impl FnOnce() -> anyhow::Result<scg_report::summary::LedgerInfo>,
) -> anyhow::Result<scg_report::summary::LedgerInfo> {
    let started = render.start(output);
    let settled = settled();
    let (pre, ledger) = match (started, settled) {
        (Ok(pre), Ok(ledger)) => (pre, ledger),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
        (Err(render_err), Err(ledger_err)) => {
            return Err(anyhow::anyhow!(
                "{ledger_err:#}; and rendering failed too: {render_err:#}"
            ));
        }
    };
    Render::finish(pre, output, ledger.clone())?;
    Ok(ledger)
}

/// Settle the year on the RESCoin ledger (`scg-settle`) and store it in OUT/ledger (written from
/// the settlement's own ledger without a replay; `scg ledger verify OUT/ledger` replays it).
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
    bar.inc(1);
    store_ledger(&settled, out, bar)
}

/// Store a settled year in OUT/ledger (written from the settlement's own ledger without a
/// replay; `scg ledger verify OUT/ledger` replays it).
fn store_ledger(
    settled: &scg_ledger::settlement::SettledYear,
    out: &Path,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<scg_report::summary::LedgerInfo> {
    let dir = out.join("ledger");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    bar.set_message("storing ledger");
    scg_ledger::store::store(&dir, settled)?;
    bar.inc(1);
    Ok(scg_report::summary::LedgerInfo::from_settlement(
        &settled.summary,
        "ledger",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A settlement that fails in the middle of a streamed city's year stops the year: the
    /// run's error carries the settlement's cause (here a member's grid import made negative in
    /// the year's second block, which the settlement refuses, naming the step and member), the
    /// year makes only a few more blocks, and nothing is committed to --out, whose temporary
    /// directory is removed.
    #[test]
    fn a_settlement_failing_mid_year_stops_the_year_and_commits_nothing() {
        let options = scg_model::city::CityOptions {
            members: 60,
            evs: 0,
            ev_policy: "llf".into(),
        };
        let text = scg_model::city::city_toml(&options, 7).unwrap();
        let loaded = LoadedScenario {
            scenario: scg_model::Scenario::parse_toml(&text, "test city").unwrap(),
            base_dir: PathBuf::from("."),
            source: "test city".into(),
        };
        let log = crate::output::InputLog::default();
        let budget = Budget {
            memory_mib: DEFAULT_MEMORY_BUDGET_MIB,
            ledger: true,
        };
        let run = check_loaded(&loaded, budget, &log).unwrap();
        assert!(scg_sim::can_stream(&run.assets));
        let dir = std::env::temp_dir().join(format!("scg-mid-year-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let mut output = crate::output::OutputDir::begin(&out).unwrap();
        output.check_inputs(&[]).unwrap();
        let tmp = output.dir().to_path_buf();
        let info = scg_report::RunInfo {
            scg_version: env!("CARGO_PKG_VERSION").into(),
            scenario_source: loaded.source.clone(),
            ledger: None,
        };
        let bar = indicatif::ProgressBar::hidden();
        let city = StreamedCity {
            output: &output,
            scenario: &loaded.scenario,
            run: &info,
            ledger_dir: &tmp,
            bar: &bar,
        };
        let sim = scg_sim::SimOptions {
            keep_trades: true,
            ..scg_sim::SimOptions::default()
        };
        let blocks = std::cell::Cell::new(0usize);
        let err = city
            .run(|stream| {
                let scg_sim::MemberStream { consumer, head, .. } = stream;
                let mut faulty = |b: &mut MemberBlock| {
                    blocks.set(blocks.get() + 1);
                    if blocks.get() == 2 {
                        b.columns[scg_sim::members::Flow::GridImport as usize][0] = -5.0;
                    }
                    consumer(b)
                };
                let head = head.map(|h| -> &mut scg_sim::HeadConsumer<'_> { h });
                let stream = scg_sim::MemberStream {
                    // Blocks of a week: the year's 53 blocks (at 60 members it would make 2).
                    block_steps: 24 * 7,
                    consumer: &mut faulty,
                    head,
                };
                let (assets, inputs) = (&run.assets, &run.inputs);
                scg_sim::simulate_streaming(
                    &loaded.scenario,
                    assets,
                    inputs,
                    42,
                    sim,
                    Some(stream),
                    &mut |_, _| {},
                )
            })
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("negative energy"), "{message}");
        assert!(message.contains("the year stopped"), "{message}");
        assert!(message.contains("step 168, member"), "{message}");
        // The settlement's stop is the cause, not the unfinished members.parquet.
        assert!(
            message.contains("the ledger settlement stopped"),
            "{message}"
        );
        assert!(!message.contains("out of order"), "{message}");
        // The year stopped soon after the block the settlement refused, not at its end.
        assert!(blocks.get() < 10, "{} of 53 blocks were made", blocks.get());
        drop(output);
        assert!(!out.exists(), "--out was committed");
        assert!(!tmp.exists(), "the temporary output was left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
