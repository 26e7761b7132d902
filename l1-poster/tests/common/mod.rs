//! Shared set-up: a fresh anvil with an inbox bound to a seeded 4-authority committee, a
//! committee in memory that cuts and certifies seeded streams, and forged certificates.
#![allow(dead_code)]

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use bytes::Bytes;
use rand::{rngs::StdRng, Rng, RngCore, SeedableRng};
use std::future::Future;
use std::time::Duration;
use weft_attest::{committee_id, AttestationKey, AttestedHeader, BatchRefs, CertificateSignature};
use weft_l1_poster::anvil::{Anvil, DEV_KEYS};
use weft_l1_poster::attested::{pack_signatures, to_inbox};
use weft_l1_poster::inbox::Inbox;
use weft_l1_poster::l1::{FeePolicy, L1Error, Outgoing, Signer, L1};
use weft_l1_poster::{CutterParams, MemoryCommittee, OrderedSubDag, PostMode};
use weft_test_utils::CommitteeFixture;
use weft_types::AuthorityIndex;

/// Generous: the CI box is small and loaded; conditions are polled, never slept on.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Consensus time between two sub-DAGs of a seeded stream.
pub const SUB_DAG_MS: u64 = 100;

/// A batch closes before the first sub-DAG this much later than its first transaction.
pub const INTERVAL_MS: u64 = 1_000;

pub fn key(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().expect("well-known dev key")
}

/// The seeded committee every test's inbox is bound to.
pub fn fixture() -> CommitteeFixture {
    CommitteeFixture::new(4, 1, 7)
}

/// The attestation keys of the first `n` authorities.
pub fn signers(f: &CommitteeFixture, n: usize) -> Vec<(AuthorityIndex, AttestationKey)> {
    f.authorities()
        .take(n)
        .map(|a| (a, f.keys(a).attestation.copy()))
        .collect()
}

/// Anvil plus an inbox bound to [`fixture`]'s committee; dev account 5 deploys.
pub async fn l1_with_inbox(extra: &[&str]) -> (Anvil, Address, CommitteeFixture) {
    let anvil = Anvil::spawn(extra).expect("anvil (run ops/setup)");
    let f = fixture();
    let inbox = weft_l1_poster::deploy_inbox(&anvil.endpoint(), key(5), &f.committee)
        .await
        .expect("deploy inbox");
    (anvil, inbox, f)
}

/// The whole committee in memory, cutting batches of `target_bytes` in `mode`.
pub fn committee(f: &CommitteeFixture, mode: PostMode, target_bytes: usize) -> MemoryCommittee {
    let params = CutterParams {
        mode,
        target_bytes,
        interval_ms: INTERVAL_MS,
    };
    MemoryCommittee::new(&f.committee, signers(f, 4), params)
}

/// Commits `sub_dags` seeded sub-DAGs of 0..max_txs transactions of 100–400 bytes each,
/// `SUB_DAG_MS` apart, then one empty sub-DAG long after that closes the open batch: every
/// transaction pushed is then in a closed, certified batch.
pub fn extend(c: &MemoryCommittee, seed: u64, sub_dags: usize, max_txs: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = c.log().all().last().map_or(0, |s| s.timestamp + 1);
    for i in 0..sub_dags as u64 {
        let n = if rng.gen_bool(0.1) {
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
        c.push_at(start + i * SUB_DAG_MS, txs).expect("cut");
    }
    let last = start + sub_dags as u64 * SUB_DAG_MS;
    c.push_at(last + 10 * INTERVAL_MS, Vec::new()).expect("cut");
    // Every pushed transaction is now in a closed batch.
    debug_assert_eq!(
        c.batches().last().map(|b| b.batch.end.sub_dag),
        Some(c.log().len() - 1)
    );
}

/// Commits one sub-DAG of `transactions`, then the empty one that closes its batch.
pub fn commit(c: &MemoryCommittee, transactions: Vec<Bytes>) {
    let at = c.log().all().last().map_or(0, |s| s.timestamp + 1);
    c.push_at(at, transactions).expect("cut");
    c.push_at(at + 10 * INTERVAL_MS, Vec::new()).expect("cut");
}

/// A committee with `sub_dags` seeded sub-DAGs committed (see [`extend`]).
pub fn stream(
    f: &CommitteeFixture,
    mode: PostMode,
    target_bytes: usize,
    seed: u64,
    sub_dags: usize,
    max_txs: usize,
) -> MemoryCommittee {
    let c = committee(f, mode, target_bytes);
    extend(&c, seed, sub_dags, max_txs);
    c
}

/// The sub-DAGs the closed batches hold: what L1 must give back once they are all posted.
pub fn closed_stream(c: &MemoryCommittee) -> Vec<OrderedSubDag> {
    let end = c.batches().last().map_or(0, |b| b.batch.end.sub_dag);
    let mut all = c.log().all();
    all.truncate(end as usize);
    all
}

/// Number of batches the committee has closed.
pub fn closed(c: &MemoryCommittee) -> u64 {
    c.batches().len() as u64
}

/// A certificate for a batch the committee never cut: sub-DAG `index`'s attestation names
/// `data_hash` as batch `sequence`, signed by the first `signers` authorities.
pub fn forge(
    f: &CommitteeFixture,
    signers_: usize,
    index: u64,
    sequence: u64,
    data_hash: B256,
) -> (Inbox::Attested, Vec<u8>) {
    let header = AttestedHeader {
        committee: committee_id(&f.committee),
        index,
        leader_round: 2 * index,
        timestamp: 0,
        tx_count: 0,
        tx_root: B256::ZERO,
        chains_root: B256::ZERO,
        previous: B256::ZERO,
        batches: BatchRefs {
            first: sequence,
            hashes: vec![data_hash],
        },
    };
    let digest = header.digest();
    let signatures: Vec<CertificateSignature> = signers(f, signers_)
        .iter()
        .map(|(a, k)| CertificateSignature {
            authority: a.0,
            signature: k.sign(&digest),
        })
        .collect();
    (to_inbox(&header), pack_signatures(&signatures))
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

/// Submits `data` as batch `sequence` directly (bypassing the poster), with `attested` and
/// its packed `signatures`, and waits for it.
pub async fn submit(
    l1: &L1,
    signer: &Signer,
    sequence: u64,
    data: &[u8],
    attested: Inbox::Attested,
    signatures: Vec<u8>,
) -> Result<(), L1Error> {
    use alloy::sol_types::SolCall;
    let input = Inbox::submitBatchCall {
        sequence,
        data: data.to_vec().into(),
        attested,
        signatures: signatures.into(),
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

/// Submits a batch the committee certified (batch `sequence` of `c`) as `signer`.
pub async fn submit_certified(
    l1: &L1,
    signer: &Signer,
    c: &MemoryCommittee,
    sequence: u64,
) -> Result<(), L1Error> {
    let batch = c.batches()[sequence as usize].clone();
    let header = batch.certificate.attestation.header();
    submit(
        l1,
        signer,
        sequence,
        &batch.batch.data,
        to_inbox(&header),
        pack_signatures(&batch.certificate.signatures),
    )
    .await
}
