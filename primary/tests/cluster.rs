//! Four real primaries over loopback TLS build the certified DAG: every round is certified by
//! a quorum, each certificate carries quorum stake of valid votes, three keep going without
//! the fourth, garbage collection keeps memory and disk flat over a thousand rounds, and a
//! primary that starts 500 rounds behind catches up by range with few requests.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use weft_primary::columns;
use weft_storage::Column;
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, Certificate, CertificateDigest, Round, Stake};

async fn start_all(
    f: &CommitteeFixture,
    dirs: &[tempfile::TempDir],
    delay_ms: u64,
    gc_depth: Round,
    commit_lag: Option<Round>,
) -> Vec<Node> {
    let commits = commit_lag.map(|lag| Commits::new(dirs.len(), lag));
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let p = parameters(delay_ms, gc_depth);
        nodes.push(start(f, i as u16, dir.path(), p, commits.clone()).await);
    }
    nodes
}

fn dirs(n: usize) -> Vec<tempfile::TempDir> {
    (0..n).map(|_| tempfile::tempdir().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_primaries_certify_every_round_with_quorum_votes() {
    let f = CommitteeFixture::with_free_ports(4, 1, 11);
    let d = dirs(4);
    let mut nodes = start_all(&f, &d, 20, 50, None).await;
    const R: Round = 30;
    // Two rounds more, so that round R is complete everywhere.
    for n in nodes.iter_mut() {
        n.reach(R + 2).await;
    }
    let quorum = f.committee.quorum_threshold();
    for n in &nodes {
        let delivered = n.delivered.lock().unwrap().clone();
        let mut by_round: BTreeMap<Round, BTreeSet<AuthorityIndex>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for c in &delivered {
            // Every certificate is valid and carries quorum stake of distinct votes.
            assert_eq!(c.verify(&f.committee), Ok(()));
            let stake: Stake = c.signer_indices().map(|a| f.committee.stake(a)).sum();
            assert!(stake >= quorum);
            // Delivered in causal order, each once.
            for p in &c.header.parents {
                assert!(c.round() == 1 || seen.contains(p), "parent before child");
            }
            assert!(seen.insert(c.digest()), "delivered twice");
            by_round.entry(c.round()).or_default().insert(c.author());
        }
        for r in 1..=R {
            let authors = by_round.get(&r).map_or(0, |a| a.len() as u64);
            assert!(
                authors >= quorum,
                "{}: round {r} has {authors} certificates",
                n.index
            );
        }
        // Each authority certified its headers round after round (a slow one may skip a
        // round by moving straight to the newest quorum, hence not every single round).
        for a in f.authorities() {
            let rounds = by_round.values().filter(|s| s.contains(&a)).count() as u64;
            assert!(rounds >= R / 2, "{a} certified only {rounds} of {R} rounds");
        }
        assert!(n.metrics.certificates_formed.get() >= R / 2);
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_primaries_keep_advancing_without_the_fourth() {
    let f = CommitteeFixture::with_free_ports(4, 1, 12);
    let d = dirs(4);
    let mut nodes = start_all(&f, &d, 20, 50, None).await;
    for n in nodes.iter_mut() {
        n.reach(3).await;
    }
    let stopped = nodes.pop().expect("four nodes");
    let index = stopped.index;
    stopped.stop().await;
    let from = nodes.iter().map(Node::current_round).max().unwrap_or(0);
    for n in nodes.iter_mut() {
        n.reach(from + 20).await;
    }
    // The newest rounds are certified without the stopped authority.
    let delivered = nodes[0].delivered.lock().unwrap().clone();
    assert!(delivered
        .iter()
        .filter(|c| c.round() > from + 5)
        .all(|c| c.author() != index));
    for n in nodes {
        n.stop().await;
    }
}

/// Counts the entries of a column.
fn stored(store: &weft_storage::Store, column: Column) -> usize {
    store
        .map::<CertificateDigest, bytes::Bytes>(column)
        .iter()
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_keeps_memory_and_disk_flat_over_a_thousand_rounds() {
    let f = CommitteeFixture::with_free_ports(4, 1, 13);
    let d = dirs(4);
    const GC_DEPTH: Round = 10;
    const LAG: Round = 2;
    let mut nodes = start_all(&f, &d, 5, GC_DEPTH, Some(LAG)).await;
    for n in nodes.iter_mut() {
        n.reach(1_000).await;
    }
    let collected = 1_000 - (GC_DEPTH + LAG) as i64;
    eventually("every primary garbage collects up to round 988", || {
        nodes.iter().all(|n| n.metrics.gc_round.get() >= collected)
    })
    .await;
    let mut stopped = Vec::new();
    for n in nodes {
        let (index, metrics, round) = (n.index, n.metrics.clone(), n.round.clone());
        stopped.push((index, metrics, round, n.stop().await.0));
    }
    // Stopped, every gauge is final: memory holds only the rounds above the GC round (plus
    // rounds in flight above the last delivered one), whatever the spread of the committee's
    // rounds, and disk those and the `RETENTION` rounds below it that peers catching up may
    // fetch. The DAG's own bound per round is proven in `dag.rs`.
    for (index, metrics, round, store) in stopped {
        let above = (*round.borrow() as i64 - metrics.gc_round.get()).max(0) as usize + 4;
        let in_memory = metrics.dag_certificates.get() as usize;
        let certificates = stored(&store, columns::CERTIFICATES);
        let headers = stored(&store, columns::HEADERS);
        assert!(
            in_memory <= 4 * above,
            "{index}: the DAG holds {in_memory} certificates for {above} rounds"
        );
        assert!(
            (4 * RETENTION as usize..=4 * (above + RETENTION as usize)).contains(&certificates),
            "{index}: {certificates} certificates on disk for {above} rounds and the retention"
        );
        assert!(
            headers <= above,
            "{index}: {headers} headers on disk for {above} rounds"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_500_rounds_behind_catches_up_by_range() {
    let f = CommitteeFixture::with_free_ports(4, 1, 14);
    let d = dirs(4);
    // No commits, so nothing is garbage collected and every round can still be fetched.
    let mut nodes = Vec::new();
    for i in 0..3u16 {
        let p = parameters(5, 1_000_000);
        nodes.push(start(&f, i, d[i as usize].path(), p, None).await);
    }
    for n in nodes.iter_mut() {
        n.reach(500).await;
    }
    let mut late = start(&f, 3, d[3].path(), parameters(5, 1_000_000), None).await;
    let target = nodes.iter().map(Node::current_round).max().unwrap_or(0);
    late.reach(target).await;
    let range = late
        .metrics
        .sync_requests
        .with_label_values(&["range"])
        .get();
    let digests = late
        .metrics
        .sync_requests
        .with_label_values(&["digests"])
        .get();
    // 3 certificates a round, 100 per range answer.
    let minimum = target * 3 / 100;
    println!("caught up {target} rounds with {range} range and {digests} digest requests");
    assert!(range >= minimum / 2, "it did use range fetches");
    assert!(
        range + digests <= 3 * minimum + 10,
        "{range} range + {digests} digest requests to catch up {target} rounds"
    );
    // It joins the DAG: its own certificates appear in the others' DAG again.
    let joined_at = late.current_round();
    late.reach(joined_at + 10).await;
    let mine = |n: &Node| {
        n.delivered
            .lock()
            .unwrap()
            .iter()
            .filter(|c: &&Certificate| c.author() == AuthorityIndex(3))
            .count()
    };
    eventually("the late primary's certificates at the others", || {
        mine(&nodes[0]) > 0
    })
    .await;
    for n in nodes {
        n.stop().await;
    }
    late.stop().await;
}
