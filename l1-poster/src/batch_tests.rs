use super::*;
use crate::source::MemorySource;
use rand::{rngs::StdRng, Rng, RngCore, SeedableRng};

fn random_stream(seed: u64, sub_dags: usize) -> MemorySource {
    let mut rng = StdRng::seed_from_u64(seed);
    let source = MemorySource::new();
    let mut timestamp = 1_700_000_000_000u64;
    for _ in 0..sub_dags {
        // Consensus timestamps never decrease, and several sub-DAGs may share one.
        timestamp += rng.gen_range(0..500);
        // Some sub-DAGs are empty, like those of leaders whose sub-DAG carried no batch.
        let n = if rng.gen_bool(0.2) {
            0
        } else {
            rng.gen_range(1..40)
        };
        let txs = (0..n)
            .map(|_| {
                let mut tx = vec![0u8; rng.gen_range(100..300)];
                // Half-random bytes so compression neither fails nor trivialises the cut.
                rng.fill_bytes(&mut tx[..50]);
                Bytes::from(tx)
            })
            .collect();
        source.push_at(timestamp, txs);
    }
    source.push(vec![Bytes::from_static(b"last")]);
    source
}

#[test]
fn assembler_rejects_gaps_overlaps_and_changed_totals_or_timestamps() {
    let frame = |sub_dag, total, first, n: usize| Frame {
        sub_dag,
        timestamp: 5_000 + sub_dag,
        total,
        first,
        transactions: vec![Bytes::from_static(b"x"); n],
    };
    let mut asm = StreamAssembler::default();
    asm.push(frame(0, 3, 0, 2)).unwrap();
    assert_eq!(
        asm.push(frame(0, 3, 1, 2)),
        Err(Position { sub_dag: 0, tx: 2 })
    );
    assert_eq!(
        asm.push(frame(0, 4, 2, 1)),
        Err(Position { sub_dag: 0, tx: 2 })
    );
    let mut retimed = frame(0, 3, 2, 1);
    retimed.timestamp += 1;
    assert_eq!(asm.push(retimed), Err(Position { sub_dag: 0, tx: 2 }));
    asm.push(frame(0, 3, 2, 1)).unwrap();
    assert_eq!(
        asm.push(frame(2, 1, 0, 1)),
        Err(Position { sub_dag: 1, tx: 0 })
    );
    asm.push(frame(1, 0, 0, 0)).unwrap();
    assert_eq!(asm.complete().len(), 2);
    assert_eq!(asm.complete()[1].timestamp, 5_001);
}

#[test]
fn decoding_garbage_fails_without_panicking() {
    let mut rng = StdRng::seed_from_u64(3);
    for len in 0..200 {
        let mut data = vec![0u8; len];
        rng.fill_bytes(&mut data);
        let _ = decode_batch(&data);
        let _ = decode_frames(&Bytes::from(data));
    }
    // A valid batch with every truncation.
    let frames: Vec<Frame> = random_stream(4, 5)
        .all()
        .into_iter()
        .map(|s| Frame {
            sub_dag: s.index,
            timestamp: s.timestamp,
            total: s.transactions.len() as u32,
            first: 0,
            transactions: s.transactions,
        })
        .collect();
    let data = encode_batch(&frames);
    assert_eq!(decode_batch(&data).unwrap(), frames);
    let raw = zstd::bulk::decompress(&data[2..], MAX_DECOMPRESSED_BYTES).unwrap();
    for cut in 0..raw.len() {
        let _ = decode_frames(&Bytes::copy_from_slice(&raw[..cut]));
    }
    assert_eq!(decode_batch(&[9, 1]).unwrap_err(), BatchError::Version(9));
    assert_eq!(
        decode_batch(&[BATCH_VERSION, 7]).unwrap_err(),
        BatchError::Codec(7)
    );
    assert_eq!(decode_batch(&[0, 1]).unwrap_err(), BatchError::Version(0));
}

/// Found by fuzzing (`fuzz/fuzz_targets/l1_batch.rs`): a frame that claims a sub-DAG of 2^26
/// transactions while carrying one made the assembler reserve room for all of them (gigabytes,
/// from 32 bytes). The reservation now follows what the frame carries.
#[test]
fn a_frame_claiming_a_huge_sub_dag_reserves_only_what_it_carries() {
    let raw: [u8; 32] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,
        0, 0,
    ];
    let frames = decode_frames(&Bytes::copy_from_slice(&raw)).unwrap();
    assert_eq!(
        (frames[0].total, frames[0].transactions.len()),
        (1 << 26, 1)
    );
    let mut assembler = StreamAssembler::default();
    assembler.push(frames[0].clone()).unwrap();
    let partial = assembler
        .partial
        .as_ref()
        .expect("the sub-DAG is incomplete");
    assert!(
        partial.transactions.capacity() < 16,
        "{}",
        partial.transactions.capacity()
    );
}
