//! `scg chain`: keygen, genesis, and five node processes on loopback — transactions submitted
//! over HTTP, one node killed with SIGKILL mid-run and restarted; it catches up and every store
//! verifies with equal blocks (hence equal state roots) at equal heights.
#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn scg(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .output()
        .unwrap()
}

fn scratch(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scg-cli-chain-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn keygen(path: &Path) -> String {
    let out = scg(&["chain", "keygen", "--out", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One HTTP/1.1 request on loopback; returns (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split("\r\n\r\n").nth(1)?.to_string();
    Some((status, body))
}

fn status(addr: SocketAddr) -> Option<serde_json::Value> {
    let (code, body) = http(addr, "GET", "/status", "")?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

#[test]
fn keygen_refuses_overwrite_and_genesis_names_bad_fields() {
    let dir = scratch("keys");
    let k = dir.join("a.key");
    let pk = keygen(&k);
    assert_eq!(pk.len(), 64);
    let again = scg(&["chain", "keygen", "--out", k.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, format!("name = \"x\"\ngenesis_time_s = 1\nmint_rate_base_per_wh = 1\ntreasury = \"{pk}\"\ngrid = \"zz\"\nmembers = []\n")).unwrap();
    let out = scg(&[
        "chain",
        "genesis",
        "--spec",
        spec.to_str().unwrap(),
        "--operator-key",
        k.to_str().unwrap(),
        "--out",
        dir.join("g.toml").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("grid"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

struct Net {
    dir: PathBuf,
    genesis: PathBuf,
    p2p: Vec<SocketAddr>,
    http: Vec<SocketAddr>,
    pks: Vec<String>,
}

impl Net {
    fn spawn(&self, i: usize) -> Child {
        let peers: Vec<String> = (0..self.pks.len())
            .filter(|j| *j != i)
            .map(|j| format!("{}@{}", self.pks[j], self.p2p[j]))
            .collect();
        Command::new(env!("CARGO_BIN_EXE_scg"))
            .args([
                "chain",
                "run",
                "--genesis",
                self.genesis.to_str().unwrap(),
                "--key",
                self.dir.join(format!("m{i}.key")).to_str().unwrap(),
                "--dir",
                self.dir.join(format!("node{i}")).to_str().unwrap(),
                "--listen",
                &self.p2p[i].to_string(),
                "--http",
                &self.http[i].to_string(),
                "--peers",
                &peers.join(","),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

fn finalized(addr: SocketAddr) -> u64 {
    status(addr)
        .and_then(|s| s["finalized_height"].as_u64())
        .unwrap_or(0)
}

/// Wait (bounded) until `cond` holds.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn five_node_processes_survive_a_sigkill_and_agree() {
    let n = 5;
    let dir = scratch("net");
    let pks: Vec<String> = (0..n)
        .map(|i| keygen(&dir.join(format!("m{i}.key"))))
        .collect();
    let meters: Vec<String> = (0..n)
        .map(|i| keygen(&dir.join(format!("meter{i}.key"))))
        .collect();
    keygen(&dir.join("op.key"));
    let treasury = keygen(&dir.join("treasury.key"));
    let grid = keygen(&dir.join("grid.key"));
    let mut spec = format!(
        "name = \"loopback\"\ngenesis_time_s = 1767225600\nmint_rate_base_per_wh = 1000\ntreasury = \"{treasury}\"\ngrid = \"{grid}\"\n"
    );
    for i in 0..n {
        spec += &format!(
            "[[members]]\nname = \"m{i}\"\npublic_key = \"{}\"\nvalidator = true\n[[members.meters]]\npublic_key = \"{}\"\ndevice = \"pv\"\n",
            pks[i], meters[i]
        );
    }
    std::fs::write(dir.join("spec.toml"), spec).unwrap();
    let genesis = dir.join("genesis.toml");
    let out = scg(&[
        "chain",
        "genesis",
        "--spec",
        dir.join("spec.toml").to_str().unwrap(),
        "--operator-key",
        dir.join("op.key").to_str().unwrap(),
        "--out",
        genesis.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g = scg_chain::Genesis::read(&genesis).unwrap();
    let net = Net {
        dir: dir.clone(),
        genesis: genesis.clone(),
        p2p: (0..n).map(|_| free_addr()).collect(),
        http: (0..n).map(|_| free_addr()).collect(),
        pks,
    };
    let mut children: Vec<Child> = (0..n).map(|i| net.spawn(i)).collect();
    let meter_keys: Vec<scg_chain::MemberKey> = (0..n)
        .map(|i| scg_chain::MemberKey::read(&dir.join(format!("meter{i}.key"))).unwrap())
        .collect();
    let submit = |i: usize, interval: u64| {
        let tx = scg_ledger::Tx::sign(
            g.ledger.chain_id,
            &meter_keys[i].signing_key(),
            (u128::from(interval) << 32) | i as u128,
            interval,
            scg_ledger::TxBody::MeterReport {
                interval,
                produced_wh: 1000,
                consumed_wh: 10,
            },
        );
        http(net.http[i], "POST", "/tx", &scg_ledger::merkle::to_hex(&tx))
    };
    let result = (|| -> Result<(), String> {
        if !wait_until(Duration::from_secs(60), || {
            (0..n).all(|i| finalized(net.http[i]) >= 3)
        }) {
            return Err("the network did not finalize 3 blocks within 60 s".into());
        }
        // A non-member's transaction is refused with a reason.
        let outsider = scg_chain::MemberKey::from_seed([3; 32]);
        let bad = scg_ledger::Tx::sign(
            g.ledger.chain_id,
            &outsider.signing_key(),
            5,
            0,
            scg_ledger::TxBody::Burn { amount: 1 },
        );
        let (code, body) = http(
            net.http[0],
            "POST",
            "/tx",
            &scg_ledger::merkle::to_hex(&bad),
        )
        .ok_or("no answer")?;
        if code != 400 || !body.contains("not a member") {
            return Err(format!("non-member tx: {code} {body}"));
        }
        for interval in 0..10 {
            for i in 0..n {
                let (code, body) = submit(i, interval).ok_or("no answer to POST /tx")?;
                if code != 200 {
                    return Err(format!("tx refused: {body}"));
                }
            }
        }
        // SIGKILL node 4 mid-run, keep submitting, restart it.
        children[4].kill().map_err(|e| e.to_string())?;
        let _ = children[4].wait();
        for interval in 10..20 {
            for i in 0..4 {
                let _ = submit(i, interval);
            }
        }
        let target = (0..4).map(|i| finalized(net.http[i])).max().unwrap_or(0) + 2;
        if !wait_until(Duration::from_secs(60), || {
            (0..4).all(|i| finalized(net.http[i]) >= target)
        }) {
            return Err(format!("four nodes did not reach height {target}"));
        }
        children[4] = net.spawn(4);
        let target = (0..4).map(|i| finalized(net.http[i])).max().unwrap_or(0);
        if !wait_until(Duration::from_secs(90), || finalized(net.http[4]) >= target) {
            return Err(format!(
                "the restarted node did not catch up to {target} (at {})",
                finalized(net.http[4])
            ));
        }
        Ok(())
    })();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    result.unwrap();
    // Every store verifies; equal heights hold equal blocks (block hashes commit to roots).
    let mut by_height: std::collections::BTreeMap<u64, Vec<u8>> = std::collections::BTreeMap::new();
    for i in 0..n {
        let node = dir.join(format!("node{i}"));
        let out = scg(&[
            "chain",
            "verify",
            "--genesis",
            genesis.to_str().unwrap(),
            node.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "node {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let txs: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("transactions"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        // The first ten reports of the four meters that never went down were submitted well
        // before the kill and the waits; they are final on every node.
        assert!(txs >= 40, "node {i}: only {txs} transactions final");
        let (_, records) = scg_chain::store::read_only(&node).unwrap();
        for (h, bytes) in records {
            let rec = scg_chain::wire::Record::decode(&bytes, n).unwrap();
            let hash = rec.block.hash().to_vec();
            if let Some(prev) = by_height.insert(h, hash.clone()) {
                assert_eq!(prev, hash, "nodes differ at height {h}");
            }
        }
    }
    assert!(by_height.len() >= 3);
    std::fs::remove_dir_all(&dir).unwrap();
}
