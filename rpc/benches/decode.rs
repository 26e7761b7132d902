//! CPU cost per transaction of the ingress's checks: `cargo bench -p weft-rpc --bench decode
//! --profile dev` (dependencies are optimised in dev; see the workspace Cargo.toml).
//! `check/no_recovery` is hex + EIP-2718 decode + canonical re-encode + keccak + chain id;
//! `check/recover` adds the sender recovery (`rpc.recover_senders`).

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use weft_rpc::decode::{check_transaction, decode_hex, TxPolicy};

fn bench(c: &mut Criterion) {
    let raw = common::transfer(10, 0, 7);
    let text = format!("0x{}", hex::encode(&raw));
    let policy = |recover_senders| TxPolicy {
        max_transaction_size: 128 * 1024,
        chain_ids: vec![10],
        recover_senders,
    };
    let (with, without) = (policy(true), policy(false));
    c.bench_function("hex", |b| b.iter(|| decode_hex(black_box(&text), 1 << 20)));
    c.bench_function("check/no_recovery", |b| {
        b.iter(|| check_transaction(black_box(&raw), &without))
    });
    c.bench_function("check/recover", |b| {
        b.iter(|| check_transaction(black_box(&raw), &with))
    });
    c.bench_function("index_decode", |b| {
        b.iter(|| weft_rpc::hash_and_chain_id(black_box(&raw)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
