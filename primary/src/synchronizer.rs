//! Fetches certificates the core is missing: parents one digest at a time when they are
//! close, and whole round ranges when this primary fell behind.
//!
//! A sync storm is what a lagging node must not cause, so: each missing digest is requested
//! once (deduplicated), only after a short grace period in which the broadcast copy usually
//! arrives, and again only after `sync_retry_delay` (then from other authorities); at most one
//! range request is in flight, and a new one starts no sooner than the grace period after the
//! last one ended unless it continues a full answer.

use crate::messages::{CoreInput, SyncRequest};
use crate::metrics::PrimaryMetrics;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weft_network::{NetworkError, Peer, ReliableSender};
use weft_storage::Map;
use weft_types::codec::{decode_message, encode_message};
use weft_types::messages::MAX_CERTIFICATES_REQUEST;
use weft_types::{
    AuthorityIndex, Certificate, CertificateDigest, CertificatesResponse, Committee,
    PrimaryMessage, Round,
};

/// Give up on a digest after this many rounds of requests (it is below GC by then, or gone).
const MAX_ATTEMPTS: u32 = 20;

#[derive(Debug)]
struct Missing {
    from: AuthorityIndex,
    round: Round,
    first_seen: Instant,
    asked_at: Option<Instant>,
    attempts: u32,
}

enum Answer {
    Digests,
    /// A range answer; `limit` tells whether it was full (more to fetch).
    Range {
        from_round: Round,
        limit: usize,
    },
}

type Pending = BoxFuture<'static, (AuthorityIndex, Answer, Result<bytes::Bytes, NetworkError>)>;

pub(crate) struct Synchronizer {
    committee: Arc<Committee>,
    sender: ReliableSender,
    peers: BTreeMap<AuthorityIndex, Peer>,
    /// To see whether a missing certificate arrived in the meantime.
    certificates: Map<CertificateDigest, Certificate>,
    rx_core: mpsc::UnboundedReceiver<SyncRequest>,
    tx_core: mpsc::Sender<CoreInput>,
    rx_gc_round: watch::Receiver<Round>,
    metrics: Arc<PrimaryMetrics>,
    retry_delay: Duration,
    retry_nodes: usize,
    range_limit: usize,
    max_message_size: usize,
    grace: Duration,
    missing: HashMap<CertificateDigest, Missing>,
    range_in_flight: bool,
    last_range_end: Option<Instant>,
    /// Peers whose last range answer brought nothing new: range requests go to others until
    /// every peer is in here (then it is cleared). A Byzantine peer answering with copies of
    /// what this node has cannot keep it from catching up.
    unproductive: std::collections::BTreeSet<AuthorityIndex>,
    answers: FuturesUnordered<Pending>,
    /// Picks the authorities a retry goes to; seeded by authority so runs are repeatable.
    rng: StdRng,
}

#[allow(clippy::too_many_arguments)]
impl Synchronizer {
    pub(crate) fn spawn(
        me: AuthorityIndex,
        committee: Arc<Committee>,
        sender: ReliableSender,
        certificates: Map<CertificateDigest, Certificate>,
        parameters: &weft_config::Parameters,
        metrics: Arc<PrimaryMetrics>,
        rx_core: mpsc::UnboundedReceiver<SyncRequest>,
        tx_core: mpsc::Sender<CoreInput>,
        rx_gc_round: watch::Receiver<Round>,
    ) -> JoinHandle<()> {
        let peers = crate::other_primaries(&committee, me);
        let retry_delay = parameters.sync_retry_delay();
        let this = Self {
            committee,
            sender,
            peers,
            certificates,
            rx_core,
            tx_core,
            rx_gc_round,
            metrics,
            retry_delay,
            retry_nodes: parameters.sync_retry_nodes,
            range_limit: parameters.max_certificates_per_fetch,
            max_message_size: parameters.max_message_size,
            grace: (retry_delay / 10).clamp(Duration::from_millis(20), Duration::from_millis(500)),
            missing: HashMap::new(),
            range_in_flight: false,
            last_range_end: None,
            unproductive: Default::default(),
            answers: FuturesUnordered::new(),
            rng: StdRng::seed_from_u64(me.0 as u64),
        };
        tokio::spawn(this.run())
    }

    async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.grace / 2);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                request = self.rx_core.recv() => match request {
                    Some(request) => self.handle(request).await,
                    None => break,
                },
                Some((peer, kind, answer)) = self.answers.next(), if !self.answers.is_empty() => {
                    if self.on_answer(peer, kind, answer).await.is_err() {
                        break;
                    }
                }
                _ = ticker.tick() => self.request_due().await,
            }
        }
    }

    async fn handle(&mut self, request: SyncRequest) {
        match request {
            SyncRequest::Certificates {
                from,
                round,
                digests,
            } => {
                let now = Instant::now();
                for d in digests {
                    self.missing.entry(d).or_insert(Missing {
                        from,
                        round: round.saturating_sub(1),
                        first_seen: now,
                        asked_at: None,
                        attempts: 0,
                    });
                }
            }
            SyncRequest::Range { from, from_round } => {
                let cooling = self
                    .last_range_end
                    .is_some_and(|t| t.elapsed() < self.grace);
                if !self.range_in_flight && !cooling {
                    self.request_range(from, from_round).await;
                }
            }
        }
    }

    async fn request_range(&mut self, from: AuthorityIndex, from_round: Round) {
        if self.unproductive.len() >= self.peers.len() {
            self.unproductive.clear();
        }
        // `from`, or the next peer after it that has not been unproductive.
        let Some((from, peer)) = self
            .peers
            .range(from..)
            .chain(self.peers.range(..from))
            .find(|(a, _)| !self.unproductive.contains(a))
            .map(|(a, p)| (*a, p.clone()))
        else {
            return;
        };
        self.range_in_flight = true;
        self.metrics
            .sync_requests
            .with_label_values(&["range"])
            .inc();
        tracing::debug!(%from, from_round, "fetching certificates by range");
        let limit = self.range_limit;
        let message = PrimaryMessage::CertificateRange {
            from_round,
            limit: limit as u32,
        };
        self.send(from, peer, message, Answer::Range { from_round, limit })
            .await;
    }

    async fn send(
        &mut self,
        to: AuthorityIndex,
        peer: Peer,
        message: PrimaryMessage,
        kind: Answer,
    ) {
        let handler = self.sender.send(&peer, encode_message(&message)).await;
        let timeout = self.retry_delay;
        self.answers.push(
            async move {
                let answer = tokio::time::timeout(timeout, handler)
                    .await
                    .unwrap_or(Err(NetworkError::Timeout("waiting for a sync answer")));
                (to, kind, answer)
            }
            .boxed(),
        );
    }

    /// Sends the requests that are due: first asks after the grace period, retries after
    /// `sync_retry_delay` to other authorities.
    async fn request_due(&mut self) {
        let now = Instant::now();
        let gc_round = *self.rx_gc_round.borrow();
        let (grace, retry) = (self.grace, self.retry_delay);
        let due: Vec<CertificateDigest> = self
            .missing
            .iter()
            .filter(|(_, m)| match m.asked_at {
                None => now >= m.first_seen + grace,
                Some(at) => now >= at + retry,
            })
            .map(|(d, _)| *d)
            .collect();
        let mut targets: BTreeMap<AuthorityIndex, Vec<CertificateDigest>> = BTreeMap::new();
        for digest in due {
            let arrived = self.certificates.contains(&digest).unwrap_or(false);
            let m = self.missing.get_mut(&digest).expect("listed above");
            if arrived || m.round <= gc_round || m.attempts >= MAX_ATTEMPTS {
                self.missing.remove(&digest);
                continue;
            }
            m.asked_at = Some(now);
            m.attempts += 1;
            if m.attempts == 1 {
                targets.entry(m.from).or_default().push(digest);
            } else {
                let others: Vec<AuthorityIndex> = self.peers.keys().copied().collect();
                for to in others.choose_multiple(&mut self.rng, self.retry_nodes) {
                    targets.entry(*to).or_default().push(digest);
                }
            }
        }
        for (to, digests) in targets {
            let Some(peer) = self.peers.get(&to).cloned() else {
                continue;
            };
            for chunk in digests.chunks(MAX_CERTIFICATES_REQUEST) {
                self.metrics
                    .sync_requests
                    .with_label_values(&["digests"])
                    .inc();
                let message = PrimaryMessage::CertificatesRequest(chunk.to_vec());
                self.send(to, peer.clone(), message, Answer::Digests).await;
            }
        }
    }

    /// Verifies an answer and hands its certificates to the core in round order. Errs only if
    /// the core is gone.
    async fn on_answer(
        &mut self,
        peer: AuthorityIndex,
        kind: Answer,
        answer: Result<bytes::Bytes, NetworkError>,
    ) -> Result<(), ()> {
        let is_range = matches!(kind, Answer::Range { .. });
        if is_range {
            self.range_in_flight = false;
            self.last_range_end = Some(Instant::now());
        }
        let certificates = match answer.map_err(|e| e.to_string()).and_then(|bytes| {
            decode_message::<CertificatesResponse>(bytes, self.max_message_size)
                .map_err(|e| e.to_string())
        }) {
            Ok(response) => response.certificates,
            Err(e) => {
                tracing::debug!(%peer, "sync answer failed: {e}");
                return Ok(());
            }
        };
        let received = certificates.len();
        let mut accepted: Vec<Certificate> = Vec::with_capacity(received);
        let mut seen = std::collections::HashSet::with_capacity(received);
        // Certificates of this answer this node did not have.
        let mut new = 0usize;
        for c in certificates {
            let asked = is_range || self.missing.contains_key(&c.digest());
            if !asked {
                self.reject("unsolicited");
                continue;
            }
            if !seen.insert(c.digest()) {
                self.reject("duplicate");
                continue;
            }
            if !self.certificates.contains(&c.digest()).unwrap_or(false) {
                new += 1;
            }
            match c.verify(&self.committee) {
                Ok(()) => {
                    self.missing.remove(&c.digest());
                    accepted.push(c);
                }
                Err(e) => {
                    self.reject(e.kind());
                    tracing::warn!(%peer, "sync answer carries an invalid certificate: {e}");
                }
            }
        }
        self.metrics
            .certificates_fetched
            .inc_by(accepted.len() as u64);
        accepted.sort_by_key(|c| (c.round(), c.author()));
        let last_round = accepted.last().map(Certificate::round);
        for c in accepted {
            self.tx_core
                .send(CoreInput::Certificate(c))
                .await
                .map_err(|_| ())?;
        }
        if let Answer::Range { from_round, limit } = kind {
            // Rounds move on even through certificates this node has (it scans towards what
            // it lacks); a peer repeating one round is going nowhere.
            let progress = last_round.is_some_and(|last| last > from_round);
            match (received >= limit, last_round) {
                // A full answer that moved on: there is more. The last round may be partial,
                // so ask from it.
                (true, Some(last)) if progress => self.request_range(peer, last).await,
                // Full of copies of one round: ask someone else.
                (true, _) => {
                    self.unproductive.insert(peer);
                    self.reject("unproductive_range");
                    tracing::debug!(%peer, from_round, "range answer brought nothing new");
                    self.request_range(peer, from_round).await;
                }
                // Asked because this node is behind, and told nothing it lacks.
                _ if new == 0 && received > 0 => {
                    self.unproductive.insert(peer);
                }
                _ => {
                    self.unproductive.remove(&peer);
                }
            }
        }
        Ok(())
    }

    fn reject(&self, reason: &str) {
        self.metrics
            .rejected
            .with_label_values(&["sync_answer", reason])
            .inc();
    }
}
