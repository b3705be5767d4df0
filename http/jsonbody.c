/* jsonbody: see jsonbody.h. */
#include "jsonbody.h"

#include <cjson/cJSON.h>
#include <stdio.h>

#include "jsonscan.h"

cJSON *jsonbody_parse_object(const char *body, size_t len, char *err, size_t errsz)
{
    if (len == 0) {
        snprintf(err, errsz, "request body is empty; expected a JSON object");
        return NULL;
    }
    if (jsonscan_check_depth(body, len, JSONBODY_MAX_DEPTH) < 0) {
        snprintf(err, errsz, "request body nests deeper than %d levels", JSONBODY_MAX_DEPTH);
        return NULL;
    }
    const char *end = NULL;
    /* cJSON wants the NUL counted when asked to require it; instead parse
     * without that and check the tail ourselves. */
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t off = end && end >= body ? (size_t)(end - body) : 0;
        snprintf(err, errsz, "request body is not valid JSON (near byte %zu)", off);
        return NULL;
    }
    for (const char *p = end; p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            snprintf(err, errsz, "unexpected data after the JSON value at byte %zu",
                     (size_t)(p - body));
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errsz, "request body must be a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}
