//! Seals client transactions into batches.

use crate::batch::{BatchBuilder, SealedBatch};
use crate::metrics::WorkerMetrics;
use crate::submit::Submission;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Target of the benchmark log lines (see the crate documentation for their format).
pub const BENCH_LOG_TARGET: &str = "weft::bench";

/// Appends transactions to the current batch and seals it once its encoding reaches
/// `batch_size` bytes, or `max_batch_delay` after the previous seal, whichever comes first
/// (a timer that finds the batch empty just restarts).
pub struct BatchMaker {
    /// Seal once the batch's encoding reaches this many bytes.
    batch_size: usize,
    /// Seal a non-empty batch this long after the previous seal.
    max_batch_delay: Duration,
    /// The batch being filled, already in its wire encoding.
    builder: BatchBuilder,
    /// Client transactions, with an acknowledgement to resolve for acknowledged submissions.
    rx_ingress: mpsc::Receiver<Submission>,
    /// Sealed batches; waiting on it is the backpressure of dissemination.
    tx_quorum_waiter: mpsc::Sender<SealedBatch>,
    metrics: Arc<WorkerMetrics>,
    /// Cancelled when the worker stops.
    shutdown: CancellationToken,
}

impl BatchMaker {
    pub fn spawn(
        batch_size: usize,
        max_batch_delay: Duration,
        max_transaction_size: usize,
        rx_ingress: mpsc::Receiver<Submission>,
        tx_quorum_waiter: mpsc::Sender<SealedBatch>,
        metrics: Arc<WorkerMetrics>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(
            Self {
                batch_size,
                max_batch_delay,
                // A batch is sealed by the transaction that takes it to batch_size or beyond.
                builder: BatchBuilder::new(crate::max_sealed_batch(
                    batch_size,
                    max_transaction_size,
                )),
                rx_ingress,
                tx_quorum_waiter,
                metrics,
                shutdown,
            }
            .run(),
        )
    }

    async fn run(mut self) {
        let timer = tokio::time::sleep(self.max_batch_delay);
        tokio::pin!(timer);
        let depth = self
            .metrics
            .channel_depth
            .with_label_values(&["ingress_to_batch_maker"]);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                Some((tx, ack)) = self.rx_ingress.recv() => {
                    depth.set(self.rx_ingress.len() as i64);
                    self.builder.push_acknowledged(&tx, ack);
                    if self.builder.encoded_len() >= self.batch_size {
                        if !self.seal("size").await {
                            break;
                        }
                        timer.as_mut().reset(Instant::now() + self.max_batch_delay);
                    }
                }
                () = &mut timer => {
                    if !self.builder.is_empty() && !self.seal("timeout").await {
                        break;
                    }
                    timer.as_mut().reset(Instant::now() + self.max_batch_delay);
                }
            }
        }
    }

    /// Seals the current batch and hands it to the quorum waiter, waiting while the waiter is
    /// full. Returns false if the quorum waiter is gone.
    async fn seal(&mut self, reason: &'static str) -> bool {
        let txs = self.builder.len();
        let sealed = self.builder.seal();
        let bytes = sealed.message.len() - weft_types::WorkerMessage::BATCH_PREFIX_LEN;
        self.metrics
            .batches_sealed
            .with_label_values(&[reason])
            .inc();
        self.metrics.bytes_sealed.inc_by(bytes as u64);
        tracing::debug!(digest = %sealed.digest, txs, bytes, reason, "batch sealed");
        tracing::info!(target: BENCH_LOG_TARGET, "Batch {} contains {} B", sealed.digest, bytes);
        for id in &sealed.samples {
            tracing::info!(target: BENCH_LOG_TARGET, "Batch {} contains sample tx {}", sealed.digest, id);
        }
        self.tx_quorum_waiter.send(sealed).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use prometheus::Registry;
    use weft_types::codec::decode_message;
    use weft_types::{Batch, WorkerMessage};

    struct Setup {
        tx_ingress: mpsc::Sender<Submission>,
        rx_sealed: mpsc::Receiver<SealedBatch>,
        metrics: Arc<WorkerMetrics>,
        _shutdown: tokio_util::sync::DropGuard,
    }

    fn setup(batch_size: usize, delay: Duration) -> Setup {
        let (tx_ingress, rx_ingress) = mpsc::channel(100);
        let (tx_sealed, rx_sealed) = mpsc::channel(100);
        let metrics = Arc::new(WorkerMetrics::new(&Registry::new(), 0).unwrap());
        let shutdown = CancellationToken::new();
        BatchMaker::spawn(
            batch_size,
            delay,
            1_000,
            rx_ingress,
            tx_sealed,
            metrics.clone(),
            shutdown.clone(),
        );
        Setup {
            tx_ingress,
            rx_sealed,
            metrics,
            _shutdown: shutdown.drop_guard(),
        }
    }

    fn decode(sealed: &SealedBatch) -> Batch {
        match decode_message(sealed.message.clone(), usize::MAX).unwrap() {
            WorkerMessage::Batch(batch) => decode_message(batch, usize::MAX).unwrap(),
            other => panic!("not a batch: {other:?}"),
        }
    }

    /// A batch is sealed by the transaction that takes its encoding to batch_size, long before
    /// the (paused, one hour) timer.
    #[tokio::test(start_paused = true)]
    async fn seals_when_the_batch_reaches_its_size() {
        let mut s = setup(1_000, Duration::from_secs(3_600));
        // Encoding: 5 bytes of header, 104 per 100-byte transaction: the 10th reaches 1045.
        let txs: Vec<Bytes> = (0..10u8).map(|i| Bytes::from(vec![i + 1; 100])).collect();
        for tx in &txs {
            s.tx_ingress.send((tx.clone(), None)).await.unwrap();
        }
        let start = Instant::now();
        let sealed = s.rx_sealed.recv().await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "no timer was involved");
        assert_eq!(decode(&sealed).transactions, txs);
        assert_eq!(
            s.metrics.batches_sealed.with_label_values(&["size"]).get(),
            1
        );
        assert_eq!(s.metrics.bytes_sealed.get(), 1045);
    }

    /// A batch below the size is sealed when the delay expires, and the timer restarts per batch.
    #[tokio::test(start_paused = true)]
    async fn seals_after_the_delay() {
        let delay = Duration::from_millis(200);
        let mut s = setup(1_000_000, delay);
        let start = Instant::now();
        s.tx_ingress
            .send((Bytes::from_static(b"tx-1"), None))
            .await
            .unwrap();
        let first = s.rx_sealed.recv().await.unwrap();
        assert_eq!(start.elapsed(), delay);
        assert_eq!(
            decode(&first).transactions,
            vec![Bytes::from_static(b"tx-1")]
        );
        s.tx_ingress
            .send((Bytes::from_static(b"tx-2"), None))
            .await
            .unwrap();
        let second = s.rx_sealed.recv().await.unwrap();
        assert_eq!(start.elapsed(), delay * 2);
        assert_eq!(decode(&second).transactions.len(), 1);
        assert_eq!(
            s.metrics
                .batches_sealed
                .with_label_values(&["timeout"])
                .get(),
            2
        );
    }
}
