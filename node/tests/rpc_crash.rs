//! `kill -9` under JSON-RPC load: four `weft node run` processes; 16 client threads send signed
//! transfers (several accounts, three chain ids) to authority 3 and record each hash it
//! acknowledged. Once some have been acknowledged, authority 3 is SIGKILLed mid-load; the
//! clients go on with the other three authorities, then authority 3 restarts from its store
//! with the same arguments and takes the rest. Every acknowledged transaction, above all those
//! authority 3 acknowledged before it died, must be committed exactly once (by hash, through
//! the restarted node's `weft_getTransactionPosition` and in the four stores after a clean
//! stop). Transactions that got an error or no answer when it died may be missing.

mod common;
#[path = "../../rpc/tests/common/mod.rs"]
mod signed;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

use common::{Cluster, RpcClient, PROCESS_DEADLINE};

const CHAIN_IDS: [u64; 3] = [1001, 1002, 1003];
const TRANSACTIONS: usize = 1_600;
const ACCOUNTS: usize = 8;
const THREADS: usize = 16;
/// The authority killed and restarted.
const VICTIM: usize = 3;
/// Acknowledgements from the victim before it is killed.
const KILL_AFTER: usize = 400;
/// Acknowledgements from the others before the victim restarts.
const RESTART_AFTER: usize = 400;

/// The load's phases: to the victim, to the others while it is dead, to the restarted victim.
const BEFORE_KILL: usize = 0;
const WHILE_DOWN: usize = 1;
const AFTER_RESTART: usize = 2;

#[derive(Clone, Debug)]
enum Outcome {
    Unsent,
    /// The node answered the transaction's hash, in this phase.
    Acked(usize),
    /// An error or no answer, in this phase.
    Failed(usize, String),
    WrongHash(String),
}

struct Load {
    /// (chain id, raw envelope, keccak of it as `0x…`).
    transactions: Vec<(u64, Vec<u8>, String)>,
    next: AtomicUsize,
    /// The current phase and the endpoints it sends to (round robin).
    phase: Mutex<(usize, Vec<String>)>,
    changed: Condvar,
    outcomes: Mutex<Vec<Outcome>>,
}

impl Load {
    fn set_phase(&self, phase: usize, endpoints: Vec<String>) {
        *self.phase.lock().unwrap() = (phase, endpoints);
        self.changed.notify_all();
    }

    /// One client thread: sends the next transaction until none is left; reports each answer.
    /// After a failure before the kill phase ends (the victim died) it waits for the next phase,
    /// so that at most one transaction per thread is in flight when the victim dies.
    fn client(&self, events: mpsc::Sender<(usize, bool)>) {
        let mut clients: HashMap<String, RpcClient> = HashMap::new();
        loop {
            let (phase, endpoints) = self.phase.lock().unwrap().clone();
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            let Some((chain, raw, hash)) = self.transactions.get(i) else {
                return;
            };
            let endpoint = &endpoints[i % endpoints.len()];
            let client = clients
                .entry(endpoint.clone())
                .or_insert_with(|| RpcClient::new(endpoint));
            let outcome = match client.send_raw(*chain, raw) {
                Ok(got) if got == *hash => Outcome::Acked(phase),
                Ok(got) => Outcome::WrongHash(format!("{endpoint}: {got} for {hash}")),
                Err(e) => Outcome::Failed(phase, e),
            };
            let acked = matches!(outcome, Outcome::Acked(_));
            self.outcomes.lock().unwrap()[i] = outcome;
            let _ = events.send((phase, acked));
            if !acked && phase == BEFORE_KILL {
                let mut current = self.phase.lock().unwrap();
                while current.0 == phase {
                    current = self.changed.wait(current).unwrap();
                }
            }
        }
    }
}

/// Waits for `count` acknowledgements in `phase` (the clients' answers, not a sleep).
fn wait_acks(events: &mpsc::Receiver<(usize, bool)>, phase: usize, count: usize) {
    let deadline = Instant::now() + PROCESS_DEADLINE;
    let mut acked = 0;
    while acked < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok((p, true)) if p == phase => acked += 1,
            Ok(_) => {}
            Err(e) => panic!("phase {phase}: {acked} of {count} acknowledgements ({e})"),
        }
    }
}

#[test]
fn every_transaction_acknowledged_before_a_kill_9_is_committed_once() {
    let started = Instant::now();
    let mut cluster = Cluster::start(4, &CHAIN_IDS);

    // Transaction i: chain i % 3, account (i / 3) % 8, nonces counting per (chain, account).
    let transactions: Vec<(u64, Vec<u8>, String)> = (0..TRANSACTIONS)
        .map(|i| {
            let chain = CHAIN_IDS[i % CHAIN_IDS.len()];
            let account = (i / CHAIN_IDS.len()) % ACCOUNTS;
            let nonce = i / (CHAIN_IDS.len() * ACCOUNTS);
            let raw = signed::transfer(chain, account as u64, nonce as u64);
            let hash = format!("0x{}", hex::encode(alloy_primitives::keccak256(&raw)));
            (chain, raw, hash)
        })
        .collect();
    let load = Arc::new(Load {
        transactions,
        next: AtomicUsize::new(0),
        phase: Mutex::new((BEFORE_KILL, vec![cluster.endpoints[VICTIM].clone()])),
        changed: Condvar::new(),
        outcomes: Mutex::new(vec![Outcome::Unsent; TRANSACTIONS]),
    });
    let (events_tx, events) = mpsc::channel();
    let clients: Vec<_> = (0..THREADS)
        .map(|_| {
            let (load, events_tx) = (load.clone(), events_tx.clone());
            std::thread::spawn(move || load.client(events_tx))
        })
        .collect();
    drop(events_tx);

    wait_acks(&events, BEFORE_KILL, KILL_AFTER);
    cluster.kill(VICTIM);
    let killed_at = started.elapsed();
    let others: Vec<String> = (0..4)
        .filter(|i| *i != VICTIM)
        .map(|i| cluster.endpoints[i].clone())
        .collect();
    load.set_phase(WHILE_DOWN, others);
    wait_acks(&events, WHILE_DOWN, RESTART_AFTER);
    let endpoint = cluster.restart(VICTIM).to_string();
    let restarted_at = started.elapsed();
    load.set_phase(AFTER_RESTART, vec![endpoint.clone()]);
    for client in clients {
        client.join().unwrap();
    }
    let sent_at = started.elapsed();

    let outcomes = load.outcomes.lock().unwrap().clone();
    let mut acked: Vec<(String, u64)> = Vec::new();
    let mut acked_before_kill: Vec<String> = Vec::new();
    let mut in_flight: Vec<(String, u64)> = Vec::new();
    let mut per_phase = [0usize; 3];
    for (i, outcome) in outcomes.iter().enumerate() {
        let (chain, _, hash) = &load.transactions[i];
        match outcome {
            Outcome::Acked(phase) => {
                per_phase[*phase] += 1;
                acked.push((hash.clone(), *chain));
                if *phase == BEFORE_KILL {
                    acked_before_kill.push(hash.clone());
                }
            }
            Outcome::Failed(BEFORE_KILL, _) => in_flight.push((hash.clone(), *chain)),
            Outcome::Failed(phase, e) => panic!("transaction {i} refused in phase {phase}: {e}"),
            Outcome::WrongHash(e) => panic!("transaction {i}: wrong hash answered: {e}"),
            Outcome::Unsent => panic!("transaction {i} was never sent"),
        }
    }
    assert!(per_phase[BEFORE_KILL] >= KILL_AFTER && per_phase[WHILE_DOWN] >= RESTART_AFTER);

    // The restarted authority's view: every acknowledged transaction, once, under its chain.
    assert_committed(&endpoint, &acked, &acked_before_kill);
    let committed_at = started.elapsed();
    let mut client = RpcClient::new(&endpoint);
    let in_flight_committed = in_flight
        .iter()
        .filter(|(hash, chain)| client.position(*chain, hash).is_some())
        .count();
    println!(
        "rpc_crash: {} transactions over {} chains from {ACCOUNTS} accounts, {THREADS} clients; \
         authority {VICTIM} acknowledged {} before its kill -9 at {killed_at:.1?}, {} were in \
         flight (error or no answer; {in_flight_committed} of them committed anyway); the others \
         acknowledged {} while it was down; restarted at {restarted_at:.1?}, it acknowledged {} \
         more; all sent at {sent_at:.1?}; all {} acknowledged committed once by {committed_at:.1?}",
        TRANSACTIONS,
        CHAIN_IDS.len(),
        per_phase[BEFORE_KILL],
        in_flight.len(),
        per_phase[WHILE_DOWN],
        per_phase[AFTER_RESTART],
        acked.len(),
    );

    // Every store, after a clean stop: each acknowledged transaction exactly once, nothing
    // twice, and the four committed sequences agree.
    let expected: HashMap<String, u64> = acked.into_iter().collect();
    cluster.stop_and_check_stores(&expected);
    println!(
        "rpc_crash: the four stores agree, each acknowledged transaction once ({:.1?} in all)",
        started.elapsed()
    );
}

/// [`common::wait_committed`]; panics with how many of the missing ones the victim had
/// acknowledged before it died.
fn assert_committed(endpoint: &str, acked: &[(String, u64)], acked_before_kill: &[String]) {
    let missing = common::wait_committed(endpoint, acked);
    if !missing.is_empty() {
        let lost = missing
            .iter()
            .filter(|h| acked_before_kill.contains(h))
            .count();
        panic!(
            "{} of {} acknowledged transactions not committed after {PROCESS_DEADLINE:?} \
             ({lost} of them acknowledged by authority {VICTIM} before its kill -9), e.g. {}",
            missing.len(),
            acked.len(),
            missing[0]
        );
    }
}
