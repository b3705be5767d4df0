"""Hostile tasks against the sandbox.

Every case runs under small limits (time, memory, processes, files, disk)
so that a sandbox failure cannot take the test machine down. After each
one the server must still be up and run a task, the hostile task must have
ended in ERROR with a sentence naming the cause, and nothing may be left
behind: no process of the task, no task directory, no task cgroup.

Runs as root in CI (tasks then run as nobody); cases that need what the
machine does not give (namespaces, a cgroup) are skipped with the reason."""

import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BUILD_DIR, SERVER_BIN, Server, alive, fd_count, is_fork_server, pids_with_arg

ROOT = os.geteuid() == 0
LIMITS = ("--task-timeout", "20", "--task-memory", "128M", "--task-cpu", "10",
          "--task-procs", "16", "--task-fsize", "4M", "--task-disk", "16M",
          "--task-nofile", "64")


def server_cgroups(pid):
    """The parent cgroups a server made for its tasks (tasksolver.PID)."""
    found = []
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            bases = (["/sys/fs/cgroup/" + c for c in ctrls.split(",")] if ctrls
                     else ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"])
            for base in bases:
                d = base + path.rstrip("/") + "/tasksolver.%d" % pid
                if os.path.isdir(d):
                    found.append(d)
    return found


def task_groups_left(d, info, workers=2):
    """What is left in the server's cgroup directory d between tasks: with
    cells, each worker's cell keeps its group ("cell-N"), which must hold
    no process; per task, no group at all."""
    groups = [e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e))]
    if info.get("mode") != "cell":
        return groups
    cells = [g for g in groups if g.startswith("cell-")]
    left = [g for g in groups if g not in cells]
    if len(cells) > workers:
        left.append("%d cells for %d workers" % (len(cells), workers))
    for g in cells:
        try:
            with open(os.path.join(d, g, "cgroup.procs")) as f:
                if f.read().strip():
                    left.append(g + " has processes")
        except FileNotFoundError:
            pass
    return left


def task_processes(work):
    """Live processes that belong to a task run under work: every task (and
    the helper running it) has HOME=work/task-... in its environment (so
    has a cell's warm Python server, which is not a task's)."""
    key = ("HOME=" + work + "/").encode()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if key in env and alive(int(name)) and not is_fork_server(int(name)):
            out.append(int(name))
    return out


def reachable_by_tasks(path):
    """Whether tasks could walk to path: a root server's run as nobody."""
    path = os.path.realpath(path)
    while ROOT and path != "/":
        if not os.stat(path).st_mode & stat.S_IXOTH:
            return False
        path = os.path.dirname(path)
    return True


def server_as_nobody(case, *args):
    """Starts a server as nobody (with setpriv) in a home of its own and
    returns (server, home); skips case where that cannot be done. Stop the
    server and remove home afterwards."""
    if not ROOT:
        case.skipTest("already not root")
    if not shutil.which("setpriv"):
        case.skipTest("setpriv (util-linux) is needed to drop root for the server")
    # The server must be able to reach its binaries as nobody.
    path, ok = os.path.realpath(SERVER_BIN), True
    while path != "/":
        path = os.path.dirname(path)
        ok &= bool(os.stat(path).st_mode & stat.S_IXOTH)
    if not ok:
        case.skipTest("the build tree is not reachable for nobody")
    home = tempfile.mkdtemp(prefix="ts-nonroot-")
    os.chmod(home, 0o755)
    os.chown(home, 65534, 65534)
    wrapper = os.path.join(home, "run")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec setpriv --reuid 65534 --regid 65534 --clear-groups "
                "%s \"$@\"\n" % SERVER_BIN)
    os.chmod(wrapper, 0o755)
    try:
        srv = Server("--work-dir", os.path.join(home, "work"), *args, binary=wrapper,
                     env=dict(os.environ, TMPDIR=home))
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    return srv, home


def eventually(check, timeout=5.0):
    """Polls check() until it returns something falsy; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if not v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


class SandboxCase(unittest.TestCase):
    """A sandboxed server shared by the tests of a class, with checks."""

    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="ts-sandbox-")
        cls.srv = Server("--workers", "2", "--work-dir", cls.work, *LIMITS, *cls.extra)
        cls.info = cls.srv.request("GET", "/info")[2]["sandbox"]
        cls.cgroups = server_cgroups(cls.srv.proc.pid)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.work, ignore_errors=True)
        leftover = [d for d in cls.cgroups if os.path.exists(d)]
        if leftover:
            raise AssertionError("cgroups left after the server stopped: %r" % leftover)

    def need(self, what):
        """Skips unless the sandbox has `what` here, saying why."""
        ok = {"namespaces": self.info["namespaces"],
              "memory cgroup": self.info["limits"]["memory_by"] == "cgroup",
              "pids cgroup": self.info["limits"]["processes_by"] == "cgroup",
              "seccomp": self.info["seccomp"]}[what]
        if not ok:
            self.skipTest("no %s on this machine: %s" % (what, self.info["missing"]))

    def assert_clean(self):
        """The server is up and runs a task; nothing of earlier tasks is left."""
        self.assertIsNone(self.srv.proc.poll(), "the server died")
        doc = self.srv.run("bin", "#!/bin/sh\necho still here\n")
        self.assertEqual((doc["status"], doc["result"]["stdout"]), ("SUCCESS", "still here\n"),
                         doc)
        if ROOT:
            self.assertEqual(eventually(lambda: task_processes(self.work)), [],
                             "task processes left behind")
        # Each worker keeps one directory for its tasks, emptied after each.
        self.assertEqual(eventually(lambda: self.used_dirs()), [], "task files left behind")
        self.assertLessEqual(len(os.listdir(self.work)), 2)
        for d in self.cgroups:
            self.assertEqual(eventually(lambda: task_groups_left(d, self.info)), [],
                             "task cgroups or processes left in %s" % d)

    def used_dirs(self):
        """Entries of the work directory that are not emptied task
        directories (a worker keeps the last program file, which the next
        task's program overwrites)."""
        out = []
        for e in os.listdir(self.work):
            p = os.path.join(self.work, e)
            if (not e.startswith("task-") or not os.path.isdir(p) or len(os.listdir(p)) > 1 or
                    not set(os.listdir(p)) <= {"program", "main.py"}):
                out.append(e)
        return out

    def hostile(self, type_, source, args=None, status="ERROR"):
        doc = self.srv.run(type_, source, args, timeout=90)
        self.assertEqual(doc["status"], status, doc)
        self.assert_clean()
        return doc


class Hostile(SandboxCase):
    """The hostile-task suite."""

    def test_fork_bomb(self):
        doc = self.hostile("python", "import os\nwhile True:\n    os.fork()\n")
        if self.info["limits"]["processes_by"] == "cgroup":
            self.assertIn("process limit of 16 processes reached", doc["error"])
        self.assertIn("Resource temporarily unavailable", doc["result"]["stderr"])

    def test_shell_fork_bomb_is_contained(self):
        self.need("pids cgroup")
        doc = self.srv.run("bin", "#!/bin/sh\nb() { b | b & }\nb\nsleep 2\nexit 1\n", timeout=90)
        self.assertEqual(doc["status"], "ERROR")
        self.assertIn("process limit", doc["error"])
        self.assert_clean()

    def test_memory_hog(self):
        doc = self.hostile("python", "a = []\nwhile True:\n    a.append(b'x' * (1 << 24))\n")
        if self.info["limits"]["memory_by"] == "cgroup":
            self.assertIn("memory limit of 128 MiB exceeded", doc["error"])
        else:
            self.assertIn("MemoryError", doc["result"]["stderr"])

    def test_one_huge_file(self):
        doc = self.hostile("bin", "#!/bin/sh\nexec cat /dev/zero > big\n")
        self.assertIn("file size limit of 4 MiB exceeded", doc["error"])

    def test_one_huge_file_from_python(self):
        # Python ignores SIGXFSZ: the write fails with EFBIG instead.
        doc = self.hostile("python", "f = open('big', 'wb')\nwhile True:\n"
                           "    f.write(b'x' * 65536)\n")
        self.assertIn("File too large", doc["result"]["stderr"])
        if self.info["namespaces"]:
            self.assertIn("file size limit of 4 MiB exceeded", doc["error"])

    def test_disk_filler(self):
        self.need("namespaces")
        doc = self.hostile("python", "i = 0\nwhile True:\n"
                           "    open('f%d' % i, 'wb').write(b'x' * (1 << 20))\n    i += 1\n")
        self.assertIn("disk space limit of 16 MiB reached", doc["error"])
        self.assertIn("No space left on device", doc["result"]["stderr"])

    def test_tmp_filler(self):
        self.need("namespaces")
        doc = self.hostile("bin", "#!/bin/sh\ni=0\nwhile head -c 1048576 /dev/zero > /tmp/f$i;"
                           " do i=$((i+1)); done\nexit 1\n")
        self.assertIn("disk space limit", doc["error"])

    def test_fd_exhaustion(self):
        before = fd_count(self.srv.proc.pid)
        doc = self.hostile("python", "import os\nfds = []\nwhile True:\n"
                           "    fds.append(os.open('/dev/null', os.O_RDONLY))\n")
        self.assertIn("Too many open files", doc["result"]["stderr"])
        self.assertIn("exited with code 1", doc["error"])
        self.assertLessEqual(fd_count(self.srv.proc.pid), before + 1)

    def test_setsid_double_fork_escape(self):
        if not self.info["namespaces"] and not self.info["cgroup"]:
            self.skipTest("neither a PID namespace nor a cgroup here: nothing can catch a "
                          "process that left the task's session")
        mark = "987.%d" % os.getpid()
        doc = self.hostile("python", "import os, sys\nif os.fork() == 0:\n    os.setsid()\n"
                           "    if os.fork() == 0:\n"
                           "        os.execvp('sleep', ['sleep', '%s'])\n    os._exit(0)\n"
                           "os.wait()\nprint('escaped?')\nsys.exit(3)\n" % mark)
        self.assertEqual(doc["result"]["stdout"], "escaped?\n")
        self.assertEqual(eventually(lambda: pids_with_arg(mark)), [], "the escapee survived")

    def test_kill_the_parent_and_the_server(self):
        self.need("namespaces")
        doc = self.hostile("python", "import os, signal, sys\nres = []\n"
                           "for pid in (int(sys.argv[1]), os.getppid(), 1, -1):\n"
                           "    try:\n        os.kill(pid, signal.SIGKILL)\n"
                           "        res.append('sent')\n"
                           "    except OSError as e:\n        res.append(type(e).__name__)\n"
                           "print(res)\nsys.exit(1)\n", args=[str(self.srv.proc.pid)])
        # The server's pid does not exist in the task's PID namespace; its
        # parent, init, is root (or ignores signals from inside): the task
        # lives on to print.
        self.assertTrue(doc["result"]["stdout"].startswith("['ProcessLookupError', "),
                        doc["result"])
        self.assertIn("exited with code 1", doc["error"])

    def test_connect_to_the_server(self):
        self.need("namespaces")
        doc = self.hostile("python", "import socket, sys\ns = socket.socket()\n"
                           "s.settimeout(5)\ntry:\n    s.connect(('%s', %d))\n"
                           "except OSError as e:\n    print(type(e).__name__)\n    sys.exit(1)\n"
                           "print('connected')\n" % (self.srv.host, self.srv.port))
        self.assertEqual(doc["result"]["stdout"], "ConnectionRefusedError\n")

    def test_huge_argv(self):
        doc = self.hostile("bin", "#!/bin/sh\necho $#\n", args=["y" * 65536] * 200)
        self.assertIn("Argument list too long", doc["error"])

    def test_other_tasks_directory(self):
        self.need("namespaces")
        mark = "victim-%d" % os.getpid()
        victim = self.srv.create_ok("python", "import time\nopen('secret.txt', 'w')"
                                    ".write('s3cret')\ntime.sleep(3)\n# %s\n" % mark)

        # The victim's directory is the one holding its program: the task's
        # own files live on its private tmpfs, and an idle worker's directory
        # keeps the main.py of its last task, so look for this one's text.
        def holds_victim(e):
            try:
                with open(os.path.join(self.work, e, "main.py")) as f:
                    return mark in f.read()
            except OSError:
                return False

        busy = lambda: [e for e in os.listdir(self.work) if holds_victim(e)]
        self.assertNotEqual(eventually(lambda: not busy(), timeout=10), True,
                            "the first task did not start")
        other = os.path.join(self.work, busy()[0])
        doc = self.srv.run("python", "import os, sys\nfound = []\nfor p in sys.argv[1:]:\n"
                           "    try:\n        found.append((p, os.listdir(p)))\n"
                           "    except OSError as e:\n        found.append((p, type(e).__name__))\n"
                           "print(found)\nsys.exit(1)\n",
                           args=[other, self.work])
        out = doc["result"]["stdout"]
        self.assertIn("(%r, 'FileNotFoundError')" % other, out)
        # The work directory shows the task's own directory and nothing else.
        self.assertRegex(out, r"\(%r, \['task-[^']+'\]\)" % self.work)
        self.assertNotIn("s3cret", out)
        self.assertEqual(self.srv.wait_done(victim)["status"], "SUCCESS")
        self.assert_clean()

    def test_seccomp_refuses_namespaces_and_mounts(self):
        self.need("seccomp")
        doc = self.hostile("python", "import ctypes, os, sys\nlibc = ctypes.CDLL(None, "
                           "use_errno=True)\nres = []\n"
                           "for call in (lambda: libc.unshare(0x10000000),\n"
                           "             lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None),\n"
                           "             lambda: libc.ptrace(16, 1, 0, 0)):\n"
                           "    rc = call()\n    res.append((rc, os.strerror(ctypes.get_errno())))\n"
                           "print(res)\nsys.exit(1)\n")
        self.assertEqual(doc["result"]["stdout"].count("Operation not permitted"), 3, doc["result"])


class CpuLimit(SandboxCase):
    """CPU spins, under a limit of their own: a memory hog near its limit
    spends CPU time in reclaim, so the other cases get more."""

    extra = ("--task-cpu", "1")

    def test_cpu_spin(self):
        doc = self.hostile("python", "while True:\n    pass\n")
        self.assertIn("CPU time limit of 1 s exceeded", doc["error"])
        self.assertFalse(doc["result"]["timed_out"])

    def test_cpu_spin_that_ignores_sigxcpu(self):
        doc = self.hostile("python", "import signal\nsignal.signal(signal.SIGXCPU, "
                           "signal.SIG_IGN)\nwhile True:\n    pass\n")
        self.assertIn("CPU time limit of 1 s exceeded", doc["error"])
        self.assertEqual(doc["result"]["signal"], signal.SIGKILL)


class Confinement(SandboxCase):
    """What a well-behaved task sees of the machine."""

    def test_runs_unprivileged(self):
        doc = self.srv.run("bin", "#!/bin/sh\nid -u\n")
        uid = int(doc["result"]["stdout"])
        if ROOT:
            self.assertNotEqual(uid, 0)
            self.assertEqual(uid, self.info["uid"])
            self.assertEqual(self.info["run_as"], "nobody")
        else:
            self.assertEqual(uid, os.getuid())

    def test_private_tmp(self):
        self.need("namespaces")
        mark = "ts-mark-%d" % os.getpid()
        doc = self.srv.run("bin", "#!/bin/sh\nfor d in /tmp /var/tmp /dev/shm; do echo x > "
                           "$d/%s || exit 1; done\nls /tmp\n" % mark)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        for d in ("/tmp", "/var/tmp", "/dev/shm"):
            self.assertFalse(os.path.exists(os.path.join(d, mark)), d)
        doc = self.srv.run("bin", "#!/bin/sh\ncat /tmp/%s /var/tmp/%s /dev/shm/%s\n"
                           % (mark, mark, mark))
        self.assertEqual(doc["status"], "ERROR")
        self.assertEqual(doc["result"]["stdout"], "")

    def test_host_is_read_only(self):
        self.need("namespaces")
        # /run/lock is world-writable on Debian: only the read-only view
        # keeps a task from leaving files there.
        targets = ["/etc/ts-x"] + [d + "/ts-x" for d in ("/run/lock",) if os.path.isdir(d)]
        doc = self.srv.run("bin", "#!/bin/sh\nfor f in %s; do touch $f; done\n"
                           % " ".join(targets))
        self.assertEqual(doc["status"], "ERROR")
        self.assertEqual(doc["result"]["stderr"].count("Read-only file system"), len(targets),
                         doc["result"])

    def test_task_directory(self):
        doc = self.srv.run("bin", "#!/bin/sh\npwd; stat -c %a .; ls; echo > f && echo writable\n")
        lines = doc["result"]["stdout"].split("\n")
        self.assertTrue(lines[0].startswith(self.work + "/task-"), lines)
        self.assertEqual(lines[1:4], ["700", "program", "writable"])

    def test_no_processes_of_the_host(self):
        self.need("namespaces")
        doc = self.srv.run("bin", "#!/bin/sh\nls /proc | grep -c '^[0-9]'\n")
        # The shell, ls and grep; init is hidden.
        self.assertLessEqual(int(doc["result"]["stdout"]), 4)

    def test_info_and_log(self):
        self.assertTrue(self.info["enabled"])
        for key in ("namespaces", "network", "seccomp", "cgroup", "run_as", "limits", "missing"):
            self.assertIn(key, self.info)
        self.assertEqual(self.info["limits"]["memory"], 128 << 20)
        self.assertEqual(self.info["limits"]["cpu_seconds"], 10)
        self.assertEqual(self.info["limits"]["processes"], 16)
        self.assertEqual(self.info["network"], not self.info["namespaces"])
        # Logged right after the listening line.
        eventually(lambda: "start-up probe" not in "".join(self.srv.log))
        log = "".join(self.srv.log)
        self.assertIn("sandbox: tasks run as %s" % self.info["run_as"], log)
        for m in self.info["missing"]:
            self.assertIn("not available: " + m, log)
        if ROOT:
            # This machine kind has namespaces and a cgroup; if not, the
            # log says why and the tests above were skipped.
            print("\nsandbox here: %s" % self.info)


class Hidden(unittest.TestCase):
    """The config file's directory, the journal's data directory and the
    server's binaries are invisible."""

    def test_server_paths_are_hidden(self):
        # Beside the build tree: under /tmp (private to tasks anyway) only
        # when the build tree is. A build tree the tasks' user cannot walk
        # to (a checkout under /root) would hide nothing by itself: then
        # the server, a copy of it, and its paths live where that user
        # could see them if they were not hidden.
        server, base = SERVER_BIN, BUILD_DIR
        if not reachable_by_tasks(BUILD_DIR):
            base = tempfile.mkdtemp(prefix="ts-hidden-", dir="/var/lib")
            self.addCleanup(shutil.rmtree, base, True)
            os.chmod(base, 0o755)
            bindir = os.path.join(base, "bin")
            os.mkdir(bindir)
            for b in (SERVER_BIN, os.path.join(os.path.dirname(SERVER_BIN), "tasksolver-exec")):
                shutil.copy2(b, bindir)
            server = os.path.join(bindir, "tasksolver")
        conf_dir = tempfile.mkdtemp(prefix="ts-conf-", dir=base)
        work = tempfile.mkdtemp(prefix="ts-sandbox-")
        conf = os.path.join(conf_dir, "tasksolver.conf")
        with open(conf, "w") as f:
            f.write("task-timeout = 20\n")
        with open(os.path.join(conf_dir, "secret.txt"), "w") as f:
            f.write("s3cret\n")
        os.chmod(conf_dir, 0o755)
        os.chmod(os.path.join(conf_dir, "secret.txt"), 0o644)
        data = os.path.join(conf_dir, "..", os.path.basename(conf_dir) + "-data")
        srv = Server("--config", conf, "--work-dir", work, "--data-dir", data, binary=server)
        try:
            if not srv.request("GET", "/info")[2]["sandbox"]["namespaces"]:
                self.skipTest("no namespaces on this machine")
            exe_dir = os.path.dirname(os.path.realpath(server))
            self.assertTrue(os.path.exists(os.path.join(data, "tasks.db")))
            doc = srv.run("bin", "#!/bin/sh\ncat %s/secret.txt %s\nls -A %s; echo --; ls -A %s; "
                          "echo --; ls -A %s\n" % (conf_dir, conf, conf_dir, exe_dir, data))
            # The directories look empty: nothing to read, nothing listed.
            # (Under /tmp, /var/tmp or /dev/shm, which tasks get private
            # copies of, they are hidden altogether.)
            self.assertEqual(doc["result"]["stdout"], "--\n--\n")
            private = ("/tmp/", "/var/tmp/", "/dev/shm/")
            under_tmp = os.path.realpath(base).startswith(private)
            self.assertEqual(doc["result"]["stderr"].count("No such file"),
                             5 if under_tmp else 2, doc["result"])
        finally:
            srv.stop()
            shutil.rmtree(conf_dir, ignore_errors=True)
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)


class Network(SandboxCase):
    """--task-network gives tasks the host's network back."""

    extra = ("--task-network",)

    def test_task_network_flag(self):
        self.assertTrue(self.info["network"])
        doc = self.srv.run("python", "import socket\ns = socket.create_connection(('%s', %d), 5)\n"
                           "print('connected')\n" % (self.srv.host, self.srv.port))
        self.assertEqual(doc["result"]["stdout"], "connected\n", doc)


class ServerKilled(unittest.TestCase):
    def test_kill_9_of_the_server_takes_its_tasks_along(self):
        work = tempfile.mkdtemp(prefix="ts-sandbox-")
        srv = Server("--work-dir", work)
        try:
            if not srv.request("GET", "/info")[2]["sandbox"]["namespaces"]:
                self.skipTest("no namespaces on this machine")
            mark = "876.%d" % os.getpid()
            srv.create_ok("bin", "#!/bin/sh\nsetsid sleep %s &\nsleep %s\n" % (mark, mark))
            self.assertEqual(eventually(lambda: len(pids_with_arg(mark)) < 2, 10), False)
            cgroups = server_cgroups(srv.proc.pid)
            srv.stop(signal.SIGKILL, check=False)
            self.assertEqual(eventually(lambda: pids_with_arg(mark)), [], "tasks outlived the server")
            # The next server in the same cgroup removes what the dead one left.
            srv = Server("--work-dir", work)
            self.assertEqual([d for d in cgroups if os.path.exists(d)], [])
        finally:
            srv.stop(check=False)
            shutil.rmtree(work, ignore_errors=True)


class Floods(unittest.TestCase):
    def test_output_flood_on_both_streams(self):
        srv = Server("--task-timeout", "3", "--max-output", "65536")
        try:
            doc = srv.run("python", "import os\nb = b'x' * 65536\nwhile True:\n"
                          "    os.write(1, b)\n    os.write(2, b)\n")
            self.assertEqual(doc["status"], "ERROR")
            self.assertIn("timed out after 3 s", doc["error"])
            r = doc["result"]
            self.assertTrue(r["stdout_truncated"] and r["stderr_truncated"])
            self.assertEqual(len(r["stdout"]), 65536)
            self.assertIsNone(srv.proc.poll())
        finally:
            srv.stop()


class Modes(unittest.TestCase):
    def test_sandbox_off(self):
        srv = Server("--sandbox", "off")
        try:
            info = srv.request("GET", "/info")[2]["sandbox"]
            self.assertFalse(info["enabled"])
            self.assertIn("--sandbox off", info["warning"])
            eventually(lambda: "--sandbox off: tasks run as" not in "".join(srv.log))
            self.assertIn("--sandbox off: tasks run as", "".join(srv.log))
            doc = srv.run("bin", "#!/bin/sh\nid -u\n")
            self.assertEqual(int(doc["result"]["stdout"]), os.geteuid())
        finally:
            srv.stop()

    def test_run_as_needs_root_and_a_real_user(self):
        if ROOT:
            r = subprocess.run([SERVER_BIN, "--port", "0", "--run-as", "root"],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 1)
            self.assertIn("never run as root", r.stderr)
            r = subprocess.run([SERVER_BIN, "--port", "0", "--run-as", "no-such-user-xyz"],
                               capture_output=True, text=True, timeout=20)
            self.assertIn("no user 'no-such-user-xyz'", r.stderr)
        else:
            r = subprocess.run([SERVER_BIN, "--port", "0", "--run-as", "nobody"],
                               capture_output=True, text=True, timeout=20)
            self.assertIn("needs the server to run as root", r.stderr)
        self.assertEqual(r.returncode, 1)

    def test_server_not_root(self):
        """Without root the sandbox keeps what works and says what it lacks."""
        srv, home = server_as_nobody(self)
        try:
            info = srv.request("GET", "/info")[2]["sandbox"]
            self.assertTrue(info["enabled"])
            self.assertEqual(info["uid"], 65534)
            self.assertTrue(any(m.startswith("cgroup") for m in info["missing"]), info)
            doc = srv.run("bin", "#!/bin/sh\nid -u\n")
            self.assertEqual(doc["result"]["stdout"], "65534\n")
            if info["namespaces"]:
                self.assertTrue(info["user_namespace"])
                doc = srv.run("bin", "#!/bin/sh\ntouch /etc/x; ls /proc | grep -c '^[0-9]'\n")
                self.assertIn("Read-only file system", doc["result"]["stderr"])
        finally:
            srv.stop()
            shutil.rmtree(home, ignore_errors=True)

    def test_other_processes_of_the_tasks_user(self):
        """Processes of the tasks' user elsewhere on the machine (here a
        server running as nobody, some 70 threads) do not keep tasks from
        starting: behind the pids cgroup no per-user limit counts them."""
        srv = Server("--workers", "1", *LIMITS)
        try:
            info = srv.request("GET", "/info")[2]["sandbox"]
            if info["run_as"] != "nobody" or info["limits"]["processes_by"] != "cgroup":
                self.skipTest("tasks do not run as nobody behind a pids cgroup here")
            other, home = server_as_nobody(self)
            try:
                doc = srv.run("bin", "#!/bin/sh\necho ran\n")
                self.assertEqual(doc["result"]["stdout"], "ran\n", doc)
            finally:
                other.stop()
                shutil.rmtree(home, ignore_errors=True)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
