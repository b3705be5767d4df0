"""Slow, idle and silent connections must not keep a normal client out:
every connection holds one of the server's HTTP threads, so the server
must have threads to spare and must take them back from clients that do
not send their request in time."""

import http.client
import resource
import socket
import threading
import time
import unittest

from harness import Server

SLOW_HEAD = b"GET /get_task_count HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
IDLE_REQ = b"GET /get_task_count HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(n, hard) if hard != resource.RLIM_INFINITY else n, hard))


def open_nowait(srv, source="127.0.0.1"):
    """A connection whose handshake is not waited for: a server that has
    no thread left does not accept it, and the test must not hang on it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((source, 0))
    s.connect_ex((srv.host, srv.port))
    return s


class Attack:
    """Connections that hold the server's threads: `slow` ones send their
    headers a byte a second, `idle` ones made one keep-alive request and
    sit silent, `silent` ones never send anything."""

    def __init__(self, srv, slow, idle, silent, source="127.0.0.1"):
        self.slow = [[open_nowait(srv, source), 0] for _ in range(slow)]
        self.idle = [[open_nowait(srv, source), False] for _ in range(idle)]
        self.silent = [open_nowait(srv, source) for _ in range(silent)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _feed(self):
        while not self.stop.is_set():
            for c in self.slow:
                try:
                    c[1] += c[0].send(SLOW_HEAD[c[1]:c[1] + 1] or b"a")
                except OSError:  # not connected yet, or closed by the server
                    pass
            for c in self.idle:
                if not c[1]:
                    try:
                        c[1] = c[0].send(IDLE_REQ) == len(IDLE_REQ)
                    except OSError:
                        pass
            self.stop.wait(1.0)

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in [c[0] for c in self.slow + self.idle] + self.silent:
            s.close()


def timed_get(srv, path="/get_task_count", timeout=2.0):
    """(status or None, seconds) of a GET on a new connection."""
    t0 = time.monotonic()
    try:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        conn.close()
        return r.status, time.monotonic() - t0
    except (OSError, http.client.HTTPException):
        return None, time.monotonic() - t0


def wait_closed(sock, timeout):
    """Seconds until the server closed sock (reading what it sent first),
    or None if it stayed open for timeout seconds. Returns (seconds, data)."""
    sock.settimeout(timeout)
    t0 = time.monotonic()
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return time.monotonic() - t0, data
            data += chunk
    except socket.timeout:
        return None, data
    except ConnectionResetError:
        return time.monotonic() - t0, data


class ManyHeldConnections(unittest.TestCase):
    def test_normal_requests_answered_while_hundreds_are_slow_or_idle(self):
        # 400 connections, far more than the 64 threads the server once
        # had, and under --max-conns-per-address: all default options.
        raise_fd_limit(2048)
        srv = Server()
        attack = None
        try:
            attack = Attack(srv, slow=150, idle=150, silent=100)
            time.sleep(1.5)  # let the server take them all
            for i in range(5):
                status, took = timed_get(srv)
                self.assertEqual(status, 200, "probe %d got no answer within 2 s "
                                 "(%.1f s)" % (i, took))
                self.assertLess(took, 2.0)
                time.sleep(0.5)
        finally:
            if attack:
                attack.close()
            srv.stop()


class TimeLimits(unittest.TestCase):
    """Each limit with a short value, so that the test need not wait for
    the defaults."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--request-timeout", "1", "--keep-alive-timeout", "1",
                         "--body-timeout", "1", "--body-min-rate", "0", "--workers", "2")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def connect(self):
        return socket.create_connection((self.srv.host, self.srv.port), timeout=10)

    def test_headers_sent_a_byte_at_a_time_are_cut_off(self):
        s = self.connect()
        t0 = time.monotonic()
        try:
            for b in SLOW_HEAD[:8]:
                s.send(bytes([b]))
                time.sleep(0.3)
        except OSError:
            pass  # closed by the server already
        took, _ = wait_closed(s, 10)
        s.close()
        self.assertIsNotNone(took, "a connection still sending its headers after 10 s")
        self.assertLess(time.monotonic() - t0, 5)

    def test_a_silent_connection_is_closed(self):
        s = self.connect()
        took, _ = wait_closed(s, 10)
        s.close()
        self.assertIsNotNone(took)
        self.assertLess(took, 5)

    def test_an_idle_keep_alive_connection_is_closed(self):
        s = self.connect()
        s.sendall(IDLE_REQ)
        took, data = wait_closed(s, 10)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        self.assertIsNotNone(took)
        self.assertLess(took, 5)

    def test_a_late_body_is_answered_408(self):
        s = self.connect()
        s.sendall(b"POST /create_task HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                  b'{"type": "bin",')
        took, data = wait_closed(s, 10)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 408"), data[:200])
        self.assertIn(b'"error":"request body not received in time', data)
        self.assertLess(took, 5)

    def test_a_trickled_body_is_answered_408(self):
        # Never still for the read timeout, so only the body's own limit
        # can end it.
        s = self.connect()
        s.sendall(b"POST /create_task HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        t0 = time.monotonic()
        s.settimeout(0.25)
        data = b""
        while time.monotonic() - t0 < 10 and not data:
            try:
                s.send(b" ")
                data = s.recv(65536)
            except socket.timeout:
                pass
            except OSError:
                break
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 408"), data[:200])
        self.assertLess(time.monotonic() - t0, 5)

    def test_long_polls_and_streams_outlast_the_limits(self):
        # The limits are about clients that do not send: a long poll or a
        # stream waits on the server's side and must not be cut.
        tid = self.srv.create_ok("python", "import time\nprint('a', flush=True)\n"
                                 "time.sleep(3)\nprint('b')\n")
        conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=30)
        conn.request("GET", "/stream?id=" + tid)
        resp = conn.getresponse()
        self.assertEqual(resp.read(), b"a\nb\n")
        conn.close()
        tid = self.srv.create_ok("python", "import time\ntime.sleep(3)\n")
        t0 = time.monotonic()
        st, _, doc = self.srv.status(tid, wait=30)
        self.assertEqual((st, doc["status"]), (200, "SUCCESS"))
        self.assertGreater(time.monotonic() - t0, 2)

    def test_a_body_at_a_steady_pace_gets_through(self):
        # 1 s for the body, plus 1 s per 1000 bytes: 3000 bytes in ~1.5 s.
        # Reads end after 0.5 s of silence, so the limit is checked often.
        srv = Server("--body-timeout", "1", "--body-min-rate", "1000", "--request-timeout", "0.5")
        try:
            body = b'{"type": "python", "file": "print(1)", "args": "' + b"x" * 2950 + b'"}'
            s = socket.create_connection((srv.host, srv.port), timeout=10)
            s.sendall(b"POST /create_task HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % len(body))
            for i in range(0, len(body), 300):
                s.sendall(body[i:i + 300])
                time.sleep(0.15)
            s.settimeout(10)
            data = s.recv(65536)
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
        finally:
            srv.stop()


class PerAddressLimit(unittest.TestCase):
    def connect(self, srv):
        return socket.create_connection((srv.host, srv.port), timeout=10,
                                        source_address=("127.0.0.2", 0))

    def request_on(self, sock, close=False):
        """Sends a GET on sock and returns the answer's first bytes; the
        server has counted the connection by the time it answers."""
        sock.sendall(IDLE_REQ[:-2] + (b"Connection: close\r\n\r\n" if close else b"\r\n"))
        sock.settimeout(10)
        return sock.recv(65536)

    def test_one_address_cannot_take_every_thread(self):
        srv = Server("--http-threads", "16", "--max-conns-per-address", "4")
        held = []
        try:
            # Counting starts once a first connection has closed; the
            # server counts it out before it closes it, so seeing the end
            # of the connection is seeing that done.
            first = self.connect(srv)
            self.assertTrue(self.request_on(first, close=True).startswith(b"HTTP/1.1 200"))
            self.assertIsNotNone(wait_closed(first, 10)[0])
            first.close()
            for _ in range(4):
                held.append(self.connect(srv))
                self.assertTrue(self.request_on(held[-1]).startswith(b"HTTP/1.1 200"))
            extra = self.connect(srv)
            took, data = wait_closed(extra, 5)
            extra.close()
            self.assertIsNotNone(took, "a fifth connection from one address was kept")
            self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 429"), data[:200])
            # Another address is served meanwhile, and the first one again
            # once it has closed a connection (which the server notices a
            # moment later).
            self.assertEqual(timed_get(srv)[0], 200)
            held.pop().close()
            deadline = time.monotonic() + 10
            while True:
                again = self.connect(srv)
                try:
                    answer = self.request_on(again)
                except OSError:
                    answer = b""
                again.close()
                if answer.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer[:200])
        finally:
            for s in held:
                s.close()
            srv.stop()


if __name__ == "__main__":
    unittest.main()
