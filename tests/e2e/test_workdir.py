"""Work directories: a server killed with -9 cannot remove its
$TMPDIR/tasksolver.PID; the next server to start does, and never removes
the directory of a server that still runs."""

import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import Server

WORKDIR_RE = re.compile(r"\(work dir ([^)]+)\)")


def work_dir(srv):
    for line in srv.log:
        m = WORKDIR_RE.search(line)
        if m:
            return m.group(1)
    raise AssertionError("no work dir in the log:\n" + "".join(srv.log))


class StaleWorkDirs(unittest.TestCase):
    def setUp(self):
        # A TMPDIR of the test's own: the servers of other tests come and go
        # in /tmp meanwhile.
        self.tmp = tempfile.mkdtemp(prefix="e2e_workdir.")
        self.env = dict(os.environ, TMPDIR=self.tmp)
        self.servers = []

    def tearDown(self):
        for srv in self.servers:
            if srv.proc.poll() is None:
                srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self):
        srv = Server("--workers", "1", env=self.env)
        self.servers.append(srv)
        return srv

    def test_a_killed_servers_directory_goes_a_live_ones_stays(self):
        a, b = self.start(), self.start()
        dir_a, dir_b = work_dir(a), work_dir(b)
        self.assertEqual(os.path.dirname(dir_a), self.tmp)
        # B started while A ran: A's directory is still there.
        self.assertTrue(os.path.isdir(dir_a))
        a.run("python", "print(1)")  # a task directory inside it too
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        a.stop(check=False)
        self.assertTrue(os.path.isdir(dir_a), "nobody removes it but a new server")

        c = self.start()
        self.assertFalse(os.path.exists(dir_a), "the killed server's directory is still there")
        self.assertTrue(os.path.isdir(dir_b), "a live server's directory was removed")
        self.assertTrue(any("removed 1 work directories" in line for line in c.log), c.log)
        # The live servers still run tasks in theirs.
        self.assertEqual(b.run("python", "print(2)")["status"], "SUCCESS")
        self.assertEqual(c.run("python", "print(3)")["status"], "SUCCESS")
        b.stop()
        c.stop()
        self.assertEqual(os.listdir(self.tmp), [])

    def test_a_locked_directory_stays_a_reused_pid_does_not_keep_one(self):
        # A process that is not a server now has the PID of a dead one:
        # its directory is stale all the same.
        other = subprocess.Popen(["sleep", "60"])
        try:
            reused = os.path.join(self.tmp, "tasksolver.%d" % other.pid)
            os.makedirs(os.path.join(reused, "task-x"))
            # A directory whose server runs where its PID means nothing
            # here (another PID namespace): only its lock tells.
            locked = os.path.join(self.tmp, "tasksolver.%d" % self.dead_pid())
            os.mkdir(locked)
            fd = os.open(locked, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                srv = self.start()
                self.assertFalse(os.path.exists(reused))
                self.assertTrue(os.path.isdir(locked))
                srv.stop()
            finally:
                os.close(fd)
            srv = self.start()
            self.assertFalse(os.path.exists(locked), "unlocked and its PID gone: stale")
            srv.stop()
        finally:
            other.kill()
            other.wait()

    @staticmethod
    def dead_pid():
        p = subprocess.Popen(["true"])
        p.wait()
        return p.pid


if __name__ == "__main__":
    unittest.main()
