"""The `future` and `dag` suites of bench/run.py (see bench/README.md).

    python3 bench/run.py --build-dir BUILDDIR --suite future|dag [--quick]

future: empty futures created and collected inside tasks and from an
outside thread (tasks per second), and the round trip submit -> wait from
an outside thread with parked and with spinning workers; weft against
oneTBB task_group (and task_arena::enqueue) and OpenMP tasks.

dag: dataflow with real work, a tiled Cholesky and a random DAG of a
million nodes; weft (prebuilt graph, and weft_submit_after) against oneTBB
flow::graph, OpenMP `depend` tasks and Dask (at smaller sizes).

As in the fork-join suite, every point is RUNS processes, interleaved
round-robin with the other points of its workload, each running the
workload twice and keeping the second; every answer must equal the serial
twin's at the same size. Python standard library only.
"""

import os

from benchlib import (Failure, Sample, Section, Skipped, note, ratio,
                      run_results)

HERE = os.path.dirname(os.path.abspath(__file__))
SERIAL = "serial"


def find_exe(build_dir, name):
    for sub in ("bench", "."):
        path = os.path.join(build_dir, sub, name)
        if os.access(path, os.X_OK):
            return path
    return None


def debian_python():
    """Debian's python3 (the one python3-dask serves), else this one."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) \
        else (os.environ.get("PYTHON") or "python3")


class Program:
    def __init__(self, impl, cmd, workloads):
        self.impl, self.cmd, self.workloads = impl, cmd, set(workloads)


class Point:
    """One program on one workload at one size and worker count; `series`
    keeps apart points measured as separate groups (the Dask sizes)."""

    def __init__(self, impl, workload, size, workers, series="main"):
        self.impl, self.workload, self.size = impl, workload, size
        self.workers, self.series = workers, series

    def key(self):
        return (self.series, self.workload, self.impl, self.workers)

    def label(self):
        return "%s %s(%s) -w %d" % (self.impl, self.workload, self.size,
                                    self.workers)


class Suite:
    """Runs points, keeps their samples, checks their answers."""
    name = heading = ""
    # Seconds a process of this suite may take at most (--timeout can
    # only lower it): every program finishes in a few seconds, so a
    # process that takes this long hangs; do not wait the default 300 s.
    max_timeout = 120

    def __init__(self, args):
        self.args = args
        self.samples = {}  # Point.key() -> Sample
        self.answer = {}   # (workload, size) -> the serial twin's check
        self.wrong = []
        self.skipped = {}  # impl -> why
        self.programs = {}
        self.missing = []

    def add_program(self, impl, cmd, workloads):
        if cmd is None:
            self.missing.append(impl)
        else:
            self.programs[impl] = Program(impl, cmd, workloads)

    def add_built(self, prefix, impl, workloads, sub=None):
        """The build's program PREFIX-IMPL as IMPL, or its file name among
        the missing. sub: the folder a subsystem's own meson.build builds
        its programs in (bench/SUB/), looked in first."""
        name = prefix + impl
        exe = (sub and find_exe(self.args.build_dir,
                                os.path.join(sub, name))) or \
            find_exe(self.args.build_dir, name)
        self.add_program(name if exe is None else impl,
                         [exe] if exe else None, workloads)

    def has(self, impl, workload=None):
        p = self.programs.get(impl)
        return p is not None and impl not in self.skipped and (
            workload is None or workload in p.workloads)

    def measure(self, points, rounds=None):
        """RUNS rounds (or `rounds`) over the points, each run a process of
        its own; the points of one call share whatever the machine did
        meanwhile. The serial points are checked first: they set the
        answers."""
        points = [p for p in points if self.has(p.impl, p.workload)]
        results = [[] for _ in points]
        failed = set()
        rounds = rounds or self.args.runs
        for r in range(rounds):
            note("%s %s: round %d of %d" % (
                self.name, points[0].workload if points else "",
                r + 1, rounds))
            for i, p in enumerate(points):
                if i in failed or p.impl in self.skipped:
                    continue
                try:
                    results[i].append(self.run_point(p))
                except Skipped as e:
                    self.skipped[p.impl] = str(e)
                    note("%s skipped: %s" % (p.impl, e))
                except Failure as e:
                    failed.add(i)
                    self.wrong.append(str(e))
                    note("FAILED: " + str(e))
        order = sorted(range(len(points)),
                       key=lambda i: points[i].impl != SERIAL)
        for i in order:
            p = points[i]
            if i in failed or not results[i]:
                continue
            s = Sample(results[i])
            self.samples[p.key()] = s
            self.verify(p, s)

    def run_point(self, p):
        cmd = self.programs[p.impl].cmd + [
            "-k", p.workload, "-n", str(p.size), "-w", str(p.workers),
            "-r", "2"]
        return run_results(cmd, 2,
                           min(self.args.timeout, self.max_timeout))[1]

    def verify(self, p, s):
        k = (p.workload, p.size)
        if p.impl == SERIAL and len(s.checks) == 1:
            self.answer[k] = next(iter(s.checks))
        want = self.answer.get(k)
        if len(s.checks) != 1 or (want is not None and s.checks != {want}):
            msg = "WRONG: %s answered %s, serial %s" % (
                p.label(), sorted(s.checks), want)
            self.wrong.append(msg)
            note(msg)

    def get(self, workload, impl, workers, series="main"):
        return self.samples.get((series, workload, impl, workers))

    def med(self, workload, impl, workers, series="main"):
        s = self.get(workload, impl, workers, series)
        return s.median if s else None

    @property
    def ws(self):
        return self.args.workers

    @property
    def pw(self):
        """Worker count of the peer comparisons: 2, else the largest."""
        return 2 if 2 in self.ws else self.ws[-1]

    def missing_notes(self):
        out = []
        if self.missing:
            out.append("Not built, left out: " + ", ".join(self.missing)
                       + ".")
        for impl, why in sorted(self.skipped.items()):
            out.append("%s skipped: %s" % (impl, why.splitlines()[-1]))
        return out


def fmt_us(v):
    if v is None:
        return "-"
    return "%.2f" % v if v < 10 else "%.1f" % v if v < 100 else "%.0f" % v


# ------------------------------------------------------------ futures

# (name, full size, quick size). rt-* sizes are round trips.
FUTURE_WORKLOADS = [
    ("inside-flat", 2000000, 200000),
    ("inside-tree", 2000000, 200000),
    ("outside", 1000000, 100000),
    ("rt-parked", 300, 100),
    ("rt-spin", 100000, 10000),
]
THROUGHPUT = ("inside-flat", "inside-tree", "outside")
ROUNDTRIP = ("rt-parked", "rt-spin")
FUTURE_PEERS = ["weft", "tbb", "tbb-enqueue", "omp", "handoff"]
FUTURE_SUPPORTS = {
    "serial": THROUGHPUT + ROUNDTRIP, "weft": THROUGHPUT + ROUNDTRIP,
    "tbb": THROUGHPUT + ROUNDTRIP, "tbb-enqueue": ROUNDTRIP,
    "handoff": ROUNDTRIP,
    "omp": ("inside-flat", "inside-tree"),
}
# The targets for weft on 2 cores.
FUTURE_TARGETS = {
    "inside": ">= 10 M/s", "rt-parked": "<= 5 us", "rt-spin": "<= 1 us",
}


class FutureSuite(Suite):
    name = "future"
    heading = "weft futures: throughput and round trips"
    max_timeout = 60

    def __init__(self, args):
        super().__init__(args)
        for impl in [SERIAL] + FUTURE_PEERS:
            self.add_built("future-", impl, FUTURE_SUPPORTS[impl])

    def size(self, workload):
        for name, full, quick in FUTURE_WORKLOADS:
            if name == workload:
                return quick if self.args.quick else full
        raise KeyError(workload)

    def run(self):
        for workload, *_ in FUTURE_WORKLOADS:
            n = self.size(workload)
            self.measure([Point(SERIAL, workload, n, 1)] +
                         [Point(impl, workload, n, w)
                          for impl in FUTURE_PEERS for w in self.ws])

    # -- tables

    def throughput_section(self):
        ws, pw = self.ws, self.pw
        header = ["workload", "impl"] + ["T(%d)" % w for w in ws]
        header += ["M/s @%d" % w for w in ws]
        header += ["ns/task @1", "T1/Ts", "T%d/weft" % pw]
        rows = []
        for workload in THROUGHPUT:
            n = self.size(workload)
            label = "%s(%d)" % (workload, n)
            ts = self.med(workload, SERIAL, 1)
            for impl in [SERIAL] + FUTURE_PEERS:
                if not self.has(impl, workload):
                    continue
                row = [label, impl]
                label = ""
                if impl == SERIAL:
                    s = self.get(workload, SERIAL, 1)
                    row += [s.text() if s else "-"] + [""] * (len(ws) - 1)
                    row += [("%.0f" % (n / ts / 1e6)) if ts else "-"]
                    row += [""] * (len(ws) - 1)
                    row += ["%.1f /call" % (ts / n * 1e9) if ts else "-",
                            "", ""]
                    rows.append(row)
                    continue
                t = {w: self.med(workload, impl, w) for w in ws}
                for w in ws:
                    s = self.get(workload, impl, w)
                    row.append(s.text() if s else "-")
                for w in ws:
                    row.append("%.2f" % (n / t[w] / 1e6) if t[w] else "-")
                t1 = t.get(1)
                row.append("%.0f" % ((t1 - ts) / n * 1e9)
                           if t1 and ts else "-")
                row.append(ratio(t1, ts))
                weft = self.med(workload, "weft", pw)
                row.append("" if impl == "weft" else ratio(t[pw], weft))
                rows.append(row)
        notes = [
            "T(w): median of %d processes at w workers [spread: (max - min) "
            "/ median]. Ts: the serial twin (a plain call per task)."
            % self.args.runs,
            "M/s @w: tasks created and collected per second, in millions. "
            "ns/task @1 = (T1 - Ts) / tasks: what a task costs over a call, "
            "on one worker.",
            "T%d/weft = this impl's time / weft's at %d workers (> 1: weft "
            "is faster)." % (pw, pw),
            "inside-flat: one task submits batches of 256 and collects each "
            "batch; inside-tree: a binary tree of tasks, every task submits "
            "two and collects them; outside: the main thread (no worker) "
            "submits batches of 256 and collects them.",
            "tbb outside: task_group from the main thread, whose wait() "
            "runs tasks itself; omp has no outside thread.",
        ]
        return Section("Empty tasks: throughput", header, rows,
                       notes + self.missing_notes())

    def roundtrip_section(self):
        ws, pw = self.ws, self.pw
        header = ["workload", "impl"]
        for w in ws:
            header += ["p50 @%d" % w, "p99 @%d" % w, "mean @%d" % w]
        header += ["p50/weft @%d" % pw]
        rows = []
        for workload in ROUNDTRIP:
            n = self.size(workload)
            label = "%s(%d)" % (workload, n)
            for impl in [SERIAL] + FUTURE_PEERS:
                if not self.has(impl, workload):
                    continue
                row = [label, impl]
                label = ""
                for w in ws:
                    s = self.get(workload, impl, 1 if impl == SERIAL else w)
                    if s is None or (impl == SERIAL and w != ws[0]):
                        row += ["", "", ""] if impl == SERIAL else \
                            ["-", "-", "-"]
                        continue
                    row += ["%s [%.0f%%]" % (fmt_us(s.extra("p50_us")),
                                             s.extra_spread("p50_us")),
                            fmt_us(s.extra("p99_us")),
                            fmt_us(s.extra("mean_us"))]
                mine = self.get(workload, impl, pw)
                weft = self.get(workload, "weft", pw)
                row.append("" if impl in ("weft", SERIAL) or not mine
                           or not weft else
                           ratio(mine.extra("p50_us"), weft.extra("p50_us")))
                rows.append(row)
        notes = [
            "Microseconds from just before the submit to just after the "
            "wait returned, from the main thread (not a worker). p50, p99: "
            "percentiles of one process's round trips, median over %d "
            "processes [spread of p50]; mean: of all round trips of a "
            "process, median over the processes." % self.args.runs,
            "rt-parked: 1 ms of sleep between round trips, workers parked "
            "(weft spin_us = -1); rt-spin: back to back, workers spinning "
            "(weft spin_us = 1000000). With w workers spinning and the main "
            "thread, w = 2 oversubscribes 2 cores.",
            "tbb: task_group run + wait from the main thread; its wait() "
            "may run the task on the main thread itself (no hand-off). "
            "tbb-enqueue: task_arena::enqueue to a worker, the main thread "
            "spinning on a flag: a real hand-off, like weft's. serial: one "
            "plain call (the clock's own cost).",
            "handoff: no runtime, the floor of any hand-off: one helper "
            "thread woken with FUTEX_WAKE from FUTEX_WAIT (rt-parked) or "
            "spinning on a flag (rt-spin), the main thread spinning on the "
            "answer; it ignores the worker count.",
        ]
        return Section("Round trip from an outside thread (us)", header,
                       rows, notes + self.missing_notes())

    def targets_section(self):
        pw = self.pw
        peers = [i for i in FUTURE_PEERS if self.has(i)]
        rows = []

        def mps(workload, impl):
            t = self.med(workload, impl, pw)
            return "%.2f M/s" % (self.size(workload) / t / 1e6) if t else "-"

        def p50(workload, impl, w):
            s = self.get(workload, impl, w)
            return s.extra("p50_us") if s else None

        for workload in ("inside-tree", "inside-flat"):
            rows.append(["%s tasks/s @%d" % (workload, pw)]
                        + [mps(workload, i) if self.has(i, workload) else ""
                           for i in peers] + [FUTURE_TARGETS["inside"]])
        for workload in ROUNDTRIP:
            for w in self.ws:
                rows.append(["%s p50 @%d" % (workload, w)]
                            + [(fmt_us(p50(workload, i, w)) + " us"
                                if p50(workload, i, w) is not None else "-")
                               if self.has(i, workload) else ""
                               for i in peers]
                            + [FUTURE_TARGETS[workload]])
        return Section("weft against its targets (2-core figures), peers "
                       "beside", ["metric"] + peers + ["target"], rows,
                       ["Targets from the issue, for weft on 2 cores. The "
                        "round-trip rows give one line per worker count."])

    def sections(self):
        return [self.throughput_section(), self.roundtrip_section(),
                self.targets_section()]


# ------------------------------------------------------------ dataflow

# (name, full size, quick size, Dask size, Dask quick size, tile)
DAG_WORKLOADS = [
    ("chol", 24, 6, 8, 4, 64),
    ("chol-fine", 64, 16, 16, 8, 16),
    ("dag", 1000000, 100000, 5000, 1000, None),
]
DAG_PEERS = ["weft-graph", "weft-dyn", "tbb", "omp"]
DASK = "dask"


def dag_tasks(workload, size):
    if workload == "dag":
        return size
    nb = size
    return nb + nb * (nb - 1) + nb * (nb - 1) * (nb - 2) // 6


class DagSuite(Suite):
    name = "dag"
    heading = "weft dataflow: tiled Cholesky and a random DAG"
    max_timeout = 180

    def __init__(self, args):
        super().__init__(args)
        names = [w for w, *_ in DAG_WORKLOADS]
        for impl in [SERIAL] + DAG_PEERS:
            self.add_built("dag-", impl, names)
        lib = None
        for sub in ("bench", "."):
            path = os.path.join(args.build_dir, sub, "libdagkern.so")
            if os.path.exists(path):
                lib = path
        script = os.path.join(HERE, "dag", "dag_dask.py")
        self.add_program("dask (no libdagkern.so)" if lib is None else DASK,
                         [debian_python(), script, "--lib", lib]
                         if lib else None, names)

    def size(self, workload, dask=False):
        for name, full, quick, dfull, dquick, _ in DAG_WORKLOADS:
            if name == workload:
                if dask:
                    return dquick if self.args.quick else dfull
                return quick if self.args.quick else full
        raise KeyError(workload)

    def run(self):
        for workload, *_ in DAG_WORKLOADS:
            n = self.size(workload)
            self.measure([Point(SERIAL, workload, n, 1)] +
                         [Point(impl, workload, n, w)
                          for impl in DAG_PEERS for w in self.ws])
        for workload, *_ in DAG_WORKLOADS:
            if not self.has(DASK):
                break
            n = self.size(workload, dask=True)
            self.measure([Point(SERIAL, workload, n, 1, DASK)] +
                         [Point(impl, workload, n, w, DASK)
                          for impl in ("weft-graph", DASK)
                          for w in self.ws])

    def label(self, workload, size):
        tile = dict((w, t) for w, *_, t in DAG_WORKLOADS)[workload]
        if tile:
            return "%s(%d): %d tasks, %dx%d tiles" % (
                workload, size, dag_tasks(workload, size), tile, tile)
        return "%s(%d nodes)" % (workload, size)

    def table(self, series, impls, per_task_us):
        ws, pw = self.ws, self.pw
        header = ["workload", "impl"] + ["T(%d)" % w for w in ws]
        if per_task_us:
            header += ["us/task @%d" % w for w in ws]
        header += ["T1/Ts"] + ["Ts/T%d" % w for w in ws if w != 1]
        header += ["us/task @1 - Ts" if per_task_us else "ns/task @1"]
        header += ["T%d/%s" % (pw, i) for i in ("weft-graph", "weft-dyn")
                   if i in impls]
        rows = []
        for workload, *_ in DAG_WORKLOADS:
            n = self.size(workload, dask=series == DASK)
            ntasks = dag_tasks(workload, n)
            label = self.label(workload, n)
            ts = self.med(workload, SERIAL, 1, series)
            for impl in [SERIAL] + impls:
                if not self.has(impl, workload):
                    continue
                row = [label, impl]
                label = ""
                serial = impl == SERIAL
                t = {w: self.med(workload, impl, 1 if serial else w, series)
                     for w in ws}
                for w in ws:
                    s = self.get(workload, impl, 1 if serial else w, series)
                    row.append("" if serial and w != ws[0] else
                               s.text() if s else "-")
                if per_task_us:
                    for w in ws:
                        row.append("" if serial and w != ws[0] else
                                   fmt_us(t[w] / ntasks * 1e6)
                                   if t[w] else "-")
                if serial:
                    row += [""] * (len(header) - len(row))
                    rows.append(row)
                    continue
                row.append(ratio(t.get(1), ts))
                row += [ratio(ts, t[w]) for w in ws if w != 1]
                t1 = t.get(1)
                over = (t1 - ts) / ntasks if t1 and ts else None
                row.append("-" if over is None else fmt_us(over * 1e6)
                           if per_task_us else "%.0f" % (over * 1e9))
                for ref in ("weft-graph", "weft-dyn"):
                    if ref in impls:
                        row.append("" if impl == ref else ratio(
                            t[pw], self.med(workload, ref, pw, series)))
                rows.append(row)
        return header, rows

    def main_section(self):
        header, rows = self.table("main", DAG_PEERS, False)
        notes = [
            "T(w): median of %d processes at w workers [spread: (max - min) "
            "/ median]. Ts: the serial twin (every task in topological "
            "order on one thread)." % self.args.runs,
            "T1/Ts: the cost of the scheduling on one worker. Ts/Tw: speedup "
            "over the serial twin. ns/task @1 = (T1 - Ts) / tasks: the "
            "scheduling cost per task.",
            "T%d/X = this impl's time / X's at %d workers (> 1: X is "
            "faster)." % (self.pw, self.pw),
            "weft-graph: built once, weft_graph_run per run; weft-dyn: "
            "weft_submit_after per node from a root task, every run; tbb: "
            "flow::graph of continue_nodes, built once; omp: task "
            "depend(in/out) per node, every run.",
            "Graph building is untimed for every implementation that "
            "prebuilds; every answer equals the serial twin's (Cholesky: "
            "a hash of L's bits, and the serial twin checks "
            "max |A - LL^T| / N < 1e-12).",
        ]
        return Section("Dataflow workloads", header, rows,
                       notes + self.missing_notes())

    def dask_section(self):
        header, rows = self.table(DASK, ["weft-graph", DASK], True)
        notes = [
            "Measured as a series of its own, at sizes Dask finishes in "
            "about a second: serial twin, weft-graph and Dask "
            "(dask.threaded.get on a dict graph, -w threads, the same C "
            "task bodies through ctypes, built once).",
            "us/task @w = T(w) / tasks: the whole cost per node, work "
            "included; us/task @1 - Ts = (T1 - Ts) / tasks: the scheduling "
            "cost per node, on one worker.",
        ]
        return Section("Dask, at smaller sizes: cost per task", header,
                       rows, notes + self.missing_notes())

    def sections(self):
        out = [self.main_section()]
        if self.has(DASK) or self.missing or self.skipped:
            out.append(self.dask_section())
        return out


def run_suite(cls, args):
    """Run one suite (a Suite class: FutureSuite, DagSuite,
    run_map.MapSuite); returns (heading, sections, wrong)."""
    suite = cls(args)
    name = cls.name
    if not suite.has(SERIAL):
        msg = "no %s-serial in %s: suite %s not run" % (
            name, args.build_dir, name)
        note(msg)
        return suite.heading, [], [msg]
    suite.run()
    return suite.heading, suite.sections(), suite.wrong
