/* Unit tests for the shared store's conversions (pgconn) and its schema
 * version check (pgschema): no database needed. With TS_TEST_PG_URL set
 * (test_pg.py runs this binary so, against its private PostgreSQL), the
 * prepared statements and batches too; skipped otherwise. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgconn.h"
#include "pgschema.h"
#include "task.h"

static void unhex_decodes(void **state)
{
    (void)state;
    unsigned char *b;
    size_t n;
    assert_int_equal(pgconn_unhex("\\x00ff41", 8, &b, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(b[0], 0);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(b[2], 'A');
    assert_int_equal(b[3], '\0');
    free(b);
    assert_int_equal(pgconn_unhex("\\x", 2, &b, &n), 0);
    assert_non_null(b); /* an empty program is still a program */
    assert_int_equal(n, 0);
    free(b);
    assert_int_equal(pgconn_unhex("\\x0", 3, &b, &n), -EINVAL);
    assert_int_equal(pgconn_unhex("\\xzz", 4, &b, &n), -EINVAL);
    assert_int_equal(pgconn_unhex("0041", 4, &b, &n), -EINVAL);
}

static void strings_round_trip(void **state)
{
    (void)state;
    char *v[] = {"a", "", "NAME=value with spaces"};
    char *blob;
    size_t len;
    assert_int_equal(pgconn_pack_strings(v, 3, &blob, &len), 0);
    assert_int_equal(len, 2 + 1 + 23);
    char **out;
    int n;
    assert_int_equal(pgconn_unpack_strings((unsigned char *)blob, len, &out, &n), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(out[i], v[i]);
    assert_null(out[3]);
    task_args_free(out);
    free(blob);
    assert_int_equal(pgconn_pack_strings(v, 0, &blob, &len), 0);
    assert_null(blob);
    assert_int_equal(pgconn_unpack_strings(NULL, 0, &out, &n), 0);
    assert_null(out);
    assert_int_equal(n, 0);
    assert_int_equal(pgconn_unpack_strings((const unsigned char *)"ab", 2, &out, &n), -EINVAL);
}

static int seen;
static char last[37];

static void count_id(void *arg, const char *id)
{
    (void)arg;
    seen++;
    strcpy(last, id);
}

static void ids_from_payload(void **state)
{
    (void)state;
    seen = 0;
    const char *list = "c5d626ab-a157-4e3a-a79e-36f076107dac,not-an-id,,"
                       "b1246a21-4bcb-4aa6-8ca2-6ad0c3b5a473";
    assert_int_equal(pgconn_each_id(list, count_id, NULL), 2);
    assert_int_equal(seen, 2);
    assert_string_equal(last, "b1246a21-4bcb-4aa6-8ca2-6ad0c3b5a473");
    assert_int_equal(pgconn_each_id("", count_id, NULL), 0);
    assert_int_equal(pgconn_each_id("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", count_id, NULL), 0);
}

static void schema_versions(void **state)
{
    (void)state;
    char err[200] = "";
    assert_int_equal(pgschema_check(0, PGSCHEMA_VERSION, err, sizeof err), 0);
    assert_int_equal(pgschema_check(PGSCHEMA_VERSION, PGSCHEMA_VERSION, err, sizeof err), 0);
    assert_int_equal(pgschema_check(PGSCHEMA_VERSION + 1, PGSCHEMA_VERSION, err, sizeof err),
                     -EPROTO);
    assert_non_null(strstr(err, "newer than this tasksolver knows"));
}

/* A connection to TS_TEST_PG_URL, or NULL: the test is skipped. */
static PGconn *db(void)
{
    const char *url = getenv("TS_TEST_PG_URL");
    if (!url)
        return NULL;
    PGconn *c = pgconn_open(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

/* The answer of SELECT $1::int + 1 for 41 on c: 42 unless it failed. */
static int plus_one(PGconn *c)
{
    const char *v[] = {"41"};
    PGresult *r = NULL;
    if (pgconn_exec(c, &r, "SELECT $1::int + 1", 1, v, NULL, NULL) < 0)
        return -1;
    int n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

static void prepared_survive_discard_and_reset(void **state)
{
    (void)state;
    PGconn *c = db();
    if (!c)
        skip();
    assert_int_equal(plus_one(c), 42);
    assert_int_equal(plus_one(c), 42); /* prepared now */
    /* Dropped from the session behind the cache's back: prepared again. */
    assert_int_equal(pgconn_exec(c, NULL, "DISCARD ALL", 0, NULL, NULL, NULL), 0);
    assert_int_equal(plus_one(c), 42);
    assert_int_equal(plus_one(c), 42);
    /* A new session: the reset event forgot what the old one had. */
    PQreset(c);
    assert_int_equal(plus_one(c), 42);
    /* A bad statement fails as it would unprepared, and nothing stays. */
    assert_int_equal(pgconn_exec(c, NULL, "SELECT no_such_column", 0, NULL, NULL, NULL), -EIO);
    assert_int_equal(plus_one(c), 42);
    PQfinish(c);
}

static void batch_commits_or_rolls_back(void **state)
{
    (void)state;
    PGconn *c = db();
    if (!c)
        skip();
    const char *v[] = {"41"};
    PGresult *r = NULL;
    pgconn_query good[] = {{"BEGIN", 0, NULL, NULL, NULL, NULL},
                           {"SELECT $1::int + 1", 1, v, NULL, NULL, &r},
                           {"COMMIT", 0, NULL, NULL, NULL, NULL}};
    assert_int_equal(pgconn_exec_batch(c, good, 3), 0);
    assert_string_equal(PQgetvalue(r, 0, 0), "42");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    /* The failed transaction is rolled back and gives no results. */
    pgconn_query bad[] = {{"BEGIN", 0, NULL, NULL, NULL, NULL},
                          {"SELECT $1::int + 1", 1, v, NULL, NULL, &r},
                          {"SELECT 1 / 0", 0, NULL, NULL, NULL, NULL},
                          {"COMMIT", 0, NULL, NULL, NULL, NULL}};
    assert_int_equal(pgconn_exec_batch(c, bad, 4), -EIO);
    assert_null(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    assert_int_equal(plus_one(c), 42);
    pgconn_query many[9];
    for (int i = 0; i < 9; i++)
        many[i] = (pgconn_query){"SELECT 1", 0, NULL, NULL, NULL, NULL};
    assert_int_equal(pgconn_exec_batch(c, many, 9), -EINVAL);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unhex_decodes),
        cmocka_unit_test(strings_round_trip),
        cmocka_unit_test(ids_from_payload),
        cmocka_unit_test(schema_versions),
        cmocka_unit_test(prepared_survive_discard_and_reset),
        cmocka_unit_test(batch_commits_or_rolls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
