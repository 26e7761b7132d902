//! Helpers shared by the integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use futures::future::BoxFuture;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use weft_network::{
    Handler, HandlerError, NetworkConfig, NetworkMetrics, Peer, ReliableSender, Server,
    ServerHandle,
};
use weft_test_utils::CommitteeFixture;
use weft_types::AuthorityIndex;

/// Guard against hangs; never used to wait for something to happen.
pub const GUARD: Duration = Duration::from_secs(30);

pub async fn guarded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(GUARD, future)
        .await
        .expect("test timed out")
}

/// Answers `x` with `re:x` (an error for `fail`, a panic for `panic`), after yielding a request-dependent number
/// of times so that concurrent requests finish out of order; reports every request it sees.
pub struct Echo {
    pub calls: AtomicUsize,
    seen: mpsc::Sender<(AuthorityIndex, Bytes)>,
}

impl Echo {
    pub fn new() -> (Arc<Self>, mpsc::Receiver<(AuthorityIndex, Bytes)>) {
        let (seen, rx) = mpsc::channel(100_000);
        (
            Arc::new(Self {
                calls: AtomicUsize::new(0),
                seen,
            }),
            rx,
        )
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Handler for Echo {
    fn handle(
        &self,
        peer: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.seen
                .try_send((peer, request.clone()))
                .expect("test channel has room");
            for _ in 0..request.last().map_or(0, |b| b % 8) {
                tokio::task::yield_now().await;
            }
            match &request[..] {
                b"fail" => return Err(HandlerError::new("nope")),
                b"panic" => panic!("handler panics on request"),
                _ => {}
            }
            let mut response = b"re:".to_vec();
            response.extend_from_slice(&request);
            Ok(Bytes::from(response))
        })
    }
}

pub fn fixture() -> CommitteeFixture {
    CommitteeFixture::new(4, 1, 7)
}

pub fn a(i: u16) -> AuthorityIndex {
    AuthorityIndex(i)
}

/// Serves authority `index` of `fixture` on `address` (port 0 for any).
pub async fn serve(
    fixture: &CommitteeFixture,
    index: u16,
    address: SocketAddr,
    handler: Arc<dyn Handler>,
    config: NetworkConfig,
    metrics: Arc<NetworkMetrics>,
) -> ServerHandle {
    Server::spawn(
        address,
        Arc::new(fixture.committee.clone()),
        &fixture.keys[index as usize].network,
        handler,
        config,
        metrics,
    )
    .await
    .expect("server starts")
}

/// Serves authority `index` of `fixture` on any port, with the default config and metrics of
/// its own.
pub async fn serve_default(
    fixture: &CommitteeFixture,
    index: u16,
    handler: Arc<dyn Handler>,
) -> ServerHandle {
    serve_default_at(fixture, index, any_port(), handler).await
}

/// [`serve_default`] on `address`.
pub async fn serve_default_at(
    fixture: &CommitteeFixture,
    index: u16,
    address: SocketAddr,
    handler: Arc<dyn Handler>,
) -> ServerHandle {
    serve(
        fixture,
        index,
        address,
        handler,
        NetworkConfig::default(),
        metrics(),
    )
    .await
}

/// [`serve_default`] counting into `metrics`.
pub async fn serve_default_with_metrics(
    fixture: &CommitteeFixture,
    index: u16,
    handler: Arc<dyn Handler>,
    metrics: Arc<NetworkMetrics>,
) -> ServerHandle {
    serve(
        fixture,
        index,
        any_port(),
        handler,
        NetworkConfig::default(),
        metrics,
    )
    .await
}

/// A reliable sender for authority `index` of `fixture`, with the default config and metrics of
/// its own.
pub fn reliable_sender(fixture: &CommitteeFixture, index: u16) -> ReliableSender {
    ReliableSender::new(
        &fixture.keys[index as usize].network,
        NetworkConfig::default(),
        metrics(),
    )
    .expect("sender starts")
}

pub fn peer(fixture: &CommitteeFixture, index: u16, server: &ServerHandle) -> Peer {
    Peer::new(
        server.local_address(),
        fixture.keys[index as usize].network.public(),
    )
}

pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An address nobody listens on (until a test binds it again).
pub fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub fn metrics() -> Arc<NetworkMetrics> {
    Arc::new(NetworkMetrics::unregistered())
}
