//! The Ethereum JSON-RPC ingress as a wallet library uses it: four `weft node run` processes
//! with `--rpc-address`, and `rpc/tests/web3_test.py` (web3.py + eth-account) signing and
//! sending 2,000 transfers over two chain ids to different authorities, checking every hash
//! and finding every transaction through `weft_getTransactionPosition`. Then the test reads
//! the four committed logs itself: each transaction is there exactly once, under its chain.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::Cluster;

const CHAIN_IDS: [u64; 2] = [1001, 1002];
const TRANSACTIONS: usize = 2_000;

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

#[test]
fn web3_transfers_over_two_chains_are_each_committed_once() {
    if let Err(e) = python_deps_present() {
        panic!("web3.py and eth-account are required (run ops/setup): {e}");
    }
    let mut cluster = Cluster::start(4, &CHAIN_IDS);

    let hashes = cluster.dir.path().join("hashes.txt");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpc/tests/web3_test.py");
    let started = Instant::now();
    let status = Command::new("python3")
        .arg(&script)
        .args(["--endpoints", &cluster.endpoints.join(",")])
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

    let expected: HashMap<String, u64> = std::fs::read_to_string(&hashes)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (hash, chain) = l.split_once(' ')?;
            Some((hash.to_string(), chain.parse().ok()?))
        })
        .collect();
    assert_eq!(expected.len(), TRANSACTIONS);
    cluster.stop_and_check_stores(&expected);
}
