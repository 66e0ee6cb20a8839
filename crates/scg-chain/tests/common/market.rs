//! The on-chain market's test script: a market opened on a test chain, a small book of
//! orders from its members, a gate close, and the trades it must give.
#![allow(dead_code, clippy::unwrap_used)]

use super::TestChain;
use scg_chain::wire::Record;

/// Interval 0 of the market test's chain opens (its gate closes) this long after genesis.
pub const GATE_AFTER_S: u64 = 60;

/// The market test's transactions: the operator opens the market and registers the PV
/// meters' capacities, the treasury funds the buyers; members 0 and 1 offer, 2 and 3 bid (two
/// orders each) for interval 0; member 0 closes the gate.
pub struct MarketScript {
    pub setup: Vec<Vec<u8>>,
    pub orders: Vec<(usize, Vec<u8>)>,
    pub gate_close: Vec<u8>,
    /// The gate close's id, then the setup's.
    pub ids: Vec<u128>,
}

pub fn market_script(tc: &TestChain, seed: u64, gate_after_s: u64) -> MarketScript {
    use scg_ledger::market::{MarketParams, OfferSource, OrderBody, OrderSide};
    use scg_ledger::{Tx, TxBody};
    let chain = tc.genesis.ledger.chain_id;
    let (ledger, _) = tc.genesis.initial_state().unwrap();
    let mut id = 0x6d61_726b_6574_u128 << 64;
    let mut next = || {
        id += 1;
        id
    };
    let op = tc.operator.signing_key();
    let mut op_nonce = ledger.account(&tc.operator.public()).unwrap().nonce;
    let mut setup = Vec::new();
    let params = MarketParams {
        epoch_s: tc.genesis.genesis_time_s + gate_after_s,
        interval_s: 900,
        mechanism: scg_market::Mechanism::PayAsClear,
        fee: scg_market::GridFee::Constant(scg_market::Price(10_000)),
        max_orders_per_member: 4,
        settle_window_s: 3_600,
    };
    let mut op_tx = |body| {
        let t = Tx::sign(chain, &op, next(), op_nonce, body);
        op_nonce += 1;
        t
    };
    setup.push(op_tx(TxBody::MarketOpen(params)));
    for m in &tc.meters {
        setup.push(op_tx(TxBody::MeterCapacity {
            meter: m.public(),
            capacity_w: 10_000,
        }));
    }
    let treasury = super::key(seed, "treasury");
    for (k, i) in [2usize, 3].iter().enumerate() {
        setup.push(Tx::sign(
            chain,
            &treasury.signing_key(),
            next(),
            k as u64,
            TxBody::Transfer {
                to: tc.members[*i].public(),
                amount: 400_000_000,
            },
        ));
    }
    let order = |side, energy_wh, limit| {
        TxBody::Order(OrderBody {
            interval: 0,
            side,
            energy_wh,
            limit_milli_eur_per_mwh: limit,
            source: OfferSource::Unspecified,
        })
    };
    let book = [
        (0, order(OrderSide::Offer, 1_000, 60_000)),
        (0, order(OrderSide::Offer, 500, 90_000)),
        (1, order(OrderSide::Offer, 800, 70_000)),
        (1, order(OrderSide::Offer, 700, 120_000)),
        (2, order(OrderSide::Bid, 900, 200_000)),
        (2, order(OrderSide::Bid, 400, 110_000)),
        (3, order(OrderSide::Bid, 1_200, 180_000)),
        (3, order(OrderSide::Bid, 300, 100_000)),
    ];
    let mut nonces = [0u64; 4];
    let orders = book
        .into_iter()
        .map(|(i, body)| {
            let t = Tx::sign(chain, &tc.members[i].signing_key(), next(), nonces[i], body);
            nonces[i] += 1;
            (i, t)
        })
        .collect();
    let gate_close = Tx::sign(
        chain,
        &tc.members[0].signing_key(),
        next(),
        nonces[0],
        TxBody::GateClose { interval: 0 },
    );
    let ids = std::iter::once(&gate_close)
        .chain(setup.iter())
        .map(|b| Tx::decode(b).unwrap().id)
        .collect();
    MarketScript {
        setup,
        orders,
        gate_close,
        ids,
    }
}

/// A trade as compared: buyer, seller, Wh, price and fee (base units per kWh).
pub type TradeRow = (
    scg_ledger::PublicKey,
    scg_ledger::PublicKey,
    u64,
    u128,
    u128,
);

pub fn market_trades(ledger: &scg_ledger::Ledger) -> Vec<TradeRow> {
    let mut t: Vec<_> = ledger.trades().filter(|t| t.interval == 0).collect();
    t.sort_by_key(|t| t.index);
    t.iter()
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

/// The trades of the script's book without consensus: one plain ledger, every order in one
/// block in the given order.
pub fn reference_trades(
    tc: &TestChain,
    s: &MarketScript,
    reverse: bool,
    gate_after_s: u64,
) -> Vec<TradeRow> {
    let (mut ledger, _) = tc.genesis.initial_state().unwrap();
    let g = tc.genesis.genesis_time_s;
    let out = ledger.produce_block(g + 1, s.setup.clone()).unwrap().1;
    assert!(out.results.iter().all(Result::is_ok), "{:?}", out.results);
    // Reversing the whole list breaks each member's nonce order; reverse the members instead.
    let mut orders = s.orders.clone();
    if reverse {
        orders.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
    }
    let orders = orders.into_iter().map(|(_, t)| t).collect();
    let out = ledger.produce_block(g + 2, orders).unwrap().1;
    assert!(out.results.iter().all(Result::is_ok), "{:?}", out.results);
    let out = ledger
        .produce_block(g + gate_after_s, vec![s.gate_close.clone()])
        .unwrap()
        .1;
    assert_eq!(out.results, vec![Ok(())]);
    market_trades(&ledger)
}

/// The ledger a node's store replays to.
pub fn replay_node(tc: &TestChain, dir: &std::path::Path, upto: u64) -> scg_ledger::Ledger {
    let (_, records) = scg_chain::store::read_only(dir).unwrap();
    let (mut ledger, _) = tc.genesis.initial_state().unwrap();
    for (h, bytes) in records {
        if h > upto {
            break;
        }
        let rec = Record::decode(&bytes, tc.members.len()).unwrap();
        ledger.apply_block(&rec.block).unwrap();
    }
    ledger
}
