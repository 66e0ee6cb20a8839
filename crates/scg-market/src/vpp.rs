//! The community as a Virtual Power Plant (VPP) in the Italian markets.
//!
//! - [`aggregate`]: the community's flexibility (EV charging that can move, V2G, batteries,
//!   swap-station packs, shiftable smart-home loads — each a [`FlexAsset`]) summed into one
//!   [`Position`] per 15-minute period of the delivery day: forecast baseline withdrawal plus
//!   how far the fleet can move up (less withdrawal / more injection) and down.
//! - [`mgp_bids`]: day-ahead MGP bids for D+1, one per 15-minute product (GME since 1 October
//!   2025), as quantity/price steps within the price limits: the baseline as a price-taking
//!   step (buy at the cap, or sell at the floor), plus an *energy-neutral shift*: pairs of the
//!   cheapest and dearest forecast periods, buying extra (down) at the cheap period's forecast
//!   price and selling flexibility (up) at the dear period's, while the dear price beats the
//!   cheap one divided by the round-trip efficiency.
//! - [`accept`]: which steps a cleared price accepts (a buy step if its price ≥ the clearing
//!   price, a sell step if ≤), giving the scheduled position.
//! - [`mi_rebids`]: MI-A1/A2/A3 re-bids (SIDC intraday auctions, gate closures D-1 15:00, D-1
//!   22:00 and D 10:00; MI-A3 delivers only 12:00–24:00): the difference between a fresher
//!   forecast and the schedule so far, as price-taking steps, in whole kWh (GME's 0.001 MWh).
//! - [`msd_offers`]: Terna MSD up/down offers (UVAM) per period, sized to what the fleet can
//!   sustain for the minimum duration, only when the aggregate reaches the UVAM minimum of
//!   1 MW; otherwise [`UvamCheck`] says how many such communities must aggregate to reach it.
//! - [`imbalance`]: what the community delivered against what it scheduled, priced.
//!
//! Sign convention: positions are **net withdrawal** (+ buying/consuming, − selling/injecting),
//! in kW for power and whole Wh for energy. Times are local civil time in Italy (Europe/Rome):
//! period 1 starts at 00:00; daylight-saving days have 92 or 100 periods.
//! Rules marked *[verify]* in the project's reference notes (UVAM minimum duration, MSD gate)
//! are parameters, not hidden constants. No I/O.

use crate::{MarketError, Price};
use chrono::{DateTime, Duration, NaiveDate, TimeZone};
use chrono_tz::{Europe::Rome, Tz};
use serde::{Deserialize, Serialize};

/// MGP technical price cap, EUR/MWh (from flow day 11 May 2022; GME DTF 20).
pub const MGP_PRICE_CAP_EUR_PER_MWH: f64 = 4000.0;
/// SDAC harmonised minimum clearing price, EUR/MWh.
pub const SDAC_PRICE_FLOOR_EUR_PER_MWH: f64 = -500.0;
/// The UVAM minimum modulable power, kW (1 MW within 15 minutes).
pub const UVAM_MIN_KW: f64 = 1000.0;
/// Hours of one market period.
pub const PERIOD_HOURS: f64 = 0.25;

fn bad(field: &str, message: String) -> MarketError {
    MarketError::InvalidInput {
        field: field.into(),
        message,
    }
}

/// What kind of flexibility an asset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlexKind {
    EvCharging,
    V2g,
    Battery,
    SwapPack,
    ShiftableLoad,
}

/// One flexible asset (or a group of similar ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlexAsset {
    pub id: String,
    pub kind: FlexKind,
    /// Power it can take off the community's withdrawal (or add to injection), kW ≥ 0.
    pub up_kw: f64,
    /// Power it can add to the community's withdrawal, kW ≥ 0.
    pub down_kw: f64,
    /// Energy it can deliver upward over the day, kWh ≥ 0 (battery charge above reserve,
    /// V2G energy allowed, load that can be postponed).
    pub up_energy_kwh: f64,
    /// Energy it can absorb downward over the day, kWh ≥ 0.
    pub down_energy_kwh: f64,
    /// Periods `[from, to)` (0-based) when it is available; `None` = all day.
    #[serde(default)]
    pub window: Option<(u32, u32)>,
}

/// The VPP's position in one period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// 1-based period of the day.
    pub period: u32,
    /// Forecast net withdrawal without flexibility, kW.
    pub baseline_kw: f64,
    /// Available upward power, kW.
    pub up_kw: f64,
    /// Available downward power, kW.
    pub down_kw: f64,
}

/// Daily energy budgets of the whole fleet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FleetEnergy {
    pub up_kwh: f64,
    pub down_kwh: f64,
}

/// Sum the assets into one position per period.
pub fn aggregate(
    baseline_kw: &[f64],
    assets: &[FlexAsset],
) -> Result<(Vec<Position>, FleetEnergy), MarketError> {
    if baseline_kw.iter().any(|v| !v.is_finite()) {
        return Err(bad("baseline_kw", "every value must be finite".into()));
    }
    let mut positions: Vec<Position> = baseline_kw
        .iter()
        .enumerate()
        .map(|(i, &b)| Position {
            period: i as u32 + 1,
            baseline_kw: b,
            up_kw: 0.0,
            down_kw: 0.0,
        })
        .collect();
    let mut energy = FleetEnergy {
        up_kwh: 0.0,
        down_kwh: 0.0,
    };
    for a in assets {
        let values = [a.up_kw, a.down_kw, a.up_energy_kwh, a.down_energy_kwh];
        if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(bad(
                &format!("flex asset {:?}", a.id),
                "powers and energies must be finite and >= 0".into(),
            ));
        }
        let (from, to) = a.window.unwrap_or((0, positions.len() as u32));
        if from > to || to as usize > positions.len() {
            return Err(bad(
                &format!("flex asset {:?}", a.id),
                format!(
                    "window [{from}, {to}) outside the day's {} periods",
                    positions.len()
                ),
            ));
        }
        for p in &mut positions[from as usize..to as usize] {
            p.up_kw += a.up_kw;
            p.down_kw += a.down_kw;
        }
        energy.up_kwh += a.up_energy_kwh;
        energy.down_kwh += a.down_energy_kwh;
    }
    Ok((positions, energy))
}

/// A market session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Session {
    Mgp,
    MiA1,
    MiA2,
    MiA3,
    Msd,
}

impl Session {
    /// The name used in outputs (`MGP`, `MI-A1`, …).
    pub fn name(self) -> &'static str {
        match self {
            Session::Mgp => "MGP",
            Session::MiA1 => "MI-A1",
            Session::MiA2 => "MI-A2",
            Session::MiA3 => "MI-A3",
            Session::Msd => "MSD",
        }
    }

    /// Gate closure as (days before delivery, local hour): MGP D-1 12:00; MI-A1 D-1 15:00;
    /// MI-A2 D-1 22:00; MI-A3 D 10:00; MSD ex-ante D-1 16:00 (the historic offer window
    /// 14:30–16:00, *[verify]* against GME DTF 03).
    pub fn gate_closure_rule(self) -> (i64, u32) {
        match self {
            Session::Mgp => (1, 12),
            Session::MiA1 => (1, 15),
            Session::MiA2 => (1, 22),
            Session::MiA3 => (0, 10),
            Session::Msd => (1, 16),
        }
    }

    /// The first delivery hour (local) the session covers: 12 for MI-A3, else 0.
    pub fn first_delivery_hour(self) -> u32 {
        if self == Session::MiA3 { 12 } else { 0 }
    }
}

/// The delivery day and its calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryDay {
    date: NaiveDate,
    start: DateTime<Tz>,
    periods: u32,
}

impl DeliveryDay {
    /// The day in Italy (Europe/Rome): 96 periods, or 92/100 on daylight-saving days.
    pub fn new(date: NaiveDate) -> Result<Self, MarketError> {
        let midnight = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| Rome.from_local_datetime(&t).single())
                .ok_or_else(|| bad("day", format!("{d} has no single local midnight in Italy")))
        };
        let start = midnight(date)?;
        let next = date
            .succ_opt()
            .ok_or_else(|| bad("day", format!("{date} is at the end of the calendar")))?;
        let end = midnight(next)?;
        let periods = ((end - start).num_minutes() / 15) as u32;
        Ok(Self {
            date,
            start,
            periods,
        })
    }
    /// The day from year, month and day numbers.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Result<Self, MarketError> {
        let date = NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
            bad(
                "day",
                format!("{year:04}-{month:02}-{day:02} is not a date"),
            )
        })?;
        Self::new(date)
    }
    pub fn date(&self) -> NaiveDate {
        self.date
    }
    /// Day of the year, 0-based.
    pub fn date_ordinal0(&self) -> u32 {
        chrono::Datelike::ordinal0(&self.date)
    }
    /// Minutes from the day's midnight in Italian *standard* time (UTC+01:00, the simulation
    /// clock) to the start of `period`: −60 for period 1 in summer, when civil midnight is
    /// 23:00 standard time of the day before.
    pub fn standard_minutes(&self, period: u32) -> i64 {
        let std_midnight = self
            .date
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp() - 3600);
        (self.period_start(period).timestamp() - std_midnight) / 60
    }
    /// Number of 15-minute periods.
    pub fn periods(&self) -> u32 {
        self.periods
    }
    /// Start of 1-based `period` (RFC 3339 with the local offset).
    pub fn period_start(&self, period: u32) -> DateTime<Tz> {
        self.start + Duration::minutes(15 * i64::from(period.saturating_sub(1)))
    }
    /// The 1-based period that starts at local `hour` (counting elapsed time from midnight).
    pub fn first_period_at_hour(&self, hour: u32) -> u32 {
        (1..=self.periods)
            .find(|&p| {
                let t = self.period_start(p);
                chrono::Timelike::hour(&t) >= hour && t.date_naive() == self.date
            })
            .unwrap_or(self.periods + 1)
    }
    /// The gate closure of `session` for this day.
    pub fn gate_closure(&self, session: Session) -> Result<DateTime<Tz>, MarketError> {
        let (days_before, hour) = session.gate_closure_rule();
        let d = self.date - Duration::days(days_before);
        d.and_hms_opt(hour, 0, 0)
            .and_then(|t| Rome.from_local_datetime(&t).single())
            .ok_or_else(|| bad("gate closure", format!("no local {hour}:00 on {d}")))
    }
}

/// Direction of a bid step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Buy energy (MGP/MI).
    Buy,
    /// Sell energy (MGP/MI).
    Sell,
    /// MSD upward service ("a salire").
    Up,
    /// MSD downward service ("a scendere").
    Down,
}

/// One quantity/price step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidStep {
    pub direction: Direction,
    /// Quantity in whole Wh, a multiple of 1,000 (GME's 0.001 MWh).
    pub quantity_wh: i64,
    /// Limit price: the most a buy pays, the least a sell receives.
    pub price: Price,
}

/// The bid of one session for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    pub session: Session,
    pub gate_closure: String,
    pub period: u32,
    pub delivery_start: String,
    pub delivery_end: String,
    pub zone: String,
    pub steps: Vec<BidStep>,
}

/// Price limits and policy of the bids.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BidPolicy {
    /// The most a bid may say (MGP cap).
    pub price_cap: Price,
    /// The least a bid may say (Italian floor: 0 by default; SDAC allows −500).
    pub price_floor: Price,
    /// Round-trip efficiency of shifting energy (batteries, V2G), in (0, 1].
    pub shift_efficiency: f64,
    /// The minimum time an MSD/UVAM activation must be sustained, hours (*[verify]*: 2 h is
    /// the commonly cited UVAM rule).
    pub msd_min_duration_h: f64,
    /// MSD up offers are priced at this multiple of the forecast price.
    pub msd_up_markup: f64,
    /// MSD down offers are priced at this multiple of the forecast price.
    pub msd_down_markdown: f64,
    /// How many identical communities are aggregated into one UVAM.
    pub communities: u32,
}

impl Default for BidPolicy {
    fn default() -> Self {
        Self {
            price_cap: Price(4_000_000),
            price_floor: Price::ZERO,
            shift_efficiency: 0.9,
            msd_min_duration_h: 2.0,
            msd_up_markup: 1.5,
            msd_down_markdown: 0.5,
            communities: 1,
        }
    }
}

impl BidPolicy {
    fn clamp(&self, p: Price) -> Price {
        p.max(self.price_floor).min(self.price_cap)
    }
    fn validate(&self) -> Result<(), MarketError> {
        let cap = Price::from_eur_per_mwh(MGP_PRICE_CAP_EUR_PER_MWH)?;
        let floor = Price::from_eur_per_mwh(SDAC_PRICE_FLOOR_EUR_PER_MWH)?;
        if self.price_cap > cap || self.price_floor < floor || self.price_floor > self.price_cap {
            return Err(bad(
                "price limits",
                format!(
                    "need {floor} <= floor ({}) <= cap ({}) <= {cap}",
                    self.price_floor, self.price_cap
                ),
            ));
        }
        let ok = self.shift_efficiency > 0.0
            && self.shift_efficiency <= 1.0
            && self.msd_min_duration_h > 0.0
            && self.msd_up_markup.is_finite()
            && self.msd_down_markdown.is_finite()
            && self.communities >= 1;
        if !ok {
            return Err(bad("bid policy", format!("inconsistent policy {self:?}")));
        }
        Ok(())
    }
}

/// Energy of `kw` held for one period, rounded to whole kWh (GME quantity resolution).
fn period_wh(kw: f64) -> i64 {
    (kw * PERIOD_HOURS).round() as i64 * 1000
}

fn bid(
    day: &DeliveryDay,
    session: Session,
    zone: &str,
    period: u32,
    steps: Vec<BidStep>,
) -> Result<Bid, MarketError> {
    let start = day.period_start(period);
    Ok(Bid {
        session,
        gate_closure: day.gate_closure(session)?.to_rfc3339(),
        period,
        delivery_start: start.to_rfc3339(),
        delivery_end: (start + Duration::minutes(15)).to_rfc3339(),
        zone: zone.to_owned(),
        steps,
    })
}

fn check_len(day: &DeliveryDay, n: usize, what: &str) -> Result<(), MarketError> {
    if n != day.periods() as usize {
        return Err(bad(
            what,
            format!(
                "{} has {} periods but {} values were given",
                day.date(),
                day.periods(),
                n
            ),
        ));
    }
    Ok(())
}

/// MGP bids for every period (rules in the module docs). `price_forecast` has one price per
/// period.
pub fn mgp_bids(
    day: &DeliveryDay,
    zone: &str,
    positions: &[Position],
    energy: FleetEnergy,
    price_forecast: &[Price],
    policy: &BidPolicy,
) -> Result<Vec<Bid>, MarketError> {
    policy.validate()?;
    check_len(day, positions.len(), "positions")?;
    check_len(day, price_forecast.len(), "price forecast")?;
    let n = positions.len();
    let mut steps: Vec<Vec<BidStep>> = positions
        .iter()
        .map(|p| {
            let e = period_wh(p.baseline_kw);
            match e.cmp(&0) {
                std::cmp::Ordering::Greater => vec![BidStep {
                    direction: Direction::Buy,
                    quantity_wh: e,
                    price: policy.price_cap,
                }],
                std::cmp::Ordering::Less => vec![BidStep {
                    direction: Direction::Sell,
                    quantity_wh: -e,
                    price: policy.price_floor,
                }],
                std::cmp::Ordering::Equal => Vec::new(),
            }
        })
        .collect();
    // Energy-neutral shifting: cheapest periods absorb, dearest periods deliver.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (price_forecast[i], i));
    let (mut lo, mut hi) = (0usize, n.saturating_sub(1));
    let mut up_budget = energy.up_kwh * 1000.0;
    let mut down_budget = energy.down_kwh * 1000.0;
    let mut down_left: Vec<f64> = positions
        .iter()
        .map(|p| p.down_kw * PERIOD_HOURS * 1000.0)
        .collect();
    let mut up_left: Vec<f64> = positions
        .iter()
        .map(|p| p.up_kw * PERIOD_HOURS * 1000.0)
        .collect();
    while lo < hi {
        let (c, d) = (order[lo], order[hi]);
        let cheap = price_forecast[c].eur_per_mwh();
        let dear = price_forecast[d].eur_per_mwh();
        if dear * policy.shift_efficiency <= cheap {
            break;
        }
        // Whole kWh; the delivered side loses (1 − η).
        let absorb = down_left[c]
            .min(down_budget)
            .min(up_left[d].min(up_budget) / policy.shift_efficiency);
        let absorb_wh = (absorb / 1000.0).floor() as i64 * 1000;
        let deliver_wh =
            ((absorb_wh as f64 * policy.shift_efficiency) / 1000.0).floor() as i64 * 1000;
        if absorb_wh > 0 && deliver_wh > 0 {
            steps[c].push(BidStep {
                direction: Direction::Buy,
                quantity_wh: absorb_wh,
                price: policy.clamp(price_forecast[c]),
            });
            steps[d].push(BidStep {
                direction: Direction::Sell,
                quantity_wh: deliver_wh,
                price: policy.clamp(price_forecast[d]),
            });
            down_left[c] -= absorb_wh as f64;
            down_budget -= absorb_wh as f64;
            up_left[d] -= deliver_wh as f64;
            up_budget -= deliver_wh as f64;
        }
        if down_left[c] < 1000.0 || down_budget < 1000.0 || absorb_wh == 0 {
            lo += 1;
        }
        if up_left[d] < 1000.0 || up_budget < 1000.0 || deliver_wh == 0 {
            hi -= 1;
        }
        if down_budget < 1000.0 || up_budget < 1000.0 {
            break;
        }
    }
    steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| bid(day, Session::Mgp, zone, i as u32 + 1, s))
        .collect()
}

/// The net withdrawal (Wh) each bid's accepted steps schedule at the clearing prices.
pub fn accept(bids: &[Bid], clearing: &[Price]) -> Result<Vec<i64>, MarketError> {
    if bids.len() != clearing.len() {
        return Err(bad(
            "clearing prices",
            format!("{} bids but {} prices", bids.len(), clearing.len()),
        ));
    }
    Ok(bids
        .iter()
        .zip(clearing)
        .map(|(b, &p)| {
            b.steps
                .iter()
                .map(|s| match s.direction {
                    Direction::Buy if s.price >= p => s.quantity_wh,
                    Direction::Sell if s.price <= p => -s.quantity_wh,
                    _ => 0,
                })
                .sum()
        })
        .collect())
}

/// MI-A re-bids. `schedule_wh` is the position after MGP (net withdrawal per period);
/// `forecasts_kw[k]` the fresher baseline forecast available before session `k` of
/// MI-A1, MI-A2, MI-A3; `dayahead_kw` the baseline the MGP bids used. Each session bids the
/// change of baseline since the previous forecast, within its delivery window, as
/// price-taking steps (buy at the cap, sell at the floor), and the schedule is updated as
/// accepted. Returns the bids and the final schedule.
pub fn mi_rebids(
    day: &DeliveryDay,
    zone: &str,
    schedule_wh: &[i64],
    dayahead_kw: &[f64],
    forecasts_kw: &[Vec<f64>; 3],
    policy: &BidPolicy,
) -> Result<(Vec<Bid>, Vec<i64>), MarketError> {
    policy.validate()?;
    check_len(day, schedule_wh.len(), "schedule")?;
    check_len(day, dayahead_kw.len(), "day-ahead forecast")?;
    let mut schedule = schedule_wh.to_vec();
    let mut previous: Vec<i64> = dayahead_kw.iter().map(|&kw| period_wh(kw)).collect();
    let mut bids = Vec::new();
    for (session, forecast) in [Session::MiA1, Session::MiA2, Session::MiA3]
        .into_iter()
        .zip(forecasts_kw)
    {
        check_len(day, forecast.len(), session.name())?;
        let first = day.first_period_at_hour(session.first_delivery_hour());
        for p in first..=day.periods() {
            let i = p as usize - 1;
            let now = period_wh(forecast[i]);
            let delta = now - previous[i];
            previous[i] = now;
            if delta == 0 {
                continue;
            }
            let step = if delta > 0 {
                BidStep {
                    direction: Direction::Buy,
                    quantity_wh: delta,
                    price: policy.price_cap,
                }
            } else {
                BidStep {
                    direction: Direction::Sell,
                    quantity_wh: -delta,
                    price: policy.price_floor,
                }
            };
            schedule[i] += delta;
            bids.push(bid(day, session, zone, p, vec![step])?);
        }
    }
    Ok((bids, schedule))
}

/// Whether the fleet reaches the UVAM minimum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UvamCheck {
    /// The largest sustained upward power over the day, kW (all aggregated communities).
    pub max_up_kw: f64,
    /// The largest sustained downward power over the day, kW.
    pub max_down_kw: f64,
    pub minimum_kw: f64,
    pub eligible: bool,
    /// How many communities like this one must aggregate in one UVAM to reach the minimum.
    pub communities_needed: u32,
    pub note: String,
}

/// MSD up/down offers per period, sized to what the fleet can sustain for the minimum duration
/// (power limited by energy / duration), only when the UVAM minimum is reached. Up offers are
/// priced at `forecast × msd_up_markup`, down offers at `forecast × msd_down_markdown`
/// (clamped to the limits).
pub fn msd_offers(
    day: &DeliveryDay,
    zone: &str,
    positions: &[Position],
    energy: FleetEnergy,
    price_forecast: &[Price],
    policy: &BidPolicy,
) -> Result<(Vec<Bid>, UvamCheck), MarketError> {
    policy.validate()?;
    check_len(day, positions.len(), "positions")?;
    check_len(day, price_forecast.len(), "price forecast")?;
    let k = f64::from(policy.communities);
    let sustained = |kw: f64, kwh: f64| (kw * k).min(kwh * k / policy.msd_min_duration_h);
    let up: Vec<f64> = positions
        .iter()
        .map(|p| sustained(p.up_kw, energy.up_kwh))
        .collect();
    let down: Vec<f64> = positions
        .iter()
        .map(|p| sustained(p.down_kw, energy.down_kwh))
        .collect();
    let max_up = up.iter().copied().fold(0.0, f64::max);
    let max_down = down.iter().copied().fold(0.0, f64::max);
    let best = max_up.max(max_down);
    let eligible = best >= UVAM_MIN_KW;
    let per_community = best / k;
    let communities_needed = if per_community > 0.0 {
        (UVAM_MIN_KW / per_community).ceil() as u32
    } else {
        0
    };
    let note = if eligible {
        format!("the aggregate sustains {best:.1} kW >= {UVAM_MIN_KW} kW: MSD offers built")
    } else if per_community > 0.0 {
        format!(
            "below the UVAM minimum ({best:.1} kW < {UVAM_MIN_KW} kW sustained for {} h): no MSD \
             offers; {communities_needed} communities like this one must join one UVAM (same \
             aggregation perimeter) to reach it",
            policy.msd_min_duration_h
        )
    } else {
        "no flexibility: no MSD offers".to_owned()
    };
    let check = UvamCheck {
        max_up_kw: max_up,
        max_down_kw: max_down,
        minimum_kw: UVAM_MIN_KW,
        eligible,
        communities_needed,
        note,
    };
    let mut bids = Vec::new();
    if eligible {
        for (i, p) in price_forecast.iter().enumerate() {
            let mut steps = Vec::new();
            let scale = |m: f64| policy.clamp(Price((p.0 as f64 * m).round() as i64));
            let up_wh = period_wh(up[i]);
            if up[i] >= UVAM_MIN_KW && up_wh > 0 {
                steps.push(BidStep {
                    direction: Direction::Up,
                    quantity_wh: up_wh,
                    price: scale(policy.msd_up_markup),
                });
            }
            let down_wh = period_wh(down[i]);
            if down[i] >= UVAM_MIN_KW && down_wh > 0 {
                steps.push(BidStep {
                    direction: Direction::Down,
                    quantity_wh: down_wh,
                    price: scale(policy.msd_down_markdown),
                });
            }
            if !steps.is_empty() {
                bids.push(bid(day, Session::Msd, zone, i as u32 + 1, steps)?);
            }
        }
    }
    Ok((bids, check))
}

/// The imbalance of one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImbalanceRow {
    pub period: u32,
    pub scheduled_wh: i64,
    pub delivered_wh: i64,
    /// delivered − scheduled net withdrawal: + = short (consumed more than bought).
    pub imbalance_wh: i64,
    /// The price the imbalance settles at.
    pub price: Price,
    /// + received, − paid (exact nano-euro).
    pub amount: crate::NanoEur,
}

/// Imbalance accounting with a single reference price per period and a penalty spread: a
/// short position (imbalance > 0) buys the missing energy at `price × (1 + spread)`, a long one
/// sells the extra at `price × (1 − spread)` (each rounded down to the milli-euro/MWh).
pub fn imbalance(
    scheduled_wh: &[i64],
    delivered_wh: &[i64],
    prices: &[Price],
    spread: f64,
) -> Result<Vec<ImbalanceRow>, MarketError> {
    if scheduled_wh.len() != delivered_wh.len() || scheduled_wh.len() != prices.len() {
        return Err(bad(
            "imbalance",
            "schedule, delivery and prices must have one value per period".into(),
        ));
    }
    if !(0.0..1.0).contains(&spread) {
        return Err(bad(
            "spread",
            format!("must be within [0, 1), got {spread}"),
        ));
    }
    Ok(scheduled_wh
        .iter()
        .zip(delivered_wh)
        .zip(prices)
        .enumerate()
        .map(|(i, ((&s, &d), &p))| {
            let imb = d - s;
            let (price, amount) = if imb > 0 {
                let price = Price((p.0 as f64 * (1.0 + spread)).floor() as i64);
                (price, -price.value_of(scg_units::Wh(imb)))
            } else {
                let price = Price((p.0 as f64 * (1.0 - spread)).floor() as i64);
                (price, price.value_of(scg_units::Wh(-imb)))
            };
            ImbalanceRow {
                period: i as u32 + 1,
                scheduled_wh: s,
                delivered_wh: d,
                imbalance_wh: imb,
                price,
                amount,
            }
        })
        .collect())
}
