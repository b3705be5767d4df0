"""End-to-end tests of the tasksolver API against the real binary."""

import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (SERVER_BIN, Server, children_of, fd_count, is_cell, pids_with_arg,
                     said_lines)

TS_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?Z$")


class UpstreamCases(unittest.TestCase):
    """The cases of the upstream implementation, plus the status shape."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--workers", "2")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_bin_without_shebang_runs_through_sh(self):
        doc = self.srv.run("bin", "echo Hello, world!")
        self.assertEqual(doc["status"], "SUCCESS")
        self.assertEqual(doc["result"]["stdout"], "Hello, world!\n")
        self.assertEqual(doc["result"]["exit_code"], 0)

    def test_two_line_script_failing_on_line_two(self):
        doc = self.srv.run("bin", "echo first line\nls /definitely/not/here\n")
        self.assertEqual(doc["status"], "ERROR")
        self.assertEqual(doc["result"]["stdout"], "first line\n")
        self.assertIn("/definitely/not/here", doc["result"]["stderr"])
        self.assertNotEqual(doc["result"]["exit_code"], 0)
        self.assertIn("exit", doc["error"])

    def test_unknown_command(self):
        doc = self.srv.run("bin", "no_such_command_xyz")
        self.assertEqual(doc["status"], "ERROR")
        self.assertIn("not found", doc["result"]["stderr"])
        self.assertEqual(doc["result"]["exit_code"], 127)

    def test_python_print(self):
        doc = self.srv.run("python", 'print("Hello from python")')
        self.assertEqual(doc["status"], "SUCCESS")
        self.assertEqual(doc["result"]["stdout"], "Hello from python\n")

    def test_python_loop(self):
        doc = self.srv.run("python", "for i in range(5):\n    print(i * i)\n")
        self.assertEqual(doc["result"]["stdout"], "0\n1\n4\n9\n16\n")

    def test_python_zero_division(self):
        doc = self.srv.run("python", "print('before')\nprint(1/0)\n")
        self.assertEqual(doc["status"], "ERROR")
        self.assertEqual(doc["result"]["stdout"], "before\n")
        self.assertIn("ZeroDivisionError", doc["result"]["stderr"])
        self.assertEqual(doc["result"]["exit_code"], 1)

    def test_python_argv_from_array(self):
        doc = self.srv.run("python", "import sys\nprint(sys.argv[1:])",
                           args=["a b", "c", "$HOME"])
        self.assertEqual(doc["result"]["stdout"], "['a b', 'c', '$HOME']\n")

    def test_python_argv_from_string_is_split_like_a_shell(self):
        doc = self.srv.run("python", "import sys\nprint(sys.argv[1:])",
                           args="one 'two three' \"fo\\\"ur\" five\\ six $HOME *")
        self.assertEqual(doc["result"]["stdout"],
                         "['one', 'two three', 'fo\"ur', 'five six', '$HOME', '*']\n")

    def test_python_source_as_plain_text(self):
        st, body = self.srv.create("python", "print(6*7)", encode=False)
        self.assertEqual(st, 200, body)
        doc = self.srv.wait_done(body["id"])
        self.assertEqual(doc["result"]["stdout"], "42\n")

    def test_python_plain_text_that_is_also_valid_base64(self):
        # "pass" is valid base64 for 3 bytes of garbage: still run as code.
        st, body = self.srv.create("python", "pass", encode=False)
        self.assertEqual(st, 200, body)
        self.assertEqual(self.srv.wait_done(body["id"])["status"], "SUCCESS")

    def test_status_shape_and_timestamps(self):
        # 5 s: a loaded machine has taken over 2 s between two requests.
        tid = self.srv.create_ok("python", "import time; time.sleep(5); print('x')")
        st, _, doc = self.srv.status(tid)
        self.assertEqual(st, 200)
        self.assertIn(doc["status"], ("WAIT", "RUNNING"))
        self.assertTrue(TS_RE.match(doc["meta"]["created_at"]), doc)
        self.assertNotIn("finished_at", doc["meta"])
        if doc["status"] == "WAIT":
            self.assertNotIn("started_at", doc["meta"])
        doc = self.srv.wait_done(tid)
        meta = doc["meta"]
        for key in ("created_at", "started_at", "finished_at"):
            self.assertTrue(TS_RE.match(meta[key]), meta)
        self.assertLessEqual(meta["created_at"], meta["started_at"])
        self.assertLessEqual(meta["started_at"], meta["finished_at"])
        self.assertEqual(doc["result"]["stdout"], "x\n")

    def test_status_with_json_body_as_in_the_seed(self):
        tid = self.srv.create_ok("bin", "echo body")
        self.srv.wait_done(tid)
        st, _, doc = self.srv.request("GET", "/get_status", {"id": tid})
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["result"]["stdout"], "body\n")

    def test_unknown_id(self):
        st, _, doc = self.srv.status("fb85a3a0-7e7f-4a20-8ced-65b3b2475144")
        self.assertEqual(st, 404)
        self.assertEqual(doc["status"], "NOTEXIST")
        self.assertIn("no task", doc["error"])
        st, _, doc = self.srv.status("not-a-uuid")
        self.assertEqual(st, 404)

    def test_long_poll_returns_when_the_task_ends(self):
        tid = self.srv.create_ok("python", "import time; time.sleep(1)")
        t0 = time.monotonic()
        st, _, doc = self.srv.status(tid, wait=20)
        took = time.monotonic() - t0
        self.assertEqual(doc["status"], "SUCCESS")
        self.assertLess(took, 10)

    def test_long_poll_times_out_with_the_current_status(self):
        tid = self.srv.create_ok("python", "import time; time.sleep(5)")
        t0 = time.monotonic()
        st, _, doc = self.srv.status(tid, wait=0.5)
        took = time.monotonic() - t0
        self.assertIn(doc["status"], ("WAIT", "RUNNING"))
        self.assertGreaterEqual(took, 0.4)
        self.assertLess(took, 4)

    def test_create_with_wait_answers_the_result(self):
        """POST /create_task?wait=S: one exchange for a client that wants
        the result; the answer is the status document, id included."""
        src = base64.b64encode(b"import time; time.sleep(0.3); print('hi')").decode()
        st, _, doc = self.srv.request("POST", "/create_task?wait=20",
                                      {"type": "python", "file": src}, timeout=60)
        self.assertEqual(st, 200, doc)
        self.assertEqual((doc["status"], doc["result"]["stdout"]), ("SUCCESS", "hi\n"), doc)
        self.assertEqual(self.srv.status(doc["id"])[2]["status"], "SUCCESS")
        # A wait that runs out answers the current status, as get_status does.
        src = base64.b64encode(b"import time; time.sleep(5)").decode()
        st, _, doc = self.srv.request("POST", "/create_task?wait=0",
                                      {"type": "python", "file": src})
        self.assertEqual(st, 200, doc)
        self.assertIn(doc["status"], ("WAIT", "RUNNING"))
        self.assertEqual(self.srv.status(doc["id"])[2]["id"], doc["id"])

    def test_binary_output_stays_valid_json(self):
        doc = self.srv.run("bin", "#!/bin/sh\nprintf 'a\\377b\\000c\\342\\202'\n")
        out = doc["result"]["stdout"]
        self.assertEqual(out, "a\ufffdb\x00c\ufffd")

    def test_descendants_do_not_outlive_the_task(self):
        # In the sandbox $! is a pid of the task's own PID namespace, so the
        # child is found by a unique argument.
        mark = "300.%d" % os.getpid()
        doc = self.srv.run("bin", "#!/bin/sh\nsleep %s &\necho $!\n" % mark)
        self.assertEqual(doc["status"], "SUCCESS")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pids_with_arg(mark):
            time.sleep(0.05)
        self.assertEqual(pids_with_arg(mark), [], "background child survived")

    def test_stdin_is_empty(self):
        doc = self.srv.run("bin", "#!/bin/sh\ncat; echo done\n", )
        self.assertEqual(doc["result"]["stdout"], "done\n")

    def test_sigpipe_default_inside_tasks(self):
        doc = self.srv.run("bin", "#!/bin/sh\nyes | head -n 2\n")
        self.assertEqual(doc["status"], "SUCCESS")
        self.assertEqual(doc["result"]["stdout"], "y\ny\n")

    def test_killed_by_signal(self):
        doc = self.srv.run("bin", "#!/bin/sh\nkill -9 $$\n")
        self.assertEqual(doc["status"], "ERROR")
        self.assertEqual(doc["result"]["signal"], 9)
        self.assertIsNone(doc["result"]["exit_code"])
        self.assertIn("signal 9", doc["error"])

    def test_real_elf_binary(self):
        with open("/bin/echo", "rb") as f:
            exe = f.read()
        doc = self.srv.run("bin", exe, args=["from", "elf"])
        self.assertEqual(doc["result"]["stdout"], "from elf\n")

    def test_task_count_shape(self):
        st, _, doc = self.srv.request("GET", "/get_task_count")
        self.assertEqual(st, 200)
        self.assertIsInstance(doc["tasks"], int)
        self.assertEqual(doc["workers"], 2)


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--max-body", "4096")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def post(self, body, **kw):
        return self.srv.request("POST", "/create_task", body, **kw)

    def assertError(self, resp, status, *words):
        st, hdrs, doc = resp
        self.assertEqual(st, status, doc)
        self.assertTrue(hdrs["content-type"].startswith("application/json"))
        for w in words:
            self.assertIn(w, doc["error"])

    def test_malformed_json(self):
        self.assertError(self.post('{"type": "bin", '), 400, "JSON")
        self.assertError(self.post('{"type":"bin"} trailing'), 400, "after")
        self.assertError(self.post(''), 400, "empty")
        self.assertError(self.post('[1,2]'), 400, "object")

    def test_fields(self):
        self.assertError(self.post({"file": "ZWNobw=="}), 400, "'type'")
        self.assertError(self.post({"type": 5, "file": "ZWNobw=="}), 400, "'type'")
        self.assertError(self.post({"type": "ruby", "file": "ZWNobw=="}), 400, "ruby")
        self.assertError(self.post({"type": "bin"}), 400, "'file'")
        self.assertError(self.post({"type": "bin", "file": 12}), 400, "'file'")
        self.assertError(self.post({"type": "bin", "file": "%%%not base64"}), 400, "base64")
        self.assertError(self.post({"type": "bin", "file": ""}), 400, "empty")
        self.assertError(self.post({"type": "bin", "file": "ZWNobw==", "args": 3}), 400, "'args'")
        self.assertError(self.post({"type": "bin", "file": "ZWNobw==", "args": ["a", 1]}), 400,
                         "element 1")
        self.assertError(self.post({"type": "bin", "file": "ZWNobw==", "args": "'open"}), 400,
                         "quote")

    def test_body_too_large(self):
        self.assertError(self.post({"type": "bin", "file": "A" * 8000}), 413, "4096")
        # The server is still fine afterwards.
        st, _, _ = self.srv.request("GET", "/get_task_count")
        self.assertEqual(st, 200)

    def test_wrong_method_and_unknown_route(self):
        st, hdrs, doc = self.srv.request("GET", "/create_task")
        self.assertEqual(st, 405)
        self.assertEqual(hdrs["allow"], "POST")
        self.assertIn("error", doc)
        self.assertError(self.srv.request("POST", "/get_status", "{}"), 405, "GET")
        self.assertError(self.srv.request("GET", "/nope"), 404, "/nope")

    def test_unknown_route_lists_every_module_route(self):
        # Each module adds its routes and their line; the 404 names them
        # all, in the order the task API then cluster mode add them.
        st, _, doc = self.srv.request("DELETE", "/nope/deeper")
        self.assertEqual(st, 404)
        self.assertEqual(doc["error"],
                         "no route DELETE /nope/deeper; routes: POST /create_task, "
                         "GET /get_status, GET /get_task_count, GET /stream, POST /cancel_task, "
                         "GET /info, GET /languages, "
                         "POST /submit, GET /job/ID, GET /jobs, POST /worker, GET /workers, "
                         "POST /compute")

    def test_status_without_id(self):
        self.assertError(self.srv.request("GET", "/get_status"), 400, "id")
        self.assertError(self.srv.request("GET", "/get_status", '{"id": 5}'), 400, "'id'")
        self.assertError(self.srv.request("GET", "/get_status?id=x&wait=abc"), 400, "wait")
        # A bad wait on create is refused before anything is created.
        before = self.srv.request("GET", "/get_task_count")[2]["tasks"]
        self.assertError(self.srv.request("POST", "/create_task?wait=-1",
                                          {"type": "python", "file": "cHJpbnQoMSk="}), 400, "wait")
        self.assertEqual(self.srv.request("GET", "/get_task_count")[2]["tasks"], before)

    def test_garbage_does_not_kill_the_server(self):
        for payload in (b"\x00\xff" * 100, b"GET / HTTP/1.1\r\n" * 3, b"{" * 2000,
                        b"\r\n\r\n", b"POST /create_task HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
            with socket.create_connection((self.srv.host, self.srv.port), timeout=5) as s:
                s.sendall(payload)
                try:
                    s.recv(4096)
                except (socket.timeout, ConnectionError):
                    pass
        st, _, _ = self.srv.request("GET", "/get_task_count")
        self.assertEqual(st, 200)
        self.assertIsNone(self.srv.proc.poll())


class Limits(unittest.TestCase):
    def test_timeout_kills_the_task(self):
        srv = Server("--task-timeout", "1")
        try:
            t0 = time.monotonic()
            doc = srv.run("bin", "#!/bin/sh\necho start\nsleep 30\n")
            self.assertLess(time.monotonic() - t0, 15)
            self.assertEqual(doc["status"], "ERROR")
            self.assertTrue(doc["result"]["timed_out"])
            self.assertEqual(doc["result"]["stdout"], "start\n")
            self.assertIn("timed out", doc["error"])
        finally:
            srv.stop()

    def test_output_floods_are_capped_on_both_streams(self):
        srv = Server("--max-output", "65536")
        try:
            doc = srv.run("python", "import sys\n"
                          "for i in range(200):\n"
                          "    sys.stdout.write('o' * 25000)\n"
                          "    sys.stderr.write('e' * 25000)\n")
            r = doc["result"]
            self.assertEqual(doc["status"], "SUCCESS")
            self.assertEqual(len(r["stdout"]), 65536)
            self.assertEqual(len(r["stderr"]), 65536)
            self.assertTrue(r["stdout_truncated"])
            self.assertTrue(r["stderr_truncated"])
            self.assertEqual(r["stdout_bytes"], 5000000)
        finally:
            srv.stop()

    def test_task_count_counts_waiting_tasks(self):
        srv = Server("--workers", "1")
        try:
            first = srv.create_ok("python", "import time; time.sleep(3)")
            deadline = time.monotonic() + 10
            while srv.status(first)[2]["status"] != "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.05)
            ids = [srv.create_ok("bin", "echo %d" % i) for i in range(3)]
            st, _, doc = srv.request("GET", "/get_task_count")
            self.assertEqual(doc["tasks"], 3)
            self.assertEqual(doc["running"], 1)
            self.assertEqual(srv.status(ids[0])[2]["status"], "WAIT")
            for tid in ids:
                self.assertEqual(srv.wait_done(tid)["status"], "SUCCESS")
            self.assertEqual(srv.request("GET", "/get_task_count")[2]["tasks"], 0)
        finally:
            srv.stop()

    def test_retention_evicts_the_oldest_finished(self):
        srv = Server("--max-finished", "5")
        try:
            ids = [srv.create_ok("bin", "echo %d" % i) for i in range(8)]
            # One worker runs them in order, so once the last has finished
            # all have. Waiting on each in turn raced with eviction: a task
            # seen at 200 could be evicted before the long poll on it began.
            srv.wait_done(ids[-1])
            self.assertEqual(srv.status(ids[0])[0], 404)
            self.assertEqual(srv.status(ids[-1])[0], 200)
            self.assertEqual(srv.request("GET", "/get_task_count")[2]["finished"], 5)
        finally:
            srv.stop()


class Hygiene(unittest.TestCase):
    def test_no_fd_zombie_or_directory_leak(self):
        work = tempfile.mkdtemp(prefix="ts-e2e-")
        srv = Server("--workers", "4", "--work-dir", work, "--log-level", "warn")
        try:
            # Warm every worker: each keeps its task directory open.
            warm = [srv.create_ok("bin", "#!/bin/sh\nsleep 0.3\n") for _ in range(4)]
            self.assertTrue(all(srv.wait_done(t)["status"] == "SUCCESS" for t in warm))
            before = fd_count(srv.proc.pid)
            ids = [srv.create_ok("bin", "#!/bin/sh\necho $$; sleep 0.0%d &\nexit %d\n" % (i % 3, i % 2))
                   for i in range(120)]
            docs = [srv.wait_done(t) for t in ids]
            self.assertEqual(sum(d["status"] == "SUCCESS" for d in docs), 60)
            time.sleep(0.3)
            self.assertLessEqual(fd_count(srv.proc.pid), before + 1)
            # Nothing but the workers' sandbox cells, one each at most.
            kids = children_of(srv.proc.pid)
            self.assertEqual([k for k in kids if not is_cell(k)], [])
            self.assertLessEqual(len(kids), 4)
            # Each worker keeps its directory, emptied but for the program
            # file that the next task's program overwrites.
            left = os.listdir(work)
            self.assertLessEqual(len(left), 4)
            for name in left:
                self.assertLessEqual(set(os.listdir(os.path.join(work, name))), {"program"}, name)
            srv.stop()
            self.assertEqual(os.listdir(work), [])
        finally:
            srv.stop()
            shutil.rmtree(work, ignore_errors=True)

    def test_next_task_gets_an_empty_private_directory(self):
        srv = Server("--workers", "1")
        try:
            # Leave files, a locked subdirectory and a loosened mode behind.
            doc = srv.run("bin", "#!/bin/sh\nmkdir -p a/b && touch x a/b/y && chmod 0 a "
                                 "&& chmod 777 .\n")
            self.assertEqual(doc["status"], "SUCCESS", doc)
            doc = srv.run("bin", "#!/bin/sh\npwd; stat -c %a .; ls -A\n")
            self.assertEqual(doc["result"]["stdout"].split("\n")[1:3], ["700", "program"])
            # A task that removes its own directory does not break the next.
            # (In the sandbox it is a mount point that rm cannot remove, only
            # empty, hence the "true".)
            self.assertEqual(srv.run("bin", "#!/bin/sh\nrm -rf \"$PWD\"; true\n")["status"],
                             "SUCCESS")
            doc = srv.run("bin", "#!/bin/sh\npwd; ls -A\n")
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"].split("\n")[1], "program")
        finally:
            srv.stop()

    def test_each_task_sees_its_own_program_only(self):
        # Workers keep the program file for the next task to overwrite:
        # nothing of the previous one may show, whatever it did to it.
        for extra in ((), ("--sandbox", "off")):
            srv = Server("--workers", "1", *extra)
            try:
                long_one = "#!/bin/sh\n# " + "x" * 5000 + "\ncat program | wc -c\n"
                self.assertEqual(srv.run("bin", long_one)["result"]["stdout"],
                                 "%d\n" % len(long_one))
                short = "#!/bin/sh\ncat program; ls -A\n"
                self.assertEqual(srv.run("bin", short)["result"]["stdout"], short + "program\n")
                doc = srv.run("python", "import os\nprint(sorted(os.listdir('.')))\n")
                self.assertEqual(doc["result"]["stdout"], "['main.py']\n", extra)
                # A program left as a FIFO, a link or a directory, or
                # without permissions, is replaced.
                for spoil in ("rm program; mkfifo program", "ln -sf /etc/passwd program.x; "
                              "rm program; ln -s program.x program", "rm program; mkdir program",
                              "chmod 0 program", "ln program hard"):
                    srv.run("bin", "#!/bin/sh\n%s\n" % spoil)
                    doc = srv.run("bin", short)
                    self.assertEqual((doc["status"], doc["result"]["stdout"]),
                                     ("SUCCESS", short + "program\n"), (extra, spoil, doc))
            finally:
                srv.stop()

    def test_task_directory_is_private_and_cwd(self):
        srv = Server()
        try:
            doc = srv.run("bin", "#!/bin/sh\npwd; stat -c %a .; ls\n")
            lines = doc["result"]["stdout"].split("\n")
            self.assertIn("task-", lines[0])
            self.assertEqual(lines[1], "700")
            self.assertEqual(lines[2], "program")
        finally:
            srv.stop()


class CommandLine(unittest.TestCase):
    def run_cli(self, *args, timeout=10):
        return subprocess.run([SERVER_BIN, *args], capture_output=True, text=True,
                              timeout=timeout)

    def test_help_and_version(self):
        r = self.run_cli("--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--workers", "--address", "--port", "--config", "--task-timeout",
                    "--max-output", "--max-body", "--work-dir"):
            self.assertIn(opt, r.stdout)
        r = self.run_cli("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^tasksolver \d+\.\d+")

    def test_bad_options_exit_2_with_usage(self):
        for args in (["--bogus"], ["--workers"], ["--workers", "zero"], ["--workers", "0"],
                     ["--port", "70000"], ["extra"], ["--max-body", "1Q"],
                     ["--log-level", "loud"], ["--reject-status", "404"],
                     ["--join", "master:8080"], ["--advertise", "http://"],
                     ["--calc-command", "calc 'x"]):
            r = self.run_cli(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("usage:", r.stderr, args)

    def test_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            r = self.run_cli("--port", str(port))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(said_lines(r.stderr)), 1, r.stderr)
        self.assertIn(str(port), r.stderr)

    def test_requests_at_start_are_served_not_404(self):
        # A client hammering a restarting server connects as soon as it
        # listens, which is before the routes are registered: such a
        # request must wait for them, not get a bare 404. The window is
        # short (it was hit on a loaded machine): a few rounds only.
        for _ in range(3):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            answers, stop = [], threading.Event()

            def hammer():
                while not stop.is_set() and not answers:
                    try:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                        conn.request("GET", "/get_task_count")
                        answers.append(conn.getresponse().status)
                        conn.close()
                    except OSError:
                        time.sleep(0.0002)

            t = threading.Thread(target=hammer)
            t.start()
            srv = Server("--port", str(port))
            try:
                t.join(10)
                self.assertEqual(answers, [200])
            finally:
                stop.set()
                t.join()
                srv.stop()

    def test_config_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# comment\nworkers = 3\nmax-output = 1K\n")
            path = f.name
        try:
            srv = Server("--config", path)
            try:
                doc = srv.request("GET", "/info")[2]
                self.assertEqual(doc["workers"], 3)
                self.assertEqual(doc["max_output"], 1024)
            finally:
                srv.stop()
            with open(path, "w") as f:
                f.write("wrokers = 3\n")
            r = self.run_cli("--config", path)
            self.assertEqual(r.returncode, 2)
            self.assertIn("wrokers", r.stderr)
        finally:
            os.unlink(path)

    def test_shipped_config_is_valid(self):
        conf = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "tasksolver.conf")
        srv = Server("--config", conf)
        srv.stop()

    def test_sigterm_lets_running_tasks_finish(self):
        srv = Server("--shutdown-grace", "10")
        tid = srv.create_ok("python", "import time; time.sleep(1); print('done')")
        srv.wait_status(tid, "RUNNING")
        t0 = time.monotonic()
        self.assertEqual(srv.stop(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertTrue(any("SUCCESS" in l and tid in l for l in srv.log), "".join(srv.log))

    def test_sigterm_kills_tasks_after_the_grace_period(self):
        srv = Server("--shutdown-grace", "0.5")
        tid = srv.create_ok("bin", "#!/bin/sh\nsleep 60\n")
        srv.wait_status(tid, "RUNNING")
        t0 = time.monotonic()
        self.assertEqual(srv.stop(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - t0, 8)
        self.assertTrue(any("ERROR" in l and tid in l for l in srv.log), "".join(srv.log))


class WaitAllowance(unittest.TestCase):
    """--http-threads 4: at most two requests may be held waiting."""

    def test_a_wait_beyond_the_allowance_answers_at_once_with_a_hint(self):
        srv = Server("--http-threads", "4", "--workers", "1", "--shutdown-grace", "0")
        stop = threading.Event()
        holders = []
        try:
            tid = srv.create_ok("python", "import time; time.sleep(60)")

            def hold():
                # A holder refused (a probe got its place first) asks again.
                while not stop.is_set():
                    _, hdrs, _ = srv.status(tid, wait=60)
                    if "x-wait-refused" not in hdrs:
                        return
                    time.sleep(0.05)

            holders = [threading.Thread(target=hold, daemon=True) for _ in range(2)]
            for h in holders:
                h.start()
            # Short probes until the server holds both holders. A granted
            # probe takes the slot a refused holder is after: back to back,
            # probes left it free for a millisecond or two between them,
            # and the holder's retries could miss that gap for 30 s. After
            # each granted probe the slot stays free for a growing pause,
            # many of the holder's retries long.
            deadline, pause = time.monotonic() + 30, 0.1
            while time.monotonic() < deadline:
                _, hdrs, doc = srv.status(tid, wait=0.1)
                if "x-wait-refused" in hdrs:
                    break
                self.assertIn(doc["status"], ("WAIT", "RUNNING"), doc)
                time.sleep(pause)
                pause = min(2 * pause, 1.0)
            else:
                self.fail("no wait was ever refused with two held: %r" % doc)
            t0 = time.monotonic()
            st, hdrs, doc = srv.status(tid, wait=10)
            took = time.monotonic() - t0
            self.assertEqual(st, 200)
            self.assertIn(doc["status"], ("WAIT", "RUNNING"))
            self.assertEqual(hdrs.get("retry-after"), "1")
            self.assertLess(took, 5)
            # A stream would hold a thread as well: refused outright.
            st, hdrs, doc = srv.request("GET", "/stream?id=" + tid)
            self.assertEqual(st, 429)
            self.assertIn("retry later", doc["error"])
            # Without wait nothing is refused and nothing is hinted.
            st, hdrs, doc = srv.status(tid)
            self.assertEqual(st, 200)
            self.assertNotIn("retry-after", hdrs)
        finally:
            stop.set()
            srv.stop()


if __name__ == "__main__":
    unittest.main()
