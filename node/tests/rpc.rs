//! The Ethereum JSON-RPC ingress as a wallet library uses it: four `weft node run` processes
//! with `--rpc-address`, and `rpc/tests/web3_test.py` (web3.py + eth-account) signing and
//! sending 2,000 transfers over two chain ids to different authorities, checking every hash
//! and finding every transaction through `weft_getTransactionPosition`. Then the test reads
//! the four committed logs itself: each transaction is there exactly once, under its chain.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHAIN_IDS: [u64; 2] = [1001, 1002];
const TRANSACTIONS: usize = 2_000;

/// The weft processes; killed if the test fails before it stops them.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn python_deps_present() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import web3, eth_account"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn start_node(dir: &Path, i: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "node",
            "run",
            "--report-every",
            "1",
            "--rpc-address",
            "127.0.0.1:0",
        ])
        .arg("--keys")
        .arg(dir.join(format!("keys-{i}.json")))
        .arg("--committee")
        .arg(dir.join("committee.json"))
        .arg("--parameters")
        .arg(dir.join("parameters.json"))
        .arg("--store")
        .arg(dir.join(format!("store-{i}")))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("weft starts")
}

/// Forwards each line a child prints to a channel, so the test can wait for a line.
fn lines(child: &mut Child, index: usize, tx: mpsc::Sender<(usize, String)>) {
    let out = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((index, line)).is_err() {
                break;
            }
        }
    });
}

/// The address in a `rpc server started address=...` line.
fn rpc_address(line: &str) -> Option<String> {
    if !line.contains("rpc server started") {
        return None;
    }
    let rest = line.split("address=").nth(1)?;
    Some(rest.split_whitespace().next()?.to_string())
}

#[test]
fn web3_transfers_over_two_chains_are_each_committed_once() {
    if let Err(e) = python_deps_present() {
        panic!("web3.py and eth-account are required (run ops/setup): {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let base = weft_test_utils::free_base_port(4, 1);
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["committee", "new", "--authorities", "4", "--workers", "1"])
        .args(["--base-port", &base.to_string(), "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Short delays so that 2,000 acknowledged round trips take seconds, and both rollups.
    let path = dir.path().join("parameters.json");
    let mut parameters: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    parameters["max_header_delay_ms"] = 50.into();
    parameters["max_batch_delay_ms"] = 20.into();
    parameters["rpc"]["chain_ids"] = serde_json::json!(CHAIN_IDS);
    parameters["rpc"]["rate_limit_per_connection"] = 100_000.into();
    std::fs::write(&path, parameters.to_string()).unwrap();

    let (tx, rx) = mpsc::channel();
    let mut nodes = Nodes((0..4).map(|i| start_node(dir.path(), i)).collect());
    for (i, n) in nodes.0.iter_mut().enumerate() {
        lines(n, i, tx.clone());
    }
    let mut endpoints: Vec<Option<String>> = vec![None; 4];
    while endpoints.iter().any(Option::is_none) {
        let (i, line) = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("nodes start their rpc servers");
        if let Some(address) = rpc_address(&line) {
            endpoints[i] = Some(format!("http://{address}"));
        }
    }
    let endpoints: Vec<String> = endpoints.into_iter().flatten().collect();
    // Keep draining the nodes' output so that they never block on a full pipe.
    let drain = std::thread::spawn(move || {
        let mut flushed = [false; 4];
        while !flushed.iter().all(|f| *f) {
            match rx.recv_timeout(Duration::from_secs(600)) {
                Ok((i, line)) if line.contains("store flushed") => flushed[i] = true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        true
    });

    let hashes = dir.path().join("hashes.txt");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpc/tests/web3_test.py");
    let started = Instant::now();
    let status = Command::new("python3")
        .arg(&script)
        .args(["--endpoints", &endpoints.join(",")])
        .args(["--chain-ids", &format!("{},{}", CHAIN_IDS[0], CHAIN_IDS[1])])
        .args([
            "--count",
            &TRANSACTIONS.to_string(),
            "--deadline",
            "300",
            "--out",
        ])
        .arg(&hashes)
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "web3_test.py failed after {:?}",
        started.elapsed()
    );

    for n in &nodes.0 {
        let ok = Command::new("kill")
            .args(["-TERM", &n.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    assert!(drain.join().unwrap(), "every node flushed its store");
    for n in nodes.0.iter_mut() {
        assert!(n.wait().unwrap().success());
    }

    let expected: HashMap<String, u64> = std::fs::read_to_string(&hashes)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (hash, chain) = l.split_once(' ')?;
            Some((hash.to_string(), chain.parse().ok()?))
        })
        .collect();
    assert_eq!(expected.len(), TRANSACTIONS);
    for i in 0..4 {
        let store = weft_storage::Store::open(&dir.path().join(format!("store-{i}"))).unwrap();
        let log = weft_node::CommittedLog::open(&store).unwrap();
        let mut seen: HashMap<String, (u64, usize)> = HashMap::new();
        for entry in log.read(0, usize::MAX).unwrap() {
            for tx in entry.transactions().unwrap() {
                if let Some((hash, chain)) = weft_rpc::hash_and_chain_id(&tx) {
                    let hash = format!("0x{}", hex::encode(hash));
                    seen.entry(hash).or_insert((chain, 0)).1 += 1;
                }
            }
        }
        for (hash, chain) in &expected {
            assert_eq!(
                seen.get(hash),
                Some(&(*chain, 1)),
                "authority {i}: transaction {hash} must be committed once under chain {chain}"
            );
        }
    }
}
