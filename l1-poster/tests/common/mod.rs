//! Shared set-up: a fresh anvil, an inbox deployed with chosen posters, seeded streams.
#![allow(dead_code)]

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use bytes::Bytes;
use rand::{rngs::StdRng, Rng, RngCore, SeedableRng};
use std::future::Future;
use std::time::Duration;
use weft_l1_poster::anvil::{Anvil, DEV_KEYS};
use weft_l1_poster::inbox::Inbox;
use weft_l1_poster::l1::{FeePolicy, L1Error, Outgoing, Signer, L1};
use weft_l1_poster::MemorySource;

/// Generous: the CI box is small and loaded; conditions are polled, never slept on.
pub const TIMEOUT: Duration = Duration::from_secs(120);

pub fn key(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().expect("well-known dev key")
}

/// Anvil plus an inbox whose posters are dev accounts `posters`; account 5 deploys.
pub async fn l1_with_inbox(posters: &[usize], extra: &[&str]) -> (Anvil, Address) {
    let anvil = Anvil::spawn(extra).expect("anvil (run ops/setup)");
    let allowed = posters.iter().map(|&i| key(i).address()).collect();
    let inbox = weft_l1_poster::deploy_inbox(&anvil.endpoint(), key(5), allowed)
        .await
        .expect("deploy inbox");
    (anvil, inbox)
}

/// A seeded stream of `sub_dags` sub-DAGs of 0..max_txs transactions of 100–400 bytes each;
/// the last sub-DAG is never empty (empty tails are not worth posting on their own).
pub fn stream(seed: u64, sub_dags: usize, max_txs: usize) -> MemorySource {
    let source = MemorySource::new();
    extend(&source, seed, sub_dags, max_txs);
    source
}

pub fn extend(source: &MemorySource, seed: u64, sub_dags: usize, max_txs: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..sub_dags {
        let n = if i + 1 < sub_dags && rng.gen_bool(0.1) {
            0
        } else {
            rng.gen_range(1..=max_txs)
        };
        let txs = (0..n)
            .map(|_| {
                let mut tx = vec![0u8; rng.gen_range(100..400)];
                rng.fill_bytes(&mut tx[..80]);
                Bytes::from(tx)
            })
            .collect();
        source.push(txs);
    }
}

/// Polls `cond` until it holds; panics after `TIMEOUT`.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Submits `data` as batch `sequence` directly (bypassing the poster) and waits for it.
pub async fn submit(l1: &L1, signer: &Signer, sequence: u64, data: &[u8]) -> Result<(), L1Error> {
    use alloy::sol_types::SolCall;
    let input = Inbox::submitBatchCall {
        sequence,
        data: data.to_vec().into(),
    };
    let tx = Outgoing {
        to: Some(l1.inbox),
        input: input.abi_encode().into(),
        sidecar: None,
    };
    let fees = l1.fees(&FeePolicy::default(), false).await?;
    let gas = signer.estimate(l1, &tx, fees).await?;
    let nonce = signer.nonce(l1).await?;
    let hash = signer.send(l1, &tx, nonce, gas, fees).await?;
    let receipt = l1.wait_receipt(hash).await?.expect("automine");
    assert!(receipt.status());
    Ok(())
}
