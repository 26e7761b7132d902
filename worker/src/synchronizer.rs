//! Fetches the batches the own primary needs from other authorities' workers.

use crate::batch::validate_batch;
use crate::error::RequestError;
use crate::metrics::WorkerMetrics;
use crate::store_batch;
use crate::submit::Report;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_network::{Peer, ReliableSender};
use weft_storage::Map;
use weft_types::codec::{decode_message, encode_message};
use weft_types::{
    AuthorityIndex, BatchDigest, BatchResponse, WorkerId, WorkerMessage, WorkerToPrimary,
};

/// Rounds of requests for one digest (the first to the target, then each retry) before the
/// synchronizer gives up on it. The primary asks again if it still needs the batch.
pub const MAX_SYNC_ATTEMPTS: u32 = 5;

/// `PrimaryToWorker::Synchronize`, as the handler passes it on.
#[derive(Debug)]
pub struct SyncRequest {
    pub digests: Vec<BatchDigest>,
    pub target: AuthorityIndex,
}

/// The answer to one batch request: who answered, what was asked, the response.
type Answer = (AuthorityIndex, Vec<BatchDigest>, Option<Bytes>);

/// Settings of the synchronizer, from the parameters.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    pub retry_delay: Duration,
    pub retry_nodes: usize,
    /// Digests per request, so that the response (whole batches) fits in a message.
    pub digests_per_request: usize,
    pub max_transaction_size: usize,
    pub max_message_size: usize,
}

/// For each digest the primary asks for that is not stored: asks `target`'s worker, then, every
/// `retry_delay`, `retry_nodes` other authorities' workers (a different set each round), until
/// the batch is stored or after [`MAX_SYNC_ATTEMPTS`] rounds. Digests already being fetched
/// are not asked for twice. A received batch is stored only if it hashes to a digest that was
/// asked for and is well formed; each stored batch is reported to the primary as `OthersBatch`.
pub struct Synchronizer {
    worker_id: WorkerId,
    /// The same-id workers of the other authorities, by authority index.
    peers: Vec<(AuthorityIndex, Peer)>,
    /// Used for batch requests only.
    sender: ReliableSender,
    /// Where fetched batches are stored.
    batches: Map<BatchDigest, Bytes>,
    config: SyncConfig,
    /// Digests being fetched, with the request rounds made for each.
    fetching: HashMap<BatchDigest, u32>,
    /// Batch requests awaiting their response (each with a timeout).
    requests: FuturesUnordered<BoxFuture<'static, Answer>>,
    /// Timers: each yields its digests when their retry delay has passed.
    retries: FuturesUnordered<BoxFuture<'static, Vec<BatchDigest>>>,
    /// The own primary's `Synchronize` requests, from the server.
    rx_handler: mpsc::Receiver<SyncRequest>,
    /// `OthersBatch` reports.
    tx_primary: mpsc::Sender<Report>,
    metrics: Arc<WorkerMetrics>,
    /// Cancelled when the worker stops.
    shutdown: CancellationToken,
}

impl Synchronizer {
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        worker_id: WorkerId,
        peers: Vec<(AuthorityIndex, Peer)>,
        sender: ReliableSender,
        batches: Map<BatchDigest, Bytes>,
        config: SyncConfig,
        rx_handler: mpsc::Receiver<SyncRequest>,
        tx_primary: mpsc::Sender<Report>,
        metrics: Arc<WorkerMetrics>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(
            Self {
                worker_id,
                peers,
                sender,
                batches,
                config,
                fetching: HashMap::new(),
                requests: FuturesUnordered::new(),
                retries: FuturesUnordered::new(),
                rx_handler,
                tx_primary,
                metrics,
                shutdown,
            }
            .run(),
        )
    }

    async fn run(mut self) {
        let depth = self
            .metrics
            .channel_depth
            .with_label_values(&["handler_to_synchronizer"]);
        loop {
            let result = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                Some(request) = self.rx_handler.recv() => {
                    depth.set(self.rx_handler.len() as i64);
                    self.synchronize(request).await
                }
                Some((peer, asked, response)) = self.requests.next() => {
                    match response {
                        Some(response) => self.receive(peer, asked, response).await,
                        None => Ok(()),
                    }
                }
                Some(digests) = self.retries.next() => self.retry(digests).await,
            };
            self.metrics.sync_pending.set(self.fetching.len() as i64);
            match result {
                Ok(()) => {}
                Err(RequestError::ShuttingDown) => break,
                Err(e) => tracing::error!("synchronizer: {e}"),
            }
        }
        self.metrics.sync_pending.set(0);
    }

    async fn synchronize(&mut self, request: SyncRequest) -> Result<(), RequestError> {
        let mut new = Vec::new();
        for digest in request.digests {
            if self.fetching.contains_key(&digest) || new.contains(&digest) {
                continue;
            }
            if self
                .batches
                .contains(&digest)
                .map_err(|_| RequestError::Store)?
            {
                self.report(digest).await?;
            } else {
                new.push(digest);
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        for digest in &new {
            self.fetching.insert(*digest, 1);
        }
        match self.peers.iter().position(|(a, _)| *a == request.target) {
            Some(index) => self.ask(index, &new).await,
            // Our own authority or not a member: nobody to ask first, so retry at once.
            None => return self.retry(new).await,
        }
        self.schedule_retry(new);
        Ok(())
    }

    /// Requests `digests` from peer `index`, in requests whose responses fit in a message.
    /// A request is dropped (cancelled) if unanswered after two retry delays: by then its
    /// digests have been asked of others.
    async fn ask(&mut self, index: usize, digests: &[BatchDigest]) {
        let (authority, peer) = &self.peers[index];
        for chunk in digests.chunks(self.config.digests_per_request) {
            let request = encode_message(&WorkerMessage::BatchRequest(chunk.to_vec()));
            let response = self.sender.send(peer, request).await;
            let (authority, asked) = (*authority, chunk.to_vec());
            let timeout = self.config.retry_delay * 2;
            self.requests.push(
                tokio::time::timeout(timeout, response)
                    .map(move |r| match r {
                        Ok(Ok(bytes)) => (authority, asked, Some(bytes)),
                        Ok(Err(e)) => {
                            tracing::debug!(%authority, "batch request failed: {e}");
                            (authority, asked, None)
                        }
                        Err(_) => (authority, asked, None),
                    })
                    .boxed(),
            );
            self.metrics.sync_requests_sent.inc();
        }
    }

    fn schedule_retry(&mut self, digests: Vec<BatchDigest>) {
        let delay = self.config.retry_delay;
        self.retries.push(
            async move {
                tokio::time::sleep(delay).await;
                digests
            }
            .boxed(),
        );
    }

    /// The retry delay of `digests` passed: ask other authorities for those still missing.
    async fn retry(&mut self, digests: Vec<BatchDigest>) -> Result<(), RequestError> {
        let mut missing = Vec::new();
        let mut round = 0;
        for digest in digests {
            let Some(attempts) = self.fetching.get_mut(&digest) else {
                continue;
            };
            // Fetched meanwhile, or broadcast by its author (the receiving path reported it).
            if self
                .batches
                .contains(&digest)
                .map_err(|_| RequestError::Store)?
            {
                self.fetching.remove(&digest);
            } else if *attempts >= MAX_SYNC_ATTEMPTS {
                self.fetching.remove(&digest);
                self.metrics.sync_gave_up.inc();
                tracing::warn!(%digest, "giving up fetching a batch");
            } else {
                *attempts += 1;
                round = round.max(*attempts);
                missing.push(digest);
            }
        }
        if missing.is_empty() || self.peers.is_empty() {
            return Ok(());
        }
        // A different window of the other authorities each round.
        let count = self.config.retry_nodes.min(self.peers.len());
        let start = (round as usize * count) % self.peers.len();
        for offset in 0..count {
            self.ask((start + offset) % self.peers.len(), &missing)
                .await;
        }
        self.schedule_retry(missing);
        Ok(())
    }

    /// Stores the batches of a response that were asked for, are being fetched and are well
    /// formed; anything else in it is counted as a rejection.
    async fn receive(
        &mut self,
        peer: AuthorityIndex,
        asked: Vec<BatchDigest>,
        response: Bytes,
    ) -> Result<(), RequestError> {
        let response: BatchResponse = match decode_message(response, self.config.max_message_size) {
            Ok(response) => response,
            Err(e) => {
                self.reject(peer, RequestError::MalformedResponse(e));
                return Ok(());
            }
        };
        let asked: HashSet<BatchDigest> = asked.into_iter().collect();
        for batch in response.batches {
            let digest = BatchDigest::of_encoded(&batch);
            if !asked.contains(&digest) {
                self.reject(peer, RequestError::UnrequestedBatch);
                continue;
            }
            if !self.fetching.contains_key(&digest) {
                // Another authority answered first.
                continue;
            }
            if let Err(e) = validate_batch(&batch, self.config.max_transaction_size) {
                self.reject(peer, e);
                continue;
            }
            store_batch(&self.batches, digest, batch).await?;
            self.fetching.remove(&digest);
            self.metrics.sync_batches_fetched.inc();
            self.report(digest).await?;
        }
        Ok(())
    }

    fn reject(&self, peer: AuthorityIndex, error: RequestError) {
        self.metrics
            .requests_rejected
            .with_label_values(&[error.kind()])
            .inc();
        tracing::warn!(%peer, "bad batch response: {error}");
    }

    async fn report(&mut self, digest: BatchDigest) -> Result<(), RequestError> {
        let report = WorkerToPrimary::OthersBatch {
            digest,
            worker_id: self.worker_id,
        };
        self.tx_primary
            .send(report.into())
            .await
            .map_err(|_| RequestError::ShuttingDown)
    }
}
