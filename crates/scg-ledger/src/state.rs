//! The RESCoin state machine: accounts, balances, two-phase energy trades, origin certificates,
//! driven by an ordered sequence of blocks.
//!
//! [`Ledger::apply_block`] is a pure function of the previous state and the block: no clock, no
//! randomness, no I/O, ordered maps only, so every node that applies the same blocks reaches the
//! same state root. A block applies in this order: (1) pending trades whose `expires_at_s` is at
//! or before the block timestamp expire (refunded to the buyer) in `(expires_at_s, trade id)`
//! order; (2) the transactions in block order. A transaction that fails any check is recorded as
//! rejected with a [`Reject`] reason and changes nothing (not even the nonce or the id set).
//!
//! State root (`SHA-256("SCG-LEDGER/STATE/v1" || ...)`, see [`StateCommitment`]) binds three
//! Merkle trees — accounts in registration order, trades in creation order, certificates in id
//! order (leaf = `leaf(record bytes)`, updated in `O(log n)` per change) — their lengths, the
//! supply/energy totals and a history digest chaining the hash of every applied transaction.
//! [`Ledger::account_proof`] gives a light client one balance with a proof against the root.
//!
//! An invariant violation is a bug: [`Ledger::check_invariants`] reports it and callers
//! (tests, `verify`) stop; a block whose claimed roots differ from the replay poisons the ledger
//! (fail-stop), because continuing from a state nobody agreed on would be worse.

use crate::LedgerError;
use crate::batch::Batch;
use crate::block::{Block, BlockHeader, GenesisConfig, outcome_root_with_records};
use crate::cer::CerState;
use crate::codec::{DecodeError, Reader, Writer};
use crate::market::MarketState;
use crate::merkle::{Hash, MerkleLog, MerkleProof, ZERO_HASH, leaf_hash, sha256, to_hex};
use crate::tx::{
    DeviceType, MAX_PAYOUTS, PublicKey, Tx, TxBody, signing_message, tx_hash, unsigned_part,
};
use ed25519_dalek::{Signature, VerifyingKey};
use std::collections::{BTreeMap, BTreeSet};

mod cer_exec;
mod day_exec;
mod market_exec;
pub use day_exec::{MemberAggregate, MemberAggregateProof};
use market_exec::MarketCtx;

/// Account roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Role {
    /// Community operator.
    Operator = 1,
    /// Community treasury.
    Treasury = 2,
    /// Grid / DSO.
    Grid = 3,
    /// Member (prosumer).
    Member = 4,
    /// Meter (device key bound to a member).
    Meter = 5,
}

impl Role {
    /// From the record code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Operator,
            2 => Self::Treasury,
            3 => Self::Grid,
            4 => Self::Member,
            5 => Self::Meter,
            _ => return None,
        })
    }

    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Treasury => "treasury",
            Self::Grid => "grid",
            Self::Member => "member",
            Self::Meter => "meter",
        }
    }
}

/// Why a transaction was rejected. The numeric value is the result code in the outcome root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u16)]
#[non_exhaustive]
pub enum Reject {
    /// The bytes do not decode.
    Malformed = 1,
    /// The signature does not verify (or the signer key is not a valid point).
    BadSignature = 2,
    /// The id was already applied.
    DuplicateId = 3,
    /// The signer has no account.
    UnknownSigner = 4,
    /// The nonce is not the signer's next nonce.
    BadNonce = 5,
    /// The signer's role may not do this.
    WrongRole = 6,
    /// The key is already an account.
    AlreadyRegistered = 7,
    /// The key is not a usable ed25519 public key.
    InvalidKey = 8,
    /// The named member does not exist (or is not a member).
    UnknownMember = 9,
    /// The recipient account does not exist.
    UnknownAccount = 10,
    /// Meters hold no RESCoin.
    MeterCannotHold = 11,
    /// A zero amount.
    ZeroAmount = 12,
    /// Sender and recipient (or buyer and seller) are the same.
    SelfTransfer = 13,
    /// Not enough available balance.
    InsufficientFunds = 14,
    /// An amount overflows `u128`.
    Overflow = 15,
    /// This meter already reported this interval.
    DuplicateReport = 16,
    /// The trade's expiry is not after the block timestamp.
    ExpiryInPast = 17,
    /// No such trade.
    UnknownTrade = 18,
    /// The trade was already posted, voided or expired.
    TradeNotPending = 19,
    /// The signer is not allowed to resolve this trade.
    NotTradeParty = 20,
    /// Delivered Wh exceed the traded Wh.
    DeliveredExceedsTrade = 21,
    /// The seller's meter has no report for the trade interval.
    NoReportForInterval = 22,
    /// Delivered Wh exceed what the meter produced and has not already sold.
    DeliveredExceedsMetered = 23,
    /// No such certificate.
    UnknownCertificate = 24,
    /// The signer does not own the certificate.
    NotCertificateOwner = 25,
    /// The certificate holds fewer Wh.
    CertificateInsufficientWh = 26,
    /// This CER period was already distributed.
    DuplicatePeriod = 27,
    /// A certificate move exceeds the storage charge or the P2P delivery it certifies.
    CertifiedExceedsEnergy = 28,
    /// The signer holds fewer certified Wh than it moves.
    InsufficientCertifiedWh = 29,
    /// The on-chain market has not been opened.
    MarketNotOpen = 30,
    /// The on-chain market was already opened.
    MarketAlreadyOpen = 31,
    /// Market parameters are unusable (zero interval, order bound out of 1..=64, zero settle
    /// window, negative constant fee).
    InvalidMarketParams = 32,
    /// The interval does not fit the market's `u32` intervals, or its gate time overflows.
    IntervalOutOfRange = 33,
    /// A negative energy amount.
    NegativeAmount = 34,
    /// A negative limit price.
    NegativePrice = 35,
    /// A bid that declares a source.
    InvalidOrder = 36,
    /// The interval's gate has already closed (block time at or after it, or cleared).
    GateClosed = 37,
    /// The interval's gate time has not been reached.
    GateNotReached = 38,
    /// The interval was already cleared.
    IntervalAlreadyCleared = 39,
    /// The member already has the most orders allowed in this interval.
    TooManyOrders = 40,
    /// The member's offers exceed its registered capacity times the interval.
    OfferExceedsCapacity = 41,
    /// The order crosses the member's own order of the other side in this interval.
    SelfTradeOrder = 42,
    /// This interval already has a tariff.
    DuplicateTariff = 43,
    /// The market's clearing refused the book (a bug: orders are checked on entry).
    ClearingFailed = 44,
    /// Market transactions cannot be settlement-batch records.
    NotInBatch = 45,
    /// On a market chain, a renewable meter reported production without a registered
    /// capacity (kind 15).
    NoMeterCapacity = 46,
    /// On a market chain, a reading's produced Wh exceed the meter's registered capacity times
    /// the interval length.
    ReadingExceedsCapacity = 47,
    /// On a market chain, a reading for an interval that has not ended at the block time.
    ReadingInFuture = 48,
    /// On a market chain, a reading for an interval that ended more than the market's settle
    /// window before the block time.
    ReadingLongClosed = 49,
    /// The CER has not been opened (kind 19).
    CerNotOpen = 50,
    /// The CER was already opened.
    CerAlreadyOpen = 51,
    /// CER parameters are unusable (producer share above 10,000 bp, period hours outside
    /// 1..=744, a market interval that does not divide the hour, a cap below the genesis
    /// endowment).
    InvalidCerParams = 52,
    /// This market hour already has a zonal price.
    DuplicateZonalPrice = 53,
    /// An hour of the period has no zonal price.
    ZonalPriceMissing = 54,
    /// The period's readings may still arrive: its end plus the settle window has not passed.
    CerPeriodNotEnded = 55,
    /// The hour's period is already closed.
    CerPeriodClosed = 56,
    /// Once the CER is open its payouts are computed on-chain: the treasury's CER
    /// distribution (kind 10) is refused.
    CerComputedOnChain = 57,
    /// The valid co-signatures are not more than two thirds of the registered members.
    IssuanceQuorum = 58,
    /// A member co-signed twice.
    DuplicateCosigner = 59,
    /// A co-signature does not verify (another chain, another id, amount or reference).
    BadCosignature = 60,
    /// The issuance would take the endowment plus issuances above the cap.
    IssuanceCapExceeded = 61,
    /// A member day that is not after the member's last settled day, or staged twice.
    DayOutOfOrder = 62,
    /// A member day whose figures exceed what its series metered (sales beyond exports,
    /// certified Wh beyond their sources, storage releases beyond what it holds).
    DayExceedsReadings = 63,
    /// A day close whose member days do not add up (P2P Wh sold and bought per interval,
    /// money paid and received, certified Wh sold and received) or do not match the close.
    DayUnbalanced = 64,
    /// A member day or day close on a chain whose on-chain market is open.
    DayWithMarket = 65,
}

// The market and CER lists of `Reject` cut where `Reject::ALL` has them (checked when
// compiling).
const _: () = assert!(
    matches!(Reject::MARKET[0], Reject::MarketNotOpen)
        && matches!(Reject::MARKET[15], Reject::NotInBatch)
        && matches!(Reject::MARKET_READING[0], Reject::NoMeterCapacity)
        && matches!(Reject::MARKET_READING[3], Reject::ReadingLongClosed)
        && matches!(Reject::CER[0], Reject::CerNotOpen)
        && matches!(Reject::CER[11], Reject::IssuanceCapExceeded)
        && matches!(Reject::DAY[0], Reject::DayOutOfOrder)
        && matches!(Reject::DAY[3], Reject::DayWithMarket)
);

impl Reject {
    /// All reasons (for tests and tools).
    pub const ALL: [Reject; 65] = [
        Self::Malformed,
        Self::BadSignature,
        Self::DuplicateId,
        Self::UnknownSigner,
        Self::BadNonce,
        Self::WrongRole,
        Self::AlreadyRegistered,
        Self::InvalidKey,
        Self::UnknownMember,
        Self::UnknownAccount,
        Self::MeterCannotHold,
        Self::ZeroAmount,
        Self::SelfTransfer,
        Self::InsufficientFunds,
        Self::Overflow,
        Self::DuplicateReport,
        Self::ExpiryInPast,
        Self::UnknownTrade,
        Self::TradeNotPending,
        Self::NotTradeParty,
        Self::DeliveredExceedsTrade,
        Self::NoReportForInterval,
        Self::DeliveredExceedsMetered,
        Self::UnknownCertificate,
        Self::NotCertificateOwner,
        Self::CertificateInsufficientWh,
        Self::DuplicatePeriod,
        Self::CertifiedExceedsEnergy,
        Self::InsufficientCertifiedWh,
        Self::MarketNotOpen,
        Self::MarketAlreadyOpen,
        Self::InvalidMarketParams,
        Self::IntervalOutOfRange,
        Self::NegativeAmount,
        Self::NegativePrice,
        Self::InvalidOrder,
        Self::GateClosed,
        Self::GateNotReached,
        Self::IntervalAlreadyCleared,
        Self::TooManyOrders,
        Self::OfferExceedsCapacity,
        Self::SelfTradeOrder,
        Self::DuplicateTariff,
        Self::ClearingFailed,
        Self::NotInBatch,
        Self::NoMeterCapacity,
        Self::ReadingExceedsCapacity,
        Self::ReadingInFuture,
        Self::ReadingLongClosed,
        Self::CerNotOpen,
        Self::CerAlreadyOpen,
        Self::InvalidCerParams,
        Self::DuplicateZonalPrice,
        Self::ZonalPriceMissing,
        Self::CerPeriodNotEnded,
        Self::CerPeriodClosed,
        Self::CerComputedOnChain,
        Self::IssuanceQuorum,
        Self::DuplicateCosigner,
        Self::BadCosignature,
        Self::IssuanceCapExceeded,
        Self::DayOutOfOrder,
        Self::DayExceedsReadings,
        Self::DayUnbalanced,
        Self::DayWithMarket,
    ];

    /// The reasons a meter report gives only on a chain whose market is open (the reading
    /// must come from real, recent energy: [`Ledger`]'s meter report): codes 46 to 49.
    pub const MARKET_READING: &[Reject] = Self::ALL.split_at(45).1.split_at(4).0;

    /// The reasons only market transactions give (kinds 14 to 18): codes 30 to 45.
    pub const MARKET: &[Reject] = Self::ALL.split_at(29).1.split_at(16).0;

    /// The reasons only the CER's transactions give (kinds 19 to 22, and kind 10 once the
    /// CER is open): codes 50 to 61.
    pub const CER: &[Reject] = Self::ALL.split_at(49).1.split_at(12).0;

    /// The reasons only the compact layout's records give (kinds 23 and 24): codes 62 to 65.
    pub const DAY: &[Reject] = Self::ALL.split_at(61).1;

    /// Result code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// From a result code (0 is "applied", not a reason).
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl Reject {
    /// A sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Malformed => "the bytes do not decode",
            Self::BadSignature => "the signature does not verify",
            Self::DuplicateId => "the transaction id was already applied",
            Self::UnknownSigner => "the signer has no account",
            Self::BadNonce => "the nonce is not the signer's next nonce",
            Self::WrongRole => "the signer's role may not do this",
            Self::AlreadyRegistered => "the key is already registered",
            Self::InvalidKey => "the key is not a usable ed25519 public key",
            Self::UnknownMember => "the named member does not exist",
            Self::UnknownAccount => "the recipient does not exist",
            Self::MeterCannotHold => "meters hold no RESCoin",
            Self::ZeroAmount => "the amount is zero",
            Self::SelfTransfer => "sender and recipient are the same",
            Self::InsufficientFunds => "not enough available balance",
            Self::Overflow => "an amount overflows",
            Self::DuplicateReport => "this meter already reported this interval",
            Self::ExpiryInPast => "the expiry is not after the block time",
            Self::UnknownTrade => "no such trade",
            Self::TradeNotPending => "the trade is already resolved",
            Self::NotTradeParty => "the signer may not resolve this trade",
            Self::DeliveredExceedsTrade => "delivered energy exceeds the trade",
            Self::NoReportForInterval => "the meter has no report for the trade interval",
            Self::DeliveredExceedsMetered => "delivered energy exceeds unsold metered production",
            Self::UnknownCertificate => "no such certificate",
            Self::NotCertificateOwner => "the signer does not own the certificate",
            Self::CertificateInsufficientWh => "the certificate holds fewer Wh",
            Self::DuplicatePeriod => "this CER period was already distributed",
            Self::CertifiedExceedsEnergy => {
                "certified Wh exceed the uncertified storage charge or P2P delivery of the interval"
            }
            Self::InsufficientCertifiedWh => "the signer holds fewer certified Wh",
            Self::MarketNotOpen => "the market is not open",
            Self::MarketAlreadyOpen => "the market is already open",
            Self::InvalidMarketParams => "the market parameters are unusable",
            Self::IntervalOutOfRange => "the interval is out of range",
            Self::NegativeAmount => "the amount is negative",
            Self::NegativePrice => "the limit price is negative",
            Self::InvalidOrder => "a bid cannot declare a source",
            Self::GateClosed => "the interval's gate is closed",
            Self::GateNotReached => "the interval's gate time has not been reached",
            Self::IntervalAlreadyCleared => "the interval was already cleared",
            Self::TooManyOrders => "the member has the most orders allowed in this interval",
            Self::OfferExceedsCapacity => {
                "offers exceed the member's registered capacity times the interval"
            }
            Self::SelfTradeOrder => "the order crosses the member's own order of the other side",
            Self::DuplicateTariff => "this interval already has a tariff",
            Self::ClearingFailed => "the market's clearing refused the book",
            Self::NotInBatch => "market transactions cannot be batch records",
            Self::NoMeterCapacity => "the renewable meter has no registered capacity",
            Self::ReadingExceedsCapacity => {
                "the reading exceeds the meter's registered capacity times the interval"
            }
            Self::ReadingInFuture => "the reading's interval has not ended at the block time",
            Self::ReadingLongClosed => {
                "the reading's interval ended more than the settle window before the block time"
            }
            Self::CerNotOpen => "the CER is not open",
            Self::CerAlreadyOpen => "the CER is already open",
            Self::InvalidCerParams => "the CER parameters are unusable",
            Self::DuplicateZonalPrice => "this hour already has a zonal price",
            Self::ZonalPriceMissing => "an hour of the period has no zonal price",
            Self::CerPeriodNotEnded => {
                "the period's end plus the settle window has not passed at the block time"
            }
            Self::CerPeriodClosed => "the hour's incentive period is already closed",
            Self::CerComputedOnChain => {
                "the CER is computed on-chain: the treasury cannot distribute it"
            }
            Self::IssuanceQuorum => {
                "the valid co-signatures are not more than two thirds of the members"
            }
            Self::DuplicateCosigner => "a member co-signed twice",
            Self::BadCosignature => "a co-signature does not verify",
            Self::IssuanceCapExceeded => "the issuance would exceed the cap",
            Self::DayOutOfOrder => "the member day repeats or precedes a settled day",
            Self::DayExceedsReadings => "the member day's figures exceed its readings",
            Self::DayUnbalanced => "the day's member days do not add up",
            Self::DayWithMarket => "the compact layout is not used once the market is open",
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?} ({})", self.describe())
    }
}

/// An account (member, meter or a community role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Public key.
    pub key: PublicKey,
    /// Role.
    pub role: Role,
    /// Position in the account tree (registration order).
    pub index: u64,
    /// Available RESCoin base units.
    pub balance: u128,
    /// Base units reserved in pending trades (as buyer).
    pub reserved: u128,
    /// Next expected nonce.
    pub nonce: u64,
    /// Owning member (meters only).
    pub owner: Option<PublicKey>,
    /// Device type (meters only).
    pub device: Option<DeviceType>,
}

impl Account {
    /// Canonical record bytes (the account leaf is `leaf(these bytes)`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(32 + 1 + 8 + 16 + 16 + 8 + 32 + 1);
        w.bytes(&self.key);
        w.u8(self.role as u8);
        w.u64(self.index);
        w.u128(self.balance);
        w.u128(self.reserved);
        w.u64(self.nonce);
        w.bytes(&self.owner.unwrap_or([0; 32]));
        w.u8(self.device.map_or(0, |d| d as u8));
        w.buf
    }

    /// Decode record bytes (as stored).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let key = r.array("key")?;
        let role_code = r.u8("role")?;
        let role = Role::from_code(role_code).ok_or(DecodeError::Invalid {
            field: "role",
            value: u64::from(role_code),
        })?;
        let index = r.u64("index")?;
        let balance = r.u128("balance")?;
        let reserved = r.u128("reserved")?;
        let nonce = r.u64("nonce")?;
        let owner: PublicKey = r.array("owner")?;
        let device_code = r.u8("device")?;
        let device = match device_code {
            0 => None,
            c => Some(DeviceType::from_code(c).ok_or(DecodeError::Invalid {
                field: "device",
                value: u64::from(c),
            })?),
        };
        r.finish()?;
        Ok(Self {
            key,
            role,
            index,
            balance,
            reserved,
            nonce,
            owner: (role == Role::Meter).then_some(owner),
            device,
        })
    }
}

/// Status of a two-phase trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TradeStatus {
    /// Payment reserved, awaiting delivery.
    Pending = 1,
    /// Delivery posted.
    Posted = 2,
    /// Voided by the seller or operator.
    Voided = 3,
    /// Timed out.
    Expired = 4,
}

/// A P2P energy trade (the pending transfer and its resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    /// Id (the id of the trade-create transaction).
    pub id: u128,
    /// Position in the trade tree.
    pub index: u64,
    /// Buyer.
    pub buyer: PublicKey,
    /// Seller.
    pub seller: PublicKey,
    /// Delivery interval.
    pub interval: u64,
    /// Traded Wh.
    pub energy_wh: u64,
    /// Price, base units per kWh.
    pub price_base_per_kwh: u128,
    /// Grid fee, base units per kWh.
    pub fee_base_per_kwh: u128,
    /// Reserved base units (payment + fee for the full energy).
    pub reserved: u128,
    /// Expiry timestamp (s).
    pub expires_at_s: u64,
    /// Status.
    pub status: TradeStatus,
    /// Delivered Wh (posted trades).
    pub delivered_wh: u64,
    /// Paid to the seller.
    pub paid_seller: u128,
    /// Paid to the grid.
    pub paid_fee: u128,
    /// Height at which it was resolved (0 while pending).
    pub resolved_height: u64,
}

impl Trade {
    /// Canonical record bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        w.u128(self.id);
        w.u64(self.index);
        w.bytes(&self.buyer);
        w.bytes(&self.seller);
        w.u64(self.interval);
        w.u64(self.energy_wh);
        w.u128(self.price_base_per_kwh);
        w.u128(self.fee_base_per_kwh);
        w.u128(self.reserved);
        w.u64(self.expires_at_s);
        w.u8(self.status as u8);
        w.u64(self.delivered_wh);
        w.u128(self.paid_seller);
        w.u128(self.paid_fee);
        w.u64(self.resolved_height);
        w.buf
    }

    /// Decode record bytes (as stored).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let id = r.u128("id")?;
        let index = r.u64("index")?;
        let buyer = r.array("buyer")?;
        let seller = r.array("seller")?;
        let interval = r.u64("interval")?;
        let energy_wh = r.u64("energy_wh")?;
        let price_base_per_kwh = r.u128("price")?;
        let fee_base_per_kwh = r.u128("fee")?;
        let reserved = r.u128("reserved")?;
        let expires_at_s = r.u64("expires_at_s")?;
        let code = r.u8("status")?;
        let status = match code {
            1 => TradeStatus::Pending,
            2 => TradeStatus::Posted,
            3 => TradeStatus::Voided,
            4 => TradeStatus::Expired,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "status",
                    value: u64::from(code),
                });
            }
        };
        let t = Self {
            id,
            index,
            buyer,
            seller,
            interval,
            energy_wh,
            price_base_per_kwh,
            fee_base_per_kwh,
            reserved,
            expires_at_s,
            status,
            delivered_wh: r.u64("delivered_wh")?,
            paid_seller: r.u128("paid_seller")?,
            paid_fee: r.u128("paid_fee")?,
            resolved_height: r.u64("resolved_height")?,
        };
        r.finish()?;
        Ok(t)
    }
}

/// A renewable-origin certificate (Wh of one meter in one interval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Id (1-based, issue order; split parts get new ids).
    pub id: u64,
    /// Certificate this part was split from (0 = issued from a meter report).
    pub parent: u64,
    /// Producing meter.
    pub meter: PublicKey,
    /// Member owning the meter at issue.
    pub producer: PublicKey,
    /// Source device.
    pub device: DeviceType,
    /// Interval of production.
    pub interval: u64,
    /// Current owner.
    pub owner: PublicKey,
    /// Wh held (not yet retired).
    pub energy_wh: u64,
    /// Wh retired (claimed).
    pub retired_wh: u64,
}

impl Certificate {
    /// Canonical record bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(160);
        w.u64(self.id);
        w.u64(self.parent);
        w.bytes(&self.meter);
        w.bytes(&self.producer);
        w.u8(self.device as u8);
        w.u64(self.interval);
        w.bytes(&self.owner);
        w.u64(self.energy_wh);
        w.u64(self.retired_wh);
        w.buf
    }

    /// Decode record bytes (as stored).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let id = r.u64("id")?;
        let parent = r.u64("parent")?;
        let meter = r.array("meter")?;
        let producer = r.array("producer")?;
        let code = r.u8("device")?;
        let device = DeviceType::from_code(code).ok_or(DecodeError::Invalid {
            field: "device",
            value: u64::from(code),
        })?;
        let c = Self {
            id,
            parent,
            meter,
            producer,
            device,
            interval: r.u64("interval")?,
            owner: r.array("owner")?,
            energy_wh: r.u64("energy_wh")?,
            retired_wh: r.u64("retired_wh")?,
        };
        r.finish()?;
        Ok(c)
    }
}

/// One meter report kept for trade posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Produced Wh.
    pub produced_wh: u64,
    /// Consumed Wh.
    pub consumed_wh: u64,
    /// Wh already posted to trades.
    pub sold_wh: u64,
    /// Storage meters: Wh of this interval's charge already covered by certificates moved in.
    pub certified_in_wh: u64,
}

/// Supply and energy totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// All base units ever minted (genesis endowment + renewable minting).
    pub minted: u128,
    /// Minted for renewable production.
    pub minted_renewable: u128,
    /// All base units burned.
    pub burned: u128,
    /// Base units held in pending trades.
    pub reserved: u128,
    /// Renewable Wh metered.
    pub renewable_wh_metered: u128,
    /// Wh covered by certificates (held + retired).
    pub certified_wh: u128,
    /// Certificates issued from meter reports (splits not counted).
    pub certificates_issued: u64,
    /// Transactions applied.
    pub applied_txs: u64,
    /// Transactions rejected.
    pub rejected_txs: u64,
}

impl Totals {
    fn encode(&self, w: &mut Writer) {
        w.u128(self.minted);
        w.u128(self.minted_renewable);
        w.u128(self.burned);
        w.u128(self.reserved);
        w.u128(self.renewable_wh_metered);
        w.u128(self.certified_wh);
        w.u64(self.certificates_issued);
        w.u64(self.applied_txs);
        w.u64(self.rejected_txs);
    }
    /// Total supply: minted minus burned.
    pub fn supply(&self) -> u128 {
        self.minted.saturating_sub(self.burned)
    }
}

/// Everything the state root hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCommitment {
    /// Account tree root.
    pub accounts_root: Hash,
    /// Number of accounts.
    pub accounts_len: u64,
    /// Trade tree root.
    pub trades_root: Hash,
    /// Number of trades.
    pub trades_len: u64,
    /// Certificate tree root.
    pub certificates_root: Hash,
    /// Number of certificates.
    pub certificates_len: u64,
    /// Totals.
    pub totals: Totals,
    /// Chain of applied transaction hashes.
    pub history: Hash,
    /// The market state's hash ([`MarketState::root`]) once the market is open; `None` before,
    /// so chains without a market keep their roots.
    pub market_root: Option<Hash>,
    /// The CER state's hash ([`CerState::root`]) once the CER is open; `None` before, so
    /// chains without it keep their roots.
    pub cer_root: Option<Hash>,
    /// The root of the member aggregates of the compact layout ([`crate::day`]) once a day
    /// was closed; `None` before, so per-record chains keep their roots.
    pub days_root: Option<Hash>,
}

impl StateCommitment {
    /// The state root.
    pub fn root(&self) -> Hash {
        let mut w = Writer::with_capacity(400);
        w.bytes(&self.accounts_root);
        w.u64(self.accounts_len);
        w.bytes(&self.trades_root);
        w.u64(self.trades_len);
        w.bytes(&self.certificates_root);
        w.u64(self.certificates_len);
        self.totals.encode(&mut w);
        w.bytes(&self.history);
        if let Some(m) = &self.market_root {
            w.bytes(m);
        }
        if let Some(c) = &self.cer_root {
            w.bytes(c);
        }
        if let Some(d) = &self.days_root {
            w.bytes(b"days");
            w.bytes(d);
        }
        sha256(&[b"SCG-LEDGER/STATE/v1", &w.buf])
    }
}

/// A light-client proof of one account against a state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProof {
    /// The account.
    pub account: Account,
    /// Path in the account tree.
    pub proof: MerkleProof,
    /// The other parts of the state root.
    pub commitment: StateCommitment,
}

impl AccountProof {
    /// True when the account is in the state with this root.
    pub fn verify(&self, state_root: &Hash) -> bool {
        self.commitment.root() == *state_root
            && self.proof.index == self.account.index
            && self.account.index < self.commitment.accounts_len
            && self.proof.root_for(&leaf_hash(&self.account.to_bytes()))
                == self.commitment.accounts_root
    }
}

/// What applying one block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub block_hash: Hash,
    /// State root after the block.
    pub state_root: Hash,
    /// Per transaction: applied or the reason it was rejected.
    pub results: Vec<Result<(), Reject>>,
    /// Trades that expired at the start of the block.
    pub expired: Vec<u128>,
    /// Records of settlement batches that were rejected (each changed nothing; the other
    /// records of the batch applied), in block order.
    pub record_rejects: Vec<RecordReject>,
}

/// A rejected record of a settlement batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordReject {
    /// Index of the batch transaction in the block.
    pub tx: u32,
    /// Index of the record in the batch.
    pub record: u32,
    /// Why.
    pub reason: Reject,
}

impl std::fmt::Display for RecordReject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tx {} record {}: {}", self.tx, self.record, self.reason)
    }
}

impl BlockOutcome {
    /// `(tx, record, code)` of the rejected records, as the outcome root commits them.
    pub fn record_codes(&self) -> Vec<(u32, u32, u16)> {
        self.record_rejects
            .iter()
            .map(|r| (r.tx, r.record, r.reason.code()))
            .collect()
    }
    /// Result codes (0 = applied).
    pub fn codes(&self) -> Vec<u16> {
        self.results
            .iter()
            .map(|r| r.err().map_or(0, Reject::code))
            .collect()
    }
    /// Stored form: count `u32`, codes `u16` each, expired count `u32`, trade ids `u128` each;
    /// then, only if a batch record was rejected, their count `u32` and per record tx index
    /// `u32`, record index `u32`, code `u16`.
    pub fn encode_results(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(8 + 2 * self.results.len() + 16 * self.expired.len());
        w.u32(self.results.len() as u32);
        for c in self.codes() {
            w.u16(c);
        }
        w.u32(self.expired.len() as u32);
        for id in &self.expired {
            w.u128(*id);
        }
        if !self.record_rejects.is_empty() {
            w.u32(self.record_rejects.len() as u32);
            for (t, k, c) in self.record_codes() {
                w.u32(t);
                w.u32(k);
                w.u16(c);
            }
        }
        w.buf
    }

    /// Number of rejected transactions.
    pub fn rejected(&self) -> usize {
        self.results.iter().filter(|r| r.is_err()).count()
    }
}

/// Records changed since the last [`Ledger::take_changes`] (for the store).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Changed accounts.
    pub accounts: BTreeSet<PublicKey>,
    /// Changed trades.
    pub trades: BTreeSet<u128>,
    /// Changed certificates.
    pub certificates: BTreeSet<u64>,
    /// Changed meter reports (meter, interval).
    pub reports: BTreeSet<(PublicKey, u64)>,
}

/// Checks the ledger invariants after every block in `O(changes)` by keeping its own running
/// sums over the records that changed — an accounting independent of the ledger's totals.
/// (`Ledger::check_invariants` is the `O(state)` from-scratch version.)
#[derive(Debug, Clone, Default)]
pub struct InvariantChecker {
    accounts: BTreeMap<PublicKey, (u128, u128)>,
    balances: u128,
    reserved: u128,
    certificates: BTreeMap<u64, u128>,
    certified_wh: u128,
    pending: BTreeMap<u128, u128>,
    pending_sum: u128,
}

impl InvariantChecker {
    /// Fold in the records changed by one block and check every invariant.
    pub fn check(&mut self, ledger: &Ledger, changes: &Changes) -> Result<(), String> {
        for key in &changes.accounts {
            let a = ledger.account(key).ok_or("changed account vanished")?;
            if a.role == Role::Meter && (a.balance != 0 || a.reserved != 0) {
                return Err("a meter holds RESCoin".into());
            }
            let (old_b, old_r) = self
                .accounts
                .insert(*key, (a.balance, a.reserved))
                .unwrap_or((0, 0));
            self.balances = (self.balances - old_b)
                .checked_add(a.balance)
                .ok_or("balance sum overflows")?;
            self.reserved = (self.reserved - old_r)
                .checked_add(a.reserved)
                .ok_or("reserved sum overflows")?;
        }
        for id in &changes.certificates {
            let c = ledger
                .certificate(*id)
                .ok_or("changed certificate vanished")?;
            let wh = u128::from(c.energy_wh) + u128::from(c.retired_wh);
            let old = self.certificates.insert(*id, wh).unwrap_or(0);
            self.certified_wh = self.certified_wh - old + wh;
        }
        for id in &changes.trades {
            let t = ledger.trade(*id).ok_or("changed trade vanished")?;
            let held = if t.status == TradeStatus::Pending {
                t.reserved
            } else {
                0
            };
            if t.status == TradeStatus::Posted && t.paid_seller + t.paid_fee > t.reserved {
                return Err(format!("trade {} paid more than reserved", t.id));
            }
            let old = self.pending.insert(*id, held).unwrap_or(0);
            self.pending_sum = self.pending_sum - old + held;
        }
        for (meter, interval) in &changes.reports {
            let r = ledger
                .report(meter, *interval)
                .ok_or("changed report vanished")?;
            if r.sold_wh > r.produced_wh {
                return Err(format!(
                    "meter {} interval {interval} sold {} Wh of {} Wh",
                    to_hex(meter),
                    r.sold_wh,
                    r.produced_wh
                ));
            }
        }
        let t = ledger.totals();
        if t.burned > t.minted {
            return Err(format!("burned {} exceeds minted {}", t.burned, t.minted));
        }
        if self.balances + self.reserved != t.supply() {
            return Err(format!(
                "balances {} + pending {} != supply {} (minted {} - burned {})",
                self.balances,
                self.reserved,
                t.supply(),
                t.minted,
                t.burned
            ));
        }
        if self.pending_sum != self.reserved || self.reserved != t.reserved {
            return Err(format!(
                "pending trades hold {}, accounts reserve {}, totals say {}",
                self.pending_sum, self.reserved, t.reserved
            ));
        }
        // Certificates plus the compact layout's day certificates (member aggregates).
        let certified = self.certified_wh + ledger.day_certified_wh();
        if certified != t.certified_wh || t.certified_wh > t.renewable_wh_metered {
            return Err(format!(
                "certificates cover {certified} Wh, totals {} Wh, renewable metered {} Wh",
                t.certified_wh, t.renewable_wh_metered
            ));
        }
        Ok(())
    }
}

/// What [`Ledger::execute`] did: per-transaction results, expired trades, rejected batch
/// records and the new state root.
type Executed = (Vec<Result<(), Reject>>, Vec<u128>, Vec<RecordReject>, Hash);

/// The ledger state.
#[derive(Debug, Clone)]
pub struct Ledger {
    config: GenesisConfig,
    height: u64,
    head_hash: Hash,
    last_timestamp_s: u64,
    accounts: BTreeMap<PublicKey, Account>,
    account_keys: Vec<PublicKey>,
    account_tree: MerkleLog,
    trades: BTreeMap<u128, Trade>,
    trade_ids: Vec<u128>,
    trade_tree: MerkleLog,
    expiry: BTreeSet<(u64, u128)>,
    certificates: Vec<Certificate>,
    certificate_tree: MerkleLog,
    reports: BTreeMap<(PublicKey, u64), Report>,
    /// `(owner, certificate id)` of every certificate holding Wh (an index derived from the
    /// certificates; not hashed, rebuilt by replay).
    held: BTreeSet<(PublicKey, u64)>,
    /// Certified Wh held per owner: the sum of `energy_wh` over the owner's entries in `held`
    /// (derived, not hashed; kept so that a holder's certified Wh is a lookup, not a walk over
    /// its certificates; only owners with Wh have an entry; checked by `check_invariants`).
    held_total_wh: BTreeMap<PublicKey, u128>,
    /// P2P Wh posted per `(seller, buyer, interval)` and the part already certified by
    /// certificate moves (derived from the trades and the moves; rebuilt by replay).
    delivered: BTreeMap<(PublicKey, PublicKey, u64), (u64, u64)>,
    ids: BTreeSet<u128>,
    cer_periods: BTreeSet<u64>,
    history: Hash,
    totals: Totals,
    /// Decompressed keys of registered accounts (a cache, not state).
    verifying_keys: KeyCache,
    /// Touched since the last root computation.
    dirty: Changes,
    /// Touched since the last `take_changes`.
    changes: Changes,
    poisoned: bool,
    verify_signatures: bool,
    /// Rejected records of the batch being applied: (record index, reason).
    batch_rejects: Vec<(u32, Reject)>,
    /// The on-chain market ([`crate::market`]).
    market: MarketState,
    /// Every supply-point meter by `(owner, meter)`: a gate close posts the trades of a seller
    /// whose supply point reported the interval before the gate was closed. Derived from the
    /// accounts (not committed separately).
    supply_points: BTreeSet<(PublicKey, PublicKey)>,
    /// `market.root()` as of the last commit (recomputed only after a market change).
    market_root: Hash,
    /// The market changed since the last commit.
    market_dirty: bool,
    /// The CER computed on-chain and the capped issuance ([`crate::cer`]).
    cer: CerState,
    /// `cer.root()` as of the last commit (recomputed only after a CER change).
    cer_root: Hash,
    /// The CER state changed since the last commit.
    cer_dirty: bool,
    /// Member aggregates of the compact layout ([`crate::day`]), committed by `day_tree` in
    /// order of first settlement (`MemberAggregate::index`).
    days: BTreeMap<PublicKey, day_exec::MemberAggregate>,
    day_tree: MerkleLog,
    /// Aggregates changed since the last commit.
    day_dirty: BTreeSet<PublicKey>,
    /// Member days staged in the block being applied, waiting for their day close (dropped at
    /// the end of the block: a day closes in the block that carries it).
    day_staged: Vec<(PublicKey, crate::day::MemberDay)>,
}

/// `energy_wh * rate_per_kwh / 1000`, rounded down (the buyer never pays for a fraction).
fn cost(energy_wh: u64, rate_base_per_kwh: u128) -> Option<u128> {
    u128::from(energy_wh)
        .checked_mul(rate_base_per_kwh)
        .map(|x| x / 1000)
}

/// Decompressed public keys (a cache: a key not in it is decompressed on use).
#[derive(Debug, Clone, Default)]
pub struct KeyCache(BTreeMap<PublicKey, VerifyingKey>);

impl KeyCache {
    /// The key, from the cache or decompressed (None if it is not a curve point).
    pub fn get(&self, key: &PublicKey) -> Option<VerifyingKey> {
        match self.0.get(key) {
            Some(vk) => Some(*vk),
            None => VerifyingKey::from_bytes(key).ok(),
        }
    }
}

/// A block whose transactions are decoded and signature-checked, ready for
/// [`Ledger::apply_checked_block`]. The checks need no ledger state — only the chain id and the
/// block's bytes — so a verifier runs them for many blocks at once on all cores, then applies
/// the blocks in order. The signatures of one block are checked as one batch (as
/// [`Ledger::apply_block`] does), so the results never depend on how blocks are spread over
/// threads.
#[derive(Debug)]
pub struct CheckedBlock<'a> {
    block: &'a Block,
    chain_id: u64,
    tx_root: Hash,
    decoded: Vec<Result<Tx, Reject>>,
}

impl<'a> CheckedBlock<'a> {
    /// Decode every transaction of `block`, check their signatures for `chain_id` and compute
    /// the transaction root of its body.
    pub fn new(chain_id: u64, block: &'a Block, keys: &KeyCache) -> Self {
        Self {
            block,
            chain_id,
            tx_root: block.computed_tx_root(),
            decoded: decode_and_verify(chain_id, &block.txs, keys),
        }
    }

    /// Decoded but not signature-checked (a producer re-applying its own transactions, see
    /// [`Ledger::set_verify_signatures`]).
    fn unverified(chain_id: u64, block: &'a Block) -> Self {
        Self {
            block,
            chain_id,
            tx_root: block.computed_tx_root(),
            decoded: decode_only(&block.txs),
        }
    }

    /// The block.
    pub fn block(&self) -> &'a Block {
        self.block
    }

    /// The decoded transactions (an error for those that do not decode or verify).
    pub fn decoded(&self) -> &[Result<Tx, Reject>] {
        &self.decoded
    }
}

/// Decode every transaction (signatures unchecked: a producer's own transactions).
fn decode_only(txs: &[Vec<u8>]) -> Vec<Result<Tx, Reject>> {
    txs.iter()
        .map(|b| Tx::decode(b).map_err(|_: DecodeError| Reject::Malformed))
        .collect()
}

/// Decode and batch-verify; per transaction the decoded transaction or the rejection.
fn decode_and_verify(chain_id: u64, txs: &[Vec<u8>], keys: &KeyCache) -> Vec<Result<Tx, Reject>> {
    let mut out = decode_only(txs);
    let mut messages = Vec::new();
    let mut signatures = Vec::new();
    let mut vks = Vec::new();
    let mut positions = Vec::new();
    for (i, slot) in out.iter_mut().enumerate() {
        let Ok(tx) = slot else { continue };
        // The envelope's signature, then (a settlement batch) every author's.
        let mut sigs = vec![(
            tx.signer,
            tx.signature,
            signing_message(chain_id, unsigned_part(&txs[i])),
        )];
        if let TxBody::SettlementBatch(b) = &tx.body {
            sigs.extend(b.signed_messages(chain_id));
        }
        let found: Option<Vec<VerifyingKey>> = sigs.iter().map(|(k, _, _)| keys.get(k)).collect();
        match found {
            Some(found) => {
                for ((_, sig, msg), vk) in sigs.into_iter().zip(found) {
                    messages.push(msg);
                    signatures.push(Signature::from_bytes(&sig));
                    vks.push(vk);
                    positions.push(i);
                }
            }
            None => *slot = Err(Reject::BadSignature),
        }
    }
    if positions.is_empty() {
        return out;
    }
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    // Batch verification of the block's signatures (deterministic: its random scalars come
    // from a transcript of the inputs). If the batch fails, every signature is checked alone
    // to find the bad ones.
    if ed25519_dalek::verify_batch(&refs, &signatures, &vks).is_err() {
        for (j, &i) in positions.iter().enumerate() {
            if out[i].is_ok() && vks[j].verify_strict(refs[j], &signatures[j]).is_err() {
                out[i] = Err(Reject::BadSignature);
            }
        }
    }
    out
}

fn valid_key(key: &PublicKey) -> Option<VerifyingKey> {
    let vk = VerifyingKey::from_bytes(key).ok()?;
    // Small-order keys make signatures meaningless; refuse them at registration.
    (!vk.is_weak()).then_some(vk)
}

impl Ledger {
    /// Create the genesis state and block.
    pub fn genesis(config: GenesisConfig, timestamp_s: u64) -> Result<(Self, Block), LedgerError> {
        let keys = [config.operator, config.treasury, config.grid];
        if keys[0] == keys[1] || keys[0] == keys[2] || keys[1] == keys[2] {
            return Err(LedgerError::InvalidGenesis(
                "operator, treasury and grid keys must differ".into(),
            ));
        }
        let mut ledger = Self {
            config: config.clone(),
            height: 0,
            head_hash: ZERO_HASH,
            last_timestamp_s: timestamp_s,
            accounts: BTreeMap::new(),
            account_keys: Vec::new(),
            account_tree: MerkleLog::new(),
            trades: BTreeMap::new(),
            trade_ids: Vec::new(),
            trade_tree: MerkleLog::new(),
            expiry: BTreeSet::new(),
            certificates: Vec::new(),
            certificate_tree: MerkleLog::new(),
            reports: BTreeMap::new(),
            ids: BTreeSet::new(),
            cer_periods: BTreeSet::new(),
            held: BTreeSet::new(),
            held_total_wh: BTreeMap::new(),
            delivered: BTreeMap::new(),
            history: ZERO_HASH,
            totals: Totals::default(),
            verifying_keys: KeyCache::default(),
            dirty: Changes::default(),
            changes: Changes::default(),
            poisoned: false,
            verify_signatures: true,
            batch_rejects: Vec::new(),
            market: MarketState::default(),
            supply_points: BTreeSet::new(),
            market_root: ZERO_HASH,
            market_dirty: false,
            cer: CerState::default(),
            cer_root: ZERO_HASH,
            cer_dirty: false,
            days: BTreeMap::new(),
            day_tree: MerkleLog::new(),
            day_dirty: BTreeSet::new(),
            day_staged: Vec::new(),
        };
        for (key, role) in keys
            .iter()
            .zip([Role::Operator, Role::Treasury, Role::Grid])
        {
            let vk = valid_key(key).ok_or_else(|| {
                LedgerError::InvalidGenesis(format!(
                    "{} key is not a valid ed25519 key",
                    role.name()
                ))
            })?;
            ledger.create_account(*key, vk, role, None, None);
        }
        let treasury = config.treasury;
        ledger.credit(&treasury, config.treasury_endowment);
        ledger.totals.minted = config.treasury_endowment;
        let state_root = ledger.commit_roots();
        let genesis_block = Block {
            header: BlockHeader {
                height: 0,
                timestamp_s,
                parent_hash: ZERO_HASH,
                tx_root: ZERO_HASH,
                outcome_root: ZERO_HASH,
                state_root,
                tx_count: 0,
            },
            genesis: Some(config),
            txs: Vec::new(),
        };
        let mut block = genesis_block;
        block.header.tx_root = block.computed_tx_root();
        ledger.head_hash = block.hash();
        Ok((ledger, block))
    }

    /// Rebuild the genesis state from a genesis block, checking every field of it.
    pub fn from_genesis_block(block: &Block) -> Result<(Self, BlockOutcome), LedgerError> {
        let bad = |reason: &str| LedgerError::BadBlock {
            height: block.header.height,
            reason: reason.to_string(),
        };
        let config = block
            .genesis
            .clone()
            .ok_or_else(|| bad("not a genesis block"))?;
        if block.header.height != 0 || !block.txs.is_empty() || block.header.tx_count != 0 {
            return Err(bad("genesis must be height 0 without transactions"));
        }
        let (ledger, expect) = Self::genesis(config, block.header.timestamp_s)?;
        if expect.header.tx_root != block.header.tx_root {
            return Err(bad("genesis transaction root mismatch"));
        }
        if expect.header != block.header {
            return Err(bad(&format!(
                "genesis header mismatch (state root {} expected {})",
                to_hex(&block.header.state_root),
                to_hex(&expect.header.state_root)
            )));
        }
        let outcome = BlockOutcome {
            height: 0,
            block_hash: ledger.head_hash,
            state_root: block.header.state_root,
            results: Vec::new(),
            expired: Vec::new(),
            record_rejects: Vec::new(),
        };
        Ok((ledger, outcome))
    }

    /// Turn signature checking off (only for a producer re-applying transactions it has just
    /// signed itself; `verify` and replicas always check).
    pub fn set_verify_signatures(&mut self, on: bool) {
        self.verify_signatures = on;
    }

    /// Genesis parameters.
    pub fn config(&self) -> &GenesisConfig {
        &self.config
    }
    /// Height of the last applied block.
    pub fn height(&self) -> u64 {
        self.height
    }
    /// Hash of the last applied block.
    pub fn head_hash(&self) -> Hash {
        self.head_hash
    }
    /// Timestamp of the last applied block.
    pub fn last_timestamp_s(&self) -> u64 {
        self.last_timestamp_s
    }
    /// Totals.
    pub fn totals(&self) -> Totals {
        self.totals
    }
    /// An account.
    pub fn account(&self, key: &PublicKey) -> Option<&Account> {
        self.accounts.get(key)
    }
    /// All accounts, by key.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }
    /// A trade.
    pub fn trade(&self, id: u128) -> Option<&Trade> {
        self.trades.get(&id)
    }
    /// All trades, by id.
    pub fn trades(&self) -> impl Iterator<Item = &Trade> {
        self.trades.values()
    }
    /// A certificate by id.
    pub fn certificate(&self, id: u64) -> Option<&Certificate> {
        let i = usize::try_from(id.checked_sub(1)?).ok()?;
        self.certificates.get(i)
    }
    /// All certificates, by id.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }
    /// Certified Wh that `owner` (a member, or a storage meter) holds, not retired.
    pub fn certified_held_wh(&self, owner: &PublicKey) -> u64 {
        self.held_wh(owner, u64::MAX)
            .saturating_add(self.day_storage_held_wh(owner))
    }
    /// A meter report.
    pub fn report(&self, meter: &PublicKey, interval: u64) -> Option<Report> {
        self.reports.get(&(*meter, interval)).copied()
    }
    /// True once a block's roots disagreed with the replay; the ledger must be discarded.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The commitment behind the current state root (roots are current after each block).
    pub fn commitment(&self) -> StateCommitment {
        StateCommitment {
            accounts_root: self.account_tree.root(),
            accounts_len: self.account_tree.len() as u64,
            trades_root: self.trade_tree.root(),
            trades_len: self.trade_tree.len() as u64,
            certificates_root: self.certificate_tree.root(),
            certificates_len: self.certificate_tree.len() as u64,
            totals: self.totals,
            history: self.history,
            market_root: self.market.params.map(|_| self.market_root),
            cer_root: self.cer.params.map(|_| self.cer_root),
            days_root: (!self.day_tree.is_empty()).then(|| self.day_tree.root()),
        }
    }

    /// The current state root.
    pub fn state_root(&self) -> Hash {
        self.commitment().root()
    }

    /// A light-client proof of one account.
    pub fn account_proof(&self, key: &PublicKey) -> Option<AccountProof> {
        let account = self.accounts.get(key)?.clone();
        let proof = self
            .account_tree
            .proof(usize::try_from(account.index).ok()?)?;
        Some(AccountProof {
            account,
            proof,
            commitment: self.commitment(),
        })
    }

    /// Records changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// Build the next block from transactions (the block producer's path).
    pub fn produce_block(
        &mut self,
        timestamp_s: u64,
        txs: Vec<Vec<u8>>,
    ) -> Result<(Block, BlockOutcome), LedgerError> {
        self.check_produce(timestamp_s, &txs)?;
        let decoded = if self.verify_signatures {
            decode_and_verify(self.config.chain_id, &txs, &self.verifying_keys)
        } else {
            decode_only(&txs)
        };
        Ok(self.produce_decoded(timestamp_s, txs, decoded))
    }

    /// What [`Ledger::produce_block`] refuses before executing: a poisoned ledger, a timestamp
    /// before the parent's, too many transactions or one of bad length.
    fn check_produce(&self, timestamp_s: u64, txs: &[Vec<u8>]) -> Result<(), LedgerError> {
        let height = self.height + 1;
        if self.poisoned {
            return Err(LedgerError::Poisoned);
        }
        if timestamp_s < self.last_timestamp_s {
            return Err(LedgerError::BadBlock {
                height,
                reason: format!(
                    "timestamp {timestamp_s} is before the parent's {}",
                    self.last_timestamp_s
                ),
            });
        }
        if txs.len() > crate::block::MAX_BLOCK_TXS
            || txs
                .iter()
                .any(|t| t.is_empty() || t.len() > crate::tx::max_len(t))
            || txs.iter().map(|t| t.len() + 4).sum::<usize>() > crate::block::MAX_BLOCK_LEN
        {
            return Err(LedgerError::BadBlock {
                height,
                reason: "too many transactions or a transaction of bad length".into(),
            });
        }
        Ok(())
    }

    /// [`Ledger::produce_block`] of transactions the producer built and signed itself, given
    /// as built (`decoded[i]` is the transaction `txs[i]` encodes, as [`Tx::sign_batch`]
    /// returns them), so that they are not decoded again. Only without signature checks
    /// ([`Ledger::set_verify_signatures`]`(false)`); with them, or when the lists differ in
    /// length, this is `produce_block`. What the bytes decode to is not checked here: the
    /// caller must (the settled year's [`crate::store::store`] decodes every transaction and
    /// refuses a chain whose applied transaction does not decode).
    pub(crate) fn produce_own_block(
        &mut self,
        timestamp_s: u64,
        txs: Vec<Vec<u8>>,
        decoded: Vec<Tx>,
    ) -> Result<(Block, BlockOutcome), LedgerError> {
        if self.verify_signatures || decoded.len() != txs.len() {
            return self.produce_block(timestamp_s, txs);
        }
        self.check_produce(timestamp_s, &txs)?;
        debug_assert!(
            txs.iter()
                .zip(&decoded)
                .all(|(b, t)| Tx::decode(b).as_ref() == Ok(t)),
            "a producer's transaction decodes to what it built"
        );
        let decoded = decoded.into_iter().map(Ok).collect();
        Ok(self.produce_decoded(timestamp_s, txs, decoded))
    }

    /// Execute checked transactions as the next block and seal it.
    fn produce_decoded(
        &mut self,
        timestamp_s: u64,
        txs: Vec<Vec<u8>>,
        decoded: Vec<Result<Tx, Reject>>,
    ) -> (Block, BlockOutcome) {
        let height = self.height + 1;
        let (results, expired, record_rejects, state_root) =
            self.execute(height, timestamp_s, &txs, decoded);
        let codes: Vec<u16> = results
            .iter()
            .map(|r| r.err().map_or(0, Reject::code))
            .collect();
        let record_codes: Vec<(u32, u32, u16)> = record_rejects
            .iter()
            .map(|r| (r.tx, r.record, r.reason.code()))
            .collect();
        let mut block = Block {
            header: BlockHeader {
                height,
                timestamp_s,
                parent_hash: self.head_hash,
                tx_root: ZERO_HASH,
                outcome_root: outcome_root_with_records(&codes, &record_codes),
                state_root,
                tx_count: u32::try_from(txs.len()).unwrap_or(u32::MAX),
            },
            genesis: None,
            txs,
        };
        block.header.tx_root = block.computed_tx_root();
        self.finish_block(&block.header);
        let outcome = BlockOutcome {
            height,
            block_hash: self.head_hash,
            state_root,
            results,
            expired,
            record_rejects,
        };
        (block, outcome)
    }

    /// Apply the next block, checking its header against the replay. On a structural error the
    /// state is untouched; on a root mismatch the ledger is poisoned (see module doc).
    pub fn apply_block(&mut self, block: &Block) -> Result<BlockOutcome, LedgerError> {
        let checked = if self.verify_signatures {
            CheckedBlock::new(self.config.chain_id, block, &self.verifying_keys)
        } else {
            CheckedBlock::unverified(self.config.chain_id, block)
        };
        self.apply_checked_block(checked)
    }

    /// The decompressed keys of the registered accounts, for [`CheckedBlock::new`] (a cache:
    /// checks give the same results with any cache).
    pub fn key_cache(&self) -> &KeyCache {
        &self.verifying_keys
    }

    /// [`Ledger::apply_block`] of a block whose transactions were decoded and signature-checked
    /// ahead (possibly on another thread, see [`CheckedBlock`]); the same checks, results and
    /// errors as `apply_block`.
    pub fn apply_checked_block(
        &mut self,
        checked: CheckedBlock<'_>,
    ) -> Result<BlockOutcome, LedgerError> {
        if self.poisoned {
            return Err(LedgerError::Poisoned);
        }
        let block = checked.block;
        let h = &block.header;
        if checked.chain_id != self.config.chain_id {
            return Err(LedgerError::BadBlock {
                height: h.height,
                reason: format!(
                    "checked for chain {} but this ledger is chain {}",
                    checked.chain_id, self.config.chain_id
                ),
            });
        }
        let bad = |reason: String| LedgerError::BadBlock {
            height: h.height,
            reason,
        };
        if h.height != self.height + 1 {
            return Err(bad(format!("expected height {}", self.height + 1)));
        }
        if block.genesis.is_some() {
            return Err(bad("genesis parameters in a non-genesis block".into()));
        }
        if h.parent_hash != self.head_hash {
            return Err(bad("parent hash does not match the previous block".into()));
        }
        if h.timestamp_s < self.last_timestamp_s {
            return Err(bad("timestamp goes backwards".into()));
        }
        if h.tx_count as usize != block.txs.len() {
            return Err(bad("transaction count mismatch".into()));
        }
        if checked.tx_root != h.tx_root {
            let culprit = self.first_unverifiable_tx(&block.txs);
            return Err(bad(match culprit {
                Some((i, why)) => format!("transaction root mismatch; tx {i}: {why}"),
                None => "transaction root mismatch".into(),
            }));
        }
        let (results, expired, record_rejects, state_root) =
            self.execute(h.height, h.timestamp_s, &block.txs, checked.decoded);
        let codes: Vec<u16> = results
            .iter()
            .map(|r| r.err().map_or(0, Reject::code))
            .collect();
        let record_codes: Vec<(u32, u32, u16)> = record_rejects
            .iter()
            .map(|r| (r.tx, r.record, r.reason.code()))
            .collect();
        if outcome_root_with_records(&codes, &record_codes) != h.outcome_root {
            self.poisoned = true;
            return Err(bad(
                "outcome root mismatch (results differ from the replay)".into(),
            ));
        }
        if state_root != h.state_root {
            self.poisoned = true;
            return Err(bad(format!(
                "state root mismatch: block says {}, replay gives {}",
                to_hex(&h.state_root),
                to_hex(&state_root)
            )));
        }
        self.finish_block(h);
        Ok(BlockOutcome {
            height: h.height,
            block_hash: self.head_hash,
            state_root,
            results,
            expired,
            record_rejects,
        })
    }

    fn finish_block(&mut self, header: &BlockHeader) {
        self.height = header.height;
        self.last_timestamp_s = header.timestamp_s;
        self.head_hash = header.hash();
    }

    /// For error messages: the first transaction that fails to decode or verify on its own.
    fn first_unverifiable_tx(&self, txs: &[Vec<u8>]) -> Option<(usize, String)> {
        for (i, bytes) in txs.iter().enumerate() {
            match Tx::decode(bytes) {
                Err(e) => return Some((i, format!("malformed ({e})"))),
                Ok(tx) => {
                    if !self.signature_ok(&tx, bytes) {
                        return Some((i, "bad signature".into()));
                    }
                }
            }
        }
        None
    }

    fn signature_ok(&self, tx: &Tx, bytes: &[u8]) -> bool {
        let Some(vk) = self.verifying_keys.get(&tx.signer) else {
            return false;
        };
        let msg = signing_message(self.config.chain_id, unsigned_part(bytes));
        let envelope = vk
            .verify_strict(&msg, &Signature::from_bytes(&tx.signature))
            .is_ok();
        match &tx.body {
            TxBody::SettlementBatch(b) => {
                envelope && b.first_bad_signature(self.config.chain_id).is_none()
            }
            _ => envelope,
        }
    }

    /// Run one block's effects; returns results, expired trades, rejected batch records and
    /// the new state root.
    fn execute(
        &mut self,
        height: u64,
        timestamp_s: u64,
        txs: &[Vec<u8>],
        decoded: Vec<Result<Tx, Reject>>,
    ) -> Executed {
        let expired = self.expire_trades(height, timestamp_s);
        let mut results = Vec::with_capacity(txs.len());
        let mut record_rejects = Vec::new();
        for (i, (bytes, d)) in txs.iter().zip(decoded).enumerate() {
            let r = d.and_then(|tx| self.apply_tx(height, timestamp_s, &tx, bytes));
            match r {
                Ok(()) => self.totals.applied_txs += 1,
                Err(_) => self.totals.rejected_txs += 1,
            }
            record_rejects.extend(self.batch_rejects.drain(..).map(|(record, reason)| {
                RecordReject {
                    tx: i as u32,
                    record,
                    reason,
                }
            }));
            results.push(r);
        }
        // A day closes in the block that carries it: unclosed member days change nothing.
        self.day_staged.clear();
        let root = self.commit_roots();
        (results, expired, record_rejects, root)
    }

    fn expire_trades(&mut self, height: u64, timestamp_s: u64) -> Vec<u128> {
        let mut expired = Vec::new();
        while let Some(&(at, id)) = self.expiry.first() {
            if at > timestamp_s {
                break;
            }
            self.expiry.remove(&(at, id));
            self.refund_trade(id, TradeStatus::Expired, height);
            expired.push(id);
        }
        expired
    }

    /// Return a pending trade's full reservation to the buyer and close it.
    fn refund_trade(&mut self, id: u128, status: TradeStatus, height: u64) {
        let Some(trade) = self.trades.get_mut(&id) else {
            return;
        };
        assert_eq!(trade.status, TradeStatus::Pending, "trade resolved twice");
        trade.status = status;
        trade.resolved_height = height;
        let (buyer, amount, expires) = (trade.buyer, trade.reserved, trade.expires_at_s);
        self.expiry.remove(&(expires, id));
        self.unreserve(&buyer, amount);
        self.credit(&buyer, amount);
        self.touch_trade(id);
    }

    fn apply_tx(
        &mut self,
        height: u64,
        timestamp_s: u64,
        tx: &Tx,
        bytes: &[u8],
    ) -> Result<(), Reject> {
        if self.ids.contains(&tx.id) {
            return Err(Reject::DuplicateId);
        }
        let signer = self.accounts.get(&tx.signer).ok_or(Reject::UnknownSigner)?;
        if signer.nonce != tx.nonce {
            return Err(Reject::BadNonce);
        }
        let role = signer.role;
        let ctx = MarketCtx {
            height,
            timestamp_s,
            signer: tx.signer,
            role,
            nonce: tx.nonce,
        };
        match &tx.body {
            TxBody::SettlementBatch(batch) => {
                self.settlement_batch(height, timestamp_s, tx, role, batch)?
            }
            TxBody::MarketOpen(_)
            | TxBody::MeterCapacity { .. }
            | TxBody::IntervalTariff { .. }
            | TxBody::Order(_)
            | TxBody::GateClose { .. } => self.apply_market(ctx, &tx.body)?,
            TxBody::CerOpen(_)
            | TxBody::ZonalPrices { .. }
            | TxBody::CerPeriodClose { .. }
            | TxBody::Issuance(_) => self.apply_cer(ctx, tx.id, &tx.body)?,
            body => self.apply_body(height, timestamp_s, tx.id, &tx.signer, role, body)?,
        }
        // Success: consume the id and the nonce, extend the history.
        self.ids.insert(tx.id);
        if let Some(a) = self.accounts.get_mut(&tx.signer) {
            a.nonce += 1;
        }
        self.touch_account(tx.signer);
        self.history = sha256(&[&self.history, &tx_hash(bytes)]);
        Ok(())
    }

    /// The effects of one transaction body (or batch record) by `signer` with id `id`.
    fn apply_body(
        &mut self,
        height: u64,
        timestamp_s: u64,
        id: u128,
        signer: &PublicKey,
        role: Role,
        body: &TxBody,
    ) -> Result<(), Reject> {
        match body {
            TxBody::RegisterMember { member } => self.register_member(role, member),
            TxBody::RegisterMeter {
                meter,
                member,
                device,
            } => self.register_meter(role, meter, member, *device),
            TxBody::MeterReport {
                interval,
                produced_wh,
                consumed_wh,
            } => self.meter_report(
                signer,
                (height, timestamp_s),
                *interval,
                *produced_wh,
                *consumed_wh,
            ),
            TxBody::Transfer { to, amount } => self.transfer(signer, role, to, *amount),
            TxBody::TradeCreate {
                seller,
                interval,
                energy_wh,
                price_base_per_kwh,
                fee_base_per_kwh,
                expires_at_s,
            } => self.trade_create(
                id,
                signer,
                role,
                timestamp_s,
                NewTrade {
                    seller: *seller,
                    interval: *interval,
                    energy_wh: *energy_wh,
                    price_base_per_kwh: *price_base_per_kwh,
                    fee_base_per_kwh: *fee_base_per_kwh,
                    expires_at_s: *expires_at_s,
                },
            ),
            TxBody::TradePost {
                trade_id,
                delivered_wh,
            } => self.trade_post(signer, height, *trade_id, *delivered_wh),
            TxBody::TradeVoid { trade_id } => self.trade_void(signer, role, height, *trade_id),
            TxBody::CertificateTransfer {
                certificate_id,
                to,
                energy_wh,
            } => self.certificate_transfer(signer, *certificate_id, to, *energy_wh),
            TxBody::CertificateRetire {
                certificate_id,
                energy_wh,
            } => self.certificate_retire(signer, *certificate_id, *energy_wh),
            TxBody::CerDistribution { period, payouts } => {
                self.cer_distribution(signer, role, *period, payouts)
            }
            TxBody::Burn { amount } => self.burn(signer, role, *amount),
            TxBody::MemberDay(d) => self.member_day(signer, role, d),
            TxBody::DayClose(c) => self.day_close(role, c),
            TxBody::CertificateMove {
                to,
                interval,
                energy_wh,
            } => self.certificate_move(signer, role, to, *interval, *energy_wh),
            // A batch inside a batch never decodes; refuse it here too.
            TxBody::SettlementBatch(_) => Err(Reject::Malformed),
            // Market and CER kinds reach here only as batch records (see `apply_tx`).
            TxBody::MarketOpen(_)
            | TxBody::MeterCapacity { .. }
            | TxBody::IntervalTariff { .. }
            | TxBody::Order(_)
            | TxBody::GateClose { .. }
            | TxBody::CerOpen(_)
            | TxBody::ZonalPrices { .. }
            | TxBody::CerPeriodClose { .. }
            | TxBody::Issuance(_) => Err(Reject::NotInBatch),
        }
    }

    /// A settlement batch (operator only): every record applies or is rejected on its own, as
    /// the transaction it stands for would be — its own id (`first_record_id + k`), its
    /// author's role and every check of its kind — except that it carries no nonce (the
    /// author's signature covers the record ids, which are unique on the chain). Rejected
    /// records are collected for the block outcome. The batch itself fails only before any
    /// record applies (wrong role, record ids past `u128`).
    fn settlement_batch(
        &mut self,
        height: u64,
        timestamp_s: u64,
        tx: &Tx,
        role: Role,
        batch: &Batch,
    ) -> Result<(), Reject> {
        if role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        batch
            .first_record_id
            .checked_add(batch.records.len() as u128)
            .ok_or(Reject::Overflow)?;
        // The batch's own id is consumed first, so no record can reuse it.
        self.ids.insert(tx.id);
        for (k, record) in batch.records.iter().enumerate() {
            let id = batch.first_record_id + k as u128;
            let author = batch.signers[usize::from(record.signer)].key;
            let result = self.apply_record(height, timestamp_s, id, &author, &record.body);
            if let Err(reason) = result {
                self.batch_rejects.push((k as u32, reason));
            }
        }
        Ok(())
    }

    fn apply_record(
        &mut self,
        height: u64,
        timestamp_s: u64,
        id: u128,
        author: &PublicKey,
        body: &TxBody,
    ) -> Result<(), Reject> {
        if self.ids.contains(&id) {
            return Err(Reject::DuplicateId);
        }
        let role = self.accounts.get(author).ok_or(Reject::UnknownSigner)?.role;
        self.apply_body(height, timestamp_s, id, author, role, body)?;
        self.ids.insert(id);
        Ok(())
    }

    fn register_member(&mut self, role: Role, member: &PublicKey) -> Result<(), Reject> {
        if role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        if self.accounts.contains_key(member) {
            return Err(Reject::AlreadyRegistered);
        }
        let vk = valid_key(member).ok_or(Reject::InvalidKey)?;
        self.create_account(*member, vk, Role::Member, None, None);
        Ok(())
    }

    fn register_meter(
        &mut self,
        role: Role,
        meter: &PublicKey,
        member: &PublicKey,
        device: DeviceType,
    ) -> Result<(), Reject> {
        if role != Role::Operator {
            return Err(Reject::WrongRole);
        }
        if self.role_of(member) != Some(Role::Member) {
            return Err(Reject::UnknownMember);
        }
        if self.accounts.contains_key(meter) {
            return Err(Reject::AlreadyRegistered);
        }
        let vk = valid_key(meter).ok_or(Reject::InvalidKey)?;
        self.create_account(*meter, vk, Role::Meter, Some(*member), Some(device));
        Ok(())
    }

    /// A meter's reading of `interval` in the block at `(height, timestamp_s)`. On a chain
    /// whose market is open it must also be real, recent energy
    /// ([`Ledger::check_market_reading`]); without a market it is checked as it always was.
    fn meter_report(
        &mut self,
        meter: &PublicKey,
        (height, timestamp_s): (u64, u64),
        interval: u64,
        produced_wh: u64,
        consumed_wh: u64,
    ) -> Result<(), Reject> {
        let account = &self.accounts[meter];
        let (Role::Meter, Some(owner), Some(device)) =
            (account.role, account.owner, account.device)
        else {
            return Err(Reject::WrongRole);
        };
        if self.reports.contains_key(&(*meter, interval)) {
            return Err(Reject::DuplicateReport);
        }
        if let Some(params) = self.market.params {
            let reading = market_exec::Reading {
                owner,
                device,
                interval,
                produced_wh,
            };
            self.check_market_reading(&params, meter, &reading, timestamp_s)?;
        }
        let renewable = device.is_renewable() && produced_wh > 0;
        if renewable {
            let mint = u128::from(produced_wh)
                .checked_mul(self.config.mint_rate_base_per_wh)
                .ok_or(Reject::Overflow)?;
            let minted = self
                .totals
                .minted
                .checked_add(mint)
                .ok_or(Reject::Overflow)?;
            // Every balance is at most the supply, so no balance can overflow either.
            self.totals.minted = minted;
            self.totals.minted_renewable += mint;
            self.totals.renewable_wh_metered += u128::from(produced_wh);
            self.totals.certified_wh += u128::from(produced_wh);
            self.totals.certificates_issued += 1;
            self.credit(&owner, mint);
            let id = self.certificates.len() as u64 + 1;
            self.certificates.push(Certificate {
                id,
                parent: 0,
                meter: *meter,
                producer: owner,
                device,
                interval,
                owner,
                energy_wh: produced_wh,
                retired_wh: 0,
            });
            self.held.insert((owner, id));
            self.add_held(&owner, produced_wh);
            self.touch_certificate(id);
        }
        if device.is_storage() && produced_wh > 0 {
            // A discharge passes the certified Wh the device holds back to its member, up to
            // the Wh discharged: origin follows the energy, never more than metered.
            let release = self.held_wh(meter, produced_wh);
            if release > 0 {
                self.move_held(meter, &owner, release);
            }
        }
        self.changes.reports.insert((*meter, interval));
        self.reports.insert(
            (*meter, interval),
            Report {
                produced_wh,
                consumed_wh,
                sold_wh: 0,
                certified_in_wh: 0,
            },
        );
        if device == DeviceType::SupplyPoint {
            self.post_market_trades(meter, &owner, interval, height);
        }
        Ok(())
    }

    fn transfer(
        &mut self,
        from: &PublicKey,
        role: Role,
        to: &PublicKey,
        amount: u128,
    ) -> Result<(), Reject> {
        if role == Role::Meter {
            return Err(Reject::MeterCannotHold);
        }
        if amount == 0 {
            return Err(Reject::ZeroAmount);
        }
        if from == to {
            return Err(Reject::SelfTransfer);
        }
        match self.role_of(to) {
            None => return Err(Reject::UnknownAccount),
            Some(Role::Meter) => return Err(Reject::MeterCannotHold),
            Some(_) => {}
        }
        if self.accounts[from].balance < amount {
            return Err(Reject::InsufficientFunds);
        }
        self.debit(from, amount);
        self.credit(to, amount);
        Ok(())
    }

    fn trade_create(
        &mut self,
        id: u128,
        buyer: &PublicKey,
        role: Role,
        timestamp_s: u64,
        t: NewTrade,
    ) -> Result<(), Reject> {
        if role != Role::Member {
            return Err(Reject::WrongRole);
        }
        if self.role_of(&t.seller) != Some(Role::Member) {
            return Err(Reject::UnknownMember);
        }
        if t.seller == *buyer {
            return Err(Reject::SelfTransfer);
        }
        if t.energy_wh == 0 {
            return Err(Reject::ZeroAmount);
        }
        if t.expires_at_s <= timestamp_s {
            return Err(Reject::ExpiryInPast);
        }
        let reserve = cost(t.energy_wh, t.price_base_per_kwh)
            .zip(cost(t.energy_wh, t.fee_base_per_kwh))
            .and_then(|(p, f)| p.checked_add(f))
            .ok_or(Reject::Overflow)?;
        if self.accounts[buyer].balance < reserve {
            return Err(Reject::InsufficientFunds);
        }
        self.open_trade(id, buyer, &t, reserve);
        Ok(())
    }

    /// Reserve `reserve` (checked: at most the buyer's balance) and record the pending trade.
    fn open_trade(&mut self, id: u128, buyer: &PublicKey, t: &NewTrade, reserve: u128) {
        self.debit(buyer, reserve);
        self.reserve(buyer, reserve);
        let index = self.trade_ids.len() as u64;
        self.trade_ids.push(id);
        self.trades.insert(
            id,
            Trade {
                id,
                index,
                buyer: *buyer,
                seller: t.seller,
                interval: t.interval,
                energy_wh: t.energy_wh,
                price_base_per_kwh: t.price_base_per_kwh,
                fee_base_per_kwh: t.fee_base_per_kwh,
                reserved: reserve,
                expires_at_s: t.expires_at_s,
                status: TradeStatus::Pending,
                delivered_wh: 0,
                paid_seller: 0,
                paid_fee: 0,
                resolved_height: 0,
            },
        );
        self.expiry.insert((t.expires_at_s, id));
        self.touch_trade(id);
    }

    fn trade_post(
        &mut self,
        meter: &PublicKey,
        height: u64,
        trade_id: u128,
        delivered_wh: u64,
    ) -> Result<(), Reject> {
        let trade = self.trades.get(&trade_id).ok_or(Reject::UnknownTrade)?;
        if trade.status != TradeStatus::Pending {
            return Err(Reject::TradeNotPending);
        }
        let account = &self.accounts[meter];
        if account.role != Role::Meter || account.owner != Some(trade.seller) {
            return Err(Reject::NotTradeParty);
        }
        if delivered_wh > trade.energy_wh {
            return Err(Reject::DeliveredExceedsTrade);
        }
        let report = self
            .reports
            .get(&(*meter, trade.interval))
            .ok_or(Reject::NoReportForInterval)?;
        if report.produced_wh - report.sold_wh < delivered_wh {
            return Err(Reject::DeliveredExceedsMetered);
        }
        self.post_trade(meter, height, trade_id, delivered_wh)
    }

    /// The effects of posting `delivered_wh` (checked by the caller: at most the trade's Wh and
    /// the meter's unsold production) of a pending trade by the seller's `meter`.
    fn post_trade(
        &mut self,
        meter: &PublicKey,
        height: u64,
        trade_id: u128,
        delivered_wh: u64,
    ) -> Result<(), Reject> {
        let trade = self.trades.get(&trade_id).ok_or(Reject::UnknownTrade)?;
        // Rounding down is monotone, so pay + fee <= reserved for delivered <= traded.
        let pay = cost(delivered_wh, trade.price_base_per_kwh).ok_or(Reject::Overflow)?;
        let fee = cost(delivered_wh, trade.fee_base_per_kwh).ok_or(Reject::Overflow)?;
        let refund = trade.reserved - pay - fee;
        let (buyer, seller, reserved, interval, expires) = (
            trade.buyer,
            trade.seller,
            trade.reserved,
            trade.interval,
            trade.expires_at_s,
        );
        if let Some(r) = self.reports.get_mut(&(*meter, interval)) {
            r.sold_wh += delivered_wh;
        }
        self.changes.reports.insert((*meter, interval));
        if delivered_wh > 0 {
            let d = self
                .delivered
                .entry((seller, buyer, interval))
                .or_insert((0, 0));
            d.0 += delivered_wh;
        }
        self.unreserve(&buyer, reserved);
        self.credit(&buyer, refund);
        self.credit(&seller, pay);
        let grid = self.config.grid;
        self.credit(&grid, fee);
        self.expiry.remove(&(expires, trade_id));
        if let Some(t) = self.trades.get_mut(&trade_id) {
            t.status = TradeStatus::Posted;
            t.delivered_wh = delivered_wh;
            t.paid_seller = pay;
            t.paid_fee = fee;
            t.resolved_height = height;
        }
        self.touch_trade(trade_id);
        Ok(())
    }

    fn trade_void(
        &mut self,
        signer: &PublicKey,
        role: Role,
        height: u64,
        trade_id: u128,
    ) -> Result<(), Reject> {
        let trade = self.trades.get(&trade_id).ok_or(Reject::UnknownTrade)?;
        if trade.status != TradeStatus::Pending {
            return Err(Reject::TradeNotPending);
        }
        // The buyer may not void: after delivery that would cheat the seller. It waits for the
        // timeout instead.
        if trade.seller != *signer && role != Role::Operator {
            return Err(Reject::NotTradeParty);
        }
        self.refund_trade(trade_id, TradeStatus::Voided, height);
        Ok(())
    }

    fn certificate_transfer(
        &mut self,
        signer: &PublicKey,
        id: u64,
        to: &PublicKey,
        energy_wh: u64,
    ) -> Result<(), Reject> {
        let cert = self.certificate(id).ok_or(Reject::UnknownCertificate)?;
        if cert.owner != *signer {
            return Err(Reject::NotCertificateOwner);
        }
        if energy_wh == 0 {
            return Err(Reject::ZeroAmount);
        }
        if energy_wh > cert.energy_wh {
            return Err(Reject::CertificateInsufficientWh);
        }
        if to == signer {
            return Err(Reject::SelfTransfer);
        }
        if self.role_of(to) != Some(Role::Member) {
            return Err(Reject::UnknownMember);
        }
        let index = (id - 1) as usize;
        let whole = energy_wh == cert.energy_wh && cert.retired_wh == 0;
        self.sub_held(signer, energy_wh);
        self.add_held(to, energy_wh);
        if whole {
            // Whole certificate: change hands without splitting.
            self.held.remove(&(*signer, id));
            self.held.insert((*to, id));
            self.certificates[index].owner = *to;
        } else {
            let mut part = self.certificates[index].clone();
            self.certificates[index].energy_wh -= energy_wh;
            let new_id = self.certificates.len() as u64 + 1;
            part.id = new_id;
            part.parent = id;
            part.owner = *to;
            part.energy_wh = energy_wh;
            part.retired_wh = 0;
            self.certificates.push(part);
            self.held.insert((*to, new_id));
            if self.certificates[index].energy_wh == 0 {
                self.held.remove(&(*signer, id));
            }
            self.touch_certificate(new_id);
        }
        self.touch_certificate(id);
        Ok(())
    }

    /// Certified Wh held by `owner`, counted up to `cap` (newest certificates first).
    fn held_wh(&self, owner: &PublicKey, cap: u64) -> u64 {
        let total = self.held_total_wh.get(owner).copied().unwrap_or(0);
        u64::try_from(total.min(u128::from(cap))).unwrap_or(cap)
    }

    /// `owner` gained `wh` certified Wh (keep `held_total_wh` equal to the certificates).
    fn add_held(&mut self, owner: &PublicKey, wh: u64) {
        if wh > 0 {
            *self.held_total_wh.entry(*owner).or_insert(0) += u128::from(wh);
        }
    }

    /// `owner` gave up `wh` of its certified Wh (checked by the caller: it holds them).
    fn sub_held(&mut self, owner: &PublicKey, wh: u64) {
        if wh == 0 {
            return;
        }
        let total = self.held_total_wh.get_mut(owner);
        let left = total.map(|t| {
            assert!(*t >= u128::from(wh), "certified Wh checked before the move");
            *t -= u128::from(wh);
            *t
        });
        if left == Some(0) {
            self.held_total_wh.remove(owner);
        }
    }

    /// Move `energy_wh` (checked: `held_wh(from) >= energy_wh`) from `from`'s newest
    /// certificates to `to`. Every moved part becomes a new certificate (parent = the source),
    /// so newer ids always mean later acquisition and "newest first" follows the energy.
    fn move_held(&mut self, from: &PublicKey, to: &PublicKey, energy_wh: u64) {
        let mut left = energy_wh;
        while left > 0 {
            let Some(&(_, id)) = self.held.range((*from, 0)..=(*from, u64::MAX)).next_back() else {
                break;
            };
            let index = (id - 1) as usize;
            let take = left.min(self.certificates[index].energy_wh);
            let mut part = self.certificates[index].clone();
            self.certificates[index].energy_wh -= take;
            if self.certificates[index].energy_wh == 0 {
                self.held.remove(&(*from, id));
            }
            let new_id = self.certificates.len() as u64 + 1;
            part.id = new_id;
            part.parent = id;
            part.owner = *to;
            part.energy_wh = take;
            part.retired_wh = 0;
            self.certificates.push(part);
            self.held.insert((*to, new_id));
            self.sub_held(from, take);
            self.add_held(to, take);
            self.touch_certificate(id);
            self.touch_certificate(new_id);
            left -= take;
        }
        assert_eq!(left, 0, "certified Wh checked before the move");
    }

    fn certificate_move(
        &mut self,
        signer: &PublicKey,
        role: Role,
        to: &PublicKey,
        interval: u64,
        energy_wh: u64,
    ) -> Result<(), Reject> {
        if role != Role::Member {
            return Err(Reject::WrongRole);
        }
        if energy_wh == 0 {
            return Err(Reject::ZeroAmount);
        }
        if to == signer {
            return Err(Reject::SelfTransfer);
        }
        let target = self.accounts.get(to).ok_or(Reject::UnknownAccount)?;
        let storage = match (target.role, target.owner, target.device) {
            (Role::Meter, Some(owner), Some(device)) if owner == *signer && device.is_storage() => {
                true
            }
            (Role::Member, _, _) => false,
            _ => return Err(Reject::WrongRole),
        };
        let room = if storage {
            let r = self
                .reports
                .get(&(*to, interval))
                .ok_or(Reject::NoReportForInterval)?;
            r.consumed_wh - r.certified_in_wh
        } else {
            let (delivered, certified) = self
                .delivered
                .get(&(*signer, *to, interval))
                .copied()
                .unwrap_or((0, 0));
            delivered - certified
        };
        if energy_wh > room {
            return Err(Reject::CertifiedExceedsEnergy);
        }
        if self.held_wh(signer, energy_wh) < energy_wh {
            return Err(Reject::InsufficientCertifiedWh);
        }
        if storage {
            if let Some(r) = self.reports.get_mut(&(*to, interval)) {
                r.certified_in_wh += energy_wh;
            }
            self.changes.reports.insert((*to, interval));
        } else if let Some(d) = self.delivered.get_mut(&(*signer, *to, interval)) {
            d.1 += energy_wh;
        }
        self.move_held(signer, to, energy_wh);
        Ok(())
    }

    fn certificate_retire(
        &mut self,
        signer: &PublicKey,
        id: u64,
        energy_wh: u64,
    ) -> Result<(), Reject> {
        let cert = self.certificate(id).ok_or(Reject::UnknownCertificate)?;
        if cert.owner != *signer {
            return Err(Reject::NotCertificateOwner);
        }
        if energy_wh == 0 {
            return Err(Reject::ZeroAmount);
        }
        if energy_wh > cert.energy_wh {
            return Err(Reject::CertificateInsufficientWh);
        }
        self.sub_held(signer, energy_wh);
        let c = &mut self.certificates[(id - 1) as usize];
        c.energy_wh -= energy_wh;
        c.retired_wh += energy_wh;
        if c.energy_wh == 0 {
            self.held.remove(&(*signer, id));
        }
        self.touch_certificate(id);
        Ok(())
    }

    fn cer_distribution(
        &mut self,
        signer: &PublicKey,
        role: Role,
        period: u64,
        payouts: &[crate::tx::Payout],
    ) -> Result<(), Reject> {
        if role != Role::Treasury {
            return Err(Reject::WrongRole);
        }
        if self.cer.params.is_some() {
            return Err(Reject::CerComputedOnChain);
        }
        if self.cer_periods.contains(&period) {
            return Err(Reject::DuplicatePeriod);
        }
        debug_assert!(!payouts.is_empty() && payouts.len() <= MAX_PAYOUTS);
        let mut total: u128 = 0;
        for p in payouts {
            if self.role_of(&p.member) != Some(Role::Member) {
                return Err(Reject::UnknownMember);
            }
            if p.amount == 0 {
                return Err(Reject::ZeroAmount);
            }
            total = total.checked_add(p.amount).ok_or(Reject::Overflow)?;
        }
        if self.accounts[signer].balance < total {
            return Err(Reject::InsufficientFunds);
        }
        self.debit(signer, total);
        for p in payouts {
            self.credit(&p.member, p.amount);
        }
        self.cer_periods.insert(period);
        Ok(())
    }

    fn burn(&mut self, signer: &PublicKey, role: Role, amount: u128) -> Result<(), Reject> {
        if role == Role::Meter {
            return Err(Reject::MeterCannotHold);
        }
        if amount == 0 {
            return Err(Reject::ZeroAmount);
        }
        if self.accounts[signer].balance < amount {
            return Err(Reject::InsufficientFunds);
        }
        self.debit(signer, amount);
        self.totals.burned += amount;
        Ok(())
    }

    fn role_of(&self, key: &PublicKey) -> Option<Role> {
        self.accounts.get(key).map(|a| a.role)
    }

    fn create_account(
        &mut self,
        key: PublicKey,
        vk: VerifyingKey,
        role: Role,
        owner: Option<PublicKey>,
        device: Option<DeviceType>,
    ) {
        let index = self.account_keys.len() as u64;
        self.account_keys.push(key);
        self.accounts.insert(
            key,
            Account {
                key,
                role,
                index,
                balance: 0,
                reserved: 0,
                nonce: 0,
                owner,
                device,
            },
        );
        self.verifying_keys.0.insert(key, vk);
        if let (Some(owner), Some(DeviceType::SupplyPoint)) = (owner, device) {
            self.supply_points.insert((owner, key));
        }
        self.touch_account(key);
    }

    // Balance moves. Callers check funds first; the asserts guard the invariant (fail-stop).
    fn credit(&mut self, key: &PublicKey, amount: u128) {
        if amount == 0 {
            return;
        }
        let a = self
            .accounts
            .get_mut(key)
            .expect("credit to a known account");
        a.balance = a.balance.checked_add(amount).expect("balance <= supply");
        self.touch_account(*key);
    }

    fn debit(&mut self, key: &PublicKey, amount: u128) {
        let a = self
            .accounts
            .get_mut(key)
            .expect("debit from a known account");
        a.balance = a
            .balance
            .checked_sub(amount)
            .expect("funds checked before debit");
        self.touch_account(*key);
    }

    fn reserve(&mut self, key: &PublicKey, amount: u128) {
        let a = self
            .accounts
            .get_mut(key)
            .expect("reserve on a known account");
        a.reserved += amount;
        self.totals.reserved += amount;
        self.touch_account(*key);
    }

    fn unreserve(&mut self, key: &PublicKey, amount: u128) {
        let a = self
            .accounts
            .get_mut(key)
            .expect("unreserve on a known account");
        a.reserved = a
            .reserved
            .checked_sub(amount)
            .expect("reserved covers the trade");
        self.totals.reserved -= amount;
        self.touch_account(*key);
    }

    fn touch_account(&mut self, key: PublicKey) {
        self.dirty.accounts.insert(key);
        self.changes.accounts.insert(key);
    }
    fn touch_trade(&mut self, id: u128) {
        self.dirty.trades.insert(id);
        self.changes.trades.insert(id);
    }
    fn touch_certificate(&mut self, id: u64) {
        self.dirty.certificates.insert(id);
        self.changes.certificates.insert(id);
    }

    /// Fold the dirty records into the trees; returns the state root.
    fn commit_roots(&mut self) -> Hash {
        let dirty = std::mem::take(&mut self.dirty);
        let mut accounts: Vec<(u64, Hash)> = dirty
            .accounts
            .iter()
            .filter_map(|k| self.accounts.get(k))
            .map(|a| (a.index, leaf_hash(&a.to_bytes())))
            .collect();
        accounts.sort_unstable_by_key(|(i, _)| *i);
        let accounts: Vec<(usize, Hash)> =
            accounts.into_iter().map(|(i, h)| (i as usize, h)).collect();
        self.account_tree.set_many(&accounts);
        let mut trades: Vec<(u64, Hash)> = dirty
            .trades
            .iter()
            .filter_map(|id| self.trades.get(id))
            .map(|t| (t.index, leaf_hash(&t.to_bytes())))
            .collect();
        trades.sort_unstable_by_key(|(i, _)| *i);
        let trades: Vec<(usize, Hash)> = trades.into_iter().map(|(i, h)| (i as usize, h)).collect();
        self.trade_tree.set_many(&trades);
        // Ascending ids (a set), so new certificates are appended in order.
        let certificates: Vec<(usize, Hash)> = dirty
            .certificates
            .iter()
            .map(|id| {
                let c = &self.certificates[(id - 1) as usize];
                ((id - 1) as usize, leaf_hash(&c.to_bytes()))
            })
            .collect();
        self.certificate_tree.set_many(&certificates);
        if std::mem::take(&mut self.market_dirty) {
            self.market_root = self.market.root();
        }
        if std::mem::take(&mut self.cer_dirty) {
            self.cer_root = self.cer.root();
        }
        self.commit_days();
        self.state_root()
    }

    /// Check every ledger invariant from scratch (O(state)); `Err` names the broken one.
    pub fn check_invariants(&self) -> Result<(), String> {
        let t = &self.totals;
        if t.burned > t.minted {
            return Err(format!("burned {} exceeds minted {}", t.burned, t.minted));
        }
        let mut balances: u128 = 0;
        let mut reserved: u128 = 0;
        for a in self.accounts.values() {
            balances = balances
                .checked_add(a.balance)
                .ok_or("balance sum overflows")?;
            reserved = reserved
                .checked_add(a.reserved)
                .ok_or("reserved sum overflows")?;
            if a.role == Role::Meter && (a.balance != 0 || a.reserved != 0) {
                return Err("a meter holds RESCoin".into());
            }
        }
        if balances + reserved != t.supply() {
            return Err(format!(
                "balances {balances} + pending {reserved} != supply {} (minted {} - burned {})",
                t.supply(),
                t.minted,
                t.burned
            ));
        }
        let pending: u128 = self
            .trades
            .values()
            .filter(|x| x.status == TradeStatus::Pending)
            .map(|x| x.reserved)
            .sum();
        if pending != reserved || pending != t.reserved {
            return Err(format!(
                "pending trades hold {pending}, accounts reserve {reserved}, totals say {}",
                t.reserved
            ));
        }
        let pending_count = self
            .trades
            .values()
            .filter(|x| x.status == TradeStatus::Pending)
            .count();
        if pending_count != self.expiry.len() {
            return Err("pending trades and expiry queue disagree".into());
        }
        for tr in self.trades.values() {
            if tr.status == TradeStatus::Posted && tr.paid_seller + tr.paid_fee > tr.reserved {
                return Err(format!("trade {} paid more than reserved", tr.id));
            }
        }
        let certified: u128 = self
            .certificates
            .iter()
            .map(|c| u128::from(c.energy_wh) + u128::from(c.retired_wh))
            .sum::<u128>()
            + self.day_certified_wh();
        if certified != t.certified_wh || t.certified_wh > t.renewable_wh_metered {
            return Err(format!(
                "certificates cover {certified} Wh, totals {} Wh, renewable metered {} Wh",
                t.certified_wh, t.renewable_wh_metered
            ));
        }
        let holding = self.certificates.iter().filter(|c| c.energy_wh > 0);
        if holding.clone().count() != self.held.len()
            || holding
                .clone()
                .any(|c| !self.held.contains(&(c.owner, c.id)))
        {
            return Err("the index of held certificates disagrees with the certificates".into());
        }
        let mut held_total_wh: BTreeMap<PublicKey, u128> = BTreeMap::new();
        for c in holding {
            *held_total_wh.entry(c.owner).or_insert(0) += u128::from(c.energy_wh);
        }
        if held_total_wh != self.held_total_wh {
            return Err("the certified Wh held per owner disagree with the certificates".into());
        }
        for ((meter, interval), r) in &self.reports {
            if r.sold_wh > r.produced_wh {
                return Err(format!(
                    "meter {} interval {interval} sold {} Wh of {} Wh",
                    to_hex(meter),
                    r.sold_wh,
                    r.produced_wh
                ));
            }
        }
        // The incremental trees must equal trees rebuilt from the records.
        let acc: Vec<Hash> = self
            .account_keys
            .iter()
            .map(|k| leaf_hash(&self.accounts[k].to_bytes()))
            .collect();
        let trd: Vec<Hash> = self
            .trade_ids
            .iter()
            .map(|id| leaf_hash(&self.trades[id].to_bytes()))
            .collect();
        let crt: Vec<Hash> = self
            .certificates
            .iter()
            .map(|c| leaf_hash(&c.to_bytes()))
            .collect();
        if crate::merkle::merkle_root(&acc) != self.account_tree.root()
            || crate::merkle::merkle_root(&trd) != self.trade_tree.root()
            || crate::merkle::merkle_root(&crt) != self.certificate_tree.root()
            || self.days_root_from_records() != self.commitment().days_root
        {
            return Err("a state tree differs from its records".into());
        }
        Ok(())
    }
}

/// Trade-create fields, grouped so they cannot be swapped by position.
#[derive(Debug, Clone, Copy)]
struct NewTrade {
    seller: PublicKey,
    interval: u64,
    energy_wh: u64,
    price_base_per_kwh: u128,
    fee_base_per_kwh: u128,
    expires_at_s: u64,
}
