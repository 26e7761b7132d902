//! The `wan` benchmark: 4 authorities, each in its own network namespace, 50 ms one-way delay
//! between any two (tc netem, or the userspace delay relay where the kernel has no sch_netem).
//! A Bullshark commit needs at least a header, its votes, the certificate and the next round's
//! support to cross the network, so the measured consensus latency must be at least 4 one-way
//! delays. Needs root (network namespaces); fails, saying so, where they cannot be made.

mod common;
use common::*;

const DELAY_MS: f64 = 50.0;

#[test]
fn wan_consensus_latency_reflects_the_delay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let delay = format!("{DELAY_MS}");
    let out = run_py(
        &[
            "wan",
            "--nodes",
            "4",
            "--rate",
            "1000",
            "--duration",
            "8",
            "--delay",
            &delay,
        ],
        dir.path(),
    );
    // A test that passes without running proves nothing: where namespaces cannot be made,
    // it fails and says why (run the tests as root, or leave it out with `--skip wan`).
    assert_ne!(
        out.status.code(),
        Some(SKIPPED),
        "the wan benchmark cannot run here: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    assert!(out.status.success(), "run.py wan failed");
    let record = last_result(dir.path());
    let r = &record["results"];
    let latency_ms = f(r, &["consensus_latency", "mean"]) * 1000.0;
    assert!(f(r, &["consensus_tps"]) > 0.0, "no throughput: {r}");
    assert_eq!(
        f(r, &["samples_duplicated"]),
        0.0,
        "samples output twice: {r}"
    );
    assert!(
        latency_ms >= 4.0 * DELAY_MS,
        "consensus latency {latency_ms} ms < 4 x {DELAY_MS} ms"
    );
}
