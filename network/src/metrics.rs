use prometheus::{
    register_int_counter_vec_with_registry, register_int_counter_with_registry,
    register_int_gauge_vec_with_registry, register_int_gauge_with_registry, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Registry,
};

/// Label value for connections a server accepted.
pub(crate) const INBOUND: &str = "inbound";
/// Label value for connections a sender dialled.
pub(crate) const OUTBOUND: &str = "outbound";

/// Network metrics. Metric names are fixed, so create one `NetworkMetrics` per registry and
/// share it (`Arc`) between every server and sender of the process.
#[derive(Clone, Debug)]
pub struct NetworkMetrics {
    /// Handshakes refused because the peer's key was not acceptable, by `direction`.
    pub handshakes_refused: IntCounterVec,
    /// Handshakes that failed for any reason (refusals included), by `direction`.
    pub handshake_failures: IntCounterVec,
    /// Connections closed because the peer announced a frame above the limit, by `direction`.
    pub frames_too_large: IntCounterVec,
    /// Messages the best-effort sender dropped or could not confirm.
    pub best_effort_dropped: IntCounter,
    /// Bytes written to TLS streams, frame headers included.
    pub bytes_sent: IntCounter,
    /// Bytes of complete frames read from TLS streams, headers included.
    pub bytes_received: IntCounter,
    /// Requests queued in senders' per-peer channels, summed over peers.
    pub channel_depth: IntGauge,
    /// Authenticated connections currently open, by `direction`.
    pub connections: IntGaugeVec,
    /// Failed connection attempts of senders.
    pub connect_failures: IntCounter,
    /// Inbound connections closed before their handshake, by `reason`: `handshake_slots` (all
    /// unreserved slots taken), `source_slots` (the source holds its share).
    pub connections_refused: IntCounterVec,
}

impl NetworkMetrics {
    /// `direction` label of connections a server accepted.
    pub const INBOUND: &'static str = INBOUND;
    /// `direction` label of connections a sender dialled.
    pub const OUTBOUND: &'static str = OUTBOUND;

    /// Registers every metric in `registry`; fails if they are registered there already.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            handshakes_refused: register_int_counter_vec_with_registry!(
                "weft_network_handshakes_refused_total",
                "TLS handshakes refused because the peer's network key was not acceptable",
                &["direction"],
                registry
            )?,
            handshake_failures: register_int_counter_vec_with_registry!(
                "weft_network_handshake_failures_total",
                "TLS handshakes that failed for any reason, refusals included",
                &["direction"],
                registry
            )?,
            frames_too_large: register_int_counter_vec_with_registry!(
                "weft_network_frames_too_large_total",
                "Connections closed because the peer announced a frame above the size limit",
                &["direction"],
                registry
            )?,
            best_effort_dropped: register_int_counter_with_registry!(
                "weft_network_best_effort_dropped_total",
                "Messages the best-effort sender dropped or could not confirm",
                registry
            )?,
            bytes_sent: register_int_counter_with_registry!(
                "weft_network_bytes_sent_total",
                "Bytes of frames written, headers included",
                registry
            )?,
            bytes_received: register_int_counter_with_registry!(
                "weft_network_bytes_received_total",
                "Bytes of frames read, headers included",
                registry
            )?,
            channel_depth: register_int_gauge_with_registry!(
                "weft_network_channel_depth",
                "Requests queued in the senders' per-peer channels",
                registry
            )?,
            connections: register_int_gauge_vec_with_registry!(
                "weft_network_connections",
                "Authenticated connections currently open",
                &["direction"],
                registry
            )?,
            connections_refused: register_int_counter_vec_with_registry!(
                "weft_network_connections_refused_total",
                "Inbound connections closed before their TLS handshake, by reason",
                &["reason"],
                registry
            )?,
            connect_failures: register_int_counter_with_registry!(
                "weft_network_connect_failures_total",
                "Failed outbound connection attempts",
                registry
            )?,
        };
        // Exported at zero from the start, so that a dashboard finds the series.
        for direction in [INBOUND, OUTBOUND] {
            metrics.handshakes_refused.with_label_values(&[direction]);
            metrics.handshake_failures.with_label_values(&[direction]);
            metrics.frames_too_large.with_label_values(&[direction]);
            metrics.connections.with_label_values(&[direction]);
        }
        for reason in [REFUSED_HANDSHAKE_SLOTS, REFUSED_SOURCE_SLOTS] {
            metrics.connections_refused.with_label_values(&[reason]);
        }
        Ok(metrics)
    }

    /// Metrics registered in a private registry, for tests and tools that do not export them.
    pub fn unregistered() -> Self {
        Self::new(&Registry::new()).expect("a fresh registry has no metric of these names")
    }
}

/// `reason` of [`NetworkMetrics::connections_refused`]: every unreserved handshake slot taken.
pub(crate) const REFUSED_HANDSHAKE_SLOTS: &str = "handshake_slots";
/// The source holds its share of handshake slots.
pub(crate) const REFUSED_SOURCE_SLOTS: &str = "source_slots";

/// Keeps a connection gauge raised while alive.
pub(crate) struct GaugeGuard(IntGauge);

impl GaugeGuard {
    pub(crate) fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
