//! The primary's protocol logic as a deterministic state machine: headers, votes and
//! certificates in; votes, headers, certificates, fetch requests and records to persist out.
//!
//! No sockets, clocks or randomness: time comes in as [`Core::tick`] readings (milliseconds on
//! any monotonic clock), and every effect is in a [`Ready`] the caller takes: first the vote
//! records to make durable (one synced write for all of a step's votes), then the [`Output`]s
//! to carry out **in order**, none before that write is done — that is what keeps invariant 1
//! across restarts. Messages given to the core must already be verified against the committee
//! (`Header::verify`, `Vote::verify`, `Certificate::verify`); the core checks how they fit the
//! DAG and the vote record.

use crate::dag::{Dag, Insert};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use thiserror::Error;
use weft_types::{
    AuthorityIndex, BatchDigest, Certificate, CertificateDigest, Committee, Header, HeaderDigest,
    KeyPair, Round, Signature, Stake, Vote, WorkerId,
};

/// Who leads an even round: a fixed snapshot of consensus's schedule, replaced through
/// [`Core::set_leaders`] when a commit changes it, so proposers wait for the leader that
/// consensus will try to commit.
pub type LeaderFn = Arc<dyn Fn(Round) -> AuthorityIndex + Send + Sync>;

/// Certificates further than this many rounds above the highest round with a quorum are not
/// chased parent by parent: the primary fell behind and catches up by range.
pub const CATCH_UP_DISTANCE: Round = 4;

/// Headers and certificates waiting for parents are kept only this many rounds above the DAG's
/// highest round, so a flood of far-future messages cannot grow memory.
pub const MAX_PENDING_ROUNDS: Round = 1_000;

/// Headers are voted on only this many rounds above the DAG's highest round. An honest
/// author's header is at most a round or two ahead of a primary that keeps up, and one that is
/// further behind catches up by range before its vote could help; a Byzantine author flooding
/// far-future headers gets this many pending (each up to `max_header_num_of_batches` digests,
/// each with its parent fetches) instead of `MAX_PENDING_ROUNDS`.
pub const MAX_HEADER_ROUNDS_AHEAD: Round = 2 * CATCH_UP_DISTANCE;

/// How far ahead of this primary's clock another's header may be dated and still get its
/// vote: the bound on how far a committed sub-DAG's timestamp can run ahead of honest time.
pub const MAX_CLOCK_DRIFT_MS: u64 = 2_000;

#[derive(Clone, Debug)]
pub struct CoreConfig {
    pub gc_depth: Round,
    pub header_num_of_batches_threshold: usize,
    pub max_header_num_of_batches: usize,
    pub max_header_delay_ms: u64,
}

/// That this authority voted for `digest` as `author`'s header of `round`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoteRecord {
    pub author: AuthorityIndex,
    pub round: Round,
    pub digest: HeaderDigest,
}

/// What the caller must do after a step, durable part first (the shape of raft-rs's `Ready`).
#[derive(Debug, Default)]
pub struct Ready {
    /// Vote records, in the order they were made (a later one for the same author replaces an
    /// earlier one). Written together and synced to disk before any of `outputs` is carried
    /// out: a vote among them must never leave before its record is durable.
    pub votes: Vec<VoteRecord>,
    /// This primary's new header, stored in the same synced write as `votes` (its own vote is
    /// among them): a vote record for an own header that was not stored would leave a
    /// restarted primary unable to propose at that round, or to send the header again.
    pub header: Option<Header>,
    /// The effects, to be carried out in order once `votes` are durable.
    pub outputs: Vec<Output>,
}

/// An effect for the caller to carry out, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    BroadcastHeader(Header),
    SendVote {
        to: AuthorityIndex,
        vote: Vote,
    },
    BroadcastCertificate(Certificate),
    /// A certificate joined the DAG. Emitted in causal order: store it, hand it to consensus.
    NewCertificate(Certificate),
    /// Parents (of round `round − 1`) that are missing; ask `from`, who referenced them, first.
    FetchCertificates {
        from: AuthorityIndex,
        round: Round,
        digests: Vec<CertificateDigest>,
    },
    /// This primary is behind: fetch certificates by range from `from_round`, asking `from`.
    FetchRange {
        from: AuthorityIndex,
        from_round: Round,
    },
    /// Make a header's batches available locally (its author's workers hold them). When they
    /// are and `notify` is set, call [`Core::payload_available`] with the header's digest.
    SyncPayload {
        header: HeaderDigest,
        author: AuthorityIndex,
        round: Round,
        payload: Vec<(BatchDigest, WorkerId)>,
        notify: bool,
    },
    /// Rounds ≤ `gc_round` were dropped from memory; `certificates` are the ones dropped, so
    /// their stored copies and batches can be deleted.
    GarbageCollected {
        gc_round: Round,
        certificates: Vec<Certificate>,
    },
}

/// Why an input was refused. Each is counted by [`CoreError::kind`].
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CoreError {
    #[error("round {round} is at or below the GC round {gc_round}")]
    TooOld { round: Round, gc_round: Round },
    #[error("round {round} is more than {limit} rounds ahead of the DAG ({highest})")]
    TooFarAhead {
        round: Round,
        highest: Round,
        limit: Round,
    },
    #[error("{author} sent a second header for round {round}")]
    Equivocation {
        author: AuthorityIndex,
        round: Round,
    },
    #[error("already voted for {author} at round {voted}, later than {round}")]
    StaleHeader {
        author: AuthorityIndex,
        round: Round,
        voted: Round,
    },
    #[error("header carries {count} batches, at most {limit} are allowed")]
    TooManyBatches { count: usize, limit: usize },
    #[error("parents carry {stake} stake, {needed} is needed")]
    InsufficientParents { stake: Stake, needed: Stake },
    #[error("a vote for a header that is not this primary's current one")]
    UnexpectedVote,
    #[error("a different certificate of {author} round {round} is already held")]
    ConflictingCertificate {
        author: AuthorityIndex,
        round: Round,
    },
    #[error("header created at {created_at} ms, more than {MAX_CLOCK_DRIFT_MS} ms after this clock's {now} ms")]
    FromTheFuture { created_at: u64, now: u64 },
}

impl CoreError {
    /// Short stable label for the rejection metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooOld { .. } => "too_old",
            Self::TooFarAhead { .. } => "too_far_ahead",
            Self::Equivocation { .. } => "equivocation",
            Self::StaleHeader { .. } => "stale_header",
            Self::TooManyBatches { .. } => "too_many_batches",
            Self::InsufficientParents { .. } => "insufficient_parents",
            Self::UnexpectedVote => "unexpected_vote",
            Self::ConflictingCertificate { .. } => "conflicting_certificate",
            Self::FromTheFuture { .. } => "from_the_future",
        }
    }

    /// A message that is merely late or out of date (debug), as opposed to one only a
    /// Byzantine peer sends (warning).
    pub fn is_benign(&self) -> bool {
        matches!(
            self,
            Self::TooOld { .. }
                | Self::TooFarAhead { .. }
                | Self::UnexpectedVote
                | Self::StaleHeader { .. }
        )
    }
}

/// What a primary persisted, to rebuild its core after a restart.
#[derive(Default)]
pub struct Recovered {
    /// The vote record: last (round, header digest) voted for, per author.
    pub votes: Vec<(AuthorityIndex, (Round, HeaderDigest))>,
    /// Every stored certificate above `gc_round`, in any order.
    pub certificates: Vec<Certificate>,
    pub gc_round: Round,
    /// This primary's latest header, if it proposed any.
    pub last_header: Option<Header>,
    /// Own batches the workers reported and no committed sub-DAG holds, in report order.
    pub own_batches: Vec<(BatchDigest, WorkerId)>,
}

/// The header this primary proposed last and the votes it has for it.
struct OwnHeader {
    header: Header,
    votes: BTreeMap<AuthorityIndex, Signature>,
    stake: Stake,
    certified: bool,
}

/// A header waiting for its parents or its payload before it can be voted for.
struct PendingHeader {
    header: Header,
    payload_ready: bool,
}

pub struct Core {
    me: AuthorityIndex,
    committee: Committee,
    keypair: KeyPair,
    config: CoreConfig,
    leader: LeaderFn,
    dag: Dag,
    /// Mirror of the durable vote record.
    votes: HashMap<AuthorityIndex, (Round, HeaderDigest)>,
    /// Headers of others being processed: at most one per (author, round).
    pending_headers: HashMap<(AuthorityIndex, Round), PendingHeader>,
    /// Certificates waiting for parents, by digest.
    pending_certificates: HashMap<CertificateDigest, Certificate>,
    /// Which pending headers and certificates wait for a missing certificate.
    waiting_on: HashMap<CertificateDigest, Vec<Waiter>>,
    /// Missing certificates already asked for by digest (the synchronizer retries them).
    fetched: HashSet<CertificateDigest>,
    /// Headers whose payload was already requested, by round (for GC).
    payload_requested: BTreeMap<Round, HashSet<HeaderDigest>>,
    own: Option<OwnHeader>,
    /// Round of this primary's latest header.
    round: Round,
    /// Highest round of any certificate received (a header's round proves nothing: one
    /// Byzantine author could sign any round).
    highest_seen: Round,
    /// Own batches not yet in a header, in the order the workers reported them.
    batches: VecDeque<(BatchDigest, WorkerId)>,
    /// Payloads of own certificates that consensus has not reported committed yet. One that
    /// can no longer be committed goes back into `batches`, so no batch is ever lost.
    uncommitted_own: BTreeMap<Round, Vec<(BatchDigest, WorkerId)>>,
    last_proposal_ms: u64,
    /// The highest round with a quorum of certificates, and when it got it: the wait for
    /// that round's leader (or its support) is timed from then.
    quorum_since: Option<(Round, u64)>,
    /// When [`Core::resend`] last ran.
    last_resend_ms: u64,
    /// The latest clock reading, in milliseconds since the UNIX epoch in production: it dates
    /// this primary's headers and bounds others'.
    now_ms: u64,
    /// Vote records made since the last [`Core::take_ready`].
    vote_records: Vec<VoteRecord>,
    /// The header proposed since the last [`Core::take_ready`], if any.
    new_header: Option<Header>,
    outputs: Vec<Output>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiter {
    Header((AuthorityIndex, Round)),
    Certificate(CertificateDigest),
}

impl Core {
    /// A core for a fresh authority (empty store).
    pub fn new(
        me: AuthorityIndex,
        committee: Committee,
        keypair: KeyPair,
        config: CoreConfig,
        leader: LeaderFn,
    ) -> Self {
        Self::recover(me, committee, keypair, config, leader, Recovered::default())
    }

    /// Rebuilds the core from what the primary stored. A header it proposed but did not see
    /// certified is broadcast again (same header, so no equivocation); it never proposes
    /// again for a round it already proposed in.
    pub fn recover(
        me: AuthorityIndex,
        committee: Committee,
        keypair: KeyPair,
        config: CoreConfig,
        leader: LeaderFn,
        recovered: Recovered,
    ) -> Self {
        let mut dag = Dag::recover(committee.clone(), recovered.gc_round);
        let mut certificates = recovered.certificates;
        certificates.sort_by_key(|c| (c.round(), c.author()));
        for c in certificates {
            // Stored certificates were inserted in causal order once; anything that does not
            // fit any more (parents below a newer GC round count as present) is dropped.
            let _ = dag.insert(c);
        }
        let votes: HashMap<_, _> = recovered.votes.into_iter().collect();
        let mut core = Self {
            me,
            committee,
            keypair,
            config,
            leader,
            dag,
            round: votes.get(&me).map_or(0, |(r, _)| *r),
            votes,
            highest_seen: 0,
            pending_headers: HashMap::new(),
            pending_certificates: HashMap::new(),
            waiting_on: HashMap::new(),
            fetched: HashSet::new(),
            payload_requested: BTreeMap::new(),
            own: None,
            batches: VecDeque::new(),
            uncommitted_own: BTreeMap::new(),
            last_proposal_ms: 0,
            quorum_since: None,
            last_resend_ms: 0,
            now_ms: 0,
            vote_records: Vec::new(),
            new_header: None,
            outputs: Vec::new(),
        };
        if let Some(header) = recovered.last_header.filter(|h| h.round == core.round) {
            let certified = core
                .dag
                .certificate_of(header.round, me)
                .is_some_and(|c| c.header.digest() == header.digest());
            if !certified && header.round > core.dag.gc_round() {
                let vote = Vote::new(&header, me, &core.keypair);
                core.outputs.push(Output::BroadcastHeader(header.clone()));
                core.own = Some(OwnHeader {
                    votes: BTreeMap::from([(me, vote.signature)]),
                    stake: core.committee.stake(me),
                    header,
                    certified: false,
                });
            }
        }
        core.recover_own_batches(recovered.own_batches);
        core
    }

    /// Own batches reported before the restart and not committed: those an own certificate
    /// above the GC round carries wait for consensus as they did before (and come back if it
    /// can no longer commit them), those of the re-broadcast header stay with it, and the rest
    /// (queued, in an abandoned header, or in a certificate below the GC round) are proposed
    /// again. Nothing a worker reported — and so nothing acknowledged to a client — is lost.
    fn recover_own_batches(&mut self, own_batches: Vec<(BatchDigest, WorkerId)>) {
        let mut unplaced: HashSet<BatchDigest> = own_batches.iter().map(|(d, _)| *d).collect();
        // A batch belongs to its latest proposal: one proposed again (its earlier certificate
        // could not be committed) is in a later header or certificate than the first.
        if let Some(own) = &self.own {
            for (d, _) in &own.header.payload {
                unplaced.remove(d);
            }
        }
        for round in (self.dag.gc_round() + 1..=self.dag.highest_round()).rev() {
            let Some(c) = self.dag.certificate_of(round, self.me) else {
                continue;
            };
            let carried: Vec<_> = c
                .header
                .payload
                .iter()
                .filter(|(d, _)| unplaced.remove(d))
                .copied()
                .collect();
            if !carried.is_empty() {
                self.uncommitted_own.insert(round, carried);
            }
        }
        self.batches = own_batches
            .into_iter()
            .filter(|(d, _)| unplaced.contains(d))
            .collect();
    }

    pub fn me(&self) -> AuthorityIndex {
        self.me
    }

    /// Round and digest of this primary's latest header, if any.
    pub fn last_header_digest(&self) -> Option<(Round, HeaderDigest)> {
        self.votes.get(&self.me).copied()
    }

    pub fn dag(&self) -> &Dag {
        &self.dag
    }

    /// Round of this primary's latest header.
    pub fn round(&self) -> Round {
        self.round
    }

    /// What the steps since the last call asked for: vote records to make durable, then the
    /// effects to carry out in order.
    pub fn take_ready(&mut self) -> Ready {
        Ready {
            votes: std::mem::take(&mut self.vote_records),
            header: self.new_header.take(),
            outputs: std::mem::take(&mut self.outputs),
        }
    }

    /// When [`Core::tick`] should be called next at the latest (for the header timer).
    pub fn next_deadline_ms(&self) -> u64 {
        [
            self.deadline_for(self.round + 1),
            self.leader_deadline().unwrap_or(0),
            self.resend_deadline(),
        ]
        .into_iter()
        .filter(|t| *t > self.now_ms)
        .min()
        .unwrap_or_else(|| self.resend_deadline())
    }

    /// Until when a proposal waits for the leader once its parents are there: one header
    /// delay from the moment the quorum formed. Timing the wait from the last proposal
    /// instead would give no wait at all whenever a round takes longer than the header
    /// delay, and then leaders go unsupported round after round on a slow network.
    fn leader_deadline(&self) -> Option<u64> {
        self.quorum_since
            .filter(|(round, _)| *round >= self.round)
            .map(|(_, since)| since + self.config.max_header_delay_ms)
    }

    /// When a primary that has not moved on re-sends its latest header or certificate and
    /// pulls the round it is stuck in (see [`Core::tick`]).
    fn resend_deadline(&self) -> u64 {
        let delay = self.config.max_header_delay_ms;
        (self.last_proposal_ms + 2 * delay).max(self.last_resend_ms + delay)
    }

    /// When the header timer for a header of `round` expires.
    fn deadline_for(&self, round: Round) -> u64 {
        let mut delay = self.config.max_header_delay_ms;
        if round % 2 == 0 && (self.leader)(round) == self.me {
            // The next leader proposes early so its header has time to gather support.
            delay /= 2;
        }
        self.last_proposal_ms + delay
    }

    /// Number of headers and certificates waiting for something (memory bound checks).
    pub fn pending_len(&self) -> usize {
        self.pending_headers.len() + self.pending_certificates.len()
    }

    /// A clock reading; may propose a header.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.try_propose();
        if self.now_ms >= self.resend_deadline() {
            self.resend();
        }
    }

    /// The round has not moved for two header delays. Messages that were acknowledged and
    /// then lost to a peer's crash are never re-sent by the network layer, so the primary
    /// repeats its own latest header (voters that already voted answer with the same vote) or
    /// certificate, and asks a peer — a different one each time — for everything from its
    /// highest complete round on.
    fn resend(&mut self) {
        self.last_resend_ms = self.now_ms;
        if let Some(own) = &self.own {
            match self
                .dag
                .certificate_of(own.header.round, self.me)
                .filter(|c| c.header.digest() == own.header.digest())
            {
                Some(certificate) => self
                    .outputs
                    .push(Output::BroadcastCertificate(certificate.clone())),
                None if !own.certified => self
                    .outputs
                    .push(Output::BroadcastHeader(own.header.clone())),
                None => {}
            }
        }
        let n = self.committee.size() as u64;
        let delay = self.config.max_header_delay_ms.max(1);
        let pick = (self.me.0 as u64 + 1 + (self.now_ms / delay) % (n - 1).max(1)) % n;
        if pick != self.me.0 as u64 {
            self.outputs.push(Output::FetchRange {
                from: AuthorityIndex(pick as u16),
                from_round: self.highest_quorum_round(),
            });
        }
    }

    /// A batch sealed by one of this authority's workers and stored by a quorum.
    pub fn add_batch(&mut self, digest: BatchDigest, worker: WorkerId) {
        self.batches.push_back((digest, worker));
        self.try_propose();
    }

    /// Another authority's header, signature already verified.
    pub fn handle_header(&mut self, header: Header) -> Result<(), CoreError> {
        let (author, round, digest) = (header.author, header.round, header.digest());
        self.check_round(round, MAX_HEADER_ROUNDS_AHEAD)?;
        if header.payload.len() > self.config.max_header_num_of_batches {
            return Err(CoreError::TooManyBatches {
                count: header.payload.len(),
                limit: self.config.max_header_num_of_batches,
            });
        }
        match self.votes.get(&author) {
            Some((voted, voted_digest)) if *voted == round && *voted_digest == digest => {
                // A retransmission: the vote is already on disk; send it again.
                let vote = Vote::new(&header, self.me, &self.keypair);
                self.send_vote(author, vote);
                return Ok(());
            }
            Some((voted, _)) if *voted == round => {
                return Err(CoreError::Equivocation { author, round })
            }
            Some((voted, _)) if *voted > round => {
                return Err(CoreError::StaleHeader {
                    author,
                    round,
                    voted: *voted,
                })
            }
            _ => {}
        }
        // Sub-DAG timestamps follow committed leaders' times (never decreasing), so a header
        // far ahead of this clock would drag them into the future; what a quorum votes for is
        // within the drift of some honest clock.
        if header.created_at > self.now_ms.saturating_add(MAX_CLOCK_DRIFT_MS) {
            return Err(CoreError::FromTheFuture {
                created_at: header.created_at,
                now: self.now_ms,
            });
        }
        if let Some(other) = self.pending_headers.get(&(author, round)) {
            return if other.header.digest() == digest {
                Ok(())
            } else {
                Err(CoreError::Equivocation { author, round })
            };
        }
        self.pending_headers.insert(
            (author, round),
            PendingHeader {
                header,
                payload_ready: false,
            },
        );
        self.process_header((author, round))
    }

    /// The batches of `author`'s header `digest` of `round` are stored locally (the answer to
    /// a `SyncPayload` with `notify`).
    pub fn payload_available(
        &mut self,
        author: AuthorityIndex,
        round: Round,
        digest: HeaderDigest,
    ) -> Result<(), CoreError> {
        match self.pending_headers.get_mut(&(author, round)) {
            Some(p) if p.header.digest() == digest => {
                p.payload_ready = true;
                self.process_header((author, round))
            }
            _ => Ok(()),
        }
    }

    /// A vote for this primary's header, signature already verified.
    pub fn handle_vote(&mut self, vote: Vote) -> Result<(), CoreError> {
        let quorum = self.committee.quorum_threshold();
        let own = match &mut self.own {
            Some(own) if own.header.digest() == vote.header_digest && vote.origin == self.me => own,
            _ => return Err(CoreError::UnexpectedVote),
        };
        if own.certified || own.votes.contains_key(&vote.author) {
            return Ok(());
        }
        own.votes.insert(vote.author, vote.signature);
        own.stake += self.committee.stake(vote.author);
        if own.stake < quorum {
            return Ok(());
        }
        own.certified = true;
        if !own.header.payload.is_empty() {
            self.uncommitted_own
                .insert(own.header.round, own.header.payload.clone());
        }
        let votes = own.votes.iter().map(|(a, s)| (*a, *s));
        let certificate = Certificate::new(&self.committee, own.header.clone(), votes)
            .expect("votes were counted to quorum stake");
        self.outputs
            .push(Output::BroadcastCertificate(certificate.clone()));
        self.handle_certificate(certificate)
    }

    /// A certificate, already verified (or formed here).
    pub fn handle_certificate(&mut self, certificate: Certificate) -> Result<(), CoreError> {
        let round = certificate.round();
        if round <= self.dag.gc_round() || self.dag.contains(&certificate.digest()) {
            return Ok(());
        }
        self.check_round(round, MAX_PENDING_ROUNDS)?;
        let header = &certificate.header;
        if header.author != self.me
            && self
                .payload_requested
                .get(&round)
                .is_none_or(|s| !s.contains(&header.digest()))
        {
            // Certified batches are stored by ≥ validity stake: fetch them for the output,
            // without waiting for them to insert the certificate.
            self.request_payload(header.clone(), false);
        }
        self.highest_seen = self.highest_seen.max(round);
        let digest = certificate.digest();
        self.pending_certificates.insert(digest, certificate);
        self.process_certificate(digest)
    }

    /// Consensus output this primary's certificates of `rounds`. An own certificate of an
    /// earlier round that was not output never will be (consensus skips any certificate at or
    /// below its author's last committed round), so its batches are proposed again.
    pub fn own_certificates_committed(&mut self, rounds: &[Round]) {
        for r in rounds {
            self.uncommitted_own.remove(r);
        }
        if let Some(highest) = rounds.iter().max() {
            let newer = self.uncommitted_own.split_off(highest);
            let orphans = std::mem::replace(&mut self.uncommitted_own, newer);
            self.requeue(orphans.into_values().flatten().collect());
        }
    }

    /// Which of `candidates` are still in use: referenced by a certificate or header above the
    /// GC round, or own batches still to be committed (queued, in the current header, or in
    /// own certificates not output yet). GC must not delete them even when a
    /// garbage-collected certificate carried them too, as happens when batches are proposed
    /// again. Only lookups in `candidates` (the few batches being collected) per reference.
    pub fn batches_in_use(&self, candidates: &HashSet<BatchDigest>) -> HashSet<BatchDigest> {
        if candidates.is_empty() {
            return HashSet::new();
        }
        let current = self.own.iter().flat_map(|o| &o.header.payload);
        let live = (self.dag.gc_round() + 1..=self.dag.highest_round())
            .flat_map(|r| self.dag.round(r))
            .flat_map(|c| &c.header.payload);
        let pending = self
            .pending_headers
            .values()
            .flat_map(|p| &p.header.payload)
            .chain(
                self.pending_certificates
                    .values()
                    .flat_map(|c| &c.header.payload),
            );
        self.batches
            .iter()
            .chain(self.uncommitted_own.values().flatten())
            .chain(current)
            .chain(live)
            .chain(pending)
            .map(|(digest, _)| *digest)
            .filter(|d| candidates.contains(d))
            .collect()
    }

    /// Puts batches back at the front of the queue, ahead of newer ones.
    fn requeue(&mut self, payload: Vec<(BatchDigest, WorkerId)>) {
        for p in payload.into_iter().rev() {
            self.batches.push_front(p);
        }
    }

    /// The leader schedule after a commit that changed it (reputation schedules do).
    pub fn set_leaders(&mut self, leader: LeaderFn) {
        self.leader = leader;
    }

    /// Consensus committed the leader of `leader_round`: drop what is now below GC.
    pub fn handle_committed(&mut self, leader_round: Round) {
        let gc_round = leader_round.saturating_sub(self.config.gc_depth);
        if gc_round <= self.dag.gc_round() {
            return;
        }
        // Below GC nothing is output any more: own batches still waiting there are re-proposed.
        let newer = self.uncommitted_own.split_off(&(gc_round + 1));
        let orphans = std::mem::replace(&mut self.uncommitted_own, newer);
        self.requeue(orphans.into_values().flatten().collect());
        let certificates = self.dag.garbage_collect(gc_round);
        self.pending_headers
            .retain(|(_, round), _| *round > gc_round);
        self.pending_certificates
            .retain(|_, c| c.round() > gc_round);
        let live: HashSet<CertificateDigest> = self.pending_certificates.keys().copied().collect();
        let headers: HashSet<(AuthorityIndex, Round)> =
            self.pending_headers.keys().copied().collect();
        self.waiting_on.retain(|_, waiters| {
            waiters.retain(|w| match w {
                Waiter::Header(d) => headers.contains(d),
                Waiter::Certificate(d) => live.contains(d),
            });
            !waiters.is_empty()
        });
        let waiting = &self.waiting_on;
        self.fetched.retain(|d| waiting.contains_key(d));
        self.payload_requested = self.payload_requested.split_off(&(gc_round + 1));
        self.outputs.push(Output::GarbageCollected {
            gc_round,
            certificates,
        });
        self.try_propose();
    }

    /// Whether `round` is above GC and at most `limit` rounds above the DAG.
    fn check_round(&self, round: Round, limit: Round) -> Result<(), CoreError> {
        let gc_round = self.dag.gc_round();
        if round <= gc_round {
            return Err(CoreError::TooOld { round, gc_round });
        }
        let highest = self.dag.highest_round();
        if round > highest + limit {
            return Err(CoreError::TooFarAhead {
                round,
                highest,
                limit,
            });
        }
        Ok(())
    }

    /// Moves a pending header on: fetch parents, then payload, then vote.
    fn process_header(&mut self, slot: (AuthorityIndex, Round)) -> Result<(), CoreError> {
        let Some(pending) = self.pending_headers.get(&slot) else {
            return Ok(());
        };
        let header = pending.header.clone();
        let digest = header.digest();
        match self.dag.check_parents(header.round, &header.parents) {
            Insert::MissingParents(missing) => {
                self.wait_for(Waiter::Header(slot), header.author, header.round, missing);
                Ok(())
            }
            Insert::InsufficientParents { stake, needed } => {
                self.pending_headers.remove(&slot);
                Err(CoreError::InsufficientParents { stake, needed })
            }
            _ if !pending.payload_ready => {
                self.request_payload(header, true);
                Ok(())
            }
            _ => {
                self.pending_headers.remove(&slot);
                let (author, round) = (header.author, header.round);
                // The record may have moved on while this header waited.
                if let Some((voted, _)) = self.votes.get(&author) {
                    if *voted >= round {
                        return Err(CoreError::StaleHeader {
                            author,
                            round,
                            voted: *voted,
                        });
                    }
                }
                self.record_vote(author, round, digest);
                let vote = Vote::new(&header, self.me, &self.keypair);
                self.send_vote(author, vote);
                Ok(())
            }
        }
    }

    fn record_vote(&mut self, author: AuthorityIndex, round: Round, digest: HeaderDigest) {
        self.votes.insert(author, (round, digest));
        self.vote_records.push(VoteRecord {
            author,
            round,
            digest,
        });
    }

    fn send_vote(&mut self, to: AuthorityIndex, vote: Vote) {
        self.outputs.push(Output::SendVote { to, vote });
    }

    fn request_payload(&mut self, header: Header, notify: bool) {
        let digest = header.digest();
        let fresh = self
            .payload_requested
            .entry(header.round)
            .or_default()
            .insert(digest);
        if !fresh && !notify {
            return;
        }
        self.outputs.push(Output::SyncPayload {
            header: digest,
            author: header.author,
            round: header.round,
            payload: header.payload,
            notify,
        });
    }

    /// Tries to insert a pending certificate; on success, wakes whatever waited for it.
    fn process_certificate(&mut self, digest: CertificateDigest) -> Result<(), CoreError> {
        let Some(certificate) = self.pending_certificates.get(&digest) else {
            return Ok(());
        };
        let (author, round) = (certificate.author(), certificate.round());
        match self.dag.insert(certificate.clone()) {
            Insert::Inserted => {
                let certificate = self
                    .pending_certificates
                    .remove(&digest)
                    .expect("it was just read");
                self.outputs.push(Output::NewCertificate(certificate));
                // Wake waiters depth-first through the work list, not by recursion, so a long
                // chain of certificates arriving in reverse cannot overflow the stack.
                let mut ready = vec![digest];
                while let Some(d) = ready.pop() {
                    self.fetched.remove(&d);
                    for waiter in self.waiting_on.remove(&d).unwrap_or_default() {
                        match waiter {
                            Waiter::Header(h) => {
                                // A bad header found late is the sender's problem, not ours.
                                let _ = self.process_header(h);
                            }
                            Waiter::Certificate(c) => {
                                if self.insert_pending(c) {
                                    ready.push(c);
                                }
                            }
                        }
                    }
                }
                self.try_propose();
                Ok(())
            }
            Insert::MissingParents(missing) => {
                self.wait_for(Waiter::Certificate(digest), author, round, missing);
                Ok(())
            }
            Insert::InsufficientParents { stake, needed } => {
                self.pending_certificates.remove(&digest);
                Err(CoreError::InsufficientParents { stake, needed })
            }
            Insert::Equivocation(_) => {
                self.pending_certificates.remove(&digest);
                Err(CoreError::ConflictingCertificate { author, round })
            }
            Insert::Duplicate | Insert::BelowGc => {
                self.pending_certificates.remove(&digest);
                Ok(())
            }
        }
    }

    /// Inserts a pending certificate whose parents may now all be present; returns whether it
    /// joined the DAG (and was announced).
    fn insert_pending(&mut self, digest: CertificateDigest) -> bool {
        let Some(certificate) = self.pending_certificates.get(&digest) else {
            return false;
        };
        let (author, round) = (certificate.author(), certificate.round());
        match self.dag.insert(certificate.clone()) {
            Insert::Inserted => {
                let c = self
                    .pending_certificates
                    .remove(&digest)
                    .expect("it was just read");
                self.outputs.push(Output::NewCertificate(c));
                true
            }
            Insert::MissingParents(missing) => {
                self.wait_for(Waiter::Certificate(digest), author, round, missing);
                false
            }
            _ => {
                self.pending_certificates.remove(&digest);
                false
            }
        }
    }

    /// Registers `waiter` on each missing digest and asks for them: parent by parent when they
    /// are close, by range when this primary is clearly behind.
    fn wait_for(
        &mut self,
        waiter: Waiter,
        from: AuthorityIndex,
        round: Round,
        missing: Vec<CertificateDigest>,
    ) {
        let mut fresh = Vec::new();
        for d in missing {
            if !self.fetched.contains(&d) {
                fresh.push(d);
            }
            let list = self.waiting_on.entry(d).or_default();
            if !list.contains(&waiter) {
                list.push(waiter);
            }
        }
        let caught_up = self.highest_quorum_round();
        if round > caught_up + CATCH_UP_DISTANCE {
            // The digests are not marked as fetched: a range starting at `caught_up` cannot
            // bring a parent below it, so once the waiter is within reach (it is processed
            // again whenever it is delivered again) its missing parents are asked by digest.
            // Marking them here left a lagging node waiting for ever on a parent one round
            // below its highest quorum round (simulator seed 7000138, 7 authorities).
            // A round with a quorum may still lack a parent that later rounds need: the
            // range starts at that round, not above it.
            self.outputs.push(Output::FetchRange {
                from,
                from_round: caught_up,
            });
        } else if !fresh.is_empty() {
            self.fetched.extend(fresh.iter().copied());
            self.outputs.push(Output::FetchCertificates {
                from,
                round,
                digests: fresh,
            });
        }
    }

    /// The highest round at or above GC whose certificates carry a quorum (or the GC round).
    fn highest_quorum_round(&self) -> Round {
        let mut r = self.dag.highest_round();
        while r > self.dag.gc_round() && !self.dag.has_quorum(r) {
            r -= 1;
        }
        r
    }

    /// Proposes the next header when its parents are there and either enough batches wait or
    /// the header timer expired — and, for liveness of the commit rule (design.md), after the
    /// leader of the parent round is known or one header delay after the parents' quorum.
    fn try_propose(&mut self) {
        let parent_round = self.highest_quorum_round();
        // While catching up, headers for rounds the others left long ago would be useless.
        if parent_round < self.round || parent_round + CATCH_UP_DISTANCE < self.highest_seen {
            return;
        }
        if self
            .quorum_since
            .is_none_or(|(round, _)| round != parent_round)
        {
            self.quorum_since = Some((parent_round, self.now_ms));
        }
        let next = parent_round + 1;
        let timer_expired = self.now_ms >= self.deadline_for(next);
        let enough_batches = self.batches.len() >= self.config.header_num_of_batches_threshold;
        let ready = if self.leader_ready(parent_round) {
            timer_expired || enough_batches
        } else {
            timer_expired && self.leader_deadline().is_some_and(|t| self.now_ms >= t)
        };
        if !ready {
            return;
        }
        // A header of ours that was not certified is abandoned: it never will be (only we
        // could assemble its certificate), so its batches go into this one.
        if let Some(abandoned) = self.own.take().filter(|o| !o.certified) {
            self.requeue(abandoned.header.payload);
        }
        let parents: Vec<CertificateDigest> = self
            .dag
            .round(parent_round)
            .map(Certificate::digest)
            .collect();
        let take = self
            .batches
            .len()
            .min(self.config.max_header_num_of_batches);
        let payload: Vec<_> = self.batches.drain(..take).collect();
        let header = Header::new(
            self.me,
            next,
            self.committee.epoch(),
            self.now_ms,
            payload,
            parents,
            &self.keypair,
        );
        let digest = header.digest();
        self.round = next;
        self.last_proposal_ms = self.now_ms;
        self.record_vote(self.me, next, digest);
        self.new_header = Some(header.clone());
        self.outputs.push(Output::BroadcastHeader(header.clone()));
        let vote = Vote::new(&header, self.me, &self.keypair);
        self.own = Some(OwnHeader {
            header,
            votes: BTreeMap::new(),
            stake: 0,
            certified: false,
        });
        // Our own vote goes through the same path as everyone else's.
        let _ = self.handle_vote(vote);
    }

    /// Whether proposing on top of `parent_round` now helps the leader (design.md): after an
    /// even round, its leader's certificate is there; after an odd round, the parents either
    /// support the previous leader with validity stake or cannot any more.
    fn leader_ready(&self, parent_round: Round) -> bool {
        if parent_round == 0 {
            return true;
        }
        if parent_round % 2 == 0 {
            let leader = (self.leader)(parent_round);
            return self.dag.certificate_of(parent_round, leader).is_some();
        }
        let leader_round = parent_round - 1;
        let Some(leader) = self
            .dag
            .certificate_of(leader_round, (self.leader)(leader_round))
            .map(Certificate::digest)
        else {
            return true;
        };
        let (mut support, mut against) = (0, 0);
        for c in self.dag.round(parent_round) {
            if c.header.parents.contains(&leader) {
                support += self.committee.stake(c.author());
            } else {
                against += self.committee.stake(c.author());
            }
        }
        support >= self.committee.validity_threshold()
            || against >= self.committee.quorum_threshold()
    }
}
