"""--auth-token-file: every route needs the bearer token."""

import os
import subprocess
import tempfile
import unittest

from harness import SERVER_BIN, Server

TOKEN = "s3cret-token-0123456789"


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ts-auth-")
        cls.token_file = os.path.join(cls.dir, "token")
        with open(cls.token_file, "w") as f:
            f.write("  %s  \n" % TOKEN)
        cls.srv = Server("--auth-token-file", cls.token_file)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        os.unlink(cls.token_file)
        os.rmdir(cls.dir)

    def test_requests_without_the_token_are_refused(self):
        for method, path in (("GET", "/get_task_count"), ("POST", "/create_task"),
                             ("GET", "/get_status?id=x"), ("GET", "/info"),
                             ("GET", "/stream?id=x"), ("GET", "/nope")):
            st, hdrs, doc = self.srv.request(method, path, "{}")
            self.assertEqual(st, 401, path)
            self.assertIn("Authorization", doc["error"])
            self.assertTrue(hdrs["www-authenticate"].startswith("Bearer"))

    def test_wrong_tokens_are_refused(self):
        for value in ("Bearer wrong", "Bearer " + TOKEN[:-1], "Bearer " + TOKEN + "x",
                      "Basic " + TOKEN, TOKEN, "Bearer "):
            st, _, doc = self.srv.request("GET", "/get_task_count",
                                          headers={"Authorization": value})
            self.assertEqual(st, 401, value)

    def test_the_token_opens_every_route(self):
        h = {"Authorization": "Bearer " + TOKEN}
        st, _, doc = self.srv.request("POST", "/create_task",
                                      {"type": "bin", "file": "ZWNobyBvaw=="}, headers=h)
        self.assertEqual(st, 200, doc)
        st, _, doc = self.srv.request("GET", "/get_status?wait=10&id=" + doc["id"], headers=h)
        self.assertEqual(st, 200)
        self.assertEqual(doc["result"]["stdout"], "ok\n")
        st, _, _ = self.srv.request("GET", "/get_task_count", headers={"authorization": "bearer " + TOKEN})
        self.assertEqual(st, 200)

    def test_empty_or_missing_token_file_stops_the_server(self):
        empty = os.path.join(self.dir, "empty")
        open(empty, "w").close()
        try:
            for path in (empty, os.path.join(self.dir, "missing")):
                r = subprocess.run([SERVER_BIN, "--port", "0", "--auth-token-file", path],
                                   capture_output=True, text=True, timeout=10)
                self.assertEqual(r.returncode, 1)
                self.assertIn("auth-token-file", r.stderr)
        finally:
            os.unlink(empty)


class NoPasswordFiles(unittest.TestCase):
    """civetweb's per-directory password files play no part: with no
    document root it would look for /.htpasswd on every request."""

    @unittest.skipUnless(os.geteuid() == 0, "writing /.htpasswd needs root")
    def test_a_password_file_at_the_root_changes_nothing(self):
        path = "/.htpasswd"
        if os.path.lexists(path):
            self.skipTest("%s exists on this machine" % path)
        srv = Server()
        try:
            with open(path, "x") as f:
                f.write("user:realm:0123456789abcdef0123456789abcdef\n")
            try:
                st, _, doc = srv.request("GET", "/get_task_count")
                st404, _, _ = srv.request("GET", "/nope")
            finally:
                os.unlink(path)
            self.assertEqual(st, 200, doc)
            self.assertEqual(st404, 404)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
