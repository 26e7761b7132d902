//! What one simulated run looks like: the committee, the protocol parameters, and how hostile
//! the network and the crash schedule are. [`SimConfig::randomized`] draws the hostile parts
//! from the run's own generator, so one seed fixes them too.

use crate::byzantine::Behaviour;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::BTreeMap;
use weft_consensus::LeaderScheduleKind;
use weft_types::{AuthorityIndex, Round};

/// A closed range of milliseconds to draw from uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl Span {
    pub const fn new(min_ms: u64, max_ms: u64) -> Self {
        Self { min_ms, max_ms }
    }

    pub fn draw(&self, rng: &mut StdRng) -> u64 {
        rng.gen_range(self.min_ms..=self.max_ms.max(self.min_ms))
    }
}

/// Per-message behaviour of every link.
#[derive(Clone, Debug)]
pub struct NetworkModel {
    /// Most messages take this long.
    pub delay: Span,
    /// With `tail_probability`, a message takes `tail` instead (a heavy tail, so messages of
    /// one link overtake each other).
    pub tail_probability: f64,
    pub tail: Span,
    /// A delivery attempt is lost with this probability; the reliable sender tries again.
    pub drop_probability: f64,
    /// How long the reliable sender waits before retrying a lost or refused delivery.
    pub retry: Span,
}

/// Crashes and partitions, outside the final phase.
#[derive(Clone, Debug)]
pub struct FaultModel {
    /// Time between crash attempts (each crashes one live authority if fewer than f are down).
    pub crash_every: Span,
    /// How long a crashed authority stays down.
    pub downtime: Span,
    /// Time between partitions.
    pub partition_every: Span,
    /// How long a partition cuts its links before they heal.
    pub partition_length: Span,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub authorities: usize,
    /// Virtual length of the run.
    pub duration_ms: u64,
    /// The last part of the run: every link healed, every authority up, no new faults.
    pub final_phase_ms: u64,
    /// Sub-DAGs every authority must commit during the final phase (liveness).
    pub min_final_commits: usize,
    pub gc_depth: Round,
    pub max_header_delay_ms: u64,
    pub header_num_of_batches_threshold: usize,
    pub max_header_num_of_batches: usize,
    /// Time between two synthetic batches of one authority's workers.
    pub batch_every: Span,
    /// How long a header's payload takes to become available locally.
    pub payload_delay: Span,
    /// How long a certificate waits in the channel between the primary and consensus (a
    /// crash in that window leaves a stored certificate that consensus never saw).
    pub consensus_delay: Span,
    /// Grace before a missing certificate is first requested.
    pub sync_grace_ms: u64,
    /// A sync request not answered by then is asked again, of another authority.
    pub sync_retry_ms: u64,
    /// Certificates served for one range request.
    pub range_limit: usize,
    pub schedule: LeaderScheduleKind,
    /// Byzantine authorities and how each misbehaves (at most f; none by default).
    pub byzantine: BTreeMap<AuthorityIndex, Behaviour>,
    pub network: NetworkModel,
    pub faults: FaultModel,
}

impl SimConfig {
    /// A moderately hostile run for `authorities` authorities.
    pub fn new(authorities: usize) -> Self {
        Self {
            authorities,
            duration_ms: 20_000,
            final_phase_ms: 7_000,
            min_final_commits: 2,
            gc_depth: 50,
            max_header_delay_ms: 200,
            header_num_of_batches_threshold: 2,
            max_header_num_of_batches: 8,
            batch_every: Span::new(20, 150),
            payload_delay: Span::new(1, 40),
            consensus_delay: Span::new(0, 30),
            sync_grace_ms: 50,
            sync_retry_ms: 1_000,
            range_limit: 100,
            schedule: LeaderScheduleKind::RoundRobin,
            byzantine: BTreeMap::new(),
            network: NetworkModel {
                delay: Span::new(1, 50),
                tail_probability: 0.1,
                tail: Span::new(50, 200),
                drop_probability: 0.05,
                retry: Span::new(100, 400),
            },
            faults: FaultModel {
                crash_every: Span::new(1_000, 5_000),
                downtime: Span::new(200, 3_000),
                partition_every: Span::new(1_000, 5_000),
                partition_length: Span::new(200, 3_000),
            },
        }
    }

    /// [`SimConfig::new`] with the leader schedule, loss rate, tail and fault frequency drawn
    /// from `rng` (the run's own generator).
    pub fn randomized(authorities: usize, rng: &mut StdRng) -> Self {
        let mut c = Self::new(authorities);
        if rng.gen_bool(0.5) {
            c.schedule = LeaderScheduleKind::Reputation {
                commits_per_update: rng.gen_range(1..=8),
            };
        }
        c.network.drop_probability = rng.gen_range(0.0..0.25);
        c.network.tail_probability = rng.gen_range(0.0..0.3);
        c.network.tail.max_ms = rng.gen_range(100..=600);
        c.faults.crash_every.max_ms = rng.gen_range(1_500..=8_000);
        c.faults.partition_every.max_ms = rng.gen_range(1_500..=8_000);
        c.header_num_of_batches_threshold = rng.gen_range(1..=4);
        c
    }

    /// The most authorities that may be down at once: f, less the Byzantine ones.
    pub fn max_faulty(&self) -> usize {
        ((self.authorities - 1) / 3).saturating_sub(self.byzantine.len())
    }
}
