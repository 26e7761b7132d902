//! An authority's Ethereum JSON-RPC ingress (the `weft-rpc` server) wired to its in-process
//! workers; the transaction index that `weft_getTransactionPosition` reads (a task follows
//! the committed log from its first retained entry, so the index rebuilds after a restart,
//! and indexes each committed Ethereum transaction by hash); and the committed log as the
//! ordered stream's source.

use crate::attest::Certificates;
use crate::leaves::RecentTrees;
use crate::log::CommittedLog;
use crate::node::NodeHandle;
use alloy::primitives::B256;
use anyhow::{bail, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use weft_attest::{FinalityCertificate, Preconfirmation, Tree};
use weft_config::Parameters;
use weft_rpc::{
    MemoryIndex, Position, PreconfSource, RpcServer, RpcServerArgs, RpcServerHandle, StreamEntry,
    SubDagSource, TransactionIndex,
};

/// Sub-DAGs read from the log at a time while catching up.
const ENTRIES_PER_READ: usize = 64;

/// The index of the committed log's retained entries; the next sub-DAG index is the log's own
/// (the index may lag it by the entries it has not read yet).
pub struct LogIndex {
    index: MemoryIndex,
    log: CommittedLog,
}

impl TransactionIndex for LogIndex {
    fn position(&self, hash: &alloy::primitives::B256) -> Option<Position> {
        self.index.position(hash)
    }

    fn next_sub_dag_index(&self) -> u64 {
        self.log.next_index()
    }
}

/// The committed log as the ordered stream reads it, with the finality certificates when
/// the node attests.
pub struct LogSource(pub CommittedLog, pub Option<Certificates>);

impl SubDagSource for LogSource {
    fn bounds(&self) -> Result<(u64, u64), String> {
        let next = self.0.next_index();
        let oldest = self.0.first_index().map_err(|e| e.to_string())?;
        Ok((oldest.unwrap_or(next), next))
    }

    fn read(&self, from: u64, max: usize) -> Result<Vec<StreamEntry>, String> {
        let entries = self.0.read(from, max).map_err(|e| e.to_string())?;
        entries
            .into_iter()
            .map(|e| {
                let transactions = e
                    .transactions()
                    .map_err(|d| format!("sub-DAG {} has an undecodable batch: {d}", e.index))?;
                Ok(StreamEntry {
                    index: e.index,
                    leader_round: e.leader_round,
                    timestamp: e.timestamp,
                    transactions,
                })
            })
            .collect()
    }

    fn committed(&self, index: u64) -> futures::future::BoxFuture<'static, ()> {
        let log = self.0.clone();
        Box::pin(async move { log.wait_for(index).await })
    }

    fn certificate(
        &self,
        index: u64,
    ) -> futures::future::BoxFuture<'static, Result<FinalityCertificate, String>> {
        let Some(certificates) = self.1.clone() else {
            return Box::pin(async {
                Err("this node does not attest (attestations: false)".into())
            });
        };
        Box::pin(async move {
            certificates
                .wait_for(index)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Pre-confirmations from the committed log and the finality certificates.
pub struct LogPreconfirmations {
    log: CommittedLog,
    certificates: Certificates,
    trees: RecentTrees,
}

impl LogPreconfirmations {
    /// `trees` holds the attester's: a tree not there is built from the log.
    pub fn new(log: CommittedLog, certificates: Certificates, trees: RecentTrees) -> Self {
        Self {
            log,
            certificates,
            trees,
        }
    }

    /// The Merkle tree over sub-DAG `index`'s transaction hashes, if it is retained.
    fn tree(&self, index: u64) -> Result<Option<Arc<Tree>>, String> {
        if let Some(tree) = self.trees.get(index) {
            return Ok(Some(tree));
        }
        let entries = self.log.read(index, 1).map_err(|e| e.to_string())?;
        let Some(entry) = entries.into_iter().find(|e| e.index == index) else {
            return Ok(None);
        };
        let transactions = entry
            .transactions()
            .map_err(|e| format!("sub-DAG {index} has an undecodable batch: {e}"))?;
        let mut hashes = vec![B256::ZERO; transactions.len()];
        weft_attest::keccak4::keccak256_many(&transactions, &mut hashes);
        let tree = Arc::new(Tree::new(&hashes));
        self.trees.insert(index, tree.clone());
        Ok(Some(tree))
    }
}

impl PreconfSource for LogPreconfirmations {
    fn preconfirmation(
        &self,
        hash: B256,
        position: Position,
    ) -> Result<Option<Preconfirmation>, String> {
        let Some(certificate) = self.certificate(position.sub_dag_index)? else {
            return Ok(None);
        };
        let Some(tree) = self.tree(position.sub_dag_index)? else {
            return Ok(None);
        };
        Ok(Preconfirmation::new(
            &tree,
            hash,
            position.tx_index,
            certificate,
        ))
    }

    fn certificate(&self, index: u64) -> Result<Option<FinalityCertificate>, String> {
        self.certificates.get(index).map_err(|e| e.to_string())
    }

    fn certified(&self) -> tokio::sync::broadcast::Receiver<Arc<FinalityCertificate>> {
        self.certificates.subscribe()
    }
}

/// A running ingress: the server and the task feeding its index.
pub struct RpcIngress {
    server: RpcServerHandle,
    follower: JoinHandle<()>,
}

impl RpcIngress {
    /// Starts the server on `address` with the node's workers. The node must run its workers
    /// in-process (the ingress hands transactions to them directly).
    pub async fn start(
        node: &NodeHandle,
        address: SocketAddr,
        parameters: &Parameters,
    ) -> Result<Self> {
        let submitters = node.submitters();
        if submitters.is_empty() {
            bail!("the rpc ingress needs the workers in this process (no --external-workers)");
        }
        let index = Arc::new(LogIndex {
            index: MemoryIndex::new(parameters.committed_log_retention),
            log: node.log.clone(),
        });
        let follower = tokio::spawn(follow(node.log.clone(), index.clone()));
        let metrics = node.metrics.clone();
        let server = RpcServer::spawn(RpcServerArgs {
            address,
            parameters: parameters.rpc.clone(),
            worker_max_transaction_size: parameters.max_transaction_size,
            submitters,
            index,
            source: Arc::new(LogSource(
                node.log.clone(),
                parameters.attestations.then(|| node.certificates.clone()),
            )),
            preconfirmations: parameters.attestations.then(|| {
                Arc::new(LogPreconfirmations::new(
                    node.log.clone(),
                    node.certificates.clone(),
                    node.trees.clone(),
                )) as Arc<dyn PreconfSource>
            }),
            authority: node.authority.0,
            round: Some(Arc::new(move || metrics.round.get().max(0) as u64)),
            registry: node.registry.clone(),
        })
        .await;
        let server = match server {
            Ok(server) => server,
            Err(e) => {
                follower.abort();
                return Err(e.into());
            }
        };
        Ok(Self { server, follower })
    }

    pub fn local_address(&self) -> SocketAddr {
        self.server.local_address()
    }

    /// Stops the server (waiting for open connections) and the index follower.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        self.follower.abort();
        let _ = self.follower.await;
    }
}

/// Indexes every committed sub-DAG in order, from the first one the log retains, waiting for
/// new ones. Stops on a storage failure (the ingress keeps serving, without new positions).
async fn follow(log: CommittedLog, index: Arc<LogIndex>) {
    let mut from = index.index.next_expected();
    loop {
        let (reader, indexer) = (log.clone(), index.clone());
        // Reading, decoding and hashing a sub-DAG's transactions is CPU: off the runtime.
        let step =
            tokio::task::spawn_blocking(move || index_from(&reader, &indexer.index, from)).await;
        match step {
            Ok(Ok(Some(next))) => from = next,
            Ok(Ok(None)) => log.wait_for(from).await,
            Ok(Err(e)) => {
                tracing::error!("the rpc index stops following the committed log: {e}");
                return;
            }
            // The runtime is shutting down.
            Err(_) => return,
        }
    }
}

/// Indexes the retained sub-DAGs from `from` on (one read's worth); the next to index, or
/// `None` when there was none yet.
fn index_from(
    log: &CommittedLog,
    index: &MemoryIndex,
    from: u64,
) -> weft_storage::StoreResult<Option<u64>> {
    let mut next = None;
    for entry in log.read(from, ENTRIES_PER_READ)? {
        match entry.transactions() {
            Ok(transactions) => index.record(entry.index, &transactions),
            Err(e) => tracing::error!(
                index = entry.index,
                "committed sub-DAG has an undecodable batch, not indexed: {e}"
            ),
        }
        next = Some(entry.index + 1);
    }
    Ok(next)
}
