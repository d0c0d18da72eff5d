#include "conns.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "ids.h"
#include "log.h"
#include "mem.h"

/* deadline_ms of an entry:
 *   > 0  a head is due by then (ej_mono_ms)
 *   0    a request is being served: no deadline
 *   -1   the sweeper closed it; nothing changes it any more */
#define DEADLINE_NONE   0
#define DEADLINE_CLOSED (-1)

struct gw_conn {
        struct gw_conn *prev;
        struct gw_conn *next;
        struct gw_conns *owner;
        MHD_socket fd;
        _Atomic long long deadline_ms;
};

struct gw_conns {
        pthread_mutex_t mu;
        pthread_cond_t wake;
        struct gw_conn *head;
        size_t count;
        long head_timeout_ms;
        bool stop;
        bool running;
        pthread_t thread;
        struct ej_counter *closed; /* may be NULL */
};

static void set_deadline(struct gw_conn *e, long long v)
{
        long long cur = atomic_load(&e->deadline_ms);

        while (cur != DEADLINE_CLOSED && !atomic_compare_exchange_weak(&e->deadline_ms, &cur, v))
                ;
}

static struct gw_conn *entry_of(struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

        return ci ? ci->socket_context : NULL;
}

void gw_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
        struct gw_conns *c = cls;
        struct gw_conn *e;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci =
                    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

                e = xcalloc(1, sizeof(*e));
                e->owner = c;
                e->fd = ci ? ci->connect_fd : MHD_INVALID_SOCKET;
                atomic_init(&e->deadline_ms, ej_mono_ms() + c->head_timeout_ms);
                pthread_mutex_lock(&c->mu);
                e->next = c->head;
                if (c->head)
                        c->head->prev = e;
                c->head = e;
                c->count++;
                pthread_mutex_unlock(&c->mu);
                *socket_context = e;
                return;
        }
        e = *socket_context;
        if (e == NULL)
                return;
        *socket_context = NULL;
        pthread_mutex_lock(&c->mu);
        if (e->prev)
                e->prev->next = e->next;
        else
                c->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        c->count--;
        pthread_mutex_unlock(&c->mu);
        free(e);
}

void gw_conns_head_done(struct MHD_Connection *conn)
{
        struct gw_conn *e = entry_of(conn);

        if (e)
                set_deadline(e, DEADLINE_NONE);
}

void gw_conns_rearm(struct gw_conns *c, struct MHD_Connection *conn)
{
        struct gw_conn *e = entry_of(conn);

        if (e && c)
                set_deadline(e, ej_mono_ms() + c->head_timeout_ms);
}

bool gw_conns_cut_off(struct MHD_Connection *conn)
{
        struct gw_conn *e = entry_of(conn);

        return e && atomic_load(&e->deadline_ms) == DEADLINE_CLOSED;
}

size_t gw_conns_count(struct gw_conns *c)
{
        size_t n;

        pthread_mutex_lock(&c->mu);
        n = c->count;
        pthread_mutex_unlock(&c->mu);
        return n;
}

/* The answer to a head that did not arrive in time. Nothing else is written on the connection
 * while its head is arriving, so this cannot interleave with an answer of libmicrohttpd's. What
 * the client sent is drained first: closing a socket with unread input resets the connection,
 * and the client's kernel would drop the 408 unread. */
static void close_late(struct gw_conn *e, const char *answer, size_t n)
{
        char sink[4096];

        if (e->fd == MHD_INVALID_SOCKET)
                return;
        while (recv(e->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
                ;
        (void)send(e->fd, answer, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)shutdown(e->fd, SHUT_RDWR);
}

static void *sweeper(void *arg)
{
        struct gw_conns *c = arg;
        long period = c->head_timeout_ms / 4;
        char body[160];
        char answer[320];
        int bn, an;

        if (period > 500)
                period = 500;
        if (period < 20)
                period = 20;
        bn = snprintf(body, sizeof(body),
                      "{\"error\":{\"code\":\"request_timeout\",\"message\":\"the request head did "
                      "not arrive within %ld ms\"}}",
                      c->head_timeout_ms);
        an = snprintf(answer, sizeof(answer),
                      "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: "
                      "application/json\r\nCache-Control: no-store\r\nContent-Length: %d\r\n\r\n%s",
                      bn, body);
        if (bn < 0 || (size_t)bn >= sizeof(body) || an < 0 || (size_t)an >= sizeof(answer))
                an = 0;
        pthread_mutex_lock(&c->mu);
        while (!c->stop) {
                struct timespec until;
                long long now = ej_mono_ms();
                unsigned closed = 0;

                for (struct gw_conn *e = c->head; e; e = e->next) {
                        long long d = atomic_load(&e->deadline_ms);

                        if (d > 0 && d <= now &&
                            atomic_compare_exchange_strong(&e->deadline_ms, &d, DEADLINE_CLOSED)) {
                                close_late(e, answer, (size_t)an);
                                closed++;
                        }
                }
                if (closed && c->closed)
                        ej_counter_add(c->closed, closed);
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += (period % 1000) * 1000000L;
                until.tv_sec += period / 1000 + until.tv_nsec / 1000000000L;
                until.tv_nsec %= 1000000000L;
                pthread_cond_timedwait(&c->wake, &c->mu, &until);
        }
        pthread_mutex_unlock(&c->mu);
        return NULL;
}

enum ej_status gw_conns_create(struct gw_conns **out, long head_timeout_ms,
                               struct ej_metrics *metrics, struct ej_err *err)
{
        struct gw_conns *c = xcalloc(1, sizeof(*c));

        *out = NULL;
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->wake, NULL);
        c->head_timeout_ms = head_timeout_ms;
        if (metrics)
                c->closed = ej_metrics_counter(
                    metrics, "gateway_head_timeouts_total",
                    "Connections closed because a request head did not arrive in time.", "");
        if (pthread_create(&c->thread, NULL, sweeper, c) != 0) {
                gw_conns_destroy(c);
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                  "cannot start the header deadline sweeper");
        }
        c->running = true;
        *out = c;
        return EJ_OK;
}

void gw_conns_destroy(struct gw_conns *c)
{
        if (c == NULL)
                return;
        if (c->running) {
                pthread_mutex_lock(&c->mu);
                c->stop = true;
                pthread_cond_signal(&c->wake);
                pthread_mutex_unlock(&c->mu);
                pthread_join(c->thread, NULL);
        }
        /* The daemon is stopped: every CLOSED notification has freed its entry. */
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->mu);
        free(c);
}

unsigned gw_conns_limit(unsigned configured)
{
        struct rlimit rl;
        rlim_t n, reserve;

        if (configured)
                return configured;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
                return 1000;
        if (rl.rlim_cur < rl.rlim_max) {
                struct rlimit up = {rl.rlim_max, rl.rlim_max};

                if (rl.rlim_max == RLIM_INFINITY || setrlimit(RLIMIT_NOFILE, &up) != 0)
                        up.rlim_cur = rl.rlim_cur;
                rl.rlim_cur = up.rlim_cur;
        }
        n = rl.rlim_cur;
        if (n == RLIM_INFINITY || n > 1000000)
                n = 1000000;
        reserve = n / 10 < 64 ? 64 : n / 10;
        if (n <= reserve + 16)
                return 16;
        return (unsigned)(n - reserve);
}
