//! Cost of a sub-DAG's leaves: keccak256 of each transaction, and the Merkle tree over them.
use std::time::Instant;
fn main() {
    let txs: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| {
            let mut v = vec![7u8; 512];
            v[..4].copy_from_slice(&i.to_le_bytes());
            v
        })
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        let leaves: Vec<_> = txs.iter().map(|t| weft_attest::leaf_of(t)).collect();
        let hashed = t.elapsed();
        let t = Instant::now();
        let mut many = vec![Default::default(); txs.len()];
        weft_attest::keccak4::keccak256_many(&txs, &mut many);
        let four = t.elapsed();
        let hashes: Vec<_> = leaves.iter().map(|l| l.hash).collect();
        assert_eq!(hashes, many);
        println!("keccak256_many: {four:?}");
        let t = Instant::now();
        let tree = weft_attest::Tree::new(&hashes);
        let built = t.elapsed();
        println!(
            "20k x 512 B: leaves {:?} ({:.0} MB/s), tree {:?}, root {}",
            hashed,
            20_000.0 * 512.0 / hashed.as_secs_f64() / 1e6,
            built,
            tree.root()
        );
    }
}
