#!/usr/bin/env python3
"""weft-store's test, run by meson (tools/meson.build):

    test_weft_store.py WEFT_STORE

Creates a store through the tool (put -c), then lists, stats, gets (the
bytes must round-trip), shows info, checks, deletes and unlinks; bad ids,
a missing store and a missing object give their exit statuses (2, 1, 1).
Python standard library only."""

import os
import subprocess
import sys


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(tool, *args, data=None, want=0):
    p = subprocess.run([tool] + list(args), input=data, capture_output=True,
                       timeout=60)
    if p.returncode != want:
        fail("%s: exit %d, wanted %d\n%s" % (" ".join(args), p.returncode,
                                             want, p.stderr.decode()))
    return p.stdout


def main():
    tool = sys.argv[1]
    name = "weft-test-tool-%d" % os.getpid()
    a, b = "11" * 20, "ab" * 19 + "cd"
    blob = bytes((i * 7 + 3) % 256 for i in range(100000))
    try:
        run(tool, "-c", "4", name, "put", a, data=blob)
        run(tool, name, "put", b, data=b"hello")
        out = run(tool, name, "list").decode()
        if a not in out or b not in out or "sealed" not in out:
            fail("list: " + out)
        out = run(tool, name, "stat", a).decode()
        if "100000" not in out:
            fail("stat: " + out)
        if run(tool, name, "get", a) != blob:
            fail("get: bytes differ")
        out = run(tool, name, "info").decode()
        for word in ("capacity", "4194304", "evictions", "spills",
                     "objects    2 in memory (2 sealed)"):
            if word not in out:
                fail("info lacks %r:\n%s" % (word, out))
        if "consistent" not in run(tool, name, "check").decode():
            fail("check")
        run(tool, name, "delete", b)
        run(tool, name, "delete", b, want=1)
        run(tool, name, "stat", b, want=1)
        run(tool, name, "stat", "xyz", want=2)
        run(tool, name, "frobnicate", want=2)
        run(tool, want=2)
        run(tool, name + "-missing", "info", want=1)
        run(tool, name, "unlink")
        run(tool, name, "info", want=1)
    finally:
        subprocess.run([tool, name, "unlink"], capture_output=True)
    print("ok")


if __name__ == "__main__":
    main()
