//! The columns the node's own stages own (the committed log and what the committee signs of
//! it), and the union a node's store is opened with.

use weft_storage::Column;

/// Sub-DAG index → the digests of its ordered batches: the node's committed log, kept for a
/// configured number of sub-DAGs regardless of the DAG's garbage collection.
pub const COMMITTED_LOG: Column = Column::new("committed_log");
/// Sub-DAG index → this authority's signed attestation of it, written (synced) before the
/// signature is sent: what a restart resends, and the proof of what it signed.
pub const ATTESTATIONS: Column = Column::new("attestations");
/// Sub-DAG index → its finality certificate (quorum stake of matching attestations).
pub const FINALITY_CERTIFICATES: Column = Column::new("finality_certificates");
/// (naming sub-DAG index, sequence) → an L1 batch as the log's cutter closed it, written
/// with the attestation that names it; pruned with that sub-DAG.
pub const L1_BATCHES: Column = Column::new("l1_batches");

/// Every column of one authority's store: the primary's, its workers' and the node's.
pub fn all() -> Vec<Column> {
    let own = [
        COMMITTED_LOG,
        ATTESTATIONS,
        FINALITY_CERTIFICATES,
        L1_BATCHES,
    ];
    (weft_primary::columns::ALL.into_iter())
        .chain(weft_worker::columns::ALL)
        .chain(own)
        .collect()
}
