/*
 * conns.h: the gateway's HTTP connections as a whole: how many it takes, and the header
 * deadline.
 *
 * How many: libmicrohttpd's default (FD_SETSIZE - 4, about 1,020) is not a choice. The limit is
 * taken from the file-descriptor limit (its soft value raised to the hard one), less a reserve
 * for NATS, files and the admin listener; EJ_HTTP_MAX_CONNECTIONS overrides it.
 *
 * The header deadline: a connection must deliver a whole request head within the timeout of
 * opening, or of its previous answer. libmicrohttpd's own timeout is an idle one that every
 * byte restarts, so a client sending one header line every few seconds (slowloris) held its
 * connection forever. A sweeper thread closes a connection past its deadline: it writes a JSON
 * 408 and shuts the socket down; libmicrohttpd then reads the end of the stream and closes the
 * connection on its own thread. While a request is served (its head complete) there is no
 * deadline: the body, the call and the answer have timeouts of their own.
 *
 * Ownership: main() owns the registry; each connection's entry is created and freed by the
 * MHD notifications. Thread safety: every function is thread-safe; the entries are guarded by
 * one mutex, held by the sweeper while it shuts a socket down, so a socket is never touched
 * after libmicrohttpd has closed it (the CLOSED notification comes before its close()).
 */
#ifndef EJ_GW_CONNS_H
#define EJ_GW_CONNS_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "metrics.h"
#include "status.h"

struct gw_conns;

/* Starts the registry and its sweeper: heads are due within `head_timeout_ms`. `metrics` (may be
 * NULL, borrowed) gets the count of connections closed at their deadline. */
enum ej_status gw_conns_create(struct gw_conns **out, long head_timeout_ms,
                               struct ej_metrics *metrics, struct ej_err *err);

/* Stops the sweeper and frees the registry; call after the MHD daemon is stopped. NULL-safe. */
void gw_conns_destroy(struct gw_conns *c);

/* MHD_OPTION_NOTIFY_CONNECTION's callback (cls: the registry). */
void gw_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);

/* The head of the request on `conn` is complete: no deadline while it is served. */
void gw_conns_head_done(struct MHD_Connection *conn);

/* The request on `conn` is finished: the next head is due within the timeout. */
void gw_conns_rearm(struct gw_conns *c, struct MHD_Connection *conn);

/* True when the sweeper cut `conn` off at its head deadline (it answered 408). */
bool gw_conns_cut_off(struct MHD_Connection *conn);

/* Open connections. */
size_t gw_conns_count(struct gw_conns *c);

/* How many connections the daemon takes: `configured` when not 0; else the file-descriptor limit
 * (the soft limit is first raised to the hard one) less a reserve of a tenth, at least 64. */
unsigned gw_conns_limit(unsigned configured);

#endif
