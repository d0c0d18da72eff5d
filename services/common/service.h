/*
 * service.h: the runtime every service's main() hands itself to.
 *
 * A service is the `service` block of its .proto (its operations, rpc.h) plus a table of
 * handler functions (struct ej_handler: method name, function, flags). ej_service_main is the
 * whole start-up of a service binary: it names the log after the service, checks the handler
 * table against the block, runs the service's own start-up hook and then either one of its
 * operator commands or the service itself (ej_service_run), and prints a start-up failure as
 * one stderr line "ej-<svc>: cannot start: ..." with exit status 1.
 *
 * The op table: every method of the block needs exactly one handler, and every handler must
 * name a method; otherwise the service refuses to start. Every service also answers the methods
 * of `service Gdpr` (proto/common.proto), gdpr_export and gdpr_erase, on ej.<svc>.gdpr_export
 * and ej.<svc>.gdpr_erase: the runtime's defaults answer empty (an export part "{}", an erasure
 * that does nothing); a handler naming one of them overrides the default. Those two are for
 * services only: a request carrying Ej-User-Id is refused (forbidden) before any handler runs.
 *
 * ej_service_run connects to NATS and PostgreSQL, applies the migrations (the shared tables of
 * events.h and mail.h, then the service's own), ensures the event stream, starts the outbox
 * relay, the admin HTTP endpoint (/healthz, /readyz, /metrics) and N worker threads, and
 * returns when SIGTERM or SIGINT asks it to stop, after draining: workers finish the message in
 * hand, the relay publishes what it can.
 *
 * Each worker thread owns one queue subscription to "ej.<service>.>" (queue group <service>) and
 * one struct ej_db, so the hot path takes no locks; any number of replicas share the load.
 * For each message the worker resets its arena, unpacks the request into it, refuses it when a
 * string in it is not UTF-8 (pbtext.h: EJ_ERR_INVALID naming the field), calls the handler with
 * a zeroed response, and replies (see bus.h for the wire conventions).
 *
 * Deadlines: a request whose Ej-Deadline (bus.h) has passed is not started (answered timeout,
 * which nobody waits for), and the handler's connection carries the deadline (db.h), so a
 * transaction is rolled back instead of committed once the caller has given up; work that did
 * commit is answered. Idempotency: a request with Ej-Idempotency-Key gets the stored answer of
 * an earlier call with that key, or runs and has its answer stored (idem.h).
 *
 * Slow operations (EJ_OP_SLOW in the handler table: CPU-heavy work such as password hashing)
 * never run on a worker thread, so a burst of them cannot hold up the quick ones. The worker
 * hands the message to a bounded in-process queue (EJ_SLOW_QUEUE) served by a pool of
 * EJ_SLOW_WORKERS threads, each with its own struct ej_db and arena, which handle it exactly as
 * a worker would: the pool size is the cap on how many slow operations run at once. When the
 * queue is full the request is answered at once with EJ_ERR_TOO_MANY and Ej-Retry-After 1. A
 * service without slow operations starts no pool. On stop the pool serves what is queued
 * (within the drain time; later items are answered EJ_ERR_UNAVAILABLE).
 */
#ifndef EJ_SERVICE_H
#define EJ_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "bus.h"
#include "db.h"
#include "events.h"
#include "handler.h"
#include "mem.h"
#include "status.h"

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
        const ProtobufCServiceDescriptor *api; /* the .proto's service block, e.g.
                                                  &ej__users__users__descriptor */
        const struct ej_handler *handlers;     /* one per method (and per overridden gdpr_*) */
        size_t n_handlers;
        const struct ej_migration *migrations; /* the service's own (schema/NNN_*.sql) */
        size_t n_migrations;
        void *svc;                                   /* handed to every handler as call->svc */
        const struct ej_service_consumer *consumers; /* may be NULL */
        size_t n_consumers;
        ej_service_start_fn start; /* may be NULL (see "Connections the runtime lends" above) */
        ej_service_stop_fn stop;   /* may be NULL */

        /* Hooks of ej_service_main, each may be NULL; `svc` is the field above.
         * init: the service's own start-up (settings, resources), before a command or the
         *   runtime runs. fini: releases them; called after init whether init succeeded or not,
         *   so init may leave partial work for fini to undo.
         * migrated: after ej_service_run applied the migrations, on that connection, before any
         *   worker starts (seed data).
         * command: runs `argv[1]` (an operator command) instead of the service when there are
         *   arguments; returns the exit status (2 for a usage error). Without it a service takes
         *   no arguments. */
        enum ej_status (*init)(void *svc, struct ej_err *err);
        void (*fini)(void *svc);
        enum ej_status (*migrated)(void *svc, struct ej_db *db, struct ej_err *err);
        int (*command)(void *svc, int argc, char **argv);
};

/* True when `roles` (comma-separated) contains `role`. */
int ej_call_has_role(const struct ej_call *call, const char *role);

/* The whole main() of a service binary: `return ej_service_main(&def, argc, argv);`. Logging
 * (EJ_LOG_LEVEL, named after the service), ids, the handler table check, def->init, then
 * def->command (with arguments) or ej_service_run, then def->fini. Returns the exit status:
 * 0 after a clean stop, 1 after a start-up failure (printed as one stderr line), or the
 * command's own. */
int ej_service_main(const struct ej_service_def *def, int argc, char **argv);

/* Checks the handler table of `def` against its service block (see the top of this file)
 * without starting anything. EJ_OK, or EJ_ERR_INVALID with `err` naming the first method
 * without a handler or handler without a method. */
enum ej_status ej_service_check(const struct ej_service_def *def, struct ej_err *err);

/* Applies to `db` the tables every service schema shares (the event outbox of events.h, the
 * mail tables of mail.h, the stored answers of idem.h) and then the `n` migrations of the service
 * itself (db.h), for a command that works on the database without the runtime. */
enum ej_status ej_service_migrate(struct ej_db *db, const struct ej_migration *own, size_t n,
                                  struct ej_err *err);

/* Runs the service until asked to stop (ej_service_main calls it). Settings come from the
 * environment:
 *   EJ_NATS_URL (nats://127.0.0.1:4222), EJ_DB_URL (libpq conninfo, required),
 *   EJ_WORKERS (2), EJ_ADMIN_ADDR (127.0.0.1:0 = no admin endpoint unless a port is given),
 *   EJ_RELAY_POLL_MS (1000), EJ_RELAY_HOLD_MS (0), EJ_NATS_SEND_ASAP (false),
 *   EJ_SLOW_WORKERS (2) and EJ_SLOW_QUEUE (64) when some operation is slow.
 * When EJ_SMTP_URL is set it also starts the mail sender for the service's mail outbox (mail.h;
 * EJ_SMTP_STARTTLS, EJ_SMTP_USER, EJ_SMTP_PASSWORD, EJ_MAIL_FROM, ...); unset, mail is queued
 * but not sent, with a warning at start.
 * The consumers of def->consumers start once the relay runs and stop after the workers (each
 * finishes the event in hand).
 * Returns EJ_OK after a clean stop; a start-up failure returns its status with `err` filled. */
enum ej_status ej_service_run(const struct ej_service_def *def, struct ej_err *err);

#endif
