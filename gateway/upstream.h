/*
 * upstream.h: asynchronous NATS requests for suspended HTTP connections, and the headers every
 * request the gateway sends carries.
 *
 * One wildcard subscription on "<inbox>.*" receives every reply; request number `seq` uses the
 * reply subject "<inbox>.<seq>". Whoever takes a request out of the pending table (reply
 * callback, sweeper, failed publish) calls its completion, the function the sender gave,
 * exactly once; upstream.c knows nothing of what the completion does.
 *
 * Ownership: main() owns struct gw_upstream. A struct gw_req handed to gw_upstream_send is the
 * caller's; its connection must be suspended until the completion runs. Thread safety: every
 * function may be called from any thread.
 */
#ifndef EJ_GW_UPSTREAM_H
#define EJ_GW_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <nats/nats.h>

#include "gateway.h"
#include "status.h"

/* Who a request is for, as the services see it in its headers (all borrowed; NULL or "" for
 * absent). */
struct gw_caller {
        const char *rid;
        const char *user_id; /* NULL: anonymous */
        const char *roles;   /* comma-separated */
        const char *client_addr;
        const char *idem_key; /* NULL: none (Ej-Idempotency-Key) */
};

/* Sets the request headers on `msg`: Ej-Request-Id, and when known Ej-User-Id, Ej-Roles,
 * Ej-Client-Addr and Ej-Idempotency-Key. Every request message of the gateway gets its headers
 * here. */
natsStatus gw_caller_headers(natsMsg *msg, const struct gw_caller *c);

/* The caller of `req`, borrowing its fields. */
struct gw_caller gw_req_caller(const struct gw_req *req);

/* Creates the reply inbox subscription and the deadline sweeper. */
enum ej_status gw_upstream_create(struct gw_upstream **out, struct gw *gw, struct ej_err *err);

/* Stops the sweeper, fails what is still pending with EJ_ERR_OUTCOME_UNKNOWN, frees. NULL ok. */
void gw_upstream_destroy(struct gw_upstream *up);

/* Sends `data` to `subject` for `req` (whose connection is suspended), with req's headers and
 * the deadline `timeout_ms` from now (Ej-Deadline). The outcome is EJ_ERR_UNAVAILABLE when the
 * message did not go out, EJ_ERR_OUTCOME_UNKNOWN when it went out and no answer came (see the
 * top of upstream.c).
 * done(req) is then called exactly once, with req->reply set (req->outcome EJ_OK) or
 * req->outcome/outcome_err set (no answer): usually later on a NATS or sweeper thread, or at
 * once on this thread when the request cannot go out at all. */
void gw_upstream_send(struct gw_upstream *up, struct gw_req *req, const char *subject,
                      const void *data, size_t n, int timeout_ms, void (*done)(struct gw_req *req));

/* The status of a completed exchange of `req`, with its text in `err`: the outcome when no
 * reply came ("the <service> service did not answer in time" for a timeout), unavailable for
 * "no responders", otherwise the reply's own status. */
enum ej_status gw_upstream_status(const struct gw_req *req, struct ej_err *err);

/* Requests in flight. */
size_t gw_upstream_pending(struct gw_upstream *up);

/* True when the gateway can serve: connected to NATS, and some replica of every service the
 * route table sends to answered a ping ("ej.<svc>._ping", sent every second) in the last
 * 2.5 s. Otherwise false with the reason in `why`. */
bool gw_upstream_ready(struct gw_upstream *up, char *why, size_t size);

/* Fails every pending request with EJ_ERR_OUTCOME_UNKNOWN and message `why` (shutdown): each
 * was sent, its outcome is not known. */
void gw_upstream_fail_all(struct gw_upstream *up, const char *why);

#endif
