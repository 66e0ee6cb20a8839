//! Keys, genesis files and the chain id.
#![allow(clippy::unwrap_used)]

mod common;

use scg_chain::{ChainError, Genesis, MemberKey};

#[test]
fn key_file_is_0600_refuses_overwrite_and_round_trips() {
    let dir = common::scratch("keys");
    let path = dir.join("k.key");
    let k = MemberKey::generate().unwrap();
    k.write_new(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(matches!(k.write_new(&path), Err(ChainError::Exists { .. })));
    let back = MemberKey::read(&path).unwrap();
    assert_eq!(back.public(), k.public());
    // Two generated keys differ (OS randomness, not a fixed seed).
    assert_ne!(MemberKey::generate().unwrap().public(), k.public());
    // The consensus identity and the ledger key are the same ed25519 key.
    let pk = commonware_cryptography::Signer::public_key(&k.consensus_key());
    assert_eq!(pk.as_ref(), &k.public()[..]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_key_files_name_the_line() {
    let e = MemberKey::parse("scg-chain-key-v1\nzz\n").unwrap_err();
    assert!(e.contains("line 2"), "{e}");
    let e = MemberKey::parse("hello\n").unwrap_err();
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn chain_id_is_a_hash_of_the_contents() {
    let a = common::chain(1, 4, "alpha");
    let b = common::chain(1, 4, "beta");
    assert_ne!(a.genesis.chain_id, b.genesis.chain_id);
    assert_ne!(a.genesis.ledger.chain_id, b.genesis.ledger.chain_id);
    // Same contents → same id.
    assert_eq!(
        common::chain(1, 4, "alpha").genesis.chain_id,
        a.genesis.chain_id
    );
    // Block 1 (the registrations) replays.
    let (ledger, b1) = a.genesis.initial_state().unwrap();
    assert_eq!(b1.header.height, 1);
    assert!(ledger.account(&a.members[0].public()).is_some());
    assert!(ledger.account(&a.meters[3].public()).is_some());
}

fn genesis_text() -> String {
    let tc = common::chain(2, 4, "text");
    let op = tc.operator.clone();
    let file = scg_chain::GenesisSpec::parse(
        "spec",
        &format!(
            "name = \"text\"\ngenesis_time_s = 1767225600\nmint_rate_base_per_wh = 1000000\ntreasury = \"{}\"\ngrid = \"{}\"\n{}",
            common::key(2, "treasury").public_hex(),
            common::key(2, "grid").public_hex(),
            (0..4)
                .map(|i| format!(
                    "[[members]]\nname = \"m{i}\"\npublic_key = \"{}\"\nvalidator = true\n[[members.meters]]\npublic_key = \"{}\"\ndevice = \"pv\"\n",
                    tc.members[i].public_hex(),
                    tc.meters[i].public_hex()
                ))
                .collect::<String>()
        ),
    )
    .unwrap()
    .derive(&op)
    .unwrap();
    file.to_toml().unwrap()
}

#[test]
fn malformed_genesis_names_the_field() {
    let text = genesis_text();
    Genesis::parse("g.toml", &text).unwrap();
    let cases = [
        (
            text.replacen("device = \"pv\"", "device = \"nuclear\"", 1),
            "members[0].meters[0].device",
        ),
        (
            text.replacen("validator = true", "validator = 3", 1),
            "members[0].validator",
        ),
        (
            text.replacen(
                "mint_rate_base_per_wh = 1000000",
                "mint_rate_base_per_wh = \"x\"",
                1,
            ),
            "mint_rate_base_per_wh",
        ),
        (
            text.replacen("name = \"m1\"", "name = \"m1\"\ncolour = 1", 1),
            "members[1]",
        ),
        (
            text.replacen("name = \"text\"", "name = \"other\"", 1),
            "chain_id",
        ),
    ];
    for (bad, field) in cases {
        let e = Genesis::parse("g.toml", &bad).unwrap_err().to_string();
        assert!(
            e.contains("g.toml") && e.contains(field),
            "expected `{field}` in: {e}"
        );
    }
}

/// The genesis text of `genesis_text` with a `[market]` and a capacity on every meter.
fn market_genesis_text(market: &str, capacity: &str) -> Result<String, ChainError> {
    let tc = common::chain(3, 4, "market");
    let spec = format!(
        "name = \"market\"\ngenesis_time_s = 1767225600\nmint_rate_base_per_wh = 1000000\ntreasury = \"{}\"\ngrid = \"{}\"\n{market}\n{}",
        common::key(3, "treasury").public_hex(),
        common::key(3, "grid").public_hex(),
        (0..4)
            .map(|i| format!(
                "[[members]]\nname = \"m{i}\"\npublic_key = \"{}\"\nvalidator = true\n[[members.meters]]\npublic_key = \"{}\"\ndevice = \"pv\"\n{capacity}\n",
                tc.members[i].public_hex(),
                tc.meters[i].public_hex()
            ))
            .collect::<String>()
    );
    scg_chain::GenesisSpec::parse("spec", &spec)?
        .derive(&tc.operator)?
        .to_toml()
}

const MARKET: &str = "[market]\nepoch_s = 1767229200\ninterval_s = 3600\nmechanism = \"pay_as_clear\"\nmax_orders_per_member = 4\nsettle_window_s = 7200\n";

#[test]
fn a_market_genesis_opens_the_market_and_registers_capacities_in_block_1() {
    let text = market_genesis_text(MARKET, "capacity_w = 5000").unwrap();
    let g = Genesis::parse("g.toml", &text).unwrap();
    let (ledger, _) = g.initial_state().unwrap();
    let params = ledger.market().params.unwrap();
    assert_eq!((params.epoch_s, params.interval_s), (1_767_229_200, 3600));
    assert_eq!(g.market, Some(params));
    assert_eq!(ledger.market().capacities.len(), 4);
    assert!(ledger.market().capacities.values().all(|(_, w)| *w == 5000));
    // The market and the capacities are part of the chain id.
    let other = market_genesis_text(MARKET, "capacity_w = 5001").unwrap();
    assert_ne!(
        Genesis::parse("g.toml", &other).unwrap().chain_id,
        g.chain_id
    );
    let slower = market_genesis_text(&MARKET.replace("3600", "900"), "capacity_w = 5000").unwrap();
    assert_ne!(
        Genesis::parse("g.toml", &slower).unwrap().chain_id,
        g.chain_id
    );
    // Edited registrations (a capacity changed after derivation) are refused.
    let edited = text.replacen("capacity_w = 5000", "capacity_w = 9000", 1);
    let e = Genesis::parse("g.toml", &edited).unwrap_err().to_string();
    assert!(e.contains("chain_id"), "{e}");
}

#[test]
fn a_genesis_without_a_market_keeps_its_chain_id_and_bad_markets_name_the_field() {
    // No `[market]`: the chain id of the same spec as before markets existed (the fields are
    // simply absent from the hash), and block 1 opens no market.
    let text = genesis_text();
    assert!(!text.contains("market") && !text.contains("capacity_w"));
    let g = Genesis::parse("g.toml", &text).unwrap();
    assert!(g.market.is_none());
    assert!(g.initial_state().unwrap().0.market().params.is_none());
    let cases = [
        (
            market_genesis_text("", "capacity_w = 5000"),
            "members[0].meters[0].capacity_w",
        ),
        (
            market_genesis_text(MARKET, "capacity_w = 0"),
            "members[0].meters[0].capacity_w",
        ),
        (
            market_genesis_text(&MARKET.replace("pay_as_clear", "auction"), ""),
            "market.mechanism",
        ),
        (
            market_genesis_text(&MARKET.replace("interval_s = 3600", "interval_s = 0"), ""),
            "market.interval_s",
        ),
        (
            market_genesis_text(
                &format!("{MARKET}fee_milli_eur_per_mwh = 1\nfee_basis_points = 2\n"),
                "",
            ),
            "market.fee_basis_points",
        ),
    ];
    for (result, field) in cases {
        let e = result.unwrap_err().to_string();
        assert!(e.contains(field), "expected `{field}` in: {e}");
    }
}
