"""GET /stream: following a task's stdout while it runs."""

import http.client
import time
import unittest

from harness import Server

TICKER = ("import time\n"
          "for i in range(12):\n"
          "    print('line', i, flush=True)\n"
          "    time.sleep(0.1)\n")


class Stream(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--workers", "2")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def open_stream(self, tid):
        conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=30)
        conn.request("GET", "/stream?id=" + tid)
        return conn, conn.getresponse()

    def test_lines_arrive_while_the_task_runs(self):
        tid = self.srv.create_ok("python", TICKER)
        t0 = time.monotonic()
        conn, resp = self.open_stream(tid)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Transfer-Encoding"), "chunked")
        first = resp.readline()
        t_first = time.monotonic() - t0
        rest = resp.read()
        t_end = time.monotonic() - t0
        conn.close()
        self.assertEqual(first, b"line 0\n")
        self.assertEqual(first + rest, b"".join(b"line %d\n" % i for i in range(12)))
        # The task takes >= 1.2 s; the first line must not wait for its end.
        self.assertGreater(t_end, 1.0)
        self.assertLess(t_first, t_end - 0.5)
        doc = self.srv.wait_done(tid)
        self.assertEqual(doc["status"], "SUCCESS")

    def test_stream_opened_while_queued_follows_from_the_start(self):
        # Both workers busy for a moment: the stream is opened while the
        # ticker waits, and must then follow it line by line rather than
        # pick it up late with its first lines in one lump.
        blockers = [self.srv.create_ok("python", "import time; time.sleep(0.3)")
                    for _ in range(2)]
        tid = self.srv.create_ok("python", TICKER)
        t0 = time.monotonic()
        conn, resp = self.open_stream(tid)
        self.assertEqual(resp.status, 200)
        arrivals = []
        while True:
            line = resp.readline()
            if not line:
                break
            arrivals.append(time.monotonic() - t0)
        conn.close()
        self.assertEqual(len(arrivals), 12)
        # The ticker prints for 1.1 s after its first line.
        self.assertGreater(arrivals[-1] - arrivals[0], 0.8, arrivals)
        for b in blockers:
            self.srv.wait_done(b)
        self.assertEqual(self.srv.wait_done(tid)["status"], "SUCCESS")

    def test_finished_task_streams_its_whole_output(self):
        tid = self.srv.create_ok("bin", "#!/bin/sh\necho one; echo two\n")
        self.srv.wait_done(tid)
        conn, resp = self.open_stream(tid)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.read(), b"one\ntwo\n")
        conn.close()

    def test_queued_task_streams_once_it_starts(self):
        blockers = [self.srv.create_ok("python", "import time; time.sleep(1)") for _ in range(2)]
        tid = self.srv.create_ok("bin", "#!/bin/sh\necho late\n")
        conn, resp = self.open_stream(tid)
        self.assertEqual(resp.read(), b"late\n")
        conn.close()
        for b in blockers:
            self.srv.wait_done(b)

    def test_unknown_id_and_missing_id(self):
        st, _, doc = self.srv.request("GET", "/stream?id=fb85a3a0-7e7f-4a20-8ced-65b3b2475144")
        self.assertEqual(st, 404)
        self.assertIn("error", doc)
        st, _, doc = self.srv.request("GET", "/stream")
        self.assertEqual(st, 400)


if __name__ == "__main__":
    unittest.main()
