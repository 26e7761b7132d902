//! The attester actor: the I/O around [`weft_attest::Attester`]. It follows the committed log
//! (off the ordering path: the executor never waits for it), signs each sub-DAG, writes the
//! signature (one write per step, however many sub-DAGs the step signed) and only then sends
//! it to the other primaries; their answers and their own signatures form
//! finality certificates, stored beside the log record and pushed to subscribers.
//!
//! Each attestation also names L1 batches: the attester runs the committee's [`Cutter`] over
//! the log it signs, and the attestation of sub-DAG k names the batches closed by the sub-DAGs
//! before k that no earlier attestation named. The cut of sub-DAG k is thus not on the way from
//! its commit to its certificate: it runs while the committee exchanges signatures of k (from
//! the moment k is certified here), and its batches ride with attestation k + 1. Each named
//! batch is stored ([`crate::columns::L1_BATCHES`], keyed by the naming sub-DAG and sequence)
//! with the cutter's state in the same write as the signature that names it, so that the poster
//! can post it with that certificate and a restart cuts on exactly where it stopped.
//!
//! Never two attestations for one index, across restarts: the own signature of every index
//! and the newest one (`ATTESTATION_LAST_KEY`, which the log's retention never prunes) are in
//! the store before anything is sent, and [`Attester::recover`] starts after the newest.
//!
//! That write goes to RocksDB's WAL without an fsync: it survives the process being killed
//! at any point. A power loss may take the newest records with it, but not the committed log
//! (the executor's writes are synced), and an attestation is a function of the log and of the
//! previous attestation, signed deterministically (RFC 6979): signing those indexes again
//! after such a loss gives the very same bytes, never a second, different attestation. An
//! fsync here would add its latency to every pre-confirmation for nothing.

use crate::leaves::{BatchLeaves, LeafCache, RecentTrees};
use crate::log::{CommittedEntry, CommittedLog};
use bytes::Bytes;
use futures::future::{AbortHandle, Abortable, BoxFuture};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use prometheus::{
    register_int_counter_vec_with_registry, register_int_counter_with_registry,
    register_int_gauge_with_registry, IntCounter, IntCounterVec, IntGauge, Registry,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_attest::{
    Accepted, AttestError, AttestationAnswer, AttestationKey, Attester, BatchRefs,
    FinalityCertificate, Roots, SignedAttestation, Tree,
};
use weft_config::L1BatchParameters;
use weft_l1_poster::batch::BatchError;
use weft_l1_poster::{ClosedBatch, Cutter, CutterParams, CutterState, OrderedSubDag, PostMode};
use weft_network::{HandlerError, NetworkError, Peer, ReliableSender};
use weft_storage::{Durability, Map, Store, StoreError, RECORDS};
use weft_types::codec::{decode_message, encode_message, DecodeError};
use weft_types::messages::PrimaryMessage;
use weft_types::{AuthorityIndex, Batch, Committee};

/// Key of the newest own signature in the consensus column.
pub const ATTESTATION_LAST_KEY: &str = "attestation_last";

/// Key of the cutter's state (JSON) in the consensus column, as of the newest signature.
pub const CUTTER_STATE_KEY: &str = "l1_cutter";

/// Key of the first sub-DAG the cutter had not taken (JSON), beside [`CUTTER_STATE_KEY`].
/// Stores written before the cut ran behind the signatures have none: their cutter had taken
/// every signed sub-DAG.
pub const CUTTER_NEXT_KEY: &str = "l1_cutter_next";

/// With this variable set to N, the process aborts right after its signature of a sub-DAG N or
/// later is durable and before it is sent: the `kill -9` between signing and sending that the
/// restart test needs. Read once at start; unset, nothing changes.
pub const CRASH_AFTER_SIGNING_ENV: &str = "WEFT_CRASH_AFTER_SIGNING";

/// Sub-DAGs read (and signed, under one write) per step.
const ENTRIES_PER_STEP: usize = 64;

/// Own signatures still being sent: older ones are given up (a peer that needs them gets the
/// certificate in the answer to its own signature).
const SEND_WINDOW: u64 = weft_attest::core::EARLY_WINDOW;

/// Peers' signatures waiting for the actor.
const INBOUND_CAPACITY: usize = 1_024;

/// Certificates kept for subscribers that fall behind.
const SUBSCRIBER_BUFFER: usize = 1_024;

#[derive(Debug, Error)]
pub enum AttesterFailure {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("committed sub-DAG {index} has an undecodable batch: {error}")]
    Undecodable { index: u64, error: DecodeError },
    #[error(
        "sub-DAG {next} left the committed log before it was signed (the log starts at {first})"
    )]
    Pruned { next: u64, first: u64 },
    #[error("own attestation record {0} does not decode: {1}")]
    Record(String, DecodeError),
    #[error(transparent)]
    Attest(#[from] AttestError),
    #[error("cutting L1 batches: {0}")]
    Cut(#[from] BatchError),
    #[error("the cutter state: {0}")]
    CutterState(serde_json::Error),
    #[error("sub-DAG {0}, which this authority signed, is not in the committed log")]
    Unsigned(u64),
    #[error(
        "re-reading the sub-DAGs the cutter had taken, after a restart, closed L1 batch {sequence}, which the store's cutter state says was open: the store is not one this version wrote"
    )]
    CutterBehind { sequence: u64 },
}

/// The committee's cutter parameters, from its parameters file.
pub fn cutter_params(p: &L1BatchParameters) -> CutterParams {
    CutterParams {
        mode: p
            .max_blobs
            .map_or(PostMode::Calldata, |max_blobs| PostMode::Blob { max_blobs }),
        target_bytes: p.target_bytes,
        interval_ms: p.interval_ms,
    }
}

pub struct AttestMetrics {
    pub signed: IntCounter,
    /// The next index to sign.
    pub next: IntGauge,
    pub certificates: IntCounter,
    /// Own signatures without a certificate yet.
    pub pending: IntGauge,
    pub rejected: IntCounterVec,
    /// Committed batches by where their leaves came from: hashed ahead of the commit
    /// (`precomputed`) or by the attester (`hashed`).
    pub leaves: IntCounterVec,
}

/// Every reason a peer's attestation message is refused, exported at 0 from the start.
const REJECTIONS: [&str; 10] = [
    "malformed",
    "wrong_committee",
    "unknown_authority",
    "signers_out_of_order",
    "bad_signature",
    "below_quorum",
    "wrong_sender",
    "too_far_ahead",
    "conflict",
    "shutdown",
];

impl AttestMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            signed: register_int_counter_with_registry!(
                "weft_attestations_signed_total",
                "Committed sub-DAGs this authority signed (since the process started)",
                registry
            )?,
            next: register_int_gauge_with_registry!(
                "weft_attestation_next_index",
                "The next committed sub-DAG this authority will sign",
                registry
            )?,
            certificates: register_int_counter_with_registry!(
                "weft_finality_certificates_total",
                "Finality certificates formed or received and stored",
                registry
            )?,
            pending: register_int_gauge_with_registry!(
                "weft_attestations_pending",
                "Own attestations without a finality certificate yet",
                registry
            )?,
            rejected: register_int_counter_vec_with_registry!(
                "weft_attestations_rejected_total",
                "Peers' attestations and certificates refused, by reason",
                &["reason"],
                registry
            )?,
            leaves: register_int_counter_vec_with_registry!(
                "weft_attestation_batch_leaves_total",
                "Committed batches signed, by where their transaction leaves came from",
                &["source"],
                registry
            )?,
        };
        for source in ["precomputed", "hashed"] {
            metrics.leaves.with_label_values(&[source]);
        }
        for reason in REJECTIONS {
            metrics.rejected.with_label_values(&[reason]);
        }
        Ok(metrics)
    }
}

/// The stored finality certificates; cheap to clone.
#[derive(Clone)]
pub struct Certificates {
    map: Map<u64, Bytes>,
    formed: broadcast::Sender<Arc<FinalityCertificate>>,
}

impl Certificates {
    pub fn open(store: &Store) -> Self {
        Self {
            map: store.map(crate::columns::FINALITY_CERTIFICATES),
            formed: broadcast::channel(SUBSCRIBER_BUFFER).0,
        }
    }

    /// The certificate of sub-DAG `index`, if it formed and is still retained.
    pub fn get(&self, index: u64) -> Result<Option<FinalityCertificate>, StoreError> {
        let Some(bytes) = self.map.get(&index)? else {
            return Ok(None);
        };
        decode_message(bytes, usize::MAX)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                column: "finality_certificates",
                reason: format!("certificate {index}: {e}"),
            })
    }

    /// Waits until the certificate of sub-DAG `index` is stored, and returns it.
    pub async fn wait_for(&self, index: u64) -> Result<FinalityCertificate, StoreError> {
        // Subscribed before the look, so that one stored in between is not missed.
        let mut formed = self.subscribe();
        loop {
            if let Some(certificate) = self.get(index)? {
                return Ok(certificate);
            }
            match formed.recv().await {
                Ok(c) if c.attestation.index == index => return Ok((*c).clone()),
                // Another index, or this receiver lagged: look in the store again.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                // `self` holds the sender.
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }

    /// Every certificate stored from now on, as it is stored (any order of indexes).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FinalityCertificate>> {
        self.formed.subscribe()
    }

    fn insert(&self, write: &mut weft_storage::WriteBatch, certificate: &FinalityCertificate) {
        let index = certificate.attestation.index;
        write.insert(&self.map, &index, &encode_message(certificate));
    }

    fn publish(&self, certificate: FinalityCertificate) {
        let _ = self.formed.send(Arc::new(certificate));
    }
}

/// A peer's signature on its way to the actor, and where the answer goes.
struct Inbound {
    peer: AuthorityIndex,
    signed: SignedAttestation,
    reply: oneshot::Sender<Result<AttestationAnswer, AttestError>>,
}

/// Serves `PrimaryMessage::Attestation` for the primary: decodes (bounded) and hands the
/// signature to the actor, then answers with the certificate of its index if there is one.
pub struct AttestationHandler {
    tx: mpsc::Sender<Inbound>,
    max_size: usize,
    metrics: Arc<AttestMetrics>,
}

impl weft_network::Handler for AttestationHandler {
    fn handle(
        &self,
        peer: AuthorityIndex,
        request: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        async move {
            let refuse = |reason: &str, e: &dyn std::fmt::Display| {
                self.metrics.rejected.with_label_values(&[reason]).inc();
                HandlerError::new(e)
            };
            let signed: SignedAttestation =
                decode_message(request, self.max_size).map_err(|e| refuse("malformed", &e))?;
            let (reply, answer) = oneshot::channel();
            let shutdown = || refuse("shutdown", &"shutting down");
            let inbound = Inbound {
                peer,
                signed,
                reply,
            };
            self.tx.send(inbound).await.map_err(|_| shutdown())?;
            match answer.await.map_err(|_| shutdown())? {
                Ok(answer) => Ok(encode_message(&answer)),
                // The actor counted the refusal under its reason.
                Err(e) => Err(HandlerError::new(e)),
            }
        }
        .boxed()
    }
}

pub struct AttesterArgs {
    pub me: AuthorityIndex,
    pub committee: Arc<Committee>,
    pub key: AttestationKey,
    pub store: Store,
    pub log: CommittedLog,
    pub certificates: Certificates,
    pub sender: ReliableSender,
    pub max_message_size: usize,
    /// How the committee cuts L1 batches.
    pub cutter: CutterParams,
    /// Leaves hashed ahead of the commit.
    pub leaves: LeafCache,
    /// Where each signed sub-DAG's tree goes, for pre-confirmations.
    pub trees: RecentTrees,
    /// The first sub-DAG not signed yet, or the first the open L1 batch holds if that is
    /// earlier: the log's retention waits for it.
    pub tx_attested: watch::Sender<u64>,
    pub metrics: Arc<AttestMetrics>,
    /// Cancelled when the node stops: the attester finishes its step and ends.
    pub shutdown: CancellationToken,
}

type Answer = (u64, Result<Bytes, NetworkError>);

pub struct AttesterActor {
    attester: Attester,
    store: Store,
    log: CommittedLog,
    own: Map<u64, Bytes>,
    consensus: Map<String, Bytes>,
    l1_batches: Map<(u64, u64), Bytes>,
    /// Shared with the blocking steps that cut: the signing step, and the cut that runs
    /// ahead of it.
    cut: Arc<parking_lot::Mutex<Cut>>,
    /// The end of the last cut started ahead: it took every sub-DAG before this one.
    cut_ahead_to: u64,
    leaves: LeafCache,
    trees: RecentTrees,
    certificates: Certificates,
    sender: ReliableSender,
    peers: Vec<Peer>,
    max_message_size: usize,
    rx_inbound: mpsc::Receiver<Inbound>,
    tx_attested: watch::Sender<u64>,
    answers: FuturesUnordered<BoxFuture<'static, Option<Answer>>>,
    /// Sends of own signatures still unanswered, by index. A send is not given up when the
    /// index is certified here: the peer may not have this signature yet, and it only learns
    /// the certificate from an answer to one of its own sends.
    sending: BTreeMap<u64, Vec<AbortHandle>>,
    crash_after: Option<u64>,
    metrics: Arc<AttestMetrics>,
    shutdown: CancellationToken,
}

fn decode_record(index: &str, bytes: Bytes) -> Result<SignedAttestation, AttesterFailure> {
    decode_message(bytes, usize::MAX).map_err(|e| AttesterFailure::Record(index.into(), e))
}

impl AttesterActor {
    /// Recovers from the store and starts; returns the task and the handler the primary
    /// serves `PrimaryMessage::Attestation` with.
    pub fn spawn(
        args: AttesterArgs,
    ) -> Result<(JoinHandle<()>, Arc<AttestationHandler>), AttesterFailure> {
        let AttesterArgs {
            me,
            committee,
            key,
            store,
            log,
            certificates,
            sender,
            max_message_size,
            cutter,
            leaves,
            trees,
            tx_attested,
            metrics,
            shutdown,
        } = args;
        let own: Map<u64, Bytes> = store.map(crate::columns::ATTESTATIONS);
        let consensus: Map<String, Bytes> = store.map(RECORDS);
        let l1_batches = store.map(crate::columns::L1_BATCHES);
        let last = consensus
            .get(&ATTESTATION_LAST_KEY.to_string())?
            .map(|b| decode_record(ATTESTATION_LAST_KEY, b))
            .transpose()?;
        let mut uncertified = Vec::new();
        let from = last
            .as_ref()
            .map_or(0, |l| l.attestation.index.saturating_sub(SEND_WINDOW));
        for (index, bytes) in own.range(&from, &u64::MAX, usize::MAX)? {
            if certificates.map.get(&index)?.is_none() {
                uncertified.push(decode_record(&index.to_string(), bytes)?);
            }
        }
        let (attester, resend) =
            Attester::recover(me, committee.clone(), key, last.as_ref(), uncertified);
        let cut = recover_cut(&consensus, &log, cutter, attester.next())?;
        tracing::info!(
            authority = %me,
            next = attester.next(),
            uncertified = resend.len(),
            "attester recovered"
        );
        metrics.next.set(attester.next() as i64);
        metrics.pending.set(attester.pending() as i64);
        let cut_next = cut.cutter.next().sub_dag;
        tx_attested.send_replace(retained_from(cut_next, &cut.cutter.state()));
        let crash_after = std::env::var(CRASH_AFTER_SIGNING_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        let (tx, rx_inbound) = mpsc::channel(INBOUND_CAPACITY);
        let handler = Arc::new(AttestationHandler {
            tx,
            max_size: max_message_size,
            metrics: metrics.clone(),
        });
        let actor = Self {
            attester,
            store,
            log,
            own,
            consensus,
            l1_batches,
            cut: Arc::new(parking_lot::Mutex::new(cut)),
            cut_ahead_to: cut_next,
            leaves,
            trees,
            certificates,
            sender,
            peers: weft_primary::other_primaries(&committee, me)
                .into_values()
                .collect(),
            max_message_size,
            rx_inbound,
            tx_attested,
            answers: FuturesUnordered::new(),
            sending: BTreeMap::new(),
            crash_after,
            metrics,
            shutdown,
        };
        let task = tokio::spawn(async move {
            if let Err(e) = actor.run(resend).await {
                tracing::error!("the attester failed: {e}; stopping");
            }
        });
        Ok((task, handler))
    }

    async fn run(mut self, resend: Vec<SignedAttestation>) -> Result<(), AttesterFailure> {
        for signed in &resend {
            self.send(signed).await;
        }
        // The step that reads, hashes and cuts the next sub-DAGs runs beside the loop: peers'
        // signatures are answered meanwhile. Each handler holds back the responses of every
        // later request on the peer's connection (votes included) until answered, so the
        // ordering path never waits for this authority's hashing.
        let mut step: Option<JoinHandle<Result<Step, AttesterFailure>>> = None;
        loop {
            let committed = self.log.wait_for(self.attester.next());
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Ok(()),
                inbound = self.rx_inbound.recv() => match inbound {
                    Some(inbound) => self.on_signed(inbound).await?,
                    None => return Ok(()),
                },
                Some(Some((index, answer))) = self.answers.next(), if !self.answers.is_empty() => {
                    self.on_answer(index, answer).await?
                }
                done = async { step.as_mut().expect("guarded").await }, if step.is_some() => {
                    step = None;
                    // The runtime is shutting down.
                    let Ok(done) = done else { return Ok(()) };
                    self.sign(done?).await?;
                }
                _ = committed, if step.is_none() => step = Some(self.read_step()),
            }
        }
    }

    /// Starts reading and hashing every committed sub-DAG from the next one on (up to a
    /// step's worth), and cutting those before each that the cut ahead has not taken (when
    /// catching up): all CPU, off the runtime.
    fn read_step(&self) -> JoinHandle<Result<Step, AttesterFailure>> {
        let from = self.attester.next();
        let (log, cut, leaves) = (self.log.clone(), self.cut.clone(), self.leaves.clone());
        tokio::task::spawn_blocking(move || {
            read_and_hash(&log, &cut, &leaves, from, ENTRIES_PER_STEP)
        })
    }

    /// Signs the sub-DAGs a step read, persists the signatures in one write, then sends them.
    async fn sign(&mut self, step: Step) -> Result<(), AttesterFailure> {
        let Step {
            entries,
            cutter_state,
            cut_next,
            sources,
        } = step;
        for (source, count) in ["precomputed", "hashed"].into_iter().zip(sources) {
            self.metrics
                .leaves
                .with_label_values(&[source])
                .inc_by(count);
        }
        let mut signed = Vec::with_capacity(entries.len());
        let mut certified = Vec::new();
        let mut closed = Vec::new();
        for entry in entries {
            let refs = BatchRefs {
                first: entry.named.first().map_or(0, |b| b.sequence),
                hashes: entry.named.iter().map(|b| b.data_hash).collect(),
            };
            let output = self.attester.sign_roots(
                entry.index,
                entry.leader_round,
                entry.timestamp,
                entry.roots,
                refs,
            )?;
            self.trees.insert(entry.index, entry.tree);
            signed.extend(output.persist_signed);
            certified.extend(output.certified);
            closed.extend(entry.named.into_iter().map(|b| (entry.index, b)));
        }
        let Some(last) = signed.last() else {
            return Ok(());
        };
        let mut write = self.store.batch();
        for s in &signed {
            write.insert(&self.own, &s.attestation.index, &encode_message(s));
        }
        write.insert(
            &self.consensus,
            &ATTESTATION_LAST_KEY.to_string(),
            &encode_message(last),
        );
        for (index, batch) in &closed {
            let record = Bytes::from(batch.to_record());
            write.insert(&self.l1_batches, &(*index, batch.sequence), &record);
        }
        write.insert(
            &self.consensus,
            &CUTTER_STATE_KEY.to_string(),
            &Bytes::from(serde_json::to_vec(&cutter_state).map_err(AttesterFailure::CutterState)?),
        );
        write.insert(
            &self.consensus,
            &CUTTER_NEXT_KEY.to_string(),
            &Bytes::from(cut_next.to_string()),
        );
        for c in &certified {
            self.certificates.insert(&mut write, c);
        }
        write.commit_blocking(Durability::Buffered).await?;
        let next = self.attester.next();
        if self.crash_after.is_some_and(|n| next > n) {
            tracing::error!("{CRASH_AFTER_SIGNING_ENV}: aborting after signing, before sending");
            std::process::abort();
        }
        self.tx_attested
            .send_replace(retained_from(cut_next, &cutter_state));
        self.metrics.signed.inc_by(signed.len() as u64);
        self.metrics.next.set(next as i64);
        self.metrics.certificates.inc_by(certified.len() as u64);
        for c in certified {
            certified_line(&c);
            self.on_certified(c.attestation.index);
            self.certificates.publish(c);
        }
        for s in &signed {
            self.send(s).await;
        }
        // Sends of indexes far behind are given up.
        let kept = self.sending.split_off(&next.saturating_sub(SEND_WINDOW));
        for abort in std::mem::replace(&mut self.sending, kept)
            .into_values()
            .flatten()
        {
            abort.abort();
        }
        self.metrics.pending.set(self.attester.pending() as i64);
        Ok(())
    }

    async fn send(&mut self, signed: &SignedAttestation) {
        let index = signed.attestation.index;
        let message = encode_message(&PrimaryMessage::Attestation(encode_message(signed)));
        for handler in self.sender.broadcast(&self.peers, message).await {
            let (abort, registration) = AbortHandle::new_pair();
            self.sending.entry(index).or_default().push(abort);
            self.answers.push(
                Abortable::new(handler, registration)
                    .map(move |answer| answer.ok().map(|a| (index, a)))
                    .boxed(),
            );
        }
    }

    async fn on_signed(&mut self, inbound: Inbound) -> Result<(), AttesterFailure> {
        let Inbound {
            peer,
            signed,
            reply,
        } = inbound;
        let index = signed.attestation.index;
        let answer = match self.attester.on_signed(peer, &signed) {
            Ok(Accepted::Counted) => Ok(AttestationAnswer { certificate: None }),
            Ok(Accepted::Formed(certificate)) => {
                self.store_certificate(&certificate).await?;
                Ok(AttestationAnswer {
                    certificate: Some(*certificate),
                })
            }
            Ok(Accepted::Certified) => Ok(AttestationAnswer {
                certificate: self.certificates.get(index)?,
            }),
            Err(e) => Err(self.rejected(e)),
        };
        let _ = reply.send(answer);
        Ok(())
    }

    async fn on_answer(
        &mut self,
        index: u64,
        answer: Result<Bytes, NetworkError>,
    ) -> Result<(), AttesterFailure> {
        let bytes = match answer {
            Ok(bytes) => bytes,
            // The peer refused it (its reason is in its metrics) or the sender is closing.
            Err(e) => {
                tracing::debug!(index, "attestation not taken: {e}");
                return Ok(());
            }
        };
        let answer: AttestationAnswer = match decode_message(bytes, self.max_message_size) {
            Ok(answer) => answer,
            Err(e) => {
                self.metrics
                    .rejected
                    .with_label_values(&["malformed"])
                    .inc();
                tracing::debug!(index, "malformed attestation answer: {e}");
                return Ok(());
            }
        };
        let Some(certificate) = answer.certificate else {
            return Ok(());
        };
        match self.attester.on_certificate(certificate) {
            Ok(Some(certificate)) => self.store_certificate(&certificate).await?,
            Ok(None) => {}
            Err(e) => {
                self.rejected(e);
            }
        }
        Ok(())
    }

    async fn store_certificate(
        &mut self,
        certificate: &FinalityCertificate,
    ) -> Result<(), AttesterFailure> {
        let mut write = self.store.batch();
        self.certificates.insert(&mut write, certificate);
        // Another authority may hold it only in memory: buffered is enough, peers have it.
        write.commit_blocking(Durability::Buffered).await?;
        self.metrics.certificates.inc();
        self.metrics.pending.set(self.attester.pending() as i64);
        certified_line(certificate);
        self.on_certified(certificate.attestation.index);
        self.certificates.publish(certificate.clone());
        Ok(())
    }

    /// Once the newest signed sub-DAG is certified here, the cutter takes it in the
    /// background: the next signing step then finds the batches it names cut, and the cut
    /// competes with no authority's signing of this sub-DAG but the slowest's.
    fn on_certified(&mut self, index: u64) {
        let end = self.attester.next();
        if index + 1 != end || self.cut_ahead_to >= end {
            return;
        }
        self.cut_ahead_to = end;
        let (log, cut) = (self.log.clone(), self.cut.clone());
        tokio::task::spawn_blocking(move || {
            let mut cut = cut.lock();
            if let Err(e) = cut.take_before(&log, end) {
                // The signing step reports it.
                cut.failed = Some(e);
            }
        });
    }

    fn rejected(&self, e: AttestError) -> AttestError {
        self.metrics.rejected.with_label_values(&[e.kind()]).inc();
        if let AttestError::Conflict { .. } = e {
            // Two validly signed, different attestations for one index: evidence.
            tracing::warn!("conflicting attestation: {e}");
        }
        e
    }
}

/// What the benchmark's log parser reads: when the certificate is available here.
fn certified_line(certificate: &FinalityCertificate) {
    let index = certificate.attestation.index;
    tracing::info!(target: "weft::bench", "Certified sub-dag {index}");
}

/// A committed sub-DAG as the attester signs it, with the L1 batches its attestation names.
struct ToSign {
    index: u64,
    leader_round: u64,
    timestamp: u64,
    roots: Roots,
    tree: Arc<Tree>,
    named: Vec<ClosedBatch>,
}

/// What one signing step read: the sub-DAGs to sign; the cutter's state and the first
/// sub-DAG it has not taken, to store with the signatures; and how many batches' leaves were
/// precomputed and how many hashed here.
struct Step {
    entries: Vec<ToSign>,
    cutter_state: CutterState,
    cut_next: u64,
    sources: [u64; 2],
}

/// The cutter, and the batches it closed that no attestation names yet.
struct Cut {
    cutter: Cutter,
    unnamed: Vec<ClosedBatch>,
    /// Why the last cut run ahead failed: the next signing step stops on it.
    failed: Option<AttesterFailure>,
}

impl Cut {
    /// Has the cutter take every sub-DAG before `end` it has not taken yet.
    fn take_before(&mut self, log: &CommittedLog, end: u64) -> Result<(), AttesterFailure> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        while self.cutter.next().sub_dag < end {
            let from = self.cutter.next().sub_dag;
            let max = (end - from).min(ENTRIES_PER_STEP as u64) as usize;
            let entries = read_entries(log, from, max)?;
            if entries.is_empty() {
                return Err(AttesterFailure::Unsigned(from));
            }
            for entry in entries {
                let transactions = entry.transactions().map_err(undecodable(entry.index))?;
                let closed = self.cutter.push(&ordered(&entry, transactions))?;
                self.unnamed.extend(closed);
            }
        }
        Ok(())
    }
}

/// Committed entries from `from` on (at most `max`), contiguous.
fn read_entries(
    log: &CommittedLog,
    from: u64,
    max: usize,
) -> Result<Vec<CommittedEntry>, AttesterFailure> {
    let entries = log.read(from, max)?;
    starts_at(from, entries.first().map(|e| e.index))?;
    Ok(entries)
}

/// An error unless the first entry read from `from` on is `from` itself: the ones before it
/// left the log before they were signed or cut.
fn starts_at(from: u64, first: Option<u64>) -> Result<(), AttesterFailure> {
    match first {
        Some(first) if first != from => Err(AttesterFailure::Pruned { next: from, first }),
        _ => Ok(()),
    }
}

fn undecodable(index: u64) -> impl Fn(DecodeError) -> AttesterFailure {
    move |error| AttesterFailure::Undecodable { index, error }
}

fn ordered(entry: &CommittedEntry, transactions: Vec<weft_types::Transaction>) -> OrderedSubDag {
    OrderedSubDag {
        index: entry.index,
        timestamp: entry.timestamp,
        transactions,
    }
}

/// The committed sub-DAGs from `from` on (at most `max`), for one step: each one's tree
/// (taking the leaves the precomputer made, hashing the rest) and the batches its attestation
/// names, which the cutter closed before it (in the steady state, a cut run ahead has closed
/// them already).
fn read_and_hash(
    log: &CommittedLog,
    cut: &parking_lot::Mutex<Cut>,
    cache: &LeafCache,
    from: u64,
    max: usize,
) -> Result<Step, AttesterFailure> {
    let records = log.records(from, max)?;
    starts_at(from, records.first().map(|r| r.index))?;
    let (named, cutter_state, cut_next) = {
        let mut cut = cut.lock();
        let mut named = Vec::with_capacity(records.len());
        for record in &records {
            cut.take_before(log, record.index)?;
            named.push(std::mem::take(&mut cut.unnamed));
        }
        (named, cut.cutter.state(), cut.cutter.next().sub_dag)
    };
    let mut sources = [0u64; 2];
    let mut entries = Vec::with_capacity(records.len());
    for (record, named) in records.into_iter().zip(named) {
        let (mut leaves, mut nodes) = (Vec::new(), Vec::new());
        for digest in &record.batches {
            let hashed = match cache.take(digest) {
                Some(hashed) => {
                    sources[0] += 1;
                    hashed
                }
                None => {
                    sources[1] += 1;
                    // One batch for the one digest asked for.
                    let bytes = log.batches(record.index, &[*digest])?.swap_remove(0);
                    let batch: Batch =
                        decode_message(bytes, usize::MAX).map_err(undecodable(record.index))?;
                    Arc::new(BatchLeaves::of(&batch.transactions))
                }
            };
            leaves.extend_from_slice(&hashed.leaves);
            nodes.extend_from_slice(&hashed.nodes);
        }
        let tree = Tree::from_leaf_nodes(nodes);
        entries.push(ToSign {
            index: record.index,
            leader_round: record.leader_round,
            timestamp: record.timestamp,
            roots: Roots::of_hashed(&leaves, &tree),
            tree: Arc::new(tree),
            named,
        });
    }
    Ok(Step {
        entries,
        cutter_state,
        cut_next,
        sources,
    })
}

/// The cut as of the newest signature: the stored cutter state, and the open batch rebuilt
/// by having the cutter take again the sub-DAGs it had taken since (which must close nothing).
fn recover_cut(
    consensus: &Map<String, Bytes>,
    log: &CommittedLog,
    params: CutterParams,
    next: u64,
) -> Result<Cut, AttesterFailure> {
    let json = |key: &str| -> Result<Option<Bytes>, StoreError> { consensus.get(&key.to_string()) };
    let state: CutterState = match json(CUTTER_STATE_KEY)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(AttesterFailure::CutterState)?,
        None => CutterState::default(),
    };
    let end: u64 = match json(CUTTER_NEXT_KEY)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(AttesterFailure::CutterState)?,
        None => next,
    };
    let mut cut = Cut {
        cutter: Cutter::new(params, state),
        unnamed: Vec::new(),
        failed: None,
    };
    cut.take_before(log, end)?;
    if let Some(batch) = cut.unnamed.first() {
        return Err(AttesterFailure::CutterBehind {
            sequence: batch.sequence,
        });
    }
    Ok(cut)
}

/// The first sub-DAG the attester still needs from the log: the cutter has yet to take it, or
/// the open L1 batch holds it.
fn retained_from(cut_next: u64, cutter: &CutterState) -> u64 {
    cut_next.min(cutter.open_start.sub_dag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::CommittedRecord;
    use alloy::primitives::B256;

    /// Small calldata batches, closed every 2 ms of consensus time or at 2 kB: many close.
    fn params() -> CutterParams {
        CutterParams {
            mode: PostMode::Calldata,
            target_bytes: 2_000,
            interval_ms: 2,
        }
    }

    /// A store whose committed log holds `n` sub-DAGs of incompressible transactions, one
    /// batch each, with timestamps 1 ms apart; and the same sub-DAGs as the cutter takes them.
    fn log_of(n: u64) -> (tempfile::TempDir, Store, CommittedLog, Vec<OrderedSubDag>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &crate::columns::all()).unwrap();
        let records: Map<u64, CommittedRecord> = store.map(crate::columns::COMMITTED_LOG);
        let batches: Map<weft_types::BatchDigest, Bytes> = store.map(weft_worker::columns::BATCHES);
        let mut sub_dags = Vec::new();
        let mut write = store.batch();
        for index in 0..n {
            let transactions: Vec<Bytes> = (0..(index % 7) * 3)
                .map(|i| {
                    let seed = index * 1_000 + i;
                    Bytes::from(
                        (0..300)
                            .map(|j| ((seed * 7919 + j * 104_729) >> 3) as u8)
                            .collect::<Vec<u8>>(),
                    )
                })
                .collect();
            let (digest, bytes) = Batch::new(transactions.clone()).seal();
            write.insert(&batches, &digest, &bytes);
            let record = CommittedRecord {
                index,
                leader_round: 2 * index,
                timestamp: 1_000 + index,
                batches: vec![digest],
            };
            write.insert(&records, &index, &record);
            sub_dags.push(OrderedSubDag {
                index,
                timestamp: record.timestamp,
                transactions,
            });
        }
        write.commit(Durability::Buffered).unwrap();
        let log = CommittedLog::open(&store).unwrap();
        (dir, store, log, sub_dags)
    }

    /// The data hashes of the batches each attestation from `from` to `to` names, signed
    /// `per_step` sub-DAGs a step (one in the steady state, more when catching up), cutting
    /// ahead after each step as the actor does; and what is stored with the last signature.
    fn sign_from(
        log: &CommittedLog,
        cut: &parking_lot::Mutex<Cut>,
        (from, to): (u64, u64),
        per_step: usize,
    ) -> (Vec<(u64, Vec<B256>)>, CutterState, u64) {
        let mut named = Vec::new();
        let mut stored = (CutterState::default(), 0);
        let mut next = from;
        while next < to {
            let max = per_step.min((to - next) as usize);
            let step = read_and_hash(log, cut, &LeafCache::new(1 << 10), next, max).unwrap();
            for entry in &step.entries {
                assert_eq!(entry.index, next);
                named.push((next, entry.named.iter().map(|b| b.data_hash).collect()));
                next += 1;
            }
            stored = (step.cutter_state, step.cut_next);
            cut.lock().take_before(log, next).unwrap();
        }
        (named, stored.0, stored.1)
    }

    #[test]
    fn an_attestation_names_the_batches_closed_before_its_sub_dag_and_a_restart_names_the_same() {
        let (_dir, store, log, sub_dags) = log_of(40);
        // What the cutter closes at each sub-DAG.
        let mut reference = Cutter::new(params(), CutterState::default());
        let closed_by: Vec<Vec<B256>> = sub_dags
            .iter()
            .map(|s| {
                reference
                    .push(s)
                    .unwrap()
                    .iter()
                    .map(|b| b.data_hash)
                    .collect()
            })
            .collect();
        assert!(
            closed_by.iter().filter(|c| !c.is_empty()).count() > 10,
            "many batches close"
        );

        let fresh = || {
            parking_lot::Mutex::new(Cut {
                cutter: Cutter::new(params(), CutterState::default()),
                unnamed: Vec::new(),
                failed: None,
            })
        };
        let (named, _, _) = sign_from(&log, &fresh(), (0, 40), 1);
        for (index, hashes) in &named {
            let expected = match index {
                0 => Vec::new(),
                k => closed_by[*k as usize - 1].clone(),
            };
            assert_eq!(hashes, &expected, "attestation {index}");
        }
        // Catching up, many sub-DAGs a step: the same names.
        assert_eq!(sign_from(&log, &fresh(), (0, 40), 16).0, named);

        // Signed through 24, stored, restarted: the same names from 25 on.
        let cut = fresh();
        let (_, state, cut_next) = sign_from(&log, &cut, (0, 25), 1);
        assert_eq!(
            cut_next, 24,
            "the cutter took every sub-DAG before the last signed"
        );
        let consensus: Map<String, Bytes> = store.map(RECORDS);
        let json = |v: Vec<u8>| Bytes::from(v);
        let mut write = store.batch();
        write.insert(
            &consensus,
            &CUTTER_STATE_KEY.to_string(),
            &json(serde_json::to_vec(&state).unwrap()),
        );
        write.insert(
            &consensus,
            &CUTTER_NEXT_KEY.to_string(),
            &json(serde_json::to_vec(&cut_next).unwrap()),
        );
        write.commit(Durability::Buffered).unwrap();
        let recovered = recover_cut(&consensus, &log, params(), 25).unwrap();
        let (after, _, _) = sign_from(&log, &parking_lot::Mutex::new(recovered), (25, 40), 1);
        assert_eq!(after, named[25..]);

        // A store from before the cut ran behind (no CUTTER_NEXT_KEY): its cutter had taken
        // every signed sub-DAG, and named what they closed; it goes on from there.
        let mut old = Cutter::new(params(), CutterState::default());
        for s in &sub_dags[..25] {
            old.push(s).unwrap();
        }
        let mut write = store.batch();
        write.insert(
            &consensus,
            &CUTTER_STATE_KEY.to_string(),
            &json(serde_json::to_vec(&old.state()).unwrap()),
        );
        write.remove(&consensus, &CUTTER_NEXT_KEY.to_string());
        write.commit(Durability::Buffered).unwrap();
        let recovered = recover_cut(&consensus, &log, params(), 25).unwrap();
        let (after, _, _) = sign_from(&log, &parking_lot::Mutex::new(recovered), (25, 40), 1);
        assert!(
            after[0].1.is_empty(),
            "sub-DAG 24's batches were named by its own attestation"
        );
        assert_eq!(after[1..], named[26..]);
    }
}
