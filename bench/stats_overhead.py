#!/usr/bin/env python3
"""What publishing statistics (WEFT_STATS) costs the runtime.

    python3 bench/stats_overhead.py --build-dir BUILDDIR [--rounds 15]
        [--runs 5] [--workers 2] [--stress] [--quick]

Runs existing benchmark programs (fj-weft fib, map-weft uniform-100ns)
with WEFT_STATS unset and with WEFT_STATS=overhead-test at the default
period (WEFT_STATS_MS=100), and with --stress also at the shortest period
(10 ms). The settings alternate within each round, in an order that
rotates from round to round, so that drift of the machine (heat, a
neighbour) falls on all of them alike. One process per setting and round
runs the workload RUNS+1 times and drops the first (warm-up); its value
is the median of the rest.

Reported per workload and setting: the median over rounds and its spread
((max - min) / median), and the overhead: the median of the per-round
ratios published/unpublished (paired, so round-to-round drift cancels)
with their interquartile range, and the best round against the best
round (noise only adds time, so the fastest rounds are the least
disturbed). Then the publisher thread's own CPU time, read from
/proc/PID/task/TID/schedstat on a run of a few seconds: what publishing
costs when the A/B difference is lost in the noise. The target is under
1 %.

Before measuring, one run per workload checks that publishing really
happens (WEFT_STATS_KEEP=1 leaves the segment, which is then removed).
Python standard library only."""

import argparse
import os
import statistics
import subprocess
import sys
import time

from benchlib import Failure, child_env, cpu_busy_fraction, note, \
    parse_results

STATS_VARS = ("WEFT_STATS", "WEFT_STATS_MS", "WEFT_STATS_KEEP")

# (label, program, arguments without -w/-r, quick arguments)
WORKLOADS = [
    ("fib", "fj-weft", ["-k", "fib", "-n", "36"], ["-k", "fib", "-n", "32"]),
    ("map uniform-100ns", "map-weft",
     ["-k", "uniform-100ns", "-n", "4000000"],
     ["-k", "uniform-100ns", "-n", "1000000"]),
]

# (label, environment added; None = statistics off)
SETTINGS = [
    ("off", None),
    ("100 ms", {"WEFT_STATS": "overhead-test", "WEFT_STATS_MS": "100"}),
]
STRESS = ("10 ms", {"WEFT_STATS": "overhead-test", "WEFT_STATS_MS": "10"})


def env_for(extra):
    env = child_env()
    for name in STATS_VARS:
        env.pop(name, None)
    env.update(extra or {})
    return env


def run(cmd, extra, want, timeout):
    """One process; its RESULT lines (want of them) and its pid."""
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env=env_for(extra))
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Failure("%s: timed out after %ds" % (" ".join(cmd), timeout))
    results = parse_results(out)
    if p.returncode != 0 or len(results) != want:
        raise Failure("%s: exit %d, %d of %d runs\n%s"
                      % (" ".join(cmd), p.returncode, len(results), want,
                         err.strip()))
    return results, p.pid


def check_publishes(cmd, timeout):
    """A run with statistics on leaves its segment with WEFT_STATS_KEEP:
    proof that the 'on' settings measure what they claim."""
    extra = dict(SETTINGS[1][1], WEFT_STATS_KEEP="1")
    _, pid = run(cmd, extra, 1, timeout)
    prefix = "weft-%d-" % pid
    segs = [f for f in os.listdir("/dev/shm") if f.startswith(prefix)]
    for f in segs:
        os.unlink(os.path.join("/dev/shm", f))
    if not segs:
        raise Failure("%s with WEFT_STATS set published nothing"
                      % " ".join(cmd))


def one_point(cmd, extra, runs, timeout):
    """Median seconds of the kept runs of one process."""
    results, _ = run(cmd + ["-r", str(runs + 1)], extra, runs + 1, timeout)
    return statistics.median(r["seconds"] for r in results[1:])


# ---------------------------------------------------------------- direct

def thread_cpu(pid):
    """{tid: CPU seconds} of the threads of pid now ({} once it is gone).
    schedstat's first field is the time on CPU in nanoseconds."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                out[int(tid)] = int(f.read().split()[0]) * 1e-9
        except (OSError, ValueError, IndexError):
            pass
    return out


def publisher_cost(cmd, extra, workers, timeout):
    """Run cmd publishing with extra; sample its threads' CPU time every
    20 ms. The publisher is the thread weft_runtime_create() starts last
    (after the workers), so the highest thread id; the program must have
    main + workers + publisher threads and no others. Returns (publisher
    CPU s, process CPU s, wall s)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env_for(extra))
    last, t0 = {}, time.monotonic()
    while True:
        sample = thread_cpu(p.pid)
        if len(sample) == workers + 2:
            last = sample
        done, status, ru = os.wait4(p.pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - t0 > timeout:
            p.kill()
            raise Failure("%s: timed out" % " ".join(cmd))
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if p.returncode != 0 or not last:
        raise Failure("%s: exit %d, or not %d threads"
                      % (" ".join(cmd), p.returncode, workers + 2))
    return last[max(last)], ru.ru_utime + ru.ru_stime, wall


def direct_report(args, settings):
    """The publisher thread's own CPU time, on a run of a few seconds."""
    label, prog, _, _ = WORKLOADS[0]
    n = "34" if args.quick else "40"
    cmd = [os.path.join(args.build_dir, "bench", prog), "-k", "fib",
           "-n", n, "-w", str(args.workers), "-r", "3"]
    lines = ["Publisher thread, measured directly (%s, fib %s x 3):"
             % (prog, n)]
    for name, extra in settings:
        if extra is None:
            continue
        pub, cpu, wall = publisher_cost(cmd, extra, args.workers,
                                        args.timeout)
        period = int(extra["WEFT_STATS_MS"]) * 1e-3
        snaps = wall / period
        lines.append("  %-7s %.1f us CPU in %.2f s (%.1f us per snapshot),"
                     " %.4f%% of the process's %.2f s CPU"
                     % (name, pub * 1e6, wall, pub * 1e6 / snaps,
                        pub / cpu * 100, cpu))
    return "\n".join(lines)


# ---------------------------------------------------------------- report

def quartiles(v):
    if len(v) < 2:
        return v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], q[2]


def spread(v):
    m = statistics.median(v)
    return (max(v) - min(v)) / m * 100 if m else 0.0


def measure(args, settings):
    """{workload: {setting: [median seconds per round]}}"""
    data = {w[0]: {s[0]: [] for s in settings} for w in WORKLOADS}
    for rnd in range(args.rounds):
        k = rnd % len(settings)
        order = settings[k:] + settings[:k]
        for label, prog, full, quick in WORKLOADS:
            cmd = [os.path.join(args.build_dir, "bench", prog)] + \
                (quick if args.quick else full) + \
                ["-w", str(args.workers)]
            for name, extra in order:
                data[label][name].append(
                    one_point(cmd, extra, args.runs, args.timeout))
        note("round %d of %d done" % (rnd + 1, args.rounds))
    return data


def report(data, settings):
    lines = []
    header = ("workload", "setting", "median", "spread", "overhead",
              "IQR of ratios", "best vs best")
    rows = [header]
    for workload, per in data.items():
        base = per["off"]
        for name, _ in settings:
            v = per[name]
            row = [workload, name, "%.2f ms" % (statistics.median(v) * 1e3),
                   "%.1f%%" % spread(v)]
            if name == "off":
                row += ["-", "-", "-"]
            else:
                ratios = [a / b for a, b in zip(v, base)]
                lo, hi = quartiles(ratios)
                row += ["%+.2f%%" % ((statistics.median(ratios) - 1) * 100),
                        "%+.2f%% .. %+.2f%%" % ((lo - 1) * 100,
                                                (hi - 1) * 100),
                        "%+.2f%%" % ((min(v) / min(base) - 1) * 100)]
            rows.append(row)
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w)
                               for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", required=True)
    p.add_argument("--rounds", type=int, default=15,
                   help="rounds of every setting (default 15)")
    p.add_argument("--runs", type=int, default=5,
                   help="kept runs per process (default 5)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--stress", action="store_true",
                   help="also publish every 10 ms (the shortest period)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes, 3 rounds: checks the script works")
    p.add_argument("--timeout", type=int, default=120,
                   help="seconds per process (default 120)")
    a = p.parse_args(argv)
    if a.quick:
        a.rounds = min(a.rounds, 3)
    if a.rounds < 1 or a.runs < 1 or a.workers < 1:
        p.error("--rounds, --runs and --workers must be positive")
    return a


def main(argv):
    args = parse_args(argv)
    settings = SETTINGS + ([STRESS] if args.stress else [])
    busy = cpu_busy_fraction()
    if busy is not None and busy > 0.1:
        note("the machine is %.0f%% busy before the run: figures will be "
             "noisy" % (busy * 100))
    try:
        for _, prog, full, quick in WORKLOADS:
            cmd = [os.path.join(args.build_dir, "bench", prog)] + \
                (quick if args.quick else full) + ["-w", "1", "-r", "1"]
            check_publishes(cmd, args.timeout)
        data = measure(args, settings)
        direct = direct_report(args, settings)
    except (Failure, OSError) as e:
        print("stats_overhead: %s" % e, file=sys.stderr)
        return 1
    print("Statistics publishing overhead: %d workers, %d rounds, median "
          "of %d runs per process%s" % (args.workers, args.rounds, args.runs,
                                        " (quick: do not quote)"
                                        if args.quick else ""))
    print("overhead = median over rounds of (time published / time off) - 1")
    print()
    print(report(data, settings))
    print()
    print(direct)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
