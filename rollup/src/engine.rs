//! The execution client behind a small trait: build one block on the head from an ordered
//! list of transactions at a given time, and report what it included. [`AnvilEngine`] drives
//! anvil over its standard JSON-RPC with its mining under our control (`--no-mining --order
//! fifo`); the Engine API of reth or op-geth fits the same trait (`engine_forkchoiceUpdated`
//! with payload attributes carrying the transactions and `noTxPool`, then `getPayload` and
//! `newPayload`).

use crate::plan::PlannedTx;
use alloy::eips::BlockNumberOrTag;
use alloy::providers::{Provider, RootProvider};
use alloy_primitives::{Address, B256};
use std::future::Future;

/// Nonce reads in flight at once (a block's new senders, each one read).
const NONCE_QUERIES_IN_FLIGHT: usize = 32;

/// The chain's head block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub number: u64,
    pub hash: B256,
    pub state_root: B256,
    /// Seconds.
    pub timestamp: u64,
}

/// A block the engine built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub head: Head,
    pub parent_hash: B256,
    /// The hashes of the transactions it holds, in order.
    pub included: Vec<B256>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid engine URL {0}")]
    Url(String),
    #[error("engine RPC: {0}")]
    Rpc(String),
    #[error("the engine is not set up for this rollup: {0}")]
    Setup(String),
    #[error("the engine has no block {0}")]
    MissingBlock(u64),
    #[error("block {number} has {got:?} where the order was {sent:?} (minus refusals)")]
    Order {
        number: u64,
        sent: Vec<B256>,
        got: Vec<B256>,
    },
    #[error("block {number} was built on {parent}, not on the head {head}")]
    NotOnHead {
        number: u64,
        parent: B256,
        head: B256,
    },
}

/// An execution client the rollup node drives.
pub trait Engine: Send {
    /// The head block.
    fn head(&mut self) -> impl Future<Output = Result<Head, EngineError>> + Send;

    /// The next nonce of each of `senders` at the head, in the same order.
    fn nonces(
        &mut self,
        senders: &[Address],
    ) -> impl Future<Output = Result<Vec<u64>, EngineError>> + Send;

    /// Builds and seals one block on `parent` (the head) at `timestamp` (seconds, not before
    /// the parent's) holding `transactions` in this order, each one the EVM accepts at its
    /// place; the others are left out. Any block the engine had been building is discarded
    /// first, so a call repeated after a failure builds the same block.
    fn build(
        &mut self,
        parent: &Head,
        timestamp: u64,
        transactions: &[PlannedTx],
    ) -> impl Future<Output = Result<Built, EngineError>> + Send;
}

/// anvil, started with `--no-mining --order fifo` so that blocks are built only when asked,
/// with the pool's transactions in arrival order.
pub struct AnvilEngine {
    provider: RootProvider,
}

impl AnvilEngine {
    pub fn connect(url: &str) -> Result<Self, EngineError> {
        let url = url.parse().map_err(|_| EngineError::Url(url.to_string()))?;
        Ok(Self {
            provider: RootProvider::new_http(url),
        })
    }

    /// [`AnvilEngine::connect`], then checks that anvil runs chain `chain_id` with its mining
    /// left to us and the pool in arrival order, so that blocks hold exactly what is sent.
    pub async fn open(url: &str, chain_id: u64) -> Result<Self, EngineError> {
        let engine = Self::connect(url)?;
        let automine: bool = engine
            .provider
            .raw_request("anvil_getAutomine".into(), ())
            .await
            .map_err(rpc)?;
        if automine {
            return Err(EngineError::Setup(
                "anvil mines on its own; start it with --no-mining".into(),
            ));
        }
        let info: serde_json::Value = engine
            .provider
            .raw_request("anvil_nodeInfo".into(), ())
            .await
            .map_err(rpc)?;
        if info["transactionOrder"] != "fifo" {
            return Err(EngineError::Setup(format!(
                "anvil orders its pool by {}; start it with --order fifo",
                info["transactionOrder"]
            )));
        }
        let engine_chain = engine.provider.get_chain_id().await.map_err(rpc)?;
        if engine_chain != chain_id {
            return Err(EngineError::Setup(format!(
                "anvil runs chain {engine_chain}, the rollup is chain {chain_id}"
            )));
        }
        Ok(engine)
    }

    async fn block(&self, tag: BlockNumberOrTag) -> Result<Built, EngineError> {
        let block = self
            .provider
            .get_block_by_number(tag)
            .await
            .map_err(rpc)?
            .ok_or(EngineError::MissingBlock(
                tag.as_number().unwrap_or_default(),
            ))?;
        Ok(Built {
            head: Head {
                number: block.header.number,
                hash: block.header.hash,
                state_root: block.header.state_root,
                timestamp: block.header.timestamp,
            },
            parent_hash: block.header.parent_hash,
            included: block.transactions.hashes().collect(),
        })
    }

    async fn drop_pool(&self) -> Result<(), EngineError> {
        self.provider
            .raw_request::<_, serde_json::Value>("anvil_dropAllTransactions".into(), ())
            .await
            .map_err(rpc)?;
        Ok(())
    }
}

fn rpc(e: impl std::fmt::Display) -> EngineError {
    EngineError::Rpc(e.to_string())
}

impl Engine for AnvilEngine {
    async fn head(&mut self) -> Result<Head, EngineError> {
        Ok(self.block(BlockNumberOrTag::Latest).await?.head)
    }

    async fn nonces(&mut self, senders: &[Address]) -> Result<Vec<u64>, EngineError> {
        use futures::{StreamExt, TryStreamExt};
        // Owned values in each future: the trait's `Send` bound on borrowed ones does not hold.
        let reads: Vec<_> = senders
            .iter()
            .map(|sender| (self.provider.clone(), *sender))
            .collect();
        futures::stream::iter(reads)
            .map(|(provider, sender)| async move {
                provider
                    .get_transaction_count(sender)
                    .latest()
                    .await
                    .map_err(rpc)
            })
            .buffered(NONCE_QUERIES_IN_FLIGHT)
            .try_collect()
            .await
    }

    async fn build(
        &mut self,
        parent: &Head,
        timestamp: u64,
        transactions: &[PlannedTx],
    ) -> Result<Built, EngineError> {
        self.drop_pool().await?;
        self.provider
            .raw_request::<_, serde_json::Value>("evm_setNextBlockTimestamp".into(), (timestamp,))
            .await
            .map_err(rpc)?;
        for tx in transactions {
            let sent = self
                .provider
                .raw_request::<_, B256>(
                    "eth_sendRawTransaction".into(),
                    (alloy_primitives::Bytes::from(tx.raw.clone()),),
                )
                .await;
            match sent {
                Ok(_) => {}
                // The pool refused it (no funds, fee below the base fee, …): it stays out.
                Err(e) if e.as_error_resp().is_some() => {
                    tracing::debug!(hash = %tx.hash, "engine refused the transaction: {e}")
                }
                Err(e) => return Err(rpc(e)),
            }
        }
        self.provider
            .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
            .await
            .map_err(rpc)?;
        let built = self.block(BlockNumberOrTag::Latest).await?;
        // Whatever the block left in the pool must not slip into the next one.
        self.drop_pool().await?;
        if built.head.number != parent.number + 1 || built.parent_hash != parent.hash {
            return Err(EngineError::NotOnHead {
                number: built.head.number,
                parent: built.parent_hash,
                head: parent.hash,
            });
        }
        if !crate::plan::is_subsequence(&built.included, transactions) {
            return Err(EngineError::Order {
                number: built.head.number,
                sent: transactions.iter().map(|t| t.hash).collect(),
                got: built.included,
            });
        }
        Ok(built)
    }
}
