//! Property test: random transaction streams against a tiny reference ledger built on
//! `BTreeMap`s. After every block, every transaction's accept/reject and every balance, reserve
//! and certificate must agree with the model, and the ledger invariants must hold (checked from
//! scratch by the harness, which also re-applies each block on a replica).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Chain, MINT_RATE, pk};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use scg_ledger::{DeviceType, TxBody};
use std::collections::BTreeMap;

const MEMBERS: usize = 4;
const START: u128 = 1_000_000;

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: u128,
    },
    Report {
        meter: usize,
        interval: u64,
        produced_wh: u64,
    },
    Create {
        buyer: usize,
        seller: usize,
        energy_wh: u64,
        price: u128,
        fee: u128,
        hours: u64,
    },
    Post {
        trade: usize,
        meter: usize,
        delivered_wh: u64,
    },
    Void {
        trade: usize,
        signer: usize,
    },
    CertTransfer {
        cert: usize,
        from: usize,
        to: usize,
        energy_wh: u64,
    },
    Retire {
        cert: usize,
        from: usize,
        energy_wh: u64,
    },
    Burn {
        member: usize,
        amount: u128,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let m = 0..MEMBERS;
    prop_oneof![
        1 => (m.clone(), 0..MEMBERS + 1, 0u128..400_000).prop_map(|(from, to, amount)| Op::Transfer {
            from,
            to,
            amount
        }),
        3 => (0..MEMBERS + 1, 0u64..2, 0u64..1_500).prop_map(|(meter, interval, produced_wh)| {
            Op::Report {
                meter,
                interval,
                produced_wh,
            }
        }),
        2 => (
            m.clone(),
            m.clone(),
            0u64..2_000,
            0u128..300_000,
            0u128..50_000,
            0u64..16
        )
            .prop_map(|(buyer, seller, energy_wh, price, fee, hours)| Op::Create {
                buyer,
                seller,
                energy_wh,
                price,
                fee,
                hours
            }),
        4 => (0usize..8, 0..MEMBERS + 3, 0u64..1_500).prop_map(|(trade, meter, delivered_wh)| {
            Op::Post {
                trade,
                meter,
                delivered_wh,
            }
        }),
        1 => (0usize..8, 0..MEMBERS + 2).prop_map(|(trade, signer)| Op::Void { trade, signer }),
        2 => (0usize..8, 0..MEMBERS + 2, m.clone(), 0u64..1_000).prop_map(
            |(cert, from, to, energy_wh)| {
                Op::CertTransfer {
                    cert,
                    from,
                    to,
                    energy_wh,
                }
            }
        ),
        1 => (0usize..8, 0..MEMBERS + 2, 0u64..1_000).prop_map(|(cert, from, energy_wh)| Op::Retire {
            cert,
            from,
            energy_wh
        }),
        1 => (m, 0u128..200_000).prop_map(|(member, amount)| Op::Burn { member, amount }),
    ]
}

#[derive(Debug, Clone)]
struct MTrade {
    id: u128,
    buyer: usize,
    seller: usize,
    interval: u64,
    energy_wh: u64,
    price: u128,
    fee: u128,
    reserved: u128,
    expires: u64,
    pending: bool,
}

#[derive(Debug, Clone)]
struct MCert {
    owner: usize,
    held: u64,
    retired: u64,
}

/// The reference ledger. Index `MEMBERS` in `balances` is the grid account.
#[derive(Debug, Default)]
struct Model {
    balances: BTreeMap<usize, u128>,
    reserved: BTreeMap<usize, u128>,
    reports: BTreeMap<(usize, u64), (u64, u64)>, // (produced, sold)
    trades: Vec<MTrade>,
    certs: Vec<MCert>,
}

fn cost(wh: u64, rate: u128) -> u128 {
    u128::from(wh) * rate / 1000
}

/// Meter `k < MEMBERS` is member k's PV; meter `MEMBERS` is member 0's battery.
fn meter_owner(k: usize) -> usize {
    if k < MEMBERS { k } else { 0 }
}

impl Model {
    fn bal(&mut self, i: usize) -> &mut u128 {
        self.balances.entry(i).or_insert(0)
    }
    fn res(&mut self, i: usize) -> &mut u128 {
        self.reserved.entry(i).or_insert(0)
    }

    fn expire(&mut self, now: u64) {
        for t in 0..self.trades.len() {
            let tr = self.trades[t].clone();
            if tr.pending && tr.expires <= now {
                self.trades[t].pending = false;
                *self.res(tr.buyer) -= tr.reserved;
                *self.bal(tr.buyer) += tr.reserved;
            }
        }
    }

    /// Point random indexes at existing trades/certificates, and sentinel values (beyond the
    /// member range) at the trade's seller or the certificate's owner, so that most operations
    /// are meaningful rather than trivially rejected.
    fn resolve(&self, op: &Op) -> Op {
        let trade_of = |t: usize| {
            if self.trades.is_empty() {
                t
            } else {
                t % self.trades.len()
            }
        };
        let cert_of = |c: usize| {
            if self.certs.is_empty() {
                c
            } else {
                c % self.certs.len()
            }
        };
        match *op {
            Op::Post {
                trade,
                meter,
                delivered_wh,
            } => {
                let trade = trade_of(trade);
                let meter = match self.trades.get(trade) {
                    Some(t) if meter > MEMBERS => t.seller,
                    _ => meter.min(MEMBERS),
                };
                Op::Post {
                    trade,
                    meter,
                    delivered_wh,
                }
            }
            Op::Void { trade, signer } => {
                let trade = trade_of(trade);
                let signer = match self.trades.get(trade) {
                    Some(t) if signer >= MEMBERS => t.seller,
                    _ => signer % MEMBERS,
                };
                Op::Void { trade, signer }
            }
            Op::CertTransfer {
                cert,
                from,
                to,
                energy_wh,
            } => {
                let cert = cert_of(cert);
                let from = match self.certs.get(cert) {
                    Some(c) if from >= MEMBERS => c.owner,
                    _ => from % MEMBERS,
                };
                Op::CertTransfer {
                    cert,
                    from,
                    to,
                    energy_wh,
                }
            }
            Op::Retire {
                cert,
                from,
                energy_wh,
            } => {
                let cert = cert_of(cert);
                let from = match self.certs.get(cert) {
                    Some(c) if from >= MEMBERS => c.owner,
                    _ => from % MEMBERS,
                };
                Op::Retire {
                    cert,
                    from,
                    energy_wh,
                }
            }
            ref other => other.clone(),
        }
    }

    /// Apply; returns whether the ledger must accept it.
    fn apply(&mut self, op: &Op, now: u64, tx_id: u128) -> bool {
        match *op {
            Op::Transfer { from, to, amount } => {
                if amount == 0 || from == to || *self.bal(from) < amount {
                    return false;
                }
                *self.bal(from) -= amount;
                *self.bal(to) += amount;
                true
            }
            Op::Report {
                meter,
                interval,
                produced_wh,
            } => {
                if self.reports.contains_key(&(meter, interval)) {
                    return false;
                }
                self.reports.insert((meter, interval), (produced_wh, 0));
                if meter < MEMBERS && produced_wh > 0 {
                    *self.bal(meter) += u128::from(produced_wh) * MINT_RATE;
                    self.certs.push(MCert {
                        owner: meter,
                        held: produced_wh,
                        retired: 0,
                    });
                }
                true
            }
            Op::Create {
                buyer,
                seller,
                energy_wh,
                price,
                fee,
                hours,
            } => {
                let reserve = cost(energy_wh, price) + cost(energy_wh, fee);
                let expires = now + hours * 3_600;
                if buyer == seller || energy_wh == 0 || expires <= now || *self.bal(buyer) < reserve
                {
                    return false;
                }
                *self.bal(buyer) -= reserve;
                *self.res(buyer) += reserve;
                self.trades.push(MTrade {
                    id: tx_id,
                    buyer,
                    seller,
                    interval: 0,
                    energy_wh,
                    price,
                    fee,
                    reserved: reserve,
                    expires,
                    pending: true,
                });
                true
            }
            Op::Post {
                trade,
                meter,
                delivered_wh,
            } => {
                let Some(tr) = self.trades.get(trade).cloned() else {
                    return false;
                };
                let Some(&(produced, sold)) = self.reports.get(&(meter, tr.interval)) else {
                    return false;
                };
                if !tr.pending || meter_owner(meter) != tr.seller || delivered_wh > tr.energy_wh {
                    return false;
                }
                if produced - sold < delivered_wh {
                    return false;
                }
                let pay = cost(delivered_wh, tr.price);
                let fee = cost(delivered_wh, tr.fee);
                self.reports
                    .insert((meter, tr.interval), (produced, sold + delivered_wh));
                self.trades[trade].pending = false;
                *self.res(tr.buyer) -= tr.reserved;
                *self.bal(tr.buyer) += tr.reserved - pay - fee;
                *self.bal(tr.seller) += pay;
                *self.bal(MEMBERS) += fee;
                true
            }
            Op::Void { trade, signer } => {
                let Some(tr) = self.trades.get(trade).cloned() else {
                    return false;
                };
                if !tr.pending || signer != tr.seller {
                    return false;
                }
                self.trades[trade].pending = false;
                *self.res(tr.buyer) -= tr.reserved;
                *self.bal(tr.buyer) += tr.reserved;
                true
            }
            Op::CertTransfer {
                cert,
                from,
                to,
                energy_wh,
            } => {
                let Some(c) = self.certs.get(cert).cloned() else {
                    return false;
                };
                if c.owner != from || energy_wh == 0 || energy_wh > c.held || from == to {
                    return false;
                }
                if energy_wh == c.held && c.retired == 0 {
                    // Whole certificate: changes hands, keeps its id (as the ledger does).
                    self.certs[cert].owner = to;
                } else {
                    self.certs[cert].held -= energy_wh;
                    self.certs.push(MCert {
                        owner: to,
                        held: energy_wh,
                        retired: 0,
                    });
                }
                true
            }
            Op::Retire {
                cert,
                from,
                energy_wh,
            } => {
                let Some(c) = self.certs.get(cert).cloned() else {
                    return false;
                };
                if c.owner != from || energy_wh == 0 || energy_wh > c.held {
                    return false;
                }
                self.certs[cert].held -= energy_wh;
                self.certs[cert].retired += energy_wh;
                true
            }
            Op::Burn { member, amount } => {
                if amount == 0 || *self.bal(member) < amount {
                    return false;
                }
                *self.bal(member) -= amount;
                true
            }
        }
    }
}

struct World {
    c: Chain,
    members: Vec<SigningKey>,
    meters: Vec<SigningKey>,
}

fn world() -> World {
    let mut c = Chain::new();
    let members: Vec<SigningKey> = (0..MEMBERS)
        .map(|i| c.add_member(&format!("m{i}")))
        .collect();
    let mut meters: Vec<SigningKey> = (0..MEMBERS)
        .map(|i| c.add_meter(&members[i].clone(), &format!("pv{i}"), DeviceType::Pv))
        .collect();
    meters.push(c.add_meter(&members[0].clone(), "bat0", DeviceType::Battery));
    for m in &members {
        c.fund(m, START);
    }
    World { c, members, meters }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn ledger_matches_reference_model(blocks in proptest::collection::vec(proptest::collection::vec(op(), 0..6), 1..12)) {
        let mut w = world();
        let mut model = Model::default();
        for (i, m) in w.members.iter().enumerate() {
            model.balances.insert(i, w.c.balance(m));
        }
        model.balances.insert(MEMBERS, 0);
        let treasury_key = w.c.treasury.clone();
        let treasury0 = w.c.balance(&treasury_key);
        // A fixed opening so that posts, voids and certificate moves have something to act
        // on: every PV meter reports interval 0, and member i sells to member i + 1.
        let mut blocks = blocks;
        let mut opening: Vec<Op> = (0..MEMBERS)
            .map(|meter| Op::Report { meter, interval: 0, produced_wh: 3_000 })
            .collect();
        opening.extend((0..MEMBERS).map(|seller| Op::Create {
            buyer: (seller + 1) % MEMBERS,
            seller,
            energy_wh: 1_000,
            price: 100_000,
            fee: 10_000,
            hours: 15,
        }));
        blocks.insert(0, opening);
        for ops in blocks {
            let now = w.c.timestamp_s + 3_600;
            model.expire(now);
            // Sign each op with the signer's next nonce; a rejected tx does not consume its
            // nonce, so later txs of the same signer in this block use the model's count.
            let mut next_nonce: BTreeMap<[u8; 32], u64> = BTreeMap::new();
            let mut txs = Vec::new();
            let mut expect = Vec::new();
            for op in &ops {
                let op = &model.resolve(op);
                let (signer, body) = match *op {
                    Op::Transfer { from, to, amount } => {
                        let to = if to == MEMBERS { pk(&w.c.grid) } else { pk(&w.members[to]) };
                        (w.members[from].clone(), TxBody::Transfer { to, amount })
                    }
                    Op::Report { meter, interval, produced_wh } => (
                        w.meters[meter].clone(),
                        TxBody::MeterReport { interval, produced_wh, consumed_wh: 0 },
                    ),
                    Op::Create { buyer, seller, energy_wh, price, fee, hours } => (
                        w.members[buyer].clone(),
                        TxBody::TradeCreate {
                            seller: pk(&w.members[seller]),
                            interval: 0,
                            energy_wh,
                            price_base_per_kwh: price,
                            fee_base_per_kwh: fee,
                            expires_at_s: now + hours * 3_600,
                        },
                    ),
                    Op::Post { trade, meter, delivered_wh } => (
                        w.meters[meter].clone(),
                        TxBody::TradePost {
                            trade_id: model.trades.get(trade).map_or(u128::MAX, |t| t.id),
                            delivered_wh,
                        },
                    ),
                    Op::Void { trade, signer } => (
                        w.members[signer].clone(),
                        TxBody::TradeVoid { trade_id: model.trades.get(trade).map_or(u128::MAX, |t| t.id) },
                    ),
                    Op::CertTransfer { cert, from, to, energy_wh } => (
                        w.members[from].clone(),
                        TxBody::CertificateTransfer {
                            certificate_id: model_cert_id(&w, &model, cert),
                            to: pk(&w.members[to]),
                            energy_wh,
                        },
                    ),
                    Op::Retire { cert, from, energy_wh } => (
                        w.members[from].clone(),
                        TxBody::CertificateRetire { certificate_id: model_cert_id(&w, &model, cert), energy_wh },
                    ),
                    Op::Burn { member, amount } => (w.members[member].clone(), TxBody::Burn { amount }),
                };
                let id = w.c.next_id;
                let nonce = *next_nonce.entry(pk(&signer)).or_insert_with(|| w.c.nonce(&signer));
                let ok = model.apply(op, now, id);
                if ok {
                    *next_nonce.get_mut(&pk(&signer)).unwrap() += 1;
                }
                txs.push(w.c.sign_with(&signer, nonce, body));
                expect.push(ok);
            }
            let outcome = w.c.block_at(now, txs);
            let got: Vec<bool> = outcome.results.iter().map(Result::is_ok).collect();
            prop_assert_eq!(&got, &expect, "ops {:?} results {:?}", ops, outcome.results);
            for (i, m) in w.members.iter().enumerate() {
                let a = w.c.ledger.account(&pk(m)).unwrap();
                prop_assert_eq!(a.balance, model.balances[&i], "member {} balance", i);
                prop_assert_eq!(a.reserved, model.reserved.get(&i).copied().unwrap_or(0));
            }
            prop_assert_eq!(w.c.balance(&w.c.grid.clone()), model.balances[&MEMBERS]);
            prop_assert_eq!(w.c.balance(&treasury_key), treasury0);
            prop_assert_eq!(w.c.ledger.certificates().len(), model.certs.len());
            for (i, mc) in model.certs.iter().enumerate() {
                let c = w.c.ledger.certificate(i as u64 + 1).unwrap();
                prop_assert_eq!(c.owner, pk(&w.members[mc.owner]));
                prop_assert_eq!((c.energy_wh, c.retired_wh), (mc.held, mc.retired));
            }
        }
    }
}

/// Ledger certificate ids are issue/split order: exactly the model's index + 1.
fn model_cert_id(_: &World, model: &Model, cert: usize) -> u64 {
    if cert < model.certs.len() {
        cert as u64 + 1
    } else {
        10_000
    }
}
