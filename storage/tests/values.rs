//! Separated values (batches) live in segment files: they read back
//! across reopen, a segment is deleted once nothing refers to it, appends that never got a
//! pointer leave nothing behind, and a value torn by a power loss reads as absent.

use bytes::Bytes;
use std::fs;
use std::path::Path;
use weft_storage::vlog::SEGMENT_SIZE;
use weft_storage::{Column, Durability, Map, Store, RECORDS};
use weft_types::{BatchDigest, Digest};

const BATCHES: Column = Column::separated("batches");
/// Columns as a crate would declare them.
const COLUMNS: [Column; 2] = [BATCHES, RECORDS];

fn digest(i: u64) -> BatchDigest {
    BatchDigest(Digest::of(&i.to_le_bytes()))
}

/// A value of `len` bytes that differs per `i`.
fn value(i: u64, len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|j| (i as usize * 31 + j) as u8)
            .collect::<Vec<u8>>(),
    )
}

fn segment_files(store_dir: &Path, column: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = fs::read_dir(store_dir.join("values").join(column))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// How many 1 MiB values fill `segments` segments exactly.
const BIG: usize = 1 << 20;
fn values_for_segments(segments: u64) -> u64 {
    segments * SEGMENT_SIZE / BIG as u64
}

#[test]
fn values_round_trip_and_segments_go_once_unreferenced() {
    let dir = tempfile::tempdir().unwrap();
    // One more than three segments hold, so a fourth is the active one.
    let n = values_for_segments(3) + 1;
    {
        let store = Store::open(dir.path(), &COLUMNS).unwrap();
        let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
        for i in 0..n {
            batches
                .insert(&digest(i), &value(i, BIG), Durability::Buffered)
                .unwrap();
        }
        assert!(store.value_segments(BATCHES) >= 3);
        // Deleting the first two segments' worth of values deletes their files; the third
        // (still referenced) and the active one stay.
        let mut wb = store.batch();
        for i in 0..values_for_segments(2) {
            wb.remove(&batches, &digest(i));
        }
        wb.commit(Durability::Buffered).unwrap();
        assert_eq!(store.value_segments(BATCHES), 2);
        assert_eq!(segment_files(dir.path(), "batches").len(), 2);
    }
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
    for i in 0..n {
        let expected = (i >= values_for_segments(2)).then(|| value(i, BIG));
        assert_eq!(batches.get(&digest(i)).unwrap(), expected, "value {i}");
    }
    for i in values_for_segments(2)..n {
        batches.remove(&digest(i)).unwrap();
    }
    // Only the segment opened for appends is left.
    assert_eq!(store.value_segments(BATCHES), 1);
    assert_eq!(segment_files(dir.path(), "batches").len(), 1);
}

#[test]
fn overwriting_a_key_releases_the_old_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
    let n = values_for_segments(2);
    for i in 0..n {
        batches
            .insert(&digest(0), &value(i, BIG), Durability::Buffered)
            .unwrap();
    }
    assert_eq!(batches.get(&digest(0)).unwrap(), Some(value(n - 1, BIG)));
    // Every older segment held only replaced values.
    assert!(store.value_segments(BATCHES) <= 2);
}

#[test]
fn an_uncommitted_append_leaves_no_segment_behind() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), &COLUMNS).unwrap();
        let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
        let mut wb = store.batch();
        for i in 0..values_for_segments(2) {
            wb.insert(&batches, &digest(i), &value(i, BIG));
        }
        drop(wb);
        assert_eq!(batches.get(&digest(0)).unwrap(), None);
        assert_eq!(store.value_segments(BATCHES), 1);
    }
    // A crash between append and pointer leaves a segment no pointer refers to: reopening
    // deletes it.
    fs::write(
        dir.path().join("values/batches/00000000000000000099.vlog"),
        vec![7u8; 1000],
    )
    .unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    assert_eq!(store.value_segments(BATCHES), 1);
    let files = segment_files(dir.path(), "batches");
    assert_eq!(files.len(), 1);
    assert!(files[0].ends_with("00000000000000000100.vlog"), "{files:?}");
}

#[test]
fn a_torn_value_reads_as_absent() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), &COLUMNS).unwrap();
        let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
        batches
            .insert(&digest(1), &value(1, 1000), Durability::Buffered)
            .unwrap();
        batches
            .insert(&digest(2), &value(2, 1000), Durability::Buffered)
            .unwrap();
        store.sync().unwrap();
    }
    // As after a power loss: the second value's bytes never reached the disk, and the first
    // has a flipped bit.
    let file = segment_files(dir.path(), "batches")[0].clone();
    let mut bytes = fs::read(&file).unwrap();
    bytes.truncate(1500);
    bytes[10] ^= 1;
    fs::write(&file, bytes).unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
    assert!(batches.contains(&digest(1)).unwrap());
    assert_eq!(batches.get(&digest(1)).unwrap(), None);
    assert_eq!(batches.get(&digest(2)).unwrap(), None);
    assert_eq!(batches.iter().unwrap().len(), 0);
    // Once found torn, the key is gone, so that a worker asks its peers for it again.
    assert!(!batches.contains(&digest(1)).unwrap());
    assert!(!batches.contains(&digest(2)).unwrap());
    // Fetched again, the value is whole.
    batches
        .insert(&digest(2), &value(2, 1000), Durability::Buffered)
        .unwrap();
    assert_eq!(batches.get(&digest(2)).unwrap(), Some(value(2, 1000)));
}

#[test]
fn range_removal_releases_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
    let n = values_for_segments(3) + 1;
    for i in 0..n {
        batches
            .insert(&digest(i), &value(i, BIG), Durability::Sync)
            .unwrap();
    }
    let (lowest, highest) = (
        BatchDigest(Digest([0; 32])),
        BatchDigest(Digest([0xff; 32])),
    );
    let mut wb = store.batch();
    wb.remove_range(&batches, &lowest, &highest);
    wb.commit(Durability::Sync).unwrap();
    assert_eq!(store.value_segments(BATCHES), 1);
    assert!(batches.iter().unwrap().is_empty());
}

#[test]
fn concurrent_writers_each_read_back_their_own_value() {
    // Writers reserve offsets in one order and finish their writes in another; each value
    // must still land where its pointer says.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let k = t * 1000 + i;
                    // Sizes differ so that writes take different times.
                    let v = value(k, 1000 + (k as usize % 7) * 40_000);
                    batches
                        .insert(&digest(k), &v, Durability::Buffered)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
    for t in 0..8u64 {
        for i in 0..50 {
            let k = t * 1000 + i;
            let v = value(k, 1000 + (k as usize % 7) * 40_000);
            assert_eq!(batches.get(&digest(k)).unwrap(), Some(v), "value {k}");
        }
    }
}

#[test]
fn a_value_prefix_reads_only_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &COLUMNS).unwrap();
    let batches: Map<BatchDigest, Bytes> = store.map(BATCHES);
    let v = value(3, 100_000);
    batches
        .insert(&digest(3), &v, Durability::Buffered)
        .unwrap();
    assert_eq!(
        batches.value_prefix(&digest(3), 5).unwrap(),
        Some(v.slice(..5))
    );
    assert_eq!(batches.value_prefix(&digest(3), 200_000).unwrap(), Some(v));
    assert_eq!(batches.value_prefix(&digest(4), 5).unwrap(), None);
    let votes: Map<u64, u64> = store.map(RECORDS);
    votes.insert(&1, &7, Durability::Buffered).unwrap();
    assert_eq!(votes.value_prefix(&1, 1).unwrap().map(|b| b.len()), Some(1));
}
