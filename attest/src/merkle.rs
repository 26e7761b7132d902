//! The Merkle tree over a sub-DAG's ordered transaction hashes (RFC 9162's tree, with
//! keccak256): a leaf is `keccak(0x00 ‖ tx hash)`, an inner node `keccak(0x01 ‖ left ‖ right)`,
//! and a tree of n leaves splits at the largest power of two below n. The two prefixes keep a
//! leaf from passing for an inner node, and the proof's shape is fixed by (index, size), so a
//! proof checked against the attested size cannot be re-targeted at another position.
//!
//! Building level by level, a last node without a sibling moving up unchanged, gives the same
//! tree; [`Tree`] keeps the levels so that every proof costs O(log n).

use crate::keccak4::keccak256_many;
use alloy_primitives::{keccak256, B256};

/// The root of a tree with no leaves: keccak256 of the empty string, as in RFC 9162.
pub fn empty_root() -> B256 {
    keccak256([])
}

fn leaf_input(tx_hash: &B256) -> [u8; 33] {
    let mut buf = [0u8; 33];
    buf[1..].copy_from_slice(tx_hash.as_slice());
    buf
}

fn node_input(left: &B256, right: &B256) -> [u8; 65] {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left.as_slice());
    buf[33..].copy_from_slice(right.as_slice());
    buf
}

pub fn leaf_hash(tx_hash: &B256) -> B256 {
    keccak256(leaf_input(tx_hash))
}

/// [`leaf_hash`] of each of `tx_hashes`, four at a time where the CPU allows.
pub fn leaf_hashes(tx_hashes: &[B256]) -> Vec<B256> {
    let inputs: Vec<[u8; 33]> = tx_hashes.iter().map(leaf_input).collect();
    let mut out = vec![B256::ZERO; inputs.len()];
    keccak256_many(&inputs, &mut out);
    out
}

fn node(left: &B256, right: &B256) -> B256 {
    keccak256(node_input(left, right))
}

/// Every level of the tree, leaves first.
pub struct Tree {
    levels: Vec<Vec<B256>>,
}

impl Tree {
    /// The tree over `tx_hashes`, in order.
    pub fn new(tx_hashes: &[B256]) -> Self {
        Self::from_leaf_nodes(leaf_hashes(tx_hashes))
    }

    /// The tree whose leaf nodes ([`leaf_hash`] of each transaction hash) are computed already.
    pub fn from_leaf_nodes(nodes: Vec<B256>) -> Self {
        let mut levels = vec![nodes];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("checked above");
            // The nodes of a level are independent: hashed four at a time.
            let inputs: Vec<[u8; 65]> = below
                .chunks_exact(2)
                .map(|pair| node_input(&pair[0], &pair[1]))
                .collect();
            let mut up = vec![B256::ZERO; below.len().div_ceil(2)];
            keccak256_many(&inputs, &mut up[..inputs.len()]);
            // A last node without a sibling moves up unchanged.
            if let (1, Some(last)) = (below.len() % 2, below.last()) {
                up[inputs.len()] = *last;
            }
            levels.push(up);
        }
        Self { levels }
    }

    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// The leaf nodes, in order.
    pub fn leaf_nodes(&self) -> &[B256] {
        &self.levels[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn root(&self) -> B256 {
        match self.levels.last().and_then(|l| l.first()) {
            Some(root) => *root,
            None => empty_root(),
        }
    }

    /// The siblings from leaf `index` up to the root; `None` past the last leaf.
    pub fn proof(&self, index: usize) -> Option<Vec<B256>> {
        if index >= self.len() {
            return None;
        }
        let mut out = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                out.push(level[sibling]);
            }
            i /= 2;
        }
        Some(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("transaction index {index} is not below the sub-DAG's {size} transactions")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the proof has the wrong length for index {index} of {size}")]
    WrongLength { index: u64, size: u64 },
    #[error("the proof does not lead to the attested root")]
    RootMismatch,
}

/// Checks that `tx_hash` is leaf `index` of the tree of `size` leaves with `root` (RFC 9162
/// §2.1.3.2).
pub fn verify(
    tx_hash: &B256,
    index: u64,
    size: u64,
    proof: &[B256],
    root: &B256,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let wrong_length = ProofError::WrongLength { index, size };
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf_hash(tx_hash);
    for p in proof {
        if s == 0 {
            return Err(wrong_length);
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(n: usize) -> Vec<B256> {
        (0..n as u64).map(|i| keccak256(i.to_le_bytes())).collect()
    }

    /// RFC 9162's recursive definition, to check the level-by-level tree against.
    fn rfc_root(leaves: &[B256]) -> B256 {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                // The largest power of two below n.
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node(&rfc_root(&leaves[..k]), &rfc_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_tree_is_rfc_9162_s_and_every_proof_verifies_only_where_it_belongs() {
        for n in 0..70 {
            let leaves = hashes(n);
            let tree = Tree::new(&leaves);
            assert_eq!(tree.root(), rfc_root(&leaves), "n={n}");
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = tree.proof(i).unwrap();
                let (i, size) = (i as u64, n as u64);
                assert_eq!(verify(leaf, i, size, &proof, &tree.root()), Ok(()));
                // Another position, a truncated or extended proof: all fail. (The size is not
                // checked here: it is part of what the committee signs.)
                if n > 1 {
                    let other = (i + 1) % size;
                    assert!(verify(leaf, other, size, &proof, &tree.root()).is_err());
                }
                if !proof.is_empty() {
                    assert!(verify(leaf, i, size, &proof[1..], &tree.root()).is_err());
                }
                let mut longer = proof.clone();
                longer.push(B256::ZERO);
                assert!(verify(leaf, i, size, &longer, &tree.root()).is_err());
            }
            assert_eq!(tree.proof(n), None);
        }
    }

    #[test]
    fn an_inner_node_does_not_pass_for_a_leaf() {
        let leaves = hashes(4);
        let tree = Tree::new(&leaves);
        // The left child of the root is a node over leaves 0 and 1; offering it as a leaf of a
        // two-leaf tree fails because leaves are hashed with another prefix.
        let inner = tree.levels[1][0];
        let proof = [tree.levels[1][1]];
        assert_eq!(
            verify(&inner, 0, 2, &proof, &tree.root()),
            Err(ProofError::RootMismatch)
        );
    }
}
