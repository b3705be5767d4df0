/* jsonbody: the one parser of JSON request bodies from the network.
 *
 * Every route that takes a JSON body (tasks, calculations, cluster mode)
 * parses it here, so that the nesting bound applies to all of them. No
 * HTTP in it, so unit tests and fuzzers call it alone. */
#ifndef TS_JSONBODY_H
#define TS_JSONBODY_H

#include <stddef.h>

/* Longest error message produced here, and by the parsers built on it. */
#define JSONBODY_ERR_MAX 256

/* Deepest nesting of arrays and objects accepted in a JSON body. cJSON
 * recurses once per level on the connection thread, whose stack is 100 KiB
 * in Debian's civetweb: 811 levels overflowed it (measured; about 120
 * bytes a level), so 64 levels cost some 8 KiB. No documented body nests
 * deeper than 2. */
#define JSONBODY_MAX_DEPTH 64

struct cJSON;

/* Parses a JSON document that must be an object; the whole body must be
 * one JSON value with only whitespace after it, nested at most
 * JSONBODY_MAX_DEPTH deep (checked before cJSON sees it). Returns the
 * cJSON tree (caller cJSON_Delete's it) or NULL with err set (NUL-ended,
 * cut to errsz). */
struct cJSON *jsonbody_parse_object(const char *body, size_t len, char *err, size_t errsz);

#endif
