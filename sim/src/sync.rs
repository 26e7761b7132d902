//! The certificate synchronizer of one simulated authority (in memory, lost in a crash): what
//! the real one in `primary/src/synchronizer.rs` does, on virtual time. A missing parent is
//! asked of the authority that referenced it after a short grace, then of other authorities
//! every retry period until it arrives or falls below GC; at most one range request is in
//! flight, and a full range answer continues from its last round.

use crate::ctx::{Ctx, Event, Requester};
use crate::network::Fetch;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use weft_primary::core::Core;
use weft_types::{AuthorityIndex, CertificateDigest, Round};

/// Give up on a digest after this many requests (it is below GC by then, or gone).
const MAX_ATTEMPTS: u32 = 20;

/// Authorities a retried request goes to.
const RETRY_NODES: usize = 2;

struct Missing {
    /// Who referenced it: asked first.
    from: AuthorityIndex,
    /// The missing certificate's round.
    round: Round,
    first_seen: u64,
    asked_at: Option<u64>,
    attempts: u32,
}

#[derive(Default)]
pub struct Synchronizer {
    missing: BTreeMap<CertificateDigest, Missing>,
    /// When the range request in flight was sent.
    range_since: Option<u64>,
    /// When the next check is scheduled, if one is.
    check_at: Option<u64>,
}

impl Synchronizer {
    /// The core's `FetchCertificates`: parents of a certificate of `round`.
    pub fn want(
        &mut self,
        ctx: &mut Ctx,
        who: Requester,
        from: AuthorityIndex,
        round: Round,
        digests: Vec<CertificateDigest>,
    ) {
        for d in digests {
            self.missing.entry(d).or_insert(Missing {
                from,
                round: round.saturating_sub(1),
                first_seen: ctx.now,
                asked_at: None,
                attempts: 0,
            });
        }
        let at = ctx.now + ctx.config.sync_grace_ms;
        self.schedule_check(ctx, who, at);
    }

    /// The core's `FetchRange`, or the continuation of a full answer.
    pub fn range(
        &mut self,
        ctx: &mut Ctx,
        who: Requester,
        from: AuthorityIndex,
        from_round: Round,
    ) {
        let timed_out = self
            .range_since
            .is_some_and(|at| ctx.now >= at + ctx.config.sync_retry_ms);
        if self.range_since.is_some() && !timed_out {
            return;
        }
        self.range_since = Some(ctx.now);
        ctx.request(who, from, Fetch::Range { from_round });
        let at = ctx.now + ctx.config.sync_retry_ms;
        self.schedule_check(ctx, who, at);
    }

    pub fn missing_len(&self) -> usize {
        self.missing.len()
    }

    pub fn range_answered(&mut self) {
        self.range_since = None;
    }

    /// Whether `digest` was asked for (an answer carrying anything else is unsolicited);
    /// it is no longer missing either way.
    pub fn answered(&mut self, digest: &CertificateDigest) -> bool {
        self.missing.remove(digest).is_some()
    }

    /// The `SyncCheck` timer: sends every request that is due.
    pub fn check(&mut self, ctx: &mut Ctx, who: Requester, core: &Core, at: u64) {
        if self.check_at == Some(at) {
            self.check_at = None;
        }
        let (grace, retry) = (ctx.config.sync_grace_ms, ctx.config.sync_retry_ms);
        let gc_round = core.dag().gc_round();
        let others: Vec<AuthorityIndex> = (0..ctx.config.authorities as u16)
            .map(AuthorityIndex)
            .filter(|a| *a != who.me)
            .collect();
        let mut targets: BTreeMap<AuthorityIndex, Vec<CertificateDigest>> = BTreeMap::new();
        let now = ctx.now;
        if self.range_since.is_some_and(|t| now >= t + retry) {
            // Lost or unanswered: the core asks again when the next certificate misses parents.
            self.range_since = None;
        }
        self.missing.retain(|d, m| {
            !core.dag().contains(d) && m.round > gc_round && m.attempts < MAX_ATTEMPTS
        });
        for (d, m) in self.missing.iter_mut() {
            let due = match m.asked_at {
                None => now >= m.first_seen + grace,
                Some(t) => now >= t + retry,
            };
            if !due {
                continue;
            }
            m.asked_at = Some(now);
            m.attempts += 1;
            if m.attempts == 1 {
                targets.entry(m.from).or_default().push(*d);
            } else {
                for to in others.choose_multiple(&mut ctx.rng, RETRY_NODES) {
                    targets.entry(*to).or_default().push(*d);
                }
            }
        }
        for (to, digests) in targets {
            ctx.request(who, to, Fetch::Digests(digests));
        }
        let next = self
            .missing
            .values()
            .map(|m| m.asked_at.map_or(m.first_seen + grace, |t| t + retry))
            .chain(self.range_since.map(|t| t + retry))
            .min();
        if let Some(next) = next {
            self.schedule_check(ctx, who, next.max(now + 1));
        }
    }

    fn schedule_check(&mut self, ctx: &mut Ctx, who: Requester, at: u64) {
        if self.check_at.is_some_and(|t| t <= at) {
            return;
        }
        self.check_at = Some(at);
        ctx.schedule_at(
            at,
            Event::SyncCheck {
                node: who.me,
                incarnation: who.incarnation,
                at,
            },
        );
    }
}
