//! The `weft` binary as an operator uses it: generate a committee, run four authorities that
//! authenticate each other over mutual TLS, stop them with SIGTERM; and bad input is refused
//! with an error that names the problem.

mod common;

use common::{authority, committee_new};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::time::Duration;

fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .output()
        .expect("weft runs")
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

fn start_node(dir: &Path, i: usize) -> Child {
    // Authority 0's worker runs as its own process.
    let external: &[&str] = if i == 0 { &["--external-workers"] } else { &[] };
    let args = [&["node", "run", "--report-every", "1"], external].concat();
    authority(dir, i, &args, &format!("store-{i}"))
}

fn start_worker(dir: &Path, i: usize) -> Child {
    authority(
        dir,
        i,
        &["worker", "run", "--id", "0"],
        &format!("worker-store-{i}"),
    )
}

/// Sends `count` distinct 100-byte transactions to authority `i`'s worker 0.
fn send_transactions(dir: &Path, i: usize, count: u64) {
    use std::io::Write;
    let committee: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("committee.json")).unwrap())
            .unwrap();
    let address = committee["authorities"][i]["transaction_addresses"]["0"]
        .as_str()
        .unwrap()
        .to_string();
    let mut stream = (0..600)
        .find_map(|_| {
            std::net::TcpStream::connect(&address).ok().or_else(|| {
                std::thread::sleep(Duration::from_millis(100));
                None
            })
        })
        .expect("the worker accepts clients");
    for id in 0..count {
        let mut tx = vec![1u8; 100];
        tx[1..9].copy_from_slice(&id.to_be_bytes());
        stream.write_all(&(tx.len() as u32).to_be_bytes()).unwrap();
        stream.write_all(&tx).unwrap();
    }
    stream.flush().unwrap();
}

/// The transaction count of a `Committed sub-dag` log line.
fn committed_transactions(line: &str) -> Option<u64> {
    line.contains("Committed sub-dag")
        .then(|| line.rsplit("transactions ").next()?.trim().parse().ok())
        .flatten()
}

#[test]
fn local_committee_with_an_external_worker_commits_and_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    committee_new(dir.path(), 4);

    let (tx, rx) = mpsc::channel();
    let mut nodes: Vec<Child> = (0..4).map(|i| start_node(dir.path(), i)).collect();
    nodes.push(start_worker(dir.path(), 0));
    for (i, n) in nodes.iter_mut().enumerate() {
        lines(n, i, tx.clone());
    }
    // Every node reports that consensus committed sub-DAGs: the four authenticated each
    // other, built the DAG together and ordered it.
    send_transactions(dir.path(), 0, 500);
    let mut committing = [false; 4];
    // Authority 0 reads the batches of its external worker over the network.
    let mut external_batches_committed = 0;
    while !committing.iter().all(|c| *c) || external_batches_committed < 500 {
        let (i, line) = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("nodes keep logging");
        let committed = line
            .split("committed_sub_dags=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok());
        if line.contains("status") && committed.is_some_and(|n| n > 0) {
            committing[i] = true;
        }
        if i == 0 {
            external_batches_committed += committed_transactions(&line).unwrap_or(0);
        }
    }
    assert_eq!(external_batches_committed, 500);
    for n in &nodes {
        let ok = Command::new("kill")
            .args(["-TERM", &n.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let mut flushed = [false; 5];
    while !flushed.iter().all(|f| *f) {
        let (i, line) = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("nodes log their shutdown");
        if line.contains("store flushed") {
            flushed[i] = true;
        }
    }
    for n in nodes.iter_mut() {
        assert!(n.wait().unwrap().success());
    }
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(weft(&[
        "committee",
        "new",
        "--authorities",
        "4",
        "--base-port",
        "30000",
        "--out-dir",
        d
    ])
    .status
    .success());

    // A committee file with a bad stake: the error names the file and the field.
    let c = dir.path().join("committee.json");
    let text = std::fs::read_to_string(&c)
        .unwrap()
        .replacen("\"stake\": 1", "\"stake\": 0", 1);
    std::fs::write(&c, text).unwrap();
    let out = weft(&[
        "node",
        "run",
        "--keys",
        &format!("{d}/keys-0.json"),
        "--committee",
        c.to_str().unwrap(),
        "--store",
        &format!("{d}/store"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("committee.json") && err.contains("authorities[0].stake"),
        "{err}"
    );

    // Key files are never overwritten.
    let k = format!("{d}/keys-1.json");
    let before = std::fs::read(&k).unwrap();
    let out = weft(&["keys", "generate", "--out", &k]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&k).unwrap(), before);

    // A fresh key file is written and usable.
    let out = weft(&["keys", "generate", "--out", &format!("{d}/new.json")]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("protocol key"));

    // Port ranges that do not fit are refused up front.
    let out = weft(&[
        "committee",
        "new",
        "--authorities",
        "4",
        "--base-port",
        "65530",
        "--out-dir",
        d,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--base-port"));
}
