/* request_files: see request_files.h. */
#include "request_files.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "jsonscan.h"

/* NAME_MAX of the file systems task directories live on. */
#define COMPONENT_MAX 255

/* Why name cannot be a file of the task, or NULL when it can. */
static const char *name_problem(const char *name, const char *prog)
{
    size_t len = strlen(name);
    if (len == 0)
        return "is empty";
    if (len > REQUEST_FILE_NAME_MAX)
        return "is longer than 1024 bytes";
    if (name[0] == '/')
        return "is an absolute path";
    for (const char *c = name;;) {
        size_t n = strcspn(c, "/");
        if (n == 0)
            return "has an empty component (\"a//b\" or a trailing '/')";
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return "contains '..'";
        if (n == 1 && c[0] == '.')
            return "has a '.' component";
        if (n > COMPONENT_MAX)
            return "has a component longer than 255 bytes";
        if (c == name && prog && strlen(prog) == n && memcmp(c, prog, n) == 0)
            return "is the program's own name";
        if (!c[n])
            return NULL;
        c += n + 1;
    }
}

/* Non-zero when a is a directory b lies in ("pkg" and "pkg/mod.py"). */
static int is_parent(const char *a, const char *b)
{
    size_t la = strlen(a);
    return strncmp(a, b, la) == 0 && b[la] == '/';
}

/* Checks every name and that no two clash. Returns 0 or -EINVAL with err. */
static int check_names(const task_file *f, int n, const char *prog, char *err, size_t errsz)
{
    for (int i = 0; i < n; i++) {
        const char *why = name_problem(f[i].name, prog);
        if (why) {
            snprintf(err, errsz, "files[%d].name \"%.64s\" %s", i, f[i].name, why);
            return -EINVAL;
        }
        /* 256 entries at most: 32 640 comparisons of short strings. */
        for (int j = 0; j < i; j++) {
            if (strcmp(f[i].name, f[j].name) == 0)
                why = "is given twice";
            else if (is_parent(f[i].name, f[j].name) || is_parent(f[j].name, f[i].name))
                why = "is both a file and a directory";
            if (why) {
                snprintf(err, errsz, "files[%d].name \"%.64s\" %s (files[%d])", i, f[i].name, why,
                         j);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* The index of the element of the JSON array text s that holds a "\u0000"
 * escape, or -1. s is valid JSON (cJSON parsed it). */
static int nul_entry(const char *s, size_t len)
{
    int depth = 0, in_str = 0, idx = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '"')
                in_str = 0;
            else if (c == '\\' && i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0)
                return idx;
            else if (c == '\\')
                i++;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == ',' && depth == 1) {
            idx++;
        }
    }
    return -1;
}

/* Fills f from the JSON object e, entry i. */
static int parse_entry(const cJSON *e, int i, task_file *f, char *err, size_t errsz)
{
    if (!cJSON_IsObject(e)) {
        snprintf(err, errsz, "files[%d] must be an object {\"name\": ..., \"content\": BASE64}", i);
        return -EINVAL;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
    if (!cJSON_IsString(name)) {
        snprintf(err, errsz, "files[%d].name %s", i, name ? "must be a string" : "is missing");
        return -EINVAL;
    }
    if (!cJSON_IsString(content)) {
        snprintf(err, errsz, "files[%d].content %s", i,
                 content ? "must be a string (base64)" : "is missing");
        return -EINVAL;
    }
    size_t bad = 0;
    int rc =
        b64_decode(content->valuestring, strlen(content->valuestring), &f->data, &f->len, &bad);
    if (rc == -EINVAL) {
        snprintf(err, errsz, "files[%d].content is not base64 (bad character at offset %zu)", i,
                 bad);
        return rc;
    }
    if (rc < 0)
        return rc;
    if (!(f->name = strdup(name->valuestring))) {
        free(f->data);
        f->data = NULL;
        return -ENOMEM;
    }
    return 0;
}

int request_files_parse(const cJSON *files, const char *raw, size_t rawlen, const char *prog,
                        task_file **out, int *n, char *err, size_t errsz)
{
    *out = NULL;
    *n = 0;
    if (!files || cJSON_IsNull(files))
        return 0;
    if (!cJSON_IsArray(files)) {
        snprintf(err, errsz, "field 'files' must be an array of {\"name\", \"content\"}");
        return -EINVAL;
    }
    int count = cJSON_GetArraySize(files);
    if (count > REQUEST_MAX_FILES) {
        snprintf(err, errsz, "field 'files' has %d entries; at most %d", count, REQUEST_MAX_FILES);
        return -EINVAL;
    }
    const char *val;
    size_t vlen;
    int nul = jsonscan_member(raw, rawlen, "files", &val, &vlen) == 0 ? nul_entry(val, vlen) : -1;
    if (nul >= 0) {
        snprintf(err, errsz, "files[%d] holds a NUL character (\\u0000)", nul);
        return -EINVAL;
    }
    if (count == 0)
        return 0;
    task_file *f = calloc((size_t)count, sizeof *f);
    if (!f)
        return -ENOMEM;
    int i = 0, rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, files)
    {
        if ((rc = parse_entry(e, i, &f[i], err, errsz)) < 0)
            goto fail;
        i++;
    }
    if ((rc = check_names(f, count, prog, err, errsz)) < 0)
        goto fail;
    *out = f;
    *n = count;
    return 0;

fail:
    task_files_free(f, i);
    return rc;
}

size_t request_files_bytes(const task_file *f, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += f[i].len;
    return total;
}

int request_files_fit(const task_file *f, int n, size_t prog_len, size_t disk, char *err,
                      size_t errsz)
{
    size_t total = request_files_bytes(f, n) + prog_len;
    if (n == 0 || disk == 0 || total <= disk)
        return 0;
    snprintf(err, errsz,
             "field 'files' holds %zu bytes with the program, more than the task's disk of %zu "
             "bytes (limits.disk, else --task-disk)",
             total, disk);
    return -EFBIG;
}

int request_files_pack(const task_file *f, int n, unsigned char **blob, size_t *len)
{
    *blob = NULL;
    *len = 0;
    if (n == 0)
        return 0;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += strlen(f[i].name) + 1 + 8 + f[i].len;
    unsigned char *b = malloc(total), *p = b;
    if (!b)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(f[i].name) + 1;
        memcpy(p, f[i].name, l);
        p += l;
        for (int k = 0; k < 8; k++)
            *p++ = (unsigned char)((uint64_t)f[i].len >> (8 * k));
        if (f[i].len)
            memcpy(p, f[i].data, f[i].len);
        p += f[i].len;
    }
    *blob = b;
    *len = total;
    return 0;
}

/* Reads the file at *p (left bytes) into f, advancing. */
static int unpack_one(const unsigned char **p, size_t *left, task_file *f)
{
    const unsigned char *end = memchr(*p, 0, *left);
    if (!end || (size_t)(end - *p) + 1 + 8 > *left)
        return -EINVAL;
    size_t nl = (size_t)(end - *p) + 1;
    uint64_t len = 0;
    for (int k = 0; k < 8; k++)
        len |= (uint64_t)end[1 + k] << (8 * k);
    if (len > *left - nl - 8)
        return -EINVAL;
    f->name = malloc(nl);
    f->data = malloc(len ? len : 1);
    if (!f->name || !f->data) {
        free(f->name);
        free(f->data);
        f->name = NULL;
        f->data = NULL;
        return -ENOMEM;
    }
    memcpy(f->name, *p, nl);
    memcpy(f->data, end + 9, len);
    f->len = len;
    *p += nl + 8 + len;
    *left -= nl + 8 + len;
    return 0;
}

int request_files_unpack(const unsigned char *blob, size_t len, const char *prog, task_file **out,
                         int *n)
{
    *out = NULL;
    *n = 0;
    if (!blob || len == 0)
        return 0;
    task_file *f = calloc(REQUEST_MAX_FILES, sizeof *f);
    if (!f)
        return -ENOMEM;
    int i = 0, rc = 0;
    while (len && rc == 0) {
        rc = i < REQUEST_MAX_FILES ? unpack_one(&blob, &len, &f[i]) : -EINVAL;
        if (rc == 0)
            i++;
    }
    char err[8];
    if (rc == 0 && check_names(f, i, prog, err, sizeof err) < 0)
        rc = -EINVAL;
    if (rc < 0) {
        task_files_free(f, i);
        return rc;
    }
    *out = f;
    *n = i;
    return 0;
}

/* Opens (making it when missing) the directory `name` below dirfd. */
static int open_dir(int dirfd, const char *name)
{
    if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Writes one file, making the directories on its way. */
static int write_one(int dirfd, const task_file *f)
{
    char path[REQUEST_FILE_NAME_MAX + 1];
    snprintf(path, sizeof path, "%s", f->name);
    int at = dirfd, rc = 0;
    char *c = path, *slash;
    while ((slash = strchr(c, '/'))) {
        *slash = '\0';
        int sub = open_dir(at, c);
        if (at != dirfd)
            close(at);
        if (sub < 0)
            return sub;
        at = sub;
        c = slash + 1;
    }
    int fd = openat(at, c, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        rc = -errno;
    for (size_t off = 0; fd >= 0 && off < f->len && !rc;) {
        ssize_t w = write(fd, f->data + off, f->len - off);
        if (w < 0 && errno != EINTR)
            rc = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (fd >= 0 && close(fd) < 0 && !rc)
        rc = -errno;
    if (at != dirfd)
        close(at);
    return rc;
}

int request_files_write(int dirfd, const task_file *f, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = write_one(dirfd, &f[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}
