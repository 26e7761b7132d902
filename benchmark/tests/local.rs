//! A short `local` benchmark at a low rate on the dev binaries: the harness runs end to end,
//! measures non-zero throughput, and every sample transaction a client sent was sealed in
//! exactly one batch and committed exactly once by every authority (checked from the logs).
//! With the L1 (the default): the authorities posted the committed log to an inbox on anvil,
//! `weft l1 verify` finds it consistent and complete, and the L1 figures are sane.

mod common;
use common::*;

#[test]
fn local_run_commits_every_sample_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_py(
        &[
            "local",
            "--nodes",
            "4",
            "--workers",
            "1",
            "--rate",
            "1000",
            "--tx-size",
            "512",
            "--duration",
            "5",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "run.py local failed");
    let record = last_result(dir.path());
    let r = &record["results"];
    assert!(f(r, &["consensus_tps"]) > 0.0, "no consensus throughput");
    assert!(f(r, &["end_to_end_tps"]) > 0.0, "no end-to-end throughput");
    assert!(
        f(r, &["end_to_end_latency", "count"]) > 0.0,
        "no latency samples"
    );
    assert!(f(r, &["samples_sent"]) > 0.0, "no samples were sent");
    assert_eq!(
        f(r, &["samples_duplicated"]),
        0.0,
        "samples output twice: {r}"
    );
    assert_eq!(f(r, &["samples_unknown"]), 0.0, "samples nobody sent: {r}");
    assert_eq!(
        f(r, &["samples_missing"]),
        0.0,
        "samples never committed: {r}"
    );

    // The L1 part.
    assert_eq!(record["config"]["l1"], true, "the L1 is on by default");
    let l1 = &r["l1"];
    let verify = &l1["verify"];
    assert_eq!(verify["consistent"], true, "weft l1 verify: {l1}");
    assert_eq!(
        f(verify, &["exit"]),
        0.0,
        "weft l1 verify's exit status: {l1}"
    );
    let batches = f(verify, &["batches"]);
    assert!(batches >= 1.0, "no batch reached L1: {l1}");
    assert_eq!(
        f(verify, &["attested"]),
        batches,
        "every batch certified: {l1}"
    );
    let committed = f(l1, &["committed_transactions"]);
    assert!(committed > 0.0, "{l1}");
    assert_eq!(
        committed,
        f(&r["per_node"][0], &["transactions"]),
        "the metrics and the log count the same committed transactions: {r}"
    );
    assert_eq!(
        f(verify, &["transactions"]),
        committed,
        "every committed transaction on L1 after the drain: {l1}"
    );
    let posters = &l1["posters"];
    assert_eq!(
        f(posters, &["transactions"]),
        committed,
        "the posters' counters, summed, count each batch once: {l1}"
    );
    assert_eq!(f(posters, &["batches"]), batches, "{l1}");
    // Compressed zero-padded 512 B transactions: a few bytes each, and gas to match.
    let bytes = f(posters, &["bytes_per_tx"]);
    assert!(bytes > 0.0 && bytes < 512.0, "bytes per transaction: {l1}");
    let gas = f(posters, &["gas_per_tx"]);
    assert!(gas > 0.0 && gas < 20_000.0, "gas per transaction: {l1}");
    let lag = &l1["lag"];
    assert!(
        f(lag, &["count"]) >= 1.0,
        "no L1 lag sample during the load: {l1}"
    );
    assert!(f(lag, &["max"]) >= f(lag, &["mean"]), "{l1}");
    let behind = f(lag, &["seconds", "mean"]);
    assert!((0.0..60.0).contains(&behind), "L1 lag in seconds: {l1}");
}

/// The same through the JSON-RPC ingress (`--ingress rpc`): every signed transaction is
/// acknowledged with its Ethereum hash, none is refused, and every sample the client sent is
/// seen committed through `weft_getTransactionPosition`, with a latency measured. Without the
/// L1 (`--no-l1`): nothing about it runs or is reported.
#[test]
fn local_run_through_the_json_rpc_ingress_acknowledges_and_commits_every_transaction() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_py(
        &[
            "local",
            "--ingress",
            "rpc",
            "--rate",
            "1000",
            "--duration",
            "5",
            "--no-l1",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "run.py local --ingress rpc failed");
    let record = last_result(dir.path());
    let r = &record["results"];
    assert_eq!(record["config"]["l1"], false);
    assert!(r["l1"].is_null(), "no L1 figures without the L1: {r}");
    assert!(
        !dir.path().join("work/logs/anvil.log").exists(),
        "anvil ran with --no-l1"
    );
    let acks = &r["acknowledgements"];
    assert_eq!(record["config"]["ingress"], "rpc");
    // Paced by the clock: a loaded box may fall a little short of rate x duration.
    let sent = f(acks, &["sent"]);
    assert!(
        (4_500.0..=5_000.0).contains(&sent),
        "the load is about rate x duration: {r}"
    );
    assert_eq!(
        f(acks, &["acknowledged"]),
        f(acks, &["sent"]),
        "every call acknowledged: {r}"
    );
    assert_eq!(f(acks, &["refused"]), 0.0, "{r}");
    assert_eq!(f(acks, &["wrong_hash"]), 0.0, "{r}");
    assert!(f(acks, &["latency", "count"]) > 0.0, "{r}");
    assert!(f(r, &["samples_sent"]) > 0.0, "no samples were sent");
    assert_eq!(
        f(r, &["samples_missing"]),
        0.0,
        "samples never seen committed: {r}"
    );
    assert_eq!(
        f(r, &["end_to_end_latency", "count"]),
        f(r, &["samples_sent"]),
        "every sample timed: {r}"
    );
    assert!(f(r, &["end_to_end_tps"]) > 0.0, "no end-to-end throughput");
}
