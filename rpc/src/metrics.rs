//! The ingress's metrics.

use prometheus::{
    register_int_counter_vec_with_registry, register_int_counter_with_registry,
    register_int_gauge_with_registry, IntCounter, IntCounterVec, IntGauge, Registry,
};

#[derive(Clone)]
pub struct RpcMetrics {
    /// `eth_sendRawTransaction` calls.
    pub transactions_received: IntCounter,
    /// Those answered with an error, by reason.
    pub transactions_rejected: IntCounterVec,
    /// Open `weft_subscribeSubDags` subscriptions.
    pub stream_subscriptions: IntGauge,
}

impl RpcMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            transactions_received: register_int_counter_with_registry!(
                "weft_rpc_transactions_received_total",
                "eth_sendRawTransaction calls",
                registry
            )?,
            transactions_rejected: register_int_counter_vec_with_registry!(
                "weft_rpc_transactions_rejected_total",
                "eth_sendRawTransaction calls answered with an error, by reason",
                &["reason"],
                registry
            )?,
            stream_subscriptions: register_int_gauge_with_registry!(
                "weft_rpc_stream_subscriptions",
                "Open weft_subscribeSubDags subscriptions",
                registry
            )?,
        };
        // Exported at zero from the start, so that a dashboard finds the series.
        for reason in ["busy", "undecodable", "bad_signature", "wrong_chain"] {
            metrics.transactions_rejected.with_label_values(&[reason]);
        }
        Ok(metrics)
    }
}
