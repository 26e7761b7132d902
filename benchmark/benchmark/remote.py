"""`remote`: deploy to SSH hosts listed in a settings file, run, collect the logs, parse.

Settings (JSON), e.g. `benchmark/remote.json`:
    {"hosts": ["10.0.0.1", "10.0.0.2"], "user": "root", "port": 22,
     "key_file": "~/.ssh/id_ed25519", "remote_dir": "/tmp/weft-bench", "base_port": 7500}
Authority i runs on hosts[i % len(hosts)] with its workers and clients; the binaries are the
ones built here (the hosts must be binary-compatible: same architecture and glibc). Processes
are started with nohup, their pids kept in files, and stopped by those pids (SIGTERM, so
the stores flush). The same host may appear several times, localhost included; each host
gets its own directory under `remote_dir` (named after it), so that several host names of one
machine (127.0.0.1, 127.0.0.2, …, as the CI test uses) do not share files.
"""

import json
import os
import shutil
import time

from .config import WORK_DIR, BenchError
from .logs import LogParser, summary
from .runner import STARTUP_GRACE, STOP_TIMEOUT, generate

POLL = 1.0
# After the clients finish, time for the last batches to be sealed and committed.
DRAIN = 5


def load_settings(path):
    with open(path) as f:
        s = json.load(f)
    if not s.get('hosts'):
        raise BenchError(f'{path}: "hosts" must list at least one host')
    s.setdefault('user', os.environ.get('USER', 'root'))
    s.setdefault('port', 22)
    s.setdefault('remote_dir', '/tmp/weft-bench')
    s.setdefault('base_port', 7500)
    return s


def connections(settings):
    from fabric import Connection
    kwargs = {}
    if settings.get('key_file'):
        kwargs['key_filename'] = os.path.expanduser(settings['key_file'])
    return {h: Connection(h, user=settings['user'], port=settings['port'],
                          connect_kwargs=kwargs) for h in dict.fromkeys(settings['hosts'])}


def remote(bench, node_params, weft, client, settings, workdir=None, echo=print):
    if bench.ingress != 'tcp':
        raise BenchError('remote runs use the tcp ingress only (the rpc clients are local '
                         'and wan for now)')
    bench.validate()
    hosts = settings['hosts']
    workdir = workdir or os.path.join(WORK_DIR, 'remote')
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.join(workdir, 'logs'))
    host_of = lambda i: hosts[i % len(hosts)]  # noqa: E731
    params, committee, order = generate(weft, workdir, bench, node_params, host_of,
                                        base_port=settings['base_port'])
    conns = connections(settings)
    rdir_of = lambda host: f"{settings['remote_dir']}/{host}"  # noqa: E731
    alive = list(range(bench.nodes - bench.faults))
    echo(f'remote: uploading to {len(conns)} host(s)')
    for host, c in conns.items():
        rdir = rdir_of(host)
        c.run(f'rm -rf {rdir} && mkdir -p {rdir}/logs', hide=True)
        for path in (weft, client):
            c.put(path, f'{rdir}/{os.path.basename(path)}')
        c.run(f'chmod +x {rdir}/weft {rdir}/weft-client', hide=True)
        for name in ('committee.json', 'parameters.json'):
            c.put(os.path.join(workdir, name), f'{rdir}/{name}')
        for i in alive:
            if host_of(i) == host:
                c.put(os.path.join(workdir, f'keys-{i}.json'), f'{rdir}/keys-{i}.json')
    tx_addrs = [a for i in alive
                for a in committee['authorities'][order[i]]['transaction_addresses'].values()]
    rate = max(1, bench.rate // len(tx_addrs))
    started = []
    try:
        for i in alive:
            start(conns[host_of(i)], rdir_of(host_of(i)), f'node-{i}',
                  f'./weft node run --keys keys-{i}.json --committee committee.json '
                  f'--parameters parameters.json --store store-{i} --report-every 2')
            started.append((host_of(i), f'node-{i}'))
        cid = 0
        for i in alive:
            for addr in committee['authorities'][order[i]]['transaction_addresses'].values():
                start(conns[host_of(i)], rdir_of(host_of(i)), f'client-{cid}',
                      f'./weft-client --target {addr} --size {bench.tx_size} --rate {rate} '
                      f'--duration {bench.duration} --nodes {",".join(tx_addrs)} '
                      f'--sample-share {bench.sample_share} --client-id {cid}')
                started.append((host_of(i), f'client-{cid}'))
                cid += 1
        echo(f'remote: {len(alive)} authorities and {cid} clients started; '
             f'running {bench.duration} s')
        deadline = time.time() + bench.duration + STARTUP_GRACE
        clients = [(h, n) for h, n in started if n.startswith('client')]
        while any(running(conns[h], rdir_of(h), n) for h, n in clients):
            if time.time() > deadline:
                raise BenchError('remote clients did not finish in time')
            time.sleep(POLL)
        time.sleep(DRAIN)
    finally:
        for h, n in started:
            stop(conns[h], rdir_of(h), n)
    logs = {}
    for h, n in started:
        local = os.path.join(workdir, 'logs', f'{n}.log')
        conns[h].get(f'{rdir_of(h)}/logs/{n}.log', local)
        with open(local, encoding='utf-8', errors='replace') as f:
            logs[n] = f.read()
    nodes = [logs[f'node-{i}'] for i in alive]
    clients = [v for k, v in sorted(logs.items()) if k.startswith('client')]
    results = LogParser(clients, nodes, bench.tx_size).results()
    config = {'mode': 'remote', 'nodes': bench.nodes, 'workers': bench.workers,
              'faults': bench.faults, 'rate': bench.rate, 'tx_size': bench.tx_size,
              'duration': bench.duration, 'parameters': params, 'time': time.time(),
              'hosts': hosts}
    return config, results, summary(config, results)


def start(conn, rdir, name, command):
    conn.run(f'cd {rdir} && (RUST_LOG=info NO_COLOR=1 nohup {command} > logs/{name}.log 2>&1 '
             f'< /dev/null & echo $! > {name}.pid)', hide=True, pty=False)


def running(conn, rdir, name):
    return conn.run(f'kill -0 $(cat {rdir}/{name}.pid) 2>/dev/null', hide=True, warn=True).ok


def stop(conn, rdir, name):
    """SIGTERM by pid, then wait for the process to go, then SIGKILL."""
    conn.run(f'kill -TERM $(cat {rdir}/{name}.pid) 2>/dev/null', hide=True, warn=True)
    deadline = time.time() + STOP_TIMEOUT
    while running(conn, rdir, name):
        if time.time() > deadline:
            conn.run(f'kill -KILL $(cat {rdir}/{name}.pid)', hide=True, warn=True)
            break
        time.sleep(POLL)
