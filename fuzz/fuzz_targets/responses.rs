//! Answers to sync requests: certificates (primary) and batches (worker); the first byte
//! picks which.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, rest)) => weft_fuzz::round_trip::<weft_types::CertificatesResponse>(rest),
        Some((_, rest)) => weft_fuzz::round_trip::<weft_types::BatchResponse>(rest),
        None => {}
    }
});
