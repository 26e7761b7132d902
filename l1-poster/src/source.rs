//! The poster's input: the committed sub-DAGs in order, as a small trait the node implements
//! over its committed log, and an in-memory implementation for tests and examples.

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::Notify;

/// The transactions of one committed sub-DAG, in commit order. A transaction's position in the
/// ordered stream is `(index, its offset in transactions)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderedSubDag {
    /// The sub-DAG index: 0, 1, 2, … with no gap.
    pub index: u64,
    /// Consensus timestamp, ms since the UNIX epoch, never decreasing.
    pub timestamp: u64,
    pub transactions: Vec<Bytes>,
}

/// The committed log as the poster reads it.
///
/// Contract: `read(from, max)` returns the sub-DAGs with indices `from, from + 1, …`, at most
/// `max` of them, contiguous, possibly none when `from` is not committed yet. The answer for a
/// given index never changes (agreement). `wait_for(index)` resolves once sub-DAG `index` can
/// be read; it may resolve early (spuriously), callers re-check with `read`.
pub trait OrderedSource: Send + Sync + 'static {
    fn read(&self, from_sub_dag: u64, max: usize) -> Result<Vec<OrderedSubDag>, SourceError>;

    /// Resolves when sub-DAG `index` is (probably) readable. Cancel-safe.
    fn wait_for(
        &self,
        index: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("committed log read failed: {0}")]
    Storage(String),
}

/// An append-only in-memory committed log.
#[derive(Clone, Default)]
pub struct MemorySource {
    inner: Arc<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    sub_dags: Mutex<Vec<OrderedSubDag>>,
    appended: Notify,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the next sub-DAG (its index is the current length) with the previous one's
    /// timestamp, and wakes the waiters.
    pub fn push(&self, transactions: Vec<Bytes>) -> u64 {
        let last = self.inner.sub_dags.lock().last().map_or(0, |s| s.timestamp);
        self.push_at(last, transactions)
    }

    /// Appends the next sub-DAG with consensus timestamp `timestamp` (ms).
    pub fn push_at(&self, timestamp: u64, transactions: Vec<Bytes>) -> u64 {
        let index = {
            let mut sub_dags = self.inner.sub_dags.lock();
            let index = sub_dags.len() as u64;
            sub_dags.push(OrderedSubDag {
                index,
                timestamp,
                transactions,
            });
            index
        };
        self.inner.appended.notify_waiters();
        index
    }

    /// Every sub-DAG appended so far.
    pub fn all(&self) -> Vec<OrderedSubDag> {
        self.inner.sub_dags.lock().clone()
    }

    pub fn len(&self) -> u64 {
        self.inner.sub_dags.lock().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl OrderedSource for MemorySource {
    fn read(&self, from_sub_dag: u64, max: usize) -> Result<Vec<OrderedSubDag>, SourceError> {
        let sub_dags = self.inner.sub_dags.lock();
        let start = usize::try_from(from_sub_dag)
            .unwrap_or(usize::MAX)
            .min(sub_dags.len());
        let end = start.saturating_add(max).min(sub_dags.len());
        Ok(sub_dags[start..end].to_vec())
    }

    fn wait_for(
        &self,
        index: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                // Register before checking, so a push between the check and the await is seen.
                let notified = self.inner.appended.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.len() > index {
                    return;
                }
                notified.await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_is_contiguous_and_wait_wakes_on_push() {
        let source = MemorySource::new();
        assert!(source.read(0, 10).unwrap().is_empty());
        let waiter = {
            let source = source.clone();
            tokio::spawn(async move { source.wait_for(1).await })
        };
        source.push(vec![Bytes::from_static(b"a")]);
        source.push(vec![]);
        waiter.await.unwrap();
        let read = source.read(1, 10).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].index, 1);
        assert_eq!(
            source.read(0, 1).unwrap()[0].transactions[0],
            Bytes::from_static(b"a")
        );
        assert!(source.read(u64::MAX, 1).unwrap().is_empty());
    }
}
