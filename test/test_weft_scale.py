#!/usr/bin/env python3
"""weft-scale end to end: the built-in suite at a tiny size gives a
well-formed table, valid JSON and a well-formed SVG; a user's program (a
small weft program, and /bin/true, which publishes nothing) gets a row
per worker count; bad arguments, a missing program, a program that
cannot run or fails give clear errors and a non-zero exit status; a
SIGTERM to weft-scale stops the program it runs, and so does --timeout
(SIGTERM, then SIGKILL for one that ignores it).

    test_weft_scale.py WEFT_SCALE SCALE_PROG
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

SUITE = ["pi", "wordcount", "json", "join", "fib", "uts"]
TINY = ["--size", "tiny", "--workers", "1,2", "--repeat", "1"]
HEAD = ["workers", "time", "spread", "speedup", "efficiency", "idle",
        "steals", "start-up"]


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def run(args, expect=0):
    p = subprocess.run([SCALE] + args, capture_output=True, text=True,
                       timeout=240)
    check(p.returncode == expect,
          f"weft-scale {' '.join(args)}: exit {p.returncode}, wanted "
          f"{expect}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def blocks(table):
    """{name: [lines]} of the table's blocks (a line 'name: what: problem'
    starts one, an empty line ends it)."""
    out, name = {}, None
    for line in table.splitlines():
        m = re.match(r"^(\w+): [^:]+: ", line)
        if m and not line.startswith(" "):
            name = m.group(1)
            out[name] = []
        elif not line.strip():
            name = None
        elif name:
            out[name].append(line)
    return out


def check_block(name, lines, head, workers):
    heads = [l for l in lines if l.split()[:1] == ["workers"]]
    check(len(heads) == 1, f"{name}: one header line, got {heads}")
    for h in head:
        check(h in heads[0].split(), f"{name}: no column '{h}'")
    rows = [l.split() for l in lines if re.match(r"^\s+\d+\s", l)]
    check([int(r[0]) for r in rows] == workers,
          f"{name}: rows for {workers}, got {rows}")
    ncols = len(heads[0].split())
    for r in rows:
        # a time has a unit: "1.2 ms" is two fields
        check(len(r) >= ncols, f"{name}: short row {r}")
        check(float(r[1]) > 0, f"{name}: no time in {r}")
    check(any("USL fit" in l for l in lines), f"{name}: no USL line")


def test_suite_table_and_svg(tmp):
    svg = os.path.join(tmp, "plot.svg")
    out = run(TINY + ["--svg", svg]).stdout
    check(out.startswith("weft-scale "), "no title line")
    b = blocks(out)
    check(list(b) == SUITE, f"blocks {list(b)}, wanted {SUITE}")
    for name in SUITE:
        check_block(name, b[name], HEAD + ["vs", "scale-up"], [1, 2])
        check(any("overhead" in l for l in b[name]),
              f"{name}: no overhead line")
    root = ET.parse(svg).getroot()
    check(root.tag == "{http://www.w3.org/2000/svg}svg", "not an SVG")
    ns = "{http://www.w3.org/2000/svg}"
    circles = root.iter(ns + "circle")
    # two points per workload, plus a marker per legend entry
    check(len(list(circles)) == 2 * len(SUITE) + len(SUITE),
          "measured points missing")
    curves = list(root.iter(ns + "polyline"))
    check(len(curves) == 2 * len(SUITE), f"{len(curves)} USL curves")
    texts = " ".join(t.text or "" for t in root.iter(ns + "text"))
    for word in SUITE + ["ideal", "workers", "speedup"]:
        check(word in texts, f"SVG lacks the text '{word}'")


def test_suite_json(tmp):
    out = run(["--json", "--size", "tiny", "--workers", "2", "--repeat",
               "2", "--suite", "pi,fib"]).stdout
    doc = json.loads(out)
    check(doc["mode"] == "suite" and doc["repeat"] == 2, "header fields")
    check([w["name"] for w in doc["workloads"]] == ["pi", "fib"],
          "workloads not as --suite asked")
    for w in doc["workloads"]:
        rows = w["rows"]
        check([r["workers"] for r in rows] == [1, 2],
              f"{w['name']}: 1 is always measured")
        check(rows[0]["speedup"] == 1, "speedup at 1 worker is 1")
        check(w["serial_s"]["median"] > 0, "serial twin timed")
        check(w["usl"]["fitted"] and w["usl"]["sigma"] is not None,
              "USL fitted")
        for r in rows:
            check(r["time_s"]["median"] > 0, "time")
            check(r["scaled_time_s"]["median"] > 0, "scale-up time")
            check(0 <= r["idle"]["median"] <= 1.05, "idle share")
            check(r["steals"]["median"] >= 0, "steals")
            check(r["startup_s"]["median"] > 0, "start-up")
            check(r["destroy_s"]["median"] > 0, "destroy")


def test_program(tmp):
    doc = json.loads(run(["--json", "--workers", "1,2", "--repeat", "1",
                          "--", PROG]).stdout)
    check(doc["mode"] == "command", "mode")
    (w,) = doc["workloads"]
    check(PROG in w["label"], "the command line is the label")
    rows = w["rows"]
    check([r["workers"] for r in rows] == [1, 2], "a row per count")
    for r in rows:
        check(r["time_s"]["median"] > 0, "wall time")
        check(r["tasks"]["median"] and r["tasks"]["median"] > 0,
              f"no statistics read at {r['workers']} workers: {r}")
        check(0 <= r["startup_s"]["median"] < 10, "start-up from fork")
        check(0 <= r["idle"]["median"] <= 1.05, "idle share")
    out = run(["--workers", "2", "--repeat", "1", "--", PROG]).stdout
    check_block("command", blocks(out)["command"], HEAD + ["tasks"], [1, 2])


def test_label_is_text(tmp):
    """A command line that is not UTF-8 (a Latin-1 file name), that has a
    newline or '<&"', or whose label is cut in the middle of a character
    still gives valid JSON and SVG (both must be UTF-8)."""
    svg = os.path.join(tmp, "label.svg")
    for args in ([b"caf\xe9\n<&\"'>"], ["\u00e9" * 200]):
        p = subprocess.run([SCALE, "-j", "-w", "1", "-r", "1", "--svg", svg,
                            "--", "/bin/true"] + args, capture_output=True,
                           timeout=240)
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        try:
            label = json.loads(p.stdout.decode("utf-8"))["workloads"][0][
                "label"]
            ET.parse(svg)
        except UnicodeDecodeError as e:
            raise Failure(f"{args[0][:20]!r}: not UTF-8: {e}")
        check(label.startswith("/bin/true ") and "\n" not in label,
              f"label {label!r}")


def test_not_weft(tmp):
    """A program that publishes nothing: times only."""
    out = run(["--workers", "1,2", "--repeat", "1", "--",
               "/bin/true"]).stdout
    lines = blocks(out)["command"]
    check_block("command", lines, HEAD, [1, 2])


BAD = [
    (["--workers", "0"], "not a worker count"),
    (["--workers", "1,x"], "not a worker count"),
    (["--workers", ","], "no worker counts"),
    (["--repeat", "0"], "--repeat"),
    (["--size", "huge"], "--size"),
    (["--suite", "pi,nope"], "no workload 'nope'"),
    (["--bogus"], "unrecognized option"),
    (["--json", "stray"], "goes after '--'"),
    (["--"], "no program after '--'"),
    (["--suite", "pi", "--", "/bin/true"], "a program brings its own"),
    (["--timeout", "0", "--", "/bin/true"], "--timeout: '0'"),
    (["--timeout", "1s", "--", "/bin/true"], "--timeout: '1s'"),
    (["--timeout", "nan", "--", "/bin/true"], "--timeout: 'nan'"),
    (["--timeout", "5"], "the built-in suite has none"),
]


def test_bad_arguments(tmp):
    for args, msg in BAD:
        err = run(args, expect=2).stderr
        check(msg in err, f"{args}: '{msg}' not in: {err}")
        check("usage:" in err, f"{args}: no usage")
    check("usage:" in run(["--help"]).stdout, "--help prints usage")


# Exits 3, naming them, when it has descriptors beyond 0, 1 and 2.
FDS = """
import os, sys
fds = [int(f) for f in os.listdir("/proc/self/fd")  # its own fd is
       if os.path.exists("/proc/self/fd/" + f)]       # closed by now
sys.exit("descriptors %s" % sorted(fds) if sorted(fds) != [0, 1, 2] else 0)
"""


def test_no_descriptors_leak(tmp):
    """The program gets weft-scale's 0, 1 and 2, and nothing more."""
    run(["-w", "1,2", "-r", "1", "--", sys.executable, "-c", FDS])


def test_failing_program(tmp):
    err = run(["--repeat", "1", "--", "/nonexistent/prog"], 1).stderr
    check("cannot run '/nonexistent/prog'" in err, err)
    err = run(["--workers", "1", "--repeat", "1", "--", PROG, "3"], 1).stderr
    check("exited with status 3" in err, err)
    # an --svg that cannot be written fails before anything runs
    marker = os.path.join(tmp, "ran")
    err = run(["-w", "1", "-r", "1", "--svg",
               os.path.join(tmp, "no", "such.svg"), "--", "/bin/sh", "-c",
               'touch "$0"', marker], 1).stderr
    check("cannot write" in err, err)
    check(not os.path.exists(marker), "the program ran before the --svg "
          "error")
    # a report that cannot be written (a full disk) is a failure too
    for fmt in ([], ["--json"]):
        with open("/dev/full", "w") as full:
            p = subprocess.run([SCALE, "-w", "1", "-r", "1"] + fmt +
                               ["--", "/bin/true"], stdout=full,
                               stderr=subprocess.PIPE, text=True,
                               timeout=240)
        check(p.returncode == 1 and "writing the" in p.stderr,
              f"{fmt} > /dev/full: exit {p.returncode}: {p.stderr}")


# A program that writes its pid to argv[1] and sleeps; with "ignore" it
# survives SIGTERM, saying so by creating argv[1] + ".got".
SLEEPER = """
import os, signal, sys, time
path = sys.argv[1]
if sys.argv[2:] == ["ignore"]:
    signal.signal(signal.SIGTERM,
                  lambda *a: open(path + ".got", "w").close())
with open(path + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(path + ".tmp", path)
time.sleep(120)
"""


def wait_file(path, proc):
    for _ in range(6000):
        if os.path.exists(path):
            return
        check(proc.poll() is None, f"weft-scale exited early: {proc.returncode}")
        time.sleep(0.01)
    raise Failure(f"{path} never appeared")


def gone(pid):
    """Whether pid no longer runs (weft-scale reaped it)."""
    for _ in range(1000):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    return False


def test_signal_passed_on(tmp):
    """A SIGTERM to weft-scale reaches the program (and a second one kills
    one that ignores the first); weft-scale then dies of it, leaving no
    program behind."""
    for mode in ([], ["ignore"]):
        path = os.path.join(tmp, "pid" + "".join(mode))
        p = subprocess.Popen([SCALE, "-w", "1", "-r", "1", "--",
                              sys.executable, "-c", SLEEPER, path] + mode,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            wait_file(path, p)
            with open(path) as f:
                pid = int(f.read())
            p.send_signal(signal.SIGTERM)
            if mode:
                wait_file(path + ".got", p)
                p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check(gone(pid), f"{mode}: the program still runs after weft-scale")
        check(rc == -signal.SIGTERM, f"{mode}: weft-scale exit {rc}, not "
              "death by SIGTERM")


def test_timeout(tmp):
    """A run past --timeout is stopped (SIGTERM; SIGKILL 3 s later for a
    program that ignores it), named in a message, and fails weft-scale;
    runs within it are measured as before."""
    run(["-w", "1,2", "-r", "1", "--timeout", "60", "--", PROG])
    for mode, how in (([], "stopped by SIGTERM\n"),
                      (["ignore"], "then SIGKILL")):
        path = os.path.join(tmp, "late" + "".join(mode))
        t0 = time.monotonic()
        p = run(["-w", "1", "-r", "1", "-t", "2", "--", sys.executable,
                 "-c", SLEEPER, path] + mode, expect=1)
        took = time.monotonic() - t0
        check("ran past the timeout of 2 s at 1 workers" in p.stderr and
              how in p.stderr, f"{mode}: {p.stderr}")
        with open(path) as f:
            check(gone(int(f.read())), f"{mode}: the program still runs")
        check(took < 60, f"{mode}: weft-scale took {took:.1f} s")
        if mode:
            check(os.path.exists(path + ".got"), "SIGTERM came first")


def main():
    global SCALE, PROG
    SCALE, PROG = sys.argv[1], os.path.abspath(sys.argv[2])
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in list(globals().items()):
            if not name.startswith("test_"):
                continue
            try:
                fn(tmp)
                print(f"ok   {name}")
            except (Failure, ValueError, KeyError, TypeError, ET.ParseError) as e:
                failed += 1
                print(f"FAIL {name}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
