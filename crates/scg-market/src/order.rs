//! Orders: bids (to buy) and offers (to sell) of one prosumer for one market interval.

use crate::{MarketError, Price};
use scg_units::Wh;
use serde::{Deserialize, Serialize};

/// The name of the main grid when it is a counterpart; no order or prosumer may use it.
pub const GRID_ID: &str = "grid";

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// A bid: the prosumer wants to buy.
    Bid,
    /// An offer: the prosumer wants to sell.
    Offer,
}

/// Where the energy of an offer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Photovoltaic generation.
    Pv,
    /// Wind generation.
    Wind,
    /// Energy given back by an electric vehicle.
    V2g,
    /// A stationary battery.
    Battery,
    /// The main grid (only the grid counterpart uses it).
    Grid,
}

impl Source {
    /// Whether a buyer asking for renewable-only energy accepts this source. Storage (V2G,
    /// battery) is not counted as renewable: its charge may have come from the grid, and the
    /// market cannot see that.
    pub fn is_renewable(self) -> bool {
        matches!(self, Source::Pv | Source::Wind)
    }

    /// The lowercase name used in files (`pv`, `wind`, `v2g`, `battery`, `grid`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Pv => "pv",
            Source::Wind => "wind",
            Source::V2g => "v2g",
            Source::Battery => "battery",
            Source::Grid => "grid",
        }
    }
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pv" | "solar" => Ok(Source::Pv),
            "wind" => Ok(Source::Wind),
            "v2g" => Ok(Source::V2g),
            "battery" => Ok(Source::Battery),
            other => Err(format!(
                "unknown source {other:?}: expected pv, wind, v2g, battery or empty"
            )),
        }
    }
}

/// A bid or an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Unique within its interval; part of every trade id it takes part in.
    pub id: String,
    pub side: Side,
    /// The prosumer who buys or sells.
    pub prosumer: String,
    /// The market interval (a simulation step index or a period number).
    pub interval: u32,
    /// Energy to buy or sell, > 0.
    pub energy_wh: Wh,
    /// Limit price: the most a bid pays *including the grid fee*, the least an offer receives.
    pub price: Price,
    /// Origin of an offer's energy (offers only).
    pub source: Option<Source>,
    /// The device the energy comes from (offers only; for origin certificates).
    pub device: Option<String>,
    /// A bid that accepts only renewable offers (PV, wind).
    pub renewable_only: bool,
}

impl Order {
    /// A bid with no origin preference.
    pub fn bid(id: &str, prosumer: &str, interval: u32, energy_wh: i64, price: Price) -> Self {
        Self {
            id: id.to_owned(),
            side: Side::Bid,
            prosumer: prosumer.to_owned(),
            interval,
            energy_wh: Wh(energy_wh),
            price,
            source: None,
            device: None,
            renewable_only: false,
        }
    }

    /// An offer with an optional source.
    pub fn offer(
        id: &str,
        prosumer: &str,
        interval: u32,
        energy_wh: i64,
        price: Price,
        source: Option<Source>,
    ) -> Self {
        Self {
            id: id.to_owned(),
            side: Side::Offer,
            prosumer: prosumer.to_owned(),
            interval,
            energy_wh: Wh(energy_wh),
            price,
            source,
            device: None,
            renewable_only: false,
        }
    }

    /// Whether this offer satisfies a renewable-only bid.
    pub(crate) fn is_renewable_offer(&self) -> bool {
        self.source.is_some_and(Source::is_renewable)
    }
}

/// The first member (in book order) whose own bid and offer cross in one interval: its highest
/// bid is at or above its lowest offer, so clearing could match the member with itself.
fn check_self_trades(orders: &[Order]) -> Result<(), MarketError> {
    if orders.len() <= SMALL_BOOK {
        check_self_trades_small(orders)
    } else {
        check_self_trades_map(orders)
    }
}

/// [`check_self_trades`] with a map of every member's best bid and offer per interval.
fn check_self_trades_map(orders: &[Order]) -> Result<(), MarketError> {
    type Best<'a> = (Option<(Price, &'a str)>, Option<(Price, &'a str)>);
    let mut best: std::collections::HashMap<(u32, &str), Best<'_>> =
        std::collections::HashMap::with_capacity(orders.len());
    for o in orders {
        let (bid, offer) = best.entry((o.interval, o.prosumer.as_str())).or_default();
        match o.side {
            Side::Bid if bid.is_none_or(|(p, _)| o.price > p) => *bid = Some((o.price, &o.id)),
            Side::Offer if offer.is_none_or(|(p, _)| o.price < p) => {
                *offer = Some((o.price, &o.id));
            }
            _ => {}
        }
    }
    for o in orders {
        if let Some((Some((bid_price, bid)), Some((offer_price, offer)))) =
            best.get(&(o.interval, o.prosumer.as_str()))
            && bid_price >= offer_price
        {
            return Err(MarketError::SelfTrade {
                prosumer: o.prosumer.clone(),
                interval: o.interval,
                bid: (*bid).to_owned(),
                offer: (*offer).to_owned(),
            });
        }
    }
    Ok(())
}

/// Books up to this many orders are checked pair by pair (no hashing, no allocation).
const SMALL_BOOK: usize = 32;

/// [`check_self_trades`] of a small book, by scanning: the same first member in book order and
/// the same two orders (its highest bid and lowest offer, the first of equal prices), without
/// a map.
fn check_self_trades_small(orders: &[Order]) -> Result<(), MarketError> {
    let same = |a: &Order, b: &Order| a.interval == b.interval && a.prosumer == b.prosumer;
    // The best order of `side` for `o`'s member and interval: the highest bid or the lowest
    // offer, the earliest of equal prices (as the map keeps them).
    let best = |o: &Order, side: Side| {
        let better = |p: Price, q: Price| match side {
            Side::Bid => p > q,
            Side::Offer => p < q,
        };
        orders.iter().filter(|x| x.side == side && same(x, o)).fold(
            None::<&Order>,
            |b, x| match b {
                Some(b) if !better(x.price, b.price) => Some(b),
                _ => Some(x),
            },
        )
    };
    for o in orders {
        if let (Some(bid), Some(offer)) = (best(o, Side::Bid), best(o, Side::Offer))
            && bid.price >= offer.price
        {
            return Err(MarketError::SelfTrade {
                prosumer: o.prosumer.clone(),
                interval: o.interval,
                bid: bid.id.clone(),
                offer: offer.id.clone(),
            });
        }
    }
    Ok(())
}

/// FNV-1a of an order's interval and id (only used to find duplicates; equal hashes are
/// confirmed on the strings).
fn order_key_hash(interval: u32, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in interval.to_le_bytes().iter().chain(id.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Check a book: positive energies, ids unique per interval, nobody named `grid`, origin fields
/// only where they mean something, and no self-trade. Returns the first problem, naming the
/// order.
///
/// A self-trade is a member whose own bid and offer cross in one interval (highest bid at or
/// above lowest offer), so that clearing could match the member with itself. Such a book is
/// refused, not cleared with the pair skipped: the crossing pair is one net position written
/// twice; matching it would move the member's energy to itself while paying the grid fee and
/// inflating the traded volume (a wash trade), and skipping it would still let the pair set
/// the clearing price for everyone else. The error names both orders. A member may still bid
/// and offer in one interval at prices that do not cross (they can never meet).
pub fn validate_orders(orders: &[Order]) -> Result<(), MarketError> {
    check_fields(orders)?;
    check_self_trades(orders)?;
    check_duplicates(orders)
}

/// Every order on its own: a name, energy > 0, origin fields where they mean something.
fn check_fields(orders: &[Order]) -> Result<(), MarketError> {
    for o in orders {
        let bad = |message: String| MarketError::InvalidOrder {
            id: o.id.clone(),
            message,
        };
        if o.id.is_empty() {
            return Err(bad("empty order id".into()));
        }
        if o.id == GRID_ID || o.prosumer == GRID_ID {
            return Err(bad(format!(
                "{GRID_ID:?} is reserved for the main grid counterpart"
            )));
        }
        if o.prosumer.is_empty() {
            return Err(bad("empty prosumer".into()));
        }
        if o.energy_wh.0 <= 0 {
            return Err(bad(format!("energy_wh must be > 0, got {}", o.energy_wh.0)));
        }
        if o.side == Side::Bid && (o.source.is_some() || o.device.is_some()) {
            return Err(bad(
                "source/device are attributes of offers, not bids".into()
            ));
        }
        if o.side == Side::Offer && o.renewable_only {
            return Err(bad("renewable_only applies to bids, not offers".into()));
        }
        if o.source == Some(Source::Grid) {
            return Err(bad(
                "source \"grid\" is reserved for the grid counterpart".into()
            ));
        }
    }
    Ok(())
}

/// Ids unique per interval.
fn check_duplicates(orders: &[Order]) -> Result<(), MarketError> {
    // A small book (a community step's) is checked pair by pair without allocating; a
    // duplicate found there is reported by the general path below, so the error is the same.
    if orders.len() <= SMALL_BOOK
        && !orders.iter().enumerate().any(|(i, x)| {
            orders[i + 1..]
                .iter()
                .any(|y| x.interval == y.interval && x.id == y.id)
        })
    {
        return Ok(());
    }
    // Duplicate ids per interval: sort 64-bit hashes of (interval, id) and compare the strings
    // only inside runs of equal hashes. Sorting the strings themselves spent most of a
    // 100,000-order clearing in memcmp.
    let mut keys: Vec<(u64, usize)> = orders
        .iter()
        .enumerate()
        .map(|(i, o)| (order_key_hash(o.interval, &o.id), i))
        .collect();
    keys.sort_unstable();
    for run in keys.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
        for (k, &(_, a)) in run.iter().enumerate() {
            for &(_, b) in &run[k + 1..] {
                let (x, y) = (&orders[a], &orders[b]);
                if x.interval == y.interval && x.id == y.id {
                    return Err(MarketError::DuplicateOrder {
                        id: x.id.clone(),
                        interval: x.interval,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn book() -> impl Strategy<Value = Vec<Order>> {
        // Few members, intervals and prices, so that crossings and ties are common.
        let order = (0u8..4, any::<bool>(), 0u32..2, 0i64..4, 1i64..50);
        proptest::collection::vec(order, 0..=SMALL_BOOK).prop_map(|orders| {
            orders
                .into_iter()
                .enumerate()
                .map(|(k, (member, bid, interval, price, wh))| {
                    let (id, who) = (format!("o{k}"), format!("m{member}"));
                    let price = Price(price * 1000);
                    if bid {
                        Order::bid(&id, &who, interval, wh, price)
                    } else {
                        Order::offer(&id, &who, interval, wh, price, None)
                    }
                })
                .collect()
        })
    }

    proptest! {
        /// The small books' scan finds the member, interval and orders the map finds.
        #[test]
        fn small_self_trade_scan_equals_the_map(orders in book()) {
            prop_assert_eq!(
                format!("{:?}", check_self_trades_small(&orders)),
                format!("{:?}", check_self_trades_map(&orders))
            );
        }
    }
}
