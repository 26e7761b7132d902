use super::{Header, HeaderDigest, Round};
use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::committee::{AuthorityIndex, Committee, Epoch};
use crate::crypto::{Intent, KeyPair, Signature, SIGNATURE_LEN};
use crate::error::MessageError;
use bytes::{BufMut, BytesMut};

/// An authority's signature on a header it checked and stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub header_digest: HeaderDigest,
    pub round: Round,
    pub epoch: Epoch,
    /// The header's author.
    pub origin: AuthorityIndex,
    /// The voter.
    pub author: AuthorityIndex,
    pub signature: Signature,
}

impl Vote {
    pub fn new(header: &Header, author: AuthorityIndex, keypair: &KeyPair) -> Self {
        Self {
            header_digest: header.digest(),
            round: header.round,
            epoch: header.epoch,
            origin: header.author,
            author,
            signature: keypair.sign(Intent::Vote, &header.digest().0),
        }
    }

    pub fn verify(&self, committee: &Committee) -> Result<(), MessageError> {
        if self.epoch != committee.epoch() {
            return Err(MessageError::WrongEpoch {
                expected: committee.epoch(),
                got: self.epoch,
            });
        }
        committee
            .authority(self.origin)
            .ok_or(MessageError::UnknownAuthority(self.origin))?;
        let voter = committee
            .authority(self.author)
            .ok_or(MessageError::UnknownAuthority(self.author))?;
        voter
            .protocol_key
            .verify(Intent::Vote, &self.header_digest.0, &self.signature)?;
        Ok(())
    }
}

impl Encode for Vote {
    fn encode(&self, out: &mut BytesMut) {
        self.header_digest.encode(out);
        out.put_u64_le(self.round);
        out.put_u64_le(self.epoch);
        out.put_u16_le(self.origin.0);
        out.put_u16_le(self.author.0);
        self.signature.encode(out);
    }
    fn encoded_len(&self) -> usize {
        Self::MIN_ENCODED_LEN
    }
}

impl Decode for Vote {
    const MIN_ENCODED_LEN: usize = 32 + 8 + 8 + 2 + 2 + SIGNATURE_LEN;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            header_digest: HeaderDigest::decode(r)?,
            round: r.u64("vote.round")?,
            epoch: r.u64("vote.epoch")?,
            origin: AuthorityIndex(r.u16("vote.origin")?),
            author: AuthorityIndex(r.u16("vote.author")?),
            signature: Signature::decode(r)?,
        })
    }
}
