//! Seeded builders shared by every crate's tests: committees with their keys, and headers,
//! votes and certificates signed by them. Nothing here is used outside tests.

use bytes::Bytes;
use rand::{rngs::StdRng, Rng, SeedableRng};
use weft_config::{local_committee, Keys};
use weft_types::{
    AuthorityIndex, Batch, BatchDigest, Certificate, Committee, Header, Round, Vote, WorkerId,
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
        Self::with_base_port(authorities, workers, free_base_port(authorities, workers), seed)
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

/// A base port with room for a local committee's ports, all bindable right now. Ranges handed
/// out in this process never overlap, whatever other tests do concurrently.
pub fn free_base_port(authorities: usize, workers: u32) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let count = (authorities * (1 + 2 * workers as usize)) as u16;
    // Spread processes apart so parallel test binaries rarely probe the same ranges.
    let start = 21_000 + (std::process::id() % 500) as u16 * 64;
    loop {
        let offset = NEXT.fetch_add(count, Ordering::Relaxed);
        let base = 21_000 + (start - 21_000 + offset) % 40_000;
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
