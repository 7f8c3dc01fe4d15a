#!/usr/bin/env python3
"""Where a remote round trip's time goes, step by step, on both ranks.

Build a traced copy of the library and run the round trip with it:

    meson setup build/trace --buildtype=release -Dc_args=-DWEFT_NET_TRACE
    ninja -C build/trace bench/net/net-weft
    python3 bench/net/trace_rt.py --build-dir build/trace [--workload rtc]

Each WEFT__NET_EV step (lib/net/net_internal.h) stamps CLOCK_MONOTONIC,
which the processes of one machine share; every process writes its stamps
at exit. This script runs `net-weft -k WORKLOAD` under mpirun (2 ranks),
merges the two files, cuts the timeline at each submit on rank 0, and
prints the median time between consecutive steps over the second half of
the round trips (the first half warms up). Python standard library only.
"""

import argparse
import collections
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

STEPS = {1: 'submit', 2: 'queued', 3: 'isend', 4: 'recv', 5: 'delivered',
         7: 'fn start', 8: 'fn end', 9: 'reply done'}
MPIRUN = ['--oversubscribe', '--allow-run-as-root', '--mca', 'btl',
          'self,vader', '--mca', 'pml', 'ob1', '--mca', 'plm_rsh_agent',
          'false']


def load(files):
    """(ns, rank, step) of every stamp; rank 0 is the process that
    submitted (the one with step 1)."""
    per = []
    for f in files:
        with open(f) as fh:
            per.append([tuple(map(int, line.split())) for line in fh])
    per.sort(key=lambda evs: -sum(1 for s, _ in evs if s == 1))
    return sorted((ns, r, s) for r, evs in enumerate(per) for s, ns in evs)


def steps(events):
    trips, cur = [], None
    for ns, r, s in events:
        if r == 0 and s == 1:
            if cur:
                trips.append(cur)
            cur = [(ns, r, s)]
        elif cur is not None:
            cur.append((ns, r, s))
    trips = trips[len(trips) // 2:]
    gaps = collections.defaultdict(list)
    for t in trips:
        for a, b in zip(t, t[1:]):
            key = '%d:%s -> %d:%s' % (a[1], STEPS.get(a[2], a[2]), b[1],
                                      STEPS.get(b[2], b[2]))
            gaps[key].append(b[0] - a[0])
    total = [t[-1][0] - t[0][0] for t in trips]
    return trips, gaps, total


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument('--build-dir', required=True)
    ap.add_argument('--workload', default='rt', choices=['rt', 'rtc'])
    ap.add_argument('-n', type=int, default=20000)
    a = ap.parse_args(argv)
    exe = os.path.join(a.build_dir, 'bench', 'net', 'net-weft')
    mpirun = shutil.which('mpirun')
    if not mpirun or not os.access(exe, os.X_OK):
        print('needs mpirun and %s' % exe)
        return 2
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, WEFT_TRANSPORT='mpi', WEFT_NET_TRACE_DIR=d,
                   OMPI_ALLOW_RUN_AS_ROOT='1',
                   OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')
        p = subprocess.run([mpirun, '-np', '2'] + MPIRUN +
                           ['-x', 'WEFT_NET_TRACE_DIR', exe, '-k',
                            a.workload, '-n', str(a.n), '-r', '1'],
                           env=env, capture_output=True, text=True,
                           timeout=600)
        print(p.stdout.strip())
        files = glob.glob(os.path.join(d, 'weft-trace.*'))
        if p.returncode or len(files) != 2:
            print('no trace (built with -DWEFT_NET_TRACE?): %s'
                  % p.stderr[-300:])
            return 1
        trips, gaps, total = steps(load(files))
    print('%d round trips traced, median %.0f ns from submit to the last '
          'step' % (len(trips), statistics.median(total)))
    print('%-36s %8s %8s %8s' % ('step (rank:step -> rank:step)', 'n',
                                 'median', 'mean'))
    for key, v in sorted(gaps.items(), key=lambda kv: -len(kv[1])):
        if len(v) > len(trips) // 10:
            print('%-36s %8d %8.0f %8.0f' % (key, len(v),
                                             statistics.median(v),
                                             statistics.mean(v)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
