//! Everything `scg simulate` does short of simulating, in one function both `simulate` and
//! `scg scenario check` call, so that the two cannot drift: type and validate the component
//! sections, read and parse every file the scenario names (through the caller's reader),
//! estimate the run's memory and time, and refuse a run above the memory budget. Every problem
//! is collected, not just the first.
//!
//! The estimate is a linear cost model whose coefficients come from `scg simulate` of the
//! built-in scenario with 5 and 15 prosumers (debug build, `/usr/bin/time`, see docs/scenario.md
//! "Memory budget"), checked against generated cities of 10 to 1,000 members (release build,
//! docs/scaling.md); it is a guide, not a promise. Never does I/O.

use crate::assets::Assets;
use crate::inputs::{self, Reader, ResolvedInputs};
use scg_model::Scenario;

/// Resident memory of a run before any prosumer, bytes (measured intercept: 16 MiB; doubled).
pub const BASE_BYTES: u64 = 32 * 1024 * 1024;
/// Memory per prosumer per simulated step, bytes: the prepared series, the year's flows, the
/// report columns and the ledger's meter readings. Measured slope: 18.4 MiB per prosumer of
/// the built-in scenario at 8,760 steps (2,198 B per step, its 25 EVs included). Generated
/// cities (release build, docs/scaling.md) measure 1,669 B with the ledger (10 → 50 members)
/// and 326 B with `--no-ledger` (100 → 1,000 members): the coefficient holds with the ledger
/// and over-estimates a `--no-ledger` run about 6.7 times.
pub const BYTES_PER_PROSUMER_STEP: u64 = 2_200;
/// Memory per prosumer per simulated step of a run without a ledger (`scg simulate
/// --no-ledger`), bytes: measured 49 B on generated cities of 1,000 and 10,000 members without
/// EVs at 8,760 steps (410 MiB and 4,146 MiB peak, release build, city output layout,
/// docs/scaling.md); doubled.
pub const BYTES_PER_PROSUMER_STEP_NO_LEDGER: u64 = 100;
/// Memory of a run that streams its members' series (a city: [`crate::members::CITY_LAYOUT_MIN_MEMBERS`]
/// members or more without a home agent, [`crate::engine::simulate_streaming`]), with or without
/// its ledger, whatever its size, bytes: the blocks in flight and the encoder's and the
/// settlement's buffers, which per member-step figures of small cities counted as if they grew
/// with the year. The intercept of a fit on generated cities (release build, docs/scaling.md
/// "The estimate at `scg scenario check`"): 239 MiB without the ledger, 389 MiB with it;
/// rounded up.
pub const STREAMED_BASE_BYTES: u64 = 512 * 1024 * 1024;
/// Memory per prosumer per simulated step of a run that streams its members' series without a
/// ledger (`scg simulate --no-ledger` of a city, on top of [`STREAMED_BASE_BYTES`]), bytes: the
/// slope of a fit on generated cities at 15-minute steps (release build, 4 December 2026,
/// docs/scaling.md), 1,000 members and 500 LLF EVs (494-507 MiB peak) to 10,000 members and
/// 5,000 LLF EVs (2,553 MiB), with the EV allowance taken off: 4.7 B; rounded up with room.
/// The estimate is then 1.27 times that 10,000-member peak and 1.6 times the 1,000-member one.
/// (18 B before the streamed run drew its members' loads again as the year reads them and
/// computed their PV at each step, `crate::prepare::PrepareOptions::draw_loads` and
/// `draw_pv`, instead of keeping both: 5,691-5,910 MiB.)
pub const BYTES_PER_PROSUMER_STEP_STREAMED: u64 = 6;
/// Communities of at least this many members settle their year in the ledger's compact layout
/// (one record per member and day, `scg_settle::Layout::Compact`; `scg_settle` takes its
/// default from here so the estimate and the settlement agree).
pub const COMPACT_LEDGER_FROM_MEMBERS: usize = 50;
/// Memory per prosumer per simulated step of a run whose ledger is in the compact layout,
/// bytes: measured 196 B (100 members, 172 MiB peak) and 177 B (1,000 members, 1,511 MiB) on
/// generated cities at 8,760 steps (release build, under load, docs/scaling.md "The compact
/// layout"); doubled.
pub const BYTES_PER_PROSUMER_STEP_COMPACT_LEDGER: u64 = 400;
/// Memory per prosumer per simulated step of a streamed run that settles its ledger while the
/// year runs (`scg simulate` of a city from [`crate::members::CITY_LAYOUT_MIN_MEMBERS`]
/// members on, compact ledger layout, `scg_settle::settle_blocks_into`, each block of the
/// ledger stored as it is made; on top of [`STREAMED_BASE_BYTES`]), bytes: the slope of a fit
/// on generated cities at 15-minute steps, release build (docs/scaling.md, 4 December 2026),
/// 1,000 members and 500 LLF EVs (771-772 MiB peak, ledger 131.1 MB) to 10,000 members and
/// 5,000 LLF EVs (3,548 MiB, ledger 1.26 GB), with the EV allowance taken off: 7.2 B; rounded
/// up with room. The estimate is then 1.20 times the 10,000-member peak and 1.18 times the
/// 1,000-member one. (20 B when each member's load and PV were kept all year: 1,019 and
/// 6,682-6,962 MiB; 24 B when the year's blocks were also all kept until the end: 7,538-8,072
/// MiB.)
pub const BYTES_PER_PROSUMER_STEP_STREAMED_LEDGER: u64 = 9;
/// Memory per EV per simulated day, bytes (its sessions and plans). Not measured on its own
/// (the slope above includes 25 EVs per prosumer); an allowance on top.
pub const BYTES_PER_VEHICLE_DAY: u64 = 400;
/// Run time per prosumer per step, nanoseconds (local and community stage, accounting,
/// ledger settlement): measured 80 µs of CPU per prosumer-step with the ledger on generated
/// cities of 10 and 50 households (release build, docs/scaling.md; the ledger is nearly all
/// of it: 2.1 µs without).
pub const NANOS_PER_PROSUMER_STEP: u64 = 80_000;
/// Run time per prosumer per step without a ledger, nanoseconds. Measured at ec7d72e (release
/// build, user + system CPU, docs/scaling.md): 0.32-0.34 µs on a generated city of 1,000
/// members without EVs at 60 minutes (2.79 and 3.00 s for 8.76 M member-steps), 0.26 µs on
/// one of 10,000 members without EVs at 15 minutes (90.7 and 93.8 s for 350.4 M); rounded up.
/// (At 1 µs before, from 0.39 µs measured on 2 December: the estimate was 5.7 times the
/// 10,000-member city's CPU time.)
pub const NANOS_PER_PROSUMER_STEP_NO_LEDGER: u64 = 400;
/// Run time per prosumer per step with the compact ledger layout, nanoseconds: measured 5.0 µs
/// of CPU on a generated city of 1,000 members (44.0 s for 8.76 M member-steps, release build,
/// load average about 2) and 4.2 µs on one of 100 members (under load), docs/scaling.md.
pub const NANOS_PER_PROSUMER_STEP_COMPACT_LEDGER: u64 = 5_000;
/// Run time per prosumer per step of a streamed run that settles its ledger while the year
/// runs (see [`BYTES_PER_PROSUMER_STEP_STREAMED_LEDGER`]), nanoseconds: CPU time (user +
/// system, release build, 4 December 2026, docs/scaling.md) less the EVs' share at 0.17 µs per
/// EV-step: 0.73 µs on the 10,000-member city with 5,000 LLF EVs at 15 minutes (286.2 s), 0.52
/// µs on a 1,000-member one with 500 at 15 minutes (21.1 s), and without EVs at 60 minutes
/// 1.37 µs at 1,000 members (12.0 s) and 1.57 µs at 10,000 (137.2 s, 20c2377): the ledger's
/// cost is partly per member-day, so fewer steps a day cost more each; rounded up from the
/// largest. (The 5 µs of the kept layout made the 10,000-member city's estimate 1,805 s, six
/// times its CPU time.)
pub const NANOS_PER_PROSUMER_STEP_STREAMED_LEDGER: u64 = 1_600;
/// Run time per EV per step under the MPC policy, nanoseconds: measured 15.1 s per prosumer
/// with 25 EVs at 8,760 steps (69 µs per EV-step, debug build on a shared 2-core machine).
pub const NANOS_PER_VEHICLE_STEP: u64 = 69_000;
/// Run time per EV per step under a rule-based policy (fcfs, edf, llf, round-robin,
/// uncontrolled), nanoseconds: measured at ec7d72e as the difference of two generated cities
/// of 10,000 members at 15 minutes, with 5,000 LLF EVs (122.5 s of CPU, twice) and without
/// (90.7 and 93.8 s): 0.16-0.18 µs per EV-step; rounded up with room for the noise of a
/// difference. (1.3 µs measured on a city of 100 members on 2 December, 2 µs before.) The
/// estimate of that 10,000-member city without a ledger is then 193 s, 1.6 times its CPU time.
pub const NANOS_PER_RULE_VEHICLE_STEP: u64 = 300;

/// What a run is expected to cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEstimate {
    /// Peak resident memory, bytes.
    pub memory_bytes: u64,
    /// Wall time on one core, milliseconds.
    pub time_ms: u64,
    /// Steps in the year.
    pub steps: u64,
    /// EVs over all prosumers.
    pub vehicles: u64,
}

/// Estimate a run from its scenario and typed assets (saturating: never overflows); `ledger`:
/// whether the run settles its year on the ledger (in the compact layout from
/// [`COMPACT_LEDGER_FROM_MEMBERS`] members on). A run without a ledger is estimated as
/// streamed from [`crate::members::CITY_LAYOUT_MIN_MEMBERS`] members on (the default layout;
/// `--layout wide` keeps the series and may need up to the unstreamed figure).
pub fn estimate(scenario: &Scenario, assets: &Assets, ledger: bool) -> RunEstimate {
    let steps = 365 * 24 * 60 / u64::from(scenario.time.step_minutes.max(1));
    let prosumers = scenario.prosumers.len() as u64;
    let fleets = || assets.prosumers.iter().filter_map(|p| p.ev.as_ref());
    let vehicles: u64 = fleets()
        .map(scg_ev::fleet::FleetConfig::vehicles)
        .fold(0, u64::saturating_add);
    // Vehicle-steps weighted by their policy's cost.
    let vehicle_nanos_per_step: u64 = fleets()
        .map(|f| {
            let per_step = if f.policy == "mpc" {
                NANOS_PER_VEHICLE_STEP
            } else {
                NANOS_PER_RULE_VEHICLE_STEP
            };
            f.vehicles().saturating_mul(per_step)
        })
        .fold(0, u64::saturating_add);
    let compact = prosumers >= COMPACT_LEDGER_FROM_MEMBERS as u64;
    let streamed = prosumers >= crate::members::CITY_LAYOUT_MIN_MEMBERS as u64
        && crate::engine::can_stream(assets);
    let (bytes_per_step, nanos_per_step) = match (ledger, compact) {
        (true, true) if streamed => (
            BYTES_PER_PROSUMER_STEP_STREAMED_LEDGER,
            NANOS_PER_PROSUMER_STEP_STREAMED_LEDGER,
        ),
        (false, _) if streamed => (
            BYTES_PER_PROSUMER_STEP_STREAMED,
            NANOS_PER_PROSUMER_STEP_NO_LEDGER,
        ),
        (false, _) => (
            BYTES_PER_PROSUMER_STEP_NO_LEDGER,
            NANOS_PER_PROSUMER_STEP_NO_LEDGER,
        ),
        (true, true) => (
            BYTES_PER_PROSUMER_STEP_COMPACT_LEDGER,
            NANOS_PER_PROSUMER_STEP_COMPACT_LEDGER,
        ),
        (true, false) => (BYTES_PER_PROSUMER_STEP, NANOS_PER_PROSUMER_STEP),
    };
    let memory_bytes = BASE_BYTES
        .saturating_add(if streamed && (compact || !ledger) {
            STREAMED_BASE_BYTES
        } else {
            0
        })
        .saturating_add(
            prosumers
                .saturating_mul(steps)
                .saturating_mul(bytes_per_step),
        )
        .saturating_add(vehicles.saturating_mul(365 * BYTES_PER_VEHICLE_DAY));
    let nanos = prosumers
        .saturating_mul(steps)
        .saturating_mul(nanos_per_step)
        .saturating_add(vehicle_nanos_per_step.saturating_mul(steps));
    RunEstimate {
        memory_bytes,
        time_ms: nanos / 1_000_000,
        steps,
        vehicles,
    }
}

/// A scenario ready to simulate.
#[derive(Debug, Clone)]
pub struct CheckedRun {
    pub assets: Assets,
    pub inputs: ResolvedInputs,
    pub estimate: RunEstimate,
}

/// Options of [`check_run`].
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Refuse a run whose estimated memory is above this, bytes.
    pub memory_budget_bytes: u64,
    /// Whether the run settles its year on the ledger (the default `scg simulate`; its
    /// memory per prosumer-step is many times a run's without).
    pub ledger: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            memory_budget_bytes: scg_model::bounds::DEFAULT_MEMORY_BUDGET_BYTES,
            ledger: true,
        }
    }
}

/// Validate the scenario, type the assets, read and parse every input, estimate the run and
/// hold it to the budget.
/// `Err` lists every problem (field paths for the scenario, file and line for data files).
pub fn check_run(
    scenario: &Scenario,
    read: &mut Reader<'_>,
    options: CheckOptions,
) -> Result<CheckedRun, Vec<String>> {
    let mut problems: Vec<String> = scenario
        .validate()
        .iter()
        .map(ToString::to_string)
        .collect();
    if scenario.prosumers.len() > scg_model::MAX_PROSUMERS {
        // Do not read a file per prosumer of an absurd scenario.
        return Err(problems);
    }
    let assets = Assets::from_scenario(scenario)
        .map_err(|errors| problems.extend(errors.iter().map(ToString::to_string)))
        .ok();
    let mut loads = Vec::with_capacity(scenario.prosumers.len());
    for p in &scenario.prosumers {
        match inputs::resolve_load(&p.load, read) {
            Ok(load) => loads.push(load),
            Err(e) => problems.push(e.to_string()),
        }
    }
    let zonal = inputs::resolve_zonal_prices(scenario, read)
        .map_err(|e| problems.push(e.to_string()))
        .ok()
        .flatten();
    // The weather file is named by the solar section, which must have typed.
    let weather = assets
        .as_ref()
        .and_then(|a| {
            inputs::resolve_weather(scenario, a, read)
                .map_err(|e| problems.push(e.to_string()))
                .ok()
        })
        .flatten();
    let Some(assets) = assets else {
        return Err(problems);
    };
    let estimate = estimate(scenario, &assets, options.ledger);
    if estimate.memory_bytes > options.memory_budget_bytes {
        problems.push(format!(
            "the run needs an estimated {} MiB, above the memory budget of {} MiB \
             ({} prosumers × {} steps, {} EVs; see docs/scenario.md \"Memory budget\")",
            estimate.memory_bytes >> 20,
            options.memory_budget_bytes >> 20,
            scenario.prosumers.len(),
            estimate.steps,
            estimate.vehicles
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CheckedRun {
        assets,
        inputs: ResolvedInputs {
            loads,
            weather,
            zonal_prices_eur_per_mwh: zonal,
        },
        estimate,
    })
}
