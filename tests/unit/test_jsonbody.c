/* Unit tests for jsonbody: what the one parser of JSON request bodies
 * takes (an object, whitespace after it) and refuses, with its messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "jsonbody.h"

/* Parses text; returns NULL and leaves the message in err, or the tree. */
static cJSON *parse(const char *text, char *err)
{
    err[0] = '\0';
    return jsonbody_parse_object(text, strlen(text), err, JSONBODY_ERR_MAX);
}

static void takes_an_object_with_trailing_whitespace(void **state)
{
    char err[JSONBODY_ERR_MAX];
    cJSON *root = parse("{\"a\": [1, {\"b\": 2}]} \r\n\t", err);
    assert_non_null(root);
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "a")));
    cJSON_Delete(root);
}

static void refuses_what_is_not_one_object(void **state)
{
    char err[JSONBODY_ERR_MAX];
    assert_null(parse("", err));
    assert_non_null(strstr(err, "empty"));
    assert_null(parse("[1, 2]", err));
    assert_non_null(strstr(err, "must be a JSON object"));
    assert_null(parse("{\"a\": 1} {}", err));
    assert_non_null(strstr(err, "after the JSON value at byte 9"));
    assert_null(parse("{\"a\": ", err));
    assert_non_null(strstr(err, "not valid JSON"));
}

/* "[[[...]]]" n deep inside an object. */
static char *nested(int n)
{
    char *s = malloc((size_t)n * 2 + 16);
    assert_non_null(s);
    strcpy(s, "{\"a\":");
    size_t at = strlen(s);
    for (int i = 0; i < n; i++)
        s[at++] = '[';
    for (int i = 0; i < n; i++)
        s[at++] = ']';
    strcpy(s + at, "}");
    return s;
}

static void bounds_the_nesting_before_cjson(void **state)
{
    char err[JSONBODY_ERR_MAX];
    char *ok = nested(JSONBODY_MAX_DEPTH - 1), *deep = nested(JSONBODY_MAX_DEPTH);
    cJSON *root = parse(ok, err);
    assert_non_null(root);
    cJSON_Delete(root);
    assert_null(parse(deep, err));
    assert_non_null(strstr(err, "nests deeper than 64 levels"));
    free(ok);
    free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(takes_an_object_with_trailing_whitespace),
        cmocka_unit_test(refuses_what_is_not_one_object),
        cmocka_unit_test(bounds_the_nesting_before_cjson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
