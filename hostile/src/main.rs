//! `weft-hostile`: a Byzantine committee member. It holds an authority's real keys (so every
//! connection authenticates and every header is validly signed), speaks weft's own wire
//! protocol, and spends the run on one attack against a victim authority, as fast as the
//! victim answers. `benchmark/hostile.py` runs it beside a local benchmark and measures what
//! the honest committee keeps doing, and what the victim's memory and disk do meanwhile.
//!
//! Every few seconds it prints one line: requests sent, answered, refused by the victim (an
//! error response: the victim's defence at work) and failed (no answer).

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use rand::{Rng, RngCore, SeedableRng};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;
use tokio::time::Instant;
use weft_config::{load_committee, load_keys, load_parameters, Keys, Parameters};
use weft_network::{NetworkConfig, NetworkError, NetworkMetrics, Peer, ReliableSender};
use weft_types::codec::{decode_message, encode_message};
use weft_types::messages::{MAX_BATCH_REQUEST, MAX_CERTIFICATES_REQUEST};
use weft_types::{
    AuthorityIndex, Batch, BatchDigest, CertificateDigest, CertificatesResponse, Committee, Digest,
    Header, PrimaryMessage, Round, WorkerMessage,
};

/// How often the counters are printed.
const REPORT_EVERY: Duration = Duration::from_secs(2);
/// A far-future header is this many rounds above the victim's highest round, and more.
const AHEAD_FROM: Round = 9;
const AHEAD_TO: Round = 1_000;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Attack {
    /// Valid batches, each as large as a worker seals, to every worker of the victim, that no
    /// header will ever name.
    UnsolicitedBatches,
    /// Batch requests that name one stored batch as many times as a request may hold.
    DuplicateBatchRequests,
    /// Certificate range requests from round 0 with the largest limit, and certificate
    /// requests naming one digest as many times as a request may hold.
    CertificateRequests,
    /// Validly signed headers 9 to 1,000 rounds above the victim's DAG, each with a full
    /// payload and parents that do not exist.
    FarFutureHeaders,
}

#[derive(Parser)]
#[command(about = "A Byzantine committee member: one attack against one victim")]
struct Args {
    #[arg(long, value_enum)]
    attack: Attack,
    /// The Byzantine authority's key file.
    #[arg(long)]
    keys: PathBuf,
    #[arg(long)]
    committee: PathBuf,
    /// The committee's parameters (batch and message sizes).
    #[arg(long)]
    parameters: Option<PathBuf>,
    /// The authority attacked, by its committee index...
    #[arg(long, conflicts_with = "victim_keys")]
    victim: Option<u16>,
    /// ...or by its key file (the committee orders authorities by key, not as the file
    /// lists them).
    #[arg(long)]
    victim_keys: Option<PathBuf>,
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Requests kept in flight.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// What the attack has done so far.
#[derive(Default)]
struct Counters {
    sent: u64,
    answered: u64,
    refused: u64,
    failed: u64,
}

struct Hostile {
    me: AuthorityIndex,
    keys: Keys,
    committee: Committee,
    parameters: Parameters,
    victim: AuthorityIndex,
    sender: ReliableSender,
    in_flight: usize,
    rng: rand::rngs::StdRng,
    counters: Counters,
    last_report: Instant,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let args = Args::parse();
    let committee = load_committee(&args.committee)?;
    let keys = load_keys(&args.keys)?;
    let parameters = match &args.parameters {
        Some(path) => load_parameters(path)?,
        None => Parameters::default(),
    };
    let me = committee
        .index_of_network_key(&keys.network.public())
        .context("the key file is not a committee member's")?;
    let victim = match (&args.victim_keys, args.victim) {
        (Some(path), _) => committee
            .index_of_network_key(&load_keys(path)?.network.public())
            .context("the victim's key file is not a committee member's")?,
        (None, Some(index)) => AuthorityIndex(index),
        (None, None) => bail!("name the victim: --victim or --victim-keys"),
    };
    if committee.authority(victim).is_none() || victim == me {
        bail!("the victim must be another member of the committee");
    }
    let config = NetworkConfig {
        max_message_size: parameters.max_message_size,
        ..NetworkConfig::default()
    };
    let sender = ReliableSender::new(
        &keys.network,
        config,
        Arc::new(NetworkMetrics::unregistered()),
    )?;
    let mut hostile = Hostile {
        me,
        keys,
        committee,
        parameters,
        victim,
        sender,
        in_flight: args.in_flight.max(1),
        rng: rand::rngs::StdRng::seed_from_u64(args.seed),
        counters: Counters::default(),
        last_report: Instant::now(),
    };
    println!(
        "weft-hostile: authority {me} runs {:?} against {victim}",
        args.attack
    );
    let until = Instant::now() + Duration::from_secs(args.duration);
    match args.attack {
        Attack::UnsolicitedBatches => hostile.unsolicited_batches(until).await?,
        Attack::DuplicateBatchRequests => hostile.duplicate_batch_requests(until).await?,
        Attack::CertificateRequests => hostile.certificate_requests(until).await?,
        Attack::FarFutureHeaders => hostile.far_future_headers(until).await?,
    }
    hostile.report("done");
    Ok(())
}

impl Hostile {
    fn primary(&self) -> Peer {
        let a = self.committee.authority(self.victim).expect("checked");
        Peer::new(a.primary_address, a.network_key.clone())
    }

    fn workers(&self) -> Vec<Peer> {
        let a = self.committee.authority(self.victim).expect("checked");
        a.worker_addresses
            .values()
            .map(|address| Peer::new(*address, a.network_key.clone()))
            .collect()
    }

    fn report(&mut self, when: &str) {
        let c = &self.counters;
        println!(
            "weft-hostile {when}: sent {} answered {} refused {} failed {}",
            c.sent, c.answered, c.refused, c.failed
        );
        self.last_report = Instant::now();
    }

    /// Sends what `next` makes, to the peer it names, keeping `in_flight` requests
    /// outstanding, until `until`.
    async fn flood(
        &mut self,
        until: Instant,
        mut next: impl FnMut(&mut Self) -> (Peer, Bytes),
    ) -> Result<()> {
        let mut pending = JoinSet::new();
        let answer_timeout = Duration::from_secs(5);
        while Instant::now() < until {
            while pending.len() < self.in_flight {
                let (peer, request) = next(self);
                let handler = self.sender.send(&peer, request).await;
                self.counters.sent += 1;
                pending.spawn(tokio::time::timeout(answer_timeout, handler));
            }
            if let Some(done) = pending.join_next().await {
                match done? {
                    Ok(Ok(_)) => self.counters.answered += 1,
                    Ok(Err(NetworkError::Remote(_))) => self.counters.refused += 1,
                    _ => self.counters.failed += 1,
                }
            }
            if self.last_report.elapsed() >= REPORT_EVERY {
                self.report("so far");
            }
        }
        Ok(())
    }

    /// A valid batch no honest worker made: transactions of random bytes up to `batch_size`.
    fn fresh_batch(&mut self) -> (BatchDigest, Bytes) {
        let tx_size = self.parameters.max_transaction_size.min(64 * 1024);
        let count = self.parameters.batch_size.div_ceil(tx_size + 4);
        let transactions = (0..count)
            .map(|_| {
                let mut tx = vec![0u8; tx_size];
                self.rng.fill_bytes(&mut tx);
                tx[0] = 1;
                Bytes::from(tx)
            })
            .collect();
        Batch::new(transactions).seal()
    }

    async fn unsolicited_batches(&mut self, until: Instant) -> Result<()> {
        let workers = self.workers();
        let mut turn = 0usize;
        self.flood(until, |h| {
            turn += 1;
            let (_, batch) = h.fresh_batch();
            let peer = workers[turn % workers.len()].clone();
            (peer, encode_message(&WorkerMessage::Batch(batch)))
        })
        .await
    }

    async fn duplicate_batch_requests(&mut self, until: Instant) -> Result<()> {
        let worker = self.workers().remove(0);
        let (digest, batch) = self.fresh_batch();
        self.sender
            .send(&worker, encode_message(&WorkerMessage::Batch(batch)))
            .await
            .await
            .context("storing the batch to ask for")?;
        let request = encode_message(&WorkerMessage::BatchRequest(vec![
            digest;
            MAX_BATCH_REQUEST
        ]));
        self.flood(until, |_| (worker.clone(), request.clone()))
            .await
    }

    async fn certificate_requests(&mut self, until: Instant) -> Result<()> {
        let primary = self.primary();
        let limit = self.parameters.max_message_size;
        let some = loop {
            if let Some(d) = range(&self.sender, &primary, limit, 0, 1).await?.first() {
                break *d;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let range = encode_message(&PrimaryMessage::CertificateRange {
            from_round: 0,
            limit: u32::MAX,
        });
        let twice = encode_message(&PrimaryMessage::CertificatesRequest(vec![
            some;
            MAX_CERTIFICATES_REQUEST
        ]));
        let mut turn = 0u64;
        self.flood(until, |_| {
            turn += 1;
            let request = if turn % 2 == 0 { &range } else { &twice };
            (primary.clone(), request.clone())
        })
        .await
    }

    async fn far_future_headers(&mut self, until: Instant) -> Result<()> {
        let primary = self.primary();
        let limit = self.parameters.max_message_size;
        // The victim's highest round, probed in the background.
        let base = Arc::new(AtomicU64::new(
            highest_round(&self.sender, &primary, limit).await?,
        ));
        let probe = {
            let (sender, primary, base) = (self.sender.clone(), primary.clone(), base.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(REPORT_EVERY).await;
                    if let Ok(round) = highest_round(&sender, &primary, limit).await {
                        base.store(round, Ordering::Relaxed);
                    }
                }
            })
        };
        let mut ahead = AHEAD_FROM;
        let result = self
            .flood(until, |h| {
                let round = base.load(Ordering::Relaxed) + ahead;
                ahead = if ahead >= AHEAD_TO {
                    AHEAD_FROM
                } else {
                    ahead + 1
                };
                let header = h.header(round);
                (
                    primary.clone(),
                    encode_message(&PrimaryMessage::Header(header)),
                )
            })
            .await;
        probe.abort();
        result
    }

    fn header(&mut self, round: Round) -> Header {
        let payload = (0..self.parameters.max_header_num_of_batches)
            .map(|_| (BatchDigest(random_digest(&mut self.rng)), 0))
            .collect();
        let parents = (0..self.committee.size())
            .map(|_| CertificateDigest(random_digest(&mut self.rng)))
            .collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Header::new(
            self.me,
            round,
            self.committee.epoch(),
            now,
            payload,
            parents,
            &self.keys.protocol,
        )
    }
}

/// Certificates of rounds ≥ `from_round` the victim serves (at most `limit` of them).
async fn range(
    sender: &ReliableSender,
    primary: &Peer,
    max_message_size: usize,
    from_round: Round,
    limit: u32,
) -> Result<Vec<CertificateDigest>> {
    let request = PrimaryMessage::CertificateRange { from_round, limit };
    let answer = sender.send(primary, encode_message(&request)).await.await?;
    let response: CertificatesResponse = decode_message(answer, max_message_size)?;
    Ok(response.certificates.iter().map(|c| c.digest()).collect())
}

/// The victim's highest round with a certificate, found by range requests.
async fn highest_round(
    sender: &ReliableSender,
    primary: &Peer,
    max_message_size: usize,
) -> Result<Round> {
    let has = |round: Round| async move {
        Ok::<bool, anyhow::Error>(
            !range(sender, primary, max_message_size, round, 1)
                .await?
                .is_empty(),
        )
    };
    let (mut low, mut high) = (0u64, 1u64);
    while has(high).await? {
        low = high;
        high *= 2;
    }
    while high - low > 1 {
        let mid = (low + high) / 2;
        if has(mid).await? {
            low = mid;
        } else {
            high = mid;
        }
    }
    Ok(low)
}

fn random_digest(rng: &mut impl Rng) -> Digest {
    Digest::of(&rng.gen::<[u8; 32]>())
}
