"""Fabric tasks, as in Narwhal's benchmark: `cd benchmark && fab local`, `fab wan`,
`fab remote`, `fab plot`. Each takes the options of `run.py` (see `fab --help <task>`);
rates are comma-separated, e.g. `fab local --rate 50000,100000 --runs 3`."""

from fabric import task

import run as cli


def bench_argv(nodes, workers, faults, rate, tx_size, duration, runs, profile, no_build):
    argv = ['--nodes', str(nodes), '--workers', str(workers), '--faults', str(faults),
            '--rate', *str(rate).split(','), '--tx-size', str(tx_size),
            '--duration', str(duration), '--runs', str(runs), '--profile', profile]
    return argv + (['--no-build'] if no_build else [])


def finish(status):
    if status not in (0, cli.SKIPPED):
        raise SystemExit(status)


@task
def local(ctx, nodes=4, workers=1, faults=0, rate='50000', tx_size=512, duration=30, runs=1,
          profile='release', no_build=False, no_l1=False):
    """Every authority, worker and client on this machine, posting to a local anvil L1
    (unless --no-l1)."""
    finish(cli.main(['local', *bench_argv(nodes, workers, faults, rate, tx_size, duration,
                                          runs, profile, no_build)] +
                    (['--no-l1'] if no_l1 else [])))


@task
def wan(ctx, nodes=4, workers=1, faults=0, rate='50000', tx_size=512, duration=30, runs=1,
        delay=None, jitter=0, loss=0.0, emulator='auto', profile='release', no_build=False):
    """One network namespace per authority, delays by tc netem or the userspace relay
    (a 5-region matrix by default)."""
    argv = ['wan', *bench_argv(nodes, workers, faults, rate, tx_size, duration, runs, profile,
                               no_build), '--jitter', str(jitter), '--loss', str(loss),
            '--emulator', emulator]
    if delay is not None:
        argv += ['--delay', str(delay)]
    finish(cli.main(argv))


@task
def remote(ctx, settings='remote.json', nodes=4, workers=1, faults=0, rate='50000',
           tx_size=512, duration=30, runs=1, profile='release', no_build=False):
    """Deploy to the SSH hosts of a settings file (see benchmark/remote.py)."""
    finish(cli.main(['remote', *bench_argv(nodes, workers, faults, rate, tx_size, duration,
                                           runs, profile, no_build), '--settings', settings]))


@task
def plot(ctx, mode=None):
    """PNG figures from results/results.jsonl into results/."""
    finish(cli.main(['plot'] + (['--mode', mode] if mode else [])))


@task
def table(ctx, mode=None):
    """Medians per configuration and input rate from results/results.jsonl."""
    finish(cli.main(['table'] + (['--mode', mode] if mode else [])))
