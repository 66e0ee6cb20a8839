//! The on-chain community market: orders are transactions, clearing is a state transition.
//!
//! Five transaction kinds (wire layouts in [`crate::tx`] and `docs/ledger-encoding.md`) drive it:
//! - **market open** (operator, once per chain): the interval grid (`epoch_s`, `interval_s`),
//!   the mechanism and grid fee of `scg-market`, the bound on orders per member per interval
//!   and the settlement window of cleared trades ([`MarketParams`]);
//! - **meter capacity** (operator): a meter's registered capacity in W, which bounds offers;
//! - **interval tariff** (operator, before the interval's gate): the grid's retail and feed-in
//!   prices and the peak flag of one interval, the grid counterpart of its clearing;
//! - **order** (a member): a bid or an offer for one interval ([`OrderBody`]);
//! - **gate close** (any member or the operator, once the block time has reached the
//!   interval's gate): clears the interval's orders with [`scg_market::clear`] — whose
//!   per-interval book clearing is the very one `scg simulate`'s community market runs
//!   (through `scg_market::community::CommunityClearing`) — and records every P2P trade as
//!   a pending ledger trade, exactly as a trade-create transaction would.
//!
//! The gate of interval `k` closes at `epoch_s + k * interval_s` (the start of delivery): an
//! order or a tariff for `k` is accepted only in a block whose timestamp is before it, a gate
//! close only in a block at or after it. Orders enter the clearing in a canonical order — by
//! member key, then by the order's transaction nonce — never by arrival, so a proposer who
//! reorders transactions inside a block or across blocks changes nothing.
//!
//! Everything here is integer: orders carry prices in the market's [`scg_market::Price`] unit
//! (milli-euro per MWh), clearing in `scg-market` is integer (no float on its path: it converts
//! floats only in `Price::from_eur_per_mwh`, which the ledger never calls), and a price of
//! `p` milli-EUR/MWh is exactly `1000 p` base units per kWh on the ledger (one base unit is one
//! nano-euro), so trade amounts are exact.
//!
//! This module never does I/O; its state is committed to the state root (see [`MarketState`]).

use crate::codec::{DecodeError, Reader, Writer};
use crate::merkle::{Hash, sha256, to_hex};
use crate::tx::{DeviceType, PublicKey};
use scg_market::{ClearingConfig, GridCounterpart, GridFee, Mechanism, Order, Price, Source};
use std::collections::BTreeMap;

/// The market's parameters, set once per chain by the operator's market-open transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketParams {
    /// Start of interval 0, Unix seconds.
    pub epoch_s: u64,
    /// Length of one interval, seconds (> 0).
    pub interval_s: u64,
    /// The P2P matching rule (as `scg simulate`'s `[community.market] mechanism`).
    pub mechanism: Mechanism,
    /// The grid fee on P2P trades (as `scg simulate`'s market fee).
    pub fee: GridFee,
    /// Most orders one member may place in one interval (1..=[`MAX_ORDERS_PER_INTERVAL`]).
    pub max_orders_per_member: u16,
    /// Seconds after the end of its interval at which a cleared trade that was not posted
    /// expires (its reservation returns to the buyer); > 0.
    pub settle_window_s: u64,
}

/// Upper bound on [`MarketParams::max_orders_per_member`].
pub const MAX_ORDERS_PER_INTERVAL: u16 = 64;

impl MarketParams {
    /// Wire bytes: epoch `u64`, interval length `u64`, mechanism `u8` (1 pay-as-clear,
    /// 2 pay-as-bid, 3 pay-as-offer), fee kind `u8` (0 none, 1 constant, 2 percent), fee value
    /// `i64` (0; milli-EUR/MWh; basis points), max orders `u16`, settle window `u64`.
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.epoch_s);
        w.u64(self.interval_s);
        w.u8(match self.mechanism {
            Mechanism::PayAsClear => 1,
            Mechanism::PayAsBid => 2,
            Mechanism::PayAsOffer => 3,
        });
        let (kind, value) = match self.fee {
            GridFee::None => (0, 0),
            GridFee::Constant(p) => (1, p.0),
            GridFee::Percent { basis_points } => (2, i64::from(basis_points)),
        };
        w.u8(kind);
        w.u64(value as u64);
        w.u16(self.max_orders_per_member);
        w.u64(self.settle_window_s);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let epoch_s = r.u64("epoch_s")?;
        let interval_s = r.u64("interval_s")?;
        let code = r.u8("mechanism")?;
        let mechanism = match code {
            1 => Mechanism::PayAsClear,
            2 => Mechanism::PayAsBid,
            3 => Mechanism::PayAsOffer,
            _ => return Err(invalid("mechanism", u64::from(code))),
        };
        let kind = r.u8("fee_kind")?;
        let raw = r.u64("fee_value")?;
        let value = raw as i64;
        let fee = match kind {
            0 if value == 0 => GridFee::None,
            1 => GridFee::Constant(Price(value)),
            2 => GridFee::Percent {
                basis_points: u32::try_from(value).map_err(|_| invalid("fee_value", raw))?,
            },
            0 => return Err(invalid("fee_value", raw)),
            _ => return Err(invalid("fee_kind", u64::from(kind))),
        };
        Ok(Self {
            epoch_s,
            interval_s,
            mechanism,
            fee,
            max_orders_per_member: r.u16("max_orders_per_member")?,
            settle_window_s: r.u64("settle_window_s")?,
        })
    }

    /// Why these parameters are unusable, if they are.
    pub fn problem(&self) -> Option<&'static str> {
        if self.interval_s == 0 {
            return Some("interval_s must be > 0");
        }
        if self.max_orders_per_member == 0 || self.max_orders_per_member > MAX_ORDERS_PER_INTERVAL {
            return Some("max_orders_per_member must be in 1..=64");
        }
        if self.settle_window_s == 0 {
            return Some("settle_window_s must be > 0");
        }
        if matches!(self.fee, GridFee::Constant(c) if c.0 < 0) {
            return Some("a constant fee must be >= 0");
        }
        None
    }

    /// The gate time of `interval`: the start of its delivery, `epoch_s + interval *
    /// interval_s` (`None` past `u64`).
    pub fn gate_s(&self, interval: u64) -> Option<u64> {
        interval
            .checked_mul(self.interval_s)?
            .checked_add(self.epoch_s)
    }

    /// The most Wh a capacity of `capacity_w` delivers in one interval (rounded down).
    pub fn capacity_wh(&self, capacity_w: u64) -> u64 {
        let wh = u128::from(capacity_w) * u128::from(self.interval_s) / 3600;
        u64::try_from(wh).unwrap_or(u64::MAX)
    }
}

fn invalid(field: &'static str, value: u64) -> DecodeError {
    DecodeError::Invalid { field, value }
}

/// Buy or sell (wire: 1 bid, 2 offer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrderSide {
    /// Buy.
    Bid,
    /// Sell.
    Offer,
}

/// Where an offer's energy comes from (wire: 0 unspecified, 1 PV, 2 wind, 3 V2G, 4 battery).
/// Bids carry [`OfferSource::Unspecified`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OfferSource {
    /// Not declared (a member's net surplus, as `scg simulate`'s agents offer).
    Unspecified,
    /// Photovoltaic.
    Pv,
    /// Wind.
    Wind,
    /// An EV giving back energy.
    V2g,
    /// A stationary battery.
    Battery,
}

impl OfferSource {
    fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::Pv => 1,
            Self::Wind => 2,
            Self::V2g => 3,
            Self::Battery => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::Pv,
            2 => Self::Wind,
            3 => Self::V2g,
            4 => Self::Battery,
            _ => return None,
        })
    }

    /// The `scg-market` source.
    pub fn market_source(self) -> Option<Source> {
        match self {
            Self::Unspecified => None,
            Self::Pv => Some(Source::Pv),
            Self::Wind => Some(Source::Wind),
            Self::V2g => Some(Source::V2g),
            Self::Battery => Some(Source::Battery),
        }
    }

    /// Whether a meter of `device` can deliver energy of this source (an unspecified offer
    /// may come from any producing or storage device; the supply point produces nothing of
    /// its own).
    pub fn served_by(self, device: DeviceType) -> bool {
        match self {
            Self::Unspecified => device != DeviceType::SupplyPoint,
            Self::Pv => device == DeviceType::Pv,
            Self::Wind => device == DeviceType::Wind,
            Self::V2g => device == DeviceType::EvCharger,
            Self::Battery => device == DeviceType::Battery,
        }
    }
}

/// A member's order for one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderBody {
    /// Delivery interval (at most `u32::MAX`, the market's interval type).
    pub interval: u64,
    /// Bid or offer.
    pub side: OrderSide,
    /// Energy, Wh. Signed on the wire so that a zero or negative amount is a recorded
    /// rejection, not a decoding accident.
    pub energy_wh: i64,
    /// Limit price, milli-euro per MWh ([`scg_market::Price`]): the most a bid pays including
    /// the grid fee, the least an offer receives. Negative is rejected (ledger amounts are
    /// unsigned).
    pub limit_milli_eur_per_mwh: i64,
    /// Offers: the source; bids: [`OfferSource::Unspecified`].
    pub source: OfferSource,
}

impl OrderBody {
    /// Wire bytes: interval `u64`, side `u8`, energy `i64`, limit `i64`, source `u8`.
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.interval);
        w.u8(match self.side {
            OrderSide::Bid => 1,
            OrderSide::Offer => 2,
        });
        w.u64(self.energy_wh as u64);
        w.u64(self.limit_milli_eur_per_mwh as u64);
        w.u8(self.source.code());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let interval = r.u64("interval")?;
        let code = r.u8("side")?;
        let side = match code {
            1 => OrderSide::Bid,
            2 => OrderSide::Offer,
            _ => return Err(invalid("side", u64::from(code))),
        };
        let energy_wh = r.u64("energy_wh")? as i64;
        let limit_milli_eur_per_mwh = r.u64("limit_milli_eur_per_mwh")? as i64;
        let code = r.u8("source")?;
        let source = OfferSource::from_code(code).ok_or(invalid("source", u64::from(code)))?;
        Ok(Self {
            interval,
            side,
            energy_wh,
            limit_milli_eur_per_mwh,
            source,
        })
    }

    /// Base units a bid can cost at most: `energy_wh * limit` nano-euro (0 for offers).
    pub fn max_cost_base(&self) -> u128 {
        match self.side {
            OrderSide::Bid => {
                u128::from(self.energy_wh.max(0).unsigned_abs())
                    * u128::from(self.limit_milli_eur_per_mwh.max(0).unsigned_abs())
            }
            OrderSide::Offer => 0,
        }
    }
}

/// The grid's side of one interval (the operator's interval-tariff transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalTariff {
    /// What the grid sells at, milli-EUR/MWh.
    pub retail_milli_eur_per_mwh: i64,
    /// What the grid buys at, milli-EUR/MWh.
    pub feed_in_milli_eur_per_mwh: i64,
    /// The grid is at peak: offers at or below feed-in go to the grid first.
    pub peak: bool,
}

impl IntervalTariff {
    /// The grid counterpart of the clearing.
    pub fn counterpart(&self) -> GridCounterpart {
        GridCounterpart {
            sells_at: Some(Price(self.retail_milli_eur_per_mwh)),
            buys_at: Some(Price(self.feed_in_milli_eur_per_mwh)),
            peak: self.peak,
        }
    }
}

/// What a gate close did (kept per cleared interval, committed to the state root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateRecord {
    /// Height of the block that cleared the interval.
    pub height: u64,
    /// Orders that entered the clearing.
    pub orders: u32,
    /// Bids left out because the buyer's balance at the gate no longer covered them (in
    /// canonical order, cumulatively).
    pub unfunded_bids: u32,
    /// P2P trades recorded.
    pub trades: u32,
    /// P2P Wh traded.
    pub volume_wh: u64,
}

/// One P2P trade of a clearing, in ledger terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClearedTrade {
    /// Buying member.
    pub buyer: PublicKey,
    /// Selling member.
    pub seller: PublicKey,
    /// Energy, Wh.
    pub energy_wh: u64,
    /// Seller price, base units per kWh (`1000 x` milli-EUR/MWh).
    pub price_base_per_kwh: u128,
    /// Grid fee, base units per kWh.
    pub fee_base_per_kwh: u128,
}

/// A resting order as the clearing sees it: member, order nonce (its transaction nonce), body.
pub type BookEntry = (PublicKey, u64, OrderBody);

/// The `scg-market` name of a member: the hex of its key.
pub fn prosumer_name(member: &PublicKey) -> String {
    to_hex(member)
}

/// The `scg-market` order id of a member's order: `<member hex>/<nonce>`.
pub fn order_id(member: &PublicKey, nonce: u64) -> String {
    format!("{}/{nonce}", to_hex(member))
}

/// The `scg-market` orders of a book, in the order given (the caller passes the canonical
/// order: member, then nonce).
pub fn market_orders(interval: u32, book: &[BookEntry]) -> Vec<Order> {
    book.iter()
        .map(|(member, nonce, o)| {
            let id = order_id(member, *nonce);
            let name = prosumer_name(member);
            let price = Price(o.limit_milli_eur_per_mwh);
            match o.side {
                OrderSide::Bid => Order::bid(&id, &name, interval, o.energy_wh, price),
                OrderSide::Offer => Order::offer(
                    &id,
                    &name,
                    interval,
                    o.energy_wh,
                    price,
                    o.source.market_source(),
                ),
            }
        })
        .collect()
}

/// Clear one interval's book with `scg_market::clear` and return its P2P trades in clearing
/// order, in ledger terms. Grid trades (fallback, peak) are the retailer's business and are
/// not ledger trades.
pub fn clear_book(
    interval: u32,
    book: &[BookEntry],
    params: &MarketParams,
    tariff: Option<&IntervalTariff>,
) -> Result<Vec<ClearedTrade>, String> {
    let orders = market_orders(interval, book);
    let config = ClearingConfig {
        mechanism: params.mechanism,
        fee: params.fee,
        grid: tariff.map(IntervalTariff::counterpart).unwrap_or_default(),
    };
    let outcome = scg_market::clear(&orders, &config).map_err(|e| e.to_string())?;
    let keys: BTreeMap<String, PublicKey> = book
        .iter()
        .map(|(m, _, _)| (prosumer_name(m), *m))
        .collect();
    let mut out = Vec::new();
    for t in outcome.trades() {
        if t.kind() != scg_market::TradeKind::P2p {
            continue;
        }
        let (Some(buyer), Some(seller)) = (keys.get(t.buyer()), keys.get(t.seller())) else {
            return Err(format!("trade {} names an unknown member", t.id()));
        };
        let base = |p: Price| {
            u128::try_from(p.0)
                .map(|m| m * 1000)
                .map_err(|_| format!("trade {} has a negative price {p}", t.id()))
        };
        out.push(ClearedTrade {
            buyer: *buyer,
            seller: *seller,
            energy_wh: u64::try_from(t.energy_wh().0)
                .map_err(|_| format!("trade {} has negative energy", t.id()))?,
            price_base_per_kwh: base(t.price())?,
            fee_base_per_kwh: base(t.fee())?,
        });
    }
    Ok(out)
}

/// The id of the `k`-th trade cleared for `interval`: the first 16 bytes (little-endian) of
/// `SHA-256("SCG-LEDGER/MARKET-TRADE/v1" || interval u64 || k u32)`. Ids of transactions are
/// chosen by their signers; a clash with one is refused by the gate close (never observed:
/// 2^-128 per pair).
pub fn market_trade_id(interval: u64, k: u32) -> u128 {
    let h = sha256(&[
        b"SCG-LEDGER/MARKET-TRADE/v1",
        &interval.to_le_bytes(),
        &k.to_le_bytes(),
    ]);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    u128::from_le_bytes(b)
}

/// The market's part of the ledger state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketState {
    /// Set by the market-open transaction.
    pub params: Option<MarketParams>,
    /// Registered capacity per `(member, meter)`: device and W.
    pub capacities: BTreeMap<(PublicKey, PublicKey), (DeviceType, u64)>,
    /// Grid tariff per interval.
    pub tariffs: BTreeMap<u64, IntervalTariff>,
    /// Resting orders by `(interval, member, nonce)` — the canonical order; an interval's
    /// orders leave when it clears.
    pub orders: BTreeMap<(u64, PublicKey, u64), OrderBody>,
    /// Cleared intervals.
    pub cleared: BTreeMap<u64, GateRecord>,
    /// Trades cleared per `(seller, interval)`, in clearing order (for post-delivery).
    pub trades_by_seller: BTreeMap<(PublicKey, u64), Vec<u128>>,
}

impl MarketState {
    /// The member's resting orders of `interval`, by nonce.
    pub fn orders_of(
        &self,
        interval: u64,
        member: &PublicKey,
    ) -> impl Iterator<Item = (u64, &OrderBody)> {
        self.orders
            .range((interval, *member, 0)..=(interval, *member, u64::MAX))
            .map(|((_, _, n), o)| (*n, o))
    }

    /// The book of `interval` in canonical order.
    pub fn book(&self, interval: u64) -> Vec<BookEntry> {
        self.orders
            .range((interval, [0; 32], 0)..=(interval, [0xff; 32], u64::MAX))
            .map(|((_, m, n), o)| (*m, *n, *o))
            .collect()
    }

    /// Wh that `member`'s registered meters serving `source` can deliver in one interval.
    pub fn offer_capacity_wh(
        &self,
        params: &MarketParams,
        member: &PublicKey,
        source: OfferSource,
    ) -> u64 {
        self.capacities
            .range((*member, [0; 32])..=(*member, [0xff; 32]))
            .filter(|(_, (device, _))| source.served_by(*device))
            .map(|(_, (_, w))| params.capacity_wh(*w))
            .fold(0u64, u64::saturating_add)
    }

    /// `SHA-256("SCG-LEDGER/MARKET/v1" || canonical bytes of every field)`; the state root
    /// includes it once the market is open (see `state::StateCommitment`).
    pub fn root(&self) -> Hash {
        let mut w = Writer::with_capacity(256);
        match &self.params {
            None => w.u8(0),
            Some(p) => {
                w.u8(1);
                p.encode(&mut w);
            }
        }
        w.u64(self.capacities.len() as u64);
        for ((member, meter), (device, cap)) in &self.capacities {
            w.bytes(member);
            w.bytes(meter);
            w.u8(*device as u8);
            w.u64(*cap);
        }
        w.u64(self.tariffs.len() as u64);
        for (interval, t) in &self.tariffs {
            w.u64(*interval);
            w.u64(t.retail_milli_eur_per_mwh as u64);
            w.u64(t.feed_in_milli_eur_per_mwh as u64);
            w.u8(u8::from(t.peak));
        }
        w.u64(self.orders.len() as u64);
        for ((_, member, nonce), o) in &self.orders {
            w.bytes(member);
            w.u64(*nonce);
            o.encode(&mut w);
        }
        w.u64(self.cleared.len() as u64);
        for (interval, g) in &self.cleared {
            w.u64(*interval);
            w.u64(g.height);
            w.u32(g.orders);
            w.u32(g.unfunded_bids);
            w.u32(g.trades);
            w.u64(g.volume_wh);
        }
        w.u64(self.trades_by_seller.len() as u64);
        for ((seller, interval), ids) in &self.trades_by_seller {
            w.bytes(seller);
            w.u64(*interval);
            w.u32(ids.len() as u32);
            for id in ids {
                w.u128(*id);
            }
        }
        sha256(&[b"SCG-LEDGER/MARKET/v1", &w.buf])
    }
}
