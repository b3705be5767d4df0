#!/usr/bin/env python3
"""Benchmark of nodes sharing a PostgreSQL store (--store), against one
node. Starts its own PostgreSQL (tests/e2e/pg.py; run as root) and the
servers, in the default configuration (sandbox on).

1. Sleep-bound tasks (0.5 s each): 3 nodes x 2 workers against 1 node x 2
   workers, the same number of tasks per worker; the ratio of task rates
   (target >= 2.7x: the claim and the lease cost little against the run).
2. Trivial tasks (echo) through one node: --store against memory only; the
   ratio of rates (target >= 0.6x: a task costs an insert, a claim and an
   update).
3. Cross-node wake-up: a long poll on a node that did not run the task,
   from finished_at (the database's clock) to the answer; p50 and p99.

With --rounds N, only part 2, N times, the two servers alternating (the
machine is shared: a neighbour's burst then hits both sides alike); it
prints each round's ratio and the median with its spread. --compare
OTHER_BUILD adds, in every round, the --store node of another build (in
alternating order, each followed by its own memory run): a change's
before and after under the same load.

Usage: python3 bench/cluster_bench.py [--build build] [--sleep-tasks 72]
           [--trivial 600] [--wakeups 60] [--clients 8] [--rounds N]
           [--compare OTHER_BUILD]
Not part of ctest: about a minute.
"""

import argparse
import base64
import calendar
import http.client
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

SLEEP = "#!/bin/sh\nsleep 0.5\n"
ECHO = "#!/bin/sh\necho hi\n"


def parse_time(s):
    base, frac = s.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%d %H:%M:%S")) + float("0." + frac)


class Client:
    """One keep-alive connection to a node."""

    def __init__(self, node):
        self.conn = http.client.HTTPConnection(node.host, node.port, timeout=120)

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body else None)
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())

    def run(self, source, wait=60):
        body = {"type": "bin", "file": base64.b64encode(source.encode()).decode()}
        st, doc = self.call("POST", "/create_task?wait=%d" % wait, body)
        if st != 200 or doc.get("status") != "SUCCESS":
            raise RuntimeError("task failed: %d %r" % (st, doc))
        return doc


def rate(nodes, source, count, clients):
    """Runs count tasks with `clients` clients spread over nodes; tasks/s."""
    left = [count]
    lock = threading.Lock()
    errors = []

    def work(i):
        c = Client(nodes[i % len(nodes)])
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                c.run(source)
            except Exception as e:  # reported below
                errors.append(e)
                return

    t0 = time.monotonic()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return count / (time.monotonic() - t0)


def wakeups(nodes, n):
    """Latency of a long poll on another node than the one that created
    the task, from finished_at to the answer."""
    lags = []
    for i in range(n):
        a, b = nodes[i % len(nodes)], nodes[(i + 1) % len(nodes)]
        st, _, doc = a.request("POST", "/create_task", {
            "type": "bin", "file": base64.b64encode(b"#!/bin/sh\nsleep 0.1\n").decode()})
        st, _, doc = b.status(doc["id"], wait=30)
        lags.append(time.time() - parse_time(doc["meta"]["finished_at"]))
    lags.sort()
    return lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]


def trivial_rounds(db, args, Server):
    """Part 2 alone, alternating --store and memory round by round."""
    store = Server("--store", db.url, "--workers", "2")
    mem = Server("--workers", "2")
    try:
        rate([store], ECHO, 50, args.clients)  # warm both up: cells, connections
        rate([mem], ECHO, 50, args.clients)
        ratios, rss, rms = [], [], []
        for i in range(args.rounds):
            if i % 2:
                rm = rate([mem], ECHO, args.trivial, args.clients)
                rs = rate([store], ECHO, args.trivial, args.clients)
            else:
                rs = rate([store], ECHO, args.trivial, args.clients)
                rm = rate([mem], ECHO, args.trivial, args.clients)
            ratios.append(rs / rm)
            rss.append(rs)
            rms.append(rm)
            print("round %d: memory %.0f tasks/s, --store %.0f tasks/s: %.2fx"
                  % (i + 1, rm, rs, rs / rm), flush=True)
        print("trivial tasks, 1 node x 2 workers, %d clients, %d rounds: memory median %.0f "
              "tasks/s, --store median %.0f tasks/s; ratio median %.2fx (min %.2fx, max %.2fx)"
              " (target >= 0.6x)" % (args.clients, args.rounds, statistics.median(rms),
                                     statistics.median(rss), statistics.median(ratios),
                                     min(ratios), max(ratios)))
    finally:
        store.stop()
        mem.stop()


def compare_rounds(db, args, Server):
    """Part 2 for this build and another: per round, each build's --store
    node (started afresh: two on one database would share its queue)
    followed by a memory run, the builds' order alternating."""
    builds = {"this build": args.build, "other build": args.compare}
    mem = Server("--workers", "2")
    got = {k: [] for k in builds}
    try:
        rate([mem], ECHO, 50, args.clients)
        for i in range(args.rounds):
            for k in (list(builds) if i % 2 == 0 else list(builds)[::-1]):
                s = Server("--store", db.url, "--workers", "2",
                           binary=os.path.join(os.path.abspath(builds[k]), "server", "tasksolver"))
                try:
                    rate([s], ECHO, 50, args.clients)
                    rs = rate([s], ECHO, args.trivial, args.clients)
                finally:
                    s.stop()
                rm = rate([mem], ECHO, args.trivial, args.clients)
                got[k].append((rs, rm, rs / rm))
                print("round %d, %s: --store %.0f tasks/s, memory %.0f tasks/s: %.2fx"
                      % (i + 1, k, rs, rm, rs / rm), flush=True)
    finally:
        mem.stop()
    for k, v in got.items():
        print("%s (%s): --store median %.0f tasks/s, memory median %.0f tasks/s; ratio median "
              "%.2fx (min %.2fx, max %.2fx)" % (
                  k, builds[k], statistics.median(x[0] for x in v),
                  statistics.median(x[1] for x in v), statistics.median(x[2] for x in v),
                  min(x[2] for x in v), max(x[2] for x in v)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--sleep-tasks", type=int, default=72, help="per node of the 1-node run x3")
    ap.add_argument("--trivial", type=int, default=600)
    ap.add_argument("--wakeups", type=int, default=60)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=0,
                    help="only the trivial tasks, this many alternating rounds")
    ap.add_argument("--compare", metavar="OTHER_BUILD",
                    help="with --rounds: also another build's --store node, alternated")
    args = ap.parse_args()
    os.environ["TS_BUILD_DIR"] = os.path.abspath(args.build)
    import pg
    from harness import Server

    why = pg.available()
    if why:
        sys.exit("cluster_bench: " + why)
    db = pg.PostgreSQL()
    try:
        if args.rounds and args.compare:
            compare_rounds(db, args, Server)
            return
        if args.rounds:
            trivial_rounds(db, args, Server)
            return
        one = [Server("--store", db.url, "--workers", "2")]
        r1 = rate(one, SLEEP, args.sleep_tasks // 3, 4)
        three = one + [Server("--store", db.url, "--workers", "2") for _ in range(2)]
        r3 = rate(three, SLEEP, args.sleep_tasks, 12)
        print("sleep 0.5 s tasks: 1 node x 2 workers %.2f tasks/s, 3 nodes x 2 workers "
              "%.2f tasks/s: %.2fx (target >= 2.7x; ideal 4.0/s and 12.0/s)"
              % (r1, r3, r3 / r1))
        p50, p99 = wakeups(three, args.wakeups)
        print("cross-node long poll wake-up after the finish: p50 %.1f ms, p99 %.1f ms"
              % (p50 * 1e3, p99 * 1e3))
        for s in three[1:]:
            s.stop()
        rs = rate(one, ECHO, args.trivial, args.clients)
        one[0].stop()
        mem = Server("--workers", "2")
        rm = rate([mem], ECHO, args.trivial, args.clients)
        mem.stop()
        print("trivial tasks, 1 node x 2 workers, %d clients: memory %.0f tasks/s, --store "
              "%.0f tasks/s: %.2fx (target >= 0.6x)" % (args.clients, rm, rs, rs / rm))
    finally:
        db.stop()


if __name__ == "__main__":
    main()
