#!/usr/bin/env python3
"""weft-top's tests, run by meson (tools/meson.build):

    test_weft_top.py batch|tmux|args WEFT_TOP STATS_TARGET

batch  weft-top -b shows a running stats_target's runtime and workers with
       counters that increase, and no longer lists it once it has exited
       or was killed (its segment removed); one that left its last
       snapshot (WEFT_STATS_KEEP) shows with -a only; junk in /dev/shm is
       ignored.
tmux   the interactive screen, driven in a detached tmux session: it shows
       the runtime and its worker bars, and q quits. Skipped (77) without
       tmux.
args   bad arguments give a message on stderr, the usage and status 2;
       an output that cannot be written gives status 1.

Python standard library only."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time

SKIP = 77
TIMEOUT = 60


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def unique(prefix):
    return "%s-%d-%d" % (prefix, os.getpid(), time.monotonic_ns() % 100000)


def start_target(target, name, seconds, end="destroy", keep=False):
    """stats_target publishing as name; returns once its runtime exists.
    One that dies without destroying its runtime publishes only once (the
    longest WEFT_STATS_MS), so that it dies between two writes, not in
    one: the case tested here is the dead process, not the torn write."""
    env = dict(os.environ, WEFT_STATS=name)
    env.pop("WEFT_STATS_KEEP", None)
    env.pop("WEFT_STATS_MS", None)
    if end != "destroy":
        env["WEFT_STATS_MS"] = "60000"
    if keep:
        env["WEFT_STATS_KEEP"] = "1"
    p = subprocess.Popen([target, "-s", str(seconds), "-w", "2", "-e", end],
                         stdout=subprocess.PIPE, env=env, text=True)
    line = p.stdout.readline()
    check(line.startswith("ready pid=%d" % p.pid),
          "stats_target did not start: %r" % line)
    return p


def run(cmd, timeout=TIMEOUT, **kw):
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout, **kw)


# ---------------------------------------------------------------- batch

def fields(line):
    """'kind k=v k="v w" ...' -> (kind, dict)."""
    parts = shlex.split(line)
    return parts[0], dict(p.split("=", 1) for p in parts[1:])


def snapshots(text):
    """weft-top -b output -> list of snapshots, each a list of
    (kind, fields) with comments left out."""
    snaps = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, f = fields(line)
        if kind == "snapshot":
            snaps.append([])
        check(snaps, "output does not start with a snapshot line")
        snaps[-1].append((kind, f))
    return snaps


def runtime_of(snap, name):
    """The runtime line of name in a snapshot and its worker lines."""
    rts = [f for k, f in snap if k == "runtime" and f["name"] == name]
    if not rts:
        return None, []
    check(len(rts) == 1, "%s listed %d times" % (name, len(rts)))
    workers = [f for k, f in snap if k == "worker" and f["id"] == rts[0]["id"]]
    return rts[0], workers


def top_batch(top, count, delay, *more):
    p = run([top, "-b", "-n", str(count), "-d", str(delay)] + list(more))
    check(p.returncode == 0, "weft-top -b: exit %d: %s"
          % (p.returncode, p.stderr))
    snaps = snapshots(p.stdout)
    check(len(snaps) == count, "%d snapshots, not %d:\n%s"
          % (len(snaps), count, p.stdout))
    return snaps, p.stdout


def check_running(snaps, name, pid, out):
    seen = []
    for s in snaps:
        rt, workers = runtime_of(s, name)
        check(rt is not None, "%s not listed:\n%s" % (name, out))
        check(rt["pid"] == str(pid), "pid %s, not %d" % (rt["pid"], pid))
        check(rt["workers"] == "2", "workers=%s, not 2" % rt["workers"])
        check(rt["state"] == "running", "state=%s" % rt["state"])
        check(sorted(int(w["index"]) for w in workers) == [0, 1],
              "worker lines: %s" % workers)
        for w in workers:
            check(0 <= float(w["util_pct"]) <= 100, "util %s" % w)
        # the first snapshot may predate the actor's spawn (the segment
        # is published at create, then every WEFT_STATS_MS)
        check(rt["actors"] in ("1", "-"), "stats_target's one actor: %s"
              % rt)
        check(rt["peers"] == "-", "no peers should show '-': %s" % rt)
        seen.append(rt)
    for key in ("tasks", "map_items", "maps", "messages_handled"):
        # '-' is how batch mode shows a counter still at 0
        first, last = [int(x) if x != "-" else 0
                       for x in (seen[0][key], seen[-1][key])]
        check(last > first, "%s did not increase: %d -> %d\n%s"
              % (key, first, last, out))
    check(seen[-1]["actors"] == "1", "stats_target's one actor, last "
          "snapshot: %s" % seen[-1])
    check(float(seen[-1]["tasks_per_s"]) > 0, "no tasks per second")
    check(float(seen[-1]["util_pct"]) > 0, "no utilisation")


def check_gone(top, name, pid):
    snaps, out = top_batch(top, 1, 0.1)
    rt, _ = runtime_of(snaps[0], name)
    check(rt is None, "%s still listed after it ended:\n%s" % (name, out))
    left = [f for f in os.listdir("/dev/shm")
            if f.startswith("weft-%d-" % pid)]
    check(not left, "segments left behind: %s" % left)


def check_kept(top, target):
    """A runtime that no longer runs but left its last snapshot
    (WEFT_STATS_KEEP=1) shows with -a only, as exited or dead."""
    for end, state in (("destroy", "exited"), ("kill", "dead")):
        name = unique("wt-keep")
        p = start_target(target, name, 0.5, end, keep=True)
        p.wait(timeout=TIMEOUT)
        try:
            snaps, out = top_batch(top, 1, 0.1)
            check(runtime_of(snaps[0], name)[0] is None,
                  "%s (%s) listed without -a:\n%s" % (name, state, out))
            snaps, out = top_batch(top, 1, 0.1, "-a", "-p", str(p.pid))
            rt, workers = runtime_of(snaps[0], name)
            check(rt is not None and rt["state"] == state
                  and len(workers) == 2,
                  "%s not listed as %s with -a:\n%s" % (name, state, out))
        finally:
            for f in os.listdir("/dev/shm"):
                if f.startswith("weft-%d-" % p.pid):
                    os.unlink(os.path.join("/dev/shm", f))


def check_hostile_name(top, target):
    """A segment whose file name holds a terminal escape and a space (any
    process of the user can name a file so) is shown with neither: the
    escape would reach the terminal and the space would split batch mode's
    key=value words."""
    name = unique("wt-esc")
    p = start_target(target, name, 0.3, keep=True)
    p.wait(timeout=TIMEOUT)
    mine = [f for f in os.listdir("/dev/shm")
            if f.startswith("weft-%d-" % p.pid)]
    hostile = "/dev/shm/weft-%d-\x1b[2J x" % p.pid
    try:
        check(len(mine) == 1, "kept segment missing: %s" % mine)
        os.rename(os.path.join("/dev/shm", mine[0]), hostile)
        snaps, out = top_batch(top, 1, 0.1, "-a", "-p", str(p.pid))
        check("\x1b" not in out, "an escape reached the output:\n%r" % out)
        rt, workers = runtime_of(snaps[0], name)
        check(rt is not None and rt["id"] == "weft-%d-?[2J?x" % p.pid
              and len(workers) == 2,
              "hostile segment not shown cleaned:\n%r" % out)
    finally:
        for f in os.listdir("/dev/shm"):
            if f.startswith("weft-%d-" % p.pid):
                os.unlink(os.path.join("/dev/shm", f))


def junk_segment():
    """A file in /dev/shm named like a weft segment, holding junk."""
    path = "/dev/shm/weft-junk-%d" % os.getpid()
    with open(path, "wb") as f:
        f.write(b"\xa5" * 300)
    return path


def test_batch(top, target):
    junk = junk_segment()
    try:
        name = unique("wt-batch")
        p = start_target(target, name, 4)
        snaps, out = top_batch(top, 3, 0.5)
        check_running(snaps, name, p.pid, out)
        check(p.wait(timeout=TIMEOUT) == 0, "stats_target failed")
        check_gone(top, name, p.pid)
        check(os.path.exists(junk), "weft-top's listing removed junk")
        for end in ("exit", "kill"):
            name = unique("wt-" + end)
            p = start_target(target, name, 0.5, end)
            p.wait(timeout=TIMEOUT)
            check_gone(top, name, p.pid)
        check_kept(top, target)
        check_hostile_name(top, target)
    finally:
        os.unlink(junk)


# ---------------------------------------------------------------- tmux

class Tmux:
    """A tmux server of our own (its own socket, no user config), so the
    test neither sees nor disturbs the user's sessions."""

    def __init__(self):
        self.sock = "weft-top-test-%d" % os.getpid()
        self.env = dict(os.environ, TERM="xterm-256color")

    def __call__(self, *args, check_rc=True):
        p = run(["tmux", "-L", self.sock, "-f", "/dev/null"] + list(args),
                timeout=20, env=self.env)
        if check_rc and p.returncode != 0:
            fail("tmux %s: %s" % (" ".join(args), p.stderr))
        return p

    def alive(self, session):
        return self("has-session", "-t", session,
                    check_rc=False).returncode == 0

    def close(self):
        self("kill-server", check_rc=False)


def wait_for(fn, seconds):
    """fn()'s first true value within seconds, or None."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    return None


# "   1    1    0 [|||||---    42.1%] ...": index, cpu ('-' when not
# pinned), node, then the bar
WORKER_ROW = re.compile(
    r"^\s+(\d+)\s+(?:-|\d+)\s+\d+\s+\[[|\- ]*\d+\.\d%\]", re.M)


def screen_ready(tmux, name):
    screen = tmux("capture-pane", "-p", "-t", "top").stdout
    rows = {int(m.group(1)) for m in WORKER_ROW.finditer(screen)}
    busy = "[|" in screen  # the first frames may come before any work
    if name in screen and {0, 1} <= rows and "weft-top" in screen and busy:
        return screen
    return None


def test_tmux(top, target):
    if not shutil.which("tmux"):
        print("tmux not installed (tools/dev deps installs it)")
        sys.exit(SKIP)
    name = unique("wt-tmux")
    p = start_target(target, name, 30)
    tmux = Tmux()
    status = "/tmp/weft-top-test-%d.status" % os.getpid()
    # -p: other tests' runtimes may be on the machine too
    cmd = "TERM=xterm-256color %s -d 0.5 -p %d; echo $? > %s" % (
        shlex.quote(top), p.pid, status)
    try:
        tmux("new-session", "-d", "-s", "top", "-x", "120", "-y", "40", cmd)
        if not wait_for(lambda: screen_ready(tmux, name), 20):
            fail("no runtime %s with busy workers' bars on the screen:\n%s"
                 % (name, tmux("capture-pane", "-p", "-t", "top").stdout))
        tmux("send-keys", "-t", "top", "q")
        check(wait_for(lambda: not tmux.alive("top"), 5),
              "weft-top still runs 5 s after q")
        with open(status) as f:
            rc = f.read().strip()
        check(rc == "0", "weft-top exited with %s" % rc)
    finally:
        tmux.close()
        p.kill()
        p.wait()
        if os.path.exists(status):
            os.unlink(status)


# ---------------------------------------------------------------- args

BAD = [
    (["-n", "0"], "-n"), (["-n", "x"], "-n"), (["-n", "3x"], "-n"),
    (["-d", "abc"], "-d"), (["-d", "0"], "-d"), (["-d", "nan"], "-d"),
    (["-d", "1e9"], "-d"), (["-d"], "needs a value"),
    (["-x"], "unknown option -x"), (["extra"], "unexpected argument"),
    (["-p", "0"], "-p"), (["-p", "12ab"], "-p"),
]


def test_args(top, target):
    for args, words in BAD:
        p = run([top] + args, stdin=subprocess.DEVNULL)
        check(p.returncode == 2, "weft-top %s: exit %d, not 2"
              % (" ".join(args), p.returncode))
        check(words in p.stderr and "usage:" in p.stderr,
              "weft-top %s: unclear message: %r" % (" ".join(args),
                                                    p.stderr))
        check(p.stdout == "", "weft-top %s wrote to stdout" % args)
    p = run([top, "-h"])
    check(p.returncode == 0 and "usage:" in p.stdout, "-h: %r" % p.stdout)
    # interactive mode without a terminal: a message, not a broken screen
    p = run([top, "-n", "1"], stdin=subprocess.DEVNULL)
    check(p.returncode == 1 and "terminal" in p.stderr,
          "no terminal: exit %d, %r" % (p.returncode, p.stderr))
    # an output that cannot be written is a failure, not silence
    with open("/dev/full", "w") as full:
        p = subprocess.run([top, "-b", "-n", "1"], stdout=full,
                           stderr=subprocess.PIPE, text=True,
                           timeout=TIMEOUT)
    check(p.returncode == 1 and "writing to stdout" in p.stderr,
          "-b > /dev/full: exit %d, %r" % (p.returncode, p.stderr))
    # a count beyond an int is shown as given, not wrapped
    p = subprocess.Popen([top, "-b", "-n", "3000000000", "-d", "0.05"],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = next(l for l in p.stdout if l.startswith("snapshot "))
    finally:
        p.kill()
        p.wait()
    check(" of=3000000000 " in line, "-n 3000000000: %r" % line)
    for args in (["-s", "x"], ["-e", "boom"], ["-w", "0"]):
        p = run([target] + args)
        check(p.returncode == 2 and "usage:" in p.stderr,
              "stats_target %s: exit %d" % (args, p.returncode))


def main(argv):
    tests = {"batch": test_batch, "tmux": test_tmux, "args": test_args}
    if len(argv) != 4 or argv[1] not in tests:
        print("usage: test_weft_top.py batch|tmux|args WEFT_TOP "
              "STATS_TARGET", file=sys.stderr)
        return 2
    tests[argv[1]](os.path.abspath(argv[2]), os.path.abspath(argv[3]))
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
