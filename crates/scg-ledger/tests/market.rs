//! The on-chain market (transaction kinds 14 to 18): orders submitted as transactions and
//! cleared by a gate close give exactly the trades of `scg_market::clear` on the same book;
//! the order of submission does not matter; every rejection has its reason; delivered energy
//! is posted by the seller's supply-point report. Every block is re-applied by a replica
//! (`common::Chain`), with the invariants checked after each.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Chain, key, pk};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use scg_ledger::market::{IntervalTariff, MarketParams, OfferSource, OrderBody, OrderSide};
use scg_ledger::state::TradeStatus;
use scg_ledger::{DeviceType, PublicKey, Reject, TxBody};
use scg_market::{ClearingConfig, GridFee, Mechanism, Order, Price, TradeKind};
use std::collections::BTreeSet;

/// Interval 0 starts (and its gate closes) here; blocks before it are before every gate.
const EPOCH_S: u64 = 10_000_000;
const INTERVAL_S: u64 = 900;
/// Every member gets this much RESCoin (base units): 100 RES.
const FUNDS: u128 = 100_000_000_000;
/// PV capacity of every member, W (2,500 Wh per 15-minute interval).
const PV_W: u64 = 10_000;

fn params(mechanism: Mechanism, fee: GridFee) -> MarketParams {
    MarketParams {
        epoch_s: EPOCH_S,
        interval_s: INTERVAL_S,
        mechanism,
        fee,
        max_orders_per_member: 4,
        settle_window_s: 3_600,
    }
}

/// A member: its key, its PV meter and its supply-point meter.
struct Member {
    key: SigningKey,
    supply: SigningKey,
}

/// A chain with an open market and `n` funded members, each with a PV meter of [`PV_W`] and a
/// supply-point meter, all registered in a few blocks.
fn market_chain(n: usize, p: MarketParams) -> (Chain, Vec<Member>) {
    let mut c = Chain::new();
    let op = c.operator.clone();
    let treasury = c.treasury.clone();
    let open = c.sign(&op, TxBody::MarketOpen(p));
    assert_eq!(c.block(vec![open]).results, vec![Ok(())]);
    let members: Vec<Member> = (0..n)
        .map(|i| Member {
            key: key(&format!("member-{i}")),
            supply: key(&format!("supply-{i}")),
        })
        .collect();
    let pvs: Vec<SigningKey> = (0..n).map(|i| key(&format!("pv-{i}"))).collect();
    let regs: Vec<TxBody> = members
        .iter()
        .map(|m| TxBody::RegisterMember { member: pk(&m.key) })
        .collect();
    let txs = c.sign_all(&op, regs);
    assert!(c.block(txs).results.iter().all(Result::is_ok));
    let mut meters = Vec::new();
    let mut funding = Vec::new();
    for (m, pv) in members.iter().zip(&pvs) {
        for (meter, device) in [(pv, DeviceType::Pv), (&m.supply, DeviceType::SupplyPoint)] {
            meters.push(TxBody::RegisterMeter {
                meter: pk(meter),
                member: pk(&m.key),
                device,
            });
        }
        funding.push(TxBody::Transfer {
            to: pk(&m.key),
            amount: FUNDS,
        });
    }
    let mut txs = c.sign_all(&op, meters);
    txs.extend(c.sign_all(&treasury, funding));
    assert!(c.block(txs).results.iter().all(Result::is_ok));
    let caps = pvs
        .iter()
        .map(|pv| TxBody::MeterCapacity {
            meter: pk(pv),
            capacity_w: PV_W,
        })
        .collect();
    let txs = c.sign_all(&op, caps);
    assert!(c.block(txs).results.iter().all(Result::is_ok));
    (c, members)
}

fn bid(interval: u64, energy_wh: i64, limit: i64) -> TxBody {
    TxBody::Order(OrderBody {
        interval,
        side: OrderSide::Bid,
        energy_wh,
        limit_milli_eur_per_mwh: limit,
        source: OfferSource::Unspecified,
    })
}

fn offer(interval: u64, energy_wh: i64, limit: i64) -> TxBody {
    TxBody::Order(OrderBody {
        interval,
        side: OrderSide::Offer,
        energy_wh,
        limit_milli_eur_per_mwh: limit,
        source: OfferSource::Unspecified,
    })
}

/// A trade as compared: buyer, seller, Wh, price and fee in base units per kWh.
type Row = (PublicKey, PublicKey, u64, u128, u128);

/// The ledger's trades of `interval`, in creation (= clearing) order.
fn ledger_rows(c: &Chain, interval: u64) -> Vec<Row> {
    let mut trades: Vec<_> = c
        .ledger
        .trades()
        .filter(|t| t.interval == interval)
        .collect();
    trades.sort_by_key(|t| t.index);
    trades
        .iter()
        .map(|t| {
            (
                t.buyer,
                t.seller,
                t.energy_wh,
                t.price_base_per_kwh,
                t.fee_base_per_kwh,
            )
        })
        .collect()
}

/// `scg_market::clear` called directly on `book` (member key, order), in the canonical order
/// (member key, then submission order = nonce), with names of its own.
fn market_rows(
    book: &[(PublicKey, u64, TxBody)],
    p: &MarketParams,
    tariff: Option<IntervalTariff>,
) -> Vec<Row> {
    let mut sorted: Vec<&(PublicKey, u64, TxBody)> = book.iter().collect();
    sorted.sort_by_key(|(m, n, _)| (*m, *n));
    let names: Vec<PublicKey> = sorted
        .iter()
        .map(|(m, _, _)| *m)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let name = |m: &PublicKey| format!("m{}", names.iter().position(|x| x == m).unwrap());
    let orders: Vec<Order> = sorted
        .iter()
        .enumerate()
        .map(|(i, (m, _, body))| {
            let TxBody::Order(o) = body else {
                unreachable!()
            };
            let id = format!("o{i}");
            let interval = u32::try_from(o.interval).unwrap();
            let price = Price(o.limit_milli_eur_per_mwh);
            match o.side {
                OrderSide::Bid => Order::bid(&id, &name(m), interval, o.energy_wh, price),
                OrderSide::Offer => Order::offer(&id, &name(m), interval, o.energy_wh, price, None),
            }
        })
        .collect();
    let config = ClearingConfig {
        mechanism: p.mechanism,
        fee: p.fee,
        grid: tariff.map(|t| t.counterpart()).unwrap_or_default(),
    };
    let key_of = |n: &str| names[n[1..].parse::<usize>().unwrap()];
    scg_market::clear(&orders, &config)
        .unwrap()
        .trades()
        .filter(|t| t.kind() == TradeKind::P2p)
        .map(|t| {
            (
                key_of(t.buyer()),
                key_of(t.seller()),
                t.energy_wh().0 as u64,
                t.price().0 as u128 * 1000,
                t.fee().0 as u128 * 1000,
            )
        })
        .collect()
}

/// Submit `book` (signer index, order) in one block before the gate; returns the accepted
/// orders as (member, nonce, body).
fn submit(
    c: &mut Chain,
    members: &[Member],
    book: &[(usize, TxBody)],
    at_s: u64,
) -> Vec<(PublicKey, u64, TxBody)> {
    let mut nonces: Vec<u64> = members.iter().map(|m| c.nonce(&m.key)).collect();
    let mut txs = Vec::new();
    let mut meta = Vec::new();
    for (i, body) in book {
        let n = nonces[*i];
        nonces[*i] += 1;
        txs.push(c.sign_with(&members[*i].key, n, body.clone()));
        meta.push((pk(&members[*i].key), n, body.clone()));
    }
    let out = c.block_at(at_s, txs);
    // A rejected order does not consume its nonce: the member's later orders in the same
    // block then fail BadNonce. Keep only the accepted ones.
    meta.into_iter()
        .zip(out.results)
        .filter(|(_, r)| r.is_ok())
        .map(|(m, _)| m)
        .collect()
}

fn gate_close(c: &mut Chain, by: &SigningKey, interval: u64, at_s: u64) -> Result<(), Reject> {
    let tx = c.sign(by, TxBody::GateClose { interval });
    c.block_at(at_s, vec![tx]).results[0]
}

fn mechanism_strategy() -> impl Strategy<Value = Mechanism> {
    prop_oneof![
        Just(Mechanism::PayAsClear),
        Just(Mechanism::PayAsBid),
        Just(Mechanism::PayAsOffer)
    ]
}

fn fee_strategy() -> impl Strategy<Value = GridFee> {
    prop_oneof![
        Just(GridFee::None),
        (0i64..30_000).prop_map(|c| GridFee::Constant(Price(c))),
        (0u32..2_000).prop_map(|bp| GridFee::Percent { basis_points: bp }),
    ]
}

/// An order of a random book: member index, bid?, Wh, limit milli-EUR/MWh.
fn order_strategy(members: usize) -> impl Strategy<Value = (usize, bool, i64, i64)> {
    (
        0..members,
        any::<bool>(),
        1i64..1_500,
        prop_oneof![(50_000i64..250_000), Just(100_000i64), Just(150_000i64)],
    )
}

/// An order no check refuses, whatever else is in the book: even members only offer, odd
/// members only bid, and ten orders of at most 250 Wh stay within a member's 2,500 Wh.
fn valid_order_strategy() -> impl Strategy<Value = (usize, bool, i64, i64)> {
    (0usize..4, 1i64..=250, 50_000i64..250_000)
        .prop_map(|(i, wh, limit)| (i, i % 2 == 1, wh, limit))
}

fn body_of(bid_side: bool, wh: i64, limit: i64) -> TxBody {
    if bid_side {
        bid(0, wh, limit)
    } else {
        offer(0, wh, limit)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// (a) The trades a gate close records are `scg_market::clear`'s on the same orders:
    /// members, Wh, prices and fees; and the buyers' reservations are their payments plus fees.
    #[test]
    fn gate_close_clears_like_scg_market(
        mechanism in mechanism_strategy(),
        fee in fee_strategy(),
        book in proptest::collection::vec(order_strategy(5), 1..14),
        tariff in proptest::option::of((120_000i64..260_000, 20_000i64..120_000, any::<bool>())),
    ) {
        let p = params(mechanism, fee);
        let (mut c, members) = market_chain(5, p);
        let tariff = tariff.map(|(r, f, peak)| IntervalTariff {
            retail_milli_eur_per_mwh: r,
            feed_in_milli_eur_per_mwh: f,
            peak,
        });
        if let Some(t) = tariff {
            let op = c.operator.clone();
            prop_assert_eq!(
                c.one(&op, TxBody::IntervalTariff { interval: 0, tariff: t }),
                Ok(())
            );
        }
        let book: Vec<(usize, TxBody)> = book
            .into_iter()
            .map(|(i, b, wh, limit)| (i, body_of(b, wh, limit)))
            .collect();
        let accepted = submit(&mut c, &members, &book, EPOCH_S - 1);
        let reserved_before: u128 = c.ledger.totals().reserved;
        prop_assert_eq!(reserved_before, 0);
        let closer = members[0].key.clone();
        prop_assert_eq!(gate_close(&mut c, &closer, 0, EPOCH_S), Ok(()));
        let expect = market_rows(&accepted, &p, tariff);
        prop_assert_eq!(ledger_rows(&c, 0), expect.clone());
        let owed: u128 = expect
            .iter()
            .map(|(_, _, wh, price, fee)| u128::from(*wh) * price / 1000 + u128::from(*wh) * fee / 1000)
            .sum();
        prop_assert_eq!(c.ledger.totals().reserved, owed);
        let record = c.ledger.market().cleared[&0];
        prop_assert_eq!(record.orders as usize, accepted.len());
        prop_assert_eq!(record.trades as usize, expect.len());
        prop_assert!(c.ledger.market().orders.is_empty());
    }

    /// (b) The same orders in any order inside a block, or spread over blocks, give the same
    /// trades and the same state — every part of the state root but the history digest, which
    /// chains the transactions in the order they were applied.
    #[test]
    fn submission_order_does_not_matter(
        book in proptest::collection::vec(valid_order_strategy(), 2..10),
        seed in any::<u64>(),
        split in 0usize..10,
    ) {
        let p = MarketParams {
            max_orders_per_member: 16,
            ..params(Mechanism::PayAsClear, GridFee::Constant(Price(5_000)))
        };
        let book: Vec<(usize, TxBody)> = book
            .into_iter()
            .map(|(i, b, wh, limit)| (i, body_of(b, wh, limit)))
            .collect();
        let (mut a, ma) = market_chain(4, p);
        // All in one block, then an empty one: both chains have the same heights (the gate
        // record and the trades keep the height they were made at).
        submit(&mut a, &ma, &book, EPOCH_S - 20);
        a.block_at(EPOCH_S - 10, vec![]);
        // Permute across members (one member's orders keep their relative order: its
        // nonces fix it, and its n-th order is the same in both runs).
        let mut permuted = book.clone();
        let mut s = seed;
        for i in (1..permuted.len()).rev() {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let j = (s >> 33) as usize % (i + 1);
            permuted.swap(i, j);
        }
        let mut seen = vec![Vec::new(); 4];
        for (i, body) in &book {
            seen[*i].push(body.clone());
        }
        for (i, body) in permuted.iter_mut() {
            *body = seen[*i].remove(0);
        }
        let (mut b, mb) = market_chain(4, p);
        let cut = split % (permuted.len() + 1);
        submit(&mut b, &mb, &permuted[..cut], EPOCH_S - 20);
        submit(&mut b, &mb, &permuted[cut..], EPOCH_S - 10);
        let (ka, kb) = (ma[3].key.clone(), mb[3].key.clone());
        prop_assert_eq!(gate_close(&mut a, &ka, 0, EPOCH_S + 5), Ok(()));
        prop_assert_eq!(gate_close(&mut b, &kb, 0, EPOCH_S + 5), Ok(()));
        prop_assert_eq!(ledger_rows(&a, 0), ledger_rows(&b, 0));
        let (ca, cb) = (a.ledger.commitment(), b.ledger.commitment());
        prop_assert_eq!(ca.market_root, cb.market_root);
        prop_assert_eq!(ca.trades_root, cb.trades_root);
        prop_assert_eq!(ca.accounts_root, cb.accounts_root);
        prop_assert_eq!(ca.totals.reserved, cb.totals.reserved);
        prop_assert_eq!(ca.totals.minted, cb.totals.minted);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The community market of `scg simulate` (`CommunityMarket::clear_interval`: a surplus
    /// offers at feed-in, a deficit bids at retail, grid at peak or not), its orders placed as
    /// transactions by truthful agents, gives the same P2P trades on the chain. The simulator
    /// hands its prosumers over in scenario order; here that order is the members' key order,
    /// the chain's canonical order (time priority inside a price level follows it).
    #[test]
    fn on_chain_market_matches_the_simulation_market(
        net_wh in proptest::collection::vec(-2_500i64..=2_500, 5),
        mechanism in mechanism_strategy(),
        fee in fee_strategy(),
        retail in 150_000i64..300_000,
        feed_in in 10_000i64..120_000,
        peak in any::<bool>(),
    ) {
        let p = params(mechanism, fee);
        let (mut c, members) = market_chain(5, p);
        let tariff = IntervalTariff {
            retail_milli_eur_per_mwh: retail,
            feed_in_milli_eur_per_mwh: feed_in,
            peak,
        };
        let op = c.operator.clone();
        prop_assert_eq!(c.one(&op, TxBody::IntervalTariff { interval: 0, tariff }), Ok(()));
        let book: Vec<(usize, TxBody)> = net_wh
            .iter()
            .enumerate()
            .filter(|(_, wh)| **wh != 0)
            .map(|(i, &wh)| {
                let body = if wh > 0 { offer(0, wh, feed_in) } else { bid(0, -wh, retail) };
                (i, body)
            })
            .collect();
        let accepted = submit(&mut c, &members, &book, EPOCH_S - 1);
        prop_assert_eq!(accepted.len(), book.len());
        let closer = members[0].key.clone();
        prop_assert_eq!(gate_close(&mut c, &closer, 0, EPOCH_S), Ok(()));
        // The simulation's call, prosumers in key order.
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&i| pk(&members[i].key));
        let ids: Vec<String> = order.iter().map(|&i| format!("p{i}")).collect();
        let net_kwh: Vec<f64> = order.iter().map(|&i| net_wh[i] as f64 / 1000.0).collect();
        let market = scg_market::community::CommunityMarket { mechanism, fee };
        let sim = market
            .clear_interval(
                0,
                &ids,
                &net_kwh,
                scg_market::community::GridTariff {
                    retail: Price(retail),
                    feed_in: Price(feed_in),
                },
                peak,
            )
            .unwrap();
        let key_of = |name: &str| pk(&members[name[1..].parse::<usize>().unwrap()].key);
        let expect: Vec<Row> = sim
            .trades
            .iter()
            .filter(|t| t.kind() == TradeKind::P2p)
            .map(|t| {
                (
                    key_of(t.buyer()),
                    key_of(t.seller()),
                    t.energy_wh().0 as u64,
                    t.price().0 as u128 * 1000,
                    t.fee().0 as u128 * 1000,
                )
            })
            .collect();
        prop_assert_eq!(ledger_rows(&c, 0), expect);
    }
}

/// A small book that trades: member 0 offers, members 1 and 2 bid.
fn small_book(c: &mut Chain, members: &[Member]) -> Vec<(PublicKey, u64, TxBody)> {
    let book = vec![
        (0, offer(0, 2_000, 60_000)),
        (1, bid(0, 1_200, 200_000)),
        (2, bid(0, 1_000, 180_000)),
    ];
    submit(c, members, &book, EPOCH_S - 100)
}

#[test]
fn reversed_members_give_the_same_trades_and_market_root() {
    let p = params(Mechanism::PayAsClear, GridFee::Constant(Price(10_000)));
    let (mut a, ma) = market_chain(3, p);
    let (mut b, mb) = market_chain(3, p);
    small_book(&mut a, &ma);
    // The same orders, members in reverse order: different history, same market.
    let rev = vec![
        (2, bid(0, 1_000, 180_000)),
        (1, bid(0, 1_200, 200_000)),
        (0, offer(0, 2_000, 60_000)),
    ];
    submit(&mut b, &mb, &rev, EPOCH_S - 100);
    let (ka, kb) = (ma[0].key.clone(), mb[0].key.clone());
    gate_close(&mut a, &ka, 0, EPOCH_S).unwrap();
    gate_close(&mut b, &kb, 0, EPOCH_S).unwrap();
    assert_eq!(ledger_rows(&a, 0), ledger_rows(&b, 0));
    assert_eq!(
        a.ledger.commitment().market_root,
        b.ledger.commitment().market_root
    );
    assert_eq!(
        a.ledger.commitment().trades_root,
        b.ledger.commitment().trades_root
    );
}

#[test]
fn a_chain_without_a_market_has_no_market_root() {
    let c = Chain::new();
    assert_eq!(c.ledger.commitment().market_root, None);
    let (c, _) = market_chain(1, params(Mechanism::PayAsClear, GridFee::None));
    assert!(c.ledger.commitment().market_root.is_some());
}

/// Post-delivery: the seller's supply-point report posts what it exported; the undelivered
/// rest returns to the buyers; the grid gets the fee on the delivered part.
#[test]
fn supply_point_report_posts_delivered_energy_and_refunds_the_rest() {
    let p = params(Mechanism::PayAsClear, GridFee::Constant(Price(10_000)));
    let (mut c, members) = market_chain(3, p);
    small_book(&mut c, &members);
    let closer = members[1].key.clone();
    gate_close(&mut c, &closer, 0, EPOCH_S).unwrap();
    let rows = ledger_rows(&c, 0);
    // Offer 2,000 Wh at 60 EUR/MWh; bids 1,200 (net 190) and 1,000 (net 170): all 2,000 Wh
    // trade at the midpoint of 60 and 170 = 115 EUR/MWh.
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].2 + rows[1].2, 2_000);
    assert!(rows.iter().all(|r| r.3 == 115_000_000 && r.4 == 10_000_000));
    let seller_before = c.balance(&members[0].key);
    let grid_before = c.ledger.account(&pk(&c.grid)).unwrap().balance;
    let buyers_before: Vec<u128> = [1, 2].iter().map(|&i| c.balance(&members[i].key)).collect();
    // The seller exported only 1,500 Wh in interval 0.
    let supply = members[0].supply.clone();
    let r = c.sign(
        &supply,
        TxBody::MeterReport {
            interval: 0,
            produced_wh: 1_500,
            consumed_wh: 0,
        },
    );
    let out = c.block_at(EPOCH_S + INTERVAL_S + 60, vec![r]);
    assert_eq!(out.results, vec![Ok(())]);
    let trades: Vec<_> = {
        let mut t: Vec<_> = c.ledger.trades().filter(|t| t.interval == 0).collect();
        t.sort_by_key(|t| t.index);
        t.into_iter().cloned().collect()
    };
    assert!(trades.iter().all(|t| t.status == TradeStatus::Posted));
    // Clearing order: member 1's bid first (higher limit), so it is served in full.
    let delivered: Vec<u64> = trades.iter().map(|t| t.delivered_wh).collect();
    assert_eq!(delivered.iter().sum::<u64>(), 1_500);
    assert_eq!(delivered[0], trades[0].energy_wh.min(1_500));
    let paid: u128 = trades.iter().map(|t| t.paid_seller).sum();
    assert_eq!(paid, 1_500 * 115_000);
    assert_eq!(c.balance(&members[0].key), seller_before + paid);
    let fees: u128 = trades.iter().map(|t| t.paid_fee).sum();
    assert_eq!(fees, 1_500 * 10_000);
    assert_eq!(
        c.ledger.account(&pk(&c.grid)).unwrap().balance,
        grid_before + fees
    );
    // Each buyer got back what it reserved minus what it paid.
    for (k, &i) in [1usize, 2].iter().enumerate() {
        let t = trades
            .iter()
            .find(|t| t.buyer == pk(&members[i].key))
            .unwrap();
        assert_eq!(
            c.balance(&members[i].key),
            buyers_before[k] + t.reserved - t.paid_seller - t.paid_fee
        );
    }
    assert_eq!(c.ledger.totals().reserved, 0);
}

#[test]
fn an_unreported_trade_expires_after_the_settle_window() {
    let p = params(Mechanism::PayAsClear, GridFee::None);
    let (mut c, members) = market_chain(3, p);
    small_book(&mut c, &members);
    let before = c.balance(&members[1].key);
    let closer = members[1].key.clone();
    gate_close(&mut c, &closer, 0, EPOCH_S).unwrap();
    assert!(c.balance(&members[1].key) < before);
    let out = c.block_at(EPOCH_S + INTERVAL_S + 3_600, vec![]);
    assert_eq!(out.expired.len(), 2);
    assert_eq!(c.balance(&members[1].key), before);
    assert_eq!(c.ledger.totals().reserved, 0);
}

/// Bids whose buyer no longer holds their most cost at the gate are left out of the clearing
/// (counted in the gate record), the rest clears.
#[test]
fn unfunded_bids_are_left_out_at_the_gate() {
    let p = params(Mechanism::PayAsClear, GridFee::None);
    let (mut c, members) = market_chain(3, p);
    small_book(&mut c, &members);
    // Member 2 gives away all but 1 base unit before the gate.
    let m2 = members[2].key.clone();
    let all = c.balance(&m2) - 1;
    let to = pk(&members[0].key);
    let t = c.sign(&m2, TxBody::Transfer { to, amount: all });
    assert_eq!(c.block_at(EPOCH_S - 50, vec![t]).results, vec![Ok(())]);
    let closer = members[0].key.clone();
    gate_close(&mut c, &closer, 0, EPOCH_S).unwrap();
    let record = c.ledger.market().cleared[&0];
    assert_eq!(
        (record.orders, record.unfunded_bids, record.trades),
        (2, 1, 1)
    );
    let rows = ledger_rows(&c, 0);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, pk(&members[1].key));
}

/// (c) Every market rejection, with its reason; a rejected transaction changes nothing but
/// the rejection counter.
#[test]
fn every_market_rejection_reason() {
    let mut seen: BTreeSet<Reject> = BTreeSet::new();
    let mut expect = |got: Result<(), Reject>, want: Reject| {
        assert_eq!(got, Err(want), "expected {want}");
        seen.insert(want);
    };
    let p = params(Mechanism::PayAsClear, GridFee::None);

    // Before the market opens.
    let mut c = Chain::new();
    let alice = c.add_member("alice");
    expect(c.one(&alice, bid(0, 10, 1)), Reject::MarketNotOpen);
    let op = c.operator.clone();
    expect(
        c.one(&op, TxBody::MarketOpen(MarketParams { interval_s: 0, ..p })),
        Reject::InvalidMarketParams,
    );
    expect(
        c.one(
            &op,
            TxBody::MarketOpen(MarketParams {
                max_orders_per_member: 65,
                ..p
            }),
        ),
        Reject::InvalidMarketParams,
    );
    expect(c.one(&alice, TxBody::MarketOpen(p)), Reject::WrongRole);
    c.one(&op, TxBody::MarketOpen(p)).unwrap();
    expect(c.one(&op, TxBody::MarketOpen(p)), Reject::MarketAlreadyOpen);

    // Orders.
    let (mut c, members) = market_chain(3, p);
    let (m0, m1) = (members[0].key.clone(), members[1].key.clone());
    let op = c.operator.clone();
    let at = |c: &mut Chain, k: &SigningKey, body: TxBody, ts: u64| {
        let tx = c.sign(k, body);
        let root = c.ledger.commitment();
        let r = c.block_at(ts, vec![tx]).results[0];
        if r.is_err() {
            let after = c.ledger.commitment();
            assert_eq!(
                after.market_root, root.market_root,
                "a rejection changed the market"
            );
            assert_eq!(after.accounts_root, root.accounts_root);
            assert_eq!(after.history, root.history);
        }
        r
    };
    let early = EPOCH_S - 500;
    expect(at(&mut c, &m0, bid(0, 0, 100), early), Reject::ZeroAmount);
    expect(
        at(&mut c, &m0, bid(0, -5, 100), early),
        Reject::NegativeAmount,
    );
    expect(
        at(&mut c, &m0, offer(0, 10, -1), early),
        Reject::NegativePrice,
    );
    let mut green_bid = bid(0, 10, 100);
    if let TxBody::Order(o) = &mut green_bid {
        o.source = OfferSource::Pv;
    }
    expect(at(&mut c, &m0, green_bid, early), Reject::InvalidOrder);
    expect(
        at(&mut c, &m0, bid(u64::from(u32::MAX) + 1, 10, 100), early),
        Reject::IntervalOutOfRange,
    );
    // A signer that is not a member (an unregistered key has no account at all).
    expect(at(&mut c, &op, bid(0, 10, 100), early), Reject::WrongRole);
    let stranger = key("stranger");
    expect(
        at(&mut c, &stranger, bid(0, 10, 100), early),
        Reject::UnknownSigner,
    );
    // Capacity: 10 kW for 900 s = 2,500 Wh.
    expect(
        at(&mut c, &m0, offer(0, 2_501, 100), early),
        Reject::OfferExceedsCapacity,
    );
    at(&mut c, &m0, offer(0, 2_000, 100), early).unwrap();
    expect(
        at(&mut c, &m0, offer(0, 501, 100), early),
        Reject::OfferExceedsCapacity,
    );
    let mut wind = offer(0, 100, 100);
    if let TxBody::Order(o) = &mut wind {
        o.source = OfferSource::Wind;
    }
    expect(at(&mut c, &m0, wind, early), Reject::OfferExceedsCapacity);
    // A bid crossing its own offer.
    expect(
        at(&mut c, &m0, bid(0, 10, 100), early),
        Reject::SelfTradeOrder,
    );
    // Funding: a bid whose most cost (1,000 kWh at 200 EUR/MWh = 200 RES) exceeds the
    // member's 100 RES.
    expect(
        at(&mut c, &m1, bid(0, 1_000_000, 200_000), early),
        Reject::InsufficientFunds,
    );
    // The order bound (4 per member per interval).
    for _ in 0..3 {
        at(&mut c, &m0, bid(0, 10, 50), early).unwrap();
    }
    expect(
        at(&mut c, &m0, bid(0, 10, 50), early),
        Reject::TooManyOrders,
    );
    // Tariffs: operator only, once, before the gate.
    let tariff = TxBody::IntervalTariff {
        interval: 0,
        tariff: IntervalTariff {
            retail_milli_eur_per_mwh: 250_000,
            feed_in_milli_eur_per_mwh: 50_000,
            peak: false,
        },
    };
    expect(at(&mut c, &m0, tariff.clone(), early), Reject::WrongRole);
    at(&mut c, &op, tariff.clone(), early).unwrap();
    expect(
        at(&mut c, &op, tariff.clone(), early),
        Reject::DuplicateTariff,
    );
    // Capacity registrations: operator only, of a meter, non-zero.
    let supply = pk(&members[0].supply);
    expect(
        at(
            &mut c,
            &op,
            TxBody::MeterCapacity {
                meter: supply,
                capacity_w: 0,
            },
            early,
        ),
        Reject::ZeroAmount,
    );
    expect(
        at(
            &mut c,
            &op,
            TxBody::MeterCapacity {
                meter: pk(&m1),
                capacity_w: 5,
            },
            early,
        ),
        Reject::UnknownAccount,
    );
    // The gate: not before its time; orders and tariffs not after it.
    expect(
        at(&mut c, &m1, TxBody::GateClose { interval: 0 }, EPOCH_S - 1),
        Reject::GateNotReached,
    );
    expect(
        at(&mut c, &m1, bid(0, 10, 100), EPOCH_S),
        Reject::GateClosed,
    );
    let late_tariff = TxBody::IntervalTariff {
        interval: 1,
        tariff: IntervalTariff {
            retail_milli_eur_per_mwh: 1,
            feed_in_milli_eur_per_mwh: 1,
            peak: false,
        },
    };
    expect(
        at(&mut c, &op, late_tariff, EPOCH_S + INTERVAL_S),
        Reject::GateClosed,
    );
    let meter = members[2].supply.clone();
    expect(
        at(
            &mut c,
            &meter,
            TxBody::GateClose { interval: 0 },
            EPOCH_S + INTERVAL_S,
        ),
        Reject::WrongRole,
    );
    at(
        &mut c,
        &m1,
        TxBody::GateClose { interval: 0 },
        EPOCH_S + INTERVAL_S,
    )
    .unwrap();
    expect(
        at(
            &mut c,
            &op,
            TxBody::GateClose { interval: 0 },
            EPOCH_S + INTERVAL_S,
        ),
        Reject::IntervalAlreadyCleared,
    );

    // Market kinds inside a settlement batch.
    let batch = scg_ledger::Batch::sign(
        common::CHAIN,
        1_000_000,
        vec![(m1.clone(), bid(5, 10, 100))],
    )
    .unwrap();
    let op_tx = c.sign(&op, TxBody::SettlementBatch(batch));
    let out = c.block_at(EPOCH_S + INTERVAL_S, vec![op_tx]);
    assert_eq!(out.results, vec![Ok(())]);
    assert_eq!(out.record_rejects.len(), 1);
    expect(Err(out.record_rejects[0].reason), Reject::NotInBatch);

    // Every market reason is exercised, except ClearingFailed: orders are checked on entry
    // exactly as `scg_market::validate_orders` checks them, and the parameters as
    // `scg_market::clear` checks its configuration, so no book can reach it (a guard against a
    // future divergence, never a crash).
    let missing: Vec<Reject> = Reject::MARKET
        .iter()
        .copied()
        .filter(|r| !seen.contains(r) && *r != Reject::ClearingFailed)
        .collect();
    assert!(
        missing.is_empty(),
        "market reasons never exercised: {missing:?}"
    );
}

fn reading(interval: u64, produced_wh: u64) -> TxBody {
    TxBody::MeterReport {
        interval,
        produced_wh,
        consumed_wh: 0,
    }
}

/// The end of `interval` (its delivery) in block time.
fn end_of(interval: u64) -> u64 {
    EPOCH_S + (interval + 1) * INTERVAL_S
}

/// Sign `body` with `by` but name `as_signer` as the signer: another member's key on a
/// transaction that claims to be someone else's.
fn forged(c: &mut Chain, by: &SigningKey, as_signer: &SigningKey, body: TxBody) -> Vec<u8> {
    let nonce = c.nonce(as_signer);
    let bytes = c.sign_with(by, nonce, body);
    let mut tx = scg_ledger::Tx::decode(&bytes).unwrap();
    tx.signer = pk(as_signer);
    tx.encode()
}

/// Apply `body` signed by `k` in a block at `ts`; a rejection must change nothing but the
/// rejection counter (market, accounts, certificates, supply and history unchanged).
fn try_at(c: &mut Chain, k: &SigningKey, body: TxBody, ts: u64) -> Result<(), Reject> {
    let tx = c.sign(k, body);
    let before = c.ledger.commitment();
    let totals = c.ledger.totals();
    let r = c.block_at(ts, vec![tx]).results[0];
    if r.is_err() {
        let after = c.ledger.commitment();
        assert_eq!(after.market_root, before.market_root);
        assert_eq!(after.accounts_root, before.accounts_root);
        assert_eq!(after.certificates_root, before.certificates_root);
        assert_eq!(after.history, before.history);
        assert_eq!(c.ledger.totals().minted, totals.minted);
    }
    r
}

/// Minting only from real energy: on a market chain a reading mints RESCoin and a certificate
/// only from a meter with a registered capacity, at most capacity × interval, for an interval
/// that has ended at the block time and not more than the settle window before it. Every
/// refusal has its reason and changes nothing.
#[test]
fn market_readings_mint_only_from_real_recent_energy() {
    let p = params(Mechanism::PayAsClear, GridFee::None);
    let (mut c, members) = market_chain(2, p);
    let pv0 = key("pv-0");
    let mint = |c: &Chain| c.ledger.totals().minted;
    let minted_before = mint(&c);
    // 10 kW for 900 s = 2,500 Wh: one Wh more is refused, the capacity itself mints.
    assert_eq!(
        try_at(&mut c, &pv0, reading(0, 2_501), end_of(0) + 60),
        Err(Reject::ReadingExceedsCapacity)
    );
    assert_eq!(
        try_at(&mut c, &pv0, reading(0, 2_500), end_of(0) + 60),
        Ok(())
    );
    assert_eq!(mint(&c) - minted_before, 2_500 * common::MINT_RATE);
    // An interval that has not ended at the block time: refused, even one second early; at
    // its end exactly, accepted.
    assert_eq!(
        try_at(&mut c, &pv0, reading(1, 100), end_of(1) - 1),
        Err(Reject::ReadingInFuture)
    );
    assert_eq!(
        try_at(&mut c, &pv0, reading(5, 100), end_of(1)),
        Err(Reject::ReadingInFuture)
    );
    assert_eq!(try_at(&mut c, &pv0, reading(1, 100), end_of(1)), Ok(()));
    // Long closed: ended more than the settle window (3,600 s) before the block time.
    let late = end_of(2) + p.settle_window_s + 1;
    assert_eq!(
        try_at(&mut c, &pv0, reading(2, 100), late),
        Err(Reject::ReadingLongClosed)
    );
    assert_eq!(try_at(&mut c, &pv0, reading(3, 100), late), Ok(()));
    // An interval the market cannot name.
    assert_eq!(
        try_at(&mut c, &pv0, reading(u64::from(u32::MAX) + 1, 1), late),
        Err(Reject::IntervalOutOfRange)
    );
    // A renewable meter without a registered capacity mints nothing; reporting zero is
    // still a reading (no mint, so no capacity needed).
    let owner = members[1].key.clone();
    let wind = c.add_meter(&owner, "wind-1", DeviceType::Wind);
    let ts = c.timestamp_s;
    // The last interval that has ended at `ts`.
    let k = (ts - EPOCH_S) / INTERVAL_S - 1;
    assert_eq!(
        try_at(&mut c, &wind, reading(k, 1), ts),
        Err(Reject::NoMeterCapacity)
    );
    assert_eq!(try_at(&mut c, &wind, reading(k, 0), ts), Ok(()));
    // Once registered (2 kW = 500 Wh per interval), it mints within that bound.
    let op = c.operator.clone();
    let cap = TxBody::MeterCapacity {
        meter: pk(&wind),
        capacity_w: 2_000,
    };
    assert_eq!(try_at(&mut c, &op, cap, ts), Ok(()));
    assert_eq!(
        try_at(&mut c, &wind, reading(k + 1, 501), end_of(k + 1)),
        Err(Reject::ReadingExceedsCapacity)
    );
    let before = c.balance(&owner);
    assert_eq!(
        try_at(&mut c, &wind, reading(k + 1, 500), end_of(k + 1)),
        Ok(())
    );
    assert_eq!(c.balance(&owner) - before, 500 * common::MINT_RATE);
    // A supply point (no capacity) reports imports and exports without a bound, but on the
    // same clock.
    let supply = members[0].supply.clone();
    assert_eq!(
        try_at(
            &mut c,
            &supply,
            reading(k + 2, 1_000_000),
            end_of(k + 2) - 1
        ),
        Err(Reject::ReadingInFuture)
    );
    assert_eq!(
        try_at(&mut c, &supply, reading(k + 2, 1_000_000), end_of(k + 2)),
        Ok(())
    );
    // Certified Wh equal the renewable Wh metered: only accepted readings counted.
    let t = c.ledger.totals();
    assert_eq!(t.renewable_wh_metered, 2_500 + 100 + 100 + 500);
    assert_eq!(t.certified_wh, t.renewable_wh_metered);
}

/// A chain that never opens the market keeps the old rules: any interval number, any amount,
/// any block time (the built-in year's goldens depend on it).
#[test]
fn readings_without_a_market_are_checked_as_before() {
    let mut c = Chain::new();
    let m = c.add_member("m");
    let pv = c.add_meter(&m, "pv", DeviceType::Pv);
    let before = c.ledger.totals().minted;
    assert_eq!(c.one(&pv, reading(1_000_000, 9_000_000)), Ok(()));
    assert_eq!(
        c.ledger.totals().minted - before,
        9_000_000 * common::MINT_RATE
    );
}

/// Every reason only a market chain's readings give is exercised.
#[test]
fn every_market_reading_reason_is_exercised() {
    let p = params(Mechanism::PayAsClear, GridFee::None);
    let (mut c, _) = market_chain(1, p);
    let pv0 = key("pv-0");
    let mut seen = BTreeSet::new();
    for (body, ts) in [
        (reading(0, 2_501), end_of(0)),
        (reading(1, 1), end_of(0)),
        (reading(0, 1), end_of(0) + p.settle_window_s + 1),
    ] {
        seen.insert(try_at(&mut c, &pv0, body, ts).unwrap_err());
    }
    let m = c.add_member("late");
    let wind = c.add_meter(&m, "wind-late", DeviceType::Wind);
    let ts = c.timestamp_s;
    let k = (ts - EPOCH_S) / INTERVAL_S - 1;
    seen.insert(try_at(&mut c, &wind, reading(k, 1), ts).unwrap_err());
    let want: BTreeSet<Reject> = Reject::MARKET_READING.iter().copied().collect();
    assert_eq!(seen, want);
}

/// Another member's key: a member cannot report for a meter (its own key is not a meter, and
/// a report naming a meter but signed by the member fails the signature check), nor place an
/// order in another member's name. Nothing changes.
#[test]
fn readings_and_orders_signed_by_another_key_are_refused() {
    let p = params(Mechanism::PayAsClear, GridFee::None);
    let (mut c, members) = market_chain(2, p);
    let (m0, m1) = (members[0].key.clone(), members[1].key.clone());
    let pv1 = key("pv-1");
    let ts = end_of(0) + 10;
    // Member 0 signs a reading as itself: a member is not a meter.
    assert_eq!(
        try_at(&mut c, &m0, reading(0, 100), ts),
        Err(Reject::WrongRole)
    );
    // Member 0 signs a reading naming member 1's PV meter as the signer.
    let before = c.ledger.commitment();
    let tx = forged(&mut c, &m0, &pv1, reading(0, 100));
    let out = c.block_at(ts, vec![tx]);
    assert_eq!(out.results, vec![Err(Reject::BadSignature)]);
    // A meter of member 1 signing member 0's meter's reading: also another key.
    let pv0 = key("pv-0");
    let tx = forged(&mut c, &pv1, &pv0, reading(0, 100));
    assert_eq!(
        c.block_at(ts, vec![tx]).results,
        vec![Err(Reject::BadSignature)]
    );
    // Member 0 signs an order in member 1's name.
    let tx = forged(&mut c, &m0, &m1, bid(5, 100, 100_000));
    assert_eq!(
        c.block_at(ts, vec![tx]).results,
        vec![Err(Reject::BadSignature)]
    );
    let after = c.ledger.commitment();
    assert_eq!(after.market_root, before.market_root);
    assert_eq!(after.accounts_root, before.accounts_root);
    assert_eq!(after.certificates_root, before.certificates_root);
    assert_eq!(c.ledger.market().orders.len(), 0);
}

/// The seller's supply point reports the interval (once it has ended) before anyone closes
/// the gate: the gate close posts the seller's trades from that report, exactly as a report
/// after the close does.
#[test]
fn a_report_before_the_gate_close_posts_at_the_close() {
    let p = params(Mechanism::PayAsClear, GridFee::Constant(Price(10_000)));
    let run = |report_first: bool| {
        let (mut c, members) = market_chain(3, p);
        small_book(&mut c, &members);
        let supply = members[0].supply.clone();
        let closer = members[1].key.clone();
        let report = |c: &mut Chain| {
            let r = c.sign(&supply, reading(0, 1_500));
            assert_eq!(c.block_at(end_of(0) + 30, vec![r]).results, vec![Ok(())]);
        };
        if report_first {
            report(&mut c);
            gate_close(&mut c, &closer, 0, end_of(0) + 60).unwrap();
        } else {
            gate_close(&mut c, &closer, 0, end_of(0)).unwrap();
            report(&mut c);
        }
        let mut t: Vec<_> = c.ledger.trades().filter(|t| t.interval == 0).collect();
        t.sort_by_key(|t| t.index);
        let trades: Vec<_> = t
            .iter()
            .map(|t| (t.status, t.delivered_wh, t.paid_seller, t.paid_fee))
            .collect();
        let balances: Vec<u128> = members.iter().map(|m| c.balance(&m.key)).collect();
        (trades, balances, c.ledger.totals().reserved)
    };
    let (before, after) = (run(true), run(false));
    assert_eq!(before, after);
    assert!(before.0.iter().all(|t| t.0 == TradeStatus::Posted));
    assert_eq!(before.0.iter().map(|t| t.1).sum::<u64>(), 1_500);
    assert_eq!(before.2, 0);
}
