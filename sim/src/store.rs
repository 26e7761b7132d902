//! What a simulated authority keeps across a crash: the records a real node writes to RocksDB
//! (vote record, own headers, certificates by round, the primary's GC round, consensus state
//! with the committed log, and the workers' batch counter). Every write is durable the moment
//! it is made: RocksDB's WAL survives a process crash, which is the fault simulated here. A
//! failpoint chosen by the seed kills the process right after one of its writes, whichever it
//! is, so every pair of consecutive writes of the node gets a crash between them.

use std::collections::BTreeMap;
use weft_consensus::{CommittedSubDag, ConsensusState};
use weft_primary::core::Recovered;
use weft_types::{
    AuthorityIndex, BatchDigest, Certificate, CertificateDigest, Header, HeaderDigest, Round,
    WorkerId,
};

/// One committed sub-DAG as the committed log holds it: enough to compare authorities.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommittedRecord {
    pub index: u64,
    pub leader_round: Round,
    pub leader: CertificateDigest,
    pub timestamp: u64,
    /// In output order.
    pub certificates: Vec<CertificateDigest>,
    /// Every batch of every certificate, in output order, duplicates kept (the checks look
    /// for them).
    pub batches: Vec<BatchDigest>,
}

impl From<&CommittedSubDag> for CommittedRecord {
    fn from(s: &CommittedSubDag) -> Self {
        Self {
            index: s.index,
            leader_round: s.leader_round,
            leader: s.leader,
            timestamp: s.timestamp,
            certificates: s.certificates.iter().map(Certificate::digest).collect(),
            batches: s
                .certificates
                .iter()
                .flat_map(|c| c.header.payload.iter().map(|(d, _)| *d))
                .collect(),
        }
    }
}

#[derive(Default)]
pub struct DurableStore {
    /// Last (round, header digest) voted for, per author.
    pub votes: BTreeMap<AuthorityIndex, (Round, HeaderDigest)>,
    /// This authority's own headers, by round.
    pub headers: BTreeMap<Round, Header>,
    certificates: BTreeMap<(Round, AuthorityIndex), Certificate>,
    digests: BTreeMap<CertificateDigest, (Round, AuthorityIndex)>,
    /// The primary's GC round (certificates at or below it were deleted).
    pub primary_gc_round: Round,
    /// Written in the same step as the log entries it accounts for.
    pub consensus_state: Option<ConsensusState>,
    /// The committed log, from index 0 (no retention limit in the simulation).
    pub log: Vec<CommittedRecord>,
    /// Own batches reported to the primary and not committed yet, in report order (what
    /// the primary's `OWN_BATCHES` column holds).
    pub own_batches: Vec<(BatchDigest, WorkerId)>,
    /// Synthetic batches this authority's workers made so far (keeps digests unique across
    /// restarts).
    pub batches_made: u64,
    /// Writes made so far, over every life.
    writes: u64,
    /// The write after which the process dies, if a failpoint is armed.
    fail_after: Option<u64>,
}

/// The kinds of write a node makes, as [`DurableStore::wrote`] names them.
pub const WRITES: [&str; 5] = ["vote", "certificate", "gc", "own batch", "sub-DAG"];

impl DurableStore {
    /// The process dies right after the `n`-th write from now (`n` ≥ 1).
    pub fn arm(&mut self, n: u64) {
        self.fail_after = Some(self.writes + n.max(1));
    }

    pub fn disarm(&mut self) {
        self.fail_after = None;
    }

    pub fn is_armed(&self) -> bool {
        self.fail_after.is_some()
    }

    /// Counts a write of `kind` (one of [`WRITES`]), made durable just now; `true` if the
    /// failpoint is this write, and the process must die before doing anything else.
    #[must_use]
    pub fn wrote(&mut self, kind: &'static str) -> bool {
        debug_assert!(WRITES.contains(&kind));
        self.writes += 1;
        if self.fail_after != Some(self.writes) {
            return false;
        }
        self.fail_after = None;
        true
    }

    pub fn insert_certificate(&mut self, c: Certificate) {
        let key = (c.round(), c.author());
        self.digests.insert(c.digest(), key);
        self.certificates.insert(key, c);
    }

    pub fn certificate(&self, digest: &CertificateDigest) -> Option<&Certificate> {
        self.digests
            .get(digest)
            .and_then(|k| self.certificates.get(k))
    }

    /// Every stored certificate of a round above `round`, in (round, author) order.
    pub fn certificates_above(&self, round: Round) -> Vec<Certificate> {
        self.range(round + 1, usize::MAX)
    }

    /// At most `limit` certificates of rounds ≥ `from_round`, in (round, author) order (what
    /// the primary's handler serves for a range request).
    pub fn range(&self, from_round: Round, limit: usize) -> Vec<Certificate> {
        self.certificates
            .range((from_round, AuthorityIndex(0))..)
            .take(limit)
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// What the runner does with `GarbageCollected`: delete certificates and own headers at or
    /// below `gc_round` and record it. That is the runner with `certificate_retention_rounds`
    /// 0, the harshest setting: an authority catches up only from within `gc_depth` rounds.
    pub fn garbage_collect(&mut self, gc_round: Round) {
        self.certificates = self
            .certificates
            .split_off(&(gc_round + 1, AuthorityIndex(0)));
        self.digests.retain(|_, (r, _)| *r > gc_round);
        self.headers = self.headers.split_off(&(gc_round + 1));
        self.primary_gc_round = self.primary_gc_round.max(gc_round);
    }

    /// What `PrimaryStores::recover` reads for a restarting primary.
    pub fn recovered(&self, me: AuthorityIndex) -> Recovered {
        let last_header = self.votes.get(&me).and_then(|(round, digest)| {
            self.headers
                .get(round)
                .filter(|h| h.digest() == *digest)
                .cloned()
        });
        Recovered {
            votes: self.votes.iter().map(|(a, v)| (*a, *v)).collect(),
            certificates: self.certificates_above(self.primary_gc_round),
            gc_round: self.primary_gc_round,
            last_header,
            own_batches: self.own_batches.clone(),
        }
    }
}
