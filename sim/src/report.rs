//! What a run reports: its trace hash, what it committed, what it counted, and every
//! violation found, with the command that replays it.

use crate::byzantine::Behaviour;
use crate::ctx::{Event, Stats};
use crate::network::Message;
use std::collections::BTreeMap;
use weft_types::{AuthorityIndex, Round};

/// What a run did and what it found.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub authorities: usize,
    /// The run's GC depth, if a test chose it instead of the default.
    pub gc_depth: Option<Round>,
    /// The Byzantine authorities and their behaviours (empty: all honest).
    pub byzantine: BTreeMap<AuthorityIndex, Behaviour>,
    /// Hash of every event in order: equal for two runs of one seed.
    pub trace_hash: u64,
    pub end_ms: u64,
    /// Committed sub-DAGs per authority at the end.
    pub committed: Vec<usize>,
    /// Sub-DAGs each authority committed in the final phase.
    pub final_phase_commits: Vec<usize>,
    /// Highest round any primary proposed in.
    pub highest_round: Round,
    /// Distinct batches in the longest committed log.
    pub batches_committed: usize,
    pub stats: Stats,
    /// Safety and contract violations: agreement, duplicate output, index gaps, double votes
    /// or certificates, a vote sent before its record was durable, honest messages refused.
    pub violations: Vec<String>,
    /// Authorities that did not commit enough in the final phase (everything healed and up).
    pub liveness: Vec<String>,
}

impl Report {
    /// No violation of any kind.
    pub fn passed(&self) -> bool {
        self.safe() && self.liveness.is_empty()
    }

    /// No safety or contract violation (liveness aside).
    pub fn safe(&self) -> bool {
        self.violations.is_empty()
    }

    /// The command that runs this seed again, alone, with its trace.
    pub fn replay_command(&self) -> String {
        let gc = self
            .gc_depth
            .map(|d| format!("WEFT_SIM_GC_DEPTH={d} "))
            .unwrap_or_default();
        let byzantine = if self.byzantine.is_empty() {
            ""
        } else {
            "WEFT_SIM_BYZANTINE=1 "
        };
        format!(
            "WEFT_SIM_SEED={} WEFT_SIM_AUTHORITIES={} {gc}{byzantine}cargo test -p weft-sim --test seeds replay -- --nocapture",
            self.seed, self.authorities
        )
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "seed {} ({} authorities): {} events, rounds up to {}, committed {:?} (final phase {:?}), \
             {} of {} batches committed, {} messages ({} lost), {} crashes ({} at a store \
             failpoint), {} partitions, {} sub-DAGs committed by recovery ({} replayed), \
             trace {:016x}",
            self.seed,
            self.authorities,
            s.events,
            self.highest_round,
            self.committed,
            self.final_phase_commits,
            self.batches_committed,
            s.batches_made,
            s.messages,
            s.lost,
            s.crashes,
            s.failpoints.values().sum::<u64>(),
            s.partitions,
            s.recovered_commits,
            s.replayed,
            self.trace_hash,
        )?;
        if !self.byzantine.is_empty() {
            let (refused, withheld) = (s.byzantine_refused, s.withheld_payloads);
            write!(
                f,
                ", Byzantine {:?} ({refused} of their messages refused, {withheld} headers \
                 of withheld batches never voted for)",
                self.byzantine
            )?;
        }
        for v in &self.violations {
            write!(f, "\n  VIOLATION {v}")?;
        }
        for v in &self.liveness {
            write!(f, "\n  LIVENESS {v}")?;
        }
        Ok(())
    }
}

/// One line per event for `WEFT_SIM_TRACE`.
pub(crate) fn describe(event: &Event) -> String {
    let message = |m: &Message| match m {
        Message::Header(h) => format!("header {}@{}", h.author, h.round),
        Message::Vote(v) => format!("vote {}→{}@{}", v.author, v.origin, v.round),
        Message::Certificate(c) => format!("certificate {}@{}", c.author(), c.round()),
    };
    match event {
        Event::Attempt {
            from,
            to,
            message: m,
            ..
        } => format!("deliver {from}→{to} {}", message(m)),
        Event::Resend {
            from,
            to,
            message: m,
            ..
        } => format!("resend {from}→{to} {}", message(m)),
        Event::FetchRequest { from, to, fetch } => format!("fetch {}→{to} {fetch:?}", from.me),
        Event::FetchAnswer {
            to,
            from,
            certificates,
            ..
        } => format!(
            "answer {from}→{} {} certificates",
            to.me,
            certificates.len()
        ),
        Event::Payload {
            node,
            author,
            round,
            ..
        } => format!("payload at {node} for {author}@{round}"),
        other => format!("{other:?}"),
    }
}
