//! The simulated network: what travels between primaries, how long each delivery attempt
//! takes, which attempts are lost, and which links a partition cuts.

use crate::config::NetworkModel;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use weft_types::{AuthorityIndex, Certificate, Header, Round, Vote};

/// A message the reliable sender carries between primaries.
#[derive(Clone, Debug)]
pub enum Message {
    Header(Header),
    Vote(Vote),
    Certificate(Certificate),
}

impl Message {
    pub fn round(&self) -> Round {
        match self {
            Self::Header(h) => h.round,
            Self::Vote(v) => v.round,
            Self::Certificate(c) => c.round(),
        }
    }

    /// Feeds what identifies the message into the trace hash.
    pub fn trace(&self, h: &mut impl Hasher) {
        match self {
            Self::Header(x) => (0u8, x.digest()).hash(h),
            Self::Vote(x) => (1u8, x.header_digest, x.author).hash(h),
            Self::Certificate(x) => (2u8, x.digest()).hash(h),
        }
    }
}

/// A sync request, answered from the peer's stored certificates: the production
/// synchronizer's.
pub use weft_primary::sync_core::Fetch;

/// Link state and the per-attempt randomness.
pub struct Network {
    model: NetworkModel,
    /// Cut links, as (low, high) pairs.
    cut: BTreeSet<(AuthorityIndex, AuthorityIndex)>,
}

impl Network {
    pub fn new(model: NetworkModel) -> Self {
        Self {
            model,
            cut: BTreeSet::new(),
        }
    }

    /// How long one delivery attempt takes.
    pub fn delay(&self, rng: &mut StdRng) -> u64 {
        if rng.gen_bool(self.model.tail_probability) {
            self.model.tail.draw(rng)
        } else {
            self.model.delay.draw(rng)
        }
    }

    /// Whether one delivery attempt is lost.
    pub fn lost(&self, rng: &mut StdRng) -> bool {
        rng.gen_bool(self.model.drop_probability)
    }

    pub fn retry_delay(&self, rng: &mut StdRng) -> u64 {
        self.model.retry.draw(rng)
    }

    pub fn connected(&self, a: AuthorityIndex, b: AuthorityIndex) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Cuts every link between `side` and the other authorities of a committee of `n`.
    pub fn partition(&mut self, side: &BTreeSet<AuthorityIndex>, n: usize) {
        for a in side {
            for b in (0..n as u16).map(AuthorityIndex) {
                if !side.contains(&b) {
                    self.cut.insert(((*a).min(b), (*a).max(b)));
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }
}
