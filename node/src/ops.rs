//! The operations endpoint of a `weft` process, over plain HTTP/1.1:
//! - `/metrics`: the process's Prometheus registry, text format;
//! - `/health`: 200 while every actor runs, 503 with the cause once one has stopped (the
//!   process is then on its way down, see `weft node run`);
//! - `/ready`: 200 once the process is caught up (for an authority: its round within
//!   [`READY_ROUND_LAG`] of the highest round its DAG has seen from its peers, and moving),
//!   else 503.
//!
//! Meant for a scraper and a supervisor on the operator's network, not for the public: it
//! holds at most [`MAX_CONNECTIONS`] connections, each with a header deadline.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// An authority is ready while its own round trails the highest round it has seen by at most
/// this many rounds.
pub const READY_ROUND_LAG: i64 = 3;
pub const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

type ReadyFn = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What `/health` and `/ready` answer.
pub struct Health {
    fatal: Mutex<Option<String>>,
    ready: ReadyFn,
}

impl Health {
    /// `ready` says whether the process is caught up (and why not).
    pub fn new(ready: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self {
            fatal: Mutex::new(None),
            ready: Box::new(ready),
        }
    }

    /// An actor stopped for `cause`: the process is no longer healthy.
    pub fn fail(&self, cause: &str) {
        self.fatal.lock().get_or_insert_with(|| cause.to_string());
    }

    pub fn health(&self) -> Result<(), String> {
        match &*self.fatal.lock() {
            Some(cause) => Err(cause.clone()),
            None => Ok(()),
        }
    }

    pub fn readiness(&self) -> Result<(), String> {
        self.health()?;
        (self.ready)()
    }
}

/// An authority whose round has not moved for this long is not ready: cut off from its peers
/// (or the committee as a whole has stalled), it is not caught up with anything.
pub const READY_STALL: Duration = Duration::from_secs(5);

/// Readiness of an authority from its primary's round gauges: it has proposed, its round is
/// within [`READY_ROUND_LAG`] of the highest round it has seen, and it moved within
/// [`READY_STALL`] (as the calls observe it: the clock is read here, at the edge).
pub fn authority_ready(
    metrics: Arc<weft_primary::PrimaryMetrics>,
) -> impl Fn() -> Result<(), String> {
    let last_move = Mutex::new((0i64, std::time::Instant::now()));
    move || {
        let (round, seen) = (metrics.round.get(), metrics.dag_round.get());
        let mut last = last_move.lock();
        if round != last.0 {
            *last = (round, std::time::Instant::now());
        }
        if round == 0 {
            return Err("no header proposed yet".into());
        }
        if seen - round > READY_ROUND_LAG {
            return Err(format!("at round {round}, peers at {seen}"));
        }
        let still = last.1.elapsed();
        if still > READY_STALL {
            return Err(format!(
                "round {round} has not moved for {} s",
                still.as_secs()
            ));
        }
        Ok(())
    }
}

/// A running endpoint.
pub struct OpsServer {
    local_address: SocketAddr,
    join: JoinHandle<()>,
}

impl OpsServer {
    pub async fn spawn(
        address: SocketAddr,
        registry: Registry,
        health: Arc<Health>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let local_address = listener.local_addr()?;
        let join = tokio::spawn(serve(listener, registry, health));
        tracing::info!(address = %local_address, "metrics server started");
        Ok(Self {
            local_address,
            join,
        })
    }

    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    pub async fn shutdown(self) {
        self.join.abort();
        let _ = self.join.await;
    }
}

async fn serve(listener: TcpListener, registry: Registry, health: Arc<Health>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("metrics server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (registry, health) = (registry.clone(), health.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let answer = answer(&request, &registry, &health);
                async move { Ok::<_, std::convert::Infallible>(answer) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

fn answer<B>(request: &Request<B>, registry: &Registry, health: &Health) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    let verdict = |result: Result<(), String>| match result {
        Ok(()) => text(StatusCode::OK, "ok\n".into()),
        Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    };
    match request.uri().path() {
        "/metrics" => {
            let mut body = Vec::new();
            match TextEncoder::new().encode(&registry.gather(), &mut body) {
                Ok(()) => {
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    if let Ok(v) = TextEncoder::new().format_type().parse() {
                        response
                            .headers_mut()
                            .insert(hyper::header::CONTENT_TYPE, v);
                    }
                    response
                }
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            }
        }
        "/health" => verdict(health.health()),
        "/ready" => verdict(health.readiness()),
        _ => text(StatusCode::NOT_FOUND, "/metrics, /health, /ready\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(path: &str, health: &Health) -> StatusCode {
        let request = Request::get(path).body(()).unwrap();
        answer(&request, &Registry::new(), health).status()
    }

    /// `/health` turns 503 with the first cause the moment an actor is reported stopped, and
    /// `/ready` with it; `/ready` also follows the readiness function.
    #[test]
    fn health_fails_with_the_first_cause_and_readiness_follows() {
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ready.clone();
        let health = Health::new(
            move || match flag.load(std::sync::atomic::Ordering::SeqCst) {
                true => Ok(()),
                false => Err("catching up".into()),
            },
        );
        assert_eq!(status("/health", &health), StatusCode::OK);
        assert_eq!(status("/ready", &health), StatusCode::SERVICE_UNAVAILABLE);
        ready.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(status("/ready", &health), StatusCode::OK);
        assert_eq!(status("/metrics", &health), StatusCode::OK);
        assert_eq!(status("/elsewhere", &health), StatusCode::NOT_FOUND);
        health.fail("executor stopped");
        health.fail("runner stopped");
        assert_eq!(status("/health", &health), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status("/ready", &health), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health.health(), Err("executor stopped".to_string()));
    }
}
