//! The state transitions of the on-chain market (transaction kinds 14 to 18, see
//! [`crate::market`]): checks and effects on the [`Ledger`]. Like the rest of the state machine
//! it is a pure function of the state, the block timestamp and the transaction: no clock, no
//! I/O, ordered maps only. A rejected transaction changes nothing.

use super::{Ledger, NewTrade, Reject, Role, TradeStatus, cost};
use crate::market::{
    GateRecord, IntervalTariff, MarketParams, MarketState, OfferSource, OrderBody, OrderSide,
    clear_book, market_trade_id,
};
use crate::tx::{DeviceType, PublicKey, TxBody};
use std::collections::{BTreeMap, BTreeSet};

/// Who submits a market transaction, in which block.
#[derive(Debug, Clone, Copy)]
pub(super) struct MarketCtx {
    pub height: u64,
    pub timestamp_s: u64,
    pub signer: PublicKey,
    pub role: Role,
    /// The transaction's nonce: an order's place in the canonical book.
    pub nonce: u64,
}

/// A meter reading as the market checks it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading {
    /// The member the meter belongs to.
    pub owner: PublicKey,
    /// The meter's device.
    pub device: DeviceType,
    /// The market interval the reading is for.
    pub interval: u64,
    /// Wh produced (exported, discharged) in the interval.
    pub produced_wh: u64,
}

impl Ledger {
    /// On a chain whose market is open, a meter reading mints only from real, recent energy:
    /// - its interval has ended at the block time (`epoch + (k + 1) * interval <= timestamp`,
    ///   else [`Reject::ReadingInFuture`]) and ended at most the settle window before it
    ///   ([`Reject::ReadingLongClosed`]): a reading is tied to the block clock, not an opaque
    ///   number, and cannot be filed for the far past once the interval's trades have expired;
    /// - a renewable meter that reports production has a registered capacity
    ///   ([`Reject::NoMeterCapacity`]), and any meter with a capacity reports at most
    ///   `floor(capacity W * interval s / 3600)` produced Wh ([`Reject::ReadingExceedsCapacity`]).
    ///
    /// A chain without a market never calls this: its readings are checked as before.
    pub(super) fn check_market_reading(
        &self,
        params: &MarketParams,
        meter: &PublicKey,
        reading: &Reading,
        timestamp_s: u64,
    ) -> Result<(), Reject> {
        let start = Self::gate_of(params, reading.interval)?;
        let end = start
            .checked_add(params.interval_s)
            .ok_or(Reject::IntervalOutOfRange)?;
        if end > timestamp_s {
            return Err(Reject::ReadingInFuture);
        }
        if timestamp_s - end > params.settle_window_s {
            return Err(Reject::ReadingLongClosed);
        }
        match self.market.capacities.get(&(reading.owner, *meter)) {
            Some((_, capacity_w)) if reading.produced_wh > params.capacity_wh(*capacity_w) => {
                Err(Reject::ReadingExceedsCapacity)
            }
            None if reading.device.is_renewable() && reading.produced_wh > 0 => {
                Err(Reject::NoMeterCapacity)
            }
            _ => Ok(()),
        }
    }

    /// The on-chain market's state.
    pub fn market(&self) -> &MarketState {
        &self.market
    }

    /// Apply a market transaction body (kinds 14 to 18).
    pub(super) fn apply_market(&mut self, ctx: MarketCtx, body: &TxBody) -> Result<(), Reject> {
        match body {
            TxBody::MarketOpen(params) => self.market_open(ctx, params),
            TxBody::MeterCapacity { meter, capacity_w } => {
                self.meter_capacity(ctx, meter, *capacity_w)
            }
            TxBody::IntervalTariff { interval, tariff } => {
                self.interval_tariff(ctx, *interval, tariff)
            }
            TxBody::Order(order) => self.place_order(ctx, order),
            TxBody::GateClose { interval } => self.gate_close(ctx, *interval),
            _ => Err(Reject::Malformed),
        }?;
        self.market_dirty = true;
        Ok(())
    }

    pub(super) fn open_params(&self) -> Result<MarketParams, Reject> {
        self.market.params.ok_or(Reject::MarketNotOpen)
    }

    /// The gate time of `interval` (which must fit the market's `u32` intervals).
    fn gate_of(params: &MarketParams, interval: u64) -> Result<u64, Reject> {
        if interval > u64::from(u32::MAX) {
            return Err(Reject::IntervalOutOfRange);
        }
        params.gate_s(interval).ok_or(Reject::IntervalOutOfRange)
    }

    /// Orders and tariffs for `interval` are accepted only before its gate.
    fn before_gate(
        &self,
        ctx: &MarketCtx,
        params: &MarketParams,
        interval: u64,
    ) -> Result<(), Reject> {
        let gate = Self::gate_of(params, interval)?;
        if ctx.timestamp_s >= gate || self.market.cleared.contains_key(&interval) {
            return Err(Reject::GateClosed);
        }
        Ok(())
    }

    fn market_open(&mut self, ctx: MarketCtx, params: &MarketParams) -> Result<(), Reject> {
        if ctx.role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        if self.market.params.is_some() {
            return Err(Reject::MarketAlreadyOpen);
        }
        if params.problem().is_some() {
            return Err(Reject::InvalidMarketParams);
        }
        self.market.params = Some(*params);
        Ok(())
    }

    fn meter_capacity(
        &mut self,
        ctx: MarketCtx,
        meter: &PublicKey,
        capacity_w: u64,
    ) -> Result<(), Reject> {
        if ctx.role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        self.open_params()?;
        let account = self.accounts.get(meter).ok_or(Reject::UnknownAccount)?;
        let (Role::Meter, Some(owner), Some(device)) =
            (account.role, account.owner, account.device)
        else {
            return Err(Reject::UnknownAccount);
        };
        if capacity_w == 0 {
            return Err(Reject::ZeroAmount);
        }
        self.market
            .capacities
            .insert((owner, *meter), (device, capacity_w));
        Ok(())
    }

    fn interval_tariff(
        &mut self,
        ctx: MarketCtx,
        interval: u64,
        tariff: &IntervalTariff,
    ) -> Result<(), Reject> {
        if ctx.role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        let params = self.open_params()?;
        self.before_gate(&ctx, &params, interval)?;
        if self.market.tariffs.contains_key(&interval) {
            return Err(Reject::DuplicateTariff);
        }
        self.market.tariffs.insert(interval, *tariff);
        Ok(())
    }

    fn place_order(&mut self, ctx: MarketCtx, order: &OrderBody) -> Result<(), Reject> {
        if ctx.role != Role::Member {
            return Err(Reject::WrongRole);
        }
        let params = self.open_params()?;
        Self::gate_of(&params, order.interval)?;
        if order.energy_wh == 0 {
            return Err(Reject::ZeroAmount);
        }
        if order.energy_wh < 0 {
            return Err(Reject::NegativeAmount);
        }
        if order.limit_milli_eur_per_mwh < 0 {
            return Err(Reject::NegativePrice);
        }
        if order.side == OrderSide::Bid && order.source != OfferSource::Unspecified {
            return Err(Reject::InvalidOrder);
        }
        self.before_gate(&ctx, &params, order.interval)?;
        let mine: Vec<&OrderBody> = self
            .market
            .orders_of(order.interval, &ctx.signer)
            .map(|(_, o)| o)
            .collect();
        if mine.len() >= usize::from(params.max_orders_per_member) {
            return Err(Reject::TooManyOrders);
        }
        // The market refuses a book where a member's own bid and offer cross (a wash trade,
        // see `scg_market::validate_orders`); refuse the order that would make one.
        let crosses = mine.iter().any(|o| match (order.side, o.side) {
            (OrderSide::Bid, OrderSide::Offer) => {
                o.limit_milli_eur_per_mwh <= order.limit_milli_eur_per_mwh
            }
            (OrderSide::Offer, OrderSide::Bid) => {
                o.limit_milli_eur_per_mwh >= order.limit_milli_eur_per_mwh
            }
            _ => false,
        });
        if crosses {
            return Err(Reject::SelfTradeOrder);
        }
        match order.side {
            OrderSide::Offer => self.check_offer_capacity(&ctx.signer, &params, order, &mine)?,
            OrderSide::Bid => {
                let committed: u128 = mine.iter().map(|o| o.max_cost_base()).sum();
                if committed + order.max_cost_base() > self.accounts[&ctx.signer].balance {
                    return Err(Reject::InsufficientFunds);
                }
            }
        }
        self.market
            .orders
            .insert((order.interval, ctx.signer, ctx.nonce), *order);
        Ok(())
    }

    /// A member's offers of one interval stay within its registered capacity times the
    /// interval: all its offers within the capacity of all its producing and storage meters,
    /// and the offers of one declared source within the capacity of the meters of that source.
    fn check_offer_capacity(
        &self,
        member: &PublicKey,
        params: &MarketParams,
        order: &OrderBody,
        mine: &[&OrderBody],
    ) -> Result<(), Reject> {
        let offered = |matching: &dyn Fn(OfferSource) -> bool| -> u128 {
            mine.iter()
                .filter(|o| o.side == OrderSide::Offer && matching(o.source))
                .map(|o| u128::from(o.energy_wh.unsigned_abs()))
                .sum::<u128>()
                + u128::from(order.energy_wh.unsigned_abs())
        };
        let all_cap = self
            .market
            .offer_capacity_wh(params, member, OfferSource::Unspecified);
        if offered(&|_| true) > u128::from(all_cap) {
            return Err(Reject::OfferExceedsCapacity);
        }
        if order.source != OfferSource::Unspecified {
            let cap = self.market.offer_capacity_wh(params, member, order.source);
            if offered(&|s| s == order.source) > u128::from(cap) {
                return Err(Reject::OfferExceedsCapacity);
            }
        }
        Ok(())
    }

    /// Clear `interval`: its book in canonical order (member, nonce), minus the bids their
    /// buyers can no longer fund, through `scg_market::clear`; every P2P trade becomes a
    /// pending ledger trade (the buyer's payment and fee reserved, as a trade-create does).
    fn gate_close(&mut self, ctx: MarketCtx, interval: u64) -> Result<(), Reject> {
        if ctx.role != Role::Member && ctx.role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        let params = self.open_params()?;
        let gate = Self::gate_of(&params, interval)?;
        if self.market.cleared.contains_key(&interval) {
            return Err(Reject::IntervalAlreadyCleared);
        }
        if ctx.timestamp_s < gate {
            return Err(Reject::GateNotReached);
        }
        let (book, unfunded_bids) = self.funded_book(interval);
        let interval_u32 = u32::try_from(interval).map_err(|_| Reject::IntervalOutOfRange)?;
        let cleared = clear_book(
            interval_u32,
            &book,
            &params,
            self.market.tariffs.get(&interval),
        )
        .map_err(|_| Reject::ClearingFailed)?;
        // Expire one settle window after the end of delivery (or after this block, when the
        // gate is closed late).
        let end = gate
            .checked_add(params.interval_s)
            .ok_or(Reject::Overflow)?;
        let expires_at_s = end
            .checked_add(params.settle_window_s)
            .filter(|e| *e > ctx.timestamp_s)
            .unwrap_or(ctx.timestamp_s.saturating_add(params.settle_window_s));
        // Everything is checked before the first change, so a refused gate close changes
        // nothing.
        let mut planned = Vec::with_capacity(cleared.len());
        let mut spent: BTreeMap<PublicKey, u128> = BTreeMap::new();
        for (k, t) in cleared.iter().enumerate() {
            let reserve = cost(t.energy_wh, t.price_base_per_kwh)
                .zip(cost(t.energy_wh, t.fee_base_per_kwh))
                .and_then(|(p, f)| p.checked_add(f))
                .ok_or(Reject::Overflow)?;
            let total = spent.entry(t.buyer).or_insert(0);
            *total = total.checked_add(reserve).ok_or(Reject::Overflow)?;
            if *total > self.accounts[&t.buyer].balance {
                return Err(Reject::InsufficientFunds);
            }
            let k = u32::try_from(k).map_err(|_| Reject::Overflow)?;
            let id = market_trade_id(interval, k);
            if self.ids.contains(&id) || self.trades.contains_key(&id) {
                return Err(Reject::DuplicateId);
            }
            planned.push((id, t, reserve));
        }
        let mut record = GateRecord {
            height: ctx.height,
            orders: u32::try_from(book.len()).unwrap_or(u32::MAX),
            unfunded_bids,
            trades: 0,
            volume_wh: 0,
        };
        for (id, t, reserve) in planned {
            let new = NewTrade {
                seller: t.seller,
                interval,
                energy_wh: t.energy_wh,
                price_base_per_kwh: t.price_base_per_kwh,
                fee_base_per_kwh: t.fee_base_per_kwh,
                expires_at_s,
            };
            self.open_trade(id, &t.buyer, &new, reserve);
            self.ids.insert(id);
            self.market
                .trades_by_seller
                .entry((t.seller, interval))
                .or_default()
                .push(id);
            record.trades += 1;
            record.volume_wh = record.volume_wh.saturating_add(t.energy_wh);
        }
        // A seller whose supply point reported the interval before this gate close (the
        // report is accepted once the interval has ended, which may precede the close): its
        // trades are posted now, exactly as the report would have posted them.
        let sellers: BTreeSet<PublicKey> = cleared.iter().map(|t| t.seller).collect();
        for seller in sellers {
            let reported: Vec<PublicKey> = self
                .supply_points
                .range((seller, [0; 32])..=(seller, [0xff; 32]))
                .map(|(_, meter)| *meter)
                .filter(|meter| self.reports.contains_key(&(*meter, interval)))
                .collect();
            for meter in reported {
                self.post_market_trades(&meter, &seller, interval, ctx.height);
            }
        }
        let keys: Vec<_> = self
            .market
            .orders
            .range((interval, [0; 32], 0)..=(interval, [0xff; 32], u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.market.orders.remove(&k);
        }
        self.market.cleared.insert(interval, record);
        Ok(())
    }

    /// The interval's book in canonical order without the bids whose buyer's balance no longer
    /// covers them (cumulatively, in canonical order: a bid's most it can cost is its energy
    /// times its limit, fee included), and how many bids were left out.
    fn funded_book(&self, interval: u64) -> (Vec<crate::market::BookEntry>, u32) {
        let mut committed: BTreeMap<PublicKey, u128> = BTreeMap::new();
        let mut unfunded = 0u32;
        let mut book = Vec::new();
        for entry in self.market.book(interval) {
            let (member, _, order) = &entry;
            if order.side == OrderSide::Bid {
                let balance = self.accounts.get(member).map_or(0, |a| a.balance);
                let c = committed.entry(*member).or_insert(0);
                let after = c.saturating_add(order.max_cost_base());
                if after > balance {
                    unfunded += 1;
                    continue;
                }
                *c = after;
            }
            book.push(entry);
        }
        (book, unfunded)
    }

    /// Post-delivery: the seller's supply-point meter reported `interval`, so its pending
    /// market trades of that interval are posted, in clearing order, for what the meter
    /// exported and has not already sold; the rest of each trade returns to its buyer (the
    /// undelivered part is voided).
    pub(super) fn post_market_trades(
        &mut self,
        meter: &PublicKey,
        owner: &PublicKey,
        interval: u64,
        height: u64,
    ) {
        let Some(ids) = self
            .market
            .trades_by_seller
            .get(&(*owner, interval))
            .cloned()
        else {
            return;
        };
        for id in ids {
            let Some(trade) = self.trades.get(&id) else {
                continue;
            };
            if trade.status != TradeStatus::Pending {
                continue;
            }
            let report = self.reports[&(*meter, interval)];
            let delivered = trade.energy_wh.min(report.produced_wh - report.sold_wh);
            let posted = self.post_trade(meter, height, id, delivered);
            // The trade is pending and its costs were computed when it was reserved.
            assert!(posted.is_ok(), "posting a cleared trade failed: {posted:?}");
        }
    }
}
