//! The executor's decisions, as a pure state machine: what to do with each committed sub-DAG
//! that consensus hands over. No I/O, clock or randomness; the node's executor actor
//! (`node/src/executor.rs`) carries a step out against the store and the network, and the
//! simulator (`sim/`) carries out the very same steps against its in-memory store.
//!
//! For each [`Commit`], [`ExecutorCore::execute`] says whether it is a replay (already in the
//! log: recovery output it again) or an [`Execution`]: the log record (the sub-DAG's batches,
//! each once, in output order), the batches to pin, the own-batch records it settles, the
//! consensus state to persist with it, the log records that leave the retention, and — only
//! once all of that is durable, through [`Execution::durable`] — the notice for the primary.

use thiserror::Error;
use weft_consensus::{Commit, CommittedSubDag, ConsensusState, ScheduleState};
use weft_types::{AuthorityIndex, BatchDigest, Round, WorkerId};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExecutorError {
    #[error("sub-DAG {index} follows {next}: a gap in the committed sequence")]
    Gap { index: u64, next: u64 },
}

/// One committed batch of the record, with where to fetch it if it is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedBatch {
    pub digest: BatchDigest,
    pub worker: WorkerId,
    /// The author of the first certificate that carried it: its workers store it.
    pub author: AuthorityIndex,
}

/// What the primary learns once a sub-DAG's output is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub leader_round: Round,
    /// Rounds of this authority's certificates in the sub-DAG.
    pub own_rounds: Vec<Round>,
    /// The leader schedule after the sub-DAG, if it changed.
    pub schedule: Option<ScheduleState>,
}

/// What to write for one new sub-DAG, in one atomic (synced) write, before its notice leaves.
#[derive(Debug)]
pub struct Execution {
    pub sub_dag: CommittedSubDag,
    /// The log record's batches: each once, in output order.
    pub batches: Vec<CommittedBatch>,
    /// Own-batch records (the primary's `OWN_BATCHES` column) this sub-DAG commits: deleted in the write.
    pub own_batches: Vec<(BatchDigest, WorkerId)>,
    /// The consensus state right after this sub-DAG.
    pub state: ConsensusState,
    /// Log records `[from, to)` leave the retention in this write (with the batches only they
    /// pin); empty when nothing does.
    pub prune: std::ops::Range<u64>,
    notice: Notice,
}

impl Execution {
    /// The notice for the primary. Call only once the write is durable: the primary
    /// garbage-collects below the sub-DAG on it, so a notice ahead of the write would let a
    /// crash leave a persisted state older than the store's GC.
    pub fn durable(self) -> Notice {
        self.notice
    }
}

/// What one committed sub-DAG calls for.
#[derive(Debug)]
pub enum Step {
    /// Already in the log (recovery replayed it): nothing is output twice.
    Replayed(CommittedSubDag),
    Execute(Box<Execution>),
}

/// The executor's bookkeeping: where the log is, what the primary's schedule is, what the
/// retention keeps.
#[derive(Clone, Debug)]
pub struct ExecutorCore {
    me: AuthorityIndex,
    /// Index of the next sub-DAG to write.
    next_index: u64,
    /// Sub-DAGs the log keeps while no L1 poster runs; older records are pruned.
    retention: u64,
    /// With a poster: sub-DAGs kept below the first one not yet confirmed on L1.
    retention_after_posting: u64,
    /// The first sub-DAG not yet confirmed on L1, when a poster runs.
    posted: Option<u64>,
    /// With an attester: the first sub-DAG it has not signed yet. Records it has not signed
    /// stay, whatever the retention: an attestation is over the record's transactions.
    attested: Option<u64>,
    /// Records below this are already pruned.
    pruned: u64,
    /// The schedule the primary has.
    schedule: ScheduleState,
}

impl ExecutorCore {
    /// `next_index`: the log's length; `schedule`: the one the primary starts with.
    pub fn new(
        me: AuthorityIndex,
        next_index: u64,
        retention: u64,
        schedule: ScheduleState,
    ) -> Self {
        Self {
            me,
            next_index,
            retention,
            retention_after_posting: retention,
            posted: None,
            attested: None,
            pruned: 0,
            schedule,
        }
    }

    /// Retention follows L1 from now on: a record goes once it is `after_posting` sub-DAGs
    /// below the first one not yet confirmed on L1 (and not before, however old it is: L1
    /// must get every sub-DAG, and anyone may rebuild the rollup from it).
    pub fn follow_posting(&mut self, after_posting: u64) {
        self.retention_after_posting = after_posting;
        self.posted.get_or_insert(0);
    }

    /// The poster confirmed every sub-DAG below `next_unposted` on L1.
    pub fn set_posted(&mut self, next_unposted: u64) {
        if let Some(p) = &mut self.posted {
            *p = (*p).max(next_unposted);
        }
    }

    /// The attester signed every sub-DAG below `next_unsigned`.
    pub fn set_attested(&mut self, next_unsigned: u64) {
        let a = self.attested.get_or_insert(0);
        *a = (*a).max(next_unsigned);
    }

    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Decides what `commit` calls for. Sub-DAGs must come in index order; an index beyond the
    /// next one is an error (consensus never skips one). The returned execution is taken to
    /// be written: the next call expects the following index.
    pub fn execute(&mut self, commit: Commit) -> Result<Step, ExecutorError> {
        let Commit { sub_dag, state, .. } = commit;
        let index = sub_dag.index;
        if index < self.next_index {
            return Ok(Step::Replayed(sub_dag));
        }
        if index > self.next_index {
            return Err(ExecutorError::Gap {
                index,
                next: self.next_index,
            });
        }
        let mut batches: Vec<CommittedBatch> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut own_batches = Vec::new();
        let mut own_rounds = Vec::new();
        for certificate in &sub_dag.certificates {
            let author = certificate.author();
            if author == self.me {
                own_rounds.push(certificate.round());
                own_batches.extend(certificate.header.payload.iter().copied());
            }
            for (digest, worker) in &certificate.header.payload {
                if seen.insert(*digest) {
                    batches.push(CommittedBatch {
                        digest: *digest,
                        worker: *worker,
                        author,
                    });
                }
            }
        }
        let upto = match self.posted {
            None => (index + 1).saturating_sub(self.retention),
            Some(posted) => posted
                .min(index + 1)
                .saturating_sub(self.retention_after_posting),
        };
        let upto = self.attested.map_or(upto, |attested| upto.min(attested));
        let prune = self.pruned..upto.max(self.pruned);
        self.pruned = prune.end;
        let schedule = (state.schedule != self.schedule).then(|| state.schedule.clone());
        if let Some(s) = &schedule {
            self.schedule = s.clone();
        }
        let notice = Notice {
            leader_round: sub_dag.leader_round,
            own_rounds,
            schedule,
        };
        self.next_index = index + 1;
        Ok(Step::Execute(Box::new(Execution {
            sub_dag,
            batches,
            own_batches,
            state,
            prune,
            notice,
        })))
    }
}
