//! The primary: proposes headers, votes, forms certificates and builds the certified DAG.
//!
//! The protocol logic is a deterministic state machine ([`core::Core`], on top of the pure
//! [`dag::Dag`]); the actors around it do the I/O:
//! - the network handler verifies what peers send before anything else and answers sync
//!   requests from storage (`handler`);
//! - the runner feeds the core and carries out its outputs (`runner`);
//! - the certificate synchronizer fetches missing parents and whole ranges (`synchronizer`,
//!   deciding with the pure [`sync_core::SyncCore`], which the simulator drives too);
//! - the payload synchronizer has this authority's workers fetch missing batches (`payload`).
//!
//! Certificates leave through the `tx_consensus` channel in causal order; consensus reports
//! committed leader rounds back, which drives garbage collection in memory and on disk.

/// The columns the primary owns (the process opens them with the others').
pub mod columns {
    use weft_storage::Column;

    /// Header digest → header.
    pub const HEADERS: Column = Column::new("headers");
    /// Certificate digest → certificate.
    pub const CERTIFICATES: Column = Column::new("certificates");
    /// (round, author) → certificate digest: the DAG by round, for range fetches and GC.
    pub const CERTIFICATES_BY_ROUND: Column = Column::new("certificates_by_round");
    /// Header author → the last (round, header digest) this authority voted for.
    pub const VOTES: Column = Column::new("votes");
    /// (batch digest, worker id) → the GC round when it was reported: batches a primary knows
    /// are stored by its own workers, so headers carrying them can be voted for.
    pub const PAYLOAD: Column = Column::new("payload");
    /// (batch digest, worker id) → report sequence: own batches that the workers reported (so
    /// their transactions were acknowledged to clients) and no committed sub-DAG holds yet. A
    /// restarting primary proposes them again; the executor deletes them in the write that
    /// commits them.
    pub const OWN_BATCHES: Column = Column::new("own_batches");

    /// Every column the primary reads or writes (its GC round is one of the records).
    pub const ALL: [Column; 7] = [
        HEADERS,
        CERTIFICATES,
        CERTIFICATES_BY_ROUND,
        VOTES,
        PAYLOAD,
        OWN_BATCHES,
        weft_storage::RECORDS,
    ];
}
pub mod core;
pub mod dag;
mod handler;
mod messages;
mod metrics;
mod payload;
mod runner;
pub mod sync_core;
mod synchronizer;

pub use crate::core::LeaderFn;
pub use metrics::PrimaryMetrics;

use crate::core::{Core, CoreConfig, Recovered};
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use weft_config::Parameters;
use weft_network::actors::Actors;
use weft_network::{
    NetworkConfig, NetworkError, NetworkMetrics, Peer, ReliableSender, Server, ServerHandle,
};
use weft_storage::{Map, Store, StoreError};
use weft_types::{
    AuthorityIndex, BatchDigest, Certificate, CertificateDigest, Committee, Header, HeaderDigest,
    KeyPair, Round, WorkerId,
};

/// What the node tells the primary after each committed sub-DAG is durably output.
#[derive(Clone, Default)]
pub struct CommitNotice {
    pub leader_round: Round,
    /// Rounds of this authority's certificates in the sub-DAG.
    pub own_rounds: Vec<Round>,
    /// The leader schedule after this sub-DAG, when it changed: an input of the core like any
    /// other, so every run of the core is a function of its inputs alone.
    pub leaders: Option<LeaderFn>,
}

impl std::fmt::Debug for CommitNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitNotice")
            .field("leader_round", &self.leader_round)
            .field("own_rounds", &self.own_rounds)
            .field("leaders_changed", &self.leaders.is_some())
            .finish()
    }
}

/// This authority's workers as peers: they authenticate with the authority's network key.
pub fn own_workers(committee: &Committee, me: AuthorityIndex) -> BTreeMap<WorkerId, Peer> {
    committee
        .authority(me)
        .map(|a| {
            a.worker_addresses
                .iter()
                .map(|(id, address)| (*id, Peer::new(*address, a.network_key.clone())))
                .collect()
        })
        .unwrap_or_default()
}

/// Every other authority's primary.
pub fn other_primaries(
    committee: &Committee,
    me: AuthorityIndex,
) -> BTreeMap<AuthorityIndex, Peer> {
    committee
        .authorities()
        .filter(|(i, _)| *i != me)
        .map(|(i, a)| (i, Peer::new(a.primary_address, a.network_key.clone())))
        .collect()
}

/// Key of the primary's GC round in the consensus column.
pub const GC_ROUND_KEY: &str = "primary_gc_round";

#[derive(Debug, Error)]
pub enum PrimaryError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("network: {0}")]
    Network(#[from] NetworkError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("authority {0} is not in the committee")]
    NotInCommittee(AuthorityIndex),
}

/// The primary's typed views of the store.
#[derive(Clone)]
pub struct PrimaryStores {
    pub store: Store,
    pub votes: Map<AuthorityIndex, (Round, HeaderDigest)>,
    pub headers: Map<HeaderDigest, Header>,
    pub certificates: Map<CertificateDigest, Certificate>,
    pub certificates_by_round: Map<(Round, AuthorityIndex), CertificateDigest>,
    pub payload: Map<(BatchDigest, WorkerId), u64>,
    /// Own batches reported and not yet committed → report sequence (see [`columns::OWN_BATCHES`]).
    pub own_batches: Map<(BatchDigest, WorkerId), u64>,
    pub consensus: Map<String, u64>,
}

impl PrimaryStores {
    pub fn new(store: &Store) -> Self {
        Self {
            store: store.clone(),
            votes: store.map(columns::VOTES),
            headers: store.map(columns::HEADERS),
            certificates: store.map(columns::CERTIFICATES),
            certificates_by_round: store.map(columns::CERTIFICATES_BY_ROUND),
            payload: store.map(columns::PAYLOAD),
            own_batches: store.map(columns::OWN_BATCHES),
            consensus: store.map(weft_storage::RECORDS),
        }
    }

    /// Every stored certificate of a round above `gc_round`, in (round, author) order.
    pub fn certificates_above(&self, gc_round: Round) -> Result<Vec<Certificate>, StoreError> {
        let digests: Vec<CertificateDigest> = self
            .certificates_by_round
            .range(
                &(gc_round + 1, AuthorityIndex(0)),
                &(Round::MAX, AuthorityIndex(0)),
                usize::MAX,
            )?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        Ok(self
            .certificates
            .multi_get(digests.iter())?
            .into_iter()
            .flatten()
            .collect())
    }

    /// What a restarting primary needs: its vote record, its GC round, the certificates
    /// above it, its latest header and its uncommitted own batches (in report order).
    fn recover(&self, me: AuthorityIndex) -> Result<Recovered, StoreError> {
        let votes = self.votes.iter()?;
        let gc_round = self.consensus.get(&GC_ROUND_KEY.to_string())?.unwrap_or(0);
        let certificates = self.certificates_above(gc_round)?;
        let last_header = match votes.iter().find(|(a, _)| *a == me) {
            Some((_, (_, digest))) => self.headers.get(digest)?,
            None => None,
        };
        let mut own_batches = self.own_batches.iter()?;
        own_batches.sort_by_key(|(_, sequence)| *sequence);
        Ok(Recovered {
            votes,
            certificates,
            gc_round,
            last_header,
            own_batches: own_batches.into_iter().map(|(batch, _)| batch).collect(),
        })
    }
}

/// Everything a primary needs to run.
pub struct PrimaryArgs {
    pub authority: AuthorityIndex,
    pub committee: Arc<Committee>,
    pub parameters: Parameters,
    /// Signs headers and votes.
    pub protocol_keypair: KeyPair,
    /// Authenticates this authority's links.
    pub network_keypair: KeyPair,
    pub store: Store,
    pub leader: LeaderFn,
    pub metrics: Arc<PrimaryMetrics>,
    pub network_metrics: Arc<NetworkMetrics>,
    /// Certificates, in causal order, for consensus.
    pub tx_consensus: mpsc::Sender<Certificate>,
    /// Sub-DAGs consensus committed and the node output; drives garbage collection and the
    /// re-proposal of own batches whose certificates can no longer be committed.
    pub rx_committed: mpsc::Receiver<CommitNotice>,
    /// Serves `PrimaryMessage::Attestation` (the node's attester); `None` refuses them.
    pub attestations: Option<Arc<dyn weft_network::Handler>>,
}

/// A running primary. Dropping it stops serving; [`PrimaryHandle::shutdown`] waits for that.
pub struct PrimaryHandle {
    server: ServerHandle,
    actors: Actors,
    /// Cancelled by [`PrimaryHandle::shutdown`]: each actor finishes its step and ends.
    shutdown: CancellationToken,
}

impl PrimaryHandle {
    pub fn local_address(&self) -> std::net::SocketAddr {
        self.server.local_address()
    }

    /// Stops serving, then tells every actor to stop and waits until each has.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        self.shutdown.cancel();
        self.actors.join().await;
    }

    /// Stops every actor wherever it is, as a crash would (for crash tests).
    pub async fn kill(self) {
        self.server.shutdown().await;
        self.actors.abort_and_join().await;
    }

    /// Resolves when one of the primary's actors stopped before shutdown (a fatal error):
    /// which one.
    pub async fn stopped(&mut self) -> String {
        format!("primary {}", self.actors.first_stopped().await)
    }
}

pub struct Primary;

impl Primary {
    /// Recovers the primary's state from `store` and starts its server and actors.
    pub async fn spawn(args: PrimaryArgs) -> Result<PrimaryHandle, PrimaryError> {
        let PrimaryArgs {
            authority: me,
            committee,
            parameters,
            protocol_keypair,
            network_keypair,
            store,
            leader,
            metrics,
            network_metrics,
            tx_consensus,
            rx_committed,
            attestations,
        } = args;
        let address = committee
            .authority(me)
            .ok_or(PrimaryError::NotInCommittee(me))?
            .primary_address;
        let stores = PrimaryStores::new(&store);
        let recovered = stores.recover(me)?;
        let gc_round = recovered.gc_round;
        let next_own_batch = stores
            .own_batches
            .iter()?
            .into_iter()
            .map(|(_, sequence)| sequence + 1)
            .max()
            .unwrap_or(0);
        let config = CoreConfig {
            gc_depth: parameters.gc_depth,
            header_num_of_batches_threshold: parameters.header_num_of_batches_threshold,
            max_header_num_of_batches: parameters.max_header_num_of_batches,
            max_header_delay_ms: parameters.max_header_delay_ms,
        };
        let core = Core::recover(
            me,
            (*committee).clone(),
            protocol_keypair,
            config,
            leader,
            recovered,
        );
        tracing::info!(authority = %me, round = core.round(), gc_round, dag_round = core.dag().highest_round(), "primary recovered");
        let network_config = NetworkConfig {
            max_message_size: parameters.max_message_size,
            ..NetworkConfig::default()
        };
        let sender = ReliableSender::new(
            &network_keypair,
            network_config.clone(),
            network_metrics.clone(),
        )?;
        let (tx_core, rx_core) = mpsc::channel(runner::CORE_CHANNEL_CAPACITY);
        // Unbounded on purpose: the core emits each fetch once per missing item, so what it
        // can queue is bounded by its own pending sets, and a bounded channel here would let
        // the core and a synchronizer that feeds it wait on each other.
        let (tx_sync, rx_sync) = mpsc::unbounded_channel();
        let (tx_payload, rx_payload) = mpsc::unbounded_channel();
        let (tx_gc_round, rx_gc_round) = watch::channel(gc_round);
        let handler = handler::PrimaryHandler {
            me,
            committee: committee.clone(),
            stores: stores.clone(),
            tx_core: tx_core.clone(),
            metrics: metrics.clone(),
            max_message_size: parameters.max_message_size,
            max_certificates_per_fetch: parameters.max_certificates_per_fetch,
            gc_round: rx_gc_round.clone(),
            next_own_batch: std::sync::atomic::AtomicU64::new(next_own_batch),
            attestations,
        };
        let server = Server::spawn(
            parameters.listen_address(address),
            committee.clone(),
            &network_keypair,
            Arc::new(handler),
            network_config,
            network_metrics,
        )
        .await?;
        let shutdown = CancellationToken::new();
        let mut actors = Actors::default();
        actors.push(
            "certificate synchronizer",
            synchronizer::Synchronizer::spawn(synchronizer::SynchronizerArgs {
                me,
                committee: committee.clone(),
                sender: sender.clone(),
                certificates: stores.certificates.clone(),
                parameters: parameters.clone(),
                metrics: metrics.clone(),
                rx_core: rx_sync,
                tx_core: tx_core.clone(),
                rx_gc_round: rx_gc_round.clone(),
                shutdown: shutdown.clone(),
            }),
        );
        actors.push(
            "payload synchronizer",
            payload::PayloadSynchronizer::spawn(payload::PayloadArgs {
                me,
                committee: &committee,
                payload: stores.payload.clone(),
                sender: sender.clone(),
                metrics: metrics.clone(),
                rx_core: rx_payload,
                tx_core: tx_core.clone(),
                rx_gc_round,
                shutdown: shutdown.clone(),
            }),
        );
        actors.push(
            "runner",
            runner::Runner::spawn(runner::RunnerArgs {
                core,
                committee: &committee,
                stores,
                sender,
                gc_depth: parameters.gc_depth,
                certificate_retention: parameters.certificate_retention_rounds,
                metrics,
                rx_core,
                rx_committed,
                tx_consensus,
                tx_synchronizer: tx_sync,
                tx_payload,
                tx_gc_round,
                shutdown: shutdown.clone(),
            }),
        );
        Ok(PrimaryHandle {
            server,
            actors,
            shutdown,
        })
    }
}
