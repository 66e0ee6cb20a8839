//! Reconciliation over random communities: whatever the readings and trades, every trade is on
//! the ledger exactly once with its price and fee, each member's P2P money and CER payout on the
//! ledger equal the input's to the base unit, and certificates never exceed what was metered.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scg_ledger::merkle::to_hex;
use scg_ledger::settlement::{
    CerPayout, CommunityYear, IntervalInput, Layout, MeterReading, P2pTrade, settle_year,
    settle_year_with,
};
use scg_ledger::state::TradeStatus;
use scg_ledger::{DeviceType, Ledger};
use std::collections::BTreeMap;

/// One member's step: PV, battery discharge, battery charge, load (Wh).
type Step = (u64, u64, u64, u64);

fn reading(member: &str, device: DeviceType, produced_wh: u64, consumed_wh: u64) -> MeterReading {
    MeterReading {
        member: member.into(),
        device,
        produced_wh,
        consumed_wh,
    }
}

/// A consistent community: each member's supply point meters its net; sellers sell part of
/// their export to buyers in order, at random prices and fees.
fn community(
    steps: &[Vec<Step>],
    sold_pct: &[u64],
    prices: &[(u128, u128)],
    cer: &[u128],
) -> CommunityYear {
    let n = steps[0].len();
    let members: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let mut intervals = Vec::new();
    for (t, step) in steps.iter().enumerate() {
        let mut iv = IntervalInput::default();
        let mut sellers = Vec::new();
        let mut buyers = Vec::new();
        for (i, &(pv, out, charge, load)) in step.iter().enumerate() {
            let m = &members[i];
            if pv > 0 {
                iv.readings.push(reading(m, DeviceType::Pv, pv, 0));
            }
            if out > 0 || charge > 0 {
                iv.readings
                    .push(reading(m, DeviceType::Battery, out, charge));
            }
            let net = (pv + out) as i64 - (charge + load) as i64;
            let (export, import) = (net.max(0) as u64, (-net).max(0) as u64);
            iv.readings
                .push(reading(m, DeviceType::SupplyPoint, export, import));
            let offer = export * sold_pct[(t + i) % sold_pct.len()] / 100;
            if offer > 0 {
                sellers.push((i, offer));
            }
            if import > 0 {
                buyers.push((i, import));
            }
        }
        let (mut b, mut s) = (0, 0);
        while b < buyers.len() && s < sellers.len() {
            let e = buyers[b].1.min(sellers[s].1);
            let (price, fee) = prices[(t + b + s) % prices.len()];
            iv.trades.push(P2pTrade {
                buyer: members[buyers[b].0].clone(),
                seller: members[sellers[s].0].clone(),
                energy_wh: e,
                price_base_per_kwh: price,
                grid_fee_base_per_kwh: fee,
            });
            buyers[b].1 -= e;
            sellers[s].1 -= e;
            b += usize::from(buyers[b].1 == 0);
            s += usize::from(sellers[s].1 == 0);
        }
        intervals.push(iv);
    }
    if let Some(last) = intervals.last_mut() {
        last.cer = members
            .iter()
            .zip(cer)
            .map(|(m, a)| CerPayout {
                member: m.clone(),
                amount_base: *a,
            })
            .collect();
    }
    CommunityYear {
        seed: 11,
        members,
        mint_rate_base_per_wh: 100_000,
        start_timestamp_s: 1_167_609_600,
        interval_s: 900,
        opening_balance_base: 1_000_000,
        treasury_endowment_base: 10u128.pow(24),
        intervals,
    }
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![Just(0u64), 0u64..5_000],
        prop_oneof![Just(0u64), 0u64..2_000],
        prop_oneof![Just(0u64), 0u64..2_000],
        0u64..4_000,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn ledger_reconciles_with_the_input(
        steps in (2usize..5).prop_flat_map(|n| proptest::collection::vec(proptest::collection::vec(step(), n), 1..7)),
        sold_pct in proptest::collection::vec(0u64..=100, 1..5),
        prices in proptest::collection::vec((0u128..400_000_000, 0u128..30_000_000), 1..4),
        cer in proptest::collection::vec(0u128..10_000_000_000, 5),
    ) {
        let year = community(&steps, &sold_pct, &prices, &cer);
        let settled = settle_year(&year).unwrap();
        let s = &settled.summary;
        let (mut ledger, _) = Ledger::from_genesis_block(&settled.blocks[0]).unwrap();
        for b in &settled.blocks[1..] {
            prop_assert_eq!(ledger.apply_block(b).unwrap().rejected(), 0);
        }
        ledger.check_invariants().unwrap();
        prop_assert_eq!(to_hex(&ledger.state_root()), s.final_state_root_hex.clone());

        let id_of: BTreeMap<String, String> =
            s.members.iter().map(|(id, m)| (m.account_hex.clone(), id.clone())).collect();
        type Row = (u64, String, String, u64, u128, u128);
        let mut on_ledger: Vec<Row> = ledger
            .trades()
            .map(|t| {
                assert_eq!((t.status, t.delivered_wh), (TradeStatus::Posted, t.energy_wh));
                (t.interval, id_of[&to_hex(&t.seller)].clone(), id_of[&to_hex(&t.buyer)].clone(),
                 t.energy_wh, t.price_base_per_kwh, t.fee_base_per_kwh)
            })
            .collect();
        let mut input: Vec<Row> = Vec::new();
        let mut paid: BTreeMap<&str, (u128, u128)> = BTreeMap::new();
        let mut received: BTreeMap<&str, u128> = BTreeMap::new();
        let mut bought_wh: BTreeMap<&str, u64> = BTreeMap::new();
        for (i, iv) in year.intervals.iter().enumerate() {
            for t in &iv.trades {
                input.push((i as u64, t.seller.clone(), t.buyer.clone(), t.energy_wh,
                            t.price_base_per_kwh, t.grid_fee_base_per_kwh));
                let pay = u128::from(t.energy_wh) * t.price_base_per_kwh / 1000;
                let fee = u128::from(t.energy_wh) * t.grid_fee_base_per_kwh / 1000;
                let p = paid.entry(t.buyer.as_str()).or_default();
                p.0 += pay;
                p.1 += fee;
                *received.entry(t.seller.as_str()).or_default() += pay;
                *bought_wh.entry(t.buyer.as_str()).or_default() += t.energy_wh;
            }
        }
        on_ledger.sort_unstable();
        input.sort_unstable();
        prop_assert_eq!(&on_ledger, &input);
        prop_assert_eq!(s.p2p_trades_settled as usize, input.len());
        for (id, m) in &s.members {
            let (p, f) = paid.get(id.as_str()).copied().unwrap_or((0, 0));
            prop_assert_eq!(m.p2p_paid.0, p);
            prop_assert_eq!(m.fees_paid.0, f);
            prop_assert_eq!(m.p2p_received.0, received.get(id.as_str()).copied().unwrap_or(0));
            let idx: usize = id[1..].parse().unwrap();
            prop_assert_eq!(m.cer_received.0, cer[idx]);
            prop_assert!(m.certified_received_wh <= bought_wh.get(id.as_str()).copied().unwrap_or(0));
        }
        let t = ledger.totals();
        prop_assert!(t.certified_wh <= t.renewable_wh_metered);
        prop_assert!(s.p2p_wh_certified <= s.p2p_wh_delivered);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// The compact layout gives every member the same RESCoin and certified Wh as the
    /// per-record layout, and its chain replays with every signature checked.
    #[test]
    fn compact_layout_settles_the_same_money_and_energy(
        steps in (2usize..5).prop_flat_map(|n| proptest::collection::vec(proptest::collection::vec(step(), n), 1..40)),
        sold_pct in proptest::collection::vec(0u64..=100, 1..5),
        prices in proptest::collection::vec((0u128..400_000_000, 0u128..30_000_000), 1..4),
        cer in proptest::collection::vec(0u128..10_000_000_000, 5),
        opening in prop_oneof![Just(0u128), 0u128..1_000_000_000],
    ) {
        let mut year = community(&steps, &sold_pct, &prices, &cer);
        year.opening_balance_base = opening;
        let a = settle_year(&year).unwrap();
        let b = settle_year_with(&year, Layout::Compact).unwrap();
        prop_assert_eq!(&a.summary.members, &b.summary.members);
        prop_assert_eq!(a.summary.rescoin_minted, b.summary.rescoin_minted);
        prop_assert_eq!(a.summary.certified_wh, b.summary.certified_wh);
        prop_assert_eq!(a.summary.p2p_wh_certified, b.summary.p2p_wh_certified);
        prop_assert_eq!(a.summary.stored_certified_wh, b.summary.stored_certified_wh);
        prop_assert_eq!(a.summary.grid_fees, b.summary.grid_fees);
        prop_assert_eq!(a.summary.treasury_topups, b.summary.treasury_topups);
        let (mut ledger, _) = Ledger::from_genesis_block(&b.blocks[0]).unwrap();
        for block in &b.blocks[1..] {
            let out = ledger.apply_block(block).unwrap();
            prop_assert_eq!(out.rejected(), 0);
            prop_assert!(out.record_rejects.is_empty());
        }
        ledger.check_invariants().unwrap();
        prop_assert_eq!(to_hex(&ledger.state_root()), b.summary.final_state_root_hex.clone());
    }
}
