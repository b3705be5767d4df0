#!/usr/bin/env python3
"""Slow and idle connections against tasksolver: is a normal client still
served?

    python3 bench/slowloris.py [--conns 300] [--seconds 30] [--server-cmd CMD]
                               [--attack-source 127.0.0.2]

Holds, for the whole run, --slow connections that send a request's headers
one byte a second and never finish them, --idle keep-alive connections that
made one request and then sit silent, and --silent TCP connections that
never send a byte (each --conns by default). A connection the server closes
is opened again at once, as an attacker would. Meanwhile a probe sends a
normal GET /get_task_count on a new connection every --interval seconds and
records how long the answer took (a probe still unanswered after
--probe-timeout counts as that long and as a failure).

Prints the probe's p50, p99 and max latency, the fraction answered within
1 s, and how many attack connections the server closed. The server is
started by the script: CMD if given (e.g. "/path/to/tasksolver --workers
2"; "--port 0" is appended), else BUILD/server/tasksolver with its
defaults. All traffic stays on 127.0.0.0/8: the attack comes from
--attack-source (127.0.0.2), the probe from 127.0.0.1, as an attacker
and a client would be different hosts (the server limits connections per
address; --attack-source 127.0.0.1 shares the probe's). Bounded: at most
5 000 attack connections, --seconds of probing after --ramp seconds.
Exit status 0 when at least --target of the probes were answered within
1 s, 1 otherwise, 2 on a usage or start-up error."""

import argparse
import errno
import http.client
import os
import re
import resource
import selectors
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LISTEN_RE = re.compile(r"listening on http://([0-9.]+):(\d+)")
MAX_CONNS = 5000
SLOW_HEAD = b"GET /get_task_count HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
IDLE_REQ = b"GET /get_task_count HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def die(msg):
    print("slowloris: " + msg, file=sys.stderr)
    sys.exit(2)


class Server:
    """The server under test on a free port; its log goes to a file."""

    def __init__(self, argv):
        self.log = tempfile.NamedTemporaryFile(prefix="slowloris.", suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv + ["--port", "0"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
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
                time.sleep(0.05)
        if self.port is None:
            with open(self.log.name, errors="replace") as f:
                log = f.read()[-3000:]
            self.stop()
            die("server did not start: %s\n%s" % (" ".join(argv), log))
        if not self.host.startswith("127."):
            self.stop()
            die("the server listens on %s; this bench only talks to 127.0.0.0/8" % self.host)

    def status(self):
        """(VmRSS KiB, threads) of the server."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        if "VmRSS" not in st:
            with open(self.log.name, errors="replace") as f:
                die("the server is gone:\n" + f.read()[-3000:])
        return int(st["VmRSS"].split()[0]), int(st["Threads"])

    def get(self, path, timeout=10):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


class Attack(threading.Thread):
    """Keeps the slow, idle and silent connections open from one thread."""

    def __init__(self, addr, source, counts):
        super().__init__(daemon=True)
        self.addr, self.source, self.counts = addr, source, counts
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # socket -> [kind, state, next byte time, bytes sent]
        self.open = {k: 0 for k in counts}  # established now
        self.closed = {k: 0 for k in counts}  # closed by the server
        self.failed = 0  # connects that failed
        self.stop_flag = threading.Event()

    def _connect(self, kind):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((self.source, 0))
        try:
            s.connect(self.addr)
        except BlockingIOError:
            pass
        self.conns[s] = [kind, "connecting", 0.0, 0]
        self.sel.register(s, selectors.EVENT_WRITE)

    def _drop(self, s, by_server):
        kind, state = self.conns.pop(s)[:2]
        self.sel.unregister(s)
        s.close()
        if state == "connecting":
            self.failed += 1
        else:
            self.open[kind] -= 1
            if by_server:
                self.closed[kind] += 1

    def _established(self, s, now):
        c = self.conns[s]
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._drop(s, False)
            return
        c[1] = "open"
        self.open[c[0]] += 1
        try:
            if c[0] == "slow":
                c[3] = s.send(SLOW_HEAD[:1])
                c[2] = now + 1.0
            elif c[0] == "idle":
                s.send(IDLE_REQ)
        except OSError:
            self._drop(s, True)
            return
        self.sel.modify(s, selectors.EVENT_READ)

    def run(self):
        while not self.stop_flag.is_set():
            now = time.monotonic()
            # Top up what the server closed, a bounded number per turn so
            # that the listen queue sees a steady stream, not a burst.
            have = {k: 0 for k in self.counts}
            for c in self.conns.values():
                have[c[0]] += 1
            budget = 100
            while budget > 0:
                short = [k for k in self.counts if have[k] < self.counts[k]]
                if not short:
                    break
                for kind in short[:budget]:
                    self._connect(kind)
                    have[kind] += 1
                    budget -= 1
            for key, ev in self.sel.select(timeout=0.05):
                s = key.fileobj
                if s not in self.conns:
                    continue
                if self.conns[s][1] == "connecting":
                    self._established(s, now)
                    continue
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._drop(s, True)
                # else: an idle connection's answer, or an error page
            # One more header byte a second on each slow connection.
            for s, c in list(self.conns.items()):
                if c[0] == "slow" and c[1] == "open" and now >= c[2]:
                    try:
                        byte = SLOW_HEAD[c[3]:c[3] + 1] or b"a"
                        c[3] += s.send(byte)
                        c[2] = now + 1.0
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        self._drop(s, True)
        for s in list(self.conns):
            self.sel.unregister(s)
            s.close()
        self.conns.clear()


def probe_loop(addr, interval, timeout, stop, out):
    """GET /get_task_count on a new connection every interval seconds."""
    nxt = time.monotonic()
    while not stop.is_set():
        t0 = time.monotonic()
        ok = False
        try:
            conn = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)
            conn.request("GET", "/get_task_count")
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
            conn.close()
        except (OSError, http.client.HTTPException):
            pass
        dt = time.monotonic() - t0
        out.append((dt if ok else max(dt, timeout), ok))
        nxt += interval
        pause = nxt - time.monotonic()
        if pause > 0:
            stop.wait(pause)
        else:
            nxt = time.monotonic()


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--build", default=os.environ.get("TS_BUILD_DIR",
                                                      os.path.join(HERE, "..", "build")))
    ap.add_argument("--server-cmd", help="command line of the server (default: "
                    "BUILD/server/tasksolver); --port 0 is appended")
    ap.add_argument("--conns", type=int, default=300,
                    help="default for --slow, --idle and --silent")
    ap.add_argument("--slow", type=int, help="connections sending a header byte a second")
    ap.add_argument("--idle", type=int, help="idle keep-alive connections")
    ap.add_argument("--silent", type=int, help="connections that send nothing")
    ap.add_argument("--attack-source", default="127.0.0.2",
                    help="loopback address the attack connects from (default 127.0.0.2)")
    ap.add_argument("--seconds", type=float, default=30, help="probing time")
    ap.add_argument("--ramp", type=float, default=5,
                    help="seconds between opening the attack and the first probe")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between probes")
    ap.add_argument("--probe-timeout", type=float, default=10)
    ap.add_argument("--target", type=float, default=0.99,
                    help="fraction of probes that must be answered within 1 s")
    a = ap.parse_args()
    counts = {k: getattr(a, k) if getattr(a, k) is not None else a.conns
              for k in ("slow", "idle", "silent")}
    total = sum(counts.values())
    if total > MAX_CONNS or min(counts.values()) < 0:
        die("between 0 and %d attack connections in all" % MAX_CONNS)
    if not a.attack_source.startswith("127."):
        die("--attack-source must be a loopback address (127.x.y.z)")
    if not 0 < a.seconds <= 600:
        die("--seconds must be in (0, 600]")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < total + 100:
        if hard != resource.RLIM_INFINITY and hard < total + 100:
            die("RLIMIT_NOFILE %d is too small for %d connections" % (hard, total))
        resource.setrlimit(resource.RLIMIT_NOFILE, (total + 100, hard))
    argv = (shlex.split(a.server_cmd) if a.server_cmd
            else [os.path.join(os.path.abspath(a.build), "server", "tasksolver")])
    srv = Server(argv)
    try:
        if srv.get("/get_task_count") != 200:
            die("the server does not answer GET /get_task_count")
        rss0, thr0 = srv.status()
        addr = (srv.host, srv.port)
        attack = Attack(addr, a.attack_source, counts)
        attack.start()
        time.sleep(a.ramp)
        rss1, thr1 = srv.status()
        samples, stop = [], threading.Event()
        prober = threading.Thread(target=probe_loop,
                                  args=(addr, a.interval, a.probe_timeout, stop, samples))
        prober.start()
        time.sleep(a.seconds)
        stop.set()
        prober.join()
        rss2, thr2 = srv.status()
        attack.stop_flag.set()
        attack.join()
    finally:
        srv.stop()
    lat = [s[0] for s in samples]
    fast = sum(1 for s in samples if s[1] and s[0] <= 1.0)
    frac = fast / len(samples) if samples else 0.0
    print("server: %s" % " ".join(argv))
    print("attack from %s: slow %d, idle %d, silent %d; open at the end: %s; "
          "closed by the server: %s; failed connects: %d"
          % (a.attack_source, counts["slow"], counts["idle"], counts["silent"],
             attack.open, attack.closed, attack.failed))
    print("server RSS %.1f MiB, %d threads at start; %.1f MiB, %d threads under attack "
          "(after %.0f s); %.1f MiB at the end"
          % (rss0 / 1024, thr0, rss1 / 1024, thr1, a.ramp, rss2 / 1024))
    print("probe: %d requests over %.0f s, failed %d; latency p50 %.1f ms, p99 %.1f ms, "
          "max %.1f ms; answered within 1 s: %.1f%%"
          % (len(samples), a.seconds, sum(1 for s in samples if not s[1]),
             statistics.median(lat) * 1e3 if lat else 0, pct(lat, 99) * 1e3 if lat else 0,
             max(lat) * 1e3 if lat else 0, frac * 100))
    print("load average: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    return 0 if frac >= a.target else 1


if __name__ == "__main__":
    sys.exit(main())
