//! The sending side: one task and one bounded queue per peer.

use crate::connection::{Mode, PeerTask, Request};
use crate::error::NetworkError;
use crate::metrics::NetworkMetrics;
use crate::{tls, AbortOnDrop, NetworkConfig, Peer};
use bytes::Bytes;
use futures::FutureExt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
use weft_types::KeyPair;

/// Capacity of each per-peer queue. A reliable sender's callers wait when it is full; a
/// best-effort sender drops the message instead.
pub const SENDER_CHANNEL_CAPACITY: usize = 1_000;

/// The response to one request of a [`ReliableSender`]. Dropping it cancels the request: it is
/// not sent, or not re-sent, any more (one already written may still reach the handler).
#[must_use = "dropping a CancelHandler cancels its request"]
pub struct CancelHandler(oneshot::Receiver<Result<Bytes, NetworkError>>);

impl CancelHandler {
    fn failed(error: NetworkError) -> Self {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(error));
        Self(rx)
    }
}

impl Future for CancelHandler {
    /// The peer's response, its handler's error (`Remote`), or `Closed` if the sender is gone.
    type Output = Result<Bytes, NetworkError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0
            .poll_unpin(cx)
            .map(|result| result.unwrap_or(Err(NetworkError::Closed)))
    }
}

/// Sends requests that must arrive: each is re-sent over new connections (with exponential
/// backoff and jitter between attempts) until the peer answers it or the caller drops its
/// [`CancelHandler`]. Requests to one peer are written in the order they were sent.
///
/// Cloning is cheap and clones share connections. When the last clone is dropped, every peer
/// task stops and pending handlers resolve to [`NetworkError::Closed`]. Must be used within a
/// Tokio runtime.
#[derive(Clone)]
pub struct ReliableSender {
    inner: Arc<Senders>,
}

impl ReliableSender {
    pub fn new(
        keypair: &KeyPair,
        config: NetworkConfig,
        metrics: Arc<NetworkMetrics>,
    ) -> Result<Self, NetworkError> {
        Ok(Self {
            inner: Arc::new(Senders::new(keypair, config, metrics, Mode::Reliable)?),
        })
    }

    /// Queues `request` for `peer`, waiting while that peer's queue is full, and returns the
    /// handle to its response. A request above `max_message_size` fails at once.
    pub async fn send(&self, peer: &Peer, request: Bytes) -> CancelHandler {
        let limit = self.inner.config.max_message_size;
        if request.len() > limit {
            return CancelHandler::failed(NetworkError::FrameTooLarge {
                size: request.len(),
                limit,
            });
        }
        let tx = match self.inner.channel(peer) {
            Ok(tx) => tx,
            Err(e) => return CancelHandler::failed(e),
        };
        let (reply, rx) = oneshot::channel();
        let metrics = &self.inner.metrics;
        metrics.channel_depth.inc();
        let queued = Request {
            payload: request,
            reply: Some(reply),
        };
        if tx.send(queued).await.is_err() {
            metrics.channel_depth.dec();
            return CancelHandler::failed(NetworkError::Closed);
        }
        CancelHandler(rx)
    }

    /// Sends `request` to every peer; the handlers are in the order of `peers`.
    pub async fn broadcast(&self, peers: &[Peer], request: Bytes) -> Vec<CancelHandler> {
        let mut handlers = Vec::with_capacity(peers.len());
        for peer in peers {
            handlers.push(self.send(peer, request.clone()).await);
        }
        handlers
    }
}

/// Sends messages that may be lost, never making the caller wait: a message is dropped (and
/// counted in `best_effort_dropped`) when the peer's queue is full, when the one connection
/// attempt made for it fails, or when its connection fails before it is answered. Responses
/// are read and discarded. Cloning is cheap; must be used within a Tokio runtime.
#[derive(Clone)]
pub struct BestEffortSender {
    inner: Arc<Senders>,
}

impl BestEffortSender {
    pub fn new(
        keypair: &KeyPair,
        config: NetworkConfig,
        metrics: Arc<NetworkMetrics>,
    ) -> Result<Self, NetworkError> {
        Ok(Self {
            inner: Arc::new(Senders::new(keypair, config, metrics, Mode::BestEffort)?),
        })
    }

    /// Queues `message` for `peer` without waiting. Returns whether it was queued.
    pub fn send(&self, peer: &Peer, message: Bytes) -> bool {
        let metrics = &self.inner.metrics;
        let queued = message.len() <= self.inner.config.max_message_size
            && self.inner.channel(peer).is_ok_and(|tx| {
                metrics.channel_depth.inc();
                let sent = tx
                    .try_send(Request {
                        payload: message,
                        reply: None,
                    })
                    .is_ok();
                if !sent {
                    metrics.channel_depth.dec();
                }
                sent
            });
        if !queued {
            metrics.best_effort_dropped.inc();
        }
        queued
    }

    /// Sends `message` to every peer; returns how many queued it.
    pub fn broadcast(&self, peers: &[Peer], message: Bytes) -> usize {
        peers
            .iter()
            .filter(|peer| self.send(peer, message.clone()))
            .count()
    }
}

/// Per-peer queues and tasks, shared by the clones of one sender.
struct Senders {
    identity: tls::TlsIdentity,
    config: NetworkConfig,
    metrics: Arc<NetworkMetrics>,
    mode: Mode,
    peers: Mutex<HashMap<Peer, PeerChannel>>,
}

struct PeerChannel {
    tx: mpsc::Sender<Request>,
    _task: AbortOnDrop<()>,
}

impl Senders {
    fn new(
        keypair: &KeyPair,
        config: NetworkConfig,
        metrics: Arc<NetworkMetrics>,
        mode: Mode,
    ) -> Result<Self, NetworkError> {
        Ok(Self {
            identity: tls::TlsIdentity::new(keypair)?,
            config,
            metrics,
            mode,
            peers: Mutex::new(HashMap::new()),
        })
    }

    /// The queue of `peer`, starting its task on first use (or if it ever stopped).
    fn channel(&self, peer: &Peer) -> Result<mpsc::Sender<Request>, NetworkError> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = peers.get(peer).filter(|c| !c.tx.is_closed()) {
            return Ok(channel.tx.clone());
        }
        let client_config =
            tls::client_config(&self.identity, peer.network_key.clone(), &self.metrics)?;
        let (tx, rx) = mpsc::channel(SENDER_CHANNEL_CAPACITY);
        let task = PeerTask {
            peer: peer.clone(),
            client_config,
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            mode: self.mode,
        };
        let task = AbortOnDrop(task.spawn(rx));
        peers.insert(
            peer.clone(),
            PeerChannel {
                tx: tx.clone(),
                _task: task,
            },
        );
        Ok(tx)
    }
}
