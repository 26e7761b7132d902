//! The actor around [`Core`]: feeds it verified messages, clock readings and commits, and
//! carries out its outputs — durable vote records first, then storage, network and the other
//! actors.

use crate::core::{Core, CoreError, Output};
use crate::messages::{CoreInput, PayloadRequest, SyncRequest};
use crate::metrics::PrimaryMetrics;
use crate::{CommitNotice, PrimaryStores};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weft_network::{CancelHandler, Peer, ReliableSender};
use weft_storage::{Durability, StoreError};
use weft_types::codec::encode_message;
use weft_types::{
    AuthorityIndex, BatchDigest, Certificate, Committee, HeaderDigest, PrimaryMessage,
    PrimaryToWorker, Round, WorkerId,
};

/// Depth of the channel into the core.
pub const CORE_CHANNEL_CAPACITY: usize = 10_000;

pub(crate) struct Runner {
    core: Core,
    me: AuthorityIndex,
    stores: PrimaryStores,
    sender: ReliableSender,
    /// The other primaries.
    peers: BTreeMap<AuthorityIndex, Peer>,
    /// This authority's workers, by id (they authenticate with this authority's key).
    workers: BTreeMap<WorkerId, Peer>,
    metrics: Arc<PrimaryMetrics>,
    rx_core: mpsc::Receiver<CoreInput>,
    /// Sub-DAGs committed by consensus and output.
    rx_committed: mpsc::Receiver<CommitNotice>,
    /// Certificates in causal order, for consensus.
    tx_consensus: mpsc::Sender<Certificate>,
    tx_synchronizer: mpsc::UnboundedSender<SyncRequest>,
    tx_payload: mpsc::UnboundedSender<PayloadRequest>,
    /// The GC round, for the actors that drop per-round work.
    tx_gc_round: watch::Sender<Round>,
    /// Unanswered sends by round; dropped (cancelled) once the round is far behind.
    inflight: BTreeMap<Round, Vec<CancelHandler>>,
    /// When each own header was proposed, for the certificate latency metric.
    proposed_at: BTreeMap<Round, Instant>,
    /// Own headers stored, by round, so they are deleted at GC even if never certified.
    own_headers: BTreeMap<Round, HeaderDigest>,
    start: Instant,
    /// The wall clock at `start`, in ms since the UNIX epoch: the core's clock is this plus
    /// the monotonic time since, so it dates headers in wall time and never goes back.
    clock_origin_ms: u64,
    gc_depth: Round,
    /// Rounds of certificates the store keeps below the GC round, for peers catching up.
    certificate_retention: Round,
    /// Stored certificates of rounds below this one are deleted already (in this run).
    certificates_pruned_below: Round,
    /// The GC round at which stored batches no certificate carried are next looked for.
    next_orphan_sweep: Round,
    /// Cancelled when the primary stops: the runner finishes its step and ends.
    shutdown: CancellationToken,
}

/// What [`Runner::spawn`] needs.
pub(crate) struct RunnerArgs<'a> {
    pub core: Core,
    pub committee: &'a Committee,
    pub stores: PrimaryStores,
    pub sender: ReliableSender,
    pub gc_depth: Round,
    pub certificate_retention: Round,
    pub metrics: Arc<PrimaryMetrics>,
    pub rx_core: mpsc::Receiver<CoreInput>,
    pub rx_committed: mpsc::Receiver<CommitNotice>,
    pub tx_consensus: mpsc::Sender<Certificate>,
    pub tx_synchronizer: mpsc::UnboundedSender<SyncRequest>,
    pub tx_payload: mpsc::UnboundedSender<PayloadRequest>,
    pub tx_gc_round: watch::Sender<Round>,
    pub shutdown: CancellationToken,
}

impl Runner {
    pub(crate) fn spawn(args: RunnerArgs<'_>) -> JoinHandle<()> {
        let me = args.core.me();
        let workers = crate::own_workers(args.committee, me);
        let peers = crate::other_primaries(args.committee, me);
        let own_headers = args
            .core
            .last_header_digest()
            .map(|(r, d)| BTreeMap::from([(r, d)]))
            .unwrap_or_default();
        let runner = Self {
            core: args.core,
            me,
            stores: args.stores,
            sender: args.sender,
            peers,
            workers,
            metrics: args.metrics,
            rx_core: args.rx_core,
            rx_committed: args.rx_committed,
            tx_consensus: args.tx_consensus,
            tx_synchronizer: args.tx_synchronizer,
            tx_payload: args.tx_payload,
            tx_gc_round: args.tx_gc_round,
            inflight: BTreeMap::new(),
            proposed_at: BTreeMap::new(),
            own_headers,
            start: Instant::now(),
            clock_origin_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            gc_depth: args.gc_depth,
            certificate_retention: args.certificate_retention,
            certificates_pruned_below: 0,
            next_orphan_sweep: 0,
            shutdown: args.shutdown,
        };
        tokio::spawn(runner.run())
    }

    fn now_ms(&self) -> u64 {
        self.clock_origin_ms + self.start.elapsed().as_millis() as u64
    }

    async fn run(mut self) {
        // Outputs of recovery (a header to broadcast again) come first.
        self.core.tick(self.now_ms());
        if let Err(e) = self.carry_out().await {
            tracing::error!("primary storage failed: {e}; stopping");
            return;
        }
        loop {
            let now = self.now_ms();
            let deadline = self.core.next_deadline_ms();
            // Without a future deadline the core waits for input; ticking into the past again
            // would only spin.
            let timer = self.start
                + std::time::Duration::from_millis(
                    deadline.max(now + 1).saturating_sub(self.clock_origin_ms),
                );
            let timer_armed = deadline > now;
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                input = self.rx_core.recv() => match input {
                    Some(input) => {
                        self.core.tick(self.now_ms());
                        self.handle(input);
                    }
                    None => break,
                },
                committed = self.rx_committed.recv() => match committed {
                    Some(notice) => {
                        if let Some(leaders) = notice.leaders {
                            self.core.set_leaders(leaders);
                        }
                        self.core.own_certificates_committed(&notice.own_rounds);
                        self.core.handle_committed(notice.leader_round);
                    }
                    // Consensus stopped: the node is shutting down.
                    None => break,
                },
                _ = tokio::time::sleep_until(timer), if timer_armed => {
                    self.core.tick(self.now_ms());
                }
            }
            if let Err(e) = self.carry_out().await {
                tracing::error!("primary storage failed: {e}; stopping");
                return;
            }
        }
    }

    fn handle(&mut self, input: CoreInput) {
        let label = input.label();
        let result = match input {
            CoreInput::Header(h) => self.core.handle_header(h),
            CoreInput::Vote(v) => self.core.handle_vote(v),
            CoreInput::Certificate(c) => self.core.handle_certificate(c),
            CoreInput::OurBatch(digest, worker) => {
                self.core.add_batch(digest, worker);
                Ok(())
            }
            CoreInput::PayloadAvailable {
                author,
                round,
                digest,
            } => self.core.payload_available(author, round, digest),
        };
        if let Err(e) = result {
            self.reject(label, &e);
        }
    }

    fn reject(&self, message: &str, e: &CoreError) {
        self.metrics
            .rejected
            .with_label_values(&[message, e.kind()])
            .inc();
        if e.is_benign() {
            tracing::debug!("{message} ignored: {e}");
        } else {
            tracing::warn!("{message} rejected: {e}");
        }
    }

    /// Makes the step's vote records durable in one synced write, then carries out its
    /// outputs in order. A storage error is fatal: continuing could send a vote that is not on
    /// disk.
    async fn carry_out(&mut self) -> Result<(), StoreError> {
        let ready = self.core.take_ready();
        if !ready.votes.is_empty() || ready.header.is_some() {
            let mut write = self.stores.store.batch();
            for v in &ready.votes {
                write.insert(&self.stores.votes, &v.author, &(v.round, v.digest));
            }
            if let Some(header) = &ready.header {
                write.insert(&self.stores.headers, &header.digest(), header);
            }
            write.commit_blocking(Durability::Sync).await?;
            self.metrics.vote_writes.inc();
        }
        if let Some(header) = &ready.header {
            self.own_headers.insert(header.round, header.digest());
            self.proposed_at.insert(header.round, Instant::now());
            self.metrics.headers_proposed.inc();
            self.metrics.round.set(header.round as i64);
            tracing::debug!(
                round = header.round,
                batches = header.payload.len(),
                "proposed header"
            );
        }
        for output in ready.outputs {
            match output {
                Output::BroadcastHeader(header) => {
                    let round = header.round;
                    self.broadcast(round, PrimaryMessage::Header(header)).await;
                }
                Output::SendVote { to, vote } => {
                    self.metrics.votes_sent.inc();
                    if let Some(peer) = self.peers.get(&to).cloned() {
                        let round = vote.round;
                        let h = self
                            .sender
                            .send(&peer, encode_message(&PrimaryMessage::Vote(vote)))
                            .await;
                        self.inflight.entry(round).or_default().push(h);
                    }
                }
                Output::BroadcastCertificate(certificate) => {
                    let round = certificate.round();
                    self.metrics.certificates_formed.inc();
                    if let Some(at) = self.proposed_at.remove(&round) {
                        self.metrics
                            .certificate_latency
                            .observe(at.elapsed().as_secs_f64());
                    }
                    self.broadcast(round, PrimaryMessage::Certificate(certificate))
                        .await;
                }
                Output::NewCertificate(certificate) => self.new_certificate(certificate).await?,
                Output::FetchCertificates {
                    from,
                    round,
                    digests,
                } => {
                    let _ = self.tx_synchronizer.send(SyncRequest::Certificates {
                        from,
                        round,
                        digests,
                    });
                }
                Output::FetchRange { from, from_round } => {
                    let _ = self
                        .tx_synchronizer
                        .send(SyncRequest::Range { from, from_round });
                }
                Output::SyncPayload {
                    header,
                    author,
                    round,
                    payload,
                    notify,
                } => {
                    let _ = self.tx_payload.send(PayloadRequest {
                        header,
                        author,
                        round,
                        payload,
                        notify,
                    });
                }
                Output::GarbageCollected {
                    gc_round,
                    certificates,
                } => self.garbage_collect(gc_round, certificates).await?,
            }
        }
        self.metrics.pending.set(self.core.pending_len() as i64);
        self.metrics
            .dag_certificates
            .set(self.core.dag().len() as i64);
        // Unanswered sends of rounds far behind are cancelled: a peer that needs them
        // catches up by fetching.
        let keep_from = self.core.round().saturating_sub(self.gc_depth);
        self.inflight = self.inflight.split_off(&keep_from);
        self.proposed_at = self.proposed_at.split_off(&keep_from);
        Ok(())
    }

    async fn broadcast(&mut self, round: Round, message: PrimaryMessage) {
        let bytes = encode_message(&message);
        let peers: Vec<Peer> = self.peers.values().cloned().collect();
        let handlers = self.sender.broadcast(&peers, bytes).await;
        self.inflight.entry(round).or_default().extend(handlers);
    }

    async fn new_certificate(&mut self, certificate: Certificate) -> Result<(), StoreError> {
        let digest = certificate.digest();
        let mut batch = self.stores.store.batch();
        batch
            .insert(&self.stores.certificates, &digest, &certificate)
            .insert(
                &self.stores.certificates_by_round,
                &(certificate.round(), certificate.author()),
                &digest,
            );
        batch.commit(Durability::Buffered)?;
        self.metrics.certificates_inserted.inc();
        self.metrics
            .dag_round
            .set(self.core.dag().highest_round() as i64);
        if certificate.author() == self.me {
            tracing::debug!(round = certificate.round(), "own certificate");
        }
        // Consensus applies backpressure here; if it is gone the node is stopping.
        let _ = self.tx_consensus.send(certificate).await;
        Ok(())
    }

    /// Batches stored (by own workers, for anyone) while the GC round was more than two GC
    /// depths below `gc_round`, that nothing still carries: those of headers never certified,
    /// such as an author's last before a crash. Certified ones went with their certificates;
    /// without this sweep the rest would stay on disk for good. A header still proposing one
    /// later has it fetched again.
    fn orphans(&self, gc_round: Round) -> Result<Vec<(BatchDigest, WorkerId)>, StoreError> {
        let old: Vec<(BatchDigest, WorkerId)> = self
            .stores
            .payload
            .iter()?
            .into_iter()
            .filter(|(_, stored_at)| stored_at + 2 * self.gc_depth < gc_round)
            .map(|(key, _)| key)
            .collect();
        let candidates: HashSet<BatchDigest> = old.iter().map(|(d, _)| *d).collect();
        let in_use = self.core.batches_in_use(&candidates);
        let orphans: Vec<_> = old
            .into_iter()
            .filter(|(d, _)| !in_use.contains(d))
            .collect();
        self.metrics.orphan_batches.inc_by(orphans.len() as u64);
        Ok(orphans)
    }

    /// Deletes what is below the GC round from disk and asks the workers to drop its batches.
    async fn garbage_collect(
        &mut self,
        gc_round: Round,
        certificates: Vec<Certificate>,
    ) -> Result<(), StoreError> {
        let s = &self.stores;
        let mut batch = s.store.batch();
        let mut by_worker: BTreeMap<WorkerId, Vec<BatchDigest>> = BTreeMap::new();
        let collected: HashSet<BatchDigest> = certificates
            .iter()
            .flat_map(|c| c.header.payload.iter().map(|(d, _)| *d))
            .collect();
        let in_use = self.core.batches_in_use(&collected);
        for c in &certificates {
            for (digest, worker) in &c.header.payload {
                if in_use.contains(digest) {
                    continue;
                }
                batch.remove(&s.payload, &(*digest, *worker));
                by_worker.entry(*worker).or_default().push(*digest);
            }
        }
        if gc_round >= self.next_orphan_sweep {
            self.next_orphan_sweep = gc_round + self.gc_depth;
            for (digest, worker) in self.orphans(gc_round)? {
                batch.remove(&s.payload, &(digest, worker));
                by_worker.entry(worker).or_default().push(digest);
            }
        }
        let newer = self.own_headers.split_off(&(gc_round + 1));
        for digest in std::mem::replace(&mut self.own_headers, newer).into_values() {
            batch.remove(&s.headers, &digest);
        }
        // Collected certificates stay stored `certificate_retention` rounds longer: a peer
        // further behind than `gc_depth` catches up by fetching them.
        let keep_from = gc_round.saturating_sub(self.certificate_retention) + 1;
        if keep_from > self.certificates_pruned_below {
            let from = (self.certificates_pruned_below, AuthorityIndex(0));
            let to = (keep_from, AuthorityIndex(0));
            for (_, digest) in s.certificates_by_round.range(&from, &to, usize::MAX)? {
                batch.remove(&s.certificates, &digest);
            }
            batch.remove_range(&s.certificates_by_round, &from, &to);
            self.certificates_pruned_below = keep_from;
        }
        batch.insert(&s.consensus, &crate::GC_ROUND_KEY.to_string(), &gc_round);
        batch.commit(Durability::Buffered)?;
        self.metrics.gc_round.set(gc_round as i64);
        let _ = self.tx_gc_round.send(gc_round);
        for (worker, digests) in by_worker {
            let Some(peer) = self.workers.get(&worker).cloned() else {
                continue;
            };
            for chunk in digests.chunks(weft_types::messages::MAX_DIGESTS_PER_MESSAGE) {
                let message = PrimaryToWorker::DeleteBatches {
                    digests: chunk.to_vec(),
                };
                let h = self.sender.send(&peer, encode_message(&message)).await;
                self.inflight.entry(self.core.round()).or_default().push(h);
            }
        }
        Ok(())
    }
}
