#!/usr/bin/env python3
"""Start 3 ranks of net_node (test/net/net_node.c) on one machine and
check that each ends as its scenario says.

  run_nodes.py --helper PATH --transport tcp|mpi --scenario NAME

tcp: free loopback ports are picked here and passed in WEFT_PEERS, each
rank gets WEFT_RANK. mpi: mpirun -np 3 (exit 77, skipped, when mpirun is
absent or the library has no MPI backend). Every way mpirun must be told
to run here (as root, oversubscribed, shared memory only) is in MPIRUN.
"""
import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import time

MPIRUN = ['--oversubscribe', '--allow-run-as-root',
          '--mca', 'btl', 'self,vader', '--mca', 'pml', 'ob1',
          '--mca', 'plm_rsh_agent', 'false']
MPI_ENV = {'OMPI_ALLOW_RUN_AS_ROOT': '1',
           'OMPI_ALLOW_RUN_AS_ROOT_CONFIRM': '1',
           'OMPI_MCA_rmaps_base_oversubscribe': '1'}


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def garbage(port):
    """Streams a real peer would never send, each on its own connection."""
    rng = random.Random(7)
    good_magic = b'WEFT'
    payloads = [
        bytes(rng.getrandbits(8) for _ in range(4096)),         # noise
        good_magic + bytes(10),                                  # truncated
        good_magic + b'\x01\x00' + bytes(26),                    # bad check
        good_magic + bytes(rng.getrandbits(8) for _ in range(60)),
        b'GET / HTTP/1.0\r\n\r\n',
    ]
    sent = 0
    deadline = time.time() + 60
    while sent < len(payloads) and time.time() < deadline:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
                s.sendall(payloads[sent])
                if payloads[sent] == good_magic + bytes(10):
                    time.sleep(0.1)  # truncated: the node waits, then EOF
                sent += 1
        except OSError:
            time.sleep(0.1)
    return sent


def run_tcp(helper, scenario, np):
    ports = free_ports(np)
    peers = ','.join('127.0.0.1:%d' % p for p in ports)
    procs = []
    for r in range(np):
        env = dict(os.environ, WEFT_TRANSPORT='tcp', WEFT_PEERS=peers,
                   WEFT_RANK=str(r))
        procs.append(subprocess.Popen([helper, scenario], env=env))
    if scenario == 'garbage':
        print('garbage streams sent:', garbage(ports[0]))
    rcs = []
    for r, p in enumerate(procs):
        if scenario == 'stop' and r == 2:
            # it stopped itself; the others are done with it: kill it
            p.kill()
        try:
            rcs.append(p.wait(timeout=240))
        except subprocess.TimeoutExpired:
            p.kill()
            rcs.append('timeout')
    print('exit statuses:', rcs)
    if scenario in ('kill', 'stop'):
        # rank 2 kills or stops itself; the others must succeed
        return 0 if rcs[2] == -9 and rcs[0] == 0 and rcs[1] == 0 else 1
    if all(rc == 77 for rc in rcs):
        return 77
    return 0 if all(rc == 0 for rc in rcs) else 1


def run_mpi(helper, scenario, np):
    mpirun = shutil.which('mpirun')
    if not mpirun:
        print('no mpirun: skipped')
        return 77
    env = dict(os.environ, WEFT_TRANSPORT='mpi', **MPI_ENV)
    # Open MPI leaks at MPI_Init: LeakSanitizer would fail every rank.
    env['ASAN_OPTIONS'] = env.get('ASAN_OPTIONS', '') + ':detect_leaks=0'
    # and takes its own locks in both orders on one thread (see the file)
    supp = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'tsan-openmpi.supp')
    env['TSAN_OPTIONS'] = (env.get('TSAN_OPTIONS', '') +
                           ':suppressions=' + supp)
    cmd = [mpirun, '-np', str(np)] + MPIRUN + [helper, scenario]
    try:
        p = subprocess.run(cmd, env=env, timeout=240)
    except subprocess.TimeoutExpired:
        print('mpirun timed out')
        return 1
    if p.returncode == 77 or p.returncode == 3:
        return 77
    return p.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--helper', required=True)
    ap.add_argument('--transport', default='tcp')
    ap.add_argument('--scenario', default='basic')
    ap.add_argument('--np', type=int, default=3)
    a = ap.parse_args()
    if a.transport == 'tcp':
        sys.exit(run_tcp(a.helper, a.scenario, a.np))
    sys.exit(run_mpi(a.helper, a.scenario, a.np))


if __name__ == '__main__':
    main()
