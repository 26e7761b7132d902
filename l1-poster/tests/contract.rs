//! The inbox contract against a real anvil: the artifact matches the source, only batches the
//! committee certified are accepted, sequence numbers are contiguous, commitments chain,
//! forced txs are indexed.

mod common;

use alloy::primitives::{keccak256, Bytes, B256, U256};
use alloy::sol_types::{SolCall, SolEvent};
use common::{closed, closed_stream, forge, key, l1_with_inbox, stream, submit, submit_certified};
use weft_l1_poster::attested::{pack_signatures, to_inbox};
use weft_l1_poster::batch::{decode_batch, encode_batch};
use weft_l1_poster::inbox::{ForceIncluded, Inbox, InboxErrors};
use weft_l1_poster::l1::{FeePolicy, L1Error, Outgoing, Signer, L1};
use weft_l1_poster::{read_inbox, PostMode};

/// Recompiles with solcjs (ops/setup installs it) and checks each committed artifact is what
/// its source compiles to.
#[test]
fn artifacts_match_sources() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts");
    let tmp = tempfile::tempdir().unwrap();
    for name in ["Inbox", "CommitteeQuorum"] {
        let out = tmp.path().join(format!("{name}.json"));
        let status = std::process::Command::new(dir.join("build.sh"))
            .arg(&out)
            .arg(name)
            .status();
        match status {
            Ok(s) if s.success() => {}
            other => {
                panic!("contracts/build.sh failed (is solcjs installed? run ops/setup): {other:?}")
            }
        }
        let rebuilt = std::fs::read_to_string(&out).unwrap();
        let committed = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        assert_eq!(
            rebuilt, committed,
            "contracts/{name}.json is stale: run l1-poster/contracts/build.sh OUT {name}"
        );
    }
}

/// The judged case: one authority's key posts batches the committee never ordered. Each is
/// refused, and the honest poster's certified batches then continue the chain with no gap.
#[tokio::test]
async fn the_inbox_refuses_what_the_committee_did_not_certify_and_the_chain_continues() {
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let source = stream(&f, PostMode::Calldata, 3_000, 5, 60, 5);
    assert!(closed(&source) >= 4, "the stream must give several batches");
    let l1 = L1::new(&anvil.endpoint(), inbox).unwrap();
    let honest = Signer::new(&l1, key(0)).await.unwrap();
    let byzantine = Signer::new(&l1, key(1)).await.unwrap();
    submit_certified(&l1, &honest, &source, 0).await.unwrap();

    let batch = source.batches()[1].clone();
    let header = batch.certificate.attestation.header();
    let certificate = pack_signatures(&batch.certificate.signatures);
    let with_certificate = |data: &[u8]| (data.to_vec(), to_inbox(&header), certificate.clone());
    // Its own transactions in batch 1's place, under batch 1's certificate.
    let mut frames = decode_batch(&batch.batch.data).unwrap();
    frames[0].transactions[0] = bytes::Bytes::from_static(b"the byzantine poster's own tx");
    let own = with_certificate(&encode_batch(&frames));
    // The same transactions with two sub-DAGs' contents swapped.
    let mut frames = decode_batch(&batch.batch.data).unwrap();
    let (i, j) = (0, frames.len() - 1);
    assert!(i < j, "batch 1 must span two sub-DAGs");
    let (a, b) = (frames[i].clone(), frames[j].clone());
    frames[i].transactions = b.transactions;
    frames[i].total = b.total;
    frames[j].transactions = a.transactions;
    frames[j].total = a.total;
    let swapped = with_certificate(&encode_batch(&frames));
    // Batch 2's certified bytes and certificate, offered as batch 1.
    let next = source.batches()[2].clone();
    let early = (
        next.batch.data.clone(),
        to_inbox(&next.certificate.attestation.header()),
        pack_signatures(&next.certificate.signatures),
    );
    // Its own batch under an attestation that names it, signed by 2 of 4 (stake 2 < 3).
    let forged_data = encode_batch(&frames);
    let (attested, signatures) = forge(&f, 2, 1, 1, keccak256(&forged_data));
    let below_quorum = (forged_data.clone(), attested, signatures);
    // The committee's signatures on batch 1's attestation, re-pointed at its own data.
    let mut repointed = to_inbox(&header);
    repointed.batches[(1 - repointed.firstBatch) as usize] = keccak256(&forged_data);
    let bad_signatures = (forged_data, repointed, certificate.clone());

    for (what, (data, attested, signatures)) in [
        ("own transactions", own),
        ("swapped sub-DAGs", swapped),
        ("another batch's certificate", early),
        ("below quorum", below_quorum),
        ("signatures of another attestation", bad_signatures),
    ] {
        let err = submit(&l1, &byzantine, 1, &data, attested, signatures)
            .await
            .unwrap_err();
        let refused = match &err {
            L1Error::Rejected(InboxErrors::DataMismatch(_)) => "data mismatch",
            L1Error::Rejected(InboxErrors::NotAttested(e)) if e.sequence == 1 => "not attested",
            L1Error::Rejected(InboxErrors::BelowQuorum(e)) => {
                assert_eq!((e.stake, e.quorum), (U256::from(2), U256::from(3)));
                "below quorum"
            }
            L1Error::Rejected(InboxErrors::BadSignature(_)) => "bad signature",
            other => panic!("{what}: unexpected {other:?}"),
        };
        println!("{what}: refused ({refused})");
    }
    assert_eq!(l1.inbox_head(None).await.unwrap().next_sequence, 1);

    // The honest poster goes on from batch 1: the chain has no gap.
    for sequence in 1..closed(&source) {
        submit_certified(&l1, &honest, &source, sequence)
            .await
            .unwrap();
    }
    let (report, sub_dags) = read_inbox(&anvil.endpoint(), inbox, Some(&f.committee))
        .await
        .unwrap();
    assert_eq!(report.first_inconsistency, None, "{report}");
    assert_eq!(
        (report.batches, report.attested),
        (closed(&source), closed(&source))
    );
    assert_eq!(sub_dags, closed_stream(&source));
}

/// Certified batches only in sequence, each once, into a hash chain of their data hashes.
#[tokio::test]
async fn certified_batches_enter_contiguous_sequences_into_a_hash_chain() {
    let (anvil, inbox, f) = l1_with_inbox(&[]).await;
    let source = stream(&f, PostMode::Calldata, 3_000, 6, 30, 20);
    let l1 = L1::new(&anvil.endpoint(), inbox).unwrap();
    let poster = Signer::new(&l1, key(0)).await.unwrap();
    let other_poster = Signer::new(&l1, key(3)).await.unwrap();
    submit_certified(&l1, &poster, &source, 0).await.unwrap();
    // Any key may carry a certified batch.
    submit_certified(&l1, &other_poster, &source, 1)
        .await
        .unwrap();
    for (sequence, expected) in [(1u64, 2u64), (3, 2)] {
        let batch = source.batches()[sequence as usize].clone();
        let err = submit(
            &l1,
            &poster,
            sequence,
            &batch.batch.data,
            to_inbox(&batch.certificate.attestation.header()),
            pack_signatures(&batch.certificate.signatures),
        )
        .await
        .unwrap_err();
        match err {
            L1Error::Rejected(InboxErrors::WrongSequence(e)) => {
                assert_eq!((e.expected, e.got), (expected, sequence))
            }
            other => panic!("{other:?}"),
        }
    }
    let hashes: Vec<B256> = source.batches()[..2]
        .iter()
        .map(|b| b.batch.data_hash)
        .collect();
    let c0 = keccak256([B256::ZERO.as_slice(), hashes[0].as_slice()].concat());
    let c1 = keccak256([c0.as_slice(), hashes[1].as_slice()].concat());
    let head = l1.inbox_head(None).await.unwrap();
    assert_eq!((head.next_sequence, head.commitment), (2, c1));
}

#[tokio::test]
async fn force_include_is_open_to_anyone_and_indexed() {
    let (anvil, inbox, _) = l1_with_inbox(&[]).await;
    let l1 = L1::new(&anvil.endpoint(), inbox).unwrap();
    let anyone = Signer::new(&l1, key(4)).await.unwrap();
    for payload in [&b"tx-a"[..], b"tx-b"] {
        let input = Inbox::forceIncludeCall {
            transaction: Bytes::copy_from_slice(payload),
        };
        let tx = Outgoing {
            to: Some(inbox),
            input: input.abi_encode().into(),
            sidecar: None,
        };
        let fees = l1.fees(&FeePolicy::default(), false).await.unwrap();
        let gas = anyone.estimate(&l1, &tx, fees).await.unwrap();
        let nonce = anyone.nonce(&l1).await.unwrap();
        let hash = anyone.send(&l1, &tx, nonce, gas, fees).await.unwrap();
        let receipt = l1.wait_receipt(hash).await.unwrap().expect("automine");
        assert!(receipt.status());
    }
    let filter = alloy::rpc::types::Filter::new()
        .address(inbox)
        .event_signature(ForceIncluded::SIGNATURE_HASH)
        .from_block(0);
    use alloy::providers::Provider;
    let logs = l1.provider.get_logs(&filter).await.unwrap();
    let events: Vec<_> = logs
        .iter()
        .map(|l| ForceIncluded::decode_log(&l.inner).unwrap().data)
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].index, events[1].index), (0, 1));
    assert_eq!(events[1].transaction.as_ref(), b"tx-b");
    assert_eq!(events[0].sender, anyone.address);
}

#[tokio::test]
async fn force_include_refuses_an_empty_or_oversized_transaction_with_its_reason() {
    let (anvil, inbox, _) = l1_with_inbox(&[]).await;
    let l1 = L1::new(&anvil.endpoint(), inbox).unwrap();
    let anyone = Signer::new(&l1, key(4)).await.unwrap();
    let max = l1.inbox_max_forced_tx_bytes().await.unwrap();
    assert_eq!(max, 128 * 1024);
    for payload in [vec![], vec![7u8; max + 1]] {
        let input = Inbox::forceIncludeCall {
            transaction: Bytes::from(payload.clone()),
        };
        let tx = Outgoing {
            to: Some(inbox),
            input: input.abi_encode().into(),
            sidecar: None,
        };
        let fees = l1.fees(&FeePolicy::default(), false).await.unwrap();
        match anyone.estimate(&l1, &tx, fees).await.unwrap_err() {
            L1Error::Rejected(InboxErrors::EmptyForcedTx(_)) => assert!(payload.is_empty()),
            L1Error::Rejected(InboxErrors::ForcedTxTooLarge(e)) => {
                assert_eq!((e.size, e.max), (U256::from(max + 1), U256::from(max)))
            }
            other => panic!("{other:?}"),
        }
    }
}
