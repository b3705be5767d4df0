"""End-to-end tests of admission control, the calculation API and
`tasksolver-cli batch` against tasksolver standing in for the seed's
limited-capacity server."""

import collections
import decimal
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BUILD_DIR, CLI_BIN, Server

CALC_SLEEP = os.path.abspath(os.path.join(BUILD_DIR, "bench", "calc_sleep"))


def calc(lo_ms, hi_ms, log=None):
    """--calc-command running calc_sleep (prints twice its input)."""
    cmd = "%s %d %d" % (CALC_SLEEP, lo_ms, hi_ms)
    return cmd + (" " + log if log else "")


def seed_server(*extra, calc_cmd=None, workers=5):
    """The seed's server: `workers` at once, nothing waits, 403 beyond,
    sandboxed as by default (the stand-in calculation in the build tree
    runs wherever the tree is: see test_reach.py)."""
    return Server("--workers", str(workers), "--max-queue", "0", "--reject-status", "403",
                  "--calc-command", calc_cmd or calc(20, 60), "--log-level", "warn", *extra)


def twice(text):
    return str(decimal.Decimal(text) * 2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_lines(path):
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def read_pairs(path):
    with open(path) as f:
        return [tuple(line.rstrip("\n").split(" ", 1)) for line in f]


# Servers shared by the tests that do not need their own (each start and
# stop costs seconds): the seed's server with quick calculations, one whose
# calculation fails (exit 3 with "boom" on stderr; "not-a-number" for the
# input 2), and a plain tasksolver without the calculation API.
SEED = FAILING = PLAIN = None
FAILING_CALC = ("sh -c 'case $1 in 2) echo not-a-number;; *) echo boom >&2; exit 3;; esac' "
                "calc")


def setUpModule():
    global SEED, FAILING, PLAIN
    SEED = seed_server(calc_cmd=calc(1, 20))
    FAILING = seed_server(calc_cmd=FAILING_CALC, workers=2)
    PLAIN = Server("--workers", "2", "--log-level", "warn")


def tearDownModule():
    for srv in (SEED, FAILING, PLAIN):
        if srv:
            srv.stop()


class Batch:
    """A running tasksolver-cli batch."""

    def __init__(self, url, *args, stdin=None):
        self.proc = subprocess.Popen([CLI_BIN, "batch", *args, "--url", url],
                                     stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def wait(self, timeout=60):
        if self.proc.stdin and self.proc.stdin.closed:
            self.proc.stdin = None  # communicate() would flush it
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def run_batch(url, *args, timeout=60):
    return Batch(url, *args).wait(timeout)


class AdmissionControl(unittest.TestCase):

    def test_sixth_concurrent_calculation_gets_403(self):
        srv = seed_server(calc_cmd=calc(1500, 1500))
        try:
            ids = []
            for n in range(5):
                st, _, doc = srv.request("POST", "/", {"data": n})
                self.assertEqual(st, 200, doc)
                ids.append(doc["request_id"])
            st, hdrs, doc = srv.request("POST", "/", {"data": 5})
            self.assertEqual(st, 403)
            self.assertIn("capacity", doc["error"])
            self.assertNotIn("retry-after", hdrs)
            # The five workers may still be waking up to take their tasks.
            deadline = time.monotonic() + 5
            while True:
                st, _, count = srv.request("GET", "/get_task_count")
                if count["running"] == 5 or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            self.assertEqual((count["running"], count["tasks"], count["max_queue"]), (5, 0, 0))
            deadline = time.monotonic() + 20
            results = {}
            while len(results) < 5 and time.monotonic() < deadline:
                for n, rid in enumerate(ids):
                    st, _, doc = srv.request("GET", "/?request_id=" + rid)
                    if st == 200:
                        results[n] = doc["result"]
                time.sleep(0.1)
            self.assertEqual(results, {n: 2 * n for n in range(5)})
            # A worker is free again once it has cleaned up after its result
            # was published: a moment later, not necessarily at once.
            deadline = time.monotonic() + 5
            while True:
                st, _, doc = srv.request("POST", "/", {"data": 5})
                if st != 403 or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            self.assertEqual(st, 200, doc)
        finally:
            srv.stop()

    def test_full_queue_answers_429_with_retry_after(self):
        srv = Server("--workers", "1", "--max-queue", "1", "--log-level", "warn")
        try:
            # The blocker must hold the worker for the whole test: a loaded
            # machine once took over 2 s (a blocker of sleep 2) to get here,
            # between the creates and the count below. And it must be
            # running, not waiting, when the next task takes the queue's
            # one place.
            blocker = srv.create_ok("bin", "sleep 60")
            srv.wait_status(blocker, "RUNNING")
            srv.create_ok("bin", "true")
            st, body = srv.create("bin", "true")
            self.assertEqual(st, 429)
            self.assertIn("capacity", body["error"])
            st, hdrs, _ = srv.request("POST", "/create_task",
                                      {"type": "bin", "file": "dHJ1ZQ=="})
            self.assertEqual((st, hdrs.get("retry-after")), (429, "1"))
            doc = srv.request("GET", "/get_task_count")[2]
            self.assertEqual((doc["running"], doc["tasks"], doc["max_queue"]), (1, 1, 1))
            # Not left to the shutdown's 10 s grace period.
            srv.request("POST", "/cancel_task?id=" + blocker)
        finally:
            srv.stop()


class CalcApi(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = seed_server(calc_cmd=calc(300, 300), workers=3)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def raw(self, method, path, body=None):
        """(status, body bytes): the exact text, which json.loads would round."""
        conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=10)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def wait_result(self, rid, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, body = self.raw("GET", "/?request_id=" + rid)
            if st != 400:
                return st, body
            time.sleep(0.05)
        self.fail("no result for " + rid)

    def test_not_ready_then_result(self):
        st, _, doc = self.srv.request("POST", "/", {"data": 21})
        self.assertEqual(st, 200, doc)
        rid = doc["request_id"]
        st, _, doc = self.srv.request("GET", "/?request_id=" + rid)
        self.assertEqual(st, 400)
        self.assertIn(doc["status"], ("WAIT", "RUNNING"))
        self.assertIn("not available yet", doc["error"])
        self.assertEqual(self.wait_result(rid), (200, b'{"result":42}\n'))

    def test_numbers_stay_exact(self):
        cases = (("123456789012345678901234567890", b"246913578024691357802469135780"),
                 ("0.30000000000000004", b"0.60000000000000008"), ("-7", b"-14"),
                 ("1e3", b"2e3"), ('"17"', b"34"))
        for text, want in cases:
            st, body = self.raw("POST", "/", '{"data": %s}' % text)
            self.assertEqual(st, 200, body)
            rid = json.loads(body)["request_id"]
            self.assertEqual(self.wait_result(rid), (200, b'{"result":' + want + b'}\n'))

    def test_errors_say_why(self):
        cases = [("/?request_id=nope", 400, "NOTEXIST"), ("/", 400, None)]
        for path, code, status in cases:
            st, _, doc = self.srv.request("GET", path)
            self.assertEqual(st, code)
            self.assertIn("error", doc)
            self.assertEqual(doc.get("status"), status)
        for body in ('{"data": true}', '{"data": "1.2.3"}', '{"x": 1}', "[1]", "{", ""):
            st, _, doc = self.srv.request("POST", "/", body)
            self.assertEqual(st, 400, body)
            self.assertIn("error", doc)
        st, hdrs, doc = self.srv.request("PUT", "/")
        self.assertEqual((st, hdrs["allow"]), (405, "GET, POST"))

    def test_failing_and_non_numeric_calculations(self):
        # With the sandbox on a missing program stops the start-up (see
        # test_reach.py); without it, each calculation fails.
        nowhere = seed_server("--sandbox", "off", calc_cmd="/no/such/program", workers=1)
        cases = ((FAILING, 1, "exited with code 3"), (FAILING, 2, "not a number"),
                 (nowhere, 1, "could not"))
        try:
            for srv, data, why in cases:
                st, _, doc = srv.request("POST", "/", {"data": data})
                rid = doc["request_id"]
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    st, _, doc = srv.request("GET", "/?request_id=" + rid)
                    if st != 400:
                        break
                    time.sleep(0.05)
                self.assertEqual(st, 500, doc)
                self.assertEqual(doc["status"], "ERROR")
                self.assertIn(why, doc["error"])
                if data == 1 and srv is FAILING:
                    self.assertIn("boom", doc["stderr"])
        finally:
            nowhere.stop()

    def test_root_is_404_without_calc_command(self):
        st, _, doc = PLAIN.request("POST", "/", {"data": 1})
        self.assertEqual(st, 404)
        self.assertIn("no route", doc["error"])


class BatchClient(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ts-batch-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_input(self, lines, name="in.txt"):
        with open(self.path(name), "w") as f:
            f.write("".join(l + "\n" for l in lines))
        return self.path(name)

    def assert_exactly_once(self, out_path, inputs):
        pairs = read_pairs(out_path)
        self.assertEqual(collections.Counter(p[0] for p in pairs), collections.Counter(inputs))
        for inp, res in pairs:
            self.assertEqual(decimal.Decimal(res), decimal.Decimal(twice(inp)), inp)

    def test_every_input_once_with_its_result_and_concurrency_kept(self):
        log = self.path("calc.log")
        # The calculation logs its runs to a file of the test's, which the
        # sandbox rightly keeps tasks from writing.
        # Under a sanitizer each task start costs tens of milliseconds more,
        # so the calculations must last longer for three of them to overlap
        # (100-200 ms still missed it on a loaded machine under TSan).
        lo, hi = (300, 600) if os.environ.get("TS_SANITIZE") else (5, 30)
        srv = seed_server("--sandbox", "off", calc_cmd=calc(lo, hi, log), workers=8)
        try:
            inputs = [str(n) for n in range(1, 151)] + ["7", "-3", "0.1", "98765432109876543210"]
            rc, out, err = run_batch(srv.url, self.write_input(inputs), "-o", self.path("out"),
                                     "--concurrency", "3")
            self.assertEqual(rc, 0, err)
            self.assert_exactly_once(self.path("out"), inputs)
            self.assertIn("154 inputs: 154 results, 0 errors", err)
            # No more than 3 calculations ever overlapped, and 3 did.
            events = []
            with open(log) as f:
                for line in f:
                    start, end, _ = line.split()
                    events += [(int(start), 1), (int(end), -1)]
            depth = peak = 0
            for _, d in sorted(events, key=lambda e: (e[0], e[1])):
                depth += d
                peak = max(peak, depth)
            self.assertEqual(peak, 3)
        finally:
            srv.stop()

    def test_against_the_seed_server_refusals_are_retried(self):
        inputs = [str(n) for n in range(250)]
        rc, out, err = run_batch(SEED.url, self.write_input(inputs), "--concurrency", "7",
                                 "--format", "tsv")
        self.assertEqual(rc, 0, err)
        got = collections.Counter(l.split("\t")[0] for l in out.splitlines())
        self.assertEqual(got, collections.Counter(inputs))
        refused = int(re.search(r"403: (\d+)", err).group(1))
        self.assertGreater(refused, 0)  # 7 slots against 5 workers

    def test_output_flows_before_a_slow_pipe_closes(self):
        b = Batch(SEED.url, "-", "-o", self.path("out"), stdin=subprocess.PIPE)
        b.proc.stdin.write("1\n2\n3\n")
        b.proc.stdin.flush()
        deadline = time.monotonic() + 15
        lines = []
        while len(lines) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            if os.path.exists(self.path("out")):
                with open(self.path("out")) as f:
                    lines = f.read().splitlines()
        self.assertEqual(sorted(lines), ["1 2", "2 4", "3 6"])
        self.assertIsNone(b.proc.poll())  # still waiting for more input
        b.proc.stdin.write("4\n5")  # the last line has no newline
        b.proc.stdin.close()
        rc, _, err = b.wait()
        self.assertEqual(rc, 0, err)
        self.assert_exactly_once(self.path("out"), ["1", "2", "3", "4", "5"])

    def test_malformed_lines_are_reported_and_counted(self):
        inp = self.write_input(["12", "abc", "", "  7  ", "1.2.3", "-3", "0x10", "\t"])
        rc, out, err = run_batch(SEED.url, inp)
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"in.txt:2: not a number: 'abc'")
        self.assertRegex(err, r"in.txt:5: not a number: '1.2.3'")
        self.assertRegex(err, r"in.txt:7: not a number: '0x10'")
        self.assertIn("3 malformed lines", err)
        self.assertEqual(sorted(out.splitlines()), ["-3 -6", "12 24", "7 14"])

    def test_failed_calculations_are_written_as_errors(self):
        rc, out, err = run_batch(FAILING.url, self.write_input(["1", "2"]), "--retries", "1",
                                 "--format", "jsonl")
        self.assertEqual(rc, 1)
        docs = sorted((json.loads(l) for l in out.splitlines()), key=lambda d: d["input"])
        self.assertEqual([d["input"] for d in docs], [1, 2])
        self.assertIn("exited with code 3", docs[0]["error"])
        self.assertIn("0 results, 2 errors", err)
        self.assertIn("2 retries", err)

    def test_a_server_failing_every_calculation_stops_the_run(self):
        inputs = [str(n) for n in range(1, 201)]
        inp, out = self.write_input(inputs), self.path("out")
        srv = seed_server(calc_cmd="/bin/false")
        try:
            t0 = time.monotonic()
            rc, _, err = run_batch(srv.url, inp, "-o", out)
            took = time.monotonic() - t0
            self.assertEqual(rc, 1, err)
            self.assertIn("stopped: the first 20 inputs all failed with the same error", err)
            self.assertIn("calculation failed: exited with code 1", err)
            self.assertIn("--resume", err)
            self.assertLess(took, 30)
            # Nothing written, and far from 200 inputs tried 4 times each.
            self.assertEqual(count_lines(out), 0)
            tried = srv.request("GET", "/get_task_count")[2]["total"]
            self.assertLessEqual(tried, (20 + 5) * 4, err)
            # Without the watch every input gets its error line.
            rc, _, err = run_batch(srv.url, self.write_input(inputs[:30], "few.txt"),
                                   "-o", self.path("few"), "--stop-after", "0", "--retries", "0")
            self.assertEqual(rc, 1, err)
            self.assertEqual(count_lines(self.path("few")), 30)
        finally:
            srv.stop()
        # Once the server is fixed, --resume does every input.
        srv = seed_server(calc_cmd=calc(1, 5))
        try:
            rc, _, err = run_batch(srv.url, inp, "-o", out, "--resume")
            self.assertEqual(rc, 0, err)
            self.assert_exactly_once(out, inputs)
        finally:
            srv.stop()

    def test_server_restarted_mid_run_loses_no_input(self):
        port = free_port()
        work = self.path("work")
        os.mkdir(work)
        args = ("--port", str(port), "--work-dir", work)
        srv = seed_server(*args, calc_cmd=calc(10, 40))
        inputs = [str(n) for n in range(400)]
        b = Batch(srv.url, self.write_input(inputs), "-o", self.path("out"),
                  "--max-backoff", "0.2")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and count_lines(self.path("out")) < 60:
                time.sleep(0.02)
            srv.stop(sig=signal.SIGKILL)
            time.sleep(0.5)
            srv = seed_server(*args, calc_cmd=calc(10, 40))
            rc, _, err = b.wait(90)
            self.assertEqual(rc, 0, err)
            self.assert_exactly_once(self.path("out"), inputs)
            stats = re.search(r"(\d+) retries.*; (\d+) connection errors", err)
            self.assertGreater(int(stats.group(1)) + int(stats.group(2)), 0, err)
        finally:
            if b.proc.poll() is None:
                b.proc.kill()
                b.wait()
            srv.stop()

    def test_resume_redoes_nothing(self):
        inputs = [str(n) for n in range(60)] + ["7"]  # 7 twice: both get a line
        inp, out = self.write_input(inputs), self.path("out")
        rc, _, err = run_batch(SEED.url, inp, "-o", out)
        self.assertEqual(rc, 0, err)
        total = SEED.request("GET", "/get_task_count")[2]["total"]
        with open(out) as f:
            first = f.read()

        rc, _, err = run_batch(SEED.url, inp, "-o", out, "--resume")
        self.assertEqual(rc, 0, err)
        self.assertIn("61 skipped", err)
        self.assertEqual(SEED.request("GET", "/get_task_count")[2]["total"], total)
        with open(out) as f:
            self.assertEqual(f.read(), first)

        # A killed run: 20 lines and half of the next one.
        lines = first.splitlines(True)
        with open(out, "w") as f:
            f.write("".join(lines[:20]) + lines[20][:2])
        rc, _, err = run_batch(SEED.url, inp, "-o", out, "--resume")
        self.assertEqual(rc, 0, err)
        self.assertIn("41 inputs: 41 results", err)
        self.assertEqual(SEED.request("GET", "/get_task_count")[2]["total"], total + 41)
        self.assert_exactly_once(out, inputs)

    def test_tasksolver_api(self):
        prog = self.path("triple.py")
        with open(prog, "w") as f:
            f.write("import sys\nprint(int(sys.argv[1]) * 3)\n")
        rc, out, err = run_batch(PLAIN.url, self.write_input(["1", "5", "-4"]),
                                 "--api", "tasksolver", "--program", prog, "--format", "csv")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(out.splitlines()), ["-4,-12", "1,3", "5,15"])

    def test_bearer_token_for_both_apis(self):
        token = self.path("token")
        with open(token, "w") as f:
            f.write("  s3cret-batch\n")
        prog = self.path("triple.py")
        with open(prog, "w") as f:
            f.write("import sys\nprint(int(sys.argv[1]) * 3)\n")
        srv = seed_server("--auth-token-file", token, calc_cmd=calc(1, 5))
        try:
            inp = self.write_input(["2", "7"])
            tasksolver = ("--api", "tasksolver", "--program", prog)
            for api, want in (((), ["2 4", "7 14"]), (tasksolver, ["2 6", "7 21"])):
                rc, _, err = run_batch(srv.url, inp, *api)
                self.assertEqual(rc, 1)
                self.assertIn("401", err)
                self.assertIn("--token-file", err)
                rc, out, err = run_batch(srv.url, inp, "--token-file", token, *api)
                self.assertEqual(rc, 0, err)
                self.assertEqual(sorted(out.splitlines()), want)
            wrong = self.path("wrong")
            with open(wrong, "w") as f:
                f.write("s3cret-batcH\n")
            rc, _, err = run_batch(srv.url, inp, "--token-file", wrong)
            self.assertEqual(rc, 1)
            self.assertIn("does not accept the token", err)
            rc, _, err = run_batch(srv.url, inp, "--token-file", self.path("missing"))
            self.assertEqual(rc, 1)
            self.assertIn("No such file", err)
        finally:
            srv.stop()

    def test_wrong_server_stops_the_run(self):
        rc, _, err = run_batch(PLAIN.url, self.write_input(["1"]))
        self.assertEqual(rc, 1)
        self.assertIn("stopped", err)
        self.assertIn("404", err)

    def test_usage_errors(self):
        for args in ([], ["in"], ["in", "--url", "ftp://x"], ["in", "--url", "http://x",
                                                               "--resume"],
                     ["in", "--url", "http://x", "--api", "tasksolver"],
                     ["in", "--url", "http://x", "--concurrency", "0"]):
            p = subprocess.run([CLI_BIN, "batch", *args], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("tasksolver-cli batch:", p.stderr)


if __name__ == "__main__":
    unittest.main()
