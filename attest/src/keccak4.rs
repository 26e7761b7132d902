//! keccak256 of many messages at once: four Keccak-f[1600] states side by side in AVX2
//! registers (one 64-bit lane of each state per 256-bit register), so that the independent
//! hashes the attester needs (every transaction of a batch, every leaf node, every inner node
//! of a tree level) cost about a third of one scalar permutation each. Without AVX2 (checked
//! once at run time) each message goes through the scalar keccak256; the output is the same.

use alloy_primitives::{keccak256, B256};

/// Bytes absorbed per permutation (keccak256's rate).
const RATE: usize = 136;

/// keccak256 of each of `messages`, in order, into `out` (which must be as long).
pub fn keccak256_many<M: AsRef<[u8]>>(messages: &[M], out: &mut [B256]) {
    assert_eq!(messages.len(), out.len(), "one output per message");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // Groups of four messages with the same number of blocks run in lockstep.
        let blocks = |m: &M| m.as_ref().len() / RATE;
        let mut by_blocks: Vec<(usize, usize)> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| (blocks(m), i))
            .collect();
        if messages.iter().any(|m| blocks(m) != by_blocks[0].0) {
            by_blocks.sort_unstable();
        }
        let mut chunks = by_blocks.chunks_exact(4);
        for group in &mut chunks {
            if group[0].0 != group[3].0 {
                for &(_, i) in group {
                    out[i] = keccak256(messages[i].as_ref());
                }
                continue;
            }
            let inputs = [0, 1, 2, 3].map(|k| messages[group[k].1].as_ref());
            // SAFETY: AVX2 was detected above.
            let hashes = unsafe { avx2::keccak256_x4(inputs) };
            for (k, hash) in hashes.into_iter().enumerate() {
                out[group[k].1] = hash;
            }
        }
        for &(_, i) in chunks.remainder() {
            out[i] = keccak256(messages[i].as_ref());
        }
        return;
    }
    for (m, o) in messages.iter().zip(out.iter_mut()) {
        *o = keccak256(m.as_ref());
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::RATE;
    use alloy_primitives::B256;
    use std::arch::x86_64::*;

    const ROUND_CONSTANTS: [u64; 24] = [
        0x0000000000000001,
        0x0000000000008082,
        0x800000000000808A,
        0x8000000080008000,
        0x000000000000808B,
        0x0000000080000001,
        0x8000000080008081,
        0x8000000000008009,
        0x000000000000008A,
        0x0000000000000088,
        0x0000000080008009,
        0x000000008000000A,
        0x000000008000808B,
        0x800000000000008B,
        0x8000000000008089,
        0x8000000000008003,
        0x8000000000008002,
        0x8000000000000080,
        0x000000000000800A,
        0x800000008000000A,
        0x8000000080008081,
        0x8000000000008080,
        0x0000000080000001,
        0x8000000080008008,
    ];

    #[inline(always)]
    unsafe fn rol<const L: i32, const R: i32>(v: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi64::<L>(v), _mm256_srli_epi64::<R>(v))
    }

    #[inline(always)]
    unsafe fn xor(a: __m256i, b: __m256i) -> __m256i {
        _mm256_xor_si256(a, b)
    }

    /// Keccak-f[1600] on four states; lane `x + 5y` of state k is element k of `a[x + 5y]`.
    #[target_feature(enable = "avx2")]
    unsafe fn permute(a: &mut [__m256i; 25]) {
        for rc in ROUND_CONSTANTS {
            // θ
            let c = [0, 1, 2, 3, 4].map(|x| {
                xor(
                    xor(xor(a[x], a[x + 5]), xor(a[x + 10], a[x + 15])),
                    a[x + 20],
                )
            });
            let d = [0, 1, 2, 3, 4].map(|x| xor(c[(x + 4) % 5], rol::<1, 63>(c[(x + 1) % 5])));
            // ρ and π: b[y + 5((2x + 3y) mod 5)] = rot(a[x + 5y], r[x][y]).
            let t = |i: usize| xor(a[i], d[i % 5]);
            let b: [__m256i; 25] = [
                t(0),
                rol::<44, 20>(t(6)),
                rol::<43, 21>(t(12)),
                rol::<21, 43>(t(18)),
                rol::<14, 50>(t(24)),
                rol::<28, 36>(t(3)),
                rol::<20, 44>(t(9)),
                rol::<3, 61>(t(10)),
                rol::<45, 19>(t(16)),
                rol::<61, 3>(t(22)),
                rol::<1, 63>(t(1)),
                rol::<6, 58>(t(7)),
                rol::<25, 39>(t(13)),
                rol::<8, 56>(t(19)),
                rol::<18, 46>(t(20)),
                rol::<27, 37>(t(4)),
                rol::<36, 28>(t(5)),
                rol::<10, 54>(t(11)),
                rol::<15, 49>(t(17)),
                rol::<56, 8>(t(23)),
                rol::<62, 2>(t(2)),
                rol::<55, 9>(t(8)),
                rol::<39, 25>(t(14)),
                rol::<41, 23>(t(15)),
                rol::<2, 62>(t(21)),
            ];
            // χ
            for y in 0..5 {
                let row = [0, 1, 2, 3, 4].map(|x| b[x + 5 * y]);
                for x in 0..5 {
                    a[x + 5 * y] = xor(
                        row[x],
                        _mm256_andnot_si256(row[(x + 1) % 5], row[(x + 2) % 5]),
                    );
                }
            }
            // ι
            a[0] = xor(a[0], _mm256_set1_epi64x(rc as i64));
        }
    }

    /// Lane `lane` of block bytes `bytes` (little-endian), zero past the end.
    #[inline(always)]
    fn lane(bytes: &[u8; RATE], lane: usize) -> i64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[8 * lane..8 * lane + 8]);
        i64::from_le_bytes(w)
    }

    /// XORs one block of each of the four messages into the states.
    #[inline(always)]
    unsafe fn absorb(a: &mut [__m256i; 25], blocks: [&[u8; RATE]; 4]) {
        for (i, s) in a.iter_mut().take(RATE / 8).enumerate() {
            let v = _mm256_set_epi64x(
                lane(blocks[3], i),
                lane(blocks[2], i),
                lane(blocks[1], i),
                lane(blocks[0], i),
            );
            *s = xor(*s, v);
        }
    }

    /// keccak256 of four messages with the same number of full blocks (`len / RATE`).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn keccak256_x4(messages: [&[u8]; 4]) -> [B256; 4] {
        let full = messages[0].len() / RATE;
        debug_assert!(messages.iter().all(|m| m.len() / RATE == full));
        let mut a = [_mm256_setzero_si256(); 25];
        for block in 0..full {
            let blocks = messages.map(|m| {
                <&[u8; RATE]>::try_from(&m[block * RATE..(block + 1) * RATE]).expect("a full block")
            });
            absorb(&mut a, blocks);
            permute(&mut a);
        }
        // The last block: the rest of each message, padded (keccak's 0x01 … 0x80).
        let last = messages.map(|m| {
            let rest = &m[full * RATE..];
            let mut block = [0u8; RATE];
            block[..rest.len()].copy_from_slice(rest);
            block[rest.len()] ^= 0x01;
            block[RATE - 1] ^= 0x80;
            block
        });
        absorb(&mut a, [&last[0], &last[1], &last[2], &last[3]]);
        permute(&mut a);
        let mut lanes = [[0u64; 4]; 4];
        for (i, lane) in lanes.iter_mut().enumerate() {
            _mm256_storeu_si256(lane.as_mut_ptr().cast(), a[i]);
        }
        [0, 1, 2, 3].map(|k| {
            let mut out = [0u8; 32];
            for i in 0..4 {
                out[8 * i..8 * i + 8].copy_from_slice(&lanes[i][k].to_le_bytes());
            }
            B256::from(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_keccak256_at_every_length_around_the_block_boundaries() {
        // Lengths across 0..3 blocks, mixed so that groups form and some do not.
        let messages: Vec<Vec<u8>> = (0..700usize)
            .map(|len| (0..len).map(|i| (i * 31 + len) as u8).collect())
            .chain((0..9).map(|k| vec![k as u8; 512]))
            .collect();
        let mut out = vec![B256::ZERO; messages.len()];
        keccak256_many(&messages, &mut out);
        for (m, h) in messages.iter().zip(&out) {
            assert_eq!(*h, keccak256(m), "length {}", m.len());
        }
    }
}
