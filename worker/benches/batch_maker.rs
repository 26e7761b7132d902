//! Incremental sealing of a 500 KB batch of 512-byte transactions: append every transaction,
//! patch the counts, hash once, freeze.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{rngs::StdRng, Rng, SeedableRng};
use weft_types::BatchDigest;
use weft_worker::{BatchBuilder, SealedBatch};

const BATCH_SIZE: usize = 500_000;
const TX_SIZE: usize = 512;

fn seal_500kb(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(5);
    // Enough transactions to take the encoding to BATCH_SIZE, as the batch maker would.
    let count = BATCH_SIZE.div_ceil(4 + TX_SIZE);
    let txs: Vec<Bytes> = (0..count)
        .map(|_| {
            let mut tx = vec![1u8; TX_SIZE];
            rng.fill(&mut tx[1..]);
            Bytes::from(tx)
        })
        .collect();
    let mut builder = BatchBuilder::new(BATCH_SIZE + 4 + TX_SIZE);
    let mut group = c.benchmark_group("batch_maker");
    group.throughput(Throughput::Bytes((count * (4 + TX_SIZE)) as u64));
    group.bench_function("seal_500kb_of_512b_txs", |b| {
        b.iter(|| builder.seal_after(&txs))
    });
    // The share of the seal that is the one Blake2b-256 pass over the batch.
    let sealed = builder.seal_after(&txs);
    group.bench_function("hash_only_500kb", |b| {
        b.iter(|| BatchDigest::of_encoded(&sealed.batch()))
    });
    group.finish();
}

trait SealAfter {
    fn seal_after(&mut self, txs: &[Bytes]) -> SealedBatch;
}

impl SealAfter for BatchBuilder {
    fn seal_after(&mut self, txs: &[Bytes]) -> SealedBatch {
        for tx in txs {
            self.push(tx);
        }
        self.seal()
    }
}

criterion_group!(benches, seal_500kb);
criterion_main!(benches);
