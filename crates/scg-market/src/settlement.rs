//! Post-delivery settlement: traded energy against metered energy.
//!
//! For every (prosumer, interval) with trades or a meter reading, the *traded* net export is
//! what the prosumer sold minus what it bought (P2P and grid trades alike), and the *metered*
//! net export is what its meter recorded (+ export, − import). The deviation
//! `metered − traded` is settled with the grid operator (the balance responsible), as
//! Grid Singularity's settlement market leaves residual deviations to be "penalised by the grid
//! operator":
//! - **short** (deviation < 0: delivered less than sold, or consumed more than bought) — the
//!   prosumer pays `|deviation| × shortfall` price;
//! - **long** (deviation > 0) — the prosumer is paid `deviation × excess` price.
//!
//! The default penalty prices ([`PenaltyPrices::from_tariff`]) are 150 % of retail for
//! shortfalls and 50 % of feed-in for excess, so deviating never beats trading honestly.

use crate::community::GridTariff;
use crate::{MarketError, NanoEur, Price, Trade};
use scg_units::Wh;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A meter reading for one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterReading {
    pub prosumer: String,
    pub interval: u32,
    /// + exported, − imported.
    pub net_export_wh: Wh,
}

/// The prices deviations settle at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PenaltyPrices {
    /// Paid per MWh short.
    pub shortfall: Price,
    /// Received per MWh long.
    pub excess: Price,
}

impl PenaltyPrices {
    /// 150 % of retail (rounded down) for shortfalls, 50 % of feed-in (rounded down) for
    /// excess.
    pub fn from_tariff(tariff: GridTariff) -> Self {
        Self {
            shortfall: Price((tariff.retail.0 * 3).div_euclid(2)),
            excess: Price(tariff.feed_in.0.div_euclid(2)),
        }
    }
}

/// The settlement of one prosumer in one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deviation {
    pub prosumer: String,
    pub interval: u32,
    pub traded_net_export_wh: Wh,
    pub metered_net_export_wh: Wh,
    /// metered − traded.
    pub deviation_wh: Wh,
    /// + the prosumer receives, − the prosumer pays (exact).
    pub amount: NanoEur,
}

/// Settle `trades` against `readings`. Every prosumer that traded in an interval needs a
/// reading for it; a reading without trades settles its whole metered energy. The result is
/// sorted by (interval, prosumer); the grid counterpart itself is not settled.
pub fn settle(
    trades: &[Trade],
    readings: &[MeterReading],
    prices: PenaltyPrices,
) -> Result<Vec<Deviation>, MarketError> {
    let mut traded: BTreeMap<(u32, &str), i64> = BTreeMap::new();
    for t in trades {
        if t.seller() != crate::GRID_ID {
            *traded.entry((t.interval(), t.seller())).or_default() += t.energy_wh().0;
        }
        if t.buyer() != crate::GRID_ID {
            *traded.entry((t.interval(), t.buyer())).or_default() -= t.energy_wh().0;
        }
    }
    let mut metered: BTreeMap<(u32, &str), i64> = BTreeMap::new();
    for r in readings {
        if metered
            .insert((r.interval, r.prosumer.as_str()), r.net_export_wh.0)
            .is_some()
        {
            return Err(MarketError::InvalidInput {
                field: "readings".into(),
                message: format!(
                    "two readings for prosumer {:?} in interval {}",
                    r.prosumer, r.interval
                ),
            });
        }
    }
    if let Some(((interval, prosumer), _)) = traded.iter().find(|(k, _)| !metered.contains_key(*k))
    {
        return Err(MarketError::InvalidInput {
            field: "readings".into(),
            message: format!(
                "prosumer {prosumer:?} traded in interval {interval} but has no meter reading"
            ),
        });
    }
    Ok(metered
        .iter()
        .map(|(&(interval, prosumer), &m)| {
            let t = traded.get(&(interval, prosumer)).copied().unwrap_or(0);
            let dev = m - t;
            let amount = if dev < 0 {
                -prices.shortfall.value_of(Wh(-dev))
            } else {
                prices.excess.value_of(Wh(dev))
            };
            Deviation {
                prosumer: prosumer.to_owned(),
                interval,
                traded_net_export_wh: Wh(t),
                metered_net_export_wh: Wh(m),
                deviation_wh: Wh(dev),
                amount,
            }
        })
        .collect())
}
