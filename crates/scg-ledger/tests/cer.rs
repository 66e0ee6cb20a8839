//! The CER computed on-chain (kinds 19 to 21) and the quorum-signed capped issuance (kind
//! 22): a period close pays exactly what the one integer rule (`scg_ledger::cer::CerTally`)
//! computes from the readings the ledger holds, every base unit of the period's benefit once;
//! a period closes once; an issuance needs more than two thirds of the members' valid
//! co-signatures for this chain and stays within the cap; every rejection has its reason.
//! Every block is re-applied by a replica (`common::Chain`), invariants checked after each.
#![allow(clippy::unwrap_used)]

mod common;

use common::{CHAIN, Chain, ENDOWMENT, key, pk};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use scg_ledger::cer::{CerParams, CerRule, CerTally, Cosignature, IssuanceBody, SizeClass, cosign};
use scg_ledger::market::MarketParams;
use scg_ledger::{Batch, DeviceType, Reject, TxBody};
use scg_market::{GridFee, Mechanism};
use std::collections::BTreeSet;

const EPOCH_S: u64 = 10_000_000;
const INTERVAL_S: u64 = 900;
const SETTLE_S: u64 = 3_600;
const PER_HOUR: u64 = 3_600 / INTERVAL_S;

fn market(interval_s: u64) -> MarketParams {
    MarketParams {
        epoch_s: EPOCH_S,
        interval_s,
        mechanism: Mechanism::PayAsClear,
        fee: GridFee::None,
        max_orders_per_member: 4,
        settle_window_s: SETTLE_S,
    }
}

fn rule(producer_share_bp: u16) -> CerRule {
    CerRule {
        size_class: SizeClass::UpTo200Kw,
        pv_bonus_milli_eur_per_mwh: 10_000,
        valorisation_milli_eur_per_mwh: 8_000,
        producer_share_bp,
    }
}

fn cer(period_hours: u32, cap: u128, producer_share_bp: u16) -> CerParams {
    CerParams {
        rule: rule(producer_share_bp),
        period_hours,
        issuance_cap_base: cap,
    }
}

/// A member and its supply-point meter.
struct Member {
    key: SigningKey,
    supply: SigningKey,
}

/// A chain with an open market (15-minute intervals) and `n` members with a supply point.
fn chain(n: usize, endowment: u128) -> (Chain, Vec<Member>) {
    let mut c = Chain::with(common::MINT_RATE, endowment);
    let op = c.operator.clone();
    assert_eq!(c.one(&op, TxBody::MarketOpen(market(INTERVAL_S))), Ok(()));
    let members: Vec<Member> = (0..n)
        .map(|i| Member {
            key: key(&format!("cer-member-{i}")),
            supply: key(&format!("cer-supply-{i}")),
        })
        .collect();
    let mut bodies = Vec::new();
    for m in &members {
        bodies.push(TxBody::RegisterMember { member: pk(&m.key) });
        bodies.push(TxBody::RegisterMeter {
            meter: pk(&m.supply),
            member: pk(&m.key),
            device: DeviceType::SupplyPoint,
        });
    }
    let txs = c.sign_all(&op, bodies);
    assert!(c.block(txs).results.iter().all(Result::is_ok));
    (c, members)
}

/// The end of market hour `h`, s.
fn hour_end_s(h: u64) -> u64 {
    EPOCH_S + (h + 1) * 3_600
}

/// Every member's supply point reports its (exported, imported) Wh for each interval of
/// `readings[member][interval]`, one block per interval right after it ends.
fn report(c: &mut Chain, members: &[Member], readings: &[Vec<(u64, u64)>]) {
    let intervals = readings.first().map_or(0, Vec::len);
    for k in 0..intervals {
        let txs: Vec<Vec<u8>> = members
            .iter()
            .zip(readings)
            .filter(|(_, r)| r[k] != (0, 0))
            .map(|(m, r)| {
                let supply = m.supply.clone();
                c.sign(
                    &supply,
                    TxBody::MeterReport {
                        interval: k as u64,
                        produced_wh: r[k].0,
                        consumed_wh: r[k].1,
                    },
                )
            })
            .collect();
        let out = c.block_at(EPOCH_S + (k as u64 + 1) * INTERVAL_S, txs);
        assert!(out.results.iter().all(Result::is_ok), "{:?}", out.results);
    }
}

/// The pure rule over the same readings, members in registration order.
fn expected(rule: &CerRule, zonal: &[i64], readings: &[Vec<(u64, u64)>]) -> CerTally {
    let n = readings.len();
    let mut t = CerTally::new(n);
    for (h, price) in zonal.iter().enumerate() {
        let (mut inj, mut wdr) = (vec![0u64; n], vec![0u64; n]);
        let hour = h * PER_HOUR as usize..(h + 1) * PER_HOUR as usize;
        for (i, r) in readings.iter().enumerate() {
            for (produced, consumed) in &r[hour.clone()] {
                inj[i] += produced;
                wdr[i] += consumed;
            }
        }
        t.add_hour(rule, *price, &inj, &wdr).unwrap();
    }
    t
}

fn close_at(c: &mut Chain, who: &SigningKey, period: u64, timestamp_s: u64) -> Result<(), Reject> {
    let tx = c.sign(who, TxBody::CerPeriodClose { period });
    c.block_at(timestamp_s, vec![tx]).results[0]
}

/// A period close in a block one second after the last.
fn close_next(c: &mut Chain, who: &SigningKey, period: u64) -> Result<(), Reject> {
    let at = c.timestamp_s + 1;
    close_at(c, who, period, at)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A period close pays each member exactly the pure rule's allocation over the readings
    /// the ledger holds; the payouts add up to the recorded incentive + valorisation and
    /// leave the treasury; a second close is refused and changes nothing.
    #[test]
    fn period_close_pays_the_integer_rule_exactly_once(
        n in 2usize..6,
        share in 0u16..=10_000,
        zonal in proptest::collection::vec(-20_000i64..300_000, 2),
        seed in proptest::collection::vec((0u64..4_000, 0u64..4_000), 48),
    ) {
        let (mut c, members) = chain(n, ENDOWMENT);
        let op = c.operator.clone();
        let params = cer(2, ENDOWMENT, share);
        prop_assert_eq!(c.one(&op, TxBody::CerOpen(params)), Ok(()));
        let prices = TxBody::ZonalPrices { first_hour: 0, prices_milli_eur_per_mwh: zonal.clone() };
        prop_assert_eq!(c.one(&op, prices), Ok(()));
        // 2 hours of 4 intervals; member i's readings from the seed, some members idle.
        let readings: Vec<Vec<(u64, u64)>> = (0..n)
            .map(|i| (0..8).map(|k| if i == 1 && k % 3 == 0 { (0, 0) } else { seed[(i * 8 + k) % 48] }).collect())
            .collect();
        report(&mut c, &members, &readings);
        let want = expected(&params.rule, &zonal, &readings);
        let before: Vec<u128> = members.iter().map(|m| c.balance(&m.key)).collect();
        let treasury = c.treasury.clone();
        let treasury_before = c.balance(&treasury);
        let closer = members[n - 1].key.clone();
        prop_assert_eq!(close_at(&mut c, &closer, 0, hour_end_s(1) + SETTLE_S + 1), Ok(()));
        let paid: Vec<u128> = members.iter().zip(&before).map(|(m, b)| c.balance(&m.key) - b).collect();
        prop_assert_eq!(&paid, &want.allocated_base);
        let total: u128 = paid.iter().sum();
        prop_assert_eq!(total, want.total_base());
        prop_assert_eq!(treasury_before - c.balance(&treasury), total);
        let record = c.ledger.cer().closed[&0];
        prop_assert_eq!(record.incentive_base + record.valorisation_base, total);
        prop_assert_eq!(record.shared_wh, want.shared_wh);
        prop_assert!(c.ledger.cer().zonal.is_empty(), "the period's prices are pruned");
        // Closed twice: refused, nothing paid.
        let root = c.ledger.state_root();
        prop_assert_eq!(close_at(&mut c, &closer, 0, hour_end_s(1) + SETTLE_S + 2), Err(Reject::DuplicatePeriod));
        let again: Vec<u128> = members.iter().map(|m| c.balance(&m.key)).collect();
        prop_assert_eq!(again, members.iter().zip(&before).zip(&paid).map(|((_, b), p)| b + p).collect::<Vec<_>>());
        prop_assert_ne!(root, c.ledger.state_root(), "the rejection is counted");
    }

    /// The integer rule gives every base unit of each hour's benefit to a member, none
    /// twice: allocations add up to the benefit, each within one unit per hour and pot of its
    /// exact pro-rata share, and a member that neither injects nor withdraws gets nothing.
    /// The rule is hourly, so a run of hours split in two periods pays the same.
    #[test]
    fn integer_rule_loses_and_creates_no_unit(
        share in 0u16..=10_000,
        hours in proptest::collection::vec(
            (-50_000i64..400_000, proptest::collection::vec((0u64..1_000_000, 0u64..1_000_000), 4)),
            1..24,
        ),
        split in 0usize..24,
    ) {
        let r = rule(share);
        let mut all = CerTally::new(5);
        let mut first = CerTally::new(5);
        let mut second = CerTally::new(5);
        let split = split % hours.len();
        let mut exact_low = [0u128; 5];
        for (h, (price, meters)) in hours.iter().enumerate() {
            // Member 4 is idle.
            let inj: Vec<u64> = meters.iter().map(|m| m.0).chain([0]).collect();
            let wdr: Vec<u64> = meters.iter().map(|m| m.1).chain([0]).collect();
            let before = all.total_base();
            all.add_hour(&r, *price, &inj, &wdr).unwrap();
            let benefit = all.total_base() - before;
            let producers = benefit * u128::from(share) / 10_000;
            let (si, sw): (u128, u128) = (inj.iter().map(|x| u128::from(*x)).sum(), wdr.iter().map(|x| u128::from(*x)).sum());
            for ((low, i), w) in exact_low.iter_mut().zip(&inj).zip(&wdr) {
                *low += (producers * u128::from(*i)).checked_div(si).unwrap_or(0);
                *low += ((benefit - producers) * u128::from(*w)).checked_div(sw).unwrap_or(0);
            }
            if h < split { first.add_hour(&r, *price, &inj, &wdr).unwrap(); }
            else { second.add_hour(&r, *price, &inj, &wdr).unwrap(); }
        }
        prop_assert_eq!(all.allocated_base.iter().sum::<u128>(), all.total_base());
        prop_assert_eq!(all.allocated_base[4], 0);
        let members = all.allocated_base.iter().zip(&exact_low).zip(first.allocated_base.iter().zip(&second.allocated_base));
        for ((paid, low), (a, b)) in members {
            prop_assert!(paid >= low);
            prop_assert!(*paid <= low + 2 * hours.len() as u128);
            prop_assert_eq!(*paid, a + b);
        }
        prop_assert_eq!(all.total_base(), first.total_base() + second.total_base());
    }
}

/// The issuance of `amount` by `submitter` with the co-signatures of `cosigners` on chain
/// `chain_id`, signed as the chain's next transaction.
fn issuance(
    c: &mut Chain,
    submitter: &SigningKey,
    amount: u128,
    cosigners: &[&SigningKey],
    chain_id: u64,
) -> Vec<u8> {
    let id = c.next_id;
    let reference = "GSE CER payment period 0";
    let cosignatures: Vec<Cosignature> = cosigners
        .iter()
        .map(|k| cosign(chain_id, k, id, amount, reference))
        .collect();
    c.sign(
        submitter,
        TxBody::Issuance(IssuanceBody {
            amount,
            reference: reference.into(),
            cosignatures,
        }),
    )
}

fn issue(
    c: &mut Chain,
    submitter: &SigningKey,
    amount: u128,
    cosigners: &[&SigningKey],
    chain_id: u64,
) -> Result<(), Reject> {
    let tx = issuance(c, submitter, amount, cosigners, chain_id);
    c.block(vec![tx]).results[0]
}

#[test]
fn every_cer_and_issuance_rejection_has_its_reason() {
    let mut seen: BTreeSet<Reject> = BTreeSet::new();
    let mut expect = |got: Result<(), Reject>, want: Reject| {
        assert_eq!(got, Err(want));
        seen.insert(want);
    };
    // Before the market: no CER.
    let mut bare = Chain::new();
    let op = bare.operator.clone();
    expect(
        bare.one(&op, TxBody::CerOpen(cer(24, ENDOWMENT, 5_000))),
        Reject::MarketNotOpen,
    );
    // A market whose intervals do not divide the hour cannot host the hourly rule.
    let mut odd = Chain::new();
    let op = odd.operator.clone();
    assert_eq!(odd.one(&op, TxBody::MarketOpen(market(420))), Ok(()));
    expect(
        odd.one(&op, TxBody::CerOpen(cer(24, ENDOWMENT, 5_000))),
        Reject::InvalidCerParams,
    );

    // Four members, a small endowment: the treasury must be funded by issuance.
    let endowment = 1_000;
    let (mut c, members) = chain(4, endowment);
    let op = c.operator.clone();
    let treasury = c.treasury.clone();
    let m: Vec<SigningKey> = members.iter().map(|m| m.key.clone()).collect();
    expect(
        c.one(
            &op,
            TxBody::ZonalPrices {
                first_hour: 0,
                prices_milli_eur_per_mwh: vec![100_000],
            },
        ),
        Reject::CerNotOpen,
    );
    expect(
        issue(&mut c, &m[0], 5, &[&m[0], &m[1], &m[2]], CHAIN),
        Reject::CerNotOpen,
    );
    expect(
        c.one(&m[0], TxBody::CerOpen(cer(1, 10_000_000_000_000, 5_000))),
        Reject::WrongRole,
    );
    expect(
        c.one(&op, TxBody::CerOpen(cer(0, 10_000_000_000_000, 5_000))),
        Reject::InvalidCerParams,
    );
    expect(
        c.one(&op, TxBody::CerOpen(cer(1, endowment - 1, 5_000))),
        Reject::InvalidCerParams,
    );
    expect(
        c.one(&op, TxBody::CerOpen(cer(1, endowment, 10_001))),
        Reject::InvalidCerParams,
    );
    // Cap: the endowment plus 10 RES.
    let cap = endowment + 10_000_000_000;
    let root_before = c.ledger.state_root();
    assert_eq!(c.one(&op, TxBody::CerOpen(cer(1, cap, 5_000))), Ok(()));
    assert!(c.ledger.commitment().cer_root.is_some());
    assert_ne!(root_before, c.ledger.state_root());
    expect(
        c.one(&op, TxBody::CerOpen(cer(1, cap, 5_000))),
        Reject::CerAlreadyOpen,
    );
    // Once the CER is on-chain the treasury cannot hand it out itself.
    expect(
        c.one(
            &treasury,
            TxBody::CerDistribution {
                period: 0,
                payouts: vec![scg_ledger::tx::Payout {
                    member: pk(&m[0]),
                    amount: 1,
                }],
            },
        ),
        Reject::CerComputedOnChain,
    );
    // Zonal prices: by the operator only, each hour once.
    expect(
        c.one(
            &m[0],
            TxBody::ZonalPrices {
                first_hour: 0,
                prices_milli_eur_per_mwh: vec![100_000],
            },
        ),
        Reject::WrongRole,
    );
    assert_eq!(
        c.one(
            &op,
            TxBody::ZonalPrices {
                first_hour: 1,
                prices_milli_eur_per_mwh: vec![100_000, 90_000],
            },
        ),
        Ok(())
    );
    expect(
        c.one(
            &op,
            TxBody::ZonalPrices {
                first_hour: 2,
                prices_milli_eur_per_mwh: vec![1],
            },
        ),
        Reject::DuplicateZonalPrice,
    );
    expect(
        c.one(
            &op,
            TxBody::ZonalPrices {
                first_hour: u64::MAX,
                prices_milli_eur_per_mwh: vec![1, 2],
            },
        ),
        Reject::IntervalOutOfRange,
    );
    // Hour 0: members 0 and 1 export 2 kWh each, members 2 and 3 import 1 kWh each.
    let readings: Vec<Vec<(u64, u64)>> = vec![
        vec![(500, 0); 4],
        vec![(500, 0); 4],
        vec![(0, 250); 4],
        vec![(0, 250); 4],
    ];
    report(&mut c, &members, &readings);
    // Too early: readings of the period may still arrive.
    expect(
        close_at(&mut c, &m[0], 0, hour_end_s(0) + SETTLE_S),
        Reject::CerPeriodNotEnded,
    );
    expect(
        close_at(&mut c, &m[0], 0, hour_end_s(0) + SETTLE_S + 1),
        Reject::ZonalPriceMissing,
    );
    assert_eq!(
        c.one(
            &op,
            TxBody::ZonalPrices {
                first_hour: 0,
                prices_milli_eur_per_mwh: vec![100_000],
            },
        ),
        Ok(())
    );
    // Shared 2 kWh at TIP 120 + 10 and valorisation 8 EUR/MWh: 0.276 EUR; the treasury holds
    // 1,000 base units.
    let owed = 2_000 * (130_000 + 8_000);
    expect(close_next(&mut c, &treasury, 0), Reject::WrongRole);
    expect(close_next(&mut c, &m[0], 0), Reject::InsufficientFunds);

    // Issuance: more than two thirds of the 4 members (3) must co-sign validly.
    expect(
        issue(&mut c, &m[0], owed, &[&m[0], &m[1]], CHAIN),
        Reject::IssuanceQuorum,
    );
    expect(
        issue(&mut c, &m[0], owed, &[&m[0], &m[1], &m[1]], CHAIN),
        Reject::DuplicateCosigner,
    );
    let outsider = key("not-a-member");
    expect(
        issue(&mut c, &m[0], owed, &[&m[0], &m[1], &outsider], CHAIN),
        Reject::UnknownMember,
    );
    expect(
        issue(&mut c, &m[0], owed, &[&m[0], &m[1], &op], CHAIN),
        Reject::UnknownMember,
    );
    expect(
        issue(&mut c, &m[0], owed, &[&m[0], &m[1], &m[2]], CHAIN + 1),
        Reject::BadCosignature,
    );
    // Signatures for another amount (or id) do not carry over.
    let id = c.next_id;
    let forged: Vec<Cosignature> = [&m[0], &m[1], &m[2]]
        .iter()
        .map(|k| cosign(CHAIN, k, id, 1, "GSE CER payment period 0"))
        .collect();
    let tx = c.sign(
        &m[0],
        TxBody::Issuance(IssuanceBody {
            amount: owed,
            reference: "GSE CER payment period 0".into(),
            cosignatures: forged,
        }),
    );
    expect(c.block(vec![tx]).results[0], Reject::BadCosignature);
    expect(
        issue(&mut c, &m[0], 0, &[&m[0], &m[1], &m[2]], CHAIN),
        Reject::ZeroAmount,
    );
    expect(
        issue(&mut c, &treasury, owed, &[&m[0], &m[1], &m[2]], CHAIN),
        Reject::WrongRole,
    );
    expect(
        issue(&mut c, &m[0], cap, &[&m[0], &m[1], &m[2]], CHAIN),
        Reject::IssuanceCapExceeded,
    );
    // Issuances cannot ride in a settlement batch (no nonce to order them).
    let batch = Batch::sign(
        CHAIN,
        c.next_id + 100,
        vec![(m[0].clone(), TxBody::CerPeriodClose { period: 0 })],
    )
    .unwrap();
    let tx = c.sign(&op, TxBody::SettlementBatch(batch));
    let out = c.block(vec![tx]);
    assert_eq!(out.record_rejects[0].reason, Reject::NotInBatch);

    // A valid issuance: the treasury gets it, the supply grows by it, the cap room shrinks.
    let minted = c.ledger.totals().minted;
    assert_eq!(
        issue(&mut c, &m[3], owed, &[&m[0], &m[2], &m[3]], CHAIN),
        Ok(())
    );
    assert_eq!(c.ledger.totals().minted, minted + owed);
    assert_eq!(c.balance(&treasury), endowment + owed);
    assert_eq!(c.ledger.cer().issued_base, owed);
    assert_eq!(c.ledger.cer().issuances[0].cosigners, 3);
    assert_eq!(c.ledger.cer().issuance_room_base(), cap - endowment - owed);
    // Now the period closes: producers 0 and 1 get half each of the producers' pot, the
    // consumers likewise.
    let before: Vec<u128> = m.iter().map(|k| c.balance(k)).collect();
    assert_eq!(close_next(&mut c, &m[2], 0), Ok(()));
    let paid: Vec<u128> = m
        .iter()
        .zip(&before)
        .map(|(k, b)| c.balance(k) - b)
        .collect();
    assert_eq!(paid, vec![owed / 4; 4]);
    assert_eq!(c.balance(&treasury), endowment);
    expect(close_next(&mut c, &m[2], 0), Reject::DuplicatePeriod);
    expect(
        c.one(
            &op,
            TxBody::ZonalPrices {
                first_hour: 0,
                prices_milli_eur_per_mwh: vec![1],
            },
        ),
        Reject::CerPeriodClosed,
    );

    let missing: Vec<Reject> = Reject::CER
        .iter()
        .copied()
        .filter(|r| !seen.contains(r))
        .collect();
    assert!(
        missing.is_empty(),
        "CER reasons never exercised: {missing:?}"
    );
}
