//! From committed sub-DAGs to the committed log (consensus hands them over, see
//! `weft_consensus::actor`): the executor makes sure each committed sub-DAG's batches are in
//! the node's store, writes the log record (their digests) together with the consensus state
//! that produced it and the batches' pins, in one synced write, and only then lets the primary
//! garbage-collect. Pinned batches outlive garbage collection; the
//! executor deletes them with the records that leave the log's retention.

use crate::columns;
use crate::log::{CommittedLog, CommittedRecord};
use crate::metrics::NodeMetrics;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_consensus::{Commit, ConsensusState, LeaderScheduleKind, ScheduleState};
use weft_executor::{ExecutorCore, ExecutorError, Step};
use weft_network::{Peer, ReliableSender};
use weft_primary::CommitNotice;
use weft_storage::{Durability, Map, Store, StoreError, WriteBatch, RECORDS};
use weft_types::codec::{decode_message, encode_message};
use weft_types::{BatchDigest, BatchResponse, Committee, PrimaryToWorker, WorkerId, WorkerMessage};

/// Why the executor stops.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorFailure {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sequence(#[from] ExecutorError),
    /// The node is stopping (not a failure).
    #[error("stopped")]
    Stopped,
}

/// With this variable set, the process aborts right after a sub-DAG's write and its notice to
/// the primary when the same Bullshark call committed more sub-DAGs after it: the `kill -9`
/// between two sub-DAG writes of one commit that the restart test needs. Read once at start.
pub const CRASH_MID_COMMIT_ENV: &str = "WEFT_CRASH_MID_COMMIT";

/// Key of the persisted [`ConsensusState`] in the store's records.
pub const STATE_KEY: &str = "bullshark_state";

/// Committed sub-DAGs waiting for their batches.
pub const EXECUTOR_CHANNEL_CAPACITY: usize = 1_000;

pub fn load_state(store: &Store) -> Result<Option<ConsensusState>, StoreError> {
    let map: Map<String, Bytes> = store.map(RECORDS);
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

/// Resolves committed sub-DAGs to their batches and writes the committed log.
pub struct Executor {
    store: Store,
    log: CommittedLog,
    batches: Map<BatchDigest, Bytes>,
    /// Committed batches → the sub-DAG that committed them.
    pins: Map<BatchDigest, u64>,
    /// The primary's record of own batches to propose again after a restart; a committed one
    /// leaves it in the same write as the log record.
    own_batches: Map<(BatchDigest, WorkerId), u64>,
    consensus: Map<String, Bytes>,
    /// What to do with each sub-DAG (the decisions; this actor does the I/O).
    core: ExecutorCore,
    /// This authority's workers, asked for batches when they run as separate processes.
    workers: BTreeMap<WorkerId, Peer>,
    external_workers: bool,
    sender: ReliableSender,
    retry: Duration,
    max_message_size: usize,
    schedule_kind: LeaderScheduleKind,
    committee: Committee,
    rx_consensus: mpsc::Receiver<Commit>,
    /// Sub-DAGs whose output is durable: the primary may garbage-collect below them.
    tx_primary: mpsc::Sender<CommitNotice>,
    /// The first sub-DAG not yet confirmed on L1, once this authority's poster runs.
    rx_posted: watch::Receiver<Option<u64>>,
    /// The first sub-DAG the attester has not signed: records from it on stay. `None`
    /// without an attester.
    rx_attested: Option<watch::Receiver<u64>>,
    /// Own attestations and finality certificates, pruned with the records they are of.
    attestations: [Map<u64, Bytes>; 2],
    /// L1 batches, keyed by (naming sub-DAG, sequence): pruned with their naming sub-DAG.
    l1_batches: Map<(u64, u64), Bytes>,
    retention_after_posting: u64,
    metrics: Arc<NodeMetrics>,
    shutdown: CancellationToken,
    /// [`CRASH_MID_COMMIT_ENV`] is set.
    crash_mid_commit: bool,
}

/// Everything the executor needs.
pub struct ExecutorArgs {
    pub store: Store,
    pub log: CommittedLog,
    pub committee: Committee,
    pub me: weft_types::AuthorityIndex,
    pub parameters: weft_config::Parameters,
    /// The workers run as separate processes: batches are fetched from them.
    pub external_workers: bool,
    pub sender: ReliableSender,
    /// The leader schedule the primary starts with (consensus's, after recovery).
    pub schedule: ScheduleState,
    pub rx_consensus: mpsc::Receiver<Commit>,
    pub tx_primary: mpsc::Sender<CommitNotice>,
    pub rx_posted: watch::Receiver<Option<u64>>,
    pub rx_attested: Option<watch::Receiver<u64>>,
    pub metrics: Arc<NodeMetrics>,
    /// Cancelled when the node stops: the executor ends between two sub-DAGs, or while it
    /// waits for a batch (the sub-DAG is then output again after a restart).
    pub shutdown: CancellationToken,
}

impl Executor {
    pub fn spawn(args: ExecutorArgs) -> JoinHandle<()> {
        let ExecutorArgs {
            store,
            log,
            committee,
            me,
            parameters,
            external_workers,
            sender,
            schedule,
            rx_consensus,
            tx_primary,
            rx_posted,
            rx_attested,
            metrics,
            shutdown,
        } = args;
        let workers = weft_primary::own_workers(&committee, me);
        let executor = Self {
            batches: store.map(weft_worker::columns::BATCHES),
            pins: store.map(weft_worker::columns::COMMITTED_BATCHES),
            own_batches: store.map(weft_primary::columns::OWN_BATCHES),
            consensus: store.map(RECORDS),
            attestations: [
                store.map(columns::ATTESTATIONS),
                store.map(columns::FINALITY_CERTIFICATES),
            ],
            l1_batches: store.map(columns::L1_BATCHES),
            core: ExecutorCore::new(
                me,
                log.next_index(),
                parameters.committed_log_retention,
                schedule,
            ),
            store,
            log,
            workers,
            external_workers,
            sender,
            retry: parameters.sync_retry_delay(),
            max_message_size: parameters.max_message_size,
            schedule_kind: parameters.leader_schedule,
            committee,
            rx_consensus,
            tx_primary,
            rx_posted,
            rx_attested,
            retention_after_posting: parameters.committed_log_retention_after_posting,
            metrics,
            shutdown,
            crash_mid_commit: std::env::var_os(CRASH_MID_COMMIT_ENV).is_some(),
        };
        tokio::spawn(executor.run())
    }

    async fn run(mut self) {
        loop {
            let commit = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                commit = self.rx_consensus.recv() => match commit {
                    Some(commit) => commit,
                    None => return,
                },
            };
            match self.execute(commit).await {
                Ok(()) | Err(ExecutorFailure::Stopped) => {}
                Err(e) => {
                    tracing::error!("executing the committed sequence failed: {e}; stopping");
                    return;
                }
            }
        }
    }

    /// Carries out the core's step for one sub-DAG: makes sure its batches are here, writes
    /// the record with the consensus state right after it in one synced write, and only then
    /// lets the primary garbage-collect below it, so the persisted state is never older than
    /// the store's GC whenever a crash comes.
    async fn execute(&mut self, commit: Commit) -> Result<(), ExecutorFailure> {
        if let Some(next_unposted) = *self.rx_posted.borrow() {
            self.core.follow_posting(self.retention_after_posting);
            self.core.set_posted(next_unposted);
        }
        if let Some(attested) = &self.rx_attested {
            self.core.set_attested(*attested.borrow());
        }
        let followed_by = commit.followed_by;
        let execution = match self.core.execute(commit)? {
            Step::Replayed(_) => return Ok(()),
            Step::Execute(execution) => execution,
        };
        let index = execution.sub_dag.index;
        let mut transactions = 0usize;
        for b in &execution.batches {
            transactions += self.batch(b.digest, b.worker, b.author).await?;
            tracing::info!(target: "weft::bench", "Committed batch {}", b.digest);
        }
        let record = CommittedRecord {
            index,
            leader_round: execution.sub_dag.leader_round,
            timestamp: execution.sub_dag.timestamp,
            batches: execution.batches.iter().map(|b| b.digest).collect(),
        };
        let mut write = self.store.batch();
        write.insert(self.log.map(), &index, &record);
        for digest in &record.batches {
            write.insert(&self.pins, digest, &index);
        }
        for batch in &execution.own_batches {
            write.remove(&self.own_batches, batch);
        }
        let state = execution.state.to_bytes();
        write.insert(&self.consensus, &STATE_KEY.to_string(), &state);
        self.prune(&mut write, execution.prune.clone())?;
        write.commit_blocking(Durability::Sync).await?;
        self.log.advance(index);
        self.metrics.committed_log_index.set(index as i64 + 1);
        self.metrics
            .transactions_committed
            .inc_by(transactions as u64);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.metrics
            .commit_latency
            .observe(now_ms.saturating_sub(record.timestamp) as f64 / 1000.0);
        tracing::info!(
            target: "weft::bench",
            "Committed sub-dag {index} leader round {} certificates {} batches {} transactions {transactions}",
            execution.sub_dag.leader_round,
            execution.sub_dag.certificates.len(),
            record.batches.len(),
        );
        let notice = execution.durable();
        let leaders = match &notice.schedule {
            // The state was checked when consensus made it; failing now is a bug.
            Some(schedule) => match self.schedule_kind.leaders(&self.committee, schedule) {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::error!("leader schedule update failed: {e}");
                    None
                }
            },
            None => None,
        };
        let notice = CommitNotice {
            leaders,
            leader_round: notice.leader_round,
            own_rounds: notice.own_rounds,
        };
        let _ = self.tx_primary.send(notice).await;
        if self.crash_mid_commit && followed_by > 0 {
            tracing::error!("{CRASH_MID_COMMIT_ENV}: aborting between sub-DAG {index} and the next of one commit");
            std::process::abort();
        }
        Ok(())
    }

    /// Removes the records of `range` with the batches they pinned (a batch a later record
    /// committed again stays, pinned by that one).
    fn prune(&self, write: &mut WriteBatch, range: Range<u64>) -> Result<(), StoreError> {
        if range.is_empty() {
            return Ok(());
        }
        let records = self
            .log
            .records(range.start, (range.end - range.start) as usize)?;
        for record in records.iter().filter(|r| range.contains(&r.index)) {
            let pins = self.pins.multi_get(&record.batches)?;
            for (digest, pin) in record.batches.iter().zip(pins) {
                if pin == Some(record.index) {
                    write.remove(&self.pins, digest);
                    write.remove(&self.batches, digest);
                }
            }
            write.remove(self.log.map(), &record.index);
        }
        for map in &self.attestations {
            write.remove_range(map, &range.start, &range.end);
        }
        write.remove_range(&self.l1_batches, &(range.start, 0), &(range.end, 0));
        Ok(())
    }

    /// Makes sure a committed batch is in the node's store and returns its transaction count.
    /// In-process workers stored it there already; a batch of a worker process is fetched
    /// from it and copied in. If it is missing (not fetched yet, or deleted by GC with an older
    /// certificate that carried it too), the worker is told to fetch it from `author`'s
    /// worker, and again every `sync_retry_delay`: a certified batch always exists somewhere.
    async fn batch(
        &self,
        digest: BatchDigest,
        worker: WorkerId,
        author: weft_types::AuthorityIndex,
    ) -> Result<usize, ExecutorFailure> {
        // Only the count is needed here; readers of the log read (and check) the batch whole.
        if let Some(head) = self.batches.value_prefix(&digest, BATCH_HEAD)? {
            return Ok(bytes_transactions(&head));
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
                _ = self.shutdown.cancelled() => return Err(ExecutorFailure::Stopped),
                b = &mut local => return Ok(bytes_transactions(&b?)),
                _ = tokio::time::sleep(wait), if peer.is_some() => {
                    wait = self.retry;
                    if let Some(peer) = peer {
                        _pending_sync = Some(self.sender.send(peer, synchronize.clone()).await);
                    }
                    if self.external_workers {
                        if let Some(b) = self.fetch(peer, digest).await {
                            self.batches.insert(&digest, &b, Durability::Buffered)?;
                            return Ok(bytes_transactions(&b));
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

/// An encoded batch's version byte and transaction count.
const BATCH_HEAD: usize = 5;

/// Transactions in an encoded batch (its count field), for the log line.
fn bytes_transactions(encoded: &Bytes) -> usize {
    encoded
        .get(1..5)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b: [u8; 4]| u32::from_le_bytes(b) as usize)
}
