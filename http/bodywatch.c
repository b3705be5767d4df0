/* bodywatch: see bodywatch.h. */
#include "bodywatch.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"
#include "timefmt.h"

enum { WATCH_READING, WATCH_FIRING, WATCH_FIRED };

/* How often the thread looks at the deadlines while reads are in progress:
 * a late body ends at most this much after its deadline. */
#define WATCH_TICK_NS (100 * 1000 * 1000)

static struct {
    pthread_mutex_t lock; /* protects head, stop, idle, came, and every entry's
                             deadline_us and state */
    pthread_cond_t cond;  /* an entry came to an idle thread, one was fired, or
                             stop was set */
    bodywatch_entry *head;
    int stop;
    int idle;    /* the thread waits for an entry, with no tick */
    int came;    /* an entry came since the thread last looked */
    int started; /* thread to join; set and read by the starting thread only */
    pthread_t thread;
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* The first entry still reading whose deadline is past, or NULL. Called
 * with watch.lock held. */
static bodywatch_entry *first_late(int64_t now)
{
    for (bodywatch_entry *e = watch.head; e; e = e->next)
        if (e->state == WATCH_READING && e->deadline_us <= now)
            return e;
    return NULL;
}

static void *watch_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&watch.lock);
    while (!watch.stop) {
        /* Idle only after a whole tick without a read: under load the list
         * empties and fills between most requests, and waking the thread
         * for each first entry cost a futex wake and a switch per create
         * (perf, trivial tasks: this thread at 2.5 % of the server's CPU,
         * as much again in the wakers). Ticking while busy costs nothing
         * measurable. */
        if (!watch.head && !watch.came) {
            watch.idle = 1;
            pthread_cond_wait(&watch.cond, &watch.lock);
            watch.idle = 0;
            continue;
        }
        watch.came = 0;
        bodywatch_entry *e = watch.head ? first_late(time_mono_us()) : NULL;
        if (!e) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += WATCH_TICK_NS;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&watch.cond, &watch.lock, &ts);
            continue;
        }
        /* FIRING keeps the entry, and so its connection and socket, in
         * place while the socket is looked for without the lock: its
         * reader waits in bodywatch_leave. */
        e->state = WATCH_FIRING;
        pthread_mutex_unlock(&watch.lock);
        int fd = http_socket_fd(e->ri);
        if (fd >= 0)
            shutdown(fd, SHUT_RD);
        pthread_mutex_lock(&watch.lock);
        e->state = WATCH_FIRED;
        pthread_cond_broadcast(&watch.cond);
    }
    pthread_mutex_unlock(&watch.lock);
    return NULL;
}

int bodywatch_start(void)
{
    watch.stop = 0;
    int rc = pthread_create(&watch.thread, NULL, watch_main, NULL);
    if (rc)
        return -rc;
    watch.started = 1;
    return 0;
}

void bodywatch_stop(void)
{
    if (!watch.started)
        return;
    pthread_mutex_lock(&watch.lock);
    watch.stop = 1;
    pthread_cond_broadcast(&watch.cond);
    pthread_mutex_unlock(&watch.lock);
    pthread_join(watch.thread, NULL);
    watch.started = 0;
}

void bodywatch_enter(bodywatch_entry *e, const struct mg_request_info *ri, int64_t deadline_us)
{
    e->ri = ri;
    e->deadline_us = deadline_us;
    e->state = WATCH_READING;
    e->prev = NULL;
    pthread_mutex_lock(&watch.lock);
    e->next = watch.head;
    if (watch.head)
        watch.head->prev = e;
    watch.head = e;
    watch.came = 1;
    if (watch.idle) /* else it looks at the next tick */
        pthread_cond_broadcast(&watch.cond);
    pthread_mutex_unlock(&watch.lock);
}

int bodywatch_extend(bodywatch_entry *e, int64_t deadline_us)
{
    pthread_mutex_lock(&watch.lock);
    int fired = e->state != WATCH_READING;
    if (!fired)
        e->deadline_us = deadline_us;
    pthread_mutex_unlock(&watch.lock);
    return fired ? -ETIMEDOUT : 0;
}

int bodywatch_leave(bodywatch_entry *e)
{
    pthread_mutex_lock(&watch.lock);
    while (e->state == WATCH_FIRING)
        pthread_cond_wait(&watch.cond, &watch.lock);
    if (e->prev)
        e->prev->next = e->next;
    else
        watch.head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    int fired = e->state == WATCH_FIRED;
    pthread_mutex_unlock(&watch.lock);
    return fired ? -ETIMEDOUT : 0;
}
