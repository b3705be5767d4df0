/* Unit tests for batch_proto: requests of both protocols and what each
 * answer means for the client. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "batch_proto.h"

static batch_reply rep;

static enum batch_verdict submit(const batch_proto *p, long status, const char *body)
{
    assert_int_equal(batch_proto_submit_reply(p, status, body, strlen(body), &rep), 0);
    return rep.verdict;
}

static enum batch_verdict poll_(const batch_proto *p, long status, const char *body)
{
    assert_int_equal(batch_proto_poll_reply(p, status, body, strlen(body), &rep), 0);
    return rep.verdict;
}

static void calc_requests_and_answers(void **state)
{
    batch_proto p;
    assert_int_equal(batch_proto_init(&p, BATCH_API_CALC, "http://h:9005/", NULL, NULL, 0), 0);
    buf url = BUF_INIT, body = BUF_INIT;
    assert_int_equal(batch_proto_submit(&p, "1120", &url, &body), 0);
    assert_string_equal(url.data, "http://h:9005/");
    assert_string_equal(body.data, "{\"data\":1120}");
    assert_int_equal(batch_proto_poll(&p, "53b6-7521 x", &url), 0);
    assert_string_equal(url.data, "http://h:9005/?request_id=53b6-7521%20x");

    assert_int_equal(submit(&p, 200, "{\"request_id\": \"abc\"}"), BATCH_ACCEPTED);
    assert_string_equal(rep.text.data, "abc");
    assert_int_equal(submit(&p, 403, "{\"error\": \"busy\"}"), BATCH_REFUSED);
    assert_int_equal(submit(&p, 429, ""), BATCH_REFUSED);
    assert_int_equal(submit(&p, 503, "down"), BATCH_REFUSED);
    assert_int_equal(submit(&p, 503, "{\"error\": \"later\", \"permanent\": false}"),
                     BATCH_REFUSED);
    /* Refused for good: asking again will not help. */
    assert_int_equal(submit(&p, 503, "{\"error\": \"no sandbox\", \"permanent\": true}"),
                     BATCH_STOP);
    assert_string_equal(rep.text.data, "HTTP 503: no sandbox");
    assert_int_equal(submit(&p, 502, ""), BATCH_TRANSIENT);
    assert_int_equal(submit(&p, 400, "{\"error\": \"bad data\"}"), BATCH_REJECTED);
    assert_string_equal(rep.text.data, "HTTP 400: bad data");
    assert_int_equal(submit(&p, 404, "not here"), BATCH_FATAL);
    assert_int_equal(submit(&p, 200, "{}"), BATCH_FAILED);
    assert_int_equal(submit(&p, 500, "{\"error\": \"oops\"}"), BATCH_FAILED);

    /* Results keep the server's exact text. */
    assert_int_equal(poll_(&p, 200, "{\"result\": 12345678901234567890123}"), BATCH_RESULT);
    assert_string_equal(rep.text.data, "12345678901234567890123");
    assert_int_equal(poll_(&p, 200, "{\"result\": \"x y\"}"), BATCH_RESULT);
    assert_string_equal(rep.text.data, "x y");
    assert_int_equal(poll_(&p, 400, "{\"error\": \"not ready\"}"), BATCH_PENDING);
    assert_int_equal(poll_(&p, 400, "not ready"), BATCH_PENDING);
    assert_int_equal(poll_(&p, 400, "{\"error\": \"?\", \"status\": \"NOTEXIST\"}"), BATCH_LOST);
    assert_int_equal(poll_(&p, 404, ""), BATCH_LOST);
    assert_int_equal(poll_(&p, 500, "{\"error\": \"calculation failed\"}"), BATCH_FAILED);
    assert_string_equal(rep.text.data, "HTTP 500: calculation failed");
    assert_int_equal(poll_(&p, 429, ""), BATCH_REFUSED);
    buf_destroy(&url);
    buf_destroy(&body);
    batch_proto_destroy(&p);
}

static void tasksolver_requests_and_answers(void **state)
{
    batch_proto p;
    const unsigned char prog[] = "print(1)";
    assert_int_equal(
        batch_proto_init(&p, BATCH_API_TASKSOLVER, "http://h:1", "python", prog, sizeof prog - 1),
        0);
    buf url = BUF_INIT, body = BUF_INIT;
    assert_int_equal(batch_proto_submit(&p, "-5", &url, &body), 0);
    assert_string_equal(url.data, "http://h:1/create_task");
    assert_string_equal(body.data,
                        "{\"type\":\"python\",\"file\":\"cHJpbnQoMSk=\",\"args\":[\"-5\"]}");
    assert_int_equal(batch_proto_poll(&p, "id1", &url), 0);
    assert_string_equal(url.data, "http://h:1/get_status?id=id1&wait=30");

    assert_int_equal(submit(&p, 200, "{\"id\": \"id1\"}"), BATCH_ACCEPTED);
    assert_int_equal(poll_(&p, 200, "{\"status\": \"RUNNING\"}"), BATCH_PENDING);
    assert_int_equal(poll_(&p, 200,
                           "{\"status\": \"SUCCESS\", \"result\": {\"stdout\": "
                           "\" 42\\n\"}}"),
                     BATCH_RESULT);
    assert_string_equal(rep.text.data, "42");
    assert_int_equal(poll_(&p, 200, "{\"status\": \"ERROR\", \"error\": \"exited with code 1\"}"),
                     BATCH_FAILED);
    assert_string_equal(rep.text.data, "exited with code 1");
    assert_int_equal(poll_(&p, 404, "{\"status\": \"NOTEXIST\"}"), BATCH_LOST);
    buf_destroy(&url);
    buf_destroy(&body);
    batch_proto_destroy(&p);
}

static void bad_urls(void **state)
{
    batch_proto p;
    assert_int_equal(batch_proto_init(&p, BATCH_API_CALC, "https://h", NULL, NULL, 0), -EINVAL);
    assert_int_equal(batch_proto_init(&p, BATCH_API_CALC, "http://", NULL, NULL, 0), -EINVAL);
    assert_int_equal(batch_proto_init(&p, BATCH_API_CALC, "h:80", NULL, NULL, 0), -EINVAL);
}

static int teardown(void **state)
{
    buf_destroy(&rep.text);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calc_requests_and_answers),
        cmocka_unit_test(tasksolver_requests_and_answers),
        cmocka_unit_test(bad_urls),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
