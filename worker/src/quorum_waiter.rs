//! Disseminates own batches and reports each to the primary once a quorum of stake stored it.

use crate::batch::SealedBatch;
use crate::metrics::WorkerMetrics;
use crate::quorum::MAX_DELIVERIES_PER_PEER;
use crate::quorum::{Outcome, QuorumCore, Target};
use crate::submit::{Acks, Report, SubmitError};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weft_network::{Peer, ReliableSender, SENDER_CHANNEL_CAPACITY};
use weft_storage::{Durability, Map};
use weft_types::{AuthorityIndex, BatchDigest, Committee, WorkerId, WorkerToPrimary};

// A delivery is never cancelled before the peer answers, so the sender's queue to a peer holds
// at most MAX_DELIVERIES_PER_PEER requests and `ReliableSender::send` never waits.
const _: () = assert!(MAX_DELIVERIES_PER_PEER < SENDER_CHANNEL_CAPACITY);

/// A delivery's outcome: batch sequence number, target, whether it was stored there.
type Answer = (u64, Target, bool);

/// An own batch that has not reached a quorum yet: what the core does not need.
struct Pending {
    digest: BatchDigest,
    /// The `WorkerMessage::Batch` encoding, shared by every delivery.
    message: Bytes,
    /// For the quorum latency histogram.
    sealed_at: Instant,
    /// Handed to the primary connector with the `OurBatch` report.
    acks: Acks,
}

/// Broadcasts each sealed batch to the same-id worker of every other authority and stores it
/// locally; once the acknowledgements plus the own stake reach `quorum_threshold`, reports it as
/// `OurBatch` to the primary. Many batches are in flight at once. Which peer gets which batch
/// when, and when a batch is decided, is [`QuorumCore`]'s (see `quorum.rs`); this actor does
/// the sending and storing.
///
/// Deliveries that are still running when their batch reaches a quorum are left to finish:
/// they cost nothing but the batch's memory, they spare a slow-but-honest peer a synchronizer
/// round trip when the batch gets into a header, and they are bounded by
/// [`MAX_DELIVERIES_PER_PEER`] per peer — a dead peer holds that many batches and no more.
/// Cancelling them instead would leave cancelled requests in the sender's queue of a dead
/// peer, which is only drained while that peer is reachable.
pub struct QuorumWaiter {
    worker_id: WorkerId,
    core: QuorumCore,
    /// The same-id workers of the other authorities, in the core's order.
    peers: Vec<Peer>,
    /// Used for batch deliveries only, so its queue to a peer holds only those.
    sender: ReliableSender,
    /// Where own batches are stored.
    batches: Map<BatchDigest, Bytes>,
    /// Batches short of a quorum, by sequence number (at most MAX_BATCHES_AWAITING_QUORUM).
    pending: HashMap<u64, Pending>,
    /// Every outstanding delivery, to peers and to the own store.
    deliveries: FuturesUnordered<BoxFuture<'static, Answer>>,
    rx_batch_maker: mpsc::Receiver<SealedBatch>,
    /// `OurBatch` reports, with the acknowledgements the primary's answer resolves.
    tx_primary: mpsc::Sender<Report>,
    metrics: Arc<WorkerMetrics>,
    /// Cancelled when the worker stops; outstanding deliveries are then dropped.
    shutdown: CancellationToken,
}

impl QuorumWaiter {
    /// `peers`: the same-id workers of the other authorities.
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        authority: AuthorityIndex,
        worker_id: WorkerId,
        committee: &Committee,
        peers: Vec<(AuthorityIndex, Peer)>,
        sender: ReliableSender,
        batches: Map<BatchDigest, Bytes>,
        rx_batch_maker: mpsc::Receiver<SealedBatch>,
        tx_primary: mpsc::Sender<Report>,
        metrics: Arc<WorkerMetrics>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        let core = QuorumCore::new(
            committee.stake(authority),
            committee.quorum_threshold(),
            peers.iter().map(|(a, _)| committee.stake(*a)),
        );
        let waiter = Self {
            worker_id,
            core,
            peers: peers.into_iter().map(|(_, peer)| peer).collect(),
            sender,
            batches,
            pending: HashMap::new(),
            deliveries: FuturesUnordered::new(),
            rx_batch_maker,
            tx_primary,
            metrics,
            shutdown,
        };
        tokio::spawn(waiter.run())
    }

    async fn run(mut self) {
        let depth = self
            .metrics
            .channel_depth
            .with_label_values(&["batch_maker_to_quorum_waiter"]);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                Some(batch) = self.rx_batch_maker.recv(), if !self.core.is_full() => {
                    depth.set(self.rx_batch_maker.len() as i64);
                    self.disseminate(batch).await;
                }
                Some((sequence, target, stored)) = self.deliveries.next() => {
                    if target == Target::Own && !stored {
                        tracing::error!("storing an own batch failed; the worker stops disseminating");
                        break;
                    }
                    if matches!(target, Target::Peer(_)) {
                        self.metrics.deliveries_in_flight.dec();
                    }
                    let (outcome, next) = self.core.answered(sequence, target, stored);
                    if let Some((sequence, index)) = next {
                        self.deliver(index, sequence).await;
                    }
                    if !self.decided(sequence, outcome).await {
                        break;
                    }
                }
            }
            self.metrics
                .batches_awaiting_quorum
                .set(self.core.pending_len() as i64);
        }
        // Dropping the remaining deliveries cancels them.
        self.metrics
            .deliveries_in_flight
            .sub(self.core.in_flight() as i64);
    }

    async fn disseminate(&mut self, batch: SealedBatch) {
        let (sequence, now) = self.core.add();
        let batches = self.batches.clone();
        let (digest, stored) = (batch.digest, batch.batch());
        // RocksDB writes block; keep them off the runtime's threads.
        self.deliveries.push(
            tokio::task::spawn_blocking(move || {
                batches
                    .insert(&digest, &stored, Durability::Buffered)
                    .map_err(|e| tracing::error!("cannot store own batch {digest}: {e}"))
                    .is_ok()
            })
            .map(move |stored| (sequence, Target::Own, stored.unwrap_or(false)))
            .boxed(),
        );
        self.pending.insert(
            sequence,
            Pending {
                digest: batch.digest,
                message: batch.message,
                sealed_at: Instant::now(),
                acks: batch.acks,
            },
        );
        for index in now {
            self.deliver(index, sequence).await;
        }
    }

    /// Sends batch `sequence` to peer `index` (the core gave it the slot).
    async fn deliver(&mut self, index: usize, sequence: u64) {
        let Some(pending) = self.pending.get(&sequence) else {
            return;
        };
        let response = self
            .sender
            .send(&self.peers[index], pending.message.clone())
            .await;
        self.metrics.deliveries_in_flight.inc();
        self.deliveries.push(
            response
                .map(move |result| (sequence, Target::Peer(index), result.is_ok()))
                .boxed(),
        );
    }

    /// Carries out what an answer decided for batch `sequence`. Returns false if the primary
    /// connector is gone.
    async fn decided(&mut self, sequence: u64, outcome: Outcome) -> bool {
        let pending = match outcome {
            Outcome::Pending | Outcome::Straggler => return true,
            Outcome::Quorum | Outcome::NoQuorum { .. } => match self.pending.remove(&sequence) {
                Some(pending) => pending,
                None => return true,
            },
        };
        if let Outcome::NoQuorum { stake } = outcome {
            self.metrics.batches_without_quorum.inc();
            tracing::warn!(digest = %pending.digest, stake,
                "batch cannot reach a quorum: the peers that answered refused it");
            pending.acks.fail(SubmitError::NoQuorum);
            return true;
        }
        self.metrics
            .quorum_latency
            .observe(pending.sealed_at.elapsed().as_secs_f64());
        let report = Report {
            message: WorkerToPrimary::OurBatch {
                digest: pending.digest,
                worker_id: self.worker_id,
            },
            acks: pending.acks,
        };
        self.tx_primary.send(report).await.is_ok()
    }
}
