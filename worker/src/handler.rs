//! What the worker's server does with each request, from peer workers and the own primary.

use crate::batch::validate_batch;
use crate::error::RequestError;
use crate::metrics::WorkerMetrics;
use crate::submit::Report;
use crate::synchronizer::SyncRequest;
use crate::unannounced::Unannounced;
use crate::{blocking, store_batch};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use weft_network::{Handler, HandlerError};
use weft_storage::{Durability, Map, Store};
use weft_types::codec::{decode_message, encode_message};
use weft_types::{
    messages::is_primary_to_worker, AuthorityIndex, BatchDigest, BatchResponse, PrimaryToWorker,
    WorkerId, WorkerMessage, WorkerToPrimary,
};

/// Serves the worker's address. Peers (any committee member) may send `WorkerMessage`s; only the
/// own primary (`peer == authority`: it shares the authority's network key) may also send
/// `PrimaryToWorker`. The two are told apart by their tag byte (`is_primary_to_worker`).
pub struct WorkerHandler {
    pub authority: AuthorityIndex,
    pub worker_id: WorkerId,
    pub max_transaction_size: usize,
    /// Largest batch encoding a worker with the same parameters seals: a peer's broadcast
    /// above it is refused (it is not a batch of ours, and it would cost disk at up to the
    /// message size).
    pub max_batch_size: usize,
    /// Largest request decoded, and largest response built.
    pub max_message_size: usize,
    pub store: Store,
    pub batches: Map<BatchDigest, Bytes>,
    /// Batches the node's committed log refers to: the log's retention deletes those.
    pub pins: Map<BatchDigest, u64>,
    pub tx_primary: mpsc::Sender<Report>,
    pub tx_synchronizer: mpsc::Sender<SyncRequest>,
    pub metrics: Arc<WorkerMetrics>,
    /// Peers' broadcast batches no header named yet, within a quota per peer.
    pub unannounced: Mutex<Unannounced>,
}

impl Handler for WorkerHandler {
    fn handle(
        &self,
        peer: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        Box::pin(async move {
            self.serve(peer, request).await.map_err(|e| {
                self.metrics
                    .requests_rejected
                    .with_label_values(&[e.kind()])
                    .inc();
                match e {
                    RequestError::Store | RequestError::ShuttingDown => {
                        tracing::debug!(%peer, "request not served: {e}")
                    }
                    _ => tracing::warn!(%peer, "request refused: {e}"),
                }
                HandlerError::new(e)
            })
        })
    }
}

impl WorkerHandler {
    async fn serve(&self, peer: AuthorityIndex, request: Bytes) -> Result<Bytes, RequestError> {
        if is_primary_to_worker(&request) {
            if peer != self.authority {
                return Err(RequestError::NotOwnPrimary(peer));
            }
            let message =
                decode_message(request, self.max_message_size).map_err(RequestError::Decode)?;
            return self.serve_primary(message).await;
        }
        match decode_message(request, self.max_message_size).map_err(RequestError::Decode)? {
            WorkerMessage::Batch(batch) => self.receive_batch(peer, batch).await,
            WorkerMessage::BatchRequest(digests) => self.serve_batch_request(digests).await,
        }
    }

    async fn serve_primary(&self, message: PrimaryToWorker) -> Result<Bytes, RequestError> {
        match message {
            PrimaryToWorker::Synchronize { digests, target } => {
                // A header names them: a broadcast copy arriving later is payload.
                self.unannounced(|u| u.announced(&digests));
                // Acknowledged at once; the synchronizer reports each batch when it has it.
                self.tx_synchronizer
                    .send(SyncRequest { digests, target })
                    .await
                    .map_err(|_| RequestError::ShuttingDown)?;
            }
            PrimaryToWorker::Announced { digests } => self.unannounced(|u| u.announced(&digests)),
            PrimaryToWorker::DeleteBatches { digests } => {
                self.unannounced(|u| u.deleted(&digests));
                let (store, batches) = (self.store.clone(), self.batches.clone());
                let pins = self.pins.clone();
                let deleted = blocking(move || {
                    let pinned = pins.multi_get(&digests)?;
                    let mut write = store.batch();
                    let mut count = 0;
                    for (digest, _) in digests.iter().zip(pinned).filter(|(_, p)| p.is_none()) {
                        write.remove(&batches, digest);
                        count += 1;
                    }
                    write.commit(Durability::Buffered)?;
                    Ok(count)
                })
                .await?;
                self.metrics.batches_deleted.inc_by(deleted);
            }
        }
        Ok(Bytes::new())
    }

    /// Stores a batch broadcast by another authority's worker, within that authority's quota
    /// of unannounced batches, and reports it to the primary.
    async fn receive_batch(
        &self,
        peer: AuthorityIndex,
        batch: Bytes,
    ) -> Result<Bytes, RequestError> {
        if batch.len() > self.max_batch_size {
            return Err(RequestError::BatchTooLarge {
                size: batch.len(),
                limit: self.max_batch_size,
            });
        }
        validate_batch(&batch, self.max_transaction_size)?;
        let digest = BatchDigest::of_encoded(&batch);
        self.unannounced(|u| u.admit(peer, digest, batch.len()))
            .map_err(|e| RequestError::PeerQuota {
                peer,
                held: e.held,
                limit: e.limit,
            })?;
        if let Err(e) = store_batch(&self.batches, digest, batch).await {
            self.unannounced(|u| u.deleted(&[digest]));
            return Err(e);
        }
        self.metrics.batches_received.inc();
        let report = WorkerToPrimary::OthersBatch {
            digest,
            worker_id: self.worker_id,
        };
        self.tx_primary
            .send(report.into())
            .await
            .map_err(|_| RequestError::ShuttingDown)?;
        Ok(Bytes::new())
    }

    /// Updates the unannounced accounts, and their gauge.
    fn unannounced<T>(&self, update: impl FnOnce(&mut Unannounced) -> T) -> T {
        // Every update leaves the accounts consistent, so a poisoned lock is still usable.
        let mut accounts = self.unannounced.lock().unwrap_or_else(|e| e.into_inner());
        let result = update(&mut accounts);
        self.metrics.unannounced_bytes.set(accounts.total() as i64);
        result
    }

    /// Answers with the stored batches among `digests`, leaving out unknown ones and any that
    /// would take the response past `max_message_size` (the requester asks again for those).
    /// Batches are loaded one at a time and loading stops once the answer is full, so a
    /// request costs at most one message of reads; a digest named twice refuses the request.
    async fn serve_batch_request(&self, digests: Vec<BatchDigest>) -> Result<Bytes, RequestError> {
        let mut seen = std::collections::HashSet::with_capacity(digests.len());
        if let Some(twice) = digests.iter().find(|d| !seen.insert(**d)) {
            return Err(RequestError::DuplicateDigest(*twice));
        }
        let (batches, max_message_size) = (self.batches.clone(), self.max_message_size);
        let batches = blocking(move || {
            // Version byte and element count.
            let mut size = 1 + 4;
            let mut answer = Vec::new();
            for digest in &digests {
                let Some(batch) = batches.get(digest)? else {
                    continue;
                };
                size += 4 + batch.len();
                if size > max_message_size {
                    break;
                }
                answer.push(batch);
            }
            Ok(answer)
        })
        .await?;
        self.metrics.batch_requests_served.inc();
        Ok(encode_message(&BatchResponse { batches }))
    }
}
