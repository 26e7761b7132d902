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
    try_get(address, path).unwrap_or_else(|e| panic!("GET {address}{path}: {e}"))
}

/// [`get`], or the I/O error (a process that is gone).
fn try_get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
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
    weft_config::write_file(&key, DEV_KEYS[i].as_bytes(), weft_config::SECRET_MODE).unwrap();
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
    let l1 = common::l1_committee(4);
    let (rpc, d, inbox) = (l1.rpc.clone(), l1.dir.path(), l1.inbox.clone());
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
    let mut health_seen: Vec<(u16, String)> = Vec::new();
    while addresses[1..].iter().any(Option::is_none) || exit.is_none() {
        assert!(
            Instant::now() < deadline,
            "timed out: {addresses:?}, exit {exit:?}"
        );
        if let Ok((i, line)) = rx.recv_timeout(Duration::from_millis(20)) {
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
        // While it runs, authority 0's /health: healthy, then failing before it exits.
        if let Some(a) = addresses[0].as_ref().filter(|_| exit.is_none()) {
            if let Ok((code, body)) = try_get(a, "/health") {
                health_seen.push((code, body));
            }
        }
    }
    assert_eq!(
        health_seen.first().map(|h| h.0),
        Some(200),
        "authority 0 was healthy at first"
    );
    let failing = health_seen.iter().find(|h| h.0 == 503);
    let failing = failing.expect("/health must fail before the process exits");
    assert!(
        failing.1.contains("stopped") || failing.1.contains("panicked"),
        "/health names the cause: {}",
        failing.1
    );
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

/// `name{labels} value` lines of a scrape: the sum of the series of `name` whose labels hold
/// every one of `labels` (`key="value"`).
fn metric(scrape: &str, name: &str, labels: &[&str]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|x| l.contains(x))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls until `done` holds for `what`, bounded by the processes' deadline.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROCESS_DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        // Polling external processes, bounded by the deadline.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends framed transactions to `address` until `stop`, ~100 a burst every 100 ms.
fn load(address: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let mut stream = loop {
        match TcpStream::connect(&address) {
            Ok(s) => break s,
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let mut id = 0u64;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        for _ in 0..100 {
            let mut tx = vec![7u8; 128];
            tx[..8].copy_from_slice(&id.to_be_bytes());
            id += 1;
            if stream.write_all(&(tx.len() as u32).to_be_bytes()).is_err()
                || stream.write_all(&tx).is_err()
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TLS handshake with a key that is not the committee's, to `address` (a primary that
/// expects `server_key`): refused.
fn stranger_handshake(address: &str, server_key: weft_types::PublicKey) {
    use rand::SeedableRng;
    let stranger = weft_types::KeyPair::generate(&mut rand::rngs::StdRng::seed_from_u64(99));
    let identity = weft_network::tls::TlsIdentity::new(&stranger).unwrap();
    let metrics = weft_network::NetworkMetrics::unregistered();
    let config = weft_network::tls::client_config(&identity, server_key, &metrics).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(config);
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            connector.connect(weft_network::tls::server_name(), tcp),
        )
        .await;
        // The server refuses the client's certificate; with TLS 1.3 the client may learn it
        // only on its first read.
        if let Ok(Ok(mut stream)) = result {
            use tokio::io::AsyncReadExt;
            let mut byte = [0u8; 1];
            assert!(
                !matches!(stream.read(&mut byte).await, Ok(n) if n > 0),
                "a stranger's link must not be served"
            );
        }
    });
}

#[test]
fn under_load_counters_move_rejections_count_and_a_cut_off_node_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    committee_new(d, 4);
    let committee = weft_config::load_committee(&d.join("committee.json")).unwrap();
    let (tx, rx) = mpsc::channel();
    let args = ["node", "run", "--metrics-address", "127.0.0.1:0"];
    let nodes = Processes(
        (0..4)
            .map(|i| {
                let mut child = authority_command(d, i, &args, &format!("store-{i}"))
                    .spawn()
                    .expect("weft starts");
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
            })
            .collect(),
    );
    let mut addresses: Vec<Option<String>> = vec![None; 4];
    let deadline = Instant::now() + PROCESS_DEADLINE;
    while addresses.iter().any(Option::is_none) {
        let (i, line) = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("every node logs its metrics address");
        if line.contains("metrics server started") {
            let a = line.split("address=").nth(1).unwrap();
            addresses[i] = Some(a.split_whitespace().next().unwrap().to_string());
        }
    }
    let addresses: Vec<String> = addresses.into_iter().map(Option::unwrap).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loaders: Vec<_> = committee
        .authorities()
        .map(|(_, a)| {
            let address = a.transaction_addresses[&0].to_string();
            let stop = stop.clone();
            std::thread::spawn(move || load(address, stop))
        })
        .collect();

    for a in &addresses {
        wait_for(&format!("{a} ready"), || get(a, "/ready").0 == 200);
    }
    // Under load, what every process counts moves between two scrapes.
    let first: Vec<String> = addresses.iter().map(|a| get(a, "/metrics").1).collect();
    let moved = |name: &str, i: usize, scrape: &str| {
        metric(scrape, name, &[]) > metric(&first[i], name, &[])
    };
    for (i, a) in addresses.iter().enumerate() {
        wait_for(&format!("{a}: commits"), || {
            let now = get(a, "/metrics").1;
            [
                "weft_node_committed_log_index",
                "weft_node_transactions_committed_total",
            ]
            .iter()
            .all(|m| moved(m, i, &now))
        });
        let now = get(a, "/metrics").1;
        for name in [
            "weft_primary_certificates_formed_total",
            "weft_primary_headers_proposed_total",
            "weft_primary_round",
            "weft_worker_transactions_received_total",
        ] {
            assert!(moved(name, i, &now), "{a}: {name} did not move under load");
        }
    }

    // The committee lists authorities in its own order, not the key files': count over all.
    let total = |name: &str, labels: &[&str]| -> f64 {
        addresses
            .iter()
            .map(|a| metric(&get(a, "/metrics").1, name, labels))
            .sum()
    };
    // Malformed client frames at a worker are counted by reason.
    let worker = committee
        .authorities()
        .nth(1)
        .unwrap()
        .1
        .transaction_addresses[&0];
    let mut client = TcpStream::connect(worker).unwrap();
    client.write_all(&0u32.to_be_bytes()).unwrap();
    let mut client = TcpStream::connect(worker).unwrap();
    client.write_all(&u32::MAX.to_be_bytes()).unwrap();
    wait_for("the worker's rejections", || {
        ["reason=\"empty\"", "reason=\"too_large\""]
            .iter()
            .all(|r| total("weft_worker_transactions_rejected_total", &[r]) >= 1.0)
    });
    // A stranger's TLS handshake at a primary is refused and counted.
    let primary = committee.authorities().nth(2).unwrap().1;
    stranger_handshake(
        &primary.primary_address.to_string(),
        primary.network_key.clone(),
    );
    wait_for("the refused handshake", || {
        total(
            "weft_network_handshakes_refused_total",
            &["direction=\"inbound\""],
        ) >= 1.0
    });

    // Cut authority 0 off from its peers (they are stopped): it is no longer ready; once they
    // are back, it is again.
    let signal = |sig: &str| {
        for child in &nodes.0[1..] {
            let ok = std::process::Command::new("kill")
                .args([sig, &child.id().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
    };
    signal("-STOP");
    wait_for("node 0 to turn unready", || {
        get(&addresses[0], "/ready").0 == 503
    });
    signal("-CONT");
    wait_for("node 0 to be ready again", || {
        get(&addresses[0], "/ready").0 == 200
    });

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for l in loaders {
        let _ = l.join();
    }
    drop(nodes);
}
