//! Per-transaction-type tests, including every rejection reason, with hand-computed amounts.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Chain, ENDOWMENT, MINT_RATE, key, pk};
use scg_ledger::state::TradeStatus;
use scg_ledger::tx::Payout;
use scg_ledger::{DeviceType, Reject, TxBody};
use std::collections::BTreeSet;

/// Community with two members (alice PV, bob supply point), funded with 1 RES each.
fn community() -> (Chain, [ed25519_dalek::SigningKey; 4]) {
    let mut c = Chain::new();
    let alice = c.add_member("alice");
    let bob = c.add_member("bob");
    let alice_pv = c.add_meter(&alice, "alice-pv", DeviceType::Pv);
    let bob_meter = c.add_meter(&bob, "bob-supply", DeviceType::SupplyPoint);
    c.fund(&alice, 1_000_000_000);
    c.fund(&bob, 1_000_000_000);
    (c, [alice, bob, alice_pv, bob_meter])
}

fn report(interval: u64, produced_wh: u64) -> TxBody {
    TxBody::MeterReport {
        interval,
        produced_wh,
        consumed_wh: 10,
    }
}

fn trade(seller: &ed25519_dalek::SigningKey, energy_wh: u64, expires_at_s: u64) -> TxBody {
    TxBody::TradeCreate {
        seller: pk(seller),
        interval: 1,
        energy_wh,
        price_base_per_kwh: 200_000_000, // 0.2 RES per kWh
        fee_base_per_kwh: 30_000_000,    // 0.03 RES per kWh
        expires_at_s,
    }
}

#[test]
fn registration_creates_accounts_and_genesis_funds_the_treasury() {
    let (c, [alice, _, alice_pv, _]) = community();
    let a = c.ledger.account(&pk(&alice)).unwrap();
    assert_eq!(a.role, scg_ledger::Role::Member);
    let m = c.ledger.account(&pk(&alice_pv)).unwrap();
    assert_eq!(m.owner, Some(pk(&alice)));
    assert_eq!(m.device, Some(DeviceType::Pv));
    assert_eq!(c.balance(&c.treasury.clone()), ENDOWMENT - 2_000_000_000);
    assert_eq!(c.ledger.totals().minted, ENDOWMENT);
    // operator, treasury, grid, 2 members, 2 meters
    assert_eq!(c.ledger.accounts().count(), 7);
}

#[test]
fn renewable_report_mints_and_issues_a_certificate_once() {
    let (mut c, [alice, _, alice_pv, bob_meter]) = community();
    let before = c.balance(&alice);
    assert_eq!(c.one(&alice_pv, report(1, 2_500)), Ok(()));
    // 2500 Wh x 1000 base/Wh = 2,500,000 base units.
    assert_eq!(c.balance(&alice), before + 2_500 * MINT_RATE);
    let cert = c.ledger.certificate(1).unwrap();
    assert_eq!(
        (cert.energy_wh, cert.interval, cert.device),
        (2_500, 1, DeviceType::Pv)
    );
    assert_eq!(cert.owner, pk(&alice));
    assert_eq!(c.ledger.totals().certificates_issued, 1);
    assert_eq!(c.ledger.totals().renewable_wh_metered, 2_500);
    // Never twice for the same meter and interval.
    assert_eq!(
        c.one(&alice_pv, report(1, 2_500)),
        Err(Reject::DuplicateReport)
    );
    // A supply-point (non-renewable) report mints nothing and issues no certificate.
    let supply = c.ledger.totals().supply();
    assert_eq!(c.one(&bob_meter, report(1, 700)), Ok(()));
    assert_eq!(c.ledger.totals().supply(), supply);
    assert_eq!(c.ledger.totals().certificates_issued, 1);
}

#[test]
fn mint_overflow_is_rejected() {
    let mut c = Chain::with(u128::MAX / 4, 0);
    let alice = c.add_member("alice");
    let pv = c.add_meter(&alice, "pv", DeviceType::Wind);
    assert_eq!(c.one(&pv, report(0, 5)), Err(Reject::Overflow));
    assert_eq!(c.ledger.totals().minted, 0);
    assert_eq!(c.one(&pv, report(0, 3)), Ok(()));
}

#[test]
fn transfer_moves_exact_amounts() {
    let (mut c, [alice, bob, _, _]) = community();
    assert_eq!(
        c.one(
            &alice,
            TxBody::Transfer {
                to: pk(&bob),
                amount: 400
            }
        ),
        Ok(())
    );
    assert_eq!(c.balance(&alice), 1_000_000_000 - 400);
    assert_eq!(c.balance(&bob), 1_000_000_000 + 400);
}

#[test]
fn two_phase_trade_full_and_partial_delivery() {
    let (mut c, [alice, bob, alice_pv, _]) = community();
    c.one(&alice_pv, report(1, 3_000)).unwrap();
    let alice0 = c.balance(&alice);
    let bob0 = c.balance(&bob);
    let expires = c.timestamp_s + 10 * 3_600;
    // Bob buys 2 kWh at 0.2 RES/kWh + 0.03 RES/kWh fee: reserve 0.46 RES.
    let create = c.sign(&bob, trade(&alice, 2_000, expires));
    let trade_id = scg_ledger::Tx::decode(&create).unwrap().id;
    assert_eq!(c.block(vec![create]).results[0], Ok(()));
    assert_eq!(c.balance(&bob), bob0 - 460_000_000);
    assert_eq!(c.ledger.account(&pk(&bob)).unwrap().reserved, 460_000_000);
    // Alice's meter posts 1500 Wh: pay 0.3 RES, fee 0.045 RES, refund 0.115 RES.
    assert_eq!(
        c.one(
            &alice_pv,
            TxBody::TradePost {
                trade_id,
                delivered_wh: 1_500
            }
        ),
        Ok(())
    );
    assert_eq!(c.balance(&alice), alice0 + 300_000_000);
    assert_eq!(c.balance(&bob), bob0 - 300_000_000 - 45_000_000);
    assert_eq!(c.balance(&c.grid.clone()), 45_000_000);
    assert_eq!(c.ledger.account(&pk(&bob)).unwrap().reserved, 0);
    let t = c.ledger.trade(trade_id).unwrap();
    assert_eq!((t.status, t.delivered_wh), (TradeStatus::Posted, 1_500));
    assert_eq!(c.ledger.report(&pk(&alice_pv), 1).unwrap().sold_wh, 1_500);
    // Resolves at most once.
    assert_eq!(
        c.one(
            &alice_pv,
            TxBody::TradePost {
                trade_id,
                delivered_wh: 1
            }
        ),
        Err(Reject::TradeNotPending)
    );
    assert_eq!(
        c.one(&alice, TxBody::TradeVoid { trade_id }),
        Err(Reject::TradeNotPending)
    );
}

#[test]
fn void_and_timeout_refund_the_buyer() {
    let (mut c, [alice, bob, _, _]) = community();
    let bob0 = c.balance(&bob);
    let far = c.timestamp_s + 100 * 3_600;
    let t1 = c.sign(&bob, trade(&alice, 1_000, far));
    let id1 = scg_ledger::Tx::decode(&t1).unwrap().id;
    c.block(vec![t1]);
    // The buyer may not void.
    assert_eq!(
        c.one(&bob, TxBody::TradeVoid { trade_id: id1 }),
        Err(Reject::NotTradeParty)
    );
    assert_eq!(c.one(&alice, TxBody::TradeVoid { trade_id: id1 }), Ok(()));
    assert_eq!(c.balance(&bob), bob0);
    assert_eq!(c.ledger.trade(id1).unwrap().status, TradeStatus::Voided);
    // The operator may void too.
    let t2 = c.sign(&bob, trade(&alice, 1_000, far));
    let id2 = scg_ledger::Tx::decode(&t2).unwrap().id;
    c.block(vec![t2]);
    let op = c.operator.clone();
    assert_eq!(c.one(&op, TxBody::TradeVoid { trade_id: id2 }), Ok(()));
    // Timeout: expires in the first block at or after expires_at_s.
    let soon = c.timestamp_s + 3 * 3_600;
    let t3 = c.sign(&bob, trade(&alice, 1_000, soon));
    let id3 = scg_ledger::Tx::decode(&t3).unwrap().id;
    c.block(vec![t3]);
    assert_eq!(c.balance(&bob), bob0 - 230_000_000);
    let o = c.block(vec![]); // +2 h: not yet
    assert!(o.expired.is_empty());
    let o = c.block(vec![]); // +3 h: expires
    assert_eq!(o.expired, vec![id3]);
    assert_eq!(c.balance(&bob), bob0);
    assert_eq!(c.ledger.trade(id3).unwrap().status, TradeStatus::Expired);
    assert_eq!(
        c.one(&alice, TxBody::TradeVoid { trade_id: id3 }),
        Err(Reject::TradeNotPending)
    );
}

#[test]
fn certificates_split_transfer_and_retire() {
    let (mut c, [alice, bob, alice_pv, _]) = community();
    c.one(&alice_pv, report(4, 1_000)).unwrap();
    assert_eq!(
        c.one(
            &alice,
            TxBody::CertificateTransfer {
                certificate_id: 1,
                to: pk(&bob),
                energy_wh: 300
            }
        ),
        Ok(())
    );
    let parent = c.ledger.certificate(1).unwrap();
    let part = c.ledger.certificate(2).unwrap();
    assert_eq!(
        (parent.energy_wh, part.energy_wh, part.parent),
        (700, 300, 1)
    );
    assert_eq!(part.owner, pk(&bob));
    assert_eq!(part.interval, 4);
    assert_eq!(
        c.one(
            &bob,
            TxBody::CertificateRetire {
                certificate_id: 2,
                energy_wh: 300
            }
        ),
        Ok(())
    );
    assert_eq!(c.ledger.certificate(2).unwrap().retired_wh, 300);
    // Whole transfer changes the owner without a split.
    assert_eq!(
        c.one(
            &alice,
            TxBody::CertificateTransfer {
                certificate_id: 1,
                to: pk(&bob),
                energy_wh: 700
            }
        ),
        Ok(())
    );
    assert_eq!(c.ledger.certificate(1).unwrap().owner, pk(&bob));
    assert_eq!(c.ledger.certificates().len(), 2);
    // Splits are not issues: still one certificate issued for 1000 Wh.
    assert_eq!(c.ledger.totals().certificates_issued, 1);
    assert_eq!(c.ledger.totals().certified_wh, 1_000);
}

#[test]
fn cer_distribution_and_burn() {
    let (mut c, [alice, bob, _, _]) = community();
    let t = c.treasury.clone();
    let t0 = c.balance(&t);
    let payouts = vec![
        Payout {
            member: pk(&alice),
            amount: 5,
        },
        Payout {
            member: pk(&bob),
            amount: 7,
        },
    ];
    assert_eq!(
        c.one(
            &t,
            TxBody::CerDistribution {
                period: 1,
                payouts: payouts.clone()
            }
        ),
        Ok(())
    );
    assert_eq!(c.balance(&t), t0 - 12);
    assert_eq!(c.balance(&alice), 1_000_000_005);
    assert_eq!(
        c.one(&t, TxBody::CerDistribution { period: 1, payouts }),
        Err(Reject::DuplicatePeriod)
    );
    let supply = c.ledger.totals().supply();
    assert_eq!(c.one(&alice, TxBody::Burn { amount: 100 }), Ok(()));
    assert_eq!(c.ledger.totals().supply(), supply - 100);
    assert_eq!(c.ledger.totals().burned, 100);
}

/// Every rejection reason, each asserted where it arises; finally all reasons were seen.
fn store_or_send(to: &ed25519_dalek::SigningKey, interval: u64, energy_wh: u64) -> TxBody {
    TxBody::CertificateMove {
        to: pk(to),
        interval,
        energy_wh,
    }
}

/// Origin follows the energy: certified Wh go into a battery only up to its metered charge,
/// come back on discharge only up to the discharge, and go to a buyer only up to the posted
/// delivery; nothing is ever created or certified twice.
#[test]
fn certificate_moves_follow_the_energy() {
    let (mut c, [alice, bob, alice_pv, _]) = community();
    let bat = c.add_meter(&alice, "alice-bat", DeviceType::Battery);
    c.one(&alice_pv, report(5, 1_000)).unwrap();
    c.one(
        &bat,
        TxBody::MeterReport {
            interval: 5,
            produced_wh: 0,
            consumed_wh: 400,
        },
    )
    .unwrap();
    let held = |c: &Chain, k: &ed25519_dalek::SigningKey| c.ledger.certified_held_wh(&pk(k));
    assert_eq!(
        c.one(&alice, store_or_send(&bat, 5, 401)),
        Err(Reject::CertifiedExceedsEnergy)
    );
    c.one(&alice, store_or_send(&bat, 5, 250)).unwrap();
    c.one(&alice, store_or_send(&bat, 5, 150)).unwrap();
    assert_eq!(
        c.one(&alice, store_or_send(&bat, 5, 1)),
        Err(Reject::CertifiedExceedsEnergy),
        "the 400 Wh charge is fully certified"
    );
    assert_eq!((held(&c, &alice), held(&c, &bat)), (600, 400));
    // Discharge 300 Wh: 300 certified Wh come back, 100 stay in the battery.
    c.one(
        &bat,
        TxBody::MeterReport {
            interval: 6,
            produced_wh: 300,
            consumed_wh: 0,
        },
    )
    .unwrap();
    assert_eq!((held(&c, &alice), held(&c, &bat)), (900, 100));
    // Newest first: the 150 Wh part stored last comes back whole, then 150 Wh of the 250 Wh
    // part; both as new certificates that keep the PV origin and interval.
    let newest = c.ledger.certificates().last().unwrap().clone();
    assert_eq!((newest.owner, newest.energy_wh), (pk(&alice), 150));
    assert_eq!(newest.device, DeviceType::Pv);
    assert_eq!(newest.interval, 5);
    // No certificate goes to bob without a delivery.
    assert_eq!(
        c.one(&alice, store_or_send(&bob, 1, 1)),
        Err(Reject::CertifiedExceedsEnergy)
    );
    c.one(&alice_pv, report(1, 100)).unwrap();
    let create = c.sign(&bob, trade(&alice, 80, c.timestamp_s + 36_000));
    let trade_id = scg_ledger::Tx::decode(&create).unwrap().id;
    c.block(vec![create]).results[0].unwrap();
    c.one(
        &alice_pv,
        TxBody::TradePost {
            trade_id,
            delivered_wh: 80,
        },
    )
    .unwrap();
    assert_eq!(
        c.one(&alice, store_or_send(&bob, 1, 81)),
        Err(Reject::CertifiedExceedsEnergy)
    );
    c.one(&alice, store_or_send(&bob, 1, 80)).unwrap();
    assert_eq!((held(&c, &alice), held(&c, &bob)), (920, 80));
    // Bob holds 80 certified Wh: he cannot store 81 even with a 1000 Wh charge.
    let bob_ev = c.add_meter(&bob, "bob-ev", DeviceType::EvCharger);
    c.one(
        &bob_ev,
        TxBody::MeterReport {
            interval: 7,
            produced_wh: 0,
            consumed_wh: 1_000,
        },
    )
    .unwrap();
    assert_eq!(
        c.one(&bob, store_or_send(&bob_ev, 7, 81)),
        Err(Reject::InsufficientCertifiedWh)
    );
    // Never more certified than metered renewable; every Wh is held somewhere.
    let t = c.ledger.totals();
    assert_eq!((t.certified_wh, t.renewable_wh_metered), (1_100, 1_100));
    assert_eq!(
        held(&c, &alice) + held(&c, &bob) + held(&c, &bat) + held(&c, &bob_ev),
        1_100
    );
    // Envelope rules.
    assert_eq!(
        c.one(&alice_pv, store_or_send(&bob, 1, 1)),
        Err(Reject::WrongRole)
    );
    assert_eq!(
        c.one(&bob, store_or_send(&bat, 5, 1)),
        Err(Reject::WrongRole),
        "not bob's storage"
    );
    assert_eq!(
        c.one(&alice, store_or_send(&alice_pv, 5, 1)),
        Err(Reject::WrongRole),
        "PV is not storage"
    );
    assert_eq!(
        c.one(&alice, store_or_send(&alice, 5, 1)),
        Err(Reject::SelfTransfer)
    );
    assert_eq!(
        c.one(&alice, store_or_send(&bat, 5, 0)),
        Err(Reject::ZeroAmount)
    );
    assert_eq!(
        c.one(&alice, store_or_send(&bat, 99, 1)),
        Err(Reject::NoReportForInterval)
    );
    assert_eq!(
        c.one(&alice, store_or_send(&key("stranger"), 5, 1)),
        Err(Reject::UnknownAccount)
    );
}

#[test]
fn every_rejection_reason() {
    let (mut c, [alice, bob, alice_pv, bob_meter]) = community();
    let op = c.operator.clone();
    let treasury = c.treasury.clone();
    let grid_key = c.grid.clone();
    let mut seen = BTreeSet::new();
    let mut expect = |got: Result<(), Reject>, want: Reject| {
        assert_eq!(got, Err(want));
        seen.insert(want);
    };
    // Envelope checks.
    expect(c.block(vec![vec![1, 2, 3]]).results[0], Reject::Malformed);
    let mut bad_sig = c.sign(&alice, TxBody::Burn { amount: 1 });
    let n = bad_sig.len();
    bad_sig[n - 1] ^= 1;
    expect(c.block(vec![bad_sig]).results[0], Reject::BadSignature);
    let stranger = key("stranger");
    expect(
        c.one(&stranger, TxBody::Burn { amount: 1 }),
        Reject::UnknownSigner,
    );
    let nonce = c.nonce(&alice) + 1;
    let tx = c.sign_with(&alice, nonce, TxBody::Burn { amount: 1 });
    expect(c.block(vec![tx]).results[0], Reject::BadNonce);
    // Same id twice (with a fresh nonce): idempotent, the second is rejected.
    let nonce = c.nonce(&alice);
    let first = scg_ledger::Tx::sign(
        common::CHAIN,
        &alice,
        999_999,
        nonce,
        TxBody::Burn { amount: 1 },
    );
    let second = scg_ledger::Tx::sign(
        common::CHAIN,
        &alice,
        999_999,
        nonce + 1,
        TxBody::Burn { amount: 1 },
    );
    let o = c.block(vec![first, second]);
    assert_eq!(o.results[0], Ok(()));
    expect(o.results[1], Reject::DuplicateId);
    // Registration.
    let carol = key("carol");
    expect(
        c.one(&alice, TxBody::RegisterMember { member: pk(&carol) }),
        Reject::WrongRole,
    );
    expect(
        c.one(&op, TxBody::RegisterMember { member: pk(&alice) }),
        Reject::AlreadyRegistered,
    );
    let mut identity = [0u8; 32];
    identity[0] = 1; // the identity point: small order, refused
    expect(
        c.one(&op, TxBody::RegisterMember { member: identity }),
        Reject::InvalidKey,
    );
    let meter = |meter, member| TxBody::RegisterMeter {
        meter,
        member,
        device: DeviceType::Pv,
    };
    expect(
        c.one(&op, meter(pk(&carol), pk(&stranger))),
        Reject::UnknownMember,
    );
    expect(
        c.one(&op, meter(pk(&carol), pk(&alice_pv))),
        Reject::UnknownMember,
    );
    expect(
        c.one(&op, meter(pk(&bob_meter), pk(&alice))),
        Reject::AlreadyRegistered,
    );
    expect(c.one(&op, meter(identity, pk(&alice))), Reject::InvalidKey);
    expect(
        c.one(&bob, meter(pk(&carol), pk(&alice))),
        Reject::WrongRole,
    );
    // Meter reports.
    expect(c.one(&alice, report(1, 5)), Reject::WrongRole);
    c.one(&alice_pv, report(1, 1_000)).unwrap();
    expect(c.one(&alice_pv, report(1, 1_000)), Reject::DuplicateReport);
    // Transfers.
    let transfer = |to, amount| TxBody::Transfer { to, amount };
    expect(c.one(&alice, transfer(pk(&bob), 0)), Reject::ZeroAmount);
    expect(c.one(&alice, transfer(pk(&alice), 1)), Reject::SelfTransfer);
    expect(
        c.one(&alice, transfer(pk(&stranger), 1)),
        Reject::UnknownAccount,
    );
    expect(
        c.one(&alice, transfer(pk(&alice_pv), 1)),
        Reject::MeterCannotHold,
    );
    expect(
        c.one(&alice_pv, transfer(pk(&bob), 1)),
        Reject::MeterCannotHold,
    );
    expect(
        c.one(&alice, transfer(pk(&bob), u128::MAX)),
        Reject::InsufficientFunds,
    );
    // Trade creation.
    let later = c.timestamp_s + 50 * 3_600;
    expect(
        c.one(&alice_pv, trade(&alice, 10, later)),
        Reject::WrongRole,
    );
    expect(
        c.one(&treasury, trade(&alice, 10, later)),
        Reject::WrongRole,
    );
    expect(
        c.one(&bob, trade(&stranger, 10, later)),
        Reject::UnknownMember,
    );
    expect(c.one(&bob, trade(&bob, 10, later)), Reject::SelfTransfer);
    expect(c.one(&bob, trade(&alice, 0, later)), Reject::ZeroAmount);
    expect(
        c.one(&bob, trade(&alice, 10, c.timestamp_s)),
        Reject::ExpiryInPast,
    );
    expect(
        c.one(&bob, trade(&alice, 1_000_000_000, later)),
        Reject::InsufficientFunds,
    );
    let overflow = TxBody::TradeCreate {
        seller: pk(&alice),
        interval: 1,
        energy_wh: 2_000,
        price_base_per_kwh: u128::MAX / 1_000,
        fee_base_per_kwh: 0,
        expires_at_s: later,
    };
    expect(c.one(&bob, overflow), Reject::Overflow);
    // Trade posting and voiding.
    let t1 = c.sign(&bob, trade(&alice, 800, later));
    let id1 = scg_ledger::Tx::decode(&t1).unwrap().id;
    let t2 = c.sign_with(&bob, c.nonce(&bob) + 1, trade(&alice, 800, later));
    let id2 = scg_ledger::Tx::decode(&t2).unwrap().id;
    let o = c.block(vec![t1, t2]);
    assert_eq!(o.results, vec![Ok(()), Ok(())]);
    let post = |trade_id, delivered_wh| TxBody::TradePost {
        trade_id,
        delivered_wh,
    };
    expect(c.one(&alice_pv, post(12_345, 1)), Reject::UnknownTrade);
    expect(c.one(&alice, post(id1, 1)), Reject::NotTradeParty);
    expect(c.one(&bob_meter, post(id1, 1)), Reject::NotTradeParty);
    expect(
        c.one(&alice_pv, post(id1, 801)),
        Reject::DeliveredExceedsTrade,
    );
    c.one(&alice_pv, post(id1, 800)).unwrap();
    // Only 200 Wh of the 1000 Wh metered remain unsold: no energy sold twice.
    expect(
        c.one(&alice_pv, post(id2, 201)),
        Reject::DeliveredExceedsMetered,
    );
    expect(c.one(&alice_pv, post(id1, 1)), Reject::TradeNotPending);
    expect(
        c.one(&bob, TxBody::TradeVoid { trade_id: id2 }),
        Reject::NotTradeParty,
    );
    expect(
        c.one(&alice, TxBody::TradeVoid { trade_id: 777 }),
        Reject::UnknownTrade,
    );
    let other = c.add_meter(&alice, "alice-wind", DeviceType::Wind);
    expect(c.one(&other, post(id2, 1)), Reject::NoReportForInterval);
    // Certificates.
    let cert_transfer = |certificate_id, to, energy_wh| TxBody::CertificateTransfer {
        certificate_id,
        to,
        energy_wh,
    };
    expect(
        c.one(&alice, cert_transfer(99, pk(&bob), 1)),
        Reject::UnknownCertificate,
    );
    expect(
        c.one(&bob, cert_transfer(1, pk(&bob), 1)),
        Reject::NotCertificateOwner,
    );
    expect(
        c.one(&alice, cert_transfer(1, pk(&bob), 0)),
        Reject::ZeroAmount,
    );
    expect(
        c.one(&alice, cert_transfer(1, pk(&bob), 1_001)),
        Reject::CertificateInsufficientWh,
    );
    expect(
        c.one(&alice, cert_transfer(1, pk(&alice), 1)),
        Reject::SelfTransfer,
    );
    expect(
        c.one(&alice, cert_transfer(1, pk(&grid_key), 1)),
        Reject::UnknownMember,
    );
    let retire = |certificate_id, energy_wh| TxBody::CertificateRetire {
        certificate_id,
        energy_wh,
    };
    expect(c.one(&alice, retire(99, 1)), Reject::UnknownCertificate);
    expect(c.one(&bob, retire(1, 1)), Reject::NotCertificateOwner);
    expect(c.one(&alice, retire(1, 0)), Reject::ZeroAmount);
    expect(
        c.one(&alice, retire(1, 1_001)),
        Reject::CertificateInsufficientWh,
    );
    // CER distribution.
    let cer = |period, payouts: Vec<(&ed25519_dalek::SigningKey, u128)>| TxBody::CerDistribution {
        period,
        payouts: payouts
            .into_iter()
            .map(|(k, amount)| Payout {
                member: pk(k),
                amount,
            })
            .collect(),
    };
    expect(c.one(&alice, cer(1, vec![(&bob, 1)])), Reject::WrongRole);
    expect(
        c.one(&treasury, cer(1, vec![(&alice_pv, 1)])),
        Reject::UnknownMember,
    );
    expect(
        c.one(&treasury, cer(1, vec![(&bob, 0)])),
        Reject::ZeroAmount,
    );
    expect(
        c.one(&treasury, cer(1, vec![(&bob, u128::MAX), (&alice, 1)])),
        Reject::Overflow,
    );
    expect(
        c.one(&treasury, cer(1, vec![(&bob, ENDOWMENT)])),
        Reject::InsufficientFunds,
    );
    c.one(&treasury, cer(1, vec![(&bob, 1)])).unwrap();
    expect(
        c.one(&treasury, cer(1, vec![(&bob, 1)])),
        Reject::DuplicatePeriod,
    );
    // Burn.
    expect(
        c.one(&alice, TxBody::Burn { amount: 0 }),
        Reject::ZeroAmount,
    );
    expect(
        c.one(&alice, TxBody::Burn { amount: u128::MAX }),
        Reject::InsufficientFunds,
    );
    expect(
        c.one(&alice_pv, TxBody::Burn { amount: 1 }),
        Reject::MeterCannotHold,
    );

    // Certificate moves (in detail in `certificate_moves_follow_the_energy`).
    expect(
        c.one(&alice, store_or_send(&bob, 77, 1)),
        Reject::CertifiedExceedsEnergy,
    );
    let bob_bat = c.add_meter(&bob, "bob-bat", DeviceType::Battery);
    c.one(
        &bob_bat,
        TxBody::MeterReport {
            interval: 3,
            produced_wh: 0,
            consumed_wh: 50,
        },
    )
    .unwrap();
    expect(
        c.one(&bob, store_or_send(&bob_bat, 3, 50)),
        Reject::InsufficientCertifiedWh,
    );

    // The market's reasons (and those of readings on a market chain) are exercised in
    // tests/market.rs, the CER's in tests/cer.rs, the compact layout's in tests/compact.rs.
    let all: BTreeSet<Reject> = Reject::ALL
        .iter()
        .copied()
        .filter(|r| {
            !Reject::MARKET.contains(r)
                && !Reject::MARKET_READING.contains(r)
                && !Reject::CER.contains(r)
                && !Reject::DAY.contains(r)
        })
        .collect();
    let missing: Vec<_> = all.difference(&seen).collect();
    assert!(missing.is_empty(), "reasons never exercised: {missing:?}");
    for r in Reject::ALL {
        assert_eq!(Reject::from_code(r.code()), Some(r));
        assert!(!r.describe().is_empty());
    }
}

#[test]
fn rejected_transactions_change_nothing_but_the_counter() {
    let (mut c, [alice, bob, _, _]) = community();
    let root_parts = c.ledger.commitment();
    let o = c.one(
        &alice,
        TxBody::Transfer {
            to: pk(&bob),
            amount: u128::MAX,
        },
    );
    assert_eq!(o, Err(Reject::InsufficientFunds));
    let after = c.ledger.commitment();
    assert_eq!(after.accounts_root, root_parts.accounts_root);
    assert_eq!(after.history, root_parts.history);
    assert_eq!(
        after.totals.rejected_txs,
        root_parts.totals.rejected_txs + 1
    );
    // The nonce was not consumed: the same nonce works now.
    assert_eq!(
        c.one(
            &alice,
            TxBody::Transfer {
                to: pk(&bob),
                amount: 1
            }
        ),
        Ok(())
    );
}
