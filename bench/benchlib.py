"""What the benchmark runners share (bench/run.py, bench/run_tasks.py):
running a program and reading its RESULT lines, samples of several runs,
the tables and their markdown. Python standard library only."""

import datetime
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

# Environment variables that would override what the runner asks for.
OVERRIDES = ("WEFT_WORKERS", "WEFT_TOPOLOGY", "OMP_NUM_THREADS")
SKIPPED = 77  # exit status of a program whose peer is missing (meson's)


class Failure(Exception):
    pass


class Skipped(Exception):
    pass


def note(msg):
    print("# " + msg.replace("\n", "\n# "), file=sys.stderr, flush=True)


def child_env():
    env = dict(os.environ)
    for name in OVERRIDES:
        env.pop(name, None)
    return env


def parse_results(text):
    """RESULT lines -> list of dicts: every key=value of the line, numbers
    converted (check stays a string: it is compared, not computed)."""
    out = []
    for line in text.splitlines():
        if not line.startswith("RESULT "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        r = {}
        for k, v in fields.items():
            if k in ("name", "impl", "check"):
                r[k] = v
                continue
            try:
                r[k] = int(v)
            except ValueError:
                try:
                    r[k] = float(v)
                except ValueError:
                    r[k] = v
        r["seconds"] = float(r["seconds"])
        out.append(r)
    return out


def run_results(cmd, want, timeout):
    """Run cmd; return its `want` RESULT lines. Failure when it fails,
    times out or prints fewer; Skipped when it exits with 77."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, env=child_env())
    except subprocess.TimeoutExpired:
        raise Failure("%s: timed out after %ds" % (" ".join(cmd), timeout))
    if p.returncode == SKIPPED:
        raise Skipped(p.stderr.strip() or " ".join(cmd))
    results = parse_results(p.stdout)
    if p.returncode != 0 or len(results) != want:
        raise Failure("%s: exit %d, %d of %d runs\n%s"
                      % (" ".join(cmd), p.returncode, len(results), want,
                         p.stderr.strip()))
    if p.stderr.strip():
        note(p.stderr.strip())
    return results


def cpu_busy_fraction(seconds=1.0):
    """Fraction of the machine's CPU time not idle over `seconds`."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (i1 - i0) / (t1 - t0) if t1 > t0 else None


def raise_priority():
    """Put this process (and so every benchmark process it starts) ahead of
    the machine's other work: a session of its own, whose autogroup gets
    nice -20, and nice -20 inside it. With autogroup scheduling
    (kernel.sched_autogroup_enabled = 1, the default on most distributions)
    the CPU is shared between sessions before nice is looked at, so plain
    `nice -n -20 run.py` leaves each busy session elsewhere an equal share
    of the cores: a 2-worker run then gets barely more CPU than a serial
    one. Needs root or CAP_SYS_NICE. Returns a line for the report's
    title saying what was done."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.setsid()
    except PermissionError:
        # a process group leader cannot start a session: a child can
        pid = os.fork()
        if pid == 0:
            os.setsid()
        else:
            while True:
                try:
                    _, status = os.waitpid(pid, 0)
                    break
                except KeyboardInterrupt:
                    os.kill(pid, signal.SIGINT)
            sys.exit(os.waitstatus_to_exitcode(status))
    done = []
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("-20")
        done.append("session autogroup nice -20")
    except OSError as e:
        done.append("autogroup not raised (%s)" % (e.strerror or e))
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -20)
        done.append("nice -20")
    except OSError as e:
        done.append("nice not raised (%s)" % (e.strerror or e))
    return "priority: " + ", ".join(done)


class Sample:
    """The kept runs of one point: median time, spread, answers, peak
    RSS, and the median of every other numeric field (extra())."""

    def __init__(self, results):
        times = [r["seconds"] for r in results]
        self.results = results
        self.median = statistics.median(times)
        self.spread = (max(times) - min(times)) / self.median * 100 \
            if self.median > 0 else 0.0
        self.checks = {r["check"] for r in results}
        self.rss_kb = max(r["rss_kb"] for r in results)

    def text(self):
        return "%s [%.0f%%]" % (fmt_time(self.median), self.spread)

    def extra(self, key):
        v = [r[key] for r in self.results
             if isinstance(r.get(key), (int, float))]
        return statistics.median(v) if v else None

    def extra_spread(self, key):
        v = [r[key] for r in self.results
             if isinstance(r.get(key), (int, float))]
        m = statistics.median(v) if v else 0
        return (max(v) - min(v)) / m * 100 if m else 0.0


def fmt_time(s):
    if s >= 1:
        return "%.2f s" % s
    return "%.1f ms" % (s * 1e3) if s >= 0.01 else "%.2f ms" % (s * 1e3)


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "-"


class Section:
    def __init__(self, title, header, rows, notes=()):
        self.title, self.header, self.rows = title, header, rows
        self.notes = list(notes)


def machine_line(args):
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    mode = "quick (smoke-test sizes; do not quote)" if args.quick \
        else "full"
    return ("%s, %d cores usable, %s; %s; %d processes per point; %s"
            % (platform.node(), cores, model,
               datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
               args.runs, mode))


def render_text(title, sections, wrong):
    out = [title, ""]
    for sec in sections:
        out.append(sec.title)
        widths = [max(len(str(r[i])) for r in [sec.header] + sec.rows)
                  for i in range(len(sec.header))]
        for row in [sec.header] + sec.rows:
            out.append("  ".join(str(c).ljust(w) for c, w in
                                 zip(row, widths)).rstrip())
        out += ["  " + n for n in sec.notes] + [""]
    out += ["WRONG / FAILED: " + w for w in wrong]
    return "\n".join(out)


def render_markdown(heading, title, sections, wrong):
    out = ["# " + heading, "", title, ""]
    for sec in sections:
        out += ["## " + sec.title, ""]
        out.append("| " + " | ".join(sec.header) + " |")
        out.append("|" + "---|" * len(sec.header))
        for row in sec.rows:
            out.append("| " + " | ".join(str(c) for c in row) + " |")
        out.append("")
        out += ["- " + n for n in sec.notes]
        out.append("")
    if wrong:
        out += ["## Wrong answers and failures", ""]
        out += ["- " + w for w in wrong]
    return "\n".join(out) + "\n"
