//! Seeded builders shared by every crate's tests: committees with their keys, and headers,
//! votes and certificates signed by them. Nothing here is used outside tests.

use bytes::Bytes;
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use std::collections::HashMap;
use weft_config::{local_committee, Keys};
use weft_types::{
    AuthorityIndex, Batch, BatchDigest, Certificate, CertificateDigest, Committee, Header, Round,
    Stake, Vote, WorkerId,
};

/// A committee and every authority's keys, from a seed.
pub struct CommitteeFixture {
    pub committee: Committee,
    /// Indexed by `AuthorityIndex`.
    pub keys: Vec<Keys>,
}

impl CommitteeFixture {
    pub fn new(authorities: usize, workers: u32, seed: u64) -> Self {
        Self::with_base_port(authorities, workers, 20_000, seed)
    }

    /// A committee on 127.0.0.1 whose ports were all free when it was made (checked by binding
    /// every one of them at once), for tests that start real servers. Tests running in parallel
    /// in one process get disjoint ranges.
    pub fn with_free_ports(authorities: usize, workers: u32, seed: u64) -> Self {
        Self::with_base_port(
            authorities,
            workers,
            free_base_port(authorities, workers),
            seed,
        )
    }

    pub fn with_base_port(authorities: usize, workers: u32, base_port: u16, seed: u64) -> Self {
        let (keys, file) = local_committee(
            authorities,
            workers,
            base_port,
            &mut StdRng::seed_from_u64(seed),
        );
        let committee = Committee::new(file).expect("generated committees are valid");
        // Reorder keys to match the committee's (sorted) indices.
        let mut keys: Vec<Option<Keys>> = keys.into_iter().map(Some).collect();
        let keys = committee
            .authorities()
            .map(|(_, a)| {
                let pos = keys
                    .iter()
                    .position(|k| {
                        k.as_ref()
                            .is_some_and(|k| k.protocol.public() == a.protocol_key)
                    })
                    .expect("every authority has keys");
                keys[pos].take().expect("taken once")
            })
            .collect();
        Self { committee, keys }
    }

    pub fn authorities(&self) -> impl Iterator<Item = AuthorityIndex> {
        (0..self.committee.size()).map(|i| AuthorityIndex(i as u16))
    }

    pub fn keys(&self, a: AuthorityIndex) -> &Keys {
        &self.keys[a.0 as usize]
    }

    pub fn header(
        &self,
        author: AuthorityIndex,
        round: Round,
        parents: &[Certificate],
        payload: Vec<(BatchDigest, WorkerId)>,
    ) -> Header {
        Header::new(
            author,
            round,
            self.committee.epoch(),
            // Deterministic and increasing with the round, as a real clock would be.
            round * 100,
            payload,
            parents.iter().map(Certificate::digest).collect(),
            &self.keys(author).protocol,
        )
    }

    pub fn votes(
        &self,
        header: &Header,
        voters: impl IntoIterator<Item = AuthorityIndex>,
    ) -> Vec<Vote> {
        voters
            .into_iter()
            .map(|a| Vote::new(header, a, &self.keys(a).protocol))
            .collect()
    }

    /// A certificate for `header` signed by every authority.
    pub fn certificate(&self, header: Header) -> Certificate {
        let votes = self.votes(&header, self.authorities());
        Certificate::new(
            &self.committee,
            header,
            votes.into_iter().map(|v| (v.author, v.signature)),
        )
        .expect("all authorities form a quorum")
    }

    /// One certificate per authority for `round`, each with all of `parents`.
    pub fn round(&self, round: Round, parents: &[Certificate]) -> Vec<Certificate> {
        self.authorities()
            .map(|a| self.certificate(self.header(a, round, parents, vec![])))
            .collect()
    }

    /// Certificates of rounds 1..=rounds on top of genesis, every authority linking to all.
    pub fn dag(&self, rounds: Round) -> Vec<Vec<Certificate>> {
        let mut out = vec![Certificate::genesis(&self.committee)];
        for r in 1..=rounds {
            let next = self.round(r, out.last().expect("genesis is there"));
            out.push(next);
        }
        out
    }
}

/// The shape of a [`CommitteeFixture::random_dag`]: which authorities misbehave and how densely
/// certificates link to the previous round.
#[derive(Clone, Debug)]
pub struct DagShape {
    /// Certificates of rounds 1..=rounds are built.
    pub rounds: Round,
    /// Authorities that never produce a certificate.
    pub silent: Vec<AuthorityIndex>,
    /// Authorities whose certificates exist but are rarely referenced (they arrive late).
    pub slow: Vec<AuthorityIndex>,
    /// Chance that a certificate also references a non-slow parent beyond the quorum it needs.
    pub extra_parent: f64,
    /// Chance that a certificate references a given slow authority's certificate.
    pub slow_parent: f64,
}

impl DagShape {
    /// Every authority live and every parent beyond the quorum taken with probability one half.
    pub fn live(rounds: Round) -> Self {
        Self {
            rounds,
            silent: Vec::new(),
            slow: Vec::new(),
            extra_parent: 0.5,
            slow_parent: 0.5,
        }
    }
}

impl CommitteeFixture {
    /// Certificates of rounds 0 (genesis) ..= `shape.rounds`, indexed by round. Each live
    /// authority's certificate references a random set of previous-round certificates with at
    /// least quorum stake: non-slow ones first until the quorum is reached, then each further
    /// one by chance. Deterministic in `rng`.
    pub fn random_dag(&self, shape: &DagShape, rng: &mut StdRng) -> Vec<Vec<Certificate>> {
        let stake = |c: &Certificate| self.committee.stake(c.author());
        let mut out = vec![Certificate::genesis(&self.committee)];
        for round in 1..=shape.rounds {
            let previous = out.last().expect("genesis is there");
            let (mut slow, mut fast): (Vec<&Certificate>, Vec<&Certificate>) = previous
                .iter()
                .partition(|c| c.round() > 0 && shape.slow.contains(&c.author()));
            let mut next = Vec::new();
            for author in self.authorities() {
                if shape.silent.contains(&author) {
                    continue;
                }
                fast.shuffle(rng);
                slow.shuffle(rng);
                let mut parents = Vec::new();
                let mut parent_stake: Stake = 0;
                for c in fast.iter().chain(slow.iter()) {
                    let is_slow = shape.slow.contains(&c.author()) && c.round() > 0;
                    let wanted = if parent_stake < self.committee.quorum_threshold() {
                        true
                    } else if is_slow {
                        rng.gen_bool(shape.slow_parent)
                    } else {
                        rng.gen_bool(shape.extra_parent)
                    };
                    if wanted {
                        parent_stake += stake(c);
                        parents.push((*c).clone());
                    }
                }
                assert!(
                    parent_stake >= self.committee.quorum_threshold(),
                    "round {round}: too many silent authorities for a quorum"
                );
                next.push(self.certificate(self.header(author, round, &parents, vec![])));
            }
            out.push(next);
        }
        out
    }
}

/// A random causal (topological) order of the certificates of rounds ≥ 1 in `dag`: each
/// certificate comes after all its parents. A certificate for which `late` holds is delivered
/// only when nothing else is ready (as late as causality allows), which lets later rounds and
/// their commits overtake it. Deterministic in `rng`.
pub fn causal_order(
    dag: &[Vec<Certificate>],
    late: impl Fn(&Certificate) -> bool,
    rng: &mut StdRng,
) -> Vec<Certificate> {
    let all: Vec<&Certificate> = dag.iter().flatten().filter(|c| c.round() > 0).collect();
    let position: HashMap<CertificateDigest, usize> = all
        .iter()
        .enumerate()
        .map(|(i, c)| (c.digest(), i))
        .collect();
    let mut waiting_for = vec![0usize; all.len()];
    let mut children = vec![Vec::new(); all.len()];
    for (i, c) in all.iter().enumerate() {
        for p in &c.header.parents {
            if let Some(&j) = position.get(p) {
                waiting_for[i] += 1;
                children[j].push(i);
            }
        }
    }
    let (mut ready, mut ready_late): (Vec<usize>, Vec<usize>) = (0..all.len())
        .filter(|i| waiting_for[*i] == 0)
        .partition(|i| !late(all[*i]));
    let mut out = Vec::with_capacity(all.len());
    loop {
        let i = if !ready.is_empty() {
            ready.swap_remove(rng.gen_range(0..ready.len()))
        } else if !ready_late.is_empty() {
            ready_late.swap_remove(rng.gen_range(0..ready_late.len()))
        } else {
            break;
        };
        out.push(all[i].clone());
        for &child in &children[i] {
            waiting_for[child] -= 1;
            if waiting_for[child] == 0 {
                if late(all[child]) {
                    ready_late.push(child);
                } else {
                    ready.push(child);
                }
            }
        }
    }
    out
}

/// A base port with room for a local committee's ports, all bindable right now. Ranges handed
/// out in this process never overlap, whatever other tests do concurrently.
pub fn free_base_port(authorities: usize, workers: u32) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let count = (authorities * (1 + 2 * workers as usize)) as u16;
    // Below Linux's ephemeral range (32768+), which outgoing connections draw from: a port
    // found free there could be taken by any client socket before the test binds it.
    const LOW: u16 = 12_000;
    const SPAN: u16 = 20_000;
    // Spread processes apart so parallel test binaries rarely probe the same ranges.
    let start = (std::process::id() % 300) as u16 * 64;
    loop {
        let offset = NEXT.fetch_add(count, Ordering::Relaxed);
        let base = LOW + (start.wrapping_add(offset)) % (SPAN - count);
        let listeners: Vec<_> = (0..count)
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", base + p)).ok())
            .collect();
        if listeners.len() == count as usize {
            return base;
        }
    }
}

/// A batch of `count` random transactions of `size` bytes.
pub fn batch(rng: &mut StdRng, count: usize, size: usize) -> Batch {
    Batch::new(
        (0..count)
            .map(|_| {
                let mut tx = vec![0u8; size];
                rng.fill(&mut tx[..]);
                Bytes::from(tx)
            })
            .collect(),
    )
}
