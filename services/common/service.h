/*
 * service.h: the runtime every service's main() hands itself to.
 *
 * A service is a table of operations (struct ej_op): verb, request and response message types,
 * handler. ej_service_run connects to NATS and PostgreSQL, applies the service's migrations,
 * ensures the event stream, starts the outbox relay, the admin HTTP endpoint (/healthz, /readyz,
 * /metrics) and N worker threads, and returns when SIGTERM or SIGINT asks it to stop, after
 * draining: workers finish the message in hand, the relay publishes what it can.
 *
 * Each worker thread owns one queue subscription to "ej.<service>.>" (queue group <service>) and
 * one struct ej_db, so the hot path takes no locks; any number of replicas share the load.
 * For each message the worker resets its arena, unpacks the request into it, calls the handler
 * with a zeroed response, and replies (see bus.h for the wire conventions).
 *
 * Slow operations (struct ej_op.slow: CPU-heavy work such as password hashing) never run on a
 * worker thread, so a burst of them cannot hold up the quick ones. The worker hands the message
 * to a bounded in-process queue (EJ_SLOW_QUEUE) served by a pool of EJ_SLOW_WORKERS threads,
 * each with its own struct ej_db and arena, which handle it exactly as a worker would: the pool
 * size is the cap on how many slow operations run at once. When the queue is full the request
 * is answered at once with EJ_ERR_TOO_MANY and Ej-Retry-After 1. A service without slow
 * operations starts no pool. On stop the pool serves what is queued (within the drain time;
 * later items are answered EJ_ERR_UNAVAILABLE).
 */
#ifndef EJ_SERVICE_H
#define EJ_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "bus.h"
#include "db.h"
#include "events.h"
#include "mem.h"
#include "status.h"

/* One request in a handler's hands. Everything lives until the handler returns. */
struct ej_call {
        struct ej_arena *arena;  /* for anything the handler allocates */
        struct ej_db *db;        /* the worker's own connection */
        struct ej_bus *bus;      /* shared; for ej_bus_request to other services */
        const char *request_id;  /* never NULL */
        const char *user_id;     /* the signed-in caller, "" when anonymous */
        const char *roles;       /* comma-separated roles of the caller, "" when anonymous */
        void *svc;               /* the service's own context (ej_service_def.svc) */
        const char *client_addr; /* Ej-Client-Addr from the gateway, "" when absent */
        int retry_after_s;       /* set by a handler returning EJ_ERR_TOO_MANY: sent back as
                                    the Ej-Retry-After header when > 0 */
};

/* Fills `resp` (already initialised to its defaults, allocated in call->arena) from `req`.
 * Returns EJ_OK or a status with `err` filled (the reply then carries no body). */
typedef enum ej_status (*ej_op_fn)(struct ej_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage *resp, struct ej_err *err);

struct ej_op {
        const char *verb; /* subject ej.<service>.<verb> */
        const ProtobufCMessageDescriptor *req;
        const ProtobufCMessageDescriptor *resp;
        ej_op_fn fn;
        bool slow; /* run on the slow pool, never on a worker thread (see above) */
};

/* A durable event consumer the runtime runs for the service (events.h): each event matching
 * `filter` is handed to `fn` (with ej_service_def.svc as `ud`) inside a transaction on the
 * consumer's own connection, exactly once per durable name. */
struct ej_service_consumer {
        const char *durable; /* e.g. "files-user-erased"; unique per service and purpose */
        const char *filter;  /* e.g. "ej.evt.users.erased" */
        ej_event_fn fn;
};

/* ---- Connections the runtime lends to the service's own threads ---------------------------
 * Some services run work outside the request workers: subscriptions of their own (the files
 * service's uploads in progress), a sweeper thread. Such work runs on the runtime's NATS
 * connection and borrows PostgreSQL connections from the runtime's pool (db_pool.h) instead of
 * opening connections of its own. ej_service_def.start, when set, is called once the runtime is
 * connected and the migrations are applied, before the first request is served: the service
 * starts its own work there. ej_service_def.stop is called (only after a successful start) once
 * the workers and the slow pool have stopped, before the runtime closes the pool and the bus:
 * everything the service started on them must be over when it returns. */
struct ej_db_pool;

struct ej_service_env {
        struct ej_bus *bus;         /* the runtime's connection */
        struct ej_db_pool *db_pool; /* connections to the service's schema, lent on demand */
};

/* `env` and what it points to live until `stop` returns. A failure aborts the start-up (with
 * `err` filled; `stop` is then not called). */
typedef enum ej_status (*ej_service_start_fn)(void *svc, const struct ej_service_env *env,
                                              struct ej_err *err);
typedef void (*ej_service_stop_fn)(void *svc);

struct ej_service_def {
        const char *name; /* "users": schema, queue group, subject prefix, log name */
        const struct ej_op *ops;
        size_t n_ops;
        const struct ej_migration *migrations;
        size_t n_migrations;
        void *svc;                                   /* handed to every handler as call->svc */
        const struct ej_service_consumer *consumers; /* may be NULL */
        size_t n_consumers;
        ej_service_start_fn start; /* may be NULL (see "Connections the runtime lends" above) */
        ej_service_stop_fn stop;   /* may be NULL */
};

/* True when `roles` (comma-separated) contains `role`. */
int ej_call_has_role(const struct ej_call *call, const char *role);

/* Runs the service until asked to stop. Settings come from the environment:
 *   EJ_NATS_URL (nats://127.0.0.1:4222), EJ_DB_URL (libpq conninfo, required),
 *   EJ_WORKERS (2), EJ_ADMIN_ADDR (127.0.0.1:0 = no admin endpoint unless a port is given),
 *   EJ_LOG_LEVEL (info), EJ_RELAY_POLL_MS (1000), EJ_RELAY_HOLD_MS (0), EJ_NATS_SEND_ASAP (false),
 *   EJ_SLOW_WORKERS (2) and EJ_SLOW_QUEUE (64) when some operation is slow.
 * When EJ_SMTP_URL is set it also starts the mail sender for the service's mail outbox (mail.h;
 * EJ_SMTP_STARTTLS, EJ_SMTP_USER, EJ_SMTP_PASSWORD, EJ_MAIL_FROM, ...); unset, mail is queued
 * but not sent, with a warning at start.
 * The consumers of def->consumers start once the relay runs and stop after the workers (each
 * finishes the event in hand).
 * Returns EJ_OK after a clean stop; a start-up failure returns its status with `err` filled,
 * for main() to print on one line and exit 1. */
enum ej_status ej_service_run(const struct ej_service_def *def, struct ej_err *err);

#endif
