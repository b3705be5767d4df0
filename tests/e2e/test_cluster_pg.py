"""End-to-end tests of a master's jobs kept in the shared PostgreSQL store
(--store), in a private PostgreSQL (pg.py): the same promises as with
--data-dir (test_cluster_durable.py, whose cases run here again over the
store): after kill -9 and a restart, every accepted job answers, unfinished
ones finish once workers are back, and ids are never handed out twice.
Jobs are kept per master name; a second master under a running one's name
is refused."""

import itertools
import subprocess
import threading
import unittest

import pg
import test_cluster_durable as durable
from harness import SERVER_BIN, Server
from test_cluster import Master

DB = None
NUMBER = itertools.count(1)


def setUpModule():
    global DB
    why = pg.available()
    if why:
        raise unittest.SkipTest(why)
    DB = pg.PostgreSQL()


def tearDownModule():
    if DB:
        DB.stop()


class StoreJobs(durable.DurableJobs):
    def setUp(self):
        super().setUp()
        self.db = "jobs%d" % next(NUMBER)
        DB.psql("CREATE DATABASE " + self.db)
        self.store = DB.url.rsplit("/", 1)[0] + "/" + self.db

    def master(self, *args, data=True):
        extra = ("--store", self.store) if data else ()
        srv = Server("--port", str(self.port), *extra, *args)
        self.nodes.append(srv)
        return srv, Master(srv)

    def refused(self, *args):
        """Starts a server that must refuse to start: its stderr."""
        p = subprocess.run([SERVER_BIN, "--port", "0", "--store", self.store, *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        return p.stderr

    def rows(self, sql):
        return DB.psql(sql, db=self.db)

    def test_ids_are_never_handed_out_twice(self):
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
        srv.stop()
        self.nodes.remove(srv)
        self.assertLessEqual(int(self.rows("SELECT count(*) FROM cluster_jobs")), 100)
        self.assertEqual(int(self.rows("SELECT next_id FROM cluster_job_counters")), ids[-1] + 2)
        srv, m = self.master("--max-jobs", "100", "--compute-local")
        self.assertEqual(m.submit_ok("5"), ids[-1] + 2)

    def test_concurrent_submits_get_distinct_ids_that_survive(self):
        # Submits race to the writer: one commit may hold ids out of order.
        srv, m = self.master("--compute-local")
        ids, lock = [], threading.Lock()

        def submit():
            mine = [m.submit_ok("%d*2" % i) for i in range(15)]
            with lock:
                ids.extend(mine)

        threads = [threading.Thread(target=submit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(ids), list(range(1, 121)))
        self.kill(srv)
        srv, m = self.master("--compute-local")
        self.assertEqual(m.wait_job(120)["task"], m.job(120)["task"])
        self.assertEqual(m.submit_ok("1"), 121)

    def test_submits_fail_while_the_database_is_away_and_resume(self):
        srv, m = self.master("--compute-local")
        first = m.submit_ok("1+1")
        m.wait_job(first)
        DB.stop_server()
        try:
            st, body = m.submit("2+2")
            self.assertEqual(st, 503, body)
        finally:
            DB.start()
        # The writer connects again (and takes the name's lock again).
        later = m.submit_ok("3+3")
        self.assertGreater(later, first)
        self.assertEqual(m.wait_job(later)["answer"], 6)
        self.kill(srv)
        # (A finish not yet written when killed is computed again.)
        srv, m = self.master("--compute-local")
        self.assertEqual(m.wait_job(later)["answer"], 6)
        self.assertGreater(m.submit_ok("4"), later)

    def test_job_tables_are_versioned_apart_from_the_task_tables(self):
        self.master()
        self.assertEqual(self.rows("SELECT version FROM job_schema_version"), "1")
        self.assertEqual(self.rows("SELECT count(*) FROM schema_version"), "1")

    def test_second_master_of_the_same_name_is_refused(self):
        srv, m = self.master("--name", "m1", "--compute-local")
        first = m.submit_ok("1+2")
        self.assertIn("another running master is named m1", self.refused("--name", "m1"))
        # Another name is another master: its own jobs and ids.
        other = Server("--store", self.store, "--name", "m2", "--compute-local")
        self.nodes.append(other)
        self.assertEqual(Master(other).submit_ok("6*7"), 1)
        self.assertEqual(Master(other).wait_job(1)["answer"], 42)
        self.assertEqual(m.wait_job(first)["answer"], 3)
        # Once the first is gone, its name may start again, with its jobs.
        self.kill(srv)
        again = Server("--store", self.store, "--name", "m1")
        self.nodes.append(again)
        self.assertEqual(Master(again).job(first)["answer"], 3)

    def test_newer_job_tables_refuse_to_start(self):
        self.rows("CREATE TABLE job_schema_version (version integer NOT NULL);"
                  " INSERT INTO job_schema_version VALUES (99)")
        self.assertIn("job tables' schema is version 99, newer than this tasksolver knows",
                      self.refused())


if __name__ == "__main__":
    unittest.main()
