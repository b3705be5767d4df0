/* Unit tests of the runner: what a task sees when it runs, and what the
 * caller gets back (output, exit status, timing, no leftovers). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "runner.h"
#include "timefmt.h"

/* ---- helpers ---- */

static runner_opts opts_for(char *const *argv)
{
    runner_opts o = {
        .path = argv[0], .argv = argv, .stdin_fd = -1, .capture_stdout = 1, .capture_stderr = 1};
    return o;
}

static runner_limits no_limits(void)
{
    runner_limits l = {.cancel_fd = -1};
    return l;
}

/* Runs argv with limits l and checks that runner_run itself succeeded. */
static void run(char *const *argv, const runner_limits *l, runner_result *r)
{
    runner_opts o = opts_for(argv);
    assert_int_equal(runner_run(&o, l, NULL, NULL, r), 0);
}

static void run_sh(const char *script, const runner_limits *l, runner_result *r)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    run(argv, l, r);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* 1 if pid no longer runs (gone, or a zombie waiting for init), after
 * waiting up to 3 s for it. */
static int pid_dead(pid_t pid)
{
    for (int i = 0; i < 300; i++) {
        char path[64], st[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return 1;
        size_t n = fread(st, 1, sizeof st - 1, f);
        fclose(f);
        st[n] = '\0';
        char *rp = strrchr(st, ')');
        if (!rp || rp[1] == '\0' || rp[2] == 'Z' || rp[2] == 'X')
            return 1;
        usleep(10000);
    }
    return 0;
}

static int64_t run_ms(const runner_result *r)
{
    return (r->end_us - r->start_us) / 1000;
}

/* ---- plain runs ---- */

static void test_stdout(void **state)
{
    runner_result r;
    runner_limits l = no_limits();
    char *argv[] = {"echo", "hello", "world", NULL};
    int64_t before = time_now_us();
    run(argv, &l, &r);
    assert_int_equal(r.spawn_errno, 0);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.term_signal, 0);
    assert_string_equal(r.out.data, "hello world\n");
    assert_int_equal(r.out_total, 12);
    assert_int_equal(r.err.len, 0);
    assert_false(r.out_truncated);
    assert_true(r.start_us >= before && r.end_us >= r.start_us);
    assert_true(r.end_us <= time_now_us());
    char d[128];
    assert_string_equal(runner_describe(&r, &l, d, sizeof d), "exited with code 0");
    runner_result_destroy(&r);
}

static void test_stderr(void **state)
{
    runner_result r;
    run_sh("echo oops >&2; echo fine", NULL, &r);
    assert_string_equal(r.err.data, "oops\n");
    assert_string_equal(r.out.data, "fine\n");
    assert_int_equal(r.err_total, 5);
    runner_result_destroy(&r);
}

static void test_exit_code(void **state)
{
    runner_result r;
    run_sh("exit 3", NULL, &r);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 3);
    char d[128];
    assert_string_equal(runner_describe(&r, NULL, d, sizeof d), "exited with code 3");
    runner_result_destroy(&r);
}

static void test_signal_death(void **state)
{
    runner_result r;
    run_sh("kill -9 $$", NULL, &r);
    assert_false(r.exited);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_false(r.timed_out);
    char d[128];
    assert_string_equal(runner_describe(&r, NULL, d, sizeof d), "killed by signal 9 (SIGKILL)");
    runner_result_destroy(&r);
}

static void test_capture_off(void **state)
{
    runner_result r;
    char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 4", NULL};
    runner_opts o = opts_for(argv);
    o.capture_stdout = 0;
    o.capture_stderr = 0;
    assert_int_equal(runner_run(&o, NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.exit_code, 4);
    assert_int_equal(r.out_total + r.err_total, 0);
    runner_result_destroy(&r);
}

static void test_cpu_time(void **state)
{
    runner_result r;
    /* The shell's loop runs in a grandchild: its CPU time counts too. */
    run_sh("(i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done)", NULL, &r);
    assert_int_equal(r.exit_code, 0);
    assert_true(r.cpu_us > 5000);
    assert_true(r.cpu_us < 60 * 1000000LL);
    runner_result_destroy(&r);
}

/* ---- failures to start ---- */

static void test_enoent(void **state)
{
    runner_result r;
    runner_limits l = no_limits();
    char *argv[] = {"/nonexistent/prog", NULL};
    int fds = count_fds();
    run(argv, &l, &r);
    assert_int_equal(r.spawn_errno, ENOENT);
    assert_false(r.exited);
    char d[128];
    assert_string_equal(runner_describe(&r, &l, d, sizeof d),
                        "could not execute: No such file or directory (ENOENT)");
    runner_result_destroy(&r);

    char *argv2[] = {"no-such-program-in-path", NULL};
    run(argv2, &l, &r);
    assert_int_equal(r.spawn_errno, ENOENT);
    runner_result_destroy(&r);

    runner_proc p;
    runner_opts o = opts_for(argv);
    assert_int_equal(runner_spawn(&o, &p), -ENOENT);
    assert_int_equal(count_fds(), fds);
}

static void test_no_shebang_script(void **state)
{
    char dir[] = "/tmp/ts_runner_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/noshebang", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    assert_true(fd >= 0);
    const char *text = "echo \"script ran with $1 $2\"\nexit 5\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    runner_result r;
    char *argv[] = {path, "a b", "c", NULL};
    runner_opts o = opts_for(argv);
    assert_int_equal(runner_run(&o, NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.spawn_errno, ENOEXEC);
    runner_result_destroy(&r);

    o.sh_fallback = 1;
    assert_int_equal(runner_run(&o, NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.spawn_errno, 0);
    assert_int_equal(r.exit_code, 5);
    assert_string_equal(r.out.data, "script ran with a b c\n");
    runner_result_destroy(&r);

    /* Found through PATH by its bare name. */
    const char *old = getenv("PATH");
    char *saved = strdup(old ? old : "/bin:/usr/bin");
    char newpath[4096];
    snprintf(newpath, sizeof newpath, "%s:%s", dir, saved);
    setenv("PATH", newpath, 1);
    char *argv2[] = {"noshebang", "x", "y", NULL};
    runner_opts o2 = opts_for(argv2);
    o2.sh_fallback = 1;
    assert_int_equal(runner_run(&o2, NULL, NULL, NULL, &r), 0);
    setenv("PATH", saved, 1);
    free(saved);
    assert_int_equal(r.spawn_errno, 0);
    assert_string_equal(r.out.data, "script ran with x y\n");
    runner_result_destroy(&r);

    unlink(path);
    rmdir(dir);
}

/* ---- time limits ---- */

static void test_timeout_kill(void **state)
{
    runner_result r;
    runner_limits l = no_limits();
    l.timeout_us = 300000;
    char *argv[] = {"sleep", "30", NULL};
    int64_t t0 = time_mono_us();
    run(argv, &l, &r);
    int64_t ms = (time_mono_us() - t0) / 1000;
    assert_true(r.timed_out);
    assert_false(r.cancelled);
    assert_false(r.exited);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_true(ms >= 290 && ms < 1300);
    assert_true(run_ms(&r) >= 290 && run_ms(&r) < 1300);
    char d[128];
    assert_string_equal(runner_describe(&r, &l, d, sizeof d), "timed out after 0.3 s");
    runner_result_destroy(&r);
}

static void test_timeout_grace(void **state)
{
    runner_result r;
    runner_limits l = no_limits();
    /* SIGTERM is enough: the grace period is not waited out. */
    l.timeout_us = 200000;
    l.kill_grace_us = 10 * 1000000LL;
    char *argv[] = {"sleep", "30", NULL};
    run(argv, &l, &r);
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGTERM);
    assert_true(run_ms(&r) < 3000);
    runner_result_destroy(&r);

    /* SIGTERM ignored: SIGKILL once the grace period is over. */
    l.kill_grace_us = 300000;
    run_sh("trap '' TERM; sleep 30", &l, &r);
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_true(run_ms(&r) >= 490 && run_ms(&r) < 2500);
    char d[128];
    assert_string_equal(runner_describe(&r, &l, d, sizeof d), "timed out after 0.2 s");
    runner_result_destroy(&r);
}

static void test_cancel_fd(void **state)
{
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    assert_true(tfd >= 0);
    struct itimerspec its = {.it_value = {0, 200 * 1000000L}};
    assert_int_equal(timerfd_settime(tfd, 0, &its, NULL), 0);
    runner_result r;
    runner_limits l = no_limits();
    l.cancel_fd = tfd;
    l.timeout_us = 20 * 1000000LL;
    char *argv[] = {"sleep", "30", NULL};
    run(argv, &l, &r);
    assert_true(r.cancelled);
    assert_false(r.timed_out);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_true(run_ms(&r) >= 190 && run_ms(&r) < 2000);
    char d[128];
    assert_string_equal(runner_describe(&r, &l, d, sizeof d), "cancelled");
    runner_result_destroy(&r);
    close(tfd);
}

/* ---- the process group ---- */

static void test_background_child_killed(void **state)
{
    runner_result r;
    run_sh("sleep 100 & echo $!", NULL, &r);
    assert_int_equal(r.exit_code, 0);
    /* The background sleep holds stdout: the run ends only because the
     * group is killed, well before 100 s. */
    assert_true(run_ms(&r) < 2000);
    pid_t bg = (pid_t)atoi(r.out.data);
    assert_true(bg > 1);
    assert_true(pid_dead(bg));
    runner_result_destroy(&r);
}

static void test_escaped_descendant_bounded(void **state)
{
    runner_result r;
    int64_t t0 = time_mono_us();
    /* setsid leaves the group and keeps stdout open for 30 s; the script
     * waits until it has left (field 6 of stat is the session id), or the
     * final group kill could still catch it. */
    run_sh("setsid sleep 30 & p=$!; "
           "while [ \"$(cut -d' ' -f6 /proc/$p/stat)\" != $p ]; do :; done; echo $p",
           NULL, &r);
    int64_t ms = (time_mono_us() - t0) / 1000;
    assert_int_equal(r.exit_code, 0);
    assert_true(ms < 1500);
    pid_t esc = (pid_t)atoi(r.out.data);
    assert_true(esc > 1);
    kill(esc, SIGKILL);
    runner_result_destroy(&r);
}

static void test_session_and_fds(void **state)
{
    runner_result r;
    char *argv[] = {"cat", "/proc/self/stat", NULL};
    run(argv, NULL, &r);
    int pid, pgrp, sid;
    char *rp = strrchr(r.out.data, ')');
    assert_non_null(rp);
    assert_int_equal(sscanf(rp + 2, "%*c %*d %d %d", &pgrp, &sid), 2);
    assert_int_equal(sscanf(r.out.data, "%d", &pid), 1);
    assert_int_equal(pid, pgrp);
    /* A session of its own where we have a terminal to part it from;
     * else our session (runner_proc.h). */
    FILE *f = fopen("/proc/self/stat", "r");
    char self[1024] = "";
    assert_non_null(f);
    assert_non_null(fgets(self, sizeof self, f));
    fclose(f);
    int tty = -1;
    assert_int_equal(sscanf(strrchr(self, ')') + 2, "%*c %*d %*d %*d %d", &tty), 1);
    assert_int_equal(sid, tty ? pid : getsid(0));
    runner_result_destroy(&r);

    /* An fd the caller forgot to mark close-on-exec does not reach the task. */
    int leak = open("/dev/null", O_RDONLY);
    assert_true(leak >= 3);
    char script[128];
    snprintf(script, sizeof script, "[ -e /proc/$$/fd/%d ] && echo leaked || echo clean", leak);
    run_sh(script, NULL, &r);
    assert_string_equal(r.out.data, "clean\n");
    runner_result_destroy(&r);
    close(leak);
}

static void test_signals_reset(void **state)
{
    /* As in the server: SIGPIPE ignored, a signal blocked in this thread. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    sigset_t set, oldset;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &oldset);

    runner_result r;
    runner_limits l = no_limits();
    l.timeout_us = 20 * 1000000LL;
    run_sh("yes | head -1", &l, &r);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out.data, "y\n");
    assert_int_equal(r.err.len, 0); /* no "Broken pipe" from yes */
    assert_true(run_ms(&r) < 5000);
    runner_result_destroy(&r);

    char *argv[] = {"cat", "/proc/self/status", NULL};
    run(argv, NULL, &r);
    assert_non_null(strstr(r.out.data, "SigIgn:\t0000000000000000\n"));
    assert_non_null(strstr(r.out.data, "SigBlk:\t0000000000000000\n"));
    runner_result_destroy(&r);

    pthread_sigmask(SIG_SETMASK, &oldset, NULL);
    sigaction(SIGPIPE, &old, NULL);
}

/* ---- output ---- */

typedef struct chunk_count {
    size_t bytes[3];
    size_t calls;
} chunk_count;

static void count_chunk(void *arg, int stream, const char *data, size_t len)
{
    chunk_count *c = arg;
    assert_true(stream == 1 || stream == 2);
    c->bytes[stream] += len;
    c->calls++;
}

static void test_flood_both_streams(void **state)
{
    runner_result r;
    runner_limits l = no_limits();
    l.max_output = 1 << 20;
    l.timeout_us = 60 * 1000000LL;
    char *argv[] = {"/bin/sh", "-c",
                    "head -c 10000000 /dev/zero & head -c 10000000 /dev/zero >&2; wait", NULL};
    runner_opts o = opts_for(argv);
    chunk_count c = {{0}, 0};
    assert_int_equal(runner_run(&o, &l, count_chunk, &c, &r), 0);
    assert_false(r.timed_out);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out_total, 10000000);
    assert_int_equal(r.err_total, 10000000);
    assert_int_equal(r.out.len, 1 << 20);
    assert_int_equal(r.err.len, 1 << 20);
    assert_true(r.out_truncated);
    assert_true(r.err_truncated);
    assert_int_equal(c.bytes[1], 10000000);
    assert_int_equal(c.bytes[2], 10000000);
    assert_true(c.calls >= 2);
    runner_result_destroy(&r);

    /* At the cap exactly: not truncated. */
    l.max_output = 5;
    run_sh("printf 12345", &l, &r);
    assert_int_equal(r.out.len, 5);
    assert_false(r.out_truncated);
    runner_result_destroy(&r);
}

static void test_binary_output(void **state)
{
    runner_result r;
    run_sh("printf 'a\\000b\\000\\377'", NULL, &r);
    assert_int_equal(r.out.len, 5);
    assert_memory_equal(r.out.data, "a\0b\0\377", 5);
    runner_result_destroy(&r);
}

static void test_stdin(void **state)
{
    runner_result r;
    runner_limits l = no_limits();
    l.timeout_us = 10 * 1000000LL;
    char *argv[] = {"cat", NULL};
    run(argv, &l, &r); /* /dev/null: cat sees end of file at once */
    assert_false(r.timed_out);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out.len, 0);
    assert_true(run_ms(&r) < 5000);
    runner_result_destroy(&r);

    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(write(p[1], "piped in", 8), 8);
    close(p[1]);
    runner_opts o = opts_for(argv);
    o.stdin_fd = p[0];
    assert_int_equal(runner_run(&o, &l, NULL, NULL, &r), 0);
    close(p[0]);
    assert_string_equal(r.out.data, "piped in");
    runner_result_destroy(&r);
}

static void test_cwd(void **state)
{
    char dir[] = "/tmp/ts_runner_cwd_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *real = realpath(dir, NULL);
    assert_non_null(real);
    runner_result r;
    char *argv[] = {"/bin/sh", "-c", "pwd -P", NULL};
    runner_opts o = opts_for(argv);
    o.cwd = dir;
    assert_int_equal(runner_run(&o, NULL, NULL, NULL, &r), 0);
    char want[4200];
    snprintf(want, sizeof want, "%s\n", real);
    assert_string_equal(r.out.data, want);
    runner_result_destroy(&r);
    free(real);
    rmdir(dir);

    o.cwd = "/nonexistent/dir";
    assert_int_equal(runner_run(&o, NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.spawn_errno, ENOENT);
    runner_result_destroy(&r);
}

/* ---- resources ---- */

static void assert_no_children(void)
{
    siginfo_t si;
    errno = 0;
    assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_no_leaks(void **state)
{
    int fds = count_fds();
    for (int i = 0; i < 200; i++) {
        runner_result r;
        char *argv[] = {"/bin/true", NULL};
        run(argv, NULL, &r);
        assert_int_equal(r.exit_code, 0);
        runner_result_destroy(&r);
    }
    assert_int_equal(count_fds(), fds);
    assert_no_children();
}

typedef struct thread_job {
    int id;
    int runs;
    int failures;
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *j = arg;
    for (int i = 0; i < j->runs; i++) {
        char a[16], b[16], want[40];
        snprintf(a, sizeof a, "%d", j->id);
        snprintf(b, sizeof b, "%d", i);
        snprintf(want, sizeof want, "%d-%d\n", j->id, i);
        char *argv[] = {"/bin/sh", "-c", "echo \"$0-$1\"; echo e >&2; exit $(($1 % 7))",
                        a,         b,    NULL};
        runner_opts o = opts_for(argv);
        runner_limits l = no_limits();
        l.timeout_us = 30 * 1000000LL;
        runner_result r;
        if (runner_run(&o, &l, NULL, NULL, &r) != 0 || !r.exited || r.exit_code != i % 7 ||
            !r.out.data || strcmp(r.out.data, want) != 0 || !r.err.data ||
            strcmp(r.err.data, "e\n") != 0)
            j->failures++;
        runner_result_destroy(&r);
    }
    return NULL;
}

static void test_threads(void **state)
{
    int fds = count_fds();
    pthread_t t[8];
    thread_job jobs[8];
    for (int i = 0; i < 8; i++) {
        jobs[i] = (thread_job){i, i < 4 ? 13 : 12, 0}; /* 100 runs in all */
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &jobs[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        failures += jobs[i].failures;
    }
    assert_int_equal(failures, 0);
    assert_int_equal(count_fds(), fds);
    assert_no_children();
}

/* ---- the raw level, as an event-loop caller uses it ---- */

static void test_spawn_kill_reap(void **state)
{
    int fds = count_fds();
    char *argv[] = {"/bin/sh", "-c", "echo up; exec sleep 30", NULL};
    runner_opts o = opts_for(argv);
    o.capture_stderr = 0;
    runner_proc p;
    assert_int_equal(runner_spawn(&o, &p), 0);
    assert_true(p.pid > 0 && p.pidfd >= 0 && p.out_fd >= 0);
    assert_int_equal(p.err_fd, -1);
    assert_true(fcntl(p.out_fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(p.out_fd, F_GETFD) & FD_CLOEXEC);

    struct pollfd pf = {p.out_fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    char b[16];
    assert_int_equal(read(p.out_fd, b, sizeof b), 3);

    int st = -1;
    assert_int_equal(runner_reap(&p, &st, 1), 0);
    assert_int_equal(runner_kill(&p, SIGTERM), 0);
    pf = (struct pollfd){p.pidfd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_int_equal(runner_reap(&p, &st, 1), 1);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    assert_int_equal(runner_reap(&p, &st, 1), -ECHILD);
    runner_proc_close(&p);
    assert_int_equal(p.pidfd, -1);
    assert_int_equal(count_fds(), fds);

    /* A blocking reap of a process that exits by itself. */
    char *argv2[] = {"/bin/sh", "-c", "exit 7", NULL};
    runner_opts o2 = opts_for(argv2);
    assert_int_equal(runner_spawn(&o2, &p), 0);
    assert_int_equal(runner_reap(&p, &st, 0), 1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 7);
    runner_proc_close(&p);
    assert_int_equal(count_fds(), fds);
    assert_no_children();
}

/* ---- wrappers ---- */

/* Runs argv through a shell wrapper doing `script`, then the program
 * with fd 3 closed (as the contract asks). */
static void run_wrapped(const char *script, char *const *argv, runner_result *r)
{
    char body[512];
    snprintf(body, sizeof body, "%s\np=$1; shift; shift; exec 3>&-; exec \"$p\" \"$@\"", script);
    char *wrapper[] = {"/bin/sh", "-c", body, "wrap", NULL};
    runner_opts o = opts_for(argv);
    o.wrapper = wrapper;
    assert_int_equal(runner_run(&o, NULL, NULL, NULL, r), 0);
}

static void test_wrapper_runs_the_program(void **state)
{
    int fds = count_fds();
    runner_result r;
    /* The program gets its own argv[0] and arguments, and no fd 3. */
    char *argv[] = {"sh", "-c", "echo \"$0 $1\"; [ -e /proc/$$/fd/3 ] && echo fd3; exit 4",
                    "x",  "y",  NULL};
    run_wrapped(":", argv, &r);
    assert_string_equal(r.out.data, "x y\n");
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 4);
    assert_int_equal(r.limit, RUNNER_LIMIT_NONE);
    assert_string_equal(r.wrapper_error, "");
    runner_result_destroy(&r);
    assert_int_equal(count_fds(), fds);
    assert_no_children();
}

static void test_wrapper_reports(void **state)
{
    runner_result r;
    char d[256];
    char *argv[] = {"/bin/sh", "-c", "exit 1", NULL};
    run_wrapped("echo 'limit memory 1048576' >&3; echo 'limit cpu 9' >&3", argv, &r);
    assert_int_equal(r.limit, RUNNER_LIMIT_MEMORY); /* the first one counts */
    assert_int_equal(r.limit_value, 1048576);
    assert_string_equal(runner_describe(&r, NULL, d, sizeof d),
                        "memory limit of 1 MiB exceeded; exited with code 1");
    assert_string_equal(runner_limit_name(r.limit), "memory");
    runner_result_destroy(&r);

    run_wrapped("echo 'exec 2' >&3; exit 127", argv, &r);
    assert_int_equal(r.spawn_errno, ENOENT);
    assert_false(r.exited);
    assert_string_equal(runner_describe(&r, NULL, d, sizeof d),
                        "could not execute: No such file or directory (ENOENT)");
    runner_result_destroy(&r);

    run_wrapped("echo 'fail cgroup: Permission denied' >&3; exit 127", argv, &r);
    assert_string_equal(r.wrapper_error, "cgroup: Permission denied");
    assert_string_equal(runner_describe(&r, NULL, d, sizeof d),
                        "could not start: cgroup: Permission denied");
    runner_result_destroy(&r);

    /* Garbage is ignored; a short output buffer still ends in a NUL. */
    run_wrapped("echo 'limit bogus 3' >&3; echo junk >&3; echo 'limit procs 8' >&3", argv, &r);
    assert_int_equal(r.limit, RUNNER_LIMIT_PROCS);
    assert_string_equal(runner_describe(&r, NULL, d, 16), "process limit o");
    runner_result_destroy(&r);
    assert_no_children();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stdout),
        cmocka_unit_test(test_stderr),
        cmocka_unit_test(test_exit_code),
        cmocka_unit_test(test_signal_death),
        cmocka_unit_test(test_capture_off),
        cmocka_unit_test(test_cpu_time),
        cmocka_unit_test(test_enoent),
        cmocka_unit_test(test_no_shebang_script),
        cmocka_unit_test(test_timeout_kill),
        cmocka_unit_test(test_timeout_grace),
        cmocka_unit_test(test_cancel_fd),
        cmocka_unit_test(test_background_child_killed),
        cmocka_unit_test(test_escaped_descendant_bounded),
        cmocka_unit_test(test_session_and_fds),
        cmocka_unit_test(test_signals_reset),
        cmocka_unit_test(test_flood_both_streams),
        cmocka_unit_test(test_binary_output),
        cmocka_unit_test(test_stdin),
        cmocka_unit_test(test_cwd),
        cmocka_unit_test(test_no_leaks),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_spawn_kill_reap),
        cmocka_unit_test(test_wrapper_runs_the_program),
        cmocka_unit_test(test_wrapper_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
