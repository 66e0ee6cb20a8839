//! Byte fixtures: every example in `docs/ledger-encoding.md` ("Byte fixtures", each a fenced
//! block after a `<!-- fixture: NAME -->` marker) is encoded here from its documented value and
//! compared with the documented bytes, then decoded back. The documentation is the fixture file:
//! a change of any encoding fails this test until the page is updated with it.
//!
//! Print the fixtures in the page's format (to update the page after an intended format change,
//! which also needs a version bump): `SCG_PRINT_FIXTURES=1 cargo test -p scg-ledger --test
//! encoding_fixtures -- --nocapture`.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use scg_ledger::cer::{CerParams, CerRule, IssuanceBody, SizeClass, cosign, issuance_message};
use scg_ledger::market::{IntervalTariff, MarketParams, OfferSource, OrderBody, OrderSide};
use scg_ledger::tx::{Payout, signing_message, unsigned_part};
use scg_ledger::{Batch, Block, DeviceType, GenesisConfig, Ledger, PublicKey, Tx, TxBody};
use scg_market::{GridFee, Mechanism, Price};
use std::collections::BTreeMap;

const CHAIN_ID: u64 = 42;

/// Key `n` of the fixtures: the ed25519 secret key of 32 bytes all equal to `n`.
fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn pk(n: u8) -> PublicKey {
    key(n).verifying_key().to_bytes()
}

/// A documented transaction: signer key number, id, nonce, body.
struct TxFixture {
    name: &'static str,
    signer: u8,
    id: u128,
    nonce: u64,
    body: TxBody,
}

/// One transaction of every kind (keys: 1 operator, 2 treasury, 3 grid, 4 and 6 members,
/// 5 a PV meter of member 4).
fn tx_fixtures() -> Vec<TxFixture> {
    let f = |name, signer, id, nonce, body| TxFixture {
        name,
        signer,
        id,
        nonce,
        body,
    };
    vec![
        f(
            "tx-register-member",
            1,
            1,
            0,
            TxBody::RegisterMember { member: pk(4) },
        ),
        f(
            "tx-register-meter",
            1,
            2,
            1,
            TxBody::RegisterMeter {
                meter: pk(5),
                member: pk(4),
                device: DeviceType::Pv,
            },
        ),
        f(
            "tx-meter-report",
            5,
            3,
            0,
            TxBody::MeterReport {
                interval: 12,
                produced_wh: 1_500,
                consumed_wh: 0,
            },
        ),
        f(
            "tx-transfer",
            2,
            4,
            0,
            TxBody::Transfer {
                to: pk(4),
                amount: 1_500_000_000,
            },
        ),
        f(
            "tx-trade-create",
            4,
            5,
            0,
            TxBody::TradeCreate {
                seller: pk(6),
                interval: 12,
                energy_wh: 900,
                price_base_per_kwh: 120_000_000,
                fee_base_per_kwh: 10_000_000,
                expires_at_s: 1_167_656_400,
            },
        ),
        f(
            "tx-trade-post",
            5,
            6,
            1,
            TxBody::TradePost {
                trade_id: 5,
                delivered_wh: 900,
            },
        ),
        f("tx-trade-void", 6, 7, 0, TxBody::TradeVoid { trade_id: 5 }),
        f(
            "tx-certificate-transfer",
            4,
            8,
            1,
            TxBody::CertificateTransfer {
                certificate_id: 1,
                to: pk(6),
                energy_wh: 500,
            },
        ),
        f(
            "tx-certificate-retire",
            4,
            9,
            2,
            TxBody::CertificateRetire {
                certificate_id: 1,
                energy_wh: 250,
            },
        ),
        f(
            "tx-cer-distribution",
            2,
            10,
            1,
            TxBody::CerDistribution {
                period: 0,
                payouts: vec![
                    Payout {
                        member: pk(4),
                        amount: 2_000_000_000,
                    },
                    Payout {
                        member: pk(6),
                        amount: 1,
                    },
                ],
            },
        ),
        f("tx-burn", 4, 11, 3, TxBody::Burn { amount: 1_000 }),
        f(
            "tx-certificate-move",
            4,
            12,
            4,
            TxBody::CertificateMove {
                to: pk(6),
                interval: 12,
                energy_wh: 300,
            },
        ),
        f(
            "tx-market-open",
            1,
            30,
            2,
            TxBody::MarketOpen(MarketParams {
                epoch_s: 1_167_609_600,
                interval_s: 900,
                mechanism: Mechanism::PayAsClear,
                fee: GridFee::Constant(Price(10_000)),
                max_orders_per_member: 4,
                settle_window_s: 86_400,
            }),
        ),
        f(
            "tx-meter-capacity",
            1,
            31,
            3,
            TxBody::MeterCapacity {
                meter: pk(5),
                capacity_w: 6_000,
            },
        ),
        f(
            "tx-interval-tariff",
            1,
            32,
            4,
            TxBody::IntervalTariff {
                interval: 48,
                tariff: IntervalTariff {
                    retail_milli_eur_per_mwh: 250_000,
                    feed_in_milli_eur_per_mwh: 60_000,
                    peak: false,
                },
            },
        ),
        f(
            "tx-order",
            4,
            33,
            5,
            TxBody::Order(OrderBody {
                interval: 48,
                side: OrderSide::Offer,
                energy_wh: 1_200,
                limit_milli_eur_per_mwh: 60_000,
                source: OfferSource::Pv,
            }),
        ),
        f(
            "tx-gate-close",
            6,
            34,
            1,
            TxBody::GateClose { interval: 48 },
        ),
        f(
            "tx-cer-open",
            1,
            35,
            5,
            TxBody::CerOpen(CerParams {
                rule: CerRule {
                    size_class: SizeClass::Over600Kw,
                    pv_bonus_milli_eur_per_mwh: 10_000,
                    valorisation_milli_eur_per_mwh: 8_000,
                    producer_share_bp: 5_000,
                },
                period_hours: 24,
                issuance_cap_base: ISSUANCE_CAP_BASE,
            }),
        ),
        f(
            "tx-zonal-prices",
            1,
            36,
            6,
            TxBody::ZonalPrices {
                first_hour: 12,
                prices_milli_eur_per_mwh: vec![104_370, 98_250],
            },
        ),
        f(
            "tx-cer-period-close",
            6,
            37,
            2,
            TxBody::CerPeriodClose { period: 0 },
        ),
        f(
            "tx-issuance",
            4,
            ISSUANCE_ID,
            6,
            TxBody::Issuance(IssuanceBody {
                amount: ISSUANCE_AMOUNT,
                reference: ISSUANCE_REFERENCE.into(),
                cosignatures: [4, 6]
                    .iter()
                    .map(|n| {
                        cosign(
                            CHAIN_ID,
                            &key(*n),
                            ISSUANCE_ID,
                            ISSUANCE_AMOUNT,
                            ISSUANCE_REFERENCE,
                        )
                    })
                    .collect(),
            }),
        ),
    ]
}

/// The CER fixtures: a cap of 2 x 10^9 RES (twice the genesis fixture's endowment) and an
/// issuance of 0.276 RES co-signed by members 4 and 6.
const ISSUANCE_CAP_BASE: u128 = 2_000_000_000 * 1_000_000_000;
const ISSUANCE_ID: u128 = 38;
const ISSUANCE_AMOUNT: u128 = 276_000_000;
const ISSUANCE_REFERENCE: &str = "GSE CER payment period 0";

/// The settlement-batch fixture: the operator (key 1, id 20, nonce 1) submits records 13..=15:
/// the operator registers meter 5 of member 4 (PV), meter 5 reports interval 13 (1,200 Wh
/// produced), the treasury transfers 1 RES to member 4.
const BATCH_ID: u128 = 20;
const BATCH_NONCE: u64 = 1;

fn batch_fixture() -> Batch {
    Batch::sign(
        CHAIN_ID,
        13,
        vec![
            (
                key(1),
                TxBody::RegisterMeter {
                    meter: pk(5),
                    member: pk(4),
                    device: DeviceType::Pv,
                },
            ),
            (
                key(5),
                TxBody::MeterReport {
                    interval: 13,
                    produced_wh: 1_200,
                    consumed_wh: 0,
                },
            ),
            (
                key(2),
                TxBody::Transfer {
                    to: pk(4),
                    amount: 1_000_000_000,
                },
            ),
        ],
    )
    .unwrap()
}

fn signed_batch() -> Vec<u8> {
    Tx::sign(
        CHAIN_ID,
        &key(1),
        BATCH_ID,
        BATCH_NONCE,
        TxBody::SettlementBatch(batch_fixture()),
    )
}

fn genesis_config() -> GenesisConfig {
    GenesisConfig {
        chain_id: CHAIN_ID,
        operator: pk(1),
        treasury: pk(2),
        grid: pk(3),
        mint_rate_base_per_wh: 100_000,
        treasury_endowment: 1_000_000_000_000_000_000,
        intervals_total: 8_760,
        simulation_key_seed: Some(42),
    }
}

const GENESIS_TIMESTAMP_S: u64 = 1_167_609_600;

/// Genesis, block 1 holding the register-member and transfer fixtures, and block 2 (a day
/// later) holding the settlement batch.
fn block_fixtures() -> (Block, Block, Block) {
    let (mut ledger, genesis) = Ledger::genesis(genesis_config(), GENESIS_TIMESTAMP_S).unwrap();
    let txs: Vec<Vec<u8>> = tx_fixtures()
        .iter()
        .filter(|f| f.name == "tx-register-member" || f.name == "tx-transfer")
        .map(signed)
        .collect();
    let (block1, outcome) = ledger
        .produce_block(GENESIS_TIMESTAMP_S + 3_600, txs)
        .unwrap();
    assert_eq!(outcome.rejected(), 0);
    let (block2, outcome) = ledger
        .produce_block(GENESIS_TIMESTAMP_S + 86_400, vec![signed_batch()])
        .unwrap();
    assert_eq!(outcome.rejected(), 0);
    assert!(outcome.record_rejects.is_empty());
    (genesis, block1, block2)
}

fn signed(f: &TxFixture) -> Vec<u8> {
    Tx::sign(CHAIN_ID, &key(f.signer), f.id, f.nonce, f.body.clone())
}

/// `(size, label)` of every field of a transaction with this body.
fn tx_layout(body: &TxBody) -> Vec<(usize, String)> {
    let s = |n: usize, l: &str| (n, l.to_string());
    let mut v = vec![
        s(1, "format version"),
        s(1, "kind"),
        s(16, "id"),
        s(32, "signer"),
        s(8, "nonce"),
    ];
    v.extend(body_layout(body, ""));
    v.push(s(64, "signature"));
    v
}

/// `(size, label)` of the fields of `body`, labels prefixed with `prefix`.
fn body_layout(body: &TxBody, prefix: &str) -> Vec<(usize, String)> {
    let s = |n: usize, l: &str| (n, format!("{prefix}{l}"));
    let payouts = match body {
        TxBody::CerDistribution { payouts, .. } => payouts.len(),
        _ => 0,
    };
    match body.kind() {
        1 => vec![s(32, "member key")],
        2 => vec![s(32, "meter key"), s(32, "member key"), s(1, "device")],
        3 => vec![s(8, "interval"), s(8, "produced Wh"), s(8, "consumed Wh")],
        4 => vec![s(32, "to key"), s(16, "amount")],
        5 => vec![
            s(32, "seller key"),
            s(8, "interval"),
            s(8, "energy Wh"),
            s(16, "price base/kWh"),
            s(16, "grid fee base/kWh"),
            s(8, "expires at s"),
        ],
        6 => vec![s(16, "trade id"), s(8, "delivered Wh")],
        7 => vec![s(16, "trade id")],
        8 => vec![s(8, "certificate id"), s(32, "to key"), s(8, "Wh")],
        9 => vec![s(8, "certificate id"), s(8, "Wh")],
        10 => {
            let mut b = vec![s(8, "period"), s(2, "count")];
            for i in 0..payouts {
                b.push((32, format!("payout {i}: member key")));
                b.push((16, format!("payout {i}: amount")));
            }
            b
        }
        11 => vec![s(16, "amount")],
        12 => vec![s(32, "to key"), s(8, "interval"), s(8, "Wh")],
        14 => vec![
            s(8, "epoch s"),
            s(8, "interval length s"),
            s(1, "mechanism (1 pay-as-clear)"),
            s(1, "fee kind (1 constant)"),
            s(8, "fee milli-EUR/MWh"),
            s(2, "max orders per member per interval"),
            s(8, "settle window s"),
        ],
        15 => vec![s(32, "meter key"), s(8, "capacity W")],
        16 => vec![
            s(8, "interval"),
            s(8, "retail milli-EUR/MWh"),
            s(8, "feed-in milli-EUR/MWh"),
            s(1, "peak"),
        ],
        17 => vec![
            s(8, "interval"),
            s(1, "side (2 offer)"),
            s(8, "energy Wh"),
            s(8, "limit milli-EUR/MWh"),
            s(1, "source (1 PV)"),
        ],
        18 => vec![s(8, "interval")],
        19 => vec![
            s(1, "size class (3 over 600 kW)"),
            s(8, "PV bonus milli-EUR/MWh"),
            s(8, "valorisation milli-EUR/MWh"),
            s(2, "producer share bp"),
            s(4, "period hours"),
            s(16, "issuance cap base units"),
        ],
        20 => {
            let TxBody::ZonalPrices {
                prices_milli_eur_per_mwh,
                ..
            } = body
            else {
                unreachable!()
            };
            let mut b = vec![s(8, "first hour"), s(2, "count")];
            for i in 0..prices_milli_eur_per_mwh.len() {
                b.push((8, format!("{prefix}price {i} milli-EUR/MWh")));
            }
            b
        }
        21 => vec![s(8, "period")],
        22 => {
            let TxBody::Issuance(i) = body else {
                unreachable!()
            };
            let mut b = vec![
                s(16, "amount"),
                s(1, "reference length"),
                (
                    i.reference.len(),
                    format!("{prefix}reference {:?}", i.reference),
                ),
                s(2, "co-signer count"),
            ];
            for k in 0..i.cosignatures.len() {
                b.push((32, format!("{prefix}co-signer {k}: member key")));
                b.push((64, format!("{prefix}co-signer {k}: signature")));
            }
            b
        }
        _ => unreachable!("fixture bodies are kinds 1..=12 and 14..=22"),
    }
}

/// `(size, label)` of every field of a settlement batch.
fn batch_layout(b: &Batch) -> Vec<(usize, String)> {
    let s = |n: usize, l: &str| (n, l.to_string());
    let mut v = vec![
        s(1, "format version"),
        s(1, "kind"),
        s(16, "id"),
        s(32, "signer (operator)"),
        s(8, "nonce"),
        s(16, "first record id"),
        s(2, "signer count"),
        s(4, "record count"),
        s(32, "batch root"),
        s(64, "operator signature"),
    ];
    for i in 0..b.signers.len() {
        v.push((32, format!("signer {i}: key")));
        v.push((64, format!("signer {i}: signature over its records")));
    }
    for (k, r) in b.records.iter().enumerate() {
        v.push((2, format!("record {k}: signer index")));
        v.push((1, format!("record {k}: kind")));
        v.extend(body_layout(&r.body, &format!("record {k}: ")));
    }
    v
}

fn block_layout(b: &Block) -> Vec<(usize, String)> {
    let s = |n: usize, l: &str| (n, l.to_string());
    let mut v = vec![
        s(4, "magic SCGB"),
        s(1, "format version"),
        s(8, "height"),
        s(8, "timestamp s"),
        s(32, "parent hash"),
        s(32, "transaction root"),
        s(32, "outcome root"),
        s(32, "state root"),
        s(4, "transaction count"),
    ];
    if let Some(g) = &b.genesis {
        v.extend([
            s(8, "chain id"),
            s(32, "operator key"),
            s(32, "treasury key"),
            s(32, "grid key"),
            s(16, "mint rate base/Wh"),
            s(16, "treasury endowment"),
            s(8, "intervals total"),
            s(1, "simulation marker"),
        ]);
        if g.simulation_key_seed.is_some() {
            v.push(s(8, "key seed"));
        }
    }
    for (i, t) in b.txs.iter().enumerate() {
        v.push((4, format!("tx {i}: length")));
        v.push((t.len(), format!("tx {i}: bytes ({} bytes)", t.len())));
    }
    v
}

/// The page's format: one field per line, hex (integers little-endian, bytes spaced), a `#`
/// comment with the field name and, for integers, the value.
fn annotate(bytes: &[u8], layout: &[(usize, String)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for (size, label) in layout {
        let field = &bytes[at..at + size];
        at += size;
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let value = match size {
            1 | 2 | 4 | 8 | 16 if !label.contains("magic") => {
                let mut le = [0u8; 16];
                le[..*size].copy_from_slice(field);
                format!(" = {}", u128::from_le_bytes(le))
            }
            _ => String::new(),
        };
        if *size <= 16 {
            let spaced: Vec<String> = field.iter().map(|x| format!("{x:02x}")).collect();
            out.push_str(&format!("{:<48}# {label}{value}\n", spaced.join(" ")));
        } else {
            for (n, chunk) in field.chunks(32).enumerate() {
                let note = if n == 0 { label.as_str() } else { "..." };
                out.push_str(&format!("{:<64} # {note}\n", hex(chunk)));
            }
        }
    }
    assert_eq!(at, bytes.len(), "layout covers every byte");
    out
}

/// Every `<!-- fixture: NAME -->` of the page with the bytes of the fenced block after it.
fn documented() -> BTreeMap<String, Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ledger-encoding.md");
    let page = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeMap::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- fixture: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        assert!(
            lines.next().is_some_and(|l| l.starts_with("```")),
            "fixture {name}: a fenced block must follow the marker"
        );
        let mut hex = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            let data = l.split('#').next().unwrap_or("");
            hex.extend(data.chars().filter(|c| !c.is_whitespace()));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .unwrap_or_else(|e| panic!("fixture {name}: bad hex: {e}"));
        assert!(
            out.insert(name.to_string(), bytes).is_none(),
            "fixture {name} appears twice"
        );
    }
    out
}

/// Every fixture this test builds: name, bytes, annotated text.
fn built() -> Vec<(String, Vec<u8>, String)> {
    let mut out = Vec::new();
    for f in tx_fixtures() {
        let bytes = signed(&f);
        let text = annotate(&bytes, &tx_layout(&f.body));
        out.push((f.name.to_string(), bytes, text));
    }
    let bytes = signed_batch();
    let text = annotate(&bytes, &batch_layout(&batch_fixture()));
    out.push(("tx-settlement-batch".to_string(), bytes, text));
    let (genesis, block1, block2) = block_fixtures();
    for (name, b) in [
        ("block-genesis", genesis),
        ("block-1", block1),
        ("block-2", block2),
    ] {
        let bytes = b.to_bytes();
        let text = annotate(&bytes, &block_layout(&b));
        out.push((name.to_string(), bytes, text));
    }
    out
}

#[test]
fn documented_bytes_are_the_encodings_of_the_documented_values() {
    let built = built();
    if std::env::var_os("SCG_PRINT_FIXTURES").is_some_and(|v| v == "1") {
        for (name, bytes, text) in &built {
            println!(
                "<!-- fixture: {name} -->\n```text\n{text}```\n({} bytes)\n",
                bytes.len()
            );
        }
    }
    let doc = documented();
    let names: Vec<&String> = built.iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        doc.keys().collect::<Vec<_>>(),
        {
            let mut n = names.clone();
            n.sort();
            n
        },
        "the page documents exactly the fixtures this test builds"
    );
    for (name, bytes, _) in &built {
        assert!(
            &doc[name] == bytes,
            "{name}: the documented bytes differ from the encoding"
        );
    }
}

#[test]
fn documented_transactions_decode_to_their_values_and_verify() {
    let doc = documented();
    for f in tx_fixtures() {
        let bytes = &doc[f.name];
        let tx = Tx::decode(bytes).unwrap();
        assert_eq!(tx.id, f.id, "{}", f.name);
        assert_eq!(tx.nonce, f.nonce, "{}", f.name);
        assert_eq!(tx.signer, pk(f.signer), "{}", f.name);
        assert_eq!(tx.body, f.body, "{}", f.name);
        assert_eq!(&tx.encode(), bytes, "{}: re-encoding", f.name);
        let msg = signing_message(CHAIN_ID, &bytes[..bytes.len() - 64]);
        let vk = VerifyingKey::from_bytes(&tx.signer).unwrap();
        vk.verify_strict(&msg, &Signature::from_bytes(&tx.signature))
            .unwrap_or_else(|e| panic!("{}: signature: {e}", f.name));
        if let TxBody::Issuance(i) = &tx.body {
            let msg = issuance_message(CHAIN_ID, tx.id, i.amount, &i.reference);
            for c in &i.cosignatures {
                VerifyingKey::from_bytes(&c.member)
                    .unwrap()
                    .verify_strict(&msg, &Signature::from_bytes(&c.signature))
                    .unwrap_or_else(|e| panic!("{}: co-signature: {e}", f.name));
            }
        }
    }
    // The sizes the page states.
    assert_eq!(doc["tx-transfer"].len(), 170);
    assert_eq!(doc["tx-meter-report"].len(), 146);
}

#[test]
fn documented_blocks_decode_and_apply() {
    let doc = documented();
    let genesis = Block::decode(&doc["block-genesis"]).unwrap();
    assert_eq!(genesis.genesis, Some(genesis_config()));
    assert_eq!(genesis.header.timestamp_s, GENESIS_TIMESTAMP_S);
    assert_eq!(genesis.to_bytes(), doc["block-genesis"]);
    // The example of the genesis section: 8,760 intervals, marker 1, seed 42.
    let tail: Vec<u8> = [
        8_760u64.to_le_bytes().as_slice(),
        &[1],
        &42u64.to_le_bytes(),
    ]
    .concat();
    assert!(doc["block-genesis"].ends_with(&tail));
    let (mut ledger, _) = Ledger::from_genesis_block(&genesis).unwrap();
    let block1 = Block::decode(&doc["block-1"]).unwrap();
    assert_eq!(block1.to_bytes(), doc["block-1"]);
    assert_eq!(block1.header.height, 1);
    assert_eq!(
        block1.txs,
        [
            doc["tx-register-member"].clone(),
            doc["tx-transfer"].clone()
        ]
    );
    let outcome = ledger.apply_block(&block1).unwrap();
    assert_eq!(outcome.rejected(), 0);
    assert_eq!(ledger.account(&pk(4)).unwrap().balance, 1_500_000_000);
}

#[test]
fn documented_batch_decodes_verifies_applies_and_proves_each_record() {
    let doc = documented();
    let bytes = &doc["tx-settlement-batch"];
    let tx = Tx::decode(bytes).unwrap();
    assert_eq!((tx.id, tx.nonce, tx.signer), (BATCH_ID, BATCH_NONCE, pk(1)));
    let TxBody::SettlementBatch(batch) = &tx.body else {
        panic!("not a batch")
    };
    assert_eq!(batch, &batch_fixture());
    assert_eq!(&tx.encode(), bytes);
    // The envelope signature covers the header and the batch head only.
    let msg = signing_message(CHAIN_ID, unsigned_part(bytes));
    assert_eq!(msg.len(), 16 + 8 + 58 + 54);
    VerifyingKey::from_bytes(&pk(1))
        .unwrap()
        .verify_strict(&msg, &Signature::from_bytes(&tx.signature))
        .unwrap();
    assert_eq!(batch.first_bad_signature(CHAIN_ID), None);
    // Three authors (operator, meter 5, treasury), one signature each.
    assert_eq!(batch.signers.len(), 3);
    // Every record has a proof against the batch root that the head states.
    let root: [u8; 32] = bytes[58 + 22..58 + 54].try_into().unwrap();
    assert_eq!(root, batch.root());
    for k in 0..batch.records.len() {
        let proof = batch.record_proof(k).unwrap();
        assert!(proof.verify(CHAIN_ID, &root), "record {k}");
        assert_eq!(proof.record_id(), Some(13 + k as u128));
        let mut forged = proof.clone();
        forged.body = TxBody::Burn { amount: 1 };
        assert!(!forged.verify(CHAIN_ID, &root), "record {k} forged");
        assert!(
            !proof.verify(CHAIN_ID + 1, &root),
            "record {k}, other chain"
        );
    }
    // Any change of the payload fails decoding (root or structure), never panics.
    for i in (58 + 54 + 64)..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(Tx::decode(&b).is_err(), "flip at {i}");
    }
    // Block 2 holds it; applied after block 1, every record applies.
    let (mut ledger, _) =
        Ledger::from_genesis_block(&Block::decode(&doc["block-genesis"]).unwrap()).unwrap();
    ledger
        .apply_block(&Block::decode(&doc["block-1"]).unwrap())
        .unwrap();
    let block2 = Block::decode(&doc["block-2"]).unwrap();
    assert_eq!(block2.to_bytes(), doc["block-2"]);
    assert_eq!(block2.txs, std::slice::from_ref(bytes));
    let outcome = ledger.apply_block(&block2).unwrap();
    assert_eq!(outcome.rejected(), 0);
    assert!(outcome.record_rejects.is_empty());
    // 1.5 RES + 1,200 Wh minted at 100,000 base/Wh + 1 RES.
    assert_eq!(
        ledger.account(&pk(4)).unwrap().balance,
        1_500_000_000 + 120_000_000 + 1_000_000_000
    );
    // The records carry no nonce: meter 5 and the treasury keep theirs.
    assert_eq!(ledger.account(&pk(5)).unwrap().nonce, 0);
    assert_eq!(ledger.account(&pk(2)).unwrap().nonce, 1);
    assert_eq!(ledger.account(&pk(1)).unwrap().nonce, 2);
}
