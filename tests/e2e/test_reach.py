"""What the command line tells tasks to run, with the sandbox on (the
default): a --calc-command program runs wherever it lives, under a
directory closed to the tasks' user (like a checkout under /root, mode
0700) or under /tmp (tasks have their own); anything else out of the
tasks' reach stops the start-up with a sentence that says what to do."""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD_DIR, CLI_BIN, SERVER_BIN, Server, said_lines, task_visible_dir

ROOT = os.geteuid() == 0
CALC_SLEEP = os.path.abspath(os.path.join(BUILD_DIR, "bench", "calc_sleep"))


def start_fails(*args, cwd=None):
    """Runs the server expecting it to refuse to start: (exit code, stderr)."""
    p = subprocess.run([SERVER_BIN, "--port", "0", *args], capture_output=True, text=True,
                       timeout=30, cwd=cwd)
    return p.returncode, p.stderr


class Reach(unittest.TestCase):

    def setUp(self):
        # A directory the tasks' user cannot enter (tempfile makes it 0700,
        # owned by the server's user), not in a /tmp the tasks lack.
        self.closed = tempfile.mkdtemp(prefix="ts-closed-", dir=task_visible_dir())
        self.addCleanup(shutil.rmtree, self.closed, True)

    def calc_server(self, program, *args, cwd=None):
        srv = Server("--workers", "2", "--calc-command", "%s 1 5" % program, *args, cwd=cwd)
        self.addCleanup(srv.stop)
        return srv

    def calculate(self, srv, n):
        st, _, doc = srv.request("POST", "/", {"data": n})
        self.assertEqual(st, 200, doc)
        return srv.wait_done(doc["request_id"])

    def assert_doubles(self, srv):
        for n in (3, 21):
            doc = self.calculate(srv, n)
            self.assertEqual((doc["status"], doc["result"]["stdout"]), ("SUCCESS", "%d\n" % (2 * n)),
                             doc)
        st, _, doc = srv.request("GET", "/?request_id=" + self.calculate(srv, 8)["id"])
        self.assertEqual((st, doc), (200, {"result": 16}))

    def copy_calc(self, where):
        path = os.path.join(where, "calc_sleep")
        shutil.copy2(CALC_SLEEP, path)
        return path

    def test_a_program_in_a_closed_directory_runs(self):
        if not ROOT:
            self.skipTest("tasks run as the server's own user: nothing is closed to them")
        srv = self.calc_server(self.copy_calc(self.closed))
        self.assert_doubles(srv)
        note = [l for l in srv.log if "each calculation gets a copy" in l]
        self.assertEqual(len(note), 1, srv.log)
        self.assertIn("mode 0700", note[0])

    def test_a_program_under_tmp_runs(self):
        tmp = tempfile.mkdtemp(prefix="ts-calc-", dir="/tmp")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        srv = self.calc_server(self.copy_calc(tmp))
        if not srv.request("GET", "/info")[2]["sandbox"]["private_tmp"]:
            self.skipTest("no mount namespace here: tasks see the host's /tmp")
        self.assert_doubles(srv)
        self.assertTrue(any("tasks have a /tmp of their own" in l for l in srv.log), srv.log)

    def test_a_relative_program_runs(self):
        self.copy_calc(self.closed)
        srv = self.calc_server("./calc_sleep", cwd=self.closed)
        self.assert_doubles(srv)

    def test_a_program_within_reach_runs_where_it_is(self):
        srv = self.calc_server("/bin/echo")
        self.assertEqual(self.calculate(srv, 5)["result"]["stdout"], "1 5 5\n")
        self.assertFalse(any("gets a copy" in l for l in srv.log), srv.log)

    def test_the_batch_client_against_a_closed_program(self):
        srv = Server("--workers", "5", "--max-queue", "0", "--reject-status", "403",
                     "--calc-command", "%s 1 10" % self.copy_calc(self.closed))
        self.addCleanup(srv.stop)
        inp = os.path.join(self.closed, "numbers.txt")
        with open(inp, "w") as f:
            f.write("".join("%d\n" % n for n in range(1, 41)))
        p = subprocess.run([CLI_BIN, "batch", inp, "--url", srv.url], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(p.stdout.splitlines()),
                         sorted("%d %d" % (n, 2 * n) for n in range(1, 41)))

    def test_what_cannot_be_reached_stops_the_start(self):
        if not ROOT:
            self.skipTest("tasks run as the server's own user: nothing is closed to them")
        script = os.path.join(self.closed, "calc.py")
        with open(script, "w") as f:
            f.write("import sys\nprint(2 * int(sys.argv[1]))\n")
        python = os.path.join(self.closed, "python3")
        os.symlink("/usr/bin/python3", python)
        cases = [
            (("--calc-command", "/usr/bin/python3 " + script),
             [script, "nobody", "mode 0700", "make it the program itself"]),
            (("--python", python), ["--python " + python, "nobody", "mode 0700"]),
            (("--work-dir", os.path.join(self.closed, "work")),
             ["cannot reach their directories", "nobody", "--work-dir", "mode 0700"]),
            (("--calc-command", "no-such-program-here 1"),
             ["no program no-such-program-here in the tasks' PATH"]),
            (("--calc-command", os.path.join(self.closed, "missing") + " 1"),
             ["No such file or directory"]),
        ]
        for args, words in cases:
            rc, err = start_fails(*args)
            self.assertEqual(rc, 1, (args, err))
            self.assertEqual(len(said_lines(err)), 1, err)
            for w in words:
                self.assertIn(w, err, args)


if __name__ == "__main__":
    unittest.main()
