//! Client ingress: plain TCP, each transaction framed by its 4-byte big-endian length.
//!
//! Anyone can reach this port, so nothing a client does here may cost the node without bound
//! or lock others out: connections are capped in all and per source, a connection that sends
//! nothing for `idle_timeout` is closed, and so is one that leaves a transaction half-sent
//! past `frame_timeout`. While the batch maker pushes back, no clock runs: a client waiting
//! for room is not idle.

use crate::metrics::WorkerMetrics;
use crate::submit::Submission;
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec, LengthDelimitedCodecError};
use tokio_util::sync::CancellationToken;
use weft_config::ClientPortParameters;
use weft_network::admission::{SourceSlot, SourceSlots};
/// Pause after a failed `accept` (typically out of file descriptors), instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
                            self.reject("too_many_connections");
                            continue;
                        }
                        let Some(slot) = self.sources.try_take(address.ip()) else {
                            self.reject("source_connections");
                            continue;
                        };
                        connections.spawn(
                            Client {
                                address,
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

/// One client connection.
struct Client {
    address: SocketAddr,
    max_transaction_size: usize,
    limits: ClientPortParameters,
    tx_batch_maker: mpsc::Sender<Submission>,
    metrics: Arc<WorkerMetrics>,
    /// The source's slot, freed with the connection.
    _slot: SourceSlot,
}

impl Client {
    async fn serve(self, stream: TcpStream) {
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
            let frame = match tokio::time::timeout(step, frames.next()).await {
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
