"""Live progress while a benchmark runs: reads only what the logs gained since the last call."""

from statistics import median

from .logs import (COMMITTED_BATCH, SAMPLE_COMMITTED, SAMPLE_IN_BATCH, SAMPLE_REFUSED,
                   SAMPLE_SENT, STATUS, SUB_DAG, lines)


class Tail:
    """The complete lines appended to a file since the previous `read`."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.rest = b''

    def read(self):
        try:
            with open(self.path, 'rb') as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return ''
        self.offset += len(data)
        data = self.rest + data
        cut = data.rfind(b'\n') + 1
        self.rest = data[cut:]
        return data[:cut].decode('utf-8', 'replace')


class Progress:
    """Committed TPS (from the first node's sub-DAG lines), its current round and end-to-end
    latency of the samples that every running node committed so far."""

    def __init__(self, node_logs, client_logs):
        self.nodes = [Tail(p) for p in node_logs]
        self.clients = [Tail(p) for p in client_logs]
        self.sent = {}
        self.sample_batch = {}
        self.committed = [{} for _ in node_logs]
        self.client_commits = {}   # rpc samples: id -> time the client saw it committed
        self.latencies = []
        self.transactions = 0
        self.first_commit = None
        self.last_commit = None
        self.round = 0

    def update(self):
        for tail in self.clients:
            for t, _, _, msg in lines(tail.read()):
                if m := SAMPLE_SENT.match(msg):
                    self.sent[int(m.group(1))] = t
                elif m := SAMPLE_COMMITTED.match(msg):
                    self.client_commits[int(m.group(1))] = t
                elif m := SAMPLE_REFUSED.match(msg):
                    self.sent.pop(int(m.group(1)), None)
        for i, tail in enumerate(self.nodes):
            for t, _, _, msg in lines(tail.read()):
                if m := SAMPLE_IN_BATCH.match(msg):
                    self.sample_batch[int(m.group(2))] = m.group(1)
                elif m := COMMITTED_BATCH.match(msg):
                    self.committed[i].setdefault(m.group(1), t)
                elif i == 0 and (m := SUB_DAG.match(msg)):
                    self.transactions += int(m.group(5))
                    if int(m.group(5)) > 0:
                        self.first_commit = self.first_commit or t
                        self.last_commit = t
                elif i == 0 and (m := STATUS.match(msg)):
                    self.round = int(m.group(1))
        done = []
        for sid, sent in self.sent.items():
            if sid in self.client_commits:
                self.latencies.append(self.client_commits[sid] - sent)
                done.append(sid)
                continue
            digest = self.sample_batch.get(sid)
            if all(digest in c for c in self.committed):
                self.latencies.append(self.committed[0][digest] - sent)
                done.append(sid)
        for sid in done:
            del self.sent[sid]

    def line(self, elapsed):
        self.update()
        span = (self.last_commit - self.first_commit) if self.first_commit else 0
        tps = self.transactions / span if span > 0 else 0
        lat = f'{median(self.latencies) * 1000:.0f} ms' if self.latencies else '-'
        return (f'[{elapsed:4.0f}s] committed {self.transactions:,} txs ({tps:,.0f} tx/s), '
                f'round {self.round}, e2e latency p50 so far {lat}')

    def pending_samples(self):
        """Samples sent that some running node has not committed yet."""
        self.update()
        return len(self.sent)
