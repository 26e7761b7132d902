//! The committed log reaches L1: four `weft node run` processes, each with its posting key,
//! post to an inbox on a real anvil (the role rotating between them), and `weft l1 verify`
//! reads back every transaction a client sent, with the hash chain intact. A transaction a
//! user forces through the inbox is ordered and back on L1 within the window W.

mod common;

use common::force_include;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use weft_l1_poster::anvil::DEV_KEYS;

fn weft() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weft"))
}

/// `weft l1 verify`'s report, and whether it exited successfully.
fn verify(rpc: &str, inbox: &str, committee: &std::path::Path) -> (bool, String) {
    let out = weft()
        .args([
            "l1",
            "verify",
            "--rpc",
            rpc,
            "--inbox",
            inbox,
            "--committee",
        ])
        .arg(committee)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn field(report: &str, name: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The forced-inclusion window, in L1 blocks (anvil mines one a second here).
const W: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_post_the_committed_log_and_the_verifier_reads_it_back() {
    let l1 = common::l1_committee(4);
    let (rpc, d, inbox) = (l1.rpc.clone(), l1.dir.path(), l1.inbox.clone());
    let committee_file = d.join("committee.json");
    // Retention follows L1: with a poster the log keeps every unposted sub-DAG although the
    // fixed retention would keep only 3, and then 5 more below the first unposted.
    let path = d.join("parameters.json");
    let mut parameters: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    parameters["committed_log_retention"] = 3.into();
    parameters["committed_log_retention_after_posting"] = 5.into();
    std::fs::write(&path, parameters.to_string()).unwrap();
    let mut nodes: Vec<Child> = (0..4)
        .map(|i| {
            let key_file = d.join(format!("l1-key-{i}"));
            weft_config::write_file(&key_file, DEV_KEYS[i].as_bytes(), weft_config::SECRET_MODE)
                .unwrap();
            weft()
                .args([
                    "node",
                    "run",
                    "--l1-rpc",
                    &rpc,
                    "--l1-inbox",
                    &inbox,
                    "--l1-takeover-blocks",
                    "5",
                ])
                .arg("--l1-key")
                .arg(&key_file)
                .arg("--keys")
                .arg(d.join(format!("keys-{i}.json")))
                .arg("--committee")
                .arg(d.join("committee.json"))
                .arg("--parameters")
                .arg(&path)
                .arg("--store")
                .arg(d.join(format!("store-{i}")))
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();

    // A client sends 300 distinct transactions to authority 1's worker.
    let committee: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("committee.json")).unwrap()).unwrap();
    let address = committee["authorities"][1]["transaction_addresses"]["0"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stream = loop {
        match std::net::TcpStream::connect(&address) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "worker never accepted: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    const SENT: u64 = 300;
    for id in 0..SENT {
        let mut tx = vec![1u8; 120];
        tx[1..9].copy_from_slice(&id.to_be_bytes());
        stream.write_all(&(tx.len() as u32).to_be_bytes()).unwrap();
        stream.write_all(&tx).unwrap();
    }
    stream.flush().unwrap();

    // Polled: L1 fills as sub-DAGs commit and posters take their turns.
    let report = loop {
        let (ok, report) = verify(&rpc, &inbox, &committee_file);
        assert!(ok, "the verifier found an inconsistency:\n{report}");
        if field(&report, "transactions:") >= SENT {
            break report;
        }
        assert!(Instant::now() < deadline, "L1 holds only:\n{report}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(field(&report, "transactions:"), SENT, "{report}");
    assert!(report.contains("consistent:    yes"), "{report}");

    // A user forces a transaction through the inbox; the committee must order it (and post
    // it back) within W L1 blocks of the call.
    let forced_block = force_include(&rpc, &inbox, b"forced: transfer 1 wei".to_vec()).await;
    let report = loop {
        let (ok, report) = verify(&rpc, &inbox, &committee_file);
        assert!(ok, "the verifier found an inconsistency:\n{report}");
        if field(&report, "transactions:") > SENT {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "the forced transaction never came:\n{report}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let seen_at = field(&report, "L1 block:");
    assert!(
        seen_at <= forced_block + W,
        "forced at block {forced_block}, on L1 only at block {seen_at}"
    );
    // Transactions keep coming until authority 1 has confirmed sub-DAG 8 on L1 (the poster's
    // cursor moves with posted transactions, not over empty sub-DAGs), then one more is
    // committed and posted after that: its log must have let the early sub-DAGs go by then.
    let cursor_path = d.join("store-1").join("l1-cursor.json");
    let mut more = 0;
    let mut send = |stream: &mut std::net::TcpStream| {
        let mut tx = vec![1u8; 120];
        tx[1..9].copy_from_slice(&(SENT + more).to_be_bytes());
        stream.write_all(&(tx.len() as u32).to_be_bytes()).unwrap();
        stream.write_all(&tx).unwrap();
        stream.flush().unwrap();
        more += 1;
    };
    loop {
        let confirmed = std::fs::read(&cursor_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|c| c["next_position"]["sub_dag"].as_u64())
            .unwrap_or(0);
        if confirmed >= 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "authority 1 never confirmed 8 sub-DAGs"
        );
        send(&mut stream);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    send(&mut stream);
    let posted = SENT + 1 + more;
    loop {
        let (ok, report) = verify(&rpc, &inbox, &committee_file);
        assert!(ok, "the verifier found an inconsistency:\n{report}");
        if field(&report, "transactions:") >= posted {
            break;
        }
        assert!(Instant::now() < deadline, "L1 holds only:\n{report}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for n in &nodes {
        let _ = Command::new("kill")
            .args(["-TERM", &n.id().to_string()])
            .status();
    }
    for n in nodes.iter_mut() {
        assert!(n.wait().unwrap().success());
    }
    // What L1 holds is the committed log, sub-DAG by sub-DAG, transaction by transaction, as
    // far as the log still holds it: what was posted long enough ago is gone from the node.
    let address = inbox.parse().unwrap();
    let committee = weft_config::load_committee(&committee_file).unwrap();
    let (report, on_l1) = weft_l1_poster::read_inbox(&rpc, address, Some(&committee))
        .await
        .unwrap();
    assert!(report.first_inconsistency.is_none(), "{report}");
    assert_eq!(report.attested, report.batches, "{report}");
    let store = weft_storage::Store::open(&d.join("store-1"), &weft_node::columns::all()).unwrap();
    let log = weft_node::CommittedLog::open(&store).unwrap();
    let first = log
        .first_index()
        .unwrap()
        .expect("the log holds the unposted tail");
    assert!(!on_l1.is_empty());
    assert!(first > 0, "posted sub-DAGs leave the log");
    assert!(
        log.next_index() - first > 3,
        "unposted sub-DAGs stay beyond the fixed retention"
    );
    for sub_dag in on_l1.iter().filter(|s| s.index >= first) {
        let entry = log.read(sub_dag.index, 1).unwrap();
        assert_eq!(entry[0].index, sub_dag.index);
        assert_eq!(entry[0].transactions().unwrap(), sub_dag.transactions);
    }
}

/// Proves: an authority whose `max_transaction_size` is below the inbox's
/// `MAX_FORCED_TX_BYTES` refuses to start with forced inclusion on, and says why: its workers
/// would refuse forced transactions the inbox accepted, which could then never be ordered
/// (before, they were dropped in silence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_transactions_are_smaller_than_the_inboxs_forced_ones_refuses_to_start() {
    let l1 = common::l1_committee(4);
    let (rpc, d, inbox) = (l1.rpc.clone(), l1.dir.path(), l1.inbox.clone());
    let path = d.join("parameters.json");
    let mut parameters: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    parameters["max_transaction_size"] = 1_000.into();
    parameters["rpc"]["max_transaction_size"] = 1_000.into();
    std::fs::write(&path, parameters.to_string()).unwrap();
    let key = d.join("l1-key-0");
    weft_config::write_file(&key, DEV_KEYS[0].as_bytes(), weft_config::SECRET_MODE).unwrap();
    let args = [
        "node",
        "run",
        "--l1-rpc",
        &rpc,
        "--l1-inbox",
        &inbox,
        "--l1-key",
        key.to_str().unwrap(),
    ];
    let mut child = common::authority_command(d, 0, &args, "store-0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + common::PROCESS_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the node did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains(
            "max_transaction_size (1000) is below the inbox's MAX_FORCED_TX_BYTES (131072)"
        ),
        "{stderr}"
    );
}
