//! The Python harness's unit tests (`tests/test_logs.py`, the log parser; `tests/test_l1.py`,
//! the /metrics and `weft l1 verify` parsing and the L1 figures), run from `cargo test`.

mod common;

#[test]
fn python_log_parser_unit_tests_pass() {
    let dir = common::workspace_root().join("benchmark");
    let out = std::process::Command::new("python3")
        .args([
            "-m",
            "unittest",
            "-v",
            "tests/test_logs.py",
            "tests/test_l1.py",
        ])
        .current_dir(&dir)
        .output()
        .expect("python3 is required (ops/setup installs it)");
    let log = String::from_utf8_lossy(&out.stderr);
    eprintln!("{log}");
    assert!(out.status.success(), "parser unit tests failed");
}
