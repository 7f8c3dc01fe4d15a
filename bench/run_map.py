"""The `map` suite of bench/run.py (see bench/README.md, "The map suite").

    python3 bench/run.py --build-dir BUILDDIR --suite map [--quick]

weft's parallel map against OpenMP worksharing loops (static, dynamic,
guided) and oneTBB's parallel_for/parallel_reduce:

- items of one fixed cost (10 ns, 100 ns, 1 us, 100 us) and of Pareto-
  distributed cost, with weft_for_range (adaptive batch), weft_for (one
  call per item, adaptive) and weft_for_range at every fixed batch of a
  sweep, to see how near the adaptive batch comes to the best fixed one;
- four seed workloads (Monte Carlo pi, word count, JSON records, a hash
  join) against their serial twins;
- the seed workloads in Python (bench/map/map_py.py: joblib, multiprocessing,
  Dask) at smaller sizes, against the C serial twin and weft at the same
  size: what a Python user pays.

As in the other suites, every point is RUNS processes, interleaved
round-robin with the other points of its workload, each running the
workload twice and keeping the second; every answer must equal the serial
twin's at the same size. Python standard library only.
"""

import os

from benchlib import Section, fmt_time, ratio
from run_tasks import SERIAL, Point, Suite, debian_python, find_exe, fmt_us

HERE = os.path.dirname(os.path.abspath(__file__))

# (name, full size, quick size): -n is the number of items.
ITEM_WORKLOADS = [
    ("uniform-10ns", 10000000, 2000000),
    ("uniform-100ns", 1000000, 200000),
    ("uniform-1us", 100000, 20000),
    ("uniform-100us", 1000, 200),
    ("pareto", 400000, 80000),
]
# (name, full, quick, Python full, Python quick, what -n counts)
SEED_WORKLOADS = [
    ("pi", 100000000, 10000000, 200000, 50000, "points"),
    ("wordcount", 500000, 100000, 50000, 10000, "lines"),
    ("json", 1000000, 100000, 50000, 20000, "records"),
    ("join", 2000000, 200000, 50000, 20000, "rows of R"),
]
WEFT = "weft"
ITEM_IMPLS = ["weft", "weft-for", "omp-static", "omp-dynamic", "omp-guided",
              "tbb"]
# OpenMP's dynamic schedule hands out one item at a time: on pi's 10^8
# points of 2 ns that takes 1.5 to 3 s a run (most of a minute in all)
# and shows nothing new, so the seeds have static (the default) and
# guided.
SEED_IMPLS = ["weft", "omp-static", "omp-guided", "tbb"]
PY_IMPLS = ["py-serial", "joblib", "mp", "dask-threads", "dask-processes"]
PY = "python"  # the series of the Python peers
# Fixed batches of the sweep; those above n / (2 x workers) are left out
# (one worker would take the whole range in one or two batches).
BATCHES = [1, 4, 16, 64, 256, 1024, 4096, 16384]
# The targets for weft on 2 cores.
TARGETS = {
    "adaptive": "<= 1.05", "pareto": "<= 1.00", "seed": ">= 1.85",
    "tiny": ">= 0.95",
}


def batch_impl(b):
    return "weft-b%d" % b


class MapSuite(Suite):
    name = "map"
    heading = "weft parallel map: uniform and skewed items, seed workloads"
    max_timeout = 120

    def __init__(self, args):
        super().__init__(args)
        items = [w for w, *_ in ITEM_WORKLOADS]
        seeds = [w for w, *_ in SEED_WORKLOADS]
        for impl in [SERIAL] + ITEM_IMPLS:
            both = impl == SERIAL or impl in SEED_IMPLS
            self.add_built("map-", impl, items + seeds if both else items)
        if WEFT in self.programs:
            for b in BATCHES:
                self.add_program(batch_impl(b), self.programs[WEFT].cmd
                                 + ["-b", str(b)], items)
        lib = find_exe(args.build_dir, "libmapgen.so")
        script = os.path.join(HERE, "map", "map_py.py")
        if lib is None:
            self.missing.append("the Python peers (no libmapgen.so)")
        for impl in PY_IMPLS if lib else []:
            self.add_program(impl, [debian_python(), script, "--lib", lib,
                                    "--impl", impl], seeds)

    def size(self, workload, py=False):
        for name, full, quick, *rest in ITEM_WORKLOADS + SEED_WORKLOADS:
            if name == workload:
                if py:
                    return rest[1] if self.args.quick else rest[0]
                return quick if self.args.quick else full
        raise KeyError(workload)

    def batches(self, n):
        return [b for b in BATCHES if b * 2 * self.pw <= n]

    @property
    def py_rounds(self):
        """Python processes take a second each to start: fewer rounds."""
        return 1 if self.args.quick else min(self.args.runs, 3)

    def run(self):
        pw = self.pw
        for workload, *_ in ITEM_WORKLOADS:
            n = self.size(workload)
            self.measure([Point(SERIAL, workload, n, 1)]
                         + [Point(i, workload, n, w)
                            for i in ITEM_IMPLS for w in self.ws]
                         + [Point(batch_impl(b), workload, n, pw)
                            for b in self.batches(n)])
        for workload, *_ in SEED_WORKLOADS:
            n = self.size(workload)
            self.measure([Point(SERIAL, workload, n, 1)]
                         + [Point(i, workload, n, w)
                            for i in SEED_IMPLS for w in self.ws])
        for workload, *_ in SEED_WORKLOADS:
            n = self.size(workload, py=True)
            self.measure([Point(SERIAL, workload, n, 1, PY),
                          Point(WEFT, workload, n, pw, PY),
                          Point(PY_IMPLS[0], workload, n, 1, PY)]
                         + [Point(i, workload, n, pw, PY)
                            for i in PY_IMPLS[1:]], rounds=self.py_rounds)

    # -- tables

    def label(self, workload, n):
        units = dict((w, u) for w, *_, u in SEED_WORKLOADS)
        return "%s(%d %s)" % (workload, n, units.get(workload, "items"))

    def ratio_rows(self, workloads, impls):
        """The main tables' rows: T(w), T1/Ts, Ts/Tw, the cost per item
        over the serial twin's on one worker, T(pw) over weft's."""
        ws, pw = self.ws, self.pw
        rows = []
        for workload in workloads:
            n = self.size(workload)
            label = self.label(workload, n)
            ts = self.med(workload, SERIAL, 1)
            for impl in [SERIAL] + impls:
                if not self.has(impl, workload):
                    continue
                rows.append([label, impl] + self.ratio_row(
                    workload, impl, n, ts, ws, pw))
                label = ""
        return rows

    def ratio_row(self, workload, impl, n, ts, ws, pw):
        if impl == SERIAL:
            s = self.get(workload, SERIAL, 1)
            blank = [""] * (len(ws) - 1 + 1 + len([w for w in ws if w != 1]))
            return ([s.text() if s else "-"] + blank
                    + ["%s /item" % fmt_ns(ts / n) if ts else "-", ""])
        t = {w: self.med(workload, impl, w) for w in ws}
        row = [self.get(workload, impl, w).text() if t[w] else "-"
               for w in ws]
        row.append(ratio(t.get(1), ts))
        row += [ratio(ts, t[w]) for w in ws if w != 1]
        row.append(fmt_ns((t[1] - ts) / n) if t.get(1) and ts else "-")
        weft = self.med(workload, WEFT, pw)
        row.append("" if impl == WEFT else ratio(t[pw], weft))
        return row

    def ratio_header(self):
        ws, pw = self.ws, self.pw
        return (["workload", "impl"] + ["T(%d)" % w for w in ws] + ["T1/Ts"]
                + ["Ts/T%d" % w for w in ws if w != 1]
                + ["ns/item @1 - Ts", "T%d/weft" % pw])

    def ratio_notes(self):
        pw = self.pw
        return [
            "T(w): median of %d processes at w workers [spread: (max - min) "
            "/ median]. Ts: the serial twin (the plain loop)."
            % self.args.runs,
            "T1/Ts: the cost of the scheduling on one worker; Ts/Tw: speedup "
            "over the serial twin (2 at most on 2 cores). ns/item @1 - Ts = "
            "(T1 - Ts) / items: the scheduling cost per item (the serial "
            "row: the item's own cost).",
            "T%d/weft = this impl's time / weft's at %d workers (> 1: weft "
            "is faster)." % (pw, pw),
        ]

    def items_section(self):
        rows = self.ratio_rows([w for w, *_ in ITEM_WORKLOADS], ITEM_IMPLS)
        notes = self.ratio_notes() + [
            "weft: weft_for_range, adaptive batch; weft-for: weft_for (one "
            "call per item), adaptive; omp-*: parallel for with a "
            "reduction, schedule(static / dynamic / guided), default "
            "chunks; tbb: parallel_reduce, auto_partitioner.",
            "uniform-X: every item a chain of multiply/xor-shift steps "
            "costing about X here; pareto: item costs Pareto-distributed "
            "(alpha 1.5, 100 ns to 100 us, mean about 400 ns here), "
            "scattered.",
        ]
        return Section("Items of uniform and of skewed cost",
                       self.ratio_header(), rows,
                       notes + self.missing_notes())

    def seeds_section(self):
        rows = self.ratio_rows([w for w, *_ in SEED_WORKLOADS], SEED_IMPLS)
        notes = self.ratio_notes() + [
            "weft: weft_map_reduce (pi, wordcount with a hash table per "
            "worker, json), weft_for_range over chunks then weft_map over "
            "partitions (join); omp-*: parallel for (wordcount: a table per "
            "thread, merged under critical; static and guided schedules); "
            "tbb: parallel_reduce / "
            "parallel_for, enumerable_thread_specific tables.",
            "Inputs (text, records, tables) are generated before the timed "
            "runs; a run includes the merge and the answer.",
        ]
        return Section("Seed workloads", self.ratio_header(), rows,
                       notes + self.missing_notes())

    def sweep_section(self):
        pw = self.pw
        header = (["workload"] + ["B=%d" % b for b in BATCHES]
                  + ["best fixed", "adaptive", "adaptive/best",
                     "adaptive batches"])
        rows = []
        for workload, *_ in ITEM_WORKLOADS:
            n = self.size(workload)
            t = {b: self.med(workload, batch_impl(b), pw)
                 for b in self.batches(n)}
            row = [self.label(workload, n)]
            row += [fmt_time(t[b]) if t.get(b) else "" for b in BATCHES]
            best = min((b for b in t if t[b]), key=t.get, default=None)
            ad = self.get(workload, WEFT, pw)
            row.append("B=%d: %s" % (best, fmt_time(t[best]))
                       if best else "-")
            row.append(ad.text() if ad else "-")
            row.append(ratio(ad.median if ad else None,
                             t[best] if best else None))
            row.append(batch_range(ad))
            rows.append(row)
        notes = [
            "weft_for_range at %d workers with a fixed batch B (-b B; "
            "batches above n / %d are left out) and with the adaptive one, "
            "medians of %d processes measured round-robin with the table "
            "above. adaptive/best: target %s."
            % (pw, 2 * pw, self.args.runs, TARGETS["adaptive"]),
            "adaptive batches: the mean and the largest batch the adaptive "
            "run chose (medians over the processes).",
        ]
        return Section("Fixed batch against adaptive (weft, %d workers)"
                       % pw, header, rows, notes)

    def python_section(self):
        pw = self.pw
        header = ["workload", "impl", "workers", "T", "us/item",
                  "T/Ts", "T/weft", "py-serial/T"]
        rows = []
        for workload, *_ in SEED_WORKLOADS:
            n = self.size(workload, py=True)
            label = self.label(workload, n)
            ts = self.med(workload, SERIAL, 1, PY)
            tw = self.med(workload, WEFT, pw, PY)
            tp = self.med(workload, PY_IMPLS[0], 1, PY)
            for impl in [SERIAL, WEFT] + PY_IMPLS:
                w = 1 if impl in (SERIAL, PY_IMPLS[0]) else pw
                if not self.has(impl, workload):
                    continue
                s = self.get(workload, impl, w, PY)
                t = s.median if s else None
                rows.append([label, impl, w, s.text() if s else "-",
                             fmt_us(t / n * 1e6) if t else "-",
                             ratio(t, ts), ratio(t, tw),
                             ratio(tp, t) if impl in PY_IMPLS else ""])
                label = ""
        notes = [
            "Measured as a series of its own, at sizes pure Python runs in "
            "well under a second: the C serial twin and weft (%d workers) "
            "beside bench/map/map_py.py; %d process(es) per point."
            % (pw, self.py_rounds),
            "T/Ts: time (= time per item) over the C serial twin's at the "
            "same size; T/weft: over weft's; py-serial/T: speedup over the "
            "same Python code run serially.",
            "Python: the items in 4 chunks per worker, one task each; "
            "joblib loky, multiprocessing.Pool.map, dask.delayed with the "
            "threaded scheduler and with a process pool; pools made before "
            "the timed runs, pickling the chunks both ways timed.",
        ]
        return Section("Python peers, at smaller sizes", header, rows,
                       notes + self.missing_notes())

    def targets_section(self):
        pw = self.pw
        rows = []
        for workload, *_ in ITEM_WORKLOADS:
            n = self.size(workload)
            t = [self.med(workload, batch_impl(b), pw)
                 for b in self.batches(n)]
            t = [x for x in t if x]
            rows.append(target_row(
                "%s adaptive / best fixed @%d" % (workload, pw),
                self.med(workload, WEFT, pw), min(t) if t else None,
                TARGETS["adaptive"]))
        rows.append(target_row(
            "uniform-10ns omp-static / weft @%d (speed vs OpenMP static)"
            % pw, self.med("uniform-10ns", "omp-static", pw),
            self.med("uniform-10ns", WEFT, pw), TARGETS["tiny"]))
        peers = [self.med("pareto", i, pw)
                 for i in ("omp-dynamic", "omp-guided", "tbb")]
        peers = [x for x in peers if x]
        rows.append(target_row(
            "pareto weft / best of omp-dynamic, omp-guided, tbb @%d" % pw,
            self.med("pareto", WEFT, pw), min(peers) if peers else None,
            TARGETS["pareto"]))
        for workload, *_ in SEED_WORKLOADS:
            rows.append(target_row(
                "%s Ts/T%d" % (workload, pw), self.med(workload, SERIAL, 1),
                self.med(workload, WEFT, pw), TARGETS["seed"]))
        return Section("weft against its targets (2-core figures)",
                       ["metric", "weft", "target", "met"], rows,
                       ["Targets from the issue, for weft on 2 cores."])

    def sections(self):
        out = [self.items_section(), self.sweep_section(),
               self.seeds_section()]
        if any(self.has(i) for i in PY_IMPLS) or self.skipped:
            out.append(self.python_section())
        return out + [self.targets_section()]


def fmt_ns(seconds):
    v = seconds * 1e9
    return "%.1f" % v if abs(v) < 100 else "%.0f" % v


def batch_range(sample):
    if sample is None or sample.extra("batch_mean") is None:
        return "-"
    return "%.0f-%.0f" % (sample.extra("batch_mean"),
                          sample.extra("batch_max"))


def target_row(metric, num, den, target):
    """metric, num / den, target ("<= x" or ">= x"), whether it is met."""
    if not num or not den:
        return [metric, "-", target, "-"]
    v = round(num / den, 2)  # judged as printed
    op, bound = target.split()
    met = v <= float(bound) if op == "<=" else v >= float(bound)
    return [metric, "%.2f" % v, target, "yes" if met else "no"]
