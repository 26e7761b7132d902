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
    /// Rounds of certificates kept in the store below the GC round, served by range to an
    /// authority catching up after being down: it replays the DAG it missed if it is behind by
    /// fewer than `gc_depth` plus this many rounds, and cannot come back beyond that. A few KB
    /// a round with 4 authorities (a whole idle store was 1 MB after 340 rounds), so some
    /// 30 MB for the default's 10,000 rounds (about 18 minutes at 9 rounds a second); 0
    /// deletes them at GC.
    pub certificate_retention_rounds: u64,
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
    /// Bytes of batches each peer's worker may have stored at a worker before any header names
    /// them (dissemination precedes ordering, so some always are); past it, that peer's
    /// broadcasts are refused until its headers catch up. Bounds what a Byzantine peer can
    /// make a worker store, even while consensus stalls and nothing is garbage-collected.
    pub max_unannounced_bytes_per_peer: usize,
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
    /// When this authority posts to L1 (`--l1-rpc`), retention follows the inbox instead: a
    /// sub-DAG stays until it is confirmed on L1 (however long that takes) and then this many
    /// more sub-DAGs, for stream consumers that resume a little behind.
    pub committed_log_retention_after_posting: u64,
    /// The workers' raw client port (length-framed transactions): what one client may hold.
    pub client_port: ClientPortParameters,
    /// The Ethereum JSON-RPC ingress (`eth_sendRawTransaction`). Its listening address is per
    /// authority, so it is not here: `weft node run --rpc-address` turns it on.
    pub rpc: RpcParameters,
    /// Where the process serves `/metrics` (Prometheus), `/health` and `/ready` over HTTP;
    /// off when unset. `weft node run --metrics-address` overrides it.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Listen on this IP (e.g. `0.0.0.0`) with the committee file's ports, instead of on the
    /// committee's addresses themselves: for containers, whose committee address is a
    /// service's and not the container's own.
    pub listen_host: Option<std::net::IpAddr>,
    /// Sign every committed sub-DAG and gather its finality certificate with the committee
    /// (pre-confirmations, and what the L1 inbox checks). Off only to measure what it costs.
    pub attestations: bool,
    /// How the committee cuts its committed log into L1 batches. Every authority must have
    /// the same values: each signs the data hash of the batches it cut.
    pub l1_batches: L1BatchParameters,
}

/// Limits of a worker's raw client port, which anyone can reach: no source may take every
/// connection, and no connection may hold one for ever without sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientPortParameters {
    /// Connections served at once; further ones are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Of those, how many one source (IPv4 address, IPv6 /64) may hold.
    pub max_connections_per_source: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout_ms: u64,
    /// A transaction whose first bytes arrived must be complete within this long (at most
    /// twice it: the clock is checked in steps of it); a slower one closes the connection.
    pub frame_timeout_ms: u64,
    /// When every connection is taken, a new one evicts the connection quiet longest, if it
    /// has sent nothing for this long (else the new one is refused).
    pub evict_quiet_after_ms: u64,
}

impl Default for ClientPortParameters {
    fn default() -> Self {
        Self {
            max_connections: 1_024,
            max_connections_per_source: 64,
            idle_timeout_ms: 60_000,
            frame_timeout_ms: 5_000,
            evict_quiet_after_ms: 1_000,
        }
    }
}

impl ClientPortParameters {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn frame_timeout(&self) -> Duration {
        Duration::from_millis(self.frame_timeout_ms)
    }

    pub fn evict_quiet_after(&self) -> Duration {
        Duration::from_millis(self.evict_quiet_after_ms)
    }

    pub fn validate(&self) -> Result<(), ParameterError> {
        let positive: [(&'static str, u64); 4] = [
            ("client_port.max_connections", self.max_connections as u64),
            (
                "client_port.max_connections_per_source",
                self.max_connections_per_source as u64,
            ),
            ("client_port.idle_timeout_ms", self.idle_timeout_ms),
            ("client_port.frame_timeout_ms", self.frame_timeout_ms),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ParameterError {
                    field,
                    reason: "must be greater than 0".into(),
                });
            }
        }
        Ok(())
    }
}

/// Where L1 batches begin and end, and how they are carried (see `weft_l1_poster::cutter`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1BatchParameters {
    /// Post as EIP-4844 blobs, at most this many per batch; calldata when `None`.
    pub max_blobs: Option<usize>,
    /// The compressed size a batch is filled up to (at most what `max_blobs` blobs carry).
    pub target_bytes: usize,
    /// A batch closes before the first sub-DAG this much later than its first transaction,
    /// so a quiet stream still reaches L1.
    pub interval_ms: u64,
}

impl Default for L1BatchParameters {
    fn default() -> Self {
        Self {
            max_blobs: None,
            // Under the 128 KiB transaction size most mempools accept.
            target_bytes: 120_000,
            interval_ms: 2_000,
        }
    }
}

impl L1BatchParameters {
    pub fn validate(&self) -> Result<(), ParameterError> {
        let fail = |field: &'static str, reason: &str| {
            Err(ParameterError {
                field,
                reason: reason.into(),
            })
        };
        if self.target_bytes == 0 {
            return fail("l1_batches.target_bytes", "must be greater than 0");
        }
        if self.interval_ms == 0 {
            return fail("l1_batches.interval_ms", "must be greater than 0");
        }
        // EIP-7691 (Prague) allows 9 blobs per block.
        if self.max_blobs.is_some_and(|b| !(1..=9).contains(&b)) {
            return fail("l1_batches.max_blobs", "must be between 1 and 9");
        }
        Ok(())
    }
}

/// Limits and policy of the Ethereum JSON-RPC ingress; the defaults follow reth's
/// (`crates/node/core/src/args/rpc_server.rs`) where reth has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcParameters {
    /// Largest HTTP body or WebSocket message, in bytes (reth: 15 MB); a larger one is
    /// refused by the server (HTTP 413, or a -32007 error over WebSocket).
    pub max_request_body_size: u32,
    /// Largest response, in bytes.
    pub max_response_body_size: u32,
    /// Most calls in one JSON-RPC batch; a longer batch is refused whole (-32005).
    pub max_batch_len: u32,
    /// Connections served at once (reth: 500); further ones are refused.
    pub max_connections: u32,
    /// Ordered-stream subscriptions one connection may hold (each reads the log on its own
    /// and holds one sub-DAG at a time).
    pub max_subscriptions_per_connection: u32,
    /// Calls per second one connection may make (a batch counts each of its calls); calls
    /// beyond it get -32005 until the next second.
    pub rate_limit_per_connection: u32,
    /// Largest raw transaction accepted, in bytes; at most `max_transaction_size`, which it
    /// is when `None` (128 KiB by default, as reth's `txpool.max-tx-input-bytes`).
    pub max_transaction_size: Option<usize>,
    /// The chain ids of the rollups this committee sequences; a transaction for any other
    /// chain, or without a chain id (pre-EIP-155), is refused.
    pub chain_ids: Vec<u64>,
    /// What `eth_chainId` answers on the endpoint's root path (`/<chain_id>` answers its own);
    /// one of `chain_ids`. `None`: the first of `chain_ids`.
    pub default_chain_id: Option<u64>,
    /// Recover each transaction's sender, refusing those whose signature recovers none. A
    /// rollup that checks signatures itself may turn this off and save the recovery's CPU.
    pub recover_senders: bool,
    /// Threads that recover senders (~21k a second each with libsecp256k1), apart from the
    /// runtime's, so that a flood of signed transactions cannot take the cores ordering needs.
    pub check_threads: u32,
    /// Transactions waiting for a check thread; a call beyond it gets -32003 "sequencer busy".
    pub max_pending_checks: u32,
}

impl Default for RpcParameters {
    fn default() -> Self {
        Self {
            max_request_body_size: 15 * 1024 * 1024,
            max_response_body_size: 15 * 1024 * 1024,
            max_batch_len: 100,
            max_connections: 500,
            max_subscriptions_per_connection: 16,
            rate_limit_per_connection: 10_000,
            max_transaction_size: None,
            chain_ids: vec![1337],
            default_chain_id: None,
            recover_senders: true,
            check_threads: 1,
            max_pending_checks: 10_000,
        }
    }
}

impl RpcParameters {
    /// The chain id `eth_chainId` answers on the root path.
    pub fn default_chain_id(&self) -> u64 {
        self.default_chain_id
            .or_else(|| self.chain_ids.first().copied())
            .unwrap_or_default()
    }

    /// The largest raw transaction the ingress accepts, given the workers' limit.
    pub fn max_transaction_size(&self, worker_max_transaction_size: usize) -> usize {
        self.max_transaction_size
            .unwrap_or(worker_max_transaction_size)
    }

    /// Checks the section on its own and against the worker's `max_transaction_size`.
    pub fn validate(&self, worker_max_transaction_size: usize) -> Result<(), ParameterError> {
        let fail = |field: &'static str, reason: String| Err(ParameterError { field, reason });
        let max_transaction_size = self.max_transaction_size(worker_max_transaction_size);
        let positive: [(&'static str, u64); 8] = [
            ("rpc.check_threads", self.check_threads.into()),
            ("rpc.max_pending_checks", self.max_pending_checks.into()),
            (
                "rpc.max_response_body_size",
                self.max_response_body_size.into(),
            ),
            ("rpc.max_batch_len", self.max_batch_len.into()),
            ("rpc.max_connections", self.max_connections.into()),
            (
                "rpc.max_subscriptions_per_connection",
                self.max_subscriptions_per_connection.into(),
            ),
            (
                "rpc.rate_limit_per_connection",
                self.rate_limit_per_connection.into(),
            ),
            ("rpc.max_transaction_size", max_transaction_size as u64),
        ];
        for (field, value) in positive {
            if value == 0 {
                return fail(field, "must be greater than 0".into());
            }
        }
        if max_transaction_size > worker_max_transaction_size {
            return fail(
                "rpc.max_transaction_size",
                format!("must be at most max_transaction_size ({worker_max_transaction_size})"),
            );
        }
        // The largest transaction, hex-encoded inside a call, must fit in a request.
        let smallest_body = 2 * max_transaction_size as u64 + 1024;
        if u64::from(self.max_request_body_size) < smallest_body {
            return fail(
                "rpc.max_request_body_size",
                format!(
                    "must hold the largest transaction as hex: at least 2 * {max_transaction_size} + 1024 = {smallest_body}"
                ),
            );
        }
        if self.chain_ids.is_empty() {
            return fail("rpc.chain_ids", "must name at least one chain id".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for id in &self.chain_ids {
            if *id == 0 {
                return fail("rpc.chain_ids", "0 is not a chain id".into());
            }
            if !seen.insert(*id) {
                return fail("rpc.chain_ids", format!("{id} is listed twice"));
            }
        }
        if let Some(id) = self.default_chain_id {
            if !self.chain_ids.contains(&id) {
                return fail(
                    "rpc.default_chain_id",
                    format!("{id} is not one of rpc.chain_ids"),
                );
            }
        }
        Ok(())
    }
}

impl Default for Parameters {
    fn default() -> Self {
        Self {
            header_num_of_batches_threshold: 32,
            max_header_num_of_batches: 1_000,
            max_header_delay_ms: 200,
            gc_depth: 50,
            certificate_retention_rounds: 10_000,
            sync_retry_delay_ms: 5_000,
            sync_retry_nodes: 3,
            max_certificates_per_fetch: 500,
            batch_size: 500_000,
            max_batch_delay_ms: 200,
            max_transaction_size: 128 * 1024,
            max_unannounced_bytes_per_peer: 128 * 1024 * 1024,
            max_message_size: 4 * 1024 * 1024,
            channel_capacity: 1_000,
            leader_schedule: LeaderScheduleKind::RoundRobin,
            committed_log_retention: 10_000,
            committed_log_retention_after_posting: 1_000,
            client_port: ClientPortParameters::default(),
            rpc: RpcParameters::default(),
            metrics_address: None,
            listen_host: None,
            attestations: true,
            l1_batches: L1BatchParameters::default(),
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
    /// Where to listen for what the committee file says is at `advertised`.
    pub fn listen_address(&self, advertised: std::net::SocketAddr) -> std::net::SocketAddr {
        self.listen_host.map_or(advertised, |host| {
            std::net::SocketAddr::new(host, advertised.port())
        })
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
        let must_hold_a_batch = [
            ("max_message_size", self.max_message_size),
            (
                "max_unannounced_bytes_per_peer",
                self.max_unannounced_bytes_per_peer,
            ),
        ];
        for (field, value) in must_hold_a_batch {
            if value < largest_batch {
                return fail(
                    field,
                    format!(
                        "must be at least batch_size + max_transaction_size + 4096 = {largest_batch}"
                    ),
                );
            }
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
        self.l1_batches.validate()?;
        self.client_port.validate()?;
        self.rpc.validate(self.max_transaction_size)
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

    #[test]
    fn invalid_l1_batch_values_name_the_field() {
        let with = |l1_batches| Parameters {
            l1_batches,
            ..Default::default()
        };
        let defaults = L1BatchParameters::default();
        for (p, field) in [
            (
                L1BatchParameters {
                    target_bytes: 0,
                    ..defaults.clone()
                },
                "l1_batches.target_bytes",
            ),
            (
                L1BatchParameters {
                    interval_ms: 0,
                    ..defaults.clone()
                },
                "l1_batches.interval_ms",
            ),
            (
                L1BatchParameters {
                    max_blobs: Some(10),
                    ..defaults.clone()
                },
                "l1_batches.max_blobs",
            ),
        ] {
            assert_eq!(with(p).validate().unwrap_err().field, field);
        }
        let blobs = L1BatchParameters {
            max_blobs: Some(6),
            ..defaults
        };
        assert_eq!(with(blobs).validate(), Ok(()));
    }

    #[test]
    fn invalid_rpc_values_name_the_field() {
        let with = |rpc: RpcParameters| Parameters {
            rpc,
            ..Default::default()
        };
        let field = |rpc: RpcParameters| with(rpc).validate().unwrap_err().field;
        let d = RpcParameters::default;
        assert_eq!(
            field(RpcParameters {
                chain_ids: vec![],
                ..d()
            }),
            "rpc.chain_ids"
        );
        assert_eq!(
            field(RpcParameters {
                chain_ids: vec![5, 5],
                ..d()
            }),
            "rpc.chain_ids"
        );
        assert_eq!(
            field(RpcParameters {
                default_chain_id: Some(9),
                ..d()
            }),
            "rpc.default_chain_id"
        );
        assert_eq!(
            field(RpcParameters {
                max_transaction_size: Some(1 << 20),
                ..d()
            }),
            "rpc.max_transaction_size"
        );
        assert_eq!(
            field(RpcParameters {
                max_request_body_size: 1000,
                ..d()
            }),
            "rpc.max_request_body_size"
        );
        assert_eq!(
            field(RpcParameters {
                rate_limit_per_connection: 0,
                ..d()
            }),
            "rpc.rate_limit_per_connection"
        );
        let rpc = RpcParameters {
            chain_ids: vec![10, 20],
            ..d()
        };
        assert_eq!(rpc.default_chain_id(), 10);
        assert_eq!(with(rpc).validate(), Ok(()));
    }

    /// A parameters file written before the rpc section existed still loads, and a partial
    /// section keeps the other defaults.
    #[test]
    fn rpc_section_is_optional_and_partial() {
        let p: Parameters = serde_json::from_str(r#"{"gc_depth": 7}"#).unwrap();
        assert_eq!(p.rpc, RpcParameters::default());
        let p: Parameters = serde_json::from_str(r#"{"rpc": {"chain_ids": [1, 2]}}"#).unwrap();
        assert_eq!(p.rpc.chain_ids, vec![1, 2]);
        assert!(p.rpc.recover_senders);
        assert!(serde_json::from_str::<Parameters>(r#"{"rpc": {"chain_id": 1}}"#).is_err());
    }
}
