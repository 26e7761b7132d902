//! The rollup node: takes this chain's sub-DAGs in order from its source (the live stream or
//! L1), plans each one's block and has the engine build it. Block `n` of the L2 chain executes
//! sub-DAG `first_index + n - 1`, every sub-DAG one block (an empty one too), so the engine's
//! head alone says where to resume after a crash: nothing of the node's own needs to be kept.

use crate::engine::{Engine, EngineError, Head};
use crate::l1::{L1FollowError, L1Follower};
use crate::plan::{block_time, decode, L2Input, Planner, Skip};
use crate::stream::{StreamError, StreamFollower};
use alloy_primitives::B256;
use std::future::Future;

/// Where the sub-DAGs come from.
pub enum Source {
    /// The authorities' ordered stream (the committee's order as it commits).
    Stream(Box<StreamFollower>),
    /// The L1 inbox alone, with forced inclusion.
    L1(Box<L1Follower>),
}

impl Source {
    async fn next(&mut self) -> Result<L2Input, RollupError> {
        match self {
            Source::Stream(s) => Ok(s.next().await?),
            Source::L1(l) => Ok(l.next().await?),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    L1(#[from] L1FollowError),
    #[error("the source gave sub-DAG {got} where {expected} was next")]
    Gap { expected: u64, got: u64 },
    #[error("decoding stopped: {0}")]
    Decode(String),
}

/// What one block did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockReport {
    pub index: u64,
    pub head: Head,
    pub included: Vec<B256>,
    pub skipped: Vec<(B256, Skip)>,
}

pub struct RollupNode<E> {
    engine: E,
    chain_id: u64,
    first_index: u64,
    planner: Planner,
    head: Head,
}

impl<E: Engine> RollupNode<E> {
    /// A node for `chain_id` whose block 1 executes sub-DAG `first_index`, resuming at the
    /// engine's head.
    pub async fn new(mut engine: E, chain_id: u64, first_index: u64) -> Result<Self, RollupError> {
        let head = engine.head().await?;
        Ok(Self {
            engine,
            chain_id,
            first_index,
            planner: Planner::default(),
            head,
        })
    }

    /// The sub-DAG the next block executes.
    pub fn next_index(&self) -> u64 {
        self.first_index + self.head.number
    }

    pub fn head(&self) -> Head {
        self.head
    }

    /// Executes `input` as the next block; inputs below the next index (a source replaying
    /// from its start) are passed over, returning `None`.
    pub async fn execute(&mut self, input: L2Input) -> Result<Option<BlockReport>, RollupError> {
        let expected = self.next_index();
        if input.index < expected {
            return Ok(None);
        }
        if input.index > expected {
            return Err(RollupError::Gap {
                expected,
                got: input.index,
            });
        }
        let started = std::time::Instant::now();
        let chain_id = self.chain_id;
        let transactions = input.transactions;
        // Sender recovery is CPU work (~50 µs a transaction): off the runtime's threads.
        let decoded = tokio::task::spawn_blocking(move || decode(&transactions, chain_id))
            .await
            .map_err(|e| RollupError::Decode(e.to_string()))?;
        let senders = self.planner.unknown_senders(&decoded);
        let nonces = self.engine.nonces(&senders).await?;
        for (sender, nonce) in senders.into_iter().zip(nonces) {
            self.planner.learn(sender, nonce);
        }
        let plan = self.planner.plan(&decoded);
        let planned = started.elapsed();
        let timestamp = block_time(self.head.timestamp, input.timestamp_ms);
        let built = self.engine.build(&self.head, timestamp, &plan.send).await?;
        let mut skipped = plan.skipped.clone();
        skipped.extend(self.planner.executed(&plan, &built.included));
        self.head = built.head;
        tracing::debug!(
            index = input.index,
            plan_ms = planned.as_millis() as u64,
            build_ms = (started.elapsed() - planned).as_millis() as u64,
            "block timing"
        );
        Ok(Some(BlockReport {
            index: input.index,
            head: built.head,
            included: built.included,
            skipped,
        }))
    }

    /// Follows `source` until `shutdown` resolves or something fails. A block being built
    /// when `shutdown` resolves is finished first.
    pub async fn run(
        mut self,
        mut source: Source,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RollupError> {
        tokio::pin!(shutdown);
        loop {
            let input = tokio::select! {
                input = source.next() => input?,
                _ = &mut shutdown => return Ok(()),
            };
            if let Some(report) = self.execute(input).await? {
                // Wall-clock time the block became readable, for latency measurements.
                let at_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                tracing::info!(
                    index = report.index,
                    at_ms,
                    number = report.head.number,
                    hash = %report.head.hash,
                    state_root = %report.head.state_root,
                    transactions = report.included.len(),
                    skipped = report.skipped.len(),
                    "rollup block"
                );
                for (hash, why) in &report.skipped {
                    tracing::debug!(%hash, ?why, "skipped");
                }
            }
        }
    }
}
