//! The rollup node on a real anvil: each sub-DAG becomes one block holding its transactions
//! in weft's order minus those that cannot execute (nonce out of turn, a duplicate, no funds,
//! another chain, garbage), at the consensus time; a second node replaying the same inputs on
//! another anvil builds the same blocks (hashes and state roots); a node restarted on the same
//! engine resumes at its head.

#[path = "../../rpc/tests/common/mod.rs"]
mod txs;

use alloy_primitives::{Address, B256};
use bytes::Bytes;
use weft_l1_poster::anvil::Anvil;
use weft_rollup::plan::Skip;
use weft_rollup::{AnvilEngine, L2Input, RollupError, RollupNode};

const CHAIN: u64 = 1001;
/// 1 ETH each for accounts 0..3; account 7 has nothing.
const FUNDED: u64 = 3;
const POOR: u64 = 7;

/// An anvil that builds blocks only when asked, from a genesis funding the test accounts.
fn l2(dir: &std::path::Path) -> Anvil {
    let alloc: serde_json::Map<String, serde_json::Value> = (0..FUNDED)
        .map(|i| {
            (
                txs::signer(i).address().to_string(),
                serde_json::json!({"balance": "0xde0b6b3a7640000"}),
            )
        })
        .collect();
    let genesis = serde_json::json!({
        "config": {"chainId": CHAIN, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0,
            "eip158Block": 0, "byzantiumBlock": 0, "constantinopleBlock": 0,
            "petersburgBlock": 0, "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
            "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0,
            "terminalTotalDifficulty": 0, "terminalTotalDifficultyPassed": true},
        "nonce": "0x0", "timestamp": "0x0", "extraData": "0x", "gasLimit": "0x1c9c380",
        "difficulty": "0x0", "coinbase": "0x0000000000000000000000000000000000000000",
        "mixHash": "0x0000000000000000000000000000000000000000000000000000000000000000",
        "baseFeePerGas": "0x3b9aca00", "alloc": alloc,
    });
    let path = dir.join("genesis.json");
    std::fs::write(&path, genesis.to_string()).unwrap();
    let path = path.to_str().unwrap().to_string();
    Anvil::spawn(&["--no-mining", "--order", "fifo", "--init", &path]).expect("anvil (ops/setup)")
}

fn t(account: u64, nonce: u64) -> Bytes {
    Bytes::from(txs::transfer(CHAIN, account, nonce))
}

fn hash(raw: &Bytes) -> B256 {
    alloy_primitives::keccak256(raw)
}

fn inputs() -> Vec<L2Input> {
    let base = 1_700_000_000_000;
    vec![
        L2Input {
            index: 0,
            timestamp_ms: base + 500,
            transactions: vec![
                t(0, 0),
                t(0, 2),
                t(0, 1),
                t(0, 1),
                t(POOR, 0),
                Bytes::from(txs::transfer(9, 1, 0)),
                Bytes::from_static(b"garbage"),
                t(1, 0),
            ],
        },
        L2Input {
            index: 1,
            timestamp_ms: base + 900,
            transactions: vec![],
        },
        L2Input {
            index: 2,
            timestamp_ms: base + 2_100,
            transactions: vec![t(0, 2), t(2, 0)],
        },
    ]
}

#[tokio::test]
async fn blocks_hold_the_order_minus_what_cannot_execute_and_replay_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (l2(dir.path()), l2(dir.path()));
    let engine = AnvilEngine::open(&a.endpoint(), CHAIN).await.unwrap();
    let mut node = RollupNode::new(engine, CHAIN, 0).await.unwrap();
    assert_eq!(node.next_index(), 0);
    let mut reports = Vec::new();
    for input in inputs() {
        reports.push(node.execute(input).await.unwrap().expect("a new block"));
    }
    let i = inputs();
    let tx = |block: usize, n: usize| hash(&i[block].transactions[n]);
    assert_eq!(reports[0].included, vec![tx(0, 0), tx(0, 2), tx(0, 7)]);
    assert_eq!(
        reports[0].skipped,
        vec![
            (
                tx(0, 1),
                Skip::Nonce {
                    expected: 1,
                    got: 2
                }
            ),
            (
                tx(0, 3),
                Skip::Nonce {
                    expected: 2,
                    got: 1
                }
            ),
            (tx(0, 5), Skip::OtherChain(Some(9))),
            (tx(0, 6), Skip::Undecodable),
            (tx(0, 4), Skip::Refused),
        ]
    );
    assert!(reports[1].included.is_empty());
    assert_eq!(reports[2].included, vec![tx(2, 0), tx(2, 1)]);
    let numbers: Vec<u64> = reports.iter().map(|r| r.head.number).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    let times: Vec<u64> = reports.iter().map(|r| r.head.timestamp).collect();
    assert_eq!(
        times,
        vec![1_700_000_000, 1_700_000_000, 1_700_000_002],
        "the consensus time in seconds; sub-DAGs of one second share it"
    );

    // Another node, another anvil, the same inputs: the same chain.
    let mut replica = RollupNode::new(AnvilEngine::connect(&b.endpoint()).unwrap(), CHAIN, 0)
        .await
        .unwrap();
    for (input, report) in inputs().into_iter().zip(&reports) {
        let again = replica.execute(input).await.unwrap().unwrap();
        assert_eq!(again.head, report.head, "block {}", report.head.number);
        assert_eq!(again.skipped, report.skipped);
    }

    // A node restarted on the engine resumes at its head and passes over what it executed.
    let mut restarted = RollupNode::new(AnvilEngine::connect(&a.endpoint()).unwrap(), CHAIN, 0)
        .await
        .unwrap();
    assert_eq!(restarted.next_index(), 3);
    assert_eq!(restarted.head(), reports[2].head);
    let old = inputs().remove(1);
    assert_eq!(restarted.execute(old).await.unwrap(), None);
    let far = L2Input {
        index: 5,
        timestamp_ms: 0,
        transactions: vec![],
    };
    assert!(matches!(
        restarted.execute(far).await,
        Err(RollupError::Gap {
            expected: 3,
            got: 5
        })
    ));

    // Balances: the recipient got the five transfers included, a skipped one moved nothing.
    let provider = weft_l1_poster::l1::connect(&a.endpoint()).unwrap();
    use alloy::providers::Provider;
    let got = provider.get_balance(txs::recipient()).await.unwrap();
    assert_eq!(got, alloy_primitives::U256::from(5 * 1_000u64));
    let poor: Address = txs::signer(POOR).address();
    assert_eq!(provider.get_transaction_count(poor).await.unwrap(), 0);
}

/// An anvil that mines on its own or orders its pool by fee, or runs another chain, would not
/// hold exactly weft's order: the node refuses it up front, saying what to change.
#[tokio::test]
async fn an_engine_that_would_not_hold_the_order_is_refused_with_the_fix() {
    use weft_rollup::engine::EngineError;
    let dir = tempfile::tempdir().unwrap();
    let automine = Anvil::spawn(&["--order", "fifo"]).unwrap();
    let by_fees = Anvil::spawn(&["--no-mining"]).unwrap();
    let fine = l2(dir.path());
    let setup = |r: Result<AnvilEngine, EngineError>| match r {
        Err(EngineError::Setup(why)) => why,
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("accepted"),
    };
    assert!(setup(AnvilEngine::open(&automine.endpoint(), 31337).await).contains("--no-mining"));
    assert!(setup(AnvilEngine::open(&by_fees.endpoint(), 31337).await).contains("--order fifo"));
    assert!(setup(AnvilEngine::open(&fine.endpoint(), 7).await).contains("chain 1001"));
}
