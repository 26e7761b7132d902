//! Client ingress: plain TCP, each transaction framed by its 4-byte big-endian length.

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

/// Client connections served at once; further ones are closed as soon as they are accepted.
pub const MAX_CLIENT_CONNECTIONS: usize = 1_024;
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
        tx_batch_maker: mpsc::Sender<Submission>,
        metrics: Arc<WorkerMetrics>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(
            Self {
                listener,
                max_transaction_size,
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
                        if connections.len() >= MAX_CLIENT_CONNECTIONS {
                            self.reject("too_many_connections");
                            continue;
                        }
                        connections.spawn(serve_client(
                            stream,
                            address,
                            self.max_transaction_size,
                            self.tx_batch_maker.clone(),
                            self.metrics.clone(),
                        ));
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

async fn serve_client(
    stream: TcpStream,
    address: SocketAddr,
    max_transaction_size: usize,
    tx_batch_maker: mpsc::Sender<Submission>,
    metrics: Arc<WorkerMetrics>,
) {
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(max_transaction_size)
        .new_codec();
    let mut frames = FramedRead::new(stream, codec);
    let reject = |reason: &str| {
        metrics
            .transactions_rejected
            .with_label_values(&[reason])
            .inc()
    };
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(tx) if tx.is_empty() => {
                reject("empty");
                tracing::debug!(%address, "empty transaction, closing the client connection");
                return;
            }
            Ok(tx) => {
                if tx_batch_maker.send((tx.freeze(), None)).await.is_err() {
                    return;
                }
                metrics.transactions_received.inc();
            }
            Err(e)
                if e.get_ref()
                    .is_some_and(|e| e.is::<LengthDelimitedCodecError>()) =>
            {
                reject("too_large");
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
