"""End-to-end tests of `tasksolver-cli gather` against the fake_worker test double.

Each test runs the real command on a random high port range (gather skips
busy ports), with every worker logging the values it sent to a file of the
test's own; the log path is also in every worker's command line, which is
how the tests find leftover worker processes.
"""
import collections
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BUILD_DIR, CLI_BIN, pids_with_arg

WORKER = os.path.join(BUILD_DIR, "tests", "fake_worker")


def ephemeral_low():
    """Lowest port the kernel hands out for outgoing connections: the tests
    stay below it so that no client socket holds a port a worker needs."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return max(int(f.read().split()[0]), 22000)
    except (OSError, ValueError, IndexError):
        return 32768


def worker_pids(log):
    """Pids of live fake_worker processes started with this log file (not
    gather itself, which has it among its --worker-arg)."""
    return pids_with_arg(log, program="fake_worker")


class GatherTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ts-gather-")
        self.log = os.path.join(self.tmp.name, "sent.log")
        self.out = os.path.join(self.tmp.name, "samples.txt")
        self.base = random.randrange(20000, ephemeral_low() - 1000)

    def tearDown(self):
        for pid in worker_pids(self.log):
            os.kill(pid, signal.SIGKILL)
        self.tmp.cleanup()

    def args(self, *extra, worker_args=(), workers=16, samples=150):
        a = [CLI_BIN, "gather", "--worker", WORKER, "--workers", str(workers), "--samples",
             str(samples), "--base-port", str(self.base), "--json", "-o", self.out]
        for w in ("-log", self.log) + tuple(worker_args):
            a += ["--worker-arg", w]
        return a + list(extra)

    def gather(self, *extra, timeout=60, **kw):
        t0 = time.monotonic()
        p = subprocess.run(self.args(*extra, **kw), capture_output=True, text=True,
                           timeout=timeout)
        self.wall = time.monotonic() - t0
        self.stderr = p.stderr
        rep = json.loads(p.stdout) if p.stdout.strip() else None
        return p.returncode, rep

    def samples(self):
        with open(self.out) as f:
            return [int(line) for line in f]

    def sent(self):
        """Multiset of every value the workers wrote to a stream."""
        with open(self.log) as f:
            return collections.Counter(int(line.split()[2]) for line in f)

    def assert_samples_real(self, rep):
        got = self.samples()
        self.assertEqual(len(got), rep["samples"])
        sent = self.sent()
        extra = collections.Counter(got) - sent
        self.assertFalse(extra, "samples no worker sent: %s" % dict(extra))
        self.assertTrue(all(0 <= v <= 99 for v in got))

    def assert_no_workers_left(self):
        # gather reaps its workers before it exits: nothing may be left.
        self.assertEqual(worker_pids(self.log), [])

    def assert_consistent(self, rep):
        self.assertEqual(sum(w["numbers"] for w in rep["workers"]), rep["numbers"])
        self.assertEqual(sum(w["restarts"] for w in rep["workers"]), rep["restarts"])
        self.assertGreaterEqual(rep["numbers"], rep["samples"])

    # -- the goals of the issue --------------------------------------------

    def gather_within(self, limit, **kw):
        """Runs gather until one run beats `limit` seconds (two tries: the
        goal has under a second of slack and the machine is shared); each
        run must be correct, only the timing gets a second chance."""
        times = []
        for _ in range(2):
            rc, rep = self.gather(**kw)
            self.assertEqual(rc, 0, self.stderr)
            self.assertEqual(rep["samples"], 150)
            self.assert_no_workers_left()
            times.append(rep["time_s"])
            # Sanitizer builds check memory, not speed: 16 instrumented
            # workers start several times slower.
            if rep["time_s"] < limit or os.environ.get("TS_SANITIZE"):
                return rc, rep
        self.fail("150 samples took %s s, limit %s s" % (times, limit))

    def test_150_samples_from_16_workers_within_10_s(self):
        rc, rep = self.gather_within(10.0)
        self.assertTrue(rep["reached"])
        self.assertLess(self.wall, 12.0)
        self.assertEqual(len(rep["workers"]), 16)
        self.assertEqual(sorted(w["id"] for w in rep["workers"]), list(range(1, 17)))
        # All 16 worked in parallel: 150 in < 10 s is impossible otherwise.
        self.assertTrue(all(w["numbers"] >= 8 for w in rep["workers"]), rep["workers"])
        self.assertEqual(rep["restarts"], 0)
        self.assert_consistent(rep)
        self.assert_samples_real(rep)
        self.assert_no_workers_left()

    def test_crashing_workers_are_replaced(self):
        rc, rep = self.gather(worker_args=("-crash-prob", "0.1"))
        self.assertEqual(rc, 0, self.stderr)
        self.assertEqual(rep["samples"], 150)
        self.assertGreater(rep["restarts"], 0)
        self.assertLess(rep["time_s"], 12.0)
        self.assert_consistent(rep)
        self.assert_samples_real(rep)
        self.assert_no_workers_left()

    def test_workers_that_mostly_crash_are_never_given_up(self):
        # Most processes die before their first number; each answered its
        # request, so each is a crash to replace, not a failed start.
        # Crashes before the 40th number follow a negative binomial law
        # (at least 93 expected, sd 18): 20 or fewer happen less than once
        # in 10^8 runs; 60 runs gave 70 to 208. With 20 samples and the
        # same bound, about 1 run in 160 failed.
        rc, rep = self.gather(workers=4, samples=40,
                              worker_args=("-crash-prob", "0.7", "-interval", "100"))
        self.assertEqual(rc, 0, self.stderr)
        self.assertEqual(rep["samples"], 40)
        self.assertGreater(rep["restarts"], 20)
        self.assertFalse(any(w["gave_up"] for w in rep["workers"]))
        self.assert_samples_real(rep)
        self.assert_no_workers_left()

    def test_first_number_after_a_full_interval(self):
        # If the real worker waits a second before its first number, 150
        # samples need 10 rounds: the best possible is just over 10 s.
        self.gather_within(10.8, worker_args=("-first-delay", "1000"))

    def test_sigterm_mid_run_stops_every_worker(self):
        self.sigterm_mid_run(signal.SIGTERM)

    def test_sigint_mid_run_stops_every_worker(self):
        self.sigterm_mid_run(signal.SIGINT)

    def sigterm_mid_run(self, sig):
        p = subprocess.Popen(self.args(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            deadline = time.monotonic() + 10
            while len(worker_pids(self.log)) < 16 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(len(worker_pids(self.log)), 16)
            time.sleep(1.0)
            p.send_signal(sig)
            out, err = p.communicate(timeout=5)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 128 + sig, err)
        rep = json.loads(out)
        self.assertEqual(rep["signal"], signal.Signals(sig).name[3:])
        self.assertFalse(rep["reached"])
        self.assertLess(rep["samples"], 150)
        self.assert_samples_real(rep)
        self.assert_no_workers_left()

    # -- how workers fail ---------------------------------------------------

    def test_stalled_workers_are_replaced(self):
        rc, rep = self.gather("--stall-timeout", "0.5", workers=4, samples=24,
                              worker_args=("-interval", "100", "-stall-after", "3"))
        self.assertEqual(rc, 0, self.stderr)
        self.assertEqual(rep["samples"], 24)
        # Each process gives 3 numbers, then goes silent.
        self.assertGreaterEqual(rep["restarts"], 4)
        self.assertIn("no data", self.stderr)
        self.assert_samples_real(rep)
        self.assert_no_workers_left()

    def test_finished_stream_is_requested_again(self):
        rc, rep = self.gather("--per-request", "2", workers=2, samples=20,
                              worker_args=("-interval", "50"))
        self.assertEqual(rc, 0, self.stderr)
        self.assertEqual(rep["restarts"], 0)
        for w in rep["workers"]:
            self.assertGreaterEqual(w["requests"], 5)
        self.assert_samples_real(rep)

    def test_flaky_worker_garbage_and_split_lines(self):
        rc, rep = self.gather(workers=8, samples=60,
                              worker_args=("-flaky", "-interval", "100", "-crash-prob", "0.05"))
        self.assertEqual(rc, 0, self.stderr)
        self.assertEqual(rep["samples"], 60)
        self.assertGreater(rep["malformed"], 0)
        self.assert_consistent(rep)
        self.assert_samples_real(rep)
        self.assert_no_workers_left()

    def test_slow_start_is_waited_for(self):
        rc, rep = self.gather(workers=4, samples=8, worker_args=("-startup-delay", "1500"))
        self.assertEqual(rc, 0, self.stderr)
        self.assertGreaterEqual(rep["first_sample_s"], 1.5)
        self.assertLess(rep["first_sample_s"], 4.0)
        self.assertEqual(rep["restarts"], 0)

    def test_busy_answer_is_retried(self):
        # Long timeouts: on a loaded machine a slow start must not pass for
        # a restart caused by the 429s.
        rc, rep = self.gather("--ready-timeout", "30", "--stall-timeout", "30", workers=3,
                              samples=6, worker_args=("-busy-first", "2"))
        self.assertEqual(rc, 0, self.stderr)
        self.assertEqual(rep["restarts"], 0)
        self.assertIn("429", self.stderr)

    def test_busy_ports_are_skipped(self):
        held = []
        for port in (self.base, self.base + 2):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
                s.listen()
            except OSError:
                s.close()
                continue
            held.append(s)
        busy = [s.getsockname()[1] for s in held]
        self.assertTrue(busy)
        try:
            rc, rep = self.gather(workers=3, samples=6)
        finally:
            for s in held:
                s.close()
        self.assertEqual(rc, 0, self.stderr)
        ports = [w["port"] for w in rep["workers"]]
        for port in busy:
            self.assertNotIn(port, ports)
        self.assertEqual(len(set(ports)), 3)
        self.assert_samples_real(rep)

    def test_foreign_answer_is_not_counted(self):
        rc, rep = self.gather(workers=2, samples=4, worker_args=("-claim-id", "99"))
        self.assertEqual(rc, 1)
        self.assertEqual(rep["samples"], 0)
        self.assertEqual(rep["numbers"], 0)
        self.assertTrue(all(w["gave_up"] for w in rep["workers"]))
        self.assertIn("answers", rep["error"])
        self.assert_no_workers_left()

    def test_worker_that_cannot_run(self):
        p = subprocess.run([CLI_BIN, "gather", "--worker", os.path.join(self.tmp.name, "missing"),
                            "--base-port", str(self.base)], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("No such file", p.stderr)

    def test_bad_usage(self):
        p = subprocess.run([CLI_BIN, "gather", "--workers", "0", "--worker", WORKER],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([CLI_BIN, "gather"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--worker", p.stderr)


if __name__ == "__main__":
    unittest.main()
