//! An authority down for longer than `gc_depth` rounds comes back: its peers keep their
//! garbage-collected certificates in the store for `certificate_retention_rounds` more, so
//! the restarted authority fetches the DAG it missed by range, replays it through consensus
//! and outputs the sequence the others output, each transaction once. With the certificates
//! deleted at GC (retention 0, the behaviour before this test), it stayed at its old round
//! for good: measured on 2026-12-07 with an authority killed for 30 s.

mod common;
#[path = "../../rpc/tests/common/mod.rs"]
mod signed;

use common::{wait_committed, Cluster};
use std::collections::HashMap;
use weft_storage::Store;

const CHAIN: u64 = 1001;
const VICTIM: usize = 3;
const GC_DEPTH: u64 = 20;

/// Sends transfers `nonces` of account 0 to `endpoint`; returns them as (hash, chain).
fn send(endpoint: &str, nonces: std::ops::Range<u64>) -> Vec<(String, u64)> {
    let raws = nonces.map(|nonce| signed::transfer(CHAIN, 0, nonce));
    common::send_all(endpoint, CHAIN, raws)
}

#[test]
fn an_authority_down_for_more_than_gc_depth_rounds_catches_up() {
    let mut cluster = Cluster::start_configured(
        4,
        &[CHAIN],
        |_, _| Vec::new(),
        |p| p["gc_depth"] = GC_DEPTH.into(),
    );
    let first = send(&cluster.endpoints[0], 0..50);
    assert!(wait_committed(&cluster.endpoints[VICTIM], &first).is_empty());
    cluster.wait_round(VICTIM, 2 * GC_DEPTH);
    cluster.kill(VICTIM);

    // Its DAG reaches at most gc_depth rounds (and the rounds proposed ahead of a commit)
    // above its GC round; the others go on until they are far beyond that.
    let gc_round = {
        let dir = cluster.dir.path().join(format!("store-{VICTIM}"));
        let store = Store::open(&dir, &weft_node::columns::all()).unwrap();
        let records = store.map::<String, u64>(weft_storage::RECORDS);
        let key = weft_primary::GC_ROUND_KEY.to_string();
        records.get(&key).unwrap().expect("it garbage-collected")
    };
    let missed = send(&cluster.endpoints[0], 50..100);
    cluster.wait_round(0, gc_round + 5 * GC_DEPTH);

    let endpoint = cluster.restart(VICTIM).to_string();
    assert!(wait_committed(&endpoint, &missed).is_empty());
    let last = send(&endpoint, 100..150);
    assert!(wait_committed(&endpoint, &last).is_empty());
    assert!(wait_committed(&cluster.endpoints[0], &last).is_empty());
    let expected: HashMap<String, u64> = first.into_iter().chain(missed).chain(last).collect();
    cluster.stop_and_check_stores(&expected);
}
