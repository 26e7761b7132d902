//! Certificates per second that Bullshark orders: `cargo bench -p weft-consensus --bench bullshark`.
//!
//! A fully connected DAG (every certificate references the whole previous round, so every
//! leader commits) is fed in round order to fresh consensus; the time includes the commit rule,
//! the sub-DAG traversal, the clones of the output certificates and garbage collection. The
//! certificates are signed once, outside the measurement.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use weft_consensus::{Bullshark, ConsensusState, LeaderScheduleKind};
use weft_test_utils::CommitteeFixture;
use weft_types::Certificate;

const ROUNDS: u64 = 100;
const GC_DEPTH: u64 = 50;

fn full_dag(c: &mut Criterion) {
    let mut g = c.benchmark_group("bullshark_full_dag");
    for n in [4usize, 10] {
        let f = CommitteeFixture::new(n, 1, 1);
        let certificates: Vec<Certificate> = f.dag(ROUNDS).into_iter().skip(1).flatten().collect();
        g.throughput(Throughput::Elements(certificates.len() as u64));
        for kind in [
            LeaderScheduleKind::RoundRobin,
            LeaderScheduleKind::Reputation {
                commits_per_update: 10,
            },
        ] {
            let name = match kind {
                LeaderScheduleKind::RoundRobin => "round_robin",
                LeaderScheduleKind::Reputation { .. } => "reputation",
            };
            g.bench_with_input(BenchmarkId::new(name, n), &certificates, |b, certs| {
                b.iter_batched(
                    || {
                        let schedule = kind.build(&f.committee).unwrap();
                        let state = ConsensusState::genesis(&f.committee, schedule.as_ref());
                        let consensus =
                            Bullshark::new(f.committee.clone(), GC_DEPTH, schedule, state).unwrap();
                        (consensus, certs.clone())
                    },
                    |(mut consensus, certs)| {
                        let mut committed = 0;
                        for c in certs {
                            committed += consensus.process_certificate(c).unwrap().len();
                        }
                        assert_eq!(committed as u64, (ROUNDS - 1) / 2);
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, full_dag);
criterion_main!(benches);
