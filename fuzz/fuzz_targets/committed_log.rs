//! The committed log's record, as a node reads it back from its own store at start and for
//! every stream reader and poster: a corrupt record fails with an error, never a panic, and
//! what decodes encodes back to itself.
#![no_main]
use weft_node::log::CommittedRecord;

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_fuzz::round_trip::<CommittedRecord>(data));
