//! Agreement without messages: the commit sequence depends only on the set of certificates, not
//! on the causal order they are delivered in. Random DAGs (committees of 4, 7 and 10, with up
//! to f silent or slow authorities) are each delivered in 500 random causal orders.

mod common;

use common::{check_against_oracle, consensus, feed, sequence, sub_dags, Rotating, Sequence};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::HashSet;
use weft_consensus::{Bullshark, ConsensusState, LeaderSchedule, LeaderScheduleKind};
use weft_test_utils::{causal_order, CommitteeFixture, DagShape};
use weft_types::{AuthorityIndex, Certificate, CertificateDigest, Round};

const ORDERS: usize = 500;

struct Case {
    authorities: usize,
    rounds: Round,
    silent: &'static [u16],
    slow: &'static [u16],
    /// Chance that a certificate references a given slow authority's certificate.
    slow_parent: f64,
    gc_depth: Round,
    schedule: Schedule,
    seed: u64,
}

#[derive(Clone, Copy)]
enum Schedule {
    Kind(LeaderScheduleKind),
    Rotating,
}

/// Builds the case's DAG, checks the first order's output against the oracle, and asserts that
/// every other order yields the identical sequence. Returns that sequence.
fn run(case: &Case) -> Sequence {
    let f = CommitteeFixture::new(case.authorities, 1, case.seed);
    let silent: Vec<AuthorityIndex> = case.silent.iter().map(|i| AuthorityIndex(*i)).collect();
    let slow: Vec<AuthorityIndex> = case.slow.iter().map(|i| AuthorityIndex(*i)).collect();
    let shape = DagShape {
        rounds: case.rounds,
        silent,
        slow: slow.clone(),
        extra_parent: 0.2,
        slow_parent: case.slow_parent,
    };
    let mut rng = StdRng::seed_from_u64(case.seed);
    let dag = f.random_dag(&shape, &mut rng);

    let schedule = || -> Box<dyn LeaderSchedule> {
        match case.schedule {
            Schedule::Kind(kind) => kind.build(&f.committee).unwrap(),
            Schedule::Rotating => Box::new(Rotating {
                size: case.authorities as u64,
                commits: 0,
            }),
        }
    };
    let run_order = |order: &[Certificate]| {
        let schedule = schedule();
        let state = ConsensusState::genesis(&f.committee, schedule.as_ref());
        let mut consensus =
            Bullshark::new(f.committee.clone(), case.gc_depth, schedule, state).unwrap();
        feed(&mut consensus, order)
    };
    // Each order holds back a random set of certificates (and, in half of the orders, every
    // slow authority's) until nothing else is ready, so that commits overtake them.
    let random_order = |rng: &mut StdRng| {
        let chance = [0.0, 0.05, 0.2][rng.gen_range(0..3)];
        let slow_late = rng.gen_bool(0.5);
        let late: HashSet<CertificateDigest> = dag
            .iter()
            .flatten()
            .filter(|c| (slow_late && slow.contains(&c.author())) || rng.gen_bool(chance))
            .map(Certificate::digest)
            .collect();
        causal_order(&dag, |c| late.contains(&c.digest()), rng)
    };
    let first = run_order(&random_order(&mut rng));
    check_against_oracle(&f.committee, &dag, &first, case.gc_depth);
    let expected = sequence(&first);
    // All at once: a restart with every certificate stored and nothing committed yet commits
    // the whole DAG from its highest anchor down, in the longest chains there can be.
    let schedule_at_once = schedule();
    let genesis = ConsensusState::genesis(&f.committee, schedule_at_once.as_ref());
    let all = dag.iter().flatten().cloned();
    let (_, at_once) = Bullshark::recover(
        f.committee.clone(),
        case.gc_depth,
        schedule_at_once,
        genesis,
        all,
    )
    .unwrap();
    assert!(
        sequence(&sub_dags(at_once)) == expected,
        "seed {}: all at once",
        case.seed
    );
    for i in 1..ORDERS {
        let order = random_order(&mut rng);
        let got = sequence(&run_order(&order));
        assert!(
            got == expected,
            "seed {} order {i}: {} sub-DAGs, expected {}",
            case.seed,
            got.len(),
            expected.len()
        );
    }
    expected
}

/// Leader rounds that can commit in a DAG of `rounds` rounds: even rounds 2..rounds-1.
fn leader_rounds(rounds: Round) -> usize {
    ((rounds - 1) / 2) as usize
}

/// Faults of one DAG: silent authorities, slow authorities, how often a slow certificate is
/// referenced, and the seed.
type Faults = (&'static [u16], &'static [u16], f64, u64);

/// Runs the fault patterns under each schedule in turn, with a long and a short GC depth.
fn committee_of(authorities: usize, rounds: Round, faults: &[Faults]) {
    let schedules = [
        Schedule::Kind(LeaderScheduleKind::RoundRobin),
        Schedule::Kind(LeaderScheduleKind::Reputation {
            commits_per_update: 1,
        }),
        Schedule::Rotating,
    ];
    for (i, &(silent, slow, slow_parent, seed)) in faults.iter().enumerate() {
        let case = Case {
            authorities,
            rounds,
            silent,
            slow,
            slow_parent,
            gc_depth: if i % 2 == 0 { 50 } else { 2 },
            schedule: schedules[i % 3],
            seed,
        };
        let sequence = run(&case);
        assert!(
            sequence.len() >= leader_rounds(rounds) / 2,
            "seed {seed}: {} commits",
            sequence.len()
        );
    }
}

#[test]
fn four_authorities_any_delivery_order_commits_the_same() {
    committee_of(
        4,
        40,
        &[
            (&[], &[], 0.0, 1),
            (&[2], &[], 0.0, 2),
            (&[], &[1], 0.3, 3),
            (&[], &[3], 0.2, 4),
            (&[], &[0], 0.1, 13),
            (&[1], &[], 0.0, 14),
        ],
    );
}

#[test]
fn seven_authorities_any_delivery_order_commits_the_same() {
    committee_of(
        7,
        30,
        &[
            (&[0, 5], &[], 0.0, 5),
            (&[3], &[6], 0.2, 6),
            (&[], &[2, 4], 0.3, 7),
            (&[], &[1, 3], 0.3, 8),
            (&[], &[5], 0.1, 15),
            (&[6], &[0], 0.1, 16),
        ],
    );
}

#[test]
fn ten_authorities_any_delivery_order_commits_the_same() {
    committee_of(
        10,
        24,
        &[
            (&[1, 4, 8], &[], 0.0, 9),
            (&[2], &[5, 9], 0.2, 10),
            (&[], &[1, 5, 8], 0.3, 11),
            (&[], &[0, 6, 7], 0.3, 12),
            (&[], &[2, 3], 0.1, 17),
            (&[9], &[4, 6], 0.1, 18),
        ],
    );
}

#[test]
fn fully_connected_committees_commit_every_leader() {
    for authorities in [4, 7, 10] {
        let f = CommitteeFixture::new(authorities, 1, 11);
        let rounds = 21;
        let dag = f.dag(rounds);
        let mut consensus = consensus(&f.committee, 50, LeaderScheduleKind::RoundRobin);
        let committed = feed(&mut consensus, dag.iter().flatten());
        assert_eq!(committed.len(), leader_rounds(rounds), "n = {authorities}");
        check_against_oracle(&f.committee, &dag, &committed, 50);
    }
}

#[test]
fn randomly_connected_live_committees_commit_most_leaders() {
    for (authorities, seed) in [(4, 12), (7, 13), (10, 14)] {
        let f = CommitteeFixture::new(authorities, 1, seed);
        let rounds = 31;
        let mut rng = StdRng::seed_from_u64(seed);
        let dag = f.random_dag(&DagShape::live(rounds), &mut rng);
        let mut consensus = consensus(&f.committee, 50, LeaderScheduleKind::RoundRobin);
        let committed = feed(&mut consensus, dag.iter().flatten());
        assert!(
            committed.len() * 10 >= leader_rounds(rounds) * 8,
            "n = {authorities}: {} of {} leaders",
            committed.len(),
            leader_rounds(rounds)
        );
        check_against_oracle(&f.committee, &dag, &committed, 50);
    }
}
