"""Warm Python through the server, in its default configuration (sandbox
on, a cell per worker, the server root): python tasks start from the fork
server that each worker's cell hosts.

- Semantics: the same programs through a server with --python-warm on and
  one with it off (cold starts), compared field by field: status, error,
  stdout, stderr, exit code, signal (the task directory's path, which
  differs between the two servers, is replaced by <DIR>).
- Isolation: what a first task leaves (globals, environment, files, a
  background process, signal handlers) is not there for the second on the
  same worker; a task cannot find, signal, trace or write the fork server.
- The fork server killed from outside, between tasks or during one; a
  timeout and a cancel kill everything a warm task started.
- Where warm Python is not active (--python-warm off, a fork server that
  cannot start, --sandbox-cell off, --sandbox off) python tasks run cold
  and GET /info says why; a build under a 0700 /root works.

Skipped where the machine gives no cells or the server is not root."""

import os
import re
import shutil
import signal
import stat
import tempfile
import textwrap
import time
import unittest

import test_sandbox as ts
from harness import (SERVER_BIN, Server, alive, children_of, is_cell, is_fork_server, pids_with_arg,
                     task_visible_dir)

ROOT = os.geteuid() == 0
DIR_RE = re.compile(r"/[^\s'\"]*/task-[A-Za-z0-9]{6}")


def fork_servers(srv):
    """Host pids of the fork servers of srv's cells."""
    out = []
    for cell in children_of(srv.proc.pid):
        if not is_cell(cell):
            continue
        for init in children_of(cell):
            out += [p for p in children_of(init) if is_fork_server(p) and alive(p)]
    return sorted(out)


def normalized(doc):
    """The fields a cold and a warm run must share, the task directory's
    path replaced."""
    r = doc.get("result") or {}
    out = {k: doc.get(k) for k in ("status", "error")}
    out.update({k: r.get(k) for k in ("stdout", "stderr", "exit_code", "signal", "timed_out")})
    for k in ("stdout", "stderr", "error"):
        if isinstance(out[k], str):
            out[k] = DIR_RE.sub("<DIR>", out[k])
    return out



class WarmCase(unittest.TestCase):
    """A server (one worker) with warm Python, and one without, shared by a
    class's tests."""

    extra = ()
    cold_too = True

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="ts-warm-")
        cls.srv = Server("--workers", "1", "--work-dir", os.path.join(cls.work, "warm"),
                         *cls.extra)
        cls.info = cls.srv.request("GET", "/info")[2]["sandbox"]
        cls.cold = None
        if cls.cold_too:
            cls.cold = Server("--workers", "1", "--work-dir", os.path.join(cls.work, "cold"),
                              "--python-warm", "off", *cls.extra)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        if cls.cold:
            cls.cold.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def setUp(self):
        if not ROOT:
            self.skipTest("warm Python needs a root server (tasks of their own user)")
        if self.info.get("mode") != "cell":
            self.skipTest("no cells on this machine: %s" % self.info["missing"])
        self.assertTrue(self.info["python_warm"]["active"], self.info)

    def run_py(self, srv, src, args=None, timeout=90):
        return srv.run("python", textwrap.dedent(src), args, timeout=timeout)

    def warm_ok(self, src, args=None):
        doc = self.run_py(self.srv, src, args)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        return doc["result"]["stdout"]

    def compare(self, src, args=None):
        """Runs src cold and warm; asserts the same result. Returns the
        warm document."""
        cold = self.run_py(self.cold, src, args)
        warm = self.run_py(self.srv, src, args)
        self.assertEqual(normalized(warm), normalized(cold))
        return warm


class Semantics(WarmCase):
    """Warm against cold, through the server, behaviour by behaviour."""

    def test_is_warm(self):
        """The task's parent is the fork server, not the cell's init (pid
        1), and the task is still pid 2, as a cold one is."""
        self.assertIn("warm Python: on", "".join(self.srv.log))
        out = self.warm_ok("import os, sys\nprint(os.getpid(), os.getppid() != 1)\n")
        self.assertEqual(out, "2 True\n")
        doc = self.run_py(self.cold, "import os\nprint(os.getpid(), os.getppid())\n")
        self.assertEqual(doc["result"]["stdout"], "2 1\n")
        self.assertEqual(len(fork_servers(self.srv)), 1)
        self.assertEqual(fork_servers(self.cold), [])

    def test_argv_and_main(self):
        doc = self.compare("""
            import sys
            print(sys.argv, sys.orig_argv[1:], sys.executable)
            print(list(globals()))
            print(__name__, __file__, __spec__, __package__, __doc__, __cached__)
            print(type(__loader__).__name__, __loader__.name, __loader__.path)
            print(sys.modules["__main__"] is sys.modules[__name__])
        """, ["a b", "", "é", "--x", "*"])
        self.assertIn("'a b'", doc["result"]["stdout"])
        self.compare("import sys\nprint(sys.argv)\n", "one 'two three' \"four\"")

    def test_path_cwd_and_modules(self):
        self.compare("""
            import os, sys
            print(sys.path)
            print(os.getcwd(), os.listdir("."))
            print(list(sys.path_importer_cache))
            print(list(sys.modules))
            print(sys.flags)
        """)

    def test_environment_and_stdin(self):
        self.compare("""
            import os, subprocess, sys
            print(list(os.environ.items()))
            print(subprocess.run(["env"], capture_output=True, text=True).stdout)
            print(repr(sys.stdin.read()), sys.stdin.name, os.path.realpath("/proc/self/fd/0"))
            for s in (sys.stdin, sys.stdout, sys.stderr):
                print(s.encoding, s.errors, s.line_buffering, s.write_through, s.isatty())
        """)

    def test_unbuffered_output(self):
        self.compare("""
            import os, sys
            print("a")
            os.write(1, b"b\\n")
            sys.stdout.write("c")
            os.write(1, b"d\\n")
            print("e", file=sys.stderr)
            os.write(2, b"f\\n")
            sys.stdout.buffer.write(b"\\xff\\n")
            os._exit(0)
        """)

    def test_stream(self):
        """Lines arrive on GET /stream as printed, before the task ends."""
        for srv in (self.srv, self.cold):
            # 5 s: a loaded machine has taken over 2 s between two requests.
            tid = srv.create_ok("python", "import time\nprint('first')\ntime.sleep(5)\n"
                                "print('second')\n")
            import http.client
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
            conn.request("GET", "/stream?id=" + tid)
            resp = conn.getresponse()
            got = b""
            while b"first" not in got:
                chunk = resp.read1(100)
                self.assertTrue(chunk, got)
                got += chunk
            self.assertNotEqual(srv.status(tid)[2]["status"], "SUCCESS")
            got += resp.read()
            conn.close()
            self.assertEqual(got, b"first\nsecond\n")

    def test_exit_codes_and_messages(self):
        for src in ("import sys\nsys.exit(3)\n", "import sys\nprint('out')\nsys.exit('bye')\n",
                    "raise SystemExit(4)\n", "import os\nprint('x', end='')\nos._exit(5)\n",
                    "import sys\nsys.exit(None)\n", "import sys\nsys.exit([1, 2])\n"):
            with self.subTest(src=src):
                self.compare(src)

    def test_traceback(self):
        doc = self.compare("""
            def f(x):
                try:
                    1 / 0
                except ZeroDivisionError as e:
                    raise ValueError("wrapped %d" % x) from e
            f(7)
        """)
        self.assertIn("ValueError: wrapped 7", doc["result"]["stderr"])
        self.assertNotIn("pyfork", doc["result"]["stderr"])
        self.compare("print(1\n")  # a syntax error: python reports it

    def test_signals(self):
        doc = self.compare("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
        self.assertEqual(doc["result"]["signal"], signal.SIGTERM)
        doc = self.compare("raise KeyboardInterrupt\n")
        self.assertEqual(doc["result"]["signal"], signal.SIGINT)
        self.compare("""
            import signal, subprocess
            print([(s, signal.getsignal(s)) for s in sorted(signal.valid_signals())
                   if s not in (signal.SIGKILL, signal.SIGSTOP)])
            print(signal.pthread_sigmask(signal.SIG_BLOCK, []))
            print(subprocess.run("yes | head -2", shell=True, capture_output=True).stdout)
        """)

    def test_threads_atexit_subprocess(self):
        doc = self.compare("""
            import atexit, os, subprocess, sys, threading, time
            def late():
                time.sleep(0.3)
                print("thread done", flush=True)
            atexit.register(print, "atexit ran")
            threading.Thread(target=late).start()
            print(subprocess.run([sys.executable, "-c", "import sys; print(sys.argv)"],
                                 capture_output=True, text=True).stdout)
            os.system("echo from the shell $HOME")
            sys.stdout.write("no newline")
        """)
        self.assertIn("thread done", doc["result"]["stdout"])

    def test_multiprocessing(self):
        for method in ("fork", "spawn", "forkserver"):
            with self.subTest(method=method):
                self.compare("""
                    import multiprocessing as mp, sys

                    def square(x):
                        return x * x

                    if __name__ == "__main__":
                        ctx = mp.get_context(sys.argv[1])
                        with ctx.Pool(2) as pool:
                            print(pool.map(square, range(5)))
                        p = ctx.Process(target=square, args=(3,))
                        p.start()
                        p.join()
                        print(p.exitcode)
                """, [method])

    def test_limits(self):
        """The task's rlimits and cgroup, as a cold task's."""
        doc = self.compare("""
            import resource
            print([(n, resource.getrlimit(getattr(resource, n))) for n in sorted(dir(resource))
                   if n.startswith("RLIMIT_")])
            print([l.split(":")[1] for l in open("/proc/self/cgroup")
                   if l.rstrip().rsplit("/", 1)[-1].startswith("cell-")])
            print(open("/proc/self/oom_score_adj").read())
        """)
        self.assertIn("'memory'", doc["result"]["stdout"])


class Isolation(WarmCase):
    """Tasks one after the other on the one worker."""

    cold_too = False

    CHECK = """
        import builtins, os, signal, sys
        print(builtins.len("ab"), "/polluted" in sys.path, "fake" in sys.modules)
        print("POLLUTED" in os.environ, signal.getsignal(signal.SIGTERM))
        print(os.listdir("/tmp"), os.listdir("."), os.path.exists("/tmp/left"))
        print(sorted(p for p in os.listdir("/proc") if p.isdigit()))
    """

    def test_pollution_does_not_reach_the_next_task(self):
        mark = "876.%d" % os.getpid()
        clean = self.warm_ok(self.CHECK)
        self.assertTrue(clean.startswith("2 False False\nFalse "), clean)
        self.warm_ok("""
            import builtins, os, signal, subprocess, sys
            builtins.len = lambda x: 42
            sys.path.insert(0, "/polluted")
            sys.modules["fake"] = sys
            os.environ["POLLUTED"] = "1"
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            open("/tmp/left", "w").write("x")
            open("left-here", "w").write("x")
            subprocess.Popen(["setsid", "sleep", "%s"])
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execvp("sleep", ["sleep", "%s"])
                os._exit(0)
            os.wait()
        """ % (mark, mark))
        self.assertEqual(ts.eventually(lambda: pids_with_arg(mark)), [])
        self.assertEqual(self.warm_ok(self.CHECK), clean)

    def test_fork_server_is_out_of_reach(self):
        """kill -9 of every pid a task can name (its parent included),
        ptrace and /proc/PID/mem of its parent: all refused; the fork server
        serves on."""
        self.warm_ok("pass\n")
        before = fork_servers(self.srv)
        self.assertEqual(len(before), 1)
        out = self.warm_ok("""
            import ctypes, os, signal
            libc = ctypes.CDLL(None, use_errno=True)
            me, parent = os.getpid(), os.getppid()
            seen = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
            print("visible", seen, "parent visible", parent in seen)
            for pid in sorted(set(seen + [1, parent]) - {me}):
                try:
                    os.kill(pid, signal.SIGKILL)
                    print(pid == parent, "killed")
                except OSError as e:
                    print(pid == parent, type(e).__name__)
            rc = libc.ptrace(16, parent, 0, 0)  # PTRACE_ATTACH
            print("ptrace", rc, os.strerror(ctypes.get_errno()))
            try:
                with open("/proc/%d/mem" % parent, "r+b") as f:
                    f.write(b"x")
                print("mem written")
            except OSError as e:
                print("mem", type(e).__name__)
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError as e:
                print("kill -1", type(e).__name__)
        """)
        # kill(-1) reports no error: the fork server counts as a process it
        # was not allowed to signal.
        self.assertEqual(out, "visible [2] parent visible False\nFalse PermissionError\n"
                              "True PermissionError\nptrace -1 Operation not permitted\n"
                              "mem FileNotFoundError\n")
        self.assertEqual(fork_servers(self.srv), before)
        self.assertEqual(self.warm_ok("import os\nprint(os.getppid() != 1)\n"), "True\n")
        self.assertEqual(fork_servers(self.srv), before)

    def test_fork_server_killed_between_tasks(self):
        self.warm_ok("pass\n")
        before = fork_servers(self.srv)
        os.kill(before[0], signal.SIGKILL)
        self.assertEqual(ts.eventually(lambda: alive(before[0])), False)
        self.assertEqual(self.warm_ok("import os\nprint(os.getppid() != 1)\n"), "True\n")
        self.assertEqual(len(fork_servers(self.srv)), 1)
        self.assertNotEqual(fork_servers(self.srv), before)
        log = self.srv.wait_log("a new one started the task")
        self.assertIn("a new one started the task", log)
        self.assertNotIn("damaged", log)

    def test_fork_server_killed_during_a_task(self):
        """The task goes on under the cell's init, which reports its end."""
        self.warm_ok("pass\n")
        server = fork_servers(self.srv)[0]
        tid = self.srv.create_ok("python", "import time\nprint('started', flush=True)\n"
                                 "time.sleep(5)\nprint('done')\n")
        deadline = time.monotonic() + 30
        while self.srv.status(tid)[2]["status"] != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        os.kill(server, signal.SIGKILL)
        doc = self.srv.wait_done(tid)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        self.assertEqual(doc["result"]["stdout"], "started\ndone\n")
        said = "task %s: warm Python: the fork server died while the task ran" % tid
        self.assertIn(said, self.srv.wait_log(said))
        self.assertEqual(self.warm_ok("import os\nprint(os.getppid() != 1)\n"), "True\n")


class Ends(WarmCase):
    """A warm task's timeout, and a cancel, kill everything it started."""

    cold_too = False
    extra = ("--task-timeout", "2", "--shutdown-grace", "0.5")

    SPAWNER = """
        import os, subprocess, sys, time
        subprocess.Popen(["sleep", sys.argv[1]])
        subprocess.Popen(["setsid", "sleep", sys.argv[1]])
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.closerange(0, 256)
                os.execvp("sleep", ["sleep", sys.argv[1]])
            os._exit(0)
        print("started", flush=True)
        time.sleep(600)
    """

    def test_timeout(self):
        mark = "654.%d" % os.getpid()
        doc = self.run_py(self.srv, self.SPAWNER, [mark])
        self.assertEqual(doc["status"], "ERROR")
        self.assertIn("timed out after 2 s", doc["error"])
        self.assertEqual(doc["result"]["stdout"], "started\n")
        self.assertEqual(ts.eventually(lambda: pids_with_arg(mark)), [])
        self.assertEqual(self.warm_ok("import os\nprint(os.getpid())\n"), "2\n")

    def test_cancel(self):
        """A server stopped while the task runs (grace 0.5 s) cancels it."""
        mark = "655.%d" % os.getpid()
        srv = Server("--workers", "1", "--work-dir", os.path.join(self.work, "cancel"),
                     "--shutdown-grace", "0.5")
        try:
            tid = srv.create_ok("python", textwrap.dedent(self.SPAWNER), [mark])
            deadline = time.monotonic() + 30
            while len(pids_with_arg(mark)) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(len(pids_with_arg(mark)), 3, srv.status(tid))
        finally:
            srv.stop()
        self.assertEqual(ts.eventually(lambda: pids_with_arg(mark)), [])
        self.assertIn("cancelled", "".join(srv.log))


class Modes(unittest.TestCase):
    """Where warm Python is not active, python tasks run cold and the
    server says why."""

    def setUp(self):
        if not ROOT:
            self.skipTest("needs root")
        self.work = tempfile.mkdtemp(prefix="ts-warm-modes-")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def check(self, *args, binary=SERVER_BIN):
        """Starts a server with args, runs a python task that says whether
        it ran warm; returns (its stdout, the python_warm object of
        GET /info, the server's log)."""
        srv = Server("--workers", "1", "--work-dir", os.path.join(self.work, "w"), *args,
                     binary=binary)
        try:
            info = srv.request("GET", "/info")[2]["sandbox"]
            doc = srv.run("python", "import os, sys\nprint(sys.version_info >= (3,), "
                                    "os.getppid() != 1)\n")
            self.assertEqual(doc["status"], "SUCCESS", doc)
            return doc["result"]["stdout"], info, "".join(srv.log)
        finally:
            srv.stop()

    def need_cells(self, info):
        if info.get("mode") != "cell":
            self.skipTest("no cells on this machine: %s" % info["missing"])

    def test_off(self):
        out, info, log = self.check("--python-warm", "off")
        self.need_cells(info)
        self.assertEqual(info["python_warm"], {"active": False, "why": "--python-warm off"})
        self.assertEqual(out, "True False\n")
        self.assertIn("warm Python: off (--python-warm off)", log)

    def test_fork_server_that_cannot_start(self):
        """An interpreter that cannot run the fork server (as Python 3.8
        says it cannot): the start-up probe finds out and python tasks run
        cold with it."""
        # Not in /tmp, which the tasks do not share with us.
        fakedir = tempfile.mkdtemp(prefix="ts-warm-fake-", dir=task_visible_dir(enterable=True))
        self.addCleanup(shutil.rmtree, fakedir, True)
        os.chmod(fakedir, 0o755)
        fake = os.path.join(fakedir, "oldpython")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\ncase \"$1\" in /proc/self/fd/*)\n"
                    "  echo 'pyfork: Python 3.9 or later is needed (os.pidfd_open)' >&2; exit 1;;\n"
                    "esac\nexec /usr/bin/python3 \"$@\"\n")
        os.chmod(fake, 0o755)
        out, info, log = self.check("--python", fake)
        self.need_cells(info)
        self.assertFalse(info["python_warm"]["active"])
        self.assertIn("Python 3.9 or later is needed", info["python_warm"]["why"])
        self.assertEqual(out, "True False\n")
        self.assertIn("warm Python: the fork server could not start: pyfork: Python 3.9", log)

    def test_per_task_sandbox(self):
        out, info, _ = self.check("--sandbox-cell", "off")
        self.assertEqual(info["mode"], "per_task")
        self.assertFalse(info["python_warm"]["active"])
        self.assertIn("no sandbox cells", info["python_warm"]["why"])
        self.assertEqual(out, "True False\n")

    def test_sandbox_off(self):
        out, info, log = self.check("--sandbox", "off")
        self.assertEqual(info["python_warm"], {"active": False, "why": "--sandbox off"})
        self.assertTrue(out.startswith("True "), out)
        self.assertIn("warm Python: off (--sandbox off)", log)

    def test_build_under_a_closed_home(self):
        """The server's files under /root (mode 0700): the cell hides their
        directory and the tasks' user could not reach it anyway; the fork
        server's script still reaches python."""
        if not os.path.isdir("/root") or stat.S_IMODE(os.stat("/root").st_mode) & 0o077:
            self.skipTest("no /root closed to others here")
        home = tempfile.mkdtemp(prefix="ts-warm-", dir="/root")
        try:
            bindir = os.path.join(home, "bin")
            os.mkdir(bindir, 0o700)
            for name in ("tasksolver", "tasksolver-exec", "pyfork.py"):
                shutil.copy2(os.path.join(os.path.dirname(SERVER_BIN), name), bindir)
            out, info, _ = self.check(binary=os.path.join(bindir, "tasksolver"))
            self.need_cells(info)
            self.assertEqual(info["python_warm"], {"active": True, "why": None})
            self.assertEqual(out, "True True\n")
        finally:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
