//! The record of votes given, which keeps an honest primary from ever voting for two headers
//! of one (author, round) — across restarts too (invariant 1).
//!
//! For each header author it keeps the last round voted for and that header's digest. The
//! record is written with [`Durability::Sync`] *before* the vote is returned to the caller, so
//! a vote that left the process is always on disk.

use thiserror::Error;
use weft_storage::{Column, Durability, Map, Store, StoreError};
use weft_types::{AuthorityIndex, Header, HeaderDigest, KeyPair, Round, Vote};

#[derive(Debug, Error)]
pub enum VoteError {
    /// The author already had a vote for another header of this round: it equivocates.
    #[error("{author} proposed a second header for round {round}")]
    Equivocation {
        author: AuthorityIndex,
        round: Round,
    },
    /// The header is older than one already voted for from this author.
    #[error("{author}'s header of round {round} is older than the one voted for at round {voted}")]
    Stale {
        author: AuthorityIndex,
        round: Round,
        voted: Round,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Signs votes, at most one per (author, round).
pub struct VoteRecord {
    me: AuthorityIndex,
    votes: Map<AuthorityIndex, (Round, HeaderDigest)>,
}

impl VoteRecord {
    pub fn new(store: &Store, me: AuthorityIndex) -> Self {
        Self {
            me,
            votes: store.map(Column::Votes),
        }
    }

    /// Returns this authority's vote for `header`, which must already be fully validated.
    /// Asking again for the same header returns the same vote (a retransmission is harmless);
    /// any other header of a round already voted on, or of an older round, is refused.
    pub fn vote(&self, header: &Header, keypair: &KeyPair) -> Result<Vote, VoteError> {
        let (author, round, digest) = (header.author, header.round, header.digest());
        match self.votes.get(&author)? {
            Some((voted, voted_digest)) if voted == round && voted_digest != digest => {
                return Err(VoteError::Equivocation { author, round });
            }
            Some((voted, _)) if voted > round => {
                return Err(VoteError::Stale {
                    author,
                    round,
                    voted,
                });
            }
            Some((voted, _)) if voted == round => {}
            _ => self
                .votes
                .insert(&author, &(round, digest), Durability::Sync)?,
        }
        Ok(Vote::new(header, self.me, keypair))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_test_utils::CommitteeFixture;
    use weft_types::Certificate;

    #[test]
    fn one_vote_per_author_and_round_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let f = CommitteeFixture::new(4, 1, 1);
        let genesis = Certificate::genesis(&f.committee);
        let (me, author) = (AuthorityIndex(0), AuthorityIndex(2));
        let keys = &f.keys(me).protocol;
        let h1 = f.header(author, 1, &genesis, vec![]);
        let h1_twin = f.header(author, 1, &genesis[..3], vec![]);
        assert_ne!(h1.digest(), h1_twin.digest());
        {
            let store = Store::open(dir.path()).unwrap();
            let record = VoteRecord::new(&store, me);
            let vote = record.vote(&h1, keys).unwrap();
            assert_eq!(vote.verify(&f.committee), Ok(()));
            assert_eq!(vote.header_digest, h1.digest());
            // Same header again: same vote, no error.
            assert_eq!(record.vote(&h1, keys).unwrap(), vote);
            assert!(matches!(
                record.vote(&h1_twin, keys),
                Err(VoteError::Equivocation { round: 1, .. })
            ));
        }
        // After a restart the record still refuses the second header of round 1.
        let store = Store::open(dir.path()).unwrap();
        let record = VoteRecord::new(&store, me);
        assert!(matches!(
            record.vote(&h1_twin, keys),
            Err(VoteError::Equivocation { round: 1, .. })
        ));
        // A later round is fine, and then the older round is stale.
        let r1 = f.round(1, &genesis);
        let h2 = f.header(author, 2, &r1, vec![]);
        assert!(record.vote(&h2, keys).is_ok());
        assert!(matches!(
            record.vote(&h1, keys),
            Err(VoteError::Stale {
                round: 1,
                voted: 2,
                ..
            })
        ));
        // Other authors are independent.
        let other = f.header(AuthorityIndex(3), 1, &genesis, vec![]);
        assert!(record.vote(&other, keys).is_ok());
    }
}
