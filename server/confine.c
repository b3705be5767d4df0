/* confine: see confine.h. */
#include "confine.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonw.h"
#include "log.h"
#include "pool.h"
#include "selfpath.h"

#define MAX_HIDE 12

/* Directories every program needs or that hold everyone's files: when one
 * of the server's files lives directly in one of them, that file is
 * hidden, not the directory. */
static const char *const shared_dirs[] = {
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib64",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/local",
    "/usr/local/bin",
    "/usr/share",
    "/usr/local/sbin",
    "/usr/local/etc",
    "/usr/libexec",
    "/var",
    "/var/lib",
    "/var/tmp",
};

typedef struct hide_list {
    char *path[MAX_HIDE + 1]; /* NULL-terminated; owned */
    int n;
} hide_list;

static void hide_add(hide_list *h, char *path)
{
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->path[i], path) == 0) {
            free(path);
            return;
        }
    if (h->n < MAX_HIDE)
        h->path[h->n++] = path;
    else
        free(path);
}

/* Hides a file of the server's: its directory, unless that directory is
 * one everybody shares (then the file alone). */
static void hide_file(hide_list *h, const char *file)
{
    if (!file || !file[0])
        return;
    char *real = realpath(file, NULL);
    if (!real)
        return;
    char *dir = strdup(real);
    if (!dir) {
        free(real);
        return;
    }
    char *d = dirname(dir);
    int shared = 0;
    for (size_t i = 0; i < sizeof shared_dirs / sizeof shared_dirs[0]; i++)
        shared |= strcmp(d, shared_dirs[i]) == 0;
    if (shared) {
        hide_add(h, real);
    } else {
        char *keep = strdup(d);
        free(real);
        if (keep)
            hide_add(h, keep);
    }
    free(dir);
}

/* Hides a directory of the server's (the journal's, the work directory),
 * which may not exist yet: the helper covers it if it does by then. */
static void hide_dir(hide_list *h, const char *dir)
{
    if (!dir || !dir[0])
        return;
    char *path = realpath(dir, NULL), cwd[PATH_MAX];
    if (!path && dir[0] != '/' && getcwd(cwd, sizeof cwd) && asprintf(&path, "%s/%s", cwd, dir) < 0)
        path = NULL;
    if (!path)
        path = strdup(dir);
    int shared = 0;
    for (size_t i = 0; path && i < sizeof shared_dirs / sizeof shared_dirs[0]; i++)
        shared |= strcmp(path, shared_dirs[i]) == 0;
    if (path && !shared)
        hide_add(h, path);
    else
        free(path);
}

/* tasksolver-exec next to our own executable. Returns malloc'ed. */
static char *default_helper(void)
{
    char path[PATH_MAX];
    return strdup(selfpath_sibling("tasksolver-exec", path, sizeof path) < 0 ? "tasksolver-exec"
                                                                             : path);
}

static int off_json(confine *cf)
{
    struct passwd *pw = getpwuid(geteuid());
    buf b = BUF_INIT;
    buf_puts(&b, "{\"enabled\":false,\"run_as\":");
    jsonw_cstr(&b, pw ? pw->pw_name : NULL);
    buf_printf(&b, ",\"uid\":%ld,\"warning\":", (long)geteuid());
    jsonw_cstr(&b, "--sandbox off: tasks run with the server's user, view of the machine and "
                   "network, limited by time and output only");
    /* The fork server lives in the sandbox's cells. */
    buf_puts(&b, ",\"python_warm\":{\"active\":false,\"why\":\"--sandbox off\"}}");
    cf->info_json = buf_failed(&b) ? NULL : buf_steal(&b, NULL);
    buf_destroy(&b);
    return cf->info_json ? 0 : -1;
}

/* The reason a mechanism is missing, from the sandbox's note "WHAT: WHY;
 * consequence", into out ("" if there is no such note). */
static void missing_reason(const sandbox *sb, const char *what, char *out, size_t size)
{
    size_t n = strlen(what);
    out[0] = '\0';
    for (int i = 0; i < sb->nnotes; i++)
        if (strncmp(sb->notes[i], what, n) == 0 && sb->notes[i][n] == ':') {
            const char *why = sb->notes[i] + n + 1 + (sb->notes[i][n + 1] == ' ');
            snprintf(out, size, "%.*s", (int)strcspn(why, ";"), why);
        }
}

/* Tasks that keep the server's uid are separated from it only by the
 * namespaces (its processes out of reach, its files hidden, the host
 * read-only). Without them a task could signal or ptrace the server and
 * write its journal: refuse to run tasks at all (fail closed). Returns 0
 * or -ENOMEM. */
static int decide_refusal(confine *cf)
{
    const sandbox *sb = &cf->sb;
    if (sb->ns || sb->uid != (uid_t)-1)
        return 0;
    char why[256], who[128];
    missing_reason(sb, "namespaces", why, sizeof why);
    snprintf(who, sizeof who, "uid %ld", (long)getuid());
    if (strcmp(sb->user, who + 4) != 0)
        snprintf(who, sizeof who, "%.64s, uid %ld", sb->user, (long)getuid());
    if (asprintf(&cf->refusal,
                 "tasks are refused: the sandbox cannot separate them from the server (it "
                 "runs as %s, not as root, and cannot create namespaces: %s), so they "
                 "would run as its own user with access to its files and processes; run the "
                 "server as root, or allow it user namespaces (in a container: cap_add "
                 "SYS_ADMIN and NET_ADMIN), or use --sandbox off to run tasks unconfined",
                 who, why[0] ? why : "not permitted") < 0) {
        cf->refusal = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* The "sandbox" object of GET /info: the sandbox's own, plus the refusal. */
static int make_info_json(confine *cf)
{
    buf b = BUF_INIT;
    sandbox_info_json(&cf->sb, &b);
    if (cf->refusal && !buf_failed(&b) && b.len > 0 && b.data[b.len - 1] == '}') {
        b.len--;
        buf_puts(&b, ",\"tasks_refused\":");
        jsonw_cstr(&b, cf->refusal);
        buf_putc(&b, '}');
    }
    cf->info_json = buf_failed(&b) ? NULL : buf_steal(&b, NULL);
    buf_destroy(&b);
    return cf->info_json ? 0 : -ENOMEM;
}

int confine_start(confine *cf, const config *c)
{
    memset(cf, 0, sizeof *cf);
    if (!c->sandbox)
        return off_json(cf) < 0 ? (fprintf(stderr, "tasksolver: out of memory\n"), -1) : 0;
    hide_list h = {{NULL}, 0};
    char *helper = c->exec_helper[0] ? strdup(c->exec_helper) : default_helper();
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    hide_dir(&h, c->work_dir);
    hide_dir(&h, c->data_dir);
    hide_file(&h, c->config_file);
    hide_file(&h, c->auth_token_file);
    hide_file(&h, self);
    hide_file(&h, helper);
    /* Warm Python's fork server, next to the server like the helper. */
    char pyfork[PATH_MAX] = "";
    if (c->python_warm && selfpath_sibling("pyfork.py", pyfork, sizeof pyfork) < 0)
        snprintf(pyfork, sizeof pyfork, "pyfork.py");

    sandbox_config sc = {
        .helper = helper ? helper : "",
        .run_as = c->run_as,
        .network = c->task_network,
        .memory = (int64_t)c->task_memory,
        .cpu = c->task_cpu,
        .procs = c->task_procs,
        .fsize = (int64_t)c->task_fsize,
        .nofile = c->task_nofile,
        .disk = (int64_t)c->task_disk,
        .workers = c->workers,
        .work_dir = c->work_dir,
        .hide = (const char *const *)h.path,
        .cells = c->sandbox_cell,
        .pyfork = pyfork,
        .python = c->python,
        .python_env = pool_env_base,
    };
    char err[512];
    int rc = sandbox_init(&cf->sb, &sc, err, sizeof err);
    free(helper);
    if (rc < 0) {
        for (int i = 0; i < h.n; i++)
            free(h.path[i]);
        fprintf(stderr, "tasksolver: sandbox: %s\n", err);
        return -1;
    }
    cf->hidden = calloc((size_t)h.n + 1, sizeof *cf->hidden);
    for (int i = 0; i < h.n; i++) {
        if (cf->hidden)
            cf->hidden[i] = h.path[i];
        else
            free(h.path[i]);
    }
    if (decide_refusal(cf) < 0 || make_info_json(cf) < 0) {
        free(cf->refusal);
        sandbox_destroy(&cf->sb);
        fprintf(stderr, "tasksolver: out of memory\n");
        return -1;
    }
    cf->enabled = 1;
    return 0;
}

void confine_log(const confine *cf)
{
    if (!cf->enabled) {
        log_warn("--sandbox off: tasks run as %s, unconfined: they see what the server sees",
                 geteuid() == 0 ? "ROOT" : "the server's user");
        log_info("warm Python: off (--sandbox off): python tasks start cold");
        return;
    }
    if (cf->refusal) {
        /* Nothing runs, so no summary of protections that do not exist. */
        log_warn("sandbox: %s", cf->refusal);
        for (int i = 0; i < cf->sb.nnotes; i++)
            log_warn("sandbox: not available: %s", cf->sb.notes[i]);
        return;
    }
    char line[1024];
    sandbox_summary(&cf->sb, line, sizeof line);
    log_notice("%s", line);
    /* Hiding takes a mount namespace. */
    for (int i = 0; cf->sb.ns && cf->hidden && cf->hidden[i]; i++)
        log_info("sandbox: tasks cannot see %s", cf->hidden[i]);
    for (int i = 0; i < cf->sb.nnotes; i++)
        log_warn("sandbox: not available: %s", cf->sb.notes[i]);
    log_info("sandbox: the start-up probe ran a task in %.1f ms", cf->sb.probe_ms);
    if (cf->sb.python_warm)
        log_notice("warm Python: on: python tasks start from a fork server in their worker's "
                   "cell");
    else
        log_info("warm Python: off (%s): python tasks start cold",
                 cf->sb.python_why ? cf->sb.python_why : "?");
}

const sandbox *confine_sandbox(const confine *cf)
{
    return cf->enabled ? &cf->sb : NULL;
}

void confine_stop(confine *cf)
{
    if (cf->enabled)
        sandbox_destroy(&cf->sb);
    free(cf->info_json);
    free(cf->refusal);
    for (int i = 0; cf->hidden && cf->hidden[i]; i++)
        free(cf->hidden[i]);
    free(cf->hidden);
    memset(cf, 0, sizeof *cf);
}
