//! CPU per attestation for the two schemes #13 weighs, at committee sizes 4, 10, 31, 100:
//! secp256k1 (one signature per signer, checked by recovery as `ecrecover` does) against
//! BLS12-381 min-pk (signatures aggregated, one pairing check over the aggregated keys).
//! Run: `cargo bench -p weft-attest --bench attest`.

use alloy_primitives::keccak256;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use fastcrypto::bls12381::min_pk::{
    BLS12381AggregateSignature, BLS12381KeyPair, BLS12381PublicKey, BLS12381Signature,
};
use fastcrypto::traits::{AggregateAuthenticator, KeyPair, Signer};
use rand::{rngs::StdRng, SeedableRng};
use weft_attest::{recover, AttestationKey};

const SIZES: [usize; 4] = [4, 10, 31, 100];

fn quorum(n: usize) -> usize {
    2 * n / 3 + 1
}

fn secp256k1(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let digest = keccak256(b"attestation");
    let key = AttestationKey::generate(&mut rng);
    c.bench_function("secp256k1/sign", |b| b.iter(|| key.sign(&digest)));
    let mut group = c.benchmark_group("secp256k1/verify_certificate");
    for n in SIZES {
        let keys: Vec<_> = (0..quorum(n))
            .map(|_| AttestationKey::generate(&mut rng))
            .collect();
        let signed: Vec<_> = keys
            .iter()
            .map(|k| (k.address(), k.sign(&digest)))
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &signed, |b, signed| {
            b.iter(|| {
                for (address, signature) in signed {
                    assert_eq!(recover(&digest, signature), Some(*address));
                }
            })
        });
    }
    group.finish();
}

fn bls(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2);
    let message = keccak256(b"attestation");
    let key = BLS12381KeyPair::generate(&mut rng);
    c.bench_function("bls12381/sign", |b| b.iter(|| key.sign(message.as_slice())));
    let mut group = c.benchmark_group("bls12381/verify_certificate");
    for n in SIZES {
        let keys: Vec<_> = (0..quorum(n))
            .map(|_| BLS12381KeyPair::generate(&mut rng))
            .collect();
        let publics: Vec<BLS12381PublicKey> = keys.iter().map(|k| k.public().clone()).collect();
        let signatures: Vec<BLS12381Signature> =
            keys.iter().map(|k| k.sign(message.as_slice())).collect();
        group.bench_with_input(BenchmarkId::new("aggregate_and_verify", n), &n, |b, _| {
            b.iter(|| {
                let aggregate = BLS12381AggregateSignature::aggregate(&signatures).unwrap();
                aggregate.verify(&publics, message.as_slice()).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, secp256k1, bls);
criterion_main!(benches);
