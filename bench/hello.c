/* bench_hello: the ceiling for the get_status benchmark. A civetweb server
 * started with the same options as tasksolver's (keep-alive, TCP_NODELAY,
 * timeouts, thread count) whose handler answers a small JSON document
 * with the same headers, written in one mg_write. The difference between
 * its request rate and tasksolver's GET /get_status is what the server's
 * own work costs: query parsing, the store lookup and the status JSON.
 *
 * It also answers POST /create_task the way bench_load expects, reading
 * the whole body first: PENDING, or SUCCESS with ?wait=, so that every GET
 * ends the "task". Driven by bench_load, it gives the HTTP floor of the
 * task benchmark: what the same exchanges cost with no task behind them.
 *
 *   bench_hello [--port PORT] [--threads N]
 *
 * Port 0 picks a free port; like tasksolver it prints
 * "listening on http://ADDR:PORT" on stderr, then serves until SIGTERM or
 * SIGINT. */
#include <civetweb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void answer(struct mg_connection *c, const char *body, size_t len)
{
    char out[512];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "\r\n%s",
                     len, body);
    mg_write(c, out, (size_t)n);
}

static int h_create(struct mg_connection *c, void *cbdata)
{
    (void)cbdata;
    static const char pending[] = "{\"id\":\"0\",\"status\":\"PENDING\"}\n";
    static const char success[] = "{\"id\":\"0\",\"status\":\"SUCCESS\"}\n";
    char buf[16384];
    while (mg_read(c, buf, sizeof buf) > 0)
        ;
    const char *q = mg_get_request_info(c)->query_string;
    if (q && strstr(q, "wait="))
        answer(c, success, sizeof success - 1);
    else
        answer(c, pending, sizeof pending - 1);
    return 200;
}

static int h_hello(struct mg_connection *c, void *cbdata)
{
    (void)cbdata;
    /* bench_load's long poll ends on this status. */
    static const char body[] = "{\"status\":\"SUCCESS\"}\n";
    answer(c, body, sizeof body - 1);
    return 200;
}

int main(int argc, char **argv)
{
    const char *port = "0", *threads = "64";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = argv[++i];
        else {
            fprintf(stderr, "usage: bench_hello [--port PORT] [--threads N]\n");
            return 2;
        }
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%s", port);
    /* Keep in step with start_http() in server/main.c. */
    const char *options[] = {
        "listening_ports",
        listen,
        "num_threads",
        threads,
        "enable_keep_alive",
        "yes",
        "tcp_nodelay",
        "1",
        "request_timeout_ms",
        "30000",
        "keep_alive_timeout_ms",
        "30000",
        "max_request_size",
        "16384",
        "access_control_allow_origin",
        "",
        "decode_url",
        "yes",
        NULL,
    };
    mg_init_library(0);
    char err[256] = "";
    struct mg_init_data init = {
        .callbacks = NULL, .user_data = NULL, .configuration_options = options};
    struct mg_error_data error = {.code = 0, .text = err, .text_buffer_size = sizeof err};
    struct mg_context *ctx = mg_start2(&init, &error);
    if (!ctx) {
        fprintf(stderr, "bench_hello: cannot listen on %s: %s\n", listen, err);
        return 1;
    }
    /* The first pattern that matches wins. */
    mg_set_request_handler(ctx, "/create_task$", h_create, NULL);
    mg_set_request_handler(ctx, "/", h_hello, NULL);
    struct mg_server_port ports[4];
    int n = mg_get_server_ports(ctx, 4, ports);
    fprintf(stderr, "bench_hello listening on http://127.0.0.1:%d with %s threads\n",
            n > 0 ? ports[0].port : atoi(port), threads);
    int sig;
    while (sigwait(&sigs, &sig) != 0)
        ;
    mg_stop(ctx);
    mg_exit_library();
    return 0;
}
