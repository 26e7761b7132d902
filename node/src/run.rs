//! `weft node run`: loads an authority's files, opens its store, brings up its authenticated
//! endpoints and keeps a live view of its links to the rest of the committee until SIGINT or
//! SIGTERM, then flushes storage.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use weft_config::{load_committee, load_keys, load_parameters, Parameters};
use weft_network::{
    Handler, HandlerError, NetworkConfig, NetworkMetrics, Peer, ReliableSender, Server,
};
use weft_storage::Store;
use weft_types::{AuthorityIndex, Committee};

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
    /// Directory of the authority's RocksDB store (created if missing).
    #[arg(long)]
    store: PathBuf,
    /// Seconds between link reports in the log.
    #[arg(long, default_value_t = 5)]
    report_every: u64,
}

/// How often each peer link is probed.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Answers link probes: echoes the probe and appends this authority's index.
struct ProbeHandler {
    me: AuthorityIndex,
}

impl Handler for ProbeHandler {
    fn handle(
        &self,
        _peer: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        let mut reply = request.to_vec();
        reply.extend_from_slice(&self.me.0.to_le_bytes());
        Box::pin(async move { Ok(Bytes::from(reply)) })
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let committee = Arc::new(load_committee(&args.committee)?);
    let keys = load_keys(&args.keys)?;
    let parameters = match &args.parameters {
        Some(p) => load_parameters(p)?,
        None => Parameters::default(),
    };
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
        .context("index from the committee")?
        .clone();
    if authority.network_key != keys.network.public() {
        bail!(
            "{}: network key does not match the committee's entry for this authority",
            args.keys.display()
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = Store::open(&args.store)
            .with_context(|| format!("opening store {}", args.store.display()))?;
        let registry = prometheus::Registry::new();
        let metrics = Arc::new(NetworkMetrics::new(&registry)?);
        let config = NetworkConfig {
            max_message_size: parameters.max_message_size,
            ..NetworkConfig::default()
        };
        let handler: Arc<dyn Handler> = Arc::new(ProbeHandler { me });
        let endpoints = std::iter::once(authority.primary_address)
            .chain(authority.worker_addresses.values().copied());
        let mut servers = Vec::new();
        for address in endpoints {
            let server = Server::spawn(
                address,
                committee.clone(),
                &keys.network,
                handler.clone(),
                config.clone(),
                metrics.clone(),
            )
            .await
            .with_context(|| format!("listening on {address}"))?;
            servers.push(server);
        }
        info!(
            authority = %me,
            primary = %authority.primary_address,
            workers = authority.worker_addresses.len(),
            store = %args.store.display(),
            "node started"
        );

        let sender = ReliableSender::new(&keys.network, config, metrics)?;
        let monitor = tokio::spawn(monitor_links(
            committee.clone(),
            me,
            sender,
            Duration::from_secs(args.report_every),
        ));

        shutdown_signal().await?;
        info!("shutting down");
        monitor.abort();
        for s in servers {
            s.shutdown().await;
        }
        store.sync().context("flushing the store")?;
        info!("store flushed; bye");
        Ok(())
    })
}

/// Probes every peer's primary each second and logs a summary of the links.
async fn monitor_links(
    committee: Arc<Committee>,
    me: AuthorityIndex,
    sender: ReliableSender,
    report_every: Duration,
) {
    let peers: Vec<(AuthorityIndex, Peer)> = committee
        .authorities()
        .filter(|(i, _)| *i != me)
        .map(|(i, a)| (i, Peer::new(a.primary_address, a.network_key.clone())))
        .collect();
    let mut last_report = Instant::now();
    let mut probe = tokio::time::interval(PROBE_INTERVAL);
    let mut nonce: u64 = 0;
    loop {
        probe.tick().await;
        nonce += 1;
        // Probe all peers at once, so one dead peer does not delay the others' probes.
        let probes = peers.iter().map(|(index, peer)| {
            let sender = &sender;
            async move {
                let started = Instant::now();
                let request = Bytes::copy_from_slice(&nonce.to_le_bytes());
                let reply =
                    tokio::time::timeout(PROBE_INTERVAL, sender.send(peer, request.clone()).await)
                        .await;
                match reply {
                    Ok(Ok(r))
                        if r.len() == 10
                            && r[..8] == request[..]
                            && r[8..] == index.0.to_le_bytes() =>
                    {
                        Some(started.elapsed())
                    }
                    Ok(Ok(_)) => {
                        warn!(peer = %index, "peer answered a probe with the wrong content");
                        None
                    }
                    Ok(Err(e)) => {
                        warn!(peer = %index, error = %e, "probe failed");
                        None
                    }
                    Err(_) => None,
                }
            }
        });
        let mut rtts: Vec<Duration> = futures::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect();
        if last_report.elapsed() >= report_every {
            last_report = Instant::now();
            rtts.sort();
            let median = rtts
                .get(rtts.len() / 2)
                .map(|d| format!("{:.2}ms", d.as_secs_f64() * 1e3));
            info!(
                up = rtts.len(),
                peers = peers.len(),
                median_rtt = median.as_deref().unwrap_or("-"),
                "links"
            );
        }
    }
}

async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
