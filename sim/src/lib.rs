//! A deterministic discrete-event simulation of a weft committee: each authority is the
//! primary's [`Core`](weft_primary::core::Core) and [`Bullshark`](weft_consensus::Bullshark)
//! over a simulated durable store, connected by a simulated network that delays, reorders,
//! drops (and retransmits), partitions and heals, with crashes and restarts from the store.
//!
//! No threads, no tokio, no wall clock: one `StdRng` from one `u64` seed drives every choice,
//! and events run in (virtual time, scheduling order), so a seed replays exactly. After each
//! run the committed logs are checked (see [`check`]); [`run_seed`] is the entry point and
//! [`Report::replay_command`] says how to run a failing seed again.
//!
//! The tests (`cargo test -p weft-sim`) read these variables:
//! - `WEFT_SIM_SEEDS=N`: seeds of 4 authorities (default 200; a tenth as many of 7);
//! - `WEFT_SIM_FIRST_SEED=S`: start the seed window at S;
//! - `WEFT_SIM_SEED=S WEFT_SIM_AUTHORITIES=n [WEFT_SIM_BYZANTINE=1]` with the `replay` test:
//!   run one seed (with its 1 to f Byzantine authorities);
//! - `WEFT_SIM_TRACE=1`: print every event, ignored message, proposal, certificate and crash,
//!   and each authority's DAG at the end.
//!
//! Every run is checked for safety and for liveness after the network heals.

pub mod byzantine;
pub mod check;
pub mod config;
pub mod ctx;
pub mod network;
mod node;
pub mod report;
pub mod sim;
pub mod store;
mod sync;
mod verify;

pub use config::SimConfig;
pub use ctx::Stats;
pub use report::Report;
pub use sim::{run_seed, run_seed_byzantine, run_seed_with_gc_depth, Simulation};

/// Seeds a test runs: `WEFT_SIM_SEEDS` if set, else `default`.
pub fn seed_count(default: u64) -> u64 {
    std::env::var("WEFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
