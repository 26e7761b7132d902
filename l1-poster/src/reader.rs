//! Reads posted batches back from L1: the `BatchPosted` events, then each batch's bytes from
//! its transaction's calldata or blobs.
//!
//! Blobs are not served by an execution node's standard RPC; here they are fetched with
//! anvil's `anvil_getBlobByHash`. Against a public L1 this is where a beacon-node blob source
//! goes. Either way a served blob is checked against its versioned hash (KZG commitment).

use crate::inbox::{BatchPosted, Inbox};
use crate::l1::{L1Error, L1};
use alloy::consensus::Transaction as _;
use alloy::eips::eip4844::builder::{SidecarCoder, SimpleCoder};
use alloy::eips::eip4844::Blob;
use alloy::primitives::{keccak256, Address, TxHash, B256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};

/// Blocks per `eth_getLogs` call (public endpoints cap ranges).
const LOG_RANGE: u64 = 5_000;

/// One `BatchPosted` event and where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedBatch {
    pub sequence: u64,
    pub commitment: B256,
    pub data_hash: B256,
    pub blob: bool,
    pub poster: Address,
    pub block: u64,
    pub tx_hash: TxHash,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    L1(#[from] L1Error),
    #[error("transaction {0} not found")]
    MissingTransaction(TxHash),
    #[error("transaction {0} is not a direct inbox submission")]
    NotASubmission(TxHash),
    #[error("blob {0} not available")]
    MissingBlob(B256),
    #[error("blob served for {0} does not match that versioned hash")]
    BlobMismatch(B256),
    #[error("blobs of transaction {0} do not decode")]
    BlobDecode(TxHash),
    #[error("malformed event in block {0}")]
    Event(u64),
}

impl From<alloy::transports::RpcError<alloy::transports::TransportErrorKind>> for ReadError {
    fn from(e: alloy::transports::RpcError<alloy::transports::TransportErrorKind>) -> Self {
        ReadError::L1(e.into())
    }
}

/// The `BatchPosted` events in `from..=to`, in chain order.
pub async fn batch_events(l1: &L1, from: u64, to: u64) -> Result<Vec<PostedBatch>, ReadError> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = (start + LOG_RANGE - 1).min(to);
        let filter = Filter::new()
            .address(l1.inbox)
            .event_signature(BatchPosted::SIGNATURE_HASH)
            .from_block(start)
            .to_block(end);
        for log in l1.provider.get_logs(&filter).await? {
            let block = log.block_number.unwrap_or_default();
            let tx_hash = log.transaction_hash.ok_or(ReadError::Event(block))?;
            let ev = BatchPosted::decode_log(&log.inner).map_err(|_| ReadError::Event(block))?;
            out.push(PostedBatch {
                sequence: ev.sequence,
                commitment: ev.commitment,
                data_hash: ev.dataHash,
                blob: ev.blob,
                poster: ev.poster,
                block,
                tx_hash,
            });
        }
        start = end + 1;
    }
    Ok(out)
}

/// A posted batch as its transaction carried it.
#[derive(Clone, Debug)]
pub struct BatchData {
    /// The bytes the batch committed to.
    pub data: Vec<u8>,
    /// The hash the inbox computed over them: keccak256 of the calldata, or of the versioned
    /// hashes for a blob batch.
    pub data_hash: B256,
    /// The attestation the batch was accepted with.
    pub attested: Inbox::Attested,
    /// Its signatures, as `checkQuorum` read them.
    pub signatures: alloy::primitives::Bytes,
}

/// Reads back what batch `batch`'s transaction carried.
pub async fn batch_data(l1: &L1, batch: &PostedBatch) -> Result<BatchData, ReadError> {
    let tx = l1
        .provider
        .get_transaction_by_hash(batch.tx_hash)
        .await?
        .ok_or(ReadError::MissingTransaction(batch.tx_hash))?;
    if tx.to() != Some(l1.inbox) {
        return Err(ReadError::NotASubmission(batch.tx_hash));
    }
    let input = tx.input();
    if !batch.blob {
        let call = Inbox::submitBatchCall::abi_decode(input)
            .map_err(|_| ReadError::NotASubmission(batch.tx_hash))?;
        return Ok(BatchData {
            data_hash: keccak256(&call.data),
            data: call.data.to_vec(),
            attested: call.attested,
            signatures: call.signatures,
        });
    }
    let call = Inbox::submitBlobBatchCall::abi_decode(input)
        .map_err(|_| ReadError::NotASubmission(batch.tx_hash))?;
    let hashes = tx.blob_versioned_hashes().unwrap_or_default().to_vec();
    let mut blobs = Vec::with_capacity(hashes.len());
    let mut concatenated = Vec::with_capacity(32 * hashes.len());
    for h in &hashes {
        // As bytes: a 128 KiB `Blob` deserialised in place would sit on the task's stack.
        let blob: Option<alloy::primitives::Bytes> = l1
            .provider
            .raw_request("anvil_getBlobByHash".into(), (h,))
            .await?;
        let blob = blob.ok_or(ReadError::MissingBlob(*h))?;
        // The blob source is not trusted: the blob must commit to the versioned hash.
        if !blob_matches(&blob, h) {
            return Err(ReadError::BlobMismatch(*h));
        }
        blobs
            .push(Blob::try_from(blob.as_ref()).map_err(|_| ReadError::BlobDecode(batch.tx_hash))?);
        concatenated.extend_from_slice(h.as_slice());
    }
    let data = SimpleCoder::default()
        .decode_all(&blobs)
        .ok_or(ReadError::BlobDecode(batch.tx_hash))?
        .concat();
    Ok(BatchData {
        data,
        data_hash: keccak256(&concatenated),
        attested: call.attested,
        signatures: call.signatures,
    })
}

/// Whether `blob` (as served) has the KZG commitment behind `versioned_hash`. Synchronous so
/// the 128 KiB blob copies live on this call's stack, not in a future.
fn blob_matches(blob: &[u8], versioned_hash: &B256) -> bool {
    use alloy::eips::eip4844::{c_kzg, env_settings::EnvKzgSettings, kzg_to_versioned_hash};
    let Ok(blob) = c_kzg::Blob::from_bytes(blob) else {
        return false;
    };
    match EnvKzgSettings::Default.get().blob_to_kzg_commitment(&blob) {
        Ok(c) => kzg_to_versioned_hash(c.to_bytes().as_slice()) == *versioned_hash,
        Err(_) => false,
    }
}
