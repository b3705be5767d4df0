"""One program run against many tests (POST /create_task field `tests`),
through the server in its default configuration (sandbox on, cells, warm
Python), then once each with --python-warm off and with --sandbox off,
and across a restart with --data-dir."""

import base64
import os
import shutil
import tempfile
import time
import unittest

from harness import Server, ServerCase, task_doc

PY_DOUBLE = "import sys\nprint(int(sys.stdin.read()) * 2)\n"
PY_ARGS = "import sys\nprint('-'.join(sys.argv[1:]))\n"
SH_UPPER = "#!/bin/sh\ntr a-z A-Z\n"


def body(type_, source, tests, **extra):
    return task_doc(type_, source, tests=tests, **extra)


class TestsCase(ServerCase):

    def refused(self, doc, *words):
        st, _, res = self.srv.request("POST", "/create_task", doc)
        self.assertEqual(st, 400, res)
        for w in words:
            self.assertIn(w, res["error"])
        return res


class Core(object):
    """What every server configuration passes."""

    def test_verdicts_one_failing(self):
        res = self.run_doc(body("python", PY_DOUBLE, [
            {"stdin": "2", "expected_output": "4\n"},
            {"stdin": "3", "expected_output": "7"},
            {"stdin": "5", "expected_output": "10"},
        ]))
        self.assertEqual(res["status"], "ERROR", res)
        r = res["result"]
        self.assertEqual([t["passed"] for t in r["tests"]], [True, False, True])
        self.assertEqual([t["stdout"] for t in r["tests"]], ["4\n", "6\n", "10\n"])
        self.assertEqual((r["passed"], r["failed"]), (2, 1))
        self.assertIn("1 of 3 tests failed", res["error"])
        for t in r["tests"]:
            self.assertEqual(t["exit_code"], 0)
            self.assertFalse(t["skipped"])
            self.assertGreaterEqual(t["run_ms"], 0)
            for key in ("stderr", "signal", "timed_out", "limit", "cpu_ms",
                        "memory_peak_bytes"):
                self.assertIn(key, t)
        # the task's own streams stay empty: the output is per test
        self.assertEqual(r["stdout"], "")

    def test_all_pass_is_success(self):
        res = self.run_doc(body("python", PY_DOUBLE, [
            {"stdin": str(i), "expected_output": str(2 * i)} for i in range(5)]))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual((res["result"]["passed"], res["result"]["failed"]), (5, 0))
        self.assertNotIn("error", res)

    def test_bin_program(self):
        res = self.run_doc(body("bin", SH_UPPER, [
            {"stdin": "abc", "expected_output": "ABC"},
            {"stdin": "x y\n", "expected_output": "X Y\n"},
        ]))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual([t["stdout"] for t in res["result"]["tests"]], ["ABC", "X Y\n"])

    def test_args_per_test(self):
        res = self.run_doc(body("python", PY_ARGS, [
            {"args": ["a", "b"], "expected_output": "a-b"},
            {"args": "x 'y z'", "expected_output": "x-y z"},
            {"expected_output": "t"},  # the task's own arguments
        ], args=["t"]))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual([t["stdout"] for t in res["result"]["tests"]],
                         ["a-b\n", "x-y z\n", "t\n"])


class Default(TestsCase, Core):

    def test_stop_on_failure_skips_the_rest(self):
        res = self.run_doc(body("python", PY_DOUBLE, [
            {"stdin": "1", "expected_output": "2"},
            {"stdin": "1", "expected_output": "3"},
            {"stdin": "1", "expected_output": "2"},
            {"stdin": "1"},
        ], stop_on_failure=True))
        self.assertEqual(res["status"], "ERROR", res)
        tests = res["result"]["tests"]
        self.assertEqual(len(tests), 4)
        self.assertEqual([t["skipped"] for t in tests], [False, False, True, True])
        self.assertEqual([t["passed"] for t in tests], [True, False, None, None])
        self.assertNotIn("stdout", tests[2])
        self.assertEqual((res["result"]["passed"], res["result"]["failed"]), (1, 1))
        self.assertIn("2 skipped", res["error"])

    def test_without_expected_output_no_verdict(self):
        prog = "import sys\nsys.exit(int(sys.stdin.read()))\n"
        res = self.run_doc(body("python", prog, [{"stdin": "0"}, {"stdin": "3"}]))
        tests = res["result"]["tests"]
        self.assertEqual([t["passed"] for t in tests], [None, None])
        self.assertEqual([t["exit_code"] for t in tests], [0, 3])
        # a run that did not exit 0 fails the task
        self.assertEqual(res["status"], "ERROR", res)
        self.assertEqual((res["result"]["passed"], res["result"]["failed"]), (1, 1))

    def test_trailing_whitespace_rule(self):
        prog = "import sys\nsys.stdout.write(sys.stdin.read())\n"
        cases = [
            ("a \nb\t\n\n\n", "a\nb", True),
            ("a\nb", "a  \nb \n\n", True),
            ("a\r\nb\r\n", "a\nb\n", True),
            ("a\n\nb", "a\nb", False),  # an empty line inside counts
            (" a", "a", False),  # leading whitespace counts
            ("a b", "a  b", False),
            ("", "\n\n", True),
        ]
        res = self.run_doc(body("python", prog, [
            {"stdin": out, "expected_output": exp} for out, exp, _ in cases]))
        self.assertEqual([t["passed"] for t in res["result"]["tests"]],
                         [want for _, _, want in cases], res)

    def test_stdin_isolated_per_test(self):
        prog = "import sys\nprint(repr(sys.stdin.read()))\n"
        res = self.run_doc(body("python", prog, [{"stdin": "one"}, {}, {"stdin": ""}],
                                stdin="task"))
        self.assertEqual([t["stdout"] for t in res["result"]["tests"]],
                         ["'one'\n", "'task'\n", "''\n"])

    def test_hundred_tests_and_the_cap(self):
        res = self.run_doc(body("bin", "#!/bin/sh\necho $(( $(cat) + 1 ))\n", [
            {"stdin": str(i), "expected_output": str(i + 1)} for i in range(100)]),
            timeout=300)
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual(len(res["result"]["tests"]), 100)
        self.assertEqual(res["result"]["passed"], 100)
        self.refused(body("bin", SH_UPPER, [{}] * 101),
                     "tests has 101 entries; this server's cap is 100 (--max-tests)")

    def test_bad_entries(self):
        p = lambda tests, **kw: body("python", "pass", tests, **kw)
        self.refused(p([{}, {}, {}, {"args": [1]}]), "tests[3].args")
        self.refused(p([{"stdin": 3}]), "tests[0].stdin", "string")
        self.refused(p([{}, {"expected_output": ["x"]}]), "tests[1].expected_output")
        self.refused(p([{}, "x"]), "tests[1]", "object")
        self.refused(p([{"stdn": "1"}]), "tests[0]", "stdn")
        self.refused(p({"stdin": "1"}), "tests", "list")
        self.refused(p([]), "tests", "empty")
        self.refused(p([{}], stop_on_failure="yes"), "stop_on_failure")
        self.refused(p([{"args": "'open"}]), "tests[0].args")
        raw = '{"type":"python","file":"pass","tests":[{"stdin":"1","stdin":"2"}]}'
        st, _, res = self.srv.request("POST", "/create_task", raw)
        self.assertEqual(st, 400, res)
        self.assertIn("tests[0].stdin", res["error"])
        doc = body("python", "pass", None)
        del doc["tests"]
        self.refused(dict(doc, stop_on_failure=True), "stop_on_failure", "tests")

    def test_stream_sends_the_tests_stdout_in_turn(self):
        # The first test lingers so that the stream opens while the task
        # runs: one opened after the end gets the task's own stdout, empty.
        # 5 s: a loaded machine has taken over 2 s between two requests.
        prog = ("import sys, time\nn = int(sys.stdin.read())\n"
                "if n == 1: time.sleep(5)\nprint(n * 2)\n")
        st, _, res = self.srv.request("POST", "/create_task", body(
            "python", prog, [{"stdin": "1"}, {"stdin": "2"}, {"stdin": "3"}]))
        self.assertEqual(st, 200, res)
        st, _, data = self.srv.request("GET", "/stream?id=" + res["id"], timeout=60)
        self.assertEqual(st, 200)
        self.assertEqual(data, b"2\n4\n6\n")


class Timeout(TestsCase):
    extra = ("--task-timeout", "1")

    def test_timeout_marks_that_test_only(self):
        prog = ("import sys, time\nn = sys.stdin.read()\n"
                "if n == 'slow': time.sleep(30)\nprint(n)\n")
        t0 = time.monotonic()
        res = self.run_doc(body("python", prog, [
            {"stdin": "a", "expected_output": "a"},
            {"stdin": "slow", "expected_output": "slow"},
            {"stdin": "b", "expected_output": "b"},
        ]))
        self.assertLess(time.monotonic() - t0, 25)  # each test has its own second
        tests = res["result"]["tests"]
        self.assertEqual([t["timed_out"] for t in tests], [False, True, False], res)
        self.assertEqual([t["passed"] for t in tests], [True, False, True])
        self.assertEqual(res["status"], "ERROR")
        self.assertTrue(res["result"]["timed_out"])


class WarmOff(TestsCase, Core):
    extra = ("--python-warm", "off")


class PerTask(TestsCase, Core):
    extra = ("--sandbox-cell", "off")


class SandboxOff(TestsCase, Core):
    extra = ("--sandbox", "off")


class Journal(unittest.TestCase):
    """With --data-dir, a waiting task keeps its tests across a restart,
    and a finished one its results."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ts-tests-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_waiting_tests_task_survives_a_restart(self):
        srv = Server("--data-dir", self.data, "--workers", "1", "--shutdown-grace", "0")
        try:
            blocker = srv.create_ok("bin", "sleep 60")
            deadline = time.monotonic() + 30
            while srv.status(blocker)[2]["status"] != "RUNNING":
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            st, _, res = srv.request("POST", "/create_task", body("python", PY_ARGS, [
                {"args": ["a", "b"], "expected_output": "a-b"},
                {"stdin": "ignored", "expected_output": "t"},
                {"args": [], "expected_output": "nope"},
            ], args=["t"], stop_on_failure=True))
            self.assertEqual(st, 200, res)
        finally:
            srv.stop()
        srv = Server("--data-dir", self.data)
        try:
            doc = srv.wait_done(res["id"])
            r = doc["result"]
            self.assertEqual([t["stdout"] for t in r["tests"]], ["a-b\n", "t\n", "\n"], doc)
            self.assertEqual([t["passed"] for t in r["tests"]], [True, True, False])
            self.assertEqual((r["passed"], r["failed"]), (2, 1))
        finally:
            srv.stop()
        # the finished task's results are on disk too
        srv = Server("--data-dir", self.data)
        try:
            st, _, again = srv.status(res["id"])
            self.assertEqual(st, 200)
            self.assertEqual(again["result"]["tests"], doc["result"]["tests"])
            self.assertEqual(again["result"]["passed"], 2)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
