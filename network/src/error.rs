use std::fmt;
use thiserror::Error;

/// Why a network operation failed. Anything caused by a peer is reported here, never by a panic.
#[derive(Debug, Error)]
pub enum NetworkError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    /// The peer's certificate does not carry an ed25519 key we accept.
    #[error("peer is not an accepted committee member: {0}")]
    UnknownPeer(String),
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { size: usize, limit: usize },
    /// The connection, the sender or the server is gone.
    #[error("connection closed")]
    Closed,
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// The peer sent something that is not valid in the protocol.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// The remote handler answered with an error; the text comes from the peer and is untrusted.
    #[error("remote handler error: {0}")]
    Remote(String),
    #[error("certificate generation failed: {0}")]
    Certificate(String),
}

/// A handler's refusal to answer a request. Its message is sent to the requester (truncated to
/// [`HandlerError::MAX_LEN`] bytes), so it must not contain secrets.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct HandlerError(String);

impl HandlerError {
    /// Longest message that goes on the wire.
    pub const MAX_LEN: usize = 1024;

    pub fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
