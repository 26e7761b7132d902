//! Crypto costs that decide the certificate scheme and bound the worker path:
//! `cargo bench -p weft-types --bench crypto`.
//!
//! - hashing throughput for a transaction and a full batch: `Digest::of` (BLAKE3) beside
//!   Blake2b-256, the digest weft used before;
//! - ed25519 sign, verify, and batch-verify of 2f+1 vote signatures;
//! - BLS12-381 (min_sig) aggregate verification of the same 2f+1 votes, the alternative
//!   certificate scheme;
//! - `Certificate::verify` as weft runs it.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fastcrypto::bls12381::min_sig::{
    BLS12381AggregateSignature, BLS12381KeyPair, BLS12381PublicKey,
};
use fastcrypto::hash::{Blake2b256, HashFunction};
use fastcrypto::traits::{AggregateAuthenticator, KeyPair as _, Signer};
use rand::{rngs::StdRng, SeedableRng};
use weft_test_utils::CommitteeFixture;
use weft_types::crypto::Intent;
use weft_types::{AuthorityIndex, Certificate, Digest, KeyPair, PublicKey};

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("digest");
    for size in [512usize, 500_000] {
        let data = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("blake3", size), &data, |b, d| {
            b.iter(|| Digest::of(d))
        });
        g.bench_with_input(BenchmarkId::new("blake2b256", size), &data, |b, d| {
            b.iter(|| Blake2b256::digest(d))
        });
    }
    g.finish();
}

fn signatures(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let digest = Digest::of(b"header");
    let kp = KeyPair::generate(&mut rng);
    let sig = kp.sign(Intent::Vote, &digest);
    c.bench_function("ed25519/sign", |b| {
        b.iter(|| kp.sign(Intent::Vote, &digest))
    });
    c.bench_function("ed25519/verify", |b| {
        b.iter(|| kp.public().verify(Intent::Vote, &digest, &sig))
    });

    let mut g = c.benchmark_group("quorum_verify");
    for n in [4usize, 10, 31, 100] {
        let quorum = 2 * n / 3 + 1;
        let kps: Vec<KeyPair> = (0..quorum).map(|_| KeyPair::generate(&mut rng)).collect();
        let pks: Vec<PublicKey> = kps.iter().map(KeyPair::public).collect();
        let refs: Vec<&PublicKey> = pks.iter().collect();
        let sigs: Vec<_> = kps.iter().map(|k| k.sign(Intent::Vote, &digest)).collect();
        g.bench_with_input(BenchmarkId::new("ed25519_batch", n), &n, |b, _| {
            b.iter(|| PublicKey::verify_batch(Intent::Vote, &digest, &refs, &sigs).unwrap())
        });

        let msg = digest.0;
        let bls: Vec<BLS12381KeyPair> = (0..quorum)
            .map(|_| BLS12381KeyPair::generate(&mut rng))
            .collect();
        let bls_pks: Vec<BLS12381PublicKey> = bls.iter().map(|k| k.public().clone()).collect();
        let bls_sigs: Vec<_> = bls.iter().map(|k| k.sign(&msg)).collect();
        let agg = BLS12381AggregateSignature::aggregate(&bls_sigs).unwrap();
        g.bench_with_input(BenchmarkId::new("bls12381_aggregate", n), &n, |b, _| {
            b.iter(|| agg.verify(&bls_pks, &msg).unwrap())
        });
    }
    g.finish();
}

fn certificates(c: &mut Criterion) {
    let mut g = c.benchmark_group("certificate_verify");
    for n in [4usize, 10] {
        let f = CommitteeFixture::new(n, 1, 3);
        let genesis = Certificate::genesis(&f.committee);
        let header = f.header(AuthorityIndex(0), 1, &genesis, vec![]);
        let votes = f.votes(&header, (0..(2 * n / 3 + 1) as u16).map(AuthorityIndex));
        let cert = Certificate::new(
            &f.committee,
            header,
            votes.iter().map(|v| (v.author, v.signature)),
        )
        .unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| cert.verify(&f.committee).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, hashing, signatures, certificates);
criterion_main!(benches);
