//! Who posts which batch. Pure: the clock is the L1 block number, so tests need no time.
//!
//! Batch `s` belongs to authority `s mod n`. Every poster notes the L1 block at which it first
//! saw batch `s` due (batch `s - 1` on L1 and transactions waiting); the authority `k` places
//! after the designated one may post once `k × takeover_blocks` blocks have passed without it.
//! Two posters racing for the same `s` is harmless: the inbox accepts one, the other reverts.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// This authority's index in the committee.
    pub me: u32,
    pub committee_size: u32,
    /// L1 blocks the designated poster has before the next one steps in.
    pub takeover_blocks: u64,
}

impl Rotation {
    /// A single poster that always posts.
    pub const SOLO: Rotation = Rotation {
        me: 0,
        committee_size: 1,
        takeover_blocks: 0,
    };

    pub fn designated(&self, sequence: u64) -> u32 {
        (sequence % self.committee_size.max(1) as u64) as u32
    }

    /// How many places after the designated poster this one is (0 = designated).
    pub fn rank(&self, sequence: u64) -> u32 {
        let n = self.committee_size.max(1);
        (self.me % n + n - self.designated(sequence)) % n
    }

    /// Whether this authority may post batch `sequence`, which has been due for
    /// `due_for_blocks` L1 blocks.
    pub fn may_post(&self, sequence: u64, due_for_blocks: u64) -> bool {
        due_for_blocks >= self.rank(sequence) as u64 * self.takeover_blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn designated_poster_rotates_and_others_take_over_in_turn() {
        let r = |me| Rotation {
            me,
            committee_size: 4,
            takeover_blocks: 5,
        };
        for s in 0..8u64 {
            let designated = (s % 4) as u32;
            assert!(r(designated).may_post(s, 0));
            for me in 0..4 {
                let rank = (me + 4 - designated) % 4;
                assert_eq!(r(me).rank(s), rank);
                if rank > 0 {
                    assert!(!r(me).may_post(s, rank as u64 * 5 - 1));
                    assert!(r(me).may_post(s, rank as u64 * 5));
                }
            }
        }
        assert!(Rotation::SOLO.may_post(17, 0));
    }
}
