//! The L1 derivation rule on its own: a forced transaction the committee does not order within
//! W L1 blocks goes at the front of the first sub-DAG derived after them; one the committee
//! orders in time is not placed again; forced bytes of other chains, and committee
//! transactions of other chains, are not this rollup's.

#[path = "../../rpc/tests/common/mod.rs"]
mod txs;

use bytes::Bytes;
use weft_l1_poster::forced::ForcedTx;
use weft_l1_poster::OrderedSubDag;
use weft_rollup::derive::{committee_input, Derivation};

const CHAIN: u64 = 1001;
const W: u64 = 3;

fn tx(chain: u64, account: u64) -> Bytes {
    Bytes::from(txs::transfer(chain, account, 0))
}

fn forced(index: u64, l1_block: u64, transaction: Bytes) -> ForcedTx {
    ForcedTx {
        index,
        l1_block,
        sender: Default::default(),
        transaction,
    }
}

fn sub_dag(index: u64, transactions: Vec<Bytes>) -> OrderedSubDag {
    OrderedSubDag {
        index,
        timestamp: 1_000 * index,
        transactions,
    }
}

#[test]
fn an_unordered_forced_transaction_is_placed_after_the_window_and_only_once() {
    let mut d = Derivation::new(CHAIN, W);
    let (f, g) = (tx(CHAIN, 1), tx(CHAIN, 2));
    let (mine, theirs) = (tx(CHAIN, 3), tx(7, 4));
    d.forced(&forced(0, 10, f.clone()));
    d.forced(&forced(1, 10, tx(7, 5)));
    d.forced(&forced(2, 10, Bytes::from_static(b"not a transaction")));
    assert_eq!(d.pending(), 1, "only this chain's forced transactions wait");

    // Derived at blocks 12 and 13 = 10 + W: still within the window.
    let first = d.sub_dag(&sub_dag(0, vec![mine.clone(), theirs.clone()]), 12);
    assert_eq!(first.transactions, vec![mine.clone()]);
    assert_eq!((first.index, first.timestamp_ms), (0, 0));
    assert!(d.sub_dag(&sub_dag(1, vec![]), 13).transactions.is_empty());
    // The first sub-DAG derived after the window carries it, first.
    d.forced(&forced(3, 14, g.clone()));
    let due = d.sub_dag(&sub_dag(2, vec![mine.clone()]), 14);
    assert_eq!(due.transactions, vec![f.clone(), mine.clone()]);
    assert_eq!(d.forced_by_derivation(), 1);

    // The committee orders g within its window: it is not placed a second time, and f, had
    // the committee ordered it late, would be its own duplicate for the nonce rule to skip.
    let ordered = d.sub_dag(&sub_dag(3, vec![g.clone(), f.clone()]), 15);
    assert_eq!(ordered.transactions, vec![g, f]);
    assert_eq!(d.pending(), 0);
    assert!(d.sub_dag(&sub_dag(4, vec![]), 40).transactions.is_empty());
    assert_eq!(d.forced_by_derivation(), 1);
}

#[test]
fn the_committee_input_keeps_only_this_chains_transactions_in_order() {
    let a = tx(CHAIN, 1);
    let b = tx(CHAIN, 2);
    let input = committee_input(
        &sub_dag(
            5,
            vec![a.clone(), tx(7, 1), Bytes::from_static(b"raw"), b.clone()],
        ),
        CHAIN,
    );
    assert_eq!(input.transactions, vec![a, b]);
    assert_eq!((input.index, input.timestamp_ms), (5, 5_000));
}
