//! Bidding agents: how a prosumer's forecast becomes orders.
//!
//! - [`LinearRamp`] / [`run_ramp_market`]: Grid Singularity's default strategy. Within one
//!   market slot of `ticks` ticks, a seller's price falls linearly from its initial to its final
//!   rate and a buyer's rises; at every tick the remaining energy is re-posted at the current
//!   rate and cleared pay-as-bid (continuous, agents in the given order). Trades happen at
//!   the first tick where a buyer's net rate reaches a seller's rate.
//!   [`ramp_agents`] builds the usual ramps from a forecast: sellers from retail down to
//!   feed-in, buyers from feed-in up to retail (no one pays more than the grid asks or accepts
//!   less than the grid pays).
//! - [`SmartAgent`]: uses its forecast of net energy and prices over the next intervals and its
//!   battery. The value of one stored MWh is `η × max_k w_k` over the later intervals `k`, where
//!   `w_k` is the retail price if the prosumer expects a deficit then (stored energy avoids a
//!   purchase) and the expected market price otherwise (it could be sold), and `η` is the
//!   round-trip efficiency. A **surplus** charges the battery when that value exceeds the
//!   current expected price, and the rest is offered at the feed-in price; a **deficit** is
//!   covered from the battery when the current expected price is at least that value, and the
//!   rest is bid at the retail price. Charging and discharging respect capacity, state of
//!   charge and power.

use crate::community::GridTariff;
use crate::{
    ClearingConfig, GridFee, MarketError, Mechanism, Order, Price, Side, Source, Trade, clear,
};
use scg_units::{Kwh, Wh};
use serde::{Deserialize, Serialize};

/// A linear price ramp from `initial` (tick 0) to `last` (the last tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearRamp {
    pub initial: Price,
    pub last: Price,
}

impl LinearRamp {
    /// The rate at `tick` of `ticks` (0-based; `ticks ≥ 1`): `initial + (last − initial) ×
    /// tick / (ticks − 1)`, the division truncating toward zero (so the rate never overshoots
    /// `last`).
    pub fn price_at(&self, tick: u32, ticks: u32) -> Price {
        if ticks <= 1 {
            return self.last;
        }
        let tick = tick.min(ticks - 1);
        let span = i128::from(self.last.0) - i128::from(self.initial.0);
        let step = span * i128::from(tick) / i128::from(ticks - 1);
        Price((i128::from(self.initial.0) + step) as i64)
    }
}

/// One prosumer's order for one slot, priced by a ramp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RampAgent {
    pub prosumer: String,
    pub side: Side,
    pub energy_wh: Wh,
    pub ramp: LinearRamp,
    pub source: Option<Source>,
}

/// Agents for one slot from the forecast net energy of each prosumer (kWh, + surplus,
/// − deficit): sellers ramp retail → feed-in, buyers feed-in → retail.
pub fn ramp_agents<S: AsRef<str>>(
    ids: &[S],
    net_kwh: &[f64],
    tariff: GridTariff,
) -> Result<Vec<RampAgent>, MarketError> {
    if ids.len() != net_kwh.len() {
        return Err(MarketError::InvalidInput {
            field: "net_kwh".into(),
            message: format!("{} ids but {} forecasts", ids.len(), net_kwh.len()),
        });
    }
    let mut agents = Vec::new();
    for (id, &kwh) in ids.iter().zip(net_kwh) {
        let wh = Wh::from_kwh(Kwh(kwh))?;
        if wh.0 == 0 {
            continue;
        }
        let (side, ramp) = if wh.0 > 0 {
            (
                Side::Offer,
                LinearRamp {
                    initial: tariff.retail,
                    last: tariff.feed_in,
                },
            )
        } else {
            (
                Side::Bid,
                LinearRamp {
                    initial: tariff.feed_in,
                    last: tariff.retail,
                },
            )
        };
        agents.push(RampAgent {
            prosumer: id.as_ref().to_owned(),
            side,
            energy_wh: Wh(wh.0.abs()),
            ramp,
            source: None,
        });
    }
    Ok(agents)
}

/// Run one slot of `ticks` ticks of ramped pay-as-bid trading (see the module docs). Order ids
/// are `<prosumer>/<bid|offer>/t<tick>`, so each tick's trades have their own stable ids.
pub fn run_ramp_market(
    interval: u32,
    agents: &[RampAgent],
    ticks: u32,
    fee: GridFee,
) -> Result<Vec<Trade>, MarketError> {
    let mut remaining: Vec<i64> = agents.iter().map(|a| a.energy_wh.0).collect();
    let config = ClearingConfig {
        mechanism: Mechanism::PayAsBid,
        fee,
        ..Default::default()
    };
    let mut trades = Vec::new();
    for tick in 0..ticks.max(1) {
        let mut orders = Vec::new();
        let mut owner = Vec::new();
        for (k, a) in agents.iter().enumerate() {
            if remaining[k] <= 0 {
                continue;
            }
            let side = match a.side {
                Side::Bid => "bid",
                Side::Offer => "offer",
            };
            let mut o = Order::bid(
                &format!("{}/{side}/t{tick}", a.prosumer),
                &a.prosumer,
                interval,
                remaining[k],
                a.ramp.price_at(tick, ticks),
            );
            o.side = a.side;
            o.source = a.source;
            orders.push(o);
            owner.push(k);
        }
        let out = clear(&orders, &config)?;
        for t in out.trades() {
            for (o, &k) in orders.iter().zip(&owner) {
                if o.id == t.bid() || o.id == t.offer() {
                    remaining[k] -= t.energy_wh().0;
                }
            }
            trades.push(t.clone());
        }
    }
    Ok(trades)
}

/// A battery as the agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Battery {
    pub soc_kwh: f64,
    pub capacity_kwh: f64,
    pub max_power_kw: f64,
    /// Round-trip efficiency in (0, 1].
    pub round_trip_efficiency: f64,
}

/// The forecast- and battery-aware agent (rules in the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmartAgent {
    pub prosumer: String,
    pub battery: Battery,
    /// Length of one interval in hours.
    pub step_hours: f64,
}

/// What the smart agent does in the current interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Energy into (+) or out of (−) the battery, kWh at the terminals.
    pub battery_kwh: f64,
    /// The order for the rest, if any.
    pub order: Option<Order>,
}

impl SmartAgent {
    /// Decide for `interval`. `net_forecast_kwh[0]` and `price_forecast[0]` are the current
    /// interval, later entries the horizon (same length, ≥ 1).
    pub fn decide(
        &self,
        interval: u32,
        net_forecast_kwh: &[f64],
        price_forecast: &[Price],
        tariff: GridTariff,
    ) -> Result<Decision, MarketError> {
        let bad = |field: &str, message: String| MarketError::InvalidInput {
            field: field.into(),
            message,
        };
        if net_forecast_kwh.is_empty() || net_forecast_kwh.len() != price_forecast.len() {
            return Err(bad(
                "forecast",
                format!(
                    "need equally long, non-empty net and price forecasts, got {} and {}",
                    net_forecast_kwh.len(),
                    price_forecast.len()
                ),
            ));
        }
        let b = self.battery;
        let valid = b.capacity_kwh >= 0.0
            && (0.0..=b.capacity_kwh).contains(&b.soc_kwh)
            && b.max_power_kw >= 0.0
            && b.round_trip_efficiency > 0.0
            && b.round_trip_efficiency <= 1.0
            && self.step_hours > 0.0;
        if !valid {
            return Err(bad(
                "battery",
                format!(
                    "inconsistent battery or step: {b:?}, step_hours {}",
                    self.step_hours
                ),
            ));
        }
        let n0 = net_forecast_kwh[0];
        let p0 = price_forecast[0];
        let stored_value = net_forecast_kwh[1..]
            .iter()
            .zip(&price_forecast[1..])
            .map(|(&n, &p)| if n < 0.0 { tariff.retail } else { p })
            .max()
            .map(|w| Price((w.0 as f64 * b.round_trip_efficiency).floor() as i64));
        let max_step_kwh = b.max_power_kw * self.step_hours;
        let mut battery_kwh = 0.0;
        let mut rest = n0;
        if n0 > 0.0 {
            if stored_value.is_some_and(|v| v > p0) {
                battery_kwh = n0
                    .min(b.capacity_kwh - b.soc_kwh)
                    .min(max_step_kwh)
                    .max(0.0);
                rest = n0 - battery_kwh;
            }
        } else if n0 < 0.0 && stored_value.is_none_or(|v| p0 >= v) {
            let d = (-n0).min(b.soc_kwh).min(max_step_kwh).max(0.0);
            battery_kwh = -d;
            rest = n0 + d;
        }
        let wh = Wh::from_kwh(Kwh(rest))?;
        let order = if wh.0 > 0 {
            Some(Order::offer(
                &format!("{}/offer", self.prosumer),
                &self.prosumer,
                interval,
                wh.0,
                tariff.feed_in,
                None,
            ))
        } else if wh.0 < 0 {
            Some(Order::bid(
                &format!("{}/bid", self.prosumer),
                &self.prosumer,
                interval,
                -wh.0,
                tariff.retail,
            ))
        } else {
            None
        };
        Ok(Decision { battery_kwh, order })
    }
}
