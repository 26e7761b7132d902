//! Acknowledged submission for in-process callers (the JSON-RPC ingress): a transaction goes
//! down the same path as the raw TCP ingress, and its [`Acknowledgement`] resolves once the
//! batch holding it is durable.

use crate::metrics::WorkerMetrics;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
use weft_types::{BatchDigest, WorkerToPrimary};

/// What the batch maker receives: a transaction and, for an acknowledged submission, where to
/// say that it is durable. The raw TCP ingress sends `None`, which costs no allocation.
pub(crate) type Submission = (Bytes, Option<AckSender>);

/// The resolving half of one [`Acknowledgement`].
pub(crate) type AckSender = oneshot::Sender<Result<BatchDigest, SubmitError>>;

/// Why a transaction was not taken, or was taken but never acknowledged.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The batch maker's channel is full: the worker is at capacity. Nothing was queued.
    #[error("the worker is at capacity")]
    Full,
    /// The worker stopped (before or after taking the transaction); it may or may not be
    /// ordered.
    #[error("the worker stopped")]
    Stopped,
    #[error("empty transaction")]
    Empty,
    #[error("transaction of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// The peers that answered refused the batch holding it, so it cannot reach a quorum and
    /// will not be proposed.
    #[error("the batch holding the transaction could not reach a quorum")]
    NoQuorum,
    /// The own primary answered the batch's report with an error, so it did not record it.
    #[error("the primary refused the batch holding the transaction")]
    PrimaryRefused,
}

/// Resolves to the digest of the batch holding the transaction once that batch is stored by a
/// quorum of stake and the own primary recorded it (answered the `OurBatch` report), or to
/// the reason it never will be. Dropping it does not withdraw the transaction.
#[must_use = "an acknowledgement says when the transaction is durable"]
#[derive(Debug)]
pub struct Acknowledgement(oneshot::Receiver<Result<BatchDigest, SubmitError>>);

impl Future for Acknowledgement {
    type Output = Result<BatchDigest, SubmitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A sender dropped without an answer: the worker stopped on the way.
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(SubmitError::Stopped)))
    }
}

/// Submits transactions to one worker without ever waiting for room. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TxSubmitter {
    /// Shared with the raw TCP ingress.
    tx_batch_maker: mpsc::Sender<Submission>,
    max_transaction_size: usize,
    metrics: Arc<WorkerMetrics>,
}

impl TxSubmitter {
    pub(crate) fn new(
        tx_batch_maker: mpsc::Sender<Submission>,
        max_transaction_size: usize,
        metrics: Arc<WorkerMetrics>,
    ) -> Self {
        Self {
            tx_batch_maker,
            max_transaction_size,
            metrics,
        }
    }

    /// A submitter attached to no worker, with the queue standing in for the batch maker:
    /// for testing the submitter's users (the JSON-RPC ingress) without a committee.
    pub fn detached(capacity: usize, max_transaction_size: usize) -> (Self, SubmissionQueue) {
        let (tx, rx) = mpsc::channel(capacity);
        // A registry of its own: the metrics are never exported.
        let metrics = WorkerMetrics::new(&prometheus::Registry::new(), 0)
            .expect("fresh registry has no name clash");
        (
            Self::new(tx, max_transaction_size, Arc::new(metrics)),
            SubmissionQueue(rx),
        )
    }

    /// Queues `tx` for the batch maker, or fails at once: [`SubmitError::Full`] if its channel
    /// has no room (a caller must not buffer behind a full worker), [`SubmitError::Stopped`]
    /// if the worker is gone, `Empty` / `TooLarge` for what the raw ingress would refuse too.
    pub fn try_submit(&self, tx: Bytes) -> Result<Acknowledgement, SubmitError> {
        let reject = |reason: &str, error: SubmitError| {
            self.metrics
                .transactions_rejected
                .with_label_values(&[reason])
                .inc();
            Err(error)
        };
        if tx.is_empty() {
            return reject("empty", SubmitError::Empty);
        }
        if tx.len() > self.max_transaction_size {
            let error = SubmitError::TooLarge {
                size: tx.len(),
                limit: self.max_transaction_size,
            };
            return reject("too_large", error);
        }
        let (ack, rx) = oneshot::channel();
        match self.tx_batch_maker.try_send((tx, Some(ack))) {
            Ok(()) => {
                self.metrics.transactions_received.inc();
                Ok(Acknowledgement(rx))
            }
            Err(mpsc::error::TrySendError::Full(_)) => reject("full", SubmitError::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SubmitError::Stopped),
        }
    }
}

/// The receiving end of a [`TxSubmitter::detached`] submitter.
#[derive(Debug)]
pub struct SubmissionQueue(mpsc::Receiver<Submission>);

impl SubmissionQueue {
    /// The next submitted transaction, once there is one; `None` when every submitter is gone.
    pub async fn next(&mut self) -> Option<(Bytes, PendingAck)> {
        let (tx, ack) = self.0.recv().await?;
        Some((tx, PendingAck(ack)))
    }

    /// The next submitted transaction if one is queued.
    pub fn try_next(&mut self) -> Option<(Bytes, PendingAck)> {
        let (tx, ack) = self.0.try_recv().ok()?;
        Some((tx, PendingAck(ack)))
    }
}

/// The acknowledgement owed for one transaction of a [`SubmissionQueue`]. Dropping it tells
/// the submitter [`SubmitError::Stopped`].
#[derive(Debug)]
pub struct PendingAck(Option<AckSender>);

impl PendingAck {
    pub fn acknowledge(self, digest: BatchDigest) {
        if let Some(ack) = self.0 {
            let _ = ack.send(Ok(digest));
        }
    }

    pub fn fail(self, error: SubmitError) {
        if let Some(ack) = self.0 {
            let _ = ack.send(Err(error));
        }
    }
}

/// The acknowledgements of the transactions of one batch, carried with it from the batch
/// maker to the primary connector. Empty (and allocation-free) for raw TCP transactions.
#[derive(Debug, Default)]
pub struct Acks(Vec<AckSender>);

impl Acks {
    pub(crate) fn push(&mut self, ack: AckSender) {
        self.0.push(ack);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The batch is durable: every submitter learns its digest.
    pub(crate) fn resolve(self, digest: BatchDigest) {
        for ack in self.0 {
            // A caller that dropped its acknowledgement no longer listens.
            let _ = ack.send(Ok(digest));
        }
    }

    /// The batch will not be proposed: every submitter learns why.
    pub(crate) fn fail(self, error: SubmitError) {
        for ack in self.0 {
            let _ = ack.send(Err(error.clone()));
        }
    }
}

/// A report for the primary connector, with the acknowledgements that its `Ok` answer
/// resolves (only an `OurBatch` report has any).
#[derive(Debug)]
pub(crate) struct Report {
    pub message: WorkerToPrimary,
    pub acks: Acks,
}

impl From<WorkerToPrimary> for Report {
    fn from(message: WorkerToPrimary) -> Self {
        Self {
            message,
            acks: Acks::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn submitter(capacity: usize) -> (TxSubmitter, mpsc::Receiver<Submission>) {
        let (tx, rx) = mpsc::channel(capacity);
        let metrics = Arc::new(WorkerMetrics::new(&prometheus::Registry::new(), 0).unwrap());
        (TxSubmitter::new(tx, 100, metrics), rx)
    }

    /// Proves: a full channel gives `Full` at once (nothing queued, nothing waited for), room
    /// makes the next submission succeed, and a gone worker gives `Stopped`.
    #[test]
    fn full_channel_gives_full_and_closed_gives_stopped() {
        let (submitter, mut rx) = submitter(1);
        let _first = submitter.try_submit(Bytes::from_static(b"a")).unwrap();
        assert_eq!(
            submitter.try_submit(Bytes::from_static(b"b")).unwrap_err(),
            SubmitError::Full
        );
        assert_eq!(
            submitter
                .metrics
                .transactions_rejected
                .with_label_values(&["full"])
                .get(),
            1
        );
        let (tx, ack) = rx.try_recv().unwrap();
        assert_eq!(tx, Bytes::from_static(b"a"));
        assert!(ack.is_some());
        assert!(
            rx.try_recv().is_err(),
            "the refused transaction was not queued"
        );
        let _second = submitter.try_submit(Bytes::from_static(b"c")).unwrap();
        drop(rx);
        assert_eq!(
            submitter.try_submit(Bytes::from_static(b"d")).unwrap_err(),
            SubmitError::Stopped
        );
    }

    #[test]
    fn empty_and_oversized_transactions_are_refused() {
        let (submitter, _rx) = submitter(10);
        assert_eq!(
            submitter.try_submit(Bytes::new()).unwrap_err(),
            SubmitError::Empty
        );
        assert_eq!(
            submitter.try_submit(Bytes::from(vec![1; 101])).unwrap_err(),
            SubmitError::TooLarge {
                size: 101,
                limit: 100
            }
        );
        assert!(submitter.try_submit(Bytes::from(vec![1; 100])).is_ok());
    }

    /// Proves: an acknowledgement resolves to what the acks say, and to `Stopped` when its
    /// sender is dropped unanswered.
    #[test]
    fn acknowledgements_resolve_from_their_acks() {
        let (submitter, mut rx) = submitter(10);
        let digest = BatchDigest::of_encoded(b"batch");
        let mut acks = [Acks::default(), Acks::default(), Acks::default()];
        let mut pending = Vec::new();
        for acks in &mut acks {
            pending.push(submitter.try_submit(Bytes::from_static(b"x")).unwrap());
            acks.push(rx.try_recv().unwrap().1.unwrap());
        }
        let [ok, failed, dropped] = acks;
        let mut pending = pending.into_iter();
        let (mut a, mut b, mut c) = (
            pending.next().unwrap(),
            pending.next().unwrap(),
            pending.next().unwrap(),
        );
        assert!((&mut a).now_or_never().is_none(), "not resolved yet");
        ok.resolve(digest);
        failed.fail(SubmitError::PrimaryRefused);
        drop(dropped);
        assert_eq!((&mut a).now_or_never(), Some(Ok(digest)));
        assert_eq!(
            (&mut b).now_or_never(),
            Some(Err(SubmitError::PrimaryRefused))
        );
        assert_eq!((&mut c).now_or_never(), Some(Err(SubmitError::Stopped)));
    }
}
