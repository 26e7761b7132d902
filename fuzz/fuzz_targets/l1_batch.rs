//! A batch read back from the L1 inbox (anyone may have posted the bytes a verifier or a
//! rollup node derives from): decompression is bounded, frames parse or fail, and the
//! stream assembler takes whatever parses without panicking. The first byte picks the layer:
//! the whole batch (zstd included), or the frames inside it (which random bytes reach far
//! more often than through a valid zstd stream).
#![no_main]
use weft_l1_poster::batch::{decode_batch, decode_frames, StreamAssembler};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let frames = match data.split_first() {
        Some((0, rest)) => decode_batch(rest),
        Some((_, rest)) => decode_frames(&bytes::Bytes::copy_from_slice(rest)),
        None => return,
    };
    if let Ok(frames) = frames {
        let mut assembler = StreamAssembler::default();
        for frame in frames {
            if assembler.push(frame).is_err() {
                break;
            }
        }
    }
});
