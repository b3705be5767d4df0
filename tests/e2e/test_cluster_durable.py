"""End-to-end tests of a master's jobs kept with --data-dir: after kill -9
and a restart on the same directory, every accepted job still answers,
unfinished ones finish once workers are back, and ids are never handed out
twice. Without --data-dir a restart forgets, as before."""

import os
import shutil
import signal
import sqlite3
import tempfile
import unittest

from harness import Server
from test_cluster import Master, free_port, stop_all

# What GET /job/ID keeps across a restart for a finished job.
KEPT = ("job_id", "finished", "answer", "task", "operations", "depth", "created_at",
        "finished_at", "error")


class DurableJobs(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_cluster_durable.")
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.nodes = []

    def tearDown(self):
        stop_all(self.nodes)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def master(self, *args, data=True):
        extra = ("--data-dir", self.data) if data else ()
        srv = Server("--port", str(self.port), *extra, *args)
        self.nodes.append(srv)
        return srv, Master(srv)

    def worker(self, master_srv, name, *args):
        w = Server("--join", master_srv.url, "--name", name, "--announce-interval", "0.3", *args)
        self.nodes.append(w)
        return w

    def kill(self, srv):
        srv.stop(signal.SIGKILL, check=False)
        self.nodes.remove(srv)

    def test_every_accepted_job_answers_after_kill_9(self):
        srv, m = self.master()
        self.worker(srv, "w1", "--compute-delay-ms", "200")
        self.worker(srv, "w2", "--compute-delay-ms", "200")
        m.wait_workers(2)
        exprs = {"1+2": 3, "7": 7, "(1+2)*(3+4)": 21, "9007199254740993+0": 9007199254740993,
                 "2.5*2": 5}
        done = {m.submit_ok(e): v for e, v in exprs.items()}
        failed = m.submit_ok("1/(2-2)")
        before = {}
        for job_id, value in done.items():
            before[job_id] = m.wait_job(job_id)
            self.assertEqual(before[job_id]["answer"], value)
        before[failed] = m.wait_job(failed)
        self.assertIn("division by zero", before[failed]["error"])
        # Accepted, not finished when the master dies: depth 3 at 200 ms.
        slow = m.submit_ok("((1+2)*(3+4))-((5+6)*(7+8))")
        self.assertFalse(m.job(slow)["finished"])
        self.kill(srv)

        srv, m = self.master()
        for job_id, doc in before.items():
            again = m.job(job_id)
            for k in KEPT:
                self.assertEqual(again.get(k), doc.get(k), (job_id, k))
        # The workers announce themselves again and the job goes on.
        self.assertEqual(m.wait_job(slow, timeout=60)["answer"], 21 - 165)
        new = m.submit_ok("6*7")
        self.assertGreater(new, slow)
        self.assertEqual(m.wait_job(new, timeout=60)["answer"], 42)
        st, _, listing = srv.request("GET", "/jobs")
        self.assertEqual(st, 200)
        self.assertEqual(sorted(d["job_id"] for d in listing), sorted([*before, slow, new]))

    def test_job_accepted_without_workers_finishes_after_restart(self):
        srv, m = self.master()
        first = m.submit_ok("(2+3)*4")
        second = m.submit_ok("10/4")
        self.assertFalse(m.job(first)["finished"])
        self.kill(srv)

        srv, m = self.master()
        self.assertFalse(m.job(first)["finished"])
        self.assertEqual(m.job(second)["task"], "10/4")
        self.worker(srv, "w1")
        self.assertEqual(m.wait_job(first, timeout=60)["answer"], 20)
        self.assertEqual(m.wait_job(second, timeout=60)["answer"], 2.5)
        self.assertGreater(m.submit_ok("1+1"), second)

    def test_ids_are_never_handed_out_twice(self):
        # The bound keeps the rows few; the counter still goes on past them.
        srv, m = self.master("--max-jobs", "100", "--compute-local")
        ids = [m.submit_ok("%d+1" % i) for i in range(120)]
        for job_id in ids[-100:]:
            m.wait_job(job_id)
        self.kill(srv)
        srv, m = self.master("--max-jobs", "100", "--compute-local")
        st, _, _ = srv.request("GET", "/job/%d" % ids[0])
        self.assertEqual(st, 404)  # dropped by retention
        self.assertEqual(m.job(ids[-1])["answer"], 120)
        self.assertEqual(m.submit_ok("5"), ids[-1] + 1)
        # A clean stop keeps it the same way.
        srv.stop()
        self.nodes.remove(srv)
        db = sqlite3.connect(os.path.join(self.data, "jobs.db"))
        try:
            self.assertLessEqual(db.execute("SELECT count(*) FROM jobs").fetchone()[0], 100)
        finally:
            db.close()  # the next master takes the file for itself
        srv, m = self.master("--max-jobs", "100", "--compute-local")
        self.assertEqual(m.submit_ok("5"), ids[-1] + 2)

    def test_without_data_dir_a_restart_forgets(self):
        srv, m = self.master(data=False)
        self.worker(srv, "w1")
        m.wait_workers(1)
        job_id = m.submit_ok("6*7")
        self.assertEqual(job_id, 1)
        self.assertEqual(m.wait_job(job_id)["answer"], 42)
        self.kill(srv)
        srv, m = self.master(data=False)
        st, _, _ = srv.request("GET", "/job/1")
        self.assertEqual(st, 404)
        self.assertEqual(m.submit_ok("1+1"), 1)
        self.assertFalse(os.path.exists(self.data))


if __name__ == "__main__":
    unittest.main()
