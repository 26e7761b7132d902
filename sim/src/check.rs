//! The properties every run must keep: checked as events happen (one vote per author and
//! round across restarts, one certificate per author and round) and on the committed logs at
//! the end (agreement, no duplicate output, consecutive indices, liveness after healing).

use crate::store::CommittedRecord;
use std::collections::{BTreeMap, BTreeSet};
use weft_types::{AuthorityIndex, BatchDigest, CertificateDigest, HeaderDigest, Round};

/// Violations kept per run; the first ones are what a replay is for.
const MAX_VIOLATIONS: usize = 50;

/// Global view across authorities and restarts, fed while the run goes.
#[derive(Default)]
pub struct Observer {
    /// Every vote that left an authority: (voter, header author, round) → header.
    votes: BTreeMap<(AuthorityIndex, AuthorityIndex, Round), HeaderDigest>,
    /// Every certificate formed: (author, round) → certificate.
    certificates: BTreeMap<(AuthorityIndex, Round), CertificateDigest>,
    pub violations: Vec<String>,
}

impl Observer {
    pub fn violation(&mut self, now: u64, what: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(format!("t={now}ms: {what}"));
        }
    }

    /// Invariant 1: an authority signs at most one vote per (author, round), across restarts.
    pub fn vote_sent(
        &mut self,
        now: u64,
        voter: AuthorityIndex,
        author: AuthorityIndex,
        round: Round,
        digest: HeaderDigest,
    ) {
        let held = *self.votes.entry((voter, author, round)).or_insert(digest);
        if held != digest {
            self.violation(
                now,
                format!("{voter} voted for two headers of {author} round {round}"),
            );
        }
    }

    /// Invariant 2: at most one certificate per (author, round).
    pub fn certificate_formed(
        &mut self,
        now: u64,
        author: AuthorityIndex,
        round: Round,
        digest: CertificateDigest,
    ) {
        let held = *self.certificates.entry((author, round)).or_insert(digest);
        if held != digest {
            self.violation(
                now,
                format!("two certificates exist for {author} round {round}"),
            );
        }
    }
}

/// Invariants 5 and 6 on the final committed logs, indexed by authority: indices are
/// consecutive from 0, timestamps never decrease, no certificate or batch appears twice in
/// one log, and every log is a prefix of the longest one (so all are prefixes of one another,
/// timestamps included).
pub fn check_logs(logs: &[&[CommittedRecord]]) -> Vec<String> {
    let mut out = Vec::new();
    for (a, log) in logs.iter().enumerate() {
        let mut certificates = BTreeSet::<CertificateDigest>::new();
        let mut batches = BTreeSet::<BatchDigest>::new();
        for (i, r) in log.iter().enumerate() {
            if r.index != i as u64 {
                out.push(format!(
                    "authority {a}: entry {i} has sub-DAG index {}",
                    r.index
                ));
            }
            if i > 0 && r.timestamp < log[i - 1].timestamp {
                out.push(format!(
                    "authority {a}: sub-DAG {i}'s timestamp {} is before the previous one's {}",
                    r.timestamp,
                    log[i - 1].timestamp
                ));
            }
            if let Some(d) = r.certificates.iter().find(|d| !certificates.insert(**d)) {
                out.push(format!(
                    "authority {a}: certificate {d:?} output twice (again in sub-DAG {})",
                    r.index
                ));
            }
            if let Some(d) = r.batches.iter().find(|d| !batches.insert(**d)) {
                out.push(format!(
                    "authority {a}: batch {d:?} output twice (again in sub-DAG {})",
                    r.index
                ));
            }
        }
    }
    let Some(longest) = logs.iter().max_by_key(|l| l.len()) else {
        return out;
    };
    for (a, log) in logs.iter().enumerate() {
        if let Some(i) = log.iter().zip(longest.iter()).position(|(x, y)| x != y) {
            out.push(format!(
                "agreement: authority {a}'s sub-DAG {i} (leader round {}) differs from the \
                 longest log's (leader round {})",
                log[i].leader_round, longest[i].leader_round
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_types::Digest;

    fn record(index: u64, tag: &[u8]) -> CommittedRecord {
        CommittedRecord {
            index,
            leader_round: 2 * (index + 1),
            leader: CertificateDigest(Digest::of(tag)),
            timestamp: 100 * index,
            certificates: vec![CertificateDigest(Digest::of(tag))],
            batches: vec![BatchDigest(Digest::of(tag))],
        }
    }

    #[test]
    fn the_log_checks_catch_forks_duplicates_and_gaps() {
        let a = vec![record(0, b"a"), record(1, b"b")];
        let prefix = vec![record(0, b"a")];
        assert!(check_logs(&[&a, &prefix]).is_empty(), "a prefix agrees");

        let fork = vec![record(0, b"a"), record(1, b"c")];
        let v = check_logs(&[&a, &fork]);
        assert!(v.iter().any(|v| v.starts_with("agreement")), "{v:?}");

        let twice = vec![record(0, b"a"), record(1, b"a")];
        let v = check_logs(&[&twice]);
        assert!(v.iter().any(|v| v.contains("certificate")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("batch")), "{v:?}");

        let gap = vec![record(0, b"a"), record(2, b"b")];
        let v = check_logs(&[&gap]);
        assert!(
            v.iter().any(|v| v.contains("entry 1 has sub-DAG index 2")),
            "{v:?}"
        );

        let mut back = vec![record(0, b"a"), record(1, b"b")];
        back[0].timestamp = 500;
        let v = check_logs(&[&back]);
        assert!(v.iter().any(|v| v.contains("timestamp")), "{v:?}");
    }

    #[test]
    fn a_second_vote_or_certificate_for_one_slot_is_a_violation() {
        let mut o = Observer::default();
        let (x, y) = (
            HeaderDigest(Digest::of(b"x")),
            HeaderDigest(Digest::of(b"y")),
        );
        o.vote_sent(1, AuthorityIndex(0), AuthorityIndex(1), 3, x);
        o.vote_sent(2, AuthorityIndex(0), AuthorityIndex(1), 3, x);
        assert!(
            o.violations.is_empty(),
            "a retransmitted vote is the same vote"
        );
        o.vote_sent(3, AuthorityIndex(0), AuthorityIndex(1), 3, y);
        assert_eq!(o.violations.len(), 1);
        let (c, d) = (
            CertificateDigest(Digest::of(b"c")),
            CertificateDigest(Digest::of(b"d")),
        );
        o.certificate_formed(4, AuthorityIndex(2), 5, c);
        o.certificate_formed(5, AuthorityIndex(2), 5, d);
        assert_eq!(o.violations.len(), 2);
    }
}
