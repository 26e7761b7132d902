//! Primary ↔ primary messages: the DAG's proposals, votes and certificates, and the requests a
//! synchronizer makes to fetch what it is missing.

use super::{Certificate, CertificateDigest, Header, Round, Vote};
use crate::codec::{put_bytes, put_vec, vec_len, Decode, DecodeError, Encode, Reader};
use bytes::{BufMut, Bytes, BytesMut};

/// Most digests one [`PrimaryMessage::CertificatesRequest`] may name.
pub const MAX_CERTIFICATES_REQUEST: usize = 1_000;

/// What one primary sends another. Every variant is answered: requests with an encoded
/// [`CertificatesResponse`], the others with an empty acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryMessage {
    Header(Header),
    Vote(Vote),
    Certificate(Certificate),
    /// Certificates by digest (missing parents); unknown ones are left out of the answer.
    CertificatesRequest(Vec<CertificateDigest>),
    /// Certificates of rounds ≥ `from_round` in (round, author) order, at most `limit` of them
    /// (the server may send fewer): how a primary that fell behind catches up.
    CertificateRange {
        from_round: Round,
        limit: u32,
    },
    /// An authority's signed attestation of a committed sub-DAG, encoded by `weft-attest`
    /// (the primary carries it to the node's attester; the answer may hold the certificate).
    Attestation(Bytes),
}

const TAG_HEADER: u8 = 0;
const TAG_VOTE: u8 = 1;
const TAG_CERTIFICATE: u8 = 2;
const TAG_CERTIFICATES_REQUEST: u8 = 3;
const TAG_CERTIFICATE_RANGE: u8 = 4;
const TAG_ATTESTATION: u8 = 5;

impl Encode for PrimaryMessage {
    fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Header(h) => {
                out.put_u8(TAG_HEADER);
                h.encode(out);
            }
            Self::Vote(v) => {
                out.put_u8(TAG_VOTE);
                v.encode(out);
            }
            Self::Certificate(c) => {
                out.put_u8(TAG_CERTIFICATE);
                c.encode(out);
            }
            Self::CertificatesRequest(digests) => {
                out.put_u8(TAG_CERTIFICATES_REQUEST);
                put_vec(out, digests);
            }
            Self::CertificateRange { from_round, limit } => {
                out.put_u8(TAG_CERTIFICATE_RANGE);
                out.put_u64_le(*from_round);
                out.put_u32_le(*limit);
            }
            Self::Attestation(bytes) => {
                out.put_u8(TAG_ATTESTATION);
                put_bytes(out, bytes);
            }
        }
    }

    fn encoded_len(&self) -> usize {
        1 + match self {
            Self::Header(h) => h.encoded_len(),
            Self::Vote(v) => v.encoded_len(),
            Self::Certificate(c) => c.encoded_len(),
            Self::CertificatesRequest(d) => vec_len(d),
            Self::CertificateRange { .. } => 12,
            Self::Attestation(bytes) => 4 + bytes.len(),
        }
    }
}

impl Decode for PrimaryMessage {
    const MIN_ENCODED_LEN: usize = 1;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match r.u8("primary_message.tag")? {
            TAG_HEADER => Self::Header(Header::decode(r)?),
            TAG_VOTE => Self::Vote(Vote::decode(r)?),
            TAG_CERTIFICATE => Self::Certificate(Certificate::decode(r)?),
            TAG_CERTIFICATES_REQUEST => {
                let digests: Vec<CertificateDigest> = r.vec("certificates_request")?;
                if digests.len() > MAX_CERTIFICATES_REQUEST {
                    return Err(DecodeError::InvalidValue("certificates_request.len"));
                }
                Self::CertificatesRequest(digests)
            }
            TAG_CERTIFICATE_RANGE => Self::CertificateRange {
                from_round: r.u64("certificate_range.from_round")?,
                limit: r.u32("certificate_range.limit")?,
            },
            TAG_ATTESTATION => Self::Attestation(r.bytes("attestation")?),
            _ => return Err(DecodeError::InvalidValue("primary_message.tag")),
        })
    }
}

/// The answer to a certificate request: certificates still unverified by the receiver.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CertificatesResponse {
    pub certificates: Vec<Certificate>,
}

impl Encode for CertificatesResponse {
    fn encode(&self, out: &mut BytesMut) {
        put_vec(out, &self.certificates);
    }
    fn encoded_len(&self) -> usize {
        vec_len(&self.certificates)
    }
}

impl Decode for CertificatesResponse {
    const MIN_ENCODED_LEN: usize = 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            certificates: r.vec("certificates_response")?,
        })
    }
}
