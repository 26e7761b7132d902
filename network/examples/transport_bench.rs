//! Throughput and CPU cost of moving request frames over loopback, per transport.
//!
//! A client and a server run in this process, authenticated with real committee network keys
//! through the mutual-TLS configs of `weft_network::tls`. The client writes `--message-size`
//! byte requests, at most `--pipelining` of them unanswered, and the server answers each with
//! an 8-byte frame. Reported: throughput (MB/s, 1 MB = 10^6 bytes) and CPU seconds (user + sys
//! of the whole process, so both ends) per GB (10^9 bytes) of request payload.
//!
//! * `tcp`:  TCP + tokio-rustls, length-delimited frames.
//! * `quic`: quinn, the same frames on one long-lived bidirectional stream.
//! * `lib`:  the production API (`Server` + `ReliableSender`), which is TCP + rustls.
//!
//! `tcp` and `quic` share all framing code, so only the transport differs.
//!
//!     cargo run --release -p weft-network --example transport_bench -- --transport tcp

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use weft_network::{
    tls, Handler, HandlerError, NetworkConfig, NetworkMetrics, Peer, ReliableSender, Server,
};
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, Committee, KeyPair};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Transport {
    Tcp,
    Quic,
    Lib,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// Bytes per request.
    #[arg(long, default_value_t = 500_000)]
    message_size: usize,
    /// Request payload to move, in MB (10^6 bytes).
    #[arg(long, default_value_t = 2_000)]
    total_mb: u64,
    /// Requests written before waiting for answers.
    #[arg(long, default_value_t = 16)]
    pipelining: usize,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

const ACK: &[u8] = b"ackackac";

// The node binary runs on jemalloc; measure with the allocator production uses.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let fixture = CommitteeFixture::new(4, 1, 42);
    let count = usize::try_from(args.total_mb * 1_000_000 / args.message_size as u64)?.max(1);
    let setup = Setup {
        committee: Arc::new(fixture.committee.clone()),
        server_key: fixture.keys[0].network.copy(),
        client_key: fixture.keys[1].network.copy(),
        payload: Bytes::from(vec![0xa5u8; args.message_size]),
        count,
        window: args.pipelining,
    };

    let (elapsed, cpu) = match args.transport {
        Transport::Tcp => bench_tcp(setup).await?,
        Transport::Quic => bench_quic(setup).await?,
        Transport::Lib => bench_lib(setup).await?,
    };
    let bytes = (count * args.message_size) as f64;
    println!(
        "transport={:?} message_size={} messages={} pipelining={} seconds={:.3} MB/s={:.1} cpu_seconds={:.3} cpu_seconds_per_GB={:.3}",
        args.transport,
        args.message_size,
        count,
        args.pipelining,
        elapsed.as_secs_f64(),
        bytes / 1e6 / elapsed.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() / (bytes / 1e9),
    );
    Ok(())
}

/// What every transport is run with: the committee, the two ends' keys, and `count` requests of
/// `payload`, at most `window` of them unanswered.
struct Setup {
    committee: Arc<Committee>,
    server_key: KeyPair,
    client_key: KeyPair,
    payload: Bytes,
    count: usize,
    window: usize,
}

impl Setup {
    /// The library's TLS configs for the server and the client end.
    fn tls_configs(
        &self,
    ) -> anyhow::Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> {
        let metrics = NetworkMetrics::unregistered();
        let server_tls = tls::server_config(
            &tls::TlsIdentity::new(&self.server_key)?,
            self.committee.clone(),
            &metrics,
        )?;
        let client_tls = tls::client_config(
            &tls::TlsIdentity::new(&self.client_key)?,
            self.server_key.public(),
            &metrics,
        )?;
        Ok((server_tls, client_tls))
    }
}

/// User + system CPU time of this process so far, and its minor page faults.
fn cpu_time() -> (Duration, i64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes into the provided, properly sized struct.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    (tv(usage.ru_utime) + tv(usage.ru_stime), usage.ru_minflt)
}

/// Runs `transfer` and returns its wall-clock and CPU time.
async fn measure<F: std::future::Future<Output = anyhow::Result<()>>>(
    transfer: F,
) -> anyhow::Result<(Duration, Duration)> {
    let ((cpu0, faults0), t0) = (cpu_time(), Instant::now());
    transfer.await?;
    let (cpu1, faults1) = cpu_time();
    eprintln!("minor_page_faults={}", faults1 - faults0);
    Ok((t0.elapsed(), cpu1 - cpu0))
}

fn codec(max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(max)
        .new_codec()
}

async fn flush<W: AsyncWrite + Unpin>(
    writer: &mut FramedWrite<W, LengthDelimitedCodec>,
) -> std::io::Result<()> {
    SinkExt::<Bytes>::flush(writer).await
}

/// Server side of one stream: answers every request frame with an ACK frame. Flushes only
/// before waiting for more input, as the library's server does.
async fn serve_stream<R, W>(read: R, write: W, max: usize) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FramedRead::new(read, codec(max));
    let mut writer = FramedWrite::new(write, codec(max));
    loop {
        let frame = match reader.next().now_or_never() {
            Some(frame) => frame,
            None => {
                flush(&mut writer).await?;
                reader.next().await
            }
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        std::hint::black_box(frame?.len());
        writer.feed(Bytes::from_static(ACK)).await?;
    }
}

/// Client side of one stream: `setup.count` requests of `setup.payload`, at most `setup.window`
/// unanswered.
async fn drive_stream<R, W>(read: R, write: W, setup: &Setup) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let max = setup.payload.len() + 16;
    let mut reader = FramedRead::new(read, codec(max));
    let mut writer = FramedWrite::new(write, codec(max));
    let credit = Semaphore::new(setup.window.max(1));
    let send = async {
        for _ in 0..setup.count {
            // Flush only before waiting, as the library's sender does.
            let permit = match credit.try_acquire() {
                Ok(permit) => permit,
                Err(_) => {
                    flush(&mut writer).await?;
                    credit.acquire().await?
                }
            };
            permit.forget();
            writer.feed(setup.payload.clone()).await?;
        }
        flush(&mut writer).await?;
        anyhow::Ok(())
    };
    let receive = async {
        for _ in 0..setup.count {
            let ack = reader
                .next()
                .await
                .ok_or_else(|| anyhow!("server closed"))??;
            anyhow::ensure!(&ack[..] == ACK, "bad ack");
            credit.add_permits(1);
        }
        anyhow::Ok(())
    };
    tokio::try_join!(send, receive)?;
    Ok(())
}

async fn bench_tcp(setup: Setup) -> anyhow::Result<(Duration, Duration)> {
    let (server_tls, client_tls) = setup.tls_configs()?;
    let committee = setup.committee.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let max = setup.payload.len() + 16;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let stream = tokio_rustls::TlsAcceptor::from(server_tls)
            .accept(tcp)
            .await?;
        let key = tls::peer_public_key(stream.get_ref().1).context("no peer key")?;
        committee
            .index_of_network_key(&key)
            .context("peer not in committee")?;
        let (read, write) = tokio::io::split(stream);
        serve_stream(read, write, max).await
    });
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    let stream = tokio_rustls::TlsConnector::from(client_tls)
        .connect(tls::server_name(), tcp)
        .await?;
    let (read, write) = tokio::io::split(stream);
    let result = measure(drive_stream(read, write, &setup)).await;
    server.abort();
    result
}

async fn bench_quic(setup: Setup) -> anyhow::Result<(Duration, Duration)> {
    use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
    let (server_tls, client_tls) = setup.tls_configs()?;
    let committee = setup.committee.clone();
    // Flow-control windows large enough that they, not the transport, never limit throughput.
    let mut transport = quinn::TransportConfig::default();
    transport
        .stream_receive_window(quinn::VarInt::from_u32(32 << 20))
        .receive_window(quinn::VarInt::from_u32(64 << 20))
        .send_window(64 << 20);
    let transport = Arc::new(transport);
    let mut server_config =
        quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(server_tls)?));
    server_config.transport_config(transport.clone());
    let mut client_config =
        quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(client_tls)?));
    client_config.transport_config(transport);

    let server_endpoint =
        quinn::Endpoint::server(server_config, "127.0.0.1:0".parse::<SocketAddr>()?)?;
    let address = server_endpoint.local_addr()?;
    let max = setup.payload.len() + 16;
    let server = tokio::spawn(async move {
        let incoming = server_endpoint.accept().await.context("endpoint closed")?;
        let connection = incoming.await?;
        let certs = connection
            .peer_identity()
            .and_then(|id| {
                id.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                    .ok()
            })
            .context("no peer certificate")?;
        let key = tls::public_key_of_certificate(certs.first().context("empty chain")?)?;
        committee
            .index_of_network_key(&key)
            .context("peer not in committee")?;
        let (send, recv) = connection.accept_bi().await?;
        serve_stream(recv, send, max).await
    });
    let client_endpoint = quinn::Endpoint::client("127.0.0.1:0".parse::<SocketAddr>()?)?;
    let connection = client_endpoint
        .connect_with(client_config, address, tls::SERVER_NAME)?
        .await?;
    let (send, recv) = connection.open_bi().await?;
    let result = measure(drive_stream(recv, send, &setup)).await;
    server.abort();
    result
}

struct Ack;

impl Handler for Ack {
    fn handle(
        &self,
        _peer: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        std::hint::black_box(request.len());
        Box::pin(async { Ok(Bytes::from_static(ACK)) })
    }
}

async fn bench_lib(setup: Setup) -> anyhow::Result<(Duration, Duration)> {
    let metrics = Arc::new(NetworkMetrics::unregistered());
    let config = NetworkConfig {
        max_message_size: setup.payload.len().max(1024),
        max_in_flight_requests: setup.window.max(1),
        ..NetworkConfig::default()
    };
    let server = Server::spawn(
        "127.0.0.1:0".parse()?,
        setup.committee,
        &setup.server_key,
        Arc::new(Ack),
        config.clone(),
        metrics.clone(),
    )
    .await?;
    let sender = ReliableSender::new(&setup.client_key, config, metrics)?;
    let peer = Peer::new(server.local_address(), setup.server_key.public());
    // Connect before measuring, as the other transports do.
    sender
        .send(&peer, Bytes::from_static(b"hello"))
        .await
        .await?;
    measure(async {
        let mut pending = FuturesOrdered::new();
        for _ in 0..setup.count {
            if pending.len() >= setup.window.max(1) {
                pending.next().await.context("no pending request")??;
            }
            pending.push_back(sender.send(&peer, setup.payload.clone()).await);
        }
        while let Some(response) = pending.next().await {
            response?;
        }
        Ok(())
    })
    .await
}
