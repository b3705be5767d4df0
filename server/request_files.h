/* request_files: the `files` field of POST /create_task, extra files the
 * task finds in its directory next to its program.
 *
 * The field is checked here once (names, count, base64), packed into one
 * blob for the journal and unpacked with the same checks, and written
 * into the task's directory by the worker. Names are relative paths the
 * task cannot use to escape its directory: no "..", ".", empty component,
 * leading or trailing '/', NUL, nor the program's own name. */
#ifndef TS_REQUEST_FILES_H
#define TS_REQUEST_FILES_H

#include <stddef.h>

#include "task.h"

struct cJSON;

/* Entries in `files` at most. */
#define REQUEST_MAX_FILES 256
/* Bytes of a name at most (a component at most NAME_MAX, 255). */
#define REQUEST_FILE_NAME_MAX 1024

/* Parses `files` (a JSON array of {"name": PATH, "content": BASE64}; NULL
 * or null: none) of a create body; raw/rawlen is the whole body, read
 * again for NUL characters, which cJSON drops silently (it ends a string
 * at "\u0000"). prog is the name of the program in the task's directory
 * (main.py, program), which no entry may take or go below. Returns 0 with
 * *out (an array of *n, NULL when none; release with task_files_free), or
 * -EINVAL with err naming the entry ("files[2].name ..."), or -ENOMEM. On
 * error nothing is allocated. */
int request_files_parse(const struct cJSON *files, const char *raw, size_t rawlen, const char *prog,
                        task_file **out, int *n, char *err, size_t errsz);

/* Bytes the n files take on disk, names aside. */
size_t request_files_bytes(const task_file *f, int n);

/* Checks that the n files and a program of prog_len bytes fit in disk
 * bytes (the task's private disk: its limits.disk, else --task-disk; 0:
 * no limit). Returns 0 or -EFBIG with a sentence in err. */
int request_files_fit(const task_file *f, int n, size_t prog_len, size_t disk, char *err,
                      size_t errsz);

/* Packs n files into one malloc'd blob (*blob NULL when n is 0), for the
 * journal: per file its name, a NUL, its length as 8 bytes little-endian,
 * then its bytes. Returns 0 or -ENOMEM. */
int request_files_pack(const task_file *f, int n, unsigned char **blob, size_t *len);

/* Unpacks a blob made by request_files_pack, checking the names as
 * request_files_parse does (prog likewise). Returns 0 with *out / *n as
 * request_files_parse, -EINVAL for a blob that is not one, or -ENOMEM. */
int request_files_unpack(const unsigned char *blob, size_t len, const char *prog, task_file **out,
                         int *n);

/* Writes the n files under the directory open at dirfd, files mode 0600
 * and directories 0700, owned by the caller (the sandbox gives the task's
 * user its copy, as it does the program). Never follows a symbolic link
 * nor reuses what is there: each file is created with O_EXCL|O_NOFOLLOW,
 * each directory opened with O_NOFOLLOW. Returns 0 or -errno (EEXIST when
 * a name is taken). */
int request_files_write(int dirfd, const task_file *f, int n);

#endif
