//! Grid fees on peer-to-peer trades, paid by the buyer on top of the seller's price.
//!
//! Grid Singularity's rule (grid-fee-accounting): a seller never receives less than its offer
//! and a buyer never pays more than its bid, *fees included*. So a bid with limit `b` can only
//! match a seller price `p` with `p + fee(p) ≤ b`; the largest such `p` is the bid's
//! [`GridFee::net_limit`], and every mechanism clears on net limits.

use crate::Price;
use serde::{Deserialize, Serialize};

/// A grid (network) fee per traded MWh, paid by the buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GridFee {
    /// No fee.
    #[default]
    None,
    /// A constant fee per MWh (must be ≥ 0).
    Constant(Price),
    /// A percentage of the seller's price, in basis points (500 = 5 %); zero on prices ≤ 0.
    Percent { basis_points: u32 },
}

impl GridFee {
    /// The fee per MWh on a trade at seller price `price`.
    ///
    /// Rounding: a percentage fee is `price × bp / 10000` rounded half up to the milli-euro/MWh
    /// (price > 0 here, so half up = half away from zero). The fee is never negative.
    pub fn fee_for(self, price: Price) -> Price {
        match self {
            GridFee::None => Price::ZERO,
            GridFee::Constant(c) => Price(c.0.max(0)),
            GridFee::Percent { basis_points } => {
                if price.0 <= 0 {
                    return Price::ZERO;
                }
                let num = i128::from(price.0) * i128::from(basis_points);
                Price(((num + 5_000) / 10_000) as i64)
            }
        }
    }

    /// What the buyer pays per MWh at seller price `price`.
    pub fn buyer_price(self, price: Price) -> Price {
        price + self.fee_for(price)
    }

    /// The highest seller price `p` with `p + fee(p) ≤ bid_limit`. `p + fee(p)` is strictly
    /// increasing in `p`, so it exists and is unique.
    pub fn net_limit(self, bid_limit: Price) -> Price {
        match self {
            GridFee::None => bid_limit,
            GridFee::Constant(c) => bid_limit - Price(c.0.max(0)),
            GridFee::Percent { basis_points } => {
                if bid_limit.0 <= 0 {
                    return bid_limit;
                }
                // Start from the real-valued answer and correct for the fee's rounding.
                let denom = 10_000i128 + i128::from(basis_points);
                let mut p = Price((i128::from(bid_limit.0) * 10_000 / denom) as i64);
                while self.buyer_price(Price(p.0 + 1)) <= bid_limit {
                    p = Price(p.0 + 1);
                }
                while p.0 > 0 && self.buyer_price(p) > bid_limit {
                    p = Price(p.0 - 1);
                }
                p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grid_singularity_percentage_example() {
        // gsy-e percentage-fees: 0.10 EUR/kWh + 5 % = 0.105 EUR/kWh (100 → 105 EUR/MWh).
        let fee = GridFee::Percent { basis_points: 500 };
        assert_eq!(fee.buyer_price(Price(100_000)), Price(105_000));
        assert_eq!(fee.net_limit(Price(105_000)), Price(100_000));
        let c = GridFee::Constant(Price(10_000));
        assert_eq!(c.net_limit(Price(120_000)), Price(110_000));
        assert_eq!(c.buyer_price(Price(110_000)), Price(120_000));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn net_limit_is_the_highest_affordable_seller_price(
            bid in -100_000i64..5_000_000, bp in 0u32..5_000, c in 0i64..100_000, pct in any::<bool>()
        ) {
            let fee = if pct { GridFee::Percent { basis_points: bp } } else { GridFee::Constant(Price(c)) };
            let p = fee.net_limit(Price(bid));
            prop_assert!(fee.buyer_price(p) <= Price(bid));
            prop_assert!(fee.buyer_price(Price(p.0 + 1)) > Price(bid));
        }
    }
}
