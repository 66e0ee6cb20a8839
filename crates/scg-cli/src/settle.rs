//! Glue from a simulated year to the RESCoin ledger: meter readings, pairwise P2P trades and
//! CER payouts per interval, in integers (the one rounding point is `scg_units::Wh::from_kwh`).
//!
//! Choices (documented in README): renewable production mints 0.1 RES per kWh; 1 RES = 1 EUR.
//! With a community market, the ledger gets the market's own trades (pairs, prices, grid fees).
//! Pro-rata sharing has no pairs, so each step's buyers are matched to its sellers in scenario
//! order (north-west corner rule, conserving every Wh) at the internal price. The year's CER
//! allocation is paid in the last interval.

use scg_ledger::DeviceType;
use scg_ledger::settlement::{CerPayout, CommunityYear, IntervalInput, MeterReading, P2pTrade};
use scg_sim::SimResult;
use scg_units::{Kwh, Wh};

/// RESCoin base units minted per renewable Wh (0.1 RES per kWh).
pub const MINT_RATE_BASE_PER_WH: u128 = 100_000;
/// RESCoin per euro for P2P payments and the CER.
pub const RESCOIN_PER_EUR: f64 = 1.0;

fn wh(kw: f64, dt_h: f64) -> anyhow::Result<u64> {
    let w = Wh::from_kwh(Kwh(kw * dt_h))?;
    Ok(u64::try_from(w.0.max(0))?)
}

/// The settlement input of a simulated year.
pub fn community_year(
    result: &SimResult,
    internal_price_eur_per_mwh: f64,
) -> anyhow::Result<CommunityYear> {
    let grid = &result.grid;
    let dt = grid.step_hours();
    let price = scg_ledger::settlement::price_base_per_kwh(
        internal_price_eur_per_mwh.max(0.0),
        RESCOIN_PER_EUR,
    )?;
    let members: Vec<String> = result.prosumers.iter().map(|p| p.id.clone()).collect();
    let mut intervals = Vec::with_capacity(grid.len());
    for t in 0..grid.len() {
        let mut readings = Vec::new();
        let mut sellers = Vec::new();
        let mut buyers = Vec::new();
        for p in &result.prosumers {
            let f = &p.flows;
            let at = |v: &[f64]| v.get(t).copied().unwrap_or(0.0);
            let mut reading = |device, produced_kw: f64, consumed_kw: f64| -> anyhow::Result<()> {
                let (produced_wh, consumed_wh) = (wh(produced_kw, dt)?, wh(consumed_kw, dt)?);
                if produced_wh > 0 || consumed_wh > 0 {
                    readings.push(MeterReading {
                        member: p.id.clone(),
                        device,
                        produced_wh,
                        consumed_wh,
                    });
                }
                Ok(())
            };
            reading(DeviceType::Pv, at(&f.pv_kw), 0.0)?;
            reading(DeviceType::Wind, at(&f.wind_kw), 0.0)?;
            reading(
                DeviceType::Battery,
                at(&f.battery_out_kw),
                at(&f.battery_in_kw),
            )?;
            reading(
                DeviceType::SupplyPoint,
                at(&f.grid_export_kw) + at(&f.p2p_export_kw),
                at(&f.grid_import_kw) + at(&f.p2p_import_kw),
            )?;
            let (out_wh, in_wh) = (wh(at(&f.p2p_export_kw), dt)?, wh(at(&f.p2p_import_kw), dt)?);
            if out_wh > 0 {
                sellers.push((p.id.clone(), out_wh));
            }
            if in_wh > 0 {
                buyers.push((p.id.clone(), in_wh));
            }
        }
        let trades = pair_trades(&mut buyers, &mut sellers, price);
        intervals.push(IntervalInput {
            readings,
            trades,
            cer: Vec::new(),
        });
    }
    if let Some(last) = intervals.last_mut() {
        for (p, m) in result.prosumers.iter().zip(&result.community.cer.members) {
            let amount_base = (m.allocated_eur * RESCOIN_PER_EUR * 1e9).round();
            if amount_base >= 1.0 {
                last.cer.push(CerPayout {
                    member: p.id.clone(),
                    amount_base: amount_base as u128,
                });
            }
        }
    }
    Ok(CommunityYear {
        seed: result.seed,
        members,
        mint_rate_base_per_wh: MINT_RATE_BASE_PER_WH,
        start_timestamp_s: u64::try_from(grid.unix_seconds(0)).unwrap_or(0),
        interval_s: u64::from(grid.step_minutes()) * 60,
        opening_balance_base: 1_000 * 1_000_000_000,
        treasury_endowment_base: 1_000_000_000 * 1_000_000_000,
        intervals,
    })
}

/// North-west corner matching of buyers to sellers: conserves every Wh that both sides have.
fn pair_trades(
    buyers: &mut [(String, u64)],
    sellers: &mut [(String, u64)],
    price: u128,
) -> Vec<P2pTrade> {
    let mut trades = Vec::new();
    let (mut b, mut s) = (0, 0);
    while b < buyers.len() && s < sellers.len() {
        let energy_wh = buyers[b].1.min(sellers[s].1);
        if energy_wh > 0 {
            trades.push(P2pTrade {
                buyer: buyers[b].0.clone(),
                seller: sellers[s].0.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_conserves_energy_and_never_exceeds_either_side() {
        let mut buyers = vec![("a".to_owned(), 700), ("b".to_owned(), 300)];
        let mut sellers = vec![("x".to_owned(), 400), ("y".to_owned(), 650)];
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
}
