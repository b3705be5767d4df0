#!/usr/bin/env python3
"""Warm Python through the server, end to end, in its default configuration
(sandbox on, cells, the server root): the latency of a trivial python task
(print(1)) from create_task to the long poll that sees it finished (one
client, one keep-alive connection), against
a cold `python3 main.py` started directly (the runner, through
tests/pyfork_driver, with the same minimal environment) and against the
same server with --python-warm off; then the throughput of 2 workers, warm
against --python-warm off.

  python3 bench/python_bench.py [--rounds 6] [--tasks 25] [--burst 120] [--workers 2]

Every side is measured in alternating rounds in the same run, so that
load from other processes on the machine spreads over all of them; the
figures are medians. Exit status 1 if a target is missed: p50 latency
<= 0.35 x the direct cold start, throughput >= 3 x --python-warm off."""

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
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import BUILD_DIR, Server  # noqa: E402

TASK_PATH = "/usr/local/bin:/usr/bin:/bin"
PROGRAM = b"print(1)\n"


class Direct:
    """Cold `python3 main.py` started by the runner (tests/pyfork_driver),
    in a directory of its own, with the server's task environment."""

    def __init__(self, python):
        self.dir = tempfile.mkdtemp(prefix="python-bench-")
        with open(os.path.join(self.dir, "main.py"), "wb") as f:
            f.write(PROGRAM)
        self.env = ["PATH=" + TASK_PATH, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1",
                    "PYTHONUNBUFFERED=1", "HOME=" + self.dir, "TMPDIR=" + self.dir]
        self.python = python
        self.proc = subprocess.Popen([os.path.join(BUILD_DIR, "tests", "pyfork_driver")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def task(self):
        """Runs print(1) once; returns the time the driver measured, ms."""
        self.proc.stdin.write(json.dumps({"op": "cold", "python": self.python, "dir": self.dir,
                                          "main": "main.py", "env": self.env}) + "\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        if out.get("error") or base64.b64decode(out["stdout"]) != b"1\n" or out["code"] != 0:
            raise SystemExit("direct cold start failed: %s" % out)
        return out["wall_us"] / 1000

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Client:
    """One keep-alive connection to a server, as a client that runs tasks
    one after the other would keep."""

    BODY = json.dumps({"type": "python", "file": base64.b64encode(PROGRAM).decode()})

    def __init__(self, srv):
        self.conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)

    def request(self, method, path, body=None):
        self.conn.request(method, path, body=body)
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())

    def task(self):
        """Runs print(1) once: create, then long poll until it is done.
        Returns the latency, ms."""
        t0 = time.perf_counter()
        st, doc = self.request("POST", "/create_task", self.BODY)
        if st != 200:
            raise SystemExit("create_task: %d %r" % (st, doc))
        tid = doc["id"]
        while doc.get("status") not in ("SUCCESS", "ERROR"):
            st, doc = self.request("GET", "/get_status?id=%s&wait=30" % tid)
        ms = (time.perf_counter() - t0) * 1e3
        if doc["status"] != "SUCCESS" or doc["result"]["stdout"] != "1\n":
            raise SystemExit("task failed: %s" % json.dumps(doc)[:400])
        return ms

    def close(self):
        self.conn.close()


def burst(srv, n, clients=8):
    """Tasks per second for n tasks submitted by several clients at once,
    each waiting for its tasks (create, then long poll)."""
    errors = []

    def client(k):
        c = Client(srv)
        try:
            for _ in range(k):
                c.task()
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(e)
        finally:
            c.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("a burst task failed: %s" % errors[0])
    return (n // clients) * clients / (time.perf_counter() - t0)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def server(work, workers, *extra):
    srv = Server("--workers", str(workers), "--work-dir", work, "--log-level", "warn", *extra)
    info = srv.request("GET", "/info")[2]["sandbox"]
    return srv, info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=shutil.which("python3", path=TASK_PATH))
    ap.add_argument("--rounds", type=int, default=6, help="alternating latency rounds")
    ap.add_argument("--tasks", type=int, default=25, help="tasks per side and round")
    ap.add_argument("--burst", type=int, default=120,
                    help="tasks per throughput slice (3 slices per side; 0: skip)")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="python-bench-")
    direct = Direct(a.python)
    warm, winfo = server(os.path.join(work, "warm"), 1)
    cold, _ = server(os.path.join(work, "cold"), 1, "--python-warm", "off")
    if not winfo.get("python_warm", {}).get("active"):
        raise SystemExit("warm Python is not active: %s" % winfo.get("python_warm"))
    wc, cc = Client(warm), Client(cold)
    sides = {"direct": direct.task, "warm": wc.task, "cold": cc.task}
    lat = {k: [] for k in sides}
    try:
        for _ in range(5):  # the page cache, the cells and the fork server
            for f in sides.values():
                f()
        for r in range(a.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(list(sides)))
            for k in order:
                for _ in range(a.tasks):
                    lat[k].append(sides[k]())
    finally:
        direct.close()
        wc.close()
        cc.close()
        warm.stop()
        cold.stop()
    print("%s, print(1), %d tasks per side (%d alternating rounds), load average %.1f"
          % (a.python, len(lat["warm"]), a.rounds, os.getloadavg()[0]))
    print("%-44s %9s %9s %9s" % ("latency", "p50 ms", "p99 ms", "min ms"))
    names = {"direct": "cold python3 main.py, started directly",
             "cold": "server, --python-warm off (create + wait)",
             "warm": "server, warm Python (create + wait)"}
    for k in ("direct", "cold", "warm"):
        print("%-44s %9.2f %9.2f %9.2f" % (names[k], pct(lat[k], 50), pct(lat[k], 99),
                                           min(lat[k])))
    ratio = pct(lat["warm"], 50) / pct(lat["direct"], 50)
    print("p50 warm through the server / direct cold start: %.2f (target <= 0.35)" % ratio)
    ok = ratio <= 0.35

    if a.burst > 0:
        warm, _ = server(os.path.join(work, "warm2"), a.workers)
        cold, _ = server(os.path.join(work, "cold2"), a.workers, "--python-warm", "off")
        rates = {"warm": [], "cold": []}
        try:
            for srv in (warm, cold):
                burst(srv, 16)  # cells and fork servers up
            for r in range(3):
                for k in (("warm", "cold") if r % 2 == 0 else ("cold", "warm")):
                    rates[k].append(burst(warm if k == "warm" else cold, a.burst))
        finally:
            warm.stop()
            cold.stop()
        w, c = statistics.median(rates["warm"]), statistics.median(rates["cold"])
        print("throughput, %d workers, 8 clients: --python-warm off %.0f tasks/s, warm %.0f "
              "tasks/s: x%.2f (target >= 3; medians of 3 slices of %d tasks)"
              % (a.workers, c, w, w / c, a.burst))
        ok &= w / c >= 3
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
