use super::{typed_digest, Header, Round};
use crate::codec::{put_bytes, put_vec, vec_len, Decode, DecodeError, Encode, Reader};
use crate::committee::{AuthorityIndex, Committee, Stake};
use crate::crypto::{Digest, Intent, PublicKey, Signature};
use crate::error::MessageError;
use bytes::BytesMut;

typed_digest!(
    /// Identifies a certificate by its header alone: two certificates of one header with
    /// different signer sets are the same DAG vertex.
    CertificateDigest
);

/// A header with votes from ≥ quorum stake: a vertex of the certified DAG.
///
/// Signatures are individual ed25519 signatures with a signer bitmap; batch-verifying 2f+1 of
/// them measured faster than one BLS12-381 aggregate check for committees of this size (see
/// `types/benches/crypto.rs` and the README's figures).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    pub header: Header,
    /// Bit i set ⇔ authority i signed; exactly ⌈n/8⌉ bytes, no bits past n.
    pub signers: Vec<u8>,
    /// One vote signature per set bit, in index order.
    pub signatures: Vec<Signature>,
}

impl Certificate {
    /// Assembles a certificate from votes on `header`; fails without quorum stake.
    /// Votes must already be verified; duplicates are ignored.
    pub fn new(
        committee: &Committee,
        header: Header,
        votes: impl IntoIterator<Item = (AuthorityIndex, Signature)>,
    ) -> Result<Self, MessageError> {
        let mut by_signer: Vec<Option<Signature>> = vec![None; committee.size()];
        for (author, sig) in votes {
            let slot = by_signer
                .get_mut(author.0 as usize)
                .ok_or(MessageError::UnknownAuthority(author))?;
            slot.get_or_insert(sig);
        }
        let mut signers = vec![0u8; committee.size().div_ceil(8)];
        let mut signatures = Vec::new();
        let mut stake: Stake = 0;
        for (i, sig) in by_signer.iter().enumerate() {
            if let Some(sig) = sig {
                signers[i / 8] |= 1 << (i % 8);
                signatures.push(*sig);
                stake += committee.stake(AuthorityIndex(i as u16));
            }
        }
        if stake < committee.quorum_threshold() {
            return Err(MessageError::NoQuorum {
                stake,
                needed: committee.quorum_threshold(),
            });
        }
        Ok(Self {
            header,
            signers,
            signatures,
        })
    }

    /// The round-0 certificates, one per authority, that every round-1 header builds on.
    pub fn genesis(committee: &Committee) -> Vec<Self> {
        committee
            .authorities()
            .map(|(index, _)| Self {
                header: Header::genesis(index, committee.epoch()),
                signers: vec![0u8; committee.size().div_ceil(8)],
                signatures: Vec::new(),
            })
            .collect()
    }

    pub fn digest(&self) -> CertificateDigest {
        CertificateDigest(Digest::of_parts([
            b"weft-certificate".as_slice(),
            &self.header.digest().0 .0,
        ]))
    }

    pub fn round(&self) -> Round {
        self.header.round
    }

    pub fn author(&self) -> AuthorityIndex {
        self.header.author
    }

    /// Authorities whose votes this certificate carries, in index order.
    pub fn signer_indices(&self) -> impl Iterator<Item = AuthorityIndex> + '_ {
        (0..self.signers.len() * 8)
            .filter(|i| self.signers[i / 8] & (1 << (i % 8)) != 0)
            .map(|i| AuthorityIndex(i as u16))
    }

    /// Checks the header's shape, the bitmap, quorum stake and every vote signature.
    /// The header's own signature is not needed: a quorum of votes vouches for it.
    pub fn verify(&self, committee: &Committee) -> Result<(), MessageError> {
        if self.header.round == 0 {
            let genesis = committee
                .authority(self.header.author)
                .map(|_| Self::genesis(committee).swap_remove(self.header.author.0 as usize));
            return match genesis {
                Some(g) if g == *self => Ok(()),
                _ => Err(MessageError::InvalidGenesis),
            };
        }
        self.header.verify(committee, false)?;
        let n = committee.size();
        if self.signers.len() != n.div_ceil(8)
            || (n % 8 != 0 && self.signers[n / 8] >> (n % 8) != 0)
        {
            return Err(MessageError::BadSignerBitmap);
        }
        let signers: Vec<AuthorityIndex> = self.signer_indices().collect();
        if signers.len() != self.signatures.len() {
            return Err(MessageError::SignatureCountMismatch {
                signers: signers.len(),
                signatures: self.signatures.len(),
            });
        }
        let stake: Stake = signers.iter().map(|i| committee.stake(*i)).sum();
        if stake < committee.quorum_threshold() {
            return Err(MessageError::NoQuorum {
                stake,
                needed: committee.quorum_threshold(),
            });
        }
        let keys: Vec<&PublicKey> = signers
            .iter()
            .filter_map(|i| committee.authority(*i).map(|a| &a.protocol_key))
            .collect();
        PublicKey::verify_batch(
            Intent::Vote,
            &self.header.digest().0,
            &keys,
            &self.signatures,
        )?;
        Ok(())
    }
}

impl Encode for Certificate {
    fn encode(&self, out: &mut BytesMut) {
        self.header.encode(out);
        put_bytes(out, &self.signers);
        put_vec(out, &self.signatures);
    }
    fn encoded_len(&self) -> usize {
        self.header.encoded_len() + 4 + self.signers.len() + vec_len(&self.signatures)
    }
}

impl Decode for Certificate {
    const MIN_ENCODED_LEN: usize = Header::MIN_ENCODED_LEN + 4 + 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            header: Header::decode(r)?,
            signers: r.bytes("certificate.signers")?.to_vec(),
            signatures: r.vec("certificate.signatures")?,
        })
    }
}
