//! Following the L1 inbox alone: reads the committee's batches (checked as `weft l1 verify`
//! checks them) and the forced transactions, block by block, and derives this chain's inputs
//! with [`Derivation`].

use crate::derive::Derivation;
use crate::plan::L2Input;
use alloy_primitives::Address;
use std::collections::VecDeque;
use std::time::Duration;
use weft_l1_poster::forced::forced_events;
use weft_l1_poster::l1::{L1Error, L1};
use weft_l1_poster::reader::batch_events;
use weft_l1_poster::InboxWalker;

/// L1 blocks read per step.
const BLOCK_RANGE: u64 = 1_000;

#[derive(Clone, Debug)]
pub struct L1FollowerConfig {
    pub rpc: String,
    pub inbox: Address,
    pub chain_id: u64,
    /// The forced-inclusion window W, in L1 blocks: part of the rollup's derivation rule, the
    /// same for every node of the chain.
    pub window_blocks: u64,
    /// Blocks read only once this deep (0 on a dev L1 without reorgs).
    pub confirmations: u64,
    pub poll_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum L1FollowError {
    #[error(transparent)]
    L1(#[from] L1Error),
    #[error("the inbox is inconsistent at batch {sequence}: {reason}")]
    Inconsistent { sequence: u64, reason: String },
    #[error("forced transaction {got} where {expected} was expected")]
    ForcedGap { expected: u64, got: u64 },
}

pub struct L1Follower {
    config: L1FollowerConfig,
    l1: L1,
    walker: InboxWalker,
    derivation: Derivation,
    next_block: u64,
    next_forced: u64,
    ready: VecDeque<L2Input>,
}

impl L1Follower {
    /// Derives from the inbox's first block on (the whole inbox is read: derivation state,
    /// such as forced transactions still waiting, is a function of all of it).
    pub fn new(config: L1FollowerConfig) -> Result<Self, L1FollowError> {
        let l1 = L1::new(&config.rpc, config.inbox)?;
        Ok(Self {
            derivation: Derivation::new(config.chain_id, config.window_blocks),
            config,
            l1,
            walker: InboxWalker::default(),
            next_block: 0,
            next_forced: 0,
            ready: VecDeque::new(),
        })
    }

    pub fn derivation(&self) -> &Derivation {
        &self.derivation
    }

    /// The next sub-DAG's input, waiting for L1 to carry it.
    pub async fn next(&mut self) -> Result<L2Input, L1FollowError> {
        loop {
            if let Some(input) = self.ready.pop_front() {
                return Ok(input);
            }
            if !self.step().await? {
                tokio::time::sleep(self.config.poll_interval).await;
            }
        }
    }

    /// Reads the next range of final blocks; false when there was none.
    async fn step(&mut self) -> Result<bool, L1FollowError> {
        let head = self.l1.head_block().await?;
        let Some(last_final) = head.checked_sub(self.config.confirmations) else {
            return Ok(false);
        };
        if last_final < self.next_block {
            return Ok(false);
        }
        let to = last_final.min(self.next_block + BLOCK_RANGE - 1);
        let forced = forced_events(&self.l1, self.next_block, to).await?;
        let batches = batch_events(&self.l1, self.next_block, to)
            .await
            .map_err(|e| match e {
                weft_l1_poster::reader::ReadError::L1(e) => L1FollowError::L1(e),
                other => L1FollowError::L1(L1Error::Rpc(other.to_string())),
            })?;
        let mut forced = forced.into_iter().peekable();
        for batch in &batches {
            // Forced transactions of earlier blocks and of this one count before the batch.
            while let Some(f) = forced.next_if(|f| f.l1_block <= batch.block) {
                self.forced(&f)?;
            }
            let sub_dags = match self.walker.apply(&self.l1, batch).await? {
                Ok(sub_dags) => sub_dags,
                Err(i) => {
                    return Err(L1FollowError::Inconsistent {
                        sequence: i.sequence,
                        reason: i.reason,
                    })
                }
            };
            for sub_dag in &sub_dags {
                self.ready
                    .push_back(self.derivation.sub_dag(sub_dag, batch.block));
            }
        }
        for f in forced {
            self.forced(&f)?;
        }
        self.next_block = to + 1;
        Ok(true)
    }

    fn forced(&mut self, f: &weft_l1_poster::forced::ForcedTx) -> Result<(), L1FollowError> {
        if f.index != self.next_forced {
            return Err(L1FollowError::ForcedGap {
                expected: self.next_forced,
                got: f.index,
            });
        }
        self.next_forced += 1;
        self.derivation.forced(f);
        Ok(())
    }
}
