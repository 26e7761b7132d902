//! What the committee signs about each committed sub-DAG, the certificate a quorum of those
//! signatures makes, and the pre-confirmation of one transaction built on it. Everything here
//! is checked with a committee file alone.
//!
//! The digest an authority signs is `keccak256(abi.encode(ATTESTATION_DOMAIN, committee, index,
//! leader_round, timestamp, tx_count, tx_root, chains_root, previous, batches_root))`, each field
//! one 32-byte word, so a Solidity contract recomputes it with one `abi.encode`.
//! `batches_root` names the L1 batches that sub-DAG `index` closed (see [`BatchRefs`]): the
//! certificate of that sub-DAG is what the inbox checks a batch against. `previous` is the digest
//! of sub-DAG `index - 1`'s attestation (zero for sub-DAG 0): a certificate on sub-DAG k
//! binds the whole log up to k.

use crate::key::{recover, EcdsaSignature, SIGNATURE_LEN};
use crate::merkle::{self, leaf_hash, ProofError, Tree};
use alloy_primitives::{keccak256, B256};
use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use weft_types::codec::{put_vec, vec_len, Decode, DecodeError, Encode, Reader};
use weft_types::{AuthorityIndex, Committee, Stake};

/// `keccak256("weft.attestation.v1")`, the first word of every signed digest.
pub fn attestation_domain() -> B256 {
    keccak256(b"weft.attestation.v1")
}

/// `keccak256("weft.committee.v1")`.
pub fn committee_domain() -> B256 {
    keccak256(b"weft.committee.v1")
}

fn word(value: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[24..].copy_from_slice(&value.to_be_bytes());
    out
}

/// The committee's identity as attestations and the inbox name it:
/// `keccak256(abi.encode(COMMITTEE_DOMAIN, epoch) ‖ abi.encode(address_0, stake_0) ‖ …)` in
/// authority-index order. Another epoch, another signer or another stake is another committee.
pub fn committee_id(committee: &Committee) -> B256 {
    let mut buf = Vec::with_capacity(64 + 64 * committee.size());
    buf.extend_from_slice(committee_domain().as_slice());
    buf.extend_from_slice(&word(committee.epoch()));
    for (_, a) in committee.authorities() {
        let mut address = [0u8; 32];
        address[12..].copy_from_slice(&a.attestation_address.0);
        buf.extend_from_slice(&address);
        buf.extend_from_slice(&word(a.stake));
    }
    keccak256(buf)
}

/// The root of one chain's transactions within a sub-DAG, for a rollup that reads only its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainRoot {
    pub chain_id: u64,
    pub tx_count: u64,
    pub root: B256,
}

/// The L1 batches an attestation names, as the log's cutter (`weft_l1_poster::cutter`) cuts
/// them: batch `first + i` has data hash `hashes[i]`. `first` is 0 when it names none. The
/// committee's attestation of sub-DAG k names the batches closed by the sub-DAGs before k that
/// no earlier attestation named (see the node's attester).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchRefs {
    pub first: u64,
    pub hashes: Vec<B256>,
}

impl BatchRefs {
    /// Zero when no batch closed, else `keccak256(abi.encodePacked(uint256(first), hashes))`.
    pub fn root(&self) -> B256 {
        if self.hashes.is_empty() {
            return B256::ZERO;
        }
        let mut buf = Vec::with_capacity(32 * (1 + self.hashes.len()));
        buf.extend_from_slice(&word(self.first));
        for h in &self.hashes {
            buf.extend_from_slice(h.as_slice());
        }
        keccak256(buf)
    }

    /// The data hash of batch `sequence`, if this attestation names it.
    pub fn get(&self, sequence: u64) -> Option<B256> {
        let at = usize::try_from(sequence.checked_sub(self.first)?).ok()?;
        self.hashes.get(at).copied()
    }
}

/// One committed sub-DAG as an authority attests it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attestation {
    /// [`committee_id`] of the signing committee.
    pub committee: B256,
    pub index: u64,
    pub leader_round: u64,
    /// Consensus timestamp, ms since the UNIX epoch.
    pub timestamp: u64,
    pub tx_count: u64,
    /// Merkle root over the ordered transactions' keccak256 hashes ([`merkle`]).
    pub tx_root: B256,
    /// Per chain id, ascending: the chain's transactions in order, under their own root.
    pub chains: Vec<ChainRoot>,
    /// Digest of the attestation of sub-DAG `index - 1`; zero for sub-DAG 0.
    pub previous: B256,
    /// The L1 batches this sub-DAG closed.
    pub batches: BatchRefs,
}

/// One committed transaction as an attestation sees it: its keccak256 hash, and its chain id
/// when it is an Ethereum transaction that names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub hash: B256,
    pub chain_id: Option<u64>,
}

/// What an attestation commits to of a sub-DAG's transactions: their count, their tree's
/// root, and each chain's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roots {
    pub tx_count: u64,
    pub tx_root: B256,
    pub chains: Vec<ChainRoot>,
}

impl Roots {
    /// The roots over these transactions, in order.
    pub fn of(leaves: &[Leaf]) -> Self {
        let nodes: Vec<B256> = leaves.iter().map(|l| leaf_hash(&l.hash)).collect();
        Self::of_hashed(leaves, &Tree::from_leaf_nodes(nodes))
    }

    /// The roots when the transactions' tree is built already (`tree` is over `leaves`):
    /// each chain's tree reuses its leaf nodes, and a chain that holds every transaction has
    /// the very same tree.
    pub fn of_hashed(leaves: &[Leaf], tree: &Tree) -> Self {
        let mut by_chain: std::collections::BTreeMap<u64, Vec<B256>> = Default::default();
        for (leaf, node) in leaves.iter().zip(tree.leaf_nodes()) {
            if let Some(chain) = leaf.chain_id {
                by_chain.entry(chain).or_default().push(*node);
            }
        }
        let chains = by_chain
            .into_iter()
            .map(|(chain_id, nodes)| ChainRoot {
                chain_id,
                tx_count: nodes.len() as u64,
                root: if nodes.len() == tree.len() {
                    tree.root()
                } else {
                    Tree::from_leaf_nodes(nodes).root()
                },
            })
            .collect();
        Self {
            tx_count: leaves.len() as u64,
            tx_root: tree.root(),
            chains,
        }
    }
}

impl Attestation {
    /// The attestation of a sub-DAG with these transactions, in order.
    pub fn build(
        committee: B256,
        index: u64,
        leader_round: u64,
        timestamp: u64,
        leaves: &[Leaf],
        previous: B256,
        batches: BatchRefs,
    ) -> Self {
        let roots = Roots::of(leaves);
        Self::with_roots(
            committee,
            index,
            leader_round,
            timestamp,
            roots,
            previous,
            batches,
        )
    }

    /// The attestation of a sub-DAG whose transactions have these roots.
    pub fn with_roots(
        committee: B256,
        index: u64,
        leader_round: u64,
        timestamp: u64,
        roots: Roots,
        previous: B256,
        batches: BatchRefs,
    ) -> Self {
        Self {
            committee,
            index,
            leader_round,
            timestamp,
            tx_count: roots.tx_count,
            tx_root: roots.tx_root,
            chains: roots.chains,
            previous,
            batches,
        }
    }

    /// `keccak256` over `abi.encode(chain_id, tx_count, root)` of each chain, in order.
    pub fn chains_root(&self) -> B256 {
        let mut buf = Vec::with_capacity(96 * self.chains.len());
        for c in &self.chains {
            buf.extend_from_slice(&word(c.chain_id));
            buf.extend_from_slice(&word(c.tx_count));
            buf.extend_from_slice(c.root.as_slice());
        }
        keccak256(buf)
    }

    /// What each authority signs.
    pub fn digest(&self) -> B256 {
        self.header().digest()
    }

    /// The attestation as L1 sees it: the per-chain roots folded into their root.
    pub fn header(&self) -> AttestedHeader {
        AttestedHeader {
            committee: self.committee,
            index: self.index,
            leader_round: self.leader_round,
            timestamp: self.timestamp,
            tx_count: self.tx_count,
            tx_root: self.tx_root,
            chains_root: self.chains_root(),
            previous: self.previous,
            batches: self.batches.clone(),
        }
    }
}

/// The words of an attestation's digest: an [`Attestation`] with its chain roots folded into
/// `chains_root`. This is what a batch posted to L1 carries, and what the inbox hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedHeader {
    pub committee: B256,
    pub index: u64,
    pub leader_round: u64,
    pub timestamp: u64,
    pub tx_count: u64,
    pub tx_root: B256,
    pub chains_root: B256,
    pub previous: B256,
    pub batches: BatchRefs,
}

impl AttestedHeader {
    /// `keccak256(abi.encode(ATTESTATION_DOMAIN, committee, index, leader_round, timestamp,
    /// tx_count, tx_root, chains_root, previous, batches_root))`.
    pub fn digest(&self) -> B256 {
        let mut buf = [0u8; 10 * 32];
        let words: [[u8; 32]; 10] = [
            attestation_domain().0,
            self.committee.0,
            word(self.index),
            word(self.leader_round),
            word(self.timestamp),
            word(self.tx_count),
            self.tx_root.0,
            self.chains_root.0,
            self.previous.0,
            self.batches.root().0,
        ];
        for (i, w) in words.iter().enumerate() {
            buf[32 * i..32 * (i + 1)].copy_from_slice(w);
        }
        keccak256(buf)
    }

    /// Checks, offline, that `signatures` (ascending authorities) carry quorum stake of
    /// `committee` over this header, and that it names `committee`.
    pub fn verify(
        &self,
        committee: &Committee,
        signatures: &[CertificateSignature],
    ) -> Result<(), CertificateError> {
        let expected = committee_id(committee);
        if self.committee != expected {
            return Err(CertificateError::WrongCommittee {
                expected,
                got: self.committee,
            });
        }
        verify_quorum(committee, &self.digest(), signatures)
    }
}

/// Checks that `signatures`, authorities listed once each in ascending order, are valid over
/// `digest` and carry at least quorum stake.
fn verify_quorum(
    committee: &Committee,
    digest: &B256,
    signatures: &[CertificateSignature],
) -> Result<(), CertificateError> {
    let mut stake: Stake = 0;
    let mut last: Option<u16> = None;
    for s in signatures {
        if last.is_some_and(|l| s.authority <= l) {
            return Err(CertificateError::SignersOutOfOrder(s.authority));
        }
        last = Some(s.authority);
        stake += check_signer(committee, AuthorityIndex(s.authority), digest, &s.signature)?;
    }
    let quorum = committee.quorum_threshold();
    if stake < quorum {
        return Err(CertificateError::BelowQuorum { stake, quorum });
    }
    Ok(())
}

/// One authority's signature on an attestation, as authorities send it to each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedAttestation {
    pub author: AuthorityIndex,
    pub attestation: Attestation,
    pub signature: EcdsaSignature,
}

/// Why a signature, a certificate or a pre-confirmation is not what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("signed by committee {got}, not by this committee ({expected})")]
    WrongCommittee { expected: B256, got: B256 },
    #[error("authority {0} is not in the committee")]
    UnknownAuthority(u16),
    #[error("signers must be listed once each in ascending order; {0} is out of place")]
    SignersOutOfOrder(u16),
    #[error("the signature of authority {0} is not its attestation key's over this attestation")]
    BadSignature(u16),
    #[error("signed by {stake} stake, below the quorum of {quorum}")]
    BelowQuorum { stake: Stake, quorum: Stake },
}

impl CertificateError {
    /// A short label, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WrongCommittee { .. } => "wrong_committee",
            Self::UnknownAuthority(_) => "unknown_authority",
            Self::SignersOutOfOrder(_) => "signers_out_of_order",
            Self::BadSignature(_) => "bad_signature",
            Self::BelowQuorum { .. } => "below_quorum",
        }
    }
}

/// Checks that `signature` is `author`'s over `digest`: returns the author's stake.
fn check_signer(
    committee: &Committee,
    author: AuthorityIndex,
    digest: &B256,
    signature: &EcdsaSignature,
) -> Result<Stake, CertificateError> {
    let authority = committee
        .authority(author)
        .ok_or(CertificateError::UnknownAuthority(author.0))?;
    if recover(digest, signature) != Some(authority.attestation_address) {
        return Err(CertificateError::BadSignature(author.0));
    }
    Ok(authority.stake)
}

fn check_committee(committee_id: &B256, attestation: &Attestation) -> Result<(), CertificateError> {
    if attestation.committee != *committee_id {
        return Err(CertificateError::WrongCommittee {
            expected: *committee_id,
            got: attestation.committee,
        });
    }
    Ok(())
}

impl SignedAttestation {
    /// Checks the committee and the author's signature (`committee_id` is
    /// [`committee_id`]`(committee)`, computed once by the caller).
    pub fn verify(
        &self,
        committee: &Committee,
        committee_id: &B256,
    ) -> Result<(), CertificateError> {
        check_committee(committee_id, &self.attestation)?;
        check_signer(
            committee,
            self.author,
            &self.attestation.digest(),
            &self.signature,
        )?;
        Ok(())
    }
}

/// A sub-DAG's finality certificate: its attestation and the signatures of a quorum of stake,
/// in ascending authority order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinalityCertificate {
    pub attestation: Attestation,
    pub signatures: Vec<CertificateSignature>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateSignature {
    pub authority: u16,
    pub signature: EcdsaSignature,
}

impl FinalityCertificate {
    /// Checks it offline: the committee, every signature, and quorum stake.
    pub fn verify(&self, committee: &Committee) -> Result<(), CertificateError> {
        self.verify_with_id(committee, &committee_id(committee))
    }

    pub fn verify_with_id(
        &self,
        committee: &Committee,
        committee_id: &B256,
    ) -> Result<(), CertificateError> {
        check_committee(committee_id, &self.attestation)?;
        verify_quorum(committee, &self.attestation.digest(), &self.signatures)
    }
}

/// The committee's signed statement that transaction `tx_hash` is transaction `tx_index` of
/// sub-DAG `sub_dag_index`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preconfirmation {
    pub tx_hash: B256,
    pub sub_dag_index: u64,
    pub tx_index: u64,
    /// Siblings from the transaction's leaf up to `certificate.attestation.tx_root`.
    pub proof: Vec<B256>,
    pub certificate: FinalityCertificate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreconfError {
    #[error("the certificate is for sub-DAG {certificate}, the position names sub-DAG {position}")]
    WrongSubDag { position: u64, certificate: u64 },
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
}

impl Preconfirmation {
    /// Builds one from the sub-DAG's tree (the transactions' hashes, in order).
    pub fn new(
        tree: &Tree,
        tx_hash: B256,
        tx_index: u64,
        certificate: FinalityCertificate,
    ) -> Option<Self> {
        Some(Self {
            tx_hash,
            sub_dag_index: certificate.attestation.index,
            tx_index,
            proof: tree.proof(usize::try_from(tx_index).ok()?)?,
            certificate,
        })
    }

    /// Checks it offline against the committee alone.
    pub fn verify(&self, committee: &Committee) -> Result<(), PreconfError> {
        let attestation = &self.certificate.attestation;
        if attestation.index != self.sub_dag_index {
            return Err(PreconfError::WrongSubDag {
                position: self.sub_dag_index,
                certificate: attestation.index,
            });
        }
        merkle::verify(
            &self.tx_hash,
            self.tx_index,
            attestation.tx_count,
            &self.proof,
            &attestation.tx_root,
        )?;
        self.certificate.verify(committee)?;
        Ok(())
    }
}

impl Serialize for EcdsaSignature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(self.0)))
    }
}

impl<'de> Deserialize<'de> for EcdsaSignature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let digits = s.strip_prefix("0x").unwrap_or(&s);
        let bytes = hex::decode(digits)
            .map_err(|e| serde::de::Error::custom(format!("signature is not hex: {e}")))?;
        let bytes: [u8; SIGNATURE_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
            serde::de::Error::custom(format!(
                "a signature is {SIGNATURE_LEN} bytes, got {}",
                b.len()
            ))
        })?;
        Ok(Self(bytes))
    }
}

// The wire encoding (weft's canonical codec), for peers and the store.

fn put_b256(out: &mut BytesMut, value: &B256) {
    out.put_slice(value.as_slice());
}

fn get_b256(r: &mut Reader, what: &'static str) -> Result<B256, DecodeError> {
    Ok(B256::from(r.array::<32>(what)?))
}

impl Encode for ChainRoot {
    fn encode(&self, out: &mut BytesMut) {
        self.chain_id.encode(out);
        self.tx_count.encode(out);
        put_b256(out, &self.root);
    }
    fn encoded_len(&self) -> usize {
        48
    }
}

impl Decode for ChainRoot {
    const MIN_ENCODED_LEN: usize = 48;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            chain_id: r.u64("chain_root.chain_id")?,
            tx_count: r.u64("chain_root.tx_count")?,
            root: get_b256(r, "chain_root.root")?,
        })
    }
}

impl Encode for Attestation {
    fn encode(&self, out: &mut BytesMut) {
        put_b256(out, &self.committee);
        self.index.encode(out);
        self.leader_round.encode(out);
        self.timestamp.encode(out);
        self.tx_count.encode(out);
        put_b256(out, &self.tx_root);
        put_vec(out, &self.chains);
        put_b256(out, &self.previous);
        self.batches.first.encode(out);
        (self.batches.hashes.len() as u32).encode(out);
        for h in &self.batches.hashes {
            put_b256(out, h);
        }
    }
    fn encoded_len(&self) -> usize {
        32 * 3 + 8 * 4 + vec_len(&self.chains) + 8 + 4 + 32 * self.batches.hashes.len()
    }
}

impl Decode for Attestation {
    const MIN_ENCODED_LEN: usize = 32 * 3 + 8 * 4 + 4 + 8 + 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let attestation = Self {
            committee: get_b256(r, "attestation.committee")?,
            index: r.u64("attestation.index")?,
            leader_round: r.u64("attestation.leader_round")?,
            timestamp: r.u64("attestation.timestamp")?,
            tx_count: r.u64("attestation.tx_count")?,
            tx_root: get_b256(r, "attestation.tx_root")?,
            chains: r.vec("attestation.chains")?,
            previous: get_b256(r, "attestation.previous")?,
            batches: BatchRefs {
                first: r.u64("attestation.batches.first")?,
                hashes: {
                    let n = r.count("attestation.batches", 32)?;
                    (0..n)
                        .map(|_| get_b256(r, "attestation.batches.hash"))
                        .collect::<Result<_, _>>()?
                },
            },
        };
        if attestation.batches.hashes.is_empty() && attestation.batches.first != 0 {
            return Err(DecodeError::InvalidValue("attestation.batches.first"));
        }
        // One encoding per value: chains strictly ascending.
        if attestation
            .chains
            .windows(2)
            .any(|w| w[0].chain_id >= w[1].chain_id)
        {
            return Err(DecodeError::InvalidValue("attestation.chains order"));
        }
        Ok(attestation)
    }
}

impl Encode for EcdsaSignature {
    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.0);
    }
    fn encoded_len(&self) -> usize {
        SIGNATURE_LEN
    }
}

impl Decode for EcdsaSignature {
    const MIN_ENCODED_LEN: usize = SIGNATURE_LEN;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self(r.array::<SIGNATURE_LEN>("signature")?))
    }
}

impl Encode for SignedAttestation {
    fn encode(&self, out: &mut BytesMut) {
        self.author.0.encode(out);
        self.attestation.encode(out);
        self.signature.encode(out);
    }
    fn encoded_len(&self) -> usize {
        2 + self.attestation.encoded_len() + SIGNATURE_LEN
    }
}

impl Decode for SignedAttestation {
    const MIN_ENCODED_LEN: usize = 2 + Attestation::MIN_ENCODED_LEN + SIGNATURE_LEN;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            author: AuthorityIndex(r.u16("signed.author")?),
            attestation: Attestation::decode(r)?,
            signature: EcdsaSignature::decode(r)?,
        })
    }
}

impl Encode for CertificateSignature {
    fn encode(&self, out: &mut BytesMut) {
        self.authority.encode(out);
        self.signature.encode(out);
    }
    fn encoded_len(&self) -> usize {
        2 + SIGNATURE_LEN
    }
}

impl Decode for CertificateSignature {
    const MIN_ENCODED_LEN: usize = 2 + SIGNATURE_LEN;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            authority: r.u16("certificate.authority")?,
            signature: EcdsaSignature::decode(r)?,
        })
    }
}

impl Encode for FinalityCertificate {
    fn encode(&self, out: &mut BytesMut) {
        self.attestation.encode(out);
        put_vec(out, &self.signatures);
    }
    fn encoded_len(&self) -> usize {
        self.attestation.encoded_len() + vec_len(&self.signatures)
    }
}

impl Decode for FinalityCertificate {
    const MIN_ENCODED_LEN: usize = Attestation::MIN_ENCODED_LEN + 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            attestation: Attestation::decode(r)?,
            signatures: r.vec("certificate.signatures")?,
        })
    }
}

/// A peer's answer to an authority's signed attestation: the certificate, when the peer holds
/// one for that index already (so an authority that restarted or fell behind gets it).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AttestationAnswer {
    pub certificate: Option<FinalityCertificate>,
}

impl Encode for AttestationAnswer {
    fn encode(&self, out: &mut BytesMut) {
        match &self.certificate {
            None => out.put_u8(0),
            Some(c) => {
                out.put_u8(1);
                c.encode(out);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        1 + self.certificate.as_ref().map_or(0, Encode::encoded_len)
    }
}

impl Decode for AttestationAnswer {
    const MIN_ENCODED_LEN: usize = 1;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            certificate: match r.u8("answer.flag")? {
                0 => None,
                1 => Some(FinalityCertificate::decode(r)?),
                _ => return Err(DecodeError::InvalidValue("answer.flag")),
            },
        })
    }
}
