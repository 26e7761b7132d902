"""The L1 of a run: a real anvil, the inbox bound to the committee, one funded dev account per
authority for its poster, the L1 figures sampled from the nodes' /metrics during the run, and
`weft l1 verify`'s verdict at the end.

- L1 lag: sub-DAGs committed but not yet confirmed on L1, sampled every `SAMPLE_EVERY` s from
  the load's first committed transaction to its end: the executor's
  `weft_node_committed_log_index` (highest over the nodes) minus the posters'
  `weft_l1_confirmed_next_sub_dag` (highest over the nodes: every poster reads the same inbox).
  Its time equivalent is how long before a sample the first unconfirmed sub-DAG was committed
  (interpolated between the samples around its commit). The confirmed cursor moves with posted transactions, so the empty
  sub-DAGs committed once the load stops are not counted (the window ends with the load).
- bytes and gas per transaction: `weft_l1_bytes_posted_total` and `weft_l1_gas_used_total`
  summed over the authorities (each counts the batches it got included), over
  `weft_l1_transactions_posted_total` summed the same way, read after the posters drained.
"""

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request

from .config import BenchError

# Seconds between two L1 blocks (anvil's interval mining).
BLOCK_TIME = 1
# Seconds between two samples of the nodes' metrics.
SAMPLE_EVERY = 1.0
# How long anvil may take to listen on a loaded machine.
ANVIL_START_TIMEOUT = 60
# After the load: how long the posters get to bring every committed transaction to L1, and how
# long without a newly posted transaction before giving up on the rest (a designated poster
# that crashed is taken over after --l1-takeover-blocks blocks).
DRAIN_TIMEOUT = 30
DRAIN_IDLE_BLOCKS = 8
POLL = 0.5

ANVIL_PACKAGE = os.path.join('@foundry-rs', 'anvil-linux-amd64', 'bin', 'anvil')
LISTENING = re.compile(r'Listening on ([\d.]+):(\d+)')
METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)')
VERIFY_FIELDS = {'L1 block:': 'l1_block', 'batches:': 'batches', 'transactions:': 'transactions',
                 'sub-DAGs:': 'sub_dags', 'attested:': 'attested'}

COMMITTED_INDEX = 'weft_node_committed_log_index'
COMMITTED_TXS = 'weft_node_transactions_committed_total'
CONFIRMED_SUB_DAG = 'weft_l1_confirmed_next_sub_dag'
POSTER_COUNTERS = {'batches': 'weft_l1_batches_posted_total',
                   'transactions': 'weft_l1_transactions_posted_total',
                   'bytes': 'weft_l1_bytes_posted_total',
                   'gas': 'weft_l1_gas_used_total',
                   'rejections': 'weft_l1_rejections_total',
                   'errors': 'weft_l1_errors_total',
                   'resubmissions': 'weft_l1_resubmissions_total'}


def find_anvil():
    """anvil's path: $WEFT_ANVIL, PATH, then the npm package ops/setup installs."""
    if os.environ.get('WEFT_ANVIL'):
        path = os.environ['WEFT_ANVIL']
        if not os.access(path, os.X_OK):
            raise BenchError(f'WEFT_ANVIL={path} is not an executable (run ops/setup to '
                             'install anvil, or --no-l1 to run without the L1)')
        return path
    on_path = shutil.which('anvil')
    if on_path:
        return on_path
    roots = []
    try:
        r = subprocess.run(['npm', 'root', '-g'], capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and r.stdout.strip():
            roots.append(r.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    for root in roots + ['/usr/lib/node_modules', '/usr/local/lib/node_modules']:
        path = os.path.join(root, ANVIL_PACKAGE)
        if os.access(path, os.X_OK):
            return path
    raise BenchError('anvil not found: run ops/setup (it installs the npm package '
                     '@foundry-rs/anvil-linux-amd64), or set WEFT_ANVIL; --no-l1 runs without '
                     'the L1')


def parse_metrics(text):
    """Prometheus text exposition -> {metric name: value}, summed over label sets."""
    out = {}
    for raw in text.splitlines():
        if raw.startswith('#'):
            continue
        m = METRIC.match(raw)
        if not m:
            continue
        try:
            value = float(m.group(2))
        except ValueError:
            continue
        out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


def parse_verify(text):
    """`weft l1 verify`'s report -> its counts, `consistent` and the inconsistency if any;
    None where a line is missing (the verifier failed before reporting)."""
    out = {v: None for v in VERIFY_FIELDS.values()}
    out.update(consistent=None, inconsistency=None)
    for raw in text.splitlines():
        line = raw.strip()
        for prefix, key in VERIFY_FIELDS.items():
            if line.startswith(prefix):
                words = line[len(prefix):].split()
                if words and words[0].isdigit():
                    out[key] = int(words[0])
        if line.startswith('consistent:'):
            out['consistent'] = line[len('consistent:'):].split()[:1] == ['yes']
        elif line.startswith('INCONSISTENT'):
            out['consistent'] = False
            out['inconsistency'] = line
    return out


def lag_stats(samples, start=None, end=None):
    """The L1 lag over samples (time, committed index, first sub-DAG not confirmed on L1)
    taken in [start, end]: in sub-DAGs, and in seconds since the first unconfirmed sub-DAG
    was committed (as seen by the samples)."""
    window = [s for s in samples if (start is None or s[0] >= start) and
              (end is None or s[0] <= end)]
    subs, secs = [], []
    for t, committed, on_l1 in window:
        lag = max(0, committed - on_l1)
        subs.append(lag)
        if lag == 0:
            secs.append(0.0)
            continue
        secs.append(max(0.0, t - committed_at(samples, on_l1, t)))
    if not subs:
        return {'count': 0, 'mean': 0.0, 'p50': 0, 'max': 0, 'last': 0,
                'seconds': {'mean': 0.0, 'max': 0.0}}
    ordered = sorted(subs)
    return {'count': len(subs), 'mean': sum(subs) / len(subs),
            'p50': ordered[(len(ordered) - 1) // 2], 'max': ordered[-1], 'last': subs[-1],
            'seconds': {'mean': sum(secs) / len(secs), 'max': max(secs)}}


def committed_at(samples, index, default):
    """When sub-DAG `index` was committed, interpolated between the samples around it (the
    committed index grows roughly steadily between two samples)."""
    before = (None, 0)
    for t, committed, _ in samples:
        if committed > index:
            if before[0] is None:
                return t
            t0, c0 = before
            return t0 + (t - t0) * (index + 1 - c0) / (committed - c0)
        before = (t, committed)
    return default


def poster_totals(per_node):
    """The posters' counters summed over the authorities, and bytes and gas per transaction
    posted."""
    totals = {k: int(sum(m.get(name, 0) for m in per_node))
              for k, name in POSTER_COUNTERS.items()}
    txs = totals['transactions']
    totals['bytes_per_tx'] = totals['bytes'] / txs if txs else 0.0
    totals['gas_per_tx'] = totals['gas'] / txs if txs else 0.0
    return totals


def scrape(address, timeout=5):
    with urllib.request.urlopen(f'http://{address}/metrics', timeout=timeout) as r:
        return parse_metrics(r.read().decode('utf-8', 'replace'))


class Sampler(threading.Thread):
    """Reads every node's /metrics every `interval` seconds: the L1 lag samples and the last
    metrics of each node."""

    def __init__(self, addresses, interval=SAMPLE_EVERY):
        super().__init__(daemon=True)
        self.addresses, self.interval = addresses, interval
        self.lock = threading.Lock()
        self.samples = []                   # (time, committed index, confirmed sub-DAG)
        self.latest = [{} for _ in addresses]
        self.first_transaction = None       # time of the first sample with a committed tx
        self.done = threading.Event()

    def sample(self):
        now = time.time()
        got = []
        for i, a in enumerate(self.addresses):
            try:
                m = scrape(a)
            except OSError:
                continue
            got.append(m)
            with self.lock:
                self.latest[i] = m
        if not got:
            return
        committed = int(max(m.get(COMMITTED_INDEX, 0) for m in got))
        on_l1 = int(max(m.get(CONFIRMED_SUB_DAG, 0) for m in got))
        with self.lock:
            self.samples.append((now, committed, on_l1))
            if self.first_transaction is None and any(m.get(COMMITTED_TXS, 0) for m in got):
                self.first_transaction = now

    def run(self):
        while not self.done.wait(self.interval):
            self.sample()

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join()

    def snapshot(self):
        with self.lock:
            return list(self.samples), [dict(m) for m in self.latest]


class L1:
    """anvil, the inbox and the posters' keys for one run; `close()` stops anvil, always."""

    def __init__(self, weft, workdir, nodes, takeover_blocks=10, drain_timeout=DRAIN_TIMEOUT,
                 echo=print):
        self.weft, self.workdir, self.nodes = weft, workdir, nodes
        self.takeover_blocks, self.drain_timeout = takeover_blocks, drain_timeout
        self.binary = find_anvil()  # before anything runs, to fail early without it
        self.echo = echo
        self.anvil = None
        self.rpc = self.inbox = None
        self.keys = []
        self.sampler = None
        self.load_end = None

    def start(self, committee_path):
        """Starts anvil (one dev account to deploy, one per authority) and deploys the inbox
        bound to the committee file."""
        config_out = os.path.join(self.workdir, 'anvil.json')
        log_path = os.path.join(self.workdir, 'logs', 'anvil.log')
        log = open(log_path, 'wb')
        try:
            self.anvil = subprocess.Popen(
                [self.binary, '--host', '127.0.0.1', '--port', '0', '--hardfork', 'prague',
                 '--block-time', str(BLOCK_TIME), '--accounts', str(self.nodes + 1),
                 '--config-out', config_out],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise BenchError(f'could not start anvil ({e}); run ops/setup') from e
        finally:
            log.close()
        deadline = time.time() + ANVIL_START_TIMEOUT
        while True:
            if self.anvil.poll() is not None:
                raise BenchError(f'anvil exited with {self.anvil.returncode}:\n'
                                 f'{read_tail(log_path)}')
            m = LISTENING.search(read_tail(log_path, 1 << 20))
            keys = read_keys(config_out)
            if m and len(keys) > self.nodes:
                break
            if time.time() > deadline:
                raise BenchError(f'anvil did not listen within {ANVIL_START_TIMEOUT} s '
                                 f'(log: {log_path})')
            time.sleep(0.1)
        self.rpc = f'http://{m.group(1)}:{m.group(2)}'
        # Account 0 deploys; authority i (key file i) posts with account i + 1.
        self.keys = []
        for k, key in enumerate(keys[:self.nodes + 1]):
            path = os.path.join(self.workdir, f'l1-key-{k - 1}' if k else 'l1-deployer-key')
            with open(path, 'w') as f:
                f.write(key)
            os.chmod(path, 0o600)
            self.keys.append(path)
        r = subprocess.run([self.weft, 'l1', 'deploy', '--rpc', self.rpc, '--committee',
                            committee_path, '--key', self.keys[0]],
                           capture_output=True, text=True, timeout=120)
        address = r.stdout.strip()
        if r.returncode != 0 or not re.fullmatch(r'0x[0-9a-fA-F]{40}', address):
            raise BenchError(f'weft l1 deploy failed ({r.returncode}): {r.stderr.strip()}')
        self.inbox = address
        self.committee_path = committee_path

    def node_args(self, i):
        """`weft node run` options of the authority with key file i."""
        return ['--l1-rpc', self.rpc, '--l1-inbox', self.inbox, '--l1-key', self.keys[i + 1],
                '--l1-takeover-blocks', str(self.takeover_blocks)]

    def start_sampling(self, metrics_addresses):
        self.sampler = Sampler(metrics_addresses)
        self.sampler.start()

    def progress(self):
        """A few words for the progress line: the last L1 lag sample."""
        samples, _ = self.sampler.snapshot() if self.sampler else ([], [])
        if not samples:
            return 'L1 lag -'
        _, committed, on_l1 = samples[-1]
        return f'L1 lag {max(0, committed - on_l1)} sub-DAGs'

    def drain(self, check_nodes, load_end):
        """After the load (which ended at `load_end`): waits until the posters have posted
        every committed transaction, or nothing more got posted for a while, or the timeout.
        Returns the seconds taken."""
        self.load_end = load_end
        began = time.time()
        idle = DRAIN_IDLE_BLOCKS * BLOCK_TIME + self.takeover_blocks * BLOCK_TIME
        posted, idle_since = -1, time.time()
        while time.time() < min(began + self.drain_timeout, idle_since + idle):
            check_nodes()
            self.sampler.sample()
            _, latest = self.sampler.snapshot()
            committed = max((m.get(COMMITTED_TXS, 0) for m in latest), default=0)
            now_posted = poster_totals(latest)['transactions']
            if now_posted > posted:
                posted, idle_since = now_posted, time.time()
            if committed and now_posted >= committed:
                break
            time.sleep(POLL)
        return time.time() - began

    def results(self, drain_seconds):
        """The L1 part of the results: lag, the posters' totals, and the verifier's verdict
        (run once, the nodes still up)."""
        self.sampler.stop()
        samples, latest = self.sampler.snapshot()
        r = subprocess.run([self.weft, 'l1', 'verify', '--rpc', self.rpc, '--inbox', self.inbox,
                            '--committee', self.committee_path],
                           capture_output=True, text=True, timeout=300)
        verify = parse_verify(r.stdout)
        verify['exit'] = r.returncode
        if verify['consistent'] is None:
            verify['error'] = (r.stderr.strip() or r.stdout.strip())[-2000:]
        committed = int(max((m.get(COMMITTED_TXS, 0) for m in latest), default=0))
        return {
            'rpc': self.rpc, 'inbox': self.inbox, 'block_time': BLOCK_TIME,
            'takeover_blocks': self.takeover_blocks,
            'lag': lag_stats(samples, self.sampler.first_transaction, self.load_end),
            'posters': poster_totals(latest),
            'committed_transactions': committed,
            'drain_seconds': drain_seconds,
            'verify': verify,
        }

    def close(self):
        if self.sampler:
            self.sampler.done.set()
        if self.anvil and self.anvil.poll() is None:
            self.anvil.terminate()
            try:
                self.anvil.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.anvil.kill()
                self.anvil.wait()


def read_keys(path):
    """The private keys in anvil's --config-out file, once it is written."""
    try:
        with open(path) as f:
            return list(json.load(f).get('private_keys', []))
    except (OSError, ValueError):
        return []


def read_tail(path, size=2048):
    try:
        with open(path, 'rb') as f:
            f.seek(max(0, os.path.getsize(path) - size))
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
