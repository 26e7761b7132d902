//! A committed transaction's leaf: its keccak256 hash (an Ethereum transaction's hash) and
//! the chain id it names, read from the RLP fields without decoding the whole transaction.
//! Every authority computes the same leaf from the same bytes; for a canonical transaction
//! the chain id is the one a full decode gives.

use crate::attestation::Leaf;
use alloy_primitives::keccak256;

pub fn leaf_of(raw: &[u8]) -> Leaf {
    Leaf {
        hash: keccak256(raw),
        chain_id: chain_id_of(raw),
    }
}

/// The chain id of an EIP-2718 typed transaction (types 1 to 4: the first field) or of an
/// EIP-155 legacy one (`(v - 35) / 2`); `None` for anything else.
pub fn chain_id_of(raw: &[u8]) -> Option<u64> {
    match *raw.first()? {
        0x01..=0x04 => {
            let (list, _) = item(&raw[1..], true)?;
            uint(item(list, false)?.0)
        }
        0xc0.. => {
            let (mut fields, _) = item(raw, true)?;
            for _ in 0..6 {
                fields = rest_after(fields)?;
            }
            let v = uint(item(fields, false)?.0)?;
            (v >= 35).then(|| (v - 35) / 2)
        }
        _ => None,
    }
}

/// The payload of the RLP item at the start of `buf` (a list if `list`), and what follows.
fn item(buf: &[u8], list: bool) -> Option<(&[u8], &[u8])> {
    let b = *buf.first()?;
    let (offset, len) = match (b, list) {
        (0x00..=0x7f, false) => return Some((&buf[..1], &buf[1..])),
        (0x80..=0xb7, false) => (1, (b - 0x80) as usize),
        (0xb8..=0xbf, false) => long(buf, (b - 0xb7) as usize)?,
        (0xc0..=0xf7, true) => (1, (b - 0xc0) as usize),
        (0xf8..=0xff, true) => long(buf, (b - 0xf7) as usize)?,
        _ => return None,
    };
    let end = offset.checked_add(len)?;
    (end <= buf.len()).then(|| (&buf[offset..end], &buf[end..]))
}

fn long(buf: &[u8], len_of_len: usize) -> Option<(usize, usize)> {
    let bytes = buf.get(1..1 + len_of_len)?;
    let len = uint(bytes)?;
    Some((1 + len_of_len, usize::try_from(len).ok()?))
}

/// Skips one item, list or string.
fn rest_after(buf: &[u8]) -> Option<&[u8]> {
    let list = *buf.first()? >= 0xc0;
    Some(item(buf, list)?.1)
}

fn uint(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_has_no_chain_id_and_never_panics() {
        for raw in [
            &[][..],
            &[0x02],
            &[0x02, 0xc1],
            &[0xf8],
            &[0xc0],
            &[0x05, 0xc0],
            b"hello",
        ] {
            assert_eq!(chain_id_of(raw), None, "{raw:?}");
        }
        // A typed transaction whose first field is chain id 1001 (0x03e9).
        assert_eq!(chain_id_of(&[0x02, 0xc3, 0x82, 0x03, 0xe9]), Some(1001));
    }
}
