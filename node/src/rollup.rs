//! `weft rollup run`: the reference rollup node's command line.

use crate::run::{init_logging, parse_address, runtime, shutdown_signal};
use anyhow::{Context, Result};
use std::time::Duration;
use weft_rollup::l1::{L1Follower, L1FollowerConfig};
use weft_rollup::stream::StreamFollower;
use weft_rollup::{AnvilEngine, RollupNode, Source};

#[derive(clap::Args)]
pub struct RollupRunArgs {
    #[command(flatten)]
    log: crate::run::LogArgs,
    /// The rollup's chain id: only its transactions are executed.
    #[arg(long)]
    chain_id: u64,
    /// JSON-RPC URL of the execution client (anvil started with `--no-mining --order fifo`).
    #[arg(long)]
    engine: String,
    /// WebSocket URL of an authority's ingress (`ws://host:port`); repeat for failover, in
    /// the order to try them.
    #[arg(
        long = "stream",
        required_unless_present = "l1_rpc",
        conflicts_with = "l1_rpc"
    )]
    streams: Vec<String>,
    /// Derive from the L1 inbox alone: the L1 node's JSON-RPC URL.
    #[arg(long, requires = "l1_inbox")]
    l1_rpc: Option<String>,
    /// The inbox contract's address.
    #[arg(long)]
    l1_inbox: Option<String>,
    /// The forced-inclusion window W of the chain's derivation rule, in L1 blocks.
    #[arg(long, default_value_t = 10)]
    forced_window_blocks: u64,
    /// L1 blocks are read once this many deep.
    #[arg(long, default_value_t = 0)]
    l1_confirmations: u64,
    #[arg(long, default_value_t = 500)]
    l1_poll_ms: u64,
    /// The sub-DAG the rollup's block 1 executes (fixed for the life of the chain).
    #[arg(long, default_value_t = 0)]
    first_index: u64,
}

pub fn run(args: RollupRunArgs) -> Result<()> {
    init_logging(&args.log);
    runtime()?.block_on(async move {
        let engine = AnvilEngine::open(&args.engine, args.chain_id)
            .await
            .with_context(|| format!("the execution client at {}", args.engine))?;
        let node = RollupNode::new(engine, args.chain_id, args.first_index)
            .await
            .with_context(|| format!("reading the head of {}", args.engine))?;
        let source = match &args.l1_rpc {
            Some(rpc) => Source::L1(Box::new(L1Follower::new(L1FollowerConfig {
                rpc: rpc.clone(),
                inbox: parse_address(args.l1_inbox.as_deref().unwrap_or_default())?,
                chain_id: args.chain_id,
                window_blocks: args.forced_window_blocks,
                confirmations: args.l1_confirmations,
                poll_interval: Duration::from_millis(args.l1_poll_ms),
            })?)),
            None => Source::Stream(Box::new(StreamFollower::new(
                args.streams.clone(),
                args.chain_id,
                node.next_index(),
            )?)),
        };
        tracing::info!(
            chain_id = args.chain_id,
            head = node.head().number,
            next_index = node.next_index(),
            "rollup node started"
        );
        let shutdown = async {
            if let Err(e) = shutdown_signal().await {
                tracing::error!("waiting for a signal: {e}");
            }
        };
        node.run(source, shutdown).await?;
        tracing::info!("rollup node stopped");
        Ok(())
    })
}
