"""The systemd unit, packaging/tasksolver.service. systemd is not PID 1 on
the machines this is tested on, so the unit's effect is reproduced by hand:
`systemd-analyze verify` checks it against an installed tree (cmake
--install into a scratch root), and the server is run the way the unit runs
it: its ExecStart on that tree, as root with every capability (the unit
sets no User=, DynamicUser= or capability bounds), in a mount namespace
with a /tmp and /var/tmp of its own (PrivateTmp=), its StateDirectory made
with StateDirectoryMode, and LimitNOFILE. The sandbox must then be
complete: tasks run as tasksolver-task in namespaces, and the journal is
in the state directory."""

import os
import pwd
import re
import resource
import shlex
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD_DIR, Server

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(SRC, "packaging", "tasksolver.service")
CONF = os.path.join(SRC, "configs", "tasksolver.conf")
TASK_USER = "tasksolver-task"


def unit_settings():
    """The unit's [Service] settings as {key: value} (last one wins)."""
    settings, section = {}, None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
            elif section == "[Service]":
                key, _, value = line.partition("=")
                settings[key] = value
    return settings


class TestUnit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.unit = unit_settings()
        cls.added_user = False
        # The tree the unit's comment installs: binaries in /usr/bin, the
        # config in /etc/tasksolver, the unit in /etc/systemd/system. Not
        # in /tmp or /var/tmp, which the server gets private ones of (and
        # so would not find its binaries there): in /run as root.
        cls.tmp = tempfile.mkdtemp(prefix="ts-unit-",
                                   dir="/run" if os.geteuid() == 0 else None)
        cls.root = os.path.join(cls.tmp, "root")
        r = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", "/usr"],
                           env=dict(os.environ, DESTDIR=cls.root), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError("cmake --install failed:\n" + r.stdout)
        for src, dst in ((CONF, "etc/tasksolver/tasksolver.conf"),
                         (UNIT, "etc/systemd/system/tasksolver.service")):
            os.makedirs(os.path.dirname(os.path.join(cls.root, dst)), exist_ok=True)
            shutil.copy(src, os.path.join(cls.root, dst))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.added_user:
            subprocess.run(["userdel", TASK_USER], check=False)

    def env_outside_tmp(self):
        """The server's environment: TMPDIR=/tmp, and a sanitizer's
        suppressions file that lies in /tmp or /var/tmp (a checkout there),
        which the server's private ones hide, copied beside the tree."""
        env = dict(os.environ, TMPDIR="/tmp")
        for name in ("TSAN_OPTIONS", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            opts = env.get(name, "").split(":")
            for i, opt in enumerate(opts):
                key, _, path = opt.partition("=")
                if key == "suppressions" and path.startswith(("/tmp/", "/var/tmp/")):
                    copy = os.path.join(self.tmp, name.lower() + ".supp")
                    shutil.copy(path, copy)
                    opts[i] = "suppressions=" + copy
            if name in env:
                env[name] = ":".join(opts)
        return env

    def test_verify(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze (systemd) is not installed")
        # The units it depends on (sysinit.target and so on) from this host.
        shutil.copytree("/usr/lib/systemd/system",
                        os.path.join(self.root, "usr/lib/systemd/system"), symlinks=True,
                        dirs_exist_ok=True)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root=" + self.root,
                            "tasksolver.service"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("tasksolver.service", r.stdout)

    def test_runs_as_the_unit_says(self):
        if os.geteuid() != 0:
            self.skipTest("the unit runs the server as root")
        for tool in ("unshare", "prlimit", "useradd"):
            if not shutil.which(tool):
                self.skipTest("%s (util-linux, passwd) is needed" % tool)
        for key in ("User", "DynamicUser", "CapabilityBoundingSet", "AmbientCapabilities"):
            self.assertNotIn(key, self.unit, "the test runs the server as root: update it")
        try:
            pwd.getpwnam(TASK_USER)
        except KeyError:
            # As the unit's comment says to.
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                            "/nonexistent", "--shell", "/usr/sbin/nologin", TASK_USER],
                           check=True)
            type(self).added_user = True

        # StateDirectory=, in the installed tree like every path of ExecStart.
        state = os.path.join(self.root, "var/lib", self.unit["StateDirectory"])
        os.makedirs(state)
        os.chmod(state, int(self.unit["StateDirectoryMode"], 8))
        argv = [os.path.join(self.root, a[1:]) if a.startswith("/") else a
                for a in shlex.split(self.unit["ExecStart"])]
        self.assertIn(state, argv, "the unit's --data-dir is not its StateDirectory")
        self.assertEqual(self.unit.get("PrivateTmp"), "yes")
        # Raising the hard limit needs CAP_SYS_RESOURCE, which this machine's
        # root lacks (its hard limit is 20000): keep the lower one then.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = int(self.unit["LimitNOFILE"])
        if hard != resource.RLIM_INFINITY and nofile > hard:
            nofile = hard
        wrapper = os.path.join(self.tmp, "as-unit")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    "exec prlimit --nofile=%s:%s -- unshare --mount --propagation private "
                    "sh -c 'mount -t tmpfs -o mode=1777 tmpfs /tmp && "
                    "mount -t tmpfs -o mode=1777 tmpfs /var/tmp && exec \"$0\" \"$@\"' "
                    "%s \"$@\"\n" % (nofile, nofile, argv[0]))
        os.chmod(wrapper, 0o755)
        # Server puts --port 0 first: the command line wins over the
        # config's port = 8080 wherever it stands, so tests do not collide.
        srv = Server(*argv[1:], binary=wrapper, env=self.env_outside_tmp())
        try:
            st, _, info = srv.request("GET", "/info")
            self.assertEqual(st, 200)
            sb = info["sandbox"]
            self.assertNotIn("tasks_refused", info)
            self.assertTrue(sb["enabled"] and sb["namespaces"] and sb["seccomp"], sb)
            self.assertEqual(sb["run_as"], TASK_USER)
            self.assertEqual(sb["uid"], pwd.getpwnam(TASK_USER).pw_uid)
            doc = srv.run("bin", "#!/bin/sh\nid -un\nulimit -n\n"
                          "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | "
                          "grep -c -- '--data-di[r]' || true\n")
            self.assertEqual(doc["status"], "SUCCESS", doc)
            user, _, seen = doc["result"]["stdout"].split()
            self.assertEqual(user, TASK_USER)
            self.assertEqual(seen, "0")
            doc = srv.run("python", "import os\nprint(os.getuid())\n")
            self.assertEqual(doc["result"]["stdout"].strip(), str(sb["uid"]), doc)
            # The server's /tmp was its own: the default work directory is
            # not in the host's /tmp.
            self.assertFalse(any(re.match(r"tasksolver\.%d$" % srv.proc.pid, n)
                                 for n in os.listdir("/tmp")))
            self.assertTrue(os.path.exists(os.path.join(state, "tasks.db")))
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
