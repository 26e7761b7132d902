//! Rollups on weft, end to end: four `weft node run` processes posting to an inbox on a real
//! anvil L1, and per chain id two `weft rollup run` nodes, each on its own anvil: one follows
//! the ordered stream (failing over between authorities), one derives from the L1 inbox alone.
//!
//! - `rollup/tests/rollup_test.py` (web3.py + eth-account) sends 2,000 transfers over chains
//!   1001 and 1002 through the authorities' JSON-RPC ingress; every receipt is on its chain's
//!   stream-fed node, in the committed order (block = sub-DAG index + 1), with the balances the
//!   transfers imply. Then the authority chain 1001's node follows is killed, and 100 more
//!   transfers go with Foundry's `cast` (`mktx`, `publish`, `receipt`) to the other three.
//! - The L1-derived nodes reach the same block hashes and state roots as the stream-fed ones.
//! - With every authority ignoring the inbox (`--l1-ignore-forced`), a transaction forced
//!   through it is still executed by the L1-derived node, first in its block, after W blocks.

mod common;

use common::{anvil, cast, deploy_inbox, force_include, run, Cluster, RpcClient, PROCESS_DEADLINE};
use serde_json::{json, Value};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use weft_l1_poster::anvil::{Anvil, DEV_KEYS};

const CHAIN_IDS: [u64; 2] = [1001, 1002];
const TRANSACTIONS: usize = 2_000;
/// Python's accounts per chain: one transaction each.
const PY_ACCOUNTS: usize = TRANSACTIONS / CHAIN_IDS.len();
/// cast's accounts per chain, after Python's in the genesis.
const CAST_ACCOUNTS: usize = 50;
const CAST_RECIPIENT: &str = "0x4545454545454545454545454545454545454545";
/// The forced-inclusion window W, in L1 blocks (anvil mines one a second here).
const W: u64 = 3;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rollup/tests/rollup_test.py")
}

/// The test key scheme of `rollup_test.py`, for the accounts cast signs with.
fn key(chain_id: u64, account: usize) -> String {
    let mut seed = b"weft-rollup-test-".to_vec();
    seed.extend_from_slice(&chain_id.to_be_bytes());
    seed.extend_from_slice(&(account as u32).to_be_bytes());
    format!("{}", alloy::primitives::keccak256(&seed))
}

/// Four authorities posting to an inbox deployed for their committee, with `more` arguments
/// each; and the inbox's address.
fn cluster(rpc: &str, more: &[&str]) -> (Cluster, String) {
    let inbox = std::cell::OnceCell::new();
    let cluster = Cluster::start_with(4, &CHAIN_IDS, |i, dir| {
        let inbox: &String = inbox.get_or_init(|| deploy_inbox(rpc, dir));
        let key_file = dir.join(format!("l1-key-{i}"));
        weft_config::write_file(&key_file, DEV_KEYS[i].as_bytes(), weft_config::SECRET_MODE)
            .unwrap();
        let mut args: Vec<String> = ["--l1-rpc", rpc, "--l1-inbox", inbox, "--l1-key"]
            .map(String::from)
            .to_vec();
        args.push(key_file.to_str().unwrap().to_string());
        args.extend(["--l1-takeover-blocks", "5"].map(String::from));
        args.extend(more.iter().map(|s| s.to_string()));
        args
    });
    let inbox = inbox.into_inner().expect("deployed for authority 0");
    (cluster, inbox)
}

/// A chain's genesis, written by the Python client's key scheme.
fn genesis(dir: &Path, chain_id: u64) -> String {
    let path = dir.join(format!("genesis-{chain_id}.json"));
    let accounts = (PY_ACCOUNTS + CAST_ACCOUNTS).to_string();
    let status = Command::new("python3")
        .arg(script())
        .args(["genesis", "--chain-id", &chain_id.to_string()])
        .args(["--accounts", &accounts, "--out"])
        .arg(&path)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "writing the genesis of {chain_id}");
    path.to_str().unwrap().to_string()
}

/// An execution client for a rollup node: blocks only when the node builds them.
fn engine(genesis: &str) -> Anvil {
    Anvil::spawn(&["--no-mining", "--order", "fifo", "--init", genesis]).expect("anvil")
}

/// A `weft rollup run` process, its log in `dir`; killed when dropped.
struct RollupProcess {
    child: Child,
    log: PathBuf,
}

impl RollupProcess {
    fn start(dir: &Path, name: &str, args: &[String]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["rollup", "run"])
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("WEFT_ROLLUP_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("weft starts");
        Self { child, log }
    }

    /// Fails the test with the log's tail if the node has exited.
    fn check_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!("rollup node exited with {status}: …\n{}", tail.join("\n"));
        }
    }
}

impl Drop for RollupProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stream_node(dir: &Path, chain: u64, engine: &Anvil, endpoints: &[String]) -> RollupProcess {
    let mut args = vec!["--chain-id".to_string(), chain.to_string()];
    args.extend(["--engine".to_string(), engine.endpoint()]);
    // Each chain's node starts on another authority and fails over in turn.
    for k in 0..endpoints.len() {
        let e = &endpoints[(k + chain as usize) % endpoints.len()];
        args.extend(["--stream".to_string(), e.replacen("http://", "ws://", 1)]);
    }
    RollupProcess::start(dir, &format!("stream-{chain}"), &args)
}

fn l1_node(dir: &Path, chain: u64, engine: &Anvil, rpc: &str, inbox: &str) -> RollupProcess {
    let args = [
        "--chain-id",
        &chain.to_string(),
        "--engine",
        &engine.endpoint(),
        "--l1-rpc",
        rpc,
        "--l1-inbox",
        inbox,
        "--forced-window-blocks",
        &W.to_string(),
        "--l1-poll-ms",
        "200",
    ]
    .map(String::from);
    RollupProcess::start(dir, &format!("l1-{chain}"), &args)
}

/// `(hash, stateRoot)` of block `n` of the execution client at `endpoint`.
fn block(client: &mut RpcClient, n: u64) -> (String, String) {
    let b = client
        .call_root("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]))
        .unwrap();
    (
        b["hash"].as_str().unwrap().to_string(),
        b["stateRoot"].as_str().unwrap().to_string(),
    )
}

/// An Ethereum JSON-RPC quantity (`"0x…"`).
fn quantity(value: &Value) -> u64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a quantity: {value}"));
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

fn head(client: &mut RpcClient) -> u64 {
    quantity(&client.call_root("eth_blockNumber", json!([])).unwrap())
}

/// Polls `done` every 200 ms until it holds, checking the rollup nodes stay up.
fn wait_until(what: &str, nodes: &mut [&mut RollupProcess], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROCESS_DEADLINE;
    while !done() {
        for n in nodes.iter_mut() {
            n.check_running();
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        // Polling external processes, bounded by the deadline.
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// When each block of the stream-fed node of `chain` was built (ms since the UNIX epoch),
/// from its log's `rollup block` lines.
fn built_at(dir: &Path, chain: u64) -> std::collections::HashMap<u64, u64> {
    let log = std::fs::read_to_string(dir.join(format!("stream-{chain}.log"))).unwrap();
    let field = |line: &str, name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
    };
    log.lines()
        .filter(|l| l.contains("rollup block"))
        .filter_map(|l| Some((field(l, "number=")?, field(l, "at_ms=")?)))
        .collect()
}

/// Prints the latency from `send_raw_transaction` to the receipt's block being built on the
/// stream-fed rollup node (median, p99), from the client's send times and the node's log.
fn print_latency(dir: &Path, summary: &Value) {
    let blocks: std::collections::HashMap<u64, _> =
        CHAIN_IDS.iter().map(|c| (*c, built_at(dir, *c))).collect();
    let mut latencies: Vec<f64> = summary["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let (chain, sent, number) = (
                t[1].as_u64().unwrap(),
                t[2].as_f64().unwrap(),
                t[3].as_u64().unwrap(),
            );
            let built = blocks[&chain][&number] as f64;
            built - sent * 1000.0
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "rollup: send_raw_transaction -> receipt on the rollup node, ms: median {:.0}, p99 {:.0}, max {:.0} ({} transactions)",
        at(0.5),
        at(0.99),
        at(1.0),
        latencies.len()
    );
}

/// A transfer of `value` wei to `CAST_RECIPIENT` from test account `account` of `chain`
/// (nonce 0), signed offline with `cast mktx`.
fn mktx(cast: &Path, chain: u64, account: usize, value: u64) -> String {
    let (key, chain, value) = (key(chain, account), chain.to_string(), value.to_string());
    let mut args = vec![
        "mktx",
        "--private-key",
        &key,
        "--chain",
        &chain,
        "--nonce",
        "0",
    ];
    args.extend(["--gas-limit", "21000", "--gas-price", "100000000000"]);
    args.extend([
        "--priority-gas-price",
        "1000000000",
        CAST_RECIPIENT,
        "--value",
        &value,
    ]);
    run(&cast.to_path_buf(), &args)
}

/// 50 transfers per chain signed with `cast mktx` and sent with `cast publish` to the
/// authorities in turn; each receipt read back with `cast receipt` from the chain's rollup
/// node must be successful and in block `sub-DAG index + 1`; the recipient's balance is the
/// sum sent. Returns the highest block holding one.
fn cast_client(endpoints: &[String], engines: &[(u64, String)]) -> u64 {
    let cast = cast();
    let mut sent = Vec::new();
    for (k, (chain, _)) in engines.iter().enumerate() {
        for a in 0..CAST_ACCOUNTS {
            let raw = mktx(&cast, *chain, PY_ACCOUNTS + a, a as u64 + 1);
            let url = format!("{}/{chain}", endpoints[(a + k) % endpoints.len()]);
            let hash = run(&cast, &["publish", "--async", "--rpc-url", &url, &raw]);
            sent.push((*chain, hash, a as u64 + 1));
        }
    }
    let mut weft = RpcClient::new(&endpoints[0]);
    let mut last_block = 0;
    for (chain, hash, _) in &sent {
        let engine = &engines.iter().find(|(c, _)| c == chain).unwrap().1;
        let receipt: Value = serde_json::from_str(&run(
            &cast,
            &["receipt", "--rpc-url", engine, hash, "--json"],
        ))
        .unwrap();
        assert_eq!(receipt["status"], "0x1", "{hash} failed on rollup {chain}");
        let number = quantity(&receipt["blockNumber"]);
        let (sub_dag, _, got_chain) = weft.position(*chain, hash).expect("committed");
        assert_eq!(got_chain, *chain);
        assert_eq!(number, sub_dag + 1, "{hash}: block of sub-DAG {sub_dag}");
        last_block = last_block.max(number);
    }
    for (chain, engine) in engines {
        let expected: u64 = sent.iter().filter(|s| s.0 == *chain).map(|s| s.2).sum();
        let balance = run(&cast, &["balance", "--rpc-url", engine, CAST_RECIPIENT]);
        assert_eq!(balance, expected.to_string(), "cast recipient on {chain}");
    }
    println!("rollup: cast: {} receipts on the rollup nodes", sent.len());
    last_block
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_nodes_execute_the_order_and_l1_alone_rebuilds_the_same_chains() {
    let anvil = anvil();
    let rpc = anvil.endpoint();
    let (mut cluster, inbox) = cluster(&rpc, &[]);
    let dir = cluster.dir.path().to_path_buf();
    let endpoints = cluster.endpoints.clone();

    let mut live_engines = Vec::new();
    let mut l1_engines = Vec::new();
    let mut nodes = Vec::new();
    for chain in CHAIN_IDS {
        let genesis = genesis(&dir, chain);
        let (live, derived) = (engine(&genesis), engine(&genesis));
        nodes.push(stream_node(&dir, chain, &live, &endpoints));
        nodes.push(l1_node(&dir, chain, &derived, &rpc, &inbox));
        live_engines.push((chain, live));
        l1_engines.push((chain, derived));
    }
    let engines: Vec<(u64, String)> = live_engines
        .iter()
        .map(|(c, a)| (*c, a.endpoint()))
        .collect();

    let summary = dir.join("summary.json");
    let chains: Vec<String> = engines.iter().map(|(c, e)| format!("{c}={e}")).collect();
    let started = Instant::now();
    let status = Command::new("python3")
        .arg(script())
        .args(["run", "--endpoints", &endpoints.join(",")])
        .args(["--chains", &chains.join(",")])
        .args(["--count", &TRANSACTIONS.to_string()])
        .args(["--accounts", &PY_ACCOUNTS.to_string()])
        .args(["--deadline", "300", "--out"])
        .arg(&summary)
        .status()
        .expect("python3 runs");
    for n in &mut nodes {
        n.check_running();
    }
    assert!(
        status.success(),
        "rollup_test.py failed after {:?}",
        started.elapsed()
    );
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let mut last_block = CHAIN_IDS.map(|c| {
        summary["chains"][c.to_string()]["last_block"]
            .as_u64()
            .unwrap()
    });
    print_latency(&dir, &summary);
    // The authority chain 1001's node follows goes (kill -9): the node fails over, and the
    // cast client uses the other three.
    let followed = (CHAIN_IDS[0] as usize) % endpoints.len();
    cluster.kill(followed);
    let mut others = endpoints.clone();
    others.remove(followed);
    let cast_last = cast_client(&others, &engines);
    for b in &mut last_block {
        *b = (*b).max(cast_last);
    }

    // Every block the L1-derived nodes have is the stream-fed node's, once they hold every
    // transaction sent (the sub-DAGs after the last one are posted with the next batch).
    for (k, chain) in CHAIN_IDS.iter().enumerate() {
        let mut live = RpcClient::new(&live_engines[k].1.endpoint());
        let mut derived = RpcClient::new(&l1_engines[k].1.endpoint());
        let (first, rest) = nodes.split_at_mut(1);
        wait_until(
            &format!(
                "the L1-derived node of {chain} to reach block {}",
                last_block[k]
            ),
            &mut [&mut first[0], &mut rest[0]],
            || head(&mut derived) >= last_block[k],
        );
        let top = head(&mut derived).min(head(&mut live));
        for n in 1..=top {
            assert_eq!(
                block(&mut derived, n),
                block(&mut live, n),
                "chain {chain}: block {n} derived from L1 differs from the stream's"
            );
        }
        if k == 0 {
            let log = std::fs::read_to_string(dir.join(format!("stream-{chain}.log"))).unwrap();
            assert!(
                log.contains("failing over"),
                "the node of {chain} was to lose its authority"
            );
        }
        println!("rollup: chain {chain}: blocks 1..={top} agree (hash and state root) between the stream-fed and the L1-derived node");
        nodes.drain(..2);
        if std::env::var_os("WEFT_KEEP_LOGS").is_some() {
            let _ = std::fs::copy(
                dir.join(format!("stream-{chain}.log")),
                format!("/tmp/stream-{chain}.log"),
            );
        }
    }
    drop(nodes);
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committee_that_ignores_the_inbox_cannot_keep_a_forced_transaction_out() {
    let anvil = anvil();
    let rpc = anvil.endpoint();
    let (mut cluster, inbox) = cluster(&rpc, &["--l1-ignore-forced"]);
    let dir = cluster.dir.path().to_path_buf();
    let chain = CHAIN_IDS[0];
    let derived = engine(&genesis(&dir, chain));
    let mut node = l1_node(&dir, chain, &derived, &rpc, &inbox);

    let cast = cast();
    let mktx = |account: usize| mktx(&cast, chain, account, 7);
    let forced = mktx(0);
    let forced_hash = run(&cast, &["keccak", &forced]);
    let forced_at = force_include(&rpc, &inbox, hex::decode(&forced[2..]).unwrap()).await;

    // The committee keeps ordering (and posting) other transactions meanwhile.
    let mut ingress = RpcClient::new(&cluster.endpoints[1]);
    let mut l2 = RpcClient::new(&derived.endpoint());
    let mut account = 1;
    let mut receipt = Value::Null;
    wait_until(
        "the forced transaction on the L1-derived rollup",
        &mut [&mut node],
        || {
            let raw = mktx(account);
            account += 1;
            ingress
                .send_raw(chain, &hex::decode(&raw[2..]).unwrap())
                .unwrap();
            receipt = l2
                .call_root("eth_getTransactionReceipt", json!([forced_hash]))
                .unwrap();
            !receipt.is_null()
        },
    );
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(
        receipt["transactionIndex"], "0x0",
        "forced transactions go first"
    );
    for endpoint in &cluster.endpoints {
        assert_eq!(
            RpcClient::new(endpoint).position(chain, &forced_hash),
            None,
            "{endpoint}: the committee was to ignore the inbox, yet ordered it"
        );
    }
    let number = quantity(&receipt["blockNumber"]);
    println!(
        "rollup: forced at L1 block {forced_at}, ignored by every authority, executed in L2 \
         block {number} after {account} committee transactions"
    );
    drop(node);
    cluster.stop();
}
