//! Measures what posting costs on L1, on realistic Ethereum transactions.
//!
//! `cargo run -p weft-l1-poster --example measure [-- --txs N]`
//!
//! 1. Generates N signed EIP-1559 transactions from seeded keys (60% ETH transfers, 40% ERC-20
//!    `transfer` calls) and compares zstd and brotli at several levels on 120 kB batches.
//! 2. Posts them through the poster to a fresh anvil, in calldata mode and in blob mode, cut
//!    and certified as committees of 4, 10, 31 and 100 authorities would, and reports L1 bytes
//!    per transaction, gas per batch and per transaction, and posting throughput.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::{Address, Bytes as AlloyBytes, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use alloy::sol_types::SolCall;
use bytes::Bytes;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_l1_poster::anvil::{Anvil, DEV_KEYS};
use weft_l1_poster::metrics::PosterMetrics;
use weft_l1_poster::{deploy_inbox, CutterParams, MemoryCommittee, PostMode, Poster, PosterConfig};

alloy::sol! {
    function transfer(address to, uint256 amount) returns (bool);
}

const SENDERS: usize = 500;
const TOKENS: usize = 20;
const TXS_PER_SUB_DAG: usize = 100;

fn realistic_transactions(n: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = StdRng::seed_from_u64(seed);
    let senders: Vec<PrivateKeySigner> = (0..SENDERS)
        .map(|_| loop {
            let mut k = [0u8; 32];
            rng.fill(&mut k);
            if let Ok(s) = PrivateKeySigner::from_slice(&k) {
                break s;
            }
        })
        .collect();
    let tokens: Vec<Address> = (0..TOKENS)
        .map(|_| Address::from(rng.gen::<[u8; 20]>()))
        .collect();
    let mut nonces = vec![0u64; SENDERS];
    (0..n)
        .map(|_| {
            let s = rng.gen_range(0..SENDERS);
            let to = Address::from(rng.gen::<[u8; 20]>());
            let (kind, value, input, gas) = if rng.gen_bool(0.6) {
                let wei = U256::from(rng.gen_range(1u64..10_000)) * U256::from(10u64.pow(14));
                (TxKind::Call(to), wei, AlloyBytes::new(), 21_000)
            } else {
                let amount = U256::from(rng.gen_range(1u64..1_000_000)) * U256::from(10u64.pow(12));
                let call = transferCall { to, amount }.abi_encode();
                let token = tokens[rng.gen_range(0..TOKENS)];
                (TxKind::Call(token), U256::ZERO, call.into(), 65_000)
            };
            let tx = TxEip1559 {
                chain_id: 1,
                nonce: nonces[s],
                gas_limit: gas,
                max_fee_per_gas: rng.gen_range(20..60) * 1_000_000_000,
                max_priority_fee_per_gas: rng.gen_range(1..3) * 1_000_000_000,
                to: kind,
                value,
                access_list: Default::default(),
                input,
            };
            nonces[s] += 1;
            let sig = senders[s]
                .sign_hash_sync(&tx.signature_hash())
                .expect("local signing");
            let envelope: TxEnvelope = tx.into_signed(sig).into();
            Bytes::from(envelope.encoded_2718())
        })
        .collect()
}

/// Consecutive transactions filling about `raw_bytes`.
fn chunks(txs: &[Bytes], raw_bytes: usize) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for t in txs {
        let last = out.last_mut().expect("non-empty");
        if last.len() + t.len() + 4 > raw_bytes {
            out.push(Vec::new());
        }
        let last = out.last_mut().expect("non-empty");
        last.extend_from_slice(&(t.len() as u32).to_le_bytes());
        last.extend_from_slice(t);
    }
    out
}

fn compare_codecs(txs: &[Bytes]) {
    let avg = txs.iter().map(|t| t.len()).sum::<usize>() as f64 / txs.len() as f64;
    println!(
        "## compression ({} txs, {avg:.1} bytes each signed)",
        txs.len()
    );
    println!("| codec | ratio | compress MB/s | decompress MB/s |");
    println!("|---|---|---|---|");
    let batches = chunks(txs, 300_000);
    let raw: usize = batches.iter().map(Vec::len).sum();
    let report = |name: &str, compressed: usize, c: Duration, d: Duration| {
        println!(
            "| {name} | {:.3} | {:.0} | {:.0} |",
            raw as f64 / compressed as f64,
            raw as f64 / c.as_secs_f64() / 1e6,
            raw as f64 / d.as_secs_f64() / 1e6
        );
    };
    for level in [3, 9, 19] {
        let t = Instant::now();
        let out: Vec<Vec<u8>> = batches
            .iter()
            .map(|b| zstd::bulk::compress(b, level).expect("zstd"))
            .collect();
        let c = t.elapsed();
        let t = Instant::now();
        for (o, b) in out.iter().zip(&batches) {
            let back = zstd::bulk::decompress(o, b.len()).expect("zstd");
            assert_eq!(&back, b);
        }
        report(
            &format!("zstd {level}"),
            out.iter().map(Vec::len).sum(),
            c,
            t.elapsed(),
        );
    }
    for quality in [5, 9, 11] {
        let params = brotli::enc::BrotliEncoderParams {
            quality,
            lgwin: 22,
            ..Default::default()
        };
        let t = Instant::now();
        let out: Vec<Vec<u8>> = batches
            .iter()
            .map(|b| {
                let mut o = Vec::new();
                brotli::BrotliCompress(&mut &b[..], &mut o, &params).expect("brotli");
                o
            })
            .collect();
        let c = t.elapsed();
        let t = Instant::now();
        for (o, b) in out.iter().zip(&batches) {
            let mut back = Vec::new();
            brotli::BrotliDecompress(&mut &o[..], &mut back).expect("brotli");
            assert_eq!(&back, b);
        }
        report(
            &format!("brotli {quality}"),
            out.iter().map(Vec::len).sum(),
            c,
            t.elapsed(),
        );
    }
}

/// Posts `txs` as the committee of `n` equal-stake authorities cuts and certifies them (a
/// quorum of signatures per batch, as the attester forms them); reports per batch and per tx.
async fn post(txs: &[Bytes], mode: PostMode, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let anvil = Anvil::spawn(&[])?;
    let key: PrivateKeySigner = DEV_KEYS[0].parse()?;
    let fixture = weft_test_utils::CommitteeFixture::new(n, 1, 3);
    let inbox = deploy_inbox(&anvil.endpoint(), DEV_KEYS[5].parse()?, &fixture.committee).await?;
    let quorum = 2 * n / 3 + 1;
    let signers = fixture
        .authorities()
        .take(quorum)
        .map(|a| (a, fixture.keys(a).attestation.copy()))
        .collect();
    let params = CutterParams {
        mode,
        target_bytes: match mode {
            PostMode::Calldata => weft_l1_poster::cutter::DEFAULT_CALLDATA_TARGET,
            PostMode::Blob { max_blobs } => max_blobs * weft_l1_poster::cutter::BLOB_PAYLOAD_BYTES,
        },
        interval_ms: 2_000,
    };
    let committee = MemoryCommittee::new(&fixture.committee, signers, params);
    // Sub-DAGs 100 ms apart: batches close on size, as under load.
    let mut at = 0;
    for chunk in txs.chunks(TXS_PER_SUB_DAG) {
        committee.push_at(at, chunk.to_vec())?;
        at += 100;
    }
    committee.push_at(at + 10_000, Vec::new())?;
    let dir = tempfile::tempdir()?;
    let mut config = PosterConfig::new(&anvil.endpoint(), inbox, dir.path().join("cursor"));
    config.mode = mode;
    let metrics = PosterMetrics::unregistered();
    let all = committee.batches().len() as u64;
    let start = Instant::now();
    let mut poster = Poster::spawn(config, key, Arc::new(committee), metrics.clone()).await?;
    poster.wait_until(|s| s.inbox_next_sequence == all).await;
    let elapsed = start.elapsed();
    poster.shutdown().await;
    let count = txs.len() as f64;
    let batches = metrics.batches_posted.get();
    let payload = metrics.bytes_posted.get() as f64;
    let on_l1 = match mode {
        PostMode::Calldata => payload,
        // A blob occupies its full 128 KiB whatever it carries.
        PostMode::Blob { .. } => {
            let per_blob = weft_l1_poster::cutter::BLOB_PAYLOAD_BYTES as f64;
            (payload / per_blob).ceil().max(batches as f64) * 131_072.0
        }
    };
    let gas = metrics.gas_used.get() as f64;
    println!(
        "| {mode:?} | {n} | {batches} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} |",
        payload / count,
        on_l1 / count,
        gas / batches.max(1) as f64,
        gas / count,
        count / elapsed.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut n = 20_000;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--txs") {
        n = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or("--txs N")?;
    }
    let txs = realistic_transactions(n, 1);
    compare_codecs(&txs);
    println!("\n## posting {n} txs to anvil (zstd 3 batches, certified)");
    println!("| mode | committee | batches | payload B/tx | L1 B/tx | gas/batch | gas/tx | tx/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in [4, 10, 31, 100] {
        post(&txs, PostMode::Calldata, n).await?;
        post(&txs, PostMode::Blob { max_blobs: 6 }, n).await?;
    }
    Ok(())
}
