//! Load client and log parser of the benchmark harness (issue #5).
//!
//! The Rust side is the load client (`weft-client`); orchestration, log parsing and plots are the
//! Python package next to this crate (`benchmark/fabfile.py`, `benchmark/benchmark/`). This
//! library holds the client's transaction layout so that it is tested against the worker's.
//!
//! # Transactions
//! Every transaction is framed on the wire by its length as a 4-byte big-endian integer (the
//! worker's client protocol). A *sample* transaction starts with [`SAMPLE_MARKER`] followed by
//! its id as a big-endian `u64`; the worker logs the ids of the samples in each sealed batch,
//! which is how the parser follows a transaction from the client to its commit. Every other
//! transaction starts with [`STANDARD_MARKER`] and a per-client counter, so no two are equal and
//! deduplication can never hide a transaction.

use bytes::{BufMut, BytesMut};
use std::time::Duration;

pub mod eth;

/// First byte of a sample transaction (the worker's `SAMPLE_TX_MARKER`).
pub const SAMPLE_MARKER: u8 = 0;
/// First byte of any other transaction.
pub const STANDARD_MARKER: u8 = 1;
/// Marker byte plus the big-endian `u64` id or counter.
pub const MIN_TRANSACTION_SIZE: usize = 9;
/// Bits of a transaction id left for the per-client counter; the client id fills the rest, so
/// ids are unique across clients and the parser can join all logs at once.
pub const CLIENT_ID_SHIFT: u32 = 40;

/// The id of the `counter`-th transaction of client `client`.
pub fn transaction_id(client: u64, counter: u64) -> u64 {
    (client << CLIENT_ID_SHIFT) | (counter & ((1 << CLIENT_ID_SHIFT) - 1))
}

/// Appends one length-framed transaction of `size` bytes (at least [`MIN_TRANSACTION_SIZE`])
/// to `out`: the marker, the id, then zero padding.
pub fn put_transaction(out: &mut BytesMut, size: usize, sample: bool, id: u64) {
    let size = size.max(MIN_TRANSACTION_SIZE);
    out.reserve(4 + size);
    out.put_u32(size as u32);
    out.put_u8(if sample {
        SAMPLE_MARKER
    } else {
        STANDARD_MARKER
    });
    out.put_u64(id);
    out.put_bytes(0, size - MIN_TRANSACTION_SIZE);
}

/// Which transactions of a burst of `burst` are samples: the first `samples_per_burst(..)`.
/// At least one per burst, so even a low rate yields samples to measure latency with.
pub fn samples_per_burst(burst: u64, share: f64) -> u64 {
    let wanted = (burst as f64 * share.clamp(0.0, 1.0)).round() as u64;
    wanted.clamp(1, burst.max(1))
}

/// How many transactions each burst carries so that the average rate holds: a burst sends what
/// the rate owes since the start, so a late tick (a loaded box) does not lower the average, and
/// one burst never carries more than `max_catch_up` bursts' worth.
#[derive(Clone, Debug)]
pub struct Pacer {
    rate: u64,
    /// Transactions of an on-time burst.
    pub nominal: u64,
    total: u64,
    max_catch_up: u64,
    /// Transactions handed out so far.
    pub counter: u64,
}

impl Pacer {
    pub fn new(rate: u64, duration: Duration, interval: Duration, max_catch_up: u64) -> Self {
        Self {
            rate,
            nominal: ((rate as f64 * interval.as_secs_f64()).ceil() as u64).max(1),
            total: rate * duration.as_secs(),
            max_catch_up,
            counter: 0,
        }
    }

    pub fn done(&self) -> bool {
        self.counter >= self.total
    }

    /// The size of the burst due `elapsed` after the start, and whether the client is behind
    /// (it owed more than one burst).
    pub fn burst(&mut self, elapsed: Duration) -> (u64, bool) {
        let owed = (elapsed.as_secs_f64() * self.rate as f64) as u64 + self.nominal;
        let burst = owed
            .saturating_sub(self.counter)
            .min(self.nominal * self.max_catch_up)
            .min(self.total - self.counter.min(self.total));
        self.counter += burst;
        (burst, owed > self.counter + self.nominal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On time, every burst is nominal; after a stall the next bursts catch up, never by more
    /// than the cap, and the total is never exceeded.
    #[test]
    fn the_pacer_keeps_the_average_rate_and_the_total() {
        let tick = Duration::from_millis(50);
        let mut p = Pacer::new(1000, Duration::from_secs(1), tick, 4);
        assert_eq!(p.nominal, 50);
        assert_eq!(p.burst(Duration::ZERO), (50, false));
        assert_eq!(p.burst(tick), (50, false));
        // A 500 ms stall: 550 owed by now, 100 sent, at most 200 at once.
        assert_eq!(p.burst(Duration::from_millis(500)), (200, true));
        assert_eq!(p.burst(Duration::from_millis(550)), (200, true));
        let mut sent = p.counter;
        for k in 12..40 {
            sent += p.burst(tick * k).0;
        }
        assert_eq!(sent, 1000);
        assert!(p.done());
        assert_eq!(p.burst(Duration::from_secs(5)).0, 0);
    }

    /// The client's sample layout is the one the worker recognises and logs.
    #[test]
    fn sample_layout_matches_the_worker() {
        assert_eq!(SAMPLE_MARKER, weft_worker::SAMPLE_TX_MARKER);
        assert_ne!(STANDARD_MARKER, weft_worker::SAMPLE_TX_MARKER);
        let mut out = BytesMut::new();
        let id = transaction_id(3, 77);
        put_transaction(&mut out, 512, true, id);
        assert_eq!(out.len(), 4 + 512);
        assert_eq!(u32::from_be_bytes(out[0..4].try_into().unwrap()), 512);
        assert_eq!(out[4], SAMPLE_MARKER);
        assert_eq!(u64::from_be_bytes(out[5..13].try_into().unwrap()), id);
        assert_eq!(id >> CLIENT_ID_SHIFT, 3);
    }

    /// Transactions of different counters or clients differ, so dedup never merges them.
    #[test]
    fn transactions_are_unique_and_sized() {
        let mut a = BytesMut::new();
        let mut b = BytesMut::new();
        put_transaction(&mut a, 4, false, transaction_id(0, 1));
        put_transaction(&mut b, 4, false, transaction_id(1, 1));
        assert_eq!(
            a.len(),
            4 + MIN_TRANSACTION_SIZE,
            "undersized requests are padded up"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn at_least_one_sample_per_burst_and_never_more_than_the_burst() {
        assert_eq!(samples_per_burst(100, 0.0), 1);
        assert_eq!(samples_per_burst(100, 0.05), 5);
        assert_eq!(samples_per_burst(3, 1.0), 3);
    }
}
