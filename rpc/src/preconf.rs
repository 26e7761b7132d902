//! Pre-confirmations: the committee's signed statement of a transaction's position, which a
//! client checks offline against the committee file alone (`weft preconf verify`).
//!
//! - `weft_getPreconfirmation(hash)` → a [`Preconfirmation`] (position, Merkle proof to the
//!   attested root, finality certificate) once the transaction is committed and its sub-DAG
//!   certified; `null` before that (or once the log no longer retains it).
//! - `weft_getFinalityCertificate(index)` → the [`FinalityCertificate`] of a sub-DAG, or `null`.
//! - `weft_subscribePreconfirmations([hash, ...])` over WebSocket: one
//!   `weft_preconfirmation` notification per transaction as soon as it is certified (at once
//!   for those already certified); the subscription ends when each has been sent.
//!
//! Under a `/<chain_id>` endpoint only that rollup's transactions are visible, as for
//! `weft_getTransactionPosition`.

use crate::index::{Position, TransactionIndex};
use alloy_primitives::B256;
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::SubscriptionMessage;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use weft_attest::{FinalityCertificate, Preconfirmation};

pub const SUBSCRIBE: &str = "weft_subscribePreconfirmations";
pub const NOTIFICATION: &str = "weft_preconfirmation";
pub const UNSUBSCRIBE: &str = "weft_unsubscribePreconfirmations";

/// Most transactions one subscription may wait for.
pub const MAX_HASHES_PER_SUBSCRIPTION: usize = 256;

/// How often a subscription looks again for transactions the index had not reached when
/// their certificate formed (the index follows the log a little behind).
const RECHECK: Duration = Duration::from_millis(200);

/// Where pre-confirmations come from; the node implements it from its log and certificates.
pub trait PreconfSource: Send + Sync + 'static {
    /// The pre-confirmation of transaction `hash` at `position`, if its sub-DAG is certified
    /// and retained. Blocking (store reads, a tree built over the sub-DAG).
    fn preconfirmation(
        &self,
        hash: B256,
        position: Position,
    ) -> Result<Option<Preconfirmation>, String>;
    /// Blocking (a store read).
    fn certificate(&self, index: u64) -> Result<Option<FinalityCertificate>, String>;
    /// Every certificate stored from now on.
    fn certified(&self) -> broadcast::Receiver<Arc<FinalityCertificate>>;
}

/// The pre-confirmation of `hash`, looked up off the runtime.
pub async fn lookup(
    source: &Arc<dyn PreconfSource>,
    index: &Arc<dyn TransactionIndex>,
    hash: B256,
    chain: Option<u64>,
) -> Result<Option<Preconfirmation>, String> {
    let Some(position) = index
        .position(&hash)
        .filter(|p| chain.is_none_or(|c| p.chain_id == c))
    else {
        return Ok(None);
    };
    let source = source.clone();
    tokio::task::spawn_blocking(move || source.preconfirmation(hash, position))
        .await
        .map_err(|e| format!("the pre-confirmation reader stopped: {e}"))?
}

/// Serves one subscription: sends each transaction's pre-confirmation once, as soon as it
/// exists, until all are sent or the client goes.
pub async fn serve(
    sink: jsonrpsee::SubscriptionSink,
    source: Arc<dyn PreconfSource>,
    index: Arc<dyn TransactionIndex>,
    hashes: Vec<B256>,
    chain: Option<u64>,
) -> Result<(), SubscriptionError> {
    // Subscribed before the first look, so no certificate can form unseen in between.
    let mut certified = source.certified();
    let mut waiting: BTreeSet<B256> = hashes.into_iter().collect();
    loop {
        let mut sent = Vec::new();
        for hash in &waiting {
            let Some(preconf) = lookup(&source, &index, *hash, chain).await? else {
                continue;
            };
            let message: SubscriptionMessage = serde_json::value::to_raw_value(&preconf)
                .map_err(|e| SubscriptionError::from(format!("encoding {hash}: {e}")))?
                .into();
            if sink.send(message).await.is_err() {
                return Ok(());
            }
            sent.push(*hash);
        }
        for hash in sent {
            waiting.remove(&hash);
        }
        if waiting.is_empty() {
            return Ok(());
        }
        tokio::select! {
            // Lagging behind the broadcast only means looking again now.
            _ = certified.recv() => {}
            _ = tokio::time::sleep(RECHECK) => {}
            _ = sink.closed() => return Ok(()),
        }
    }
}

/// Parses the subscription's parameter: a list of distinct 32-byte hex hashes.
pub fn parse_hashes(texts: Vec<String>) -> Result<Vec<B256>, String> {
    if texts.is_empty() || texts.len() > MAX_HASHES_PER_SUBSCRIPTION {
        return Err(format!(
            "give 1 to {MAX_HASHES_PER_SUBSCRIPTION} transaction hashes, not {}",
            texts.len()
        ));
    }
    let mut hashes = Vec::with_capacity(texts.len());
    for text in &texts {
        hashes.push(parse_hash(text)?);
    }
    Ok(hashes)
}

/// A 32-byte hash in hex, with or without `0x`.
pub fn parse_hash(text: &str) -> Result<B256, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let mut hash = [0u8; 32];
    hex::decode_to_slice(digits, &mut hash)
        .map_err(|e| format!("transaction hash must be 32 bytes of hex: {e}"))?;
    Ok(B256::from(hash))
}
