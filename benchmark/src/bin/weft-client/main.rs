//! `weft-client`: the benchmark's load client. Sends fixed-size transactions at a steady rate,
//! in a burst every [`BURST_INTERVAL`], and logs each sample transaction as it leaves, so the
//! log parser can measure end-to-end latency. Two ingresses:
//! - `tcp` (default): length-framed blobs to one worker's transaction port; the worker logs
//!   the samples it seals, the executor the batches it commits;
//! - `rpc`: Ethereum transactions signed before the run, sent to one authority's JSON-RPC
//!   ingress in `eth_sendRawTransaction` batches (see `rpc.rs`); the client itself watches
//!   its samples' commits through `weft_getTransactionPosition`.
//!
//! Log lines (target `weft::bench`, the nodes' format, so one parser reads both):
//! `Start sending transactions`, `Sending sample transaction {id}`, `Client done ...`, and in
//! `rpc` mode `Sample transaction {id} committed ...`, `Sample transaction {id} refused ...`
//! and `Acknowledgement latency histogram ...`.

mod rpc;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{interval, Instant, MissedTickBehavior};
use tracing::{info, warn};
use weft_benchmark::{
    put_transaction, samples_per_burst, transaction_id, Pacer, MIN_TRANSACTION_SIZE,
};

/// Time between bursts: small enough that the input looks smooth to a 100 ms batch delay.
const BURST_INTERVAL: Duration = Duration::from_millis(50);
/// A burst after a late tick catches up at most this many bursts' worth of transactions.
const MAX_CATCH_UP: u64 = 4;
/// How long to wait for the nodes' ports before giving up.
const NODES_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between connection attempts while waiting for the nodes.
const CONNECT_RETRY: Duration = Duration::from_millis(100);
/// At most one "cannot keep the rate" warning per this period, so a slow client does not
/// drown its own log.
const WARN_EVERY: Duration = Duration::from_secs(5);
const LOG_TARGET: &str = "weft::bench";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Ingress {
    Tcp,
    Rpc,
}

#[derive(Parser)]
#[command(about = "weft benchmark load client")]
struct Args {
    /// `tcp`: a worker's transaction port; `rpc`: an authority's JSON-RPC ingress.
    #[arg(long, value_enum, default_value_t = Ingress::Tcp)]
    ingress: Ingress,
    /// The address to send to: the worker's transaction address, or the JSON-RPC address.
    #[arg(long)]
    target: SocketAddr,
    /// Size of each transaction in bytes (at least 9; in `rpc` mode the raw signed envelope,
    /// at least a plain transfer's ~115 B).
    #[arg(long, default_value_t = 512)]
    size: usize,
    /// Transactions per second.
    #[arg(long)]
    rate: u64,
    /// Seconds to send for.
    #[arg(long)]
    duration: u64,
    /// Transaction addresses to wait for before sending (comma-separated); the target is
    /// always waited for.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<SocketAddr>,
    /// Share of transactions that are samples; at least one per burst.
    #[arg(long, default_value_t = 0.0)]
    sample_share: f64,
    /// This client's id; it prefixes every transaction id so ids are unique across clients.
    #[arg(long, default_value_t = 0)]
    client_id: u64,
    #[command(flatten)]
    rpc: rpc::RpcArgs,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(false)
        .init();
    let args = Args::parse();
    if args.size < MIN_TRANSACTION_SIZE {
        bail!("--size must be at least {MIN_TRANSACTION_SIZE} bytes");
    }
    if args.rate == 0 {
        bail!("--rate must be positive");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.ingress {
        Ingress::Tcp => runtime.block_on(run(args)),
        Ingress::Rpc => runtime.block_on(rpc::run(args)),
    }
}

async fn wait_for_nodes(args: &Args) -> Result<()> {
    let mut waits = args.nodes.clone();
    waits.push(args.target);
    for address in waits {
        wait_for(address).await?;
    }
    Ok(())
}

/// Logs a late burst, at most once per [`WARN_EVERY`].
fn warn_late(late_bursts: u64, last_warning: &mut Option<Instant>) {
    if last_warning.is_none_or(|t| t.elapsed() > WARN_EVERY) {
        warn!(
            target: LOG_TARGET,
            "Transaction rate too high for this client: {late_bursts} bursts late so far"
        );
        *last_warning = Some(Instant::now());
    }
}

async fn run(args: Args) -> Result<()> {
    wait_for_nodes(&args).await?;
    let mut stream = TcpStream::connect(args.target)
        .await
        .with_context(|| format!("connecting to {}", args.target))?;
    stream.set_nodelay(true)?;

    let mut pacer = Pacer::new(
        args.rate,
        Duration::from_secs(args.duration),
        BURST_INTERVAL,
        MAX_CATCH_UP,
    );
    let nominal = pacer.nominal;
    let samples = samples_per_burst(nominal, args.sample_share);
    info!(
        target: LOG_TARGET,
        "Start sending transactions size {} rate {} burst {nominal} samples per burst {samples} target {}",
        args.size,
        args.rate,
        args.target
    );

    let mut buffer = BytesMut::with_capacity(nominal as usize * (4 + args.size));
    let mut tick = interval(BURST_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let mut last_warning: Option<Instant> = None;
    let mut late_bursts = 0u64;
    loop {
        let now = tick.tick().await;
        if now >= end || pacer.done() {
            break;
        }
        let first = pacer.counter;
        let (burst, behind) = pacer.burst(now - start);
        let samples = samples_per_burst(burst, args.sample_share).min(burst);
        for i in 0..burst {
            let id = transaction_id(args.client_id, first + i);
            let sample = i < samples;
            if sample {
                info!(target: LOG_TARGET, "Sending sample transaction {id}");
            }
            put_transaction(&mut buffer, args.size, sample, id);
        }
        stream
            .write_all(&buffer.split())
            .await
            .context("sending to the worker")?;
        if now.elapsed() > BURST_INTERVAL || behind {
            late_bursts += 1;
            warn_late(late_bursts, &mut last_warning);
        }
    }
    stream.flush().await?;
    stream.shutdown().await?;
    info!(
        target: LOG_TARGET,
        "Client done: sent {} transactions, {late_bursts} bursts late",
        pacer.counter
    );
    Ok(())
}

/// Waits until `address` accepts a TCP connection (a node that is still starting refuses).
async fn wait_for(address: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + NODES_READY_TIMEOUT;
    loop {
        match TcpStream::connect(address).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                bail!("{address} did not accept connections within {NODES_READY_TIMEOUT:?}: {e}")
            }
            Err(_) => tokio::time::sleep(CONNECT_RETRY).await,
        }
    }
}
