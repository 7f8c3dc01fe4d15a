#!/usr/bin/python3
"""The dataflow workloads on Dask's threaded scheduler.

    dag_dask.py --lib BUILDDIR/bench/libdagkern.so -k WORKLOAD [-n SIZE]
                [-w WORKERS] [-r RUNS] [-c CHECK] [-v]

The same command line and the same RESULT lines as the C programs
(bench/common/bench.h), so bench/run.py reads it like them:

    RESULT name=dag impl=dask workers=2 size=10000 seconds=1.234567
           check=4453676454419720316 rss_kb=45678      (one line)

The graph is a Dask graph as a user writes one by hand, a dict
key -> (function, *inputs), built once before the timed runs; a run is
dask.threaded.get(graph, "answer") on a pool of -w threads made once.
The task bodies are the C functions the other programs inline, called
through ctypes from libdagkern (bench/dag/dagkern.c), so the values and
the answer are the same bit for bit, and ctypes releases the GIL while
a body runs. What differs is the scheduler: Dask's costs some 100 us per
task, so run.py gives it smaller sizes and compares cost per node.

Exit status: 0; 1 when -c was given and an answer differs; 2 for a bad
command line; 77 (meson's "skipped") when dask cannot be imported or the
library is missing.
"""

import concurrent.futures
import ctypes
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "common"))
from benchprog import parse_args, peak_rss_kb  # noqa: E402

SKIP = 77
# The C programs' defaults (bench/common/bench.h) would take Dask minutes;
# these are the sizes run.py gives Dask.
DEFAULT_SIZE = {"chol": 8, "chol-fine": 16, "dag": 10000}
CHOL_BLOCK = {"chol": 64, "chol-fine": 16}


def load_kernels(path):
    lib = ctypes.CDLL(path)
    u64, c_long, c_int = ctypes.c_uint64, ctypes.c_long, ctypes.c_int
    pd = ctypes.POINTER(ctypes.c_double)
    lib.bk_dag_deps.argtypes = [c_long, ctypes.POINTER(c_long)]
    lib.bk_dag_deps.restype = c_int
    lib.bk_dag_node.argtypes = [c_long, c_int, u64, u64, u64]
    lib.bk_dag_node.restype = u64
    lib.bk_dag_hash.argtypes = [ctypes.POINTER(u64), c_long]
    lib.bk_dag_hash.restype = u64
    lib.bk_chol_ntasks.argtypes = [c_int]
    lib.bk_chol_ntasks.restype = c_long
    lib.bk_chol_plan.argtypes = [c_int, ctypes.POINTER(c_int)]
    lib.bk_chol_plan.restype = c_long
    lib.bk_chol_init_tile.argtypes = [pd, c_int, c_int, c_int, c_int]
    lib.bk_chol_init_tile.restype = None
    lib.bk_chol_task.argtypes = [c_int, pd, pd, pd, c_int]
    lib.bk_chol_task.restype = None
    lib.bk_chol_hash.argtypes = [ctypes.POINTER(pd), c_int, c_int]
    lib.bk_chol_hash.restype = u64
    return lib


# ------------------------------------------------------------ the random DAG

class DagWorkload:
    """Node i is key ("v", i): (node, i, ("v", d0), ...); the answer is
    key "answer": (hash, [every node's key])."""

    def __init__(self, lib, n):
        self.lib = lib
        self.n = n
        node, deps = lib.bk_dag_node, (ctypes.c_long * 3)()
        self.graph = {}

        def compute(i, *inputs):
            x = list(inputs) + [0] * (3 - len(inputs))
            return node(i, len(inputs), x[0], x[1], x[2])

        for i in range(n):
            k = lib.bk_dag_deps(i, deps)
            self.graph[("v", i)] = (compute, i) + tuple(
                ("v", deps[j]) for j in range(k))

        def answer(values):
            return lib.bk_dag_hash((ctypes.c_uint64 * len(values))(*values),
                                   len(values))

        self.graph["answer"] = (answer, [("v", i) for i in range(n)])

    def reset(self):
        pass


# ------------------------------------------------------------ Cholesky

class CholWorkload:
    """Tile x's initial contents are key ("a", x) (data); task t's output,
    the new version of the tile it updates, is key ("t", t):
    (kernel, kind, previous version of that tile, tiles it reads...).
    Kernels update the tile in place and return it, as the C programs do;
    the edges order every update of a tile, as in the C programs."""

    def __init__(self, lib, workload, nb):
        self.lib, self.nb = lib, nb
        self.b = b = CHOL_BLOCK[workload]
        nt = lib.bk_chol_ntasks(nb)
        plan = (ctypes.c_int * (7 * nt))()
        if lib.bk_chol_plan(nb, plan) != nt:
            raise MemoryError("bk_chol_plan")
        ntiles = nb * (nb + 1) // 2
        self.tiles = [(ctypes.c_double * (b * b))() for _ in range(ntiles)]
        self.where = []  # tile number -> (i, j)
        for i in range(nb):
            for j in range(i + 1):
                self.where.append((i, j))
        task = lib.bk_chol_task
        null = ctypes.POINTER(ctypes.c_double)()

        def kernel(kind, out, a=null, bt=null):
            task(kind, out, a, bt, b)
            return out

        self.graph = {("a", x): self.tiles[x] for x in range(ntiles)}
        last = {}
        for t in range(nt):
            kind, _, _, _, out, in0, in1 = plan[7 * t: 7 * t + 7]
            args = [kind, last.get(out, ("a", out))]
            args += [last[x] for x in (in0, in1) if x >= 0]
            self.graph[("t", t)] = (kernel,) + tuple(args)
            last[out] = ("t", t)
        pd = ctypes.POINTER(ctypes.c_double)

        def answer(tiles):
            ptrs = (pd * len(tiles))(*[ctypes.cast(x, pd) for x in tiles])
            return lib.bk_chol_hash(ptrs, nb, b)

        self.graph["answer"] = (answer, [last.get(x, ("a", x))
                                         for x in range(ntiles)])

    def reset(self):
        for x, (i, j) in enumerate(self.where):
            self.lib.bk_chol_init_tile(self.tiles[x], self.nb, self.b, i, j)


# ------------------------------------------------------------ main

def add_verbose(p):
    p.add_argument("-v", dest="verbose", action="store_true")


def main(argv):
    a = parse_args(argv, __doc__, DEFAULT_SIZE, "libdagkern.so",
                   "BENCH_DAGKERN", add_verbose)
    prog = "dag-dask"
    try:
        import dask
        import dask.threaded
    except ImportError as e:
        print("%s: cannot import dask (%s): skipped" % (prog, e),
              file=sys.stderr)
        return SKIP
    if not a.lib or not os.path.exists(a.lib):
        print("%s: no libdagkern (--lib %s): skipped" % (prog, a.lib),
              file=sys.stderr)
        return SKIP
    lib = load_kernels(a.lib)
    if a.workload == "dag":
        work = DagWorkload(lib, a.size)
    else:
        work = CholWorkload(lib, a.workload, a.size)
    pool = concurrent.futures.ThreadPoolExecutor(a.workers)
    if a.verbose:
        print("%s: dask %s, %d tasks in the graph" % (
            prog, dask.__version__, len(work.graph)), file=sys.stderr)
    wrong = 0
    for r in range(a.runs):
        work.reset()
        t0 = time.perf_counter()
        check = dask.threaded.get(work.graph, "answer", pool=pool,
                                  num_workers=a.workers)
        t1 = time.perf_counter()
        print("RESULT name=%s impl=dask workers=%d size=%d seconds=%.6f "
              "check=%d rss_kb=%d" % (a.workload, a.workers, a.size,
                                      t1 - t0, check, peak_rss_kb()),
              flush=True)
        if a.expect is not None and check != a.expect:
            print("%s: WRONG: %s(%d) run %d answered %d, expected %d" % (
                prog, a.workload, a.size, r + 1, check, a.expect),
                file=sys.stderr)
            wrong = 1
    pool.shutdown()
    return wrong


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
