"""Per-task limits: `limits` in POST /create_task, the caps GET /info
lists, result.limit and result.memory_peak_bytes.

The default configuration (sandbox on, cells, warm Python) is the one
tested most: each limit is lowered for one task and seen to end it, then
the next task of the same worker gets the server's limits back. A server
with --python-warm off, one with --sandbox-cell off and one with
--sandbox off check that the limits reach the run there too. Timing
bounds are wide: the machine is shared."""

import base64
import unittest

from harness import Server

MiB = 1 << 20
# The defaults of --task-timeout, --task-cpu, --task-memory, --task-procs,
# --max-output, --task-fsize and --task-disk.
DEFAULT_CAPS = {"timeout": 60, "cpu": 30, "memory": 256 * MiB, "procs": 64,
                "output": MiB, "fsize": 64 * MiB, "disk": 128 * MiB}

SLEEP = "import time\ntime.sleep(30)\n"
SPIN = "while True:\n    pass\n"
HOG = "a = []\nwhile True:\n    a.append(b'x' * (1 << 20))\n"
FORKS = ("import os, time\nfor i in range(20):\n    if os.fork() == 0:\n"
         "        time.sleep(3)\n        os._exit(0)\n")
BIG_PRINT = "print('x' * 100000)\n"
BIG_FILE = "#!/bin/sh\nexec cat /dev/zero > big\n"
DISK_FILLER = ("i = 0\nwhile True:\n    open('f%d' % i, 'wb').write(b'x' * (1 << 20))\n"
               "    i += 1\n")


class LimitsCase(unittest.TestCase):
    """One server per class, started with `args`."""

    args = ()

    @classmethod
    def setUpClass(cls):
        # One worker: the task after a lowered limit runs in the same cell.
        cls.srv = Server("--workers", "1", *cls.args)
        st, _, cls.info = cls.srv.request("GET", "/info")
        assert st == 200, cls.info
        cls.sandbox = cls.info.get("sandbox") or {}

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def post(self, type_, source, limits):
        body = {"type": type_, "file": base64.b64encode(source.encode()).decode()}
        if limits is not None:
            body["limits"] = limits
        return self.srv.request("POST", "/create_task", body)

    def run_task(self, type_, source, limits):
        st, _, body = self.post(type_, source, limits)
        self.assertEqual(st, 200, body)
        return self.srv.wait_done(body["id"], timeout=120)

    def assert_limit(self, doc, limit, sentence):
        self.assertEqual(doc["status"], "ERROR", doc)
        self.assertEqual(doc["result"]["limit"], limit, doc)
        self.assertIn(sentence, doc["error"])

    def need(self, what):
        lim = self.sandbox.get("limits", {})
        have = {"memory cgroup": lim.get("memory_by") == "cgroup",
                "pids cgroup": lim.get("processes_by") == "cgroup",
                "namespaces": self.sandbox.get("namespaces"),
                "cgroup": self.sandbox.get("cgroup") is not None}[what]
        if not have:
            self.skipTest("no %s here: %s" % (what, self.sandbox.get("missing")))


class SandboxedLimits:
    """Each limit lowered for one task, in a sandboxed server (mixed into
    the classes below with their server's options)."""

    def test_timeout(self):
        doc = self.run_task("python", SLEEP, {"timeout": 1})
        self.assert_limit(doc, "timeout", "timed out after 1 s")
        self.assertTrue(doc["result"]["timed_out"])
        self.assertLess(doc["meta"]["run_ms"], 20000)

    def test_cpu(self):
        doc = self.run_task("python", SPIN, {"cpu": 1})
        self.assert_limit(doc, "cpu", "CPU time limit of 1 s exceeded")
        self.assertFalse(doc["result"]["timed_out"])

    def test_memory(self):
        self.need("memory cgroup")
        doc = self.run_task("python", HOG, {"memory": 32 * MiB})
        self.assert_limit(doc, "memory", "memory limit of 32 MiB exceeded")
        self.assertLessEqual(doc["result"]["memory_peak_bytes"], 33 * MiB)
        # The next task of the worker has the server's limit again.
        doc = self.run_task("python", "a = b'x' * (100 << 20)\nprint(len(a))\n", None)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        self.assertIsNone(doc["result"]["limit"])

    def test_procs(self):
        self.need("pids cgroup")
        doc = self.run_task("python", FORKS, {"procs": 4})
        self.assert_limit(doc, "procs", "process limit of 4 processes reached")
        self.assertIn("Resource temporarily unavailable", doc["result"]["stderr"])
        doc = self.run_task("python", FORKS, None)
        self.assertEqual(doc["status"], "SUCCESS", doc)

    def test_output(self):
        doc = self.run_task("python", BIG_PRINT, {"output": 100})
        self.assertEqual(doc["status"], "SUCCESS", doc)
        self.assertIsNone(doc["result"]["limit"])
        self.assertTrue(doc["result"]["stdout_truncated"])
        self.assertEqual(len(doc["result"]["stdout"]), 100)
        self.assertEqual(doc["result"]["stdout_bytes"], 100001)

    def test_fsize(self):
        doc = self.run_task("bin", BIG_FILE, {"fsize": 65536})
        self.assert_limit(doc, "fsize", "file size limit of 64 KiB exceeded")

    def test_disk(self):
        self.need("namespaces")
        doc = self.run_task("python", DISK_FILLER, {"disk": 4 * MiB})
        self.assert_limit(doc, "disk", "disk space limit of 4 MiB reached")
        self.assertIn("No space left on device", doc["result"]["stderr"])

    def test_memory_peak_grows_with_allocation(self):
        self.need("cgroup")
        small = self.run_task("python", "pass\n", None)
        big = self.run_task("python", "a = b'x' * (50 << 20)\n", None)
        for doc in (small, big):
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertIsInstance(doc["result"]["memory_peak_bytes"], int)
            self.assertIsNone(doc["result"]["limit"])
        self.assertGreater(big["result"]["memory_peak_bytes"],
                           small["result"]["memory_peak_bytes"] + 45 * MiB)


class DefaultServer(SandboxedLimits, LimitsCase):
    """The product's configuration: sandbox on, cells, warm Python."""

    def test_caps_in_info(self):
        self.assertEqual(self.info["limit_caps"], DEFAULT_CAPS)

    def test_errors(self):
        cases = [
            ({"memory": 1 << 30}, "limits.memory 1073741824 is above this server's cap of "
                                  "268435456 bytes (--task-memory)"),
            ({"timeout": 61}, "limits.timeout 61 is above this server's cap of 60 seconds "
                              "(--task-timeout)"),
            ({"cpu": -1}, "limits.cpu must be a positive number of seconds, not -1"),
            ({"procs": 0}, "limits.procs must be a positive number of processes, not 0"),
            ({"fsize": "1M"}, "limits.fsize must be a number of bytes"),
            ({"ram": 1}, "limits.ram is not a limit: use timeout, cpu, memory, procs, output, "
                         "fsize or disk"),
            ([1], "field 'limits' must be an object"),
        ]
        for limits, sentence in cases:
            st, _, body = self.post("python", "pass\n", limits)
            self.assertEqual(st, 400, (limits, body))
            self.assertIn(sentence, body["error"])

    def test_no_limits_no_limit(self):
        doc = self.run_task("python", "import sys\nsys.exit(3)\n", {})
        self.assertEqual(doc["status"], "ERROR")
        self.assertIsNone(doc["result"]["limit"])
        self.assertEqual(doc["error"], "exited with code 3")


class ColdPython(LimitsCase):
    """--python-warm off: python tasks start cold in the cell."""

    args = ("--python-warm", "off")

    def test_memory_and_cpu_reach_a_cold_start(self):
        self.assertFalse(self.sandbox["python_warm"]["active"])
        doc = self.run_task("python", SPIN, {"cpu": 1})
        self.assert_limit(doc, "cpu", "CPU time limit of 1 s exceeded")
        self.need("memory cgroup")
        doc = self.run_task("python", HOG, {"memory": 32 * MiB})
        self.assert_limit(doc, "memory", "memory limit of 32 MiB exceeded")


class PerTaskSandbox(LimitsCase):
    """--sandbox-cell off: each task gets a sandbox and a cgroup of its own."""

    args = ("--sandbox-cell", "off")

    def test_limits_reach_a_sandbox_of_its_own(self):
        self.assertEqual(self.sandbox["mode"], "per_task")
        doc = self.run_task("bin", BIG_FILE, {"fsize": 65536})
        self.assert_limit(doc, "fsize", "file size limit of 64 KiB exceeded")
        self.need("memory cgroup")
        doc = self.run_task("python", HOG, {"memory": 32 * MiB})
        self.assert_limit(doc, "memory", "memory limit of 32 MiB exceeded")
        self.assertGreater(doc["result"]["memory_peak_bytes"], 16 * MiB)


class NoSandbox(LimitsCase):
    """--sandbox off: only timeout and output apply, and only they are offered."""

    args = ("--sandbox", "off")

    def test_timeout_and_output(self):
        self.assertEqual(self.info["limit_caps"], {"timeout": 60, "output": MiB})
        doc = self.run_task("python", SLEEP, {"timeout": 1})
        self.assert_limit(doc, "timeout", "timed out after 1 s")
        self.assertIsNone(doc["result"]["memory_peak_bytes"])
        doc = self.run_task("python", BIG_PRINT, {"output": 10})
        self.assertEqual(doc["status"], "SUCCESS", doc)
        self.assertEqual(doc["result"]["stdout"], "x" * 10)

    def test_sandbox_limits_refused(self):
        st, _, body = self.post("python", "pass\n", {"memory": 32 * MiB})
        self.assertEqual(st, 400, body)
        self.assertIn("limits.memory cannot be applied: this server runs tasks with --sandbox off",
                      body["error"])


if __name__ == "__main__":
    unittest.main()
