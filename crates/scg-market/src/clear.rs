//! Clearing one book of orders per interval, with the main grid as fallback counterpart.
//!
//! Per interval, in this order:
//! 1. **Grid at peak** (`grid.peak` and a feed-in price given): every offer whose limit is at
//!    most the feed-in price is sold to the grid first, in input order (the seed paper's rule:
//!    at peak, community surplus goes to the grid first).
//! 2. **P2P**, by the selected [`Mechanism`] on what is left. Bids are compared on their *net
//!    limit* (the highest seller price they can afford after the grid fee, [`GridFee::net_limit`]).
//!    - **Pay-as-clear** (two-sided, uniform price): bids sorted by net limit descending, offers
//!      by price ascending; ties go to the order that came first in the input (time
//!      priority). Identical prices are aggregated into levels first (`Book::by_level`: one
//!      pass per level when there are at most `MAX_LEVELS` prices, as a city's agents make);
//!      within the marginal level the earliest orders fill first (time priority, not pro
//!      rata), so the result is the order-by-order auction's, trade for trade. Matching walks
//!      both lists while the best remaining bid's net limit is at least the best remaining
//!      offer's price; this traded volume is the maximum any single price
//!      can clear. The clearing interval is `[lo, hi]` = [price of the last (highest) accepted
//!      offer, net limit of the last (lowest) accepted bid] — exactly the set of prices at which
//!      that maximum volume is supplied and demanded — and the **price is its midpoint rounded
//!      down** to the milli-euro/MWh (Power TAC's "midway between the last cleared ask and bid").
//!      Renewable-only bids form their own product: a first uniform auction clears them against
//!      renewable offers (the *green price*), then every other bid clears against all remaining
//!      offers (the main price).
//!    - **Pay-as-bid** (two-sided, continuous): orders arrive in input order; an arriving order
//!      matches the best resting orders of the other side (best price, then earliest); the
//!      seller receives the *bid's* net limit, so the buyer pays (up to fee rounding) its bid.
//!    - **Pay-as-offer** (one-sided): all offers rest; bids, in input order, take the cheapest
//!      acceptable offers; the seller receives its offer price, the buyer pays it plus the fee.
//! 3. **Grid fallback**: a bid's remainder buys from the grid at the retail price if its limit
//!    allows; an offer's remainder sells to the grid at the feed-in price if its limit allows.
//!    Grid trades carry no P2P fee (the retail tariff already includes network charges) and are
//!    not counted in the P2P volume. A renewable-only bid may still be served by the grid: the
//!    grid is the supplier of last resort, and its trades say `source = grid`.
//!
//! Guarantees (tested as properties): a seller never receives less than its limit; a buyer
//! never pays more than its limit, fee included; per interval, energy bought equals energy
//! sold and money paid equals money received plus fees, exactly, in integers.

use crate::trade::IntervalIds;
use crate::{GRID_ID, GridFee, MarketError, NanoEur, Order, Price, Side, Source, Trade, TradeKind};
use scg_units::Wh;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The P2P matching rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// Two-sided, one uniform price per interval.
    #[default]
    PayAsClear,
    /// Two-sided, continuous; trades at the bid's price.
    PayAsBid,
    /// One-sided; trades at the offer's price.
    PayAsOffer,
}

impl std::str::FromStr for Mechanism {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pay-as-clear" => Ok(Mechanism::PayAsClear),
            "pay-as-bid" => Ok(Mechanism::PayAsBid),
            "pay-as-offer" => Ok(Mechanism::PayAsOffer),
            other => Err(format!(
                "unknown mechanism {other:?}: expected pay-as-clear, pay-as-bid or pay-as-offer"
            )),
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mechanism::PayAsClear => "pay-as-clear",
            Mechanism::PayAsBid => "pay-as-bid",
            Mechanism::PayAsOffer => "pay-as-offer",
        })
    }
}

/// The main grid as a counterpart (all `None` = no grid: only the orders given trade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GridCounterpart {
    /// The price at which the grid sells to the community (retail), if it does.
    pub sells_at: Option<Price>,
    /// The price at which the grid buys from the community (feed-in), if it does.
    pub buys_at: Option<Price>,
    /// The grid is at peak: surplus goes to the grid first.
    pub peak: bool,
}

/// How to clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClearingConfig {
    pub mechanism: Mechanism,
    pub fee: GridFee,
    pub grid: GridCounterpart,
}

/// The result of one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalOutcome {
    pub interval: u32,
    /// Pay-as-clear: the uniform seller price of the main auction. Other mechanisms: the
    /// energy-weighted average seller price of P2P trades, rounded down. `None` without P2P
    /// trades (or, for pay-as-clear, when only the green auction traded).
    pub price: Option<Price>,
    /// Pay-as-clear only: the uniform price of the renewable-only auction.
    pub green_price: Option<Price>,
    /// Pay-as-clear only: the main auction's clearing interval `[lo, hi]`.
    pub clearing_range: Option<(Price, Price)>,
    /// P2P energy traded (grid trades excluded).
    pub volume_wh: Wh,
    /// Energy the community bought from the grid.
    pub grid_import_wh: Wh,
    /// Energy the community sold to the grid.
    pub grid_export_wh: Wh,
    /// Grid fees collected on P2P trades.
    pub fees: NanoEur,
    /// All trades, in clearing order.
    pub trades: Vec<Trade>,
}

/// The result of clearing a book: one entry per interval that had orders, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MarketOutcome {
    pub intervals: Vec<IntervalOutcome>,
}

impl MarketOutcome {
    /// Every trade of every interval.
    pub fn trades(&self) -> impl Iterator<Item = &Trade> {
        self.intervals.iter().flat_map(|i| i.trades.iter())
    }
}

/// Validate and clear a book of orders (any number of intervals).
pub fn clear(orders: &[Order], config: &ClearingConfig) -> Result<MarketOutcome, MarketError> {
    crate::validate_orders(orders)?;
    validate_config(config)?;
    let names = Names::of(orders);
    let mut book = Book::new(orders, &names, config.fee, BookBuffers::default());
    // One interval: every order, in input order, without the map.
    if let Some(first) = orders.first()
        && orders.iter().all(|o| o.interval == first.interval)
    {
        let idx: Vec<usize> = (0..orders.len()).collect();
        return Ok(MarketOutcome {
            intervals: vec![book.clear_interval_trades(first.interval, &idx, config)],
        });
    }
    let mut by_interval: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, o) in orders.iter().enumerate() {
        by_interval.entry(o.interval).or_default().push(i);
    }
    let intervals = by_interval
        .into_iter()
        .map(|(interval, idx)| book.clear_interval_trades(interval, &idx, config))
        .collect();
    Ok(MarketOutcome { intervals })
}

/// Clear the orders `active` (ascending indices into `orders`, all for `interval`) of a book
/// the caller built and checked itself (the community step's: one order per member, made by
/// scg-market from valid names and amounts; see `CommunityClearing`), reusing `buffers`.
/// Returns the outcome without its trades: they are left as [`Fill`]s in `buffers.fills`, in
/// clearing order ([`trades_of`] makes them into trades).
pub(crate) fn clear_checked_interval(
    book: CheckedBook<'_>,
    config: &ClearingConfig,
    buffers: &mut BookBuffers,
) -> Result<IntervalOutcome, MarketError> {
    validate_config(config)?;
    debug_assert!(book.active.iter().all(|&i| {
        let o = &book.orders[i];
        o.interval == book.interval && o.energy_wh.0 > 0
    }));
    let mut cleared = Book::new(book.orders, book.names, config.fee, std::mem::take(buffers));
    let out = cleared.clear_interval(book.interval, book.active, config);
    *buffers = cleared.into_buffers();
    Ok(out)
}

/// A book [`clear_checked_interval`] clears: `orders` named by `names`, of which `active`
/// trade in `interval`.
pub(crate) struct CheckedBook<'a> {
    pub(crate) orders: &'a [Order],
    pub(crate) names: &'a Names,
    pub(crate) active: &'a [usize],
    pub(crate) interval: u32,
}

fn validate_config(config: &ClearingConfig) -> Result<(), MarketError> {
    if let GridFee::Constant(c) = config.fee
        && c.0 < 0
    {
        return Err(MarketError::InvalidInput {
            field: "grid fee".into(),
            message: format!("a constant fee must be >= 0, got {c}"),
        });
    }
    if config.grid.peak && config.grid.buys_at.is_none() {
        return Err(MarketError::InvalidInput {
            field: "grid.peak".into(),
            message: "the grid is at peak but no feed-in price (grid buys_at) was given".into(),
        });
    }
    Ok(())
}

/// One trade as the clearing makes it: its bid's and offer's order indices, not their names.
/// The community step maps fills to its members by index, never by name; [`Trade`]s, with
/// their shared names, are made from fills only when asked ([`trades_of`]): a city's year
/// clears hundreds of millions of them, and making and dropping each trade's names was a
/// large share of its clearing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    kind: TradeKind,
    /// Order indices, [`GRID_ORDER`] for the grid's side.
    bid: usize,
    offer: usize,
    energy_wh: Wh,
    price: Price,
    fee: Price,
}

/// The order index of the grid's side of a [`Fill`].
pub(crate) const GRID_ORDER: usize = usize::MAX;

impl Fill {
    pub fn kind(&self) -> TradeKind {
        self.kind
    }
    /// The bid's order index; `None` when the grid buys.
    pub fn bid_order(&self) -> Option<usize> {
        (self.bid != GRID_ORDER).then_some(self.bid)
    }
    /// The offer's order index; `None` when the grid sells.
    pub fn offer_order(&self) -> Option<usize> {
        (self.offer != GRID_ORDER).then_some(self.offer)
    }
    pub fn energy_wh(&self) -> Wh {
        self.energy_wh
    }
    /// The seller's price per MWh.
    pub fn price(&self) -> Price {
        self.price
    }
    /// The grid fee per MWh the buyer pays on top.
    pub fn fee(&self) -> Price {
        self.fee
    }
    /// Money the seller receives, the fee, and what the buyer pays (their sum), exact: the
    /// rule of [`Trade::seller_receives`], [`Trade::fee_paid`] and [`Trade::buyer_pays`].
    pub fn money(&self) -> (NanoEur, NanoEur, NanoEur) {
        let (seller, fee) = crate::trade::money(self.price, self.fee, self.energy_wh);
        (seller, fee, seller + fee)
    }
    /// Money the seller receives (exact).
    pub fn seller_receives(&self) -> NanoEur {
        self.money().0
    }
    /// Grid fee money (exact).
    pub fn fee_paid(&self) -> NanoEur {
        self.money().1
    }
    /// Money the buyer pays (exact) = seller receives + fee.
    pub fn buyer_pays(&self) -> NanoEur {
        self.money().2
    }
}

/// The trades of `fills` of `interval`, whose order indices are into `orders` named by `names`:
/// the grid's side is named `grid`, a grid sale's source is the grid, any other trade's is its
/// offer's.
pub(crate) fn trades_of(
    orders: &[Order],
    names: &Names,
    interval: u32,
    fills: &[Fill],
) -> impl Iterator<Item = Trade> {
    let at = IntervalIds::new(interval);
    let side = move |order: usize| {
        if order == GRID_ORDER {
            (&names.grid, &names.grid)
        } else {
            (&names.ids[order], &names.prosumers[order])
        }
    };
    fills.iter().map(move |f| {
        let ((bid, buyer), (offer, seller)) = (side(f.bid), side(f.offer));
        let source = match f.kind {
            TradeKind::FromGrid => Some(Source::Grid),
            TradeKind::P2p | TradeKind::ToGrid => orders[f.offer].source,
        };
        Trade::new(
            at,
            f.kind,
            bid,
            offer,
            buyer,
            seller,
            f.energy_wh,
            f.price,
            f.fee,
            source,
        )
    })
}

/// Distinct prices per side up to which pay-as-clear matches level by level (one pass over the
/// orders per level) instead of sorting every order.
const MAX_LEVELS: usize = 16;

/// Order ids and prosumers as shared names (every trade of an order holds the same one), and
/// the grid's.
pub(crate) struct Names {
    ids: Vec<Arc<str>>,
    prosumers: Vec<Arc<str>>,
    grid: Arc<str>,
}

impl Names {
    pub(crate) fn of(orders: &[Order]) -> Self {
        let ids: Vec<Arc<str>> = orders.iter().map(|o| Arc::from(o.id.as_str())).collect();
        // An order named after its prosumer (the community step's) shares the one name.
        let prosumers = orders
            .iter()
            .zip(&ids)
            .map(|(o, id)| {
                if o.prosumer == o.id {
                    Arc::clone(id)
                } else {
                    Arc::from(o.prosumer.as_str())
                }
            })
            .collect();
        Self {
            ids,
            prosumers,
            grid: Arc::from(GRID_ID),
        }
    }
}

/// What a [`Book`] allocates, kept between books so that a caller clearing one interval
/// after another (the community step) allocates nothing once they have grown.
#[derive(Default)]
pub(crate) struct BookBuffers {
    rem: Vec<i64>,
    key: Vec<Price>,
    auction: Auction,
    /// The last interval's fills, in clearing order (cleared when the next book starts).
    pub(crate) fills: Vec<Fill>,
}

/// Scratch of one uniform auction: order indices per side, in level order, price levels and
/// fills.
#[derive(Default)]
struct Auction {
    bids: Vec<usize>,
    green_bids: Vec<usize>,
    offers: Vec<usize>,
    ranked_bids: Vec<usize>,
    ranked_offers: Vec<usize>,
    levels: Vec<Price>,
    fills: Vec<(usize, usize, i64)>,
}

/// Working state over the whole order slice; intervals use disjoint index sets.
struct Book<'a> {
    orders: &'a [Order],
    names: &'a Names,
    fee: GridFee,
    /// Remaining energy per order.
    rem: Vec<i64>,
    /// Net limit (bids) or limit (offers), the key every mechanism compares.
    key: Vec<Price>,
    auction: Auction,
    /// The interval's fills, in clearing order.
    fills: Vec<Fill>,
}

impl<'a> Book<'a> {
    fn new(orders: &'a [Order], names: &'a Names, fee: GridFee, buffers: BookBuffers) -> Self {
        let BookBuffers {
            mut rem,
            mut key,
            auction,
            mut fills,
        } = buffers;
        rem.clear();
        rem.extend(orders.iter().map(|o| o.energy_wh.0));
        key.clear();
        key.extend(orders.iter().map(|o| match o.side {
            Side::Bid => fee.net_limit(o.price),
            Side::Offer => o.price,
        }));
        fills.clear();
        Self {
            orders,
            names,
            fee,
            rem,
            key,
            auction,
            fills,
        }
    }

    /// The buffers, for the next book.
    fn into_buffers(self) -> BookBuffers {
        BookBuffers {
            rem: self.rem,
            key: self.key,
            auction: self.auction,
            fills: self.fills,
        }
    }

    /// [`Book::clear_interval`] with the outcome's trades made.
    fn clear_interval_trades(
        &mut self,
        interval: u32,
        idx: &[usize],
        config: &ClearingConfig,
    ) -> IntervalOutcome {
        let mut out = self.clear_interval(interval, idx, config);
        out.trades = trades_of(self.orders, self.names, interval, &self.fills).collect();
        out
    }

    /// Clear orders `idx` of `interval`: the outcome without its trades, which are left in
    /// `self.fills` (see [`Book::clear_interval_trades`]).
    fn clear_interval(
        &mut self,
        interval: u32,
        idx: &[usize],
        config: &ClearingConfig,
    ) -> IntervalOutcome {
        let mut trades = std::mem::take(&mut self.fills);
        trades.clear();
        // 1. Grid at peak takes the surplus first.
        if config.grid.peak
            && let Some(feed_in) = config.grid.buys_at
        {
            for &o in idx {
                self.sell_to_grid(o, feed_in, &mut trades);
            }
        }
        // 2. P2P.
        let mut out = IntervalOutcome {
            interval,
            price: None,
            green_price: None,
            clearing_range: None,
            volume_wh: Wh(0),
            grid_import_wh: Wh(0),
            grid_export_wh: Wh(0),
            fees: NanoEur::ZERO,
            trades: Vec::new(),
        };
        let p2p_start = trades.len();
        match config.mechanism {
            Mechanism::PayAsClear => {
                let mut a = std::mem::take(&mut self.auction);
                // One pass sorts the open orders into renewable-only bids, other bids and
                // offers (ascending, as `idx`); the main auction's lists are these unless a
                // renewable auction runs first and changes what is left open.
                let green = self.open_orders(idx, &mut a);
                if green {
                    let open =
                        |s: &Self, i: usize, side: Side| s.orders[i].side == side && s.rem[i] > 0;
                    a.offers.clear();
                    a.offers.extend(idx.iter().copied().filter(|&i| {
                        open(self, i, Side::Offer) && self.orders[i].is_renewable_offer()
                    }));
                    std::mem::swap(&mut a.bids, &mut a.green_bids);
                    out.green_price = self.uniform(&mut a, &mut trades).map(|(_, p)| p);
                    std::mem::swap(&mut a.bids, &mut a.green_bids);
                    a.offers.clear();
                    a.offers
                        .extend(idx.iter().copied().filter(|&i| open(self, i, Side::Offer)));
                }
                if let Some((range, p)) = self.uniform(&mut a, &mut trades) {
                    out.clearing_range = Some(range);
                    out.price = Some(p);
                }
                self.auction = a;
            }
            Mechanism::PayAsBid => self.continuous(idx, false, &mut trades),
            Mechanism::PayAsOffer => self.continuous(idx, true, &mut trades),
        }
        if config.mechanism != Mechanism::PayAsClear {
            out.price = average_price(&trades[p2p_start..]);
        }
        // 3. Grid fallback.
        for &i in idx {
            match self.orders[i].side {
                Side::Bid => {
                    if let Some(retail) = config.grid.sells_at {
                        self.buy_from_grid(i, retail, &mut trades);
                    }
                }
                Side::Offer => {
                    if let Some(feed_in) = config.grid.buys_at {
                        self.sell_to_grid(i, feed_in, &mut trades);
                    }
                }
            }
        }
        for t in &trades {
            match t.kind {
                TradeKind::P2p => {
                    out.volume_wh.0 += t.energy_wh.0;
                    out.fees += t.fee_paid();
                }
                TradeKind::FromGrid => out.grid_import_wh.0 += t.energy_wh.0,
                TradeKind::ToGrid => out.grid_export_wh.0 += t.energy_wh.0,
            }
        }
        self.fills = trades;
        out
    }

    fn sell_to_grid(&mut self, o: usize, feed_in: Price, trades: &mut Vec<Fill>) {
        let order = &self.orders[o];
        let q = self.rem[o];
        if order.side != Side::Offer || q <= 0 || order.price > feed_in {
            return;
        }
        self.rem[o] = 0;
        trades.push(Fill {
            kind: TradeKind::ToGrid,
            bid: GRID_ORDER,
            offer: o,
            energy_wh: Wh(q),
            price: feed_in,
            fee: Price::ZERO,
        });
    }

    fn buy_from_grid(&mut self, b: usize, retail: Price, trades: &mut Vec<Fill>) {
        let order = &self.orders[b];
        let q = self.rem[b];
        if order.side != Side::Bid || q <= 0 || order.price < retail {
            return;
        }
        self.rem[b] = 0;
        trades.push(Fill {
            kind: TradeKind::FromGrid,
            bid: b,
            offer: GRID_ORDER,
            energy_wh: Wh(q),
            price: retail,
            fee: Price::ZERO,
        });
    }

    fn p2p(&mut self, b: usize, o: usize, q: i64, price: Price, trades: &mut Vec<Fill>) {
        self.rem[b] -= q;
        self.rem[o] -= q;
        trades.push(Fill {
            kind: TradeKind::P2p,
            bid: b,
            offer: o,
            energy_wh: Wh(q),
            price,
            fee: self.fee.fee_for(price),
        });
    }

    /// The open orders of `idx` (energy left), in `idx`'s order: renewable-only bids to
    /// `a.green_bids`, other bids to `a.bids`, offers to `a.offers`. Whether there is a
    /// renewable-only bid.
    fn open_orders(&self, idx: &[usize], a: &mut Auction) -> bool {
        a.green_bids.clear();
        a.bids.clear();
        a.offers.clear();
        for &i in idx {
            if self.rem[i] <= 0 {
                continue;
            }
            let o = &self.orders[i];
            match o.side {
                Side::Bid if o.renewable_only => a.green_bids.push(i),
                Side::Bid => a.bids.push(i),
                Side::Offer => a.offers.push(i),
            }
        }
        !a.green_bids.is_empty()
    }

    /// A uniform-price auction of `a.bids` against `a.offers`; returns the clearing interval
    /// and price when anything traded.
    fn uniform(
        &mut self,
        a: &mut Auction,
        trades: &mut Vec<Fill>,
    ) -> Option<((Price, Price), Price)> {
        self.by_level(&a.bids, Reverse, &mut a.ranked_bids, &mut a.levels);
        self.by_level(&a.offers, |p| p, &mut a.ranked_offers, &mut a.levels);
        let (bids, offers) = (&a.ranked_bids, &a.ranked_offers);
        let fills = &mut a.fills;
        fills.clear();
        let (mut i, mut j) = (0, 0);
        let mut rem_b = bids.first().map_or(0, |&b| self.rem[b]);
        let mut rem_o = offers.first().map_or(0, |&o| self.rem[o]);
        while i < bids.len() && j < offers.len() {
            let (b, o) = (bids[i], offers[j]);
            if self.key[b] < self.key[o] {
                break;
            }
            let q = rem_b.min(rem_o);
            fills.push((b, o, q));
            rem_b -= q;
            rem_o -= q;
            if rem_b == 0 {
                i += 1;
                rem_b = bids.get(i).map_or(0, |&b| self.rem[b]);
            }
            if rem_o == 0 {
                j += 1;
                rem_o = offers.get(j).map_or(0, |&o| self.rem[o]);
            }
        }
        let &(last_b, last_o, _) = fills.last()?;
        let (lo, hi) = (self.key[last_o], self.key[last_b]);
        // Midpoint rounded down (toward −∞): stays inside [lo, hi] for integer prices.
        let price = Price((lo.0 + hi.0).div_euclid(2));
        trades.reserve(fills.len());
        for &(b, o, q) in fills.iter() {
            self.p2p(b, o, q, price, trades);
        }
        Some(((lo, hi), price))
    }

    /// `idx` aggregated into price levels (the same side and key; renewable-only bids and
    /// renewable offers are already separate products of the auction), best level first by
    /// `rank`, inside a level in input order: time priority, the auction's own tie rule. This
    /// is the sequence a sort by (key, input index) gives, so matching fills exactly the
    /// orders, and the amounts, that the order-by-order auction fills. With at most
    /// [`MAX_LEVELS`] distinct prices (a city's truthful agents make two or three) it is one
    /// pass per level, O(n·k), no sort; otherwise every order is sorted, O(n log n). Written
    /// to `out`; `levels` is scratch.
    fn by_level<K: Ord>(
        &self,
        idx: &[usize],
        rank: impl Fn(Price) -> K,
        out: &mut Vec<usize>,
        levels: &mut Vec<Price>,
    ) {
        // `clear` hands each interval its indices in input order; the tie rule relies on it.
        assert!(idx.is_sorted(), "order indices must ascend");
        out.clear();
        levels.clear();
        for &i in idx {
            let k = self.key[i];
            if !levels.contains(&k) {
                if levels.len() == MAX_LEVELS {
                    out.extend_from_slice(idx);
                    out.sort_unstable_by_key(|&i| (rank(self.key[i]), i));
                    return;
                }
                levels.push(k);
            }
        }
        levels.sort_unstable_by_key(|&k| rank(k));
        for &level in levels.iter() {
            out.extend(idx.iter().copied().filter(|&i| self.key[i] == level));
        }
    }

    /// Continuous matching: pay-as-bid (two-sided) or pay-as-offer (one-sided).
    fn continuous(&mut self, idx: &[usize], one_sided: bool, trades: &mut Vec<Fill>) {
        // Offer books keyed (price, seq); bid books keyed (−net limit, seq).
        let mut offers_green: BTreeSet<(i64, usize)> = BTreeSet::new();
        let mut offers_other: BTreeSet<(i64, usize)> = BTreeSet::new();
        let mut bids_green: BTreeSet<(i64, usize)> = BTreeSet::new();
        let mut bids_any: BTreeSet<(i64, usize)> = BTreeSet::new();
        if one_sided {
            for &i in idx {
                if self.orders[i].side == Side::Offer && self.rem[i] > 0 {
                    self.rest_offer(i, &mut offers_green, &mut offers_other);
                }
            }
        }
        for &i in idx {
            if self.rem[i] <= 0 {
                continue;
            }
            match self.orders[i].side {
                Side::Bid => {
                    let green_only = self.orders[i].renewable_only;
                    while self.rem[i] > 0 {
                        let best = match (offers_green.first(), offers_other.first()) {
                            (g, _) if green_only => g.copied(),
                            (Some(&g), Some(&x)) => Some(g.min(x)),
                            (g, x) => g.or(x).copied(),
                        };
                        let Some((offer_price, o)) = best else { break };
                        if self.key[i].0 < offer_price {
                            break;
                        }
                        let q = self.rem[i].min(self.rem[o]);
                        let price = if one_sided { self.key[o] } else { self.key[i] };
                        self.p2p(i, o, q, price, trades);
                        if self.rem[o] == 0 {
                            offers_green.remove(&(offer_price, o));
                            offers_other.remove(&(offer_price, o));
                        }
                    }
                    if self.rem[i] > 0 && !one_sided {
                        let k = (-self.key[i].0, i);
                        if green_only {
                            bids_green.insert(k);
                        } else {
                            bids_any.insert(k);
                        }
                    }
                }
                Side::Offer => {
                    if one_sided {
                        continue;
                    }
                    let renewable = self.orders[i].is_renewable_offer();
                    while self.rem[i] > 0 {
                        let best = match (bids_any.first(), bids_green.first()) {
                            (a, _) if !renewable => a.copied(),
                            (Some(&a), Some(&g)) => Some(a.min(g)),
                            (a, g) => a.or(g).copied(),
                        };
                        let Some((neg_net, b)) = best else { break };
                        if -neg_net < self.key[i].0 {
                            break;
                        }
                        let q = self.rem[i].min(self.rem[b]);
                        let price = self.key[b];
                        self.p2p(b, i, q, price, trades);
                        if self.rem[b] == 0 {
                            bids_any.remove(&(neg_net, b));
                            bids_green.remove(&(neg_net, b));
                        }
                    }
                    if self.rem[i] > 0 {
                        self.rest_offer(i, &mut offers_green, &mut offers_other);
                    }
                }
            }
        }
    }

    fn rest_offer(
        &self,
        o: usize,
        green: &mut BTreeSet<(i64, usize)>,
        other: &mut BTreeSet<(i64, usize)>,
    ) {
        let k = (self.key[o].0, o);
        if self.orders[o].is_renewable_offer() {
            green.insert(k);
        } else {
            other.insert(k);
        }
    }
}

/// Energy-weighted average seller price, rounded down; `None` without energy.
fn average_price(trades: &[Fill]) -> Option<Price> {
    let energy: i128 = trades.iter().map(|t| i128::from(t.energy_wh.0)).sum();
    if energy == 0 {
        return None;
    }
    let value: i128 = trades.iter().map(|t| t.seller_receives().0).sum();
    Some(Price(value.div_euclid(energy) as i64))
}
