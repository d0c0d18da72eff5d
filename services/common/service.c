#include "service.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db_pool.h"
#include "events.h"
#include "health.h"
#include "idem.h"
#include "ids.h"
#include "log.h"
#include "mail.h"
#include "metrics.h"
#include "optable.h"
#include "pbtext.h"
#include "rpc.h"

#define SVC_CONNECT_WAIT_MS 10000 /* NATS and PostgreSQL may still be starting */
#define SVC_POLL_MS         250   /* how soon a worker notices the stop flag */
#define SVC_DRAIN_MS        5000  /* longest a worker keeps serving after the stop signal */
#define SVC_BUS_CLOSE_MS    2000
#define SVC_ARENA_BLOCK     16384
#define SVC_POOL_IDLE       8    /* connections the lending pool keeps open between borrowings */
#define SVC_READY_CACHE_MS  1000 /* /readyz checks the database at most this often */

struct svc_settings {
        const char *nats_url;
        const char *db_url;
        const char *admin_addr;
        long workers;
        long slow_workers; /* EJ_SLOW_WORKERS: threads of the slow pool */
        long slow_queue;   /* EJ_SLOW_QUEUE: slow requests waiting at most */
        long slow_nice;    /* EJ_SLOW_NICE: the slow pool's CPU niceness (0: as the rest) */
        long relay_poll_ms;
        long relay_hold_ms;
        bool send_asap;
        struct ej_mailer_config mail; /* SMTP settings; mail.smtp.url NULL = not sent */
};

struct svc_runtime;

/* A worker thread (with a subscription) or a thread of the slow pool (slow, no subscription):
 * both handle requests the same way, each with its own connection and arena. */
struct svc_worker {
        struct svc_runtime *rt;
        int index;
        bool slow;
        pthread_t thread;
        bool running;
        natsSubscription *sub; /* NULL in the slow pool */
        struct ej_db *db;
        struct ej_arena *arena;
        struct ej_idem idem; /* the Idempotency-Key of the call in hand (idem.h) */
        /* Metric series looked up once, then updated without locks: [op][status], where op
         * n_ops stands for unknown methods. */
        struct ej_counter **counters;
        struct ej_histogram **durations;
};

/* A slow request waiting for the pool; the message is the queue's until a slow thread takes it. */
struct svc_slow_item {
        natsMsg *msg;
        double t0; /* when a worker received it: its duration counts the wait */
};

/* Bounded ring of slow requests, filled by the workers, emptied by the slow pool. */
struct svc_slow_queue {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct svc_slow_item *items; /* cap entries */
        size_t cap;
        size_t head;
        size_t len;
        bool closed;             /* set once the workers are gone: the pool empties the queue */
        long long stop_deadline; /* ej_mono_ms; queued items taken later are refused */
};

struct svc_runtime {
        const struct ej_service_def *def;
        char name[EJ_RPC_NAME_MAX];       /* "users": schema, queue group, subjects */
        char prefix[EJ_RPC_NAME_MAX + 4]; /* "ej.users." */
        struct ej_optable_op *ops;        /* the op table (optable.h), n_ops rows */
        size_t n_ops;
        struct svc_settings cfg;
        struct ej_bus *bus;
        struct ej_metrics *metrics;
        struct ej_health *health;
        struct ej_db_probe *db_probe; /* the database part of /readyz */
        struct ej_relay *relay;
        struct ej_mailer *mailer;       /* NULL when EJ_SMTP_URL is unset */
        struct ej_consumer **consumers; /* def->n_consumers, NULL until started */
        struct svc_worker *workers;
        struct svc_worker *slow; /* n_slow threads; NULL when no operation is slow */
        long n_slow;
        struct svc_slow_queue slow_q;
        atomic_int stopping;
        struct ej_service_env env; /* what def->start was given (service_start below) */
        bool service_started;      /* def->start succeeded: def->stop is owed */
};

static enum ej_status load_settings(struct svc_settings *s, struct ej_err *err)
{
        enum ej_status st;

        s->nats_url = ej_env_str("EJ_NATS_URL", "nats://127.0.0.1:4222");
        s->db_url = ej_env_str("EJ_DB_URL", NULL);
        s->admin_addr = ej_env_str("EJ_ADMIN_ADDR", "127.0.0.1:0");
        if (s->db_url == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, "EJ_DB_URL",
                                  "EJ_DB_URL is not set (a libpq connection string)");
        st = ej_env_long("EJ_WORKERS", 2, 1, 64, &s->workers, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_SLOW_WORKERS", 2, 1, 64, &s->slow_workers, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_SLOW_QUEUE", 64, 1, 100000, &s->slow_queue, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_SLOW_NICE", 10, 0, 19, &s->slow_nice, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_RELAY_POLL_MS", 1000, 10, 600000, &s->relay_poll_ms, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_RELAY_HOLD_MS", 0, 0, 3600000, &s->relay_hold_ms, err);
        if (st == EJ_OK)
                st = ej_env_bool("EJ_NATS_SEND_ASAP", false, &s->send_asap, err);
        if (st == EJ_OK)
                st = ej_mailer_config_from_env(&s->mail, err);
        return st;
}

/* True when `addr` ("host:port") names a port other than 0. */
static bool admin_wanted(const char *addr)
{
        const char *colon = strrchr(addr, ':');
        const char *port = colon ? colon + 1 : addr;

        return port[0] != '\0' && strcmp(port, "0") != 0;
}

static bool ready(void *ud)
{
        struct svc_runtime *rt = ud;

        return !atomic_load(&rt->stopping) && ej_bus_connected(rt->bus) &&
               ej_db_probe_ok(rt->db_probe);
}

static const struct ej_optable_op *find_op(const struct svc_runtime *rt, const char *method,
                                           size_t *index)
{
        for (size_t i = 0; i < rt->n_ops; i++) {
                if (strcmp(rt->ops[i].method, method) == 0) {
                        *index = i;
                        return &rt->ops[i];
                }
        }
        *index = rt->n_ops;
        return NULL;
}

static const char *header(natsMsg *msg, const char *key, const char *def)
{
        const char *v = NULL;

        if (natsMsgHeader_Get(msg, key, &v) != NATS_OK || v == NULL)
                return def;
        return v;
}

static double mono_seconds(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count(struct svc_worker *w, size_t op_index, const char *verb, enum ej_status st,
                  double seconds)
{
        size_t slot = op_index * EJ_STATUS_COUNT + (size_t)st;
        const char *op_label = op_index < w->rt->n_ops ? verb : "unknown";
        char labels[160];

        if ((unsigned)st >= EJ_STATUS_COUNT)
                return;
        if (w->counters[slot] == NULL) {
                if (snprintf(labels, sizeof(labels), "op=\"%s\",status=\"%s\"", op_label,
                             ej_status_name(st)) >= (int)sizeof(labels))
                        return;
                w->counters[slot] =
                    ej_metrics_counter(w->rt->metrics, "ej_requests_total",
                                       "Requests handled, by operation and status.", labels);
        }
        ej_counter_add(w->counters[slot], 1);
        if (w->durations[op_index] == NULL) {
                if (snprintf(labels, sizeof(labels), "op=\"%s\"", op_label) >= (int)sizeof(labels))
                        return;
                w->durations[op_index] = ej_metrics_histogram(
                    w->rt->metrics, "ej_request_duration_seconds",
                    "Time from receiving a request to sending its reply.", labels);
        }
        ej_histogram_observe(w->durations[op_index], seconds);
}

static void log_result(const char *rid, const char *verb, enum ej_status st,
                       const struct ej_err *err, double ms)
{
        enum ej_log_level lvl;

        if (st == EJ_OK) {
                if (ej_log_enabled(EJ_LOG_DEBUG))
                        ej_debug(rid, "%s ok %.2f ms", verb, ms);
                return;
        }
        /* Failures the caller caused are routine; ours are not. Detail the client does not see
         * (the database's text) means a check before the SQL is missing: worth a warning. */
        if (st == EJ_ERR_INTERNAL)
                lvl = EJ_LOG_ERROR;
        else if (st == EJ_ERR_UNAVAILABLE || st == EJ_ERR_TIMEOUT || err->log_only)
                lvl = EJ_LOG_WARN;
        else
                lvl = EJ_LOG_INFO;
        ej_log(lvl, rid, "%s %s %.2f ms: %s%s%s%s", verb, ej_status_name(st), ms, err->msg,
               err->field[0] ? " field=" : "", err->field,
               err->log_only ? " (the client got the generic message)" : "");
}

/* Hands `msg` (and its ownership) to the slow pool; false when the queue is full or closed. */
static bool slow_push(struct svc_runtime *rt, natsMsg *msg, double t0)
{
        struct svc_slow_queue *q = &rt->slow_q;
        bool taken = false;

        pthread_mutex_lock(&q->mu);
        if (!q->closed && q->len < q->cap) {
                q->items[(q->head + q->len) % q->cap] = (struct svc_slow_item){msg, t0};
                q->len++;
                taken = true;
                pthread_cond_signal(&q->cv);
        }
        pthread_mutex_unlock(&q->mu);
        return taken;
}

/* Handles one request received at `t0`: everything it allocates lives in the thread's arena.
 * On a worker thread a slow operation is handed to the slow pool instead: then true is returned
 * and the message belongs to the pool; otherwise the caller still owns it. `refuse`, when not
 * EJ_OK, answers the request with that status without running it. */
static bool handle(struct svc_worker *w, natsMsg *msg, double t0, enum ej_status refuse)
{
        const struct svc_runtime *rt = w->rt;
        const char *subject = natsMsg_GetSubject(msg);
        size_t plen = strlen(rt->prefix);
        const char *verb = subject;
        const struct ej_optable_op *op;
        size_t op_index;
        struct ej_call call;
        struct ej_err err;
        ProtobufCAllocator alloc;
        ProtobufCMessage *req = NULL;
        ProtobufCMessage *resp = NULL;
        double secs;
        char retry_after[16];
        const char *extra[3] = {NULL, NULL, NULL};
        long long deadline;
        bool replayed = false;
        enum ej_status st_replayed = EJ_OK;
        struct ej_err err_replayed;
        enum ej_status st;

        /* The method is all of the subject after "ej.<service>.". */
        if (strncmp(subject, rt->prefix, plen) == 0)
                verb = subject + plen;
        if (strcmp(verb, EJ_RPC_PING) == 0) {
                (void)ej_bus_respond(w->rt->bus, msg, EJ_OK, NULL, NULL);
                return false;
        }
        ej_arena_reset(w->arena);
        ej_err_clear(&err);
        alloc = ej_arena_pb_allocator(w->arena);
        call.arena = w->arena;
        call.db = w->db;
        call.bus = w->rt->bus;
        call.svc = rt->def->svc;
        call.service = rt->name;
        call.request_id = header(msg, EJ_HDR_REQUEST_ID, "");
        call.user_id = header(msg, EJ_HDR_USER_ID, "");
        call.roles = header(msg, EJ_HDR_ROLES, "");
        call.client_addr = header(msg, EJ_HDR_CLIENT_ADDR, "");
        call.retry_after_s = 0;
        if (call.request_id[0] == '\0') {
                char *rid = ej_arena_alloc(w->arena, EJ_UUID_LEN);

                ej_uuid(rid);
                call.request_id = rid;
        }

        op = find_op(rt, verb, &op_index);
        if (op == NULL) {
                st = ej_err_set(&err, EJ_ERR_NOT_FOUND, NULL, "unknown operation %s.%s", rt->name,
                                verb);
                goto reply;
        }
        if (op->service_only && call.user_id[0] != '\0') {
                st = ej_err_set(&err, EJ_ERR_FORBIDDEN, NULL, "%s is for services only", verb);
                goto reply;
        }
        if (op->slow && !w->slow) {
                if (slow_push(w->rt, msg, t0))
                        return true;
                /* Not queueing without bound: the caller may try again in a moment. */
                call.retry_after_s = 1;
                st = ej_err_set(&err, EJ_ERR_TOO_MANY, NULL,
                                "too many %s requests waiting; try again in a moment", verb);
                goto reply;
        }
        if (refuse != EJ_OK) {
                st = ej_err_set(&err, refuse, NULL, "the service is stopping");
                goto reply;
        }
        /* The caller gave up: starting now would do work nobody is told about. No one reads
         * the answer either; it is sent for the metrics' and the logs' sake. */
        deadline = ej_bus_deadline(msg);
        if (deadline > 0 && ej_now_ms() >= deadline) {
                st = ej_err_set(&err, EJ_ERR_TIMEOUT, NULL,
                                "the caller's deadline passed before the work started");
                goto reply;
        }
        req = protobuf_c_message_unpack(op->req, &alloc, (size_t)natsMsg_GetDataLength(msg),
                                        (const uint8_t *)natsMsg_GetData(msg));
        if (req == NULL) {
                st = ej_err_set(&err, EJ_ERR_INVALID, NULL, "the request is not a valid %s",
                                op->req->name);
                goto reply;
        }
        /* protobuf-c does not check the UTF-8 of strings: no handler sees bytes that are not
         * text. */
        if (!ej_pb_text_valid(req, &err)) {
                st = EJ_ERR_INVALID;
                goto reply;
        }
        st = ej_idem_begin(&w->idem, call.user_id, verb, header(msg, EJ_HDR_IDEMPOTENCY_KEY, NULL),
                           natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &err);
        if (st == EJ_OK)
                st = ej_idem_lookup(&w->idem, w->db, w->arena, op->resp, &replayed, &st_replayed,
                                    &err_replayed, &resp, &err);
        if (st != EJ_OK || replayed) {
                if (replayed) {
                        st = st_replayed;
                        err = err_replayed;
                }
                goto reply;
        }
        resp = ej_arena_alloc(w->arena, op->resp->sizeof_message);
        op->resp->message_init(resp);
        ej_db_set_deadline(w->db, deadline);
        if (w->idem.active)
                ej_db_set_commit_hook(w->db, ej_idem_claim, &w->idem);
        st = op->fn(&call, req, resp, &err);
        ej_db_set_commit_hook(w->db, NULL, NULL);
        ej_db_set_deadline(w->db, 0);
        if (st != EJ_OK) {
                if (err.msg[0] == '\0')
                        ej_err_set(&err, st, err.field, "%s", ej_status_name(st));
                /* A handler must not leave a transaction open; make sure of it. */
                ej_db_rollback(w->db);
        }
        ej_idem_store(&w->idem, w->db, w->arena, st, &err, resp, call.request_id);
reply:
        if (st == EJ_ERR_TOO_MANY && call.retry_after_s > 0) {
                snprintf(retry_after, sizeof(retry_after), "%d", call.retry_after_s);
                extra[0] = EJ_HDR_RETRY_AFTER;
                extra[1] = retry_after;
        }
        if (ej_bus_respond_hdrs(w->rt->bus, msg, st, &err, st == EJ_OK ? resp : NULL, extra) !=
            EJ_OK)
                ej_warn(call.request_id, "%s: the reply could not be sent", verb);
        secs = mono_seconds() - t0;
        count(w, op_index, verb, st, secs);
        log_result(call.request_id, verb, st, &err, secs * 1000.0);
        return false;
}

static void *worker_main(void *arg)
{
        struct svc_worker *w = arg;
        long long stop_deadline = 0;
        const struct timespec idle = {0, SVC_POLL_MS * 1000000L};

        for (;;) {
                natsMsg *msg = NULL;
                natsStatus s = natsSubscription_NextMsg(&msg, w->sub, SVC_POLL_MS);

                if (s == NATS_OK) {
                        if (!handle(w, msg, mono_seconds(), EJ_OK))
                                natsMsg_Destroy(msg);
                } else if (s == NATS_SLOW_CONSUMER) {
                        ej_warn(NULL, "worker %d fell behind; NATS dropped messages", w->index);
                }
                if (atomic_load(&w->rt->stopping)) {
                        /* Serve what is already queued for us, then leave: an idle poll, a
                         * finished drain or the deadline ends it. */
                        if (stop_deadline == 0)
                                stop_deadline = ej_mono_ms() + SVC_DRAIN_MS;
                        if ((s != NATS_OK && s != NATS_SLOW_CONSUMER) ||
                            ej_mono_ms() >= stop_deadline)
                                break;
                } else if (s == NATS_CONNECTION_CLOSED || s == NATS_INVALID_SUBSCRIPTION) {
                        ej_error(NULL, "worker %d lost its subscription: %s", w->index,
                                 natsStatus_GetText(s));
                        nanosleep(&idle, NULL);
                }
        }
        return NULL;
}

/* A thread of the slow pool: serves the queue until it is closed and empty. */
static void *slow_main(void *arg)
{
        struct svc_worker *w = arg;
        struct svc_slow_queue *q = &w->rt->slow_q;

        /* A slow operation (an argon2id hash) keeps a core busy for a long time: at a lower CPU
         * priority a burst of them takes what the other requests leave instead of starving
         * them. Linux applies a thread's niceness to that thread alone. */
        if (w->rt->cfg.slow_nice > 0 &&
            setpriority(PRIO_PROCESS, (id_t)gettid(), (int)w->rt->cfg.slow_nice) != 0)
                ej_warn(NULL, "slow pool: cannot lower its CPU priority: %s", strerror(errno));
        for (;;) {
                struct svc_slow_item it;
                bool late;

                pthread_mutex_lock(&q->mu);
                while (q->len == 0 && !q->closed)
                        pthread_cond_wait(&q->cv, &q->mu);
                if (q->len == 0) {
                        pthread_mutex_unlock(&q->mu);
                        break;
                }
                it = q->items[q->head];
                q->head = (q->head + 1) % q->cap;
                q->len--;
                late = q->closed && ej_mono_ms() >= q->stop_deadline;
                pthread_mutex_unlock(&q->mu);
                (void)handle(w, it.msg, it.t0, late ? EJ_ERR_UNAVAILABLE : EJ_OK);
                natsMsg_Destroy(it.msg);
        }
        return NULL;
}

static void worker_free(struct svc_worker *w)
{
        natsSubscription_Destroy(w->sub);
        ej_db_destroy(w->db);
        ej_arena_destroy(w->arena);
        free(w->counters);
        free(w->durations);
}

/* Creates the connection, arena and (unless `w` is in the slow pool) the subscription of
 * thread `i` (not the thread itself). Worker 0 takes `first_db`, the connection that ran the
 * migrations. */
static enum ej_status worker_prepare(struct svc_runtime *rt, struct svc_worker *w, int i, bool slow,
                                     struct ej_db **first_db, struct ej_err *err)
{
        char subject[128];
        enum ej_status st = EJ_OK;
        natsStatus s;

        w->rt = rt;
        w->index = i;
        w->slow = slow;
        w->arena = ej_arena_create(SVC_ARENA_BLOCK);
        w->counters = xcalloc((rt->n_ops + 1) * EJ_STATUS_COUNT, sizeof(*w->counters));
        w->durations = xcalloc(rt->n_ops + 1, sizeof(*w->durations));
        if (!slow && i == 0 && *first_db) {
                w->db = *first_db;
                *first_db = NULL;
        } else {
                st = ej_db_connect(&w->db, rt->cfg.db_url, rt->name, SVC_CONNECT_WAIT_MS, err);
                if (st != EJ_OK)
                        return st;
        }
        if (slow)
                return EJ_OK;
        if (snprintf(subject, sizeof(subject), "%s>", rt->prefix) >= (int)sizeof(subject))
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "service name %s is too long",
                                  rt->name);
        s = natsConnection_QueueSubscribeSync(&w->sub, ej_bus_conn(rt->bus), subject, rt->name);
        if (s != NATS_OK)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "cannot subscribe to %s: %s",
                                  subject, natsStatus_GetText(s));
        return EJ_OK;
}

/* Waits for SIGTERM or SIGINT (blocked in every thread, so only this wait sees them). */
static int wait_for_stop(const sigset_t *set)
{
        int sig = 0;

        while (sigwait(set, &sig) != 0)
                ;
        return sig;
}

static void stop_workers(struct svc_runtime *rt)
{
        pthread_mutex_lock(&rt->slow_q.mu);
        rt->slow_q.stop_deadline = ej_mono_ms() + SVC_DRAIN_MS;
        pthread_mutex_unlock(&rt->slow_q.mu);
        atomic_store(&rt->stopping, 1);
        /* Drain: the server stops routing to us, what is already queued is still served. */
        for (long i = 0; i < rt->cfg.workers; i++)
                if (rt->workers[i].sub)
                        (void)natsSubscription_Drain(rt->workers[i].sub);
        for (long i = 0; i < rt->cfg.workers; i++)
                if (rt->workers[i].running)
                        pthread_join(rt->workers[i].thread, NULL);
}

/* After the workers: no more slow requests arrive. The pool serves what is queued (refusing what
 * it takes after the drain deadline) and leaves; anything left (the pool never started) is
 * answered as unavailable, so no message is lost or leaked. */
static void stop_slow(struct svc_runtime *rt)
{
        struct svc_slow_queue *q = &rt->slow_q;
        struct ej_err err;

        pthread_mutex_lock(&q->mu);
        q->closed = true;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        for (long i = 0; i < rt->n_slow; i++)
                if (rt->slow[i].running)
                        pthread_join(rt->slow[i].thread, NULL);
        while (q->len > 0) {
                struct svc_slow_item it = q->items[q->head];

                q->head = (q->head + 1) % q->cap;
                q->len--;
                ej_err_set(&err, EJ_ERR_UNAVAILABLE, NULL, "the service is stopping");
                (void)ej_bus_respond_hdrs(rt->bus, it.msg, EJ_ERR_UNAVAILABLE, &err, NULL, NULL);
                natsMsg_Destroy(it.msg);
        }
}

static bool has_slow_ops(const struct svc_runtime *rt)
{
        for (size_t i = 0; i < rt->n_ops; i++)
                if (rt->ops[i].slow)
                        return true;
        return false;
}

/* ---- Connections lent to the service's own threads (service.h) -----------------------------
 * The pool is created only for a service with a start hook, and opens connections on demand. */

/* Creates the lending pool and calls def->start, before any request is served. */
static enum ej_status service_start(struct svc_runtime *rt, struct ej_err *err)
{
        const struct ej_service_def *def = rt->def;
        enum ej_status st;

        if (def->start == NULL)
                return EJ_OK;
        st = ej_db_pool_create(&rt->env.db_pool, rt->cfg.db_url, rt->name, SVC_POOL_IDLE, err);
        if (st != EJ_OK)
                return st;
        rt->env.bus = rt->bus;
        st = def->start(def->svc, &rt->env, err);
        rt->service_started = st == EJ_OK;
        return st;
}

/* Calls def->stop (owed after a successful start) and closes the pool; before the bus closes. */
static void service_stop(struct svc_runtime *rt)
{
        if (rt->service_started && rt->def->stop != NULL)
                rt->def->stop(rt->def->svc);
        rt->service_started = false;
        ej_db_pool_destroy(rt->env.db_pool);
        rt->env.db_pool = NULL;
}

enum ej_status ej_service_run(const struct ej_service_def *def, struct ej_err *err)
{
        struct svc_runtime rt;
        struct ej_bus_options bopt = {0};
        struct ej_db *first_db = NULL;
        struct ej_relay_config rcfg;
        char conn_name[64];
        sigset_t stop_set;
        enum ej_status st;
        int sig;

        memset(&rt, 0, sizeof(rt));
        rt.def = def;
        atomic_init(&rt.stopping, 0);
        st = ej_rpc_service_name(def->api, rt.name, sizeof(rt.name), err);
        if (st == EJ_OK)
                st = ej_optable_build(def->api, def->handlers, def->n_handlers, &rt.ops, &rt.n_ops,
                                      err);
        if (st == EJ_OK)
                st = load_settings(&rt.cfg, err);
        if (st != EJ_OK) {
                free(rt.ops);
                return st;
        }
        snprintf(rt.prefix, sizeof(rt.prefix), "ej.%s.", rt.name);
        pthread_mutex_init(&rt.slow_q.mu, NULL);
        pthread_cond_init(&rt.slow_q.cv, NULL);
        rt.slow_q.cap = (size_t)rt.cfg.slow_queue;
        rt.slow_q.items = xcalloc(rt.slow_q.cap, sizeof(*rt.slow_q.items));

        /* Block the stop signals before any thread exists (ours, nats.c's, libpq's), so every
         * thread inherits the mask and only sigwait below receives them. */
        sigemptyset(&stop_set);
        sigaddset(&stop_set, SIGTERM);
        sigaddset(&stop_set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
        signal(SIGPIPE, SIG_IGN);

        rt.metrics = ej_metrics_create();
        snprintf(conn_name, sizeof(conn_name), "ej-%s", rt.name);
        bopt.url = rt.cfg.nats_url;
        bopt.name = conn_name;
        bopt.connect_wait_ms = SVC_CONNECT_WAIT_MS;
        bopt.send_asap = rt.cfg.send_asap;
        st = ej_bus_connect(&rt.bus, &bopt, err);
        if (st != EJ_OK)
                goto out;

        st = ej_db_connect(&first_db, rt.cfg.db_url, rt.name, SVC_CONNECT_WAIT_MS, err);
        if (st == EJ_OK)
                st = ej_service_migrate(first_db, def->migrations, def->n_migrations, err);
        if (st == EJ_OK && def->migrated)
                st = def->migrated(def->svc, first_db, err);
        if (st != EJ_OK)
                goto out;
        st = ej_events_ensure_stream(ej_bus_conn(rt.bus), err);
        if (st != EJ_OK)
                goto out;
        memset(&rcfg, 0, sizeof(rcfg));
        rcfg.conninfo = rt.cfg.db_url;
        rcfg.schema = rt.name;
        rcfg.nc = ej_bus_conn(rt.bus);
        rcfg.poll_ms = (int)rt.cfg.relay_poll_ms;
        rcfg.hold_ms = (int)rt.cfg.relay_hold_ms;
        st = ej_relay_start(&rt.relay, &rcfg, err);
        if (st != EJ_OK)
                goto out;
        if (def->n_consumers > 0)
                rt.consumers = xcalloc(def->n_consumers, sizeof(*rt.consumers));
        for (size_t i = 0; i < def->n_consumers; i++) {
                struct ej_consumer_config ccfg;

                memset(&ccfg, 0, sizeof(ccfg));
                ccfg.conninfo = rt.cfg.db_url;
                ccfg.schema = rt.name;
                ccfg.nc = ej_bus_conn(rt.bus);
                ccfg.durable = def->consumers[i].durable;
                ccfg.filter = def->consumers[i].filter;
                ccfg.fn = def->consumers[i].fn;
                ccfg.ud = def->svc;
                st = ej_consumer_start(&rt.consumers[i], &ccfg, err);
                if (st != EJ_OK)
                        goto out;
                ej_info(NULL, "consumer %s on %s", ccfg.durable, ccfg.filter);
        }
        /* Mail queued by this service (mail.h) is sent by a thread of its own. */
        if (rt.cfg.mail.smtp.url != NULL) {
                rt.cfg.mail.conninfo = rt.cfg.db_url;
                rt.cfg.mail.schema = rt.name;
                st = ej_http_global_init(err);
                if (st == EJ_OK)
                        st = ej_mailer_start(&rt.mailer, &rt.cfg.mail, err);
                if (st != EJ_OK)
                        goto out;
                ej_info(NULL, "mail: sending through %s", rt.cfg.mail.smtp.url);
        } else {
                ej_warn(NULL, "mail: EJ_SMTP_URL is not set; mail is queued but not sent");
        }
        st = service_start(&rt, err);
        if (st != EJ_OK)
                goto out;

        rt.workers = xcalloc((size_t)rt.cfg.workers, sizeof(*rt.workers));
        for (long i = 0; i < rt.cfg.workers && st == EJ_OK; i++)
                st = worker_prepare(&rt, &rt.workers[i], (int)i, false, &first_db, err);
        if (has_slow_ops(&rt)) {
                rt.n_slow = rt.cfg.slow_workers;
                rt.slow = xcalloc((size_t)rt.n_slow, sizeof(*rt.slow));
                for (long i = 0; i < rt.n_slow && st == EJ_OK; i++)
                        st = worker_prepare(&rt, &rt.slow[i], (int)i, true, &first_db, err);
        }
        /* Make sure the server knows our subscriptions before we report ready. */
        if (st == EJ_OK && natsConnection_FlushTimeout(ej_bus_conn(rt.bus), 2000) != NATS_OK)
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL,
                                "NATS did not confirm the "
                                "subscriptions");
        if (st != EJ_OK)
                goto out;
        /* The pool first: workers may hand it requests as soon as they run. */
        for (long i = 0; i < rt.n_slow; i++) {
                if (pthread_create(&rt.slow[i].thread, NULL, slow_main, &rt.slow[i]) != 0) {
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                        "cannot start slow-pool thread %ld", i);
                        goto out;
                }
                rt.slow[i].running = true;
        }
        for (long i = 0; i < rt.cfg.workers; i++) {
                if (pthread_create(&rt.workers[i].thread, NULL, worker_main, &rt.workers[i]) != 0) {
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                        "cannot start worker thread %ld", i);
                        goto out;
                }
                rt.workers[i].running = true;
        }
        if (admin_wanted(rt.cfg.admin_addr)) {
                ej_db_probe_create(&rt.db_probe, rt.cfg.db_url, rt.name, SVC_READY_CACHE_MS);
                st = ej_health_start(&rt.health, rt.cfg.admin_addr, rt.metrics, ready, &rt, err);
                if (st != EJ_OK)
                        goto out;
                ej_info(NULL, "admin endpoint on port %d", ej_health_port(rt.health));
        }
        ej_info(NULL, "ready: %ld workers on ej.%s.> (queue %s), %ld for slow operations",
                rt.cfg.workers, rt.name, rt.name, rt.n_slow);

        sig = wait_for_stop(&stop_set);
        ej_info(NULL, "stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
out:
        if (rt.workers)
                stop_workers(&rt);
        stop_slow(&rt);
        service_stop(&rt);
        ej_health_stop(rt.health);
        ej_db_probe_destroy(rt.db_probe);
        if (rt.consumers)
                for (size_t i = 0; i < def->n_consumers; i++)
                        ej_consumer_stop(rt.consumers[i]);
        free(rt.consumers);
        ej_relay_stop(rt.relay);
        ej_mailer_stop(rt.mailer);
        if (rt.workers)
                for (long i = 0; i < rt.cfg.workers; i++)
                        worker_free(&rt.workers[i]);
        free(rt.workers);
        for (long i = 0; i < rt.n_slow; i++)
                worker_free(&rt.slow[i]);
        free(rt.slow);
        free(rt.slow_q.items);
        pthread_cond_destroy(&rt.slow_q.cv);
        pthread_mutex_destroy(&rt.slow_q.mu);
        ej_db_destroy(first_db);
        ej_bus_destroy(rt.bus, SVC_BUS_CLOSE_MS);
        ej_metrics_destroy(rt.metrics);
        free(rt.ops);
        if (st == EJ_OK)
                ej_info(NULL, "stopped");
        return st;
}
