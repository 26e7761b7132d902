use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use weft_types::WorkerId;

/// A worker's metrics. Every metric carries a constant `worker` label, so the workers of one
/// process can share a registry.
#[derive(Clone, Debug)]
pub struct WorkerMetrics {
    /// Transactions accepted from clients.
    pub transactions_received: IntCounter,
    /// Client frames refused (the connection is closed), by `reason`.
    pub transactions_rejected: IntCounterVec,
    /// Batches sealed here, by `reason` (`size` or `timeout`).
    pub batches_sealed: IntCounterVec,
    /// Bytes of the batches sealed here (their encoding).
    pub bytes_sealed: IntCounter,
    /// Own batches given up because the stake that answered cannot reach a quorum any more.
    pub batches_without_quorum: IntCounter,
    /// Seconds from sealing a batch until ≥ quorum stake stored it.
    pub quorum_latency: Histogram,
    /// Batches from other authorities' workers stored (broadcast path).
    pub batches_received: IntCounter,
    /// Bytes of peers' batches stored here that no header named yet (see `unannounced.rs`).
    pub unannounced_bytes: IntGauge,
    /// Requests refused with an error response, by `reason` (see `RequestError::kind`).
    pub requests_rejected: IntCounterVec,
    /// Batch requests served, and the batches sent in them.
    pub batch_requests_served: IntCounter,
    /// Batch requests sent by the synchronizer.
    pub sync_requests_sent: IntCounter,
    /// Batches the synchronizer fetched, checked and stored.
    pub sync_batches_fetched: IntCounter,
    /// Digests the synchronizer gave up on after its attempts.
    pub sync_gave_up: IntCounter,
    /// Digests the synchronizer is fetching.
    pub sync_pending: IntGauge,
    /// Batches deleted on the primary's request.
    pub batches_deleted: IntCounter,
    /// Messages waiting in each bounded channel, by `channel`.
    pub channel_depth: IntGaugeVec,
    /// Own batches broadcast and waiting for a quorum.
    pub batches_awaiting_quorum: IntGauge,
    /// Batch deliveries to peers written and not yet acknowledged.
    pub deliveries_in_flight: IntGauge,
    /// Reports to the own primary sent and not yet acknowledged.
    pub primary_reports_in_flight: IntGauge,
}

impl WorkerMetrics {
    pub fn new(registry: &Registry, id: WorkerId) -> Result<Self, prometheus::Error> {
        let worker = id.to_string();
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("worker", &worker);
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::with_opts(opts(name, help))?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let counter_vec =
            |name: &str, help: &str, label: &str| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(opts(name, help), &[label])?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::with_opts(opts(name, help))?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let channel_depth = IntGaugeVec::new(
            opts(
                "weft_worker_channel_depth",
                "Messages waiting in each bounded channel",
            ),
            &["channel"],
        )?;
        registry.register(Box::new(channel_depth.clone()))?;
        let quorum_latency = Histogram::with_opts(
            HistogramOpts::new(
                "weft_worker_quorum_latency_seconds",
                "Seconds from sealing a batch until a quorum of stake stored it",
            )
            .const_label("worker", &worker)
            .buckets(exponential_buckets(0.000_5, 2.0, 16)?),
        )?;
        registry.register(Box::new(quorum_latency.clone()))?;
        let metrics = Self {
            transactions_received: counter(
                "weft_worker_transactions_received_total",
                "Transactions accepted from clients",
            )?,
            transactions_rejected: counter_vec(
                "weft_worker_transactions_rejected_total",
                "Client transactions and connections refused, by reason",
                "reason",
            )?,
            batches_sealed: counter_vec(
                "weft_worker_batches_sealed_total",
                "Batches sealed, by what triggered the seal",
                "reason",
            )?,
            bytes_sealed: counter(
                "weft_worker_bytes_sealed_total",
                "Encoded bytes of the batches sealed",
            )?,
            batches_without_quorum: counter(
                "weft_worker_batches_without_quorum_total",
                "Own batches given up because a quorum of stake can no longer store them",
            )?,
            quorum_latency,
            batches_received: counter(
                "weft_worker_batches_received_total",
                "Batches of other authorities' workers stored",
            )?,
            unannounced_bytes: gauge(
                "weft_worker_unannounced_bytes",
                "Bytes of peers' batches stored here that no header named yet",
            )?,
            requests_rejected: counter_vec(
                "weft_worker_requests_rejected_total",
                "Requests refused with an error response",
                "reason",
            )?,
            batch_requests_served: counter(
                "weft_worker_batch_requests_served_total",
                "Batch requests answered",
            )?,
            sync_requests_sent: counter(
                "weft_worker_sync_requests_sent_total",
                "Batch requests sent by the synchronizer",
            )?,
            sync_batches_fetched: counter(
                "weft_worker_sync_batches_fetched_total",
                "Batches fetched, checked and stored by the synchronizer",
            )?,
            sync_gave_up: counter(
                "weft_worker_sync_gave_up_total",
                "Digests the synchronizer gave up on",
            )?,
            sync_pending: gauge(
                "weft_worker_sync_pending",
                "Digests the synchronizer is fetching",
            )?,
            batches_deleted: counter(
                "weft_worker_batches_deleted_total",
                "Batches deleted on the primary's request",
            )?,
            channel_depth,
            batches_awaiting_quorum: gauge(
                "weft_worker_batches_awaiting_quorum",
                "Own batches broadcast and waiting for a quorum",
            )?,
            deliveries_in_flight: gauge(
                "weft_worker_deliveries_in_flight",
                "Batch deliveries to peers sent and not yet acknowledged",
            )?,
            primary_reports_in_flight: gauge(
                "weft_worker_primary_reports_in_flight",
                "Reports to the own primary sent and not yet acknowledged",
            )?,
        };
        // Exported at zero from the start, so that a dashboard finds the series.
        let client_port = [
            "too_many_connections",
            "source_connections",
            "idle",
            "slow_frame",
            "evicted_quiet",
        ];
        for reason in ["empty", "too_large", "full"]
            .into_iter()
            .chain(client_port)
        {
            metrics.transactions_rejected.with_label_values(&[reason]);
        }
        Ok(metrics)
    }
}
