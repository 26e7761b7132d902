//! Rotation against anvil: with the designated poster of odd batches down, the other poster
//! takes them over, but only after the takeover delay (counted in L1 blocks, mined here).

mod common;

use common::{closed, closed_stream, key, l1_with_inbox, stream, TIMEOUT};
use std::sync::Arc;
use weft_l1_poster::l1::L1;
use weft_l1_poster::metrics::PosterMetrics;
use weft_l1_poster::reader::batch_events;
use weft_l1_poster::rotation::Rotation;
use weft_l1_poster::PostMode;
use weft_l1_poster::{read_inbox, MemoryCommittee, Poster, PosterConfig};

#[tokio::test]
async fn the_next_poster_takes_over_after_the_timeout() {
    const TAKEOVER: u64 = 3;
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = stream(&f, PostMode::Calldata, 3_000, 51, 30, 20);
    let config = PosterConfig {
        rotation: Rotation {
            me: 0,
            committee_size: 2,
            takeover_blocks: TAKEOVER,
        },
        ..PosterConfig::new(&anvil.endpoint(), inbox, dir.path().join("cursor.json"))
    };
    let shared: Arc<MemoryCommittee> = Arc::new(source.clone());
    let mut poster = Poster::spawn(config, key(0), shared, PosterMetrics::unregistered())
        .await
        .unwrap();
    let l1 = L1::new(&anvil.endpoint(), inbox).unwrap();
    let all = closed(&source);
    // L1 time passes only when blocks are mined: one block each time the poster has seen the
    // last one, until everything is posted.
    let mut mined = 0;
    loop {
        let block = l1.head_block().await.unwrap();
        let status = tokio::time::timeout(TIMEOUT, poster.wait_until(|s| s.l1_block >= block))
            .await
            .expect("poster follows L1");
        if status.inbox_next_sequence == all {
            break;
        }
        assert!(mined < 500, "posting did not finish");
        l1.anvil_mine(1).await.unwrap();
        mined += 1;
    }
    poster.shutdown().await;

    let (report, sub_dags) = read_inbox(&anvil.endpoint(), inbox, Some(&f.committee))
        .await
        .unwrap();
    assert_eq!(report.first_inconsistency, None);
    assert_eq!(sub_dags, closed_stream(&source));
    assert!(report.batches >= 4, "{report:?}");
    let events = batch_events(&l1, 0, report.block).await.unwrap();
    for pair in events.windows(2) {
        let (prev, ev) = (&pair[0], &pair[1]);
        assert_eq!(ev.poster, key(0).address(), "only poster 0 is up");
        if ev.sequence % 2 == 1 {
            assert!(
                ev.block >= prev.block + TAKEOVER,
                "batch {} taken over before the timeout ({} -> {})",
                ev.sequence,
                prev.block,
                ev.block
            );
        }
    }
}

/// Two posters that both always post race for every sequence number: the inbox takes one
/// submission per number, the loser's is rejected (at estimate or on chain) and it moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_posters_leave_each_batch_once() {
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = stream(&f, PostMode::Calldata, 3_000, 71, 80, 20);
    let shared: Arc<MemoryCommittee> = Arc::new(source.clone());
    let all = closed(&source);
    let mut posters = Vec::new();
    let mut metrics = Vec::new();
    for i in 0..2 {
        let config = PosterConfig {
            ..PosterConfig::new(
                &anvil.endpoint(),
                inbox,
                dir.path().join(format!("cursor-{i}")),
            )
        };
        let m = PosterMetrics::unregistered();
        posters.push(
            Poster::spawn(config, key(i), shared.clone(), m.clone())
                .await
                .unwrap(),
        );
        metrics.push(m);
    }
    for p in posters.iter_mut() {
        tokio::time::timeout(TIMEOUT, p.wait_until(|s| s.inbox_next_sequence == all))
            .await
            .unwrap();
    }
    for p in posters {
        p.shutdown().await;
    }
    let (report, sub_dags) = read_inbox(&anvil.endpoint(), inbox, Some(&f.committee))
        .await
        .unwrap();
    assert_eq!(report.first_inconsistency, None);
    assert_eq!(sub_dags, closed_stream(&source));
    // A receipt the node indexes late can leave an included batch uncounted, never the reverse.
    let posted: u64 = metrics.iter().map(|m| m.batches_posted.get()).sum();
    assert!(
        posted <= report.batches,
        "{posted} counted for {} batches",
        report.batches
    );
}
