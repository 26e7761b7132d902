//! What a node reads back from its own store at start (a corrupt disk must fail with an error,
//! never a panic): the consensus state, a committed sub-DAG, the leader schedule's state.
#![no_main]
use weft_consensus::{CommittedSubDag, ConsensusState, ScheduleState};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, rest)) => weft_fuzz::round_trip::<ConsensusState>(rest),
        Some((1, rest)) => weft_fuzz::round_trip::<CommittedSubDag>(rest),
        Some((_, rest)) => weft_fuzz::round_trip::<ScheduleState>(rest),
        None => {}
    }
});
