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
