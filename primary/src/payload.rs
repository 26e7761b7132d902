//! Makes the batches of other authorities' headers available locally before this primary votes
//! for them: it looks them up in the payload record its workers keep up to date, asks the
//! workers to fetch the missing ones, and tells the core when all are there.

use crate::messages::{CoreInput, PayloadRequest};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use weft_network::{Peer, ReliableSender};
use weft_storage::Map;
use weft_types::codec::encode_message;
use weft_types::{AuthorityIndex, BatchDigest, Committee, PrimaryToWorker, Round, WorkerId};

use crate::metrics::PrimaryMetrics;

pub(crate) struct PayloadSynchronizer {
    me: AuthorityIndex,
    /// (digest, worker) → round reported, written when a worker reports a stored batch.
    payload: Map<(BatchDigest, WorkerId), u64>,
    sender: ReliableSender,
    /// This authority's workers, by id.
    workers: BTreeMap<WorkerId, Peer>,
    rx_core: mpsc::UnboundedReceiver<PayloadRequest>,
    tx_core: mpsc::Sender<CoreInput>,
    rx_gc_round: watch::Receiver<Round>,
    metrics: Arc<PrimaryMetrics>,
    /// Waits for batches, by the round of their header, so GC can abandon them.
    waiting: BTreeMap<Round, Vec<AbortHandle>>,
    shutdown: CancellationToken,
}

/// What [`PayloadSynchronizer::spawn`] needs.
pub(crate) struct PayloadArgs<'a> {
    pub me: AuthorityIndex,
    pub committee: &'a Committee,
    pub payload: Map<(BatchDigest, WorkerId), u64>,
    pub sender: ReliableSender,
    pub metrics: Arc<PrimaryMetrics>,
    pub rx_core: mpsc::UnboundedReceiver<PayloadRequest>,
    pub tx_core: mpsc::Sender<CoreInput>,
    pub rx_gc_round: watch::Receiver<Round>,
    /// Cancelled when the primary stops.
    pub shutdown: CancellationToken,
}

impl PayloadSynchronizer {
    pub(crate) fn spawn(args: PayloadArgs<'_>) -> JoinHandle<()> {
        let this = Self {
            me: args.me,
            payload: args.payload,
            sender: args.sender,
            workers: crate::own_workers(args.committee, args.me),
            rx_core: args.rx_core,
            tx_core: args.tx_core,
            rx_gc_round: args.rx_gc_round,
            metrics: args.metrics,
            waiting: BTreeMap::new(),
            shutdown: args.shutdown,
        };
        tokio::spawn(this.run())
    }

    async fn run(mut self) {
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                request = self.rx_core.recv() => match request {
                    Some(request) => {
                        if let Err(e) = self.handle(request, &mut tasks).await {
                            tracing::error!("payload store failed: {e}; stopping");
                            break;
                        }
                    }
                    None => break,
                },
                Ok(()) = self.rx_gc_round.changed() => {
                    let gc_round = *self.rx_gc_round.borrow_and_update();
                    let keep = self.waiting.split_off(&(gc_round + 1));
                    for handle in std::mem::replace(&mut self.waiting, keep).into_values().flatten() {
                        handle.abort();
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    self.waiting.retain(|_, handles| {
                        handles.retain(|h| !h.is_finished());
                        !handles.is_empty()
                    });
                }
            }
        }
        tasks.shutdown().await;
    }

    async fn handle(
        &mut self,
        request: PayloadRequest,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), weft_storage::StoreError> {
        let stored = self.payload.multi_get(request.payload.iter())?;
        let (mut present, mut missing) = (Vec::new(), Vec::new());
        for (entry, stored) in request.payload.iter().zip(stored) {
            match stored {
                Some(_) => present.push(*entry),
                None => missing.push(*entry),
            }
        }
        // The workers hold peers' batches that no header named only within a quota: these
        // are named now (the missing ones are, by the `Synchronize` that fetches them).
        let mut acks = Vec::new();
        if request.author != self.me {
            for (worker, digests) in by_worker(&present) {
                let Some(peer) = self.workers.get(&worker) else {
                    continue;
                };
                let message = PrimaryToWorker::Announced { digests };
                acks.push(self.sender.send(peer, encode_message(&message)).await);
            }
        }
        let available = CoreInput::PayloadAvailable {
            author: request.author,
            round: request.round,
            digest: request.header,
        };
        if missing.is_empty() {
            if request.notify {
                let _ = self.tx_core.send(available).await;
            }
            if !acks.is_empty() {
                // Dropping a send's handler cancels it: wait for the workers' answers.
                let handle = tasks.spawn(async move {
                    for ack in acks {
                        let _ = ack.await;
                    }
                });
                self.waiting.entry(request.round).or_default().push(handle);
            }
            return Ok(());
        }
        self.metrics.payload_syncs.inc();
        for (worker, digests) in by_worker(&missing) {
            let Some(peer) = self.workers.get(&worker) else {
                continue;
            };
            let message = PrimaryToWorker::Synchronize {
                digests,
                target: request.author,
            };
            acks.push(self.sender.send(peer, encode_message(&message)).await);
        }
        let payload = self.payload.clone();
        let tx_core = self.tx_core.clone();
        let notify = request.notify;
        let handle = tasks.spawn(async move {
            for key in missing {
                if payload.notify_read(key).await.is_err() {
                    return;
                }
            }
            if notify {
                let _ = tx_core.send(available).await;
            }
            // Held until here: a request is re-sent until its worker answers, and cancelled
            // when its handler is dropped.
            for ack in acks {
                let _ = ack.await;
            }
        });
        self.waiting.entry(request.round).or_default().push(handle);
        Ok(())
    }
}

/// The digests of `payload`, by the worker that holds them.
fn by_worker(payload: &[(BatchDigest, WorkerId)]) -> HashMap<WorkerId, Vec<BatchDigest>> {
    let mut by_worker: HashMap<WorkerId, Vec<BatchDigest>> = HashMap::new();
    for (digest, worker) in payload {
        by_worker.entry(*worker).or_default().push(*digest);
    }
    by_worker
}
