//! The commit rule on hand-built DAGs of a 4-authority committee (f = 1: validity stake is 2
//! certificates, quorum 3).

mod common;

use common::{check_against_oracle, consensus, feed, sub_dags};
use weft_consensus::{Bullshark, ConsensusError, LeaderSchedule, LeaderScheduleKind, RoundRobin};
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, Certificate, Header, Round};

const GC_DEPTH: Round = 50;

struct Fixture {
    f: CommitteeFixture,
    schedule: RoundRobin,
}

impl Fixture {
    fn new() -> Self {
        let f = CommitteeFixture::new(4, 1, 7);
        let schedule = RoundRobin::new(&f.committee);
        Self { f, schedule }
    }

    fn leader(&self, round: Round) -> AuthorityIndex {
        self.schedule.leader(round)
    }

    fn consensus(&self) -> Bullshark {
        consensus(&self.f.committee, GC_DEPTH, LeaderScheduleKind::RoundRobin)
    }

    fn cert(&self, author: AuthorityIndex, round: Round, parents: &[&Certificate]) -> Certificate {
        let parents: Vec<Certificate> = parents.iter().map(|c| (*c).clone()).collect();
        self.f
            .certificate(self.f.header(author, round, &parents, vec![]))
    }

    /// One certificate per authority for `round`, each referencing all of `parents`.
    fn full_round(&self, round: Round, parents: &[Certificate]) -> Vec<Certificate> {
        self.f.round(round, parents)
    }

    /// Round-`round + 1` certificates where exactly the authorities in `supporters` reference
    /// `leader`; the others reference every other certificate of `round`.
    fn support_round(
        &self,
        round: Round,
        previous: &[Certificate],
        leader: AuthorityIndex,
        supporters: &[AuthorityIndex],
    ) -> Vec<Certificate> {
        let without: Vec<&Certificate> = previous.iter().filter(|c| c.author() != leader).collect();
        let with: Vec<&Certificate> = previous.iter().collect();
        self.f
            .authorities()
            .map(|author| {
                let parents = if supporters.contains(&author) {
                    &with
                } else {
                    &without
                };
                self.cert(author, round + 1, parents)
            })
            .collect()
    }

    fn of(&self, certs: &[Certificate], author: AuthorityIndex) -> Certificate {
        certs
            .iter()
            .find(|c| c.author() == author)
            .expect("author has a certificate")
            .clone()
    }

    /// Two authorities other than `leader`, or one (f) if `count` is 1.
    fn others(&self, leader: AuthorityIndex, count: usize) -> Vec<AuthorityIndex> {
        self.f
            .authorities()
            .filter(|a| *a != leader)
            .take(count)
            .collect()
    }
}

#[test]
fn leader_schedule_walks_every_authority_over_even_rounds() {
    let fx = Fixture::new();
    let leaders: Vec<AuthorityIndex> = (1..=4).map(|k| fx.leader(2 * k)).collect();
    let mut distinct = leaders.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        4,
        "4 consecutive leader rounds: {leaders:?}"
    );
}

#[test]
fn leader_with_validity_support_commits_with_its_history() {
    let fx = Fixture::new();
    let r1 = fx.full_round(1, &fx.f.dag(0)[0]);
    let r2 = fx.full_round(2, &r1);
    let l2 = fx.leader(2);
    let supporters = fx.others(l2, 2);
    let r3 = fx.support_round(2, &r2, l2, &supporters);

    let mut consensus = fx.consensus();
    assert!(feed(&mut consensus, r1.iter().chain(&r2)).is_empty());
    // Non-supporters first, then the first supporter: f support, nothing commits.
    let non_supporters: Vec<&Certificate> = r3
        .iter()
        .filter(|c| !supporters.contains(&c.author()))
        .collect();
    assert!(feed(&mut consensus, non_supporters).is_empty());
    assert!(feed(&mut consensus, [&fx.of(&r3, supporters[0])]).is_empty());
    // The second supporter brings f + 1 stake: L2 commits with all of round 1 below it.
    let committed = feed(&mut consensus, [&fx.of(&r3, supporters[1])]);
    assert_eq!(committed.len(), 1);
    let sub_dag = &committed[0];
    assert_eq!((sub_dag.index, sub_dag.leader_round), (0, 2));
    assert_eq!(sub_dag.leader, fx.of(&r2, l2).digest());
    let mut expected: Vec<Certificate> = r1.clone();
    expected.push(fx.of(&r2, l2));
    assert_eq!(sub_dag.certificates, expected, "round 1 by author, then L2");
    assert_eq!(consensus.last_committed_leader_round(), 2);
    let all: Vec<Vec<Certificate>> = vec![vec![], r1, r2, r3];
    check_against_oracle(&fx.f.committee, &all, &committed, GC_DEPTH);
}

#[test]
fn leader_with_only_f_support_does_not_commit() {
    let fx = Fixture::new();
    let r1 = fx.full_round(1, &fx.f.dag(0)[0]);
    let r2 = fx.full_round(2, &r1);
    let l2 = fx.leader(2);
    let r3 = fx.support_round(2, &r2, l2, &fx.others(l2, 1));
    let mut consensus = fx.consensus();
    assert!(feed(&mut consensus, r1.iter().chain(&r2).chain(&r3)).is_empty());
    assert_eq!(consensus.last_committed_leader_round(), 0);
    assert_eq!(consensus.state().next_sub_dag_index, 0);
}

#[test]
fn skipped_leader_is_committed_first_through_a_path_from_the_next_leader() {
    let fx = Fixture::new();
    let r1 = fx.full_round(1, &fx.f.dag(0)[0]);
    let r2 = fx.full_round(2, &r1);
    let (l2, l4) = (fx.leader(2), fx.leader(4));
    // L2 gets f support, so it is not committed at round 3 …
    let r3 = fx.support_round(2, &r2, l2, &fx.others(l2, 1));
    // … but round 4 references all of round 3, including L2's one supporter: a path.
    let r4 = fx.full_round(4, &r3);
    let r5 = fx.support_round(4, &r4, l4, &fx.others(l4, 2));

    let mut consensus = fx.consensus();
    assert!(feed(&mut consensus, r1.iter().chain(&r2).chain(&r3).chain(&r4)).is_empty());
    let calls: Vec<Vec<weft_consensus::Commit>> = r5
        .iter()
        .map(|c| consensus.process_certificate(c.clone()).unwrap())
        .filter(|commits| !commits.is_empty())
        .collect();
    // One call commits both, and says of each how many of that call follow it.
    assert_eq!(calls.len(), 1);
    let followed_by: Vec<usize> = calls[0].iter().map(|c| c.followed_by).collect();
    assert_eq!(followed_by, vec![1, 0]);
    let committed: Vec<_> = calls.concat().into_iter().map(|c| c.sub_dag).collect();
    let leaders: Vec<(u64, Round)> = committed
        .iter()
        .map(|s| (s.index, s.leader_round))
        .collect();
    assert_eq!(leaders, vec![(0, 2), (1, 4)], "L2 first, then L4");
    assert_eq!(committed[0].leader, fx.of(&r2, l2).digest());
    assert_eq!(committed[1].leader, fx.of(&r4, l4).digest());
    // L4's sub-DAG: the rest of round 2, all of round 3, L4 — each exactly once.
    assert_eq!(committed[1].certificates.len(), 3 + 4 + 1);
    let all = vec![vec![], r1, r2, r3, r4, r5];
    check_against_oracle(&fx.f.committee, &all, &committed, GC_DEPTH);
}

#[test]
fn leader_without_a_path_from_the_next_committed_leader_is_skipped_forever() {
    let fx = Fixture::new();
    let r1 = fx.full_round(1, &fx.f.dag(0)[0]);
    let r2 = fx.full_round(2, &r1);
    let (l2, l4) = (fx.leader(2), fx.leader(4));
    let lone_supporter = fx.others(l2, 1)[0];
    let r3 = fx.support_round(2, &r2, l2, &[lone_supporter]);
    // Nobody in round 4 references the lone supporter, so nothing above round 3 reaches L2.
    let r3_without: Vec<Certificate> = r3
        .iter()
        .filter(|c| c.author() != lone_supporter)
        .cloned()
        .collect();
    let r4 = fx.full_round(4, &r3_without);
    let r5 = fx.support_round(4, &r4, l4, &fx.others(l4, 2));
    let r6 = fx.full_round(6, &r5);
    let r7 = fx.full_round(7, &r6);
    let r8 = fx.full_round(8, &r7);
    let r9 = fx.full_round(9, &r8);

    let mut consensus = fx.consensus();
    let all = vec![vec![], r1, r2, r3, r4, r5, r6, r7, r8, r9];
    let committed = feed(&mut consensus, all.iter().flatten());
    let leader_rounds: Vec<Round> = committed.iter().map(|s| s.leader_round).collect();
    assert_eq!(leader_rounds, vec![4, 6, 8], "L2 is never committed");
    let l2_digest = fx.of(&all[2], l2).digest();
    assert!(committed
        .iter()
        .flat_map(|s| &s.certificates)
        .all(|c| c.digest() != l2_digest));
    check_against_oracle(&fx.f.committee, &all, &committed, GC_DEPTH);
}

#[test]
fn duplicates_and_certificates_below_gc_are_ignored() {
    let fx = Fixture::new();
    let dag = fx.f.dag(12);
    let gc_depth = 2;
    let mut consensus = consensus(&fx.f.committee, gc_depth, LeaderScheduleKind::RoundRobin);
    // Genesis is at the GC round (0) from the start.
    assert!(feed(&mut consensus, &dag[0]).is_empty());
    let mut committed = Vec::new();
    for round in &dag[1..] {
        for c in round {
            committed.extend(sub_dags(consensus.process_certificate(c.clone()).unwrap()));
            assert!(consensus.process_certificate(c.clone()).unwrap().is_empty());
        }
    }
    assert_eq!(consensus.last_committed_leader_round(), 10);
    assert_eq!(consensus.gc_round(), 8);
    // Held: rounds 9..=12 only.
    assert_eq!(consensus.dag_len(), 4 * 4);
    let before = consensus.state();
    for c in dag[1..=8].iter().flatten() {
        assert!(consensus.process_certificate(c.clone()).unwrap().is_empty());
    }
    assert_eq!(consensus.state(), before);
    assert_eq!(consensus.dag_len(), 4 * 4);
    check_against_oracle(&fx.f.committee, &dag, &committed, gc_depth);
}

#[test]
fn inputs_that_break_the_contract_are_typed_errors_and_change_nothing() {
    let fx = Fixture::new();
    let dag = fx.f.dag(2);
    let mut consensus = fx.consensus();

    // Causal order violated: a round-2 certificate before its parents.
    let err = consensus
        .process_certificate(dag[2][0].clone())
        .unwrap_err();
    assert!(
        matches!(err, ConsensusError::MissingParent { round: 2, .. }),
        "{err}"
    );
    assert_eq!(consensus.dag_len(), 0);

    // Equivocation: a second certificate for (author, round 1) with other parents.
    feed(&mut consensus, &dag[1]);
    let other = fx.cert(
        AuthorityIndex(0),
        1,
        &dag[0].iter().take(3).collect::<Vec<_>>(),
    );
    let err = consensus.process_certificate(other.clone()).unwrap_err();
    assert_eq!(
        err,
        ConsensusError::Equivocation {
            author: AuthorityIndex(0),
            round: 1,
            held: dag[1][0].digest(),
            got: other.digest(),
        }
    );

    // An author outside the committee.
    let mut stranger = dag[1][0].clone();
    stranger.header = Header::new(
        AuthorityIndex(9),
        1,
        0,
        0,
        vec![],
        stranger.header.parents.clone(),
        &fx.f.keys[0].protocol,
    );
    assert_eq!(
        consensus.process_certificate(stranger).unwrap_err(),
        ConsensusError::UnknownAuthority(AuthorityIndex(9))
    );
    assert_eq!(consensus.dag_len(), 4);
}

#[test]
fn a_schedule_change_inside_a_chain_re_elects_the_later_leaders() {
    // With the rotating schedule, leader(2) = A1 and leader(4) = A2 before any commit, and
    // leader(4) = A3 after one.
    let fx = Fixture::new();
    let r1 = fx.full_round(1, &fx.f.dag(0)[0]);
    let r2 = fx.full_round(2, &r1);
    let l2 = AuthorityIndex(1);
    // L2 is supported by exactly f + 1: A0 and A2. Round 4 never references A2's, so it can
    // arrive last, after round 5 made A2@4 (the old leader of round 4) an anchor.
    let r3 = fx.support_round(2, &r2, l2, &[AuthorityIndex(0), AuthorityIndex(2)]);
    let late = fx.of(&r3, AuthorityIndex(2));
    let r3_early: Vec<Certificate> = r3.iter().filter(|c| **c != late).cloned().collect();
    let r4 = fx.full_round(4, &r3_early);
    let r5 = fx.full_round(5, &r4);

    let mut on_time = common::rotating(&fx.f.committee, GC_DEPTH);
    let on_time = feed(
        &mut on_time,
        r1.iter().chain(&r2).chain(&r3).chain(&r4).chain(&r5),
    );
    let mut delayed = common::rotating(&fx.f.committee, GC_DEPTH);
    let delayed_order = r1.iter().chain(&r2).chain(&r3_early).chain(&r4).chain(&r5);
    let delayed = feed(&mut delayed, delayed_order.chain([&late]));

    let leaders = |s: &[weft_consensus::CommittedSubDag]| {
        s.iter()
            .map(|s| {
                (
                    s.leader_round,
                    s.leader_certificate().map(Certificate::author),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        leaders(&on_time),
        vec![(2, Some(l2)), (4, Some(AuthorityIndex(3)))],
        "L2 commits, then round 4 is led by the new leader"
    );
    assert_eq!(common::sequence(&delayed), common::sequence(&on_time));
}

/// A sub-DAG's timestamp is its leader header's `created_at`, except that it never goes back:
/// a leader dated before the previous sub-DAG gets the previous timestamp. The state carries
/// it, so a consensus rebuilt from the state continues from it.
#[test]
fn sub_dag_timestamps_follow_the_leaders_and_never_decrease() {
    let fx = Fixture::new();
    let r1 = fx.full_round(1, &fx.f.dag(0)[0]);
    let r2 = fx.full_round(2, &r1);
    let r3 = fx.full_round(3, &r2);
    let l4 = fx.leader(4);
    let r4: Vec<Certificate> =
        fx.f.authorities()
            .map(|author| {
                // The test fixture dates a header of round r at 100 r; L4's clock is behind.
                let created_at = if author == l4 { 150 } else { 400 };
                fx.f.certificate(Header::new(
                    author,
                    4,
                    fx.f.committee.epoch(),
                    created_at,
                    vec![],
                    r3.iter().map(Certificate::digest).collect(),
                    &fx.f.keys(author).protocol,
                ))
            })
            .collect();
    let r5 = fx.full_round(5, &r4);

    let mut consensus = fx.consensus();
    let committed = feed(
        &mut consensus,
        r1.iter().chain(&r2).chain(&r3).chain(&r4).chain(&r5),
    );
    let stamps: Vec<(Round, u64)> = committed
        .iter()
        .map(|s| (s.leader_round, s.timestamp))
        .collect();
    assert_eq!(
        stamps,
        vec![(2, 200), (4, 200)],
        "L4 dated 150 does not go back"
    );
    assert_eq!(consensus.state().last_timestamp, 200);
}
