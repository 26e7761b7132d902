//! Restarts: consensus rebuilt from its last persisted state and the stored certificates outputs
//! exactly what an uninterrupted run outputs after that state — nothing twice, nothing skipped.

mod common;

use bytes::Bytes;
use common::{consensus, feed, sequence, sub_dags};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use weft_consensus::{
    Bullshark, Commit, CommittedSubDag, ConsensusError, ConsensusState, LeaderScheduleKind,
    ReputationState, ScheduleState, STATE_VERSION,
};
use weft_test_utils::{causal_order, CommitteeFixture, DagShape};
use weft_types::codec::DecodeError;
use weft_types::{AuthorityIndex, Certificate, CertificateDigest};

/// The certificates a node still has after the primary garbage-collected for `commit`: those
/// above its sub-DAG's leader round minus `gc_depth` (what `CommitNotice` makes it delete).
fn stored_after_gc(stored: &[Certificate], commit: &Commit, gc_depth: u64) -> Vec<Certificate> {
    let gc_round = commit.sub_dag.leader_round.saturating_sub(gc_depth);
    stored
        .iter()
        .filter(|c| c.round() > gc_round)
        .cloned()
        .collect()
}

#[test]
fn crash_after_any_sub_dag_and_recover_equals_an_uninterrupted_run() {
    let cases = [
        (4, &[1u16][..], LeaderScheduleKind::RoundRobin, 50, 21, 80),
        (
            4,
            &[][..],
            LeaderScheduleKind::Reputation {
                commits_per_update: 2,
            },
            3,
            22,
            30,
        ),
        (
            7,
            &[2, 5][..],
            LeaderScheduleKind::Reputation {
                commits_per_update: 3,
            },
            50,
            23,
            80,
        ),
        (7, &[0][..], LeaderScheduleKind::RoundRobin, 2, 24, 30),
    ];
    let mut multi_commit_calls = 0;
    for (authorities, silent, kind, gc_depth, seed, rounds) in cases {
        let f = CommitteeFixture::new(authorities, 1, seed);
        let mut rng = StdRng::seed_from_u64(seed);
        let shape = DagShape {
            silent: silent.iter().map(|i| AuthorityIndex(*i)).collect(),
            ..DagShape::live(rounds)
        };
        let dag = f.random_dag(&shape, &mut rng);
        let order = causal_order(&dag, |_| false, &mut rng);

        // The uninterrupted run: each commit with the call (certificate) that produced it.
        let mut reference = consensus(&f.committee, gc_depth, kind);
        let mut commits: Vec<(usize, Commit)> = Vec::new();
        for (j, c) in order.iter().enumerate() {
            let out = reference.process_certificate(c.clone()).unwrap();
            multi_commit_calls += usize::from(out.len() > 1);
            commits.extend(out.into_iter().map(|commit| (j, commit)));
        }
        let full: Vec<CommittedSubDag> = commits.iter().map(|(_, c)| c.sub_dag.clone()).collect();
        assert!(full.len() >= 6, "seed {seed}: only {} commits", full.len());

        for (m, (call, commit)) in commits.iter().enumerate() {
            // Certificates stored after the last persisted sub-DAG (the node crashed before it
            // persisted the commits they caused) must be committed by the recovery itself.
            for unpersisted in [0, 1, 9, 40] {
                let persisted = ConsensusState::from_bytes(commit.state.to_bytes()).unwrap();
                let stored_until = (call + 1 + unpersisted).min(order.len());
                let mut stored = stored_after_gc(&order[..stored_until], commit, gc_depth);
                stored.shuffle(&mut rng);
                let (mut recovered, replayed) = Bullshark::recover(
                    f.committee.clone(),
                    gc_depth,
                    kind.build(&f.committee).unwrap(),
                    persisted,
                    stored,
                )
                .unwrap_or_else(|e| panic!("seed {seed} crash after sub-DAG {m}: {e}"));
                let mut output = full[..=m].to_vec();
                output.extend(sub_dags(replayed));
                output.extend(feed(&mut recovered, &order[stored_until..]));
                assert!(
                    sequence(&output) == sequence(&full),
                    "seed {seed} crash after sub-DAG {m}, {unpersisted} unpersisted"
                );
                assert_eq!(recovered.state(), reference.state());
            }
        }
    }
    assert!(
        multi_commit_calls > 0,
        "no call committed several sub-DAGs: the crash between them is not exercised"
    );
}

/// Why each sub-DAG carries its own state: persisting only a call's last state, while the
/// primary garbage-collects after each of its sub-DAGs, leaves a crash between two of them
/// with a state older than the store's GC, and the authority cannot recover.
#[test]
fn a_state_older_than_the_stores_gc_cannot_recover() {
    let gc_depth = 3;
    let f = CommitteeFixture::new(4, 1, 22);
    let gc = |round: u64| round.saturating_sub(gc_depth);
    // Seeded DAGs with a slow authority, whose rounds as leader are weakly supported, until
    // one call commits several sub-DAGs.
    for seed in 0..200 {
        let mut rng = StdRng::seed_from_u64(seed);
        let shape = DagShape {
            slow: vec![AuthorityIndex(1)],
            slow_parent: 0.3,
            ..DagShape::live(30)
        };
        let dag = f.random_dag(&shape, &mut rng);
        let order = causal_order(&dag, |_| false, &mut rng);
        let mut reference = consensus(&f.committee, gc_depth, LeaderScheduleKind::RoundRobin);
        let mut before = reference.state();
        for (j, c) in order.iter().enumerate() {
            let out = reference.process_certificate(c.clone()).unwrap();
            if out.len() > 1
                && gc(out[0].sub_dag.leader_round) > gc(before.last_committed_leader_round)
            {
                let stored = stored_after_gc(&order[..=j], &out[0], gc_depth);
                let recover = |state: ConsensusState| {
                    Bullshark::recover(
                        f.committee.clone(),
                        gc_depth,
                        LeaderScheduleKind::RoundRobin.build(&f.committee).unwrap(),
                        state,
                        stored.clone(),
                    )
                    .map(|_| ())
                };
                let err = recover(before).unwrap_err();
                assert!(matches!(err, ConsensusError::MissingParent { .. }), "{err}");
                // The first sub-DAG's own state recovers from the same store.
                recover(out[0].state.clone()).unwrap();
                return;
            }
            before = reference.state();
        }
    }
    panic!("no call committed several sub-DAGs far enough apart to show the hazard");
}

fn reputation_state() -> ConsensusState {
    ConsensusState {
        last_committed: vec![4, 3, 0, 4],
        last_committed_leader_round: 4,
        next_sub_dag_index: 2,
        last_timestamp: 400,
        schedule: ScheduleState::Reputation(ReputationState {
            scores: vec![1, 2, 0, 3],
            commits_in_period: 1,
            last_leader: Some((4, CertificateDigest::default())),
            bad: vec![AuthorityIndex(2)],
            good: vec![AuthorityIndex(3)],
        }),
    }
}

#[test]
fn state_round_trips_and_garbage_is_rejected_without_panicking() {
    let state = reputation_state();
    let bytes = state.to_bytes();
    assert_eq!(ConsensusState::from_bytes(bytes.clone()), Ok(state));

    // Every truncation fails.
    for len in 0..bytes.len() {
        assert!(
            ConsensusState::from_bytes(bytes.slice(..len)).is_err(),
            "length {len}"
        );
    }
    // An unknown state version.
    let mut other_version = bytes.to_vec();
    other_version[1] = STATE_VERSION + 1;
    assert_eq!(
        ConsensusState::from_bytes(Bytes::from(other_version)),
        Err(DecodeError::UnsupportedVersion(STATE_VERSION + 1))
    );
    // A huge count is refused before anything is allocated.
    // Envelope and state versions, leader round, next index, last timestamp.
    let mut huge = bytes[..26].to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        ConsensusState::from_bytes(Bytes::from(huge)),
        Err(DecodeError::LengthOverflow { .. })
    ));
    // Random input either fails or is a canonical encoding.
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..20_000 {
        let mut garbage = bytes.to_vec();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..garbage.len());
            garbage[i] = rng.gen();
        }
        garbage.truncate(rng.gen_range(garbage.len() - 8..=garbage.len()));
        if let Ok(decoded) = ConsensusState::from_bytes(Bytes::from(garbage.clone())) {
            assert_eq!(decoded.to_bytes(), garbage, "decoding is canonical");
        }
    }
}

#[test]
fn a_state_that_does_not_fit_is_refused() {
    let f = CommitteeFixture::new(4, 1, 1);
    let build = |kind: LeaderScheduleKind, state: ConsensusState| {
        Bullshark::new(
            f.committee.clone(),
            10,
            kind.build(&f.committee).unwrap(),
            state,
        )
    };
    let reputation = LeaderScheduleKind::Reputation {
        commits_per_update: 5,
    };
    assert!(build(reputation, reputation_state()).is_ok());
    // Written by the other schedule.
    assert!(matches!(
        build(LeaderScheduleKind::RoundRobin, reputation_state()),
        Err(ConsensusError::InvalidState(_))
    ));
    // Another committee size.
    let mut state = reputation_state();
    state.last_committed.push(0);
    assert!(matches!(
        build(reputation, state),
        Err(ConsensusError::InvalidState(_))
    ));
    // A swap table that removes validity stake (2 of 4) from the schedule.
    let mut state = reputation_state();
    if let ScheduleState::Reputation(s) = &mut state.schedule {
        s.bad = vec![AuthorityIndex(0), AuthorityIndex(2)];
    }
    assert!(matches!(
        build(reputation, state),
        Err(ConsensusError::InvalidState(_))
    ));
    // A parameter that makes no sense.
    assert!(matches!(
        LeaderScheduleKind::Reputation {
            commits_per_update: 0
        }
        .build(&f.committee),
        Err(ConsensusError::InvalidParameter(_))
    ));
}

#[test]
fn schedule_kind_is_a_readable_parameter() {
    let kind: LeaderScheduleKind =
        serde_json::from_str(r#"{"reputation":{"commits_per_update":10}}"#).unwrap();
    assert_eq!(
        kind,
        LeaderScheduleKind::Reputation {
            commits_per_update: 10
        }
    );
    let plain: LeaderScheduleKind = serde_json::from_str(r#""round_robin""#).unwrap();
    assert_eq!(plain, LeaderScheduleKind::default());
    assert!(serde_json::from_str::<LeaderScheduleKind>(r#""fastest""#).is_err());
}
