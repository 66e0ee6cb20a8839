//! The community market as the community stage of the step (`scg-market`), replacing pro-rata
//! sharing when the scenario has `[community.market]`.
//!
//! Each step, every prosumer's residual becomes one order (a deficit bids the retail price, a
//! surplus offers at the feed-in price: truthful price takers) and the chosen mechanism clears
//! them. The market decides the P2P energy; the grid takes the rest of each residual, so the
//! energy balance stays exact (the market's Wh rounding ends up with the grid). Limits on the
//! community's grid connection (an off-grid community has 0 and 0) cap what the grid takes,
//! shared pro rata; beyond them energy is excess or unmet. The market still prices against the
//! retail and feed-in tariff (an approximation when the connection is limited). Money is exact
//! (nano-euro) and every trade is recorded. Never does I/O.

use crate::ComponentError;
use crate::dispatch::{Allocation, CommunityStage, StepContext};
use scg_market::community::{CommunityClearing, CommunityMarket};
use scg_market::{GridFee, Mechanism, NanoEur, Price, TradeKind};
use scg_model::{MarketMechanism, MarketSettings};

/// What the market did over the year.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct MarketYear {
    pub p2p_trades: u64,
    pub p2p_volume_kwh: f64,
    /// Volume-weighted average seller price, EUR/MWh (0 without trades).
    pub p2p_average_price_eur_per_mwh: f64,
    pub grid_fees_eur: f64,
    /// Per prosumer (scenario order): paid for P2P energy (fees included) and received, EUR.
    pub paid_eur: Vec<f64>,
    pub received_eur: Vec<f64>,
    /// Energy sold by seller to buyer over the year, kWh: `sold_kwh[seller][buyer]`. Empty
    /// for a community of more than [`PAIR_MATRIX_MAX_MEMBERS`] members (the matrix has a
    /// cell per pair: 800 MB at 10,000 members); `pairs` has them at every size.
    pub sold_kwh: Vec<Vec<f64>>,
    /// Every (seller, buyer) pair that traded over the year, ascending by seller then buyer.
    pub pairs: Vec<P2pPair>,
    /// Mean clearing price and total volume by hour of day (0–23), EUR/MWh and kWh.
    pub price_by_hour_eur_per_mwh: Vec<f64>,
    pub volume_by_hour_kwh: Vec<f64>,
    /// Every P2P trade of the year, in clearing order (for the ledger); empty when the stage
    /// was told not to keep them ([`MarketStage::keep_trades`]).
    pub trades: Vec<MarketTrade>,
    /// Per prosumer (scenario order), exact: paid for P2P energy (fees included) and received,
    /// nano-euro (one RESCoin base unit each at the 1 RES = 1 EUR peg).
    pub paid_nano: Vec<i128>,
    pub received_nano: Vec<i128>,
    /// The clearing price of every step, EUR/MWh (`None` when nothing was priced).
    pub clearing_price_eur_per_mwh: Vec<Option<f64>>,
    /// Every step's book as it was cleared (the members' orders, the grid's prices and the
    /// peak flag), for a driver that replays the year's orders elsewhere (`scg testnet`
    /// submits them to the member chain); empty unless [`MarketStage::keep_books`].
    pub books: Vec<StepBook>,
}

/// One step's book: what the community market cleared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepBook {
    pub step: usize,
    /// The grid's retail and feed-in prices of the step, milli-euro per MWh (the market's
    /// integer unit), and whether the grid was at peak.
    pub retail_milli_eur_per_mwh: i64,
    pub feed_in_milli_eur_per_mwh: i64,
    pub peak: bool,
    /// The orders, ascending by member.
    pub orders: Vec<MemberOrder>,
}

/// One member's order of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemberOrder {
    /// Index into the scenario's prosumers.
    pub member: usize,
    /// True for an offer (a surplus), false for a bid (a deficit).
    pub offer: bool,
    pub energy_wh: i64,
    /// Limit price, milli-euro per MWh.
    pub limit_milli_eur_per_mwh: i64,
}

/// The energy one member sold to another over the year.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct P2pPair {
    /// Indices into the scenario's prosumers.
    pub seller: usize,
    pub buyer: usize,
    pub energy_kwh: f64,
}

/// Energy sold per (seller, buyer) over the year, Wh: a matrix for a small community, a log
/// of the pairs that traded for a larger one (a city's pairs are a sliver of its matrix).
#[derive(Debug, Clone)]
enum PairsWh {
    Matrix(Vec<Vec<i64>>),
    /// `merged`: one entry per pair that traded, ascending by (seller, buyer); `fresh`: the
    /// trades since, in trade order, merged in once they are as many as `merged` holds (and at
    /// least [`PAIR_LOG_MIN`]). A trade is an append, and the sorts and merges cost a few
    /// operations a trade amortized, where a map paid a random access (at city scale a cache
    /// miss) per trade. `spare` is the buffer the next merge writes into (then swapped with
    /// `merged`): a city's log holds millions of pairs (12.2 million at 10,000 members by the
    /// year's end, 195 MB), and a new vector each merge, as large as the pairs and trades so
    /// far, was fresh memory for the kernel to zero each time.
    Log {
        merged: Vec<PairEntry>,
        fresh: Vec<PairEntry>,
        spare: Vec<PairEntry>,
    },
}

/// A (seller, buyer) pair and its Wh: 16 bytes (a city's log holds millions of them, sorted
/// and merged over and over; as `usize` pairs they were 24). [`MarketStage::new`] refuses a
/// community whose member indices do not fit a `u32`.
type PairEntry = ((u32, u32), i64);

/// Trades [`PairsWh::Log`] appends at least before it merges them.
const PAIR_LOG_MIN: usize = 1 << 16;

impl PairsWh {
    fn new(members: usize) -> Self {
        if members <= PAIR_MATRIX_MAX_MEMBERS {
            Self::Matrix(vec![vec![0; members]; members])
        } else {
            Self::Log {
                merged: Vec::new(),
                fresh: Vec::new(),
                spare: Vec::new(),
            }
        }
    }

    fn add(&mut self, seller: usize, buyer: usize, wh: i64) {
        match self {
            Self::Matrix(m) => m[seller][buyer] += wh,
            Self::Log {
                merged,
                fresh,
                spare,
            } => {
                // Fits: `MarketStage::new` refused more than `u32::MAX` members.
                fresh.push(((seller as u32, buyer as u32), wh));
                if fresh.len() >= PAIR_LOG_MIN.max(merged.len()) {
                    merge_pairs(merged, fresh, spare);
                    std::mem::swap(merged, spare);
                    fresh.clear();
                }
            }
        }
    }

    /// The pairs that traded, ascending by (seller, buyer).
    fn pairs(&self) -> Vec<P2pPair> {
        let pair = |(seller, buyer): (usize, usize), wh: i64| P2pPair {
            seller,
            buyer,
            energy_kwh: wh as f64 / 1000.0,
        };
        match self {
            Self::Matrix(m) => m
                .iter()
                .enumerate()
                .flat_map(|(s, row)| row.iter().enumerate().map(move |(b, wh)| ((s, b), *wh)))
                .filter(|(_, wh)| *wh != 0)
                .map(|(k, wh)| pair(k, wh))
                .collect(),
            Self::Log { merged, fresh, .. } => {
                let mut all = Vec::new();
                merge_pairs(merged, &mut fresh.clone(), &mut all);
                all.into_iter()
                    .map(|((s, b), wh)| pair((s as usize, b as usize), wh))
                    .collect()
            }
        }
    }
}

/// `merged` (one entry per pair, ascending) with `fresh` (any order, pairs repeated) added in,
/// written to `out` (cleared first, its capacity kept): one entry per pair, ascending. Sorts
/// `fresh`.
fn merge_pairs(merged: &[PairEntry], fresh: &mut [PairEntry], out: &mut Vec<PairEntry>) {
    fresh.sort_unstable_by_key(|e| e.0);
    out.clear();
    out.reserve(merged.len() + fresh.len());
    let (mut old, mut new) = (merged.iter().peekable(), fresh.iter().peekable());
    loop {
        let next = match (old.peek(), new.peek()) {
            (Some(o), Some(n)) if o.0 <= n.0 => old.next(),
            (Some(_), Some(_)) | (None, Some(_)) => new.next(),
            (Some(_), None) => old.next(),
            (None, None) => break,
        };
        let Some(&(key, wh)) = next else { break };
        match out.last_mut() {
            Some(last) if last.0 == key => last.1 += wh,
            _ => out.push((key, wh)),
        }
    }
}

/// One P2P trade, as the ledger needs it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MarketTrade {
    pub step: usize,
    /// Indices into the scenario's prosumers.
    pub seller: usize,
    pub buyer: usize,
    pub energy_wh: i64,
    /// What the seller receives, EUR/MWh.
    pub price_eur_per_mwh: f64,
    /// The grid fee the buyer pays on top, EUR/MWh.
    pub fee_eur_per_mwh: f64,
    /// The same two prices exactly, in the market's integer milli-euro per MWh.
    pub price_milli_eur_per_mwh: i64,
    pub fee_milli_eur_per_mwh: i64,
}

/// Which P2P trades a [`MarketStage`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeepTrades {
    None,
    /// The last interval's only.
    Interval,
    /// The year's.
    Year,
}

/// Above this many members the market does not keep the seller-by-buyer matrix of the year
/// (`MarketYear::sold_kwh`): its cells grow with the square of the members.
pub const PAIR_MATRIX_MAX_MEMBERS: usize = 100;

/// The market stage of a year.
#[derive(Debug)]
pub struct MarketStage<'a> {
    market: CommunityClearing,
    retail_eur_per_mwh: &'a [f64],
    feed_in_eur_per_mwh: &'a [f64],
    steps_per_day: usize,
    steps_per_hour: usize,
    net_kwh: Vec<f64>,
    value_nano: i128,
    fees_nano: i128,
    volume_wh: i64,
    trades: u64,
    paid_nano: Vec<i128>,
    received_nano: Vec<i128>,
    sold_wh: PairsWh,
    price_sum_by_hour: [f64; 24],
    priced_steps_by_hour: [u32; 24],
    volume_wh_by_hour: [i64; 24],
    records: Vec<MarketTrade>,
    keep: KeepTrades,
    /// Where the current interval's trades start in `records`.
    interval_start: usize,
    step_prices: Vec<Option<f64>>,
    books: Option<Vec<StepBook>>,
}

/// The `scg-market` settings of the scenario's market.
pub fn community_market(settings: &MarketSettings) -> Result<CommunityMarket, ComponentError> {
    let mechanism = match settings.mechanism {
        MarketMechanism::PayAsClear => Mechanism::PayAsClear,
        MarketMechanism::PayAsBid => Mechanism::PayAsBid,
        MarketMechanism::PayAsOffer => Mechanism::PayAsOffer,
    };
    let fee = match settings.fee_pct {
        Some(pct) => GridFee::Percent {
            basis_points: (pct * 100.0).round() as u32,
        },
        None if settings.fee_eur_per_mwh > 0.0 => GridFee::Constant(
            Price::from_eur_per_mwh(settings.fee_eur_per_mwh).map_err(|e| {
                ComponentError::parameter("community.market.fee_eur_per_mwh", e.to_string())
            })?,
        ),
        None => GridFee::None,
    };
    Ok(CommunityMarket { mechanism, fee })
}

impl<'a> MarketStage<'a> {
    /// A stage for prosumers `ids` with per-step retail and feed-in prices (EUR/MWh).
    pub fn new(
        market: CommunityMarket,
        ids: &[String],
        retail_eur_per_mwh: &'a [f64],
        feed_in_eur_per_mwh: &'a [f64],
        steps_per_hour: usize,
    ) -> Result<Self, ComponentError> {
        let n = ids.len();
        if u32::try_from(n).is_err() {
            return Err(ComponentError::parameter(
                "community market",
                format!("{n} members: at most {} can trade", u32::MAX),
            ));
        }
        let market = CommunityClearing::new(market, ids)
            .map_err(|e| ComponentError::parameter("community market", e.to_string()))?;
        Ok(Self {
            market,
            retail_eur_per_mwh,
            feed_in_eur_per_mwh,
            steps_per_day: 24 * steps_per_hour.max(1),
            steps_per_hour: steps_per_hour.max(1),
            net_kwh: vec![0.0; n],
            value_nano: 0,
            fees_nano: 0,
            volume_wh: 0,
            trades: 0,
            paid_nano: vec![0; n],
            received_nano: vec![0; n],
            sold_wh: PairsWh::new(n),
            price_sum_by_hour: [0.0; 24],
            priced_steps_by_hour: [0; 24],
            volume_wh_by_hour: [0; 24],
            records: Vec::new(),
            keep: KeepTrades::Year,
            interval_start: 0,
            step_prices: Vec::new(),
            books: None,
        })
    }

    /// Whether to keep every step's book ([`MarketYear::books`]; off by default: a city's
    /// year of orders is large, and only `scg testnet` replays them).
    pub fn keep_books(mut self, keep: bool) -> Self {
        self.books = keep.then(Vec::new);
        self
    }

    /// Whether to keep every P2P trade of the year (`MarketYear::trades`, what the ledger
    /// settles; kept by default). A run that settles nothing (the sizing search's replay,
    /// `scg simulate --no-ledger`) need not hold a city's year of trades in memory.
    pub fn keep_trades(mut self, keep: bool) -> Self {
        self.keep = if keep {
            KeepTrades::Year
        } else {
            KeepTrades::None
        };
        self
    }

    /// Keep each interval's P2P trades until the next interval only
    /// ([`MarketStage::interval_trades`]; `MarketYear::trades` stays empty): a streamed run
    /// hands them on with the members' series instead of holding a city's year of them.
    pub fn keep_interval_trades(mut self) -> Self {
        self.keep = KeepTrades::Interval;
        self
    }

    /// The last interval's P2P trades, in clearing order (empty when trades are not kept).
    pub fn interval_trades(&self) -> &[MarketTrade] {
        self.records.get(self.interval_start..).unwrap_or_default()
    }

    /// The year's totals.
    pub fn finish(&self) -> MarketYear {
        let eur = |n: i128| NanoEur(n).eur();
        MarketYear {
            p2p_trades: self.trades,
            p2p_volume_kwh: self.volume_wh as f64 / 1000.0,
            p2p_average_price_eur_per_mwh: if self.volume_wh > 0 {
                eur(self.value_nano) / (self.volume_wh as f64 / 1e6)
            } else {
                0.0
            },
            grid_fees_eur: eur(self.fees_nano),
            paid_eur: self.paid_nano.iter().map(|n| eur(*n)).collect(),
            received_eur: self.received_nano.iter().map(|n| eur(*n)).collect(),
            sold_kwh: match &self.sold_wh {
                PairsWh::Matrix(m) => m
                    .iter()
                    .map(|row| row.iter().map(|wh| *wh as f64 / 1000.0).collect())
                    .collect(),
                PairsWh::Log { .. } => Vec::new(),
            },
            pairs: self.sold_wh.pairs(),
            price_by_hour_eur_per_mwh: (0..24)
                .map(|h| self.price_sum_by_hour[h] / f64::from(self.priced_steps_by_hour[h].max(1)))
                .collect(),
            trades: match self.keep {
                KeepTrades::Year => self.records.clone(),
                KeepTrades::None | KeepTrades::Interval => Vec::new(),
            },
            paid_nano: self.paid_nano.clone(),
            received_nano: self.received_nano.clone(),
            clearing_price_eur_per_mwh: self.step_prices.clone(),
            books: self.books.clone().unwrap_or_default(),
            volume_by_hour_kwh: self
                .volume_wh_by_hour
                .iter()
                .map(|wh| *wh as f64 / 1000.0)
                .collect(),
        }
    }
}

impl CommunityStage for MarketStage<'_> {
    fn allocate(
        &mut self,
        step: usize,
        residual_kw: &[f64],
        ctx: &StepContext,
        out: &mut [Allocation],
    ) -> Result<(), ComponentError> {
        let dt = ctx.dt_h;
        if self.keep == KeepTrades::Interval {
            self.records.clear();
        }
        self.interval_start = self.records.len();
        for (n, r) in self.net_kwh.iter_mut().zip(residual_kw) {
            *n = r * dt;
        }
        let at = |v: &[f64]| v.get(step).copied().unwrap_or(0.0);
        let tariff = scg_market::community::GridTariff::from_eur_per_mwh(
            at(self.retail_eur_per_mwh),
            at(self.feed_in_eur_per_mwh),
        )
        .map_err(|e| ComponentError::parameter("market prices", e.to_string()))?;
        let cleared = self
            .market
            .clear_fills(step as u32, &self.net_kwh, tariff, ctx.grid_at_peak)
            .map_err(|e| ComponentError::parameter("community market", e.to_string()))?;
        let hour = (step % self.steps_per_day) / self.steps_per_hour;
        if self.step_prices.len() <= step {
            self.step_prices.resize(step + 1, None);
        }
        self.step_prices[step] = cleared.price.map(|p| p.eur_per_mwh());
        if let Some(price) = cleared.price {
            self.price_sum_by_hour[hour] += price.eur_per_mwh();
            self.priced_steps_by_hour[hour] += 1;
        }
        for t in cleared.fills.iter().filter(|t| t.kind() == TradeKind::P2p) {
            let wh = t.energy_wh().0;
            self.trades += 1;
            self.volume_wh += wh;
            self.volume_wh_by_hour[hour] += wh;
            self.value_nano += t.seller_receives().0;
            self.fees_nano += t.fee_paid().0;
            if let (Some(s), Some(b)) = (t.offer_order(), t.bid_order()) {
                self.sold_wh.add(s, b, wh);
                if self.keep == KeepTrades::None {
                    continue;
                }
                self.records.push(MarketTrade {
                    step,
                    seller: s,
                    buyer: b,
                    energy_wh: wh,
                    price_eur_per_mwh: t.price().eur_per_mwh(),
                    fee_eur_per_mwh: t.fee().eur_per_mwh(),
                    price_milli_eur_per_mwh: t.price().milli(),
                    fee_milli_eur_per_mwh: t.fee().milli(),
                });
            }
        }
        for (i, (f, a)) in cleared.prosumers.iter().zip(out.iter_mut()).enumerate() {
            self.paid_nano[i] += f.p2p_paid.0;
            self.received_nano[i] += f.p2p_received.0;
            let r = residual_kw[i];
            *a = Allocation::default();
            if r > 0.0 {
                a.p2p_export_kw = (f.p2p_export_wh.0 as f64 / 1000.0 / dt).min(r);
                a.grid_export_kw = r - a.p2p_export_kw;
            } else if r < 0.0 {
                a.p2p_import_kw = (f.p2p_import_wh.0 as f64 / 1000.0 / dt).min(-r);
                a.grid_import_kw = -r - a.p2p_import_kw;
            }
        }
        if let Some(books) = self.books.as_mut() {
            // The book the market just cleared (after the last use of its outcome).
            books.push(StepBook {
                step,
                retail_milli_eur_per_mwh: tariff.retail.milli(),
                feed_in_milli_eur_per_mwh: tariff.feed_in.milli(),
                peak: ctx.grid_at_peak,
                orders: self
                    .market
                    .last_book()
                    .map(|(member, o)| MemberOrder {
                        member,
                        offer: o.side == scg_market::Side::Offer,
                        energy_wh: o.energy_wh.0,
                        limit_milli_eur_per_mwh: o.price.milli(),
                    })
                    .collect(),
            });
        }
        limit_grid(ctx, out);
        Ok(())
    }
}

/// The community connection's limits on what the market left to the grid: the grid takes at
/// most `max_sale_kw` of exports and `max_purchase_kw` of imports, shared pro rata; the rest
/// is excess (curtailed) or unmet, as in the pro-rata stage. Off-grid (both 0) everything left
/// after the market is excess or unmet. Unlimited connections leave the allocation untouched.
fn limit_grid(ctx: &StepContext, out: &mut [Allocation]) {
    let exported: f64 = out.iter().map(|a| a.grid_export_kw).sum();
    if exported > ctx.max_sale_kw {
        let keep = (ctx.max_sale_kw.max(0.0) / exported).min(1.0);
        for a in out.iter_mut() {
            let to_grid = a.grid_export_kw * keep;
            a.excess_kw += a.grid_export_kw - to_grid;
            a.grid_export_kw = to_grid;
        }
    }
    let imported: f64 = out.iter().map(|a| a.grid_import_kw).sum();
    if imported > ctx.max_purchase_kw {
        let keep = (ctx.max_purchase_kw.max(0.0) / imported).min(1.0);
        for a in out.iter_mut() {
            let from_grid = a.grid_import_kw * keep;
            a.unmet_kw += a.grid_import_kw - from_grid;
            a.grid_import_kw = from_grid;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A year of two steps for `n` members: the first sells, the rest buy.
    fn year(n: usize, keep: bool) -> MarketYear {
        let ids: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let prices = [250.0, 250.0];
        let feed_in = [50.0, 50.0];
        let mut stage = MarketStage::new(CommunityMarket::default(), &ids, &prices, &feed_in, 1)
            .unwrap()
            .keep_trades(keep);
        let ctx = StepContext {
            dt_h: 1.0,
            grid_at_peak: false,
            max_purchase_kw: f64::INFINITY,
            max_sale_kw: f64::INFINITY,
        };
        let residual: Vec<f64> = (0..n).map(|i| if i == 0 { 5.0 } else { -0.01 }).collect();
        let mut out = vec![Allocation::default(); n];
        for step in 0..2 {
            stage.allocate(step, &residual, &ctx, &mut out).unwrap();
        }
        stage.finish()
    }

    #[test]
    fn the_pair_matrix_is_kept_for_small_communities_only() {
        let small = year(PAIR_MATRIX_MAX_MEMBERS, true);
        assert_eq!(small.sold_kwh.len(), PAIR_MATRIX_MAX_MEMBERS);
        assert!((small.sold_kwh[0][1] - 0.02).abs() < 1e-12);
        let large = year(PAIR_MATRIX_MAX_MEMBERS + 1, true);
        assert!(large.sold_kwh.is_empty());
        // The pairs that traded, at both sizes: the first member sold 20 Wh to each other.
        for y in [&small, &large] {
            assert_eq!(y.pairs.len(), y.paid_eur.len() - 1);
            for (k, p) in y.pairs.iter().enumerate() {
                assert_eq!((p.seller, p.buyer), (0, k + 1));
                assert!((p.energy_kwh - 0.02).abs() < 1e-12);
            }
        }
        // Everything else is still counted.
        assert_eq!(large.p2p_trades, 2 * PAIR_MATRIX_MAX_MEMBERS as u64);
        assert_eq!(large.trades.len(), 2 * PAIR_MATRIX_MAX_MEMBERS);
    }

    #[test]
    fn the_pair_log_sums_each_pair_as_a_map_does() {
        // More trades than several merges take, over few pairs (each repeated many times) and
        // many (most traded once), checked against an ordered map.
        let mut log = PairsWh::new(PAIR_MATRIX_MAX_MEMBERS + 1);
        let mut want = std::collections::BTreeMap::new();
        let mut x: u64 = 7;
        for t in 0..5 * PAIR_LOG_MIN {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = (x >> 33) as usize;
            let (seller, buyer) = if t % 3 == 0 {
                (r % 4, 7)
            } else {
                (r % 5000, r / 5000 % 5000)
            };
            let wh = (r % 900) as i64 + 1;
            log.add(seller, buyer, wh);
            *want.entry((seller, buyer)).or_insert(0i64) += wh;
        }
        let got: Vec<((usize, usize), i64)> = log
            .pairs()
            .iter()
            .map(|p| ((p.seller, p.buyer), (p.energy_kwh * 1000.0).round() as i64))
            .collect();
        let want: Vec<((usize, usize), i64)> = want.into_iter().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn trades_not_kept_change_no_total() {
        let (kept, dropped) = (year(5, true), year(5, false));
        assert_eq!(kept.trades.len(), 8);
        assert!(dropped.trades.is_empty());
        assert_eq!(
            MarketYear {
                trades: Vec::new(),
                ..kept
            },
            dropped
        );
    }
}
