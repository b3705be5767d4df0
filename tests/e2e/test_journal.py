"""End-to-end tests of --data-dir: what a user sees across restarts, kill -9
included, and how bad data directories are reported."""

import http.client
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from harness import SERVER_BIN, Server

# A task that is slow on its first run and quick on the next: the marker
# file says whether it ran before; "runs" gets one line (its pid) per run.
ONCE_SLOW = """#!/bin/sh
echo $$ >> "%(dir)s/runs"
if [ -e "%(dir)s/ran" ]; then echo second; exit 0; fi
touch "%(dir)s/ran"
sleep 60
"""


class JournalCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_journal.")
        self.data = os.path.join(self.tmp, "data")
        self.servers = []

    def tearDown(self):
        for srv in self.servers:
            srv.stop(signal.SIGKILL, check=False)
        # A killed server leaves its running programs behind; each one
        # leads its own process group.
        for pid in self.runs():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if b"/program" in f.read():
                        os.killpg(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def runs(self):
        """Pids of the ONCE_SLOW runs so far."""
        try:
            with open(os.path.join(self.tmp, "runs")) as f:
                return [int(line) for line in f]
        except FileNotFoundError:
            return []

    def start(self, *args):
        # The tasks report their runs through the host's file system, which
        # the sandbox rightly keeps them from writing: these cases are about
        # the journal, so they run without it.
        srv = Server("--data-dir", self.data, "--sandbox", "off", *args)
        self.servers.append(srv)
        return srv

    def stop(self, srv, sig=signal.SIGTERM):
        srv.stop(sig)
        self.servers.remove(srv)

    def wait_runs(self, n, timeout=30):
        """Waits until ONCE_SLOW has really started n times (RUNNING in the
        store comes a moment before the program runs)."""
        deadline = time.monotonic() + timeout
        while len(self.runs()) < n:
            if time.monotonic() > deadline:
                self.fail("the program did not start %d times" % n)
            time.sleep(0.02)

    def wait_start_recorded(self, srv):
        """Returns once the journal holds the start of the task that runs.
        With the default --on-restart requeue a worker does not wait for
        that commit before the program runs (a crash within it re-runs the
        task without counting the attempt), so a loaded machine can kill
        the server in between. One writer commits in queue order, and a
        create is answered once committed: a create's 200 now says the
        start queued before it is on disk too."""
        srv.create_ok("bin", "true")

    def rows(self, where=""):
        """Rows of the journal (the server must be stopped)."""
        db = sqlite3.connect(os.path.join(self.data, "tasks.db"))
        try:
            return db.execute("SELECT count(*) FROM tasks " + where).fetchone()[0]
        finally:
            db.close()


class Restart(JournalCase):
    def test_finished_tasks_keep_status_timestamps_and_output(self):
        srv = self.start("--workers", "2")
        ids = [srv.create_ok("bin", "echo out; echo err >&2"),
               srv.create_ok("bin", "printf 'no newline'; exit 3"),
               srv.create_ok("python", "import sys\nprint(sys.argv[1:])", args=["a b", "", "c"]),
               srv.create_ok("bin", "kill -9 $$")]
        before = {i: srv.wait_done(i) for i in ids}
        self.assertEqual(before[ids[0]]["attempts"], 1)
        self.assertEqual(before[ids[2]]["result"]["stdout"], "['a b', '', 'c']\n")
        self.stop(srv)

        srv = self.start("--workers", "2")
        for i in ids:
            st, _, doc = srv.status(i)
            self.assertEqual(st, 200, doc)
            self.assertEqual(doc, before[i])
        st, _, count = srv.request("GET", "/get_task_count")
        self.assertEqual(count["finished"], 4)
        self.stop(srv)

        # The same after kill -9.
        srv = self.start()
        self.stop(srv, signal.SIGKILL)
        srv = self.start()
        self.assertEqual([srv.status(i)[2] for i in ids], [before[i] for i in ids])

    def test_waiting_tasks_run_after_kill(self):
        srv = self.start("--workers", "1")
        srv.create_ok("bin", ONCE_SLOW % {"dir": self.tmp})
        self.wait_runs(1)
        waiting = [srv.create_ok("python", "import sys\nprint('w', *sys.argv[1:])",
                                 args=[str(n), "x y"]) for n in range(3)]
        self.assertEqual(srv.status(waiting[2])[2]["status"], "WAIT")
        self.stop(srv, signal.SIGKILL)

        srv = self.start("--workers", "1")
        for n, i in enumerate(waiting):
            doc = srv.wait_done(i)
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"], "w %d x y\n" % n)
            self.assertEqual(doc["attempts"], 1)

    def test_waiting_tasks_survive_a_clean_stop(self):
        srv = self.start("--workers", "1", "--shutdown-grace", "0")
        blocker = srv.create_ok("bin", "sleep 60")
        srv.wait_status(blocker, "RUNNING")
        waiting = srv.create_ok("bin", "echo later")
        self.stop(srv)
        self.assertTrue(any("stay in the journal" in line for line in srv.log), srv.log)
        srv = self.start()
        self.assertEqual(srv.wait_done(waiting)["result"]["stdout"], "later\n")
        # The running one was cancelled by the stop, and stays so.
        self.assertIn("cancelled", srv.status(blocker)[2]["error"])

    def test_failed_start_runs_nothing(self):
        srv = self.start("--workers", "1")
        task = srv.create_ok("bin", ONCE_SLOW % {"dir": self.tmp})
        self.wait_runs(1)
        later = srv.create_ok("bin", "echo later")
        self.stop(srv, signal.SIGKILL)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            r = subprocess.run([SERVER_BIN, "--data-dir", self.data, "--port",
                                str(s.getsockname()[1])], capture_output=True, text=True,
                               timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        # Had the server that could not listen run them, they would have
        # been cancelled on its way out.
        srv = self.start("--workers", "1")
        self.assertEqual(srv.wait_done(task)["result"]["stdout"], "second\n")
        self.assertEqual(srv.wait_done(later)["status"], "SUCCESS")

    def test_running_task_is_requeued(self):
        srv = self.start("--workers", "1")
        task = srv.create_ok("bin", ONCE_SLOW % {"dir": self.tmp})
        self.wait_runs(1)
        self.wait_start_recorded(srv)
        self.stop(srv, signal.SIGKILL)

        srv = self.start("--workers", "1")
        doc = srv.wait_done(task)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        self.assertEqual(doc["result"]["stdout"], "second\n")
        self.assertEqual(doc["attempts"], 2)
        self.assertEqual(len(self.runs()), 2)

    def test_running_task_fails_with_on_restart_fail(self):
        srv = self.start("--workers", "1", "--on-restart", "fail")
        task = srv.create_ok("bin", ONCE_SLOW % {"dir": self.tmp})
        self.wait_runs(1)
        self.stop(srv, signal.SIGKILL)

        srv = self.start("--workers", "1", "--on-restart", "fail")
        st, _, doc = srv.status(task)
        self.assertEqual(doc["status"], "ERROR", doc)
        self.assertIn("interrupted", doc["error"])
        self.assertEqual(doc["attempts"], 1)
        self.assertIn("finished_at", doc["meta"])
        time.sleep(0.5)
        self.assertEqual(len(self.runs()), 1)  # never run a second time


class KillUnderLoad(JournalCase):
    def test_no_accepted_task_is_lost(self):
        accepted, lock = [], threading.Lock()
        for sync in ("full", "normal"):
            srv = self.start("--workers", "2", "--data-sync", sync)
            done = threading.Event()

            def submit(srv=srv, done=done):
                while not done.is_set():
                    try:
                        st, body = srv.create("bin", "echo ok")
                    except (OSError, http.client.HTTPException):
                        return  # the server is gone
                    if st == 200:
                        with lock:
                            accepted.append(body["id"])

            threads = [threading.Thread(target=submit) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.5, 2.0))
            self.stop(srv, signal.SIGKILL)
            done.set()
            for t in threads:
                t.join(30)
        self.assertGreater(len(accepted), 10)
        srv = self.start("--workers", "2")
        for i in accepted:
            doc = srv.wait_done(i, timeout=120)
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"], "ok\n")


class Retention(JournalCase):
    def test_journal_stays_bounded(self):
        program = "head -c 20000 /dev/zero | tr '\\0' x"
        sizes = []
        for _ in range(3):
            srv = self.start("--workers", "2", "--max-finished", "10")
            for _ in range(40):  # one at a time: older ones are evicted
                self.assertEqual(srv.run("bin", program)["status"], "SUCCESS")
            self.stop(srv)
            self.assertEqual(self.rows(), 10)
            self.assertEqual(self.rows("WHERE file IS NOT NULL"), 0)
            sizes.append(os.path.getsize(os.path.join(self.data, "tasks.db")))
        # 120 outputs of 20 kB would take 2.4 MB; 10 kept take 200 kB, plus
        # free pages that later rows reuse.
        self.assertLess(sizes[-1], 1_000_000, sizes)
        self.assertLessEqual(sizes[-1], sizes[0] * 1.5 + 100_000, sizes)

    def test_smaller_max_finished_drops_old_rows_at_start(self):
        srv = self.start("--workers", "2")
        ids = [srv.create_ok("bin", "echo %d" % n) for n in range(6)]
        for i in ids:
            srv.wait_done(i)
        self.stop(srv)
        srv = self.start("--max-finished", "2")
        known = [i for i in ids if srv.status(i)[0] == 200]
        self.stop(srv)
        self.assertEqual(len(known), 2)
        self.assertEqual(self.rows(), 2)


class BadDataDir(JournalCase):
    def run_server(self, *args):
        return subprocess.run([SERVER_BIN, "--port", "0", *args], capture_output=True,
                              text=True, timeout=30)

    def test_not_a_directory(self):
        path = os.path.join(self.tmp, "file")
        open(path, "w").close()
        r = self.run_server("--data-dir", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("not a directory", r.stderr)

    def test_missing_parent(self):
        r = self.run_server("--data-dir", os.path.join(self.tmp, "no", "data"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot create data directory", r.stderr)

    def test_corrupt_journal(self):
        os.mkdir(self.data)
        with open(os.path.join(self.data, "tasks.db"), "wb") as f:
            f.write(os.urandom(8192))
        r = self.run_server("--data-dir", self.data)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("tasks.db", r.stderr)
        self.assertIn("not a database", r.stderr)

    def test_unwritable_directory(self):
        os.mkdir(self.data, 0o500)
        if os.access(self.data, os.W_OK):
            self.skipTest("running as root: permissions do not apply")
        r = self.run_server("--data-dir", self.data)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Permission denied", r.stderr)

    def test_read_only_file_system(self):
        r = self.run_server("--data-dir", "/proc/tasksolver-data")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot create data directory /proc/tasksolver-data", r.stderr)

    def test_directory_in_use(self):
        srv = self.start()
        r = self.run_server("--data-dir", self.data)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("in use by another process", r.stderr)
        self.assertEqual(srv.request("GET", "/get_task_count")[0], 200)

    def test_bad_option_values(self):
        for args in (["--on-restart", "later"], ["--data-sync", "sometimes"]):
            r = self.run_server("--data-dir", self.data, *args)
            self.assertEqual(r.returncode, 2, r.stderr)


if __name__ == "__main__":
    unittest.main()
