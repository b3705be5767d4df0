"""The packaged image and compose file, run for real: the image is built from
this checkout (packaging/Dockerfile on the base image packaging/base-image.sh
makes), the task server container is run as the README says, seed 004's
cluster comes up with docker-compose and answers an arithmetic job, and two
nodes over a PostgreSQL container serve one set of tasks.

Needs root and dockerd (Debian's docker.io). A dockerd that is not running
is started here and stopped at the end; the tests are skipped, with the
reason, only when none can run. The image is built from the source tree,
not from this build, so a sanitizer build skips them (CI runs them once).
Ports are published on 127.0.0.1 only."""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import CLI_BIN

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BASE_IMAGE = os.environ.get("TS_BASE_IMAGE", "tasksolver-base:bookworm")
IMAGE = "tasksolver:latest"
PROJECT = "tasksolvertest"
# The client docker-compose runs for its builds: two clients (Debian's and
# a newer one earlier in PATH) sent different build contexts, so the
# compose build compiled again instead of using the cache.
DOCKER = shutil.which("docker")
ENV = dict(os.environ, DOCKER_BUILDKIT="0",
           TS_BASE_IMAGE=BASE_IMAGE)

_started = None  # (Popen, log path) of a dockerd started here
_skip = None


def docker(*args, check=True, timeout=120, **kw):
    return subprocess.run([DOCKER, *args], check=check, timeout=timeout, env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def daemon_up():
    try:
        return docker("info", check=False, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def setUpModule():
    global _started, _skip
    if os.environ.get("TS_SANITIZE"):
        _skip = "the image is built from the source tree, not from this sanitizer build"
        return
    if os.geteuid() != 0:
        _skip = "dockerd and the sandbox in the container need root"
        return
    if DOCKER is None or not shutil.which("dockerd"):
        _skip = "docker.io is not installed (apt-get install docker.io docker-compose debootstrap)"
        return
    if daemon_up():
        return
    log = tempfile.NamedTemporaryFile(prefix="ts-dockerd-", suffix=".log", delete=False)
    proc = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    _started = (proc, log.name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if daemon_up():
            return
        time.sleep(0.5)
    with open(log.name) as f:
        tail = f.read()[-1500:]
    _skip = "dockerd cannot run here:\n" + tail


def tearDownModule():
    global _started
    if _started is None:
        return
    proc, log = _started
    _started = None
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    os.unlink(log)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=10):
    """Returns (status, parsed JSON) or raises OSError."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_for(check, timeout, what):
    """Polls check() until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = check()
            if v:
                return v
            last = v
        except (OSError, ValueError) as e:  # not listening yet
            last = e
        time.sleep(0.5)
    raise AssertionError("%s: not within %d s (last: %r)" % (what, timeout, last))


def build_image():
    """Makes the base image if missing and builds the image, as the README
    says; raises SkipTest without dockerd, AssertionError with the output
    when either step fails."""
    if _skip:
        raise unittest.SkipTest(_skip)
    t0 = time.monotonic()
    r = subprocess.run(["sh", os.path.join(SRC, "packaging", "base-image.sh"), BASE_IMAGE],
                       env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=900)
    if r.returncode != 0:
        raise AssertionError("base-image.sh failed:\n" + r.stdout[-3000:])
    t1 = time.monotonic()
    r = docker("build", "-f", "packaging/Dockerfile", "--build-arg", "BASE_IMAGE=" + BASE_IMAGE,
               "-t", IMAGE, ".", cwd=SRC, check=False, timeout=1200)
    if r.returncode != 0:
        raise AssertionError("docker build failed:\n" + r.stdout[-5000:])
    print("\nbase image %.1f s, image build %.1f s" % (t1 - t0, time.monotonic() - t1),
          file=sys.stderr)


class TestImage(unittest.TestCase):
    """One task server container, run as the README says."""

    @classmethod
    def setUpClass(cls):
        cls.name = None
        build_image()
        cls.port = free_port()
        cls.url = "http://127.0.0.1:%d" % cls.port
        cls.name = "tasksolvertest-%d" % os.getpid()
        r = docker("run", "-d", "--name", cls.name, "--cap-add", "SYS_ADMIN", "--cap-add",
                   "NET_ADMIN", "-p", "127.0.0.1:%d:8080" % cls.port, IMAGE, "--port", "8080",
                   "--workers", "2", check=False)
        if r.returncode != 0:
            cls.tearDownClass()
            raise AssertionError("docker run failed:\n" + r.stdout)
        try:
            cls.info = wait_for(lambda: http("GET", cls.url + "/info")[1], 60, "GET /info")
        except AssertionError:
            logs = docker("logs", cls.name, check=False).stdout
            cls.tearDownClass()
            raise AssertionError("the container did not answer:\n" + logs)

    @classmethod
    def tearDownClass(cls):
        if cls.name:
            docker("rm", "-f", "-v", cls.name, check=False)
            cls.name = None

    def run_task(self, type_, source):
        st, doc = http("POST", self.url + "/create_task",
                       {"type": type_, "file": base64.b64encode(source.encode()).decode()})
        self.assertEqual(st, 200, doc)
        task = doc["id"]

        def done():
            st, doc = http("GET", "%s/get_status?id=%s&wait=5" % (self.url, task), timeout=15)
            self.assertEqual(st, 200, doc)
            return doc if doc["status"] not in ("WAITING", "RUNNING") else None

        return wait_for(done, 60, "task " + task)

    def test_sandbox_active(self):
        sb = self.info["sandbox"]
        self.assertTrue(sb["enabled"], sb)
        self.assertTrue(sb["namespaces"], sb)
        self.assertTrue(sb["seccomp"], sb)
        self.assertFalse(sb["network"], sb)
        self.assertTrue(sb["hidden_paths"], sb)
        self.assertEqual(sb["mode"], "cell", sb)
        self.assertEqual(sb["run_as"], "tasksolver-task", sb)
        self.assertNotEqual(sb["uid"], 0)
        self.assertNotIn("tasks_refused", self.info)

    def test_python_task(self):
        doc = self.run_task("python", "import os, sys\nprint(sys.version_info[0], os.getuid())\n")
        self.assertEqual(doc["status"], "SUCCESS", doc)
        major, uid = doc["result"]["stdout"].split()
        self.assertEqual(major, "3")
        self.assertEqual(int(uid), self.info["sandbox"]["uid"])

    def test_compiled_languages(self):
        # The image installs gcc and g++ (LANGUAGE_PACKAGES): both are
        # offered, and compile and run in the container's sandbox.
        st, langs = http("GET", self.url + "/languages")
        self.assertEqual(st, 200, langs)
        self.assertLessEqual({"python", "bash", "c", "cpp"}, {l["name"] for l in langs}, langs)
        for type_, source in (("c", '#include <stdio.h>\nint main(void) { puts("c ok"); }\n'),
                              ("cpp", "#include <iostream>\n"
                                      'int main() { std::cout << "cpp ok" << std::endl; }\n')):
            doc = self.run_task(type_, source)
            self.assertEqual(doc["status"], "SUCCESS", doc)
            self.assertEqual(doc["result"]["stdout"], type_ + " ok\n", doc)
            self.assertEqual(doc["result"]["compile_exit_code"], 0, doc)

    def test_bin_task_sees_no_server(self):
        # The server's command line carries --run-as: no process a task can
        # see has it, and the task sees only its own few processes.
        doc = self.run_task("bin", "#!/bin/sh\nid -un\n"
                            "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | "
                            "grep -c -- '--run-a[s]'\nls /proc | grep -c '^[0-9]'\n")
        self.assertEqual(doc["status"], "SUCCESS", doc)
        user, server_seen, nproc = doc["result"]["stdout"].split()
        self.assertEqual(user, "tasksolver-task")
        self.assertEqual(server_seen, "0")
        self.assertLessEqual(int(nproc), 5)

    def test_journal_in_volume(self):
        r = docker("exec", self.name, "ls", "/var/lib/tasksolver")
        self.assertIn("tasks.db", r.stdout)


class TestCompose(unittest.TestCase):
    """Seed 004's cluster: docker-compose up --scale worker=3, one job."""

    @classmethod
    def setUpClass(cls):
        cls.compose = None
        build_image()
        if not shutil.which("docker-compose"):
            raise AssertionError("docker-compose is not installed (apt-get install docker-compose)")
        cls.port = free_port()
        cls.compose = ["docker-compose", "-p", PROJECT, "-f",
                       os.path.join(SRC, "packaging", "docker-compose.yml")]
        cls.env = dict(ENV, TS_PORT=str(cls.port))
        r = subprocess.run(cls.compose + ["up", "-d", "--build", "--scale", "worker=3"],
                           env=cls.env, cwd=SRC, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=1200)
        if r.returncode != 0:
            cls.tearDownClass()
            raise AssertionError("docker-compose up failed:\n" + r.stdout[-5000:])

    @classmethod
    def tearDownClass(cls):
        if cls.compose:
            subprocess.run(cls.compose + ["down", "-v", "--remove-orphans"], env=cls.env,
                           cwd=SRC, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=300)
            cls.compose = None

    def logs(self):
        return subprocess.run(self.compose + ["logs", "--no-color"], env=self.env, cwd=SRC,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=60).stdout[-5000:]

    def test_nodes_sandboxed(self):
        # cap_add in the compose file gives every node its namespaces.
        info = wait_for(lambda: http("GET", "http://127.0.0.1:%d/info" % self.port)[1], 60,
                        "the master's /info")
        sb = info["sandbox"]
        self.assertTrue(sb["namespaces"] and sb["seccomp"], sb)
        self.assertEqual((sb["mode"], sb["run_as"]), ("cell", "tasksolver-task"), sb)

    def test_job_through_master(self):
        url = "http://127.0.0.1:%d" % self.port

        def workers():
            st, doc = http("GET", url + "/workers")
            return st == 200 and len([w for w in doc if w["healthy"]]) == 3

        try:
            wait_for(workers, 60, "3 healthy workers")
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.logs()))
        r = subprocess.run([CLI_BIN, "expr", "1+(2*3)/4-5", "--url", url, "--timeout", "60"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr + self.logs())
        self.assertEqual(r.stdout.strip(), "-2.5")
        # Operations were spread over the workers' containers.
        st, doc = http("GET", url + "/workers")
        self.assertEqual(sum(w["operations"] for w in doc), 4, doc)


class TestStoreCompose(unittest.TestCase):
    """Many nodes over one PostgreSQL: docker-compose.store.yml up --scale
    node=2; a task created on one node is read on the other."""

    @classmethod
    def setUpClass(cls):
        cls.compose = None
        build_image()
        if not shutil.which("docker-compose"):
            raise AssertionError("docker-compose is not installed (apt-get install docker-compose)")
        cls.compose = ["docker-compose", "-p", PROJECT + "store", "-f",
                       os.path.join(SRC, "packaging", "docker-compose.store.yml")]
        cls.env = dict(ENV)
        r = subprocess.run(cls.compose + ["up", "-d", "--build", "--scale", "node=2"],
                           env=cls.env, cwd=SRC, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=1200)
        if r.returncode != 0:
            out = r.stdout[-5000:]
            cls.tearDownClass()
            raise AssertionError("docker-compose up failed:\n" + out)
        cls.urls = []
        for i in (1, 2):
            r = subprocess.run(cls.compose + ["port", "--index=%d" % i, "node", "8080"],
                               env=cls.env, cwd=SRC, stdout=subprocess.PIPE, text=True,
                               timeout=60)
            cls.urls.append("http://" + r.stdout.strip())

    @classmethod
    def tearDownClass(cls):
        if cls.compose:
            subprocess.run(cls.compose + ["down", "-v", "--remove-orphans"], env=cls.env,
                           cwd=SRC, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=300)
            cls.compose = None

    def logs(self):
        return subprocess.run(self.compose + ["logs", "--no-color"], env=self.env, cwd=SRC,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=60).stdout[-5000:]

    def test_two_nodes_one_service(self):
        a, b = self.urls
        try:
            nodes = wait_for(lambda: (lambda d: d if len(d) == 2 else None)(
                http("GET", a + "/nodes")[1]["nodes"]), 90, "two nodes in GET /nodes")
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.logs()))
        self.assertEqual(sum(n["workers"] for n in nodes), 4, nodes)
        src = base64.b64encode(b"print(6 * 7)\n").decode()
        st, doc = http("POST", a + "/create_task", {"type": "python", "file": src})
        self.assertEqual(st, 200, doc)
        st, doc = http("GET", "%s/get_status?id=%s&wait=30" % (b, doc["id"]), timeout=40)
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["status"], "SUCCESS", str(doc) + self.logs())
        self.assertEqual(doc["result"]["stdout"], "42\n")


if __name__ == "__main__":
    unittest.main()
