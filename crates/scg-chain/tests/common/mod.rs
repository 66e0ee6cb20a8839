//! Test helpers: a genesis whose keys come from a seed (tests only; real chains use
//! `scg chain keygen`).
#![allow(dead_code, clippy::unwrap_used)]

pub mod market;

use scg_chain::genesis::{GenesisSpec, MemberSpec, MeterSpec};
use scg_chain::{Genesis, MemberKey};
use scg_ledger::merkle::sha256;

/// A key derived from a label and a seed.
pub fn key(seed: u64, label: &str) -> MemberKey {
    MemberKey::from_seed(sha256(&[
        b"scg-chain-test",
        &seed.to_le_bytes(),
        label.as_bytes(),
    ]))
}

/// Keys and genesis of a test chain with `n` validator members, each with one PV meter.
pub struct TestChain {
    pub genesis: Genesis,
    pub members: Vec<MemberKey>,
    pub meters: Vec<MemberKey>,
    pub operator: MemberKey,
}

pub fn chain(seed: u64, n: usize, name: &str) -> TestChain {
    let members: Vec<MemberKey> = (0..n).map(|i| key(seed, &format!("member{i}"))).collect();
    let meters: Vec<MemberKey> = (0..n).map(|i| key(seed, &format!("meter{i}"))).collect();
    let operator = key(seed, "operator");
    let spec = GenesisSpec {
        name: name.to_string(),
        genesis_time_s: 1_767_225_600,
        mint_rate_base_per_wh: 1_000_000,
        treasury_endowment_base: 1_000_000_000,
        treasury: key(seed, "treasury").public_hex(),
        grid: key(seed, "grid").public_hex(),
        market: None,
        members: members
            .iter()
            .zip(&meters)
            .enumerate()
            .map(|(i, (m, meter))| MemberSpec {
                name: format!("member{i}"),
                public_key: m.public_hex(),
                validator: true,
                meters: vec![MeterSpec {
                    public_key: meter.public_hex(),
                    device: "pv".into(),
                    capacity_w: None,
                }],
            })
            .collect(),
    };
    let file = spec.derive(&operator).unwrap();
    let text = file.to_toml().unwrap();
    let genesis = Genesis::parse("test genesis", &text).unwrap();
    TestChain {
        genesis,
        members,
        meters,
        operator,
    }
}

/// A meter report from meter `i` for `interval` (nonce = interval: one report per interval).
pub fn report(chain: &TestChain, i: usize, interval: u64) -> Vec<u8> {
    scg_ledger::Tx::sign(
        chain.genesis.ledger.chain_id,
        &chain.meters[i].signing_key(),
        (u128::from(interval) << 32) | i as u128,
        interval,
        scg_ledger::TxBody::MeterReport {
            interval,
            produced_wh: 1000 + interval,
            consumed_wh: 500,
        },
    )
}

/// A fresh scratch directory: on tmpfs (`/dev/shm`) when the machine has one, because every
/// finalization is a durable redb commit (an fsync), and dozens of simulated nodes fsyncing
/// to a shared disk made one seed take minutes of wall time; on tmpfs the same commits are
/// memory copies. The code path (durable commits) is the production one either way.
pub fn scratch(label: &str) -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let d = base.join(format!("scg-chain-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
