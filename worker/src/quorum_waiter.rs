//! Disseminates own batches and reports each to the primary once a quorum of stake stored it.

use crate::batch::SealedBatch;
use crate::metrics::WorkerMetrics;
use crate::submit::{Acks, Report, SubmitError};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weft_network::{Peer, ReliableSender, SENDER_CHANNEL_CAPACITY};
use weft_storage::{Durability, Map};
use weft_types::{AuthorityIndex, BatchDigest, Committee, Stake, WorkerId, WorkerToPrimary};

/// Own batches broadcast and still short of a quorum. When reached, the waiter stops taking
/// sealed batches, which stops the batch maker, which stops reading client connections.
pub const MAX_BATCHES_AWAITING_QUORUM: usize = 32;
/// Batches sent to one peer and not yet acknowledged. Further batches for that peer wait their
/// turn while they still lack a quorum, and are skipped once they have one (the peer's
/// primary will have them synchronized if a header needs them).
pub const MAX_DELIVERIES_PER_PEER: usize = 32;

// A delivery is never cancelled before the peer answers, so the sender's queue to a peer holds
// at most MAX_DELIVERIES_PER_PEER requests and `ReliableSender::send` never waits.
const _: () = assert!(MAX_DELIVERIES_PER_PEER < SENDER_CHANNEL_CAPACITY);

/// Who a delivery went to: a peer (by position in `peers`), or the own store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Own,
    Peer(usize),
}

/// A delivery's outcome: batch sequence number, target, whether it was stored there.
type Delivery = (u64, Target, bool);

/// An own batch that has not reached a quorum yet.
struct Pending {
    digest: BatchDigest,
    /// The `WorkerMessage::Batch` encoding, shared by every delivery.
    message: Bytes,
    /// Stake of the targets that acknowledged storing it, own stake included once stored.
    stake: Stake,
    /// Targets that have not answered (sent, or waiting for a delivery slot).
    unanswered: usize,
    /// For the quorum latency histogram.
    sealed_at: Instant,
    /// Handed to the primary connector with the `OurBatch` report.
    acks: Acks,
}

/// A peer worker and the deliveries to it.
struct PeerState {
    stake: Stake,
    peer: Peer,
    /// Deliveries sent and not answered, at most MAX_DELIVERIES_PER_PEER.
    in_flight: usize,
    /// Pending batches waiting for a delivery slot, oldest first.
    waiting: VecDeque<u64>,
}

/// Broadcasts each sealed batch to the same-id worker of every other authority and stores it
/// locally; once the acknowledgements plus the own stake reach `quorum_threshold`, reports it as
/// `OurBatch` to the primary. Many batches are in flight at once.
///
/// Deliveries that are still running when their batch reaches a quorum are left to finish:
/// they cost nothing but the batch's memory, they spare a slow-but-honest peer a synchronizer
/// round trip when the batch gets into a header, and they are bounded by
/// [`MAX_DELIVERIES_PER_PEER`] per peer — a dead peer holds that many batches and no more.
/// Cancelling them instead would leave cancelled requests in the sender's queue of a dead
/// peer, which is only drained while that peer is reachable.
pub struct QuorumWaiter {
    worker_id: WorkerId,
    /// Stake counted once the own store holds a batch.
    own_stake: Stake,
    /// `committee.quorum_threshold()`.
    quorum: Stake,
    /// The same-id workers of the other authorities.
    peers: Vec<PeerState>,
    /// Used for batch deliveries only, so its queue to a peer holds only those.
    sender: ReliableSender,
    /// Where own batches are stored.
    batches: Map<BatchDigest, Bytes>,
    /// Batches short of a quorum, by sequence number (at most MAX_BATCHES_AWAITING_QUORUM).
    pending: HashMap<u64, Pending>,
    next_sequence: u64,
    /// Every outstanding delivery, to peers and to the own store.
    deliveries: FuturesUnordered<BoxFuture<'static, Delivery>>,
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
        let peers = peers
            .into_iter()
            .map(|(authority, peer)| PeerState {
                stake: committee.stake(authority),
                peer,
                in_flight: 0,
                waiting: VecDeque::new(),
            })
            .collect();
        let waiter = Self {
            worker_id,
            own_stake: committee.stake(authority),
            quorum: committee.quorum_threshold(),
            peers,
            sender,
            batches,
            pending: HashMap::new(),
            next_sequence: 0,
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
                Some(batch) = self.rx_batch_maker.recv(),
                    if self.pending.len() < MAX_BATCHES_AWAITING_QUORUM =>
                {
                    depth.set(self.rx_batch_maker.len() as i64);
                    self.disseminate(batch).await;
                }
                Some((sequence, target, stored)) = self.deliveries.next() => {
                    let stake = match target {
                        Target::Own if !stored => {
                            tracing::error!("storing an own batch failed; the worker stops disseminating");
                            break;
                        }
                        Target::Own => self.own_stake,
                        Target::Peer(index) => {
                            self.peers[index].in_flight -= 1;
                            self.metrics.deliveries_in_flight.dec();
                            self.deliver_next(index).await;
                            self.peers[index].stake
                        }
                    };
                    if !self.record(sequence, if stored { stake } else { 0 }).await {
                        break;
                    }
                }
            }
            self.metrics
                .batches_awaiting_quorum
                .set(self.pending.len() as i64);
        }
        // Dropping the remaining deliveries cancels them.
        self.metrics
            .deliveries_in_flight
            .sub(self.peers.iter().map(|p| p.in_flight as i64).sum());
    }

    async fn disseminate(&mut self, batch: SealedBatch) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
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
                stake: 0,
                unanswered: self.peers.len() + 1,
                sealed_at: Instant::now(),
                acks: batch.acks,
            },
        );
        for index in 0..self.peers.len() {
            if self.peers[index].in_flight < MAX_DELIVERIES_PER_PEER {
                self.deliver(index, sequence).await;
            } else {
                self.peers[index].waiting.push_back(sequence);
            }
        }
    }

    /// Sends batch `sequence` to peer `index`; false if the batch is no longer pending.
    async fn deliver(&mut self, index: usize, sequence: u64) -> bool {
        let Some(pending) = self.pending.get(&sequence) else {
            return false;
        };
        let peer = &mut self.peers[index];
        let response = self.sender.send(&peer.peer, pending.message.clone()).await;
        peer.in_flight += 1;
        self.metrics.deliveries_in_flight.inc();
        self.deliveries.push(
            response
                .map(move |result| (sequence, Target::Peer(index), result.is_ok()))
                .boxed(),
        );
        true
    }

    /// A delivery slot of peer `index` is free: give it to the oldest batch waiting for it.
    async fn deliver_next(&mut self, index: usize) {
        while let Some(sequence) = self.peers[index].waiting.pop_front() {
            if self.deliver(index, sequence).await {
                return;
            }
        }
    }

    /// Counts an answer for batch `sequence` (`stake` 0 if it was not stored). Returns false if
    /// the primary connector is gone.
    async fn record(&mut self, sequence: u64, stake: Stake) -> bool {
        let Some(pending) = self.pending.get_mut(&sequence) else {
            // Already reported: a straggler delivery.
            return true;
        };
        pending.stake += stake;
        pending.unanswered -= 1;
        let reached = pending.stake >= self.quorum;
        if !reached && pending.unanswered > 0 {
            return true;
        }
        let Some(pending) = self.pending.remove(&sequence) else {
            return true;
        };
        for peer in &mut self.peers {
            peer.waiting.retain(|s| *s != sequence);
        }
        if !reached {
            self.metrics.batches_without_quorum.inc();
            tracing::warn!(digest = %pending.digest, stake = pending.stake,
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
