//! Pre-confirmations end to end: four `weft node run` processes take signed transfers over
//! JSON-RPC from 8 client threads (two chain ids, all four endpoints). Every transaction's
//! pre-confirmation, fetched with `weft_getPreconfirmation` from the node that took it, and
//! those pushed by a `weft_subscribePreconfirmations` subscription opened before the
//! transactions were sent, must verify with `weft preconf verify` against `committee.json`
//! alone; every mutation of one (each field in turn) and a check against another committee
//! must fail, each with its reason.

mod common;
#[path = "../../rpc/tests/common/mod.rs"]
mod signed;

use common::{Cluster, RpcClient, PROCESS_DEADLINE};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const CHAIN_IDS: [u64; 2] = [1001, 1002];
const TRANSACTIONS: usize = 800;
const THREADS: usize = 8;
/// Transactions whose pre-confirmations the subscription waits for.
const SUBSCRIBED: usize = 40;

/// Transaction `i`: its chain, raw bytes and `0x` hash.
fn transaction(i: usize) -> (u64, Vec<u8>, String) {
    let chain = CHAIN_IDS[i % 2];
    let account = (i / 2) % THREADS;
    let nonce = i / (2 * THREADS);
    let raw = signed::transfer(chain, account as u64, nonce as u64);
    let hash = format!("0x{}", hex::encode(alloy_primitives::keccak256(&raw)));
    (chain, raw, hash)
}

/// `weft_getPreconfirmation` at `client` until it is there (the certificate forms a few
/// messages after the commit).
fn preconfirmation(client: &mut RpcClient, chain: u64, hash: &str) -> Value {
    let deadline = Instant::now() + PROCESS_DEADLINE;
    loop {
        let answer = client
            .call(chain, "weft_getPreconfirmation", json!([hash]))
            .unwrap_or_else(|e| panic!("weft_getPreconfirmation({hash}): {e}"));
        if !answer.is_null() {
            return answer;
        }
        assert!(Instant::now() < deadline, "no pre-confirmation of {hash}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `weft preconf verify` of `preconfs` (one per line) against `committee`: exit status and
/// stdout lines.
fn verify(dir: &Path, committee: &Path, preconfs: &[Value], name: &str) -> (bool, Vec<String>) {
    let file = dir.join(name);
    let lines: Vec<String> = preconfs.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["preconf", "verify", "--committee"])
        .arg(committee)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success(),
        stdout.lines().map(str::to_string).collect(),
    )
}

/// Flips the last hex digit of a `0x…` string field.
fn flip(value: &mut Value) {
    let text = value.as_str().expect("a hex string").to_string();
    let last = text.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    *value = Value::String(format!("{}{flipped}", &text[..text.len() - 1]));
}

fn bump(value: &mut Value) {
    *value = json!(value.as_u64().expect("a number") + 1);
}

/// Each mutation of one field of `p`, with a word its refusal must contain.
fn mutations(p: &Value) -> Vec<(&'static str, Value, &'static str)> {
    type Mutate = fn(&mut Value);
    let cases: Vec<(&'static str, Mutate, &'static str)> = vec![
        ("txHash", |p| flip(&mut p["txHash"]), "root"),
        ("subDagIndex", |p| bump(&mut p["subDagIndex"]), "sub-DAG"),
        ("txIndex", |p| bump(&mut p["txIndex"]), "proof"),
        ("proof[0]", |p| flip(&mut p["proof"][0]), "root"),
        (
            "proof truncated",
            |p| {
                p["proof"].as_array_mut().unwrap().pop();
            },
            "wrong length",
        ),
        (
            "proof extended",
            |p| {
                let zero = json!(format!("0x{}", "0".repeat(64)));
                p["proof"].as_array_mut().unwrap().push(zero);
            },
            "wrong length",
        ),
        (
            "committee",
            |p| flip(&mut p["certificate"]["attestation"]["committee"]),
            "not by this committee",
        ),
        (
            "attestation index",
            |p| bump(&mut p["certificate"]["attestation"]["index"]),
            "sub-DAG",
        ),
        (
            "leaderRound",
            |p| bump(&mut p["certificate"]["attestation"]["leaderRound"]),
            "signature",
        ),
        (
            "timestamp",
            |p| bump(&mut p["certificate"]["attestation"]["timestamp"]),
            "signature",
        ),
        (
            "txCount",
            |p| bump(&mut p["certificate"]["attestation"]["txCount"]),
            "INVALID",
        ),
        (
            "txRoot",
            |p| flip(&mut p["certificate"]["attestation"]["txRoot"]),
            "root",
        ),
        (
            "chains",
            |p| bump(&mut p["certificate"]["attestation"]["chains"][0]["txCount"]),
            "signature",
        ),
        (
            "previous",
            |p| flip(&mut p["certificate"]["attestation"]["previous"]),
            "signature",
        ),
        (
            "batches",
            |p| {
                let zero = json!(format!("0x{}", "0".repeat(64)));
                let hashes = &mut p["certificate"]["attestation"]["batches"]["hashes"];
                hashes.as_array_mut().unwrap().push(zero);
            },
            "signature",
        ),
        (
            "a signature",
            |p| flip(&mut p["certificate"]["signatures"][0]["signature"]),
            "INVALID",
        ),
        (
            "signers below quorum",
            // 4 authorities of stake 1: quorum 3 (a certificate may carry all 4).
            |p| {
                p["certificate"]["signatures"]
                    .as_array_mut()
                    .unwrap()
                    .truncate(2);
            },
            "below the quorum",
        ),
        (
            "a signer twice",
            |p| {
                let signatures = p["certificate"]["signatures"].as_array_mut().unwrap();
                let first = signatures[0].clone();
                signatures.insert(0, first);
            },
            "ascending order",
        ),
        (
            "an unknown signer",
            |p| {
                let signatures = p["certificate"]["signatures"].as_array_mut().unwrap();
                let last = signatures.len() - 1;
                signatures[last]["authority"] = json!(9);
            },
            "not in the committee",
        ),
    ];
    cases
        .into_iter()
        .map(|(name, mutate, reason)| {
            let mut m = p.clone();
            mutate(&mut m);
            (name, m, reason)
        })
        .collect()
}

#[test]
fn every_preconfirmation_verifies_offline_and_every_mutation_fails() {
    let mut cluster = Cluster::start(4, &CHAIN_IDS);
    let dir = cluster.dir.path().to_path_buf();
    let committee = dir.join("committee.json");

    // A subscription at authority 1 for the first transactions, before any is sent.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ws = cluster.endpoints[1].replace("http://", "ws://");
    let subscribed: Vec<String> = (0..SUBSCRIBED).map(|i| transaction(i).2).collect();
    let pushed = {
        let hashes = subscribed.clone();
        runtime.spawn(async move {
            use jsonrpsee::core::client::SubscriptionClientT;
            let client = jsonrpsee::ws_client::WsClientBuilder::default()
                .build(&ws)
                .await
                .expect("a websocket connection");
            let mut subscription = client
                .subscribe::<Value, _>(
                    "weft_subscribePreconfirmations",
                    jsonrpsee::rpc_params![hashes],
                    "weft_unsubscribePreconfirmations",
                )
                .await
                .expect("subscribed");
            let mut pushed = Vec::new();
            while pushed.len() < SUBSCRIBED {
                match subscription.next().await {
                    Some(Ok(p)) => pushed.push(p),
                    other => panic!("the subscription ended: {other:?}"),
                }
            }
            pushed
        })
    };

    let preconfs = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let endpoints = cluster.endpoints.clone();
            let preconfs = preconfs.clone();
            std::thread::spawn(move || {
                let mut clients: Vec<RpcClient> =
                    endpoints.iter().map(|e| RpcClient::new(e)).collect();
                let mine: Vec<usize> = (t..TRANSACTIONS).step_by(THREADS).collect();
                let mut sent = Vec::new();
                for &i in &mine {
                    let (chain, raw, hash) = transaction(i);
                    let client = &mut clients[i % endpoints.len()];
                    let got = client.send_raw(chain, &raw).expect("acknowledged");
                    assert_eq!(got, hash);
                    sent.push((i, chain, hash));
                }
                // At the node the client used.
                for (i, chain, hash) in sent {
                    let p = preconfirmation(&mut clients[i % endpoints.len()], chain, &hash);
                    assert_eq!(p["txHash"], json!(hash));
                    preconfs.lock().unwrap().push(p);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client thread");
    }
    let preconfs = preconfs.lock().unwrap().clone();
    assert_eq!(preconfs.len(), TRANSACTIONS);
    let pushed = runtime.block_on(pushed).expect("the subscriber");
    let pushed_hashes: std::collections::BTreeSet<String> = pushed
        .iter()
        .map(|p| p["txHash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        pushed_hashes,
        subscribed.iter().cloned().collect(),
        "one push per subscribed transaction"
    );

    let mut all = preconfs.clone();
    all.extend(pushed);
    let (ok, lines) = verify(&dir, &committee, &all, "all.jsonl");
    let valid = lines.iter().filter(|l| l.starts_with("valid:")).count();
    assert!(ok, "weft preconf verify failed: {lines:?}");
    assert_eq!(valid, all.len());

    // The one with the longest proof, so that each proof mutation has something to change.
    let target = preconfs
        .iter()
        .max_by_key(|p| p["proof"].as_array().map_or(0, Vec::len))
        .unwrap()
        .clone();
    assert!(
        target["proof"].as_array().unwrap().len() >= 2,
        "a sub-DAG of at least three transactions"
    );
    let cases = mutations(&target);
    let mutated: Vec<Value> = cases.iter().map(|(_, m, _)| m.clone()).collect();
    let (ok, lines) = verify(&dir, &committee, &mutated, "mutated.jsonl");
    assert!(!ok, "mutated pre-confirmations verified: {lines:?}");
    assert_eq!(lines.len(), cases.len(), "{lines:?}");
    for ((name, _, reason), line) in cases.iter().zip(&lines) {
        assert!(
            line.starts_with("INVALID") && line.contains(reason),
            "{name}: {line}"
        );
    }

    // Against another committee, every one fails.
    let other = tempfile::tempdir().unwrap();
    common::committee_new(other.path(), 4);
    let (ok, lines) = verify(
        &dir,
        &other.path().join("committee.json"),
        &preconfs[..10],
        "other.jsonl",
    );
    assert!(!ok);
    assert!(
        lines.iter().all(|l| l.contains("not by this committee")),
        "{lines:?}"
    );
    cluster.stop();
}
