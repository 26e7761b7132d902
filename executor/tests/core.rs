//! The executor's decisions on their own: replays are skipped, a gap is an error, each batch
//! is recorded once with who to fetch it from, own batches are settled, the retention prunes
//! each record once, and the primary hears of a schedule only when it changes.

use weft_consensus::{Commit, CommittedSubDag, ConsensusState, ReputationState, ScheduleState};
use weft_executor::{ExecutorCore, ExecutorError, Step};
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, BatchDigest, Certificate, Digest};

fn b(i: u8) -> (BatchDigest, u32) {
    (BatchDigest(Digest::of(&[i])), 0)
}

fn state(index: u64, schedule: ScheduleState) -> ConsensusState {
    ConsensusState {
        last_committed: vec![0; 4],
        last_committed_leader_round: 2 * index + 2,
        next_sub_dag_index: index + 1,
        last_timestamp: 100 * index,
        schedule,
    }
}

fn commit(certificates: Vec<Certificate>, index: u64, schedule: ScheduleState) -> Commit {
    let leader = certificates.last().expect("a leader");
    Commit {
        sub_dag: CommittedSubDag {
            index,
            leader_round: leader.round(),
            leader: leader.digest(),
            timestamp: 100 * index,
            certificates,
        },
        state: state(index, schedule),
        followed_by: 0,
    }
}

fn execution(step: Step) -> Box<weft_executor::Execution> {
    match step {
        Step::Execute(e) => e,
        Step::Replayed(s) => panic!("sub-DAG {} replayed", s.index),
    }
}

#[test]
fn one_step_per_sub_dag_in_order() {
    let f = CommitteeFixture::new(4, 1, 1);
    let genesis = Certificate::genesis(&f.committee);
    let me = AuthorityIndex(0);
    let mine = f.certificate(f.header(me, 1, &genesis, vec![b(1), b(2)]));
    let other = f.certificate(f.header(AuthorityIndex(1), 1, &genesis, vec![b(2), b(3)]));
    let leader =
        f.certificate(f.header(AuthorityIndex(2), 2, &[mine.clone(), other.clone()], vec![]));
    let mut core = ExecutorCore::new(me, 0, 2, ScheduleState::RoundRobin);

    let e = execution(
        core.execute(commit(
            vec![mine, other, leader.clone()],
            0,
            ScheduleState::RoundRobin,
        ))
        .unwrap(),
    );
    let recorded: Vec<_> = e.batches.iter().map(|b| (b.digest, b.author.0)).collect();
    assert_eq!(
        recorded,
        vec![(b(1).0, 0), (b(2).0, 0), (b(3).0, 1)],
        "each batch once"
    );
    assert_eq!(e.own_batches, vec![b(1), b(2)]);
    assert!(e.prune.is_empty());
    let notice = e.durable();
    assert_eq!((notice.leader_round, notice.own_rounds), (2, vec![1]));
    assert_eq!(notice.schedule, None, "the schedule did not change");

    // Recovery outputs sub-DAG 0 again: skipped. Sub-DAG 2 before 1 is a gap.
    let again = core.execute(commit(vec![leader.clone()], 0, ScheduleState::RoundRobin));
    assert!(matches!(again, Ok(Step::Replayed(_))));
    assert_eq!(
        core.execute(commit(vec![leader.clone()], 2, ScheduleState::RoundRobin))
            .unwrap_err(),
        ExecutorError::Gap { index: 2, next: 1 }
    );

    // A changed schedule reaches the primary; with a retention of 2, sub-DAG 2 prunes 0.
    let reputation = ScheduleState::Reputation(ReputationState {
        scores: vec![1, 0, 0, 0],
        commits_in_period: 1,
        last_leader: None,
        bad: vec![],
        good: vec![],
    });
    let e = execution(
        core.execute(commit(vec![leader.clone()], 1, reputation.clone()))
            .unwrap(),
    );
    assert!(e.prune.is_empty());
    assert_eq!(e.durable().schedule, Some(reputation.clone()));
    let e = execution(core.execute(commit(vec![leader], 2, reputation)).unwrap());
    assert_eq!(e.prune, 0..1);
    assert_eq!(e.durable().schedule, None);
    assert_eq!(core.next_index(), 3);
}

/// Without a poster the log keeps `retention` sub-DAGs; once it follows L1 it keeps every
/// sub-DAG not yet confirmed there, however many, and `after_posting` below the first one.
#[test]
fn retention_follows_l1_posting_once_a_poster_runs() {
    let f = CommitteeFixture::new(4, 1, 1);
    let genesis = Certificate::genesis(&f.committee);
    let leader = f.certificate(f.header(AuthorityIndex(2), 2, &genesis, vec![]));
    let prune_of = |core: &mut ExecutorCore, k: u64| {
        execution(
            core.execute(commit(vec![leader.clone()], k, ScheduleState::RoundRobin))
                .unwrap(),
        )
        .prune
    };
    let mut fixed = ExecutorCore::new(AuthorityIndex(0), 0, 2, ScheduleState::RoundRobin);
    let pruned: Vec<_> = (0..5).map(|k| prune_of(&mut fixed, k)).collect();
    assert_eq!(
        pruned,
        vec![0..0, 0..0, 0..1, 1..2, 2..3],
        "the last two stay"
    );

    let mut following = ExecutorCore::new(AuthorityIndex(0), 0, 2, ScheduleState::RoundRobin);
    following.follow_posting(1);
    let unposted: Vec<_> = (0..5).map(|k| prune_of(&mut following, k)).collect();
    assert!(
        unposted.iter().all(|r| r.is_empty()),
        "nothing posted: all stay"
    );
    following.set_posted(4);
    assert_eq!(
        prune_of(&mut following, 5),
        0..3,
        "one kept below the first unposted"
    );
    following.set_posted(2);
    assert_eq!(
        prune_of(&mut following, 6),
        3..3,
        "the cursor never goes back"
    );
    following.set_posted(100);
    assert_eq!(
        prune_of(&mut following, 7),
        3..7,
        "nothing committed is beyond the log"
    );
}

/// With an attester, a record it has not signed stays whatever the retention: its signature
/// is over the record's transactions, read from the log.
#[test]
fn retention_waits_for_the_attester() {
    let f = CommitteeFixture::new(4, 1, 1);
    let genesis = Certificate::genesis(&f.committee);
    let leader = f.certificate(f.header(AuthorityIndex(2), 2, &genesis, vec![]));
    let mut core = ExecutorCore::new(AuthorityIndex(0), 0, 2, ScheduleState::RoundRobin);
    let prune_of = |core: &mut ExecutorCore, k: u64| {
        execution(
            core.execute(commit(vec![leader.clone()], k, ScheduleState::RoundRobin))
                .unwrap(),
        )
        .prune
    };
    core.set_attested(0);
    let unsigned: Vec<_> = (0..4).map(|k| prune_of(&mut core, k)).collect();
    assert!(
        unsigned.iter().all(|r| r.is_empty()),
        "nothing signed: all stay"
    );
    core.set_attested(1);
    assert_eq!(prune_of(&mut core, 4), 0..1, "only the signed one goes");
    core.set_attested(10);
    assert_eq!(prune_of(&mut core, 5), 1..4, "then the retention decides");
}
