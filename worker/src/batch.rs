//! Building a batch's wire encoding in place, and checking a received one without decoding it
//! into a `Batch`.

use crate::error::RequestError;
use crate::submit::{AckSender, Acks};
use bytes::{BufMut, Bytes, BytesMut};
use weft_types::codec::{DecodeError, Reader, WIRE_VERSION};
use weft_types::{BatchDigest, WorkerMessage};

/// Where the sealed batch starts inside the `WorkerMessage::Batch` encoding.
const BATCH_OFFSET: usize = WorkerMessage::BATCH_PREFIX_LEN;
/// Where the batch's transaction count sits: after its own version byte.
const COUNT_OFFSET: usize = BATCH_OFFSET + 1;
/// Bytes of an empty batch message: the message prefix, the batch version and the count.
const EMPTY_LEN: usize = COUNT_OFFSET + 4;

/// First byte of a *sample* transaction, whose next 8 bytes are its big-endian id.
pub const SAMPLE_TX_MARKER: u8 = 0;

/// Appends transactions to one buffer holding the encoding of `WorkerMessage::Batch` (whose
/// body is exactly `Batch::seal()`'s bytes), patching the counts at seal time: one copy of each
/// transaction, no re-encoding, one hash per batch and one allocation per batch.
pub struct BatchBuilder {
    buf: BytesMut,
    count: u32,
    /// Ids of the sample transactions of the current batch, for the benchmark log.
    samples: Vec<u64>,
    /// Acknowledgements owed to the submitters of the current batch's transactions.
    acks: Acks,
    /// Bytes reserved per batch, so that appending never reallocates.
    capacity: usize,
}

/// A sealed batch, ready to broadcast and store.
#[derive(Debug)]
pub struct SealedBatch {
    pub digest: BatchDigest,
    /// The `WorkerMessage::Batch` encoding, sent to peers as is.
    pub message: Bytes,
    /// Ids of the sample transactions it contains.
    pub samples: Vec<u64>,
    /// Acknowledgements owed once the batch is durable (one per acknowledged submission).
    pub acks: Acks,
}

impl SealedBatch {
    /// The sealed batch (`Batch::seal()` bytes), a slice of [`SealedBatch::message`].
    pub fn batch(&self) -> Bytes {
        self.message.slice(BATCH_OFFSET..)
    }
}

impl BatchBuilder {
    /// `capacity`: the largest batch encoding expected (`batch_size` plus one transaction).
    pub fn new(capacity: usize) -> Self {
        let mut builder = Self {
            buf: BytesMut::new(),
            count: 0,
            samples: Vec::new(),
            acks: Acks::default(),
            capacity: capacity + EMPTY_LEN,
        };
        builder.start();
        builder
    }

    fn start(&mut self) {
        self.buf.reserve(self.capacity);
        self.buf.put_u8(WIRE_VERSION);
        self.buf.put_u8(WorkerMessage::BATCH_TAG);
        self.buf.put_u32_le(0);
        self.buf.put_u8(WIRE_VERSION);
        self.buf.put_u32_le(0);
    }

    pub fn push(&mut self, tx: &[u8]) {
        if let [SAMPLE_TX_MARKER, id @ ..] = tx {
            if let Some(id) = id.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                self.samples.push(u64::from_be_bytes(id));
            }
        }
        self.buf.put_u32_le(tx.len() as u32);
        self.buf.put_slice(tx);
        self.count += 1;
    }

    /// [`BatchBuilder::push`], plus the acknowledgement owed to its submitter, if any.
    pub(crate) fn push_acknowledged(&mut self, tx: &[u8], ack: Option<AckSender>) {
        self.push(tx);
        if let Some(ack) = ack {
            self.acks.push(ack);
        }
    }

    /// Transactions in the current batch.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Length of the current batch's encoding (what `Batch::seal()` would return).
    pub fn encoded_len(&self) -> usize {
        self.buf.len() - BATCH_OFFSET
    }

    /// Seals the current batch and starts an empty one.
    pub fn seal(&mut self) -> SealedBatch {
        let batch_len = self.encoded_len() as u32;
        self.buf[2..BATCH_OFFSET].copy_from_slice(&batch_len.to_le_bytes());
        self.buf[COUNT_OFFSET..EMPTY_LEN].copy_from_slice(&self.count.to_le_bytes());
        let message = self.buf.split().freeze();
        let digest = BatchDigest::of_encoded(&message[BATCH_OFFSET..]);
        let samples = std::mem::take(&mut self.samples);
        let acks = std::mem::take(&mut self.acks);
        self.count = 0;
        self.start();
        SealedBatch {
            digest,
            message,
            samples,
            acks,
        }
    }
}

/// Checks that `batch` is a well-formed `Batch` encoding whose transactions are at most
/// `max_transaction_size` bytes, without allocating; returns its transaction count.
pub fn validate_batch(batch: &Bytes, max_transaction_size: usize) -> Result<usize, RequestError> {
    let malformed = RequestError::MalformedBatch;
    let mut r = Reader::new(batch.clone());
    let version = r.u8("batch.version").map_err(malformed)?;
    if version != WIRE_VERSION {
        return Err(malformed(DecodeError::UnsupportedVersion(version)));
    }
    let count = r.count("batch.transactions", 4).map_err(malformed)?;
    for _ in 0..count {
        let tx = r.bytes("batch.transaction").map_err(malformed)?;
        if tx.len() > max_transaction_size {
            return Err(RequestError::TransactionTooLarge {
                size: tx.len(),
                limit: max_transaction_size,
            });
        }
    }
    if r.remaining() != 0 {
        return Err(malformed(DecodeError::TrailingBytes(r.remaining())));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use weft_types::codec::{decode_message, encode_message};
    use weft_types::Batch;

    /// The incremental encoding is byte for byte `Batch::seal()`, with the same digest, and
    /// the message around it is `WorkerMessage::Batch`'s encoding.
    #[test]
    fn incremental_encoding_equals_batch_seal() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut builder = BatchBuilder::new(1024);
        for round in 0..20 {
            let txs: Vec<Bytes> = (0..rng.gen_range(0..50))
                .map(|_| {
                    let mut tx = vec![0u8; rng.gen_range(0..700)];
                    rng.fill(&mut tx[..]);
                    Bytes::from(tx)
                })
                .collect();
            for tx in &txs {
                builder.push(tx);
            }
            assert_eq!(builder.len(), txs.len());
            let expected = Batch::new(txs);
            let (digest, encoded) = expected.seal();
            assert_eq!(builder.encoded_len(), encoded.len(), "round {round}");
            let sealed = builder.seal();
            assert_eq!(sealed.batch(), encoded, "round {round}");
            assert_eq!(sealed.digest, digest, "round {round}");
            assert_eq!(
                sealed.message,
                encode_message(&WorkerMessage::Batch(encoded.clone()))
            );
            assert!(builder.is_empty());
            assert_eq!(
                validate_batch(&encoded, 700),
                Ok(expected.transactions.len())
            );
        }
    }

    #[test]
    fn sample_transactions_are_collected() {
        let mut builder = BatchBuilder::new(100);
        builder.push(&[SAMPLE_TX_MARKER, 0, 0, 0, 0, 0, 0, 1, 2, 99]);
        builder.push(&[1, 0, 0, 0, 0, 0, 0, 0, 7]);
        // Too short to carry an id: an ordinary transaction.
        builder.push(&[SAMPLE_TX_MARKER, 1]);
        builder.push(&[SAMPLE_TX_MARKER, 0, 0, 0, 0, 0, 0, 0, 9]);
        let sealed = builder.seal();
        assert_eq!(sealed.samples, vec![258, 9]);
        assert!(builder.seal().samples.is_empty());
    }

    #[test]
    fn malformed_batches_are_rejected() {
        let (_, good) = Batch::new(vec![Bytes::from(vec![5u8; 10])]).seal();
        assert_eq!(validate_batch(&good, 10), Ok(1));
        assert_eq!(
            validate_batch(&good, 9),
            Err(RequestError::TransactionTooLarge { size: 10, limit: 9 })
        );
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert_eq!(
            validate_batch(&Bytes::from(trailing), 10),
            Err(RequestError::MalformedBatch(DecodeError::TrailingBytes(1)))
        );
        assert!(matches!(
            validate_batch(&good.slice(..good.len() - 1), 10),
            Err(RequestError::MalformedBatch(_))
        ));
        let mut version = good.to_vec();
        version[0] = 7;
        assert_eq!(
            validate_batch(&Bytes::from(version), 10),
            Err(RequestError::MalformedBatch(
                DecodeError::UnsupportedVersion(7)
            ))
        );
        assert!(validate_batch(&Bytes::new(), 10).is_err());
        // Whatever validates also decodes as a Batch.
        assert!(decode_message::<Batch>(good, usize::MAX).is_ok());
    }
}
