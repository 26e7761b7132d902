//! Operating a committee: four `weft node run` processes with `--metrics-address` (and the
//! JSON-RPC ingress and an L1 poster on anvil, so that every part exports its metrics), each
//! serving `/metrics`, `/health` and `/ready`; every metric the Grafana dashboard
//! (`ops/grafana/weft.json`) queries is in a live scrape. An authority whose store fails
//! (injected with `WEFT_STORE_FAIL_AFTER_WRITES`) goes down as a whole: a non-zero exit and a
//! log line naming the actor and the cause, while the other three keep committing.

mod common;

use common::{authority_command, committee_new, PROCESS_DEADLINE};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use weft_l1_poster::anvil::DEV_KEYS;

/// `GET path` on `address`: the status code and the body.
fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Starts authority `i` with its metrics endpoint on a free port; its stdout lines go to
/// `tx` tagged with `i`.
fn start(
    dir: &Path,
    i: usize,
    l1: (&str, &str),
    env: &[(&str, &str)],
    tx: &mpsc::Sender<(usize, String)>,
) -> Child {
    let key = dir.join(format!("l1-key-{i}"));
    std::fs::write(&key, DEV_KEYS[i]).unwrap();
    let key = key.to_str().unwrap().to_string();
    let args = [
        "node",
        "run",
        "--metrics-address",
        "127.0.0.1:0",
        "--rpc-address",
        "127.0.0.1:0",
        "--l1-rpc",
        l1.0,
        "--l1-inbox",
        l1.1,
        "--l1-key",
        &key,
    ];
    let mut command = authority_command(dir, i, &args, &format!("store-{i}"));
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("weft starts");
    let out = child.stdout.take().unwrap();
    let tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((i, line)).is_err() {
                break;
            }
        }
    });
    child
}

/// The processes of a test, killed when it ends, passed or not.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The metric names a Grafana dashboard's queries use.
fn dashboard_metrics(dashboard: &serde_json::Value) -> Vec<String> {
    let mut names = Vec::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for target in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
    {
        let expr = target["expr"].as_str().expect("expr");
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("weft_") {
                // Histograms are queried through their series.
                let base = word
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_sum")
                    .trim_end_matches("_count");
                names.push(base.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_serve_metrics_health_and_readiness_and_a_failed_store_brings_its_node_down() {
    let (anvil, inbox) = common::l1_with_inbox().await;
    let rpc = anvil.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    committee_new(d, 4);
    let (tx, rx) = mpsc::channel();
    // Authority 0's store fails after 300 writes: a few seconds into the run.
    let mut nodes = Processes(
        (0..4)
            .map(|i| {
                let env: &[(&str, &str)] = if i == 0 {
                    &[("WEFT_STORE_FAIL_AFTER_WRITES", "300")]
                } else {
                    &[]
                };
                start(d, i, (&rpc, &inbox), env, &tx)
            })
            .collect(),
    );

    let deadline = Instant::now() + PROCESS_DEADLINE;
    let mut addresses: Vec<Option<String>> = vec![None; 4];
    let mut fatal_line = None;
    let mut exit = None;
    while addresses[1..].iter().any(Option::is_none) || exit.is_none() {
        assert!(
            Instant::now() < deadline,
            "timed out: {addresses:?}, exit {exit:?}"
        );
        if let Ok((i, line)) = rx.recv_timeout(Duration::from_millis(100)) {
            if let Some(a) = line
                .split("address=")
                .nth(1)
                .filter(|_| line.contains("metrics server started"))
            {
                addresses[i] = Some(a.split_whitespace().next().unwrap().to_string());
            }
            if i == 0 && line.contains("fatal") {
                fatal_line = Some(line);
            }
        }
        if exit.is_none() {
            exit = nodes.0[0].try_wait().unwrap();
        }
    }
    let status = exit.unwrap();
    assert!(
        !status.success(),
        "a node whose store failed must exit with an error"
    );
    let line = fatal_line.expect("a log line naming the fatal cause");
    assert!(
        line.contains("stopped") || line.contains("panicked"),
        "the line names the actor: {line}"
    );

    let addresses: Vec<String> = addresses[1..].iter().map(|a| a.clone().unwrap()).collect();
    for a in &addresses {
        assert_eq!(get(a, "/health").0, 200, "{a} /health");
        assert_eq!(get(a, "/nowhere").0, 404);
    }
    // Three of four authorities still make rounds: each becomes ready.
    for a in &addresses {
        while get(a, "/ready").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "{a} never became ready: {}",
                get(a, "/ready").1
            );
            // Polling an external process, bounded by the deadline.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let (code, scrape) = get(&addresses[0], "/metrics");
    assert_eq!(code, 200);
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/grafana/weft.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let wanted = dashboard_metrics(&dashboard);
    assert!(wanted.len() >= 10, "the dashboard queries {wanted:?}");
    for name in &wanted {
        assert!(
            scrape.lines().any(|l| l.starts_with(name.as_str())),
            "the dashboard queries {name}, which a live scrape lacks"
        );
    }
    drop(nodes);
}
