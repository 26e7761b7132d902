//! The JSON-RPC server: HTTP and WebSocket on one port, the `eth_*`, `net_*`, `web3_*` and
//! `weft_*` methods, and the limits of [`weft_config::RpcParameters`].

use crate::checker::{CheckError, Checker};
use crate::decode::{check_transaction, decode_hex, TxPolicy};
use crate::error::{RpcError, TxError};
use crate::index::{Position, TransactionIndex};
use crate::limits::{ConnectionLayer, LimitLayer, Namespace};
use crate::preconf::{parse_hash, parse_hashes, PreconfSource};
use crate::stream::{SubDagSource, SubscribeParams};
use bytes::Bytes;
use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{BatchRequestConfig, RpcModule, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::Extensions;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use weft_config::RpcParameters;
use weft_worker::{SubmitError, TxSubmitter};

/// Messages a connection buffers for a client that reads slowly.
const MESSAGE_BUFFER: u32 = 32;

/// What `web3_clientVersion` answers.
pub const CLIENT_VERSION: &str = concat!("weft/v", env!("CARGO_PKG_VERSION"));

/// Reads the own primary's current round, for `weft_status`.
pub type RoundSource = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Everything the server needs. The limits come from the committee's parameters file, the
/// address from the operator.
pub struct RpcServerArgs {
    /// Where to listen (port 0: any free port; see [`RpcServerHandle::local_address`]).
    pub address: SocketAddr,
    pub parameters: RpcParameters,
    /// The workers' `max_transaction_size`, the ceiling of `parameters.max_transaction_size`.
    pub worker_max_transaction_size: usize,
    /// One per worker of this authority; transactions are spread over them by hash.
    pub submitters: Vec<TxSubmitter>,
    pub index: Arc<dyn TransactionIndex>,
    /// The committed log, for the ordered stream.
    pub source: Arc<dyn SubDagSource>,
    /// Pre-confirmations and finality certificates (`None`: those methods are not served).
    pub preconfirmations: Option<Arc<dyn PreconfSource>>,
    /// For `weft_status`.
    pub authority: u16,
    pub round: Option<RoundSource>,
    /// Where the server's metrics go (the node's registry).
    pub registry: prometheus::Registry,
}

#[derive(Debug, thiserror::Error)]
pub enum RpcServerError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid rpc parameters: {0}")]
    Parameters(#[from] weft_config::ParameterError),
    #[error("the rpc ingress needs at least one in-process worker")]
    NoWorkers,
    #[error("registering the methods: {0}")]
    Register(#[from] jsonrpsee::core::RegisterMethodError),
    #[error("starting the check threads: {0}")]
    Threads(std::io::Error),
    #[error("registering the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A running server; dropping it does not stop it, [`RpcServerHandle::shutdown`] does.
pub struct RpcServerHandle {
    handle: ServerHandle,
    local_address: SocketAddr,
}

impl RpcServerHandle {
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// Stops accepting connections and waits until the open ones are closed.
    pub async fn shutdown(self) {
        // Already stopped is as good as stopping.
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }
}

/// State shared by every call.
struct Context {
    policy: TxPolicy,
    /// Recovers senders off the runtime, when the policy asks for it.
    checker: Option<Checker>,
    default_chain_id: u64,
    submitters: Vec<TxSubmitter>,
    index: Arc<dyn TransactionIndex>,
    source: Arc<dyn SubDagSource>,
    preconfirmations: Option<Arc<dyn PreconfSource>>,
    authority: u16,
    round: Option<RoundSource>,
    metrics: crate::metrics::RpcMetrics,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    authority: u16,
    round: Option<u64>,
    next_sub_dag_index: u64,
    chain_ids: Vec<u64>,
}

pub struct RpcServer;

impl RpcServer {
    /// Validates the parameters, binds `args.address` and serves until shut down.
    pub async fn spawn(args: RpcServerArgs) -> Result<RpcServerHandle, RpcServerError> {
        let parameters = &args.parameters;
        parameters.validate(args.worker_max_transaction_size)?;
        if args.submitters.is_empty() {
            return Err(RpcServerError::NoWorkers);
        }
        let chain_ids = Arc::new(parameters.chain_ids.clone());
        let config = ServerConfig::builder()
            .max_request_body_size(parameters.max_request_body_size)
            .max_response_body_size(parameters.max_response_body_size)
            .max_connections(parameters.max_connections)
            .max_subscriptions_per_connection(parameters.max_subscriptions_per_connection)
            // Messages waiting for a slow client, per connection: a stream subscriber is
            // paced by it (each part is at most 256 KB of hex).
            .set_message_buffer_capacity(MESSAGE_BUFFER)
            // Batches are bounded by LimitLayer, which answers with reth's -32005.
            .set_batch_request_config(BatchRequestConfig::Unlimited)
            .build();
        let http = tower::ServiceBuilder::new().layer(ConnectionLayer {
            chain_ids: chain_ids.clone(),
            rate_limit: parameters.rate_limit_per_connection,
        });
        let rpc = RpcServiceBuilder::new().layer(LimitLayer {
            max_batch_len: parameters.max_batch_len as usize,
            max_response_body_size: parameters.max_response_body_size as usize,
        });
        let server = Server::builder()
            .set_config(config)
            .set_http_middleware(http)
            .set_rpc_middleware(rpc)
            .build(args.address)
            .await
            .map_err(|source| RpcServerError::Bind {
                address: args.address,
                source,
            })?;
        let local_address = server.local_addr().map_err(|source| RpcServerError::Bind {
            address: args.address,
            source,
        })?;
        let policy = TxPolicy {
            max_transaction_size: parameters.max_transaction_size(args.worker_max_transaction_size),
            chain_ids: parameters.chain_ids.clone(),
            recover_senders: parameters.recover_senders,
        };
        let checker = match parameters.recover_senders {
            true => Some(
                Checker::spawn(
                    parameters.check_threads as usize,
                    parameters.max_pending_checks as usize,
                    policy.clone(),
                )
                .map_err(RpcServerError::Threads)?,
            ),
            false => None,
        };
        let context = Context {
            policy,
            checker,
            default_chain_id: parameters.default_chain_id(),
            submitters: args.submitters,
            index: args.index,
            source: args.source,
            preconfirmations: args.preconfirmations,
            authority: args.authority,
            round: args.round,
            metrics: crate::metrics::RpcMetrics::new(&args.registry)?,
        };
        let handle = server.start(module(context)?);
        tracing::info!(address = %local_address, chain_ids = ?chain_ids, "rpc server started");
        Ok(RpcServerHandle {
            handle,
            local_address,
        })
    }
}

fn module(context: Context) -> Result<RpcModule<Context>, RpcServerError> {
    let mut module = RpcModule::new(context);
    module.register_async_method(
        "eth_sendRawTransaction",
        |params, context, extensions| async move {
            context.metrics.transactions_received.inc();
            let result = send_raw_transaction(params, &context, &extensions).await;
            if let Err(e) = &result {
                context
                    .metrics
                    .transactions_rejected
                    .with_label_values(&[e.0])
                    .inc();
            }
            result.map_err(|e| e.1)
        },
    )?;
    module.register_method("eth_chainId", |_, context, extensions| {
        format!("{:#x}", chain_id(context, extensions))
    })?;
    module.register_method("net_version", |_, context, extensions| {
        chain_id(context, extensions).to_string()
    })?;
    module.register_method("web3_clientVersion", |_, _, _| CLIENT_VERSION)?;
    module.register_method("weft_subDagIndex", |_, context, _| {
        context.index.next_sub_dag_index()
    })?;
    module.register_method("weft_status", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(Status {
            authority: context.authority,
            round: context.round.as_ref().map(|round| round()),
            next_sub_dag_index: context.index.next_sub_dag_index(),
            chain_ids: context.policy.chain_ids.clone(),
        })
    })?;
    module.register_method("weft_getTransactionPosition", transaction_position)?;
    module.register_async_method(
        "weft_getPreconfirmation",
        |params, context, extensions| async move {
            let text: String = params.one()?;
            let hash = parse_hash(&text).map_err(RpcError::InvalidParams)?;
            let source = preconfirmations(&context)?;
            let chain = extensions.get::<Namespace>().map(|n| n.0);
            crate::preconf::lookup(source, &context.index, hash, chain)
                .await
                .map_err(|e| ErrorObjectOwned::from(RpcError::Internal(e)))
        },
    )?;
    module.register_async_method(
        "weft_getFinalityCertificate",
        |params, context, _| async move {
            let index: u64 = params.one()?;
            let source = preconfirmations(&context)?.clone();
            tokio::task::spawn_blocking(move || source.certificate(index))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|e| ErrorObjectOwned::from(RpcError::Internal(e)))
        },
    )?;
    module.register_subscription(
        crate::preconf::SUBSCRIBE,
        crate::preconf::NOTIFICATION,
        crate::preconf::UNSUBSCRIBE,
        |params, pending, context, extensions| async move {
            let wanted = params
                .one::<Vec<String>>()
                .map_err(|e| e.message().to_string())
                .and_then(parse_hashes);
            let (hashes, source) = match (wanted, preconfirmations(&context)) {
                (Ok(hashes), Ok(source)) => (hashes, source.clone()),
                (Err(e), _) => {
                    pending.reject(RpcError::InvalidParams(e)).await;
                    return Ok(());
                }
                (_, Err(e)) => {
                    pending.reject(e).await;
                    return Ok(());
                }
            };
            let chain = extensions.get::<Namespace>().map(|n| n.0);
            let Ok(sink) = pending.accept().await else {
                return Ok(());
            };
            crate::preconf::serve(sink, source, context.index.clone(), hashes, chain).await
        },
    )?;
    module.register_subscription(
        crate::stream::SUBSCRIBE,
        crate::stream::NOTIFICATION,
        crate::stream::UNSUBSCRIBE,
        |params, pending, context, extensions| async move {
            let endpoint = extensions.get::<Namespace>().map(|n| n.0);
            let wanted: SubscribeParams = match params.sequence().optional_next() {
                Ok(p) => p.unwrap_or_default(),
                Err(e) => {
                    pending.reject(e).await;
                    return Ok(());
                }
            };
            let chain = match (endpoint, wanted.chain_id) {
                (Some(e), Some(c)) if e != c => {
                    let text = format!("chain id {c} does not match the endpoint's chain id {e}");
                    pending.reject(RpcError::InvalidParams(text)).await;
                    return Ok(());
                }
                (e, c) => c.or(e),
            };
            let source = context.source.clone();
            let subscriptions = context.metrics.stream_subscriptions.clone();
            subscriptions.inc();
            let served =
                crate::stream::serve(pending, source, wanted.from_index, chain, wanted.certified)
                    .await;
            subscriptions.dec();
            served
        },
    )?;
    Ok(module)
}

fn preconfirmations(context: &Context) -> Result<&Arc<dyn PreconfSource>, ErrorObjectOwned> {
    context
        .preconfirmations
        .as_ref()
        .ok_or_else(|| RpcError::NotServed("pre-confirmation").into())
}

/// The endpoint's chain id, or the configured default on `/`.
fn chain_id(context: &Context, extensions: &Extensions) -> u64 {
    extensions
        .get::<Namespace>()
        .map_or(context.default_chain_id, |n| n.0)
}

/// A refused `eth_sendRawTransaction`: its metric reason and its answer.
struct Refused(&'static str, ErrorObjectOwned);

impl From<TxError> for Refused {
    fn from(e: TxError) -> Self {
        Refused(e.kind(), e.into())
    }
}

impl From<RpcError> for Refused {
    fn from(e: RpcError) -> Self {
        Refused(e.kind(), e.into())
    }
}

async fn send_raw_transaction(
    params: Params<'static>,
    context: &Context,
    extensions: &Extensions,
) -> Result<String, Refused> {
    let text: String = params.one().map_err(|e| Refused("invalid_params", e))?;
    // Hex is twice the bytes; refuse an oversized one before allocating its bytes.
    let raw = decode_hex(&text, context.policy.max_transaction_size)?;
    let checked = match &context.checker {
        Some(checker) => match checker.check(raw.as_slice().into()).await {
            Ok(checked) => checked,
            Err(CheckError::Invalid(e)) => return Err(e.into()),
            Err(CheckError::Busy) => return Err(RpcError::Busy.into()),
            Err(CheckError::Stopped) => return Err(RpcError::Stopped.into()),
        },
        None => check_transaction(&raw, &context.policy)?,
    };
    if let Some(Namespace(endpoint)) = extensions.get::<Namespace>() {
        if *endpoint != checked.chain_id {
            let error = TxError::ChainIdMismatch {
                chain_id: checked.chain_id,
                endpoint: *endpoint,
            };
            return Err(error.into());
        }
    }
    let raw = Bytes::from(raw);
    // By hash, so that a resubmission lands on the same worker; the next worker takes over
    // when one is full.
    let n = context.submitters.len();
    let first = u64::from_be_bytes(checked.hash.0[..8].try_into().unwrap_or_default()) as usize;
    let mut busy = false;
    for k in 0..n {
        match context.submitters[(first + k) % n].try_submit(raw.clone()) {
            Ok(ack) => {
                return match ack.await {
                    Ok(_) => Ok(format!("0x{}", hex::encode(checked.hash))),
                    Err(e) => Err(RpcError::NotAcknowledged(e).into()),
                };
            }
            Err(SubmitError::Full) => busy = true,
            Err(SubmitError::Stopped) => {}
            Err(e) => return Err(RpcError::InvalidParams(e.to_string()).into()),
        }
    }
    Err(if busy {
        RpcError::Busy
    } else {
        RpcError::Stopped
    }
    .into())
}

fn transaction_position(
    params: Params<'_>,
    context: &Context,
    extensions: &Extensions,
) -> Result<Option<Position>, ErrorObjectOwned> {
    let text: String = params.one()?;
    let hash = parse_hash(&text).map_err(RpcError::InvalidParams)?;
    let position = context.index.position(&hash);
    // Under `/<chain_id>`, only that rollup's transactions are visible.
    Ok(match extensions.get::<Namespace>() {
        Some(Namespace(chain)) => position.filter(|p| p.chain_id == *chain),
        None => position,
    })
}
