//! Integer prices and money: the market's only arithmetic on euros.
//!
//! A [`Price`] is an integer number of **milli-euro per MWh** (0.001 EUR/MWh, finer than GME's
//! published prices need for the cent). Money is [`NanoEur`], integer nano-euro. The product of
//! energy in watt-hours and a price in milli-euro per MWh is *exactly* nano-euro
//! (1 Wh × 0.001 EUR/MWh = 10⁻⁶ MWh × 10⁻³ EUR/MWh = 10⁻⁹ EUR), so **no trade amount is ever
//! rounded**. Rounding happens only where a *price* is derived:
//! - [`Price::from_eur_per_mwh`] rounds a float to the nearest milli-euro/MWh, half away from
//!   zero (the same rule as `Wh::from_kwh`);
//! - a percentage grid fee and the pay-as-clear midpoint round as documented at their
//!   definitions ([`crate::GridFee::fee_for`], [`crate::clear`]).
//!
//! One nano-euro is one RESCoin base unit when one RESCoin is pegged to one euro (RESCoin has
//! nine decimals), so trade amounts map one-to-one onto ledger amounts.

use crate::MarketError;
use scg_units::Wh;
use serde::{Deserialize, Serialize};
use std::ops::{Add, AddAssign, Neg, Sub};

/// A price in milli-euro per MWh (integer).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Price(pub i64);

/// The largest price magnitude accepted from floats, EUR/MWh (far above any market cap, far
/// below where products with energies could overflow i128).
pub const MAX_ABS_PRICE_EUR_PER_MWH: f64 = 1.0e9;

impl Price {
    /// Zero.
    pub const ZERO: Price = Price(0);

    /// The rounding point from a float price: nearest 0.001 EUR/MWh, half away from zero.
    pub fn from_eur_per_mwh(price_eur_per_mwh: f64) -> Result<Self, MarketError> {
        if !price_eur_per_mwh.is_finite() || price_eur_per_mwh.abs() > MAX_ABS_PRICE_EUR_PER_MWH {
            return Err(MarketError::InvalidInput {
                field: "price_eur_per_mwh".into(),
                message: format!(
                    "expected a finite price within ±{MAX_ABS_PRICE_EUR_PER_MWH} EUR/MWh, got {price_eur_per_mwh}"
                ),
            });
        }
        Ok(Self((price_eur_per_mwh * 1000.0).round() as i64))
    }

    /// A price from whole milli-euro per MWh.
    pub const fn from_milli(milli_eur_per_mwh: i64) -> Self {
        Self(milli_eur_per_mwh)
    }

    /// The price in milli-euro per MWh.
    pub const fn milli(self) -> i64 {
        self.0
    }

    /// The price as a float in EUR/MWh (for display and reports only).
    pub fn eur_per_mwh(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// The exact value of `energy` at this price.
    pub fn value_of(self, energy: Wh) -> NanoEur {
        NanoEur(i128::from(self.0) * i128::from(energy.0))
    }
}

impl Add for Price {
    type Output = Price;
    fn add(self, rhs: Price) -> Price {
        Price(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Price {
    type Output = Price;
    fn sub(self, rhs: Price) -> Price {
        Price(self.0.saturating_sub(rhs.0))
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:03} EUR/MWh", abs / 1000, abs % 1000)
    }
}

/// Money in integer nano-euro (10⁻⁹ EUR); signed so that settlements can charge.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NanoEur(pub i128);

impl NanoEur {
    /// Zero.
    pub const ZERO: NanoEur = NanoEur(0);
    /// Nano-euro in one euro.
    pub const PER_EUR: i128 = 1_000_000_000;

    /// The amount as a float in euro (for display and reports only).
    pub fn eur(self) -> f64 {
        self.0 as f64 / Self::PER_EUR as f64
    }
}

impl Add for NanoEur {
    type Output = NanoEur;
    fn add(self, rhs: NanoEur) -> NanoEur {
        NanoEur(self.0 + rhs.0)
    }
}

impl AddAssign for NanoEur {
    fn add_assign(&mut self, rhs: NanoEur) {
        self.0 += rhs.0;
    }
}

impl Sub for NanoEur {
    type Output = NanoEur;
    fn sub(self, rhs: NanoEur) -> NanoEur {
        NanoEur(self.0 - rhs.0)
    }
}

impl Neg for NanoEur {
    type Output = NanoEur;
    fn neg(self) -> NanoEur {
        NanoEur(-self.0)
    }
}

impl std::iter::Sum for NanoEur {
    fn sum<I: Iterator<Item = NanoEur>>(iter: I) -> NanoEur {
        NanoEur(iter.map(|m| m.0).sum())
    }
}

impl std::fmt::Display for NanoEur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let per = Self::PER_EUR as u128;
        write!(f, "{sign}{}.{:09} EUR", abs / per, abs % per)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_prices_round_half_away_from_zero() {
        assert_eq!(Price::from_eur_per_mwh(104.51).ok(), Some(Price(104_510)));
        assert_eq!(Price::from_eur_per_mwh(0.0005).ok(), Some(Price(1)));
        assert_eq!(Price::from_eur_per_mwh(-0.0005).ok(), Some(Price(-1)));
        assert_eq!(
            Price::from_eur_per_mwh(114.905680).ok(),
            Some(Price(114_906))
        );
        assert!(Price::from_eur_per_mwh(f64::NAN).is_err());
        assert!(Price::from_eur_per_mwh(2.0e9).is_err());
    }

    #[test]
    fn value_is_exact_nano_euro() {
        // 1 kWh at 100 EUR/MWh = 0.10 EUR = 10^8 nano-euro.
        assert_eq!(
            Price::from_milli(100_000).value_of(Wh(1000)),
            NanoEur(100_000_000)
        );
        // 1 Wh at 0.001 EUR/MWh = 1 nano-euro.
        assert_eq!(Price::from_milli(1).value_of(Wh(1)), NanoEur(1));
        assert_eq!(NanoEur(1_500_000_000).to_string(), "1.500000000 EUR");
        assert_eq!(Price(-1500).to_string(), "-1.500 EUR/MWh");
    }
}
