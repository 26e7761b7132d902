//! A committee of real primaries on loopback in one test process, each with its own RocksDB
//! store, and a stand-in for consensus that records the certificates it is given and, when
//! asked to, reports a committed round behind the DAG so garbage collection runs.

#![allow(dead_code)]

use prometheus::Registry;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use weft_config::Parameters;
use weft_network::NetworkMetrics;
use weft_primary::{LeaderFn, Primary, PrimaryArgs, PrimaryHandle, PrimaryMetrics};
use weft_storage::Store;
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, Certificate, Round};

pub fn parameters(header_delay_ms: u64, gc_depth: Round) -> Parameters {
    Parameters {
        max_header_delay_ms: header_delay_ms,
        gc_depth,
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
    /// Largest number of certificates the DAG held in memory, sampled at every delivery.
    pub peak_dag: Arc<Mutex<i64>>,
}

/// Starts authority `i` with its store under `dir`. With `commit_lag`, the stand-in consensus
/// reports round `r - commit_lag` committed whenever it first sees a certificate of round `r`.
pub async fn start(
    f: &CommitteeFixture,
    i: u16,
    dir: &Path,
    parameters: Parameters,
    commit_lag: Option<Round>,
) -> Node {
    let index = AuthorityIndex(i);
    let registry = Registry::new();
    let metrics = Arc::new(PrimaryMetrics::new(&registry).unwrap());
    let network_metrics = Arc::new(NetworkMetrics::new(&registry).unwrap());
    let store = Store::open(dir).unwrap();
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
    let peak_dag = Arc::new(Mutex::new(0));
    let (tx_round, round) = watch::channel(0);
    let (d, p, m) = (delivered.clone(), peak_dag.clone(), metrics.clone());
    tokio::spawn(async move {
        let mut committed = 0;
        while let Some(c) = rx_consensus.recv().await {
            let r = c.round();
            d.lock().unwrap().push(c);
            {
                let mut peak = p.lock().unwrap();
                *peak = (*peak).max(m.dag_certificates.get());
            }
            tx_round.send_if_modified(|highest| {
                let higher = r > *highest;
                *highest = (*highest).max(r);
                higher
            });
            if let Some(lag) = commit_lag {
                if r > committed + lag {
                    committed = r - lag;
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
        peak_dag,
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
