/* pyfork_driver: runs Python programs through warm Python (the fork server
 * and its C client, runner/pyfork_client.h) or cold, as the server's runner
 * starts them, for the equivalence tests (tests/e2e/test_pyfork.py) and the
 * latency bench (bench/pyfork_bench.py).
 *
 * Reads one JSON command per line on stdin, writes one JSON line per
 * command on stdout:
 *   {"op": "start", "python": P, "script": S, "env": [...]}
 *       -> {"ok": true, "server_pid": N} or {"ok": false, "error": "..."}
 *   {"op": "run", "dir": D, "main": M, "args": [...], "env": [...],
 *    "uid": U, "gid": G, "limits": [[NAME, SOFT, HARD]], "cgroups": [...],
 *    "stdin": PATH, "kill_after_ms": MS, "kill_sig": SIG}
 *       -> the result (below), through the started fork server
 *   {"op": "cold", "python": P, "dir": D, "main": M, "args": [...],
 *    "env": [...], "stdin": PATH}
 *       -> the result, `P M ARGS` started with runner_run
 *   {"op": "prefork"}
 *       -> {"ok": true} once the fork server was asked to fork the next
 *          task's process ahead (pyfork_prefork), or {"ok": false, ...}
 *   {"op": "drop"}
 *       -> {"ok": true} once the spare, if any, is gone (pyfork_drop_spare)
 *   {"op": "stop"}
 *       -> {"ok": true}: the fork server is freed (EOF, reaped)
 * A result: {"pid", "started", "why", "exited", "code", "signal",
 * "utime_us", "stime_us", "maxrss_kb", "stdout", "stderr" (base64),
 * "wall_us" (from the request to the end of both streams)}. Limits are
 * numbers or "inf"; every field but dir and main may be left out. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "b64.h"
#include "buf.h"
#include "pyfork_client.h"
#include "runner.h"
#include "timefmt.h"

/* Most a stream keeps; the tests print little. */
#define DRIVER_MAX_OUTPUT (4 << 20)

/* A NULL-terminated vector of the strings of a JSON array (borrowed). */
static char **str_vector(const cJSON *arr)
{
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    char **v = calloc((size_t)n + 1, sizeof *v);
    for (int i = 0; v && i < n; i++)
        v[i] = cJSON_GetStringValue(cJSON_GetArrayItem(arr, i));
    return v;
}

static const char *get_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static rlim_t limit_value(const cJSON *v)
{
    if (cJSON_IsString(v) && strcmp(v->valuestring, "inf") == 0)
        return RLIM_INFINITY;
    return (rlim_t)cJSON_GetNumberValue(v);
}

/* Opens the task's stdin: the file named, or /dev/null. */
static int open_stdin(const cJSON *cmd)
{
    const char *path = get_str(cmd, "stdin");
    return open(path ? path : "/dev/null", O_RDONLY | O_CLOEXEC);
}

static void put_stream(cJSON *out, const char *key, const buf *b)
{
    char *s = b64_encode((const unsigned char *)(b->data ? b->data : ""), b->len);
    cJSON_AddStringToObject(out, key, s ? s : "");
    free(s);
}

static void put_status(cJSON *out, int exited, int code, int sig)
{
    cJSON_AddBoolToObject(out, "exited", exited);
    cJSON_AddNumberToObject(out, "code", exited ? code : -1);
    cJSON_AddNumberToObject(out, "signal", sig);
}

/* Reads what is there on *fd into b; closes it at end of file. */
static void drain(int *fd, buf *b)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(*fd, chunk, sizeof chunk);
        if (n > 0) {
            if (b->len < DRIVER_MAX_OUTPUT)
                buf_append(b, chunk, (size_t)n);
            continue;
        }
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(*fd);
            *fd = -1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return;
    }
}

static cJSON *do_start(pyfork **pf, const cJSON *cmd)
{
    cJSON *out = cJSON_CreateObject();
    char **env = str_vector(cJSON_GetObjectItemCaseSensitive(cmd, "env"));
    pyfork_config c = {
        .python = get_str(cmd, "python"),
        .script = get_str(cmd, "script"),
        .envp = env,
    };
    char why[256] = "";
    pyfork_free(*pf);
    *pf = NULL;
    int rc = c.python ? pyfork_start(&c, pf, why, sizeof why) : -EINVAL;
    cJSON_AddBoolToObject(out, "ok", rc == 0);
    if (rc == 0)
        cJSON_AddNumberToObject(out, "server_pid", pyfork_server_pid(*pf));
    else
        cJSON_AddStringToObject(out, "error", why[0] ? why : strerror(-rc));
    free(env);
    return out;
}

static cJSON *do_run(pyfork *pf, const cJSON *cmd)
{
    cJSON *out = cJSON_CreateObject();
    char **args = str_vector(cJSON_GetObjectItemCaseSensitive(cmd, "args"));
    char **env = str_vector(cJSON_GetObjectItemCaseSensitive(cmd, "env"));
    char **cgroups = str_vector(cJSON_GetObjectItemCaseSensitive(cmd, "cgroups"));
    const cJSON *lims = cJSON_GetObjectItemCaseSensitive(cmd, "limits");
    int nlim = cJSON_IsArray(lims) ? cJSON_GetArraySize(lims) : 0;
    pyfork_rlimit *limits = calloc((size_t)nlim + 1, sizeof *limits);
    for (int i = 0; limits && i < nlim; i++) {
        const cJSON *l = cJSON_GetArrayItem(lims, i);
        limits[i].name = cJSON_GetStringValue(cJSON_GetArrayItem(l, 0));
        limits[i].soft = limit_value(cJSON_GetArrayItem(l, 1));
        limits[i].hard = limit_value(cJSON_GetArrayItem(l, 2));
    }
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(cmd, "uid");
    const cJSON *gid = cJSON_GetObjectItemCaseSensitive(cmd, "gid");
    const cJSON *kill_after = cJSON_GetObjectItemCaseSensitive(cmd, "kill_after_ms");
    const cJSON *kill_sig = cJSON_GetObjectItemCaseSensitive(cmd, "kill_sig");
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    int in = open_stdin(cmd);
    buf o = BUF_INIT, e = BUF_INIT;
    /* Only our ends are non-blocking: a task writing to a non-blocking
     * pipe would see short writes that a cold start never sees. */
    if (!pf || in < 0 || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
        fcntl(outp[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(errp[0], F_SETFL, O_NONBLOCK) < 0) {
        cJSON_AddStringToObject(out, "error", pf ? strerror(errno) : "no fork server");
        goto done;
    }
    pyfork_task t = {
        .dir = get_str(cmd, "dir"),
        .main = get_str(cmd, "main"),
        .args = args,
        .envp = env,
        .switch_user = cJSON_IsNumber(uid),
        .uid = (uid_t)cJSON_GetNumberValue(uid),
        .gid = (gid_t)cJSON_GetNumberValue(gid),
        .limits = limits,
        .nlimits = (size_t)nlim,
        .cgroups = cgroups,
        .stdin_fd = in,
        .stdout_fd = outp[1],
        .stderr_fd = errp[1],
    };
    int64_t t0 = time_mono_us();
    pid_t pid = 0;
    int rc = pyfork_run(pf, &t, &pid);
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
    if (rc < 0) {
        cJSON_AddStringToObject(out, "error", strerror(-rc));
        goto done;
    }
    int64_t kill_at = cJSON_IsNumber(kill_after) && pid > 0
                          ? t0 + (int64_t)(cJSON_GetNumberValue(kill_after) * 1000)
                          : -1;
    pyfork_result r;
    int ended = 0;
    while (!ended || outp[0] >= 0 || errp[0] >= 0) {
        struct pollfd p[3] = {{.fd = outp[0], .events = POLLIN},
                              {.fd = errp[0], .events = POLLIN},
                              {.fd = ended ? -1 : pyfork_fd(pf), .events = POLLIN}};
        int timeout = -1;
        if (kill_at >= 0)
            timeout = (int)((kill_at - time_mono_us()) / 1000);
        if (kill_at >= 0 && timeout <= 0) {
            pyfork_kill(pf, cJSON_IsNumber(kill_sig) ? (int)cJSON_GetNumberValue(kill_sig) : 9);
            kill_at = -1;
            continue;
        }
        if (poll(p, 3, timeout) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            drain(&outp[0], &o);
        if (p[1].revents)
            drain(&errp[0], &e);
        if (!ended && p[2].revents) {
            rc = pyfork_wait(pf, 0, &r);
            if (rc < 0) {
                cJSON_AddStringToObject(out, "error", strerror(-rc));
                goto done;
            }
            if (rc == 1) {
                ended = 1;
                kill_at = -1;
            }
        }
    }
    cJSON_AddNumberToObject(out, "wall_us", (double)(time_mono_us() - t0));
    cJSON_AddNumberToObject(out, "pid", pid);
    cJSON_AddBoolToObject(out, "started", r.started);
    cJSON_AddStringToObject(out, "why", r.why);
    put_status(out, r.started && WIFEXITED(r.wstatus), WEXITSTATUS(r.wstatus),
               r.started && WIFSIGNALED(r.wstatus) ? WTERMSIG(r.wstatus) : 0);
    cJSON_AddNumberToObject(out, "utime_us", (double)r.utime_us);
    cJSON_AddNumberToObject(out, "stime_us", (double)r.stime_us);
    cJSON_AddNumberToObject(out, "maxrss_kb", (double)r.maxrss_kb);
    put_stream(out, "stdout", &o);
    put_stream(out, "stderr", &e);

done:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (in >= 0)
        close(in);
    buf_destroy(&o);
    buf_destroy(&e);
    free(limits);
    free(args);
    free(env);
    free(cgroups);
    return out;
}

static cJSON *do_cold(const cJSON *cmd)
{
    cJSON *out = cJSON_CreateObject();
    const char *python = get_str(cmd, "python"), *main = get_str(cmd, "main");
    char **args = str_vector(cJSON_GetObjectItemCaseSensitive(cmd, "args"));
    char **env = str_vector(cJSON_GetObjectItemCaseSensitive(cmd, "env"));
    int n = 0;
    while (args && args[n])
        n++;
    char **argv = calloc((size_t)n + 3, sizeof *argv);
    int in = open_stdin(cmd);
    if (!argv || !args || !env || !python || !main || in < 0) {
        cJSON_AddStringToObject(out, "error", "bad cold command");
        goto done;
    }
    argv[0] = (char *)python;
    argv[1] = (char *)main;
    memcpy(argv + 2, args, (size_t)n * sizeof *argv);
    runner_opts o = {
        .path = python,
        .argv = argv,
        .envp = env,
        .cwd = get_str(cmd, "dir"),
        .stdin_fd = in,
        .capture_stdout = 1,
        .capture_stderr = 1,
    };
    runner_limits l = {.max_output = DRIVER_MAX_OUTPUT, .cancel_fd = -1};
    runner_result r;
    int64_t t0 = time_mono_us();
    int rc = runner_run(&o, &l, NULL, NULL, &r);
    cJSON_AddNumberToObject(out, "wall_us", (double)(time_mono_us() - t0));
    if (rc < 0 || r.spawn_errno) {
        cJSON_AddStringToObject(out, "error", strerror(rc < 0 ? -rc : r.spawn_errno));
    } else {
        cJSON_AddBoolToObject(out, "started", 1);
        put_status(out, r.exited, r.exit_code, r.term_signal);
        cJSON_AddNumberToObject(out, "cpu_us", (double)r.cpu_us);
        put_stream(out, "stdout", &r.out);
        put_stream(out, "stderr", &r.err);
    }
    runner_result_destroy(&r);
done:
    if (in >= 0)
        close(in);
    free(argv);
    free(args);
    free(env);
    return out;
}

int main(void)
{
    /* A closed reader of ours must not kill us mid-line. */
    signal(SIGPIPE, SIG_IGN);
    pyfork *pf = NULL;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        cJSON *cmd = cJSON_Parse(line);
        const char *op = cmd ? get_str(cmd, "op") : NULL;
        cJSON *out;
        if (op && strcmp(op, "start") == 0) {
            out = do_start(&pf, cmd);
        } else if (op && strcmp(op, "run") == 0) {
            out = do_run(pf, cmd);
        } else if (op && strcmp(op, "cold") == 0) {
            out = do_cold(cmd);
        } else if (op && (strcmp(op, "prefork") == 0 || strcmp(op, "drop") == 0)) {
            int rc = !pf                       ? -ESRCH
                     : strcmp(op, "drop") == 0 ? pyfork_drop_spare(pf)
                                               : pyfork_prefork(pf);
            out = cJSON_CreateObject();
            cJSON_AddBoolToObject(out, "ok", rc == 0);
            if (rc < 0)
                cJSON_AddStringToObject(out, "error", strerror(-rc));
        } else if (op && strcmp(op, "stop") == 0) {
            pyfork_free(pf);
            pf = NULL;
            out = cJSON_CreateObject();
            cJSON_AddBoolToObject(out, "ok", 1);
        } else {
            out = cJSON_CreateObject();
            cJSON_AddStringToObject(out, "error", "unknown command");
        }
        char *s = cJSON_PrintUnformatted(out);
        printf("%s\n", s ? s : "{}");
        fflush(stdout);
        free(s);
        cJSON_Delete(out);
        cJSON_Delete(cmd);
    }
    free(line);
    pyfork_free(pf);
    return 0;
}
