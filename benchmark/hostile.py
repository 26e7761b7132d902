#!/usr/bin/env python3
"""The adversarial runs: a local 4-authority benchmark under honest load, with one attack on
authority 0 (the victim) during the whole load, and what it costs.

    python3 benchmark/hostile.py --bin-dir target/release --rate 20000 --duration 30 \\
        --attack unsolicited-batches [--param KEY=JSON ...] [--runs N]

Attacks:
- `none`: the same run without an attack (the baseline);
- `unsolicited-batches`, `duplicate-batch-requests`, `certificate-requests`,
  `far-future-headers`: a Byzantine committee member, `weft-hostile` with authority 3's real
  keys, beside authority 3's own node (which keeps taking part);
- `strangers`: `benchmark/strangers.py` holding every raw socket it can on every port;
- `trickle`: the same, but each socket on a client port sends one valid transaction every 10 s
  (the connections look alive).

It samples the victim's resident memory and its store's disk use every second, and prints one
line per run: end-to-end TPS and latency (the benchmark's summary), the victim's peak RSS and
largest store, and the attacker's own counters. `--param` is passed to the benchmark (set a
defence's parameter out of reach to measure the node without it)."""

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
WORKDIR = os.path.join(REPO, '.weft', 'bench', 'hostile')
RUST_ATTACKS = ['unsolicited-batches', 'duplicate-batch-requests', 'certificate-requests',
                'far-future-headers']
ATTACKS = ['none', 'strangers', 'trickle'] + RUST_ATTACKS
BYZANTINE_KEYS = 3  # keys-3.json: the Byzantine authority


def wait_for(path, timeout=120):
    end = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > end:
            raise SystemExit(f'hostile: {path} did not appear')
        time.sleep(0.2)


def node_pid(store):
    """The pid of the `weft node run` process using `store`."""
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        if b'node' in argv and store.encode() in argv:
            return int(pid)
    return None


def rss_mib(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def disk_mib(path):
    """Bytes the files under `path` take on disk (allocated blocks), in MiB."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total / (1 << 20)


def attacker(a, workdir, bin_dir, duration):
    if a.attack in RUST_ATTACKS:
        argv = [os.path.join(bin_dir, 'weft-hostile'), '--attack', a.attack,
                '--keys', os.path.join(workdir, f'keys-{BYZANTINE_KEYS}.json'),
                '--committee', os.path.join(workdir, 'committee.json'),
                '--parameters', os.path.join(workdir, 'parameters.json'),
                '--victim-keys', os.path.join(workdir, 'keys-0.json'),
                '--duration', str(duration)]
    else:
        argv = [sys.executable, os.path.join(HERE, 'strangers.py'),
                '--committee', os.path.join(workdir, 'committee.json'),
                '--sources', str(a.sources), '--per-port', str(a.per_port),
                '--duration', str(duration)]
        if a.attack == 'trickle':
            argv += ['--trickle', '10']
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def one_run(a):
    bin_dir = os.path.abspath(a.bin_dir)
    workdir = os.path.abspath(a.workdir)
    committee = os.path.join(workdir, 'committee.json')
    if os.path.exists(committee):
        os.remove(committee)
    bench = [sys.executable, os.path.join(HERE, 'run.py'), 'local', '--no-l1', '--bin-dir',
             bin_dir, '--workdir', workdir, '--rate', str(a.rate), '--duration',
             str(a.duration)] + [f'--param={p}' for p in a.param]
    run = subprocess.Popen(bench, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(committee)
    store = os.path.join(workdir, 'store-0')
    pid = None
    while pid is None and run.poll() is None:
        pid = node_pid(store)
        time.sleep(0.2)
    hostile = attacker(a, workdir, bin_dir, a.duration) if a.attack != 'none' else None
    peak_rss, peak_disk, samples = 0.0, 0.0, []
    while run.poll() is None:
        rss, disk = rss_mib(pid), disk_mib(store)
        peak_rss, peak_disk = max(peak_rss, rss), max(peak_disk, disk)
        samples.append((round(rss), round(disk)))
        time.sleep(1)
    out = run.stdout.read()
    said = ''
    if hostile:
        hostile.terminate()
        lines = hostile.communicate(timeout=30)[0].strip().splitlines()
        counters = [line for line in lines if line.startswith('weft-hostile')]
        # The attacker's last counters; all it said if it died without any.
        said = counters[-1] if counters else '\n'.join(lines[-30:])
    if run.returncode != 0:
        raise SystemExit(f'hostile: the benchmark failed:\n{out[-3000:]}')
    tps = re.search(r'End-to-end TPS: ([\d,]+)', out)
    latency = re.search(r'End-to-end latency: ([^\n]*)', out)
    return {'attack': a.attack, 'tps': int(tps.group(1).replace(',', '')) if tps else 0,
            'latency': latency.group(1).strip() if latency else '?',
            'peak_rss_mib': round(peak_rss), 'peak_disk_mib': round(peak_disk),
            'attacker': said, 'samples': samples, 'params': a.param}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--attack', choices=ATTACKS, required=True)
    p.add_argument('--bin-dir', required=True, help='holds weft, weft-client, weft-hostile')
    p.add_argument('--rate', type=int, default=20_000)
    p.add_argument('--duration', type=int, default=30)
    p.add_argument('--runs', type=int, default=1)
    p.add_argument('--param', action='append', default=[], metavar='KEY=JSON')
    p.add_argument('--sources', type=int, default=18, help='strangers: loopback sources')
    p.add_argument('--per-port', type=int, default=18, help='strangers: sockets per port')
    p.add_argument('--workdir', default=WORKDIR)
    p.add_argument('--json', action='store_true', help='also print each run as JSON')
    a = p.parse_args()
    for _ in range(a.runs):
        r = one_run(a)
        print(f"hostile: {r['attack']}{' ' + ' '.join(a.param) if a.param else ''}: "
              f"{r['tps']:,} tx/s end to end, latency {r['latency']}; victim peak RSS "
              f"{r['peak_rss_mib']} MiB, store {r['peak_disk_mib']} MiB at most; "
              f"attacker: {r['attacker'] or '-'}", flush=True)
        if a.json:
            print(json.dumps(r), flush=True)


if __name__ == '__main__':
    main()
