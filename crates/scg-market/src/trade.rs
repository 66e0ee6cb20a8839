//! Trades: immutable records with stable ids, ready to become ledger transactions.

use crate::{NanoEur, Price, Source};
use scg_units::Wh;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Who the counterparts of a trade are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeKind {
    /// Between two prosumers.
    P2p,
    /// The main grid sells to a prosumer (at the retail price, no P2P fee).
    FromGrid,
    /// A prosumer sells to the main grid (at the feed-in price, no P2P fee).
    ToGrid,
}

/// One trade. Fields are private so that a record cannot be altered after clearing; read them
/// through the accessors. Its id is a function of its interval, bid and offer ([`trade_id`]),
/// computed when asked for (the simulation never reads it) and checked when a trade is read
/// back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "TradeRecord", try_from = "TradeRecord")]
pub struct Trade {
    interval: u32,
    kind: TradeKind,
    // Shared with the book's orders (and every other trade of the same order): a city's
    // interval makes thousands of trades, and owned copies of each name per trade were most
    // of the clearing time (allocation). The buyer and the seller are kept only when they are
    // not named as their order (a community member's order is named after it; the grid's
    // side is `grid` on both): `None` means the order's name, one shared name less to count.
    bid: Arc<str>,
    offer: Arc<str>,
    buyer: Option<Arc<str>>,
    seller: Option<Arc<str>>,
    energy_wh: Wh,
    price: Price,
    fee: Price,
    source: Option<Source>,
}

/// A trade as it is written and read: every name and its id spelled out.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Trade")]
struct TradeRecord {
    id: TradeId,
    interval: u32,
    kind: TradeKind,
    bid: Arc<str>,
    offer: Arc<str>,
    buyer: Arc<str>,
    seller: Arc<str>,
    energy_wh: Wh,
    price: Price,
    fee: Price,
    source: Option<Source>,
}

impl From<Trade> for TradeRecord {
    fn from(t: Trade) -> Self {
        Self {
            id: t.id(),
            interval: t.interval,
            kind: t.kind,
            buyer: t.buyer.unwrap_or_else(|| Arc::clone(&t.bid)),
            seller: t.seller.unwrap_or_else(|| Arc::clone(&t.offer)),
            bid: t.bid,
            offer: t.offer,
            energy_wh: t.energy_wh,
            price: t.price,
            fee: t.fee,
            source: t.source,
        }
    }
}

impl TryFrom<TradeRecord> for Trade {
    type Error = String;
    fn try_from(r: TradeRecord) -> Result<Self, String> {
        let t = Trade::new(
            IntervalIds::new(r.interval),
            r.kind,
            &r.bid,
            &r.offer,
            &r.buyer,
            &r.seller,
            r.energy_wh,
            r.price,
            r.fee,
            r.source,
        );
        if t.id() != r.id {
            return Err(format!(
                "trade id {} does not match its interval {}, bid {:?} and offer {:?} (expected {})",
                r.id,
                r.interval,
                &*r.bid,
                &*r.offer,
                t.id()
            ));
        }
        Ok(t)
    }
}

/// `name` unless it is `order`'s own name.
fn unless_named_as(name: &Arc<str>, order: &Arc<str>) -> Option<Arc<str>> {
    (!Arc::ptr_eq(name, order) && **name != **order).then(|| Arc::clone(name))
}

impl Trade {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        at: IntervalIds,
        kind: TradeKind,
        bid: &Arc<str>,
        offer: &Arc<str>,
        buyer: &Arc<str>,
        seller: &Arc<str>,
        energy_wh: Wh,
        price: Price,
        fee: Price,
        source: Option<Source>,
    ) -> Self {
        Self {
            interval: at.interval,
            kind,
            bid: Arc::clone(bid),
            offer: Arc::clone(offer),
            buyer: unless_named_as(buyer, bid),
            seller: unless_named_as(seller, offer),
            energy_wh,
            price,
            fee,
            source,
        }
    }

    /// The stable id: see [`trade_id`].
    pub fn id(&self) -> TradeId {
        IntervalIds::new(self.interval).id(&self.bid, &self.offer)
    }
    pub fn interval(&self) -> u32 {
        self.interval
    }
    pub fn kind(&self) -> TradeKind {
        self.kind
    }
    /// The bid's order id (`grid` when the grid buys).
    pub fn bid(&self) -> &str {
        &self.bid
    }
    /// The offer's order id (`grid` when the grid sells).
    pub fn offer(&self) -> &str {
        &self.offer
    }
    pub fn buyer(&self) -> &str {
        self.buyer.as_deref().unwrap_or(&self.bid)
    }
    pub fn seller(&self) -> &str {
        self.seller.as_deref().unwrap_or(&self.offer)
    }
    pub fn energy_wh(&self) -> Wh {
        self.energy_wh
    }
    /// The seller's price per MWh (what the seller receives).
    pub fn price(&self) -> Price {
        self.price
    }
    /// The grid fee per MWh the buyer pays on top.
    pub fn fee(&self) -> Price {
        self.fee
    }
    /// What the buyer pays per MWh (price + fee).
    pub fn buyer_price(&self) -> Price {
        self.price + self.fee
    }
    /// Origin of the energy, when the offer declared it.
    pub fn source(&self) -> Option<Source> {
        self.source
    }
    /// Money the seller receives (exact).
    pub fn seller_receives(&self) -> NanoEur {
        money(self.price, self.fee, self.energy_wh).0
    }
    /// Grid fee money (exact), collected by the grid operator.
    pub fn fee_paid(&self) -> NanoEur {
        money(self.price, self.fee, self.energy_wh).1
    }
    /// Money the buyer pays (exact) = seller receives + fee.
    pub fn buyer_pays(&self) -> NanoEur {
        let (seller, fee) = money(self.price, self.fee, self.energy_wh);
        seller + fee
    }
}

/// The money of `energy` traded at the seller's `price` with the grid `fee` on top, exact:
/// (what the seller receives, the fee). The one rule of a [`Trade`]'s money and of a
/// [`crate::Fill`]'s.
pub(crate) fn money(price: Price, fee: Price, energy: Wh) -> (NanoEur, NanoEur) {
    (price.value_of(energy), fee.value_of(energy))
}

/// The stable id of the trade between `bid` and `offer` in `interval`: the 64-bit FNV-1a hash
/// of `"scg-trade-v1" 0x1F interval 0x1F bid 0x1F offer` as 16 lowercase hex digits. Order ids
/// are unique per interval and a pair of orders trades at most once per interval in every
/// mechanism, so the id is unique; it does not depend on clearing order, platform or run.
pub fn trade_id(interval: u32, bid: &str, offer: &str) -> String {
    IntervalIds::new(interval)
        .id(bid, offer)
        .as_str()
        .to_owned()
}

/// The trade ids of one interval: [`trade_id`]'s hash fed its fixed prefix and the interval
/// once, so that each trade hashes only its two order ids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntervalIds {
    interval: u32,
    /// FNV-1a state after `"scg-trade-v1" 0x1F interval 0x1F`.
    state: u64,
}

impl IntervalIds {
    pub(crate) fn new(interval: u32) -> Self {
        // Decimal digits of the interval without allocating.
        let mut digits = [0u8; 10];
        let mut n = interval;
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let state = fnv1a(fnv1a(ID_PREFIX_STATE, &digits[start..]), &[0x1f]);
        Self { interval, state }
    }

    /// The id of the trade between orders `bid` and `offer` of this interval.
    fn id(&self, bid: &str, offer: &str) -> TradeId {
        let h = fnv1a(
            fnv1a(fnv1a(self.state, bid.as_bytes()), &[0x1f]),
            offer.as_bytes(),
        );
        // 16 lowercase hex digits, written directly (the formatting machinery was a visible
        // share of a large clearing).
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 16];
        for (k, d) in hex.iter_mut().enumerate() {
            *d = HEX[((h >> ((15 - k) * 4)) & 0xf) as usize];
        }
        TradeId(hex)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`, continuing from `state`.
const fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        state ^= bytes[i] as u64;
        state = state.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    state
}

/// [`trade_id`]'s hash after its fixed prefix `"scg-trade-v1" 0x1F`, computed at compile time.
const ID_PREFIX_STATE: u64 = fnv1a(fnv1a(FNV_OFFSET, b"scg-trade-v1"), &[0x1f]);

/// A trade's id ([`trade_id`]) inline: its 16 lowercase hex digits, no allocation.
/// (De)serialised and displayed as the string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TradeId([u8; 16]);

impl TradeId {
    /// The 16 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits: built by `trade_id_digits` or checked when deserialised.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Display for TradeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for TradeId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Debug for TradeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for TradeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TradeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits: [u8; 16] = text
            .as_bytes()
            .try_into()
            .ok()
            .filter(|d: &[u8; 16]| d.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "a trade id is 16 lowercase hex digits, got {:?}",
                    text.chars().take(40).collect::<String>()
                ))
            })?;
        Ok(Self(digits))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vector() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (Fowler/Noll/Vo test vectors).
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        // Fed in pieces, the hash is the hash of the whole.
        assert_eq!(
            fnv1a(fnv1a(FNV_OFFSET, b"scg-"), b"trade"),
            fnv1a(FNV_OFFSET, b"scg-trade")
        );
    }

    #[test]
    fn a_trade_serialises_its_id_as_the_string_and_reads_it_back() {
        let name = |s: &str| Arc::<str>::from(s);
        let (b, o) = (name("bid-1"), name("offer-9"));
        let t = Trade::new(
            IntervalIds::new(4321),
            TradeKind::P2p,
            &b,
            &o,
            &name("flat"),
            &name("pv"),
            Wh(1500),
            Price(120_000),
            Price(0),
            Some(Source::Pv),
        );
        assert_eq!(t.id(), "a728dc8c81165579");
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains(r#""id":"a728dc8c81165579""#), "{json}");
        assert_eq!(serde_json::from_str::<Trade>(&json).unwrap(), t);
        for bad in [
            "A728DC8C81165579",
            "a728dc8c8116557",
            "a728dc8c81165579x",
            "zz28dc8c81165579",
        ] {
            let text = json.replace("a728dc8c81165579", bad);
            let err = serde_json::from_str::<Trade>(&text)
                .unwrap_err()
                .to_string();
            assert!(err.contains("16 lowercase hex digits"), "{bad}: {err}");
        }
        // Well formed but not the trade's own id.
        let text = json.replace("a728dc8c81165579", "a728dc8c81165578");
        let err = serde_json::from_str::<Trade>(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match"), "{err}");
        // The buyer and seller are written out even when named as their order.
        let u = Trade::new(
            IntervalIds::new(1),
            TradeKind::P2p,
            &b,
            &o,
            &b,
            &o,
            Wh(1),
            Price(0),
            Price(0),
            None,
        );
        let json = serde_json::to_string(&u).unwrap();
        assert!(
            json.contains(r#""buyer":"bid-1","seller":"offer-9""#),
            "{json}"
        );
        assert_eq!((u.buyer(), u.seller()), ("bid-1", "offer-9"));
        assert_eq!(serde_json::from_str::<Trade>(&json).unwrap(), u);
    }

    #[test]
    fn ids_are_stable_and_distinguish_fields() {
        let a = trade_id(7, "b1", "o1");
        assert_eq!(a, trade_id(7, "b1", "o1"));
        assert_eq!(a.len(), 16);
        assert_ne!(a, trade_id(8, "b1", "o1"));
        assert_ne!(a, trade_id(7, "o1", "b1"));
        // The separator keeps "b1"+"1o" apart from "b11"+"o".
        assert_ne!(trade_id(7, "b1", "1o"), trade_id(7, "b11", "o"));
        // Pinned value: the id is part of the ledger format and must never change.
        // (Computed independently: FNV-1a 64 of "scg-trade-v1\x1f4321\x1fbid-1\x1foffer-9".)
        assert_eq!(trade_id(4321, "bid-1", "offer-9"), "a728dc8c81165579");
        assert_ne!(trade_id(10, "b", "o"), trade_id(1, "b", "o"));
    }
}
