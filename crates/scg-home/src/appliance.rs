//! Scheduling shiftable appliances: each run has a power profile and a range of start steps;
//! the agent picks the starts of one dwelling's runs together, exactly, by branch and bound,
//! then the next dwelling sees what is left of the community's surplus and of the peak
//! headroom (sequential: exact per dwelling, greedy across dwellings).
//!
//! Cost of a step's appliance power `p` with `s` kW of community surplus left: the first `s`
//! kW at the surplus price, the rest at the member's price plus the grid-peak adder when the
//! grid is at peak, plus a penalty for power above the peak headroom. That cost is convex in `p` and zero at zero, hence superadditive, so each
//! run's own cheapest start is a valid lower bound for the joint problem (the bound of the
//! branch and bound). [`brute_force_dwelling`] is the test oracle. Never allocates per
//! candidate in the search; never returns starts that break the dwelling's power cap.

pub use crate::thermal::OVER_HEADROOM_EUR_PER_KWH;

/// One run of an appliance to place.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Power per step from its start, kW.
    pub power_kw: Vec<f64>,
    /// Earliest start step (absolute).
    pub earliest_step: usize,
    /// Latest start step (absolute, inclusive).
    pub latest_step: usize,
}

/// Per-step signals the scheduler prices against (all the same length: the horizon).
#[derive(Debug, Clone, PartialEq)]
pub struct Signals {
    /// Step length, hours.
    pub step_hours: f64,
    /// The member's import price, EUR/MWh.
    pub price_eur_per_mwh: Vec<f64>,
    /// Community surplus still unused, kW (consumed as dwellings are scheduled).
    pub surplus_kw: Vec<f64>,
    /// Price of community surplus to the member, EUR/MWh (capped at the import price).
    pub surplus_price_eur_per_mwh: Vec<f64>,
    /// Whether the main grid is at peak.
    pub grid_peak: Vec<bool>,
    /// Extra price while the grid is at peak, EUR/MWh.
    pub grid_peak_adder_eur_per_mwh: f64,
    /// Aggregate power headroom left under the prosumer's peak limit, kW (consumed too);
    /// exceeding it costs [`OVER_HEADROOM_EUR_PER_KWH`].
    pub headroom_kw: Vec<f64>,
}

impl Signals {
    /// Flat signals: price everywhere, no surplus, no peak, unlimited headroom.
    pub fn flat(steps: usize, step_hours: f64, price_eur_per_mwh: f64) -> Self {
        Self {
            step_hours,
            price_eur_per_mwh: vec![price_eur_per_mwh; steps],
            surplus_kw: vec![0.0; steps],
            surplus_price_eur_per_mwh: vec![price_eur_per_mwh; steps],
            grid_peak: vec![false; steps],
            grid_peak_adder_eur_per_mwh: 0.0,
            headroom_kw: vec![f64::INFINITY; steps],
        }
    }

    /// Horizon length in steps.
    pub fn steps(&self) -> usize {
        self.price_eur_per_mwh.len()
    }

    /// Grid price of a step including the peak adder, EUR/kWh.
    fn grid_eur_per_kwh(&self, t: usize) -> f64 {
        let adder = if self.grid_peak[t] {
            self.grid_peak_adder_eur_per_mwh
        } else {
            0.0
        };
        (self.price_eur_per_mwh[t] + adder) / 1000.0
    }

    /// Cost of drawing `p` kW of device power in step `t`, EUR: energy, plus
    /// [`OVER_HEADROOM_EUR_PER_KWH`] for what `p` adds above the headroom (convex in `p`, zero
    /// at zero).
    pub fn step_cost_eur(&self, t: usize, p: f64) -> f64 {
        let h = self.headroom_kw[t];
        let over = if h.is_finite() {
            (p - h).max(0.0) - (-h).max(0.0)
        } else {
            0.0
        };
        energy_cost_eur(
            &StepPrice {
                grid_eur_per_kwh: self.grid_eur_per_kwh(t),
                surplus_eur_per_kwh: self.surplus_price_eur_per_mwh[t] / 1000.0,
                surplus_kw: self.surplus_kw[t],
                step_hours: self.step_hours,
            },
            p,
        ) + over * OVER_HEADROOM_EUR_PER_KWH * self.step_hours
    }

    /// These signals without a headroom (what energy alone costs).
    pub fn without_headroom(&self) -> Self {
        Self {
            headroom_kw: vec![f64::INFINITY; self.steps()],
            ..self.clone()
        }
    }

    /// Take `p` kW in step `t` out of the surplus and the headroom.
    pub fn consume(&mut self, t: usize, p: f64) {
        self.surplus_kw[t] = (self.surplus_kw[t] - p).max(0.0);
        self.headroom_kw[t] -= p;
    }
}

/// What one step's energy costs the member (named fields: two prices could be swapped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepPrice {
    /// Grid price including the grid-peak adder, EUR/kWh.
    pub grid_eur_per_kwh: f64,
    /// Price of community surplus, EUR/kWh (capped at the grid price).
    pub surplus_eur_per_kwh: f64,
    /// Community surplus available, kW.
    pub surplus_kw: f64,
    /// Step length, hours.
    pub step_hours: f64,
}

/// Energy cost of `p` kW in one step, EUR: the surplus first at its price, the rest from the
/// grid (the one pricing rule of the scheduler and of the reported savings).
pub fn energy_cost_eur(price: &StepPrice, p: f64) -> f64 {
    let surplus_price = price.surplus_eur_per_kwh.min(price.grid_eur_per_kwh);
    let from_surplus = p.min(price.surplus_kw.max(0.0));
    (from_surplus * surplus_price + (p - from_surplus) * price.grid_eur_per_kwh) * price.step_hours
}

/// Cost of the joint power `load_kw` (indexed by step) over the steps in `touched`.
fn joint_cost(sig: &Signals, load: &[f64], touched: impl Iterator<Item = usize>) -> f64 {
    touched.map(|t| sig.step_cost_eur(t, load[t])).sum()
}

fn fits(run: &Run, start: usize, load: &[f64], cap_kw: f64) -> bool {
    run.power_kw.iter().enumerate().all(|(i, p)| {
        let t = start + i;
        t < load.len() && load[t] + p <= cap_kw + 1e-9
    })
}

/// Marginal cost of adding `run` at `start` to `load`.
fn marginal(run: &Run, start: usize, load: &[f64], sig: &Signals) -> f64 {
    run.power_kw
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let t = start + i;
            sig.step_cost_eur(t, load[t] + p) - sig.step_cost_eur(t, load[t])
        })
        .sum()
}

fn add(run: &Run, start: usize, load: &mut [f64], sign: f64) {
    for (i, p) in run.power_kw.iter().enumerate() {
        load[start + i] += sign * p;
    }
}

/// Valid starts of a run within the horizon.
fn starts(run: &Run, steps: usize) -> std::ops::RangeInclusive<usize> {
    let last = steps.saturating_sub(run.power_kw.len());
    run.earliest_step.min(last)..=run.latest_step.min(last)
}

/// A dwelling's optimal starts and their cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Start step of each run (same order as the input).
    pub starts: Vec<usize>,
    /// Cost of the placement against the signals, EUR.
    pub cost_eur: f64,
}

/// Exact least-cost starts for one dwelling's runs under its appliance power cap (the
/// community headroom is a cost, see [`Signals::step_cost_eur`]); `None` when no combination
/// fits the cap. `scratch` is a zeroed buffer of the
/// horizon's length (returned zeroed).
pub fn schedule_dwelling(
    runs: &[Run],
    sig: &Signals,
    cap_kw: f64,
    scratch: &mut [f64],
) -> Option<Placement> {
    let steps = sig.steps();
    // Each run's candidates sorted by their own cost (the bound), fewest candidates first.
    let mut cands: Vec<Vec<(f64, usize)>> = runs
        .iter()
        .map(|r| {
            let mut c: Vec<(f64, usize)> = starts(r, steps)
                .filter(|&s| fits(r, s, scratch, cap_kw))
                .map(|s| (marginal(r, s, scratch, sig), s))
                .collect();
            c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            c
        })
        .collect();
    if cands.iter().any(Vec::is_empty) {
        return None;
    }
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| (cands[i].len(), i));
    // rest_min[d] = Σ own minimum of the runs at depth ≥ d.
    let mut rest_min = vec![0.0; runs.len() + 1];
    for d in (0..runs.len()).rev() {
        rest_min[d] = rest_min[d + 1] + cands[order[d]][0].0;
    }
    let mut search = Search {
        runs,
        sig,
        cap_kw,
        order: &order,
        cands: &mut cands,
        rest_min: &rest_min,
        current: vec![0; runs.len()],
        best: None,
    };
    search.dfs(0, 0.0, scratch);
    search.best
}

struct Search<'a> {
    runs: &'a [Run],
    sig: &'a Signals,
    cap_kw: f64,
    order: &'a [usize],
    cands: &'a mut [Vec<(f64, usize)>],
    rest_min: &'a [f64],
    current: Vec<usize>,
    best: Option<Placement>,
}

impl Search<'_> {
    fn dfs(&mut self, depth: usize, cost: f64, load: &mut [f64]) {
        if depth == self.order.len() {
            if self.best.as_ref().is_none_or(|b| cost < b.cost_eur - 1e-12) {
                self.best = Some(Placement {
                    starts: self.current.clone(),
                    cost_eur: cost,
                });
            }
            return;
        }
        let i = self.order[depth];
        let run = &self.runs[i];
        for c in 0..self.cands[i].len() {
            let (own, start) = self.cands[i][c];
            let bound = cost + own + self.rest_min[depth + 1];
            if self
                .best
                .as_ref()
                .is_some_and(|b| bound >= b.cost_eur - 1e-12)
            {
                break; // candidates are sorted by `own`: no later one can do better
            }
            if !fits(run, start, load, self.cap_kw) {
                continue;
            }
            let m = marginal(run, start, load, self.sig);
            add(run, start, load, 1.0);
            self.current[i] = start;
            self.dfs(depth + 1, cost + m, load);
            add(run, start, load, -1.0);
        }
    }
}

/// The last dwelling solved and what its solution depended on, so that the next dwelling
/// with the same runs and the same effective prices reuses it instead of searching again.
///
/// Exact: a placement's cost depends only on the runs, the cap and, in the steps the runs
/// may touch, the price, the grid-peak flag, the surplus price, the surplus and the headroom
/// ([`Signals::step_cost_eur`]). A dwelling never draws more than `cap + 1e-9` kW in a step,
/// so a surplus or a headroom of `cap + 1` kW or more has the same effect as any larger one;
/// both are compared clipped there. Equal keys give the same search, hence the same starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DwellingMemo {
    runs: Vec<Run>,
    cap_kw: f64,
    key: Vec<f64>,
    next_key: Vec<f64>,
    starts: Option<Vec<usize>>,
    /// Searches run (not reused).
    pub searches: usize,
    /// Dwellings that reused the previous solution.
    pub reused: usize,
}

impl DwellingMemo {
    /// The effective signals over the steps `runs` may touch, in a reusable buffer.
    fn key_into(runs: &[Run], sig: &Signals, cap_kw: f64, key: &mut Vec<f64>) {
        key.clear();
        let steps = sig.steps();
        let lo = runs
            .iter()
            .map(|r| r.earliest_step)
            .min()
            .unwrap_or(0)
            .min(steps);
        let hi = runs
            .iter()
            .map(|r| r.latest_step.saturating_add(r.power_kw.len()))
            .max()
            .unwrap_or(0)
            .min(steps);
        let clip = cap_kw + 1.0;
        key.extend([
            sig.step_hours,
            sig.grid_peak_adder_eur_per_mwh,
            lo as f64,
            hi as f64,
        ]);
        for t in lo..hi.max(lo) {
            key.extend([
                sig.price_eur_per_mwh[t],
                f64::from(u8::from(sig.grid_peak[t])),
                sig.surplus_price_eur_per_mwh[t],
                sig.surplus_kw[t].max(0.0).min(clip),
                sig.headroom_kw[t].min(clip),
            ]);
        }
    }

    /// [`schedule_dwelling`]'s starts for `runs` (`None`: nothing fits the cap), reusing the
    /// previous dwelling's when its runs, cap and effective signals are identical.
    pub fn schedule(
        &mut self,
        runs: &[Run],
        sig: &Signals,
        cap_kw: f64,
        scratch: &mut [f64],
    ) -> Option<Vec<usize>> {
        Self::key_into(runs, sig, cap_kw, &mut self.next_key);
        let same = !self.runs.is_empty()
            && self.runs == runs
            && self.cap_kw.to_bits() == cap_kw.to_bits()
            && self.key.len() == self.next_key.len()
            && self
                .key
                .iter()
                .zip(&self.next_key)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        std::mem::swap(&mut self.key, &mut self.next_key);
        if same {
            self.reused += 1;
            return self.starts.clone();
        }
        self.searches += 1;
        self.starts = schedule_dwelling(runs, sig, cap_kw, scratch).map(|p| p.starts);
        self.runs.clear();
        self.runs.extend_from_slice(runs);
        self.cap_kw = cap_kw;
        self.starts.clone()
    }
}

/// Every combination of starts, for tests on small cases: the least cost and its starts.
pub fn brute_force_dwelling(runs: &[Run], sig: &Signals, cap_kw: f64) -> Option<Placement> {
    let steps = sig.steps();
    let ranges: Vec<Vec<usize>> = runs.iter().map(|r| starts(r, steps).collect()).collect();
    if ranges.iter().any(Vec::is_empty) {
        return None;
    }
    let mut idx = vec![0usize; runs.len()];
    let mut best: Option<Placement> = None;
    loop {
        let mut load = vec![0.0; steps];
        let chosen: Vec<usize> = idx.iter().zip(&ranges).map(|(i, r)| r[*i]).collect();
        for (r, &s) in runs.iter().zip(&chosen) {
            add(r, s, &mut load, 1.0);
        }
        let ok = (0..steps).all(|t| load[t] <= cap_kw + 1e-9);
        if ok {
            let cost = joint_cost(sig, &load, 0..steps);
            if best.as_ref().is_none_or(|b| cost < b.cost_eur - 1e-12) {
                best = Some(Placement {
                    starts: chosen,
                    cost_eur: cost,
                });
            }
        }
        // Next combination (odometer).
        let mut d = 0;
        loop {
            if d == idx.len() {
                return best;
            }
            idx[d] += 1;
            if idx[d] < ranges[d].len() {
                break;
            }
            idx[d] = 0;
            d += 1;
        }
    }
}

/// Cost of given starts against the signals (for reporting unmanaged runs), EUR.
pub fn cost_of(runs: &[Run], starts_at: &[usize], sig: &Signals) -> f64 {
    let mut load = vec![0.0; sig.steps()];
    for (r, &s) in runs.iter().zip(starts_at) {
        for (i, p) in r.power_kw.iter().enumerate() {
            if let Some(x) = load.get_mut(s + i) {
                *x += p;
            }
        }
    }
    joint_cost(sig, &load, 0..sig.steps())
}

/// Resample a profile given per `profile_minutes` slot onto steps of `step_minutes`, keeping
/// its energy: the power of each step is the slots' energy inside it over the step length.
pub fn resample_kw(profile_kw: &[f64], profile_minutes: u32, step_minutes: u32) -> Vec<f64> {
    let total_min = profile_kw.len() as u64 * u64::from(profile_minutes);
    let step = u64::from(step_minutes.max(1));
    let steps = total_min.div_ceil(step) as usize;
    let mut out = vec![0.0; steps];
    for (i, p) in profile_kw.iter().enumerate() {
        let (a, b) = (
            i as u64 * u64::from(profile_minutes),
            (i as u64 + 1) * u64::from(profile_minutes),
        );
        let mut t = a;
        while t < b {
            let k = (t / step) as usize;
            let end = ((k as u64 + 1) * step).min(b);
            out[k] += p * (end - t) as f64 / step as f64;
            t = end;
        }
    }
    out
}
