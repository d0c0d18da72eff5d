/*
 * events.h: durable domain events (transactional outbox -> JetStream) and their consumers.
 *
 * A service writes an event with ej_outbox_add inside the same transaction as the change it
 * describes; if the transaction rolls back, the event never existed. A relay thread per process
 * publishes unpublished outbox rows to the JetStream stream EJ_EVENTS (subjects ej.evt.>) with
 * the event id as Nats-Msg-Id (so a publish repeated after a crash is dropped by JetStream's
 * duplicate window) and marks them published. Several replicas' relays share the outbox safely
 * (rows are claimed with FOR UPDATE SKIP LOCKED). When NATS is down the rows wait: nothing the
 * database acknowledged is lost.
 *
 * A consumer (durable JetStream pull consumer) hands each event to a callback inside a
 * transaction on its own connection, records the event id in <schema>.processed_events in the
 * same transaction, commits, and only then acks: redelivery after a crash is recognised and
 * skipped.
 *
 * Thread safety: ej_outbox_add uses the caller's struct ej_db (one thread). Relays and consumers
 * run their own threads with their own connections; start and stop them from main.
 */
#ifndef EJ_EVENTS_H
#define EJ_EVENTS_H

#include <stdint.h>

#include <nats/nats.h>
#include <protobuf-c/protobuf-c.h>

#include "common.pb-c.h"
#include "db.h"
#include "status.h"

#define EJ_EVENTS_STREAM "EJ_EVENTS"

/* The DDL of the tables this module owns in every service schema: <schema>.outbox and
 * <schema>.processed_events. The runtime applies it before the service's own migrations
 * (ej_service_migrate in service.h); a program without the runtime passes it to ej_db_migrate
 * first. */
extern const struct ej_migration ej_events_migration;

/* Appends an event to the outbox in the caller's open transaction. `subject` is
 * "ej.evt.<service>.<event>", `type` is "<entity>.<event>" ("user.registered"), `actor` the user
 * id that caused it (NULL or "" for the system), `payload` the event's own message. On success
 * the new event id (a UUID) is written to `id_out` (37 bytes, may be NULL). */
enum ej_status ej_outbox_add(struct ej_db *db, const char *subject, const char *type,
                             const char *actor, const ProtobufCMessage *payload, char *id_out,
                             struct ej_err *err);

/* Makes sure the stream EJ_EVENTS exists (file storage, subjects ej.evt.>); idempotent. */
enum ej_status ej_events_ensure_stream(natsConnection *nc, struct ej_err *err);

struct ej_relay_config {
        const char *conninfo; /* the relay opens its own connection */
        const char *schema;   /* whose outbox */
        natsConnection *nc;   /* borrowed; must outlive the relay */
        int poll_ms;          /* longest wait between outbox scans (NOTIFY wakes it sooner) */
        int hold_ms;          /* publish only rows older than this (0 in production; the fault
                                 test uses it to kill NATS between commit and publish) */
};

struct ej_relay;

/* Starts the relay thread. *out is owned by the caller (ej_relay_stop). */
enum ej_status ej_relay_start(struct ej_relay **out, const struct ej_relay_config *cfg,
                              struct ej_err *err);

/* Publishes what it can within a short grace period, stops the thread, frees. Accepts NULL. */
void ej_relay_stop(struct ej_relay *r);

/* Called for each event inside an open transaction on `db`; returning non-EJ_OK rolls back and
 * leaves the event to be redelivered. */
typedef enum ej_status (*ej_event_fn)(struct ej_db *db, const Ej__Common__Event *ev,
                                      const char *subject, void *ud, struct ej_err *err);

struct ej_consumer_config {
        const char *conninfo;
        const char *schema;
        natsConnection *nc;  /* borrowed */
        const char *durable; /* durable consumer name, e.g. "users-welcome" */
        const char *filter;  /* subject filter, e.g. "ej.evt.users.registered" */
        ej_event_fn fn;
        void *ud;
};

struct ej_consumer;

enum ej_status ej_consumer_start(struct ej_consumer **out, const struct ej_consumer_config *cfg,
                                 struct ej_err *err);

/* Stops the thread after the event in hand is finished; frees. Accepts NULL. */
void ej_consumer_stop(struct ej_consumer *c);

#endif
