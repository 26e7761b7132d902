"""`local`: every authority, worker and client on this machine, over loopback."""

import os
import shutil

from .config import WORK_DIR
from .runner import LocalLauncher, run_benchmark


def local(bench, node_params, weft, client, workdir=None, echo=print):
    """Runs one point; returns (config, results, summary text)."""
    workdir = workdir or os.path.join(WORK_DIR, 'local')
    shutil.rmtree(workdir, ignore_errors=True)
    return run_benchmark(bench.validate(), node_params, weft, client, workdir, LocalLauncher(),
                         'local', echo=echo)
