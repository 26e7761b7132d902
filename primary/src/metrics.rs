use prometheus::{
    register_histogram_with_registry, register_int_counter_vec_with_registry,
    register_int_counter_with_registry, register_int_gauge_with_registry, Histogram, IntCounter,
    IntCounterVec, IntGauge, Registry,
};

/// The primary's metrics (`weft_primary_*`). One per registry, shared by its actors.
#[derive(Clone, Debug)]
pub struct PrimaryMetrics {
    /// Messages refused, by `message` and `reason` (a `MessageError`/`CoreError` kind).
    pub rejected: IntCounterVec,
    /// Round of this primary's latest header.
    pub round: IntGauge,
    /// Highest round of the local DAG.
    pub dag_round: IntGauge,
    /// GC round: nothing at or below it is kept.
    pub gc_round: IntGauge,
    pub headers_proposed: IntCounter,
    /// Stored batches that no certificate carried, deleted by the orphan sweep.
    pub orphan_batches: IntCounter,
    pub votes_sent: IntCounter,
    /// Synced writes of vote records (one per step that voted, whatever the number of votes).
    pub vote_writes: IntCounter,
    pub certificates_formed: IntCounter,
    /// Certificates added to the DAG (own and others').
    pub certificates_inserted: IntCounter,
    /// Certificates held in memory by the DAG.
    pub dag_certificates: IntGauge,
    /// Headers and certificates waiting for parents or payload.
    pub pending: IntGauge,
    /// Sync requests sent to other primaries, by `kind` (`digests`, `range`).
    pub sync_requests: IntCounterVec,
    /// Certificates received in sync responses.
    pub certificates_fetched: IntCounter,
    /// Headers whose payload had to be fetched by the workers.
    pub payload_syncs: IntCounter,
    /// Time from proposing a header to its certificate.
    pub certificate_latency: Histogram,
}

impl PrimaryMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(Self {
            rejected: register_int_counter_vec_with_registry!(
                "weft_primary_rejected_total",
                "Messages refused by the primary, by message and reason",
                &["message", "reason"],
                registry
            )?,
            round: register_int_gauge_with_registry!(
                "weft_primary_round",
                "Round of this primary's latest header",
                registry
            )?,
            dag_round: register_int_gauge_with_registry!(
                "weft_primary_dag_round",
                "Highest round of the local DAG",
                registry
            )?,
            gc_round: register_int_gauge_with_registry!(
                "weft_primary_gc_round",
                "Rounds at or below it are garbage collected",
                registry
            )?,
            orphan_batches: register_int_counter_with_registry!(
                "weft_primary_orphan_batches_deleted_total",
                "Stored batches no certificate carried, deleted after two GC depths",
                registry
            )?,
            headers_proposed: register_int_counter_with_registry!(
                "weft_primary_headers_proposed_total",
                "Headers this primary proposed",
                registry
            )?,
            votes_sent: register_int_counter_with_registry!(
                "weft_primary_votes_sent_total",
                "Votes sent to other primaries",
                registry
            )?,
            vote_writes: register_int_counter_with_registry!(
                "weft_primary_vote_writes_total",
                "Synced writes of the vote record (one per step that voted)",
                registry
            )?,
            certificates_formed: register_int_counter_with_registry!(
                "weft_primary_certificates_formed_total",
                "Certificates this primary assembled for its own headers",
                registry
            )?,
            certificates_inserted: register_int_counter_with_registry!(
                "weft_primary_certificates_inserted_total",
                "Certificates added to the DAG",
                registry
            )?,
            dag_certificates: register_int_gauge_with_registry!(
                "weft_primary_dag_certificates",
                "Certificates held in memory by the DAG",
                registry
            )?,
            pending: register_int_gauge_with_registry!(
                "weft_primary_pending",
                "Headers and certificates waiting for parents or payload",
                registry
            )?,
            sync_requests: register_int_counter_vec_with_registry!(
                "weft_primary_sync_requests_total",
                "Certificate sync requests sent to other primaries, by kind",
                &["kind"],
                registry
            )?,
            certificates_fetched: register_int_counter_with_registry!(
                "weft_primary_certificates_fetched_total",
                "Certificates received in sync responses",
                registry
            )?,
            payload_syncs: register_int_counter_with_registry!(
                "weft_primary_payload_syncs_total",
                "Headers whose batches had to be fetched by the workers",
                registry
            )?,
            certificate_latency: register_histogram_with_registry!(
                "weft_primary_certificate_latency_seconds",
                "Time from proposing a header to holding its certificate",
                vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
                registry
            )?,
        })
    }
}
