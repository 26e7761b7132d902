//! The deployment files, checked offline by `ops/check-deploy`: every Kustomize overlay
//! renders and passes `kubernetes-validate --strict`, the compose file names only images and
//! ports that exist, the Dockerfile runs as non-root. Needs kubectl (with Kustomize) and
//! kubernetes-validate (PyPI), which `ops/setup` installs; fails without them.

use std::path::Path;
use std::process::Command;

#[test]
fn kubernetes_compose_and_docker_files_check_out() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/check-deploy");
    let out = Command::new("python3")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_weft"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(
        out.status.success(),
        "ops/check-deploy failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("check-deploy: OK"));
}
