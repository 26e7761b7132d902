//! The certificate synchronizer's decisions (`SyncCore`), driven directly: the same code the
//! primary's actor and the simulator run.

use weft_primary::sync_core::{Fetch, Request, SyncConfig, SyncCore};
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, Certificate, CertificateDigest};

const CONFIG: SyncConfig = SyncConfig {
    grace_ms: 50,
    retry_ms: 1_000,
    retry_nodes: 2,
    range_limit: 4,
};

fn a(i: u16) -> AuthorityIndex {
    AuthorityIndex(i)
}

fn core(f: &CommitteeFixture) -> SyncCore {
    SyncCore::new(a(0), &f.committee, CONFIG, 7)
}

fn nothing(_: &CertificateDigest) -> bool {
    false
}

fn valid(_: &Certificate) -> Result<(), &'static str> {
    Ok(())
}

/// Proves: a missing parent is asked of the authority that referenced it only after the grace
/// period, once; again only after the retry delay, then of `retry_nodes` other authorities;
/// and not at all once it arrived or fell below GC.
#[test]
fn a_missing_parent_is_asked_after_the_grace_then_retried_elsewhere() {
    let f = CommitteeFixture::new(4, 1, 1);
    let dag = f.dag(3);
    let mut s = core(&f);
    let wanted = vec![dag[2][1].digest(), dag[2][2].digest()];
    s.want(100, a(3), 3, wanted.clone());
    assert_eq!(s.tick(149, 0, nothing), vec![], "within the grace period");
    assert_eq!(s.next_deadline(), Some(150));
    let first = s.tick(150, 0, nothing);
    assert_eq!(
        first,
        vec![Request {
            to: a(3),
            fetch: Fetch::Digests(wanted.clone())
        }]
    );
    assert_eq!(
        s.tick(1_149, 0, nothing),
        vec![],
        "not again before the retry delay"
    );
    let retries = s.tick(1_150, 0, nothing);
    assert_eq!(retries.len(), CONFIG.retry_nodes);
    assert!(retries.iter().all(|r| r.to != a(0)));
    // One arrived: only the other is asked again.
    let arrived = wanted[0];
    let again = s.tick(2_150, 1, |d| *d == arrived);
    assert!(!again.is_empty());
    assert!(again
        .iter()
        .all(|r| r.fetch == Fetch::Digests(vec![wanted[1]])));
    assert_eq!(s.missing_len(), 1);
    // The other fell below GC (it is of round 2): nothing more is asked.
    assert_eq!(s.tick(3_150, 2, nothing), vec![]);
    assert_eq!(s.missing_len(), 0);
}

/// Proves: only what was asked for is taken from a digest answer, once (an unsolicited
/// certificate, a copy, and one that fails verification are refused with their reasons), and
/// the taken ones come in round order.
#[test]
fn a_digest_answer_gives_only_what_was_asked_once_and_verified() {
    let f = CommitteeFixture::new(4, 1, 2);
    let dag = f.dag(3);
    let mut s = core(&f);
    let (c2, c1, bad) = (dag[2][0].clone(), dag[1][1].clone(), dag[2][3].clone());
    s.want(0, a(1), 3, vec![c2.digest(), c1.digest(), bad.digest()]);
    let fetch = Fetch::Digests(vec![c2.digest(), c1.digest(), bad.digest()]);
    let answer = vec![
        c2.clone(),
        c2.clone(),
        dag[2][1].clone(),
        c1.clone(),
        bad.clone(),
    ];
    let bad_digest = bad.digest();
    let verify = |c: &Certificate| {
        if c.digest() == bad_digest {
            Err("invalid_signature")
        } else {
            Ok(())
        }
    };
    let answered = s.answered(10, a(1), &fetch, Some(answer), verify, nothing);
    assert_eq!(answered.certificates, vec![c1, c2]);
    // The copy of c2 comes after c2 was taken: no longer wanted, so unsolicited.
    assert_eq!(
        answered.rejected,
        vec!["unsolicited", "unsolicited", "invalid_signature"]
    );
    assert_eq!(answered.next, None);
    assert_eq!(s.missing_len(), 1, "the invalid one is still missing");
}

/// Proves: one range request at a time; a full answer that moves on continues from its last
/// round with the same peer; a full answer of copies of one round marks the peer and asks the
/// next one; a request right after an answer waits out the grace period.
#[test]
fn range_sync_continues_full_answers_and_moves_on_from_copies() {
    let f = CommitteeFixture::new(4, 1, 3);
    let dag = f.dag(6);
    let mut s = core(&f);
    let first = s.range(0, a(2), 1).expect("nothing in flight");
    assert_eq!(
        first,
        Request {
            to: a(2),
            fetch: Fetch::Range {
                from_round: 1,
                limit: 4
            }
        }
    );
    assert_eq!(s.range(10, a(3), 1), None, "one in flight at a time");
    // A full answer reaching round 2: continue from round 2 with the same peer.
    let moving: Vec<Certificate> = dag[1][..3]
        .iter()
        .cloned()
        .chain([dag[2][0].clone()])
        .collect();
    let answered = s.answered(20, a(2), &first.fetch, Some(moving), valid, nothing);
    assert_eq!(answered.certificates.len(), 4);
    let next = answered.next.expect("a full answer continues");
    assert_eq!(
        next,
        Request {
            to: a(2),
            fetch: Fetch::Range {
                from_round: 2,
                limit: 4
            }
        }
    );
    // Copies of one round-2 certificate: authority 2 is passed over, authority 3 is next.
    let copies = vec![dag[2][0].clone(); 4];
    let answered = s.answered(30, a(2), &next.fetch, Some(copies), valid, |_| true);
    assert!(answered.rejected.contains(&"unproductive_range"));
    assert_eq!(answered.next.map(|r| r.to), Some(a(3)));
    // That request times out; a new range right after its end waits out the grace period.
    assert_eq!(s.tick(1_030, 0, nothing), vec![]);
    assert_eq!(s.range(1_040, a(2), 2), None, "cooling down");
    let later = s.range(1_080, a(2), 2).expect("after the grace period");
    assert_eq!(later.to, a(3), "authority 2 is still passed over");
}
