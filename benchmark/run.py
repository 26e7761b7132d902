#!/usr/bin/env python3
"""The benchmark without Fabric: `python3 benchmark/run.py {local,wan,remote,plot} ...`.
The fab tasks (`benchmark/fabfile.py`) call the same functions."""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmark.config import (NODE_PARAMETERS, RESULTS_DIR, BenchError,  # noqa: E402
                              BenchParameters, binaries)
from benchmark.l1 import DRAIN_TIMEOUT as L1_DRAIN  # noqa: E402
from benchmark.runner import save  # noqa: E402

# Exit status of a `wan` run that could not build namespaces here (tests read it as "skipped").
SKIPPED = 3


def bench_args(p):
    p.add_argument('--nodes', type=int, default=4)
    p.add_argument('--workers', type=int, default=1)
    p.add_argument('--faults', type=int, default=0)
    p.add_argument('--rate', type=int, nargs='+', default=[50_000],
                   help='input rates in tx/s; one run (or --runs) per rate')
    p.add_argument('--tx-size', type=int, default=512)
    p.add_argument('--duration', type=int, default=30)
    p.add_argument('--runs', type=int, default=1)
    p.add_argument('--sample-share', type=float, default=0.0)
    p.add_argument('--ingress', choices=['tcp', 'rpc'], default='tcp',
                   help='tcp: the workers\' raw ports; rpc: the Ethereum JSON-RPC ingress, '
                        'with transactions signed before the run')
    p.add_argument('--no-recover-senders', action='store_true',
                   help='rpc ingress: the nodes do not recover senders (rpc.recover_senders)')
    p.add_argument('--scrape-ms', type=int, default=0,
                   help='serve /metrics on every node and scrape each this often during the '
                        'run, as Prometheus would (0: off)')
    p.add_argument('--header-delay', type=int, default=NODE_PARAMETERS['max_header_delay_ms'])
    p.add_argument('--batch-delay', type=int, default=NODE_PARAMETERS['max_batch_delay_ms'])
    p.add_argument('--batch-size', type=int, default=NODE_PARAMETERS['batch_size'])
    p.add_argument('--no-attestations', action='store_true',
                   help='the nodes do not sign sub-DAGs (parameter attestations: false), to '
                        'measure what attestations cost')
    p.add_argument('--param', action='append', default=[], metavar='KEY=JSON',
                   help='set a node parameter (a top-level key of parameters.json) to a JSON '
                        'value, e.g. --param max_unannounced_bytes_per_peer=1099511627776')
    p.add_argument('--profile', choices=['release', 'dev'], default='release')
    p.add_argument('--no-build', action='store_true', help='use the binaries already built')
    p.add_argument('--bin-dir', default=None,
                   help='directory holding weft and weft-client (implies --no-build)')
    p.add_argument('--results', default=RESULTS_DIR, help='directory of the results files')
    p.add_argument('--workdir', default=None)


def points(a):
    for rate in a.rate:
        for _ in range(a.runs):
            yield BenchParameters(a.nodes, a.workers, a.faults, rate, a.tx_size, a.duration,
                                  a.sample_share, a.ingress,
                                  not a.no_recover_senders, a.scrape_ms).validate()


def node_params(a):
    params = dict(NODE_PARAMETERS, max_header_delay_ms=a.header_delay,
                  max_batch_delay_ms=a.batch_delay, batch_size=a.batch_size,
                  attestations=not a.no_attestations)
    for setting in a.param:
        key, sep, value = setting.partition('=')
        if not sep or not key:
            raise BenchError(f'--param {setting}: expected KEY=JSON')
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError as e:
            raise BenchError(f'--param {setting}: the value is not JSON ({e})')
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest='task', required=True)
    local = sub.add_parser('local', help='everything on this machine')
    bench_args(local)
    local.add_argument('--no-l1', action='store_true',
                       help='no L1: by default a real anvil runs, the inbox is deployed for '
                            'the committee, every authority posts to it, and the summary adds '
                            'the L1 lag, bytes and gas per transaction and `weft l1 verify`\'s '
                            'verdict')
    local.add_argument('--l1-takeover-blocks', type=int, default=10,
                       help='L1 blocks (1 s each) a batch\'s designated poster has before the '
                            'next authority posts it')
    local.add_argument('--l1-drain', type=int, default=L1_DRAIN,
                       help='after the load, at most this many seconds for the posters to bring '
                            'the committed transactions to L1 (less once they are all there, or '
                            'nothing more is posted)')
    wan = sub.add_parser('wan', help='one network namespace per authority, tc netem delays')
    bench_args(wan)
    wan.add_argument('--delay', type=int, default=None,
                     help='uniform one-way delay in ms (default: the 5-region matrix)')
    wan.add_argument('--jitter', type=int, default=0)
    wan.add_argument('--loss', type=float, default=0.0)
    wan.add_argument('--emulator', choices=['auto', 'netem', 'proxy'], default='auto',
                     help='tc netem, or the userspace delay relay where the kernel lacks netem')
    remote = sub.add_parser('remote', help='SSH hosts from a settings file')
    bench_args(remote)
    remote.add_argument('--settings', default=os.path.join(os.path.dirname(__file__),
                                                           'remote.json'))
    plot = sub.add_parser('plot', help='PNG figures from the results')
    plot.add_argument('--results', default=RESULTS_DIR)
    plot.add_argument('--mode', default=None, help='only local, wan or remote runs')
    table = sub.add_parser('table', help='medians per configuration and rate')
    table.add_argument('--results', default=RESULTS_DIR)
    table.add_argument('--mode', default=None)
    a = parser.parse_args(argv)
    try:
        return run(a)
    except BenchError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1


def run(a):
    if a.task == 'plot':
        from benchmark.plot import plot
        for path in plot(os.path.join(a.results, 'results.jsonl'), a.results, a.mode):
            print(f'wrote {path}')
        return 0
    if a.task == 'table':
        from benchmark.plot import table
        print(table(os.path.join(a.results, 'results.jsonl'), a.mode))
        return 0
    if a.task == 'wan':
        from benchmark.wan import probe
        why = probe(netem=False)
        if why:
            print(f'SKIPPED wan benchmark: {why}')
            return SKIPPED
        if a.emulator == 'auto':
            a.emulator = 'netem' if a.delay == 0 or probe(netem=True) is None else 'proxy'
        elif a.emulator == 'netem' and a.delay != 0 and (why := probe(netem=True)):
            print(f'SKIPPED wan benchmark: {why}')
            return SKIPPED
        print(f'wan: delays by {a.emulator}')
    if a.task == 'local' and not a.no_l1:
        if a.no_attestations:
            raise BenchError('the L1 inbox accepts only certified batches: --no-attestations '
                             'needs --no-l1')
        if a.l1_takeover_blocks < 1 or a.l1_drain < 0:
            raise BenchError('--l1-takeover-blocks must be positive, --l1-drain at least 0')
    if a.bin_dir:
        weft, client = (os.path.join(a.bin_dir, b) for b in ('weft', 'weft-client'))
    else:
        weft, client = binaries(a.profile, build=not a.no_build)
    for bench in points(a):
        if a.task == 'local':
            from benchmark.local import local
            out = local(bench, node_params(a), weft, client, a.workdir, l1=not a.no_l1,
                        takeover_blocks=a.l1_takeover_blocks, l1_drain=a.l1_drain)
        elif a.task == 'wan':
            from benchmark.wan import wan
            out = wan(bench, node_params(a), weft, client, delay_ms=a.delay,
                      jitter_ms=a.jitter, loss_pct=a.loss, workdir=a.workdir,
                      emulator=a.emulator)
        else:
            from benchmark.remote import load_settings, remote
            out = remote(bench, node_params(a), weft, client, load_settings(a.settings),
                         a.workdir)
        config, results, text = out
        print(text, end='')
        save(a.results, config, results, text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
