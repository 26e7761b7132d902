//! The quorum waiter's decisions, as a pure state machine: which peer gets which own batch and
//! when, and when a batch has a quorum of stake or can no longer get one. No sockets, stores
//! or clocks: the actor (`quorum_waiter.rs`) starts the deliveries and the own store write this
//! core asks for, and reports each answer back.
//!
//! Each peer has at most [`MAX_DELIVERIES_PER_PEER`] deliveries in flight; further batches
//! wait their turn, oldest first, and leave the queue once they have a quorum (the peer's
//! primary has them synchronized if a header needs them). A delivery is never cancelled
//! before the peer answers, so a dead peer holds that many batches and no more.

use std::collections::{BTreeMap, VecDeque};
use weft_types::Stake;

/// Own batches broadcast and still short of a quorum. When reached, the waiter stops taking
/// sealed batches, which stops the batch maker, which stops reading client connections.
pub const MAX_BATCHES_AWAITING_QUORUM: usize = 32;
/// Batches sent to one peer and not yet acknowledged.
pub const MAX_DELIVERIES_PER_PEER: usize = 32;

/// Who answered for a batch: a peer (by position in the peers given to [`QuorumCore::new`]),
/// or the own store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Own,
    Peer(usize),
}

/// What an answer decided for its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still short of a quorum, with answers to come.
    Pending,
    /// The batch has a quorum of stake (reported once).
    Quorum,
    /// Every target answered and the stake of those that stored it is short of a quorum.
    NoQuorum { stake: Stake },
    /// The batch was already decided: a delivery that finished late.
    Straggler,
}

/// A batch's sequence number and the peer to deliver it to.
pub type Delivery = (u64, usize);

struct Slots {
    stake: Stake,
    in_flight: usize,
    /// Batches waiting for a delivery slot, oldest first.
    waiting: VecDeque<u64>,
}

struct Tally {
    /// Stake of the targets that stored it, own stake included once stored.
    stake: Stake,
    /// Targets that have not answered (sent, or waiting for a delivery slot).
    unanswered: usize,
}

pub struct QuorumCore {
    own_stake: Stake,
    quorum: Stake,
    peers: Vec<Slots>,
    pending: BTreeMap<u64, Tally>,
    next_sequence: u64,
}

impl QuorumCore {
    /// `peer_stakes`: the stake of each peer, in the order [`Target::Peer`] numbers them.
    pub fn new(
        own_stake: Stake,
        quorum: Stake,
        peer_stakes: impl IntoIterator<Item = Stake>,
    ) -> Self {
        Self {
            own_stake,
            quorum,
            peers: peer_stakes
                .into_iter()
                .map(|stake| Slots {
                    stake,
                    in_flight: 0,
                    waiting: VecDeque::new(),
                })
                .collect(),
            pending: BTreeMap::new(),
            next_sequence: 0,
        }
    }

    /// Whether no further batch may be taken until one is decided.
    pub fn is_full(&self) -> bool {
        self.pending.len() >= MAX_BATCHES_AWAITING_QUORUM
    }

    /// Batches short of a quorum.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Deliveries to peers in flight.
    pub fn in_flight(&self) -> usize {
        self.peers.iter().map(|p| p.in_flight).sum()
    }

    /// A sealed batch to disseminate: its sequence number, and the peers to deliver it to now
    /// (the others get it when a slot frees). The caller also stores it and reports that as
    /// [`Target::Own`].
    pub fn add(&mut self) -> (u64, Vec<usize>) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.pending.insert(
            sequence,
            Tally {
                stake: 0,
                unanswered: self.peers.len() + 1,
            },
        );
        let mut now = Vec::new();
        for (index, peer) in self.peers.iter_mut().enumerate() {
            if peer.in_flight < MAX_DELIVERIES_PER_PEER {
                peer.in_flight += 1;
                now.push(index);
            } else {
                peer.waiting.push_back(sequence);
            }
        }
        (sequence, now)
    }

    /// `target` answered for batch `sequence` (`stored`: it holds the batch). Returns what that
    /// decides for the batch and, if a peer's slot freed, the delivery to start in it.
    pub fn answered(
        &mut self,
        sequence: u64,
        target: Target,
        stored: bool,
    ) -> (Outcome, Option<Delivery>) {
        let stake = match target {
            Target::Own => self.own_stake,
            Target::Peer(index) => self.peers.get(index).map_or(0, |p| p.stake),
        };
        let outcome = self.record(sequence, if stored { stake } else { 0 });
        let next = match target {
            Target::Peer(index) => self.next_delivery(index),
            Target::Own => None,
        };
        (outcome, next)
    }

    fn record(&mut self, sequence: u64, stake: Stake) -> Outcome {
        let Some(tally) = self.pending.get_mut(&sequence) else {
            return Outcome::Straggler;
        };
        tally.stake += stake;
        tally.unanswered -= 1;
        let outcome = if tally.stake >= self.quorum {
            Outcome::Quorum
        } else if tally.unanswered == 0 {
            Outcome::NoQuorum { stake: tally.stake }
        } else {
            return Outcome::Pending;
        };
        self.pending.remove(&sequence);
        for peer in &mut self.peers {
            peer.waiting.retain(|s| *s != sequence);
        }
        outcome
    }

    /// A slot of peer `index` is free: the oldest batch waiting for it that is still pending.
    fn next_delivery(&mut self, index: usize) -> Option<Delivery> {
        let peer = self.peers.get_mut(index)?;
        peer.in_flight = peer.in_flight.saturating_sub(1);
        while let Some(sequence) = peer.waiting.pop_front() {
            if self.pending.contains_key(&sequence) {
                peer.in_flight += 1;
                return Some((sequence, index));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four authorities of stake 1, quorum 3: the own store and two peers make a quorum.
    fn core() -> QuorumCore {
        QuorumCore::new(1, 3, [1, 1, 1])
    }

    #[test]
    fn the_own_store_and_two_peers_make_a_quorum_reported_once() {
        let mut q = core();
        let (s, now) = q.add();
        assert_eq!(now, vec![0, 1, 2]);
        assert_eq!(q.answered(s, Target::Peer(0), true).0, Outcome::Pending);
        assert_eq!(q.answered(s, Target::Own, true).0, Outcome::Pending);
        assert_eq!(q.answered(s, Target::Peer(2), true).0, Outcome::Quorum);
        assert_eq!(q.answered(s, Target::Peer(1), true).0, Outcome::Straggler);
        assert_eq!((q.pending_len(), q.in_flight()), (0, 0));
    }

    #[test]
    fn refusals_count_no_stake_and_the_last_answer_says_no_quorum() {
        let mut q = core();
        let (s, _) = q.add();
        q.answered(s, Target::Own, true);
        q.answered(s, Target::Peer(0), true);
        assert_eq!(q.answered(s, Target::Peer(1), false).0, Outcome::Pending);
        assert_eq!(
            q.answered(s, Target::Peer(2), false).0,
            Outcome::NoQuorum { stake: 2 }
        );
        assert_eq!(q.pending_len(), 0);
    }

    /// A peer that never answers holds MAX_DELIVERIES_PER_PEER batches: later ones wait for
    /// its slots, reach their quorum without it, and leave its queue; a freed slot goes to the
    /// oldest batch still pending.
    #[test]
    fn a_silent_peer_holds_its_slots_and_decided_batches_leave_its_queue() {
        let mut q = QuorumCore::new(1, 3, [1, 1, 1]);
        let mut sequences = Vec::new();
        for _ in 0..MAX_DELIVERIES_PER_PEER + 2 {
            let (s, now) = q.add();
            sequences.push(s);
            // Peers 0 and 1 answer at once; peer 2 is silent.
            q.answered(s, Target::Own, true);
            let expected = if sequences.len() <= MAX_DELIVERIES_PER_PEER {
                vec![0, 1, 2]
            } else {
                vec![0, 1]
            };
            assert_eq!(now, expected);
            assert_eq!(
                q.answered(s, Target::Peer(0), true),
                (Outcome::Pending, None)
            );
            assert_eq!(
                q.answered(s, Target::Peer(1), true),
                (Outcome::Quorum, None)
            );
        }
        assert_eq!(q.in_flight(), MAX_DELIVERIES_PER_PEER);
        // A batch still pending waits for peer 2 behind the decided ones.
        let (late, _) = q.add();
        assert!(!q.is_full());
        let (outcome, next) = q.answered(sequences[0], Target::Peer(2), true);
        assert_eq!(outcome, Outcome::Straggler);
        assert_eq!(next, Some((late, 2)), "the decided batches were skipped");
    }

    #[test]
    fn at_most_max_batches_await_a_quorum() {
        let mut q = core();
        for _ in 0..MAX_BATCHES_AWAITING_QUORUM {
            assert!(!q.is_full());
            q.add();
        }
        assert!(q.is_full());
        q.answered(0, Target::Own, true);
        q.answered(0, Target::Peer(0), true);
        q.answered(0, Target::Peer(1), true);
        assert!(!q.is_full());
    }
}
