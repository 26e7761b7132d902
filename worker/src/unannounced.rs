//! What a worker holds of each peer's broadcast batches before any header names them.
//!
//! Dissemination comes before ordering: a peer's worker broadcasts a batch, and only once a
//! quorum stored it does its primary name it in a header. So a worker must store batches that
//! nothing has announced yet — and a Byzantine peer could send such batches without end,
//! which only garbage collection of orphans would remove (and never, if consensus stalls).
//! This is the bound: each peer may have at most `limit` bytes of unannounced batches stored
//! here. A batch leaves its peer's account when a header names it ([`Unannounced::announced`],
//! from the own primary) or when it is deleted. A digest announced or asked for before its
//! broadcast copy arrives (this worker was not in the author's quorum) is remembered for a
//! while and not charged. Honest peers stay far below the limit: their batches are announced
//! within a round or two.
//!
//! A pure state machine: the handler asks it before storing and tells it what the primary says.

use std::collections::{HashMap, HashSet, VecDeque};
use weft_types::{AuthorityIndex, BatchDigest};

/// Announced digests remembered for a broadcast copy still on its way (32 bytes each).
pub const ANNOUNCED_MEMORY: usize = 65_536;

/// A peer's broadcast refused: it already holds `held` bytes unannounced here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub peer: AuthorityIndex,
    pub held: usize,
    pub limit: usize,
}

#[derive(Debug)]
pub struct Unannounced {
    /// Bytes of unannounced batches each peer may have stored here.
    limit: usize,
    /// Bytes held per peer.
    held: HashMap<AuthorityIndex, usize>,
    /// Each unannounced batch stored here: who sent it, and its size.
    batches: HashMap<BatchDigest, (AuthorityIndex, usize)>,
    /// Recently announced digests, oldest first (at most [`ANNOUNCED_MEMORY`]).
    announced: VecDeque<BatchDigest>,
    announced_set: HashSet<BatchDigest>,
}

impl Unannounced {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            held: HashMap::new(),
            batches: HashMap::new(),
            announced: VecDeque::new(),
            announced_set: HashSet::new(),
        }
    }

    /// A batch of `size` bytes broadcast by `peer`, about to be stored: charged to `peer`
    /// unless a header already named it or it is already held, refused if that would take
    /// `peer` past the limit.
    pub fn admit(
        &mut self,
        peer: AuthorityIndex,
        digest: BatchDigest,
        size: usize,
    ) -> Result<(), QuotaExceeded> {
        if self.announced_set.contains(&digest) || self.batches.contains_key(&digest) {
            return Ok(());
        }
        let held = self.held.entry(peer).or_default();
        if *held + size > self.limit {
            return Err(QuotaExceeded {
                peer,
                held: *held,
                limit: self.limit,
            });
        }
        *held += size;
        self.batches.insert(digest, (peer, size));
        Ok(())
    }

    /// A header names these batches (or the primary asks for them): payload, not charged.
    pub fn announced(&mut self, digests: &[BatchDigest]) {
        for digest in digests {
            self.release(digest);
            if self.announced_set.insert(*digest) {
                self.announced.push_back(*digest);
            }
        }
        while self.announced.len() > ANNOUNCED_MEMORY {
            if let Some(old) = self.announced.pop_front() {
                self.announced_set.remove(&old);
            }
        }
    }

    /// These batches were deleted (or never stored): no longer anyone's.
    pub fn deleted(&mut self, digests: &[BatchDigest]) {
        for digest in digests {
            self.release(digest);
        }
    }

    /// Bytes `peer` holds here unannounced.
    pub fn held(&self, peer: AuthorityIndex) -> usize {
        self.held.get(&peer).copied().unwrap_or(0)
    }

    /// Bytes all peers hold here unannounced.
    pub fn total(&self) -> usize {
        self.held.values().sum()
    }

    fn release(&mut self, digest: &BatchDigest) {
        let Some((peer, size)) = self.batches.remove(digest) else {
            return;
        };
        if let Some(held) = self.held.get_mut(&peer) {
            *held -= size;
            if *held == 0 {
                self.held.remove(&peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_types::Digest;

    fn digest(n: u64) -> BatchDigest {
        BatchDigest(Digest::of(&n.to_le_bytes()))
    }

    const P: AuthorityIndex = AuthorityIndex(1);
    const Q: AuthorityIndex = AuthorityIndex(2);

    /// Proves: a peer is refused once its unannounced bytes would pass the limit, other peers
    /// are not affected, and an announcement or a deletion gives the room back.
    #[test]
    fn a_peer_past_its_quota_is_refused_until_its_batches_are_announced() {
        let mut u = Unannounced::new(300);
        assert_eq!(u.admit(P, digest(1), 100), Ok(()));
        assert_eq!(u.admit(P, digest(2), 200), Ok(()));
        let refused = u.admit(P, digest(3), 1);
        assert_eq!(
            refused,
            Err(QuotaExceeded {
                peer: P,
                held: 300,
                limit: 300
            })
        );
        assert_eq!(u.admit(Q, digest(4), 300), Ok(()), "Q has its own quota");
        u.announced(&[digest(1)]);
        assert_eq!(u.held(P), 200);
        assert_eq!(u.admit(P, digest(3), 100), Ok(()));
        u.deleted(&[digest(2), digest(3)]);
        assert_eq!(u.held(P), 0);
        assert_eq!(u.total(), 300);
    }

    /// Proves: a batch announced before its broadcast copy arrives is not charged, nor is a
    /// copy of a batch already held (a second sender cannot be charged for it twice).
    #[test]
    fn announced_or_held_batches_are_not_charged() {
        let mut u = Unannounced::new(100);
        u.announced(&[digest(7)]);
        assert_eq!(u.admit(P, digest(7), 100), Ok(()));
        assert_eq!(u.held(P), 0);
        assert_eq!(u.admit(P, digest(8), 100), Ok(()));
        assert_eq!(u.admit(Q, digest(8), 100), Ok(()));
        assert_eq!((u.held(P), u.held(Q)), (100, 0));
    }

    /// Proves: the memory of announced digests is bounded; the oldest is forgotten first.
    #[test]
    fn the_announced_memory_is_bounded() {
        let mut u = Unannounced::new(100);
        let all: Vec<BatchDigest> = (0..ANNOUNCED_MEMORY as u64 + 1).map(digest).collect();
        u.announced(&all);
        assert_eq!(u.announced.len(), ANNOUNCED_MEMORY);
        assert_eq!(u.admit(P, digest(0), 100), Ok(()));
        assert_eq!(u.held(P), 100, "the oldest announcement was forgotten");
        assert_eq!(u.admit(P, digest(1), 100), Ok(()));
        assert_eq!(u.held(P), 100, "a remembered one is not charged");
    }
}
