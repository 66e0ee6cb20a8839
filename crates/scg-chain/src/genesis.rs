//! The member chain's genesis: who the members are (and which of them validate), their meters,
//! the ledger parameters, and the chain id that separates this chain from every other.
//!
//! Two files (TOML, documented in `docs/chain.md`):
//! - a **spec** ([`GenesisSpec`]) the community writes by hand: members, meters, parameters;
//! - the **genesis** ([`Genesis`]) `scg chain genesis` derives from it: the spec plus the
//!   operator key, the chain id, and the operator-signed registration transactions that open the
//!   chain (block 1, the same on every node).
//!
//! The chain id is `SHA-256("SCG-CHAIN/GENESIS/v1" || canonical bytes of every field except the
//! registration transactions)`; the ledger's `u64` chain id (inside every signed transaction) is
//! its first 8 bytes, little-endian, so a transaction signed for one chain fails its signature
//! on any other. The registration transactions are signed under that id and are fully determined
//! by the other fields, so loading a genesis re-derives and compares them. Never does I/O beyond
//! reading/writing the file it is given.

use crate::ChainError;
use crate::keys::{MemberKey, parse_public_key};
use scg_ledger::market::MarketParams;
use scg_ledger::merkle::{Hash, sha256, to_hex};
use scg_ledger::{DeviceType, GenesisConfig, Tx, TxBody};
use scg_market::{GridFee, Mechanism, Price};
use serde::{Deserialize, Serialize};

/// Most members a genesis may list (bounds memory and the consensus committee).
pub const MAX_MEMBERS: usize = 1024;
/// Most meters per member.
pub const MAX_METERS_PER_MEMBER: usize = 64;
/// Most validators (the simplex committee).
pub const MAX_VALIDATORS: usize = 128;

/// One meter of a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterSpec {
    /// Meter public key (hex).
    pub public_key: String,
    /// `pv`, `wind`, `battery`, `ev-charger` or `supply-point`.
    pub device: String,
    /// Registered capacity, W (needs a `[market]`): bounds the member's offers and the Wh a
    /// reading of this meter may report per interval (`capacity_w * interval_s / 3600`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_w: Option<u64>,
}

/// The on-chain market a genesis opens (block 1 carries the operator's market-open and one
/// meter-capacity transaction per meter with a `capacity_w`). See `scg_ledger::market`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSpec {
    /// Start of interval 0, Unix seconds.
    pub epoch_s: u64,
    /// Interval length, seconds (> 0).
    pub interval_s: u64,
    /// `pay_as_clear`, `pay_as_bid` or `pay_as_offer`.
    pub mechanism: String,
    /// A constant grid fee the buyer pays, milli-euro per MWh (at most one of the two fees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_milli_eur_per_mwh: Option<i64>,
    /// A grid fee in basis points of the price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_basis_points: Option<u32>,
    /// Most orders per member and interval (1 to 64).
    pub max_orders_per_member: u16,
    /// Seconds after the end of an interval within which its readings are accepted and its
    /// cleared trades must be posted.
    pub settle_window_s: u64,
}

impl MarketSpec {
    /// The spec of `params` (the inverse of [`MarketSpec::params`]).
    pub fn from_params(params: &MarketParams) -> Self {
        let mechanism = match params.mechanism {
            Mechanism::PayAsClear => "pay_as_clear",
            Mechanism::PayAsBid => "pay_as_bid",
            Mechanism::PayAsOffer => "pay_as_offer",
        };
        let (fee_milli_eur_per_mwh, fee_basis_points) = match params.fee {
            GridFee::None => (None, None),
            GridFee::Constant(p) => (Some(p.0), None),
            GridFee::Percent { basis_points } => (None, Some(basis_points)),
        };
        Self {
            epoch_s: params.epoch_s,
            interval_s: params.interval_s,
            mechanism: mechanism.into(),
            fee_milli_eur_per_mwh,
            fee_basis_points,
            max_orders_per_member: params.max_orders_per_member,
            settle_window_s: params.settle_window_s,
        }
    }

    /// The ledger's market parameters, or what is wrong (naming the field).
    pub fn params(&self) -> Result<MarketParams, (&'static str, String)> {
        let mechanism = match self.mechanism.as_str() {
            "pay_as_clear" => Mechanism::PayAsClear,
            "pay_as_bid" => Mechanism::PayAsBid,
            "pay_as_offer" => Mechanism::PayAsOffer,
            other => {
                return Err((
                    "mechanism",
                    format!("found `{other}`, expected pay_as_clear, pay_as_bid or pay_as_offer"),
                ));
            }
        };
        let fee = match (self.fee_milli_eur_per_mwh, self.fee_basis_points) {
            (Some(_), Some(_)) => {
                return Err((
                    "fee_basis_points",
                    "give at most one of fee_milli_eur_per_mwh and fee_basis_points".into(),
                ));
            }
            (Some(0), None) | (None, None) => GridFee::None,
            (Some(m), None) => GridFee::Constant(Price(m)),
            (None, Some(basis_points)) => GridFee::Percent { basis_points },
        };
        let params = MarketParams {
            epoch_s: self.epoch_s,
            interval_s: self.interval_s,
            mechanism,
            fee,
            max_orders_per_member: self.max_orders_per_member,
            settle_window_s: self.settle_window_s,
        };
        // Name the field of the ledger's own check (`MarketParams::problem`).
        match params.problem() {
            None => Ok(params),
            Some(p) => {
                let field = ["interval_s", "max_orders_per_member", "settle_window_s"]
                    .into_iter()
                    .find(|f| p.starts_with(f))
                    .unwrap_or("fee_milli_eur_per_mwh");
                Err((field, p.to_string()))
            }
        }
    }
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSpec {
    /// Human name (unique).
    pub name: String,
    /// Member public key (hex): signs the member's transactions and, for validators, its votes.
    pub public_key: String,
    /// True if this member runs a consensus node.
    #[serde(default)]
    pub validator: bool,
    /// The member's meters.
    #[serde(default)]
    pub meters: Vec<MeterSpec>,
}

/// What the community writes: `scg chain genesis --spec SPEC --operator-key K --out G`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisSpec {
    /// Human name of the chain (part of the chain id).
    pub name: String,
    /// Genesis timestamp, seconds since the Unix epoch.
    pub genesis_time_s: u64,
    /// RESCoin base units minted per renewable Wh.
    pub mint_rate_base_per_wh: u64,
    /// Base units minted to the treasury at genesis.
    #[serde(default)]
    pub treasury_endowment_base: u64,
    /// Treasury public key (hex).
    pub treasury: String,
    /// Grid/DSO public key (hex).
    pub grid: String,
    /// The on-chain market, opened at genesis (absent: no market; the chain id is then the
    /// same as before markets existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<MarketSpec>,
    /// Members.
    pub members: Vec<MemberSpec>,
}

/// The genesis file every node loads: the spec's fields plus the operator, the chain id and the
/// registrations (plain fields first, so the TOML keeps `[[members]]` tables last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// Chain id (hex, 32 bytes): checked against the recomputed one on load.
    pub chain_id: String,
    /// Operator public key (hex): signed the registrations, registers members later.
    pub operator: String,
    /// Human name of the chain.
    pub name: String,
    /// Genesis timestamp, seconds since the Unix epoch.
    pub genesis_time_s: u64,
    /// RESCoin base units minted per renewable Wh.
    pub mint_rate_base_per_wh: u64,
    /// Base units minted to the treasury at genesis.
    #[serde(default)]
    pub treasury_endowment_base: u64,
    /// Treasury public key (hex).
    pub treasury: String,
    /// Grid/DSO public key (hex).
    pub grid: String,
    /// Operator-signed registration transactions (hex), block 1.
    pub registrations: Vec<String>,
    /// The on-chain market opened at genesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<MarketSpec>,
    /// Members.
    pub members: Vec<MemberSpec>,
}

impl GenesisFile {
    /// The spec part.
    pub fn spec(&self) -> GenesisSpec {
        GenesisSpec {
            name: self.name.clone(),
            genesis_time_s: self.genesis_time_s,
            mint_rate_base_per_wh: self.mint_rate_base_per_wh,
            treasury_endowment_base: self.treasury_endowment_base,
            treasury: self.treasury.clone(),
            grid: self.grid.clone(),
            market: self.market.clone(),
            members: self.members.clone(),
        }
    }
}

/// A member, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Name.
    pub name: String,
    /// Public key.
    pub key: [u8; 32],
    /// Runs a consensus node.
    pub validator: bool,
    /// Meters: key and device.
    pub meters: Vec<([u8; 32], DeviceType)>,
    /// Registered capacities, W, in the order of `meters` (`None`: none registered).
    pub capacities_w: Vec<Option<u64>>,
}

/// A loaded, checked genesis.
#[derive(Debug, Clone)]
pub struct Genesis {
    /// Human name.
    pub name: String,
    /// Timestamp of the genesis block.
    pub genesis_time_s: u64,
    /// Ledger parameters (with the derived `u64` chain id).
    pub ledger: GenesisConfig,
    /// Members in file order.
    pub members: Vec<Member>,
    /// The 32-byte chain id.
    pub chain_id: Hash,
    /// Registration transactions (block 1).
    pub registrations: Vec<Vec<u8>>,
    /// The market opened in block 1, if any.
    pub market: Option<MarketParams>,
}

fn device_from_name(name: &str) -> Option<DeviceType> {
    (1..=5)
        .filter_map(DeviceType::from_code)
        .find(|d| d.name() == name)
}

fn gerr(file: &str, field: impl Into<String>, reason: impl Into<String>) -> ChainError {
    ChainError::Genesis {
        file: file.to_string(),
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parse TOML into `T`, naming the field path on error.
fn parse_toml<T: for<'de> Deserialize<'de>>(file: &str, text: &str) -> Result<T, ChainError> {
    let de = toml::Deserializer::parse(text).map_err(|e| gerr(file, "(syntax)", e.to_string()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        gerr(file, path, e.into_inner().message().to_string())
    })
}

impl GenesisSpec {
    /// Parse a spec file's text.
    pub fn parse(file: &str, text: &str) -> Result<Self, ChainError> {
        parse_toml(file, text)
    }

    /// Check every field; returns the members typed.
    fn check(&self, file: &str) -> Result<CheckedSpec, ChainError> {
        if self.name.trim().is_empty() || self.name.len() > 128 {
            return Err(gerr(file, "name", "expected 1 to 128 characters"));
        }
        let treasury =
            parse_public_key("treasury", &self.treasury).map_err(|r| gerr(file, "treasury", r))?;
        let grid = parse_public_key("grid", &self.grid).map_err(|r| gerr(file, "grid", r))?;
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return Err(gerr(
                file,
                "members",
                format!(
                    "expected 1 to {MAX_MEMBERS} members, found {}",
                    self.members.len()
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeSet::new();
        seen.insert(treasury);
        if !seen.insert(grid) {
            return Err(gerr(file, "grid", "same key as the treasury"));
        }
        let mut members = Vec::with_capacity(self.members.len());
        for (i, m) in self.members.iter().enumerate() {
            let at = |f: &str| format!("members[{i}].{f}");
            if m.name.trim().is_empty() || m.name.len() > 128 || !names.insert(m.name.clone()) {
                return Err(gerr(
                    file,
                    at("name"),
                    format!("`{}`: empty, too long or used twice", m.name),
                ));
            }
            let key = parse_public_key("public_key", &m.public_key)
                .map_err(|r| gerr(file, at("public_key"), r))?;
            if !seen.insert(key) {
                return Err(gerr(
                    file,
                    at("public_key"),
                    "key used twice in this genesis",
                ));
            }
            if m.meters.len() > MAX_METERS_PER_MEMBER {
                return Err(gerr(
                    file,
                    at("meters"),
                    format!("at most {MAX_METERS_PER_MEMBER} meters"),
                ));
            }
            let mut meters = Vec::with_capacity(m.meters.len());
            let mut capacities_w = Vec::with_capacity(m.meters.len());
            for (j, meter) in m.meters.iter().enumerate() {
                let mat = |f: &str| format!("members[{i}].meters[{j}].{f}");
                let mkey = parse_public_key("public_key", &meter.public_key)
                    .map_err(|r| gerr(file, mat("public_key"), r))?;
                if !seen.insert(mkey) {
                    return Err(gerr(
                        file,
                        mat("public_key"),
                        "key used twice in this genesis",
                    ));
                }
                let device = device_from_name(&meter.device).ok_or_else(|| {
                    gerr(
                        file,
                        mat("device"),
                        format!(
                            "found `{}`, expected one of pv, wind, battery, ev-charger, supply-point",
                            meter.device
                        ),
                    )
                })?;
                match meter.capacity_w {
                    Some(0) => return Err(gerr(file, mat("capacity_w"), "expected > 0 W")),
                    Some(_) if self.market.is_none() => {
                        return Err(gerr(
                            file,
                            mat("capacity_w"),
                            "a registered capacity needs a [market] section",
                        ));
                    }
                    _ => {}
                }
                meters.push((mkey, device));
                capacities_w.push(meter.capacity_w);
            }
            members.push(Member {
                name: m.name.clone(),
                key,
                validator: m.validator,
                meters,
                capacities_w,
            });
        }
        let validators = members.iter().filter(|m| m.validator).count();
        if validators == 0 || validators > MAX_VALIDATORS {
            return Err(gerr(
                file,
                "members",
                format!(
                    "expected 1 to {MAX_VALIDATORS} members with `validator = true`, found {validators}"
                ),
            ));
        }
        let market = match &self.market {
            None => None,
            Some(m) => Some(
                m.params()
                    .map_err(|(field, reason)| gerr(file, format!("market.{field}"), reason))?,
            ),
        };
        Ok(CheckedSpec {
            members,
            treasury,
            grid,
            market,
        })
    }

    /// Derive the genesis: chain id and operator-signed registrations.
    pub fn derive(&self, operator: &MemberKey) -> Result<GenesisFile, ChainError> {
        let file = "genesis spec";
        let CheckedSpec {
            members,
            treasury,
            grid,
            market,
        } = self.check(file)?;
        let op = operator.public();
        if op == treasury
            || op == grid
            || members
                .iter()
                .any(|m| m.key == op || m.meters.iter().any(|x| x.0 == op))
        {
            return Err(gerr(
                file,
                "operator",
                "the operator key must differ from every key in the spec",
            ));
        }
        let chain_id = chain_id_of(self, &op, &members, (treasury, grid));
        let ledger_chain_id = ledger_chain_id(&chain_id);
        let regs = registrations(ledger_chain_id, &chain_id, operator, &members, market);
        Ok(GenesisFile {
            chain_id: to_hex(&chain_id),
            operator: to_hex(&op),
            name: self.name.clone(),
            genesis_time_s: self.genesis_time_s,
            mint_rate_base_per_wh: self.mint_rate_base_per_wh,
            treasury_endowment_base: self.treasury_endowment_base,
            treasury: self.treasury.clone(),
            grid: self.grid.clone(),
            registrations: regs.iter().map(|t| to_hex(t)).collect(),
            market: self.market.clone(),
            members: self.members.clone(),
        })
    }
}

/// The ledger's `u64` chain id: the first 8 bytes of the chain id, little-endian.
pub fn ledger_chain_id(chain_id: &Hash) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&chain_id[..8]);
    u64::from_le_bytes(b)
}

/// The chain id. A genesis without a market hashes exactly the bytes it did before markets
/// existed (its chain id is unchanged); with one, the market's parameters and every registered
/// capacity follow.
fn chain_id_of(
    spec: &GenesisSpec,
    operator: &[u8; 32],
    members: &[Member],
    (treasury, grid): ([u8; 32], [u8; 32]),
) -> Hash {
    let mut w = Vec::new();
    let put_str = |w: &mut Vec<u8>, s: &str| {
        w.extend_from_slice(&(s.len() as u32).to_le_bytes());
        w.extend_from_slice(s.as_bytes());
    };
    put_str(&mut w, &spec.name);
    w.extend_from_slice(&spec.genesis_time_s.to_le_bytes());
    w.extend_from_slice(&spec.mint_rate_base_per_wh.to_le_bytes());
    w.extend_from_slice(&spec.treasury_endowment_base.to_le_bytes());
    w.extend_from_slice(operator);
    w.extend_from_slice(&treasury);
    w.extend_from_slice(&grid);
    w.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for m in members {
        put_str(&mut w, &m.name);
        w.extend_from_slice(&m.key);
        w.push(u8::from(m.validator));
        w.extend_from_slice(&(m.meters.len() as u32).to_le_bytes());
        for (k, d) in &m.meters {
            w.extend_from_slice(k);
            w.push(*d as u8);
        }
    }
    if let Some(market) = &spec.market {
        w.extend_from_slice(b"MARKET/v1");
        for v in [market.epoch_s, market.interval_s, market.settle_window_s] {
            w.extend_from_slice(&v.to_le_bytes());
        }
        put_str(&mut w, &market.mechanism);
        w.extend_from_slice(&market.fee_milli_eur_per_mwh.unwrap_or(0).to_le_bytes());
        w.extend_from_slice(&market.fee_basis_points.unwrap_or(0).to_le_bytes());
        w.push(u8::from(market.fee_milli_eur_per_mwh.is_some()));
        w.push(u8::from(market.fee_basis_points.is_some()));
        w.extend_from_slice(&market.max_orders_per_member.to_le_bytes());
        for m in members {
            for c in &m.capacities_w {
                w.extend_from_slice(&c.unwrap_or(0).to_le_bytes());
            }
        }
    }
    sha256(&[b"SCG-CHAIN/GENESIS/v1", &w])
}

/// Registration transaction id: unique per chain and index, so ids never collide across chains.
fn registration_id(chain_id: &Hash, index: u64) -> u128 {
    let h = sha256(&[b"SCG-CHAIN/REGISTRATION/v1", chain_id, &index.to_le_bytes()]);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    u128::from_le_bytes(b)
}

/// The bodies of block 1's operator transactions, in order: every member's registration
/// followed by its meters', then (with a market) the market-open and one meter capacity per
/// meter that has one. The one list both the signer ([`registrations`]) and the loader
/// ([`expected_registration`]) use.
fn registration_bodies(members: &[Member], market: Option<MarketParams>) -> Vec<TxBody> {
    let mut out = Vec::new();
    for m in members {
        out.push(TxBody::RegisterMember { member: m.key });
        for (meter, device) in &m.meters {
            out.push(TxBody::RegisterMeter {
                meter: *meter,
                member: m.key,
                device: *device,
            });
        }
    }
    if let Some(params) = market {
        out.push(TxBody::MarketOpen(params));
        for m in members {
            for ((meter, _), cap) in m.meters.iter().zip(&m.capacities_w) {
                if let Some(capacity_w) = cap {
                    out.push(TxBody::MeterCapacity {
                        meter: *meter,
                        capacity_w: *capacity_w,
                    });
                }
            }
        }
    }
    out
}

fn registrations(
    ledger_chain_id: u64,
    chain_id: &Hash,
    operator: &MemberKey,
    members: &[Member],
    market: Option<MarketParams>,
) -> Vec<Vec<u8>> {
    let sk = operator.signing_key();
    expected_registration(chain_id, members, market)
        .into_iter()
        .map(|(id, nonce, body)| Tx::sign(ledger_chain_id, &sk, id, nonce, body))
        .collect()
}

/// The registrations expected for a genesis, without the operator's secret: bodies, ids and
/// nonces (signatures are checked by the ledger when block 1 is replayed).
fn expected_registration(
    chain_id: &Hash,
    members: &[Member],
    market: Option<MarketParams>,
) -> Vec<(u128, u64, TxBody)> {
    registration_bodies(members, market)
        .into_iter()
        .zip(0u64..)
        .map(|(body, nonce)| (registration_id(chain_id, nonce), nonce, body))
        .collect()
}

impl GenesisFile {
    /// TOML text.
    pub fn to_toml(&self) -> Result<String, ChainError> {
        toml::to_string_pretty(self).map_err(|e| gerr("genesis", "(write)", e.to_string()))
    }
}

/// A checked spec.
struct CheckedSpec {
    members: Vec<Member>,
    treasury: [u8; 32],
    grid: [u8; 32],
    market: Option<MarketParams>,
}

/// Where `scg chain genesis` reads and writes (three paths: an options struct so they cannot
/// be swapped).
#[derive(Debug, Clone)]
pub struct DerivePaths {
    /// The spec (TOML) the community wrote.
    pub spec: std::path::PathBuf,
    /// The operator's key file (signs the registrations).
    pub operator_key: std::path::PathBuf,
    /// The genesis file to create (never overwritten).
    pub out: std::path::PathBuf,
}

/// `scg chain genesis`: read the spec and the operator key, derive the genesis, check that the
/// text loads back as a valid genesis, and create `out` (refusing an existing file).
pub fn derive_to_file(paths: &DerivePaths) -> Result<Genesis, ChainError> {
    let io = |path: &std::path::Path, e: std::io::Error| ChainError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let text = crate::read_text(&paths.spec, crate::MAX_GENESIS_BYTES)?;
    let spec = GenesisSpec::parse(&paths.spec.display().to_string(), &text)?;
    let operator = MemberKey::read(&paths.operator_key)?;
    // `derive` checks the spec's fields; name the spec file in its errors.
    let toml = spec
        .derive(&operator)
        .map_err(|e| match e {
            ChainError::Genesis { field, reason, .. } => ChainError::Genesis {
                file: paths.spec.display().to_string(),
                field,
                reason,
            },
            other => other,
        })?
        .to_toml()?;
    let genesis = Genesis::parse(&paths.out.display().to_string(), &toml)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&paths.out)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ChainError::BadInput {
                    what: format!("--out {}", paths.out.display()),
                    reason: "already exists; refusing to overwrite a genesis".into(),
                }
            } else {
                io(&paths.out, e)
            }
        })?;
    std::io::Write::write_all(&mut f, toml.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io(&paths.out, e))?;
    Ok(genesis)
}

impl Genesis {
    /// Parse and check a genesis file's text (`file` names it in errors).
    pub fn parse(file: &str, text: &str) -> Result<Self, ChainError> {
        let raw: GenesisFile = parse_toml(file, text)?;
        Self::from_file(file, &raw)
    }

    /// Read and check a genesis file.
    pub fn read(path: &std::path::Path) -> Result<Self, ChainError> {
        let text = crate::read_text(path, crate::MAX_GENESIS_BYTES)?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Check a parsed genesis file.
    pub fn from_file(file: &str, raw: &GenesisFile) -> Result<Self, ChainError> {
        let spec = raw.spec();
        let CheckedSpec {
            members,
            treasury,
            grid,
            market,
        } = spec.check(file)?;
        let operator =
            parse_public_key("operator", &raw.operator).map_err(|r| gerr(file, "operator", r))?;
        let chain_id = chain_id_of(&spec, &operator, &members, (treasury, grid));
        if to_hex(&chain_id) != raw.chain_id.trim() {
            return Err(gerr(
                file,
                "chain_id",
                format!(
                    "found {}, but the contents hash to {}",
                    raw.chain_id,
                    to_hex(&chain_id)
                ),
            ));
        }
        let expected = expected_registration(&chain_id, &members, market);
        if raw.registrations.len() != expected.len() {
            return Err(gerr(
                file,
                "registrations",
                format!(
                    "found {} transactions, expected {}",
                    raw.registrations.len(),
                    expected.len()
                ),
            ));
        }
        let mut registrations = Vec::with_capacity(expected.len());
        for (i, (hex, (id, nonce, body))) in raw.registrations.iter().zip(expected).enumerate() {
            let bytes =
                hex_vec(hex).ok_or_else(|| gerr(file, format!("registrations[{i}]"), "not hex"))?;
            let tx = Tx::decode(&bytes)
                .map_err(|e| gerr(file, format!("registrations[{i}]"), e.to_string()))?;
            if tx.id != id || tx.nonce != nonce || tx.body != body || tx.signer != operator {
                return Err(gerr(
                    file,
                    format!("registrations[{i}]"),
                    "does not match the members and meters listed (regenerate with `scg chain genesis`)",
                ));
            }
            registrations.push(bytes);
        }
        Ok(Self {
            name: spec.name.clone(),
            genesis_time_s: spec.genesis_time_s,
            ledger: GenesisConfig {
                chain_id: ledger_chain_id(&chain_id),
                operator,
                treasury,
                grid,
                mint_rate_base_per_wh: u128::from(spec.mint_rate_base_per_wh),
                treasury_endowment: u128::from(spec.treasury_endowment_base),
                // Member nodes run an open-ended chain with secret keys.
                intervals_total: GenesisConfig::OPEN_ENDED,
                simulation_key_seed: None,
            },
            members,
            chain_id,
            registrations,
            market,
        })
    }

    /// Validator public keys in file order.
    pub fn validators(&self) -> Vec<[u8; 32]> {
        self.members
            .iter()
            .filter(|m| m.validator)
            .map(|m| m.key)
            .collect()
    }

    /// Is this key a member?
    pub fn is_member(&self, key: &[u8; 32]) -> bool {
        self.members.iter().any(|m| &m.key == key)
    }

    /// The chain id as hex.
    pub fn chain_id_hex(&self) -> String {
        to_hex(&self.chain_id)
    }
}

/// Decode hex of any even length (at most a transaction's size).
pub(crate) fn hex_vec(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) || s.len() > 2 * scg_ledger::tx::MAX_TX_LEN * 4 || !s.is_ascii() {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|c| {
            let hi = (c[0] as char).to_digit(16)?;
            let lo = (c[1] as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// Consensus namespace: every vote and certificate signs under it, so a certificate of one
/// chain never verifies on another.
pub fn consensus_namespace(chain_id: &Hash) -> Vec<u8> {
    let mut ns = b"SCG-CHAIN/CONSENSUS/v1/".to_vec();
    ns.extend_from_slice(chain_id);
    ns
}

/// p2p namespace: the authenticated handshake signs under it. It is the same for every scg
/// chain, so that a validator started with another genesis still connects and learns that it
/// is on another chain (the chain id in every `Tip`; votes that do not verify under the
/// consensus namespace, which holds the chain id) instead of failing handshakes silently.
/// Votes and certificates of one chain stay worthless on another ([`consensus_namespace`]).
pub fn p2p_namespace() -> Vec<u8> {
    b"SCG-CHAIN/P2P/v2".to_vec()
}

/// A 32-byte key as a commonware ed25519 public key.
pub fn consensus_public_key(
    key: &[u8; 32],
) -> Result<commonware_cryptography::ed25519::PublicKey, String> {
    use commonware_codec::DecodeExt as _;
    commonware_cryptography::ed25519::PublicKey::decode(commonware_codec::Copying(&key[..]))
        .map_err(|e| e.to_string())
}

impl Genesis {
    /// The validator set as commonware keys (ordered; a validator's index is its position).
    pub fn participants(
        &self,
    ) -> Result<
        commonware_utils::ordered::Set<commonware_cryptography::ed25519::PublicKey>,
        ChainError,
    > {
        let mut keys = Vec::new();
        for (i, m) in self.members.iter().enumerate().filter(|(_, m)| m.validator) {
            keys.push(
                consensus_public_key(&m.key)
                    .map_err(|r| gerr("genesis", format!("members[{i}].public_key"), r))?,
            );
        }
        commonware_utils::ordered::Set::try_from(keys)
            .map_err(|e| gerr("genesis", "members", format!("validator keys: {e:?}")))
    }

    /// A certificate verifier for this chain's validators.
    pub fn verifier(&self) -> Result<crate::wire::Scheme, ChainError> {
        Ok(crate::wire::Scheme::verifier(
            &consensus_namespace(&self.chain_id),
            self.participants()?,
        ))
    }

    /// The state after block 1 (the registrations) and block 1 itself: the consensus genesis.
    pub fn initial_state(&self) -> Result<(scg_ledger::Ledger, scg_ledger::Block), ChainError> {
        let (mut ledger, _b0) =
            scg_ledger::Ledger::genesis(self.ledger.clone(), self.genesis_time_s)?;
        let (b1, outcome) =
            ledger.produce_block(self.genesis_time_s, self.registrations.clone())?;
        if let Some((i, r)) = outcome
            .results
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.err().map(|e| (i, e)))
        {
            return Err(gerr(
                "genesis",
                format!("registrations[{i}]"),
                format!("rejected by the ledger: {r}"),
            ));
        }
        Ok((ledger, b1))
    }
}
