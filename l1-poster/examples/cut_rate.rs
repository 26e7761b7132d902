//! CPU of cutting the log into L1 batches, which every authority's attester does for every
//! sub-DAG: 512-byte transactions (random, as incompressible as signed ones get, or the load
//! client's mostly-zero ones), 100 sub-DAGs of 1,000, calldata target 120 kB.
//!
//! `cargo run --release -p weft-l1-poster --example cut_rate`

use bytes::Bytes;
use rand::{rngs::StdRng, RngCore, SeedableRng};
use std::time::Instant;
use weft_l1_poster::{Cutter, CutterParams, CutterState, OrderedSubDag, PostMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(1);
    for (name, random) in [("random", true), ("load client (8 random bytes)", false)] {
        let mut cutter = Cutter::new(
            CutterParams {
                mode: PostMode::Calldata,
                target_bytes: 120_000,
                interval_ms: 2_000,
            },
            CutterState::default(),
        );
        let sub_dags: Vec<OrderedSubDag> = (0..100u64)
            .map(|index| OrderedSubDag {
                index,
                timestamp: index * 20,
                transactions: (0..1_000)
                    .map(|_| {
                        let mut tx = vec![0u8; 512];
                        let n = if random { 512 } else { 8 };
                        rng.fill_bytes(&mut tx[..n]);
                        Bytes::from(tx)
                    })
                    .collect(),
            })
            .collect();
        let start = Instant::now();
        let mut batches = 0;
        for s in &sub_dags {
            batches += cutter.push(s)?.len();
        }
        let elapsed = start.elapsed().as_secs_f64();
        let mb = 100.0 * 1_000.0 * 512.0 / 1e6;
        println!(
            "{name}: {batches} batches, {:.1} MB/s, {:.0}k tx/s on one core",
            mb / elapsed,
            100_000.0 / elapsed / 1e3
        );
    }
    Ok(())
}
