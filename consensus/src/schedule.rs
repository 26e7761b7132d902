//! Who leads each even round.
//!
//! Every honest authority must derive the same leader for a round, so a schedule may depend
//! only on the committee and on the committed sequence (fed through
//! [`LeaderSchedule::on_commit`]), never on local timing or on uncommitted certificates.
//! [`Bullshark`](crate::Bullshark) asks for the leader of a round only while that round is above
//! the last committed leader round, and re-evaluates those rounds whenever `on_commit` reports a
//! change, so a schedule change takes effect for every round above the commit that caused it.

use crate::error::ConsensusError;
use crate::sub_dag::CommittedSubDag;
use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use weft_types::codec::{Decode, DecodeError, Encode, Reader};
use weft_types::{AuthorityIndex, CertificateDigest, Committee, Round, Stake};

/// The leader schedule consensus is built with. Must be the same on every authority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LeaderScheduleKind {
    /// Stake-weighted round robin ([`RoundRobin`]).
    #[default]
    RoundRobin,
    /// Round robin with the least useful authorities swapped out ([`Reputation`]).
    Reputation {
        /// Scores are turned into a new swap table every this many commits (≥ 1).
        commits_per_update: u64,
    },
}

impl LeaderScheduleKind {
    pub fn build(&self, committee: &Committee) -> Result<Box<dyn LeaderSchedule>, ConsensusError> {
        Ok(match *self {
            Self::RoundRobin => Box::new(RoundRobin::new(committee)),
            Self::Reputation { commits_per_update } => {
                Box::new(Reputation::new(committee, commits_per_update)?)
            }
        })
    }

    /// A fixed snapshot of the schedule of this kind in `state`, as a function of the round:
    /// what the primary's core waits on, replaced (as an input) when a commit changes it.
    pub fn leaders(
        &self,
        committee: &Committee,
        state: &ScheduleState,
    ) -> Result<Arc<dyn Fn(Round) -> AuthorityIndex + Send + Sync>, ConsensusError> {
        let mut schedule = self.build(committee)?;
        schedule.restore(state)?;
        Ok(Arc::new(move |round| schedule.leader(round)))
    }
}

/// Chooses the leader of each even round.
pub trait LeaderSchedule: Send + Sync {
    /// The leader of even round `round`.
    fn leader(&self, round: Round) -> AuthorityIndex;

    /// Called once per committed sub-DAG, in commit order. Returns true when the leaders of
    /// rounds above `sub_dag.leader_round` may have changed.
    fn on_commit(&mut self, sub_dag: &CommittedSubDag) -> bool;

    /// What to persist so that [`LeaderSchedule::restore`] reproduces this schedule.
    fn state(&self) -> ScheduleState;

    /// Resumes from a persisted state; fails if it belongs to another schedule or committee.
    fn restore(&mut self, state: &ScheduleState) -> Result<(), ConsensusError>;
}

/// Upper bound on the length of the stake-weighted cycle; larger stakes are scaled down.
const MAX_CYCLE: u64 = 4096;

/// Walks the committee in a stake-weighted, interleaved order, one step per leader round
/// (`round / 2`: with only even rounds, `round % n` would skip half of the committee).
#[derive(Clone, Debug)]
pub struct RoundRobin {
    cycle: Vec<AuthorityIndex>,
}

impl RoundRobin {
    pub fn new(committee: &Committee) -> Self {
        let stakes: Vec<Stake> = committee.authorities().map(|(_, a)| a.stake).collect();
        let gcd = stakes.iter().fold(0, |g, s| gcd(g, *s)).max(1);
        let total: Stake = stakes.iter().map(|s| s / gcd).sum();
        let weights: Vec<u64> = stakes
            .iter()
            .map(|s| {
                if total <= MAX_CYCLE {
                    s / gcd
                } else {
                    ((s / gcd) as u128 * MAX_CYCLE as u128 / total as u128).max(1) as u64
                }
            })
            .collect();
        // Smooth weighted round robin: each authority appears `weight` times per cycle, spread
        // out rather than in one block, so a crashed heavy authority costs scattered rounds.
        let length: u64 = weights.iter().sum();
        let mut current = vec![0i128; weights.len()];
        let mut cycle = Vec::with_capacity(length as usize);
        for _ in 0..length {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += *w as i128;
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .fold(
                    (0, i128::MIN),
                    |(bi, bc), (i, c)| {
                        if *c > bc {
                            (i, *c)
                        } else {
                            (bi, bc)
                        }
                    },
                );
            current[best] -= length as i128;
            cycle.push(AuthorityIndex(best as u16));
        }
        Self { cycle }
    }

    fn leader_at(&self, round: Round) -> AuthorityIndex {
        // A committee is never empty, so the cycle is not either.
        self.cycle[((round / 2) % self.cycle.len() as u64) as usize]
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl LeaderSchedule for RoundRobin {
    fn leader(&self, round: Round) -> AuthorityIndex {
        self.leader_at(round)
    }

    fn on_commit(&mut self, _sub_dag: &CommittedSubDag) -> bool {
        false
    }

    fn state(&self) -> ScheduleState {
        ScheduleState::RoundRobin
    }

    fn restore(&mut self, state: &ScheduleState) -> Result<(), ConsensusError> {
        match state {
            ScheduleState::RoundRobin => Ok(()),
            ScheduleState::Reputation(_) => Err(ConsensusError::InvalidState(
                "stored schedule state is for the reputation schedule",
            )),
        }
    }
}

/// The persisted part of a [`Reputation`] schedule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReputationState {
    /// Per authority: how many of its certificates supported the previously committed leader
    /// during the current period.
    pub scores: Vec<u64>,
    /// Commits since the swap table was last recomputed.
    pub commits_in_period: u64,
    /// Round and digest of the last committed leader, whose supporters the next sub-DAG scores.
    pub last_leader: Option<(Round, CertificateDigest)>,
    /// Authorities swapped out (lowest scores, < validity stake in total).
    pub bad: Vec<AuthorityIndex>,
    /// Authorities that take the swapped-out turns (highest scores), non-empty if `bad` is.
    pub good: Vec<AuthorityIndex>,
}

/// Shoal-style leader reputation: authorities earn a point for each certificate that supports
/// the previously committed leader, counted only in committed sub-DAGs so that every honest
/// authority computes the same scores. Every `commits_per_update` commits the lowest scorers
/// (less than validity stake in total) lose their turns to the highest scorers.
#[derive(Clone, Debug)]
pub struct Reputation {
    base: RoundRobin,
    stakes: Vec<Stake>,
    validity_threshold: Stake,
    commits_per_update: u64,
    state: ReputationState,
}

impl Reputation {
    pub fn new(committee: &Committee, commits_per_update: u64) -> Result<Self, ConsensusError> {
        if commits_per_update == 0 {
            return Err(ConsensusError::InvalidParameter(
                "reputation commits_per_update must be at least 1",
            ));
        }
        Ok(Self {
            base: RoundRobin::new(committee),
            stakes: committee.authorities().map(|(_, a)| a.stake).collect(),
            validity_threshold: committee.validity_threshold(),
            commits_per_update,
            state: ReputationState {
                scores: vec![0; committee.size()],
                ..ReputationState::default()
            },
        })
    }

    /// The authorities currently swapped out, and those taking their turns.
    pub fn swap_table(&self) -> (&[AuthorityIndex], &[AuthorityIndex]) {
        (&self.state.bad, &self.state.good)
    }

    fn stake_of(&self, authorities: &[AuthorityIndex]) -> Stake {
        authorities
            .iter()
            .map(|a| self.stakes.get(a.0 as usize).copied().unwrap_or(0))
            .sum()
    }
}

/// Picks the authorities to swap out (lowest scores first, only below the best score, total
/// stake < `validity_threshold`) and those to take their turns (highest scores first, same
/// stake bound). Ties are broken by authority index so every node picks the same.
pub fn swap_table(
    scores: &[u64],
    stakes: &[Stake],
    validity_threshold: Stake,
) -> (Vec<AuthorityIndex>, Vec<AuthorityIndex>) {
    let best = scores.iter().copied().max().unwrap_or(0);
    let mut ascending: Vec<usize> = (0..scores.len().min(stakes.len())).collect();
    ascending.sort_by_key(|i| (scores[*i], *i));
    let mut bad = Vec::new();
    let mut bad_stake: Stake = 0;
    for &i in &ascending {
        if scores[i] >= best || bad_stake + stakes[i] >= validity_threshold {
            break;
        }
        bad_stake += stakes[i];
        bad.push(AuthorityIndex(i as u16));
    }
    let mut good = Vec::new();
    let mut good_stake: Stake = 0;
    let mut descending = ascending;
    descending.sort_by_key(|i| (std::cmp::Reverse(scores[*i]), *i));
    for &i in &descending {
        if good_stake + stakes[i] >= validity_threshold || bad.contains(&AuthorityIndex(i as u16)) {
            break;
        }
        good_stake += stakes[i];
        good.push(AuthorityIndex(i as u16));
    }
    if good.is_empty() {
        bad.clear();
    }
    bad.sort();
    (bad, good)
}

impl LeaderSchedule for Reputation {
    fn leader(&self, round: Round) -> AuthorityIndex {
        let base = self.base.leader_at(round);
        if self.state.good.is_empty() || !self.state.bad.contains(&base) {
            return base;
        }
        self.state.good[((round / 2) % self.state.good.len() as u64) as usize]
    }

    fn on_commit(&mut self, sub_dag: &CommittedSubDag) -> bool {
        if let Some((round, digest)) = self.state.last_leader {
            for c in &sub_dag.certificates {
                if c.round() == round + 1 && c.header.parents.binary_search(&digest).is_ok() {
                    if let Some(score) = self.state.scores.get_mut(c.author().0 as usize) {
                        *score += 1;
                    }
                }
            }
        }
        self.state.last_leader = Some((sub_dag.leader_round, sub_dag.leader));
        self.state.commits_in_period += 1;
        if self.state.commits_in_period < self.commits_per_update {
            return false;
        }
        let (bad, good) = swap_table(&self.state.scores, &self.stakes, self.validity_threshold);
        self.state.commits_in_period = 0;
        self.state.scores.iter_mut().for_each(|s| *s = 0);
        let changed = (&bad, &good) != (&self.state.bad, &self.state.good);
        self.state.bad = bad;
        self.state.good = good;
        changed
    }

    fn state(&self) -> ScheduleState {
        ScheduleState::Reputation(self.state.clone())
    }

    fn restore(&mut self, state: &ScheduleState) -> Result<(), ConsensusError> {
        let ScheduleState::Reputation(state) = state else {
            return Err(ConsensusError::InvalidState(
                "stored schedule state is for the round-robin schedule",
            ));
        };
        let n = self.stakes.len();
        if state.scores.len() != n {
            return Err(ConsensusError::InvalidState(
                "reputation scores must have one entry per authority",
            ));
        }
        let known = |list: &[AuthorityIndex]| list.iter().all(|a| (a.0 as usize) < n);
        if !known(&state.bad) || !known(&state.good) {
            return Err(ConsensusError::InvalidState(
                "reputation swap table names an authority outside the committee",
            ));
        }
        if state.bad.iter().any(|a| state.good.contains(a))
            || (!state.bad.is_empty() && state.good.is_empty())
            || self.stake_of(&state.bad) >= self.validity_threshold
        {
            return Err(ConsensusError::InvalidState(
                "reputation swap table is inconsistent",
            ));
        }
        self.state = state.clone();
        Ok(())
    }
}

/// The persisted state of either schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleState {
    RoundRobin,
    Reputation(ReputationState),
}

const TAG_ROUND_ROBIN: u8 = 0;
const TAG_REPUTATION: u8 = 1;

impl ScheduleState {
    /// Upper bound on the encoding for the largest committee.
    pub const MAX_ENCODED_LEN: usize = 1
        + (4 + 8 * weft_types::Committee::MAX_AUTHORITIES)
        + 8
        + (1 + 8 + 32)
        + 2 * (4 + 2 * weft_types::Committee::MAX_AUTHORITIES);
}

fn put_indices(out: &mut BytesMut, list: &[AuthorityIndex]) {
    out.put_u32_le(list.len() as u32);
    for a in list {
        out.put_u16_le(a.0);
    }
}

fn get_indices(r: &mut Reader, what: &'static str) -> Result<Vec<AuthorityIndex>, DecodeError> {
    let count = r.count(what, 2)?;
    if count > Committee::MAX_AUTHORITIES {
        return Err(DecodeError::InvalidValue(what));
    }
    (0..count)
        .map(|_| r.u16(what).map(AuthorityIndex))
        .collect()
}

impl Encode for ScheduleState {
    fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::RoundRobin => out.put_u8(TAG_ROUND_ROBIN),
            Self::Reputation(s) => {
                out.put_u8(TAG_REPUTATION);
                weft_types::codec::put_vec(out, &s.scores);
                out.put_u64_le(s.commits_in_period);
                match &s.last_leader {
                    None => out.put_u8(0),
                    Some((round, digest)) => {
                        out.put_u8(1);
                        out.put_u64_le(*round);
                        digest.encode(out);
                    }
                }
                put_indices(out, &s.bad);
                put_indices(out, &s.good);
            }
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            Self::RoundRobin => 1,
            Self::Reputation(s) => {
                1 + weft_types::codec::vec_len(&s.scores)
                    + 8
                    + 1
                    + s.last_leader.map_or(0, |_| 8 + 32)
                    + (4 + 2 * s.bad.len())
                    + (4 + 2 * s.good.len())
            }
        }
    }
}

impl Decode for ScheduleState {
    const MIN_ENCODED_LEN: usize = 1;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.u8("schedule.tag")? {
            TAG_ROUND_ROBIN => Ok(Self::RoundRobin),
            TAG_REPUTATION => {
                let scores: Vec<u64> = r.vec("schedule.scores")?;
                if scores.len() > Committee::MAX_AUTHORITIES {
                    return Err(DecodeError::InvalidValue("schedule.scores"));
                }
                let commits_in_period = r.u64("schedule.commits_in_period")?;
                let last_leader = match r.u8("schedule.last_leader")? {
                    0 => None,
                    1 => Some((
                        r.u64("schedule.last_leader.round")?,
                        CertificateDigest::decode(r)?,
                    )),
                    _ => return Err(DecodeError::InvalidValue("schedule.last_leader")),
                };
                Ok(Self::Reputation(ReputationState {
                    scores,
                    commits_in_period,
                    last_leader,
                    bad: get_indices(r, "schedule.bad")?,
                    good: get_indices(r, "schedule.good")?,
                }))
            }
            _ => Err(DecodeError::InvalidValue("schedule.tag")),
        }
    }
}
