//! The node's link to L1: the committed log as the poster's ordered source, and the poster
//! each authority runs when given an L1 endpoint.

use crate::log::CommittedLog;
use std::future::Future;
use std::pin::Pin;
use weft_l1_poster::{OrderedSource, OrderedSubDag, SourceError};

/// The committed log, read by the L1 poster.
pub struct CommittedLogSource(pub CommittedLog);

impl OrderedSource for CommittedLogSource {
    fn read(&self, from_sub_dag: u64, max: usize) -> Result<Vec<OrderedSubDag>, SourceError> {
        let entries = self
            .0
            .read(from_sub_dag, max)
            .map_err(|e| SourceError::Storage(e.to_string()))?;
        if let Some(first) = entries.first().filter(|e| e.index != from_sub_dag) {
            // The poster fell further behind than the log's retention: posting from here on
            // would leave a gap on L1, so refuse and say why.
            return Err(SourceError::Storage(format!(
                "sub-DAG {from_sub_dag} is no longer retained (the log starts at {}); raise committed_log_retention",
                first.index
            )));
        }
        entries
            .into_iter()
            .map(|e| {
                Ok(OrderedSubDag {
                    index: e.index,
                    transactions: e
                        .transactions()
                        .map_err(|err| SourceError::Storage(err.to_string()))?,
                })
            })
            .collect()
    }

    fn wait_for(&self, index: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.0.wait_for(index))
    }
}
