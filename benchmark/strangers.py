#!/usr/bin/env python3
"""Strangers against a running local cluster: from loopback sources 127.0.0.2 on, hold as many
raw TCP sockets as the nodes allow on every primary, worker and client port of the committee,
sending nothing, and open another whenever a node closes one. Run it beside
`benchmark/run.py local` to measure the honest throughput under the attack:

    python3 benchmark/run.py local --rate 20000 --duration 30 --no-l1 &
    python3 benchmark/strangers.py --sources 18 --per-port 18 --duration 40

It waits for the run's committee file, then prints how many sockets it held and how many the
nodes closed, every few seconds."""

import argparse
import asyncio
import json
import os
import socket
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_COMMITTEE = os.path.join(HERE, '..', '.weft', 'bench', 'local', 'committee.json')


def addresses(committee):
    """(host, port, whether it is a client transaction port) of every port of the committee."""
    out = []
    for a in committee['authorities']:
        out.append((a['primary_address'], False))
        out.extend((addr, False) for addr in a['worker_addresses'].values())
        out.extend((addr, True) for addr in a['transaction_addresses'].values())
    return [(addr.rsplit(':', 1)[0], int(addr.rsplit(':', 1)[1]), tx) for addr, tx in out]


def transaction():
    """One length-framed 64-byte transaction (a valid one for the raw client port)."""
    body = b'\x01' + os.urandom(63)
    return len(body).to_bytes(4, 'big') + body


async def hold(source, target, stats, stop, trickle=None):
    """One socket slot: connect from `source`, wait until the node closes it, repeat. With
    `trickle`, a socket on a client port sends one transaction every `trickle` seconds."""
    loop = asyncio.get_running_loop()
    host, port, client_port = target
    target = (host, port)
    trickle = trickle if client_port else None
    while time.monotonic() < stop:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((source, 0))
            await asyncio.wait_for(loop.sock_connect(sock, target), 2)
            stats['held'] += 1
            try:
                while time.monotonic() < stop:
                    if trickle:
                        await loop.sock_sendall(sock, transaction())
                        stats['sent'] += 1
                    wait = max(0.1, stop - time.monotonic())
                    if trickle:
                        wait = min(wait, trickle)
                    try:
                        data = await asyncio.wait_for(loop.sock_recv(sock, 64), wait)
                    except asyncio.TimeoutError:
                        continue
                    if not data:
                        break
            except OSError:
                pass
            stats['held'] -= 1
            stats['closed'] += 1
        except (OSError, asyncio.TimeoutError):
            stats['failed'] += 1
        finally:
            sock.close()
        # Bounds the attacker's own CPU on the machine the cluster shares.
        await asyncio.sleep(0.05)


async def main(args):
    deadline = time.monotonic() + 120
    # A file older than this script is an earlier run's: wait for the new run's.
    while not (os.path.exists(args.committee)
               and os.path.getmtime(args.committee) >= args.started - 5):
        if time.monotonic() > deadline:
            raise SystemExit(f'{args.committee} did not appear')
        await asyncio.sleep(0.2)
    await asyncio.sleep(args.delay)
    with open(args.committee) as f:
        targets = addresses(json.load(f))
    stop = time.monotonic() + args.duration
    stats = {'held': 0, 'closed': 0, 'failed': 0, 'sent': 0}
    tasks = [asyncio.create_task(hold(f'127.0.0.{2 + s}', t, stats, stop, args.trickle))
             for s in range(args.sources) for t in targets for _ in range(args.per_port)]
    print(f'strangers: {len(tasks)} socket slots on {len(targets)} ports from '
          f'{args.sources} sources', flush=True)
    while time.monotonic() < stop:
        await asyncio.sleep(5)
        print(f'strangers: held {stats["held"]}, closed by the nodes {stats["closed"]}, '
              f'failed {stats["failed"]}, transactions sent {stats["sent"]}', flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--committee', default=DEFAULT_COMMITTEE)
    p.add_argument('--sources', type=int, default=18)
    p.add_argument('--per-port', type=int, default=18)
    p.add_argument('--duration', type=float, default=40)
    p.add_argument('--delay', type=float, default=3,
                   help='seconds after the committee file appears before the attack starts')
    p.add_argument('--trickle', type=float, default=None, metavar='SECONDS',
                   help='sockets on client ports send one valid transaction this often, so '
                        'that they never look idle')
    a = p.parse_args()
    a.started = time.time()
    asyncio.run(main(a))
