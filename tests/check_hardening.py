#!/usr/bin/env python3
"""Checks that every executable of a build tree got the hardening that the
top-level CMakeLists asks for, by reading the binaries themselves (readelf),
the way checksec does:

  PIE       ELF type DYN: the program itself is placed at a random address
  RELRO     a GNU_RELRO segment: relocated data made read-only after start
  BIND_NOW  every symbol bound at start, so the GOT can be read-only as well
  canary    __stack_chk_fail is called (-fstack-protector-strong)
  fortify   a fortified libc function (__*_chk) is called (-D_FORTIFY_SOURCE)

Fortify only rewrites the calls whose buffer sizes the compiler knows, so a
small program may have none to rewrite: it is required of the installed
binaries, which have many, and only reported for the others.

A dynamic binary imports __stack_chk_fail and the __*_chk functions from
libc only if its own code calls them. A static one (the exec helper) holds
libc's own copies whatever its code does, so for it the references are
looked for in the objects of its target instead.

    check_hardening.py BUILD_DIR [--fortify]

--fortify: the build defines _FORTIFY_SOURCE (optimised, no sanitizer).
Exits 1 with a line per missing property, 0 when every binary has them.
"""

import os
import subprocess
import sys

# What `cmake --install` installs: these must show every property.
INSTALLED = {"tasksolver", "tasksolver-cli", "tasksolver-exec"}

# Built without hardening on purpose, each for a reason of its own.
EXEMPT = {
    # A bench task of one system call with no libc (bench/noop.c): there is
    # no libc to fortify or to supply __stack_chk_fail, and no loader to
    # relocate it; it measures the cost of exec alone.
    "bench_noop",
}


def readelf(*args):
    out = subprocess.run(["readelf", "-W", *args], capture_output=True, text=True, check=True)
    return out.stdout


def is_executable(path):
    if not os.access(path, os.X_OK) or path.endswith(".so"):
        return False
    with open(path, "rb") as f:
        head = f.read(18)
    # e_type (little-endian, offset 16): 2 EXEC, 3 DYN. Shared libraries
    # are DYN too but the build makes none.
    return head[:4] == b"\x7fELF" and head[16] in (2, 3)


def executables(build):
    for root, dirs, files in os.walk(build):
        # CMakeFiles holds the compiler checks' a.out files, not ours.
        dirs[:] = [d for d in dirs if d != "CMakeFiles"]
        for name in files:
            path = os.path.join(root, name)
            if is_executable(path):
                yield path


def target_objects(build, name):
    """The object files of target `name` (CMakeFiles/NAME.dir)."""
    objs = []
    for root, dirs, files in os.walk(build):
        if os.path.basename(root) == name + ".dir":
            objs += [os.path.join(root, f) for f in files if f.endswith(".o")]
    return objs


def undefined_symbols(paths, dynamic):
    syms = set()
    for p in paths:
        for line in readelf("--dyn-syms" if dynamic else "--syms", p).splitlines():
            f = line.split()
            if len(f) >= 8 and f[6] == "UND":
                syms.add(f[7].split("@")[0])
    return syms


def check(build, path, want_fortify):
    header = readelf("--file-header", path)
    segments = readelf("--program-headers", path)
    dynamic = readelf("--dynamic", path)
    static = "INTERP" not in segments
    missing = []
    if "Type:                              DYN" not in header:
        missing.append("PIE")
    if "GNU_RELRO" not in segments:
        missing.append("RELRO")
    if "BIND_NOW" not in dynamic and not any(
            "FLAGS_1" in l and " NOW" in l for l in dynamic.splitlines()):
        missing.append("BIND_NOW")
    if static:
        objs = target_objects(build, os.path.basename(path))
        if not objs:
            return missing + ["its objects (static binary, no CMakeFiles/NAME.dir)"], False
        syms = undefined_symbols(objs, dynamic=False)
    else:
        syms = undefined_symbols([path], dynamic=True)
    if "__stack_chk_fail" not in syms:
        missing.append("canary")
    fortified = any(s.startswith("__") and s.endswith("_chk") for s in syms)
    if want_fortify and not fortified and os.path.basename(path) in INSTALLED:
        missing.append("fortify")
    return missing, fortified


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    build = os.path.abspath(args[0])
    want_fortify = "--fortify" in sys.argv
    failed = checked = 0
    for path in sorted(executables(build)):
        rel = os.path.relpath(path, build)
        if os.path.basename(path) in EXEMPT:
            print("%-36s exempt" % rel)
            continue
        checked += 1
        missing, fortified = check(build, path, want_fortify)
        note = "" if fortified or not want_fortify else " (no call to fortify)"
        if missing:
            failed += 1
            print("%-36s MISSING %s" % (rel, ", ".join(missing)))
        else:
            print("%-36s ok%s" % (rel, note))
    print("%d binaries checked, %d without full hardening%s" %
          (checked, failed, "" if want_fortify else " (fortify not expected in this build)"))
    if not checked:
        sys.exit("no binaries found under %s" % build)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
