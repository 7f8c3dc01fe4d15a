"""The `net` suite (issue 8): weft across processes over its mpi and tcp
transports, against raw MPI and raw TCP on the same loopback.

    python3 bench/run_net.py --build-dir BUILDDIR [--quick] [--runs R]
    (or, once registered, python3 bench/run.py --suite net)

Workloads (bench/net/net_weft.c says what each one does):
- rt: remote round trip of an empty task, rank 0 -> 1, vs raw MPI
  ping-pong (net-raw-mpi) and raw TCP echo (net-raw-tcp) of 8 bytes;
  target: weft over mpi <= 1.5 x raw MPI. Also against raw MPI at
  weft's thread level (MPI_THREAD_SERIALIZED) with weft's message size
  (48 bytes): raw-mpi-t48, what any threaded runtime's messages cost.
- rtc: the same round trip with the task flagged WEFT_REMOTE_CHEAP (run
  on rank 1's communication thread, no hand-off to a worker).
- rts: the round trip after 1 ms of quiet (both nodes' threads asleep:
  the wake-up path), the median of N; no raw twin.
- tput: empty remote tasks in flight at once, rank 0 -> 1.
- bw: fetching an object of N bytes from rank 1, vs raw send of N bytes;
  target: >= 0.8 x raw.
- get: the mpi transport alone reading N bytes rank 1 registered (one-
  sided get), vs the same raw send.
- pi, uts: a distributed Monte Carlo pi and unbalanced tree search on 3
  processes of one worker each, against the same program as 1 process.

Every point is one job (mpirun or 2-3 processes started here) that runs
the workload once to warm up and then RUNS times; the table gives the
median of those runs and their spread, and every answer is checked
against its twin. Python standard library only.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import (Sample, Section, note, parse_results,  # noqa: E402
                      render_text)

# How mpirun must be told to run here (root, oversubscribed, shared
# memory only); the same as test/net/run_nodes.py.
MPIRUN = ['--oversubscribe', '--allow-run-as-root',
          '--mca', 'btl', 'self,vader', '--mca', 'pml', 'ob1',
          '--mca', 'plm_rsh_agent', 'false']
MPI_ENV = {'OMPI_ALLOW_RUN_AS_ROOT': '1',
           'OMPI_ALLOW_RUN_AS_ROOT_CONFIRM': '1'}

# (workload, full size, quick size)
SIZES = {'rt': (5000, 300), 'rtc': (5000, 300), 'rts': (300, 30),
         'tput': (20000, 2000),
         'bw': (64 << 20, 8 << 20), 'get': (64 << 20, 8 << 20), 'pi': (200000000, 20000000),
         'uts': (10000, 1000)}
TARGETS = {'rt': 1.5, 'rtc': 1.5, 'bw': 0.8}


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(('127.0.0.1', 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class NetSuite:
    name = 'net'
    heading = 'weft across processes (mpi, tcp) against raw MPI and TCP'

    def __init__(self, args):
        self.args = args
        self.bdir = os.path.join(args.build_dir, 'bench', 'net')
        self.mpirun = shutil.which('mpirun')
        self.res = {}   # (workload, impl) -> list of result dicts
        self.wrong = []
        self.quick = getattr(args, 'quick', False)
        self.runs = getattr(args, 'runs', None) or (3 if self.quick else 5)

    def exe(self, name):
        p = os.path.join(self.bdir, name)
        return p if os.access(p, os.X_OK) else None

    def has(self, impl, workload=None):
        return self.exe('net-weft') is not None

    def size(self, w):
        return SIZES[w][1 if self.quick else 0]

    def args_of(self, w, workers):
        return ['-k', w, '-n', str(self.size(w)), '-r', str(self.runs),
                '-w', str(workers)]

    def run_tcp(self, exe, w, np, workers):
        ports = free_ports(np)
        peers = ','.join('127.0.0.1:%d' % p for p in ports)
        procs = []
        for r in range(np):
            env = dict(os.environ, WEFT_TRANSPORT='tcp', WEFT_PEERS=peers,
                       WEFT_RANK=str(r))
            procs.append(subprocess.Popen(
                [exe] + self.args_of(w, workers), env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [p.communicate(timeout=600) for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError('tcp job failed: exit %s; %s' % (
                [p.returncode for p in procs],
                ' | '.join(o[1][-300:] for o in outs)))
        return outs[0][0]

    def run_mpi(self, exe, w, np, workers, extra=()):
        env = dict(os.environ, WEFT_TRANSPORT='mpi', **MPI_ENV)
        p = subprocess.run([self.mpirun, '-np', str(np)] + MPIRUN + [exe] +
                           self.args_of(w, workers) + list(extra), env=env,
                           capture_output=True, text=True, timeout=600)
        if p.returncode:
            raise RuntimeError('mpirun failed: ' + p.stderr[-500:])
        return p.stdout

    def point(self, w, impl, fn):
        try:
            out = fn()
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            self.wrong.append('%s %s: %s' % (w, impl, e))
            return
        rs = parse_results(out)
        if len(rs) != self.runs:
            self.wrong.append('%s %s: %d of %d runs' % (w, impl, len(rs),
                                                        self.runs))
            return
        self.res[(w, impl)] = rs

    def run(self):
        weft, raw_tcp = self.exe('net-weft'), self.exe('net-raw-tcp')
        raw_mpi = self.exe('net-raw-mpi')
        mpi = self.mpirun is not None and raw_mpi is not None
        if not mpi:
            note('no mpirun or no net-raw-mpi: the mpi rows are left out')
        if mpi:
            self.point('get', 'weft-mpi',
                       lambda: self.run_mpi(weft, 'get', 2, 1))
        for w in ['rt', 'rtc', 'rts', 'tput', 'bw']:
            self.point(w, 'weft-tcp', lambda: self.run_tcp(weft, w, 2, 1))
            if mpi:
                self.point(w, 'weft-mpi', lambda: self.run_mpi(weft, w, 2, 1))
            if w not in ('tput', 'rtc', 'rts'):
                if raw_tcp:
                    self.point(w, 'raw-tcp', lambda: subprocess.run(
                        [raw_tcp] + self.args_of(w, 1), capture_output=True,
                        text=True, timeout=600).stdout)
                if mpi:
                    self.point(w, 'raw-mpi',
                               lambda: self.run_mpi(raw_mpi, w, 2, 1))
                if mpi and w == 'rt':
                    self.point(w, 'raw-mpi-t48', lambda: self.run_mpi(
                        raw_mpi, w, 2, 1, ['-t', '-l', '48']))
        for w in ['pi', 'uts']:
            self.point(w, '1 process',
                       lambda: self.run_tcp(weft, w, 1, 1))
            self.point(w, 'weft-tcp x3',
                       lambda: self.run_tcp(weft, w, 3, 1))
            if mpi:
                self.point(w, 'weft-mpi x3',
                           lambda: self.run_mpi(weft, w, 3, 1))
            checks = {r['check'] for (ww, _), rs in self.res.items()
                      if ww == w for r in rs}
            if len(checks) > 1:
                self.wrong.append('%s: answers differ: %s' % (w, checks))

    def med(self, w, impl, key):
        rs = self.res.get((w, impl))
        if not rs:
            return None, 0
        s = Sample(rs)
        return s.extra(key), s.extra_spread(key)

    def sections(self):
        rows = []
        base = {'weft-tcp': 'raw-tcp', 'weft-mpi': 'raw-mpi'}
        for w, key, unit in [('rt', 'us_per_op', 'us'),
                             ('rtc', 'us_per_op', 'us'),
                             ('rts', 'us_per_op', 'us'),
                             ('tput', 'ops_per_s', 'tasks/s'),
                             ('bw', 'gb_per_s', 'GB/s'),
                             ('get', 'gb_per_s', 'GB/s')]:
            for impl in ['weft-tcp', 'weft-mpi', 'raw-tcp', 'raw-mpi',
                         'raw-mpi-t48']:
                m, sp = self.med(w, impl, key)
                if m is None:
                    continue
                bw = {'rtc': 'rt', 'rts': '-', 'get': 'bw'}.get(w, w)
                b, _ = self.med(bw, base.get(impl, ''), key)
                r = '%.2f' % (m / b) if b else '-'
                t48, _ = self.med(bw, 'raw-mpi-t48', key)
                if impl == 'weft-mpi' and t48:
                    r += ' (%.2f vs raw-mpi-t48)' % (m / t48)
                rows.append([w, impl, '%.3g %s [%.0f%%]' % (m, unit, sp),
                             r if impl in base else '1.00'])
        sec1 = Section('Transports: round trip, throughput, bandwidth '
                       '(size: rt, rtc %d, tput %d, bw %d bytes)'
                       % (self.size('rt'), self.size('tput'),
                          self.size('bw')),
                       ['workload', 'impl', 'median [spread]',
                        'weft / raw'], rows,
                       ['targets: rt weft-mpi / raw-mpi <= 1.5; bw weft / '
                        'raw >= 0.8',
                        'rtc: the round trip of a task flagged '
                        'WEFT_REMOTE_CHEAP, against the raw rt (an unflagged '
                        'empty task runs the same way once the node has '
                        'timed it short: weft_net_config.inline_us)',
                        'rts: the round trip after 1 ms of quiet, median '
                        '(the wake-up of a sleeping node; no raw twin)',
                        'raw-mpi-t48: ping-pong of 48 bytes (a weft task or '
                        'reply message) at MPI_THREAD_SERIALIZED (the level '
                        'weft needs)',
                        'every job: 2 processes of 1 worker on loopback'])
        rows = []
        for w in ['pi', 'uts']:
            one, _ = self.med(w, '1 process', 'seconds')
            for impl in ['1 process', 'weft-tcp x3', 'weft-mpi x3']:
                m, sp = self.med(w, impl, 'seconds')
                if m is None:
                    continue
                rows.append([w, impl, '%.3f s [%.0f%%]' % (m, sp),
                             '%.2f' % (one / m) if one else '-'])
        sec2 = Section('Distributed pi and UTS (sizes: pi %d points, uts '
                       '%d subtrees), 1 worker per process'
                       % (self.size('pi'), self.size('uts')),
                       ['workload', 'impl', 'median [spread]',
                        'speedup vs 1 process'], rows,
                       ['3 processes share this machine\'s cores: the '
                        'speedup is bounded by the core count'])
        return [sec1, sec2]


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument('--build-dir', required=True)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--runs', type=int, default=None)
    a = ap.parse_args(argv)
    s = NetSuite(a)
    if not s.has('weft'):
        print('no net-weft in %s' % s.bdir)
        return 2
    s.run()
    print(render_text(s.heading, s.sections(), s.wrong))
    return 1 if s.wrong else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
