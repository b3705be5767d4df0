"""The sandbox cell: one per worker, reused from task to task.

With --workers 1 every task of a server runs in the same cell, so each
test leaves something behind in a first task and looks for it from a
second one (and from the host): processes (setsid, double fork, daemons),
files in the task directory, /tmp, /var/tmp and /dev/shm, SysV IPC
objects, POSIX message queues, sockets and ports, the PID counter, the
cgroup's figures. Then the cell's own processes must be out of a task's
reach, same uid or not, and a damaged cell must be replaced.

Runs the real server in its default configuration (sandbox on, as root
in CI: tasks run as nobody); skipped where the machine gives no cells."""

import os
import shutil
import signal
import tempfile
import unittest

import test_sandbox as ts
from harness import Server, children_of, is_cell, pids_with_arg


def cells_of(srv):
    """Pids of the server's cells (tasksolver-exec --cell)."""
    return sorted(p for p in children_of(srv.proc.pid) if is_cell(p))


def init_of(cell_pid):
    """The cell's init: the only child of the cell process."""
    kids = children_of(cell_pid)
    return kids[0] if len(kids) == 1 else None


class CellCase(unittest.TestCase):
    """A sandboxed server with one worker, shared by a class's tests."""

    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="ts-cell-")
        cls.srv = Server("--workers", "1", "--work-dir", cls.work, *ts.LIMITS, *cls.extra)
        cls.info = cls.srv.request("GET", "/info")[2]["sandbox"]

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def setUp(self):
        if self.info.get("mode") != "cell":
            self.skipTest("no cells on this machine: %s" % self.info["missing"])

    def run_ok(self, type_, source, args=None):
        doc = self.srv.run(type_, source, args, timeout=90)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        return doc["result"]["stdout"]

    def py(self, source, args=None):
        return self.run_ok("python", source, args)

    def same_cell(self, before):
        """The worker still has the cell it had (nothing was rebuilt)."""
        self.assertEqual(cells_of(self.srv), before)
        self.assertNotIn("damaged", "".join(self.srv.log))


class Leftovers(CellCase):
    """What a first task leaves is not there for the second."""

    def test_mode_is_told(self):
        self.assertEqual(self.info["mode"], "cell")
        ts.eventually(lambda: "sandbox: tasks run as" not in "".join(self.srv.log))
        self.assertIn("in a cell per worker", "".join(self.srv.log))
        # One cell for the one worker, built at its first task at the latest.
        self.run_ok("bin", "#!/bin/sh\ntrue\n")
        self.assertEqual(len(cells_of(self.srv)), 1)

    def test_processes(self):
        mark = "765.%d" % os.getpid()
        cells = cells_of(self.srv)
        # A background child, a setsid one, and a double-forked daemon that
        # closes its fds: none may survive the task.
        self.py("import os, subprocess, sys\n"
                "subprocess.Popen(['sleep', '%s'])\n"
                "subprocess.Popen(['setsid', 'sleep', '%s'], start_new_session=True)\n"
                "if os.fork() == 0:\n"
                "    os.setsid()\n"
                "    if os.fork() == 0:\n"
                "        os.closerange(0, 256)\n"
                "        os.execvp('sleep', ['sleep', '%s'])\n"
                "    os._exit(0)\n"
                "os.wait()\n" % (mark, mark, mark))
        self.assertEqual(ts.eventually(lambda: pids_with_arg(mark)), [], "a process survived")
        # The next task sees its own processes only, and starts as pid 2
        # again: pids do not tell how many processes the last one made.
        out = self.py("import os\nmine = []\nfor p in os.listdir('/proc'):\n"
                      "    if p.isdigit():\n"
                      "        try:\n"
                      "            mine.append(open('/proc/%s/cmdline' % p).read()"
                      ".replace('\\0', ' ').strip())\n"
                      "        except OSError:\n            pass\n"
                      "print(os.getpid())\nprint(mine)\n")
        pid, procs = out.split("\n", 1)
        self.assertEqual(pid, "2")
        self.assertNotIn(mark, procs)
        self.same_cell(cells)

    def test_files(self):
        cells = cells_of(self.srv)
        self.run_ok("bin", "#!/bin/sh\nset -e\n"
                    "mkdir -p a/b/c && echo x > a/b/c/f && ln -s /etc/passwd link\n"
                    "mkfifo fifo && ln program hard && chmod 0 a && chmod 777 .\n"
                    "for d in /tmp /var/tmp /dev/shm; do echo x > $d/left; mkdir $d/dir;"
                    " echo y > $d/dir/f; chmod 0 $d/dir; done\n"
                    "python3 -c \"import socket; socket.socket(socket.AF_UNIX)"
                    ".bind('/tmp/sock')\"\n"
                    "mkdir -p deep && cd deep && for i in $(seq 100); do mkdir d && cd d; done\n")
        out = self.run_ok("bin", "#!/bin/sh\nstat -c '%a %U' .\nls -A\n"
                          "find /tmp /var/tmp /dev/shm -mindepth 1\n")
        lines = out.split("\n")
        self.assertEqual(lines[:2], ["700 %s" % self.info["run_as"], "program"], out)
        # Only the way to the task directory, where the work directory is
        # under /tmp (the task directory is a mount point in it).
        task_dir = [e for e in os.listdir(self.work) if e.startswith("task-")]
        self.assertEqual(len(task_dir), 1)
        path = os.path.join(self.work, task_dir[0])
        way = set()
        for d in ("/tmp", "/var/tmp", "/dev/shm"):
            if path.startswith(d + "/"):
                way.add(path + "/program")  # find goes on into the task directory
                p = path
                while p != d:
                    way.add(p)
                    p = os.path.dirname(p)
        self.assertEqual(set(x for x in lines[2:] if x), way, out)
        self.same_cell(cells)

    def test_sysv_ipc(self):
        cells = cells_of(self.srv)
        # One segment stays attached by a background process until the end.
        self.run_ok("bin", "#!/bin/sh\nset -e\nipcmk -M 65536 && ipcmk -S 3 && ipcmk -Q\n"
                    "python3 -c \"import ctypes, time; l = ctypes.CDLL(None); "
                    "i = l.shmget(4242, 4096, 0o1600); l.shmat(i, None, 0); time.sleep(60)\" &\n"
                    "sleep 0.2\nipcs\n")
        out = self.run_ok("bin", "#!/bin/sh\ncat /proc/sysvipc/shm /proc/sysvipc/sem "
                          "/proc/sysvipc/msg\n")
        rows = [line for line in out.split("\n") if line.strip()]
        self.assertEqual(len(rows), 3, out)  # the three headers
        self.assertTrue(all(r.split()[0] == "key" for r in rows), out)
        self.same_cell(cells)

    def test_posix_message_queues(self):
        cells = cells_of(self.srv)
        prog = ("import ctypes, os, sys\nrt = ctypes.CDLL('librt.so.1', use_errno=True)\n"
                "rt.mq_open.restype = ctypes.c_int\n"
                "fd = rt.mq_open(b'/ts-left', os.O_RDONLY | %s, 0o666, None)\n"
                "print(fd >= 0, os.strerror(ctypes.get_errno()) if fd < 0 else '')\n")
        out = self.py(prog % "os.O_CREAT")
        self.assertTrue(out.startswith("True"), out)
        out = self.py(prog % "0")
        self.assertEqual(out, "False No such file or directory\n")
        self.same_cell(cells)

    def test_ports_and_sockets(self):
        cells = cells_of(self.srv)
        # A listener, a finished connection (TIME_WAIT on the listener's
        # port), a UDP socket and an abstract unix socket, one of each held
        # by a daemon.
        self.py("import os, socket, time\n"
                "l = socket.socket(); l.bind(('127.0.0.1', 7001)); l.listen()\n"
                "c = socket.create_connection(('127.0.0.1', 7001)); a, _ = l.accept()\n"
                "a.sendall(b'x'); c.recv(1); a.close(); c.close(); l.close()\n"
                "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 7002))\n"
                "x = socket.socket(socket.AF_UNIX); x.bind('\\0ts-left')\n"
                "if os.fork() == 0:\n"
                "    os.setsid()\n"
                "    d = socket.socket(); d.bind(('127.0.0.1', 7003)); d.listen()\n"
                "    time.sleep(60)\n"
                "time.sleep(0.2)\n")
        out = self.py("import socket\nres = []\n"
                      "tcp = [l.split()[3] for l in open('/proc/net/tcp').readlines()[1:]]\n"
                      "unix = '@ts-left' in open('/proc/net/unix').read()\n"
                      "for fam, typ, addr in ((socket.AF_INET, socket.SOCK_STREAM, ('127.0.0.1', 7001)),\n"
                      "                       (socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', 7002)),\n"
                      "                       (socket.AF_INET, socket.SOCK_STREAM, ('127.0.0.1', 7003)),\n"
                      "                       (socket.AF_UNIX, socket.SOCK_STREAM, '\\0ts-left')):\n"
                      "    s = socket.socket(fam, typ)\n"
                      "    try:\n        s.bind(addr); res.append('free')\n"
                      "    except OSError as e:\n        res.append(e.strerror)\n"
                      "print(res, tcp, unix)\n")
        self.assertEqual(out, "['free', 'free', 'free', 'free'] [] False\n")
        self.same_cell(cells)

    def test_cgroup_figures_are_per_task(self):
        if self.info["limits"]["memory_by"] != "cgroup":
            self.skipTest("no memory cgroup here")
        cells = cells_of(self.srv)
        # Over the limit: killed, and said so.
        doc = self.srv.run("python", "a = []\nwhile True:\n    a.append(b'x' * (1 << 24))\n",
                           timeout=90)
        self.assertIn("memory limit of 128 MiB exceeded", doc["error"])
        # The next task ends well and is not blamed for the last one's kill.
        doc = self.srv.run("bin", "#!/bin/sh\nexit 3\n")
        self.assertEqual(doc["error"], "exited with code 3")
        # A task reading its group's high-water mark (cgroup v1) sees its
        # own use, not the last task's 128 MiB.
        if self.info["cgroup"] == "v1":
            out = self.py("import re\n"
                          "g = re.search(r':memory:(.*)', open('/proc/self/cgroup').read())"
                          ".group(1)\n"
                          "print(int(open('/sys/fs/cgroup/memory%s/memory.max_usage_in_bytes' % g)"
                          ".read()) >> 20)\n")
            self.assertLess(int(out), 64)
        if self.info["limits"]["processes_by"] == "cgroup":
            doc = self.srv.run("python", "import os\nwhile True:\n    os.fork()\n", timeout=90)
            self.assertIn("process limit of 16 processes reached", doc["error"])
            doc = self.srv.run("bin", "#!/bin/sh\nexit 4\n")
            self.assertEqual(doc["error"], "exited with code 4")
        self.same_cell(cells)

    def test_argv_beyond_one_message(self):
        # 300 arguments of 1000 bytes travel in a memfd, not the socket.
        out = self.run_ok("bin", "#!/bin/sh\necho $# ${#1}\n", args=["y" * 1000] * 300)
        self.assertEqual(out, "300 1000\n")


class Reach(CellCase):
    """A task cannot see, signal, trace or write the cell's own processes."""

    ATTACK = (
        "import ctypes, os, signal, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "me = os.getpid()\n"
        "pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
        "res = {'visible': sorted(pids)}\n"
        "for pid in sorted(set(pids + [1])):\n"
        "    if pid == me:\n        continue\n"
        "    r = []\n"
        "    try:\n        os.kill(pid, signal.SIGKILL); r.append('killed')\n"
        "    except OSError as e:\n        r.append(type(e).__name__)\n"
        "    rc = libc.ptrace(16, pid, 0, 0)\n"
        "    r.append('attached' if rc == 0 else os.strerror(ctypes.get_errno()))\n"
        "    try:\n"
        "        with open('/proc/%d/mem' % pid, 'r+b') as f:\n"
        "            f.seek(0x400000); f.write(b'x'); r.append('written')\n"
        "    except OSError as e:\n        r.append(type(e).__name__)\n"
        "    res[pid] = r\n"
        "try:\n    os.kill(-1, signal.SIGKILL); res['all'] = 'sent'\n"
        "except OSError as e:\n    res['all'] = type(e).__name__\n"
        "print(res)\n")

    def check_attack(self, srv):
        cells = cells_of(srv)
        inits = [init_of(c) for c in cells]
        doc = srv.run("python", self.ATTACK, timeout=60)
        self.assertEqual(doc["status"], "SUCCESS", doc)
        out = doc["result"]["stdout"]
        # Nothing but the task itself is visible, and pid 1 is out of reach.
        self.assertTrue(out.startswith("{'visible': [2], 1: ['"), out)
        self.assertNotIn("attached", out)
        self.assertNotIn("written", out)
        # The cell is unharmed: same processes, and the next task runs.
        self.assertEqual(cells_of(srv), cells)
        self.assertEqual([init_of(c) for c in cells], inits)
        doc = srv.run("bin", "#!/bin/sh\necho still $$\n")
        self.assertEqual(doc["result"]["stdout"], "still 2\n", doc)
        self.assertEqual(cells_of(srv), cells)
        self.assertNotIn("damaged", "".join(srv.log))

    def test_cell_processes_are_out_of_reach(self):
        self.run_ok("bin", "#!/bin/sh\ntrue\n")  # the cell exists
        self.check_attack(self.srv)

    def test_same_uid_as_the_cell(self):
        """A server that is not root: tasks keep its uid, which its cell's
        processes have too; the namespaces still keep them apart."""
        srv, home = ts.server_as_nobody(self, "--workers", "1")
        try:
            info = srv.request("GET", "/info")[2]["sandbox"]
            if info.get("mode") != "cell":
                self.skipTest("no cells for a server that is not root here: %s"
                              % info["missing"])
            doc = srv.run("bin", "#!/bin/sh\nid -u\n")
            self.assertEqual(doc["result"]["stdout"], "65534\n")
            cell = cells_of(srv)[0]
            self.assertEqual(os.stat("/proc/%d" % init_of(cell)).st_uid, 65534)
            self.check_attack(srv)
        finally:
            srv.stop()
            shutil.rmtree(home, ignore_errors=True)


class TimeoutCell(CellCase):
    """Timeouts and a damaged cell."""

    extra = ("--task-timeout", "2")

    def test_timeout_kills_everything_and_keeps_the_cell(self):
        mark = "543.%d" % os.getpid()
        self.run_ok("bin", "#!/bin/sh\ntrue\n")
        cells = cells_of(self.srv)
        doc = self.srv.run("python", "import subprocess, time\n"
                           "subprocess.Popen(['sleep', '%s'], start_new_session=True)\n"
                           "time.sleep(600)\n" % mark)
        self.assertIn("timed out after 2 s", doc["error"])
        self.assertEqual(ts.eventually(lambda: pids_with_arg(mark)), [])
        self.assertEqual(self.run_ok("bin", "#!/bin/sh\necho $$\n"), "2\n")
        self.assertEqual(cells_of(self.srv), cells)

    def test_a_dead_cell_is_replaced(self):
        self.run_ok("bin", "#!/bin/sh\ntrue\n")
        cells = cells_of(self.srv)
        # Its init killed from outside while it waits for a task.
        os.kill(init_of(cells[0]), signal.SIGKILL)
        self.assertEqual(self.run_ok("bin", "#!/bin/sh\necho $$\n"), "2\n")
        self.assertNotEqual(cells_of(self.srv), cells)
        self.assertIn("damaged", self.srv.wait_log("damaged"))
        # And while a task runs: the task ends killed, the next one runs.
        mark = "432.%d" % os.getpid()
        cells = cells_of(self.srv)
        tid = self.srv.create_ok("bin", "#!/bin/sh\nsleep %s\n" % mark)
        self.assertEqual(ts.eventually(lambda: not pids_with_arg(mark), 10), False)
        os.kill(cells[0], signal.SIGKILL)
        doc = self.srv.wait_done(tid)
        self.assertEqual(doc["status"], "ERROR")
        self.assertIn("SIGKILL", doc["error"])
        self.assertEqual(ts.eventually(lambda: pids_with_arg(mark)), [])
        self.assertEqual(self.run_ok("bin", "#!/bin/sh\necho again\n"), "again\n")
        self.assertNotEqual(cells_of(self.srv), cells)

    def test_a_cell_that_does_not_answer_is_replaced(self):
        # An init that cannot answer (stopped from outside) when the task's
        # time is up: the server gives it 5 s to report, then kills the
        # cell, which takes the task with it.
        self.run_ok("bin", "#!/bin/sh\ntrue\n")
        cells = cells_of(self.srv)
        mark = "321.%d" % os.getpid()
        tid = self.srv.create_ok("bin", "#!/bin/sh\nsleep %s\n" % mark)
        self.assertEqual(ts.eventually(lambda: not pids_with_arg(mark), 10), False)
        os.kill(init_of(cells[0]), signal.SIGSTOP)
        doc = self.srv.wait_done(tid, timeout=60)
        self.assertIn("timed out after 2 s", doc["error"])
        self.assertGreater(doc["meta"]["run_ms"], 6000)
        self.assertEqual(ts.eventually(lambda: pids_with_arg(mark)), [])
        self.assertEqual(self.run_ok("bin", "#!/bin/sh\necho $$\n"), "2\n")
        self.assertNotEqual(cells_of(self.srv), cells)

    def test_a_failed_cleanup_replaces_the_cell(self):
        # Deeper than the cell empties (256 levels): the cell is not used
        # again, and the next task gets a fresh one, clean.
        self.py("import os\nos.makedirs('/tmp/' + 'd/' * 300)\n")
        out = self.run_ok("bin", "#!/bin/sh\nls -A /tmp | grep -c '^d$'\ntrue\n")
        self.assertEqual(out, "0\n")
        self.assertIn("damaged", self.srv.wait_log("damaged"))


class PerTask(unittest.TestCase):
    """--sandbox-cell off: a sandbox per task, as where cells cannot be built."""

    def test_per_task_mode(self):
        srv = Server("--workers", "1", "--sandbox-cell", "off")
        try:
            info = srv.request("GET", "/info")[2]["sandbox"]
            self.assertEqual(info["mode"], "per_task")
            self.assertEqual(cells_of(srv), [])
            doc = srv.run("bin", "#!/bin/sh\necho x > /tmp/f; echo $$\n")
            self.assertEqual(doc["result"]["stdout"], "2\n")
            doc = srv.run("bin", "#!/bin/sh\nls -A /tmp | grep -c '^f$'; true\n")
            self.assertEqual(doc["result"]["stdout"], "0\n")
            ts.eventually(lambda: "sandbox: tasks run as" not in "".join(srv.log))
            self.assertIn("in a sandbox per task", "".join(srv.log))
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
