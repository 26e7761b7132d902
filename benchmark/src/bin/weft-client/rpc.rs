//! `--ingress rpc`: the load through an authority's Ethereum JSON-RPC ingress, as a rollup's
//! users would send it (signed transactions, `eth_sendRawTransaction`), batched the way a
//! high-volume relayer does (one JSON-RPC batch of up to `--batch` calls per HTTP request,
//! many requests in flight, since each call is answered only once its transaction is
//! acknowledged: stored by a quorum and taken by the primary).
//!
//! Measured here, not in the node logs: every call's acknowledgement latency (a histogram of
//! 1 ms buckets, logged at the end), and each sample's commit, seen by polling
//! `weft_getTransactionPosition` every `--poll-ms` (so a sample's observed commit is late by
//! half the poll period on average, plus one call's round trip).

use super::{wait_for_nodes, warn_late, Args, BURST_INTERVAL, LOG_TARGET, MAX_CATCH_UP};
use alloy_primitives::B256;
use anyhow::{bail, Context, Result};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{interval, Instant, MissedTickBehavior};
use tracing::{info, warn};
use weft_benchmark::eth::{sign_all, LoadSpec, SignedTx};
use weft_benchmark::{samples_per_burst, transaction_id, Pacer};

/// How long the client keeps watching for its samples' commits after its last send.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A call not answered in this time counts as refused (the node's acknowledgement never came).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Latencies above this land in the last histogram bucket.
const MAX_LATENCY_MS: usize = 60_000;
/// Refusal messages logged per JSON-RPC error code (the rest are only counted).
const MESSAGES_PER_CODE: usize = 1;

#[derive(clap::Args, Debug)]
pub struct RpcArgs {
    /// `rpc` mode: the chain id the transactions are signed for.
    #[arg(long, default_value_t = 1337)]
    chain_id: u64,
    /// `rpc` mode: accounts signing the load (nonces count up per account).
    #[arg(long, default_value_t = 1000)]
    accounts: u64,
    /// `rpc` mode: `eth_sendRawTransaction` calls per JSON-RPC batch (at most the node's
    /// `rpc.max_batch_len`).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// `rpc` mode: batches awaiting their answers at once; a burst that finds none free
    /// waits, and the client falls behind its rate (and says so).
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// `rpc` mode: how often the samples' commits are polled.
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
    /// `rpc` mode: a directory where every client of the run says it has signed its load
    /// (a file `ready-<client id>`); sending starts once `--ready-count` files are there, so
    /// that clients that sign at different speeds still start together.
    #[arg(long, requires = "ready_count")]
    ready_dir: Option<std::path::PathBuf>,
    #[arg(long)]
    ready_count: Option<usize>,
}

/// How often the ready directory is looked at.
const READY_POLL: Duration = Duration::from_millis(10);

/// Marks this client ready and waits until `count` clients are (a file system barrier: the
/// clients are separate processes that share nothing else).
async fn barrier(dir: &std::path::Path, client_id: u64, count: usize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mine = dir.join(format!("ready-{client_id}"));
    std::fs::write(&mine, b"").with_context(|| format!("writing {}", mine.display()))?;
    let deadline = Instant::now() + super::NODES_READY_TIMEOUT;
    loop {
        let ready = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("ready-"))
            .count();
        if ready >= count {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "only {ready} of {count} clients were ready within {:?}",
                super::NODES_READY_TIMEOUT
            );
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// Counts shared by the request tasks.
#[derive(Default)]
struct Tally {
    acknowledged: u64,
    /// Per JSON-RPC error code (transport failures under code 0): count and first messages.
    refused: BTreeMap<i32, (u64, Vec<String>)>,
    wrong_hash: u64,
    /// Calls per millisecond of acknowledgement latency.
    latency_ms: Vec<u64>,
    /// Samples sent and not seen committed yet: hash -> id.
    pending: HashMap<B256, u64>,
}

impl Tally {
    fn refuse(&mut self, code: i32, message: impl FnOnce() -> String, calls: u64) {
        let entry = self.refused.entry(code).or_default();
        entry.0 += calls;
        if entry.1.len() < MESSAGES_PER_CODE {
            entry.1.push(message());
        }
    }

    fn refused_total(&self) -> u64 {
        self.refused.values().map(|(n, _)| n).sum()
    }

    fn record_latency(&mut self, latency: Duration, calls: u64) {
        if self.latency_ms.is_empty() {
            self.latency_ms = vec![0; MAX_LATENCY_MS + 1];
        }
        let ms = (latency.as_millis() as usize).min(MAX_LATENCY_MS);
        self.latency_ms[ms] += calls;
    }

    fn percentile_ms(&self, p: f64) -> usize {
        let total: u64 = self.latency_ms.iter().sum();
        let rank = ((total as f64 * p / 100.0).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, n) in self.latency_ms.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return ms;
            }
        }
        0
    }
}

type Shared = Arc<Mutex<Tally>>;

fn lock(tally: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn run(args: Args) -> Result<()> {
    let rpc = &args.rpc;
    if rpc.batch == 0 || rpc.max_in_flight == 0 {
        bail!("--batch and --max-in-flight must be positive");
    }
    let spec = LoadSpec {
        client_id: args.client_id,
        accounts: rpc.accounts,
        chain_id: rpc.chain_id,
        size: args.size,
    };
    let total = args.rate * args.duration;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let began = Instant::now();
    let txs = tokio::task::spawn_blocking(move || sign_all(&spec, total, threads))
        .await
        .context("the signing threads")??;
    info!(
        target: LOG_TARGET,
        "Signed {total} transactions of {} B from {} accounts in {:.1} s",
        args.size,
        rpc.accounts,
        began.elapsed().as_secs_f64()
    );
    let txs: Arc<[SignedTx]> = txs.into();
    wait_for_nodes(&args).await?;
    if let (Some(dir), Some(count)) = (&rpc.ready_dir, rpc.ready_count) {
        barrier(dir, args.client_id, count).await?;
    }
    let client = HttpClientBuilder::default()
        .max_concurrent_requests(rpc.max_in_flight + 1)
        .request_timeout(CALL_TIMEOUT)
        .max_request_size(u32::MAX)
        .max_response_size(u32::MAX)
        .build(format!("http://{}", args.target))
        .context("building the JSON-RPC client")?;

    let mut pacer = Pacer::new(
        args.rate,
        Duration::from_secs(args.duration),
        BURST_INTERVAL,
        MAX_CATCH_UP,
    );
    info!(
        target: LOG_TARGET,
        "Start sending transactions size {} rate {} burst {} ingress rpc chain {} target {}",
        args.size,
        args.rate,
        pacer.nominal,
        rpc.chain_id,
        args.target
    );
    let tally = Shared::default();
    let slots = Arc::new(Semaphore::new(rpc.max_in_flight));
    let mut requests = JoinSet::new();
    let poller = tokio::spawn(poll_samples(
        client.clone(),
        tally.clone(),
        Duration::from_millis(rpc.poll_ms.max(1)),
        rpc.batch,
    ));
    let mut tick = interval(BURST_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let (mut late_bursts, mut last_warning) = (0u64, None);
    loop {
        let now = tick.tick().await;
        if now >= end || pacer.done() {
            break;
        }
        let first = pacer.counter;
        let (burst, mut behind) = pacer.burst(now - start);
        let samples = samples_per_burst(burst, args.sample_share).min(burst);
        let mut k = first;
        while k < first + burst {
            let len = (rpc.batch as u64).min(first + burst - k);
            let range = k as usize..(k + len) as usize;
            {
                let mut t = lock(&tally);
                for i in range.clone() {
                    if (i as u64) < first + samples {
                        let id = transaction_id(args.client_id, i as u64);
                        info!(target: LOG_TARGET, "Sending sample transaction {id}");
                        t.pending.insert(txs[i].hash, id);
                    }
                }
            }
            let permit = match slots.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    behind = true;
                    slots.clone().acquire_owned().await?
                }
            };
            requests.spawn(send_batch(
                client.clone(),
                txs.clone(),
                range,
                tally.clone(),
                permit,
            ));
            k += len;
        }
        while let Some(joined) = requests.try_join_next() {
            joined.context("a request task")?;
        }
        if now.elapsed() > BURST_INTERVAL || behind {
            late_bursts += 1;
            warn_late(late_bursts, &mut last_warning);
        }
    }
    while let Some(joined) = requests.join_next().await {
        joined.context("a request task")?;
    }
    let sent = pacer.counter;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while !lock(&tally).pending.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(rpc.poll_ms.max(1))).await;
    }
    poller.abort();
    let t = lock(&tally);
    if !t.pending.is_empty() {
        warn!(
            target: LOG_TARGET,
            "{} acknowledged samples not seen committed within {DRAIN_TIMEOUT:?}",
            t.pending.len()
        );
    }
    for (code, (count, messages)) in &t.refused {
        warn!(
            target: LOG_TARGET,
            "Refused {count} calls with code {code}: {}",
            messages.join("; ")
        );
    }
    let histogram: Vec<String> = t
        .latency_ms
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(ms, n)| format!("{ms}:{n}"))
        .collect();
    info!(
        target: LOG_TARGET,
        "Acknowledgement latency histogram ms {}",
        histogram.join(",")
    );
    info!(
        target: LOG_TARGET,
        "Client done: sent {sent} transactions, {late_bursts} bursts late, {} acknowledged, {} refused, {} wrong hashes, acknowledgement latency p50 {} ms p99 {} ms",
        t.acknowledged,
        t.refused_total(),
        t.wrong_hash,
        t.percentile_ms(50.0),
        t.percentile_ms(99.0)
    );
    Ok(())
}

/// One JSON-RPC batch of `eth_sendRawTransaction` calls, and what its answers say.
async fn send_batch(
    client: HttpClient,
    txs: Arc<[SignedTx]>,
    range: std::ops::Range<usize>,
    tally: Shared,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let chunk = &txs[range];
    let mut batch = BatchRequestBuilder::new();
    for tx in chunk {
        let text = format!("0x{}", hex::encode(&tx.raw));
        if let Err(e) = batch.insert("eth_sendRawTransaction", rpc_params![text]) {
            lock(&tally).refuse(0, || format!("encoding the call: {e}"), 1);
        }
    }
    let sent = Instant::now();
    let answer = client.batch_request::<B256>(batch).await;
    let latency = sent.elapsed();
    let mut t = lock(&tally);
    let answers = match answer {
        Ok(answers) => answers,
        Err(e) => {
            t.refuse(0, || e.to_string(), chunk.len() as u64);
            for tx in chunk {
                refuse_sample(&mut t, &tx.hash, &e.to_string());
            }
            return;
        }
    };
    for (tx, answer) in chunk.iter().zip(answers) {
        match answer {
            Ok(hash) if hash == tx.hash => {
                t.acknowledged += 1;
                t.record_latency(latency, 1);
            }
            Ok(_) => t.wrong_hash += 1,
            Err(e) => {
                t.refuse(e.code(), || e.message().to_string(), 1);
                refuse_sample(&mut t, &tx.hash, e.message());
            }
        }
    }
}

/// A refused sample is not waited for: nothing was promised about it.
fn refuse_sample(t: &mut Tally, hash: &B256, why: &str) {
    if let Some(id) = t.pending.remove(hash) {
        info!(target: LOG_TARGET, "Sample transaction {id} refused: {why}");
    }
}

/// Polls the pending samples' positions until aborted; logs each one's commit once.
async fn poll_samples(client: HttpClient, tally: Shared, every: Duration, batch_len: usize) {
    let mut tick = interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pending: Vec<B256> = lock(&tally).pending.keys().copied().collect();
        for chunk in pending.chunks(batch_len) {
            let mut batch = BatchRequestBuilder::new();
            for hash in chunk {
                if batch
                    .insert("weft_getTransactionPosition", rpc_params![hash])
                    .is_err()
                {
                    continue;
                }
            }
            let Ok(answers) = client
                .batch_request::<Option<serde_json::Value>>(batch)
                .await
            else {
                continue;
            };
            let mut t = lock(&tally);
            for (hash, answer) in chunk.iter().zip(answers) {
                if let Ok(Some(position)) = answer {
                    if let Some(id) = t.pending.remove(hash) {
                        let sub_dag = position.get("subDagIndex").cloned().unwrap_or_default();
                        info!(
                            target: LOG_TARGET,
                            "Sample transaction {id} committed in sub-dag {sub_dag}"
                        );
                    }
                }
            }
        }
    }
}
