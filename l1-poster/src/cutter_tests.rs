use super::*;
use crate::batch::{decode_batch, StreamAssembler};
use bytes::Bytes;
use rand::{rngs::StdRng, Rng, RngCore, SeedableRng};

const INTERVAL_MS: u64 = 2_000;

fn params(target_bytes: usize) -> CutterParams {
    CutterParams {
        mode: PostMode::Calldata,
        target_bytes,
        interval_ms: INTERVAL_MS,
    }
}

/// Sub-DAGs with gaps in time, empty ones, and now and then one far larger than a batch.
fn stream(seed: u64, n: usize) -> Vec<OrderedSubDag> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut timestamp = 1_700_000_000_000u64;
    (0..n as u64)
        .map(|index| {
            timestamp += rng.gen_range(0..700);
            let count = match rng.gen_range(0..10) {
                0 | 1 => 0,
                2 => rng.gen_range(100..300),
                _ => rng.gen_range(1..30),
            };
            let transactions = (0..count)
                .map(|_| {
                    let mut tx = vec![0u8; rng.gen_range(100..300)];
                    rng.fill_bytes(&mut tx[..60]);
                    Bytes::from(tx)
                })
                .collect();
            OrderedSubDag {
                index,
                timestamp,
                transactions,
            }
        })
        .collect()
}

fn cut(cutter: &mut Cutter, sub_dags: &[OrderedSubDag]) -> Vec<ClosedBatch> {
    sub_dags
        .iter()
        .flat_map(|sd| cutter.push(sd).unwrap())
        .collect()
}

#[test]
fn batches_are_contiguous_within_target_and_reassemble_to_the_stream() {
    let sub_dags = stream(1, 400);
    let target = 6_000;
    let mut cutter = Cutter::new(params(target), CutterState::default());
    let batches = cut(&mut cutter, &sub_dags);
    assert!(batches.len() > 20, "the stream must be split");
    let mut asm = StreamAssembler::default();
    let mut next = Position::default();
    for (s, b) in batches.iter().enumerate() {
        assert_eq!(b.sequence, s as u64);
        assert_eq!(
            b.start,
            next,
            "batch {s} starts where {} ended",
            s.max(1) - 1
        );
        assert!(b.data.len() <= target, "batch {s}: {} bytes", b.data.len());
        assert_eq!(b.data_hash, keccak256(&b.data));
        let frames = decode_batch(&b.data).unwrap();
        assert_eq!(
            frames.iter().map(|f| f.transactions.len()).sum::<usize>(),
            b.transactions
        );
        for f in frames {
            asm.push(f).unwrap();
        }
        next = b.end;
    }
    assert_eq!(asm.next(), next);
    let complete = asm.into_complete();
    assert_eq!(complete[..], sub_dags[..complete.len()]);
    assert!(complete.len() + 40 > sub_dags.len(), "little is left open");
}

#[test]
fn a_batch_closes_before_the_first_sub_dag_an_interval_after_its_first_transaction() {
    let sub_dags = stream(2, 300);
    // A target no batch reaches: only time closes them.
    let mut cutter = Cutter::new(params(100_000), CutterState::default());
    let batches = cut(&mut cutter, &sub_dags);
    assert!(batches.len() > 5);
    for b in &batches {
        let frames = decode_batch(&b.data).unwrap();
        let first = frames
            .iter()
            .find(|f| !f.transactions.is_empty())
            .map(|f| f.timestamp)
            .unwrap();
        assert!(frames.iter().all(|f| f.timestamp < first + INTERVAL_MS));
        // The sub-DAG right after the batch is the one that closed it.
        let closer = &sub_dags[b.end.sub_dag as usize];
        assert_eq!(b.end.tx, 0);
        assert!(closer.timestamp >= first + INTERVAL_MS);
    }
}

/// What makes the batches signable after a crash: a cutter resumed from its state at any
/// sub-DAG, fed the log again from the open batch's start, cuts exactly the batches that one
/// running without a stop cuts.
#[test]
fn a_resumed_cutter_cuts_exactly_what_an_uninterrupted_one_cuts() {
    let sub_dags = stream(3, 300);
    let p = params(5_000);
    let reference = cut(&mut Cutter::new(p, CutterState::default()), &sub_dags);
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..20 {
        let stop = rng.gen_range(1..sub_dags.len());
        let mut first = Cutter::new(p, CutterState::default());
        let mut batches = cut(&mut first, &sub_dags[..stop]);
        let state = first.state();
        let mut resumed = Cutter::new(p, state);
        let replay = &sub_dags[state.open_start.sub_dag as usize..stop];
        assert!(
            cut(&mut resumed, replay).is_empty(),
            "replay closes nothing"
        );
        batches.extend(cut(&mut resumed, &sub_dags[stop..]));
        assert_eq!(batches, reference, "stopped after sub-DAG {stop}");
    }
}

#[test]
fn a_transaction_larger_than_the_target_is_a_batch_of_its_own() {
    let mut cutter = Cutter::new(params(200), CutterState::default());
    let big = Bytes::from((0..1_000u32).map(|i| (i * 7919) as u8).collect::<Vec<_>>());
    let sd = |index, txs| OrderedSubDag {
        index,
        timestamp: 0,
        transactions: txs,
    };
    assert!(cutter.push(&sd(0, vec![big.clone()])).unwrap().is_empty());
    let closed = cutter
        .push(&sd(1, vec![Bytes::from_static(b"x"), big]))
        .unwrap();
    // The big one alone; then `x`, which the next big one leaves no room beside.
    assert_eq!(closed.len(), 2);
    assert_eq!(closed[0].transactions, 1);
    assert!(closed[0].data.len() > 200);
    assert_eq!(closed[0].end, Position { sub_dag: 1, tx: 0 });
    assert_eq!(closed[1].transactions, 1);
    assert_eq!(closed[1].end, Position { sub_dag: 1, tx: 1 });
    assert!(matches!(
        cutter.push(&sd(3, vec![])),
        Err(BatchError::OutOfOrder {
            expected: 2,
            got: 3
        })
    ));
}

#[test]
fn a_blob_batch_is_named_by_its_blobs_versioned_hashes() {
    let data = vec![7u8; 200_000];
    let hash = data_hash(PostMode::Blob { max_blobs: 6 }, &data).unwrap();
    let sidecar = blob_sidecar(&data).unwrap();
    assert_eq!(sidecar.blobs.len(), 2);
    let concatenated: Vec<u8> = sidecar.versioned_hashes().flat_map(|h| h.0).collect();
    assert_eq!(hash, keccak256(concatenated));
    assert_eq!(
        hash,
        data_hash(PostMode::Blob { max_blobs: 6 }, &data).unwrap()
    );
    assert_ne!(hash, data_hash(PostMode::Calldata, &data).unwrap());
}

#[test]
fn a_stored_record_reads_back_as_the_batch_and_a_truncated_one_is_refused() {
    let sub_dags = stream(5, 40);
    let batches = cut(
        &mut Cutter::new(params(4_000), CutterState::default()),
        &sub_dags,
    );
    assert!(batches.len() > 2);
    for b in &batches {
        let record = b.to_record();
        assert_eq!(&ClosedBatch::from_record(&record).unwrap(), b);
        assert!(matches!(
            ClosedBatch::from_record(&record[..RECORD_HEAD - 1]),
            Err(BatchError::Truncated)
        ));
    }
}

/// A batch closed by time but cut back to the target leaves a rest just as old: that rest
/// closes at the same sub-DAG, not one later. Random transactions do not compress, so the
/// first batch (raw cap twice the target) must be cut back.
#[test]
fn the_rest_of_a_batch_cut_back_closes_with_it() {
    let mut rng = StdRng::seed_from_u64(5);
    let transactions: Vec<Bytes> = (0..40)
        .map(|_| {
            let mut tx = vec![0u8; 100];
            rng.fill_bytes(&mut tx);
            Bytes::from(tx)
        })
        .collect();
    let mut cutter = Cutter::new(params(3_000), CutterState::default());
    let first = OrderedSubDag {
        index: 0,
        timestamp: 0,
        transactions,
    };
    assert!(
        cutter.push(&first).unwrap().is_empty(),
        "within the raw cap"
    );
    let later = OrderedSubDag {
        index: 1,
        timestamp: INTERVAL_MS,
        transactions: Vec::new(),
    };
    let closed = cutter.push(&later).unwrap();
    assert!(
        closed.len() >= 2,
        "cut back, then the rest: {}",
        closed.len()
    );
    assert_eq!(
        closed.last().map(|b| b.end),
        Some(Position { sub_dag: 1, tx: 0 })
    );
    assert!(closed.iter().all(|b| b.data.len() <= 3_000));
    // The next batch's raw cap follows this stream's ratio (random bytes: about 1).
    assert!(
        cutter.state().last_ratio_percent < 110,
        "{:?}",
        cutter.state()
    );
}
