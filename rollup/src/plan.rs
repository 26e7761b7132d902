//! Which of a sub-DAG's transactions go into its L2 block, and in what order: a pure state
//! machine, so a rollup node fed from the live stream and one fed from L1 alone decide alike.
//!
//! The block holds the transactions in weft's order, minus those that cannot execute there.
//! The planner skips what it can decide from the bytes and the senders' nonces (not a
//! transaction of this chain, no sender, a nonce other than the sender's next one); the
//! engine then leaves out what the EVM refuses (no funds, fee below the base fee, over the
//! block's gas), and [`Planner::executed`] learns which those were. Every input to both
//! decisions is the chain's own state, so a replay skips exactly the same transactions.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{keccak256, Address, B256};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};

/// Senders whose next nonce the planner remembers before it starts again from the chain.
const MAX_CACHED_SENDERS: usize = 1 << 20;

/// What one L2 block is made of: the sub-DAG and this chain's transactions, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2Input {
    /// The committed sub-DAG the block executes.
    pub index: u64,
    /// Its consensus timestamp, ms since the UNIX epoch.
    pub timestamp_ms: u64,
    pub transactions: Vec<Bytes>,
}

/// A transaction the planner sends to the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTx {
    pub hash: B256,
    pub sender: Address,
    pub nonce: u64,
    pub raw: Bytes,
}

/// Why a transaction of the input is not in the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not a canonical Ethereum transaction.
    Undecodable,
    /// A transaction of another chain (or of none).
    OtherChain(Option<u64>),
    /// Its signature recovers no sender.
    NoSender,
    /// Not the sender's next nonce at its place in the order.
    Nonce { expected: u64, got: u64 },
    /// The engine did not execute it (no funds, fee too low, no gas left in the block, …).
    Refused,
}

/// One input transaction, decoded once.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub hash: B256,
    pub outcome: Result<(Address, u64, bool), Skip>,
    pub raw: Bytes,
}

/// Decodes and recovers the sender of each transaction (CPU: ~50 µs each; callers run it off
/// the async runtime). `chain_id` is the rollup's.
pub fn decode(transactions: &[Bytes], chain_id: u64) -> Vec<Decoded> {
    transactions
        .iter()
        .map(|raw| Decoded {
            hash: keccak256(raw),
            outcome: decode_one(raw, chain_id),
            raw: raw.clone(),
        })
        .collect()
}

/// `(sender, nonce, whether it may change another account's nonce)`.
fn decode_one(raw: &[u8], chain_id: u64) -> Result<(Address, u64, bool), Skip> {
    let mut rest = raw;
    let envelope = TxEnvelope::decode_2718(&mut rest).map_err(|_| Skip::Undecodable)?;
    if !rest.is_empty() {
        return Err(Skip::Undecodable);
    }
    let chain = envelope.chain_id();
    if chain != Some(chain_id) || envelope.is_eip4844() {
        return Err(Skip::OtherChain(chain));
    }
    let sender = envelope.recover_signer().map_err(|_| Skip::NoSender)?;
    // EIP-7702 authorisations bump the nonces of the accounts that signed them.
    Ok((sender, envelope.nonce(), envelope.is_eip7702()))
}

/// The planner's state: the next nonce of the senders it has seen, as of the chain's head.
#[derive(Debug, Default)]
pub struct Planner {
    nonces: HashMap<Address, u64>,
}

/// A block's plan: what to send, in order, and what was skipped already.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub send: Vec<PlannedTx>,
    pub skipped: Vec<(B256, Skip)>,
    /// Whether executing it may change nonces the planner cannot follow (EIP-7702).
    pub touches_other_nonces: bool,
}

impl Planner {
    /// The senders of `decoded` whose next nonce must be read from the chain's head (with
    /// [`Planner::learn`]) before [`Planner::plan`].
    pub fn unknown_senders(&self, decoded: &[Decoded]) -> Vec<Address> {
        let mut seen = HashSet::new();
        decoded
            .iter()
            .filter_map(|d| d.outcome.as_ref().ok().map(|(s, _, _)| *s))
            .filter(|s| !self.nonces.contains_key(s) && seen.insert(*s))
            .collect()
    }

    /// `sender`'s next nonce at the head.
    pub fn learn(&mut self, sender: Address, nonce: u64) {
        self.nonces.insert(sender, nonce);
    }

    /// The block for `decoded`, every sender known. A sender's nonces must follow one another
    /// in the block's order; a transaction out of turn is skipped for good (a later one with
    /// the right nonce still goes in).
    pub fn plan(&mut self, decoded: &[Decoded]) -> Plan {
        let mut plan = Plan::default();
        for d in decoded {
            let (sender, nonce, touches) = match &d.outcome {
                Ok(ok) => *ok,
                Err(skip) => {
                    plan.skipped.push((d.hash, skip.clone()));
                    continue;
                }
            };
            let Some(expected) = self.nonces.get_mut(&sender) else {
                // The contract says every sender is known; one that is not cannot be placed.
                plan.skipped.push((d.hash, Skip::NoSender));
                continue;
            };
            if nonce != *expected {
                plan.skipped.push((
                    d.hash,
                    Skip::Nonce {
                        expected: *expected,
                        got: nonce,
                    },
                ));
                continue;
            }
            *expected += 1;
            plan.touches_other_nonces |= touches;
            plan.send.push(PlannedTx {
                hash: d.hash,
                sender,
                nonce,
                raw: d.raw.clone(),
            });
        }
        plan
    }

    /// The engine executed `plan` and included `included` (a subsequence of `plan.send`):
    /// returns the rest as refused, and forgets the nonces that no longer follow.
    pub fn executed(&mut self, plan: &Plan, included: &[B256]) -> Vec<(B256, Skip)> {
        if plan.touches_other_nonces || self.nonces.len() > MAX_CACHED_SENDERS {
            self.nonces.clear();
        }
        let included: HashSet<&B256> = included.iter().collect();
        let mut refused = Vec::new();
        for tx in &plan.send {
            if !included.contains(&tx.hash) {
                // Its sender's nonce did not advance as planned; read it again next time.
                self.nonces.remove(&tx.sender);
                refused.push((tx.hash, Skip::Refused));
            }
        }
        refused
    }
}

/// Whether `included` is `sent` with some left out, order kept: what an engine must return.
pub fn is_subsequence(included: &[B256], sent: &[PlannedTx]) -> bool {
    let mut sent = sent.iter();
    included.iter().all(|h| sent.any(|t| t.hash == *h))
}

/// The block time, in seconds, for a sub-DAG with consensus timestamp `timestamp_ms` on a
/// parent of time `parent`: the consensus time, never before the parent's (blocks in the same
/// second share it).
pub fn block_time(parent: u64, timestamp_ms: u64) -> u64 {
    parent.max(timestamp_ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(sender: u8, nonce: u64) -> Decoded {
        Decoded {
            hash: keccak256([sender, nonce as u8]),
            outcome: Ok((Address::repeat_byte(sender), nonce, false)),
            raw: Bytes::new(),
        }
    }

    /// Nonces must follow in the block's order: a duplicate and a nonce from the future are
    /// skipped with the expected nonce, a later in-turn one goes in; a refusal by the engine
    /// makes the planner read the sender's nonce again.
    #[test]
    fn nonces_follow_in_order_and_refusals_are_forgotten() {
        let mut p = Planner::default();
        let input = vec![
            decoded(1, 5),
            decoded(1, 7),
            decoded(1, 6),
            decoded(1, 6),
            decoded(2, 0),
            Decoded {
                hash: B256::ZERO,
                outcome: Err(Skip::OtherChain(Some(9))),
                raw: Bytes::new(),
            },
        ];
        assert_eq!(
            p.unknown_senders(&input),
            vec![Address::repeat_byte(1), Address::repeat_byte(2)]
        );
        p.learn(Address::repeat_byte(1), 5);
        p.learn(Address::repeat_byte(2), 0);
        let plan = p.plan(&input);
        let sent: Vec<(u8, u64)> = plan.send.iter().map(|t| (t.sender.0[0], t.nonce)).collect();
        assert_eq!(sent, vec![(1, 5), (1, 6), (2, 0)]);
        assert_eq!(
            plan.skipped,
            vec![
                (
                    input[1].hash,
                    Skip::Nonce {
                        expected: 6,
                        got: 7
                    }
                ),
                (
                    input[3].hash,
                    Skip::Nonce {
                        expected: 7,
                        got: 6
                    }
                ),
                (B256::ZERO, Skip::OtherChain(Some(9))),
            ]
        );
        // The engine refused sender 2's transaction: its nonce is read again.
        let included = vec![input[0].hash, input[2].hash];
        assert!(is_subsequence(&included, &plan.send));
        assert!(!is_subsequence(&[input[2].hash, input[0].hash], &plan.send));
        assert_eq!(
            p.executed(&plan, &included),
            vec![(input[4].hash, Skip::Refused)]
        );
        assert_eq!(p.unknown_senders(&input), vec![Address::repeat_byte(2)]);
    }

    #[test]
    fn block_time_is_consensus_time_in_seconds_and_never_goes_back() {
        assert_eq!(block_time(0, 1_700_000_000_999), 1_700_000_000);
        assert_eq!(block_time(1_700_000_001, 1_700_000_000_999), 1_700_000_001);
    }
}
