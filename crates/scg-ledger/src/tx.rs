//! Signed transactions and their canonical binary encoding (format version 1).
//!
//! Every transaction is one byte string (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | format version, `1` |
//! | 1 | 1 | kind (table below) |
//! | 2 | 16 | transaction id, `u128` (idempotency key) |
//! | 18 | 32 | signer: ed25519 public key |
//! | 50 | 8 | signer nonce, `u64` |
//! | 58 | n | body, by kind |
//! | 58+n | 64 | ed25519 signature |
//!
//! The signature covers `"SCG-LEDGER/TX/v1" || chain_id (u64) || bytes[0 .. 58+n]`, so a
//! transaction cannot be replayed on another chain. Bodies (`key` = 32-byte public key):
//!
//! | kind | name | body |
//! |---|---|---|
//! | 1 | register member | member key |
//! | 2 | register meter | meter key, member key, device `u8` |
//! | 3 | meter report | interval `u64`, produced Wh `u64`, consumed Wh `u64` |
//! | 4 | transfer | to key, amount `u128` |
//! | 5 | trade create | seller key, interval `u64`, energy Wh `u64`, price `u128` base/kWh, grid fee `u128` base/kWh, expires at `u64` s |
//! | 6 | trade post | trade id `u128`, delivered Wh `u64` |
//! | 7 | trade void | trade id `u128` |
//! | 8 | certificate transfer | certificate id `u64`, to key, Wh `u64` |
//! | 9 | certificate retire | certificate id `u64`, Wh `u64` |
//! | 10 | CER distribution | period `u64`, count `u16` (1..=64), count x (member key, amount `u128`) |
//! | 11 | burn | amount `u128` |
//! | 12 | certificate move | to key, interval `u64`, Wh `u64` |
//! | 13 | settlement batch | first record id `u128`, signer count `u16`, record count `u32`, batch root; then, *after* the signature, the payload: signers (key, signature) and records (signer index `u16`, kind `u8`, body) — see [`crate::batch`] |
//! | 14 | market open | epoch `u64` s, interval length `u64` s, mechanism `u8`, fee kind `u8`, fee value `i64`, max orders per member per interval `u16`, settle window `u64` s ([`crate::market::MarketParams`]) |
//! | 15 | meter capacity | meter key, capacity `u64` W |
//! | 16 | interval tariff | interval `u64`, retail `i64` milli-EUR/MWh, feed-in `i64` milli-EUR/MWh, peak `u8` (0/1) |
//! | 17 | order | interval `u64`, side `u8` (1 bid, 2 offer), energy `i64` Wh, limit `i64` milli-EUR/MWh, source `u8` (0 unspecified, 1 PV, 2 wind, 3 V2G, 4 battery) |
//! | 18 | gate close | interval `u64` |
//! | 19 | CER open | size class `u8`, PV bonus `u64`, valorisation `u64` (milli-EUR/MWh), producer share `u16` bp, period hours `u32`, issuance cap `u128` ([`crate::cer::CerParams`]) |
//! | 20 | zonal prices | first hour `u64`, count `u16` (1..=168), count x price `i64` milli-EUR/MWh |
//! | 21 | CER period close | period `u64` |
//! | 22 | issuance | amount `u128`, reference length `u8` (1..=64) + UTF-8 bytes, count `u16` (1..=40), count x (member key, signature 64) ([`crate::cer::IssuanceBody`]) |
//!
//! Kinds 14 to 18 are the on-chain market ([`crate::market`]), 19 to 22 the CER computed
//! on-chain and the quorum-signed issuance ([`crate::cer`]); they are refused inside a
//! settlement batch (a record has no nonce, and an order's place in the book is its nonce).
//!
//! A settlement batch is the one kind whose bytes go on after the signature: the signature, the
//! transaction hash ([`tx_hash`]) and its Merkle leaf ([`tx_leaf`]) cover the *committed part*
//! (header, batch head, signature: [`BATCH_COMMITTED_LEN`] bytes), which binds the payload
//! through the batch root; the decoder recomputes that root and refuses a payload that does not
//! match it. Batches may be up to [`crate::batch::MAX_BATCH_LEN`] bytes, every other kind up to
//! [`MAX_TX_LEN`].
//!
//! Devices: 1 PV, 2 wind, 3 battery, 4 EV charger, 5 supply point (the member's main meter).
//! Decoding is strict: unknown version/kind/device, a short or long input, or a count out of
//! range is a [`DecodeError`]; the decoder never panics (proptest and the cargo-fuzz target).
//! This module never does I/O.

use crate::batch::{BATCH_HEAD_LEN, BATCH_KIND, Batch, BatchHead, MAX_BATCH_LEN};
use crate::cer::{CerParams, IssuanceBody, MAX_ZONAL_PRICES};
use crate::codec::{DecodeError, Reader, Writer};
use crate::day::{DAY_CLOSE_KIND, DayClose, MEMBER_DAY_KIND, MemberDay};
use crate::market::{IntervalTariff, MarketParams, OrderBody};
use crate::merkle::{Hash, sha256};
use ed25519_dalek::{Signer, SigningKey};

/// An ed25519 public key (account identity).
pub type PublicKey = [u8; 32];

/// Current transaction format version.
pub const TX_VERSION: u8 = 1;
/// Signature domain tag.
pub const TX_DOMAIN: &[u8] = b"SCG-LEDGER/TX/v1";
/// Length of the fixed header before the body.
pub const TX_HEADER_LEN: usize = 58;
/// Length of the signature trailer.
pub const SIGNATURE_LEN: usize = 64;
/// Largest encoded transaction.
pub const MAX_TX_LEN: usize = 4096;
/// Length of the committed part of a settlement batch: header, batch head, signature.
pub const BATCH_COMMITTED_LEN: usize = TX_HEADER_LEN + BATCH_HEAD_LEN + SIGNATURE_LEN;
/// Most payouts in one CER distribution.
pub const MAX_PAYOUTS: usize = 64;

/// The kind of device behind a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum DeviceType {
    /// Photovoltaic array (renewable).
    Pv = 1,
    /// Wind turbine (renewable).
    Wind = 2,
    /// Stationary battery (storage: discharge carries only the certificates moved into it).
    Battery = 3,
    /// EV charger (storage: V2G carries only the certificates moved into it).
    EvCharger = 4,
    /// The member's supply point (main import/export meter).
    SupplyPoint = 5,
}

impl DeviceType {
    /// From the wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Pv,
            2 => Self::Wind,
            3 => Self::Battery,
            4 => Self::EvCharger,
            5 => Self::SupplyPoint,
            _ => return None,
        })
    }
    /// True for sources whose production mints RESCoin and earns an origin certificate.
    pub fn is_renewable(self) -> bool {
        matches!(self, Self::Pv | Self::Wind)
    }
    /// True for storage (battery, EV charger): it holds the certified Wh moved into it and
    /// passes them back to its member when it discharges; it never mints or issues.
    pub fn is_storage(self) -> bool {
        matches!(self, Self::Battery | Self::EvCharger)
    }
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pv => "pv",
            Self::Wind => "wind",
            Self::Battery => "battery",
            Self::EvCharger => "ev-charger",
            Self::SupplyPoint => "supply-point",
        }
    }
}

/// One payout of a CER incentive distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payout {
    /// Receiving member.
    pub member: PublicKey,
    /// RESCoin base units.
    pub amount: u128,
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxBody {
    /// Operator admits a member.
    RegisterMember {
        /// New member key.
        member: PublicKey,
    },
    /// Operator binds a meter key to a member and a device type.
    RegisterMeter {
        /// Meter key.
        meter: PublicKey,
        /// Owning member.
        member: PublicKey,
        /// Device type.
        device: DeviceType,
    },
    /// A meter reports one interval.
    MeterReport {
        /// Interval index (opaque to the ledger; the simulation uses the step index).
        interval: u64,
        /// Energy produced (exported by the device) in Wh.
        produced_wh: u64,
        /// Energy consumed in Wh.
        consumed_wh: u64,
    },
    /// Move RESCoin.
    Transfer {
        /// Recipient.
        to: PublicKey,
        /// Base units.
        amount: u128,
    },
    /// Buyer reserves payment for a cleared P2P trade (two-phase: pending).
    TradeCreate {
        /// Selling member.
        seller: PublicKey,
        /// Delivery interval.
        interval: u64,
        /// Energy traded, Wh.
        energy_wh: u64,
        /// Price, RESCoin base units per kWh.
        price_base_per_kwh: u128,
        /// Grid fee to the DSO, base units per kWh.
        fee_base_per_kwh: u128,
        /// Block timestamp (s) at or after which the pending trade voids itself.
        expires_at_s: u64,
    },
    /// A seller's meter posts the delivered energy (<= traded); the rest returns to the buyer.
    TradePost {
        /// Id of the trade-create transaction.
        trade_id: u128,
        /// Delivered Wh.
        delivered_wh: u64,
    },
    /// The seller (or the operator) voids a pending trade.
    TradeVoid {
        /// Id of the trade-create transaction.
        trade_id: u128,
    },
    /// Hand (part of) an origin certificate to another member.
    CertificateTransfer {
        /// Certificate id.
        certificate_id: u64,
        /// New owner.
        to: PublicKey,
        /// Wh moved.
        energy_wh: u64,
    },
    /// Retire (claim) Wh of a certificate.
    CertificateRetire {
        /// Certificate id.
        certificate_id: u64,
        /// Wh retired.
        energy_wh: u64,
    },
    /// Treasury pays CER incentives to members.
    CerDistribution {
        /// Incentive period (each paid at most once).
        period: u64,
        /// Payouts.
        payouts: Vec<Payout>,
    },
    /// Destroy RESCoin (redemption).
    Burn {
        /// Base units.
        amount: u128,
    },
    /// Renewable origin follows the energy: a member moves `energy_wh` of the certified Wh it
    /// holds (newest certificates first, split as needed) either into one of its own storage
    /// meters (battery, EV charger) — at most what that meter metered as charge in `interval`
    /// and has not yet certified — or to a member it sold P2P energy to in `interval` — at
    /// most the Wh posted in its trades with that buyer in that interval and not yet certified.
    /// A storage meter passes its certified Wh back to its member when it reports a discharge.
    CertificateMove {
        /// A storage meter of the signer, or a buyer member.
        to: PublicKey,
        /// Interval of the charge or the delivery.
        interval: u64,
        /// Certified Wh moved.
        energy_wh: u64,
    },
    /// Operator submits a settlement batch: records co-signed by their authors, committed by a
    /// Merkle root, each applied as the transaction it stands for (see [`crate::batch`]).
    SettlementBatch(Batch),
    /// Operator opens the on-chain market (once per chain).
    MarketOpen(MarketParams),
    /// Operator registers a meter's capacity (bounds its member's offers).
    MeterCapacity {
        /// A registered meter.
        meter: PublicKey,
        /// Capacity, W.
        capacity_w: u64,
    },
    /// Operator posts the grid's prices of one interval, before its gate.
    IntervalTariff {
        /// Interval.
        interval: u64,
        /// The grid's prices and peak flag.
        tariff: IntervalTariff,
    },
    /// A member's bid or offer for one interval.
    Order(OrderBody),
    /// Any member (or the operator) closes an interval's gate: its orders clear.
    GateClose {
        /// Interval.
        interval: u64,
    },
    /// Operator opens the CER accounting and fixes the issuance cap (once, market open).
    CerOpen(CerParams),
    /// Operator posts the zonal prices of consecutive market hours (the TIP's input).
    ZonalPrices {
        /// Market hour of the first price.
        first_hour: u64,
        /// Prices, milli-EUR/MWh (1..=168).
        prices_milli_eur_per_mwh: Vec<i64>,
    },
    /// Any member (or the operator) closes an incentive period: the ledger computes the CER
    /// from its readings and pays each member its share from the treasury.
    CerPeriodClose {
        /// Period.
        period: u64,
    },
    /// RESCoin issued to the treasury under the co-signatures of more than two thirds of the
    /// members, within the cap (the euro on-ramp).
    Issuance(IssuanceBody),
    /// A member's day in the compact layout: its packed readings and day figures (batch
    /// records only; see [`crate::day`]).
    MemberDay(MemberDay),
    /// The operator closes a day of the compact layout: the day's member days apply if they
    /// add up (batch records only; see [`crate::day`]).
    DayClose(DayClose),
}

impl TxBody {
    /// Wire code of the kind.
    pub fn kind(&self) -> u8 {
        match self {
            Self::RegisterMember { .. } => 1,
            Self::RegisterMeter { .. } => 2,
            Self::MeterReport { .. } => 3,
            Self::Transfer { .. } => 4,
            Self::TradeCreate { .. } => 5,
            Self::TradePost { .. } => 6,
            Self::TradeVoid { .. } => 7,
            Self::CertificateTransfer { .. } => 8,
            Self::CertificateRetire { .. } => 9,
            Self::CerDistribution { .. } => 10,
            Self::Burn { .. } => 11,
            Self::CertificateMove { .. } => 12,
            Self::SettlementBatch(_) => BATCH_KIND,
            Self::MarketOpen(_) => 14,
            Self::MeterCapacity { .. } => 15,
            Self::IntervalTariff { .. } => 16,
            Self::Order(_) => 17,
            Self::GateClose { .. } => 18,
            Self::CerOpen(_) => 19,
            Self::ZonalPrices { .. } => 20,
            Self::CerPeriodClose { .. } => 21,
            Self::Issuance(_) => 22,
            Self::MemberDay(_) => MEMBER_DAY_KIND,
            Self::DayClose(_) => DAY_CLOSE_KIND,
        }
    }

    /// Human name of the kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::RegisterMember { .. } => "register-member",
            Self::RegisterMeter { .. } => "register-meter",
            Self::MeterReport { .. } => "meter-report",
            Self::Transfer { .. } => "transfer",
            Self::TradeCreate { .. } => "trade-create",
            Self::TradePost { .. } => "trade-post",
            Self::TradeVoid { .. } => "trade-void",
            Self::CertificateTransfer { .. } => "certificate-transfer",
            Self::CertificateRetire { .. } => "certificate-retire",
            Self::CerDistribution { .. } => "cer-distribution",
            Self::Burn { .. } => "burn",
            Self::CertificateMove { .. } => "certificate-move",
            Self::SettlementBatch(_) => "settlement-batch",
            Self::MarketOpen(_) => "market-open",
            Self::MeterCapacity { .. } => "meter-capacity",
            Self::IntervalTariff { .. } => "interval-tariff",
            Self::Order(_) => "order",
            Self::GateClose { .. } => "gate-close",
            Self::CerOpen(_) => "cer-open",
            Self::ZonalPrices { .. } => "zonal-prices",
            Self::CerPeriodClose { .. } => "cer-period-close",
            Self::Issuance(_) => "issuance",
            Self::MemberDay(_) => "member-day",
            Self::DayClose(_) => "day-close",
        }
    }

    /// The body bytes (of a batch: its head; the payload follows the signature).
    pub(crate) fn encode_body(&self, w: &mut Writer) {
        match self {
            Self::RegisterMember { member } => w.bytes(member),
            Self::RegisterMeter {
                meter,
                member,
                device,
            } => {
                w.bytes(meter);
                w.bytes(member);
                w.u8(*device as u8);
            }
            Self::MeterReport {
                interval,
                produced_wh,
                consumed_wh,
            } => {
                w.u64(*interval);
                w.u64(*produced_wh);
                w.u64(*consumed_wh);
            }
            Self::Transfer { to, amount } => {
                w.bytes(to);
                w.u128(*amount);
            }
            Self::TradeCreate {
                seller,
                interval,
                energy_wh,
                price_base_per_kwh,
                fee_base_per_kwh,
                expires_at_s,
            } => {
                w.bytes(seller);
                w.u64(*interval);
                w.u64(*energy_wh);
                w.u128(*price_base_per_kwh);
                w.u128(*fee_base_per_kwh);
                w.u64(*expires_at_s);
            }
            Self::TradePost {
                trade_id,
                delivered_wh,
            } => {
                w.u128(*trade_id);
                w.u64(*delivered_wh);
            }
            Self::TradeVoid { trade_id } => w.u128(*trade_id),
            Self::CertificateTransfer {
                certificate_id,
                to,
                energy_wh,
            } => {
                w.u64(*certificate_id);
                w.bytes(to);
                w.u64(*energy_wh);
            }
            Self::CertificateRetire {
                certificate_id,
                energy_wh,
            } => {
                w.u64(*certificate_id);
                w.u64(*energy_wh);
            }
            Self::CerDistribution { period, payouts } => {
                w.u64(*period);
                // Bounded by MAX_PAYOUTS when built through `Tx::sign`; saturate defensively.
                w.u16(u16::try_from(payouts.len()).unwrap_or(u16::MAX));
                for p in payouts {
                    w.bytes(&p.member);
                    w.u128(p.amount);
                }
            }
            Self::Burn { amount } => w.u128(*amount),
            Self::CertificateMove {
                to,
                interval,
                energy_wh,
            } => {
                w.bytes(to);
                w.u64(*interval);
                w.u64(*energy_wh);
            }
            Self::SettlementBatch(b) => b.encode_head(w),
            Self::MarketOpen(p) => p.encode(w),
            Self::MeterCapacity { meter, capacity_w } => {
                w.bytes(meter);
                w.u64(*capacity_w);
            }
            Self::IntervalTariff { interval, tariff } => {
                w.u64(*interval);
                w.u64(tariff.retail_milli_eur_per_mwh as u64);
                w.u64(tariff.feed_in_milli_eur_per_mwh as u64);
                w.u8(u8::from(tariff.peak));
            }
            Self::Order(o) => o.encode(w),
            Self::GateClose { interval } => w.u64(*interval),
            Self::CerOpen(p) => p.encode(w),
            Self::ZonalPrices {
                first_hour,
                prices_milli_eur_per_mwh,
            } => {
                w.u64(*first_hour);
                // Bounded by the decoder; saturate defensively (such bytes will not decode).
                w.u16(u16::try_from(prices_milli_eur_per_mwh.len()).unwrap_or(u16::MAX));
                for p in prices_milli_eur_per_mwh {
                    w.u64(*p as u64);
                }
            }
            Self::CerPeriodClose { period } => w.u64(*period),
            Self::Issuance(b) => b.encode(w),
            Self::MemberDay(d) => d.encode(w),
            Self::DayClose(c) => c.encode(w),
        }
    }

    /// Decode a body of `kind` (not a batch: [`Tx::decode`] reads those).
    pub(crate) fn decode(kind: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match kind {
            1 => Self::RegisterMember {
                member: r.array("member")?,
            },
            2 => {
                let meter = r.array("meter")?;
                let member = r.array("member")?;
                let code = r.u8("device")?;
                let device = DeviceType::from_code(code).ok_or(DecodeError::Invalid {
                    field: "device",
                    value: u64::from(code),
                })?;
                Self::RegisterMeter {
                    meter,
                    member,
                    device,
                }
            }
            3 => Self::MeterReport {
                interval: r.u64("interval")?,
                produced_wh: r.u64("produced_wh")?,
                consumed_wh: r.u64("consumed_wh")?,
            },
            4 => Self::Transfer {
                to: r.array("to")?,
                amount: r.u128("amount")?,
            },
            5 => Self::TradeCreate {
                seller: r.array("seller")?,
                interval: r.u64("interval")?,
                energy_wh: r.u64("energy_wh")?,
                price_base_per_kwh: r.u128("price_base_per_kwh")?,
                fee_base_per_kwh: r.u128("fee_base_per_kwh")?,
                expires_at_s: r.u64("expires_at_s")?,
            },
            6 => Self::TradePost {
                trade_id: r.u128("trade_id")?,
                delivered_wh: r.u64("delivered_wh")?,
            },
            7 => Self::TradeVoid {
                trade_id: r.u128("trade_id")?,
            },
            8 => Self::CertificateTransfer {
                certificate_id: r.u64("certificate_id")?,
                to: r.array("to")?,
                energy_wh: r.u64("energy_wh")?,
            },
            9 => Self::CertificateRetire {
                certificate_id: r.u64("certificate_id")?,
                energy_wh: r.u64("energy_wh")?,
            },
            10 => {
                let period = r.u64("period")?;
                let count = r.u16("payout_count")?;
                if count == 0 || usize::from(count) > MAX_PAYOUTS {
                    return Err(DecodeError::Invalid {
                        field: "payout_count",
                        value: u64::from(count),
                    });
                }
                let mut payouts = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    payouts.push(Payout {
                        member: r.array("payout_member")?,
                        amount: r.u128("payout_amount")?,
                    });
                }
                Self::CerDistribution { period, payouts }
            }
            11 => Self::Burn {
                amount: r.u128("amount")?,
            },
            12 => Self::CertificateMove {
                to: r.array("to")?,
                interval: r.u64("interval")?,
                energy_wh: r.u64("energy_wh")?,
            },
            14 => Self::MarketOpen(MarketParams::decode(r)?),
            15 => Self::MeterCapacity {
                meter: r.array("meter")?,
                capacity_w: r.u64("capacity_w")?,
            },
            16 => {
                let interval = r.u64("interval")?;
                let retail = r.u64("retail_milli_eur_per_mwh")? as i64;
                let feed_in = r.u64("feed_in_milli_eur_per_mwh")? as i64;
                let peak = match r.u8("peak")? {
                    0 => false,
                    1 => true,
                    other => {
                        return Err(DecodeError::Invalid {
                            field: "peak",
                            value: u64::from(other),
                        });
                    }
                };
                Self::IntervalTariff {
                    interval,
                    tariff: IntervalTariff {
                        retail_milli_eur_per_mwh: retail,
                        feed_in_milli_eur_per_mwh: feed_in,
                        peak,
                    },
                }
            }
            17 => Self::Order(OrderBody::decode(r)?),
            18 => Self::GateClose {
                interval: r.u64("interval")?,
            },
            19 => Self::CerOpen(CerParams::decode(r)?),
            20 => {
                let first_hour = r.u64("first_hour")?;
                let count = r.u16("price_count")?;
                if count == 0 || usize::from(count) > MAX_ZONAL_PRICES {
                    return Err(DecodeError::Invalid {
                        field: "price_count",
                        value: u64::from(count),
                    });
                }
                let mut prices = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    prices.push(r.u64("price_milli_eur_per_mwh")? as i64);
                }
                Self::ZonalPrices {
                    first_hour,
                    prices_milli_eur_per_mwh: prices,
                }
            }
            21 => Self::CerPeriodClose {
                period: r.u64("period")?,
            },
            22 => Self::Issuance(IssuanceBody::decode(r)?),
            MEMBER_DAY_KIND => Self::MemberDay(MemberDay::decode(r)?),
            DAY_CLOSE_KIND => Self::DayClose(DayClose::decode(r)?),
            other => {
                return Err(DecodeError::Invalid {
                    field: "kind",
                    value: u64::from(other),
                });
            }
        })
    }
}

/// A decoded, signed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    /// 128-bit idempotency id.
    pub id: u128,
    /// Signer's public key.
    pub signer: PublicKey,
    /// Signer's nonce (must equal the account's next nonce).
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
    /// ed25519 signature.
    pub signature: [u8; 64],
}

/// The message an ed25519 signature covers.
pub fn signing_message(chain_id: u64, unsigned: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(TX_DOMAIN.len() + 8 + unsigned.len());
    m.extend_from_slice(TX_DOMAIN);
    m.extend_from_slice(&chain_id.to_le_bytes());
    m.extend_from_slice(unsigned);
    m
}

/// Id and nonce of a transaction being signed.
#[derive(Debug, Clone, Copy)]
struct Head {
    id: u128,
    nonce: u64,
}

/// Encode and sign `body` by `key`: the canonical bytes and the signature. `batch_root` is the
/// body's batch root when the caller has it ([`Batch::root`]; computed here otherwise).
fn encode_signed(
    chain_id: u64,
    key: &SigningKey,
    head: Head,
    body: &TxBody,
    batch_root: Option<&Hash>,
) -> (Vec<u8>, [u8; 64]) {
    let mut w = Writer::with_capacity(TX_HEADER_LEN + 128 + SIGNATURE_LEN);
    w.u8(TX_VERSION);
    w.u8(body.kind());
    w.u128(head.id);
    w.bytes(key.verifying_key().as_bytes());
    w.u64(head.nonce);
    match (body, batch_root) {
        (TxBody::SettlementBatch(b), Some(root)) => b.encode_head_with(&mut w, root),
        _ => body.encode_body(&mut w),
    }
    let signature = key.sign(&signing_message(chain_id, &w.buf)).to_bytes();
    w.bytes(&signature);
    if let TxBody::SettlementBatch(b) = body {
        b.encode_payload(&mut w);
    }
    (w.buf, signature)
}

impl Tx {
    /// Build, sign and encode a transaction. Returns the canonical bytes.
    ///
    /// A CER distribution with 0 or more than [`MAX_PAYOUTS`] payouts still encodes (so tests
    /// can build it) but will not decode; the state machine records it as malformed.
    pub fn sign(chain_id: u64, key: &SigningKey, id: u128, nonce: u64, body: TxBody) -> Vec<u8> {
        let root = match &body {
            TxBody::SettlementBatch(b) => Some(b.root()),
            _ => None,
        };
        let head = Head { id, nonce };
        encode_signed(chain_id, key, head, &body, root.as_ref()).0
    }

    /// Sign a settlement batch whose root is known ([`Batch::sign_rooted`] returns it), so that
    /// its records are not hashed again: the transaction and its canonical bytes (those of
    /// [`Tx::sign`]).
    pub(crate) fn sign_batch(
        chain_id: u64,
        key: &SigningKey,
        id: u128,
        nonce: u64,
        batch: (Batch, &Hash),
    ) -> (Self, Vec<u8>) {
        let (batch, root) = batch;
        let body = TxBody::SettlementBatch(batch);
        let (bytes, signature) =
            encode_signed(chain_id, key, Head { id, nonce }, &body, Some(root));
        let tx = Self {
            id,
            signer: key.verifying_key().to_bytes(),
            nonce,
            body,
            signature,
        };
        (tx, bytes)
    }

    /// Canonical bytes of this (already signed) transaction: `decode(encode(t)) == t`, and for
    /// any bytes that decode, `encode(decode(b)) == b`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(TX_HEADER_LEN + 128 + SIGNATURE_LEN);
        w.u8(TX_VERSION);
        w.u8(self.body.kind());
        w.u128(self.id);
        w.bytes(&self.signer);
        w.u64(self.nonce);
        self.body.encode_body(&mut w);
        w.bytes(&self.signature);
        if let TxBody::SettlementBatch(b) = &self.body {
            b.encode_payload(&mut w);
        }
        w.buf
    }

    /// Decode canonical bytes (the signature is *not* checked here).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let max = max_len(bytes);
        if bytes.len() > max {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                max,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != TX_VERSION {
            return Err(DecodeError::Invalid {
                field: "version",
                value: u64::from(version),
            });
        }
        let kind = r.u8("kind")?;
        let id = r.u128("id")?;
        let signer = r.array("signer")?;
        let nonce = r.u64("nonce")?;
        let (body, signature) = if kind == BATCH_KIND {
            let head = BatchHead::decode(&mut r)?;
            let signature = r.array("signature")?;
            let batch = Batch::decode_payload(head, &mut r)?;
            (TxBody::SettlementBatch(batch), signature)
        } else {
            let body = TxBody::decode(kind, &mut r)?;
            (body, r.array("signature")?)
        };
        r.finish()?;
        Ok(Self {
            id,
            signer,
            nonce,
            body,
            signature,
        })
    }

    /// The public keys this transaction names (signer first), for the per-account index.
    pub fn involved_keys(&self) -> Vec<PublicKey> {
        let mut keys = vec![self.signer];
        body_keys(&self.body, &mut keys);
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// The keys a body names besides its signer (a batch: its signers' and its records').
fn body_keys(body: &TxBody, keys: &mut Vec<PublicKey>) {
    match body {
        TxBody::RegisterMember { member } => keys.push(*member),
        TxBody::RegisterMeter { meter, member, .. } => {
            keys.push(*meter);
            keys.push(*member);
        }
        TxBody::Transfer { to, .. }
        | TxBody::CertificateTransfer { to, .. }
        | TxBody::CertificateMove { to, .. } => keys.push(*to),
        TxBody::TradeCreate { seller, .. } => keys.push(*seller),
        TxBody::MeterCapacity { meter, .. } => keys.push(*meter),
        TxBody::CerDistribution { payouts, .. } => keys.extend(payouts.iter().map(|p| p.member)),
        TxBody::Issuance(b) => keys.extend(b.cosignatures.iter().map(|c| c.member)),
        TxBody::SettlementBatch(b) => {
            keys.extend(b.signers.iter().map(|s| s.key));
            // A record's keys as the transaction it stands for names them (the zero key is
            // the placeholder signer of that view, never indexed).
            let mut named = Vec::new();
            for r in &b.records {
                body_keys(&r.body, &mut named);
            }
            keys.extend(named.into_iter().filter(|k| *k != [0; 32]));
        }
        TxBody::MeterReport { .. }
        | TxBody::TradePost { .. }
        | TxBody::TradeVoid { .. }
        | TxBody::CertificateRetire { .. }
        | TxBody::Burn { .. }
        | TxBody::MarketOpen(_)
        | TxBody::IntervalTariff { .. }
        | TxBody::Order(_)
        | TxBody::GateClose { .. }
        | TxBody::CerOpen(_)
        | TxBody::ZonalPrices { .. }
        | TxBody::CerPeriodClose { .. }
        | TxBody::MemberDay(_)
        | TxBody::DayClose(_) => {}
    }
}

fn is_batch(bytes: &[u8]) -> bool {
    bytes.len() >= BATCH_COMMITTED_LEN && bytes[0] == TX_VERSION && bytes[1] == BATCH_KIND
}

/// Largest length allowed for these bytes: [`MAX_BATCH_LEN`] for a settlement batch (by its
/// kind byte), [`MAX_TX_LEN`] otherwise.
pub fn max_len(bytes: &[u8]) -> usize {
    if bytes.get(1) == Some(&BATCH_KIND) {
        MAX_BATCH_LEN
    } else {
        MAX_TX_LEN
    }
}

/// The bytes the signer's signature covers (after the chain's [`signing_message`] prefix):
/// everything before the signature (for a batch: header and batch head).
pub fn unsigned_part(bytes: &[u8]) -> &[u8] {
    if is_batch(bytes) {
        &bytes[..TX_HEADER_LEN + BATCH_HEAD_LEN]
    } else {
        &bytes[..bytes.len().saturating_sub(SIGNATURE_LEN)]
    }
}

/// The bytes a transaction's hash and Merkle leaf cover: all of them, or a batch's committed
/// part (which binds its payload through the batch root).
pub fn committed_part(bytes: &[u8]) -> &[u8] {
    if is_batch(bytes) {
        &bytes[..BATCH_COMMITTED_LEN]
    } else {
        bytes
    }
}

/// Hash of a transaction's bytes as a Merkle leaf (the tx root is over these; a batch's
/// committed part, see the module doc).
pub fn tx_leaf(bytes: &[u8]) -> Hash {
    crate::merkle::leaf_hash(committed_part(bytes))
}

/// Hash of a transaction's bytes (its identity in the history digest; a batch's committed
/// part).
pub fn tx_hash(bytes: &[u8]) -> Hash {
    sha256(&[b"SCG-LEDGER/TXHASH/v1", committed_part(bytes)])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::market::{IntervalTariff, MarketParams, OrderBody};
    use proptest::prelude::*;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn all_bodies() -> Vec<TxBody> {
        let k = [7u8; 32];
        vec![
            TxBody::RegisterMember { member: k },
            TxBody::RegisterMeter {
                meter: k,
                member: [8; 32],
                device: DeviceType::Wind,
            },
            TxBody::MeterReport {
                interval: 3,
                produced_wh: 4,
                consumed_wh: 5,
            },
            TxBody::Transfer { to: k, amount: 9 },
            TxBody::TradeCreate {
                seller: k,
                interval: 1,
                energy_wh: 2,
                price_base_per_kwh: 3,
                fee_base_per_kwh: 4,
                expires_at_s: 5,
            },
            TxBody::TradePost {
                trade_id: 1,
                delivered_wh: 2,
            },
            TxBody::TradeVoid { trade_id: 3 },
            TxBody::CertificateTransfer {
                certificate_id: 1,
                to: k,
                energy_wh: 2,
            },
            TxBody::CertificateRetire {
                certificate_id: 1,
                energy_wh: 2,
            },
            TxBody::CerDistribution {
                period: 1,
                payouts: vec![Payout {
                    member: k,
                    amount: 5,
                }],
            },
            TxBody::Burn { amount: 1 },
            TxBody::CertificateMove {
                to: k,
                interval: 4,
                energy_wh: 2,
            },
            TxBody::MarketOpen(MarketParams {
                epoch_s: 1,
                interval_s: 900,
                mechanism: scg_market::Mechanism::PayAsBid,
                fee: scg_market::GridFee::Percent { basis_points: 500 },
                max_orders_per_member: 3,
                settle_window_s: 60,
            }),
            TxBody::MeterCapacity {
                meter: k,
                capacity_w: 3_000,
            },
            TxBody::IntervalTariff {
                interval: 9,
                tariff: IntervalTariff {
                    retail_milli_eur_per_mwh: -5,
                    feed_in_milli_eur_per_mwh: 7,
                    peak: true,
                },
            },
            TxBody::Order(OrderBody {
                interval: 9,
                side: crate::market::OrderSide::Bid,
                energy_wh: -3,
                limit_milli_eur_per_mwh: i64::MIN,
                source: crate::market::OfferSource::Unspecified,
            }),
            TxBody::GateClose { interval: 9 },
            TxBody::CerOpen(crate::cer::CerParams {
                rule: crate::cer::CerRule {
                    size_class: crate::cer::SizeClass::Over600Kw,
                    pv_bonus_milli_eur_per_mwh: 10_000,
                    valorisation_milli_eur_per_mwh: 8_000,
                    producer_share_bp: 5_000,
                },
                period_hours: 24,
                issuance_cap_base: 5,
            }),
            TxBody::ZonalPrices {
                first_hour: 3,
                prices_milli_eur_per_mwh: vec![-1, 120_000],
            },
            TxBody::CerPeriodClose { period: 2 },
            TxBody::Issuance(crate::cer::IssuanceBody {
                amount: 7,
                reference: "euro deposit".into(),
                cosignatures: vec![crate::cer::Cosignature {
                    member: k,
                    signature: [3; 64],
                }],
            }),
            TxBody::MemberDay(crate::day::MemberDay {
                first_interval: 24,
                intervals: 4,
                series: vec![
                    (
                        crate::day::Quantity::Produced(DeviceType::Pv),
                        vec![0, 300, 300, 5],
                    ),
                    (crate::day::Quantity::P2pSold, vec![0, 200, 0, 0]),
                ],
                money: crate::day::DayMoney {
                    received_base: 24_000_000,
                    paid_base: 0,
                    fees_base: 0,
                },
                certified: crate::day::DayCertified {
                    received_wh: 0,
                    sold_wh: 200,
                    storage: [(0, 0), (0, 0)],
                },
            }),
            TxBody::DayClose(crate::day::DayClose {
                first_interval: 24,
                intervals: 4,
                members: 2,
            }),
        ]
    }

    #[test]
    fn cer_counts_and_references_out_of_range_are_errors() {
        let bodies = all_bodies();
        let field_of = |b: &[u8]| match Tx::decode(b) {
            Err(DecodeError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        // Size class 0, price count 0 and 169, reference length 0 and 65, cosigners 0 and 41,
        // a reference that is not UTF-8.
        let mut b = Tx::sign(1, &key(1), 1, 0, bodies[17].clone());
        b[TX_HEADER_LEN] = 0;
        assert_eq!(field_of(&b), "size_class");
        let mut b = Tx::sign(1, &key(1), 1, 0, bodies[18].clone());
        b[TX_HEADER_LEN + 8] = 0;
        assert_eq!(field_of(&b), "price_count");
        b[TX_HEADER_LEN + 8] = 169;
        assert_eq!(field_of(&b), "price_count");
        let issuance = Tx::sign(1, &key(1), 1, 0, bodies[20].clone());
        let mut b = issuance.clone();
        b[TX_HEADER_LEN + 16] = 0;
        assert_eq!(field_of(&b), "reference_len");
        b[TX_HEADER_LEN + 16] = 65;
        assert_eq!(field_of(&b), "reference_len");
        let mut b = issuance.clone();
        b[TX_HEADER_LEN + 17] = 0xff;
        assert_eq!(field_of(&b), "reference");
        let count_at = TX_HEADER_LEN + 17 + "euro deposit".len();
        let mut b = issuance.clone();
        b[count_at] = 0;
        assert_eq!(field_of(&b), "cosigner_count");
        b[count_at] = 41;
        assert_eq!(field_of(&b), "cosigner_count");
    }

    #[test]
    fn every_kind_round_trips_with_documented_layout() {
        for (i, body) in all_bodies().into_iter().enumerate() {
            let bytes = Tx::sign(42, &key(1), 1000 + i as u128, 7, body.clone());
            assert_eq!(bytes[0], TX_VERSION);
            assert_eq!(bytes[1], body.kind());
            assert_eq!(
                u128::from_le_bytes(bytes[2..18].try_into().unwrap()),
                1000 + i as u128
            );
            assert_eq!(&bytes[18..50], key(1).verifying_key().as_bytes());
            assert_eq!(u64::from_le_bytes(bytes[50..58].try_into().unwrap()), 7);
            let tx = Tx::decode(&bytes).unwrap();
            assert_eq!(tx.body, body);
            assert_eq!(tx.encode(), bytes);
            assert_eq!(tx.nonce, 7);
            // Truncation and extension both fail.
            assert!(Tx::decode(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Tx::decode(&longer), Err(DecodeError::Trailing { count: 1 }));
        }
    }

    #[test]
    fn market_codes_out_of_range_are_errors() {
        let invalid = |body: TxBody, offset: usize, value: u8, field: &str| {
            let mut b = Tx::sign(1, &key(1), 1, 0, body);
            b[TX_HEADER_LEN + offset] = value;
            match Tx::decode(&b) {
                Err(DecodeError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        };
        let bodies = all_bodies();
        let open = bodies[12].clone();
        invalid(open.clone(), 16, 4, "mechanism");
        invalid(open.clone(), 17, 3, "fee_kind");
        // Fee kind "none" with a value is not canonical.
        let none = TxBody::MarketOpen(MarketParams {
            fee: scg_market::GridFee::None,
            ..match open {
                TxBody::MarketOpen(p) => p,
                _ => unreachable!(),
            }
        });
        invalid(none, 18, 1, "fee_value");
        invalid(bodies[14].clone(), 24, 2, "peak");
        invalid(bodies[15].clone(), 8, 3, "side");
        invalid(bodies[15].clone(), 25, 5, "source");
    }

    #[test]
    fn sign_batch_gives_the_bytes_of_sign_and_the_transaction_they_decode_to() {
        let records = vec![
            (key(2), TxBody::Burn { amount: 1 }),
            (
                key(3),
                TxBody::MeterReport {
                    interval: 4,
                    produced_wh: 5,
                    consumed_wh: 6,
                },
            ),
            (key(2), TxBody::Burn { amount: 7 }),
        ];
        let (batch, root) = Batch::sign_rooted(9, 100, records).unwrap();
        assert_eq!(root, batch.root());
        let bytes = Tx::sign(9, &key(1), 50, 3, TxBody::SettlementBatch(batch.clone()));
        let (tx, built) = Tx::sign_batch(9, &key(1), 50, 3, (batch, &root));
        assert_eq!(built, bytes);
        assert_eq!(Tx::decode(&bytes).unwrap(), tx);
        assert_eq!(tx.encode(), bytes);
    }

    #[test]
    fn fixed_lengths() {
        // Header 58 + body + 64: a transfer is 58 + 48 + 64 = 170 bytes.
        let b = Tx::sign(
            1,
            &key(1),
            1,
            0,
            TxBody::Transfer {
                to: [0; 32],
                amount: 1,
            },
        );
        assert_eq!(b.len(), 170);
        let b = Tx::sign(
            1,
            &key(1),
            1,
            0,
            TxBody::MeterReport {
                interval: 0,
                produced_wh: 0,
                consumed_wh: 0,
            },
        );
        assert_eq!(b.len(), 58 + 24 + 64);
    }

    #[test]
    fn bad_version_kind_device_and_count_are_errors() {
        let mut b = Tx::sign(1, &key(1), 1, 0, TxBody::Burn { amount: 1 });
        b[0] = 2;
        assert!(matches!(
            Tx::decode(&b),
            Err(DecodeError::Invalid {
                field: "version",
                ..
            })
        ));
        b[0] = 1;
        b[1] = 99;
        assert!(matches!(
            Tx::decode(&b),
            Err(DecodeError::Invalid { field: "kind", .. })
        ));
        let mut m = Tx::sign(
            1,
            &key(1),
            1,
            0,
            TxBody::RegisterMeter {
                meter: [1; 32],
                member: [2; 32],
                device: DeviceType::Pv,
            },
        );
        m[58 + 64] = 0;
        assert!(matches!(
            Tx::decode(&m),
            Err(DecodeError::Invalid {
                field: "device",
                ..
            })
        ));
        let empty = Tx::sign(
            1,
            &key(1),
            1,
            0,
            TxBody::CerDistribution {
                period: 1,
                payouts: vec![],
            },
        );
        assert!(matches!(
            Tx::decode(&empty),
            Err(DecodeError::Invalid {
                field: "payout_count",
                ..
            })
        ));
        assert!(matches!(
            Tx::decode(&vec![1u8; MAX_TX_LEN + 1]),
            Err(DecodeError::TooLong { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Tx::decode(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_mutated_valid_tx(kind in 0usize..23, flips in proptest::collection::vec((0usize..300, any::<u8>()), 1..6), cut in 0usize..300) {
            let body = all_bodies()[kind].clone();
            let mut b = Tx::sign(3, &key(2), 9, 1, body);
            for (pos, v) in flips { let n = b.len(); b[pos % n] ^= v; }
            if let Ok(tx) = Tx::decode(&b) {
                // Canonical: whatever decodes re-encodes to the same bytes.
                prop_assert_eq!(tx.encode(), b.clone());
            }
            let n = b.len();
            let _ = Tx::decode(&b[..cut % (n + 1)]);
        }
    }
}
