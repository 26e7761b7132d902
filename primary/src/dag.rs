//! The certified DAG as a primary holds it in memory: certificates by round and author, which
//! parents are missing, when a round has a quorum, and garbage collection.
//!
//! Pure bookkeeping: no I/O, no clock. Certificates given to [`Dag::insert`] must already be
//! verified (`Certificate::verify`); the DAG checks only how they fit together.

use std::collections::{BTreeMap, HashMap};
use weft_types::{AuthorityIndex, Certificate, CertificateDigest, Committee, Round, Stake};

/// What [`Dag::insert`] did with a certificate.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    /// Stored; every parent was present.
    Inserted,
    /// Already held.
    Duplicate,
    /// Its round is at or below the GC round: nothing to do with it.
    BelowGc,
    /// Not stored: these parents must be fetched first (causal order is kept).
    MissingParents(Vec<CertificateDigest>),
    /// Not stored: its parents do not carry quorum stake of round − 1.
    InsufficientParents { stake: Stake, needed: Stake },
    /// Not stored: a different certificate of this (author, round) is held. With verified
    /// certificates this implies more than f Byzantine stake; reported, never replaced.
    Equivocation(CertificateDigest),
}

/// Certificates of rounds above the GC round.
pub struct Dag {
    committee: Committee,
    /// Rounds ≤ `gc_round` have been dropped; their certificates count as present parents.
    gc_round: Round,
    rounds: BTreeMap<Round, HashMap<AuthorityIndex, Certificate>>,
    index: HashMap<CertificateDigest, (Round, AuthorityIndex)>,
}

impl Dag {
    /// A DAG holding the genesis certificates (round 0).
    pub fn new(committee: Committee) -> Self {
        let mut dag = Self {
            gc_round: 0,
            rounds: BTreeMap::new(),
            index: HashMap::new(),
            committee,
        };
        for g in Certificate::genesis(&dag.committee) {
            dag.store(g);
        }
        dag
    }

    /// An empty DAG whose rounds ≤ `gc_round` were garbage collected (after a restart: the
    /// stored certificates above it are inserted next, in round order). With `gc_round` 0 it
    /// holds genesis, like [`Dag::new`].
    pub fn recover(committee: Committee, gc_round: Round) -> Self {
        if gc_round == 0 {
            return Self::new(committee);
        }
        Self {
            gc_round,
            rounds: BTreeMap::new(),
            index: HashMap::new(),
            committee,
        }
    }

    fn store(&mut self, certificate: Certificate) {
        let (round, author) = (certificate.round(), certificate.author());
        self.index.insert(certificate.digest(), (round, author));
        self.rounds
            .entry(round)
            .or_default()
            .insert(author, certificate);
    }

    pub fn gc_round(&self) -> Round {
        self.gc_round
    }

    /// The highest round holding any certificate.
    pub fn highest_round(&self) -> Round {
        self.rounds
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.gc_round)
    }

    pub fn get(&self, digest: &CertificateDigest) -> Option<&Certificate> {
        let (round, author) = self.index.get(digest)?;
        self.rounds.get(round)?.get(author)
    }

    pub fn contains(&self, digest: &CertificateDigest) -> bool {
        self.index.contains_key(digest)
    }

    pub fn round(&self, round: Round) -> impl Iterator<Item = &Certificate> {
        self.rounds.get(&round).into_iter().flat_map(|m| m.values())
    }

    pub fn certificate_of(&self, round: Round, author: AuthorityIndex) -> Option<&Certificate> {
        self.rounds.get(&round)?.get(&author)
    }

    /// Stake of the distinct authors holding a certificate in `round`.
    pub fn round_stake(&self, round: Round) -> Stake {
        self.round(round)
            .map(|c| self.committee.stake(c.author()))
            .sum()
    }

    /// Round `round` has certificates from quorum stake: a header of `round + 1` can be built.
    pub fn has_quorum(&self, round: Round) -> bool {
        self.round_stake(round) >= self.committee.quorum_threshold()
    }

    /// The parents among `parents` that are neither held nor garbage collected.
    pub fn missing<'a>(
        &self,
        parents: impl IntoIterator<Item = &'a CertificateDigest>,
        parent_round: Round,
    ) -> Vec<CertificateDigest> {
        if parent_round <= self.gc_round {
            return Vec::new();
        }
        parents
            .into_iter()
            .filter(|d| !self.contains(d))
            .copied()
            .collect()
    }

    /// Checks that the parents of a header or certificate of `round` are certificates of
    /// `round − 1` from quorum stake (invariant 3); parents below GC are taken on trust because
    /// a quorum of the committee already checked them.
    pub fn check_parents(&self, round: Round, parents: &[CertificateDigest]) -> Insert {
        let parent_round = round.saturating_sub(1);
        let missing = self.missing(parents, parent_round);
        if !missing.is_empty() {
            return Insert::MissingParents(missing);
        }
        if parent_round <= self.gc_round && parent_round > 0 {
            return Insert::Inserted;
        }
        let mut stake = 0;
        for p in parents {
            match self.index.get(p) {
                Some((r, author)) if *r == parent_round => stake += self.committee.stake(*author),
                _ => {}
            }
        }
        let needed = self.committee.quorum_threshold();
        if stake < needed {
            return Insert::InsufficientParents { stake, needed };
        }
        Insert::Inserted
    }

    /// Adds a verified certificate if it fits the DAG; see [`Insert`].
    pub fn insert(&mut self, certificate: Certificate) -> Insert {
        let (round, author) = (certificate.round(), certificate.author());
        if round <= self.gc_round {
            return Insert::BelowGc;
        }
        if let Some(held) = self.certificate_of(round, author) {
            let held = held.digest();
            return if held == certificate.digest() {
                Insert::Duplicate
            } else {
                Insert::Equivocation(held)
            };
        }
        match self.check_parents(round, &certificate.header.parents) {
            Insert::Inserted => {
                self.store(certificate);
                Insert::Inserted
            }
            other => other,
        }
    }

    /// Drops every round ≤ `gc_round`; returns the certificates dropped. GC never moves back.
    pub fn garbage_collect(&mut self, gc_round: Round) -> Vec<Certificate> {
        if gc_round <= self.gc_round {
            return Vec::new();
        }
        self.gc_round = gc_round;
        let keep = self.rounds.split_off(&(gc_round + 1));
        let dropped: Vec<Certificate> = std::mem::replace(&mut self.rounds, keep)
            .into_values()
            .flat_map(HashMap::into_values)
            .collect();
        for c in &dropped {
            self.index.remove(&c.digest());
        }
        dropped
    }

    /// Number of certificates held (memory bound checks).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_test_utils::CommitteeFixture;

    fn a(i: u16) -> AuthorityIndex {
        AuthorityIndex(i)
    }

    #[test]
    fn inserts_in_causal_order_and_tracks_quorum() {
        let f = CommitteeFixture::new(4, 1, 1);
        let dag_rounds = f.dag(3);
        let mut dag = Dag::new(f.committee.clone());
        assert!(dag.has_quorum(0));
        assert!(!dag.has_quorum(1));
        // A round-2 certificate before its parents: reports exactly the missing ones.
        let r2 = dag_rounds[2][0].clone();
        match dag.insert(r2.clone()) {
            Insert::MissingParents(m) => assert_eq!(m.len(), 4),
            other => panic!("{other:?}"),
        }
        for (i, c) in dag_rounds[1].iter().enumerate() {
            assert_eq!(dag.insert(c.clone()), Insert::Inserted);
            assert_eq!(
                dag.has_quorum(1),
                i >= 2,
                "quorum after {} certificates",
                i + 1
            );
        }
        assert_eq!(dag.insert(dag_rounds[1][0].clone()), Insert::Duplicate);
        assert_eq!(dag.insert(r2), Insert::Inserted);
        assert_eq!(dag.highest_round(), 2);
        assert_eq!(dag.round_stake(2), 1);
    }

    #[test]
    fn rejects_too_few_parents_and_equivocation() {
        let f = CommitteeFixture::new(4, 1, 2);
        let genesis = Certificate::genesis(&f.committee);
        let mut dag = Dag::new(f.committee.clone());
        // Two parents (f+1 stake) are not a quorum.
        let thin = f.certificate(f.header(a(0), 1, &genesis[..2], vec![]));
        assert_eq!(
            dag.insert(thin),
            Insert::InsufficientParents {
                stake: 2,
                needed: 3
            }
        );
        assert_eq!(dag.len(), 4, "only genesis is held");

        let first = f.certificate(f.header(a(1), 1, &genesis, vec![]));
        let other = f.certificate(f.header(a(1), 1, &genesis[..3], vec![]));
        assert_eq!(dag.insert(first.clone()), Insert::Inserted);
        assert_eq!(dag.insert(other), Insert::Equivocation(first.digest()));
        assert_eq!(dag.certificate_of(1, a(1)), Some(&first));
    }

    #[test]
    fn parents_from_the_wrong_round_do_not_count() {
        let f = CommitteeFixture::new(4, 1, 3);
        let rounds = f.dag(2);
        let mut dag = Dag::new(f.committee.clone());
        for c in rounds[1].iter().chain(&rounds[2]) {
            assert_eq!(dag.insert(c.clone()), Insert::Inserted);
        }
        // A round-3 certificate whose parents are round-1 certificates.
        let skip = f.certificate(f.header(a(0), 3, &rounds[1], vec![]));
        assert_eq!(
            dag.insert(skip),
            Insert::InsufficientParents {
                stake: 0,
                needed: 3
            }
        );
    }

    #[test]
    fn garbage_collection_bounds_memory() {
        let f = CommitteeFixture::new(4, 1, 4);
        let rounds = f.dag(60);
        let mut dag = Dag::new(f.committee.clone());
        let gc_depth = 10;
        let mut peak = 0;
        for (r, certs) in rounds.iter().enumerate().skip(1) {
            for c in certs {
                assert_eq!(dag.insert(c.clone()), Insert::Inserted);
            }
            dag.garbage_collect((r as Round).saturating_sub(gc_depth));
            peak = peak.max(dag.len());
        }
        // At most gc_depth + 1 rounds of 4 certificates are ever held.
        assert!(peak <= 4 * (gc_depth as usize + 1), "peak {peak}");
        assert_eq!(dag.gc_round(), 50);
        assert!(dag.round(50).next().is_none());
        assert_eq!(dag.round(51).count(), 4);
        // Below GC: ignored; parents below GC count as present.
        assert_eq!(dag.insert(rounds[50][0].clone()), Insert::BelowGc);
        assert_eq!(
            dag.check_parents(51, &[rounds[50][0].digest()]),
            Insert::Inserted
        );
        // GC never moves back.
        assert!(dag.garbage_collect(20).is_empty());
        assert_eq!(dag.gc_round(), 50);
    }
}
