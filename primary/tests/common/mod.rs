//! A committee of real primaries on loopback in one test process, each with its own RocksDB
//! store, and a stand-in for consensus that records the certificates it is given and, when
//! asked to, reports a committed round behind the DAG so garbage collection runs.
//!
//! The stand-in commits committee-wide: a round counts as committed once the slowest primary
//! delivered it (less a lag). Real consensus commits a leader only where its sub-DAG is
//! present, and a primary that lags the others by more than `gc_depth` cannot fetch the
//! rounds they dropped (known, left for state sync); committing by each primary's own round
//! would make a GC test hinge on how evenly a loaded box schedules four primaries.

#![allow(dead_code)]

use prometheus::Registry;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use weft_config::Parameters;
use weft_network::NetworkMetrics;
use weft_primary::{LeaderFn, Primary, PrimaryArgs, PrimaryHandle, PrimaryMetrics};
use weft_storage::Store;
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, Certificate, Round};

/// Rounds of collected certificates the stores keep in these tests.
pub const RETENTION: Round = 100;

pub fn parameters(header_delay_ms: u64, gc_depth: Round) -> Parameters {
    Parameters {
        max_header_delay_ms: header_delay_ms,
        gc_depth,
        certificate_retention_rounds: RETENTION,
        sync_retry_delay_ms: 1_000,
        max_certificates_per_fetch: 100,
        ..Parameters::default()
    }
}

pub fn leader(n: u64) -> LeaderFn {
    Arc::new(move |r: Round| AuthorityIndex(((r / 2) % n) as u16))
}

/// A running primary and what the test observes of it.
pub struct Node {
    pub index: AuthorityIndex,
    pub handle: PrimaryHandle,
    pub store: Store,
    pub dir: PathBuf,
    pub metrics: Arc<PrimaryMetrics>,
    pub registry: Registry,
    /// Every certificate handed to consensus, in order.
    pub delivered: Arc<Mutex<Vec<Certificate>>>,
    /// Highest round handed to consensus.
    pub round: watch::Receiver<Round>,
}

/// The stand-in consensus of a whole committee: each primary's highest delivered round.
pub struct Commits {
    lag: Round,
    rounds: Vec<AtomicU64>,
}

impl Commits {
    pub fn new(size: usize, lag: Round) -> Arc<Self> {
        let rounds = (0..size).map(|_| AtomicU64::new(0)).collect();
        Arc::new(Self { lag, rounds })
    }

    /// The highest round every primary has delivered.
    pub fn floor(&self) -> Round {
        let rounds = self.rounds.iter().map(|r| r.load(Ordering::SeqCst));
        rounds.min().unwrap_or(0)
    }
}

/// Starts authority `i` with its store under `dir`. With `commits`, the stand-in consensus
/// reports round `floor - lag` committed whenever that moves up at a delivery.
pub async fn start(
    f: &CommitteeFixture,
    i: u16,
    dir: &Path,
    parameters: Parameters,
    commits: Option<Arc<Commits>>,
) -> Node {
    let index = AuthorityIndex(i);
    let registry = Registry::new();
    let metrics = Arc::new(PrimaryMetrics::new(&registry).unwrap());
    let network_metrics = Arc::new(NetworkMetrics::new(&registry).unwrap());
    let store = Store::open(dir, &weft_primary::columns::ALL).unwrap();
    let (tx_consensus, mut rx_consensus) = mpsc::channel::<Certificate>(1_000);
    let (tx_committed, rx_committed) = mpsc::channel(1_000);
    let handle = Primary::spawn(PrimaryArgs {
        authority: index,
        committee: Arc::new(f.committee.clone()),
        parameters,
        protocol_keypair: f.keys(index).protocol.copy(),
        network_keypair: f.keys(index).network.copy(),
        store: store.clone(),
        leader: leader(f.committee.size() as u64),
        metrics: metrics.clone(),
        network_metrics,
        tx_consensus,
        rx_committed,
        attestations: None,
    })
    .await
    .unwrap();
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let (tx_round, round) = watch::channel(0);
    let d = delivered.clone();
    tokio::spawn(async move {
        let mut committed = 0;
        while let Some(c) = rx_consensus.recv().await {
            let r = c.round();
            d.lock().unwrap().push(c);
            tx_round.send_if_modified(|highest| {
                let higher = r > *highest;
                *highest = (*highest).max(r);
                higher
            });
            if let Some(commits) = &commits {
                commits.rounds[i as usize].fetch_max(r, Ordering::SeqCst);
                let floor = commits.floor();
                if floor > committed + commits.lag {
                    committed = floor - commits.lag;
                    let notice = weft_primary::CommitNotice {
                        leader_round: committed,
                        ..Default::default()
                    };
                    if tx_committed.send(notice).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Node {
        index,
        handle,
        store,
        dir: dir.to_owned(),
        metrics,
        registry,
        delivered,
        round,
    }
}

impl Node {
    /// Waits until this node delivered a certificate of round ≥ `round`.
    pub async fn reach(&mut self, round: Round) {
        let within = Duration::from_secs(120);
        tokio::time::timeout(within, self.round.wait_for(|r| *r >= round))
            .await
            .unwrap_or_else(|_| panic!("{} did not reach round {round}", self.index))
            .expect("the node is running");
    }

    pub fn current_round(&self) -> Round {
        *self.round.borrow()
    }

    pub fn rejected(&self, message: &str, reason: &str) -> u64 {
        self.metrics
            .rejected
            .with_label_values(&[message, reason])
            .get()
    }

    pub async fn stop(self) -> (Store, PathBuf) {
        self.handle.shutdown().await;
        (self.store, self.dir)
    }
}

/// Polls `condition` until it holds; a generous bound, not a timing assumption.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
