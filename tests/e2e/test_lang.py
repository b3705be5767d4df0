"""Languages beyond python and bin (configs/languages.conf, --languages,
GET /languages): compiled ones (C, C++) whose compile step runs in the
task's sandbox before the program, interpreted ones (bash), unknown types,
the compile's own time limit, a languages file of one's own, and a
waiting task's language across a restart. In the default configuration
(sandbox on, cells), and once with --sandbox off."""

import base64
import os
import shutil
import tempfile
import time
import unittest

from harness import Server

C_HELLO = '#include <stdio.h>\nint main(int c, char **v) { printf("hello %s\\n", c > 1 ? v[1] : "c"); return 0; }\n'
CPP_HELLO = '#include <iostream>\nint main() { std::cout << "hello c++" << std::endl; }\n'
C_BROKEN = "int main(void) { return undeclared_thing; }\n"
# Constant evaluation that takes gcc minutes (1e10 steps, each loop below
# gcc's per-loop limit) in a few MB: a compile that only a time limit ends.
CPP_SLOW = ("constexpr long f() { long s = 0;\n"
            "  for (long i = 0; i < 100000; i++) for (long j = 0; j < 100000; j++) s += j;\n"
            "  return s; }\n"
            "static_assert(f() > 0, \"\");\nint main() {}\n")
BASH_ARGS = 'echo "args: $#: $1 $2"; read -r line; echo "stdin: $line"\n'


def body(type_, source, **extra):
    doc = {"type": type_, "file": base64.b64encode(source.encode()).decode()}
    doc.update(extra)
    return doc


class LangCase(unittest.TestCase):
    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--workers", "2", *cls.extra)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def run_doc(self, doc, timeout=120):
        st, _, res = self.srv.request("POST", "/create_task", doc)
        self.assertEqual(st, 200, res)
        return self.srv.wait_done(res["id"], timeout=timeout)


class DefaultConfig(LangCase):
    """The product: sandbox on, cells, the shipped languages file. One
    worker, so that consecutive tasks share its directory and cell."""

    extra = ("--workers", "1")

    def test_languages_listed_with_versions(self):
        st, _, langs = self.srv.request("GET", "/languages")
        self.assertEqual(st, 200, langs)
        by_name = {l["name"]: l for l in langs}
        for name in ("python", "bash", "c", "cpp"):
            self.assertIn(name, by_name)
            self.assertTrue(by_name[name]["version"], by_name[name])
        self.assertIn("gcc", by_name["c"]["version"])
        self.assertTrue(by_name["c"]["compiled"])
        self.assertEqual(by_name["c"]["source"], "main.c")
        self.assertFalse(by_name["bash"]["compiled"])

    def test_c_hello(self):
        res = self.run_doc(body("c", C_HELLO, args=["world"]))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual(res["type"], "c")
        self.assertEqual(res["result"]["stdout"], "hello world\n")
        self.assertEqual(res["result"]["compile_exit_code"], 0)
        self.assertEqual(res["result"]["compile_output"], "")

    def test_cpp_hello(self):
        res = self.run_doc(body("cpp", CPP_HELLO))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual(res["result"]["stdout"], "hello c++\n")

    def test_c_compile_error(self):
        res = self.run_doc(body("c", C_BROKEN))
        self.assertEqual(res["status"], "ERROR", res)
        self.assertTrue(res["error"].startswith("compilation failed"), res["error"])
        self.assertIn("undeclared_thing", res["error"])
        self.assertIn("undeclared_thing", res["result"]["compile_output"])
        self.assertIn("error", res["result"]["compile_output"])
        self.assertNotEqual(res["result"]["compile_exit_code"], 0)
        # The program never ran.
        self.assertIsNone(res["result"]["exit_code"])
        self.assertEqual(res["result"]["stdout"], "")

    def test_bash_args_and_stdin(self):
        res = self.run_doc(body("bash", BASH_ARGS, args=["one", "two words"], stdin="typed\n"))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual(res["result"]["stdout"], "args: 2: one two words\nstdin: typed\n")
        self.assertNotIn("compile_output", res["result"])

    def test_unknown_type(self):
        st, _, res = self.srv.request("POST", "/create_task", body("cobol", "DISPLAY 'x'."))
        self.assertEqual(st, 400, res)
        self.assertIn("cobol", res["error"])
        for known in ("python", "bin", "c", "cpp", "bash"):
            self.assertIn(known, res["error"])
        st, _, res = self.srv.request("POST", "/create_task", body("no such/type", "x"))
        self.assertEqual(st, 400, res)

    def test_python_keeps_its_meaning(self):
        res = self.run_doc(body("python", "print('py')\n"))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual(res["type"], "python")
        self.assertNotIn("compile_output", res["result"])

    def test_compiled_program_is_not_left_for_the_next_task(self):
        self.assertEqual(self.run_doc(body("c", C_HELLO))["status"], "SUCCESS")
        res = self.run_doc(body("bash", "ls\n"))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual(res["result"]["stdout"], "main.sh\n")

    def test_c_with_files_tests_and_limits(self):
        # A header of its own in `files`, compiled once, run once per test
        # with the task's own limits.
        src = ('#include <stdio.h>\n#include "sq.h"\n'
               'int main(void) { int n; if (scanf("%d", &n) != 1) return 3; '
               'printf("%d\\n", SQ(n)); return 0; }\n')
        hdr = base64.b64encode(b"#define SQ(x) ((x) * (x))\n").decode()
        res = self.run_doc(body("c", src, files=[{"name": "inc/sq.h", "content": hdr}],
                                tests=[{"stdin": "3", "expected_output": "9"},
                                       {"stdin": "4", "expected_output": "16"},
                                       {"stdin": "5", "expected_output": "24"}],
                                limits={"memory": 64 << 20, "timeout": 10}))
        # The header is under inc/, where the compile does not look.
        self.assertEqual(res["status"], "ERROR", res)
        self.assertTrue(res["error"].startswith("compilation failed"), res)
        self.assertIn("sq.h", res["result"]["compile_output"])
        self.assertNotIn("tests", res["result"])
        res = self.run_doc(body("c", src, files=[{"name": "sq.h", "content": hdr}],
                                tests=[{"stdin": "3", "expected_output": "9"},
                                       {"stdin": "4", "expected_output": "16"},
                                       {"stdin": "5", "expected_output": "24"}],
                                limits={"memory": 64 << 20, "timeout": 10}))
        self.assertEqual(res["status"], "ERROR", res)
        self.assertEqual(res["result"]["compile_exit_code"], 0, res)
        self.assertEqual([t["passed"] for t in res["result"]["tests"]], [True, True, False], res)
        self.assertEqual((res["result"]["passed"], res["result"]["failed"]), (2, 1))

    def test_a_file_may_not_take_the_source_name(self):
        st, _, res = self.srv.request("POST", "/create_task", body(
            "c", C_HELLO, files=[{"name": "main.c", "content": ""}]))
        self.assertEqual(st, 400, res)
        self.assertIn("files[0].name", res["error"])

    def test_cancel_during_compile(self):
        st, _, res = self.srv.request("POST", "/create_task", body("cpp", CPP_SLOW))
        self.assertEqual(st, 200, res)
        tid = res["id"]
        deadline = time.monotonic() + 60
        while self.srv.request("GET", "/get_status?id=" + tid)[2]["status"] != "RUNNING":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        time.sleep(0.5)
        st, _, doc = self.srv.request("POST", "/cancel_task", {"id": tid})
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["status"], "ERROR", doc)
        self.assertEqual(doc["error"], "cancelled", doc)
        self.assertTrue(doc["result"]["cancelled"], doc)


class CompileTimeout(LangCase):
    extra = ("--compile-timeout", "1")

    def test_slow_compile_is_stopped(self):
        t0 = time.monotonic()
        res = self.run_doc(body("cpp", CPP_SLOW))
        took = time.monotonic() - t0
        self.assertEqual(res["status"], "ERROR", res)
        self.assertTrue(res["error"].startswith("compilation failed"), res["error"])
        self.assertIn("timed out", res["error"])
        self.assertIsNone(res["result"]["compile_exit_code"])
        # 1 s, plus the kill and a loaded machine; gcc alone takes minutes.
        self.assertLess(took, 30)


class OwnLanguagesFile(LangCase):
    """A languages file given with --languages: a language added without a
    rebuild, and one whose version command fails, which is not offered."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ts-lang-")
        path = os.path.join(cls.dir, "languages.conf")
        with open(path, "w") as f:
            f.write("# test languages\n"
                    "sh2 | main.sh | | /bin/sh main.sh | /bin/sh -c 'echo sh2 1.0'\n"
                    "broken | main.x | | /bin/true | /bin/false\n"
                    "c | main.c | gcc -o main main.c | ./main | gcc --version\n")
        cls.extra = ("--languages", path)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_listed(self):
        st, _, langs = self.srv.request("GET", "/languages")
        self.assertEqual(st, 200, langs)
        names = [l["name"] for l in langs]
        self.assertEqual(names, ["sh2", "c"])
        self.assertEqual(langs[0]["version"], "sh2 1.0")

    def test_added_language_runs(self):
        res = self.run_doc(body("sh2", 'echo "sh2 says $1"\n', args=["hi"]))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual(res["result"]["stdout"], "sh2 says hi\n")

    def test_failed_version_is_unknown(self):
        st, _, res = self.srv.request("POST", "/create_task", body("broken", "x"))
        self.assertEqual(st, 400, res)
        st, _, res = self.srv.request("POST", "/create_task", body("bash", "echo"))
        self.assertEqual(st, 400, res)


class NoSandbox(LangCase):
    extra = ("--sandbox", "off")

    def test_c_hello(self):
        res = self.run_doc(body("c", C_HELLO))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual(res["result"]["stdout"], "hello c\n")


class PerTaskSandbox(LangCase):
    """A sandbox of its own for each run (no cells): the compiler's output
    reaches the run through the per-run helper."""

    extra = ("--sandbox-cell", "off")

    def test_c_hello(self):
        res = self.run_doc(body("c", C_HELLO, args=["per-task"]))
        self.assertEqual(res["status"], "SUCCESS", res)
        self.assertEqual(res["result"]["stdout"], "hello per-task\n")


class Restart(unittest.TestCase):
    """A waiting task keeps its language across a restart."""

    def test_waiting_language_task_survives(self):
        data = tempfile.mkdtemp(prefix="ts-lang-data-")
        try:
            srv = Server("--workers", "1", "--data-dir", data, "--on-restart", "fail",
                         "--shutdown-grace", "0")
            try:
                st, _, blocker = srv.request("POST", "/create_task", body("bash", "sleep 60\n"))
                self.assertEqual(st, 200, blocker)
                st, _, waiting = srv.request("POST", "/create_task",
                                             body("c", C_HELLO, args=["again"]))
                self.assertEqual(st, 200, waiting)
                deadline = time.monotonic() + 30
                while srv.status(blocker["id"])[2]["status"] != "RUNNING":
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.05)
            finally:
                srv.stop()
            srv = Server("--workers", "1", "--data-dir", data)
            try:
                res = srv.wait_done(waiting["id"], timeout=120)
                self.assertEqual(res["type"], "c")
                self.assertEqual(res["status"], "SUCCESS", res)
                self.assertEqual(res["result"]["stdout"], "hello again\n")
            finally:
                srv.stop()
        finally:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
