//! Byzantine authorities: an authority runs the production core like the others, and the
//! simulator bends what it sends. Honest authorities must keep every safety and liveness
//! check with up to f of them (the checks look at honest authorities only).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeMap;
use weft_types::{AuthorityIndex, Certificate, Digest, Header, KeyPair, Round, Vote};

/// How a Byzantine authority misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Signs a second header for each round it proposes (another timestamp) and sends each
    /// version to half of the others.
    Equivocate,
    /// With each vote, also signs a vote for a header its author never made.
    DoubleVote,
    /// Never sends a vote (it still records them).
    WithholdVotes,
    /// Its workers never hand their batches to the others' workers, yet its headers carry
    /// them: nobody can fetch what it proposes.
    WithholdBatches,
    /// At each timer reading, sends every other authority a header 20 rounds above its own,
    /// with parents that do not exist.
    FarFutureHeaders,
    /// Answers every range request with copies of one certificate, as many as asked.
    RangeCopies,
}

pub const BEHAVIOURS: [Behaviour; 6] = [
    Behaviour::Equivocate,
    Behaviour::DoubleVote,
    Behaviour::WithholdVotes,
    Behaviour::WithholdBatches,
    Behaviour::FarFutureHeaders,
    Behaviour::RangeCopies,
];

/// How far above its own round a far-future header is.
pub const FAR_AHEAD: Round = 20;

/// Between 1 and f authorities of `n`, each with a behaviour, drawn from `rng`. Fewer than f
/// leave the rest of the fault budget to crashes (store failpoints included), so Byzantine
/// authorities and crashes meet in one run.
pub fn draw(n: usize, rng: &mut StdRng) -> BTreeMap<AuthorityIndex, Behaviour> {
    let f = (n - 1) / 3;
    let count = rng.gen_range(1..=f.max(1));
    let mut all: Vec<AuthorityIndex> = (0..n as u16).map(AuthorityIndex).collect();
    all.shuffle(rng);
    all.into_iter()
        .take(count)
        .map(|a| (a, BEHAVIOURS[rng.gen_range(0..BEHAVIOURS.len())]))
        .collect()
}

/// The second version of an equivocating author's header.
pub fn twin(header: &Header, keypair: &KeyPair) -> Header {
    Header::new(
        header.author,
        header.round,
        header.epoch,
        header.created_at + 1,
        header.payload.clone(),
        header.parents.clone(),
        keypair,
    )
}

/// A vote by `voter` for a header of `vote.origin` at `vote.round` that the origin never made.
pub fn forged_vote(vote: &Vote, voter: AuthorityIndex, keypair: &KeyPair) -> Vote {
    let phantom = Header::new(
        vote.origin,
        vote.round,
        vote.epoch,
        u64::MAX,
        Vec::new(),
        Vec::new(),
        keypair,
    );
    Vote::new(&phantom, voter, keypair)
}

/// A header of `author` at `round` whose parents nobody has.
pub fn far_future_header(
    author: AuthorityIndex,
    round: Round,
    epoch: u64,
    now: u64,
    parents: usize,
    keypair: &KeyPair,
    rng: &mut StdRng,
) -> Header {
    let parents = (0..parents)
        .map(|_| weft_types::CertificateDigest(Digest::of(&rng.gen::<[u8; 32]>())))
        .collect();
    Header::new(author, round, epoch, now, Vec::new(), parents, keypair)
}

/// A range answer of copies: the first certificate of `honest`, `limit` times.
pub fn range_copies(honest: Vec<Certificate>, limit: usize) -> Vec<Certificate> {
    honest
        .into_iter()
        .next()
        .map(|c| vec![c; limit])
        .unwrap_or_default()
}
