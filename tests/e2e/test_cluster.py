"""End-to-end tests of cluster mode: a master and worker nodes as real
processes, arithmetic jobs, the seed's client flow, parallelism, faults."""

import http.server
import json
import os
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BUILD_DIR, CLI_BIN, SERVER_BIN, Server, alive, check_log, children_of

CLUSTER_SH = os.path.join(os.path.dirname(__file__), "..", "..", "packaging", "cluster.sh")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_all(nodes):
    """Stops servers in parallel (each takes up to ~2 s to stop)."""
    for n in nodes:
        if n.proc.poll() is None:
            n.proc.send_signal(signal.SIGTERM)
    for n in nodes:
        n.stop()


class Master:
    """Helpers to talk to a master at base URL through a harness Server."""

    def __init__(self, srv):
        self.srv = srv

    def submit(self, task):
        st, _, body = self.srv.request("POST", "/submit", {"task": task})
        return st, body

    def submit_ok(self, task):
        st, body = self.submit(task)
        if st != 200:
            raise AssertionError("submit %r: %d %r" % (task, st, body))
        return body["job_id"]

    def job(self, job_id):
        st, _, doc = self.srv.request("GET", "/job/%d" % job_id)
        if st != 200:
            raise AssertionError("job %d: %d %r" % (job_id, st, doc))
        return doc

    def wait_job(self, job_id, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.job(job_id)
            if doc["finished"]:
                return doc
            time.sleep(0.02)
        raise AssertionError("job %d not finished after %ss: %r" % (job_id, timeout, doc))

    def workers(self):
        st, _, body = self.srv.request("GET", "/workers")
        assert st == 200, body
        return body

    def wait_workers(self, n, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ws = self.workers()
            if sum(1 for w in ws if w["healthy"]) >= n:
                return ws
            time.sleep(0.05)
        raise AssertionError("%d healthy workers expected: %r" % (n, self.workers()))


class RemoteServer(Server):
    """A harness Server-like view of a URL we did not start."""

    def __init__(self, url):  # pylint: disable=super-init-not-called
        host, port = url.rsplit("/", 1)[1].split(":")
        self.host, self.port = host, int(port)


class Cluster:
    """A master and worker nodes started directly."""

    def __init__(self, workers=2, master_args=(), worker_args=()):
        self.master_srv = Server(*master_args)
        self.m = Master(self.master_srv)
        self.worker_args = worker_args
        self.workers = []
        try:
            for _ in range(workers):
                self.add_worker()
            self.m.wait_workers(workers)
        except BaseException:
            self.stop()
            raise

    def add_worker(self, *extra, name=None):
        name = name or "w%d" % (len(self.workers) + 1)
        w = Server("--join", self.master_srv.url, "--name", name, *self.worker_args, *extra)
        self.workers.append(w)
        return w

    def stop(self):
        stop_all([self.master_srv] + self.workers)


def py_value(text):
    """The answer the master must give, in Python terms."""
    return json.loads(text)


class ClusterScript(unittest.TestCase):
    """The seed's system started by packaging/cluster.sh: the seed's flow,
    the expression table, the /compute API, the /jobs listing."""

    @classmethod
    def setUpClass(cls):
        cls.logdir = tempfile.mkdtemp(prefix="ts-cluster-")
        cls.proc = subprocess.Popen(
            ["sh", CLUSTER_SH, "-n", "3", "-p", "0", "-b", SERVER_BIN, "-l", cls.logdir],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in cls.proc.stdout],
                         daemon=True).start()
        cls.url = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line.startswith("master "):
                cls.url = line.split()[1]
            if line.startswith("ready"):
                break
        else:
            cls.proc.kill()
            raise RuntimeError("cluster.sh did not get ready: " + cls.proc.stderr.read())
        cls.m = Master(RemoteServer(cls.url))

    @classmethod
    def tearDownClass(cls):
        nodes = children_of(cls.proc.pid)
        cls.proc.send_signal(signal.SIGTERM)
        rc = cls.proc.wait(30)
        cls.proc.stdout.close()
        cls.proc.stderr.close()
        for name in os.listdir(cls.logdir):
            with open(os.path.join(cls.logdir, name)) as f:
                check_log(f.readlines())
        assert rc == 0, rc
        assert len(nodes) == 4, nodes
        assert not any(alive(p) for p in nodes), "cluster.sh left processes running"

    def cli(self, *args, timeout=30):
        return subprocess.run([CLI_BIN, "expr", *args, "--url", self.url, "--interval", "0.1"],
                              capture_output=True, text=True, timeout=timeout)

    def test_seed_flow_over_http(self):
        st, body = self.m.submit("1+(2*3)/4-5")
        self.assertEqual(st, 200, body)
        self.assertIsInstance(body["job_id"], int)
        self.assertIs(body["finished"], False)
        st, _, jobs = self.m.srv.request("GET", "/jobs")
        self.assertEqual(st, 200)
        self.assertIn(body["job_id"], [j["job_id"] for j in jobs])
        doc = self.m.wait_job(body["job_id"])
        self.assertEqual(doc["answer"], -2.5)
        self.assertIs(doc["finished"], True)
        self.assertEqual(doc["job_id"], body["job_id"])
        self.assertNotIn("error", doc)
        self.assertEqual(doc["operations"], 4)

    def test_seed_flow_with_the_cli(self):
        r = self.cli("1+(2*3)/4-5")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "-2.5\n")
        self.assertIn("listed in /jobs", r.stderr)
        r = self.cli("-", "9007199254740993", "*", "1")  # arguments are joined
        self.assertEqual((r.returncode, r.stdout), (0, "-9007199254740993\n"), r.stderr)

    def test_cli_reports_job_errors_and_malformed_input(self):
        r = self.cli("10/(5-5)")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("division by zero", r.stderr)
        r = self.cli("1+*3")
        self.assertEqual(r.returncode, 1)
        self.assertIn("offset 2", r.stderr)
        self.assertIn("  1+*3\n    ^", r.stderr)
        r = subprocess.run([CLI_BIN, "expr"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)

    def test_expression_table(self):
        table = [
            ("1+(2*3)/4-5", "-2.5"),
            ("2+3*4", "14"), ("(2+3)*4", "20"), ("2*3-4/2", "4"),
            ("8-3-2", "3"), ("8/4/2", "1"), ("2-(3-4)", "3"),
            ("-3*-2", "6"), ("-(2+3)", "-5"), ("--1", "1"), ("- (1 - 4) * 2", "6"),
            ("+4", "4"), ("42", "42"), ("((((7))))", "7"),
            ("0.1+0.2", "0.30000000000000004"), ("1.5e2/4", "37.5"), ("7/2", "3.5"),
            ("1/3", "0.3333333333333333"), ("6/3", "2"), ("2.5*2", "5"), ("-0.5*-0.5", "0.25"),
            ("9007199254740993 + 0", "9007199254740993"),
            ("123456789*987654321", "121932631112635269"),
            ("9223372036854775807 + 1", "9.223372036854776e18"),
            ("-9223372036854775808 / -1", "9.223372036854776e18"),
            (" \t1 +\n2\r\n", "3"),
            ("((1+2)*(3+4))-((5+6)*(7+8))", "-144"),
        ]
        ids = [(self.m.submit_ok(e), e, want) for e, want in table]
        for job_id, expr, want in ids:
            doc = self.m.wait_job(job_id)
            self.assertNotIn("error", doc, expr)
            got, exp = doc["answer"], py_value(want)
            self.assertEqual((got, type(got)), (exp, type(exp)), expr)

    def test_failing_jobs_finish_with_null_and_an_error(self):
        for expr, msg in [("1/0", "division by zero"), ("5/(3-3)", "division by zero"),
                          ("0/0+1", "division by zero"), ("1e308*10", "not a finite")]:
            doc = self.m.wait_job(self.m.submit_ok(expr))
            self.assertIs(doc["finished"], True)
            self.assertIsNone(doc["answer"], expr)
            self.assertIn(msg, doc["error"], expr)

    def test_malformed_expressions_are_rejected_at_submit(self):
        st, _, before = self.m.srv.request("GET", "/jobs")
        newest = before[0]["job_id"] if before else 0
        for expr, offset in [("", 0), ("1+", 2), ("(1+2", 0), ("1+2)", 3), ("1 2", 2),
                             ("2*/3", 2), ("abc", 0), ("1+a", 2), ("1..2", 0), ("()", 1)]:
            st, body = self.m.submit(expr)
            self.assertEqual(st, 400, expr)
            self.assertIn("malformed expression", body["error"])
            self.assertEqual(body["offset"], offset, (expr, body))
        for bad in [{"task": 5}, {"tusk": "1+1"}, {"task": "1+1\u0000+"}]:
            st, _, body = self.m.srv.request("POST", "/submit", bad)
            self.assertEqual(st, 400, (bad, body))
        st, _, body = self.m.srv.request("POST", "/submit", "not json")
        self.assertEqual(st, 400)
        st, _, after = self.m.srv.request("GET", "/jobs")
        self.assertEqual(after[0]["job_id"] if after else 0, newest, "a job was created")

    def test_job_lookup_errors(self):
        st, _, body = self.m.srv.request("GET", "/job/999999")
        self.assertEqual(st, 404)
        self.assertIn("error", body)
        st, _, body = self.m.srv.request("GET", "/job/abc")
        self.assertEqual(st, 400)
        st, _, body = self.m.srv.request("DELETE", "/jobs")
        self.assertEqual(st, 405)

    def test_jobs_lists_exactly_the_100_newest(self):
        ids = [self.m.submit_ok("%d+1" % i) for i in range(150)]
        self.assertEqual(ids, list(range(ids[0], ids[0] + 150)))
        st, _, jobs = self.m.srv.request("GET", "/jobs")
        self.assertEqual(st, 200)
        self.assertEqual([j["job_id"] for j in jobs], ids[::-1][:100])
        for j in jobs:
            self.assertIn(j["finished"], (True, False))
            self.assertIn("answer", j)
        self.assertEqual(self.m.wait_job(ids[0])["answer"], 1)  # older ones still answer
        self.assertEqual(self.m.wait_job(ids[-1])["answer"], 150)

    def test_compute_on_a_worker(self):
        ws = self.m.workers()
        self.assertEqual(len(ws), 3)
        w = RemoteServer(ws[0]["url"])
        st, _, body = w.request("POST", "/compute",
                                '{"operation": "mul", "op1": 9007199254740993, "op2": -1}')
        self.assertEqual(st, 200, body)
        self.assertEqual(body, {"operation": "mul", "op1": 9007199254740993, "op2": -1,
                                "result": -9007199254740993})
        st, _, body = w.request("POST", "/compute", {"operation": "div", "op1": 1.5, "op2": 0.5})
        self.assertEqual(body["result"], 3)
        for req, msg in [({"operation": "div", "op1": 1, "op2": 0}, "division by zero"),
                         ({"operation": "pow", "op1": 1, "op2": 2}, "operation"),
                         ({"operation": "sum", "op1": "x", "op2": 2}, "op1"),
                         ({"operation": "sum", "op1": 1}, "op2"),
                         ("{broken", "JSON")]:
            st, _, body = w.request("POST", "/compute", req)
            self.assertEqual(st, 400, req)
            self.assertIn(msg, body["error"], req)
        st, _, body = w.request("GET", "/compute")
        self.assertEqual(st, 405)

    def test_workers_lists_health_and_work_done(self):
        self.m.wait_job(self.m.submit_ok("((1+2)*(3+4))-((5+6)*(7+8))"))
        ws = self.m.workers()
        self.assertEqual(sorted(w["worker_name"] for w in ws), ["worker1", "worker2", "worker3"])
        for w in ws:
            self.assertIs(w["healthy"], True)
            self.assertTrue(w["url"].startswith("http://127.0.0.1:"), w)
            self.assertEqual(w["slots"], 1)
            self.assertIsInstance(w["operations"], int)
        self.assertGreaterEqual(sum(w["operations"] for w in ws), 7)


class Parallelism(unittest.TestCase):
    """Four workers that take 300 ms per operation."""

    DELAY = 0.3

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(4, worker_args=("--compute-delay-ms", str(int(cls.DELAY * 1000))))
        cls.m = cls.c.m

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def test_wide_expression_takes_depth_times_delay(self):
        # 7 operations, depth 3: 0.9 s in parallel, 2.1 s one at a time.
        t0 = time.monotonic()
        doc = self.m.wait_job(self.m.submit_ok("((1+2)*(3+4))-((5+6)*(7+8))"))
        wall = time.monotonic() - t0
        self.assertEqual(doc["answer"], -144)
        self.assertEqual((doc["operations"], doc["depth"]), (7, 3))
        elapsed = doc["elapsed_ms"] / 1000
        self.assertGreaterEqual(elapsed, 3 * self.DELAY * 0.95)
        self.assertLess(elapsed, 6 * self.DELAY, doc)  # serial would be 2.1 s
        self.assertLess(wall, 7 * self.DELAY)
        busy = [w for w in self.m.workers() if w["operations"] > 0]
        self.assertGreaterEqual(len(busy), 4, "the first level uses every worker")

    def test_depth_governs_a_chain(self):
        # A chain cannot run in parallel: 4 levels take at least 4 delays.
        doc = self.m.wait_job(self.m.submit_ok("1+2+3+4+5"))
        self.assertEqual(doc["answer"], 15)
        self.assertGreaterEqual(doc["elapsed_ms"] / 1000, 4 * self.DELAY * 0.95)

    def test_submissions_stay_fast_while_jobs_are_slow(self):
        exprs = ["(%d+1)*(%d+2)" % (i, i) for i in range(10)]  # 30 ops: ~2.4 s of work
        ids, worst = [], 0
        for e in exprs:
            t0 = time.monotonic()
            ids.append(self.m.submit_ok(e))
            worst = max(worst, time.monotonic() - t0)
        t0 = time.monotonic()
        st, _, jobs = self.m.srv.request("GET", "/jobs")
        listing = time.monotonic() - t0
        self.assertEqual(st, 200)
        self.assertFalse(self.m.job(ids[-1])["finished"])
        # Waiting on the workers would take at least two delays (0.6 s).
        self.assertLess(worst, 0.5, "a submission waited on the workers")
        self.assertLess(listing, 0.5)
        for job_id, i in zip(ids, range(10)):
            self.assertEqual(self.m.wait_job(job_id)["answer"], (i + 1) * (i + 2))


class FakeWorker:
    """A stdlib HTTP server answering POST /compute like the seed's Python
    worker would ("ok") or failing with 500 ("fail")."""

    def __init__(self, mode):
        outer = self
        self.mode, self.hits = mode, 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.hits += 1
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.mode == "fail":
                    status, body = 500, {"error": "broken"}
                else:
                    a, b, op = req["op1"], req["op2"], req["operation"]
                    if op == "div" and b == 0:
                        status, body = 400, {"error": "cannot divide by zero"}
                    else:
                        res = {"sum": a + b, "sub": a - b, "mul": a * b}.get(op)
                        status, body = 200, dict(req, result=a / b if res is None else res)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Faults(unittest.TestCase):
    """Workers that die, fail, start first, or are not there at all."""

    def test_worker_killed_mid_job(self):
        c = Cluster(3, worker_args=("--compute-delay-ms", "300"))
        try:
            expr = "(((1+2)*(3+4))-((5+6)*(7+8)))+(((9+10)*(11+12))-((13+14)*(15+16)))"
            job_id = c.m.submit_ok(expr)
            time.sleep(0.45)  # every worker is busy with its second operation
            victim = c.workers[0]
            victim.proc.kill()
            victim.proc.wait()
            doc = c.m.wait_job(job_id, timeout=30)
            self.assertEqual(doc["answer"], -144 + (19 * 23 - 27 * 31))
            self.assertNotIn("error", doc)
            w1 = [w for w in c.m.workers() if w["worker_name"] == "w1"][0]
            self.assertIs(w1["healthy"], False)
            self.assertGreaterEqual(w1["failures"], 1)
            self.assertTrue(w1["last_error"])
            # Restarted on the same port it announces itself and is back.
            port = victim.port
            victim.stop(check=False)
            c.workers.remove(victim)
            c.add_worker("--port", str(port), name="w1")
            c.m.wait_workers(3)
            self.assertEqual(c.m.wait_job(c.m.submit_ok("(1+1)*(2+2)*(3+3)"))["answer"], 48)
        finally:
            c.stop()

    def test_failing_node_is_skipped_and_a_seed_style_worker_computes(self):
        bad, good = FakeWorker("fail"), FakeWorker("ok")
        srv = Server("--op-timeout", "2")
        m = Master(srv)
        try:
            # Any node that answers /compute may register; "url" is optional:
            # without it the master calls back the source address on "port".
            st, _, body = srv.request("POST", "/worker",
                                      {"worker_name": "bad", "url": "http://127.0.0.1:%d/" % bad.port})
            self.assertEqual((st, body["url"], body["new"]), (200, "http://127.0.0.1:%d" % bad.port, True))
            st, _, body = srv.request("POST", "/worker", {"worker_name": "py", "port": good.port})
            self.assertEqual((st, body["url"]), (200, "http://127.0.0.1:%d" % good.port))
            st, _, body = srv.request("POST", "/worker", {"worker_name": "py", "port": good.port})
            self.assertEqual(body["new"], False)  # idempotent by name
            self.assertEqual(len(m.workers()), 2)
            doc = m.wait_job(m.submit_ok("(1+2)*(3+4)/2"))
            self.assertEqual(doc["answer"], 10.5)
            doc = m.wait_job(m.submit_ok("1/(2-2)"))
            self.assertIsNone(doc["answer"])
            self.assertIn("cannot divide by zero", doc["error"])
            self.assertGreaterEqual(bad.hits, 1)
            ws = {w["worker_name"]: w for w in m.workers()}
            self.assertIs(ws["bad"]["healthy"], False)
            self.assertIn("500", ws["bad"]["last_error"])
            self.assertIs(ws["py"]["healthy"], True)
            self.assertGreaterEqual(ws["py"]["operations"], 3)
            # The seed's announce has only the name: port 8080 of the sender.
            st, _, body = srv.request("POST", "/worker", {"worker_name": "seed"})
            self.assertEqual((st, body["url"]), (200, "http://127.0.0.1:8080"))
            for bad_req in [{}, {"worker_name": ""}, {"worker_name": "x", "port": 0},
                            {"worker_name": "x", "url": "ftp://h"}, {"worker_name": 5}]:
                st, _, body = srv.request("POST", "/worker", bad_req)
                self.assertEqual(st, 400, bad_req)
        finally:
            stop_all([srv])
            bad.close()
            good.close()

    def test_no_workers_jobs_wait_until_one_joins(self):
        srv = Server()
        m = Master(srv)
        w = None
        try:
            job_id = m.submit_ok("(1+2)*3")
            time.sleep(1.0)
            doc = m.job(job_id)
            self.assertIs(doc["finished"], False)
            self.assertIsNone(doc["answer"])
            w = Server("--join", srv.url)
            self.assertEqual(m.wait_job(job_id, timeout=15)["answer"], 9)
        finally:
            stop_all([srv] + ([w] if w else []))

    def test_a_vanished_worker_is_forgotten(self):
        # A node registered at a port nobody listens on, as a worker scaled
        # away leaves it: it fails its first operation, stays silent, and
        # is dropped from the listing after --forget-after.
        srv = Server("--forget-after", "1")
        m = Master(srv)
        w = None
        try:
            dead = "http://127.0.0.1:%d" % free_port()
            st, _, _ = srv.request("POST", "/worker", {"worker_name": "gone", "url": dead})
            self.assertEqual(st, 200)
            job_id = m.submit_ok("(1+2)*3")
            deadline = time.monotonic() + 15
            while m.workers() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(m.workers(), [])
            self.assertIn("node gone forgotten", srv.wait_log("node gone forgotten"))
            # The job waited for a node, and a new one finishes it.
            self.assertIs(m.job(job_id)["finished"], False)
            w = Server("--join", srv.url, "--name", "fresh")
            self.assertEqual(m.wait_job(job_id, timeout=15)["answer"], 9)
            self.assertEqual([x["worker_name"] for x in m.workers()], ["fresh"])
        finally:
            stop_all([srv] + ([w] if w else []))

    def test_compute_local_only_with_the_flag(self):
        srv = Server("--compute-local")
        m = Master(srv)
        try:
            doc = m.wait_job(m.submit_ok("1+(2*3)/4-5"), timeout=5)
            self.assertEqual(doc["answer"], -2.5)
            doc = m.wait_job(m.submit_ok("2/(1-1)"), timeout=5)
            self.assertIn("division by zero", doc["error"])
        finally:
            stop_all([srv])

    def test_worker_started_before_the_master(self):
        port = free_port()
        w = Server("--join", "http://127.0.0.1:%d" % port, "--name", "early")
        srv = None
        try:
            time.sleep(1.0)  # a few failed announces
            srv = Server("--port", str(port))
            m = Master(srv)
            ws = m.wait_workers(1, timeout=10)
            self.assertEqual(ws[0]["worker_name"], "early")
            self.assertEqual(m.wait_job(m.submit_ok("6*7"))["answer"], 42)
        finally:
            stop_all(([srv] if srv else []) + [w])

    def test_shared_token_protects_the_cluster(self):
        fd, token_file = tempfile.mkstemp()
        os.write(fd, b"s3cret-token\n")
        os.close(fd)
        srv = Server("--auth-token-file", token_file)
        w = None
        try:
            st, _, _ = srv.request("POST", "/submit", {"task": "1+1"})
            self.assertEqual(st, 401)
            # The worker sends the same token on its announces; the master
            # sends it on every operation.
            w = Server("--join", srv.url, "--auth-token-file", token_file)
            auth = {"Authorization": "Bearer s3cret-token"}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                st, _, ws = srv.request("GET", "/workers", headers=auth)
                if st == 200 and ws:
                    break
                time.sleep(0.05)
            self.assertEqual(len(ws), 1)
            r = subprocess.run([CLI_BIN, "expr", "6*7", "--url", srv.url, "--interval", "0.1",
                                "--token-file", token_file],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual((r.returncode, r.stdout), (0, "42\n"), r.stderr)
            r = subprocess.run([CLI_BIN, "expr", "6*7", "--url", srv.url],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1)
        finally:
            stop_all([srv] + ([w] if w else []))
            os.unlink(token_file)

    def test_restarted_master_relearns_its_workers(self):
        port = free_port()
        srv = Server("--port", str(port))
        w = Server("--join", srv.url, "--announce-interval", "0.5")
        srv2 = None
        try:
            Master(srv).wait_workers(1)
            srv.stop()
            srv2 = Server("--port", str(port))
            m = Master(srv2)
            m.wait_workers(1, timeout=10)
            self.assertEqual(m.wait_job(m.submit_ok("2*21"))["answer"], 42)
        finally:
            stop_all(([srv2] if srv2 else []) + [w])


if __name__ == "__main__":
    unittest.main()
