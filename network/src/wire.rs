//! Framing and dialling.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes. A request frame is the
//! request payload. A response frame is a status byte ([`STATUS_OK`] or [`STATUS_ERROR`])
//! followed by the response payload or by the handler's UTF-8 error message.

use crate::error::NetworkError;
use crate::metrics::{NetworkMetrics, OUTBOUND};
use crate::{tls, NetworkConfig, Peer};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use prometheus::IntCounter;
use std::marker::PhantomData;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec, LengthDelimitedCodecError};

pub(crate) const STATUS_OK: u8 = 0;
pub(crate) const STATUS_ERROR: u8 = 1;
const HEADER_LEN: usize = 4;

/// A response as written by the server.
pub(crate) struct Response {
    pub status: u8,
    pub body: Bytes,
}

/// Length-delimited frames with a hard size limit, checked on the header before any of the
/// frame is buffered, and byte counters. `T` is what it encodes: `Bytes` (requests) or
/// [`Response`].
pub(crate) struct FrameCodec<T> {
    inner: LengthDelimitedCodec,
    max_frame: usize,
    too_large: IntCounter,
    sent: IntCounter,
    received: IntCounter,
    encodes: PhantomData<fn(T)>,
}

impl<T> FrameCodec<T> {
    /// `max_frame` bounds frames in both directions; `direction` labels the too-large metric.
    pub(crate) fn new(max_frame: usize, metrics: &NetworkMetrics, direction: &str) -> Self {
        Self {
            inner: LengthDelimitedCodec::builder()
                .length_field_length(HEADER_LEN)
                .max_frame_length(max_frame)
                .new_codec(),
            max_frame,
            too_large: metrics.frames_too_large.with_label_values(&[direction]),
            sent: metrics.bytes_sent.clone(),
            received: metrics.bytes_received.clone(),
            encodes: PhantomData,
        }
    }

    fn check_len(&self, size: usize) -> Result<(), NetworkError> {
        if size > self.max_frame {
            return Err(NetworkError::FrameTooLarge {
                size,
                limit: self.max_frame,
            });
        }
        Ok(())
    }
}

impl<T> Decoder for FrameCodec<T> {
    type Item = BytesMut;
    type Error = NetworkError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, NetworkError> {
        match self.inner.decode(src) {
            Ok(frame) => {
                if let Some(frame) = &frame {
                    self.received.inc_by((HEADER_LEN + frame.len()) as u64);
                }
                Ok(frame)
            }
            Err(e)
                if e.get_ref()
                    .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>()) =>
            {
                self.too_large.inc();
                // The inner codec rejects a header without consuming it: report what it announced.
                let size = src.get(..HEADER_LEN).map_or(0, |header| {
                    let mut len = [0u8; HEADER_LEN];
                    len.copy_from_slice(header);
                    u32::from_be_bytes(len) as usize
                });
                Err(NetworkError::FrameTooLarge {
                    size,
                    limit: self.max_frame,
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Encoder<Bytes> for FrameCodec<Bytes> {
    type Error = NetworkError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), NetworkError> {
        self.check_len(item.len())?;
        self.sent.inc_by((HEADER_LEN + item.len()) as u64);
        self.inner.encode(item, dst)?;
        Ok(())
    }
}

impl Encoder<Response> for FrameCodec<Response> {
    type Error = NetworkError;

    fn encode(&mut self, item: Response, dst: &mut BytesMut) -> Result<(), NetworkError> {
        // Written by hand to avoid copying the body into a status-prefixed buffer first.
        let len = item.body.len() + 1;
        self.check_len(len)?;
        let header = u32::try_from(len).map_err(|_| NetworkError::FrameTooLarge {
            size: len,
            limit: self.max_frame,
        })?;
        dst.reserve(HEADER_LEN + len);
        dst.put_u32(header);
        dst.put_u8(item.status);
        dst.put_slice(&item.body);
        self.sent.inc_by((HEADER_LEN + len) as u64);
        Ok(())
    }
}

/// Splits a response frame into the handler's result.
pub(crate) fn decode_response(
    mut frame: BytesMut,
) -> Result<Result<Bytes, NetworkError>, NetworkError> {
    if frame.is_empty() {
        return Err(NetworkError::Protocol("empty response frame"));
    }
    let status = frame.get_u8();
    match status {
        STATUS_OK => Ok(Ok(frame.freeze())),
        STATUS_ERROR => {
            let cut = frame.len().min(crate::HandlerError::MAX_LEN);
            let message = String::from_utf8_lossy(&frame[..cut]).into_owned();
            Ok(Err(NetworkError::Remote(message)))
        }
        _ => Err(NetworkError::Protocol("unknown response status")),
    }
}

/// The wire form of a handler error: its message, cut on a character boundary to at most
/// `limit` (and [`crate::HandlerError::MAX_LEN`]) bytes.
pub(crate) fn error_body(message: &str, limit: usize) -> Bytes {
    let mut cut = message.len().min(crate::HandlerError::MAX_LEN).min(limit);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    Bytes::copy_from_slice(&message.as_bytes()[..cut])
}

/// Dials `peer` and completes a TLS handshake in which it must present `peer.network_key`.
pub(crate) async fn connect(
    peer: &Peer,
    client_config: Arc<rustls::ClientConfig>,
    config: &NetworkConfig,
    metrics: &NetworkMetrics,
) -> Result<TlsStream<TcpStream>, NetworkError> {
    let tcp = tokio::time::timeout(config.connect_timeout, TcpStream::connect(peer.address))
        .await
        .map_err(|_| NetworkError::Timeout("connecting"))??;
    // Requests are written whole; waiting to coalesce them only adds latency.
    tcp.set_nodelay(true)?;
    let handshake = TlsConnector::from(client_config).connect(tls::server_name(), tcp);
    match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => {
            metrics
                .handshake_failures
                .with_label_values(&[OUTBOUND])
                .inc();
            let tls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            Err(match tls_error {
                Some(tls_error) => NetworkError::Tls(tls_error.clone()),
                None => NetworkError::Io(e),
            })
        }
        Err(_) => {
            metrics
                .handshake_failures
                .with_label_values(&[OUTBOUND])
                .inc();
            Err(NetworkError::Timeout("in the TLS handshake"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_header_is_rejected_before_the_body_arrives() {
        let metrics = NetworkMetrics::unregistered();
        let mut codec = FrameCodec::<Bytes>::new(16, &metrics, OUTBOUND);
        let mut src = BytesMut::from(&17u32.to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut src),
            Err(NetworkError::FrameTooLarge {
                size: 17,
                limit: 16
            })
        ));
        assert_eq!(
            metrics
                .frames_too_large
                .with_label_values(&[OUTBOUND])
                .get(),
            1
        );
    }

    #[test]
    fn frames_split_across_reads_decode_whole() {
        let metrics = NetworkMetrics::unregistered();
        let mut encoder = FrameCodec::<Bytes>::new(1000, &metrics, OUTBOUND);
        let mut decoder = FrameCodec::<()>::new(1000, &metrics, OUTBOUND);
        let mut wire = BytesMut::new();
        let payload = Bytes::from(vec![0xffu8; 600]);
        encoder.encode(payload.clone(), &mut wire).unwrap();
        encoder.encode(payload.clone(), &mut wire).unwrap();
        let mut src = BytesMut::new();
        let mut frames = Vec::new();
        while !wire.is_empty() {
            src.extend_from_slice(&wire.split_to(wire.len().min(7)));
            while let Some(frame) = decoder.decode(&mut src).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames, vec![payload.clone(), payload]);
    }

    #[test]
    fn response_round_trip_and_bad_status() {
        let metrics = NetworkMetrics::unregistered();
        let mut codec = FrameCodec::<Response>::new(64, &metrics, OUTBOUND);
        let mut buf = BytesMut::new();
        let body = Bytes::from_static(b"hello");
        codec
            .encode(
                Response {
                    status: STATUS_OK,
                    body: body.clone(),
                },
                &mut buf,
            )
            .unwrap();
        let frame = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(decode_response(frame).unwrap().unwrap(), body);
        assert!(decode_response(BytesMut::new()).is_err());
        assert!(decode_response(BytesMut::from(&[7u8, 1, 2][..])).is_err());
        let err = decode_response(BytesMut::from(&[STATUS_ERROR, 0xff, b'x'][..])).unwrap();
        assert!(matches!(err, Err(NetworkError::Remote(m)) if m.ends_with('x')));
    }

    #[test]
    fn error_body_cuts_on_char_boundary() {
        let long = "é".repeat(crate::HandlerError::MAX_LEN);
        let body = error_body(&long, usize::MAX);
        assert!(body.len() <= crate::HandlerError::MAX_LEN);
        assert!(std::str::from_utf8(&body).is_ok());
        assert_eq!(&error_body("abcdef", 3)[..], b"abc");
    }
}
