//! Authenticated request/response networking between committee members.
//!
//! Every link is TCP + TLS 1.3 with mutual authentication: each side presents a self-signed
//! certificate made from its authority's ed25519 *network key*, and each side accepts the other
//! only if that key is the one it expects (a committee member, for a server; exactly the dialled
//! peer, for a client). There is no certificate authority: the committee file is the trust root.
//!
//! On an authenticated connection, the client writes length-delimited request frames and the
//! server answers every request with exactly one response frame, in request order (pipelined
//! RPC). A response frame is one status byte followed by the payload (see `wire`).
//!
//! * [`Server`] accepts connections and runs a [`Handler`] for each request.
//! * [`ReliableSender`] keeps one connection per peer and re-sends unanswered requests across
//!   reconnections until they are answered or the caller drops the [`CancelHandler`].
//! * [`BestEffortSender`] sends once and drops messages rather than blocking or retrying.
//!
//! TCP was chosen over QUIC (quinn) by measurement (`examples/transport_bench.rs`, loopback,
//! 500 kB requests): TCP + rustls moved about 3x the bytes per second at about a third of the
//! CPU per GB, and for 1 kB requests it still cost less CPU per GB. QUIC exists only there.

pub mod actors;
pub mod admission;
mod connection;
mod error;
mod metrics;
mod sender;
mod server;
pub mod tls;
mod wire;

pub use error::{HandlerError, NetworkError};
pub use metrics::NetworkMetrics;
pub use sender::{BestEffortSender, CancelHandler, ReliableSender, SENDER_CHANNEL_CAPACITY};
pub use server::{Handler, Server, ServerHandle};

use std::net::SocketAddr;
use std::time::Duration;
use weft_types::PublicKey;

/// Where a peer listens and the network key it must present in the TLS handshake.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub address: SocketAddr,
    pub network_key: PublicKey,
}

impl Peer {
    pub fn new(address: SocketAddr, network_key: PublicKey) -> Self {
        Self {
            address,
            network_key,
        }
    }
}

/// Limits and timeouts shared by servers and senders. Both ends of a link should use the same
/// `max_message_size`; a frame above the receiver's limit closes the connection.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Largest request or response payload, in bytes. A peer announcing a larger frame is
    /// disconnected before the frame is read; a local request above it fails at once.
    pub max_message_size: usize,
    /// Requests of one inbound connection that may be in a handler or awaiting their turn to
    /// be answered. When reached, the server stops reading from that connection.
    pub max_concurrent_requests: usize,
    /// Bytes of request payload that one inbound connection may hold in the same state.
    pub max_pending_request_bytes: usize,
    /// Requests a sender writes to one connection before it waits for responses.
    pub max_in_flight_requests: usize,
    /// Authenticated connections a server keeps per authority; a newer one evicts the oldest,
    /// so a peer that reconnects after a silent network failure is never locked out.
    pub max_connections_per_peer: usize,
    /// Inbound connections still in the TLS handshake (unauthenticated); more are closed at
    /// once, except from a committee member's address (below).
    pub max_pending_handshakes: usize,
    /// Of those, how many one source (IPv4 address, IPv6 /64) may hold: a stranger cannot take
    /// every slot from one host.
    pub max_pending_handshakes_per_source: usize,
    /// Handshake slots on top of `max_pending_handshakes` that only connections from an address
    /// of the committee file may take: strangers holding every other slot do not keep a
    /// restarted peer from reconnecting. (The address is only a hint; the handshake still
    /// authenticates the key.)
    pub reserved_handshakes: usize,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// First delay of the reliable sender's exponential reconnection backoff.
    pub min_backoff: Duration,
    /// Cap of that backoff.
    pub max_backoff: Duration,
}

/// Default [`NetworkConfig::max_message_size`]: 8 MiB, well above a 500 kB batch.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 8 << 20;

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_concurrent_requests: 64,
            max_pending_request_bytes: 32 << 20,
            max_in_flight_requests: 64,
            max_connections_per_peer: 2,
            max_pending_handshakes: 256,
            max_pending_handshakes_per_source: 16,
            reserved_handshakes: 64,
            connect_timeout: Duration::from_secs(5),
            // A TLS 1.3 handshake takes one round trip and a signature: two seconds are
            // generous on any WAN, and they are how long a stranger's idle socket holds a slot.
            handshake_timeout: Duration::from_secs(2),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Aborts a spawned task when dropped, so that tasks never outlive their owner.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
