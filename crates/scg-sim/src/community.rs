//! The community as a state machine that advances exactly one interval at a time.
//!
//! [`Community`] owns every prosumer's state — its battery and converter, its EV charging site
//! with the agent that drives it (`scg_ev::fleet::Fleet`: sessions, learned habits, policy,
//! swap station) — and the community stage (pro-rata sharing or the community market with its
//! year of trades). [`Community::step`] takes one interval's measurements or synthetic values
//! ([`IntervalInputs`]: load, PV, wind per prosumer, the retail price and the grid-peak
//! signal) and an explicit [`Forecast`], and returns what happened ([`IntervalOutcome`]).
//! The simulated year ([`crate::year`]) is a loop feeding it synthetic inputs; a live node
//! would feed it meter readings.
//!
//! Order of the stages inside one interval:
//! 1. EV sites: each fleet's agent decides its charge, V2G and swap-station power from the
//!    interval's price and grid-peak signal and the forecast;
//! 2. net load: load + EV charging + swap chargers against PV + wind + V2G;
//! 3. **home flexibility hook**: a [`FlexibleLoad`] (e.g. `scg-home`) may reshape each
//!    prosumer's load here, before storage sees it — the one documented place for it;
//! 4. storage: each prosumer's battery behind its converter ([`crate::dispatch::local_step`]);
//! 5. community stage: pro-rata sharing or the market ([`Sharing`]), then the grid;
//! 6. energy balance asserted (`assert!`, every prosumer, every interval, market included).
//!
//! Stage 1 reads only the price, the grid-peak signal and the forecast, never what stages 2-6
//! did, so a caller may run it ahead on another thread: [`Community::take_fleets`], the free
//! [`step_fleets`] (which skips the sites that rest, [`Fleets`]), then
//! [`Community::step_with_ev`] with the powers it produced (the year loop does so from
//! [`PARALLEL_FLEETS_FROM`] prosumers on, [`fleets_ahead`]).
//!
//! Never looks at future inputs except through the forecast it is handed; never does I/O.

use crate::ComponentError;
use crate::SimError;
use crate::dispatch::{
    Allocation, CommunityStage, MemberBattery, ProRata, StepContext, StepFlows, StepInput,
    StepScratch, community_step_with,
};
use crate::market_stage::{MarketStage, MarketYear};
use scg_ev::fleet::{EvStepPower, Fleet, StepSignals};

/// From this many prosumers on, [`FleetThreads::Parallel`] runs a step's EV fleets on rayon
/// and the year loop steps them ahead on a thread of their own ([`fleets_ahead`]); below, in
/// order on the calling thread. Either way each result lands in its own slot: the same bytes.
const PARALLEL_FLEETS_FROM: usize = 16;

/// One prosumer's measured (or synthetic) interval, average kW over the interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProsumerInterval {
    /// Electric load without EVs, kW.
    pub load_kw: f64,
    /// PV output, AC kW.
    pub pv_kw: f64,
    /// Wind output, AC kW.
    pub wind_kw: f64,
}

/// Everything the community learns about one interval.
#[derive(Debug, Clone, Copy)]
pub struct IntervalInputs<'a> {
    /// Interval number since the start (0, 1, 2, ...): must follow the previous one.
    pub step: usize,
    /// One entry per prosumer, in scenario order.
    pub prosumers: &'a [ProsumerInterval],
    /// Retail (purchase) price now, EUR/MWh: what the EV agents plan against.
    pub retail_eur_per_mwh: f64,
    /// The main grid is at peak now.
    pub grid_at_peak: bool,
}

/// What the community is told about the intervals ahead, starting with the current one.
/// Empty slices mean "no forecast" (the current values are assumed to hold).
#[derive(Debug, Clone, Copy, Default)]
pub struct Forecast<'a> {
    /// Retail price from this interval on, EUR/MWh.
    pub retail_eur_per_mwh: &'a [f64],
    /// Grid-peak flags from this interval on.
    pub grid_at_peak: &'a [bool],
    /// The community's surplus (renewables above loads, before storage and EVs) from this
    /// interval on, kW: Σ over prosumers of max(0, PV + wind − load); empty when no stage
    /// reads it (the EV agents with feed-in prices, a [`FlexibleLoad`]).
    pub community_surplus_kw: &'a [f64],
    /// What that surplus earns when nobody in the community uses it (the feed-in price),
    /// EUR/MWh, from this interval on.
    pub surplus_value_eur_per_mwh: &'a [f64],
}

/// How far ahead the EV agents get the community's effective price, steps (the MPC's
/// longest horizon is 288 steps).
pub const EV_PRICE_HORIZON_STEPS: usize = 672;

/// A flexible-load stage between the net load and storage (module docs, stage 3). It returns
/// the prosumer's load after shifting; the energy it defers is its own business (the stage is
/// stateful), but the load it returns is what the balance is asserted against. The home
/// agents (`crate::home::HomeStage`, `scg-home`) are one.
pub trait FlexibleLoad: Send {
    /// Load of prosumer `prosumer` in interval `step` after flexibility, kW (≥ 0), or why the
    /// stage could not decide (e.g. its optimiser failed).
    fn adjust_load_kw(
        &mut self,
        prosumer: usize,
        step: usize,
        load_kw: f64,
        renewable_kw: f64,
        forecast: &Forecast<'_>,
    ) -> Result<f64, String>;
}

/// The community stage: how residuals become P2P and grid flows.
pub enum Sharing<'a> {
    /// The seed paper's pro-rata sharing.
    ProRata,
    /// The community market (`[community.market]`), with its year of trades.
    Market(Box<MarketStage<'a>>),
    /// Any other stage, borrowed.
    Custom(&'a mut dyn CommunityStage),
}

impl std::fmt::Debug for Sharing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sharing::ProRata => "Sharing::ProRata",
            Sharing::Market(_) => "Sharing::Market",
            Sharing::Custom(_) => "Sharing::Custom",
        })
    }
}

impl CommunityStage for Sharing<'_> {
    fn allocate(
        &mut self,
        step: usize,
        residual_kw: &[f64],
        ctx: &StepContext,
        out: &mut [Allocation],
    ) -> Result<(), ComponentError> {
        match self {
            Sharing::ProRata => ProRata.allocate(step, residual_kw, ctx, out),
            Sharing::Market(m) => m.allocate(step, residual_kw, ctx, out),
            Sharing::Custom(s) => s.allocate(step, residual_kw, ctx, out),
        }
    }
}

/// The community's fixed settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommunitySettings {
    /// Interval length, hours.
    pub dt_h: f64,
    /// The community connection's import limit, kW (infinite when none).
    pub max_purchase_kw: f64,
    /// The community connection's export limit, kW (infinite when none).
    pub max_sale_kw: f64,
}

/// What happened in one interval (borrowed from the community until the next step).
#[derive(Debug, Clone, Copy)]
pub struct IntervalOutcome<'c> {
    /// Every prosumer's flows (load includes its EVs; renewable includes V2G).
    pub flows: &'c [StepFlows],
    /// Every prosumer's EV site power (all zero without a fleet).
    pub ev: &'c [EvStepPower],
    /// Every prosumer's battery after the interval.
    pub batteries: &'c [MemberBattery],
    /// The interval's P2P trades, when the market keeps them (empty otherwise, and under
    /// pro-rata sharing).
    pub trades: &'c [crate::market_stage::MarketTrade],
}

/// The community's state at the end (what [`Community::finish`] hands back).
#[derive(Debug)]
pub struct CommunityEnd {
    pub batteries: Vec<MemberBattery>,
    pub fleets: Vec<Option<Fleet>>,
    /// The market's year, when the stage was a market.
    pub market: Option<MarketYear>,
}

/// The community state machine (module docs).
pub struct Community<'a> {
    settings: CommunitySettings,
    batteries: Vec<MemberBattery>,
    fleets: Fleets,
    sharing: Sharing<'a>,
    flex: Option<Box<dyn FlexibleLoad + 'a>>,
    step_inputs: Vec<StepInput>,
    flows: Vec<StepFlows>,
    ev: Vec<EvStepPower>,
    scratch: StepScratch,
    next_step: usize,
    any_fleet: bool,
    /// The EV agents' price forecast of the interval (reused buffer).
    ev_price: Vec<f64>,
}

impl std::fmt::Debug for Community<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Community")
            .field("settings", &self.settings)
            .field("sharing", &self.sharing)
            .field("next_step", &self.next_step)
            .finish_non_exhaustive()
    }
}

impl<'a> Community<'a> {
    /// A community of `batteries.len()` prosumers; `fleets[i]` is prosumer `i`'s EV site.
    pub fn new(
        settings: CommunitySettings,
        batteries: Vec<MemberBattery>,
        fleets: Vec<Option<Fleet>>,
        sharing: Sharing<'a>,
    ) -> Result<Self, SimError> {
        let n = batteries.len();
        if fleets.len() != n {
            return Err(SimError::Scenario(format!(
                "{} EV sites for {n} prosumers",
                fleets.len()
            )));
        }
        Ok(Self {
            settings,
            any_fleet: fleets.iter().any(Option::is_some),
            batteries,
            fleets: Fleets::new(fleets),
            sharing,
            flex: None,
            step_inputs: vec![StepInput::default(); n],
            flows: Vec::with_capacity(n),
            ev: vec![EvStepPower::default(); n],
            scratch: StepScratch::default(),
            next_step: 0,
            ev_price: Vec::new(),
        })
    }

    /// Plug a flexible-load stage in (module docs, stage 3).
    pub fn with_flexible_load(mut self, flex: Box<dyn FlexibleLoad + 'a>) -> Self {
        self.flex = Some(flex);
        self
    }

    /// Whether a flexible-load stage is plugged in (it is the one reader of the surplus
    /// forecast).
    pub fn has_flexible_load(&self) -> bool {
        self.flex.is_some()
    }

    /// Number of prosumers.
    pub fn len(&self) -> usize {
        self.batteries.len()
    }

    /// Whether the community has no prosumer.
    pub fn is_empty(&self) -> bool {
        self.batteries.is_empty()
    }

    /// Advance one interval (module docs).
    pub fn step(
        &mut self,
        inputs: &IntervalInputs<'_>,
        forecast: &Forecast<'_>,
    ) -> Result<IntervalOutcome<'_>, SimError> {
        self.advance(inputs, forecast, false)
    }

    /// [`Community::step`] with stage 1 done elsewhere: `ev` is what the EV sites (taken out
    /// with [`Community::take_fleets`]) decided for this interval, by [`step_fleets`] with
    /// this interval's [`fleet_signals`]. The same bytes as [`Community::step`].
    pub fn step_with_ev(
        &mut self,
        inputs: &IntervalInputs<'_>,
        forecast: &Forecast<'_>,
        ev: &mut Vec<EvStepPower>,
    ) -> Result<IntervalOutcome<'_>, SimError> {
        if ev.len() != self.ev.len() {
            return Err(SimError::Scenario(format!(
                "interval {}: {} EV site powers for {} prosumers",
                inputs.step,
                ev.len(),
                self.ev.len()
            )));
        }
        std::mem::swap(&mut self.ev, ev);
        self.advance(inputs, forecast, true)
    }

    /// Take the EV sites out (to step them ahead of the community on another thread, each
    /// interval's result then handed to [`Community::step_with_ev`]); [`Community::put_fleets`]
    /// puts them back before [`Community::finish`].
    pub fn take_fleets(&mut self) -> Fleets {
        std::mem::take(&mut self.fleets)
    }

    /// Put back what [`Community::take_fleets`] took.
    pub fn put_fleets(&mut self, fleets: Fleets) {
        self.fleets = fleets;
    }

    /// Whether any prosumer has an EV site.
    pub fn has_fleets(&self) -> bool {
        self.any_fleet
    }

    /// One interval; `ev_given` when stage 1's result is already in `self.ev`.
    fn advance(
        &mut self,
        inputs: &IntervalInputs<'_>,
        forecast: &Forecast<'_>,
        ev_given: bool,
    ) -> Result<IntervalOutcome<'_>, SimError> {
        let n = self.batteries.len();
        if inputs.prosumers.len() != n || inputs.step != self.next_step {
            return Err(SimError::Scenario(format!(
                "interval {} with {} prosumers, expected interval {} with {n}",
                inputs.step,
                inputs.prosumers.len(),
                self.next_step
            )));
        }
        self.next_step += 1;
        if self.any_fleet && !ev_given {
            let signals = fleet_signals(inputs, forecast, &mut self.ev_price);
            step_fleets(
                &mut self.fleets,
                &mut self.ev,
                inputs.step,
                &signals,
                FleetThreads::Parallel,
            )?;
        }
        for (i, (p, ev)) in inputs.prosumers.iter().zip(&self.ev).enumerate() {
            let renewable_kw = p.pv_kw + p.wind_kw + ev.v2g_kw;
            let mut load_kw = p.load_kw + (ev.charge_kw + ev.swap_kw);
            if let Some(flex) = self.flex.as_mut() {
                load_kw = flex
                    .adjust_load_kw(i, inputs.step, load_kw, renewable_kw, forecast)
                    .map_err(|e| SimError::Scenario(format!("prosumers[{i}].home: {e}")))?;
            }
            self.step_inputs[i] = StepInput {
                load_kw,
                renewable_kw,
            };
        }
        let ctx = StepContext {
            dt_h: self.settings.dt_h,
            grid_at_peak: inputs.grid_at_peak,
            max_purchase_kw: self.settings.max_purchase_kw,
            max_sale_kw: self.settings.max_sale_kw,
        };
        community_step_with(
            inputs.step,
            &self.step_inputs,
            &mut self.batteries,
            &ctx,
            &mut self.sharing,
            &mut self.scratch,
            &mut self.flows,
        )?;
        for f in &self.flows {
            // Sources = uses for every prosumer, whatever the stage (market included).
            let scale = 1.0 + f.load_kw + f.renewable_kw;
            assert!(
                f.balance_error_kw().abs() <= 1e-9 * scale,
                "energy balance broken at interval {}: {f:?}",
                inputs.step
            );
        }
        let trades = match &self.sharing {
            Sharing::Market(m) => m.interval_trades(),
            Sharing::ProRata | Sharing::Custom(_) => &[],
        };
        Ok(IntervalOutcome {
            flows: &self.flows,
            ev: &self.ev,
            batteries: &self.batteries,
            trades,
        })
    }

    /// The community's state at the end.
    pub fn finish(self) -> CommunityEnd {
        let market = match &self.sharing {
            Sharing::Market(m) => Some(m.finish()),
            _ => None,
        };
        CommunityEnd {
            batteries: self.batteries,
            fleets: self.fleets.sites,
            market,
        }
    }
}

/// What the EV agents see in an interval: the price forecast is the effective price
/// ([`effective_price`]) where the community's surplus is forecast (built in `price`, a reused
/// buffer), the retail forecast otherwise; and the grid-peak signal.
pub fn fleet_signals<'s>(
    inputs: &IntervalInputs<'_>,
    forecast: &Forecast<'s>,
    price: &'s mut Vec<f64>,
) -> StepSignals<'s> {
    // The agents see the community: where its surplus is forecast, a kWh charged costs the
    // community what that surplus would have earned (feed-in), not the retail price.
    let price_forecast: &'s [f64] = if forecast.community_surplus_kw.is_empty() {
        forecast.retail_eur_per_mwh
    } else {
        let h = forecast
            .retail_eur_per_mwh
            .len()
            .min(forecast.community_surplus_kw.len())
            .min(forecast.surplus_value_eur_per_mwh.len())
            .min(EV_PRICE_HORIZON_STEPS);
        price.clear();
        price.extend(
            forecast.retail_eur_per_mwh[..h]
                .iter()
                .zip(&forecast.community_surplus_kw[..h])
                .zip(&forecast.surplus_value_eur_per_mwh[..h])
                .map(|((retail, surplus), value)| effective_price(*retail, *surplus, *value)),
        );
        &price[..]
    };
    StepSignals {
        price_eur_per_mwh: price_forecast
            .first()
            .copied()
            .unwrap_or(inputs.retail_eur_per_mwh),
        grid_peak: inputs.grid_at_peak,
        price_forecast_eur_per_mwh: price_forecast,
        grid_peak_forecast: forecast.grid_at_peak,
    }
}

/// How [`step_fleets`] spreads an interval's EV sites over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetThreads {
    /// One after the other on the calling thread.
    Serial,
    /// In parallel (rayon) from [`PARALLEL_FLEETS_FROM`] sites on, serially below.
    Parallel,
}

impl FleetThreads {
    /// For the EV sites stepped ahead on a thread of their own ([`crate::year::drive`]):
    /// in parallel only where a site solves plans (MPC, milliseconds a step); rule-based
    /// sites cost about a microsecond a step, less than waking rayon's workers every interval
    /// (1,000 members and 500 LLF EVs at 15 minutes: 12.6-15.3 s wall serially against
    /// 14.4 s with rayon, docs/scaling.md).
    pub fn for_sites(fleets: &[Option<Fleet>]) -> Self {
        if fleets.iter().flatten().any(Fleet::solves_plans) {
            Self::Parallel
        } else {
            Self::Serial
        }
    }
}

/// The community's EV sites, one slot per prosumer, with each site's next step to run kept
/// apart in a compact array. An interval scans that array instead of every site's state (at
/// 10,000 members, a cache miss or more per site and interval) and skips the sites that rest
/// ([`Fleet::quiet_until`]), writing their resting powers itself.
#[derive(Debug, Default)]
pub struct Fleets {
    sites: Vec<Option<Fleet>>,
    /// One per site, in prosumer order.
    wake: Vec<SiteWake>,
}

/// What [`step_fleets`] knows of a site without touching it.
#[derive(Debug, Clone, Copy)]
struct SiteWake {
    prosumer: usize,
    /// The site's [`Fleet::quiet_until`] when last stepped: it rests before this step.
    quiet_until: usize,
    /// Vehicles plugged in while it rests.
    plugged_in: u32,
}

impl Fleets {
    /// `sites[i]` is prosumer `i`'s EV site.
    pub fn new(sites: Vec<Option<Fleet>>) -> Self {
        let wake = sites
            .iter()
            .enumerate()
            .filter_map(|(prosumer, f)| {
                f.as_ref().map(|f| SiteWake {
                    prosumer,
                    quiet_until: f.quiet_until(),
                    plugged_in: f.resting().plugged_in,
                })
            })
            .collect();
        Self { sites, wake }
    }

    /// The sites, one slot per prosumer.
    pub fn sites(&self) -> &[Option<Fleet>] {
        &self.sites
    }
}

/// Stage 1: the EV sites decide, `ev[i]` from prosumer `i`'s site (zero without a site).
/// Fleets are independent within an interval, so with [`FleetThreads::Parallel`] and from
/// [`PARALLEL_FLEETS_FROM`] sites on they run in parallel; each result lands in its own slot
/// (same bytes as the serial loop). Serially, a resting site is not stepped: its slot gets
/// [`Fleet::resting`] (the powers its step would give).
pub fn step_fleets(
    fleets: &mut Fleets,
    ev: &mut [EvStepPower],
    step: usize,
    signals: &StepSignals<'_>,
    threads: FleetThreads,
) -> Result<(), SimError> {
    use rayon::prelude::*;
    let run = |i: usize, fleet: &mut Fleet| {
        fleet
            .step(step, signals)
            .map_err(|e| SimError::Scenario(format!("prosumers[{i}].ev: {e}")))
    };
    // Handing a step's fleets to rayon wakes its workers and parks them again every
    // interval: for a handful of fleets that costs more than it saves (the built-in's five
    // fleets: ~100,000 futex and sched_yield calls a year, strace).
    if threads == FleetThreads::Serial || fleets.sites.len() < PARALLEL_FLEETS_FROM {
        for w in &mut fleets.wake {
            let Some(out) = ev.get_mut(w.prosumer) else {
                return Err(SimError::Scenario(format!(
                    "{} EV site powers for prosumer {}",
                    ev.len(),
                    w.prosumer
                )));
            };
            if step < w.quiet_until {
                *out = EvStepPower {
                    plugged_in: w.plugged_in,
                    ..EvStepPower::default()
                };
                continue;
            }
            let Some(fleet) = fleets.sites[w.prosumer].as_mut() else {
                continue;
            };
            *out = run(w.prosumer, fleet)?;
            w.quiet_until = fleet.quiet_until();
            w.plugged_in = fleet.resting().plugged_in;
        }
        Ok(())
    } else {
        // Each site skips its own resting steps ([`Fleet::step`]); `wake` stays valid (a
        // promise about steps, which only a step of the site renews).
        fleets
            .sites
            .par_iter_mut()
            .zip(ev.par_iter_mut())
            .enumerate()
            .try_for_each(|(i, (fleet, out))| {
                if let Some(fleet) = fleet {
                    *out = run(i, fleet)?;
                }
                Ok(())
            })
    }
}

/// Whether a community of `prosumers` steps its EV sites ahead on a thread of their own
/// ([`crate::year::drive`]): from [`PARALLEL_FLEETS_FROM`] prosumers on, where the rest of
/// the interval (market, storage, the members' series) has work to overlap with the sites'.
/// Below, the community's own stages are too little to hide: the built-in five prosumers
/// measured no gain in wall time and 0.1-0.15 s more CPU (handing every interval over).
pub fn fleets_ahead(prosumers: usize) -> bool {
    prosumers >= PARALLEL_FLEETS_FROM
}

/// The price an EV agent plans with for one interval: the surplus's value when the community
/// is forecast to have surplus (it would otherwise be sold at that price), the retail price
/// otherwise. Never above retail.
#[inline]
pub fn effective_price(retail_eur_per_mwh: f64, surplus_kw: f64, value_eur_per_mwh: f64) -> f64 {
    if surplus_kw > 0.0 {
        value_eur_per_mwh.min(retail_eur_per_mwh)
    } else {
        retail_eur_per_mwh
    }
}
