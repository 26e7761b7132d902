//! The JSON-RPC server over real sockets, with a detached submitter standing in for the
//! workers and an in-memory index standing in for the committed log: every bad input gets its
//! code and the next good transaction is still accepted.

mod common;

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{keccak256, Signature, U256};
use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use weft_config::RpcParameters;
use weft_rpc::{MemoryIndex, RpcServer, RpcServerArgs, RpcServerHandle, TransactionIndex};
use weft_types::BatchDigest;
use weft_worker::{SubmissionQueue, SubmitError, TxSubmitter};

/// Guard against hangs; never used to wait for something to happen.
const GUARD: Duration = Duration::from_secs(30);
const MAX_TX: usize = 1024;

fn parameters() -> RpcParameters {
    RpcParameters {
        max_request_body_size: 64 * 1024,
        max_batch_len: 5,
        rate_limit_per_connection: 1_000,
        chain_ids: vec![10, 20],
        default_chain_id: Some(20),
        ..RpcParameters::default()
    }
}

struct Fixture {
    address: SocketAddr,
    server: RpcServerHandle,
    index: Arc<MemoryIndex>,
    /// Clone of the server's submitter, to fill the channel behind the server's back.
    submitter: TxSubmitter,
    queue: Option<SubmissionQueue>,
}

async fn start(parameters: RpcParameters, capacity: usize) -> Fixture {
    let (submitter, queue) = TxSubmitter::detached(capacity, MAX_TX);
    let index = Arc::new(MemoryIndex::new(100));
    let server = RpcServer::spawn(RpcServerArgs {
        address: "127.0.0.1:0".parse().unwrap(),
        parameters,
        worker_max_transaction_size: MAX_TX,
        submitters: vec![submitter.clone()],
        index: index.clone(),
        source: Arc::new(MemoryLog::default()),
        preconfirmations: None,
        authority: 2,
        round: Some(Arc::new(|| 17)),
        registry: prometheus::Registry::new(),
    })
    .await
    .unwrap();
    Fixture {
        address: server.local_address(),
        server,
        index,
        submitter,
        queue: Some(queue),
    }
}

impl Fixture {
    /// Acknowledges every submitted transaction with `digest` and forwards its bytes.
    fn acknowledge_all(&mut self) -> mpsc::UnboundedReceiver<Vec<u8>> {
        let mut queue = self.queue.take().expect("queue not taken yet");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some((bytes, ack)) = queue.next().await {
                let _ = tx.send(bytes.to_vec());
                ack.acknowledge(BatchDigest::of_encoded(b"batch"));
            }
        });
        rx
    }

    async fn call(&self, path: &str, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (status, body) = post(self.address, path, body.to_string().as_bytes()).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn send(&self, raw: &[u8]) -> Value {
        self.call("/", "eth_sendRawTransaction", json!([hex0x(raw)]))
            .await
    }
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {response}"))
}

fn message(response: &Value) -> &str {
    response["error"]["message"].as_str().unwrap_or_default()
}

/// One HTTP/1.1 POST on a fresh connection: the status and the body.
async fn post(address: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server may answer (413) and close before it read the whole body.
        let _ = stream.write_all(body).await;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        response
    };
    let response = tokio::time::timeout(GUARD, exchange)
        .await
        .expect("the server answers");
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// Proves: a good transaction of each accepted type is handed to the worker as exactly the
/// bytes sent, and the answer is its Ethereum hash (alloy's), only after the acknowledgement;
/// a batch at the limit is served.
#[tokio::test]
async fn accepted_transactions_are_forwarded_verbatim_with_their_hash() {
    let mut f = start(parameters(), 100).await;
    let mut forwarded = f.acknowledge_all();
    let txs = [
        transfer(10, 0, 0),
        transfer(20, 1, 0),
        legacy(Some(10), 1),
        eip2930(20, 2),
        eip7702(10, 3),
    ];
    for raw in &txs {
        let response = f.send(raw).await;
        let envelope = TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
        assert_eq!(
            response["result"],
            json!(envelope.tx_hash().to_string()),
            "{response}"
        );
        assert_eq!(response["result"], json!(hex0x(keccak256(raw).as_slice())));
        assert_eq!(forwarded.recv().await.unwrap(), *raw);
    }
    // A batch at the limit is served, its sends concurrently.
    let batch: Vec<Value> = (0..5)
        .map(|i| {
            json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                "params": [hex0x(&transfer(20, 9, i))]})
        })
        .collect();
    let (_, body) = post(f.address, "/", Value::from(batch).to_string().as_bytes()).await;
    let responses: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(responses.len(), 5);
    for response in &responses {
        let i = response["id"].as_u64().unwrap();
        assert_eq!(
            response["result"],
            json!(hex0x(keccak256(transfer(20, 9, i)).as_slice()))
        );
    }
    f.server.shutdown().await;
}

/// Proves: each bad input gets -32602 with a clear message, and the server keeps serving: a
/// good transaction right after each one is accepted.
#[tokio::test]
async fn bad_transactions_get_invalid_params_and_the_next_good_one_is_accepted() {
    let mut f = start(parameters(), 100).await;
    let mut forwarded = f.acknowledge_all();
    let good = transfer(10, 0, 0);
    let mut truncated = good.clone();
    truncated.pop();
    let mut trailing = good.clone();
    trailing.push(0);
    let zero_r = with_signature(10, 1, Signature::new(U256::ZERO, U256::from(1u64), false));
    let envelope = TxEnvelope::decode_2718(&mut good.as_slice()).unwrap();
    let TxEnvelope::Eip1559(signed) = &envelope else {
        panic!("an EIP-1559 transaction")
    };
    let sig = signed.signature();
    let n = U256::from_be_slice(
        &hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap(),
    );
    let high_s = with_signature(10, 0, Signature::new(sig.r(), n - sig.s(), !sig.v()));
    let cases: Vec<(&str, Value, &str)> = vec![
        ("garbage hex", json!(["0xzz"]), "invalid hex"),
        ("odd hex", json!(["0x123"]), "invalid hex"),
        ("not a string", json!([42]), "Invalid params"),
        ("no params", json!([]), "Invalid params"),
        (
            "truncated RLP",
            json!([hex0x(&truncated)]),
            "failed to decode",
        ),
        (
            "trailing bytes",
            json!([hex0x(&trailing)]),
            "trailing bytes",
        ),
        ("empty", json!(["0x"]), "empty transaction"),
        (
            "r = 0",
            json!([hex0x(&zero_r)]),
            "invalid transaction signature",
        ),
        (
            "high s",
            json!([hex0x(&high_s)]),
            "invalid transaction signature",
        ),
        (
            "pre-EIP-155",
            json!([hex0x(&legacy(None, 0))]),
            "no chain id",
        ),
        (
            "unknown chain",
            json!([hex0x(&transfer(30, 0, 0))]),
            "chain id 30",
        ),
        ("blob", json!(["0x03f80a"]), "blob transactions"),
        (
            "too large",
            json!([hex0x(&[2u8; MAX_TX + 1])]),
            "oversized data",
        ),
        // A list header in long form for a short list: not canonical RLP.
        ("non-canonical", json!(["0x02f800"]), "failed to decode"),
    ];
    for (nonce, (case, params, expected)) in cases.into_iter().enumerate() {
        let response = f.call("/", "eth_sendRawTransaction", params).await;
        assert_eq!(code(&response), -32602, "{case}: {response}");
        assert!(message(&response).contains(expected), "{case}: {response}");
        let next = transfer(10, 5, nonce as u64);
        let accepted = f.send(&next).await;
        assert_eq!(
            accepted["result"],
            json!(hex0x(keccak256(&next).as_slice())),
            "after {case}: {accepted}"
        );
        assert_eq!(forwarded.recv().await.unwrap(), next);
    }
    assert!(
        forwarded.try_recv().is_err(),
        "no bad transaction was forwarded"
    );
    f.server.shutdown().await;
}

/// Proves: with sender recovery off, a transaction whose signature recovers nobody is
/// accepted (the rollup checks signatures itself); everything else is still checked.
#[tokio::test]
async fn sender_recovery_can_be_turned_off() {
    let mut f = start(
        RpcParameters {
            recover_senders: false,
            ..parameters()
        },
        100,
    )
    .await;
    let _forwarded = f.acknowledge_all();
    let zero_r = with_signature(10, 1, Signature::new(U256::ZERO, U256::from(1u64), false));
    assert!(f.send(&zero_r).await["result"].is_string());
    assert_eq!(code(&f.send(&transfer(30, 0, 0)).await), -32602);
    f.server.shutdown().await;
}

/// Proves: an oversized body gets jsonrpsee's HTTP 413 (-32007), a batch over the limit gets
/// -32005, a full worker gets -32003 "sequencer busy", a failed acknowledgement gets an
/// error (never a hash); and a good transaction is accepted after each.
#[tokio::test]
async fn limits_and_a_full_worker_get_their_codes() {
    let mut f = start(parameters(), 1).await;
    let address = f.address;

    // Fill the one-slot channel behind the server's back: the worker is full.
    let filler = f.submitter.try_submit(b"filler".to_vec().into()).unwrap();
    let busy = f.send(&transfer(10, 0, 0)).await;
    assert_eq!(code(&busy), -32003, "{busy}");
    assert_eq!(message(&busy), "transaction rejected: sequencer busy");
    // The worker takes the filler and fails its acknowledgement; then the next transaction
    // is refused its acknowledgement too: the client gets an error, not a hash.
    let mut queue = f.queue.take().unwrap();
    let (_, ack) = queue.try_next().unwrap();
    ack.fail(SubmitError::PrimaryRefused);
    assert_eq!(filler.await, Err(SubmitError::PrimaryRefused));
    let refused = tokio::spawn(async move {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
            "params": [hex0x(&transfer(10, 0, 1))]});
        post(address, "/", body.to_string().as_bytes()).await
    });
    let (_, ack) = tokio::time::timeout(GUARD, queue.next())
        .await
        .unwrap()
        .unwrap();
    ack.fail(SubmitError::NoQuorum);
    let (_, body) = refused.await.unwrap();
    let refused: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code(&refused), -32603, "{refused}");
    assert!(message(&refused).contains("not acknowledged"), "{refused}");
    f.queue = Some(queue);
    let mut forwarded = f.acknowledge_all();
    assert!(f.send(&transfer(10, 0, 2)).await["result"].is_string());
    forwarded.recv().await.unwrap();

    // A body over max_request_body_size.
    let huge = vec![b' '; 64 * 1024 + 1];
    let (status, body) = post(address, "/", &huge).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("-32007"), "{body}");
    assert!(f.send(&transfer(10, 0, 3)).await["result"].is_string());

    // A batch of 6 calls, one over max_batch_len.
    let batch: Vec<Value> = (0..6)
        .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "eth_chainId", "params": []}))
        .collect();
    let (status, body) = post(address, "/", Value::from(batch).to_string().as_bytes()).await;
    assert_eq!(status, 200);
    let response: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code(&response), -32005, "{response}");
    assert!(message(&response).contains("batch of 6"), "{response}");
    f.server.shutdown().await;
}

/// Proves: calls beyond the per-connection rate limit get -32005 (each call of a batch
/// counts), the calls within it are served, and another connection has its own budget.
#[tokio::test]
async fn calls_beyond_the_rate_limit_get_limit_exceeded() {
    let mut f = start(
        RpcParameters {
            rate_limit_per_connection: 3,
            ..parameters()
        },
        100,
    )
    .await;
    let _forwarded = f.acknowledge_all();
    // One request of four calls: all counted in the same instant, within one window.
    let batch: Vec<Value> = (0..4)
        .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "net_version", "params": []}))
        .collect();
    let (_, body) = post(f.address, "/", Value::from(batch).to_string().as_bytes()).await;
    let responses: Vec<Value> = serde_json::from_str(&body).unwrap();
    let limited: Vec<&Value> = responses
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect();
    assert_eq!(limited.len(), 1, "{responses:?}");
    assert_eq!(code(limited[0]), -32005);
    assert!(message(limited[0]).contains("rate limit exceeded"));
    assert_eq!(
        responses
            .iter()
            .filter(|r| r["result"] == json!("20"))
            .count(),
        3
    );
    // A new connection starts with its own budget.
    assert!(f.send(&transfer(10, 0, 0)).await["result"].is_string());
    f.server.shutdown().await;
}

/// Proves: the chain namespace: `eth_chainId` answers the endpoint's chain (or the default
/// on `/`), a transaction for another chain is refused on a namespaced endpoint, an unknown
/// path is 404; positions are found by hash, under their own chain only; WebSocket is served
/// on the same port.
#[tokio::test]
async fn namespaces_positions_and_websocket() {
    let mut f = start(parameters(), 100).await;
    let _forwarded = f.acknowledge_all();
    assert_eq!(
        f.call("/", "eth_chainId", json!([])).await["result"],
        json!("0x14")
    );
    assert_eq!(
        f.call("/10", "eth_chainId", json!([])).await["result"],
        json!("0xa")
    );
    assert_eq!(
        f.call("/20/", "net_version", json!([])).await["result"],
        json!("20")
    );
    assert_eq!(
        f.call("/", "web3_clientVersion", json!([])).await["result"],
        json!(weft_rpc::CLIENT_VERSION)
    );
    let (status, _) = post(f.address, "/30", b"{}").await;
    assert_eq!(status, 404);
    let (status, _) = post(f.address, "/rollup", b"{}").await;
    assert_eq!(status, 404);

    let for_10 = transfer(10, 0, 0);
    let mismatch = f
        .call("/20", "eth_sendRawTransaction", json!([hex0x(&for_10)]))
        .await;
    assert_eq!(code(&mismatch), -32602);
    assert!(message(&mismatch).contains("does not match"), "{mismatch}");
    let accepted = f
        .call("/10", "eth_sendRawTransaction", json!([hex0x(&for_10)]))
        .await;
    assert!(accepted["result"].is_string(), "{accepted}");

    // Sub-DAG 4 orders a raw benchmark transaction, then the two rollups' transfers.
    let for_20 = transfer(20, 1, 0);
    f.index
        .record(4, &[b"\x01raw".to_vec(), for_10.clone(), for_20.clone()]);
    let hash = |raw: &[u8]| hex0x(keccak256(raw).as_slice());
    assert_eq!(
        f.call("/", "weft_getTransactionPosition", json!([hash(&for_20)]))
            .await["result"],
        json!({"subDagIndex": 4, "txIndex": 2, "chainId": 20})
    );
    assert_eq!(
        f.call("/10", "weft_getTransactionPosition", json!([hash(&for_10)]))
            .await["result"],
        json!({"subDagIndex": 4, "txIndex": 1, "chainId": 10})
    );
    assert_eq!(
        f.call("/10", "weft_getTransactionPosition", json!([hash(&for_20)]))
            .await["result"],
        Value::Null
    );
    assert_eq!(
        code(
            &f.call("/", "weft_getTransactionPosition", json!(["0x12"]))
                .await
        ),
        -32602
    );
    assert_eq!(f.index.next_sub_dag_index(), 5);
    assert_eq!(
        f.call("/", "weft_subDagIndex", json!([])).await["result"],
        json!(5)
    );
    assert_eq!(
        f.call("/", "weft_status", json!([])).await["result"],
        json!({"authority": 2, "round": 17, "nextSubDagIndex": 5, "chainIds": [10, 20]})
    );

    use jsonrpsee::core::client::ClientT;
    let ws = jsonrpsee::ws_client::WsClientBuilder::default()
        .build(format!("ws://{}/10", f.address))
        .await
        .unwrap();
    let chain: String = ws
        .request("eth_chainId", jsonrpsee::rpc_params![])
        .await
        .unwrap();
    assert_eq!(chain, "0xa");
    let hash_back: String = ws
        .request(
            "eth_sendRawTransaction",
            jsonrpsee::rpc_params![hex0x(&transfer(10, 2, 0))],
        )
        .await
        .unwrap();
    assert_eq!(hash_back, hash(&transfer(10, 2, 0)));
    f.server.shutdown().await;
}

/// Proves: the in-memory index keeps a hash's first position, skips bytes that are not an
/// Ethereum transaction (while counting them in `txIndex`), ignores a sub-DAG it already
/// has, and forgets sub-DAGs older than its retention.
#[test]
fn memory_index_keeps_first_positions_within_its_retention() {
    let index = MemoryIndex::new(2);
    let (a, b, c) = (transfer(10, 0, 0), transfer(20, 0, 0), transfer(10, 0, 1));
    let hash = |raw: &[u8]| keccak256(raw);
    index.record(0, &[b"raw".to_vec(), a.clone()]);
    index.record(1, &[a.clone(), b.clone()]);
    index.record(1, std::slice::from_ref(&c));
    let at = |sub_dag_index, tx_index, chain_id| weft_rpc::Position {
        sub_dag_index,
        tx_index,
        chain_id,
    };
    assert_eq!(index.position(&hash(&a)), Some(at(0, 1, 10)));
    assert_eq!(index.position(&hash(&b)), Some(at(1, 1, 20)));
    assert_eq!(
        index.position(&hash(&c)),
        None,
        "sub-DAG 1 was indexed already"
    );
    assert_eq!(index.len(), 2);
    // With sub-DAG 2 the retention keeps 1..=2: sub-DAG 0's `a` goes, `b` stays.
    index.record(2, std::slice::from_ref(&c));
    assert_eq!(index.position(&hash(&a)), None);
    assert_eq!(index.position(&hash(&b)), Some(at(1, 1, 20)));
    assert_eq!(index.position(&hash(&c)), Some(at(2, 0, 10)));
    // A gap (the log's own retention) is fine: sub-DAG 5 keeps 4..=5, so `b` and `c` go.
    index.record(5, &[b"raw".to_vec()]);
    assert!(index.is_empty());
    index.record(6, std::slice::from_ref(&c));
    assert_eq!(index.position(&hash(&c)), Some(at(6, 0, 10)));
    assert_eq!(index.next_sub_dag_index(), 7);
}

#[test]
fn hashes_and_chain_ids_of_many_are_those_of_each() {
    // Enough of each length for the four-way hashing, and bytes that are no transaction
    // (which are not hashed: the hashes of the others must not shift).
    let mut raws: Vec<Vec<u8>> = (0..9).map(|n| transfer(10 + n % 2, n, n)).collect();
    raws.extend((0..5).map(|n| legacy(Some(7), n)));
    raws.extend([
        legacy(None, 1),
        b"raw".to_vec(),
        vec![2, 0xc0],
        vec![0xff; 300],
    ]);
    // Bytes that are no transaction among the others, not only after them.
    raws.swap(0, 15);
    raws.swap(6, 17);
    let one_by_one: Vec<_> = raws
        .iter()
        .map(|r| weft_rpc::hash_and_chain_id(r))
        .collect();
    assert_eq!(weft_rpc::decode::hashes_and_chain_ids(&raws), one_by_one);
    assert_eq!(one_by_one.iter().filter(|d| d.is_some()).count(), 14);
}
