/* batch_proto: the two server protocols the batch client speaks, as pure
 * functions from an input to a request and from an HTTP answer to what the
 * client must do next. No I/O here, so the rules can be unit tested.
 *
 * calc (the seed's server):  POST / {"data": N} -> {"request_id": ID};
 *     GET /?request_id=ID -> 200 {"result": R}, or 400 while not ready.
 * tasksolver:  POST /create_task {"type", "file", "args": ["N"]} -> {"id"};
 *     GET /get_status?id=ID&wait=S (long poll) -> status and stdout. */
#ifndef TS_BATCH_PROTO_H
#define TS_BATCH_PROTO_H

#include <stddef.h>

#include "buf.h"

enum batch_api { BATCH_API_CALC, BATCH_API_TASKSOLVER };

typedef struct batch_proto {
    enum batch_api api;
    char *base;        /* server URL without a trailing '/'; owned */
    char *body_prefix; /* tasksolver: create_task body up to the argument; owned */
    double long_poll;  /* tasksolver: wait=SECONDS of get_status */
} batch_proto;

/* Prepares p. For tasksolver, program/len is the program and type
 * "python" or "bin". Returns 0, -EINVAL (url is not http://...) or
 * -ENOMEM; on error nothing is allocated. */
int batch_proto_init(batch_proto *p, enum batch_api api, const char *url, const char *type,
                     const unsigned char *program, size_t len);

void batch_proto_destroy(batch_proto *p);

/* Fills url and body (reset first) for submitting the number `input`. */
int batch_proto_submit(const batch_proto *p, const char *input, buf *url, buf *body);

/* Fills url (reset first) for asking about the submission `id`. */
int batch_proto_poll(const batch_proto *p, const char *id, buf *url);

enum batch_verdict {
    BATCH_ACCEPTED,  /* submitted: reply.text holds the id */
    BATCH_REFUSED,   /* at capacity (403/429/503): back off, same request */
    BATCH_TRANSIENT, /* gateway trouble: back off, same request */
    BATCH_PENDING,   /* not ready: poll again */
    BATCH_RESULT,    /* done: reply.text holds the result */
    BATCH_LOST,      /* the server no longer knows the id: submit again */
    BATCH_FAILED,    /* this attempt failed (reply.text says why): retry, bounded */
    BATCH_REJECTED,  /* the server refuses this input for good (400) */
    BATCH_FATAL,     /* the server does not speak this protocol: stop */
    BATCH_STOP,      /* the server refuses every input for good (a 503 with
                        "permanent": true): stop, reply.text says why */
};

typedef struct batch_reply {
    enum batch_verdict verdict;
    buf text; /* id, result or reason, by verdict; caller destroys */
} batch_reply;

/* Interprets the answer (status, body) to a submission / a poll. r->text
 * is reset first. Returns 0 or -ENOMEM. */
int batch_proto_submit_reply(const batch_proto *p, long status, const char *body, size_t len,
                             batch_reply *r);
int batch_proto_poll_reply(const batch_proto *p, long status, const char *body, size_t len,
                           batch_reply *r);

#endif
