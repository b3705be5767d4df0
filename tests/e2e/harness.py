"""Shared helpers for the end-to-end suite: start the real binaries on free
ports, wait until they are ready, and talk HTTP to them.

Binaries are found through TS_BUILD_DIR (set by ctest)."""

import base64
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

BUILD_DIR = os.environ.get(
    "TS_BUILD_DIR",
    os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SERVER_BIN = os.path.join(BUILD_DIR, "server", "tasksolver")
CLI_BIN = os.path.join(BUILD_DIR, "client", "tasksolver-cli")

# Directories of which each task has its own, empty one.
TASK_PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def others_can_enter(path):
    """Whether every directory from / down to path lets others through."""
    path = os.path.abspath(path)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def task_visible_dir(enterable=False):
    """Where a test puts a file for the server to run (a program named on
    its command line): beside the build, unless tasks could not see it
    there (a build under /tmp, /var/tmp or /dev/shm, of which each task has
    its own) or, with enterable, could not enter it (a checkout under
    /root, mode 0700); under /opt then."""
    d = os.path.realpath(BUILD_DIR)
    private = any(d == p or d.startswith(p + "/") for p in TASK_PRIVATE_DIRS)
    if private or (enterable and not others_can_enter(d)):
        return "/opt"
    return BUILD_DIR

LISTEN_RE = re.compile(r"listening on http://([0-9.]+):(\d+)")


class Server:
    """A tasksolver process on a free port (--port 0), its log collected."""

    def __init__(self, *args, binary=SERVER_BIN, env=None, cwd=None):
        self.args = [binary, "--port", "0", *args]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True,
                                     env=env, cwd=cwd)
        self.log = []
        self._ready = threading.Event()
        self.host, self.port = None, None
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        if not self._ready.wait(15) or self.port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.log))

    def _read_log(self):
        for line in self.proc.stderr:
            self.log.append(line)
            m = LISTEN_RE.search(line)
            if m and not self._ready.is_set():
                self.host, self.port = m.group(1), int(m.group(2))
                self._ready.set()
        self._ready.set()

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def request(self, method, path, body=None, headers=None, timeout=30):
        """Returns (status, headers dict, parsed JSON or raw bytes)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            if hdrs.get("content-type", "").startswith("application/json"):
                data = json.loads(data)
            return resp.status, hdrs, data
        finally:
            conn.close()

    def create(self, type_, source, args=None, encode=True):
        """POSTs a task; returns (status, body)."""
        if isinstance(source, str):
            source = source.encode()
        payload = {"type": type_,
                   "file": base64.b64encode(source).decode() if encode else source.decode()}
        if args is not None:
            payload["args"] = args
        st, _, body = self.request("POST", "/create_task", payload)
        return st, body

    def create_ok(self, type_, source, args=None):
        st, body = self.create(type_, source, args)
        if st != 200:
            raise AssertionError("create_task: %d %r" % (st, body))
        return body["id"]

    def status(self, task_id, wait=None):
        path = "/get_status?id=" + task_id
        if wait is not None:
            path += "&wait=%g" % wait
        return self.request("GET", path, timeout=(wait or 0) + 30)

    def wait_status(self, task_id, status, timeout=30):
        """Polls until the task's status is `status` (RUNNING, say);
        returns its status document."""
        deadline = time.monotonic() + timeout
        while True:
            st, _, doc = self.status(task_id)
            if st != 200:
                raise AssertionError("get_status: %d %r" % (st, doc))
            if doc["status"] == status:
                return doc
            if time.monotonic() > deadline:
                raise AssertionError("task %s not %s after %s s: %r"
                                     % (task_id, status, timeout, doc))
            time.sleep(0.02)

    def wait_done(self, task_id, timeout=60):
        """Long-polls until the task is final; returns its status document."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, hdrs, doc = self.status(task_id, wait=min(10, timeout))
            if st != 200:
                raise AssertionError("get_status: %d %r" % (st, doc))
            if doc["status"] in ("SUCCESS", "ERROR"):
                return doc
            if "retry-after" in hdrs:  # the wait was not granted
                time.sleep(0.1)
        raise AssertionError("task %s not finished after %ss" % (task_id, timeout))

    def run(self, type_, source, args=None, timeout=60):
        return self.wait_done(self.create_ok(type_, source, args), timeout)

    def wait_log(self, text, timeout=10):
        """The log so far, once a line holding text is in it (or after
        timeout). The server writes a line before the answer it concerns,
        but the log is read on another thread, which a loaded machine can
        leave behind the test: a check of a running server's log waits."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.log) and time.monotonic() < deadline:
            time.sleep(0.02)
        return "".join(self.log)

    def stop(self, sig=signal.SIGTERM, timeout=30, check=True):
        """Stops the server and returns its exit code. With check, a server
        that does not exit 0 on SIGTERM/SIGINT, or that logged a sanitizer
        report at any time, fails the test."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise AssertionError("server ignored signal %d:\n%s"
                                         % (sig, "".join(self.log[-30:])))
        self._reader.join(5)
        self.proc.stderr.close()
        check_log(self.log)
        if check and sig in (signal.SIGTERM, signal.SIGINT) and self.proc.returncode != 0:
            raise AssertionError("server exited with %s:\n%s"
                                 % (self.proc.returncode, "".join(self.log[-30:])))
        return self.proc.returncode


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


# A line of the server's log ("2026-12-02 06:01:58.328Z NOTE  main.c:430:
# ..."), as opposed to a sentence it says before it exits.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+Z [A-Z]+ ")


def said_lines(stderr):
    """The lines of stderr that are not log lines: what a server that
    refuses to start says, besides what start-up logged first (such as
    the removal of a killed server's leftover work directory)."""
    return [l for l in stderr.strip().splitlines() if not LOG_LINE.match(l)]


def b64(data):
    """Standard base64 of bytes, or of text as UTF-8."""
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def task_doc(type_, source, **extra):
    """A POST /create_task body: source (text or bytes) as `file`, then
    the other fields as given."""
    doc = {"type": type_, "file": b64(source)}
    doc.update(extra)
    return doc


class ServerCase(unittest.TestCase):
    """One server shared by a class's tests: --workers 2 and `extra`."""

    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--workers", "2", *cls.extra)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def run_doc(self, doc, timeout=120):
        """Submits doc and returns the final status document."""
        st, _, res = self.srv.request("POST", "/create_task", doc)
        self.assertEqual(st, 200, res)
        return self.srv.wait_done(res["id"], timeout=timeout)


def check_log(lines):
    """Fails if a sanitizer reported anything in a process's stderr."""
    for i, line in enumerate(lines):
        if any(m in line for m in SANITIZER_MARKS):
            raise AssertionError("sanitizer report:\n" + "".join(lines[i:i + 40]))


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def children_of(pid):
    """Pids whose parent is pid (zombies included)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return out


def is_cell(pid):
    """True if pid is a worker's sandbox cell (tasksolver-exec --cell), a
    child the server keeps from task to task."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return bool(args) and args[0].endswith(b"tasksolver-exec") and b"--cell" in args


def parent_of(pid):
    """The parent pid of pid, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def is_fork_server(pid):
    """True if pid is the warm Python fork server of a sandbox cell: a child
    of a cell's init, running PYTHON /proc/self/fd/4 (its script, opened
    before the cell hid the server's directory). It has the task
    environment, but it is the cell's, not a task's."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    init = parent_of(pid)
    cell = parent_of(init) if init else None
    return len(args) >= 2 and args[1] == b"/proc/self/fd/4" and cell is not None and is_cell(cell)


def alive(pid):
    """True if pid exists and is not a zombie (an orphan whose reaper has
    not collected it yet is dead for our purposes)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def procs_with(marker):
    """Pids of the processes whose command line holds marker anywhere (in
    a script passed as an argument, say; tasks in a PID namespace are
    visible from outside it too), zombies included."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker.encode() in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def pids_with_arg(arg, program=None):
    """Live (non-zombie) pids whose command line has the argument arg and,
    with program, whose argv[0] ends with program (so that a parent that
    passes arg on is not counted with its children). Tasks in a PID
    namespace report pids the host does not know, so tests find their
    processes by a unique argument instead."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                args = f.read().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if program and not args[0].endswith(program.encode()):
            continue
        if arg.encode() in args and alive(int(name)):
            out.append(int(name))
    return out
