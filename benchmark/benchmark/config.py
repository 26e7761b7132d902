"""Benchmark and node parameters, and where the binaries are."""

import os
import subprocess
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_DIR = os.path.join(REPO, 'benchmark')
RESULTS_DIR = os.path.join(BENCH_DIR, 'results')
WORK_DIR = os.path.join(REPO, '.weft', 'bench')

# The setup of the throughput target (and of Narwhal's published local runs):
# 100 ms header and batch delays, 500 KB batches.
NODE_PARAMETERS = {
    'header_num_of_batches_threshold': 32,
    'max_header_num_of_batches': 1000,
    'max_header_delay_ms': 100,
    'gc_depth': 50,
    'sync_retry_delay_ms': 10_000,
    'sync_retry_nodes': 3,
    'batch_size': 500_000,
    'max_batch_delay_ms': 100,
    # The committed log keeps this many sub-DAGs, and their batches, for its readers (none in
    # a benchmark): about 10 s here. Printed in every summary. With 1,000 (minutes of history,
    # gigabytes of batches per node at 200k tx/s) the page cache fills and writeback costs CPU:
    # at 200k tx/s input, 189k tx/s end-to-end and 508 ms mean latency (p99 1.7 s), against
    # 198k tx/s and 245 ms with 50.
    'committed_log_retention': 50,
}


class BenchError(Exception):
    pass


@dataclass
class BenchParameters:
    nodes: int = 4
    workers: int = 1
    faults: int = 0
    rate: int = 50_000
    tx_size: int = 512
    duration: int = 30
    sample_share: float = 0.0
    # 'tcp': the workers' raw transaction ports; 'rpc': the authorities' Ethereum JSON-RPC
    # ingress, with transactions signed before the run (see `weft-client --ingress rpc`).
    ingress: str = 'tcp'
    # `rpc.recover_senders` of the nodes (rpc ingress only).
    recover_senders: bool = True
    # Scrape every node's /metrics this often during the run (0: the endpoints stay off).
    scrape_ms: int = 0

    def validate(self):
        if self.nodes < 1 or self.workers < 1:
            raise BenchError('need at least one authority and one worker')
        if not 0 <= self.faults < self.nodes:
            raise BenchError('faults must be in 0..nodes-1')
        if self.rate < 1 or self.duration < 1 or self.tx_size < 9:
            raise BenchError('rate and duration must be positive, tx size at least 9 B')
        if self.ingress not in ('tcp', 'rpc'):
            raise BenchError(f'unknown ingress {self.ingress!r}: tcp or rpc')
        if self.scrape_ms < 0:
            raise BenchError('scrape interval must be 0 (off) or positive')
        return self


def binaries(profile='release', build=True):
    """Paths of `weft` and `weft-client` for a cargo profile, built first if asked."""
    if build:
        argv = ['cargo', 'build', '-p', 'weft-node', '-p', 'weft-benchmark']
        if profile == 'release':
            argv.append('--release')
        r = subprocess.run(argv, cwd=REPO)
        if r.returncode != 0:
            raise BenchError('cargo build failed')
    target = os.environ.get('CARGO_TARGET_DIR', os.path.join(REPO, 'target'))
    folder = os.path.join(target, 'debug' if profile == 'dev' else profile)
    weft, client = os.path.join(folder, 'weft'), os.path.join(folder, 'weft-client')
    for b in (weft, client):
        if not os.access(b, os.X_OK):
            raise BenchError(f'{b} is missing: build it first')
    return weft, client
