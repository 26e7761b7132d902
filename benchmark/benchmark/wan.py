"""`wan`: a geo-distributed committee emulated on one machine. Each authority (with its workers
and its clients) runs in its own network namespace, attached by a veth pair to a bridge;
`tc netem` on each namespace's egress delays (and jitters, drops) packets by the one-way latency
between the sender's and the receiver's regions. Loopback inside a namespace (primary <-> own
workers, client -> own worker) stays undelayed, as on a real host.

Needs root (or CAP_NET_ADMIN) and iproute2. Without the kernel's sch_netem (e.g. a VM kernel
built without it) the delays come from a userspace relay instead (`delay_proxy.py`, latency
only: no jitter, loss or bandwidth limit): every authority gets its own committee file in which
authority j, seen from i, sits at 10.78.<i+1>.<j+1> in a router namespace, where the relay
delays i->j by matrix[i][j] and j->i by matrix[j][i] and forwards to j's real address.
`probe()` says what is missing so callers can skip with a clear message. Everything is torn down on exit, failure
included, and leftovers of an earlier run with the same tag are removed first.
"""

import json
import os
import shutil
import subprocess
import sys
import time

from .config import WORK_DIR, BenchError
from .runner import run_benchmark
from .runner import LocalLauncher

# One-way latencies in ms between 5 regions (roughly: us-east, us-west, eu-west, ap-northeast,
# sa-east; half of public cloud round-trip times).
REGIONS = ['us-east', 'us-west', 'eu-west', 'ap-northeast', 'sa-east']
LATENCY_MS = [
    [0, 32, 38, 73, 58],
    [32, 0, 70, 53, 88],
    [38, 70, 0, 110, 92],
    [73, 53, 110, 0, 128],
    [58, 88, 92, 128, 0],
]
SUBNET = '10.77.0'
ROUTER = f'{SUBNET}.254'
PROXY_NET = '10.78'
PROXY_READY_TIMEOUT = 30
LINK_RATE = '10gbit'


def uniform(n, delay_ms):
    return [[0 if i == j else delay_ms for j in range(n)] for i in range(n)]


def regions(n):
    """Authority i sits in region i mod 5; the matrix between authorities."""
    r = [i % len(REGIONS) for i in range(n)]
    return [[LATENCY_MS[r[i]][r[j]] for j in range(n)] for i in range(n)]


def sh(*argv, check=True):
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise BenchError(f'{" ".join(argv)}: {r.stderr.strip()}')
    return r


class Topology:
    """Namespaces `<tag>-<i>` with address SUBNET.<i+1>/24 on a bridge `<tag>br`."""

    def __init__(self, n, matrix, jitter_ms=0, loss_pct=0.0, tag=None, proxy=False):
        self.n = n
        self.matrix = matrix
        self.jitter_ms = jitter_ms
        self.loss_pct = loss_pct
        self.proxy = proxy
        self.tag = tag or f'wb{os.getpid() % 100000}'
        self.bridge = f'{self.tag}br'

    def ns(self, i):
        return f'{self.tag}-{i}'

    def host(self, i):
        return f'{SUBNET}.{i + 1}'

    def router(self):
        return f'{self.tag}-r'

    def proxy_host(self, i, j):
        """Where authority i reaches authority j through the relay."""
        return f'{PROXY_NET}.{i + 1}.{j + 1}'

    def __enter__(self):
        self.teardown()
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *_):
        self.teardown()

    def setup(self):
        sh('ip', 'link', 'add', self.bridge, 'type', 'bridge')
        sh('ip', 'link', 'set', self.bridge, 'up')
        for i in range(self.n):
            ns, host_end, ns_end = self.ns(i), f'{self.tag}v{i}', f'{self.tag}p{i}'
            sh('ip', 'netns', 'add', ns)
            sh('ip', 'link', 'add', host_end, 'type', 'veth', 'peer', 'name', ns_end)
            sh('ip', 'link', 'set', ns_end, 'netns', ns)
            sh('ip', 'link', 'set', host_end, 'master', self.bridge)
            sh('ip', 'link', 'set', host_end, 'up')
            sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
            sh('ip', '-n', ns, 'addr', 'add', f'{self.host(i)}/24', 'dev', ns_end)
            sh('ip', '-n', ns, 'link', 'set', ns_end, 'up')
            if self.proxy:
                sh('ip', '-n', ns, 'route', 'add', f'{PROXY_NET}.0.0/16', 'via', ROUTER)
            else:
                self.shape(i, ns, ns_end)
        if self.proxy:
            self.add_router()

    def add_router(self):
        r = self.router()
        sh('ip', 'netns', 'add', r)
        sh('ip', 'link', 'add', f'{self.tag}vr', 'type', 'veth', 'peer', 'name', f'{self.tag}pr')
        sh('ip', 'link', 'set', f'{self.tag}pr', 'netns', r)
        sh('ip', 'link', 'set', f'{self.tag}vr', 'master', self.bridge)
        sh('ip', 'link', 'set', f'{self.tag}vr', 'up')
        sh('ip', '-n', r, 'link', 'set', 'lo', 'up')
        sh('ip', '-n', r, 'addr', 'add', f'{ROUTER}/24', 'dev', f'{self.tag}pr')
        sh('ip', '-n', r, 'link', 'set', f'{self.tag}pr', 'up')
        for i in range(self.n):
            for j in range(self.n):
                if i != j:
                    sh('ip', '-n', r, 'addr', 'add', f'{self.proxy_host(i, j)}/32', 'dev', 'lo')

    def shape(self, i, ns, dev):
        """Per-destination netem on the namespace's egress: an htb class per peer."""
        if all(self.matrix[i][j] == 0 for j in range(self.n)) and not self.loss_pct:
            return
        tc = ['ip', 'netns', 'exec', ns, 'tc']
        sh(*tc, 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1')
        sh(*tc, 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb',
           'rate', LINK_RATE)
        for j in range(self.n):
            if j == i:
                continue
            cls = f'1:{j + 10}'
            sh(*tc, 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', cls, 'htb',
               'rate', LINK_RATE)
            netem = ['delay', f'{self.matrix[i][j]}ms']
            if self.jitter_ms:
                netem += [f'{self.jitter_ms}ms', 'distribution', 'normal']
            if self.loss_pct:
                netem += ['loss', f'{self.loss_pct}%']
            sh(*tc, 'qdisc', 'add', 'dev', dev, 'parent', cls, 'handle', f'{j + 10}:',
               'netem', *netem, 'limit', '100000')
            sh(*tc, 'filter', 'add', 'dev', dev, 'protocol', 'ip', 'parent', '1:', 'prio', '1',
               'u32', 'match', 'ip', 'dst', f'{self.host(j)}/32', 'flowid', cls)

    def teardown(self):
        sh('ip', 'netns', 'del', self.router(), check=False)
        sh('ip', 'link', 'del', f'{self.tag}vr', check=False)
        for i in range(self.n):
            sh('ip', 'netns', 'del', self.ns(i), check=False)
            sh('ip', 'link', 'del', f'{self.tag}v{i}', check=False)
        sh('ip', 'link', 'del', self.bridge, check=False)


class NetnsLauncher(LocalLauncher):
    """Runs authority `slot`'s processes inside its namespace."""

    def __init__(self, topology):
        self.topology = topology
        self.relay = None

    def host(self, slot):
        return self.topology.host(slot)

    def committee_path(self, slot, workdir):
        if not self.topology.proxy:
            return super().committee_path(slot, workdir)
        return os.path.join(workdir, f'committee-{slot}.json')

    def prepare(self, workdir, committee, order):
        """With the relay: one committee file per authority, and the relay started."""
        if not self.topology.proxy:
            return
        topo, spec = self.topology, []
        for i in range(topo.n):
            view = json.loads(json.dumps(committee))
            for j in range(topo.n):
                if j == i:
                    continue
                a = view['authorities'][order[j]]
                addrs = [a['primary_address'], *a['worker_addresses'].values()]
                for addr in addrs:
                    port = addr.rsplit(':', 1)[1]
                    spec.append({'listen': f'{topo.proxy_host(i, j)}:{port}', 'target': addr,
                                 'forward_ms': topo.matrix[i][j],
                                 'back_ms': topo.matrix[j][i]})
                a['primary_address'] = f'{topo.proxy_host(i, j)}:' + \
                    a['primary_address'].rsplit(':', 1)[1]
                a['worker_addresses'] = {w: f'{topo.proxy_host(i, j)}:{x.rsplit(":", 1)[1]}'
                                         for w, x in a['worker_addresses'].items()}
            with open(self.committee_path(i, workdir), 'w') as f:
                json.dump(view, f, indent=2)
        spec_path = os.path.join(workdir, 'relay.json')
        with open(spec_path, 'w') as f:
            json.dump(spec, f)
        log = os.path.join(workdir, 'logs', 'relay.log')
        self.relay = subprocess.Popen(
            ['ip', 'netns', 'exec', topo.router(), sys.executable,
             os.path.join(os.path.dirname(os.path.abspath(__file__)), 'delay_proxy.py'),
             spec_path], stdout=open(log, 'wb'), stderr=subprocess.STDOUT)
        deadline = time.time() + PROXY_READY_TIMEOUT
        while 'relaying' not in open(log).read():
            if self.relay.poll() is not None or time.time() > deadline:
                raise BenchError(f'the delay relay did not start: {open(log).read()}')
            time.sleep(0.1)

    def close(self):
        if self.relay and self.relay.poll() is None:
            self.relay.terminate()
            try:
                self.relay.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.relay.kill()
                self.relay.wait()

    def popen(self, slot, argv, log_path):
        return super().popen(slot, ['ip', 'netns', 'exec', self.topology.ns(slot)] + argv,
                             log_path)


def probe(netem=True):
    """None if namespaces (and netem, if asked) work here, else why not."""
    if shutil.which('ip') is None or shutil.which('tc') is None:
        return 'iproute2 (ip, tc) is not installed'
    topo = Topology(2, uniform(2, 1 if netem else 0), tag=f'wbprobe{os.getpid() % 10000}')
    try:
        with topo:
            pass
    except BenchError as e:
        return f'cannot build network namespaces with netem here ({e})'
    return None


def wan(bench, node_params, weft, client, matrix=None, delay_ms=None, jitter_ms=0,
        loss_pct=0.0, workdir=None, echo=print, emulator='netem'):
    """Runs one point with `matrix` (one-way ms between authorities) or a uniform `delay_ms`
    (default: the 5-region matrix); `emulator` is 'netem' or 'proxy' (the userspace relay).
    Returns (config, results, summary text)."""
    bench.validate()
    if emulator == 'proxy' and (jitter_ms or loss_pct):
        raise BenchError('the userspace relay emulates latency only (no jitter or loss)')
    if matrix is None:
        matrix = uniform(bench.nodes, delay_ms) if delay_ms is not None else regions(bench.nodes)
    workdir = workdir or os.path.join(WORK_DIR, 'wan')
    shutil.rmtree(workdir, ignore_errors=True)
    with Topology(bench.nodes, matrix, jitter_ms, loss_pct, proxy=emulator == 'proxy') as topo:
        extra = {'delay_ms': delay_ms if delay_ms is not None else 'regions',
                 'jitter_ms': jitter_ms, 'loss_pct': loss_pct, 'emulator': emulator}
        return run_benchmark(bench, node_params, weft, client, workdir, NetnsLauncher(topo),
                             'wan', extra=extra, echo=echo)
