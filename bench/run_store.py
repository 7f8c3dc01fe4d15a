"""The `store` suite of bench/run.py: weft's shared-memory object store.

    python3 bench/run.py --build-dir BUILDDIR --suite store [--quick]
    python3 bench/run_store.py --build-dir BUILDDIR [--quick] [--runs N]

Every figure is a ratio whose two sides are measured in the same process
(bench/store/store_bench.c, store-weft), reported as the median over RUNS
processes with the spread:

- large put (create + memcpy + seal) of 1 MiB to 256 MiB against a plain
  memcpy into pre-faulted memory;
- small-object create+seal and get+release, operations per second, from 1
  and from 2 processes at once, beside one Unix-socket round trip (what a
  Plasma-style store pays per operation);
- cross-process get latency (p50, p99) of a sealed object against a 1-byte
  AF_UNIX request/response with a server process, timed the same way;
- spill (pinned objects pushed out through io_uring) and restore (get of a
  spilled object) throughput against a raw sequential write and read of
  the same bytes in the same directory.

store-serial (the baselines alone) is the suite's serial twin: its answers
must equal store-weft's. Python standard library only.
"""

import argparse
import os
import statistics
import sys

sys.dont_write_bytecode = True
from benchlib import (Section, cpu_busy_fraction, machine_line,  # noqa
                      render_markdown, render_text)
from run_tasks import SERIAL, Point, Suite, run_suite  # noqa

WEFT = "weft"
MIB = 1 << 20
# (size in bytes, quick?)
PUT_SIZES = [(1 * MIB, True), (16 * MIB, True), (64 * MIB, True),
             (256 * MIB, False)]
# (workload, full n, quick n)
SMALL = [("create-seal", 200000, 50000), ("get-release", 2000000, 500000)]
XGET = (100000, 20000)
SPILL_MIB = (256, 64)
TARGETS = {
    "put": ">= 0.90", "create-seal": ">= 1.0", "get-release": ">= 5.0",
    "xget": "<= 1000", "spill": ">= 0.80",
}


def per_run(sample, num, den):
    """Median and spread (%) of num/den computed in each run."""
    if sample is None:
        return None, 0.0
    v = [r[num] / r[den] for r in sample.results
         if isinstance(r.get(num), (int, float)) and r.get(den)]
    if not v:
        return None, 0.0
    m = statistics.median(v)
    return m, ((max(v) - min(v)) / m * 100 if m else 0.0)


def fmt_r(m, spread):
    return "-" if m is None else "%.2f [%.0f%%]" % (m, spread)


def met(value, target):
    if value is None:
        return "-"
    op, bound = target.split()
    ok = value >= float(bound) if op == ">=" else value <= float(bound)
    return "yes" if ok else "no"


class StoreSuite(Suite):
    name = "store"
    heading = "weft object store: puts, small operations, latency, spilling"
    max_timeout = 120

    def __init__(self, args):
        super().__init__(args)
        loads = ["put"] + [w for w, *_ in SMALL] + ["xget", "spill"]
        for impl in (SERIAL, WEFT):
            self.add_built("store-", impl, loads, sub="store")

    def q(self, full, quick):
        return quick if self.args.quick else full

    def put_sizes(self):
        return [s for s, quick in PUT_SIZES if quick or not self.args.quick]

    def run(self):
        for size in self.put_sizes():
            # one series per size: a point's key does not hold the size
            series = "put-%d" % size
            self.measure([Point(SERIAL, "put", size, 1, series),
                          Point(WEFT, "put", size, 1, series)])
        for workload, full, quick in SMALL:
            n = self.q(full, quick)
            self.measure([Point(SERIAL, workload, n, 1)]
                         + [Point(WEFT, workload, n, w) for w in (1, 2)])
        n = self.q(*XGET)
        self.measure([Point(SERIAL, "xget", n, 1), Point(WEFT, "xget", n, 1)])
        n = self.q(*SPILL_MIB)
        self.measure([Point(SERIAL, "spill", n, 1),
                      Point(WEFT, "spill", n, 1)])

    # -- tables

    def put_section(self):
        rows = []
        for size in self.put_sizes():
            s = self._find("put", size, 1)
            m, sp = per_run(s, "base_s", "seconds")
            rows.append(["%d MiB" % (size // MIB),
                         "%.2f ms" % (s.median * 1e3) if s else "-",
                         "%.2f ms" % (s.extra("base_s") * 1e3) if s else "-",
                         "%.2f GB/s" % (size / s.median / 1e9) if s else "-",
                         fmt_r(m, sp), TARGETS["put"],
                         met(m, TARGETS["put"])])
        return Section(
            "Large put against memcpy",
            ["size", "put", "memcpy", "put rate", "memcpy/put", "target",
             "met"], rows,
            ["put: weft_store_create + memcpy + weft_store_seal into a store "
             "pre-faulted at open; memcpy: the same copy into pre-faulted "
             "anonymous memory; medians of 5 in each process, then of %d "
             "processes [spread of the per-process ratio]." % self.args.runs])

    def _find(self, workload, size, workers):
        """weft's sample of a point (keys do not hold the size)."""
        for p_key, s in self.samples.items():
            series, w, impl, ws = p_key
            if w == workload and impl == WEFT and ws == workers and \
                    s.results[0].get("size") == size:
                return s
        return None

    def small_section(self):
        rows = []
        for workload, full, quick in SMALL:
            n = self.q(full, quick)
            for w in (1, 2):
                s = self._find(workload, n, w)
                per = s.extra("per_op_ns") if s else None
                base = s.extra("base_ns") if s else None
                mops = s.extra("mops") if s else None
                proc = s.extra("mops_proc") if s else None
                target = TARGETS[workload]
                value = proc if workload == "create-seal" else mops
                rows.append([workload, w,
                             "%.2f" % mops if mops else "-",
                             "%.2f" % proc if proc else "-",
                             "%.0f" % per if per else "-",
                             "%.0f" % base if base else "-",
                             "%.0f" % (base / per) if per and base else "-",
                             target + (" per process" if workload ==
                                       "create-seal" else " total"),
                             met(value, target)])
        return Section(
            "Small objects (64 B): operations per second",
            ["workload", "procs", "Mops/s", "Mops/s per proc", "ns/op",
             "socket RT ns", "RT/op", "target (Mops/s)", "met"], rows,
            ["procs processes at once on one store, each with its own "
             "handle; Mops/s = all of them together; ns/op per process. "
             "socket RT: one AF_UNIX round trip with a server process, "
             "measured in the same process: what a Plasma-style store pays "
             "per operation (RT/op: how many of our operations fit in "
             "one).",
             "create-seal: a fresh id each time (never deleted in the run); "
             "get-release: over 1024 sealed objects, lock-free path. Medians "
             "of %d processes." % self.args.runs])

    def xget_section(self):
        n = self.q(*XGET)
        s = self._find("xget", n, 1)
        rows = []
        if s:
            rows.append(["weft get + release", "%.0f" % s.extra("p50_ns"),
                         "%.0f" % s.extra("p99_ns"), TARGETS["xget"],
                         met(s.extra("p50_ns"), TARGETS["xget"])])
            rows.append(["AF_UNIX 1-byte round trip",
                         "%.0f" % s.extra("base_p50_ns"),
                         "%.0f" % s.extra("base_p99_ns"), "", ""])
            rows.append(["ratio (socket / weft)",
                         "%.0f" % (s.extra("base_p50_ns") /
                                   max(s.extra("p50_ns"), 1)),
                         "%.0f" % (s.extra("base_p99_ns") /
                                   max(s.extra("p99_ns"), 1)), "", ""])
        return Section(
            "Cross-process get latency (ns)",
            ["operation", "p50", "p99", "target p50", "met"], rows,
            ["A second process gets and releases an object the first one "
             "sealed, %d times, each timed with clock_gettime (its ~20 ns "
             "included); the socket baseline is timed the same way in the "
             "same process. Medians of %d processes." % (n, self.args.runs)])

    def spill_section(self):
        n = self.q(*SPILL_MIB)
        s = self._find("spill", n, 1)
        rows = []
        if s:
            m, sp = per_run(s, "base_s", "seconds")
            b = s.extra("bytes") or n * MIB
            rows.append(["spill", "%.0f MB/s" % (b / s.median / 1e6),
                         "%.0f MB/s" % (b / s.extra("base_s") / 1e6),
                         fmt_r(m, sp), TARGETS["spill"],
                         met(m, TARGETS["spill"])])
            m, sp = per_run(s, "read_s", "restore_s")
            rows.append(["restore", "%.0f MB/s" % (b / s.extra("restore_s")
                                                   / 1e6),
                         "%.0f MB/s" % (b / s.extra("read_s") / 1e6),
                         fmt_r(m, sp), "", ""])
        return Section(
            "Spill and restore against raw file I/O",
            ["operation", "weft", "raw", "raw time / weft time", "target",
             "met"], rows,
            ["spill: %d MiB of pinned 4 MiB objects pushed out of a store a "
             "quarter that size (creates that spill, io_uring writes in "
             "batches of up to 64 MiB per file); raw: write() of the same "
             "number of bytes, from pre-faulted memory of that size (not "
             "one cache-hot buffer), in 4 MiB pieces to a file in the same "
             "directory. restore: get of every spilled object (read back "
             "through io_uring); raw: pread() of the raw file. sync() "
             "before every timed section of either side; no fsync inside. "
             "Each process runs 3 passes of both, alternating, and keeps "
             "each side's fastest (on the development VM a pass whose new "
             "page-cache pages the host had to fault in ran 4-8x slower, "
             "at random, on either side); medians over processes." % n])

    def sections(self):
        return [self.put_section(), self.small_section(),
                self.xget_section(), self.spill_section()] + (
            [Section("Notes", ["note"], [[x] for x in self.missing_notes()])]
            if self.missing_notes() else [])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",")]
    if args.quick:
        args.runs = min(args.runs, 3)
    busy = cpu_busy_fraction()
    title = machine_line(args)
    if busy is not None and busy > 0.1:
        title += ("\nWARNING: %.0f%% of the CPU was busy before the runs"
                  % (busy * 100))
    heading, sections, wrong = run_suite(StoreSuite, args)
    print(render_text(title, sections, wrong))
    path = os.path.join(args.build_dir, "bench-results-store.md")
    with open(path, "w") as f:
        f.write(render_markdown(heading, title, sections, wrong))
    print("\nmarkdown: " + path)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
