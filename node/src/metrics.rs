//! The node's own metrics: what the executor committed, how long it took from the leader's
//! header to the committed log, and the store's size on disk.

use prometheus::{
    register_histogram_with_registry, register_int_counter_with_registry,
    register_int_gauge_vec_with_registry, register_int_gauge_with_registry, Histogram, IntCounter,
    IntGauge, IntGaugeVec, Registry,
};

pub struct NodeMetrics {
    /// The next sub-DAG index of the committed log.
    pub committed_log_index: IntGauge,
    pub transactions_committed: IntCounter,
    /// Leader header created (its proposer's clock) → sub-DAG durable in the committed log.
    pub commit_latency: Histogram,
    /// Bytes on disk, by part of the store.
    pub store_bytes: IntGaugeVec,
}

impl NodeMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            committed_log_index: register_int_gauge_with_registry!(
                "weft_node_committed_log_index",
                "Sub-DAGs written to the committed log (the next index)",
                registry
            )?,
            transactions_committed: register_int_counter_with_registry!(
                "weft_node_transactions_committed_total",
                "Transactions in sub-DAGs written to the committed log",
                registry
            )?,
            commit_latency: register_histogram_with_registry!(
                "weft_node_commit_latency_seconds",
                "From the leader header's creation to its sub-DAG in the committed log",
                vec![0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0],
                registry
            )?,
            store_bytes: register_int_gauge_vec_with_registry!(
                "weft_node_store_bytes",
                "Size on disk of the store: RocksDB files and value-log segments",
                &["part"],
                registry
            )?,
        };
        for part in ["rocksdb", "value_log"] {
            metrics.store_bytes.with_label_values(&[part]);
        }
        Ok(metrics)
    }
}

/// Bytes of the files under `dir` (recursively), and of those under its `values/`.
pub fn disk_usage(dir: &std::path::Path) -> (u64, u64) {
    fn walk(dir: &std::path::Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    let values = walk(&dir.join("values"));
    (walk(dir).saturating_sub(values), values)
}
