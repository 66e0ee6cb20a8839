//! The community market and the Virtual Power Plant (VPP).
//!
//! - [`clear()`]: peer-to-peer clearing of bids and offers per interval — pay-as-clear
//!   (uniform price, maximum volume), pay-as-bid (continuous), pay-as-offer (one-sided) — with
//!   the main grid as fallback counterpart (retail / feed-in, "surplus to the grid first" at
//!   peak) and grid fees paid by the buyer ([`GridFee`]).
//! - [`community`]: the one-call API the simulation uses each step: prosumers' surplus and
//!   deficit in kWh in, trades and per-prosumer P2P/grid energy and money out.
//! - [`agent`]: bidding strategies that turn forecasts into orders (Grid Singularity's linear
//!   price ramps; a forecast- and battery-aware agent).
//! - [`order_file`]: order books from CSV or JSON text (`scg market clear` reads them).
//! - [`settlement`]: post-delivery settlement of traded against metered energy.
//! - [`vpp`]: the community's flexibility as a VPP: positions per interval, GME MGP and MI-A
//!   bids, Terna MSD/UVAM offers, imbalance accounting.
//!
//! Energy is integer [`Wh`](scg_units::Wh), prices integer milli-euro/MWh ([`Price`]), money
//! integer nano-euro ([`NanoEur`]); see [`price`] for the one rounding rule.
//!
//! This crate never does I/O (no files, clock, sockets, printing or unseeded randomness) and
//! never uses hashed collections: everything it returns is a deterministic function of its
//! arguments.

pub mod agent;
mod clear;
pub mod community;
mod fee;
mod order;
pub mod order_file;
pub mod price;
pub mod settlement;
mod trade;
pub mod vpp;

pub use clear::{
    ClearingConfig, Fill, GridCounterpart, IntervalOutcome, MarketOutcome, Mechanism, clear,
};
pub use fee::GridFee;
pub use order::{GRID_ID, Order, Side, Source, validate_orders};
pub use price::{NanoEur, Price};
pub use trade::{Trade, TradeId, TradeKind, trade_id};

/// Errors of the market crate: bad orders or parameters, named by order id or field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MarketError {
    /// An order is malformed.
    #[error("order {id:?}: {message}")]
    InvalidOrder { id: String, message: String },
    /// Two orders of one interval share an id.
    #[error("duplicate order id {id:?} in interval {interval}")]
    DuplicateOrder { id: String, interval: u32 },
    /// A member's own bid and offer cross in one interval: refused (see [`validate_orders`]).
    #[error(
        "self-trade: bid {bid:?} and offer {offer:?} are both from {prosumer:?} in interval \
         {interval} and cross (bid price >= offer price), so the member could be matched with \
         itself; net them into one order"
    )]
    SelfTrade {
        prosumer: String,
        interval: u32,
        bid: String,
        offer: String,
    },
    /// An order-book file is malformed: file, line (for JSON also the item), what was found
    /// and what was expected (see [`order_file`]).
    #[error("{file}:{location}: {message}")]
    OrderFile {
        file: String,
        location: String,
        message: String,
    },
    /// A parameter or input series is unusable.
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    /// A unit conversion failed (non-finite or out-of-range kWh).
    #[error(transparent)]
    Units(#[from] scg_units::UnitsError),
}
