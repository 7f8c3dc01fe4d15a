#!/usr/bin/env python3
"""weft-store's test, run by meson (tools/meson.build):

    test_weft_store.py WEFT_STORE

Creates a store through the tool (put -c), then lists, stats, gets (the
bytes must round-trip), shows info, checks, deletes and unlinks; bad ids,
a missing store and a missing object give their exit statuses (2, 1, 1).
A FILE that cannot be read or never ends (/dev/zero), or a stdout that cannot be written (/dev/full),
fails with status 1 instead of storing or printing nothing; an unknown
command, wrong argument counts and -c with a command other than put are
bad usage (2), checked before the store is opened, and make no store.
Python standard library only."""

import os
import subprocess
import sys


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(tool, *args, data=None, want=0, says=None, stdout=None):
    p = subprocess.run([tool] + list(args), input=data, timeout=60,
                       stdout=stdout or subprocess.PIPE,
                       stderr=subprocess.PIPE)
    err = p.stderr.decode()
    if p.returncode != want:
        fail("%s: exit %d, wanted %d\n%s" % (" ".join(args), p.returncode,
                                             want, err))
    if says is not None and says not in err:
        fail("%s: %r not in the message %r" % (" ".join(args), says, err))
    return p.stdout


def shm_has(name):
    return os.path.exists("/dev/shm/" + name)


def bad_input(tool, name, a):
    """Errors that used to pass as success, and bad command lines."""
    c = "cc" * 20
    # a directory reads as an error, not as an empty object
    run(tool, name, "put", c, "/", want=1, says="/: Is a directory")
    run(tool, name, "stat", c, want=1)
    # an input larger than the store fails as soon as it is: /dev/zero
    # would otherwise be read until the memory runs out
    run(tool, name, "put", c, "/dev/zero", want=1,
        says="larger than the store (4194304 bytes)")
    # a full disk under stdout is a failure of get, info and list
    with open("/dev/full", "wb") as full:
        run(tool, name, "get", a, want=1, says="writing to stdout",
            stdout=full)
        run(tool, name, "info", want=1, says="writing to stdout",
            stdout=full)
        run(tool, name, "list", want=1, says="writing to stdout",
            stdout=full)
    # bad usage: status 2 and the usage, the store untouched
    other = name + "-never"
    run(tool, name, "frobnicate", want=2, says="unknown command")
    run(tool, other, "frobnicate", want=2, says="unknown command")
    run(tool, name, "info", "extra", want=2, says="too many arguments")
    run(tool, name, "get", want=2, says="missing argument")
    run(tool, other, "stat", "xyz", want=2, says="40 hex digits")
    run(tool, "-c", "4", other, "info", want=2, says="for put only")
    run(tool, "-c", "-18446744073709551615", other, "put", c, data=b"x",
        want=2, says="bad capacity")
    if shm_has(other):
        subprocess.run([tool, other, "unlink"], capture_output=True)
        fail("a bad command line made the store " + other)
    # a file in /dev/shm that is not a store
    junk = "weft-test-tool-junk-%d" % os.getpid()
    with open("/dev/shm/" + junk, "wb") as f:
        f.write(b"not a store" * 1000)
    try:
        run(tool, junk, "info", want=1, says="not a weft store")
    finally:
        os.unlink("/dev/shm/" + junk)
    run(tool, "a/b", "info", want=1, says="is not a store name")


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
        bad_input(tool, name, a)
        run(tool, want=2)
        run(tool, name + "-missing", "info", want=1)
        run(tool, name, "unlink")
        run(tool, name, "info", want=1)
    finally:
        subprocess.run([tool, name, "unlink"], capture_output=True)
    print("ok")


if __name__ == "__main__":
    main()
