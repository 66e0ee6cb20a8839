//! Typed quantities shared by every scg crate.
//!
//! Two families live here:
//! - **physical** quantities in `f64` ([`Kw`], [`Kwh`], [`EurPerMwh`], [`Eur`]) used by the
//!   simulation physics, and
//! - **ledger** quantities in integers ([`Wh`], [`Rescoin`]) — the only forms in which energy and
//!   money may reach the ledger.
//!
//! The one conversion from physics to ledger is [`Wh::from_kwh`], which rounds half away from
//! zero and refuses non-finite or out-of-range values. This crate must never do I/O and never
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

impl Wh {
    /// The single rounding point from physical kWh to ledger Wh: round half away from zero.
    pub fn from_kwh(energy: Kwh) -> Result<Self, UnitsError> {
        let wh = energy.0 * 1000.0;
        if !wh.is_finite() {
            return Err(UnitsError::NotFinite {
                quantity: "energy (kWh)",
                value: energy.0,
            });
        }
        let rounded = wh.round();
        // i64 covers ±9.2e15 kWh; anything beyond is a bug upstream, reported as a value.
        if rounded.abs() >= 9.0e18 {
            return Err(UnitsError::OutOfRange {
                quantity: "energy (kWh)",
                value: energy.0,
            });
        }
        Ok(Self(rounded as i64))
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
        let one = Self::ONE.0;
        write!(
            f,
            "{}.{:0width$} RES",
            self.0 / one,
            self.0 % one,
            width = Self::DECIMALS as usize
        )
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
