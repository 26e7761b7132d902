//! What every simulated authority's handlers share: virtual time and the event queue, the
//! run's one `StdRng`, the network, the observers and the counters. Kept apart from the event
//! loop (`sim.rs`) so that the authorities import it and not the loop that drives them.

use crate::byzantine::Behaviour;
use crate::check::Observer;
use crate::config::SimConfig;
use crate::network::{Fetch, Message, Network};
use crate::verify::Verifier;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use weft_types::{AuthorityIndex, Certificate, Committee, HeaderDigest, Round};

/// The requesting authority and its incarnation (answers to an earlier one are lost).
#[derive(Clone, Copy, Debug)]
pub struct Requester {
    pub me: AuthorityIndex,
    pub incarnation: u64,
}

/// Something that happens at a point of virtual time.
#[derive(Debug)]
pub enum Event {
    /// A delivery attempt of the reliable sender reaches `to` (if it is up and the link is).
    Attempt {
        from: AuthorityIndex,
        incarnation: u64,
        to: AuthorityIndex,
        message: Message,
    },
    /// The reliable sender's retry timer for a lost attempt.
    Resend {
        from: AuthorityIndex,
        incarnation: u64,
        to: AuthorityIndex,
        message: Message,
    },
    Tick {
        node: AuthorityIndex,
        incarnation: u64,
        at: u64,
    },
    Batch {
        node: AuthorityIndex,
        incarnation: u64,
    },
    Payload {
        node: AuthorityIndex,
        incarnation: u64,
        author: AuthorityIndex,
        round: Round,
        digest: HeaderDigest,
    },
    Consensus {
        node: AuthorityIndex,
        incarnation: u64,
    },
    SyncCheck {
        node: AuthorityIndex,
        incarnation: u64,
        at: u64,
    },
    /// A sync request reaches `to`, which answers from its store.
    FetchRequest {
        from: Requester,
        to: AuthorityIndex,
        fetch: Fetch,
    },
    FetchAnswer {
        to: Requester,
        from: AuthorityIndex,
        fetch: Fetch,
        certificates: Vec<Certificate>,
    },
    Crash,
    Restart(AuthorityIndex),
    Partition,
    Heal(u64),
    FinalPhase,
}

impl Event {
    /// What identifies the event in the trace hash (and in `WEFT_SIM_TRACE` output).
    pub(crate) fn trace(&self, h: &mut impl Hasher) {
        std::mem::discriminant(self).hash(h);
        match self {
            Self::Attempt {
                from, to, message, ..
            }
            | Self::Resend {
                from, to, message, ..
            } => {
                (from, to).hash(h);
                message.trace(h);
            }
            Self::Tick { node, at, .. } | Self::SyncCheck { node, at, .. } => (node, at).hash(h),
            Self::Batch { node, .. } | Self::Consensus { node, .. } => node.hash(h),
            Self::Payload { node, digest, .. } => (node, digest).hash(h),
            Self::FetchRequest { from, to, .. } => (from.me, to).hash(h),
            Self::FetchAnswer {
                to,
                from,
                certificates,
                ..
            } => {
                (to.me, from).hash(h);
                for c in certificates {
                    c.digest().hash(h);
                }
            }
            Self::Restart(a) => a.hash(h),
            Self::Heal(id) => id.hash(h),
            Self::Crash | Self::Partition | Self::FinalPhase => {}
        }
    }
}

/// Counters for the report.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub messages: u64,
    pub lost: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub batches_made: u64,
    /// Sub-DAGs output again by recovery and skipped because the log already held them.
    pub replayed: u64,
    /// Sub-DAGs that `Bullshark::recover` committed from stored certificates consensus had
    /// not processed before the crash.
    pub recovered_commits: u64,
    /// Late or out-of-date messages the core ignored.
    pub benign_refusals: u64,
    /// What Byzantine authorities sent that was refused (failed checks, refused by a core,
    /// or left out of a sync answer's certificates).
    pub byzantine_refused: u64,
    /// Headers whose payload could never be fetched (a withholding author's batches).
    pub withheld_payloads: u64,
    /// Crashes by a store failpoint, by the kind of write they followed.
    pub failpoints: std::collections::BTreeMap<&'static str, u64>,
}

/// Everything an authority's handlers may touch besides the authority itself.
pub struct Ctx {
    pub now: u64,
    pub rng: StdRng,
    pub config: SimConfig,
    pub committee: Committee,
    pub net: Network,
    pub observer: Observer,
    pub verifier: Verifier,
    pub stats: Stats,
    /// Print every event and every ignored message (`WEFT_SIM_TRACE`).
    pub verbose: bool,
    pub(crate) queue: BTreeMap<(u64, u64), Event>,
    pub(crate) seq: u64,
}

impl Ctx {
    /// Whether `a` follows the protocol (what it sends must pass every check).
    pub fn honest(&self, a: AuthorityIndex) -> bool {
        !self.config.byzantine.contains_key(&a)
    }

    /// Whether `a`'s batches exist only at `a` (see [`Behaviour::WithholdBatches`]).
    pub fn withholds_batches(&self, a: AuthorityIndex) -> bool {
        self.config.byzantine.get(&a) == Some(&Behaviour::WithholdBatches)
    }

    pub fn schedule_at(&mut self, at: u64, event: Event) {
        self.queue.insert((at.max(self.now), self.seq), event);
        self.seq += 1;
    }

    pub fn schedule(&mut self, after: u64, event: Event) {
        self.schedule_at(self.now + after, event);
    }

    /// One delivery attempt by the reliable sender (lost attempts are retried).
    pub fn send(
        &mut self,
        from: AuthorityIndex,
        incarnation: u64,
        to: AuthorityIndex,
        message: Message,
    ) {
        self.stats.messages += 1;
        if self.net.lost(&mut self.rng) {
            self.stats.lost += 1;
            self.resend_later(from, incarnation, to, message);
        } else {
            let after = self.net.delay(&mut self.rng);
            let event = Event::Attempt {
                from,
                incarnation,
                to,
                message,
            };
            self.schedule(after, event);
        }
    }

    /// A failed delivery: the reliable sender tries again after its retry delay.
    pub fn resend_later(
        &mut self,
        from: AuthorityIndex,
        incarnation: u64,
        to: AuthorityIndex,
        message: Message,
    ) {
        let after = self.net.retry_delay(&mut self.rng);
        let event = Event::Resend {
            from,
            incarnation,
            to,
            message,
        };
        self.schedule(after, event);
    }

    pub fn broadcast(&mut self, from: AuthorityIndex, incarnation: u64, message: Message) {
        for to in (0..self.config.authorities as u16).map(AuthorityIndex) {
            if to != from {
                self.send(from, incarnation, to, message.clone());
            }
        }
    }

    /// A sync request: not retransmitted (the synchronizer asks again instead).
    pub fn request(&mut self, from: Requester, to: AuthorityIndex, fetch: Fetch) {
        self.stats.messages += 1;
        if self.net.lost(&mut self.rng) {
            self.stats.lost += 1;
            return;
        }
        let after = self.net.delay(&mut self.rng);
        self.schedule(after, Event::FetchRequest { from, to, fetch });
    }
}
