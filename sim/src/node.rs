//! One simulated authority: the primary's [`Core`], Bullshark and the leader schedule they
//! share (in memory, dropped by a crash), over a [`DurableStore`] that survives. Starting and
//! restarting follow `node/src/node.rs`; carrying out the core's outputs follows
//! `primary/src/runner.rs`; committing follows the executor in `node/src/executor.rs`.

use crate::byzantine::{self, Behaviour};
use crate::ctx::{Ctx, Event, Requester};
use crate::network::{Fetch, Message};
use crate::store::{CommittedRecord, DurableStore};
use crate::sync::Synchronizer;
use crate::sync::INVALID;
use std::collections::{BTreeSet, HashSet, VecDeque};
use weft_consensus::{Bullshark, Commit, ConsensusError, ConsensusState, ScheduleState};
use weft_executor::{ExecutorCore, Step};
use weft_primary::core::{Core, CoreConfig, CoreError, Output};
use weft_types::{AuthorityIndex, BatchDigest, Certificate, Digest, HeaderDigest, KeyPair, Round};

/// What a crash drops.
struct Live {
    core: Core,
    bullshark: Bullshark,
    /// The executor's decisions, the node's own (`weft_executor`).
    executor: ExecutorCore,
    sync: Synchronizer,
    /// Certificates in the channel from the primary to consensus.
    to_consensus: VecDeque<Certificate>,
    consensus_scheduled: bool,
    /// Header-timer readings already scheduled.
    ticks: BTreeSet<u64>,
}

pub struct Authority {
    pub index: AuthorityIndex,
    keypair: KeyPair,
    /// How it misbehaves, if it is Byzantine.
    pub behaviour: Option<Behaviour>,
    pub store: DurableStore,
    live: Option<Live>,
    /// Bumped at every start: timers, answers and retries of an earlier life are void.
    pub incarnation: u64,
    /// The kind of write after which a failpoint killed this authority, until the simulation
    /// takes it (to count the crash and schedule the restart).
    died: Option<&'static str>,
}

impl Authority {
    pub fn new(index: AuthorityIndex, keypair: KeyPair, behaviour: Option<Behaviour>) -> Self {
        Self {
            index,
            keypair,
            behaviour,
            store: DurableStore::default(),
            live: None,
            incarnation: 0,
            died: None,
        }
    }

    /// Whether a failpoint killed this authority since the last call, and after which write.
    pub fn take_died(&mut self) -> Option<&'static str> {
        self.died.take()
    }

    /// The failpoint after a write of `kind`: the process is gone, whatever it was doing.
    fn die(&mut self, ctx: &Ctx, kind: &'static str) {
        if ctx.verbose {
            eprintln!("{:>7} {} dies after a {kind} write", ctx.now, self.index);
        }
        self.live = None;
        self.died = Some(kind);
    }

    pub fn is_up(&self) -> bool {
        self.live.is_some()
    }

    /// Whether an event of `incarnation` still concerns this authority.
    pub fn is_current(&self, incarnation: u64) -> bool {
        self.is_up() && self.incarnation == incarnation
    }

    /// The round of the primary's latest header, while up.
    pub fn round(&self) -> Option<Round> {
        self.live.as_ref().map(|l| l.core.round())
    }

    /// Which of `candidates` the primary still means to get committed (none while down).
    pub fn batches_in_use(&self, candidates: &HashSet<BatchDigest>) -> HashSet<BatchDigest> {
        self.live
            .as_ref()
            .map(|l| l.core.batches_in_use(candidates))
            .unwrap_or_default()
    }

    /// The primary's view of the DAG, for `WEFT_SIM_TRACE`.
    pub fn describe(&self) -> String {
        let Some(live) = &self.live else {
            return format!("{}: down, log {}", self.index, self.store.log.len());
        };
        let dag = live.core.dag();
        let rounds: Vec<String> = (dag.gc_round() + 1..=dag.highest_round())
            .map(|r| {
                let authors: Vec<String> = {
                    let mut a: Vec<u16> = dag.round(r).map(|c| c.author().0).collect();
                    a.sort_unstable();
                    a.iter().map(u16::to_string).collect()
                };
                format!("{r}:{}", authors.join(""))
            })
            .collect();
        format!(
            "{}: round {}, gc {}, pending {}, log {}, consensus queue {}, missing {}, dag [{}]",
            self.index,
            live.core.round(),
            dag.gc_round(),
            live.core.pending_len(),
            self.store.log.len(),
            live.to_consensus.len(),
            live.sync.missing_len(),
            rounds.join(" ")
        )
    }

    fn requester(&self) -> Requester {
        Requester {
            me: self.index,
            incarnation: self.incarnation,
        }
    }

    /// Drops everything in memory; the store stays.
    pub fn crash(&mut self, ctx: &Ctx) {
        if ctx.verbose {
            eprintln!("{:>7} {} crashes: {}", ctx.now, self.index, self.describe());
        }
        self.live = None;
        self.store.disarm();
    }

    /// Starts from the store, exactly as `Node::spawn` does: consensus state and stored
    /// certificates above its GC round into `Bullshark::recover` (whose extra sub-DAGs are
    /// output first), the schedule restored from it, then the primary's `Core::recover`.
    pub fn start(&mut self, ctx: &mut Ctx) {
        self.incarnation += 1;
        let (bullshark, recovered, schedule) = match self.recover_consensus(ctx) {
            Ok(x) => x,
            Err(e) => {
                let what = format!("{} cannot recover consensus: {e}", self.index);
                ctx.observer.violation(ctx.now, what);
                return;
            }
        };
        let leader = match ctx.config.schedule.leaders(&ctx.committee, &schedule) {
            Ok(l) => l,
            Err(e) => {
                let what = format!("{} cannot restore its schedule: {e}", self.index);
                ctx.observer.violation(ctx.now, what);
                return;
            }
        };
        let config = CoreConfig {
            gc_depth: ctx.config.gc_depth,
            header_num_of_batches_threshold: ctx.config.header_num_of_batches_threshold,
            max_header_num_of_batches: ctx.config.max_header_num_of_batches,
            max_header_delay_ms: ctx.config.max_header_delay_ms,
        };
        let core = Core::recover(
            self.index,
            ctx.committee.clone(),
            self.keypair.copy(),
            config,
            leader,
            self.store.recovered(self.index),
        );
        self.live = Some(Live {
            core,
            bullshark,
            executor: ExecutorCore::new(
                self.index,
                self.store.log.len() as u64,
                u64::MAX,
                schedule,
            ),
            sync: Synchronizer::new(ctx, self.index),
            to_consensus: VecDeque::new(),
            consensus_scheduled: false,
            ticks: BTreeSet::new(),
        });
        self.tick(ctx, ctx.now);
        ctx.stats.recovered_commits += recovered.len() as u64;
        self.commit(ctx, recovered, usize::MAX);
        let after = ctx.config.batch_every.draw(&mut ctx.rng);
        ctx.schedule(after, self.event_batch());
    }

    fn recover_consensus(
        &self,
        ctx: &Ctx,
    ) -> Result<(Bullshark, Vec<Commit>, ScheduleState), ConsensusError> {
        let (committee, kind, gc_depth) =
            (&ctx.committee, ctx.config.schedule, ctx.config.gc_depth);
        let schedule = kind.build(committee)?;
        let state = match &self.store.consensus_state {
            Some(s) => s.clone(),
            None => ConsensusState::genesis(committee, schedule.as_ref()),
        };
        let gc_round = state.last_committed_leader_round.saturating_sub(gc_depth);
        let stored = self.store.certificates_above(gc_round);
        let (bullshark, recovered) =
            Bullshark::recover(committee.clone(), gc_depth, schedule, state, stored)?;
        let schedule = bullshark.state().schedule;
        Ok((bullshark, recovered, schedule))
    }

    fn event_batch(&self) -> Event {
        Event::Batch {
            node: self.index,
            incarnation: self.incarnation,
        }
    }

    /// A header-timer reading (or a start).
    pub fn tick(&mut self, ctx: &mut Ctx, at: u64) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.ticks.remove(&at);
        live.core.tick(ctx.now);
        if self.behaviour == Some(Behaviour::FarFutureHeaders) {
            let header = byzantine::far_future_header(
                self.index,
                live.core.round() + byzantine::FAR_AHEAD,
                ctx.committee.epoch(),
                ctx.now,
                ctx.committee.size(),
                &self.keypair,
                &mut ctx.rng,
            );
            ctx.broadcast(self.index, self.incarnation, Message::Header(header));
        }
        self.carry_out(ctx);
    }

    /// One of this authority's workers sealed a batch that a quorum stored.
    pub fn make_batch(&mut self, ctx: &mut Ctx) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let n = self.store.batches_made;
        self.store.batches_made += 1;
        let digest = batch_digest(self.index, n);
        live.core.tick(ctx.now);
        // The primary records the report before it answers the worker (the acknowledgement).
        self.store.own_batches.push((digest, 0));
        if self.store.wrote("own batch") {
            self.die(ctx, "own batch");
            return;
        }
        live.core.add_batch(digest, 0);
        ctx.stats.batches_made += 1;
        self.carry_out(ctx);
        let after = ctx.config.batch_every.draw(&mut ctx.rng);
        ctx.schedule(after, self.event_batch());
    }

    /// A message from `from`: verified, then given to the core. What a Byzantine sender
    /// sends may fail anywhere; what an honest one sends must not.
    pub fn deliver(&mut self, ctx: &mut Ctx, from: AuthorityIndex, message: Message) {
        let honest_sender = ctx.honest(from);
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let committee = &ctx.committee;
        let (label, verified) = match &message {
            Message::Header(h) => ("header", ctx.verifier.header(committee, h)),
            Message::Vote(v) => ("vote", ctx.verifier.vote(committee, v)),
            Message::Certificate(c) => ("certificate", ctx.verifier.certificate(committee, c)),
        };
        if let Err(e) = verified {
            ctx.stats.byzantine_refused += u64::from(!honest_sender);
            if honest_sender {
                let what = format!("{}: an honest {label} failed verification: {e}", self.index);
                ctx.observer.violation(ctx.now, what);
            }
            return;
        }
        live.core.tick(ctx.now);
        let result = match message {
            Message::Header(h) => live.core.handle_header(h),
            Message::Vote(v) => live.core.handle_vote(v),
            Message::Certificate(c) => live.core.handle_certificate(c),
        };
        self.refused(ctx, label, result, honest_sender);
        self.carry_out(ctx);
    }

    /// What the runner logs as a warning (not benign) cannot come from an honest peer.
    fn refused(&self, ctx: &mut Ctx, label: &str, result: Result<(), CoreError>, honest: bool) {
        if result.is_err() && !honest {
            ctx.stats.byzantine_refused += 1;
        }
        match result {
            Ok(()) => {}
            Err(e) if e.is_benign() || !honest => {
                ctx.stats.benign_refusals += 1;
                if ctx.verbose {
                    eprintln!("{:>7} {} ignored a {label}: {e}", ctx.now, self.index);
                }
            }
            Err(e) => {
                let what = format!("{} refused an honest {label}: {e}", self.index);
                ctx.observer.violation(ctx.now, what);
            }
        }
    }

    /// The answer to a `SyncPayload` with `notify`.
    pub fn payload_available(
        &mut self,
        ctx: &mut Ctx,
        author: AuthorityIndex,
        round: Round,
        digest: HeaderDigest,
    ) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.core.tick(ctx.now);
        let result = live.core.payload_available(author, round, digest);
        self.refused(ctx, "payload", result, true);
        self.carry_out(ctx);
    }

    /// Certificates fetched from `from`: what the synchronizer takes, fed in round order.
    pub fn fetch_answer(
        &mut self,
        ctx: &mut Ctx,
        from: AuthorityIndex,
        fetch: Fetch,
        certificates: Vec<Certificate>,
    ) {
        let who = self.requester();
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let answered = live
            .sync
            .answered(ctx, who, from, &fetch, certificates, &self.store);
        if !ctx.honest(from) {
            ctx.stats.byzantine_refused += answered.rejected.len() as u64;
        }
        if answered.rejected.contains(&INVALID) && ctx.honest(from) {
            let what = format!("{}: a fetched certificate failed verification", who.me);
            ctx.observer.violation(ctx.now, what);
        }
        live.core.tick(ctx.now);
        for c in answered.certificates {
            let result = live.core.handle_certificate(c);
            if let Err(e) = result {
                if e.is_benign() || !ctx.honest(from) {
                    ctx.stats.benign_refusals += 1;
                } else {
                    let what = format!("{} refused a fetched certificate: {e}", who.me);
                    ctx.observer.violation(ctx.now, what);
                }
            }
        }
        self.carry_out(ctx);
    }

    /// The synchronizer's timer.
    pub fn sync_check(&mut self, ctx: &mut Ctx, at: u64) {
        let who = self.requester();
        if let Some(live) = self.live.as_mut() {
            let gc_round = live.core.dag().gc_round();
            live.sync.check(ctx, who, gc_round, &self.store, at);
        }
    }

    /// Consensus takes the certificates waiting in its channel, in causal order, and the
    /// executor writes what they commit. With a crash point, the process is killed during this
    /// step: between the first two writes if the step commits several sub-DAGs (the point that
    /// leaves a store garbage-collected for a sub-DAG the call's last state would cover);
    /// otherwise, for [`CrashPoint::AtStep`], before any write (certificates stored, not yet
    /// ordered). Returns whether it was killed.
    pub fn consensus_step(&mut self, ctx: &mut Ctx, crash: Option<CrashPoint>) -> bool {
        let Some(live) = self.live.as_mut() else {
            return false;
        };
        live.consensus_scheduled = false;
        let mut committed = Vec::new();
        while let Some(c) = live.to_consensus.pop_front() {
            match live.bullshark.process_certificate(c) {
                Ok(commits) => committed.extend(commits),
                Err(e) => {
                    let what = format!("{}: consensus refused a certificate: {e}", self.index);
                    ctx.observer.violation(ctx.now, what);
                }
            }
        }
        let (write_limit, killed) = match (crash, committed.len()) {
            (None, _) => (usize::MAX, false),
            (Some(_), n) if n >= 2 => (1, true),
            (Some(CrashPoint::AtStep), _) => (0, true),
            (Some(CrashPoint::BetweenWrites), _) => (usize::MAX, false),
        };
        self.commit(ctx, committed, write_limit);
        killed
    }

    /// The executor: appends each sub-DAG to the committed log (one already there — replayed
    /// by recovery — is skipped, and must be identical) together with the consensus state
    /// right after it, updates the schedule, then tells the primary (its own certificates that
    /// were output, and the leader round for garbage collection), one sub-DAG at a time.
    /// Writes at most `write_limit` sub-DAGs.
    fn commit(&mut self, ctx: &mut Ctx, commits: Vec<Commit>, write_limit: usize) {
        let me = self.index;
        let Some(live) = self.live.as_mut() else {
            return;
        };
        for commit in commits.into_iter().take(write_limit) {
            let execution = match live.executor.execute(commit) {
                Ok(Step::Execute(execution)) => execution,
                Ok(Step::Replayed(s)) => {
                    ctx.stats.replayed += 1;
                    if self.store.log[s.index as usize] != CommittedRecord::from(&s) {
                        let what = format!(
                            "{me}: recovery re-committed sub-DAG {} differently",
                            s.index
                        );
                        ctx.observer.violation(ctx.now, what);
                    }
                    continue;
                }
                Err(e) => {
                    ctx.observer.violation(ctx.now, format!("{me}: {e}"));
                    continue;
                }
            };
            if ctx.verbose {
                let s = &execution.sub_dag;
                eprintln!(
                    "{:>7} {me} commits sub-DAG {} (leader round {})",
                    ctx.now, s.index, s.leader_round
                );
            }
            // The node's one synced write: record, own-batch records, consensus state (the
            // simulation keeps the whole log, so it prunes nothing).
            self.store
                .log
                .push(CommittedRecord::from(&execution.sub_dag));
            let settled: HashSet<BatchDigest> =
                execution.own_batches.iter().map(|(d, _)| *d).collect();
            self.store.own_batches.retain(|(d, _)| !settled.contains(d));
            self.store.consensus_state = Some(execution.state.clone());
            if self.store.wrote("sub-DAG") {
                self.die(ctx, "sub-DAG");
                return;
            }
            // What the node does with the notice once the write is durable.
            let notice = execution.durable();
            if let Some(schedule) = &notice.schedule {
                match ctx.config.schedule.leaders(&ctx.committee, schedule) {
                    Ok(leaders) => live.core.set_leaders(leaders),
                    Err(e) => ctx
                        .observer
                        .violation(ctx.now, format!("{me}: schedule update failed: {e}")),
                }
            }
            live.core.own_certificates_committed(&notice.own_rounds);
            live.core.handle_committed(notice.leader_round);
        }
        self.carry_out(ctx);
    }

    /// Carries out the core's outputs in order, as the runner does; a vote leaves only if its
    /// record is already in the store (the core's contract, checked here).
    fn carry_out(&mut self, ctx: &mut Ctx) {
        let (me, incarnation) = (self.index, self.incarnation);
        let who = self.requester();
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let ready = live.core.take_ready();
        // The step's vote records and new header: one synced write, before anything leaves.
        for v in &ready.votes {
            self.store.votes.insert(v.author, (v.round, v.digest));
        }
        if let Some(h) = ready.header {
            if ctx.verbose {
                let batches: Vec<_> = h.payload.iter().map(|(d, _)| d).collect();
                eprintln!("{:>7} {me} proposes round {} {batches:?}", ctx.now, h.round);
            }
            self.store.headers.insert(h.round, h);
        }
        if !ready.votes.is_empty() && self.store.wrote("vote") {
            self.die(ctx, "vote");
            return;
        }
        let mut died = None;
        for output in ready.outputs {
            match output {
                Output::BroadcastHeader(h) if self.behaviour == Some(Behaviour::Equivocate) => {
                    let twin = byzantine::twin(&h, &self.keypair);
                    for to in (0..ctx.config.authorities as u16).map(AuthorityIndex) {
                        let version = if to.0 % 2 == 0 { &h } else { &twin };
                        if to != me {
                            ctx.send(me, incarnation, to, Message::Header(version.clone()));
                        }
                    }
                }
                Output::BroadcastHeader(h) => ctx.broadcast(me, incarnation, Message::Header(h)),
                Output::SendVote { to, vote } => {
                    let durable = self.store.votes.get(&vote.origin)
                        == Some(&(vote.round, vote.header_digest));
                    if !durable {
                        let what = format!(
                            "{me} sent a vote for {} round {} before its record was durable",
                            vote.origin, vote.round
                        );
                        ctx.observer.violation(ctx.now, what);
                    }
                    if self.behaviour == Some(Behaviour::WithholdVotes) {
                        continue;
                    }
                    ctx.observer.vote_sent(
                        ctx.now,
                        me,
                        vote.origin,
                        vote.round,
                        vote.header_digest,
                    );
                    if to != me {
                        if self.behaviour == Some(Behaviour::DoubleVote) {
                            let forged = byzantine::forged_vote(&vote, me, &self.keypair);
                            ctx.send(me, incarnation, to, Message::Vote(forged));
                        }
                        ctx.send(me, incarnation, to, Message::Vote(vote));
                    }
                }
                Output::BroadcastCertificate(c) => {
                    if ctx.verbose {
                        eprintln!("{:>7} {me} certified round {}", ctx.now, c.round());
                    }
                    ctx.observer
                        .certificate_formed(ctx.now, c.author(), c.round(), c.digest());
                    ctx.broadcast(me, incarnation, Message::Certificate(c));
                }
                Output::NewCertificate(c) => {
                    // Invariant 2, as every authority's DAG sees it: one certificate per
                    // (author, round), whoever formed it.
                    ctx.observer
                        .certificate_formed(ctx.now, c.author(), c.round(), c.digest());
                    self.store.insert_certificate(c.clone());
                    if self.store.wrote("certificate") {
                        died = Some("certificate");
                        break;
                    }
                    live.to_consensus.push_back(c);
                    if !live.consensus_scheduled {
                        live.consensus_scheduled = true;
                        let after = ctx.config.consensus_delay.draw(&mut ctx.rng);
                        ctx.schedule(
                            after,
                            Event::Consensus {
                                node: me,
                                incarnation,
                            },
                        );
                    }
                }
                Output::FetchCertificates {
                    from,
                    round,
                    digests,
                } => live.sync.want(ctx, who, from, round, digests),
                Output::FetchRange { from, from_round } => {
                    live.sync.range(ctx, who, from, from_round)
                }
                // Nobody can fetch these batches: the header is never voted for.
                Output::SyncPayload {
                    author,
                    notify: true,
                    ref payload,
                    ..
                } if ctx.withholds_batches(author) && !payload.is_empty() => {
                    ctx.stats.withheld_payloads += 1;
                }
                Output::SyncPayload {
                    header,
                    author,
                    round,
                    notify: true,
                    ..
                } => {
                    let after = ctx.config.payload_delay.draw(&mut ctx.rng);
                    let event = Event::Payload {
                        node: me,
                        incarnation,
                        author,
                        round,
                        digest: header,
                    };
                    ctx.schedule(after, event);
                }
                // Certified batches are stored by a quorum of workers; the simulation's
                // synthetic batches need no fetching for the output. A certificate over
                // withheld batches means honest authorities voted for what they never had.
                Output::SyncPayload {
                    author,
                    notify: false,
                    ref payload,
                    ..
                } => {
                    if ctx.withholds_batches(author) && !payload.is_empty() && ctx.honest(me) {
                        let what = format!("{me}: {author}'s withheld batches were certified");
                        ctx.observer.violation(ctx.now, what);
                    }
                }
                Output::GarbageCollected { gc_round, .. } => {
                    self.store.garbage_collect(gc_round);
                    if self.store.wrote("gc") {
                        died = Some("gc");
                        break;
                    }
                }
            }
        }
        if let Some(kind) = died {
            self.die(ctx, kind);
            return;
        }
        let deadline = live.core.next_deadline_ms();
        if deadline > ctx.now && live.ticks.insert(deadline) {
            let event = Event::Tick {
                node: me,
                incarnation,
                at: deadline,
            };
            ctx.schedule_at(deadline, event);
        }
    }
}

/// Where an armed authority is killed during a consensus step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// At this step: between two sub-DAG writes if it commits several, else before writing.
    AtStep,
    /// At the first step that commits several sub-DAGs, between the first two writes.
    BetweenWrites,
}

/// The `n`-th synthetic batch of `authority`'s workers.
pub fn batch_digest(authority: AuthorityIndex, n: u64) -> BatchDigest {
    BatchDigest(Digest::of_parts([
        b"weft-sim-batch".as_slice(),
        &authority.0.to_le_bytes(),
        &n.to_le_bytes(),
    ]))
}
