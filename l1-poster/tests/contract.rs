//! The inbox contract against a real anvil: the artifact matches the source, only allowed
//! posters post, sequence numbers are contiguous, commitments chain, forced txs are indexed.

mod common;

use alloy::primitives::{keccak256, Bytes, B256};
use alloy::sol_types::{SolCall, SolEvent};
use common::{key, l1_with_inbox, submit};
use weft_l1_poster::inbox::{ForceIncluded, Inbox, InboxErrors};
use weft_l1_poster::l1::{FeePolicy, L1Error, Outgoing, Signer, L1};

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

#[tokio::test]
async fn only_posters_post_contiguous_sequences_into_a_hash_chain() {
    let (anvil, inbox) = l1_with_inbox(&[0, 1], &[]).await;
    let l1 = L1::new(&anvil.endpoint(), inbox).unwrap();
    let poster = Signer::new(&l1, key(0)).await.unwrap();
    let other_poster = Signer::new(&l1, key(1)).await.unwrap();
    let outsider = Signer::new(&l1, key(3)).await.unwrap();

    let err = submit(&l1, &outsider, 0, b"x").await.unwrap_err();
    assert!(
        matches!(err, L1Error::Rejected(InboxErrors::NotPoster(ref e)) if e.sender == outsider.address),
        "{err:?}"
    );
    submit(&l1, &poster, 0, b"first").await.unwrap();
    submit(&l1, &other_poster, 1, b"second").await.unwrap();
    for (sequence, expected) in [(1u64, 2u64), (3, 2)] {
        let err = submit(&l1, &poster, sequence, b"dup or gap")
            .await
            .unwrap_err();
        match err {
            L1Error::Rejected(InboxErrors::WrongSequence(e)) => {
                assert_eq!((e.expected, e.got), (expected, sequence))
            }
            other => panic!("{other:?}"),
        }
    }
    let c0 = keccak256([B256::ZERO.as_slice(), keccak256(b"first").as_slice()].concat());
    let c1 = keccak256([c0.as_slice(), keccak256(b"second").as_slice()].concat());
    let head = l1.inbox_head(None).await.unwrap();
    assert_eq!((head.next_sequence, head.commitment), (2, c1));
}

#[tokio::test]
async fn force_include_is_open_to_anyone_and_indexed() {
    let (anvil, inbox) = l1_with_inbox(&[0], &[]).await;
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
