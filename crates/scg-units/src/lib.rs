//! Typed quantities shared by every scg crate.
//!
//! Two families live here:
//! - **physical** quantities in `f64` ([`Kw`], [`Kwh`], [`EurPerMwh`], [`Eur`]) used by the
//!   simulation physics, and
//! - **ledger** quantities in integers ([`Wh`], [`Rescoin`]) — the only forms in which energy and
//!   money may reach the ledger.
//!
//! The conversions from physics to ledger are [`Wh::from_kwh`] (energy) and [`Rescoin::from_eur`]
//! (money, at the 1 RES = 1 EUR peg): both round half away from zero through the one private
//! helper `round_half_away`, and refuse non-finite or out-of-range values. Nothing else in the
//! workspace may round a float into a ledger integer. This crate must never do I/O and never
//! depend on another scg crate.

use serde::{Deserialize, Serialize};
use std::ops::{Add, AddAssign, Mul, Sub};

/// Errors of the unit conversions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitsError {
    /// The value was NaN or infinite.
    #[error("{quantity} must be a finite number, got {value}")]
    NotFinite { quantity: &'static str, value: f64 },
    /// The value does not fit the integer representation.
    #[error("{quantity} out of range: {value}")]
    OutOfRange { quantity: &'static str, value: f64 },
}

macro_rules! physical_quantity {
    ($(#[$doc:meta])* $name:ident, $unit:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        impl $name {
            /// The unit's symbol, for labels and column names.
            pub const UNIT: &'static str = $unit;
            /// The raw value in this unit.
            pub fn value(self) -> f64 {
                self.0
            }
        }
        impl Add for $name {
            type Output = Self;
            fn add(self, rhs: Self) -> Self {
                Self(self.0 + rhs.0)
            }
        }
        impl Sub for $name {
            type Output = Self;
            fn sub(self, rhs: Self) -> Self {
                Self(self.0 - rhs.0)
            }
        }
        impl AddAssign for $name {
            fn add_assign(&mut self, rhs: Self) {
                self.0 += rhs.0;
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} {}", self.0, $unit)
            }
        }
    };
}

physical_quantity!(
    /// Power in kilowatts.
    Kw,
    "kW"
);
physical_quantity!(
    /// Energy in kilowatt-hours.
    Kwh,
    "kWh"
);
physical_quantity!(
    /// A price in euro per megawatt-hour (the unit of Italian wholesale markets).
    EurPerMwh,
    "EUR/MWh"
);
physical_quantity!(
    /// Money in euro, as computed by the physics and economics (not the ledger).
    Eur,
    "EUR"
);

impl Mul<f64> for Kw {
    type Output = Kwh;
    /// Power held for `hours` gives energy.
    fn mul(self, hours: f64) -> Kwh {
        Kwh(self.0 * hours)
    }
}

impl Mul<Kwh> for EurPerMwh {
    type Output = Eur;
    fn mul(self, energy: Kwh) -> Eur {
        Eur(self.0 * energy.0 / 1000.0)
    }
}

/// Energy in whole watt-hours: the ledger's and the market's unit of energy.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Wh(pub i64);

/// The one rounding rule from a physical float to a ledger integer: `value * scale` rounded half
/// away from zero, refused when not finite or when `|result| >= limit`.
fn round_half_away(
    quantity: &'static str,
    value: f64,
    scale: f64,
    limit: f64,
) -> Result<f64, UnitsError> {
    let scaled = value * scale;
    if !scaled.is_finite() {
        return Err(UnitsError::NotFinite { quantity, value });
    }
    let rounded = scaled.round();
    if rounded.abs() >= limit {
        return Err(UnitsError::OutOfRange { quantity, value });
    }
    Ok(rounded)
}

impl Wh {
    /// The single rounding point from physical kWh to ledger Wh: round half away from zero.
    pub fn from_kwh(energy: Kwh) -> Result<Self, UnitsError> {
        // i64 covers ±9.2e15 kWh; anything beyond is a bug upstream, reported as a value.
        let wh = round_half_away("energy (kWh)", energy.0, 1000.0, 9.0e18)?;
        Ok(Self(wh as i64))
    }

    /// Back to physical kWh (exact for |Wh| < 2^53).
    pub fn to_kwh(self) -> Kwh {
        Kwh(self.0 as f64 / 1000.0)
    }
}

/// RESCoin in integer base units. One RESCoin is `10^DECIMALS` base units.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Rescoin(pub u128);

impl Rescoin {
    /// Number of decimal places of one RESCoin.
    pub const DECIMALS: u32 = 9;
    /// Base units in one RESCoin.
    pub const ONE: Rescoin = Rescoin(10u128.pow(Self::DECIMALS));

    /// The single rounding point from physical euro to RESCoin base units at the 1 RES = 1 EUR
    /// peg: round half away from zero. Negative amounts are refused (a ledger amount is never
    /// negative), as are non-finite ones and anything of 10^27 EUR or more.
    pub fn from_eur(money: Eur) -> Result<Self, UnitsError> {
        let base = round_half_away("money (EUR)", money.0, 1e9, 1e36)?;
        if base < 0.0 {
            return Err(UnitsError::OutOfRange {
                quantity: "money (EUR), which must not be negative",
                value: money.0,
            });
        }
        Ok(Self(base as u128))
    }

    /// The amount as a decimal string with exactly [`Self::DECIMALS`] decimals and no unit,
    /// e.g. `"1.500000000"` (how `summary.json` writes ledger amounts: exact, unlike a float).
    pub fn to_decimal_string(self) -> String {
        let one = Self::ONE.0;
        format!(
            "{}.{:0width$}",
            self.0 / one,
            self.0 % one,
            width = Self::DECIMALS as usize
        )
    }

    /// Checked addition: `None` on overflow, never wraps.
    pub fn checked_add(self, rhs: Self) -> Option<Self> {
        self.0.checked_add(rhs.0).map(Self)
    }

    /// Checked subtraction: `None` when the result would be negative.
    pub fn checked_sub(self, rhs: Self) -> Option<Self> {
        self.0.checked_sub(rhs.0).map(Self)
    }
}

impl std::fmt::Display for Rescoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} RES", self.to_decimal_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wh_rounds_half_away_from_zero() {
        assert_eq!(Wh::from_kwh(Kwh(0.0005)), Ok(Wh(1)));
        assert_eq!(Wh::from_kwh(Kwh(-0.0005)), Ok(Wh(-1)));
        assert_eq!(Wh::from_kwh(Kwh(0.00049)), Ok(Wh(0)));
        assert_eq!(Wh::from_kwh(Kwh(1.2345)), Ok(Wh(1235)));
    }

    #[test]
    fn wh_at_the_half_unit() {
        // Both products land exactly on x.5 in f64, so these test the tie rule itself.
        assert_eq!(Wh::from_kwh(Kwh(0.0125)), Ok(Wh(13)));
        assert_eq!(Wh::from_kwh(Kwh(-0.0125)), Ok(Wh(-13)));
        assert_eq!(Wh::from_kwh(Kwh(0.0015)), Ok(Wh(2)));
    }

    #[test]
    fn rescoin_rounds_half_away_from_zero_at_the_half_base_unit() {
        // 0.5e-9 * 1e9 and 1.5e-9 * 1e9 are exactly 0.5 and 1.5 in f64: the tie rule itself.
        assert_eq!(Rescoin::from_eur(Eur(0.5e-9)), Ok(Rescoin(1)));
        assert_eq!(Rescoin::from_eur(Eur(0.49e-9)), Ok(Rescoin(0)));
        assert_eq!(Rescoin::from_eur(Eur(1.5e-9)), Ok(Rescoin(2)));
        assert_eq!(Rescoin::from_eur(Eur(2.5)), Ok(Rescoin(2_500_000_000)));
        assert_eq!(Rescoin::from_eur(Eur(0.0)), Ok(Rescoin(0)));
        // Rounds to zero from below: still not negative.
        assert_eq!(Rescoin::from_eur(Eur(-0.4e-9)), Ok(Rescoin(0)));
    }

    #[test]
    fn rescoin_refuses_negative_non_finite_and_huge() {
        assert!(matches!(
            Rescoin::from_eur(Eur(-1.0)),
            Err(UnitsError::OutOfRange { .. })
        ));
        assert!(matches!(
            Rescoin::from_eur(Eur(f64::INFINITY)),
            Err(UnitsError::NotFinite { .. })
        ));
        assert!(matches!(
            Rescoin::from_eur(Eur(1e28)),
            Err(UnitsError::OutOfRange { .. })
        ));
    }

    #[test]
    fn rescoin_decimal_string_is_exact() {
        assert_eq!(Rescoin(0).to_decimal_string(), "0.000000000");
        assert_eq!(
            Rescoin(u128::MAX).to_decimal_string(),
            "340282366920938463463374607431.768211455"
        );
    }

    #[test]
    fn wh_refuses_non_finite_and_huge() {
        assert!(matches!(
            Wh::from_kwh(Kwh(f64::NAN)),
            Err(UnitsError::NotFinite { .. })
        ));
        assert!(matches!(
            Wh::from_kwh(Kwh(1e17)),
            Err(UnitsError::OutOfRange { .. })
        ));
    }

    #[test]
    fn rescoin_display_has_fixed_decimals() {
        assert_eq!(Rescoin(1_500_000_000).to_string(), "1.500000000 RES");
        assert_eq!(Rescoin(7).to_string(), "0.000000007 RES");
    }

    proptest! {
        #[test]
        fn wh_round_trip_is_within_half_a_wh(kwh in -1.0e9f64..1.0e9) {
            let wh = Wh::from_kwh(Kwh(kwh)).expect("in range");
            prop_assert!((wh.to_kwh().0 - kwh).abs() <= 0.0005 + 1e-9 * kwh.abs());
        }
    }
}
