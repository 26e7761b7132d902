use super::typed_digest;
use crate::codec::{encode_message, put_vec, vec_len, Decode, DecodeError, Encode, Reader};
use crate::crypto::Digest;
use bytes::{Bytes, BytesMut};

/// An opaque client transaction.
pub type Transaction = Bytes;

typed_digest!(
    /// BLAKE3-256 of a batch's wire encoding (version byte included), so a worker hashes the
    /// bytes it received once and never re-encodes.
    BatchDigest
);

impl BatchDigest {
    pub fn of_encoded(encoded: &[u8]) -> Self {
        Self(Digest::of(encoded))
    }
}

/// A list of transactions sealed by a worker.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Batch {
    pub transactions: Vec<Transaction>,
}

impl Batch {
    pub fn new(transactions: Vec<Transaction>) -> Self {
        Self { transactions }
    }

    /// Encodes the batch and returns it with its digest.
    pub fn seal(&self) -> (BatchDigest, Bytes) {
        let encoded = encode_message(self);
        (BatchDigest::of_encoded(&encoded), encoded)
    }
}

impl Encode for Batch {
    fn encode(&self, out: &mut BytesMut) {
        put_vec(out, &self.transactions);
    }
    fn encoded_len(&self) -> usize {
        vec_len(&self.transactions)
    }
}

impl Decode for Batch {
    const MIN_ENCODED_LEN: usize = 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            transactions: r.vec("batch.transactions")?,
        })
    }
}
