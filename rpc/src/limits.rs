//! The per-connection parts of the server: the HTTP layer that reads the endpoint's chain
//! namespace and gives each TCP connection its rate limiter, and the RPC layer that enforces
//! the rate limit and the batch length and runs a batch's calls concurrently.

use crate::error::RpcError;
use futures::future::{BoxFuture, Either};
use futures::FutureExt;
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::server::{
    BatchResponseBuilder, HttpBody, HttpRequest, HttpResponse, MethodResponse,
};
use jsonrpsee::types::{ErrorObjectOwned, Id, Request};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The chain id named by the endpoint's path (`/<chain_id>`); absent on `/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Namespace(pub u64);

/// Calls allowed per one-second window on one connection. A fixed window, not a token
/// bucket: a client learns its budget from one number, and a burst of `limit` calls at the
/// start of each second is what a batch-sending client does anyway.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    /// Start of the current window and the calls counted in it.
    window: Mutex<(Instant, u32)>,
}

impl RateLimiter {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts one call made at `now`; false if it is over the limit (and then not counted).
    pub fn try_acquire(&self, now: Instant) -> bool {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        if window.1 >= self.limit {
            return false;
        }
        window.1 += 1;
        true
    }
}

/// HTTP middleware: one service per TCP connection (jsonrpsee builds it when it accepts the
/// connection), so the rate limiter it creates is the connection's, shared by its HTTP
/// requests or by its WebSocket session (the upgrade request's extensions go with it).
#[derive(Clone, Debug)]
pub struct ConnectionLayer {
    pub chain_ids: Arc<Vec<u64>>,
    pub rate_limit: u32,
}

impl<S> tower::Layer<S> for ConnectionLayer {
    type Service = ConnectionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectionService {
            inner,
            chain_ids: self.chain_ids.clone(),
            limiter: Arc::new(RateLimiter::new(self.rate_limit)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ConnectionService<S> {
    inner: S,
    chain_ids: Arc<Vec<u64>>,
    limiter: Arc<RateLimiter>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S> tower::Service<HttpRequest> for ConnectionService<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<HttpResponse, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest) -> Self::Future {
        let path = request.uri().path().trim_matches('/');
        if !path.is_empty() {
            match path.parse::<u64>() {
                Ok(chain_id) if self.chain_ids.contains(&chain_id) => {
                    request.extensions_mut().insert(Namespace(chain_id));
                }
                _ => {
                    let text = format!(
                        "unknown endpoint /{path}: use / or /<chain id> with one of {:?}",
                        self.chain_ids
                    );
                    return futures::future::ready(Ok(not_found(text))).boxed();
                }
            }
        }
        request.extensions_mut().insert(self.limiter.clone());
        self.inner.call(request).boxed()
    }
}

fn not_found(text: String) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(text));
    *response.status_mut() = http::StatusCode::NOT_FOUND;
    response
}

/// RPC middleware: the rate limit (each call of a batch counts), the batch length, and
/// concurrent execution of a batch's calls (jsonrpsee runs them one after the other, which
/// would make a batch of `eth_sendRawTransaction` wait for one acknowledgement after another).
#[derive(Clone, Debug)]
pub struct LimitLayer {
    pub max_batch_len: usize,
    pub max_response_body_size: usize,
}

impl<S> tower::Layer<S> for LimitLayer {
    type Service = Limit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limit {
            inner,
            max_batch_len: self.max_batch_len,
            max_response_body_size: self.max_response_body_size,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Limit<S> {
    inner: S,
    max_batch_len: usize,
    max_response_body_size: usize,
}

/// Counts a call against the connection's limiter; the error if it is over.
fn over_limit(extensions: &jsonrpsee::Extensions) -> Option<ErrorObjectOwned> {
    let limiter = extensions.get::<Arc<RateLimiter>>()?;
    (!limiter.try_acquire(Instant::now())).then(|| RpcError::RateLimited(limiter.limit()).into())
}

impl<S> RpcServiceT for Limit<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        match over_limit(request.extensions()) {
            Some(error) => Either::Left(futures::future::ready(MethodResponse::error(
                request.id, error,
            ))),
            None => Either::Right(self.inner.call(request)),
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        let (max_batch_len, max_response) = (self.max_batch_len, self.max_response_body_size);
        async move {
            if batch.len() > max_batch_len {
                let error = RpcError::BatchTooLong {
                    len: batch.len(),
                    limit: max_batch_len,
                };
                return MethodResponse::error(Id::Null, ErrorObjectOwned::from(error));
            }
            for entry in batch.iter_mut() {
                let Ok(BatchEntry::Call(call)) = entry else {
                    continue;
                };
                if let Some(error) = over_limit(call.extensions()) {
                    *entry = Err(BatchEntryErr::new(call.id.clone(), error));
                }
            }
            let mut calls = Vec::with_capacity(batch.len());
            let mut got_notification = false;
            for entry in batch {
                match entry {
                    Ok(BatchEntry::Call(call)) => calls.push(Either::Left(inner.call(call))),
                    Ok(BatchEntry::Notification(n)) => {
                        got_notification = true;
                        let _ = inner.notification(n).await;
                    }
                    Err(e) => {
                        let (error, id) = e.into_parts();
                        let response = MethodResponse::error(id, error);
                        calls.push(Either::Right(futures::future::ready(response)));
                    }
                }
            }
            let responses = futures::future::join_all(calls).await;
            if responses.is_empty() && got_notification {
                return MethodResponse::notification();
            }
            let mut builder = BatchResponseBuilder::new_with_limit(max_response);
            for response in responses {
                if let Err(too_large) = builder.append(response) {
                    return too_large;
                }
            }
            MethodResponse::from_batch(builder.finish())
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        match over_limit(n.extensions()) {
            // A notification gets no answer; over the limit it is just not served.
            Some(_) => Either::Left(futures::future::ready(MethodResponse::notification())),
            None => Either::Right(self.inner.notification(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_allows_limit_calls_per_second() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        assert!((0..3).all(|_| limiter.try_acquire(start)));
        assert!(!limiter.try_acquire(start));
        assert!(!limiter.try_acquire(start + Duration::from_millis(999)));
        let next = start + Duration::from_secs(1);
        assert!((0..3).all(|_| limiter.try_acquire(next)));
        assert!(!limiter.try_acquire(next));
    }
}
