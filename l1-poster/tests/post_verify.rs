//! End to end against anvil: what the verifier decodes from L1 is the ordered stream, exactly,
//! in calldata mode and in blob mode, with the stream arriving while the poster runs.

mod common;

use common::{extend, key, l1_with_inbox, stream};
use std::sync::Arc;
use weft_l1_poster::metrics::PosterMetrics;
use weft_l1_poster::{read_inbox, MemorySource, Position, PostMode, Poster, PosterConfig};

fn end_of(source: &MemorySource) -> Position {
    Position {
        sub_dag: source.len(),
        tx: 0,
    }
}

async fn post_and_verify(mode: PostMode, target_bytes: usize) {
    let (anvil, inbox) = l1_with_inbox(&[0], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = stream(11, 60, 30);
    let mut config = PosterConfig::new(&anvil.endpoint(), inbox, dir.path().join("cursor.json"));
    config.mode = mode;
    config.target_bytes = target_bytes;
    let metrics = PosterMetrics::unregistered();
    let shared: Arc<MemorySource> = Arc::new(source.clone());
    let mut poster = Poster::spawn(config, key(0), shared, metrics.clone())
        .await
        .unwrap();

    let first = end_of(&source);
    tokio::time::timeout(
        common::TIMEOUT,
        poster.wait_until(|s| s.next_position == first),
    )
    .await
    .expect("first part posted");
    // More arrives while the poster runs; it must wake up and post it.
    extend(&source, 12, 40, 30);
    let all = end_of(&source);
    tokio::time::timeout(
        common::TIMEOUT,
        poster.wait_until(|s| s.next_position == all),
    )
    .await
    .expect("second part posted");
    poster.shutdown().await;

    let (report, sub_dags) = read_inbox(&anvil.endpoint(), inbox).await.unwrap();
    assert_eq!(report.first_inconsistency, None);
    assert_eq!(
        sub_dags,
        source.all(),
        "L1 must hold the ordered stream exactly"
    );
    assert_eq!(report.next_position, all);
    assert!(
        report.batches >= 2,
        "target size must split the stream: {report:?}"
    );
    assert_eq!(
        report.batches,
        metrics.batches_posted.get(),
        "resubmissions {}, rejections {:?}, errors {:?}",
        metrics.resubmissions.get(),
        ["sequence", "reverted"].map(|r| metrics.rejections.with_label_values(&[r]).get()),
        ["rpc", "l1_data", "batch"].map(|r| metrics.errors.with_label_values(&[r]).get()),
    );
    let txs: usize = source.all().iter().map(|s| s.transactions.len()).sum();
    assert_eq!(report.transactions, txs as u64);
}

#[tokio::test]
async fn calldata_batches_decode_to_the_ordered_stream() {
    post_and_verify(PostMode::Calldata, 8_000).await;
}

#[tokio::test]
async fn blob_batches_decode_to_the_ordered_stream() {
    post_and_verify(PostMode::Blob { max_blobs: 1 }, 20_000).await;
}

#[tokio::test]
async fn a_poster_outside_the_allow_list_is_rejected_by_the_inbox() {
    let (anvil, inbox) = l1_with_inbox(&[0], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = stream(13, 3, 5);
    let config = PosterConfig::new(&anvil.endpoint(), inbox, dir.path().join("cursor.json"));
    let metrics = PosterMetrics::unregistered();
    let shared: Arc<MemorySource> = Arc::new(source.clone());
    let poster = Poster::spawn(config, key(3), shared, metrics.clone())
        .await
        .unwrap();
    let not_poster = metrics.rejections.with_label_values(&["not_poster"]);
    common::eventually("the inbox rejects the outsider", || {
        let n = not_poster.get();
        async move { n >= 2 }
    })
    .await;
    poster.shutdown().await;
    let (report, _) = read_inbox(&anvil.endpoint(), inbox).await.unwrap();
    assert_eq!((report.batches, report.head.next_sequence), (0, 0));
    assert_eq!(metrics.batches_posted.get(), 0);
}

#[tokio::test]
async fn the_verifier_reports_the_first_inconsistency() {
    use weft_l1_poster::batch::{encode_batch, Frame};
    let (anvil, inbox) = l1_with_inbox(&[0], &[]).await;
    let l1 = weft_l1_poster::l1::L1::new(&anvil.endpoint(), inbox).unwrap();
    let signer = weft_l1_poster::l1::Signer::new(&l1, key(0)).await.unwrap();
    let frame = |sub_dag| Frame {
        sub_dag,
        timestamp: 0,
        total: 1,
        first: 0,
        transactions: vec![bytes::Bytes::from_static(b"tx")],
    };
    common::submit(&l1, &signer, 0, &encode_batch(&[frame(0), frame(1)]))
        .await
        .unwrap();
    // Skips sub-DAG 2: the hash chain is fine, the positions are not.
    common::submit(&l1, &signer, 1, &encode_batch(&[frame(3)]))
        .await
        .unwrap();
    common::submit(&l1, &signer, 2, b"not a batch")
        .await
        .unwrap();
    let report = weft_l1_poster::verify(&anvil.endpoint(), inbox)
        .await
        .unwrap();
    assert_eq!(
        (report.batches, report.transactions, report.sub_dags),
        (1, 2, 2)
    );
    let inconsistency = report.first_inconsistency.clone().expect("a gap");
    assert_eq!(inconsistency.sequence, 1);
    assert!(
        inconsistency.reason.contains("do not continue"),
        "{inconsistency:?}"
    );
    assert!(report.to_string().contains("INCONSISTENT at batch 1"));
}
