//! Charging policies behind one trait, selectable by name.
//!
//! A policy sees only what a charging operator would see at the start of a step
//! ([`StepContext`]: the plugged-in vehicles with their *planned* departure and energy, the site
//! limit, prices ahead) and returns one power per vehicle for this step (kW at the plug;
//! positive charges, negative discharges). It must never look at the true departure or energy:
//! those belong to the simulator. Policies do no I/O.

use crate::error::EvError;
use crate::model::Session;
use crate::mpc::{Mpc, MpcParams};

/// Every name accepted by [`policy_by_name`] (plus `offline-optimal`, built by the evaluator
/// because it needs the whole period).
pub const POLICY_NAMES: [&str; 7] = [
    "uncontrolled",
    "fcfs",
    "edf",
    "llf",
    "round-robin",
    "mpc",
    "offline-optimal",
];

/// One plugged-in vehicle as the policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveEv {
    /// A stable key for the session (index in the evaluator's session list).
    pub key: usize,
    /// First step the vehicle was present.
    pub arrival_step: i64,
    /// Planned departure step (exclusive); always greater than the current step.
    pub departure_step: i64,
    /// Planned battery energy still wanted by departure, kWh into the battery.
    pub remaining_kwh: f64,
    /// Largest charging power accepted this step (vehicle, charge point and taper).
    pub max_charge_kw: f64,
    /// Largest discharging power (0 unless V2G).
    pub max_discharge_kw: f64,
    /// Battery energy now (meaningful for V2G vehicles only).
    pub energy_kwh: f64,
    /// Battery energy that V2G must never go below.
    pub min_energy_kwh: f64,
    /// Upper bound on battery energy (the target at departure, for V2G vehicles).
    pub max_energy_kwh: f64,
    /// One-way grid-to-battery efficiency.
    pub efficiency: f64,
}

/// What a policy is told at the start of a step.
#[derive(Debug, Clone)]
pub struct StepContext<'a> {
    /// The current step index.
    pub step: i64,
    /// Step length in hours.
    pub step_hours: f64,
    /// The plugged-in vehicles.
    pub evs: &'a [ActiveEv],
    /// The site (transformer) limit on aggregate power, kW; `f64::INFINITY` when none.
    pub site_limit_kw: f64,
    /// Energy price for this step and the following ones (forecast); the last value repeats.
    pub price_eur_per_mwh: &'a [f64],
    /// Whether the main grid is at peak in this and the following steps; missing means no.
    pub grid_peak: &'a [bool],
    /// Demand charge per kW of the billing period's peak.
    pub demand_charge_eur_per_kw: f64,
    /// Highest aggregate power so far in the billing period (already paid for).
    pub peak_so_far_kw: f64,
}

impl StepContext<'_> {
    /// Price `k` steps ahead (the last known price repeats).
    pub fn price_ahead(&self, k: usize) -> f64 {
        self.price_eur_per_mwh
            .get(k)
            .or(self.price_eur_per_mwh.last())
            .copied()
            .unwrap_or(0.0)
    }

    /// Grid-peak flag `k` steps ahead.
    pub fn peak_ahead(&self, k: usize) -> bool {
        self.grid_peak.get(k).copied().unwrap_or(false)
    }
}

/// A V2G energy sale the MPC intends to make: exposed so that the market can turn it into an
/// offer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SellOffer {
    /// The step of delivery.
    pub step: i64,
    /// Power offered to the grid at the site, kW.
    pub power_kw: f64,
    /// Lowest price that still pays the battery wear and the round-trip loss, EUR/MWh.
    pub min_price_eur_per_mwh: f64,
}

/// A charging policy.
pub trait Policy: std::fmt::Debug + Send {
    /// The policy's name, as accepted by [`policy_by_name`].
    fn name(&self) -> &'static str;
    /// Powers for this step, one per entry of `ctx.evs`, kW (negative = discharge).
    fn schedule(&mut self, ctx: &StepContext<'_>) -> Result<Vec<f64>, EvError>;
    /// Planned V2G sales from the last call of `schedule` (empty for policies without V2G).
    fn sell_offers(&self) -> &[SellOffer] {
        &[]
    }
    /// Learn from sessions before the run (not replayed) on a grid of `step_minutes`: the
    /// MPC learns its peak target and arrival profile; other policies learn nothing.
    fn learn_history(&mut self, history: &[Session], step_minutes: u32) -> Result<(), EvError> {
        let _ = (history, step_minutes);
        Ok(())
    }
    /// Optimisation problems solved so far (`None` for policies that solve none).
    fn solves(&self) -> Option<usize> {
        None
    }
    /// Whether `schedule` keeps no state and gives exactly 0 kW to every vehicle told 0 kWh
    /// remaining, whatever its discharge limit: a fleet whose vehicles all want nothing may
    /// then skip steps ([`crate::fleet::Fleet::quiet_until`]). Rules say yes; a planner that
    /// may discharge or plans ahead says no (the default).
    fn rests_when_satisfied(&self) -> bool {
        false
    }
}

/// Build a step policy by name. `offline-optimal` is not a step policy: it is built by
/// [`crate::evaluate::evaluate`] from the whole period.
pub fn policy_by_name(name: &str, mpc: &MpcParams) -> Result<Box<dyn Policy>, EvError> {
    Ok(match name {
        "uncontrolled" => Box::new(Uncontrolled),
        "fcfs" => Box::new(Sorted(SortKey::Fcfs)),
        "edf" => Box::new(Sorted(SortKey::Edf)),
        "llf" => Box::new(Sorted(SortKey::Llf)),
        "round-robin" => Box::new(RoundRobin),
        "mpc" => Box::new(Mpc::new(mpc.clone())),
        _ => return Err(EvError::UnknownPolicy(name.to_string())),
    })
}

/// The power that completes the remaining energy in this step, capped by the vehicle.
fn wanted_kw(ev: &ActiveEv, step_hours: f64) -> f64 {
    if ev.remaining_kwh <= 0.0 {
        return 0.0;
    }
    (ev.remaining_kwh / (ev.efficiency * step_hours))
        .min(ev.max_charge_kw)
        .max(0.0)
}

/// Every vehicle charges as fast as it can; the site limit is ignored (as in ACN-Sim).
#[derive(Debug, Clone, Copy)]
pub struct Uncontrolled;

impl Policy for Uncontrolled {
    fn name(&self) -> &'static str {
        "uncontrolled"
    }
    fn rests_when_satisfied(&self) -> bool {
        true
    }
    fn schedule(&mut self, ctx: &StepContext<'_>) -> Result<Vec<f64>, EvError> {
        Ok(ctx
            .evs
            .iter()
            .map(|ev| wanted_kw(ev, ctx.step_hours))
            .collect())
    }
}

/// Sort order of the sorting family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// First come, first served (arrival step).
    Fcfs,
    /// Earliest (planned) deadline first.
    Edf,
    /// Least laxity first: time left minus the time needed at full power.
    Llf,
}

/// Sort the vehicles, then give each in turn the most power the site limit still allows.
#[derive(Debug, Clone, Copy)]
pub struct Sorted(pub SortKey);

impl Policy for Sorted {
    fn name(&self) -> &'static str {
        match self.0 {
            SortKey::Fcfs => "fcfs",
            SortKey::Edf => "edf",
            SortKey::Llf => "llf",
        }
    }
    fn rests_when_satisfied(&self) -> bool {
        true
    }
    fn schedule(&mut self, ctx: &StepContext<'_>) -> Result<Vec<f64>, EvError> {
        let laxity = |ev: &ActiveEv| {
            let left_h = (ev.departure_step - ctx.step) as f64 * ctx.step_hours;
            let need_h = if ev.max_charge_kw > 0.0 {
                ev.remaining_kwh / (ev.efficiency * ev.max_charge_kw)
            } else {
                f64::INFINITY
            };
            left_h - need_h
        };
        let mut order: Vec<usize> = (0..ctx.evs.len()).collect();
        match self.0 {
            SortKey::Fcfs => order.sort_by_key(|&i| (ctx.evs[i].arrival_step, ctx.evs[i].key)),
            SortKey::Edf => order.sort_by_key(|&i| (ctx.evs[i].departure_step, ctx.evs[i].key)),
            SortKey::Llf => order.sort_by(|&a, &b| {
                laxity(&ctx.evs[a])
                    .total_cmp(&laxity(&ctx.evs[b]))
                    .then(ctx.evs[a].key.cmp(&ctx.evs[b].key))
            }),
        }
        let mut left = ctx.site_limit_kw;
        let mut out = vec![0.0; ctx.evs.len()];
        for i in order {
            let p = wanted_kw(&ctx.evs[i], ctx.step_hours).min(left.max(0.0));
            out[i] = p;
            left -= p;
        }
        Ok(out)
    }
}

/// Round robin with infinitesimal increments: every vehicle is raised in turn until it is
/// satisfied or the site limit binds, which for continuous rates is the equal-share
/// water-filling allocation computed here exactly.
#[derive(Debug, Clone, Copy)]
pub struct RoundRobin;

impl Policy for RoundRobin {
    fn name(&self) -> &'static str {
        "round-robin"
    }
    fn rests_when_satisfied(&self) -> bool {
        true
    }
    fn schedule(&mut self, ctx: &StepContext<'_>) -> Result<Vec<f64>, EvError> {
        let wants: Vec<f64> = ctx
            .evs
            .iter()
            .map(|ev| wanted_kw(ev, ctx.step_hours))
            .collect();
        Ok(water_fill(&wants, ctx.site_limit_kw))
    }
}

/// Equal share of `limit` with per-entry caps `wants`.
pub fn water_fill(wants: &[f64], limit: f64) -> Vec<f64> {
    let total: f64 = wants.iter().sum();
    if total <= limit {
        return wants.to_vec();
    }
    let mut order: Vec<usize> = (0..wants.len()).collect();
    order.sort_by(|&a, &b| wants[a].total_cmp(&wants[b]));
    let mut out = vec![0.0; wants.len()];
    let mut left = limit.max(0.0);
    let mut n_left = wants.len();
    for i in order {
        let share = left / n_left as f64;
        let p = wants[i].min(share);
        out[i] = p;
        left -= p;
        n_left -= 1;
    }
    out
}
