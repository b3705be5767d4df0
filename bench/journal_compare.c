/* journal_compare: the two ways to make tasks durable that the journal
 * could use, measured on the disk at hand with the journal's own record
 * pattern: per task one insert (id, ~100-byte program), one update (start)
 * and one update (result, ~100 bytes of output), committed in groups of B
 * records (B = how many requests one group commit serves).
 *
 *   sqlite full    SQLite, WAL, synchronous=FULL: one fsync per commit
 *   sqlite normal  SQLite, WAL, synchronous=NORMAL: WAL written, no fsync
 *   log fsync      append-only file, write() the group then fdatasync()
 *   log write      append-only file, write() only
 *
 * Prints records/s for each (batch size x method). Built as
 * bench_journal_compare and run by bench/journal_bench --compare:
 *   bench_journal_compare DIR [SECONDS_PER_CASE] */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "journal_compare: %s: %s\n", what, why);
    exit(1);
}

static unsigned char payload[100];

/* SQLite with the journal's statements; returns records/s. */
static double run_sqlite(const char *dir, int full, int batch, double secs)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/compare.db", dir);
    unlink(path);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die(path, sqlite3_errmsg(db));
    char sql[512];
    snprintf(sql, sizeof sql,
             "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
             "CREATE TABLE t(id BLOB NOT NULL UNIQUE, status TEXT, started INTEGER,"
             " finished INTEGER, file BLOB, out BLOB);",
             full ? "FULL" : "NORMAL");
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(path, sqlite3_errmsg(db));
    sqlite3_stmt *ins, *start, *fin;
    sqlite3_prepare_v2(db, "INSERT INTO t(id, status, file) VALUES(?1, 'WAIT', ?2)", -1, &ins,
                       NULL);
    sqlite3_prepare_v2(db, "UPDATE t SET status='RUNNING', started=?2 WHERE id=?1", -1, &start,
                       NULL);
    sqlite3_prepare_v2(db,
                       "UPDATE t SET status='SUCCESS', finished=?2, out=?3, file=NULL"
                       " WHERE id=?1",
                       -1, &fin, NULL);
    long records = 0;
    uint64_t next = 0;
    double t0 = now();
    while (now() - t0 < secs) {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int i = 0; i < batch; i++, records++) {
            /* Cycle insert, start, finish over tasks; ids as 16 bytes. */
            uint64_t task = records / 3, id[2] = {task * 0x9e3779b97f4a7c15ULL, task};
            sqlite3_stmt *st = records % 3 == 0 ? ins : records % 3 == 1 ? start : fin;
            sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
            if (st == ins)
                sqlite3_bind_blob(st, 2, payload, sizeof payload, SQLITE_STATIC);
            else
                sqlite3_bind_int64(st, 2, (sqlite3_int64)next++);
            if (st == fin)
                sqlite3_bind_blob(st, 3, payload, sizeof payload, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE)
                die(path, sqlite3_errmsg(db));
            sqlite3_reset(st);
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            die(path, sqlite3_errmsg(db));
    }
    double rate = records / (now() - t0);
    sqlite3_finalize(ins);
    sqlite3_finalize(start);
    sqlite3_finalize(fin);
    sqlite3_close(db);
    unlink(path);
    return rate;
}

/* Append-only log: length-prefixed records, one write() per group, then
 * fdatasync if asked. Returns records/s. */
static double run_log(const char *dir, int sync, int batch, double secs)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/compare.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        die(path, "cannot create");
    size_t rec = 4 + 16 + 1 + 8 + sizeof payload;
    unsigned char *buf = calloc((size_t)batch, rec);
    long records = 0;
    double t0 = now();
    while (now() - t0 < secs) {
        size_t len = 0;
        for (int i = 0; i < batch; i++, records++) {
            uint32_t n = (uint32_t)rec - 4;
            memcpy(buf + len, &n, 4);
            memcpy(buf + len + 4, &records, sizeof records);
            buf[len + 20] = (unsigned char)(records % 3);
            memcpy(buf + len + 29, payload, sizeof payload);
            len += rec;
        }
        if (write(fd, buf, len) != (ssize_t)len)
            die(path, "short write");
        if (sync && fdatasync(fd) < 0)
            die(path, "fdatasync");
    }
    double rate = records / (now() - t0);
    free(buf);
    close(fd);
    unlink(path);
    return rate;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: journal_compare DIR [SECONDS_PER_CASE]\n");
        return 2;
    }
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    memset(payload, 'x', sizeof payload);
    static const int batches[] = {1, 8, 64};
    printf("records/s (a task is 3 records), %.1f s per case, in %s\n", secs, argv[1]);
    printf("%8s %14s %14s %14s %14s\n", "batch", "sqlite full", "sqlite normal", "log fsync",
           "log write");
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        int n = batches[b];
        double sf = run_sqlite(argv[1], 1, n, secs);
        double sn = run_sqlite(argv[1], 0, n, secs);
        double lf = run_log(argv[1], 1, n, secs);
        double lw = run_log(argv[1], 0, n, secs);
        printf("%8d %14.0f %14.0f %14.0f %14.0f\n", n, sf, sn, lf, lw);
        fflush(stdout);
    }
    return 0;
}
