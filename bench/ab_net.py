"""A/B of the net suite's round trip and bandwidth between two builds, for
a noisy machine: the builds' jobs alternate (A, B, A, B ...), each job is
one process pair that runs the workload once to warm up and then RUNS
times; a job's figure is the median of its runs, and the table gives the
median over jobs, with the raw baselines measured in the same rounds.

    python3 bench/ab_net.py --a build/base --b build/release [--jobs 5]
        [--runs 3] [--what rt-tcp,rt-mpi,bw-tcp,bw-mpi] [--raw]
        [--a-env VAR=VALUE,...] [--b-env ...]   (environment of one side)
    (also tput-*, and pi-* and uts-* on 3 processes: seconds)

Python standard library only; uses run_net.py's launchers.
"""

import argparse
import os
import statistics
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import parse_results  # noqa: E402
import run_net  # noqa: E402

KEY = {'rt': 'us_per_op', 'rtc': 'us_per_op', 'bw': 'gb_per_s',
       'tput': 'ops_per_s', 'pi': 'seconds', 'uts': 'seconds'}
NP = {'pi': 3, 'uts': 3}  # others: 2 processes


def suite(bdir, runs):
    return run_net.NetSuite(types.SimpleNamespace(
        build_dir=bdir, quick=False, runs=runs))


def job(s, w, tr, raw=False, env=''):
    old = dict(os.environ)
    for kv in filter(None, env.split(',')):
        k, v = kv.split('=', 1)
        os.environ[k] = v
    try:
        return job1(s, w, tr, raw)
    finally:
        os.environ.clear()
        os.environ.update(old)


def job1(s, w, tr, raw=False):
    if raw:
        w = 'rt' if w == 'rtc' else w
        if tr == 'tcp':
            import subprocess
            out = subprocess.run([s.exe('net-raw-tcp')] + s.args_of(w, 1),
                                 capture_output=True, text=True,
                                 timeout=600).stdout
        else:
            out = s.run_mpi(s.exe('net-raw-mpi'), w, 2, 1)
    elif tr == 'tcp':
        out = s.run_tcp(s.exe('net-weft'), w, NP.get(w, 2), 1)
    else:
        out = s.run_mpi(s.exe('net-weft'), w, NP.get(w, 2), 1)
    rs = parse_results(out)
    if not rs:
        raise RuntimeError('no results from %s %s' % (w, tr))
    return statistics.median(r[KEY[w]] for r in rs)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument('--a', required=True)
    ap.add_argument('--b', required=True)
    ap.add_argument('--jobs', type=int, default=5)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--what', default='rt-tcp,rt-mpi,bw-tcp,bw-mpi')
    ap.add_argument('--raw', action='store_true')
    ap.add_argument('--a-env', default='')
    ap.add_argument('--b-env', default='')
    ap.add_argument('--size', type=int, default=0,
                    help='override the workload size')
    a = ap.parse_args(argv)
    sa, sb = suite(a.a, a.runs), suite(a.b, a.runs)
    if a.size:
        for s in (sa, sb):
            s.size = lambda w, n=a.size: n
    res = {}
    for i in range(a.jobs):
        for what in a.what.split(','):
            w, tr = what.split('-')
            order = [('A', sa, a.a_env), ('B', sb, a.b_env)]
            if i % 2:
                order.reverse()
            for name, s, env in order:
                res.setdefault((what, name), []).append(
                    job(s, w, tr, env=env))
            if a.raw:
                res.setdefault((what, 'raw'), []).append(
                    job(sa, w, tr, raw=True))
        print('round %d done' % (i + 1), file=sys.stderr)
    print('%-8s %-5s %10s   %s' % ('what', 'build', 'median', 'jobs'))
    for what in a.what.split(','):
        med = {}
        for name in ['A', 'B', 'raw']:
            v = res.get((what, name))
            if not v:
                continue
            med[name] = statistics.median(v)
            print('%-8s %-5s %10.3f   %s' % (what, name, med[name],
                                           ' '.join('%.3g' % x for x in v)))
        if 'raw' in med:
            for name in ['A', 'B']:
                print('%-8s %s/raw %8.2f' % (what, name,
                                             med[name] / med['raw']))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
