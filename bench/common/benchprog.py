"""What the Python benchmark programs (bench/map/map_py.py,
bench/dag/dag_dask.py) share: the command line and the peak memory of the
C programs' (bench/common/bench.h), so bench/run.py reads them alike."""

import argparse
import os


def peak_rss_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def parse_args(argv, doc, default_size, lib, env, more=None):
    """-k WORKLOAD (a key of default_size) -n -w -r -c, the options
    more(parser) adds, and --lib (the file lib, by default $env)."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("-k", dest="workload", required=True,
                   choices=sorted(default_size))
    p.add_argument("-n", dest="size", type=int, default=-1)
    p.add_argument("-w", dest="workers", type=int, default=1)
    p.add_argument("-r", dest="runs", type=int, default=1)
    p.add_argument("-c", dest="expect", type=int, default=None)
    if more:
        more(p)
    p.add_argument("--lib", default=os.environ.get(env),
                   help="path of %s (default: $%s)" % (lib, env))
    a = p.parse_args(argv)
    if a.size < 0:
        a.size = default_size[a.workload]
    if a.workers < 1 or a.runs < 1 or a.size < 1:
        p.error("-n, -w and -r must be positive")
    return a
