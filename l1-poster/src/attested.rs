//! The poster's input: the L1 batches the committee closed ([`crate::cutter`]) with the
//! finality certificate of the sub-DAG whose attestation names each. The node implements
//! [`AttestedSource`] over its store; [`MemoryCommittee`] is a committee in memory for tests and
//! examples, cutting and signing as the authorities do, except that it names a batch in the
//! attestation of the sub-DAG that closed it where the authorities name it in the next one's
//! (they cut while the committee certifies): the inbox checks only that the certificate names
//! the batch.

use crate::batch::BatchError;
use crate::cutter::{ClosedBatch, Cutter, CutterParams, CutterState};
use crate::inbox::Inbox;
use crate::source::{MemorySource, SourceError};
use alloy::primitives::B256;
use bytes::Bytes;
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Notify;
use weft_attest::{
    committee_id, leaf_of, Attestation, AttestationKey, AttestedHeader, BatchRefs,
    CertificateSignature, EcdsaSignature, FinalityCertificate, Leaf,
};
use weft_types::{AuthorityIndex, Committee};

/// Bytes per signer entry as the inbox reads them: `authority u16 ‖ r ‖ s ‖ v`.
pub const SIGNATURE_ENTRY_BYTES: usize = 67;

/// A closed batch and the certificate of the sub-DAG that names it: everything the inbox
/// needs to accept it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedBatch {
    pub batch: ClosedBatch,
    pub certificate: FinalityCertificate,
}

/// The committee's batches as the poster reads them.
///
/// Contract: `batch(s)` is `None` until batch `s` is closed and its sub-DAG certified, and
/// the same batch ever after (until pruned). `wait_for(s)` resolves when batch `s` is
/// (probably) available; it may resolve early, callers re-check with `batch`. Cancel-safe.
pub trait AttestedSource: Send + Sync + 'static {
    fn batch(&self, sequence: u64) -> Result<Option<AttestedBatch>, SourceError>;

    fn wait_for(&self, sequence: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The attestation as the inbox's `Attested` struct.
pub fn to_inbox(header: &AttestedHeader) -> Inbox::Attested {
    Inbox::Attested {
        index: header.index,
        leaderRound: header.leader_round,
        timestamp: header.timestamp,
        txCount: header.tx_count,
        txRoot: header.tx_root,
        chainsRoot: header.chains_root,
        previous: header.previous,
        firstBatch: header.batches.first,
        batches: header.batches.hashes.clone(),
    }
}

/// The header an inbox call carries, as signed by committee `committee` (the inbox supplies
/// its own committee id).
pub fn from_inbox(committee: B256, attested: &Inbox::Attested) -> AttestedHeader {
    AttestedHeader {
        committee,
        index: attested.index,
        leader_round: attested.leaderRound,
        timestamp: attested.timestamp,
        tx_count: attested.txCount,
        tx_root: attested.txRoot,
        chains_root: attested.chainsRoot,
        previous: attested.previous,
        batches: BatchRefs {
            first: attested.firstBatch,
            hashes: attested.batches.clone(),
        },
    }
}

/// The signatures as `checkQuorum` reads them.
pub fn pack_signatures(signatures: &[CertificateSignature]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURE_ENTRY_BYTES * signatures.len());
    for s in signatures {
        out.extend_from_slice(&s.authority.to_be_bytes());
        out.extend_from_slice(&s.signature.0);
    }
    out
}

/// The inverse of [`pack_signatures`]; `None` unless whole entries.
pub fn unpack_signatures(packed: &[u8]) -> Option<Vec<CertificateSignature>> {
    if packed.len() % SIGNATURE_ENTRY_BYTES != 0 {
        return None;
    }
    packed
        .chunks_exact(SIGNATURE_ENTRY_BYTES)
        .map(|entry| {
            Some(CertificateSignature {
                authority: u16::from_be_bytes([entry[0], entry[1]]),
                signature: EcdsaSignature(entry[2..].try_into().ok()?),
            })
        })
        .collect()
}

/// A committee in memory: a committed log cut as every authority cuts it, each sub-DAG's
/// attestation signed by `signers` (all of them, or fewer than a quorum to forge a certificate
/// the inbox must refuse).
#[derive(Clone)]
pub struct MemoryCommittee {
    log: MemorySource,
    inner: Arc<Inner>,
}

struct Inner {
    committee_id: B256,
    signers: Vec<(AuthorityIndex, AttestationKey)>,
    state: Mutex<State>,
    closed: Notify,
}

struct State {
    cutter: Cutter,
    previous: B256,
    batches: Vec<AttestedBatch>,
}

impl MemoryCommittee {
    pub fn new(
        committee: &Committee,
        mut signers: Vec<(AuthorityIndex, AttestationKey)>,
        params: CutterParams,
    ) -> Self {
        signers.sort_by_key(|(a, _)| *a);
        Self {
            log: MemorySource::new(),
            inner: Arc::new(Inner {
                committee_id: committee_id(committee),
                signers,
                state: Mutex::new(State {
                    cutter: Cutter::new(params, CutterState::default()),
                    previous: B256::ZERO,
                    batches: Vec::new(),
                }),
                closed: Notify::new(),
            }),
        }
    }

    /// The committed log it cut.
    pub fn log(&self) -> &MemorySource {
        &self.log
    }

    /// Every batch closed so far.
    pub fn batches(&self) -> Vec<AttestedBatch> {
        self.inner.state.lock().batches.clone()
    }

    /// Commits the next sub-DAG at consensus time `timestamp` (ms), cuts and certifies it;
    /// returns the sequence numbers of the batches it closed.
    pub fn push_at(
        &self,
        timestamp: u64,
        transactions: Vec<Bytes>,
    ) -> Result<std::ops::Range<u64>, BatchError> {
        let mut state = self.inner.state.lock();
        let index = self.log.push_at(timestamp, transactions.clone());
        let sub_dag = crate::source::OrderedSubDag {
            index,
            timestamp,
            transactions,
        };
        let closed = state.cutter.push(&sub_dag)?;
        let leaves: Vec<Leaf> = sub_dag.transactions.iter().map(|t| leaf_of(t)).collect();
        let refs = BatchRefs {
            first: closed.first().map_or(0, |b| b.sequence),
            hashes: closed.iter().map(|b| b.data_hash).collect(),
        };
        let attestation = Attestation::build(
            self.inner.committee_id,
            index,
            2 * index,
            timestamp,
            &leaves,
            state.previous,
            refs,
        );
        let digest = attestation.digest();
        state.previous = digest;
        let certificate = FinalityCertificate {
            signatures: self
                .inner
                .signers
                .iter()
                .map(|(a, key)| CertificateSignature {
                    authority: a.0,
                    signature: key.sign(&digest),
                })
                .collect(),
            attestation,
        };
        let range =
            closed.first().map_or(0, |b| b.sequence)..closed.last().map_or(0, |b| b.sequence + 1);
        state
            .batches
            .extend(closed.into_iter().map(|batch| AttestedBatch {
                batch,
                certificate: certificate.clone(),
            }));
        drop(state);
        self.inner.closed.notify_waiters();
        Ok(range)
    }
}

impl AttestedSource for MemoryCommittee {
    fn batch(&self, sequence: u64) -> Result<Option<AttestedBatch>, SourceError> {
        let state = self.inner.state.lock();
        Ok(usize::try_from(sequence)
            .ok()
            .and_then(|s| state.batches.get(s).cloned()))
    }

    fn wait_for(&self, sequence: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                // Registered before the check, so a batch closed in between is seen.
                let notified = self.inner.closed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if (self.inner.state.lock().batches.len() as u64) > sequence {
                    return;
                }
                notified.await;
            }
        })
    }
}
