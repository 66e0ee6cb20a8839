//! The state transitions of the CER computed on-chain and of the quorum-signed issuance
//! (transaction kinds 19 to 22, see [`crate::cer`]): checks and effects on the [`Ledger`].
//! Like the rest of the state machine it is a pure function of the state, the block timestamp
//! and the transaction: no clock, no I/O, ordered maps only. Every check runs before the first
//! change, so a rejected transaction changes nothing.

use super::market_exec::MarketCtx;
use super::{Ledger, Reject, Role};
use crate::cer::{CerParams, CerTally, IssuanceBody, IssuanceRecord, PeriodRecord};
use crate::tx::{PublicKey, TxBody};
use ed25519_dalek::Signature;
use std::collections::BTreeSet;

/// Seconds in the CER's hour.
const HOUR_S: u64 = 3_600;

impl Ledger {
    /// The CER's state.
    pub fn cer(&self) -> &crate::cer::CerState {
        &self.cer
    }

    /// Apply a CER transaction body (kinds 19 to 22).
    pub(super) fn apply_cer(
        &mut self,
        ctx: MarketCtx,
        id: u128,
        body: &TxBody,
    ) -> Result<(), Reject> {
        match body {
            TxBody::CerOpen(params) => self.cer_open(&ctx, params),
            TxBody::ZonalPrices {
                first_hour,
                prices_milli_eur_per_mwh,
            } => self.zonal_prices(&ctx, *first_hour, prices_milli_eur_per_mwh),
            TxBody::CerPeriodClose { period } => self.cer_period_close(&ctx, *period),
            TxBody::Issuance(b) => self.issuance(&ctx, id, b),
            _ => Err(Reject::Malformed),
        }?;
        self.cer_dirty = true;
        Ok(())
    }

    fn cer_params(&self) -> Result<CerParams, Reject> {
        self.cer.params.ok_or(Reject::CerNotOpen)
    }

    /// Kind 19: the operator opens the CER once the market is open. The market's intervals
    /// must divide the hour (the CER rule is hourly) and the cap must hold the genesis
    /// endowment, which counts against it.
    fn cer_open(&mut self, ctx: &MarketCtx, params: &CerParams) -> Result<(), Reject> {
        if ctx.role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        let market = self.open_params()?;
        if self.cer.params.is_some() {
            return Err(Reject::CerAlreadyOpen);
        }
        let endowment = self.config.treasury_endowment;
        if params.problem().is_some()
            || market.interval_s > HOUR_S
            || !HOUR_S.is_multiple_of(market.interval_s)
            || params.issuance_cap_base < endowment
        {
            return Err(Reject::InvalidCerParams);
        }
        self.cer.params = Some(*params);
        self.cer.endowment_base = endowment;
        Ok(())
    }

    /// Kind 20: the operator posts the zonal prices of consecutive hours, each once, while
    /// its period is open.
    fn zonal_prices(
        &mut self,
        ctx: &MarketCtx,
        first_hour: u64,
        prices: &[i64],
    ) -> Result<(), Reject> {
        if ctx.role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        let params = self.cer_params()?;
        let hours = first_hour
            .checked_add(prices.len() as u64)
            .ok_or(Reject::IntervalOutOfRange)?;
        for hour in first_hour..hours {
            let period = hour / u64::from(params.period_hours);
            if self.cer.closed.contains_key(&period) {
                return Err(Reject::CerPeriodClosed);
            }
            if self.cer.zonal.contains_key(&hour) {
                return Err(Reject::DuplicateZonalPrice);
            }
        }
        for (hour, price) in (first_hour..hours).zip(prices) {
            self.cer.zonal.insert(hour, *price);
        }
        Ok(())
    }

    /// Kind 21: any member or the operator closes `period` once its readings can no longer
    /// arrive (the block time is past its end plus the market's settle window, the last time
    /// a reading of its last interval is accepted). The ledger sums every member's
    /// supply-point readings to hours, runs the one integer rule ([`CerTally`]) at the
    /// posted zonal prices and pays each member its allocation from the treasury.
    fn cer_period_close(&mut self, ctx: &MarketCtx, period: u64) -> Result<(), Reject> {
        if ctx.role != Role::Member && ctx.role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        let params = self.cer_params()?;
        let market = self.open_params()?;
        if self.cer.closed.contains_key(&period) {
            return Err(Reject::DuplicatePeriod);
        }
        let (first_hour, hours) = params
            .period_hours_range(period)
            .ok_or(Reject::IntervalOutOfRange)?;
        let end_s = first_hour
            .checked_add(hours)
            .and_then(|h| h.checked_mul(HOUR_S))
            .and_then(|s| s.checked_add(market.epoch_s))
            .ok_or(Reject::IntervalOutOfRange)?;
        let last_reading_s = end_s
            .checked_add(market.settle_window_s)
            .ok_or(Reject::IntervalOutOfRange)?;
        if ctx.timestamp_s <= last_reading_s {
            return Err(Reject::CerPeriodNotEnded);
        }
        let mut zonal = Vec::with_capacity(hours as usize);
        for hour in first_hour..first_hour + hours {
            zonal.push(*self.cer.zonal.get(&hour).ok_or(Reject::ZonalPriceMissing)?);
        }
        let members = self.members_in_order();
        let (injected, withdrawn) = self.hourly_supply_wh(&members, first_hour, hours, &market)?;
        let n = members.len();
        let mut tally = CerTally::new(n);
        for (h, price) in zonal.iter().enumerate() {
            let row = h * n..(h + 1) * n;
            tally
                .add_hour(
                    &params.rule,
                    *price,
                    &injected[row.clone()],
                    &withdrawn[row],
                )
                .map_err(|_| Reject::Overflow)?;
        }
        let total = tally.total_base();
        let treasury = self.config.treasury;
        if self.accounts[&treasury].balance < total {
            return Err(Reject::InsufficientFunds);
        }
        self.debit(&treasury, total);
        let mut paid = 0u32;
        for (member, amount) in members.iter().zip(&tally.allocated_base) {
            if *amount > 0 {
                self.credit(member, *amount);
                paid += 1;
            }
        }
        self.cer.closed.insert(
            period,
            PeriodRecord {
                height: ctx.height,
                shared_wh: tally.shared_wh,
                incentive_base: tally.incentive_base,
                valorisation_base: tally.valorisation_base,
                members_paid: paid,
            },
        );
        // The period's prices are spent: keep the state from growing with every hour.
        for hour in first_hour..first_hour + hours {
            self.cer.zonal.remove(&hour);
        }
        Ok(())
    }

    /// The registered members in registration order (the CER rule's member order: it breaks
    /// ties of the largest remainders).
    pub fn members_in_order(&self) -> Vec<PublicKey> {
        self.account_keys
            .iter()
            .filter(|k| self.accounts.get(*k).map(|a| a.role) == Some(Role::Member))
            .copied()
            .collect()
    }

    /// Per hour of `[first_hour, first_hour + hours)` and member (hour-major, members in the
    /// order given): the Wh its supply-point meters exported (injected) and imported
    /// (withdrew), from the readings the ledger holds.
    fn hourly_supply_wh(
        &self,
        members: &[PublicKey],
        first_hour: u64,
        hours: u64,
        market: &crate::market::MarketParams,
    ) -> Result<(Vec<u64>, Vec<u64>), Reject> {
        let per_hour = HOUR_S / market.interval_s;
        let n = members.len();
        let cells = usize::try_from(hours)
            .ok()
            .and_then(|h| h.checked_mul(n))
            .ok_or(Reject::Overflow)?;
        let (mut injected, mut withdrawn) = (vec![0u64; cells], vec![0u64; cells]);
        let first = first_hour
            .checked_mul(per_hour)
            .ok_or(Reject::IntervalOutOfRange)?;
        let end = first_hour
            .checked_add(hours)
            .and_then(|h| h.checked_mul(per_hour))
            .ok_or(Reject::IntervalOutOfRange)?;
        for (i, member) in members.iter().enumerate() {
            let meters = self
                .supply_points
                .range((*member, [0; 32])..=(*member, [0xff; 32]))
                .map(|(_, meter)| *meter);
            for meter in meters {
                for ((_, interval), r) in self.reports.range((meter, first)..(meter, end)) {
                    let cell = ((interval - first) / per_hour) as usize * n + i;
                    injected[cell] = injected[cell]
                        .checked_add(r.produced_wh)
                        .ok_or(Reject::Overflow)?;
                    withdrawn[cell] = withdrawn[cell]
                        .checked_add(r.consumed_wh)
                        .ok_or(Reject::Overflow)?;
                }
            }
        }
        Ok((injected, withdrawn))
    }

    /// Kind 22: RESCoin issued to the treasury, signed by a member or the operator and
    /// co-signed by more than two thirds of the registered members (each a valid signature
    /// over [`crate::cer::issuance_message`] for this chain and this transaction id), within
    /// the cap fixed when the CER was opened.
    fn issuance(&mut self, ctx: &MarketCtx, id: u128, body: &IssuanceBody) -> Result<(), Reject> {
        if ctx.role != Role::Member && ctx.role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        self.cer_params()?;
        if body.amount == 0 {
            return Err(Reject::ZeroAmount);
        }
        let message =
            crate::cer::issuance_message(self.config.chain_id, id, body.amount, &body.reference);
        let mut seen: BTreeSet<PublicKey> = BTreeSet::new();
        for c in &body.cosignatures {
            if self.role_of(&c.member) != Some(Role::Member) {
                return Err(Reject::UnknownMember);
            }
            if !seen.insert(c.member) {
                return Err(Reject::DuplicateCosigner);
            }
            let verified = self.verifying_keys.get(&c.member).is_some_and(|vk| {
                vk.verify_strict(&message, &Signature::from_bytes(&c.signature))
                    .is_ok()
            });
            if !verified {
                return Err(Reject::BadCosignature);
            }
        }
        let members = self
            .accounts
            .values()
            .filter(|a| a.role == Role::Member)
            .count();
        if 3 * seen.len() <= 2 * members {
            return Err(Reject::IssuanceQuorum);
        }
        if body.amount > self.cer.issuance_room_base() {
            return Err(Reject::IssuanceCapExceeded);
        }
        let minted = self
            .totals
            .minted
            .checked_add(body.amount)
            .ok_or(Reject::Overflow)?;
        let treasury = self.config.treasury;
        self.totals.minted = minted;
        self.credit(&treasury, body.amount);
        self.cer.issued_base += body.amount;
        self.cer.issuances.push(IssuanceRecord {
            id,
            height: ctx.height,
            amount: body.amount,
            reference: body.reference.clone(),
            cosigners: seen.len() as u32,
        });
        Ok(())
    }
}
