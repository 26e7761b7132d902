//! What consensus needs persisted to resume after a restart ([`ConsensusState`]), and each
//! committed sub-DAG paired with the state right after it ([`Commit`]), with their encodings.

use crate::error::ConsensusError;
use crate::schedule::{LeaderSchedule, ScheduleState};
use crate::sub_dag::CommittedSubDag;
use bytes::{BufMut, Bytes, BytesMut};
use weft_types::codec::{
    decode_message, encode_message, put_vec, vec_len, Decode, DecodeError, Encode, Reader,
};
use weft_types::{Committee, Round};

/// Version byte in front of an encoded [`ConsensusState`]; bumped when its layout changes so a
/// node never misreads a state written by another version.
pub const STATE_VERSION: u8 = 2;

/// Upper bound on an encoded [`ConsensusState`] for the largest committee, for
/// [`ConsensusState::from_bytes`].
pub const MAX_STATE_BYTES: usize =
    1 + 1 + 8 + 8 + (4 + 8 * Committee::MAX_AUTHORITIES) + ScheduleState::MAX_ENCODED_LEN;

/// A committed sub-DAG and the consensus state right after it. Persisted in one atomic write,
/// they let a restart resume exactly after `sub_dag`, whatever else the same call committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub sub_dag: CommittedSubDag,
    pub state: ConsensusState,
    /// Sub-DAGs the same call committed after this one (0 for its last): a crash between
    /// their writes is what the per-sub-DAG state is for.
    pub followed_by: usize,
}

/// Everything consensus needs to resume where it stopped. The node persists it in the same
/// atomic write as the sub-DAGs that produced it (see [`crate::Bullshark::state`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusState {
    /// Highest committed round of each authority, indexed by `AuthorityIndex`.
    pub last_committed: Vec<Round>,
    /// Round of the last committed leader; 0 before the first commit.
    pub last_committed_leader_round: Round,
    /// Index the next committed sub-DAG gets.
    pub next_sub_dag_index: u64,
    /// Timestamp of the last committed sub-DAG (0 before the first): the floor of the next.
    pub last_timestamp: u64,
    pub schedule: ScheduleState,
}

impl ConsensusState {
    /// The state before anything is committed.
    pub fn genesis(committee: &Committee, schedule: &dyn LeaderSchedule) -> Self {
        Self {
            last_committed: vec![0; committee.size()],
            last_committed_leader_round: 0,
            next_sub_dag_index: 0,
            last_timestamp: 0,
            schedule: schedule.state(),
        }
    }

    /// The versioned encoding to persist.
    pub fn to_bytes(&self) -> Bytes {
        encode_message(self)
    }

    /// Decodes a persisted state; rejects unknown versions, oversized or inconsistent input.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, DecodeError> {
        decode_message(bytes, MAX_STATE_BYTES)
    }

    /// Checks what decoding cannot: that the state belongs to this committee.
    pub(crate) fn check(&self, committee: &Committee) -> Result<(), ConsensusError> {
        if self.last_committed.len() != committee.size() {
            return Err(ConsensusError::InvalidState(
                "last_committed must have one round per authority",
            ));
        }
        if self
            .last_committed
            .iter()
            .any(|r| *r > self.last_committed_leader_round)
        {
            return Err(ConsensusError::InvalidState(
                "an authority's last committed round is above the last leader round",
            ));
        }
        Ok(())
    }
}

impl Encode for ConsensusState {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(STATE_VERSION);
        out.put_u64_le(self.last_committed_leader_round);
        out.put_u64_le(self.next_sub_dag_index);
        out.put_u64_le(self.last_timestamp);
        put_vec(out, &self.last_committed);
        self.schedule.encode(out);
    }
    fn encoded_len(&self) -> usize {
        1 + 8 + 8 + 8 + vec_len(&self.last_committed) + self.schedule.encoded_len()
    }
}

impl Decode for ConsensusState {
    const MIN_ENCODED_LEN: usize = 1 + 8 + 8 + 8 + 4 + ScheduleState::MIN_ENCODED_LEN;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let version = r.u8("consensus_state.version")?;
        if version != STATE_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let last_committed_leader_round = r.u64("consensus_state.last_committed_leader_round")?;
        let next_sub_dag_index = r.u64("consensus_state.next_sub_dag_index")?;
        let last_timestamp = r.u64("consensus_state.last_timestamp")?;
        let last_committed: Vec<Round> = r.vec("consensus_state.last_committed")?;
        if last_committed.len() > Committee::MAX_AUTHORITIES
            || last_committed
                .iter()
                .any(|round| *round > last_committed_leader_round)
        {
            return Err(DecodeError::InvalidValue("consensus_state.last_committed"));
        }
        Ok(Self {
            last_committed,
            last_committed_leader_round,
            next_sub_dag_index,
            last_timestamp,
            schedule: ScheduleState::decode(r)?,
        })
    }
}
