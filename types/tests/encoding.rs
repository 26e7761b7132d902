//! Property tests of the wire encoding: every message type round-trips; random, truncated and
//! oversized inputs produce errors, never panics; and anything that decodes re-encodes to the
//! same bytes (the encoding is canonical).

use bytes::Bytes;
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use weft_test_utils::{batch, CommitteeFixture};
use weft_types::codec::{decode_message, encode_message, Decode, DecodeError, Encode};
use weft_types::*;

const LIMIT: usize = 1 << 20;

fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = encode_message(value);
    assert_eq!(bytes.len(), 1 + value.encoded_len(), "encoded_len is exact");
    let back: T = decode_message(bytes.clone(), LIMIT).expect("decodes");
    assert_eq!(&back, value);
    // Every strict prefix is an error (truncation), and so is a limit one byte too small.
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            decode_message::<T>(bytes.slice(..cut), LIMIT).is_err(),
            "prefix {cut}"
        );
    }
    assert!(matches!(
        decode_message::<T>(bytes.clone(), bytes.len() - 1),
        Err(DecodeError::TooLarge { .. })
    ));
}

/// Decoding arbitrary bytes must not panic; whatever decodes must re-encode identically.
fn canonical_or_error<T: Encode + Decode>(input: &[u8]) {
    let mut framed = vec![codec::WIRE_VERSION];
    framed.extend_from_slice(input);
    if let Ok(value) = decode_message::<T>(Bytes::from(framed.clone()), LIMIT) {
        assert_eq!(
            &encode_message(&value)[..],
            &framed[..],
            "non-canonical encoding accepted"
        );
    }
    let _ = decode_message::<T>(Bytes::copy_from_slice(input), LIMIT);
}

fn sample_messages(seed: u64, txs: usize, payload: usize) -> (Batch, Header, Vote, Certificate) {
    let f = CommitteeFixture::new(4, 2, seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let b = batch(&mut rng, txs, 1 + (seed as usize % 600));
    let genesis = Certificate::genesis(&f.committee);
    let payload = (0..payload)
        .map(|i| (BatchDigest(Digest::of(&i.to_le_bytes())), (i % 2) as u32))
        .collect();
    let h = f.header(AuthorityIndex(1), 1, &genesis, payload);
    let v = f.votes(&h, [AuthorityIndex(2)]).remove(0);
    let c = f.certificate(h.clone());
    (b, h, v, c)
}

proptest! {
    // Seeded, so CI failures replay exactly; PROPTEST_CASES raises the count for longer runs.
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7765_6674),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn messages_round_trip(seed in 0u64..1000, txs in 0usize..40, payload in 0usize..50) {
        let (b, h, v, c) = sample_messages(seed, txs, payload);
        round_trip(&b);
        round_trip(&h);
        round_trip(&v);
        round_trip(&c);
        // Digests survive the trip: they are recomputed from the received bytes.
        let h2: Header = decode_message(encode_message(&h), LIMIT).unwrap();
        prop_assert_eq!(h2.digest(), h.digest());
        let (d, enc) = b.seal();
        prop_assert_eq!(d, BatchDigest::of_encoded(&enc));
    }

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        canonical_or_error::<Batch>(&input);
        canonical_or_error::<Header>(&input);
        canonical_or_error::<Vote>(&input);
        canonical_or_error::<Certificate>(&input);
    }

    #[test]
    fn mutated_messages_never_panic(seed in 0u64..100, pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let (b, h, v, c) = sample_messages(seed, 5, 5);
        for bytes in [encode_message(&b), encode_message(&h), encode_message(&v), encode_message(&c)] {
            let mut m = bytes.to_vec();
            let i = pos.index(m.len());
            m[i] = byte;
            canonical_or_error::<Batch>(&m[1..]);
            canonical_or_error::<Header>(&m[1..]);
            canonical_or_error::<Vote>(&m[1..]);
            canonical_or_error::<Certificate>(&m[1..]);
        }
    }
}

#[test]
fn length_prefixes_cannot_force_large_allocations() {
    // A batch claiming 1 billion transactions, a transaction claiming 4 GiB.
    let mut m = vec![codec::WIRE_VERSION];
    m.extend_from_slice(&1_000_000_000u32.to_le_bytes());
    assert!(matches!(
        decode_message::<Batch>(Bytes::from(m), LIMIT),
        Err(DecodeError::LengthOverflow { .. })
    ));
    let mut m = vec![codec::WIRE_VERSION];
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode_message::<Batch>(Bytes::from(m), LIMIT),
        Err(DecodeError::LengthOverflow { .. })
    ));
}
