//! The ordered stream on a live committee of four `weft node run` processes: signed transfers
//! on two chain ids go to the four JSON-RPC ingresses; then
//! - a consumer that never disconnects reads every sub-DAG from index 0 on authority 0;
//! - a consumer that disconnects at seeded random points (mid-sub-DAG included) and
//!   resubscribes from the index after its last complete sub-DAG, each time from a random
//!   authority, reconstructs exactly the same sequence (indices, leader rounds, timestamps and
//!   transactions: the authorities' logs agree, timestamps included);
//! - a consumer of `/1338` gets exactly that rollup's transactions, at the same positions.
//!
//! - a `certified` consumer gets each sub-DAG with its finality certificate, which verifies
//!   against `committee.json` alone and attests exactly the transactions it came with.
//!
//! Every transaction sent is in the sequence exactly once, and the timestamps never decrease
//! and lie within the run's wall-clock span.

mod common;
#[path = "../../rpc/tests/common/mod.rs"]
mod signed;

use alloy_primitives::keccak256;
use common::{wait_committed, Cluster, RpcClient};
use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;
use signed::Seen;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use weft_rpc::stream::{SUBSCRIBE, UNSUBSCRIBE};
use weft_rpc::SubDagPart;

const CHAINS: [u64; 2] = [1337, 1338];
const TRANSACTIONS: u64 = 400;
const ACCOUNTS: u64 = 20;
/// Guard against a hang; never used to wait for something to happen.
const GUARD: Duration = Duration::from_secs(120);

async fn connect(endpoint: &str, path: &str) -> WsClient {
    let url = format!("{}{path}", endpoint.replacen("http://", "ws://", 1));
    WsClientBuilder::default()
        .max_response_size(16 << 20)
        .build(url)
        .await
        .expect("a WebSocket connection")
}

async fn subscribe(client: &WsClient, from: u64) -> Subscription<SubDagPart> {
    client
        .subscribe(
            SUBSCRIBE,
            rpc_params![json!({ "fromIndex": from })],
            UNSUBSCRIBE,
        )
        .await
        .expect("a subscription")
}

async fn read(sub: &mut Subscription<SubDagPart>, last: u64, budget: usize) -> Vec<Seen> {
    signed::read_sub_dags(sub, last, budget, GUARD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_that_resubscribe_anywhere_see_one_sequence_and_a_filter_sees_one_rollup() {
    let began = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut cluster = Cluster::start(4, &CHAINS);
    let endpoints = cluster.endpoints.clone();

    // One sending thread per authority; each transaction's hash as the node answered it.
    let senders: Vec<_> = (0..4u64)
        .map(|a| {
            let endpoint = endpoints[a as usize].clone();
            std::thread::spawn(move || {
                let mut client = RpcClient::new(&endpoint);
                let mut sent = Vec::new();
                for k in (a..TRANSACTIONS).step_by(4) {
                    let chain = CHAINS[(k % 2) as usize];
                    let raw = signed::transfer(chain, k % ACCOUNTS, k / ACCOUNTS);
                    let hash = client.send_raw(chain, &raw).expect("acknowledged");
                    sent.push((hash, chain));
                }
                sent
            })
        })
        .collect();
    let sent: Vec<(String, u64)> = tokio::task::spawn_blocking(move || {
        senders
            .into_iter()
            .flat_map(|s| s.join().expect("a sender"))
            .collect()
    })
    .await
    .unwrap();
    let missing = {
        let (endpoint, sent) = (endpoints[0].clone(), sent.clone());
        tokio::task::spawn_blocking(move || wait_committed(&endpoint, &sent))
            .await
            .unwrap()
    };
    assert!(missing.is_empty(), "not committed: {missing:?}");
    let next = RpcClient::new(&endpoints[0])
        .call(CHAINS[0], "weft_subDagIndex", json!([]))
        .unwrap()
        .as_u64()
        .unwrap();
    let last = next - 1;

    let steady = connect(&endpoints[0], "/").await;
    let mut sub = subscribe(&steady, 0).await;
    let expected = read(&mut sub, last, usize::MAX).await;
    assert_eq!(
        expected.len() as u64,
        next,
        "every index from 0, once, in order"
    );
    let ended = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for (k, w) in expected.windows(2).enumerate() {
        assert_eq!(
            w[1].0,
            w[0].0 + 1,
            "sub-DAG {k} is followed by the next index"
        );
        assert!(w[1].2 >= w[0].2, "timestamps never decrease");
    }
    let stamped: Vec<u64> = expected.iter().map(|s| s.2).filter(|t| *t > 0).collect();
    assert!(
        stamped
            .iter()
            .all(|t| *t + 1_000 >= began && *t <= ended + 2_000),
        "timestamps within the run: {began}..{ended}, got {stamped:?}"
    );
    let mut count: HashMap<String, usize> = HashMap::new();
    for (_, _, _, txs) in &expected {
        for (_, _, raw) in txs {
            *count.entry(format!("{:#x}", keccak256(raw))).or_default() += 1;
        }
    }
    for (hash, _) in &sent {
        assert_eq!(
            count.get(hash.as_str()),
            Some(&1),
            "{hash} once in the stream"
        );
    }

    // Disconnects at random points, resubscribes from a random authority. A read of at most
    // `cap` parts completes at most `cap` sub-DAGs, so there are at least `next / cap`
    // reconnections whatever the run's length.
    let cap = (next / 5).max(1) as usize;
    let mut rng = StdRng::seed_from_u64(2026);
    let mut got: Vec<Seen> = Vec::new();
    let mut reconnects: u64 = 0;
    while (got.len() as u64) < next {
        let endpoint = &endpoints[rng.gen_range(0..4)];
        let client = connect(endpoint, "/").await;
        let mut sub = subscribe(&client, got.len() as u64).await;
        got.extend(read(&mut sub, last, rng.gen_range(1..=cap)).await);
        reconnects += 1;
    }
    assert!(
        reconnects >= next.min(5),
        "only {reconnects} reconnections for {next} sub-DAGs"
    );
    assert_eq!(
        got, expected,
        "the resubscribing consumer saw another sequence"
    );

    // The second rollup's consumer, on its own endpoint at authority 2.
    let rollup = connect(&endpoints[2], "/1338").await;
    let mut sub = subscribe(&rollup, 0).await;
    let filtered = read(&mut sub, last, usize::MAX).await;
    let wanted: Vec<Seen> = expected
        .iter()
        .map(|(i, r, t, txs)| {
            let txs = txs.iter().filter(|x| x.1 == Some(1338)).cloned().collect();
            (*i, *r, *t, txs)
        })
        .collect();
    assert_eq!(filtered, wanted);
    let in_rollup = filtered.iter().map(|s| s.3.len()).sum::<usize>();
    assert_eq!(in_rollup as u64, TRANSACTIONS / 2);

    // A consumer that wants certificates, on authority 1.
    let committee = weft_config::load_committee(&cluster.dir.path().join("committee.json"))
        .expect("the committee file");
    let certified = connect(&endpoints[1], "/").await;
    let mut sub: Subscription<SubDagPart> = certified
        .subscribe(
            SUBSCRIBE,
            rpc_params![json!({ "fromIndex": 0, "certified": true })],
            UNSUBSCRIBE,
        )
        .await
        .expect("a certified subscription");
    let mut transactions: Vec<alloy_primitives::B256> = Vec::new();
    let mut checked = 0u64;
    while checked < next {
        let part = tokio::time::timeout(GUARD, sub.next())
            .await
            .expect("a part in time")
            .expect("the subscription goes on")
            .expect("a part");
        assert_eq!(part.index, checked, "in order, from 0");
        transactions.extend(part.transactions.iter().map(|t| keccak256(&t.raw)));
        match (part.last, &part.certificate) {
            (false, None) => continue,
            (true, Some(c)) => {
                assert_eq!(c.verify(&committee), Ok(()), "sub-DAG {}", part.index);
                let a = &c.attestation;
                assert_eq!(
                    (a.index, a.timestamp, a.tx_count),
                    (part.index, part.timestamp, part.transaction_count)
                );
                let root = weft_attest::Tree::new(&transactions).root();
                assert_eq!(a.tx_root, root, "sub-DAG {}'s transactions", part.index);
            }
            (last, c) => panic!("sub-DAG {}: last {last}, certificate {c:?}", part.index),
        }
        transactions.clear();
        checked += 1;
    }

    drop((steady, rollup, certified));
    cluster.stop();
}
