//! The Narwhal worker: takes client transactions, seals them into batches, disseminates each
//! batch to the same-id worker of every other authority, and reports to its primary the batches
//! a quorum of stake stored (its own) and the batches it stored for others. It also serves and
//! fetches batches by digest.
//!
//! ```text
//! clients ─TCP─▶ TxReceiver ─tx─▶ BatchMaker ─sealed─▶ QuorumWaiter ─OurBatch─────▶ PrimaryConnector ─▶ primary
//!   in-process ─TxSubmitter─tx+ack─▲                     │ ▲ batch / ack                    ▲
//!                                                        ▼ │                                  │ OthersBatch
//!                         peer workers ◀───────────▶ server (WorkerHandler) ─Synchronize─▶ Synchronizer
//! ```
//!
//! # Acknowledged submission
//! In-process callers (the JSON-RPC ingress) submit through [`WorkerHandle::submitter`]: the
//! transaction takes the raw ingress's path, carrying a oneshot that travels with its sealed
//! batch and its `OurBatch` report. The [`Acknowledgement`] resolves to the batch digest only
//! when the batch is stored by a quorum of stake *and* the own primary answered the report
//! `Ok` (it records the batch durably before answering); any other end is an error, never a
//! false acknowledgement. A full batch maker channel is [`SubmitError::Full`] at once.
//!
//! # Client protocol
//! Plain TCP on the committee's `transaction_addresses[id]`, no TLS (clients are not committee
//! members): each transaction is framed by its length as a 4-byte **big-endian** integer. A
//! frame longer than `max_transaction_size`, or empty, closes the connection (counted in
//! `weft_worker_transactions_rejected_total{reason="too_large"|"empty"}`). Transactions are
//! read only while the batch maker has room: a full worker pushes back through TCP.
//!
//! # Peer protocol
//! Mutually authenticated TLS (the `weft-network` crate) on `worker_addresses[id]`, shared by
//! the other authorities' same-id workers and the own primary, which presents the authority's
//! network key (the server sees `peer == authority`). Requests are `WorkerMessage` or, from the
//! own primary only, `PrimaryToWorker`; the two families have disjoint tag bytes
//! (`weft_types::is_primary_to_worker`). `Batch` and `PrimaryToWorker` requests are answered
//! with an empty acknowledgement, `BatchRequest` with a `BatchResponse`; a refused request gets
//! an error response and counts in `weft_worker_requests_rejected_total{reason}`. Reports to the
//! primary are `encode_message(&WorkerToPrimary)` requests to its `primary_address`, decoded
//! there with `decode_message::<WorkerToPrimary>`.
//!
//! # Benchmark log
//! When a batch is sealed, the worker logs at INFO with target `weft::bench`, one line
//! ```text
//! Batch {digest} contains {bytes} B
//! ```
//! where `{digest}` is the batch digest's full hex `Display` and `{bytes}` the length of the
//! batch's encoding (`Batch::seal()` bytes), then for each *sample* transaction in it
//! ```text
//! Batch {digest} contains sample tx {id}
//! ```
//! A sample transaction is one whose first byte is `0`; bytes 1..9 are its id, a big-endian
//! `u64` (clients start their other transactions with `1`).

/// The columns the worker owns (the process opens them with the others').
pub mod columns {
    use weft_storage::Column;

    /// Batch digest → encoded batch, as received (in a value log: large and write-once).
    pub const BATCHES: Column = Column::separated("batches");
    /// Batch digest → the sub-DAG that committed it: batches the committed log still refers
    /// to, which the worker's garbage collection leaves for the log's retention to delete.
    /// The executor writes them with the sub-DAG.
    pub const COMMITTED_BATCHES: Column = Column::new("committed_batches");

    pub const ALL: [Column; 2] = [BATCHES, COMMITTED_BATCHES];
}
mod batch;
mod batch_maker;
mod error;
mod handler;
mod ingress;
mod metrics;
mod primary_connector;
mod quorum;
mod quorum_waiter;
mod submit;
mod synchronizer;
mod unannounced;

pub use batch::{validate_batch, BatchBuilder, SealedBatch, SAMPLE_TX_MARKER};
pub use batch_maker::BENCH_LOG_TARGET;
pub use error::{RequestError, WorkerError};
pub use metrics::WorkerMetrics;
pub use quorum::{MAX_BATCHES_AWAITING_QUORUM, MAX_DELIVERIES_PER_PEER};
pub use submit::{Acknowledgement, Acks, PendingAck, SubmissionQueue, SubmitError, TxSubmitter};
pub use synchronizer::MAX_SYNC_ATTEMPTS;
pub use unannounced::{QuotaExceeded, Unannounced, ANNOUNCED_MEMORY};

use batch_maker::BatchMaker;
use bytes::Bytes;
use handler::WorkerHandler;
use ingress::TxReceiver;
use primary_connector::PrimaryConnector;
use quorum_waiter::QuorumWaiter;
use std::net::SocketAddr;
use std::sync::Arc;
use synchronizer::{SyncConfig, Synchronizer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use weft_config::Parameters;
use weft_network::actors::Actors;
use weft_network::{NetworkConfig, NetworkMetrics, Peer, ReliableSender, Server, ServerHandle};
use weft_storage::{Durability, Map, Store, StoreError};
use weft_types::messages::MAX_BATCH_REQUEST;
use weft_types::{AuthorityIndex, BatchDigest, Committee, KeyPair, WorkerId};

/// Transactions between the client connections and the batch maker.
pub const TRANSACTION_CHANNEL_CAPACITY: usize = 10_000;
/// Sealed batches between the batch maker and the quorum waiter (which bounds its own backlog).
pub const SEALED_BATCH_CHANNEL_CAPACITY: usize = 4;
/// Reports on their way to the primary connector.
pub const REPORT_CHANNEL_CAPACITY: usize = 1_000;
/// Synchronize requests on their way from the server to the synchronizer.
pub const SYNC_CHANNEL_CAPACITY: usize = 100;

/// What [`Worker::spawn`] needs.
pub struct WorkerArgs<'a> {
    pub authority: AuthorityIndex,
    pub id: WorkerId,
    pub committee: Arc<Committee>,
    pub parameters: Parameters,
    /// The authority's network key (shared with its primary).
    pub network_keypair: KeyPair,
    pub store: Store,
    pub registry: &'a prometheus::Registry,
    /// The process's network metrics if they exist already (their names are fixed, so a
    /// registry holds them once: a node's primary and workers share them); `None` registers
    /// them in `registry`.
    pub network_metrics: Option<Arc<NetworkMetrics>>,
}

/// Namespace for [`Worker::spawn`].
pub struct Worker;

impl Worker {
    /// Starts worker `id` of `authority`: binds its client and peer addresses from `committee`,
    /// registers its metrics in `registry`, and runs until the handle is shut down or dropped.
    /// Must be called within a Tokio runtime.
    pub async fn spawn(args: WorkerArgs<'_>) -> Result<WorkerHandle, WorkerError> {
        let WorkerArgs {
            authority,
            id,
            committee,
            parameters,
            network_keypair,
            store,
            registry,
            network_metrics,
        } = args;
        let network_metrics = match network_metrics {
            Some(metrics) => metrics,
            None => Arc::new(NetworkMetrics::new(registry)?),
        };
        parameters.validate()?;
        let own = committee
            .authority(authority)
            .ok_or(WorkerError::UnknownAuthority(authority))?;
        let worker_address = *own
            .worker_addresses
            .get(&id)
            .ok_or(WorkerError::UnknownWorker(id))?;
        let transaction_address = *own
            .transaction_addresses
            .get(&id)
            .ok_or(WorkerError::UnknownWorker(id))?;
        let primary = Peer::new(own.primary_address, own.network_key.clone());
        let peers: Vec<(AuthorityIndex, Peer)> = committee
            .authorities()
            .filter(|(index, _)| *index != authority)
            .filter_map(|(index, a)| {
                let address = *a.worker_addresses.get(&id)?;
                Some((index, Peer::new(address, a.network_key.clone())))
            })
            .collect();
        let metrics = Arc::new(WorkerMetrics::new(registry, id)?);
        let network_config = NetworkConfig {
            max_message_size: parameters.max_message_size,
            ..NetworkConfig::default()
        };
        let sender = || {
            ReliableSender::new(
                &network_keypair,
                network_config.clone(),
                network_metrics.clone(),
            )
        };
        let batches: Map<BatchDigest, Bytes> = store.map(columns::BATCHES);
        let listener = TcpListener::bind(parameters.listen_address(transaction_address)).await?;
        let transaction_address = listener.local_addr()?;

        let (tx_batch_maker, rx_ingress) = mpsc::channel(TRANSACTION_CHANNEL_CAPACITY);
        let submitter = TxSubmitter::new(
            tx_batch_maker.clone(),
            parameters.max_transaction_size,
            metrics.clone(),
        );
        let (tx_quorum_waiter, rx_batch_maker) = mpsc::channel(SEALED_BATCH_CHANNEL_CAPACITY);
        let (tx_primary, rx_worker) = mpsc::channel(REPORT_CHANNEL_CAPACITY);
        let (tx_synchronizer, rx_handler) = mpsc::channel(SYNC_CHANNEL_CAPACITY);
        let shutdown = CancellationToken::new();
        let mut handle = WorkerHandle {
            shutdown: shutdown.clone(),
            server: None,
            actors: Actors::default(),
            metrics: metrics.clone(),
            transaction_address,
            worker_address,
            submitter,
        };
        handle.actors.push(
            "worker primary connector",
            PrimaryConnector::spawn(
                primary,
                sender()?,
                rx_worker,
                metrics.clone(),
                shutdown.clone(),
            ),
        );
        handle.actors.push(
            "worker quorum waiter",
            QuorumWaiter::spawn(
                authority,
                id,
                &committee,
                peers.clone(),
                sender()?,
                batches.clone(),
                rx_batch_maker,
                tx_primary.clone(),
                metrics.clone(),
                shutdown.clone(),
            ),
        );
        let batch_overhead = 4 + parameters.max_transaction_size + 4096;
        let sync_config = SyncConfig {
            retry_delay: parameters.sync_retry_delay(),
            retry_nodes: parameters.sync_retry_nodes,
            digests_per_request: (parameters.max_message_size
                / (parameters.batch_size + batch_overhead))
                .clamp(1, MAX_BATCH_REQUEST),
            max_transaction_size: parameters.max_transaction_size,
            max_message_size: parameters.max_message_size,
        };
        handle.actors.push(
            "worker batch synchronizer",
            Synchronizer::spawn(
                id,
                peers,
                sender()?,
                batches.clone(),
                sync_config,
                rx_handler,
                tx_primary.clone(),
                metrics.clone(),
                shutdown.clone(),
            ),
        );
        handle.actors.push(
            "worker batch maker",
            BatchMaker::spawn(
                parameters.batch_size,
                parameters.max_batch_delay(),
                parameters.max_transaction_size,
                rx_ingress,
                tx_quorum_waiter,
                metrics.clone(),
                shutdown.clone(),
            ),
        );
        let handler = WorkerHandler {
            authority,
            worker_id: id,
            max_transaction_size: parameters.max_transaction_size,
            max_batch_size: max_sealed_batch(
                parameters.batch_size,
                parameters.max_transaction_size,
            ),
            max_message_size: parameters.max_message_size,
            pins: store.map(columns::COMMITTED_BATCHES),
            store,
            batches,
            tx_primary,
            tx_synchronizer,
            metrics: metrics.clone(),
            unannounced: std::sync::Mutex::new(Unannounced::new(
                parameters.max_unannounced_bytes_per_peer,
            )),
        };
        // On failure, dropping the handle stops the actors started so far.
        let server = Server::spawn(
            parameters.listen_address(worker_address),
            committee.clone(),
            &network_keypair,
            Arc::new(handler),
            network_config,
            network_metrics,
        )
        .await?;
        handle.worker_address = server.local_address();
        handle.server = Some(server);
        handle.actors.push(
            "worker transaction receiver",
            TxReceiver::spawn(
                listener,
                parameters.max_transaction_size,
                parameters.client_port.clone(),
                tx_batch_maker,
                metrics,
                shutdown,
            ),
        );
        tracing::info!(%authority, id, %worker_address, %transaction_address, "worker started");
        Ok(handle)
    }
}

/// A running worker. Dropping it stops every task; [`WorkerHandle::shutdown`] also waits for
/// them to finish.
pub struct WorkerHandle {
    shutdown: CancellationToken,
    server: Option<ServerHandle>,
    actors: Actors,
    metrics: Arc<WorkerMetrics>,
    transaction_address: SocketAddr,
    worker_address: SocketAddr,
    submitter: TxSubmitter,
}

impl WorkerHandle {
    /// Submits transactions in-process with an acknowledgement each; clones of it keep working
    /// (returning [`SubmitError::Stopped`]) after the worker stopped.
    pub fn submitter(&self) -> TxSubmitter {
        self.submitter.clone()
    }

    /// Stops accepting clients and peers, stops every actor (in-flight deliveries and reports
    /// are dropped), and returns once all of them are done. The store is left to its owner.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        std::mem::take(&mut self.actors).join().await;
    }

    /// Resolves when one of the worker's actors stopped before shutdown (a fatal error): which
    /// one.
    pub async fn stopped(&mut self) -> String {
        self.actors.first_stopped().await
    }

    pub fn metrics(&self) -> &WorkerMetrics {
        &self.metrics
    }

    /// Where clients connect (the real port if the committee said port 0).
    pub fn transaction_address(&self) -> SocketAddr {
        self.transaction_address
    }

    /// Where peer workers and the own primary connect.
    pub fn worker_address(&self) -> SocketAddr {
        self.worker_address
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs a blocking store operation off the runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, RequestError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::error!("storage failure: {e}");
            Err(RequestError::Store)
        }
        Err(_) => Err(RequestError::ShuttingDown),
    }
}

/// Stores a batch as the bytes that were received and hashed.
async fn store_batch(
    batches: &Map<BatchDigest, Bytes>,
    digest: BatchDigest,
    batch: Bytes,
) -> Result<(), RequestError> {
    let batches = batches.clone();
    blocking(move || batches.insert(&digest, &batch, Durability::Buffered)).await
}

/// The largest batch encoding a batch maker with these parameters seals: it seals on the
/// transaction that takes the encoding to `batch_size`, so one transaction and its length
/// prefix past it at most.
pub fn max_sealed_batch(batch_size: usize, max_transaction_size: usize) -> usize {
    batch_size.saturating_add(4 + max_transaction_size)
}
