//! What consensus outputs: one committed leader with the part of its causal history no earlier
//! sub-DAG ordered, and its canonical encoding. Kept apart from the persisted state and the
//! leader schedules, which both depend on it.

use bytes::{BufMut, BytesMut};
use weft_types::codec::{put_vec, vec_len, Decode, DecodeError, Encode, Reader};
use weft_types::{Certificate, CertificateDigest, Round};

/// One committed leader and the part of its causal history that no earlier sub-DAG ordered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedSubDag {
    /// Position in the committed sequence: 0 for the first sub-DAG, then +1 per sub-DAG.
    pub index: u64,
    /// Round of the leader (always even).
    pub leader_round: Round,
    /// Digest of the leader's certificate, the last of `certificates`.
    pub leader: CertificateDigest,
    /// The consensus timestamp, in ms since the UNIX epoch: the leader header's
    /// `created_at`, or the previous sub-DAG's timestamp if that is later (never decreasing).
    pub timestamp: u64,
    /// Sorted by (round, author); each certificate appears in exactly one sub-DAG, ever.
    pub certificates: Vec<Certificate>,
}

impl CommittedSubDag {
    /// The leader's certificate (the highest round of the sub-DAG, so it sorts last).
    pub fn leader_certificate(&self) -> Option<&Certificate> {
        self.certificates.last()
    }
}

impl Encode for CommittedSubDag {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u64_le(self.index);
        out.put_u64_le(self.leader_round);
        self.leader.encode(out);
        out.put_u64_le(self.timestamp);
        put_vec(out, &self.certificates);
    }
    fn encoded_len(&self) -> usize {
        8 + 8 + self.leader.encoded_len() + 8 + vec_len(&self.certificates)
    }
}

impl Decode for CommittedSubDag {
    const MIN_ENCODED_LEN: usize = 8 + 8 + CertificateDigest::MIN_ENCODED_LEN + 8 + 4;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let sub_dag = Self {
            index: r.u64("sub_dag.index")?,
            leader_round: r.u64("sub_dag.leader_round")?,
            leader: CertificateDigest::decode(r)?,
            timestamp: r.u64("sub_dag.timestamp")?,
            certificates: r.vec("sub_dag.certificates")?,
        };
        match sub_dag.certificates.last() {
            Some(leader) if leader.round() == sub_dag.leader_round => Ok(sub_dag),
            _ => Err(DecodeError::InvalidValue("sub_dag.certificates")),
        }
    }
}
