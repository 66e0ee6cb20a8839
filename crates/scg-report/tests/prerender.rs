//! Rendering in two parts (`prerender` while the ledger settles, then `Prerendered::finish`
//! with its figures, what `scg simulate` does) gives the outputs of `render_all_layout`: the
//! first part reads nothing of the ledger, and the second puts the ledger's figures where the
//! one-part rendering does.
#![allow(clippy::unwrap_used)]

use scg_model::Scenario;
use scg_report::summary::{LedgerInfo, MemberLedger};
use scg_report::{Layout, OutputFile, RunInfo, Summary, prerender, render_all_layout};
use scg_sim::{Assets, SimOptions, SimResult};

fn scenario() -> Scenario {
    let options = scg_model::city::CityOptions {
        members: 6,
        evs: 2,
        ev_policy: "llf".into(),
    };
    Scenario::from_toml_str(&scg_model::city::city_toml(&options, 1).unwrap(), "c").unwrap()
}

fn simulate(scenario: &Scenario) -> SimResult {
    let assets = Assets::from_scenario(scenario).unwrap();
    let inputs = scg_sim::resolve_inputs(scenario, &assets, &mut |p| {
        Err(format!("{}: no files in this test", p.display()))
    })
    .unwrap();
    let options = SimOptions::default();
    scg_sim::simulate_streaming(scenario, &assets, &inputs, 3, options, None, &mut |_, _| {})
        .unwrap()
}

/// A ledger's figures for every member of `result` (made up, distinct per member).
fn ledger(result: &SimResult) -> LedgerInfo {
    let member = |i: usize| MemberLedger {
        account: format!("{i:064x}"),
        balance_res: format!("{i}.000000001"),
        minted_res: "2.000000000".into(),
        p2p_received_res: "0.000000000".into(),
        p2p_paid_res: "0.000000000".into(),
        fees_paid_res: "0.000000000".into(),
        cer_received_res: format!("{i}.5"),
    };
    let ids = result.prosumers.iter().map(|p| p.id.clone());
    LedgerInfo {
        ledger_dir: "ledger".into(),
        ledger_blocks: 365,
        ledger_transactions: 4321,
        ledger_transactions_rejected: 1,
        rescoin_decimals: 9,
        rescoin_minted: 123_456_789,
        certificates_issued: 77,
        p2p_trades_settled: 12,
        p2p_wh_settled: 3_000,
        p2p_wh_certified: 2_000,
        cer_distributed: 5,
        rescoin_balances: ids
            .clone()
            .enumerate()
            .map(|(i, id)| (id, i as u128))
            .collect(),
        ledger_state_root: "ab".repeat(32),
        members: ids.enumerate().map(|(i, id)| (id, member(i))).collect(),
    }
}

fn run(ledger: Option<LedgerInfo>) -> RunInfo {
    RunInfo {
        scg_version: "test".into(),
        scenario_source: "c".into(),
        ledger,
    }
}

fn file<'a>(files: &'a [OutputFile], name: &str) -> &'a [u8] {
    &files.iter().find(|f| f.name == name).unwrap().bytes
}

#[test]
fn the_two_parts_render_the_one_part_outputs_in_both_layouts() {
    let scenario = scenario();
    let result = simulate(&scenario);
    let with = run(Some(ledger(&result)));
    let without = run(None);
    for layout in [Layout::Wide, Layout::City] {
        let one = render_all_layout(&result, &scenario, &without, "", layout).unwrap();
        // The first part ignores a ledger it is given: finished without one, no trace of it.
        let pre = prerender(&result, &scenario, &with, "<p>x</p>", layout).unwrap();
        let pre_none = prerender(&result, &scenario, &without, "<p>x</p>", layout).unwrap();
        assert_eq!(
            pre.clone().finish(None).unwrap(),
            pre_none.finish(None).unwrap()
        );
        let pre = prerender(&result, &scenario, &with, "", layout).unwrap();
        let two = pre.finish(None).unwrap();
        let mut names: Vec<_> = one.iter().map(|f| f.name).collect();
        let mut two_names: Vec<_> = two.iter().map(|f| f.name).collect();
        names.sort_unstable();
        two_names.sort_unstable();
        assert_eq!(names, two_names);
        for f in &one {
            assert!(file(&two, f.name) == f.bytes, "{} differs", f.name);
        }
        // With the ledger: the one-part outputs, split and finished, byte for byte.
        let one = render_all_layout(&result, &scenario, &with, "", layout).unwrap();
        let mut pre = prerender(&result, &scenario, &without, "", layout).unwrap();
        let mut two = pre.take_series();
        assert!(!two.is_empty());
        assert!(pre.take_series().is_empty());
        two.extend(pre.finish(with.ledger.clone()).unwrap());
        assert_eq!(one.len(), two.len());
        for f in &one {
            assert!(file(&two, f.name) == f.bytes, "{} differs", f.name);
        }
    }
}

#[test]
fn the_ledger_paragraph_sits_in_the_community_section_and_members_carry_their_figures() {
    let scenario = scenario();
    let result = simulate(&scenario);
    let info = ledger(&result);
    let with = render_all_layout(
        &result,
        &scenario,
        &run(Some(info.clone())),
        "",
        Layout::Wide,
    )
    .unwrap();
    let without = render_all_layout(&result, &scenario, &run(None), "", Layout::Wide).unwrap();
    let html = String::from_utf8(file(&with, "report.html").to_vec()).unwrap();
    let plain = String::from_utf8(file(&without, "report.html").to_vec()).unwrap();
    let start = html.find("<p>RESCoin ledger (<code>ledger</code>): 365 blocks, 4321 transactions (1 rejected), 77 certificates").unwrap();
    let len = html[start..].find("</p>").unwrap() + "</p>".len();
    assert!(html[start..start + len].contains(&"ab".repeat(32)));
    // Exactly one paragraph more than without a ledger, after the community's market part
    // and before the costs.
    assert_eq!(format!("{}{}", &html[..start], &html[start + len..]), plain);
    let community = html.find("<h2 id=\"community\">").unwrap();
    let costs = html.find("<h2 id=\"costs\"").unwrap();
    assert!(
        community < start && start < costs,
        "{community} {start} {costs}"
    );
    // summary.json: each member's figures inside its prosumer, the totals at the top level.
    let summary = Summary::new(&result, &scenario, &run(Some(info.clone())));
    for (id, p) in &summary.prosumers {
        assert_eq!(p.ledger.as_ref(), info.members.get(id));
        assert!(p.ledger.is_some());
    }
    let json: serde_json::Value = serde_json::from_slice(file(&with, "summary.json")).unwrap();
    assert_eq!(json["ledger_blocks"], 365);
    let id = &result.prosumers[0].id;
    assert_eq!(
        json["prosumers"][id]["ledger"]["account"],
        info.members[id].account
    );
    let mut unset = summary.clone();
    unset.set_ledger(None);
    assert!(unset.prosumers.values().all(|p| p.ledger.is_none()));
    assert_eq!(unset, Summary::new(&result, &scenario, &run(None)));
}
