//! `weft node run` and `weft worker run`: load an authority's files, open its store, run it
//! until SIGINT or SIGTERM, then flush storage.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::info;
use weft_config::{load_committee, load_keys, load_parameters, Keys, Parameters};
use weft_node::ops::{authority_ready, Health, OpsServer};
use weft_node::{Node, NodeArgs};
use weft_storage::Store;
use weft_types::{AuthorityIndex, Committee, WorkerId};

#[derive(clap::Args)]
pub struct RunArgs {
    /// This authority's key file.
    #[arg(long)]
    keys: PathBuf,
    #[arg(long)]
    committee: PathBuf,
    /// Parameters file; defaults apply when omitted.
    #[arg(long)]
    parameters: Option<PathBuf>,
    /// Directory of the RocksDB store (created if missing).
    #[arg(long)]
    store: PathBuf,
    /// Seconds between status lines in the log.
    #[arg(long, default_value_t = 5)]
    report_every: u64,
    /// Serve /metrics, /health and /ready on this address (port 0: any free port, logged as
    /// `metrics server started address=...`); overrides the parameters' `metrics_address`.
    #[arg(long)]
    metrics_address: Option<std::net::SocketAddr>,
    /// Listen on this IP (e.g. 0.0.0.0) with the committee's ports, not on the committee's
    /// addresses (containers behind a service address); overrides the parameters'
    /// `listen_host`.
    #[arg(long)]
    listen_host: Option<std::net::IpAddr>,
    #[command(flatten)]
    log: LogArgs,
}

/// How the process logs (to stdout; the filter is `RUST_LOG`'s, default `info`).
#[derive(clap::Args)]
pub struct LogArgs {
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(clap::Args)]
pub struct NodeRunArgs {
    #[command(flatten)]
    common: RunArgs,
    /// The workers run as separate processes (`weft worker run`), not in this one.
    #[arg(long)]
    external_workers: bool,
    /// Serve the Ethereum JSON-RPC ingress (HTTP and WebSocket) on this address (port 0:
    /// any free port, logged as `rpc server started address=...`); its limits and chain ids
    /// are the parameters file's `rpc` section. Needs the workers in this process.
    #[arg(long, conflicts_with = "external_workers")]
    rpc_address: Option<std::net::SocketAddr>,
    #[command(flatten)]
    l1: L1Args,
}

/// Posting the committed log to an L1 inbox (all or none of the three first).
#[derive(clap::Args)]
struct L1Args {
    /// JSON-RPC endpoint of the L1 node; enables this authority's poster.
    #[arg(long, requires_all = ["l1_inbox", "l1_key"])]
    l1_rpc: Option<String>,
    /// Address of the inbox contract.
    #[arg(long)]
    l1_inbox: Option<String>,
    /// File holding this authority's posting key (hex secp256k1 private key), one the inbox
    /// was deployed with.
    #[arg(long)]
    l1_key: Option<PathBuf>,
    /// L1 blocks the designated poster of a batch has before the next authority posts it.
    #[arg(long, default_value_t = 10)]
    l1_takeover_blocks: u64,
    /// L1 blocks within which a transaction forced through the inbox must be ordered (W);
    /// the delay is exported as metrics against it.
    #[arg(long, default_value_t = 10)]
    l1_forced_window: u64,
    /// Ignore the inbox's forced transactions (order none of them), as a censoring authority
    /// would: for testing that the rollup's derivation includes them anyway.
    #[arg(long)]
    l1_ignore_forced: bool,
}

#[derive(clap::Args)]
pub struct WorkerRunArgs {
    #[command(flatten)]
    common: RunArgs,
    /// Which of the authority's workers this process is.
    #[arg(long)]
    id: WorkerId,
}

struct Loaded {
    committee: Arc<Committee>,
    keys: Keys,
    parameters: Parameters,
    me: AuthorityIndex,
}

/// Logs to stdout, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_logging(args: &LogArgs) {
    let builder = tracing_subscriber::fmt().with_env_filter(
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
    );
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
    }
}

/// Starts the operations endpoint if an address is configured.
async fn start_ops(
    args: &RunArgs,
    parameters: &Parameters,
    registry: &prometheus::Registry,
    health: &Arc<Health>,
) -> Result<Option<OpsServer>> {
    match args.metrics_address.or(parameters.metrics_address) {
        Some(address) => Ok(Some(
            OpsServer::spawn(address, registry.clone(), health.clone())
                .await
                .with_context(|| format!("serving metrics on {address}"))?,
        )),
        None => Ok(None),
    }
}

fn load(args: &RunArgs) -> Result<Loaded> {
    init_logging(&args.log);
    let committee = Arc::new(load_committee(&args.committee)?);
    let keys = load_keys(&args.keys)?;
    let mut parameters = match &args.parameters {
        Some(p) => load_parameters(p)?,
        None => Parameters::default(),
    };
    if let Some(host) = args.listen_host {
        parameters.listen_host = Some(host);
    }
    let me = committee
        .index_of_protocol_key(&keys.protocol.public())
        .with_context(|| {
            format!(
                "{}: protocol key is not in the committee",
                args.keys.display()
            )
        })?;
    let authority = committee
        .authority(me)
        .context("index from the committee")?;
    if authority.network_key != keys.network.public() {
        bail!(
            "{}: network key does not match the committee's entry for this authority",
            args.keys.display()
        );
    }
    Ok(Loaded {
        committee,
        keys,
        parameters,
        me,
    })
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn open_store(args: &RunArgs) -> Result<Store> {
    Store::open(&args.store, &weft_node::columns::all())
        .with_context(|| format!("opening store {}", args.store.display()))
}

pub fn node(args: NodeRunArgs) -> Result<()> {
    let loaded = load(&args.common)?;
    runtime()?.block_on(async move {
        let store = open_store(&args.common)?;
        let mut node = Node::spawn(NodeArgs {
            keys: loaded.keys.copy(),
            committee: loaded.committee.clone(),
            parameters: loaded.parameters.clone(),
            store,
            with_workers: !args.external_workers,
            l1: l1_config(&args.l1, &args.common.store)?,
        })
        .await?;
        info!(
            authority = %loaded.me,
            workers = loaded.committee.num_workers(),
            external_workers = args.external_workers,
            store = %args.common.store.display(),
            "node started"
        );
        let rpc = match args.rpc_address {
            Some(address) => Some(
                weft_node::rpc::RpcIngress::start(&node, address, &loaded.parameters)
                    .await
                    .context("starting the rpc ingress")?,
            ),
            None => None,
        };
        let health = Arc::new(Health::new(authority_ready(node.metrics.clone())));
        let ops = start_ops(&args.common, &loaded.parameters, &node.registry, &health).await?;
        let every = Duration::from_secs(args.common.report_every.max(1));
        let status = tokio::spawn(report(
            node.metrics.clone(),
            node.node_metrics.clone(),
            node.log.clone(),
            args.common.store.clone(),
            every,
        ));
        let fatal = until_signal_or_fatal(node.stopped(), &health).await?;
        status.abort();
        // First, so that no transaction is taken that the workers could not make durable.
        if let Some(rpc) = rpc {
            rpc.shutdown().await;
        }
        let flushed = node.shutdown().await;
        if let Some(ops) = ops {
            ops.shutdown().await;
        }
        if let Some(cause) = fatal {
            bail!("fatal: {cause} (see the log above for why)");
        }
        flushed?;
        info!("store flushed; bye");
        Ok(())
    })
}

pub fn worker(args: WorkerRunArgs) -> Result<()> {
    let loaded = load(&args.common)?;
    if args.id >= loaded.committee.num_workers() {
        bail!(
            "--id {} is not a worker of this committee (it has {})",
            args.id,
            loaded.committee.num_workers()
        );
    }
    runtime()?.block_on(async move {
        let store = open_store(&args.common)?;
        let registry = prometheus::Registry::new();
        let mut worker = weft_worker::Worker::spawn(weft_worker::WorkerArgs {
            authority: loaded.me,
            id: args.id,
            committee: loaded.committee,
            parameters: loaded.parameters.clone(),
            network_keypair: loaded.keys.network,
            store: store.clone(),
            registry: &registry,
            network_metrics: None,
        })
        .await?;
        info!(authority = %loaded.me, id = args.id, "worker started");
        let health = Arc::new(Health::new(|| Ok(())));
        let ops = start_ops(&args.common, &loaded.parameters, &registry, &health).await?;
        let fatal = until_signal_or_fatal(worker.stopped(), &health).await?;
        worker.shutdown().await;
        if let Some(ops) = ops {
            ops.shutdown().await;
        }
        if let Some(cause) = fatal {
            bail!("fatal: {cause} (see the log above for why)");
        }
        store.sync().context("flushing the store")?;
        info!("store flushed; bye");
        Ok(())
    })
}

/// Logs a status line every `every`, and measures the store's size on disk.
async fn report(
    metrics: Arc<weft_primary::PrimaryMetrics>,
    node_metrics: Arc<weft_node::metrics::NodeMetrics>,
    log: weft_node::CommittedLog,
    store: PathBuf,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let dir = store.clone();
        if let Ok((db, values)) =
            tokio::task::spawn_blocking(move || weft_node::metrics::disk_usage(&dir)).await
        {
            node_metrics
                .store_bytes
                .with_label_values(&["rocksdb"])
                .set(db as i64);
            node_metrics
                .store_bytes
                .with_label_values(&["value_log"])
                .set(values as i64);
        }
        info!(
            round = metrics.round.get(),
            dag_round = metrics.dag_round.get(),
            gc_round = metrics.gc_round.get(),
            committed_sub_dags = log.next_index(),
            "status"
        );
    }
}

pub(crate) fn parse_address(text: &str) -> Result<alloy::primitives::Address> {
    text.parse()
        .with_context(|| format!("--inbox / --l1-inbox {text:?} is not an address"))
}

/// This authority's L1 roles as the flags give them (`None` without `--l1-rpc`).
fn l1_config(l1: &L1Args, store: &std::path::Path) -> Result<Option<weft_node::l1::L1Config>> {
    let Some(rpc) = &l1.l1_rpc else {
        return Ok(None);
    };
    let key_file = l1
        .l1_key
        .as_ref()
        .context("--l1-key is required with --l1-rpc")?;
    Ok(Some(weft_node::l1::L1Config {
        rpc: rpc.clone(),
        inbox: parse_address(l1.l1_inbox.as_deref().unwrap_or_default())?,
        key: read_l1_key(key_file)?,
        cursor: store.join("l1-cursor.json"),
        takeover_blocks: l1.l1_takeover_blocks,
        forced_window: l1.l1_forced_window,
        ignore_forced: l1.l1_ignore_forced,
    }))
}

/// `weft l1 verify`: the inbox's chain, and with a committee file every batch's certificate.
pub fn verify_l1(rpc: &str, inbox: &str, committee: Option<&std::path::Path>) -> Result<()> {
    let inbox = parse_address(inbox)?;
    let committee = committee
        .map(|path| {
            weft_config::load_committee(path).with_context(|| format!("reading {}", path.display()))
        })
        .transpose()?;
    let report = runtime()?.block_on(weft_l1_poster::verify(rpc, inbox, committee.as_ref()))?;
    println!("{report}");
    if report.first_inconsistency.is_some() {
        std::process::exit(1);
    }
    Ok(())
}

/// `weft l1 deploy`: deploys an inbox bound to the committee; prints its address.
pub fn deploy_l1(rpc: &str, committee: &std::path::Path, key_file: &std::path::Path) -> Result<()> {
    let committee = weft_config::load_committee(committee)
        .with_context(|| format!("reading {}", committee.display()))?;
    let key = read_l1_key(key_file)?;
    let inbox = runtime()?.block_on(weft_l1_poster::deploy_inbox(rpc, key, &committee))?;
    println!("{inbox}");
    Ok(())
}

/// A hex secp256k1 private key from a file only this user can read.
fn read_l1_key(key_file: &std::path::Path) -> Result<alloy::signers::local::PrivateKeySigner> {
    let text = weft_config::read_secret(key_file)?;
    text.trim()
        .parse()
        .with_context(|| format!("{}: not a hex secp256k1 private key", key_file.display()))
}

/// How long `/health` answers 503 before a process with a stopped actor shuts down.
const FATAL_GRACE: Duration = Duration::from_secs(1);

/// Runs until a signal, or until an actor stops (`stopped` resolves with its name) on a fatal
/// error: then `/health` says so and the caller shuts the process down as a whole and exits
/// non-zero, for its supervisor to restart it. Returns the cause in that case.
async fn until_signal_or_fatal(
    stopped: impl std::future::Future<Output = String>,
    health: &Health,
) -> Result<Option<String>> {
    let fatal = tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            None
        }
        cause = stopped => Some(cause),
    };
    match &fatal {
        None => info!("shutting down"),
        Some(cause) => {
            tracing::error!(cause, "fatal: an actor stopped; shutting down");
            health.fail(cause);
            // /health says so for a moment before the process goes, for a probe to see why.
            tokio::time::sleep(FATAL_GRACE).await;
        }
    }
    Ok(fatal)
}

pub(crate) async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
