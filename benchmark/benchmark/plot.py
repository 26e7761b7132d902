"""`plot`: PNG figures from `results/results.jsonl`.

- latency vs throughput, one line per committee size (no faults, fixed workers);
- peak throughput vs workers per authority, one line per committee size;
- latency vs throughput with faults, one line per number of crashed authorities.
Points with the same configuration and input rate are merged by their median. The figures
are of the raw TCP ingress; `table` lists every ingress (`local/rpc`, `local/rpc-norecover`).
"""

import json
import os
from collections import defaultdict
from statistics import median

from .config import BenchError


def ingress(config):
    """'tcp', 'rpc' or 'rpc-norecover' (records from before the switch are tcp)."""
    if config.get('ingress', 'tcp') == 'tcp':
        return 'tcp'
    recover = config.get('parameters', {}).get('rpc', {}).get('recover_senders', True)
    return 'rpc' if recover else 'rpc-norecover'


def run_mode(config):
    """The mode, with the ingress when it is not the raw port, and `+l1` for runs posting to
    an L1 (records from before the switch had none)."""
    kind = ingress(config)
    mode = config['mode'] if kind == 'tcp' else f"{config['mode']}/{kind}"
    return mode + '+l1' if config.get('l1') else mode


def load(path, mode=None):
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                if mode is None or r['config']['mode'] == mode:
                    records.append(r)
    if not records:
        raise BenchError(f'no results in {path}')
    return records


def points(records, key):
    """{series key: sorted [(tps, latency s, rate)]}, medians over runs of the same rate."""
    runs = defaultdict(list)
    for r in records:
        c, res = r['config'], r['results']
        runs[(key(c), c['rate'])].append((res['end_to_end_tps'],
                                          res['end_to_end_latency']['mean']))
    series = defaultdict(list)
    for (k, rate), vals in runs.items():
        series[k].append((median(v[0] for v in vals), median(v[1] for v in vals), rate))
    return {k: sorted(v, key=lambda p: p[2]) for k, v in series.items()}


def plot(results, out_dir, mode=None):
    """Writes the figures into `out_dir`; returns their paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    records = [r for r in load(results, mode) if ingress(r['config']) == 'tcp']
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def latency_figure(series, label, name, title):
        fig, ax = plt.subplots()
        for k, pts in sorted(series.items()):
            ax.plot([p[0] / 1000 for p in pts], [p[1] * 1000 for p in pts], marker='o',
                    label=label(k))
        ax.set_xlabel('end-to-end throughput (k tx/s)')
        ax.set_ylabel('end-to-end latency (ms)')
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        path = os.path.join(out_dir, name)
        fig.savefig(path, dpi=120, bbox_inches='tight')
        plt.close(fig)
        written.append(path)

    no_faults = [r for r in records if r['config']['faults'] == 0]
    if no_faults:
        latency_figure(points(no_faults, lambda c: (c['nodes'], c['workers'])),
                       lambda k: f'{k[0]} nodes, {k[1]} worker(s)', 'latency-throughput.png',
                       'Latency vs throughput')
        peak = defaultdict(dict)
        for (nodes, workers), pts in points(no_faults, lambda c: (c['nodes'],
                                                                  c['workers'])).items():
            peak[nodes][workers] = max(p[0] for p in pts)
        fig, ax = plt.subplots()
        for nodes, by_workers in sorted(peak.items()):
            ws = sorted(by_workers)
            ax.plot(ws, [by_workers[w] / 1000 for w in ws], marker='o', label=f'{nodes} nodes')
        ax.set_xlabel('workers per authority')
        ax.set_ylabel('peak end-to-end throughput (k tx/s)')
        ax.set_title('Throughput vs workers')
        ax.grid(True, alpha=0.3)
        ax.legend()
        path = os.path.join(out_dir, 'throughput-workers.png')
        fig.savefig(path, dpi=120, bbox_inches='tight')
        plt.close(fig)
        written.append(path)
    latency_figure(points(records, lambda c: (c['nodes'], c['faults'])),
                   lambda k: f'{k[0]} nodes, {k[1]} faulty', 'latency-faults.png',
                   'Latency vs throughput with crashed authorities')
    return written


def table(results, mode=None):
    """Medians over the runs of each configuration and input rate, one line per point."""
    groups = defaultdict(list)
    for r in load(results, mode):
        c = r['config']
        groups[(run_mode(c), c['nodes'], c['workers'], c['faults'], c['tx_size'],
                c['rate'])].append(r['results'])
    out = ['mode                n x w  f  size  input tx/s  runs  e2e tx/s  e2e mean/p50/p99 ms   '
           'cons. ms  max gap ms  RSS MiB  missing']
    for key in sorted(groups):
        rs = groups[key]

        def med(f):
            return median(f(r) for r in rs)
        rss = med(lambda r: max((n.get('peak_rss_mib', 0) for n in r['per_node']), default=0))
        out.append(
            f"{key[0]:19} {key[1]:>2} x {key[2]:<2} {key[3]:>1} {key[4]:>5} {key[5]:>11,} "
            f"{len(rs):>5} {med(lambda r: r['end_to_end_tps']):>9,.0f}  "
            f"{med(lambda r: r['end_to_end_latency']['mean']) * 1000:>6.0f}/"
            f"{med(lambda r: r['end_to_end_latency']['p50']) * 1000:.0f}/"
            f"{med(lambda r: r['end_to_end_latency']['p99']) * 1000:.0f}"
            f"{med(lambda r: r['consensus_latency']['mean']) * 1000:>14.0f}"
            f"{med(lambda r: r['commit_gap_max']) * 1000:>12.0f}"
            f"{rss:>9.0f}  {sum(r['samples_missing'] for r in rs):>7}")
    return '\n'.join(out)
