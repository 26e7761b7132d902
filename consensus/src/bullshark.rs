//! Bullshark's commit rule (partially synchronous variant) as a pure state machine.

use crate::dag::{Dag, Vertex};
use crate::error::ConsensusError;
use crate::schedule::LeaderSchedule;
use crate::state::{Commit, ConsensusState};
use crate::sub_dag::CommittedSubDag;
use weft_types::{AuthorityIndex, Certificate, Committee, Round};

/// Orders the certified DAG. Feed it every certificate once it is verified and all its parents
/// above the GC round have been fed ([`Bullshark::process_certificate`]); it returns the
/// sub-DAGs that became committed, in order, each with the state right after it. No I/O, clock
/// or randomness: the same committed state and the same set of certificates give the same output
/// whatever order they came in.
///
/// The caller persists each sub-DAG together with its [`Commit::state`] in one atomic write, and
/// only then lets the primary garbage-collect below that sub-DAG's leader round. A call may
/// commit several sub-DAGs; persisting the call's last state alone would leave, after a crash
/// between two of its writes, a state older than the store's GC (recovery would then miss
/// parents). After a restart, [`Bullshark::recover`] resumes from the last persisted state.
pub struct Bullshark {
    committee: Committee,
    /// Certificates this many rounds below the last committed leader are dropped.
    gc_depth: Round,
    schedule: Box<dyn LeaderSchedule>,
    /// Highest committed round of each authority, by `AuthorityIndex`.
    last_committed: Vec<Round>,
    last_committed_leader_round: Round,
    next_sub_dag_index: u64,
    /// Timestamp of the last committed sub-DAG.
    last_timestamp: u64,
    dag: Dag,
}

impl Bullshark {
    /// Consensus resuming from `state` (use [`ConsensusState::genesis`] for a fresh node), with
    /// an empty DAG. `schedule` must be of the kind that wrote `state.schedule`.
    pub fn new(
        committee: Committee,
        gc_depth: Round,
        mut schedule: Box<dyn LeaderSchedule>,
        state: ConsensusState,
    ) -> Result<Self, ConsensusError> {
        state.check(&committee)?;
        schedule.restore(&state.schedule)?;
        Ok(Self {
            dag: Dag::new(committee.size()),
            committee,
            gc_depth,
            schedule,
            last_committed: state.last_committed,
            last_committed_leader_round: state.last_committed_leader_round,
            next_sub_dag_index: state.next_sub_dag_index,
            last_timestamp: state.last_timestamp,
        })
    }

    /// Rebuilds consensus after a restart from the last persisted `state` and the stored
    /// certificates (any order; those at or below the GC round and duplicates are ignored).
    /// Returns the sub-DAGs that the stored certificates commit beyond `state` — they were not
    /// persisted before the crash, so they are output now; nothing in `state` is output again.
    pub fn recover(
        committee: Committee,
        gc_depth: Round,
        schedule: Box<dyn LeaderSchedule>,
        state: ConsensusState,
        certificates: impl IntoIterator<Item = Certificate>,
    ) -> Result<(Self, Vec<Commit>), ConsensusError> {
        let mut consensus = Self::new(committee, gc_depth, schedule, state)?;
        let mut certificates: Vec<Certificate> = certificates.into_iter().collect();
        // Every parent is one round below its child, so round order is a causal order.
        certificates.sort_by_key(|c| c.round());
        for certificate in certificates {
            consensus.insert(certificate)?;
        }
        let anchor = consensus.highest_anchor();
        let committed = consensus.commit(anchor);
        Ok((consensus, committed))
    }

    /// Adds a verified certificate whose parents above the GC round were all given before, and
    /// returns the sub-DAGs it commits (oldest first, consecutive indices). A certificate
    /// already held or at or below the GC round is ignored. On error nothing changes.
    pub fn process_certificate(
        &mut self,
        certificate: Certificate,
    ) -> Result<Vec<Commit>, ConsensusError> {
        let round = certificate.round();
        if !self.insert(certificate)? {
            return Ok(Vec::new());
        }
        // Only a certificate of an odd round adds support, to the leader one round below.
        let leader_round = round - 1;
        if round % 2 == 0 || leader_round <= self.last_committed_leader_round {
            return Ok(Vec::new());
        }
        let anchor = self.is_anchor(leader_round).then_some(leader_round);
        Ok(self.commit(anchor))
    }

    /// The state after the sub-DAGs returned so far (the last [`Commit::state`]).
    pub fn state(&self) -> ConsensusState {
        ConsensusState {
            last_committed: self.last_committed.clone(),
            last_committed_leader_round: self.last_committed_leader_round,
            next_sub_dag_index: self.next_sub_dag_index,
            last_timestamp: self.last_timestamp,
            schedule: self.schedule.state(),
        }
    }

    /// Certificates of this round and below are no longer needed by consensus.
    pub fn gc_round(&self) -> Round {
        self.last_committed_leader_round
            .saturating_sub(self.gc_depth)
    }

    pub fn last_committed_leader_round(&self) -> Round {
        self.last_committed_leader_round
    }

    /// The leader of even round `round` under the current schedule (what a primary waits for).
    pub fn leader(&self, round: Round) -> AuthorityIndex {
        self.schedule.leader(round)
    }

    /// Number of certificates held (for memory-bound checks and metrics).
    pub fn dag_len(&self) -> usize {
        self.dag.len()
    }

    /// Checks and stores a certificate; `Ok(false)` if it is a duplicate or below GC.
    fn insert(&mut self, certificate: Certificate) -> Result<bool, ConsensusError> {
        let (round, author) = (certificate.round(), certificate.author());
        if self.committee.authority(author).is_none() {
            return Err(ConsensusError::UnknownAuthority(author));
        }
        if certificate.header.epoch != self.committee.epoch() {
            return Err(ConsensusError::WrongEpoch {
                expected: self.committee.epoch(),
                got: certificate.header.epoch,
            });
        }
        if round <= self.gc_round() {
            return Ok(false);
        }
        let digest = certificate.digest();
        if let Some(held) = self.dag.get(round, author) {
            if held.digest == digest {
                return Ok(false);
            }
            return Err(ConsensusError::Equivocation {
                author,
                round,
                held: held.digest,
                got: digest,
            });
        }
        let parent_round = round - 1;
        if parent_round > self.gc_round() {
            if let Some(parent) = certificate
                .header
                .parents
                .iter()
                .find(|p| !self.dag.contains(p, parent_round))
            {
                return Err(ConsensusError::MissingParent {
                    author,
                    round,
                    parent: *parent,
                });
            }
        }
        self.dag.insert(digest, certificate);
        Ok(true)
    }

    fn leader_vertex(&self, round: Round) -> Option<&Vertex> {
        self.dag.get(round, self.schedule.leader(round))
    }

    /// The leader of `round` is held and certificates of `round + 1` with validity stake
    /// reference it.
    fn is_anchor(&self, round: Round) -> bool {
        self.leader_vertex(round).is_some_and(|leader| {
            self.dag.support(round, &leader.digest, &self.committee)
                >= self.committee.validity_threshold()
        })
    }

    /// The highest uncommitted leader round that is an anchor, if any.
    fn highest_anchor(&self) -> Option<Round> {
        let highest = self.dag.highest_round()?;
        let mut round = highest.saturating_sub(1) & !1;
        while round > self.last_committed_leader_round {
            if self.is_anchor(round) {
                return Some(round);
            }
            round -= 2;
        }
        None
    }

    /// Commits from `anchor` and then from any further anchor, until none is left. A schedule
    /// change can make other leaders of uncommitted rounds anchors (or not), so after one the
    /// remaining leaders are chosen again.
    fn commit(&mut self, mut anchor: Option<Round>) -> Vec<Commit> {
        let mut committed = Vec::new();
        while let Some(round) = anchor {
            for (round, leader) in self.leader_chain(round) {
                let sub_dag = self.commit_leader(round, leader);
                let schedule_changed = self.schedule.on_commit(&sub_dag);
                committed.push(Commit {
                    sub_dag,
                    state: self.state(),
                    followed_by: 0,
                });
                if schedule_changed {
                    break;
                }
            }
            anchor = self.highest_anchor();
        }
        let total = committed.len();
        for (i, commit) in committed.iter_mut().enumerate() {
            commit.followed_by = total - 1 - i;
        }
        committed
    }

    /// The anchor of `round` and every earlier uncommitted leader reachable from it through a
    /// chain of such leaders, oldest first.
    fn leader_chain(&self, round: Round) -> Vec<(Round, AuthorityIndex)> {
        let Some(mut current) = self.leader_vertex(round) else {
            return Vec::new();
        };
        let mut chain = vec![(round, current.certificate.author())];
        let mut earlier = round;
        while earlier >= self.last_committed_leader_round + 4 {
            earlier -= 2;
            if let Some(leader) = self.leader_vertex(earlier) {
                if self.dag.linked(current, leader) {
                    chain.push((earlier, leader.certificate.author()));
                    current = leader;
                }
            }
        }
        chain.reverse();
        chain
    }

    fn commit_leader(&mut self, round: Round, leader: AuthorityIndex) -> CommittedSubDag {
        let certificates =
            self.dag
                .uncommitted_history(round, leader, self.gc_round(), &self.last_committed);
        for c in &certificates {
            if let Some(last) = self.last_committed.get_mut(c.author().0 as usize) {
                *last = (*last).max(c.round());
            }
        }
        let digest = self
            .dag
            .get(round, leader)
            .map(|v| v.digest)
            .unwrap_or_default();
        // The leader's time, but never before the previous sub-DAG's: a function of the
        // committed DAG alone, so every authority derives the same.
        let created_at = certificates.last().map_or(0, |c| c.header.created_at);
        self.last_timestamp = self.last_timestamp.max(created_at);
        let sub_dag = CommittedSubDag {
            index: self.next_sub_dag_index,
            leader_round: round,
            leader: digest,
            timestamp: self.last_timestamp,
            certificates,
        };
        self.next_sub_dag_index += 1;
        self.last_committed_leader_round = round;
        self.dag.prune(self.gc_round());
        sub_dag
    }
}
