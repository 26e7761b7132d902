"""`local`: every authority, worker and client on this machine, over loopback; by default with
a real L1 (anvil) the authorities post the committed log to."""

import os
import shutil

from .config import WORK_DIR
from .l1 import DRAIN_TIMEOUT, L1
from .runner import LocalLauncher, run_benchmark


def local(bench, node_params, weft, client, workdir=None, echo=print, l1=True,
          takeover_blocks=10, l1_drain=DRAIN_TIMEOUT):
    """Runs one point; returns (config, results, summary text). `l1`: start anvil, deploy the
    inbox and have every authority post to it (see `benchmark/l1.py`)."""
    workdir = workdir or os.path.join(WORK_DIR, 'local')
    shutil.rmtree(workdir, ignore_errors=True)
    chain = L1(weft, workdir, bench.nodes, takeover_blocks, l1_drain, echo) if l1 else None
    return run_benchmark(bench.validate(), node_params, weft, client, workdir, LocalLauncher(),
                         'local', echo=echo, l1=chain)
