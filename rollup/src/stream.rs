//! Following one chain's ordered stream (`weft_subscribeSubDags`) from the authorities, one
//! at a time: on a disconnect, an error or a malformed part, the follower moves to the next
//! authority and resubscribes from the sub-DAG after the last complete one, so it sees every
//! index once, in order.

use crate::plan::L2Input;
use bytes::Bytes;
use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use std::time::Duration;
use weft_rpc::stream::{NOT_RETAINED_CODE, SUBSCRIBE, UNSUBSCRIBE};
use weft_rpc::SubDagPart;

/// The largest WebSocket message accepted (a part is at most 128 KiB of raw bytes, hex doubles
/// it, plus the envelope).
const MAX_MESSAGE_BYTES: u32 = 1 << 20;
/// Pause before trying the next authority once all have failed in a row.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Connection attempts per authority before moving on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The authorities no longer keep the sub-DAG this rollup needs next: it cannot follow
    /// the stream any more (derive from L1 instead).
    #[error("sub-DAG {wanted} is no longer retained by {endpoint}: {message}")]
    NotRetained {
        wanted: u64,
        endpoint: String,
        message: String,
    },
    #[error("no stream endpoint given")]
    NoEndpoint,
    #[error("stream endpoint {0} is not a ws:// or wss:// URL")]
    NotWebSocket(String),
}

/// Why one subscription ended (the follower then moves on).
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("subscribe: {0}")]
    Subscribe(jsonrpsee::core::ClientError),
    #[error("the subscription ended")]
    Ended,
    #[error("malformed part: {0}")]
    Malformed(String),
}

/// A subscription and the sub-DAG being assembled from its parts.
struct Link {
    _client: WsClient,
    subscription: Subscription<SubDagPart>,
    assembly: Assembly,
}

/// The sub-DAG being assembled from one subscription's parts.
#[derive(Debug, Default)]
struct Assembly {
    partial: Option<L2Input>,
    next_part: u32,
}

pub struct StreamFollower {
    endpoints: Vec<String>,
    chain_id: u64,
    /// The authority in use: an index into `endpoints`.
    current: usize,
    link: Option<Link>,
    /// The next sub-DAG index to hand out.
    next: u64,
    /// Links lost since the follower started (for logs and tests).
    pub failovers: u64,
}

impl StreamFollower {
    /// Follows `chain_id` from sub-DAG `from` through `endpoints` (`ws://` URLs of the
    /// authorities' ingress), starting with the first.
    pub fn new(endpoints: Vec<String>, chain_id: u64, from: u64) -> Result<Self, StreamError> {
        if endpoints.is_empty() {
            return Err(StreamError::NoEndpoint);
        }
        if let Some(bad) = endpoints
            .iter()
            .find(|e| !e.starts_with("ws://") && !e.starts_with("wss://"))
        {
            return Err(StreamError::NotWebSocket(bad.clone()));
        }
        Ok(Self {
            endpoints,
            chain_id,
            current: 0,
            link: None,
            next: from,
            failovers: 0,
        })
    }

    /// The next sub-DAG, this chain's transactions only. Cancel-safe between sub-DAGs only:
    /// a cancelled call drops the sub-DAG it was assembling and resubscribes.
    pub async fn next(&mut self) -> Result<L2Input, StreamError> {
        let mut failures_in_a_row = 0;
        loop {
            match self.step().await {
                Ok(Some(input)) => {
                    self.next = input.index + 1;
                    return Ok(input);
                }
                Ok(None) => {}
                Err(LinkError::Subscribe(jsonrpsee::core::ClientError::Call(e)))
                    if e.code() == NOT_RETAINED_CODE =>
                {
                    return Err(StreamError::NotRetained {
                        wanted: self.next,
                        endpoint: self.endpoints[self.current].clone(),
                        message: e.message().to_string(),
                    });
                }
                Err(e) => {
                    tracing::warn!(
                        endpoint = %self.endpoints[self.current],
                        next = self.next,
                        "stream link lost, failing over: {e}"
                    );
                    self.link = None;
                    self.failovers += 1;
                    self.current = (self.current + 1) % self.endpoints.len();
                    failures_in_a_row += 1;
                    if failures_in_a_row >= self.endpoints.len() {
                        failures_in_a_row = 0;
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }
    }

    /// Reads one part (connecting first if needed); a complete sub-DAG when it was the last.
    async fn step(&mut self) -> Result<Option<L2Input>, LinkError> {
        if self.link.is_none() {
            self.link = Some(self.connect().await?);
        }
        let Some(link) = self.link.as_mut() else {
            return Ok(None);
        };
        let part = match link.subscription.next().await {
            Some(Ok(part)) => part,
            Some(Err(e)) => return Err(LinkError::Malformed(e.to_string())),
            None => return Err(LinkError::Ended),
        };
        link.assembly.accept(part, self.next, self.chain_id)
    }

    async fn connect(&self) -> Result<Link, LinkError> {
        let endpoint = &self.endpoints[self.current];
        let client = WsClientBuilder::default()
            .max_response_size(MAX_MESSAGE_BYTES)
            .connection_timeout(CONNECT_TIMEOUT)
            .build(endpoint)
            .await
            .map_err(|e| LinkError::Connect(e.to_string()))?;
        let params = rpc_params![serde_json::json!({
            "fromIndex": self.next,
            "chainId": self.chain_id,
        })];
        let subscription = client
            .subscribe(SUBSCRIBE, params, UNSUBSCRIBE)
            .await
            .map_err(LinkError::Subscribe)?;
        tracing::info!(%endpoint, from = self.next, "following the ordered stream");
        Ok(Link {
            _client: client,
            subscription,
            assembly: Assembly::default(),
        })
    }
}

/// Adds `part` to the sub-DAG being assembled. Parts must come in order, for the index
/// expected; a transaction of another chain is dropped here too (the authority's filter is
/// not trusted), keeping the committed order of the rest.
impl Assembly {
    fn accept(
        &mut self,
        part: SubDagPart,
        expected: u64,
        chain_id: u64,
    ) -> Result<Option<L2Input>, LinkError> {
        if part.index != expected || part.part != self.next_part {
            return Err(LinkError::Malformed(format!(
                "part {} of sub-DAG {} where part {} of {expected} was due",
                part.part, part.index, self.next_part
            )));
        }
        let input = self.partial.get_or_insert_with(|| L2Input {
            index: part.index,
            timestamp_ms: part.timestamp,
            transactions: Vec::new(),
        });
        if input.timestamp_ms != part.timestamp {
            return Err(LinkError::Malformed(format!(
                "sub-DAG {expected} changed its timestamp between parts"
            )));
        }
        let mut last_tx_index = None;
        for tx in part.transactions {
            if last_tx_index.is_some_and(|l| tx.tx_index <= l) {
                return Err(LinkError::Malformed(format!(
                    "sub-DAG {expected}: transaction indices out of order"
                )));
            }
            last_tx_index = Some(tx.tx_index);
            let raw = Bytes::from(tx.raw.to_vec());
            if weft_rpc::hash_and_chain_id(&raw).is_some_and(|(_, c)| c == chain_id) {
                input.transactions.push(raw);
            }
        }
        self.next_part += 1;
        if !part.last {
            return Ok(None);
        }
        self.next_part = 0;
        Ok(self.partial.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_rpc::stream::{parts, StreamEntry};

    fn transfer(chain_id: u64, nonce: u64) -> Bytes {
        use alloy_consensus::{SignableTransaction, TxEip1559};
        use alloy_eips::eip2718::Encodable2718;
        let tx = TxEip1559 {
            chain_id,
            nonce,
            gas_limit: 21_000,
            ..Default::default()
        };
        // Any signature: the filter reads the chain id, not the sender.
        let signature = alloy_primitives::Signature::new(
            alloy_primitives::U256::from(1),
            alloy_primitives::U256::from(1),
            false,
        );
        let envelope: alloy_consensus::TxEnvelope = tx.into_signed(signature).into();
        Bytes::from(envelope.encoded_2718())
    }

    /// A sub-DAG sent in several parts comes out whole, this chain's transactions only, in
    /// order; a part out of turn, of another index, or with another timestamp is refused.
    #[test]
    fn parts_assemble_in_order_and_anything_else_is_refused() {
        let mine: Vec<Bytes> = (0..3).map(|n| transfer(5, n)).collect();
        let big = Bytes::from(vec![1u8; weft_rpc::stream::PART_BYTES - 10]);
        let entry = StreamEntry {
            index: 9,
            leader_round: 20,
            timestamp: 77,
            transactions: vec![
                mine[0].clone(),
                big,
                transfer(6, 0),
                mine[1].clone(),
                mine[2].clone(),
            ],
        };
        let all = parts(&entry, None);
        assert!(all.len() > 1, "the sub-DAG must span parts");
        let mut a = Assembly::default();
        let mut out = None;
        for (n, p) in all.iter().enumerate() {
            let got = a.accept(p.clone(), 9, 5).unwrap();
            assert_eq!(got.is_some(), n == all.len() - 1);
            out = got.or(out);
        }
        let out = out.unwrap();
        assert_eq!((out.index, out.timestamp_ms), (9, 77));
        assert_eq!(out.transactions, mine);

        let mut a = Assembly::default();
        assert!(a.accept(all[1].clone(), 9, 5).is_err(), "part 1 first");
        let mut a = Assembly::default();
        assert!(
            a.accept(all[0].clone(), 10, 5).is_err(),
            "index 9 where 10 is due"
        );
        let mut a = Assembly::default();
        a.accept(all[0].clone(), 9, 5).unwrap();
        let mut retimed = all[1].clone();
        retimed.timestamp += 1;
        assert!(a.accept(retimed, 9, 5).is_err(), "timestamp changed");
    }

    #[test]
    fn only_websocket_endpoints_are_taken() {
        assert!(matches!(
            StreamFollower::new(vec!["http://127.0.0.1:1".into()], 1, 0),
            Err(StreamError::NotWebSocket(_))
        ));
        assert!(matches!(
            StreamFollower::new(vec![], 1, 0),
            Err(StreamError::NoEndpoint)
        ));
        assert!(StreamFollower::new(vec!["ws://127.0.0.1:1".into()], 1, 0).is_ok());
    }
}
