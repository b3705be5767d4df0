#!/usr/bin/env python3
"""Warm Python against cold: the latency of a trivial python task (print(1))
started through the fork server (runner/pyfork.py and its C client)
against `python3 main.py` started by the runner as the server starts tasks
today, in the same run, in alternating rounds; and the throughput of two
workers doing either back to back.

  python3 bench/pyfork_bench.py [--rounds 10] [--tasks 20] [--seconds 3] [--python P]

Both sides go through tests/pyfork_driver (build the tree first), with the
server's task environment, stdout and stderr captured through pipes; the
time is taken in the driver from the request to the end of both streams.
This is the fork server alone, without HTTP, the queue or the sandbox:
the server's end-to-end figure adds the same costs to both sides."""

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TASK_PATH = "/usr/local/bin:/usr/bin:/bin"


class Worker:
    """A driver with its own fork server and task directory."""

    def __init__(self, build, python):
        self.dir = tempfile.mkdtemp(prefix="pyfork-bench-")
        with open(os.path.join(self.dir, "main.py"), "w") as f:
            f.write("print(1)\n")
        self.env = ["PATH=" + TASK_PATH, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1",
                    "PYTHONUNBUFFERED=1", "HOME=" + self.dir, "TMPDIR=" + self.dir]
        self.python = python
        self.proc = subprocess.Popen([os.path.join(build, "tests", "pyfork_driver")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        out = self.cmd(op="start", python=python,
                       script=os.path.join(build, "server", "pyfork.py"), env=self.env)
        if not out.get("ok"):
            raise SystemExit("the fork server did not start: %s" % out)
        self.server_pid = out["server_pid"]

    def cmd(self, **kw):
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def task(self, warm):
        """Runs print(1) once; returns (wall ms, CPU ms of the task)."""
        common = dict(dir=self.dir, main="main.py", env=self.env)
        out = self.cmd(op="run", **common) if warm else \
            self.cmd(op="cold", python=self.python, **common)
        if out.get("error") or base64.b64decode(out["stdout"]) != b"1\n" or out["code"] != 0:
            raise SystemExit("task failed: %s" % out)
        cpu = (out["utime_us"] + out["stime_us"]) if warm else out["cpu_us"]
        return out["wall_us"] / 1000, cpu / 1000

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def cpu_ms(pid):
    """User + system CPU time of a live process, in ms."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency(w, rounds, tasks):
    lat = {True: [], False: []}
    cpu = {True: [], False: []}
    server0 = cpu_ms(w.server_pid)
    for r in range(rounds):
        for warm in ((True, False) if r % 2 == 0 else (False, True)):
            for _ in range(tasks):
                ms, c = w.task(warm)
                lat[warm].append(ms)
                cpu[warm].append(c)
    server = (cpu_ms(w.server_pid) - server0) / len(lat[True])
    return lat, cpu, server


def throughput(workers, seconds, warm):
    """Tasks per second of len(workers) workers running back to back."""
    counts = [0] * len(workers)
    stop = time.monotonic() + seconds

    def loop(i):
        while time.monotonic() < stop:
            workers[i].task(warm)
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(workers))]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--python", default=shutil.which("python3", path=TASK_PATH))
    ap.add_argument("--rounds", type=int, default=10, help="alternating latency rounds")
    ap.add_argument("--tasks", type=int, default=20, help="tasks per side and round")
    ap.add_argument("--seconds", type=float, default=3,
                    help="length of each throughput slice (3 slices per side; 0: skip)")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()

    w = Worker(a.build, a.python)
    try:
        for _ in range(5):  # warm the page cache and the server alike
            w.task(True)
            w.task(False)
        lat, cpu, server = latency(w, a.rounds, a.tasks)
    finally:
        w.close()
    print("%s, %d tasks per side (%d alternating rounds), load average %.1f"
          % (a.python, len(lat[True]), a.rounds, os.getloadavg()[0]))
    print("%-22s %9s %9s %9s %14s" % ("print(1)", "p50 ms", "p99 ms", "min ms", "task CPU ms"))
    for warm, name in ((False, "cold python3 main.py"), (True, "warm (fork server)")):
        print("%-22s %9.2f %9.2f %9.2f %14.2f" % (name, pct(lat[warm], 50), pct(lat[warm], 99),
                                                  min(lat[warm]), statistics.median(cpu[warm])))
    print("ratio warm/cold: p50 %.2f, p99 %.2f (target for the server end to end: <= 0.35)"
          % (pct(lat[True], 50) / pct(lat[False], 50), pct(lat[True], 99) / pct(lat[False], 99)))
    print("fork server's own CPU per task: %.2f ms" % server)

    if a.seconds > 0:
        workers = [Worker(a.build, a.python) for _ in range(a.workers)]
        try:
            rates = {True: [], False: []}
            for r in range(3):
                for warm in ((True, False) if r % 2 == 0 else (False, True)):
                    rates[warm].append(throughput(workers, a.seconds, warm))
        finally:
            for x in workers:
                x.close()
        cold, warm = statistics.median(rates[False]), statistics.median(rates[True])
        print("throughput, %d workers: cold %.0f tasks/s, warm %.0f tasks/s: x%.2f "
              "(medians of 3 slices of %g s)" % (a.workers, cold, warm, warm / cold, a.seconds))


if __name__ == "__main__":
    main()
