//! Workers of a 4-authority committee over real loopback TLS, each primary replaced by a server
//! that records the reports it receives.

mod common;

use bytes::Bytes;
use common::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_network::NetworkError;
use weft_storage::Durability;
use weft_types::codec::decode_message;
use weft_types::{Batch, BatchDigest, PrimaryToWorker, WorkerMessage, WorkerToPrimary};
use weft_worker::{MAX_BATCHES_AWAITING_QUORUM, MAX_DELIVERIES_PER_PEER};

fn transactions(rng: &mut StdRng, count: usize, size: usize) -> Vec<Bytes> {
    (0..count)
        .map(|_| {
            let mut tx = vec![1u8; size];
            rng.fill(&mut tx[1..]);
            Bytes::from(tx)
        })
        .collect()
}

fn our_batch(report: WorkerToPrimary) -> BatchDigest {
    match report {
        WorkerToPrimary::OurBatch { digest, worker_id } => {
            assert_eq!(worker_id, 0);
            digest
        }
        other => panic!("expected OurBatch, got {other:?}"),
    }
}

fn others_batch(report: WorkerToPrimary) -> BatchDigest {
    match report {
        WorkerToPrimary::OthersBatch { digest, worker_id } => {
            assert_eq!(worker_id, 0);
            digest
        }
        other => panic!("expected OthersBatch, got {other:?}"),
    }
}

/// The transactions of a batch in worker `i`'s store, once it is there: a worker's own copy
/// may land after the `OurBatch` report, since the peers' acknowledgements alone can make the
/// quorum.
async fn stored_transactions(cluster: &Cluster, i: usize, digest: &BatchDigest) -> Vec<Bytes> {
    let stored = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        cluster.batches(i).notify_read(*digest),
    )
    .await
    .expect("batch stored")
    .unwrap();
    assert_eq!(BatchDigest::of_encoded(&stored), *digest);
    decode_message::<Batch>(stored, usize::MAX)
        .unwrap()
        .transactions
}

/// Proves: transactions a client sends to authority 0's worker are sealed (by size) into one
/// batch, reported `OurBatch` to primary 0 and `OthersBatch` to primaries 1..3, and stored by
/// every worker as a batch decoding to exactly the transactions sent, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_transactions_become_a_batch_stored_everywhere() {
    let mut rng = StdRng::seed_from_u64(1);
    // 10 transactions of 100 B take the encoding from 5 to 1045 bytes: the 10th seals it.
    let mut cluster = Cluster::new(11, parameters(1_000, 3_600_000)).await;
    cluster.start_all().await;
    let txs = transactions(&mut rng, 10, 100);
    let _client = send_transactions(cluster.transaction_address(0), &txs).await;

    let digest = our_batch(cluster.next_report(0).await);
    for i in 1..4 {
        assert_eq!(others_batch(cluster.next_report(i).await), digest);
    }
    for i in 0..4 {
        assert_eq!(
            stored_transactions(&cluster, i, &digest).await,
            txs,
            "worker {i}"
        );
    }
    let metrics = cluster.worker(0).metrics();
    assert_eq!(metrics.batches_sealed.with_label_values(&["size"]).get(), 1);
    assert_eq!(
        metrics.batches_sealed.with_label_values(&["timeout"]).get(),
        0
    );
    assert_eq!(metrics.transactions_received.get(), 10);
    assert_eq!(cluster.worker(1).metrics().batches_received.get(), 1);
}

/// Proves: many batches are disseminated at once and none is lost: 200 transactions make 20
/// batches, each reported `OurBatch` to primary 0 and `OthersBatch` to the others, and the
/// stored batches hold every transaction exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_batches_are_in_flight_and_none_is_lost() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut cluster = Cluster::new(19, parameters(1_000, 3_600_000)).await;
    cluster.start_all().await;
    let txs = transactions(&mut rng, 200, 100);
    let _client = send_transactions(cluster.transaction_address(1), &txs).await;

    let mut ours = Vec::new();
    for _ in 0..20 {
        ours.push(our_batch(cluster.next_report(1).await));
    }
    let mut received: Vec<Bytes> = Vec::new();
    for digest in &ours {
        received.extend(stored_transactions(&cluster, 1, digest).await);
    }
    // Quorums may complete out of order, so the reports need not follow the sealing order.
    received.sort();
    let mut sent = txs.clone();
    sent.sort();
    assert_eq!(received, sent);
    for i in [0, 2, 3] {
        let mut others: Vec<BatchDigest> = Vec::new();
        for _ in 0..20 {
            others.push(others_batch(cluster.next_report(i).await));
        }
        others.sort();
        let mut expected = ours.clone();
        expected.sort();
        assert_eq!(others, expected, "primary {i}");
    }
    assert_eq!(
        cluster
            .worker(1)
            .metrics()
            .batches_sealed
            .with_label_values(&["size"])
            .get(),
        20
    );
}

/// Proves: a batch below `batch_size` is sealed when `max_batch_delay` expires, and is then
/// disseminated like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_batch_is_sealed_after_the_delay() {
    let mut cluster = Cluster::new(12, parameters(500_000, 50)).await;
    cluster.start_all().await;
    // One transaction, so that no timer tick can split it from another.
    let tx = Bytes::from_static(b"\x01lonely transaction");
    let _client =
        send_transactions(cluster.transaction_address(2), std::slice::from_ref(&tx)).await;

    let digest = our_batch(cluster.next_report(2).await);
    assert_eq!(stored_transactions(&cluster, 2, &digest).await, vec![tx]);
    let metrics = cluster.worker(2).metrics();
    assert_eq!(
        metrics.batches_sealed.with_label_values(&["timeout"]).get(),
        1
    );
    assert_eq!(metrics.batches_sealed.with_label_values(&["size"]).get(), 0);
    assert_eq!(others_batch(cluster.next_report(0).await), digest);
}

/// Proves: a frame above `max_transaction_size`, or an empty one, closes the client's
/// connection and is counted; nothing of it reaches a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_empty_transactions_close_the_connection() {
    let mut cluster = Cluster::new(13, parameters(1_000, 3_600_000)).await;
    cluster.start_worker(0).await;
    let limit = cluster.parameters.max_transaction_size as u32;
    for (header, reason) in [(limit + 1, "too_large"), (0, "empty")] {
        let mut client = guarded(tokio::net::TcpStream::connect(
            cluster.transaction_address(0),
        ))
        .await
        .unwrap();
        client.write_all(&header.to_be_bytes()).await.unwrap();
        // The worker closes the connection: the read ends (EOF or reset), it never hangs.
        let mut buf = [0u8; 16];
        let read = guarded(client.read(&mut buf)).await;
        assert!(matches!(read, Ok(0) | Err(_)), "{reason}: {read:?}");
        let metrics = cluster.worker(0).metrics();
        assert_eq!(
            metrics
                .transactions_rejected
                .with_label_values(&[reason])
                .get(),
            1
        );
    }
    assert_eq!(cluster.worker(0).metrics().transactions_received.get(), 0);
}

/// Proves: a peer's batch that is not a well-formed `Batch` within the limits is refused with
/// an error response, counted by reason, not stored and not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_peer_batches_are_rejected_and_not_stored() {
    let mut cluster = Cluster::new(14, parameters(1_000, 3_600_000)).await;
    cluster.start_worker(0).await;
    let limit = cluster.parameters.max_transaction_size;
    let (_, mut truncated) = Batch::new(vec![Bytes::from(vec![1u8; 50])]).seal();
    truncated.truncate(truncated.len() - 1);
    let (_, oversized) = Batch::new(vec![Bytes::from(vec![1u8; limit + 1])]).seal();
    for (batch, reason) in [
        (truncated, "malformed_batch"),
        (Bytes::from_static(b"\x09garbage"), "malformed_batch"),
        (oversized, "transaction_too_large"),
    ] {
        let digest = BatchDigest::of_encoded(&batch);
        let response = cluster.request(1, 0, &WorkerMessage::Batch(batch)).await;
        assert!(matches!(response, Err(NetworkError::Remote(_))), "{reason}");
        assert!(!cluster.batches(0).contains(&digest).unwrap(), "{reason}");
    }
    let rejected = &cluster.worker(0).metrics().requests_rejected;
    assert_eq!(rejected.with_label_values(&["malformed_batch"]).get(), 2);
    assert_eq!(
        rejected.with_label_values(&["transaction_too_large"]).get(),
        1
    );
    assert_eq!(cluster.worker(0).metrics().batches_received.get(), 0);
    assert!(cluster.no_report(0));
}

/// Proves: with authority 3's worker down, the other three (a quorum) still get authority 0's
/// batch reported `OurBatch`; once worker 3 is up, its primary's `Synchronize` makes it fetch
/// the batch from worker 0, check it, store it and report it `OthersBatch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_without_one_worker_then_the_synchronizer_fetches_the_batch() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut cluster = Cluster::new(15, parameters(1_000, 3_600_000)).await;
    // No retry within the test: the one request to the target must do it.
    cluster.parameters.sync_retry_delay_ms = 3_600_000;
    for i in 0..3 {
        cluster.start_worker(i).await;
    }
    let txs = transactions(&mut rng, 10, 100);
    let _client = send_transactions(cluster.transaction_address(0), &txs).await;
    let digest = our_batch(cluster.next_report(0).await);
    assert!(!cluster.batches(3).contains(&digest).unwrap());

    // Restart worker 0 so that no broadcast delivery to worker 3 is still pending: the batch
    // can only reach worker 3 through its synchronizer.
    cluster.stop_worker(0).await;
    cluster.start_worker(0).await;
    cluster.start_worker(3).await;
    let sync = PrimaryToWorker::Synchronize {
        digests: vec![digest, digest],
        target: a(0),
    };
    // Acknowledged at once, before the batch is fetched.
    assert_eq!(cluster.request(3, 3, &sync).await.unwrap(), Bytes::new());
    assert_eq!(others_batch(cluster.next_report(3).await), digest);
    assert_eq!(stored_transactions(&cluster, 3, &digest).await, txs);
    let metrics = cluster.worker(3).metrics();
    assert_eq!(metrics.sync_batches_fetched.get(), 1);
    assert_eq!(metrics.sync_requests_sent.get(), 1);
    assert_eq!(metrics.batches_received.get(), 0);
    assert_eq!(cluster.worker(0).metrics().batch_requests_served.get(), 1);

    // A batch already stored is reported at once, without a request.
    assert_eq!(cluster.request(3, 3, &sync).await.unwrap(), Bytes::new());
    assert_eq!(others_batch(cluster.next_report(3).await), digest);
    assert_eq!(cluster.worker(3).metrics().sync_requests_sent.get(), 1);
}

/// Proves: a dead peer does not hold dissemination up and costs bounded memory: with worker 3
/// down, 100 batches all reach a quorum, while at most `MAX_DELIVERIES_PER_PEER` deliveries to
/// worker 3 are outstanding (the others skipped it once they had their quorum).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_peer_holds_a_bounded_number_of_deliveries() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut cluster = Cluster::new(20, parameters(1_000, 3_600_000)).await;
    for i in 0..3 {
        cluster.start_worker(i).await;
    }
    let batches = 100;
    assert!(batches > MAX_DELIVERIES_PER_PEER + MAX_BATCHES_AWAITING_QUORUM);
    let txs = transactions(&mut rng, 10 * batches, 100);
    let _client = send_transactions(cluster.transaction_address(0), &txs).await;
    for _ in 0..batches {
        our_batch(cluster.next_report(0).await);
    }
    // Every quorum needed workers 1 and 2, so all their deliveries were answered: what is
    // left is worker 3's share.
    let metrics = cluster.worker(0).metrics();
    assert_eq!(
        metrics.deliveries_in_flight.get(),
        MAX_DELIVERIES_PER_PEER as i64
    );
    assert_eq!(metrics.batches_awaiting_quorum.get(), 0);
}

/// Proves: when the target of a `Synchronize` is down, the worker asks other authorities
/// after `sync_retry_delay` and gets the batch from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_synchronizer_retries_other_authorities_when_the_target_is_down() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut cluster = Cluster::new(16, parameters(1_000, 3_600_000)).await;
    cluster.parameters.sync_retry_delay_ms = 200;
    cluster.parameters.sync_retry_nodes = 1;
    for i in 0..3 {
        cluster.start_worker(i).await;
    }
    let txs = transactions(&mut rng, 10, 100);
    let _client = send_transactions(cluster.transaction_address(0), &txs).await;
    let digest = our_batch(cluster.next_report(0).await);
    for i in 1..3 {
        assert_eq!(others_batch(cluster.next_report(i).await), digest);
    }
    cluster.stop_worker(0).await;
    cluster.start_worker(3).await;
    let sync = PrimaryToWorker::Synchronize {
        digests: vec![digest],
        target: a(0),
    };
    cluster.request(3, 3, &sync).await.unwrap();
    assert_eq!(others_batch(cluster.next_report(3).await), digest);
    assert_eq!(stored_transactions(&cluster, 3, &digest).await, txs);
    let metrics = cluster.worker(3).metrics();
    assert_eq!(metrics.sync_batches_fetched.get(), 1);
    assert!(
        metrics.sync_requests_sent.get() >= 2,
        "asked the target, then another"
    );
}

/// Proves: `DeleteBatches` from the own primary removes exactly the named batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_batches_removes_them_from_the_store() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut cluster = Cluster::new(17, parameters(1_000, 3_600_000)).await;
    cluster.start_worker(1).await;
    let digests: Vec<BatchDigest> = (0..3)
        .map(|_| {
            let (digest, sealed) = Batch::new(transactions(&mut rng, 3, 20)).seal();
            cluster
                .batches(1)
                .insert(&digest, &sealed, Durability::Buffered)
                .unwrap();
            digest
        })
        .collect();
    let delete = PrimaryToWorker::DeleteBatches {
        digests: digests[..2].to_vec(),
    };
    assert_eq!(cluster.request(1, 1, &delete).await.unwrap(), Bytes::new());
    let batches = cluster.batches(1);
    assert!(!batches.contains(&digests[0]).unwrap());
    assert!(!batches.contains(&digests[1]).unwrap());
    assert!(batches.contains(&digests[2]).unwrap());
    assert_eq!(cluster.worker(1).metrics().batches_deleted.get(), 2);
}

/// Proves: a `PrimaryToWorker` message from another authority is refused and counted, and
/// has no effect; the same request from the own primary is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_messages_from_other_authorities_are_refused() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut cluster = Cluster::new(18, parameters(1_000, 3_600_000)).await;
    cluster.start_worker(0).await;
    let (digest, sealed) = Batch::new(transactions(&mut rng, 2, 20)).seal();
    cluster
        .batches(0)
        .insert(&digest, &sealed, Durability::Buffered)
        .unwrap();
    let delete = PrimaryToWorker::DeleteBatches {
        digests: vec![digest],
    };
    let refused = cluster.request(2, 0, &delete).await;
    assert!(matches!(refused, Err(NetworkError::Remote(_))));
    let sync = PrimaryToWorker::Synchronize {
        digests: vec![digest],
        target: a(1),
    };
    assert!(matches!(
        cluster.request(1, 0, &sync).await,
        Err(NetworkError::Remote(_))
    ));
    let metrics = cluster.worker(0).metrics();
    assert_eq!(
        metrics
            .requests_rejected
            .with_label_values(&["not_own_primary"])
            .get(),
        2
    );
    assert!(cluster.batches(0).contains(&digest).unwrap());
    assert!(
        cluster.no_report(0),
        "the refused Synchronize reported nothing"
    );

    // Peers may read batches, though.
    let response = cluster
        .request(2, 0, &WorkerMessage::BatchRequest(vec![digest]))
        .await
        .unwrap();
    let response: weft_types::BatchResponse = decode_message(response, usize::MAX).unwrap();
    assert_eq!(response.batches, vec![sealed]);
    assert_eq!(cluster.request(0, 0, &delete).await.unwrap(), Bytes::new());
    assert!(!cluster.batches(0).contains(&digest).unwrap());
}

/// Proves: an acknowledged submission resolves only once the own primary answered the
/// `OurBatch` report of the batch holding it (after a quorum stored that batch), to that
/// batch's digest; an error answer fails it instead, and so does a worker that stops first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_wait_for_the_primary_answer() {
    use futures::FutureExt;
    use weft_worker::SubmitError;

    let mut rng = StdRng::seed_from_u64(7);
    // 10 transactions of 100 B seal one batch by size; the timer never fires.
    let mut cluster = Cluster::new_gated(29, parameters(1_000, 3_600_000)).await;
    cluster.start_all().await;
    let submitter = cluster.worker(0).submitter();
    let submit = |rng: &mut StdRng| {
        transactions(rng, 10, 100)
            .into_iter()
            .map(|tx| submitter.try_submit(tx).expect("room in the channel"))
            .collect::<Vec<_>>()
    };

    let mut acks = submit(&mut rng);
    let digest = our_batch(cluster.next_report(0).await);
    // The primary has the report but holds its answer: nothing is acknowledged yet. (The
    // report reached the primary after the quorum, and the answer cannot have left.)
    for ack in &mut acks {
        assert!(
            ack.now_or_never().is_none(),
            "acknowledged before the answer"
        );
    }
    cluster.answer(0, 1);
    for ack in acks {
        assert_eq!(guarded(ack).await, Ok(digest));
    }
    let stored = (0..4)
        .filter(|i| cluster.batches(*i).contains(&digest).unwrap())
        .count();
    assert!(stored >= 3, "a quorum stored the batch, got {stored}");

    // A refused report fails its acknowledgements: no false acknowledgement.
    cluster.refuse(0);
    let acks = submit(&mut rng);
    our_batch(cluster.next_report(0).await);
    cluster.answer(0, 1);
    for ack in acks {
        assert_eq!(guarded(ack).await, Err(SubmitError::PrimaryRefused));
    }

    // A worker that stops before the answer fails them too, and refuses new submissions.
    let acks = submit(&mut rng);
    our_batch(cluster.next_report(0).await);
    cluster.stop_worker(0).await;
    for ack in acks {
        assert_eq!(guarded(ack).await, Err(SubmitError::Stopped));
    }
    assert_eq!(
        submitter
            .try_submit(Bytes::from_static(b"late"))
            .unwrap_err(),
        SubmitError::Stopped
    );
}

/// A client socket bound to `source` (any 127/8 address on loopback).
async fn client_from(source: [u8; 4], address: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .unwrap();
    guarded(socket.connect(address)).await.unwrap()
}

/// Whether the worker closed `client` (EOF or reset); never hangs past the guard.
async fn closed_by_worker(client: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(guarded(client.read(&mut buf)).await, Ok(0) | Err(_))
}

/// Proves: the client port gives one source at most `max_connections_per_source`; the next
/// from that source is closed and counted while another source is still served (its
/// transactions make a batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_holds_at_most_its_share_of_client_connections() {
    let mut rng = StdRng::seed_from_u64(21);
    let mut p = parameters(1_000, 3_600_000);
    p.client_port.max_connections_per_source = 2;
    let mut cluster = Cluster::new(21, p).await;
    cluster.start_all().await;
    let address = cluster.transaction_address(0);
    let _held = [
        client_from([127, 0, 0, 5], address).await,
        client_from([127, 0, 0, 5], address).await,
    ];
    let mut third = client_from([127, 0, 0, 5], address).await;
    assert!(closed_by_worker(&mut third).await);
    let rejected = &cluster.worker(0).metrics().transactions_rejected;
    assert_eq!(rejected.with_label_values(&["source_connections"]).get(), 1);
    let mut other = client_from([127, 0, 0, 6], address).await;
    let txs = transactions(&mut rng, 10, 100);
    other.write_all(&frame(&txs)).await.unwrap();
    let digest = our_batch(cluster.next_report(0).await);
    assert_eq!(stored_transactions(&cluster, 0, &digest).await, txs);
}

/// Proves: a client that sends nothing is closed as `idle`, and one that leaves a transaction
/// half-sent is closed as `slow_frame`: neither holds a connection for ever. (Which one is
/// decided by what the worker has read, not by a race: the silent client has sent no byte.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_clients_are_closed_with_their_reason() {
    let mut p = parameters(1_000, 3_600_000);
    p.client_port.frame_timeout_ms = 100;
    p.client_port.idle_timeout_ms = 300;
    let mut cluster = Cluster::new(22, p).await;
    cluster.start_worker(0).await;
    let address = cluster.transaction_address(0);
    let mut silent = client_from([127, 0, 0, 7], address).await;
    let mut half = client_from([127, 0, 0, 8], address).await;
    // A 100-byte transaction of which 11 bytes are sent.
    half.write_all(&frame(&[Bytes::from(vec![9u8; 100])])[..15])
        .await
        .unwrap();
    assert!(closed_by_worker(&mut half).await);
    assert!(closed_by_worker(&mut silent).await);
    let rejected = &cluster.worker(0).metrics().transactions_rejected;
    assert_eq!(rejected.with_label_values(&["slow_frame"]).get(), 1);
    assert_eq!(rejected.with_label_values(&["idle"]).get(), 1);
    assert_eq!(cluster.worker(0).metrics().transactions_received.get(), 0);
}

/// Proves: a peer's broadcast above the largest batch a worker seals (`batch_size` plus one
/// transaction) is refused and not stored, and a batch request that names a digest twice is
/// refused before anything is loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_batches_and_requests_naming_a_digest_twice_are_refused() {
    let mut cluster = Cluster::new(23, parameters(1_000, 3_600_000)).await;
    cluster.start_worker(0).await;
    let limit = weft_worker::max_sealed_batch(1_000, cluster.parameters.max_transaction_size);
    // Valid transactions, each within the limit, but too many of them for one batch.
    let txs: Vec<Bytes> = (0..3u8).map(|i| Bytes::from(vec![i; 900])).collect();
    let (digest, oversized) = Batch::new(txs).seal();
    assert!(oversized.len() > limit);
    let response = cluster
        .request(1, 0, &WorkerMessage::Batch(oversized))
        .await;
    assert!(matches!(response, Err(NetworkError::Remote(_))));
    assert!(!cluster.batches(0).contains(&digest).unwrap());
    let (fits, batch) = Batch::new(vec![Bytes::from(vec![1u8; 900])]).seal();
    cluster
        .request(1, 0, &WorkerMessage::Batch(batch))
        .await
        .unwrap();
    let twice = WorkerMessage::BatchRequest(vec![fits, digest, fits]);
    assert!(matches!(
        cluster.request(1, 0, &twice).await,
        Err(NetworkError::Remote(_))
    ));
    let rejected = &cluster.worker(0).metrics().requests_rejected;
    assert_eq!(rejected.with_label_values(&["batch_too_large"]).get(), 1);
    assert_eq!(rejected.with_label_values(&["duplicate_digest"]).get(), 1);
    assert_eq!(cluster.worker(0).metrics().batch_requests_served.get(), 0);
}

/// Proves: a peer's broadcast batches that no header named are stored only up to its quota
/// (`max_unannounced_bytes_per_peer`); past it they are refused and not stored, other peers
/// are unaffected, and the own primary naming them (`Announced`) or deleting them gives the
/// room back. Before the quota, a Byzantine peer could fill the disk while consensus stalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_stores_only_its_quota_of_batches_no_header_named() {
    // The least the parameters allow: batch_size + max_transaction_size + 4096.
    const QUOTA: usize = 6_096;
    let mut p = parameters(1_000, 3_600_000);
    p.max_unannounced_bytes_per_peer = QUOTA;
    let mut cluster = Cluster::new(26, p).await;
    cluster.start_worker(0).await;
    let batch = |n: u16| Batch::new(vec![Bytes::from(n.to_le_bytes().repeat(450))]).seal();
    let size = batch(0).1.len();
    let mut accepted = Vec::new();
    let mut n = 0;
    let refused = loop {
        let (digest, bytes) = batch(n);
        n += 1;
        match cluster.request(1, 0, &WorkerMessage::Batch(bytes)).await {
            Ok(_) => accepted.push(digest),
            Err(NetworkError::Remote(_)) => break digest,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(accepted.len(), QUOTA / size);
    assert!(!cluster.batches(0).contains(&refused).unwrap());
    let rejected = &cluster.worker(0).metrics().requests_rejected;
    assert_eq!(rejected.with_label_values(&["peer_quota"]).get(), 1);
    // Another peer has its own quota.
    let (other, bytes) = batch(1_000);
    cluster
        .request(2, 0, &WorkerMessage::Batch(bytes))
        .await
        .unwrap();
    assert!(cluster.batches(0).contains(&other).unwrap());
    // A header named two of them, and the primary deleted one more: room for three.
    let announced = PrimaryToWorker::Announced {
        digests: accepted[..2].to_vec(),
    };
    cluster.request(0, 0, &announced).await.unwrap();
    let deleted = PrimaryToWorker::DeleteBatches {
        digests: vec![accepted[2]],
    };
    cluster.request(0, 0, &deleted).await.unwrap();
    for m in n..n + 3 {
        let (digest, bytes) = batch(m);
        cluster
            .request(1, 0, &WorkerMessage::Batch(bytes))
            .await
            .unwrap();
        assert!(cluster.batches(0).contains(&digest).unwrap());
    }
    let (_, bytes) = batch(n + 3);
    assert!(cluster
        .request(1, 0, &WorkerMessage::Batch(bytes))
        .await
        .is_err());
    assert_eq!(rejected.with_label_values(&["peer_quota"]).get(), 2);
    assert_eq!(
        cluster.worker(0).metrics().unannounced_bytes.get(),
        ((QUOTA / size + 1) * size) as i64,
        "authority 1's full quota and authority 2's one batch"
    );
}

/// Proves: when the client port is full, a new connection evicts the connection quiet longest
/// once it has been quiet for `evict_quiet_after` — one that sent a transaction and then held
/// its socket included (the old rule evicted only connections that never spoke) — and the
/// newcomer is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_client_port_evicts_the_connection_quiet_longest() {
    let mut rng = StdRng::seed_from_u64(24);
    let mut p = parameters(1_000, 3_600_000);
    p.client_port.max_connections = 2;
    p.client_port.evict_quiet_after_ms = 300;
    let mut cluster = Cluster::new(24, p).await;
    cluster.start_all().await;
    let address = cluster.transaction_address(0);
    // A stranger sends one transaction, then holds its connection.
    let mut stranger = client_from([127, 0, 0, 9], address).await;
    let one = transactions(&mut rng, 1, 100);
    stranger.write_all(&frame(&one)).await.unwrap();
    let _second = client_from([127, 0, 0, 10], address).await;
    // Both connections go quiet for longer than the limit (the behaviour under test is
    // defined by this time).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let mut client = client_from([127, 0, 0, 11], address).await;
    assert!(
        closed_by_worker(&mut stranger).await,
        "quiet longest: evicted"
    );
    // 1 + 9 transactions of 100 B take the encoding past 1,000 bytes: the 9th seals it.
    let txs = transactions(&mut rng, 9, 100);
    client.write_all(&frame(&txs)).await.unwrap();
    let digest = our_batch(cluster.next_report(0).await);
    let mut stored = stored_transactions(&cluster, 0, &digest).await;
    // The stranger's transaction opened the batch the client's filled.
    assert_eq!(stored.remove(0), one[0]);
    assert_eq!(stored, txs);
    let rejected = &cluster.worker(0).metrics().transactions_rejected;
    assert_eq!(rejected.with_label_values(&["evicted_quiet"]).get(), 1);
    assert_eq!(
        rejected.with_label_values(&["too_many_connections"]).get(),
        0
    );
}

/// Proves: when the client port is full and no connection has been quiet for
/// `evict_quiet_after`, a new connection is refused (closed and counted) and the ones held
/// stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_client_port_refuses_newcomers_while_every_connection_is_recent() {
    let mut p = parameters(1_000, 3_600_000);
    p.client_port.max_connections = 2;
    p.client_port.evict_quiet_after_ms = 3_600_000;
    let mut cluster = Cluster::new(25, p).await;
    cluster.start_all().await;
    let address = cluster.transaction_address(0);
    let _first = client_from([127, 0, 0, 9], address).await;
    let _second = client_from([127, 0, 0, 10], address).await;
    let mut third = client_from([127, 0, 0, 11], address).await;
    assert!(closed_by_worker(&mut third).await);
    let rejected = &cluster.worker(0).metrics().transactions_rejected;
    assert_eq!(
        rejected.with_label_values(&["too_many_connections"]).get(),
        1
    );
    assert_eq!(rejected.with_label_values(&["evicted_quiet"]).get(), 0);
}
