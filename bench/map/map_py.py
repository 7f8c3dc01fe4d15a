#!/usr/bin/python3
"""The map suite's seed workloads in Python: joblib, multiprocessing, Dask.

    map_py.py --lib BUILDDIR/bench/libmapgen.so --impl IMPL -k WORKLOAD
              [-n SIZE] [-w WORKERS] [-r RUNS] [-c CHECK]

The same command line and RESULT lines as the C programs
(bench/common/bench.h), so bench/run.py reads it like them. WORKLOAD is
one of pi, wordcount, json, join (bench/map/map_work.h has what they are);
IMPL one of

    py-serial       the chunks one after the other, in this process
    joblib          joblib.Parallel(n_jobs=-w, backend="loky")
    mp              multiprocessing.Pool(-w).map
    dask-threads    dask.delayed per chunk, the threaded scheduler
    dask-processes  the same on a process pool of -w (fork)
    all             each of the above in turn (the smoke test)

The work is done in Python, as a Python user writes it: splitmix64 in
Python for pi, str.split and collections.Counter for the word count,
json.loads for the records, dicts for the join. The inputs come from the
C generators (libmapgen, through ctypes), so every answer must equal the
serial C twin's. The items are cut into 4 chunks per worker, each a task;
a pool is made once per process, before the timed runs (the first run also
warms it up: run.py keeps the second). Moving the chunks to and from the
worker processes (pickling) is part of the time, as it is for a user.

Exit status: 0; 1 when -c was given and an answer differs; 2 for a bad
command line; 77 (meson's "skipped") when the package of IMPL cannot be
imported or the library is missing (with "all", those skipped are named on
stderr and the rest run).
"""

import collections
import ctypes
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "common"))
from benchprog import parse_args, peak_rss_kb  # noqa: E402

SKIP = 77
MASK = (1 << 64) - 1
IMPLS = ("py-serial", "joblib", "mp", "dask-threads", "dask-processes")
# Pure Python is 50 to 500 times slower than C: these are the sizes
# run.py gives it by default (the C programs' would take minutes).
DEFAULT_SIZE = {"pi": 200000, "wordcount": 50000, "json": 50000,
                "join": 50000}
JOIN_BITS = 8
S_PER_R = 4


def mix(x):
    """mk_mix of bench/common/mapkern.h."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def fnv1a(word):
    h = 0xCBF29CE484222325
    for b in word.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


# ---------------------------------------------------------------- the work
# Top-level functions: the process pools pickle them by name.

def pi_chunk(bounds):
    lo, hi = bounds
    hits = 0
    for i in range(lo, hi):
        h = mix(0x31415926 + i)
        x, y = h >> 33, (h >> 2) & 0x7FFFFFFF
        hits += x * x + y * y < (1 << 62)
    return hits


def wordcount_chunk(lines):
    counts = collections.Counter()
    for line in lines:
        counts.update(line.split())
    return counts


def json_chunk(lines):
    return sum(json.loads(line)["age"] for line in lines)


def partition_chunk(rows):
    """rows = (R's rows, S's rows) of one chunk -> each side's rows by
    partition (the key's top bits)."""
    shift = 64 - JOIN_BITS
    out = []
    for side in rows:
        parts = [[] for _ in range(1 << JOIN_BITS)]
        for row in side:
            parts[row[0] >> shift].append(row)
        out.append(parts)
    return out


def probe_chunk(parts):
    """parts = [(R's rows, S's rows) of one partition, ...] ->
    (matches, sum of both payloads)."""
    matches = total = 0
    for r_rows, s_rows in parts:
        table = dict(r_rows)
        for key, payload in s_rows:
            v = table.get(key)
            if v is not None:
                matches += 1
                total += v + payload
    return matches, total


def split(seq, k):
    """seq in k nearly equal slices, in order."""
    n = len(seq)
    return [seq[n * c // k: n * (c + 1) // k] for c in range(k)]


# ---------------------------------------------------------------- workloads
# Each holds its input, made before the timed runs; run(pmap, k) maps the
# work over k chunks with pmap(function, chunks) -> results, in order, and
# returns the answer.

class Pi:
    def __init__(self, lib, n):
        self.n = n

    def run(self, pmap, k):
        n = self.n
        return sum(pmap(pi_chunk, [(n * c // k, n * (c + 1) // k)
                                   for c in range(k)]))


def generated_lines(lib, what, n):
    size = lib.bmk_lines(what, n, None, 0)
    buf = ctypes.create_string_buffer(max(size, 1))
    if size < 0 or lib.bmk_lines(what, n, buf, size) != size:
        raise MemoryError("bmk_lines")
    return buf.raw[:size].decode().splitlines()


class WordCount:
    def __init__(self, lib, n):
        self.lines = generated_lines(lib, 0, n)

    def run(self, pmap, k):
        total = collections.Counter()
        for counts in pmap(wordcount_chunk, split(self.lines, k)):
            total.update(counts)
        return sum(mix(fnv1a(w) + c) for w, c in total.items()) & MASK


class Json:
    def __init__(self, lib, n):
        self.lines = generated_lines(lib, 1, n)

    def run(self, pmap, k):
        return sum(pmap(json_chunk, split(self.lines, k)))


class Join:
    def __init__(self, lib, n):
        u64 = ctypes.c_uint64
        rk, rp = (u64 * n)(), (u64 * n)()
        sk, sp = (u64 * (S_PER_R * n))(), (u64 * (S_PER_R * n))()
        lib.bmk_join_tables(n, rk, rp, sk, sp)
        self.r = list(zip(rk[:], rp[:]))
        self.s = list(zip(sk[:], sp[:]))

    def run(self, pmap, k):
        chunks = list(zip(split(self.r, k), split(self.s, k)))
        r_parts = [[] for _ in range(1 << JOIN_BITS)]
        s_parts = [[] for _ in range(1 << JOIN_BITS)]
        for r_of, s_of in pmap(partition_chunk, chunks):
            for p in range(1 << JOIN_BITS):
                r_parts[p] += r_of[p]
                s_parts[p] += s_of[p]
        pairs = list(zip(r_parts, s_parts))
        matches = total = 0
        for m, t in pmap(probe_chunk, split(pairs, k)):
            matches += m
            total += t
        return (matches * 0x9E3779B97F4A7C15 + total) & MASK


WORKLOADS = {"pi": Pi, "wordcount": WordCount, "json": Json, "join": Join}


# ---------------------------------------------------------------- the pools
# make_pmap(impl, workers) -> (pmap, close); ImportError when the package
# is missing.

def make_pmap(impl, workers):
    if impl == "py-serial":
        return (lambda f, chunks: [f(c) for c in chunks]), (lambda: None)
    if impl == "joblib":
        from joblib import Parallel, delayed
        par = Parallel(n_jobs=workers, backend="loky")
        par.__enter__()  # keep the workers between runs
        return ((lambda f, chunks: par(delayed(f)(c) for c in chunks)),
                lambda: par.__exit__(None, None, None))
    if impl == "mp":
        import multiprocessing
        pool = multiprocessing.Pool(workers)
        return ((lambda f, chunks: pool.map(f, chunks, chunksize=1)),
                lambda: (pool.close(), pool.join()))
    if impl.startswith("dask-"):
        import concurrent.futures
        import multiprocessing
        import dask
        if impl == "dask-threads":
            scheduler = "threads"
            pool = concurrent.futures.ThreadPoolExecutor(workers)
        else:
            scheduler = "processes"
            pool = concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("fork"))

        # One delayed call per chunk. The chunk itself is wrapped with
        # traverse=False: by default Dask walks every element of a list
        # argument looking for Dask objects in it (and dask.bag's
        # from_sequence hashes the whole input to name it), which here
        # costs more than the work.
        def pmap(f, chunks):
            tasks = [dask.delayed(f)(dask.delayed(c, traverse=False))
                     for c in chunks]
            return list(dask.compute(*tasks, scheduler=scheduler,
                                     pool=pool, num_workers=workers))
        return pmap, lambda: pool.shutdown()
    raise ValueError(impl)


def run_impl(impl, work, a):
    """Time a.runs runs; returns 1 when an answer differs from -c, SKIP
    when the implementation's package is missing."""
    try:
        pmap, close = make_pmap(impl, a.workers)
    except ImportError as e:
        print("map-py: %s: cannot import %s: skipped" % (impl, e.name),
              file=sys.stderr)
        return SKIP
    workers = 1 if impl == "py-serial" else a.workers
    wrong = 0
    for r in range(a.runs):
        t0 = time.perf_counter()
        check = work.run(pmap, 4 * workers)
        t1 = time.perf_counter()
        print("RESULT name=%s impl=%s workers=%d size=%d seconds=%.6f "
              "check=%d rss_kb=%d" % (a.workload, impl, workers, a.size,
                                      t1 - t0, check, peak_rss_kb()),
              flush=True)
        if a.expect is not None and check != a.expect:
            print("map-py: WRONG: %s %s(%d) run %d answered %d, expected %d"
                  % (impl, a.workload, a.size, r + 1, check, a.expect),
                  file=sys.stderr)
            wrong = 1
    close()
    return wrong


def add_impl(p):
    p.add_argument("--impl", required=True, choices=IMPLS + ("all",))


def load_lib(path):
    lib = ctypes.CDLL(path)
    lib.bmk_lines.argtypes = [ctypes.c_int, ctypes.c_long, ctypes.c_char_p,
                              ctypes.c_long]
    lib.bmk_lines.restype = ctypes.c_long
    p64 = ctypes.POINTER(ctypes.c_uint64)
    lib.bmk_join_tables.argtypes = [ctypes.c_long, p64, p64, p64, p64]
    lib.bmk_join_tables.restype = None
    return lib


def main(argv):
    a = parse_args(argv, __doc__, DEFAULT_SIZE, "libmapgen.so",
                   "BENCH_MAPGEN", add_impl)
    if not a.lib or not os.path.exists(a.lib):
        print("map-py: no libmapgen (--lib %s): skipped" % a.lib,
              file=sys.stderr)
        return SKIP
    work = WORKLOADS[a.workload](load_lib(a.lib), a.size)
    if a.impl != "all":
        return run_impl(a.impl, work, a)
    status = [run_impl(impl, work, a) for impl in IMPLS]
    return 1 if 1 in status else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
