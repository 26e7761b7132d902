//! Forced inclusion: watches the inbox's `ForceIncluded` events and hands each forced
//! transaction, with its L1 block, to the node (which feeds it to its workers), and tracks how
//! many L1 blocks each one waits until the node reports it in the ordered stream.

use crate::inbox::ForceIncluded;
use crate::l1::{L1Error, L1};
use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use bytes::Bytes;
use parking_lot::Mutex;
use prometheus::{IntCounter, IntGauge, Registry};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A transaction someone forced through the inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForcedTx {
    /// The inbox's running forced-tx index: 0, 1, 2, …
    pub index: u64,
    pub l1_block: u64,
    pub sender: Address,
    pub transaction: Bytes,
}

#[derive(Clone, Debug)]
pub struct ForcedConfig {
    pub rpc: String,
    pub inbox: Address,
    /// The first L1 block to read, and the forced index expected first there (from the node's
    /// store after a restart; 0 and 0 on a fresh chain).
    pub from_block: u64,
    pub next_index: u64,
    /// Events are handed over once this many blocks deep, so a reorg rarely takes one back.
    pub confirmations: u64,
    /// The inclusion bound W, in L1 blocks, that the metrics measure against.
    pub window_blocks: u64,
    pub poll_interval: Duration,
}

/// Forced transactions handed over and not yet reported in the ordered stream.
/// Pure: the caller supplies L1 block numbers.
#[derive(Debug, Default)]
pub struct InclusionTracker {
    pending: BTreeMap<u64, u64>,
    max_inclusion_blocks: u64,
}

impl InclusionTracker {
    pub fn handed_over(&mut self, index: u64, l1_block: u64) {
        self.pending.insert(index, l1_block);
    }

    /// Forced tx `index` is in the ordered stream as of L1 block `at`; returns its delay.
    pub fn included(&mut self, index: u64, at: u64) -> Option<u64> {
        let since = self.pending.remove(&index)?;
        let delay = at.saturating_sub(since);
        self.max_inclusion_blocks = self.max_inclusion_blocks.max(delay);
        Some(delay)
    }

    /// The age in blocks of the oldest forced tx still waiting, at L1 block `head`.
    pub fn oldest_pending_age(&self, head: u64) -> u64 {
        self.pending
            .values()
            .map(|b| head.saturating_sub(*b))
            .max()
            .unwrap_or(0)
    }

    /// How many wait longer than `window` blocks at `head`: a bound violation each.
    pub fn overdue(&self, head: u64, window: u64) -> usize {
        self.pending
            .values()
            .filter(|b| head.saturating_sub(**b) > window)
            .count()
    }

    pub fn max_inclusion_blocks(&self) -> u64 {
        self.max_inclusion_blocks
    }
}

#[derive(Clone)]
pub struct ForcedMetrics {
    pub seen: IntCounter,
    pub pending: IntGauge,
    /// The bound as observed: the oldest pending forced tx's age in L1 blocks.
    pub oldest_pending_age_blocks: IntGauge,
    /// Forced txs pending longer than W.
    pub overdue: IntGauge,
    /// The longest inclusion delay seen, in L1 blocks.
    pub max_inclusion_blocks: IntGauge,
    pub errors: IntCounter,
}

impl ForcedMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        Ok(Self {
            seen: counter(
                "weft_l1_forced_seen_total",
                "forced transactions read from the inbox",
            )?,
            pending: gauge(
                "weft_l1_forced_pending",
                "forced transactions not yet ordered",
            )?,
            oldest_pending_age_blocks: gauge(
                "weft_l1_forced_oldest_pending_age_blocks",
                "age in L1 blocks of the oldest forced transaction not yet ordered",
            )?,
            overdue: gauge(
                "weft_l1_forced_overdue",
                "forced transactions pending longer than W",
            )?,
            max_inclusion_blocks: gauge(
                "weft_l1_forced_max_inclusion_blocks",
                "longest observed L1 blocks from forceInclude to the ordered stream",
            )?,
            errors: counter(
                "weft_l1_forced_errors_total",
                "forced-inclusion watcher errors",
            )?,
        })
    }

    /// Metrics registered in a private registry (tests, tools).
    pub fn unregistered() -> Self {
        match Self::new(&Registry::new()) {
            Ok(m) => m,
            // A fresh registry cannot hold a clashing name.
            Err(e) => unreachable!("fresh registry: {e}"),
        }
    }
}

pub struct ForcedWatcherHandle {
    tx_shutdown: watch::Sender<bool>,
    join: JoinHandle<()>,
    tracker: Arc<Mutex<InclusionTracker>>,
    metrics: ForcedMetrics,
    window_blocks: u64,
}

impl ForcedWatcherHandle {
    /// The node calls this when forced tx `index` shows in its ordered stream, with the L1
    /// head block at that time. Returns the delay in blocks.
    pub fn mark_included(&self, index: u64, l1_block: u64) -> Option<u64> {
        let mut t = self.tracker.lock();
        let delay = t.included(index, l1_block);
        publish(&t, &self.metrics, l1_block, self.window_blocks);
        delay
    }

    pub async fn shutdown(self) {
        let _ = self.tx_shutdown.send(true);
        let _ = self.join.await;
    }
}

fn publish(t: &InclusionTracker, m: &ForcedMetrics, head: u64, window: u64) {
    m.pending.set(t.pending.len() as i64);
    m.oldest_pending_age_blocks
        .set(t.oldest_pending_age(head) as i64);
    m.overdue.set(t.overdue(head, window) as i64);
    m.max_inclusion_blocks.set(t.max_inclusion_blocks() as i64);
}

/// The forced transactions of the inbox's `ForceIncluded` events in blocks `from..=to`, in
/// chain order. A malformed event is an error (the inbox emits none; an RPC that serves one
/// is not to be trusted with the rest either).
pub async fn forced_events(l1: &L1, from: u64, to: u64) -> Result<Vec<ForcedTx>, L1Error> {
    let filter = Filter::new()
        .address(l1.inbox)
        .event_signature(ForceIncluded::SIGNATURE_HASH)
        .from_block(from)
        .to_block(to);
    let logs = l1.provider.get_logs(&filter).await.map_err(L1Error::from)?;
    logs.into_iter()
        .map(|log| {
            let l1_block = log
                .block_number
                .ok_or_else(|| L1Error::Rpc("a log without a block number".into()))?;
            let ev = ForceIncluded::decode_log(&log.inner)
                .map_err(|e| L1Error::Rpc(format!("malformed ForceIncluded event: {e}")))?;
            Ok(ForcedTx {
                index: ev.index,
                l1_block,
                sender: ev.sender,
                transaction: ev.data.transaction.0.clone(),
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error(transparent)]
    L1(#[from] L1Error),
    #[error("forced index {got} where {expected} was expected")]
    Gap { expected: u64, got: u64 },
    #[error("the receiver of forced transactions is gone")]
    Closed,
}

pub struct ForcedWatcher {
    config: ForcedConfig,
    l1: L1,
    /// Forced transactions, in index order, to the node.
    tx_node: mpsc::Sender<ForcedTx>,
    tracker: Arc<Mutex<InclusionTracker>>,
    metrics: ForcedMetrics,
    next_block: u64,
    next_index: u64,
}

impl ForcedWatcher {
    pub fn spawn(
        config: ForcedConfig,
        tx_node: mpsc::Sender<ForcedTx>,
        metrics: ForcedMetrics,
    ) -> Result<ForcedWatcherHandle, L1Error> {
        let l1 = L1::new(&config.rpc, config.inbox)?;
        let tracker = Arc::new(Mutex::new(InclusionTracker::default()));
        let (tx_shutdown, rx_shutdown) = watch::channel(false);
        let window_blocks = config.window_blocks;
        let watcher = ForcedWatcher {
            next_block: config.from_block,
            next_index: config.next_index,
            config,
            l1,
            tx_node,
            tracker: tracker.clone(),
            metrics: metrics.clone(),
        };
        let join = tokio::spawn(watcher.run(rx_shutdown));
        Ok(ForcedWatcherHandle {
            tx_shutdown,
            join,
            tracker,
            metrics,
            window_blocks,
        })
    }

    async fn run(mut self, mut rx_shutdown: watch::Receiver<bool>) {
        let mut first = true;
        loop {
            let pause = if first {
                Duration::ZERO
            } else {
                self.config.poll_interval
            };
            first = false;
            tokio::select! {
                _ = rx_shutdown.changed() => break,
                result = async {
                    tokio::time::sleep(pause).await;
                    self.poll().await
                } => match result {
                    Ok(()) => {}
                    Err(WatchError::Closed) => break,
                    Err(e) => {
                        self.metrics.errors.inc();
                        tracing::warn!("forced-inclusion watcher: {e}");
                    }
                }
            }
        }
    }

    async fn poll(&mut self) -> Result<(), WatchError> {
        let head = self.l1.head_block().await?;
        let to = head.saturating_sub(self.config.confirmations);
        if to >= self.next_block {
            for forced in forced_events(&self.l1, self.next_block, to).await? {
                if forced.index < self.next_index {
                    continue;
                }
                if forced.index > self.next_index {
                    return Err(WatchError::Gap {
                        expected: self.next_index,
                        got: forced.index,
                    });
                }
                self.tracker
                    .lock()
                    .handed_over(forced.index, forced.l1_block);
                self.tx_node
                    .send(forced)
                    .await
                    .map_err(|_| WatchError::Closed)?;
                self.metrics.seen.inc();
                self.next_index += 1;
            }
            self.next_block = to + 1;
        }
        publish(
            &self.tracker.lock(),
            &self.metrics,
            head,
            self.config.window_blocks,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_measures_delays_and_overdue_transactions() {
        let mut t = InclusionTracker::default();
        t.handed_over(0, 10);
        t.handed_over(1, 12);
        assert_eq!(t.oldest_pending_age(15), 5);
        assert_eq!(t.overdue(15, 4), 1);
        assert_eq!(t.included(0, 16), Some(6));
        assert_eq!(t.included(0, 16), None);
        assert_eq!(t.oldest_pending_age(16), 4);
        assert_eq!(t.max_inclusion_blocks(), 6);
        assert_eq!(t.overdue(16, 4), 0);
    }
}
