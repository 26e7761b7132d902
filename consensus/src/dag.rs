//! Consensus's own view of the certified DAG: certificates above the GC round by round and
//! author, with the three queries the commit rule needs (support of a leader, a path between
//! two leaders, the uncommitted causal history of a leader).

use std::collections::{BTreeMap, HashMap};
use weft_types::{AuthorityIndex, Certificate, CertificateDigest, Committee, Round, Stake};

/// A certificate held by consensus.
pub(crate) struct Vertex {
    pub(crate) digest: CertificateDigest,
    pub(crate) certificate: Certificate,
    /// Reached by the traversal of some committed sub-DAG. Everything reachable from a visited
    /// vertex was visited too and is committed or can no longer be (its round is at most its
    /// author's last committed round), so traversals stop here. Only an optimisation: a DAG
    /// rebuilt after a restart starts with no vertex visited and orders exactly the same.
    visited: bool,
}

pub(crate) struct Dag {
    size: usize,
    /// Rounds above the GC round; slot `i` of a round holds authority `i`'s certificate.
    rounds: BTreeMap<Round, Vec<Option<Vertex>>>,
    index: HashMap<CertificateDigest, (Round, AuthorityIndex)>,
}

impl Dag {
    pub(crate) fn new(size: usize) -> Self {
        Self {
            size,
            rounds: BTreeMap::new(),
            index: HashMap::new(),
        }
    }

    pub(crate) fn get(&self, round: Round, author: AuthorityIndex) -> Option<&Vertex> {
        self.rounds.get(&round)?.get(author.0 as usize)?.as_ref()
    }

    fn get_mut(&mut self, round: Round, author: AuthorityIndex) -> Option<&mut Vertex> {
        self.rounds
            .get_mut(&round)?
            .get_mut(author.0 as usize)?
            .as_mut()
    }

    /// Where the certificate `digest` sits, if it is held and of round `round`.
    fn position(&self, digest: &CertificateDigest, round: Round) -> Option<AuthorityIndex> {
        match self.index.get(digest) {
            Some((r, author)) if *r == round => Some(*author),
            _ => None,
        }
    }

    pub(crate) fn contains(&self, digest: &CertificateDigest, round: Round) -> bool {
        self.position(digest, round).is_some()
    }

    /// Stores a certificate; the caller has checked its author, slot and parents.
    pub(crate) fn insert(&mut self, digest: CertificateDigest, certificate: Certificate) {
        let (round, author) = (certificate.round(), certificate.author());
        let slots = self
            .rounds
            .entry(round)
            .or_insert_with(|| (0..self.size).map(|_| None).collect());
        if let Some(slot) = slots.get_mut(author.0 as usize) {
            self.index.insert(digest, (round, author));
            *slot = Some(Vertex {
                digest,
                certificate,
                visited: false,
            });
        }
    }

    pub(crate) fn highest_round(&self) -> Option<Round> {
        self.rounds.keys().next_back().copied()
    }

    /// Stake of the certificates of `round + 1` that list `leader` (of `round`) as a parent.
    pub(crate) fn support(
        &self,
        round: Round,
        leader: &CertificateDigest,
        committee: &Committee,
    ) -> Stake {
        self.rounds
            .get(&(round + 1))
            .into_iter()
            .flatten()
            .flatten()
            // Parents of a verified header are sorted.
            .filter(|v| v.certificate.header.parents.binary_search(leader).is_ok())
            .map(|v| committee.stake(v.certificate.author()))
            .sum()
    }

    /// Whether `to` is reachable from `from` through parent links (`to` of a lower round).
    pub(crate) fn linked(&self, from: &Vertex, to: &Vertex) -> bool {
        let target_round = to.certificate.round();
        let mut frontier: Vec<CertificateDigest> = from.certificate.header.parents.clone();
        let mut round = from.certificate.round().saturating_sub(1);
        while round > target_round && !frontier.is_empty() {
            let mut next: Vec<CertificateDigest> = frontier
                .iter()
                .filter_map(|d| self.position(d, round).and_then(|a| self.get(round, a)))
                .flat_map(|v| v.certificate.header.parents.iter().copied())
                .collect();
            next.sort_unstable();
            next.dedup();
            frontier = next;
            round -= 1;
        }
        round == target_round && frontier.contains(&to.digest)
    }

    /// The leader's causal history that is not committed yet: every certificate reachable from
    /// it above `gc_round` whose round is above its author's entry in `last_committed`, sorted
    /// by (round, author). Marks every vertex it reaches as visited.
    pub(crate) fn uncommitted_history(
        &mut self,
        round: Round,
        leader: AuthorityIndex,
        gc_round: Round,
        last_committed: &[Round],
    ) -> Vec<Certificate> {
        let mut out = Vec::new();
        let mut stack = Vec::new();
        if let Some(v) = self.get_mut(round, leader) {
            v.visited = true;
            stack.push((round, leader));
        }
        while let Some((round, author)) = stack.pop() {
            let Some(vertex) = self.get(round, author) else {
                continue;
            };
            if last_committed
                .get(author.0 as usize)
                .is_some_and(|last| round > *last)
            {
                out.push(vertex.certificate.clone());
            }
            let parent_round = round.saturating_sub(1);
            if parent_round <= gc_round {
                continue;
            }
            let parents: Vec<AuthorityIndex> = vertex
                .certificate
                .header
                .parents
                .iter()
                .filter_map(|d| self.position(d, parent_round))
                .collect();
            for parent in parents {
                if let Some(p) = self.get_mut(parent_round, parent) {
                    if !p.visited {
                        p.visited = true;
                        stack.push((parent_round, parent));
                    }
                }
            }
        }
        out.sort_by_key(|c| (c.round(), c.author()));
        out
    }

    /// Drops every round ≤ `gc_round`.
    pub(crate) fn prune(&mut self, gc_round: Round) {
        let keep = self.rounds.split_off(&gc_round.saturating_add(1));
        let dropped = std::mem::replace(&mut self.rounds, keep);
        for vertex in dropped.into_values().flatten().flatten() {
            self.index.remove(&vertex.digest);
        }
    }

    /// Number of certificates held.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}
