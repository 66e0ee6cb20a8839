//! `scg-settle`: settles a simulated year ([`scg_sim::SimResult`]) on the RESCoin ledger.
//!
//! Why a crate of its own: `scg-ledger`'s settlement takes plain inputs (readings, the market's
//! trades with their prices and fees, CER payouts per interval) so that a live node can feed it
//! too; the ledger must not depend on the simulator, and the simulator (a core crate) should
//! not carry ed25519 and redb. This crate is the one place that knows both and keeps the graph
//! acyclic: `scg-ledger` ← `scg-settle` → `scg-sim`.
//!
//! What it does per step and prosumer:
//! - meter readings: PV, wind, battery (discharge, charge), EV charger (V2G, charging; the
//!   swap station's energy leaves with the swapped batteries, so it is plain consumption at the
//!   supply point) and the supply point (export = grid + P2P export, import = grid + P2P import);
//! - trades: with a community market, the market's own trades with its exact integer prices
//!   and fees (milli-euro/MWh × 1000 = base units/kWh at the 1 RES = 1 EUR peg: no rounding).
//!   Pro-rata sharing has no pairs, so each step's buyers are matched to its sellers in
//!   scenario order (north-west corner rule) at the internal price;
//! - the CER allocation of the year, paid in the last interval.
//!
//! **Layout.** From [`Policy::compact_from_members`] members on (50 by default) the year is
//! settled in the ledger's compact layout (`scg_ledger::day`: one signed record per member and
//! day with its packed readings and day figures, member aggregates in state); smaller
//! communities, the built-in scenario among them, keep the per-record layout (a meter report
//! per device and interval, two records per trade), so their ledgers and goldens are unchanged.
//! Both layouts give every member the same RESCoin and certified Wh (tests in scg-ledger).
//!
//! Every float becomes an integer through `scg_units` (`Wh::from_kwh`, `Rescoin::from_eur`);
//! a negative flow or a trade the meters do not cover is an error naming the step and member.
//! Never does I/O.
//!
//! **CER: the ledger's integer rule, one payout a year.** The payouts are computed by
//! `scg_ledger::cer::CerTally` — the very rule a member chain's period close (kind 21) runs on
//! the readings it holds — from the supply-point readings settled here (the rounded Wh of each
//! step, summed to hours; injection = export, withdrawal = import, P2P included) at the
//! scenario's CER rule and hourly zonal prices in milli-EUR/MWh ([`cer_rule`],
//! [`zonal_hourly_milli`]), so `scg simulate`'s ledger and a chain fed the same readings pay
//! the same base units by construction. The rule is hourly and each hour is divided on its
//! own, so the year's allocation is the sum of any periods' (a chain closing months pays each
//! member, over the year, exactly this). Each member is paid its year once, in the last
//! interval (kind 10). The summary's float allocation (`CerMemberResult::allocated_eur`, the
//! same rule on unrounded kWh) agrees up to the Wh rounding of the readings (tested in
//! `tests/builtin.rs`); it is no longer equal to the base unit.
//!
//! **Pro-rata sharing reconciles to the Wh, not to the base unit of the summary's EUR.** With
//! a market, the market's own integer money (`MarketYear::paid_nano`, `received_nano`) is what
//! the summary reports and what the ledger pays, equal to the base unit. Pro-rata sharing has
//! no money of its own in the simulation: the summary's P2P EUR figures are `f64` kWh times the
//! internal price, while the ledger settles integer Wh (each member's step energy rounded on its
//! own by `Wh::from_kwh`, paired north-west corner), each trade's cost rounded down to the base
//! unit. They differ by the Wh rounding — each member's step energy is within half a Wh of the
//! float, and when the rounded totals of sellers and buyers differ (by at most half a Wh per
//! member) the unmatched Wh stay with the grid — at the internal price, plus less than one base
//! unit per trade. The per-prosumer `ledger` object of `summary.json`
//! (`p2p_paid_res`, `p2p_received_res`) is read from the ledger and is exact; making the EUR
//! figures equal too would need the simulator's summary to be computed from these integers.
//! What is exact under pro-rata (tested on random scenarios): every step's trades carry
//! `min(sold Wh, bought Wh)` of the members' rounded P2P energy at the internal price.

use scg_ledger::DeviceType;
use scg_ledger::cer::{CerRule, CerTally, SizeClass};
pub use scg_ledger::settlement::Layout;
use scg_ledger::settlement::{
    self, CerPayout, CommunityYear, IntervalInput, MeterReading, P2pTrade, SettledYear,
};
use scg_sim::SimResult;
use scg_units::{Eur, Kwh, Rescoin, Wh};

/// Errors of the settlement of a simulated year.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// A value of the simulated year that cannot go on the ledger.
    #[error("settlement input, step {interval}, member '{member}', {quantity}: {problem}")]
    Input {
        /// Step (interval) index.
        interval: usize,
        /// Member (prosumer) id.
        member: String,
        /// Which quantity.
        quantity: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The ledger refused the input (bad input it detected, or a bug).
    #[error(transparent)]
    Ledger(#[from] scg_ledger::LedgerError),
}

/// Settlement policy: the integers the community chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// RESCoin base units minted per renewable Wh.
    pub mint_rate_base_per_wh: u128,
    /// Moved from the treasury to every member at the start.
    pub opening_balance_base: u128,
    /// Minted to the treasury at genesis.
    pub treasury_endowment_base: u128,
    /// Communities of at least this many members settle in the compact layout
    /// ([`Layout::Compact`]: one record per member and day); smaller ones, the built-in
    /// scenario among them, in the per-record layout.
    pub compact_from_members: usize,
}

/// Default of [`Policy::compact_from_members`]: the size from which `scg simulate` also
/// switches to the city report layout; the run's estimate (`scg_sim::check::estimate`) uses
/// the same constant.
pub const COMPACT_FROM_MEMBERS: usize = scg_sim::check::COMPACT_LEDGER_FROM_MEMBERS;

impl Default for Policy {
    fn default() -> Self {
        Self {
            mint_rate_base_per_wh: settlement::DEFAULT_MINT_RATE_BASE_PER_WH,
            opening_balance_base: settlement::DEFAULT_OPENING_BALANCE_BASE,
            treasury_endowment_base: settlement::DEFAULT_TREASURY_ENDOWMENT_BASE,
            compact_from_members: COMPACT_FROM_MEMBERS,
        }
    }
}

impl Policy {
    /// The layout a community of `members` members settles in.
    pub fn layout(&self, members: usize) -> Layout {
        if members >= self.compact_from_members {
            Layout::Compact
        } else {
            Layout::PerRecord
        }
    }
}

/// Settle a simulated year: [`community_year`] then [`settlement::settle_year_with`] in the
/// policy's layout for the community's size.
pub fn settle(
    result: &SimResult,
    internal_price_eur_per_mwh: f64,
    policy: &Policy,
) -> Result<SettledYear, SettleError> {
    let year = community_year(result, internal_price_eur_per_mwh, policy)?;
    let layout = policy.layout(year.members.len());
    Ok(settlement::settle_year_with(&year, layout)?)
}

fn input_error(t: usize, member: &str, quantity: &str, problem: String) -> SettleError {
    SettleError::Input {
        interval: t,
        member: member.to_owned(),
        quantity: quantity.to_owned(),
        problem,
    }
}

/// Energy of a step at `kw` as ledger Wh (the one rounding point), refusing negatives.
fn step_wh(kw: f64, dt_h: f64, at: (usize, &str, &str)) -> Result<u64, SettleError> {
    let (t, member, quantity) = at;
    let wh = Wh::from_kwh(Kwh(kw * dt_h))
        .map_err(|e| input_error(t, member, quantity, e.to_string()))?;
    u64::try_from(wh.0).map_err(|_| {
        input_error(
            t,
            member,
            quantity,
            format!("negative energy {kw} kW over {dt_h} h"),
        )
    })
}

/// The settlement input of a simulated year.
pub fn community_year(
    result: &SimResult,
    internal_price_eur_per_mwh: f64,
    policy: &Policy,
) -> Result<CommunityYear, SettleError> {
    let grid = &result.grid;
    let members: Vec<String> = result.prosumers.iter().map(|p| p.id.clone()).collect();
    let mut intervals = Vec::with_capacity(grid.len());
    for t in 0..grid.len() {
        intervals.push(IntervalInput {
            readings: readings(result, t)?,
            trades: Vec::new(),
            cer: Vec::new(),
        });
    }
    match &result.community.market {
        Some(market) => market_trades(result, market, &mut intervals)?,
        None => pro_rata_trades(result, internal_price_eur_per_mwh, &mut intervals)?,
    }
    let cer = cer_payouts(result, &intervals)?;
    if let Some(last) = intervals.last_mut() {
        last.cer = cer;
    }
    let start = grid.unix_seconds(0);
    Ok(CommunityYear {
        seed: result.seed,
        members,
        mint_rate_base_per_wh: policy.mint_rate_base_per_wh,
        start_timestamp_s: u64::try_from(start).map_err(|_| {
            scg_ledger::LedgerError::Settlement(format!(
                "the year starts before 1970 (unix time {start})"
            ))
        })?,
        interval_s: u64::from(grid.step_minutes()) * 60,
        opening_balance_base: policy.opening_balance_base,
        treasury_endowment_base: policy.treasury_endowment_base,
        intervals,
    })
}

/// Every prosumer's meter readings of step `t` (devices with energy only).
fn readings(result: &SimResult, t: usize) -> Result<Vec<MeterReading>, SettleError> {
    let dt = result.grid.step_hours();
    let mut out = Vec::new();
    for p in &result.prosumers {
        let f = &p.flows;
        let at = |v: &[f64]| v.get(t).copied().unwrap_or(0.0);
        let devices: [(DeviceType, f64, f64); 5] = [
            (DeviceType::Pv, at(&f.pv_kw), 0.0),
            (DeviceType::Wind, at(&f.wind_kw), 0.0),
            (
                DeviceType::Battery,
                at(&f.battery_out_kw),
                at(&f.battery_in_kw),
            ),
            (DeviceType::EvCharger, at(&f.v2g_kw), at(&p.ev.charge_kw)),
            (
                DeviceType::SupplyPoint,
                at(&f.grid_export_kw) + at(&f.p2p_export_kw),
                at(&f.grid_import_kw) + at(&f.p2p_import_kw),
            ),
        ];
        for (device, produced_kw, consumed_kw) in devices {
            let produced_wh = step_wh(produced_kw, dt, (t, &p.id, device.name()))?;
            let consumed_wh = step_wh(consumed_kw, dt, (t, &p.id, device.name()))?;
            if produced_wh > 0 || consumed_wh > 0 {
                out.push(MeterReading {
                    member: p.id.clone(),
                    device,
                    produced_wh,
                    consumed_wh,
                });
            }
        }
    }
    Ok(out)
}

/// Base units per kWh of an exact market price (milli-euro per MWh): × 1000, no rounding.
fn market_price(milli: i64, at: (usize, &str, &str)) -> Result<u128, SettleError> {
    let (t, member, quantity) = at;
    u128::try_from(milli).map(|m| m * 1000).map_err(|_| {
        input_error(
            t,
            member,
            quantity,
            format!("negative price {milli} milli-EUR/MWh"),
        )
    })
}

/// The market's own trades, each in its step.
fn market_trades(
    result: &SimResult,
    market: &scg_sim::market_stage::MarketYear,
    intervals: &mut [IntervalInput],
) -> Result<(), SettleError> {
    let id = |i: usize, t: usize| -> Result<&str, SettleError> {
        result
            .prosumers
            .get(i)
            .map(|p| p.id.as_str())
            .ok_or_else(|| input_error(t, &format!("#{i}"), "trade", "no such prosumer".into()))
    };
    for tr in &market.trades {
        let (seller, buyer) = (id(tr.seller, tr.step)?, id(tr.buyer, tr.step)?);
        let energy_wh = u64::try_from(tr.energy_wh).map_err(|_| {
            input_error(
                tr.step,
                seller,
                "trade energy",
                format!("negative energy {} Wh", tr.energy_wh),
            )
        })?;
        let interval = intervals
            .get_mut(tr.step)
            .ok_or_else(|| input_error(tr.step, seller, "trade", "step outside the year".into()))?;
        interval.trades.push(P2pTrade {
            buyer: buyer.to_owned(),
            seller: seller.to_owned(),
            energy_wh,
            price_base_per_kwh: market_price(
                tr.price_milli_eur_per_mwh,
                (tr.step, seller, "trade price"),
            )?,
            grid_fee_base_per_kwh: market_price(
                tr.fee_milli_eur_per_mwh,
                (tr.step, buyer, "grid fee"),
            )?,
        });
    }
    Ok(())
}

/// Pro-rata sharing: each step's buyers matched to its sellers in scenario order at the
/// internal price (north-west corner rule: conserves every Wh both sides metered; when the
/// members' separately rounded Wh differ, the unmatched Wh — at most one per member and step —
/// stays with the grid).
fn pro_rata_trades(
    result: &SimResult,
    internal_price_eur_per_mwh: f64,
    intervals: &mut [IntervalInput],
) -> Result<(), SettleError> {
    let first = result.prosumers.first().map_or("", |p| p.id.as_str());
    let price = Rescoin::from_eur(Eur(internal_price_eur_per_mwh / 1000.0))
        .map_err(|e| input_error(0, first, "internal price", e.to_string()))?
        .0;
    let dt = result.grid.step_hours();
    for (t, interval) in intervals.iter_mut().enumerate() {
        let mut sellers = Vec::new();
        let mut buyers = Vec::new();
        for p in &result.prosumers {
            let at = |v: &[f64]| v.get(t).copied().unwrap_or(0.0);
            let out_wh = step_wh(at(&p.flows.p2p_export_kw), dt, (t, &p.id, "p2p export"))?;
            let in_wh = step_wh(at(&p.flows.p2p_import_kw), dt, (t, &p.id, "p2p import"))?;
            if out_wh > 0 {
                sellers.push((p.id.as_str(), out_wh));
            }
            if in_wh > 0 {
                buyers.push((p.id.as_str(), in_wh));
            }
        }
        interval.trades = pair_trades(&mut buyers, &mut sellers, price);
    }
    Ok(())
}

/// North-west corner matching of buyers to sellers: conserves every Wh that both sides have.
fn pair_trades(
    buyers: &mut [(&str, u64)],
    sellers: &mut [(&str, u64)],
    price: u128,
) -> Vec<P2pTrade> {
    let mut trades = Vec::new();
    let (mut b, mut s) = (0, 0);
    while b < buyers.len() && s < sellers.len() {
        let energy_wh = buyers[b].1.min(sellers[s].1);
        if energy_wh > 0 {
            trades.push(P2pTrade {
                buyer: buyers[b].0.to_owned(),
                seller: sellers[s].0.to_owned(),
                energy_wh,
                price_base_per_kwh: price,
                grid_fee_base_per_kwh: 0,
            });
        }
        buyers[b].1 -= energy_wh;
        sellers[s].1 -= energy_wh;
        if buyers[b].1 == 0 {
            b += 1;
        }
        if sellers[s].1 == 0 {
            s += 1;
        }
    }
    trades
}

/// The scenario's CER rule in ledger integers: prices to the milli-EUR/MWh (the market's
/// rounding point, `scg_market::Price::from_eur_per_mwh`), the producers' share to the basis
/// point (nearest).
pub fn cer_rule(params: &scg_sim::cer::CerParams) -> Result<CerRule, SettleError> {
    let milli = |what: &str, eur_per_mwh: f64| -> Result<u64, SettleError> {
        scg_market::Price::from_eur_per_mwh(eur_per_mwh)
            .map_err(|e| e.to_string())
            .and_then(|p| u64::try_from(p.0).map_err(|_| format!("negative: {eur_per_mwh}")))
            .map_err(|e| input_error(0, "", what, e))
    };
    let share = params.producer_share * f64::from(scg_ledger::cer::BASIS_POINTS);
    if !(0.0..=f64::from(scg_ledger::cer::BASIS_POINTS)).contains(&share) {
        return Err(input_error(
            0,
            "",
            "CER producer share",
            format!("{} is not a fraction in [0, 1]", params.producer_share),
        ));
    }
    Ok(CerRule {
        size_class: match params.size_class {
            scg_sim::cer::PlantSizeClass::UpTo200Kw => SizeClass::UpTo200Kw,
            scg_sim::cer::PlantSizeClass::From200To600Kw => SizeClass::From200To600Kw,
            scg_sim::cer::PlantSizeClass::Over600Kw => SizeClass::Over600Kw,
        },
        pv_bonus_milli_eur_per_mwh: milli("CER PV bonus", params.pv_bonus_eur_per_mwh)?,
        valorisation_milli_eur_per_mwh: milli("CER valorisation", params.valorisation_eur_per_mwh)?,
        // In [0, 10000] (checked above), so the cast is exact after rounding.
        producer_share_bp: share.round() as u16,
    })
}

/// The year's hourly zonal prices (the mean of each hour's steps, as the simulator's CER
/// uses them) in milli-EUR/MWh, the market's rounding point: what an operator posts on a
/// member chain (kind 20) for the same year.
pub fn zonal_hourly_milli(result: &SimResult) -> Result<Vec<i64>, SettleError> {
    result
        .zonal_hourly_eur_per_mwh
        .iter()
        .enumerate()
        .map(|(h, p)| {
            scg_market::Price::from_eur_per_mwh(*p)
                .map(|p| p.0)
                .map_err(|e| input_error(h, "", "zonal price", e.to_string()))
        })
        .collect()
}

/// The year's CER by the ledger's integer rule over the supply-point readings of `intervals`
/// (members in scenario order; a last partial hour stays open, as in the simulator). `None`
/// when the community is not a CER.
pub fn cer_tally(
    result: &SimResult,
    intervals: &[IntervalInput],
) -> Result<Option<CerTally>, SettleError> {
    let Some(params) = &result.community.cer_params else {
        return Ok(None);
    };
    let rule = cer_rule(params)?;
    let zonal = zonal_hourly_milli(result)?;
    let position: std::collections::BTreeMap<&str, usize> = result
        .prosumers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let n = result.prosumers.len();
    let per_hour = result.grid.steps_per_hour().max(1);
    let mut tally = CerTally::new(n);
    let (mut injected, mut withdrawn) = (vec![0u64; n], vec![0u64; n]);
    for (h, steps) in intervals.chunks_exact(per_hour).enumerate() {
        injected.fill(0);
        withdrawn.fill(0);
        for r in steps.iter().flat_map(|iv| &iv.readings) {
            let (DeviceType::SupplyPoint, Some(&i)) = (r.device, position.get(r.member.as_str()))
            else {
                continue;
            };
            injected[i] = injected[i].saturating_add(r.produced_wh);
            withdrawn[i] = withdrawn[i].saturating_add(r.consumed_wh);
        }
        let price = zonal
            .get(h)
            .copied()
            .ok_or_else(|| input_error(h * per_hour, "", "zonal price", "missing hour".into()))?;
        tally.add_hour(&rule, price, &injected, &withdrawn)?;
    }
    Ok(Some(tally))
}

/// The year's CER payouts per member (base units, the integer rule: [`cer_tally`]).
fn cer_payouts(
    result: &SimResult,
    intervals: &[IntervalInput],
) -> Result<Vec<CerPayout>, SettleError> {
    let Some(tally) = cer_tally(result, intervals)? else {
        return Ok(Vec::new());
    };
    Ok(result
        .prosumers
        .iter()
        .zip(&tally.allocated_base)
        .filter(|(_, a)| **a > 0)
        .map(|(p, a)| CerPayout {
            member: p.id.clone(),
            amount_base: *a,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_conserves_energy_and_never_exceeds_either_side() {
        let mut buyers = vec![("a", 700), ("b", 300)];
        let mut sellers = vec![("x", 400), ("y", 650)];
        let t = pair_trades(&mut buyers, &mut sellers, 1);
        let pairs: Vec<(&str, &str, u64)> = t
            .iter()
            .map(|t| (t.buyer.as_str(), t.seller.as_str(), t.energy_wh))
            .collect();
        assert_eq!(pairs, [("a", "x", 400), ("a", "y", 300), ("b", "y", 300)]);
        assert_eq!(
            sellers[1].1, 50,
            "what buyers did not take stays with the seller"
        );
    }

    #[test]
    fn market_prices_map_exactly_and_refuse_negatives() {
        // 123.456 EUR/MWh = 0.123456 EUR/kWh = 123,456,000 nano-euro per kWh.
        assert_eq!(market_price(123_456, (0, "a", "p")).ok(), Some(123_456_000));
        let e = market_price(-1, (7, "flat", "trade price"))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("step 7") && e.contains("'flat'")));
    }

    #[test]
    fn negative_flows_are_errors_naming_step_and_member() {
        let e = step_wh(-0.01, 1.0, (12, "school", "pv"))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.is_some_and(|e| e.contains("step 12") && e.contains("'school'") && e.contains("pv"))
        );
        // Float noise below half a Wh rounds to zero, not to an error.
        assert_eq!(step_wh(-1e-12, 1.0, (0, "a", "pv")).ok(), Some(0));
    }
}
