//! The community step's market: one call per interval, replacing pro-rata sharing.
//!
//! Each prosumer's net position for the interval (kWh; positive = surplus to sell, negative =
//! deficit to buy) becomes one order through the single rounding point
//! [`Wh::from_kwh`](scg_units::Wh::from_kwh). The default agents are *truthful price takers*:
//! a deficit bids the grid's retail price (no one pays more than the grid asks) and a surplus
//! offers at the feed-in price (no one accepts less than the grid pays). Under pay-as-clear the
//! P2P price is then the midpoint of feed-in and (retail − fee), splitting the gain between
//! buyers and sellers. Whatever P2P leaves is traded with the grid, which always serves: every
//! Wh of every prosumer is accounted for either P2P or with the grid.

use crate::clear::{GRID_ORDER, clear_one_interval};
use crate::{
    ClearingConfig, GridCounterpart, GridFee, MarketError, Mechanism, NanoEur, Order, Price, Trade,
    TradeKind,
};
use scg_units::{Kwh, Wh};
use serde::{Deserialize, Serialize};

/// The grid's prices for one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridTariff {
    /// What a prosumer pays the grid per MWh (retail).
    pub retail: Price,
    /// What the grid pays a prosumer per MWh (feed-in).
    pub feed_in: Price,
}

impl GridTariff {
    /// From float EUR/MWh (rounded to the milli-euro/MWh, half away from zero).
    pub fn from_eur_per_mwh(retail: f64, feed_in: f64) -> Result<Self, MarketError> {
        Ok(Self {
            retail: Price::from_eur_per_mwh(retail)?,
            feed_in: Price::from_eur_per_mwh(feed_in)?,
        })
    }
}

/// The community market's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommunityMarket {
    pub mechanism: Mechanism,
    pub fee: GridFee,
}

/// One prosumer's flows and money in one interval (all ≥ 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProsumerFlows {
    pub p2p_import_wh: Wh,
    pub p2p_export_wh: Wh,
    pub grid_import_wh: Wh,
    pub grid_export_wh: Wh,
    /// Paid for P2P energy, grid fees included.
    pub p2p_paid: NanoEur,
    /// Received for P2P energy.
    pub p2p_received: NanoEur,
    /// The grid fees within `p2p_paid`.
    pub fees_paid: NanoEur,
    /// Paid to the grid at retail.
    pub grid_paid: NanoEur,
    /// Received from the grid at feed-in.
    pub grid_received: NanoEur,
}

/// The outcome of one community interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityInterval {
    pub interval: u32,
    /// The P2P price (see [`crate::IntervalOutcome::price`]).
    pub price: Option<Price>,
    /// Per prosumer, in the order given.
    pub prosumers: Vec<ProsumerFlows>,
    pub trades: Vec<Trade>,
    /// Per trade (in the order of `trades`): the positions in the ids given of its buyer and
    /// its seller, `None` for the grid.
    pub trade_members: Vec<(Option<usize>, Option<usize>)>,
    pub p2p_volume_wh: Wh,
    pub grid_import_wh: Wh,
    pub grid_export_wh: Wh,
    pub fees: NanoEur,
}

impl CommunityMarket {
    /// Clear one interval. `ids[i]` has net position `net_kwh[i]` (+ surplus, − deficit);
    /// `peak` = the main grid is at peak (surplus goes to the grid first). Ids must be unique
    /// and not `grid`.
    pub fn clear_interval<S: AsRef<str>>(
        &self,
        interval: u32,
        ids: &[S],
        net_kwh: &[f64],
        tariff: GridTariff,
        peak: bool,
    ) -> Result<CommunityInterval, MarketError> {
        if ids.len() != net_kwh.len() {
            return Err(MarketError::InvalidInput {
                field: "net_kwh".into(),
                message: format!("{} ids but {} net positions", ids.len(), net_kwh.len()),
            });
        }
        let mut orders = Vec::with_capacity(ids.len());
        // The position in `ids` of every order's prosumer (zero positions make no order).
        let mut member_of_order = Vec::with_capacity(ids.len());
        for (position, (id, &kwh)) in ids.iter().zip(net_kwh).enumerate() {
            let id = id.as_ref();
            let wh = Wh::from_kwh(Kwh(kwh))?;
            if wh.0 > 0 {
                orders.push(Order::offer(id, id, interval, wh.0, tariff.feed_in, None));
            } else if wh.0 < 0 {
                orders.push(Order::bid(id, id, interval, -wh.0, tariff.retail));
            } else {
                continue;
            }
            member_of_order.push(position);
        }
        let config = ClearingConfig {
            mechanism: self.mechanism,
            fee: self.fee,
            grid: GridCounterpart {
                sells_at: Some(tariff.retail),
                buys_at: Some(tariff.feed_in),
                peak,
            },
        };
        let mut prosumers = vec![ProsumerFlows::default(); ids.len()];
        let Some((out, trade_orders)) = clear_one_interval(&orders, interval, &config)? else {
            return Ok(CommunityInterval {
                interval,
                price: None,
                prosumers,
                trades: Vec::new(),
                trade_members: Vec::new(),
                p2p_volume_wh: Wh(0),
                grid_import_wh: Wh(0),
                grid_export_wh: Wh(0),
                fees: NanoEur::ZERO,
            });
        };
        // Trades name their orders by index: members are found without a lookup by name.
        let member = |order: usize| (order != GRID_ORDER).then(|| member_of_order[order]);
        let trade_members: Vec<(Option<usize>, Option<usize>)> = trade_orders
            .iter()
            .map(|&(bid, offer)| (member(bid), member(offer)))
            .collect();
        for (t, &(buyer, seller)) in out.trades.iter().zip(&trade_members) {
            let q = t.energy_wh().0;
            if let Some(b) = buyer {
                let f = &mut prosumers[b];
                match t.kind() {
                    TradeKind::P2p => {
                        f.p2p_import_wh.0 += q;
                        f.p2p_paid += t.buyer_pays();
                        f.fees_paid += t.fee_paid();
                    }
                    _ => {
                        f.grid_import_wh.0 += q;
                        f.grid_paid += t.buyer_pays();
                    }
                }
            }
            if let Some(s) = seller {
                let f = &mut prosumers[s];
                match t.kind() {
                    TradeKind::P2p => {
                        f.p2p_export_wh.0 += q;
                        f.p2p_received += t.seller_receives();
                    }
                    _ => {
                        f.grid_export_wh.0 += q;
                        f.grid_received += t.seller_receives();
                    }
                }
            }
        }
        Ok(CommunityInterval {
            interval,
            price: out.price,
            prosumers,
            p2p_volume_wh: out.volume_wh,
            grid_import_wh: out.grid_import_wh,
            grid_export_wh: out.grid_export_wh,
            fees: out.fees,
            trades: out.trades,
            trade_members,
        })
    }
}
