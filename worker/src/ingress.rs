//! Client ingress: plain TCP, each transaction framed by its 4-byte big-endian length.
//!
//! Anyone can reach this port, so nothing a client does here may cost the node without bound
//! or lock others out: connections are capped in all and per source, a connection that sends
//! nothing for `idle_timeout` is closed, and so is one that leaves a transaction half-sent
//! past `frame_timeout`. While the batch maker pushes back, no clock runs: a client waiting
//! for room is not idle. When every connection is taken, a new one evicts the connection that
//! has been quiet longest, if it has been quiet for `evict_quiet_after`: sockets held open in
//! silence, or kept barely alive with a transaction now and then, cannot shut real clients
//! out, while clients that keep sending are never evicted.

use crate::metrics::WorkerMetrics;
use crate::submit::Submission;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec, LengthDelimitedCodecError};
use tokio_util::sync::CancellationToken;
use weft_config::ClientPortParameters;
use weft_network::admission::{SourceSlot, SourceSlots};

/// Pause after a failed `accept` (typically out of file descriptors), instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// A sending connection records its activity at most this often (a lock each time).
const ACTIVITY_RESOLUTION: Duration = Duration::from_millis(100);

/// Accepts client connections and feeds their transactions to the batch maker. A connection
/// is read only while the batch maker's channel has room, so a full worker pushes back on its
/// clients through TCP flow control instead of buffering.
pub struct TxReceiver {
    /// Bound to the committee's `transaction_addresses[id]`.
    listener: TcpListener,
    /// Largest transaction accepted; a larger (or empty) frame closes its connection.
    max_transaction_size: usize,
    limits: ClientPortParameters,
    /// Connections held per source.
    sources: SourceSlots,
    /// Every connection, least recently active first.
    activity: Activity,
    /// Every connection's transactions, in the order each connection sent them.
    tx_batch_maker: mpsc::Sender<Submission>,
    metrics: Arc<WorkerMetrics>,
    /// Cancelled when the worker stops; closes the listener and every connection.
    shutdown: CancellationToken,
}

impl TxReceiver {
    pub fn spawn(
        listener: TcpListener,
        max_transaction_size: usize,
        limits: ClientPortParameters,
        tx_batch_maker: mpsc::Sender<Submission>,
        metrics: Arc<WorkerMetrics>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(
            Self {
                listener,
                max_transaction_size,
                sources: SourceSlots::new(limits.max_connections_per_source),
                activity: Activity::default(),
                limits,
                tx_batch_maker,
                metrics,
                shutdown,
            }
            .run(),
        )
    }

    async fn run(self) {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, address)) => {
                        if connections.len() >= self.limits.max_connections {
                            if !self.activity.evict_quietest(self.limits.evict_quiet_after()) {
                                self.reject("too_many_connections");
                                continue;
                            }
                            self.reject("evicted_quiet");
                        }
                        let Some(slot) = self.sources.try_take(address.ip()) else {
                            self.reject("source_connections");
                            continue;
                        };
                        let (entry, evicted) = self.activity.register();
                        connections.spawn(
                            Client {
                                address,
                                entry,
                                evicted,
                                max_transaction_size: self.max_transaction_size,
                                limits: self.limits.clone(),
                                tx_batch_maker: self.tx_batch_maker.clone(),
                                metrics: self.metrics.clone(),
                                _slot: slot,
                            }
                            .serve(stream),
                        );
                    }
                    Err(e) => {
                        tracing::warn!("accepting a client connection failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    }

    fn reject(&self, reason: &str) {
        self.metrics
            .transactions_rejected
            .with_label_values(&[reason])
            .inc();
    }
}

/// Every connection by when it was last active, least recently first; each entry's sender,
/// when dropped, closes its connection.
#[derive(Clone, Default)]
struct Activity(Arc<Mutex<Registry>>);

#[derive(Default)]
struct Registry {
    /// Orders entries: taken anew at each recorded activity.
    next: u64,
    connections: BTreeMap<u64, (Instant, oneshot::Sender<()>)>,
}

impl Activity {
    /// Registers a new connection, active now: its entry (removed when it closes), and the
    /// receiver that fires if it is evicted.
    fn register(&self) -> (Entry, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        let mut registry = self.lock();
        let key = registry.next;
        registry.next += 1;
        registry.connections.insert(key, (now, tx));
        let entry = Entry {
            activity: self.clone(),
            key,
            at: now,
        };
        (entry, rx)
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Every update leaves the registry consistent, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the connection quiet longest, if it has been quiet for `quiet`; false if none
    /// has.
    fn evict_quietest(&self, quiet: Duration) -> bool {
        let mut registry = self.lock();
        match registry.connections.first_key_value() {
            Some((_, (at, _))) if at.elapsed() >= quiet => {
                registry.connections.pop_first();
                true
            }
            _ => false,
        }
    }
}

/// A connection's entry in [`Activity`], removed when dropped.
struct Entry {
    activity: Activity,
    key: u64,
    /// The activity recorded last.
    at: Instant,
}

impl Entry {
    /// Records that the connection is active (at most once per [`ACTIVITY_RESOLUTION`]).
    fn active(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.at) < ACTIVITY_RESOLUTION {
            return;
        }
        let mut registry = self.activity.lock();
        // Gone if evicted meanwhile: the connection closes at its next read.
        let Some((_, tx)) = registry.connections.remove(&self.key) else {
            return;
        };
        self.key = registry.next;
        registry.next += 1;
        registry.connections.insert(self.key, (now, tx));
        self.at = now;
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.activity.lock().connections.remove(&self.key);
    }
}

/// One client connection.
struct Client {
    address: SocketAddr,
    /// Its place among the connections, by activity.
    entry: Entry,
    /// Fires (its sender dropped) if the connection is evicted.
    evicted: oneshot::Receiver<()>,
    max_transaction_size: usize,
    limits: ClientPortParameters,
    tx_batch_maker: mpsc::Sender<Submission>,
    metrics: Arc<WorkerMetrics>,
    /// The source's slot, freed with the connection.
    _slot: SourceSlot,
}

impl Client {
    async fn serve(mut self, stream: TcpStream) {
        let address = self.address;
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .big_endian()
            .max_frame_length(self.max_transaction_size)
            .new_codec();
        let mut frames = FramedRead::new(stream, codec);
        let step = self.limits.frame_timeout();
        // Silent steps in a row, and steps a frame has been incomplete.
        let (mut idle, mut partial) = (Duration::ZERO, 0u32);
        loop {
            let read = tokio::select! {
                biased;
                _ = &mut self.evicted => {
                    tracing::debug!(%address, "quiet client evicted for a new connection");
                    return;
                }
                read = tokio::time::timeout(step, frames.next()) => read,
            };
            let frame = match read {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(_) if frames.read_buffer().is_empty() => {
                    idle += step;
                    if idle >= self.limits.idle_timeout() {
                        self.reject("idle");
                        tracing::debug!(%address, "idle client, closing its connection");
                        return;
                    }
                    continue;
                }
                Err(_) => {
                    // The frame may have begun just before this step ended: a second step.
                    partial += 1;
                    if partial >= 2 {
                        self.reject("slow_frame");
                        tracing::debug!(%address, "half-sent transaction, closing the connection");
                        return;
                    }
                    continue;
                }
            };
            (idle, partial) = (Duration::ZERO, 0);
            match frame {
                Ok(tx) if tx.is_empty() => {
                    self.reject("empty");
                    tracing::debug!(%address, "empty transaction, closing the client connection");
                    return;
                }
                Ok(tx) => {
                    self.entry.active();
                    if self.tx_batch_maker.send((tx.freeze(), None)).await.is_err() {
                        return;
                    }
                    self.metrics.transactions_received.inc();
                }
                Err(e)
                    if e.get_ref()
                        .is_some_and(|e| e.is::<LengthDelimitedCodecError>()) =>
                {
                    self.reject("too_large");
                    tracing::debug!(%address, "oversized transaction, closing the client connection");
                    return;
                }
                Err(e) => {
                    tracing::debug!(%address, "client connection failed: {e}");
                    return;
                }
            }
        }
    }

    fn reject(&self, reason: &str) {
        self.metrics
            .transactions_rejected
            .with_label_values(&[reason])
            .inc();
    }
}
