//! Where batches begin and end: a pure function of the committed log, so that every authority
//! cuts the same batches, byte for byte, and can sign what the inbox will check (its data hash).
//!
//! Batch `s` starts where batch `s - 1` ended. It closes
//! - before the first sub-DAG whose consensus timestamp is `interval_ms` or more after the
//!   timestamp of the batch's first transaction (a quiet stream still reaches L1), or
//! - as soon as its frames hold the raw cap, possibly inside a sub-DAG: the target times the
//!   compression ratio of the batch before (×0.95; `RAW_CAP_FACTOR` for the first batch), so
//!   that one compression usually fits the target, whether the stream compresses 1.4× (signed
//!   transactions) or 100× (zero-padded load).
//!
//! A closed batch is compressed; if it exceeds the target it is cut back (the deterministic
//! loop of [`crate::batch`]) and the rest opens the next batch. Only consensus output enters the
//! decision (sub-DAG order, timestamps, transaction bytes); the one more input is the zstd
//! library, whose output at a level is stable for a given version: every authority must run the
//! same `zstd` version, which the batch version byte names (see the README).

use crate::batch::{encode_frames_into, BatchError, Frame, Position, FRAME_HEADER_BYTES};
use crate::source::OrderedSubDag;
use alloy::eips::eip4844::builder::{SidecarBuilder, SimpleCoder};
use alloy::eips::eip4844::BlobTransactionSidecar;
use alloy::primitives::{keccak256, B256};
use serde::{Deserialize, Serialize};

/// Bytes of payload one blob carries with `SimpleCoder` (31 per field element, one element
/// of length header per batch), less a margin.
pub const BLOB_PAYLOAD_BYTES: usize = 4096 * 31 - 64;
/// Calldata batches stay under the 128 KiB transaction size most mempools accept.
pub const DEFAULT_CALLDATA_TARGET: usize = 120_000;

/// How batches reach L1; it sets their size and what the inbox hashes (see [`data_hash`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostMode {
    Calldata,
    /// EIP-4844 blobs, at most `max_blobs` per transaction.
    Blob {
        max_blobs: usize,
    },
}

/// The first batch's frames may hold this many times its target before compression; later
/// batches use the ratio their predecessor compressed by.
pub const RAW_CAP_FACTOR: usize = 2;

/// Bounds of the raw cap, in multiples of the target: the memory a batch may hold raw.
const MIN_RAW_FACTOR_PERCENT: u64 = 100;
const MAX_RAW_FACTOR_PERCENT: u64 = 3_200;

/// How the committee cuts the log into L1 batches; the same at every authority (it decides
/// what they sign), so it is a protocol parameter and not a poster's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutterParams {
    pub mode: PostMode,
    /// The compressed size a batch is filled up to (capped by the mode's capacity).
    pub target_bytes: usize,
    /// A batch closes before the first sub-DAG this much later than its first transaction.
    pub interval_ms: u64,
}

impl CutterParams {
    /// The target, within what the mode can carry.
    pub fn target(&self) -> usize {
        let cap = match self.mode {
            PostMode::Calldata => DEFAULT_CALLDATA_TARGET.max(self.target_bytes),
            PostMode::Blob { max_blobs } => max_blobs.max(1) * BLOB_PAYLOAD_BYTES,
        };
        self.target_bytes.clamp(1, cap)
    }
}

/// Where the cutter is: what a restart needs, with the log, to cut on exactly as before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutterState {
    /// The sequence number of the open batch.
    pub next_sequence: u64,
    /// Where the open batch starts (the end of the last closed one).
    pub open_start: Position,
    /// Raw bytes per compressed byte of the last closed batch, in percent (0: none yet).
    #[serde(default)]
    pub last_ratio_percent: u64,
}

/// A batch the log has closed: its bytes and what the inbox checks of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedBatch {
    pub sequence: u64,
    pub start: Position,
    pub end: Position,
    /// `version ‖ codec ‖ zstd(frames)`: the calldata, or what the blobs carry.
    pub data: Vec<u8>,
    /// keccak256 of the calldata, or of the blobs' versioned hashes concatenated: what the
    /// inbox computes from the transaction that posts it.
    pub data_hash: B256,
    pub transactions: usize,
}

/// `sequence ‖ start ‖ end ‖ transactions ‖ data_hash`: the fixed part of a stored record.
const RECORD_HEAD: usize = 8 + 12 + 12 + 4 + 32;

impl ClosedBatch {
    /// The record a node stores it as: the fixed head (big-endian), then the data.
    pub fn to_record(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_HEAD + self.data.len());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        for p in [self.start, self.end] {
            out.extend_from_slice(&p.sub_dag.to_be_bytes());
            out.extend_from_slice(&p.tx.to_be_bytes());
        }
        out.extend_from_slice(&(self.transactions as u32).to_be_bytes());
        out.extend_from_slice(self.data_hash.as_slice());
        out.extend_from_slice(&self.data);
        out
    }

    /// Reads a record back; the data hash is taken as stored (the store is the node's own).
    pub fn from_record(record: &[u8]) -> Result<Self, BatchError> {
        if record.len() < RECORD_HEAD {
            return Err(BatchError::Truncated);
        }
        let u64_at =
            |at: usize| u64::from_be_bytes(record[at..at + 8].try_into().unwrap_or_default());
        let u32_at =
            |at: usize| u32::from_be_bytes(record[at..at + 4].try_into().unwrap_or_default());
        let position = |at: usize| Position {
            sub_dag: u64_at(at),
            tx: u32_at(at + 8),
        };
        Ok(Self {
            sequence: u64_at(0),
            start: position(8),
            end: position(20),
            transactions: u32_at(32) as usize,
            data_hash: B256::from_slice(&record[36..68]),
            data: record[RECORD_HEAD..].to_vec(),
        })
    }
}

/// Cuts the log as it is pushed, one sub-DAG after the other.
#[derive(Debug)]
pub struct Cutter {
    params: CutterParams,
    state: CutterState,
    /// The next position a pushed sub-DAG must start at.
    next: Position,
    frames: Vec<Frame>,
    raw_bytes: usize,
    /// Consensus timestamp of the open batch's first transaction.
    first_timestamp: Option<u64>,
    /// The frames of the batch being closed, before compression: megabytes, kept between
    /// batches so that their pages are not faulted in afresh for each (a fifth of an
    /// attesting node's page faults at 200k tx/s).
    encoded: Vec<u8>,
}

impl Cutter {
    /// A cutter at `state`. After a restart, push again the sub-DAGs from
    /// `state.open_start.sub_dag` on: they rebuild the open batch (and close nothing that had
    /// not closed before).
    pub fn new(params: CutterParams, state: CutterState) -> Self {
        Self {
            params,
            state,
            next: state.open_start,
            frames: Vec::new(),
            raw_bytes: 0,
            first_timestamp: None,
            encoded: Vec::new(),
        }
    }

    pub fn state(&self) -> CutterState {
        self.state
    }

    /// The position the next pushed sub-DAG starts at.
    pub fn next(&self) -> Position {
        self.next
    }

    /// Appends committed sub-DAG `sub_dag` (the next one) and returns the batches it closed.
    pub fn push(&mut self, sub_dag: &OrderedSubDag) -> Result<Vec<ClosedBatch>, BatchError> {
        if sub_dag.index != self.next.sub_dag {
            return Err(BatchError::OutOfOrder {
                expected: self.next.sub_dag,
                got: sub_dag.index,
            });
        }
        let mut closed = Vec::new();
        // A batch cut back to the target leaves a rest that may be as old: it closes too.
        while self
            .first_timestamp
            .is_some_and(|t| sub_dag.timestamp >= t.saturating_add(self.params.interval_ms))
        {
            self.close(&mut closed)?;
        }
        let total = sub_dag.transactions.len() as u32;
        let raw_cap = self.raw_cap();
        let mut frame = self.frame(sub_dag, self.next.tx.min(total));
        for tx in sub_dag.transactions.iter().skip(frame.first as usize) {
            let any = !frame.transactions.is_empty() || self.first_timestamp.is_some();
            if any && self.raw_bytes + 4 + tx.len() > raw_cap {
                let at = frame.end();
                self.add(frame);
                self.close(&mut closed)?;
                frame = self.frame(sub_dag, at.tx);
            }
            self.first_timestamp.get_or_insert(sub_dag.timestamp);
            self.raw_bytes += 4 + tx.len();
            frame.transactions.push(tx.clone());
        }
        self.next = frame.end();
        self.add(frame);
        Ok(closed)
    }

    /// How many raw bytes the open batch may hold (see the module's notes).
    fn raw_cap(&self) -> usize {
        let target = self.params.target() as u64;
        let percent = match self.state.last_ratio_percent {
            0 => RAW_CAP_FACTOR as u64 * 100,
            ratio => (ratio * 95 / 100).clamp(MIN_RAW_FACTOR_PERCENT, MAX_RAW_FACTOR_PERCENT),
        };
        usize::try_from(target.saturating_mul(percent) / 100).unwrap_or(usize::MAX)
    }

    fn frame(&mut self, sub_dag: &OrderedSubDag, first: u32) -> Frame {
        self.raw_bytes += FRAME_HEADER_BYTES;
        Frame {
            sub_dag: sub_dag.index,
            timestamp: sub_dag.timestamp,
            total: sub_dag.transactions.len() as u32,
            first,
            transactions: Vec::new(),
        }
    }

    /// Keeps a frame unless it is an empty run of a sub-DAG that has transactions (which
    /// would claim nothing and not decode).
    /// and the continuation of the frame before it is merged into that one.
    fn add(&mut self, frame: Frame) {
        if frame.transactions.is_empty() && frame.total != 0 {
            self.raw_bytes -= FRAME_HEADER_BYTES;
            return;
        }
        if merge_or_push(&mut self.frames, frame) {
            self.raw_bytes -= FRAME_HEADER_BYTES;
        }
    }

    /// Closes the open batch (cut back to the target if need be); the rest opens the next.
    fn close(&mut self, closed: &mut Vec<ClosedBatch>) -> Result<(), BatchError> {
        let mut frames = std::mem::take(&mut self.frames);
        let target = self.params.target();
        let (data, raw) = loop {
            encode_frames_into(&frames, &mut self.encoded);
            let (raw, data) = (self.encoded.len(), crate::batch::compress(&self.encoded));
            let count: usize = frames.iter().map(|f| f.transactions.len()).sum();
            // One transaction alone is posted even above the target: it was ordered.
            if data.len() <= target || count <= 1 {
                break (data, raw);
            }
            let keep = ((count as u128 * target as u128 * 9) / (data.len() as u128 * 10))
                .clamp(1, count as u128 - 1) as usize;
            let rest = split_off(&mut frames, keep);
            let later = std::mem::replace(&mut self.frames, rest);
            for f in later {
                merge_or_push(&mut self.frames, f);
            }
        };
        let end = frames.last().map_or(self.state.open_start, Frame::end);
        let last_ratio_percent = (raw as u64 * 100) / (data.len() as u64).max(1);
        closed.push(ClosedBatch {
            sequence: self.state.next_sequence,
            start: self.state.open_start,
            end,
            data_hash: data_hash(self.params.mode, &data)?,
            data,
            transactions: frames.iter().map(|f| f.transactions.len()).sum(),
        });
        self.state = CutterState {
            next_sequence: self.state.next_sequence + 1,
            open_start: end,
            last_ratio_percent,
        };
        self.raw_bytes = raw_len(&self.frames);
        self.first_timestamp = self
            .frames
            .iter()
            .find(|f| !f.transactions.is_empty())
            .map(|f| f.timestamp);
        Ok(())
    }
}

/// Appends `frame`, or merges it into the last frame when it continues that sub-DAG; true
/// when merged.
fn merge_or_push(frames: &mut Vec<Frame>, mut frame: Frame) -> bool {
    match frames.last_mut() {
        Some(last) if last.sub_dag == frame.sub_dag && frame.total != 0 => {
            last.transactions.append(&mut frame.transactions);
            true
        }
        _ => {
            frames.push(frame);
            false
        }
    }
}

fn raw_len(frames: &[Frame]) -> usize {
    frames
        .iter()
        .map(|f| FRAME_HEADER_BYTES + f.transactions.iter().map(|t| 4 + t.len()).sum::<usize>())
        .sum()
}

/// Keeps the first `keep` transactions (and the empty frames before them) in `frames` and
/// returns the rest, a frame split in two where the cut falls inside it.
fn split_off(frames: &mut Vec<Frame>, keep: usize) -> Vec<Frame> {
    let mut left = keep;
    for i in 0..frames.len() {
        let n = frames[i].transactions.len();
        if left == 0 {
            return frames.split_off(i);
        }
        if n >= left {
            let mut rest = frames.split_off(i + 1);
            if n > left {
                let f = &mut frames[i];
                let tail = Frame {
                    sub_dag: f.sub_dag,
                    timestamp: f.timestamp,
                    total: f.total,
                    first: f.first + left as u32,
                    transactions: f.transactions.split_off(left),
                };
                rest.insert(0, tail);
            }
            return rest;
        }
        left -= n;
    }
    Vec::new()
}

/// The blobs that carry `data` (deterministic: KZG commitments are).
pub fn blob_sidecar(data: &[u8]) -> Result<BlobTransactionSidecar, BatchError> {
    SidecarBuilder::<SimpleCoder>::from_slice(data)
        .build()
        .map_err(|e| BatchError::Blob(e.to_string()))
}

/// What the inbox computes from the transaction posting `data` in `mode`.
pub fn data_hash(mode: PostMode, data: &[u8]) -> Result<B256, BatchError> {
    Ok(match mode {
        PostMode::Calldata => keccak256(data),
        PostMode::Blob { .. } => {
            let hashes: Vec<u8> = blob_sidecar(data)?
                .versioned_hashes()
                .flat_map(|h| h.0)
                .collect();
            keccak256(hashes)
        }
    })
}

#[cfg(test)]
#[path = "cutter_tests.rs"]
mod tests;
