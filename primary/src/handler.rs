//! What the primary's server does with a request: verify it before anything else, then pass
//! it to the core, or answer a sync request from storage. Messages from this authority's own
//! workers (the only peer that authenticates with our own key) report stored batches.

use crate::messages::CoreInput;
use crate::metrics::PrimaryMetrics;
use crate::PrimaryStores;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;
use weft_network::{Handler, HandlerError};
use weft_storage::{Durability, Map, StoreError};
use weft_types::codec::{decode_message, encode_message, Encode};
use weft_types::{
    AuthorityIndex, Certificate, CertificateDigest, CertificatesResponse, Committee,
    PrimaryMessage, Round, WorkerToPrimary,
};

/// Largest `WorkerToPrimary` message (a digest and a worker id, with framing).
const MAX_WORKER_MESSAGE: usize = 128;

pub(crate) struct PrimaryHandler {
    pub me: AuthorityIndex,
    pub committee: Arc<Committee>,
    pub stores: PrimaryStores,
    pub tx_core: mpsc::Sender<CoreInput>,
    pub metrics: Arc<PrimaryMetrics>,
    pub max_message_size: usize,
    pub max_certificates_per_fetch: usize,
    /// The GC round, recorded with each stored batch (see the runner's orphan sweep).
    pub gc_round: tokio::sync::watch::Receiver<weft_types::Round>,
    /// Sequence of the next own batch record: a restart proposes them in report order.
    pub next_own_batch: std::sync::atomic::AtomicU64,
    /// Where signed attestations of committed sub-DAGs go (the node's attester).
    pub attestations: Option<Arc<dyn Handler>>,
}

/// A refused request: the label of the message and the reason, for the metric and the peer.
struct Refusal(&'static str, String, &'static str);

impl PrimaryHandler {
    async fn handle_request(&self, peer: AuthorityIndex, request: Bytes) -> Result<Bytes, Refusal> {
        if peer == self.me {
            return self.worker_report(request).await;
        }
        let message: PrimaryMessage = decode_message(request, self.max_message_size)
            .map_err(|e| Refusal("message", e.to_string(), "malformed"))?;
        let input = match message {
            PrimaryMessage::Header(header) => {
                header
                    .verify(&self.committee, true)
                    .map_err(|e| Refusal("header", e.to_string(), e.kind()))?;
                // Headers travel from their author only: a relayed header is not expected.
                if header.author != peer {
                    return Err(Refusal("header", format!("sent by {peer}"), "wrong_sender"));
                }
                CoreInput::Header(header)
            }
            PrimaryMessage::Vote(vote) => {
                vote.verify(&self.committee)
                    .map_err(|e| Refusal("vote", e.to_string(), e.kind()))?;
                if vote.author != peer || vote.origin != self.me {
                    return Err(Refusal("vote", format!("from {peer}"), "wrong_sender"));
                }
                CoreInput::Vote(vote)
            }
            PrimaryMessage::Certificate(certificate) => {
                certificate
                    .verify(&self.committee)
                    .map_err(|e| Refusal("certificate", e.to_string(), e.kind()))?;
                CoreInput::Certificate(certificate)
            }
            PrimaryMessage::CertificatesRequest(digests) => {
                let mut seen = std::collections::HashSet::with_capacity(digests.len());
                if let Some(twice) = digests.iter().find(|d| !seen.insert(**d)) {
                    let detail = format!("{twice} named twice");
                    return Err(Refusal("certificates_request", detail, "duplicate_digest"));
                }
                let (certificates, max) = (self.stores.certificates.clone(), self.max_message_size);
                return blocking(move || answer(&certificates, digests.iter(), max)).await;
            }
            PrimaryMessage::CertificateRange { from_round, limit } => {
                let stores = self.stores.clone();
                let (max, limit) = (
                    self.max_message_size,
                    (limit as usize).min(self.max_certificates_per_fetch),
                );
                return blocking(move || range(&stores, from_round, limit, max)).await;
            }
            PrimaryMessage::Attestation(bytes) => {
                let Some(attestations) = &self.attestations else {
                    return Err(Refusal("attestation", "not served".into(), "unsupported"));
                };
                // The attester counts and labels its own refusals.
                return attestations
                    .handle(peer, bytes)
                    .await
                    .map_err(|e| Refusal("attestation", e.to_string(), "refused"));
            }
        };
        self.tx_core
            .send(input)
            .await
            .map_err(|_| Refusal("message", "shutting down".into(), "shutdown"))?;
        Ok(Bytes::new())
    }

    async fn worker_report(&self, request: Bytes) -> Result<Bytes, Refusal> {
        let message: WorkerToPrimary = decode_message(request, MAX_WORKER_MESSAGE)
            .map_err(|e| Refusal("worker", e.to_string(), "malformed"))?;
        let (digest, worker, ours) = match message {
            WorkerToPrimary::OurBatch { digest, worker_id } => (digest, worker_id, true),
            WorkerToPrimary::OthersBatch { digest, worker_id } => (digest, worker_id, false),
        };
        if worker >= self.committee.num_workers() {
            return Err(Refusal(
                "worker",
                format!("worker {worker}"),
                "unknown_worker",
            ));
        }
        // Recorded before the core hears of it, so a header carrying it finds it stored. The
        // GC round of the moment dates it for the orphan sweep.
        let gc_round = *self.gc_round.borrow();
        let mut write = self.stores.store.batch();
        write.insert(&self.stores.payload, &(digest, worker), &gc_round);
        if ours {
            // The worker acknowledges the batch's transactions to their clients once this
            // answer arrives, so the record that a restart proposes it again is written first
            // (through the WAL: it survives a killed process).
            let sequence = self.next_own_batch.fetch_add(1, Ordering::Relaxed);
            write.insert(&self.stores.own_batches, &(digest, worker), &sequence);
        }
        write.commit(Durability::Buffered).map_err(store_failure)?;
        if ours {
            self.tx_core
                .send(CoreInput::OurBatch(digest, worker))
                .await
                .map_err(|_| Refusal("worker", "shutting down".into(), "shutdown"))?;
        }
        Ok(Bytes::new())
    }
}

/// Runs store reads off the async runtime: a request must not hold a runtime thread while
/// RocksDB reads from disk.
async fn blocking(
    f: impl FnOnce() -> Result<Bytes, StoreError> + Send + 'static,
) -> Result<Bytes, Refusal> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(store_failure),
        Err(_) => Err(Refusal("request", "shutting down".into(), "shutdown")),
    }
}

/// The certificates of rounds ≥ `from_round`, in (round, author) order, at most `limit`.
fn range(
    stores: &PrimaryStores,
    from_round: Round,
    limit: usize,
    max_message_size: usize,
) -> Result<Bytes, StoreError> {
    let digests: Vec<CertificateDigest> = stores
        .certificates_by_round
        .range(
            &(from_round, AuthorityIndex(0)),
            &(Round::MAX, AuthorityIndex(0)),
            limit,
        )?
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    answer(&stores.certificates, digests.iter(), max_message_size)
}

/// Encodes as many of these certificates as fit in one message, in the given order, unknown
/// ones left out. They are read one at a time and reading stops once the answer is full.
fn answer<'a>(
    certificates: &Map<CertificateDigest, Certificate>,
    digests: impl Iterator<Item = &'a CertificateDigest>,
    max_message_size: usize,
) -> Result<Bytes, StoreError> {
    let mut response = CertificatesResponse::default();
    let mut size = 1 + 4;
    for digest in digests {
        let Some(c) = certificates.get(digest)? else {
            continue;
        };
        size += c.encoded_len();
        if size > max_message_size {
            break;
        }
        response.certificates.push(c);
    }
    Ok(encode_message(&response))
}

fn store_failure(e: StoreError) -> Refusal {
    tracing::error!("primary store read failed: {e}");
    Refusal("request", "storage failure".into(), "storage")
}

impl Handler for PrimaryHandler {
    fn handle(
        &self,
        peer: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        Box::pin(async move {
            self.handle_request(peer, request)
                .await
                .map_err(|Refusal(message, detail, reason)| {
                    self.metrics
                        .rejected
                        .with_label_values(&[message, reason])
                        .inc();
                    tracing::debug!(%peer, "{message} refused ({reason}): {detail}");
                    HandlerError::new(format!("{message} refused: {reason}"))
                })
        })
    }
}
