//! A peer's signed attestation (sent to every primary) and a finality certificate (served
//! with the stream and posted to L1).
#![no_main]
use weft_attest::{FinalityCertificate, SignedAttestation};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, rest)) => weft_fuzz::decodes::<SignedAttestation>(rest),
        Some((_, rest)) => weft_fuzz::decodes::<FinalityCertificate>(rest),
        None => {}
    }
});
