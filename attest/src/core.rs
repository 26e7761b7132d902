//! The attester: a pure state machine that signs each committed sub-DAG once, collects the
//! other authorities' signatures and forms finality certificates. No I/O, clock or randomness:
//! the node's actor feeds it the committed log and the peers' messages and carries out its
//! [`Output`], in order: persist what it says to persist, *then* send.
//!
//! Never two attestations for one index: [`Attester::sign`] only signs the index after the
//! last one signed, and the caller persists that signature before sending it (the record it
//! recovers from on restart), exactly as a vote is recorded before it is sent.

use crate::attestation::{
    committee_id, Attestation, BatchRefs, CertificateError, CertificateSignature,
    FinalityCertificate, Leaf, Roots, SignedAttestation,
};
use crate::key::{AttestationKey, EcdsaSignature};
use alloy_primitives::B256;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use weft_types::{AuthorityIndex, Committee, Stake};

/// How far past its own next index an authority keeps other authorities' signatures: a peer
/// ahead of it by more is asked again later (its reliable sender retries), not remembered.
pub const EARLY_WINDOW: u64 = 1_000;

/// What the caller must do, in this order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Own signature to make durable before anything else of this output is sent.
    pub persist_signed: Option<SignedAttestation>,
    /// Own signature to send to every other authority.
    pub broadcast: Option<SignedAttestation>,
    /// Certificates formed: to store with the log.
    pub certified: Vec<FinalityCertificate>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    #[error("sub-DAG {index} comes before the next one to sign, {next}: it was signed already")]
    AlreadySigned { index: u64, next: u64 },
    #[error("sub-DAG {index} skips ahead of the next one to sign, {next}")]
    OutOfOrder { index: u64, next: u64 },
    #[error(transparent)]
    Invalid(#[from] CertificateError),
    #[error("sent by {peer} but signed by {author}")]
    WrongSender { peer: u16, author: u16 },
    #[error("sub-DAG {index} is more than {EARLY_WINDOW} past this authority's next ({next})")]
    TooFarAhead { index: u64, next: u64 },
    /// A validly signed attestation that differs from this authority's own for the index: the
    /// signer ordered something else (or this authority did). Kept as evidence.
    #[error("authority {author} attested sub-DAG {index} differently ({theirs}, ours {ours})")]
    Conflict {
        author: u16,
        index: u64,
        ours: B256,
        theirs: B256,
    },
}

impl AttestError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AlreadySigned { .. } => "already_signed",
            Self::OutOfOrder { .. } => "out_of_order",
            Self::Invalid(e) => e.kind(),
            Self::WrongSender { .. } => "wrong_sender",
            Self::TooFarAhead { .. } => "too_far_ahead",
            Self::Conflict { .. } => "conflict",
        }
    }
}

/// What a peer's message changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Counted (or kept until this authority signs the index).
    Counted,
    /// Counted, and it completed the index's certificate: store it.
    Formed(Box<FinalityCertificate>),
    /// The index is certified already here: answer with the stored certificate.
    Certified,
}

/// An own attestation that has no certificate yet, and the matching signatures so far.
struct Pending {
    attestation: Attestation,
    digest: B256,
    signatures: BTreeMap<AuthorityIndex, EcdsaSignature>,
    stake: Stake,
}

pub struct Attester {
    me: AuthorityIndex,
    committee: Arc<Committee>,
    committee_id: B256,
    key: AttestationKey,
    /// Index the next `sign` must be for.
    next: u64,
    /// Digest of the last attestation signed (`previous` of the next one).
    previous: B256,
    /// Own attestations without a certificate, by index.
    pending: BTreeMap<u64, Pending>,
    /// Other authorities' signatures on indexes not signed here yet.
    early: BTreeMap<u64, HashMap<AuthorityIndex, (B256, EcdsaSignature)>>,
    /// Digests of the own attestations certified in the last `EARLY_WINDOW` indexes: a late
    /// signature of another one is still caught as a conflict.
    certified: BTreeMap<u64, B256>,
}

impl Attester {
    /// Starts after `last_signed`, the newest own signature persisted (none on a fresh
    /// store), with `uncertified` the persisted own signatures that have no certificate yet.
    /// Returns those to send again: peers answer them with their certificates.
    pub fn recover(
        me: AuthorityIndex,
        committee: Arc<Committee>,
        key: AttestationKey,
        last_signed: Option<&SignedAttestation>,
        uncertified: Vec<SignedAttestation>,
    ) -> (Self, Vec<SignedAttestation>) {
        let committee_id = committee_id(&committee);
        let (next, previous) = match last_signed {
            Some(s) => (s.attestation.index + 1, s.attestation.digest()),
            None => (0, B256::ZERO),
        };
        let mut attester = Self {
            me,
            committee,
            committee_id,
            key,
            next,
            previous,
            pending: BTreeMap::new(),
            early: BTreeMap::new(),
            certified: BTreeMap::new(),
        };
        for s in &uncertified {
            attester.insert_pending(s.attestation.clone(), s.signature);
        }
        (attester, uncertified)
    }

    pub fn committee_id(&self) -> B256 {
        self.committee_id
    }

    /// The next index to sign.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Indexes signed here that have no certificate yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Signs committed sub-DAG `index`, which must be the next one.
    pub fn sign(
        &mut self,
        index: u64,
        leader_round: u64,
        timestamp: u64,
        leaves: &[Leaf],
        batches: BatchRefs,
    ) -> Result<Output, AttestError> {
        self.sign_roots(index, leader_round, timestamp, Roots::of(leaves), batches)
    }

    /// [`Self::sign`] with the transactions' roots computed already.
    pub fn sign_roots(
        &mut self,
        index: u64,
        leader_round: u64,
        timestamp: u64,
        roots: Roots,
        batches: BatchRefs,
    ) -> Result<Output, AttestError> {
        if index < self.next {
            return Err(AttestError::AlreadySigned {
                index,
                next: self.next,
            });
        }
        if index > self.next {
            return Err(AttestError::OutOfOrder {
                index,
                next: self.next,
            });
        }
        let attestation = Attestation::with_roots(
            self.committee_id,
            index,
            leader_round,
            timestamp,
            roots,
            self.previous,
            batches,
        );
        let digest = attestation.digest();
        let signature = self.key.sign(&digest);
        self.next = index + 1;
        self.previous = digest;
        let signed = SignedAttestation {
            author: self.me,
            attestation: attestation.clone(),
            signature,
        };
        self.insert_pending(attestation, signature);
        let mut output = Output {
            persist_signed: Some(signed.clone()),
            broadcast: Some(signed),
            certified: Vec::new(),
        };
        for (author, (theirs, signature)) in self.early.remove(&index).unwrap_or_default() {
            if theirs == digest {
                self.count(index, author, signature);
            }
        }
        output.certified.extend(self.certify(index));
        Ok(output)
    }

    /// Another authority's signature, received from `peer`.
    pub fn on_signed(
        &mut self,
        peer: AuthorityIndex,
        signed: &SignedAttestation,
    ) -> Result<Accepted, AttestError> {
        if signed.author != peer {
            return Err(AttestError::WrongSender {
                peer: peer.0,
                author: signed.author.0,
            });
        }
        signed.verify(&self.committee, &self.committee_id)?;
        let index = signed.attestation.index;
        let digest = signed.attestation.digest();
        if let Some(pending) = self.pending.get(&index) {
            if pending.digest != digest {
                return Err(self.conflict(signed.author, index, pending.digest, digest));
            }
            self.count(index, signed.author, signed.signature);
            return Ok(match self.certify(index) {
                Some(certificate) => Accepted::Formed(Box::new(certificate)),
                None => Accepted::Counted,
            });
        }
        if index < self.next {
            if let Some(ours) = self.certified.get(&index).copied() {
                if ours != digest {
                    return Err(self.conflict(signed.author, index, ours, digest));
                }
            }
            return Ok(Accepted::Certified);
        }
        if index >= self.next + EARLY_WINDOW {
            return Err(AttestError::TooFarAhead {
                index,
                next: self.next,
            });
        }
        self.early
            .entry(index)
            .or_default()
            .insert(signed.author, (digest, signed.signature));
        Ok(Accepted::Counted)
    }

    /// A certificate a peer answered with: taken if it certifies this authority's own
    /// attestation of an index still pending here.
    pub fn on_certificate(
        &mut self,
        certificate: FinalityCertificate,
    ) -> Result<Option<FinalityCertificate>, AttestError> {
        certificate.verify_with_id(&self.committee, &self.committee_id)?;
        let index = certificate.attestation.index;
        let Some(pending) = self.pending.get(&index) else {
            return Ok(None);
        };
        let digest = certificate.attestation.digest();
        if pending.digest != digest {
            // A quorum signed something this authority did not order: only a safety failure
            // of consensus (or of this node's log) gets here.
            return Err(self.conflict(self.me, index, pending.digest, digest));
        }
        self.pending.remove(&index);
        self.remember(index, digest);
        Ok(Some(certificate))
    }

    fn conflict(
        &self,
        author: AuthorityIndex,
        index: u64,
        ours: B256,
        theirs: B256,
    ) -> AttestError {
        AttestError::Conflict {
            author: author.0,
            index,
            ours,
            theirs,
        }
    }

    fn insert_pending(&mut self, attestation: Attestation, own: EcdsaSignature) {
        let index = attestation.index;
        let digest = attestation.digest();
        self.pending.insert(
            index,
            Pending {
                attestation,
                digest,
                signatures: BTreeMap::new(),
                stake: 0,
            },
        );
        self.count(index, self.me, own);
    }

    fn remember(&mut self, index: u64, digest: B256) {
        self.certified.insert(index, digest);
        let keep = self.next.saturating_sub(EARLY_WINDOW);
        self.certified = self.certified.split_off(&keep);
    }

    fn count(&mut self, index: u64, author: AuthorityIndex, signature: EcdsaSignature) {
        let stake = self.committee.stake(author);
        if let Some(p) = self.pending.get_mut(&index) {
            if p.signatures.insert(author, signature).is_none() {
                p.stake += stake;
            }
        }
    }

    /// The certificate of `index` once its signatures reach quorum stake.
    fn certify(&mut self, index: u64) -> Option<FinalityCertificate> {
        let quorum = self.committee.quorum_threshold();
        if self.pending.get(&index)?.stake < quorum {
            return None;
        }
        let pending = self.pending.remove(&index)?;
        self.remember(index, pending.digest);
        Some(FinalityCertificate {
            attestation: pending.attestation,
            signatures: pending
                .signatures
                .into_iter()
                .map(|(a, signature)| CertificateSignature {
                    authority: a.0,
                    signature,
                })
                .collect(),
        })
    }
}
