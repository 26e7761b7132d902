//! Reports batches to the own primary.

use crate::metrics::WorkerMetrics;
use crate::submit::{Report, SubmitError};
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_network::{CancelHandler, NetworkError, Peer, ReliableSender, SENDER_CHANNEL_CAPACITY};
use weft_types::codec::encode_message;
use weft_types::WorkerToPrimary;

/// Reports sent to the primary and not yet acknowledged. When reached, reports wait in the
/// channel, and the actors that send them wait in turn.
pub const MAX_REPORTS_IN_FLIGHT: usize = 512;
const _: () = assert!(MAX_REPORTS_IN_FLIGHT < SENDER_CHANNEL_CAPACITY);

/// Sends every `WorkerToPrimary` report to the own primary with a reliable sender, keeping each
/// request alive until the primary answers it (dropping it would cancel it). The primary
/// answers an `OurBatch` report only after it recorded the batch durably, so its `Ok` is what
/// resolves the acknowledgements carried with the report; an error answer fails them (never a
/// false acknowledgement).
pub struct PrimaryConnector {
    /// The own primary's address and the authority's network key.
    primary: Peer,
    /// Used for reports only.
    sender: ReliableSender,
    /// Reports of the quorum waiter, the server and the synchronizer.
    rx_worker: mpsc::Receiver<Report>,
    metrics: Arc<WorkerMetrics>,
    /// Cancelled when the worker stops; unacknowledged reports are then dropped.
    shutdown: CancellationToken,
}

impl PrimaryConnector {
    pub fn spawn(
        primary: Peer,
        sender: ReliableSender,
        rx_worker: mpsc::Receiver<Report>,
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
        let mut in_flight = FuturesUnordered::new();
        let depth = self
            .metrics
            .channel_depth
            .with_label_values(&["worker_to_primary_connector"]);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                Some(report) = self.rx_worker.recv(), if in_flight.len() < MAX_REPORTS_IN_FLIGHT => {
                    depth.set(self.rx_worker.len() as i64);
                    let handler = self.sender.send(&self.primary, encode_message(&report.message)).await;
                    in_flight.push(answered(handler, report));
                }
                Some((result, report)) = in_flight.next() => match (result, report.message) {
                    (Ok(_), WorkerToPrimary::OurBatch { digest, .. }) => report.acks.resolve(digest),
                    (Ok(_), _) => {}
                    (Err(e), _) => {
                        tracing::warn!("the primary refused a batch report: {e}");
                        report.acks.fail(SubmitError::PrimaryRefused);
                    }
                },
            }
            self.metrics
                .primary_reports_in_flight
                .set(in_flight.len() as i64);
        }
        self.metrics.primary_reports_in_flight.set(0);
        // Dropping the unanswered reports tells their submitters the worker stopped.
    }
}

/// The primary's answer to `report`, with the report (and its acknowledgements) kept beside
/// it. One function, so that every entry of `in_flight` has the same future type.
async fn answered(handler: CancelHandler, report: Report) -> (Result<Bytes, NetworkError>, Report) {
    (handler.await, report)
}
