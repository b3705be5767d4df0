/* request: validation of request bodies that come from the network.
 *
 * Kept apart from the HTTP handlers so that the parsers can be unit-tested
 * and fuzzed without a server. */
#ifndef TS_REQUEST_H
#define TS_REQUEST_H

#include <stddef.h>

#include "jsonbody.h"
#include "task.h"
#include "task_limits.h"

/* Longest error message produced here. */
#define REQUEST_ERR_MAX JSONBODY_ERR_MAX

/* A parsed POST /create_task body. */
typedef struct create_req {
    enum task_type type;
    char *lang;          /* TASK_LANG: the language named by `type`; owned */
    unsigned char *file; /* decoded program; owned */
    size_t file_len;
    char **args; /* NULL-terminated argument vector; owned */
    int argc;
    unsigned char *input; /* the task's stdin, or NULL (none: EOF); owned */
    size_t input_len;
    char **env; /* NULL-terminated "NAME=VALUE" entries, or NULL; owned */
    int envc;
    task_file *files; /* `files` (request_files.h), or NULL; owned */
    int nfiles;
    task_limits limits;    /* what `limits` asked for; 0: the server's */
    struct testset *tests; /* `tests` and `stop_on_failure`, or NULL; owned */
} create_req;

/* At most this many variables in `env`, and this many bytes of
 * "NAME=VALUE\0" in all: far below what exec takes (E2BIG at ~2 MiB with
 * the arguments), enough for any configuration by environment. */
#define REQUEST_MAX_ENV 64
#define REQUEST_MAX_ENV_BYTES (32u << 10)

/* Longest language name `type` may give. */
#define REQUEST_LANG_MAX 32

/* Parses {"type": "python"|"bin"|LANGUAGE, "file": BASE64, "args": [..] | "...",
 * "stdin": TEXT | "stdin_base64": BASE64, "env": {NAME: VALUE, ...},
 * "files": [{"name": PATH, "content": BASE64}, ...]} (see request_files.h).
 * Any other `type` made of at most REQUEST_LANG_MAX letters, digits and
 * "_+.-" is a TASK_LANG whose name is kept in `lang`, for the caller to
 * check against the languages it offers (lang_check_create); its `file`,
 * the source, is decoded as python's is.
 * For python, a `file` that is not valid base64, or that decodes to bytes
 * that are not UTF-8 text, is taken as the source code itself. `stdin`
 * and `stdin_base64` exclude each other; an empty one is no stdin. `env`
 * names match [A-Za-z_][A-Za-z0-9_]*, once each, values are strings, HOME
 * and TMPDIR stay the server's, at most REQUEST_MAX_ENV of them and
 * REQUEST_MAX_ENV_BYTES in all; a variable the server sets too (PATH,
 * LANG...) replaces the server's. `limits` is checked against caps by
 * request_parse_limits (request_limits.h; caps NULL: no caps).
 * `tests` and `stop_on_failure` are read by request_tests_parse (the
 * server's --max-tests is checked apart, request_tests_check_cap).
 * Returns 0 and fills *out (release with create_req_destroy), or -EINVAL
 * with a message naming the field in err, or -ENOMEM. On error nothing is
 * allocated. */
int request_parse_create(const char *body, size_t len, const task_limits *caps, create_req *out,
                         char *err, size_t errsz);

/* Builds an argument vector from a JSON array of strings or a string
 * split into words as a shell would (NULL or null: no arguments), at most
 * 4096 of them; `name` starts its error messages ("field 'args'").
 * Returns 0 and sets *argv_out (NULL-terminated, owned by the caller) and
 * *argc_out, or -EINVAL with err set, or -ENOMEM. */
int request_parse_args(const struct cJSON *a, const char *name, char ***argv_out, int *argc_out,
                       char *err, size_t errsz);

/* Frees what a successful request_parse_create allocated. */
void create_req_destroy(create_req *r);

/* Extracts the "id" string from a JSON body {"id": "..."} into out.
 * Returns 0, -ENOENT if the body is empty, or -EINVAL with err set. */
int request_parse_id(const char *body, size_t len, char *out, size_t outsz, char *err,
                     size_t errsz);

#endif
