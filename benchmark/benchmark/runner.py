"""One benchmark run on processes this machine starts: generate the committee, start the nodes
and clients, report progress, let the pipeline drain, stop the nodes, parse the logs.

Where the processes run is the launcher's business: `LocalLauncher` starts them directly,
`wan.NetnsLauncher` inside one network namespace per authority.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

from .config import BenchError
from .logs import LogParser, summary
from .progress import Progress

# Seconds between progress lines.
PROGRESS_EVERY = 5
# Clients wait for every node's port; a debug build on a loaded box can take this long to open.
STARTUP_GRACE = 120
# After the clients stop, how long to wait for every sample to be committed by every node, and
# how long without any newly committed sample before giving up on the rest (a lost batch
# would otherwise cost the whole timeout).
DRAIN_TIMEOUT = 30
DRAIN_IDLE = 10
# How long a node may take to flush its store after SIGTERM before it is killed.
STOP_TIMEOUT = 30
POLL = 0.25


class LocalLauncher:
    """Runs every process directly on this machine."""

    def host(self, _slot):
        return '127.0.0.1'

    def prepare(self, workdir, committee, order):
        """Called once the committee exists, before any process starts."""

    def committee_path(self, _slot, workdir):
        return os.path.join(workdir, 'committee.json')

    def close(self):
        """Called at the end of the run, failure included."""

    def popen(self, _slot, argv, log_path):
        log = open(log_path, 'wb')
        try:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=bench_env())
        finally:
            log.close()


def bench_env():
    env = dict(os.environ)
    env.setdefault('RUST_LOG', 'info')
    env['NO_COLOR'] = '1'
    return env


def free_base_port(count, start=20000, end=60000):
    """A base port such that `count` consecutive loopback ports are free now (another run may
    take them later; the committee file names them, so a clash shows as a bind error)."""
    seed = (os.getpid() * 7919 + int(time.time())) % (end - start - count)
    base = start + seed
    for _ in range(200):
        if all(port_free(p) for p in range(base, base + count)):
            return base
        base = start + (base - start + count * 3) % (end - start - count)
    raise BenchError(f'no {count} consecutive free ports')


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(('127.0.0.1', port))
            return True
        except OSError:
            return False


# The chain id of the rpc ingress's load.
CHAIN_ID = 1337
# Accounts signing each rpc client's load.
RPC_ACCOUNTS = 1000


def rpc_parameters(bench):
    """The nodes' `rpc` section for a run through the JSON-RPC ingress: the load is one
    relayer-like client per authority, so the per-connection limits are lifted; what is
    measured is the ingress's cost, not its policing."""
    return {'chain_ids': [CHAIN_ID], 'recover_senders': bench.recover_senders,
            'rate_limit_per_connection': 1_000_000, 'max_connections': 4096}


def generate(weft, workdir, bench, node_params, host_of, base_port=None):
    """Committee, keys and parameters under `workdir`. Returns (parameters, committee, order):
    `order[i]` is the committee index of the authority whose keys are `keys-<i>.json`.
    `host_of(i)` is the IP the authority with key file i listens on; ports start at
    `base_port`, or at a free loopback range when not given. The committee's ports are
    followed by one JSON-RPC port per authority (`rpc_address`), used when the run goes
    through that ingress."""
    n, w = bench.nodes, bench.workers
    base = base_port or free_base_port(n * (2 + 2 * w))
    run([weft, 'committee', 'new', '--authorities', str(n), '--workers', str(w),
         '--base-port', str(base), '--out-dir', workdir])
    params_path = os.path.join(workdir, 'parameters.json')
    with open(params_path) as f:
        params = json.load(f)
    params.update(node_params)
    if bench.ingress == 'rpc':
        params['rpc'] = rpc_parameters(bench)
    with open(params_path, 'w') as f:
        json.dump(params, f, indent=2)
    committee_path = os.path.join(workdir, 'committee.json')
    with open(committee_path) as f:
        committee = json.load(f)
    index = {a['protocol_key']: k for k, a in enumerate(committee['authorities'])}
    order = []
    for i in range(n):
        with open(os.path.join(workdir, f'keys-{i}.json')) as f:
            order.append(index[json.load(f)['protocol_public_key']])
    for i, k in enumerate(order):
        a = committee['authorities'][k]
        host = host_of(i)
        a['primary_address'] = rehost(a['primary_address'], host)
        for field in ('worker_addresses', 'transaction_addresses'):
            a[field] = {wid: rehost(addr, host) for wid, addr in a[field].items()}
    with open(committee_path, 'w') as f:
        json.dump(committee, f, indent=2)
    return params, committee, order


def metrics_address(committee, host, i, nodes):
    """The metrics address of key file i: past the JSON-RPC ones."""
    return rpc_address(committee, host, nodes + i)


class Scraper(threading.Thread):
    """GETs every node's /metrics every `interval` seconds, as a Prometheus server would."""

    def __init__(self, addresses, interval):
        super().__init__(daemon=True)
        self.addresses, self.interval = addresses, interval
        self.scrapes = self.failures = self.bytes = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(self.interval):
            for a in self.addresses:
                try:
                    with urllib.request.urlopen(f'http://{a}/metrics', timeout=5) as r:
                        self.bytes += len(r.read())
                    self.scrapes += 1
                except OSError:
                    self.failures += 1


def rpc_address(committee, host, i):
    """The JSON-RPC address of key file i: past every port the committee uses."""
    last = max(int(addr.rsplit(':', 1)[1]) for a in committee['authorities']
               for addr in [a['primary_address'], *a['worker_addresses'].values(),
                            *a['transaction_addresses'].values()])
    return f'{host}:{last + 1 + i}'


def rehost(address, host):
    return f'{host}:{address.rsplit(":", 1)[1]}'


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f'{" ".join(map(str, argv))} failed: {r.stderr.strip()}')
    return r.stdout


def tail(path, n=8):
    """The last `n` lines of a log, led by its error lines: a process that fails prints its
    error first and a backtrace after it, so the last lines alone do not say why."""
    try:
        with open(path, 'rb') as f:
            lines = f.readlines()
    except OSError:
        return ''
    last = lines[-n:]
    errors = [l for l in lines[:-n] if l.startswith(b'Error:') or b' ERROR ' in l][-5:]
    return b''.join(errors + ([b'...\n'] if errors else []) + last).decode('utf-8', 'replace')


class Cluster:
    """The processes of one run; `stop()` ends every one of them, always."""

    def __init__(self, launcher):
        self.launcher = launcher
        self.nodes = []    # (slot, Popen, log path)
        self.clients = []  # (slot, Popen, log path)

    def start_node(self, slot, argv, log):
        self.nodes.append((slot, self.launcher.popen(slot, argv, log), log))

    def start_client(self, slot, argv, log):
        self.clients.append((slot, self.launcher.popen(slot, argv, log), log))

    def usage(self):
        """Per node: peak resident memory (MiB) and CPU seconds so far, from /proc (Linux)."""
        out = []
        for _, p, _ in self.nodes:
            try:
                with open(f'/proc/{p.pid}/status') as f:
                    hwm = next(int(x.split()[1]) for x in f if x.startswith('VmHWM:'))
                with open(f'/proc/{p.pid}/stat') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
                out.append({'peak_rss_mib': hwm / 1024, 'cpu_seconds': cpu})
            except (OSError, StopIteration, IndexError, ValueError):
                out.append(None)
        return out

    def check_nodes(self):
        for slot, p, log in self.nodes:
            if p.poll() is not None:
                raise BenchError(f'node {slot} exited with {p.returncode}:\n{tail(log)}')

    def stop(self):
        for _, p, _ in self.clients + self.nodes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + STOP_TIMEOUT
        for _, p, _ in self.clients + self.nodes:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def run_benchmark(bench, node_params, weft, client, workdir, launcher, mode, extra=None,
                  echo=print, l1=None):
    """Runs one benchmark point and returns (config, results, summary text). With `l1` (an
    `l1.L1`), the authorities post to its inbox, their metrics are sampled for the L1 figures
    and the inbox is verified at the end."""
    os.makedirs(os.path.join(workdir, 'logs'), exist_ok=True)
    params, committee, order = generate(weft, workdir, bench, node_params, launcher.host)
    alive = list(range(bench.nodes - bench.faults))
    if bench.ingress == 'rpc':
        # One client per authority, on its JSON-RPC ingress (which spreads over its workers).
        targets = [[rpc_address(committee, launcher.host(i), i)] for i in alive]
    else:
        targets = [list(committee['authorities'][order[i]]['transaction_addresses'].values())
                   for i in alive]
    tx_addrs = [addr for t in targets for addr in t]
    per_client = max(1, bench.rate // len(tx_addrs))
    node_logs = [os.path.join(workdir, 'logs', f'node-{i}.log') for i in alive]
    client_logs = []
    cluster = Cluster(launcher)
    l1_results = None
    try:
        launcher.prepare(workdir, committee, order)
        if l1:
            l1.start(os.path.join(workdir, 'committee.json'))
        for i in alive:
            rpc = (['--rpc-address', rpc_address(committee, launcher.host(i), i)]
                   if bench.ingress == 'rpc' else [])
            if bench.scrape_ms or l1:
                rpc += ['--metrics-address',
                        metrics_address(committee, launcher.host(i), i, bench.nodes)]
            if l1:
                rpc += l1.node_args(i)
            cluster.start_node(i, [weft, 'node', 'run',
                                   '--keys', os.path.join(workdir, f'keys-{i}.json'),
                                   '--committee', launcher.committee_path(i, workdir),
                                   '--parameters', os.path.join(workdir, 'parameters.json'),
                                   '--store', os.path.join(workdir, f'store-{i}'),
                                   '--report-every', '2'] + rpc, node_logs[i])
        client_id = 0
        # The rpc clients sign first, each at its own speed; they start sending together.
        ingress = (['--ingress', 'rpc', '--chain-id', str(CHAIN_ID),
                    '--accounts', str(RPC_ACCOUNTS),
                    '--ready-dir', os.path.join(workdir, 'ready'),
                    '--ready-count', str(len(tx_addrs))] if bench.ingress == 'rpc' else [])
        for i, addrs in zip(alive, targets):
            for addr in addrs:
                log = os.path.join(workdir, 'logs', f'client-{client_id}.log')
                client_logs.append(log)
                cluster.start_client(i, [client, '--target', addr, '--size', str(bench.tx_size),
                                         '--rate', str(per_client),
                                         '--duration', str(bench.duration),
                                         '--nodes', ','.join(tx_addrs),
                                         '--sample-share', str(bench.sample_share),
                                         '--client-id', str(client_id)] + ingress, log)
                client_id += 1
        echo(f'{mode}: {bench.nodes} authorities x {bench.workers} workers, {bench.faults} '
             f'crashed, {bench.rate:,} tx/s of {bench.tx_size} B for {bench.duration} s '
             f'through the {bench.ingress} ingress (logs in {workdir}/logs)')
        if l1:
            echo(f'{mode}: L1 anvil at {l1.rpc}, inbox {l1.inbox}')
            l1.start_sampling([metrics_address(committee, launcher.host(i), i, bench.nodes)
                               for i in alive])
        progress = Progress(node_logs, client_logs)
        extra_progress = (lambda: ', ' + l1.progress()) if l1 else (lambda: '')
        scraper = None
        if bench.scrape_ms:
            scraper = Scraper([metrics_address(committee, launcher.host(i), i, bench.nodes)
                               for i in alive], bench.scrape_ms / 1000)
            scraper.start()
        began = time.time()
        next_line = began + PROGRESS_EVERY
        # rpc clients sign their whole load first (~25 us a transaction per core).
        signing = bench.rate * bench.duration * 40e-6 if bench.ingress == 'rpc' else 0
        deadline = began + bench.duration + STARTUP_GRACE + signing
        while any(p.poll() is None for _, p, _ in cluster.clients):
            cluster.check_nodes()
            if time.time() > deadline:
                raise BenchError('clients did not finish in time')
            if time.time() >= next_line:
                echo(progress.line(time.time() - began) + extra_progress())
                next_line += PROGRESS_EVERY
            time.sleep(POLL)
        load_end = time.time()
        for slot, p, log in cluster.clients:
            if p.returncode != 0:
                raise BenchError(f'client of node {slot} failed ({p.returncode}):\n{tail(log)}')
        drain_end = time.time() + DRAIN_TIMEOUT
        pending, idle_since = progress.pending_samples(), time.time()
        while pending > 0 and time.time() < min(drain_end, idle_since + DRAIN_IDLE):
            cluster.check_nodes()
            time.sleep(POLL)
            now_pending = progress.pending_samples()
            if now_pending < pending:
                idle_since = time.time()
            pending = now_pending
        echo(progress.line(time.time() - began) + extra_progress() + ' (clients done)')
        usage = cluster.usage()
        wall = time.time() - began
        if scraper:
            scraper.done.set()
            scraper.join()
        if l1:
            drained = l1.drain(cluster.check_nodes, load_end)
            echo(f'[{time.time() - began:4.0f}s] L1: posters drained for {drained:.0f} s')
            l1_results = l1.results(drained)
    finally:
        cluster.stop()
        launcher.close()
        if l1:
            l1.close()
        # The stores hold every batch of the run (GBs at high rates); the logs are what counts.
        for i in range(bench.nodes):
            shutil.rmtree(os.path.join(workdir, f'store-{i}'), ignore_errors=True)
    for i, log in zip(alive, node_logs):
        if 'store flushed' not in tail(log, 3):
            echo(f'warning: node {i} did not report a clean shutdown')
    texts = [read(p) for p in node_logs]
    results = LogParser([read(p) for p in client_logs], texts, bench.tx_size).results()
    for node, u in zip(results['per_node'], usage):
        if u:
            node.update(u, cpu_share=u['cpu_seconds'] / wall)
    config = {'mode': mode, 'nodes': bench.nodes, 'workers': bench.workers,
              'faults': bench.faults, 'rate': bench.rate, 'tx_size': bench.tx_size,
              'duration': bench.duration, 'ingress': bench.ingress,
              'scrape_ms': bench.scrape_ms,
              'parameters': params,
              'time': time.time()}
    config.update(extra or {})
    if scraper:
        results['scrapes'] = {'done': scraper.scrapes, 'failed': scraper.failures,
                              'bytes': scraper.bytes}
    config['l1'] = bool(l1)
    if l1_results:
        results['l1'] = l1_results
    return config, results, summary(config, results)


def read(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read()


def save(results_dir, config, results, text):
    """Appends the summary to `results/bench.txt` and the record to `results/results.jsonl`
    (what `plot` reads)."""
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, 'bench.txt'), 'a') as f:
        f.write(text)
    with open(os.path.join(results_dir, 'results.jsonl'), 'a') as f:
        f.write(json.dumps({'config': config, 'results': results}) + '\n')
