//! The plan of a testnet: what the chain is driven with, derived from one run of the
//! community engine (`scg_sim`), and the clock schedule every party follows.
//!
//! [`build`] turns a simulated year into a [`Plan`]: the members and their meters (each
//! registered at its peak power over the year), and per interval the grid's tariff, every
//! member's order (the one the simulation's community market cleared, `MarketYear::books`)
//! and every meter's reading (`scg_settle::community_year`, the settlement's own derivation),
//! plus the CER when the community is one. The same plan serves two parties:
//! - the **operator** (the `scg testnet` driver) takes the community's part: tariffs, gate
//!   closes, the CER's zonal prices and period closes, and the funding of each member
//!   ([`Plan::bid_budget`]); it also counts what each member's agent must submit per step;
//! - a **member's agent** (in the member's own `scg chain run` process) keeps only its part,
//!   [`Plan::member_part`]: its orders and its meters' readings.
//!
//! Every process builds the plan from the same scenario and seed, so every process sees the
//! same simulated world. [`Schedule`] is the one rule for which intervals are due at a clock
//! time; the driver and the agents both use it.
//!
//! This module does no I/O and never signs: it turns simulated figures into integers.

use crate::ChainError;
use crate::genesis::MarketSpec;
use scg_ledger::DeviceType;
use scg_ledger::cer::CerRule;
use scg_ledger::market::{IntervalTariff, MarketParams, OfferSource, OrderBody, OrderSide};
use scg_ledger::settlement::{CommunityYear, MemberSettlement};
use std::collections::BTreeMap;
use std::ops::Range;

/// Seconds in the CER's hour.
pub(crate) const HOUR_S: u64 = 3_600;
/// Most orders a member may place per interval on the testnet's market (the simulation's
/// market places one).
pub const MAX_ORDERS_PER_MEMBER: u16 = 4;
/// The testnet's CER period: a day, so every `--days` horizon closes whole periods and the
/// chain pays its CER within a few clock steps of each day's readings (`scg simulate` pays
/// the year at once; the rule is hourly, so the sums are the same).
pub const CER_PERIOD_HOURS: u32 = 24;

/// One member of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMember {
    /// Id (the scenario's prosumer id).
    pub id: String,
    /// Meters: device and registered capacity, W (`None`: none registered).
    pub meters: Vec<(DeviceType, Option<u64>)>,
}

/// One meter reading of an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanReading {
    /// Index into [`Plan::members`].
    pub member: usize,
    /// The meter's device (one of the member's meters).
    pub device: DeviceType,
    /// Wh produced (exported).
    pub produced_wh: u64,
    /// Wh consumed.
    pub consumed_wh: u64,
}

/// One interval of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanInterval {
    /// The grid's prices and peak flag (posted by the operator when the interval has orders).
    pub tariff: Option<IntervalTariff>,
    /// Orders: member index and body (`interval` is overwritten with the interval's index).
    pub orders: Vec<(usize, OrderBody)>,
    /// Readings.
    pub readings: Vec<PlanReading>,
}

/// The community's CER on the testnet's chain (kinds 19 to 22): the operator opens it before
/// the first step, posts each market hour's zonal price with the hour's orders and closes
/// every period of the horizon once its readings are final; every node computes the payouts
/// from the readings it holds (`scg_ledger::cer::CerTally`, the rule `scg simulate` pays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCer {
    /// The incentive rule (size class, PV bonus, valorisation, producers' share).
    pub rule: CerRule,
    /// Hours per incentive period (1..=744); only periods the horizon covers whole close.
    pub period_hours: u32,
    /// Zonal price of every market hour of the horizon, milli-EUR/MWh (hour `h` is
    /// `[epoch + 3600 h, epoch + 3600 (h + 1))`).
    pub zonal_milli_eur_per_mwh: Vec<i64>,
    /// What the community is paid for the periods the testnet closes (GSE pays it in euros),
    /// base units: endowed to the treasury at genesis on top of the funding, and the
    /// issuance cap (so nothing else can ever be issued). A close the treasury cannot pay is
    /// refused by the chain and the run fails.
    pub budget_base: u128,
}

impl PlanCer {
    /// Periods the horizon of `intervals` intervals of `interval_s` covers whole.
    pub fn closed_periods(&self, intervals: usize, interval_s: u64) -> u64 {
        let per_hour = (HOUR_S / interval_s.max(1)).max(1);
        let hours = intervals as u64 / per_hour;
        hours / u64::from(self.period_hours.max(1))
    }
}

/// Everything the testnet drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Chain name (part of the chain id).
    pub name: String,
    /// Members, in the order the community market saw them.
    pub members: Vec<PlanMember>,
    /// Start of interval 0, Unix seconds.
    pub epoch_s: u64,
    /// Interval length, seconds.
    pub interval_s: u64,
    /// The market's mechanism, fee and order bound, as the genesis writes them (the driver
    /// sets the settle window from its clock step).
    pub market: MarketSpec,
    /// RESCoin base units minted per renewable Wh.
    pub mint_rate_base_per_wh: u64,
    /// The intervals, in order (interval `k` is `intervals[k]`).
    pub intervals: Vec<PlanInterval>,
    /// The CER, if the community is one.
    pub cer: Option<PlanCer>,
}

/// One member's part of the plan: what its agent signs and submits, nothing of the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPlan {
    /// Its index in [`Plan::members`].
    pub index: usize,
    /// Its id and meters.
    pub member: PlanMember,
    /// Per interval of the plan: its orders (bodies, `interval` overwritten on signing).
    pub orders: Vec<Vec<OrderBody>>,
    /// Per interval of the plan: its meters' readings.
    pub readings: Vec<Vec<PlanReading>>,
}

impl MemberPlan {
    /// How many transactions the member submits for the orders of `orders` and the readings
    /// of `readings` (interval ranges, clamped to the plan).
    pub fn count(&self, orders: Range<usize>, readings: Range<usize>) -> u64 {
        fn n<T>(v: &[Vec<T>], r: Range<usize>) -> u64 {
            let end = r.end.min(v.len());
            v[r.start.min(end)..end]
                .iter()
                .map(|x| x.len() as u64)
                .sum()
        }
        n(&self.orders, orders) + n(&self.readings, readings)
    }
}

impl Plan {
    /// The part of member `id`: its orders and readings only. An error names the id when it
    /// is not a member of the plan.
    pub fn member_part(&self, id: &str) -> Result<MemberPlan, ChainError> {
        let index = self
            .members
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| ChainError::BadInput {
                what: format!("member `{id}`"),
                reason: format!(
                    "not a member of the simulated community (its members: {})",
                    self.members
                        .iter()
                        .map(|m| m.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        Ok(MemberPlan {
            index,
            member: self.members[index].clone(),
            orders: self
                .intervals
                .iter()
                .map(|iv| {
                    iv.orders
                        .iter()
                        .filter(|(m, _)| *m == index)
                        .map(|(_, o)| *o)
                        .collect()
                })
                .collect(),
            readings: self
                .intervals
                .iter()
                .map(|iv| {
                    iv.readings
                        .iter()
                        .filter(|r| r.member == index)
                        .copied()
                        .collect()
                })
                .collect(),
        })
    }

    /// The most member `member`'s bids of the plan can cost (energy × limit, fee included):
    /// what the operator funds it with, so no bid is left unfunded at its gate.
    pub fn bid_budget(&self, member: usize) -> u128 {
        self.intervals
            .iter()
            .flat_map(|iv| iv.orders.iter())
            .filter(|(m, _)| *m == member)
            .map(|(_, o)| o.max_cost_base())
            .sum()
    }
}

/// Which intervals are due at a clock time: the one rule the driver (operator) and every
/// member's agent follow. The clock moves in steps of `step_s` from one interval before
/// interval 0. At clock `t`:
/// - **orders** (and the operator's tariffs) of the intervals whose gate lies in
///   `(t, t + step]` (before their gate, as the ledger requires);
/// - **gate closes** of the intervals whose gate lies in `(t − step, t]` (ordered at the
///   previous step, so their orders are final before the close);
/// - **readings** of the intervals whose gate lies in `(t − 2 step, t − step]`: closed at the
///   previous step (a reading posts the interval's cleared trades, so it must follow the
///   close), and ended (their end is at most `t − step + interval ≤ t`). A reading therefore
///   comes less than two steps after its interval ended: the settle window is two steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Start of interval 0, Unix seconds.
    pub epoch_s: u64,
    /// Interval length, s (> 0).
    pub interval_s: u64,
    /// Clock step, s (a whole number of intervals, > 0).
    pub step_s: u64,
    /// Intervals of the plan.
    pub intervals: usize,
}

impl Schedule {
    /// The first interval whose gate is after `t_s` (clamped to the plan).
    fn first_after(&self, t_s: i128) -> usize {
        let epoch = i128::from(self.epoch_s);
        let iv = i128::from(self.interval_s.max(1));
        let k = if t_s < epoch {
            0
        } else {
            (t_s - epoch) / iv + 1
        };
        usize::try_from(k).unwrap_or(usize::MAX).min(self.intervals)
    }

    /// Intervals whose gate lies in `(a, b]`.
    fn gates_in(&self, a: i128, b: i128) -> Range<usize> {
        self.first_after(a)..self.first_after(b)
    }

    /// Intervals whose orders (and tariffs) are due at `t_s`.
    pub fn orders(&self, t_s: u64) -> Range<usize> {
        let (t, step) = (i128::from(t_s), i128::from(self.step_s));
        self.gates_in(t, t + step)
    }

    /// Intervals whose gate closes are due at `t_s`.
    pub fn closes(&self, t_s: u64) -> Range<usize> {
        let (t, step) = (i128::from(t_s), i128::from(self.step_s));
        self.gates_in(t - step, t)
    }

    /// Intervals whose readings are due at `t_s`.
    pub fn readings(&self, t_s: u64) -> Range<usize> {
        let (t, step) = (i128::from(t_s), i128::from(self.step_s));
        self.gates_in(t - 2 * step, t - step)
    }

    /// The market's settle window this schedule needs: two steps (see the type's doc).
    pub fn settle_window_s(&self) -> u64 {
        2 * self.step_s
    }

    /// The clock's start: one interval before interval 0 (the genesis time).
    pub fn start_s(&self) -> u64 {
        self.epoch_s.saturating_sub(self.interval_s)
    }
}

/// What [`build`] needs: one run of the community engine and the scenario's settings.
#[derive(Debug, Clone, Copy)]
pub struct PlanInputs<'a> {
    /// The simulated year (`scg_sim::simulate_with` with `keep_books`).
    pub result: &'a scg_sim::SimResult,
    /// The scenario's internal (community) price, EUR/MWh (the settlement's input).
    pub internal_price_eur_per_mwh: f64,
    /// The scenario's community market (mechanism and fee).
    pub market: &'a scg_market::community::CommunityMarket,
    /// Drive only the first `days` days [default: the whole year].
    pub days: Option<u64>,
}

/// A plan with what the driver compares the chain against.
#[derive(Debug, Clone)]
pub struct Built {
    /// The plan.
    pub plan: Plan,
    /// The settlement's community year the readings came from.
    pub year: CommunityYear,
    /// What `scg simulate`'s integer CER rule pays each member (id) for the whole periods of
    /// the horizon, base units (`None`: not a CER).
    pub cer_paid_base: Option<BTreeMap<String, u128>>,
}

fn plan_err(what: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::BadInput {
        what: what.into(),
        reason: e.to_string(),
    }
}

/// The plan of a simulated year: see the module doc.
pub fn build(inputs: &PlanInputs<'_>) -> Result<Built, ChainError> {
    let result = inputs.result;
    let policy = scg_settle::Policy::default();
    let year = scg_settle::community_year(result, inputs.internal_price_eur_per_mwh, &policy)
        .map_err(|e| plan_err("settlement of the simulated year", e))?;
    let steps_per_day = result.grid.steps_per_hour() * 24;
    let horizon = inputs
        .days
        .map_or(year.intervals.len(), |d| {
            usize::try_from(d)
                .unwrap_or(usize::MAX)
                .saturating_mul(steps_per_day)
        })
        .min(year.intervals.len());
    let cer = plan_cer(result, &year, horizon)?;
    let mut plan = plan(result, &year, horizon, inputs.market, &policy)?;
    plan.cer = cer.as_ref().map(|(c, _)| c.clone());
    Ok(Built {
        plan,
        year,
        cer_paid_base: cer.map(|(_, paid)| paid),
    })
}

impl Built {
    /// What `scg simulate`'s settlement gives each member over the plan's horizon: its
    /// settlement (`scg_ledger::settlement::settle_year`) of the same intervals without its
    /// CER payout (one payout for the year in its last interval), and the CER of the
    /// horizon's whole periods by the same integer rule.
    pub fn simulated_figures(&self) -> Result<BTreeMap<String, MemberSettlement>, ChainError> {
        let mut short = self.year.clone();
        short.intervals.truncate(self.plan.intervals.len());
        for iv in &mut short.intervals {
            iv.cer.clear();
        }
        let mut figures = scg_ledger::settlement::settle_year(&short)?.summary.members;
        for (id, base) in self.cer_paid_base.iter().flatten() {
            if let Some(m) = figures.get_mut(id) {
                m.cer_received = scg_units::Rescoin(*base);
            }
        }
        Ok(figures)
    }
}

/// The plan from the simulated year: members and meters (a supply point each, and every
/// device that reports in the year, registered at its peak power over the year), and the
/// first `horizon` intervals' tariffs, orders and readings.
fn plan(
    result: &scg_sim::SimResult,
    year: &CommunityYear,
    horizon: usize,
    community: &scg_market::community::CommunityMarket,
    policy: &scg_settle::Policy,
) -> Result<Plan, ChainError> {
    let index: BTreeMap<&str, usize> = year
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let member_of = |id: &str| {
        index
            .get(id)
            .copied()
            .ok_or_else(|| plan_err("simulated year", format!("reading of unknown member {id}")))
    };
    // Per member and device, the most Wh produced in one interval of the year.
    let mut peaks: BTreeMap<(usize, DeviceType), u64> = (0..year.members.len())
        .map(|m| ((m, DeviceType::SupplyPoint), 0))
        .collect();
    for iv in &year.intervals {
        for r in &iv.readings {
            let peak = peaks.entry((member_of(&r.member)?, r.device)).or_insert(0);
            *peak = (*peak).max(r.produced_wh);
        }
    }
    let interval_s = year.interval_s;
    let members = year
        .members
        .iter()
        .enumerate()
        .map(|(m, id)| PlanMember {
            id: id.clone(),
            meters: peaks
                .iter()
                .filter(|((member, _), _)| *member == m)
                .map(|((_, d), wh)| {
                    // W such that floor(W * interval / 3600) >= the peak Wh.
                    let cap = (*d != DeviceType::SupplyPoint && *wh > 0)
                        .then(|| (u128::from(*wh) * 3600).div_ceil(u128::from(interval_s)))
                        .map(|w| u64::try_from(w).unwrap_or(u64::MAX));
                    (*d, cap)
                })
                .collect(),
        })
        .collect();
    let books = result
        .community
        .market
        .as_ref()
        .map(|m| &m.books[..])
        .unwrap_or_default();
    let mut intervals = Vec::with_capacity(horizon);
    for (t, iv) in year.intervals.iter().take(horizon).enumerate() {
        let book = books.get(t).filter(|b| b.step == t).ok_or_else(|| {
            plan_err(
                "simulated year",
                format!("the market kept no book for step {t}"),
            )
        })?;
        let readings = iv
            .readings
            .iter()
            .map(|r| {
                Ok(PlanReading {
                    member: member_of(&r.member)?,
                    device: r.device,
                    produced_wh: r.produced_wh,
                    consumed_wh: r.consumed_wh,
                })
            })
            .collect::<Result<_, ChainError>>()?;
        intervals.push(PlanInterval {
            tariff: Some(IntervalTariff {
                retail_milli_eur_per_mwh: book.retail_milli_eur_per_mwh,
                feed_in_milli_eur_per_mwh: book.feed_in_milli_eur_per_mwh,
                peak: book.peak,
            }),
            orders: book
                .orders
                .iter()
                .map(|o| {
                    let body = OrderBody {
                        interval: t as u64,
                        side: if o.offer {
                            OrderSide::Offer
                        } else {
                            OrderSide::Bid
                        },
                        energy_wh: o.energy_wh,
                        limit_milli_eur_per_mwh: o.limit_milli_eur_per_mwh,
                        source: OfferSource::Unspecified,
                    };
                    (o.member, body)
                })
                .collect(),
            readings,
        });
    }
    let params = MarketParams {
        epoch_s: year.start_timestamp_s,
        interval_s,
        mechanism: community.mechanism,
        fee: community.fee,
        max_orders_per_member: MAX_ORDERS_PER_MEMBER,
        // Set by the driver from its clock step.
        settle_window_s: interval_s,
    };
    Ok(Plan {
        name: format!("scg testnet seed {}", result.seed),
        members,
        epoch_s: year.start_timestamp_s,
        interval_s,
        market: MarketSpec::from_params(&params),
        mint_rate_base_per_wh: u64::try_from(policy.mint_rate_base_per_wh)
            .map_err(|_| plan_err("mint rate", "above u64"))?,
        intervals,
        cer: None,
    })
}

/// A plan's CER and what the simulation pays each member (id) for its periods, base units.
type CerPlan = (PlanCer, BTreeMap<String, u128>);

/// The CER the testnet's chain runs, and what `scg simulate`'s settlement pays each member for
/// the same whole periods: `scg_settle::cer_tally` (the ledger's integer rule, the one
/// `scg simulate` pays the year with) over the intervals of the periods the horizon covers
/// whole. `None` when the community is not a CER.
fn plan_cer(
    result: &scg_sim::SimResult,
    year: &CommunityYear,
    horizon: usize,
) -> Result<Option<CerPlan>, ChainError> {
    let Some(params) = &result.community.cer_params else {
        return Ok(None);
    };
    let settle = |e: scg_settle::SettleError| plan_err("CER of the simulated year", e);
    let mut cer = PlanCer {
        rule: scg_settle::cer_rule(params).map_err(settle)?,
        period_hours: CER_PERIOD_HOURS,
        zonal_milli_eur_per_mwh: scg_settle::zonal_hourly_milli(result).map_err(settle)?,
        budget_base: 0,
    };
    let periods = cer.closed_periods(horizon, year.interval_s);
    let per_hour = result.grid.steps_per_hour().max(1) as u64;
    let hours = periods * u64::from(CER_PERIOD_HOURS);
    let closed = usize::try_from(hours * per_hour).unwrap_or(usize::MAX);
    cer.zonal_milli_eur_per_mwh
        .truncate(usize::try_from(hours).unwrap_or(usize::MAX));
    let Some(tally) =
        scg_settle::cer_tally(result, &year.intervals[..closed.min(horizon)]).map_err(settle)?
    else {
        return Ok(None);
    };
    cer.budget_base = tally.total_base();
    let paid = result
        .prosumers
        .iter()
        .zip(&tally.allocated_base)
        .map(|(p, a)| (p.id.clone(), *a))
        .collect();
    Ok(Some((cer, paid)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            epoch_s: 1_000_000,
            interval_s: 3_600,
            step_s: 24 * 3_600,
            intervals: 24 * 10,
        }
    }

    #[test]
    fn every_interval_is_ordered_closed_and_read_once_in_that_order() {
        let s = schedule();
        let (mut ordered, mut closed, mut read) = (0, 0, 0);
        let mut t = s.start_s();
        for step in 0..20u64 {
            let (o, c, r) = (s.orders(t), s.closes(t), s.readings(t));
            // Contiguous and disjoint across steps: each interval exactly once.
            assert_eq!(
                (o.start, c.start, r.start),
                (ordered, closed, read),
                "step {step}"
            );
            ordered = o.end;
            closed = c.end;
            read = r.end;
            // Orders before their gate; closes at or after it, after the orders' step;
            // readings after the close's step and after the interval ended.
            for k in o {
                assert!(s.epoch_s + k as u64 * s.interval_s > t);
            }
            for k in c {
                let gate = s.epoch_s + k as u64 * s.interval_s;
                assert!(gate <= t && gate > t - s.step_s);
            }
            for k in r {
                let end = s.epoch_s + (k as u64 + 1) * s.interval_s;
                assert!(
                    end <= t && t - end < s.settle_window_s(),
                    "step {step} k {k}"
                );
                assert!(k < closed);
            }
            t += s.step_s;
        }
        assert_eq!(
            (ordered, closed, read),
            (s.intervals, s.intervals, s.intervals)
        );
    }

    #[test]
    fn a_member_part_holds_only_its_orders_and_readings() {
        let order = |m: usize| {
            (
                m,
                OrderBody {
                    interval: 0,
                    side: OrderSide::Bid,
                    energy_wh: 10 + m as i64,
                    limit_milli_eur_per_mwh: 1,
                    source: OfferSource::Unspecified,
                },
            )
        };
        let reading = |m: usize| PlanReading {
            member: m,
            device: DeviceType::SupplyPoint,
            produced_wh: m as u64,
            consumed_wh: 0,
        };
        let members = ["a", "b"].map(|id| PlanMember {
            id: id.into(),
            meters: vec![(DeviceType::SupplyPoint, None)],
        });
        let plan = Plan {
            name: "t".into(),
            members: members.to_vec(),
            epoch_s: 7_200,
            interval_s: 3_600,
            market: MarketSpec::from_params(&MarketParams {
                epoch_s: 7_200,
                interval_s: 3_600,
                mechanism: scg_market::Mechanism::PayAsClear,
                fee: scg_market::GridFee::None,
                max_orders_per_member: 4,
                settle_window_s: 3_600,
            }),
            mint_rate_base_per_wh: 1,
            intervals: vec![
                PlanInterval {
                    tariff: None,
                    orders: vec![order(0), order(1)],
                    readings: vec![reading(0), reading(1)],
                },
                PlanInterval {
                    tariff: None,
                    orders: vec![order(1)],
                    readings: vec![reading(1)],
                },
            ],
            cer: None,
        };
        let b = plan.member_part("b").unwrap();
        assert_eq!(b.index, 1);
        assert!(b.orders.iter().flatten().all(|o| o.energy_wh == 11));
        assert!(b.readings.iter().flatten().all(|r| r.member == 1));
        assert_eq!((b.count(0..2, 0..0), b.count(0..0, 0..2)), (2, 2));
        assert_eq!(plan.member_part("a").unwrap().count(0..9, 0..9), 2);
        let e = plan.member_part("zed").unwrap_err().to_string();
        assert!(e.contains("zed") && e.contains("a, b"), "{e}");
    }
}
