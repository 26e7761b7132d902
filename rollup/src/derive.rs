//! Derivation from L1 alone: the rule that turns the inbox (the committee's batches and
//! anyone's forced transactions, in L1 order) into this chain's L2 inputs. Pure: the caller
//! reads L1 and feeds events in chain order; the same events always give the same inputs.
//!
//! A sub-DAG is derived at the L1 block of the batch that completes it. A forced transaction
//! of this chain submitted at L1 block `b` is due once `W` blocks have passed: if no sub-DAG
//! derived at or before block `b + W` carried it, it goes at the front of the first sub-DAG
//! derived after `b + W`, in inbox order (as OP Stack places deposits after its sequencing
//! window). So a committee that ignores the inbox as a whole delays a forced transaction by at
//! most `W` blocks plus its next batch, and cannot keep it out. A copy the committee orders
//! later is skipped by the nonce rule like any replay.
//!
//! Within one L1 block, forced events count before batches.

use crate::plan::L2Input;
use alloy_primitives::B256;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use weft_l1_poster::forced::ForcedTx;
use weft_l1_poster::OrderedSubDag;
use weft_rpc::decode::hash_and_chain_id;

/// A forced transaction of this chain that no derived sub-DAG has carried yet.
#[derive(Clone, Debug)]
struct Pending {
    l1_block: u64,
    hash: B256,
    raw: Bytes,
}

#[derive(Debug)]
pub struct Derivation {
    chain_id: u64,
    /// W, in L1 blocks.
    window: u64,
    /// By inbox index: inbox order.
    pending: BTreeMap<u64, Pending>,
    by_hash: HashMap<B256, u64>,
    /// Forced transactions placed by the rule (not by the committee) so far.
    forced_by_derivation: u64,
}

impl Derivation {
    pub fn new(chain_id: u64, window: u64) -> Self {
        Self {
            chain_id,
            window,
            pending: BTreeMap::new(),
            by_hash: HashMap::new(),
            forced_by_derivation: 0,
        }
    }

    /// A `ForceIncluded` event. Forced bytes that are not a transaction of this chain are not
    /// this rollup's to include.
    pub fn forced(&mut self, tx: &ForcedTx) {
        let Some((hash, chain)) = hash_and_chain_id(&tx.transaction) else {
            return;
        };
        if chain != self.chain_id || self.by_hash.contains_key(&hash) {
            return;
        }
        self.by_hash.insert(hash, tx.index);
        self.pending.insert(
            tx.index,
            Pending {
                l1_block: tx.l1_block,
                hash,
                raw: tx.transaction.clone(),
            },
        );
    }

    /// Sub-DAG `sub_dag`, completed by a batch in L1 block `l1_block`: the input of its block.
    pub fn sub_dag(&mut self, sub_dag: &OrderedSubDag, l1_block: u64) -> L2Input {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| l1_block > p.l1_block.saturating_add(self.window))
            .map(|(index, _)| *index)
            .collect();
        let mut transactions = Vec::with_capacity(due.len() + sub_dag.transactions.len());
        for index in due {
            if let Some(p) = self.pending.remove(&index) {
                self.by_hash.remove(&p.hash);
                self.forced_by_derivation += 1;
                transactions.push(p.raw);
            }
        }
        for raw in &sub_dag.transactions {
            let Some((hash, chain)) = hash_and_chain_id(raw) else {
                continue;
            };
            if chain != self.chain_id {
                continue;
            }
            if let Some(index) = self.by_hash.remove(&hash) {
                self.pending.remove(&index);
            }
            transactions.push(raw.clone());
        }
        L2Input {
            index: sub_dag.index,
            timestamp_ms: sub_dag.timestamp,
            transactions,
        }
    }

    /// Forced transactions of this chain still waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn forced_by_derivation(&self) -> u64 {
        self.forced_by_derivation
    }
}

/// This chain's transactions of `sub_dag`, in order: the input of a node that follows the
/// committee's order without L1 (the stream filters by chain, but an authority's filter is
/// not trusted).
pub fn committee_input(sub_dag: &OrderedSubDag, chain_id: u64) -> L2Input {
    L2Input {
        index: sub_dag.index,
        timestamp_ms: sub_dag.timestamp,
        transactions: sub_dag
            .transactions
            .iter()
            .filter(|raw| hash_and_chain_id(raw).is_some_and(|(_, c)| c == chain_id))
            .cloned()
            .collect(),
    }
}
