//! A local anvil (Foundry's dev L1) for tests and the measurement example.
//!
//! The binary is found in this order: `$WEFT_ANVIL`, `anvil` on `PATH`, then the npm global
//! package `@foundry-rs/anvil-linux-amd64` (`$(npm root -g)/@foundry-rs/anvil-linux-amd64/bin/anvil`,
//! also looked for under `/usr/lib/node_modules` and `/usr/local/lib/node_modules` without
//! running npm). `ops/setup` installs that package.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Private keys of anvil's default dev accounts (the public "test … junk" mnemonic), each
/// funded with 10 000 ETH. For tests only.
pub const DEV_KEYS: [&str; 6] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
];

/// How long anvil may take to start listening on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    #[error("anvil not found (set WEFT_ANVIL, put it on PATH, or run ops/setup)")]
    NotFound,
    #[error("could not start anvil: {0}")]
    Start(String),
}

/// A running anvil on a free loopback port; killed when dropped (also while unwinding a panic).
pub struct Anvil {
    child: Child,
    port: u16,
}

impl Anvil {
    /// Starts anvil with the Prague hardfork (blobs) and automine, plus `extra` arguments, and
    /// returns once it listens.
    pub fn spawn(extra: &[&str]) -> Result<Self, AnvilError> {
        let binary = find_binary().ok_or(AnvilError::NotFound)?;
        let mut last = String::new();
        // A port picked free can be taken before anvil binds it; another port then.
        for _ in 0..START_ATTEMPTS {
            match Self::try_spawn(&binary, extra) {
                Ok(anvil) => return Ok(anvil),
                Err(e) => last = e,
            }
        }
        Err(AnvilError::Start(last))
    }

    fn try_spawn(binary: &Path, extra: &[&str]) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--hardfork", "prague", "--accounts", "6"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx_ready, rx_ready) = std::sync::mpsc::channel();
        // Reads anvil's log until it says it listens, then drains it so anvil never blocks.
        std::thread::spawn(move || {
            let mut tx_ready = Some(tx_ready);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("Listening on") {
                    if let Some(tx) = tx_ready.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        let anvil = Self { child, port };
        match rx_ready.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(anvil),
            // Dropping `anvil` kills the process.
            Err(_) => Err(format!("anvil did not listen on port {port}")),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTP JSON-RPC URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the anvil binary is, if anywhere (see the module doc for the order).
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEFT_ANVIL") {
        return Some(PathBuf::from(p));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("anvil");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    const PACKAGE: &str = "@foundry-rs/anvil-linux-amd64/bin/anvil";
    let npm_root = Command::new("npm")
        .args(["root", "-g"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    npm_root
        .into_iter()
        .chain(["/usr/lib/node_modules", "/usr/local/lib/node_modules"].map(PathBuf::from))
        .map(|root| root.join(PACKAGE))
        .find(|p| p.is_file())
}
