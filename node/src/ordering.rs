//! From certificates to the committed log: the consensus actor runs Bullshark on the
//! certificates the primary delivers (in causal order); the executor resolves each committed
//! sub-DAG's batches and writes the log entry together with the consensus state that produced
//! it, in one synced write, and only then lets the primary garbage-collect.

use crate::log::{CommittedEntry, CommittedLog};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use weft_consensus::{Bullshark, CommittedSubDag, ConsensusState, LeaderSchedule};
use weft_network::{Peer, ReliableSender};
use weft_primary::CommitNotice;
use weft_storage::{Column, Durability, Map, Store, StoreError};
use weft_types::codec::{decode_message, encode_message};
use weft_types::{
    BatchDigest, BatchResponse, Certificate, Committee, PrimaryToWorker, WorkerId, WorkerMessage,
};

/// Key of the persisted [`ConsensusState`] in the consensus column.
pub const STATE_KEY: &str = "bullshark_state";

/// Committed sub-DAGs waiting for their batches.
pub const EXECUTOR_CHANNEL_CAPACITY: usize = 1_000;

/// The leader schedule as consensus last updated it, shared with the primary's proposer.
pub type SharedSchedule = Arc<Mutex<Box<dyn LeaderSchedule>>>;

pub fn load_state(store: &Store) -> Result<Option<ConsensusState>, StoreError> {
    let map: Map<String, Bytes> = store.map(Column::Consensus);
    match map.get(&STATE_KEY.to_string())? {
        Some(bytes) => {
            ConsensusState::from_bytes(bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    column: "consensus",
                    reason: e.to_string(),
                })
        }
        None => Ok(None),
    }
}

/// Runs Bullshark on the primary's certificates.
pub struct ConsensusActor {
    bullshark: Bullshark,
    schedule: SharedSchedule,
    rx_primary: mpsc::Receiver<Certificate>,
    tx_executor: mpsc::Sender<(CommittedSubDag, Option<ConsensusState>)>,
}

impl ConsensusActor {
    /// `recovered` are sub-DAGs that recovery committed beyond the persisted state; they go
    /// to the executor first.
    pub fn spawn(
        bullshark: Bullshark,
        recovered: Vec<CommittedSubDag>,
        schedule: SharedSchedule,
        rx_primary: mpsc::Receiver<Certificate>,
        tx_executor: mpsc::Sender<(CommittedSubDag, Option<ConsensusState>)>,
    ) -> JoinHandle<()> {
        let actor = Self {
            bullshark,
            schedule,
            rx_primary,
            tx_executor,
        };
        tokio::spawn(actor.run(recovered))
    }

    async fn run(mut self, recovered: Vec<CommittedSubDag>) {
        if !self.output(recovered).await {
            return;
        }
        while let Some(certificate) = self.rx_primary.recv().await {
            match self.bullshark.process_certificate(certificate) {
                Ok(committed) => {
                    if !self.output(committed).await {
                        return;
                    }
                }
                // The primary only delivers verified certificates in causal order; an error
                // here is a bug, not a peer's fault. Skip the certificate, keep ordering.
                Err(e) => tracing::error!("consensus refused a certificate: {e}"),
            }
        }
    }

    /// Hands sub-DAGs to the executor; false once it is gone.
    async fn output(&mut self, committed: Vec<CommittedSubDag>) -> bool {
        if committed.is_empty() {
            return true;
        }
        let state = self.bullshark.state();
        let restored = self.schedule.lock().restore(&state.schedule);
        if let Err(e) = restored {
            tracing::error!("leader schedule update failed: {e}");
        }
        let last = committed.len() - 1;
        for (i, sub_dag) in committed.into_iter().enumerate() {
            // The state covers every sub-DAG of this call, so it travels with the last one
            // only: persisted earlier, it would claim sub-DAGs not yet in the log.
            let s = (i == last).then(|| state.clone());
            if self.tx_executor.send((sub_dag, s)).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// Resolves committed sub-DAGs to their batches and writes the committed log.
pub struct Executor {
    store: Store,
    log: CommittedLog,
    batches: Map<BatchDigest, Bytes>,
    consensus: Map<String, Bytes>,
    retention: u64,
    /// This authority's workers, asked for batches when they run as separate processes.
    workers: BTreeMap<WorkerId, Peer>,
    external_workers: bool,
    sender: ReliableSender,
    retry: Duration,
    max_message_size: usize,
    rx_consensus: mpsc::Receiver<(CommittedSubDag, Option<ConsensusState>)>,
    /// Sub-DAGs whose output is durable: the primary may garbage-collect below them.
    tx_primary: mpsc::Sender<CommitNotice>,
    me: weft_types::AuthorityIndex,
}

impl Executor {
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        store: Store,
        log: CommittedLog,
        committee: &Committee,
        me: weft_types::AuthorityIndex,
        parameters: &weft_config::Parameters,
        external_workers: bool,
        sender: ReliableSender,
        rx_consensus: mpsc::Receiver<(CommittedSubDag, Option<ConsensusState>)>,
        tx_primary: mpsc::Sender<CommitNotice>,
    ) -> JoinHandle<()> {
        let workers = weft_primary::own_workers(committee, me);
        let executor = Self {
            batches: store.map(Column::Batches),
            consensus: store.map(Column::Consensus),
            store,
            log,
            retention: parameters.committed_log_retention,
            workers,
            external_workers,
            sender,
            retry: parameters.sync_retry_delay(),
            max_message_size: parameters.max_message_size,
            rx_consensus,
            tx_primary,
            me,
        };
        tokio::spawn(executor.run())
    }

    async fn run(mut self) {
        while let Some((sub_dag, state)) = self.rx_consensus.recv().await {
            if let Err(e) = self.execute(sub_dag, state).await {
                tracing::error!("writing the committed log failed: {e}; stopping");
                return;
            }
        }
    }

    async fn execute(
        &mut self,
        sub_dag: CommittedSubDag,
        state: Option<ConsensusState>,
    ) -> Result<(), StoreError> {
        let index = sub_dag.index;
        if index < self.log.next_index() {
            // Already in the log (recovery replayed it): never output twice.
            return Ok(());
        }
        let mut seen = HashSet::new();
        let mut batches = Vec::new();
        let mut transactions = 0usize;
        for certificate in &sub_dag.certificates {
            for (digest, worker) in &certificate.header.payload {
                if !seen.insert(*digest) {
                    continue;
                }
                let bytes = self.batch(*digest, *worker, certificate.author()).await?;
                transactions += bytes_transactions(&bytes);
                tracing::info!(target: "weft::bench", "Committed batch {digest}");
                batches.push(bytes);
            }
        }
        let entry = CommittedEntry {
            index,
            leader_round: sub_dag.leader_round,
            batches,
        };
        let mut write = self.store.batch();
        write.insert(self.log.map(), &index, &entry);
        if let Some(state) = state {
            write.insert(&self.consensus, &STATE_KEY.to_string(), &state.to_bytes());
        }
        if index + 1 > self.retention {
            write.remove_range(self.log.map(), &0, &(index + 1 - self.retention));
        }
        write.commit(Durability::Sync)?;
        self.log.advance(index);
        tracing::info!(
            target: "weft::bench",
            "Committed sub-dag {index} leader round {} certificates {} batches {} transactions {transactions}",
            sub_dag.leader_round,
            sub_dag.certificates.len(),
            entry.batches.len(),
        );
        let notice = CommitNotice {
            leader_round: sub_dag.leader_round,
            own_rounds: sub_dag
                .certificates
                .iter()
                .filter(|c| c.author() == self.me)
                .map(Certificate::round)
                .collect(),
        };
        let _ = self.tx_primary.send(notice).await;
        Ok(())
    }

    /// A batch from the local store where in-process workers put it, or else from this
    /// authority's worker process. If it is missing (not fetched yet, or deleted by GC with an
    /// older certificate that carried it too), the worker is told to fetch it from `author`'s
    /// worker, and again every `sync_retry_delay`: a certified batch always exists somewhere.
    async fn batch(
        &self,
        digest: BatchDigest,
        worker: WorkerId,
        author: weft_types::AuthorityIndex,
    ) -> Result<Bytes, StoreError> {
        if let Some(b) = self.batches.get(&digest)? {
            return Ok(b);
        }
        let local = self.batches.notify_read(digest);
        tokio::pin!(local);
        let peer = self.workers.get(&worker);
        let synchronize = encode_message(&PrimaryToWorker::Synchronize {
            digests: vec![digest],
            target: author,
        });
        let mut wait = Duration::ZERO;
        let mut _pending_sync = None;
        loop {
            tokio::select! {
                b = &mut local => return b,
                _ = tokio::time::sleep(wait), if peer.is_some() => {
                    wait = self.retry;
                    if let Some(peer) = peer {
                        _pending_sync = Some(self.sender.send(peer, synchronize.clone()).await);
                    }
                    if self.external_workers {
                        if let Some(b) = self.fetch(peer, digest).await {
                            return Ok(b);
                        }
                    }
                }
            }
        }
    }

    async fn fetch(&self, peer: Option<&Peer>, digest: BatchDigest) -> Option<Bytes> {
        let request = encode_message(&WorkerMessage::BatchRequest(vec![digest]));
        let answer = self.sender.send(peer?, request).await.await.ok()?;
        decode_message::<BatchResponse>(answer, self.max_message_size)
            .ok()?
            .batches
            .into_iter()
            .next()
            .filter(|b| BatchDigest::of_encoded(b) == digest)
    }
}

/// Transactions in an encoded batch (its count field), for the log line.
fn bytes_transactions(encoded: &Bytes) -> usize {
    encoded
        .get(1..5)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b: [u8; 4]| u32::from_le_bytes(b) as usize)
}
