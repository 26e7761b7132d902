//! Batches: the encoding of the ordered stream's L1-sized pieces (where they begin and end is
//! the cutter's, [`crate::cutter`]).
//!
//! A batch is `version ‖ codec ‖ compressed(frames)`. A frame is a run of one sub-DAG's
//! transactions with its position, so a sub-DAG may span batches and empty sub-DAGs still
//! show (the reader checks that positions are contiguous):
//! `sub_dag u64 ‖ timestamp u64 ‖ total u32 ‖ first u32 ‖ count u32 ‖ count × (len u32 ‖ bytes)`,
//! little-endian. The timestamp is the sub-DAG's consensus timestamp, so that a rollup derived
//! from L1 alone gives its blocks the same times as one that follows the live stream.
//!
//! zstd was picked over brotli on signed EIP-1559 transfers and ERC-20 calls (see
//! `examples/measure.rs` and the crate README section in the report): similar ratio, far less CPU.

use crate::source::SourceError;
use bytes::Bytes;

/// 1: frames carry the consensus timestamp.
pub const BATCH_VERSION: u8 = 1;
pub const CODEC_ZSTD: u8 = 1;
/// Every authority compresses every batch (it signs the result), so speed counts more than
/// the last percent: on signed transactions level 3 gives a ratio of 1.419 at 69 MB/s, level 9
/// 1.434 at 23 MB/s (`cargo run -p weft-l1-poster --example measure`).
const ZSTD_LEVEL: i32 = 3;
/// Bounds what a batch read from L1 may expand to; a batch is built far below it.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;
pub(crate) const FRAME_HEADER_BYTES: usize = 8 + 8 + 4 + 4 + 4;

/// A transaction's place in the ordered stream: `(sub-DAG index, index within it)`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Position {
    pub sub_dag: u64,
    pub tx: u32,
}

/// A run of one sub-DAG's transactions: `transactions` are its `first..first + len` of `total`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub sub_dag: u64,
    /// The sub-DAG's consensus timestamp, ms since the UNIX epoch.
    pub timestamp: u64,
    pub total: u32,
    pub first: u32,
    pub transactions: Vec<Bytes>,
}

impl Frame {
    /// The position right after this frame's last transaction.
    pub fn end(&self) -> Position {
        let next = self.first as u64 + self.transactions.len() as u64;
        if next >= self.total as u64 {
            Position {
                sub_dag: self.sub_dag + 1,
                tx: 0,
            }
        } else {
            Position {
                sub_dag: self.sub_dag,
                tx: next as u32,
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("batch too short")]
    Truncated,
    #[error("unknown batch version {0}")]
    Version(u8),
    #[error("unknown batch codec {0}")]
    Codec(u8),
    #[error("decompression failed: {0}")]
    Decompress(String),
    #[error(
        "frame of sub-DAG {sub_dag} is inconsistent (first {first}, count {count}, total {total})"
    )]
    Frame {
        sub_dag: u64,
        first: u32,
        count: u32,
        total: u32,
    },
    #[error("sub-DAG {got} pushed where sub-DAG {expected} was next")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("blob encoding: {0}")]
    Blob(String),
    #[error("source: {0}")]
    Source(String),
}

impl From<SourceError> for BatchError {
    fn from(e: SourceError) -> Self {
        BatchError::Source(e.to_string())
    }
}

/// Serialises frames (uncompressed).
pub fn encode_frames(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frames_into(frames, &mut out);
    out
}

/// [`encode_frames`] into `out`, which is cleared first (a buffer kept between batches).
pub(crate) fn encode_frames_into(frames: &[Frame], out: &mut Vec<u8>) {
    let size: usize = frames
        .iter()
        .map(|f| FRAME_HEADER_BYTES + f.transactions.iter().map(|t| 4 + t.len()).sum::<usize>())
        .sum();
    out.clear();
    out.reserve(size);
    for f in frames {
        out.extend_from_slice(&f.sub_dag.to_le_bytes());
        out.extend_from_slice(&f.timestamp.to_le_bytes());
        out.extend_from_slice(&f.total.to_le_bytes());
        out.extend_from_slice(&f.first.to_le_bytes());
        out.extend_from_slice(&(f.transactions.len() as u32).to_le_bytes());
        for t in &f.transactions {
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(t);
        }
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], BatchError> {
    if input.len() < n {
        return Err(BatchError::Truncated);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn take_u32(input: &mut &[u8]) -> Result<u32, BatchError> {
    let b = take(input, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_u64(input: &mut &[u8]) -> Result<u64, BatchError> {
    let b = take(input, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

/// Parses frames; every length is checked against the remaining input before use.
pub fn decode_frames(raw: &Bytes) -> Result<Vec<Frame>, BatchError> {
    let mut input: &[u8] = raw;
    let mut frames = Vec::new();
    while !input.is_empty() {
        let sub_dag = take_u64(&mut input)?;
        let timestamp = take_u64(&mut input)?;
        let total = take_u32(&mut input)?;
        let first = take_u32(&mut input)?;
        let count = take_u32(&mut input)?;
        if first as u64 + count as u64 > total as u64 || (count == 0 && total != 0) {
            return Err(BatchError::Frame {
                sub_dag,
                first,
                count,
                total,
            });
        }
        let mut transactions = Vec::with_capacity((count as usize).min(input.len() / 4));
        for _ in 0..count {
            let len = take_u32(&mut input)? as usize;
            let start = raw.len() - input.len();
            take(&mut input, len)?;
            transactions.push(raw.slice(start..start + len));
        }
        frames.push(Frame {
            sub_dag,
            timestamp,
            total,
            first,
            transactions,
        });
    }
    Ok(frames)
}

/// `version ‖ codec ‖ zstd(frames)`.
pub fn encode_batch(frames: &[Frame]) -> Vec<u8> {
    compress(&encode_frames(frames))
}

pub(crate) fn compress(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![BATCH_VERSION, CODEC_ZSTD];
    // Compressing an in-memory buffer cannot fail at a valid level.
    match zstd::bulk::compress(raw, ZSTD_LEVEL) {
        Ok(c) => out.extend_from_slice(&c),
        Err(_) => unreachable!("zstd bulk compression of a buffer at a valid level"),
    }
    out
}

/// Decompresses (bounded by `MAX_DECOMPRESSED_BYTES`) and parses a batch read from L1.
pub fn decode_batch(data: &[u8]) -> Result<Vec<Frame>, BatchError> {
    if data.len() < 2 {
        return Err(BatchError::Truncated);
    }
    if data[0] != BATCH_VERSION {
        return Err(BatchError::Version(data[0]));
    }
    if data[1] != CODEC_ZSTD {
        return Err(BatchError::Codec(data[1]));
    }
    let raw = zstd::bulk::decompress(&data[2..], MAX_DECOMPRESSED_BYTES)
        .map_err(|e| BatchError::Decompress(e.to_string()))?;
    decode_frames(&Bytes::from(raw))
}

/// Rebuilds the ordered stream from frames read in batch order, checking that each frame
/// starts exactly where the previous one ended.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    next: Position,
    partial: Option<crate::source::OrderedSubDag>,
    partial_total: u32,
    complete: Vec<crate::source::OrderedSubDag>,
}

impl StreamAssembler {
    /// The position the next frame must start at.
    pub fn next(&self) -> Position {
        self.next
    }

    /// Appends a frame; on a gap, overlap, or a changed total or timestamp, returns the expected
    /// position.
    pub fn push(&mut self, frame: Frame) -> Result<(), Position> {
        let at = Position {
            sub_dag: frame.sub_dag,
            tx: frame.first,
        };
        let continues = |p: &crate::source::OrderedSubDag| {
            frame.total == self.partial_total && frame.timestamp == p.timestamp
        };
        if at != self.next || self.partial.as_ref().is_some_and(|p| !continues(p)) {
            return Err(self.next);
        }
        self.partial_total = frame.total;
        let end = frame.end();
        let sub_dag = self
            .partial
            .get_or_insert_with(|| crate::source::OrderedSubDag {
                index: frame.sub_dag,
                timestamp: frame.timestamp,
                // Not `total`: a frame claims it, and one that claims billions carries a few
                // (found by fuzzing: 33 bytes asked for gigabytes).
                transactions: Vec::with_capacity(frame.transactions.len()),
            });
        sub_dag.transactions.extend(frame.transactions);
        if end.sub_dag != frame.sub_dag {
            if let Some(done) = self.partial.take() {
                self.complete.push(done);
            }
        }
        self.next = end;
        Ok(())
    }

    /// The sub-DAGs completed so far (a sub-DAG still being continued is left out).
    pub fn complete(&self) -> &[crate::source::OrderedSubDag] {
        &self.complete
    }

    pub fn into_complete(self) -> Vec<crate::source::OrderedSubDag> {
        self.complete
    }

    /// Hands over the sub-DAGs completed since the last call.
    pub fn take_complete(&mut self) -> Vec<crate::source::OrderedSubDag> {
        std::mem::take(&mut self.complete)
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
