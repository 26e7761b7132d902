//! The certificate synchronizer's actor: carries out what [`SyncCore`] decides (which
//! certificates to ask of whom, and when), sends the requests, decodes the answers, and hands
//! what the core accepts to the primary's core in round order.

use crate::messages::{CoreInput, SyncRequest};
use crate::metrics::PrimaryMetrics;
use crate::sync_core::{Fetch, Request, SyncConfig, SyncCore};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weft_network::{NetworkError, Peer, ReliableSender};
use weft_storage::Map;
use weft_types::codec::{decode_message, encode_message};
use weft_types::{
    AuthorityIndex, Certificate, CertificateDigest, CertificatesResponse, Committee,
    PrimaryMessage, Round,
};

type Pending = BoxFuture<'static, (AuthorityIndex, Fetch, Result<bytes::Bytes, NetworkError>)>;

/// What [`Synchronizer::spawn`] needs.
pub(crate) struct SynchronizerArgs {
    pub me: AuthorityIndex,
    pub committee: Arc<Committee>,
    pub sender: ReliableSender,
    /// To see whether a missing certificate arrived in the meantime.
    pub certificates: Map<CertificateDigest, Certificate>,
    pub parameters: weft_config::Parameters,
    pub metrics: Arc<PrimaryMetrics>,
    pub rx_core: mpsc::UnboundedReceiver<SyncRequest>,
    pub tx_core: mpsc::Sender<CoreInput>,
    pub rx_gc_round: watch::Receiver<Round>,
    /// Cancelled when the primary stops.
    pub shutdown: CancellationToken,
}

pub(crate) struct Synchronizer {
    /// The decisions.
    core: SyncCore,
    committee: Arc<Committee>,
    sender: ReliableSender,
    peers: BTreeMap<AuthorityIndex, Peer>,
    certificates: Map<CertificateDigest, Certificate>,
    rx_core: mpsc::UnboundedReceiver<SyncRequest>,
    tx_core: mpsc::Sender<CoreInput>,
    rx_gc_round: watch::Receiver<Round>,
    metrics: Arc<PrimaryMetrics>,
    /// An answer not in by then is a failure.
    answer_timeout: Duration,
    max_message_size: usize,
    /// The core's clock: milliseconds since this instant.
    start: Instant,
    answers: FuturesUnordered<Pending>,
    shutdown: CancellationToken,
}

impl Synchronizer {
    pub(crate) fn spawn(args: SynchronizerArgs) -> JoinHandle<()> {
        let p = &args.parameters;
        let retry = p.sync_retry_delay();
        let grace = (retry / 10).clamp(Duration::from_millis(20), Duration::from_millis(500));
        let config = SyncConfig {
            grace_ms: grace.as_millis() as u64,
            retry_ms: retry.as_millis() as u64,
            retry_nodes: p.sync_retry_nodes,
            range_limit: p.max_certificates_per_fetch,
        };
        let this = Self {
            // Seeded by authority, so that runs are repeatable.
            core: SyncCore::new(args.me, &args.committee, config, args.me.0 as u64),
            peers: crate::other_primaries(&args.committee, args.me),
            committee: args.committee,
            sender: args.sender,
            certificates: args.certificates,
            rx_core: args.rx_core,
            tx_core: args.tx_core,
            rx_gc_round: args.rx_gc_round,
            metrics: args.metrics,
            answer_timeout: retry,
            max_message_size: p.max_message_size,
            start: Instant::now(),
            answers: FuturesUnordered::new(),
            shutdown: args.shutdown,
        };
        tokio::spawn(this.run(grace / 2))
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    async fn run(mut self, tick: Duration) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                request = self.rx_core.recv() => match request {
                    Some(request) => self.handle(request).await,
                    None => break,
                },
                Some((peer, fetch, answer)) = self.answers.next(), if !self.answers.is_empty() => {
                    if self.on_answer(peer, fetch, answer).await.is_err() {
                        break;
                    }
                }
                _ = ticker.tick() => {
                    let gc_round = *self.rx_gc_round.borrow();
                    let certificates = &self.certificates;
                    let has = |d: &CertificateDigest| certificates.contains(d).unwrap_or(false);
                    for request in self.core.tick(self.now_ms(), gc_round, has) {
                        self.send(request).await;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, request: SyncRequest) {
        let now = self.now_ms();
        match request {
            SyncRequest::Certificates {
                from,
                round,
                digests,
            } => self.core.want(now, from, round, digests),
            SyncRequest::Range { from, from_round } => {
                if let Some(request) = self.core.range(now, from, from_round) {
                    self.send(request).await;
                }
            }
        }
    }

    async fn send(&mut self, Request { to, fetch }: Request) {
        let Some(peer) = self.peers.get(&to) else {
            return;
        };
        let (kind, message) = match &fetch {
            Fetch::Digests(digests) => (
                "digests",
                PrimaryMessage::CertificatesRequest(digests.clone()),
            ),
            Fetch::Range { from_round, limit } => {
                tracing::debug!(%to, from_round, "fetching certificates by range");
                let limit = (*limit).min(u32::MAX as usize) as u32;
                let message = PrimaryMessage::CertificateRange {
                    from_round: *from_round,
                    limit,
                };
                ("range", message)
            }
        };
        self.metrics.sync_requests.with_label_values(&[kind]).inc();
        let handler = self.sender.send(peer, encode_message(&message)).await;
        let timeout = self.answer_timeout;
        self.answers.push(
            async move {
                let answer = tokio::time::timeout(timeout, handler)
                    .await
                    .unwrap_or(Err(NetworkError::Timeout("waiting for a sync answer")));
                (to, fetch, answer)
            }
            .boxed(),
        );
    }

    /// Decodes an answer, lets the core take what it asked for, and hands that to the
    /// primary's core in round order. Errs only if the primary's core is gone.
    async fn on_answer(
        &mut self,
        peer: AuthorityIndex,
        fetch: Fetch,
        answer: Result<bytes::Bytes, NetworkError>,
    ) -> Result<(), ()> {
        let max = self.max_message_size;
        let certificates = match answer.map_err(|e| e.to_string()).and_then(|bytes| {
            decode_message::<CertificatesResponse>(bytes, max).map_err(|e| e.to_string())
        }) {
            Ok(response) => Some(response.certificates),
            Err(e) => {
                tracing::debug!(%peer, "sync answer failed: {e}");
                None
            }
        };
        let committee = &self.committee;
        let verify = |c: &Certificate| c.verify(committee).map_err(|e| e.kind());
        let stored = &self.certificates;
        let has = |d: &CertificateDigest| stored.contains(d).unwrap_or(false);
        let now = self.now_ms();
        let answered = self
            .core
            .answered(now, peer, &fetch, certificates, verify, has);
        for reason in &answered.rejected {
            self.metrics
                .rejected
                .with_label_values(&["sync_answer", reason])
                .inc();
        }
        if !answered.rejected.is_empty() {
            tracing::debug!(%peer, rejected = ?answered.rejected, "sync answer partly refused");
        }
        self.metrics
            .certificates_fetched
            .inc_by(answered.certificates.len() as u64);
        for c in answered.certificates {
            self.tx_core
                .send(CoreInput::Certificate(c))
                .await
                .map_err(|_| ())?;
        }
        if let Some(next) = answered.next {
            self.send(next).await;
        }
        Ok(())
    }
}
