//! End to end against anvil: what the verifier decodes from L1 is the ordered stream, exactly,
//! in calldata mode and in blob mode, every batch certified by the committee the inbox was
//! deployed for, with the stream arriving while the poster runs.

mod common;

use common::{closed, closed_stream, extend, forge, key, l1_with_inbox, stream};
use std::sync::Arc;
use weft_l1_poster::batch::{encode_batch, Frame};
use weft_l1_poster::metrics::PosterMetrics;
use weft_l1_poster::{read_inbox, MemoryCommittee, PostMode, Poster, PosterConfig};

async fn post_and_verify(mode: PostMode, target_bytes: usize) {
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = stream(&f, mode, target_bytes, 11, 60, 30);
    let mut config = PosterConfig::new(&anvil.endpoint(), inbox, dir.path().join("cursor.json"));
    config.mode = mode;
    let metrics = PosterMetrics::unregistered();
    let shared: Arc<MemoryCommittee> = Arc::new(source.clone());
    let mut poster = Poster::spawn(config, key(0), shared, metrics.clone())
        .await
        .unwrap();

    let first = closed(&source);
    tokio::time::timeout(
        common::TIMEOUT,
        poster.wait_until(|s| s.inbox_next_sequence == first),
    )
    .await
    .expect("first part posted");
    // More arrives while the poster runs; it must wake up and post it.
    extend(&source, 12, 40, 30);
    let all = closed(&source);
    tokio::time::timeout(
        common::TIMEOUT,
        poster.wait_until(|s| s.inbox_next_sequence == all),
    )
    .await
    .expect("second part posted");
    poster.shutdown().await;

    let (report, sub_dags) = read_inbox(&anvil.endpoint(), inbox, Some(&f.committee))
        .await
        .unwrap();
    assert_eq!(report.first_inconsistency, None);
    assert_eq!(
        sub_dags,
        closed_stream(&source),
        "L1 must hold the ordered stream exactly"
    );
    assert!(
        report.batches >= 2,
        "target size must split the stream: {report:?}"
    );
    assert_eq!(report.attested, report.batches, "every certificate checked");
    assert_eq!(
        report.batches,
        metrics.batches_posted.get(),
        "resubmissions {}, rejections {:?}, errors {:?}",
        metrics.resubmissions.get(),
        ["sequence", "reverted"].map(|r| metrics.rejections.with_label_values(&[r]).get()),
        ["rpc", "l1_data", "batch"].map(|r| metrics.errors.with_label_values(&[r]).get()),
    );
    let txs: usize = sub_dags.iter().map(|s| s.transactions.len()).sum();
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

/// Batches only a Byzantine quorum could certify (the whole committee signs them here), so
/// that the inbox takes them: the verifier must still find where the stream breaks.
#[tokio::test]
async fn the_verifier_reports_the_first_inconsistency() {
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let l1 = weft_l1_poster::l1::L1::new(&anvil.endpoint(), inbox).unwrap();
    let signer = weft_l1_poster::l1::Signer::new(&l1, key(0)).await.unwrap();
    let frame = |sub_dag| Frame {
        sub_dag,
        timestamp: 0,
        total: 1,
        first: 0,
        transactions: vec![bytes::Bytes::from_static(b"tx")],
    };
    // Sub-DAG 2 is skipped: the hash chain is fine, the positions are not.
    let batches = [
        encode_batch(&[frame(0), frame(1)]),
        encode_batch(&[frame(3)]),
        b"not a batch".to_vec(),
    ];
    for (sequence, data) in batches.iter().enumerate() {
        let hash = alloy::primitives::keccak256(data);
        let (attested, signatures) = forge(&f, 4, sequence as u64, sequence as u64, hash);
        common::submit(&l1, &signer, sequence as u64, data, attested, signatures)
            .await
            .unwrap();
    }
    let report = weft_l1_poster::verify(&anvil.endpoint(), inbox, Some(&f.committee))
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

    // Against another committee, the inbox itself is the inconsistency.
    let other = weft_test_utils::CommitteeFixture::new(4, 1, 8);
    let report = weft_l1_poster::verify(&anvil.endpoint(), inbox, Some(&other.committee))
        .await
        .unwrap();
    let inconsistency = report.first_inconsistency.expect("another committee");
    assert!(
        inconsistency.reason.contains("bound to committee"),
        "{inconsistency:?}"
    );
}
