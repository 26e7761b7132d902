//! The verifier behind `weft l1 verify`: walks the inbox, decodes every batch, checks the
//! hash chain and the continuity of positions, and rebuilds the ordered stream.

use crate::batch::{decode_batch, Position, StreamAssembler};
use crate::l1::{InboxHead, L1Error, L1};
use crate::reader::{batch_data, batch_events, ReadError};
use crate::source::OrderedSubDag;
use alloy::primitives::{keccak256, Address, B256};

/// What the inbox holds, as far as it is consistent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The L1 block everything was read at.
    pub block: u64,
    /// Batches checked before the first inconsistency (all of them when there is none).
    pub batches: u64,
    pub transactions: u64,
    /// Complete sub-DAGs rebuilt.
    pub sub_dags: u64,
    /// Where the next batch must start.
    pub next_position: Position,
    /// The inbox's own head at `block`.
    pub head: InboxHead,
    pub first_inconsistency: Option<Inconsistency>,
}

impl std::fmt::Display for VerifyReport {
    /// What `weft l1 verify` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "L1 block:      {}", self.block)?;
        writeln!(f, "batches:       {}", self.batches)?;
        writeln!(f, "transactions:  {}", self.transactions)?;
        writeln!(f, "sub-DAGs:      {}", self.sub_dags)?;
        writeln!(
            f,
            "next position: sub-DAG {} tx {}",
            self.next_position.sub_dag, self.next_position.tx
        )?;
        match &self.first_inconsistency {
            None => write!(f, "consistent:    yes (hash chain and positions check out)"),
            Some(i) => write!(f, "INCONSISTENT at batch {}: {}", i.sequence, i.reason),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inconsistency {
    /// The batch sequence number where it was found.
    pub sequence: u64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    L1(#[from] L1Error),
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Checks the inbox at `inbox` through `rpc`; see [`read_inbox`].
pub async fn verify(rpc: &str, inbox: Address) -> Result<VerifyReport, VerifyError> {
    Ok(read_inbox(rpc, inbox).await?.0)
}

/// Reads every batch of the inbox at the current head, in sequence order, and returns the
/// report together with the ordered stream rebuilt from them (complete sub-DAGs only, up to
/// the first inconsistency). RPC failures are errors; anything wrong with the data itself is
/// the report's `first_inconsistency`.
pub async fn read_inbox(
    rpc: &str,
    inbox: Address,
) -> Result<(VerifyReport, Vec<OrderedSubDag>), VerifyError> {
    let l1 = L1::new(rpc, inbox)?;
    let block = l1.head_block().await?;
    let head = l1.inbox_head(Some(block)).await?;
    let events = batch_events(&l1, 0, block).await?;
    let mut asm = StreamAssembler::default();
    let mut commitment = B256::ZERO;
    let mut batches = 0u64;
    let mut transactions = 0u64;
    let mut first_inconsistency = None;
    for ev in &events {
        let fail = |reason: String| {
            Some(Inconsistency {
                sequence: ev.sequence,
                reason,
            })
        };
        if ev.sequence != batches {
            first_inconsistency = fail(format!("expected sequence {batches}"));
            break;
        }
        let expected = keccak256([commitment.as_slice(), ev.data_hash.as_slice()].concat());
        if ev.commitment != expected {
            first_inconsistency = fail(format!("commitment {} != {expected}", ev.commitment));
            break;
        }
        let (data, data_hash) = match batch_data(&l1, ev).await {
            Ok(d) => d,
            Err(ReadError::L1(e)) => return Err(e.into()),
            Err(e) => {
                first_inconsistency = fail(e.to_string());
                break;
            }
        };
        if data_hash != ev.data_hash {
            first_inconsistency = fail(format!("data hash {data_hash} != {}", ev.data_hash));
            break;
        }
        let frames = match decode_batch(&data) {
            Ok(f) => f,
            Err(e) => {
                first_inconsistency = fail(format!("batch does not decode: {e}"));
                break;
            }
        };
        let mut gap = None;
        for frame in frames {
            let n = frame.transactions.len() as u64;
            if let Err(expected) = asm.push(frame) {
                gap = Some(expected);
                break;
            }
            transactions += n;
        }
        if let Some(expected) = gap {
            first_inconsistency = fail(format!("frames do not continue at {expected:?}"));
            break;
        }
        commitment = ev.commitment;
        batches += 1;
    }
    if first_inconsistency.is_none()
        && (head.next_sequence != batches || head.commitment != commitment)
    {
        first_inconsistency = Some(Inconsistency {
            sequence: batches,
            reason: format!(
                "inbox head ({}, {}) differs from the events ({batches}, {commitment})",
                head.next_sequence, head.commitment
            ),
        });
    }
    let next_position = asm.next();
    let sub_dags = asm.into_complete();
    let report = VerifyReport {
        block,
        batches,
        transactions,
        sub_dags: sub_dags.len() as u64,
        next_position,
        head,
        first_inconsistency,
    };
    Ok((report, sub_dags))
}
