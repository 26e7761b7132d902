//! The `remote` benchmark over SSH, when `WEFT_BENCH_REMOTE_SETTINGS` names a settings file
//! (see `benchmark/remote.json.example`; localhost-as-host with a local sshd is enough):
//! deploys the dev binaries, runs 4 authorities for a few seconds, collects the logs and
//! checks that they parse to non-zero throughput with no sample output twice. Ignored by
//! default (CI has no sshd): `WEFT_BENCH_REMOTE_SETTINGS=… cargo test -p weft-benchmark --test
//! remote -- --ignored`.

mod common;
use common::*;

#[test]
#[ignore = "needs an sshd and WEFT_BENCH_REMOTE_SETTINGS naming its settings file"]
fn remote_run_over_ssh_collects_and_parses_logs() {
    let settings = std::env::var("WEFT_BENCH_REMOTE_SETTINGS")
        .expect("WEFT_BENCH_REMOTE_SETTINGS names the settings file (see remote.json.example)");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_py(
        &[
            "remote",
            "--settings",
            &settings,
            "--rate",
            "1000",
            "--duration",
            "5",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "run.py remote failed");
    let record = last_result(dir.path());
    let r = &record["results"];
    assert!(f(r, &["end_to_end_tps"]) > 0.0, "no throughput: {r}");
    assert!(f(r, &["samples_sent"]) > 0.0, "no samples: {r}");
    assert_eq!(
        f(r, &["samples_duplicated"]),
        0.0,
        "samples output twice: {r}"
    );
}
