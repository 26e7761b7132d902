//! `kill -9` between signing and sending: authority 3 of four `weft node run` processes is
//! restarted with `WEFT_CRASH_AFTER_SIGNING`, so that it aborts right after its next
//! attestation is durable and before any peer got it. Restarted again (normally), it must not
//! sign that sub-DAG again: the stored signature stays the one made before the crash, it goes
//! on from the next sub-DAG, holds the certificate of that one, and every attestation it ever
//! stored is the one the committee certified. Its L1 batches too (cut every 300 ms of
//! consensus time here, so that several close after the restart) are the reference's, byte
//! for byte: the cutter resumed where it stopped. Each is named by the attestation of a
//! sub-DAG after the one that closed it.

mod common;
#[path = "../../rpc/tests/common/mod.rs"]
mod signed;

use bytes::Bytes;
use common::{wait_committed, Cluster};
use std::path::Path;
use weft_attest::{FinalityCertificate, SignedAttestation};
use weft_node::attest::{ATTESTATION_LAST_KEY, CRASH_AFTER_SIGNING_ENV};
use weft_node::columns;
use weft_storage::{Column, Store, RECORDS};
use weft_types::codec::decode_message;

const CHAIN: u64 = 1001;
const VICTIM: usize = 3;

/// Sends transfers `nonces` of account 0 to `endpoint`; returns them as (hash, chain).
fn send(endpoint: &str, nonces: std::ops::Range<u64>) -> Vec<(String, u64)> {
    let raws = nonces.map(|nonce| signed::transfer(CHAIN, 0, nonce));
    common::send_all(endpoint, CHAIN, raws)
}

/// A stopped authority's newest own signature and every own attestation and certificate in
/// its store, by index.
struct Stored {
    last: SignedAttestation,
    own: Vec<(u64, SignedAttestation)>,
    certificates: Vec<(u64, FinalityCertificate)>,
    /// Keyed by (naming sub-DAG, sequence).
    l1_batches: Vec<((u64, u64), Bytes)>,
}

fn decode<T: weft_types::codec::Decode>(bytes: Bytes) -> T {
    decode_message(bytes, usize::MAX).expect("a stored record decodes")
}

fn all<T: weft_types::codec::Decode>(store: &Store, column: Column) -> Vec<(u64, T)> {
    let map = store.map::<u64, Bytes>(column);
    let entries = map.iter().unwrap().into_iter();
    entries.map(|(k, v)| (k, decode(v))).collect()
}

fn stored(dir: &Path, i: usize) -> Stored {
    let store = Store::open(&dir.join(format!("store-{i}")), &columns::all()).unwrap();
    let consensus = store.map::<String, Bytes>(RECORDS);
    let last = consensus
        .get(&ATTESTATION_LAST_KEY.to_string())
        .unwrap()
        .expect("an attestation was signed");
    let l1_batches = store.map::<(u64, u64), Bytes>(columns::L1_BATCHES);
    Stored {
        l1_batches: l1_batches.iter().unwrap(),
        last: decode(last),
        own: all(&store, columns::ATTESTATIONS),
        certificates: all(&store, columns::FINALITY_CERTIFICATES),
    }
}

#[test]
fn an_attestation_signed_before_a_kill_9_is_resent_never_signed_again() {
    let mut cluster = Cluster::start_configured(
        4,
        &[CHAIN],
        |_, _| Vec::new(),
        |p| p["l1_batches"]["interval_ms"] = 300.into(),
    );
    let dir = cluster.dir.path().to_path_buf();
    let first = send(&cluster.endpoints[0], 0..50);
    assert!(wait_committed(&cluster.endpoints[VICTIM], &first).is_empty());

    // Restarted with the failpoint, it aborts after the first signature it makes.
    cluster.kill(VICTIM);
    cluster.set_env(VICTIM, &[(CRASH_AFTER_SIGNING_ENV, "0")]);
    let more = send(&cluster.endpoints[0], 50..100);
    let status = cluster.run_until_exit(VICTIM);
    assert!(!status.success(), "it aborted: {status}");
    let crashed = stored(&dir, VICTIM);
    let k = crashed.last.attestation.index;

    // Restarted normally, it catches up and signs what follows.
    cluster.set_env(VICTIM, &[]);
    let endpoint = cluster.restart(VICTIM).to_string();
    assert!(wait_committed(&endpoint, &more).is_empty());
    let last = send(&endpoint, 100..150);
    assert!(wait_committed(&cluster.endpoints[0], &last).is_empty());
    assert!(wait_committed(&endpoint, &last).is_empty());
    cluster.stop();

    let victim = stored(&dir, VICTIM);
    let reference = stored(&dir, 0);
    let own_k = victim.own.iter().find(|(i, _)| *i == k).map(|(_, s)| s);
    assert_eq!(
        own_k,
        Some(&crashed.last),
        "the stored signature of {k} is the one made before the crash"
    );
    assert!(
        victim.last.attestation.index > k,
        "it went on signing after {k}"
    );
    assert!(
        victim.certificates.iter().any(|(i, _)| *i == k),
        "sub-DAG {k} is certified at the victim too"
    );
    // Every attestation the victim ever stored is the one the committee certified.
    for (index, signed) in &victim.own {
        let certified = reference
            .certificates
            .iter()
            .find(|(i, _)| i == index)
            .map(|(_, c)| c.attestation.digest());
        if let Some(digest) = certified {
            assert_eq!(signed.attestation.digest(), digest, "sub-DAG {index}");
        }
    }
    let certified_own = victim
        .own
        .iter()
        .filter(|(i, _)| reference.certificates.iter().any(|(j, _)| j == i))
        .count();
    assert!(certified_own > 0, "the comparison covered something");
    // The victim cut the reference's L1 batches, before the crash and after it.
    let reference_batches: std::collections::BTreeMap<_, _> =
        reference.l1_batches.iter().cloned().collect();
    let mut compared_after = 0;
    for (key, record) in &victim.l1_batches {
        // Named by the attestation of a later sub-DAG than the one that closed it: the cut
        // of a sub-DAG runs while the committee certifies it.
        let batch = weft_l1_poster::ClosedBatch::from_record(record).unwrap();
        assert!(
            batch.end.sub_dag < key.0,
            "L1 batch {} ends at {:?} and is named by sub-DAG {}",
            key.1,
            batch.end,
            key.0
        );
        if let Some(theirs) = reference_batches.get(key) {
            assert_eq!(record, theirs, "L1 batch {key:?}");
            compared_after += usize::from(key.0 > k);
        }
    }
    assert!(
        compared_after > 0,
        "batches closed after the restart were compared"
    );
}
