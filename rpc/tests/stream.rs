//! The ordered stream over a real WebSocket, on an in-memory committed log: resubscription
//! from the last complete sub-DAG loses and repeats nothing, a chain filter (parameter or
//! endpoint) keeps exactly that chain's transactions, and a subscription from before the
//! retention is refused with the oldest index kept.

mod common;

use bytes::Bytes;
use common::*;
use jsonrpsee::core::client::{Error as ClientError, Subscription, SubscriptionClientT};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use weft_config::RpcParameters;
use weft_rpc::stream::{NOT_RETAINED_CODE, SUBSCRIBE, UNSUBSCRIBE};
use weft_rpc::{MemoryIndex, RpcServer, RpcServerArgs, RpcServerHandle, SubDagPart};
use weft_worker::TxSubmitter;

/// Guard against hangs; never used to wait for something to happen.
const GUARD: Duration = Duration::from_secs(30);

async fn start(log: Arc<MemoryLog>) -> (SocketAddr, RpcServerHandle) {
    let (submitter, _queue) = TxSubmitter::detached(16, 1024);
    let server = RpcServer::spawn(RpcServerArgs {
        address: "127.0.0.1:0".parse().unwrap(),
        parameters: RpcParameters {
            chain_ids: vec![10, 20],
            ..RpcParameters::default()
        },
        worker_max_transaction_size: 1024,
        submitters: vec![submitter],
        index: Arc::new(MemoryIndex::new(100)),
        source: log,
        preconfirmations: None,
        authority: 0,
        round: None,
        registry: prometheus::Registry::new(),
    })
    .await
    .unwrap();
    (server.local_address(), server)
}

async fn client(address: SocketAddr, path: &str) -> WsClient {
    WsClientBuilder::default()
        .build(format!("ws://{address}{path}"))
        .await
        .unwrap()
}

async fn subscribe(
    c: &WsClient,
    params: serde_json::Value,
) -> Result<Subscription<SubDagPart>, ClientError> {
    c.subscribe(SUBSCRIBE, rpc_params![params], UNSUBSCRIBE)
        .await
}

async fn read(sub: &mut Subscription<SubDagPart>, until: u64, budget: Option<usize>) -> Vec<Seen> {
    read_sub_dags(sub, until, budget.unwrap_or(usize::MAX), GUARD).await
}

/// Sub-DAG k holds transfers on chains 10 and 20 and one raw blob; one in five is large
/// enough to need several parts.
fn sub_dag(k: u64) -> Vec<Bytes> {
    let mut out = vec![
        Bytes::from(transfer(10, k, 0)),
        Bytes::from(transfer(20, k, 0)),
        Bytes::from(format!("raw blob {k}").into_bytes()),
    ];
    if k % 5 == 0 {
        out.extend((0..300).map(|n| Bytes::from(vec![n as u8; 1000])));
    }
    out
}

/// A consumer that disconnects at random points (mid-sub-DAG included) and resubscribes
/// from the index after its last complete sub-DAG ends up with exactly the sequence of one
/// that never disconnected, while the log grows under both.
#[tokio::test]
async fn a_consumer_that_resubscribes_sees_no_gap_and_no_duplicate() {
    const TOTAL: u64 = 40;
    let log = Arc::new(MemoryLog::default());
    for k in 0..10 {
        log.push(sub_dag(k));
    }
    let (address, server) = start(log.clone()).await;
    // The rest is committed while the consumers read.
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for k in 10..TOTAL {
                tokio::task::yield_now().await;
                log.push(sub_dag(k));
            }
        })
    };
    let steady = client(address, "/").await;
    let mut sub = subscribe(&steady, json!({ "fromIndex": 0 })).await.unwrap();
    let expected = read(&mut sub, TOTAL - 1, None).await;
    assert_eq!(expected.len() as u64, TOTAL);
    assert!(expected
        .windows(2)
        .all(|w| w[1].0 == w[0].0 + 1 && w[1].2 >= w[0].2));

    let mut rng = StdRng::seed_from_u64(11);
    let mut got: Vec<Seen> = Vec::new();
    let mut reconnects = 0;
    while got.len() < TOTAL as usize {
        let c = client(address, "/").await;
        let from = got.len() as u64;
        let mut sub = subscribe(&c, json!({ "fromIndex": from })).await.unwrap();
        // At most 7 parts a connection: at least 6 reconnections for the 48 parts.
        got.extend(read(&mut sub, TOTAL - 1, Some(rng.gen_range(1..8))).await);
        reconnects += 1;
        drop(sub);
        drop(c);
    }
    assert!(
        reconnects > 3,
        "the consumer disconnected only {reconnects} times"
    );
    assert_eq!(got, expected);
    writer.await.unwrap();
    server.shutdown().await;
}

/// A chain filter, by parameter or by the endpoint's namespace, keeps exactly that chain's
/// transactions at their positions in the sub-DAG; every sub-DAG is still sent.
#[tokio::test]
async fn a_chain_filter_keeps_exactly_that_rollups_transactions() {
    let log = Arc::new(MemoryLog::default());
    for k in 0..6 {
        log.push(sub_dag(k));
    }
    let (address, server) = start(log.clone()).await;
    let by_param = client(address, "/").await;
    let by_path = client(address, "/20").await;
    let mut a = subscribe(&by_param, json!({ "fromIndex": 0, "chainId": 20 }))
        .await
        .unwrap();
    let mut b = subscribe(&by_path, json!({ "fromIndex": 0 }))
        .await
        .unwrap();
    let (a, b) = (read(&mut a, 5, None).await, read(&mut b, 5, None).await);
    assert_eq!(a, b);
    assert_eq!(a.len(), 6);
    for (k, (index, _, _, txs)) in a.iter().enumerate() {
        assert_eq!(*index, k as u64);
        assert_eq!(txs, &vec![(1, Some(20), transfer(20, k as u64, 0))]);
    }
    // The endpoint's chain and another in the parameter contradict each other.
    let error = subscribe(&by_path, json!({ "chainId": 10 }))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("does not match"), "{error}");
    server.shutdown().await;
}

/// Below the retention: refused, with the oldest index kept in the message and the data.
#[tokio::test]
async fn a_subscription_from_before_the_retention_names_the_oldest_index_kept() {
    let log = Arc::new(MemoryLog::default());
    for k in 0..8 {
        log.push(sub_dag(k));
    }
    log.prune(5);
    let (address, server) = start(log.clone()).await;
    let c = client(address, "/").await;
    match subscribe(&c, json!({ "fromIndex": 2 })).await {
        Err(ClientError::Call(e)) => {
            assert_eq!(e.code(), NOT_RETAINED_CODE);
            assert!(
                e.message().contains("the oldest kept is 5"),
                "{}",
                e.message()
            );
            let data: serde_json::Value = serde_json::from_str(e.data().unwrap().get()).unwrap();
            assert_eq!(data, json!({ "oldestIndex": 5 }));
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // From the oldest kept on, it is served.
    let mut sub = subscribe(&c, json!({ "fromIndex": 5 })).await.unwrap();
    let seen = read(&mut sub, 7, None).await;
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![5, 6, 7]);
    assert_eq!(seen[0].2, 5_000, "the timestamp travels with the sub-DAG");
    server.shutdown().await;
}
