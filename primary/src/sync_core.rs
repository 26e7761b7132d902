//! The certificate synchronizer's decisions, as a pure state machine: what to ask of whom and
//! when, which answers to take, and where a range sync goes next. No sockets, clocks or
//! storage: the caller passes the time, the GC round and what it already has, and carries out
//! the requests. The tokio actor (`synchronizer.rs`) and the simulator drive this same code.
//!
//! A sync storm is what a lagging node must not cause, so: each missing digest is requested
//! once (deduplicated), only after a grace period in which the broadcast copy usually
//! arrives, and again only after `retry_ms` (then from `retry_nodes` other authorities); at
//! most one range request is in flight, and a new one starts no sooner than the grace period
//! after the last one ended, unless it continues a full answer. A peer whose full range answer
//! does not move past the round asked for (copies of what this node has) is passed over for
//! range requests until every peer has been.
//!
//! Call order: [`SyncCore::want`] and [`SyncCore::range`] for what the core asks,
//! [`SyncCore::tick`] whenever [`SyncCore::next_deadline`] passes (or more often), and
//! [`SyncCore::answered`] with each answer, or its failure, to a request this core made.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use weft_types::messages::MAX_CERTIFICATES_REQUEST;
use weft_types::{AuthorityIndex, Certificate, CertificateDigest, Committee, Round};

/// Give up on a digest after this many rounds of requests (it is below GC by then, or gone).
pub const MAX_ATTEMPTS: u32 = 20;

#[derive(Clone, Debug)]
pub struct SyncConfig {
    /// Wait this long before asking for a missing parent (its broadcast copy may be on its
    /// way), and between the end of one range request and the start of an unrelated one.
    pub grace_ms: u64,
    /// Ask again (other authorities) after this long without the certificate; a request
    /// unanswered this long is over.
    pub retry_ms: u64,
    /// Authorities a retried request goes to.
    pub retry_nodes: usize,
    /// Most certificates asked for in one range request.
    pub range_limit: usize,
}

/// A request to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Certificates by digest (at most [`MAX_CERTIFICATES_REQUEST`]).
    Digests(Vec<CertificateDigest>),
    /// Certificates of rounds ≥ `from_round`, at most `limit`.
    Range { from_round: Round, limit: usize },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub to: AuthorityIndex,
    pub fetch: Fetch,
}

/// What an answer gave.
#[derive(Debug, Default)]
pub struct Answered {
    /// Verified certificates to hand to the core, in (round, author) order.
    pub certificates: Vec<Certificate>,
    /// Why each refused certificate was refused, as metric reasons: `unsolicited`,
    /// `duplicate`, `unproductive_range`, or the verifier's reason.
    pub rejected: Vec<&'static str>,
    /// The range request that continues this one, if any.
    pub next: Option<Request>,
}

#[derive(Debug)]
struct Missing {
    /// Who referenced it: asked first.
    from: AuthorityIndex,
    /// The missing certificate's round.
    round: Round,
    first_seen: u64,
    asked_at: Option<u64>,
    attempts: u32,
}

pub struct SyncCore {
    /// The other authorities, in index order.
    peers: Vec<AuthorityIndex>,
    config: SyncConfig,
    missing: BTreeMap<CertificateDigest, Missing>,
    /// When the range request in flight was sent.
    range_since: Option<u64>,
    /// When the last range request ended.
    last_range_end: Option<u64>,
    /// Peers whose last range answer brought nothing new.
    unproductive: BTreeSet<AuthorityIndex>,
    /// Picks the authorities a retry goes to.
    rng: StdRng,
}

impl SyncCore {
    /// `seed` makes the choice of retry targets repeatable.
    pub fn new(me: AuthorityIndex, committee: &Committee, config: SyncConfig, seed: u64) -> Self {
        Self {
            peers: committee
                .authorities()
                .map(|(a, _)| a)
                .filter(|a| *a != me)
                .collect(),
            config,
            missing: BTreeMap::new(),
            range_since: None,
            last_range_end: None,
            unproductive: BTreeSet::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The core misses `digests`, parents of a certificate of `round` from `from`.
    pub fn want(
        &mut self,
        now: u64,
        from: AuthorityIndex,
        round: Round,
        digests: Vec<CertificateDigest>,
    ) {
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

    /// The core is behind: everything from `from_round` up, first from `from`. A request
    /// while one is in flight, or within the grace period after the last, is dropped (the
    /// core asks again when the next certificate finds parents missing).
    pub fn range(&mut self, now: u64, from: AuthorityIndex, from_round: Round) -> Option<Request> {
        self.expire_range(now);
        let cooling = self
            .last_range_end
            .is_some_and(|t| now < t + self.config.grace_ms);
        if self.range_since.is_some() || cooling {
            return None;
        }
        self.start_range(now, from, from_round)
    }

    fn start_range(
        &mut self,
        now: u64,
        from: AuthorityIndex,
        from_round: Round,
    ) -> Option<Request> {
        if self.unproductive.len() >= self.peers.len() {
            self.unproductive.clear();
        }
        // `from`, or the next peer after it that has not been unproductive.
        let start = self.peers.partition_point(|p| *p < from);
        let (before, after) = self.peers.split_at(start);
        let to = *after
            .iter()
            .chain(before)
            .find(|p| !self.unproductive.contains(p))?;
        self.range_since = Some(now);
        Some(Request {
            to,
            fetch: Fetch::Range {
                from_round,
                limit: self.config.range_limit,
            },
        })
    }

    /// A range request unanswered for `retry_ms` is over.
    fn expire_range(&mut self, now: u64) {
        if self
            .range_since
            .is_some_and(|t| now >= t + self.config.retry_ms)
        {
            self.range_since = None;
            self.last_range_end = Some(now);
        }
    }

    /// The requests that are due at `now`: first asks after the grace period (to whoever
    /// referenced the digest), retries after `retry_ms` (to other authorities). Digests that
    /// arrived (`has`), fell below `gc_round` or ran out of attempts are dropped.
    pub fn tick(
        &mut self,
        now: u64,
        gc_round: Round,
        has: impl Fn(&CertificateDigest) -> bool,
    ) -> Vec<Request> {
        self.expire_range(now);
        let (grace, retry) = (self.config.grace_ms, self.config.retry_ms);
        self.missing
            .retain(|_, m| m.round > gc_round && m.attempts < MAX_ATTEMPTS);
        // Only what is due is looked up (`has` may read a store).
        let due: Vec<CertificateDigest> = self
            .missing
            .iter()
            .filter(|(_, m)| match m.asked_at {
                None => now >= m.first_seen + grace,
                Some(t) => now >= t + retry,
            })
            .map(|(d, _)| *d)
            .collect();
        let mut targets: BTreeMap<AuthorityIndex, Vec<CertificateDigest>> = BTreeMap::new();
        for d in due {
            if has(&d) {
                self.missing.remove(&d);
                continue;
            }
            let Some(m) = self.missing.get_mut(&d) else {
                continue;
            };
            m.asked_at = Some(now);
            m.attempts += 1;
            if m.attempts == 1 {
                targets.entry(m.from).or_default().push(d);
            } else {
                for to in self
                    .peers
                    .choose_multiple(&mut self.rng, self.config.retry_nodes)
                {
                    targets.entry(*to).or_default().push(d);
                }
            }
        }
        targets
            .into_iter()
            .flat_map(|(to, digests)| {
                digests
                    .chunks(MAX_CERTIFICATES_REQUEST)
                    .map(|chunk| Request {
                        to,
                        fetch: Fetch::Digests(chunk.to_vec()),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// When [`SyncCore::tick`] next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        let (grace, retry) = (self.config.grace_ms, self.config.retry_ms);
        self.missing
            .values()
            .map(|m| m.asked_at.map_or(m.first_seen + grace, |t| t + retry))
            .chain(self.range_since.map(|t| t + retry))
            .min()
    }

    /// Digests waited for.
    pub fn missing_len(&self) -> usize {
        self.missing.len()
    }

    /// The answer of `peer` to `fetch` (`None`: it failed or timed out). Takes what was
    /// asked for (anything from a range), once each, that `verify` accepts (its error is the
    /// rejection's reason); `has` says what this node already stores (a range answer that
    /// brings nothing new marks the peer).
    pub fn answered(
        &mut self,
        now: u64,
        peer: AuthorityIndex,
        fetch: &Fetch,
        answer: Option<Vec<Certificate>>,
        verify: impl Fn(&Certificate) -> Result<(), &'static str>,
        has: impl Fn(&CertificateDigest) -> bool,
    ) -> Answered {
        let range = match fetch {
            Fetch::Range { from_round, limit } => {
                self.range_since = None;
                self.last_range_end = Some(now);
                Some((*from_round, *limit))
            }
            Fetch::Digests(_) => None,
        };
        let mut out = Answered::default();
        let Some(certificates) = answer else {
            return out;
        };
        let received = certificates.len();
        let mut seen = HashSet::with_capacity(received);
        // Certificates of this answer this node did not have.
        let mut new = 0usize;
        for c in certificates {
            let digest = c.digest();
            if range.is_none() && !self.missing.contains_key(&digest) {
                out.rejected.push("unsolicited");
                continue;
            }
            if !seen.insert(digest) {
                out.rejected.push("duplicate");
                continue;
            }
            if !has(&digest) {
                new += 1;
            }
            match verify(&c) {
                Ok(()) => {
                    self.missing.remove(&digest);
                    out.certificates.push(c);
                }
                Err(reason) => out.rejected.push(reason),
            }
        }
        out.certificates.sort_by_key(|c| (c.round(), c.author()));
        let Some((from_round, limit)) = range else {
            return out;
        };
        let last = out.certificates.last().map(Certificate::round);
        // Rounds move on even through certificates this node has (it scans towards what it
        // lacks); a peer repeating one round is going nowhere.
        let progress = last.is_some_and(|last| last > from_round);
        match (received >= limit, last) {
            // A full answer that moved on: there is more. The last round may be partial, so
            // ask from it.
            (true, Some(last)) if progress => out.next = self.start_range(now, peer, last),
            // Full of copies of one round: ask someone else.
            (true, _) => {
                self.unproductive.insert(peer);
                out.rejected.push("unproductive_range");
                out.next = self.start_range(now, peer, from_round);
            }
            // Asked because this node is behind, and told nothing it lacks.
            _ if new == 0 && received > 0 => {
                self.unproductive.insert(peer);
            }
            _ => {
                self.unproductive.remove(&peer);
            }
        }
        out
    }
}
