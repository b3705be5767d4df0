"""Servers that are not root. With user namespaces the sandbox separates
tasks from the server (and bounds their processes); without namespaces it
cannot, and the server refuses tasks while it serves everything else.

The server runs as a uid of its own that no other process uses, as
systemd's DynamicUser gives one, rather than as nobody: other servers'
tasks run as nobody, and this server's threads would count against their
RLIMIT_NPROC. Its binaries are copied where that uid can reach them, so
the tests do not depend on where the build tree is. A host without
namespaces is made for real, the way Docker's default seccomp profile
makes it: the server runs under tests/no_namespaces, whose filter refuses
unshare, setns and clone into new namespaces."""

import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from harness import BUILD_DIR, CLI_BIN, SERVER_BIN, Server, alive

ROOT = os.geteuid() == 0
NO_NAMESPACES = os.path.join(BUILD_DIR, "tests", "no_namespaces")
HELPER = os.path.join(os.path.dirname(SERVER_BIN), "tasksolver-exec")


def unused_uid():
    """A uid in systemd's DynamicUser range with no name and no process."""
    used = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/status" % name) as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            used.update(int(u) for u in line.split()[1:])
            except OSError:
                pass
    for uid in range(61999, 61184, -1):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if uid not in used:
                return uid
    raise unittest.SkipTest("no unused uid")


class Unprivileged(unittest.TestCase):
    """A directory of the server's uid holding copies of the binaries."""

    @classmethod
    def setUpClass(cls):
        if not ROOT:
            raise unittest.SkipTest("needs root to start a server as another user")
        if not shutil.which("setpriv"):
            raise unittest.SkipTest("setpriv (util-linux) is needed to drop root")
        cls.uid = unused_uid()
        cls.home = tempfile.mkdtemp(prefix="ts-unpriv-")
        os.chmod(cls.home, 0o755)
        bindir = os.path.join(cls.home, "bin")
        os.mkdir(bindir)
        os.chmod(bindir, 0o755)
        for b in (SERVER_BIN, HELPER):
            shutil.copy2(b, bindir)
        cls.server_bin = os.path.join(bindir, "tasksolver")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.home, ignore_errors=True)

    def own_dir(self, name):
        """A fresh directory of the server's uid."""
        path = os.path.join(self.home, name)
        os.mkdir(path)
        os.chown(path, self.uid, self.uid)
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def start(self, *args, namespaces=True):
        """The server as self.uid, under no_namespaces unless namespaces."""
        wrapper = os.path.join(self.home, "run-%s" % ("ns" if namespaces else "nons"))
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s setpriv --reuid %d --regid %d --clear-groups %s \"$@\"\n"
                    % ("" if namespaces else NO_NAMESPACES, self.uid, self.uid,
                       self.server_bin))
        os.chmod(wrapper, 0o755)
        work = os.path.join(self.own_dir("work-%d" % time.monotonic_ns()), "w")
        srv = Server("--work-dir", work, *args, binary=wrapper)
        self.addCleanup(srv.stop)
        return srv


class NoNamespaces(Unprivileged):
    """Not root and no namespaces: tasks would run as the server itself."""

    def assert_refused(self, st, hdrs, doc, sentence):
        self.assertEqual(st, 503, doc)
        self.assertIs(doc.get("permanent"), True, doc)
        self.assertNotIn("retry-after", hdrs)
        self.assertEqual(doc["error"], sentence)

    def test_tasks_are_refused_and_everything_else_is_served(self):
        srv = self.start("--calc-command", "/bin/echo", namespaces=False)
        info = srv.request("GET", "/info")[2]["sandbox"]
        self.assertFalse(info["namespaces"], info)
        sentence = info.get("tasks_refused")
        self.assertTrue(sentence, info)
        for words in ("cannot create namespaces", "uid %d" % self.uid, "run the server as root",
                      "SYS_ADMIN", "user namespaces", "--sandbox off"):
            self.assertIn(words, sentence)
        # Every route that runs a program refuses, for good.
        self.assert_refused(*srv.request("POST", "/create_task",
                                         {"type": "bin", "file": "echo hi"}), sentence)
        self.assert_refused(*srv.request("POST", "/create_task",
                                         {"type": "python", "file": "print(1)"}), sentence)
        self.assert_refused(*srv.request("POST", "/", {"data": 1}), sentence)
        # Everything else works.
        st, _, doc = srv.request("GET", "/get_task_count")
        self.assertEqual((st, doc["total"]), (200, 0))
        self.assertEqual(srv.request("GET", "/get_status?id=x")[0], 404)
        st, _, doc = srv.request("POST", "/compute", {"operation": "sum", "op1": 1, "op2": 2})
        self.assertEqual((st, doc.get("result")), (200, 3), doc)
        st, _, doc = srv.request("POST", "/submit", {"task": "1+2"})
        self.assertEqual(st, 200, doc)
        # The log says so, and claims no protection.
        deadline = time.monotonic() + 10
        while not any("tasks are refused" in l for l in srv.log) and time.monotonic() < deadline:
            time.sleep(0.05)
        log = "".join(srv.log)
        self.assertIn("sandbox: " + sentence, log)
        self.assertNotIn("tasks run as", log)

    def test_the_batch_client_stops_at_once(self):
        srv = self.start("--calc-command", "/bin/echo", namespaces=False)
        sentence = srv.request("GET", "/info")[2]["sandbox"]["tasks_refused"]
        inp = os.path.join(self.home, "numbers-%d" % self.uid)
        with open(inp, "w") as f:
            f.write("".join("%d\n" % n for n in range(100)))
        self.addCleanup(os.unlink, inp)
        for api in ((), ("--api", "tasksolver", "--program", "/bin/true")):
            p = subprocess.run([CLI_BIN, "batch", inp, "--url", srv.url, *api],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("stopped: ", p.stderr)
            self.assertIn("HTTP 503: " + sentence, p.stderr)
            self.assertEqual(p.stdout, "")

    def test_tasks_from_the_journal_are_not_run(self):
        data = self.own_dir("data")
        # A server with namespaces accepts a task that waits behind a long one.
        srv = self.start("--data-dir", data, "--workers", "1", "--shutdown-grace", "0")
        srv.create_ok("bin", "#!/bin/sh\nsleep 30\n")
        waiting = srv.create_ok("bin", "#!/bin/sh\necho ran\n")
        srv.stop()
        srv = self.start("--data-dir", data, namespaces=False)
        doc = srv.wait_done(waiting)
        self.assertEqual(doc["status"], "ERROR", doc)
        self.assertEqual(doc["error"], srv.request("GET", "/info")[2]["sandbox"]["tasks_refused"])
        self.assertEqual(doc["result"]["stdout"], "")

    def test_sandbox_off_runs_tasks_as_the_server(self):
        srv = self.start("--sandbox", "off", namespaces=False)
        doc = srv.run("bin", "#!/bin/sh\nid -u\n")
        self.assertEqual(doc["result"]["stdout"], "%d\n" % self.uid, doc)


class UserNamespaces(Unprivileged):
    """Not root, with user namespaces: tasks keep the server's uid but are
    separated from it, and their processes are bounded per task."""

    def setUp(self):
        self.data = self.own_dir("data")
        self.srv = self.start("--workers", "2", "--task-procs", "16", "--data-dir", self.data)
        self.info = self.srv.request("GET", "/info")[2]["sandbox"]
        if not self.info["user_namespace"]:
            self.skipTest("this machine gives no user namespaces to a user: %s"
                          % self.info["missing"])

    def test_processes_are_bounded_per_task_and_said_once(self):
        self.assertIsNone(self.info["cgroup"], self.info)
        self.assertEqual(self.info["limits"]["processes_by"], "rlimit_nproc_per_task")
        # The summary follows the listening line: the log reader may not
        # have it yet.
        deadline = time.monotonic() + 10
        while (not any("sandbox: tasks run as" in l for l in self.srv.log) and
               time.monotonic() < deadline):
            time.sleep(0.05)
        summary = [l for l in self.srv.log if "sandbox: tasks run as" in l]
        self.assertEqual(len(summary), 1, self.srv.log)
        self.assertIn("processes 16 (RLIMIT_NPROC, per task)", summary[0])
        log = "".join(self.srv.log)
        self.assertNotIn("NOT LIMITED", log)
        self.assertNotIn("processes by", log)
        # Two at once, so that a per-user count would show.
        prog = ("import os, time\nn = 0\nfor i in range(40):\n    try:\n        pid = os.fork()\n"
                "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(3)\n"
                "        os._exit(0)\n    n += 1\nprint(n)\n")
        ids = [self.srv.create_ok("python", prog) for _ in range(2)]
        for tid in ids:
            doc = self.srv.wait_done(tid)
            n = int(doc["result"]["stdout"])
            # 16 with the task itself; the helper and init are not counted.
            self.assertEqual(n, 15, doc)

    def test_a_task_cannot_reach_the_server(self):
        pid = self.srv.proc.pid
        tid = self.srv.create_ok("bin", "#!/bin/sh\necho run\n")
        self.srv.wait_done(tid)
        doc = self.srv.run("bin", "#!/bin/sh\nkill -9 %d; echo x >> %s/tasks.db; ls %s\n"
                           % (pid, self.data, self.data))
        self.assertEqual(doc["status"], "ERROR", doc)
        self.assertEqual(doc["result"]["stdout"], "")
        self.assertTrue(alive(pid))
        self.srv.stop()
        db = sqlite3.connect("file:%s/tasks.db?mode=ro" % self.data, uri=True)
        try:
            self.assertEqual(db.execute("pragma integrity_check").fetchone()[0], "ok")
            self.assertEqual(db.execute("select count(*) from tasks").fetchone()[0], 2)
        finally:
            db.close()


class TasksUser(unittest.TestCase):
    """A root server's tasks run as nobody; nobody's other processes on the
    machine (other servers' tasks) must not keep them from starting."""

    def test_tasks_start_while_their_user_has_many_processes(self):
        if not ROOT or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv")
        srv = Server("--workers", "1")
        try:
            if srv.request("GET", "/info")[2]["sandbox"]["limits"]["processes_by"] != "cgroup":
                self.skipTest("no pids cgroup: RLIMIT_NPROC of the user is the only bound")
            crowd = subprocess.Popen(
                ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "sh",
                 "-c", "for i in $(seq 100); do sleep 4 & done; echo ready; wait"],
                stdout=subprocess.PIPE, text=True, start_new_session=True)
            try:
                self.assertEqual(crowd.stdout.readline(), "ready\n")
                doc = srv.run("bin", "#!/bin/sh\necho started\n")
                self.assertEqual(doc["result"]["stdout"], "started\n", doc)
            finally:
                os.killpg(crowd.pid, signal.SIGKILL)
                crowd.wait()
                crowd.stdout.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
