//! Messages between workers, and between a worker and its own primary.
//!
//! Every enum encodes as a one-byte tag followed by its body (inside the usual version-byte
//! envelope of [`crate::codec::encode_message`]). The tags of the three enums are disjoint, so
//! the worker's one server can tell a [`WorkerMessage`] from a [`PrimaryToWorker`] by the byte
//! after the version ([`is_primary_to_worker`]) before decoding, and a message sent to the wrong
//! kind of endpoint fails to decode instead of being misread.

use super::BatchDigest;
use crate::codec::{put_vec, vec_len, Decode, DecodeError, Encode, Reader, WIRE_VERSION};
use crate::committee::{AuthorityIndex, WorkerId};
use bytes::{BufMut, Bytes, BytesMut};

/// Most digests in one [`WorkerMessage::BatchRequest`], and most batches in a [`BatchResponse`].
pub const MAX_BATCH_REQUEST: usize = 64;
/// Most digests in one [`PrimaryToWorker`] message.
pub const MAX_DIGESTS_PER_MESSAGE: usize = 10_000;

const TAG_BATCH: u8 = 0x00;
const TAG_BATCH_REQUEST: u8 = 0x01;
const TAG_SYNCHRONIZE: u8 = 0x10;
const TAG_DELETE_BATCHES: u8 = 0x11;
const TAG_ANNOUNCED: u8 = 0x12;
const TAG_OUR_BATCH: u8 = 0x20;
const TAG_OTHERS_BATCH: u8 = 0x21;

/// Worker ↔ worker of the same id at another authority (and a primary may send `BatchRequest`
/// to its own worker to read batch contents for the ordered output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerMessage {
    /// A sealed batch, as its wire encoding (`Batch::seal()` bytes: version byte + body). The
    /// receiver hashes exactly these bytes (`BatchDigest::of_encoded`) and stores them unchanged.
    Batch(Bytes),
    /// Ask for batches by digest (at most [`MAX_BATCH_REQUEST`]); the response is a
    /// [`BatchResponse`] encoding with the batches found (missing ones are simply absent).
    BatchRequest(Vec<BatchDigest>),
}

impl WorkerMessage {
    /// Tag of [`WorkerMessage::Batch`]. That variant encodes as `[WIRE_VERSION][this tag]
    /// [u32 LE length][sealed batch]`, so a batch maker can build it in place.
    pub const BATCH_TAG: u8 = TAG_BATCH;
    /// Bytes in front of the sealed batch in the top-level encoding of [`WorkerMessage::Batch`]:
    /// version, tag, u32 length.
    pub const BATCH_PREFIX_LEN: usize = 1 + 1 + 4;
}

/// The answer to a [`WorkerMessage::BatchRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BatchResponse {
    /// Each an encoded (sealed) batch.
    pub batches: Vec<Bytes>,
}

/// A worker → its own primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerToPrimary {
    /// Sealed here, stored by ≥ quorum stake (this worker included): goes into our next header.
    OurBatch {
        digest: BatchDigest,
        worker_id: WorkerId,
    },
    /// Received from another authority's worker (broadcast or synchronizer) and stored.
    OthersBatch {
        digest: BatchDigest,
        worker_id: WorkerId,
    },
}

/// A primary → its own worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryToWorker {
    /// Make these batches (referenced by a header of `target`) available: fetch from `target`'s
    /// worker of the same id, then from others after `sync_retry_delay`; report each as
    /// `OthersBatch` when stored (one already stored is reported at once).
    Synchronize {
        digests: Vec<BatchDigest>,
        target: AuthorityIndex,
    },
    /// Delete these stored batches (the primary decides: payloads of garbage-collected rounds,
    /// orphans).
    DeleteBatches { digests: Vec<BatchDigest> },
    /// A header of another authority names these batches, which are stored here: they are
    /// payload now, no longer a peer's unannounced broadcast (which a worker holds only within
    /// a per-peer quota).
    Announced { digests: Vec<BatchDigest> },
}

/// Whether a top-level encoding (version byte first) carries a [`PrimaryToWorker`] tag. Says
/// nothing about whether the rest decodes.
pub fn is_primary_to_worker(encoded: &[u8]) -> bool {
    matches!(
        encoded,
        [
            WIRE_VERSION,
            TAG_SYNCHRONIZE | TAG_DELETE_BATCHES | TAG_ANNOUNCED,
            ..
        ]
    )
}

/// A vector of at most `max` elements; the count is checked before anything is allocated.
fn bounded_vec<T: Decode>(
    r: &mut Reader,
    what: &'static str,
    max: usize,
) -> Result<Vec<T>, DecodeError> {
    let count = r.count(what, T::MIN_ENCODED_LEN)?;
    if count > max {
        return Err(DecodeError::InvalidValue(what));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(T::decode(r)?);
    }
    Ok(out)
}

impl Encode for WorkerMessage {
    fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Batch(batch) => {
                out.put_u8(TAG_BATCH);
                batch.encode(out);
            }
            Self::BatchRequest(digests) => {
                out.put_u8(TAG_BATCH_REQUEST);
                put_vec(out, digests);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        1 + match self {
            Self::Batch(batch) => batch.encoded_len(),
            Self::BatchRequest(digests) => vec_len(digests),
        }
    }
}

impl Decode for WorkerMessage {
    const MIN_ENCODED_LEN: usize = 1 + 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.u8("worker_message.tag")? {
            TAG_BATCH => Ok(Self::Batch(r.bytes("worker_message.batch")?)),
            TAG_BATCH_REQUEST => Ok(Self::BatchRequest(bounded_vec(
                r,
                "worker_message.batch_request",
                MAX_BATCH_REQUEST,
            )?)),
            _ => Err(DecodeError::InvalidValue("worker_message.tag")),
        }
    }
}

impl Encode for BatchResponse {
    fn encode(&self, out: &mut BytesMut) {
        put_vec(out, &self.batches);
    }
    fn encoded_len(&self) -> usize {
        vec_len(&self.batches)
    }
}

impl Decode for BatchResponse {
    const MIN_ENCODED_LEN: usize = 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            batches: bounded_vec(r, "batch_response.batches", MAX_BATCH_REQUEST)?,
        })
    }
}

impl Encode for WorkerToPrimary {
    fn encode(&self, out: &mut BytesMut) {
        let (tag, digest, worker_id) = match self {
            Self::OurBatch { digest, worker_id } => (TAG_OUR_BATCH, digest, worker_id),
            Self::OthersBatch { digest, worker_id } => (TAG_OTHERS_BATCH, digest, worker_id),
        };
        out.put_u8(tag);
        digest.encode(out);
        worker_id.encode(out);
    }
    fn encoded_len(&self) -> usize {
        1 + BatchDigest::MIN_ENCODED_LEN + 4
    }
}

impl Decode for WorkerToPrimary {
    const MIN_ENCODED_LEN: usize = 1 + BatchDigest::MIN_ENCODED_LEN + 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let tag = r.u8("worker_to_primary.tag")?;
        let digest = BatchDigest::decode(r)?;
        let worker_id = r.u32("worker_to_primary.worker_id")?;
        match tag {
            TAG_OUR_BATCH => Ok(Self::OurBatch { digest, worker_id }),
            TAG_OTHERS_BATCH => Ok(Self::OthersBatch { digest, worker_id }),
            _ => Err(DecodeError::InvalidValue("worker_to_primary.tag")),
        }
    }
}

impl Encode for PrimaryToWorker {
    fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Synchronize { digests, target } => {
                out.put_u8(TAG_SYNCHRONIZE);
                put_vec(out, digests);
                out.put_u16_le(target.0);
            }
            Self::DeleteBatches { digests } => {
                out.put_u8(TAG_DELETE_BATCHES);
                put_vec(out, digests);
            }
            Self::Announced { digests } => {
                out.put_u8(TAG_ANNOUNCED);
                put_vec(out, digests);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        1 + match self {
            Self::Synchronize { digests, .. } => vec_len(digests) + 2,
            Self::DeleteBatches { digests } | Self::Announced { digests } => vec_len(digests),
        }
    }
}

impl Decode for PrimaryToWorker {
    const MIN_ENCODED_LEN: usize = 1 + 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.u8("primary_to_worker.tag")? {
            TAG_SYNCHRONIZE => {
                let digests = bounded_vec(
                    r,
                    "primary_to_worker.synchronize.digests",
                    MAX_DIGESTS_PER_MESSAGE,
                )?;
                let target = AuthorityIndex(r.u16("primary_to_worker.synchronize.target")?);
                Ok(Self::Synchronize { digests, target })
            }
            TAG_DELETE_BATCHES => Ok(Self::DeleteBatches {
                digests: bounded_vec(
                    r,
                    "primary_to_worker.delete_batches.digests",
                    MAX_DIGESTS_PER_MESSAGE,
                )?,
            }),
            TAG_ANNOUNCED => Ok(Self::Announced {
                digests: bounded_vec(
                    r,
                    "primary_to_worker.announced.digests",
                    MAX_DIGESTS_PER_MESSAGE,
                )?,
            }),
            _ => Err(DecodeError::InvalidValue("primary_to_worker.tag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_message, encode_message};
    use crate::crypto::Digest;
    use crate::messages::Batch;
    use proptest::prelude::*;

    const LIMIT: usize = 1 << 22;

    fn digests(seed: u64, n: usize) -> Vec<BatchDigest> {
        (0..n as u64)
            .map(|i| BatchDigest(Digest::of(&(seed ^ i).to_le_bytes())))
            .collect()
    }

    fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T) {
        let bytes = encode_message(value);
        assert_eq!(bytes.len(), 1 + value.encoded_len(), "encoded_len is exact");
        assert_eq!(&decode_message::<T>(bytes.clone(), LIMIT).unwrap(), value);
        for cut in [0, 1, bytes.len() - 1] {
            assert!(decode_message::<T>(bytes.slice(..cut), LIMIT).is_err());
        }
    }

    fn canonical_or_error<T: Encode + Decode>(input: &[u8]) {
        let mut framed = vec![WIRE_VERSION];
        framed.extend_from_slice(input);
        if let Ok(value) = decode_message::<T>(Bytes::from(framed.clone()), LIMIT) {
            assert_eq!(&encode_message(&value)[..], &framed[..]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x776f_726b),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn worker_messages_round_trip(
            seed in any::<u64>(),
            n in 0usize..=MAX_BATCH_REQUEST,
            txs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
            target in any::<u16>(),
            worker_id in any::<u32>(),
        ) {
            let (digest, sealed) = Batch::new(txs.into_iter().map(Bytes::from).collect()).seal();
            round_trip(&WorkerMessage::Batch(sealed.clone()));
            round_trip(&WorkerMessage::BatchRequest(digests(seed, n)));
            round_trip(&BatchResponse { batches: vec![sealed; n.min(4)] });
            round_trip(&WorkerToPrimary::OurBatch { digest, worker_id });
            round_trip(&WorkerToPrimary::OthersBatch { digest, worker_id });
            round_trip(&PrimaryToWorker::Synchronize {
                digests: digests(seed, n),
                target: AuthorityIndex(target),
            });
            round_trip(&PrimaryToWorker::DeleteBatches { digests: digests(seed, n) });
            round_trip(&PrimaryToWorker::Announced { digests: digests(seed, n) });
        }

        #[test]
        fn random_input_is_an_error_or_canonical(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            canonical_or_error::<WorkerMessage>(&input);
            canonical_or_error::<BatchResponse>(&input);
            canonical_or_error::<WorkerToPrimary>(&input);
            canonical_or_error::<PrimaryToWorker>(&input);
        }
    }

    #[test]
    fn unknown_tags_are_rejected() {
        for tag in [0x02u8, 0x12, 0x22, 0xff] {
            let input = Bytes::from(vec![WIRE_VERSION, tag, 0, 0, 0, 0, 0, 0]);
            assert!(decode_message::<WorkerMessage>(input.clone(), LIMIT).is_err());
            assert!(decode_message::<PrimaryToWorker>(input.clone(), LIMIT).is_err());
        }
        // A message of one family is not accepted as the other.
        let sync = encode_message(&PrimaryToWorker::DeleteBatches { digests: vec![] });
        assert!(is_primary_to_worker(&sync));
        assert_eq!(
            decode_message::<WorkerMessage>(sync, LIMIT),
            Err(DecodeError::InvalidValue("worker_message.tag"))
        );
        let request = encode_message(&WorkerMessage::BatchRequest(vec![]));
        assert!(!is_primary_to_worker(&request));
        assert!(decode_message::<PrimaryToWorker>(request, LIMIT).is_err());
    }

    #[test]
    fn vectors_are_bounded() {
        let too_many = WorkerMessage::BatchRequest(digests(1, MAX_BATCH_REQUEST + 1));
        assert_eq!(
            decode_message::<WorkerMessage>(encode_message(&too_many), LIMIT),
            Err(DecodeError::InvalidValue("worker_message.batch_request"))
        );
        let too_many = PrimaryToWorker::DeleteBatches {
            digests: digests(1, MAX_DIGESTS_PER_MESSAGE + 1),
        };
        assert_eq!(
            decode_message::<PrimaryToWorker>(encode_message(&too_many), LIMIT),
            Err(DecodeError::InvalidValue(
                "primary_to_worker.delete_batches.digests"
            ))
        );
    }

    #[test]
    fn batch_message_prefix_is_fixed() {
        let (_, sealed) = Batch::new(vec![Bytes::from_static(b"tx")]).seal();
        let message = encode_message(&WorkerMessage::Batch(sealed.clone()));
        assert_eq!(&message[WorkerMessage::BATCH_PREFIX_LEN..], &sealed[..]);
        assert_eq!(&message[..2], &[WIRE_VERSION, TAG_BATCH]);
    }
}
