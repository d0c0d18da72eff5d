/*
 * upstream.c: asynchronous NATS requests for suspended HTTP connections.
 *
 * One wildcard subscription on "<inbox>.*" receives every reply; request number `seq` uses the
 * reply subject "<inbox>.<seq>". The pending table (a mutex-protected hash on seq, with the
 * links inside struct gw_req, so sending allocates nothing here) maps a reply back to its
 * request. Whoever unlinks a request from the table (reply callback, sweeper, failed publish)
 * owns its completion and calls req->done exactly once. The sweeper thread wakes every
 * 10 ms, answers requests past their deadline, and fails everything at once while the bus is
 * disconnected.
 *
 * Honest answers: a request that never left (the bus was down before the publish, the publish
 * failed, or NATS answered "no responders") fails with EJ_ERR_UNAVAILABLE: it was not carried
 * out and is safe to retry. A request that left and got no answer (its deadline passed, or the
 * bus went down while it was out) fails with EJ_ERR_OUTCOME_UNKNOWN: the service may have
 * carried it out, so a write is retried with the same Idempotency-Key. Every request carries
 * its deadline (Ej-Deadline), so a service does not start or commit it after the gateway gave up.
 */
#include "upstream.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "log.h"
#include "routes.h"
#include "rpc.h"

#define PENDING_BUCKETS 1024u /* power of two */
#define SWEEP_EVERY_MS  10
#define PING_EVERY_MS   1000 /* each service is pinged this often */
#define PING_FRESH_MS   2500 /* a pong older than this no longer counts */
#define PING_MAX        16   /* services the gateway routes to */
#define LOST_AFTER_SEND                                                                            \
        "the message bus was lost after the request was sent; it may or may not have been "        \
        "carried out (retry a write with the same Idempotency-Key)"

struct gw_upstream {
        struct gw *gw;
        natsConnection *nc;
        natsSubscription *replies;
        char prefix[96];
        pthread_mutex_t mu;
        struct gw_req *buckets[PENDING_BUCKETS];
        size_t count;
        atomic_uint_fast64_t next_seq;
        pthread_t sweeper;
        bool sweeper_started;
        atomic_bool stop;
        /* Readiness: the services of the route table, each pinged on "ej.<svc>._ping" with
         * the reply subject "<prefix>.p<index>"; last_pong is ej_mono_ms of the last answer
         * that came from a replica (not NATS's "no responders"). */
        char services[PING_MAX][EJ_RPC_NAME_MAX];
        size_t n_services;
        atomic_llong last_pong[PING_MAX];
        long long next_ping; /* the sweeper's own */
};

static void table_insert(struct gw_upstream *up, struct gw_req *req)
{
        struct gw_req **head = &up->buckets[req->seq & (PENDING_BUCKETS - 1)];

        req->pending_next = *head;
        *head = req;
        up->count++;
}

/* Unlinks and returns the request numbered `seq`, or NULL when nobody waits for it. */
static struct gw_req *table_remove(struct gw_upstream *up, uint64_t seq)
{
        struct gw_req **link = &up->buckets[seq & (PENDING_BUCKETS - 1)];

        for (; *link; link = &(*link)->pending_next) {
                struct gw_req *req = *link;

                if (req->seq == seq) {
                        *link = req->pending_next;
                        req->pending_next = NULL;
                        up->count--;
                        return req;
                }
        }
        return NULL;
}

static void complete(struct gw_req *req, enum ej_status st, const char *msg)
{
        req->outcome = st;
        ej_err_set(&req->outcome_err, st, NULL, "%s", msg);
        req->done(req);
}

struct gw_caller gw_req_caller(const struct gw_req *req)
{
        return (struct gw_caller){.rid = req->rid,
                                  .user_id = req->user_id,
                                  .roles = req->roles,
                                  .client_addr = req->client_addr,
                                  .idem_key = req->idem_key};
}

natsStatus gw_caller_headers(natsMsg *msg, const struct gw_caller *c)
{
        natsStatus s = natsMsgHeader_Set(msg, EJ_HDR_REQUEST_ID, c->rid);

        if (s == NATS_OK && c->user_id)
                s = natsMsgHeader_Set(msg, EJ_HDR_USER_ID, c->user_id);
        /* An empty header value does not survive nats.c's header parser: absent means "". */
        if (s == NATS_OK && c->user_id && c->roles && c->roles[0])
                s = natsMsgHeader_Set(msg, EJ_HDR_ROLES, c->roles);
        if (s == NATS_OK && c->client_addr && c->client_addr[0])
                s = natsMsgHeader_Set(msg, EJ_HDR_CLIENT_ADDR, c->client_addr);
        if (s == NATS_OK && c->idem_key && c->idem_key[0])
                s = natsMsgHeader_Set(msg, EJ_HDR_IDEMPOTENCY_KEY, c->idem_key);
        return s;
}

/* "users" from "ej.users.me", into buf. */
static const char *service_of(const char *subject, char *buf, size_t size)
{
        const char *a = subject ? strchr(subject, '.') : NULL;
        const char *b = a ? strchr(a + 1, '.') : NULL;

        if (a == NULL || b == NULL)
                snprintf(buf, size, "%s", "requested");
        else
                snprintf(buf, size, "%.*s", (int)(b - a - 1), a + 1);
        return buf;
}

enum ej_status gw_upstream_status(const struct gw_req *req, struct ej_err *err)
{
        char svc[64];

        service_of(req->subject, svc, sizeof(svc));
        if (req->outcome == EJ_ERR_OUTCOME_UNKNOWN && req->outcome_err.msg[0] == '\0')
                return ej_err_set(err, EJ_ERR_OUTCOME_UNKNOWN, NULL,
                                  "the %s service did not answer in time; the request may or may "
                                  "not have been carried out (retry a write with the same "
                                  "Idempotency-Key)",
                                  svc);
        if (req->outcome != EJ_OK) {
                *err = req->outcome_err;
                return req->outcome;
        }
        if (natsMsg_IsNoResponders(req->reply))
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "the %s service is not available",
                                  svc);
        return ej_bus_reply_status(req->reply, err);
}

void gw_upstream_send(struct gw_upstream *up, struct gw_req *req, const char *subject,
                      const void *data, size_t n, int timeout_ms, void (*done)(struct gw_req *req))
{
        struct gw_caller caller = gw_req_caller(req);
        natsMsg *msg = NULL;
        natsStatus s;
        char reply[128];
        struct gw_req *mine;
        uint64_t seq;

        req->reply = NULL;
        req->outcome = EJ_OK;
        req->subject = subject;
        req->done = done;
        if (atomic_load(&up->gw->stopping) || atomic_load(&up->stop)) {
                complete(req, EJ_ERR_UNAVAILABLE, "the gateway is shutting down");
                return;
        }
        if (!ej_bus_connected(up->gw->bus)) {
                complete(req, EJ_ERR_UNAVAILABLE, "the message bus is not available");
                return;
        }
        seq = atomic_fetch_add(&up->next_seq, 1) + 1;
        req->seq = seq;
        snprintf(reply, sizeof(reply), "%s.%" PRIu64, up->prefix, seq);
        /* The key belongs to the route's own call, never to the session lookup before it. */
        if (req->route == NULL || req->route->subject == NULL ||
            strcmp(subject, req->route->subject) != 0)
                caller.idem_key = NULL;
        s = natsMsg_Create(&msg, subject, reply, data, (int)n);
        if (s == NATS_OK)
                s = gw_caller_headers(msg, &caller);
        if (s == NATS_OK)
                s = ej_bus_set_deadline(msg, timeout_ms);
        if (s != NATS_OK) {
                natsMsg_Destroy(msg);
                complete(req, EJ_ERR_INTERNAL, "could not build the bus message");
                return;
        }
        /* In the table before the publish: the reply may beat natsConnection_PublishMsg's
         * return. */
        req->deadline_ms = ej_mono_ms() + timeout_ms;
        pthread_mutex_lock(&up->mu);
        table_insert(up, req);
        pthread_mutex_unlock(&up->mu);

        /* From here `req` may be completed and freed by another thread: touch it again only
         * after taking it back from the table. */
        s = natsConnection_PublishMsg(up->nc, msg);
        natsMsg_Destroy(msg);
        if (s == NATS_OK)
                return;
        pthread_mutex_lock(&up->mu);
        mine = table_remove(up, seq);
        pthread_mutex_unlock(&up->mu);
        if (mine)
                complete(mine, EJ_ERR_UNAVAILABLE, "the message bus is not available");
}

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
        struct gw_upstream *up = closure;
        const char *subj = natsMsg_GetSubject(msg);
        const char *dot = subj ? strrchr(subj, '.') : NULL;
        struct gw_req *req = NULL;
        uint64_t seq;

        (void)nc;
        (void)sub;
        if (dot == NULL) {
                natsMsg_Destroy(msg);
                return;
        }
        if (dot[1] == 'p') {
                unsigned long i = strtoul(dot + 2, NULL, 10);

                if (i < up->n_services && !natsMsg_IsNoResponders(msg))
                        atomic_store(&up->last_pong[i], ej_mono_ms());
                natsMsg_Destroy(msg);
                return;
        }
        seq = strtoull(dot + 1, NULL, 10);
        pthread_mutex_lock(&up->mu);
        req = table_remove(up, seq);
        pthread_mutex_unlock(&up->mu);
        if (req == NULL) {
                /* Too late: the sweeper already answered 504. */
                natsMsg_Destroy(msg);
                return;
        }
        req->reply = msg;
        req->outcome = EJ_OK;
        req->done(req);
}

/* Unlinks every request matching (all, or past `now`) into a list. Caller holds mu. */
static struct gw_req *take_expired(struct gw_upstream *up, long long now, bool all)
{
        struct gw_req *out = NULL;

        if (up->count == 0)
                return NULL;
        for (size_t b = 0; b < PENDING_BUCKETS; b++) {
                struct gw_req **link = &up->buckets[b];

                while (*link) {
                        struct gw_req *req = *link;

                        if (all || req->deadline_ms <= now) {
                                *link = req->pending_next;
                                req->pending_next = out;
                                out = req;
                                up->count--;
                        } else {
                                link = &req->pending_next;
                        }
                }
        }
        return out;
}

static void complete_list(struct gw_req *list, enum ej_status st, const char *msg)
{
        while (list) {
                struct gw_req *next = list->pending_next;

                list->pending_next = NULL;
                complete(list, st, msg);
                list = next;
        }
}

/* Sends one ping to every service (from the sweeper thread). A ping that cannot go out is
 * simply not answered. */
static void ping_services(struct gw_upstream *up)
{
        char subject[EJ_RPC_SUBJECT_MAX];
        char reply[128];

        for (size_t i = 0; i < up->n_services; i++) {
                if (ej_rpc_subject(up->services[i], EJ_RPC_PING, subject, sizeof(subject), NULL) !=
                    EJ_OK)
                        continue;
                snprintf(reply, sizeof(reply), "%s.p%zu", up->prefix, i);
                (void)natsConnection_PublishRequest(up->nc, subject, reply, NULL, 0);
        }
}

bool gw_upstream_ready(struct gw_upstream *up, char *why, size_t size)
{
        long long now = ej_mono_ms();

        if (!ej_bus_connected(up->gw->bus)) {
                snprintf(why, size, "not connected to the message bus");
                return false;
        }
        for (size_t i = 0; i < up->n_services; i++) {
                if (now - atomic_load(&up->last_pong[i]) > PING_FRESH_MS) {
                        snprintf(why, size, "no replica of the %s service answers",
                                 up->services[i]);
                        return false;
                }
        }
        return true;
}

/* Collects the services the route table sends to, for the readiness pings; the development
 * mail catcher's routes are a tool's, not a service's, and do not count. */
static void collect_services(struct gw_upstream *up)
{
        char svc[EJ_RPC_NAME_MAX];

        for (size_t r = 0; r < gw_routes_count; r++) {
                size_t i;

                if (gw_routes[r].subject == NULL || gw_routes[r].dev_mail)
                        continue;
                service_of(gw_routes[r].subject, svc, sizeof(svc));
                for (i = 0; i < up->n_services; i++)
                        if (strcmp(up->services[i], svc) == 0)
                                break;
                if (i == up->n_services && up->n_services < PING_MAX) {
                        memcpy(up->services[i], svc, sizeof(svc));
                        atomic_init(&up->last_pong[i], -PING_FRESH_MS - 1);
                        up->n_services++;
                }
        }
}

static void *sweeper_main(void *arg)
{
        struct gw_upstream *up = arg;
        const struct timespec tick = {0, SWEEP_EVERY_MS * 1000000L};

        while (!atomic_load(&up->stop)) {
                struct gw_req *late;
                struct gw_req *cut = NULL;
                bool connected;

                nanosleep(&tick, NULL);
                connected = ej_bus_connected(up->gw->bus);
                if (connected && ej_mono_ms() >= up->next_ping) {
                        ping_services(up);
                        up->next_ping = ej_mono_ms() + PING_EVERY_MS;
                }
                pthread_mutex_lock(&up->mu);
                if (!connected)
                        cut = take_expired(up, 0, true);
                late = take_expired(up, ej_mono_ms(), false);
                pthread_mutex_unlock(&up->mu);
                complete_list(cut, EJ_ERR_OUTCOME_UNKNOWN, LOST_AFTER_SEND);
                complete_list(late, EJ_ERR_OUTCOME_UNKNOWN, "");
        }
        return NULL;
}

enum ej_status gw_upstream_create(struct gw_upstream **out, struct gw *gw, struct ej_err *err)
{
        struct gw_upstream *up = xcalloc(1, sizeof(*up));
        natsInbox *inbox = NULL;
        char subj[128];
        natsStatus s;
        enum ej_status st = EJ_OK;

        up->gw = gw;
        up->nc = ej_bus_conn(gw->bus);
        collect_services(up);
        pthread_mutex_init(&up->mu, NULL);
        atomic_init(&up->next_seq, 0);
        atomic_init(&up->stop, false);

        s = natsInbox_Create(&inbox);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot create a reply inbox: %s",
                                natsStatus_GetText(s));
                goto out_fail;
        }
        snprintf(up->prefix, sizeof(up->prefix), "%s", (const char *)inbox);
        natsInbox_Destroy(inbox);
        snprintf(subj, sizeof(subj), "%s.*", up->prefix);
        s = natsConnection_Subscribe(&up->replies, up->nc, subj, on_reply, up);
        if (s == NATS_OK)
                s = natsSubscription_SetPendingLimits(up->replies, -1, -1);
        if (s == NATS_OK)
                s = natsConnection_Flush(up->nc);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "cannot subscribe for replies: %s",
                                natsStatus_GetText(s));
                goto out_fail;
        }
        if (pthread_create(&up->sweeper, NULL, sweeper_main, up) != 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot start the deadline sweeper");
                goto out_fail;
        }
        up->sweeper_started = true;
        *out = up;
        return EJ_OK;

out_fail:
        gw_upstream_destroy(up);
        return st;
}

size_t gw_upstream_pending(struct gw_upstream *up)
{
        size_t n;

        pthread_mutex_lock(&up->mu);
        n = up->count;
        pthread_mutex_unlock(&up->mu);
        return n;
}

void gw_upstream_fail_all(struct gw_upstream *up, const char *why)
{
        struct gw_req *all;

        pthread_mutex_lock(&up->mu);
        all = take_expired(up, 0, true);
        pthread_mutex_unlock(&up->mu);
        complete_list(all, EJ_ERR_OUTCOME_UNKNOWN, why);
}

void gw_upstream_destroy(struct gw_upstream *up)
{
        if (up == NULL)
                return;
        atomic_store(&up->stop, true);
        if (up->sweeper_started)
                pthread_join(up->sweeper, NULL);
        if (up->replies) {
                natsSubscription_Unsubscribe(up->replies);
                natsSubscription_Destroy(up->replies);
        }
        gw_upstream_fail_all(up, "the gateway is shutting down");
        pthread_mutex_destroy(&up->mu);
        free(up);
}
