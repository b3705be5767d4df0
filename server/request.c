/* request: see request.h. */
#include "request.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "jsonbody.h"
#include "jsonscan.h"
#include "jsonw.h"
#include "request_files.h"
#include "request_limits.h"
#include "request_tests.h"
#include "shsplit.h"

/* Arguments beyond this are refused early rather than at exec (E2BIG). */
#define REQUEST_MAX_ARGS 4096

int request_parse_args(const cJSON *a, const char *name, char ***argv_out, int *argc_out, char *err,
                       size_t errsz)
{
    if (!a || cJSON_IsNull(a)) {
        char **v = calloc(1, sizeof *v);
        if (!v)
            return -ENOMEM;
        *argv_out = v;
        *argc_out = 0;
        return 0;
    }
    if (cJSON_IsString(a)) {
        const char *why = NULL;
        char **words;
        int n;
        int rc = shsplit(a->valuestring, strlen(a->valuestring), &words, &n, &why);
        if (rc == -EINVAL)
            snprintf(err, errsz, "%s cannot be split into words: %s", name, why);
        if (rc < 0)
            return rc;
        if (n > REQUEST_MAX_ARGS) {
            shsplit_free(words);
            snprintf(err, errsz, "%s has more than %d arguments", name, REQUEST_MAX_ARGS);
            return -EINVAL;
        }
        /* shsplit returns one block; tasks own each word separately. */
        char **v = calloc((size_t)n + 1, sizeof *v);
        for (int i = 0; v && i < n; i++) {
            v[i] = strdup(words[i]);
            if (!v[i]) {
                task_args_free(v);
                v = NULL;
            }
        }
        shsplit_free(words);
        if (!v)
            return -ENOMEM;
        *argv_out = v;
        *argc_out = n;
        return 0;
    }
    if (!cJSON_IsArray(a)) {
        snprintf(err, errsz, "%s must be an array of strings or a string", name);
        return -EINVAL;
    }
    int n = cJSON_GetArraySize(a);
    if (n > REQUEST_MAX_ARGS) {
        snprintf(err, errsz, "%s has more than %d arguments", name, REQUEST_MAX_ARGS);
        return -EINVAL;
    }
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    int i = 0, rc = -EINVAL;
    const cJSON *el;
    cJSON_ArrayForEach(el, a)
    {
        if (!cJSON_IsString(el)) {
            snprintf(err, errsz, "%s element %d must be a string", name, i);
            goto fail_element;
        }
        v[i] = strdup(el->valuestring);
        if (!v[i]) {
            rc = -ENOMEM;
            goto fail_element;
        }
        i++;
    }
    *argv_out = v;
    *argc_out = n;
    return 0;

fail_element:
    for (int j = 0; j < i; j++)
        free(v[j]);
    free(v);
    return rc;
}

/* Reads `stdin` (text) or `stdin_base64` (bytes) into out. */
static int parse_stdin(const cJSON *text, const cJSON *b64, create_req *out, char *err,
                       size_t errsz)
{
    if (text && b64) {
        snprintf(err, errsz, "fields 'stdin' and 'stdin_base64' exclude each other: give one");
        return -EINVAL;
    }
    if ((text && !cJSON_IsString(text)) || (b64 && !cJSON_IsString(b64))) {
        snprintf(err, errsz, "field '%s' must be a string", text ? "stdin" : "stdin_base64");
        return -EINVAL;
    }
    const char *s = text ? text->valuestring : b64 ? b64->valuestring : "";
    size_t len = strlen(s);
    if (len == 0)
        return 0;
    if (text) {
        out->input = malloc(len);
        if (!out->input)
            return -ENOMEM;
        memcpy(out->input, s, len);
        out->input_len = len;
        return 0;
    }
    size_t bad = 0;
    int rc = b64_decode(s, len, &out->input, &out->input_len, &bad);
    if (rc == -EINVAL)
        snprintf(err, errsz,
                 "field 'stdin_base64' is not valid base64 (bad character at offset %zu)", bad);
    return rc;
}

/* [A-Za-z_][A-Za-z0-9_]*: what a shell can name, and never an '='. */
static int env_name_valid(const char *n)
{
    if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || *n == '_'))
        return 0;
    for (n++; *n; n++)
        if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') ||
              *n == '_'))
            return 0;
    return 1;
}

/* Checks one member of `env`; 0 or -EINVAL with err set. */
static int check_env_var(const cJSON *v, const cJSON *env, char *err, size_t errsz)
{
    const char *name = v->string;
    if (!env_name_valid(name)) {
        snprintf(err, errsz, "env.%.64s: not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)", name);
        return -EINVAL;
    }
    /* The task's directory: where it may write, and what it is told. */
    if (strcmp(name, "HOME") == 0 || strcmp(name, "TMPDIR") == 0) {
        snprintf(err, errsz, "env.%s cannot be set: the server gives each task its own", name);
        return -EINVAL;
    }
    if (!cJSON_IsString(v)) {
        snprintf(err, errsz, "env.%.64s must be a string", name);
        return -EINVAL;
    }
    /* cJSON keeps duplicate keys: refuse rather than pick one. */
    if (cJSON_GetObjectItemCaseSensitive(env, name) != v) {
        snprintf(err, errsz, "env.%.64s is given twice", name);
        return -EINVAL;
    }
    return 0;
}

/* Builds the "NAME=VALUE" vector from the `env` object. */
static int parse_env(const cJSON *env, char ***out, int *envc, char *err, size_t errsz)
{
    if (!env || cJSON_IsNull(env))
        return 0;
    if (!cJSON_IsObject(env)) {
        snprintf(err, errsz, "field 'env' must be an object of strings");
        return -EINVAL;
    }
    int n = cJSON_GetArraySize(env);
    if (n > REQUEST_MAX_ENV) {
        snprintf(err, errsz, "field 'env' has more than %d variables", REQUEST_MAX_ENV);
        return -EINVAL;
    }
    size_t total = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, env)
    {
        int rc = check_env_var(v, env, err, errsz);
        if (rc < 0)
            return rc;
        total += strlen(v->string) + strlen(v->valuestring) + 2;
    }
    if (total > REQUEST_MAX_ENV_BYTES) {
        snprintf(err, errsz, "field 'env' holds more than %u bytes", REQUEST_MAX_ENV_BYTES);
        return -EINVAL;
    }
    char **vec = calloc((size_t)n + 1, sizeof *vec);
    if (!vec)
        return -ENOMEM;
    int i = 0;
    cJSON_ArrayForEach(v, env)
    {
        size_t l = strlen(v->string) + strlen(v->valuestring) + 2;
        if (!(vec[i] = malloc(l))) {
            task_args_free(vec);
            return -ENOMEM;
        }
        snprintf(vec[i++], l, "%s=%s", v->string, v->valuestring);
    }
    *out = vec;
    *envc = n;
    return 0;
}

/* A name a language may have: short, and safe in logs and file names. */
static int lang_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= REQUEST_LANG_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-") == n;
}

/* A python file that decodes to NULs or invalid UTF-8 was plain source
 * that happened to look like base64 ("pass" is valid base64). */
static int looks_like_text(const unsigned char *p, size_t len)
{
    if (memchr(p, 0, len))
        return 0;
    return jsonw_utf8_valid_prefix((const char *)p, len) == len;
}

int request_parse_create(const char *body, size_t len, const task_limits *caps, create_req *out,
                         char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    cJSON *root = jsonbody_parse_object(body, len, err, errsz);
    if (!root)
        return -EINVAL;
    int rc = -EINVAL;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(root, "file");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(root, "args");
    if (!type) {
        snprintf(err, errsz, "missing field 'type' (\"python\" or \"bin\")");
        goto fail_json;
    }
    if (!cJSON_IsString(type)) {
        snprintf(err, errsz, "field 'type' must be a string, \"python\" or \"bin\"");
        goto fail_json;
    }
    if (strcmp(type->valuestring, "python") == 0) {
        out->type = TASK_PYTHON;
    } else if (strcmp(type->valuestring, "bin") == 0) {
        out->type = TASK_BIN;
    } else if (lang_name_ok(type->valuestring)) {
        out->type = TASK_LANG;
        if (!(out->lang = strdup(type->valuestring))) {
            rc = -ENOMEM;
            goto fail_json;
        }
    } else {
        snprintf(err, errsz,
                 "field 'type' must be \"python\", \"bin\" or a language of GET /languages, "
                 "not \"%.40s\"",
                 type->valuestring);
        goto fail_json;
    }
    if (!file) {
        snprintf(err, errsz, "missing field 'file' (the program, base64-encoded)");
        goto fail_json;
    }
    if (!cJSON_IsString(file)) {
        snprintf(err, errsz, "field 'file' must be a string (the program, base64-encoded)");
        goto fail_json;
    }
    const char *fs = file->valuestring;
    size_t flen = strlen(fs);
    size_t bad = 0;
    rc = b64_decode(fs, flen, &out->file, &out->file_len, &bad);
    if (rc == -ENOMEM)
        goto fail_json;
    if ((out->type == TASK_PYTHON || out->type == TASK_LANG) &&
        (rc < 0 || !looks_like_text(out->file, out->file_len))) {
        free(out->file);
        out->file = (unsigned char *)strdup(fs);
        if (!out->file) {
            rc = -ENOMEM;
            goto fail_json;
        }
        out->file_len = flen;
        rc = 0;
    } else if (rc < 0) {
        snprintf(err, errsz, "field 'file' is not valid base64 (bad character at offset %zu)", bad);
        goto fail_json;
    }
    if (out->type == TASK_BIN && out->file_len == 0) {
        snprintf(err, errsz, "field 'file' is empty: a bin task needs an executable");
        rc = -EINVAL;
        goto fail_file;
    }
    rc = request_parse_args(args, "field 'args'", &out->args, &out->argc, err, errsz);
    if (rc < 0)
        goto fail_file;
    rc = parse_stdin(cJSON_GetObjectItemCaseSensitive(root, "stdin"),
                     cJSON_GetObjectItemCaseSensitive(root, "stdin_base64"), out, err, errsz);
    if (rc < 0)
        goto fail_args;
    rc =
        parse_env(cJSON_GetObjectItemCaseSensitive(root, "env"), &out->env, &out->envc, err, errsz);
    if (rc < 0)
        goto fail_input;
    rc = request_parse_limits(cJSON_GetObjectItemCaseSensitive(root, "limits"), caps, &out->limits,
                              err, errsz);
    if (rc < 0)
        goto fail_env;
    rc = request_files_parse(cJSON_GetObjectItemCaseSensitive(root, "files"), body, len,
                             task_program_name(out->type), &out->files, &out->nfiles, err, errsz);
    if (rc < 0)
        goto fail_env;
    rc = request_tests_parse(root, &out->tests, err, errsz);
    if (rc < 0)
        goto fail_files;
    cJSON_Delete(root);
    return 0;

fail_files:
    task_files_free(out->files, out->nfiles);
    out->files = NULL;
    out->nfiles = 0;
fail_env:
    task_args_free(out->env);
    out->env = NULL;
    out->envc = 0;
fail_input:
    free(out->input);
    out->input = NULL;
    out->input_len = 0;
fail_args:
    task_args_free(out->args);
    out->args = NULL;
    out->argc = 0;
fail_file:
    free(out->file);
    out->file = NULL;
fail_json:
    free(out->lang);
    out->lang = NULL;
    cJSON_Delete(root);
    if (rc == -ENOMEM)
        snprintf(err, errsz, "out of memory");
    return rc;
}

void create_req_destroy(create_req *r)
{
    free(r->lang);
    free(r->file);
    task_args_free(r->args);
    free(r->input);
    task_args_free(r->env);
    task_files_free(r->files, r->nfiles);
    testset_free(r->tests);
    memset(r, 0, sizeof *r);
}

int request_parse_id(const char *body, size_t len, char *out, size_t outsz, char *err, size_t errsz)
{
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i == len)
        return -ENOENT;
    cJSON *root = jsonbody_parse_object(body, len, err, errsz);
    if (!root)
        return -EINVAL;
    int rc = -EINVAL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (!id)
        snprintf(err, errsz, "missing field 'id'");
    else if (!cJSON_IsString(id))
        snprintf(err, errsz, "field 'id' must be a string");
    else if (strlen(id->valuestring) >= outsz)
        snprintf(err, errsz, "field 'id' is too long to be a task id");
    else {
        memcpy(out, id->valuestring, strlen(id->valuestring) + 1);
        rc = 0;
    }
    cJSON_Delete(root);
    return rc;
}
