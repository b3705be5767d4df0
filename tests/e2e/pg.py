"""A private PostgreSQL 15 for the tests of the shared store (--store).

PostgreSQL() runs initdb and starts the server as the postgres user (initdb
refuses root) in a temporary directory under /tmp, which that user can
reach, on a free loopback port; stop() (also called at interpreter exit)
stops it and removes the directory. The binaries are taken from
/usr/lib/postgresql/15/bin, never from PATH.
"""
import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

PG_BIN = "/usr/lib/postgresql/15/bin"


def available():
    """Why PostgreSQL cannot be started here, or None."""
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        return "PostgreSQL 15 is not installed (packaging/install-deps.sh test)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user"
    if os.geteuid() != 0:
        return "starting PostgreSQL as postgres needs root"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgreSQL:
    def __init__(self):
        pw = pwd.getpwnam("postgres")
        self.dir = tempfile.mkdtemp(prefix="ts-pg-", dir="/tmp")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.running = False
        atexit.register(self.stop)
        self._pg("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _pg(self, prog, *args, check=True):
        return subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(PG_BIN, prog),
                               *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=check, timeout=60)

    @property
    def url(self):
        return "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    def start(self):
        self._pg("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"),
                 "-o", "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"
                 " -c max_connections=200" % (self.port, self.dir), "start")
        self.running = True

    def stop_server(self, mode="fast"):
        self._pg("pg_ctl", "-D", self.data, "-w", "-m", mode, "stop", check=False)
        self.running = False

    def psql(self, sql, db="postgres"):
        """Runs sql with psql in database db; returns its unaligned output."""
        r = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(PG_BIN, "psql"),
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-Atqc", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        if r.returncode:
            raise RuntimeError("psql: " + r.stderr)
        return r.stdout.strip()

    def stop(self):
        if self.dir is None:
            return
        if self.running:
            self.stop_server("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
