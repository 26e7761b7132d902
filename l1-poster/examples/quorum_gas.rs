//! L1 gas of checking a committee's quorum of secp256k1 signatures, at committees of 4, 10,
//! 31 and 100 equal-stake authorities: deploys `contracts/CommitteeQuorum.sol` on a fresh
//! anvil, signs one digest with a quorum of attestation keys (weft's own signing code), sends
//! `checkQuorum` as a transaction and reports the receipt's gas, and that a quorum less one
//! signer is refused.
//!
//! `cargo run -p weft-l1-poster --example quorum_gas`

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolConstructor};
use rand::{rngs::StdRng, SeedableRng};
use weft_attest::AttestationKey;
use weft_l1_poster::anvil::{Anvil, DEV_KEYS};
use weft_l1_poster::l1::{FeePolicy, Outgoing, Signer, L1};

alloy::sol!(
    #[derive(Debug)]
    CommitteeQuorum,
    "contracts/CommitteeQuorum.json"
);

fn entries(keys: &[AttestationKey], signers: usize, digest: &B256) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate().take(signers) {
        out.extend_from_slice(&(i as u16).to_be_bytes());
        out.extend_from_slice(&key.sign(digest).0);
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let anvil = Anvil::spawn(&[])?;
    let l1 = L1::new(&anvil.endpoint(), Address::ZERO)?;
    let key: PrivateKeySigner = DEV_KEYS[0].parse()?;
    let signer = Signer::new(&l1, key).await?;
    let fees = l1.fees(&FeePolicy::default(), false).await?;
    let mut rng = StdRng::seed_from_u64(13);
    let digest = alloy::primitives::keccak256(b"an attestation digest");
    println!("committee  signers  gas of checkQuorum (tx total)  per signer  calldata bytes");
    let mut previous: Option<(usize, u64)> = None;
    for n in [4usize, 10, 31, 100] {
        let keys: Vec<AttestationKey> =
            (0..n).map(|_| AttestationKey::generate(&mut rng)).collect();
        let mut code = CommitteeQuorum::BYTECODE.to_vec();
        code.extend_from_slice(
            &CommitteeQuorum::constructorCall {
                epoch: 0,
                signers_: keys.iter().map(|k| Address::from(k.address().0)).collect(),
                stakes_: vec![1; n],
            }
            .abi_encode(),
        );
        let deploy = Outgoing {
            to: None,
            input: code.into(),
            sidecar: None,
        };
        let gas = signer.estimate(&l1, &deploy, fees).await?;
        let nonce = signer.nonce(&l1).await?;
        let hash = signer.send(&l1, &deploy, nonce, gas, fees).await?;
        let receipt = l1
            .wait_receipt(hash)
            .await?
            .ok_or("no deployment receipt")?;
        let contract = receipt.contract_address.ok_or("no contract")?;

        let quorum = 2 * n / 3 + 1;
        let call = |signers: usize| Outgoing {
            to: Some(contract),
            input: CommitteeQuorum::checkQuorumCall {
                digest,
                signatures: entries(&keys, signers, &digest).into(),
            }
            .abi_encode()
            .into(),
            sidecar: None,
        };
        let below = signer.estimate(&l1, &call(quorum - 1), fees).await;
        assert!(below.is_err(), "a quorum less one signer must be refused");
        let tx = call(quorum);
        let bytes = tx.input.len();
        let gas = signer.estimate(&l1, &tx, fees).await?;
        let nonce = signer.nonce(&l1).await?;
        let hash = signer.send(&l1, &tx, nonce, gas, fees).await?;
        let receipt = l1.wait_receipt(hash).await?.ok_or("no receipt")?;
        assert!(receipt.status(), "checkQuorum with a quorum succeeds");
        let used = receipt.gas_used;
        let per = previous.map_or(String::from("-"), |(q, g)| {
            format!("{}", (used - g) / (quorum - q) as u64)
        });
        println!("{n:>9}  {quorum:>7}  {used:>29}  {per:>10}  {bytes:>14}");
        previous = Some((quorum, used));
    }
    Ok(())
}
