//! The per-peer task behind the senders: dials, writes requests, matches responses to them in
//! order, and decides what happens to unanswered requests when a connection fails.

use crate::error::NetworkError;
use crate::metrics::{GaugeGuard, NetworkMetrics, OUTBOUND};
use crate::wire::{connect, decode_response, FrameCodec};
use crate::{NetworkConfig, Peer};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prometheus::IntGauge;
use rand::Rng;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_rustls::client::TlsStream;
use tokio_util::codec::{FramedRead, FramedWrite};

pub(crate) type Reply = oneshot::Sender<Result<Bytes, NetworkError>>;

/// A request queued for a peer. Best-effort messages have no reply.
pub(crate) struct Request {
    pub payload: Bytes,
    pub reply: Option<Reply>,
}

impl Request {
    /// The caller dropped its `CancelHandler`: nobody wants the answer any more.
    fn is_cancelled(&self) -> bool {
        self.reply.as_ref().is_some_and(|reply| reply.is_closed())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Retry with backoff until every request is answered or cancelled.
    Reliable,
    /// One connection attempt per idle period; unconfirmed messages are dropped.
    BestEffort,
}

pub(crate) struct PeerTask {
    pub peer: Peer,
    pub client_config: Arc<rustls::ClientConfig>,
    pub config: NetworkConfig,
    pub metrics: Arc<NetworkMetrics>,
    pub mode: Mode,
}

impl PeerTask {
    /// Starts the task; it runs until the channel closes (the owning sender is gone).
    pub(crate) fn spawn(self, rx: mpsc::Receiver<Request>) -> tokio::task::JoinHandle<()> {
        // Built outside the task so that aborting it before its first poll still settles the gauge.
        let queue = Queue {
            rx,
            depth: self.metrics.channel_depth.clone(),
        };
        tokio::spawn(self.run(queue))
    }

    async fn run(self, mut rx: Queue) {
        // Requests taken from the channel but not answered, in the order they were sent.
        let mut unanswered: VecDeque<Request> = VecDeque::new();
        let mut backoff = Backoff::new(self.config.min_backoff, self.config.max_backoff);
        loop {
            unanswered.retain(|request| !request.is_cancelled());
            if unanswered.is_empty() {
                // Idle: dial only once there is something to send.
                match rx.recv().await {
                    Some(request) if !request.is_cancelled() => unanswered.push_back(request),
                    Some(_) => continue,
                    None => return,
                }
            }
            let stream = match connect(
                &self.peer,
                self.client_config.clone(),
                &self.config,
                &self.metrics,
            )
            .await
            {
                Ok(stream) => stream,
                Err(e) => {
                    self.metrics.connect_failures.inc();
                    tracing::debug!(peer = %self.peer.address, "connection failed: {e}");
                    if self.mode == Mode::BestEffort {
                        self.drop_all(&mut unanswered, &mut rx);
                        continue;
                    }
                    if !Self::backoff(backoff.next_delay(), &mut unanswered, &mut rx).await {
                        return;
                    }
                    continue;
                }
            };
            let outcome = self.drive(stream, &mut unanswered, &mut rx).await;
            if outcome.answered_any {
                backoff.reset();
            }
            if outcome.channel_closed {
                return;
            }
            if let Some(e) = outcome.error {
                tracing::debug!(peer = %self.peer.address, "connection lost: {e}");
            }
            match self.mode {
                // Sent once and unconfirmed: give up on them. Queued messages get a new dial.
                Mode::BestEffort => {
                    self.metrics
                        .best_effort_dropped
                        .inc_by(unanswered.len() as u64);
                    unanswered.clear();
                }
                // A connection that failed before answering anything is treated like a failed
                // dial, so a peer that accepts and immediately closes is not hammered.
                Mode::Reliable if !outcome.answered_any && !unanswered.is_empty() => {
                    if !Self::backoff(backoff.next_delay(), &mut unanswered, &mut rx).await {
                        return;
                    }
                }
                Mode::Reliable => {}
            }
        }
    }

    /// Waits out a reconnection delay while still taking requests off the channel, dropping
    /// the cancelled ones: callers of a peer that is down for long must neither block on a
    /// full channel nor keep requests they gave up on. Returns false if the channel closed.
    async fn backoff(delay: Duration, unanswered: &mut VecDeque<Request>, rx: &mut Queue) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                request = rx.recv() => match request {
                    Some(request) => {
                        if !request.is_cancelled() {
                            unanswered.push_back(request);
                        }
                        // Amortised: drop what callers cancelled once the backlog doubles.
                        if unanswered.len().is_power_of_two() {
                            unanswered.retain(|r| !r.is_cancelled());
                        }
                    }
                    None => return false,
                },
            }
        }
    }

    /// Best effort after a failed dial: give up on everything taken and everything queued
    /// meanwhile, so the next message starts afresh with a single new attempt.
    fn drop_all(&self, unanswered: &mut VecDeque<Request>, rx: &mut Queue) {
        let mut dropped = unanswered.len() as u64;
        unanswered.clear();
        while rx.try_recv().is_some() {
            dropped += 1;
        }
        self.metrics.best_effort_dropped.inc_by(dropped);
    }

    /// Runs one connection until it fails or the channel closes. On return, `unanswered` holds
    /// every request that was taken but not answered, in sending order.
    async fn drive(
        &self,
        stream: TlsStream<TcpStream>,
        unanswered: &mut VecDeque<Request>,
        rx: &mut Queue,
    ) -> Outcome {
        let _gauge = GaugeGuard::new(self.metrics.connections.with_label_values(&[OUTBOUND]));
        let max_message_size = self.config.max_message_size;
        let (read_half, write_half) = tokio::io::split(stream);
        let mut reader = FramedRead::new(
            read_half,
            FrameCodec::<()>::new(max_message_size.saturating_add(1), &self.metrics, OUTBOUND),
        );
        let mut writer = FramedWrite::new(
            write_half,
            FrameCodec::new(max_message_size, &self.metrics, OUTBOUND),
        );
        // Written but not answered; shared by the reading and writing halves of this task.
        let in_flight: Mutex<VecDeque<Request>> = Mutex::new(VecDeque::new());
        let window = Semaphore::new(self.config.max_in_flight_requests.max(1));
        let mut answered_any = false;
        let mut channel_closed = false;
        let mut to_resend = std::mem::take(unanswered);

        let write = async {
            loop {
                let permit = match window.try_acquire() {
                    Ok(permit) => permit,
                    Err(_) => {
                        // Never wait with unflushed requests: their answers free the window.
                        writer.flush().await?;
                        window.acquire().await.map_err(|_| NetworkError::Closed)?
                    }
                };
                let request = match to_resend.pop_front().or_else(|| rx.try_recv()) {
                    Some(request) => request,
                    None => {
                        writer.flush().await?;
                        match rx.recv().await {
                            Some(request) => request,
                            None => {
                                channel_closed = true;
                                return Ok::<(), NetworkError>(());
                            }
                        }
                    }
                };
                if request.is_cancelled() {
                    continue;
                }
                permit.forget();
                let payload = request.payload.clone();
                lock(&in_flight).push_back(request);
                writer.feed(payload).await?;
            }
        };

        let read = async {
            loop {
                let frame = match reader.next().await {
                    Some(frame) => frame?,
                    None => return Err::<(), NetworkError>(NetworkError::Closed),
                };
                let result = decode_response(frame)?;
                let Some(request) = lock(&in_flight).pop_front() else {
                    return Err(NetworkError::Protocol("response without a request"));
                };
                window.add_permits(1);
                answered_any = true;
                if let Some(reply) = request.reply {
                    let _ = reply.send(result);
                }
            }
        };

        let error = tokio::select! {
            result = write => result.err(),
            result = read => result.err(),
        };
        // Requests written on this connection go first: they were taken from the channel first.
        let mut in_flight = in_flight.into_inner().unwrap_or_else(|e| e.into_inner());
        in_flight.extend(to_resend);
        *unanswered = in_flight;
        Outcome {
            answered_any,
            channel_closed,
            error,
        }
    }
}

/// The receiving end of a peer's queue, keeping the depth gauge in step even when the task is
/// aborted with requests still queued.
struct Queue {
    rx: mpsc::Receiver<Request>,
    depth: IntGauge,
}

impl Queue {
    async fn recv(&mut self) -> Option<Request> {
        let request = self.rx.recv().await?;
        self.depth.dec();
        Some(request)
    }

    fn try_recv(&mut self) -> Option<Request> {
        let request = self.rx.try_recv().ok()?;
        self.depth.dec();
        Some(request)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.rx.close();
        while self.try_recv().is_some() {}
    }
}

struct Outcome {
    answered_any: bool,
    channel_closed: bool,
    error: Option<NetworkError>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Exponential backoff with jitter, so that peers reconnecting to a restarted node spread out.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            current: min,
        }
    }

    /// A delay between half and all of the current step; the step then doubles up to `max`.
    fn next_delay(&mut self) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = step / 2;
        half + half.mul_f64(rand::thread_rng().gen::<f64>())
    }

    fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(25) && delays[0] <= Duration::from_millis(50));
        assert!(delays[3] >= Duration::from_millis(200) && delays[3] <= Duration::from_millis(400));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(5)));
        assert!(delays[11] >= Duration::from_millis(2500));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(50));
    }
}
