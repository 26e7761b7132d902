//! What a primary and its workers send each other (a worker may run on another machine);
//! the first byte picks the direction.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, rest)) => weft_fuzz::round_trip::<weft_types::WorkerToPrimary>(rest),
        Some((_, rest)) => weft_fuzz::round_trip::<weft_types::PrimaryToWorker>(rest),
        None => {}
    }
});
