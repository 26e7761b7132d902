//! The node's link to L1: the committee's certified L1 batches as the poster's source, and
//! the poster and forced-inclusion feeder each authority runs when given an L1 endpoint
//! ([`L1Config`], started by [`crate::Node::spawn`]).

use crate::attest::Certificates;
use bytes::Bytes;
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use weft_l1_poster::{AttestedBatch, AttestedSource, ClosedBatch, SourceError};
use weft_storage::{Map, Store, StoreError};

/// Keys read per step when looking for a batch's naming sub-DAG.
const KEYS_PER_SCAN: usize = 256;

/// The L1 batches the attester cut and stored ([`crate::columns::L1_BATCHES`], keyed by naming
/// sub-DAG and sequence), each with the finality certificate of the sub-DAG that names it.
pub struct CommitteeBatches {
    batches: Map<(u64, u64), Bytes>,
    certificates: Certificates,
    /// The naming sub-DAG of the last batch found: the next one is named there or later.
    hint: Mutex<u64>,
}

fn storage(e: StoreError) -> SourceError {
    SourceError::Storage(e.to_string())
}

impl CommitteeBatches {
    pub fn new(store: &Store, certificates: Certificates) -> Self {
        Self {
            batches: store.map(crate::columns::L1_BATCHES),
            certificates,
            hint: Mutex::new(0),
        }
    }

    /// The key of batch `sequence`: sequences grow with their naming sub-DAG, so the scan
    /// starts at the hint, and from the first retained key if the batch is before it.
    fn key_of(&self, sequence: u64) -> Result<Option<(u64, u64)>, StoreError> {
        let hint = *self.hint.lock();
        for start in [hint, 0] {
            let mut from = (start, 0);
            loop {
                let keys = self
                    .batches
                    .keys(&from, &(u64::MAX, u64::MAX), KEYS_PER_SCAN)?;
                match keys.iter().find(|(_, s)| *s >= sequence) {
                    Some(&(k, s)) if s == sequence => return Ok(Some((k, s))),
                    // Passed it: before the hint (try from the start), or not retained.
                    Some(_) => break,
                    None if keys.len() < KEYS_PER_SCAN => break,
                    None => from = keys[keys.len() - 1],
                }
                from.1 = from.1.saturating_add(1);
            }
            if start == 0 {
                break;
            }
        }
        Ok(None)
    }
}

impl AttestedSource for CommitteeBatches {
    fn batch(&self, sequence: u64) -> Result<Option<AttestedBatch>, SourceError> {
        let Some(key) = self.key_of(sequence).map_err(storage)? else {
            return Ok(None);
        };
        let Some(record) = self.batches.get(&key).map_err(storage)? else {
            return Ok(None);
        };
        let batch = ClosedBatch::from_record(&record)
            .map_err(|e| SourceError::Storage(format!("L1 batch {sequence}: {e}")))?;
        let Some(certificate) = self.certificates.get(key.0).map_err(storage)? else {
            return Ok(None);
        };
        *self.hint.lock() = key.0;
        Ok(Some(AttestedBatch { batch, certificate }))
    }

    /// Resolves at the next certificate formed here (or after a while): a batch becomes
    /// available when the certificate of its naming sub-DAG is stored.
    fn wait_for(&self, _sequence: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut formed = self.certificates.subscribe();
        Box::pin(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), formed.recv()).await;
        })
    }
}

/// This authority's L1 roles: the poster (a rotating courier of the committee's certified
/// batches, which the inbox checks) and the feeder of the inbox's forced transactions.
pub struct L1Config {
    /// JSON-RPC endpoint of the L1 node (it often carries credentials: logged redacted).
    pub rpc: String,
    pub inbox: alloy::primitives::Address,
    /// The poster's secp256k1 key.
    pub key: alloy::signers::local::PrivateKeySigner,
    /// The poster's crash-safe cursor file.
    pub cursor: std::path::PathBuf,
    /// L1 blocks the designated poster of a batch has before the next authority posts it.
    pub takeover_blocks: u64,
    /// L1 blocks within which a forced transaction must be ordered (the inbox's window).
    pub forced_window: u64,
    /// Leave the inbox's forced transactions unfed (to test what others must not ignore).
    pub ignore_forced: bool,
}

/// The running L1 roles of a node.
pub struct L1Handle {
    poster: weft_l1_poster::PosterHandle,
    forced: Option<forced::ForcedInclusion>,
}

impl L1Handle {
    /// Starts the poster (the node's committed log is then kept until L1 confirms it) and,
    /// unless ignored, the forced-inclusion feeder through the in-process worker 0.
    pub(crate) async fn start(
        node: &crate::NodeHandle,
        config: L1Config,
        parameters: &weft_config::Parameters,
        committee_size: usize,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        use weft_l1_poster::{rotation::Rotation, Poster, PosterConfig};
        // The poster carries the batches the attester cut and the committee certified.
        anyhow::ensure!(
            parameters.attestations,
            "posting to L1 needs the parameter `attestations` on: the inbox accepts only \
             certified batches"
        );
        let mut poster_config = PosterConfig::new(&config.rpc, config.inbox, config.cursor);
        poster_config.mode = crate::attest::cutter_params(&parameters.l1_batches).mode;
        poster_config.rotation = Rotation {
            me: node.authority.0 as u32,
            committee_size: committee_size as u32,
            takeover_blocks: config.takeover_blocks,
        };
        let metrics = weft_l1_poster::metrics::PosterMetrics::new(&node.registry)?;
        let source = std::sync::Arc::new(CommitteeBatches::new(
            &node.store,
            node.certificates.clone(),
        ));
        let poster = Poster::spawn(poster_config, config.key, source, metrics).await?;
        retain_until_posted(node, &poster);
        let rpc = weft_l1_poster::l1::redact_url(&config.rpc);
        tracing::info!(inbox = %config.inbox, rpc, "L1 poster started");
        if config.ignore_forced {
            tracing::warn!("ignoring the inbox's forced transactions");
            return Ok(Self {
                poster,
                forced: None,
            });
        }
        let submitter = node
            .submitters()
            .into_iter()
            .next()
            .context("forced inclusion needs this authority's worker 0 in process")?;
        let forced = forced::spawn(forced::ForcedArgs {
            rpc: &config.rpc,
            inbox: config.inbox,
            window_blocks: config.forced_window,
            me: node.authority.0 as u64,
            committee_size: committee_size as u64,
            submitter,
            max_transaction_size: parameters.max_transaction_size,
            store: &node.store,
            log: node.log.clone(),
            registry: &node.registry,
        })
        .await;
        match forced {
            Ok(forced) => Ok(Self {
                poster,
                forced: Some(forced),
            }),
            Err(e) => {
                poster.shutdown().await;
                Err(e)
            }
        }
    }

    /// Stops feeding forced transactions, then the poster.
    pub async fn shutdown(self) {
        if let Some(forced) = self.forced {
            forced.shutdown().await;
        }
        self.poster.shutdown().await;
    }
}

/// Lets the committed log's retention follow what `poster` confirmed on L1: until it stops,
/// the node keeps every sub-DAG not yet confirmed (and `committed_log_retention_after_posting`
/// more).
fn retain_until_posted(
    node: &crate::NodeHandle,
    poster: &weft_l1_poster::PosterHandle,
) -> tokio::task::JoinHandle<()> {
    let posted = node.tx_posted.clone();
    let mut status = poster.rx_status.clone();
    tokio::spawn(async move {
        loop {
            let next = status.borrow_and_update().confirmed.next_position.sub_dag;
            posted.send_replace(Some(next));
            if status.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Forced inclusion: transactions anyone submitted to the inbox with `forceInclude` enter
/// the ordered stream through one authority's worker, like a client's.
///
/// Forced transaction `i` is fed by authority `i mod n`, so it is ordered once; should that
/// authority not have it ordered within half the window, every authority feeds it (a duplicate
/// is then possible, and rollups drop forced transactions they already saw by their forced
/// index). The watcher's metrics report the delay in L1 blocks against the window `W`.
pub mod forced {
    use crate::log::CommittedLog;
    use alloy::primitives::Address;
    use anyhow::Context;
    use bytes::Bytes;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;
    use weft_l1_poster::forced::{
        ForcedConfig, ForcedMetrics, ForcedTx, ForcedWatcher, ForcedWatcherHandle,
    };
    use weft_l1_poster::l1::L1;
    use weft_storage::{Durability, Map, Store};
    use weft_worker::{SubmitError, TxSubmitter};

    /// Key, in the store's records, of the next forced index this node has not fed yet.
    const NEXT_KEY: &str = "l1_forced_next";
    const FROM_BLOCK_KEY: &str = "l1_forced_from_block";

    pub struct ForcedInclusion {
        watcher: Arc<ForcedWatcherHandle>,
        task: JoinHandle<()>,
    }

    impl ForcedInclusion {
        pub async fn shutdown(self) {
            self.task.abort();
            let _ = self.task.await;
            if let Ok(watcher) = Arc::try_unwrap(self.watcher) {
                watcher.shutdown().await;
            }
        }
    }

    /// What [`spawn`] needs.
    pub struct ForcedArgs<'a> {
        pub rpc: &'a str,
        pub inbox: Address,
        pub window_blocks: u64,
        pub me: u64,
        pub committee_size: u64,
        /// This authority's worker 0, in process: forced transactions never go through the
        /// public client port, which strangers may fill.
        pub submitter: TxSubmitter,
        /// The workers' `max_transaction_size`: every transaction the inbox accepts must fit.
        pub max_transaction_size: usize,
        pub store: &'a Store,
        pub log: CommittedLog,
        pub registry: &'a prometheus::Registry,
    }

    /// Starts the watcher and the feeder; fails if the inbox accepts forced transactions the
    /// workers would refuse (they could never be ordered).
    pub async fn spawn(args: ForcedArgs<'_>) -> anyhow::Result<ForcedInclusion> {
        let l1 = L1::new(args.rpc, args.inbox)?;
        let max_forced = l1
            .inbox_max_forced_tx_bytes()
            .await
            .context("reading the inbox's MAX_FORCED_TX_BYTES")?;
        anyhow::ensure!(
            max_forced <= args.max_transaction_size,
            "max_transaction_size ({}) is below the inbox's MAX_FORCED_TX_BYTES ({max_forced}): \
             forced transactions between the two could never be ordered",
            args.max_transaction_size
        );
        let progress: Map<String, u64> = args.store.map(weft_storage::RECORDS);
        let next_index = progress.get(&NEXT_KEY.to_string())?.unwrap_or(0);
        let from_block = progress.get(&FROM_BLOCK_KEY.to_string())?.unwrap_or(0);
        let (tx_node, rx_watcher) = mpsc::channel(1_000);
        let watcher = ForcedWatcher::spawn(
            ForcedConfig {
                rpc: args.rpc.to_string(),
                inbox: args.inbox,
                from_block,
                next_index,
                confirmations: 0,
                window_blocks: args.window_blocks,
                poll_interval: Duration::from_millis(200),
            },
            tx_node,
            ForcedMetrics::new(args.registry)?,
        )?;
        let feeder = Feeder {
            l1,
            me: args.me,
            committee_size: args.committee_size,
            window_blocks: args.window_blocks,
            submitter: args.submitter,
            progress,
            log: args.log,
        };
        let watcher = Arc::new(watcher);
        let task = tokio::spawn(feeder.run(rx_watcher, watcher.clone()));
        Ok(ForcedInclusion { watcher, task })
    }

    struct Feeder {
        l1: L1,
        me: u64,
        committee_size: u64,
        window_blocks: u64,
        submitter: TxSubmitter,
        progress: Map<String, u64>,
        log: CommittedLog,
    }

    /// A forced transaction not yet seen in the ordered stream.
    struct Pending {
        index: u64,
        l1_block: u64,
        /// Whether the worker took it (it may be due and not yet fed, when the worker was
        /// full: then it is tried again on every tick).
        fed: bool,
        due: bool,
    }

    impl Feeder {
        async fn run(
            self,
            mut rx_watcher: mpsc::Receiver<ForcedTx>,
            tracker: Arc<ForcedWatcherHandle>,
        ) {
            let mut pending: HashMap<Bytes, Pending> = HashMap::new();
            let mut next_entry = self.log.next_index();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    forced = rx_watcher.recv() => {
                        let Some(forced) = forced else { return };
                        let mine = forced.index % self.committee_size.max(1) == self.me;
                        let fed = mine && self.feed(&forced.transaction);
                        let _ = self.progress.insert(&NEXT_KEY.to_string(), &(forced.index + 1), Durability::Sync);
                        let _ = self.progress.insert(&FROM_BLOCK_KEY.to_string(), &forced.l1_block, Durability::Sync);
                        pending.insert(forced.transaction, Pending { index: forced.index, l1_block: forced.l1_block, fed, due: mine });
                    }
                    _ = tick.tick() => {}
                }
                let Ok(head) = self.l1.head_block().await else {
                    continue;
                };
                // Mark what the ordered stream now holds.
                while next_entry < self.log.next_index() {
                    for entry in self.log.read(next_entry, 16).unwrap_or_default() {
                        next_entry = entry.index + 1;
                        for tx in entry.transactions().unwrap_or_default() {
                            if let Some(p) = pending.remove(&tx) {
                                tracker.mark_included(p.index, head);
                            }
                        }
                    }
                }
                // Past half the window, every authority feeds what is still missing.
                for (tx, p) in pending.iter_mut() {
                    p.due |= head >= p.l1_block + self.window_blocks / 2;
                    if p.due && !p.fed {
                        p.fed = self.feed(tx);
                    }
                }
            }
        }

        /// Hands one transaction to this authority's worker; false if the worker had no room
        /// (then it is tried again). The inbox refuses what the worker would (empty, or above
        /// the size checked at start), so a refusal here is a bug and is logged loudly.
        fn feed(&self, transaction: &Bytes) -> bool {
            match self.submitter.try_submit(transaction.clone()) {
                // The acknowledgement is not awaited: the ordered stream is what counts.
                Ok(_) => true,
                Err(SubmitError::Full) => false,
                Err(e) => {
                    tracing::error!("the worker refused a forced transaction: {e}");
                    true
                }
            }
        }
    }
}
