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
            batches_posted: counter("l1_batches_posted", "batches this poster got included")?,
            transactions_posted: counter("l1_transactions_posted", "transactions posted")?,
            bytes_posted: counter("l1_bytes_posted", "batch bytes posted")?,
            gas_used: counter("l1_gas_used", "gas used by included batch transactions")?,
            resubmissions: counter("l1_resubmissions", "fee-bumped replacements sent")?,
            rejections: vec(
                "l1_rejections",
                "submissions rejected by the inbox",
                "reason",
            )?,
            errors: vec("l1_errors", "poster errors", "kind")?,
            reorgs: counter("l1_reorgs", "inbox head moved back")?,
            inbox_next_sequence: gauge("l1_inbox_next_sequence", "inbox next sequence")?,
            confirmed_next_sequence: gauge(
                "l1_confirmed_next_sequence",
                "next sequence confirmed at depth",
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
