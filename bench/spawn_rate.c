/* bench_spawn_rate: the baseline for the task throughput benchmark. P
 * threads of one process each posix_spawn a program and wait for it, over
 * and over, for a given time; prints the runs per second. This is what the
 * server's workers do at the very least for each task, without HTTP, task
 * directories or output capture.
 *
 *   bench_spawn_rate [-P THREADS] [-d SECONDS] PROGRAM
 *
 * Prints one line: "spawn_rate runs=N seconds=S per_s=R self_us=A child_us=B",
 * where A and B are the CPU time (user + system) per run of this process
 * and of the children. */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *prog;
static double stop_at;
static atomic_long runs;
static atomic_int failed;
static pthread_barrier_t start;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(const struct timeval *u, const struct timeval *s)
{
    return (double)(u->tv_sec + s->tv_sec) + (u->tv_usec + s->tv_usec) / 1e6;
}

static void *spawner(void *arg)
{
    char *argv[] = {(char *)prog, NULL};
    pthread_barrier_wait(&start);
    while (now_s() < stop_at) {
        pid_t pid;
        int rc = posix_spawn(&pid, prog, NULL, NULL, argv, environ);
        if (rc) {
            fprintf(stderr, "bench_spawn_rate: %s: %s\n", prog, strerror(rc));
            atomic_store(&failed, 1);
            break;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "bench_spawn_rate: %s did not exit 0\n", prog);
            atomic_store(&failed, 1);
            break;
        }
        atomic_fetch_add(&runs, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = 1;
    double seconds = 5;
    int opt;
    while ((opt = getopt(argc, argv, "P:d:")) != -1) {
        if (opt == 'P')
            threads = atoi(optarg);
        else if (opt == 'd')
            seconds = atof(optarg);
        else
            goto usage;
    }
    if (optind != argc - 1 || threads < 1 || threads > 1024 || !(seconds > 0))
        goto usage;
    prog = argv[optind];

    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (!tids)
        return 1;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&tids[i], NULL, spawner, NULL);
        if (rc) {
            fprintf(stderr, "bench_spawn_rate: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    double t0 = now_s();
    stop_at = t0 + seconds;
    pthread_barrier_wait(&start);
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    double el = now_s() - t0;
    free(tids);
    if (atomic_load(&failed))
        return 1;
    long n = atomic_load(&runs);
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    printf("spawn_rate runs=%ld seconds=%.3f per_s=%.1f self_us=%.1f child_us=%.1f\n", n, el,
           n / el, cpu_s(&self.ru_utime, &self.ru_stime) * 1e6 / (double)(n ? n : 1),
           cpu_s(&kids.ru_utime, &kids.ru_stime) * 1e6 / (double)(n ? n : 1));
    return 0;

usage:
    fprintf(stderr, "usage: bench_spawn_rate [-P THREADS] [-d SECONDS] PROGRAM\n");
    return 2;
}
