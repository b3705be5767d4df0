#!/usr/bin/env python3
"""Core benchmarks of tasksolver, each against a baseline measured in the
same run on the same machine (machines are noisy: the figures are medians
of several runs and the verdicts use ratios).

 (a) tasks/s, create -> SUCCESS seen (bench_load: POST /create_task, then a
     long poll GET /get_status?wait=), of the server as it ships (the task
     sandbox on), of the same server with --sandbox off, and the raw
     posix_spawn + wait rate of the same program from as many threads as
     the server has workers (bench_spawn_rate), in alternating one-second
     slices. Targets: sandbox on >= 0.5x sandbox off; sandbox off >= 0.7x
     raw spawn. Also the CPU time per task of the server, its tasks and the
     load driver against each baseline's: on a machine shared with other
     work those ratios move much less than the rates do. Both servers are
     also driven with one exchange a task (bench_load -1: POST
     /create_task?wait=, which answers the final status), the way a client
     that wants the result uses the server; same targets. And the HTTP
     floor: the same driver against bench_hello, which answers the same
     exchanges (the same request bodies read) with no task behind them.
     The raw spawn's CPU over the sum of its CPU and the floor's is the
     most any server that takes its tasks over this HTTP stack could reach
     against the raw spawn (the "ceiling" printed): what is left between
     that and the --sandbox off figure is the server's own work.
 (b) GET /get_status of a finished task, requests/s with wrk -t2 -c50,
     against bench_hello (civetweb with the server's options answering a
     small JSON). Target: >= 0.7x.
 (c) the server's RSS holding 100 000 finished small tasks. Target: < 100 MB.

(b) and (c) run the server as it ships too. Builds nothing: expects a
build directory (default: build/ next to bench/, or $TS_BUILD_DIR, or
--build). Needs wrk for (b) (apt-get install wrk). Exits 1 if a target is
missed, 2 if something is missing or fails.

    python3 bench/bench_core.py [--build DIR] [--workers N] [--runs 3] ...
"""

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LISTEN_RE = re.compile(r"listening on http://([0-9.]+):(\d+)")


def die(msg):
    print("bench_core: " + msg, file=sys.stderr)
    sys.exit(2)


class Proc:
    """A server (tasksolver or bench_hello) on a free port, its log in a
    file so that reading it costs the measurement nothing."""

    def __init__(self, argv, name):
        self.log = tempfile.NamedTemporaryFile(prefix=name + ".", suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log)
        self.port = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.port is None:
            with open(self.log.name, errors="replace") as f:
                m = LISTEN_RE.search(f.read())
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        if self.port is None:
            # Read before stop(), which removes the log.
            with open(self.log.name, errors="replace") as f:
                text = f.read()
            self.stop()
            die("%s did not start:\n%s" % (name, text))

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def rss_kb(self):
        """(VmRSS, VmHWM) in KiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        return int(st["VmRSS"].split()[0]), int(st["VmHWM"].split()[0])

    def cpu_s(self):
        """CPU seconds of the process and of all its descendants, reaped or
        alive: a sandbox cell lives across tasks, and the tasks it ran
        count in its own reaped children until it ends."""
        tck = os.sysconf("SC_CLK_TCK")
        stats = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open("/proc/%s/stat" % name) as f:
                        stats[int(name)] = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    pass
        total, todo = 0, [self.proc.pid]
        while todo:
            pid = todo.pop()
            if pid in stats:
                total += sum(int(x) for x in stats[pid][11:15])
            todo += [c for c, st in stats.items() if int(st[1]) == pid]
        return total / tck

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


def run(argv, timeout=600):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        die("%s failed (exit %d):\n%s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p.stdout


def field(out, name):
    m = re.search(r"\b%s=([0-9.]+)" % name, out)
    if not m:
        die("no %s= in: %s" % (name, out))
    return float(m.group(1))


def ceiling(r, floor):
    """The most --sandbox off over raw spawn could read if the server did
    nothing beyond the spawn and the HTTP floor: CPU times add up."""
    return r["cpu_raw"] / (r["cpu_raw"] + r["cpu_" + floor])


def sandbox_line(info):
    """The protections GET /info says are active, in one line."""
    sb = info.get("sandbox", {})
    if not sb.get("enabled"):
        return "off"
    if sb.get("tasks_refused"):
        return "tasks refused: " + sb["tasks_refused"]
    on = [k for k in ("namespaces", "user_namespace", "seccomp") if sb.get(k)]
    return "%s; cgroup %s; tasks as %s; missing: %s" % (
        ", ".join(on) or "no namespaces", sb.get("cgroup"), sb.get("run_as"),
        "; ".join(sb.get("missing", [])) or "nothing")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


class Bench:
    def __init__(self, a):
        self.a = a
        b = a.build
        self.server = a.server or os.path.join(b, "server", "tasksolver")
        self.hello = os.path.join(b, "bench", "bench_hello")
        self.spawn = os.path.join(b, "bench", "bench_spawn_rate")
        self.load = os.path.join(b, "bench", "bench_load")
        self.task_bin = a.task_bin or os.path.join(b, "bench", "bench_noop")
        missing = [p for p in (self.server, self.hello, self.spawn, self.load, self.task_bin)
                   if not os.access(p, os.X_OK)]
        if missing:
            die("missing binaries (build first: cmake -S . -B build && cmake --build build):\n  "
                + "\n  ".join(missing))
        self.wrk = shutil.which("wrk")
        if "b" in a.only and not self.wrk:
            die("(b) needs wrk: apt-get install wrk (or --only ac)")
        self.results = []  # (label, figure text, ratio text, verdict)
        self.loads = []

    def start_server(self, *extra, sandbox=True):
        """The server as it ships, or with --sandbox off (sandbox False)."""
        return Proc([self.server, "--port", "0", "--workers", str(self.a.workers),
                     *(() if sandbox else ("--sandbox", "off")), *extra],
                    "tasksolver" if sandbox else "tasksolver-nosandbox")

    def note_load(self):
        self.loads.append(float(loadavg()))

    # (a) ----------------------------------------------------------------
    def load_slice(self, srv, acc, one=False):
        """One second of bench_load against srv, added into acc; one: one
        exchange a task (create?wait) instead of create + long poll."""
        a = self.a
        before = srv.cpu_s()
        out = run([self.load, *(("-1",) if one else ()), "-c", str(a.conns), "-d", "1", srv.host,
                   str(srv.port), self.task_bin])
        after = srv.cpu_s()
        acc["n"] += field(out, "tasks")
        acc["t"] += field(out, "seconds")
        d = field(out, "done")
        acc["done"] += d
        # The server's threads, its tasks (reaped children) and the driver.
        acc["cpu"] += d * field(out, "self_us") + (after - before) * 1e6
        acc["lat"].append(field(out, "p50_ms"))

    def throughput(self, log_level):
        """Alternates one-second slices of the raw baseline and of both
        servers so that a change in the machine's load hits all alike."""
        a = self.a
        on = self.start_server("--log-level", log_level)
        off = self.start_server("--log-level", log_level, sandbox=False)
        hello = Proc([self.hello, "--port", "0", "--threads", str(a.http_threads)], "bench_hello")
        runs = []
        try:
            # What "sandbox on" means on this machine, with the figures.
            print("  (a) sandbox: %s" % sandbox_line(on.request("GET", "/info")[1]),
                  flush=True)
            # Warm the page cache and the servers' allocators.
            for srv in (on, off, hello):
                run([self.load, "-c", str(a.conns), "-d", "1", srv.host, str(srv.port),
                     self.task_bin])
            for i in range(a.runs):
                self.note_load()
                raw = {"n": 0.0, "t": 0.0, "cpu": 0.0}
                acc = {k: {"n": 0.0, "t": 0.0, "done": 0.0, "cpu": 0.0, "lat": []}
                       for k in ("on", "off", "on1", "off1", "floor", "floor1")}
                for _ in range(a.seconds):
                    out = run([self.spawn, "-P", str(a.workers), "-d", "1", self.task_bin])
                    n = field(out, "runs")
                    raw["n"] += n
                    raw["t"] += field(out, "seconds")
                    raw["cpu"] += n * (field(out, "self_us") + field(out, "child_us"))
                    self.load_slice(on, acc["on"])
                    self.load_slice(off, acc["off"])
                    self.load_slice(on, acc["on1"], one=True)
                    self.load_slice(off, acc["off1"], one=True)
                    self.load_slice(hello, acc["floor"])
                    self.load_slice(hello, acc["floor1"], one=True)
                r = {"raw": raw["n"] / raw["t"], "cpu_raw": raw["cpu"] / raw["n"]}
                for k in ("on", "off", "on1", "off1", "floor", "floor1"):
                    r[k] = acc[k]["n"] / acc[k]["t"]
                    r["cpu_" + k] = acc[k]["cpu"] / acc[k]["done"]
                    r["p50_" + k] = statistics.median(acc[k]["lat"])
                runs.append(r)
                print("  (a) run %d, log %s: sandbox on %.0f/s (p50 %.1f ms, CPU %.0f us/task), "
                      "off %.0f/s (p50 %.1f ms, CPU %.0f us/task), raw spawn %.0f/s (CPU %.0f "
                      "us); on/off %.2f (CPU %.2f), off/raw %.2f (CPU %.2f); load %s"
                      % (i + 1, log_level, r["on"], r["p50_on"], r["cpu_on"], r["off"],
                         r["p50_off"], r["cpu_off"], r["raw"], r["cpu_raw"], r["on"] / r["off"],
                         r["cpu_off"] / r["cpu_on"], r["off"] / r["raw"],
                         r["cpu_raw"] / r["cpu_off"], loadavg()), flush=True)
                print("  (a) run %d, one exchange: sandbox on %.0f/s (CPU %.0f us/task), off "
                      "%.0f/s (CPU %.0f us/task); on/off %.2f (CPU %.2f), off/raw %.2f (CPU %.2f)"
                      % (i + 1, r["on1"], r["cpu_on1"], r["off1"], r["cpu_off1"],
                         r["on1"] / r["off1"], r["cpu_off1"] / r["cpu_on1"], r["off1"] / r["raw"],
                         r["cpu_raw"] / r["cpu_off1"]), flush=True)
                print("  (a) run %d, HTTP floor: %.0f/s (CPU %.0f us/task), one exchange %.0f/s "
                      "(CPU %.0f us/task); ceiling of off/raw %.2f, one exchange %.2f"
                      % (i + 1, r["floor"], r["cpu_floor"], r["floor1"], r["cpu_floor1"],
                         ceiling(r, "floor"), ceiling(r, "floor1")), flush=True)
        finally:
            on.stop()
            off.stop()
            hello.stop()

        def med(f):
            return statistics.median(f(r) for r in runs)

        on_off, off_raw = med(lambda r: r["on"] / r["off"]), med(lambda r: r["off"] / r["raw"])
        self.results.append((
            "(a) tasks/s, sandbox on (default)",
            "%.0f/s vs --sandbox off %.0f/s" % (med(lambda r: r["on"]), med(lambda r: r["off"])),
            "%.2f (CPU %.2f)" % (on_off, med(lambda r: r["cpu_off"] / r["cpu_on"])),
            "ok" if on_off >= 0.5 else "MISSED (target 0.5)"))
        self.results.append((
            "(a) tasks/s, --sandbox off",
            "%.0f/s vs raw spawn %.0f/s (P=%d)" % (med(lambda r: r["off"]), med(lambda r: r["raw"]),
                                                 a.workers),
            "%.2f (CPU %.2f)" % (off_raw, med(lambda r: r["cpu_raw"] / r["cpu_off"])),
            "ok" if off_raw >= 0.7 else "MISSED (target 0.7)"))
        on_off1, off_raw1 = (med(lambda r: r["on1"] / r["off1"]),
                             med(lambda r: r["off1"] / r["raw"]))
        self.results.append((
            "(a) tasks/s, sandbox on, one exchange",
            "%.0f/s vs --sandbox off %.0f/s" % (med(lambda r: r["on1"]), med(lambda r: r["off1"])),
            "%.2f (CPU %.2f)" % (on_off1, med(lambda r: r["cpu_off1"] / r["cpu_on1"])),
            "ok" if on_off1 >= 0.5 else "MISSED (target 0.5)"))
        self.results.append((
            "(a) tasks/s, --sandbox off, one exchange",
            "%.0f/s vs raw spawn %.0f/s (P=%d)" % (med(lambda r: r["off1"]),
                                                 med(lambda r: r["raw"]), a.workers),
            "%.2f (CPU %.2f)" % (off_raw1, med(lambda r: r["cpu_raw"] / r["cpu_off1"])),
            "ok" if off_raw1 >= 0.7 else "MISSED (target 0.7)"))
        for one, k in (("", "floor"), (", one exchange", "floor1")):
            self.results.append((
                "(a) ceiling of off/raw%s" % one,
                "HTTP floor %.0f us + raw spawn %.0f us CPU/task" % (
                    med(lambda r: r["cpu_" + k]), med(lambda r: r["cpu_raw"])),
                "%.2f" % med(lambda r: ceiling(r, k)), "info"))

    # (b) ----------------------------------------------------------------
    def wrk_rate(self, url):
        out = run([self.wrk, "-t2", "-c50", "-d%ds" % self.a.seconds, "--latency", url])
        if "Non-2xx" in out or "Socket errors" in out:
            die("wrk saw errors against %s:\n%s" % (url, out))
        m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
        if not m:
            die("no Requests/sec in wrk output:\n" + out)
        return float(m.group(1))

    def status_rate(self):
        a = self.a
        srv = self.start_server("--log-level", "warn")
        hello = Proc([self.hello, "--port", "0", "--threads", str(a.http_threads)], "bench_hello")
        srvs, hellos, ratios = [], [], []
        try:
            with open(self.task_bin, "rb") as f:
                body = json.dumps({"type": "bin", "file": base64.b64encode(f.read()).decode()})
            st, doc = srv.request("POST", "/create_task", body)
            if st != 200:
                die("create_task answered %d %s" % (st, doc))
            tid = doc["id"]
            st, doc = srv.request("GET", "/get_status?id=%s&wait=30" % tid)
            if doc.get("status") != "SUCCESS":
                die("the task did not succeed: %s" % doc)
            surl = "http://%s:%d/get_status?id=%s" % (srv.host, srv.port, tid)
            hurl = "http://%s:%d/get_status" % (hello.host, hello.port)
            self.wrk_rate(hurl)  # warm-up, not counted
            for i in range(a.runs):
                self.note_load()
                h = self.wrk_rate(hurl)
                s = self.wrk_rate(surl)
                hellos.append(h)
                srvs.append(s)
                ratios.append(s / h)
                print("  (b) run %d: hello %.0f req/s, get_status %.0f req/s, ratio %.2f, load %s"
                      % (i + 1, h, s, s / h, loadavg()), flush=True)
        finally:
            hello.stop()
            srv.stop()
        r = statistics.median(ratios)
        self.results.append((
            "(b) GET /get_status req/s",
            "%.0f/s vs hello %.0f/s" % (statistics.median(srvs), statistics.median(hellos)),
            "%.2f" % r, "ok" if r >= 0.7 else "MISSED (target 0.7)"))

    # (c) ----------------------------------------------------------------
    def memory(self):
        a = self.a
        n = a.rss_tasks
        rss = []
        for i in range(a.rss_runs):
            srv = self.start_server("--log-level", "warn", "--max-finished", str(max(n, 100000)))
            try:
                idle, _ = srv.rss_kb()
                self.note_load()
                t0 = time.monotonic()
                out = run([self.load, "-c", str(a.conns), "-n", str(n), srv.host, str(srv.port),
                           self.task_bin], timeout=3600)
                el = time.monotonic() - t0
                st, cnt = srv.request("GET", "/get_task_count")
                if cnt.get("finished") != n or cnt.get("evicted"):
                    die("expected %d finished tasks kept, got %s" % (n, cnt))
                kb, hwm = srv.rss_kb()
            finally:
                srv.stop()
            rss.append(kb)
            print("  (c) run %d: %d tasks in %.0f s (%.0f/s); RSS idle %.1f MB, after %.1f MB "
                  "(peak %.1f MB), %.0f bytes per task, load %s"
                  % (i + 1, n, el, field(out, "per_s"), idle / 1024, kb / 1024, hwm / 1024,
                     (kb - idle) * 1024 / n, loadavg()), flush=True)
        mb = statistics.median(rss) / 1024
        self.results.append((
            "(c) RSS with %d finished tasks" % n, "%.1f MB (%.0f bytes/task)" % (
                mb, statistics.median(rss) * 1024 / n),
            "%.2f of 100 MB" % (mb / 100), "ok" if mb < 100 else "MISSED (target < 100 MB)"))


def main():
    # Stopped from outside (timeout, Ctrl-C): unwind so that the servers
    # started are stopped by the finally clauses.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("TS_BUILD_DIR",
                                                      os.path.join(HERE, "..", "build")))
    ap.add_argument("--server", help="tasksolver binary (default: BUILD/server/tasksolver), "
                    "to compare two builds")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="server workers = spawn threads of the baseline (default: CPUs)")
    ap.add_argument("--conns", type=int, default=0,
                    help="client connections for (a) and (c) (default: 4 x workers)")
    ap.add_argument("--http-threads", type=int, default=1024,
                    help="bench_hello threads: the server's --http-threads default")
    ap.add_argument("--seconds", type=int, default=5, help="length of each timed run")
    ap.add_argument("--runs", type=int, default=3, help="runs of (a) and (b); medians reported")
    ap.add_argument("--rss-tasks", type=int, default=100000)
    ap.add_argument("--rss-runs", type=int, default=1,
                    help="runs of (c): ~%d s each here, and RSS is not noisy" % 200)
    ap.add_argument("--task-bin", help="program run as the bin task (default: bench_noop)")
    ap.add_argument("--only", default="abc", help="subset of a, b, c")
    ap.add_argument("--log-level", default="info",
                    help="server log level for (a) (default: the server's default, info; "
                    "the log goes to a file)")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    a.conns = a.conns or 4 * a.workers
    b = Bench(a)
    print("tasksolver core benchmarks: %d workers, %d CPUs, task program %s, load %s"
          % (a.workers, os.cpu_count(), b.task_bin, loadavg()), flush=True)
    if "a" in a.only:
        b.throughput(a.log_level)
    if "b" in a.only:
        b.status_rate()
    if "c" in a.only:
        b.memory()
    print()
    w = max(len(r[0]) for r in b.results)
    w2 = max(len(r[1]) for r in b.results)
    print("%-*s  %-*s  %-16s  %s" % (w, "measure", w2, "median", "ratio", "verdict"))
    for label, fig, ratio, verdict in b.results:
        print("%-*s  %-*s  %-16s  %s" % (w, label, w2, fig, ratio, verdict))
    print("load average during the runs: min %.2f, max %.2f (%d CPUs)"
          % (min(b.loads), max(b.loads), os.cpu_count()))
    # The benchmark itself keeps about 3 threads runnable.
    if "a" in a.only and min(b.loads) > 2 * os.cpu_count() + 2:
        print("note: the machine was busy with other work; with more runnable threads than "
              "CPUs the scheduler gives the server's many threads a larger share than the "
              "baseline's few, so the rate ratio of (a) flatters the server: trust its CPU "
              "ratio, or run again when the machine is quiet")
    sys.exit(0 if all(r[3] in ("ok", "info") for r in b.results) else 1)


if __name__ == "__main__":
    main()
