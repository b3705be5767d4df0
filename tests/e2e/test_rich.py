"""A task's stdin and extra environment (POST /create_task fields `stdin`,
`stdin_base64` and `env`), through the server in its default
configuration (sandbox on, cells, warm Python), then once each with
--python-warm off and with --sandbox off."""

import base64
import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
import unittest
import uuid

from harness import Server, ServerCase, task_doc

PY_ECHO = "import sys\nsys.stdout.write(sys.stdin.read())\n"
PY_HASH = ("import hashlib, sys\n"
           "print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())\n")
PY_ENV = "import os\nprint(os.environ.get('GREETING'), os.environ.get('HOME') != 'x')\n"
SH_ECHO = "#!/bin/sh\ncat\n"
SH_ENV = "#!/bin/sh\necho \"$GREETING\" \"$PATH\"\n"


body = task_doc


class RichCase(ServerCase):

    def ok(self, doc):
        res = self.run_doc(doc)
        self.assertEqual(res["status"], "SUCCESS", res)
        return res["result"]["stdout"]

    def refused(self, doc, *words):
        st, _, res = self.srv.request("POST", "/create_task", doc)
        self.assertEqual(st, 400, res)
        for w in words:
            self.assertIn(w, res["error"])


class Core(object):
    """Checks every server configuration passes."""

    def test_stdin_text_python(self):
        self.assertEqual(self.ok(body("python", PY_ECHO, stdin="héllo\nworld\n")),
                         "héllo\nworld\n")

    def test_stdin_text_bin(self):
        self.assertEqual(self.ok(body("bin", SH_ECHO, stdin="one\ntwo")), "one\ntwo")

    def test_env_python_and_bin(self):
        env = {"GREETING": "hi there", "PATH": "/usr/bin:/bin"}
        self.assertEqual(self.ok(body("python", PY_ENV, env=env)), "hi there True\n")
        self.assertEqual(self.ok(body("bin", SH_ENV, env=env)), "hi there /usr/bin:/bin\n")


class Default(RichCase, Core):

    def test_stdin_base64_binary(self):
        data = bytes(range(256)) * 3 + b"\x00\xff\x00"
        out = self.ok(body("python", PY_HASH, stdin_base64=base64.b64encode(data).decode()))
        self.assertEqual(out.strip(), hashlib.sha256(data).hexdigest())
        # the same bytes read by a bin task
        out = self.ok(body("bin", "#!/bin/sh\nsha256sum\n",
                           stdin_base64=base64.b64encode(data).decode()))
        self.assertEqual(out.split()[0], hashlib.sha256(data).hexdigest())

    def test_no_stdin_is_eof(self):
        prog = "import sys\nprint(repr(sys.stdin.read()))\n"
        self.assertEqual(self.ok(body("python", prog)), "''\n")
        self.assertEqual(self.ok(body("python", prog, stdin="")), "''\n")
        self.assertEqual(self.ok(body("bin", "#!/bin/sh\ncat; echo end\n")), "end\n")

    def test_large_stdin(self):
        data = os.urandom(1 << 20)
        out = self.ok(body("python", PY_HASH, stdin_base64=base64.b64encode(data).decode()))
        self.assertEqual(out.strip(), hashlib.sha256(data).hexdigest())
        text = "x" * (1 << 20)
        out = self.ok(body("bin", "#!/bin/sh\nwc -c\n", stdin=text))
        self.assertEqual(out.strip(), str(1 << 20))

    def test_stdin_is_read_only(self):
        # The task may reopen its stdin, not change it.
        prog = ("import os\n"
                "print(open('/dev/stdin').read())\n"
                "try:\n    os.write(0, b'x'); print('wrote')\n"
                "except OSError: print('refused')\n")
        self.assertEqual(self.ok(body("python", prog, stdin="abc")), "abc\nrefused\n")

    def test_env_cannot_replace_home_and_tmpdir(self):
        prog = "import os\nprint(os.environ['HOME'] == os.environ['TMPDIR'] == os.getcwd())\n"
        self.assertEqual(self.ok(body("python", prog, env={"A": "1"})), "True\n")
        self.refused(body("python", prog, env={"HOME": "/"}), "env.HOME")
        self.refused(body("python", prog, env={"TMPDIR": "/"}), "env.TMPDIR")

    def test_bad_requests(self):
        p = body("python", "pass")
        self.refused(dict(p, stdin="a", stdin_base64="YQ=="), "stdin", "stdin_base64")
        self.refused(dict(p, stdin=3), "stdin")
        self.refused(dict(p, stdin_base64="@@@"), "stdin_base64")
        self.refused(dict(p, env={"1X": "a"}), "env.1X")
        self.refused(dict(p, env={"A=B": "a"}), "env.A=B")
        self.refused(dict(p, env={"": "a"}), "env.")
        self.refused(dict(p, env={"N": 3}), "env.N", "string")
        self.refused(dict(p, env={"N": None}), "env.N")
        self.refused(dict(p, env=["A=1"]), "env", "object")
        self.refused(dict(p, env={"V%d" % i: "" for i in range(65)}), "env", "64")
        self.refused(dict(p, env={"A": "x" * 40000}), "env", "bytes")
        # the same name twice
        raw = '{"type":"python","file":"pass","env":{"A":"1","A":"2"}}'
        st, _, res = self.srv.request("POST", "/create_task", raw)
        self.assertEqual(st, 400, res)
        self.assertIn("env.A", res["error"])

    def test_many_env_vars_and_old_requests(self):
        env = {"V%d" % i: str(i) for i in range(64)}
        prog = "import os\nprint(sum(int(os.environ['V%d' % i]) for i in range(64)))\n"
        self.assertEqual(self.ok(body("python", prog, env=env)), "2016\n")
        # the seed's request shape is unchanged
        self.assertEqual(self.ok(body("bin", "#!/bin/sh\necho \"$@\"\n", args=["a", "b"])),
                         "a b\n")

    def test_stdin_counts_against_max_body(self):
        srv = Server("--max-body", "64K")
        try:
            st, _, res = srv.request("POST", "/create_task",
                                     body("python", PY_ECHO, stdin="y" * 100000))
            self.assertEqual(st, 413, res)
        finally:
            srv.stop()


class Journal(unittest.TestCase):
    """With --data-dir, a waiting task keeps its stdin and env across a
    restart, and a journal of the format before them is upgraded."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ts-rich-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_waiting_task_keeps_stdin_and_env(self):
        srv = Server("--data-dir", self.data, "--workers", "1", "--shutdown-grace", "0")
        try:
            blocker = srv.create_ok("bin", "sleep 60")
            deadline = time.monotonic() + 30
            while srv.status(blocker)[2]["status"] != "RUNNING":
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            prog = "import os, sys\nprint(sys.stdin.read(), os.environ['GREETING'])\n"
            st, _, res = srv.request("POST", "/create_task",
                                     body("python", prog, stdin="kept", env={"GREETING": "hi"}))
            self.assertEqual(st, 200, res)
        finally:
            srv.stop()
        srv = Server("--data-dir", self.data)
        try:
            doc = srv.wait_done(res["id"])
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"], "kept hi\n")
        finally:
            srv.stop()

    def test_format_1_journal_is_upgraded(self):
        os.makedirs(self.data, mode=0o700)
        path = os.path.join(self.data, "tasks.db")
        db = sqlite3.connect(path)
        db.executescript(
            "CREATE TABLE tasks (id BLOB NOT NULL UNIQUE, type TEXT NOT NULL,"
            " status TEXT NOT NULL, created_us INTEGER NOT NULL, attempts INTEGER NOT NULL,"
            " started_us INTEGER, finished_us INTEGER, stdout_total INTEGER,"
            " stdout_truncated INTEGER, stderr_total INTEGER, stderr_truncated INTEGER,"
            " exit_code INTEGER, signal INTEGER, timed_out INTEGER, cpu_us INTEGER,"
            " error TEXT, args BLOB, file BLOB, stdout BLOB, stderr BLOB);"
            "PRAGMA application_id = 1414744652; PRAGMA user_version = 1;")
        tid = uuid.uuid4()
        db.execute("INSERT INTO tasks(id, type, status, created_us, attempts, args, file)"
                   " VALUES(?, 'bin', 'WAIT', ?, 0, NULL, ?)",
                   (tid.bytes, int(time.time() * 1e6), b"#!/bin/sh\necho old; cat\n"))
        db.commit()
        db.close()
        srv = Server("--data-dir", self.data)
        try:
            doc = srv.wait_done(str(tid))
            self.assertEqual(doc["result"]["stdout"], "old\n", doc)
        finally:
            srv.stop()
        db = sqlite3.connect(path)
        # upgraded to the current format (4: files, cancelled and limits)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 5)
        db.close()


class WarmOff(RichCase, Core):
    extra = ("--python-warm", "off")


class PerTask(RichCase, Core):
    extra = ("--sandbox-cell", "off")


class SandboxOff(RichCase, Core):
    extra = ("--sandbox", "off")


if __name__ == "__main__":
    unittest.main()
