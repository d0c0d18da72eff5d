/*
 * bus.h: the NATS side of every binary (nats.c).
 *
 * Conventions, fixed here once:
 *   - request subjects  ej.<service>.<verb>    (queue group = <service>)
 *   - event subjects    ej.evt.<service>.<event>  (JetStream, see events.h)
 *   - a request carries headers Ej-Request-Id, and, when the caller is signed in, Ej-User-Id and
 *     Ej-Roles (comma-separated); its data is the packed request message. It may carry
 *     Ej-Deadline: the moment (Unix epoch milliseconds, decimal) after which the caller no
 *     longer waits for the answer; a service does not start, and does not commit, work past it.
 *     A write may carry Ej-Idempotency-Key (the client's Idempotency-Key): a retry with the same
 *     key gets the stored answer of the first attempt instead of a second execution.
 *   - a reply carries header Ej-Status with the status name (ej_status_name; absent means ok);
 *     on failure also Ej-Error (a sentence) and Ej-Field (the field at fault, when any) and no
 *     data; on success its data is the packed response message.
 *
 * A struct ej_bus owns one natsConnection that reconnects forever once connected; connecting
 * fails clearly when no server answers at start-up. natsConnection is thread-safe, so one
 * struct ej_bus serves every thread of a process.
 */
#ifndef EJ_BUS_H
#define EJ_BUS_H

#include <stdbool.h>

#include <nats/nats.h>
#include <protobuf-c/protobuf-c.h>

#include "mem.h"
#include "status.h"

#define EJ_HDR_REQUEST_ID "Ej-Request-Id"
#define EJ_HDR_USER_ID    "Ej-User-Id"
#define EJ_HDR_ROLES      "Ej-Roles"
#define EJ_HDR_STATUS     "Ej-Status"
#define EJ_HDR_ERROR      "Ej-Error"
#define EJ_HDR_FIELD      "Ej-Field"
/* The client's network address as the gateway saw it (throttling, activity log). */
#define EJ_HDR_CLIENT_ADDR "Ej-Client-Addr"
/* When the caller stops waiting: Unix epoch milliseconds, decimal. */
#define EJ_HDR_DEADLINE "Ej-Deadline"
/* The client's Idempotency-Key of a write (1 to 128 visible ASCII characters). */
#define EJ_HDR_IDEMPOTENCY_KEY "Ej-Idempotency-Key"
/* On a too_many reply: seconds the client should wait before trying again. */
#define EJ_HDR_RETRY_AFTER "Ej-Retry-After"

struct ej_bus;

struct ej_bus_options {
        const char *url;     /* "nats://127.0.0.1:4222"; comma-separated list allowed */
        const char *name;    /* connection name shown by the server, e.g. "ej-users" */
        int connect_wait_ms; /* how long to keep trying at start-up before failing */
        bool send_asap;      /* natsOptions_SetSendAsap: lower lone-request latency, less
                                throughput under load */
        /* Called (from a nats.c thread) after the connection came back from an outage, during
         * which core NATS messages (broadcasts) may have been missed; may be NULL. */
        void (*on_reconnect)(void *ud);
        void *on_reconnect_ud;
};

/* Connects. *out is owned by the caller (ej_bus_destroy). */
enum ej_status ej_bus_connect(struct ej_bus **out, const struct ej_bus_options *opt,
                              struct ej_err *err);

/* Flushes, drains subscriptions within `timeout_ms`, closes, frees. Accepts NULL. */
void ej_bus_destroy(struct ej_bus *bus, int timeout_ms);

/* The connection, borrowed for the bus's lifetime. */
natsConnection *ej_bus_conn(struct ej_bus *bus);

/* True while the connection is up (not reconnecting or closed). */
bool ej_bus_connected(struct ej_bus *bus);

/* Reads a reply's status headers: EJ_OK, or the carried status with its text in `err`. A "no
 * responders" reply becomes EJ_ERR_UNAVAILABLE. */
enum ej_status ej_bus_reply_status(natsMsg *reply, struct ej_err *err);

/* Sets header Ej-Deadline of `msg` to now + `timeout_ms` (Unix epoch milliseconds). */
natsStatus ej_bus_set_deadline(natsMsg *msg, int timeout_ms);

/* The Ej-Deadline of `msg` in Unix epoch milliseconds, or 0 when it has none (or it does not
 * parse as a positive decimal number). */
long long ej_bus_deadline(natsMsg *msg);

/* Service-to-service request: packs `req`, sends it to `subject` with `request_id` (may be
 * NULL) and a deadline `timeout_ms` from now, waits up to `timeout_ms`, and unpacks the reply as
 * `resp_desc` into `arena`. Blocks the calling thread: for services' worker threads, never for the
 * gateway. */
enum ej_status ej_bus_request(struct ej_bus *bus, const char *subject, const ProtobufCMessage *req,
                              const char *request_id, const ProtobufCMessageDescriptor *resp_desc,
                              struct ej_arena *arena, int timeout_ms, ProtobufCMessage **resp,
                              struct ej_err *err);

/* Sends a reply to `request` with the status headers and, on EJ_OK, `resp` packed as data
 * (`resp` may be NULL for an empty body). A `detail` marked log_only (status.h) is not sent:
 * the reply carries ej_status_public_message and no field; logging the detail with the request
 * id is the caller's part. */
enum ej_status ej_bus_respond(struct ej_bus *bus, natsMsg *request, enum ej_status st,
                              const struct ej_err *detail, const ProtobufCMessage *resp);

/* Like ej_bus_respond, with extra reply headers: `headers` is NULL or a NULL-terminated list
 * of name, value pairs (e.g. {EJ_HDR_RETRY_AFTER, "60", NULL}). */
enum ej_status ej_bus_respond_hdrs(struct ej_bus *bus, natsMsg *request, enum ej_status st,
                                   const struct ej_err *detail, const ProtobufCMessage *resp,
                                   const char *const *headers);

/* Publishes `len` bytes of `data` on `subject` as a core NATS message (no reply, no persistence;
 * durable events go through events.h). The data is copied. Returns once the server has the
 * message (a flush, bounded to 1 s), so anything this connection sends afterwards, such as the
 * reply to the request that caused a broadcast, reaches every subscriber after it. */
enum ej_status ej_bus_publish(struct ej_bus *bus, const char *subject, const void *data, size_t len,
                              struct ej_err *err);

#endif
