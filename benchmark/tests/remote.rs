//! The `remote` benchmark over real SSH: the test starts an OpenSSH server on loopback
//! (127.0.0.1 to 127.0.0.4 as four hosts, key-only login with a key made for the run, the
//! current user), and `run.py remote` deploys the dev binaries to the four, runs 4 authorities
//! for a few seconds, collects the logs and parses them to non-zero throughput with no sample
//! output twice. `ops/setup` installs Debian's openssh-server; without `/usr/sbin/sshd` the
//! test fails. `WEFT_BENCH_REMOTE_SETTINGS=<file>` runs it against real hosts instead (see
//! `benchmark/remote.json.example`).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";
const HOSTS: [&str; 4] = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// An sshd in the foreground for the test; killed when dropped.
struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs (openssh-client; run ops/setup)");
    assert!(status.success(), "ssh-keygen {}", path.display());
}

/// Starts sshd on a free port of the four loopback hosts, accepting `client_key` only; waits
/// until it accepts connections.
fn sshd(dir: &Path) -> (Sshd, u16, PathBuf) {
    assert!(
        Path::new(SSHD).is_file(),
        "{SSHD} is required (Debian's openssh-server; run ops/setup)"
    );
    let (host_key, client_key) = (dir.join("host_key"), dir.join("client_key"));
    keygen(&host_key);
    keygen(&client_key);
    let authorized = dir.join("authorized_keys");
    std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
    // sshd's privilege-separation directory; it refuses to start without it.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = weft_test_utils::free_base_port(1, 0);
    let mut command = Command::new(SSHD);
    command
        .args(["-D", "-e", "-f", "/dev/null", "-p", &port.to_string(), "-h"])
        .arg(&host_key)
        .arg("-o")
        .arg(format!("AuthorizedKeysFile={}", authorized.display()));
    for host in HOSTS {
        command.args(["-o", &format!("ListenAddress={host}")]);
    }
    for option in [
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
        "PubkeyAuthentication=yes",
        "StrictModes=no",
        "PidFile=none",
        "Subsystem=sftp internal-sftp",
    ] {
        command.args(["-o", option]);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sshd starts");
    let sshd = Sshd(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect((HOSTS[3], port)).is_err() {
        assert!(Instant::now() < deadline, "sshd never listened on {port}");
        // Waiting for an external process to bind, bounded by the deadline.
        std::thread::sleep(Duration::from_millis(50));
    }
    (sshd, port, client_key)
}

#[test]
fn remote_run_over_ssh_collects_and_parses_logs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut _sshd = None;
    let settings = match std::env::var("WEFT_BENCH_REMOTE_SETTINGS") {
        Ok(settings) => settings,
        Err(_) => {
            let (server, port, key) = sshd(dir.path());
            _sshd = Some(server);
            let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_string();
            let settings = serde_json::json!({
                "hosts": HOSTS,
                "user": user,
                "port": port,
                "key_file": key,
                "remote_dir": dir.path().join("remote"),
                "base_port": weft_test_utils::free_base_port(4, 1),
            });
            let path = dir.path().join("remote.json");
            std::fs::write(&path, settings.to_string()).unwrap();
            path.to_str().unwrap().to_string()
        }
    };
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
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
        &results,
    );
    assert!(out.status.success(), "run.py remote failed");
    let record = last_result(&results);
    let r = &record["results"];
    assert!(f(r, &["end_to_end_tps"]) > 0.0, "no throughput: {r}");
    assert!(f(r, &["samples_sent"]) > 0.0, "no samples: {r}");
    assert_eq!(
        f(r, &["samples_duplicated"]),
        0.0,
        "samples output twice: {r}"
    );
    assert_eq!(record["config"]["hosts"], serde_json::json!(HOSTS));
}
