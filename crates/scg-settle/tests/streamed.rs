//! A year settled while it runs (`scg_settle::settle_blocks` fed the blocks of
//! `scg_sim::simulate_streaming`, what `scg simulate` does for a city with its ledger) is the
//! ledger of the same year kept and settled afterwards (`scg_settle::settle`): the same blocks,
//! summary and state root, with the community market's trades and with pro-rata sharing, in
//! the compact layout (a 60-member city) and the per-record one (a 6-member one). A source of
//! blocks that ends early, a block of the wrong shape or a trade out of its step are errors
//! naming the step, never a panic or a silent zero.
#![allow(clippy::unwrap_used)]

use scg_ledger::settlement::SettledYear;
use scg_model::Scenario;
use scg_settle::{Policy, SettleError, settle, settle_blocks};
use scg_sim::members::MemberBlock;
use scg_sim::{Assets, MemberStream, SimOptions, SimResult, YearHead};
use std::sync::Arc;

const SEED: u64 = 7;

fn city(members: usize, evs: u64, market: bool) -> Scenario {
    let options = scg_model::city::CityOptions {
        members,
        evs,
        ev_policy: "llf".into(),
    };
    let mut toml = scg_model::city::city_toml(&options, 3).unwrap();
    if !market {
        let line = toml
            .lines()
            .find(|l| l.starts_with("market = "))
            .unwrap()
            .to_owned();
        toml = toml.replace(&line, "");
    }
    let scenario = Scenario::from_toml_str(&toml, "test city").unwrap();
    assert_eq!(scenario.community.market.is_some(), market);
    scenario
}

/// The year of `scenario`, kept (`blocks` = None) or streamed into `blocks` and `head`.
fn run(
    scenario: &Scenario,
    streamed: Option<(&mut Vec<Arc<MemberBlock>>, &mut Option<YearHead>)>,
) -> SimResult {
    let assets = Assets::from_scenario(scenario).unwrap();
    let inputs = scg_sim::resolve_inputs(scenario, &assets, &mut |p| {
        Err(format!("{}: no files in this test", p.display()))
    })
    .unwrap();
    let sim = |stream| {
        scg_sim::simulate_streaming(
            scenario,
            &assets,
            &inputs,
            SEED,
            SimOptions::default(),
            stream,
            &mut |_, _| {},
        )
        .unwrap()
    };
    match streamed {
        None => sim(None),
        Some((blocks, head)) => {
            let mut consumer = |b: &mut MemberBlock| {
                blocks.push(Arc::new(std::mem::take(b)));
                Ok(())
            };
            let mut take_head = |h: &YearHead| {
                *head = Some(h.clone());
                Ok(())
            };
            let steps = scg_model::TimeGrid::new(&scenario.time, &scenario.location.time_zone)
                .unwrap()
                .len();
            sim(Some(MemberStream {
                block_steps: scg_sim::members::block_steps(scenario.prosumers.len(), steps)
                    .min(500),
                consumer: &mut consumer,
                head: Some(&mut take_head),
            }))
        }
    }
}

/// A source handing `blocks` out in order, as a streamed run's consumer would.
fn handing_out(
    blocks: &[Arc<MemberBlock>],
) -> impl FnMut(usize, Option<Arc<MemberBlock>>) -> Result<Arc<MemberBlock>, SettleError> + '_ {
    let mut k = 0;
    move |step, _done| {
        let b = blocks
            .get(k)
            .cloned()
            .ok_or(SettleError::BlocksEnded { step })?;
        k += 1;
        Ok(b)
    }
}

/// `blocks` handed out in order, as a streamed run's consumer would.
fn from_blocks(
    head: &YearHead,
    price: f64,
    blocks: &[Arc<MemberBlock>],
) -> Result<SettledYear, SettleError> {
    let mut next = handing_out(blocks);
    settle_blocks(head, price, &Policy::default(), &mut next)
}

fn assert_streamed_settles_as_kept(scenario: &Scenario) {
    let price = scenario.community.internal_price_eur_per_mwh;
    let kept = run(scenario, None);
    let (mut blocks, mut head) = (Vec::new(), None);
    let streamed = run(scenario, Some((&mut blocks, &mut head)));
    let head = head.unwrap();
    assert_eq!(head, kept.head(), "the head given before the year");
    assert!(blocks.len() > 1, "several blocks");
    // The market's trades went with the blocks, not into the result.
    let market = |r: &SimResult| r.community.market.as_ref().map(|m| m.trades.len());
    let trades_in_blocks: usize = blocks.iter().map(|b| b.trades.len()).sum();
    assert_eq!(market(&streamed).unwrap_or(0), 0);
    assert_eq!(market(&kept).unwrap_or(0), trades_in_blocks);
    assert_eq!(
        scenario.community.market.is_some(),
        trades_in_blocks > 0,
        "trades with a market only"
    );
    let a = settle(&kept, price, &Policy::default()).unwrap();
    let b = from_blocks(&head, price, &blocks).unwrap();
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.blocks, b.blocks);
    assert!(a.summary.p2p_trades_settled > 0);
    // A streamed result keeps no series: settling it afterwards is refused, not zeros.
    let err = settle(&streamed, price, &Policy::default()).unwrap_err();
    assert!(err.to_string().contains("not kept"), "{err}");
}

#[test]
fn a_city_settled_while_it_runs_is_the_kept_years_ledger() {
    assert_streamed_settles_as_kept(&city(60, 12, true));
}

#[test]
fn pro_rata_sharing_settled_while_it_runs_is_the_kept_years_ledger() {
    assert_streamed_settles_as_kept(&city(60, 12, false));
}

#[test]
fn a_small_community_in_the_per_record_layout_settles_the_same_streamed() {
    assert_streamed_settles_as_kept(&city(6, 2, true));
}

#[test]
fn a_source_that_ends_a_bad_block_or_a_misplaced_trade_is_an_error_naming_the_step() {
    let scenario = city(60, 12, true);
    let price = scenario.community.internal_price_eur_per_mwh;
    let (mut blocks, mut head) = (Vec::new(), None);
    run(&scenario, Some((&mut blocks, &mut head)));
    let head = head.unwrap();
    // The year stops after three blocks.
    let err = from_blocks(&head, price, &blocks[..3]).unwrap_err();
    let first_missing = blocks[3].first_step;
    assert!(
        matches!(err, SettleError::BlocksEnded { step } if step == first_missing),
        "{err}"
    );
    // A block skipped: the next one does not start where the settlement is.
    let skipped: Vec<_> = [&blocks[..1], &blocks[2..]].concat();
    let err = from_blocks(&head, price, &skipped).unwrap_err().to_string();
    assert!(
        err.contains(&format!("step {}", blocks[1].first_step)) && err.contains("member block"),
        "{err}"
    );
    // A block of fewer members than the year's.
    let mut short = (*blocks[0]).clone();
    for c in &mut short.columns {
        c.truncate(c.len() - short.steps);
    }
    short.has_battery.pop();
    let err = from_blocks(&head, price, &[Arc::new(short)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("member block"), "{err}");
    // A trade moved to an earlier step than its neighbours': out of order.
    let (i, mut moved) = blocks
        .iter()
        .enumerate()
        .find(|(_, b)| b.trades.len() > 2 && b.trades[0].step < b.trades[b.trades.len() - 1].step)
        .map(|(i, b)| (i, (**b).clone()))
        .unwrap();
    let last = moved.trades.len() - 1;
    moved.trades[last].step = moved.first_step;
    let mut changed = blocks.clone();
    changed[i] = Arc::new(moved);
    let err = from_blocks(&head, price, &changed).unwrap_err().to_string();
    assert!(err.contains("out of order"), "{err}");
}

/// A temporary directory of this test process.
fn tmp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("scg-settle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Each block of the ledger stored as it is made (`settle_blocks_into` into a
/// `StoreWriter`, a block per append, what `scg simulate` of a city does) is the ledger the
/// kept year's settlement stores at once (`store`): the same head, state root and summary,
/// and the file verifies by replay. A writer handed a block out of order refuses it, and one
/// dropped before it finishes leaves no ledger behind.
#[test]
fn a_ledger_stored_block_by_block_is_the_one_stored_at_once() {
    let scenario = city(60, 12, true);
    let price = scenario.community.internal_price_eur_per_mwh;
    let (mut blocks, mut head) = (Vec::new(), None);
    run(&scenario, Some((&mut blocks, &mut head)));
    let head = head.unwrap();
    let kept = from_blocks(&head, price, &blocks).unwrap();
    let at_once = tmp_dir("at-once");
    let kept_head = scg_ledger::store::store(&at_once, &kept).unwrap();

    let streamed_dir = tmp_dir("block-by-block");
    let mut writer = scg_ledger::store::StoreWriter::create(&streamed_dir).unwrap();
    let mut next = handing_out(&blocks);
    let mut outcomes = Vec::new();
    let mut sink = |block: scg_ledger::block::Block, outcome: scg_ledger::state::BlockOutcome| {
        outcomes.push(outcome.clone());
        Ok(writer.append(&[block], &[outcome])?)
    };
    let streamed =
        scg_settle::settle_blocks_into(&head, price, &Policy::default(), &mut next, &mut sink)
            .unwrap();
    assert_eq!(outcomes.len(), kept.blocks.len());
    assert_eq!(streamed.summary, kept.summary);
    let streamed_head = writer.finish(streamed.ledger()).unwrap();
    assert_eq!(streamed_head, kept_head);
    let report = scg_ledger::store::Store::open(&streamed_dir)
        .unwrap()
        .verify()
        .unwrap();
    assert_eq!(report.state_root, kept_head.state_root);
    assert_eq!(report.height, kept.blocks.len() as u64 - 1);

    // The genesis, then the third block: refused, naming the height expected.
    let refused = tmp_dir("out-of-order");
    let mut writer = scg_ledger::store::StoreWriter::create(&refused).unwrap();
    writer.append(&kept.blocks[..1], &outcomes[..1]).unwrap();
    let err = writer
        .append(&kept.blocks[2..3], &outcomes[2..3])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("block 1") && err.contains("not the block"),
        "{err}"
    );
    drop(writer);
    let left: Vec<_> = std::fs::read_dir(&refused)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "a writer dropped unfinished leaves {left:?}"
    );
    for dir in [at_once, streamed_dir, refused] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
