"""Warm Python against cold: each test runs the same small program (a) cold,
`python3 main.py ARGS` started by the runner as the server starts tasks,
and (b) through the fork server (runner/pyfork.py) and its C client, in
the same directory with the task environment, and compares stdout, stderr
and how it ended. Both go through tests/pyfork_driver. Then what is not a
comparison: one task's pollution never reaching the next, a task that
kills its own group, and the switch to an unprivileged user.

TS_PYFORK_PYTHON picks the interpreter (default: python3 in the task
PATH), so the suite can be run against every python3 at hand."""

import base64
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest

from harness import BUILD_DIR, alive

DRIVER = os.path.join(BUILD_DIR, "tests", "pyfork_driver")
SCRIPT = os.path.join(BUILD_DIR, "server", "pyfork.py")
TASK_PATH = "/usr/local/bin:/usr/bin:/bin"
PYTHON = os.environ.get("TS_PYFORK_PYTHON") or shutil.which("python3", path=TASK_PATH)
ROOT = os.geteuid() == 0


def task_env(home):
    """The server's task environment (server/pool.c) for a task in home."""
    return ["PATH=" + TASK_PATH, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1",
            "PYTHONUNBUFFERED=1", "HOME=" + home, "TMPDIR=" + home]


class Driver:
    """A pyfork_driver process: one JSON command in, one JSON line out."""

    def __init__(self):
        self.proc = subprocess.Popen([DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def cmd(self, **kw):
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("the driver died")
        out = json.loads(line)
        for key in ("stdout", "stderr"):
            if key in out:
                out[key] = base64.b64decode(out[key])
        return out

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()


class PyforkCase(unittest.TestCase):
    """A fork server started with the task environment of self.dir."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyfork-e2e-")
        os.chmod(self.dir, 0o755)
        self.env = task_env(self.dir)
        self.drv = Driver()
        self.start_server()

    def tearDown(self):
        self.drv.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_server(self, env=None):
        out = self.drv.cmd(op="start", python=PYTHON, script=SCRIPT, env=env or self.env)
        self.assertTrue(out["ok"], out)
        self.server_pid = out["server_pid"]

    def write(self, src, name="main.py"):
        path = os.path.join(self.dir, name)
        mode = "wb" if isinstance(src, bytes) else "w"
        with open(path, mode) as f:
            f.write(src if isinstance(src, bytes) else textwrap.dedent(src))
        return path

    def clean(self, keep=("main.py",)):
        """Empties the task directory as a worker does between tasks."""
        for name in os.listdir(self.dir):
            if name not in keep:
                path = os.path.join(self.dir, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)

    def warm(self, args=(), env=None, stdin=None, main="main.py", **kw):
        out = self.drv.cmd(op="run", dir=self.dir, main=main, args=list(args),
                           env=env or self.env, stdin=stdin, **kw)
        self.assertNotIn("error", out)
        return out

    def cold(self, args=(), env=None, stdin=None, main="main.py"):
        out = self.drv.cmd(op="cold", python=PYTHON, dir=self.dir, main=main, args=list(args),
                           env=env or self.env, stdin=stdin)
        self.assertNotIn("error", out)
        return out

    def compare(self, src, args=(), env=None, stdin=None, main="main.py", keep=("main.py",)):
        """Runs src cold then warm; asserts the same output and end.
        Returns the warm result."""
        if src is not None:
            self.write(src, main if "/" not in main else "main.py")
        cold = self.cold(args, env, stdin, main)
        self.clean(keep)
        warm = self.warm(args, env, stdin, main)
        self.clean(keep)
        self.assertTrue(warm["started"], warm)
        for key in ("stdout", "stderr", "exited", "code", "signal"):
            self.assertEqual(warm[key], cold[key],
                             "%s differs.\ncold: %r\nwarm: %r" % (key, cold, warm))
        return warm


class TestEquivalence(PyforkCase):
    """Each behaviour of a cold start, one program per test."""

    def test_argv(self):
        out = self.compare("""
            import sys
            print(sys.argv)
            print(getattr(sys, "orig_argv", None))
            print(sys.executable, sys.prefix, sys.base_prefix)
        """, args=["a b", "", "é", "--x", "-c", "*"])
        self.assertIn(b"'a b'", out["stdout"])

    def test_main_module(self):
        self.compare('''
            import sys, builtins
            print(list(globals()))
            print(__name__, __file__, __spec__, __package__, __doc__, __cached__)
            print(type(__loader__).__name__, __loader__.name, __loader__.path)
            print(__builtins__ is builtins, __annotations__)
            print(sys.modules["__main__"] is sys.modules[__name__], sys._getframe().f_globals is globals())
            import atexit
            atexit.register(lambda: print("at exit:", sorted(k for k in vars(sys.modules["__main__"]) if k.startswith("__"))))
        ''')

    def test_docstring(self):
        self.compare('''
            """The program's docstring."""
            print(__doc__)
        ''')

    def test_sys_path_and_cwd(self):
        self.compare("""
            import os, sys
            print(sys.path)
            print(os.getcwd())
            print(list(sys.path_importer_cache))
            print([getattr(h, "__qualname__", type(h).__name__) for h in sys.path_hooks])
            print([type(f).__name__ if not isinstance(f, type) else f.__name__
                   for f in sys.meta_path])
        """)

    def test_modules(self):
        """No module a cold start would not load, and in the same order."""
        self.compare("""
            import sys
            print(list(sys.modules))
            import socket, select, resource, array
            print(socket.socket, select.poll, resource.getrlimit, array.array)
            print([m for m in ("ctypes", "threading", "importlib", "runpy", "warnings")
                   if m in sys.modules])
        """)

    def test_flags_and_settings(self):
        self.compare("""
            import sys, gc
            print(sys.flags)
            print(sys.getrecursionlimit(), sys.getswitchinterval(), sys.dont_write_bytecode)
            print(getattr(sys, "get_int_max_str_digits", lambda: None)())
            print(gc.isenabled(), gc.get_threshold(), gc.collect())
            print(sys.exc_info(), hasattr(sys, "last_type"), sys.excepthook is sys.__excepthook__)
            print(sys.displayhook is sys.__displayhook__, sys.gettrace(), sys.getprofile())
            print(type(exit), type(help), __debug__, __import__("atexit")._ncallbacks())
        """)

    def test_environment(self):
        self.compare("""
            import os, posix, subprocess
            print(list(os.environ.items()))
            print(list(os.environb.items()) == list(posix.environ.items()))
            print(subprocess.run(["env"], capture_output=True).stdout.decode())
            os.environ["ADDED"] = "1"
            del os.environ["LANG"]
            print(subprocess.run(["env"], capture_output=True).stdout.decode())
        """)
        env = [e for e in self.env if not e.startswith("TMPDIR=")] + \
            ["ZZ=last", "AA=first", "EMPTY=", "WITH=EQUALS=SIGN"]
        self.compare("""
            import os
            print(list(os.environ.items()))
            os.system("env")
            print(os.environ is os._Environ or list(os.environb.items()) ==
                  list(__import__("posix").environ.items()))
        """, env=env)

    def test_stdio(self):
        stdin = self.write("line one\nline two é\n", "input.txt")
        self.compare("""
            import sys, os
            for s in (sys.stdin, sys.stdout, sys.stderr):
                print(s.name, s.mode, s.encoding, s.errors, s.line_buffering, s.write_through,
                      s.isatty(), s.seekable(), s.fileno(), type(s.buffer).__name__,
                      type(getattr(s.buffer, "raw", s.buffer)).__name__, s.buffer.name,
                      getattr(s.buffer, "raw", s.buffer).name, s.newlines)
            print([sys.stdin is sys.__stdin__, sys.stdout is sys.__stdout__,
                   sys.stderr is sys.__stderr__])
            print(input(), repr(sys.stdin.read()))
        """, stdin=stdin, keep=("main.py", "input.txt"))

    def test_unbuffered(self):
        self.compare("""
            import os, sys
            print("a")
            os.write(1, b"b\\n")
            sys.stdout.write("c")
            os.write(1, b"d\\n")
            print("e", file=sys.stderr)
            os.write(2, b"f\\n")
            sys.stderr.write("g")
            sys.stdout.buffer.write(b"h")
            os._exit(0)
        """)

    def test_output_encoding(self):
        self.compare("""
            import sys
            print("é ü ✓ \\U0001F600")
            print("\\udcff".encode("utf-8", "surrogateescape"))
            sys.stdout.write("\\udcff\\n")
        """)

    def test_large_output(self):
        self.compare("""
            import sys
            for i in range(20000):
                print(i, "x" * 50)
            sys.stderr.write("e" * 100000)
        """)

    def test_exit_message(self):
        self.compare('import sys\nprint("out")\nsys.exit("bye")\n')

    def test_exit_codes(self):
        for code in ("3", "0", "None", "", "True", "256 + 7", "-1", "'text'", "[1, 2]"):
            with self.subTest(code=code):
                self.compare("import sys\nsys.exit(%s)\n" % code)
        self.compare("raise SystemExit(4)\n")
        self.compare("import os\nprint('x', end='')\nos._exit(5)\n")

    def test_uncaught_exception(self):
        self.write("def helper():\n    raise KeyError('deep')\n", "helper.py")
        self.compare("""
            import helper

            def f(x):
                try:
                    helper.helper()
                except KeyError as e:
                    raise ValueError("wrapped %d" % x) from e

            f(7)
        """, keep=("main.py", "helper.py"))
        self.compare("""
            try:
                1 / 0
            except ZeroDivisionError:
                [][1]
        """)

    def test_keyboard_interrupt(self):
        out = self.compare("""
            import time
            print("start")
            def f():
                raise KeyboardInterrupt
            f()
        """)
        self.assertEqual(out["signal"], signal.SIGINT)
        out = self.compare("""
            import os, signal
            os.kill(os.getpid(), signal.SIGINT)
            print("not reached")
        """)
        self.assertEqual(out["signal"], signal.SIGINT)

    def test_excepthook(self):
        self.compare("""
            import sys
            def hook(t, v, tb):
                print("hook:", t.__name__, v, tb.tb_frame.f_code.co_filename, tb.tb_lineno,
                      sys.last_value is v if hasattr(sys, "last_value") else None)
            sys.excepthook = hook
            raise RuntimeError("x")
        """)
        self.compare("""
            import sys
            def hook(t, v, tb):
                raise TypeError("in the hook")
            sys.excepthook = hook
            raise RuntimeError("x")
        """)

    def test_syntax_errors(self):
        self.compare("print(1\n")
        self.compare("x = 1\n  y = 2\n")
        self.compare(b"print('\xff')\n")
        self.compare(b"print(1)\0\n")
        self.compare("import re\nprint(re.match('\\d', '1') is not None)\n")
        self.compare("# -*- coding: latin-1 -*-\nprint('\xe9')\n".encode("latin-1"))
        self.compare("# -*- coding: nosuch -*-\nprint(1)\n")
        self.compare(b"\xef\xbb\xbfprint('bom')\n")

    def test_main_file(self):
        """What python does with main files that are not plain source."""
        self.compare(None, main="missing.py")
        os.mkdir(os.path.join(self.dir, "pkg"))
        self.write("print('from a directory', __name__)\n", "pkg/__main__.py")
        self.compare(None, main="pkg", keep=("main.py", "pkg"))
        import zipfile
        with zipfile.ZipFile(os.path.join(self.dir, "main.py"), "w") as z:
            z.writestr("__main__.py", "import sys\nprint('from a zip', sys.path[0][-7:])\n")
        self.compare(None)
        import importlib.util
        self.write(importlib.util.MAGIC_NUMBER + b"\0" * 12 + b"junk")
        self.compare(None)
        os.symlink("real.py", os.path.join(self.dir, "link.py"))
        self.write("import sys\nprint(__file__, sys.argv[0], sys.path[0])\n", "real.py")
        self.compare(None, main="link.py", keep=("main.py", "link.py", "real.py"))
        self.compare(None, main="./real.py", keep=("main.py", "link.py", "real.py"))
        self.compare(None, main=os.path.join(self.dir, "real.py"),
                     keep=("main.py", "link.py", "real.py"))

    def test_startup_environment(self):
        """An environment that shapes start-up differently runs cold."""
        for extra in (["PYTHONOPTIMIZE=1"], ["PYTHONHASHSEED=7"], ["LANG=C"], ["TZ=Asia/Tokyo"],
                      ["PYTHONPATH=/nonexistent"]):
            with self.subTest(extra=extra):
                env = [e for e in self.env if not e.startswith("LANG=")] + \
                    (extra if extra[0].startswith("LANG=") else ["LANG=C.UTF-8"] + extra)
                self.compare("""
                    import sys, time
                    print(sys.flags.optimize, sys.flags.hash_randomization, hash("x") if
                          sys.flags.hash_randomization == 0 else "random", __debug__)
                    print(sys.stdout.encoding, time.tzname, sys.path[:2])
                """, env=env)

    def test_home(self):
        """A HOME other than the server's, and a user site-packages in it."""
        other = tempfile.mkdtemp(prefix="pyfork-home-")
        try:
            env = [e for e in self.env if not e.startswith("HOME=")] + ["HOME=" + other]
            src = "import site, sys\nprint(site.USER_BASE, site.USER_SITE, sys.path)\n"
            self.compare(src, env=env)
            version = subprocess.check_output(
                [PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], text=True)
            os.makedirs(os.path.join(other, ".local", "lib", "python" + version.strip(),
                                     "site-packages"))
            out = self.compare(src, env=env)
            self.assertIn(b"/.local/lib/python", out["stdout"])
        finally:
            shutil.rmtree(other)

    def test_signals(self):
        out = self.compare("""
            import signal
            print([(s, signal.getsignal(s)) for s in sorted(signal.valid_signals())
                   if s not in (signal.SIGKILL, signal.SIGSTOP)])
            print(signal.pthread_sigmask(signal.SIG_BLOCK, []))
            for line in open("/proc/self/status"):
                if line.startswith(("SigBlk", "SigIgn", "SigCgt", "SigPnd", "ShdPnd")):
                    print(line.strip())
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                print("KeyboardInterrupt")
        """)
        self.assertIn(b"KeyboardInterrupt", out["stdout"])
        # SIGPIPE: ignored by python itself, default again in its children.
        self.compare("""
            import subprocess, sys
            print(subprocess.run("yes | head -2", shell=True, capture_output=True))
            r, w = __import__("os").pipe()
            __import__("os").close(r)
            try:
                __import__("os").write(w, b"x")
            except BrokenPipeError as e:
                print("BrokenPipeError", e.errno)
        """)

    def test_signal_default_actions(self):
        out = self.compare("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
        self.assertEqual(out["signal"], signal.SIGTERM)
        out = self.compare("import os, signal\nos.kill(os.getpid(), signal.SIGUSR1)\n")
        self.assertEqual(out["signal"], signal.SIGUSR1)

    def test_process_state(self):
        # The session is left out: the cold run here is unconfined, where
        # runner_proc.h gives a process group only (the server has no
        # terminal), and warm children, like every sandboxed task, have a
        # session of their own (test_task_cannot_find_the_server).
        self.compare("""
            import os, resource
            print(os.getpgrp() == os.getpid())
            print(sorted(os.listdir("/proc/self/fd")))
            print(oct(os.umask(0o22)), os.getuid(), os.getgid(), os.getgroups())
            print([(n, resource.getrlimit(getattr(resource, n))) for n in sorted(dir(resource))
                   if n.startswith("RLIMIT_")])
            print(os.sched_getaffinity(0) == os.sched_getaffinity(os.getppid()) or "differs")
        """)

    def test_threads_and_atexit(self):
        out = self.compare("""
            import atexit, sys, threading, time
            def late():
                time.sleep(0.3)
                print("thread done", flush=True)
            def daemon():
                time.sleep(30)
                print("daemon never prints")
            atexit.register(print, "atexit 1")
            class Boom:
                def __call__(self):
                    1 / 0
                def __repr__(self):
                    return "Boom()"
            atexit.register(Boom())
            atexit.register(lambda: print("atexit 2, threads:", threading.active_count()))
            threading.Thread(target=late).start()
            threading.Thread(target=daemon, daemon=True).start()
            print(threading.main_thread() is threading.current_thread())
            sys.stdout.write("no newline before exit")
        """)
        self.assertIn(b"thread done", out["stdout"])

    def test_endings_with_a_finalizer(self):
        """Each way to end, with an object whose finalizer prints at exit
        (the interpreter's whole teardown runs) and without."""
        endings = ["pass", "import sys; sys.exit(3)", "import sys; sys.exit('bye')",
                   "import sys; sys.exit([1])", "raise ValueError('x')", "raise KeyboardInterrupt",
                   "import sys; sys.excepthook = lambda *a: sys.exit(4); 1/0",
                   "import os; os._exit(6)"]
        for loud in (False, True):
            for end in endings:
                with self.subTest(end=end, loud=loud):
                    self.compare("""
                        import atexit
                        class Loud:
                            def __del__(self):
                                print("finalized")
                        keep = Loud() if %s else None
                        atexit.register(print, "atexit ran")
                        %s
                    """ % (loud, end))

    def test_flush_error_at_exit(self):
        out = self.compare("""
            import os, sys
            sys.stdout = open(os.dup(1), "w")
            print("lost")
            os.close(sys.stdout.fileno())
        """)
        self.assertEqual(out["code"], 120)

    def test_finalizers(self):
        self.compare("""
            import sys
            class Loud:
                def __del__(self):
                    print("finalized", self.name)
            keep = Loud()
            keep.name = "global"
            f = open(1, "w", closefd=False)
            f.write("buffered, flushed at shutdown\\n")
            def gen():
                try:
                    yield 1
                finally:
                    print("generator closed")
            g = gen()
            next(g)
        """)

    def test_teardown_that_shows(self):
        """What the interpreter's teardown would show is shown: each of
        these makes the child keep it."""
        for src in ("""
            import weakref
            class A: pass
            a = A()
            r = weakref.ref(a, lambda ref: print("weakref callback"))
        """, """
            class Slots:
                __slots__ = ()
                def __del__(self):
                    print("untracked instance finalized")
            s = Slots()
        """, """
            import threading, time
            def run():
                try:
                    time.sleep(30)
                finally:
                    print("never: daemon threads just stop")
            threading.Thread(target=run, daemon=True).start()
            time.sleep(0.1)
            print("main done")
        """, """
            import logging
            logging.basicConfig(format="%(levelname)s %(message)s")
            logging.warning("logged")
        """):
            with self.subTest(src=src.strip().splitlines()[-1]):
                self.compare(src)

    def test_scan_runs_no_program_code(self):
        """Deciding whether the teardown may be skipped looks at types and
        C-level fields only: hooks of the program's never run."""
        self.compare("""
            import io
            class Meta(type):
                def __getattr__(cls, name):
                    print("metaclass getattr", name)
                    raise AttributeError(name)
                def __getattribute__(cls, name):
                    if name in ("__del__", "__mro__", "__flags__", "__dict__"):
                        print("metaclass getattribute", name)
                    return super().__getattribute__(name)
            class X(metaclass=Meta):
                pass
            class Sneaky:
                @property
                def __class__(self):
                    print("__class__ asked")
                    return int
            class Raw(io.RawIOBase):
                @property
                def closed(self):
                    print("closed asked")
                    return False
                def readable(self):
                    return True
            x, sneaky = X(), Sneaky()
            wrapped = io.TextIOWrapper(io.BufferedReader(Raw()))
            print("end of program")
        """)

    def test_subprocess(self):
        self.compare("""
            import os, subprocess, sys
            print(subprocess.run([sys.executable, "-c", "import sys; print(sys.argv, sys.path[0])"],
                                 capture_output=True, text=True).stdout)
            print(subprocess.run([sys.executable, "main.py", "child"] if len(sys.argv) == 1 else
                                 ["true"], capture_output=True, text=True).stdout)
            os.system("echo from the shell $HOME")
        """)

    def test_multiprocessing(self):
        for method in ("fork", "spawn", "forkserver"):
            with self.subTest(method=method):
                self.compare("""
                    import multiprocessing as mp, sys

                    def square(x):
                        return x * x

                    def hello(q):
                        q.put(("child", __name__, sys.argv[0]))

                    if __name__ == "__main__":
                        ctx = mp.get_context(sys.argv[1])
                        with ctx.Pool(2) as pool:
                            print(pool.map(square, range(5)))
                        q = ctx.Queue()
                        p = ctx.Process(target=hello, args=(q,))
                        p.start()
                        print(q.get(timeout=60))
                        p.join()
                        print(p.exitcode)
                """, args=[method])

    def test_warnings(self):
        self.compare("""
            import warnings
            warnings.warn("top level")
            warnings.warn("deprecated", DeprecationWarning)
            def f():
                warnings.warn("from f", stacklevel=2)
            f()
        """)

    def test_imports_from_task_dir(self):
        self.write("VALUE = 'local module'\n", "mod.py")
        self.compare("""
            import mod, sys
            print(mod.VALUE, mod.__file__, sys.path_importer_cache.get(sys.path[0]) is not None)
        """, keep=("main.py", "mod.py"))


class TestIsolation(PyforkCase):
    """Nothing a task changes reaches the next; tasks cannot hurt the server."""

    POLLUTE = """
        import atexit, builtins, codecs, gc, json, os, resource, signal, sys, threading, warnings
        json.dumps = None
        os.sep = "X"
        sys.path.insert(0, "/polluted")
        sys.modules["fake"] = sys
        os.environ["POLLUTED"] = "1"
        os.putenv("POLLUTED_C", "1")
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
        os.umask(0)
        resource.setrlimit(resource.RLIMIT_NOFILE, (17, 17))
        sys.setrecursionlimit(50)
        builtins.print = None
        builtins.len = lambda x: 42
        sys.stdout = open(os.devnull, "w")
        gc.disable()
        warnings.simplefilter("error")
        codecs.register(lambda name: None)
        os.register_at_fork(after_in_child=lambda: os.write(1, b"hook ran\\n"))
        atexit.register(os.write, 1, b"first task's atexit\\n")
        threading.Thread(target=__import__("time").sleep, args=(30,), daemon=True).start()
        kept = open("kept-open.txt", "w")
        os.chdir("/")
        sys.argv.append("extra")
        sys.excepthook = None
    """

    CHECK = """
        import builtins, codecs, gc, json, os, resource, signal, sys, warnings
        print(json.dumps is not None, os.sep, "/polluted" in sys.path, "fake" in sys.modules)
        print("POLLUTED" in os.environ, os.system("test -z \\"$POLLUTED_C\\""))
        print(signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT),
              signal.pthread_sigmask(signal.SIG_BLOCK, []))
        print(oct(os.umask(0o22)), resource.getrlimit(resource.RLIMIT_NOFILE),
              sys.getrecursionlimit())
        print(builtins.len("ab"), sys.stdout is sys.__stdout__, sys.excepthook is sys.__excepthook__)
        print(gc.isenabled(), warnings.filters[:1] if "warnings" in sys.modules else None)
        print(sorted(os.listdir("/proc/self/fd")), os.getcwd(), sys.argv, list(sys.modules))
    """

    def test_pollution_does_not_reach_the_next_task(self):
        self.write(self.POLLUTE)
        first = self.warm()  # (3.9 crashes in its teardown of this, cold too)
        self.assertIn(b"first task's atexit", first["stdout"])
        self.clean()
        self.compare(self.CHECK)
        # The same on a server that never ran the polluting task.
        self.drv.cmd(op="stop")
        self.start_server()
        fresh = self.warm()
        self.write(self.POLLUTE)
        self.warm()
        self.clean()
        self.write(self.CHECK)
        again = self.warm()
        self.assertEqual(again["stdout"], fresh["stdout"])

    def test_kill_own_group(self):
        self.write("""
            import os, signal, subprocess
            subprocess.Popen(["sleep", "30"])
            print("killing", flush=True)
            os.killpg(0, signal.SIGKILL)
        """)
        out = self.warm()
        self.assertEqual(out["signal"], signal.SIGKILL)
        self.assertTrue(alive(self.server_pid))
        self.write("print('still serving')\n")
        self.assertEqual(self.warm()["stdout"], b"still serving\n")

    def test_kill_request_reaches_the_group(self):
        marker = "pyfork-e2e-sleeper-%d" % os.getpid()
        self.write("""
            import subprocess, sys, time
            subprocess.Popen(["sh", "-c", "sleep 30; true", sys.argv[1]])
            print("started", flush=True)
            time.sleep(30)
        """)
        t0 = time.monotonic()
        out = self.warm([marker], kill_after_ms=1000, kill_sig=signal.SIGTERM)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(out["signal"], signal.SIGTERM, out)
        self.assertEqual(out["stdout"], b"started\n")
        from harness import pids_with_arg
        deadline = time.monotonic() + 10
        while pids_with_arg(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(pids_with_arg(marker), [])

    def test_task_cannot_find_the_server(self):
        """What the server holds (its socket, the other tasks' fds) is not
        the task's: only its 0-2 are open, and its session is its own."""
        self.write("""
            import os
            print(sorted(os.listdir("/proc/self/fd")))
            print(os.getsid(0) != os.getsid(os.getppid()))
        """)
        out = self.warm()
        self.assertEqual(out["stdout"], b"['0', '1', '2', '3']\nTrue\n")

    def test_hash_seed(self):
        """Known difference: children of one server share its str hash seed;
        a new server has a new one."""
        self.write("print(hash('tasksolver'))\n")
        a, b = self.warm()["stdout"], self.warm()["stdout"]
        self.assertEqual(a, b)
        seeds = {a}
        for _ in range(3):
            self.drv.cmd(op="stop")
            self.start_server()
            seeds.add(self.warm()["stdout"])
        self.assertGreater(len(seeds), 1)


@unittest.skipUnless(ROOT, "needs root")
class TestAsRoot(PyforkCase):
    """The product's configuration: a root server switching to nobody."""

    def setUp(self):
        self.nobody = pwd.getpwnam("nobody")
        # An interpreter under a private home (pyenv's in /root) cannot
        # start as nobody at all, warm or cold.
        if subprocess.run(["setpriv", "--reuid=%d" % self.nobody.pw_uid,
                           "--regid=%d" % self.nobody.pw_gid, "--clear-groups", PYTHON, "-c",
                           "import ctypes"], cwd="/", stderr=subprocess.DEVNULL).returncode:
            self.skipTest("nobody cannot run %s" % PYTHON)
        super().setUp()
        os.chown(self.dir, self.nobody.pw_uid, self.nobody.pw_gid)

    def as_nobody(self, **kw):
        return self.warm(uid=self.nobody.pw_uid, gid=self.nobody.pw_gid, **kw)

    def test_switch_to_nobody(self):
        self.write("""
            import ctypes, errno, os, sys
            print(os.getresuid(), os.getresgid(), os.getgroups())
            ppid = os.getppid()
            try:
                os.kill(ppid, 0)
                print("can signal the server")
            except PermissionError:
                print("cannot signal the server")
            libc = ctypes.CDLL(None, use_errno=True)
            PTRACE_ATTACH = 16
            r = libc.ptrace(PTRACE_ATTACH, ppid, None, None)
            print("ptrace", r, errno.errorcode.get(ctypes.get_errno()))
            try:
                open("/proc/%d/mem" % ppid, "rb")
                print("can read the server's memory")
            except PermissionError:
                print("cannot read the server's memory")
            print(libc.prctl(3, 0, 0, 0, 0), sorted(os.listdir("/proc/self/fd")))
            for line in open("/proc/self/status"):
                if line.startswith("Cap"):
                    print(line.split()[0], int(line.split()[1], 16))
        """)
        out = self.as_nobody()
        uid, gid = self.nobody.pw_uid, self.nobody.pw_gid
        self.assertEqual(out["code"], 0, out)
        lines = out["stdout"].decode().splitlines()
        self.assertEqual(lines[0], "(%d, %d, %d) (%d, %d, %d) []" % ((uid,) * 3 + (gid,) * 3))
        self.assertEqual(lines[1], "cannot signal the server")
        self.assertEqual(lines[2], "ptrace -1 EPERM")
        self.assertEqual(lines[3], "cannot read the server's memory")
        # Dumpable again, as after an exec: the task can read its own /proc.
        self.assertEqual(lines[4], "1 ['0', '1', '2', '3']")
        self.assertIn("CapEff: 0", lines)
        self.assertIn("CapPrm: 0", lines)
        self.assertTrue(alive(self.server_pid))

    def test_same_as_cold_as_nobody(self):
        """A cold start as nobody (setpriv) shows what a switched child
        does."""
        setpriv = shutil.which("setpriv")
        if not setpriv:
            self.skipTest("no setpriv")
        self.write("""
            import os, sys
            print(sys.path, list(sys.modules), os.getresuid(), os.getgroups())
            print(sorted(os.listdir("/proc/self/fd")), os.getcwd())
        """)
        cold = self.drv.cmd(op="cold", python=setpriv, dir=self.dir, main="--reuid=nobody",
                            args=["--regid=nogroup" if _group_exists("nogroup") else
                                  "--regid=%d" % self.nobody.pw_gid, "--clear-groups",
                                  PYTHON, "main.py"], env=self.env)
        warm = self.as_nobody()
        self.assertEqual(warm["stdout"], cold["stdout"])
        self.assertEqual(warm["stderr"], cold["stderr"])

    def test_kill_from_nobody_cannot_reach_server(self):
        self.write("""
            import os, signal
            try:
                os.kill(os.getppid(), signal.SIGKILL)
            except PermissionError:
                print("refused")
            os.killpg(0, signal.SIGKILL)
        """)
        out = self.as_nobody()
        self.assertEqual(out["stdout"], b"refused\n")
        self.assertEqual(out["signal"], signal.SIGKILL)
        self.assertTrue(alive(self.server_pid))
        self.write("import os\nprint(os.getuid())\n")
        self.assertEqual(self.as_nobody()["stdout"], b"%d\n" % self.nobody.pw_uid)

    def test_rlimits_and_cgroup(self):
        base = "/sys/fs/cgroup/pids"
        if not os.path.isdir(base):
            self.skipTest("no pids cgroup v1 hierarchy")
        cg = tempfile.mkdtemp(prefix="pyfork-e2e-", dir=base)
        try:
            self.write("""
                import resource
                print(resource.getrlimit(resource.RLIMIT_NOFILE),
                      resource.getrlimit(resource.RLIMIT_CORE))
                print([l.strip() for l in open("/proc/self/cgroup") if ":pids:" in l])
            """)
            out = self.as_nobody(limits=[["nofile", 64, 64], ["core", 0, 0]],
                                 cgroups=[os.path.join(cg, "cgroup.procs")])
            self.assertEqual(out["code"], 0, out)
            lines = out["stdout"].decode().splitlines()
            self.assertEqual(lines[0], "(64, 64) (0, 0)")
            self.assertIn(os.path.basename(cg), lines[1])
        finally:
            deadline = time.monotonic() + 10
            while True:
                try:
                    os.rmdir(cg)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


class SpareMixin:
    """Each warm task taken by a spare: the server is asked to fork it
    ahead (op prefork) before the run request."""

    def warm(self, *args, **kw):
        self.assertTrue(self.drv.cmd(op="prefork")["ok"])
        return super().warm(*args, **kw)


class TestEquivalenceSpare(SpareMixin, TestEquivalence):
    """A spare's task shows what a cold start shows."""


class TestIsolationSpare(SpareMixin, TestIsolation):
    """Nothing a task changes reaches the next through a spare."""


class TestAsRootSpare(SpareMixin, TestAsRoot):
    """A spare switches to the task's user as a fresh child does."""


class TestSpare(PyforkCase):
    """The spare itself: one at most, a child of the server's that runs
    nothing until its task comes, and gone with the server."""

    def children(self):
        path = "/proc/%d/task/%d/children" % (self.server_pid, self.server_pid)
        with open(path) as f:
            return [int(p) for p in f.read().split()]

    def spare(self):
        """Asks for a spare; returns its pid once it is there."""
        self.assertTrue(self.drv.cmd(op="prefork")["ok"])
        deadline = time.monotonic() + 30
        while not self.children():
            self.assertLess(time.monotonic(), deadline, "no spare was forked")
            time.sleep(0.01)
        kids = self.children()
        self.assertEqual(len(kids), 1, kids)
        return kids[0]

    def test_the_spare_is_the_task(self):
        self.write("import os\nprint(os.getpid())\n")
        pid = self.spare()
        self.assertEqual(self.spare(), pid)  # asked twice: still one
        # Parked: asleep on its socket once it has left the server's
        # session and fds (it can still be running that when first seen).
        deadline = time.monotonic() + 10
        while True:
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state == "S" or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        self.assertEqual(state, "S")
        out = self.warm()
        self.assertEqual(out["pid"], pid)
        self.assertEqual(out["stdout"], b"%d\n" % pid)
        self.assertEqual(self.children(), [])  # no new spare unasked

    def test_drop(self):
        pid = self.spare()
        self.assertTrue(self.drv.cmd(op="drop")["ok"])
        self.assertEqual(self.children(), [])
        self.assertFalse(alive(pid))
        self.assertTrue(self.drv.cmd(op="drop")["ok"])  # none: nothing to do
        self.write("print(1)\n")
        self.assertEqual(self.warm()["stdout"], b"1\n")

    def test_dead_spare_is_replaced(self):
        """A spare that died waiting: the task is forked as it comes."""
        pid = self.spare()
        os.kill(pid, signal.SIGKILL)
        self.write("import sys\nprint(sys.argv[1:])\n")
        out = self.warm(args=["a"])
        self.assertEqual(out["stdout"], b"['a']\n")
        self.assertNotEqual(out["pid"], pid)
        self.assertTrue(alive(self.server_pid))

    def test_large_request(self):
        """A request of many pieces reaches the spare whole."""
        args = ["%06d" % i + "x" * 200 for i in range(1500)]  # ~300 KiB
        self.spare()
        out = self.compare("import sys, os\nprint(sys.argv[1:] == %r, len(os.environ))\n" % args,
                           args=args)
        self.assertEqual(out["stdout"].split()[0], b"True")

    def test_gone_with_the_server(self):
        pid = self.spare()
        self.drv.cmd(op="stop")
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertFalse(alive(pid))


def _group_exists(name):
    import grp
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    unittest.main()
