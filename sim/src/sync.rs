//! The certificate synchronizer of one simulated authority (in memory, lost in a crash): the
//! production [`SyncCore`] on virtual time, its requests carried by the simulated network and
//! its timer by the event queue. A lost request or answer is never answered; the core's retry
//! and range timeout take over, as the real actor's answer timeout makes them.

use crate::ctx::{Ctx, Event, Requester};
use crate::store::DurableStore;
use rand::Rng;
use std::collections::HashSet;
use weft_primary::sync_core::{Answered, Fetch, Request, SyncConfig, SyncCore};
use weft_types::{AuthorityIndex, Certificate, CertificateDigest, Round};

/// Authorities a retried request goes to.
const RETRY_NODES: usize = 2;

/// Why a certificate the simulated network carried failed its checks (never, from honest
/// authorities).
pub const INVALID: &str = "invalid";

pub struct Synchronizer {
    core: SyncCore,
    /// When the next check is scheduled, if one is.
    check_at: Option<u64>,
}

impl Synchronizer {
    pub fn new(ctx: &mut Ctx, me: AuthorityIndex) -> Self {
        let config = SyncConfig {
            grace_ms: ctx.config.sync_grace_ms,
            retry_ms: ctx.config.sync_retry_ms,
            retry_nodes: RETRY_NODES,
            range_limit: ctx.config.range_limit,
        };
        let seed = ctx.rng.gen();
        Self {
            core: SyncCore::new(me, &ctx.committee, config, seed),
            check_at: None,
        }
    }

    /// The core's `FetchCertificates`: parents of a certificate of `round`.
    pub fn want(
        &mut self,
        ctx: &mut Ctx,
        who: Requester,
        from: AuthorityIndex,
        round: Round,
        digests: Vec<CertificateDigest>,
    ) {
        self.core.want(ctx.now, from, round, digests);
        self.schedule_check(ctx, who);
    }

    /// The core's `FetchRange`.
    pub fn range(
        &mut self,
        ctx: &mut Ctx,
        who: Requester,
        from: AuthorityIndex,
        from_round: Round,
    ) {
        let request = self.core.range(ctx.now, from, from_round);
        self.send(ctx, who, request);
        self.schedule_check(ctx, who);
    }

    pub fn missing_len(&self) -> usize {
        self.core.missing_len()
    }

    /// The `SyncCheck` timer: sends every request that is due.
    pub fn check(
        &mut self,
        ctx: &mut Ctx,
        who: Requester,
        gc_round: Round,
        store: &DurableStore,
        at: u64,
    ) {
        if self.check_at == Some(at) {
            self.check_at = None;
        }
        let has = |d: &CertificateDigest| store.certificate(d).is_some();
        for request in self.core.tick(ctx.now, gc_round, has) {
            self.send(ctx, who, Some(request));
        }
        self.schedule_check(ctx, who);
    }

    /// An answer from `from` to `fetch`: what the core takes, verified, in round order; a
    /// continuation of a range is sent.
    pub fn answered(
        &mut self,
        ctx: &mut Ctx,
        who: Requester,
        from: AuthorityIndex,
        fetch: &Fetch,
        certificates: Vec<Certificate>,
        store: &DurableStore,
    ) -> Answered {
        let valid: HashSet<CertificateDigest> = certificates
            .iter()
            .filter(|c| ctx.verifier.certificate(&ctx.committee, c).is_ok())
            .map(Certificate::digest)
            .collect();
        let verify = |c: &Certificate| valid.contains(&c.digest()).then_some(()).ok_or(INVALID);
        let has = |d: &CertificateDigest| store.certificate(d).is_some();
        let mut answered =
            self.core
                .answered(ctx.now, from, fetch, Some(certificates), verify, has);
        self.send(ctx, who, answered.next.take());
        self.schedule_check(ctx, who);
        answered
    }

    fn send(&mut self, ctx: &mut Ctx, who: Requester, request: Option<Request>) {
        if let Some(Request { to, fetch }) = request {
            ctx.request(who, to, fetch);
        }
    }

    fn schedule_check(&mut self, ctx: &mut Ctx, who: Requester) {
        let Some(at) = self.core.next_deadline() else {
            return;
        };
        let at = at.max(ctx.now + 1);
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
