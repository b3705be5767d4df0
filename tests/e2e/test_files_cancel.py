"""The `files` field of POST /create_task (extra files in the task's
directory) and POST /cancel_task, through the server in its default
configuration (sandbox on, cells, warm Python); files once more with
--sandbox off and --python-warm off, cancel with --sandbox off (where the
test can see the task's processes) and across a restart with --data-dir."""

import base64
import hashlib
import os
import pwd
import shutil
import sqlite3
import tempfile
import threading
import time
import unittest
import uuid

from harness import BUILD_DIR, SERVER_BIN, Server, ServerCase, b64, procs_with, task_doc


body = task_doc


def entry(name, content):
    return {"name": name, "content": b64(content)}


PY_IMPORTS = ("import util\nfrom pkg import mod\n"
              "print(util.greet('files'), mod.VALUE)\n")
PY_FILES = [entry("util.py", "def greet(w):\n    return 'hello ' + w\n"),
            entry("pkg/mod.py", "VALUE = 42\n")]
SH_READ = "#!/bin/sh\ncat data.txt sub/dir/more.txt\n"
SH_FILES = [entry("data.txt", "one\n"), entry("sub/dir/more.txt", "two\n")]


class Case(ServerCase):
    def submit(self, doc, srv=None):
        st, _, res = (srv or self.srv).request("POST", "/create_task", doc)
        self.assertEqual(st, 200, res)
        return res["id"]

    def ok(self, doc):
        res = self.srv.wait_done(self.submit(doc), timeout=60)
        self.assertEqual(res["status"], "SUCCESS", res)
        return res["result"]["stdout"]

    def refused(self, doc, *words, srv=None):
        st, _, res = (srv or self.srv).request("POST", "/create_task", doc)
        self.assertEqual(st, 400, res)
        for w in words:
            self.assertIn(w, res["error"])


class FilesCore(object):
    """What every configuration must do with `files`."""

    def test_python_imports_its_files(self):
        self.assertEqual(self.ok(body("python", PY_IMPORTS, files=PY_FILES)),
                         "hello files 42\n")

    def test_bin_reads_its_files(self):
        self.assertEqual(self.ok(body("bin", SH_READ, files=SH_FILES)), "one\ntwo\n")

    def test_binary_content(self):
        data = bytes(range(256)) * 4 + b"\x00\xff"
        out = self.ok(body("bin", "#!/bin/sh\nsha256sum blob.bin\n",
                           files=[entry("blob.bin", data)]))
        self.assertEqual(out.split()[0], hashlib.sha256(data).hexdigest())

    def test_next_task_does_not_see_them(self):
        self.ok(body("bin", SH_READ, files=SH_FILES))
        prog = "#!/bin/sh\nls -A\n"
        for _ in range(3):  # whichever worker takes it
            self.assertEqual(self.ok(body("bin", prog)), "program\n")


class FilesDefault(Case, FilesCore):

    def test_bad_names(self):
        p = body("python", "pass")
        cases = [("", "is empty"), ("/etc/x", "absolute"), ("../x", ".."),
                 ("a/../b", ".."), ("a//b", "empty component"), ("a/", "empty component"),
                 ("./a", "'.'"), ("main.py", "program"), ("main.py/x", "program"),
                 ("x" * 300, "longer")]
        for name, word in cases:
            files = [entry("first.txt", "x"), entry(name, "y")]
            self.refused(dict(p, files=files), "files[1].name", word)
        self.refused(dict(body("bin", "#!/bin/sh\n"), files=[entry("program", "x")]),
                     "files[0].name", "program")
        # NUL in a name: cJSON would cut the name short
        raw = ('{"type":"python","file":"pass","files":[{"name":"a","content":""},'
               '{"name":"b\\u0000c","content":""}]}')
        st, _, res = self.srv.request("POST", "/create_task", raw)
        self.assertEqual(st, 400, res)
        self.assertIn("files[1]", res["error"])

    def test_bad_entries(self):
        p = body("python", "pass")
        self.refused(dict(p, files=[{"name": "a", "content": "@@@"}]),
                     "files[0].content is not base64")
        self.refused(dict(p, files=[{"name": "a"}]), "files[0].content")
        self.refused(dict(p, files=[{"content": ""}]), "files[0].name")
        self.refused(dict(p, files=[{"name": 3, "content": ""}]), "files[0].name")
        self.refused(dict(p, files=["a"]), "files[0]")
        self.refused(dict(p, files={"a": ""}), "files")

    def test_duplicates(self):
        p = body("python", "pass")
        self.refused(dict(p, files=[entry("a", "1"), entry("b", "2"), entry("a", "3")]),
                     "files[2].name", "twice")
        self.refused(dict(p, files=[entry("a", "1"), entry("a/b", "2")]),
                     "files[1].name", "directory")

    def test_count_limit(self):
        p = body("bin", "#!/bin/sh\nls | wc -l\n")
        self.refused(dict(p, files=[entry("f%d" % i, "") for i in range(257)]),
                     "files", "256")
        self.assertEqual(self.ok(dict(p, files=[entry("f%d" % i, "")
                                                for i in range(256)])).strip(), "257")

    def test_task_disk(self):
        srv = Server("--task-disk", "1M")
        try:
            big = [entry("a.bin", b"\0" * 600000), entry("b.bin", b"\0" * 600000)]
            self.refused(body("bin", "#!/bin/sh\n", files=big), "files", "--task-disk",
                         srv=srv)
            doc = srv.wait_done(self.submit(body("bin", "#!/bin/sh\nwc -c a.bin\n",
                                                 files=big[:1]), srv=srv))
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"].split()[0], "600000")
        finally:
            srv.stop()


class FilesPlain(Case, FilesCore):
    extra = ("--sandbox", "off", "--python-warm", "off")


class FilesColdPython(Case, FilesCore):
    extra = ("--python-warm", "off")


class FilesPerTask(Case, FilesCore):
    extra = ("--sandbox-cell", "off")


class FilesNoNamespaces(Case, FilesCore):
    """Root without namespaces (tests/no_namespaces refuses them): the
    sandbox hands the task's user the directory itself, subdirectories
    included, instead of a copy."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: without namespaces a server that is not "
                                    "root refuses tasks")
        cls.tmp = tempfile.mkdtemp(prefix="ts-fc-nons-")
        wrapper = os.path.join(cls.tmp, "run")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s %s \"$@\"\n"
                    % (os.path.join(BUILD_DIR, "tests", "no_namespaces"), SERVER_BIN))
        os.chmod(wrapper, 0o755)
        cls.srv = Server("--workers", "2", binary=wrapper)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_the_task_user_owns_them(self):
        out = self.ok(body("bin", "#!/bin/sh\nstat -c '%u %a %n' sub sub/dir sub/dir/more.txt\n",
                           files=SH_FILES))
        uid = pwd.getpwnam("nobody").pw_uid  # the default --run-as
        self.assertEqual(out, "%d 700 sub\n%d 700 sub/dir\n%d 600 sub/dir/more.txt\n"
                         % (uid, uid, uid))


def cancel(srv, task_id):
    return srv.request("POST", "/cancel_task", {"id": task_id})


# Starts a background child that outlives its parent's wait and ticks.
SH_BACKGROUND = ("#!/bin/sh\n"
                 "(while :; do echo tick >> \"${TICKS:-/dev/null}\"; sleep %s; done) &\n"
                 "echo started\n"
                 "sleep 300\n")


class CancelCase(Case):

    def running(self, doc):
        task_id = self.submit(doc)
        self.srv.wait_status(task_id, "RUNNING")
        return task_id

    def assert_cancelled(self, doc):
        self.assertEqual(doc["status"], "ERROR", doc)
        self.assertEqual(doc["error"], "cancelled", doc)
        self.assertIs(doc["result"]["cancelled"], True, doc)

    def test_cancel_running_kills_background_child(self):
        marker = "%d.%03d" % (7000 + os.getpid() % 1000, 17)
        task_id = self.running(body("bin", SH_BACKGROUND % marker))
        deadline = time.monotonic() + 30
        while not procs_with(marker):
            self.assertLess(time.monotonic(), deadline, "the background child never ran")
            time.sleep(0.05)
        t0 = time.monotonic()
        st, _, doc = cancel(self.srv, task_id)
        self.assertEqual(st, 200, doc)
        self.assertLess(time.monotonic() - t0, 10)
        self.assert_cancelled(doc)
        self.assertEqual(doc["result"]["stdout"], "started\n")
        deadline = time.monotonic() + 10
        while procs_with(marker):
            self.assertLess(time.monotonic(), deadline, "the background child survived")
            time.sleep(0.05)
        # GET answers the same, and the workers go on
        self.assert_cancelled(self.srv.status(task_id)[2])
        self.assertEqual(self.ok(body("bin", "#!/bin/sh\necho next\n")), "next\n")

    def test_cancel_running_python(self):
        prog = "import time\nprint('begun', flush=True)\ntime.sleep(300)\n"
        task_id = self.running(body("python", prog))
        time.sleep(1)  # into its sleep, most likely; cancelled either way
        st, _, doc = cancel(self.srv, task_id)
        self.assertEqual(st, 200, doc)
        self.assert_cancelled(doc)

    def test_cancel_waiting(self):
        sleepers = [self.running(body("bin", "#!/bin/sh\nsleep 300\n")) for _ in range(2)]
        try:
            waiting = self.submit(body("bin", "#!/bin/sh\necho ran\n"))
            self.assertEqual(self.srv.status(waiting)[2]["status"], "WAIT")
            st, _, doc = cancel(self.srv, waiting)
            self.assertEqual(st, 200, doc)
            self.assert_cancelled(doc)
            self.assertEqual(doc["attempts"], 0, doc)
            self.assertEqual(doc["result"]["stdout"], "", doc)
        finally:
            for s in sleepers:
                st, _, doc = cancel(self.srv, s)
                self.assertEqual(st, 200, doc)
                self.assert_cancelled(doc)
        # freed workers never run it
        self.ok(body("bin", "#!/bin/sh\ntrue\n"))
        doc = self.srv.status(waiting)[2]
        self.assert_cancelled(doc)
        self.assertEqual(doc["attempts"], 0, doc)

    def test_cancel_tests_task_keeps_its_results(self):
        prog = "#!/bin/sh\nread w\n[ \"$w\" = slow ] && sleep 300\necho \"$w\"\n"
        task_id = self.running({"type": "bin", "file": b64(prog), "tests": [
            {"stdin": "one\n", "expected_output": "one\n"},
            {"stdin": "slow\n", "expected_output": "slow\n"},
            {"stdin": "three\n", "expected_output": "three\n"}]})
        # A trivial first test ends in milliseconds; 2 s leaves room for a
        # loaded machine before the slow one is cancelled.
        time.sleep(2)
        st, _, doc = cancel(self.srv, task_id)
        self.assertEqual(st, 200, doc)
        self.assert_cancelled(doc)
        tests = doc["result"]["tests"]
        self.assertEqual(len(tests), 3, doc)
        self.assertIs(tests[0]["passed"], True, doc)
        self.assertEqual(tests[0]["stdout"], "one\n", doc)
        self.assertIs(tests[1]["passed"], False, doc)
        self.assertIs(tests[2]["skipped"], True, doc)
        self.assert_cancelled(self.srv.status(task_id)[2])

    def test_long_poll_and_stream_end_at_cancel(self):
        task_id = self.running(body("bin", "#!/bin/sh\necho out; sleep 300\n"))
        got = {}

        def poll():
            got["poll"] = self.srv.status(task_id, wait=60)[2]

        def stream():
            got["stream"] = self.srv.request("GET", "/stream?id=" + task_id, timeout=60)[2]

        threads = [threading.Thread(target=poll), threading.Thread(target=stream)]
        for th in threads:
            th.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        st, _, doc = self.srv.request("POST", "/cancel_task?id=" + task_id)
        self.assertEqual(st, 200, doc)
        for th in threads:
            th.join(30)
        self.assertLess(time.monotonic() - t0, 20)
        self.assert_cancelled(got["poll"])
        self.assertEqual(got["stream"], b"out\n")

    def test_final_unknown_and_method(self):
        task_id = self.submit(body("bin", "#!/bin/sh\necho done\n"))
        self.srv.wait_done(task_id)
        st, _, doc = cancel(self.srv, task_id)
        self.assertEqual(st, 409, doc)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        self.assertIn("error", doc)
        self.assertEqual(self.srv.status(task_id)[2]["status"], "SUCCESS")
        st, _, doc = cancel(self.srv, "00000000-0000-4000-8000-000000000000")
        self.assertEqual(st, 404, doc)
        st, _, doc = cancel(self.srv, "not-a-uuid")
        self.assertEqual(st, 404, doc)
        st, _, doc = self.srv.request("GET", "/cancel_task?id=" + task_id)
        self.assertEqual(st, 405, doc)
        st, _, doc = self.srv.request("POST", "/cancel_task", "")
        self.assertEqual(st, 400, doc)
        self.assertIn("error", doc)
        st, _, doc = self.srv.request("POST", "/cancel_task", {"id": 3})
        self.assertEqual(st, 400, doc)


class CancelPerTask(CancelCase):
    """The per-task sandbox: the cgroup and the process group."""

    extra = ("--sandbox-cell", "off")


class CancelPlain(CancelCase):
    """Without the sandbox the test sees the task's files: the background
    child stops writing."""

    extra = ("--sandbox", "off")

    def test_background_child_stops_writing(self):
        tmp = tempfile.mkdtemp(prefix="ts-fc-")
        try:
            ticks = os.path.join(tmp, "ticks")
            doc = body("bin", SH_BACKGROUND % "0.05", env={"TICKS": ticks})
            task_id = self.running(doc)
            deadline = time.monotonic() + 30
            while not os.path.exists(ticks) or os.path.getsize(ticks) < 10:
                self.assertLess(time.monotonic(), deadline, "no ticks")
                time.sleep(0.05)
            st, _, res = cancel(self.srv, task_id)
            self.assertEqual(st, 200, res)
            self.assert_cancelled(res)
            time.sleep(0.3)
            size = os.path.getsize(ticks)
            time.sleep(1)
            self.assertEqual(os.path.getsize(ticks), size, "the child still writes")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class Journal(unittest.TestCase):
    """With --data-dir, a waiting task keeps its files and its limits
    across a restart, and a cancelled one stays cancelled."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ts-fc-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *extra):
        return Server("--data-dir", self.data, "--workers", "1", "--shutdown-grace", "0",
                      *extra)

    def blocked(self, srv):
        """Fills the one worker; returns the blocker's id."""
        blocker = srv.create_ok("bin", "sleep 60")
        srv.wait_status(blocker, "RUNNING")
        return blocker

    def test_waiting_task_keeps_its_files(self):
        srv = self.start()
        try:
            self.blocked(srv)
            st, _, res = srv.request("POST", "/create_task",
                                     body("python", PY_IMPORTS, files=PY_FILES))
            self.assertEqual(st, 200, res)
        finally:
            srv.stop()
        srv = self.start()
        try:
            doc = srv.wait_done(res["id"])
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"], "hello files 42\n")
        finally:
            srv.stop()

    def test_waiting_task_keeps_its_limits(self):
        srv = self.start()
        try:
            self.blocked(srv)
            ids = []
            for doc in (body("bin", "#!/bin/sh\nsleep 120\n", limits={"timeout": 1}),
                        body("python", "print('x' * 100)", limits={"output": 10}),
                        body("bin", "#!/bin/sh\necho plain\n")):
                st, _, res = srv.request("POST", "/create_task", doc)
                self.assertEqual(st, 200, res)
                ids.append(res["id"])
        finally:
            srv.stop()
        db = sqlite3.connect(os.path.join(self.data, "tasks.db"))
        kept = [row[0] for row in
                db.execute("SELECT limits FROM tasks WHERE status = 'WAIT' ORDER BY rowid")]
        db.close()
        self.assertEqual(kept, ['{"timeout":1}', '{"output":10}', None])
        srv = self.start()
        try:
            t0 = time.monotonic()
            doc = srv.wait_done(ids[0])
            self.assertEqual(doc["status"], "ERROR", doc)
            self.assertIs(doc["result"]["timed_out"], True, doc)
            self.assertEqual(doc["result"]["limit"], "timeout", doc)
            self.assertLess(time.monotonic() - t0, 60)
            doc = srv.wait_done(ids[1])
            self.assertEqual(doc["result"]["stdout"], "x" * 10, doc)
            self.assertIs(doc["result"]["stdout_truncated"], True, doc)
            doc = srv.wait_done(ids[2])
            self.assertEqual(doc["result"]["stdout"], "plain\n", doc)
        finally:
            srv.stop()
        # a finished task's limits are not kept: they served their run
        db = sqlite3.connect(os.path.join(self.data, "tasks.db"))
        self.assertEqual(db.execute("SELECT count(*) FROM tasks WHERE limits IS NOT NULL")
                         .fetchone()[0], 0)
        db.close()

    def test_format_2_journal_is_upgraded(self):
        os.makedirs(self.data, mode=0o700)
        path = os.path.join(self.data, "tasks.db")
        db = sqlite3.connect(path)
        db.executescript(
            "CREATE TABLE tasks (id BLOB NOT NULL UNIQUE, type TEXT NOT NULL,"
            " status TEXT NOT NULL, created_us INTEGER NOT NULL, attempts INTEGER NOT NULL,"
            " started_us INTEGER, finished_us INTEGER, stdout_total INTEGER,"
            " stdout_truncated INTEGER, stderr_total INTEGER, stderr_truncated INTEGER,"
            " exit_code INTEGER, signal INTEGER, timed_out INTEGER, cpu_us INTEGER,"
            " error TEXT, args BLOB, file BLOB, stdout BLOB, stderr BLOB, stdin BLOB, env BLOB);"
            "PRAGMA application_id = 1414744652; PRAGMA user_version = 2;")
        tid = uuid.uuid4()
        db.execute("INSERT INTO tasks(id, type, status, created_us, attempts, args, file, stdin)"
                   " VALUES(?, 'bin', 'WAIT', ?, 0, NULL, ?, ?)",
                   (tid.bytes, int(time.time() * 1e6), b"#!/bin/sh\necho old; cat\n", b"in"))
        db.commit()
        db.close()
        srv = self.start()
        try:
            doc = srv.wait_done(str(tid))
            self.assertEqual(doc["result"]["stdout"], "old\nin", doc)
            self.assertIs(doc["result"]["cancelled"], False, doc)
        finally:
            srv.stop()
        db = sqlite3.connect(path)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 5)
        db.close()

    def test_finished_result_is_whole_after_a_restart(self):
        srv = self.start()
        try:
            docs = {}
            for doc in (task_doc("c", "int main(void) { return undeclared_thing; }\n"),
                        task_doc("python", "a = []\nwhile True:\n    a.append(b'x' * (1 << 20))\n",
                                 limits={"memory": 32 << 20})):
                st, _, res = srv.request("POST", "/create_task", doc)
                self.assertEqual(st, 200, res)
                docs[res["id"]] = srv.wait_done(res["id"])
        finally:
            srv.stop()
        compiled = [d for d in docs.values() if d["type"] == "c"][0]
        self.assertIn("undeclared_thing", compiled["result"]["compile_output"])
        srv = self.start()
        try:
            for task_id, before in docs.items():
                self.assertEqual(srv.status(task_id)[2], before)
        finally:
            srv.stop()

    def test_cancelled_stays_cancelled(self):
        srv = self.start()
        try:
            blocker = self.blocked(srv)
            waiting = srv.create_ok("bin", "#!/bin/sh\necho ran\n")
            for task_id in (waiting, blocker):
                st, _, doc = cancel(srv, task_id)
                self.assertEqual(st, 200, doc)
                self.assertIs(doc["result"]["cancelled"], True, doc)
        finally:
            srv.stop()
        srv = self.start()
        try:
            for task_id in (waiting, blocker):
                doc = srv.status(task_id)[2]
                self.assertEqual(doc["status"], "ERROR", doc)
                self.assertEqual(doc["error"], "cancelled", doc)
                self.assertIs(doc["result"]["cancelled"], True, doc)
            self.assertEqual(srv.status(waiting)[2]["attempts"], 0)
            st, _, doc = cancel(srv, waiting)
            self.assertEqual(st, 409, doc)
            self.assertEqual(srv.request("GET", "/get_task_count")[2]["tasks"], 0)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
