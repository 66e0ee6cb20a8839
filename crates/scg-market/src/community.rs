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

use crate::clear::{BookBuffers, CheckedBook, Names, clear_checked_interval, trades_of};
use crate::{
    ClearingConfig, Fill, GridCounterpart, GridFee, IntervalOutcome, MarketError, Mechanism,
    NanoEur, Order, Price, Side, Trade, TradeKind,
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
    /// and not `grid`. A caller clearing interval after interval keeps a
    /// [`CommunityClearing`] instead (this is one made and dropped).
    pub fn clear_interval<S: AsRef<str>>(
        &self,
        interval: u32,
        ids: &[S],
        net_kwh: &[f64],
        tariff: GridTariff,
        peak: bool,
    ) -> Result<CommunityInterval, MarketError> {
        CommunityClearing::new(*self, ids)?
            .clear(interval, net_kwh, tariff, peak)
            .cloned()
    }
}

/// One interval cleared by [`CommunityClearing::clear_fills`]: the members' flows and the
/// trades as [`Fill`]s, whose order indices are the members' (order `i` is member `i`'s).
#[derive(Debug, Clone, Copy)]
pub struct IntervalFills<'a> {
    pub interval: u32,
    /// The P2P price (see [`crate::IntervalOutcome::price`]).
    pub price: Option<Price>,
    /// Per member, in the order given.
    pub prosumers: &'a [ProsumerFlows],
    /// Every trade, in clearing order.
    pub fills: &'a [Fill],
}

/// The community market of a fixed set of members, kept from one interval to the next: each
/// member's order and name are made once, and the book's buffers and the outcome's vectors
/// are reused, so that clearing an interval allocates nothing once they have grown (the sizing
/// search replays a year of intervals per configuration; a city clears thousands of orders
/// per interval). The book is the members' own: one order each, named after the member, made
/// here from checked names and non-zero amounts, so it is not validated again per interval.
/// [`CommunityClearing::clear_fills`] makes no [`Trade`] (a city's year makes hundreds of
/// millions); [`CommunityClearing::clear`] makes them too.
pub struct CommunityClearing {
    market: CommunityMarket,
    /// One order per member, named after it (`id == prosumer`); side, energy, price and
    /// interval are set per interval, and only members with a position trade.
    orders: Vec<Order>,
    names: Names,
    /// The members with a non-zero position this interval, ascending.
    active: Vec<usize>,
    /// The book's scratch; after a clearing, its `fills` are the interval's trades.
    buffers: BookBuffers,
    /// The last outcome (its `trades` and `trade_members` empty after
    /// [`CommunityClearing::clear_fills`]).
    out: CommunityInterval,
}

impl std::fmt::Debug for CommunityClearing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommunityClearing")
            .field("market", &self.market)
            .field("members", &self.orders.len())
            .finish_non_exhaustive()
    }
}

impl CommunityClearing {
    /// The market of members `ids` (non-empty names, unique, not `grid`).
    pub fn new<S: AsRef<str>>(market: CommunityMarket, ids: &[S]) -> Result<Self, MarketError> {
        let orders: Vec<Order> = ids
            .iter()
            .map(|id| Order::bid(id.as_ref(), id.as_ref(), 0, 1, Price::ZERO))
            .collect();
        // The names, checked as a book's: non-empty, not the grid's, unique.
        crate::validate_orders(&orders)?;
        let names = Names::of(&orders);
        Ok(Self {
            market,
            orders,
            names,
            active: Vec::with_capacity(ids.len()),
            buffers: BookBuffers::default(),
            out: CommunityInterval {
                interval: 0,
                price: None,
                prosumers: vec![ProsumerFlows::default(); ids.len()],
                trades: Vec::new(),
                trade_members: Vec::new(),
                p2p_volume_wh: Wh(0),
                grid_import_wh: Wh(0),
                grid_export_wh: Wh(0),
                fees: NanoEur::ZERO,
            },
        })
    }

    /// How many members the market has.
    pub fn members(&self) -> usize {
        self.orders.len()
    }

    /// The book of the last interval cleared: each member with a position and its order
    /// (side, Wh, limit price), ascending by member — what a member node submits as its own
    /// order on the chain (`scg testnet`), so that the orders there are these very ones.
    pub fn last_book(&self) -> impl Iterator<Item = (usize, &Order)> {
        self.active.iter().map(|&i| (i, &self.orders[i]))
    }

    /// Clear one interval: member `i` has net position `net_kwh[i]` (+ surplus, − deficit);
    /// `peak` = the main grid is at peak (surplus goes to the grid first). The outcome with
    /// every trade made ([`CommunityClearing::clear_fills`] leaves them as fills).
    pub fn clear(
        &mut self,
        interval: u32,
        net_kwh: &[f64],
        tariff: GridTariff,
        peak: bool,
    ) -> Result<&CommunityInterval, MarketError> {
        self.clear_fills(interval, net_kwh, tariff, peak)?;
        let fills = &self.buffers.fills;
        let out = &mut self.out;
        out.trades
            .extend(trades_of(&self.orders, &self.names, interval, fills));
        out.trade_members
            .extend(fills.iter().map(|f| (f.bid_order(), f.offer_order())));
        Ok(&self.out)
    }

    /// [`CommunityClearing::clear`] without making the trades: the members' flows and the
    /// trades as fills.
    pub fn clear_fills(
        &mut self,
        interval: u32,
        net_kwh: &[f64],
        tariff: GridTariff,
        peak: bool,
    ) -> Result<IntervalFills<'_>, MarketError> {
        if self.orders.len() != net_kwh.len() {
            return Err(MarketError::InvalidInput {
                field: "net_kwh".into(),
                message: format!(
                    "{} ids but {} net positions",
                    self.orders.len(),
                    net_kwh.len()
                ),
            });
        }
        self.set_orders(interval, net_kwh, tariff)?;
        let config = ClearingConfig {
            mechanism: self.market.mechanism,
            fee: self.market.fee,
            grid: GridCounterpart {
                sells_at: Some(tariff.retail),
                buys_at: Some(tariff.feed_in),
                peak,
            },
        };
        let book = CheckedBook {
            orders: &self.orders,
            names: &self.names,
            active: &self.active,
            interval,
        };
        let cleared = clear_checked_interval(book, &config, &mut self.buffers)?;
        self.record(cleared);
        Ok(IntervalFills {
            interval,
            price: self.out.price,
            prosumers: &self.out.prosumers,
            fills: &self.buffers.fills,
        })
    }

    /// Each member's order for `interval` from its net position, through the single rounding
    /// point [`Wh::from_kwh`]: a surplus offers at the feed-in price, a deficit bids the
    /// retail price, a zero position makes no order.
    fn set_orders(
        &mut self,
        interval: u32,
        net_kwh: &[f64],
        tariff: GridTariff,
    ) -> Result<(), MarketError> {
        // Only members with a position trade: the last interval's flows are zero but theirs.
        for &i in &self.active {
            self.out.prosumers[i] = ProsumerFlows::default();
        }
        self.active.clear();
        for (position, (order, &kwh)) in self.orders.iter_mut().zip(net_kwh).enumerate() {
            let wh = Wh::from_kwh(Kwh(kwh))?;
            let (side, price) = match wh.0.signum() {
                1 => (Side::Offer, tariff.feed_in),
                -1 => (Side::Bid, tariff.retail),
                _ => continue,
            };
            order.interval = interval;
            order.side = side;
            order.energy_wh = Wh(wh.0.abs());
            order.price = price;
            self.active.push(position);
        }
        Ok(())
    }

    /// The outcome per member (its trades not made): fills map to members by order index
    /// (order `i` is member `i`'s), never by name.
    fn record(&mut self, cleared: IntervalOutcome) {
        let out = &mut self.out;
        debug_assert_eq!(out.prosumers.len(), self.orders.len());
        out.trades.clear();
        out.trade_members.clear();
        for t in &self.buffers.fills {
            let q = t.energy_wh().0;
            if let Some(b) = t.bid_order() {
                let f = &mut out.prosumers[b];
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
            if let Some(s) = t.offer_order() {
                let f = &mut out.prosumers[s];
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
        out.interval = cleared.interval;
        out.price = cleared.price;
        out.p2p_volume_wh = cleared.volume_wh;
        out.grid_import_wh = cleared.grid_import_wh;
        out.grid_export_wh = cleared.grid_export_wh;
        out.fees = cleared.fees;
    }
}
