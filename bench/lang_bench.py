#!/usr/bin/env python3
"""Languages with a compile step through the server, end to end, in its
default configuration (sandbox on, cells, the server root): the wall time
of a C hello world (gcc, then the program) and of a C++ one, from
create_task to the answer of create_task?wait (one client, one keep-alive
connection, one worker), against a python print(1) on the same server.
Tasks of each kind alternate, so that load from other processes on the
machine spreads over all of them; the figures are percentiles of each
kind, and the ratios of their medians to python's. Beside them, the same
compile and run done directly (the compiler and the program started from
here, no server, no sandbox), for what the server adds.

  python3 bench/lang_bench.py [--tasks 30]

The compile and run halves come from the status documents: run_ms is the
whole task, from its start to its end; the program's own CPU is cpu_ms."""

import argparse
import base64
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import Server  # noqa: E402

SOURCES = {
    "python": b"print(1)\n",
    "c": b'#include <stdio.h>\nint main(void) { printf("1\\n"); return 0; }\n',
    "cpp": b"#include <iostream>\nint main() { std::cout << 1 << std::endl; }\n",
}


# What the shipped languages file runs, for the direct side, found in the
# tasks' PATH (a user's PATH may put a slower shim first).
TASK_PATH = "/usr/local/bin:/usr/bin:/bin"
DIRECT = {
    "python": (None, "main.py", [shutil.which("python3", path=TASK_PATH), "main.py"]),
    "c": (["gcc", "-O2", "-pipe", "-o", "main", "main.c", "-lm"], "main.c", ["./main"]),
    "cpp": (["g++", "-O2", "-pipe", "-o", "main", "main.cpp"], "main.cpp", ["./main"]),
}


def direct(kind, workdir):
    """Compiles (if need be) and runs kind's source in workdir; wall ms."""
    compile_cmd, name, run_cmd = DIRECT[kind]
    with open(os.path.join(workdir, name), "wb") as f:
        f.write(SOURCES[kind])
    t0 = time.monotonic()
    env = {"PATH": TASK_PATH, "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
    if compile_cmd:
        subprocess.run(compile_cmd, cwd=workdir, check=True, env=env)
    out = subprocess.run(run_cmd, cwd=workdir, check=True, capture_output=True, env=env).stdout
    wall = (time.monotonic() - t0) * 1000
    if out != b"1\n":
        raise SystemExit("direct %s printed %r" % (kind, out))
    return wall


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


class Client:
    """One keep-alive connection; each task is one create_task?wait."""

    def __init__(self, srv):
        self.conn = http.client.HTTPConnection(srv.host, srv.port, timeout=120)

    def task(self, kind):
        body = json.dumps({"type": kind, "file": base64.b64encode(SOURCES[kind]).decode()})
        t0 = time.monotonic()
        self.conn.request("POST", "/create_task?wait=60", body=body)
        doc = json.loads(self.conn.getresponse().read())
        wall = (time.monotonic() - t0) * 1000
        if doc.get("status") != "SUCCESS" or doc["result"]["stdout"] != "1\n":
            raise SystemExit("%s task failed: %s" % (kind, doc))
        return wall, doc["meta"]["run_ms"]

    def close(self):
        self.conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=30, help="tasks of each kind")
    a = ap.parse_args()
    srv = Server("--workers", "1", "--log-level", "warn")
    workdir = tempfile.mkdtemp(prefix="lang-bench-")
    dwall = {k: [] for k in SOURCES}
    try:
        cl = Client(srv)
        for kind in SOURCES:  # the cell, warm Python, the compiler's pages
            cl.task(kind)
        wall = {k: [] for k in SOURCES}
        run = {k: [] for k in SOURCES}
        for _ in range(a.tasks):
            for kind in SOURCES:
                w, r = cl.task(kind)
                wall[kind].append(w)
                run[kind].append(r)
                dwall[kind].append(direct(kind, workdir))
        cl.close()
    finally:
        srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    base = statistics.median(wall["python"])
    print("%d tasks of each kind, one worker, sandbox on (cells), one client" % a.tasks)
    print("load average at the end: %s" % open("/proc/loadavg").read().split()[0])
    print("%-7s %9s %9s %9s %11s %9s %14s" % ("type", "p50 ms", "p90 ms", "max ms", "run p50 ms",
                                              "x python", "direct p50 ms"))
    for kind in SOURCES:
        print("%-7s %9.1f %9.1f %9.1f %11.1f %9.1f %14.1f" %
              (kind, statistics.median(wall[kind]), pct(wall[kind], 0.9), max(wall[kind]),
               statistics.median(run[kind]), statistics.median(wall[kind]) / base,
               statistics.median(dwall[kind])))


if __name__ == "__main__":
    main()
