#!/usr/bin/env python3
"""One task with 100 tests against 100 separate tasks: the wall time, from
the first request to the last result seen, of the same program and inputs
run both ways on one server as it ships (sandbox on, warm Python), in
alternating rounds; the figures are medians.

  python3 bench/tests_bench.py [--build DIR] [--workers 1] [--tests 100] [--rounds 3]

The separate tasks are all submitted first, then each result is long
polled, so with several workers they run side by side while the tests of
one task run one after the other: the ratio is fair with --workers 1 and
shows what a judge loses or gains per submission with more. Builds
nothing: expects a build directory (default: build/ next to bench/, or
$TS_BUILD_DIR)."""

import argparse
import base64
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LISTEN_RE = re.compile(r"listening on http://([0-9.]+):(\d+)")

PROGRAMS = {
    "python": "print(int(input()) * 2)\n",
    "bin": "#!/bin/sh\nread n; echo $((n * 2))\n",
}


class Server:
    """A tasksolver on a free port; its log is drained so it never blocks."""

    def __init__(self, binary, workers):
        self.proc = subprocess.Popen([binary, "--port", "0", "--workers", str(workers)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.addr = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                m = LISTEN_RE.search(line)
                if m and not ready.is_set():
                    self.addr = (m.group(1), int(m.group(2)))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(30) or not self.addr:
            self.stop()
            sys.exit("tests_bench: the server did not start")

    def request(self, method, path, doc=None):
        conn = http.client.HTTPConnection(*self.addr, timeout=600)
        try:
            conn.request(method, path, body=json.dumps(doc) if doc is not None else None)
            resp = conn.getresponse()
            data = json.loads(resp.read())
            if resp.status != 200:
                sys.exit("tests_bench: %s %s: %d %r" % (method, path, resp.status, data))
            return data
        finally:
            conn.close()

    def wait(self, tid):
        while True:
            doc = self.request("GET", "/get_status?id=%s&wait=30" % tid)
            if doc["status"] in ("SUCCESS", "ERROR"):
                return doc

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


def one_task(srv, type_, n):
    doc = {"type": type_, "file": base64.b64encode(PROGRAMS[type_].encode()).decode(),
           "tests": [{"stdin": str(i), "expected_output": str(2 * i)} for i in range(n)]}
    t0 = time.monotonic()
    res = srv.wait(srv.request("POST", "/create_task", doc)["id"])
    wall = time.monotonic() - t0
    if res["status"] != "SUCCESS" or res["result"]["passed"] != n:
        sys.exit("tests_bench: the tests task failed: %r" % res.get("error"))
    return wall


def separate_tasks(srv, type_, n):
    file = base64.b64encode(PROGRAMS[type_].encode()).decode()
    t0 = time.monotonic()
    ids = [srv.request("POST", "/create_task", {"type": type_, "file": file, "stdin": str(i)})["id"]
           for i in range(n)]
    for i, tid in enumerate(ids):
        res = srv.wait(tid)
        if res["status"] != "SUCCESS" or res["result"]["stdout"].strip() != str(2 * i):
            sys.exit("tests_bench: task %d failed: %r" % (i, res.get("error")))
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("TS_BUILD_DIR",
                                                      os.path.join(HERE, "..", "build")))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--tests", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    binary = os.path.join(a.build, "server", "tasksolver")
    if not os.access(binary, os.X_OK):
        sys.exit("tests_bench: no %s: build the tree first" % binary)
    srv = Server(binary, a.workers)
    try:
        print("%d inputs, %d worker(s), median of %d rounds (seconds of wall time)"
              % (a.tests, a.workers, a.rounds))
        print("%-7s %12s %12s %8s" % ("type", "one task", "separate", "ratio"))
        for type_ in PROGRAMS:
            one, sep = [], []
            one_task(srv, type_, 2)  # the worker's cell and fork server are made
            for _ in range(a.rounds):
                one.append(one_task(srv, type_, a.tests))
                sep.append(separate_tasks(srv, type_, a.tests))
            mo, ms = statistics.median(one), statistics.median(sep)
            print("%-7s %12.3f %12.3f %7.2fx" % (type_, mo, ms, ms / mo))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
