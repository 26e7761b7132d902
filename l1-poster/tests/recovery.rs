//! The poster under failures, against anvil: killed at arbitrary points and restarted, a reorg
//! that removes posted batches, a transaction stuck under a fee spike. In every case the
//! verifier must read exactly the ordered stream back: every batch once, in order, no gap.

mod common;

use alloy::primitives::U256;
use alloy::providers::Provider;
use common::{closed, closed_stream, key, l1_with_inbox, stream, TIMEOUT};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::Arc;
use weft_l1_poster::l1::L1;
use weft_l1_poster::metrics::PosterMetrics;
use weft_l1_poster::PostMode;
use weft_l1_poster::{
    read_inbox, MemoryCommittee, Poster, PosterConfig, PosterHandle, PosterStatus,
};

async fn wait(poster: &mut PosterHandle, pred: impl Fn(&PosterStatus) -> bool) -> PosterStatus {
    tokio::time::timeout(TIMEOUT, poster.wait_until(pred))
        .await
        .expect("poster progress")
}

async fn assert_l1_holds(
    endpoint: &str,
    inbox: alloy::primitives::Address,
    source: &MemoryCommittee,
    committee: &weft_types::Committee,
) {
    let (report, sub_dags) = read_inbox(endpoint, inbox, Some(committee)).await.unwrap();
    assert_eq!(report.first_inconsistency, None, "{report:?}");
    assert_eq!(
        sub_dags,
        closed_stream(source),
        "L1 must hold the ordered stream exactly"
    );
    assert_eq!(report.head.next_sequence, report.batches);
}

/// Kills the poster (task abort: it stops at whatever await it is in) at seeded points while
/// it posts, restarts it on the same cursor file, and checks L1 ends up exact. With
/// `confirmations = 2` the cursor trails L1, so restarts must read batches back from L1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_poster_leaves_no_gap_or_duplicate() {
    let seed = 21;
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = stream(&f, PostMode::Calldata, 3_000, seed, 150, 30);
    let config = PosterConfig {
        ..PosterConfig::new(&anvil.endpoint(), inbox, dir.path().join("cursor.json"))
    };
    let shared: Arc<MemoryCommittee> = Arc::new(source.clone());
    let all = closed(&source);
    let mut restarts = 0;
    loop {
        let metrics = PosterMetrics::unregistered();
        let mut poster = Poster::spawn(config.clone(), key(0), shared.clone(), metrics)
            .await
            .unwrap();
        let now = *poster.rx_status.borrow();
        if restarts == 8 {
            wait(&mut poster, |s| s.inbox_next_sequence == all).await;
            poster.shutdown().await;
            break;
        }
        // Either right away (mid-start-up) or after a few more batches.
        if rng.gen_bool(0.75) {
            let target = now.inbox_next_sequence + rng.gen_range(1..4);
            let seen = wait(&mut poster, |s| {
                s.inbox_next_sequence >= target || s.inbox_next_sequence == all
            })
            .await;
            assert!(
                seen.inbox_next_sequence != all,
                "stream too short for the kill points"
            );
        }
        poster.kill().await;
        restarts += 1;
    }
    assert_l1_holds(&anvil.endpoint(), inbox, &source, &f.committee).await;
    let cursor = weft_l1_poster::cursor::load(&config.cursor_path).unwrap();
    assert!(cursor.next_sequence > 0, "the cursor must have moved");
}

/// Posts, then has anvil replace the last blocks (`anvil_reorg`) so that posted batches vanish;
/// the running poster must notice the inbox head went back and post them again, in order.
#[tokio::test]
async fn batches_removed_by_a_reorg_are_posted_again() {
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = stream(&f, PostMode::Calldata, 3_000, 31, 40, 30);
    let config = PosterConfig {
        ..PosterConfig::new(&anvil.endpoint(), inbox, dir.path().join("cursor.json"))
    };
    let metrics = PosterMetrics::unregistered();
    let shared: Arc<MemoryCommittee> = Arc::new(source.clone());
    let mut poster = Poster::spawn(config, key(0), shared, metrics.clone())
        .await
        .unwrap();
    let all = closed(&source);
    let before = wait(&mut poster, |s| s.inbox_next_sequence == all).await;
    assert!(before.inbox_next_sequence >= 4);

    let l1 = L1::new(&anvil.endpoint(), inbox).unwrap();
    let _: serde_json::Value = l1
        .provider
        .raw_request("anvil_reorg".into(), (3u64, Vec::<()>::new()))
        .await
        .unwrap();
    let after = l1.inbox_head(None).await.unwrap();
    assert!(
        after.next_sequence < before.inbox_next_sequence,
        "the reorg must remove batches"
    );

    // Posting goes on from the reorged head; wait until every batch is back.
    common::eventually("batches re-posted", || {
        let l1 = l1.clone();
        let want = before.inbox_next_sequence;
        async move {
            let head = l1.inbox_head(None).await.unwrap();
            head.next_sequence >= want
        }
    })
    .await;
    wait(&mut poster, |s| {
        s.inbox_next_sequence == all && s.inbox_next_sequence >= before.inbox_next_sequence
    })
    .await;
    poster.shutdown().await;
    assert!(metrics.reorgs.get() >= 1);
    assert_l1_holds(&anvil.endpoint(), inbox, &source, &f.committee).await;
}

/// With mining manual, the next block's base fee jumps above what the poster offered: its
/// transaction cannot be included. After `resubmit_after_blocks` blocks it must replace it
/// with higher fees (same nonce), and the batch lands once.
#[tokio::test]
async fn a_stuck_transaction_is_replaced_with_higher_fees() {
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let l1 = L1::new(&anvil.endpoint(), inbox).unwrap();
    let _: serde_json::Value = l1
        .provider
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = stream(&f, PostMode::Calldata, 3_000, 41, 5, 10);
    let config = PosterConfig {
        resubmit_after_blocks: 2,
        ..PosterConfig::new(&anvil.endpoint(), inbox, dir.path().join("cursor.json"))
    };
    let poster_address = key(0).address();
    let metrics = PosterMetrics::unregistered();
    let shared: Arc<MemoryCommittee> = Arc::new(source.clone());
    let mut poster = Poster::spawn(config, key(0), shared, metrics.clone())
        .await
        .unwrap();
    common::eventually("batch transaction pending", || {
        let l1 = l1.clone();
        async move {
            let pending = l1
                .provider
                .get_transaction_count(poster_address)
                .pending()
                .await
                .unwrap();
            pending > 0
        }
    })
    .await;
    let _: serde_json::Value = l1
        .provider
        .raw_request(
            "anvil_setNextBlockBaseFeePerGas".into(),
            (U256::from(50_000_000_000u64),),
        )
        .await
        .unwrap();
    let mut mined = 0;
    while l1.inbox_head(None).await.unwrap().next_sequence == 0 {
        assert!(mined < 20, "the batch never landed");
        l1.anvil_mine(1).await.unwrap();
        mined += 1;
        let block = l1.head_block().await.unwrap();
        wait(&mut poster, |s| s.l1_block >= block).await;
    }
    assert!(
        metrics.resubmissions.get() >= 1,
        "landed without a replacement"
    );
    let all = closed(&source);
    wait(&mut poster, |s| s.inbox_next_sequence == all).await;
    poster.shutdown().await;
    assert_l1_holds(&anvil.endpoint(), inbox, &source, &f.committee).await;
}
