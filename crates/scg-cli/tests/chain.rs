//! `scg chain` end to end through the built binary: keygen and genesis (files, modes, errors),
//! and five node processes on loopback — transactions submitted over HTTP (`POST /tx`), one
//! node killed with SIGKILL mid-run and restarted; it catches up, and every store verifies
//! (`scg ledger verify DIR`) with equal blocks, hence equal state roots, at equal heights.
//!
//! The waits for progress are generous (this runs on a loaded 2-core machine) but bounded, so
//! the test ends within a few minutes whatever happens; nothing here asserts on speed.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
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

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn scratch(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scg-cli-chain-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn keygen(path: &Path) -> String {
    let out = scg(&["chain", "keygen", "--out", p(path)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One HTTP/1.1 request on loopback; returns (status, body), or `None` if the node does not
/// answer (not started yet, or killed).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

fn status(addr: SocketAddr) -> Option<serde_json::Value> {
    let (code, body) = http(addr, "GET", "/status", "")?;
    if code != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

fn finalized(addr: SocketAddr) -> u64 {
    status(addr)
        .and_then(|s| s["finalized_height"].as_u64())
        .unwrap_or(0)
}

/// Poll `cond` until it holds or `limit` passes.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

#[test]
fn keygen_makes_private_files_and_genesis_names_bad_fields() {
    let dir = scratch("keys");
    let k = dir.join("a.key");
    let pk = keygen(&k);
    assert_eq!(pk.len(), 64);
    assert!(pk.bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key file mode {mode:o}");
    }
    // Two keys from the OS's randomness differ.
    assert_ne!(keygen(&dir.join("b.key")), pk);
    let again = scg(&["chain", "keygen", "--out", p(&k)]);
    assert!(!again.status.success());
    assert!(
        stderr_of(&again).contains("already exists"),
        "{}",
        stderr_of(&again)
    );

    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        format!("name = \"x\"\ngenesis_time_s = 1\nmint_rate_base_per_wh = 1\ntreasury = \"{pk}\"\ngrid = \"zz\"\nmembers = []\n"),
    )
    .unwrap();
    let out = scg(&[
        "chain",
        "genesis",
        "--spec",
        p(&spec),
        "--operator-key",
        p(&k),
        "--out",
        p(&dir.join("g.toml")),
    ]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("spec.toml") && err.contains("grid"), "{err}");
    assert!(!dir.join("g.toml").exists());

    // A bad peer is refused before anything starts, naming the flag's value.
    let out = scg(&[
        "chain",
        "run",
        "--genesis",
        p(&dir.join("missing.toml")),
        "--key",
        p(&k),
        "--dir",
        p(&dir.join("node")),
        "--listen",
        "127.0.0.1:1",
        "--peers",
        "nothex@127.0.0.1:2",
    ]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("nothex"), "{}", stderr_of(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Five validators' files and addresses.
struct Net {
    dir: PathBuf,
    genesis: PathBuf,
    p2p: Vec<SocketAddr>,
    http: Vec<SocketAddr>,
    pks: Vec<String>,
}

impl Net {
    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}"))
    }

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
                p(&self.genesis),
                "--key",
                p(&self.dir.join(format!("m{i}.key"))),
                "--dir",
                p(&self.node_dir(i)),
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

/// Kills every node process when dropped, also when an assertion fails mid-test.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn make_net(dir: &Path, n: usize) -> Net {
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
        p(&dir.join("spec.toml")),
        "--operator-key",
        p(&dir.join("op.key")),
        "--out",
        p(&genesis),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("chain id"));
    Net {
        dir: dir.to_path_buf(),
        genesis,
        p2p: (0..n).map(|_| free_addr()).collect(),
        http: (0..n).map(|_| free_addr()).collect(),
        pks,
    }
}

#[test]
fn five_node_processes_survive_a_sigkill_and_agree() {
    let n = 5;
    let dir = scratch("net");
    let net = make_net(&dir, n);
    let g = scg_chain::Genesis::read(&net.genesis).unwrap();
    let mut procs = Procs((0..n).map(|i| net.spawn(i)).collect());
    let meter_keys: Vec<scg_chain::MemberKey> = (0..n)
        .map(|i| scg_chain::MemberKey::read(&dir.join(format!("meter{i}.key"))).unwrap())
        .collect();
    // Meter i reports interval k with nonce k (its nonces start at 0) to its own node i.
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

    assert!(
        wait_until(Duration::from_secs(180), || (0..n)
            .all(|i| finalized(net.http[i]) >= 3)),
        "the five nodes did not all finalize 3 blocks within 180 s"
    );
    let st = status(net.http[0]).unwrap();
    assert_eq!(st["chain_id"].as_str(), Some(g.chain_id_hex().as_str()));
    assert!(st["height"].as_u64().unwrap() >= st["finalized_height"].as_u64().unwrap());
    assert_eq!(st["state_root"].as_str().map(str::len), Some(64));
    assert!(st["peers"].is_u64());

    // A non-member's transaction is refused with the reason.
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
    .expect("node 0 answers");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not a member"), "{body}");

    for interval in 0..10 {
        for i in 0..n {
            let (code, body) = submit(i, interval).expect("POST /tx answered");
            assert_eq!(code, 200, "tx refused: {body}");
        }
    }
    // SIGKILL (std's Child::kill on Unix) node 4 mid-run, keep submitting to the others.
    procs.0[4].kill().unwrap();
    let _ = procs.0[4].wait();
    for interval in 10..20 {
        for i in 0..4 {
            let (code, body) = submit(i, interval).expect("POST /tx answered");
            assert_eq!(code, 200, "tx refused: {body}");
        }
    }
    let target = (0..4).map(|i| finalized(net.http[i])).max().unwrap() + 3;
    assert!(
        wait_until(Duration::from_secs(180), || (0..4)
            .all(|i| finalized(net.http[i]) >= target)),
        "the four remaining nodes did not reach height {target} within 180 s"
    );
    procs.0[4] = net.spawn(4);
    let target = (0..4).map(|i| finalized(net.http[i])).max().unwrap();
    assert!(
        wait_until(Duration::from_secs(240), || finalized(net.http[4])
            >= target),
        "the restarted node did not catch up to {target} within 240 s (at {})",
        finalized(net.http[4])
    );
    // Every report the nodes accepted becomes final (mempools drain), and all five nodes then
    // reach the same finalized height, so each store holds every final transaction.
    assert!(
        wait_until(Duration::from_secs(120), || (0..n)
            .all(
                |i| status(net.http[i]).is_some_and(|s| s["mempool"].as_u64() == Some(0))
            )),
        "mempools did not drain within 120 s"
    );
    let target = (0..n).map(|i| finalized(net.http[i])).max().unwrap();
    assert!(
        wait_until(Duration::from_secs(120), || (0..n)
            .all(|i| finalized(net.http[i]) >= target)),
        "the five nodes did not all reach height {target} within 120 s"
    );
    drop(procs);

    // Every store verifies read-only; equal heights hold equal blocks and state roots.
    let mut by_height: BTreeMap<u64, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
    let mut heights = Vec::new();
    let mut tx_counts = Vec::new();
    for i in 0..n {
        let node = net.node_dir(i);
        let out = scg(&["ledger", "verify", p(&node)]);
        assert!(out.status.success(), "node {i}: {}", stderr_of(&out));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no `{name}` in {text}"))
        };
        assert!(text.contains(&g.chain_id_hex()), "{text}");
        // 20 reports from each of the four meters whose node stayed up; meter 4's first ten
        // count only if node 4 gossiped them before it was killed.
        let txs = field("transactions ");
        assert!((80..=90).contains(&txs), "node {i}: {text}");
        tx_counts.push(txs);
        let finalized_height = field("finalized height ");
        heights.push(finalized_height);
        let (_, records) = scg_chain::store::read_only(&node).unwrap();
        assert_eq!(records.last().map(|r| r.0), Some(finalized_height));
        for (h, bytes) in records {
            let rec = scg_chain::wire::Record::decode(&bytes, n).unwrap();
            let entry = (
                rec.block.hash().to_vec(),
                rec.block.header.state_root.to_vec(),
            );
            if let Some(prev) = by_height.insert(h, entry.clone()) {
                assert_eq!(prev, entry, "node {i} differs at height {h}");
            }
        }
    }
    // The same verification against the genesis file the operator wrote.
    let out = scg(&[
        "ledger",
        "verify",
        "--genesis",
        p(&net.genesis),
        p(&net.node_dir(4)),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(heights.iter().all(|h| *h >= 3), "{heights:?}");
    assert!(
        tx_counts.iter().all(|c| *c == tx_counts[0]),
        "{tx_counts:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
