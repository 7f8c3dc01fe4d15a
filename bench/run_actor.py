"""The `actor` suite of bench/run.py (see bench/README.md).

    python3 bench/run.py --build-dir BUILDDIR --suite actor [--quick]
    python3 bench/run_actor.py --build-dir BUILDDIR [--quick]   (alone)

weft actors against CAF 0.17 on the Savina micro-benchmarks
(bench/actor/actor_work.h): ping-pong, counting, thread ring, fork-join
throughput, fork-join creation, big, chameneos, and many senders into one
mailbox, each also as a serial twin (the same work as direct calls: T/Ts
is what the messaging costs). CAF runs with scheduler.max-threads equal to
weft's worker count. A second table sweeps weft's activation batch
(-b B), the measurement behind WEFT_ACTOR_BATCH.

As in the other suites, every point is RUNS processes, interleaved
round-robin with the other points of its workload, each running the
workload twice and keeping the second; every answer must equal the serial
twin's at the same size. Python standard library only.
"""

import argparse
import os
import sys

from benchlib import (Section, cpu_busy_fraction, fmt_time, machine_line,
                      ratio, render_markdown, render_text)
from run_tasks import SERIAL, Point, Suite

# (name, full size, quick size, what -n counts)
WORKLOADS = [
    ("pingpong", 500000, 50000, "round trips"),
    ("counting", 1000000, 100000, "messages"),
    ("threadring", 100000, 20000, "passes, 100 actors"),
    ("fjthrput", 10000, 1000, "messages x 60 actors"),
    ("fjcreate", 40000, 10000, "actors"),
    ("big", 20000, 2000, "pings x 120 actors"),
    ("chameneos", 200000, 20000, "meetings, 100 chameneos"),
    ("manysenders", 2000000, 200000, "messages, 8 senders"),
]
# BENCH_ACTOR_WORKLOADS=a,b runs only those (re-measuring one figure).
if os.environ.get("BENCH_ACTOR_WORKLOADS"):
    _keep = os.environ["BENCH_ACTOR_WORKLOADS"].split(",")
    WORKLOADS = [w for w in WORKLOADS if w[0] in _keep]
WEFT, CAF = "weft", "caf"
IMPLS = [WEFT, CAF]
# The activation-batch sweep (BENCH_ACTOR_SWEEP=0 skips it: six more
# weft runs per point, for when the machine is lent by the minute).
BATCHES = ([] if os.environ.get("BENCH_ACTOR_SWEEP") == "0"
           else [1, 4, 16, 64, 256, 1024])
# The targets: CAF time / weft time at the peer worker count.
TARGETS = {"manysenders": 3.0}
DEFAULT_TARGET = 1.0


def batch_impl(b):
    return "weft-b%d" % b


class ActorSuite(Suite):
    name = "actor"
    heading = "weft actors against CAF: the Savina micro-benchmarks"
    max_timeout = 120

    def __init__(self, args):
        super().__init__(args)
        names = [w for w, *_ in WORKLOADS]
        for impl in [SERIAL] + IMPLS:
            self.add_built("actor-", impl, names, sub="actor")
        if WEFT in self.programs:
            for b in BATCHES:
                self.add_program(batch_impl(b), self.programs[WEFT].cmd
                                 + ["-b", str(b)], names)

    def size(self, workload):
        for name, full, quick, _ in WORKLOADS:
            if name == workload:
                return quick if self.args.quick else full
        raise KeyError(workload)

    def run(self):
        pw = self.pw
        for workload, *_ in WORKLOADS:
            n = self.size(workload)
            self.measure([Point(SERIAL, workload, n, 1)]
                         + [Point(i, workload, n, w)
                            for i in IMPLS for w in self.ws]
                         + [Point(batch_impl(b), workload, n, pw)
                            for b in BATCHES])

    # -- tables

    def label(self, workload):
        units = dict((w, u) for w, _, _, u in WORKLOADS)
        return "%s(%d %s)" % (workload, self.size(workload), units[workload])

    def main_section(self):
        ws, pw = self.ws, self.pw
        header = (["workload", "impl"] + ["T(%d)" % w for w in ws]
                  + ["ns/msg @%d" % pw, "T%d/Ts" % pw,
                     "T%d/weft" % pw])
        rows = []
        for workload, *_ in WORKLOADS:
            label = self.label(workload)
            ts = self.med(workload, SERIAL, 1)
            tw = self.med(workload, WEFT, pw)
            msgs = messages(workload, self.size(workload))
            for impl in [SERIAL] + IMPLS:
                if not self.has(impl, workload):
                    continue
                if impl == SERIAL:
                    s = self.get(workload, SERIAL, 1)
                    row = ([s.text() if s else "-"] + [""] * (len(ws) - 1)
                           + ["", "", ""])
                else:
                    row = [self.get(workload, impl, w).text()
                           if self.med(workload, impl, w) else "-"
                           for w in ws]
                    t = self.med(workload, impl, pw)
                    row += ["%.0f" % (t / msgs * 1e9) if t else "-",
                            ratio(t, ts),
                            "" if impl == WEFT else ratio(t, tw)]
                rows.append([label, impl] + row)
                label = ""
        notes = [
            "T(w): median of %d processes at w workers (CAF: "
            "scheduler.max-threads = w) [spread: (max - min) / median]. "
            "Ts: the serial twin (the same work as direct calls)."
            % self.args.runs,
            "ns/msg: T / messages of the workload; T/Ts: what the "
            "messaging costs over direct calls; T%d/weft: this impl's time "
            "over weft's (> 1: weft is faster)." % pw,
            "Every message of weft is a 24-byte struct copied into the "
            "mailbox (weft_send); CAF's are atom-tagged messages "
            "(self->send / anon_send).",
        ]
        return Section("Savina micro-benchmarks", header, rows,
                       notes + self.missing_notes())

    def sweep_section(self):
        pw = self.pw
        header = (["workload"] + ["B=%d" % b for b in BATCHES]
                  + ["best", "default/best"])
        rows = []
        for workload, *_ in WORKLOADS:
            t = {b: self.med(workload, batch_impl(b), pw) for b in BATCHES}
            row = [self.label(workload)]
            row += [fmt_time(t[b]) if t.get(b) else "-" for b in BATCHES]
            best = min((b for b in t if t[b]), key=t.get, default=None)
            row.append("B=%d" % best if best else "-")
            row.append(ratio(self.med(workload, WEFT, pw),
                             t[best] if best else None))
            rows.append(row)
        notes = [
            "weft at %d workers with activation batch B (-b B: messages an "
            "actor handles before it yields), medians of %d processes "
            "measured round-robin with the table above; default: "
            "WEFT_ACTOR_BATCH (64)." % (pw, self.args.runs),
        ]
        return Section("Activation batch sweep (weft, %d workers)" % pw,
                       header, rows, notes)

    def targets_section(self):
        pw = self.pw
        rows = []
        for workload, *_ in WORKLOADS:
            want = TARGETS.get(workload, DEFAULT_TARGET)
            tc = self.med(workload, CAF, pw)
            tw = self.med(workload, WEFT, pw)
            if not tc or not tw:
                rows.append([workload, "-", "> %.2f" % want, "-"])
                continue
            v = tc / tw
            op = ">=" if workload in TARGETS else ">"
            met = v >= want if op == ">=" else v > want
            rows.append([workload, "%.2f" % v, "%s %.2f" % (op, want),
                         "yes" if met else "no"])
        return Section("weft against its targets (CAF time / weft time, "
                       "%d workers)" % pw,
                       ["workload", "caf/weft", "target", "met"], rows,
                       ["Targets from the issue: faster than CAF on every "
                        "workload, at least 3x on many senders into one "
                        "mailbox."])

    def sections(self):
        return [self.main_section()] + (
            [self.sweep_section()] if BATCHES else []) + [
            self.targets_section()]


def messages(workload, n):
    """Messages one run sends (the ns/msg column)."""
    per = {"pingpong": 2 * n, "counting": n + 2, "threadring": n + 101,
           "fjthrput": 60 * n, "fjcreate": n, "big": 2 * 120 * n,
           "chameneos": 4 * n, "manysenders": n + 8}
    return per[workload]


def main(argv):
    p = argparse.ArgumentParser(description="weft actors against CAF")
    p.add_argument("--build-dir", required=True)
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--timeout", type=int, default=300)
    a = p.parse_args(argv)
    a.runs = a.runs or (3 if a.quick else 5)
    a.workers = sorted({int(w) for w in a.workers.split(",")})
    busy = cpu_busy_fraction()
    suite = ActorSuite(a)
    if not suite.has(SERIAL):
        print("no actor-serial in %s" % a.build_dir, file=sys.stderr)
        return 1
    suite.run()
    title = machine_line(a)
    if busy is not None and busy > 0.1:
        title += ("\nWARNING: before the runs, %.0f%% of the machine's CPU "
                  "was busy with other processes; the ratios are suspect."
                  % (busy * 100))
    sections = suite.sections()
    print(render_text(title, sections, suite.wrong))
    path = os.path.join(a.build_dir, "bench-results-actor.md")
    with open(path, "w") as f:
        f.write(render_markdown(suite.heading, title, sections, suite.wrong))
    print("\nmarkdown: " + path)
    return 1 if suite.wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
