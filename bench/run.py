#!/usr/bin/env python3
"""Run the benchmarks and print tables of ratios.

    python3 bench/run.py --build-dir BUILDDIR [--suite fj,future,dag,map,actor,store,net]
                         [--runs 5] [--workers 1,2] [--quick] [--priority]

Suites (all by default): fj, the fork-join workloads (this file); future,
empty futures' throughput and round trips, and dag, dataflow workloads
(bench/run_tasks.py); map, the parallel map (bench/run_map.py). Each suite
prints its tables and writes them as markdown: BUILDDIR/bench-results.md
(fj), bench-results-future.md, bench-results-dag.md,
bench-results-map.md.

The fork-join suite:

Every program BUILDDIR/bench/fj-IMPL (serial, serial-noinline, weft,
weft-generic, weft-syncfn, tbb, omp) runs every workload at every worker
count, in this one invocation, so all ratios come from one run on one
machine. A program that was not built is skipped with a note. Each of the RUNS runs of a point
is a process of its own that runs the workload once as a warm-up
(first-touch page faults, lazily started threads), then BEST (--best-of,
default 3) times, and keeps the fastest of those. Times are medians over
the processes; the spread is (max - min) / median.

Every implementation's answer must equal the serial one; any difference
is printed as WRONG and the exit status is 1. The table is also written as
markdown to BUILDDIR/bench-results.md. Python standard library only.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from benchlib import (Failure, Sample, Section, cpu_busy_fraction,  # noqa
                      machine_line, note, raise_priority, ratio,
                      render_markdown, render_text, run_results)
import run_actor  # noqa: E402
import run_map  # noqa: E402
import run_net  # noqa: E402
import run_store  # noqa: E402
import run_tasks  # noqa: E402

SUITES = ("fj", "future", "dag", "map", "actor", "store", "net")
# The suites besides fj, by name: their Suite classes.
TASK_SUITES = {"future": run_tasks.FutureSuite, "dag": run_tasks.DagSuite,
               "map": run_map.MapSuite, "actor": run_actor.ActorSuite,
               "store": run_store.StoreSuite, "net": run_net.NetSuite}

# (name, full size, quick size, what the size means)
WORKLOADS = [
    ("fib", 35, 30, "n"),
    ("nqueens", 12, 11, "board"),
    ("uts-geo", 13, 11, "depth cutoff"),
    ("uts-bin", 2000, 700, "root children"),
    ("skew", 65536, 16384, "iterations"),
]
SERIAL = "serial"
NOINLINE = "serial-noinline"
WEFT, GENERIC, SYNCFN = "weft", "weft-generic", "weft-syncfn"
PARALLEL = [WEFT, GENERIC, SYNCFN, "tbb", "omp"]
SHARING = ("fib", "uts-geo", "uts-bin")  # workloads of the sharing checks
# weft's targets on a 2-core machine (issue "Benchmarks"), printed next to
# the measured values.
TARGETS = {
    "fib T1/Ts": "<= 1.5", "fib Ts/T2": ">= 1.15", "fib ns/spawn": "< 1.2",
    "uts-geo Ts/T2": ">= 1.85", "uts-bin Ts/T2": ">= 1.95",
    "fib rss": "< 8 MiB", "8 vs 2 workers": "<= 1.3",
    "busy neighbour": "<= 1.2", "fib generic/weft": "<= 2",
    "fib generic/syncfn": "<= 2",
}

# ---------------------------------------------------------------- running

def find_program(build_dir, impl):
    for sub in ("bench", "."):
        path = os.path.join(build_dir, sub, "fj-" + impl)
        if os.access(path, os.X_OK):
            return path
    return None


def run_once(exe, workload, size, workers, timeout, best=1):
    """One process: a warm-up run, dropped, then `best` timed runs, of
    which the fastest counts. A VM's neighbours only ever add time, so the
    fastest of a few back-to-back runs is the process's own time; the
    median over processes then takes care of slow or fast processes
    (placement, a machine that changes speed). Every run's answer must be
    the same: a mix is reported as its own (wrong) answer."""
    cmd = [exe, "-k", workload, "-n", str(size), "-w", str(workers),
           "-r", str(best + 1)]
    timed = run_results(cmd, best + 1, timeout)[1:]
    fastest = dict(min(timed, key=lambda r: r["seconds"]))
    checks = sorted({r["check"] for r in timed})
    if len(checks) > 1:
        fastest["check"] = "mixed:" + "/".join(checks)
    fastest["rss_kb"] = max(r["rss_kb"] for r in timed)
    return fastest


class BusyNeighbour:
    """A CPU-bound process beside the benchmark, for as long as `with`."""

    def __enter__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)  # let the scheduler see it as a CPU hog
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def fib_spawns(n):
    """Spawns in fib(n) with one spawn per call with n >= 2."""
    calls = [0, 0]  # spawns of fib(0), fib(1)
    for k in range(2, n + 1):
        calls.append(1 + calls[k - 1] + calls[k - 2])
    return calls[n]


# ---------------------------------------------------------------- the runs

class Point:
    """One program at one worker count; `label` names it in the results
    (the impl, or "share"/"busy" for the sharing checks)."""

    def __init__(self, impl, workers, label=None, busy=False):
        self.impl, self.workers, self.busy = impl, workers, busy
        self.label = label or impl


class Bench:
    def __init__(self, args):
        self.args = args
        self.samples = {}  # (workload, Point.label, workers) -> Sample
        self.answer = {}   # workload -> serial check
        self.wrong = []
        self.programs = {}
        for impl in [SERIAL, NOINLINE] + PARALLEL:
            exe = find_program(args.build_dir, impl)
            if exe is None:
                note("fj-%s not built: skipped" % impl)
            else:
                self.programs[impl] = exe

    def size(self, workload):
        for name, full, quick, _ in WORKLOADS:
            if name == workload:
                return quick if self.args.quick else full
        raise KeyError(workload)

    def measure(self, workload, points):
        """Run the points of one workload round-robin, RUNS rounds, each run
        a process of its own: a machine that slows down or speeds up
        meanwhile (a VM's neighbours, another job) then touches every
        point alike instead of whichever ran at the time. Records and
        checks one Sample per point; the serial point must come first."""
        points = [p for p in points if p.impl in self.programs]
        results = [[] for _ in points]
        failed = set()
        for r in range(self.args.runs):
            note("%s: round %d of %d" % (workload, r + 1, self.args.runs))
            for i, p in enumerate(points):
                if i in failed:
                    continue
                try:
                    results[i].append(self.run_point(workload, p))
                except Failure as e:
                    failed.add(i)
                    self.wrong.append(str(e))
                    note("FAILED: " + str(e))
        for i, p in enumerate(points):
            if i not in failed:
                s = Sample(results[i])
                self.samples[(workload, p.label, p.workers)] = s
                self.verify(workload, p, s)

    def run_point(self, workload, p):
        args = (self.programs[p.impl], workload, self.size(workload),
                p.workers, self.args.timeout)
        if p.busy:
            with BusyNeighbour():
                return run_once(*args, self.args.best_of)
        return run_once(*args, self.args.best_of)

    def verify(self, workload, p, s):
        if p.impl == SERIAL and len(s.checks) == 1:
            self.answer[workload] = next(iter(s.checks))
        want = self.answer.get(workload)
        if len(s.checks) != 1 or (want is not None and s.checks != {want}):
            msg = "WRONG: %s %s -w %d answered %s, serial %s" % (
                workload, p.label, p.workers, sorted(s.checks), want)
            self.wrong.append(msg)
            note(msg)

    def get(self, workload, label, workers):
        return self.samples.get((workload, label, workers))

    def workloads(self):
        return [w for w, *_ in WORKLOADS
                if not self.args.workloads or w in self.args.workloads]

    def run_matrix(self):
        for workload in self.workloads():
            points = [Point(SERIAL, 1)]
            if workload == "fib":
                points.append(Point(NOINLINE, 1))
            points += [Point(impl, w) for impl in PARALLEL
                       for w in self.args.workers]
            self.measure(workload, points)

    def run_sharing(self):
        """weft with 1, 2 and 8 workers, and with 2 beside a busy process,
        measured together so that their ratios come from one series."""
        for workload in SHARING:
            if workload not in self.workloads():
                continue
            self.measure(workload, [
                Point(WEFT, 1, "share"), Point(WEFT, 2, "share"),
                Point(WEFT, 8, "share"), Point(WEFT, 2, "busy", busy=True),
            ])


# ---------------------------------------------------------------- the report

def main_table(b):
    ws = b.args.workers
    pw = 2 if 2 in ws else ws[-1]  # worker count for the peer comparison
    header = ["workload", "impl"] + ["T(%d)" % w for w in ws]
    header += ["T1/Ts"] + ["Ts/T%d" % w for w in ws if w != 1]
    header += ["T%d/weft" % pw]
    rows = []
    for workload in b.workloads():
        label = "%s(%s)" % (workload, b.size(workload))
        serial = b.get(workload, SERIAL, 1)
        ts = serial.median if serial else None
        impls = [SERIAL] + ([NOINLINE] if workload == "fib" else [])
        for impl in impls + PARALLEL:
            if impl not in b.programs:
                continue
            rows.append(impl_row(b, workload, label, impl, ts, ws, pw))
            label = ""
    notes = [
        "T(w): median of %d processes at w workers, each process's fastest "
        "of %d timed runs [spread of those: (max - min) / median]. Ts: the "
        "serial twin." % (b.args.runs, b.args.best_of),
        "T1/Ts: the cost of spawn and sync on one worker. Ts/Tw: speedup "
        "over the plain serial code.",
        "T%d/weft = this impl's time / weft's at %d workers "
        "(> 1: weft is faster)." % (pw, pw),
        "Sizes: " + ", ".join("%s(%s)" % (w, meaning)
                              for w, _, _, meaning in WORKLOADS) + ".",
    ]
    missing = [i for i in [SERIAL, NOINLINE] + PARALLEL
               if i not in b.programs]
    if missing:
        notes.append("Not built, left out: fj-" + ", fj-".join(missing) + ".")
    return Section("Fork-join workloads", header, rows, notes)


def impl_row(b, workload, label, impl, ts, ws, pw):
    serial_impl = impl in (SERIAL, NOINLINE)
    row = [label, impl]
    for w in ws:
        s = b.get(workload, impl, 1 if serial_impl else w)
        row.append(s.text() if s and (not serial_impl or w == ws[0])
                   else "")
    if serial_impl:
        return row + [""] * (len(ws) + 1)
    t = {w: (b.get(workload, impl, w).median
             if b.get(workload, impl, w) else None) for w in ws}
    row.append(ratio(t.get(1), ts))
    row += [ratio(ts, t[w]) for w in ws if w != 1]
    weft = b.get(workload, WEFT, pw)
    row.append("" if impl == WEFT else
               ratio(t.get(pw), weft.median if weft else None))
    return row


def fib_section(b):
    n = b.size("fib")
    spawns = fib_spawns(n)
    noinl = b.get("fib", NOINLINE, 1)
    rows = []
    for impl in PARALLEL:
        t1 = b.get("fib", impl, 1)
        t2 = b.get("fib", impl, 2)
        ns = ("%.1f" % ((t1.median - noinl.median) / spawns * 1e9)
              if t1 and noinl else "-")
        rss = "%.1f MiB" % (t2.rss_kb / 1024) if t2 else "-"
        rows.append([impl, ns, rss])
    s = b.get("fib", SERIAL, 1)
    rows.append([SERIAL, "", "%.1f MiB" % (s.rss_kb / 1024) if s else "-"])
    notes = [
        "ns/spawn = (T1 - T(serial-noinline)) / %d spawns of fib(%d); "
        "target for weft %s." % (spawns, n, TARGETS["fib ns/spawn"]),
        "peak RSS: whole process at 2 workers (serial: 1 thread); "
        "target for weft %s." % TARGETS["fib rss"],
    ]
    return Section("fib(%d): cost per spawn, memory" % n,
                   ["impl", "ns/spawn", "peak RSS @2"], rows, notes)


def sharing_section(b):
    rows = []
    for workload in SHARING:
        t1, t2, t8 = (b.get(workload, "share", w) for w in (1, 2, 8))
        busy = b.get(workload, "busy", 2)
        med = [x.median if x else None for x in (t1, t2, t8, busy)]
        rows.append([
            workload,
            t2.text() if t2 else "-",
            t8.text() if t8 else "-",
            ratio(med[2], med[1]),
            t1.text() if t1 else "-",
            busy.text() if busy else "-",
            ratio(med[3], med[0]),
        ])
    notes = [
        "Measured apart from the table above, interleaved with each other.",
        "T8/T2: weft with 8 workers on %d cores / with 2; target %s."
        % (len(os.sched_getaffinity(0)), TARGETS["8 vs 2 workers"]),
        "busy/T1: weft at 2 workers beside a CPU-bound process / quiet "
        "at 1 worker; target %s." % TARGETS["busy neighbour"],
    ]
    return Section("weft sharing the machine",
                   ["workload", "T(2)", "T(8)", "T8/T2", "T(1)",
                    "T(2) busy", "busy/T1"], rows, notes)


def paired_ratio(b, num, den):
    """Median over the rounds of num's time / den's time in the same round,
    or None. num and den are (workload, label, workers); a round measures
    them back to back, so a machine whose speed drifts from one round to
    the next (a VM's neighbours) touches both alike."""
    a, c = b.get(*num), b.get(*den)
    if not a or not c or len(a.results) != len(c.results):
        return None
    return statistics.median(x["seconds"] / y["seconds"]
                             for x, y in zip(a.results, c.results))


def targets_section(b):
    def med(workload, label, w):
        s = b.get(workload, label, w)
        return s.median if s else None

    def over(num, den):
        return "%.2f" % (num / den) if num and den else "-"

    def per_workload(num, den):
        return " / ".join(over(med(w, *num), med(w, *den)) for w in SHARING)

    def paired(num, den):
        r = paired_ratio(b, num, den)
        return "%.2f" % r if r else "-"

    def speedup(w, workers):
        return [over(ts.get(w), med(w, WEFT, workers)),
                paired((w, SERIAL, 1), (w, WEFT, workers))]

    ts = {w: med(w, SERIAL, 1) for w in b.workloads()}
    t1, noinl, t2 = (b.get("fib", *k) for k in
                     ((WEFT, 1), (NOINLINE, 1), (WEFT, 2)))
    ns = ((t1.median - noinl.median) / fib_spawns(b.size("fib")) * 1e9
          if t1 and noinl else None)
    rows = [
        ["fib T1/Ts", over(med("fib", WEFT, 1), ts.get("fib")),
         paired(("fib", WEFT, 1), ("fib", SERIAL, 1))],
        ["fib Ts/T2"] + speedup("fib", 2),
        ["fib ns/spawn", "%.1f" % ns if ns is not None else "-", ""],
        ["fib rss", "%.1f MiB" % (t2.rss_kb / 1024) if t2 else "-", ""],
        # the generic form against each fast form, on one worker
        ["fib generic/weft", over(med("fib", GENERIC, 1), med("fib", WEFT, 1)),
         paired(("fib", GENERIC, 1), ("fib", WEFT, 1))],
        ["fib generic/syncfn",
         over(med("fib", GENERIC, 1), med("fib", SYNCFN, 1)),
         paired(("fib", GENERIC, 1), ("fib", SYNCFN, 1))],
        ["uts-geo Ts/T2"] + speedup("uts-geo", 2),
        ["uts-bin Ts/T2"] + speedup("uts-bin", 2),
        ["8 vs 2 workers", per_workload(("share", 8), ("share", 2)), ""],
        ["busy neighbour", per_workload(("busy", 2), ("share", 1)), ""],
    ]
    for row in rows:
        row.append(TARGETS[row[0]])
    wmax = b.args.workers[-1]
    if wmax >= 16:  # the figure for a 16-core machine
        for w in ("uts-geo", "uts-bin"):
            rows.append(["%s Ts/T%d" % (w, wmax)] + speedup(w, wmax)
                        + [">= 14"])
    rows = [r for r in rows if r[1].strip("-/ ")]  # measured ones only
    notes = ["Targets for 2 cores, and Ts/T16 >= 14 for 16 cores.",
             "fib generic/weft, generic/syncfn: the generic form's T1 over "
             "the head-passing form's (weft) and over weft_spawn + "
             "weft_sync_fn's (syncfn).",
             "paired: the median over the rounds of the ratio within one "
             "round, whose points run back to back; less sensitive to a "
             "machine whose speed drifts than the ratio of medians."]
    if not b.args.no_sharing:
        notes.append("8 vs 2 workers, busy neighbour: %s."
                     % " / ".join(SHARING))
    return Section("weft against its targets",
                   ["metric", "weft", "paired", "target"], rows, notes)


# ---------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", required=True)
    p.add_argument("--suite", default=",".join(SUITES),
                   help="comma-separated suites to run, of %s (default: "
                   "all)" % ", ".join(SUITES))
    p.add_argument("--runs", type=int, default=None,
                   help="kept runs per point (default 5, quick 3)")
    p.add_argument("--best-of", type=int, default=None,
                   help="fj only: timed runs per process, of which the "
                   "fastest counts (default 3; quick 1)")
    p.add_argument("--workers", default="1,2",
                   help="comma-separated worker counts (default 1,2)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes, 3 runs: checks the suite works")
    p.add_argument("--timeout", type=int, default=300,
                   help="seconds per program process (default 300)")
    p.add_argument("--workloads", default="",
                   help="fj only: comma-separated workloads to run, of %s "
                   "(default: all)" % ", ".join(w for w, *_ in WORKLOADS))
    p.add_argument("--no-sharing", action="store_true",
                   help="fj only: leave out the checks of weft sharing "
                   "the machine (8 workers, a busy neighbour), which are "
                   "about 2 cores")
    p.add_argument("--priority", action="store_true",
                   help="run ahead of the machine's other work: a session "
                   "of its own at autogroup nice -20, and nice -20 (root "
                   "or CAP_SYS_NICE); plain nice does not reach across "
                   "sessions where autogroup scheduling is on")
    a = p.parse_args(argv)
    if a.runs is None:
        a.runs = 3 if a.quick else 5
    if a.best_of is None:
        a.best_of = 1 if a.quick else 3
    try:
        a.workers = sorted({int(w) for w in a.workers.split(",")})
    except ValueError:
        p.error("--workers takes numbers like 1,2")
    if a.runs < 1 or a.best_of < 1 or not a.workers or a.workers[0] < 1:
        p.error("--runs, --best-of and --workers must be positive")
    if 1 not in a.workers:
        p.error("--workers must include 1 (T1 and ns/spawn need it)")
    a.workloads = [x for x in a.workloads.split(",") if x]
    names = [w for w, *_ in WORKLOADS]
    if any(w not in names for w in a.workloads):
        p.error("--workloads takes some of %s" % ",".join(names))
    a.suites = [x for x in a.suite.split(",") if x]
    bad = [x for x in a.suites if x not in SUITES]
    if bad or not a.suites:
        p.error("--suite takes some of %s" % ",".join(SUITES))
    return a


def run_fj(args, title):
    """The fork-join suite: (text, markdown, wrong), or None without
    fj-serial."""
    b = Bench(args)
    if SERIAL not in b.programs:
        note("no fj-serial in %s: nothing to compare against"
             % args.build_dir)
        return None
    b.run_matrix()
    sections = [main_table(b)]
    if "fib" in b.workloads():
        sections.append(fib_section(b))
    if not args.no_sharing:
        b.run_sharing()
        sections.append(sharing_section(b))
    sections.append(targets_section(b))
    return (render_text(title(), sections, b.wrong),
            render_markdown("weft fork-join benchmarks", title(), sections,
                            b.wrong), b.wrong)


def main(argv):
    args = parse_args(argv)
    prio = raise_priority() if args.priority else None
    busy = cpu_busy_fraction()

    def title():
        t = machine_line(args)
        if prio:
            t += "; " + prio
        if busy is not None and busy > 0.1:
            ahead = prio and "autogroup nice -20" in prio
            t += ("\n%s: before the runs, %.0f%% of the machine's CPU "
                  "was busy with other processes; %s"
                  % ("NOTE" if ahead else "WARNING", busy * 100,
                     "the runs went ahead of them (--priority), spreads "
                     "may still be wide" if ahead else
                     "the ratios are suspect (--priority puts the runs "
                     "ahead of them)"))
        return t

    wrong, ran = [], 0
    for suite in args.suites:
        if suite == "fj":
            out = run_fj(args, title)
            md_name = "bench-results.md"
        else:
            heading, sections, bad = run_tasks.run_suite(
                TASK_SUITES[suite], args)
            out = None if not sections else (
                render_text(title(), sections, bad),
                render_markdown(heading, title(), sections, bad), bad)
            if out is None:
                wrong += bad
            md_name = "bench-results-%s.md" % suite
        if out is None:
            continue
        ran += 1
        text, md, bad = out
        wrong += bad
        print(text)
        path = os.path.join(args.build_dir, md_name)
        with open(path, "w") as f:
            f.write(md)
        print("\nmarkdown: " + path + "\n", flush=True)
    if ran == 0:
        return 2
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
