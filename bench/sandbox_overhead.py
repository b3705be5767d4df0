#!/usr/bin/env python3
"""Per-task cost of the sandbox: a trivial task (/bin/true) with the sandbox
on, on with --task-network (no network namespace), and off.

  python3 bench/sandbox_overhead.py [--tasks 300] [--rounds 3] [--workers 2] [--python]
                                    [--server BIN] [--baseline BIN] [--load-seconds 5]

(--python: the task is the Python program "pass" instead of /bin/true;
--server: another build's tasksolver, its tasksolver-exec next to it.)

Reports, per mode, the median server-side run time of a task run alone
(meta.run_ms: spawn to reaped), the median latency seen by a client
(create_task + get_status?wait, cgroup and clean-up included), the
throughput of a burst of tasks on --workers workers, and the CPU time a
task costs (the server's own plus that of every process it reaped, which
on a busy machine is steadier than wall-clock time; processes it keeps,
such as the sandbox's cells, included). Modes are measured in
alternation, round after round, so that load from other processes on the
machine spreads over all of them.

Then the rate of bench_core (a): the C load driver build/bench/bench_load
(8 keep-alive connections, create then long poll) running the 4 KB static
no-op build/bench/bench_noop, sandbox on against --sandbox off, in
alternating slices of --load-seconds (0 skips it), and the ratio; with
--baseline BIN, the same for that build in the same alternation."""

import argparse
import base64
import json
import os
import statistics
import sys
import threading
import time

import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import BUILD_DIR, SERVER_BIN, Server  # noqa: E402

MODES = {
    "sandbox on": (),
    "on, --task-network": ("--task-network",),
    "on, --sandbox-cell off": ("--sandbox-cell", "off"),
    "sandbox off": ("--sandbox", "off"),
}


def one_by_one(srv, task, n):
    """Median run_ms and client latency (ms) of n tasks run one at a time."""
    run, lat = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        doc = srv.run(*task)
        lat.append((time.perf_counter() - t0) * 1e3)
        if doc["status"] != "SUCCESS":
            raise SystemExit("task failed: %s" % json.dumps(doc)[:400])
        run.append(doc["meta"]["run_ms"])
    return statistics.median(run), statistics.median(lat)


def cpu_ms(pid):
    """utime + stime + cutime + cstime of pid and of its live descendants,
    in ms: the CPU time of everything the server ran, also in processes it
    keeps from task to task (the sandbox's cells, whose tasks are reaped by
    the cell's init)."""
    parent, ticks = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(name)] = int(fields[1])
        ticks[int(name)] = sum(int(v) for v in fields[11:15])
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += ticks.get(p, 0)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return total * 1000.0 / os.sysconf("SC_CLK_TCK")


def burst(srv, task, n, clients=8):
    """Tasks per second for n tasks submitted by several clients at once."""
    ids, lock = [], threading.Lock()
    payload = {"type": task[0], "file": base64.b64encode(task[1]).decode()}

    def submit(k):
        for _ in range(k):
            st, _, body = srv.request("POST", "/create_task", payload)
            if st != 200:
                raise SystemExit("create_task: %d %r" % (st, body))
            with lock:
                ids.append(body["id"])

    c0 = cpu_ms(srv.proc.pid)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=submit, args=(n // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in ids:
        if srv.wait_done(i)["status"] != "SUCCESS":
            raise SystemExit("a burst task failed")
    rate = len(ids) / (time.perf_counter() - t0)
    return rate, (cpu_ms(srv.proc.pid) - c0) / len(ids)


def load_rate(srv, seconds, conns=8):
    """bench_load's tasks/s against srv for `seconds`."""
    out = subprocess.run([os.path.join(BUILD_DIR, "bench", "bench_load"), "-c", str(conns),
                          "-d", str(seconds), srv.host, str(srv.port),
                          os.path.join(BUILD_DIR, "bench", "bench_noop")],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit("bench_load failed: %s%s" % (out.stdout, out.stderr))
    return float(out.stdout.split("per_s=")[1].split()[0])


def load_compare(a):
    """bench_core (a)'s rate, sandbox on and off, alternating slices; with
    --baseline, of that build too, in the same alternation."""
    builds = [("", a.server)] + ([("baseline ", a.baseline)] if a.baseline else [])
    servers = {}
    try:
        for label, binary in builds:
            for mode in ("sandbox on", "sandbox off"):
                srv = Server("--workers", str(a.workers), "--log-level", "warn", *MODES[mode],
                             binary=binary)
                servers[label + mode] = srv
                load_rate(srv, 1)  # warm-up
        rates = {m: [] for m in servers}
        for r in range(a.rounds):
            for key, srv in servers.items():
                rates[key].append(load_rate(srv, a.load_seconds))
            print("round %d bench_load + bench_noop: %s" % (r + 1, ", ".join(
                "%s %.0f/s" % (k, v[-1]) for k, v in rates.items())), flush=True)
    finally:
        for srv in servers.values():
            srv.stop()
    print()
    for label, binary in builds:
        on = statistics.median(rates[label + "sandbox on"])
        off = statistics.median(rates[label + "sandbox off"])
        print("bench_load, bench_noop, %d workers, 8 connections, %s: sandbox on %.0f tasks/s, "
              "off %.0f tasks/s, on/off %.3f (median of %d rounds)"
              % (a.workers, binary, on, off, on / off, a.rounds))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=300, help="tasks per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--python", action="store_true", help="run the Python program 'pass'")
    ap.add_argument("--server", default=SERVER_BIN, help="the tasksolver binary to measure")
    ap.add_argument("--baseline", help="another build's tasksolver, measured alongside in the "
                    "bench_load part (before/after in one run)")
    ap.add_argument("--load-seconds", type=int, default=5,
                    help="length of each bench_load slice (0: skip that part)")
    a = ap.parse_args()
    if a.python:
        task = ("python", b"pass\n")
    else:
        with open("/bin/true", "rb") as f:
            task = ("bin", f.read())
    res = {m: {"run": [], "lat": [], "rate": [], "cpu": []} for m in MODES}
    for r in range(a.rounds):
        for mode, extra in list(MODES.items()):
            # The same interpreter in every mode: without the sandbox "python3"
            # is looked up in the server's PATH, in it in the task's.
            try:
                srv = Server("--workers", str(a.workers), "--log-level", "warn",
                             "--python", "/usr/bin/python3", *extra, binary=a.server)
            except (RuntimeError, AssertionError):  # an older build without the option
                print("%s: not supported by %s, left out" % (mode, a.server))
                del MODES[mode]
                continue
            try:
                srv.run(*task)  # warm-up
                run, lat = one_by_one(srv, task, a.tasks // 3)
                rate, cpu = burst(srv, task, a.tasks)
            finally:
                srv.stop()
            res[mode]["run"].append(run)
            res[mode]["lat"].append(lat)
            res[mode]["rate"].append(rate)
            res[mode]["cpu"].append(cpu)
            print("round %d %-20s run %.2f ms  latency %.2f ms  %.0f tasks/s  cpu %.2f ms/task"
                  % (r + 1, mode, run, lat, rate, cpu), flush=True)
    print("\n| mode | median run_ms | median latency | tasks/s (%d workers) | CPU per task |"
          % a.workers)
    print("| --- | --- | --- | --- | --- |")
    for mode in MODES:
        m = res[mode]
        print("| %s | %.1f ms | %.1f ms | %.0f | %.1f ms |"
              % (mode, statistics.median(m["run"]), statistics.median(m["lat"]),
                 statistics.median(m["rate"]), statistics.median(m["cpu"])))
    if a.load_seconds > 0:
        print()
        load_compare(a)
    print("\nload average during the run: %s" % open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    main()
