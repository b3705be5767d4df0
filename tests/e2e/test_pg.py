"""End-to-end tests of --store: three nodes on loopback sharing a private
PostgreSQL (pg.py), in the default configuration (sandbox on, as root).
What one node accepts every node answers for; a node killed with -9 loses
nothing; the database stopped under load refuses creates with 503 and
loses nothing acknowledged; bad stores are refused at start."""

import base64
import calendar
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.request

import pg
from harness import BUILD_DIR, SERVER_BIN, Server, procs_with

DB = None

SLEEP = "#!/bin/sh\nsleep %s\necho slept\n"
ECHO = "#!/bin/sh\necho \"$@\"\n"


def setUpModule():
    global DB
    why = pg.available()
    if why:
        raise unittest.SkipTest(why)
    DB = pg.PostgreSQL()


def tearDownModule():
    if DB:
        DB.stop()


def parse_time(s):
    """Seconds since the epoch of an API time ("2026-01-02 03:04:05.678Z")."""
    base, frac = s.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%d %H:%M:%S")) + float("0." + frac)


def start_nodes(n, *args):
    return [Server("--store", DB.url, "--workers", "2", *args) for _ in range(n)]


class NodesCase(unittest.TestCase):
    lease = "2"

    def setUp(self):
        self.nodes = start_nodes(3, "--lease", self.lease)

    def tearDown(self):
        for n in self.nodes:
            n.stop(check=n.proc.poll() is None)

    def wait_nodes(self, node, count, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, _, doc = node.request("GET", "/nodes")
            if st == 200 and len(doc["nodes"]) == count:
                return doc["nodes"]
            time.sleep(0.2)
        self.fail("GET /nodes did not list %d nodes: %r" % (count, doc))


class TestShared(NodesCase):
    def test_nodes_lists_three(self):
        nodes = self.wait_nodes(self.nodes[2], 3)
        urls = sorted(n["url"] for n in nodes)
        self.assertEqual(urls, sorted(s.url for s in self.nodes))
        for n in nodes:
            self.assertEqual(n["workers"], 2)
            self.assertIn("last_heartbeat", n)
            self.assertGreaterEqual(n["running"], 0)

    def test_created_on_one_read_on_another(self):
        tid = self.nodes[0].create_ok("bin", ECHO, ["across", "nodes"])
        for node in self.nodes[1:]:
            doc = node.wait_done(tid, 30)
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"], "across nodes\n")
            self.assertEqual(doc["attempts"], 1)
        st, _, doc = self.nodes[2].status("00000000-0000-4000-8000-000000000000")
        self.assertEqual(st, 404)

    def test_count_is_service_wide(self):
        before = self.nodes[1].request("GET", "/get_task_count")[2]["total"]
        ids = [self.nodes[0].create_ok("bin", ECHO, ["n"]) for _ in range(3)]
        for tid in ids:
            self.nodes[2].wait_done(tid, 30)
        doc = self.nodes[1].request("GET", "/get_task_count")[2]
        self.assertEqual(doc["total"], before + 3)
        self.assertGreaterEqual(doc["finished"], 3)

    def test_long_poll_wakes_across_nodes(self):
        """Every node's long poll ends soon after the task ends, wherever
        it ran (LISTEN/NOTIFY)."""
        worst = []
        for _ in range(3):
            tid = self.nodes[0].create_ok("bin", SLEEP % "0.5")
            ends = {}

            def poll(node):
                st, _, doc = node.status(tid, wait=20)
                ends[node.port] = (time.time(), doc)

            threads = [threading.Thread(target=poll, args=(n,)) for n in self.nodes]
            for t in threads:
                t.start()
            for t in threads:
                t.join(40)
            lags = []
            for at, doc in ends.values():
                self.assertEqual(doc["status"], "SUCCESS", doc)
                lags.append(at - parse_time(doc["meta"]["finished_at"]))
            worst.append(max(lags))
        print("cross-node long poll wake-up after the finish: %s ms"
              % ", ".join("%.1f" % (w * 1e3) for w in worst))
        self.assertLess(max(worst), 1.0)

    def test_create_wait_answers_the_status(self):
        st, _, doc = self.nodes[1].request(
            "POST", "/create_task?wait=20",
            {"type": "bin", "file": __import__("base64").b64encode(ECHO.encode()).decode(),
             "args": ["waited"]})
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["status"], "SUCCESS")
        self.assertEqual(doc["result"]["stdout"], "waited\n")


# Prints, then waits for a child that sleeps: its output so far is known
# when it is cancelled, and both processes carry the marker $1 in their
# command lines.
PRINT_SLEEP = "#!/bin/sh\necho started \"$1\"\n/bin/sh -c 'sleep 30; echo late' \"$1\" &\nwait\n"
# Prints a line every half second for about three seconds.
TICKS = "import time\nfor i in range(6):\n    print('tick', i, flush=True)\n    time.sleep(0.5)\n"


class TestCancelAcross(NodesCase):
    """POST /cancel_task on any node, whichever node runs the task."""

    def runner(self, tid, timeout=20):
        """The node whose claim runs tid, once it runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = DB.psql("SELECT n.url FROM tasks t JOIN nodes n ON n.name = t.node"
                          " WHERE t.id = '%s' AND t.status = 'RUNNING'" % tid).strip()
            for n in self.nodes:
                if url and n.url == url:
                    return n
            time.sleep(0.05)
        self.fail("task %s not running on any node" % tid)

    def assert_cancelled(self, doc):
        self.assertEqual(doc["status"], "ERROR", doc)
        self.assertEqual(doc["error"], "cancelled", doc)
        self.assertIs(doc["result"]["cancelled"], True, doc)

    def test_cancel_waiting_and_claimed_from_any_node(self):
        self.wait_nodes(self.nodes[0], 3)
        # 3 nodes x (2 workers + 1 claimed ahead): the tenth waits in the
        # database, claimed by no node.
        ids = [self.nodes[0].create_ok("bin", SLEEP % "30") for _ in range(10)]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            # One snapshot: a claim between two reads would count twice.
            rows = [r.split("|") for r in DB.psql(
                "SELECT id, status FROM tasks WHERE id IN (%s)"
                % ",".join("'%s'" % i for i in ids)).split()]
            waiting = [i for i, st in rows if st == "WAIT"]
            if sum(st == "RUNNING" for _, st in rows) == 9:
                break
            time.sleep(0.1)
        self.assertEqual(len(waiting), 1, waiting)
        wid = waiting[0]
        t0 = time.monotonic()
        st, _, doc = self.nodes[1].request("POST", "/cancel_task", {"id": wid})
        self.assertEqual(st, 200, doc)
        self.assertLess(time.monotonic() - t0, 5)
        self.assert_cancelled(doc)
        self.assertEqual(doc["attempts"], 0, doc)
        # The others, each from a node of its own choice: claimed ahead
        # (queued on a node), running there, or running here.
        for k, tid in enumerate(ids):
            if tid == wid:
                continue
            st, _, doc = self.nodes[k % 3].request("POST", "/cancel_task?id=" + tid)
            self.assertEqual(st, 200, doc)
            self.assert_cancelled(doc)
        # Every worker is free again: a next task runs at once.
        doc = self.nodes[2].run("bin", ECHO, ["next"], timeout=20)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        # Never started, whatever the claimers did since.
        time.sleep(float(self.lease) + 1.5)
        for node in self.nodes:
            doc = node.status(wid)[2]
            self.assert_cancelled(doc)
            self.assertEqual(doc["attempts"], 0, doc)
        left = DB.psql("SELECT count(*) FROM tasks WHERE status <> 'ERROR' AND id IN (%s)"
                       % ",".join("'%s'" % i for i in ids)).strip()
        self.assertEqual(left, "0")

    def test_cancel_running_from_another_node(self):
        marker = "cancel-%d-%d" % (os.getpid(), time.monotonic_ns())
        tid = self.nodes[0].create_ok("bin", PRINT_SLEEP, [marker])
        runner = self.runner(tid)
        other = next(n for n in self.nodes if n is not runner)
        deadline = time.monotonic() + 20
        while len(procs_with(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(procs_with(marker)), 2, "the task and its child never showed")
        time.sleep(0.5)  # past its print
        t0 = time.monotonic()
        st, _, doc = other.request("POST", "/cancel_task", {"id": tid})
        took = time.monotonic() - t0
        print("cross-node cancel of a running task answered in %.1f ms" % (took * 1e3))
        self.assertEqual(st, 200, doc)
        self.assertLess(took, 5)
        self.assert_cancelled(doc)
        self.assertIn("started " + marker, doc["result"]["stdout"], doc)
        deadline = time.monotonic() + 10
        while procs_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(procs_with(marker), [], "the cancelled run is still alive")
        # The runner's workers are free: its heartbeat counts none running.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            mine = [n for n in other.request("GET", "/nodes")[2]["nodes"]
                    if n["url"] == runner.url]
            if mine and mine[0]["running"] == 0:
                break
            time.sleep(0.2)
        self.assertEqual(mine[0]["running"], 0, mine)
        self.assertEqual(runner.run("bin", ECHO, ["after"], timeout=20)["status"], "SUCCESS")
        # The row stays cancelled past the lease, even with its node gone.
        runner.proc.kill()
        runner.proc.wait()
        time.sleep(float(self.lease) + 2)
        doc = other.status(tid)[2]
        self.assert_cancelled(doc)
        self.assertEqual(doc["attempts"], 1, doc)
        self.assertIn("started " + marker, doc["result"]["stdout"], doc)

    def test_create_wait_ends_cancelled(self):
        """A create_task?wait=S on the node that runs the task (its claimer
        kicked at once, most likely) ends with the cancel from another."""
        marker = "wait-%d-%d" % (os.getpid(), time.monotonic_ns())
        got = {}

        def create():
            got["answer"] = self.nodes[0].request(
                "POST", "/create_task?wait=30",
                {"type": "bin", "file": base64.b64encode(PRINT_SLEEP.encode()).decode(),
                 "args": [marker]}, timeout=60)

        th = threading.Thread(target=create)
        th.start()
        deadline = time.monotonic() + 20
        tid = ""
        while not tid and time.monotonic() < deadline:
            tid = DB.psql("SELECT id FROM tasks WHERE status = 'RUNNING'"
                          " AND position('%s'::bytea in args) > 0" % marker).strip()
            time.sleep(0.05)
        runner = self.runner(tid)
        other = next(n for n in self.nodes if n is not runner)
        while len(procs_with(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        st, _, doc = other.request("POST", "/cancel_task", {"id": tid})
        self.assertEqual(st, 200, doc)
        self.assert_cancelled(doc)
        th.join(30)
        st, _, doc = got["answer"]
        self.assertEqual(st, 200, doc)
        self.assert_cancelled(doc)

    def test_missed_notify_still_stops_the_run(self):
        """A cancel whose NOTIFY ts_cancel never came (the row ended as a
        cancel ends it, without the NOTIFY): the running node's keeper
        finds the row ended and kills the run within a few seconds."""
        marker = "missed-%d-%d" % (os.getpid(), time.monotonic_ns())
        tid = self.nodes[0].create_ok("bin", PRINT_SLEEP, [marker])
        runner = self.runner(tid)
        deadline = time.monotonic() + 20
        while len(procs_with(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(procs_with(marker)), 2)
        DB.psql("UPDATE tasks SET status = 'ERROR', error = 'cancelled', cancelled = true,"
                " finished = now()"
                " WHERE id = '%s'" % tid)
        t0 = time.monotonic()
        while procs_with(marker) and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        self.assertEqual(procs_with(marker), [], "the run outlived its ended row")
        print("run stopped %.1f s after its row ended without a NOTIFY"
              % (time.monotonic() - t0))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            doc = runner.status(tid)[2]
            if "started " + marker in doc.get("result", {}).get("stdout", ""):
                break
            time.sleep(0.1)
        self.assert_cancelled(doc)
        self.assertIn("started " + marker, doc["result"]["stdout"], doc)

    def test_cancel_final_and_unknown(self):
        tid = self.nodes[0].create_ok("bin", ECHO, ["done"])
        self.nodes[0].wait_done(tid, 30)
        st, _, doc = self.nodes[2].request("POST", "/cancel_task", {"id": tid})
        self.assertEqual(st, 409, doc)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        st, _, doc = self.nodes[1].request(
            "POST", "/cancel_task", {"id": "00000000-0000-4000-8000-000000000000"})
        self.assertEqual(st, 404, doc)
        st, _, doc = self.nodes[1].request("POST", "/cancel_task", {"id": 3})
        self.assertEqual(st, 400, doc)

    def test_stream_from_another_node_follows_the_redirect(self):
        tid = self.nodes[0].create_ok("python", TICKS)
        runner = self.runner(tid)
        other = next(n for n in self.nodes if n is not runner)
        st, hdrs, doc = other.request("GET", "/stream?id=" + tid)
        self.assertEqual(st, 307, doc)
        self.assertEqual(hdrs["location"], runner.url + "/stream?id=" + tid)
        self.assertEqual(doc["node"], runner.url)
        with urllib.request.urlopen(other.url + "/stream?id=" + tid, timeout=30) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["X-Task-Id"], tid)
            text = r.read().decode()
        self.assertEqual(text, "".join("tick %d\n" % i for i in range(6)))
        # Final: every node sends it itself.
        st, _, body = other.request("GET", "/stream?id=" + tid)
        self.assertEqual(st, 200)
        self.assertEqual(body.decode(), text)


class TestShutdown(unittest.TestCase):
    def test_a_run_killed_by_a_shutdown_is_no_cancel(self):
        node = Server("--store", DB.url, "--workers", "1", "--shutdown-grace", "0.2")
        try:
            tid = node.create_ok("bin", SLEEP % "30")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and node.status(tid)[2]["status"] != "RUNNING":
                time.sleep(0.05)
            self.assertEqual(node.stop(signal.SIGTERM), 0)
        finally:
            node.stop()
        other = Server("--store", DB.url, "--workers", "1")
        try:
            doc = other.status(tid)[2]
            self.assertEqual(doc["status"], "ERROR", doc)
            self.assertIs(doc["result"]["cancelled"], False, doc)
        finally:
            other.stop()


class TestKill(NodesCase):
    def test_kill_9_of_a_node_loses_nothing(self):
        self.wait_nodes(self.nodes[0], 3)
        ids = [self.nodes[0].create_ok("bin", SLEEP % "1.5") for _ in range(12)]
        # Twelve tasks, six workers (and one claimed ahead per node): the
        # other two nodes take some at once; the first with some dies.
        deadline = time.monotonic() + 10
        query = ("SELECT id FROM tasks WHERE status = 'RUNNING' AND node = "
                 "(SELECT name FROM nodes WHERE url = '%s')")
        victim = None
        while time.monotonic() < deadline and not victim:
            victim = next((n for n in self.nodes[1:] if DB.psql(query % n.url)), None)
            time.sleep(0.05)
        self.assertTrue(victim, "neither node 1 nor node 2 ran a task")
        victim.proc.kill()
        victim.proc.wait()
        # Read at once: nobody gives the dead node up before --lease 2.
        mine = DB.psql(query % victim.url).split()
        survivor = self.nodes[1] if victim is self.nodes[2] else self.nodes[2]
        for tid in ids:
            doc = survivor.wait_done(tid, 60)
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"], "slept\n")
            self.assertEqual(doc["attempts"], 2 if tid in mine else 1, (tid, mine))
        nodes = self.wait_nodes(self.nodes[0], 2)
        self.assertNotIn(victim.url, [n["url"] for n in nodes])


class TestDatabaseDown(NodesCase):
    lease = "4"

    def test_restart_under_load(self):
        self.wait_nodes(self.nodes[0], 3)
        acked, refused, other = [], [], []
        stop = threading.Event()

        def load(node):
            while not stop.is_set():
                try:
                    st, body = node.create("bin", ECHO, ["load"])
                except OSError as e:
                    other.append(repr(e))
                    continue
                if st == 200:
                    acked.append(body["id"])
                elif st == 503:
                    refused.append(body["error"])
                    time.sleep(0.05)
                else:
                    other.append((st, body))

        threads = [threading.Thread(target=load, args=(n,)) for n in self.nodes]
        for t in threads:
            t.start()
        time.sleep(1)
        DB.stop_server("fast")
        time.sleep(1.5)
        DB.start()
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertTrue(refused, "no create was refused while the database was down")
        self.assertIn("unreachable", refused[0])
        self.assertEqual(other, [])
        print("creates acknowledged %d, refused with 503 while down %d"
              % (len(acked), len(refused)))
        for i, tid in enumerate(acked):
            doc = self.nodes[i % 3].wait_done(tid, 60)
            self.assertEqual(doc["status"], "SUCCESS", doc)
        # Recovered without a restart: every node heartbeats and runs again.
        self.wait_nodes(self.nodes[2], 3)
        for node in self.nodes:
            self.assertEqual(node.run("bin", ECHO, ["after"])["status"], "SUCCESS")


class TestForgetNodes(unittest.TestCase):
    def test_long_dead_nodes_are_deleted_once_their_tasks_are_back(self):
        """Rows of nodes silent for 100 leases leave the nodes table, a
        long-dead node's RUNNING task first going back to the queue; a node
        dead for less stays (GET /nodes lists neither: both are dead)."""
        DB.psql("CREATE DATABASE forget")
        # --lease 1: forgotten after 100 s of silence.
        n = Server("--store", DB.url.rsplit("/", 1)[0] + "/forget", "--workers", "1",
                   "--lease", "1")
        try:
            # One transaction: the node never sees the dead node without
            # its task (nor could it forget it while the task is RUNNING).
            DB.psql("INSERT INTO nodes (name, url, workers, running, heartbeat) VALUES"
                    " ('gone-long-ago', 'http://192.0.2.1:1', 2, 1, now() - interval '1 hour'),"
                    " ('gone-lately', 'http://192.0.2.2:1', 2, 0, now() - interval '30 seconds');"
                    " INSERT INTO tasks (id, type, status, started, attempts, node, lease, args,"
                    " file) VALUES ('55555555-5555-4555-8555-555555555555', 'bin', 'RUNNING',"
                    " now(), 1, 'gone-long-ago', gen_random_uuid(), decode('6261636b00', 'hex'),"
                    " convert_to('#!/bin/sh' || chr(10) || 'echo \"$@\"' || chr(10), 'UTF8'))",
                    db="forget")
            doc = n.wait_done("55555555-5555-4555-8555-555555555555", 30)
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"], "back\n")
            self.assertEqual(doc["attempts"], 2)
            query = "SELECT name FROM nodes WHERE name LIKE 'gone-%' ORDER BY name"
            deadline = time.monotonic() + 20
            while DB.psql(query, db="forget") != "gone-lately" and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(DB.psql(query, db="forget"), "gone-lately")
            self.assertEqual(n.request("GET", "/nodes")[2]["nodes"][0]["url"], n.url)
            self.assertIn("node gone-long-ago forgotten", n.wait_log("node gone-long-ago forgotten"))
        finally:
            n.stop()


class Proxy:
    """A TCP relay to the database that the test can pause: paused, it
    stops reading, so what a node sends sits in socket buffers, as over a
    network that stalls (no reset, no error)."""

    def __init__(self, port):
        self.up = port
        self.running = threading.Event()
        self.running.set()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.up))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        while True:
            self.running.wait()
            try:
                data = src.recv(65536)
                if not data:
                    break
                self.running.wait()
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        src.close()  # each pump closes the socket it reads

    def close(self):
        self.running.set()
        self.lsock.close()


class TestLeaseFence(unittest.TestCase):
    def test_a_node_given_up_for_dead_cannot_write_its_result(self):
        proxy = Proxy(DB.port)
        url = "postgresql://postgres@127.0.0.1:%d/postgres" % proxy.port
        b = Server("--store", url, "--workers", "1", "--lease", "2")
        a = None
        try:
            tid = b.create_ok("bin", SLEEP % "4")
            deadline = time.monotonic() + 10
            while b.status(tid)[2]["status"] != "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.05)
            a = Server("--store", DB.url, "--workers", "1", "--lease", "2")
            proxy.running.clear()  # b stalls: its heartbeat and its result wait
            time.sleep(6)          # a gives b up and runs the task again
            proxy.running.set()    # b's result arrives under a lease that is not its own
            doc = a.wait_done(tid, 30)
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["attempts"], 2)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    "lease was taken over" in line for line in b.log):
                time.sleep(0.1)
            self.assertTrue(any("lease was taken over" in line for line in b.log),
                            "".join(b.log[-10:]))
            self.assertEqual(a.status(tid)[2]["attempts"], 2)
        finally:
            proxy.close()
            b.stop()
            if a:
                a.stop()


class TestAdmission(unittest.TestCase):
    def test_waiting_room_is_service_wide_and_refuses_past_it(self):
        # A database of its own: no rows or nodes of the other tests.
        DB.psql("CREATE DATABASE admission")
        node = Server("--store", DB.url.rsplit("/", 1)[0] + "/admission", "--workers", "1",
                      "--max-queue", "1")
        try:
            running = node.create_ok("bin", SLEEP % 3)
            # The waiting room counts beyond the idle workers that the
            # heartbeats report: wait until this one is seen busy.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                st, _, doc = node.request("GET", "/nodes")
                if st == 200 and doc["nodes"] and doc["nodes"][0]["running"] == 1:
                    break
                time.sleep(0.2)
            # One more is claimed ahead for the worker, then one waits in
            # the room (in that order or not: the claimer runs apart);
            # then the room is full.
            admitted = []
            for _ in range(4):
                st, body = node.create("bin", ECHO, ["waited"])
                if st != 200:
                    break
                admitted.append(body["id"])
            self.assertEqual(st, 429, body)
            self.assertIn("at capacity", body["error"])
            self.assertIn(len(admitted), (1, 2))
            self.assertEqual(node.wait_done(running, 30)["status"], "SUCCESS")
            for tid in admitted:
                self.assertEqual(node.wait_done(tid, 30)["result"]["stdout"], "waited\n")
            # Room again once they ran: the admission's transaction ended.
            self.assertEqual(node.run("bin", ECHO, ["again"])["result"]["stdout"], "again\n")
        finally:
            node.stop()


class TestConnections(unittest.TestCase):
    def test_pgconn_against_the_database(self):
        # The unit test's cases that need a database: prepared statements
        # (a DISCARD ALL, a reset) and batches (commit, rollback).
        env = dict(os.environ, TS_TEST_PG_URL=DB.url)
        p = subprocess.run([os.path.join(BUILD_DIR, "tests", "test_pgconn")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertNotIn("SKIPPED", p.stdout)


class TestStart(unittest.TestCase):
    def run_server(self, *args):
        p = subprocess.run([SERVER_BIN, "--port", "0", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        return p.returncode, p.stderr

    def test_store_and_data_dir_is_a_usage_error(self):
        rc, err = self.run_server("--store", DB.url, "--data-dir", "/tmp/nowhere")
        self.assertEqual(rc, 2)
        self.assertIn("--store and --data-dir exclude each other", err.splitlines()[0])

    def test_newer_schema_refuses_to_start(self):
        DB.psql("CREATE DATABASE newer")
        DB.psql("CREATE TABLE schema_version (version integer NOT NULL);"
                " INSERT INTO schema_version VALUES (99)", db="newer")
        rc, err = self.run_server("--store", DB.url.rsplit("/", 1)[0] + "/newer")
        self.assertEqual(rc, 1, err)
        self.assertIn("schema is version 99, newer than this tasksolver knows", err)

    def test_unreachable_store_refuses_to_start(self):
        rc, err = self.run_server("--store", "postgresql://postgres@127.0.0.1:%d/x"
                                  % pg.free_port())
        self.assertEqual(rc, 1, err)
        self.assertIn("cannot connect to the store", err)


# Text, binary (every byte value, NUL and invalid UTF-8 included) and a
# nested path, each read back by the task itself.
FILES = {"notes.txt": b"first line\nsecond line\n",
         "blob.bin": bytes(range(256)) * 3 + b"\x00\xff\xfe",
         "sub/dir/deep.bin": b"\x00\x01\x02\r\n\x80\xc3\x28" * 100}
FILES_PROG = "#!/bin/sh\ncat notes.txt\nsha256sum blob.bin sub/dir/deep.bin\n"


def files_expected():
    return FILES["notes.txt"].decode() + "".join(
        "%s  %s\n" % (hashlib.sha256(FILES[n]).hexdigest(), n)
        for n in ("blob.bin", "sub/dir/deep.bin"))


C_DOUBLE = "#include <stdio.h>\nint main(void) { int n; if (scanf(\"%d\", &n) != 1) return 2;" \
    " printf(\"%d\\n\", 2 * n); return 0; }\n"
CHATTY_SLOW = "#!/bin/sh\necho 0123456789\nsleep 5\n"


def b64(text):
    return __import__("base64").b64encode(text.encode()).decode()


def node_name(url):
    return DB.psql("SELECT name FROM nodes WHERE url = '%s'" % url)


class TestFields(unittest.TestCase):
    """Every field of a task crosses nodes: created on A, run on B or C, the
    same document read on all three, and again after all restart."""

    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.stop(check=n.proc.poll() is None)

    def node(self):
        n = Server("--store", DB.url, "--workers", "1")
        self.nodes.append(n)
        return n

    def create(self, node, doc):
        st, _, body = node.request("POST", "/create_task", doc)
        self.assertEqual(st, 200, body)
        return body["id"]

    def busy_node(self):
        """A node whose worker and the task it claims ahead are taken for
        as long as the test lasts (a slow machine included: the other
        nodes' starts take seconds under a sanitizer), and those tasks."""
        a = self.node()
        busy = [a.create_ok("bin", SLEEP % "300") for _ in range(2)]
        query = "SELECT count(*) FROM tasks WHERE status = 'RUNNING' AND node = '%s'"
        deadline = time.monotonic() + 30
        while DB.psql(query % node_name(a.url)) != "2" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(DB.psql(query % node_name(a.url)), "2", "A did not take both")
        return a, busy

    def release(self, a, busy):
        for tid in busy:
            st, _, doc = a.request("POST", "/cancel_task", {"id": tid})
            self.assertEqual(st, 200, doc)

    def test_every_field_read_on_every_node(self):
        a, busy = self.busy_node()
        b, c = self.node(), self.node()
        ids = [
            self.create(a, {"type": "c", "file": b64(C_DOUBLE),
                            "limits": {"timeout": 30, "memory": 268435456},
                            "tests": [{"stdin": "3\n", "expected_output": "6\n"},
                                      {"stdin": "4\n", "expected_output": "9\n"}]}),
            self.create(a, {"type": "bin", "file": b64(CHATTY_SLOW),
                            "limits": {"timeout": 1, "output": 5}}),
        ]
        # The first answer already: the node that ran the task answers from
        # its memory, with the database's times as every other node.
        docs = {tid: c.wait_done(tid, 120) for tid in ids}
        for tid in ids:
            ran = DB.psql("SELECT node FROM tasks WHERE id = '%s'" % tid)
            self.assertNotEqual(ran, node_name(a.url), "A was busy: B or C runs it")
        lang, slow = docs[ids[0]], docs[ids[1]]
        self.assertEqual(lang["type"], "c", lang)
        self.assertEqual(lang["result"]["compile_exit_code"], 0, lang)
        self.assertEqual(lang["result"]["compile_output"], "")
        self.assertEqual(lang["result"]["passed"], 1, lang)
        self.assertEqual(lang["result"]["failed"], 1, lang)
        self.assertEqual([t["stdout"] for t in lang["result"]["tests"]], ["6\n", "8\n"])
        # The task's own limits reached the node that ran it.
        self.assertEqual(slow["status"], "ERROR", slow)
        self.assertEqual(slow["result"]["limit"], "timeout", slow)
        self.assertTrue(slow["result"]["timed_out"])
        self.assertEqual(slow["result"]["stdout"], "01234")
        self.assertTrue(slow["result"]["stdout_truncated"])
        for tid in ids:
            for n in (a, b, c):
                self.assertEqual(n.wait_done(tid, 30), docs[tid], n.url)
        self.release(a, busy)
        for n in self.nodes:
            n.stop()
        self.nodes = []
        d = self.node()
        for tid in ids:
            self.assertEqual(d.wait_done(tid, 30), docs[tid])

    def test_files_run_on_the_node_that_claims(self):
        a, busy = self.busy_node()
        b = self.node()
        st, _, body = a.request("POST", "/create_task", {
            "type": "bin", "file": b64(FILES_PROG),
            "files": [{"name": n, "content": base64.b64encode(c).decode()}
                      for n, c in FILES.items()]})
        self.assertEqual(st, 200, body)
        tid = body["id"]
        doc = b.wait_done(tid, 60)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        self.assertEqual(DB.psql("SELECT node FROM tasks WHERE id = '%s'" % tid),
                         node_name(b.url), "A was busy: B runs it")
        self.assertEqual(doc["result"]["stdout"], files_expected())
        # Like the program, the files leave the row once the task has ended.
        self.assertEqual(DB.psql("SELECT files IS NULL FROM tasks WHERE id = '%s'" % tid), "t")
        # B answers from its memory, A from the row: the same document,
        # times included (the database's clock on both).
        self.assertEqual(a.wait_done(tid, 30), doc)
        row = DB.psql("SELECT extract(epoch from started), extract(epoch from finished)"
                      " FROM tasks WHERE id = '%s'" % tid).split("|")
        self.assertAlmostEqual(parse_time(doc["meta"]["started_at"]), float(row[0]), delta=0.002)
        self.assertAlmostEqual(parse_time(doc["meta"]["finished_at"]), float(row[1]), delta=0.002)
        self.release(a, busy)


SCHEMA_1 = """
CREATE TABLE schema_version (version integer NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE tasks (seq bigserial UNIQUE, id uuid PRIMARY KEY, type text NOT NULL,
 status text NOT NULL, created timestamptz NOT NULL DEFAULT now(), started timestamptz,
 finished timestamptz, attempts integer NOT NULL DEFAULT 0, node text, lease uuid,
 args bytea, file bytea, stdin bytea, env bytea, stdout bytea, stderr bytea,
 stdout_total bigint, stdout_truncated boolean, stderr_total bigint, stderr_truncated boolean,
 exit_code integer, signal integer, timed_out boolean, cpu_us bigint, error text);
CREATE INDEX tasks_waiting ON tasks (seq) WHERE status = 'WAIT';
CREATE INDEX tasks_running ON tasks (node) WHERE status = 'RUNNING';
CREATE INDEX tasks_finished ON tasks (finished) WHERE status IN ('SUCCESS', 'ERROR');
CREATE TABLE nodes (name text PRIMARY KEY, url text NOT NULL, workers integer NOT NULL,
 running integer NOT NULL, heartbeat timestamptz NOT NULL);
INSERT INTO tasks (id, type, status, started, finished, attempts, stdout, stderr, stdout_total,
 stdout_truncated, stderr_total, stderr_truncated, exit_code, timed_out, cpu_us)
 VALUES ('11111111-1111-4111-8111-111111111111', 'bin', 'SUCCESS', now(), now(), 1,
 convert_to('old\n', 'UTF8'), '\\x', 4, false, 0, false, 0, false, 1000);
INSERT INTO tasks (id, type, status, args, file) VALUES
 ('22222222-2222-4222-8222-222222222222', 'bin', 'WAIT', decode('77616974656400', 'hex'),
 convert_to('#!/bin/sh' || chr(10) || 'echo "$@"' || chr(10), 'UTF8'));
"""


# Version 2 as its migration left it (schema 1, then the columns of 2),
# with rows written by a version-2 node: one finished, one waiting.
SCHEMA_2 = SCHEMA_1.replace("VALUES (1);", "VALUES (2);") + """
ALTER TABLE tasks ADD COLUMN lang text, ADD COLUMN limits double precision[],
 ADD COLUMN tests bytea, ADD COLUMN memory_peak bigint, ADD COLUMN limit_hit text,
 ADD COLUMN compiled boolean NOT NULL DEFAULT false, ADD COLUMN compile_output bytea,
 ADD COLUMN compile_exit_code integer;
INSERT INTO tasks (id, type, status, started, finished, attempts, stdout, stderr, stdout_total,
 stdout_truncated, stderr_total, stderr_truncated, exit_code, timed_out, cpu_us, memory_peak,
 limit_hit) VALUES ('33333333-3333-4333-8333-333333333333', 'bin', 'ERROR', now(), now(), 1,
 convert_to('v2\n', 'UTF8'), '\\x', 3, false, 0, false, 137, false, 2000, 1048576, 'memory');
INSERT INTO tasks (id, type, status, args, file, limits) VALUES
 ('44444444-4444-4444-8444-444444444444', 'bin', 'WAIT', decode('763200', 'hex'),
 convert_to('#!/bin/sh' || chr(10) || 'echo "$@"' || chr(10), 'UTF8'), '{30,0,0,0,0,0,0}');
"""


class TestMigration(unittest.TestCase):
    def test_version_2_is_migrated_and_its_rows_read(self):
        DB.psql("CREATE DATABASE v2")
        DB.psql(SCHEMA_2, db="v2")
        n = Server("--store", DB.url.rsplit("/", 1)[0] + "/v2", "--workers", "1")
        try:
            self.assertEqual(DB.psql("SELECT version FROM schema_version", db="v2"), "3")
            old = n.wait_done("33333333-3333-4333-8333-333333333333", 10)
            self.assertEqual(old["status"], "ERROR", old)
            self.assertEqual(old["result"]["stdout"], "v2\n")
            self.assertEqual(old["result"]["limit"], "memory")
            waited = n.wait_done("44444444-4444-4444-8444-444444444444", 30)
            self.assertEqual(waited["status"], "SUCCESS", waited)
            self.assertEqual(waited["result"]["stdout"], "v2\n")
            # A task of the new version on the migrated database.
            st, _, body = n.request("POST", "/create_task?wait=30", {
                "type": "bin", "file": b64(FILES_PROG),
                "files": [{"name": k, "content": base64.b64encode(v).decode()}
                          for k, v in FILES.items()]})
            self.assertEqual(st, 200, body)
            self.assertEqual(body["status"], "SUCCESS", body)
            self.assertEqual(body["result"]["stdout"], files_expected())
        finally:
            n.stop()

    def test_version_1_is_migrated_and_its_rows_read(self):
        DB.psql("CREATE DATABASE v1")
        DB.psql(SCHEMA_1, db="v1")
        n = Server("--store", DB.url.rsplit("/", 1)[0] + "/v1", "--workers", "1")
        try:
            self.assertEqual(DB.psql("SELECT version FROM schema_version", db="v1"), "3")
            old = n.wait_done("11111111-1111-4111-8111-111111111111", 10)
            self.assertEqual(old["status"], "SUCCESS", old)
            self.assertEqual(old["result"]["stdout"], "old\n")
            self.assertIsNone(old["result"]["limit"])
            waited = n.wait_done("22222222-2222-4222-8222-222222222222", 30)
            self.assertEqual(waited["status"], "SUCCESS", waited)
            self.assertEqual(waited["result"]["stdout"], "waited\n")
        finally:
            n.stop()


if __name__ == "__main__":
    unittest.main()
