# pyfork: warm Python for tasksolver. A fork server: an interpreter that
# has finished its start-up and forks one child per task, so that a task
# skips the initialisation a cold `python3 main.py` pays for (most of its
# ~9.5 ms here), yet sees what a cold start would show it.
#
# Started as `PYTHON /path/pyfork.py` (any python3 >= 3.9; no options, so
# that sys.flags are a cold start's) with the task environment, cwd /,
# stdin, stdout and stderr on /dev/null, and an AF_UNIX SOCK_SEQPACKET
# control socket on fd 3. It runs one task at a time. runner/pyfork_client.h
# is the C side of the same protocol.
#
# Protocol: one message per datagram, a verb first.
#   server -> client (ASCII, words separated by one space):
#     ready PID      once warm; PID is the server's own, in its namespace
#     pid N          the task's process was forked: pid N, which is also its
#                    session and process group id (in the server's namespace)
#     exit STATUS UTIME_US STIME_US MAXRSS_KB
#                    the task's process was reaped: raw wait status, user and
#                    system CPU time in microseconds, peak RSS in KiB. Its
#                    process group was SIGKILLed first, so nothing it left in
#                    the group outlives it
#     fail SENTENCE  the task could not be started; comes instead of "exit",
#                    after "pid" when the child failed to set itself up, or
#                    alone when the request was refused (bad field, no fork)
#     dropped        the answer to "drop"
#   client -> server:
#     part\0FIELDS   the first pieces of a run request (optional)
#     run\0FIELDS    the last (often the only) piece; the server then starts
#                    the task. The request's fields are the concatenation of
#                    the FIELDS of its pieces, so a piece may end mid-field.
#                    The first piece carries the task's stdin, stdout and
#                    stderr, in that order, as SCM_RIGHTS, then any
#                    cgroup.procs (or cgroup v1 "tasks") files the child
#                    joins by writing "0", open for writing (a sandbox whose
#                    file system is read-only cannot name them by path)
#     kill SIG       send SIG to the task's process group (nothing if no task
#                    runs)
#     spare          fork the next task's process now (nothing if a task
#                    runs, a request is under way or one is forked
#                    already; no reply): it waits, with the server's user,
#                    in a session of its own, for the next run request,
#                    which the server hands on to it, so that the fork is
#                    no part of the task's latency. It shows as a child of
#                    the server's that is not the task
#     drop           kill and reap the spare, if any; the server answers
#                    "dropped" (its pid is free again then)
#     EOF            the server SIGKILLs the task's group, reaps it and exits
#   Fields each end with a NUL; the first byte says what it is:
#     Ddir           the task directory (required); the child's cwd
#     Mmain          the main file, as it would be given to python (required)
#     Aarg           one argument after the main file; in order
#     EKEY=VALUE     one environment entry, in order; the child's whole
#                    environment (none: an empty one)
#     Uuid, Ggid     the user and group to switch to (both or neither; the
#                    server must be root)
#     Lname soft hard  an rlimit for the child (name as in RLIMIT_NAME, lower
#                    case; values in the limit's unit, or "inf")
#     Cpath          a cgroup.procs file the child joins (before it drops its
#                    privileges)
#   A message that breaks these rules (unknown verb, a run request while a
#   task runs) ends the server, as EOF does.
#
# The child (a spare is one forked ahead, which does the first two steps at
# once and waits for its request): new session, without the server's fds;
# the three fds on 0, 1, 2; the cgroups it was sent; every other fd closed;
# rlimits; the cgroups named by path; then, if asked, setgroups([]),
# setresgid, setresuid (in this order: once the uid is gone, the groups can
# no longer be changed) and dumpable again as after an exec; cwd the task
# directory, entered as the task's user (a server left with only the
# capabilities to switch users and to signal its children cannot enter a
# directory of the task's that is closed to others); signal dispositions and
# mask as a cold interpreter has them. It then
# becomes what `python3 main.py ARGS` in the task directory would be:
# sys.modules scrubbed back to what a cold start had loaded when its main
# script began (taken at the top of this file, which is such a script), a
# new __main__ module, sys.argv, sys.orig_argv, sys.path, the import cache,
# os.environ and the C environment from the request, new sys.std* streams
# on the new fds 0-2, and the program compiled and run in __main__. The
# interpreter prints an uncaught exception as it leaves this file's frame
# (which the traceback does not show), as a cold run's leaves its own. The
# end is then the interpreter's, done by the child up to the teardown:
# flush, join the threads, run the exit functions, flush again and exit
# with the status a cold run has (sys.exit's, 1, or death by SIGINT for a
# KeyboardInterrupt). The teardown itself is skipped when nothing in it
# could show (no finalizer, weakref callback, open file, generator with a
# finally, or other thread left among what the program created): in a
# forked child it costs more than the rest of a trivial task, as every
# page it touches is copied. Otherwise the interpreter tears down as it
# would cold. To tell the program's objects apart, the server freezes its
# own (gc.freeze) before it serves.
#
# Where that could differ from a cold start, the child executes a cold
# interpreter instead (after the same set-up): an environment that differs
# from the server's in what start-up reads (PYTHON*, locale, PATH, TZ, a
# HOME whose user site-packages would change sys.path), a main file that
# python would not run as plain source (a directory, a zip, a .pyc, one it
# cannot read) and a program that does not compile (python then reports
# the error itself, exactly).
#
# Known differences, by design: the program's top-level frame is called
# from this file's, so sys._getframe(1), inspect.stack() and a warning
# whose stacklevel reaches above the program see one more frame
# (tracebacks hide it); os.getppid() is the server; the server's objects
# are frozen, so gc.get_freeze_count() is not 0 and gc.get_objects()
# leaves them out; and every child of one server shares its str hash seed
# (see the README: Warm Python).
#
# This file must not import at module level anything a cold start does not
# load, except what the child removes again from sys.modules.

_cold_main = dict(globals())
import sys
import os

if sys.version_info < (3, 9):
    sys.exit("pyfork: Python 3.9 or later is needed (os.pidfd_open)")

_cold_modules = frozenset(sys.modules)
_cold_path = tuple(sys.path)
_cold_importer_keys = frozenset(sys.path_importer_cache)
_cold_hooks = tuple(sys.path_hooks)
_self_file = __file__
_self_dir = os.path.dirname(os.path.realpath(_self_file))
_start_env = dict(os.environb)
# The same as request fields (E entries), in order: the usual request.
_start_entries = [k + b"=" + v for k, v in _start_env.items()]
_stdio = tuple(None if s is None else (s.encoding, s.errors)
               for s in (sys.stdin, sys.stdout, sys.stderr))
_unbuffered = sys.stdout is not None and bool(sys.stdout.write_through)
_argv0 = getattr(sys, "orig_argv", [sys.executable])[0]

# What a server needs beyond a cold start; each child removes them again.
# Not looked for next to this script (a child gets the cold sys.path back).
sys.path = [p for p in _cold_path if p != _self_dir]
import _signal
import _socket
import _thread
import _weakref
import atexit
import gc
import io
import resource
import select

_dumpable = None
if os.geteuid() == 0:
    # After setresuid the kernel makes the child non-dumpable, which a cold
    # start (an exec as that user) is not: /proc/self/fd would then belong
    # to root and be unreadable by the task itself.
    try:
        import ctypes
        _dumpable = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        _dumpable = None

# The first compile() builds the AST types (~2 ms here); pay it once.
compile(b"", "<pyfork>", "exec", 0, True)

# The fds a run request may carry: stdin, stdout, stderr and cgroups.
_MAX_FDS = 3 + 16

_SIGNALS = tuple(s for s in range(1, _signal.NSIG)
                 if s not in (_signal.SIGKILL, _signal.SIGSTOP))
_IO_TYPES = (io.TextIOWrapper, io.BufferedReader, io.BufferedWriter, io.BufferedRandom,
             io.BufferedRWPair, io.FileIO)


def _generator():
    yield


async def _coroutine():
    pass


async def _async_generator():
    yield


_g, _c, _a = _generator(), _coroutine(), _async_generator()
_GENERATOR_TYPES = (type(_g), type(_c), type(_a))  # in this order
_c.close()  # or it warns that it was never awaited
del _g, _c, _a

# What a cold interpreter sets at start-up (everything else is default).
_COLD_SIGNALS = {
    _signal.SIGINT: _signal.default_int_handler,
    _signal.SIGPIPE: _signal.SIG_IGN,
    _signal.SIGXFSZ: _signal.SIG_IGN,
}


def _startup_var(key):
    """Whether CPython reads environment variable `key` (bytes) while it
    starts, so that a different value would make a different interpreter."""
    return key.startswith(b"PYTHON") or key in (b"LANG", b"LC_ALL", b"LC_CTYPE",
                                                b"PATH", b"TZ")


class _Fail(Exception):
    """A run that cannot start; the message is the reply's sentence."""


class _Cold(Exception):
    """The child must execute a cold interpreter instead."""


class _Request:
    def __init__(self, payload, fds):
        self.fds = fds
        self.dir = self.main = self.uid = self.gid = None
        self.args, self.env, self.limits, self.cgroups = [], [], [], []
        fields = payload.split(b"\0")
        if fields.pop() != b"":
            raise _Fail("bad request: unterminated field")
        for f in fields:
            tag, val = f[:1], f[1:]
            if tag == b"D":
                self.dir = val
            elif tag == b"M":
                self.main = val
            elif tag == b"A":
                self.args.append(val)
            elif tag == b"E":
                self.env.append(val)
            elif tag == b"U":
                self.uid = self._int(val)
            elif tag == b"G":
                self.gid = self._int(val)
            elif tag == b"L":
                self.limits.append(self._limit(val))
            elif tag == b"C":
                self.cgroups.append(val)
            else:
                raise _Fail("bad request: unknown field %r" % f[:20])
        if not self.dir or not self.main:
            raise _Fail("bad request: no directory or main file")
        if (self.uid is None) != (self.gid is None):
            raise _Fail("bad request: a uid needs a gid and a gid a uid")
        if self.uid is not None and os.geteuid() != 0:
            raise _Fail("cannot switch users: the fork server is not root")
        if len(fds) < 3:
            raise _Fail("bad request: %d fds instead of 3 or more" % len(fds))

    @staticmethod
    def _int(val):
        if not val.isdigit():
            raise _Fail("bad request: not a number: %r" % val[:20])
        return int(val)

    @staticmethod
    def _limit(val):
        words = val.split(b" ")
        res = getattr(resource, "RLIMIT_" + words[0].decode("ascii", "replace").upper(), None)
        if len(words) != 3 or not words[0].isalpha() or res is None:
            raise _Fail("bad request: bad limit %r" % val[:40])
        soft, hard = (resource.RLIM_INFINITY if w == b"inf" else _Request._int(w)
                      for w in words[1:])
        return words[0].decode(), res, soft, hard


def _oserror(what, e):
    return _Fail("%s: %s" % (what, os.strerror(e.errno) if e.errno else str(e)))


def _close_inherited():
    """Closes every fd but 0-3: whatever started us may have leaked some,
    and a child must not inherit them."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(4, 1024)
    for fd in fds:
        if fd > 3:
            try:
                os.close(fd)
            except OSError:
                pass


def _set_signals(cold):
    """Puts every signal at a cold interpreter's disposition (cold), or at
    the default (for an exec). Only what differs is set: in the usual
    child nothing does."""
    for sig in _SIGNALS:
        want = _COLD_SIGNALS.get(sig, _signal.SIG_DFL) if cold else _signal.SIG_DFL
        cur = _signal.getsignal(sig)
        if cur is not None and cur != want:
            _signal.signal(sig, want)


def _leave_server(sock, errr):
    """The first steps of a child of the server's, task or spare: a session
    of its own, without the server's fds."""
    os.setsid()
    sock.detach()
    os.close(3)
    os.close(errr)


def _child_setup(req):
    """The child's system set-up, from the server's user to the task's."""
    for i, fd in enumerate(req.fds[:3]):
        os.dup2(fd, i)
    for fd in req.fds[3:]:
        try:
            # "0" is the writer, the whole child (it has one thread): also
            # right for a cgroup v1 "tasks" file, which joins faster.
            os.write(fd, b"0")
        except OSError as e:
            raise _oserror("could not join a cgroup", e)
    for fd in set(req.fds):
        if fd > 2:
            os.close(fd)
    for name, res, soft, hard in req.limits:
        try:
            resource.setrlimit(res, (soft, hard))
        except (OSError, ValueError) as e:
            raise _Fail("could not set the %s limit: %s" % (name, e))
    pid = b"%d" % os.getpid()
    for path in req.cgroups:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        except OSError as e:
            raise _oserror("could not join the cgroup %s" % os.fsdecode(path), e)
    if req.uid is not None:
        try:
            os.setgroups([])
            os.setresgid(req.gid, req.gid, req.gid)
            os.setresuid(req.uid, req.uid, req.uid)
        except OSError as e:
            raise _oserror("could not switch to uid %d gid %d" % (req.uid, req.gid), e)
        if _dumpable is not None:
            _dumpable(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
    try:
        os.chdir(req.dir)
    except OSError as e:
        raise _oserror("could not enter %s" % os.fsdecode(req.dir), e)


def _exec_cold(req, env):
    """Replaces the child with a cold `python main ARGS`."""
    _set_signals(False)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    argv = [_argv0, req.main] + req.args
    try:
        os.execve(sys.executable, argv, env)
    except OSError as e:
        raise _oserror("could not execute %s" % sys.executable, e)


def _make_stdio(fd, write, name, params):
    """A std stream on fd as CPython's start-up makes it (create_stdio)."""
    buffering = 0 if (_unbuffered and write) else -1
    buf = io.open(fd, "wb" if write else "rb", buffering, None, None, None, False)
    raw = buf.raw if buffering else buf
    raw.name = name
    line = not _unbuffered and (raw.isatty() or fd == 2)
    stream = io.TextIOWrapper(buf, params[0], params[1], "\n", line, _unbuffered)
    stream.mode = "w" if write else "r"
    return stream


def _user_site(env):
    """Points site's user directories at the request's HOME as a cold start
    would; raises _Cold when that would change sys.path."""
    site = sys.modules.get("site")
    if site is None:
        return
    old, new = _start_env.get(b"HOME"), env.get(b"HOME")
    if old != new and (site.USER_BASE or site.USER_SITE):
        if old is None or new is None:
            raise _Cold()
        old, new = os.fsdecode(old), os.fsdecode(new)
        moved = []
        for path in (site.USER_BASE, site.USER_SITE):
            if path is not None and path.startswith(old):
                path = new + path[len(old):]
            elif path is not None:
                raise _Cold()
            moved.append(path)
        site.USER_BASE, site.USER_SITE = moved
    if site.USER_SITE:
        used = bool(site.ENABLE_USER_SITE) and os.path.isdir(site.USER_SITE)
        if used != (site.USER_SITE in _cold_path):
            raise _Cold()


def _usual_hooks(hooks):
    """Whether hooks are a cold start's: the zip importer, then the
    directory finder."""
    return len(hooks) == 2 and hooks[0] is _cold_hooks[0] and hooks[1] is _cold_hooks[1] and \
        getattr(hooks[0], "__name__", None) == "zipimporter" and \
        "FileFinder" in getattr(hooks[1], "__qualname__", "")


def _become_main(req):
    """Turns the child into a cold start of req.main, as the task's user.
    Returns the code and the globals to run it with; raises _Cold."""
    # Each page a child touches is copied: the usual environment, the
    # server's own, is not taken apart again.
    same_env = req.env == _start_entries
    env = _start_env if same_env else {}
    for entry in () if same_env else req.env:
        key, eq, value = entry.partition(b"=")
        if not eq or not key or key in env:
            raise _Cold()  # a C environment os.environ cannot mirror
        env[key] = value
    for key in () if same_env else set(env) | set(_start_env):
        if _startup_var(key) and env.get(key) != _start_env.get(key):
            raise _Cold()

    for name in _extra[1]:
        sys.modules.pop(name, None)
    cache = sys.path_importer_cache
    for key in _extra[2]:
        cache.pop(key, None)

    main = os.fsdecode(req.main)
    filename = main if main.startswith("/") else os.path.join(os.getcwd(), main)
    try:
        fd = os.open(filename, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        raise _Cold()  # python says it cannot open it, its way
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        raise _Cold()  # a directory, for one: python runs its __main__
    finally:
        os.close(fd)
    source = b"".join(chunks)
    # As pymain_get_importer: a file that a path hook takes (a zip) would
    # run its __main__. The usual hooks are spared a file that cannot be
    # a zip (no end-of-directory record within the last 64 KiB).
    cache[filename] = None
    if not _usual_hooks(sys.path_hooks) or b"PK\x05\x06" in source[-65557:]:
        for hook in sys.path_hooks:
            try:
                hook(filename)
            except ImportError:
                continue
            raise _Cold()
    if source[:2] == sys.modules["_frozen_importlib_external"].MAGIC_NUMBER[:2]:
        raise _Cold()  # python runs such a file as bytecode

    # os.environ writes through to the C environment, which the program's
    # children inherit; its data is posix.environ, kept in the same order.
    # (The server's own, in the same order, is there already.)
    if not same_env:
        os.environ.clear()
        for key, value in env.items():
            os.environ[os.fsdecode(key)] = os.fsdecode(value)
    _user_site(env)

    if _stdio[0] is None or _stdio[1] is None or _stdio[2] is None:
        raise _Cold()
    sys.stdin = sys.__stdin__ = _make_stdio(0, False, "<stdin>", _stdio[0])
    sys.stdout = sys.__stdout__ = _make_stdio(1, True, "<stdout>", _stdio[1])
    sys.stderr = sys.__stderr__ = _make_stdio(2, True, "<stderr>", _stdio[2])

    args = [os.fsdecode(a) for a in req.args]
    sys.argv = [main] + args
    if hasattr(sys, "orig_argv"):
        sys.orig_argv = [sys.orig_argv[0], main] + args
    path = list(_cold_path)
    if path and path[0] == _self_dir:
        path[0] = os.path.dirname(os.path.realpath(filename))
    sys.path = path

    module = type(sys)("__main__")
    g = module.__dict__
    g.clear()
    known = {"__name__": "__main__", "__doc__": None, "__package__": None,
             "__loader__": type(_cold_main["__loader__"])("__main__", filename),
             "__spec__": None, "__annotations__": {}, "__file__": filename,
             "__cached__": None}
    for key, value in _cold_main.items():
        g[key] = known.get(key, value)
    sys.modules["__main__"] = module

    _set_signals(True)

    # Warnings the compiler prints go out only if it succeeds: otherwise the
    # cold interpreter that takes over prints them (and the error) itself.
    err, sys.stderr = sys.stderr, io.StringIO()
    try:
        code = compile(source, filename, "exec", 0, True)
    except BaseException:
        raise _Cold()
    finally:
        said, sys.stderr = sys.stderr.getvalue(), err
    if said:
        err.write(said)
    return code, g


def _child(req, errw):
    """Runs in the child of a fork once it has left the server, every
    signal blocked. Returns the code and globals of the program; a failure
    is written to errw and ends the child."""
    try:
        _child_setup(req)
        try:
            code = _become_main(req)
        except _Cold:
            _exec_cold(req, dict(e.partition(b"=")[::2] for e in req.env))
        os.close(errw)
        return code
    except _Fail as e:
        why = str(e)
    except BaseException as e:
        why = "%s: %s" % (type(e).__name__, e)
    try:
        os.write(errw, why.encode("utf-8", "replace")[:1000])
    finally:
        os._exit(127)


def _signal_task(pid, sig):
    """Sends sig to the task's group, or to the task alone if it has not
    made its session yet (then it has started nothing else)."""
    try:
        if os.getsid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except OSError:
        pass


class _Task:
    def __init__(self, pid, pidfd, errr):
        self.pid, self.pidfd, self.errr = pid, pidfd, errr

    def reap(self):
        """Kills what is left of the task's group, reaps it, and returns the
        reply that says how it ended."""
        try:
            # Safe: until the reap, the pid (hence a group of that id) is ours.
            os.killpg(self.pid, _signal.SIGKILL)
        except OSError:
            pass
        _, status, ru = os.wait4(self.pid, 0)
        os.close(self.pidfd)
        why = b""
        try:
            while True:
                chunk = os.read(self.errr, 4096)
                if not chunk:
                    break
                why += chunk
        finally:
            os.close(self.errr)
        if why:
            return b"fail " + why
        return b"exit %d %d %d %d" % (status, round(ru.ru_utime * 1e6), round(ru.ru_stime * 1e6),
                                      ru.ru_maxrss)


# What a child removes from sys.modules and the importer cache: the
# server's lengths of both when listed, and the lists.
_extra = None


def _list_extra():
    """Lists, in the server, what a child removes (_extra)."""
    # Listed here where it costs no copied pages, and once: the server
    # imports nothing once it serves, and listing touches (so, after the
    # last fork, faults in) every page a name is on.
    global _extra
    lengths = (len(sys.modules), len(sys.path_importer_cache))
    if _extra is None or _extra[0] != lengths:
        _extra = (lengths, [n for n in sys.modules if n not in _cold_modules],
                  [k for k in sys.path_importer_cache
                   if k not in _cold_importer_keys or k == _self_file])


def _fork():
    """Forks a child of the server's with every signal blocked. Returns
    (pid, errr, errw); raises _Fail."""
    _list_extra()
    errr, errw = os.pipe()
    old = _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    try:
        pid = os.fork()
    except OSError as e:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old)
        os.close(errr)
        os.close(errw)
        raise _oserror("could not fork", e)
    if pid != 0:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old)
        os.close(errw)
    return pid, errr, errw


def _start(req, sock):
    """Forks the task. Returns (child's code, globals) in the child, the
    _Task in the server."""
    pid, errr, errw = _fork()
    if pid == 0:
        _leave_server(sock, errr)
        return _child(req, errw)
    return _Task(pid, os.pidfd_open(pid), errr)


# A spare's messages: the request's fds come with the first, and the
# request's fields follow a byte that says whether more is to come. The
# size keeps a message well under the socket buffer (208 KiB).
_SPARE_CHUNK = 1 << 16
_SPARE_MORE, _SPARE_LAST = b"p", b"r"


class _Spare:
    """The next task's process, forked ahead (the "spare" verb) from the
    pristine server, with the server's user, in a session of its own, that
    waits on its own socket for the request and has run nothing of any
    task's: the fork (the copy of the interpreter's page tables) is then
    no part of a task's latency."""

    def __init__(self, pid, errr, chan):
        self.pid, self.errr, self.chan = pid, errr, chan
        self.pidfd = os.pidfd_open(pid)

    def hand(self, payload, fds):
        """Gives the spare its task (the request's fields and fds, which
        remain the caller's). Returns the _Task, or None if the spare is
        gone (the server then forks the task itself)."""
        anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                b"".join(f.to_bytes(4, sys.byteorder) for f in fds))]
        try:
            off = 0
            while True:
                chunk = payload[off:off + _SPARE_CHUNK]
                off += len(chunk)
                more = off < len(payload)
                self.chan.sendmsg([_SPARE_MORE if more else _SPARE_LAST, chunk], anc)
                anc = []
                if not more:
                    break
        except OSError:
            self.drop()
            return None
        self.chan.close()
        return _Task(self.pid, self.pidfd, self.errr)

    def drop(self):
        """Kills and reaps the spare."""
        try:
            os.kill(self.pid, _signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.pidfd)
        os.close(self.errr)
        self.chan.close()


def _fork_spare(sock):
    """Forks a spare. Returns the _Spare in the server (None if it could
    not fork: the next task is forked as it comes), and (code, globals)
    in the spare once it has had its task."""
    try:
        mine, its = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    except OSError:
        return None
    try:
        pid, errr, errw = _fork()
    except _Fail:
        mine.close()
        its.close()
        return None
    if pid != 0:
        its.close()
        return _Spare(pid, errr, mine)
    mine.close()
    _leave_server(sock, errr)
    try:
        fdsize = _socket.CMSG_SPACE(_MAX_FDS * 4)
        payload, fds = [], []
        while True:
            msg, anc, flags, _ = its.recvmsg(1 << 17, fdsize, _socket.MSG_CMSG_CLOEXEC)
            if not msg:
                os._exit(0)  # the server is gone, or dropped us
            fds += _fds_of(anc)
            if flags & (_socket.MSG_TRUNC | _socket.MSG_CTRUNC):
                raise _Fail("bad request: truncated on its way to the spare")
            payload.append(msg[1:])
            if msg[:1] == _SPARE_LAST:
                break
        its.close()
        req = _Request(b"".join(payload), fds)
    except _Fail as e:
        why = str(e)
    except BaseException as e:
        why = "%s: %s" % (type(e).__name__, e)
    else:
        return _child(req, errw)
    try:
        os.write(errw, why.encode("utf-8", "replace")[:1000])
    finally:
        os._exit(127)


def _fds_of(anc):
    """The fds of recvmsg's ancillary data."""
    got = []
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            n = len(data) - len(data) % 4
            got += [int.from_bytes(data[i:i + 4], sys.byteorder) for i in range(0, n, 4)]
    return got


def _serve():
    """The server's loop. Returns only in a child: (code, globals)."""
    _close_inherited()
    os.set_inheritable(3, False)
    sock = _socket.socket(fileno=3)
    # Children then leave the server's objects out of their collections
    # and scans: a collection writes to every object it visits, which in a
    # child copies the page (a full one at exit cost ~3 ms here).
    gc.collect()
    gc.freeze()
    sock.send(b"ready %d" % os.getpid())
    poller = select.poll()
    poller.register(3, select.POLLIN)
    fdsize = _socket.CMSG_SPACE(_MAX_FDS * 4)
    task, spare, payload, fds = None, None, [], None
    while True:
        for fd, _ in poller.poll():
            if task is not None and fd == task.pidfd:
                poller.unregister(task.pidfd)
                sock.send(task.reap())
                task = None
                continue
            msg, anc, flags, _ = sock.recvmsg(1 << 17, fdsize, _socket.MSG_CMSG_CLOEXEC)
            got = _fds_of(anc)
            sep = b"\0" if msg.startswith((b"part\0", b"run\0")) else b" "
            verb, _, rest = msg.partition(sep)
            if not msg or flags & (_socket.MSG_TRUNC | _socket.MSG_CTRUNC) or \
                    (verb in (b"part", b"run") and task is not None) or \
                    verb not in (b"part", b"run", b"kill", b"spare", b"drop"):
                if task is not None:  # EOF or nonsense: the end
                    _signal_task(task.pid, _signal.SIGKILL)
                    task.reap()
                if spare is not None:
                    spare.drop()
                os._exit(0 if not msg else 2)
            if verb in (b"kill", b"spare", b"drop"):
                for f in got:
                    os.close(f)
                if verb == b"kill" and task is not None and rest.isdigit():
                    _signal_task(task.pid, int(rest))
                if verb == b"spare" and task is None and spare is None and not payload:
                    spare = _fork_spare(sock)
                    if isinstance(spare, tuple):
                        return spare  # in the spare, which has had its task
                if verb == b"drop":
                    if spare is not None:
                        spare.drop()
                        spare = None
                    sock.send(b"dropped")
                continue
            if fds is None:
                fds = got
            else:
                for f in got:
                    os.close(f)
            payload.append(rest)
            if verb == b"part":
                continue
            try:
                whole = b"".join(payload)
                req, out = _Request(whole, fds), None
                if spare is not None:
                    out, spare = spare.hand(whole, fds), None
                if out is None:
                    out = _start(req, sock)
            except _Fail as e:
                out = b"fail " + str(e).encode("utf-8", "replace")
            if isinstance(out, tuple):
                return out  # in the child, which has closed what it had to
            for f in fds:
                os.close(f)
            payload, fds = [], None
            if isinstance(out, bytes):
                sock.send(out)
                continue
            task = out
            poller.register(task.pidfd, select.POLLIN)
            sock.send(b"pid %d" % task.pid)


def _exit_status(e):
    """The status the interpreter exits with for uncaught e: a number,
    "SIGINT" (KeyboardInterrupt), or None (not known)."""
    if isinstance(e, KeyboardInterrupt):
        return "SIGINT"
    if not isinstance(e, SystemExit):
        return 1
    try:
        code = e.code
    except BaseException:
        return None
    if code is None:
        return 0
    if isinstance(code, int):
        # exit() takes a C long; the kernel keeps its low 8 bits.
        return code & 0xFF if -(1 << 63) <= code < (1 << 63) else None
    return 1


# Reading a class's own attributes without its metaclass's hooks: the
# scan below must not run any of the program's code.
_mro_of = type.__dict__["__mro__"].__get__
_dict_of = type.__dict__["__dict__"].__get__
_flags_of = type.__dict__["__flags__"].__get__
_callback_of = _weakref.ref.__dict__["__callback__"].__get__
_FunctionType = type(_startup_var)
_BuiltinType = type(len)
_TPFLAGS_HAVE_GC = 1 << 14


def _tidy_callback(cb):
    """Whether a weakref callback only tidies up a container: those of the
    weak containers (weakref, _weakrefset), of logging's handler list, and
    of the ABC caches and thread-locals in C (_abc, _thread), bound to a
    weakref of their own."""
    if type(cb) is _FunctionType:
        return cb.__module__ in ("weakref", "_weakrefset") or \
            (cb.__module__ == "logging" and cb.__qualname__ == "_removeHandlerRef")
    return type(cb) is _BuiltinType and type(cb.__self__) is _weakref.ref and \
        cb.__name__ in ("_destroy", "_localdummy_destroyed")


def _closed(f):
    """f.closed, if f and the layers under it are the C io classes (whose
    closed reads the layer under it); None otherwise."""
    while True:
        t = type(f)
        if t is io.FileIO or t is io.BytesIO:
            return f.closed
        if t is io.TextIOWrapper:
            f = f.buffer
        elif t is io.BufferedReader or t is io.BufferedWriter or t is io.BufferedRandom:
            f = f.raw
        else:
            return None


def _finalizers_left():
    """Whether tearing the interpreter down could still do something the
    program's output would show: run a __del__, a weakref callback, a
    generator's finally, flush or close a file, or end another thread.
    Only what the child created is looked at (the server froze its own
    objects), and only by type and C-level fields: no code of the
    program's runs here."""
    if _thread._count():
        return True
    objs = gc.get_objects()
    if len(objs) > 100000:
        return True  # not worth scanning: the teardown is the program's share
    std = set()
    for f in (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__):
        while type(f) in _IO_TYPES and id(f) not in std:
            std.add(id(f))
            f = f.buffer if type(f) is io.TextIOWrapper else getattr(f, "raw", None)
    has_del = {}
    for o in objs:
        t = type(o)
        d = has_del.get(id(t))
        if d is None:
            d = has_del[id(t)] = any("__del__" in _dict_of(k) for k in _mro_of(t))
        if not d:
            if issubclass(t, _weakref.ref):
                cb = _callback_of(o)
                if cb is not None and not _tidy_callback(cb):
                    return True
            elif issubclass(t, (_weakref.ProxyType, _weakref.CallableProxyType)):
                return True
            elif issubclass(t, type) and not _flags_of(o) & _TPFLAGS_HAVE_GC and \
                    any("__del__" in _dict_of(k) for k in _mro_of(o)):
                return True  # its instances are not tracked: assume one lives
            continue
        if t is io.StringIO or t is io.BytesIO:
            continue
        if t in _IO_TYPES and (id(o) in std or _closed(o)):
            continue
        if t in _GENERATOR_TYPES:
            frame = o.gi_frame if t is _GENERATOR_TYPES[0] else \
                o.cr_frame if t is _GENERATOR_TYPES[1] else o.ag_frame
            # A generator expression has no try, with or finally of its own.
            if frame is None or (t is _GENERATOR_TYPES[0] and o.gi_code.co_name == "<genexpr>"):
                continue
        return True
    return False


def _flush_io():
    """As the interpreter flushes once the main module has run (flush_io):
    stderr, then stdout, errors ignored."""
    for f in (sys.stderr, sys.stdout):
        try:
            f.flush()
        except BaseException:
            pass


def _finish(status):
    """The end of the program's run, as Py_FinalizeEx does it up to the
    teardown: join the threads, run the exit functions, flush stdout and
    stderr. The teardown is most of a warm task's cost (every page it
    touches is copied from the server), so when nothing in it could show,
    exit now with the status the interpreter would have. Otherwise return
    (the interpreter's second join and exit-function run then find nothing
    left to do) and let the interpreter finish as a cold one does: its
    flush reports an error, its teardown runs the finalizers."""
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        try:
            # The program's atexit (3.9 keeps a registry per module object).
            sys.modules.get("atexit", atexit)._run_exitfuncs()
        except BaseException:
            pass  # printed already; the interpreter drops it too (3.9)
        if status is not None:
            for f in (sys.stdout, sys.stderr):
                if f is not None and not getattr(f, "closed", False):
                    f.flush()
            if not _finalizers_left():
                if status == "SIGINT":
                    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
                    os.kill(os.getpid(), _signal.SIGINT)
                    os._exit(130)
                os._exit(status)
    except BaseException:
        pass
    # The teardown must see every object, as a cold one does: a cycle
    # holding the program's globals may run through the server's objects.
    gc.unfreeze()


def _strip(tb):
    """tb without its leading entries in this file (our frames)."""
    while tb is not None and tb.tb_frame.f_code.co_filename == _self_file:
        tb = tb.tb_next
    return tb


def _show_as_cold(hook, g, status):
    """An excepthook for the exception that ended the program: hides our
    frames from hook, restores it, drops __file__ from g as a cold run
    does once it has printed the exception, and finishes the run."""

    def show(kind, value, tb):
        sys.excepthook = hook
        tb = _strip(tb)
        if isinstance(value, BaseException):
            value.__traceback__ = tb
        if getattr(sys, "last_traceback", None) is not None:
            sys.last_traceback = tb
        try:
            hook(kind, value, tb)
        except SystemExit:
            gc.unfreeze()  # the interpreter exits with it, its way
            raise
        except BaseException as e:
            # The interpreter shows "Error in sys.excepthook" and both
            # exceptions; without this frame in the first. From 3.11 on a
            # re-raise keeps the exception's traceback; before, do as the
            # interpreter does (PyErr_PrintEx).
            e.__traceback__ = _strip(e.__traceback__)
            if sys.version_info >= (3, 11):
                gc.unfreeze()
                raise
            sys.stderr.write("Error in sys.excepthook:\n")
            sys.__excepthook__(type(e), e, e.__traceback__)
            sys.stderr.write("\nOriginal exception was:\n")
            sys.__excepthook__(kind, value, tb)
        finally:
            g.pop("__file__", None)
            g.pop("__cached__", None)
        _finish(status)

    return show


_code, _globals = _serve()
try:
    # The child's last step as the server: signals arrive from here on,
    # and a KeyboardInterrupt they raise is the program's.
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    exec(_code, _globals)
except SystemExit as _e:
    _flush_io()
    _status = _exit_status(_e)
    if _status is not None and (_e.code is None or isinstance(_e.code, int)):
        _finish(_status)
        raise SystemExit(_status)  # not printed, as its code is a number
    if type(_e.code) is str and type(sys.stderr) is io.TextIOWrapper:
        # What the interpreter does with it (handle_system_exit).
        sys.stderr.write(_e.code)
        sys.stderr.write("\n")
        _finish(1)
        raise SystemExit(1)
    gc.unfreeze()
    _e.__traceback__ = None
    raise
except BaseException as _e:
    # The interpreter prints the exception as it leaves this frame and
    # then exits as a cold run would (by SIGINT for a KeyboardInterrupt).
    # Our frames must not show: from 3.11 on the re-raise below takes the
    # stripped traceback; before, the hook strips what it is given.
    _e.__traceback__ = _strip(_e.__traceback__)
    if getattr(sys, "excepthook", None) is not None:
        sys.excepthook = _show_as_cold(sys.excepthook, _globals, _exit_status(_e))
    else:
        gc.unfreeze()
    raise
_globals.pop("__file__", None)
_globals.pop("__cached__", None)
_flush_io()
_finish(0)
