use super::{typed_digest, BatchDigest, CertificateDigest, Round};
use crate::codec::{put_vec, vec_len, Decode, DecodeError, Encode, Reader};
use crate::committee::{AuthorityIndex, Committee, Epoch, WorkerId};
use crate::crypto::{Digest, Intent, KeyPair, Signature, SIGNATURE_LEN};
use crate::error::MessageError;
use bytes::{BufMut, BytesMut};
use std::collections::HashSet;

typed_digest!(
    /// BLAKE3-256 of a header's encoding without its signature.
    HeaderDigest
);

/// A primary's proposal for one round: the batches it carries and ≥ quorum parents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub author: AuthorityIndex,
    pub round: Round,
    pub epoch: Epoch,
    /// When the author proposed it, in milliseconds since the UNIX epoch by the author's
    /// clock. Voters refuse a header too far ahead of their own clocks, so a committed
    /// leader's time is within that drift of an honest clock; consensus derives each
    /// sub-DAG's timestamp from it (never decreasing).
    pub created_at: u64,
    /// Batches in the order the author will have them executed, with the worker holding each.
    pub payload: Vec<(BatchDigest, WorkerId)>,
    /// Certificates of round − 1, sorted and distinct (one canonical encoding).
    pub parents: Vec<CertificateDigest>,
    pub signature: Signature,
    /// Derived from the fields above when built or decoded; never sent.
    digest: HeaderDigest,
}

impl Header {
    /// Builds and signs a header. `parents` are sorted here so the encoding is canonical.
    pub fn new(
        author: AuthorityIndex,
        round: Round,
        epoch: Epoch,
        created_at: u64,
        payload: Vec<(BatchDigest, WorkerId)>,
        mut parents: Vec<CertificateDigest>,
        keypair: &KeyPair,
    ) -> Self {
        parents.sort();
        parents.dedup();
        let mut header = Self {
            author,
            round,
            epoch,
            created_at,
            payload,
            parents,
            signature: Signature::default(),
            digest: HeaderDigest::default(),
        };
        header.digest = header.compute_digest();
        header.signature = keypair.sign(Intent::Header, &header.digest.0);
        header
    }

    /// The unsigned header of round 0 that each authority's genesis certificate carries.
    pub(crate) fn genesis(author: AuthorityIndex, epoch: Epoch) -> Self {
        let mut header = Self {
            author,
            round: 0,
            epoch,
            created_at: 0,
            payload: Vec::new(),
            parents: Vec::new(),
            signature: Signature::default(),
            digest: HeaderDigest::default(),
        };
        header.digest = header.compute_digest();
        header
    }

    pub fn digest(&self) -> HeaderDigest {
        self.digest
    }

    fn encode_unsigned(&self, out: &mut BytesMut) {
        out.put_u16_le(self.author.0);
        out.put_u64_le(self.round);
        out.put_u64_le(self.epoch);
        out.put_u64_le(self.created_at);
        put_vec(out, &self.payload);
        put_vec(out, &self.parents);
    }

    fn compute_digest(&self) -> HeaderDigest {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode_unsigned(&mut buf);
        HeaderDigest(Digest::of(&buf))
    }

    /// Checks everything that can be checked without the DAG: epoch, author, round, the shape
    /// of parents and payload, and (if `check_signature`) the author's signature. Lookups by the
    /// sender-chosen author index happen only after it is known to be in the committee.
    pub fn verify(&self, committee: &Committee, check_signature: bool) -> Result<(), MessageError> {
        if self.epoch != committee.epoch() {
            return Err(MessageError::WrongEpoch {
                expected: committee.epoch(),
                got: self.epoch,
            });
        }
        let author = committee
            .authority(self.author)
            .ok_or(MessageError::UnknownAuthority(self.author))?;
        if self.round == 0 {
            return Err(MessageError::InvalidRound(0));
        }
        if self.parents.is_empty() {
            return Err(MessageError::NoParents);
        }
        if self.parents.len() > committee.size() {
            return Err(MessageError::TooManyParents {
                count: self.parents.len(),
                limit: committee.size(),
            });
        }
        if self.parents.windows(2).any(|w| w[0] >= w[1]) {
            return Err(MessageError::ParentsNotCanonical);
        }
        let mut seen = HashSet::with_capacity(self.payload.len());
        for (digest, worker) in &self.payload {
            if *worker >= committee.num_workers() {
                return Err(MessageError::UnknownWorker(*worker));
            }
            if !seen.insert(digest) {
                return Err(MessageError::DuplicateBatch);
            }
        }
        if check_signature {
            author
                .protocol_key
                .verify(Intent::Header, &self.digest.0, &self.signature)?;
        }
        Ok(())
    }
}

impl Encode for Header {
    fn encode(&self, out: &mut BytesMut) {
        self.encode_unsigned(out);
        self.signature.encode(out);
    }
    fn encoded_len(&self) -> usize {
        2 + 8 + 8 + 8 + vec_len(&self.payload) + vec_len(&self.parents) + SIGNATURE_LEN
    }
}

impl Decode for Header {
    const MIN_ENCODED_LEN: usize = 2 + 8 + 8 + 8 + 4 + 4 + SIGNATURE_LEN;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let start = r.position();
        let author = AuthorityIndex(r.u16("header.author")?);
        let round = r.u64("header.round")?;
        let epoch = r.u64("header.epoch")?;
        let created_at = r.u64("header.created_at")?;
        let payload = r.vec("header.payload")?;
        let parents = r.vec("header.parents")?;
        // Hash the received bytes of the unsigned part instead of re-encoding them.
        let digest = HeaderDigest(Digest::of(&r.slice_from(start)));
        let signature = Signature::decode(r)?;
        Ok(Self {
            author,
            round,
            epoch,
            created_at,
            payload,
            parents,
            signature,
            digest,
        })
    }
}
