//! Thin L1 access over alloy: a provider without fillers (nonce, gas and fees are the poster's
//! decisions), signing with a local key, fee estimation under a cap, inbox reads.

use crate::inbox::{Inbox, InboxErrors};
use alloy::consensus::TxEnvelope;
use alloy::eips::eip2718::Encodable2718;
use alloy::eips::BlockId;
use alloy::network::{EthereumWallet, TransactionBuilder, TransactionBuilder4844};
use alloy::primitives::{Address, Bytes, TxHash, B256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolConstructor};
use alloy::transports::{RpcError, TransportErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum L1Error {
    /// The URL, without what may be credentials (see [`redact_url`]).
    #[error("invalid RPC URL {0}")]
    Url(String),
    #[error("L1 RPC: {0}")]
    Rpc(String),
    #[error("the inbox rejected the call: {0:?}")]
    Rejected(InboxErrors),
    #[error("the call reverted: {0}")]
    Reverted(String),
    #[error("base fee {base_fee} plus tip exceeds the cap {cap}")]
    FeeAboveCap { base_fee: u128, cap: u128 },
    #[error("signing: {0}")]
    Sign(String),
    #[error("blob sidecar: {0}")]
    Blob(String),
    #[error("deployment produced no contract address")]
    NoContract,
}

impl From<RpcError<TransportErrorKind>> for L1Error {
    fn from(e: RpcError<TransportErrorKind>) -> Self {
        if let Some(payload) = e.as_error_resp() {
            if let Some(err) = payload.as_decoded_interface_error::<InboxErrors>() {
                return L1Error::Rejected(err);
            }
            if payload.message.contains("revert") {
                return L1Error::Reverted(payload.message.to_string());
            }
        }
        L1Error::Rpc(redact_urls(&e.to_string()))
    }
}

/// `url` with only its scheme, host and port: RPC URLs often carry credentials, as user info
/// (`https://user:secret@host`), as a path (`https://host/v3/<api key>`) or in the query, and
/// none of them belong in a log. What was cut is shown as `…`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let cut = host.len() < authority.len() || !tail.trim_start_matches('/').is_empty();
    format!("{scheme}://{host}{}", if cut { "/…" } else { "" })
}

/// `text` with every URL in it redacted (transport errors quote the URL they failed on).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c)))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || "()<>\"'`,".contains(c))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Fee limits. Fees are in wei.
#[derive(Clone, Copy, Debug)]
pub struct FeePolicy {
    /// Never pay more than this per gas (base fee + tip).
    pub max_fee_per_gas: u128,
    pub priority_fee_per_gas: u128,
    /// Never pay more than this per blob gas.
    pub max_fee_per_blob_gas: u128,
    /// A replacement raises every fee by at least this much (nodes require 10%, 100% for blobs).
    pub bump_percent: u128,
}

impl Default for FeePolicy {
    fn default() -> Self {
        Self {
            max_fee_per_gas: 500_000_000_000,
            priority_fee_per_gas: 1_000_000_000,
            max_fee_per_blob_gas: 500_000_000_000,
            bump_percent: 100,
        }
    }
}

/// The fees one transaction offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fees {
    pub max_fee_per_gas: u128,
    pub priority_fee_per_gas: u128,
    pub max_fee_per_blob_gas: u128,
}

impl Fees {
    /// These fees raised by the policy's bump, capped; `None` when already at the cap.
    pub fn bumped(&self, policy: &FeePolicy) -> Option<Fees> {
        let up = |v: u128| v.saturating_mul(100 + policy.bump_percent) / 100 + 1;
        let next = Fees {
            max_fee_per_gas: up(self.max_fee_per_gas).min(policy.max_fee_per_gas),
            priority_fee_per_gas: up(self.priority_fee_per_gas).min(policy.max_fee_per_gas),
            max_fee_per_blob_gas: up(self.max_fee_per_blob_gas).min(policy.max_fee_per_blob_gas),
        };
        (next != *self).then_some(next)
    }
}

/// The inbox's chain head: the next sequence number and the last commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxHead {
    pub next_sequence: u64,
    pub commitment: B256,
}

/// An RPC connection plus the inbox address.
#[derive(Clone)]
pub struct L1 {
    pub provider: RootProvider,
    pub inbox: Address,
}

pub fn connect(rpc: &str) -> Result<RootProvider, L1Error> {
    let url = rpc.parse().map_err(|_| L1Error::Url(redact_url(rpc)))?;
    Ok(RootProvider::new_http(url))
}

impl L1 {
    pub fn new(rpc: &str, inbox: Address) -> Result<Self, L1Error> {
        Ok(Self {
            provider: connect(rpc)?,
            inbox,
        })
    }

    pub async fn head_block(&self) -> Result<u64, L1Error> {
        Ok(self.provider.get_block_number().await?)
    }

    /// The inbox head as of `block` (latest when `None`).
    pub async fn inbox_head(&self, block: Option<u64>) -> Result<InboxHead, L1Error> {
        let call = TransactionRequest::default()
            .with_to(self.inbox)
            .with_input(Inbox::headCall {}.abi_encode());
        let at = block.map(BlockId::number).unwrap_or(BlockId::latest());
        let out = self.provider.call(call).block(at).await?;
        if out.is_empty() {
            // No code at that block: the inbox was deployed later.
            return Ok(InboxHead {
                next_sequence: 0,
                commitment: B256::ZERO,
            });
        }
        let ret = Inbox::headCall::abi_decode_returns(&out)
            .map_err(|e| L1Error::Rpc(format!("head(): {e}")))?;
        Ok(InboxHead {
            next_sequence: ret.sequence,
            commitment: ret.commitment,
        })
    }

    /// The id of the committee the inbox was deployed with (`weft_attest::committee_id`).
    pub async fn inbox_committee(&self) -> Result<B256, L1Error> {
        let call = TransactionRequest::default()
            .with_to(self.inbox)
            .with_input(Inbox::committeeIdCall {}.abi_encode());
        let out = self.provider.call(call).await?;
        Inbox::committeeIdCall::abi_decode_returns(&out)
            .map_err(|e| L1Error::Rpc(format!("committeeId(): {e}")))
    }

    /// The largest forced transaction the inbox accepts (`MAX_FORCED_TX_BYTES`).
    pub async fn inbox_max_forced_tx_bytes(&self) -> Result<usize, L1Error> {
        let call = TransactionRequest::default()
            .with_to(self.inbox)
            .with_input(Inbox::MAX_FORCED_TX_BYTESCall {}.abi_encode());
        let out = self.provider.call(call).await?;
        let max = Inbox::MAX_FORCED_TX_BYTESCall::abi_decode_returns(&out)
            .map_err(|e| L1Error::Rpc(format!("MAX_FORCED_TX_BYTES(): {e}")))?;
        usize::try_from(max).map_err(|_| L1Error::Rpc(format!("MAX_FORCED_TX_BYTES() = {max}")))
    }

    /// Fees for a transaction now: twice the base fee plus the tip, within the cap.
    pub async fn fees(&self, policy: &FeePolicy, blob: bool) -> Result<Fees, L1Error> {
        let base_fee = self
            .provider
            .get_block(BlockId::latest())
            .await?
            .and_then(|b| b.header.base_fee_per_gas)
            .unwrap_or(0) as u128;
        let tip = policy.priority_fee_per_gas;
        if base_fee + tip > policy.max_fee_per_gas {
            return Err(L1Error::FeeAboveCap {
                base_fee,
                cap: policy.max_fee_per_gas,
            });
        }
        let max_fee_per_blob_gas = if blob {
            let blob_base = self.provider.get_blob_base_fee().await?;
            if blob_base > policy.max_fee_per_blob_gas {
                return Err(L1Error::FeeAboveCap {
                    base_fee: blob_base,
                    cap: policy.max_fee_per_blob_gas,
                });
            }
            (blob_base.saturating_mul(2).max(1)).min(policy.max_fee_per_blob_gas)
        } else {
            0
        };
        Ok(Fees {
            max_fee_per_gas: (base_fee * 2 + tip).min(policy.max_fee_per_gas),
            priority_fee_per_gas: tip,
            max_fee_per_blob_gas,
        })
    }

    pub async fn receipt(&self, hash: TxHash) -> Result<Option<TransactionReceipt>, L1Error> {
        Ok(self.provider.get_transaction_receipt(hash).await?)
    }

    /// Polls for the receipt for up to a minute (someone must be mining: automine, or a test
    /// calling `anvil_mine`). Even with automine it can lag the send on a loaded machine.
    pub async fn wait_receipt(&self, hash: TxHash) -> Result<Option<TransactionReceipt>, L1Error> {
        const POLLS: usize = 600;
        const EVERY: std::time::Duration = std::time::Duration::from_millis(100);
        for _ in 0..POLLS {
            if let Some(r) = self.receipt(hash).await? {
                return Ok(Some(r));
            }
            tokio::time::sleep(EVERY).await;
        }
        Ok(None)
    }

    /// Calls `anvil_mine` (tests and examples).
    pub async fn anvil_mine(&self, blocks: u64) -> Result<(), L1Error> {
        let _: serde_json::Value = self
            .provider
            .raw_request(
                "anvil_mine".into(),
                (alloy::primitives::U256::from(blocks),),
            )
            .await?;
        Ok(())
    }
}

/// Signs with a local key and sends raw transactions.
#[derive(Clone)]
pub struct Signer {
    pub address: Address,
    wallet: EthereumWallet,
    chain_id: u64,
}

/// A transaction to send: calldata to `to`, optionally with a blob sidecar.
pub struct Outgoing {
    pub to: Option<Address>,
    pub input: Bytes,
    pub sidecar: Option<alloy::eips::eip4844::BlobTransactionSidecar>,
}

impl Signer {
    pub async fn new(l1: &L1, key: PrivateKeySigner) -> Result<Self, L1Error> {
        let chain_id = l1.provider.get_chain_id().await?;
        Ok(Self {
            address: key.address(),
            wallet: EthereumWallet::from(key),
            chain_id,
        })
    }

    /// The next nonce according to the latest block.
    pub async fn nonce(&self, l1: &L1) -> Result<u64, L1Error> {
        Ok(l1
            .provider
            .get_transaction_count(self.address)
            .latest()
            .await?)
    }

    fn request(&self, tx: &Outgoing, nonce: u64, fees: Fees) -> TransactionRequest {
        let mut req = TransactionRequest::default()
            .with_from(self.address)
            .with_chain_id(self.chain_id)
            .with_nonce(nonce)
            .with_input(tx.input.clone())
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.priority_fee_per_gas);
        match tx.to {
            Some(to) => req.set_to(to),
            None => req.set_create(),
        }
        if let Some(sidecar) = &tx.sidecar {
            req.set_blob_sidecar(sidecar.clone());
            req.set_max_fee_per_blob_gas(fees.max_fee_per_blob_gas);
        }
        req
    }

    /// Gas for `tx`, plus a margin. A revert (a stale sequence number, a key not allowed)
    /// shows here as `L1Error::Rejected` before anything is sent.
    pub async fn estimate(&self, l1: &L1, tx: &Outgoing, fees: Fees) -> Result<u64, L1Error> {
        let req = self.request(tx, 0, fees);
        // The nonce is irrelevant to the estimate; leave it to the node.
        let req = TransactionRequest { nonce: None, ..req };
        let gas = l1.provider.estimate_gas(req).await?;
        Ok(gas + gas / 5)
    }

    /// Signs and sends; returns the hash (known before the node answers, so a lost answer
    /// still leaves the caller able to look the transaction up).
    pub async fn send(
        &self,
        l1: &L1,
        tx: &Outgoing,
        nonce: u64,
        gas: u64,
        fees: Fees,
    ) -> Result<TxHash, L1Error> {
        let req = self.request(tx, nonce, fees).with_gas_limit(gas);
        let envelope: TxEnvelope = req
            .build(&self.wallet)
            .await
            .map_err(|e| L1Error::Sign(e.to_string()))?;
        let hash = *envelope.tx_hash();
        // The receipt is awaited by the caller's own loop, not by this builder.
        let _pending = l1
            .provider
            .send_raw_transaction(&envelope.encoded_2718())
            .await?;
        Ok(hash)
    }
}

/// Deploys the inbox bound to `committee` (its epoch, attestation addresses and stakes: only
/// batches a quorum of it attested are accepted); returns its address once mined.
pub async fn deploy_inbox(
    rpc: &str,
    deployer: PrivateKeySigner,
    committee: &weft_types::Committee,
) -> Result<Address, L1Error> {
    let l1 = L1::new(rpc, Address::ZERO)?;
    let signer = Signer::new(&l1, deployer).await?;
    let mut code = Inbox::BYTECODE.to_vec();
    let (signers_, stakes_) = committee
        .authorities()
        .map(|(_, a)| (Address::from(a.attestation_address.0), a.stake))
        .unzip();
    code.extend_from_slice(
        &Inbox::constructorCall {
            epoch: committee.epoch(),
            signers_,
            stakes_,
        }
        .abi_encode(),
    );
    let tx = Outgoing {
        to: None,
        input: code.into(),
        sidecar: None,
    };
    let fees = l1.fees(&FeePolicy::default(), false).await?;
    let gas = signer.estimate(&l1, &tx, fees).await?;
    let nonce = signer.nonce(&l1).await?;
    let hash = signer.send(&l1, &tx, nonce, gas, fees).await?;
    let receipt = l1.wait_receipt(hash).await?.ok_or(L1Error::NoContract)?;
    receipt.contract_address.ok_or(L1Error::NoContract)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Credentials in user info, path or query never survive; the host and port do, so a log
    /// still says which endpoint failed.
    #[test]
    fn urls_lose_what_may_be_credentials() {
        for (url, shown) in [
            ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
            ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
            (
                "https://user:s3cret@rpc.example:443",
                "https://rpc.example:443/…",
            ),
            (
                "https://mainnet.example/v3/0123abcd",
                "https://mainnet.example/…",
            ),
            ("https://rpc.example?key=s3cret", "https://rpc.example/…"),
            ("not a url s3cret", "…"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let error = "error sending request for url (https://u:s3cret@h:1/v3/k3y): refused";
        let redacted = redact_urls(error);
        assert_eq!(
            redacted,
            "error sending request for url (https://h:1/…): refused"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
    }
}
