//! One authority in one process: its primary, (optionally) its workers, consensus and the
//! executor that writes the committed log, all sharing one store and one metrics registry.

use crate::attest::{AttestMetrics, AttesterActor, AttesterArgs, Certificates};
use crate::executor::{self, Executor, ExecutorArgs};
use crate::l1::{L1Config, L1Handle};
use crate::leaves::{self, LeafCache, LeafPrecomputer, RecentTrees};
use crate::log::CommittedLog;
use crate::metrics::NodeMetrics;
use anyhow::{Context, Result};
use prometheus::Registry;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use weft_config::{Keys, Parameters};
use weft_consensus::actor::{ConsensusActor, ConsensusArgs};
use weft_consensus::{Bullshark, ConsensusState};
use weft_network::actors::Actors;
use weft_network::{NetworkConfig, NetworkMetrics, ReliableSender};
use weft_primary::{Primary, PrimaryArgs, PrimaryHandle, PrimaryMetrics, PrimaryStores};
use weft_storage::Store;
use weft_types::{AuthorityIndex, Certificate, Committee};
use weft_worker::{TxSubmitter, Worker, WorkerArgs, WorkerHandle};

/// Certificates on their way from the primary to consensus.
pub const CONSENSUS_CHANNEL_CAPACITY: usize = 10_000;

pub struct NodeArgs {
    pub keys: Keys,
    pub committee: Arc<Committee>,
    pub parameters: Parameters,
    pub store: Store,
    /// Run this authority's workers in this process (else they run as `weft worker run`).
    pub with_workers: bool,
    /// Post to an L1 inbox and feed its forced transactions (needs the workers in process).
    pub l1: Option<L1Config>,
}

/// A running authority.
pub struct NodeHandle {
    pub authority: AuthorityIndex,
    pub log: CommittedLog,
    /// The finality certificates of committed sub-DAGs.
    pub certificates: Certificates,
    /// The trees of the sub-DAGs signed last, for pre-confirmations.
    pub trees: RecentTrees,
    pub registry: Registry,
    pub metrics: Arc<PrimaryMetrics>,
    pub node_metrics: Arc<NodeMetrics>,
    pub store: Store,
    primary: PrimaryHandle,
    workers: Vec<WorkerHandle>,
    actors: Actors,
    /// Cancelled by [`NodeHandle::shutdown`]: consensus, the executor and the attester end.
    shutdown: CancellationToken,
    l1: Option<L1Handle>,
    /// The first sub-DAG not yet confirmed on L1, set by this authority's poster: the
    /// committed log's retention follows it (`committed_log_retention_after_posting`).
    pub tx_posted: Arc<watch::Sender<Option<u64>>>,
}

impl NodeHandle {
    /// One acknowledged-submission handle per in-process worker (none with external workers).
    pub fn submitters(&self) -> Vec<TxSubmitter> {
        self.workers.iter().map(WorkerHandle::submitter).collect()
    }

    /// Stops every actor, then fsyncs the store.
    pub async fn shutdown(self) -> Result<()> {
        let store = self.store.clone();
        self.stop().await;
        store.sync().context("flushing the store")
    }

    /// Stops every actor at whatever point it is, without flushing: what survives is what a
    /// `kill -9` would leave (every write is in RocksDB's WAL before it returns).
    pub async fn kill(self) {
        if let Some(l1) = self.l1 {
            l1.shutdown().await;
        }
        for w in self.workers {
            w.shutdown().await;
        }
        self.primary.kill().await;
        self.actors.abort_and_join().await;
    }

    /// Tells every actor to stop, upstream first (L1, workers, primary, then consensus, the
    /// executor and the attester), and waits until each has.
    async fn stop(self) {
        if let Some(l1) = self.l1 {
            l1.shutdown().await;
        }
        for w in self.workers {
            w.shutdown().await;
        }
        self.primary.shutdown().await;
        self.shutdown.cancel();
        self.actors.join().await;
    }

    /// Resolves when any actor of the authority (consensus, executor, the primary's, a
    /// worker's) has stopped before shutdown, which only a fatal error makes one do: names
    /// it. The caller then shuts the rest down and exits with an error.
    pub async fn stopped(&mut self) -> String {
        let workers = async {
            if self.workers.is_empty() {
                return std::future::pending().await;
            }
            let stopped = self.workers.iter_mut().map(|w| Box::pin(w.stopped()));
            futures::future::select_all(stopped).await.0
        };
        tokio::select! {
            cause = self.actors.first_stopped() => cause,
            cause = self.primary.stopped() => cause,
            cause = workers => cause,
        }
    }
}

pub struct Node;

impl Node {
    /// Recovers the authority's state from its store and starts it.
    pub async fn spawn(args: NodeArgs) -> Result<NodeHandle> {
        let NodeArgs {
            keys,
            committee,
            parameters,
            store,
            with_workers,
            l1,
        } = args;
        parameters.validate()?;
        let l1_parameters = parameters.clone();
        let me = committee
            .index_of_protocol_key(&keys.protocol.public())
            .context("the protocol key is not in the committee")?;
        let registry = Registry::new();
        let network_metrics = Arc::new(NetworkMetrics::new(&registry)?);
        let primary_metrics = Arc::new(PrimaryMetrics::new(&registry)?);
        let node_metrics = Arc::new(NodeMetrics::new(&registry)?);

        // Consensus first: it decides the leader schedule the proposer waits on.
        let schedule = parameters.leader_schedule.build(&committee)?;
        let state = match executor::load_state(&store)? {
            Some(state) => state,
            None => ConsensusState::genesis(&committee, schedule.as_ref()),
        };
        let gc_round = state
            .last_committed_leader_round
            .saturating_sub(parameters.gc_depth);
        let stores = PrimaryStores::new(&store);
        let certificates = stores.certificates_above(gc_round)?;
        let (bullshark, recovered) = Bullshark::recover(
            (*committee).clone(),
            parameters.gc_depth,
            schedule,
            state,
            certificates,
        )?;
        let schedule = bullshark.state().schedule;
        let leader = parameters
            .leader_schedule
            .leaders(&committee, &schedule)
            .context("restoring the leader schedule")?;
        let log = CommittedLog::open(&store)?;
        tracing::info!(
            authority = %me,
            next_sub_dag = log.next_index(),
            last_committed_leader_round = bullshark.last_committed_leader_round(),
            "consensus recovered"
        );

        let (tx_consensus, rx_consensus) = mpsc::channel::<Certificate>(CONSENSUS_CHANNEL_CAPACITY);
        let (tx_posted, _) = watch::channel(None);
        let (tx_executor, rx_executor) = mpsc::channel(executor::EXECUTOR_CHANNEL_CAPACITY);
        let (tx_committed, rx_committed) = mpsc::channel(executor::EXECUTOR_CHANNEL_CAPACITY);
        let sender = ReliableSender::new(
            &keys.network,
            NetworkConfig {
                max_message_size: parameters.max_message_size,
                ..NetworkConfig::default()
            },
            network_metrics.clone(),
        )?;
        let shutdown = CancellationToken::new();
        let mut actors = Actors::default();
        // The attester recovers first: the log's retention waits for what it has not signed.
        let certificates = Certificates::open(&store);
        let mut attestations = None;
        let mut rx_attested = None;
        let mut tx_payloads = None;
        let trees = RecentTrees::default();
        if parameters.attestations {
            let leaves = LeafCache::new(leaves::MAX_CACHED_LEAVES);
            let (tx, rx) = mpsc::channel(leaves::PRECOMPUTE_CHANNEL_CAPACITY);
            tx_payloads = Some(tx);
            actors.push(
                "leaf precomputer",
                LeafPrecomputer::spawn(
                    store.map(weft_worker::columns::BATCHES),
                    leaves.clone(),
                    rx,
                ),
            );
            let (tx_attested, rx) = watch::channel(0);
            let (attester, handler) = AttesterActor::spawn(AttesterArgs {
                me,
                committee: committee.clone(),
                key: keys.attestation,
                store: store.clone(),
                log: log.clone(),
                certificates: certificates.clone(),
                sender: sender.clone(),
                max_message_size: parameters.max_message_size,
                cutter: crate::attest::cutter_params(&parameters.l1_batches),
                leaves,
                trees: trees.clone(),
                tx_attested,
                metrics: Arc::new(AttestMetrics::new(&registry)?),
                shutdown: shutdown.clone(),
            })?;
            actors.push("attester", attester);
            attestations = Some(handler as Arc<dyn weft_network::Handler>);
            rx_attested = Some(rx);
        }
        actors.push(
            "executor",
            Executor::spawn(ExecutorArgs {
                store: store.clone(),
                log: log.clone(),
                committee: (*committee).clone(),
                me,
                parameters: parameters.clone(),
                external_workers: !with_workers,
                sender,
                schedule,
                rx_consensus: rx_executor,
                tx_primary: tx_committed,
                rx_posted: tx_posted.subscribe(),
                rx_attested,
                metrics: node_metrics.clone(),
                shutdown: shutdown.clone(),
            }),
        );
        actors.push(
            "consensus",
            ConsensusActor::spawn(ConsensusArgs {
                bullshark,
                recovered,
                rx_primary: rx_consensus,
                tx_executor,
                tx_payloads,
                shutdown: shutdown.clone(),
            }),
        );

        let mut workers = Vec::new();
        if with_workers {
            for id in 0..committee.num_workers() {
                let w = Worker::spawn(WorkerArgs {
                    authority: me,
                    id,
                    committee: committee.clone(),
                    parameters: parameters.clone(),
                    network_keypair: keys.network.copy(),
                    store: store.clone(),
                    registry: &registry,
                    network_metrics: Some(network_metrics.clone()),
                })
                .await
                .with_context(|| format!("starting worker {id}"))?;
                workers.push(w);
            }
        }
        let primary = Primary::spawn(PrimaryArgs {
            authority: me,
            committee: committee.clone(),
            parameters,
            protocol_keypair: keys.protocol,
            network_keypair: keys.network,
            store: store.clone(),
            leader,
            metrics: primary_metrics.clone(),
            network_metrics,
            tx_consensus,
            rx_committed,
            attestations,
        })
        .await?;
        let mut node = NodeHandle {
            authority: me,
            log,
            certificates,
            trees,
            registry,
            metrics: primary_metrics,
            node_metrics,
            store,
            primary,
            workers,
            actors,
            shutdown,
            l1: None,
            tx_posted: Arc::new(tx_posted),
        };
        if let Some(config) = l1 {
            match L1Handle::start(&node, config, &l1_parameters, committee.size()).await {
                Ok(l1) => node.l1 = Some(l1),
                Err(e) => {
                    node.kill().await;
                    return Err(e.context("starting the L1 poster"));
                }
            }
        }
        Ok(node)
    }
}
