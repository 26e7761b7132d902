//! Headers, votes, certificates and sync requests from peer primaries.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weft_fuzz::round_trip::<weft_types::PrimaryMessage>(data)
});
