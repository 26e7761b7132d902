//! The discrete-event loop: one queue of timed events, one `StdRng`, virtual time. Events at
//! the same millisecond run in the order they were scheduled, so a seed fixes the whole trace.

use crate::byzantine::{self, Behaviour};
use crate::check::{check_logs, Observer};
use crate::config::SimConfig;
use crate::ctx::{Ctx, Event, Stats};
use crate::network::{Fetch, Network};
use crate::node::{batch_digest, Authority, CrashPoint};
use crate::report::{describe, Report};
use crate::verify::Verifier;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use weft_test_utils::CommitteeFixture;
use weft_types::{AuthorityIndex, BatchDigest, Round};

/// A run that needs more events than this is stuck in a loop (a few hundred thousand is
/// typical).
const MAX_EVENTS: u64 = 20_000_000;

/// A store failpoint fires after one of the victim's next this-many writes (about a second of
/// its writes: votes, headers, certificates, GC, own batches, sub-DAGs).
const MAX_WRITES_TO_FAILPOINT: u64 = 40;

pub struct Simulation {
    nodes: Vec<Authority>,
    ctx: Ctx,
    seed: u64,
    trace: DefaultHasher,
    /// Print every event (for replays).
    verbose: bool,
    final_phase: bool,
    /// Authorities to crash at their next consensus step.
    armed: BTreeSet<AuthorityIndex>,
    partition_id: u64,
    /// Log lengths when the final phase began.
    final_start: Vec<usize>,
    /// The GC depth a test chose (reported for the replay command).
    gc_depth_chosen: Option<Round>,
    /// Batches each authority had reported when the final phase began.
    final_start_batches: Vec<u64>,
}

/// Runs `seed` with a committee of `authorities` and a [`SimConfig::randomized`] config drawn
/// from the same seed. Prints every event if `WEFT_SIM_TRACE` is set.
pub fn run_seed(authorities: usize, seed: u64) -> Report {
    run_seed_with_gc_depth(authorities, seed, None)
}

/// [`run_seed`] with the GC depth set (the rest drawn as there, so the draws are the same).
/// A short depth makes garbage collection, and recovery from a store it has pruned, happen
/// within a run's few dozen rounds.
pub fn run_seed_with_gc_depth(authorities: usize, seed: u64, gc_depth: Option<Round>) -> Report {
    run(authorities, seed, gc_depth, false)
}

/// [`run_seed`] with 1 to f Byzantine authorities, each with a behaviour drawn from the seed (after
/// the config, so the rest of the draws are those of [`run_seed`]'s config).
pub fn run_seed_byzantine(authorities: usize, seed: u64) -> Report {
    run(authorities, seed, None, true)
}

fn run(authorities: usize, seed: u64, gc_depth: Option<Round>, byzantine: bool) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut config = SimConfig::randomized(authorities, &mut rng);
    if let Some(depth) = gc_depth {
        config.gc_depth = depth;
    }
    if byzantine {
        config.byzantine = byzantine::draw(authorities, &mut rng);
    }
    let mut sim = Simulation::new(config, rng, seed);
    sim.gc_depth_chosen = gc_depth;
    sim.verbose = std::env::var_os("WEFT_SIM_TRACE").is_some();
    sim.ctx.verbose = sim.verbose;
    sim.run()
}

impl Simulation {
    /// Everything random in the run comes from `rng`; `seed` is only reported.
    pub fn new(config: SimConfig, rng: StdRng, seed: u64) -> Self {
        let fixture = CommitteeFixture::new(config.authorities, 1, seed);
        let nodes = fixture
            .authorities()
            .map(|a| {
                let behaviour = config.byzantine.get(&a).copied();
                Authority::new(a, fixture.keys(a).protocol.copy(), behaviour)
            })
            .collect();
        let ctx = Ctx {
            now: 0,
            rng,
            net: Network::new(config.network.clone()),
            committee: fixture.committee,
            config,
            observer: Observer::default(),
            verifier: Verifier::default(),
            stats: Stats::default(),
            verbose: false,
            queue: BTreeMap::new(),
            seq: 0,
        };
        Self {
            nodes,
            ctx,
            seed,
            trace: DefaultHasher::new(),
            verbose: false,
            final_phase: false,
            armed: BTreeSet::new(),
            partition_id: 0,
            final_start: Vec::new(),
            final_start_batches: Vec::new(),
            gc_depth_chosen: None,
        }
    }

    pub fn run(mut self) -> Report {
        for node in &mut self.nodes {
            node.start(&mut self.ctx);
        }
        let c = &self.ctx.config;
        let (crash, partition) = (c.faults.crash_every, c.faults.partition_every);
        let final_at = c.duration_ms.saturating_sub(c.final_phase_ms);
        let after = crash.draw(&mut self.ctx.rng);
        self.ctx.schedule(after, Event::Crash);
        let after = partition.draw(&mut self.ctx.rng);
        self.ctx.schedule(after, Event::Partition);
        self.ctx.schedule_at(final_at, Event::FinalPhase);
        while let Some(((at, _), event)) = self.ctx.queue.pop_first() {
            if at > self.ctx.config.duration_ms {
                break;
            }
            self.ctx.stats.events += 1;
            if self.ctx.stats.events > MAX_EVENTS {
                let what = format!("more than {MAX_EVENTS} events: the run loops");
                self.ctx.observer.violation(at, what);
                break;
            }
            self.ctx.now = at;
            at.hash(&mut self.trace);
            event.trace(&mut self.trace);
            if self.verbose {
                eprintln!("{at:>7} {}", describe(&event));
            }
            self.handle(event);
            self.restart_the_dead();
        }
        if self.verbose {
            for n in &self.nodes {
                eprintln!("{}", n.describe());
            }
        }
        self.report()
    }

    fn handle(&mut self, event: Event) {
        let ctx = &mut self.ctx;
        match event {
            Event::Attempt {
                from,
                incarnation,
                to,
                message,
            } => {
                let receiver = &mut self.nodes[to.0 as usize];
                if receiver.is_up() && ctx.net.connected(from, to) {
                    receiver.deliver(ctx, from, message);
                } else {
                    // The connection failed: the reliable sender tries again later.
                    ctx.resend_later(from, incarnation, to, message);
                }
            }
            Event::Resend {
                from,
                incarnation,
                to,
                message,
            } => {
                let sender = &self.nodes[from.0 as usize];
                // A crash ends the sender's retries; the runner cancels sends of rounds far
                // behind its own.
                let cancelled = sender
                    .round()
                    .is_some_and(|r| message.round() + ctx.config.gc_depth < r);
                if sender.is_current(incarnation) && !cancelled {
                    ctx.send(from, incarnation, to, message);
                }
            }
            Event::Tick {
                node,
                incarnation,
                at,
            } => {
                let n = &mut self.nodes[node.0 as usize];
                if n.is_current(incarnation) {
                    n.tick(ctx, at);
                }
            }
            Event::Batch { node, incarnation } => {
                let n = &mut self.nodes[node.0 as usize];
                if n.is_current(incarnation) {
                    n.make_batch(ctx);
                }
            }
            Event::Payload {
                node,
                incarnation,
                author,
                round,
                digest,
            } => {
                let n = &mut self.nodes[node.0 as usize];
                if n.is_current(incarnation) {
                    n.payload_available(ctx, author, round, digest);
                }
            }
            Event::Consensus { node, incarnation } => {
                if self.nodes[node.0 as usize].is_current(incarnation) {
                    // With a chosen GC depth, armed authorities wait for a step that commits
                    // several sub-DAGs: the crash point that matters when GC is short.
                    let point = if self.gc_depth_chosen.is_some() {
                        CrashPoint::BetweenWrites
                    } else {
                        CrashPoint::AtStep
                    };
                    let crash =
                        (self.armed.contains(&node) && self.may_crash(node)).then_some(point);
                    if self.nodes[node.0 as usize].consensus_step(&mut self.ctx, crash) {
                        self.armed.remove(&node);
                        self.crash_now(node);
                    } else if point == CrashPoint::AtStep {
                        self.armed.remove(&node);
                    }
                }
            }
            Event::SyncCheck {
                node,
                incarnation,
                at,
            } => {
                let n = &mut self.nodes[node.0 as usize];
                if n.is_current(incarnation) {
                    n.sync_check(ctx, at);
                }
            }
            Event::FetchRequest { from, to, fetch } => {
                let peer = &self.nodes[to.0 as usize];
                if !peer.is_up() || !ctx.net.connected(from.me, to) {
                    return;
                }
                let certificates = match &fetch {
                    Fetch::Digests(ds) => ds
                        .iter()
                        .filter_map(|d| peer.store.certificate(d).cloned())
                        .collect(),
                    Fetch::Range { from_round, limit } => {
                        let honest = peer.store.range(*from_round, *limit);
                        if peer.behaviour == Some(Behaviour::RangeCopies) {
                            byzantine::range_copies(honest, *limit)
                        } else {
                            honest
                        }
                    }
                };
                ctx.stats.messages += 1;
                if ctx.net.lost(&mut ctx.rng) {
                    ctx.stats.lost += 1;
                    return;
                }
                let after = ctx.net.delay(&mut ctx.rng);
                let event = Event::FetchAnswer {
                    to: from,
                    from: to,
                    fetch,
                    certificates,
                };
                ctx.schedule(after, event);
            }
            Event::FetchAnswer {
                to,
                from,
                fetch,
                certificates,
            } => {
                let n = &mut self.nodes[to.me.0 as usize];
                if n.is_current(to.incarnation) && ctx.net.connected(from, to.me) {
                    n.fetch_answer(ctx, from, fetch, certificates);
                }
            }
            Event::Crash => self.crash(),
            Event::Restart(a) => {
                let n = &mut self.nodes[a.0 as usize];
                if !n.is_up() {
                    n.start(ctx);
                }
            }
            Event::Partition => self.partition(),
            Event::Heal(id) => {
                if id == self.partition_id {
                    ctx.net.heal();
                }
            }
            Event::FinalPhase => self.begin_final_phase(),
        }
    }

    /// Crashes one live authority if fewer than f are down; schedules its restart.
    fn crash(&mut self) {
        let ctx = &mut self.ctx;
        if self.final_phase {
            return;
        }
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_up())
            .collect();
        if let Some(&i) = up.choose(&mut ctx.rng) {
            let victim = AuthorityIndex(i as u16);
            match ctx.rng.gen_range(0..3) {
                // Crash where it hurts recovery most: certificates stored, not yet ordered, or
                // between two sub-DAG writes of one commit.
                0 => {
                    self.armed.insert(victim);
                }
                // Right after one of its next writes, whichever it is.
                1 => {
                    let writes = ctx.rng.gen_range(1..=MAX_WRITES_TO_FAILPOINT);
                    if self.may_crash(victim) {
                        self.nodes[i].store.arm(writes);
                    }
                }
                _ => self.crash_now(victim),
            }
        }
        let ctx = &mut self.ctx;
        let after = ctx.config.faults.crash_every.draw(&mut ctx.rng);
        ctx.schedule(after, Event::Crash);
    }

    /// Whether `victim` may crash now: it is up, fewer than f others are down or bound to die
    /// at an armed failpoint, and the final phase has not begun.
    fn may_crash(&self, victim: AuthorityIndex) -> bool {
        let others = self
            .nodes
            .iter()
            .filter(|n| n.index != victim && (!n.is_up() || n.store.is_armed()))
            .count();
        !self.final_phase
            && self.nodes[victim.0 as usize].is_up()
            && others < self.ctx.config.max_faulty()
    }

    /// Counts the authorities a store failpoint killed, and schedules their restarts.
    fn restart_the_dead(&mut self) {
        let ctx = &mut self.ctx;
        for node in &mut self.nodes {
            if let Some(kind) = node.take_died() {
                ctx.stats.crashes += 1;
                *ctx.stats.failpoints.entry(kind).or_default() += 1;
                let after = ctx.config.faults.downtime.draw(&mut ctx.rng);
                ctx.schedule(after, Event::Restart(node.index));
            }
        }
    }

    /// Crashes `victim` if [`Self::may_crash`], and schedules its restart.
    fn crash_now(&mut self, victim: AuthorityIndex) {
        if !self.may_crash(victim) {
            return;
        }
        let ctx = &mut self.ctx;
        let node = &mut self.nodes[victim.0 as usize];
        node.crash(ctx);
        ctx.stats.crashes += 1;
        let after = ctx.config.faults.downtime.draw(&mut ctx.rng);
        ctx.schedule(after, Event::Restart(victim));
    }

    /// Cuts the links between a random group and the rest (any size: a side without a
    /// quorum stalls until the links heal).
    fn partition(&mut self) {
        let ctx = &mut self.ctx;
        if self.final_phase {
            return;
        }
        if !ctx.net.is_partitioned() {
            let n = ctx.config.authorities;
            let mut all: Vec<AuthorityIndex> = (0..n as u16).map(AuthorityIndex).collect();
            all.shuffle(&mut ctx.rng);
            let size = ctx.rng.gen_range(1..n);
            let side: BTreeSet<AuthorityIndex> = all.into_iter().take(size).collect();
            ctx.net.partition(&side, n);
            ctx.stats.partitions += 1;
            self.partition_id += 1;
            let after = ctx.config.faults.partition_length.draw(&mut ctx.rng);
            ctx.schedule(after, Event::Heal(self.partition_id));
        }
        let after = ctx.config.faults.partition_every.draw(&mut ctx.rng);
        ctx.schedule(after, Event::Partition);
    }

    /// Heals every link and restarts every crashed authority; no new faults from here on.
    fn begin_final_phase(&mut self) {
        self.final_phase = true;
        self.ctx.net.heal();
        for n in &mut self.nodes {
            n.store.disarm();
            if !n.is_up() {
                n.start(&mut self.ctx);
            }
        }
        self.final_start = self.nodes.iter().map(|n| n.store.log.len()).collect();
        self.final_start_batches = self.nodes.iter().map(|n| n.store.batches_made).collect();
    }

    fn report(mut self) -> Report {
        let logs: Vec<&[_]> = self.nodes.iter().map(|n| n.store.log.as_slice()).collect();
        let mut violations = std::mem::take(&mut self.ctx.observer.violations);
        // What Byzantine authorities output is not checked: an empty log stands in for theirs.
        let honest_logs: Vec<&[_]> = self
            .nodes
            .iter()
            .map(|n| match n.behaviour {
                None => n.store.log.as_slice(),
                Some(_) => &[],
            })
            .collect();
        violations.extend(check_logs(&honest_logs));
        let committed: Vec<usize> = logs.iter().map(|l| l.len()).collect();
        let final_phase_commits: Vec<usize> = committed
            .iter()
            .zip(self.final_start.iter().chain(std::iter::repeat(&0)))
            .map(|(end, start)| end.saturating_sub(*start))
            .collect();
        let mut liveness = Vec::new();
        for (a, grew) in final_phase_commits.iter().enumerate() {
            if !self.ctx.honest(AuthorityIndex(a as u16)) {
                continue;
            }
            if *grew < self.ctx.config.min_final_commits {
                liveness.push(format!(
                    "liveness: authority {a} committed {grew} sub-DAGs in the final phase, \
                     fewer than {}",
                    self.ctx.config.min_final_commits
                ));
            }
        }
        let longest = honest_logs
            .iter()
            .max_by_key(|l| l.len())
            .copied()
            .unwrap_or(&[]);
        let batches: BTreeSet<_> = longest.iter().flat_map(|r| r.batches.iter()).collect();
        // Invariant 8: a batch reported to its primary (its transactions acknowledged) is
        // committed or still on its way (queued, proposed, or in a certificate consensus may
        // still commit), whatever crashed since: never forgotten.
        for (a, made) in self.final_start_batches.iter().enumerate() {
            let author = AuthorityIndex(a as u16);
            if !self.ctx.honest(author) {
                continue;
            }
            let open: HashSet<BatchDigest> = (0..*made)
                .map(|n| batch_digest(author, n))
                .filter(|d| !batches.contains(d))
                .collect();
            let lost = open.len() - self.nodes[a].batches_in_use(&open).len();
            if lost > 0 {
                liveness.push(format!(
                    "liveness: {lost} of the {made} batches authority {a} reported before the \
                     final phase are neither committed nor still to be proposed"
                ));
            }
        }
        let mut trace = self.trace;
        for log in &logs {
            log.hash(&mut trace);
        }
        Report {
            seed: self.seed,
            authorities: self.ctx.config.authorities,
            byzantine: self.ctx.config.byzantine.clone(),
            gc_depth: self.gc_depth_chosen,
            trace_hash: trace.finish(),
            end_ms: self.ctx.now,
            highest_round: self
                .nodes
                .iter()
                .filter_map(Authority::round)
                .max()
                .unwrap_or(0),
            batches_committed: batches.len(),
            committed,
            final_phase_commits,
            stats: self.ctx.stats.clone(),
            violations,
            liveness,
        }
    }
}
