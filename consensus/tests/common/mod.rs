//! Helpers shared by the consensus integration tests: building consensus, feeding it, and an
//! independent oracle for what each committed sub-DAG must contain.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use weft_consensus::{
    Bullshark, Commit, CommittedSubDag, ConsensusError, ConsensusState, LeaderSchedule,
    LeaderScheduleKind, ScheduleState,
};
use weft_types::{AuthorityIndex, Certificate, CertificateDigest, Committee, Round};

/// Fresh consensus for `committee`.
pub fn consensus(committee: &Committee, gc_depth: Round, kind: LeaderScheduleKind) -> Bullshark {
    let schedule = kind.build(committee).unwrap();
    let state = ConsensusState::genesis(committee, schedule.as_ref());
    Bullshark::new(committee.clone(), gc_depth, schedule, state).unwrap()
}

/// An adversarial schedule: every commit shifts every later leader to another authority. It is
/// still a function of the committed sequence, so the output must not depend on delivery order;
/// it checks that leaders of uncommitted rounds are chosen again after each schedule change.
pub struct Rotating {
    pub size: u64,
    pub commits: u64,
}

impl LeaderSchedule for Rotating {
    fn leader(&self, round: Round) -> AuthorityIndex {
        AuthorityIndex(((round / 2 + self.commits * (self.commits + 1) / 2) % self.size) as u16)
    }
    fn on_commit(&mut self, _sub_dag: &CommittedSubDag) -> bool {
        self.commits += 1;
        true
    }
    fn state(&self) -> ScheduleState {
        ScheduleState::RoundRobin
    }
    fn restore(&mut self, _state: &ScheduleState) -> Result<(), ConsensusError> {
        Ok(())
    }
}

/// Fresh consensus for `committee` with the [`Rotating`] schedule.
pub fn rotating(committee: &Committee, gc_depth: Round) -> Bullshark {
    let schedule = Box::new(Rotating {
        size: committee.size() as u64,
        commits: 0,
    });
    let state = ConsensusState::genesis(committee, schedule.as_ref());
    Bullshark::new(committee.clone(), gc_depth, schedule, state).unwrap()
}

/// Feeds `certificates` in order and returns everything committed.
pub fn feed<'a>(
    consensus: &mut Bullshark,
    certificates: impl IntoIterator<Item = &'a Certificate>,
) -> Vec<CommittedSubDag> {
    certificates
        .into_iter()
        .flat_map(|c| consensus.process_certificate(c.clone()).unwrap())
        .map(|commit| commit.sub_dag)
        .collect()
}

/// The sub-DAGs of `commits`.
pub fn sub_dags(commits: Vec<Commit>) -> Vec<CommittedSubDag> {
    commits.into_iter().map(|c| c.sub_dag).collect()
}

/// What identifies a commit sequence: per sub-DAG its index, leader round and certificates.
pub type Sequence = Vec<(u64, Round, Vec<CertificateDigest>)>;

pub fn sequence(sub_dags: &[CommittedSubDag]) -> Sequence {
    sub_dags
        .iter()
        .map(|s| {
            (
                s.index,
                s.leader_round,
                s.certificates.iter().map(Certificate::digest).collect(),
            )
        })
        .collect()
}

/// Checks `sub_dags` against the rules directly on the full DAG `rounds`: consecutive indices
/// from 0, increasing leader rounds, the leader last, and each sub-DAG holding exactly the
/// certificates reachable from its leader that are above the GC round and above their author's
/// last committed round, sorted by (round, author); no certificate twice.
pub fn check_against_oracle(
    committee: &Committee,
    rounds: &[Vec<Certificate>],
    sub_dags: &[CommittedSubDag],
    gc_depth: Round,
) {
    let by_digest: HashMap<CertificateDigest, &Certificate> =
        rounds.iter().flatten().map(|c| (c.digest(), c)).collect();
    let mut last_committed = vec![0 as Round; committee.size()];
    let mut last_leader_round = 0;
    let mut seen = HashSet::new();
    for (i, sub_dag) in sub_dags.iter().enumerate() {
        assert_eq!(sub_dag.index, i as u64, "indices are consecutive from 0");
        assert!(
            sub_dag.leader_round > last_leader_round,
            "leader rounds increase"
        );
        assert_eq!(sub_dag.leader_round % 2, 0, "leaders are on even rounds");
        let leader = sub_dag
            .leader_certificate()
            .expect("a sub-DAG holds its leader");
        assert_eq!(leader.digest(), sub_dag.leader);
        assert_eq!(leader.round(), sub_dag.leader_round);

        let gc_round = last_leader_round.saturating_sub(gc_depth);
        let mut reachable = HashSet::new();
        let mut stack = vec![leader];
        while let Some(c) = stack.pop() {
            if c.round() <= gc_round || !reachable.insert(c.digest()) {
                continue;
            }
            stack.extend(c.header.parents.iter().filter_map(|p| by_digest.get(p)));
        }
        let mut expected: Vec<&Certificate> = reachable
            .iter()
            .map(|d| by_digest[d])
            .filter(|c| c.round() > last_committed[c.author().0 as usize])
            .collect();
        expected.sort_by_key(|c| (c.round(), c.author()));
        let expected: Vec<CertificateDigest> = expected.iter().map(|c| c.digest()).collect();
        let got: Vec<CertificateDigest> = sub_dag.certificates.iter().map(|c| c.digest()).collect();
        assert_eq!(got, expected, "sub-DAG {i} content");

        for c in &sub_dag.certificates {
            assert!(seen.insert(c.digest()), "{} output twice", c.digest());
            let last = &mut last_committed[c.author().0 as usize];
            *last = (*last).max(c.round());
        }
        last_leader_round = sub_dag.leader_round;
    }
}

pub fn a(i: u16) -> AuthorityIndex {
    AuthorityIndex(i)
}
