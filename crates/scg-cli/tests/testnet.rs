//! `scg testnet` end to end through the built binary: five member node processes on loopback
//! drive the first six days of the built-in community (its first P2P trades are on day 6, a
//! Saturday). Every node ends with the same state
//! root, and every member's minted RESCoin, P2P received, P2P paid and fees equal those of
//! `scg simulate`'s own ledger over the same six days — read here from `scg simulate`'s
//! OUT/ledger store, independently of the testnet's own comparison. The CER: the chain closes
//! six daily periods (the driver runs the clock on past the last reading until the sixth
//! period's readings are final), every node computes the payouts from the readings it
//! holds, and `testnet.json` compares each member's `cer_received_res` with `scg simulate`'s
//! integer rule over the same six days; here the test checks that the comparison ran
//! (`cer_received_res` is in `compared`, the economics match), that it is not vacuous (day 6
//! has shared energy: some member is paid), that node 0's replayed store holds six closed
//! periods whose benefit is what the members received, and that no member received more than
//! `scg simulate` pays it for the whole year. Balances are not compared (the testnet funds
//! its members differently, see docs/chain.md).
//!
//! Waits are bounded by the driver's own timeouts; nothing here asserts on speed.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scg-cli-testnet-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn scg(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn res(base: u128) -> String {
    scg_units::Rescoin(base).to_decimal_string()
}

/// Base units of a RES decimal string (`res` backwards: 9 decimals).
fn base(res: &str) -> u128 {
    let (whole, frac) = res.split_once('.').unwrap();
    assert_eq!(frac.len(), 9, "{res}");
    whole.parse::<u128>().unwrap() * 1_000_000_000 + frac.parse::<u128>().unwrap()
}

/// Per member account (hex): minted, P2P received, P2P paid, fees over intervals `< horizon`,
/// read from a settled ledger.
fn ledger_figures(ledger: &scg_ledger::Ledger, horizon: u64) -> BTreeMap<String, [u128; 4]> {
    let rate = ledger.config().mint_rate_base_per_wh;
    let mut out: BTreeMap<String, [u128; 4]> = BTreeMap::new();
    let hex = scg_ledger::merkle::to_hex;
    // A certificate moved in part is split (the part is a child with the same producer and
    // interval), so the producer's certificates of an interval sum to what its meters minted.
    for c in ledger.certificates() {
        if c.interval < horizon {
            out.entry(hex(&c.producer)).or_default()[0] += u128::from(c.energy_wh) * rate;
        }
    }
    for t in ledger.trades() {
        if t.status != scg_ledger::state::TradeStatus::Posted || t.interval >= horizon {
            continue;
        }
        out.entry(hex(&t.seller)).or_default()[1] += t.paid_seller;
        let b = out.entry(hex(&t.buyer)).or_default();
        b[2] += t.paid_seller;
        b[3] += t.paid_fee;
    }
    out
}

#[test]
fn five_member_nodes_drive_six_days_with_simulates_economics() {
    let dir = scratch("run");
    let net = dir.join("net");
    let o = scg(&[
        "testnet",
        "--members",
        "5",
        "--dir",
        p(&net),
        "--days",
        "6",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(net.join("testnet.json")).unwrap()).unwrap();

    // Each member's secret keys are only in its own node's directory (mode 0600); keys/
    // holds the members' and meters' public keys and the driver's own three secret keys.
    let mut in_keys: Vec<String> = std::fs::read_dir(net.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    in_keys.sort();
    let secret: Vec<&String> = in_keys.iter().filter(|f| f.ends_with(".key")).collect();
    assert_eq!(
        secret,
        ["grid.key", "operator.key", "treasury.key"],
        "{in_keys:?}"
    );
    assert!(
        in_keys
            .iter()
            .all(|f| f.ends_with(".key") || f.ends_with(".pub"))
    );
    for i in 0..5 {
        let node = net.join(format!("node{i}"));
        let public = std::fs::read_to_string(net.join(format!("keys/member{i}.pub"))).unwrap();
        let key = scg_chain::MemberKey::read(&node.join("member.key")).unwrap();
        assert_eq!(key.public_hex(), public.trim());
        for f in ["member.key", "meter-supply-point.key"] {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(node.join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "node{i}/{f}");
            }
        }
    }

    // Five nodes, each past the registrations, all with one state root.
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5);
    let roots: Vec<&str> = nodes
        .iter()
        .map(|n| n["state_root"].as_str().unwrap())
        .collect();
    assert!(
        roots.iter().all(|r| r.len() == 64 && *r == roots[0]),
        "{roots:?}"
    );
    assert!(
        nodes
            .iter()
            .all(|n| n["finalized_height"].as_u64().unwrap() > 2)
    );
    // The roots are printed too.
    assert!(String::from_utf8_lossy(&o.stdout).contains(roots[0]));
    assert_eq!(json["run"]["unfunded_bids"], 0);
    assert_eq!(json["economics_match"], true, "{}", json["mismatches"]);

    // scg simulate's own ledger for the same scenario and seed, over the same 144 intervals.
    let sim = dir.join("sim");
    let o = scg(&["simulate", "--out", p(&sim), "--quiet"]);
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sim.join("summary.json")).unwrap()).unwrap();
    let (ledger, _) = scg_ledger::store::Store::open_read_only(&sim.join("ledger"))
        .unwrap()
        .load()
        .unwrap();
    let simulated = ledger_figures(&ledger, 144);
    let members = json["members"].as_object().unwrap();
    assert_eq!(members.len(), 5);
    let mut traded = 0u128;
    let mut minted = 0u128;
    let mut cer_total = 0u128;
    for (id, chain) in members {
        // Keys differ (the testnet's are random); the economics must not.
        let account = summary["prosumers"][id]["ledger"]["account"]
            .as_str()
            .unwrap();
        assert_ne!(chain["account"].as_str().unwrap(), account);
        let s = simulated.get(account).copied().unwrap_or_default();
        let fields = [
            "minted_res",
            "p2p_received_res",
            "p2p_paid_res",
            "fees_paid_res",
        ];
        for (field, want) in fields.iter().zip(s) {
            assert_eq!(chain[*field].as_str().unwrap(), res(want), "{id} {field}");
        }
        let cer = chain["cer_received_res"].as_str().unwrap();
        assert_eq!(cer, json["simulation"][id]["cer_received_res"], "{id} CER");
        let year_cer = summary["prosumers"][id]["ledger"]["cer_received_res"]
            .as_str()
            .unwrap();
        assert!(
            base(cer) <= base(year_cer),
            "{id}: CER {cer} > the year's {year_cer}"
        );
        cer_total += base(cer);
        minted += s[0];
        traded += s[1];
    }
    // Not vacuous: the six days mint, trade and share energy.
    assert!(minted > 0 && traded > 0, "minted {minted}, traded {traded}");
    assert!(cer_total > 0, "no CER paid in six days");
    let compared = json["compared"].as_array().unwrap();
    assert!(
        compared.iter().any(|c| c == "cer_received_res"),
        "{compared:?}"
    );
    assert_eq!(json["cer"]["periods_closed"], 6);
    // The treasury was endowed with the simulation's CER budget on top of the funding, and
    // the chain's closes paid all of it.
    assert_eq!(json["cer"]["paid_res"], json["cer"]["budget_res"]);
    assert_eq!(json["cer"]["treasury_end_res"], "0.000000000");

    // Node 0's store, replayed: six periods closed on-chain, paying what the members got.
    let genesis = scg_chain::genesis::Genesis::read(&net.join("genesis.toml")).unwrap();
    let (_, chain) = scg_chain::verify::replay_dir(&genesis, &net.join("node0")).unwrap();
    let closed = &chain.cer().closed;
    assert_eq!(
        closed.keys().copied().collect::<Vec<u64>>(),
        [0, 1, 2, 3, 4, 5]
    );
    let paid: u128 = closed
        .values()
        .map(|r| r.incentive_base + r.valorisation_base)
        .sum();
    assert_eq!(paid, cer_total);

    // Every node's store verifies on its own (certificates and full replay), read-only.
    for i in 0..5 {
        let o = scg(&["ledger", "verify", p(&net.join(format!("node{i}")))]);
        assert!(o.status.success(), "node{i}: {}", text(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_are_refused_before_anything_starts() {
    let dir = scratch("bad");
    // The built-in community has five prosumers.
    let o = scg(&["testnet", "--members", "3", "--dir", p(&dir.join("a"))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--members 5"), "{}", text(&o));
    assert!(!dir.join("a").exists());
    // A directory holding something else is not reused.
    std::fs::write(dir.join("keep.txt"), "x").unwrap();
    let o = scg(&["testnet", "--members", "5", "--dir", p(&dir), "--days", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not empty"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // Usage errors from clap.
    let o = scg(&["testnet", "--members", "0", "--dir", p(&dir)]);
    assert_eq!(o.status.code(), Some(2));
    let o = scg(&[
        "testnet",
        "--members",
        "5",
        "--dir",
        p(&dir),
        "--days",
        "366",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = scg(&["testnet", "--help"]);
    assert!(o.status.success());
    for flag in [
        "--members",
        "--dir",
        "--days",
        "--intervals-per-step",
        "testnet.json",
    ] {
        assert!(text(&o).contains(flag), "--help lacks {flag}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
