/* lang: see lang.h. */
#include "lang.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "jsonw.h"
#include "log.h"
#include "pool.h"
#include "runner.h"
#include "selfpath.h"
#include "shsplit.h"
#include "timefmt.h"

#ifndef TS_SYSCONFDIR
#define TS_SYSCONFDIR "/etc"
#endif

#define LANG_FIELDS 5

static void lang_destroy(lang *l)
{
    free(l->name);
    free(l->source);
    shsplit_free(l->compile);
    shsplit_free(l->run);
    shsplit_free(l->version_cmd);
    free(l->version);
    memset(l, 0, sizeof *l);
}

void lang_table_destroy(lang_table *t)
{
    if (t->started) {
        pthread_join(t->thread, NULL);
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
    }
    for (int i = 0; i < t->n; i++)
        lang_destroy(&t->v[i]);
    free(t->v);
    free(t->known);
    free(t->json);
    free(t->report);
    memset(t, 0, sizeof *t);
}

/* s without the blanks around it, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Splits a command field; an empty one is NULL when allowed. */
static int split_cmd(const char *s, char ***out, int may_be_empty, const char **why)
{
    int argc = 0;
    int rc = shsplit(s, strlen(s), out, &argc, why);
    if (rc < 0)
        return rc;
    if (argc == 0) {
        shsplit_free(*out);
        *out = NULL;
        if (!may_be_empty) {
            *why = "empty command";
            return -EINVAL;
        }
    }
    return 0;
}

/* Parses one line of the file into l. Returns 0 or -EINVAL / -ENOMEM with
 * *why set. */
static int parse_line(char *line, lang *l, const char **why)
{
    char *f[LANG_FIELDS];
    int n = 0;
    for (char *p = line; p; n++) {
        char *bar = strchr(p, '|');
        if (n < LANG_FIELDS)
            f[n] = p;
        if (bar)
            *bar = '\0';
        p = bar ? bar + 1 : NULL;
    }
    if (n != LANG_FIELDS) {
        *why = "expected NAME | SOURCE | COMPILE | RUN | VERSION";
        return -EINVAL;
    }
    for (int i = 0; i < LANG_FIELDS; i++)
        f[i] = trim(f[i]);
    size_t nl = strlen(f[0]);
    if (!nl || nl > REQUEST_LANG_MAX ||
        strspn(f[0], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-") != nl ||
        strcmp(f[0], "bin") == 0 || strcmp(f[0], "calc") == 0) {
        *why = "the name must be 1-32 of [A-Za-z0-9_+.-], not bin or calc";
        return -EINVAL;
    }
    if (!f[1][0] || strchr(f[1], '/') || strcmp(f[1], ".") == 0 || strcmp(f[1], "..") == 0 ||
        strlen(f[1]) >= 16) {
        /* 16: the pool keeps the last program's name in that much. */
        *why = "the source must be a plain file name shorter than 16 bytes";
        return -EINVAL;
    }
    memset(l, 0, sizeof *l);
    int rc = -ENOMEM;
    *why = "out of memory";
    if (!(l->name = strdup(f[0])) || !(l->source = strdup(f[1])))
        goto fail;
    if ((rc = split_cmd(f[2], &l->compile, 1, why)) < 0 ||
        (rc = split_cmd(f[3], &l->run, 0, why)) < 0 ||
        (rc = split_cmd(f[4], &l->version_cmd, 0, why)) < 0)
        goto fail;
    return 0;

fail:
    lang_destroy(l);
    return rc;
}

/* The language called name, with no waiting: for the table's own work. */
static const lang *find(const lang_table *t, const char *name)
{
    for (int i = 0; t && i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return &t->v[i];
    return NULL;
}

/* Returns once t's probes are over. The lock is the only part of a
 * reader's const table that changes. */
static void wait_probed(const lang_table *ct)
{
    if (!ct || !ct->started)
        return;
    lang_table *t = (lang_table *)ct;
    pthread_mutex_lock(&t->lock);
    while (!t->done)
        pthread_cond_wait(&t->cond, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

int lang_table_load(lang_table *t, const char *path, char *err, size_t errsz)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errsz, "--languages %s: %s", path, strerror(e));
        return -e;
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = 0, lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        lang l;
        const char *why = NULL;
        if ((rc = parse_line(s, &l, &why)) == 0 && find(t, l.name)) {
            why = "defined twice";
            lang_destroy(&l);
            rc = -EINVAL;
        }
        if (rc == 0) {
            lang *v = reallocarray(t->v, (size_t)t->n + 1, sizeof *v);
            if (!v) {
                lang_destroy(&l);
                why = "out of memory";
                rc = -ENOMEM;
            } else {
                t->v = v;
                t->v[t->n++] = l;
            }
        }
        if (rc < 0) {
            snprintf(err, errsz, "--languages %s line %d: %s", path, lineno, why);
            break;
        }
    }
    free(line);
    fclose(f);
    if (rc < 0)
        lang_table_destroy(t);
    return rc;
}

/* prog as the tasks find it, in their PATH, into out: the server's own
 * PATH may hold other tools (a user's ~/.cargo/bin, a pyenv shim) that
 * tasks do not have. Returns 1, or 0 when they have none. */
static int in_task_path(const char *prog, char *out, size_t size)
{
    if (strchr(prog, '/')) {
        snprintf(out, size, "%s", prog);
        return 1;
    }
    const char *p = POOL_TASK_PATH;
    while (*p) {
        size_t n = strcspn(p, ":");
        snprintf(out, size, "%.*s/%s", (int)n, p, prog);
        if (access(out, X_OK) == 0)
            return 1;
        p += n + (p[n] == ':');
    }
    return 0;
}

/* Runs l's version command and keeps the first line it printed (stdout,
 * else stderr: java prints its version there). Returns 1 when the tool
 * answered, 0 when not, with the reason in why. */
static int probe_one(lang *l, double timeout, char *why, size_t whysz)
{
    char path[4096];
    if (!in_task_path(l->version_cmd[0], path, sizeof path)) {
        snprintf(why, whysz, "no %s in %s", l->version_cmd[0], POOL_TASK_PATH);
        return 0;
    }
    runner_opts o = {
        .path = path,
        .argv = l->version_cmd,
        .envp = pool_env_base,
        .cwd = "/",
        .stdin_fd = -1,
        .capture_stdout = 1,
        .capture_stderr = 1,
    };
    runner_limits lim = {
        .timeout_us = (int64_t)(timeout * 1e6), .max_output = 4096, .cancel_fd = -1};
    runner_result r;
    int ok = 0;
    if (runner_run(&o, &lim, NULL, NULL, &r) == 0 && r.exited && r.exit_code == 0) {
        const buf *src = r.out.len ? &r.out : &r.err;
        size_t n = 0;
        while (n < src->len && src->data[n] != '\n' && src->data[n] != '\r')
            n++;
        /* The JSON writer escapes it; a line of nothing is no answer. */
        if (n && (l->version = strndup(src->data, n)))
            ok = 1;
        else
            snprintf(why, whysz, "'%s' printed nothing", l->version_cmd[0]);
    } else {
        char how[200];
        snprintf(why, whysz, "'%s' %s", l->version_cmd[0],
                 runner_describe(&r, &lim, how, sizeof how));
    }
    runner_result_destroy(&r);
    return ok;
}

/* The GET /languages body and the list of known types, from t->v. */
static int build_texts(lang_table *t)
{
    buf j = BUF_INIT, k = BUF_INIT;
    buf_putc(&j, '[');
    buf_puts(&k, "python, bin");
    for (int i = 0; i < t->n; i++) {
        const lang *l = &t->v[i];
        buf_puts(&j, i ? ",{\"name\":" : "{\"name\":");
        jsonw_cstr(&j, l->name);
        buf_puts(&j, ",\"version\":");
        jsonw_cstr(&j, l->version);
        buf_printf(&j, ",\"compiled\":%s,\"source\":", l->compile ? "true" : "false");
        jsonw_cstr(&j, l->source);
        buf_putc(&j, '}');
        if (strcmp(l->name, "python") != 0)
            buf_printf(&k, ", %s", l->name);
    }
    buf_puts(&j, "]\n");
    if (buf_failed(&j) || buf_failed(&k)) {
        buf_destroy(&j);
        buf_destroy(&k);
        return -ENOMEM;
    }
    t->json = buf_steal(&j, &t->json_len);
    size_t ignored;
    t->known = buf_steal(&k, &ignored);
    return 0;
}

/* One probe on a thread of its own. */
typedef struct probe {
    lang *l;
    double timeout;
    int ok;        /* written by the probe's thread */
    char why[300]; /* likewise: why the language is not offered */
    int started;   /* a thread to join */
} probe;

static void *probe_main(void *arg)
{
    probe *pr = arg;
    pr->ok = probe_one(pr->l, pr->timeout, pr->why, sizeof pr->why);
    return NULL;
}

/* The probes, then the texts; never fails (without memory for the texts
 * the table offers no language). */
static void probe_all(lang_table *t, double timeout)
{
    int64_t t0 = time_mono_us();
    /* At once, each on a thread: one after the other, the shipped file's
     * tools took 1.1 s here (javac alone 0.7 s), at every start. */
    probe *pr = calloc((size_t)t->n + 1, sizeof *pr);
    pthread_t *th = calloc((size_t)t->n + 1, sizeof *th);
    if (!pr || !th) {
        free(pr);
        free(th);
        log_error("languages: out of memory: none offered");
        for (int i = 0; i < t->n; i++)
            lang_destroy(&t->v[i]);
        t->n = 0;
        return;
    }
    for (int i = 0; i < t->n; i++) {
        pr[i] = (probe){.l = &t->v[i], .timeout = timeout};
        pr[i].started = pthread_create(&th[i], NULL, probe_main, &pr[i]) == 0;
        if (!pr[i].started)
            probe_main(&pr[i]);
    }
    for (int i = 0; i < t->n; i++)
        if (pr[i].started)
            pthread_join(th[i], NULL);
    int kept = 0;
    buf rep = BUF_INIT;
    for (int i = 0; i < t->n; i++) {
        if (pr[i].ok == 1) {
            t->v[kept++] = t->v[i];
        } else {
            buf_printf(&rep, "language %s not offered: %s\n", t->v[i].name, pr[i].why);
            lang_destroy(&t->v[i]);
        }
    }
    free(pr);
    free(th);
    int probed = t->n;
    t->n = kept;
    buf_printf(&rep, "languages: %d of %d offered (version commands took %lld ms)\n", kept, probed,
               (long long)((time_mono_us() - t0) / 1000));
    size_t ignored;
    t->report = buf_failed(&rep) ? NULL : buf_steal(&rep, &ignored);
    buf_destroy(&rep);
    if (build_texts(t) < 0) {
        log_error("languages: out of memory: none offered");
        for (int i = 0; i < t->n; i++)
            lang_destroy(&t->v[i]);
        t->n = 0;
    }
}

static void *probe_main_all(void *arg)
{
    lang_table *t = arg;
    probe_all(t, t->timeout);
    pthread_mutex_lock(&t->lock);
    t->done = 1;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int lang_table_probe_start(lang_table *t, double timeout)
{
    t->timeout = timeout;
    t->done = 0;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    int rc = pthread_create(&t->thread, NULL, probe_main_all, t);
    if (rc) {
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
        return -rc;
    }
    t->started = 1;
    return 0;
}

const lang *lang_find(const lang_table *t, const char *name)
{
    wait_probed(t);
    return find(t, name);
}

int lang_default_path(char *out, size_t size)
{
    /* Next to the server (the build tree), then below the prefix it was
     * installed under (PREFIX/bin/../etc: an install with another
     * --prefix than configured), the configured directory, /etc. */
    static const char *const rel[] = {"languages.conf", "../etc/tasksolver/languages.conf"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++)
        if (selfpath_sibling(rel[i], out, size) == 0 && access(out, R_OK) == 0)
            return 0;
    static const char *const abs[] = {TS_SYSCONFDIR "/tasksolver/languages.conf",
                                      "/etc/tasksolver/languages.conf"};
    for (size_t i = 0; i < sizeof abs / sizeof *abs; i++) {
        snprintf(out, size, "%s", abs[i]);
        if (access(out, R_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

int lang_check_create(const lang_table *t, create_req *r, char *err, size_t errsz)
{
    if (r->type != TASK_LANG)
        return 0;
    const lang *lg = lang_find(t, r->lang);
    if (!lg) { /* lang_find waited for the probes: `known` is set */
        snprintf(err, errsz, "unknown type \"%s\"; known types: %s", r->lang,
                 t && t->known ? t->known : "python, bin");
        create_req_destroy(r);
        return -EINVAL;
    }
    /* The request parser knows only python's and bin's program names. */
    for (int i = 0; i < r->nfiles; i++)
        if (strcmp(r->files[i].name, lg->source) == 0) {
            snprintf(err, errsz, "files[%d].name \"%s\" is the program's own name", i, lg->source);
            create_req_destroy(r);
            return -EINVAL;
        }
    return 0;
}

void lang_result_json(buf *b, const task *t)
{
    if (!t->compiled)
        return;
    buf_puts(b, ",\"compile_output\":");
    jsonw_str(b, t->compile_out ? t->compile_out : "", t->compile_out_len);
    buf_puts(b, ",\"compile_exit_code\":");
    if (t->compile_exited)
        jsonw_i64(b, t->compile_exit_code);
    else
        buf_puts(b, "null");
}

void lang_log(const lang_table *t)
{
    wait_probed(t);
    if (!t->report)
        return;
    for (const char *s = t->report; *s;) {
        size_t n = strcspn(s, "\n");
        /* The summary, last, at info; each language left out, a notice. */
        if (s[n] && s[n + 1])
            log_notice("%.*s", (int)n, s);
        else
            log_info("%.*s", (int)n, s);
        s += n + (s[n] != '\0');
    }
}

static int h_languages(struct mg_connection *c, void *cbdata)
{
    const lang_table *t = cbdata;
    if (!http_method_is(c, "GET"))
        return 405;
    wait_probed(t);
    if (!t->json)
        return http_send_json(c, 200, NULL, "[]\n", 3);
    return http_send_json(c, 200, NULL, t->json, t->json_len);
}

int lang_register(const lang_table *t, http_routes *routes)
{
    return http_routes_add(routes, "/languages$", h_languages, (void *)t, "GET /languages");
}
