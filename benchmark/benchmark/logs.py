"""Parse the logs of one benchmark run and compute Narwhal's metrics.

Definitions (as in Narwhal's benchmark, so numbers compare):
- consensus latency: a batch sealed by its worker -> that batch committed (earliest commit over
  the nodes); consensus TPS: committed bytes / (last commit - first batch sealed) / tx size;
- end-to-end latency: a client sends a sample transaction -> the batch holding it committed;
  end-to-end TPS: committed bytes / (last commit - first client start) / tx size.
  Through the JSON-RPC ingress the workers cannot tell samples (they are Ethereum
  transactions), so the client itself reports each sample's commit as it sees it through
  `weft_getTransactionPosition` (late by about half its poll period), and its
  acknowledgement latencies (send -> `eth_sendRawTransaction` answered) as a histogram.
- pre-confirmation latency: a client sends a sample transaction -> the finality certificate
  of the sub-DAG holding it is available at the node the client sent it to (the node whose
  worker sealed it); tcp ingress only.
On top: p50/p99 of the latencies, the longest gap between two commits per node, and a check
that every sample sent was sealed in exactly one batch and committed exactly once by every
running node.
"""

import calendar
import re
from dataclasses import dataclass, field
from statistics import mean

LINE = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)\s+(\w+)\s+([\w:]+): (.*)$')
SEALED = re.compile(r'^Batch ([0-9a-f]+) contains (\d+) B$')
SAMPLE_IN_BATCH = re.compile(r'^Batch ([0-9a-f]+) contains sample tx (\d+)$')
COMMITTED_BATCH = re.compile(r'^Committed batch ([0-9a-f]+)$')
SUB_DAG = re.compile(r'^Committed sub-dag (\d+) leader round (\d+) certificates (\d+) '
                     r'batches (\d+) transactions (\d+)$')
CERTIFIED = re.compile(r'^Certified sub-dag (\d+)$')
STATUS = re.compile(r'^status round=(\d+) dag_round=(\d+)')
CLIENT_START = re.compile(r'^Start sending transactions')
SAMPLE_SENT = re.compile(r'^Sending sample transaction (\d+)$')
RATE_WARNING = re.compile(r'^Transaction rate too high')
SAMPLE_COMMITTED = re.compile(r'^Sample transaction (\d+) committed')
SAMPLE_REFUSED = re.compile(r'^Sample transaction (\d+) refused')
ACK_HISTOGRAM = re.compile(r'^Acknowledgement latency histogram ms ?(.*)$')
RPC_DONE = re.compile(r'^Client done: sent (\d+) transactions, (\d+) bursts late, (\d+) '
                      r'acknowledged, (\d+) refused, (\d+) wrong hashes')


class ParseError(Exception):
    pass


def timestamp(text):
    """RFC 3339 UTC timestamp (tracing's format) -> seconds since the epoch, as a float."""
    whole, _, fraction = text[:-1].partition('.')
    seconds = calendar.timegm((int(whole[0:4]), int(whole[5:7]), int(whole[8:10]),
                               int(whole[11:13]), int(whole[14:16]), int(whole[17:19]), 0, 0, 0))
    return seconds + (float('0.' + fraction) if fraction else 0.0)


def lines(text):
    """(time, level, target, message) for every tracing line of a log."""
    for raw in text.splitlines():
        m = LINE.match(raw)
        if m:
            yield timestamp(m.group(1)), m.group(2), m.group(3), m.group(4)


def percentile(values, p):
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def stats(values):
    return {'mean': mean(values) if values else 0.0, 'p50': percentile(values, 50),
            'p99': percentile(values, 99), 'count': len(values)}


def histogram_stats(histogram):
    """`stats` of a histogram {milliseconds: count}, in seconds."""
    total = sum(histogram.values())
    if not total:
        return stats([])
    out = {'mean': sum(ms * n for ms, n in histogram.items()) / total / 1000, 'count': total}
    for name, p in (('p50', 50), ('p99', 99)):
        rank, seen = max(1, -(-total * p // 100)), 0
        for ms in sorted(histogram):
            seen += histogram[ms]
            if seen >= rank:
                out[name] = ms / 1000
                break
    return out


@dataclass
class NodeLog:
    sealed: dict = field(default_factory=dict)          # digest -> (time, bytes)
    samples: dict = field(default_factory=dict)         # sample id -> [digest, ...]
    commits: dict = field(default_factory=dict)         # digest -> [time, ...]
    sub_dags: list = field(default_factory=list)        # (time, index, transactions)
    sub_dag_of: dict = field(default_factory=dict)      # digest -> sub-DAG index (first)
    certified: dict = field(default_factory=dict)       # sub-DAG index -> time
    last_round: int = 0
    errors: int = 0

    @classmethod
    def parse(cls, text):
        log = cls()
        # The executor logs a sub-DAG's batches, then the sub-DAG.
        batches = []
        for t, level, _target, msg in lines(text):
            if level == 'ERROR':
                log.errors += 1
            if m := SEALED.match(msg):
                log.sealed[m.group(1)] = (t, int(m.group(2)))
            elif m := SAMPLE_IN_BATCH.match(msg):
                log.samples.setdefault(int(m.group(2)), []).append(m.group(1))
            elif m := COMMITTED_BATCH.match(msg):
                log.commits.setdefault(m.group(1), []).append(t)
                batches.append(m.group(1))
            elif m := SUB_DAG.match(msg):
                log.sub_dags.append((t, int(m.group(1)), int(m.group(5))))
                for d in batches:
                    log.sub_dag_of.setdefault(d, int(m.group(1)))
                batches = []
            elif m := CERTIFIED.match(msg):
                log.certified.setdefault(int(m.group(1)), t)
            elif m := STATUS.match(msg):
                log.last_round = int(m.group(1))
        return log

    def first_commits(self):
        return {d: min(ts) for d, ts in self.commits.items()}

    def max_commit_gap(self, since=None):
        times = [t for t, _, _ in self.sub_dags if since is None or t >= since]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


@dataclass
class ClientLog:
    start: float = None
    sent: dict = field(default_factory=dict)            # sample id -> [time, ...]
    committed: dict = field(default_factory=dict)       # sample id -> time (rpc ingress)
    refused: set = field(default_factory=set)           # sample ids the ingress refused
    acks: dict = field(default_factory=dict)            # latency ms -> calls (rpc ingress)
    totals: dict = field(default_factory=dict)          # the rpc client's closing counts
    rate_warnings: int = 0

    @classmethod
    def parse(cls, text):
        log = cls()
        for t, _level, _target, msg in lines(text):
            if m := SAMPLE_SENT.match(msg):
                log.sent.setdefault(int(m.group(1)), []).append(t)
            elif CLIENT_START.match(msg):
                log.start = t if log.start is None else min(log.start, t)
            elif RATE_WARNING.match(msg):
                log.rate_warnings += 1
            elif m := SAMPLE_COMMITTED.match(msg):
                log.committed.setdefault(int(m.group(1)), t)
            elif m := SAMPLE_REFUSED.match(msg):
                log.refused.add(int(m.group(1)))
            elif m := ACK_HISTOGRAM.match(msg):
                for pair in filter(None, m.group(1).split(',')):
                    ms, n = pair.split(':')
                    log.acks[int(ms)] = log.acks.get(int(ms), 0) + int(n)
            elif m := RPC_DONE.match(msg):
                log.totals = dict(zip(('sent', 'late', 'acknowledged', 'refused', 'wrong_hash'),
                                      map(int, m.groups())))
        return log


class LogParser:
    """All logs of one run: `nodes` are the logs of the running (not crashed) authorities,
    each holding its primary, workers and executor; `clients` the load clients' logs."""

    def __init__(self, clients, nodes, tx_size):
        if not nodes:
            raise ParseError('no node logs')
        self.tx_size = tx_size
        self.nodes = [NodeLog.parse(t) for t in nodes]
        self.clients = [ClientLog.parse(t) for t in clients]
        self.sealed = {}
        self.samples = {}
        for n in self.nodes:
            self.sealed.update(n.sealed)
            for sid, digests in n.samples.items():
                self.samples.setdefault(sid, []).extend(digests)
        self.sent = {}
        self.client_commits = {}
        for c in self.clients:
            for sid, ts in c.sent.items():
                if sid not in c.refused:
                    self.sent.setdefault(sid, []).extend(ts)
            self.client_commits.update(c.committed)
        self.commits = {}
        for n in self.nodes:
            for d, t in n.first_commits().items():
                self.commits[d] = min(t, self.commits.get(d, t))
        starts = [c.start for c in self.clients if c.start is not None]
        self.client_start = min(starts) if starts else None

    def _committed_bytes(self):
        return sum(self.sealed[d][1] for d in self.commits if d in self.sealed)

    def _throughput(self, start):
        if not self.commits or start is None:
            return 0.0, 0.0, 0.0
        duration = max(self.commits.values()) - start
        if duration <= 0:
            return 0.0, 0.0, 0.0
        bps = self._committed_bytes() / duration
        return bps / self.tx_size, bps, duration

    def consensus_latencies(self, commits=None):
        commits = self.commits if commits is None else commits
        return [c - self.sealed[d][0] for d, c in commits.items() if d in self.sealed]

    def end_to_end_latencies(self):
        out = []
        for sid, sent in self.sent.items():
            digests = self.samples.get(sid, [])
            if len(digests) == 1 and digests[0] in self.commits:
                out.append(self.commits[digests[0]] - min(sent))
            elif not digests and sid in self.client_commits:
                out.append(self.client_commits[sid] - min(sent))
        return out

    def preconf_latencies(self):
        out = []
        for n in self.nodes:
            for sid, digests in n.samples.items():
                sent = self.sent.get(sid)
                if not sent or len(digests) != 1:
                    continue
                certified = n.certified.get(n.sub_dag_of.get(digests[0]))
                if certified is not None:
                    out.append(certified - min(sent))
        return out

    def acknowledgements(self):
        """The rpc clients' acknowledgement latencies and counts; None for tcp runs."""
        totals = [c.totals for c in self.clients if c.totals]
        if not totals:
            return None
        merged = {}
        for c in self.clients:
            for latency, n in c.acks.items():
                merged[latency] = merged.get(latency, 0) + n
        out = {k: sum(t[k] for t in totals) for k in totals[0]}
        out['latency'] = histogram_stats(merged)
        return out

    def exactly_once(self):
        """Samples sent but never committed by some running node, and samples sent twice,
        sealed in more than one batch or committed more than once by a node."""
        missing, duplicated = [], []
        for sid, sent in sorted(self.sent.items()):
            digests = self.samples.get(sid, [])
            if len(sent) > 1 or len(digests) > 1:
                duplicated.append(sid)
                continue
            if not digests and sid in self.client_commits:
                # An rpc sample: its commit was seen through the position lookup, which names
                # one position; its exactly-once is the node tests' (tests/rpc*.rs).
                continue
            counts = [len(n.commits.get(digests[0], [])) if digests else 0 for n in self.nodes]
            if any(c > 1 for c in counts):
                duplicated.append(sid)
            elif any(c == 0 for c in counts):
                missing.append(sid)
        unknown = sorted(set(self.samples) - set(self.sent))
        return {'sent': len(self.sent), 'missing': missing, 'duplicated': duplicated,
                'unknown': unknown}

    def results(self):
        c_tps, c_bps, c_dur = self._throughput(min((t for t, _ in self.sealed.values()),
                                                   default=None))
        e_tps, e_bps, e_dur = self._throughput(self.client_start)
        once = self.exactly_once()
        per_node = []
        for i, n in enumerate(self.nodes):
            per_node.append({
                'node': i,
                'consensus_latency': stats(self.consensus_latencies(n.first_commits())),
                'commit_gap_max': n.max_commit_gap(self.client_start),
                'sub_dags': len(n.sub_dags),
                'transactions': sum(t for _, _, t in n.sub_dags),
                'last_round': n.last_round,
                'errors': n.errors,
            })
        return {
            'consensus_tps': c_tps, 'consensus_bps': c_bps, 'consensus_duration': c_dur,
            'consensus_latency': stats(self.consensus_latencies()),
            'end_to_end_tps': e_tps, 'end_to_end_bps': e_bps, 'end_to_end_duration': e_dur,
            'end_to_end_latency': stats(self.end_to_end_latencies()),
            'preconf_latency': stats(self.preconf_latencies()),
            'commit_gap_max': max(p['commit_gap_max'] for p in per_node),
            'samples_sent': once['sent'],
            'samples_missing': len(once['missing']),
            'samples_duplicated': len(once['duplicated']),
            'samples_unknown': len(once['unknown']),
            'missing_examples': once['missing'][:5],
            'duplicated_examples': once['duplicated'][:5],
            'client_rate_warnings': sum(c.rate_warnings for c in self.clients),
            'acknowledgements': self.acknowledgements(),
            'per_node': per_node,
        }


def ms(seconds):
    return f'{round(seconds * 1000):,} ms'


def summary(config, results):
    """The human-readable block printed after a run and appended to the results file."""
    c, r = config, results
    p = c.get('parameters', {})
    out = [
        '-----------------------------------------',
        ' SUMMARY:',
        '-----------------------------------------',
        ' + CONFIG:',
        f" Mode: {c['mode']}",
        f" Faults: {c['faults']} node(s)",
        f" Committee size: {c['nodes']} node(s)",
        f" Worker(s) per node: {c['workers']} worker(s)",
        f" Input rate: {c['rate']:,} tx/s",
        f" Transaction size: {c['tx_size']:,} B",
        f" Execution time: {c['duration']:,} s",
    ]
    if c.get('delay_ms'):
        delay = ('the 5-region matrix' if c['delay_ms'] == 'regions'
                 else f"{c['delay_ms']} ms between any two")
        out.append(f" Emulated one-way delay: {delay} ({c.get('emulator', 'netem')})")
    out += [
        '',
        f" Header number of batches threshold: {p.get('header_num_of_batches_threshold')}",
        f" Max header delay: {p.get('max_header_delay_ms')} ms",
        f" GC depth: {p.get('gc_depth')} round(s)",
        f" Sync retry delay: {p.get('sync_retry_delay_ms')} ms",
        f" Batch size: {p.get('batch_size', 0):,} B",
        f" Max batch delay: {p.get('max_batch_delay_ms')} ms",
        f" Leader schedule: {p.get('leader_schedule')}",
        f" Committed log retention: {p.get('committed_log_retention')} sub-DAG(s)",
        '',
        ' + RESULTS:',
        f" Consensus TPS: {round(r['consensus_tps']):,} tx/s",
        f" Consensus BPS: {round(r['consensus_bps']):,} B/s",
        f" Consensus latency: {ms(r['consensus_latency']['mean'])}"
        f" (p50 {ms(r['consensus_latency']['p50'])}, p99 {ms(r['consensus_latency']['p99'])})",
        '',
        f" End-to-end TPS: {round(r['end_to_end_tps']):,} tx/s",
        f" End-to-end BPS: {round(r['end_to_end_bps']):,} B/s",
        f" End-to-end latency: {ms(r['end_to_end_latency']['mean'])}"
        f" (p50 {ms(r['end_to_end_latency']['p50'])}, p99 {ms(r['end_to_end_latency']['p99'])})",
    ]
    pre = r.get('preconf_latency')
    if not p.get('attestations', True):
        out.append(" Pre-confirmations: off (attestations: false)")
    elif pre and pre['count']:
        out.append(f" Pre-confirmation latency: {ms(pre['mean'])}"
                   f" (p50 {ms(pre['p50'])}, p99 {ms(pre['p99'])}, {pre['count']:,} samples)")
    out += [
        '',
        f" Max commit gap: {ms(r['commit_gap_max'])}",
        f" Samples: {r['samples_sent']:,} sent, {r['samples_missing']} missing,"
        f" {r['samples_duplicated']} duplicated, {r['samples_unknown']} unknown",
        f" Client rate warnings: {r['client_rate_warnings']}",
    ]
    if a := r.get('acknowledgements'):
        out.insert(-2, f" Ingress: rpc (sender recovery "
                       f"{'on' if p.get('rpc', {}).get('recover_senders', True) else 'off'}):"
                       f" {a['sent']:,} sent, {a['acknowledged']:,} acknowledged,"
                       f" {a['refused']:,} refused, {a['wrong_hash']} wrong hashes;"
                       f" acknowledgement latency {ms(a['latency']['mean'])}"
                       f" (p50 {ms(a['latency']['p50'])}, p99 {ms(a['latency']['p99'])})")
    if sc := r.get('scrapes'):
        each = sc['bytes'] // max(1, sc['done'])
        out.insert(-2, f" Metrics: /metrics scraped every {c.get('scrape_ms')} ms:"
                       f" {sc['done']:,} scrapes ({each:,} B each), {sc['failed']} failed")
    out += l1_summary(c, r)
    for n in r['per_node']:
        lat = n['consensus_latency']
        usage = (f", peak RSS {n['peak_rss_mib']:.0f} MiB, CPU {n['cpu_share'] * 100:.0f}%"
                 if 'peak_rss_mib' in n else '')
        out.append(f" Node {n['node']}: round {n['last_round']}, {n['sub_dags']} sub-dags,"
                   f" {n['transactions']:,} txs, consensus latency {ms(lat['mean'])}"
                   f" (p99 {ms(lat['p99'])}), max commit gap {ms(n['commit_gap_max'])},"
                   f" {n['errors']} errors{usage}")
    out.append('-----------------------------------------')
    return '\n'.join(out) + '\n'


def l1_summary(config, results):
    """The L1 lines of the summary (`benchmark/l1.py`), or one saying it was off."""
    l1 = results.get('l1')
    if not l1:
        return [' L1: off'] if config.get('l1') is False else []
    lag, posters, v = l1['lag'], l1['posters'], l1['verify']
    if v.get('consistent'):
        verdict = 'consistent: yes'
    elif v.get('consistent') is False:
        verdict = f"INCONSISTENT ({v.get('inconsistency')})"
    else:
        verdict = f"verifier failed (exit {v.get('exit')}): {v.get('error', '')[:200]}"
    count = (lambda k: f"{v[k]:,}" if v.get(k) is not None else '?')
    behind = l1['committed_transactions'] - (v.get('transactions') or 0)
    warning = ([f" L1: {behind:,} committed transactions not on L1 after the"
                f" {l1['drain_seconds']:.0f} s drain (posting is slower than the load)"]
               if behind > 0 else [])
    return [
        f" L1: anvil, {l1['block_time']} s blocks, posters rotating (takeover after"
        f" {l1['takeover_blocks']} blocks): {posters['batches']:,} batches posted,"
        f" {posters['rejections']:,} submissions refused, {posters['errors']:,} errors;"
        f" drained {l1['drain_seconds']:.0f} s after the load",
        f" L1 lag: {lag['mean']:.1f} sub-DAGs mean (p50 {lag['p50']}, max {lag['max']},"
        f" {lag['last']} at the load's end), {lag['seconds']['mean']:.1f} s mean"
        f" (max {lag['seconds']['max']:.1f} s) behind the commit, {lag['count']} samples"
        f" during the load",
        f" L1 cost: {posters['bytes_per_tx']:.1f} B and {posters['gas_per_tx']:,.0f} gas per"
        f" transaction ({posters['transactions']:,} transactions posted,"
        f" {posters['bytes']:,} B, {posters['gas']:,} gas)",
        f" L1 verify: {count('batches')} batches, {count('transactions')} transactions"
        f" (of {l1['committed_transactions']:,} committed), {count('attested')} attested,"
        f" {verdict}",
    ] + warning
