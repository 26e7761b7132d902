//! The canonical wire encoding of every weft message.
//!
//! Hand-written rather than derived so that three properties hold by construction:
//! - *canonical*: fixed-width little-endian integers, length prefixes, no optional forms, so one
//!   value has exactly one encoding and digests of encodings are stable;
//! - *bounded*: a decoder never allocates more than the input it was given — every length or
//!   element count is checked against the bytes that remain before anything is reserved;
//! - *zero-copy*: byte strings (transactions) decode as slices of the input `Bytes`.
//!
//! A top-level message is `[version: u8][body]`; [`decode_message`] rejects unknown versions,
//! inputs above the caller's limit and trailing bytes.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Version byte in front of every top-level message.
pub const WIRE_VERSION: u8 = 1;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    #[error("unexpected end of input while reading {0}")]
    Truncated(&'static str),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("{what}: length {len} exceeds the {remaining} bytes that remain")]
    LengthOverflow {
        what: &'static str,
        len: u64,
        remaining: usize,
    },
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
}

/// Reads from a shared buffer; every read is bounds-checked and returns an error, never panics.
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The slice `[from, current position)` of the input, without copying.
    pub fn slice_from(&self, from: usize) -> Bytes {
        self.buf.slice(from..self.pos)
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A `u32` length followed by that many bytes, returned as a slice of the input.
    pub fn bytes(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u32(what)? as usize;
        if len > self.remaining() {
            return Err(DecodeError::LengthOverflow {
                what,
                len: len as u64,
                remaining: self.remaining(),
            });
        }
        let out = self.buf.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(out)
    }

    /// A `u32` element count, checked so that `count * min_element_size` fits in the input:
    /// the caller may then reserve `count` elements without trusting the sender.
    pub fn count(
        &mut self,
        what: &'static str,
        min_element_size: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.u32(what)? as usize;
        let needed = count.saturating_mul(min_element_size.max(1));
        if needed > self.remaining() {
            return Err(DecodeError::LengthOverflow {
                what,
                len: count as u64,
                remaining: self.remaining(),
            });
        }
        Ok(count)
    }

    pub fn vec<T: Decode>(&mut self, what: &'static str) -> Result<Vec<T>, DecodeError> {
        let count = self.count(what, T::MIN_ENCODED_LEN)?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(T::decode(self)?);
        }
        Ok(out)
    }
}

/// A value with a canonical encoding.
pub trait Encode {
    fn encode(&self, out: &mut BytesMut);

    /// Exact length of [`Encode::encode`]'s output, so buffers are allocated once.
    fn encoded_len(&self) -> usize;
}

pub trait Decode: Sized {
    /// Lower bound on the encoded size of one value; used to bound element counts.
    const MIN_ENCODED_LEN: usize;

    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;
}

pub fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32_le(b.len() as u32);
    out.put_slice(b);
}

pub fn put_vec<T: Encode>(out: &mut BytesMut, items: &[T]) {
    out.put_u32_le(items.len() as u32);
    for item in items {
        item.encode(out);
    }
}

pub fn vec_len<T: Encode>(items: &[T]) -> usize {
    4 + items.iter().map(Encode::encoded_len).sum::<usize>()
}

/// Encodes `value` as a top-level message: version byte then body.
pub fn encode_message<T: Encode>(value: &T) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + value.encoded_len());
    out.put_u8(WIRE_VERSION);
    value.encode(&mut out);
    out.freeze()
}

/// Decodes a top-level message of at most `limit` bytes, rejecting trailing bytes.
pub fn decode_message<T: Decode>(input: Bytes, limit: usize) -> Result<T, DecodeError> {
    if input.len() > limit {
        return Err(DecodeError::TooLarge {
            size: input.len(),
            limit,
        });
    }
    let mut r = Reader::new(input);
    let version = r.u8("version")?;
    if version != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let value = T::decode(&mut r)?;
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes(r.remaining()));
    }
    Ok(value)
}

macro_rules! int_codec {
    ($t:ty, $put:ident, $get:ident) => {
        impl Encode for $t {
            fn encode(&self, out: &mut BytesMut) {
                out.$put(*self);
            }
            fn encoded_len(&self) -> usize {
                std::mem::size_of::<$t>()
            }
        }
        impl Decode for $t {
            const MIN_ENCODED_LEN: usize = std::mem::size_of::<$t>();
            fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
                r.$get(stringify!($t))
            }
        }
    };
}
int_codec!(u16, put_u16_le, u16);
int_codec!(u32, put_u32_le, u32);
int_codec!(u64, put_u64_le, u64);

impl Encode for Bytes {
    fn encode(&self, out: &mut BytesMut) {
        put_bytes(out, self);
    }
    fn encoded_len(&self) -> usize {
        4 + self.len()
    }
}

impl Decode for Bytes {
    const MIN_ENCODED_LEN: usize = 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.bytes("bytes")
    }
}

impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode(&self, out: &mut BytesMut) {
        self.0.encode(out);
        self.1.encode(out);
    }
    fn encoded_len(&self) -> usize {
        self.0.encoded_len() + self.1.encoded_len()
    }
}

impl<A: Decode, B: Decode> Decode for (A, B) {
    const MIN_ENCODED_LEN: usize = A::MIN_ENCODED_LEN + B::MIN_ENCODED_LEN;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok((A::decode(r)?, B::decode(r)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_count_is_rejected_before_allocation() {
        // Claims 2^32-1 elements of a type at least 8 bytes long, with 4 bytes of input behind it.
        let mut b = BytesMut::new();
        b.put_u8(WIRE_VERSION);
        b.put_u32_le(u32::MAX);
        b.put_u32_le(0);
        let mut r = Reader::new(b.freeze());
        r.u8("version").unwrap();
        let err = r.vec::<u64>("items").unwrap_err();
        assert!(matches!(
            err,
            DecodeError::LengthOverflow { what: "items", .. }
        ));
    }

    #[test]
    fn decoded_bytes_share_the_input_buffer() {
        let msg = encode_message(&Bytes::from_static(b"transaction"));
        let base = msg.as_ptr() as usize;
        let tx: Bytes = decode_message(msg.clone(), 1024).unwrap();
        assert_eq!(&tx[..], b"transaction");
        // 1 version byte + 4 length bytes precede the payload inside the same allocation.
        assert_eq!(tx.as_ptr() as usize, base + 5);
    }

    #[test]
    fn envelope_checks() {
        let msg = encode_message(&7u64);
        assert_eq!(decode_message::<u64>(msg.clone(), 9), Ok(7));
        assert_eq!(
            decode_message::<u64>(msg.clone(), 8),
            Err(DecodeError::TooLarge { size: 9, limit: 8 })
        );
        let mut bad = msg.to_vec();
        bad[0] = 9;
        assert_eq!(
            decode_message::<u64>(Bytes::from(bad), 64),
            Err(DecodeError::UnsupportedVersion(9))
        );
        let mut long = msg.to_vec();
        long.push(0);
        assert_eq!(
            decode_message::<u64>(Bytes::from(long), 64),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(
            decode_message::<u64>(msg.slice(..5), 64),
            Err(DecodeError::Truncated("u64"))
        );
    }
}
