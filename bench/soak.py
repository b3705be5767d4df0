#!/usr/bin/env python3
"""Soak test: run tasksolver at about 80 % of its capacity for a long time
with a mix of tasks (success, error, timeout, output flood) and check that
resident memory, open fds and latency stay flat. Retention is set low
(--max-finished 2000) so that the store reaches its steady size during
the warm-up; what must not grow after that is everything else.

  python3 bench/soak.py [--minutes 10] [--build build] [--load 0.8] [--journal]

--journal runs the server as the packaged service does, with --data-dir
(a fresh temporary directory), and adds the journal's size on disk to
what must stay flat.

Phases: measure capacity with the same mix (closed loop, 30 s), then drive
an open-loop load at --load x capacity for --minutes, printing a line a
minute. RSS, fd count and latency percentiles (create -> final status
seen) are compared between the first minute after a two-minute warm-up
and the last minute of the run. Exits 1 when RSS, fds or the journal grow
by more than 10 %, 2 when the driver itself could not keep the rate.
"""

import argparse
import base64
import http.client
import json
import os
import queue
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MIX = [  # (weight, type, source)
    (70, "bin", "echo ok"),
    (10, "bin", "#!/bin/sh\necho failing >&2\nexit 3\n"),
    (1, "bin", "#!/bin/sh\nsleep 30\n"),  # killed by --task-timeout
    (19, "python", "import sys\nsys.stdout.write('o' * 100000)\nsys.stderr.write('e' * 100000)\n"),
]


def start_server(build, workers, data_dir):
    binary = os.path.join(build, "server", "tasksolver")
    if not os.access(binary, os.X_OK):
        sys.exit("no server binary at %s (build first)" % binary)
    proc = subprocess.Popen([binary, "--port", "0", "--workers", str(workers),
                             "--task-timeout", "1", "--max-output", "65536",
                             "--max-finished", "2000", "--log-level", "warn"]
                            + (["--data-dir", data_dir] if data_dir else []),
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on http://([0-9.]+):(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1), int(m.group(2))
    sys.exit("server did not start")


class Client:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return c

    def call(self, method, path, body=None):
        for attempt in range(3):
            try:
                c = self.conn()
                c.request(method, path, body=body)
                r = c.getresponse()
                return r.status, json.loads(r.read())
            except (ConnectionError, http.client.HTTPException, OSError):
                self.local.c = None
                if attempt == 2:
                    raise

    def run_one(self, payload):
        t0 = time.monotonic()
        st, doc = self.call("POST", "/create_task", payload)
        if st != 200:
            return None
        tid = doc["id"]
        while True:
            st, doc = self.call("GET", "/get_status?wait=30&id=" + tid)
            if doc.get("status") in ("SUCCESS", "ERROR"):
                return time.monotonic() - t0


def payloads():
    enc = []
    for w, typ, src in MIX:
        body = json.dumps({"type": typ, "file": base64.b64encode(src.encode()).decode()})
        enc += [body] * w
    return enc


def dir_kib(path):
    """Bytes allocated on disk under path, in KiB (0 without a path)."""
    total = 0
    for root, _, files in os.walk(path) if path else ():
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total / 1024


def proc_stats(pid, data_dir):
    with open("/proc/%d/status" % pid) as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return rss, len(os.listdir("/proc/%d/fd" % pid)), dir_kib(data_dir)


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def measure_capacity(client, bodies, seconds, threads):
    done = [0]
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def loop():
        while time.monotonic() < stop:
            if client.run_one(random.choice(bodies)) is not None:
                with lock:
                    done[0] += 1

    ts = [threading.Thread(target=loop) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done[0] / seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--build", default="build")
    ap.add_argument("--load", type=float, default=0.8)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--journal", action="store_true",
                    help="run with --data-dir in a temporary directory")
    args = ap.parse_args()

    data_dir = tempfile.mkdtemp(prefix="soak-", dir="/var/tmp") if args.journal else None
    proc, host, port = start_server(args.build, args.workers, data_dir)
    client = Client(host, port)
    bodies = payloads()
    try:
        cap = measure_capacity(client, bodies, 30, args.workers * 4)
        rate = cap * args.load
        print("capacity with the mix: %.1f tasks/s; driving %.1f tasks/s (%.0f %%) for %.1f min"
              % (cap, rate, args.load * 100, args.minutes), flush=True)

        lat = []  # (finish time, latency)
        lat_lock = threading.Lock()
        work = queue.Queue()
        refused = [0]

        def worker():
            while True:
                item = work.get()
                if item is None:
                    return
                r = client.run_one(item)
                with lat_lock:
                    if r is None:
                        refused[0] += 1
                    else:
                        lat.append((time.monotonic(), r))

        # Fewer requests in flight than the server lets long-poll at once
        # (half its 64 HTTP threads): past that a long poll answers at
        # once, and the driver would spin on get_status and take the CPU
        # the server is being measured on.
        pool = [threading.Thread(target=worker, daemon=True) for _ in range(24)]
        for t in pool:
            t.start()
        start = time.monotonic()
        end = start + args.minutes * 60
        samples = []  # (time, rss_kb, fds, journal_kib, driver backlog)
        next_sample = next_report = start
        next_send = start
        n = 0
        print("%6s %8s %9s %5s %12s %9s %8s" % ("time", "finished", "RSS MiB", "fds",
                                                "journal MiB", "p50 ms", "backlog"), flush=True)
        while True:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - start,) + proc_stats(proc.pid, data_dir) + (work.qsize(),))
                next_sample += 5
            if now >= next_report:
                with lat_lock:
                    recent = [l for t, l in lat if t >= now - 60]
                    done = len(lat)
                _, rss, fds, jkib, backlog = samples[-1]
                print("%5.0fs %8d %9.1f %5d %12.1f %9.0f %8d"
                      % (now - start, done, rss / 1024, fds, jkib / 1024,
                         pct(recent, 50) * 1000, backlog), flush=True)
                next_report += 60
            if now >= end:
                break
            # Open loop on an absolute schedule, exponential gaps around
            # the target rate, so that time spent here does not lower it.
            if next_send > now:
                time.sleep(min(next_send, next_sample, next_report) - now)
                continue
            work.put(random.choice(bodies))
            n += 1
            next_send += random.expovariate(rate)
        for _ in pool:
            work.put(None)
        for t in pool:
            t.join(120)
    finally:
        proc.terminate()
        proc.wait(30)
        if data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)

    # The retained tasks and the journal's file reach their steady size in
    # the first minute or two; the comparison starts after that.
    warm = 120 if args.minutes * 60 > 360 else args.minutes * 60 / 3
    span = 60 if args.minutes * 60 > 360 else args.minutes * 60 / 4
    first = [s for s in samples if warm <= s[0] < warm + span]
    last = [s for s in samples if s[0] >= samples[-1][0] - span]
    lat_first = [l for t, l in lat if warm <= t - start < warm + span]
    lat_last = [l for t, l in lat if t - start >= samples[-1][0] - span]

    def med(xs, i):
        return statistics.median(x[i] for x in xs)

    rows = [("RSS (MiB)", med(first, 1) / 1024, med(last, 1) / 1024),
            ("open fds", med(first, 2), med(last, 2))]
    if data_dir:
        rows.append(("journal (MiB)", med(first, 3) / 1024, med(last, 3) / 1024))
    for p in (50, 90, 99):
        rows.append(("latency p%d (ms)" % p, pct(lat_first, p) * 1000, pct(lat_last, p) * 1000))
    print("submitted %d tasks (%.1f/s), %d finished, %d refused"
          % (n, n / (args.minutes * 60), len(lat), refused[0]))
    backlog = max(smp[4] for smp in samples)
    if backlog > rate * 5:
        print("the driver fell behind (up to %d tasks not yet sent): the figures do not "
              "describe %.0f %% of capacity; lower --load" % (backlog, args.load * 100))
        return 2
    print("%-18s %12s %12s %8s" % ("", "first min", "last min", "ratio"))
    for name, a, b in rows:
        print("%-18s %12.1f %12.1f %8.3f" % (name, a, b, b / a if a else float("nan")))
    grew = [name for name, a, b in rows if not name.startswith("latency") and b > a * 1.10]
    if grew:
        print("NOT FLAT: " + ", ".join(grew))
        return 1
    print("flat: RSS, fds%s within 10 %%" % (" and journal" if data_dir else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
