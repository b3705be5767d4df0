"""End-to-end tests of hostile input: JSON nested deep enough to overflow a
connection thread's stack, requests whose framing is ambiguous, and client
strings that try to forge log lines. Default options: sandbox on."""

import json
import os
import socket
import tempfile
import time
import unittest

from harness import Server

# Every route that parses a JSON body, with the largest body it reads.
JSON_ROUTES = [
    ("POST", "/create_task", 100000),
    ("GET", "/get_status", 100000),  # the seed's form: the id in a body
    ("POST", "/submit", 100000),
    ("POST", "/worker", 100000),
    ("POST", "/compute", 100000),
    ("POST", "/", 65536),  # the calculation API reads at most 64 KiB
]


def raw_exchange(srv, data, timeout=5):
    """Sends data on a new connection and reads until the server closes it.
    Returns (bytes received, True if it closed, False if it went quiet)."""
    with socket.create_connection((srv.host, srv.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False


def responses(data):
    """Splits the bytes of HTTP responses with a Content-Length into
    (status, headers dict, body) tuples; whatever cannot be split is
    returned as a last element of bytes."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            out.append(data)
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


class DeepNesting(unittest.TestCase):
    """cJSON recursed once per level on a 100 KiB stack: ~811 levels of
    brackets killed the server on every JSON route."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--calc-command", "/bin/echo")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def assertAlive(self):
        self.assertIsNone(self.srv.proc.poll(), "".join(self.srv.log[-20:]))
        st, _, _ = self.srv.request("GET", "/get_task_count")
        self.assertEqual(st, 200)

    def assertRefusedDeep(self, method, path, body):
        st, hdrs, doc = self.srv.request(method, path, body)
        self.assertEqual(st, 400, doc)
        self.assertTrue(hdrs["content-type"].startswith("application/json"))
        self.assertEqual(doc["error"], "request body nests deeper than 64 levels")

    def test_deep_arrays_on_every_json_route(self):
        for method, path, size in JSON_ROUTES:
            with self.subTest(path=path):
                self.assertRefusedDeep(method, path, b"[" * size)
                self.assertAlive()

    def test_deep_objects_on_every_json_route(self):
        for method, path, size in JSON_ROUTES:
            with self.subTest(path=path):
                self.assertRefusedDeep(method, path, b'{"a":' * (size // 5))
                self.assertAlive()

    def test_first_crashing_depth(self):
        # The reported case: 1 000 levels (811 were enough).
        self.assertRefusedDeep("POST", "/create_task", b"[" * 1000)
        self.assertAlive()

    def test_limit_is_64_levels(self):
        # The object is the first level: 63 arrays inside reach the limit.
        def body(levels):
            return '{"type":"bin","file":"IyEvYmluL3NoCmVjaG8gb2sK","x":%s%s}' % (
                "[" * levels, "]" * levels)
        st, _, doc = self.srv.request("POST", "/create_task", body(63))
        self.assertEqual(st, 200, doc)
        self.assertEqual(self.srv.wait_done(doc["id"])["result"]["stdout"], "ok\n")
        self.assertRefusedDeep("POST", "/create_task", body(64))
        # Brackets inside strings are text, not nesting.
        st, _, doc = self.srv.request(
            "POST", "/create_task",
            {"type": "bin", "file": "IyEvYmluL3NoCmVjaG8gb2sK", "args": ["[" * 5000]})
        self.assertEqual(st, 200, doc)


class AmbiguousFraming(unittest.TestCase):
    """Requests whose length a proxy and the server could read differently:
    refused with a 400 JSON error, and nothing after them on the connection
    is answered. Checked on a master and on a worker node (--join)."""

    @classmethod
    def setUpClass(cls):
        cls.master = Server()
        cls.worker = None
        try:
            cls.worker = Server("--join", cls.master.url, "--name", "framing-worker")
        except Exception:
            cls.master.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.worker:
            cls.worker.stop()
        cls.master.stop()

    BODY = b'{"type":"bin","file":"IyEvYmluL3NoCmVjaG8gaGkK"}'
    SMUGGLED = b"GET /get_task_count HTTP/1.1\r\nHost: x\r\n\r\n"

    def total(self, srv):
        st, _, doc = srv.request("GET", "/get_task_count")
        self.assertEqual(st, 200)
        return doc["total"]

    def assertRefused(self, srv, request, phrase):
        """request is refused with one 400 JSON error naming phrase, the
        connection is closed, and no task was created."""
        before = self.total(srv)
        data, closed = raw_exchange(srv, request)
        got = responses(data)
        self.assertEqual(len(got), 1, data)
        status, hdrs, body = got[0]
        self.assertEqual(status, 400, data)
        self.assertEqual(hdrs.get("content-type"), "application/json")
        self.assertIn(phrase, json.loads(body)["error"])
        self.assertTrue(closed, "the connection stayed open after the 400")
        self.assertEqual(self.total(srv), before)

    def post(self, path, headers, body):
        return (b"POST %s HTTP/1.1\r\nHost: x\r\n" % path.encode() + headers + b"\r\n" + body)

    def test_two_different_content_lengths(self):
        self.assertRefused(self.master, self.post("/create_task", b"Content-Length: %d\r\n"
                                                  b"Content-Length: 3\r\n" % len(self.BODY),
                                                  self.BODY), "Content-Length")

    def test_repeated_equal_content_lengths(self):
        cl = b"Content-Length: %d\r\n" % len(self.BODY)
        self.assertRefused(self.master, self.post("/create_task", cl + cl, self.BODY),
                           "Content-Length")

    def test_content_length_and_chunked_hide_no_request(self):
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(self.BODY), self.BODY)
        req = self.post("/create_task", b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                        chunked + self.SMUGGLED)
        self.assertRefused(self.master, req, "Transfer-Encoding")
        # The same on the routes of both cluster roles.
        for srv, path in ((self.master, "/submit"), (self.worker, "/compute"),
                          (self.worker, "/create_task")):
            with self.subTest(path=path, port=srv.port):
                body = b'{"task":"1+2"}'
                req = self.post(path, b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                                b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) + self.SMUGGLED)
                self.assertRefused(srv, req, "Transfer-Encoding")

    def test_transfer_encodings_other_than_chunked(self):
        for te in (b"gzip", b"gzip, chunked", b"identity", b"chunked, identity"):
            with self.subTest(te=te):
                req = self.post("/create_task", b"Transfer-Encoding: %s\r\n" % te,
                                b"0\r\n\r\n" + self.SMUGGLED)
                self.assertRefused(self.master, req, "Transfer-Encoding")

    def test_malformed_content_length(self):
        for cl in (b"%dabc" % len(self.BODY), b"%d, %d" % (len(self.BODY), len(self.BODY)),
                   b"+%d" % len(self.BODY), b"99999999999999999999"):
            with self.subTest(cl=cl):
                self.assertRefused(self.master,
                                   self.post("/create_task", b"Content-Length: %s\r\n" % cl,
                                             self.BODY), "Content-Length")

    def test_framing_headers_past_the_64th_line(self):
        # civetweb reads 64 header lines and ignores the rest; a proxy does
        # not, and would take the body as chunked here.
        filler = b"".join(b"X-Filler-%d: 1\r\n" % i for i in range(70))
        req = self.post("/create_task", filler + b"Transfer-Encoding: chunked\r\n",
                        b"0\r\n\r\n" + self.SMUGGLED)
        self.assertRefused(self.master, req, "header lines")

    def test_checked_before_the_token(self):
        # A request that cannot be framed is not anyone's: 400, not 401.
        with tempfile.TemporaryDirectory(prefix="ts-hostile-") as d:
            token = os.path.join(d, "token")
            with open(token, "w") as f:
                f.write("hostile-token-0123456789\n")
            srv = Server("--auth-token-file", token)
            try:
                req = self.post("/get_task_count", b"Content-Length: 0\r\nContent-Length: 0\r\n"
                                b"Authorization: Bearer hostile-token-0123456789\r\n", b"")
                data, closed = raw_exchange(srv, req)
                got = responses(data)
                self.assertEqual([r[0] for r in got], [400], data)
                self.assertTrue(closed)
                data, _ = raw_exchange(srv, self.post("/get_task_count",
                                                      b"Content-Length: 1\r\nContent-Length: 2\r\n",
                                                      b"xx"))
                self.assertEqual([r[0] for r in responses(data)], [400], data)
            finally:
                srv.stop()

    def test_sound_requests_still_work(self):
        # Chunked alone, and two pipelined requests on one connection.
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(self.BODY), self.BODY)
        data, _ = raw_exchange(self.master, self.post(
            "/create_task", b"Transfer-Encoding: chunked\r\nConnection: close\r\n", chunked))
        got = responses(data)
        self.assertEqual(got[0][0], 200, data)
        tid = json.loads(got[0][2])["id"]
        self.assertEqual(self.master.wait_done(tid)["result"]["stdout"], "hi\n")
        two = self.SMUGGLED + self.SMUGGLED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        data, closed = raw_exchange(self.master, two)
        self.assertEqual([r[0] for r in responses(data)], [200, 200], data)
        self.assertTrue(closed)


class LogForging(unittest.TestCase):
    """A worker_name holding a newline wrote a forged line into the log."""

    FORGED = "2030-01-01 00:00:00.000Z ERROR forged.c:1: forged line"

    def test_worker_name_cannot_forge_a_log_line(self):
        srv = Server()
        try:
            name = "evil\n" + self.FORGED + "\r\x1b[2K"
            st, _, doc = srv.request("POST", "/worker",
                                     {"worker_name": name, "url": "http://127.0.0.1:1"})
            self.assertEqual(st, 200, doc)
            self.assertEqual(doc["worker_name"], name)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any("registered" in l for l in srv.log):
                time.sleep(0.05)
        finally:
            srv.stop()
        log = "".join(srv.log)
        lines = [l for l in srv.log if "evil" in l]
        self.assertTrue(lines, log)
        self.assertIn("evil\\n" + self.FORGED + "\\r\\x1b[2K", lines[0])
        self.assertFalse(any(l.startswith(self.FORGED) for l in srv.log), log)
        self.assertNotIn("\x1b", log)
        self.assertNotIn("\r", log)


if __name__ == "__main__":
    unittest.main()
