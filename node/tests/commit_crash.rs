//! `kill -9` between two sub-DAG writes of one commit: authority 3 of four `weft node run`
//! processes is restarted with `WEFT_CRASH_MID_COMMIT`, so that it aborts right after the
//! first sub-DAG of a Bullshark call that commits several is durable and its commit notice
//! (on which the primary garbage-collects) is sent. Its store then holds the consensus state
//! of exactly its last log record, and restarted normally it recovers, commits the rest of
//! that call and what follows, and outputs the sequence the others output, each transaction
//! once. Before each sub-DAG carried its own consensus state, the persisted state could be
//! one call older than the store's GC and the restart failed with `MissingParent` (#16).
//!
//! A 1 ms header delay makes leaders committed through the next leader (several sub-DAGs in
//! one call) frequent; the crash comes once garbage collection runs. The victim is down for
//! a process restart, far less than `GC_DEPTH` rounds: an authority that falls further behind
//! than that does not catch up (see the README's alarms).

mod common;
#[path = "../../rpc/tests/common/mod.rs"]
mod signed;

use common::{wait_committed, Cluster};
use std::collections::HashMap;
use weft_node::executor::{load_state, CRASH_MID_COMMIT_ENV};
use weft_node::CommittedLog;
use weft_storage::Store;

const CHAIN: u64 = 1001;
const VICTIM: usize = 3;
const GC_DEPTH: u64 = 100;

/// Sends transfers `nonces` of account 0 to `endpoint`; returns them as (hash, chain).
fn send(endpoint: &str, nonces: std::ops::Range<u64>) -> Vec<(String, u64)> {
    let raws = nonces.map(|nonce| signed::transfer(CHAIN, 0, nonce));
    common::send_all(endpoint, CHAIN, raws)
}

#[test]
fn a_kill_9_between_the_sub_dags_of_one_commit_restarts_cleanly() {
    let mut cluster = Cluster::start_configured(
        4,
        &[CHAIN],
        |_, _| Vec::new(),
        |p| {
            p["max_header_delay_ms"] = 1.into();
            p["gc_depth"] = GC_DEPTH.into();
        },
    );
    let first = send(&cluster.endpoints[0], 0..50);
    assert!(wait_committed(&cluster.endpoints[VICTIM], &first).is_empty());

    // Garbage collection has begun everywhere.
    cluster.wait_round(VICTIM, 2 * GC_DEPTH);
    let more = send(&cluster.endpoints[0], 50..100);

    // Restarted with the failpoint, it aborts at the first commit of several sub-DAGs.
    cluster.kill(VICTIM);
    cluster.set_env(VICTIM, &[(CRASH_MID_COMMIT_ENV, "1")]);
    let status = cluster.run_until_exit(VICTIM);
    assert!(!status.success(), "it aborted: {status}");
    {
        let dir = cluster.dir.path().join(format!("store-{VICTIM}"));
        let store = Store::open(&dir, &weft_node::columns::all()).unwrap();
        let log = CommittedLog::open(&store).unwrap();
        let state = load_state(&store).unwrap().expect("a persisted state");
        let gc_round = store
            .map::<String, u64>(weft_storage::RECORDS)
            .get(&weft_primary::GC_ROUND_KEY.to_string())
            .unwrap();
        assert!(
            gc_round > Some(0),
            "the primary had garbage-collected: {gc_round:?}"
        );
        assert_eq!(
            state.next_sub_dag_index,
            log.next_index(),
            "the persisted state is the one of the last sub-DAG written, not of the call's last"
        );
    }

    // Restarted normally, it recovers and goes on with the others.
    cluster.set_env(VICTIM, &[]);
    let endpoint = cluster.restart(VICTIM).to_string();
    assert!(wait_committed(&endpoint, &more).is_empty());
    let last = send(&endpoint, 100..150);
    assert!(wait_committed(&endpoint, &last).is_empty());
    assert!(wait_committed(&cluster.endpoints[0], &last).is_empty());
    let expected: HashMap<String, u64> = first.into_iter().chain(more).chain(last).collect();
    cluster.stop_and_check_stores(&expected);
}
