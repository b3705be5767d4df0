/* batch_run: the batch client's event loop.
 *
 * A fixed number of slots, each moving one input at a time through
 * submit -> poll until done -> write, all on one libcurl multi handle in
 * one thread. A slot takes the next input only when it is free, so at most
 * `concurrency` inputs are in flight (submitted and without a final
 * result) and the input is read no faster than results come back.
 *
 * Retry rules: a refusal (403/429/503) or a connection error is not the
 * input's fault: the same request is sent again after an exponential
 * backoff with jitter, without limit, unless the server gives no answer
 * at all for give_up seconds (then the run stops and --resume continues
 * it later). A failed calculation, a lost request id (server restarted)
 * or an attempt over attempt_timeout submits the input again, up to
 * `retries` times; then the input is written as an error.
 *
 * A server that fails every calculation the same way (a program it cannot
 * run) would get the whole input written as identical errors: while no
 * input has had a result, error lines are held back, and when the first
 * stop_after finished inputs all failed with the same error the run stops
 * without writing them, so that --resume retries them once the server is
 * fixed. A result or a different error writes what was held and ends the
 * watch. A 503 with "permanent": true stops the run at once. */
#ifndef TS_BATCH_RUN_H
#define TS_BATCH_RUN_H

#include <curl/curl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "batch_input.h"
#include "batch_out.h"
#include "batch_proto.h"
#include "buf.h"
#include "httpc.h"

typedef struct batch_opts {
    int concurrency;
    int retries;
    double attempt_timeout; /* seconds from submission to result */
    double give_up;         /* seconds without any answer from the server */
    double poll_min;        /* seconds: shortest pause between polls */
    double poll_factor;     /* pause = elapsed time of the attempt * factor */
    double poll_max;        /* seconds: longest pause between polls */
    double max_backoff;     /* seconds */
    int progress;           /* show a progress line on stderr */
    int stop_after;         /* stop when the first this many finished inputs all
                               failed with the same error (0: never) */
    enum batch_format format;
    const char *token; /* bearer token sent with every request, or NULL
                          (borrowed: must outlive the batch_run) */
} batch_opts;

typedef struct batch_stats {
    long long inputs;    /* numbers read and not skipped */
    long long skipped;   /* already in the output (--resume) */
    long long malformed; /* lines that are not numbers */
    long long results, errors;
    long long retries;    /* submissions again after a failed attempt */
    long long refused[3]; /* 403, 429, 503 answers */
    long long conn_errors;
    long long submits, polls;
} batch_stats;

enum slot_state { SLOT_IDLE, SLOT_DELAY, SLOT_ACTIVE };
enum slot_step { STEP_SUBMIT, STEP_POLL };

typedef struct batch_slot {
    CURL *easy;
    enum slot_state state;
    int in_multi; /* added to the multi handle */
    enum slot_step step;
    char *input; /* owned; NULL when idle */
    long lineno;
    char id[256];
    int failures;        /* failed attempts of this input */
    int backoff_n;       /* consecutive refusals / connection errors */
    int64_t due_us;      /* SLOT_DELAY: when to send */
    int64_t accepted_us; /* when the current attempt was accepted */
    int64_t sent_us;     /* when the current request went out */
    buf url, body, resp;
    httpc_sink sink; /* resp, capped at BATCH_MAX_RESPONSE */
    char errbuf[CURL_ERROR_SIZE];
} batch_slot;

typedef struct batch_run {
    batch_opts o;
    const batch_proto *proto;
    batch_input *in;
    const char *input_name;
    FILE *out;
    batch_done *done; /* --resume set or NULL */
    CURLM *multi;
    struct curl_slist *headers;
    batch_slot *slots;
    int in_flight;
    int input_over;
    batch_stats st;
    int64_t start_us, last_answer_us, last_progress_us;
    int64_t recent[64]; /* the last observed attempt durations (a ring) */
    int nrecent;        /* entries filled, up to 64 */
    int irecent;        /* where the next one goes */
    int progress_shown;
    char last_conn_error[CURL_ERROR_SIZE]; /* for the summary */
    int fatal;                             /* stop: fatal_msg says why */
    char fatal_msg[1024];
    buf line;
    int watching;   /* no result and no second kind of error yet */
    buf held;       /* the error lines held back meanwhile */
    int nheld;      /* inputs in held */
    char *held_why; /* their error; owned */
} batch_run;

/* Set by the SIGINT/SIGTERM handler: the loop stops soon after. */
extern volatile sig_atomic_t batch_interrupted;

/* Prepares r (slots, curl handles); the pointers are borrowed for the
 * run. Returns 0 or -ENOMEM (then nothing needs destroying). */
int batch_run_init(batch_run *r, const batch_opts *o, const batch_proto *p, batch_input *in,
                   const char *input_name, FILE *out, batch_done *done);

/* Runs until the input is exhausted and every input has its line, the
 * run fails (r->fatal) or batch_interrupted is set. Returns 0 if it ran
 * to the end, -1 otherwise. */
int batch_run_loop(batch_run *r);

/* Prints the progress line now (r->o.progress) / the final summary. */
void batch_run_progress(batch_run *r, int64_t now);
void batch_run_summary(batch_run *r, FILE *f);

void batch_run_destroy(batch_run *r);

#endif
