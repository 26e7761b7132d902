//! The store keeps everything across close and reopen, applies write batches atomically,
//! serves ordered range scans, and wakes `notify_read` waiters when their key is written.

use bytes::Bytes;
use std::time::Duration;
use weft_storage::{Column, Durability, Map, Store, RECORDS};
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, BatchDigest, Certificate, CertificateDigest, Digest, Round};

const BATCHES: Column = Column::separated("batches");
const CERTIFICATES: Column = Column::new("certificates");
const CERTIFICATES_BY_ROUND: Column = Column::new("certificates_by_round");
const L1_BATCHES: Column = Column::new("l1_batches");
/// Columns as a crate would declare them.
const COLUMNS: [Column; 5] = [
    BATCHES,
    CERTIFICATES,
    CERTIFICATES_BY_ROUND,
    L1_BATCHES,
    RECORDS,
];

fn digest(i: u64) -> BatchDigest {
    BatchDigest(Digest::of(&i.to_le_bytes()))
}

#[test]
fn reopen_preserves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let f = CommitteeFixture::new(4, 1, 1);
    let dag = f.dag(3);
    {
        let store = Store::open(dir.path(), &COLUMNS).unwrap();
        let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
        for i in 0..100 {
            batches
                .insert(
                    &digest(i),
                    &Bytes::from(vec![i as u8; 100]),
                    Durability::Buffered,
                )
                .unwrap();
        }
        let certs: Map<CertificateDigest, Certificate> = store.map(CERTIFICATES);
        let mut wb = store.batch();
        for c in dag.iter().flatten() {
            wb.insert(&certs, &c.digest(), c);
        }
        wb.commit(Durability::Sync).unwrap();
        store.sync().unwrap();
    }
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
    for i in 0..100 {
        assert_eq!(
            batches.get(&digest(i)).unwrap(),
            Some(Bytes::from(vec![i as u8; 100]))
        );
    }
    assert_eq!(batches.get(&digest(100)).unwrap(), None);
    let certs: Map<CertificateDigest, Certificate> = store.map(CERTIFICATES);
    for c in dag.iter().flatten() {
        assert_eq!(certs.get(&c.digest()).unwrap().as_ref(), Some(c));
    }
    assert_eq!(certs.iter().unwrap().len(), dag.iter().flatten().count());
}

#[test]
fn unsynced_writes_survive_reopen_without_flush() {
    // Buffered writes are in the WAL before insert returns: dropping the handle without
    // `sync` (as a killed process would) loses nothing that a process crash could lose.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), &COLUMNS).unwrap();
        let m: Map<u64, u64> = store.map(RECORDS);
        m.insert(&1, &42, Durability::Buffered).unwrap();
    }
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let m: Map<u64, u64> = store.map(RECORDS);
    assert_eq!(m.get(&1).unwrap(), Some(42));
}

#[test]
fn write_batch_spans_columns_and_range_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let f = CommitteeFixture::new(4, 1, 2);
    let dag = f.dag(6);
    let certs: Map<CertificateDigest, Certificate> = store.map(CERTIFICATES);
    let by_round: Map<(Round, AuthorityIndex), CertificateDigest> =
        store.map(CERTIFICATES_BY_ROUND);
    let mut wb = store.batch();
    for c in dag.iter().flatten() {
        wb.insert(&certs, &c.digest(), c);
        wb.insert(&by_round, &(c.round(), c.author()), &c.digest());
    }
    wb.commit(Durability::Buffered).unwrap();

    // Range scan by round is in (round, author) order, even across the u8 boundary of keys.
    let r2_to_4 = by_round
        .range(&(2, AuthorityIndex(0)), &(4, AuthorityIndex(0)), 100)
        .unwrap();
    assert_eq!(r2_to_4.len(), 8);
    assert!(r2_to_4.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(r2_to_4[0].0, (2, AuthorityIndex(0)));
    assert_eq!(
        by_round
            .range(&(0, AuthorityIndex(0)), &(100, AuthorityIndex(0)), 5)
            .unwrap()
            .len(),
        5
    );

    // GC-style deletion: everything below round 4 goes, in both columns, atomically.
    let old = by_round
        .range(&(0, AuthorityIndex(0)), &(4, AuthorityIndex(0)), usize::MAX)
        .unwrap();
    let mut wb = store.batch();
    wb.remove_range(&by_round, &(0, AuthorityIndex(0)), &(4, AuthorityIndex(0)));
    for (_, d) in &old {
        wb.remove(&certs, d);
    }
    wb.commit(Durability::Buffered).unwrap();
    let left = by_round.iter().unwrap();
    assert_eq!(left.len(), 12);
    assert!(left.iter().all(|((r, _), _)| *r >= 4));
    assert_eq!(certs.iter().unwrap().len(), 12);
}

#[tokio::test]
async fn notify_read_wakes_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);

    // Present already: returns at once.
    batches
        .insert(
            &digest(1),
            &Bytes::from_static(b"one"),
            Durability::Buffered,
        )
        .unwrap();
    assert_eq!(
        batches.notify_read(digest(1)).await.unwrap(),
        Bytes::from_static(b"one")
    );

    // Absent: the reader is registered before the write and is woken by it.
    let (registered_tx, registered_rx) = tokio::sync::oneshot::channel();
    let reader = {
        let batches = batches.clone();
        tokio::spawn(async move {
            let fut = batches.notify_read(digest(2));
            tokio::pin!(fut);
            // Poll once so the waiter is registered, then tell the writer to go.
            assert!(futures_poll_once(fut.as_mut()).await.is_none());
            registered_tx.send(()).unwrap();
            fut.await
        })
    };
    registered_rx.await.unwrap();
    // A write batch to another key must not wake it.
    batches
        .insert(
            &digest(3),
            &Bytes::from_static(b"three"),
            Durability::Buffered,
        )
        .unwrap();
    let mut wb = store.batch();
    wb.insert(&batches, &digest(2), &Bytes::from_static(b"two"));
    wb.commit(Durability::Buffered).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.unwrap(), Bytes::from_static(b"two"));
}

/// Polls a future once; `Some` if it completed.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test]
async fn many_waiters_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let m: Map<u64, u64> = store.map(RECORDS);
    let mut futs: Vec<_> = (0..10).map(|_| Box::pin(m.notify_read(7))).collect();
    for f in futs.iter_mut() {
        assert!(futures_poll_once(f.as_mut()).await.is_none());
    }
    // A waiter that gives up is dropped without harming the others.
    futs.pop();
    m.insert(&7, &99, Durability::Buffered).unwrap();
    for f in futs {
        assert_eq!(f.await.unwrap(), 99);
    }
}

/// `keys` lists (u64, u64) keys in numeric order across byte boundaries, honours its bounds
/// and limit, and sees what a range removal left.
#[test]
fn keys_scan_pairs_in_order_without_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let map: Map<(u64, u64), Bytes> = store.map(L1_BATCHES);
    let mut wb = store.batch();
    for (k, s) in [(1u64, 0u64), (1, 1), (255, 2), (256, 3), (300, 4)] {
        wb.insert(&map, &(k, s), &Bytes::from(vec![0u8; 1000]));
    }
    wb.commit(Durability::Buffered).unwrap();
    assert_eq!(
        map.keys(&(1, 1), &(300, 0), 10).unwrap(),
        vec![(1, 1), (255, 2), (256, 3)]
    );
    assert_eq!(map.keys(&(0, 0), &(u64::MAX, 0), 2).unwrap().len(), 2);
    let mut wb = store.batch();
    wb.remove_range(&map, &(0, 0), &(256, 0));
    wb.commit(Durability::Buffered).unwrap();
    assert_eq!(
        map.keys(&(0, 0), &(u64::MAX, 0), 10).unwrap(),
        vec![(256, 3), (300, 4)]
    );
}

/// Each crate declares its columns; a store opened with some of them keeps the families it
/// was not opened with, and a map over an undeclared column fails with a typed error instead
/// of a panic, for reads and for write batches alike.
#[test]
fn columns_are_declared_by_their_owners() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), &COLUMNS).unwrap();
        let l1: Map<(u64, u64), Bytes> = store.map(L1_BATCHES);
        l1.insert(&(1, 2), &Bytes::from_static(b"kept"), Durability::Sync)
            .unwrap();
    }
    {
        let store = Store::open(dir.path(), &[RECORDS]).unwrap();
        let l1: Map<(u64, u64), Bytes> = store.map(L1_BATCHES);
        let undeclared = |e| matches!(e, weft_storage::StoreError::Undeclared("l1_batches"));
        assert!(l1.get(&(1, 2)).map_err(undeclared).unwrap_err());
        let mut batch = store.batch();
        batch.insert(&l1, &(3, 4), &Bytes::new());
        assert!(batch
            .commit(Durability::Sync)
            .map_err(undeclared)
            .unwrap_err());
        let records: Map<u64, u64> = store.map(RECORDS);
        records.insert(&1, &1, Durability::Sync).unwrap();
    }
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let l1: Map<(u64, u64), Bytes> = store.map(L1_BATCHES);
    assert_eq!(
        l1.iter().unwrap(),
        vec![((1, 2), Bytes::from_static(b"kept"))]
    );
    assert_eq!(store.map::<u64, u64>(RECORDS).get(&1).unwrap(), Some(1));
}
