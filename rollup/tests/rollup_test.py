#!/usr/bin/env python3
"""A rollup user with web3.py + eth-account: transfers sent through weft's JSON-RPC ingress,
receipts read from the rollup nodes' execution clients.

`genesis`: writes the L2 genesis (chain id, funded test accounts) every node of a chain starts
from, so that the key scheme lives in this file only.

`run`: signs `--count` EIP-1559 transfers over the chains given (transaction i on chain
i % chains, from one of `--accounts` accounts of that chain, to one of three recipients; with
as many accounts as transactions per chain, each account sends one, so that no two of them
depend on the order in which different authorities' batches commit),
sends each with `send_raw_transaction` to an authority (round robin, under `/<chain_id>`) from
32 threads, and checks:
- every returned hash is keccak of the raw transaction;
- every transaction's receipt is on its chain's rollup node (`--chains id=url`), successful;
- the rollup's order is the committed order: sorted by (block, index in block) the
  transactions are sorted by their (sub-DAG index, index in sub-DAG) from
  `weft_getTransactionPosition`, and each is in block `sub-DAG index + 1`;
- no block holds anything else, and every balance is what the transfers and their fees imply.
Writes a JSON summary to `--out`, with each transaction's wall-clock send time (just before
`send_raw_transaction`) and block, from which the caller measures the latency to the block. Exits non-zero with a message on the first failure.

Run by node/tests/rollup.rs.
"""

import argparse
import concurrent.futures
import json
import sys
import threading
import time

from eth_account import Account
from eth_utils import keccak
from web3 import Web3

INITIAL_BALANCE = 10**24
RECIPIENTS = ["0x" + f"{b:02x}" * 20 for b in (0x42, 0x43, 0x44)]
MAX_FEE = 100 * 10**9
TIP = 10**9


def fail(message):
    print(f"rollup_test: FAIL: {message}", flush=True)
    sys.exit(1)


def key(chain_id, account):
    return keccak(b"weft-rollup-test-" + chain_id.to_bytes(8, "big") + account.to_bytes(4, "big"))


def address(chain_id, account):
    return Account.from_key(key(chain_id, account)).address


def genesis(args):
    alloc = {
        address(args.chain_id, a): {"balance": hex(INITIAL_BALANCE)} for a in range(args.accounts)
    }
    forks = ["homestead", "eip150", "eip155", "eip158", "byzantium", "constantinople",
             "petersburg", "istanbul", "berlin", "london"]
    config = {"chainId": args.chain_id, **{f + "Block": 0 for f in forks},
              "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0,
              "terminalTotalDifficulty": 0, "terminalTotalDifficultyPassed": True}
    doc = {"config": config, "nonce": "0x0", "timestamp": "0x0", "extraData": "0x",
           "gasLimit": hex(30_000_000), "difficulty": "0x0", "mixHash": "0x" + "00" * 32,
           "coinbase": "0x" + "00" * 20, "baseFeePerGas": hex(10**9), "alloc": alloc}
    with open(args.out, "w") as f:
        json.dump(doc, f)


def sign_all(count, chain_ids, accounts):
    signers = {(c, a): Account.from_key(key(c, a)) for c in chain_ids for a in range(accounts)}
    nonces = {}
    signed = []
    for i in range(count):
        chain_id = chain_ids[i % len(chain_ids)]
        account = (i // len(chain_ids)) % accounts
        nonce = nonces.get((chain_id, account), 0)
        nonces[(chain_id, account)] = nonce + 1
        tx = {"type": 2, "chainId": chain_id, "nonce": nonce,
              "to": Web3.to_checksum_address(RECIPIENTS[i % len(RECIPIENTS)]),
              "value": 1 + i, "gas": 21000, "maxFeePerGas": MAX_FEE,
              "maxPriorityFeePerGas": TIP}
        s = signers[(chain_id, account)].sign_transaction(tx)
        raw = bytes(s.raw_transaction)
        if bytes(s.hash) != keccak(raw):
            fail(f"eth-account's hash of transaction {i} is not keccak(raw)")
        signed.append({"i": i, "chain": chain_id, "account": account, "raw": raw,
                       "hash": "0x" + keccak(raw).hex(), "value": 1 + i,
                       "from": signers[(chain_id, account)].address,
                       "to": RECIPIENTS[i % len(RECIPIENTS)]})
    return signed


class BlockWatcher(threading.Thread):
    """Follows a rollup node's blocks; notes when each transaction was first seen in one."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        self.seen = {}
        self.blocks = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self):
        next_block = 1
        while not self.stop.is_set():
            head = self.w3.eth.block_number
            if head < next_block:
                time.sleep(0.005)
                continue
            for n in range(next_block, head + 1):
                block = self.w3.eth.get_block(n)
                now = time.monotonic()
                hashes = ["0x" + bytes(h).hex() for h in block["transactions"]]
                with self.lock:
                    self.blocks[n] = hashes
                    for h in hashes:
                        self.seen.setdefault(h, now)
            next_block = head + 1


def run(args):
    endpoints = args.endpoints.split(",")
    chains = dict((int(c), url) for c, url in (p.split("=", 1) for p in args.chains.split(",")))
    chain_ids = sorted(chains)
    signed = sign_all(args.count, chain_ids, args.accounts)
    watchers = {c: BlockWatcher(url) for c, url in chains.items()}
    for w in watchers.values():
        w.start()

    local = threading.local()

    def ingress(i, chain_id):
        if not hasattr(local, "w3"):
            local.w3 = {}
        url = f"{endpoints[i % len(endpoints)]}/{chain_id}"
        if url not in local.w3:
            local.w3[url] = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        return local.w3[url]

    def send(tx):
        w3 = ingress(tx["i"], tx["chain"])
        tx["sent_at"] = time.time()
        returned = "0x" + bytes(w3.eth.send_raw_transaction(tx["raw"])).hex()
        if returned != tx["hash"]:
            fail(f"transaction {tx['i']}: ingress returned {returned}, expected {tx['hash']}")

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        for f in [pool.submit(send, tx) for tx in signed]:
            f.result()
    send_seconds = time.monotonic() - started
    print(f"rollup_test: sent {len(signed)} transactions in {send_seconds:.1f} s", flush=True)

    deadline = time.monotonic() + args.deadline
    while True:
        missing = [tx for tx in signed if tx["hash"] not in watchers[tx["chain"]].seen]
        if not missing:
            break
        if time.monotonic() > deadline:
            fail(f"{len(missing)} transactions never reached their rollup node, e.g. {missing[0]['hash']}")
        time.sleep(0.05)
    for w in watchers.values():
        w.stop.set()

    weft = Web3(Web3.HTTPProvider(endpoints[0], request_kwargs={"timeout": 30}))
    summary = {"chains": {}, "transactions": []}
    for chain_id in chain_ids:
        check_chain(chain_id, chains[chain_id], [t for t in signed if t["chain"] == chain_id],
                    weft, args.accounts, summary)
    with open(args.out, "w") as f:
        json.dump(summary, f)
    print("rollup_test: OK", flush=True)


def check_chain(chain_id, url, txs, weft, accounts, summary):
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    placed = []
    fees = {}
    for tx in txs:
        receipt = w3.eth.get_transaction_receipt(tx["hash"])
        if receipt["status"] != 1:
            fail(f"chain {chain_id}: transaction {tx['hash']} failed on the rollup")
        position = weft.provider.make_request("weft_getTransactionPosition", [tx["hash"]])
        position = position.get("result")
        if position is None or position["chainId"] != chain_id:
            fail(f"chain {chain_id}: weft has no position for {tx['hash']}: {position}")
        if receipt["blockNumber"] != position["subDagIndex"] + 1:
            fail(f"chain {chain_id}: {tx['hash']} of sub-DAG {position['subDagIndex']} is in "
                 f"block {receipt['blockNumber']}")
        placed.append(((receipt["blockNumber"], receipt["transactionIndex"]),
                       (position["subDagIndex"], position["txIndex"]), tx["hash"]))
        fees[tx["hash"]] = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        summary["transactions"].append([tx["hash"], chain_id, tx["sent_at"], receipt["blockNumber"]])
    by_block = [h for _, _, h in sorted(placed, key=lambda p: p[0])]
    by_position = [h for _, _, h in sorted(placed, key=lambda p: p[1])]
    if by_block != by_position:
        fail(f"chain {chain_id}: the rollup's order differs from the committed order")
    ours = set(t["hash"] for t in txs)
    blocks = sorted(set(p[0][0] for p in placed))
    for n in range(1, max(blocks) + 1):
        for h in w3.eth.get_block(n)["transactions"]:
            if "0x" + bytes(h).hex() not in ours:
                fail(f"chain {chain_id}: block {n} holds a transaction nobody sent")
    expected = {}
    for tx in txs:
        frm = tx["from"]
        expected[frm] = expected.get(frm, INITIAL_BALANCE) - tx["value"] - fees[tx["hash"]]
        to = Web3.to_checksum_address(tx["to"])
        expected[to] = expected.get(to, 0) + tx["value"]
    for who, balance in expected.items():
        got = w3.eth.get_balance(Web3.to_checksum_address(who))
        if got != balance:
            fail(f"chain {chain_id}: balance of {who} is {got}, the transfers imply {balance}")
    summary["chains"][str(chain_id)] = {"transactions": len(txs), "last_block": max(blocks)}
    print(f"rollup_test: chain {chain_id}: {len(txs)} receipts in blocks {min(blocks)}..{max(blocks)}, "
          f"committed order and {len(expected)} balances check out", flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("genesis")
    g.add_argument("--chain-id", type=int, required=True)
    g.add_argument("--accounts", type=int, required=True)
    g.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--endpoints", required=True, help="ingress URLs, comma-separated")
    r.add_argument("--chains", required=True, help="chain_id=rollup_node_url,...")
    r.add_argument("--count", type=int, default=2000)
    r.add_argument("--accounts", type=int, required=True)
    r.add_argument("--deadline", type=float, default=300)
    r.add_argument("--out", required=True)
    args = p.parse_args()
    genesis(args) if args.command == "genesis" else run(args)


if __name__ == "__main__":
    main()
