//! The accepting side: authenticates committee members and answers their requests in order.

use crate::admission::{SourceSlot, SourceSlots};
use crate::error::{HandlerError, NetworkError};
use crate::metrics::{
    GaugeGuard, NetworkMetrics, INBOUND, REFUSED_HANDSHAKE_SLOTS, REFUSED_SOURCE_SLOTS,
};
use crate::wire::{error_body, FrameCodec, Response, STATUS_ERROR, STATUS_OK};
use crate::{tls, NetworkConfig};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, SinkExt, StreamExt};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::{FramedRead, FramedWrite};
use weft_types::{AuthorityIndex, Committee, KeyPair};

/// Application logic behind a [`Server`].
///
/// The futures of up to [`NetworkConfig::max_concurrent_requests`] requests of one connection
/// are polled concurrently, on that connection's task; responses are sent in request order.
/// CPU-heavy work should therefore be moved off that task (`spawn_blocking`, a worker task),
/// or it delays the other requests of the connection. A future is dropped unfinished if its
/// connection closes or the server shuts down, so it must leave consistent state at every
/// await point; a panic is answered with an error. `request` is untrusted input from the
/// authenticated committee member `peer`.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        peer: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>>;
}

/// Namespace for [`Server::spawn`].
pub struct Server;

impl Server {
    /// Binds `listen_address` and serves, on background tasks, every connection whose client
    /// presents a network key of `committee`; others are refused during the TLS handshake.
    /// Must be called within a Tokio runtime. Serving stops when the handle is dropped.
    pub async fn spawn(
        listen_address: SocketAddr,
        committee: Arc<Committee>,
        keypair: &KeyPair,
        handler: Arc<dyn Handler>,
        config: NetworkConfig,
        metrics: Arc<NetworkMetrics>,
    ) -> Result<ServerHandle, NetworkError> {
        let identity = tls::TlsIdentity::new(keypair)?;
        let acceptor =
            TlsAcceptor::from(tls::server_config(&identity, committee.clone(), &metrics)?);
        let listener = TcpListener::bind(listen_address).await?;
        let local_address = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let committee_ips = committee
            .authorities()
            .flat_map(|(_, a)| {
                let workers = a
                    .worker_addresses
                    .values()
                    .chain(a.transaction_addresses.values());
                std::iter::once(&a.primary_address).chain(workers)
            })
            .map(|address| address.ip().to_canonical())
            .collect();
        let shared = Arc::new(Shared {
            committee,
            handler,
            handshakes: Arc::new(Semaphore::new(config.max_pending_handshakes)),
            reserved_handshakes: Arc::new(Semaphore::new(config.reserved_handshakes)),
            source_slots: SourceSlots::new(config.max_pending_handshakes_per_source.max(1)),
            committee_ips,
            config,
            metrics,
            acceptor,
            registry: Mutex::new(Registry::default()),
        });
        let task = tokio::spawn(accept_loop(listener, shared, shutdown_rx));
        tracing::debug!(%local_address, "server listening");
        Ok(ServerHandle {
            local_address,
            shutdown: Some(shutdown_tx),
            task: Some(task),
        })
    }
}

/// A running server. Dropping it stops accepting and closes every connection, cancelling the
/// handlers still running; [`ServerHandle::shutdown`] does the same and waits until it is done.
pub struct ServerHandle {
    local_address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (the real port when bound to port 0).
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// Stops the server; returns once the listener and every connection are closed.
    pub async fn shutdown(mut self) {
        self.shutdown.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // Dropping the sender wakes the accept loop, which closes its connections itself.
        self.shutdown.take();
    }
}

struct Shared {
    committee: Arc<Committee>,
    handler: Arc<dyn Handler>,
    handshakes: Arc<Semaphore>,
    /// Taken only by connections from `committee_ips`, once `handshakes` has none left.
    reserved_handshakes: Arc<Semaphore>,
    /// Handshake slots held per source address.
    source_slots: SourceSlots,
    /// Every address of the committee file.
    committee_ips: HashSet<IpAddr>,
    config: NetworkConfig,
    metrics: Arc<NetworkMetrics>,
    acceptor: TlsAcceptor,
    registry: Mutex<Registry>,
}

/// Authenticated connections per authority, oldest first, to enforce the per-peer limit.
#[derive(Default)]
struct Registry {
    next_id: u64,
    by_peer: HashMap<AuthorityIndex, VecDeque<(u64, oneshot::Sender<()>)>>,
}

/// Removes a connection from the registry when it ends.
struct Registration<'a> {
    shared: &'a Shared,
    peer: AuthorityIndex,
    id: u64,
}

/// What an inbound connection holds until its handshake ends (freed when dropped).
struct HandshakeSlots {
    _permit: OwnedSemaphorePermit,
    _source: SourceSlot,
}

impl Shared {
    /// The slots for a handshake from `ip`, or the reason there is none.
    fn admit(&self, ip: IpAddr) -> Result<HandshakeSlots, &'static str> {
        let source = self.source_slots.try_take(ip).ok_or(REFUSED_SOURCE_SLOTS)?;
        let permit = self
            .handshakes
            .clone()
            .try_acquire_owned()
            .or_else(|e| match self.committee_ips.contains(&ip.to_canonical()) {
                true => self.reserved_handshakes.clone().try_acquire_owned(),
                false => Err(e),
            })
            .map_err(|_| REFUSED_HANDSHAKE_SLOTS)?;
        Ok(HandshakeSlots {
            _permit: permit,
            _source: source,
        })
    }

    /// Registers a new connection of `peer`, evicting its oldest one beyond the limit. The
    /// receiver fires when this connection is evicted in turn.
    fn register(&self, peer: AuthorityIndex) -> (Registration<'_>, oneshot::Receiver<()>) {
        let (evict_tx, evict_rx) = oneshot::channel();
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let id = registry.next_id;
        registry.next_id += 1;
        let connections = registry.by_peer.entry(peer).or_default();
        connections.push_back((id, evict_tx));
        while connections.len() > self.config.max_connections_per_peer.max(1) {
            // Dropping the sender is the eviction signal.
            connections.pop_front();
            tracing::debug!(%peer, "evicting the oldest connection of a peer");
        }
        (
            Registration {
                shared: self,
                peer,
                id,
            },
            evict_rx,
        )
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut registry = self
            .shared
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(connections) = registry.by_peer.get_mut(&self.peer) {
            connections.retain(|(id, _)| *id != self.id);
            if connections.is_empty() {
                registry.by_peer.remove(&self.peer);
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, address)) => {
                    // Unauthenticated connections are capped; past the cap, close at once.
                    match shared.admit(address.ip()) {
                        Ok(slots) => {
                            connections.spawn(serve(tcp, address, shared.clone(), slots));
                        }
                        Err(reason) => {
                            shared.metrics.connections_refused.with_label_values(&[reason]).inc();
                            tracing::debug!(%address, reason, "handshake refused, closing connection");
                        }
                    }
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve(
    tcp: TcpStream,
    address: SocketAddr,
    shared: Arc<Shared>,
    handshake: HandshakeSlots,
) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%address, "set_nodelay failed: {e}");
        return;
    }
    let accepted =
        tokio::time::timeout(shared.config.handshake_timeout, shared.acceptor.accept(tcp)).await;
    drop(handshake);
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            shared
                .metrics
                .handshake_failures
                .with_label_values(&[INBOUND])
                .inc();
            tracing::debug!(%address, "inbound handshake failed: {e}");
            return;
        }
        Err(_) => {
            shared
                .metrics
                .handshake_failures
                .with_label_values(&[INBOUND])
                .inc();
            tracing::debug!(%address, "inbound handshake timed out");
            return;
        }
    };
    // The verifier admitted the key, so both lookups succeed; stay defensive anyway.
    let peer = tls::peer_public_key(stream.get_ref().1)
        .and_then(|key| shared.committee.index_of_network_key(&key));
    let Some(peer) = peer else {
        tracing::warn!(%address, "authenticated peer has no committee index");
        return;
    };
    let (_registration, evicted) = shared.register(peer);
    let _gauge = GaugeGuard::new(shared.metrics.connections.with_label_values(&[INBOUND]));
    match serve_requests(stream, peer, &shared, evicted).await {
        Ok(()) => tracing::debug!(%peer, %address, "connection closed"),
        Err(e) => tracing::debug!(%peer, %address, "connection closed: {e}"),
    }
}

/// Reads requests, runs the handler on each and writes the responses in request order.
///
/// Handler futures run concurrently on this connection's task (no task per request: for
/// small requests the spawn and cross-thread wake-ups cost more than the work). While a
/// response is being written nothing is read, which can only stall this connection: the client
/// reads responses independently of writing requests.
async fn serve_requests(
    stream: TlsStream<TcpStream>,
    peer: AuthorityIndex,
    shared: &Shared,
    mut evicted: oneshot::Receiver<()>,
) -> Result<(), NetworkError> {
    let config = &shared.config;
    let max_message_size = config.max_message_size;
    let (read_half, write_half) = tokio::io::split(stream);
    let mut reader = FramedRead::new(
        read_half,
        FrameCodec::<()>::new(max_message_size, &shared.metrics, INBOUND),
    );
    // The status byte makes a response one byte longer than the largest payload.
    let mut writer = FramedWrite::new(
        write_half,
        FrameCodec::<Response>::new(max_message_size.saturating_add(1), &shared.metrics, INBOUND),
    );
    let max_requests = config.max_concurrent_requests.max(1);
    let byte_budget = config.max_pending_request_bytes.max(1);
    let mut pending = FuturesOrdered::new();
    // Request bytes held by `pending`; one more frame may be read while below the budget.
    let mut pending_bytes = 0usize;
    let mut reading = true;
    loop {
        if !reading && pending.is_empty() {
            return Ok(());
        }
        let can_read = reading && pending.len() < max_requests && pending_bytes < byte_budget;
        tokio::select! {
            _ = &mut evicted => return Err(NetworkError::Closed),
            frame = reader.next(), if can_read => match frame {
                Some(frame) => {
                    let request = frame?.freeze();
                    let len = request.len();
                    pending_bytes += len;
                    let handling = AssertUnwindSafe(shared.handler.handle(peer, request)).catch_unwind();
                    pending.push_back(async move { (len, handling.await) });
                }
                // The client finished sending: answer what was read, then close.
                None => reading = false,
            },
            Some((len, result)) = pending.next() => {
                pending_bytes -= len;
                writer.feed(response(result, max_message_size)).await?;
                // Batch responses that are already complete into one flush.
                while let Some(Some((len, result))) = pending.next().now_or_never() {
                    pending_bytes -= len;
                    writer.feed(response(result, max_message_size)).await?;
                }
                writer.flush().await?;
            }
        }
    }
}

fn response(
    result: std::thread::Result<Result<Bytes, HandlerError>>,
    max_message_size: usize,
) -> Response {
    let result = result.unwrap_or_else(|_| {
        tracing::error!("request handler panicked");
        Err(HandlerError::new("internal error"))
    });
    match result {
        Ok(body) if body.len() <= max_message_size => Response {
            status: STATUS_OK,
            body,
        },
        Ok(body) => {
            tracing::warn!(
                size = body.len(),
                "handler response exceeds max_message_size"
            );
            Response {
                status: STATUS_ERROR,
                body: error_body("response too large", max_message_size),
            }
        }
        Err(e) => Response {
            status: STATUS_ERROR,
            body: error_body(e.message(), max_message_size),
        },
    }
}
