//! Leader schedules: stake-weighted round robin, and the reputation schedule's determinism,
//! stake bound and effect on silent authorities.

mod common;

use common::{consensus, feed};
use rand::{rngs::StdRng, Rng, SeedableRng};
use weft_consensus::schedule::swap_table;
use weft_consensus::{CommittedSubDag, LeaderSchedule, LeaderScheduleKind, Reputation, RoundRobin};
use weft_test_utils::{CommitteeFixture, DagShape};
use weft_types::{AuthorityIndex, Committee, Round, Stake};

fn weighted(f: &CommitteeFixture, stakes: &[Stake]) -> Committee {
    let mut file = f.committee.to_file();
    for (authority, stake) in file.authorities.iter_mut().zip(stakes) {
        authority.stake = *stake;
    }
    Committee::new(file).unwrap()
}

#[test]
fn round_robin_walks_leader_rounds_in_proportion_to_stake() {
    let f = CommitteeFixture::new(4, 1, 1);
    let plain = RoundRobin::new(&f.committee);
    for k in 0..12u64 {
        assert_eq!(plain.leader(2 * k), AuthorityIndex((k % 4) as u16));
        assert_eq!(
            plain.leader(2 * k + 1),
            plain.leader(2 * k),
            "odd rounds share r / 2"
        );
    }

    let committee = weighted(&f, &[10, 20, 30, 40]);
    let schedule = RoundRobin::new(&committee);
    let leaders: Vec<AuthorityIndex> = (0..10u64).map(|k| schedule.leader(2 * k)).collect();
    for (i, stake) in [1, 2, 3, 4].into_iter().enumerate() {
        let turns = leaders.iter().filter(|a| a.0 as usize == i).count();
        assert_eq!(turns, stake, "A{i} in {leaders:?}");
    }
    // Interleaved: the heaviest authority never leads three leader rounds in a row.
    assert!(
        leaders.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])),
        "{leaders:?}"
    );
    // One cycle repeats.
    assert_eq!(schedule.leader(0), schedule.leader(20));
}

#[test]
fn swap_table_swaps_less_than_validity_stake_lowest_for_highest() {
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..2_000 {
        let n = rng.gen_range(1..12);
        let stakes: Vec<Stake> = (0..n).map(|_| rng.gen_range(1..5)).collect();
        let scores: Vec<u64> = (0..n).map(|_| rng.gen_range(0..6)).collect();
        let total: Stake = stakes.iter().sum();
        let validity = total / 3 + 1;
        let (bad, good) = swap_table(&scores, &stakes, validity);
        let stake = |l: &[AuthorityIndex]| l.iter().map(|a| stakes[a.0 as usize]).sum::<Stake>();
        let score = |a: &AuthorityIndex| scores[a.0 as usize];
        assert!(stake(&bad) < validity, "{scores:?} {stakes:?} → {bad:?}");
        assert!(stake(&good) < validity);
        assert!(bad.is_empty() || !good.is_empty());
        assert!(bad.iter().all(|b| !good.contains(b)));
        let others = (0..n as u16).map(AuthorityIndex);
        for x in others {
            if !bad.contains(&x) {
                assert!(
                    bad.iter().all(|b| score(b) <= score(&x)),
                    "lowest are swapped out"
                );
            }
            if !good.contains(&x) {
                assert!(
                    good.iter().all(|g| score(g) >= score(&x)),
                    "highest take over"
                );
            }
        }
        if scores.iter().all(|s| *s == scores[0]) {
            assert!(bad.is_empty(), "equal scores swap nothing");
        }
    }
}

/// Commits of a random 4-authority DAG in which authority `silent` never proposes.
fn commits_with_silent(silent: AuthorityIndex, kind: LeaderScheduleKind) -> Vec<CommittedSubDag> {
    let f = CommitteeFixture::new(4, 1, 31);
    let shape = DagShape {
        silent: vec![silent],
        ..DagShape::live(60)
    };
    let dag = f.random_dag(&shape, &mut StdRng::seed_from_u64(31));
    let mut consensus = consensus(&f.committee, 50, kind);
    feed(&mut consensus, dag.iter().flatten())
}

#[test]
fn reputation_is_a_function_of_the_committed_sequence() {
    let f = CommitteeFixture::new(4, 1, 31);
    let kind = LeaderScheduleKind::Reputation {
        commits_per_update: 3,
    };
    let commits = commits_with_silent(AuthorityIndex(1), kind);
    assert!(commits.len() > 9);
    let mut first = Reputation::new(&f.committee, 3).unwrap();
    let mut second = Reputation::new(&f.committee, 3).unwrap();
    let mut restarted = Reputation::new(&f.committee, 3).unwrap();
    for (i, sub_dag) in commits.iter().enumerate() {
        assert_eq!(first.on_commit(sub_dag), second.on_commit(sub_dag));
        if i == 4 {
            // A restart in the middle resumes from the persisted state.
            restarted.restore(&first.state()).unwrap();
        } else if i > 4 {
            restarted.on_commit(sub_dag);
        }
        let leaders = |s: &Reputation| (0..100).map(|r| s.leader(2 * r)).collect::<Vec<_>>();
        assert_eq!(leaders(&first), leaders(&second));
        assert_eq!(first.state(), second.state());
        if i >= 4 {
            assert_eq!(restarted.state(), first.state());
        }
    }
}

#[test]
fn a_silent_authority_stops_being_picked_after_an_update() {
    let f = CommitteeFixture::new(4, 1, 31);
    let silent = AuthorityIndex(2);
    let kind = LeaderScheduleKind::Reputation {
        commits_per_update: 4,
    };
    let commits = commits_with_silent(silent, kind);
    let mut schedule = Reputation::new(&f.committee, 4).unwrap();
    let upcoming = |s: &Reputation, from: Round| {
        (from..from + 100)
            .map(|k| s.leader(2 * k))
            .collect::<Vec<_>>()
    };
    assert!(
        upcoming(&schedule, 0).contains(&silent),
        "round robin picks it"
    );
    let mut updated = false;
    for sub_dag in &commits {
        updated |= schedule.on_commit(sub_dag);
        if updated {
            assert!(schedule.swap_table().0.contains(&silent));
            assert!(!upcoming(&schedule, sub_dag.leader_round / 2 + 1).contains(&silent));
        }
    }
    assert!(updated, "{} commits gave no update", commits.len());

    // Its turns go to authorities that propose, so fewer leader rounds go uncommitted.
    let plain = commits_with_silent(silent, LeaderScheduleKind::RoundRobin);
    assert!(
        commits.len() > plain.len(),
        "{} vs {}",
        commits.len(),
        plain.len()
    );
}
