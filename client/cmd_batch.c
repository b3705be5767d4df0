/* cmd_batch: `tasksolver-cli batch`, streaming a file of numbers through a
 * server that runs only a few calculations at once (the seed's task).
 * This file is the command line and the set-up; batch_run.c is the event
 * loop, batch_input.c the reader, batch_out.c the output and resume set,
 * batch_proto.c the two protocols. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch_run.h"
#include "commands.h"
#include "secret.h"

/* Largest --program accepted (the server's default body limit). */
#define BATCH_MAX_PROGRAM (48 << 20)

static void usage(FILE *f)
{
    fputs("usage: tasksolver-cli batch INPUT --url URL [-o OUTPUT] [OPTIONS]\n"
          "\n"
          "Sends every number of INPUT (one per line; '-' reads stdin) to a server that\n"
          "runs only a few calculations at once, keeping --concurrency of them in flight,\n"
          "and writes one line 'INPUT RESULT' per input as results arrive (in any order).\n"
          "\n"
          "  --url URL               the server, http://HOST:PORT\n"
          "  --api calc|tasksolver   calc (default): POST / {\"data\": N} and\n"
          "                          GET /?request_id=ID; tasksolver: create_task running\n"
          "                          --program with N as its argument, result = its stdout\n"
          "  --program FILE          tasksolver: the program run for each input\n"
          "  --type python|bin       tasksolver: how to run it [python for *.py, else bin]\n"
          "  --token-file FILE       send the first line of FILE as a bearer token (for a\n"
          "                          server started with --auth-token-file)\n"
          "  -o, --output FILE       where the lines go [stdout]\n"
          "  --format FORMAT         space, tsv, csv or jsonl [space]\n"
          "  --concurrency N         inputs in flight at once, never more [5]\n"
          "  --resume                skip inputs already in OUTPUT and append the rest\n"
          "  --retries N             new attempts after a failed calculation, a lost\n"
          "                          request or an attempt timeout, per input [3]\n"
          "  --attempt-timeout SEC   submit again after SEC without a result [300]\n"
          "  --give-up SEC           stop if the server gives no answer for SEC [300]\n"
          "  --poll-min SEC          shortest pause between polls of an input [0.005]\n"
          "  --poll-factor F         pause = F * time the input has waited [0.1]\n"
          "  --poll-max SEC          longest pause between polls [1]\n"
          "  --max-backoff SEC       longest pause after a refusal or connection error [2]\n"
          "  --stop-after N          stop if the first N inputs to finish all failed with\n"
          "                          the same error, writing none of them (0: never) [20]\n"
          "  --progress, --no-progress  progress line on stderr [if stderr is a terminal]\n"
          "\n"
          "Refusals (403/429/503) and connection errors are retried without limit;\n"
          "a 503 that the server marks permanent stops the run.\n"
          "Exit status: 0 if every input got a result; 1 otherwise (errors, malformed\n"
          "lines, a run stopped early); 2 for a usage error; 130 when interrupted.\n",
          f);
}

static void on_signal(int sig)
{
    (void)sig;
    batch_interrupted = 1;
}

/* Parses a number within [lo, hi]. Returns 0 or -1 after a message. */
static int num_arg(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "tasksolver-cli batch: %s: '%s' must be a number from %g to %g\n", opt, s,
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Same for a whole number. */
static int int_arg(const char *opt, const char *s, int lo, int hi, int *out)
{
    double v;
    if (num_arg(opt, s, lo, hi, &v) < 0)
        return -1;
    if (v != (int)v) {
        fprintf(stderr, "tasksolver-cli batch: %s: '%s' must be a whole number\n", opt, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Reads a whole file. Returns a malloc'ed buffer or NULL after a message. */
static unsigned char *read_program(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        fprintf(stderr, "tasksolver-cli batch: --program %s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf b = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= BATCH_MAX_PROGRAM)
        buf_append(&b, chunk, n);
    int bad = ferror(f) || buf_failed(&b) || b.len > BATCH_MAX_PROGRAM;
    fclose(f);
    if (bad) {
        fprintf(stderr, "tasksolver-cli batch: --program %s: cannot read it (or over %d MiB)\n",
                path, BATCH_MAX_PROGRAM >> 20);
        buf_destroy(&b);
        return NULL;
    }
    return (unsigned char *)buf_steal(&b, len);
}

/* Opens the output; with resume, loads what it holds and cuts a last line
 * left half-written by a killed run. Returns the stream or NULL. */
static FILE *open_output(const char *path, int resume, batch_done **done)
{
    if (!path)
        return stdout;
    FILE *f = fopen(path, resume ? "a+e" : "we");
    if (!f) {
        fprintf(stderr, "tasksolver-cli batch: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (!resume)
        return f;
    long long keep;
    long lines;
    rewind(f);
    int rc = batch_done_load(f, done, &keep, &lines);
    if (rc == 0 && ftruncate(fileno(f), (off_t)keep) < 0)
        rc = -errno;
    if (rc == 0 && fseek(f, 0, SEEK_END) < 0)
        rc = -errno;
    if (rc < 0) {
        fprintf(stderr, "tasksolver-cli batch: --resume %s: %s\n", path, strerror(-rc));
        batch_done_free(*done);
        *done = NULL;
        fclose(f);
        return NULL;
    }
    if (lines)
        fprintf(stderr, "batch: resuming: %ld lines already in %s\n", lines, path);
    return f;
}

enum {
    O_URL = 256,
    O_API,
    O_PROGRAM,
    O_TYPE,
    O_FORMAT,
    O_CONC,
    O_RESUME,
    O_RETRIES,
    O_ATTEMPT,
    O_GIVEUP,
    O_PMIN,
    O_PFACTOR,
    O_PMAX,
    O_BACKOFF,
    O_PROGRESS,
    O_NOPROGRESS,
    O_TOKEN,
    O_STOPAFTER
};

static const struct option long_opts[] = {
    {"url", required_argument, NULL, O_URL},
    {"api", required_argument, NULL, O_API},
    {"program", required_argument, NULL, O_PROGRAM},
    {"type", required_argument, NULL, O_TYPE},
    {"token-file", required_argument, NULL, O_TOKEN},
    {"output", required_argument, NULL, 'o'},
    {"format", required_argument, NULL, O_FORMAT},
    {"concurrency", required_argument, NULL, O_CONC},
    {"resume", no_argument, NULL, O_RESUME},
    {"retries", required_argument, NULL, O_RETRIES},
    {"attempt-timeout", required_argument, NULL, O_ATTEMPT},
    {"give-up", required_argument, NULL, O_GIVEUP},
    {"poll-min", required_argument, NULL, O_PMIN},
    {"poll-factor", required_argument, NULL, O_PFACTOR},
    {"poll-max", required_argument, NULL, O_PMAX},
    {"max-backoff", required_argument, NULL, O_BACKOFF},
    {"progress", no_argument, NULL, O_PROGRESS},
    {"no-progress", no_argument, NULL, O_NOPROGRESS},
    {"stop-after", required_argument, NULL, O_STOPAFTER},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct cli {
    const char *input, *output, *url, *program, *type, *token_file;
    enum batch_api api;
    int resume;
    batch_opts o;
};

/* Returns 0, 1 after --help, or 2 after a usage message. */
static int parse_cli(struct cli *c, int argc, char **argv)
{
    c->o = (batch_opts){.concurrency = 5,
                        .retries = 3,
                        .attempt_timeout = 300,
                        .give_up = 300,
                        .poll_min = 0.005,
                        .poll_factor = 0.1,
                        .poll_max = 1,
                        .max_backoff = 2,
                        .progress = isatty(STDERR_FILENO),
                        .stop_after = 20,
                        .format = BATCH_FMT_SPACE};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:h", long_opts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case 'h':
            usage(stdout);
            return 1;
        case 'o':
            c->output = optarg;
            break;
        case O_URL:
            c->url = optarg;
            break;
        case O_PROGRAM:
            c->program = optarg;
            break;
        case O_TOKEN:
            c->token_file = optarg;
            break;
        case O_RESUME:
            c->resume = 1;
            break;
        case O_PROGRESS:
            c->o.progress = 1;
            break;
        case O_NOPROGRESS:
            c->o.progress = 0;
            break;
        case O_API:
            if (strcmp(optarg, "calc") == 0)
                c->api = BATCH_API_CALC;
            else if (strcmp(optarg, "tasksolver") == 0)
                c->api = BATCH_API_TASKSOLVER;
            else
                bad = fprintf(stderr, "tasksolver-cli batch: --api is calc or tasksolver\n");
            break;
        case O_TYPE:
            c->type = optarg;
            if (strcmp(optarg, "python") != 0 && strcmp(optarg, "bin") != 0)
                bad = fprintf(stderr, "tasksolver-cli batch: --type is python or bin\n");
            break;
        case O_FORMAT:
            if (batch_format_parse(optarg, &c->o.format) < 0)
                bad = fprintf(stderr, "tasksolver-cli batch: --format is space, tsv, csv "
                                      "or jsonl\n");
            break;
        case O_CONC:
            bad = int_arg("--concurrency", optarg, 1, 4096, &c->o.concurrency) < 0;
            break;
        case O_RETRIES:
            bad = int_arg("--retries", optarg, 0, 1000, &c->o.retries) < 0;
            break;
        case O_ATTEMPT:
            bad = num_arg("--attempt-timeout", optarg, 0.001, 1e7, &c->o.attempt_timeout) < 0;
            break;
        case O_GIVEUP:
            bad = num_arg("--give-up", optarg, 0, 1e7, &c->o.give_up) < 0;
            break;
        case O_PMIN:
            bad = num_arg("--poll-min", optarg, 0, 60, &c->o.poll_min) < 0;
            break;
        case O_PFACTOR:
            bad = num_arg("--poll-factor", optarg, 0, 10, &c->o.poll_factor) < 0;
            break;
        case O_PMAX:
            bad = num_arg("--poll-max", optarg, 0, 600, &c->o.poll_max) < 0;
            break;
        case O_BACKOFF:
            bad = num_arg("--max-backoff", optarg, 0, 600, &c->o.max_backoff) < 0;
            break;
        case O_STOPAFTER:
            bad = int_arg("--stop-after", optarg, 0, 1000000, &c->o.stop_after) < 0;
            break;
        default:
            bad = 1;
        }
        if (bad)
            goto fail_usage;
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "tasksolver-cli batch: %s\n",
                optind < argc ? "one INPUT only" : "missing INPUT (a file, or - for stdin)");
        goto fail_usage;
    }
    c->input = argv[optind];
    if (!c->url) {
        fprintf(stderr, "tasksolver-cli batch: --url is required\n");
        goto fail_usage;
    }
    if (c->api == BATCH_API_TASKSOLVER && !c->program) {
        fprintf(stderr, "tasksolver-cli batch: --api tasksolver needs --program FILE\n");
        goto fail_usage;
    }
    if (c->resume && !c->output) {
        fprintf(stderr, "tasksolver-cli batch: --resume needs -o OUTPUT\n");
        goto fail_usage;
    }
    if (!c->type && c->program) {
        size_t n = strlen(c->program);
        c->type = n > 3 && strcmp(c->program + n - 3, ".py") == 0 ? "python" : "bin";
    }
    return 0;

fail_usage:
    usage(stderr);
    return 2;
}

int cmd_batch(int argc, char **argv)
{
    struct cli c = {0};
    int rc = parse_cli(&c, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;

    int status = 1;
    char *token = NULL;
    if (c.token_file && (rc = secret_read(c.token_file, &token, NULL)) < 0) {
        fprintf(stderr, "tasksolver-cli batch: %s: %s\n", c.token_file,
                rc == -ENODATA ? "no token on the first line" : strerror(-rc));
        return 1;
    }
    c.o.token = token;
    unsigned char *program = NULL;
    size_t plen = 0;
    if (c.program && !(program = read_program(c.program, &plen)))
        goto fail_program;
    batch_proto proto;
    rc = batch_proto_init(&proto, c.api, c.url, c.type, program, plen);
    free(program);
    if (rc < 0) {
        fprintf(stderr, "tasksolver-cli batch: --url %s: %s\n", c.url,
                rc == -EINVAL ? "expected http://HOST:PORT" : strerror(-rc));
        status = rc == -EINVAL ? 2 : 1;
        goto fail_program;
    }
    batch_input in;
    rc = batch_input_open(&in, c.input);
    if (rc < 0) {
        fprintf(stderr, "tasksolver-cli batch: %s: %s\n", c.input, strerror(-rc));
        goto fail_input;
    }
    batch_done *done = NULL;
    FILE *out = open_output(c.output, c.resume, &done);
    if (!out)
        goto fail_output;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tasksolver-cli batch: cannot initialise libcurl\n");
        goto fail_curl;
    }
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    batch_run run;
    if (batch_run_init(&run, &c.o, &proto, &in, strcmp(c.input, "-") ? c.input : "stdin", out,
                       done) < 0) {
        fprintf(stderr, "tasksolver-cli batch: out of memory\n");
        goto fail_run;
    }
    batch_run_loop(&run);
    if (run.fatal)
        fprintf(stderr, "tasksolver-cli batch: stopped: %s\n", run.fatal_msg);
    else if (batch_interrupted)
        fprintf(stderr, "tasksolver-cli batch: interrupted\n");
    batch_run_summary(&run, stderr);
    if (batch_interrupted)
        status = 130;
    else if (!run.fatal && run.st.errors == 0 && run.st.malformed == 0)
        status = 0;
    batch_run_destroy(&run);
fail_run:
    curl_global_cleanup();
fail_curl:
    if (out != stdout && fclose(out) != 0 && status == 0) {
        fprintf(stderr, "tasksolver-cli batch: %s: %s\n", c.output, strerror(errno));
        status = 1;
    }
    batch_done_free(done);
fail_output:
    batch_input_close(&in);
fail_input:
    batch_proto_destroy(&proto);
fail_program:
    secret_free(token);
    return status;
}
