//! A short `local` benchmark at a low rate on the dev binaries: the harness runs end to end,
//! measures non-zero throughput, and every sample transaction a client sent was sealed in
//! exactly one batch and committed exactly once by every authority (checked from the logs).

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
}

/// The same through the JSON-RPC ingress (`--ingress rpc`): every signed transaction is
/// acknowledged with its Ethereum hash, none is refused, and every sample the client sent is
/// seen committed through `weft_getTransactionPosition`, with a latency measured.
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
        ],
        dir.path(),
    );
    assert!(out.status.success(), "run.py local --ingress rpc failed");
    let record = last_result(dir.path());
    let r = &record["results"];
    let acks = &r["acknowledgements"];
    assert_eq!(record["config"]["ingress"], "rpc");
    assert_eq!(
        f(acks, &["sent"]),
        5000.0,
        "the load is rate x duration: {r}"
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
