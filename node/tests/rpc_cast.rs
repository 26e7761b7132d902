//! The JSON-RPC ingress as Foundry's `cast` uses it: four `weft node run` processes; 240
//! transfers over two chain ids (legacy and EIP-1559, six accounts) each signed offline with
//! `cast mktx` (explicit nonce, gas limit, gas price and chain, so no state query is needed)
//! and sent with `cast publish --async --rpc-url http://ADDR/<chain_id>` to the authorities in
//! turn. Each answered hash must equal `cast keccak` of the raw transaction, and each
//! transaction must be found exactly once, under its chain id, by every authority's
//! `weft_getTransactionPosition` and in the four stores after a clean stop. Without cast
//! (`ops/setup` installs `@foundry-rs/cast-linux-amd64`) the test fails.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use common::{cast, run, Cluster};

const CHAIN_IDS: [u64; 2] = [1001, 1002];
const TRANSACTIONS: usize = 240;
const ACCOUNTS: usize = 6;
const THREADS: usize = 8;
const RECIPIENT: &str = "0x4242424242424242424242424242424242424242";

#[test]
fn cast_transfers_over_two_chains_are_each_committed_once() {
    let cast = cast();
    println!(
        "rpc_cast: {}",
        run(&cast, &["--version"]).lines().next().unwrap()
    );
    let started = Instant::now();
    let mut cluster = Cluster::start(4, &CHAIN_IDS);
    for endpoint in &cluster.endpoints {
        for chain in CHAIN_IDS {
            let url = format!("{endpoint}/{chain}");
            assert_eq!(
                run(&cast, &["chain-id", "--rpc-url", &url]),
                chain.to_string()
            );
            assert!(run(&cast, &["client", "--rpc-url", &url]).starts_with("weft/"));
        }
    }

    // Transaction i: chain i % 2, account (i / 2) % 6 (private key account + 1), nonces
    // counting per (chain, account); every third one legacy (EIP-155), the others EIP-1559.
    let next = AtomicUsize::new(0);
    let sent: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());
    let endpoints = &cluster.endpoints;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= TRANSACTIONS {
                    return;
                }
                let chain = CHAIN_IDS[i % CHAIN_IDS.len()];
                let account = (i / CHAIN_IDS.len()) % ACCOUNTS;
                let nonce = i / (CHAIN_IDS.len() * ACCOUNTS);
                let key = format!("0x{:064x}", account + 1);
                let (chain_arg, nonce_arg, value) =
                    (chain.to_string(), nonce.to_string(), (i + 1).to_string());
                let mut mktx = vec!["mktx", "--private-key", key.as_str(), "--chain", &chain_arg];
                mktx.extend(["--nonce", &nonce_arg, "--gas-limit", "21000"]);
                mktx.extend(["--gas-price", "2000000000"]);
                if i % 3 == 0 {
                    mktx.push("--legacy");
                } else {
                    mktx.extend(["--priority-gas-price", "1000000000"]);
                }
                mktx.extend([RECIPIENT, "--value", &value]);
                let raw = run(&cast, &mktx);
                let expected = run(&cast, &["keccak", &raw]);
                let url = format!("{}/{chain}", endpoints[i % endpoints.len()]);
                let hash = run(&cast, &["publish", "--async", "--rpc-url", &url, &raw]);
                assert_eq!(
                    hash, expected,
                    "transaction {i} via {url}: cast publish's hash"
                );
                // What weft reads from the envelope: the same hash, the chain cast signed for.
                let bytes = hex::decode(raw.trim_start_matches("0x")).unwrap();
                let (weft_hash, weft_chain) = weft_rpc::hash_and_chain_id(&bytes).unwrap();
                assert_eq!(format!("0x{}", hex::encode(weft_hash)), expected);
                assert_eq!(weft_chain, chain);
                sent.lock().unwrap().push((hash, chain));
            });
        }
    });
    let sent = sent.into_inner().unwrap();
    let sent_at = started.elapsed();
    let expected: HashMap<String, u64> = sent.iter().cloned().collect();
    assert_eq!(expected.len(), TRANSACTIONS, "distinct hashes");

    for endpoint in &cluster.endpoints {
        let missing = common::wait_committed(endpoint, &sent);
        assert!(
            missing.is_empty(),
            "{endpoint}: {} of {TRANSACTIONS} sent with cast not committed, e.g. {}",
            missing.len(),
            missing[0]
        );
    }
    println!(
        "rpc_cast: {TRANSACTIONS} transfers signed with cast mktx and sent with cast publish \
         by {sent_at:.1?}, every hash = cast keccak, each committed once at every authority by \
         {:.1?}",
        started.elapsed()
    );
    cluster.stop_and_check_stores(&expected);
}
