//! The ordered stream for rollup nodes: `weft_subscribeSubDags` over WebSocket, on the same
//! port as the ingress.
//!
//! A subscription from sub-DAG index K (default: the next one to be committed), optionally
//! for one chain id (the parameter, or the endpoint's `/<chain_id>` namespace), receives every
//! committed sub-DAG from K on, in order, each as one or more `weft_subDag` notifications
//! ([`SubDagPart`]): its index, leader round, consensus timestamp and transactions, cut into
//! parts of at most [`PART_BYTES`] so that no message outgrows a client's frame limit. A
//! sub-DAG is complete with the part whose `last` is true; a consumer that reconnects
//! resubscribes from the index after its last complete sub-DAG and sees no gap and no
//! duplicate. A sub-DAG without a transaction of the filtered chain is still sent (with no
//! transactions), so a rollup sees every index and every timestamp.
//!
//! With `"certified": true`, each sub-DAG is sent once its finality certificate is there, and
//! its last part carries it (`certificate`): a rollup node then checks what it executes
//! against the committee (`FinalityCertificate::verify`, the attested root over the
//! transactions) instead of trusting the authority it reads from.
//!
//! Each subscription reads the log at its own pace, one sub-DAG at a time, and sends only as
//! fast as its client reads (the connection's message buffer is bounded), so a slow consumer
//! costs the node one sub-DAG and a few buffered parts, never an unbounded queue. A
//! subscription from below the log's retention is refused with an error naming the oldest
//! index kept; one that falls below it while reading ends with that error.

use crate::decode::hashes_and_chain_ids;
use alloy_primitives::B256;
use bytes::Bytes;
use futures::future::BoxFuture;
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::types::error::INTERNAL_ERROR_CODE;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Method names: subscribe, notification, unsubscribe.
pub const SUBSCRIBE: &str = "weft_subscribeSubDags";
pub const NOTIFICATION: &str = "weft_subDag";
pub const UNSUBSCRIBE: &str = "weft_unsubscribeSubDags";

/// Largest sum of raw transaction bytes in one part (hex doubles it on the wire).
pub const PART_BYTES: usize = 128 * 1024;

/// A committed sub-DAG as the log holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    pub index: u64,
    pub leader_round: u64,
    /// Consensus timestamp, ms since the UNIX epoch, never decreasing.
    pub timestamp: u64,
    /// In committed order.
    pub transactions: Vec<Bytes>,
}

/// Where the stream reads the committed log; the node implements it.
pub trait SubDagSource: Send + Sync + 'static {
    /// The oldest retained index and the next index to be committed (equal when the log
    /// holds nothing).
    fn bounds(&self) -> Result<(u64, u64), String>;
    /// Up to `max` retained entries from `from` on, in order; the first may be later than
    /// `from` if earlier ones are gone. Blocking (a store read).
    fn read(&self, from: u64, max: usize) -> Result<Vec<StreamEntry>, String>;
    /// Resolves once entry `index` is committed.
    fn committed(&self, index: u64) -> BoxFuture<'static, ()>;
    /// Resolves to sub-DAG `index`'s finality certificate once it is there; an error when
    /// this source has none to give (no attester).
    fn certificate(
        &self,
        index: u64,
    ) -> BoxFuture<'static, Result<weft_attest::FinalityCertificate, String>> {
        let _ = index;
        Box::pin(async { Err("finality certificates are not served by this node".to_string()) })
    }
}

/// The subscription's optional parameter object.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeParams {
    pub from_index: Option<u64>,
    pub chain_id: Option<u64>,
    /// Send each sub-DAG with its finality certificate (and only once it has one).
    #[serde(default)]
    pub certified: bool,
}

/// One transaction of a part. `chain_id` and `hash` are absent for bytes that are not an
/// Ethereum transaction (the raw TCP ingress's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamTransaction {
    /// Position in the sub-DAG, counting every transaction (filtered or not), as
    /// `weft_getTransactionPosition` counts.
    pub tx_index: u64,
    pub chain_id: Option<u64>,
    pub hash: Option<B256>,
    pub raw: alloy_primitives::Bytes,
}

/// One `weft_subDag` notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubDagPart {
    pub index: u64,
    pub leader_round: u64,
    pub timestamp: u64,
    /// Transactions of the whole sub-DAG, every chain.
    pub transaction_count: u64,
    /// Parts of this sub-DAG before this one.
    pub part: u32,
    /// Whether this part completes the sub-DAG.
    pub last: bool,
    pub transactions: Vec<StreamTransaction>,
    /// On the last part of a `certified` subscription: the sub-DAG's finality certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<weft_attest::FinalityCertificate>,
}

/// The parts of `entry` for a subscriber of `chain` (all chains when `None`).
pub fn parts(entry: &StreamEntry, chain: Option<u64>) -> Vec<SubDagPart> {
    let part = |n: u32| SubDagPart {
        index: entry.index,
        leader_round: entry.leader_round,
        timestamp: entry.timestamp,
        transaction_count: entry.transactions.len() as u64,
        part: n,
        last: false,
        transactions: Vec::new(),
        certificate: None,
    };
    let mut out = vec![part(0)];
    let mut bytes = 0;
    let all = hashes_and_chain_ids(&entry.transactions);
    for (i, (raw, decoded)) in entry.transactions.iter().zip(all).enumerate() {
        if chain.is_some() && decoded.map(|(_, c)| c) != chain {
            continue;
        }
        let current = out.last().map_or(0, |p| p.transactions.len());
        if current > 0 && bytes + raw.len() > PART_BYTES {
            out.push(part(out.len() as u32));
            bytes = 0;
        }
        bytes += raw.len();
        if let Some(p) = out.last_mut() {
            p.transactions.push(StreamTransaction {
                tx_index: i as u64,
                chain_id: decoded.map(|(_, c)| c),
                hash: decoded.map(|(h, _)| h),
                raw: raw.clone().into(),
            });
        }
    }
    if let Some(p) = out.last_mut() {
        p.last = true;
    }
    out
}

/// Why a subscription was refused or ended.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("sub-DAG {from} is no longer retained: the oldest kept is {oldest}")]
    Pruned { from: u64, oldest: u64 },
    #[error("the committed log cannot be read: {0}")]
    Source(String),
}

/// EIP-1474's "resource not found": what a subscription from before the retention gets, with
/// `{"oldestIndex": ..}` as its data.
pub const NOT_RETAINED_CODE: i32 = -32001;

impl From<StreamError> for ErrorObjectOwned {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Pruned { oldest, .. } => ErrorObjectOwned::owned(
                NOT_RETAINED_CODE,
                e.to_string(),
                Some(serde_json::json!({ "oldestIndex": oldest })),
            ),
            StreamError::Source(_) => {
                ErrorObjectOwned::owned(INTERNAL_ERROR_CODE, e.to_string(), None::<()>)
            }
        }
    }
}

/// Serves one subscription until its client goes or the log fails it.
pub async fn serve(
    pending: PendingSubscriptionSink,
    source: Arc<dyn SubDagSource>,
    from: Option<u64>,
    chain: Option<u64>,
    certified: bool,
) -> Result<(), SubscriptionError> {
    let (oldest, next) = match source.bounds() {
        Ok(bounds) => bounds,
        Err(e) => {
            pending.reject(StreamError::Source(e)).await;
            return Ok(());
        }
    };
    let mut next = from.unwrap_or(next);
    if next < oldest {
        pending
            .reject(StreamError::Pruned { from: next, oldest })
            .await;
        return Ok(());
    }
    let Ok(sink) = pending.accept().await else {
        return Ok(());
    };
    loop {
        let reader = source.clone();
        let entries = tokio::task::spawn_blocking(move || reader.read(next, 1))
            .await
            .map_err(|e| SubscriptionError::from(format!("the log reader stopped: {e}")))?
            .map_err(|e| SubscriptionError::from(StreamError::Source(e).to_string()))?;
        let Some(entry) = entries.into_iter().next() else {
            tokio::select! {
                _ = source.committed(next) => continue,
                _ = sink.closed() => return Ok(()),
            }
        };
        if entry.index != next {
            let oldest = entry.index;
            return Err(StreamError::Pruned { from: next, oldest }
                .to_string()
                .into());
        }
        let mut parts = parts(&entry, chain);
        if certified {
            let certificate = tokio::select! {
                c = source.certificate(next) => c.map_err(SubscriptionError::from)?,
                _ = sink.closed() => return Ok(()),
            };
            if let Some(last) = parts.last_mut() {
                last.certificate = Some(certificate);
            }
        }
        for part in parts {
            let message: SubscriptionMessage = serde_json::value::to_raw_value(&part)
                .map_err(|e| SubscriptionError::from(format!("encoding sub-DAG {next}: {e}")))?
                .into();
            if sink.send(message).await.is_err() {
                // The client went away.
                return Ok(());
            }
        }
        next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(transactions: Vec<Bytes>) -> StreamEntry {
        StreamEntry {
            index: 7,
            leader_round: 16,
            timestamp: 1_000,
            transactions,
        }
    }

    /// Large sub-DAGs are cut into parts below the size bound, in order, the last one marked;
    /// an empty sub-DAG is one empty last part.
    #[test]
    fn parts_are_bounded_ordered_and_the_last_is_marked() {
        let big = Bytes::from(vec![7u8; PART_BYTES / 3 + 1]);
        let all = parts(&entry(vec![big.clone(); 7]), None);
        assert_eq!(
            all.len(),
            4,
            "three of a third and a bit do not fit in one part"
        );
        let indices: Vec<u64> = all
            .iter()
            .flat_map(|p| p.transactions.iter().map(|t| t.tx_index))
            .collect();
        assert_eq!(indices, (0..7).collect::<Vec<_>>());
        for (n, p) in all.iter().enumerate() {
            assert_eq!(p.part, n as u32);
            assert_eq!(p.last, n == 3);
            assert_eq!(p.transaction_count, 7);
            let bytes: usize = p.transactions.iter().map(|t| t.raw.len()).sum();
            assert!(bytes <= PART_BYTES);
            assert!(p
                .transactions
                .iter()
                .all(|t| t.hash.is_none() && t.chain_id.is_none()));
        }
        let empty = parts(&entry(vec![]), Some(1));
        assert_eq!(empty.len(), 1);
        assert!(empty[0].last && empty[0].transactions.is_empty());
        // A filter keeps no blob that is not an Ethereum transaction, but the sub-DAG is sent.
        let filtered = parts(&entry(vec![big]), Some(1));
        assert_eq!(filtered.len(), 1);
        assert!(filtered[0].transactions.is_empty());
        assert_eq!(filtered[0].transaction_count, 1);
    }
}
