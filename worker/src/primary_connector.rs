//! Reports batches to the own primary.

use crate::metrics::WorkerMetrics;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_network::{CancelHandler, Peer, ReliableSender, SENDER_CHANNEL_CAPACITY};
use weft_types::codec::encode_message;
use weft_types::WorkerToPrimary;

/// Reports sent to the primary and not yet acknowledged. When reached, reports wait in the
/// channel, and the actors that send them wait in turn.
pub const MAX_REPORTS_IN_FLIGHT: usize = 512;
const _: () = assert!(MAX_REPORTS_IN_FLIGHT < SENDER_CHANNEL_CAPACITY);

/// Sends every `WorkerToPrimary` report to the own primary with a reliable sender, keeping each
/// request alive until the primary answers it (dropping it would cancel it).
pub struct PrimaryConnector {
    /// The own primary's address and the authority's network key.
    primary: Peer,
    /// Used for reports only.
    sender: ReliableSender,
    /// Reports of the quorum waiter, the server and the synchronizer.
    rx_worker: mpsc::Receiver<WorkerToPrimary>,
    metrics: Arc<WorkerMetrics>,
    /// Cancelled when the worker stops; unacknowledged reports are then dropped.
    shutdown: CancellationToken,
}

impl PrimaryConnector {
    pub fn spawn(
        primary: Peer,
        sender: ReliableSender,
        rx_worker: mpsc::Receiver<WorkerToPrimary>,
        metrics: Arc<WorkerMetrics>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(
            Self {
                primary,
                sender,
                rx_worker,
                metrics,
                shutdown,
            }
            .run(),
        )
    }

    async fn run(mut self) {
        let mut in_flight: FuturesUnordered<CancelHandler> = FuturesUnordered::new();
        let depth = self
            .metrics
            .channel_depth
            .with_label_values(&["worker_to_primary_connector"]);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                Some(report) = self.rx_worker.recv(), if in_flight.len() < MAX_REPORTS_IN_FLIGHT => {
                    depth.set(self.rx_worker.len() as i64);
                    in_flight.push(self.sender.send(&self.primary, encode_message(&report)).await);
                }
                Some(result) = in_flight.next() => {
                    if let Err(e) = result {
                        tracing::warn!("the primary refused a batch report: {e}");
                    }
                }
            }
            self.metrics
                .primary_reports_in_flight
                .set(in_flight.len() as i64);
        }
        self.metrics.primary_reports_in_flight.set(0);
    }
}
