//! The primary's state machine on its own: what it votes for, what it refuses, how votes
//! become certificates, how missing parents are chased, and that a restart never makes it vote
//! twice for one (author, round). No network, no clock: outputs are inspected directly.

use std::sync::Arc;
use weft_primary::core::{
    Core, CoreConfig, CoreError, LeaderFn, Output, Recovered, VoteRecord, MAX_CLOCK_DRIFT_MS,
    MAX_HEADER_ROUNDS_AHEAD,
};
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, BatchDigest, Certificate, Digest, Header, Round};

fn a(i: u16) -> AuthorityIndex {
    AuthorityIndex(i)
}

fn config() -> CoreConfig {
    CoreConfig {
        gc_depth: 10,
        header_num_of_batches_threshold: 2,
        max_header_num_of_batches: 4,
        max_header_delay_ms: 100,
    }
}

fn leader() -> LeaderFn {
    Arc::new(|r: Round| AuthorityIndex(((r / 2) % 4) as u16))
}

fn core(f: &CommitteeFixture, me: AuthorityIndex) -> Core {
    recover(f, me, Recovered::default())
}

/// `me`'s core rebuilt from what it persisted.
fn recover(f: &CommitteeFixture, me: AuthorityIndex, recovered: Recovered) -> Core {
    Core::recover(
        me,
        f.committee.clone(),
        f.keys(me).protocol.copy(),
        config(),
        leader(),
        recovered,
    )
}

#[test]
fn votes_after_parents_and_payload_and_persists_the_vote_first() {
    let f = CommitteeFixture::new(4, 1, 1);
    let genesis = Certificate::genesis(&f.committee);
    let mut c = core(&f, a(0));
    let payload = vec![(BatchDigest(Digest::of(b"batch")), 0)];
    let h = f.header(a(1), 1, &genesis, payload.clone());
    c.handle_header(h.clone()).unwrap();
    let out = c.take_ready().outputs;
    assert!(
        matches!(&out[..], [Output::SyncPayload { notify: true, payload: p, .. }] if *p == payload),
        "{out:?}"
    );
    // No vote until the payload is there.
    c.payload_available(a(1), 1, h.digest()).unwrap();
    let ready = c.take_ready();
    // The record is in the step's durable part, which the caller syncs before any output.
    assert_eq!(
        ready.votes,
        vec![VoteRecord {
            author: a(1),
            round: 1,
            digest: h.digest()
        }]
    );
    let vote = ready
        .outputs
        .iter()
        .find_map(|o| match o {
            Output::SendVote { to, vote } if *to == a(1) => Some(vote.clone()),
            _ => None,
        })
        .expect("a vote for a(1)");
    assert_eq!(vote.header_digest, h.digest());
    assert_eq!(vote.verify(&f.committee), Ok(()));
}

/// One step that releases several headers for votes asks for one durable write holding all
/// their records (one fsync, not one per vote), and the votes follow it.
#[test]
fn the_votes_of_one_step_share_one_durable_write() {
    let f = CommitteeFixture::new(4, 1, 13);
    let rounds = f.dag(1);
    let mut c = core(&f, a(0));
    for cert in &rounds[1][..3] {
        c.handle_certificate(cert.clone()).unwrap();
    }
    // Two headers of round 2 wait for the same missing parent.
    let headers: Vec<Header> = [a(1), a(2)]
        .into_iter()
        .map(|author| f.header(author, 2, &rounds[1], vec![]))
        .collect();
    for h in &headers {
        c.handle_header(h.clone()).unwrap();
        let _ = c.payload_available(h.author, 2, h.digest());
    }
    assert!(c.take_ready().votes.is_empty(), "no vote without parents");
    c.handle_certificate(rounds[1][3].clone()).unwrap();
    let ready = c.take_ready();
    let recorded: Vec<_> = ready.votes.iter().map(|v| (v.author, v.digest)).collect();
    let expected: Vec<_> = headers.iter().map(|h| (h.author, h.digest())).collect();
    assert_eq!(recorded, expected);
    let sent = ready
        .outputs
        .iter()
        .filter(|o| matches!(o, Output::SendVote { .. }))
        .count();
    assert_eq!(sent, 2, "{:?}", ready.outputs);
}

#[test]
fn refuses_equivocation_too_few_parents_and_stale_rounds() {
    let f = CommitteeFixture::new(4, 1, 2);
    let genesis = Certificate::genesis(&f.committee);
    let mut c = core(&f, a(0));
    let h = f.header(a(1), 1, &genesis, vec![]);
    c.handle_header(h.clone()).unwrap();
    c.payload_available(a(1), 1, h.digest()).unwrap();
    c.take_ready();
    // A second, different header of the same author and round.
    let twin = f.header(a(1), 1, &genesis[..3], vec![]);
    assert_eq!(
        c.handle_header(twin),
        Err(CoreError::Equivocation {
            author: a(1),
            round: 1
        })
    );
    // The same header again is a retransmission: the same vote, sent again, nothing persisted.
    c.handle_header(h.clone()).unwrap();
    let out = c.take_ready().outputs;
    assert!(matches!(&out[..], [Output::SendVote { .. }]), "{out:?}");

    // Parents carrying only f+1 stake.
    let thin = f.header(a(2), 1, &genesis[..2], vec![]);
    assert_eq!(
        c.handle_header(thin),
        Err(CoreError::InsufficientParents {
            stake: 2,
            needed: 3
        })
    );
    // Too many batches.
    let fat: Vec<_> = (0..5u8)
        .map(|i| (BatchDigest(Digest::of(&[i])), 0))
        .collect();
    let fat = f.header(a(3), 1, &genesis, fat);
    assert!(matches!(
        c.handle_header(fat),
        Err(CoreError::TooManyBatches { count: 5, limit: 4 })
    ));
    let ready = c.take_ready();
    assert!(
        ready.votes.is_empty()
            && !ready
                .outputs
                .iter()
                .any(|o| matches!(o, Output::SendVote { .. })),
        "no vote for a refused header"
    );
}

#[test]
fn a_restarted_core_never_votes_twice_for_one_round() {
    let f = CommitteeFixture::new(4, 1, 3);
    let genesis = Certificate::genesis(&f.committee);
    let h = f.header(a(2), 1, &genesis, vec![]);
    let mut c = core(&f, a(0));
    c.handle_header(h.clone()).unwrap();
    c.payload_available(a(2), 1, h.digest()).unwrap();
    let persisted: Vec<_> = c
        .take_ready()
        .votes
        .into_iter()
        .map(|v| (v.author, (v.round, v.digest)))
        .collect();
    // Restart from what was persisted.
    let mut c = recover(
        &f,
        a(0),
        Recovered {
            votes: persisted,
            ..Default::default()
        },
    );
    let twin = f.header(a(2), 1, &genesis[..3], vec![]);
    assert_eq!(
        c.handle_header(twin),
        Err(CoreError::Equivocation {
            author: a(2),
            round: 1
        })
    );
    assert!(!c
        .take_ready()
        .outputs
        .iter()
        .any(|o| matches!(o, Output::SendVote { .. })));
}

#[test]
fn proposes_on_the_timer_and_forms_a_certificate_at_quorum() {
    let f = CommitteeFixture::new(4, 1, 4);
    let mut c = core(&f, a(0));
    c.tick(50);
    assert!(
        c.take_ready().outputs.is_empty(),
        "the header timer has not expired"
    );
    c.tick(100);
    let out = c.take_ready().outputs;
    let header = out
        .iter()
        .find_map(|o| match o {
            Output::BroadcastHeader(h) => Some(h.clone()),
            _ => None,
        })
        .expect("a header for round 1");
    assert_eq!((header.round, header.author), (1, a(0)));
    assert_eq!(header.verify(&f.committee, true), Ok(()));
    // Own vote + one more is f+1: no certificate yet; a third vote makes the quorum.
    let votes = f.votes(&header, [a(1), a(2)]);
    c.handle_vote(votes[0].clone()).unwrap();
    assert!(!c
        .take_ready()
        .outputs
        .iter()
        .any(|o| matches!(o, Output::BroadcastCertificate(_))));
    c.handle_vote(votes[1].clone()).unwrap();
    let out = c.take_ready().outputs;
    let cert = out
        .iter()
        .find_map(|o| match o {
            Output::BroadcastCertificate(c) => Some(c.clone()),
            _ => None,
        })
        .expect("a certificate at quorum");
    assert_eq!(cert.verify(&f.committee), Ok(()));
    assert_eq!(cert.signer_indices().count(), 3);
    assert!(out.contains(&Output::NewCertificate(cert)));
    // A vote for some other header is unexpected.
    let other = f.header(a(1), 1, &Certificate::genesis(&f.committee), vec![]);
    assert_eq!(
        c.handle_vote(f.votes(&other, [a(3)])[0].clone()),
        Err(CoreError::UnexpectedVote)
    );
}

#[test]
fn enough_batches_propose_before_the_timer() {
    let f = CommitteeFixture::new(4, 1, 5);
    let mut c = core(&f, a(0));
    c.tick(1);
    c.add_batch(BatchDigest(Digest::of(b"1")), 0);
    assert!(c.take_ready().outputs.is_empty());
    c.add_batch(BatchDigest(Digest::of(b"2")), 0);
    let out = c.take_ready().outputs;
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::BroadcastHeader(h) if h.payload.len() == 2)),
        "{out:?}"
    );
}

#[test]
fn missing_parents_are_fetched_and_certificates_leave_in_causal_order() {
    let f = CommitteeFixture::new(4, 1, 6);
    let rounds = f.dag(2);
    let mut c = core(&f, a(0));
    let child = rounds[2][1].clone();
    c.handle_certificate(child.clone()).unwrap();
    let out = c.take_ready().outputs;
    let fetch = out.iter().find_map(|o| match o {
        Output::FetchCertificates { from, digests, .. } => Some((*from, digests.len())),
        _ => None,
    });
    assert_eq!(fetch, Some((a(1), 4)), "{out:?}");
    for p in &rounds[1] {
        c.handle_certificate(p.clone()).unwrap();
    }
    let inserted: Vec<(Round, AuthorityIndex)> = c
        .take_ready()
        .outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::NewCertificate(c) => Some((c.round(), c.author())),
            _ => None,
        })
        .collect();
    assert_eq!(inserted.len(), 5);
    assert_eq!(
        inserted.last(),
        Some(&(2, a(1))),
        "the child is released after its parents"
    );
}

#[test]
fn a_certificate_far_ahead_triggers_a_range_fetch() {
    let f = CommitteeFixture::new(4, 1, 7);
    let rounds = f.dag(8);
    let mut c = core(&f, a(0));
    c.handle_certificate(rounds[8][2].clone()).unwrap();
    let out = c.take_ready().outputs;
    assert!(
        // From the highest round with a quorum (genesis): a parent may be missing there too.
        out.contains(&Output::FetchRange {
            from: a(2),
            from_round: 0
        }),
        "{out:?}"
    );
}

/// A parent first missed by a certificate far ahead (which asks for a range, not for the
/// digest) is asked for by digest once that certificate comes within reach: the range starts at
/// the highest round with a quorum and cannot bring a parent below it. Without this a lagging
/// authority waited for ever (simulator seed 7000138 with 7 authorities).
#[test]
fn a_parent_first_missed_far_ahead_is_fetched_once_within_reach() {
    let f = CommitteeFixture::new(4, 1, 7);
    let rounds = f.dag(6);
    let mut c = core(&f, a(0));
    let child = rounds[6][2].clone();
    let lost = rounds[5][1].digest();
    c.handle_certificate(child.clone()).unwrap();
    let out = c.take_ready().outputs;
    assert!(
        out.iter().any(|o| matches!(o, Output::FetchRange { .. })),
        "{out:?}"
    );
    // The range brings the rest; the child, woken by its other parents, is within reach.
    let mut out = Vec::new();
    for cert in rounds[1..=5]
        .iter()
        .flatten()
        .filter(|c| c.digest() != lost)
    {
        c.handle_certificate(cert.clone()).unwrap();
        out.extend(c.take_ready().outputs);
    }
    assert!(
        out.iter().any(|o| matches!(o,
            Output::FetchCertificates { digests, .. } if digests.contains(&lost))),
        "{out:?}"
    );
}

#[test]
fn garbage_collection_follows_commits() {
    let f = CommitteeFixture::new(4, 1, 8);
    let rounds = f.dag(30);
    let mut c = core(&f, a(0));
    for r in &rounds[1..] {
        for cert in r {
            c.handle_certificate(cert.clone()).unwrap();
        }
    }
    c.take_ready();
    c.handle_committed(20);
    let out = c.take_ready().outputs;
    let dropped = out.iter().find_map(|o| match o {
        Output::GarbageCollected {
            gc_round,
            certificates,
        } => Some((*gc_round, certificates.len())),
        _ => None,
    });
    // gc_depth 10: rounds 0..=10 go (genesis + 10 rounds of 4).
    assert_eq!(dropped, Some((10, 44)));
    assert_eq!(c.dag().gc_round(), 10);
    assert_eq!(c.dag().len(), 20 * 4);
    assert!(matches!(
        c.handle_header(f.header(a(1), 5, &rounds[4], vec![])),
        Err(CoreError::TooOld { .. })
    ));
}

fn proposed(out: &[Output]) -> Option<weft_types::Header> {
    out.iter().find_map(|o| match o {
        Output::BroadcastHeader(h) => Some(h.clone()),
        _ => None,
    })
}

/// `a(0)` has proposed round 2 (at t=100) and, at t=400, holds a quorum of round 2 without
/// its leader `a(1)`: the round took three header delays.
fn quorum_of_round_2_without_its_leader(f: &CommitteeFixture, rounds: &[Vec<Certificate>]) -> Core {
    assert_eq!(leader()(2), a(1));
    let mut c = core(f, a(0));
    for cert in &rounds[1] {
        c.handle_certificate(cert.clone()).unwrap();
    }
    c.tick(100);
    let own = proposed(&c.take_ready().outputs).expect("a header of round 2");
    assert_eq!(own.round, 2);
    c.tick(400);
    // Stuck for two header delays, it re-sends its header: not what the test looks at.
    c.take_ready();
    for v in f.votes(&own, [a(2), a(3)]) {
        c.handle_vote(v).unwrap();
    }
    for cert in [&rounds[2][2], &rounds[2][3]] {
        c.handle_certificate(cert.clone()).unwrap();
    }
    c
}

/// Bullshark's liveness needs leaders in the next round's parents, so once a primary has its
/// parents it waits one header delay for the leader, timed from the quorum, even when the
/// header timer (timed from its last proposal) ran out long ago. Timed from the last proposal,
/// a network slower than one header delay per round gave leaders no wait at all, and on
/// simulator seed 637511863 all four authorities committed one sub-DAG in the 7 healed
/// seconds: each leader certificate arrived just after the others had moved on.
#[test]
fn a_slow_round_still_waits_one_header_delay_for_its_leader() {
    let f = CommitteeFixture::new(4, 1, 12);
    let rounds = f.dag(2);
    let leader_digest = rounds[2][1].digest();

    // The leader arrives within the wait: the next header links to it.
    let mut c = quorum_of_round_2_without_its_leader(&f, &rounds);
    assert_eq!(
        proposed(&c.take_ready().outputs),
        None,
        "the parents alone do not propose"
    );
    assert_eq!(c.next_deadline_ms(), 500);
    c.tick(450);
    assert_eq!(proposed(&c.take_ready().outputs), None);
    c.handle_certificate(rounds[2][1].clone()).unwrap();
    let h3 = proposed(&c.take_ready().outputs).expect("a header once the leader is there");
    assert_eq!(h3.round, 3);
    assert!(h3.parents.contains(&leader_digest));

    // The leader never comes: one header delay after the quorum, the header goes without it.
    let mut c = quorum_of_round_2_without_its_leader(&f, &rounds);
    c.tick(499);
    assert_eq!(proposed(&c.take_ready().outputs), None);
    c.tick(500);
    let h3 = proposed(&c.take_ready().outputs).expect("a header once the wait is over");
    assert_eq!((h3.round, h3.parents.len()), (3, 3));
    assert!(!h3.parents.contains(&leader_digest));
}

/// Batches are never lost with a header: one that was not certified before the next round is
/// abandoned and its batches go into the next header; the batches of a certified header that
/// consensus can no longer output are proposed again too.
#[test]
fn batches_of_abandoned_and_orphaned_headers_are_proposed_again() {
    let f = CommitteeFixture::new(4, 1, 9);
    let rounds = f.dag(1);
    let mut c = core(&f, a(0));
    let b = |i: u8| (BatchDigest(Digest::of(&[i])), 0);
    c.tick(1);
    c.add_batch(b(1).0, 0);
    c.add_batch(b(2).0, 0);
    let h1 = proposed(&c.take_ready().outputs).expect("header of round 1");
    assert_eq!(h1.payload, vec![b(1), b(2)]);
    // Round 1 completes without our header being certified: round 2 carries its batches.
    for cert in &rounds[1][1..] {
        c.handle_certificate(cert.clone()).unwrap();
    }
    c.add_batch(b(3).0, 0);
    c.tick(1_000);
    let h2 = proposed(&c.take_ready().outputs).expect("header of round 2");
    assert_eq!(h2.round, 2);
    assert_eq!(h2.payload, vec![b(1), b(2), b(3)]);
    // Votes for the abandoned header no longer count.
    assert_eq!(
        c.handle_vote(f.votes(&h1, [a(1)])[0].clone()),
        Err(CoreError::UnexpectedVote)
    );
    // Header 2 is certified, but consensus then outputs a later certificate of ours without
    // it: its batches come back.
    for v in f.votes(&h2, [a(1), a(2)]) {
        c.handle_vote(v).unwrap();
    }
    c.take_ready();
    c.own_certificates_committed(&[3]);
    c.add_batch(b(4).0, 0);
    c.tick(2_000);
    for author in [a(1), a(2), a(3)] {
        let cert = f.certificate(f.header(author, 2, &rounds[1][1..], vec![]));
        c.handle_certificate(cert).unwrap();
    }
    c.tick(3_000);
    let h3 = proposed(&c.take_ready().outputs).expect("header of round 3");
    assert_eq!(h3.payload, vec![b(1), b(2), b(3), b(4)]);
    // Once committed, a certificate's batches are not proposed again: a stuck primary only
    // repeats the header it has (same digest), it does not put them in a new one.
    c.own_certificates_committed(&[3]);
    c.tick(4_000);
    let out = c.take_ready().outputs;
    assert!(out.iter().all(|o| !matches!(o,
        Output::BroadcastHeader(h) if h.digest() != h3.digest() && !h.payload.is_empty())));
}

/// A primary whose round does not move re-sends its uncertified header (the same one, so
/// voters answer with the same vote) and pulls its round from a peer, once per header delay
/// and from a different peer each time.
#[test]
fn a_stuck_primary_resends_its_header_and_pulls_its_round() {
    let f = CommitteeFixture::new(4, 1, 10);
    let mut c = core(&f, a(0));
    c.tick(100);
    let h1 = proposed(&c.take_ready().outputs).expect("header of round 1");
    c.tick(250);
    assert!(
        c.take_ready().outputs.is_empty(),
        "not stuck before two header delays"
    );
    c.tick(300);
    let out = c.take_ready().outputs;
    assert!(
        out.contains(&Output::BroadcastHeader(h1.clone())),
        "{out:?}"
    );
    let first = out.iter().find_map(|o| match o {
        Output::FetchRange {
            from,
            from_round: 0,
        } => Some(*from),
        _ => None,
    });
    assert!(first.is_some_and(|p| p != a(0)), "{out:?}");
    c.tick(350);
    assert!(
        c.take_ready().outputs.is_empty(),
        "at most once per header delay"
    );
    c.tick(400);
    let second = c.take_ready().outputs.iter().find_map(|o| match o {
        Output::FetchRange { from, .. } => Some(*from),
        _ => None,
    });
    assert!(second.is_some_and(|p| p != a(0) && Some(p) != first));
}

/// Invariant 8 in the core: own batches reported before a restart and not committed are
/// proposed again — those queued or in a certificate below the GC round in the first header,
/// in report order — while one that a live own certificate carries waits for consensus and
/// comes back only if that certificate can no longer be committed.
#[test]
fn a_restarted_core_proposes_its_uncommitted_own_batches_again() {
    let f = CommitteeFixture::new(4, 1, 10);
    let rounds = f.dag(1);
    let b = |i: u8| (BatchDigest(Digest::of(&[i])), 0);
    let own_round_1 = f.certificate(f.header(a(0), 1, &rounds[0], vec![b(2)]));
    let votes = vec![(a(0), (1, own_round_1.header.digest()))];
    let mut certificates = rounds[1][1..].to_vec();
    certificates.push(own_round_1);
    let mut c = recover(
        &f,
        a(0),
        Recovered {
            votes,
            certificates,
            own_batches: vec![b(3), b(2), b(1)],
            ..Default::default()
        },
    );
    c.tick(1_000);
    let h = proposed(&c.take_ready().outputs).expect("a header after the restart");
    assert_eq!(h.round, 2);
    assert_eq!(h.payload, vec![b(3), b(1)], "queued ones, in report order");
    // Consensus outputs a later own certificate without the one of round 1: b(2) comes back.
    for v in f.votes(&h, [a(1), a(2)]) {
        c.handle_vote(v).unwrap();
    }
    c.take_ready();
    c.own_certificates_committed(&[2]);
    for author in [a(1), a(2), a(3)] {
        let cert = f.certificate(f.header(author, 2, &rounds[1][1..], vec![]));
        c.handle_certificate(cert).unwrap();
    }
    c.tick(2_000);
    let h3 = proposed(&c.take_ready().outputs).expect("header of round 3");
    assert_eq!(h3.payload, vec![b(2)]);
}

/// Headers are dated by the proposer's clock, and a header dated more than
/// `MAX_CLOCK_DRIFT_MS` ahead of the voter's clock gets no vote (a committed leader's time,
/// the sub-DAG's timestamp, stays within that drift of an honest clock); one within it does.
#[test]
fn headers_carry_the_proposers_clock_and_far_future_ones_get_no_vote() {
    let f = CommitteeFixture::new(4, 1, 4);
    let genesis = Certificate::genesis(&f.committee);
    let now = 1_700_000_000_000;
    let mut c = core(&f, a(0));
    c.tick(now);
    let own = proposed(&c.take_ready().outputs).expect("a header on the expired timer");
    assert_eq!(own.created_at, now);

    let dated = |author: u16, created_at: u64| {
        Header::new(
            a(author),
            1,
            f.committee.epoch(),
            created_at,
            vec![],
            genesis.iter().map(Certificate::digest).collect(),
            &f.keys(a(author)).protocol,
        )
    };
    let ahead = dated(1, now + MAX_CLOCK_DRIFT_MS + 1);
    assert_eq!(
        c.handle_header(ahead),
        Err(CoreError::FromTheFuture {
            created_at: now + MAX_CLOCK_DRIFT_MS + 1,
            now
        })
    );
    assert_eq!(
        CoreError::FromTheFuture {
            created_at: 0,
            now: 0
        }
        .kind(),
        "from_the_future"
    );
    let within = dated(2, now + MAX_CLOCK_DRIFT_MS);
    c.handle_header(within.clone()).unwrap();
    c.payload_available(a(2), 1, within.digest()).unwrap();
    let out = c.take_ready().outputs;
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::SendVote { to, .. } if *to == a(2))),
        "{out:?}"
    );
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::SendVote { to, .. } if *to == a(1))),
        "no vote for the header from the future"
    );
}

/// Proves: a header more than `MAX_HEADER_ROUNDS_AHEAD` rounds above the DAG is refused before
/// it is held or chased (a Byzantine author cannot park a header at each of the next
/// `MAX_PENDING_ROUNDS` rounds), while one within the window is taken.
#[test]
fn a_header_far_above_the_dag_is_refused_before_anything_is_held() {
    let f = CommitteeFixture::new(4, 1, 5);
    let genesis = Certificate::genesis(&f.committee);
    let mut c = core(&f, a(0));
    let far = MAX_HEADER_ROUNDS_AHEAD + 1;
    assert_eq!(
        c.handle_header(f.header(a(1), far, &genesis, vec![])),
        Err(CoreError::TooFarAhead {
            round: far,
            highest: 0,
            limit: MAX_HEADER_ROUNDS_AHEAD
        })
    );
    assert!(c.take_ready().outputs.is_empty(), "nothing fetched for it");
    let within = c.handle_header(f.header(a(1), MAX_HEADER_ROUNDS_AHEAD, &genesis, vec![]));
    assert!(
        !matches!(within, Err(CoreError::TooFarAhead { .. })),
        "{within:?}"
    );
}

/// A proposal's header is in the step's durable part beside the own vote for it: a restart
/// can never find the vote without the header (simulator seed 60002913 stalled on that).
#[test]
fn the_own_header_is_durable_with_the_own_vote() {
    let f = CommitteeFixture::new(4, 1, 14);
    let mut c = core(&f, a(0));
    c.tick(100);
    let ready = c.take_ready();
    let header = ready.header.expect("a header of round 1");
    assert_eq!(
        ready.votes,
        vec![VoteRecord {
            author: a(0),
            round: 1,
            digest: header.digest()
        }]
    );
}
