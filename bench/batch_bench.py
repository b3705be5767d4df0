#!/usr/bin/env python3
"""Benchmark of `tasksolver-cli batch` against tasksolver standing in for the
seed's server (5 calculations at once, a sixth refused with 403).

1. 20 000 inputs, each calculation sleeping 20-80 ms (calc_sleep): elapsed
   time against the ideal (total sleep time / 5) and against what the
   server itself spent (the run time it logs per task, process start-up
   included, / 5), the 403s provoked, polls per input and the client's
   peak RSS.
2. The poll schedule: a few --poll-min/--poll-factor settings on a smaller
   run, to show what finding results sooner costs in requests.
3. 20 000 and 200 000 inputs against a calculation that answers at once:
   the client's peak RSS stays the same whatever the input size.

Usage: python3 bench/batch_bench.py [--build build] [--inputs 20000]
           [--instant 200000] [--sweep 2000] [--skip-sweep]
Not part of ctest: the first run alone takes about 20000 * 50 ms / 5 = 200 s.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

LISTEN_RE = re.compile(r"listening on http://([0-9.]+):(\d+)")
RUN_RE = re.compile(r" calc SUCCESS (\d+) ms")


def fnv1a(text):
    h = 2166136261
    for b in text.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def sleep_ms(text, lo, hi):
    """What calc_sleep sleeps for this input (see bench/calc_sleep.c)."""
    return lo + fnv1a(text) % (hi - lo + 1)


class Server:
    def __init__(self, build, lo, hi, workdir):
        calc = "%s %d %d" % (os.path.join(build, "bench", "calc_sleep"), lo, hi)
        self.proc = subprocess.Popen(
            [os.path.join(build, "server", "tasksolver"), "--port", "0", "--workers", "5",
             "--max-queue", "0", "--reject-status", "403", "--calc-command", calc,
             "--log-level", "info", "--work-dir", workdir],
            stderr=subprocess.PIPE, text=True)
        said = []
        for line in self.proc.stderr:
            said.append(line)
            m = LISTEN_RE.search(line)
            if m:
                self.url = "http://%s:%s" % m.groups()
                break
        else:
            sys.exit("server did not start:\n" + "".join(said))
        # Keep reading the log (one line per task transition) so that the
        # server never blocks on it; it tells how long each task ran.
        self.run_ms = []
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()

    def _read_log(self):
        for line in self.proc.stderr:
            m = RUN_RE.search(line)
            if m:
                self.run_ms.append(int(m.group(1)))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.reader.join(10)


def run_client(build, url, inp, out, *extra):
    """Runs the client; returns (seconds, peak RSS in KiB, summary text)."""
    cmd = [os.path.join(build, "client", "tasksolver-cli"), "batch", inp, "-o", out,
           "--url", url, "--no-progress", *extra]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    secs = time.monotonic() - t0
    if proc.returncode != 0:
        # The inputs' errors are in the output, not in the summary.
        errors = []
        if os.path.exists(out):
            with open(out) as f:
                errors = [line for line in f if " ERROR " in line][:5]
        sys.exit("client failed (%d):\n%s%s" % (proc.returncode, proc.stderr,
                                                 "first errors:\n" + "".join(errors)
                                                 if errors else ""))
    # The client reports its own VmHWM: wait4's ru_maxrss would include this
    # Python process's pages (Linux keeps the pre-exec peak across exec).
    return secs, stat(proc.stderr, r"peak RSS ([\d.]+) MiB") * 1024, proc.stderr


def stat(summary, pattern):
    return float(re.search(pattern, summary).group(1))


def check_output(out, inputs):
    """Every input exactly once, with twice its value."""
    want = {}
    for x in inputs:
        want[x] = want.get(x, 0) + 1
    with open(out) as f:
        for line in f:
            x, r = line.split()
            assert int(r) == 2 * int(x), line
            want[x] -= 1
    assert all(v == 0 for v in want.values()), "inputs missing or repeated"


def write_inputs(path, n, seed):
    rng = random.Random(seed)
    inputs = [str(rng.randint(1, 10**9)) for _ in range(n)]
    with open(path, "w") as f:
        f.write("\n".join(inputs) + "\n")
    return inputs


def sleeping_run(args, tmp, n, lo, hi, extra=(), label=None):
    inp, out = os.path.join(tmp, "in-%d" % n), os.path.join(tmp, "out")
    inputs = write_inputs(inp, n, 1)
    ideal = sum(sleep_ms(x, lo, hi) for x in inputs) / 1000 / 5
    srv = Server(args.build, lo, hi, tmp)
    try:
        secs, rss, summary = run_client(args.build, srv.url, inp, out, *extra)
    finally:
        srv.stop()
    check_output(out, inputs)
    refused = int(stat(summary, r"403: (\d+)"))
    polls = stat(summary, r"\(([\d.]+) per input\)")
    # What the server really spent per task (spawn and clean-up included),
    # spread over its 5 workers: no client can finish sooner than that.
    busy = sum(srv.run_ms) / 1000 / 5
    print("%-27s %6d inputs %7.1f s | ideal %6.1f s x%.3f | server-bound %6.1f s x%.3f | "
          "403s %5d | polls/input %5.2f | peak RSS %4.1f MiB"
          % (label or "calc 20-80 ms", n, secs, ideal, secs / ideal, busy, secs / busy,
             refused, polls, rss / 1024), flush=True)


def instant_run(args, tmp, n):
    inp, out = os.path.join(tmp, "in-%d" % n), os.path.join(tmp, "out")
    inputs = write_inputs(inp, n, 2)
    srv = Server(args.build, 0, 0, tmp)
    try:
        secs, rss, summary = run_client(args.build, srv.url, inp, out)
    finally:
        srv.stop()
    check_output(out, inputs)
    print("%-27s %6d inputs %7.1f s | %6.0f inputs/s | 403s %5d | peak RSS %4.1f MiB" % (
        "calc answering at once", n, secs, n / secs, int(stat(summary, r"403: (\d+)")),
        rss / 1024), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--inputs", type=int, default=20000)
    ap.add_argument("--instant", type=int, default=200000)
    ap.add_argument("--sweep", type=int, default=2000)
    ap.add_argument("--skip-sweep", action="store_true")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)  # the calc command runs in a task directory
    print("machine: %d CPUs, load average %.1f at start" % (os.cpu_count(),
                                                            os.getloadavg()[0]))
    with tempfile.TemporaryDirectory(prefix="ts-bench-") as tmp:
        sleeping_run(args, tmp, args.inputs, 20, 80)
        if not args.skip_sweep:
            for pmin, factor in (("0.002", "0.05"), ("0.005", "0.1"), ("0.02", "0.25"),
                                 ("0.05", "0")):
                sleeping_run(args, tmp, args.sweep, 20, 80,
                             ("--poll-min", pmin, "--poll-factor", factor),
                             "poll-min %s factor %s" % (pmin, factor))
        for n in sorted({min(20000, args.instant), args.instant}):
            instant_run(args, tmp, n)


if __name__ == "__main__":
    main()
