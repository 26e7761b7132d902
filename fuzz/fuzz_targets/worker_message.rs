//! Batches and batch requests from peer workers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weft_fuzz::round_trip::<weft_types::WorkerMessage>(data)
});
