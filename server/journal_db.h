/* journal_db: what journal.c and journal_load.c share (private to the
 * journal module): the database layout and the journal's state. */
#ifndef TS_JOURNAL_DB_H
#define TS_JOURNAL_DB_H

#include <sqlite3.h>
#include <stdatomic.h>

#include "groupcommit.h"

#include "journal.h"

#define JOURNAL_FILE "tasks.db"
#define JOURNAL_APP_ID 0x54534a4c /* "TSJL": tells our files from other SQLite files */
#define JOURNAL_VERSION 5
#define JOURNAL_WAL_LIMIT (32 << 20) /* WAL bytes kept after a checkpoint */

/* What a finished task's result holds beyond format 4 (NULL in an
 * unfinished row): peak memory in bytes (NULL: unknown), the name of the
 * limit that ended it, and the compile step (compiled 1: the compile_*
 * fields are valid; compile_exit NULL: the compiler did not exit). */
#define JOURNAL_RESULT_COLUMNS                                                                     \
    " mem_peak INTEGER, limit_hit TEXT, compiled INTEGER, compile_out BLOB, compile_exit INTEGER"

/* One row per task. Small columns come first so that scanning them does
 * not read the blobs; a finished task's program, stdin, environment,
 * files and limits are dropped (NULL). */
#define JOURNAL_SCHEMA                                                                             \
    "BEGIN; CREATE TABLE tasks ("                                                                  \
    " id BLOB NOT NULL UNIQUE,"     /* 16 bytes */                                                 \
    " type TEXT NOT NULL,"          /* python, bin, calc, or a language's name */                  \
    " status TEXT NOT NULL,"        /* WAIT, RUNNING, SUCCESS, ERROR */                            \
    " created_us INTEGER NOT NULL," /* microseconds since the epoch */                             \
    " attempts INTEGER NOT NULL,"   /* times started */                                            \
    " started_us INTEGER, finished_us INTEGER,"                                                    \
    " stdout_total INTEGER, stdout_truncated INTEGER,"                                             \
    " stderr_total INTEGER, stderr_truncated INTEGER,"                                             \
    " exit_code INTEGER, signal INTEGER," /* NULL: did not exit / no signal */                     \
    " timed_out INTEGER, cpu_us INTEGER, error TEXT,"                                              \
    " args BLOB," /* NUL-terminated strings, one after the other */                                \
    " file BLOB, stdout BLOB, stderr BLOB,"                                                        \
    " stdin BLOB, env BLOB," /* env: NAME=VALUE strings as args */                                 \
    " tests BLOB,"           /* see JOURNAL_UPGRADE_2 */                                           \
    " files BLOB,"           /* request_files_pack */                                              \
    " cancelled INTEGER,"    /* 1: ended by POST /cancel_task */                                   \
    " limits TEXT,"          /* see JOURNAL_UPGRADE_3 */                                           \
        JOURNAL_RESULT_COLUMNS ");"                                                                \
    "PRAGMA application_id = 1414744652;" /* JOURNAL_APP_ID */                                     \
    "PRAGMA user_version = 5;"            /* JOURNAL_VERSION */                                    \
    "COMMIT;" /* all or nothing: a half-made file would not pass for ours */

/* Format 1 lacked stdin and env: its rows are tasks without them. */
#define JOURNAL_UPGRADE_1                                                                          \
    "BEGIN; ALTER TABLE tasks ADD COLUMN stdin BLOB;"                                              \
    "ALTER TABLE tasks ADD COLUMN env BLOB;"                                                       \
    "PRAGMA user_version = 2; COMMIT;"

/* Format 2 lacked tests: its rows are tasks without them. The column
 * holds a waiting task's tests as the JSON testset_write_cases writes,
 * and a finished one's rendered results (testset.h). */
#define JOURNAL_UPGRADE_2                                                                          \
    "BEGIN; ALTER TABLE tasks ADD COLUMN tests BLOB;"                                              \
    "PRAGMA user_version = 3; COMMIT;"

/* Format 3 lacked files, cancelled and limits: tasks without files, none
 * cancelled, on the server's limits. The limits column holds a waiting
 * task's own limits as the JSON request_limits_json writes (NULL: none
 * asked). */
#define JOURNAL_UPGRADE_3                                                                          \
    "BEGIN; ALTER TABLE tasks ADD COLUMN files BLOB;"                                              \
    "ALTER TABLE tasks ADD COLUMN cancelled INTEGER;"                                              \
    "ALTER TABLE tasks ADD COLUMN limits TEXT;"                                                    \
    "PRAGMA user_version = 4; COMMIT;"

/* Format 4 kept no peak memory, limit or compile step: its finished rows
 * read back without them, as they always did. */
#define JOURNAL_UPGRADE_4                                                                          \
    "BEGIN; ALTER TABLE tasks ADD COLUMN mem_peak INTEGER;"                                        \
    "ALTER TABLE tasks ADD COLUMN limit_hit TEXT;"                                                 \
    "ALTER TABLE tasks ADD COLUMN compiled INTEGER;"                                               \
    "ALTER TABLE tasks ADD COLUMN compile_out BLOB;"                                               \
    "ALTER TABLE tasks ADD COLUMN compile_exit INTEGER;"                                           \
    "PRAGMA user_version = 5; COMMIT;"

enum rec_kind { REC_ADD, REC_FORGET, REC_START, REC_FINISH, REC_KINDS };

struct rec;

struct journal {
    journal_config cfg; /* cfg.dir points at dir */
    char *dir;
    sqlite3 *db; /* used by restore, then by the writer thread alone */
    sqlite3_stmt *st[REC_KINDS];
    store *s;
    task **restored; /* unfinished tasks for journal_queue_restored, refs */
    long nrestored;
    /* The writer thread, from journal_start on (started set); its lock
     * is a leaf: nothing else is taken while it is held. */
    groupcommit gc;
    atomic_int started;
};

/* -errno for an SQLite result code. */
int journal_db_errno(int sqlite_rc);

/* Puts "journal DIR/tasks.db: SQLite's message" in err (if not NULL) and
 * returns journal_db_errno(sqlite_rc). */
int journal_db_fail(journal *j, int sqlite_rc, char *err, size_t errsz);

/* Runs SQL without results. Returns 0 or journal_db_fail's value. */
int journal_db_exec(journal *j, const char *sql, char *err, size_t errsz);

#endif
