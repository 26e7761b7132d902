//! A committee of `weft node run` processes with `--rpc-address` for the JSON-RPC tests
//! (`rpc.rs`, `rpc_crash.rs`, `rpc_cast.rs`): start, SIGKILL and restart one authority, stop
//! them all with SIGTERM, read their committed logs; and a small blocking JSON-RPC client.
//! Also the committee and process helpers every test of the `weft` binary uses.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// `weft committee new` for `n` authorities with one worker each, on free ports, in `dir`.
pub fn committee_new(dir: &Path, n: usize) {
    let base = weft_test_utils::free_base_port(n, 1);
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["committee", "new", "--authorities", &n.to_string()])
        .args([
            "--workers",
            "1",
            "--base-port",
            &base.to_string(),
            "--out-dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `weft <subcommand>` for authority `i` of the committee in `dir`, its store in `store`,
/// logging at INFO to a pipe.
pub fn authority(dir: &Path, i: usize, subcommand: &[&str], store: &str) -> Child {
    authority_command(dir, i, subcommand, store)
        .spawn()
        .expect("weft starts")
}

/// The command [`authority`] runs, to add to before spawning it.
pub fn authority_command(dir: &Path, i: usize, subcommand: &[&str], store: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .args(subcommand)
        .arg("--keys")
        .arg(dir.join(format!("keys-{i}.json")))
        .arg("--committee")
        .arg(dir.join("committee.json"))
        .arg("--parameters")
        .arg(dir.join("parameters.json"))
        .arg("--store")
        .arg(dir.join(store))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// How long the tests wait on the weft processes for anything (start, commit, stop).
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(120);

/// Four (or `n`) authorities with one worker each, each a `weft node run` process whose
/// stdout is read line by line. Killed when dropped if the test fails before [`Self::stop`].
pub struct Cluster {
    pub dir: tempfile::TempDir,
    nodes: Vec<Option<Child>>,
    /// `http://host:port` of each authority's JSON-RPC server (the latest run's).
    pub endpoints: Vec<String>,
    /// Each line of output with its authority and the run (of that authority) it came from.
    lines_tx: mpsc::Sender<(usize, usize, String)>,
    lines: mpsc::Receiver<(usize, usize, String)>,
    /// Runs started so far, per authority: lines of earlier runs are stale.
    runs: Vec<usize>,
    /// More arguments of authority `i`'s `weft node run`, if any.
    extra_args: Vec<Vec<String>>,
    /// Environment variables of authority `i`'s next runs.
    env: Vec<Vec<(String, String)>>,
}

impl Cluster {
    /// `weft committee new` for `n` authorities, short header and batch delays (so that
    /// acknowledged round trips take milliseconds), the rollups `chain_ids` and a rate limit
    /// no test reaches; starts every authority and waits for its RPC server.
    pub fn start(n: usize, chain_ids: &[u64]) -> Self {
        Self::start_with(n, chain_ids, |_, _| Vec::new())
    }

    /// [`Self::start`] with more arguments for each authority's `weft node run`: `extra(i,
    /// dir)` for authority `i`, `dir` the cluster's directory.
    pub fn start_with(
        n: usize,
        chain_ids: &[u64],
        extra: impl Fn(usize, &Path) -> Vec<String>,
    ) -> Self {
        Self::start_configured(n, chain_ids, extra, |_| {})
    }

    /// [`Self::start_with`], with `edit` applied to the parameters file first.
    pub fn start_configured(
        n: usize,
        chain_ids: &[u64],
        extra: impl Fn(usize, &Path) -> Vec<String>,
        edit: impl Fn(&mut Value),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        committee_new(dir.path(), n);
        let path = dir.path().join("parameters.json");
        let mut parameters: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        parameters["max_header_delay_ms"] = 50.into();
        parameters["max_batch_delay_ms"] = 20.into();
        parameters["rpc"]["chain_ids"] = json!(chain_ids);
        parameters["rpc"]["rate_limit_per_connection"] = 100_000.into();
        edit(&mut parameters);
        std::fs::write(&path, parameters.to_string()).unwrap();

        let (lines_tx, lines) = mpsc::channel();
        let extra_args = (0..n).map(|i| extra(i, dir.path())).collect();
        let mut cluster = Cluster {
            extra_args,
            env: vec![Vec::new(); n],
            runs: vec![0; n],
            dir,
            nodes: (0..n).map(|_| None).collect(),
            endpoints: vec![String::new(); n],
            lines_tx,
            lines,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster.wait_endpoints(&(0..n).collect::<Vec<_>>());
        cluster
    }

    /// Starts authority `i` (again) from its store, with the same arguments every time.
    fn spawn(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "authority {i} is running");
        let dir = self.dir.path();
        let store = format!("store-{i}");
        let args = [
            "node",
            "run",
            "--report-every",
            "1",
            "--rpc-address",
            "127.0.0.1:0",
        ];
        let mut args: Vec<&str> = args.to_vec();
        args.extend(self.extra_args[i].iter().map(String::as_str));
        let mut child = authority_command(dir, i, &args, &store)
            .envs(self.env[i].iter().map(|(k, v)| (k, v)))
            .spawn()
            .expect("weft starts");
        // Forward each line to the channel (unbounded), so the node never blocks on its pipe.
        let out = child.stdout.take().expect("piped");
        let tx = self.lines_tx.clone();
        self.runs[i] += 1;
        let run = self.runs[i];
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((i, run, line)).is_err() {
                    break;
                }
            }
        });
        self.nodes[i] = Some(child);
    }

    /// Reads the nodes' output until `done` holds for a line of an authority's current run
    /// (an earlier run's are skipped), for at most `PROCESS_DEADLINE`.
    fn wait_line(&self, what: &str, mut done: impl FnMut(usize, &str) -> bool) {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (i, run, line) = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
            if run == self.runs[i] && done(i, &line) {
                return;
            }
        }
    }

    /// Waits for the RPC servers of the authorities `which` and notes their addresses.
    fn wait_endpoints(&mut self, which: &[usize]) {
        let mut addresses: HashMap<usize, String> = HashMap::new();
        self.wait_line(&format!("the rpc servers of {which:?}"), |from, line| {
            if let Some(address) = rpc_address(line).filter(|_| which.contains(&from)) {
                addresses.insert(from, address);
            }
            addresses.len() == which.len()
        });
        for (i, address) in addresses {
            self.endpoints[i] = format!("http://{address}");
        }
    }

    /// Waits until authority `i` reports (`--report-every`) a round of at least `round`.
    pub fn wait_round(&self, i: usize, round: u64) {
        self.wait_line(&format!("authority {i} at round {round}"), |from, line| {
            let reported = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("round="))
                .and_then(|r| r.parse::<u64>().ok());
            from == i && line.contains("status") && reported.is_some_and(|r| r >= round)
        });
    }

    /// Restarts authority `i` from its store; returns once its RPC server is up.
    pub fn restart(&mut self, i: usize) -> &str {
        self.spawn(i);
        self.wait_endpoints(&[i]);
        &self.endpoints[i]
    }

    /// Sets the environment of authority `i`'s next runs.
    pub fn set_env(&mut self, i: usize, env: &[(&str, &str)]) {
        self.env[i] = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// Starts authority `i` from its store and waits until the process exits by itself.
    pub fn run_until_exit(&mut self, i: usize) -> std::process::ExitStatus {
        self.spawn(i);
        let mut child = self.nodes[i].take().expect("just started");
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("authority {i} did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` of authority `i` (`Child::kill` is SIGKILL on Unix), and reaps it.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.nodes[i].take().expect("authority is running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM to every authority; waits until each has flushed its store and exited cleanly.
    pub fn stop(&mut self) {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect();
        for i in &running {
            let pid = self.nodes[*i].as_ref().unwrap().id().to_string();
            let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            assert!(ok.success());
        }
        let mut flushed: Vec<usize> = Vec::new();
        self.wait_line("every node to flush its store", |i, line| {
            if line.contains("store flushed") && !flushed.contains(&i) {
                flushed.push(i);
            }
            running.iter().all(|r| flushed.contains(r))
        });
        for i in running {
            let status = self.nodes[i].take().unwrap().wait().unwrap();
            assert!(status.success(), "authority {i} exited with {status}");
        }
    }

    /// Authority `i`'s committed sequence (a stopped authority's store), as transaction
    /// hashes `0x…` with their chain ids, in order.
    pub fn committed(&self, i: usize) -> Vec<(String, u64)> {
        assert!(self.nodes[i].is_none(), "authority {i} is running");
        let store = weft_storage::Store::open(
            &self.dir.path().join(format!("store-{i}")),
            &weft_node::columns::all(),
        )
        .unwrap();
        let log = weft_node::CommittedLog::open(&store).unwrap();
        let mut sequence = Vec::new();
        for entry in log.read(0, usize::MAX).unwrap() {
            for tx in entry.transactions().unwrap() {
                if let Some((hash, chain)) = weft_rpc::hash_and_chain_id(&tx) {
                    sequence.push((format!("0x{}", hex::encode(hash)), chain));
                }
            }
        }
        sequence
    }

    /// Stops the committee and checks every store: each of `expected` (hash → chain id) is in
    /// authority `i`'s committed sequence exactly once under its chain, no transaction is
    /// there twice, and the authorities' sequences agree (one is a prefix of another).
    pub fn stop_and_check_stores(&mut self, expected: &HashMap<String, u64>) {
        self.stop();
        let sequences: Vec<Vec<(String, u64)>> =
            (0..self.nodes.len()).map(|i| self.committed(i)).collect();
        for (i, sequence) in sequences.iter().enumerate() {
            let mut seen: HashMap<&str, (u64, usize)> = HashMap::new();
            for (hash, chain) in sequence {
                let entry = seen.entry(hash).or_insert((*chain, 0));
                entry.1 += 1;
                assert_eq!(
                    entry.1, 1,
                    "authority {i}: transaction {hash} committed twice"
                );
            }
            for (hash, chain) in expected {
                assert_eq!(
                    seen.get(hash.as_str()),
                    Some(&(*chain, 1)),
                    "authority {i}: transaction {hash} must be committed once under chain {chain}"
                );
            }
            let n = sequence.len().min(sequences[0].len());
            assert!(
                sequence[..n] == sequences[0][..n],
                "authorities 0 and {i} committed different sequences"
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The address in a `rpc server started address=...` line.
fn rpc_address(line: &str) -> Option<String> {
    if !line.contains("rpc server started") {
        return None;
    }
    let rest = line.split("address=").nth(1)?;
    Some(rest.split_whitespace().next()?.to_string())
}

/// Sends the signed transactions `raws` of `chain` to `endpoint`, each acknowledged; returns
/// them as (hash, chain).
pub fn send_all(
    endpoint: &str,
    chain: u64,
    raws: impl IntoIterator<Item = Vec<u8>>,
) -> Vec<(String, u64)> {
    let mut client = RpcClient::new(endpoint);
    raws.into_iter()
        .map(|raw| (client.send_raw(chain, &raw).expect("acknowledged"), chain))
        .collect()
}

/// A blocking JSON-RPC client over one keep-alive HTTP/1.1 connection (reconnects after an
/// error), enough for tests that must see exactly what a node answered, and when it died.
pub struct RpcClient {
    address: String,
    stream: Option<BufReader<TcpStream>>,
}

impl RpcClient {
    /// `endpoint` is `http://host:port`.
    pub fn new(endpoint: &str) -> Self {
        let address = endpoint
            .strip_prefix("http://")
            .expect("an http:// endpoint")
            .trim_end_matches('/')
            .to_string();
        RpcClient {
            address,
            stream: None,
        }
    }

    /// Calls `method` under `/<chain_id>`: the result, or the JSON-RPC error or the transport
    /// failure as text.
    pub fn call(&mut self, chain_id: u64, method: &str, params: Value) -> Result<Value, String> {
        self.call_at(&format!("/{chain_id}"), method, params)
    }

    /// Calls `method` at the server's root path (an execution client's endpoint).
    pub fn call_root(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.call_at("/", method, params)
    }

    fn call_at(&mut self, path: &str, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let result = self.post(path, body.to_string().as_bytes());
        if result.is_err() {
            self.stream = None;
        }
        let answer: Value = serde_json::from_slice(&result?).map_err(|e| e.to_string())?;
        match answer.get("error") {
            Some(error) => Err(format!("JSON-RPC error {error}")),
            None => Ok(answer["result"].clone()),
        }
    }

    /// `eth_sendRawTransaction`: the hash the node answered.
    pub fn send_raw(&mut self, chain_id: u64, raw: &[u8]) -> Result<String, String> {
        let raw = format!("0x{}", hex::encode(raw));
        let hash = self.call(chain_id, "eth_sendRawTransaction", json!([raw]))?;
        hash.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("not a hash: {hash}"))
    }

    /// `weft_getTransactionPosition`: `(sub_dag_index, tx_index, chain_id)` once committed.
    pub fn position(&mut self, chain_id: u64, hash: &str) -> Option<(u64, u64, u64)> {
        let position = self
            .call(chain_id, "weft_getTransactionPosition", json!([hash]))
            .unwrap_or_else(|e| panic!("weft_getTransactionPosition({hash}): {e}"));
        if position.is_null() {
            return None;
        }
        let field = |name: &str| {
            position[name]
                .as_u64()
                .unwrap_or_else(|| panic!("{name} in {position}"))
        };
        Some((field("subDagIndex"), field("txIndex"), field("chainId")))
    }

    fn post(&mut self, path: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.address).map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            self.stream = Some(BufReader::new(stream));
        }
        let stream = self.stream.as_mut().unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.address,
            body.len()
        );
        let writer = stream.get_mut();
        writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(body))
            .map_err(|e| e.to_string())?;
        let mut status = String::new();
        let mut length = None;
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("connection closed".into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if status.is_empty() {
                status = line.to_string();
            } else if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.ok_or_else(|| format!("{status}: no content-length"))?;
        let mut body = vec![0; length];
        stream.read_exact(&mut body).map_err(|e| e.to_string())?;
        if !status.contains(" 200 ") {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(body)
    }
}

/// Polls `endpoint`'s `weft_getTransactionPosition` until every transaction of `expected`
/// (hash, chain id) is committed, or `PROCESS_DEADLINE` passes. Checks each is under its own
/// chain id at a position no other holds; returns the hashes still missing at the deadline.
pub fn wait_committed(endpoint: &str, expected: &[(String, u64)]) -> Vec<String> {
    let mut client = RpcClient::new(endpoint);
    let mut missing: Vec<&(String, u64)> = expected.iter().collect();
    let mut positions: HashMap<(u64, u64), &str> = HashMap::new();
    let deadline = Instant::now() + PROCESS_DEADLINE;
    while !missing.is_empty() && Instant::now() < deadline {
        missing.retain(|(hash, chain)| match client.position(*chain, hash) {
            None => true,
            Some((sub_dag, index, got)) => {
                assert_eq!(got, *chain, "{endpoint}: {hash} found under chain {got}");
                if let Some(other) = positions.insert((sub_dag, index), hash) {
                    panic!("{endpoint}: {other} and {hash} both at ({sub_dag}, {index})");
                }
                false
            }
        });
        if !missing.is_empty() {
            // Polling an external process, bounded by the deadline.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    missing.into_iter().map(|(hash, _)| hash.clone()).collect()
}

/// `cast` on PATH, else the npm global package ops/setup installs.
pub fn cast() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("cast"))
        .find(|path| path.is_file());
    let from_npm = || {
        let out = Command::new("npm").args(["root", "-g"]).output().ok()?;
        let root = String::from_utf8(out.stdout).ok()?;
        let path = PathBuf::from(root.trim()).join("@foundry-rs/cast-linux-amd64/bin/cast");
        path.is_file().then_some(path)
    };
    on_path.or_else(from_npm).unwrap_or_else(|| {
        panic!(
            "Foundry's cast is required and was not found on PATH nor in npm's global \
             @foundry-rs/cast-linux-amd64 (run ops/setup)"
        )
    })
}

/// Runs `cast args…`; its trimmed stdout, or a panic with its stderr.
pub fn run(cast: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(cast).args(args).output().expect("cast runs");
    assert!(
        out.status.success(),
        "cast {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Calls the inbox's `forceInclude(raw)` as a user (anvil's dev account 4); returns the L1
/// block it was mined in.
pub async fn force_include(rpc: &str, inbox: &str, raw: Vec<u8>) -> u64 {
    use alloy::sol_types::SolCall;
    use weft_l1_poster::inbox::Inbox;
    use weft_l1_poster::l1::{FeePolicy, Outgoing, Signer, L1};
    let inbox = inbox.parse().unwrap();
    let l1 = L1::new(rpc, inbox).unwrap();
    let user = Signer::new(&l1, weft_l1_poster::anvil::DEV_KEYS[4].parse().unwrap())
        .await
        .unwrap();
    let input = Inbox::forceIncludeCall {
        transaction: raw.into(),
    }
    .abi_encode();
    let call = Outgoing {
        to: Some(inbox),
        input: input.into(),
        sidecar: None,
    };
    let fees = l1.fees(&FeePolicy::default(), false).await.unwrap();
    let gas = user.estimate(&l1, &call, fees).await.unwrap();
    let nonce = user.nonce(&l1).await.unwrap();
    let hash = user.send(&l1, &call, nonce, gas, fees).await.unwrap();
    let receipt = l1.wait_receipt(hash).await.unwrap().expect("mined");
    receipt.block_number.unwrap()
}

/// A local L1: anvil, mining a block a second.
pub fn anvil() -> weft_l1_poster::anvil::Anvil {
    weft_l1_poster::anvil::Anvil::spawn(&["--block-time", "1"]).expect("anvil (run ops/setup)")
}

/// A running anvil, a fresh committee of `n` authorities in a temporary directory, and an
/// inbox deployed for that committee.
pub struct L1Committee {
    pub anvil: weft_l1_poster::anvil::Anvil,
    pub rpc: String,
    pub dir: tempfile::TempDir,
    pub inbox: String,
}

pub fn l1_committee(n: usize) -> L1Committee {
    let anvil = anvil();
    let rpc = anvil.endpoint();
    let dir = tempfile::tempdir().unwrap();
    committee_new(dir.path(), n);
    let inbox = deploy_inbox(&rpc, dir.path());
    L1Committee {
        anvil,
        rpc,
        dir,
        inbox,
    }
}

/// `weft l1 deploy` of an inbox bound to the committee of `dir` (paid by anvil's dev account
/// 5); returns the address it printed.
pub fn deploy_inbox(rpc: &str, dir: &Path) -> String {
    let key_file = dir.join("l1-deployer-key");
    weft_config::write_file(
        &key_file,
        weft_l1_poster::anvil::DEV_KEYS[5].as_bytes(),
        weft_config::SECRET_MODE,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["l1", "deploy", "--rpc", rpc, "--key"])
        .arg(&key_file)
        .arg("--committee")
        .arg(dir.join("committee.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "weft l1 deploy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inbox = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        inbox.parse::<alloy::primitives::Address>().is_ok(),
        "printed {inbox:?}"
    );
    inbox
}
