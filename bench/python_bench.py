#!/usr/bin/env python3
"""Warm Python through the server, end to end, in its default configuration
(sandbox on, cells, the server root): the latency of a trivial python task
(print(1)) from create_task to the long poll that sees it finished (one
client, one keep-alive connection), against
a cold `python3 main.py` started directly (the runner, through
tests/pyfork_driver, with the same minimal environment) and against the
same server with --python-warm off; then the throughput of 2 workers, warm
against --python-warm off, driven by build/bench/bench_load (-t python, 8
keep-alive connections, create then long poll, one C thread, so that the
driver takes little of the CPU the servers share with it), with the CPU
time per task of the server and everything it runs.

  python3 bench/python_bench.py [--rounds 6] [--tasks 25] [--slices 3] [--seconds 5]

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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import BUILD_DIR, Server  # noqa: E402
from sandbox_overhead import cpu_ms  # noqa: E402

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
        self.srv = srv
        self.conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)

    def request(self, method, path, body=None):
        try:
            self.conn.request(method, path, body=body)
            resp = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the connection after --keep-alive-timeout
            # (5 s): a side can wait that long for its round on a loaded
            # machine. A client then connects again.
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=60)
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


def load(srv, seconds, program):
    """bench_load against srv for `seconds`: (tasks/s, CPU ms per task of
    the server and everything it ran)."""
    c0 = cpu_ms(srv.proc.pid)
    out = subprocess.run([os.path.join(BUILD_DIR, "bench", "bench_load"), "-c", "8", "-d",
                          str(seconds), "-t", "python", srv.host, str(srv.port), program],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit("bench_load failed: %s%s" % (out.stdout, out.stderr))
    fields = dict(f.split("=", 1) for f in out.stdout.split() if "=" in f)
    return float(fields["per_s"]), (cpu_ms(srv.proc.pid) - c0) / int(fields["done"])


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
    ap.add_argument("--slices", type=int, default=3,
                    help="alternating throughput slices per side (0: skip)")
    ap.add_argument("--seconds", type=float, default=5, help="length of a throughput slice")
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

    if a.slices > 0:
        program = os.path.join(work, "main.py")
        with open(program, "wb") as f:
            f.write(PROGRAM)
        warm, _ = server(os.path.join(work, "warm2"), a.workers)
        cold, _ = server(os.path.join(work, "cold2"), a.workers, "--python-warm", "off")
        rates = {"warm": [], "cold": []}
        cpus = {"warm": [], "cold": []}
        try:
            for srv in (warm, cold):
                load(srv, 1, program)  # cells and fork servers up
            for r in range(a.slices):
                for k in (("warm", "cold") if r % 2 == 0 else ("cold", "warm")):
                    rate, cpu = load(warm if k == "warm" else cold, a.seconds, program)
                    rates[k].append(rate)
                    cpus[k].append(cpu)
        finally:
            warm.stop()
            cold.stop()
        w, c = statistics.median(rates["warm"]), statistics.median(rates["cold"])
        wc, cc = statistics.median(cpus["warm"]), statistics.median(cpus["cold"])
        print("throughput, %d workers, bench_load 8 connections: --python-warm off %.0f tasks/s "
              "(%.1f ms CPU a task), warm %.0f tasks/s (%.1f ms CPU a task): x%.2f (target >= 3; "
              "medians of %d slices of %g s)"
              % (a.workers, c, cc, w, wc, w / c, a.slices, a.seconds))
        ok &= w / c >= 3
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
