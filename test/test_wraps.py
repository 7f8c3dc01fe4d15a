#!/usr/bin/env python3
"""The dependency wraps are whole, checked offline (meson runs it):

    test_wraps.py SOURCE_ROOT

For each subprojects/*.wrap: the keys meson needs are there; both
addresses name the file the wrap says; the hash is a sha256; the patch
directory holds a meson.build that overrides the dependency the wrap
provides, under the name and variable that the top meson.build's
fallback asks for; and a tarball already in subprojects/packagecache/
has that hash. Downloading and building them is `tools/dev wraps`.
Python standard library only."""

import configparser
import hashlib
import os
import re
import sys

WANT = {"hwloc": "hwloc", "liburing": "liburing", "mimalloc": "mimalloc"}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def fallbacks(top):
    """{dependency name: (subproject, variable)} from meson.build."""
    text = open(os.path.join(top, "meson.build")).read()
    pat = (r"dependency\('([\w-]+)'(?:(?!dependency\().)*?"
           r"fallback: \['([\w-]+)', '(\w+)'\]")
    return {m[0]: (m[1], m[2]) for m in re.findall(pat, text, re.S)}


def check_wrap(top, sub, dep, want):
    path = os.path.join(top, "subprojects", sub + ".wrap")
    ini = configparser.ConfigParser(interpolation=None)
    if not ini.read(path):
        fail("%s: missing" % path)
    w = ini["wrap-file"]
    for key in ("directory", "source_url", "source_fallback_url",
                "source_filename", "source_hash", "patch_directory"):
        if not w.get(key):
            fail("%s: no %s" % (path, key))
    name = w["source_filename"]
    for key in ("source_url", "source_fallback_url"):
        if w[key].rsplit("/", 1)[-1] != name:
            fail("%s: %s does not end in %s" % (path, key, name))
    if not re.fullmatch(r"[0-9a-f]{64}", w["source_hash"]):
        fail("%s: source_hash is not a sha256" % path)
    subproject, variable = want
    if subproject != sub:
        fail("meson.build falls back on %s for %s, not %s"
             % (subproject, dep, sub))
    if ini["provide"].get(dep) != variable:
        fail("%s: [provide] %s is not %s" % (path, dep, variable))
    build = os.path.join(top, "subprojects", "packagefiles",
                         w["patch_directory"], "meson.build")
    if not os.path.isfile(build):
        fail("%s: no %s" % (path, build))
    text = open(build).read()
    if not re.search(r"%s\s*=\s*declare_dependency" % variable, text):
        fail("%s: does not declare %s" % (build, variable))
    if "override_dependency('%s', %s)" % (dep, variable) not in text:
        fail("%s: does not override %s" % (build, dep))
    cached = os.path.join(top, "subprojects", "packagecache", name)
    if os.path.isfile(cached):
        with open(cached, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if got != w["source_hash"]:
            fail("%s: sha256 %s, the wrap says %s" % (cached, got,
                                                      w["source_hash"]))
        print("%s: cached tarball matches" % sub)
    print("%s: ok" % sub)


def main():
    if len(sys.argv) != 2:
        fail("usage: test_wraps.py SOURCE_ROOT")
    top = sys.argv[1]
    fb = fallbacks(top)
    for sub, dep in WANT.items():
        if dep not in fb:
            fail("meson.build has no fallback for %s" % dep)
        check_wrap(top, sub, dep, fb[dep])


if __name__ == "__main__":
    main()
