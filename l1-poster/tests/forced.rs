//! Forced inclusion end to end against anvil: a `forceInclude` call is read by the watcher,
//! handed to the (here simulated) node, which orders it; the poster puts it on L1 within W
//! blocks of the call, and the bound metric says so.

mod common;

use alloy::primitives::Bytes;
use alloy::sol_types::SolCall;
use common::{closed, key, l1_with_inbox, stream, TIMEOUT};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use weft_l1_poster::forced::{ForcedConfig, ForcedMetrics, ForcedWatcher};
use weft_l1_poster::inbox::Inbox;
use weft_l1_poster::l1::{FeePolicy, Outgoing, Signer, L1};
use weft_l1_poster::metrics::PosterMetrics;
use weft_l1_poster::reader::batch_events;
use weft_l1_poster::PostMode;
use weft_l1_poster::{read_inbox, MemoryCommittee, Poster, PosterConfig};

#[tokio::test]
async fn a_forced_transaction_reaches_l1_within_the_window() {
    const W: u64 = 5;
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = stream(&f, PostMode::Calldata, 3_000, 61, 5, 5);
    let shared: Arc<MemoryCommittee> = Arc::new(source.clone());
    let config = PosterConfig::new(&anvil.endpoint(), inbox, dir.path().join("cursor.json"));
    let mut poster = Poster::spawn(config, key(0), shared, PosterMetrics::unregistered())
        .await
        .unwrap();
    let (tx_node, mut rx_watcher) = mpsc::channel(16);
    let forced_metrics = ForcedMetrics::unregistered();
    let watcher = ForcedWatcher::spawn(
        ForcedConfig {
            rpc: anvil.endpoint(),
            inbox,
            from_block: 0,
            next_index: 0,
            confirmations: 0,
            window_blocks: W,
            poll_interval: Duration::from_millis(100),
        },
        tx_node,
        forced_metrics.clone(),
    )
    .unwrap();

    // A user forces a transaction.
    let l1 = L1::new(&anvil.endpoint(), inbox).unwrap();
    let user = Signer::new(&l1, key(4)).await.unwrap();
    let payload = bytes::Bytes::from_static(b"forced: transfer 1 wei");
    let input = Inbox::forceIncludeCall {
        transaction: Bytes(payload.clone()),
    }
    .abi_encode();
    let tx = Outgoing {
        to: Some(inbox),
        input: input.into(),
        sidecar: None,
    };
    let fees = l1.fees(&FeePolicy::default(), false).await.unwrap();
    let gas = user.estimate(&l1, &tx, fees).await.unwrap();
    let nonce = user.nonce(&l1).await.unwrap();
    let hash = user.send(&l1, &tx, nonce, gas, fees).await.unwrap();
    let receipt = l1.wait_receipt(hash).await.unwrap().expect("mined");
    let forced_block = receipt.block_number.unwrap();

    // The node: orders what the watcher hands over and reports it ordered.
    let forced = tokio::time::timeout(TIMEOUT, rx_watcher.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((forced.index, forced.l1_block), (0, forced_block));
    assert_eq!(forced.transaction, payload);
    common::commit(&source, vec![forced.transaction.clone()]);
    let head = l1.head_block().await.unwrap();
    let delay = watcher.mark_included(forced.index, head).unwrap();
    assert!(delay <= W);

    let all = closed(&source);
    tokio::time::timeout(TIMEOUT, poster.wait_until(|s| s.inbox_next_sequence == all))
        .await
        .unwrap();
    poster.shutdown().await;
    watcher.shutdown().await;

    let (report, sub_dags) = read_inbox(&anvil.endpoint(), inbox, Some(&f.committee))
        .await
        .unwrap();
    assert_eq!(report.first_inconsistency, None);
    assert_eq!(sub_dags.last().unwrap().transactions, vec![payload]);
    let last_batch = batch_events(&l1, 0, report.block)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(
        last_batch.block <= forced_block + W,
        "forced in block {forced_block}, on L1 in block {}",
        last_batch.block
    );
    assert!(forced_metrics.max_inclusion_blocks.get() as u64 <= W);
    assert_eq!(forced_metrics.pending.get(), 0);
}
