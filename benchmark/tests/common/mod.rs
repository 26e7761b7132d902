//! Runs the Python harness (`benchmark/run.py`) from Rust tests, on the binaries of the profile
//! the tests were built with (never a release build: CI has 2 cores).

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Exit status of `run.py wan` when namespaces or netem cannot be used here.
pub const SKIPPED: i32 = 3;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the benchmark crate sits in the workspace")
        .to_path_buf()
}

/// The directory holding this profile's `weft-client` and `weft`. `weft` belongs to another
/// package, so it is built here, as `cargo test --workspace --no-run` without the variables
/// cargo sets for tests: the very build the README's test command has just done, so a no-op
/// there. A `cargo build -p weft-node` instead resolves other features (tokio's `test-util`
/// and more come only with the workspace's dev-dependencies). Once per test
/// binary: two cargo builds of one target dir at once (the tests of a binary run in
/// parallel) made one of them miss a crate the other was rebuilding.
pub fn bin_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_weft).clone()
}

fn build_weft() -> PathBuf {
    let client = Path::new(env!("CARGO_BIN_EXE_weft-client"));
    let dir = client
        .parent()
        .expect("binaries live in a directory")
        .to_path_buf();
    // `cargo test`'s own profile for `target/debug` (dev settings, named `test`).
    let profile: Vec<String> = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => Vec::new(),
        Some(other) => vec!["--profile".into(), other.into()],
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // What cargo sets for this test process (package, crate, manifest, binaries) would reach
    // build scripts that watch them (ring's does): with them, each test binary's build
    // rebuilt ring, rustls, fastcrypto and everything above them, one after the other.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let set_by_cargo_test = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name.as_str());
        if set_by_cargo_test {
            command.env_remove(&name);
        }
    }
    let status = command
        .args(["test", "--workspace", "--no-run"])
        .args(&profile)
        .current_dir(workspace_root())
        .status()
        .expect("running cargo");
    assert!(status.success(), "cargo test --workspace --no-run failed");
    assert!(
        dir.join("weft").exists(),
        "no weft binary in {}",
        dir.display()
    );
    dir
}

/// `python3 benchmark/run.py <args> --bin-dir .. --results <results> --workdir <results>/work`.
pub fn run_py(args: &[&str], results: &Path) -> Output {
    let bin = bin_dir();
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend([
        "--bin-dir".into(),
        bin.display().to_string(),
        "--results".into(),
        results.display().to_string(),
        "--workdir".into(),
        results.join("work").display().to_string(),
    ]);
    let out = Command::new("python3")
        .arg(workspace_root().join("benchmark/run.py"))
        .args(&all)
        .output()
        .expect("python3 is required (ops/setup installs it)");
    eprintln!(
        "run.py {}\n{}\n{}",
        all.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The last record of `<results>/results.jsonl`: `{"config": .., "results": ..}`.
pub fn last_result(results: &Path) -> Value {
    let text = std::fs::read_to_string(results.join("results.jsonl")).expect("results file");
    let line = text.lines().last().expect("one result");
    serde_json::from_str(line).expect("a JSON record")
}

pub fn f(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}
