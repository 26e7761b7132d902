//! Seeded simulations of the committee: for every seed, all authorities' committed logs are
//! prefixes of one another, nothing is output twice (across restarts too), sub-DAG indices are
//! consecutive, votes and certificates stay unique, no vote leaves before its record is
//! durable, and (see below) commits resume once the network heals. A failing seed prints the
//! command that replays it.
//!
//! Liveness after healing is checked on every run, but it fails only with
//! `WEFT_SIM_STRICT_LIVENESS=1`: the simulator found two liveness bugs in the primary's core
//! (the `#[ignore]`d tests at the bottom replay them), and until they are fixed a seed that
//! hits them is listed, not failed. Safety is always strict.

use weft_sim::{run_seed, seed_count, Report};

fn strict_liveness() -> bool {
    std::env::var_os("WEFT_SIM_STRICT_LIVENESS").is_some()
}

/// Runs seeds `first..first + count`; fails listing every failing seed with its replay
/// command.
fn run_many(authorities: usize, first: u64, count: u64) {
    let reports: Vec<Report> = (first..first + count)
        .map(|seed| run_seed(authorities, seed))
        .collect();
    let unsafe_runs: Vec<&Report> = reports.iter().filter(|r| !r.safe()).collect();
    let stalled: Vec<&Report> = reports.iter().filter(|r| !r.liveness.is_empty()).collect();
    for r in unsafe_runs.iter().chain(&stalled) {
        eprintln!("FAILED {r}\n  replay: {}", r.replay_command());
    }
    let commits: usize = reports
        .iter()
        .map(|r| r.committed.iter().sum::<usize>())
        .sum();
    eprintln!(
        "{count} seeds of {authorities} authorities: {} unsafe, {} with a liveness failure, \
         {commits} sub-DAGs committed in all",
        unsafe_runs.len(),
        stalled.len()
    );
    assert!(
        unsafe_runs.is_empty(),
        "{} of {count} seeds violate safety: {:?}",
        unsafe_runs.len(),
        unsafe_runs.iter().map(|r| r.seed).collect::<Vec<_>>()
    );
    assert!(
        !strict_liveness() || stalled.is_empty(),
        "{} of {count} seeds did not commit after healing: {:?}",
        stalled.len(),
        stalled.iter().map(|r| r.seed).collect::<Vec<_>>()
    );
    // Whatever the known bugs do, most runs must keep committing to the end.
    assert!(
        stalled.len() * 4 <= reports.len(),
        "{} of {count} seeds did not commit after healing",
        stalled.len()
    );
}

#[test]
fn four_authorities_many_seeds() {
    run_many(4, 0, seed_count(200));
}

#[test]
fn seven_authorities_many_seeds() {
    run_many(7, 1_000_000, seed_count(200) / 10);
}

/// The checks are not vacuous: runs do crash, restart, partition, lose messages and still
/// commit a lot, on both committee sizes.
#[test]
fn runs_exercise_every_fault_and_commit() {
    for authorities in [4, 7] {
        let r = run_seed(authorities, 3);
        assert!(r.passed(), "{r}");
        assert!(r.stats.crashes > 0 && r.stats.partitions > 0, "{r}");
        assert!(r.stats.lost > 0, "{r}");
        assert!(r.committed.iter().all(|c| *c >= 5), "{r}");
        assert!(r.batches_committed > 0, "{r}");
    }
}

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `WEFT_SIM_SEED=<seed> [WEFT_SIM_AUTHORITIES=<n>] [WEFT_SIM_TRACE=1]`: one seed, strictly,
/// with its report (and every event with `WEFT_SIM_TRACE`).
#[test]
fn replay() {
    let report = run_seed(
        var("WEFT_SIM_AUTHORITIES", 4) as usize,
        var("WEFT_SIM_SEED", 0),
    );
    println!("{report}");
    assert!(report.passed(), "replay: {}", report.replay_command());
}

#[test]
fn one_seed_gives_one_trace() {
    for (authorities, seed) in [(4, 7), (7, 11)] {
        let (a, b) = (run_seed(authorities, seed), run_seed(authorities, seed));
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}: traces differ");
        assert_eq!(a.committed, b.committed);
        assert_eq!(a.stats.events, b.stats.events);
        let other = run_seed(authorities, seed + 1);
        assert_ne!(a.trace_hash, other.trace_hash, "the seed must matter");
    }
}

// The two bugs below were found with the primary's core as it stood on 2026-11-23 (16:05 UTC,
// including uncommitted work on re-proposing batches); a change to the core changes the
// traces, so these seeds may stop showing them. `WEFT_SIM_STRICT_LIVENESS=1` with the
// many-seeds tests lists the seeds that still stall.

/// Bug (primary `Core::wait_for`): authority 1 ends at round 22 with 178 pending messages and
/// nothing requested; its round 21 holds A0, A1, A3 (a quorum) but not A2@21, which the
/// others' round-22 certificates reference. When a certificate waits on a parent while the
/// core is far behind, only `FetchRange` is emitted, yet the parent is registered in
/// `waiting_on`, so it never counts as fresh again and `FetchCertificates` is never emitted
/// for it. Range requests start at `highest_quorum_round() + 1` = 22, above the missing
/// parent, and its author's broadcast died in a crash. Authority 1 never catches up.
#[test]
#[ignore = "liveness bug in weft-primary's Core: a parent at the highest quorum round is never fetched"]
fn lagging_primary_never_fetches_a_parent_at_its_highest_quorum_round() {
    let report = run_seed(4, 32);
    println!("{report}");
    assert!(report.passed(), "{}", report.replay_command());
}

/// Bug (primary `Core`, no re-broadcast after a crash): A0 certified its round-11 header, a
/// partition cut its certificate's broadcast to A1 and A3, and A0 crashed (t=4.8 s) while its
/// reliable sender was retrying, so the broadcast died; A1's round-11 certificate was lost the
/// same way. After recovery nothing sends them again: `Core::recover` re-broadcasts only an
/// uncertified last header, no one references them (no round-12 header can be built), and
/// nothing pulls certificates of a round that lacks a quorum. Every authority holds two of
/// round 11's certificates and the committee stalls from t≈5.6 s to the end, all links healed
/// and all authorities up from t=13 s. (Headers are not re-broadcast either, so a vote lost in
/// a voter's crash stalls its header the same way.)
#[test]
#[ignore = "liveness bug in weft-primary's Core: what a crash lost from the send queue is never re-sent"]
fn a_certificate_lost_in_its_authors_crash_stalls_the_round() {
    let report = run_seed(4, 64);
    println!("{report}");
    assert!(report.passed(), "{}", report.replay_command());
}
