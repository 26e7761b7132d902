//! The verifier behind `weft l1 verify`: walks the inbox, decodes every batch, checks the
//! hash chain and the continuity of positions, and rebuilds the ordered stream. Given the
//! committee file, it also checks that the inbox is bound to that committee and that every
//! batch carries a quorum of its signatures over an attestation naming the batch's data.

use crate::attested::{from_inbox, unpack_signatures};
use crate::batch::{decode_batch, Position, StreamAssembler};
use crate::l1::{InboxHead, L1Error, L1};
use crate::reader::{batch_data, batch_events, PostedBatch, ReadError};
use crate::source::OrderedSubDag;
use alloy::primitives::{keccak256, Address, B256};
use weft_types::Committee;

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
    /// Batches whose finality certificate was checked against a committee file (0 when
    /// verified without one).
    pub attested: u64,
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
        if self.attested > 0 || self.batches == 0 {
            writeln!(
                f,
                "attested:      {} batches by a quorum of the committee",
                self.attested
            )?;
        }
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

/// Checks the inbox at `inbox` through `rpc`, and every batch's certificate against
/// `committee` when given; see [`read_inbox`].
pub async fn verify(
    rpc: &str,
    inbox: Address,
    committee: Option<&Committee>,
) -> Result<VerifyReport, VerifyError> {
    Ok(read_inbox(rpc, inbox, committee).await?.0)
}

/// Walks the inbox's batches in sequence order, checking each one as `weft l1 verify` does
/// (sequence, hash chain, data hash, decoding, continuity of positions), and rebuilds the
/// ordered stream from them. [`read_inbox`] runs it once over the whole inbox; a rollup node
/// deriving from L1 runs it as batches land.
#[derive(Debug, Default)]
pub struct InboxWalker {
    commitment: B256,
    batches: u64,
    transactions: u64,
    asm: StreamAssembler,
    /// The committee whose certificates each batch must carry, and its id.
    committee: Option<(Committee, B256)>,
    attested: u64,
}

impl InboxWalker {
    /// A walker that also checks each batch's certificate against `committee`.
    pub fn with_committee(committee: Committee) -> Self {
        let id = weft_attest::committee_id(&committee);
        Self {
            committee: Some((committee, id)),
            ..Self::default()
        }
    }

    /// Batches accepted so far; the sequence number the next one must have.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// Checks batch `ev` and returns the sub-DAGs it completes. RPC failures are errors; data
    /// that does not check out is the inner `Err`, after which the walker must not be used
    /// again (the chain of batches is broken there).
    pub async fn apply(
        &mut self,
        l1: &L1,
        ev: &PostedBatch,
    ) -> Result<Result<Vec<OrderedSubDag>, Inconsistency>, L1Error> {
        let fail = |reason: String| {
            Ok(Err(Inconsistency {
                sequence: ev.sequence,
                reason,
            }))
        };
        if ev.sequence != self.batches {
            return fail(format!("expected sequence {}", self.batches));
        }
        let expected = keccak256([self.commitment.as_slice(), ev.data_hash.as_slice()].concat());
        if ev.commitment != expected {
            return fail(format!("commitment {} != {expected}", ev.commitment));
        }
        let posted = match batch_data(l1, ev).await {
            Ok(d) => d,
            Err(ReadError::L1(e)) => return Err(e),
            Err(e) => return fail(e.to_string()),
        };
        if posted.data_hash != ev.data_hash {
            return fail(format!(
                "data hash {} != {}",
                posted.data_hash, ev.data_hash
            ));
        }
        if let Some((committee, id)) = &self.committee {
            let header = from_inbox(*id, &posted.attested);
            if header.batches.get(ev.sequence) != Some(posted.data_hash) {
                return fail(format!(
                    "the attestation of sub-DAG {} does not name this batch's data",
                    header.index
                ));
            }
            let Some(signatures) = unpack_signatures(&posted.signatures) else {
                return fail("malformed signature entries".into());
            };
            if let Err(e) = header.verify(committee, &signatures) {
                return fail(format!("certificate of sub-DAG {}: {e}", header.index));
            }
            self.attested += 1;
        }
        let frames = match decode_batch(&posted.data) {
            Ok(f) => f,
            Err(e) => return fail(format!("batch does not decode: {e}")),
        };
        for frame in frames {
            let n = frame.transactions.len() as u64;
            if let Err(expected) = self.asm.push(frame) {
                return fail(format!("frames do not continue at {expected:?}"));
            }
            self.transactions += n;
        }
        self.commitment = ev.commitment;
        self.batches += 1;
        Ok(Ok(self.asm.take_complete()))
    }
}

/// Reads every batch of the inbox at the current head, in sequence order, and returns the
/// report together with the ordered stream rebuilt from them (complete sub-DAGs only, up to
/// the first inconsistency). RPC failures are errors; anything wrong with the data itself is
/// the report's `first_inconsistency`.
pub async fn read_inbox(
    rpc: &str,
    inbox: Address,
    committee: Option<&Committee>,
) -> Result<(VerifyReport, Vec<OrderedSubDag>), VerifyError> {
    let l1 = L1::new(rpc, inbox)?;
    let block = l1.head_block().await?;
    let head = l1.inbox_head(Some(block)).await?;
    let events = batch_events(&l1, 0, block).await?;
    let mut walker = committee.map_or_else(InboxWalker::default, |c| {
        InboxWalker::with_committee(c.clone())
    });
    let mut sub_dags = Vec::new();
    let mut first_inconsistency = None;
    if let Some((_, id)) = &walker.committee {
        let bound = l1.inbox_committee().await?;
        if bound != *id {
            first_inconsistency = Some(Inconsistency {
                sequence: 0,
                reason: format!("the inbox is bound to committee {bound}, not to this one ({id})"),
            });
        }
    }
    for ev in events.iter().take_while(|_| first_inconsistency.is_none()) {
        match walker.apply(&l1, ev).await? {
            Ok(complete) => sub_dags.extend(complete),
            Err(i) => {
                first_inconsistency = Some(i);
                break;
            }
        }
    }
    let batches = walker.batches;
    if first_inconsistency.is_none()
        && (head.next_sequence != batches || head.commitment != walker.commitment)
    {
        first_inconsistency = Some(Inconsistency {
            sequence: batches,
            reason: format!(
                "inbox head ({}, {}) differs from the events ({batches}, {})",
                head.next_sequence, head.commitment, walker.commitment
            ),
        });
    }
    let report = VerifyReport {
        block,
        batches,
        transactions: walker.transactions,
        sub_dags: sub_dags.len() as u64,
        next_position: walker.asm.next(),
        head,
        attested: walker.attested,
        first_inconsistency,
    };
    Ok((report, sub_dags))
}
