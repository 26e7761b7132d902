#!/usr/bin/env python3
"""A web3.py + eth-account client against a running weft committee's JSON-RPC ingress.

Signs `--count` EIP-1559 transfers over the given chain ids, sends each with
`send_raw_transaction` to one authority (round robin) under its chain's endpoint `/<chain_id>`,
checks that every returned hash equals the locally computed keccak of the raw envelope, then
polls `weft_getTransactionPosition` on every authority until each transaction is found there,
under its own chain id, at a position no other transaction holds. Writes `<hash> <chain_id>`
lines to `--out` for the caller to check the committed logs themselves.

Run by node/tests/rpc.rs; exits non-zero with a message on the first failure.
"""

import argparse
import concurrent.futures
import sys
import threading
import time

from eth_account import Account
from eth_utils import keccak
from web3 import Web3

RECIPIENT = "0x" + "42" * 20


def fail(message):
    print(f"web3_test: FAIL: {message}", flush=True)
    sys.exit(1)


def key(account):
    # Deterministic test keys: keccak of the account number.
    return keccak(b"weft-web3-test-" + account.to_bytes(4, "big"))


def sign_all(count, chain_ids, accounts):
    """count transfers; transaction i is on chain_ids[i % len] from account (i // len) % accounts."""
    signers = [Account.from_key(key(a)) for a in range(accounts)]
    nonces = {}
    signed = []
    for i in range(count):
        chain_id = chain_ids[i % len(chain_ids)]
        account = (i // len(chain_ids)) % accounts
        nonce = nonces.get((chain_id, account), 0)
        nonces[(chain_id, account)] = nonce + 1
        tx = {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "to": RECIPIENT,
            "value": 1 + i,
            "gas": 21000,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
        s = signers[account].sign_transaction(tx)
        raw = bytes(s.raw_transaction)
        if bytes(s.hash) != keccak(raw):
            fail(f"eth-account's hash of transaction {i} is not keccak(raw)")
        signed.append((chain_id, raw, "0x" + keccak(raw).hex()))
    return signed


class Clients:
    """One Web3 per (thread, endpoint, chain): HTTPProvider sessions are not shared."""

    def __init__(self):
        self.local = threading.local()

    def get(self, endpoint, chain_id):
        cache = getattr(self.local, "cache", None)
        if cache is None:
            cache = self.local.cache = {}
        url = f"{endpoint}/{chain_id}" if chain_id is not None else endpoint
        if url not in cache:
            cache[url] = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        return cache[url]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", required=True, help="comma-separated http://host:port")
    parser.add_argument("--chain-ids", required=True, help="comma-separated chain ids")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--deadline", type=float, default=300, help="seconds for the whole run")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    endpoints = args.endpoints.split(",")
    chain_ids = [int(c) for c in args.chain_ids.split(",")]
    deadline = time.monotonic() + args.deadline
    clients = Clients()

    for endpoint in endpoints:
        for chain_id in chain_ids:
            got = clients.get(endpoint, chain_id).eth.chain_id
            if got != chain_id:
                fail(f"{endpoint}/{chain_id}: eth_chainId is {got}")

    started = time.monotonic()
    signed = sign_all(args.count, chain_ids, args.accounts)
    print(f"web3_test: signed {len(signed)} transfers in {time.monotonic() - started:.1f} s",
          flush=True)

    def send(i):
        chain_id, raw, expected = signed[i]
        endpoint = endpoints[i % len(endpoints)]
        w3 = clients.get(endpoint, chain_id)
        got = "0x" + bytes(w3.eth.send_raw_transaction(raw)).hex()
        if got != expected:
            fail(f"transaction {i} via {endpoint}: hash {got}, expected {expected}")

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
        for future in concurrent.futures.as_completed(
                [pool.submit(send, i) for i in range(len(signed))]):
            future.result()
    elapsed = time.monotonic() - started
    print(f"web3_test: sent {len(signed)} in {elapsed:.1f} s "
          f"({len(signed) / elapsed:.0f} tx/s), every hash as computed locally", flush=True)

    # Every authority's committed log holds every transaction once, under its chain id.
    for endpoint in endpoints:
        missing = {i for i in range(len(signed))}
        positions = {}
        while missing:
            if time.monotonic() > deadline:
                fail(f"{endpoint}: {len(missing)} transactions not committed by the deadline")
            for i in sorted(missing):
                chain_id, _, hash_ = signed[i]
                w3 = clients.get(endpoint, chain_id)
                position = w3.provider.make_request("weft_getTransactionPosition", [hash_])
                if "error" in position:
                    fail(f"{endpoint}: weft_getTransactionPosition: {position['error']}")
                position = position["result"]
                if position is None:
                    continue
                if position["chainId"] != chain_id:
                    fail(f"{endpoint}: transaction {i} found under chain {position['chainId']}")
                where = (position["subDagIndex"], position["txIndex"])
                if where in positions:
                    fail(f"{endpoint}: transactions {positions[where]} and {i} both at {where}")
                positions[where] = i
                missing.discard(i)
            if missing:
                time.sleep(0.2)  # polling an external process, bounded by the deadline
        # The other chain's namespace does not show it.
        chain_id, _, hash_ = signed[0]
        other = [c for c in chain_ids if c != chain_id][0]
        hidden = clients.get(endpoint, other).provider.make_request(
            "weft_getTransactionPosition", [hash_])
        if hidden.get("result") is not None:
            fail(f"{endpoint}: chain {chain_id}'s transaction visible under /{other}")
        print(f"web3_test: {endpoint}: all {len(signed)} committed, each once", flush=True)

    with open(args.out, "w") as out:
        for chain_id, _, hash_ in signed:
            out.write(f"{hash_} {chain_id}\n")
    print("web3_test: OK", flush=True)


if __name__ == "__main__":
    main()
