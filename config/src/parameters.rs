//! Protocol and node parameters. Every field has a default; a file may set any subset.

use serde::{Deserialize, Serialize};
use std::time::Duration;
pub use weft_consensus::LeaderScheduleKind;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Parameters {
    /// A primary proposes once it has this many batch digests (or `max_header_delay_ms` passed).
    pub header_num_of_batches_threshold: usize,
    /// Upper bound on batch digests in one header; headers above it are rejected.
    pub max_header_num_of_batches: usize,
    /// Longest a primary waits before proposing a header that is not full.
    pub max_header_delay_ms: u64,
    /// Rounds of DAG kept below the last committed round before they are garbage collected.
    pub gc_depth: u64,
    /// How long a synchronizer waits for a reply before asking other authorities.
    pub sync_retry_delay_ms: u64,
    /// How many authorities a retried sync request goes to.
    pub sync_retry_nodes: usize,
    /// Largest certificate count served for one range request during catch-up.
    pub max_certificates_per_fetch: usize,
    /// A worker seals its batch at this many bytes of transactions...
    pub batch_size: usize,
    /// ...or after this delay, whichever comes first.
    pub max_batch_delay_ms: u64,
    /// Largest client transaction a worker accepts.
    pub max_transaction_size: usize,
    /// Largest frame accepted from any peer; must hold a full batch.
    pub max_message_size: usize,
    /// Depth of the bounded channels between actors.
    pub channel_capacity: usize,
    /// How consensus picks the leader of each even round; the same on every authority.
    pub leader_schedule: LeaderScheduleKind,
    /// Committed sub-DAGs kept in the committed log for readers (stream API, L1 poster);
    /// older entries are deleted, and with them their batches. Independent of the DAG's
    /// `gc_depth`. The batches are what takes room: about 100 MB/s at 200k tx/s of 512 B, so
    /// the default of 10,000 sub-DAGs (tens of minutes) is some 10 GB per node at that load.
    pub committed_log_retention: u64,
}

impl Default for Parameters {
    fn default() -> Self {
        Self {
            header_num_of_batches_threshold: 32,
            max_header_num_of_batches: 1_000,
            max_header_delay_ms: 200,
            gc_depth: 50,
            sync_retry_delay_ms: 5_000,
            sync_retry_nodes: 3,
            max_certificates_per_fetch: 500,
            batch_size: 500_000,
            max_batch_delay_ms: 200,
            max_transaction_size: 128 * 1024,
            max_message_size: 4 * 1024 * 1024,
            channel_capacity: 1_000,
            leader_schedule: LeaderScheduleKind::RoundRobin,
            committed_log_retention: 10_000,
        }
    }
}

/// A parameter that failed validation, named by its field.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct ParameterError {
    pub field: &'static str,
    pub reason: String,
}

impl Parameters {
    pub fn max_header_delay(&self) -> Duration {
        Duration::from_millis(self.max_header_delay_ms)
    }

    pub fn max_batch_delay(&self) -> Duration {
        Duration::from_millis(self.max_batch_delay_ms)
    }

    pub fn sync_retry_delay(&self) -> Duration {
        Duration::from_millis(self.sync_retry_delay_ms)
    }

    pub fn validate(&self) -> Result<(), ParameterError> {
        let fail = |field: &'static str, reason: String| Err(ParameterError { field, reason });
        let positive: [(&'static str, u64); 10] = [
            (
                "header_num_of_batches_threshold",
                self.header_num_of_batches_threshold as u64,
            ),
            ("max_header_delay_ms", self.max_header_delay_ms),
            ("gc_depth", self.gc_depth),
            ("sync_retry_delay_ms", self.sync_retry_delay_ms),
            ("sync_retry_nodes", self.sync_retry_nodes as u64),
            (
                "max_certificates_per_fetch",
                self.max_certificates_per_fetch as u64,
            ),
            ("batch_size", self.batch_size as u64),
            ("max_batch_delay_ms", self.max_batch_delay_ms),
            ("channel_capacity", self.channel_capacity as u64),
            ("committed_log_retention", self.committed_log_retention),
        ];
        for (field, value) in positive {
            if value == 0 {
                return fail(field, "must be greater than 0".into());
            }
        }
        if self.max_header_num_of_batches < self.header_num_of_batches_threshold {
            return fail(
                "max_header_num_of_batches",
                format!(
                    "must be at least header_num_of_batches_threshold ({})",
                    self.header_num_of_batches_threshold
                ),
            );
        }
        if self.max_transaction_size == 0 || self.max_transaction_size > self.batch_size {
            return fail(
                "max_transaction_size",
                format!("must be between 1 and batch_size ({})", self.batch_size),
            );
        }
        // A sealed batch can exceed batch_size by up to one transaction plus framing.
        let largest_batch = self.batch_size + self.max_transaction_size + 4096;
        if self.max_message_size < largest_batch {
            return fail(
                "max_message_size",
                format!(
                    "must be at least batch_size + max_transaction_size + 4096 = {largest_batch}"
                ),
            );
        }
        if let LeaderScheduleKind::Reputation {
            commits_per_update: 0,
        } = self.leader_schedule
        {
            return fail(
                "leader_schedule",
                "reputation.commits_per_update must be greater than 0".into(),
            );
        }
        if self.max_message_size > 1 << 30 {
            return fail("max_message_size", "must be at most 1 GiB".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Parameters::default().validate(), Ok(()));
    }

    #[test]
    fn invalid_values_name_the_field() {
        let p = Parameters {
            gc_depth: 0,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "gc_depth");
        let p = Parameters {
            max_message_size: 1000,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "max_message_size");
        let p = Parameters {
            max_header_num_of_batches: 1,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "max_header_num_of_batches");
    }
}
