//! The simulated year: a loop ([`drive`]) that feeds the [`Community`] state machine one
//! interval of synthetic inputs at a time and hands each outcome to a [`FlowSink`].
//!
//! Two sinks share the one loop: [`SeriesSink`] keeps every flow of every step (for
//! `scg simulate`'s outputs), [`TotalsSink`] keeps only yearly sums and money (for the sizing
//! search, where storing series would dominate the cost). Never does I/O.

use crate::ComponentError;
use crate::battery::Storage;
use crate::community::{
    Community, CommunitySettings, Forecast, IntervalInputs, ProsumerInterval, Sharing,
};
use crate::dispatch::{CommunityStage, MemberBattery, ProRata, StepFlows};
use crate::market_stage::MarketTrade;
use scg_ev::fleet::EvStepPower;

/// One prosumer's inputs: load and renewable generation, per step. Generation is
/// `pv_kw_per_kwp · pv_kwp + wind_kw_per_turbine · turbines`, so a sizing search can rescale
/// without copying series.
#[derive(Debug, Clone, Copy)]
pub struct ProsumerSeries<'a> {
    /// The load (empty when `load_draw` draws it).
    pub load_kw: &'a [f64],
    /// A load drawn again as the year reads it, instead of `load_kw` (a streamed city's:
    /// [`crate::prepare::PrepareOptions::draw_loads`]).
    pub load_draw: Option<DrawnLoad<'a>>,
    /// PV output of 1 kWp of this prosumer's arrays (empty = no PV, or `pv_draw`).
    pub pv_kw_per_kwp: &'a [f64],
    /// The same computed at each step from the arrays' shared responses, instead of
    /// `pv_kw_per_kwp` (a streamed city's: [`crate::prepare::PrepareOptions::draw_pv`]).
    pub pv_draw: Option<DrawnPv<'a>>,
    pub pv_kwp: f64,
    /// Output of one of this prosumer's wind turbines (empty = no wind).
    pub wind_kw_per_turbine: &'a [f64],
    pub turbines: f64,
    /// EV charging and swap-station demand, added to the load (empty = none).
    pub ev_kw: &'a [f64],
    /// V2G power given back, added to the generation (empty = none).
    pub v2g_kw: &'a [f64],
}

/// A synthetic load drawn again, step by step, as the year reads it: its shared baseline, its
/// own perturbation stream and scale factor (what [`crate::prepare`] drew it with, so the same
/// bits).
#[derive(Debug, Clone, Copy)]
pub struct DrawnLoad<'a> {
    pub draw: &'a crate::prepare::LoadDraw,
    /// The baseline of the year's every step.
    pub baseline_kw: &'a [f64],
}

/// A [`DrawnLoad`] being read: the next steps of its load on each [`LoadReplay::fill`].
#[derive(Debug)]
pub struct LoadReplay<'a> {
    perturbation: scg_resource::load::Perturbation<rand_chacha::ChaCha8Rng>,
    baseline_kw: &'a [f64],
    scale_factor: f64,
}

impl<'a> LoadReplay<'a> {
    /// The load from the year's first step.
    pub fn start(load: DrawnLoad<'a>) -> Self {
        use rand::SeedableRng;
        let d = load.draw;
        Self {
            perturbation: scg_resource::load::Perturbation::new(
                d.variability,
                d.steps_per_day,
                rand_chacha::ChaCha8Rng::seed_from_u64(d.seed),
            ),
            baseline_kw: load.baseline_kw,
            scale_factor: d.scale_factor,
        }
    }

    /// The load at the next `out.len()` steps, kW: perturbed, then scaled, as
    /// `scg_resource::load::perturb_and_scale` made it. `None` past the baseline's end.
    pub fn fill(&mut self, out: &mut [f64]) -> Option<()> {
        let first = self.perturbation.step();
        let baseline = self.baseline_kw.get(first..first + out.len())?;
        self.perturbation.fill(baseline, out);
        for v in out.iter_mut() {
            *v *= self.scale_factor;
        }
        Some(())
    }
}

/// A member's PV per kWp computed as the year reads it: its arrays' powers from their
/// orientations' shared responses, summed and divided by their kWp as `prepare` makes the
/// per-kWp series (so the same bits).
#[derive(Debug, Clone, Copy)]
pub struct DrawnPv<'a> {
    pub draw: &'a crate::prepare::PvDraw,
    /// The orientations' responses ([`crate::prepare::Prepared::responses`]).
    pub responses: &'a [scg_resource::solar::ArrayResponse],
}

impl DrawnPv<'_> {
    /// PV output of 1 kWp at step `t`, kW (0 past the year).
    #[inline]
    pub fn kw_per_kwp(&self, t: usize) -> f64 {
        let mut sum = 0.0;
        for a in &self.draw.arrays {
            sum += self
                .responses
                .get(a.response)
                .and_then(|r| r.power_kw_at(t, a.capacity_kwp, a.derating))
                .unwrap_or(0.0);
        }
        sum / self.draw.kwp
    }
}

impl ProsumerSeries<'_> {
    /// PV output at step `t`, kW.
    #[inline]
    pub fn pv_kw(&self, t: usize) -> f64 {
        match &self.pv_draw {
            Some(pv) => pv.kw_per_kwp(t) * self.pv_kwp,
            None => self.pv_kw_per_kwp.get(t).map_or(0.0, |v| v * self.pv_kwp),
        }
    }
    /// Demand at step `t` (load + EVs), kW.
    #[inline]
    pub fn demand_kw(&self, t: usize) -> f64 {
        self.load_kw.get(t).copied().unwrap_or(0.0) + self.ev_kw.get(t).copied().unwrap_or(0.0)
    }
    /// V2G at step `t`, kW.
    #[inline]
    pub fn v2g_at(&self, t: usize) -> f64 {
        self.v2g_kw.get(t).copied().unwrap_or(0.0)
    }
    /// Wind output at step `t`, kW.
    #[inline]
    pub fn wind_kw(&self, t: usize) -> f64 {
        self.wind_kw_per_turbine
            .get(t)
            .map_or(0.0, |v| v * self.turbines)
    }
}

/// One interval as the year hands it to a [`FlowSink`]: entry `i` of each slice belongs to
/// prosumer `i`.
#[derive(Debug, Clone, Copy)]
pub struct StepRecord<'a> {
    pub step: usize,
    /// The inputs the interval was driven with: the load (without EVs and without the home
    /// agent's change), PV and wind, kW. Handed on so that no sink reads a member's series
    /// again (at city scale a cache miss per member and step).
    pub inputs: &'a [ProsumerInterval],
    pub flows: &'a [StepFlows],
    pub batteries: &'a [MemberBattery],
}

/// Receives the flows of every step.
pub trait FlowSink {
    /// The flows of one interval.
    fn record(&mut self, r: &StepRecord<'_>) -> Result<(), ComponentError>;

    /// The EV fleets' powers of the same step (`ev[i]`: prosumer `i`'s fleet, zeros without
    /// one), after [`FlowSink::record`]. Most sinks ignore them.
    fn record_ev(&mut self, _step: usize, _ev: &[EvStepPower]) -> Result<(), crate::SimError> {
        Ok(())
    }

    /// The market's P2P trades of the same step (empty unless the market keeps them per
    /// interval), before [`FlowSink::record_ev`]. Most sinks ignore them.
    fn record_trades(&mut self, _step: usize, _trades: &[MarketTrade]) {}
}

/// Two sinks fed the same steps (e.g. the series and the year's accounts).
impl<A: FlowSink, B: FlowSink> FlowSink for (A, B) {
    fn record(&mut self, r: &StepRecord<'_>) -> Result<(), ComponentError> {
        self.0.record(r)?;
        self.1.record(r)
    }

    fn record_ev(&mut self, step: usize, ev: &[EvStepPower]) -> Result<(), crate::SimError> {
        self.0.record_ev(step, ev)?;
        self.1.record_ev(step, ev)
    }

    fn record_trades(&mut self, step: usize, trades: &[MarketTrade]) {
        self.0.record_trades(step, trades);
        self.1.record_trades(step, trades);
    }
}

/// A sink borrowed (e.g. the year's accounts, kept after the year).
impl<S: FlowSink + ?Sized> FlowSink for &mut S {
    fn record(&mut self, r: &StepRecord<'_>) -> Result<(), ComponentError> {
        (**self).record(r)
    }

    fn record_ev(&mut self, step: usize, ev: &[EvStepPower]) -> Result<(), crate::SimError> {
        (**self).record_ev(step, ev)
    }

    fn record_trades(&mut self, step: usize, trades: &[MarketTrade]) {
        (**self).record_trades(step, trades);
    }
}

/// The year's money is one more sink.
impl FlowSink for crate::accounting::YearAccounts<'_> {
    fn record(&mut self, r: &StepRecord<'_>) -> Result<(), ComponentError> {
        crate::accounting::YearAccounts::record(self, r.step, r.flows)
    }
}

/// Community-wide settings of the loop.
#[derive(Debug, Clone, Copy)]
pub struct YearSettings<'a> {
    pub dt_h: f64,
    /// Grid-at-peak flag per step.
    pub grid_at_peak: &'a [bool],
    pub max_purchase_kw: f64,
    pub max_sale_kw: f64,
}

/// Run `steps` steps with pro-rata sharing.
pub fn run_year<S: FlowSink>(
    prosumers: &[ProsumerSeries<'_>],
    batteries: &mut [MemberBattery],
    settings: &YearSettings<'_>,
    steps: usize,
    sink: &mut S,
) -> Result<(), ComponentError> {
    run_year_with(prosumers, batteries, settings, steps, &mut ProRata, sink)
}

/// Run `steps` steps with a given community stage (no EV sites), through the one
/// [`Community`] state machine.
pub fn run_year_with<S: FlowSink>(
    prosumers: &[ProsumerSeries<'_>],
    batteries: &mut [MemberBattery],
    settings: &YearSettings<'_>,
    steps: usize,
    stage: &mut dyn CommunityStage,
    sink: &mut S,
) -> Result<(), ComponentError> {
    let units: Vec<MemberBattery> = batteries.iter_mut().map(Option::take).collect();
    let fleets = (0..units.len()).map(|_| None).collect();
    let mut community = Community::new(settings.community(), units, fleets, Sharing::Custom(stage))
        .map_err(|e| ComponentError::parameter("community", e.to_string()))?;
    let run = drive(
        &mut community,
        prosumers,
        settings,
        &Prices::default(),
        steps,
        sink,
        &mut |_, _| {},
    );
    for (b, u) in batteries.iter_mut().zip(community.finish().batteries) {
        *b = u;
    }
    run.map_err(|e| match e {
        crate::SimError::Component(c) => c,
        other => ComponentError::parameter("community", other.to_string()),
    })
}

/// The prices of the year, EUR/MWh per step (empty: none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Prices<'a> {
    /// What a member pays the grid.
    pub retail_eur_per_mwh: &'a [f64],
    /// What the grid pays a member for surplus (with it the EV agents see the community's
    /// surplus forecast: [`Forecast::community_surplus_kw`]).
    pub feed_in_eur_per_mwh: &'a [f64],
    /// That forecast when the caller has it ([`community_surplus_kw`] of the same series):
    /// needed when a member's load is drawn as the year reads it
    /// ([`ProsumerSeries::load_draw`]); `None`: computed from the series.
    pub community_surplus_kw: Option<&'a [f64]>,
}

/// The community's surplus before storage and EVs, kW per step: Σ max(0, PV + wind − load).
pub fn community_surplus_kw(prosumers: &[ProsumerSeries<'_>], steps: usize) -> Vec<f64> {
    // Each step's sum adds the members in order from -0.0, as `Iterator::sum` does.
    step_sums(prosumers, steps, -0.0, surplus_kw_at)
}

/// A member's term of [`community_surplus_kw`] at step `t`: max(0, PV + wind − load), kW (its
/// `load_kw` series; a drawn load counts as none).
pub fn surplus_kw_at(p: &ProsumerSeries<'_>, t: usize) -> f64 {
    (p.pv_kw(t) + p.wind_kw(t) - p.load_kw.get(t).copied().unwrap_or(0.0)).max(0.0)
}

/// Per step `t < steps`: `start + term(m0, t) + term(m1, t) + ...` over `members` in their
/// order. Member by member along a run of steps (a step at a time across the members would
/// hit each member's series a page apart), runs of steps on every core: the bits of a
/// per-step sum, whatever the number of threads.
pub(crate) fn step_sums<M: Sync>(
    members: &[M],
    steps: usize,
    start: f64,
    term: impl Fn(&M, usize) -> f64 + Sync,
) -> Vec<f64> {
    let mut sums = vec![start; steps];
    add_step_sums(&mut sums, members, term);
    sums
}

/// [`step_sums`] added to `sums` (one entry per step): members handed over in batches, in
/// order, sum to the same bits as all at once.
pub(crate) fn add_step_sums<M: Sync>(
    sums: &mut [f64],
    members: &[M],
    term: impl Fn(&M, usize) -> f64 + Sync,
) {
    use rayon::prelude::*;
    const STEPS_PER_TASK: usize = 4096;
    sums.par_chunks_mut(STEPS_PER_TASK)
        .enumerate()
        .for_each(|(c, run)| {
            let first = c * STEPS_PER_TASK;
            for m in members {
                for (k, s) in run.iter_mut().enumerate() {
                    *s += term(m, first + k);
                }
            }
        });
}

/// The year loop: feed `community` each step's synthetic inputs (load, PV, wind from the
/// series; retail price and grid-peak flag from the settings) with the rest of the year as
/// its forecast (with feed-in prices, also the community's surplus: a perfect forecast from
/// the same synthetic series), and hand each outcome to `sink` and `on_ev(step, ev)`. With
/// EV sites and [`crate::community::fleets_ahead`], the sites run ahead on a thread of their
/// own (`drive_with_fleets_ahead`): the same bytes.
pub fn drive<S: FlowSink>(
    community: &mut Community<'_>,
    prosumers: &[ProsumerSeries<'_>],
    settings: &YearSettings<'_>,
    prices: &Prices<'_>,
    steps: usize,
    sink: &mut S,
    on_ev: &mut dyn FnMut(usize, &[EvStepPower]),
) -> Result<(), crate::SimError> {
    // The surplus forecast (perfect, like the prices'): the EV agents price it with the
    // feed-in, the flexible-load stage plans against it; not computed when nobody reads it.
    let drawn = prosumers.iter().any(|p| p.load_draw.is_some());
    let computed;
    let surplus: &[f64] = match prices.community_surplus_kw {
        _ if prices.feed_in_eur_per_mwh.is_empty() && !community.has_flexible_load() => &[],
        Some(given) => given,
        None if drawn => {
            return Err(crate::SimError::Scenario(
                "the year's loads are drawn as it runs: its surplus forecast must be given".into(),
            ));
        }
        None => {
            computed = community_surplus_kw(prosumers, steps);
            &computed
        }
    };
    let year = YearInputs {
        prosumers,
        settings,
        prices,
        surplus,
    };
    if community.has_fleets() && crate::community::fleets_ahead(prosumers.len()) && steps > 1 {
        drive_with_fleets_ahead(community, &year, steps, sink, on_ev)
    } else {
        let mut ev_ahead = None;
        drive_steps(community, &year, steps, sink, on_ev, &mut ev_ahead)
    }
}

/// What the year loop reads each interval (the community's inputs and forecast).
struct YearInputs<'y> {
    prosumers: &'y [ProsumerSeries<'y>],
    settings: &'y YearSettings<'y>,
    prices: &'y Prices<'y>,
    surplus: &'y [f64],
}

impl<'y> YearInputs<'y> {
    /// Interval `t`'s retail price and grid-peak flag (the per-prosumer values are filled by
    /// the loop) and its forecast.
    fn at<'p>(
        &self,
        t: usize,
        prosumers: &'p [ProsumerInterval],
    ) -> (IntervalInputs<'p>, Forecast<'y>) {
        let retail = self.prices.retail_eur_per_mwh;
        let inputs = IntervalInputs {
            step: t,
            prosumers,
            retail_eur_per_mwh: retail.get(t).copied().unwrap_or(0.0),
            grid_at_peak: self.settings.grid_at_peak.get(t).copied().unwrap_or(false),
        };
        let forecast = Forecast {
            retail_eur_per_mwh: retail.get(t..).unwrap_or(&[]),
            grid_at_peak: self.settings.grid_at_peak.get(t..).unwrap_or(&[]),
            community_surplus_kw: self.surplus.get(t..).unwrap_or(&[]),
            surplus_value_eur_per_mwh: self.prices.feed_in_eur_per_mwh.get(t..).unwrap_or(&[]),
        };
        (inputs, forecast)
    }
}

/// Intervals the EV sites may run ahead of the community (bounds the powers in flight).
const FLEET_LEAD_STEPS: usize = 32;

/// The year loop with the EV sites stepped on a thread of their own, ahead of the community
/// (their inputs are the prices, the grid-peak signal and the surplus forecast, none of which
/// depends on what the community did): stage 1 of an interval runs while the community does
/// stages 2-6 of an earlier one. Each site sees the same signals in the same order as in
/// [`Community::step`], so the bytes are the same.
fn drive_with_fleets_ahead<S: FlowSink>(
    community: &mut Community<'_>,
    year: &YearInputs<'_>,
    steps: usize,
    sink: &mut S,
    on_ev: &mut dyn FnMut(usize, &[EvStepPower]),
) -> Result<(), crate::SimError> {
    let n = year.prosumers.len();
    let mut fleets = community.take_fleets();
    let threads = crate::community::FleetThreads::for_sites(fleets.sites());
    let result = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(FLEET_LEAD_STEPS);
        let (back, spent) = std::sync::mpsc::channel::<Vec<EvStepPower>>();
        let fleets = &mut fleets;
        let producer = scope.spawn(move || {
            let mut price = Vec::new();
            let none = vec![ProsumerInterval::default(); n];
            for t in 0..steps {
                let (inputs, forecast) = year.at(t, &none);
                let signals = crate::community::fleet_signals(&inputs, &forecast, &mut price);
                // A vector back from the community held an earlier interval's powers: every
                // site's slot is written below, the others stayed zero.
                let mut ev = spent
                    .try_recv()
                    .unwrap_or_else(|_| vec![EvStepPower::default(); n]);
                let out = crate::community::step_fleets(fleets, &mut ev, t, &signals, threads)
                    .map(|()| ev);
                let failed = out.is_err();
                // The community stopped (an error of its own): nothing more to do.
                if tx.send(out).is_err() || failed {
                    break;
                }
            }
        });
        let mut ev_ahead = Some(EvAhead { rx, back });
        let run = drive_steps(community, year, steps, sink, on_ev, &mut ev_ahead);
        // Unblocks the producer if the loop stopped early.
        drop(ev_ahead);
        let joined = producer.join();
        run?;
        joined.map_err(|_| crate::SimError::Scenario("the EV sites' thread panicked".into()))
    });
    community.put_fleets(fleets);
    result
}

/// The intervals of the year; with `ev_ahead`, each interval's EV site powers come from it.
fn drive_steps<S: FlowSink>(
    community: &mut Community<'_>,
    year: &YearInputs<'_>,
    steps: usize,
    sink: &mut S,
    on_ev: &mut dyn FnMut(usize, &[EvStepPower]),
    ev_ahead: &mut Option<EvAhead>,
) -> Result<(), crate::SimError> {
    let n = year.prosumers.len();
    let mut ahead = vec![ProsumerInterval::default(); INPUT_AHEAD_STEPS * n];
    let mut draws = LoadDraws::start(year.prosumers, steps)?;
    for t in 0..steps {
        let r = t % INPUT_AHEAD_STEPS;
        if r == 0 {
            read_ahead(
                year.prosumers,
                &mut draws,
                t..steps.min(t + INPUT_AHEAD_STEPS),
                &mut ahead,
            );
        }
        let intervals = &ahead[r * n..(r + 1) * n];
        let (inputs, forecast) = year.at(t, intervals);
        let out = match ev_ahead {
            None => community.step(&inputs, &forecast)?,
            Some(ahead) => {
                let mut ev = ahead.rx.recv().map_err(|_| {
                    crate::SimError::Scenario(format!(
                        "interval {t}: the EV sites' thread stopped early"
                    ))
                })??;
                let out = community.step_with_ev(&inputs, &forecast, &mut ev)?;
                // The community's previous vector goes back to be filled again (no
                // allocation a step, none freed on another thread); a stopped producer
                // no longer wants it.
                let _ = ahead.back.send(ev);
                out
            }
        };
        sink.record(&StepRecord {
            step: t,
            inputs: intervals,
            flows: out.flows,
            batteries: out.batteries,
        })?;
        sink.record_trades(t, out.trades);
        sink.record_ev(t, out.ev)?;
        on_ev(t, out.ev);
    }
    Ok(())
}

/// Steps of inputs [`drive_steps`] reads ahead. Read a step at a time, every member's series
/// is hit a page apart (a TLB and cache miss per member and series at city scale); read
/// ahead, each member's next steps come in a run of cache lines of one page (128 steps: 16
/// lines, one TLB miss per member every 128 steps). At 32 steps `drive_steps` was 4.2 % of a
/// 10,000-member city's profile, three quarters of it this read; at 128, 2.1 %. The buffer
/// is 24 B per member-step (31 MB at 10,000 members).
const INPUT_AHEAD_STEPS: usize = 128;

/// The drawn loads of a year being read ([`ProsumerSeries::load_draw`]): member `i`'s in
/// `replays[i]`.
struct LoadDraws<'a> {
    replays: Vec<Option<LoadReplay<'a>>>,
    /// The drawn loads' values at the steps being read, member-major: member `i`'s at
    /// `buffer[i * INPUT_AHEAD_STEPS..]` (empty when no load is drawn).
    buffer: Vec<f64>,
}

impl<'a> LoadDraws<'a> {
    /// Every drawn load from the year's first step; refused if one's baseline is shorter than
    /// the year's `steps`.
    fn start(prosumers: &[ProsumerSeries<'a>], steps: usize) -> Result<Self, crate::SimError> {
        let replays = prosumers
            .iter()
            .enumerate()
            .map(|(i, p)| match p.load_draw {
                Some(d) if d.baseline_kw.len() < steps => Err(crate::SimError::Scenario(format!(
                    "prosumers[{i}]: a drawn load's baseline has {} steps, the year {steps}",
                    d.baseline_kw.len()
                ))),
                d => Ok(d.map(LoadReplay::start)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let drawn = replays.iter().any(Option::is_some);
        Ok(Self {
            buffer: vec![
                0.0;
                if drawn {
                    replays.len() * INPUT_AHEAD_STEPS
                } else {
                    0
                }
            ],
            replays,
        })
    }

    /// Draw the next `len` steps of every drawn load into `buffer`, on every core (each load
    /// from its own stream: the same bits whatever the number of threads).
    fn draw(&mut self, len: usize) {
        use rayon::prelude::*;
        if self.buffer.is_empty() {
            return;
        }
        self.buffer
            .par_chunks_mut(INPUT_AHEAD_STEPS)
            .zip(self.replays.par_iter_mut())
            .with_min_len(64)
            .for_each(|(out, replay)| {
                if let Some(replay) = replay {
                    let filled = replay.fill(&mut out[..len]);
                    debug_assert!(filled.is_some(), "`start` checked the baselines' length");
                }
            });
    }
}

/// Every prosumer's inputs at steps `range` (at most [`INPUT_AHEAD_STEPS`], the steps after
/// the last read), step-major: prosumer `i` at the range's `r`-th step in
/// `ahead[r * prosumers + i]`.
fn read_ahead(
    prosumers: &[ProsumerSeries<'_>],
    draws: &mut LoadDraws<'_>,
    range: std::ops::Range<usize>,
    ahead: &mut [ProsumerInterval],
) {
    let n = prosumers.len();
    draws.draw(range.len());
    for ((i, p), replay) in prosumers.iter().enumerate().zip(&draws.replays) {
        let drawn = replay.as_ref().and_then(|_| {
            draws
                .buffer
                .get(i * INPUT_AHEAD_STEPS..(i + 1) * INPUT_AHEAD_STEPS)
        });
        for (r, t) in range.clone().enumerate() {
            let load_kw = match drawn {
                Some(d) => d[r],
                None => p.load_kw.get(t).copied().unwrap_or(0.0),
            };
            ahead[r * n + i] = ProsumerInterval {
                load_kw,
                pv_kw: p.pv_kw(t),
                wind_kw: p.wind_kw(t),
            };
        }
    }
}

/// Where [`drive_with_fleets_ahead`]'s loop takes each interval's EV site powers from, and
/// where it returns the vectors it is done with.
struct EvAhead {
    rx: std::sync::mpsc::Receiver<Result<Vec<EvStepPower>, crate::SimError>>,
    back: std::sync::mpsc::Sender<Vec<EvStepPower>>,
}

impl YearSettings<'_> {
    /// The community's fixed settings.
    pub fn community(&self) -> CommunitySettings {
        CommunitySettings {
            dt_h: self.dt_h,
            max_purchase_kw: self.max_purchase_kw,
            max_sale_kw: self.max_sale_kw,
        }
    }
}

/// Every flow of one prosumer, per step (kW averages over the step).
///
/// **An empty series is all zeros.** [`SeriesSink`] keeps a flow empty until its first value
/// that is not +0.0 (a household without PV never exports, most members have no battery or
/// turbine, unmet and excess energy are rare), so that a city does not hold millions of
/// zeros; from that value on the series has one value per step. Read a value with
/// [`FlowSeries::at`] (0 for an empty series), never by indexing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowSeries {
    /// EV charging and swap-station demand (part of the uses), kW.
    pub ev_kw: Vec<f64>,
    /// V2G given back (part of the sources), kW.
    pub v2g_kw: Vec<f64>,
    pub pv_kw: Vec<f64>,
    pub wind_kw: Vec<f64>,
    pub battery_in_kw: Vec<f64>,
    pub battery_out_kw: Vec<f64>,
    /// Battery state of charge at the end of the step, percent (empty without a battery).
    pub battery_soc_pct: Vec<f64>,
    pub p2p_import_kw: Vec<f64>,
    pub p2p_export_kw: Vec<f64>,
    pub grid_import_kw: Vec<f64>,
    pub grid_export_kw: Vec<f64>,
    pub excess_kw: Vec<f64>,
    pub unmet_kw: Vec<f64>,
}

impl FlowSeries {
    /// The value of `series` (one of this struct's) at step `t`: 0 for an empty series.
    #[inline]
    pub fn at(series: &[f64], t: usize) -> f64 {
        series.get(t).copied().unwrap_or(0.0)
    }
}

/// Keeps every series, an all-zero one as an empty vector (see [`FlowSeries`]).
#[derive(Debug, Clone, Default)]
pub struct SeriesSink {
    pub prosumers: Vec<FlowSeries>,
    steps: usize,
}

impl SeriesSink {
    /// Room for `n` prosumers over `steps` steps. Nothing is allocated until a flow leaves
    /// zero; then its series is allocated at its final length (`steps`) at once, so a year
    /// never pays for a growing vector's spare capacity nor for its copies. The state of
    /// charge, recorded only for members with a battery, grows.
    pub fn new(n: usize, steps: usize) -> Self {
        Self {
            prosumers: vec![FlowSeries::default(); n],
            steps,
        }
    }
}

/// Record `v` as step `step` of `series`, which stays empty while every value is +0.0 (a
/// -0.0 or any other value allocates it, with the zeros before it).
#[inline]
pub(crate) fn push_flow(series: &mut Vec<f64>, step: usize, steps: usize, v: f64) {
    if series.is_empty() {
        if v.to_bits() == 0 {
            return;
        }
        series.reserve_exact(steps.max(step + 1));
        series.resize(step, 0.0);
    }
    series.push(v);
}

impl FlowSink for SeriesSink {
    fn record(&mut self, r: &StepRecord<'_>) -> Result<(), ComponentError> {
        let (n, step) = (self.steps, r.step);
        for (i, s) in self.prosumers.iter_mut().enumerate() {
            let f = &r.flows[i];
            push_flow(&mut s.pv_kw, step, n, r.inputs[i].pv_kw);
            push_flow(&mut s.wind_kw, step, n, r.inputs[i].wind_kw);
            push_flow(&mut s.battery_in_kw, step, n, f.battery_in_kw);
            push_flow(&mut s.battery_out_kw, step, n, f.battery_out_kw);
            if let Some(unit) = &r.batteries[i] {
                s.battery_soc_pct.push(unit.battery.soc() * 100.0);
            }
            push_flow(&mut s.p2p_import_kw, step, n, f.p2p_import_kw);
            push_flow(&mut s.p2p_export_kw, step, n, f.p2p_export_kw);
            push_flow(&mut s.grid_import_kw, step, n, f.grid_import_kw);
            push_flow(&mut s.grid_export_kw, step, n, f.grid_export_kw);
            push_flow(&mut s.excess_kw, step, n, f.excess_kw);
            push_flow(&mut s.unmet_kw, step, n, f.unmet_kw);
        }
        Ok(())
    }
}

/// Yearly energy sums of one prosumer, kWh.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct EnergySums {
    /// Demand: the load plus EV charging and swap-station chargers.
    pub load_kwh: f64,
    /// EV charging and swap-station energy within `load_kwh`.
    pub ev_kwh: f64,
    /// V2G energy given back.
    pub v2g_kwh: f64,
    pub pv_kwh: f64,
    pub wind_kwh: f64,
    pub battery_in_kwh: f64,
    pub battery_out_kwh: f64,
    pub p2p_import_kwh: f64,
    pub p2p_export_kwh: f64,
    pub grid_import_kwh: f64,
    pub grid_export_kwh: f64,
    pub excess_kwh: f64,
    pub unmet_kwh: f64,
    /// Largest single-step shortfall, kW (HOMER's "capacity shortage" check uses energy).
    pub peak_unmet_kw: f64,
}

impl EnergySums {
    #[inline]
    fn add(&mut self, f: &StepFlows, pv_kw: f64, wind_kw: f64, dt_h: f64) {
        self.load_kwh += f.load_kw * dt_h;
        self.pv_kwh += pv_kw * dt_h;
        self.wind_kwh += wind_kw * dt_h;
        self.battery_in_kwh += f.battery_in_kw * dt_h;
        self.battery_out_kwh += f.battery_out_kw * dt_h;
        self.p2p_import_kwh += f.p2p_import_kw * dt_h;
        self.p2p_export_kwh += f.p2p_export_kw * dt_h;
        self.grid_import_kwh += f.grid_import_kw * dt_h;
        self.grid_export_kwh += f.grid_export_kw * dt_h;
        self.excess_kwh += f.excess_kw * dt_h;
        self.unmet_kwh += f.unmet_kw * dt_h;
        self.peak_unmet_kw = self.peak_unmet_kw.max(f.unmet_kw);
    }

    /// Add one interval's metered flows (grid, P2P, excess, unmet) of `dt_h` hours.
    #[inline]
    pub fn add_metered<F: crate::accounting::MeteredFlows>(&mut self, f: &F, dt_h: f64) {
        self.p2p_import_kwh += f.p2p_import_kw() * dt_h;
        self.p2p_export_kwh += f.p2p_export_kw() * dt_h;
        self.grid_import_kwh += f.grid_import_kw() * dt_h;
        self.grid_export_kwh += f.grid_export_kw() * dt_h;
        self.excess_kwh += f.excess_kw() * dt_h;
        self.unmet_kwh += f.unmet_kw() * dt_h;
        self.peak_unmet_kw = self.peak_unmet_kw.max(f.unmet_kw());
    }

    /// Sum over prosumers.
    pub fn total(all: &[EnergySums]) -> EnergySums {
        let mut t = EnergySums::default();
        for s in all {
            t.load_kwh += s.load_kwh;
            t.ev_kwh += s.ev_kwh;
            t.v2g_kwh += s.v2g_kwh;
            t.pv_kwh += s.pv_kwh;
            t.wind_kwh += s.wind_kwh;
            t.battery_in_kwh += s.battery_in_kwh;
            t.battery_out_kwh += s.battery_out_kwh;
            t.p2p_import_kwh += s.p2p_import_kwh;
            t.p2p_export_kwh += s.p2p_export_kwh;
            t.grid_import_kwh += s.grid_import_kwh;
            t.grid_export_kwh += s.grid_export_kwh;
            t.excess_kwh += s.excess_kwh;
            t.unmet_kwh += s.unmet_kwh;
            t.peak_unmet_kw = t.peak_unmet_kw.max(s.peak_unmet_kw);
        }
        t
    }
}

/// Keeps yearly sums per prosumer (and the community's hourly injection and withdrawal, which
/// the CER rule needs).
#[derive(Debug, Clone, Default)]
pub struct TotalsSink {
    pub dt_h: f64,
    pub prosumers: Vec<EnergySums>,
}

impl TotalsSink {
    pub fn new(n: usize, dt_h: f64) -> Self {
        Self {
            dt_h,
            prosumers: vec![EnergySums::default(); n],
        }
    }
}

impl FlowSink for TotalsSink {
    fn record(&mut self, r: &StepRecord<'_>) -> Result<(), ComponentError> {
        for ((s, f), p) in self.prosumers.iter_mut().zip(r.flows).zip(r.inputs) {
            s.add(f, p.pv_kw, p.wind_kw, self.dt_h);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::step_sums;

    /// Runs of steps on several threads give the bits of each step summed over the members in
    /// order (signed zeros included), at lengths around a task's run.
    #[test]
    fn step_sums_are_the_bits_of_an_ordered_sum() {
        let members: Vec<Vec<f64>> = (0..7)
            .map(|m| {
                (0..9000)
                    .map(|t| match (m * 5 + t * 3) % 13 {
                        0 => -0.0,
                        1 => 0.0,
                        k => (k as f64 - 6.5) * 1.1e-3 * (m + 1) as f64,
                    })
                    .collect()
            })
            .collect();
        for steps in [0, 1, 4095, 4096, 4097, 9000] {
            for start in [0.0, -0.0] {
                let got = step_sums(&members, steps, start, |m, t| m[t]);
                let want: Vec<f64> = (0..steps)
                    .map(|t| members.iter().fold(start, |s, m| s + m[t]))
                    .collect();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{steps} steps from {start}");
            }
        }
    }
}
