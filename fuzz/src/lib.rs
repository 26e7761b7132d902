//! What every target checks: decoding untrusted bytes never panics, and whatever decodes
//! encodes back to a message that decodes to the same value (no two readings of one input).

use bytes::Bytes;
use std::fmt::Debug;
use weft_types::codec::{decode_message, encode_message, Decode, Encode};

/// The largest message a node decodes (`Parameters::max_message_size`'s default).
pub const LIMIT: usize = 4 << 20;

/// Decoding never panics (for types without equality).
pub fn decodes<T: Decode>(data: &[u8]) {
    let _ = decode_message::<T>(Bytes::copy_from_slice(data), LIMIT);
}

pub fn round_trip<T: Decode + Encode + PartialEq + Debug>(data: &[u8]) {
    if let Ok(value) = decode_message::<T>(Bytes::copy_from_slice(data), LIMIT) {
        let again = decode_message::<T>(encode_message(&value), LIMIT)
            .expect("an encoding of a decoded value decodes");
        assert_eq!(again, value);
    }
}
