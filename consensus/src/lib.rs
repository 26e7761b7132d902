//! Bullshark over the certified DAG, as a pure, deterministic state machine: verified
//! certificates in (in causal order), committed sub-DAGs out. No I/O, clock, randomness or
//! async runtime; the node around it persists [`ConsensusState`] with each commit's output.
//! Beside it, [`actor::ConsensusActor`] is the node's async shell around it.
//!
//! The rules, as weft runs them, are in the team's design notes ("Bullshark, as weft runs
//! it"): leaders on even rounds chosen by a [`LeaderSchedule`]; the leader of round r commits
//! when certificates of round r+1 with validity stake reference it; earlier leaders it reaches
//! are committed first, oldest first; each leader yields its not-yet-committed causal history.

pub mod actor;
mod bullshark;
mod dag;
mod error;
pub mod schedule;
mod state;
mod sub_dag;

pub use bullshark::Bullshark;
pub use error::ConsensusError;
pub use schedule::{
    LeaderSchedule, LeaderScheduleKind, Reputation, ReputationState, RoundRobin, ScheduleState,
};
pub use state::{Commit, ConsensusState, MAX_STATE_BYTES, STATE_VERSION};
pub use sub_dag::CommittedSubDag;
