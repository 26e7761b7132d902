//! Prometheus metrics of the poster and the forced-inclusion watcher.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct PosterMetrics {
    /// Batches this poster got included.
    pub batches_posted: IntCounter,
    /// Transactions in those batches.
    pub transactions_posted: IntCounter,
    /// Bytes of batch data (calldata or blob payload) this poster got included.
    pub bytes_posted: IntCounter,
    /// Gas used by this poster's included batch transactions.
    pub gas_used: IntCounter,
    /// Replacements sent for stuck transactions.
    pub resubmissions: IntCounter,
    /// Submissions rejected by the inbox or reverted, by reason (`sequence`: someone else
    /// posted that batch first; `not_poster`; `reverted`).
    pub rejections: IntCounterVec,
    /// RPC or data errors, by kind.
    pub errors: IntCounterVec,
    /// Times the inbox head went back (a reorg took batches out).
    pub reorgs: IntCounter,
    /// The inbox's next sequence number as last read.
    pub inbox_next_sequence: IntGauge,
    /// The next sequence number confirmed at the configured depth.
    pub confirmed_next_sequence: IntGauge,
    /// The first sub-DAG not yet confirmed on L1 (posting lag: the committed log's index
    /// minus this).
    pub confirmed_next_sub_dag: IntGauge,
}

impl PosterMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let vec = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        Ok(Self {
            batches_posted: counter(
                "weft_l1_batches_posted_total",
                "batches this poster got included",
            )?,
            transactions_posted: counter(
                "weft_l1_transactions_posted_total",
                "transactions posted",
            )?,
            bytes_posted: counter("weft_l1_bytes_posted_total", "batch bytes posted")?,
            gas_used: counter(
                "weft_l1_gas_used_total",
                "gas used by included batch transactions",
            )?,
            resubmissions: counter(
                "weft_l1_resubmissions_total",
                "fee-bumped replacements sent",
            )?,
            rejections: vec(
                "weft_l1_rejections_total",
                "submissions rejected by the inbox",
                "reason",
            )?,
            errors: vec("weft_l1_errors_total", "poster errors", "kind")?,
            reorgs: counter("weft_l1_reorgs_total", "inbox head moved back")?,
            inbox_next_sequence: gauge("weft_l1_inbox_next_sequence", "inbox next sequence")?,
            confirmed_next_sequence: gauge(
                "weft_l1_confirmed_next_sequence",
                "next sequence confirmed at depth",
            )?,
            confirmed_next_sub_dag: gauge(
                "weft_l1_confirmed_next_sub_dag",
                "first sub-DAG not yet confirmed on L1",
            )?,
        })
    }

    /// Metrics registered in a private registry (tests, tools).
    pub fn unregistered() -> Self {
        match Self::new(&Registry::new()) {
            Ok(m) => m,
            // A fresh registry cannot hold a clashing name.
            Err(e) => unreachable!("fresh registry: {e}"),
        }
    }
}
